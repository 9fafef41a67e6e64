import jax
import jax.numpy as jnp
import numpy as np
import pytest

from toylab import ToylabError
from toylab._compile_cache import CompileCounter
from toylab.distributions import make
from toylab.models import ModelConfig
from toylab.train import SweepConfig, TrainConfig, checkpoint_steps, init_ensemble, train

BLOBS = make("two_blobs")
SMALL = ModelConfig(hidden=(6,), activation="relu")


def _numpy_logits(res, member, x):
    """Independent reference: the member's MLP in float64 NumPy, from its raw weights."""
    layers = res.params["layers"]
    h = np.asarray(x, np.float64)
    for k in range(len(layers)):
        w = np.asarray(layers[k]["kernel"][...][member], np.float64)
        b = np.asarray(layers[k]["bias"][...][member], np.float64)
        h = h @ w + b
        if k < len(layers) - 1:
            h = np.maximum(h, 0.0)
    return h


def test_ensemble_trains_in_one_compiled_program_and_learns():
    cfg = TrainConfig(num_steps=300, log_every=100, learning_rate=0.02)
    jax.clear_caches()  # count this test's programs, not an earlier test's
    with CompileCounter() as compiled:
        res = train(BLOBS, SMALL, cfg, seeds=[0, 1, 2])
    # three members, four segments (0-100-200-300) and four evaluations: one segment
    # program, one evaluation program, one initialisation program, nothing compiled twice
    assert compiled.count("_segment") == 1, compiled
    assert compiled.count("_evaluate_program") == 1 and compiled.count("_init_program") == 1
    assert max(compiled.names.values()) == 1, compiled
    assert [r["step"] for r in res.metrics] == [0, 100, 200, 300]
    acc0, acc = res.metrics[0]["accuracy"], res.metrics[-1]["accuracy"]
    bayes = BLOBS.bayes().accuracy
    # every member gets within 3 held-out standard errors (+1%) of Bayes-optimal
    se = np.sqrt(bayes * (1 - bayes) / cfg.num_eval_samples)
    assert np.all(acc > bayes - 0.01 - 3 * se), (acc, bayes)
    assert np.all(acc > acc0) or np.all(acc0 > bayes - 0.05)
    # the reported accuracy is the trained weights' accuracy (float64 NumPy reference; one
    # held-out example may flip where float32 and float64 logits straddle the boundary)
    x, y = np.asarray(res.ensemble.eval_x), np.asarray(res.ensemble.eval_y)
    for m in range(3):
        ref = np.mean(np.argmax(_numpy_logits(res, m, x), -1) == y)
        assert abs(ref - acc[m]) <= 1e-6 + 1 / len(y), (m, ref, acc[m])
    # the Bayes gap is a gap: no member beats the Bayes-optimal rule by more than the
    # held-out set's sampling noise (3 standard errors), and training closed it to ~1%
    gap = res.metrics[-1]["bayes_gap"]
    assert np.all(gap > -3 * se) and np.all(gap < 0.01 + 3 * se), gap
    # members are different networks
    k = res.params["layers"][0]["kernel"][...]
    assert k.shape == (3, 2, 6)
    assert not np.allclose(k[0], k[1])


def test_same_seed_gives_identical_numbers_and_members_match_single_runs():
    cfg = TrainConfig(num_steps=50, log_every=25)
    a = train(BLOBS, SMALL, cfg, seeds=[3, 4])
    b = train(BLOBS, SMALL, cfg, seeds=[4])
    c = train(BLOBS, SMALL, cfg, seeds=[3, 4])
    for x, y in zip(jax.tree.leaves(a.params), jax.tree.leaves(c.params), strict=True):
        np.testing.assert_array_equal(x, y)
    # member 1 of the ensemble is the same model as the single seed-4 run
    for x, y in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params), strict=True):
        np.testing.assert_allclose(x[1], y[0], rtol=1e-5, atol=1e-6)


def test_sweep_varies_the_hyperparameter_per_member():
    sweep = SweepConfig("train.learning_rate", (1e-4, 1e-1))
    res = train(BLOBS, SMALL, TrainConfig(num_steps=100, log_every=100), seeds=[0, 1], sweep=sweep)
    ens = res.ensemble
    assert ens.num_members == 4
    assert [ens.member_seed(m) for m in range(4)] == [0, 0, 1, 1]
    np.testing.assert_allclose(ens.hparams["learning_rate"], [1e-4, 1e-1, 1e-4, 1e-1], rtol=1e-6)
    # a tiny learning rate barely moves the weights, a large one moves them a lot
    init = init_ensemble(BLOBS, SMALL, ens.config, [0, 1], sweep)[1].params
    moved = [
        float(sum(jnp.sum((a[m] - b[m]) ** 2) for a, b in
                  zip(jax.tree.leaves(res.params), jax.tree.leaves(init), strict=True)))
        for m in range(4)
    ]  # fmt: skip
    assert moved[0] * 100 < moved[1] and moved[2] * 100 < moved[3]


def test_divergent_member_is_frozen_and_others_continue():
    sweep = SweepConfig("train.learning_rate", (0.01, 1e6))
    cfg = TrainConfig(optimizer="sgd", num_steps=60, log_every=30)
    res = train(BLOBS, SMALL, cfg, seeds=[0], sweep=sweep)
    msgs = res.divergences()
    assert len(msgs) == 1 and "member 1 (seed 0, learning_rate=1e+06) diverged at step" in msgs[0]
    assert int(res.state.diverged_at[0]) == -1 and int(res.state.diverged_at[1]) >= 0
    assert bool(res.state.alive[0]) and not bool(res.state.alive[1])
    for leaf in jax.tree.leaves(res.params):
        assert np.all(np.isfinite(leaf))
    assert res.metrics[-1]["accuracy"][0] > 0.85


@pytest.mark.parametrize("data", ["fixed", "fresh"])
def test_data_modes(data):
    cfg = TrainConfig(num_steps=200, log_every=200, data=data, num_train=64, learning_rate=0.05)
    res = train(BLOBS, SMALL, cfg, seeds=[0])
    assert res.metrics[-1]["accuracy"][0] > 0.85


def test_full_batch_finite_task_reports_train_and_test_accuracy():
    dist = make("modular_arithmetic", p=5)
    cfg = TrainConfig(num_steps=400, log_every=400, data="full", train_fraction=0.6,
                      learning_rate=0.05)  # fmt: skip
    res = train(dist, ModelConfig(kind="onehot_mlp", hidden=(32,)), cfg, seeds=[0, 1])
    last = res.metrics[-1]
    np.testing.assert_allclose(last["train_accuracy"], 1.0)
    assert set(last) >= {"accuracy", "test_accuracy", "train_accuracy"}
    mask = np.asarray(res.ensemble.train_data)
    assert mask.shape == (2, 25) and np.all(mask.sum(1) == 15)
    assert not np.array_equal(mask[0], mask[1])


def test_importance_weighted_mse_on_sparse_features():
    dist = make("sparse_features", probs=[0.1] * 5, importance=[1.0, 0.7, 0.5, 0.3, 0.1])
    cfg = TrainConfig(loss="importance_mse", num_steps=300, log_every=300, learning_rate=0.01)
    res = train(dist, ModelConfig(kind="superposition_relu", hidden=(2,)), cfg, seeds=[0])
    assert res.metrics[-1]["loss"][0] < res.metrics[0]["loss"][0]
    assert "accuracy" not in res.metrics[-1]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"optimizer": "adamm"}, "Did you mean 'adam'"),
        ({"learning_rate": -1.0}, "learning_rate must be a finite number > 0"),
        ({"num_steps": 0}, "num_steps must be an integer >= 1"),
        ({"batch_size": 2.5}, "batch_size"),
        ({"momentum": 1.0}, "momentum must be in"),
        ({"checkpoints": "every:3"}, "checkpoints must be 'log:N'"),
        ({"checkpoints": [5, 2000]}, "in \\[0, num_steps=1000\\]"),
        ({"train_fraction": 0.0}, "train_fraction"),
        ({"loss": "hinge"}, "loss must be one of"),
    ],
)
def test_train_config_errors(kwargs, match):
    with pytest.raises(ToylabError, match=match):
        TrainConfig(**kwargs)


def test_mismatched_loss_and_data_errors():
    with pytest.raises(ToylabError, match="data='full' needs a finite distribution"):
        train(BLOBS, SMALL, TrainConfig(data="full", num_steps=1), seeds=[0])
    with pytest.raises(ToylabError, match="importance_mse"):
        train(BLOBS, SMALL, TrainConfig(loss="importance_mse", num_steps=1), seeds=[0])
    # sweeps name any field by its dotted path (tests/test_sweeps.py); a bad value of a
    # real field is an error of that field, naming the axis
    with pytest.raises(ToylabError, match=r"\[sweep\] model.hidden = 1 .*hidden must be a list"):
        train(BLOBS, SMALL, TrainConfig(num_steps=1), seeds=[0],
              sweep=SweepConfig("model.hidden", (1,)))  # fmt: skip
    with pytest.raises(ToylabError, match="seeds must be distinct"):
        train(BLOBS, SMALL, TrainConfig(num_steps=1), seeds=[1, 1])


def test_checkpoint_steps_are_log_spaced_and_include_ends():
    steps = checkpoint_steps(TrainConfig(num_steps=1000, checkpoints="log:4"))
    assert steps == [0, 1, 10, 100, 1000]
    assert checkpoint_steps(TrainConfig(num_steps=10, checkpoints=[3])) == [0, 3, 10]


def test_1024_members_train_in_one_compiled_program():
    """A 1024-member ensemble: one program for every segment, every member distinct and
    learning; a second ensemble of the same shapes (other seeds) compiles nothing."""
    cfg = TrainConfig(num_steps=40, log_every=20, batch_size=32, learning_rate=0.05,
                      num_eval_samples=256, checkpoints=[])  # fmt: skip
    jax.clear_caches()
    with CompileCounter() as compiled:
        res = train(BLOBS, ModelConfig(hidden=(4,)), cfg, seeds=range(1024))
    assert compiled.count("_segment") == 1 and max(compiled.names.values()) == 1, compiled
    acc0, acc = res.metrics[0]["accuracy"], res.metrics[-1]["accuracy"]
    assert acc.shape == (1024,)
    assert np.median(acc) > 0.9 and np.mean(acc > acc0) > 0.8
    k = np.asarray(res.params["layers"][0]["kernel"][...]).reshape(1024, -1)
    assert len(np.unique(k.round(6), axis=0)) == 1024
    with CompileCounter() as again:
        train(BLOBS, ModelConfig(hidden=(4,)), cfg, seeds=range(1024, 2048))
    assert again.total == 0, again
