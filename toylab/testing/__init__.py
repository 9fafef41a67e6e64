"""Test helpers for toylab users: conformance checks and hypothesis strategies.

>>> from hypothesis import given
>>> from toylab.testing import networks, points
"""

from toylab.testing.conformance import ConformanceCheck, ConformanceResult, check_distribution
from toylab.testing.strategies import distributions, networks, neurons, points

__all__ = [
    "ConformanceCheck",
    "ConformanceResult",
    "check_distribution",
    "distributions",
    "networks",
    "neurons",
    "points",
]
