"""Exact analysis: every neuron's function over the whole input space and under the data.

Every result says how it was obtained (:mod:`toylab.tiers`): ``"exact"`` (closed
form, finite enumeration or exact geometry in float64), ``"certified"`` (a guaranteed
enclosure), ``"estimated"`` (a quadrature's error estimate). Where no exact method
applies, functions raise :class:`toylab.NotApplicable` saying what to use instead.
Everything takes a :class:`toylab.network.Network` or a toylab model.

* :func:`analyze` -- one call for a network and a distribution: an :class:`Analysis`
  (moments, firing probabilities, accuracy, extrema, tier and error) on the plane and
  on finite domains (:func:`finite_table` keeps every layer on every input);
* geometry of piecewise-linear networks on 2-D inputs or slices
  (:mod:`toylab.exact.regions`, :mod:`toylab.exact.queries`): :func:`partition`,
  :func:`slice_partition`, :func:`extrema`, :func:`level_set`, :func:`active_region`,
  :func:`argmax_pieces`, :func:`decision_boundary`, :func:`local_maxima`, :func:`locate`;
* integrals under the distribution (:mod:`toylab.exact.measure`,
  :mod:`toylab.exact.integrals`): :func:`region_moments`, Gaussian polygon moments in
  closed form, :func:`neuron_moments`, :func:`cross_moments`, :func:`polygon_quadrature`;
* a neuron's activation distribution (:mod:`toylab.exact.distribution`):
  :func:`activation_cdf`, :func:`activation_quantile`, :func:`disk_mass`;
* 1-D paths (:mod:`toylab.exact.paths`): :func:`segment_partition`,
  :func:`circle_partition`, :func:`integrated_gradients`;
* certified bounds for any activation and input dimension (:mod:`toylab.exact.bounds`):
  :func:`interval_bounds`, :func:`linear_bounds`, :func:`maximize`, :func:`minimize`.
"""

from toylab.exact._polygon import clip_convex, polygon_area
from toylab.exact.analysis import AccuracyResult, Analysis, accuracy, analyze
from toylab.exact.bounds import (
    BranchCertificate,
    MaximizeResult,
    interval_bounds,
    linear_bounds,
    maximize,
    minimize,
)
from toylab.exact.distribution import (
    QuantileResult,
    activation_cdf,
    activation_quantile,
    disk_mass,
)
from toylab.exact.finite import correct_predictions, finite_accuracy, finite_table
from toylab.exact.integrals import (
    CrossMomentsResult,
    NeuronMomentsResult,
    cross_moments,
    gaussian_polygon_moments,
    mixture_polygon_moments,
    neuron_moments,
    polygon_quadrature,
)
from toylab.exact.measure import (
    IntegrationDomain,
    RegionMoments,
    class_edge_masses,
    density_bound,
    integration_domain,
    polygon_masses,
    region_moments,
    truncation_bounds,
)
from toylab.exact.paths import (
    PathPartition,
    circle_partition,
    integrated_gradients,
    path_basis,
    path_partition,
    segment_partition,
)
from toylab.exact.queries import (
    ExtremaResult,
    LocalMaxima,
    active_region,
    argmax_pieces,
    decision_boundary,
    extrema,
    level_set,
    local_maxima,
    locate,
    partition_edges,
    partition_values,
    region_ranges,
    vertex_values,
)
from toylab.exact.regions import (
    Partition,
    band_violations,
    box,
    partition,
    plane_through,
    slice_partition,
)

__all__ = [
    "AccuracyResult",
    "Analysis",
    "BranchCertificate",
    "CrossMomentsResult",
    "ExtremaResult",
    "IntegrationDomain",
    "LocalMaxima",
    "MaximizeResult",
    "NeuronMomentsResult",
    "Partition",
    "PathPartition",
    "QuantileResult",
    "RegionMoments",
    "activation_cdf",
    "activation_quantile",
    "accuracy",
    "active_region",
    "analyze",
    "argmax_pieces",
    "band_violations",
    "box",
    "circle_partition",
    "clip_convex",
    "class_edge_masses",
    "cross_moments",
    "decision_boundary",
    "density_bound",
    "disk_mass",
    "extrema",
    "finite_table",
    "finite_accuracy",
    "correct_predictions",
    "gaussian_polygon_moments",
    "integrated_gradients",
    "integration_domain",
    "interval_bounds",
    "level_set",
    "linear_bounds",
    "local_maxima",
    "locate",
    "maximize",
    "minimize",
    "mixture_polygon_moments",
    "neuron_moments",
    "partition",
    "polygon_masses",
    "partition_edges",
    "partition_values",
    "path_basis",
    "path_partition",
    "plane_through",
    "polygon_area",
    "polygon_quadrature",
    "region_moments",
    "region_ranges",
    "segment_partition",
    "slice_partition",
    "truncation_bounds",
    "vertex_values",
]
