"""The optional fused CPU kernel (toylab.train._fused): loss and gradient against an
independent float64 JAX reference, training against the JAX path, resume, refusals."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from toylab import ToylabError
from toylab.distributions import make
from toylab.models import ModelConfig
from toylab.train import TrainConfig, _fused, train

pytestmark = pytest.mark.skipif(
    _fused.unavailable() is not None, reason=f"fused kernel unavailable: {_fused.unavailable()}"
)


def _reference(widths, loss_kind, slope, x, y, w, theta):
    """float64 JAX autodiff of the same loss, from the packed parameters."""

    def one(th, x, y, w):
        at, h = 0, x
        for l in range(len(widths) - 1):
            din, dout = widths[l], widths[l + 1]
            kernel = th[at : at + din * dout].reshape(din, dout)
            at += din * dout
            h = h @ kernel + th[at : at + dout]
            at += dout
            if l < len(widths) - 2:
                h = jnp.where(h > 0, h, slope * h)
        if loss_kind == 0:
            ell = jax.nn.logsumexp(h, -1) - jnp.take_along_axis(h, y.astype(int), -1)[:, 0]
        elif loss_kind == 1:
            ell = jnp.mean((h - jax.nn.one_hot(y[:, 0].astype(int), widths[-1])) ** 2, -1)
        else:
            ell = jnp.mean((h - y) ** 2, -1)
        return jnp.sum(w * ell)

    with jax.enable_x64():
        args = [np.asarray(a, np.float64) for a in (theta, x, y, w)]
        loss, grad = jax.vmap(jax.value_and_grad(one))(*args)
        # NumPy arrays: a float64 JAX array met outside the x64 context (e.g. by
        # ``np_array - jax_array``, which JAX's operator takes) would be cut to float32
        return np.asarray(loss), np.asarray(grad)


@pytest.mark.parametrize(
    "widths, loss_kind, act_kind, batch",
    [((2, 16, 16, 2), 0, 0, 128), ((3, 7, 5, 4), 0, 1, 37), ((2, 9, 13, 3), 1, 0, 64),
     ((5, 9, 5), 2, 1, 50)],
)  # fmt: skip
def test_kernel_value_and_grad_match_float64_autodiff(widths, loss_kind, act_kind, batch):
    """Odd widths and batches exercise the register tiles' remainders. float32 against
    float64: relative error ~1e-7 measured; 1e-5 leaves room for cancellation."""
    rng = np.random.default_rng(len(widths) + batch)
    m = 3
    size = sum(a * b + b for a, b in zip(widths[:-1], widths[1:], strict=True))
    x = rng.normal(size=(m, batch, widths[0])).astype(np.float32)
    if loss_kind == 2:
        y = rng.normal(size=(m, batch, widths[-1])).astype(np.float32)
    else:
        y = rng.integers(0, widths[-1], size=(m, batch, 1)).astype(np.float32)
    w = rng.uniform(size=(m, batch)).astype(np.float32)
    w /= w.sum(1, keepdims=True)
    theta = (0.5 * rng.normal(size=(m, size))).astype(np.float32)
    slope = 0.01 if act_kind == 1 else 0.0
    loss, grad = _fused.value_and_grad(widths, loss_kind, act_kind, slope, x, y, w, theta)
    ref_loss, ref_grad = _reference(widths, loss_kind, slope, x, y, w, theta)
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-5)
    scale = np.max(np.abs(ref_grad), axis=1, keepdims=True)
    assert np.max(np.abs(np.asarray(grad) - ref_grad) / scale) < 1e-5


def test_fused_training_follows_the_jax_path_and_resumes_bit_for_bit():
    dist = make("two_blobs")
    model = ModelConfig(hidden=(8, 8))
    cfg = TrainConfig(num_steps=30, log_every=10, checkpoints=[], num_eval_samples=512)
    ref = train(dist, model, cfg, seeds=[0, 1, 2])
    saved = {}

    def grab(ensemble, state, rec, is_ckpt):
        if int(state.step) == 10:
            saved["state"] = state

    fused = train(dist, model, cfg, seeds=[0, 1, 2], kernel="fused", callback=grab)
    # same batches and updates; the gradients differ by float32 rounding only (measured
    # ~1e-6 after 30 Adam steps; Adam's normalisation can amplify a rounding flip near a
    # zero gradient, hence atol 1e-4 on parameters of size ~1)
    for a, b in zip(jax.tree.leaves(ref.params), jax.tree.leaves(fused.params), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
    resumed = train(dist, model, cfg, seeds=[0, 1, 2], kernel="fused", state=saved["state"])
    for a, b in zip(jax.tree.leaves(fused.params), jax.tree.leaves(resumed.params), strict=True):
        np.testing.assert_array_equal(a, b)


def test_fused_kernel_says_what_it_does_not_cover():
    dist = make("sparse_features", probs=[0.1] * 4)
    cfg = TrainConfig(loss="mse", num_steps=2, log_every=2, checkpoints=[])
    with pytest.raises(ToylabError, match="kernel.*covers MLPs.*kernel='jax'"):
        train(dist, ModelConfig(kind="superposition_relu", hidden=(2,)), cfg, kernel="fused")
    with pytest.raises(ToylabError, match=r"covers \['leaky_relu', 'relu'\] units, not 'tanh'"):
        train(make("two_blobs"), ModelConfig(hidden=(4,), activation="tanh"),
              TrainConfig(num_steps=2, log_every=2, checkpoints=[]), kernel="fused")  # fmt: skip
    with pytest.raises(ToylabError, match="kernel must be 'jax' or 'fused'"):
        train(make("two_blobs"), ModelConfig(hidden=(4,)), cfg, kernel="cuda")
