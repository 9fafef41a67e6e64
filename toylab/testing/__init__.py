"""Test helpers for toylab users: conformance checks, hypothesis strategies and
:func:`assert_claim` (a claim as a test assertion).

>>> from hypothesis import given
>>> from toylab.testing import networks, points
"""

from toylab.testing.claims import assert_claim
from toylab.testing.conformance import ConformanceCheck, ConformanceResult, check_distribution
from toylab.testing.strategies import distributions, networks, neurons, points

__all__ = [
    "assert_claim",
    "ConformanceCheck",
    "ConformanceResult",
    "check_distribution",
    "distributions",
    "networks",
    "neurons",
    "points",
]
