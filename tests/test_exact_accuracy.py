"""``toylab.exact.accuracy``: the accuracy alone, integrated over the decision regions'
boundaries (Green's theorem), against closed forms and against ``analyze``."""

import math

import numpy as np
import pytest
from scipy.special import ndtr

from toylab.distributions import GaussianMixture, NoisyCurve, Rings, two_blobs
from toylab.exact import accuracy, analyze, class_edge_masses
from toylab.network import Network


def _threshold_net(t: float) -> Network:
    """Class 0 iff ``x1 > t``: hidden ``relu(x1 - t)``, ``relu(t - x1)`` are the logits."""
    w0 = np.array([[1.0, -1.0], [0.0, 0.0]])
    b0 = np.array([-t, t])
    w1 = np.eye(2)
    return Network.from_weights([w0, w1], [b0, np.zeros(2)])


@pytest.mark.parametrize("t", [0.0, 0.7, -1.3])
def test_threshold_on_two_blobs_is_the_normal_cdf(t):
    # N(2 e1, I) class 0, N(-2 e1, I) class 1; predict 0 iff x1 > t:
    # accuracy = (Phi(2 - t) + Phi(2 + t)) / 2 (ties on x1 = t have probability 0)
    dist = two_blobs(distance=4.0)
    res = accuracy(_threshold_net(t), dist)
    want = 0.5 * (ndtr(2.0 + t) + ndtr(2.0 - t))
    assert res.tier == "exact"
    # the truncation of the 12-sigma integration box is ~1e-32, rounding ~1e-15: 1e-14
    # covers both and the reference's own rounding
    assert abs(res.accuracy - want) <= 1e-14
    assert np.allclose(res.class_accuracy, [ndtr(2.0 - t), ndtr(2.0 + t)], rtol=0, atol=1e-14)


def test_edge_masses_of_a_rectangle_are_products_of_normal_cdfs():
    # the counter-clockwise boundary of [a, b] x [c, d] under N(mu, diag(s^2)):
    # mass = (Phi((b-mu0)/s0) - Phi((a-mu0)/s0)) (Phi((d-mu1)/s1) - Phi((c-mu1)/s1))
    mu, s = np.array([0.3, -0.4]), np.array([0.8, 1.7])
    dist = GaussianMixture(means=[mu], covs=[np.diag(s**2)], weights=[1.0], classes=[0])
    box = np.array([[-1.0, -2.0], [2.0, -2.0], [2.0, 0.5], [-1.0, 0.5]])
    m, err, tier, _ = class_edge_masses(dist, box, np.roll(box, -1, axis=0), np.zeros(4, int))
    want = (ndtr((2.0 - mu[0]) / s[0]) - ndtr((-1.0 - mu[0]) / s[0])) * (
        ndtr((0.5 - mu[1]) / s[1]) - ndtr((-2.0 - mu[1]) / s[1])
    )
    assert tier == "exact" and abs(m[0] - want) <= max(err[0], 1e-15)  # rounding of Phi: 1e-15


def _random_net(rng, widths, scale=1.0):
    ws = [rng.normal(size=(a, b)) * scale for a, b in zip(widths[:-1], widths[1:], strict=True)]
    bs = [rng.normal(size=b) * scale for b in widths[1:]]
    return Network.from_weights(ws, bs)


def _mixture3():
    return GaussianMixture(
        means=[[0.0, 2.0], [-1.7, -1.0], [1.7, -1.0], [0.5, 0.5]],
        covs=[np.eye(2), [[1.0, 0.6], [0.6, 0.8]], np.eye(2) * 0.5, np.eye(2) * 2.0],
        weights=[0.3, 0.3, 0.2, 0.2],
        classes=[0, 1, 2, 0],
    )


@pytest.mark.parametrize("seed", range(6))
def test_agrees_with_analyze_on_mixtures(seed):
    rng = np.random.default_rng(seed)
    dist = _mixture3()
    net = _random_net(rng, [2, 6, 5, 3])
    a, b = analyze(net, dist), accuracy(net, dist)
    # two exact computations (region moments vs boundary edges): within their rounding
    assert b.tier == a.tier
    assert abs(a.accuracy - b.accuracy) <= a.error + b.error + 1e-15
    assert np.allclose(a.class_accuracy, b.class_accuracy, rtol=0, atol=a.error + b.error + 1e-14)


def test_agrees_with_analyze_on_extreme_scales_and_degenerate_weights():
    rng = np.random.default_rng(7)
    dist = _mixture3()
    big = _random_net(rng, [2, 5, 3], scale=1e6)
    dup = _random_net(rng, [2, 4, 3])
    w0, b0 = dup.dense_layers(np.float64)[0]
    w0 = np.concatenate([w0, w0[:, :1] * 3.0], axis=1)  # a positive multiple of unit 0
    b0 = np.concatenate([b0, b0[:1] * 3.0])
    w1 = np.concatenate([dup.dense_layers(np.float64)[1][0], np.zeros((1, 3))], axis=0)
    dup = Network.from_weights([w0, w1], [b0, dup.dense_layers(np.float64)[1][1]])
    flat = Network.from_weights([np.zeros((2, 3)), np.zeros((3, 3))], [np.zeros(3), np.zeros(3)])
    for net in (big, dup, flat):
        a, b = analyze(net, dist), accuracy(net, dist)
        assert b.tier == a.tier
        assert abs(a.accuracy - b.accuracy) <= a.error + b.error + 1e-15


def test_noisy_curve_atoms_agree_with_analyze_and_stay_estimated():
    dist = NoisyCurve("two_moons")
    rng = np.random.default_rng(3)
    net = _random_net(rng, [2, 8, 2])
    a, b = analyze(net, dist), accuracy(net, dist)
    assert a.tier == b.tier == "estimated"
    # both integrate the same Gaussian atoms in closed form: they differ by rounding
    assert abs(a.accuracy - b.accuracy) <= 1e-12
    assert "decision-boundary edges" in b.method


def test_other_densities_take_analyze_numbers():
    dist = Rings(radii=(0.5, 1.5), widths=(0.2, 0.25), weights=(0.4, 0.6))
    net = _random_net(np.random.default_rng(1), [2, 4, 2])
    a, b = analyze(net, dist), accuracy(net, dist)
    assert (b.accuracy, b.tier, b.error) == (a.accuracy, a.tier, a.error)
    assert math.isfinite(b.accuracy)


def test_polygon_masses_are_the_region_moments_mass():
    from toylab.exact import polygon_masses, region_moments

    rng = np.random.default_rng(5)
    polys = []
    for _ in range(12):  # convex polygons: hulls of random points, some clockwise
        from scipy.spatial import ConvexHull

        pts = rng.normal(size=(7, 2)) * rng.uniform(0.1, 3.0)
        hull = pts[ConvexHull(pts).vertices]
        polys.append(hull if rng.random() < 0.5 else hull[::-1])
    for dist in (_mixture3(), NoisyCurve("two_moons")):
        m, err = polygon_masses(dist, polys)
        rm = region_moments(dist, polys)
        # the same closed-form edge terms, assembled per polygon: equal to rounding
        assert np.allclose(m, rm.m0.sum(0), rtol=0, atol=1e-14)
        assert np.all(err >= 0)
