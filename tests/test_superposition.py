"""Superposition metrics against handwritten weights with known answers, and the sum
rule as a property of random weights."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toylab import ToylabError
from toylab.models import MLP, SuperpositionReLU
from toylab.network import Dense, Network, Tied
from toylab.superposition import superposition_metrics


def _net(W, b=None, output="relu"):
    W = np.asarray(W, np.float64)
    b = np.zeros(W.shape[1]) if b is None else np.asarray(b, np.float64)
    return Network((Dense(W.T, np.zeros(W.shape[0])), Tied(0, b)), ("identity", output))


def _polygon(k, radius=1.0, phase=0.0):
    t = phase + 2 * np.pi * np.arange(k) / k
    return radius * np.stack([np.cos(t), np.sin(t)])


def test_regular_pentagon():
    r = superposition_metrics(_net(_polygon(5), -0.1 * np.ones(5)))
    assert r.tier == "exact"
    np.testing.assert_allclose(r.dimensionality, 0.4, atol=1e-14)  # float64 rounding
    assert r.sum_dimensionality == pytest.approx(2.0, abs=1e-13)
    assert [s.name for s in r.structures] == ["pentagon"]
    assert r.polygon.regular and len(r.polygon.features) == 5
    assert r.polygon.features[0] == "input:0"
    np.testing.assert_allclose(r.polygon.gaps, 2 * np.pi / 5, atol=1e-12)
    assert r.bias_signs.tolist() == [-1] * 5
    assert r.dimensions_per_feature == pytest.approx(2 / 5)
    assert int(r.num_represented) == 5


def test_irregular_pentagon_is_not_regular():
    W = _polygon(5)
    W[:, 0] *= 0.8  # one shorter arm: norm spread 0.2 / mean > 0.05
    r = superposition_metrics(_net(W))
    assert not r.polygon.regular and r.polygon.norm_spread > 0.05


def test_antipodal_pairs_and_dedicated_dimensions():
    W = np.array([[1.0, -1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0, 0.1]])
    r = superposition_metrics(_net(W))
    # feature 4 (norm 0.1, not represented) still shares feature 2's dimension:
    # D_2 = 1 / (1 + 0.1²), within tol of the fraction 1
    np.testing.assert_allclose(r.dimensionality[:3], [0.5, 0.5, 1 / 1.01], rtol=1e-14)
    assert r.dimensionality[3] == 0.0 and r.superposition[3] == 0.0  # zero column: stated 0
    assert r.geometry == ("antipodal pair", "antipodal pair", "dedicated dimension",
                          "not represented", "not represented")  # fmt: skip
    assert sorted(s.name for s in r.structures) == ["antipodal pair", "dedicated dimension"]
    # superposition of feature 0: (Ŵ_0·W_1)² = 1
    assert r.superposition[0] == pytest.approx(1.0)
    np.testing.assert_allclose(r.interference, W.T @ W)


def test_identity_and_tetrahedron_and_triangle():
    r = superposition_metrics(_net(np.eye(3)))
    np.testing.assert_allclose(r.dimensionality, 1.0)
    assert r.sum_rule_gap == pytest.approx(0.0)
    tet = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], float).T / np.sqrt(3)
    r = superposition_metrics(_net(tet))
    np.testing.assert_allclose(r.dimensionality, 0.75, atol=1e-14)
    assert [s.name for s in r.structures] == ["tetrahedron"]
    r = superposition_metrics(_net(_polygon(3)))
    np.testing.assert_allclose(r.dimensionality, 2 / 3, atol=1e-14)
    assert [s.name for s in r.structures] == ["triangle"] and r.polygon.regular


def test_square_antiprism():
    # 8 unit vectors: two squares at heights ±h, rotated 45° apart, with h chosen so
    # that the frame is tight (Σ_i W_i W_iᵀ ∝ I): 4 (1 - h²) = 8 h²  ⇔  h² = 1/3
    h = np.sqrt(1 / 3)
    rho = np.sqrt(1 - h * h)
    t = np.pi / 2 * np.arange(4)
    top = np.stack([rho * np.cos(t), rho * np.sin(t), h * np.ones(4)])
    bot = np.stack([rho * np.cos(t + np.pi / 4), rho * np.sin(t + np.pi / 4), -h * np.ones(4)])
    r = superposition_metrics(_net(np.concatenate([top, bot], 1)))
    np.testing.assert_allclose(r.dimensionality, 3 / 8, atol=1e-12)
    assert [s.name for s in r.structures] == ["square antiprism"]


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 4),
    st.integers(1, 7),
    st.integers(0, 2**32 - 1),
    st.sampled_from([1e-6, 1.0, 1e4]),
)
def test_sum_rule_is_an_inequality(m, n, seed, scale):
    # Σ D_i ≤ rank W ≤ m (proof in toylab.superposition.metrics)
    W = scale * np.random.default_rng(seed).normal(size=(m, n))
    W[:, 0] = 0.0  # a zero column has D = 0
    r = superposition_metrics(_net(W))
    assert r.dimensionality[0] == 0.0
    assert np.all(r.dimensionality >= 0) and np.all(r.dimensionality <= 1 + 1e-12)
    assert r.sum_dimensionality <= r.rank + 1e-9  # rounding of n terms each ≤ 1


def test_ensemble_is_vectorised_and_matches_members():
    nets = [_net(_polygon(5)), _net(np.eye(2, 5)), _net(_polygon(5, 0.3))]
    r = superposition_metrics(nets)
    assert r.ensemble and r.num_members == 3 and r.dimensionality.shape == (3, 5)
    for k, net in enumerate(nets):
        one = superposition_metrics(net)
        np.testing.assert_array_equal(r.member(k).dimensionality, one.dimensionality)
        assert r.member(k).structures == one.structures
    stacked = superposition_metrics(Network.stack(nets))
    np.testing.assert_array_equal(stacked.dimensionality, r.dimensionality)
    assert stacked.num_represented.tolist() == [5, 2, 0]


def test_models_and_float32():
    model = SuperpositionReLU.from_weights(_polygon(5), -0.1 * np.ones(5))
    r = superposition_metrics(model)
    # float32 weights: metrics are exact functions of the rounded weights
    np.testing.assert_allclose(r.dimensionality, 0.4, atol=1e-6)
    assert r.W.dtype == np.float64


def test_not_a_superposition_model():
    with pytest.raises(ToylabError, match="toy model of superposition"):
        superposition_metrics(MLP.from_weights([np.eye(2), np.eye(2)]))
    with pytest.raises(ToylabError, match="threshold"):
        superposition_metrics(_net(np.eye(2)), threshold=-1)
    with pytest.raises(ToylabError, match="one architecture"):
        superposition_metrics([_net(np.eye(2)), _net(np.eye(3))])
