"""Universality: how alike are the representations and the structure of many seeds?

* representation similarity (:mod:`toylab.universality.similarity`): linear and RBF CKA,
  CCA, SVCCA and orthogonal Procrustes from exact second moments where they exist
  (:func:`representation_similarity`, :func:`similarity_matrix`), sampled with a
  bootstrap interval otherwise;
* modularity (:mod:`toylab.universality.modularity`): clusterability of the weight graph
  against a within-layer shuffle baseline (:func:`clusterability`).
"""

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
    "MEASURES",
    "ClusterabilityResult",
    "SimilarityMatrix",
    "SimilarityResult",
    "SimilarityValue",
    "canonical_correlations",
    "cca",
    "clusterability",
    "clusterability_ensemble",
    "covariances",
    "linear_cka",
    "ncut",
    "procrustes",
    "rbf_cka",
    "representation_similarity",
    "similarity_matrix",
    "spectral_partition",
    "svcca",
    "weight_graph",
]
