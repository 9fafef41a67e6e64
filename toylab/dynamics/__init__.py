"""Training dynamics and the loss landscape (issue 17)."""

from toylab.dynamics.landscape import (
    LandscapeResult,
    PathResult,
    PlaneResult,
    landscape,
    loss_plane,
    mode_connectivity,
    outlier_count,
)

__all__ = [
    "LandscapeResult",
    "PathResult",
    "PlaneResult",
    "landscape",
    "loss_plane",
    "mode_connectivity",
    "outlier_count",
]
