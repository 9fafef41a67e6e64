"""Feature visualization: gradient ascent on the input, scored against the exact maxima.

The sampled method (what people run on real networks): draw ``num_starts``
points uniformly in the domain box, run ``num_steps`` steps of an optax
optimizer (default adam, cosine-decayed step size) on the neuron's value, and
project each iterate back onto the box (and, with ``budget``, onto the ball
``|x - center| <= budget``, then the box again: a feasible point, not the
Euclidean projection onto the intersection). ``l2`` adds the penalty
``-l2 |x - center|^2`` to the objective. All starts, all requested neurons and
all members run in one compiled program (``jax.vmap`` over starts, neurons and
stacked member parameters).

The exact answer (:func:`toylab.exact.extrema` and
:func:`toylab.methods.local_maxima` on ``analyze(model, dist).geometry``): the
neuron's global maximum over the box and every local maximum (see
:func:`~toylab.methods._core.local_maxima` for the definition, plateaus
included). Regularized runs are scored against the *unregularized* maximum,
since that is what they are used to reveal.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from toylab._errors import fail
from toylab.methods._core import Net, as_nets, flat_index, jax_flat, local_maxima

__all__ = ["FeatureVisResult", "feature_visualization"]

_OPTIMIZERS = ("adam", "sgd", "momentum", "rmsprop")


@dataclasses.dataclass(frozen=True, eq=False)
class FeatureVisResult:
    """Gradient ascent from many starts vs the exact maxima (tier ``"sampled"``).

    Attributes:
      neuron: the address. starts, endpoints: ``(S, 2)``; values: ``(S,)`` the
        neuron at the endpoints (float32 forward pass, what the method reports).
      best_value, best_point: the best endpoint (the method's answer).
      exact_max, exact_argmax, exact_min: the exact global extremes over the box.
      fraction_at_max: fraction of starts whose endpoint value is within
        ``rtol * (exact_max - exact_min)`` of ``exact_max``.
      gap: ``exact_max - best_value`` (>= 0 up to float32 rounding);
        relative_gap: ``gap`` over the neuron's range.
      distance: input-space distance from ``best_point`` to the exact global
        maximum's set (a vertex, or the vertices and flat edges of a plateau).
      local_max_values: ``(K,)`` the exact local maxima, largest first;
        basin_counts: ``(K,)`` how many endpoints lie within ``radius`` of each
        (in input space) *and* within the value tolerance of it; num_found: how
        many local maxima at least one start found.
      misleads: ``relative_gap > 0.05`` (the best start misses the exact max by
        more than 5% of the neuron's range).
      num_forward, num_backward: passes spent (``S * num_steps`` each, plus ``S``
        final forward passes).
    """

    neuron: str
    starts: np.ndarray
    endpoints: np.ndarray
    values: np.ndarray
    best_value: float
    best_point: np.ndarray
    exact_max: float
    exact_argmax: np.ndarray
    exact_min: float
    fraction_at_max: float
    gap: float
    relative_gap: float
    distance: float
    local_max_values: np.ndarray
    basin_counts: np.ndarray
    num_found: int
    misleads: bool
    num_forward: int
    num_backward: int
    tier: str = "sampled"
    exact_tier: str = "exact"

    @property
    def num_local_maxima(self) -> int:
        return len(self.local_max_values)


@functools.lru_cache(maxsize=16)
def _ascent_program(acts: tuple[str, ...], optimizer: str, learning_rate: float,
                    num_steps: int) -> Any:  # fmt: skip
    sched = optax.cosine_decay_schedule(learning_rate, num_steps)
    opt = {
        "adam": lambda: optax.adam(sched),
        "sgd": lambda: optax.sgd(sched),
        "momentum": lambda: optax.sgd(sched, momentum=0.9),
        "rmsprop": lambda: optax.rmsprop(sched),
    }[optimizer]()

    def one(params, idx, x0, low, high, center, l2, budget):
        def value(x):
            return jax_flat(params, acts, x)[idx]

        def obj(x):
            return value(x) - l2 * jnp.sum((x - center) ** 2)

        def project(x):
            x = jnp.clip(x, low, high)
            d = x - center
            n = jnp.sqrt(jnp.sum(d * d))
            x = jnp.where(n > budget, center + d * (budget / jnp.maximum(n, 1e-30)), x)
            return jnp.clip(x, low, high)

        x0 = project(x0)
        state = opt.init(x0)

        def step(carry, _):
            x, s = carry
            g = jax.grad(obj)(x)
            upd, s = opt.update(-g, s, x)
            return (project(optax.apply_updates(x, upd)), s), None

        (x, _), _ = jax.lax.scan(step, (x0, state), None, length=num_steps)
        return x, value(x)

    starts = jax.vmap(one, in_axes=(None, None, 0, None, None, None, None, None))
    neurons = jax.vmap(starts, in_axes=(None, 0, 0, None, None, None, None, None))
    members = jax.vmap(neurons, in_axes=(0, None, 0, None, None, None, None, None))
    return jax.jit(members)


def run_ascent(net: Net, dist: Any, flats: list[int], *, key: jax.Array, num_starts: int,
               num_steps: int, learning_rate: float | None, optimizer: str, l2: float,
               center: Any, budget: float | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Starts ``(M, J, S, 2)``, endpoints and values ``(M, J, S)`` for flat units ``flats``."""
    low = np.asarray(dist.domain.low, np.float64)
    high = np.asarray(dist.domain.high, np.float64)
    diag = float(np.linalg.norm(high - low))
    lr = 0.01 * diag if learning_rate is None else float(learning_rate)
    c = 0.5 * (low + high) if center is None else np.asarray(center, np.float64)
    shape = (net.num_members, len(flats), num_starts, 2)
    # NumPy draws from the key's bits: one compiled program fewer than jax.random.uniform
    gen = np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel().tolist())
    starts = jnp.asarray(low + gen.random(shape) * (high - low), jnp.float32)
    prog = _ascent_program(net.acts, optimizer, lr, int(num_steps))
    x, v = prog(
        net.params, jnp.asarray(flats, jnp.int32), starts,
        jnp.asarray(low, jnp.float32), jnp.asarray(high, jnp.float32),
        jnp.asarray(c, jnp.float32), jnp.float32(l2),
        jnp.float32(1e30 if budget is None else budget),
    )  # fmt: skip
    return np.asarray(starts, np.float64), np.asarray(x, np.float64), np.asarray(v, np.float64)


def score_ascent(net: Net, m: int, dist: Any, neuron: str, starts: np.ndarray, ends: np.ndarray,
                 values: np.ndarray, *, rtol: float, radius: float | None,
                 num_steps: int) -> FeatureVisResult:  # fmt: skip
    nid, _ = flat_index("feature_visualization", net.widths, neuron)
    ex = net.exact(m, dist)
    part = ex.geometry
    key, unit = nid.key, nid.unit
    emax_all = ex.extrema(key)
    emax, eargmax = float(emax_all.max[unit]), np.asarray(emax_all.argmax[unit])
    emin = float(emax_all.min[unit])
    rng = max(emax - emin, 1e-12)
    lm = local_maxima(part, key, unit)
    low = np.asarray(dist.domain.low)
    high = np.asarray(dist.domain.high)
    rad = 0.02 * float(np.linalg.norm(high - low)) if radius is None else float(radius)
    vtol = rtol * rng
    best = int(np.argmax(values))
    d = lm.distance(ends)  # (S, K)
    near = (d <= rad) & (np.abs(values[:, None] - lm.values[None]) <= vtol)
    basin = near.sum(0)
    top = np.nonzero(lm.values >= emax - lm.tol)[0]
    dist_best = float(lm.distance(ends[best : best + 1])[0, top].min()) if len(top) else math.nan
    gap = emax - float(values[best])
    s = len(values)
    return FeatureVisResult(
        neuron=str(nid), starts=starts, endpoints=ends, values=values,
        best_value=float(values[best]), best_point=ends[best], exact_max=emax,
        exact_argmax=eargmax, exact_min=emin,
        fraction_at_max=float(np.mean(values >= emax - vtol)), gap=gap, relative_gap=gap / rng,
        distance=dist_best, local_max_values=lm.values, basin_counts=basin,
        num_found=int((basin > 0).sum()), misleads=bool(gap / rng > 0.05),
        num_forward=s * (num_steps + 1), num_backward=s * num_steps,
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
) -> FeatureVisResult | tuple[FeatureVisResult, ...]:
    """Gradient ascent on the input from ``num_starts`` uniform random starts.

    ``model``: a toylab MLP, or a list of MLPs of one architecture (an ensemble:
    the ascent is vmapped over the stacked member parameters; the exact side is a
    loop over members; a tuple of results comes back). ``learning_rate`` defaults
    to 1% of the domain's diagonal. ``rtol``: the value tolerance, relative to the
    neuron's exact range, for "reached the maximum"; ``radius``: the input-space
    tolerance for "found a local maximum" (default 2% of the domain's diagonal).
    See :class:`FeatureVisResult` for the scores.
    """
    where = "feature_visualization"
    net = as_nets(where, model)
    if optimizer not in _OPTIMIZERS:
        raise fail(where, "optimizer", optimizer, f"one of {list(_OPTIMIZERS)}")
    for name, v in (("num_starts", num_starts), ("num_steps", num_steps)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise fail(where, name, v, "a positive integer")
    _, flat = flat_index(where, net.widths, neuron)
    starts, ends, vals = run_ascent(
        net, dist, [flat], key=key, num_starts=num_starts, num_steps=num_steps,
        learning_rate=learning_rate, optimizer=optimizer, l2=l2, center=center, budget=budget,
    )  # fmt: skip
    out = tuple(
        score_ascent(
            net,
            m,
            dist,
            neuron,
            starts[m, 0],
            ends[m, 0],
            vals[m, 0],
            rtol=rtol,
            radius=radius,
            num_steps=num_steps,
        )  # fmt: skip
        for m in range(net.num_members)
    )
    return out if net.ensemble else out[0]
