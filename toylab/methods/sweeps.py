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
"""

from __future__ import annotations

import dataclasses
import functools
import math
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
                values: np.ndarray) -> SweepResult:  # fmt: skip
    nid, flat = flat_index("sweep", net.widths, neuron)
    kind, _, t0, t1 = _coef(path)
    bounds, coefs = exact_curve(net.layers[m], net.acts, path, flat)
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
    raise fail(where, "path", path, "a Line(start, end) or Circle(center, start), or None")


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
    path: Line | Circle | None = None,
    num_points: int = 64,
) -> SweepResult | tuple[SweepResult, ...]:
    """Sweep ``neuron`` along ``path`` at ``num_points`` points (see the module docstring).

    ``path=None`` draws a random segment across the domain from ``key``. An
    ensemble's members share the path; the sampled pass is vmapped over stacked
    parameters and the exact curves are a loop over members.
    """
    where = "sweep"
    net = as_nets(where, model)
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
    rot = np.stack([np.cos(angles), np.sin(angles)], -1)  # (a, 2)
    v = tops - c  # (M, k, 2)
    pts = (c + rot[None, None, :, :1] * v[:, :, None, :]
           + rot[None, None, :, 1:] * np.stack([-v[..., 1], v[..., 0]], -1)[:, :, None, :])  # fmt: skip
    sv = _sample(net, pts)[..., flat]  # (M, k, a)
    out = []
    for m in range(net.num_members):
        pk_e, pk_s, me, mb = [], [], [], []
        for i in range(num_examples):
            path = Circle(tuple(c), tuple(tops[m, i]))
            s = score_sweep(net, m, str(nid), path, angles, sv[m, i])
            bounds, coefs = exact_curve(net.layers[m], net.acts, path, flat)
            pk_e.append(_circle_peak(bounds, coefs))
            pk_s.append(float(angles[int(np.argmax(sv[m, i]))]))
            me.append(s.max_error)
            mb.append(s.max_error_bound)
        err = np.abs((np.asarray(pk_s) - np.asarray(pk_e) + math.pi) % (2 * math.pi) - math.pi)
        out.append(JointTuningResult(
            neuron=str(nid), center=c, examples=tops[m], angles=angles, values=sv[m],
            exact_peak_angle=np.asarray(pk_e), sampled_peak_angle=np.asarray(pk_s),
            peak_angle_error=err, max_error=np.asarray(me), max_error_bound=np.asarray(mb),
            num_forward=num_samples + num_examples * num_angles,
        ))  # fmt: skip
    return tuple(out) if net.ensemble else out[0]
