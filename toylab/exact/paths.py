r"""Exact piecewise forms of every unit along 1-D paths through input space.

Along a **segment** ``x(s) = start + s (end - start)`` a piecewise-linear network is
piecewise linear in ``s``; along a **circle** (``start`` rotated about ``center``) every
unit is ``A cos t + B sin t + C`` between breakpoints. In both cases the breakpoints
are found layer by layer in closed form: every unit of layer ``k`` is
``basis(t) @ z`` on each current interval (a composition of affine maps), its
breakpoints (``z = 0``; ``z = ±1`` for hardtanh) solve a linear equation or
``R cos(t - φ) = β - C``, the intervals are split there, and the active piece on each
sub-interval is read at its midpoint. Tier ``"exact"`` (float64; breakpoints closer
than ``1e-13`` of the path's length are merged).

:func:`integrated_gradients` is exact on top of it: the gradient is constant on each
piece of a segment, so ``IG_i = (x_i - x'_i) sum_k (s_{k+1} - s_k) d_i f(piece k)`` and
completeness ``sum_i IG_i = f(x) - f(x')`` holds to float64 rounding.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from toylab._errors import fail
from toylab._validate import check_array
from toylab.activations import get_activation
from toylab.exact.regions import _piecewise_linear
from toylab.network import Network, as_network

__all__ = [
    "PathPartition",
    "circle_partition",
    "integrated_gradients",
    "path_basis",
    "path_partition",
    "segment_partition",
]


def path_basis(kind: str, t: Any) -> np.ndarray:
    """Basis functions of a path parameter: line ``(s, 1)``; circle ``(cos t, sin t, 1)``."""
    t = np.asarray(t, np.float64)
    if kind == "line":
        return np.stack([t, np.ones_like(t)], -1)
    return np.stack([np.cos(t), np.sin(t), np.ones_like(t)], -1)


def _roots(
    kind: str, z: np.ndarray, beta: float, ta: np.ndarray, tb: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Where ``basis(t) @ z[i, :, j] == beta`` strictly inside ``(ta[i], tb[i])``."""
    span = tb - ta
    eps = 1e-12 * np.maximum(np.abs(span), 1.0)
    if kind == "line":
        a, c = z[:, 0, :], z[:, 1, :]
        with np.errstate(divide="ignore", invalid="ignore"):
            cand = [(beta - c) / a]
    else:
        a, bb, c = z[:, 0, :], z[:, 1, :], z[:, 2, :]
        r = np.hypot(a, bb)
        phi = np.arctan2(bb, a)
        with np.errstate(divide="ignore", invalid="ignore"):
            q = (beta - c) / r
        ok = np.abs(q) < 1.0
        d = np.arccos(np.where(ok, q, 0.0))
        cand = []
        for sgn in (1.0, -1.0):
            t = np.where(ok, phi + sgn * d, np.nan)
            cand.append(ta[:, None] + np.mod(t - ta[:, None], 2 * np.pi))
    ii, tt = [], []
    for t in cand:
        inside = np.isfinite(t) & (t > (ta + eps)[:, None]) & (t < (tb - eps)[:, None])
        i, _ = np.nonzero(inside)
        ii.append(i)
        tt.append(t[inside])
    return np.concatenate(ii), np.concatenate(tt)


@dataclasses.dataclass(frozen=True, eq=False)
class PathPartition:
    """Every unit of a network along a path, exactly (see the module docstring).

    On ``[bounds[i], bounds[i + 1]]`` the unit at flat position ``j`` (the order of
    :meth:`toylab.network.Network.layer_keys`, :meth:`~toylab.network.Network.flat_index`)
    equals ``path_basis(kind, t) @ coefs[i, :, j]``; the path is
    ``x(t) = path_basis(kind, t) @ coef``.
    """

    network: Network
    kind: str
    coef: np.ndarray
    bounds: np.ndarray
    coefs: np.ndarray
    tier: str = "exact"

    @property
    def num_pieces(self) -> int:
        return len(self.bounds) - 1

    def points(self, t: Any) -> np.ndarray:
        """The path's inputs at parameters ``t``."""
        return path_basis(self.kind, t) @ self.coef

    def unit(self, neuron: str) -> np.ndarray:
        """``(I, nb)``: the coefficients of one neuron on every piece."""
        return self.coefs[:, :, self.network.flat_index(neuron)]

    def values(self, t: Any, neuron: str) -> np.ndarray:
        """The neuron's exact values at parameters ``t`` (float64)."""
        t = np.asarray(t, np.float64)
        c = self.unit(neuron)
        i = np.clip(np.searchsorted(self.bounds, t, side="right") - 1, 0, len(c) - 1)
        return np.einsum("nb,nb->n", path_basis(self.kind, t.ravel()), c[i.ravel()]).reshape(
            t.shape
        )

    def kinks(self, neuron: str) -> np.ndarray:
        """Parameters where the neuron's slope changes (segments: the exact kinks; circles:
        every breakpoint of the network)."""
        c = self.unit(neuron)
        if self.kind != "line" or len(c) < 2:
            return self.bounds[1:-1] if self.kind != "line" else np.zeros(0)
        slope = c[:, 0]
        scale = float(np.abs(slope).max()) + float(np.abs(c[:, 1]).max()) + 1.0
        return self.bounds[1:-1][np.abs(np.diff(slope)) > 1e-9 * scale]

    def argmax(self, neuron: str) -> tuple[float, float]:
        """``(t, value)`` of the neuron's exact maximum along the path (closed form per piece)."""
        c = self.unit(neuron)
        best_t, best_v = float(self.bounds[0]), -math.inf
        for i in range(len(c)):
            lo, hi = float(self.bounds[i]), float(self.bounds[i + 1])
            cand = [lo, hi]
            if self.kind == "circle":
                a, b = c[i, 0], c[i, 1]
                phi = math.atan2(b, a) % (2 * math.pi)
                cand += [
                    phi + 2 * math.pi * k for k in (-1, 0, 1) if lo <= phi + 2 * math.pi * k <= hi
                ]
            for t in cand:
                v = float(path_basis(self.kind, np.array([t]))[0] @ c[i])
                if v > best_v:
                    best_t, best_v = t, v
        if self.kind == "circle":
            best_t %= 2 * math.pi
        return best_t, best_v


def path_partition(model: Any, kind: str, coef: Any, t0: float, t1: float) -> PathPartition:
    """Every unit along the path ``x(t) = path_basis(kind, t) @ coef``, ``t in [t0, t1]``."""
    where = "path_partition"
    if kind not in ("line", "circle"):
        raise fail(where, "kind", kind, "'line' or 'circle'")
    net = _piecewise_linear(where, as_network(model, where), None)
    nb = 2 if kind == "line" else 3
    c = check_array(where, "coef", coef, shape=(nb, net.input_dim))
    bounds = np.array([t0, t1], np.float64)
    h = c[None]  # (I, nb, d)
    flat = np.zeros((1, nb, 0))
    pairs = net.dense_layers()
    for k, ((w, b), name) in enumerate(zip(pairs, net.activations, strict=True)):
        act = get_activation(name)
        z = h @ w
        z[:, -1, :] += b
        roots_t = [
            _roots(kind, z, beta, bounds[:-1], bounds[1:])[1] for beta in act.breakpoints or ()
        ]
        new_t = np.concatenate(roots_t) if roots_t else np.zeros(0)
        if len(new_t):
            old = bounds
            bounds = np.unique(np.concatenate([bounds, new_t]))
            gap = 1e-13 * max(abs(t1 - t0), 1.0)  # merge near-duplicates, keep both ends
            keep = np.concatenate([[True], np.diff(bounds) > gap])
            keep[-1] = True
            bounds = bounds[keep]
            mids = 0.5 * (bounds[:-1] + bounds[1:])
            parent = np.clip(np.searchsorted(old, mids, side="right") - 1, 0, len(old) - 2)
            z, flat = z[parent], flat[parent]
        mids = 0.5 * (bounds[:-1] + bounds[1:])
        zmid = np.einsum("ib,ibj->ij", path_basis(kind, mids), z)
        slopes, offs = act.piece_arrays()
        pat = act.piece(zmid)
        post = z * slopes[pat][:, None, :]
        post[:, -1, :] += offs[pat]
        last_identity = k == net.num_layers - 1 and name == "identity"
        flat = np.concatenate([flat, post] if last_identity else [flat, z, post], axis=2)
        h = post
    return PathPartition(net, kind, c, bounds, flat)


def segment_partition(model: Any, start: Any, end: Any) -> PathPartition:
    """Every unit along the segment from ``start`` (``s = 0``) to ``end`` (``s = 1``)."""
    p0 = np.asarray(start, np.float64)
    p1 = np.asarray(end, np.float64)
    return path_partition(model, "line", np.stack([p1 - p0, p0]), 0.0, 1.0)


def circle_partition(model: Any, center: Any, start: Any) -> PathPartition:
    """Every unit along the circle through ``start`` about ``center`` (2-D; ``t in [0, 2 pi]``)."""
    c, x0 = np.asarray(center, np.float64), np.asarray(start, np.float64)
    if c.shape != (2,) or x0.shape != (2,):
        raise fail("circle_partition", "center, start", (c.shape, x0.shape), "two 2-D points")
    v = x0 - c
    return path_partition(
        model, "circle", np.stack([v, np.array([-v[1], v[0]]), c]), 0.0, 2 * math.pi
    )


def integrated_gradients(
    model: Any, neuron: str, x: Any, baseline: Any = None
) -> tuple[np.ndarray, int]:
    """Exact integrated gradients of ``neuron`` at ``x`` from ``baseline`` (default 0).

    Returns ``(ig (d,), number of linear pieces the path crosses)``; float64.
    """
    net = as_network(model, "integrated_gradients").numpy(np.float64)
    xv = np.asarray(x, np.float64)
    x0 = np.zeros_like(xv) if baseline is None else np.asarray(baseline, np.float64)
    path = segment_partition(net, x0, xv)
    mids = 0.5 * (path.bounds[:-1] + path.bounds[1:])
    g = net.gradient(path.points(mids), neuron)  # (I, d)
    return (xv - x0) * (np.diff(path.bounds)[:, None] * g).sum(0), path.num_pieces
