"""Comparing networks: exact functional distance, neuron matching, weight comparison."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from toylab import NotApplicable, ToylabError
from toylab.circuits import (
    compare_weights,
    fourier_frequencies,
    functional_distance,
    match_neurons,
    modular_addition,
    transplant,
    xor_circuit,
)
from toylab.distributions import xor_blobs
from toylab.models import MLP, with_weights
from toylab.network import Network

DIST = xor_blobs(1.5, 0.8)


def _net64(ws, bs, act="relu"):
    return Network.from_weights(ws, bs, act, dtype=np.float64)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**31 - 1),
    width=st.integers(2, 5),
)
def test_matching_recovers_permutation_and_scales(seed, width):
    rng = np.random.default_rng(seed)
    W = [rng.normal(size=(2, width)), rng.normal(size=(width, width)), rng.normal(size=(width, 2))]
    B = [rng.normal(size=width), rng.normal(size=width), rng.normal(size=2)]
    b = _net64(W, B)
    p0, p1 = rng.permutation(width), rng.permutation(width)
    s0, s1 = rng.uniform(0.1, 10, width), rng.uniform(0.1, 10, width)
    # unit i of a = s_i * unit p[i] of b
    Wa = [W[0][:, p0] * s0, W[1][p0][:, p1] / s0[:, None] * s1, W[2][p1] / s1[:, None]]
    Ba = [B[0][p0] * s0, B[1][p1] * s1, B[2]]
    a = _net64(Wa, Ba)
    m = match_neurons(a, b, DIST, threshold=0.0)
    # a's breakpoint lines coincide with b's, so the joint partition cuts along pairs of
    # lines that differ by rounding: exact, or certified with the tolerance band's bound
    assert m.tier in ("exact", "certified")
    # units that are dead or duplicates of another unit cannot be identified: the match
    # flags them (tested in test_matching_flags_dead_and_duplicate_units)
    for lm in m.layers:
        assume(not (lm.dead_a or lm.dead_b or lm.duplicates_a or lm.duplicates_b))
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
    # the error bounds rounding and truncation (measured 3e-11 here); it is not zero
    assert res.tier == "exact" and 0 < res.error < 1e-9 and res.errors["truncation"] > 0
    # dense grid: grid max <= exact sup, and the gap is at most Lipschitz * half-diagonal
    low, high = np.asarray(DIST.domain.low), np.asarray(DIST.domain.high)
    n = 801
    g = np.stack(np.meshgrid(np.linspace(low[0], high[0], n), np.linspace(low[1], high[1], n)),
                 -1).reshape(-1, 2)  # fmt: skip
    d = np.asarray(a(jnp.asarray(g)), np.float64) - np.asarray(b(jnp.asarray(g)), np.float64)
    grid_max = np.abs(d).max(0)
    lip = sum(np.prod([np.linalg.norm(w, 2) for w, _ in m.to_network().dense_layers()])
              for m in (a, b))  # fmt: skip
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
    (w0, b0), (w1, b1) = a.to_network().dense_layers()
    deeper = MLP.from_weights([w0, np.eye(4), w1], [b0, np.zeros(4), b1])  # relu(h) = h, h >= 0
    # the same float32 weights, cast exactly to float64, and an exact relu(h) = h layer:
    # only float64 rounding of the composed maps remains
    assert functional_distance(a, deeper, DIST).max_sup <= 1e-12
    assert functional_distance(deeper, a, DIST).max_sup <= 1e-12
    quad = MLP.from_weights([w0, w1], [b0, b1], "quadratic")
    with pytest.raises(NotApplicable, match="num_samples"):
        functional_distance(quad, quad, DIST)
    tanh_a = MLP.from_weights([w0, w1], [b0, b1], "tanh")
    tanh_b = MLP.from_weights([w0, 2 * w1], [b0, b1], "tanh")
    est = functional_distance(tanh_a, tanh_b, DIST, num_samples=4000, key=jax.random.key(1))
    assert est.tier == "sampled" and est.error > 0 and est.max_l2 > 0
    # the error is the half-width of the stated confidence interval: z(0.99) / z(0.95)
    wide = functional_distance(tanh_a, tanh_b, DIST, num_samples=4000, key=jax.random.key(1),
                               confidence=0.99)  # fmt: skip
    assert wide.error / est.error == pytest.approx(2.5758293 / 1.9599640, rel=1e-6)
    with pytest.raises(ToylabError, match="confidence"):
        functional_distance(tanh_a, tanh_b, DIST, num_samples=10, key=jax.random.key(1),
                            confidence=1.5)  # fmt: skip
    with pytest.raises(ToylabError, match="neurons"):
        functional_distance(a, _random(3, (2, 4, 3)), DIST)


def test_finite_distance_is_exhaustive():
    circ = modular_addition(7)
    layers = circ.model.dense_layers()
    doubled = with_weights(circ.model, 1, W=2 * layers[1][0])
    res = functional_distance(circ.model, doubled, circ.dist)
    # reference: the circuit's logits on every input, in float64 (the difference is -logits)
    logits = circ.model(np.asarray(circ.dist.domain.inputs, np.float64))
    assert res.tier == "exact"
    np.testing.assert_allclose(res.sup, np.abs(logits).max(0), rtol=1e-13)
    np.testing.assert_allclose(res.mean_square, (logits**2).mean(0), rtol=1e-13)


def test_transplant_and_matching_against_a_circuit():
    circ = xor_circuit(DIST, activation="relu")
    (w0, b0), (w1, b1) = circ.model.dense_layers()
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
    np.testing.assert_allclose(fr.share_a, 1.0, atol=1e-12)
    with pytest.raises(ToylabError, match="one-hot"):
        fourier_frequencies(circ.model, 13)
