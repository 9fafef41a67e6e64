"""Exact analysis: every neuron's function over the whole input space and under the data.

Tiers (every result says which): ``"exact"`` (closed form, finite enumeration or
exact geometry in float64), ``"bounded"`` (guaranteed enclosure, or quadrature with
an error bound), ``"sampled"`` (an estimate; :func:`grid_evaluate` is one).

* :func:`analyze` -- one call for a model and a distribution;
* geometry of piecewise-linear networks (:mod:`toylab.exact.regions`):
  :func:`partition`, :func:`slice_partition`, :func:`extrema`, :func:`level_set`,
  :func:`decision_boundary`, :func:`argmax_pieces`, :func:`active_region`;
* Gaussian integrals over polygons (:mod:`toylab.exact.integrals`);
* finite domains (:mod:`toylab.exact.finite`): :func:`finite_table`;
* bounds for smooth activations and many input dimensions
  (:mod:`toylab.exact.bounds`): :func:`interval_bounds`, :func:`linear_bounds`,
  :func:`maximize`, :func:`minimize`.
"""

from toylab.exact.analysis import ExactAnalysis, analyze, gaussian_mixture_arrays, integration_box
from toylab.exact.bounds import (
    BranchCertificate,
    GridResult,
    MaximizeResult,
    grid_evaluate,
    interval_bounds,
    linear_bounds,
    maximize,
    minimize,
)
from toylab.exact.finite import FiniteResult, finite_table
from toylab.exact.integrals import (
    CrossMomentsResult,
    NeuronMomentsResult,
    cross_moments,
    gaussian_polygon_moments,
    mixture_polygon_moments,
    neuron_moments,
    polygon_quadrature,
)
from toylab.exact.regions import (
    ExtremaResult,
    Partition,
    active_region,
    argmax_pieces,
    box,
    decision_boundary,
    evaluate,
    extrema,
    forward,
    level_set,
    locate,
    partition,
    plane_through,
    slice_partition,
)

__all__ = [
    "BranchCertificate",
    "CrossMomentsResult",
    "ExactAnalysis",
    "ExtremaResult",
    "FiniteResult",
    "GridResult",
    "MaximizeResult",
    "NeuronMomentsResult",
    "Partition",
    "active_region",
    "analyze",
    "argmax_pieces",
    "box",
    "cross_moments",
    "decision_boundary",
    "evaluate",
    "extrema",
    "finite_table",
    "forward",
    "gaussian_mixture_arrays",
    "gaussian_polygon_moments",
    "grid_evaluate",
    "integration_box",
    "interval_bounds",
    "level_set",
    "linear_bounds",
    "locate",
    "maximize",
    "minimize",
    "mixture_polygon_moments",
    "neuron_moments",
    "partition",
    "plane_through",
    "polygon_quadrature",
    "slice_partition",
]
