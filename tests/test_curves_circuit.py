"""Tests for toylab.curves.circuit: the handwritten curve detector, its certified
tuning, the comparison with trained channels and the transplant into a trained net.

References are independent of the module: orientation claims are checked with the
certified branch and bound of toylab.curves.tuning (a different code path from the
construction) and against a dense sampled sweep; the transplanted network against the
trained one with its own forward pass, and the accuracies against a naive NumPy
re-implementation of the conv net (scipy.signal.correlate2d, reshape-mean pooling).
"""

import math

import jax
import numpy as np
import pytest
from scipy.signal import correlate2d

from toylab import ToylabError
from toylab.curves import certified_max
from toylab.curves.circuit import (
    certified_correlation,
    compare_circuit,
    curve_circuit,
    transplant,
    transplanted_network,
)
from toylab.distributions import CurveImages
from toylab.layers.conv import AvgPool, Conv
from toylab.network import Network

# 10x10 images: the circuit's receptive field is the whole image and centred on it,
# and its certified bounds are cheap (a few seconds per orientation)
FAM10 = CurveImages(size=10)


def _angle(a, b):
    d = (a - b) % (2 * math.pi)
    return min(d, 2 * math.pi - d)


@pytest.mark.parametrize("theta0", [0.3, 4.4])
def test_certified_preferred_orientation_is_the_constructed_one(theta0):
    circ = curve_circuit(FAM10, theta0, 0.15)
    assert circ.centre == (4.5, 4.5)
    v = circ.verify(FAM10, gap=0.05, max_boxes=200)
    assert v.passed and v.tier == "certified", v.numbers
    num = v.numbers
    # certified: the maximum over theta lies in [max_lower, max_upper], attained at argmax
    assert num["max_lower"] <= num["max_upper"] <= num["max_lower"] + 0.05 + 1e-12
    # tolerance: 12 deg, the orientation resolution stated in the module docstring
    # (line detectors every 15 deg, receptive-field centre on a pixel grid)
    assert _angle(num["argmax_theta"], theta0) <= math.radians(12)
    # nothing more than 30 deg away reaches the peak; silent at 45 deg; negative opposite
    assert num["far_upper"] < num["max_lower"]
    assert num["at_45_upper"] <= 1e-8 and num["opposite_pre_upper"] < 0
    # an independent dense sweep never exceeds the certified upper bound (soundness), and
    # its own argmax agrees with the certified one to the sweep's spacing plus the gap's
    th = np.linspace(0, 2 * math.pi, 721)
    r = _sweep(circ, FAM10, th, 0.15, neuron=circ.neuron)
    assert r.max() <= num["max_upper"] + 1e-12
    assert _angle(th[r.argmax()], theta0) <= math.radians(12)


def test_curvature_tuning_straight_lines_are_silent_and_the_peak_is_curved():
    circ = curve_circuit(FAM10, 2.0, 0.15)
    fix = {"theta": (2.0, 2.0), "cx": (4.5, 4.5), "cy": (4.5, 4.5)}
    line = certified_max(circ.model, FAM10, circ.neuron, box={"kappa": (0.0, 0.0), **fix})
    assert line.upper <= 1e-8  # a straight line excites the arc and its mirror equally
    m = certified_max(circ.model, FAM10, circ.neuron, box={"kappa": (0.0, 0.25), **fix},
                      gap=0.02, max_boxes=200)  # fmt: skip
    # the certified curvature peak is not below the construction's (module docstring:
    # the 10x10 field resolves curvature only to ~0.1/px, the peak sits high)
    assert m.argmax[1] >= 0.15 - 0.05
    ka = np.linspace(0, 0.25, 101)
    p = np.stack([np.full_like(ka, 2.0), ka, np.full_like(ka, 4.5), np.full_like(ka, 4.5)], -1)
    assert circ.model.values(FAM10.render(p), circ.neuron).max() <= m.upper + 1e-12


def _sweep(circ, fam, theta, kappa, neuron="conv_1.pre:0"):
    cx, cy = circ.centre
    p = np.stack(
        [theta, np.full_like(theta, kappa), np.full_like(theta, cx), np.full_like(theta, cy)], -1
    )
    return circ.model.values(fam.render(p), neuron)


def test_opposite_orientation_is_negative_and_45_degrees_is_silent():
    circ = curve_circuit(FAM10, 1.0, 0.15)
    th0 = circ.orientation
    opp = _sweep(circ, FAM10, np.array([th0 + math.pi]), 0.15)[0]
    peak = _sweep(circ, FAM10, np.array([th0]), 0.15)[0]
    assert peak > 0 > opp
    for off in (math.pi / 4, -math.pi / 4):
        assert _sweep(circ, FAM10, np.array([th0 + off]), 0.15)[0] <= 0.0  # relu -> 0


def _naive_forward(net, x):
    """Independent forward pass of conv -> avg pool -> conv -> ... -> dense (loops)."""
    h = x.reshape(-1, *net.layers[0].in_shape)
    for layer, act in zip(net.layers, net.activations, strict=True):
        if isinstance(layer, Conv):
            kh, kw, ci, co = layer.kernel.shape
            (t, b), (l_, r) = layer.pads
            hp = np.pad(h, ((0, 0), (t, b), (l_, r), (0, 0)))
            ho, wo, _ = layer.out_shape
            out = np.zeros((h.shape[0], ho, wo, co))
            for n in range(h.shape[0]):
                for d in range(co):
                    acc = np.zeros((ho, wo))
                    for c in range(ci):
                        acc += correlate2d(hp[n, :, :, c], layer.kernel[:, :, c, d], mode="valid")
                    out[n, :, :, d] = acc + layer.bias[d]
            h = out
        elif isinstance(layer, AvgPool):
            n, hh, ww, c = h.shape
            w = layer.window[0]
            h = (
                h[:, : hh // w * w, : ww // w * w]
                .reshape(n, hh // w, w, ww // w, w, c)
                .mean((2, 4))
            )
        else:
            h = h.reshape(h.shape[0], -1) @ layer.kernel + layer.bias
        if act == "relu":
            h = np.maximum(h, 0.0)
    return h.reshape(h.shape[0], -1)


def _trained_like(seed=0, size=16, c0=3, c1=4, classes=8):
    """A random net of the trained geometry (5x5 same conv, 2x2 avg pool, 3x3 same conv,
    2x2 avg pool, dense head)."""
    rng = np.random.default_rng(seed)
    l0 = Conv(rng.normal(size=(5, 5, 1, c0)) * 0.3, rng.normal(size=c0) * 0.1, (size, size, 1))
    p0 = AvgPool((size, size, c0), 2)
    h1 = size // 2
    l1 = Conv(rng.normal(size=(3, 3, c0, c1)) * 0.3, rng.normal(size=c1) * 0.1, (h1, h1, c0))
    p1 = AvgPool((h1, h1, c1), 2)
    h2 = h1 // 2
    d = rng.normal(size=(h2 * h2 * c1, classes)) * 0.3
    from toylab.layers import Dense

    return Network(
        (l0, p0, l1, p1, Dense(d, rng.normal(size=classes) * 0.1)),
        ("relu", "identity", "relu", "identity", "identity"),
    )


def test_transplant_changes_only_the_replaced_weights():
    fam = CurveImages(size=16)
    net = _trained_like()
    circ = curve_circuit(fam, 0.5, 0.15)
    k = circ.line_kernel.shape[-1]
    new = transplanted_network(net, 2, circ, scale=1.5)
    old0, new0 = net.layers[0], new.layers[0]
    np.testing.assert_array_equal(new0.kernel[..., :3], old0.kernel)
    np.testing.assert_array_equal(new0.kernel[..., 3:], circ.line_kernel)
    np.testing.assert_array_equal(new0.bias[:3], old0.bias)
    old1, new1 = net.layers[2], new.layers[2]
    keep = [0, 1, 3]
    np.testing.assert_array_equal(new1.kernel[:, :, :3, keep], old1.kernel[..., keep])
    assert not new1.kernel[:, :, 3:, keep].any()
    assert not new1.kernel[:, :, :3, 2].any()
    np.testing.assert_array_equal(new1.kernel[:, :, 3:, 2], 1.5 * circ.curve_kernel)
    assert new1.bias[2] == 1.5 * circ.curve_bias
    np.testing.assert_array_equal(new1.bias[keep], old1.bias[keep])
    assert new.layers[3] == net.layers[3]  # the second pool (no parameters)
    np.testing.assert_array_equal(new.layers[4].kernel, net.layers[4].kernel)
    np.testing.assert_array_equal(new.layers[4].bias, net.layers[4].bias)
    assert new.activations == net.activations
    assert new.layers[1].in_shape == (16, 16, 3 + k)
    # the other channels compute the same values (sums with exact zeros added: only
    # the summation order can differ, hence 1e-12 relative)
    x = fam.render(np.array([[0.5, 0.1, 7.5, 7.5], [2.0, 0.0, 7.0, 8.0]]))
    a = net.forward(x)["conv_1"].reshape(2, 8, 8, 4)
    b = new.forward(x)["conv_1"].reshape(2, 8, 8, 4)
    np.testing.assert_allclose(b[..., keep], a[..., keep], rtol=1e-12, atol=1e-12)
    # and the replaced channel is the circuit's detector: at the centre unit its
    # receptive field is the circuit's (module docstring), scaled by 1.5
    ref = circ.model.values(x, circ.neuron)
    np.testing.assert_allclose(b[:, 4, 4, 2], 1.5 * ref, rtol=1e-10, atol=1e-12)


def test_transplant_accuracies_against_an_independent_recount():
    fam = CurveImages(size=16)
    net = _trained_like(seed=1)
    circ = curve_circuit(fam, 0.5, 0.15)
    res = transplant(net, 1, circ, fam, num_samples=300, seed=3)
    batch = fam.sample(jax.random.key(3), 300)
    x, y = np.asarray(batch.x, np.float64), np.asarray(batch.y)
    counts = []
    for m in (net, res.model, res.ablated):
        counts.append(int((np.argmax(_naive_forward(m, x), -1) == y).sum()))
    assert res.accuracy_before == counts[0] / 300
    assert res.accuracy_after == counts[1] / 300
    assert res.accuracy_ablated == counts[2] / 300
    assert res.effect == pytest.approx((counts[1] - counts[0]) / 300, abs=1e-15)
    lo, hi = res.effect_interval
    assert lo <= res.effect <= hi and res.tier == "sampled"
    # ablation: the channel is zero everywhere
    z = res.ablated.forward(x[:4])["conv_1"].reshape(4, 8, 8, 4)[..., 1]
    assert not z.any()


def test_compare_circuit_finds_the_circuit_inside_a_net():
    fam = CurveImages(size=16)
    circ = curve_circuit(fam, 0.5, 0.15)
    net = transplanted_network(_trained_like(seed=2), 3, circ, scale=2.0)
    cmp = compare_circuit(circ, net, fam, num_samples=300)
    # channel 3 is the circuit times 2 at the same receptive field: correlation 1
    assert cmp.best == 3
    assert cmp.best_correlation == pytest.approx(1.0, abs=1e-9)
    assert cmp.tier == "sampled"


def test_bad_arguments():
    with pytest.raises(ToylabError, match="curvature"):
        curve_circuit(FAM10, 0.3, -0.1)
    with pytest.raises(ToylabError, match="family"):
        curve_circuit(CurveImages(size=8), 0.3, 0.1)
    circ = curve_circuit(FAM10, 0.3, 0.15)
    with pytest.raises(ToylabError, match="channel"):
        transplanted_network(_trained_like(size=10), 9, circ)


def test_certified_correlation_encloses_a_dense_sweep():
    fam = CurveImages(size=16)
    circ = curve_circuit(fam, 0.5, 0.15)
    other = curve_circuit(fam, 1.2, 0.15)
    net = transplanted_network(_trained_like(seed=4), 1, other, scale=1.0)
    cc = certified_correlation(circ, net, fam, 1, resolution=24, tol=0.03, max_boxes=600)
    assert cc.tier == "certified" and -1 <= cc.lower <= cc.upper <= 1
    # independent reference: the correlation over a dense uniform periodic theta grid
    # (4000 points; for these piecewise-smooth periodic curves the rectangle rule's error
    # is O(h^2) ~ 3e-6 times the curves' curvature scale, hence the 1e-3 slack)
    th = np.linspace(0, 2 * math.pi, 4_001)[:-1]
    f = _sweep(circ, fam, th, 0.15, neuron=circ.neuron)
    g = other.model.values(
        fam.render(np.stack([th, np.full_like(th, 0.15), np.full_like(th, circ.centre[0]),
                             np.full_like(th, circ.centre[1])], -1)), other.neuron)  # fmt: skip
    rho = float(np.corrcoef(f, g)[0, 1])
    assert cc.lower - 1e-3 <= rho <= cc.upper + 1e-3
    assert cc.upper - cc.lower < 0.5  # informative at this tolerance
