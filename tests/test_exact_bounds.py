"""Tests for toylab.exact.bounds: soundness, tightness and certified maxima.

The reference forward pass below is written independently of the module (gelu
through ``scipy.special.erf``), so a wrong activation in the module cannot hide
behind the same wrong activation in the test.
"""

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import special

from toylab import ToylabError
from toylab.activations import ACTIVATIONS, GELU_ARGMIN, GELU_MIN
from toylab.exact import bounds as B
from toylab.methods.grid import grid_evaluate
from toylab.network import Network

REF_ACTS = {
    "relu": lambda x: np.maximum(x, 0.0),
    "leaky_relu": lambda x: np.where(x > 0, x, 0.01 * x),
    "abs": np.abs,
    "hardtanh": lambda x: np.clip(x, -1.0, 1.0),
    "identity": lambda x: x,
    "tanh": np.tanh,
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "gelu": lambda x: 0.5 * x * (1.0 + special.erf(x / math.sqrt(2.0))),
    "quadratic": np.square,
}


def reference(layers, activations, x):
    """Every layer key -> values at points ``x`` (N, d), float64."""
    out = {"input": x}
    h = x
    for k, (W, b) in enumerate(layers):
        z = h @ W + b
        if k == len(layers) - 1:
            out["output"] = z
        else:
            out[f"hidden_{k}.pre"] = z
            h = REF_ACTS[activations[k]](z)
            out[f"hidden_{k}"] = h
    return out


def random_net(rng, widths, activations, scale=1.0):
    layers = [
        (
            rng.normal(size=(widths[i], widths[i + 1])) * scale / math.sqrt(widths[i]),
            rng.normal(size=widths[i + 1]) * 0.3 * scale,
        )
        for i in range(len(widths) - 1)
    ]
    return layers, list(activations)


def points_in(rng, low, high, num):
    """Uniform points plus box corners (where extremes of monotone nets sit)."""
    d = low.size
    inner = low + (high - low) * rng.random((num, d))
    corners = np.where(rng.random((min(num, 64), d)) < 0.5, low, high)
    return np.concatenate([inner, corners, [low, high]])


@st.composite
def nets_and_boxes(draw):
    dim = draw(st.integers(1, 5))
    depth = draw(st.integers(1, 3))
    widths = [dim] + [draw(st.integers(1, 16)) for _ in range(depth)] + [draw(st.integers(1, 3))]
    acts = [draw(st.sampled_from(sorted(REF_ACTS))) for _ in range(depth)]
    scale = draw(st.sampled_from([0.3, 1.0, 3.0]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    layers, acts = random_net(rng, widths, acts, scale)
    centre = rng.normal(size=dim) * draw(st.sampled_from([0.0, 1.0, 3.0]))
    radius = np.exp(rng.normal(size=dim)) * draw(st.sampled_from([1e-4, 0.1, 1.0, 3.0]))
    return layers, acts, centre - radius, centre + radius, rng


# --------------------------------------------------------------------------- soundness


@settings(max_examples=150, deadline=None)
@given(case=nets_and_boxes())
def test_bounds_are_sound_and_linear_within_interval(case):
    layers, acts, low, high, rng = case
    ibp = B.interval_bounds(Network.from_layers(layers, acts), low, high)
    lin = B.linear_bounds(Network.from_layers(layers, acts), low, high)
    values = reference(layers, acts, points_in(rng, low, high, 500))
    assert set(ibp) == set(lin) == set(values)
    for key, v in values.items():
        for name, bounds in (("interval", ibp), ("linear", lin)):
            lo, hi = bounds[key]
            assert lo.shape == hi.shape == v.shape[1:]
            assert np.all(v >= lo), (name, key, acts, float(np.max(lo - v)))
            assert np.all(v <= hi), (name, key, acts, float(np.max(v - hi)))
        assert np.all(lin[key][0] >= ibp[key][0]) and np.all(lin[key][1] <= ibp[key][1])


@pytest.mark.parametrize("name", sorted(REF_ACTS))
def test_relaxation_lines_are_sound_and_touch(name):
    """Each line lies on the right side of f on its interval and touches f (tight).

    A line that is sound but not tight would be lifted off f by more than the
    grid resolution allows; 1e-3 covers a kink falling between grid points.
    """
    act = ACTIVATIONS[name]
    rng = np.random.default_rng(0)
    l = rng.normal(size=400) * 3.0
    u = l + np.exp(rng.normal(size=400))
    aL, cL, aU, cU = B._relax(act, l, u)
    z = l[:, None] + (u - l)[:, None] * np.linspace(0.0, 1.0, 4001)[None]
    f = REF_ACTS[name](z)
    above = aU[:, None] * z + cU[:, None] - f
    below = f - (aL[:, None] * z + cL[:, None])
    assert above.min() >= 0.0 and below.min() >= 0.0
    assert np.max(above.min(axis=1)) < 1e-3 and np.max(below.min(axis=1)) < 1e-3
    if name in {"relu", "leaky_relu", "abs", "quadratic", "identity"}:
        # convex: the best upper line is the chord, touching f at both ends (up to the
        # documented outward padding, relative to the magnitudes involved)
        scale = 1.0 + np.abs(f[:, [0, -1]]) + ((1.0 + np.abs(aU)) * np.abs(z).max(axis=1))[:, None]
        assert np.all(np.abs(above[:, [0, -1]]) < 1e-9 * scale)


def test_gelu_minimum_constants():
    import mpmath

    mpmath.mp.dps = 40
    x_star = mpmath.findroot(lambda x: mpmath.ncdf(x) + x * mpmath.npdf(x), -0.75)
    exact_min = float(x_star * mpmath.ncdf(x_star))
    assert abs(GELU_ARGMIN - float(x_star)) < 1e-12
    assert exact_min - 2e-12 < GELU_MIN < exact_min
    assert GELU_MIN <= REF_ACTS["gelu"](np.linspace(-3, 3, 200_001)).min()


def test_the_one_activation_table_agrees_with_independent_formulas():
    """NumPy and JAX values and derivatives of every activation against the formulas here
    (values) and JAX autodiff (derivatives away from the kinks)."""
    import jax
    import jax.numpy as jnp

    assert set(ACTIVATIONS) == set(REF_ACTS)
    x = np.linspace(-4.0, 4.0, 101) + 0.013  # no grid point on a kink
    for name, act in ACTIVATIONS.items():
        np.testing.assert_allclose(act(x), REF_ACTS[name](x), rtol=1e-14, atol=1e-15, err_msg=name)
        got = np.asarray(act(jnp.asarray(x, dtype=jnp.float32)), dtype=np.float64)
        np.testing.assert_allclose(got, REF_ACTS[name](x), rtol=1e-6, atol=1e-6, err_msg=name)
        autodiff = jax.vmap(jax.grad(lambda t, a=act: a(t)))(jnp.asarray(x, jnp.float32))
        np.testing.assert_allclose(act.grad(x), np.asarray(autodiff), atol=1e-5, err_msg=name)
        if act.lipschitz < np.inf:  # the certified constants bound the derivative
            dense = np.linspace(-8, 8, 100_001)
            assert np.abs(act.grad(dense)).max() <= act.lipschitz + 1e-12, name


# --------------------------------------------------------------------------- tightness


def test_linear_bounds_exact_for_affine_networks():
    """With identity activations the network is affine: CROWN is exact, IBP is not."""
    rng = np.random.default_rng(1)
    layers, acts = random_net(rng, [3, 8, 8, 2], ["identity", "identity"])
    low, high = -np.ones(3), np.ones(3)
    corners = np.array(np.meshgrid(*[[-1.0, 1.0]] * 3)).reshape(3, -1).T
    out = reference(layers, acts, corners)["output"]
    lo, hi = B.linear_bounds(Network.from_layers(layers, acts), low, high)["output"]
    np.testing.assert_allclose(lo, out.min(axis=0), atol=1e-9)
    np.testing.assert_allclose(hi, out.max(axis=0), atol=1e-9)
    ilo, ihi = B.interval_bounds(Network.from_layers(layers, acts), low, high)["output"]
    assert np.all(ihi - ilo > hi - lo + 1e-3)


def test_linear_bounds_much_tighter_than_interval_on_deep_relu():
    """Mean output-width ratio linear/interval: measured 0.072 (0.034-0.129 per seed).

    Without the chord among the candidate upper slopes it rises to 0.23.
    """
    ratios = []
    for seed in range(5):
        rng = np.random.default_rng(seed)
        layers, acts = random_net(rng, [4, 16, 16, 16, 16, 3], ["relu"] * 4)
        low = rng.normal(size=4)
        high = low + 0.5
        ibp = B.interval_bounds(Network.from_layers(layers, acts), low, high)
        lin = B.linear_bounds(Network.from_layers(layers, acts), low, high)
        for key in ibp:
            assert np.all(lin[key][1] - lin[key][0] <= ibp[key][1] - ibp[key][0])
        w_lin = np.mean(lin["output"][1] - lin["output"][0])
        w_ibp = np.mean(ibp["output"][1] - ibp["output"][0])
        ratios.append(w_lin / w_ibp)
    assert np.mean(ratios) < 0.12, ratios


# --------------------------------------------------------------------------- branch and bound


def check_certificate(res, layers, acts, low, high, neuron_key, unit, rng):
    """Leaves partition the box, their bounds hold on samples and are within the result."""
    cert = res.certificate
    lo, hi, bnd = cert.leaf_low, cert.leaf_high, cert.leaf_bound
    assert cert.num_leaves == lo.shape[0] == hi.shape[0] == bnd.shape[0]
    assert np.all(lo >= low) and np.all(hi <= high) and np.all(lo < hi)
    # volumes add up and interiors are pairwise disjoint -> the closed leaves cover the box
    np.testing.assert_allclose(np.prod(hi - lo, axis=1).sum(), np.prod(high - low), rtol=1e-9)
    overlap = np.all(
        (np.maximum(lo[:, None], lo[None]) < np.minimum(hi[:, None], hi[None])), axis=2
    )
    assert not np.any(overlap & ~np.eye(len(lo), dtype=bool))
    x = points_in(rng, low, high, 2000)
    inside = np.all((x[:, None] >= lo[None]) & (x[:, None] <= hi[None]), axis=2)
    assert np.all(inside.any(axis=1))
    v = reference(layers, acts, x)[neuron_key][:, unit]
    if res.sense == "max":
        assert np.all(bnd <= res.upper)
        assert np.all(v[:, None] <= np.where(inside, bnd[None], np.inf))
        assert np.all(v <= res.upper)
    else:
        assert np.all(bnd >= res.lower)
        assert np.all(v[:, None] >= np.where(inside, bnd[None], -np.inf))
        assert np.all(v >= res.lower)


def test_maximize_tent_in_1d_exact():
    # f(x) = relu(x + 1 - p) - 2 relu(x - p) + relu(x - p - 1): a tent of height 1 at x = p
    p = 1 / 3
    W0 = np.array([[1.0, 1.0, 1.0]])
    b0 = np.array([1.0 - p, -p, -p - 1.0])
    W1 = np.array([[1.0], [-2.0], [1.0]])
    layers = [(W0, b0), (W1, np.zeros(1))]
    low, high = np.array([-2.0]), np.array([3.0])
    res = B.maximize(Network.from_layers(layers, ["relu"]), low, high, "output:0", gap=1e-9)
    assert res.converged and res.tier == "certified" and res.sense == "max"
    assert abs(res.value - 1.0) <= 1e-9 and abs(res.point[0] - p) <= 1e-8
    assert 1.0 - 1e-12 <= res.upper <= 1.0 + 1e-9 and res.gap <= 1e-9
    assert res.lower == res.value
    check_certificate(res, layers, ["relu"], low, high, "output", 0, np.random.default_rng(0))


def test_maximize_pyramid_in_2d_exact():
    # f(x, y) = 1 - |x - a| - |y - c|, with |t| = relu(t) + relu(-t): max 1 at (a, c)
    a, c = 0.2137, -0.4711
    W0 = np.array([[1.0, -1.0, 0.0, 0.0], [0.0, 0.0, 1.0, -1.0]])
    b0 = np.array([-a, a, -c, c])
    W1 = -np.ones((4, 1))
    layers = [(W0, b0), (W1, np.ones(1))]
    low, high = np.array([-1.0, -1.0]), np.array([1.0, 1.0])
    res = B.maximize(Network.from_layers(layers, ["relu"]), low, high, "output:0", gap=1e-7)
    assert res.converged
    assert abs(res.value - 1.0) <= 1e-7 and np.allclose(res.point, [a, c], atol=1e-6)
    assert 1.0 - 1e-12 <= res.upper <= 1.0 + 1e-7
    mn = B.minimize(Network.from_layers(layers, ["relu"]), low, high, "output:0", gap=1e-7)
    exact_min = 1.0 - (1.0 + a) - (1.0 - c)  # the corner (-1, 1)
    assert mn.sense == "min" and mn.upper == mn.value
    assert abs(mn.value - exact_min) <= 1e-7 and mn.lower <= exact_min + 1e-12


@pytest.mark.parametrize("seed", [0, 1])
def test_maximize_random_relu_2d_against_grid(seed):
    rng = np.random.default_rng(seed)
    layers, acts = random_net(rng, [2, 16, 16, 2], ["relu", "relu"])
    low, high = np.array([-1.5, -1.0]), np.array([1.0, 2.0])
    gap = 1e-6
    for unit in (0, 1):
        res = B.maximize(Network.from_layers(layers, acts), low, high, f"output:{unit}", gap=gap)
        grid = grid_evaluate(
            Network.from_layers(layers, acts), low, high, f"output:{unit}", num_per_axis=401
        )
        assert res.converged and res.gap <= gap
        assert res.upper >= grid.max  # grid max is a lower bound on the true max
        assert res.value >= grid.max - gap  # and the true max is within gap of value
        assert res.value == pytest.approx(
            reference(layers, acts, res.point[None])["output"][0, unit]
        )
        check_certificate(res, layers, acts, low, high, "output", unit, rng)
    mn = B.minimize(Network.from_layers(layers, acts), low, high, "hidden_1.pre:3", gap=gap)
    grid = grid_evaluate(
        Network.from_layers(layers, acts), low, high, "hidden_1.pre:3", num_per_axis=401
    )
    assert mn.converged and mn.lower <= grid.min and mn.value <= grid.min + gap
    check_certificate(mn, layers, acts, low, high, "hidden_1.pre", 3, rng)


@pytest.mark.parametrize(
    ("act", "dim", "key"),
    [("tanh", 3, "output"), ("sigmoid", 5, "hidden_1"), ("gelu", 4, "output")],
)
def test_maximize_smooth_beats_random_search(act, dim, key):
    rng = np.random.default_rng(7)
    layers, acts = random_net(rng, [dim, 10, 10, 1], [act, act], scale=1.5)
    low, high = -np.ones(dim), np.ones(dim)
    gap = 1e-4
    res = B.maximize(Network.from_layers(layers, acts), low, high, f"{key}:{0}", gap=gap)
    x = points_in(rng, low, high, 50_000)
    best = reference(layers, acts, x)[key][:, 0].max()
    assert res.converged and res.gap <= gap
    assert best <= res.upper
    assert res.value >= best - gap
    check_certificate(res, layers, acts, low, high, key, 0, rng)


def test_maximize_post_activation_of_non_monotone():
    """max |z| needs the side of z that the linear upper bound does not favour."""
    W0 = np.array([[1.0], [2.0]])
    b0 = np.array([-0.5])
    layers = [(W0, b0), (np.ones((1, 1)), np.zeros(1))]
    low, high = np.array([-1.0, -1.0]), np.array([0.5, 0.5])
    res = B.maximize(Network.from_layers(layers, ["abs"]), low, high, "hidden_0:0", gap=1e-9)
    # z = x + 2y - 0.5 ranges over [-3.5, 1.0], so max |z| = 3.5 at (-1, -1)
    assert abs(res.value - 3.5) <= 1e-9 and np.allclose(res.point, [-1.0, -1.0])


def test_maximize_stops_honestly_at_max_nodes():
    rng = np.random.default_rng(3)
    layers, acts = random_net(rng, [4, 16, 16, 1], ["relu", "relu"])
    low, high = -np.ones(4), np.ones(4)
    res = B.maximize(
        Network.from_layers(layers, acts), low, high, "output:0", gap=1e-9, max_nodes=9
    )
    assert not res.converged and res.gap > 1e-9 and res.num_nodes <= 9
    assert res.gap == pytest.approx(res.upper - res.lower)
    check_certificate(res, layers, acts, low, high, "output", 0, rng)
    full = B.maximize(Network.from_layers(layers, acts), low, high, "output:0", gap=1e-6)
    assert full.converged and full.num_nodes > 9
    assert res.lower - 1e-6 <= full.upper and full.lower <= res.upper + 1e-12


def test_results_are_frozen_and_labelled():
    layers = [(np.array([[1.0], [1.0]]), np.zeros(1))]
    res = B.maximize(Network.from_layers(layers, []), [0.0, 0.0], [1.0, 2.0], "output:0")
    assert res.tier == "certified" and res.neuron == "output:0"
    assert res.value == 3.0 and res.upper == pytest.approx(3.0, abs=1e-9)
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.value = 0.0
    grid = grid_evaluate(
        Network.from_layers(layers, []), [0.0, 0.0], [1.0, 2.0], "output:0", num_per_axis=5
    )
    assert grid.tier == "sampled" and "lower bound" in grid.note and "not exact" in grid.note
    assert grid.values.shape == (5, 5) and grid.num_points == 25
    assert grid.max == 3.0 and grid.argmax.tolist() == [1.0, 2.0] and grid.min == 0.0
    assert grid.values[2, 4] == pytest.approx(0.5 + 2.0)  # axes[0][2] + axes[1][4]


# --------------------------------------------------------------------------- errors

NET = [(np.ones((2, 3)), np.zeros(3)), (np.ones((3, 1)), np.zeros(1))]


@pytest.mark.parametrize(
    ("low", "high", "match"),
    [
        ([1.0, 0.0], [1.0, 1.0], r"low must be < high"),
        ([0.0, 0.0, 0.0], [1.0, 1.0, 1.0], r"low must be shape \(2,\)"),
        ([0.0, 0.0], [1.0, np.inf], r"high must be finite"),
    ],
)
@pytest.mark.parametrize("fn", [B.interval_bounds, B.linear_bounds])
def test_bad_boxes(fn, low, high, match):
    with pytest.raises(ToylabError, match=fn.__name__ + ": " + match):
        fn(Network.from_layers(NET, ["relu"]), low, high)


def test_bad_networks():
    with pytest.raises(ToylabError, match=r"activation must be one of .*Did you mean 'relu'"):
        Network.from_layers(NET, ["rleu"])
    with pytest.raises(ToylabError, match=r"one per hidden layer \(1\)"):
        Network.from_layers(NET, [])
    with pytest.raises(ToylabError, match=r"weights\[1\] must be 3 rows"):
        Network.from_layers([NET[0], (np.ones((2, 1)), np.zeros(1))], ["relu"])
    with pytest.raises(ToylabError, match=r"biases\[0\] must be of shape \(3,\)"):
        Network.from_layers([(np.ones((2, 3)), np.zeros(2)), NET[1]], ["relu"])
    with pytest.raises(ToylabError, match="interval_bounds: model must be"):
        B.interval_bounds(NET, [0.0, 0.0], [1.0, 1.0])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(neuron="hiden_0:0"), r"unknown layer 'hiden_0'.*Did you mean 'hidden_0'"),
        (dict(neuron="hidden_0:3"), r"layer 'hidden_0' has 3 units"),
        (dict(neuron="hidden_0"), r"must look like 'hidden_0:3'"),
        (dict(gap=0.0), r"gap must be a number > 0"),
        (dict(gap=-1e-3), r"gap must be a number > 0"),
        (dict(max_nodes=0), r"max_nodes must be an integer >= 1"),
        (dict(low=[2.0, 0.0]), r"low must be < high"),
    ],
)
@pytest.mark.parametrize("fn", [B.maximize, B.minimize])
def test_bad_optimize_arguments(fn, kwargs, match):
    call = dict(low=[0.0, 0.0], high=[1.0, 1.0], neuron="hidden_0:0", gap=1e-6)
    call.update(kwargs)
    low, high, neuron = (call.pop(k) for k in ("low", "high", "neuron"))
    with pytest.raises(ToylabError, match=match):
        fn(Network.from_layers(NET, ["relu"]), low, high, neuron, **call)


def test_bad_grid_arguments():
    with pytest.raises(ToylabError, match="grid_evaluate: num_per_axis must be >= 2"):
        grid_evaluate(
            Network.from_layers(NET, ["relu"]), [0.0, 0.0], [1.0, 1.0], "output:0", num_per_axis=1
        )
    with pytest.raises(ToylabError, match="num_per_axis must be small enough"):
        grid_evaluate(
            Network.from_layers(NET, ["relu"]),
            [0.0, 0.0],
            [1.0, 1.0],
            "output:0",
            num_per_axis=10**4,
        )
    with pytest.raises(ToylabError, match="layer 'output' has 1 units"):
        grid_evaluate(Network.from_layers(NET, ["relu"]), [0.0, 0.0], [1.0, 1.0], "output:1")
