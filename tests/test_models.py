import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _reference import ACTIVATIONS as REF_ACTIVATIONS
from _reference import forward
from flax import nnx

from toylab import ToylabError
from toylab.models import (
    ACTIVATIONS,
    MLP,
    ModelConfig,
    OneHotMLP,
    SuperpositionLinear,
    SuperpositionReLU,
    activations,
    ensemble_activations,
    neuron_values,
)


@pytest.mark.parametrize("act", sorted(ACTIVATIONS))
def test_mlp_matches_numpy_forward_and_exposes_every_layer(act):
    model = MLP((3, 5, 4, 2), act, rngs=nnx.Rngs(1))
    x = np.random.default_rng(0).normal(size=(7, 3)).astype(np.float32)
    acts = activations(model, jnp.asarray(x))
    assert set(acts) == {"input", "hidden_0.pre", "hidden_0", "hidden_1.pre", "hidden_1", "output"}
    assert {k: v.shape[-1] for k, v in acts.items()} == model.widths
    net = model.to_network()
    layers, act_names = net.dense_layers(), net.activations
    assert act_names == (act, act, "identity")
    if act in REF_ACTIVATIONS:
        ref = forward(layers, [act, act], x)["output"]
        np.testing.assert_allclose(np.asarray(acts["output"]), ref, rtol=1e-4, atol=1e-5)
    # post = act(pre) for every hidden layer
    fn = ACTIVATIONS[act]
    np.testing.assert_allclose(acts["hidden_1"], fn(acts["hidden_1.pre"]), rtol=1e-6)


def test_from_weights_builds_the_written_network():
    W0 = np.array([[1.0, -1.0], [0.5, 2.0]])
    W1 = np.array([[1.0], [1.0]])
    model = MLP.from_weights([W0, W1], [np.array([0.0, 1.0]), np.array([-0.5])], "relu")
    x = jnp.array([[1.0, 1.0], [-2.0, 0.0]])
    expected = np.maximum(np.asarray(x) @ W0 + [0, 1], 0) @ W1 - 0.5
    np.testing.assert_allclose(model(x), expected, rtol=1e-6)
    assert float(neuron_values(model, x, "hidden_0.pre:1")[0]) == pytest.approx(
        1 * -1.0 + 1 * 2.0 + 1.0
    )


@pytest.mark.parametrize(
    "weights, biases, match",
    [
        ([], None, "non-empty list of 2-D matrices"),
        ([np.ones((2, 3)), np.ones((4, 1))], None, "Shapes must chain"),
        ([np.ones(3)], None, "2-D"),
        ([np.ones((2, 3))], [np.ones(2)], r"biases\[0\] must be of shape \(3,\)"),
        ([np.ones((2, 3))], [np.ones(3), np.ones(3)], "one vector per weight"),
    ],
)
def test_from_weights_rejects_bad_shapes(weights, biases, match):
    with pytest.raises(ToylabError, match=match):
        MLP.from_weights(weights, biases)


def test_unknown_activation_suggests():
    with pytest.raises(ToylabError, match="Did you mean 'relu'"):
        MLP((2, 3, 1), "rleu", rngs=nnx.Rngs(0))
    with pytest.raises(ToylabError, match="Did you mean 'tanh'"):
        ModelConfig(activation="tahn")


def test_activations_under_vmap_over_an_ensemble():
    def init(key):
        return nnx.split(MLP((2, 6, 3), "relu", rngs=nnx.Rngs(params=key)), nnx.Param)[1]

    graphdef = nnx.split(MLP((2, 6, 3), "relu", rngs=nnx.Rngs(0)), nnx.Param)[0]
    keys = jax.random.split(jax.random.key(0), 5)
    params = jax.vmap(init)(keys)
    x = jnp.ones((4, 2))
    acts = ensemble_activations(graphdef, params, x)
    assert acts["hidden_0"].shape == (5, 4, 6)
    for m in range(5):
        single = activations(nnx.merge(graphdef, jax.tree.map(lambda a, m=m: a[m], params)), x)
        np.testing.assert_allclose(acts["output"][m], single["output"], rtol=1e-6)
    # members differ (different keys)
    assert not np.allclose(acts["output"][0], acts["output"][1])


def test_onehot_mlp_encodes_operands():
    model = OneHotMLP(5, (7,), 5, rngs=nnx.Rngs(0))
    x = model.encode(jnp.array([[1, 3], [4, 0]]))
    assert x.shape == (2, 10)
    np.testing.assert_array_equal(np.argwhere(np.asarray(x[0]))[:, 0], [1, 8])
    assert model(x).shape == (2, 5)


def test_superposition_models():
    W = np.array([[1.0, 0.0, -1.0], [0.0, 1.0, 0.5]])
    b = np.array([0.1, -0.2, 0.0])
    x = np.array([[0.3, 0.0, 0.9]])
    lin = SuperpositionLinear.from_weights(W, b)
    relu = SuperpositionReLU.from_weights(W, b)
    np.testing.assert_allclose(lin(jnp.asarray(x)), x @ W.T @ W + b, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(relu(jnp.asarray(x)), np.maximum(x @ W.T @ W + b, 0), atol=1e-7)
    acts = activations(relu, jnp.asarray(x))
    np.testing.assert_allclose(acts["hidden_0"], x @ W.T, rtol=1e-6)
    assert "output.pre" in acts and "output.pre" not in activations(lin, jnp.asarray(x))
    assert float(neuron_values(relu, jnp.asarray(x), "output.pre:1")[0]) == pytest.approx(
        float((x @ W.T @ W + b)[0, 1]), abs=1e-6
    )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"kind": "cnn"}, "kind must be one of"),
        ({"hidden": [0]}, "positive integers"),
        ({"hidden": "16"}, "positive integers"),
        ({"kind": "superposition_relu", "hidden": [2, 2]}, "exactly one width"),
    ],
)
def test_model_config_validation(kwargs, match):
    with pytest.raises(ToylabError, match=match):
        ModelConfig(**kwargs)
