"""The network value: one forward pass, derivatives, edits and conversions.

References are independent of toylab.network: a forward pass written here with NumPy,
JAX autodiff in float64 for derivatives, and explicit matrix algebra for the edits.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _reference import forward
from hypothesis import given, settings
from hypothesis import strategies as st

from toylab import ToylabError
from toylab.activations import ACTIVATIONS
from toylab.models import (
    MLP,
    OneHotMLP,
    SuperpositionLinear,
    SuperpositionReLU,
    ablate,
    from_network,
    with_weights,
)
from toylab.network import Dense, Network, Tied, as_network


def reference(weights, biases, acts, x):
    return {"input": x, **forward(list(zip(weights, biases, strict=True)), acts, x)}


@st.composite
def nets(draw):
    depth = draw(st.integers(0, 3))
    widths = [draw(st.integers(1, 4))] + [draw(st.integers(1, 5)) for _ in range(depth + 1)]
    acts = [draw(st.sampled_from(sorted(ACTIVATIONS))) for _ in range(depth)]
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    ws = [rng.normal(size=(a, b)) for a, b in zip(widths[:-1], widths[1:], strict=True)]
    bs = [rng.normal(size=b) for b in widths[1:]]
    return ws, bs, acts, rng.normal(size=(7, widths[0]))


@settings(max_examples=40, deadline=None)
@given(case=nets())
def test_forward_matches_an_independent_pass_in_numpy_and_jax(case):
    ws, bs, acts, x = case
    net = Network.from_weights(ws, bs, acts)
    got, want = net.forward(x), reference(ws, bs, acts, x)
    assert list(got) == ["input", *[k for k in want if k != "input"]]
    assert list(got) == ["input", *net.layer_keys()]
    for key, v in want.items():
        np.testing.assert_allclose(got[key], v, rtol=1e-12, atol=1e-12)
        assert got[key].dtype == np.float64
    j = net.jax(jnp.float32).forward(jnp.asarray(x, jnp.float32))
    for key, v in want.items():
        np.testing.assert_allclose(np.asarray(j[key]), v, rtol=2e-4, atol=2e-4)
    flat = net.forward_flat(x)
    for key in net.layer_keys():
        for u in range(net.widths[key]):
            assert flat[:, net.flat_index(f"{key}:{u}")] == pytest.approx(got[key][:, u])


@settings(max_examples=8, deadline=None)
@given(case=nets())
def test_gradient_and_jvp_match_float64_autodiff(case):
    ws, bs, acts, x = case
    net = Network.from_weights(ws, bs, acts)
    d = np.linspace(-1, 1, x.shape[1])
    with jax.enable_x64(True):
        jnet = net.jax(jnp.float64)
        for key in net.layer_keys():
            # the whole layer's Jacobian at every point in one reverse pass
            jac = jax.vmap(jax.jacrev(lambda z, k=key: jnet.forward(z)[k]))(jnp.asarray(x))
            for u in range(net.widths[key]):
                np.testing.assert_allclose(
                    net.gradient(x, f"{key}:{u}"), np.asarray(jac[:, u]), atol=1e-9
                )
            np.testing.assert_allclose(
                net.jvp(x, d)[key], np.asarray(jac @ jnp.asarray(d)), atol=1e-9
            )


def test_tied_layers_reuse_the_encoder_and_the_output_activation_gets_pre_keys():
    rng = np.random.default_rng(0)
    W = rng.normal(size=(2, 5))
    b = rng.normal(size=5)
    net = Network((Dense(W.T, np.zeros(2)), Tied(0, b)), ("identity", "relu"))
    x = rng.random((4, 5))
    out = net.forward(x)
    np.testing.assert_allclose(out["output.pre"], x @ W.T @ W + b, rtol=1e-12)
    np.testing.assert_allclose(out["output"], np.maximum(x @ W.T @ W + b, 0), rtol=1e-12)
    assert net.widths == {
        "input": 5,
        "hidden_0.pre": 2,
        "hidden_0": 2,
        "output.pre": 5,
        "output": 5,
    }
    untied = net.untied()
    assert not untied.tied
    np.testing.assert_allclose(untied(x), net(x), rtol=1e-12)
    model = SuperpositionReLU.from_weights(W, b, param_dtype=np.float64)
    np.testing.assert_allclose(model.to_network().numpy()(x), net(x), rtol=1e-12)
    with pytest.raises(ToylabError, match="earlier Dense layer"):
        Network((Tied(0, b), Dense(W.T, np.zeros(2))), ("identity", "identity"))


def test_edits_are_exact_weight_changes():
    rng = np.random.default_rng(1)
    ws = [rng.normal(size=(2, 4)), rng.normal(size=(4, 3)), rng.normal(size=(3, 2))]
    bs = [rng.normal(size=4), rng.normal(size=3), rng.normal(size=2)]
    net = Network.from_weights(ws, bs, "relu")
    x = rng.normal(size=(6, 2))
    h = np.maximum(x @ ws[0] + bs[0], 0)
    h[:, 2] = 0.7  # hidden_0:2 fixed to 0.7
    h2 = np.maximum(h @ ws[1] + bs[1], 0)
    h2[:, 0] = 0.0
    want = h2 @ ws[2] + bs[2]
    edited = net.ablate(["hidden_0:2", "hidden_1:0"], {"hidden_0:2": 0.7, "hidden_1:0": 0.0})
    np.testing.assert_allclose(edited(x), want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(net(x), reference(ws, bs, ["relu"] * 2, x)["output"])  # unchanged
    new = net.with_layer(1, bias=np.zeros(3))
    np.testing.assert_allclose(
        new(x), reference(ws, [bs[0], np.zeros(3), bs[2]], ["relu"] * 2, x)["output"]
    )
    plane = net.on_plane([0.5, -0.5], [1.0, 0.0], [1.0, 1.0])
    st_ = rng.normal(size=(5, 2))
    np.testing.assert_allclose(
        plane(st_),
        net(np.array([0.5, -0.5]) + st_[:, :1] * [1, 0] + st_[:, 1:] * [1, 1]),
        atol=1e-12,
    )
    with pytest.raises(ToylabError, match="hidden post-activation"):
        net.ablate("output:0")
    with pytest.raises(ToylabError, match="values must be finite"):
        net.ablate("hidden_0:0", float("nan"))
    with pytest.raises(ToylabError, match="layer must be an index in 0..2"):
        net.with_layer(3, bias=np.zeros(2))
    with pytest.raises(ToylabError, match=r"bias must be of shape \(3,\)"):
        net.with_layer(1, bias=np.zeros(2))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_edit_and_conversion_keeps_the_dtype(dtype):
    rng = np.random.default_rng(2)
    ws = [rng.normal(size=(2, 3)), rng.normal(size=(3, 2))]
    model = MLP.from_weights(ws, param_dtype=dtype)
    kernels = lambda m: {np.asarray(layer.kernel[...]).dtype for layer in m.layers}  # noqa: E731
    assert kernels(model) == {np.dtype(dtype)}
    assert kernels(ablate(model, "hidden_0:1", 0.25)) == {np.dtype(dtype)}
    assert kernels(with_weights(model, 1, b=np.ones(2))) == {np.dtype(dtype)}
    assert kernels(from_network(model.to_network().numpy())) == {np.dtype(dtype)}
    assert model.to_network().numpy().dtype == np.dtype(dtype)
    assert as_network(model).ablate("hidden_0:0").dtype == np.dtype(dtype)
    onehot = from_network(Network.from_weights([rng.normal(size=(6, 4)), rng.normal(size=(4, 3))]))
    assert type(onehot) is MLP
    with jax.enable_x64(dtype == np.float64):  # a float64 initializer needs x64
        oh = OneHotMLP(3, (4,), 3, rngs=__import__("flax").nnx.Rngs(0), param_dtype=dtype)
    edited = ablate(oh, "hidden_0:0")
    assert (
        type(edited) is OneHotMLP
        and edited.num_values == 3
        and kernels(edited) == {np.dtype(dtype)}
    )
    sup = SuperpositionLinear.from_weights(rng.normal(size=(2, 4)), param_dtype=dtype)
    assert np.asarray(from_network(sup.to_network().numpy()).W[...]).dtype == np.dtype(dtype)


def test_stacked_networks_vmap_over_members():
    rng = np.random.default_rng(3)
    nets = [
        Network.from_weights([rng.normal(size=(2, 3)), rng.normal(size=(3, 2))]) for _ in range(4)
    ]
    stacked = Network.stack(nets)
    x = rng.normal(size=(5, 2))
    out = jax.vmap(lambda n: n.jax(jnp.float32)(jnp.asarray(x, jnp.float32)))(stacked)
    for m, n in enumerate(nets):
        np.testing.assert_allclose(np.asarray(out[m]), n(x), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(stacked.member(m)(x), n(x))
    with pytest.raises(ToylabError, match="same architecture"):
        Network.stack(
            [nets[0], Network.from_weights([rng.normal(size=(2, 2)), rng.normal(size=(2, 2))])]
        )


def test_bad_input_gets_clear_errors():
    with pytest.raises(ToylabError, match="activation must be one of"):
        Network.from_weights([np.eye(2), np.eye(2)], activation="rleu")
    with pytest.raises(ToylabError, match="weights\\[0\\] must be finite"):
        Network.from_weights([np.array([[np.nan]])])
    with pytest.raises(ToylabError, match="model must be a toylab.network.Network"):
        as_network(object())
    net = Network.from_weights([np.eye(2), np.eye(2)])
    with pytest.raises(ToylabError, match="unknown layer 'hiden_0'"):
        net.values(np.zeros((1, 2)), "hiden_0:0")
    with pytest.raises(ToylabError, match="hidden or output neuron"):
        net.gradient(np.zeros((1, 2)), "input:0")
