"""Curve detectors: certified tuning over analytic curve-image families (issue 15)."""

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
    "FamilyMaxResult",
    "FiringSetResult",
    "TuningResult",
    "certified_max",
    "certified_min",
    "family_response",
    "firing_set",
    "tuning",
]
