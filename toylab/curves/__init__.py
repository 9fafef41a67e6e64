"""Curve detectors: certified tuning over analytic curve-image families (issue 15)."""

from toylab.curves.detectors import (
    ChannelDetector,
    DetectorFamily,
    DetectorsResult,
    Tiling,
    analyze_detectors,
    channel_detector,
    detector_family,
    local_problem,
    tiling,
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
    "ChannelDetector",
    "DetectorFamily",
    "DetectorsResult",
    "Tiling",
    "analyze_detectors",
    "channel_detector",
    "detector_family",
    "local_problem",
    "tiling",
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
