r"""Dataset examples: the top-k activating inputs among N samples, scored exactly.

The sampled method: draw ``num_samples`` inputs from the distribution, keep the
``k`` with the largest activation. The exact answer is the neuron's whole
activation distribution under the data:

* the exact CDF ``F(t) = P(a(x) < t)`` (and ``P(a <= t)``): every region of the
  integration-plane partition is clipped by the level line ``a = t``
  (vectorized Sutherland–Hodgman clipping) and the pieces' Gaussian-mixture
  masses are closed forms (:func:`toylab.exact.mixture_polygon_moments`); tier
  ``"exact"`` (the plane partition leaves < 1e-30 mass outside);
* exact quantiles (bisection on the exact CDF, 64 points per round, to 1e-7 of
  the range), hence the exact quantile each example sits at;
* the probability that ``N`` samples hold a point within ``eps`` of the exact
  argmax, ``1 - (1 - P(B_eps(argmax) ∩ domain))^N``, with the disk's mass
  bracketed by inscribed and circumscribed 256-gons (tier ``"bounded"``);
* how well the examples cover the exact superlevel set ``S = {a >= t_q}`` (``t_q``
  the exact ``q``-quantile, ``q = 0.99``): the fraction of ``S``'s mass within
  ``radius`` of some example, estimated from fresh samples whose membership in
  ``S`` is decided exactly (float64 forward pass); tier ``"sampled"`` with a 95%
  Wilson interval.
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
from toylab.exact import activation_cdf, activation_quantile
from toylab.methods._core import (
    Net,
    as_nets,
    ball_mass,
    flat_index,
    jax_flat,
    np_flat,
)

__all__ = ["DatasetExamplesResult", "dataset_examples", "exact_cdf", "exact_quantile"]


def exact_cdf(ex: Any, dist: Any, key: str, unit: int, ts: Any, *, strict: bool = True
              ) -> np.ndarray:  # fmt: skip
    """Transition wrapper of :func:`toylab.exact.activation_cdf`."""
    return activation_cdf(ex, f"{key}:{unit}", ts, strict=strict)


def exact_quantile(ex: Any, dist: Any, key: str, unit: int, q: float) -> float:
    """Transition wrapper: the upper end of :func:`toylab.exact.activation_quantile`."""
    return activation_quantile(ex, f"{key}:{unit}", q).upper


@dataclasses.dataclass(frozen=True, eq=False)
class DatasetExamplesResult:
    """Top-k examples among N samples vs the exact activation distribution.

    Attributes:
      neuron; examples ``(k, 2)`` and values ``(k,)`` (float32 forward, largest
        first); quantiles ``(k,)``: the exact ``P(a <= value)`` of each example.
      top_value; exact_max, exact_argmax (over the domain box); gap, relative_gap:
        ``exact_max - top_value`` and the same over the neuron's range.
      q99: the exact 0.99-quantile of the activation under the data.
      p_top: exact ``P(a >= exact_max - 0.05 * range)``; expected_top: ``N p_top``,
        the expected number of samples in the neuron's top 5% (``< 1`` means the
        exact distribution says the top is out of reach of N samples: ``unreachable``).
      hit_radius; p_hit: bracket ``(lo, hi)`` of the probability that N samples
        hold a point within ``hit_radius`` of ``exact_argmax`` (tier ``"bounded"``).
      coverage_level: ``t_q``; coverage, coverage_ci: fraction of the superlevel
        set's mass within ``coverage_radius`` of an example (sampled, 95% Wilson).
      misleads: the top example lies below the exact 0.99-quantile.
      num_forward: N (plus the coverage samples' exact float64 passes, not counted).
    """

    neuron: str
    examples: np.ndarray
    values: np.ndarray
    quantiles: np.ndarray
    top_value: float
    exact_max: float
    exact_argmax: np.ndarray
    gap: float
    relative_gap: float
    q99: float
    p_top: float
    expected_top: float
    unreachable: bool
    hit_radius: float
    p_hit: tuple[float, float]
    coverage_level: float
    coverage_radius: float
    coverage: float
    coverage_ci: tuple[float, float]
    misleads: bool
    num_samples: int
    num_forward: int
    num_backward: int = 0
    tier: str = "sampled"
    exact_tier: str = "exact"


def _wilson(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    den = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return (max(0.0, mid - half), min(1.0, mid + half))


@functools.lru_cache(maxsize=16)
def _values_program(acts: tuple[str, ...]) -> Any:
    return jax.jit(jax.vmap(lambda p, xx: jax_flat(p, acts, xx), in_axes=(0, None)))


def sample_values(net: Net, x: np.ndarray) -> np.ndarray:
    """Every member's flat values at ``x``: ``(M, N, F)`` (one vmapped float32 pass)."""
    return np.asarray(
        _values_program(net.acts)(net.params, jnp.asarray(x, jnp.float32)), np.float64
    )


def score_examples(net: Net, m: int, dist: Any, neuron: str, x: np.ndarray, vals: np.ndarray,
                   cover_x: np.ndarray, *, num_examples: int, q: float = 0.99,
                   hit_radius: float | None = None, coverage_radius: float | None = None,
                   ) -> DatasetExamplesResult:  # fmt: skip
    nid, flat = flat_index("dataset_examples", net.widths, neuron)
    ex = net.exact(m, dist)
    key, unit = nid.key, nid.unit
    order = np.argsort(-vals, kind="stable")[:num_examples]
    top_x, top_v = x[order], vals[order]
    ext = ex.extrema(key)
    emax, emin = float(ext.max[unit]), float(ext.min[unit])
    argmax = np.asarray(ext.argmax[unit])
    rng = max(emax - emin, 1e-12)
    quant = exact_cdf(ex, dist, key, unit, top_v, strict=False)
    qv = exact_quantile(ex, dist, key, unit, q)
    p_top = 1.0 - float(exact_cdf(ex, dist, key, unit, [emax - 0.05 * rng])[0])
    n = len(vals)
    diag = float(np.linalg.norm(np.subtract(dist.domain.high, dist.domain.low)))
    hr = 0.02 * diag if hit_radius is None else float(hit_radius)
    blo, bhi = ball_mass(dist, argmax, hr)
    p_hit = (1.0 - (1.0 - blo) ** n, 1.0 - (1.0 - bhi) ** n)
    cr = 0.05 * diag if coverage_radius is None else float(coverage_radius)
    cv = np_flat(net.layers[m], net.acts, cover_x)[:, flat]
    inside = cover_x[cv >= qv]
    if len(inside):
        d = np.sqrt(((inside[:, None] - top_x[None]) ** 2).sum(-1)).min(1)
        k = int((d <= cr).sum())
    else:
        k = 0
    gap = emax - float(top_v[0])
    return DatasetExamplesResult(
        neuron=str(nid), examples=top_x, values=top_v, quantiles=quant,
        top_value=float(top_v[0]), exact_max=emax, exact_argmax=argmax, gap=gap,
        relative_gap=gap / rng, q99=qv, p_top=p_top, expected_top=n * p_top,
        unreachable=bool(n * p_top < 1.0), hit_radius=hr, p_hit=p_hit, coverage_level=qv,
        coverage_radius=cr, coverage=k / len(inside) if len(inside) else math.nan,
        coverage_ci=_wilson(k, len(inside)),
        misleads=bool(top_v[0] < qv - 1e-6 * rng), num_samples=n, num_forward=n,
    )  # fmt: skip


def dataset_examples(
    model: Any,
    dist: Any,
    neuron: str,
    *,
    key: jax.Array,
    num_samples: int = 1024,
    num_examples: int = 8,
    num_coverage: int = 20000,
    hit_radius: float | None = None,
    coverage_radius: float | None = None,
) -> DatasetExamplesResult | tuple[DatasetExamplesResult, ...]:
    """The ``num_examples`` top-activating inputs among ``num_samples`` data samples.

    One sample is drawn and shared by every member of an ensemble (one forward
    pass vmapped over the stacked parameters); the exact scores loop over
    members. ``num_coverage`` fresh samples estimate the coverage score.
    ``hit_radius`` (default 2% of the domain's diagonal) and ``coverage_radius``
    (default 5%) are input-space distances. See :class:`DatasetExamplesResult`.
    """
    where = "dataset_examples"
    net = as_nets(where, model)
    for name, v in (("num_samples", num_samples), ("num_examples", num_examples),
                    ("num_coverage", num_coverage)):  # fmt: skip
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise fail(where, name, v, "a positive integer")
    if num_examples > num_samples:
        raise fail(where, "num_examples", num_examples, f"<= num_samples = {num_samples}")
    _, flat = flat_index(where, net.widths, neuron)
    k1, k2 = jax.random.split(key)
    x = np.asarray(dist.sample(k1, num_samples).x, np.float64)
    cover = np.asarray(dist.sample(k2, num_coverage, dtype=jnp.float32).x, np.float64)
    vals = sample_values(net, x)[:, :, flat]
    out = tuple(
        score_examples(
            net,
            m,
            dist,
            neuron,
            x,
            vals[m],
            cover,
            num_examples=num_examples,
            hit_radius=hit_radius,
            coverage_radius=coverage_radius,
        )  # fmt: skip
        for m in range(net.num_members)
    )
    return out if net.ensemble else out[0]
