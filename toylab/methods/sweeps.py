r"""Synthetic sweeps and tuning curves, scored against the exact curve.

Along a **segment** ``x(s) = start + s (end - start)``, ``s in [0, 1]``, a
piecewise-linear network is piecewise linear in ``s``; its breakpoints are found
layer by layer in closed form (:func:`toylab.methods._core.propagate`), so the
exact curve is known everywhere (tier ``"exact"``). The sampled sweep evaluates
``num_points`` equally spaced points (float32 forward passes) and joins them
linearly; since both curves are piecewise linear, the max error (attained at a
sample or an exact breakpoint) and the L2 error (a sum of exact quadratic
integrals) are exact.

Along a **circle** (rotating ``start`` about ``center``) every unit is
``A cos t + B sin t + C`` between breakpoints (again found in closed form), not
piecewise linear. The sampled sweep's max error is measured on a dense grid
(``64 x`` the samples, plus every breakpoint) of the exact curve and bracketed:
the true max lies in ``[measured, measured + L h / 2]`` with ``h`` the dense
spacing and ``L`` a bound on the slope of the error (tier ``"bounded"``).

Over a **sub-family** of a finite domain (:class:`Subfamily`: e.g. modular
arithmetic with operand ``a`` fixed and ``b`` sweeping ``0..p-1``, or any set of
domain indices, or a predicate on the latent operands) the exact tuning curve is
the finite table (:func:`toylab.exact.finite_table`) restricted to the
sub-family (tier ``"exact"``, float64). The sampled sweep evaluates a random
subset of ``num_points`` members drawn without replacement from ``key`` (float32
forward passes, vmapped over stacked ensemble parameters; the exact tables are a
loop over members) and fills in the rest by linear interpolation or by the
nearest sampled member along the curve coordinate (:class:`SubfamilySweepResult`).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from toylab._errors import fail
from toylab.methods._core import Net, as_nets, flat_index, jax_flat, path_basis, propagate

__all__ = [
    "Circle",
    "JointTuningResult",
    "Line",
    "Subfamily",
    "SubfamilySweepResult",
    "SweepResult",
    "exact_curve",
    "joint_tuning",
    "sweep",
]


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


def _coef(path: Line | Circle) -> tuple[str, np.ndarray, float, float]:
    if isinstance(path, Line):
        p0, p1 = np.asarray(path.start, float), np.asarray(path.end, float)
        return "line", np.stack([p1 - p0, p0]), 0.0, 1.0
    c, x0 = np.asarray(path.center, float), np.asarray(path.start, float)
    v = x0 - c
    return "circle", np.stack([v, np.array([-v[1], v[0]]), c]), 0.0, 2 * math.pi


def path_points(path: Line | Circle, t: np.ndarray) -> np.ndarray:
    kind, coef, _, _ = _coef(path)
    return path_basis(kind, t) @ coef


def exact_curve(net_layers: Any, acts: Any, path: Line | Circle, flat: int
                ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """``(bounds (I+1,), coefs (I, nb))``: the unit is ``basis(t) @ coefs[i]`` on piece ``i``."""
    kind, coef, t0, t1 = _coef(path)
    bounds, coefs = propagate(net_layers, acts, kind, coef, t0, t1)
    return bounds, coefs[:, :, flat]


def eval_curve(kind: str, bounds: np.ndarray, coefs: np.ndarray, t: np.ndarray) -> np.ndarray:
    i = np.clip(np.searchsorted(bounds, t, side="right") - 1, 0, len(coefs) - 1)
    return np.einsum("nb,nb->n", path_basis(kind, t), coefs[i])


@dataclasses.dataclass(frozen=True, eq=False)
class SweepResult:
    """A sampled sweep along a path vs the exact curve.

    Attributes:
      neuron; path; t ``(m,)`` the sample parameters; values ``(m,)`` sampled.
      breakpoints: the exact curve's kinks (parameters where its slope changes).
      max_error: max over the path of |sampled polyline - exact curve|;
        l2_error: ``sqrt(mean over the path of the squared difference)``
        (segments: both exact; circles: measured on the dense grid).
      max_error_bound: a guaranteed upper bound on the max error (equal to
        ``max_error`` for segments; ``error_tier`` says which).
      missed_breakpoints: exact kinks whose sample interval and its neighbours
        show no change of sampled slope (segments only; circles: ``-1``).
      sample_error: max |sampled - exact| at the samples themselves (float32 rounding).
    """

    neuron: str
    path: Line | Circle
    t: np.ndarray
    values: np.ndarray
    breakpoints: np.ndarray
    max_error: float
    max_error_bound: float
    l2_error: float
    missed_breakpoints: int
    sample_error: float
    num_forward: int
    num_backward: int = 0
    tier: str = "sampled"
    error_tier: str = "exact"


@functools.lru_cache(maxsize=16)
def _program(acts: tuple[str, ...]) -> Any:
    return jax.jit(jax.vmap(lambda p, x: jax_flat(p, acts, x), in_axes=(0, 0)))


def _sample(net: Net, x: np.ndarray) -> np.ndarray:
    """Flat values ``(M, ..., F)`` at per-member points ``x (M, ..., d)``."""
    return np.asarray(_program(net.acts)(net.params, jnp.asarray(x, jnp.float32)), np.float64)


def _kinks(bounds: np.ndarray, coefs: np.ndarray, kind: str) -> np.ndarray:
    if kind != "line" or len(coefs) < 2:
        return bounds[1:-1] if kind != "line" else np.zeros(0)
    slope = coefs[:, 0]
    scale = float(np.abs(slope).max()) + float(np.abs(coefs[:, 1]).max()) + 1.0
    jump = np.abs(np.diff(slope)) > 1e-9 * scale
    return bounds[1:-1][jump]


def score_sweep(net: Net, m: int, neuron: str, path: Line | Circle, t: np.ndarray,
                values: np.ndarray, curve: tuple[np.ndarray, np.ndarray] | None = None,
                ) -> SweepResult:  # fmt: skip
    """Score a sampled sweep; ``curve``: the exact ``(bounds, coefs)`` if already known."""
    nid, flat = flat_index("sweep", net.widths, neuron)
    kind, _, t0, t1 = _coef(path)
    bounds, coefs = exact_curve(net.layers[m], net.acts, path, flat) if curve is None else curve
    exact_at = eval_curve(kind, bounds, coefs, t)
    sample_error = float(np.abs(exact_at - values).max())
    kinks = _kinks(bounds, coefs, kind)
    if kind == "line":
        grid = np.unique(np.concatenate([t, bounds]))
        interp = np.interp(grid, t, values)
        d = interp - eval_curve(kind, bounds, coefs, grid)
        max_err = float(np.abs(d).max())
        h = np.diff(grid)
        l2 = math.sqrt(
            float(np.sum(h * (d[:-1] ** 2 + d[:-1] * d[1:] + d[1:] ** 2) / 3)) / (t1 - t0)
        )
        bound = max_err
        # missed kinks: no change of sampled slope next to the kink's sample interval
        sl = np.diff(values) / np.diff(t)
        noise = 1e-5 * (float(np.abs(values).max()) + 1.0) / float(np.diff(t).min())
        change = np.abs(np.diff(sl)) > noise  # at interior samples 1..m-2
        if len(change) == 0:  # two samples: no interior sample can show a kink
            missed = len(kinks)
        else:
            j = np.clip(np.searchsorted(t, kinks, side="right") - 1, 0, len(t) - 2)
            left = np.where(j >= 1, change[np.maximum(j - 1, 0)], False)
            right = np.where(j + 1 <= len(t) - 2, change[np.minimum(j, len(change) - 1)], False)
            missed = int(np.sum(~(left | right)))
        err_tier = "exact"
    else:
        dense = np.unique(np.concatenate([np.linspace(t0, t1, 64 * len(t) + 1), bounds]))
        tt = np.concatenate([t, [t1]])
        vv = np.concatenate([values, values[:1]])
        interp = np.interp(dense, tt, vv)
        d = interp - eval_curve(kind, bounds, coefs, dense)
        max_err = float(np.abs(d).max())
        hd = float(np.diff(dense).max())
        lip = float(np.abs(np.diff(vv) / np.diff(tt)).max()) + float(
            np.hypot(coefs[:, 0], coefs[:, 1]).max()
        )
        bound = max_err + lip * hd / 2
        l2 = math.sqrt(float(np.trapezoid(d**2, dense)) / (t1 - t0))
        missed = -1
        err_tier = "bounded"
    return SweepResult(
        neuron=str(nid), path=path, t=t, values=values, breakpoints=kinks, max_error=max_err,
        max_error_bound=bound, l2_error=l2, missed_breakpoints=missed,
        sample_error=sample_error, num_forward=len(t), error_tier=err_tier,
    )  # fmt: skip


def _check_path(where: str, path: Any, dim: int) -> Line | Circle:
    if isinstance(path, Line):
        if len(path.start) != dim or len(path.end) != dim:
            raise fail(where, "path", path, f"a Line between two points of dimension {dim}")
        return path
    if isinstance(path, Circle):
        if dim != 2:
            raise fail(where, "path", path, "a Line (circles need 2-D inputs)")
        return path
    raise fail(where, "path", path,
               "a Line(start, end), Circle(center, start), Subfamily(...) or None")  # fmt: skip


def random_line(dist: Any, key: jax.Array) -> Line:
    """A segment between two uniform random points of the domain box."""
    low, high = np.asarray(dist.domain.low), np.asarray(dist.domain.high)
    u = np.asarray(jax.random.uniform(key, (2, len(low))), np.float64)
    p = low + u * (high - low)
    return Line(tuple(p[0]), tuple(p[1]))


def sweep(
    model: Any,
    dist: Any,
    neuron: str,
    *,
    key: jax.Array,
    path: Line | Circle | Subfamily | None = None,
    num_points: int = 64,
) -> (
    SweepResult | SubfamilySweepResult | tuple[SweepResult, ...] | tuple[SubfamilySweepResult, ...]
):
    """Sweep ``neuron`` along ``path`` at ``num_points`` points (see the module docstring).

    ``path=None`` draws a random segment across the domain from ``key``. An
    ensemble's members share the path; the sampled pass is vmapped over stacked
    parameters and the exact curves are a loop over members. Returns a
    :class:`SweepResult` (a tuple of them for an ensemble) for a :class:`Line` or
    :class:`Circle`; for a :class:`Subfamily` of a finite domain, a
    :class:`SubfamilySweepResult` (tuple) from ``min(num_points, n)`` members drawn
    without replacement from ``key``.
    """
    where = "sweep"
    net = as_nets(where, model)
    if isinstance(path, Subfamily):
        if isinstance(num_points, bool) or not isinstance(num_points, int) or num_points < 1:
            raise fail(where, "num_points", num_points, "a positive integer")
        res = _subfamily_sweep(net, dist, neuron, key, path, num_points)
        return res if net.ensemble else res[0]
    if isinstance(num_points, bool) or not isinstance(num_points, int) or num_points < 2:
        raise fail(where, "num_points", num_points, "an integer >= 2")
    dim = next(iter(net.layers[0]))[0].shape[0]
    path = random_line(dist, key) if path is None else _check_path(where, path, dim)
    _, flat = flat_index(where, net.widths, neuron)
    kind, _, t0, t1 = _coef(path)
    t = np.linspace(t0, t1, num_points) if kind == "line" else (
        t0 + (t1 - t0) * np.arange(num_points) / num_points)  # fmt: skip
    x = path_points(path, t)
    vals = _sample(net, np.broadcast_to(x, (net.num_members, *x.shape)))[..., flat]
    out = tuple(score_sweep(net, m, neuron, path, t, vals[m]) for m in range(net.num_members))
    return out if net.ensemble else out[0]


@dataclasses.dataclass(frozen=True, eq=False)
class JointTuningResult:
    """Top dataset examples rotated about a point: sampled vs exact tuning curves.

    Attributes:
      neuron; center; examples ``(k, 2)``; angles ``(a,)``; values ``(k, a)``
        sampled; exact_peak_angle / sampled_peak_angle ``(k,)`` (exact: the max
        of the exact sinusoidal pieces, in closed form); peak_angle_error ``(k,)``
        (wrapped to ``[0, pi]``); max_error ``(k,)`` and max_error_bound ``(k,)``
        (as for circle sweeps, tier ``"bounded"``).
      exact_peak_value ``(k,)``: the exact curve's maximum; value_at_sampled_peak
        ``(k,)``: the exact curve at the sampled peak angle (so their difference is
        what following the sampled peak costs, whatever the angle error).
    """

    neuron: str
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
    num_forward: int
    num_backward: int = 0
    tier: str = "sampled"
    error_tier: str = "bounded"


def _circle_peak(bounds: np.ndarray, coefs: np.ndarray) -> float:
    """Angle of the exact maximum of piecewise ``A cos t + B sin t + C``."""
    best_t, best_v = bounds[0], -np.inf
    for i in range(len(coefs)):
        a, b, c = coefs[i]
        cand = [bounds[i], bounds[i + 1]]
        phi = math.atan2(b, a) % (2 * math.pi)
        for k in (-1, 0, 1):
            tt = phi + 2 * math.pi * k
            if bounds[i] <= tt <= bounds[i + 1]:
                cand.append(tt)
        for tt in cand:
            v = a * math.cos(tt) + b * math.sin(tt) + c
            if v > best_v:
                best_t, best_v = tt, v
    return float(best_t % (2 * math.pi))


def rotated_points(center: np.ndarray, examples: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """``examples (..., k, 2)`` rotated about ``center`` by every angle: ``(..., k, a, 2)``."""
    rot = np.stack([np.cos(angles), np.sin(angles)], -1)  # (a, 2)
    v = examples - center
    perp = np.stack([-v[..., 1], v[..., 0]], -1)
    return center + rot[:, :1] * v[..., None, :] + rot[:, 1:] * perp[..., None, :]


def score_joint(net: Net, m: int, neuron: str, center: np.ndarray, examples: np.ndarray,
                angles: np.ndarray, values: np.ndarray, *, num_forward: int,
                ) -> JointTuningResult:  # fmt: skip
    """Score member ``m``'s sampled tuning curves ``values (k, a)`` of rotated ``examples``."""
    nid, flat = flat_index("joint_tuning", net.widths, neuron)
    pk_e, pk_s, me, mb, ve, vs = [], [], [], [], [], []
    for i in range(len(examples)):
        path = Circle(tuple(center), tuple(examples[i]))
        curve = exact_curve(net.layers[m], net.acts, path, flat)
        s = score_sweep(net, m, str(nid), path, angles, values[i], curve)
        pk = _circle_peak(*curve)
        ts = float(angles[int(np.argmax(values[i]))])
        pk_e.append(pk)
        pk_s.append(ts)
        me.append(s.max_error)
        mb.append(s.max_error_bound)
        ve.append(float(eval_curve("circle", *curve, np.array([pk]))[0]))
        vs.append(float(eval_curve("circle", *curve, np.array([ts]))[0]))
    err = np.abs((np.asarray(pk_s) - np.asarray(pk_e) + math.pi) % (2 * math.pi) - math.pi)
    return JointTuningResult(
        neuron=str(nid), center=center, examples=examples, angles=angles, values=values,
        exact_peak_angle=np.asarray(pk_e), sampled_peak_angle=np.asarray(pk_s),
        peak_angle_error=err, max_error=np.asarray(me), max_error_bound=np.asarray(mb),
        exact_peak_value=np.asarray(ve), value_at_sampled_peak=np.asarray(vs),
        num_forward=num_forward,
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
) -> JointTuningResult | tuple[JointTuningResult, ...]:
    """Rotate each member's top ``num_examples`` dataset examples about ``center`` (default:
    the domain centre) and track the neuron, as in the curve-detector studies."""
    where = "joint_tuning"
    net = as_nets(where, model)
    nid, flat = flat_index(where, net.widths, neuron)
    low, high = np.asarray(dist.domain.low), np.asarray(dist.domain.high)
    c = 0.5 * (low + high) if center is None else np.asarray(center, np.float64)
    x = np.asarray(dist.sample(key, num_samples).x, np.float64)
    vals = _sample(net, np.broadcast_to(x, (net.num_members, *x.shape)))[..., flat]
    angles = 2 * math.pi * np.arange(num_angles) / num_angles
    tops = np.stack([x[np.argsort(-vals[m], kind="stable")[:num_examples]]
                     for m in range(net.num_members)])  # fmt: skip
    pts = rotated_points(c, tops, angles)  # (M, k, a, 2)
    sv = _sample(net, pts)[..., flat]  # (M, k, a)
    out = [score_joint(net, m, str(nid), c, tops[m], angles, sv[m],
                       num_forward=num_samples + num_examples * num_angles)
           for m in range(net.num_members)]  # fmt: skip
    return tuple(out) if net.ensemble else out[0]


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


@dataclasses.dataclass(frozen=True, eq=False)
class SubfamilySweepResult:
    """A sampled tuning curve over a finite sub-family vs the exact (finite-table) curve.

    Attributes:
      neuron; path (the :class:`Subfamily`); rows ``(n,)`` the sub-family's domain
        rows and t ``(n,)`` their curve coordinates (sorted); exact ``(n,)`` the
        exact curve (float64 finite table restricted to the sub-family).
      sampled ``(m,)``: positions (into ``rows``) of the sampled members, sorted;
        values ``(m,)`` the float32 forward passes there; curve ``(n,)`` the sampled
        curve completed by ``path.fill``.
      max_error, l2_error: ``max`` and ``sqrt(mean)`` over the sub-family of
        ``|curve - exact|`` (exact: both are finite sums).
      sample_error: max |values - exact| at the samples (float32 rounding).
      coverage: ``m / n``, the fraction of the sub-family seen.
      exact_argmax: positions achieving the exact maximum (within ``1e-9`` of the
        range, float64); sampled_argmax: the position of the best sample;
        argmax_match: whether it is one of ``exact_argmax``; peak_gap: exact max
        minus the exact value at ``sampled_argmax`` (``>= 0``).
    """

    neuron: str
    path: Subfamily
    rows: np.ndarray
    t: np.ndarray
    exact: np.ndarray
    sampled: np.ndarray
    values: np.ndarray
    curve: np.ndarray
    max_error: float
    l2_error: float
    sample_error: float
    coverage: float
    exact_argmax: np.ndarray
    sampled_argmax: int
    argmax_match: bool
    peak_gap: float
    num_forward: int
    num_backward: int = 0
    tier: str = "sampled"
    error_tier: str = "exact"


def _finite_values(net: Net, m: int, dist: Any, neuron: str) -> np.ndarray:
    """The exact value of ``neuron`` on every domain input (member ``m``; cached)."""
    key = ("finite_table", m, id(dist))
    if key not in net.cache:
        from toylab.exact import finite_table

        net.cache[key] = finite_table(net.models[m], dist)
    return np.asarray(net.cache[key].values(neuron), np.float64)


def _fill(kind: str, t: np.ndarray, ts: np.ndarray, vs: np.ndarray) -> np.ndarray:
    if kind == "interp" or len(ts) == 1:
        return np.interp(t, ts, vs) if len(ts) > 1 else np.full(len(t), vs[0])
    j = np.clip(np.searchsorted(ts, t), 1, len(ts) - 1)
    lower = (t - ts[j - 1]) <= (ts[j] - t)
    return np.where(lower, vs[j - 1], vs[j])


def score_subfamily(net: Net, m: int, dist: Any, neuron: str, path: Subfamily, rows: np.ndarray,
                    t: np.ndarray, sampled: np.ndarray, values: np.ndarray,
                    ) -> SubfamilySweepResult:  # fmt: skip
    nid, _ = flat_index("sweep", net.widths, neuron)
    exact = _finite_values(net, m, dist, str(nid))[rows]
    curve = _fill(path.fill, t, t[sampled], values)
    d = curve - exact
    emax = float(exact.max())
    rng = max(emax - float(exact.min()), 0.0)
    arg_exact = np.nonzero(exact >= emax - 1e-9 * (rng + abs(emax) + 1e-300))[0]
    best = int(sampled[int(np.argmax(values))])
    return SubfamilySweepResult(
        neuron=str(nid), path=path, rows=rows, t=t, exact=exact, sampled=sampled,
        values=values, curve=curve, max_error=float(np.abs(d).max()),
        l2_error=math.sqrt(float(np.mean(d**2))),
        sample_error=float(np.abs(values - exact[sampled]).max()),
        coverage=len(sampled) / len(rows), exact_argmax=arg_exact, sampled_argmax=best,
        argmax_match=bool(np.isin(best, arg_exact)), peak_gap=emax - float(exact[best]),
        num_forward=len(sampled),
    )  # fmt: skip


def _subfamily_sweep(net: Net, dist: Any, neuron: str, key: jax.Array, path: Subfamily,
                     num_points: int) -> tuple[SubfamilySweepResult, ...]:  # fmt: skip
    rows, t = path.resolve(dist)
    inputs = np.asarray(dist.domain.inputs)
    dim = next(iter(net.layers[0]))[0].shape[0]
    if inputs.shape[1] != dim:
        raise fail("sweep", "dist", type(dist).__name__,
                   f"a finite domain with {dim}-dimensional inputs (the model's), "
                   f"got {inputs.shape[1]}")  # fmt: skip
    _, flat = flat_index("sweep", net.widths, neuron)
    m = min(num_points, len(rows))
    # NumPy draws from the key's bits (as run_ascent): no compiled sampler needed
    gen = np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel().tolist())
    sampled = np.sort(gen.choice(len(rows), m, replace=False))
    x = inputs[rows[sampled]]
    vals = _sample(net, np.broadcast_to(x, (net.num_members, *x.shape)))[..., flat]
    return tuple(score_subfamily(net, k, dist, neuron, path, rows, t, sampled, vals[k])
                 for k in range(net.num_members))  # fmt: skip
