"""Spatial layers (Conv, AvgPool, MaxPool) in the network value, and conv addresses.

References are independent of toylab.layers.conv: convolutions and poolings written
here as explicit Python loops over output positions (float64), ``lax`` /
``flax.nnx.Conv`` with their own padding rules, JAX autodiff for adjoints and
derivatives, and sampled forward passes for the bounds and the partition.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from hypothesis import given, settings
from hypothesis import strategies as st
from jax import lax

import toylab.exact as E
from toylab import NeuronId, NotApplicable, ToylabError
from toylab.network import AvgPool, Conv, Dense, MaxPool, Network, SpatialDense
from toylab.neurons import neuron_ids, resolve

# float64 sums of at most a few hundred products of O(1) terms, in a different order
# than the reference: agreement to ~1e3 eps relative to the sum of |terms|
F64 = 1e-12


def naive_conv(x, kernel, bias, stride, pads):
    """Cross-correlation by loops over output positions: x (N, H, W, C) float64."""
    (t, b), (left, r) = pads
    xp = np.pad(x, ((0, 0), (t, b), (left, r), (0, 0)))
    kh, kw, _, co = kernel.shape
    sh, sw = stride
    ho = (xp.shape[1] - kh) // sh + 1
    wo = (xp.shape[2] - kw) // sw + 1
    out = np.zeros((x.shape[0], ho, wo, co))
    for i in range(ho):
        for j in range(wo):
            patch = xp[:, i * sh : i * sh + kh, j * sw : j * sw + kw, :]
            out[:, i, j, :] = np.einsum("nabc,abcd->nd", patch, kernel) + bias
    return out


def naive_pool(x, window, stride, reduce):
    wh, ww = window
    sh, sw = stride
    ho = (x.shape[1] - wh) // sh + 1
    wo = (x.shape[2] - ww) // sw + 1
    out = np.zeros((x.shape[0], ho, wo, x.shape[3]))
    for i in range(ho):
        for j in range(wo):
            out[:, i, j, :] = reduce(
                x[:, i * sh : i * sh + wh, j * sw : j * sw + ww, :], axis=(1, 2)
            )
    return out


CASES = [  # (H, W, C_in, C_out, kh, kw, stride, padding)
    (7, 5, 2, 3, 3, 3, 1, "same"),
    (8, 6, 1, 2, 5, 3, 2, "same"),
    (6, 7, 2, 2, 2, 3, (2, 1), "valid"),
    (5, 5, 1, 2, 3, 3, 2, ((1, 0), (2, 1))),
    (9, 4, 3, 1, 1, 1, 3, "same"),
    (4, 6, 2, 2, 4, 2, (1, 3), "same"),
]


def _conv(case, seed=0):
    h, w, ci, co, kh, kw, stride, padding = case
    rng = np.random.default_rng(seed)
    layer = Conv(
        rng.normal(size=(kh, kw, ci, co)), rng.normal(size=co), (h, w, ci), stride, padding
    )
    return layer, rng.normal(size=(5, h * w * ci))


def _lax_same(x, layer):
    """lax's own padding rule (its string form), float64."""
    pad = layer.padding.upper() if isinstance(layer.padding, str) else layer.padding
    with jax.enable_x64(True):
        y = lax.conv_general_dilated(
            jnp.asarray(x.reshape(-1, *layer.in_shape)), jnp.asarray(layer.kernel),
            window_strides=layer.stride, padding=pad, dimension_numbers=("NHWC", "HWIO", "NHWC"),
        )  # fmt: skip
        return np.asarray(y) + layer.bias


@pytest.mark.parametrize("case", CASES)
def test_conv_forward_matches_loops_lax_and_dense_form(case):
    layer, x = _conv(case)
    y = layer.apply(x)
    assert y.dtype == np.float64 and y.shape == (5, layer.fan_out)
    ref = _lax_same(x, layer)
    assert ref.shape[1:] == layer.out_shape
    scale = (
        naive_conv(
            np.abs(x).reshape(-1, *layer.in_shape),
            np.abs(layer.kernel),
            0 * layer.bias,
            layer.stride,
            layer.pads,
        ).max()
        + 1
    )
    np.testing.assert_allclose(y, ref.reshape(5, -1), atol=F64 * scale)
    loop = naive_conv(
        x.reshape(-1, *layer.in_shape), layer.kernel, layer.bias, layer.stride, layer.pads
    )
    np.testing.assert_allclose(y, loop.reshape(5, -1), atol=F64 * scale)
    w, b = layer.arrays()
    assert w.shape == (layer.fan_in, layer.fan_out)
    # the dense form holds copies of kernel entries and zeros, nothing computed
    assert set(np.unique(w)) <= set(np.unique(layer.kernel)) | {0.0}
    np.testing.assert_allclose(x @ w + b, y, atol=F64 * scale)
    np.testing.assert_allclose(layer.linear(x), y - b, atol=F64 * scale)
    # JAX path (lax, float64) equals the NumPy path
    with jax.enable_x64(True):
        jl = Conv(
            jnp.asarray(layer.kernel),
            jnp.asarray(layer.bias),
            layer.in_shape,
            layer.stride,
            layer.padding,
        )
        np.testing.assert_allclose(np.asarray(jl.apply(jnp.asarray(x))), y, atol=F64 * scale)
        jw, jb = jl.arrays()
        np.testing.assert_array_equal(np.asarray(jw), w)


@settings(max_examples=25)
@given(
    h=st.integers(1, 7), w=st.integers(1, 7), ci=st.integers(1, 3), co=st.integers(1, 3),
    kh=st.integers(1, 4), kw=st.integers(1, 4), sh=st.integers(1, 3), sw=st.integers(1, 3),
    pads=st.tuples(*[st.integers(0, 2)] * 4), seed=st.integers(0, 2**31),
)  # fmt: skip
def test_conv_any_geometry_matches_loops_and_its_dense_form(
    h, w, ci, co, kh, kw, sh, sw, pads, seed
):
    t, b, left, r = pads
    if kh > h + t + b or kw > w + left + r:
        return
    rng = np.random.default_rng(seed)
    layer = Conv(
        rng.normal(size=(kh, kw, ci, co)),
        rng.normal(size=co),
        (h, w, ci),
        (sh, sw),
        ((t, b), (left, r)),
    )
    x = rng.normal(size=(3, h * w * ci))
    loop = naive_conv(
        x.reshape(3, h, w, ci), layer.kernel, layer.bias, (sh, sw), ((t, b), (left, r))
    )
    assert layer.out_shape == loop.shape[1:]
    y = layer.apply(x)
    np.testing.assert_allclose(y, loop.reshape(3, -1), rtol=F64, atol=F64 * 100)
    wd, bd = layer.arrays()
    np.testing.assert_allclose(x @ wd + bd, y, rtol=F64, atol=F64 * 100)
    g = rng.normal(size=(3, layer.fan_out))
    np.testing.assert_allclose(layer.transpose(g), g @ wd.T, rtol=F64, atol=F64 * 100)


@pytest.mark.parametrize("case", CASES)
def test_conv_transpose_is_the_adjoint(case):
    layer, x = _conv(case, seed=1)
    g = np.random.default_rng(2).normal(size=(5, layer.fan_out))
    with jax.enable_x64(True):
        jl = Conv(
            jnp.asarray(layer.kernel),
            jnp.asarray(layer.bias),
            layer.in_shape,
            layer.stride,
            layer.padding,
        )
        _, vjp = jax.vjp(lambda h: jl.linear(h), jnp.asarray(x))
        (ref,) = vjp(jnp.asarray(g))
        got_jax = np.asarray(jl.transpose(jnp.asarray(g)))
    ref = np.asarray(ref)
    scale = np.abs(g).sum(axis=1).max() * np.abs(layer.kernel).max() + 1
    np.testing.assert_allclose(layer.transpose(g), ref, atol=F64 * scale)
    np.testing.assert_allclose(got_jax, ref, atol=F64 * scale)
    w, _ = layer.arrays()
    np.testing.assert_allclose(layer.transpose(g), g @ w.T, atol=F64 * scale)


@pytest.mark.parametrize("padding", ["SAME", "VALID"])
@pytest.mark.parametrize("strides", [1, 2])
def test_conv_matches_flax_nnx_conv(padding, strides):
    h, w, ci, co = 9, 8, 2, 4
    model = nnx.Conv(ci, co, (3, 5), strides=strides, padding=padding, rngs=nnx.Rngs(0))
    rng = np.random.default_rng(3)
    model.bias[...] = jnp.asarray(rng.normal(size=co), jnp.float32)
    x = jnp.asarray(rng.normal(size=(6, h, w, ci)), jnp.float32)
    ref = np.asarray(model(x))
    layer = Conv(model.kernel[...], model.bias[...], (h, w, ci), strides, padding.lower())
    got = np.asarray(layer.apply(x.reshape(6, -1)))
    assert got.dtype == np.float32 and layer.out_shape == ref.shape[1:]
    # float32: each output sums 30 products; rounding ~ 30 eps32 times the sum of |terms|
    scale = (
        np.abs(np.asarray(x)).max()
        * np.abs(np.asarray(model.kernel[...])).sum(axis=(0, 1, 2)).max()
    )
    np.testing.assert_allclose(got, ref.reshape(6, -1), atol=30 * 1.2e-7 * scale + 1e-6)
    # the NumPy float64 path from the same weights agrees to float32 rounding
    layer64 = Conv(
        np.asarray(model.kernel[...], np.float64),
        np.asarray(model.bias[...], np.float64),
        (h, w, ci),
        strides,
        padding.lower(),
    )
    np.testing.assert_allclose(
        layer64.apply(np.asarray(x, np.float64).reshape(6, -1)),
        ref.reshape(6, -1),
        atol=30 * 1.2e-7 * scale + 1e-6,
    )


@pytest.mark.parametrize("window, stride", [(2, None), ((3, 2), (1, 2)), (3, 2)])
def test_pools_match_loops(window, stride):
    rng = np.random.default_rng(4)
    shape = (7, 6, 3)
    x = rng.normal(size=(4, 7 * 6 * 3))
    avg, mx = AvgPool(shape, window, stride), MaxPool(shape, window, stride)
    win = (window, window) if isinstance(window, int) else window
    st_ = win if stride is None else ((stride, stride) if isinstance(stride, int) else stride)
    xs = x.reshape(4, *shape)
    np.testing.assert_allclose(
        avg.apply(x), naive_pool(xs, win, st_, np.mean).reshape(4, -1), rtol=1e-14
    )
    np.testing.assert_array_equal(mx.apply(x), naive_pool(xs, win, st_, np.max).reshape(4, -1))
    w, b = avg.arrays()
    np.testing.assert_allclose(x @ w + b, avg.apply(x), rtol=1e-13, atol=1e-15)
    g = rng.normal(size=(4, avg.fan_out))
    # adjoint identity <A x, g> = <x, A^T g>, and A^T = W.T
    np.testing.assert_allclose(avg.transpose(g), g @ w.T, rtol=1e-13, atol=1e-15)
    with pytest.raises(NotApplicable, match="max pooling is not affine"):
        mx.arrays()


def _reference_maxpool_net(params, x, shape):
    """The same net written with lax (reduce_window max), float64 under x64."""
    k0, b0, wd, bd = params
    h = lax.conv_general_dilated(
        x.reshape(-1, *shape), k0, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )
    h = jnp.tanh(h + b0)
    h = lax.reduce_window(h, -jnp.inf, lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
    return h.reshape(x.shape[0], -1) @ wd + bd


def _maxpool_net(seed=5):
    rng = np.random.default_rng(seed)
    k0, b0 = rng.normal(size=(3, 3, 1, 3)), rng.normal(size=3)
    wd, bd = rng.normal(size=(3 * 3 * 3, 2)), rng.normal(size=2)
    net = Network(
        (Conv(k0, b0, (6, 6, 1)), MaxPool((6, 6, 3), 2), Dense(wd, bd)),
        ("tanh", "identity", "identity"),
    )
    return net, (k0, b0, wd, bd)


def test_maxpool_network_forward_gradient_and_jvp():
    net, params = _maxpool_net()
    x = np.random.default_rng(6).normal(size=(5, 36))
    d = np.random.default_rng(7).normal(size=(5, 36))
    with jax.enable_x64(True):
        jp = tuple(jnp.asarray(p) for p in params)
        ref = np.asarray(_reference_maxpool_net(jp, jnp.asarray(x), (6, 6, 1)))
        grad = np.asarray(
            jax.grad(lambda z: _reference_maxpool_net(jp, z, (6, 6, 1))[:, 1].sum())(jnp.asarray(x))
        )
        _, tangent = jax.jvp(
            lambda z: _reference_maxpool_net(jp, z, (6, 6, 1)), (jnp.asarray(x),), (jnp.asarray(d),)
        )
    np.testing.assert_allclose(net(x), ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(net.gradient(x, "output:1"), grad, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(net.jvp(x, d)["output"], np.asarray(tangent), rtol=1e-12, atol=1e-12)
    with pytest.raises(NotApplicable, match="max pooling is not affine"):
        relu = Network(net.layers, ("relu", "identity", "identity"))
        E.slice_partition(relu, x[0], d[0], d[1], [[0, 0], [1, 0], [0, 1]])
    with pytest.raises(NotApplicable, match="max pooling is not affine"):
        E.maximize(net, x[0] - 0.1, x[0] + 0.1, "output:0")


def test_bounds_through_max_pooling_enclose_samples():
    net, _ = _maxpool_net()
    net = Network(net.layers, ("relu", "identity", "identity"))
    rng = np.random.default_rng(18)
    centre = rng.normal(size=36)
    low, high = centre - 0.4, centre + 0.4
    xs = np.concatenate([rng.uniform(low, high, size=(3000, 36)), [low, high]])
    vals = net.forward(xs)
    ibp, lin = E.interval_bounds(net, low, high), E.linear_bounds(net, low, high)
    assert set(ibp) == set(lin) == set(vals)
    for key in vals:
        for lo, hi in (ibp[key], lin[key]):
            assert np.all(vals[key] >= lo) and np.all(vals[key] <= hi), key
        # linear bounds are never looser than the interval bounds
        assert np.all(lin[key][0] >= ibp[key][0]) and np.all(lin[key][1] <= ibp[key][1])
    # the pool's box is the window maximum of its input's box, exactly
    np.testing.assert_array_equal(ibp["pool_0.pre"][1], net.layers[1].apply(ibp["conv_0"][1]))


def test_maxpool_ties_route_to_the_first_maximum():
    pool = MaxPool((2, 2, 1), 2)
    h = np.array([[1.0, 3.0, 3.0, 3.0]])  # window (0,1), (1,0), (1,1) tie at 3
    np.testing.assert_array_equal(pool.transpose_at(h, np.array([[1.0]])), [[0.0, 1.0, 0.0, 0.0]])
    np.testing.assert_array_equal(pool.linear_at(h, np.array([[10.0, 20.0, 30.0, 40.0]])), [[20.0]])


def _small_net(seed=8, act="relu"):
    rng = np.random.default_rng(seed)
    layers = (
        Conv(rng.normal(size=(3, 3, 1, 2)), 0.3 * rng.normal(size=2), (6, 6, 1)),
        AvgPool((6, 6, 2), 2),
        Conv(rng.normal(size=(2, 2, 2, 3)), 0.3 * rng.normal(size=3), (3, 3, 2), 1, "valid"),
        Dense(rng.normal(size=(12, 4)), rng.normal(size=4)),
        Dense(rng.normal(size=(4, 3)), rng.normal(size=3)),
    )
    return Network(layers, (act, "identity", act, act, "identity"))


def test_keys_shapes_index_and_repr():
    net = _small_net()
    assert list(net.widths) == [
        "input", "conv_0.pre", "conv_0", "pool_0.pre", "pool_0", "conv_1.pre", "conv_1",
        "hidden_0.pre", "hidden_0", "output",
    ]  # fmt: skip
    assert net.widths["conv_0"] == 72 and net.widths["conv_1"] == 12 and net.input_dim == 36
    assert net.layer_shape("input") == (6, 6, 1)
    assert net.layer_shape("pool_0") == (3, 3, 2) and net.layer_shape("conv_1.pre") == (2, 2, 3)
    assert [
        net.layer_index(k) for k in ("conv_0", "pool_0.pre", "conv_1", "hidden_0", "output")
    ] == [0, 1, 2, 3, 4]
    with pytest.raises(ToylabError, match="spatial layer key"):
        net.layer_shape("hidden_0")
    with pytest.raises(ToylabError, match="layer key"):
        net.layer_index("conv_7")
    assert repr(net) == (
        "Network(6x6x1 -conv3x3x2-> 6x6x2 -avg2-> 3x3x2 -conv2x2x3-> 2x2x3 -> 4 -> 3, relu)"
    )
    out = net.forward(np.zeros((2, 36)))
    assert set(out) == {"input", *net.layer_keys()}
    assert all(out[k].shape == (2, n) for k, n in net.widths.items())


def test_stacked_members_vmap_and_broadcast():
    a, b = _small_net(8), _small_net(9)
    x = np.random.default_rng(10).normal(size=(3, 36))
    ref = np.stack([a(x), b(x)])
    js = Network.stack([a, b]).jax(np.float32)
    got = jax.vmap(lambda n: n(jnp.asarray(x, jnp.float32)))(js)
    # float32 forward through 5 layers of O(1) weights: 1e-4 covers the rounding
    np.testing.assert_allclose(np.asarray(got), ref, rtol=1e-4, atol=1e-4)
    grads = jax.vmap(lambda n: n.gradient(jnp.asarray(x, jnp.float32), "conv_1:2@1,0"))(js)
    ref_g = np.stack([a.gradient(x, "conv_1:2@1,0"), b.gradient(x, "conv_1:2@1,0")])
    np.testing.assert_allclose(np.asarray(grads), ref_g, rtol=1e-4, atol=1e-4)
    # a conv layer with a member axis broadcasts like h @ kernel (NumPy and JAX)
    c0, c1 = a.layers[2], b.layers[2]
    both = Network.stack([a, b]).layers[2]
    h = np.random.default_rng(16).normal(size=(3, 18))
    want = np.stack([c0.apply(h), c1.apply(h)])
    np.testing.assert_allclose(both.apply(h), want, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(both.apply(np.stack([h, h])), want, rtol=1e-13, atol=1e-13)
    g = np.random.default_rng(17).normal(size=(2, 3, 12))
    want_t = np.stack([c0.transpose(g[0]), c1.transpose(g[1])])
    np.testing.assert_allclose(both.transpose(g), want_t, rtol=1e-13, atol=1e-13)
    jb = jax.tree.map(lambda v: jnp.asarray(v, jnp.float32), both)
    np.testing.assert_allclose(
        np.asarray(jb.apply(jnp.asarray(h, jnp.float32))), want, rtol=1e-4, atol=1e-4
    )


# --------------------------------------------------------------------------- addresses


@given(
    layer=st.sampled_from(["conv", "pool"]).flatmap(
        lambda p: st.integers(0, 30).map(lambda k: f"{p}_{k}")
    ),
    channel=st.integers(0, 500),
    pos=st.none() | st.tuples(st.integers(0, 99), st.integers(0, 99)),
    pre=st.booleans(),
)
def test_spatial_address_round_trip(layer, channel, pos, pre):
    text = f"{layer}{'.pre' if pre else ''}:{channel}" + (
        "" if pos is None else f"@{pos[0]},{pos[1]}"
    )
    nid = NeuronId.parse(text)
    assert (nid.layer, nid.channel, nid.pos, nid.pre, nid.unit) == (layer, channel, pos, pre, -1)
    assert str(nid) == text and NeuronId.parse(str(nid)) == nid


def test_resolve_spatial_addresses():
    net = _small_net()
    nid = net.resolve("conv_0:1@2,5")
    assert (nid.unit, nid.channel, nid.pos, str(nid)) == (
        (2 * 6 + 5) * 2 + 1,
        1,
        (2, 5),
        "conv_0:1@2,5",
    )
    centre = net.resolve("conv_0:1")
    assert centre.pos == (3, 3) and centre.unit == (3 * 6 + 3) * 2 + 1 and str(centre) == "conv_0:1"
    assert net.resolve("conv_0:1@3,3") == centre and str(net.resolve("conv_0:1@3,3")) == "conv_0:1"
    assert str(net.resolve("pool_0.pre:0@2,1")) == "pool_0.pre:0@2,1"
    assert net.resolve("input:0@1,2", allow_input=True).unit == 8
    assert net.resolve("hidden_0:3").unit == 3
    x = np.random.default_rng(11).normal(size=(4, 36))
    vals = net.forward(x)
    ref = vals["conv_0"].reshape(4, 6, 6, 2)[:, 2, 5, 1]
    np.testing.assert_array_equal(vals[nid.key][..., nid.unit], ref)
    np.testing.assert_array_equal(net.values(x, "conv_0:1@2,5"), ref)
    with pytest.raises(ToylabError, match=r"\(H, W, C\) = \(6, 6, 2\).*channels 0..1"):
        net.resolve("conv_0:2")
    with pytest.raises(ToylabError, match=r"rows 0..2, columns 0..2; got channel 0 at \(3, 0\)"):
        net.resolve("pool_0:0@3,0")
    with pytest.raises(ToylabError, match="not spatial"):
        net.resolve("hidden_0:0@0,0")
    with pytest.raises(ToylabError, match="Did you mean 'conv_1'"):
        net.resolve("conv_2:0")
    for bad in [
        "conv_0:1@2",
        "conv_0:1@-1,2",
        "conv_0:1@2,x",
        "conv_0:1@ 2,3",
        "conv_0:@1,1",
        "conv_01:1",
    ]:
        with pytest.raises(ToylabError):
            NeuronId.parse(bad)
    with pytest.raises(ToylabError, match="needs its channel"):
        NeuronId("conv_0", 3)


def test_neuron_ids_one_per_channel_at_the_centre():
    net = _small_net()
    ids = net.neuron_ids(["conv_1", "hidden_0"])
    assert [str(i) for i in ids] == ["conv_1:0", "conv_1:1", "conv_1:2"] + [
        f"hidden_0:{u}" for u in range(4)
    ]
    assert ids[1].pos == (1, 1) and ids[1].unit == (1 * 2 + 1) * 3 + 1
    with pytest.raises(ToylabError, match="spatial"):
        neuron_ids(net.widths, ["conv_1"])
    assert resolve("conv_1:2", net.widths, net.layer_shapes) == ids[2]


# --------------------------------------------------------------------------- edits


def test_compose_input_keeps_keys_and_values():
    net = _small_net()
    rng = np.random.default_rng(12)
    o, d1, d2 = rng.normal(size=(3, 36))
    plane = net.on_plane(o, d1, d2)
    assert isinstance(plane.layers[0], SpatialDense)
    assert [type(la) for la in plane.layers[1:]] == [type(la) for la in net.layers[1:]]
    assert list(plane.widths)[1:] == list(net.widths)[1:] and plane.input_dim == 2
    assert plane.layer_shape("conv_0") == (6, 6, 2)
    st_ = rng.normal(size=(7, 2))
    a, b = plane.forward(st_), net.forward(o + st_[:, :1] * d1 + st_[:, 1:] * d2)
    for key in net.layer_keys():
        np.testing.assert_allclose(a[key], b[key], rtol=1e-11, atol=1e-11)


def test_ablate_in_a_conv_net():
    net = _small_net()
    x = np.random.default_rng(13).normal(size=(6, 36))
    for address, v in (("hidden_0:2", 0.7), ("conv_1:1@1,0", -0.4)):
        nid = net.resolve(address)

        def hook(h, nid=nid, v=v):
            h = h.copy()
            h[..., nid.unit] = v
            return h

        ref = net.forward(x, hooks={nid.key: hook})["output"]
        edited = net.ablate(address, v)
        assert list(edited.widths) == list(net.widths)
        np.testing.assert_allclose(edited(x), ref, rtol=1e-12, atol=1e-12)
    # values keyed by the canonical address or by the address as written
    a = net.ablate("conv_1:1@1,1", {"conv_1:1@1,1": 0.5})
    b = net.ablate("conv_1:1@1,1", {str(net.resolve("conv_1:1@1,1")): 0.5})
    np.testing.assert_array_equal(a(x), b(x))
    with pytest.raises(ToylabError, match=r"read by layer 1 \(AvgPool\)"):
        net.ablate("conv_0:0@1,1")
    with pytest.raises(ToylabError, match=r"read by layer 2 \(Conv\)"):
        net.ablate("pool_0:1")


# --------------------------------------------------------------------------- exact


def test_bounds_enclose_samples_on_a_conv_net():
    net = _small_net(act="relu")
    rng = np.random.default_rng(14)
    centre = rng.normal(size=36)
    low, high = centre - 0.3, centre + 0.3
    xs = rng.uniform(low, high, size=(2000, 36))
    vals = net.forward(xs)
    for bounds in (E.interval_bounds(net, low, high), E.linear_bounds(net, low, high)):
        for key, (lo, hi) in bounds.items():
            assert np.all(vals[key] >= lo - 1e-12) and np.all(vals[key] <= hi + 1e-12), key
    res = E.maximize(net, low, high, "pool_0:1@1,1")
    sampled = net.values(xs, "pool_0:1@1,1").max()
    assert res.converged and res.upper >= sampled and res.value >= sampled - 1e-12
    # the certified maximizer is a real input whose forward value is the reported value
    np.testing.assert_allclose(net.values(res.point[None], "pool_0:1@1,1"), [res.value], rtol=1e-12)


def test_slice_partition_of_a_conv_net_matches_forward():
    net = _small_net(act="relu")
    rng = np.random.default_rng(15)
    o, d1, d2 = rng.normal(size=36), rng.normal(size=36), rng.normal(size=36)
    poly = np.array([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]])
    part = E.slice_partition(net, o, d1, d2, poly)
    assert part.num_regions > 10
    assert {"conv_0", "pool_0", "conv_1", "hidden_0", "output"} <= set(part.maps)
    pick = rng.choice(part.num_regions, size=min(60, part.num_regions), replace=False)
    for r in pick:
        verts = part.polygons[r]
        wts = rng.dirichlet(np.ones(len(verts)), size=3)
        st_ = wts @ verts  # interior points of the convex region
        vals = net.forward(o + st_[:, :1] * d1 + st_[:, 1:] * d2)
        for key in ("conv_0", "pool_0.pre", "conv_1", "hidden_0", "output"):
            m = part.maps[key][r]  # (width, 3)
            pred = st_ @ m[:, :2].T + m[:, 2]
            np.testing.assert_allclose(pred, vals[key], rtol=1e-8, atol=1e-8, err_msg=key)


def test_bad_layers_get_clear_errors():
    k = np.zeros((3, 3, 1, 2))
    with pytest.raises(ToylabError, match=r"layers\[1\].in_shape must be the output shape"):
        Network((Conv(k, np.zeros(2), (6, 6, 1)), AvgPool((6, 6, 3), 2)), ("relu", "identity"))
    with pytest.raises(ToylabError, match="C_in must match"):
        Conv(np.zeros((3, 3, 2, 2)), np.zeros(2), (6, 6, 1))
    with pytest.raises(ToylabError, match="padding must be 'same', 'valid'"):
        Conv(k, np.zeros(2), (6, 6, 1), padding="full")
    with pytest.raises(ToylabError, match="fits the padded"):
        Conv(np.zeros((7, 3, 1, 2)), np.zeros(2), (6, 6, 1), padding="valid")
    with pytest.raises(ToylabError, match="stride must be an integer >= 1"):
        Conv(k, np.zeros(2), (6, 6, 1), stride=0)
    with pytest.raises(ToylabError, match="window must be at most"):
        MaxPool((6, 6, 1), 7)
    with pytest.raises(ToylabError, match=r"input must be \(\.\.\., 36\)"):
        Conv(k, np.zeros(2), (6, 6, 1)).apply(np.zeros((2, 35)))
