r"""The sampled methods of the curve-detector work, scored against the certified answer.

Each score is a :class:`toylab.methods.MethodResult`: ``sampled`` is the method's
answer (tier ``sampled``), ``exact`` the midpoint of the certified counterpart from
:mod:`toylab.curves.tuning` (``error_tier == "certified"``, ``exact_error`` its
enclosure half-width), ``error = exact - sampled``; every derived bracket is
certified because it subtracts a known number from a certified enclosure.

* :func:`score_sweep` -- a synthetic sweep: the response at the points of a grid over
  one or two parameters (others fixed), what the Curve Detectors article drew as a
  heat map. Scored: its maximum against the certified maximum over the swept slice
  (``[slice.lower - grid_max, slice.upper - grid_max]``: what it misses between grid
  points) and over the whole family; and the heat map as a function: the largest
  difference ``sup |g(a) - I(a)|`` between the response ``g`` and the grid's
  (bi)linear interpolant ``I``, enclosed using the certified tuning cells. Each tuning
  cell lies inside one grid cell, where ``I`` is (bi)linear, so ``I`` on the tuning
  cell ranges over its values at the cell's corners ``[i_min, i_max]`` and
  ``|g - I| <= max(upper - i_min, i_max - lower)`` there (certified); the attained
  ``|g(c) - I(c)|`` at the cells' centres is a lower bound.
* :func:`score_dataset` -- dataset examples: the top ``k`` responses among ``n`` sampled
  images, against the certified family maximum; the distance of their latent
  parameters to the certified argmax (relative to each parameter's range).
* :func:`score_featureviz` -- feature visualization in pixel space: projected gradient
  ascent on the flat image in a pixel box (:func:`toylab.methods.featureviz.run_ascent`),
  against the certified family maximum in both directions (pixel space holds every
  family image, so the ascent may legitimately end *above* the family's maximum:
  ``above_family`` is certified when the value exceeds the certified upper bound,
  ``below_family`` when it stays under the attained family value), and the Pearson
  correlation of its best image with the family's best image ("does gradient ascent
  find a curve?").

**Misleads** (each class): the certified lower bound of the miss exceeds 5% of the
certified range of the response over the family (``max.upper - min.lower``), so the
verdict is certified too.
"""

from __future__ import annotations

import dataclasses
import itertools
import types
from typing import Any, ClassVar

import jax
import numpy as np

from toylab._errors import fail
from toylab._validate import check_float, check_int
from toylab.curves.tuning import (
    FamilyMaxResult,
    TuningResult,
    _problem,
    _resolve_box,
    certified_max,
    certified_min,
    tuning,
)
from toylab.methods._core import MISLEAD_FRACTION, MethodResult, as_members, check_key, numpy_rng
from toylab.tiers import Tier

__all__ = [
    "DatasetScore",
    "FeatureVizScore",
    "SweepScore",
    "pixel_box",
    "score_dataset",
    "score_featureviz",
    "score_sweep",
]

_INTERP_PAD = 1e-12  # relative pad on the float64 interpolant's corner values


def _extremes(
    model: Any, family: Any, neuron: str, gap: float, max_boxes: int, given: Any
) -> tuple[FamilyMaxResult, FamilyMaxResult]:
    if given is not None:
        return given
    return (
        certified_max(model, family, neuron, gap=gap, max_boxes=max_boxes),
        certified_min(model, family, neuron, gap=gap, max_boxes=max_boxes),
    )


def _misleads(miss_lower: float, fmax: FamilyMaxResult, fmin: FamilyMaxResult) -> bool:
    return bool(miss_lower > MISLEAD_FRACTION * max(fmax.upper - fmin.lower, 1e-300))


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    den = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b / den) if den > 0 else float("nan")


# --------------------------------------------------------------------------- sweeps


@dataclasses.dataclass(frozen=True, eq=False, kw_only=True)
class SweepScore(MethodResult):
    """A synthetic sweep on a grid, scored against the certified tuning.

    Uniform fields: ``sampled`` the max over the grid points; ``exact`` the certified
    max over the swept slice (midpoint; ``exact_error`` its half-width); ``error =
    exact - sampled``. ``axes``, ``grid`` (one array of points per axis) and
    ``grid_values`` (shape ``len(grid[0]) x ...``: the heat map); ``grid_argmax``;
    ``slice_max`` (others fixed) and ``family_max``/``family_min`` (every parameter free):
    :class:`~toylab.curves.FamilyMaxResult`; ``miss_slice``/``miss_family``: certified
    ``(lower, upper)`` of what the grid's maximum misses; ``interp_error``:
    ``(lower, upper)`` of ``sup |g - I|`` (lower attained, upper certified);
    ``tuning``: the certified cells used. Misleads: see the module docstring (on
    ``miss_slice``).
    """

    method: ClassVar[str] = "synthetic_sweep"
    score: ClassVar[str] = "max over the swept slice"
    error_measure: ClassVar[str] = "certified slice max - max over the grid points"
    axes: tuple[str, ...]
    grid: tuple[np.ndarray, ...]
    grid_values: np.ndarray
    grid_argmax: np.ndarray
    slice_max: FamilyMaxResult
    family_max: FamilyMaxResult
    family_min: FamilyMaxResult
    miss_slice: tuple[float, float]
    miss_family: tuple[float, float]
    interp_error: tuple[float, float]
    tuning: TuningResult
    tier: Tier = "sampled"

    @property
    def detail(self) -> str:
        return (
            f"miss_slice=[{self.miss_slice[0]:.3g}, {self.miss_slice[1]:.3g}] "
            f"miss_family=[{self.miss_family[0]:.3g}, {self.miss_family[1]:.3g}] "
            f"interp=[{self.interp_error[0]:.3g}, {self.interp_error[1]:.3g}]"
        )


def _interpolant(grid: tuple[np.ndarray, ...], values: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """The (bi)linear interpolant of ``values`` on ``grid`` at ``pts`` ``(N, k)``."""
    idx, frac = [], []
    for a, g in enumerate(grid):
        i = np.clip(np.searchsorted(g, pts[:, a], side="right") - 1, 0, len(g) - 2)
        idx.append(i)
        frac.append((pts[:, a] - g[i]) / (g[i + 1] - g[i]))
    out = np.zeros(len(pts))
    for corner in itertools.product((0, 1), repeat=len(grid)):
        w = np.ones(len(pts))
        for a, c in enumerate(corner):
            w = w * (frac[a] if c else 1.0 - frac[a])
        out += w * values[tuple(idx[a] + c for a, c in enumerate(corner))]
    return out


def score_sweep(
    model: Any,
    family: Any,
    neuron: str,
    *,
    axes: Any = ("theta", "kappa"),
    points: Any = (25, 7),
    fixed: Any = None,
    tol: float = 0.05,
    gap: float = 1e-3,
    max_boxes: int = 20_000,
    extremes: tuple[FamilyMaxResult, FamilyMaxResult] | None = None,
) -> SweepScore:
    """Score a synthetic sweep on a grid of ``points`` (per axis, ends included) over
    ``axes`` (other parameters at ``fixed``, default the centre) against the certified
    answer. ``tol``: the tuning cells' width; ``gap``/``max_boxes``: the certified maxima
    (``extremes``: a precomputed ``(certified_max, certified_min)`` over the family).
    See :class:`SweepScore`.
    """
    where = "score_sweep"
    prob = _problem(where, model, family, neuron)
    pts = (points,) if isinstance(points, int) else tuple(points)
    if not all(isinstance(p, int) and p >= 2 for p in pts):
        raise fail(where, "points", points, "integers >= 2, one per axis")
    res = tuning(model, family, neuron, axes=axes, fixed=fixed, resolution=tuple(p - 1 for p in pts),
                 tol=tol, max_boxes=max_boxes)  # fmt: skip
    idx = [prob.names.index(a) for a in res.axes]
    lo, hi = _resolve_box(where, prob.names, prob.low, prob.high, None)
    grid = tuple(np.linspace(lo[i], hi[i], p) for i, p in zip(idx, pts, strict=True))
    mesh = np.stack(np.meshgrid(*grid, indexing="ij"), -1).reshape(-1, len(idx))
    full = np.broadcast_to(res.fixed, (len(mesh), len(prob.names))).copy()
    full[:, idx] = mesh
    vals = prob.values(full)[0]
    gv = vals.reshape(pts)
    best = int(np.argmax(vals))
    gmax = float(vals[best])
    sbox_lo, sbox_hi = res.fixed.copy(), res.fixed.copy()
    sbox_lo[idx], sbox_hi[idx] = lo[idx], hi[idx]
    smax = certified_max(model, family, neuron, box=(sbox_lo, sbox_hi), gap=gap,
                         max_boxes=max_boxes)  # fmt: skip
    fmax, fmin = _extremes(model, family, neuron, gap, max_boxes, extremes)
    # sup |g - I| over each tuning cell: I's range from the cell's corners
    corners = np.stack([
        np.where(np.asarray(c, bool), res.cell_high, res.cell_low)
        for c in itertools.product((0, 1), repeat=len(idx))
    ], 1)  # fmt: skip
    ic = _interpolant(grid, gv, corners.reshape(-1, len(idx))).reshape(corners.shape[:2])
    pad = _INTERP_PAD * (np.abs(ic).max(1) + 1.0)
    i_min, i_max = ic.min(1) - pad, ic.max(1) + pad
    upper_err = float(np.max(np.maximum(res.upper - i_min, i_max - res.lower)))
    lower_err = float(np.max(np.abs(res.values - _interpolant(grid, gv, res.centres))))
    miss_slice = (smax.lower - gmax, smax.upper - gmax)
    exact = 0.5 * (smax.lower + smax.upper)
    return SweepScore(
        neuron=prob.neuron, sampled=gmax, exact=exact, error=exact - gmax,
        error_tier="certified", exact_error=0.5 * (smax.upper - smax.lower),
        misleads=_misleads(miss_slice[0], fmax, fmin), num_forward=len(vals), num_backward=0,
        axes=res.axes, grid=grid, grid_values=gv, grid_argmax=full[best], slice_max=smax,
        family_max=fmax, family_min=fmin, miss_slice=miss_slice,
        miss_family=(fmax.lower - gmax, fmax.upper - gmax),
        interp_error=(lower_err, max(upper_err, lower_err)), tuning=res,
    )  # fmt: skip


# --------------------------------------------------------------------------- dataset examples


@dataclasses.dataclass(frozen=True, eq=False, kw_only=True)
class DatasetScore(MethodResult):
    """Top-``k`` dataset examples among ``n`` sampled images vs the certified family max.

    Uniform fields: ``sampled`` the top response, ``exact`` the certified family max
    (midpoint), ``error = exact - sampled``. ``top_values`` ``(k,)``, ``top_latent``
    ``(k, P)``, ``top_images`` ``(k, H*W)``; ``miss``: certified ``(lower, upper)`` of
    ``family max - top value``; ``distance`` ``(k,)``: ``max_j |p_j - p*_j| / range_j``
    from each top example's parameters to the certified argmax ``p*`` (the best point
    found; the maximum need not be unique, so this is a description, tier ``sampled``;
    no wrap-around, so an orientation near ``0`` and one near ``2 pi`` are far apart);
    ``image_correlation`` ``(k,)``: Pearson correlation of each top image with the
    family's best image ``render(p*)`` (indifferent to how parameters wrap);
    ``fraction_near_max``: of the ``n`` samples within 5% of the certified range below
    the certified lower bound. Misleads: see the module docstring.
    """

    method: ClassVar[str] = "dataset_examples"
    score: ClassVar[str] = "max over the family"
    error_measure: ClassVar[str] = "certified family max - top sampled response"
    num_samples: int
    top_values: np.ndarray
    top_latent: np.ndarray
    top_images: np.ndarray
    miss: tuple[float, float]
    distance: np.ndarray
    image_correlation: np.ndarray
    fraction_near_max: float
    family_max: FamilyMaxResult
    family_min: FamilyMaxResult
    tier: Tier = "sampled"

    @property
    def detail(self) -> str:
        return f"miss=[{self.miss[0]:.3g}, {self.miss[1]:.3g}] dist={self.distance[0]:.3g}"


def _sample(family: Any, key: jax.Array, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``(images, latent)``: the family's own sampler, or uniform parameters rendered."""
    if hasattr(family, "sample"):
        batch = family.sample(key, n)
        return np.asarray(batch.x, np.float64), np.asarray(batch.latent, np.float64)
    lo, hi = np.asarray(family.param_low, np.float64), np.asarray(family.param_high, np.float64)
    p = lo + numpy_rng(key).random((n, lo.size)) * (hi - lo)
    return np.asarray(family.render(p), np.float64), p


def score_dataset(
    model: Any,
    family: Any,
    neuron: str,
    *,
    key: jax.Array,
    num_samples: int = 10_000,
    k: int = 9,
    gap: float = 1e-3,
    max_boxes: int = 20_000,
    extremes: tuple[FamilyMaxResult, FamilyMaxResult] | None = None,
) -> DatasetScore:
    """Score the top ``k`` of ``num_samples`` images drawn from ``family`` (its ``sample``
    method, else uniform parameters) against the certified family maximum. See
    :class:`DatasetScore`."""
    where = "score_dataset"
    check_key(where, key)
    prob = _problem(where, model, family, neuron)
    n = check_int(where, "num_samples", num_samples, minimum=1)
    k = check_int(where, "k", k, minimum=1, maximum=n)
    x, latent = _sample(family, key, n)
    v = np.asarray(prob.net.values(x, prob.neuron), np.float64)
    top = np.argsort(-v, kind="stable")[:k]
    fmax, fmin = _extremes(model, family, neuron, gap, max_boxes, extremes)
    rng = np.where(prob.high > prob.low, prob.high - prob.low, 1.0)
    dist = np.max(np.abs(latent[top] - fmax.argmax) / rng, axis=1)
    best = float(v[top[0]])
    exact = 0.5 * (fmax.lower + fmax.upper)
    miss = (fmax.lower - best, fmax.upper - best)
    scale = fmax.upper - fmin.lower
    return DatasetScore(
        neuron=prob.neuron, sampled=best, exact=exact, error=exact - best,
        error_tier="certified", exact_error=0.5 * (fmax.upper - fmax.lower),
        misleads=_misleads(miss[0], fmax, fmin), num_forward=n, num_backward=0,
        num_samples=n, top_values=v[top], top_latent=latent[top], top_images=x[top],
        miss=miss, distance=dist,
        image_correlation=np.array([_corr(x[i], fmax.image) for i in top]),
        fraction_near_max=float(np.mean(v >= fmax.lower - MISLEAD_FRACTION * scale)),
        family_max=fmax, family_min=fmin,
    )  # fmt: skip


# --------------------------------------------------------------------------- feature visualization


@dataclasses.dataclass(frozen=True, eq=False, kw_only=True)
class FeatureVizScore(MethodResult):
    """Gradient ascent in pixel space vs the certified maximum over the family.

    Uniform fields: ``sampled`` the best endpoint's response (float64 re-evaluation),
    ``exact`` the certified family max (midpoint), ``error = exact - sampled`` (negative
    when pixel space beats the family). ``above_family``: ``sampled > family_max.upper``
    (certified: no family image reaches it); ``below_family``: ``sampled <
    family_max.lower`` (certified: a rendered family image beats gradient ascent in a
    larger space); ``best_image`` ``(H*W,)``, ``values`` ``(S,)`` per start;
    ``correlation``: Pearson correlation of ``best_image`` with the family's best image
    (``family_max.image``; exact for these two images); ``pixel_low``/``pixel_high``: the
    box searched. Misleads: the ascent stays below the family's attained maximum by more
    than 5% of the certified range (certified).
    """

    method: ClassVar[str] = "feature_visualization_pixels"
    score: ClassVar[str] = "max over the family"
    error_measure: ClassVar[str] = "certified family max - best ascent value"
    values: np.ndarray
    best_image: np.ndarray
    above_family: bool
    below_family: bool
    correlation: float
    pixel_low: np.ndarray
    pixel_high: np.ndarray
    family_max: FamilyMaxResult
    family_min: FamilyMaxResult
    tier: Tier = "sampled"

    @property
    def detail(self) -> str:
        side = "above" if self.above_family else "below" if self.below_family else "within"
        return f"{side} the family max, corr={self.correlation:.2f}"


def pixel_box(family: Any) -> tuple[np.ndarray, np.ndarray]:
    """The family's pixel box: ``family.domain`` when it has one, else the hull of its
    images (``render_bounds`` over the whole parameter box)."""
    dom = getattr(family, "domain", None)
    if dom is not None and hasattr(dom, "low") and hasattr(dom, "high"):
        return np.asarray(dom.low, np.float64), np.asarray(dom.high, np.float64)
    lo, hi = family.render_bounds(family.param_low, family.param_high)
    return np.asarray(lo, np.float64), np.asarray(hi, np.float64)


def score_featureviz(
    model: Any,
    family: Any,
    neuron: str,
    *,
    key: jax.Array,
    num_starts: int = 16,
    num_steps: int = 300,
    learning_rate: float | None = None,
    optimizer: str = "adam",
    pixel_low: Any = None,
    pixel_high: Any = None,
    gap: float = 1e-3,
    max_boxes: int = 20_000,
    extremes: tuple[FamilyMaxResult, FamilyMaxResult] | None = None,
) -> FeatureVizScore:
    """Feature visualization (projected gradient ascent from ``num_starts`` uniform
    random images in the pixel box, :func:`toylab.methods.featureviz.run_ascent`) scored
    against the certified family maximum. The pixel box defaults to
    :func:`pixel_box`. See :class:`FeatureVizScore`."""
    from toylab.methods.featureviz import run_ascent

    where = "score_featureviz"
    check_key(where, key)
    prob = _problem(where, model, family, neuron)
    num_starts = check_int(where, "num_starts", num_starts, minimum=1)
    num_steps = check_int(where, "num_steps", num_steps, minimum=1)
    if learning_rate is not None:
        learning_rate = check_float(where, "learning_rate", learning_rate, positive=True)
    plo, phi = pixel_box(family)
    if pixel_low is not None:
        plo = np.broadcast_to(np.asarray(pixel_low, np.float64), plo.shape).copy()
    if pixel_high is not None:
        phi = np.broadcast_to(np.asarray(pixel_high, np.float64), phi.shape).copy()
    members = as_members(where, model)
    _, flat = members.flat(where, prob.neuron)
    box = types.SimpleNamespace(domain=types.SimpleNamespace(low=plo, high=phi))
    _, ends, _ = run_ascent(
        members, box, [flat], key=key, num_starts=num_starts, num_steps=num_steps,
        learning_rate=learning_rate, optimizer=optimizer, l2=0.0, center=None, budget=None,
    )  # fmt: skip
    ends = np.clip(ends[0, 0], plo, phi)  # float32 endpoints, back in the box
    vals = np.asarray(prob.net.values(ends, prob.neuron), np.float64)
    b = int(np.argmax(vals))
    best = float(vals[b])
    fmax, fmin = _extremes(model, family, neuron, gap, max_boxes, extremes)
    exact = 0.5 * (fmax.lower + fmax.upper)
    return FeatureVizScore(
        neuron=prob.neuron, sampled=best, exact=exact, error=exact - best,
        error_tier="certified", exact_error=0.5 * (fmax.upper - fmax.lower),
        misleads=_misleads(fmax.lower - best, fmax, fmin),
        num_forward=num_starts * (num_steps + 1), num_backward=num_starts * num_steps,
        values=vals, best_image=ends[b], above_family=best > fmax.upper,
        below_family=best < fmax.lower, correlation=_corr(ends[b], fmax.image),
        pixel_low=plo, pixel_high=phi, family_max=fmax, family_min=fmin,
    )  # fmt: skip
