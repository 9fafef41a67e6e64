"""Shared machinery of the sampled methods: networks as arrays, flat neuron indices,
JAX forward passes vmappable over members, and the exact pieces every score needs.

A model enters as a toylab MLP (or a sequence of MLPs with one architecture: an
ensemble). Internally it is two things:

* float64 NumPy ``(W, b)`` pairs (``model.affine_layers()``) for the exact side;
* float32 JAX ``(W, b)`` pairs, stacked over members with a leading axis, for the
  sampled side, so every sampled computation is one ``jax.vmap`` over members.

Every neuron has a *flat index* into the concatenation of all layers in network
order ``[hidden_0.pre, hidden_0, hidden_1.pre, ..., output]``; a dynamic flat
index lets one compiled program serve every neuron.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from toylab._errors import ToylabError, fail
from toylab.activations import LEAKY_SLOPE, PIECEWISE_LINEAR, get_activation
from toylab.exact import clip_convex, region_moments
from toylab.neurons import NeuronId, resolve

__all__ = [
    "LocalMaxima",
    "Net",
    "as_nets",
    "ball_mass",
    "flat_index",
    "jax_flat",
    "local_maxima",
    "np_flat",
    "np_grad",
    "propagate",
]

_BREAKS = {
    n: a.breakpoints
    for n, a in __import__("toylab.activations").activations.ACTIVATIONS.items()
    if a.breakpoints is not None
}
_PIECES = {
    n: a.pieces
    for n, a in __import__("toylab.activations").activations.ACTIVATIONS.items()
    if a.breakpoints is not None
}


def _piece(act: str, z: np.ndarray) -> np.ndarray:
    if act == "hardtanh":
        return (z >= -1.0).astype(np.int64) + (z > 1.0)
    if act == "identity":
        return np.zeros(z.shape, np.int64)
    return (z > 0).astype(np.int64)


# --------------------------------------------------------------------------- networks


@dataclasses.dataclass(frozen=True, eq=False)
class Net:
    """One architecture and its members: float64 layers per member, stacked JAX params."""

    models: tuple[Any, ...]
    layers: tuple[tuple[tuple[np.ndarray, np.ndarray], ...], ...]  # per member
    acts: tuple[str, ...]
    widths: dict[str, int]
    params: tuple[tuple[jax.Array, jax.Array], ...]  # (W (M, in, out), b (M, out)) per layer
    ensemble: bool
    cache: dict[Any, Any] = dataclasses.field(default_factory=dict)

    @property
    def num_members(self) -> int:
        return len(self.models)

    @property
    def piecewise_linear(self) -> bool:
        return all(a in PIECEWISE_LINEAR for a in self.acts)

    def exact(self, m: int, dist: Any) -> Any:
        """:func:`toylab.exact.analyze` of member ``m`` (computed once), or an error."""
        key = ("analyze", m, id(dist))
        if key not in self.cache:
            from toylab.exact import analyze

            try:
                res = analyze(self.models[m], dist)
                res.geometry  # noqa: B018 - planar analyses only
            except ToylabError:
                raise ToylabError(
                    "the exact answer needs a piecewise-linear MLP on a 2-D continuous "
                    f"distribution with an exact analysis; got activations {list(self.acts)} on "
                    f"{type(dist).__name__}. Use a relu-family MLP on a 2-D Gaussian mixture."
                ) from None
            self.cache[key] = res
        return self.cache[key]

    def member_params(self, m: int) -> tuple[tuple[jax.Array, jax.Array], ...]:
        return tuple((w[m], b[m]) for w, b in self.params)


def as_nets(where: str, model: Any) -> Net:
    """A model or a sequence of models of one architecture as a :class:`Net`."""
    ensemble = isinstance(model, list | tuple)
    models = tuple(model) if ensemble else (model,)
    if not models:
        raise fail(where, "model", model, "a toylab MLP or a non-empty sequence of MLPs")
    per: list[tuple[tuple[np.ndarray, np.ndarray], ...]] = []
    acts0: tuple[str, ...] | None = None
    for i, m in enumerate(models):
        if not hasattr(m, "affine_layers") or not hasattr(m, "widths"):
            raise fail(
                where, "model" if not ensemble else f"model[{i}]", type(m).__name__,
                "a toylab MLP (toylab.models.MLP or MLP.from_weights)",
            )  # fmt: skip
        layers, acts = m.affine_layers()
        shapes = [w.shape for w, _ in layers]
        if acts0 is None:
            acts0, shapes0 = tuple(acts), shapes
        elif tuple(acts) != acts0 or shapes != shapes0:
            raise fail(
                where, f"model[{i}]", f"layers {shapes}, activations {list(acts)}",
                f"the same architecture as model[0] ({shapes0}, {list(acts0)})",
                "An ensemble's members must share one architecture.",
            )  # fmt: skip
        per.append(tuple((np.asarray(w, np.float64), np.asarray(b, np.float64)) for w, b in layers))
    assert acts0 is not None
    num_layers = len(per[0])
    params = tuple(
        (
            jnp.asarray(np.stack([p[k][0] for p in per]), jnp.float32),
            jnp.asarray(np.stack([p[k][1] for p in per]), jnp.float32),
        )
        for k in range(num_layers)
    )
    return Net(models, tuple(per), acts0, dict(models[0].widths), params, ensemble)


def layer_keys(num_hidden: int) -> list[str]:
    keys = []
    for k in range(num_hidden):
        keys += [f"hidden_{k}.pre", f"hidden_{k}"]
    return [*keys, "output"]


def flat_offsets(widths: dict[str, int]) -> dict[str, int]:
    num_hidden = sum(1 for k in widths if k.startswith("hidden_") and not k.endswith(".pre"))
    out, o = {}, 0
    for key in layer_keys(num_hidden):
        out[key] = o
        o += widths[key]
    return out


def flat_index(where: str, widths: dict[str, int], neuron: Any) -> tuple[NeuronId, int]:
    """The neuron's canonical id and its flat index (see the module docstring)."""
    if neuron is None or (isinstance(neuron, str) and neuron.startswith("input")):
        raise fail(where, "neuron", neuron, "a neuron address like 'hidden_0:3'")
    nid = resolve(neuron, widths)
    return nid, flat_offsets(widths)[nid.key] + nid.unit


def hidden_neurons(widths: dict[str, int]) -> list[str]:
    """Every post-activation hidden neuron's address, in network order."""
    keys = [k for k in widths if k.startswith("hidden_") and not k.endswith(".pre")]
    keys.sort(key=lambda k: int(k.split("_")[1]))
    return [f"{k}:{u}" for k in keys for u in range(widths[k])]


def jax_flat(params: Sequence[tuple[jax.Array, jax.Array]], acts: Sequence[str], x: jax.Array,
             patch: tuple[Any, Any, Any] | None = None) -> jax.Array:  # fmt: skip
    """All layers' values at ``x (..., d)`` concatenated along the last axis (flat order).

    ``patch = (flat_mask (F,), values (..., F))`` replaces the post-activation
    values where ``flat_mask`` is true by ``values`` before they feed the next layer.
    """
    outs = []
    h = x
    o = 0
    for k, act in enumerate(acts):
        w, b = params[k]
        pre = h @ w + b
        h = get_activation(act)(pre)
        n = pre.shape[-1]
        if patch is not None:
            mask, vals = patch[0], patch[1]
            seg = jax.lax.dynamic_slice_in_dim(mask, o + n, n)
            vseg = jax.lax.dynamic_slice_in_dim(vals, o + n, n, axis=-1)
            h = jnp.where(seg, vseg, h)
        outs += [pre, h]
        o += 2 * n
    w, b = params[-1]
    outs.append(h @ w + b)
    return jnp.concatenate(outs, axis=-1)


def np_flat(layers: Sequence[tuple[np.ndarray, np.ndarray]], acts: Sequence[str],
            x: np.ndarray) -> np.ndarray:  # fmt: skip
    """Float64 NumPy version of :func:`jax_flat` (no patch)."""
    from toylab.activations import ACTIVATIONS as NUMPY_ACTIVATIONS

    h = np.asarray(x, np.float64)
    outs = []
    for k, act in enumerate(acts):
        w, b = layers[k]
        pre = h @ w + b
        h = NUMPY_ACTIVATIONS[act](pre)
        outs += [pre, h]
    w, b = layers[-1]
    outs.append(h @ w + b)
    return np.concatenate(outs, axis=-1)


def _act_slope(act: str, z: np.ndarray) -> np.ndarray:
    if act == "relu":
        return (z > 0).astype(np.float64)
    if act == "leaky_relu":
        return np.where(z > 0, 1.0, LEAKY_SLOPE)
    if act == "abs":
        return np.sign(z)
    if act == "hardtanh":
        return ((z > -1.0) & (z < 1.0)).astype(np.float64)
    if act == "identity":
        return np.ones_like(z)
    raise ToylabError(f"np_grad: activation {act!r} is not piecewise linear.")


def np_grad(layers: Sequence[tuple[np.ndarray, np.ndarray]], acts: Sequence[str],
            x: np.ndarray, flat: int) -> np.ndarray:  # fmt: skip
    """Float64 gradient ``(N, d)`` of flat unit ``flat`` at points ``x (N, d)``.

    For piecewise-linear networks this is the exact gradient of the affine piece
    containing each point (the activation pattern at the point decides it).
    """
    x = np.asarray(x, np.float64)
    d = x.shape[-1]
    jac = np.broadcast_to(np.eye(d), (*x.shape[:-1], d, d))  # dh/dx, (N, d, width)
    h = x
    o = 0
    for k, act in enumerate(acts):
        w, b = layers[k]
        pre = h @ w + b
        jpre = jac @ w
        n = w.shape[1]
        if o <= flat < o + n:
            return jpre[..., flat - o]
        jac = jpre * _act_slope(act, pre)[..., None, :]
        from toylab.activations import ACTIVATIONS as NUMPY_ACTIVATIONS

        h = NUMPY_ACTIVATIONS[act](pre)
        if o + n <= flat < o + 2 * n:
            return jac[..., flat - o - n]
        o += 2 * n
    w, _ = layers[-1]
    return (jac @ w)[..., flat - o]


# --------------------------------------------------------------------------- exact pieces


def vertex_values(part: Any, key: str, unit: int) -> np.ndarray:
    """The unit's value at every vertex of a partition (maps agree on shared vertices)."""
    from toylab.exact._polygon import owner

    first = np.full(len(part.vertices), -1, np.int64)
    first[part.ring[::-1]] = owner(part.offsets)[::-1]
    m = part.maps[key][first, unit]
    return m[:, 0] * part.vertices[:, 0] + m[:, 1] * part.vertices[:, 1] + m[:, 2]


def partition_edges(part: Any) -> np.ndarray:
    """Every edge of the partition once, as vertex-id pairs ``(E, 2)``."""
    from toylab.exact._polygon import next_index

    a = part.ring
    b = part.ring[next_index(part.offsets)]
    e = np.stack([np.minimum(a, b), np.maximum(a, b)], axis=1)
    e = e[e[:, 0] != e[:, 1]]
    return np.unique(e, axis=0)


@dataclasses.dataclass(frozen=True, eq=False)
class LocalMaxima:
    """Exact local maxima of one unit over a partition's domain.

    ``values[i]`` is the value of local maximum ``i``; ``points[i]`` its vertices
    ``(n_i, 2)`` (one for a strict maximum; several for a plateau);
    ``segments[i]`` the flat edges joining them ``(s_i, 2, 2)``. Sorted by value,
    largest first.
    """

    values: np.ndarray
    points: tuple[np.ndarray, ...]
    segments: tuple[np.ndarray, ...]
    tol: float

    def distance(self, x: np.ndarray) -> np.ndarray:
        """Distance ``(N, K)`` from points ``x (N, 2)`` to every local maximum's set."""
        x = np.asarray(x, np.float64)
        out = np.empty((len(x), len(self.values)))
        for i, (pts, segs) in enumerate(zip(self.points, self.segments, strict=True)):
            d = np.sqrt(((x[:, None, :] - pts[None]) ** 2).sum(-1)).min(1)
            if len(segs):
                a, b = segs[:, 0], segs[:, 1]
                ab = b - a
                t = np.clip(((x[:, None] - a[None]) * ab[None]).sum(-1)
                            / np.maximum((ab**2).sum(-1), 1e-300)[None], 0.0, 1.0)  # fmt: skip
                proj = a[None] + t[..., None] * ab[None]
                d = np.minimum(d, np.sqrt(((x[:, None] - proj) ** 2).sum(-1)).min(1))
            out[:, i] = d
        return out


def local_maxima(part: Any, key: str, unit: int, *, rtol: float = 1e-9) -> LocalMaxima:
    r"""Exact local maxima of a piecewise-linear unit on a 2-D partition.

    **Definition.** The unit is affine on every region, so near a vertex ``v`` it is
    at most ``f(v)`` iff it does not increase along any partition edge leaving
    ``v`` (every region's cone at ``v`` is spanned by its two edges at ``v``), and a
    local maximum in the interior of a region or an edge forces the unit to be
    constant there. So: join vertices by *flat* edges (values equal within
    ``tol = rtol * (max |f| + 1)``); a connected set ``C`` of such vertices is a
    **local maximum** iff no edge leaves ``C`` towards a strictly higher value
    (``> f(C) + tol``). A strict maximum is a single vertex; a *plateau* (a flat
    edge or region at the top of its neighbourhood, e.g. a ridge) is one local
    maximum however many vertices it has. A dead ReLU region is not a local
    maximum unless every neighbour is also at most 0, since its flat component
    reaches the zero line where the neuron starts to rise.
    """
    f = vertex_values(part, key, unit)
    tol = rtol * (float(np.abs(f).max()) + 1.0)
    e = partition_edges(part)
    fa, fb = f[e[:, 0]], f[e[:, 1]]
    flat = np.abs(fa - fb) <= tol
    nv = len(f)
    ef = e[flat]
    graph = coo_matrix((np.ones(len(ef)), (ef[:, 0], ef[:, 1])), shape=(nv, nv))
    _, label = connected_components(graph, directed=False)
    higher = np.zeros(label.max() + 1, bool)
    up_a = ~flat & (fb > fa + tol)  # edge rises from a to b
    up_b = ~flat & (fa > fb + tol)
    higher[label[e[up_a, 0]]] = True
    higher[label[e[up_b, 1]]] = True
    comps = np.nonzero(~higher)[0]
    # vertices that appear in no edge (none in a valid partition) are ignored
    used = np.zeros(nv, bool)
    used[e.ravel()] = True
    vals, pts, segs = [], [], []
    for c in comps:
        members = np.nonzero((label == c) & used)[0]
        if not len(members):
            continue
        vals.append(float(f[members].max()))
        pts.append(part.vertices[members])
        inside = flat & (label[e[:, 0]] == c)
        segs.append(np.stack([part.vertices[e[inside, 0]], part.vertices[e[inside, 1]]], 1))
    order = np.argsort(vals)[::-1]
    return LocalMaxima(
        np.asarray(vals)[order],
        tuple(pts[i] for i in order),
        tuple(segs[i].reshape(-1, 2, 2) for i in order),
        tol,
    )


def region_values(part: Any, maps_u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Min and max ``(R,)`` of per-region affine maps ``(R, 3)`` over each region."""
    xy = part.vertices[part.ring]
    from toylab.exact._polygon import owner

    pid = owner(part.offsets)
    mm = maps_u[pid]
    v = mm[:, 0] * xy[:, 0] + mm[:, 1] * xy[:, 1] + mm[:, 2]
    return np.minimum.reduceat(v, part.offsets[:-1]), np.maximum.reduceat(v, part.offsets[:-1])


def ball_mass(dist: Any, center: np.ndarray, radius: float, *, num_sides: int = 256,
              ) -> tuple[float, float]:  # fmt: skip
    """Guaranteed bracket ``(lo, hi)`` of the mixture mass of the disk ``B(center, radius)``
    intersected with the domain box (tier ``"bounded"``).

    The disk holds the inscribed regular ``num_sides``-gon and lies inside the
    circumscribed one; both, clipped to the domain box, are convex polygons whose
    Gaussian-mixture masses are exact (:func:`toylab.exact.mixture_polygon_moments`).
    The bracket's relative width is about ``(pi / num_sides)^2``.
    """
    ang = 2 * np.pi * np.arange(num_sides) / num_sides
    ring = np.stack([np.cos(ang), np.sin(ang)], 1)
    lo_box, hi_box = np.asarray(dist.domain.low), np.asarray(dist.domain.high)
    out = []
    for r in (radius, radius / math.cos(math.pi / num_sides)):
        poly = np.asarray(center, np.float64) + r * ring
        for g, c in (((1.0, 0.0), -lo_box[0]), ((-1.0, 0.0), hi_box[0]),
                     ((0.0, 1.0), -lo_box[1]), ((0.0, -1.0), hi_box[1])):  # fmt: skip
            poly = clip_convex(poly, np.asarray(g), float(c))
            if len(poly) < 3:
                break
        if len(poly) < 3:
            out.append(0.0)
        else:
            out.append(float(region_moments(dist, [poly]).m0.sum()))
    return out[0], out[1]


# --------------------------------------------------------------------------- 1-D paths


def path_basis(kind: str, t: np.ndarray) -> np.ndarray:
    """Basis functions of a path parameter: line ``(s, 1)``; circle ``(cos, sin, 1)``."""
    t = np.asarray(t, np.float64)
    if kind == "line":
        return np.stack([t, np.ones_like(t)], -1)
    return np.stack([np.cos(t), np.sin(t), np.ones_like(t)], -1)


def _roots(kind: str, z: np.ndarray, beta: float, ta: np.ndarray, tb: np.ndarray,
           ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Where ``basis(t) @ z[i, :, j] == beta`` strictly inside ``(ta[i], tb[i])``.

    Returns ``(interval index, t)`` arrays.
    """
    span = tb - ta
    eps = 1e-12 * np.maximum(np.abs(span), 1.0)
    if kind == "line":
        a, c = z[:, 0, :], z[:, 1, :]
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (beta - c) / a
        cand = [t]
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
            t = phi + sgn * d
            t = np.where(ok, t, np.nan)
            # bring into [ta, ta + 2 pi)
            t = ta[:, None] + np.mod(t - ta[:, None], 2 * np.pi)
            cand.append(t)
    ii, tt = [], []
    for t in cand:
        inside = np.isfinite(t) & (t > (ta + eps)[:, None]) & (t < (tb - eps)[:, None])
        i, _ = np.nonzero(inside)
        ii.append(i)
        tt.append(t[inside])
    return np.concatenate(ii), np.concatenate(tt)


def propagate(layers: Sequence[tuple[np.ndarray, np.ndarray]], acts: Sequence[str],
              kind: str, coef: np.ndarray, t0: float, t1: float,
              ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    r"""Exact piecewise form of every unit along a 1-D path through input space.

    The input is ``x(t) = basis(t) @ coef`` (``coef`` of shape ``(nb, d)``): a
    segment with ``basis = (s, 1)`` or a circle with ``basis = (cos t, sin t, 1)``.
    Layer by layer, every unit is ``basis(t) @ z`` on each current interval (a
    composition of affine maps); its breakpoints (``z = 0``, ``z = ±1`` for
    hardtanh) are solved in closed form (linear, or ``R cos(t - φ) = β - C``),
    the intervals are split there, and the active piece on each sub-interval is
    read at its midpoint. Returns ``(bounds (I+1,), coefs (I, nb, F))``: on
    ``[bounds[i], bounds[i+1]]`` flat unit ``j`` equals ``basis(t) @ coefs[i, :, j]``
    (flat order of the module docstring), exactly up to float64 rounding.
    """
    bounds = np.array([t0, t1], np.float64)
    h = np.asarray(coef, np.float64)[None]  # (I, nb, d)
    flat = np.zeros((1, h.shape[1], 0))
    for k, act in enumerate(acts):
        w, b = layers[k]
        z = h @ w
        z[:, -1, :] += b
        roots_i, roots_t = [], []
        for beta in _BREAKS[act]:
            i, t = _roots(kind, z, beta, bounds[:-1], bounds[1:])
            roots_i.append(i)
            roots_t.append(t)
        new_t = np.concatenate(roots_t)
        old_bounds = bounds
        if len(new_t):
            bounds = np.unique(np.concatenate([bounds, new_t]))
            # drop near-duplicates (closer than rounding), keeping both ends
            gap = 1e-13 * max(abs(t1 - t0), 1.0)
            keep = np.concatenate([[True], np.diff(bounds) > gap])
            keep[-1] = True
            bounds = bounds[keep]
            mids = 0.5 * (bounds[:-1] + bounds[1:])
            parent = np.clip(np.searchsorted(old_bounds, mids, side="right") - 1, 0,
                             len(old_bounds) - 2)  # fmt: skip
            z, flat = z[parent], flat[parent]
        mids = 0.5 * (bounds[:-1] + bounds[1:])
        zmid = np.einsum("ib,ibj->ij", path_basis(kind, mids), z)
        pat = _piece(act, zmid)
        pieces = np.asarray(_PIECES[act])
        post = z * pieces[pat, 0][:, None, :]
        post[:, -1, :] += pieces[pat, 1]
        flat = np.concatenate([flat, z, post], axis=2)
        h = post
    w, b = layers[-1]
    z = h @ w
    z[:, -1, :] += b
    return bounds, np.concatenate([flat, z], axis=2)


@functools.cache
def _z(level: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(0.5 + level / 2))


def normal_ci(mean: float, se: float, level: float = 0.95) -> tuple[float, float]:
    """Two-sided normal confidence interval."""
    z = _z(level)
    return float(mean - z * se), float(mean + z * se)
