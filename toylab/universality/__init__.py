"""Universality across seeds (issue 16): which units recur across an ensemble, exactly.

* :func:`match_ensemble` (:mod:`toylab.universality.matching`): every unit of every
  member matched against a reference member from exact correlations, one-to-one and
  many-to-one (splits), dead and duplicate units, families of recurring units, and the
  best-match scores against random-initialisation and layer-shuffle baselines
  (:mod:`toylab.universality.baselines`).
"""

from toylab.universality.baselines import init_networks, shuffle_layers
from toylab.universality.matching import (
    EnsembleMatch,
    Family,
    LayerScores,
    ScoreDistribution,
    Split,
    distribution_groups,
    match_ensemble,
)

__all__ = [
    "EnsembleMatch",
    "Family",
    "LayerScores",
    "ScoreDistribution",
    "Split",
    "distribution_groups",
    "init_networks",
    "match_ensemble",
    "shuffle_layers",
]
