"""analyze(): exact statistics of every neuron against independent references.

Monte Carlo references use N samples; a check at 5 standard errors fails by chance
with probability < 6e-7 per comparison, so the whole file's false-failure rate is
below 1e-4.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from hypothesis import given, settings
from hypothesis import strategies as st

from toylab import ToylabError
from toylab.distributions import GaussianMixture, make, two_blobs, xor_blobs
from toylab.exact import ExactAnalysis, FiniteResult, analyze, extrema, finite_table
from toylab.models import MLP, OneHotMLP, ablate, activations

N_MC = 400_000


def random_mlp(widths, activation="relu", seed=0):
    return MLP(widths, activation, rngs=nnx.Rngs(seed))


def mc_stats(model, dist, key, n=N_MC):
    batch = dist.sample(key, n, dtype=jnp.float32)
    x = np.asarray(batch.x, np.float64)
    layers, acts = model.affine_layers()
    from toylab.network import Network

    return Network.from_layers(layers, acts).forward(x), np.asarray(batch.y)


ANISO = GaussianMixture(
    means=((-1.0, 0.5), (1.5, -0.5), (0.0, 2.0)),
    covs=(((0.6, 0.25), (0.25, 0.4)), ((0.3, -0.1), (-0.1, 0.8)), ((0.5, 0.0), (0.0, 0.2))),
    weights=(0.3, 0.5, 0.2),
    classes=(0, 1, 0),
)


@pytest.mark.parametrize(
    "dist, activation",
    [(two_blobs(), "relu"), (ANISO, "leaky_relu"), (xor_blobs(), "abs"), (ANISO, "hardtanh")],
)
def test_exact_moments_and_accuracy_agree_with_monte_carlo(dist, activation):
    model = random_mlp((2, 6, 5, dist.num_classes), activation, seed=3)
    res = analyze(model, dist)
    assert isinstance(res, ExactAnalysis) and res.tier == "exact"
    assert res.truncation_bound < 1e-9
    values, y = mc_stats(model, dist, jax.random.key(1))
    for key in ("hidden_0", "hidden_1.pre", "hidden_1", "output"):
        v = values[key]
        mom = res.moments[key]
        se = v.std(0) / np.sqrt(len(v)) + 1e-12
        assert np.all(np.abs(mom.mean - v.mean(0)) < 5 * se), key
        fire = (v > 0).mean(0)
        se_f = np.sqrt(fire * (1 - fire) / len(v)) + 1e-6
        assert np.all(np.abs(mom.firing_probability - fire) < 5 * se_f), key
        prod = v[:, :, None] * v[:, None, :]
        se2 = prod.std(0) / np.sqrt(len(v)) + 1e-12
        assert np.all(np.abs(mom.second_moment - prod.mean(0)) < 5 * se2), key
        np.testing.assert_allclose(mom.cov, mom.second_moment - np.outer(mom.mean, mom.mean),
                                   atol=1e-12)  # fmt: skip
    correct = np.argmax(values["output"], -1) == y
    se_acc = np.sqrt(res.accuracy * (1 - res.accuracy) / len(y))
    assert abs(res.accuracy - correct.mean()) < 5 * se_acc
    for c in range(dist.num_classes):
        sel = y == c
        se_c = np.sqrt(0.25 / sel.sum())
        assert abs(res.class_accuracy[c] - correct[sel].mean()) < 5 * se_c


def test_fisher_discriminant_reaches_bayes_accuracy_exactly():
    dist = two_blobs(distance=3.0)
    # logits (x1, -x1): the boundary x1 = 0 is Bayes-optimal for equal-weight blobs on the x1 axis
    model = MLP.from_weights([np.eye(2), np.array([[1.0, -1.0], [0.0, 0.0]])], None, "identity")
    res = analyze(model, dist)
    assert res.accuracy == pytest.approx(dist.bayes().accuracy, abs=1e-12)
    assert res.gap == pytest.approx(0.0, abs=1e-12)


def test_extrema_over_the_domain_match_a_dense_grid_and_are_attained():
    dist = xor_blobs()
    model = random_mlp((2, 8, 8, 2), "relu", seed=5)
    res = analyze(model, dist)
    ext = res.extrema("hidden_1")
    xx, yy = dist.domain.grid(401)
    pts = np.stack([xx.ravel(), yy.ravel()], -1)
    layers, acts = model.affine_layers()
    from toylab.network import Network

    grid = Network.from_layers(layers, acts).forward(pts)["hidden_1"]
    at = Network.from_layers(layers, acts).forward(np.asarray(ext.argmax))["hidden_1"]
    scale = np.abs(grid).max() + 1
    assert np.all(grid.max(0) <= ext.max + 1e-9 * scale)
    np.testing.assert_allclose(np.diagonal(at), ext.max, atol=1e-9 * scale)
    assert np.all(ext.max - grid.max(0) < 0.05 * scale)  # the grid gets close


def test_region_areas_cover_the_domain_and_ablation_is_exact():
    dist = two_blobs()
    model = random_mlp((2, 8, 2), "relu", seed=2)
    res = analyze(model, dist)
    assert res.geometry.areas.sum() == pytest.approx(dist.domain.volume, rel=1e-12)
    mean = float(res.moments["hidden_0"].mean[3])
    edited = ablate(model, "hidden_0:3", mean)
    x = jnp.asarray(dist.sample(jax.random.key(0), 64).x)
    a = activations(model, x)
    h = np.asarray(a["hidden_0"]).copy()
    h[:, 3] = mean
    W, b = model.affine_layers()[0][1]
    np.testing.assert_allclose(np.asarray(edited(x)), h @ W + b, rtol=1e-5, atol=1e-5)
    # mean ablation of a last-hidden-layer neuron keeps the (linear) output's exact mean
    np.testing.assert_allclose(
        analyze(edited, dist).moments["output"].mean, res.moments["output"].mean, atol=1e-9
    )


def test_quadrature_tier_for_rings_agrees_with_monte_carlo():
    dist = make("rings", radii=[1.0, 2.0], widths=[0.2, 0.2])
    model = random_mlp((2, 6, 2), "relu", seed=1)
    res = analyze(model, dist)
    assert res.tier == "bounded" and res.error < 1e-4
    values, y = mc_stats(model, dist, jax.random.key(2), n=200_000)
    v = values["hidden_0"]
    se = v.std(0) / np.sqrt(len(v)) + 1e-12
    assert np.all(np.abs(res.moments["hidden_0"].mean - v.mean(0)) < 5 * se + res.error)
    acc = (np.argmax(values["output"], -1) == y).mean()
    assert abs(res.accuracy - acc) < 5 * np.sqrt(0.25 / len(y)) + res.error


def test_finite_table_is_exhaustive_and_matches_the_model():
    dist = make("modular_arithmetic", p=7)
    model = OneHotMLP(7, (12,), 7, "relu", rngs=nnx.Rngs(0))
    res = analyze(model, dist)
    assert isinstance(res, FiniteResult) and res.tier == "exact" and res.num_inputs == 49
    table = finite_table(model, dist, chunk_size=5)  # chunking must not change anything
    out = np.asarray(model(jnp.asarray(dist.domain.inputs)))
    np.testing.assert_allclose(table.table["output"], out, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(table.mean["hidden_0"], res.mean["hidden_0"], rtol=1e-12)
    np.testing.assert_allclose(res.mean["hidden_0"], table.table["hidden_0"].mean(0), rtol=1e-12)
    acc = np.mean(np.argmax(out, -1) == dist.domain.labels)
    assert res.accuracy == pytest.approx(acc, abs=1e-12)
    assert table.values("hidden_0:4").shape == (49,)


def test_not_applicable_and_bad_inputs():
    assert analyze(random_mlp((2, 4, 2), "tanh"), two_blobs()) is None
    assert analyze(random_mlp((3, 4, 2), "relu"), two_blobs(dim=3)) is None
    with pytest.raises(ToylabError, match="finite domain"):
        finite_table(random_mlp((2, 4, 2)), two_blobs())
    part = analyze(random_mlp((2, 4, 2)), two_blobs()).geometry
    with pytest.raises(ToylabError):
        extrema(part, "hiden_0")


@st.composite
def wide_networks(draw):
    """Random piecewise-linear MLPs with widths 1-32 and depths 1-4, some degenerate units."""
    depth = draw(st.integers(1, 4))
    widths = [2] + [draw(st.integers(1, 32)) for _ in range(depth)] + [2]
    act = draw(st.sampled_from(["relu", "leaky_relu", "abs", "hardtanh", "identity"]))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    weights, biases = [], []
    for a, b in zip(widths[:-1], widths[1:], strict=True):
        w = rng.normal(size=(a, b)) * np.sqrt(2 / a)
        if draw(st.booleans()):
            w[:, 0] = 0.0  # a constant unit
        if b > 1 and draw(st.booleans()):
            w[:, -1] = w[:, 0]  # a duplicate unit
        weights.append(w)
        biases.append(rng.normal(size=b) * draw(st.sampled_from([0.0, 0.1, 1.0])))
    return MLP.from_weights(weights, biases, act)


@settings(max_examples=15, deadline=None)
@given(model=wide_networks())
def test_invariants_of_exact_integrals_for_random_networks(model):
    dist = ANISO
    res = analyze(model, dist)
    # the integration box holds all but a bounded sliver of the mass
    from toylab.exact import gaussian_mixture_arrays, mixture_polygon_moments

    m0 = mixture_polygon_moments(res.plane.polygons, *gaussian_mixture_arrays(dist)[:3])[0]
    assert abs(m0.sum() - 1.0) < 1e-12
    assert res.plane.areas.sum() == pytest.approx(
        np.prod(np.ptp(res.plane.domain, axis=0)), rel=1e-12
    )
    for mom in res.moments.values():
        assert np.all((mom.firing_probability >= -1e-12) & (mom.firing_probability <= 1 + 1e-12))
        eig = np.linalg.eigvalsh(mom.cov)
        assert eig.min() >= -1e-9 * max(1.0, eig.max())
    assert 0.0 <= res.accuracy <= 1.0 + 1e-12
    assert res.accuracy <= res.bayes_accuracy + 1e-9
