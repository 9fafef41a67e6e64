"""Analytic distributions: sample in JAX; exact density, posterior, Bayes accuracy on the host.

Every distribution follows :mod:`toylab.distributions.base`; build them directly,
through the presets, or by name with :func:`make` (and back with :func:`to_config`).
"""

from toylab.distributions.base import (
    AbstractDistribution,
    Batch,
    BayesResult,
    Box,
    FiniteDomain,
)
from toylab.distributions.curve_images import CurveImages
from toylab.distributions.curves import NoisyCurve
from toylab.distributions.finite import BooleanFunction, ModularArithmetic
from toylab.distributions.gaussian import (
    GaussianMixture,
    MixtureArrays,
    blobs_on_circle,
    two_blobs,
    xor_blobs,
)
from toylab.distributions.registry import REGISTRY, examples, make, names, to_config
from toylab.distributions.rings import Rings
from toylab.distributions.sparse import SparseFeatures

__all__ = [
    "REGISTRY",
    "AbstractDistribution",
    "BayesResult",
    "Batch",
    "BooleanFunction",
    "CurveImages",
    "Box",
    "FiniteDomain",
    "GaussianMixture",
    "MixtureArrays",
    "ModularArithmetic",
    "NoisyCurve",
    "Rings",
    "SparseFeatures",
    "blobs_on_circle",
    "examples",
    "make",
    "names",
    "to_config",
    "two_blobs",
    "xor_blobs",
]
