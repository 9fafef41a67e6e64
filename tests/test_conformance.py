"""Conformance of every example distribution, and the checker's power to catch bugs.

Each statistical check runs at alpha = 1e-6 (see toylab.testing.conformance), so a
correct distribution fails this file by chance with probability below ~1e-4; the
keys are fixed, so outcomes are reproducible.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from toylab.distributions import (
    CurveImages,
    GaussianMixture,
    ModularArithmetic,
    SparseFeatures,
    examples,
)
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


# --------------------------------------------------------------------------- many sparse features

_PROBS = tuple(0.05 + 0.4 * (i % 5) / 4 for i in range(20))  # 20 features: no enumeration


class _CorrelatedSparse(SparseFeatures):
    """Feature 4 is active exactly when feature 3 is (same rate, dependent)."""

    def sample(self, key, num_samples, *, dtype=jnp.float32):
        b = super().sample(key, num_samples, dtype=dtype)
        x3 = b.x[:, 3]
        x4 = jnp.where(x3 != 0, jnp.maximum(1.0 - x3, 1e-6), 0.0).astype(b.x.dtype)
        x = b.x.at[:, 4].set(x4)
        return type(b)(x=x, y=x, latent=b.latent)


class _WrongRate(SparseFeatures):
    """Feature 7 is active half again as often as ``probs[7]`` says."""

    def sample(self, key, num_samples, *, dtype=jnp.float32):
        b = super().sample(key, num_samples, dtype=dtype)
        extra = jax.random.uniform(jax.random.fold_in(key, 9), (num_samples,)) < 0.5 * _PROBS[7]
        x7 = jnp.where(extra & (b.x[:, 7] == 0), 0.5, b.x[:, 7]).astype(b.x.dtype)
        x = b.x.at[:, 7].set(x7)
        return type(b)(x=x, y=x, latent=b.latent)


class _SquaredValues(SparseFeatures):
    """Active values are ``u^2`` instead of ``u``: not uniform on (0, 1]."""

    def sample(self, key, num_samples, *, dtype=jnp.float32):
        b = super().sample(key, num_samples, dtype=dtype)
        return type(b)(x=b.x * b.x, y=b.x * b.x, latent=b.latent)


def test_many_sparse_features_are_checked_not_skipped() -> None:
    """T7: beyond 12 features the sparse checks used to return a *passing* 'skipped'."""
    result = check_distribution(SparseFeatures(_PROBS), key=jax.random.key(5), num_samples=20_000)
    checks = {c.name: c for c in result.checks}
    assert result.passed
    assert "importance-sampling" in checks["normalisation"].detail
    assert "190 feature pairs" in checks["goodness_of_fit"].detail
    assert not any("skipped" in c.detail for c in result.checks)


@pytest.mark.parametrize(
    "dist",
    [_CorrelatedSparse(_PROBS), _WrongRate(_PROBS), _SquaredValues(_PROBS)],
    ids=["dependent-pair", "wrong-rate", "wrong-values"],
)
def test_many_sparse_features_checker_catches_bugs(dist) -> None:
    with pytest.raises(AssertionError) as info:
        check_distribution(dist, key=jax.random.key(3), num_samples=20_000, check_bayes=False)
    assert "[FAIL] goodness_of_fit:" in str(info.value), str(info.value)


# --------------------------------------------------------------------------- image distributions


@pytest.mark.parametrize(
    "dist",
    [
        CurveImages(size=8, length=5.0, noise=0.1),
        CurveImages(size=8, length=5.0, task="line_vs_curve", fill=0.5),
        CurveImages(size=8, length=5.0, task="regression", polarity=-1),
    ],
    ids=["noisy-orientation", "line-vs-curve", "regression"],
)
def test_image_distributions_conform(dist) -> None:
    """No density over pixels: render, labels, latent support and bounds instead."""
    result = check_distribution(dist, key=jax.random.key(7), num_samples=2_000)
    names = {c.name for c in result.checks}
    assert {"shapes", "determinism", "domain", "render", "labels", "latent", "bounds"} <= names
    assert "normalisation" not in names and result.passed


class _LoudNoise(CurveImages):
    """Pixel noise 10% larger than ``noise`` says: the render chi-square must notice."""

    def sample(self, key, num_samples, *, dtype=jnp.float32):
        b = super().sample(key, num_samples, dtype=dtype)
        clean = self.render(b.latent)
        return type(b)(x=(clean + 1.1 * (b.x - clean)).astype(dtype), y=b.y, latent=b.latent)


class _ShiftedLabels(CurveImages):
    """Orientation labels off by one bin: the labels check must notice."""

    def sample(self, key, num_samples, *, dtype=jnp.float32):
        b = super().sample(key, num_samples, dtype=dtype)
        return type(b)(x=b.x, y=(b.y + 1) % self.num_bins, latent=b.latent)


@pytest.mark.parametrize(
    ("dist", "failing"),
    [
        (_LoudNoise(size=8, length=5.0, noise=0.1), "render"),
        (_ShiftedLabels(size=8, length=5.0), "labels"),
    ],
    ids=["loud-noise", "shifted-labels"],
)
def test_image_checker_catches_bugs(dist, failing: str) -> None:
    with pytest.raises(AssertionError) as info:
        check_distribution(dist, key=jax.random.key(3), num_samples=2_000)
    assert f"[FAIL] {failing}:" in str(info.value), str(info.value)
