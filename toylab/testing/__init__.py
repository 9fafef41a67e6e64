"""Test helpers for toylab users: conformance checks (and, later, hypothesis strategies)."""

from toylab.testing.conformance import ConformanceCheck, ConformanceResult, check_distribution

__all__ = ["ConformanceCheck", "ConformanceResult", "check_distribution"]
