"""Sampled methods vs the exact answer: rates, failure modes, exact cross-checks."""

from __future__ import annotations

import json
import math
import types

import jax
import numpy as np
import pytest
from scipy.special import ndtr

from toylab.distributions import two_blobs
from toylab.exact import analyze
from toylab.methods import (
    Circle,
    Line,
    ablation,
    activation_patching,
    attribution,
    compare,
    compare_run,
    dataset_examples,
    exact_cdf,
    feature_visualization,
    local_maxima,
    report_lines,
    selectivity,
    sweep,
)
from toylab.methods._core import as_nets, np_flat, np_grad
from toylab.methods.sweeps import eval_curve, exact_curve
from toylab.models import MLP, ablate


def random_mlp(seed: int, widths=(2, 8, 8, 2), scale: float = 0.7) -> MLP:
    rng = np.random.default_rng(seed)
    ws = [rng.normal(0, scale, (a, b)) for a, b in zip(widths[:-1], widths[1:], strict=True)]
    bs = [rng.normal(0, 0.5, b) for b in widths[1:]]
    return MLP.from_weights(ws, bs)


def slope(budgets, errors) -> float:
    """Least-squares slope of log error on log budget (as diffrax's order tests)."""
    return float(np.polyfit(np.log(budgets), np.log(errors), 1)[0])


DIST = two_blobs()


# --------------------------------------------------------------------------- rates


def test_riemann_ig_error_is_order_one_over_m_and_exact_ig_is_complete():
    models = [random_mlp(s) for s in range(3)]
    rng = np.random.default_rng(0)
    steps = [16, 32, 64, 128, 256]
    errs = np.zeros(len(steps))
    for _ in range(3):
        x, x0 = rng.uniform(-5, 5, 2), rng.uniform(-5, 5, 2)
        for i, m in enumerate(steps):
            res = attribution(models, "hidden_1:1", x, baseline=x0, num_steps=m)
            errs[i] += sum(r.ig_error for r in res)
            for r in res:  # exact IG: completeness to float64 rounding
                assert abs(r.exact_completeness_gap) < 1e-9
    # midpoint Riemann sums of a piecewise-constant integrand: error ~ 1/m
    assert -1.35 < slope(steps, errs) < -0.65, errs


def test_exact_ig_matches_a_very_fine_riemann_sum():
    model = random_mlp(3)
    net = as_nets("t", model)
    x, x0 = np.array([3.0, -2.0]), np.array([-4.0, 1.5])
    r = attribution(model, "output:0", x, baseline=x0, num_steps=8)
    n = 400_000
    s = (np.arange(n) + 0.5) / n
    _, flat = 0, 2 * 8 + 2 * 8  # output:0 sits after 2 x (pre, post) hidden layers
    g = np_grad(net.layers[0], net.acts, x0 + s[:, None] * (x - x0), flat).mean(0)
    fine = (x - x0) * g
    # fine-sum error <= (number of pieces) * max|grad| * |x - x0| / n
    bound = r.num_pieces * float(np.abs(g).max() + 10) * float(np.abs(x - x0).max()) / n
    assert np.abs(fine - r.exact_integrated_gradients).max() < bound + 1e-12
    assert r.num_pieces >= 2


def test_line_sweep_max_error_is_order_one_over_m_and_exact_curve_matches_forward():
    model = random_mlp(5)
    net = as_nets("t", model)
    path = Line((-7.0, -5.0), (7.5, 5.5))
    pts = [17, 33, 65, 129, 257]
    errs = [sweep(model, DIST, "hidden_1:2", key=jax.random.key(0), path=path,
                  num_points=m).max_error for m in pts]  # fmt: skip
    assert -1.35 < slope(pts, errs) < -0.65, errs
    flat = 16 + 8 + 2
    bounds, coefs = exact_curve(net.layers[0], net.acts, path, flat)
    t = np.linspace(0, 1, 5001)
    x = np.array(path.start) + t[:, None] * (np.subtract(path.end, path.start))
    ref = np_flat(net.layers[0], net.acts, x)[:, flat]
    assert np.abs(eval_curve("line", bounds, coefs, t) - ref).max() < 1e-11


def test_circle_sweep_is_bounded_and_exact_curve_matches_forward():
    model = random_mlp(6)
    net = as_nets("t", model)
    path = Circle((0.5, -0.5), (4.0, 2.0))
    res = [sweep(model, DIST, "hidden_1:4", key=jax.random.key(0), path=path, num_points=m)
           for m in (16, 64, 256)]  # fmt: skip
    for r in res:
        assert r.error_tier == "bounded" and r.max_error <= r.max_error_bound
    assert res[-1].max_error < res[0].max_error
    flat = 16 + 8 + 4
    bounds, coefs = exact_curve(net.layers[0], net.acts, path, flat)
    t = np.linspace(0, 2 * np.pi, 5001)
    v = np.array([3.5, 2.5])
    x = np.array([0.5, -0.5]) + np.cos(t)[:, None] * v + np.sin(t)[:, None] * np.array([-2.5, 3.5])
    ref = np_flat(net.layers[0], net.acts, x)[:, flat]
    assert np.abs(eval_curve("circle", bounds, coefs, t) - ref).max() < 1e-11


def test_monte_carlo_ablation_and_selectivity_errors_shrink_like_root_n():
    model = random_mlp(7)
    fire = analyze(model, DIST).moments["hidden_1"].firing_probability
    unit = int(np.argmin(np.abs(fire - 0.5)))  # a live neuron, so the error is not 0
    assert 0.05 < fire[unit] < 0.95
    sizes = [256, 1024, 4096, 16384]
    reps = 6
    abl_rms, sel_rms = [], []
    for n in sizes:
        a = s = 0.0
        for r in range(reps):
            key = jax.random.key(1000 * n + r)
            res = ablation(model, DIST, "hidden_0:3", key=key, mode="mean", num_samples=n)
            a += (res.accuracy_edited - res.exact_accuracy_edited) ** 2
            sel = selectivity(model, DIST, f"hidden_1:{unit}", key=key, num_samples=n)
            s += sel.error**2
        abl_rms.append(math.sqrt(a / reps))
        sel_rms.append(math.sqrt(s / reps))
    assert -0.8 < slope(sizes, abl_rms) < -0.25, abl_rms
    assert -0.8 < slope(sizes, sel_rms) < -0.25, sel_rms


# --------------------------------------------------------------------------- exact parts


def test_exact_cdf_agrees_with_monte_carlo_within_its_confidence_interval():
    model = random_mlp(8)
    ex = analyze(model, DIST)
    net = as_nets("t", model)
    n = 200_000
    x = np.asarray(DIST.sample(jax.random.key(3), n).x, np.float64)
    a = np_flat(net.layers[0], net.acts, x)[:, 16 + 8 + 1]
    ts = np.quantile(a, [0.3, 0.6, 0.9, 0.99])
    exact = exact_cdf(ex, DIST, "hidden_1", 1, ts)
    mc = (a[:, None] < ts[None]).mean(0)
    se = np.sqrt(exact * (1 - exact) / n)
    # 5 standard errors: a failure budget of ~1e-6 per point, plus the float32 sampler
    assert np.all(np.abs(mc - exact) < 5 * se + 2e-5), (mc, exact)


def test_mean_ablation_exact_accuracy_matches_analyze_of_the_edited_network():
    model = random_mlp(9)
    res = ablation(model, DIST, ["hidden_0:1", "hidden_0:5"], key=jax.random.key(0), mode="mean")
    ex = analyze(model, DIST)
    means = {
        n: float(ex.moments["hidden_0"].mean[int(n[-1])]) for n in ("hidden_0:1", "hidden_0:5")
    }
    ref = analyze(ablate(model, list(means), means), DIST)
    assert abs(res.exact_accuracy_edited - ref.accuracy) < 1e-6
    lo, hi = res.accuracy_edited_ci
    assert lo - 1e-3 <= res.exact_accuracy_edited <= hi + 1e-3


def test_activation_patching_float32_matches_float64_and_self_patch_is_identity():
    model = random_mlp(10)
    x = np.array([[1.0, -2.0], [0.5, 0.5]])
    r = activation_patching(model, "hidden_0:2", x, x[::-1])
    assert r.error < 1e-4
    same = activation_patching(model, "hidden_0:2", x, x)
    assert np.abs(same.effect).max() < 1e-5


# --------------------------------------------------------------------------- failure modes


def _two_bump_neuron() -> MLP:
    """hidden_1:0 = relu(tent_A(x) + tent_B(x)): a wide low bump and a narrow high one.

    ``tent(x; c, w, h) = h/w [relu(x-c+w) - 2 relu(x-c) + relu(x-c-w)]`` uses three
    first-layer units (breakpoints c-w, c, c+w); the second layer sums the tents.
    A: centre -3, half-width 4, height 1 (basin of 8 units of the 16.4-wide box);
    B: centre 5, half-width 0.5, height 2 (basin of 1 unit).
    """
    pieces = [(-3.0, 4.0, 1.0), (5.0, 0.5, 2.0)]
    w0 = np.zeros((2, 6))
    b0 = np.zeros(6)
    w1 = np.zeros((6, 1))
    for i, (c, w, h) in enumerate(pieces):
        for j, (shift, coef) in enumerate(((-w, 1.0), (0.0, -2.0), (w, 1.0))):
            w0[0, 3 * i + j] = 1.0
            b0[3 * i + j] = -(c + shift)
            w1[3 * i + j, 0] = coef * h / w
    return MLP.from_weights([w0, w1, np.ones((1, 2))], [b0, np.zeros(1), np.zeros(2)])


def test_two_maxima_gradient_ascent_mostly_finds_the_lesser_one():
    model = _two_bump_neuron()
    ex = analyze(model, DIST)
    lm = local_maxima(ex.geometry, "hidden_1", 0)
    assert len(lm.values) == 2
    np.testing.assert_allclose(lm.values, [2.0, 1.0], atol=1e-5)
    r = feature_visualization(model, DIST, "hidden_1:0", key=jax.random.key(0), num_starts=128)
    assert r.num_local_maxima == 2 and r.num_found == 2
    # starts that reach the global max are few; the lesser max collects far more
    assert r.fraction_at_max < 0.2
    assert r.basin_counts[1] > 3 * r.basin_counts[0]
    assert abs(r.exact_max - 2.0) < 1e-5
    few = feature_visualization(model, DIST, "hidden_1:0", key=jax.random.key(1), num_starts=2)
    assert few.num_found <= 2


def test_maximum_where_the_data_has_no_mass_is_out_of_reach_of_dataset_examples():
    # hidden_0:0 = relu(y - 5): the blobs sit at y ~ N(0, 1), so P(a > 0) = Phi(-5)
    model = MLP.from_weights([[[0.0], [1.0]], [[1.0, -1.0]]], [[-5.0], [0.0, 0.0]])
    r = dataset_examples(model, DIST, "hidden_0:0", key=jax.random.key(0), num_samples=2048)
    ex = analyze(model, DIST)
    p_fire = 1 - exact_cdf(ex, DIST, "hidden_0", 0, [0.0], strict=False)[0]
    assert abs(p_fire - ndtr(-5.0)) < 1e-10
    assert r.relative_gap > 0.9  # the examples never see the maximum ...
    assert r.unreachable and r.expected_top < 1e-3  # ... and the exact CDF says why
    assert r.p_hit[1] < 1e-3
    assert r.p_hit[0] <= r.p_hit[1]


# --------------------------------------------------------------------------- ensembles


def test_methods_run_on_an_ensemble_and_match_single_members():
    models = [random_mlp(s) for s in (11, 12, 13)]
    path = Line((-6.0, 1.0), (6.0, -2.0))
    ens = sweep(models, DIST, "hidden_0:4", key=jax.random.key(0), path=path)
    assert isinstance(ens, tuple) and len(ens) == 3
    for m, r in zip(models, ens, strict=True):
        single = sweep(m, DIST, "hidden_0:4", key=jax.random.key(0), path=path)
        np.testing.assert_allclose(r.values, single.values, rtol=1e-6, atol=1e-6)
    fv = feature_visualization(models, DIST, "hidden_1:3", key=jax.random.key(0), num_starts=16)
    for m, r in zip(models, fv, strict=True):
        assert abs(r.exact_max - analyze(m, DIST).extrema("hidden_1").max[3]) < 1e-12
        assert r.gap > -1e-4  # no start beats the exact maximum


def test_compare_run_writes_csv_and_json(tmp_path):
    from toylab.methods.compare import CompareConfig

    models = [random_mlp(s, widths=(2, 4, 4, 2)) for s in (20, 21)]
    run = types.SimpleNamespace(path=tmp_path, dist=DIST, models=lambda: models)
    res = compare_run(run, key=jax.random.key(0), budgets=CompareConfig.quick())
    rows = (tmp_path / "compare" / "compare.csv").read_text().splitlines()
    assert len(rows) == 1 + 2 * 8 * 7
    data = json.loads((tmp_path / "compare" / "compare.json").read_text())
    assert data["summary"]["feature_visualization"]["rows"] == 16
    assert data["summary"]["joint_tuning"]["rows"] == 16
    assert any("feature_visualization" in line for line in report_lines(res))
    # every sampled value is finite; feature visualization never beats the exact max
    for r in res.rows:
        assert math.isfinite(r["sampled"])
        if r["method"] == "feature_visualization":
            assert r["sampled"] <= r["exact"] + 1e-4 * (1 + abs(r["exact"]))


def test_compare_rejects_smooth_networks():
    from toylab._errors import ToylabError

    model = MLP.from_weights([np.eye(2), np.ones((2, 2))], activation="tanh")
    with pytest.raises(ToylabError, match="piecewise-linear"):
        compare(model, DIST, key=jax.random.key(0))
