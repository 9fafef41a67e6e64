r"""Selectivity and polysemanticity: how a neuron's activation mass splits over components.

Exact: for a Gaussian-mixture component ``c`` (weight ``w_c``),

.. math::

    E[a\,1(\text{component} = c)] = \sum_r g_r \cdot m_{1,c,r} + k_r\, m_{0,c,r}

over the regions ``r`` of the integration-plane partition, where ``a = g_r . x + k_r``
on region ``r`` and ``m_{0,c,r}``, ``m_{1,c,r}`` are component ``c``'s exact
(weighted) region moments (:func:`toylab.exact.mixture_polygon_moments`).
Sampled: the mean of ``a(x) 1(latent component = c)`` over ``num_samples``
samples, with a standard error per component.

**Shares** are ``E[a 1_c] / sum_c' E[a 1_c']`` (meaningful for non-negative
activations: relu, abs, hardtanh's positive part; for signed units the shares
may be negative). The **selectivity index** is ``(top share - second share) /
sum of shares`` = top minus second share: 1 for a neuron driven by one
component only, 0 when two components drive it equally. A neuron is flagged
**polysemantic** when its second-largest component share is at least
``threshold`` (default 0.25) and the two top components belong to different
classes (for Gaussian mixtures, "unrelated" means a different class; two blobs
of one class are not counted). Per-class shares are reported too.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import numpy as np

from toylab._errors import fail
from toylab.methods._core import Net, as_nets, flat_index
from toylab.methods.examples import sample_values

__all__ = ["SelectivityResult", "exact_component_means", "selectivity"]


def exact_component_means(ex: Any, dist: Any, key: str) -> np.ndarray:
    """Exact ``E[a_i 1(component = c)]`` for every unit of layer ``key``: ``(K, width)``."""
    return ex.group_means(key)


@dataclasses.dataclass(frozen=True, eq=False)
class SelectivityResult:
    """Per-component (and per-class) activation mass of one neuron, exact vs sampled.

    Attributes:
      exact_mass, mass, mass_se: ``(K,)`` exact ``E[a 1_c]``, its sampled estimate
        and standard errors; error: ``max_c |mass - exact_mass|``.
      exact_shares, shares: ``(K,)``; exact_class_shares, class_shares: ``(C,)``.
      exact_selectivity, selectivity: the index of the module docstring.
      exact_polysemantic, polysemantic: the flag of the module docstring.
    """

    neuron: str
    exact_mass: np.ndarray
    mass: np.ndarray
    mass_se: np.ndarray
    error: float
    exact_shares: np.ndarray
    shares: np.ndarray
    exact_class_shares: np.ndarray
    class_shares: np.ndarray
    exact_selectivity: float
    selectivity: float
    exact_polysemantic: bool
    polysemantic: bool
    num_samples: int
    num_forward: int
    num_backward: int = 0
    tier: str = "sampled"
    exact_tier: str = "exact"

    @property
    def misleads(self) -> bool:
        """The sampled polysemanticity flag disagrees with the exact one."""
        return self.polysemantic != self.exact_polysemantic


def _index(mass: np.ndarray, classes: np.ndarray, threshold: float
           ) -> tuple[np.ndarray, float, bool]:  # fmt: skip
    total = float(mass.sum())
    shares = mass / total if abs(total) > 1e-300 else np.zeros_like(mass)
    if len(shares) < 2:
        return shares, 1.0, False
    order = np.argsort(-shares)
    sel = float(shares[order[0]] - shares[order[1]])
    poly = bool(shares[order[1]] >= threshold and classes[order[0]] != classes[order[1]])
    return shares, sel, poly


def score_selectivity(net: Net, m: int, dist: Any, neuron: str, vals: np.ndarray,
                      comp: np.ndarray, *, threshold: float) -> SelectivityResult:  # fmt: skip
    nid, _ = flat_index("selectivity", net.widths, neuron)
    ex = net.exact(m, dist)
    classes = dist.arrays().classes
    k = len(classes)
    exact = exact_component_means(ex, dist, nid.key)[:, nid.unit]
    n = len(vals)
    terms = vals[None, :] * (comp[None, :] == np.arange(k)[:, None])
    mass = terms.mean(1)
    se = terms.std(1, ddof=1) / math.sqrt(n)
    es, esel, epoly = _index(exact, classes, threshold)
    ss, ssel, spoly = _index(mass, classes, threshold)
    nc = int(classes.max()) + 1

    def by_class(v: np.ndarray) -> np.ndarray:
        return np.array([v[classes == c].sum() for c in range(nc)])

    return SelectivityResult(
        neuron=str(nid), exact_mass=exact, mass=mass, mass_se=se,
        error=float(np.abs(mass - exact).max()), exact_shares=es, shares=ss,
        exact_class_shares=by_class(es), class_shares=by_class(ss), exact_selectivity=esel,
        selectivity=ssel, exact_polysemantic=epoly, polysemantic=spoly, num_samples=n,
        num_forward=n,
    )  # fmt: skip


def selectivity(
    model: Any,
    dist: Any,
    neuron: str,
    *,
    key: jax.Array,
    num_samples: int = 4096,
    threshold: float = 0.25,
) -> SelectivityResult | tuple[SelectivityResult, ...]:
    """Split ``neuron``'s activation mass over mixture components (see the module docstring).

    Needs a Gaussian mixture (its samples carry the component). One vmapped pass
    over members on shared samples; exact moments in a loop over members.
    """
    where = "selectivity"
    net = as_nets(where, model)
    if not hasattr(dist, "means"):
        raise fail(where, "dist", type(dist).__name__, "a Gaussian mixture (components needed)")
    _, flat = flat_index(where, net.widths, neuron)
    batch = dist.sample(key, num_samples)
    comp = np.asarray(batch.latent["component"])
    vals = sample_values(net, np.asarray(batch.x))[:, :, flat]
    out = tuple(score_selectivity(net, m, dist, neuron, vals[m], comp, threshold=threshold)
                for m in range(net.num_members))  # fmt: skip
    return out if net.ensemble else out[0]
