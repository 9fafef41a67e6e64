"""Universality and what neurons model: exact studies across many seeds (issue 16)."""

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

__all__ = [
    "LOGIT_CAP",
    "DensityResult",
    "DensityStudyResult",
    "default_distributions",
    "density_features",
    "density_scores",
    "density_study",
    "feature_names",
]
