"""Comparing networks: exact functional distance, neuron matching, weight comparison."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from toylab import ToylabError
from toylab.circuits import (
    compare_weights,
    fourier_frequencies,
    functional_distance,
    match_neurons,
    modular_addition,
    transplant,
    xor_circuit,
)
from toylab.distributions import ModularArithmetic, xor_blobs
from toylab.models import MLP

DIST = xor_blobs(1.5, 0.8)


def _mlp64(ws, bs, act="relu"):
    from toylab.circuits.matching import build_mlp

    return build_mlp(ws, bs, act, dtype=np.float64)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**31 - 1),
    width=st.integers(2, 5),
)
def test_matching_recovers_permutation_and_scales(seed, width):
    rng = np.random.default_rng(seed)
    W = [rng.normal(size=(2, width)), rng.normal(size=(width, width)), rng.normal(size=(width, 2))]
    B = [rng.normal(size=width), rng.normal(size=width), rng.normal(size=2)]
    b = _mlp64(W, B)
    p0, p1 = rng.permutation(width), rng.permutation(width)
    s0, s1 = rng.uniform(0.1, 10, width), rng.uniform(0.1, 10, width)
    # unit i of a = s_i * unit p[i] of b
    Wa = [W[0][:, p0] * s0, W[1][p0][:, p1] / s0[:, None] * s1, W[2][p1] / s1[:, None]]
    Ba = [B[0][p0] * s0, B[1][p1] * s1, B[2]]
    a = _mlp64(Wa, Ba)
    m = match_neurons(a, b, DIST, threshold=0.0)
    # units that are dead or duplicates of another unit cannot be identified
    from toylab.circuits.matching import layer_moments

    for k in range(len(m.layers)):
        _, mb, _, _, bb = layer_moments(b, b, DIST, f"hidden_{k}")
        var = np.diag(bb) - mb**2
        assume(var.min() > 1e-6)
        cb = (bb - np.outer(mb, mb)) / np.sqrt(np.outer(var, var))
        assume(np.abs(cb - np.eye(width)).max() < 0.999)
    for lm, perm, scale in zip(m.layers, (p0, p1), (s0, s1), strict=True):
        np.testing.assert_array_equal(lm.perm, perm)
        np.testing.assert_allclose(lm.scale, scale, rtol=1e-9)
        np.testing.assert_allclose(lm.corr, 1.0, atol=1e-9)
    assert functional_distance(a, b, DIST).max_sup <= 1e-9
    cw = compare_weights(a, b, m)
    for key in cw.cosine:
        np.testing.assert_allclose(cw.cosine[key], 1.0, atol=1e-9)
        assert cw.relative_error[key].max() <= 1e-9
    assert functional_distance(cw.aligned, b, DIST).max_sup <= 1e-9


def _random(seed, widths):
    rng = np.random.default_rng(seed)
    ws = [rng.normal(size=(m, n)) for m, n in zip(widths[:-1], widths[1:], strict=True)]
    bs = [0.5 * rng.normal(size=n) for n in widths[1:]]
    return MLP.from_weights(ws, bs)


def test_distance_against_dense_grid_and_monte_carlo():
    a, b = _random(0, (2, 6, 2)), _random(1, (2, 5, 4, 2))  # different depths: padding
    res = functional_distance(a, b, DIST)
    assert res.tier == "exact" and res.error < 1e-9
    # dense grid: grid max <= exact sup, and the gap is at most Lipschitz * half-diagonal
    low, high = np.asarray(DIST.domain.low), np.asarray(DIST.domain.high)
    n = 801
    g = np.stack(np.meshgrid(np.linspace(low[0], high[0], n), np.linspace(low[1], high[1], n)),
                 -1).reshape(-1, 2)  # fmt: skip
    d = np.asarray(a(jnp.asarray(g)), np.float64) - np.asarray(b(jnp.asarray(g)), np.float64)
    grid_max = np.abs(d).max(0)
    lip = sum(np.prod([np.linalg.norm(w, 2) for w, _ in m.affine_layers()[0]]) for m in (a, b))
    h = np.linalg.norm((high - low) / (n - 1)) / 2
    assert np.all(grid_max <= res.sup + 1e-5)
    assert np.all(res.sup - grid_max <= lip * h + 1e-5)
    # Monte Carlo L2: within 5 standard errors (failure budget ~1e-6 per column)
    x = np.asarray(DIST.sample(jax.random.key(0), 200_000).x, np.float64)
    dm = np.asarray(a(jnp.asarray(x)), np.float64) - np.asarray(b(jnp.asarray(x)), np.float64)
    sq = dm**2
    se = sq.std(0) / np.sqrt(len(x))
    assert np.all(np.abs(sq.mean(0) - res.mean_square) <= 5 * se + 1e-6)
    # chosen neurons: a hidden unit against another network's hidden unit
    one = functional_distance(a, b, DIST, neurons={"hidden_0:2": "hidden_1:3"})
    va = np.asarray(a.intermediates(jnp.asarray(x))["hidden_0"][:, 2], np.float64)
    vb = np.asarray(b.intermediates(jnp.asarray(x))["hidden_1"][:, 3], np.float64)
    sq1 = (va - vb) ** 2
    assert abs(sq1.mean() - one.mean_square[0]) <= 5 * sq1.std() / np.sqrt(len(x)) + 1e-6


def test_padding_is_exact_and_errors_teach():
    a = _random(2, (2, 4, 2))
    layers, _ = a.affine_layers()
    (w0, b0), (w1, b1) = layers
    deeper = MLP.from_weights([w0, np.eye(4), w1], [b0, np.zeros(4), b1])  # relu(h) = h, h >= 0
    assert functional_distance(a, deeper, DIST).max_sup <= 1e-5  # float32 weights
    assert functional_distance(deeper, a, DIST).max_sup <= 1e-5
    quad = MLP.from_weights([w0, w1], [b0, b1], "quadratic")
    with pytest.raises(ToylabError, match="num_samples"):
        functional_distance(quad, quad, DIST)
    tanh_a = MLP.from_weights([w0, w1], [b0, b1], "tanh")
    tanh_b = MLP.from_weights([w0, 2 * w1], [b0, b1], "tanh")
    est = functional_distance(tanh_a, tanh_b, DIST, num_samples=4000, key=jax.random.key(1))
    assert est.tier == "sampled" and est.error > 0 and est.max_l2 > 0
    with pytest.raises(ToylabError, match="neurons"):
        functional_distance(a, _random(3, (2, 4, 3)), DIST)


def test_finite_distance_is_exhaustive():
    circ = modular_addition(7)
    layers, _ = circ.model.affine_layers()
    from toylab.models import with_weights

    doubled = with_weights(circ.model, 1, W=2 * layers[1][0])
    res = functional_distance(circ.model, doubled, circ.dist)
    logits = np.asarray(circ.model(jnp.asarray(circ.dist.domain.inputs)), np.float64)
    assert res.tier == "exact"
    np.testing.assert_allclose(res.sup, np.abs(logits).max(0), rtol=1e-5)
    np.testing.assert_allclose(res.mean_square, (logits**2).mean(0), rtol=1e-5)


def test_transplant_and_matching_against_a_circuit():
    circ = xor_circuit(DIST, activation="relu")
    layers, _ = circ.model.affine_layers()
    (w0, b0), (w1, b1) = layers
    scale = np.array([2.0, 0.5, 3.0, 1.0])
    perm = np.array([2, 0, 3, 1])
    trained_like = MLP.from_weights([w0[:, perm] * scale, w1[perm] / scale[:, None]],
                                    [b0[perm] * scale, b1])  # fmt: skip
    m = match_neurons(trained_like, circ.model, DIST)
    np.testing.assert_array_equal(m.layers[0].perm, perm)
    # transplanting the handwritten unit at the matched scale changes nothing
    i, j, _, s = m.pairs()[0]
    res = transplant(trained_like, circ.model, i, j, DIST, scale=s)
    assert abs(res.effect) < 1e-9
    # at the wrong sign it breaks the network
    bad = transplant(trained_like, circ.model, i, j, DIST, scale=-s)
    assert bad.effect < -0.05


def test_fourier_key_frequencies_of_the_construction():
    circ = modular_addition(11, [2, 5])
    fr = fourier_frequencies(circ.model, 11)
    assert fr.frequencies_used(0.999) == {2: 6, 5: 6}
    np.testing.assert_allclose(fr.share_a, 1.0, atol=1e-9)
    with pytest.raises(ToylabError, match="one-hot"):
        fourier_frequencies(circ.model, 13)
    assert ModularArithmetic(11).p == 11
