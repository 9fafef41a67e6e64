r"""Dataset examples: the top-k activating inputs among N samples, scored exactly.

The sampled method: draw ``num_samples`` inputs from the distribution and keep the
``num_examples`` with the largest activation (one float32 forward pass, vmapped over an
ensemble's members). The exact answer is the neuron's whole activation distribution
under the data, from the member's :class:`~toylab.exact.Analysis` (one per member,
reused by every neuron: :class:`~toylab.methods.Context`):

* the CDF ``F(t) = P(a(x) <= t)`` (:func:`toylab.exact.activation_cdf`): the level line
  ``a = t`` clips the analysis' support regions and the pieces are measured under the
  distribution; it has the analysis' tier (``exact`` for Gaussian mixtures and finite
  domains, ``estimated`` for rings and noisy curves, whose densities are integrated by
  adaptive quadrature or as an approximating sum of Gaussian atoms);
* the ``q``-quantile (``q = 0.99``) as a **bracket** ``[lower, upper]`` with
  ``F(lower) < q <= F(upper)``, not a point: bisection on the CDF (tier ``certified``
  when the CDF is exact, else the CDF's tier);
* the probability that ``N`` samples hold a point within ``hit_radius`` of the exact
  argmax, ``1 - (1 - P(B))^N``, with ``P(B)`` bracketed (:func:`toylab.exact.disk_mass`;
  on a finite domain the exact mass of the inputs that close);
* how well the examples cover the superlevel set ``S = {a >= t_q}`` (``t_q`` the upper
  end of the quantile bracket): the fraction of ``S``'s mass within ``coverage_radius``
  of some example, estimated from fresh samples whose membership in ``S`` is decided by
  a float64 forward pass (tier ``sampled``, 95% Wilson interval).

It applies to every 2-D distribution with an exact analysis and to finite domains.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from toylab._errors import fail
from toylab._validate import check_float
from toylab.methods._core import (
    Context,
    MethodResult,
    check_key,
    context_for,
    f32,
    flat_values,
    is_finite,
    is_plane,
    positive_int,
    to_f64,
    wilson,
)
from toylab.tiers import Tier

__all__ = ["DatasetExamplesResult", "dataset_examples"]


@dataclasses.dataclass(frozen=True, eq=False, kw_only=True)
class DatasetExamplesResult(MethodResult):
    """Top-k examples among N samples vs the exact activation distribution.

    Uniform fields (:class:`toylab.methods.MethodResult`): ``sampled`` is the top
    example's value (float32), ``exact`` the exact ``q``-quantile of the activation under
    the data (``q99.upper``, the upper end of a bracket), ``error = max(exact - sampled,
    0)``: how far the top example falls short of the quantile, in the neuron's units;
    ``error_tier`` the bracket's tier and ``exact_error`` its width. **Misleads** when
    the top example lies certainly below the exact ``q``-quantile (below
    ``q99.lower``): the examples then do not even show the data's top 1%.

    Other fields: ``examples`` ``(k, d)`` and ``values`` ``(k,)`` (largest first);
    ``quantiles`` ``(k,)``: the exact ``P(a <= value)`` of each example; ``q99``: the
    :class:`~toylab.exact.QuantileResult` bracket (``lower``, ``upper``, ``tier``);
    ``exact_max``, ``exact_argmax``: over the domain (box, or inputs of positive
    probability); ``relative_gap``: ``(exact_max - sampled)`` over the neuron's range;
    ``p_top``: exact ``P(a > exact_max - 0.05 range)`` and ``expected_top = N p_top``
    (``< 1``: ``unreachable``, the top of the neuron is out of reach of N samples);
    ``hit_radius``, ``p_hit``: bracket of the probability that N samples hold a point
    within ``hit_radius`` of ``exact_argmax``; ``coverage_level`` (``t_q``),
    ``coverage_radius``, ``coverage``, ``coverage_ci``: see the module docstring.
    Cost: ``num_forward = N``.
    """

    method: ClassVar[str] = "dataset_examples"
    score: ClassVar[str] = "top value vs the exact 0.99-quantile"
    error_measure: ClassVar[str] = "max(0, exact quantile - top value)"
    examples: np.ndarray
    values: np.ndarray
    quantiles: np.ndarray
    q99: Any
    exact_max: float
    exact_argmax: np.ndarray
    relative_gap: float
    p_top: float
    expected_top: float
    unreachable: bool
    hit_radius: float
    p_hit: tuple[float, float]
    coverage_level: float
    coverage_radius: float
    coverage: float
    coverage_ci: tuple[float, float]
    num_samples: int
    units: str = "activation"
    tier: Tier = "sampled"

    @property
    def detail(self) -> str:
        return (
            f"top_quantile={self.quantiles[0]:.4f} q99=[{self.q99.lower:.4g}, "
            f"{self.q99.upper:.4g}] expected_top={self.expected_top:.3g} "
            f"coverage={self.coverage:.2f} unreachable={self.unreachable}"
        )


def _hit_mass(context: Context, m: int, center: np.ndarray, radius: float) -> tuple[float, float]:
    """Bracket of the probability of the ball ``B(center, radius)`` under the data."""
    dist = context.dist
    if is_finite(dist):
        dom = dist.domain
        inside = np.linalg.norm(np.asarray(dom.inputs, np.float64) - center, axis=1) <= radius
        p = float(np.asarray(dom.probs, np.float64)[inside].sum())
        return p, p
    from toylab.exact import disk_mass

    lo, hi, _ = disk_mass(dist, center, radius)
    return lo, hi


def score_examples(
    context: Context,
    m: int,
    neuron: str,
    x: np.ndarray,
    vals: np.ndarray,
    cover_x: np.ndarray,
    *,
    num_examples: int,
    q: float = 0.99,
    hit_radius: float | None = None,
    coverage_radius: float | None = None,
) -> DatasetExamplesResult:
    """Score member ``m``'s sampled values ``vals (N,)`` at ``x (N, d)``."""
    from toylab.exact import activation_cdf, activation_quantile

    where = "dataset_examples"
    nid, flat = context.members.flat(where, neuron)
    ana = context.analysis(m, where)
    order = np.argsort(-vals, kind="stable")[:num_examples]
    top_x, top_v = x[order], vals[order]
    ext = ana.extrema(nid.key)
    emax, emin = float(ext.max[nid.unit]), float(ext.min[nid.unit])
    argmax = np.asarray(ext.argmax[nid.unit], np.float64)
    rng = max(emax - emin, 1e-12)
    n = len(vals)
    cdf = activation_cdf(ana, nid, [*top_v, emax - 0.05 * rng], strict=False)
    quant, p_top = cdf[:-1], 1.0 - float(cdf[-1])
    if ana.kind == "plane":
        slack = 3.0 * math.sqrt(q * (1 - q) / n) + 1.0 / n
        hint = np.quantile(vals, [max(q - slack, 0.0), min(q + slack, 1.0)])
        # started at the sample quantiles' confidence band: a few CDF evaluations, where
        # the neuron's whole range would cost seconds per neuron under quadrature densities
        q99 = activation_quantile(ana, nid, q, rtol=1e-3, start=(float(hint[0]), float(hint[1])),
                                  num_points=8)  # fmt: skip
        diag = float(np.linalg.norm(np.subtract(context.dist.domain.high, context.dist.domain.low)))
        hr = 0.02 * diag if hit_radius is None else float(hit_radius)
        cr = 0.05 * diag if coverage_radius is None else float(coverage_radius)
    else:
        q99 = activation_quantile(ana, nid, q)
        hr = 0.5 if hit_radius is None else float(hit_radius)  # one-hot inputs are >= 1 apart
        cr = 0.5 if coverage_radius is None else float(coverage_radius)
    blo, bhi = _hit_mass(context, m, argmax, hr)
    p_hit = (1.0 - (1.0 - blo) ** n, 1.0 - (1.0 - bhi) ** n)
    cv = context.members.networks[m].forward_flat(cover_x)[:, flat]
    inside = cover_x[cv >= q99.upper]
    k = 0
    if len(inside):
        d = np.sqrt(((inside[:, None] - top_x[None]) ** 2).sum(-1)).min(1)
        k = int((d <= cr).sum())
    top = float(top_v[0])
    return DatasetExamplesResult(
        neuron=str(nid), sampled=top, exact=float(q99.upper), error=max(float(q99.upper) - top, 0.0),
        error_tier=q99.tier, exact_error=float(q99.error),
        misleads=bool(top < q99.lower - 1e-6 * rng),  # 1e-6: float32 rounding of the value
        num_forward=n, num_backward=0, examples=top_x, values=top_v, quantiles=quant, q99=q99,
        exact_max=emax, exact_argmax=argmax, relative_gap=(emax - top) / rng, p_top=p_top,
        expected_top=n * p_top, unreachable=bool(n * p_top < 1.0), hit_radius=hr, p_hit=p_hit,
        coverage_level=float(q99.upper), coverage_radius=cr,
        coverage=k / len(inside) if len(inside) else math.nan,
        coverage_ci=wilson(k, len(inside)), num_samples=n,
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
    q: float = 0.99,
    hit_radius: float | None = None,
    coverage_radius: float | None = None,
    context: Context | None = None,
) -> DatasetExamplesResult | tuple[DatasetExamplesResult, ...]:
    """The ``num_examples`` top-activating inputs among ``num_samples`` data samples.

    One sample is drawn and shared by every member of an ensemble (one forward pass
    vmapped over the stacked parameters); the exact scores use each member's analysis.
    ``num_coverage`` fresh samples estimate the coverage score. ``hit_radius`` (default
    2% of the domain's diagonal; 0.5 on finite domains, i.e. the input itself) and
    ``coverage_radius`` (default 5%; 0.5) are input-space distances; ``q`` the quantile
    the top example is held to. See :class:`DatasetExamplesResult`.
    """
    where = "dataset_examples"
    check_key(where, key)
    ctx = context_for(where, model, dist, context)
    num_samples = positive_int(where, "num_samples", num_samples)
    num_examples = positive_int(where, "num_examples", num_examples)
    num_coverage = positive_int(where, "num_coverage", num_coverage)
    q = check_float(where, "q", q, minimum=0.5, maximum=1.0)
    if num_examples > num_samples:
        raise fail(where, "num_examples", num_examples, f"<= num_samples = {num_samples}")
    if not (is_plane(dist) or is_finite(dist)):
        ctx.analysis(0, where)  # raises NotApplicable saying why
    nid, flat = ctx.members.flat(where, neuron)
    ctx.analysis(0, where)  # fail before sampling if there is no exact answer
    k1, k2 = jax.random.split(key)
    x = to_f64(dist.sample(k1, num_samples).x)
    cover = to_f64(dist.sample(k2, num_coverage, dtype=jnp.float32).x)
    vals = to_f64(flat_values(ctx.members.stacked, f32(x)))[..., flat]
    return ctx.members.result([
        score_examples(ctx, m, str(nid), x, vals[m], cover, num_examples=num_examples, q=q,
                       hit_radius=hit_radius, coverage_radius=coverage_radius)
        for m in range(ctx.members.num_members)
    ])  # fmt: skip
