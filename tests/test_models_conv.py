"""The conv model (toylab.models.conv): forward pass against a naive float64 conv net
written here, the network value round trip, the config, the initialiser, training."""

import math
import re
import tomllib

import jax
import numpy as np
import pytest
import tomli_w
from flax import nnx

from toylab import ToylabError
from toylab.config import parse_config
from toylab.distributions import make
from toylab.models import (
    ConvNet,
    ConvSpec,
    ModelConfig,
    build_model,
    from_network,
    neuron_values,
)
from toylab.models.init import InitConfig, init_params

# every feature the model has: C_in = 2, 'same' with stride 2 and an even kernel (asymmetric
# padding), 'valid', non-square kernels, avg and max pooling with a stride other than the
# window, a dense head
SPECS = (
    ConvSpec(3, (3, 2), stride=2),
    ConvSpec(4, 3, padding="valid", pool="max", pool_window=2, pool_stride=1),
    ConvSpec(2, (2, 3), pool="avg", pool_window=(2, 1)),
)
IN_SHAPE = (9, 8, 2)


def _model(dtype=np.float32, specs=SPECS, in_shape=IN_SHAPE, hidden=(5,), seed=0):
    normal = nnx.initializers.normal(0.5)
    return ConvNet(in_shape, specs, hidden, 3, "relu", rngs=nnx.Rngs(seed), param_dtype=dtype,
                   kernel_init=normal, bias_init=normal)  # fmt: skip


# ------------------------------------------------------------------ the naive reference
def _pad(n, k, s, padding):
    """(before, after, out) of one axis, from the definitions in the module docstring."""
    if padding == "valid":
        return 0, 0, (n - k) // s + 1
    out = math.ceil(n / s)
    total = max((out - 1) * s + k - n, 0)
    return total // 2, total - total // 2, out


def _naive_conv(h, kernel, bias, stride, padding):
    """``z[i, j, o] = b[o] + sum_{u, v, c} h[s i + u - p, s j + v - q, c] K[u, v, c, o]`` by loops."""
    (kh, kw, _, co), (sh, sw) = kernel.shape, stride
    ph, _, oh = _pad(h.shape[0], kh, sh, padding)
    pw, _, ow = _pad(h.shape[1], kw, sw, padding)
    z = np.zeros((oh, ow, co))
    for i in range(oh):
        for j in range(ow):
            acc = bias.copy()
            for u in range(kh):
                for v in range(kw):
                    r, c = sh * i + u - ph, sw * j + v - pw
                    if 0 <= r < h.shape[0] and 0 <= c < h.shape[1]:
                        acc = acc + h[r, c] @ kernel[u, v]
            z[i, j] = acc
    return z


def _naive_pool(h, window, stride, kind):
    (wh, ww), (sh, sw) = window, stride
    oh, ow = (h.shape[0] - wh) // sh + 1, (h.shape[1] - ww) // sw + 1
    reduce = np.mean if kind == "avg" else np.max
    return np.array(
        [[reduce(h[sh * i : sh * i + wh, sw * j : sw * j + ww], axis=(0, 1)) for j in range(ow)]
         for i in range(oh)]
    )  # fmt: skip


def _naive_forward(model, x):
    """Every layer of ``model`` at one flat image ``x``, in float64, from its arrays."""
    arrays = [(np.asarray(m.kernel[...], np.float64), np.asarray(m.bias[...], np.float64))
              for m in model.layers]  # fmt: skip
    h = np.asarray(x, np.float64).reshape(model.in_shape)
    out = {}
    pools = 0
    for k, spec in enumerate(model.specs):
        z = _naive_conv(h, *arrays[k], spec.stride, spec.padding)
        out[f"conv_{k}.pre"], h = z, np.maximum(z, 0)
        out[f"conv_{k}"] = h
        if spec.pool is not None:
            stride = spec.pool_window if spec.pool_stride is None else spec.pool_stride
            h = _naive_pool(h, spec.pool_window, stride, spec.pool)
            out[f"pool_{pools}.pre"] = out[f"pool_{pools}"] = h  # identity activation
            pools += 1
    h = h.reshape(-1)
    for k, (w, b) in enumerate(arrays[len(model.specs) :]):
        z = h @ w + b
        last = k == len(arrays) - len(model.specs) - 1
        key = "output" if last else f"hidden_{k}"
        if not last:
            out[f"{key}.pre"] = z
        h = z if last else np.maximum(z, 0)
        out[key] = h
    return out


# ------------------------------------------------------------------ the model
def test_shapes_and_widths_follow_the_size_formulas():
    """Hand-computed: 9x8 -> stride 2 'same' -> 5x4 -> 'valid' 3x3 -> 3x2 -> max 2/1 -> 2x1
    -> 'same' (2, 3) -> 2x1 -> avg (2, 1) -> 1x1."""
    model = _model()
    assert model.shapes == {
        "input": (9, 8, 2), "conv_0": (5, 4, 3), "conv_1": (3, 2, 4), "pool_0": (2, 1, 4),
        "conv_2": (2, 1, 2), "pool_1": (1, 1, 2),
    }  # fmt: skip
    assert model.widths == {
        "input": 144, "conv_0.pre": 60, "conv_0": 60, "conv_1.pre": 24, "conv_1": 24,
        "pool_0.pre": 8, "pool_0": 8, "conv_2.pre": 4, "conv_2": 4, "pool_1.pre": 2,
        "pool_1": 2, "hidden_0.pre": 5,
        "hidden_0": 5, "output": 3,
    }  # fmt: skip
    assert [type(m).__name__ for m in model.layers] == ["Conv"] * 3 + ["Linear"] * 2
    assert model.layers[0].kernel.shape == (3, 2, 2, 3)  # HWIO


def test_feature_maps_that_would_be_empty_are_errors():
    with pytest.raises(ToylabError, match=r"conv\[0\].kernel must be at most the 4x4"):
        ConvNet((4, 4), [ConvSpec(2, 5, padding="valid")], (), 2, rngs=nnx.Rngs(0))
    with pytest.raises(ToylabError, match=r"conv\[1\].pool_window must be at most the 2x2"):
        ConvNet((4, 4), [ConvSpec(2, 3, stride=2), ConvSpec(2, 3, pool="avg", pool_window=3)],
                (), 2, rngs=nnx.Rngs(0))  # fmt: skip
    with pytest.raises(ToylabError, match="at least one conv block"):
        ConvNet((4, 4), [], (), 2, rngs=nnx.Rngs(0))
    with pytest.raises(ToylabError, match="in_shape"):
        ConvNet((4, 0), [ConvSpec(2, 3)], (), 2, rngs=nnx.Rngs(0))


def test_forward_matches_a_naive_float64_conv_net():
    """Reference: the loops of ``_naive_forward`` (float64, from the model's arrays), and
    flax's own ``nnx.Conv`` call for the first layer's padding convention."""
    model = _model()
    x = np.random.default_rng(0).normal(size=(3, 144))
    ref = [_naive_forward(model, xi) for xi in x]
    # the network value in float64 (NumPy) agrees to float64 rounding: sums of <= 24
    # products of O(1) numbers through <= 5 layers stay far below 1e-10
    net64 = model.to_network().numpy(np.float64)
    got64 = net64.forward(x)
    assert list(got64) == list(model.widths) and {"input", *ref[0]} == set(got64)
    for i in range(3):
        for key, val in ref[i].items():
            np.testing.assert_allclose(got64[key][i], val.reshape(-1), rtol=1e-10, atol=1e-10)
    # the model itself (JAX, float32): float32 rounding of those sums, |error| below
    # ~100 * 2^-24 * (sum of |terms| <= 100), so 1e-3 absolute is safe and still fails
    # for any wrong index, padding or window (errors O(0.1) and more)
    got = model.intermediates(jax.numpy.asarray(x, np.float32))
    for i in range(3):
        for key, val in ref[i].items():
            np.testing.assert_allclose(np.asarray(got[key][i]), val.reshape(-1), atol=1e-3)
    np.testing.assert_array_equal(np.asarray(model(x.astype(np.float32))), got["output"])
    # a channel address reads the HWC map at (row, column): conv_1 is 3x2x4
    vals = neuron_values(model, jax.numpy.asarray(x, np.float32), "conv_1:2@1,0")
    np.testing.assert_allclose(np.asarray(vals), [r["conv_1"][1, 0, 2] for r in ref], atol=1e-3)
    img = jax.numpy.asarray(x.reshape(3, *IN_SHAPE), np.float32)
    flax_pre = np.asarray(model.layers[0](img)).reshape(3, -1)
    np.testing.assert_allclose(flax_pre, np.asarray(got["conv_0.pre"]), rtol=1e-5, atol=1e-5)


def test_the_network_value_round_trips():
    model = _model()
    net = model.to_network()
    assert net.widths == model.widths
    for key, shape in model.shapes.items():
        if key != "input":
            assert net.layer_shape(key) == shape
    assert [type(layer).__name__ for layer in net.layers] == [
        "Conv", "Conv", "MaxPool", "Conv", "AvgPool", "Dense", "Dense"
    ]  # fmt: skip
    # with_network: another network of this architecture, its arrays exactly
    other = _model(seed=1).to_network()
    moved = model.with_network(other)
    assert isinstance(moved, ConvNet) and moved.specs == model.specs
    for a, b in zip(jax.tree.leaves(moved.to_network()), jax.tree.leaves(other), strict=True):
        np.testing.assert_array_equal(a, b)
    # from_network: the same model (structure and arrays), no initializer; float64 kept
    again = from_network(net)
    assert nnx.graphdef(again) == nnx.graphdef(model)
    for a, b in zip(jax.tree.leaves(nnx.state(again)), jax.tree.leaves(nnx.state(model)),
                    strict=True):  # fmt: skip
        np.testing.assert_array_equal(a, b)
    wide = from_network(net.numpy(np.float64))
    assert all(a.dtype == np.float64 for a in jax.tree.leaves(nnx.state(wide, nnx.Param)))
    # another architecture is refused, naming what was expected
    small = _model(specs=SPECS[:1], hidden=()).to_network()
    with pytest.raises(ToylabError, match="a network of this architecture"):
        model.with_network(small)
    with pytest.raises(ToylabError, match="one activation for every conv and hidden layer"):
        from_network(type(net)(net.layers, ("relu", "tanh", *net.activations[2:])))


# ------------------------------------------------------------------ the config
CONV_TOML = """
name = "conv"
seeds = [0, 1]
[distribution]
name = "sparse_features"
probs = [0.2, 0.1, 0.1, 0.05, 0.2, 0.1, 0.1, 0.05, 0.2, 0.1, 0.1, 0.05, 0.2, 0.1, 0.1, 0.05]
[model]
kind = "conv"
conv = [{channels = 3, kernel = 3}, {channels = 2, kernel = [3, 1], pool = "avg", pool_window = 2}]
hidden = []
image_shape = [4, 4]
[train]
loss = "importance_mse"
learning_rate = 0.03
num_steps = 60
log_every = 20
checkpoints = [20]
"""


def test_a_config_file_builds_the_conv_model_and_round_trips_through_toml():
    config = parse_config(tomllib.loads(CONV_TOML))
    assert config.model.conv == (ConvSpec(3, 3), ConvSpec(2, (3, 1), pool="avg", pool_window=2))
    assert config.model.conv[1].pool_window == (2, 2) and config.model.conv[1].pool_step == (2, 2)
    # what a run stores (config.toml) reads back to the same config
    again = parse_config(tomllib.loads(tomli_w.dumps(config.to_dict())))
    assert again == config and hash(again.model) == hash(config.model)
    model = build_model(config.model, config.make_distribution(), jax.random.key(0))
    assert isinstance(model, ConvNet) and model.shapes["pool_0"] == (2, 2, 2)
    assert model.widths["output"] == 16  # sparse features: the output reconstructs x
    # an MLP's stored table has no conv fields (runs written before conv models read alike)
    mlp = parse_config({"model": {"hidden": [3]}})
    assert set(mlp.to_dict()["model"]) == {"kind", "hidden", "activation"}


def test_a_sweep_over_the_conv_blocks_round_trips():
    """A sweep stores tables as (key, value) pairs; the members' blocks are those written."""
    data = tomllib.loads(CONV_TOML)
    data["sweep"] = {"param": "model.conv", "values": [[{"channels": 1, "kernel": 3}],
                                                        [{"channels": 2, "kernel": 1}]]}  # fmt: skip
    config = parse_config(data)
    members = config.members()
    assert [m.model.conv for m in members[:2]] == [(ConvSpec(1, 3),), (ConvSpec(2, 1),)]
    assert members[0].label == "seed 0, conv=[{channels=1, kernel=3}]"
    assert parse_config(tomllib.loads(tomli_w.dumps(config.to_dict()))) == config


@pytest.mark.parametrize(
    "model, match",
    [
        ({"conv": [{"channels": 2, "kernel": 3}]}, r"conv is for kind='conv' only"),
        ({"kind": "conv"}, r"needs at least one conv block"),
        ({"kind": "conv", "conv": {"channels": 2}}, r"conv must be a list of conv blocks"),
        ({"kind": "conv", "conv": [3]}, r"conv\[0\] must be a table"),
        ({"kind": "conv", "conv": [{"kernel": 3}]}, r"conv\[0\] needs channels and kernel"),
        ({"kind": "conv", "conv": [{"channels": 2, "kernel": 3, "strides": 2}]},
         r"conv\[0\]: unknown key 'strides'.*Did you mean 'stride'"),
        ({"kind": "conv", "conv": [{"channels": 2, "kernel": 3}, {"channels": 0, "kernel": 3}]},
         r"\[model\] conv\[1\].channels must be a positive integer, got 0"),
        ({"kind": "conv", "conv": [{"channels": 2, "kernel": [3, 0]}]},
         r"conv\[0\].kernel must be a positive integer or a pair \[rows, columns\]"),
        ({"kind": "conv", "conv": [{"channels": 2, "kernel": True}]}, r"conv\[0\].kernel must"),
        ({"kind": "conv", "conv": [{"channels": 2, "kernel": 3, "stride": 1.5}]},
         r"conv\[0\].stride must"),
        ({"kind": "conv", "conv": [{"channels": 2, "kernel": 3, "padding": "SAME"}]},
         r"conv\[0\].padding must be one of \['same', 'valid'\]"),
        ({"kind": "conv", "conv": [{"channels": 2, "kernel": 3, "pool": "mean"}]},
         r"conv\[0\].pool must be one of \['avg', 'max'\]"),
        ({"kind": "conv", "conv": [{"channels": 2, "kernel": 3, "pool_window": 2}]},
         r"conv\[0\].pool_window must be left out without a pool.*pool = 'avg'"),
        ({"kind": "conv", "conv": [{"channels": 2, "kernel": 3, "pool": "max",
                                    "pool_stride": 0}]}, r"conv\[0\].pool_stride must"),
        ({"kind": "conv", "conv": [{"channels": 2, "kernel": 3}], "image_shape": [4]},
         r"image_shape must be \[H, W\] or \[H, W, C\]"),
        ({"kind": "conv", "conv": [{"channels": 2, "kernel": 3}], "image_shape": [4, 3]},
         r"image_shape \[4, 3, 1\] has 12 values, but SparseFeatures has dimension 16"),
        ({"kind": "conv", "conv": [{"channels": 2, "kernel": 3}]},
         r"needs the image shape: SparseFeatures has no image_shape.*image_shape = \[H, W\]"),
        ({"image_shape": [4, 4]}, r"image_shape is for kind='conv' only"),
        ({"kind": "conv", "conv": [{"channels": 2, "kernel": 3, "stride": 2, "pool": "max",
                                    "pool_window": 3}], "image_shape": [4, 4]},
         r"^\[model\] conv\[0\].pool_window must be at most the 2x2 feature map of conv_0"),
    ],
)  # fmt: skip
def test_config_errors_name_the_block_and_the_field(model, match):
    data = tomllib.loads(CONV_TOML)
    data["model"] = model
    with pytest.raises(ToylabError, match=match):
        config = parse_config(data)
        build_model(config.model, config.make_distribution(), jax.random.key(0))


def test_the_image_shape_comes_from_the_distribution():
    """A stand-in image distribution: sparse features with an ``image_shape``."""

    class Images:  # the (cos, sin) regression of CurveImages: two outputs
        dim, num_classes, output_dim, image_shape = 16, 0, 2, (4, 4)

    config = ModelConfig(kind="conv", conv=[{"channels": 2, "kernel": 3}], hidden=[])
    model = build_model(config, Images(), jax.random.key(0))
    assert model.in_shape == (4, 4, 1) and model.num_outputs == 2
    bad = ModelConfig(kind="conv", conv=[{"channels": 2, "kernel": 3}], image_shape=(2, 8))
    with pytest.raises(ToylabError, match=r"image_shape \[2, 8\] disagrees with Images's"):
        build_model(bad, Images(), jax.random.key(0))


# ------------------------------------------------------------------ the initialiser
@pytest.mark.parametrize("init", [InitConfig(weights="he_normal", biases="normal", bias_scale=0.3)])
def test_init_params_equals_the_nnx_constructor_bit_for_bit(init):
    """Reference: the NNX module built on its own from each member's key (nnx.Conv draws
    kernel then bias, as nnx.Linear). The default initialiser of the conv kind is in
    tests/test_train_init.py with every other kind; this is the scaled, non-default one."""
    dist = make("sparse_features", probs=[0.1] * 25)
    config = ModelConfig(kind="conv", conv=SPECS[1:], hidden=(3,), image_shape=(5, 5),
                         init=init)  # fmt: skip
    keys = jax.vmap(jax.random.key)(np.array([3, 2**32 - 1], np.uint32))
    # scaled draws are compared eagerly, as tests/test_sweeps.py does: under jax.jit XLA
    # fuses the scale into the draw and the last bit can differ (for MLPs alike)
    run = jax.jit if init.is_default else (lambda f: f)
    graphdef, params = run(lambda k: init_params(config, dist, k))(keys)
    for m, seed in enumerate([3, 2**32 - 1]):
        ref_graph, ref = nnx.split(build_model(config, dist, jax.random.key(seed)), nnx.Param)
        got = jax.tree.map(lambda a, m=m: a[m], params)
        assert jax.tree.structure(got) == jax.tree.structure(ref)
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(ref), strict=True):
            np.testing.assert_array_equal(a, b)
    assert graphdef == ref_graph
    kernel = np.asarray(params["layers"][0]["kernel"][...])
    assert kernel.shape == (2, 3, 3, 1, 4)  # members, HWIO
    assert np.all(kernel != 0) and np.all(kernel[0] != kernel[1])


# ------------------------------------------------------------------ training
def test_the_fused_kernel_refuses_conv_models():
    from toylab.train import TrainConfig, _fused, train

    config = parse_config(tomllib.loads(CONV_TOML))
    why = _fused.unavailable() or "it covers MLPs, not ConvNet"
    cfg = TrainConfig(num_steps=2, log_every=2, checkpoints=[], loss="importance_mse")
    with pytest.raises(ToylabError, match=re.escape(why) + r".*Use kernel='jax'"):
        train(config.make_distribution(), config.model, cfg, kernel="fused")


def test_training_lowers_the_loss_resumes_bit_identically_and_loads(tmp_path):
    from toylab.runs import load_run, start_run
    from toylab.train import train

    config = parse_config(tomllib.loads(CONV_TOML))
    run = start_run(config, tmp_path / "run")
    first, last = run.metrics[0]["loss"], run.metrics[-1]["loss"]
    # reference: the best constant output (the mean of x, which the output bias alone can
    # learn) has loss sum_i Var(x_i), estimated from 20000 samples (0.54; its standard
    # error is below 0.01). The members start above it (0.63, 0.62) and end well below
    # it (measured 0.39, 0.38), so a margin of 0.05 is safe and needs the conv layers.
    dist = config.make_distribution()
    x = np.asarray(dist.sample(jax.random.key(9), 20000).x, np.float64)
    constant = np.mean(np.sum((x - x.mean(0)) ** 2, axis=-1))  # importance 1 here
    assert np.all(first > constant) and np.all(last < constant - 0.05)
    # stopped at step 20 and resumed: the same parameters, bit for bit
    saved = {}

    def grab(ensemble, state, rec, is_ckpt):
        if int(state.step) == 20:
            saved["state"] = state

    train(dist, config.model, config.train, config.seeds, callback=grab)
    resumed = train(dist, config.model, config.train, config.seeds, state=saved["state"])
    for a, b in zip(jax.tree.leaves(run.params), jax.tree.leaves(resumed.state.params),
                    strict=True):  # fmt: skip
        np.testing.assert_array_equal(a, b)
    # a stored run gives ConvNets whose held-out loss is the recorded one
    loaded = load_run(tmp_path / "run")
    x = np.asarray(loaded.ensemble.eval_x, np.float64)
    for m in range(2):
        model = loaded.model(m, 20)
        assert isinstance(model, ConvNet)
        out = np.asarray(model(x.astype(np.float32)), np.float64)
        loss = np.mean(np.sum((out - x) ** 2, axis=-1))
        # float32 evaluation of the same sums: relative 1e-4 is safe
        assert loss == pytest.approx(float(run.metrics[1]["loss"][m]), rel=1e-4)
