"""Curve detectors: certified tuning over analytic curve-image families (issue 15)."""

from toylab.curves.circuit import (
    CircuitComparison,
    CurveCircuit,
    CurveTransplantResult,
    compare_circuit,
    curve_circuit,
    preferred_orientation,
    transplant,
    transplanted_network,
)
from toylab.curves.scoring import (
    DatasetScore,
    FeatureVizScore,
    SweepScore,
    pixel_box,
    score_dataset,
    score_featureviz,
    score_sweep,
)
from toylab.curves.tuning import (
    FamilyMaxResult,
    FiringSetResult,
    TuningResult,
    certified_max,
    certified_min,
    family_response,
    firing_set,
    tuning,
)

__all__ = [
    "CircuitComparison",
    "CurveCircuit",
    "CurveTransplantResult",
    "compare_circuit",
    "curve_circuit",
    "preferred_orientation",
    "transplant",
    "transplanted_network",
    "DatasetScore",
    "FeatureVizScore",
    "SweepScore",
    "pixel_box",
    "score_dataset",
    "score_featureviz",
    "score_sweep",
    "FamilyMaxResult",
    "FiringSetResult",
    "TuningResult",
    "certified_max",
    "certified_min",
    "family_response",
    "firing_set",
    "tuning",
]
