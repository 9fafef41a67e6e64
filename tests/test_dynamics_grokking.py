"""Grokking progress measures: each measure against an independent direct computation, the
Fourier construction's restricted/excluded loss, the phase rule, and a small run."""

import math

import numpy as np
import pytest

from toylab import NotApplicable, ToylabError
from toylab.circuits import modular_addition
from toylab.distributions import ModularArithmetic
from toylab.dynamics import GrokkingResult, key_frequencies_of, locate_phases, progress_measures
from toylab.dynamics.grokking import logit_measures, neuron_fractions, restrict_logits
from toylab.network import Network

P = 11


def _basis(p, freqs):
    """Explicit columns 1, cos(w_f (a+b)), sin(w_f (a+b)) over the pairs in domain order."""
    a, b = np.divmod(np.arange(p * p), p)
    cols = [np.ones(p * p)]
    for f in freqs:
        w = 2 * np.pi * f * (a + b) / p
        cols += [np.cos(w), np.sin(w)]
    return np.stack(cols, 1)


def _cross_entropy(logits, labels):
    """-log softmax_y written out directly (no logsumexp)."""
    z = np.exp(logits - logits.max(1, keepdims=True))
    return -np.log(z[np.arange(len(labels)), labels] / z.sum(1))


def test_restricted_logits_are_the_least_squares_projection():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(P * P, P))
    freqs = [2, 5]
    basis = _basis(P, freqs)
    coef, *_ = np.linalg.lstsq(basis, logits, rcond=None)
    # float64 projections of O(1) numbers: agreement to rounding (1e-12 is ~1e4 eps)
    np.testing.assert_allclose(restrict_logits(logits, P, freqs), basis @ coef, atol=1e-12)
    # frequency f and p - f are one real frequency
    np.testing.assert_allclose(restrict_logits(logits, P, [P - 2, 5]), basis @ coef, atol=1e-12)


def test_the_fourier_construction_lives_in_its_key_frequencies():
    """modular_addition(p, [2, 5]) writes logits sum_f cos(w_f (a + b - c)): restricting
    to {2, 5} changes nothing, excluding them leaves constant logits (loss log p)."""
    freqs = (2, 5)
    net = modular_addition(P, freqs).model
    assert key_frequencies_of(net, P) == freqs
    rng = np.random.default_rng(1)
    mask = rng.random(P * P) < 0.5
    m = logit_measures(net, P, mask, freqs)
    dist = ModularArithmetic(P)
    logits = net.numpy(np.float64)(np.asarray(dist.domain.inputs, np.float64))
    labels = np.asarray(dist.domain.labels)
    ce = _cross_entropy(logits, labels)
    assert m["train_loss"] == pytest.approx(ce[mask].mean(), rel=1e-12)
    assert m["test_loss"] == pytest.approx(ce[~mask].mean(), rel=1e-12)
    assert m["train_accuracy"] == 1.0 and m["test_accuracy"] == 1.0
    assert m["restricted_loss"] == pytest.approx(ce.mean(), rel=1e-10)
    # excluded: each logit's mean over the pairs is 0, so all logits are 0 -> loss log p
    assert m["excluded_loss"] == pytest.approx(math.log(P), rel=1e-10)
    # the embedding holds only frequencies 2 and 5; every unit is one-frequency
    assert m["embedding_key_fraction"] == pytest.approx(1.0, abs=1e-12)
    assert m["embedding_top_fraction"] == pytest.approx(1.0, abs=1e-12)
    # each unit reads one frequency, but the two frequencies have equal power
    assert m["embedding_unit_fraction"] == pytest.approx(1.0, abs=1e-12)
    assert m["neuron_fraction"] == {"hidden_0": pytest.approx(1.0)}
    # weight norm: the sum of squares of every weight and bias, directly
    layers = net.dense_layers(np.float64)
    direct = sum(float(np.sum(w * w) + np.sum(b * b)) for w, b in layers)
    assert m["weight_norm"] == pytest.approx(direct, rel=1e-12)
    # restricting to other frequencies throws the algorithm away: chance-level loss
    other = logit_measures(net, P, mask, (1, 3))
    assert other["restricted_loss"] == pytest.approx(math.log(P), rel=1e-10)
    assert other["excluded_loss"] == pytest.approx(m["train_loss"], rel=1e-10)


def test_embedding_fraction_against_explicit_sinusoid_fits():
    rng = np.random.default_rng(2)
    w0 = rng.normal(size=(2 * P, 7))
    net = Network.from_weights(
        [w0, rng.normal(size=(7, P))], [rng.normal(size=7), np.zeros(P)], "relu", dtype=np.float64
    )
    x = np.arange(P)
    unit = np.zeros((7, (P - 1) // 2))
    for f in range(1, (P - 1) // 2 + 1):
        for block in (w0[:P], w0[P:]):
            for fn in (np.cos, np.sin):
                v = fn(2 * np.pi * f * x / P)
                unit[:, f - 1] += (v @ block) ** 2 / (v @ v)
    # least-squares sinusoid energies (p/2 |coef|^2 = 2 |DFT|^2 / p): proportional to the
    # folded DFT power, so every fraction agrees
    power = unit.sum(0)
    keys = key_frequencies_of(net, P, key_ratio=0.5)
    assert keys == tuple(int(f) + 1 for f in np.flatnonzero(power >= 0.5 * power.mean()))
    assert key_frequencies_of(net, P, key_ratio=1.0) == tuple(
        int(f) + 1 for f in np.flatnonzero(power >= power.mean())
    )
    mask = np.ones(P * P, bool)
    m = logit_measures(net, P, mask, keys)
    want = sum(power[f - 1] for f in keys) / power.sum()
    assert m["embedding_key_fraction"] == pytest.approx(want, rel=1e-10)
    assert m["embedding_top_fraction"] == pytest.approx(
        np.sort(power)[::-1][: len(keys)].sum() / power.sum(), rel=1e-10
    )
    assert m["embedding_unit_fraction"] == pytest.approx(unit.max(1).sum() / power.sum(), rel=1e-10)
    assert math.isnan(m["test_loss"]) and math.isnan(m["test_accuracy"])


def test_neuron_fraction_separates_single_frequency_units_from_noise():
    a, b = np.divmod(np.arange(P * P), P)
    w = 2 * np.pi * 3 / P
    pure = (np.cos(w * a + 0.3) + 0.5 * np.cos(w * b)) ** 2  # quadratic unit at f = 3
    relu = np.maximum(np.cos(w * a) + np.cos(w * b), 0)  # ReLU unit at f = 3
    noise = np.random.default_rng(3).normal(size=P * P)
    dead = np.zeros(P * P)
    faint = 1e-3 * np.random.default_rng(4).normal(size=P * P)  # below 1% of the variance
    table = {"hidden_0": np.stack([pure, relu, noise, dead, faint], 1)}
    frac, share, best = neuron_fractions(table, P)["hidden_0"]
    assert share[0] == pytest.approx(1.0, abs=1e-12) and best[0] == 3
    # ReLU harmonics beyond the second hold little power (measured share 0.97)
    assert share[1] > 0.9 and best[1] == 3
    # white noise: 24 of the 120 non-constant bins at best (5 frequencies x 24 bins overlap
    # only at 0), expected share ~ 24/120 = 0.2 plus the max over 5 draws
    assert share[2] < 0.5
    assert math.isnan(share[3]) and share[4] < 0.5
    assert frac == pytest.approx(2 / 3)  # 2 of the 3 live units (the faint one is not live)
    assert neuron_fractions(table, P, live_tol=0.0)["hidden_0"][0] == pytest.approx(2 / 4)


def test_phase_rule_on_handwritten_curves():
    steps = [0, 10, 100, 1000, 2000, 5000, 10000]
    m = {
        "train_accuracy": np.array([0.0, 0.5, 1.0, 1.0, 1.0, 1.0, 1.0]),
        "test_accuracy": np.array([0.0, 0.0, 0.0, 0.05, 0.3, 0.97, 1.0]),
        "train_loss": np.array([3.0, 2.0, 0.1, 0.05, 0.04, 0.03, 0.02]),
        "test_loss": np.array([3.0, 4.0, 6.0, 6.0, 5.0, 0.5, 0.1]),
        "restricted_loss": np.array([3.0, 3.0, 2.5, 1.0, 0.5, 0.2, 0.1]),
        "excluded_loss": np.array([3.0, 2.0, 0.5, 0.2, 2.5, 4.0, 5.0]),
        "weight_norm": np.array([10.0, 12.0, 14.0, 13.0, 12.0, 6.0, 5.0]),
        "embedding_key_fraction": np.linspace(0.2, 0.9, 7),
    }
    ph = locate_phases(steps, m)
    # train accuracy 1 at step 100; excluded loss smallest at 1000; test accuracy last
    # <= 0.5 at 2000 and first >= 0.95 at 5000
    assert ph.memorisation == (0, 1000)
    assert ph.circuit_formation == (1000, 2000)
    assert ph.cleanup == (2000, 5000)
    assert (ph.memorisation_end, ph.circuit_start, ph.cleanup_start, ph.grok_step) == (
        100, 1000, 2000, 5000,
    )  # fmt: skip
    assert ph.trends["circuit_formation"]["excluded_loss"] == pytest.approx(2.3)
    assert ph.trends["cleanup"]["weight_norm"] == pytest.approx(-6.0)
    assert ph.published_order
    # excluded loss still falling when test accuracy jumps: no circuit formation phase
    bad = dict(m, excluded_loss=np.array([3.0, 2.0, 0.5, 0.4, 0.3, 4.0, 5.0]))
    ph = locate_phases(steps, bad)
    assert ph.circuit_formation is None and ph.memorisation == (0, 2000)
    assert not ph.published_order
    # weight norm rising during cleanup: not the published order
    grow = dict(m, weight_norm=np.array([10.0, 12.0, 14.0, 13.0, 12.0, 16.0, 5.0]))
    assert not locate_phases(steps, grow).published_order
    # never generalises: circuit formation open to the end, no cleanup
    never = dict(m, test_accuracy=np.minimum(m["test_accuracy"], 0.2))
    ph = locate_phases(steps, never)
    assert ph.circuit_formation == (1000, 10000) and ph.cleanup is None and ph.grok_step is None
    # generalises while fitting: no memorisation phase
    direct = dict(m, test_accuracy=np.array([0.0, 0.5, 0.96, 1.0, 1.0, 1.0, 1.0]))
    ph = locate_phases(steps, direct)
    assert ph.memorisation is None and ph.circuit_formation is None
    with pytest.raises(ToylabError, match="test_low"):
        locate_phases(steps, m, test_low=0.99)


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    from toylab.config import parse_config
    from toylab.runs import start_run

    cfg = {"name": "grok", "seeds": [0, 1], "distribution": {"name": "modular_arithmetic", "p": 7},
           "model": {"kind": "onehot_mlp", "hidden": [16]},
           "train": {"data": "full", "train_fraction": 0.6, "num_steps": 40, "log_every": 40,
                     "checkpoints": "log:3", "optimizer": "adamw", "weight_decay": 0.1}}  # fmt: skip
    return start_run(parse_config(cfg), tmp_path_factory.mktemp("grok") / "run")


def test_progress_measures_along_a_run(small_run):
    from toylab.exact import finite_accuracy

    run = small_run
    res = progress_measures(run, members=[1])
    assert isinstance(res, GrokkingResult) and res.tier == "exact"
    steps = run.checkpoint_steps
    assert list(res.steps) == steps and res.members == (1,) and res.p == 7
    assert res.train_loss.shape == (1, len(steps)) and res.layer_weight_norm.shape[-1] == 2
    assert 0 <= res.error < 1e-6
    mask = np.asarray(run.ensemble.train_data[1], bool)
    dist = run.dist_of(1)
    labels = np.asarray(dist.domain.labels)
    x = np.asarray(dist.domain.inputs, np.float64)
    for j, s in enumerate(steps):
        model = run.model(1, s)
        acc = finite_accuracy(model, dist, mask)
        assert res.train_accuracy[0, j] == acc["train"] and res.test_accuracy[0, j] == acc["test"]
        # independent: the raw float32 parameters in float64, written out
        lay = model.to_network().dense_layers(np.float64)
        h = np.maximum(x @ lay[0][0] + lay[0][1], 0) @ lay[1][0] + lay[1][1]
        ce = _cross_entropy(h, labels)
        assert res.test_loss[0, j] == pytest.approx(ce[~mask].mean(), rel=1e-12)
        norm = sum(float((w * w).sum() + (b * b).sum()) for w, b in lay)
        assert res.weight_norm[0, j] == pytest.approx(norm, rel=1e-12)
    # key frequencies from the final checkpoint unless given
    final = run.model(1, steps[-1])
    assert res.key_frequencies == (key_frequencies_of(final, 7),)
    given = progress_measures(run, members=[0], key_frequencies=[1])
    assert given.key_frequencies == ((1,),)
    assert "member 0" in given.summary()


def test_progress_measures_refuses_bad_input(small_run):
    with pytest.raises(ToylabError, match="members"):
        progress_measures(small_run, members=[5])
    with pytest.raises(ToylabError, match="key_frequencies"):
        progress_measures(small_run, key_frequencies=[4])
    with pytest.raises(NotApplicable, match="no non-constant"):
        key_frequencies_of(
            Network.from_weights(
                [np.zeros((2 * P, 3)), np.zeros((3, P))],
                [np.zeros(3), np.zeros(P)],
                "relu",
                dtype=np.float64,
            ),
            P,
        )


def test_grokking_figure_draws_every_measure_and_shades_the_phases(small_run):
    from toylab.viz.grokking import grokking_figure

    res = progress_measures(small_run, members=[0])
    fig = grokking_figure(res, 0)
    axes = fig.axes
    assert len(axes) == 4
    # train, test, restricted, excluded loss; train and test accuracy; the weight norm
    assert [len(ax.lines) for ax in axes[:3]] == [4, 2, 1]
    np.testing.assert_array_equal(axes[1].lines[1].get_ydata(), res.test_accuracy[0])
    np.testing.assert_array_equal(axes[2].lines[0].get_ydata(), res.weight_norm[0])
    shaded = sum(iv is not None for iv in (res.phases[0].memorisation,
                 res.phases[0].circuit_formation, res.phases[0].cleanup))  # fmt: skip
    assert all(len(ax.patches) == shaded for ax in axes)
    with pytest.raises(ToylabError, match="member"):
        grokking_figure(res, 1)


def test_the_example_config_is_the_grokking_setting():
    """examples/grokking.toml parses and is the setting the module docstring's numbers
    come from (a full-batch split, weight decay, log-spaced checkpoints)."""
    from pathlib import Path

    from toylab.config import load_config

    cfg = load_config(Path(__file__).parent.parent / "examples" / "grokking.toml")
    assert cfg.train.data == "full" and 0 < cfg.train.train_fraction < 1
    assert cfg.train.weight_decay > 0 and cfg.train.checkpoints == "log:40"
    assert cfg.model.kind == "onehot_mlp" and cfg.model.activation == "quadratic"


def test_a_run_that_groks_shows_the_published_order(tmp_path):
    """examples/grokking.toml shortened to 1000 steps and one seed (grokking completes at
    step ~700): memorisation, then circuit formation (restricted loss falling, excluded
    loss rising, test accuracy still below 0.5), then cleanup (weight norm and test loss
    falling). Measured on this grid (steps 0, 1, 2, 4, 7, 12, 23, 43, 81, 152, 285, 534,
    1000): train accuracy >= 0.99 at 43, memorisation [0, 81], circuit formation
    [81, 285], cleanup [285, 1000] (test accuracy 0.20 at 285, 0.71 at 534, 1.0 at 1000);
    final restricted loss 0.0004, excluded loss 0.037."""
    from toylab.config import parse_config
    from toylab.runs import start_run

    cfg = {"name": "grok", "seeds": [0], "distribution": {"name": "modular_arithmetic", "p": 23},
           "model": {"kind": "onehot_mlp", "hidden": [96], "activation": "quadratic"},
           "train": {"data": "full", "train_fraction": 0.5, "num_steps": 1000, "log_every": 1000,
                     "checkpoints": "log:12", "optimizer": "adamw", "weight_decay": 1.0,
                     "learning_rate": 0.01, "loss": "mse"}}  # fmt: skip
    res = progress_measures(start_run(parse_config(cfg), tmp_path / "run"))
    ph = res.phases[0]
    assert ph.published_order, res.summary()
    assert ph.memorisation_end < ph.circuit_start < ph.cleanup_start < ph.grok_step <= 1000
    assert res.test_accuracy[0, -1] >= 0.95 and res.train_accuracy[0, -1] == 1.0
    # every frequency is key (each holds 8-10% of the embedding power, module docstring)
    assert res.key_frequencies == (tuple(range(1, 12)),)
    # grokked: the logits are a function of a + b (restricted loss measured 0.0004; the
    # mean squared error of constant logits is 1/23 = 0.043), and removing that part
    # leaves nearly constant logits on the training pairs (measured 0.037; its minimum,
    # at step 81, 0.016)
    assert res.restricted_loss[0, -1] < 0.005 and res.excluded_loss[0, -1] > 0.025
    # per-unit embedding sparsity: measured 0.22 at initialisation, 0.90 at step 1000
    assert res.embedding_unit_fraction[0, 0] < 0.3 and res.embedding_unit_fraction[0, -1] > 0.6
