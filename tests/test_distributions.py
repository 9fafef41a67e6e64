"""Distributions against trusted references.

References: closed forms derived here, scipy.stats densities, scipy.integrate.quad,
independent polar-coordinate formulas, plain-Python enumeration, and Monte Carlo with
confidence intervals. Monte Carlo comparisons use a normal interval at failure rate
1e-6 per comparison (|z| <= 4.89) plus the reference's own stated error.
"""

from __future__ import annotations

import math
import tomllib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tomli_w
from _bayes_reference import max_mixture_1d
from scipy import integrate, special, stats

from toylab import ToylabError
from toylab.distributions import (
    BooleanFunction,
    GaussianMixture,
    MixtureArrays,
    ModularArithmetic,
    NoisyCurve,
    Rings,
    SparseFeatures,
    blobs_on_circle,
    examples,
    make,
    names,
    to_config,
    two_blobs,
    xor_blobs,
)
from toylab.distributions._atoms import GaussianAtoms, bayes_accuracy
from toylab.distributions._numerics import Z_999

Z_FAIL = stats.norm.isf(1e-6 / 2)  # two-sided normal quantile at failure rate 1e-6


def _random_spd(rng: np.random.Generator, d: int) -> np.ndarray:
    a = rng.normal(size=(d, d))
    return a @ a.T + 0.3 * np.eye(d)


def _quadrature_bayes(dist: GaussianMixture):
    """The generic quadrature, bypassing any closed form."""
    a = dist.arrays()
    with np.errstate(divide="ignore"):
        atoms = GaussianAtoms(a.means, a.covs, np.log(a.weights), a.classes, dist.num_classes)
    return bayes_accuracy(atoms)


def _max_joint_quad(dist, lo: float, hi: float) -> float:
    """``int max_k p(x, k) dx`` in 1-D by scipy.quad on the pieces between crossings,
    located by brentq (independent of the library's own quadrature)."""
    from scipy.optimize import brentq

    def lj(t):
        return dist.class_log_joint(np.array([[t]]))[0]

    grid = np.linspace(lo, hi, 4001)
    lab = np.argmax(dist.class_log_joint(grid[:, None]), -1)
    cuts = [lo]
    for i in np.nonzero(np.diff(lab))[0]:
        a, b = lab[i], lab[i + 1]
        cuts.append(
            brentq(lambda t, a=a, b=b: lj(t)[a] - lj(t)[b], grid[i], grid[i + 1], xtol=1e-15)
        )
    cuts.append(hi)
    total = 0.0
    for a, b in zip(cuts[:-1], cuts[1:], strict=True):
        k = int(np.argmax(lj(0.5 * (a + b))))
        total += integrate.quad(
            lambda t, k=k: math.exp(lj(t)[k]), a, b, epsabs=1e-15, epsrel=1e-13, limit=200
        )[0]
    return total


def _monte_carlo_bayes(dist, key, n=200_000):
    x = np.asarray(dist.sample(key, n).x, np.float64)
    m = np.max(dist.posterior(x), axis=-1)
    return m.mean(), m.std(ddof=1) / math.sqrt(n)


# --------------------------------------------------------------------------- Bayes accuracy


@pytest.mark.parametrize("seed", [0, 1])
def test_two_gaussians_shared_covariance_closed_form(seed: int) -> None:
    rng = np.random.default_rng(seed)
    cov = _random_spd(rng, 2)
    m0, m1 = rng.normal(size=2), rng.normal(size=2)
    dist = GaussianMixture((tuple(m0), tuple(m1)), (cov.tolist(), cov.tolist()))
    delta = math.sqrt((m0 - m1) @ np.linalg.solve(cov, m0 - m1))
    res = dist.bayes()
    assert res.tier == "exact"
    assert res.bayes_error == pytest.approx(special.ndtr(-delta / 2), abs=1e-14)
    # an independent route: nested quadrature of max_k p(x, k)
    quad = _quadrature_bayes(dist)
    assert quad.error < 1e-8
    assert abs(quad.accuracy - res.accuracy) <= quad.error + 1e-14


def test_two_gaussians_closed_form_in_3d_matches_monte_carlo() -> None:
    rng = np.random.default_rng(5)
    cov = _random_spd(rng, 3)
    dist = GaussianMixture(
        (tuple(rng.normal(size=3)), tuple(rng.normal(size=3))), (cov.tolist(),) * 2, (0.3, 0.7)
    )
    res = dist.bayes()
    assert res.tier == "exact"
    mc, se = _monte_carlo_bayes(dist, jax.random.key(0))
    assert abs(mc - res.accuracy) <= Z_FAIL * se


@pytest.mark.parametrize(("offset", "scale"), [(1.5, 1.0), (0.6, 0.8)])
def test_xor_blobs_closed_form(offset: float, scale: float) -> None:
    dist = xor_blobs(offset, scale)
    res = dist.bayes()
    r = offset / scale
    assert res.tier == "exact"
    assert res.accuracy == pytest.approx(special.ndtr(r) ** 2 + special.ndtr(-r) ** 2, abs=1e-15)
    quad = _quadrature_bayes(dist)
    assert quad.error < 1e-8
    assert abs(quad.accuracy - res.accuracy) <= quad.error + 1e-14


@pytest.mark.parametrize(
    "dist",
    [
        xor_blobs(1.0, 0.7),
        blobs_on_circle(6, 2.0, 0.6),
        blobs_on_circle(3, 1.5, 0.6, labels="distinct"),
        Rings((0.5, 1.2), (0.3, 0.3)),
        GaussianMixture(
            ((0.0,), (1.0,), (3.0,)), (((1.0,),), ((0.3,),), ((2.0,),)), None, (0, 1, 0)
        ),
    ],
    ids=["xor", "circle-alternating", "circle-distinct", "rings", "1d-multi-component"],
)
def test_bayes_matches_monte_carlo(dist) -> None:
    res = dist.bayes()
    mc, se = _monte_carlo_bayes(dist, jax.random.key(11))
    assert abs(mc - res.accuracy) <= Z_FAIL * se + res.error


def test_estimated_bayes_error_is_honest() -> None:
    """The 1-D generic path against scipy.quad with the crossings as break points."""
    dist = GaussianMixture(
        ((0.0,), (1.0,), (3.0,)), (((1.0,),), ((0.3,),), ((2.0,),)), (0.3, 0.3, 0.4), (0, 1, 0)
    )
    res = dist.bayes()
    assert res.tier == "estimated" and res.error < 1e-8

    ref = _max_joint_quad(dist, -15.0, 25.0)
    assert abs(res.accuracy - ref) <= res.error + 1e-12


def test_gaussian_1d_exact_against_quad() -> None:
    dist = GaussianMixture(((0.0,), (1.0,)), (((1.0,),), ((0.3,),)), (0.3, 0.7))
    res = dist.bayes()
    assert res.tier == "exact"

    ref = _max_joint_quad(dist, -15.0, 15.0)
    assert res.accuracy == pytest.approx(ref, abs=1e-12)


def test_monte_carlo_tier_in_3d_against_a_closed_form() -> None:
    """The sampled tier against an independent reference: a rotated 3-D mixture whose
    components differ only along one axis (so no closed form of the library applies,
    but the Bayes accuracy is the 1-D integral of the max, computed by mpmath)."""
    rng = np.random.default_rng(2)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    m1, s1, w, cls = [0.0, 1.2, 2.5], [1.0, 0.5, 0.8], [0.35, 0.4, 0.25], [0, 1, 0]
    means = [tuple(q @ np.array([m, 0.3, -0.2])) for m in m1]
    covs = [(q @ np.diag([s * s, 0.6, 1.3]) @ q.T) for s in s1]
    dist = GaussianMixture(means, [(0.5 * (c + c.T)).tolist() for c in covs], tuple(w), tuple(cls))
    a = dist.bayes(seed=0, num_samples=400_000)
    assert a.tier == "sampled" and a.error > 0
    assert a == dist.bayes(seed=0, num_samples=400_000)  # explicit seed: reproducible
    ref = max_mixture_1d(m1, s1, w, cls)
    # a.error is the 99.9% half-width; widened to failure rate 1e-6
    assert abs(a.accuracy - ref) <= a.error * Z_FAIL / Z_999


CONTINUOUS = [
    d
    for d in [
        *examples().values(),
        *(
            make(n)
            for n in names()
            if n not in {"gaussian_mixture", "rings", "noisy_curve", "sparse_features"}
        ),
    ]
    if d.kind == "continuous" and d.num_classes > 0
]


@pytest.mark.parametrize("dist", CONTINUOUS, ids=lambda d: type(d).__name__)
def test_continuous_classification_contract(dist) -> None:
    """base.py: class_log_joint and outside_mass, consistent with log_prob and posterior."""
    x = np.asarray(dist.sample(jax.random.key(4), 300).x, np.float64)
    box = dist.domain
    x = np.concatenate([x, np.random.default_rng(0).uniform(box.low, box.high, (100, dist.dim))])
    lj = dist.class_log_joint(x)
    assert lj.shape == (x.shape[0], dist.num_classes) and lj.dtype == np.float64
    lp = dist.log_prob(x)
    ok = np.isfinite(lp)
    assert ok.mean() > 0.9
    np.testing.assert_allclose(special.logsumexp(lj[ok], axis=-1), lp[ok], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np.exp(lj[ok] - lp[ok, None]), dist.posterior(x[ok]), atol=1e-12)
    mass = dist.outside_mass
    assert isinstance(mass, float) and 0.0 <= mass <= 1e-6


def test_mixture_arrays_are_the_exact_interface() -> None:
    dist = GaussianMixture(
        ((0.0, 1.0), (2.0, 0.0), (1.0, 1.0)),
        (((1.0, 0.2), (0.2, 0.5)),) * 3,
        (0.2, 0.3, 0.5),
        (1, 0, 1),
    )
    a = dist.arrays()
    assert isinstance(a, MixtureArrays) and a._fields == ("means", "covs", "weights", "classes")
    assert a.means.shape == (3, 2) and a.covs.shape == (3, 2, 2) and a.weights.shape == (3,)
    assert a.means.dtype == a.covs.dtype == a.weights.dtype == np.float64
    assert a.classes.tolist() == [1, 0, 1] and math.fsum(a.weights) == pytest.approx(1.0, abs=1e-15)
    np.testing.assert_array_equal(a.covs[2], [[1.0, 0.2], [0.2, 0.5]])
    a.means[0, 0] = 99.0  # a copy: the distribution is unchanged
    assert dist.arrays().means[0, 0] == 0.0


# --------------------------------------------------------------------------- densities


@pytest.mark.parametrize("d", [1, 2, 3])
def test_gaussian_mixture_log_prob_matches_scipy(d: int) -> None:
    rng = np.random.default_rng(d)
    k = 3
    means = rng.normal(size=(k, d))
    covs = [_random_spd(rng, d) for _ in range(k)]
    w = rng.dirichlet(np.ones(k))
    w[-1] = 1 - w[:-1].sum()
    dist = GaussianMixture(means.tolist(), [c.tolist() for c in covs], w.tolist(), (0, 1, 0))
    x = rng.normal(size=(50, d)) * 2
    ref = [w[j] * stats.multivariate_normal(means[j], covs[j]).pdf(x) for j in range(k)]
    assert np.allclose(dist.prob(x), np.sum(ref, 0), rtol=1e-12, atol=0)
    post = dist.posterior(x)
    assert np.allclose(post[:, 1], ref[1] / np.sum(ref, 0), rtol=1e-10, atol=1e-15)


@pytest.mark.parametrize("radial", ["gaussian", "uniform"])
def test_rings_density_polar(radial: str) -> None:
    radii, widths, weights = (0.6, 1.5), (0.3, 0.4), (0.35, 0.65)
    dist = Rings(radii, widths, weights, radial=radial)
    rng = np.random.default_rng(0)
    x = rng.uniform(-2.5, 2.5, size=(200, 2))
    r = np.hypot(*x.T)
    # independent: radial laws from scipy.stats, then the Jacobian 1 / (2 pi r)
    if radial == "gaussian":
        laws = [
            stats.truncnorm(-m / s, np.inf, loc=m, scale=s)
            for m, s in zip(radii, widths, strict=True)
        ]
    else:
        laws = [stats.uniform(m - s, 2 * s) for m, s in zip(radii, widths, strict=True)]
    radial_pdf = sum(w * law.pdf(r) for w, law in zip(weights, laws, strict=True))
    assert np.allclose(dist.prob(x), radial_pdf / (2 * np.pi * r), rtol=1e-12, atol=0)
    # the radial marginal integrates to one
    edges = sorted(
        {
            0.0,
            5.0,
            *(m - s for m, s in zip(radii, widths, strict=True)),
            *(m + s for m, s in zip(radii, widths, strict=True)),
        }
    )
    tot = sum(
        integrate.quad(
            lambda t: sum(w * law.pdf(t) for w, law in zip(weights, laws, strict=True)), a, b
        )[0]
        for a, b in zip(edges[:-1], edges[1:], strict=True)
    )
    assert tot == pytest.approx(1.0, abs=1e-9)


CURVE_CASES = [
    NoisyCurve("two_moons", noise=0.1),
    NoisyCurve("spiral", noise=0.08, turns=1.25),
    NoisyCurve("sine", noise=0.2, amplitude=0.8, frequency=2.0, gap=0.7),
]


@pytest.mark.parametrize("dist", CURVE_CASES, ids=lambda d: d.curve)
def test_curve_density_matches_quad(dist: NoisyCurve) -> None:
    t0, t1 = dist.interval
    rng = np.random.default_rng(1)
    box = dist.domain
    pts = np.concatenate(
        [
            np.asarray(dist.sample(jax.random.key(0), 3).x, np.float64),
            rng.uniform(box.low, box.high, size=(3, 2)),
            [[box.high[0] + 1.0, box.high[1] + 0.5]],  # far beyond the curves
        ]
    )
    lj = dist.class_log_joint(pts)
    tt = np.linspace(t0, t1, 100_001)
    for i, p in enumerate(pts):
        for k in (0, 1):
            e = np.sum((p - dist.points(k, tt)) ** 2, -1) / (2 * dist.noise**2)
            shift, t_best = e.min(), tt[np.argmin(e)]

            def f(t, p=p, k=k, shift=shift):
                return math.exp(shift - np.sum((p - dist.points(k, t)) ** 2) / (2 * dist.noise**2))

            brk = [b for b in t_best + np.array([-0.02, 0.0, 0.02]) if t0 < b < t1]
            val = integrate.quad(f, t0, t1, epsabs=0, epsrel=1e-13, limit=1000, points=brk)[0]
            ref = math.log(0.5 * val / (t1 - t0)) - shift - math.log(2 * math.pi * dist.noise**2)
            assert abs(math.expm1(lj[i, k] - ref)) <= dist.density_rtol
    assert np.all(dist.density_error(pts) <= dist.density_rtol)


def test_sparse_features() -> None:
    dist = SparseFeatures((0.2, 0.5, 1.0), importance=(1.0, 0.5, 0.25))
    x = np.array([[0.0, 0.3, 1.0], [0.5, 0.0, 0.2], [0.0, 0.0, 0.0], [0.1, 1.2, 0.5]])
    ref = [
        math.log(0.8 * 0.5 * 1.0),
        math.log(0.2 * 0.5 * 1.0),
        -math.inf,  # feature 2 is always active
        -math.inf,  # 1.2 is outside (0, 1]
    ]
    assert np.allclose(dist.log_prob(x), ref, rtol=1e-15)
    b = dist.sample(jax.random.key(0), 20_000)
    assert np.array_equal(b.x, b.y) and b.x.shape == (20_000, 3)
    active = np.asarray(b.latent["active"])
    assert np.array_equal(active, np.asarray(b.x) > 0)
    freq = active.mean(0)
    p = np.array(dist.probs)
    se = np.sqrt(p * (1 - p) / 20_000)
    assert np.all(np.abs(freq - p) <= Z_FAIL * se + 1e-12)
    assert dist.importance == (1.0, 0.5, 0.25) and dist.num_classes == 0
    with pytest.raises(ToylabError, match="no classes"):
        dist.posterior(x)
    with pytest.raises(ToylabError, match="num_classes=0"):
        dist.bayes()


# --------------------------------------------------------------------------- finite tasks


@pytest.mark.parametrize("op", ["add", "sub", "mul"])
def test_modular_arithmetic_enumeration(op: str) -> None:
    p = 7
    dist = ModularArithmetic(p, op)
    dom = dist.domain
    fn = {"add": lambda a, b: (a + b) % p, "sub": lambda a, b: (a - b) % p}.get(
        op, lambda a, b: (a * b) % p
    )
    assert dom.size == p * p and dom.dim == 2 * p
    for (a, b), x, lab in zip(dom.latent, dom.inputs, dom.labels, strict=True):
        assert x[a] == 1 and x[p + b] == 1 and x.sum() == 2
        assert lab == fn(int(a), int(b))
    batch = dist.sample(jax.random.key(0), 500)
    ab = np.asarray(batch.latent)
    assert np.array_equal(np.asarray(batch.y), [fn(int(a), int(b)) for a, b in ab])
    assert dist.bayes().accuracy == pytest.approx(1.0, abs=1e-15) and dist.bayes().tier == "exact"
    bad = dom.inputs[:3].copy()
    bad[:, 0] += 1.0
    assert np.all(np.isneginf(dist.log_prob(bad)))
    assert np.allclose(dist.log_prob(dom.inputs), -2 * math.log(p))


@pytest.mark.parametrize(
    ("fn", "subset"),
    [("parity", None), ("majority", (0, 2, 4)), ("and", (1, 3)), ("or", None), ("majority", None)],
)
def test_boolean_functions(fn: str, subset) -> None:
    n = 5
    dist = BooleanFunction(n, fn, subset)
    s = list(range(n)) if subset is None else list(subset)
    ref = {
        "parity": lambda b: sum(b) % 2,
        "majority": lambda b: int(sum(b) > len(b) / 2),
        "and": lambda b: int(all(b)),
        "or": lambda b: int(any(b)),
    }[fn]
    dom = dist.domain
    for x, lab, idx in zip(dom.inputs, dom.labels, dom.latent, strict=True):
        bits = [int(v) for v in x]
        assert idx == sum(bit << j for j, bit in enumerate(bits))
        assert lab == ref([bits[j] for j in s])
    post = dist.posterior(dom.inputs)
    assert np.array_equal(np.argmax(post, -1), dom.labels) and np.all(post.max(-1) == 1)
    batch = dist.sample(jax.random.key(1), 200)
    assert batch.x.dtype == jnp.float32
    assert np.array_equal(dom.labels[np.asarray(batch.latent)], np.asarray(batch.y))


# --------------------------------------------------------------------------- validation


BAD_INPUTS = [
    (lambda: two_blobs(scale=-1.0), "scale"),
    (lambda: two_blobs(distance=0.0), "distance"),
    (lambda: GaussianMixture(((0.0, 0.0),), (((1.0, 0.5), (0.4, 1.0)),)), "symmetric"),
    (lambda: GaussianMixture(((0.0, 0.0),), (((1.0, 2.0), (2.0, 1.0)),)), "positive definite"),
    (lambda: GaussianMixture(((0.0,), (1.0,)), (((1.0,),), ((1.0,),)), (0.7, 0.7)), "weights"),
    (lambda: GaussianMixture(((0.0,), (1.0,)), (((1.0,),), ((1.0,),)), (1.5, -0.5)), "weights"),
    (lambda: GaussianMixture(((0.0, 0.0), (1.0,)), (((1.0,),), ((1.0,),))), r"means\[1\]"),
    (lambda: GaussianMixture(((0.0,), (1.0,)), (((1.0,),),)), "covs"),
    (lambda: GaussianMixture(((0.0,), (1.0,)), (((1.0,),), ((1.0,),)), None, (0, 2)), "classes"),
    (lambda: Rings((1.0, 2.0), (0.1,)), "widths"),
    (lambda: Rings((1.0,), (0.0,)), "widths"),
    (lambda: Rings((0.2,), (0.5,), radial="uniform"), "widths"),
    (lambda: Rings((1.0,), (0.1,), radial="gaus"), "radial"),
    (lambda: NoisyCurve("spirals"), "curve"),
    (lambda: NoisyCurve("spiral", noise=-0.1), "noise"),
    (lambda: SparseFeatures((0.5, 1.5)), "probs"),
    (lambda: SparseFeatures((0.5, 0.5), importance=(1.0,)), "importance"),
    (lambda: ModularArithmetic(12), "p"),
    (lambda: ModularArithmetic(7, op="div"), "op"),
    (lambda: BooleanFunction(4, subset=(0, 4)), "subset"),
    (lambda: BooleanFunction(4, fn="xor"), "fn"),
    (lambda: blobs_on_circle(k=1), "k"),
    (lambda: make("two_blob"), "two_blobs"),
    (lambda: make("two_blobs", distnce=2.0), "distance"),
    (lambda: make("gaussian_mixture", means=[[0.0]]), "covs"),
]


@pytest.mark.parametrize(("build", "needle"), BAD_INPUTS, ids=[n for _, n in BAD_INPUTS])
def test_bad_inputs_raise_clear_errors(build, needle: str) -> None:
    with pytest.raises(ToylabError, match=needle):
        build()


def test_prime_error_suggests_neighbours() -> None:
    with pytest.raises(ToylabError, match=r"p must be prime, got 12\. Nearest primes: 11 and 13"):
        ModularArithmetic(12)


# --------------------------------------------------------------------------- registry


def test_registry_round_trip_through_toml() -> None:
    required = {"gaussian_mixture", "rings", "noisy_curve", "sparse_features"}
    dists = list(examples().values()) + [make(name) for name in names() if name not in required]
    for dist in dists:
        cfg = to_config(dist)
        text = tomli_w.dumps({"distribution": cfg})
        back = make(**tomllib.loads(text)["distribution"])
        assert back == dist and type(back) is type(dist)
        assert hash(back) == hash(dist)


def test_registry_names_and_messages() -> None:
    assert {
        "gaussian_mixture",
        "two_blobs",
        "xor_blobs",
        "blobs_on_circle",
        "rings",
        "noisy_curve",
        "spiral",
        "two_moons",
        "sine",
        "sparse_features",
        "modular_arithmetic",
        "boolean",
    } <= set(names())
    with pytest.raises(ToylabError, match="Did you mean 'xor_blobs'.*Valid names: "):
        make("xor_blob")
    with pytest.raises(ToylabError, match="Did you mean 'noise'.*Valid parameters: "):
        make("two_moons", nosie=0.1)
    assert make("spiral", noise=0.2) == NoisyCurve("spiral", noise=0.2)
    assert make("two_blobs", distance=3.0) == two_blobs(3.0)
