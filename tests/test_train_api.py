"""The public training step (optax style): make_step, run_steps, loss_fn, make_evaluate."""

import jax
import numpy as np
import optax
import pytest
from flax import nnx

from toylab import ToylabError
from toylab._compile_cache import CompileCounter
from toylab.circuits import fit
from toylab.distributions import make
from toylab.models import ModelConfig, build_model
from toylab.train import (
    TrainConfig,
    init_ensemble,
    loss_function,
    make_evaluate,
    make_step,
    run_steps,
    train,
)

BLOBS = make("two_blobs")
SMALL = ModelConfig(hidden=(6,), activation="relu")
CFG = TrainConfig(num_steps=20, log_every=10, checkpoints=[], num_eval_samples=512)


def _same(a, b):
    return all(
        np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    )


def test_make_step_and_run_steps_are_the_step_train_runs():
    """Driving the public step by hand reproduces train() bit for bit."""
    ref = train(BLOBS, SMALL, CFG, seeds=[0, 1])
    ensemble, state = init_ensemble(BLOBS, SMALL, CFG, [0, 1])
    step = jax.jit(make_step(ensemble))
    s = state
    for _ in range(CFG.num_steps):
        s, loss = step(s)
    assert loss.shape == (2,) and int(s.step) == CFG.num_steps
    assert _same(s.params, ref.params)
    scanned, losses = run_steps(ensemble, state, CFG.num_steps)
    assert losses.shape == (CFG.num_steps, 2)
    assert _same(scanned.params, ref.params)
    np.testing.assert_array_equal(losses[-1], loss)


def test_members_are_the_models_their_seeds_build():
    """Member m's initial parameters are build_model(config, dist, fold_in(key(seed), 0))."""
    ensemble, state = init_ensemble(BLOBS, SMALL, CFG, [7, 3, 11])
    for m, seed in enumerate([7, 3, 11]):
        key = jax.random.fold_in(jax.random.key(seed), 0)
        ref = nnx.split(build_model(SMALL, BLOBS, key), nnx.Param)[1]
        assert _same(jax.tree.map(lambda a, m=m: a[m], state.params), ref)
    assert ensemble.seeds == (7, 3, 11)


def test_user_loss_fn_scales_like_the_learning_rate():
    """A user loss of 2x cross-entropy under SGD is cross-entropy at twice the learning
    rate: scaling by 2 is exact in floating point, so the parameters agree bit for bit."""
    sgd = TrainConfig(optimizer="sgd", learning_rate=0.1, num_steps=20, log_every=20,
                      checkpoints=[], num_eval_samples=512)  # fmt: skip
    ce = loss_function("cross_entropy", BLOBS)
    double = lambda out, y: 2.0 * ce(out, y)  # noqa: E731
    a = train(BLOBS, SMALL, sgd, seeds=[0, 1], loss_fn=double)
    b = train(BLOBS, SMALL, TrainConfig(**{**sgd.__dict__, "learning_rate": 0.2}), seeds=[0, 1])
    assert _same(a.params, b.params)
    assert a.ensemble.loss is double
    # the held-out "loss" metric is the user's loss too
    np.testing.assert_array_equal(a.metrics[-1]["loss"], 2 * b.metrics[-1]["loss"])
    # make_step takes a loss as well
    ensemble, state = init_ensemble(BLOBS, SMALL, sgd, [0, 1])
    s1, loss1 = make_step(ensemble, double)(state)
    s2, loss2 = make_step(ensemble)(state)
    np.testing.assert_array_equal(loss1, 2 * loss2)


@pytest.mark.parametrize(
    "bad, match",
    [
        (lambda out, y: optax.softmax_cross_entropy_with_integer_labels(out, y).mean(),
         "one loss per example"),
        (lambda out, y: out @ y, "failed"),
    ],
)  # fmt: skip
def test_user_loss_fn_errors_teach(bad, match):
    with pytest.raises(ToylabError, match=match):
        init_ensemble(BLOBS, SMALL, CFG, [0], loss_fn=bad)


def test_mse_means_the_same_in_train_and_fit():
    """ "mse" is the squared error averaged over the output units, in train and fit alike
    (float64 NumPy reference from the initial weights; float32 rounding: rtol 1e-5)."""
    out = np.array([[0.5, -1.0, 2.0], [0.0, 0.25, -0.5]], np.float32)
    y = np.array([2, 0])
    onehot = np.eye(3)[y]
    dist3 = make("modular_arithmetic", p=3)
    np.testing.assert_allclose(
        loss_function("mse", dist3)(out, y), np.mean((out - onehot) ** 2, -1), rtol=1e-6
    )
    # fit on a finite task: step 0's loss is the full-batch mse of the initial model on the
    # training pairs
    model = build_model(ModelConfig(kind="onehot_mlp", hidden=(5,)), dist3, jax.random.key(1))
    res = fit(model, dist3, key=jax.random.key(2), num_steps=2, loss="mse", train_fraction=0.6)
    net = model.to_network().numpy(np.float64)
    logits = net(np.asarray(dist3.domain.inputs, np.float64))
    target = np.eye(3)[np.asarray(dist3.domain.labels)]
    per = np.mean((logits - target) ** 2, -1)
    np.testing.assert_allclose(res.losses[0], per[res.train_mask].mean(), rtol=1e-5)
    # and train reports the same quantity as its held-out loss at step 0
    cfg = TrainConfig(loss="mse", data="full", num_steps=1, log_every=1, checkpoints=[])
    tr = train(dist3, ModelConfig(kind="onehot_mlp", hidden=(5,)), cfg, seeds=[4])
    ref = nnx.split(
        build_model(
            ModelConfig(kind="onehot_mlp", hidden=(5,)), dist3,
            jax.random.fold_in(jax.random.key(4), 0),
        ),
        nnx.Param,
    )  # fmt: skip
    assert ref is not None
    m0 = tr.ensemble.model(tr.checkpoints[0], 0).to_network().numpy(np.float64)
    np.testing.assert_allclose(
        tr.metrics[0]["loss"][0],
        np.mean((m0(np.asarray(dist3.domain.inputs, np.float64)) - target) ** 2),
        rtol=1e-5,
    )


def test_evaluate_is_an_object_per_ensemble():
    """Two evaluations built for two ensembles never mix (no cache keyed by identity)."""
    a_ens, a_state = init_ensemble(BLOBS, SMALL, CFG, [0, 1])
    b_ens, b_state = init_ensemble(make("xor_blobs"), SMALL, CFG, [0, 1])
    eval_a, eval_b = make_evaluate(a_ens), make_evaluate(b_ens)
    ra, rb = eval_a(a_state.params), eval_b(b_state.params)
    ra2 = eval_a(a_state.params)
    for k in ra:
        np.testing.assert_array_equal(ra[k], ra2[k])
    x, y = np.asarray(b_ens.eval_x), np.asarray(b_ens.eval_y)
    for m in range(2):
        acc = np.mean(np.argmax(np.asarray(b_ens.model(b_state.params, m)(x)), -1) == y)
        assert rb["accuracy"][m] == pytest.approx(acc, abs=1e-12)
    assert eval_a.bayes_accuracy == pytest.approx(BLOBS.bayes().accuracy)


def test_resume_reuses_the_compiled_segment():
    """Resuming a run (a saved state) compiles no new training program."""
    cfg = TrainConfig(num_steps=30, log_every=10, checkpoints=[], num_eval_samples=512)
    saved = {}

    def grab(ensemble, state, rec, is_ckpt):
        if int(state.step) == 10:
            saved["state"] = state

    jax.clear_caches()
    with CompileCounter() as first:
        full = train(BLOBS, SMALL, cfg, seeds=[0, 1], callback=grab)
    with CompileCounter() as resumed:
        again = train(BLOBS, SMALL, cfg, seeds=[0, 1], state=saved["state"])
    assert first.count("_segment") == 1
    assert resumed.count("_segment") == 0, resumed
    assert _same(full.params, again.params)


def test_seeds_must_fit_in_a_key():
    with pytest.raises(ToylabError, match=r"seeds must be integers in \[0, 2\*\*32\)"):
        init_ensemble(BLOBS, SMALL, CFG, [0, 2**32 + 1])
