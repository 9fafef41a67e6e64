r"""A neuron's whole activation distribution under the data, and masses of disks.

* :func:`activation_cdf`: ``F(t) = P(a(x) < t)`` (or ``<= t``) exactly. Every region of
  the analysis' support partition (:attr:`toylab.exact.Analysis.support`) is clipped by
  the level line ``a = t`` and the pieces' masses come from
  :func:`toylab.exact.region_moments`, so ``F`` has the analysis' tier and error (on a
  finite domain it is a sum over the inputs).
* :func:`activation_quantile`: the smallest ``t`` with ``P(a <= t) >= q``, bracketed by
  bisection on the exact CDF: the result is an interval ``[lower, upper]`` that contains
  the quantile (tier ``"certified"`` when the CDF is exact, else the CDF's tier), not a
  point labelled exact.
* :func:`disk_mass`: the probability of a disk (intersected with the domain box),
  bracketed by the masses of the inscribed and circumscribed regular polygons (tier
  ``"certified"`` for Gaussian mixtures).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from toylab._errors import fail
from toylab._validate import check_float, check_int
from toylab.distributions import GaussianMixture
from toylab.exact._polygon import clip_convex, clip_positive, owner
from toylab.exact.analysis import Analysis, _masses
from toylab.exact.queries import _split_flat, region_ranges
from toylab.neurons import NeuronId
from toylab.tiers import Tier, weakest

__all__ = ["QuantileResult", "activation_cdf", "activation_quantile", "disk_mass"]


def activation_cdf(
    analysis: Analysis, neuron: str | NeuronId, ts: Any, *, strict: bool = True
) -> np.ndarray:
    """``P(a < t)`` (``strict``) or ``P(a <= t)`` for every ``t`` in ``ts`` (see the module
    docstring); its tier and error are the analysis' (``analysis.tier``, ``analysis.error``)."""
    nid = analysis.network.resolve(neuron)
    ts = np.atleast_1d(np.asarray(ts, np.float64))
    if analysis.kind == "finite":
        dom = analysis.dist.domain
        vals = analysis.table[nid.key][:, nid.unit] if analysis._table is not None else (
            analysis.network.numpy(np.float64).values(np.asarray(dom.inputs, np.float64), nid)
        )  # fmt: skip
        p = np.asarray(dom.probs, np.float64)
        below = vals[None, :] < ts[:, None] if strict else vals[None, :] <= ts[:, None]
        return below.astype(np.float64) @ p
    part = analysis.support
    maps = part.local_maps[nid.key][:, nid.unit]
    vmin, vmax = region_ranges(part, nid.key, nid.unit)
    m0 = analysis.support_moments.m0.sum(0)
    scale = float(np.abs(np.concatenate([vmin, vmax])).max()) + 1.0
    eps = 1e-12 * scale
    if strict:
        below = vmax[None] < ts[:, None] - eps
    else:
        below = (vmax[None] <= ts[:, None] + eps) | (
            (vmin[None] >= ts[:, None] - eps) & (vmax[None] <= ts[:, None] + eps)
        )
    out = below.astype(np.float64) @ m0
    ti, ri = np.nonzero((vmin[None] < ts[:, None] - eps) & (vmax[None] > ts[:, None] + eps))
    if len(ti):
        lens = np.diff(part.offsets)[ri]
        off = np.concatenate([[0], np.cumsum(lens)])
        ent = np.repeat(part.offsets[ri] - off[:-1], lens) + np.arange(off[-1])
        xy = part.local_vertices[part.ring[ent]]
        pid = owner(off)
        g = maps[ri][pid]
        f = ts[ti][pid] - (g[:, 0] * xy[:, 0] + g[:, 1] * xy[:, 1] + g[:, 2])
        cxy, coff, src = clip_positive(xy, off, f, eps, keep_flat=False)
        if len(src):
            rtol = max(analysis.rtol, 1e-12)  # the analysis' own quadrature tolerance
            pm, _ = _masses(analysis.dist, _split_flat(cxy, coff), rtol, part.origin)
            np.add.at(out, ti[src], pm)
    return np.clip(out, 0.0, 1.0)


@dataclasses.dataclass(frozen=True)
class QuantileResult:
    """A quantile bracketed on the exact CDF: ``P(a <= lower) < q <= P(a <= upper)``.

    The quantile lies in ``[lower, upper]`` (width at most ``rtol`` of the neuron's
    range); ``value`` is ``upper``, ``error`` the bracket's width.
    """

    q: float
    lower: float
    upper: float
    tier: Tier

    @property
    def value(self) -> float:
        return self.upper

    @property
    def error(self) -> float:
        return self.upper - self.lower


def activation_quantile(
    analysis: Analysis,
    neuron: str | NeuronId,
    q: float,
    *,
    rtol: float = 1e-7,
    start: tuple[float, float] | None = None,
    num_points: int = 63,
) -> QuantileResult:
    """The ``q``-quantile of the neuron's activation, bracketed on the exact CDF (see
    :class:`QuantileResult`) to a width of at most ``rtol`` times the neuron's range.

    Each round evaluates the CDF at ``num_points`` levels of the current bracket.
    ``start`` is a guess ``(low, high)`` (e.g. sample quantiles): it is checked on the
    CDF first, and the bracket falls back to the neuron's whole range on the side where
    the guess is wrong, so a bad guess costs time, never correctness.
    """
    where = "activation_quantile"
    q = check_float(where, "q", q, minimum=0.0, maximum=1.0)
    rtol = check_float(where, "rtol", rtol, positive=True)
    num_points = check_int(where, "num_points", num_points, minimum=1)
    nid = analysis.network.resolve(neuron)
    ext = analysis.extrema(nid.key)
    vmin, vmax = float(ext.min[nid.unit]), float(ext.max[nid.unit])
    if analysis.kind == "plane":  # the support extends beyond the domain box
        rmin, rmax = region_ranges(analysis.support, nid.key, nid.unit)
        vmin, vmax = min(vmin, float(rmin.min())), max(vmax, float(rmax.max()))
    tier: Tier = weakest("certified", analysis.tier)
    span = vmax - vmin
    if span <= 0:
        return QuantileResult(q, vmin, vmax, tier)
    lo, hi = vmin, vmax
    if start is not None:
        guess = np.asarray(start, np.float64) if _is_pair(start) else None
        if guess is None or not np.all(np.isfinite(guess)):
            raise fail(where, "start", start, "a pair of finite numbers (low, high)")
        s0, s1 = sorted(float(np.clip(v, vmin, vmax)) for v in guess)
        if s1 - s0 < rtol * span:
            s0, s1 = max(vmin, s0 - rtol * span), min(vmax, s1 + rtol * span)
        f_min, f0, f1 = activation_cdf(analysis, nid, [vmin, s0, s1], strict=False)
        if f_min >= q:  # an atom at the minimum holds the quantile
            return QuantileResult(q, vmin, vmin, tier)
        lo, hi = (vmin, s0) if f0 >= q else ((s1, vmax) if f1 < q else (s0, s1))
    while hi - lo > rtol * span:
        grid = np.linspace(lo, hi, num_points + 2)[1:-1]
        f = activation_cdf(analysis, nid, grid, strict=False)
        j = int(np.searchsorted(f, q))  # first interior level with F >= q
        lo, hi = (float(grid[j - 1]) if j > 0 else lo), (float(grid[j]) if j < len(f) else hi)
    return QuantileResult(q, lo, hi, tier)


def _is_pair(value: Any) -> bool:
    try:
        return np.asarray(value, np.float64).shape == (2,)
    except (TypeError, ValueError):
        return False


def disk_mass(
    dist: Any, center: Any, radius: float, *, num_sides: int = 256
) -> tuple[float, float, Tier]:
    """``(lower, upper, tier)`` bracketing the probability of the disk ``B(center, radius)``
    intersected with the domain box.

    The disk holds the inscribed regular ``num_sides``-gon and lies inside the
    circumscribed one; both, clipped to the box, are convex polygons measured by
    :func:`toylab.exact.region_moments` (the bracket's relative width is about
    ``(pi / num_sides)^2``). Certified for Gaussian mixtures, estimated otherwise.
    """
    where = "disk_mass"
    radius = check_float(where, "radius", radius, positive=True)
    c = np.asarray(center, np.float64)
    if c.shape != (2,):
        raise fail(where, "center", c.shape, "a 2-D point")
    low, high = np.asarray(dist.domain.low, np.float64), np.asarray(dist.domain.high, np.float64)
    ang = 2 * np.pi * np.arange(num_sides) / num_sides
    ring = np.stack([np.cos(ang), np.sin(ang)], 1)
    out = []
    tier: Tier = "certified"
    for r in (radius, radius / math.cos(math.pi / num_sides)):
        poly = c + r * ring
        for g, off in (((1.0, 0.0), -low[0]), ((-1.0, 0.0), high[0]),
                       ((0.0, 1.0), -low[1]), ((0.0, -1.0), high[1])):  # fmt: skip
            poly = clip_convex(poly, np.asarray(g), off)
            if len(poly) < 3:
                break
        if len(poly) < 3:
            out.append(0.0)
            continue
        m, e = _masses(dist, [poly], 1e-10)
        if not isinstance(dist, GaussianMixture):
            tier = "estimated"
        out.append(float(m.sum() + (e.sum() if r > radius else -e.sum())))
    return max(out[0], 0.0), min(out[1], 1.0), tier
