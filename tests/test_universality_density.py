"""Density-vs-boundary scores (toylab.universality.density) on networks whose answer is known.

References are independent of the code under test: hand constructions with closed-form
zero sets, and least squares on samples drawn from the distribution with features built
from ``log_prob`` / ``posterior`` / ``class_log_joint`` directly.
"""

import math

import jax
import numpy as np
import pytest

from toylab import NotApplicable, ToylabError
from toylab.distributions import Rings, blobs_on_circle, two_blobs
from toylab.exact import analyze
from toylab.network import Network
from toylab.train import TrainConfig
from toylab.universality import density_scores, density_study

BLOBS = two_blobs()  # class 0 ~ N((2, 0), I), class 1 ~ N((-2, 0), I), equal weights
MU = np.array([2.0, 0.0])  # the class-0 blob


def boundary_detector() -> Network:
    """``hidden_0:0 = relu(x1)``: its zero set ``x1 = 0`` *is* the Bayes boundary of the two
    blobs, and it is a monotone function of the log-odds ``4 x1`` (linear in ``x1``)."""
    return Network.from_weights(
        [np.array([[1.0], [0.0]]), np.array([[-1.0, 1.0]])], [np.zeros(1), np.zeros(2)]
    )


def density_detector(radius: float = 2.0) -> Network:
    """``hidden_1:0 = relu(radius - |x - MU|_oct)``: a bump over the class-0 blob.

    ``hidden_0`` computes ``relu(±u_j·(x - MU))`` for four directions ``u_j`` at 0, 45, 90
    and 135 degrees, so ``relu(t) + relu(-t) = |t|`` and ``sum_j |u_j·(x - MU)|`` is a norm
    whose unit ball is a regular octagon; ``hidden_1:0`` is positive inside the octagon of
    that norm-radius (scaled so that it reaches ``radius`` along the axes) and its level
    sets are octagons around ``MU``, close to the circles that are the blob's density
    level sets.
    """
    ang = np.arange(4) * np.pi / 4
    u = np.stack([np.cos(ang), np.sin(ang)])  # (2, 4)
    w0 = np.concatenate([u, -u], axis=1)
    b0 = -(MU @ w0)
    w1 = -np.ones((8, 1)) / (1 + math.sqrt(2))  # |t| (1 + 2 cos 45°) along an axis
    return Network.from_weights(
        [w0, w1, np.array([[1.0, -1.0]])], [b0, np.array([radius]), np.zeros(2)]
    )


def _sample_r2(net, dist, key, num_samples=100_000, seed=0):
    """Independent reference: least squares with intercept on samples, features built
    from the distribution's own log_prob / posterior / class_log_joint."""
    x = dist.sample_numpy(np.random.default_rng(seed), num_samples)
    a = np.asarray(net.forward(x)[key][:, 0], np.float64)
    logp = dist.log_prob(x)
    joint = np.exp(dist.class_log_joint(x))
    post = dist.posterior(x)
    dens = np.column_stack([logp, joint])
    bnd = np.column_stack([np.log(post[:, 1]) - np.log(post[:, 0]), post[:, 1]])

    def r2(f):
        f = np.column_stack([np.ones(len(a)), f])
        coef, *_ = np.linalg.lstsq(f, a, rcond=None)
        res = a - f @ coef
        return 1 - res.var() / a.var()

    return r2(dens), r2(bnd), r2(np.column_stack([dens, bnd]))


def _se_bound(r2, n):
    # delta-method standard error of a sample R², 2 sqrt(R²) (1 - R²) / sqrt(n), at most
    # 0.77 / sqrt(n); the tolerances below are 5 of these plus the quadrature's estimate
    return 2 * math.sqrt(max(r2, 0.0)) * (1 - r2) / math.sqrt(n) + 1e-9


@pytest.fixture(scope="module")
def boundary():
    return density_scores(boundary_detector(), BLOBS)


@pytest.fixture(scope="module")
def density():
    return density_scores(density_detector(), BLOBS)


def test_boundary_detector_scores_boundary(boundary):
    r = boundary
    assert r.neurons == ("hidden_0:0",)
    s = r.scores
    # relu(x1) = x1/2 + |x1|/2: the log-odds (4 x1) carry the linear half and the posterior
    # sigmoid(4 x1) part of |x1|; the density features know |x1| only through log p and
    # through which blob is nearer, so the boundary family explains clearly more (margin
    # 0.2: measured 0.84 vs 0.52) and the density adds almost nothing on top of it
    assert s["r2_boundary"][0] > s["r2_density"][0] + 0.2
    assert r.unique_boundary[0] > 0.2 and r.unique_density[0] < 0.05
    assert r.labels[0] == "boundary"
    # the zero set x1 = 0 is the Bayes boundary: normals parallel (|cos| = 1), log-odds 0
    # on it; by symmetry grad log p = (0, -x2) there, perpendicular to the normal (cos 0).
    # Tolerance: central differences (step 1.4e-4) are exact for the linear log-odds up to
    # rounding, ~1e-10; log p's gradient x1-component vanishes by symmetry to ~1e-9
    assert s["boundary_alignment"][0] == pytest.approx(1.0, abs=1e-6)
    assert s["density_alignment"][0] < 1e-6
    assert s["boundary_offset"][0] < 1e-6
    # closed form: ∫_{x1=0} p ds = 2 * 0.5 phi(2) * ∫ phi(x2) dx2 = phi(2) (the support box
    # cuts the line 12 standard deviations out: a 1e-33 relative truncation)
    phi2 = math.exp(-2.0) / math.sqrt(2 * math.pi)
    # the quadrature's error estimate covers the true error, and is small
    err = r.errors["zero_set_mass"][0]
    assert abs(s["zero_set_mass"][0] - phi2) <= err < 1e-6
    assert r.tiers["r2_boundary"] == "estimated" and r.tiers["boundary_alignment"] == "estimated"


def test_density_detector_scores_density(density):
    r = density
    i = r.neurons.index("hidden_1:0")
    s = r.scores
    # the bump is a function of the distance to the class-0 blob, like p(x, y=0) (measured
    # R² 0.99); it correlates with the posterior only because it sits on class 0's side
    # (measured 0.53): margin 0.2
    assert s["r2_density"][i] > s["r2_boundary"][i] + 0.2
    assert r.unique_density[i] > 0.2 and r.unique_boundary[i] < 0.05
    assert r.labels[i] == "density"
    # its zero set is an octagon around the blob: normals within 22.5° of the radial
    # direction, which is grad log p's near the blob (cos >= cos 22.5° = 0.92 there,
    # measured 0.96), while the Bayes boundary's normal e1 meets the octagon's eight
    # normals at |cos| = 1, 0.92, 0.71, 0.38 (mean 0.75; measured 0.68 under p)
    assert s["density_alignment"][i] > 0.9
    assert s["density_alignment"][i] > s["boundary_alignment"][i] + 0.15
    # the zero set lies far from the Bayes boundary: mean |log-odds| there is large
    assert s["boundary_offset"][i] > 4.0


def test_quadrature_matches_independent_sample_regression(boundary, density):
    n = 100_000  # one sample size everywhere: JAX compiles a distribution's sampler per size
    for res, net, key, i in (
        (boundary, boundary_detector(), "hidden_0", 0),
        (density, density_detector(), "hidden_1", density.neurons.index("hidden_1:0")),
    ):
        ref = _sample_r2(net, BLOBS, key, num_samples=n, seed=1)
        for name, r in zip(("r2_density", "r2_boundary", "r2_joint"), ref, strict=True):
            tol = 5 * 0.77 / math.sqrt(n) + res.errors[name][i]
            assert res.scores[name][i] == pytest.approx(r, abs=tol), (name, key)


def test_sampled_method_agrees_within_its_interval(boundary):
    r = density_scores(boundary_detector(), BLOBS, method="sampled", num_samples=100_000, seed=3)
    assert r.tiers["r2_density"] == "sampled" and r.tier == "sampled"
    for name in ("r2_density", "r2_boundary", "r2_joint"):
        # a 99.9% interval: 2x its half-width leaves room for the batch-means
        # approximation of the interval (failure probability well below 1e-3)
        half = r.errors[name][0]
        assert 0 < half < 0.02
        assert abs(r.scores[name][0] - boundary.scores[name][0]) < 2 * half, name


def test_rings_quadrature_and_smooth_network():
    rings = Rings(radii=(1.0, 2.5), widths=(0.3, 0.3))
    rng = np.random.default_rng(0)
    w = [rng.normal(size=(2, 4)), rng.normal(size=(4, 2))]
    b = [rng.normal(size=4) * 0.5, np.zeros(2)]
    net = Network.from_weights(w, b)
    q = density_scores(net, rings)
    assert q.tiers["r2_density"] == "estimated"
    live = ~q.dead
    ref_n = 100_000
    x = np.asarray(rings.sample(jax.random.key(5), ref_n).x, np.float64)
    a = net.forward(x)["hidden_0"]
    logp, joint, post = rings.log_prob(x), np.exp(rings.class_log_joint(x)), rings.posterior(x)
    bnd = np.column_stack([np.log(post[:, 1] / post[:, 0]), post[:, 1]])
    f = np.column_stack([np.ones(ref_n), logp, joint, bnd])
    for i in np.flatnonzero(live):
        coef, *_ = np.linalg.lstsq(f, a[:, i], rcond=None)
        ref = 1 - (a[:, i] - f @ coef).var() / a[:, i].var()
        tol = 5 * 0.77 / math.sqrt(ref_n) + q.errors["r2_joint"][i]
        assert q.scores["r2_joint"][i] == pytest.approx(ref, abs=tol)
    # tanh has no exact partition: the R² are sampled, the zero-set scores absent
    smooth = Network.from_weights(w, b, activation="tanh")
    with pytest.raises(NotApplicable, match="sampled"):
        density_scores(smooth, rings, method="quadrature")
    s = density_scores(smooth, rings, num_samples=100_000)
    assert s.tiers["r2_density"] == "sampled" and s.tiers["boundary_alignment"] is None
    assert np.all(np.isnan(s.scores["boundary_alignment"]))


def test_three_classes_match_sample_regression():
    # K = 3: two log-odds against class 0 and two posteriors; the reference builds them
    # from the distribution's posterior directly
    dist = blobs_on_circle(k=3, radius=2.0, scale=0.8, labels="distinct")
    rng = np.random.default_rng(1)
    net = Network.from_weights([rng.normal(size=(2, 3)), rng.normal(size=(3, 3))])
    q = density_scores(net, dist)
    n = 100_000
    x = dist.sample_numpy(np.random.default_rng(2), n)
    a = net.forward(x)["hidden_0"]
    post = dist.posterior(x)
    dens = np.column_stack([dist.log_prob(x), np.exp(dist.class_log_joint(x))])
    bnd = np.column_stack([np.log(post[:, 1:] / post[:, :1]), post[:, 1:]])
    for name, f in (("r2_density", dens), ("r2_boundary", bnd)):
        f = np.column_stack([np.ones(n), f])
        for i in np.flatnonzero(~q.dead):
            coef, *_ = np.linalg.lstsq(f, a[:, i], rcond=None)
            ref = 1 - (a[:, i] - f @ coef).var() / a[:, i].var()
            tol = 5 * 0.77 / math.sqrt(n) + q.errors[name][i]
            assert q.scores[name][i] == pytest.approx(ref, abs=tol), (name, i)
    live = ~q.dead & (q.scores["zero_set_mass"] > 0)
    assert np.all(
        (q.scores["boundary_alignment"][live] >= 0)
        & (q.scores["boundary_alignment"][live] <= 1 + 1e-6)
    )


def test_dead_unit_and_bad_input():
    net = Network.from_weights(
        [np.array([[1.0, 0.0], [0.0, 0.0]]), np.ones((2, 2))], [np.array([0.0, -1.0]), np.zeros(2)]
    )
    r = density_scores(net, BLOBS)
    assert list(r.dead) == [False, True] and r.labels[1] == "dead"
    assert np.isnan(r.scores["r2_density"][1])
    assert r.scores["zero_set_mass"][1] == 0.0  # a constant pre-activation has no zero set
    with pytest.raises(ToylabError, match="method"):
        density_scores(net, BLOBS, method="exact")
    with pytest.raises(ToylabError, match="analysis"):  # an analysis of another network
        density_scores(net, BLOBS, analysis=analyze(boundary_detector(), BLOBS))
    from toylab.distributions import make

    with pytest.raises(NotApplicable, match="class densities"):
        density_scores(net, make("modular_arithmetic", p=5))


def test_tiny_study_reports_every_unit():
    cfg = TrainConfig(num_steps=200, log_every=200, learning_rate=0.02)
    res = density_study(
        {"two_blobs": BLOBS}, widths=(3,), depths=(1,), seeds=(0, 1), train_config=cfg
    )
    assert len(res.rows) == 2 * 3
    assert {r["seed"] for r in res.rows} == {0, 1}
    (summary,) = res.summary()
    assert summary["units"] == 6 and summary["layer"] == "hidden_0"
    assert summary["accuracy"] > 0.9  # the blobs' Bayes accuracy is 0.977
    md = res.to_markdown()
    assert "two_blobs" in md and res.tier == "estimated"
    with pytest.raises(ToylabError, match="widths"):
        density_study({"two_blobs": BLOBS}, widths=())
    with pytest.raises(ToylabError, match="seeds"):
        density_study({"two_blobs": BLOBS}, seeds=(1, 1))


def test_scores_display_draws_every_live_unit(density):
    import matplotlib.pyplot as plt

    from toylab.viz.density import DensityScoresDisplay

    disp = DensityScoresDisplay.from_result(density)
    assert len(disp.r2_density) == len(density.neurons)  # the octagon net has no dead unit
    ax = disp.plot()
    points = sum(len(c.get_offsets()) for c in ax.collections[1:])  # [0] is the band
    assert points == len(density.neurons)
    plt.close(ax.figure)
