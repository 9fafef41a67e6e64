r"""Selectivity and polysemanticity: how a neuron's activation mass splits over groups.

The **groups** are the distribution's own (:meth:`toylab.exact.Analysis.group_means`):
the components of a Gaussian mixture, or the classes (rings, noisy curves, finite
tasks). Exact: ``E[a 1(group = g)]`` from the member's analysis (on the plane a sum over
the support regions ``r`` of ``g_r . m_{1,g,r} + k_r m_{0,g,r}``, ``a = g_r . x + k_r``
on region ``r``); it has the analysis' tier. Sampled: the mean of ``a(x) 1(group = g)``
over ``num_samples`` samples (the group of a sample is its latent mixture component, or
its label), with a standard error per group.

**Shares** are ``E[a 1_g] / sum_g' E[a 1_g']`` (meaningful for non-negative
activations; for signed units the shares may be negative). The **selectivity index** is
the top share minus the second share: 1 for a neuron driven by one group only, 0 when
two groups drive it equally. A neuron is flagged **polysemantic** when its
second-largest group share is at least ``threshold`` (default 0.25) and the two top
groups belong to different classes (two blobs of one class are not counted).
Per-class shares are reported too.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar

import jax
import numpy as np

from toylab._validate import check_float
from toylab.methods._core import (
    Context,
    MethodResult,
    check_key,
    context_for,
    f32,
    flat_values,
    latent_groups,
    positive_int,
    to_f64,
)
from toylab.tiers import Tier

__all__ = ["SelectivityResult", "selectivity"]


@dataclasses.dataclass(frozen=True, eq=False, kw_only=True)
class SelectivityResult(MethodResult):
    """Per-group (and per-class) activation mass of one neuron, exact vs sampled.

    Uniform fields (:class:`toylab.methods.MethodResult`): ``sampled`` and ``exact`` are
    the sampled and exact selectivity indices (top share minus second share, unitless),
    ``error`` their absolute difference; ``error_tier`` the analysis' tier,
    ``exact_error`` a first-order propagation of the analysis' error to the index.
    **Misleads** when the sampled polysemanticity flag differs from the exact one.

    Other fields: ``groups`` (``"component"`` or ``"class"``); ``exact_mass``, ``mass``,
    ``mass_se`` ``(G,)``: exact ``E[a 1_g]``, its sampled estimate and standard errors;
    ``mass_error = max_g |mass - exact_mass|``; ``exact_shares``, ``shares`` ``(G,)``;
    ``exact_class_shares``, ``class_shares`` ``(C,)``; ``exact_polysemantic``,
    ``polysemantic``.
    """

    method: ClassVar[str] = "selectivity"
    score: ClassVar[str] = "selectivity index (top share - second share)"
    error_measure: ClassVar[str] = "|sampled index - exact index|"
    groups: str
    exact_mass: np.ndarray
    mass: np.ndarray
    mass_se: np.ndarray
    mass_error: float
    exact_shares: np.ndarray
    shares: np.ndarray
    exact_class_shares: np.ndarray
    class_shares: np.ndarray
    exact_polysemantic: bool
    polysemantic: bool
    num_samples: int
    units: str = "share of activation mass"
    tier: Tier = "sampled"

    @property
    def detail(self) -> str:
        return (
            f"groups={self.groups} polysemantic={self.exact_polysemantic} "
            f"(sampled {self.polysemantic})"
        )


def _index(
    mass: np.ndarray, classes: np.ndarray, threshold: float
) -> tuple[np.ndarray, float, bool]:
    total = float(mass.sum())
    shares = mass / total if abs(total) > 1e-300 else np.zeros_like(mass)
    if len(shares) < 2:
        return shares, 1.0, False
    order = np.argsort(-shares, kind="stable")
    sel = float(shares[order[0]] - shares[order[1]])
    poly = bool(shares[order[1]] >= threshold and classes[order[0]] != classes[order[1]])
    return shares, sel, poly


def score_selectivity(
    context: Context, m: int, neuron: str, vals: np.ndarray, group: np.ndarray, *,
    threshold: float,
) -> SelectivityResult:  # fmt: skip
    """Score member ``m``'s sampled values ``vals (N,)`` of samples in groups ``group``."""
    where = "selectivity"
    nid = context.members.resolve(where, neuron)
    ana = context.analysis(m, where)
    classes = np.asarray(ana.group_class)
    k = len(classes)
    exact = np.asarray(ana.group_means(nid.key))[:, nid.unit]
    n = len(vals)
    terms = vals[None, :] * (group[None, :] == np.arange(k)[:, None])
    mass = terms.mean(1)
    se = terms.std(1, ddof=1) / math.sqrt(n)
    es, esel, epoly = _index(exact, classes, threshold)
    ss, ssel, spoly = _index(mass, classes, threshold)
    nc = int(classes.max()) + 1 if k else 0

    def by_class(v: np.ndarray) -> np.ndarray:
        return np.array([v[classes == c].sum() for c in range(nc)])

    total = abs(float(exact.sum()))
    e = float(ana.error)
    sens = 2 * e * (1 + float(np.abs(es).max(initial=0.0)) * k) / total if total > 0 else math.inf
    return SelectivityResult(
        neuron=str(nid), sampled=ssel, exact=esel, error=abs(ssel - esel), error_tier=ana.tier,
        exact_error=sens, misleads=bool(spoly != epoly), num_forward=n, num_backward=0,
        groups=ana.groups, exact_mass=exact, mass=mass, mass_se=se,
        mass_error=float(np.abs(mass - exact).max()), exact_shares=es, shares=ss,
        exact_class_shares=by_class(es), class_shares=by_class(ss),
        exact_polysemantic=epoly, polysemantic=spoly, num_samples=n,
    )  # fmt: skip


def selectivity(
    model: Any,
    dist: Any,
    neuron: str,
    *,
    key: jax.Array,
    num_samples: int = 4096,
    threshold: float = 0.25,
    context: Context | None = None,
) -> SelectivityResult | tuple[SelectivityResult, ...]:
    """Split ``neuron``'s activation mass over the distribution's groups (see the module
    docstring): mixture components, or classes for every other distribution with an
    exact analysis. One vmapped pass over members on shared samples."""
    where = "selectivity"
    check_key(where, key)
    ctx = context_for(where, model, dist, context)
    num_samples = positive_int(where, "num_samples", num_samples, minimum=2)
    threshold = check_float(where, "threshold", threshold, minimum=0.0, maximum=1.0)
    nid, flat = ctx.members.flat(where, neuron)
    ana = ctx.analysis(0, where)
    batch = dist.sample(key, num_samples)
    group = latent_groups(batch, ana.groups)
    x = f32(batch.x)
    vals = to_f64(flat_values(ctx.members.stacked, x))[..., flat]
    return ctx.members.result([
        score_selectivity(ctx, m, str(nid), vals[m], group, threshold=threshold)
        for m in range(ctx.members.num_members)
    ])  # fmt: skip
