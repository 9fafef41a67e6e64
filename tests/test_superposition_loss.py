"""The exact expected loss against hand-derived values, an independent geometric
reference (clip the cube, Delaunay-triangulate, integrate on simplices), mpmath and
Monte Carlo."""

import itertools
import math

import mpmath
import numpy as np
import pytest
from scipy.spatial import Delaunay

from toylab import ToylabError
from toylab.distributions import SparseFeatures
from toylab.network import Dense, Network, Tied
from toylab.superposition import expected_loss


def _net(W, b, output="relu"):
    W = np.asarray(W, np.float64)
    return Network((Dense(W.T, np.zeros(W.shape[0])), Tied(0, np.asarray(b, np.float64))),
                   ("identity", output))  # fmt: skip


# --------------------------------------------------------------------- the reference


def _clip_cube(a, b, d):
    """Vertices of {y in [0,1]^d : a·y + b >= 0} (cube vertices and edge crossings)."""
    verts = [np.array(v, float) for v in itertools.product((0.0, 1.0), repeat=d)]
    z = [float(a @ v + b) for v in verts]
    pts = [v for v, zv in zip(verts, z, strict=True) if zv >= 0]
    for i, j in itertools.combinations(range(len(verts)), 2):
        if np.sum(verts[i] != verts[j]) == 1 and (z[i] > 0 > z[j] or z[j] > 0 > z[i]):
            t = z[i] / (z[i] - z[j])
            pts.append(verts[i] + t * (verts[j] - verts[i]))
    return np.array(pts)


def _integrate_square(pts, g, c0, d):
    """∫ over conv(pts) of (g·y + c0)²: sum over Delaunay simplices of
    vol * (ℓ(centroid)² + gᵀ Σ g), Σ = Σ_k (v_k - c)(v_k - c)ᵀ / ((d+1)(d+2))."""
    if len(pts) < d + 1 or np.linalg.matrix_rank(pts[1:] - pts[0], tol=1e-13) < d:
        return 0.0
    simplices = [[0, 1]] if d == 1 else Delaunay(pts).simplices
    if d == 1:
        pts = np.array([[pts.min()], [pts.max()]])
    total = 0.0
    for simplex in simplices:
        v = pts[simplex]
        vol = abs(np.linalg.det(v[1:] - v[0])) / math.factorial(d)
        c = v.mean(0)
        cov = (v - c).T @ (v - c) / ((d + 1) * (d + 2))
        total += vol * ((g @ c + c0) ** 2 + g @ cov @ g)
    return total


def reference_loss(W, b, probs, importance):
    """Brute force over all 2^n patterns, each output's cube split by its hyperplane."""
    W, b = np.asarray(W, float), np.asarray(b, float)
    M = W.T @ W
    n = len(probs)
    total = 0.0
    for pattern in itertools.product((0, 1), repeat=n):
        prob = math.prod(p if s else 1 - p for p, s in zip(probs, pattern, strict=True))
        S = [j for j in range(n) if pattern[j]]
        d = len(S)
        for i in range(n):
            a = M[i, S]
            if d == 0:
                val = max(b[i], 0.0) ** 2
            else:
                e = np.array([1.0 if j == i else 0.0 for j in S])
                # z > 0: (z - x_i)^2 ; z <= 0: x_i^2
                val = _integrate_square(_clip_cube(a, b[i], d), a - e, b[i], d)
                val += _integrate_square(_clip_cube(-a, -b[i], d), e, 0.0, d)
            total += importance[i] * prob * val
    return total


# --------------------------------------------------------------------- hand-derived


def test_one_feature_by_hand():
    # n = 1, w = 1, b = -1/2: ∫_0^1/2 u² du + ∫_1/2^1 (1/2)² du = 1/24 + 1/8 = 1/6
    r = expected_loss(_net([[1.0]], [-0.5]), SparseFeatures((0.4,)))
    assert r.tier == "exact"
    assert r.value == pytest.approx(0.4 / 6, rel=1e-13)  # float64 rounding


@pytest.mark.parametrize("w, b, p", [(0.7, 0.1, 0.3), (1.3, -0.4, 0.8), (1e-7, 0.05, 0.5)])
def test_one_feature_against_mpmath(w, b, p):
    mpmath.mp.dps = 30
    f = lambda u: (max(w * w * u + b, 0) - u) ** 2  # noqa: E731
    kink = -b / (w * w)
    pts = [0, kink, 1] if 0 < kink < 1 else [0, 1]
    want = (1 - p) * max(b, 0) ** 2 + p * float(mpmath.quad(f, pts))
    got = expected_loss(_net([[w]], [b]), SparseFeatures((p,))).value
    assert got == pytest.approx(want, rel=1e-12, abs=1e-15)  # both exact to rounding


def test_identity_has_zero_loss():
    r = expected_loss(_net(np.eye(3), np.zeros(3)), SparseFeatures((0.2, 0.5, 0.9)))
    assert r.tier == "exact" and abs(r.value) <= 1e-14


def test_zero_weights_by_hand():
    probs, imp, b = (0.3, 0.6, 0.1), (1.0, 2.0, 0.5), np.array([0.2, -0.3, 0.05])
    # W = 0: output ReLU(b_i); E (c - x)^2 = c^2 - 2 c p/2 + p/3
    c = np.maximum(b, 0)
    want = sum(I * (ci**2 - ci * p + p / 3) for I, ci, p in zip(imp, c, probs, strict=True))
    for out in ("relu", "identity"):
        bb = b if out == "relu" else c
        r = expected_loss(_net(np.zeros((2, 3)), bb, out), SparseFeatures(probs, imp))
        assert r.value == pytest.approx(want, rel=1e-14)


# --------------------------------------------------------------------- against the reference

CASES = {
    "random": (np.array([[0.9, -0.6, 0.3], [0.2, 0.8, -0.7]]), [-0.1, 0.05, 0.2]),
    "tiny coefficient": (np.array([[1.0, 1e-9, 0.5], [0.0, 1e-9, 0.8]]), [-0.3, 0.0, -0.2]),
    "huge coefficients": (np.array([[1e3, -1e3, 2.0], [5.0, 1e3, -1e-3]]), [1.0, -2e3, 3.0]),
    "nearly equal": (np.array([[1.0, 1.0 + 1e-13, 1.0 - 1e-13]]), [-1.5, -1.5, -1.5]),
    # z = M_i·x + b_i is 0 at cube vertices: b_i = -(a subset sum of M_i)
    "through vertices": (np.array([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0]]), [-1.0, -2.0, -1.0]),
    "pentagon slice": (
        np.stack([np.cos(2 * np.pi * np.arange(3) / 5), np.sin(2 * np.pi * np.arange(3) / 5)]),
        [-0.08, -0.08, -0.08],
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_relu_against_geometric_reference(name):
    W, b = CASES[name]
    probs, imp = (0.3, 0.55, 0.8), (1.0, 0.7, 0.49)
    got = expected_loss(_net(W, b), SparseFeatures(probs, imp))
    want = reference_loss(W, b, probs, imp)
    assert got.tier == "exact"
    # both are exact to rounding; 1e-9 relative leaves room for the reference's
    # determinants and Delaunay on slivers (huge weights: values ~1e12)
    assert got.value == pytest.approx(want, rel=1e-9, abs=1e-13)
    assert abs(got.value - want) <= max(got.error, 1e-9 * abs(want))


def test_linear_against_reference_by_enumeration():
    # the linear loss is the same enumeration without the split: an independent check of
    # the closed form from the moments
    W, b = CASES["random"]
    probs, imp = (0.3, 0.55, 0.8), (1.0, 0.7, 0.49)
    M = W.T @ W
    want = 0.0
    for pattern in itertools.product((0, 1), repeat=3):
        prob = math.prod(p if s else 1 - p for p, s in zip(probs, pattern, strict=True))
        S = [j for j in range(3) if pattern[j]]
        for i in range(3):
            g = M[i, S] - np.array([1.0 if j == i else 0.0 for j in S])
            mean = g.sum() / 2 + b[i]
            want += imp[i] * prob * (mean**2 + g @ g / 12)
    got = expected_loss(_net(W, b, "identity"), SparseFeatures(probs, imp))
    assert got.value == pytest.approx(want, rel=1e-13)


# --------------------------------------------------------------------- Monte Carlo


@pytest.mark.parametrize("output", ["relu", "identity"])
def test_exact_within_monte_carlo_interval(output):
    rng = np.random.default_rng(3)
    W, b = rng.normal(size=(2, 5)), -0.2 * rng.random(5)
    dist = SparseFeatures((0.1, 0.2, 0.3, 0.4, 0.5), tuple(0.8 ** np.arange(5)))
    exact = expected_loss(_net(W, b, output), dist)
    mc = expected_loss(_net(W, b, output), dist, method="sampled", num_samples=200_000,
                       seed=1, confidence=0.999)  # fmt: skip
    assert exact.tier == "exact" and mc.tier == "sampled"
    # a 99.9% interval: this fixed seed fails with probability 1e-3 over seeds
    assert mc.lower <= exact.value <= mc.upper


# --------------------------------------------------------------------- certified


def test_certified_enclosure_contains_exact():
    rng = np.random.default_rng(5)
    W, b = 0.6 * rng.normal(size=(3, 7)), -0.1 * rng.random(7)
    dist = SparseFeatures((0.15,) * 7)
    exact = expected_loss(_net(W, b), dist, method="exact", max_patterns=64)
    for budget, tol in ((8, 1e-2), (40, 1e-4)):
        cert = expected_loss(_net(W, b), dist, method="certified", max_patterns=budget, tol=tol)
        assert cert.tier == "certified"
        assert cert.lower <= exact.value <= cert.upper
        assert cert.num_patterns <= 7 * budget
    tight = expected_loss(_net(W, b), dist, method="certified", max_patterns=64, tol=1e-8)
    assert tight.upper - tight.lower < 1e-8 + 4 * exact.error


ADVERSARIAL = {
    "huge positive": (lambda rng: 30 * np.abs(rng.normal(size=(3, 7))), 5.0),
    "huge negative bias": (lambda rng: 30 * rng.normal(size=(3, 7)), -40.0),
    "tiny": (lambda rng: 1e-6 * rng.normal(size=(3, 7)), 1e-7),
    "mixed scales": (lambda rng: rng.normal(size=(3, 7)) * np.logspace(-4, 2, 7), 0.3),
}


@pytest.mark.parametrize("name", list(ADVERSARIAL))
@pytest.mark.parametrize("probs", [(0.05,) * 7, (0.9, 0.5, 0.02, 0.99, 0.3, 0.6, 0.01)])
def test_certified_enclosure_contains_exact_on_adversarial_weights(name, probs):
    # both bounds (vertex and moment) are proven in loss.py's docstring; the enclosure
    # must hold at every budget, however few patterns it enumerates
    rng = np.random.default_rng(len(name))
    W, scale = ADVERSARIAL[name][0](rng), ADVERSARIAL[name][1]
    b = scale * rng.random(7)
    dist = SparseFeatures(probs, tuple(0.9 ** np.arange(7)))
    exact = expected_loss(_net(W, b), dist, method="exact", max_patterns=64)
    for budget in (1, 8):
        cert = expected_loss(_net(W, b), dist, method="certified", max_patterns=budget)
        assert cert.lower - exact.error <= exact.value <= cert.upper + exact.error


def test_moment_bound_is_tighter_than_the_vertex_bound():
    # 20 features at p = 0.05: the left-out patterns are charged their own features
    rng = np.random.default_rng(0)
    W, b = rng.normal(size=(5, 20)) / np.sqrt(5), -0.05 * rng.random(20)
    cert = expected_loss(_net(W, b), SparseFeatures((0.05,) * 20), method="certified",
                         max_patterns=16)  # fmt: skip
    mc = expected_loss(_net(W, b), SparseFeatures((0.05,) * 20), method="sampled",
                       num_samples=20_000, confidence=0.999)  # fmt: skip
    # the vertex bound alone gave [0.26, 104] here; the Monte Carlo value must lie inside
    assert cert.upper - cert.lower < 1.0 and cert.lower <= mc.upper and mc.lower <= cert.upper


def test_auto_is_certified_beyond_the_budget_and_exact_refuses():
    rng = np.random.default_rng(6)
    W, b = rng.normal(size=(2, 6)), np.zeros(6)
    dist = SparseFeatures((0.05,) * 6)
    r = expected_loss(_net(W, b), dist, max_patterns=4, tol=1e-3)
    cert = expected_loss(_net(W, b), dist, method="certified", max_patterns=4, tol=1e-3)
    samp = expected_loss(_net(W, b), dist, method="sampled")
    assert cert.tier == "certified" and cert.unenumerated_mass > 0
    narrower = cert if cert.upper - cert.lower <= samp.upper - samp.lower else samp
    assert r.tier == narrower.tier and r.value == narrower.value and "auto" in r.method
    with pytest.raises(ToylabError, match="max_patterns"):
        expected_loss(_net(W, b), dist, method="exact", max_patterns=4)


def test_bad_inputs_are_clear_errors():
    net = _net(np.eye(2), np.zeros(2))
    with pytest.raises(ToylabError, match="SparseFeatures"):
        expected_loss(net, object())
    with pytest.raises(ToylabError, match="2 features"):
        expected_loss(net, SparseFeatures((0.1, 0.1, 0.1)))
    with pytest.raises(ToylabError, match="method"):
        expected_loss(net, SparseFeatures((0.1, 0.1)), method="exakt")
    with pytest.raises(ToylabError, match="one per member"):
        expected_loss(net, [SparseFeatures((0.1, 0.1))])
    with pytest.raises(ToylabError, match="one SparseFeatures per member"):
        expected_loss([net, net], [SparseFeatures((0.1, 0.1))])
    with pytest.raises(ToylabError, match=r"dist\[1\]"):
        expected_loss([net, net], [SparseFeatures((0.1, 0.1)), SparseFeatures((0.1,))])


def test_ensemble_with_a_distribution_per_member():
    # each member's entry is the single-model result for its own distribution
    rng = np.random.default_rng(2)
    nets = [_net(rng.normal(size=(2, 3)), -0.1 * rng.random(3)) for _ in range(3)]
    dists = [SparseFeatures((p, p, p), (1.0, 0.7, 0.49)) for p in (0.05, 0.3, 0.9)]
    got = expected_loss(nets, dists)
    assert got.ensemble and got.num_members == 3 and got.value.shape == (3,)
    assert got.per_feature_lower.shape == (3, 3) and got.tier == "exact"
    for k in range(3):
        one = expected_loss(nets[k], dists[k])
        assert got.value[k] == one.value and got.member(k).value == one.value
    same = expected_loss(nets, dists[1])  # one distribution for every member
    assert same.value[0] == expected_loss(nets[0], dists[1]).value
    mixed = expected_loss(nets, dists, method="certified", max_patterns=2)
    assert mixed.tier == "certified" and "member 0" in str(mixed)


# --------------------------------------------------------------------- n = 2 closed form


def _pair_model_loss(M, b, probs, imp):
    from toylab.superposition.loss import _pair_terms

    f0 = _pair_terms(M[..., 0, 0], M[..., 0, 1], b[..., 0], probs[0], probs[1])[0]
    f1 = _pair_terms(M[..., 1, 1], M[..., 1, 0], b[..., 1], probs[1], probs[0])[0]
    return imp[0] * f0 + imp[1] * f1


def _scale(M, b, imp):
    # the rounding scale of expected_loss: Σ I_i ((b_i + Σ_j (M_ij)_+)_+² + 1)
    return sum(imp[i] * (max(b[i] + np.maximum(M[i], 0).sum(), 0) ** 2 + 1) for i in range(2))


PAIR_CASES = {
    "random": ([[0.9, -0.6], [0.2, 0.8]], [-0.1, 0.05]),
    "antipodal": ([[1.0, -1.0]], [-0.1, -0.1]),
    "tiny": ([[1e-9, 3e-10]], [1e-9, -1e-10]),
    "huge": ([[1e3, -2e3]], [1e3, 5e5]),
    "through vertices": ([[1.0, 1.0]], [-1.0, -2.0]),
    "kink at the corner": ([[1.0, -1.0]], [0.0, 1.0]),
    "tiny cross term": ([[1.0, 1e-12], [0.0, 1.0]], [-0.5, -0.3]),
    "zero": ([[0.0, 0.0]], [0.2, -0.3]),
}


@pytest.mark.parametrize("name", list(PAIR_CASES))
@pytest.mark.parametrize("probs", [(0.3, 0.7), (1.0, 0.0), (0.05, 1.0)])
def test_pair_closed_form_against_the_general_enumeration(name, probs):
    # _pair_terms (safe-form active intervals, Gauss on y-pieces) against expected_loss's
    # Chebyshev tables: two different decompositions, both exact to rounding; 1e-13 of the
    # stated rounding scale (the error budget is 64 (n + 4) eps times it)
    W, b = np.asarray(PAIR_CASES[name][0], float), np.asarray(PAIR_CASES[name][1], float)
    imp = (1.0, 0.37)
    M = W.T @ W
    got = float(_pair_model_loss(M, b, probs, imp))
    want = expected_loss(_net(W, b), SparseFeatures(probs, imp)).value
    assert abs(got - want) <= 1e-13 * _scale(M, b, imp)
    assert got == pytest.approx(want, rel=1e-12, abs=1e-15)


def test_pair_closed_form_vectorised_random_against_reference():
    rng = np.random.default_rng(11)
    W = rng.normal(size=(40, 1, 2)) * 10.0 ** rng.integers(-4, 3, size=(40, 1, 1))
    b = rng.normal(size=(40, 2)) * 10.0 ** rng.integers(-4, 3, size=(40, 1))
    probs, imp = (0.4, 0.6), (1.0, 2.0)
    M = np.einsum("kmi,kmj->kij", W, W)
    got = _pair_model_loss(M, b, probs, imp)
    for k in range(0, 40, 4):  # the clip-and-triangulate reference is slow: every 4th
        want = reference_loss(W[k], b[k], probs, imp)
        assert got[k] == pytest.approx(want, rel=1e-9, abs=1e-13)  # reference's Delaunay
    for k in range(40):
        want = expected_loss(_net(W[k], b[k]), SparseFeatures(probs, imp)).value
        assert abs(got[k] - want) <= 1e-13 * _scale(M[k], b[k], imp)


def test_pair_gradient_against_differences():
    from toylab.superposition.loss import _pair_terms

    args = (np.array([0.8, 1.2]), np.array([-0.6, 0.3]), np.array([0.1, -0.4]))
    value, *grad = _pair_terms(*args, 0.3, 0.45, grad=True)
    for k in range(3):
        h = np.zeros(3)
        h[k] = 1e-6
        up = _pair_terms(*(a + d for a, d in zip(args, h, strict=True)), 0.3, 0.45)[0]
        down = _pair_terms(*(a - d for a, d in zip(args, h, strict=True)), 0.3, 0.45)[0]
        # central differences: O(h²) truncation and O(eps/h) rounding, ~1e-9
        np.testing.assert_allclose(grad[k], (up - down) / 2e-6, rtol=1e-7, atol=1e-9)
