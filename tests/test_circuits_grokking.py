"""Grokking modular addition and the key-frequency analysis of the trained network."""

import jax
import numpy as np
import pytest

from toylab import ToylabError
from toylab.circuits import (
    KeyFrequencyResult,
    fit,
    key_frequency_analysis,
    modular_addition,
    train_modular_addition,
)
from toylab.distributions import ModularArithmetic
from toylab.exact import finite_table
from toylab.models import MLP, ModelConfig, build_model, with_weights

P = 23
HIDDEN = 96


def _exact_correct(model, dist):
    """Per pair (in ``dist.domain`` order): the label is the unique arg-max logit."""
    out = finite_table(model, dist).table["output"]
    labels = np.asarray(dist.domain.labels)
    unique = (out == out.max(-1, keepdims=True)).sum(-1) == 1
    return (out.argmax(-1) == labels) & unique


@pytest.fixture(scope="module")
def grokked():
    return train_modular_addition(P, key=jax.random.key(0), hidden=HIDDEN)


def test_quadratic_mlp_generalises_to_held_out_pairs(grokked):
    dist = ModularArithmetic(P)
    mask = grokked.train_mask
    assert mask is not None and mask.shape == (P * P,)
    # half the pairs are held out and never seen in training
    assert (~mask).sum() == P * P - round(0.5 * P * P)
    correct = _exact_correct(grokked.model, dist)
    assert correct[mask].mean() == 1.0
    # exact held-out accuracy (all 264 unseen pairs evaluated); measured 1.0 for seeds 0-5
    assert correct[~mask].mean() >= 0.95
    assert finite_table(grokked.model, dist).accuracy >= 0.95
    assert grokked.test_accuracy == pytest.approx(correct[~mask].mean())


def test_grokked_units_are_single_frequency_and_close_to_the_construction(grokked):
    dist = ModularArithmetic(P)
    kf = key_frequency_analysis(grokked.model, P)
    assert isinstance(kf, KeyFrequencyResult)
    init = build_model(
        ModelConfig(kind="onehot_mlp", hidden=(HIDDEN,), activation="quadratic"),
        dist,
        jax.random.key(123),
    )
    kf0 = key_frequency_analysis(init, P)
    # Power concentration. A random unit spreads its power over the 11 frequencies
    # (median share at the best one about 0.2); a construction unit has exactly 1.
    # Trained: median 0.93-0.98 over all units (seeds 0-2), 0.999 over the active ones.
    # 0.8 is far above chance yet leaves room for the near-dead units that weight decay
    # shrank, whose spectra are noise.
    assert np.median(kf0.power_fraction) < 0.4
    assert np.median(kf.power_fraction) >= 0.8
    assert np.median(kf.power_fraction[kf.active]) >= 0.95
    # Closeness to the construction's unit form (relative residual, 0 = exact form).
    # Measured: trained active units median 0.10-0.15, random init 0.94.
    assert np.median(kf0.residual) > 0.8
    assert np.median(kf.residual[kf.active]) <= 0.3
    assert np.median(kf.residual[kf.active]) < np.median(kf0.residual) - 0.5
    # The output reads the (a + b) term: output phase = phi_a + phi_b (median error
    # about 0.03 rad); a and b are symmetric, so their amplitudes agree (ratio ~0.999).
    assert np.median(np.abs(kf.phase_sum_error[kf.active])) < 0.2
    assert np.median(np.abs(np.log(kf.amplitude_b / kf.amplitude_a))[kf.active]) < 0.1
    # Random units have no such relation (uniform phase error: median about pi/2).
    assert np.median(np.abs(kf0.phase_sum_error)) > 0.8
    # Key frequencies: many live units, several frequencies, counts add up.
    assert kf.active.sum() >= HIDDEN // 3
    assert len(kf.key_frequencies) >= 3
    assert sum(kf.key_frequencies.values()) == kf.active.sum()
    assert all(1 <= f <= (P - 1) // 2 for f in kf.key_frequencies)


def test_fit_mse_loss_and_bad_arguments():
    dist = ModularArithmetic(5)
    model = build_model(
        ModelConfig(kind="onehot_mlp", hidden=(4,), activation="quadratic"), dist, jax.random.key(0)
    )
    with pytest.raises(ToylabError, match="loss"):
        fit(model, dist, key=jax.random.key(0), loss="hinge")
    res = fit(model, dist, key=jax.random.key(0), num_steps=3, loss="mse", train_fraction=0.6)
    assert res.train_mask is not None and res.train_mask.sum() == round(0.6 * 25)
    assert np.isfinite(res.losses).all()
    with pytest.raises(ToylabError, match="init_scale"):
        train_modular_addition(5, key=jax.random.key(0), init_scale=0.0)


def test_analysis_recovers_the_construction_exactly():
    p = 13
    circ = modular_addition(p, [2, 5])
    kf = key_frequency_analysis(circ.model, p)
    assert kf.key_frequencies == {2: 6, 5: 6}
    np.testing.assert_array_equal(kf.frequency, [2] * 6 + [5] * 6)
    # float64 weights and DFTs of p = 13 values: rounding of order p eps (measured 2e-15)
    np.testing.assert_allclose(kf.power_fraction, 1.0, atol=1e-12)
    np.testing.assert_allclose(kf.share_out, 1.0, atol=1e-12)
    np.testing.assert_allclose(kf.residual, 0.0, atol=1e-12)
    np.testing.assert_allclose(kf.amplitude_a, kf.amplitude_b, rtol=1e-12)
    # h_+ units: same phase on a and b; h_- units: opposite (difference pi)
    diff = np.abs(kf.phase_difference)
    np.testing.assert_allclose(diff[0::2], 0.0, atol=1e-12)
    np.testing.assert_allclose(diff[1::2], np.pi, atol=1e-12)
    np.testing.assert_allclose(kf.phase_sum_error, 0.0, atol=1e-12)
    assert kf.active.all()
    assert _exact_correct(kf.idealized, circ.dist).all()


def test_analysis_is_equivariant_under_permutation_and_rescaling():
    p = 11
    circ = modular_addition(p, [1, 3, 4])
    (w0, b0), (w1, b1) = circ.model.dense_layers()
    n = w0.shape[1]
    rng = np.random.default_rng(0)
    perm = rng.permutation(n)
    # (s x)^2 / s^2 = x^2: any non-zero s, negative included, keeps the function
    s = rng.uniform(0.3, 3.0, n) * rng.choice([-1.0, 1.0], n)
    m = with_weights(circ.model, 0, w0[:, perm] * s, b0[perm] * s)
    m = with_weights(m, 1, w1[perm] / s[:, None] ** 2, b1)
    assert _exact_correct(m, circ.dist).all()
    base, kf = key_frequency_analysis(circ.model, p), key_frequency_analysis(m, p)
    np.testing.assert_array_equal(kf.frequency, base.frequency[perm])
    assert kf.key_frequencies == base.key_frequencies == {1: 6, 3: 6, 4: 6}
    np.testing.assert_allclose(kf.residual, 0.0, atol=1e-12)
    np.testing.assert_allclose(kf.power_fraction, 1.0, atol=1e-12)
    np.testing.assert_allclose(kf.amplitude_a, base.amplitude_a[perm] * np.abs(s), rtol=1e-12)
    np.testing.assert_allclose(kf.phase_sum_error, 0.0, atol=1e-12)


def test_analysis_flags_a_wrong_output_phase():
    """A unit whose output reads cos(theta (a + b) + psi) with the wrong psi is far from
    the construction even though its input is a pure sinusoid."""
    p = 11
    circ = modular_addition(p, [2])
    (w0, b0), (w1, b1) = circ.model.dense_layers()
    w1 = w1.copy()
    w1[0] = -w1[0]  # flip one unit's output sign: phase off by pi, gamma clipped to 0
    kf = key_frequency_analysis(with_weights(circ.model, 1, w1, b1), p)
    assert kf.residual[0] == pytest.approx(np.sqrt(0.5), abs=1e-12)
    np.testing.assert_allclose(kf.residual[1:], 0.0, atol=1e-12)
    assert abs(kf.phase_sum_error[0]) == pytest.approx(np.pi, abs=1e-12)
    assert kf.power_fraction[0] == pytest.approx(1.0, abs=1e-12)


def test_analysis_errors():
    circ = modular_addition(11, [2])
    with pytest.raises(ToylabError, match="one-hot"):
        key_frequency_analysis(circ.model, 13)
    relu = MLP.from_weights([np.ones((22, 3)), np.ones((3, 11))], activation="relu")
    with pytest.raises(ToylabError, match="quadratic"):
        key_frequency_analysis(relu, 11)
    with pytest.raises(ToylabError, match="active_tol"):
        key_frequency_analysis(circ.model, 11, active_tol=2.0)
