"""Tests for toylab.exact.integrals against independent references.

References used here, each derived differently from the code under test:

* mpmath at 30 digits: vertical slices of the polygon, the inner (y) integral
  of the conditional Gaussian in closed form, the outer (x) integral by
  tanh-sinh quadrature (the code uses Owen's T and the divergence theorem);
* closed forms for boxes under a diagonal covariance (products of 1-D
  truncated normal moments) and for the whole plane;
* Monte Carlo, with a z-score bound and a stated failure budget;
* 1-D Gauss-Legendre along edges (Green's theorem) for polynomial integrals.
"""

from __future__ import annotations

import functools
import math

import mpmath as mp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial import ConvexHull
from scipy.special import ndtr

from toylab._errors import ToylabError
from toylab.exact.integrals import (
    cross_moments,
    gaussian_polygon_moments,
    mixture_polygon_moments,
    neuron_moments,
    polygon_quadrature,
)

# The brief asks for 1e-9 absolute; the closed form reaches a few ulps, so we
# test at 1e-12 absolute, which still leaves 1e4 ulps of room for platform libm.
ATOL = 1e-12


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


def _mp_moments(poly: np.ndarray, mean: np.ndarray, cov: np.ndarray, dps: int = 30):
    """m0, m1, m2 by vertical slices in mpmath (independent of Owen's T)."""
    with mp.workdps(dps):
        pts = [(mp.mpf(float(a)), mp.mpf(float(b))) for a, b in poly]
        mx, my = mp.mpf(float(mean[0])), mp.mpf(float(mean[1]))
        sxx, sxy, syy = (
            mp.mpf(float(cov[0, 0])),
            mp.mpf(float(cov[0, 1])),
            mp.mpf(float(cov[1, 1])),
        )
        sx = mp.sqrt(sxx)
        beta = sxy / sxx
        s = mp.sqrt(syy - sxy**2 / sxx)
        edges = [(pts[i], pts[(i + 1) % len(pts)]) for i in range(len(pts))]
        edges = [e for e in edges if e[0][0] != e[1][0]]
        cache: dict = {}

        def columns(x):
            if x in cache:
                return cache[x]
            ys = [
                y0 + (y1 - y0) * (x - x0) / (x1 - x0)
                for (x0, y0), (x1, y1) in edges
                if min(x0, x1) <= x <= max(x0, x1)
            ]
            if len(ys) < 2:
                out = [mp.mpf(0)] * 6
            else:
                m = my + beta * (x - mx)  # conditional law of y given x
                lo, hi = (min(ys) - m) / s, (max(ys) - m) / s
                pl, pu = mp.npdf(lo), mp.npdf(hi)
                i0 = mp.ncdf(hi) - mp.ncdf(lo) if lo < 0 else mp.ncdf(-lo) - mp.ncdf(-hi)
                j1 = pl - pu
                j2 = i0 + lo * pl - hi * pu
                iy = m * i0 + s * j1
                iyy = m * m * i0 + 2 * m * s * j1 + s * s * j2
                px = mp.npdf(x, mx, sx)
                out = [px * i0, x * px * i0, px * iy, x * x * px * i0, x * px * iy, px * iyy]
            cache[x] = out
            return out

        xs = sorted({p[0] for p in pts})
        extra = [mx + sx * k for k in (-12, -8, -5, -3, -2, -1, 0, 1, 2, 3, 5, 8, 12)]
        breaks = sorted(set(xs + [e for e in extra if xs[0] < e < xs[-1]]))
        res = [float(mp.quad(lambda x, c=c: columns(x)[c], breaks)) for c in range(6)]
    return (
        res[0],
        np.array(res[1:3]),
        np.array([[res[3], res[4]], [res[4], res[5]]]),
    )


def _regular(n: int, centre, radius: float, phase: float = 0.3) -> np.ndarray:
    th = phase + 2 * np.pi * np.arange(n) / n
    return np.asarray(centre, dtype=float) + radius * np.c_[np.cos(th), np.sin(th)]


def _rotated_cov(sx: float, sy: float, angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    rot = np.array([[c, -s], [s, c]])
    return rot @ np.diag([sx**2, sy**2]) @ rot.T


_MEAN = np.array([0.3, -0.2])
_COV = np.array([[1.1, 0.4], [0.4, 0.7]])

# name -> (polygon, mean, cov)
_CASES = {
    "triangle_near_mean": (np.array([[-0.5, -1.0], [1.2, -0.3], [0.1, 0.9]]), _MEAN, _COV),
    "quad_near_mean": (np.array([[0.5, -0.4], [2.0, 0.1], [1.6, 1.5], [0.2, 0.8]]), _MEAN, _COV),
    "hexagon_around_mean": (_regular(6, _MEAN + [0.2, 0.1], 1.3), _MEAN, _COV),
    "tiny_side_1e-6": (_regular(3, _MEAN + [0.7, -0.4], 6e-7), _MEAN, _COV),
    "thin_sliver": (np.array([[-1.0, 0.2], [2.5, 0.2004], [2.5, 0.2009]]), _MEAN, _COV),
    "far_out_6_sigma": (_regular(4, _MEAN + [6.5, 0.0], 1.0), _MEAN, _COV),
    "far_out_10_sigma": (_regular(5, _MEAN + [-6.0, 8.5], 2.0), _MEAN, _COV),
    "rotated_anisotropic": (
        np.array([[-2.0, -0.5], [1.0, -2.0], [2.5, 0.5], [0.0, 2.0], [-1.5, 1.5]]),
        np.array([1.0, -0.5]),
        _rotated_cov(2.0, 0.1, 0.7),
    ),
}


@functools.cache
def _reference(name: str):
    poly, mean, cov = _CASES[name]
    return _mp_moments(poly, mean, cov)


def _clip(poly: np.ndarray, normal: np.ndarray, offset: float) -> np.ndarray:
    """Sutherland-Hodgman: the part of a convex polygon with ``normal . x <= offset``."""
    out = []
    n = len(poly)
    for i in range(n):
        p, q = poly[i], poly[(i + 1) % n]
        fp, fq = normal @ p - offset, normal @ q - offset
        if fp <= 0:
            out.append(p)
        if fp * fq < 0:
            out.append(p + (q - p) * (fp / (fp - fq)))
    return np.array(out).reshape(-1, 2)


def _random_convex(rng: np.random.Generator, centre, scale: float, n: int = 7) -> np.ndarray:
    pts = np.asarray(centre) + scale * rng.normal(size=(n, 2))
    return pts[ConvexHull(pts).vertices]  # counter-clockwise in 2-D


def _moment_matrix(m0, m1, m2) -> np.ndarray:
    big = np.empty((3, 3))
    big[:2, :2] = m2
    big[:2, 2] = big[2, :2] = m1
    big[2, 2] = m0
    return big


# ---------------------------------------------------------------------------
# gaussian_polygon_moments
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(_CASES))
def test_moments_match_mpmath(name):
    poly, mean, cov = _CASES[name]
    r0, r1, r2 = _reference(name)
    m0, m1, m2 = gaussian_polygon_moments([poly], mean, cov)
    np.testing.assert_allclose(m0[0], r0, rtol=0, atol=ATOL)
    np.testing.assert_allclose(m1[0], r1, rtol=0, atol=ATOL)
    np.testing.assert_allclose(m2[0], r2, rtol=0, atol=ATOL)


def test_tiny_polygon_keeps_relative_accuracy():
    # side 1e-6: the closed form alone cancels down to ~1e-3 relative (still exact in the
    # absolute sense, which the rounding bound states); the per-polygon quadrature refinement
    # (refine=True, estimated) restores the relative accuracy
    r0, r1, r2 = _reference("tiny_side_1e-6")
    poly, mean, cov = _CASES["tiny_side_1e-6"]
    c0, c1, c2, err = gaussian_polygon_moments([poly], mean, cov, return_error=True)
    assert abs(c0[0] - r0) <= err[0, 0] and np.all(np.abs(c1[0] - r1) <= err[0, 1:3])
    m0, m1, m2 = gaussian_polygon_moments([poly], mean, cov, refine=True)
    np.testing.assert_allclose(m0[0], r0, rtol=1e-9)
    np.testing.assert_allclose(m1[0], r1, rtol=1e-9)
    np.testing.assert_allclose(m2[0], r2, rtol=1e-9)


def test_whole_plane_limit():
    mean = np.array([1.5, -2.0])
    cov = _rotated_cov(1.7, 0.2, -0.4)
    box = mean + np.array([[-60.0, -60.0], [60.0, -60.0], [60.0, 60.0], [-60.0, 60.0]])
    m0, m1, m2 = gaussian_polygon_moments([box], mean, cov)
    np.testing.assert_allclose(m0[0], 1.0, rtol=0, atol=1e-14)
    np.testing.assert_allclose(m1[0], mean, rtol=0, atol=1e-13)
    np.testing.assert_allclose(m2[0], cov + np.outer(mean, mean), rtol=0, atol=1e-13)


def _truncated_1d(a: float, b: float, mu: float, sd: float):
    """E[1], E[x], E[x^2] of N(mu, sd^2) restricted to [a, b], in closed form."""
    lo, hi = (a - mu) / sd, (b - mu) / sd
    p = ndtr(hi) - ndtr(lo)
    pdf = lambda u: math.exp(-0.5 * u * u) / math.sqrt(2 * math.pi)  # noqa: E731
    e1 = pdf(lo) - pdf(hi)
    e2 = p + lo * pdf(lo) - hi * pdf(hi)
    return p, mu * p + sd * e1, mu * mu * p + 2 * mu * sd * e1 + sd * sd * e2


@pytest.mark.parametrize(
    "box", [(-3.0, 4.0, -2.0, 5.0), (-0.5, 0.25, 1.0, 9.0), (-30.0, 30.0, -30.0, 30.0)]
)
def test_box_with_diagonal_cov_matches_product_closed_form(box):
    x0, x1, y0, y1 = box
    mean, sd = np.array([0.4, 1.1]), np.array([1.3, 0.8])
    poly = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
    m0, m1, m2 = gaussian_polygon_moments([poly], mean, np.diag(sd**2))
    px, ex, exx = _truncated_1d(x0, x1, mean[0], sd[0])
    py, ey, eyy = _truncated_1d(y0, y1, mean[1], sd[1])
    # m0 = 1 - (mass outside the box), here as the product of 1-D masses
    np.testing.assert_allclose(m0[0], px * py, rtol=0, atol=1e-14)
    np.testing.assert_allclose(m1[0], [ex * py, px * ey], rtol=0, atol=1e-14)
    want = np.array([[exx * py, ex * ey], [ex * ey, px * eyy]])
    np.testing.assert_allclose(m2[0], want, rtol=0, atol=1e-13)


def test_additivity_along_random_lines():
    rng = np.random.default_rng(7)
    for _ in range(30):
        poly = _random_convex(rng, rng.normal(size=2), rng.uniform(0.05, 3.0))
        a = rng.normal(size=(2, 2))
        cov = a @ a.T + 0.05 * np.eye(2)
        mean = rng.normal(size=2)
        normal = rng.normal(size=2)
        offset = normal @ poly[rng.integers(len(poly))] * rng.uniform(0.3, 1.0)
        lo, hi = _clip(poly, normal, offset), _clip(poly, -normal, -offset)
        whole = gaussian_polygon_moments([poly], mean, cov)
        parts = gaussian_polygon_moments([lo, hi], mean, cov)
        for w, p in zip(whole, parts, strict=True):
            np.testing.assert_allclose(w[0], p.sum(axis=0), rtol=0, atol=1e-12)


def test_orientation_padding_and_batching_agree():
    rng = np.random.default_rng(3)
    polys = [_random_convex(rng, rng.normal(size=2), 1.0, n) for n in (3, 5, 9, 4)]
    polys.append(_random_convex(rng, [0.5, 0.5], 1e-5, 6))  # tiny: takes the quadrature path
    m_list = gaussian_polygon_moments(polys, _MEAN, _COV)
    m_cw = gaussian_polygon_moments([p[::-1] for p in polys], _MEAN, _COV)
    m_one = [gaussian_polygon_moments([p], _MEAN, _COV) for p in polys]
    for k in range(3):
        np.testing.assert_allclose(m_cw[k], m_list[k], rtol=0, atol=1e-15)
        np.testing.assert_allclose(
            np.concatenate([m[k] for m in m_one]), m_list[k], rtol=0, atol=1e-15
        )
    tri = np.stack([polys[0], polys[0] + 1.0])
    np.testing.assert_allclose(
        gaussian_polygon_moments(tri, _MEAN, _COV)[0],
        gaussian_polygon_moments(list(tri), _MEAN, _COV)[0],
        rtol=0,
        atol=0,
    )


def test_mixture_components_are_weighted_single_gaussians():
    rng = np.random.default_rng(5)
    polys = [_random_convex(rng, rng.normal(size=2), 1.5) for _ in range(4)]
    means = np.array([[0.0, 0.0], [1.0, -1.0], [-2.0, 0.5]])
    covs = np.stack([np.eye(2), _COV, _rotated_cov(0.5, 1.5, 0.3)])
    weights = np.array([0.2, 0.5, 0.3])
    m0, m1, m2 = mixture_polygon_moments(polys, means, covs, weights)
    assert m0.shape == (3, 4) and m1.shape == (3, 4, 2) and m2.shape == (3, 4, 2, 2)
    for k in range(3):
        s0, s1, s2 = gaussian_polygon_moments(polys, means[k], covs[k])
        np.testing.assert_allclose(m0[k], weights[k] * s0, rtol=1e-15, atol=0)
        np.testing.assert_allclose(m1[k], weights[k] * s1, rtol=1e-15, atol=0)
        np.testing.assert_allclose(m2[k], weights[k] * s2, rtol=1e-15, atol=0)


def test_bad_arguments_raise_teaching_errors():
    tri = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    with pytest.raises(ToylabError, match="positive definite"):
        gaussian_polygon_moments([tri], [0.0, 0.0], [[1.0, 2.0], [2.0, 1.0]])
    with pytest.raises(ToylabError, match="symmetric"):
        gaussian_polygon_moments([tri], [0.0, 0.0], [[1.0, 0.5], [0.0, 1.0]])
    with pytest.raises(ToylabError, match=r"polygons\[1\]"):
        gaussian_polygon_moments([tri, np.zeros((3, 3))], [0.0, 0.0], np.eye(2))
    with pytest.raises(ToylabError, match="Wrap a single polygon"):
        gaussian_polygon_moments(tri, [0.0, 0.0], np.eye(2))
    with pytest.raises(ToylabError, match="weights"):
        mixture_polygon_moments([tri], np.zeros((2, 2)), np.stack([np.eye(2)] * 2), [1.0, -1.0])


# ---------------------------------------------------------------------------
# neuron moments on the regions of a small ReLU network
# ---------------------------------------------------------------------------


class _Net:
    """x -> relu(W1 x + b1) -> W2 h + b2, with its linear regions on a big box."""

    def __init__(self, seed: int, width: int = 5, out: int = 3, half: float = 25.0):
        rng = np.random.default_rng(seed)
        self.w1 = rng.normal(size=(width, 2))
        self.b1 = rng.normal(size=width) * 0.7
        self.w2 = rng.normal(size=(out, width))
        self.b2 = rng.normal(size=out)
        regions = [np.array([[-half, -half], [half, -half], [half, half], [-half, half]])]
        for w, b in zip(self.w1, self.b1, strict=True):  # split by each hidden unit's line
            nxt = []
            for p in regions:
                for piece in (_clip(p, w, -b), _clip(p, -w, b)):
                    if len(piece) >= 3 and abs(_area(piece)) > 1e-12:
                        nxt.append(piece)
            regions = nxt
        self.regions = regions
        cent = np.array([p.mean(axis=0) for p in regions])
        self.patterns = (cent @ self.w1.T + self.b1) > 0  # (R, width)
        act = self.patterns[:, :, None]
        self.hidden_maps = np.where(act, np.c_[self.w1, self.b1][None], 0.0)
        # output_r(x) = W2 (D_r (W1 x + b1)) + b2
        out_g = np.einsum("ok,rkj->roj", self.w2, self.hidden_maps)
        out_g[:, :, 2] += self.b2
        self.output_maps = out_g

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        h = np.maximum(x @ self.w1.T + self.b1, 0.0)
        return h, h @ self.w2.T + self.b2


def _area(p: np.ndarray) -> float:
    return 0.5 * float(np.sum(p[:, 0] * np.roll(p[:, 1], -1) - p[:, 1] * np.roll(p[:, 0], -1)))


def _gauss_pdf(x: np.ndarray, mean: np.ndarray, cov: np.ndarray) -> np.ndarray:
    inv = np.linalg.inv(cov)
    d = x - mean
    q = np.einsum("ni,ij,nj->n", d, inv, d)
    return np.exp(-0.5 * q) / (2 * np.pi * math.sqrt(np.linalg.det(cov)))


@functools.cache
def _net_case():
    net = _Net(seed=11)
    mean, cov = np.array([0.2, -0.3]), _rotated_cov(1.3, 0.8, 0.5)
    m0, m1, m2 = gaussian_polygon_moments(net.regions, mean, cov)
    return net, mean, cov, (m0, m1, m2)


def test_neuron_moments_vs_brute_quadrature():
    # integrate the network itself (not its maps) times the density over each
    # region, cut to a window around the mean to keep the quadrature cheap
    net, mean, cov, _ = _net_case()
    regions, keep = [], []
    for r, p in enumerate(net.regions):
        for normal, off in (([1, 0], 7), ([-1, 0], 7), ([0, 1], 7), ([0, -1], 7)):
            p = _clip(p, np.array(normal, float), off + np.dot(normal, mean)) if len(p) else p
        if len(p) >= 3:
            regions.append(p)
            keep.append(r)
    m0, m1, m2 = gaussian_polygon_moments(regions, mean, cov)
    n = net.w1.shape[0]
    iu = np.triu_indices(n)

    def integrand(x):
        h, _ = net(x)
        p = _gauss_pdf(x, mean, cov)[:, None]
        return np.concatenate([p, h * p, (h[:, iu[0]] * h[:, iu[1]]) * p], axis=1)

    vals, bounds = polygon_quadrature(integrand, regions, rtol=1e-10, atol=1e-13)
    brute = vals.sum(axis=0)
    res = neuron_moments(m0, m1, m2, net.hidden_maps[keep])
    tol = bounds.sum(axis=0) + 1e-12
    assert abs(float(res.mass) - brute[0]) <= tol[0]
    np.testing.assert_array_less(np.abs(res.mean - brute[1 : 1 + n]), tol[1 : 1 + n])
    np.testing.assert_array_less(np.abs(res.second_moment[iu] - brute[1 + n :]), tol[1 + n :])
    assert tol.max() < 1e-9


def test_neuron_and_cross_moments_vs_monte_carlo():
    net, mean, cov, (m0, m1, m2) = _net_case()
    num_samples = 400_000
    x = np.random.default_rng(0).multivariate_normal(mean, cov, size=num_samples)
    h, y = net(x)
    hid = neuron_moments(m0, m1, m2, net.hidden_maps)
    out = neuron_moments(m0, m1, m2, net.output_maps, patterns=np.ones((len(m0), 3), bool))
    cross = cross_moments(m0, m1, m2, net.hidden_maps, net.output_maps)

    # each check is |estimate - exact| <= 5 standard errors: a two-sided normal
    # tail of 5.7e-7 per entry, under 1e-4 over the ~100 entries checked
    def check(samples: np.ndarray, exact: np.ndarray) -> None:
        se = samples.std(axis=0) / math.sqrt(num_samples)
        np.testing.assert_array_less(np.abs(samples.mean(axis=0) - exact), 5 * se + 1e-12)

    check(h, hid.mean)
    check(y, out.mean)
    check(h[:, :, None] * h[:, None, :], hid.second_moment)
    check(h[:, :, None] * y[:, None, :], cross.second_moment)
    check((h > 0).astype(float), hid.firing_probability)
    np.testing.assert_allclose(float(hid.mass), 1.0, atol=1e-13)
    # covariances follow from the moments; compare with the sample covariance
    emp = np.cov(np.c_[h, y].T)
    se = np.sqrt(np.var((h - h.mean(0))[:, :, None] * (y - y.mean(0))[:, None, :], axis=0))
    np.testing.assert_array_less(
        np.abs(emp[: h.shape[1], h.shape[1] :] - cross.cov), 5 * se / math.sqrt(num_samples)
    )


def test_cross_moments_is_the_off_diagonal_block():
    net, mean, cov, (m0, m1, m2) = _net_case()
    both = np.concatenate([net.hidden_maps, net.output_maps], axis=1)
    full = neuron_moments(m0, m1, m2, both)
    cross = cross_moments(m0, m1, m2, net.hidden_maps, net.output_maps)
    n = net.hidden_maps.shape[1]
    np.testing.assert_allclose(cross.second_moment, full.second_moment[:n, n:], rtol=1e-13)
    np.testing.assert_allclose(cross.cov, full.cov[:n, n:], rtol=1e-12, atol=1e-13)
    cond = neuron_moments(m0[:4], m1[:4], m2[:4], net.hidden_maps[:4], conditional=True)
    plain = neuron_moments(m0[:4], m1[:4], m2[:4], net.hidden_maps[:4])
    np.testing.assert_allclose(cond.mean * plain.mass, plain.mean, rtol=1e-13)


def test_neuron_moments_rejects_wrong_shapes():
    m0, m1, m2 = np.ones(4), np.zeros((4, 2)), np.zeros((4, 2, 2))
    with pytest.raises(ToylabError, match="maps"):
        neuron_moments(m0, m1, m2, np.zeros((3, 2, 3)))
    with pytest.raises(ToylabError, match="patterns"):
        neuron_moments(m0, m1, m2, np.zeros((4, 2, 3)), patterns=np.ones((4, 3), bool))


# ---------------------------------------------------------------------------
# polygon_quadrature
# ---------------------------------------------------------------------------


def _green_monomial(poly: np.ndarray, a: int, b: int) -> float:
    """int_P x^a y^b dA = 1/(a+1) oint x^(a+1) y^b dy, by exact 1-D Gauss-Legendre."""
    t, w = np.polynomial.legendre.leggauss((a + b + 2) // 2 + 1)
    t, w = 0.5 * (t + 1), 0.5 * w
    total = 0.0
    for p, q in zip(poly, np.roll(poly, -1, axis=0), strict=True):
        xs, ys = p[0] + t * (q[0] - p[0]), p[1] + t * (q[1] - p[1])
        total += float(np.sum(w * xs ** (a + 1) * ys**b)) * (q[1] - p[1])
    return total / (a + 1)


def test_quadrature_is_exact_for_polynomials_up_to_degree_20():
    rng = np.random.default_rng(2)
    poly = _random_convex(rng, [0.3, -0.2], 0.6)
    powers = [(a, d - a) for d in range(21) for a in range(d + 1)]

    def monomials(x):
        return np.stack([x[:, 0] ** a * x[:, 1] ** b for a, b in powers], axis=1)

    vals, _ = polygon_quadrature(monomials, [poly], max_depth=0)
    want = np.array([_green_monomial(poly, a, b) for a, b in powers])
    np.testing.assert_allclose(vals[0], want, rtol=1e-12, atol=1e-14)
    # far beyond degree 20 a single level of the rule is no longer exact
    x40, _ = polygon_quadrature(lambda x: x[:, 0] ** 40, [poly], max_depth=0)
    assert abs(x40[0] - _green_monomial(poly, 40, 0)) > 1e-9 * abs(x40[0])


def test_quadrature_of_gaussian_matches_closed_form():
    mean, cov = np.array([0.5, -1.0]), _rotated_cov(1.4, 0.6, 1.1)
    rng = np.random.default_rng(4)
    polys = [_random_convex(rng, mean + rng.normal(size=2), 1.5) for _ in range(3)]
    polys.append(np.array([[-9.0, -9.0], [9.0, -9.0], [9.0, 9.0], [-9.0, 9.0]]))

    def dens(x):
        p = _gauss_pdf(x, mean, cov)
        return np.stack([p, x[:, 0] * p, x[:, 1] * p, x[:, 0] ** 2 * p, x[:, 0] * x[:, 1] * p], 1)

    vals, bounds = polygon_quadrature(dens, polys, rtol=1e-12, atol=1e-14)
    m0, m1, m2 = gaussian_polygon_moments(polys, mean, cov)
    exact = np.c_[m0, m1, m2[:, 0, 0], m2[:, 0, 1]]
    assert np.all(np.abs(vals - exact) <= bounds + 1e-15)
    assert np.all(bounds <= np.maximum(1e-14, 1e-12 * np.abs(vals)))


_SMOOTH = {
    "exp": (
        lambda x: np.exp(x[:, 0] + 2 * x[:, 1]),
        lambda a, b, c, d: (math.exp(b) - math.exp(a)) * (math.exp(2 * d) - math.exp(2 * c)) / 2,
    ),
    "trig": (
        lambda x: np.sin(3 * x[:, 0]) * np.cos(5 * x[:, 1]),
        lambda a, b, c, d: (
            (math.cos(3 * a) - math.cos(3 * b)) / 3 * (math.sin(5 * d) - math.sin(5 * c)) / 5
        ),
    ),
    "peak": (
        lambda x: np.exp(-8 * (x[:, 0] ** 2 + x[:, 1] ** 2)),
        lambda a, b, c, d: (
            math.pi
            / 8
            * (math.erf(math.sqrt(8) * b) - math.erf(math.sqrt(8) * a))
            * (math.erf(math.sqrt(8) * d) - math.erf(math.sqrt(8) * c))
            / 4
        ),
    ),
}


@pytest.mark.parametrize("name", list(_SMOOTH))
@pytest.mark.parametrize("max_depth", [0, 1, 2, 4])
def test_quadrature_error_bound_is_honest(name, max_depth):
    fn, exact = _SMOOTH[name]
    a, b, c, d = -1.3, 1.7, -0.9, 2.1
    box = np.array([[a, c], [b, c], [b, d], [a, d]])
    vals, bounds = polygon_quadrature(fn, [box], rtol=1e-14, atol=1e-15, max_depth=max_depth)
    assert vals.shape == bounds.shape == (1,)
    assert abs(vals[0] - exact(a, b, c, d)) <= bounds[0]


def test_quadrature_reaches_the_tolerance_it_was_given():
    fn, exact = _SMOOTH["peak"]
    box = np.array([[-1.3, -0.9], [1.7, -0.9], [1.7, 2.1], [-1.3, 2.1]])
    vals, bounds = polygon_quadrature(fn, [box], rtol=1e-10, atol=0.0)
    assert bounds[0] <= 1e-10 * abs(vals[0])
    assert abs(vals[0] - exact(-1.3, 1.7, -0.9, 2.1)) <= bounds[0]


def test_quadrature_rejects_bad_tolerances():
    tri = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    with pytest.raises(ToylabError, match="rtol"):
        polygon_quadrature(lambda x: x[:, 0], [tri], rtol=-1.0)
    with pytest.raises(ToylabError, match="fn"):
        polygon_quadrature(lambda x: x[:3, 0], [tri])


# ---------------------------------------------------------------------------
# properties
# ---------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    scale=st.floats(1e-3, 20.0),
    shift=st.floats(0.0, 8.0),
    aniso=st.floats(0.05, 1.0),
    angle=st.floats(0.0, math.pi),
)
def test_properties_mass_additivity_psd(seed, scale, shift, aniso, angle):
    rng = np.random.default_rng(seed)
    mean = rng.normal(size=2)
    cov = _rotated_cov(1.0, aniso, angle) * rng.uniform(0.3, 3.0)
    direction = rng.normal(size=2)
    centre = mean + shift * direction / np.linalg.norm(direction)
    poly = _random_convex(rng, centre, scale, n=int(rng.integers(3, 9)))
    m0, m1, m2 = gaussian_polygon_moments([poly], mean, cov)
    assert -1e-15 <= m0[0] <= 1.0 + 1e-15
    ev = np.linalg.eigvalsh(m2[0])
    assert ev.min() >= -1e-12 * max(1.0, ev.max())
    ev3 = np.linalg.eigvalsh(_moment_matrix(m0[0], m1[0], m2[0]))
    assert ev3.min() >= -1e-12 * max(1.0, ev3.max())
    normal = rng.normal(size=2)
    offset = float(normal @ poly.mean(axis=0))
    parts = gaussian_polygon_moments(
        [_clip(poly, normal, offset), _clip(poly, -normal, -offset)], mean, cov
    )
    for w, p in zip((m0, m1, m2), parts, strict=True):
        np.testing.assert_allclose(w[0], p.sum(axis=0), rtol=0, atol=1e-12)
