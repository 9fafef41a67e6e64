"""Handwritten circuits and their comparison with trained networks."""

from toylab.circuits.distance import (
    DistanceResult,
    JointNetwork,
    functional_distance,
    joint_network,
)

__all__ = ["DistanceResult", "JointNetwork", "functional_distance", "joint_network"]
