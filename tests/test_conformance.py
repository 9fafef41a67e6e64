"""Conformance of every example distribution, and the checker's power to catch bugs.

Each statistical check runs at alpha = 1e-6 (see toylab.testing.conformance), so a
correct distribution fails this file by chance with probability below ~1e-4; the
keys are fixed, so outcomes are reproducible.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest

from toylab.distributions import GaussianMixture, ModularArithmetic, examples
from toylab.testing import check_distribution

EXAMPLES = examples()


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_examples_conform(name: str) -> None:
    result = check_distribution(EXAMPLES[name], key=jax.random.key(7), num_samples=20_000)
    names = {c.name for c in result.checks}
    assert {"shapes", "determinism", "domain", "normalisation", "goodness_of_fit"} <= names
    assert result.passed
    # "determinism" covers: same key, other key, jit (num_samples static) of vmap over keys
    assert "jit(vmap" not in next(c.detail for c in result.checks if c.name == "determinism")


class _MisNormalised(GaussianMixture):
    """log_prob off by 1%: the normalisation check must notice."""

    def log_prob(self, x):
        return super().log_prob(x) + np.log(1.01)


class _Shifted(GaussianMixture):
    """Samples shifted by 0.1 along x1: the goodness-of-fit check must notice."""

    def sample(self, key, num_samples, *, dtype=np.float32):
        b = super().sample(key, num_samples, dtype=dtype)
        return type(b)(x=b.x + np.asarray([0.1, 0.0], dtype), y=b.y, latent=b.latent)


class _WrongPosterior(GaussianMixture):
    """Posterior with the classes swapped: the (bin, label) chi-square must notice."""

    def posterior(self, x):
        return super().posterior(x)[..., ::-1]


class _BadLabels(ModularArithmetic):
    """Labels off by one: the finite domain check must notice."""

    def sample(self, key, num_samples, *, dtype=np.float32):
        b = super().sample(key, num_samples, dtype=dtype)
        return type(b)(x=b.x, y=(b.y + 1) % self.p, latent=b.latent)


_GM = EXAMPLES["gaussian_mixture"]
_FIELDS = dict(means=_GM.means, covs=_GM.covs, weights=_GM.weights, classes=_GM.classes)


@pytest.mark.parametrize(
    ("dist", "failing"),
    [
        (_MisNormalised(**_FIELDS), "normalisation"),
        (_Shifted(**_FIELDS), "goodness_of_fit"),
        (_WrongPosterior(**_FIELDS), "goodness_of_fit"),
        (_BadLabels(p=5), "domain"),
    ],
    ids=["mis-normalised", "shifted", "swapped-posterior", "bad-labels"],
)
def test_checker_catches_bugs(dist, failing: str) -> None:
    with pytest.raises(AssertionError) as info:
        check_distribution(dist, key=jax.random.key(3), num_samples=10_000, check_bayes=False)
    assert f"[FAIL] {failing}:" in str(info.value), str(info.value)
