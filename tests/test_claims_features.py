"""Claims about the features of a toy model of superposition, against hand computations."""

import numpy as np
import pytest

from toylab import ToylabError
from toylab.claims import (
    antipodal,
    check,
    claims_from_config,
    dead,
    dimensions_per_feature,
    feature_dimensionality,
    represented,
)
from toylab.distributions import SparseFeatures, two_blobs
from toylab.models import MLP, SuperpositionLinear, SuperpositionReLU


def _pentagon(scale_last=1.0):
    t = 2 * np.pi * np.arange(5) / 5
    W = np.stack([np.cos(t), np.sin(t)])
    W[:, 4] *= scale_last
    return W, SuperpositionReLU.from_weights(W, -0.1 * np.ones(5), param_dtype=np.float64)


DIST5 = SparseFeatures(probs=(0.05,) * 5)


def test_pentagon_claims_hold_with_the_hand_derived_numbers():
    _, model = _pentagon()
    # tolerances: float64 sums of 2-5 products of cos/sin values, a few eps (~1e-16) each
    # a regular pentagon of unit vectors: sum_j cos^2(2 pi k / 5) = 5/2, so D_i = 1/(5/2)
    r = check(feature_dimensionality("input:2", 0.39, 0.41), model, DIST5)
    assert r.tier == "exact" and r.holds and r.estimate == pytest.approx(0.4, abs=1e-14)
    # D* = m / ||W||_F^2 = 2 / 5
    r = check(dimensions_per_feature(0.4, 0.4), model, DIST5)
    assert r.holds and r.estimate == pytest.approx(0.4, abs=1e-14)
    r = check(represented("input:0", 1.0), model, DIST5)  # norm exactly 1: a tie holds
    assert r.holds and r.estimate == pytest.approx(1.0, abs=1e-15)
    # neighbours at 72 degrees are not antipodal: cos = cos(2 pi / 5)
    r = check(antipodal("input:0", "input:1"), model, DIST5)
    assert not r.holds and r.estimate == pytest.approx(np.cos(2 * np.pi / 5), abs=1e-14)


def test_margins_against_numpy_on_random_weights():
    rng = np.random.default_rng(0)
    for _ in range(5):
        W = rng.normal(size=(3, 6)) * rng.choice([1e-3, 1.0, 1e3])
        model = SuperpositionLinear.from_weights(W, param_dtype=np.float64)
        dist = SparseFeatures(probs=(0.1,) * 6)
        norms = np.sqrt((W**2).sum(0))
        cos = (W.T @ W) / np.outer(norms, norms)
        d = norms**2 / ((W.T @ W / norms[:, None]) ** 2).sum(1)
        dstar = 3 / (W**2).sum()
        # tolerances: the same formulas in a different float64 summation order; relative
        # 1e-12 is far above the ~(m + n) eps rounding of either (cosines: absolute)
        r = check(represented("input:1", 0.5), model, dist)
        assert r.margin == pytest.approx(norms[1] - 0.5, rel=1e-12, abs=1e-15)
        assert r.holds == (norms[1] >= 0.5)
        r = check(antipodal("input:2", "input:4", tol=0.5), model, dist)
        assert r.estimate == pytest.approx(cos[2, 4], abs=1e-13)
        assert r.holds == (cos[2, 4] <= -0.5)
        r = check(feature_dimensionality("input:3", low=0.5), model, dist)
        assert r.estimate == pytest.approx(d[3], rel=1e-12) and r.holds == (d[3] >= 0.5)
        r = check(dimensions_per_feature(high=1.0), model, dist)
        assert r.estimate == pytest.approx(dstar, rel=1e-12) and r.holds == (dstar <= 1.0)


def test_an_antipodal_pair_and_a_zero_feature():
    W = np.array([[1.0, -0.98, 0.0]])
    model = SuperpositionReLU.from_weights(W, np.zeros(3), param_dtype=np.float64)
    dist = SparseFeatures(probs=(0.1,) * 3)
    assert check(antipodal("input:0", "input:1"), model, dist).holds
    assert check(antipodal("input:1", "input:0", tol=0.0), model, dist).holds  # cos = -1
    r = check(antipodal("input:0", "input:2"), model, dist)  # a zero column has no direction
    assert not r.holds and "zero" in r.detail
    assert not check(represented("input:2"), model, dist).holds
    assert check(represented("input:2", 0.0), model, dist).holds  # 0 >= 0


def test_claim_files_and_clear_errors():
    _, model = _pentagon(scale_last=0.1)
    (claim,) = claims_from_config(
        {
            "claim": [
                {
                    "neuron": "input:4",
                    "kind": "represented",
                    "threshold": 0.5,
                    "statement": "shrunk",
                }
            ]
        }
    )
    assert not check(claim, model, DIST5).holds
    with pytest.raises(ToylabError, match="feature address 'input:i'"):
        check(represented("hidden_0:0"), model, DIST5)
    with pytest.raises(ToylabError, match="toy model of superposition"):
        mlp = MLP.from_weights([np.eye(2), np.ones((2, 1))])
        check(represented("input:0"), mlp, two_blobs())
    with pytest.raises(ToylabError, match="at least one of"):
        feature_dimensionality("input:0")
    with pytest.raises(ToylabError, match="high must be >= low"):
        dimensions_per_feature(0.5, 0.2)
    with pytest.raises(ToylabError, match="another feature"):
        check(antipodal("input:0", "input:0"), model, DIST5)
    with pytest.raises(
        ToylabError, match="hidden or output neuron"
    ):  # other kinds stay as they were
        check(dead("input:0"), model, DIST5)
