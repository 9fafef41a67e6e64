"""Universality across seeds (issue 16): how alike are the units, representations and
structure of many networks trained alike, exactly where it can be computed.

* :func:`match_ensemble` (:mod:`toylab.universality.matching`): every unit of every
  member matched against a reference member from exact correlations, one-to-one and
  many-to-one (splits), dead and duplicate units, families of recurring units, and the
  best-match scores against random-initialisation and layer-shuffle baselines
  (:mod:`toylab.universality.baselines`);
* representation similarity (:mod:`toylab.universality.similarity`): linear and RBF CKA,
  CCA, SVCCA and orthogonal Procrustes from exact second moments where they exist
  (:func:`representation_similarity`, :func:`similarity_matrix`), sampled with a
  bootstrap interval otherwise;
* density or decision boundary (:mod:`toylab.universality.density`): per neuron, how much
  of its function the data density explains against the class posterior, and how its
  zero set lies against density level sets and the Bayes boundary (:func:`density_scores`),
  and a study across widths, depths, activations, seeds and distributions
  (:func:`density_study`);
* modularity (:mod:`toylab.universality.modularity`): clusterability of the weight graph
  against a within-layer shuffle baseline (:func:`clusterability`).
"""

from toylab.universality._report import universality_dir, write_universality_report
from toylab.universality.baselines import init_networks, shuffle_layers
from toylab.universality.density import (
    LOGIT_CAP,
    DensityResult,
    DensityStudyResult,
    default_distributions,
    density_features,
    density_scores,
    density_study,
    feature_names,
)
from toylab.universality.matching import (
    EnsembleMatch,
    Family,
    LayerScores,
    ScoreDistribution,
    Split,
    distribution_groups,
    match_ensemble,
)
from toylab.universality.modularity import (
    ClusterabilityResult,
    clusterability,
    clusterability_ensemble,
    ncut,
    spectral_partition,
    weight_graph,
)
from toylab.universality.similarity import (
    MEASURES,
    SimilarityMatrix,
    SimilarityResult,
    SimilarityValue,
    canonical_correlations,
    cca,
    covariances,
    linear_cka,
    procrustes,
    rbf_cka,
    representation_similarity,
    similarity_matrix,
    svcca,
)

__all__ = [
    "LOGIT_CAP",
    "MEASURES",
    "ClusterabilityResult",
    "DensityResult",
    "DensityStudyResult",
    "EnsembleMatch",
    "Family",
    "LayerScores",
    "ScoreDistribution",
    "SimilarityMatrix",
    "SimilarityResult",
    "SimilarityValue",
    "Split",
    "canonical_correlations",
    "cca",
    "clusterability",
    "clusterability_ensemble",
    "covariances",
    "default_distributions",
    "density_features",
    "density_scores",
    "density_study",
    "distribution_groups",
    "feature_names",
    "init_networks",
    "linear_cka",
    "match_ensemble",
    "ncut",
    "procrustes",
    "rbf_cka",
    "representation_similarity",
    "shuffle_layers",
    "similarity_matrix",
    "spectral_partition",
    "svcca",
    "universality_dir",
    "weight_graph",
    "write_universality_report",
]
