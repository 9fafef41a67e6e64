"""Feature visualization: gradient ascent on the input, scored against the exact maxima.

The sampled method (what people run on real networks): draw ``num_starts`` points
uniformly in the domain box, run ``num_steps`` steps of an optax optimizer (default
adam, cosine-decayed step size) on the neuron's value, and project each iterate back
onto the box (and, with ``budget``, onto the ball ``|x - center| <= budget``, then the
box again: a feasible point, not the Euclidean projection onto the intersection).
``l2`` adds the penalty ``-l2 |x - center|^2`` to the objective. All starts, all
requested neurons and all members run in one compiled program (``jax.vmap`` over
starts, neurons and stacked members; the neuron is a traced flat index).

The exact answer is geometry only, so it is exact on every 2-D distribution (Gaussian
mixtures, rings, noisy curves): the exact partition of the domain box
(:meth:`Context.geometry <toylab.methods.Context.geometry>`), the neuron's global
maximum over it (:func:`toylab.exact.extrema`) and every local maximum
(:func:`toylab.exact.local_maxima`, plateaus included). Regularized runs are scored
against the *unregularized* maximum, since that is what they are used to reveal.
"""

from __future__ import annotations

import dataclasses
import math
from functools import partial
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
import optax

from toylab._validate import check_choice, check_float
from toylab.methods._core import (
    MISLEAD_FRACTION,
    Context,
    Members,
    MethodResult,
    check_key,
    context_for,
    domain_box,
    f32,
    numpy_rng,
    positive_int,
    require_plane,
)
from toylab.network import Network
from toylab.tiers import Tier

__all__ = ["FeatureVisResult", "feature_visualization"]

_OPTIMIZERS = ("adam", "sgd", "momentum", "rmsprop")


@dataclasses.dataclass(frozen=True, eq=False, kw_only=True)
class FeatureVisResult(MethodResult):
    """Gradient ascent from many starts vs the exact maxima over the domain box.

    Uniform fields (:class:`toylab.methods.MethodResult`): ``sampled`` is the best
    endpoint's value (float32 forward pass, the method's answer), ``exact`` the exact
    global maximum over the box, ``error = exact - sampled`` (>= 0 up to float32
    rounding), in the neuron's units; ``error_tier`` is ``"exact"`` (partition geometry
    in float64), ``exact_error`` the partition's rounding scale. **Misleads** when the
    best start misses the exact maximum by more than 5% of the neuron's range
    (``relative_gap > 0.05``).

    Other fields: ``starts``, ``endpoints`` ``(S, 2)`` and ``values`` ``(S,)``;
    ``best_point``; ``exact_argmax``, ``exact_min``; ``fraction_at_max``: the fraction
    of starts within ``rtol`` of the range below the maximum; ``relative_gap``:
    ``error`` over the range; ``distance``: from ``best_point`` to the exact global
    maximum's set (a vertex, or a plateau's vertices and flat edges);
    ``local_max_values`` ``(K,)``: the exact local maxima, largest first;
    ``basin_counts`` ``(K,)``: endpoints within ``radius`` (input space) and the value
    tolerance of each; ``num_found``: local maxima found by at least one start. Cost:
    ``S * num_steps`` backward passes and ``S * (num_steps + 1)`` forward passes.
    """

    method: ClassVar[str] = "feature_visualization"
    score: ClassVar[str] = "max over the domain box"
    error_measure: ClassVar[str] = "exact max - best value"
    starts: np.ndarray
    endpoints: np.ndarray
    values: np.ndarray
    best_point: np.ndarray
    exact_argmax: np.ndarray
    exact_min: float
    fraction_at_max: float
    relative_gap: float
    distance: float
    local_max_values: np.ndarray
    basin_counts: np.ndarray
    num_found: int
    units: str = "activation"
    tier: Tier = "sampled"

    @property
    def num_local_maxima(self) -> int:
        return len(self.local_max_values)

    @property
    def detail(self) -> str:
        return (
            f"at_max={self.fraction_at_max:.2f} found={self.num_found}/"
            f"{self.num_local_maxima} dist={self.distance:.3g}"
        )


def _optimizer(name: str, schedule: Any) -> optax.GradientTransformation:
    if name == "adam":
        return optax.adam(schedule)
    if name == "sgd":
        return optax.sgd(schedule)
    if name == "momentum":
        return optax.sgd(schedule, momentum=0.9)
    return optax.rmsprop(schedule)


@partial(jax.jit, static_argnames=("optimizer", "num_steps"))
def _ascent(
    stacked: Network,
    flats: jax.Array,
    starts: jax.Array,
    bounds: jax.Array,
    scalars: jax.Array,
    *,
    optimizer: str,
    num_steps: int,
) -> tuple[jax.Array, jax.Array]:
    """Endpoints ``(M, J, S, d)`` and values ``(M, J, S)`` of projected ascent.

    ``bounds = (low, high, center)`` ``(3, d)``; ``scalars = (learning rate, l2,
    budget)``. One program for every neuron (``flats`` is traced).
    """
    low, high, center = bounds[0], bounds[1], bounds[2]
    lr, l2, budget = scalars[0], scalars[1], scalars[2]
    opt = _optimizer(optimizer, optax.cosine_decay_schedule(lr, num_steps))

    def project(x: jax.Array) -> jax.Array:
        x = jnp.clip(x, low, high)
        d = x - center
        n = jnp.sqrt(jnp.sum(d * d))
        x = jnp.where(n > budget, center + d * (budget / jnp.maximum(n, 1e-30)), x)
        return jnp.clip(x, low, high)

    def one(net: Network, flat: jax.Array, x0: jax.Array) -> tuple[jax.Array, jax.Array]:
        def value(x: jax.Array) -> jax.Array:
            return net.forward_flat(x)[flat]

        def objective(x: jax.Array) -> jax.Array:
            return value(x) - l2 * jnp.sum((x - center) ** 2)

        x0 = project(x0)

        def step(carry: Any, _: Any) -> tuple[Any, None]:
            x, state = carry
            upd, state = opt.update(-jax.grad(objective)(x), state, x)
            return (project(optax.apply_updates(x, upd)), state), None

        (x, _), _ = jax.lax.scan(step, (x0, opt.init(x0)), None, length=num_steps)
        return x, value(x)

    per_start = jax.vmap(one, in_axes=(None, None, 0))
    per_neuron = jax.vmap(per_start, in_axes=(None, 0, 0))
    return jax.vmap(per_neuron, in_axes=(0, None, 0))(stacked, flats, starts)


def run_ascent(
    members: Members,
    dist: Any,
    flats: list[int],
    *,
    key: jax.Array,
    num_starts: int,
    num_steps: int,
    learning_rate: float | None,
    optimizer: str,
    l2: float,
    center: Any,
    budget: float | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Starts ``(M, J, S, 2)``, endpoints ``(M, J, S, 2)`` and values ``(M, J, S)``."""
    low, high = domain_box(dist)
    diag = float(np.linalg.norm(high - low))
    lr = 0.01 * diag if learning_rate is None else float(learning_rate)
    c = 0.5 * (low + high) if center is None else np.asarray(center, np.float64)
    shape = (members.num_members, len(flats), num_starts, len(low))
    starts = f32(low + numpy_rng(key).random(shape) * (high - low))
    x, v = _ascent(
        members.stacked, np.asarray(flats, np.int32), starts,
        f32(np.stack([low, high, c])),
        f32([lr, l2, 1e30 if budget is None else budget]),
        optimizer=optimizer, num_steps=int(num_steps),
    )  # fmt: skip
    return np.asarray(starts, np.float64), np.asarray(x, np.float64), np.asarray(v, np.float64)


def score_ascent(
    context: Context,
    m: int,
    neuron: str,
    starts: np.ndarray,
    ends: np.ndarray,
    values: np.ndarray,
    *,
    rtol: float,
    radius: float | None,
    num_steps: int,
) -> FeatureVisResult:
    """Score member ``m``'s ascent endpoints against the exact maxima."""
    from toylab.exact import extrema, local_maxima

    where = "feature_visualization"
    nid = context.members.resolve(where, neuron)
    part = context.geometry(m, where)
    ext = extrema(part, nid.key)
    u = nid.unit
    emax, emin = float(ext.max[u]), float(ext.min[u])
    rng = max(emax - emin, 1e-12)
    lm = local_maxima(part, nid.key, u)
    low, high = domain_box(context.dist)
    rad = 0.02 * float(np.linalg.norm(high - low)) if radius is None else float(radius)
    vtol = rtol * rng
    best = int(np.argmax(values))
    near = (lm.distance(ends) <= rad) & (np.abs(values[:, None] - lm.values[None]) <= vtol)
    basin = near.sum(0)
    top = np.nonzero(lm.values >= emax - lm.tol)[0]
    dist_best = float(lm.distance(ends[best : best + 1])[0, top].min()) if len(top) else math.nan
    gap = emax - float(values[best])
    s = len(values)
    return FeatureVisResult(
        neuron=str(nid), sampled=float(values[best]), exact=emax, error=gap,
        error_tier="exact", exact_error=part.tol * (abs(emax) + 1.0),
        misleads=bool(gap / rng > MISLEAD_FRACTION),
        num_forward=s * (num_steps + 1), num_backward=s * num_steps,
        starts=starts, endpoints=ends, values=values, best_point=ends[best],
        exact_argmax=np.asarray(ext.argmax[u]), exact_min=emin,
        fraction_at_max=float(np.mean(values >= emax - vtol)), relative_gap=gap / rng,
        distance=dist_best, local_max_values=lm.values, basin_counts=basin,
        num_found=int((basin > 0).sum()),
    )  # fmt: skip


def feature_visualization(
    model: Any,
    dist: Any,
    neuron: str,
    *,
    key: jax.Array,
    num_starts: int = 64,
    num_steps: int = 200,
    learning_rate: float | None = None,
    optimizer: str = "adam",
    l2: float = 0.0,
    center: Any = None,
    budget: float | None = None,
    rtol: float = 0.01,
    radius: float | None = None,
    context: Context | None = None,
) -> FeatureVisResult | tuple[FeatureVisResult, ...]:
    """Gradient ascent on the input from ``num_starts`` uniform random starts.

    ``model``: a toylab model or network, or a list of them (an ensemble: one vmapped
    program; a tuple of results). ``dist``: a 2-D continuous distribution (its domain box
    is searched; otherwise :class:`~toylab.NotApplicable`). ``learning_rate`` defaults
    to 1% of the domain's diagonal. ``rtol``: the value tolerance, relative to the
    neuron's exact range, for "reached the maximum"; ``radius``: the input-space
    tolerance for "found a local maximum" (default 2% of the diagonal). ``context``: a
    :class:`~toylab.methods.Context` to reuse. See :class:`FeatureVisResult`.
    """
    where = "feature_visualization"
    check_key(where, key)
    ctx = context_for(where, model, dist, context)
    require_plane(where, dist, "gradient ascent searches the domain box")
    check_choice(where, "optimizer", optimizer, _OPTIMIZERS)
    num_starts = positive_int(where, "num_starts", num_starts)
    num_steps = positive_int(where, "num_steps", num_steps)
    l2 = check_float(where, "l2", l2, nonneg=True)
    rtol = check_float(where, "rtol", rtol, positive=True)
    if budget is not None:
        budget = check_float(where, "budget", budget, positive=True)
    if learning_rate is not None:
        learning_rate = check_float(where, "learning_rate", learning_rate, positive=True)
    nid, flat = ctx.members.flat(where, neuron)
    ctx.geometry(0, where)  # the exact side applies (piecewise linear) before we compute
    starts, ends, vals = run_ascent(
        ctx.members, dist, [flat], key=key, num_starts=num_starts, num_steps=num_steps,
        learning_rate=learning_rate, optimizer=optimizer, l2=l2, center=center, budget=budget,
    )  # fmt: skip
    return ctx.members.result([
        score_ascent(ctx, m, str(nid), starts[m, 0], ends[m, 0], vals[m, 0], rtol=rtol,
                     radius=radius, num_steps=num_steps)
        for m in range(ctx.members.num_members)
    ])  # fmt: skip
