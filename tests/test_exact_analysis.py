"""Tests for toylab.exact.analyze: exact statistics of whole networks, with honest errors.

References, each independent of the code under test:

* closed forms for one hidden layer under a Gaussian mixture: a unit is
  ``relu(z)`` with ``z = w.x + b ~ N(m, s^2)`` per component, so ``P(z > 0) = Phi(m/s)``,
  ``E[relu z] = m Phi(m/s) + s phi(m/s)`` and ``E[relu(z)^2] = (m^2 + s^2) Phi(m/s) +
  m s phi(m/s)`` (scipy's ``ndtr``; no polygon involved);
* a brute-force quadrature: tensor Gauss-Legendre on every fan triangle of every
  region (the regions only tell where the integrand is smooth), with the integrand
  from a forward pass written here and scipy's multivariate normal density;
* enumeration of finite domains with a NumPy forward pass written here.

The honesty tests check that the reported ``error`` covers the true error (against
those references) for extreme scales and locations, and that the truncation bound is
never zero or too small (shrinking the integration box makes the left-out part
computable exactly).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from _reference import forward
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import ndtr

from toylab import NotApplicable, ToylabError
from toylab.distributions import GaussianMixture, ModularArithmetic, make, two_blobs, xor_blobs
from toylab.exact import (
    analyze,
    extrema,
    finite_table,
    integration_domain,
    partition,
    region_moments,
    truncation_bounds,
)
from toylab.network import Network


def random_layers(widths, seed, scale=1.0):
    rng = np.random.default_rng(seed)
    return [
        (rng.normal(0, scale / math.sqrt(a), (a, b)), rng.normal(0, 0.5 * scale, b))
        for a, b in zip(widths[:-1], widths[1:], strict=True)
    ]


ANISO = GaussianMixture(
    means=((-1.0, 0.5), (1.5, -0.5), (0.0, 2.0)),
    covs=(((0.6, 0.25), (0.25, 0.4)), ((0.3, -0.1), (-0.1, 0.8)), ((0.5, 0.0), (0.0, 0.2))),
    weights=(0.3, 0.5, 0.2),
    classes=(0, 1, 0),
)


def closed_form_relu(layers, dist):
    """``(P(z > 0), E[relu z], E[relu(z)^2])`` per hidden unit of a one-layer relu net."""
    w, b = layers[0]
    a = dist.arrays()
    fire = mean = second = 0.0
    for mu, cov, pi in zip(a.means, a.covs, a.weights, strict=True):
        m = mu @ w + b
        s = np.sqrt(np.einsum("ij,ik,kj->j", w, cov, w))
        r = m / s
        phi = np.exp(-0.5 * r * r) / math.sqrt(2 * math.pi)
        fire = fire + pi * ndtr(r)
        mean = mean + pi * (m * ndtr(r) + s * phi)
        second = second + pi * ((m * m + s * s) * ndtr(r) + m * s * phi)
    return fire, mean, second


@pytest.mark.parametrize("dist", [two_blobs(), xor_blobs(), ANISO], ids=["blobs", "xor", "aniso"])
def test_one_layer_moments_match_closed_forms_to_1e_9(dist):
    layers = random_layers((2, 7, 2), seed=3)
    res = analyze(Network.from_layers(layers, ["relu"]), dist)
    fire, mean, second = closed_form_relu(layers, dist)
    mom = res.moments["hidden_0"]
    assert res.tier == "exact" and res.error < 1e-9
    np.testing.assert_allclose(mom.firing_probability, fire, rtol=0, atol=1e-9)
    np.testing.assert_allclose(mom.mean, mean, rtol=0, atol=1e-9)
    np.testing.assert_allclose(np.diag(mom.second_moment), second, rtol=0, atol=1e-9)
    # the pre-activation is Gaussian per component: its mean is exactly affine in the means
    a = dist.arrays()
    np.testing.assert_allclose(
        res.moments["hidden_0.pre"].mean, a.weights @ (a.means @ layers[0][0] + layers[0][1]),
        rtol=0, atol=1e-9,
    )  # fmt: skip


def _gauss_legendre_triangle(n):
    x, w = np.polynomial.legendre.leggauss(n)
    x, w = 0.5 * (x + 1), 0.5 * w
    u, v = np.meshgrid(x, x, indexing="ij")
    wu, wv = np.meshgrid(w, w, indexing="ij")
    return np.stack([u.ravel(), (u * v).ravel()], 1), (wu * wv * u).ravel()


def _fine_triangles(polygons, h, density):
    """Fan triangles of every polygon, split 4-way until every edge is shorter than ``h``
    wherever the density is not negligible (a triangle holding under 1e-14 of mass by its
    largest vertex or centre density needs no refinement for a 1e-9 test)."""
    tris = [np.stack([p[0], p[j], p[j + 1]]) for p in polygons for j in range(1, len(p) - 1)]
    tri = np.stack(tris)
    while True:
        edges = np.linalg.norm(tri - np.roll(tri, 1, axis=1), axis=2).max(axis=1)
        pts = np.concatenate([tri, tri.mean(axis=1, keepdims=True)], axis=1).reshape(-1, 2)
        dens = density(pts).reshape(len(tri), 4).max(axis=1)
        e1, e2 = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
        area = 0.5 * np.abs(e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0])
        big = (edges > h) & (dens * area * 10 > 1e-14)
        if not big.any():
            return tri
        t = tri[big]
        a, b, c = t[:, 0], t[:, 1], t[:, 2]
        ab, bc, ca = (a + b) / 2, (b + c) / 2, (c + a) / 2
        kids = np.concatenate([np.stack(k, 1) for k in ((a, ab, ca), (ab, b, bc), (ca, bc, c),
                                                         (bc, ca, ab))])  # fmt: skip
        tri = np.concatenate([tri[~big], kids])


def brute_force(polygons, density, fn, h, order=8):
    """``sum over regions of the integral of fn(x) density(x)``: Gauss rules on triangles of
    edge at most ``h`` (the regions only say where ``fn`` is smooth)."""
    nodes, weights = _gauss_legendre_triangle(order)
    tri = _fine_triangles(polygons, h, density)
    total = 0.0
    for s in range(0, len(tri), 2000):
        t = tri[s : s + 2000]
        A, B, C = t[:, 0], t[:, 1], t[:, 2]
        area = 0.5 * np.abs((B - A)[:, 0] * (C - A)[:, 1] - (B - A)[:, 1] * (C - A)[:, 0])
        pts = (
            A[:, None]
            + nodes[None, :, :1] * (B - A)[:, None]
            + nodes[None, :, 1:] * (C - B)[:, None]
        )
        pts = pts.reshape(-1, 2)
        wq = (weights[None, :] * area[:, None] * 2.0).ravel() * density(pts)
        total = total + np.einsum("n,n...->...", wq, fn(pts))
    return total


def mixture_density(dist):
    """The mixture's density written out (means, covariances and weights only)."""
    a = dist.arrays()
    invs = np.linalg.inv(a.covs)
    norms = a.weights / (2 * math.pi * np.sqrt(np.linalg.det(a.covs)))

    def density(x):
        out = 0.0
        for mu, inv, c in zip(a.means, invs, norms, strict=True):
            d = x - mu
            out = out + c * np.exp(-0.5 * np.einsum("ni,ij,nj->n", d, inv, d))
        return out

    return density


def test_deep_moments_match_a_brute_force_quadrature_to_1e_9():
    layers = random_layers((2, 5, 4, 3), seed=11)
    acts = ["relu", "abs"]
    res = analyze(Network.from_layers(layers, acts), ANISO)
    keys = ("hidden_0", "hidden_1", "output")

    def first_and_second(x):
        vals = forward(layers, acts, x)
        return np.concatenate(
            [
                c
                for k in keys
                for c in (vals[k], np.einsum("ni,nj->nij", vals[k], vals[k]).reshape(len(x), -1))
            ],
            axis=1,
        )

    # triangles of edge <= 0.4 (under the smallest standard deviation, 0.44) with a degree-26
    # rule: the integrand is smooth on each (a region's affine map times the density), so the
    # rule's error is far below 1e-12 (checked: halving h changes the result by < 1e-13)
    ref = brute_force(
        res.support.polygons, mixture_density(ANISO), first_and_second, h=0.4, order=14
    )
    i = 0
    for k in keys:
        n = res.moments[k].mean.shape[0]
        np.testing.assert_allclose(res.moments[k].mean, ref[i : i + n], rtol=0, atol=1e-9)
        np.testing.assert_allclose(
            res.moments[k].second_moment.ravel(), ref[i + n : i + n + n * n], rtol=0, atol=1e-9
        )
        i += n + n * n


def test_accuracy_and_class_accuracy_against_closed_forms():
    # logits (x1, -x1): the boundary x1 = 0 is Bayes-optimal for blobs on the x1 axis
    dist = two_blobs(distance=3.0)
    net = Network.from_weights([np.eye(2), np.array([[1.0, -1.0], [0.0, 0.0]])], None, "identity")
    res = analyze(net, dist)
    assert res.accuracy == pytest.approx(float(ndtr(1.5)), abs=1e-12)
    np.testing.assert_allclose(res.class_accuracy, [ndtr(1.5)] * 2, rtol=0, atol=1e-12)
    assert res.gap == pytest.approx(0.0, abs=1e-12)


def test_extrema_match_a_dense_grid_and_are_attained():
    dist = xor_blobs()
    layers = random_layers((2, 8, 8, 2), seed=5)
    res = analyze(Network.from_layers(layers, ["relu", "relu"]), dist)
    ext = res.extrema("hidden_1")
    xx, yy = dist.domain.grid(401)
    grid = forward(layers, ["relu"] * 2, np.stack([xx.ravel(), yy.ravel()], -1))
    at = forward(layers, ["relu"] * 2, np.asarray(ext.argmax))["hidden_1"]
    scale = np.abs(grid["hidden_1"]).max() + 1
    assert np.all(grid["hidden_1"].max(0) <= ext.max + 1e-9 * scale)
    np.testing.assert_allclose(np.diagonal(at), ext.max, atol=1e-9 * scale)


def test_group_means_sum_to_the_mean_and_match_per_component_closed_forms():
    layers = random_layers((2, 5, 2), seed=8)
    res = analyze(Network.from_layers(layers, ["relu"]), ANISO)
    gm = res.group_means("hidden_0")
    assert res.groups == "component" and gm.shape == (3, 5)
    np.testing.assert_allclose(gm.sum(0), res.moments["hidden_0"].mean, rtol=0, atol=1e-12)
    a = ANISO.arrays()
    for k in range(3):
        one = GaussianMixture((tuple(a.means[k]),), (tuple(map(tuple, a.covs[k])),))
        _, mean, _ = closed_form_relu(layers, one)
        np.testing.assert_allclose(gm[k], a.weights[k] * mean, rtol=0, atol=1e-9)


# --------------------------------------------------------------------------- honesty


@settings(max_examples=25, deadline=None)
@given(
    center=st.sampled_from([0.0, 1e2, 1e4, 1e6, -3e5]),
    scale=st.sampled_from([1e-4, 1e-2, 1.0, 1e2]),
    ratio=st.sampled_from([1.0, 10.0, 1e3]),
    seed=st.integers(0, 10_000),
)
def test_reported_error_covers_the_true_error_at_extreme_scales(center, scale, ratio, seed):
    """A narrow or wide Gaussian pair far from or at the origin; the lines of the net pass
    through the data, so every unit is partly on. The reported error must cover the true
    error against the closed forms, whatever the scale."""
    rng = np.random.default_rng(seed)
    s1, s2 = scale, scale * ratio
    means = ((center, center), (center + 3 * s1, center - s2))
    dist = GaussianMixture(means, (((s1**2, 0), (0, s1**2)), ((s2**2, 0), (0, s2**2))))
    w = rng.normal(size=(2, 6)) / scale
    through = np.array([center, center]) + rng.normal(size=(6, 2)) * scale
    b = -np.einsum("ij,ji->i", through, w)
    layers = [(w, b), (rng.normal(size=(6, 2)), np.zeros(2))]
    res = analyze(Network.from_layers(layers, ["relu"]), dist)
    fire, mean, second = closed_form_relu(layers, dist)
    mom = res.moments["hidden_0"]
    slack = 1e-13  # the reference's own float64 rounding (ndtr and products of O(1) terms)
    assert np.abs(mom.firing_probability - fire).max() <= res.error + slack
    mscale = np.abs(mean).max() + 1.0
    assert np.abs(mom.mean - mean).max() <= res.error + slack * mscale
    assert np.abs(np.diag(mom.second_moment) - second).max() <= res.error + slack * mscale**2
    assert res.tier in ("exact", "certified")


def test_far_from_the_origin_the_firing_probabilities_stay_exact():
    """The independent check that found errors up to 2e-4 (mean/sd ~ 1e5-1e6)."""
    for center in (1e5, 1e6):
        dist = GaussianMixture(((center, center), (center + 3, center)), (((1, 0), (0, 1)),) * 2)
        rng = np.random.default_rng(1)
        w = rng.normal(size=(2, 6))
        b = -np.einsum("ij,ji->i", center + rng.normal(size=(6, 2)), w)
        layers = [(w, b), (rng.normal(size=(6, 2)), np.zeros(2))]
        res = analyze(Network.from_layers(layers, ["relu"]), dist)
        fire, _, _ = closed_form_relu(layers, dist)
        assert res.tier == "exact"
        np.testing.assert_allclose(res.moments["hidden_0"].firing_probability, fire, atol=1e-9)


@pytest.mark.parametrize("margin", [1.5, 2.5, 4.0])
def test_truncation_bound_covers_what_a_small_box_leaves_out(margin):
    """Shrink the integration box: the left-out part is then the difference of two exact
    integrals, and the certified bound must cover it (and so cannot be zero)."""
    dist = ANISO
    layers = random_layers((2, 6, 3), seed=4)
    net = Network.from_layers(layers, ["relu"])
    full = analyze(net, dist)
    small = integration_domain(dist, margin=margin)
    part = partition(net, small.polygon)
    rm = region_moments(dist, part.polygons)
    m0, m1, m2, _ = rm.total()
    bounds = truncation_bounds(net, dist, small)
    for key in ("hidden_0", "output"):
        maps = part.maps[key]
        inside = np.einsum("rnd,rd->n", maps[:, :, :2], m1) + maps[:, :, 2].T @ m0
        left_out = np.abs(full.moments[key].mean - inside)
        first, _ = bounds[key]
        assert np.all(first >= left_out), (key, first, left_out)
        assert np.all(first > 0)
    assert small.outside_mass >= 1.0 - m0.sum() - 1e-15


def test_truncation_bound_is_not_the_old_underestimate():
    """Review reproduction A1 (W0 = I, b0 = (5, -5), W1 = (10, -10)^T: |a(c)| = 50, where the
    old proxy said 5), on a box so small that a fifth of the mass is left out: the bound
    must still cover the left-out part, computed exactly as the difference of two integrals."""
    from toylab.distributions.base import Box
    from toylab.exact import IntegrationDomain

    net = Network.from_weights([np.eye(2), np.array([[10.0], [-10.0]])], [[5.0, -5.0], [0.0]])
    dist = two_blobs(distance=1.0, scale=1.0)
    low, high = np.array([-1.6, -1.6]), np.array([1.6, 1.6])
    a = dist.arrays()
    sd = np.sqrt(np.diagonal(a.covs, axis1=1, axis2=2))
    comp = np.sum(ndtr(-(a.means - low) / sd) + ndtr(-(high - a.means) / sd), axis=1)
    small = IntegrationDomain(low, high, Box(tuple(low), tuple(high)).polygon(),
                              float(a.weights @ comp), "certified", comp)  # fmt: skip
    part = partition(net, small.polygon)
    m0, m1, _, _ = region_moments(dist, part.polygons).total()
    maps = part.maps["output"]
    inside = np.einsum("rnd,rd->n", maps[:, :, :2], m1) + maps[:, :, 2].T @ m0
    left_out = abs(float(analyze(net, dist).moments["output"].mean[0] - inside[0]))
    (first, _) = truncation_bounds(net, dist, small)["output"]
    assert 1.0 - m0.sum() > 0.1 and left_out > 1.0  # a real test: much is left out
    assert first[0] >= left_out


# --------------------------------------------------------------------------- finite and n/a


def test_finite_domains_give_the_same_result_type_exactly():
    dist = ModularArithmetic(7, "add")
    layers = random_layers((14, 9, 7), seed=2)
    net = Network.from_layers(layers, ["relu"])
    res = analyze(net, dist)
    assert res.kind == "finite" and res.tier == "exact" and res.error < 1e-12
    x = dist.domain.inputs
    ref = forward(layers, ["relu"], x)
    np.testing.assert_allclose(res.moments["hidden_0"].mean, ref["hidden_0"].mean(0), atol=1e-12)
    np.testing.assert_allclose(
        res.moments["hidden_0"].firing_probability, (ref["hidden_0"] > 0).mean(0), atol=1e-12
    )
    top = ref["output"].argmax(1)
    assert res.accuracy == pytest.approx(np.mean(top == dist.domain.labels), abs=1e-12)
    ext = res.extrema("hidden_0")
    np.testing.assert_allclose(ext.max, ref["hidden_0"].max(0), atol=1e-12)
    at = forward(layers, ["relu"], ext.argmax)["hidden_0"]
    np.testing.assert_allclose(np.diagonal(at), ext.max, atol=1e-12)
    per_class = np.array([ref["hidden_0"][dist.domain.labels == c].sum(0) for c in range(7)]) / 49
    np.testing.assert_allclose(res.group_means("hidden_0"), per_class, atol=1e-12)
    table = finite_table(net, dist, chunk_size=5)  # chunking must not change anything
    np.testing.assert_allclose(table.values("hidden_0:4"), ref["hidden_0"][:, 4], atol=1e-12)
    with pytest.raises(NotApplicable, match="finite domain has no planar geometry"):
        res.geometry  # noqa: B018


def test_not_applicable_says_what_to_use_instead():
    tanh = Network.from_layers(random_layers((2, 4, 2), 0), ["tanh"])
    with pytest.raises(NotApplicable, match="linear_bounds"):
        analyze(tanh, two_blobs())
    three = Network.from_layers(random_layers((3, 4, 2), 0), ["relu"])
    with pytest.raises(NotApplicable, match="slice"):
        analyze(three, two_blobs(dim=3))
    with pytest.raises(NotApplicable, match="finite domain"):
        finite_table(three, two_blobs())
    with pytest.raises(NotApplicable, match="class densities"):
        analyze(
            Network.from_layers(random_layers((2, 2, 2), 0), ["relu"]),
            make("sparse_features", probs=[0.1, 0.2]),
        )
    with pytest.raises(ToylabError):
        analyze("not a model", two_blobs())
    part = analyze(Network.from_layers(random_layers((2, 4, 2), 0), ["relu"]), two_blobs()).geometry
    with pytest.raises(ToylabError, match="Did you mean"):
        extrema(part, "hiden_0")


def test_quadrature_tier_for_rings_is_estimated_and_agrees_with_a_brute_force():
    dist = make("rings", radii=[1.0, 2.0], widths=[0.2, 0.2])
    layers = random_layers((2, 6, 2), seed=1)
    res = analyze(Network.from_layers(layers, ["relu"]), dist)
    assert res.tier == "estimated" and res.error < 1e-6

    def density(x):  # written here from the generative process (truncated radial normals)
        rho = np.hypot(x[:, 0], x[:, 1])
        return sum(
            0.5
            * np.exp(-0.5 * ((rho - r) / 0.2) ** 2)
            / (0.2 * math.sqrt(2 * math.pi))
            / ndtr(r / 0.2)
            / (2 * math.pi * rho)
            for r in (1.0, 2.0)
        )

    ref = brute_force(
        res.support.polygons,
        density,
        lambda x: forward(layers, ["relu"], x)["hidden_0"],
        h=0.12,
        order=14,
    )
    # the estimate covers the true error, and both agree far below the rings' scale
    np.testing.assert_allclose(res.moments["hidden_0"].mean, ref, rtol=0, atol=max(res.error, 1e-8))


@pytest.mark.parametrize("start", [None, (1.2, 1.4), (-3.0, -2.0), (5.0, 6.0), (1.28, 1.28)])
def test_activation_quantile_brackets_the_closed_form(start):
    """relu(x2) under two unit blobs at (+-2, 0): x2 ~ N(0, 1), so P(a <= t) = Phi(t) for
    t >= 0 and the 0.9-quantile is Phi^-1(0.9); the 0.3-quantile is the atom at 0. The
    bracket holds the true value and is at most rtol of the range (over the integration
    support, which extends past the domain box) wide, whatever the
    starting guess (right, too low, too high, or a point)."""
    from scipy.stats import norm

    from toylab.exact import activation_quantile, region_ranges

    net = Network.from_weights([[[0.0], [1.0]], [[1.0, -1.0]]], [[0.0], [0.0, 0.0]])
    ana = analyze(net, two_blobs())
    rtol = 1e-6
    for q, want in ((0.9, norm.ppf(0.9)), (0.3, 0.0)):
        res = activation_quantile(ana, "hidden_0:0", q, rtol=rtol, start=start, num_points=8)
        _, vmax = region_ranges(ana.support, "hidden_0", 0)  # over the support; min is 0
        span = float(vmax.max())
        assert res.lower - 1e-12 <= want <= res.upper + 1e-12, (q, res)
        assert res.upper - res.lower <= rtol * span * 1.0001 + 1e-15
        assert res.tier == "certified"


def test_noisy_curve_region_masses_against_the_curve_integral():
    """The noisy curve's density is a mixture over the curve parameter t of N(c_k(t), s^2 I);
    region_moments integrates its Gaussian atoms in closed form. Reference, independent of
    the atoms: for a box, P(x in box, y = k) = 1/2 E_t[(Phi_x)(Phi_y)], a 1-D scipy quad
    over t of the curve itself. Agreement to 1e-9 (the atoms' declared relative density
    error is 1e-10; quad's own tolerance 1e-12), and the stated error covers it."""
    from scipy import integrate

    from toylab.distributions import NoisyCurve
    from toylab.exact import region_moments

    dist = NoisyCurve("two_moons", noise=0.3)
    s = dist.noise
    t0, t1 = dist.interval
    for low, high in (((-0.5, -0.3), (0.7, 0.4)), ((0.9, -1.0), (2.5, 0.2))):
        poly = np.array([[low[0], low[1]], [high[0], low[1]], [high[0], high[1]],
                         [low[0], high[1]]])  # fmt: skip
        rm = region_moments(dist, [poly])
        assert rm.tier == "estimated" and rm.groups == "class"
        for k in (0, 1):

            def box_mass(t, k=k, low=low, high=high):
                c = dist.points(k, np.array([t]))[0]
                px = ndtr((high[0] - c[0]) / s) - ndtr((low[0] - c[0]) / s)
                py = ndtr((high[1] - c[1]) / s) - ndtr((low[1] - c[1]) / s)
                return px * py

            ref = 0.5 * integrate.quad(box_mass, t0, t1, epsabs=1e-14, epsrel=1e-12,
                                       limit=200)[0] / (t1 - t0)  # fmt: skip
            got = float(rm.m0[k, 0])
            assert abs(got - ref) < 1e-9, (k, got, ref)
            assert abs(got - ref) <= rm.error[k, 0, 0] + 1e-12, (k, got - ref, rm.error[k, 0, 0])


def test_activation_quantile_bad_start_is_a_clear_error():
    from toylab.exact import activation_quantile

    ana = analyze(Network.from_weights([[[0.0], [1.0]], [[1.0, -1.0]]], [[0.0], [0.0, 0.0]]),
                  two_blobs())  # fmt: skip
    for bad in ((1.0,), ("a", "b"), (0.0, float("nan")), 3.0):
        with pytest.raises(ToylabError, match="start must be a pair of finite numbers"):
            activation_quantile(ana, "hidden_0:0", 0.9, start=bad)
