r"""Synthetic sweeps and tuning curves, scored against the exact curve.

Along a **segment** ``x(s) = start + s (end - start)``, ``s in [0, 1]``, a
piecewise-linear network is piecewise linear in ``s``; its breakpoints are found
layer by layer in closed form (:func:`toylab.exact.segment_partition`), so the exact
curve is known everywhere (tier ``"exact"``, in any input dimension). The sampled sweep
evaluates ``num_points`` equally spaced points (float32 forward passes) and joins them
linearly; since both curves are piecewise linear, the max error (attained at a sample
or an exact breakpoint) and the L2 error (a sum of exact quadratic integrals) are exact.

Along a **circle** (rotating ``start`` about ``center``; 2-D inputs) every unit is
``A cos t + B sin t + C`` between breakpoints (:func:`toylab.exact.circle_partition`),
not piecewise linear. The sampled sweep's max error is measured on a dense grid
(``64 x`` the samples, plus every breakpoint) of the exact curve and bracketed: the
true max lies in ``[measured, measured + L h / 2]`` with ``h`` the dense spacing and
``L`` a bound on the slope of the error (tier ``"certified"``).

The exact curves are geometry only: they do not depend on the distribution, so these
sweeps are scored exactly whatever the data (Gaussian mixtures, rings, noisy curves).

Over a **sub-family** of a finite domain (:class:`Subfamily`: e.g. modular arithmetic
with operand ``a`` fixed and ``b`` sweeping ``0..p-1``, or any set of domain indices,
or a predicate on the latent operands) the exact tuning curve is the finite table
(:func:`toylab.exact.analyze` on a finite domain) restricted to the sub-family (tier
``"exact"``, float64). The sampled sweep evaluates a random subset of ``num_points``
members drawn without replacement from ``key`` (float32 forward passes, vmapped over
stacked ensemble members) and fills in the rest by linear interpolation or by the
nearest sampled member along the curve coordinate (:class:`SubfamilySweepResult`).

**Joint tuning** (:func:`joint_tuning`) rotates the top dataset examples about a point
and tracks the neuron, as in the curve-detector studies: every rotated curve is an exact
circle partition, whose peak is found in closed form.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import jax
import numpy as np

from toylab._errors import NotApplicable, fail
from toylab.methods._core import (
    MISLEAD_FRACTION,
    Context,
    Members,
    MethodResult,
    check_key,
    context_for,
    domain_box,
    f32,
    flat_values,
    flat_values_each,
    is_finite,
    numpy_rng,
    positive_int,
    require_plane,
    to_f64,
)
from toylab.tiers import Tier

__all__ = [
    "Circle",
    "JointTuningResult",
    "Line",
    "Subfamily",
    "SubfamilySweepResult",
    "SweepResult",
    "joint_tuning",
    "sweep",
]

_EPS = float(np.finfo(np.float64).eps)


@dataclasses.dataclass(frozen=True)
class Line:
    """The segment from ``start`` to ``end`` (inputs of the model's dimension)."""

    start: tuple[float, ...]
    end: tuple[float, ...]


@dataclasses.dataclass(frozen=True)
class Circle:
    """``start`` rotated about ``center`` by ``t in [0, 2 pi)`` (2-D inputs)."""

    center: tuple[float, float]
    start: tuple[float, float]


def path_partition_of(net: Any, path: Line | Circle, where: str = "sweep") -> Any:
    """The exact :class:`~toylab.exact.PathPartition` of every unit along ``path``."""
    from toylab.exact import circle_partition, segment_partition

    try:
        if isinstance(path, Line):
            return segment_partition(net, path.start, path.end)
        return circle_partition(net, path.center, path.start)
    except NotApplicable as err:
        raise NotApplicable(f"{where}: no exact curve to score against. {err}") from None


def sample_parameters(path: Line | Circle, num_points: int) -> np.ndarray:
    """Equally spaced parameters: ``[0, 1]`` with both ends; ``[0, 2 pi)`` for circles."""
    if isinstance(path, Line):
        return np.linspace(0.0, 1.0, num_points)
    return 2 * math.pi * np.arange(num_points) / num_points


def path_points(path: Line | Circle, t: np.ndarray) -> np.ndarray:
    """The path's inputs at parameters ``t``."""
    t = np.asarray(t, np.float64)
    if isinstance(path, Line):
        p0, p1 = np.asarray(path.start, np.float64), np.asarray(path.end, np.float64)
        return p0 + t[..., None] * (p1 - p0)
    c, v = np.asarray(path.center, np.float64), np.subtract(path.start, path.center)
    perp = np.array([-v[1], v[0]])
    return c + np.cos(t)[..., None] * v + np.sin(t)[..., None] * perp


@dataclasses.dataclass(frozen=True, eq=False, kw_only=True)
class SweepResult(MethodResult):
    """A sampled sweep along a path vs the exact curve.

    Uniform fields (:class:`toylab.methods.MethodResult`): ``sampled`` is the largest
    sampled value, ``exact`` the exact maximum along the path (closed form per piece),
    ``error`` the largest difference anywhere on the path between the sampled polyline
    and the exact curve, in the neuron's units. ``error_tier``: ``"exact"`` on segments
    (``exact_error``: a float64 rounding scale); ``"certified"`` on circles, where
    ``error`` is measured on a dense grid and ``exact_error = max_error_bound - error``
    (the true max error lies in ``[error, max_error_bound]``). **Misleads** when
    ``error`` exceeds 5% of the exact curve's range along the path (plus a float32
    rounding floor).

    Other fields: ``path``; ``t`` ``(m,)`` the sample parameters; ``values`` ``(m,)``
    sampled; ``breakpoints``: the exact curve's kinks; ``l2_error``: ``sqrt(mean over the
    path of the squared difference)`` (segments: exact; circles: dense grid);
    ``missed_breakpoints``: exact kinks whose sample interval and its neighbours show no
    change of sampled slope (segments; circles: ``-1``); ``sample_error``: max |sampled -
    exact| at the samples themselves (float32 rounding); ``path_range``: the exact
    curve's max minus min along the path.
    """

    method: ClassVar[str] = "sweep"
    score: ClassVar[str] = "max along the path"
    error_measure: ClassVar[str] = "max |sampled polyline - exact curve| along the path"
    path: Line | Circle
    t: np.ndarray
    values: np.ndarray
    breakpoints: np.ndarray
    max_error_bound: float
    l2_error: float
    missed_breakpoints: int
    sample_error: float
    path_range: float
    units: str = "activation"
    tier: Tier = "sampled"

    @property
    def detail(self) -> str:
        return (
            f"breakpoints={len(self.breakpoints)} missed={self.missed_breakpoints} "
            f"l2={self.l2_error:.3g}"
        )


def _missed(t: np.ndarray, values: np.ndarray, kinks: np.ndarray) -> int:
    """Exact kinks with no change of sampled slope next to their sample interval."""
    sl = np.diff(values) / np.diff(t)
    noise = 1e-5 * (float(np.abs(values).max()) + 1.0) / float(np.diff(t).min())
    change = np.abs(np.diff(sl)) > noise  # at interior samples 1..m-2
    if len(change) == 0:  # two samples: no interior sample can show a kink
        return len(kinks)
    j = np.clip(np.searchsorted(t, kinks, side="right") - 1, 0, len(t) - 2)
    left = np.where(j >= 1, change[np.maximum(j - 1, 0)], False)
    right = np.where(j + 1 <= len(t) - 2, change[np.minimum(j, len(change) - 1)], False)
    return int(np.sum(~(left | right)))


def score_sweep(
    members: Members, neuron: str, path: Line | Circle, t: np.ndarray, values: np.ndarray,
    part: Any,
) -> SweepResult:  # fmt: skip
    """Score a sampled sweep ``values (m,)`` at parameters ``t`` against the exact path
    partition ``part`` of the same member (:func:`path_partition_of`)."""
    nid = members.resolve("sweep", neuron)
    name = str(nid)
    coefs = part.unit(name)
    exact_at = part.values(t, name)
    sample_error = float(np.abs(exact_at - values).max())
    kinks = part.kinks(name)
    peak_t, peak = part.argmax(name)
    scale = 1.0 + float(np.abs(coefs).max())
    if isinstance(path, Line):
        grid = np.unique(np.concatenate([t, part.bounds]))
        exact_grid = part.values(grid, name)
        d = np.interp(grid, t, values) - exact_grid
        max_err = float(np.abs(d).max())
        h = np.diff(grid)
        l2 = math.sqrt(float(np.sum(h * (d[:-1] ** 2 + d[:-1] * d[1:] + d[1:] ** 2) / 3)))
        bound, tier, missed = max_err, "exact", _missed(t, values, kinks)
        low = float(exact_grid.min())  # piecewise linear: extremes at the grid's bounds
        exact_error = 64 * _EPS * scale * members.reference.num_layers
    else:
        t1 = 2 * math.pi
        dense = np.unique(np.concatenate([np.linspace(0.0, t1, 64 * len(t) + 1), part.bounds]))
        tt = np.concatenate([t, [t1]])
        vv = np.concatenate([values, values[:1]])
        exact_dense = part.values(dense, name)
        d = np.interp(dense, tt, vv) - exact_dense
        max_err = float(np.abs(d).max())
        lip = float(np.abs(np.diff(vv) / np.diff(tt)).max()) + float(
            np.hypot(coefs[:, 0], coefs[:, 1]).max()
        )
        bound = max_err + lip * float(np.diff(dense).max()) / 2
        l2 = math.sqrt(float(np.trapezoid(d**2, dense)) / t1)
        tier, missed = "certified", -1
        low = float(exact_dense.min())  # an upper bound on the minimum: range from below
        exact_error = bound - max_err
    path_range = max(peak - low, 0.0)
    floor = 1e-5 * (1.0 + max(abs(peak), abs(low)))  # float32 rounding of the samples
    return SweepResult(
        neuron=name, sampled=float(values.max()), exact=float(peak), error=max_err,
        error_tier=tier, exact_error=float(exact_error),  # type: ignore[arg-type]
        misleads=bool(max_err > MISLEAD_FRACTION * path_range + floor),
        num_forward=len(t), num_backward=0, path=path, t=t, values=values, breakpoints=kinks,
        max_error_bound=float(bound), l2_error=l2, missed_breakpoints=missed,
        sample_error=sample_error, path_range=path_range,
    )  # fmt: skip


def _check_path(where: str, path: Any, dim: int) -> Line | Circle:
    if isinstance(path, Line):
        if len(path.start) != dim or len(path.end) != dim:
            raise fail(where, "path", path, f"a Line between two points of dimension {dim}")
        if not np.all(np.isfinite(np.r_[path.start, path.end])):
            raise fail(where, "path", path, "a Line between finite points")
        return path
    if isinstance(path, Circle):
        if dim != 2:
            raise fail(where, "path", path, "a Line (circles need 2-D inputs)")
        if len(path.center) != 2 or len(path.start) != 2:
            raise fail(where, "path", path, "a Circle with a 2-D center and start")
        return path
    raise fail(where, "path", path,
               "a Line(start, end), Circle(center, start), Subfamily(...) or None")  # fmt: skip


def random_line(dist: Any, key: jax.Array) -> Line:
    """A segment between two uniform random points of the domain box."""
    low, high = domain_box(dist)
    u = numpy_rng(key).random((2, len(low)))
    p = low + u * (high - low)
    return Line(tuple(map(float, p[0])), tuple(map(float, p[1])))


def sweep(
    model: Any,
    dist: Any,
    neuron: str,
    *,
    key: jax.Array,
    path: Line | Circle | Subfamily | None = None,
    num_points: int = 64,
    context: Context | None = None,
) -> (
    SweepResult | SubfamilySweepResult | tuple[SweepResult, ...] | tuple[SubfamilySweepResult, ...]
):
    """Sweep ``neuron`` along ``path`` at ``num_points`` points (see the module docstring).

    ``path=None`` draws a random segment across the domain box from ``key`` (continuous
    distributions). An ensemble's members share the path; the sampled pass is vmapped
    over stacked members and each member's exact curve is one path partition. Returns a
    :class:`SweepResult` (a tuple for an ensemble) for a :class:`Line` or
    :class:`Circle`; for a :class:`Subfamily` of a finite domain, a
    :class:`SubfamilySweepResult` from ``min(num_points, n)`` members drawn without
    replacement from ``key``.
    """
    where = "sweep"
    check_key(where, key)
    ctx = context_for(where, model, dist, context)
    members = ctx.members
    if isinstance(path, Subfamily):
        num_points = positive_int(where, "num_points", num_points)
        return members.result(_subfamily_sweep(ctx, neuron, key, path, num_points))
    num_points = positive_int(where, "num_points", num_points, minimum=2)
    if path is None:
        if is_finite(dist) or not hasattr(getattr(dist, "domain", None), "low"):
            raise NotApplicable(
                f"{where}: a random segment needs a continuous domain box; "
                f"{type(dist).__name__} has a finite domain. Pass path=Subfamily(...) (or an "
                "explicit Line)."
            )
        path = random_line(dist, key)
        if len(path.start) != members.input_dim:
            raise fail(where, "dist", type(dist).__name__,
                       f"a distribution with the model's {members.input_dim} inputs")  # fmt: skip
    path = _check_path(where, path, members.input_dim)
    nid, flat = members.flat(where, neuron)
    parts = [path_partition_of(net, path) for net in members.networks]  # NotApplicable if smooth
    t = sample_parameters(path, num_points)
    x = f32(path_points(path, t))
    vals = to_f64(flat_values(members.stacked, x))[..., flat]
    return members.result(
        [score_sweep(members, str(nid), path, t, vals[m], parts[m]) for m in range(len(parts))]
    )


@dataclasses.dataclass(frozen=True, eq=False, kw_only=True)
class JointTuningResult(MethodResult):
    """Top dataset examples rotated about a point: sampled vs exact tuning curves.

    Uniform fields (:class:`toylab.methods.MethodResult`): ``sampled`` and ``exact`` are
    the top example's sampled and exact peak angles, ``error`` the largest wrapped
    peak-angle error over the rotated examples, in radians (``error_tier`` ``"exact"``:
    closed-form circle pieces; ``exact_error`` a rounding scale). **Misleads** when, for
    some rotated example, the sampled peak is more than one angular step (``2 pi /
    num_angles``) from the exact peak *and* the exact curve there is more than 5% of the
    neuron's range (over the domain box) below its peak: a flat or plateau-topped curve,
    whose peak angle is ill-defined, does not mislead.

    Other fields: ``center``; ``examples`` ``(k, 2)``; ``angles`` ``(a,)``; ``values``
    ``(k, a)`` sampled; ``exact_peak_angle``, ``sampled_peak_angle``,
    ``peak_angle_error`` ``(k,)``; ``max_error``, ``max_error_bound`` ``(k,)`` (as for
    circle sweeps); ``exact_peak_value`` ``(k,)``: each exact curve's maximum;
    ``value_at_sampled_peak`` ``(k,)``: the exact curve at the sampled peak angle (their
    difference is what following the sampled peak costs); ``value_loss`` ``(k,)``: that
    difference over the neuron's range.
    """

    method: ClassVar[str] = "joint_tuning"
    score: ClassVar[str] = "peak angle of the top example"
    error_measure: ClassVar[str] = "max wrapped peak-angle error over the rotated examples"
    center: np.ndarray
    examples: np.ndarray
    angles: np.ndarray
    values: np.ndarray
    exact_peak_angle: np.ndarray
    sampled_peak_angle: np.ndarray
    peak_angle_error: np.ndarray
    max_error: np.ndarray
    max_error_bound: np.ndarray
    exact_peak_value: np.ndarray
    value_at_sampled_peak: np.ndarray
    value_loss: np.ndarray
    units: str = "radians"
    tier: Tier = "sampled"

    @property
    def detail(self) -> str:
        return (
            f"examples={len(self.examples)} value_loss={self.value_loss.max():.3g} "
            f"max_error={self.max_error.max():.3g}"
        )


def rotated_points(center: np.ndarray, examples: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """``examples (..., k, 2)`` rotated about ``center`` by every angle: ``(..., k, a, 2)``."""
    rot = np.stack([np.cos(angles), np.sin(angles)], -1)  # (a, 2)
    v = examples - center
    perp = np.stack([-v[..., 1], v[..., 0]], -1)
    return center + rot[:, :1] * v[..., None, :] + rot[:, 1:] * perp[..., None, :]


def score_joint(
    context: Context, m: int, neuron: str, center: np.ndarray, examples: np.ndarray,
    angles: np.ndarray, values: np.ndarray, *, num_forward: int,
) -> JointTuningResult:  # fmt: skip
    """Score member ``m``'s sampled tuning curves ``values (k, a)`` of rotated ``examples``."""
    from toylab.exact import extrema

    where = "joint_tuning"
    members = context.members
    nid = members.resolve(where, neuron)
    name = str(nid)
    ext = extrema(context.geometry(m, where), nid.key)
    rng = max(float(ext.max[nid.unit] - ext.min[nid.unit]), 1e-12)
    net = members.networks[m]
    pk_e, pk_s, me, mb, ve, vs = [], [], [], [], [], []
    for i in range(len(examples)):
        path = Circle(
            (float(center[0]), float(center[1])), (float(examples[i, 0]), float(examples[i, 1]))
        )
        part = path_partition_of(net, path, where)
        s = score_sweep(members, name, path, angles, values[i], part)
        pk, pv = part.argmax(name)
        ts = float(angles[int(np.argmax(values[i]))])
        pk_e.append(pk)
        pk_s.append(ts)
        me.append(s.error)
        mb.append(s.max_error_bound)
        ve.append(pv)
        vs.append(float(part.values(np.array([ts]), name)[0]))
    err = np.abs((np.asarray(pk_s) - np.asarray(pk_e) + math.pi) % (2 * math.pi) - math.pi)
    loss = (np.asarray(ve) - np.asarray(vs)) / rng
    step = 2 * math.pi / len(angles)
    bad = bool(np.any((err > step * (1 + 1e-9)) & (loss > MISLEAD_FRACTION)))
    return JointTuningResult(
        neuron=name, sampled=float(pk_s[0]), exact=float(pk_e[0]), error=float(err.max()),
        error_tier="exact", exact_error=1e-12 * 2 * math.pi, misleads=bad,
        num_forward=num_forward, num_backward=0, center=center, examples=examples,
        angles=angles, values=values, exact_peak_angle=np.asarray(pk_e),
        sampled_peak_angle=np.asarray(pk_s), peak_angle_error=err, max_error=np.asarray(me),
        max_error_bound=np.asarray(mb), exact_peak_value=np.asarray(ve),
        value_at_sampled_peak=np.asarray(vs), value_loss=loss,
    )  # fmt: skip


def joint_tuning(
    model: Any,
    dist: Any,
    neuron: str,
    *,
    key: jax.Array,
    num_samples: int = 1024,
    num_examples: int = 8,
    num_angles: int = 64,
    center: Any = None,
    context: Context | None = None,
) -> JointTuningResult | tuple[JointTuningResult, ...]:
    """Rotate each member's top ``num_examples`` dataset examples about ``center``
    (default: the domain centre) and track the neuron (2-D distributions)."""
    where = "joint_tuning"
    check_key(where, key)
    ctx = context_for(where, model, dist, context)
    require_plane(where, dist, "it rotates inputs in the plane")
    num_samples = positive_int(where, "num_samples", num_samples)
    num_examples = positive_int(where, "num_examples", num_examples)
    num_angles = positive_int(where, "num_angles", num_angles, minimum=2)
    members = ctx.members
    nid, flat = members.flat(where, neuron)
    ctx.geometry(0, where)  # the exact side applies before we compute
    low, high = domain_box(dist)
    c = 0.5 * (low + high) if center is None else np.asarray(center, np.float64)
    if c.shape != (2,) or not np.all(np.isfinite(c)):
        raise fail(where, "center", center, "a finite 2-D point")
    x = to_f64(dist.sample(key, num_samples).x)
    vals = to_f64(flat_values(members.stacked, f32(x)))[..., flat]
    angles = 2 * math.pi * np.arange(num_angles) / num_angles
    k = min(num_examples, num_samples)
    tops = np.stack([x[np.argsort(-vals[m], kind="stable")[:k]] for m in range(len(vals))])
    pts = f32(rotated_points(c, tops, angles))  # (M, k, a, 2)
    sv = to_f64(flat_values_each(members.stacked, pts))[..., flat]  # (M, k, a)
    return members.result([
        score_joint(ctx, m, str(nid), c, tops[m], angles, sv[m],
                    num_forward=num_samples + k * num_angles)
        for m in range(members.num_members)
    ])  # fmt: skip


@dataclasses.dataclass(frozen=True, eq=False)
class Subfamily:
    """A finite sub-family of a finite domain's inputs (``dist.domain``), as a sweep path.

    Give exactly one of:

    * ``indices``: row indices into ``dist.domain.inputs`` (kept in the given order);
    * ``fixed``: latent operands held fixed, e.g. ``{"a": 3}`` for modular
      arithmetic (latent columns are named ``"a", "b", ...`` in order, or by their
      integer position; a 1-D latent, as for Boolean functions, is ``"index"``);
    * ``where``: a predicate on the latent array ``(N, k)`` (or ``(N,)``) returning a
      boolean mask ``(N,)``.

    ``fixed`` and ``where`` may be combined (both must hold). The curve coordinate
    ``t`` of each member is the one latent operand left free by ``fixed`` when there
    is exactly one (``b`` for ``fixed={"a": 3}``), else its position in the
    sub-family; members are ordered by ``t``. ``fill`` is how the sampled curve is
    completed between samples: ``"interp"`` (linear in ``t``, constant beyond the
    outermost samples) or ``"nearest"`` (the nearest sampled ``t``, ties to the lower).
    """

    indices: tuple[int, ...] | None = None
    fixed: Mapping[str | int, int] | None = None
    where: Callable[[np.ndarray], Any] | None = None
    fill: str = "interp"

    def resolve(self, dist: Any) -> tuple[np.ndarray, np.ndarray]:
        """``(rows (n,), t (n,))``: the members' domain rows and curve coordinates, by ``t``."""
        where = "Subfamily"
        domain: Any = getattr(dist, "domain", None)
        if not hasattr(domain, "probs"):
            raise fail(where, "dist", type(dist).__name__,
                       "a distribution with a finite domain (e.g. ModularArithmetic)")  # fmt: skip
        if self.fill not in ("interp", "nearest"):
            raise fail(where, "fill", self.fill, "'interp' or 'nearest'")
        size = int(domain.size)
        latent = np.asarray(domain.latent)
        lat2 = latent.reshape(size, -1)
        names: dict[str | int, int] = (
            {"index": 0, 0: 0} if latent.ndim == 1
            else {**{chr(ord("a") + j): j for j in range(lat2.shape[1])},
                  **{j: j for j in range(lat2.shape[1])}}
        )  # fmt: skip
        given = sum(v is not None for v in (self.indices, self.fixed or self.where))
        if given != 1:
            raise fail(where, "arguments", self,
                       "exactly one of indices=..., or fixed=... and/or where=...")  # fmt: skip
        free = None
        if self.indices is not None:
            rows = np.asarray(self.indices)
            if rows.ndim != 1 or not np.issubdtype(rows.dtype, np.integer) or len(rows) == 0:
                raise fail(where, "indices", self.indices, "a non-empty list of integers")
            if rows.min() < 0 or rows.max() >= size:
                raise fail(where, "indices", self.indices, f"row indices in [0, {size})")
            if len(np.unique(rows)) != len(rows):
                raise fail(where, "indices", self.indices, "without repeats")
        else:
            mask = np.ones(size, bool)
            cols = set()
            for name, value in (self.fixed or {}).items():
                if name not in names:
                    raise fail(where, "fixed", dict(self.fixed or {}),
                               f"keys among {sorted(map(str, names))}")  # fmt: skip
                cols.add(names[name])
                mask &= lat2[:, names[name]] == value
            if self.where is not None:
                sel = np.asarray(self.where(latent))
                if sel.shape != (size,) or sel.dtype != bool:
                    raise fail(where, "where", self.where,
                               f"a predicate returning a boolean mask of shape ({size},)")  # fmt: skip
                mask &= sel
            rows = np.nonzero(mask)[0]
            if not len(rows):
                raise fail(where, "fixed/where", self, "a selection holding at least one input")
            rest = [j for j in range(lat2.shape[1]) if j not in cols]
            if self.fixed and len(rest) == 1:
                free = rest[0]
        if free is not None:
            t = lat2[rows, free].astype(np.float64)
            order = np.argsort(t, kind="stable")
            return rows[order], t[order]
        return rows, np.arange(len(rows), dtype=np.float64)


@dataclasses.dataclass(frozen=True, eq=False, kw_only=True)
class SubfamilySweepResult(MethodResult):
    """A sampled tuning curve over a finite sub-family vs the exact (finite-table) curve.

    Uniform fields (:class:`toylab.methods.MethodResult`): ``sampled`` is the best
    sample's value (float32), ``exact`` the exact maximum over the sub-family, ``error``
    the largest ``|curve - exact curve|`` over the sub-family (a finite maximum), in the
    neuron's units; ``error_tier`` ``"exact"`` (float64 finite table; ``exact_error``
    its rounding bound). **Misleads** when ``error`` exceeds 5% of the exact curve's
    range over the sub-family (plus a float32 rounding floor), as for path sweeps.

    Other fields: ``path`` (the :class:`Subfamily`); ``rows`` ``(n,)`` the sub-family's
    domain rows and ``t`` ``(n,)`` their curve coordinates (sorted); ``exact_curve``
    ``(n,)``; ``sampled_rows`` ``(m,)``: positions (into ``rows``) of the sampled
    members; ``values`` ``(m,)`` the float32 forward passes there; ``curve`` ``(n,)`` the
    sampled curve completed by ``path.fill``; ``l2_error``: ``sqrt(mean)`` of the squared
    difference; ``sample_error``: max |values - exact| at the samples (float32
    rounding); ``coverage``: ``m / n``; ``exact_argmax``: positions achieving the exact
    maximum (within ``1e-9`` of the range); ``sampled_argmax``: the best sample's
    position; ``argmax_match``; ``peak_gap``: exact max minus the exact value at
    ``sampled_argmax`` (``>= 0``).
    """

    method: ClassVar[str] = "sweep"
    score: ClassVar[str] = "max over the sub-family"
    error_measure: ClassVar[str] = "max |sampled curve - exact curve| over the sub-family"
    path: Subfamily
    rows: np.ndarray
    t: np.ndarray
    exact_curve: np.ndarray
    sampled_rows: np.ndarray
    values: np.ndarray
    curve: np.ndarray
    l2_error: float
    sample_error: float
    coverage: float
    exact_argmax: np.ndarray
    sampled_argmax: int
    argmax_match: bool
    peak_gap: float
    units: str = "activation"
    tier: Tier = "sampled"

    @property
    def detail(self) -> str:
        return f"coverage={self.coverage:.2f} argmax_match={self.argmax_match}"


def _fill(kind: str, t: np.ndarray, ts: np.ndarray, vs: np.ndarray) -> np.ndarray:
    if kind == "interp" or len(ts) == 1:
        return np.interp(t, ts, vs) if len(ts) > 1 else np.full(len(t), vs[0])
    j = np.clip(np.searchsorted(ts, t), 1, len(ts) - 1)
    lower = (t - ts[j - 1]) <= (ts[j] - t)
    return np.where(lower, vs[j - 1], vs[j])


def score_subfamily(
    context: Context, m: int, neuron: str, path: Subfamily, rows: np.ndarray, t: np.ndarray,
    sampled: np.ndarray, values: np.ndarray,
) -> SubfamilySweepResult:  # fmt: skip
    """Score member ``m``'s sampled sub-family curve against the finite table."""
    where = "sweep"
    nid = context.members.resolve(where, neuron)
    ana = context.analysis(m, where)
    exact = np.asarray(ana.values(str(nid)), np.float64)[rows]
    curve = _fill(path.fill, t, t[sampled], values)
    d = curve - exact
    emax, emin = float(exact.max()), float(exact.min())
    rng = max(emax - emin, 0.0)
    arg_exact = np.nonzero(exact >= emax - 1e-9 * (rng + abs(emax) + 1e-300))[0]
    best = int(sampled[int(np.argmax(values))])
    err = float(np.abs(d).max())
    floor = 1e-5 * (1.0 + max(abs(emax), abs(emin)))  # float32 rounding of the samples
    return SubfamilySweepResult(
        neuron=str(nid), sampled=float(values.max()), exact=emax, error=err,
        error_tier="exact", exact_error=float(ana.error),
        misleads=bool(err > MISLEAD_FRACTION * rng + floor), num_forward=len(sampled),
        num_backward=0, path=path, rows=rows, t=t, exact_curve=exact, sampled_rows=sampled,
        values=values, curve=curve, l2_error=math.sqrt(float(np.mean(d**2))),
        sample_error=float(np.abs(values - exact[sampled]).max()),
        coverage=len(sampled) / len(rows), exact_argmax=arg_exact, sampled_argmax=best,
        argmax_match=bool(np.isin(best, arg_exact)), peak_gap=emax - float(exact[best]),
    )  # fmt: skip


def _subfamily_sweep(
    context: Context, neuron: str, key: jax.Array, path: Subfamily, num_points: int
) -> list[SubfamilySweepResult]:
    where = "sweep"
    dist, members = context.dist, context.members
    rows, t = path.resolve(dist)
    inputs = np.asarray(dist.domain.inputs)
    if inputs.shape[1] != members.input_dim:
        raise fail(where, "dist", type(dist).__name__,
                   f"a finite domain with {members.input_dim}-dimensional inputs (the model's), "
                   f"got {inputs.shape[1]}")  # fmt: skip
    nid, flat = members.flat(where, neuron)
    context.analysis(0, where)
    m = min(num_points, len(rows))
    sampled = np.sort(numpy_rng(key).choice(len(rows), m, replace=False))
    x = f32(inputs[rows[sampled]])
    vals = to_f64(flat_values(members.stacked, x))[..., flat]
    return [score_subfamily(context, k, str(nid), path, rows, t, sampled, vals[k])
            for k in range(members.num_members)]  # fmt: skip
