"""Sampled methods vs the exact answer: rates, failure modes, cross-checks against
independent references (float64 JAX autodiff, NumPy forward passes written here, Monte
Carlo with stated failure budgets)."""

from __future__ import annotations

import json
import math
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import ndtr

from toylab._errors import NotApplicable
from toylab.distributions import two_blobs
from toylab.exact import analyze, local_maxima
from toylab.methods import (
    Circle,
    CompareConfig,
    Context,
    Line,
    ablation,
    activation_patching,
    attribution,
    compare,
    compare_run,
    dataset_examples,
    feature_visualization,
    report_lines,
    selectivity,
    sweep,
)
from toylab.methods.compare import FIELDS
from toylab.models import MLP

DIST = two_blobs()


def random_weights(seed: int, widths=(2, 8, 8, 2), scale: float = 0.7):
    """float32-representable weights (what MLP.from_weights stores), as float64."""
    rng = np.random.default_rng(seed)
    ws = [rng.normal(0, scale, (a, b)) for a, b in zip(widths[:-1], widths[1:], strict=True)]
    bs = [rng.normal(0, 0.5, b) for b in widths[1:]]
    return ([np.asarray(w, np.float32).astype(np.float64) for w in ws],
            [np.asarray(b, np.float32).astype(np.float64) for b in bs])  # fmt: skip


def random_mlp(seed: int, widths=(2, 8, 8, 2), scale: float = 0.7) -> MLP:
    ws, bs = random_weights(seed, widths, scale)
    return MLP.from_weights(ws, bs)


def np_forward(ws, bs, x, upto: int | None = None) -> np.ndarray:
    """A float64 relu forward pass written here (the reference): the post-activation of
    hidden layer ``upto`` (``None``: the output)."""
    h = np.asarray(x, np.float64)
    for k, (w, b) in enumerate(zip(ws, bs, strict=True)):
        z = h @ w + b
        if k == len(ws) - 1:
            return z
        h = np.maximum(z, 0.0)
        if upto == k:
            return h
    raise AssertionError


def slope(budgets, errors) -> float:
    """Least-squares slope of log error on log budget (as diffrax's order tests)."""
    return float(np.polyfit(np.log(budgets), np.log(errors), 1)[0])


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
            errs[i] += sum(r.error for r in res)
            for r in res:  # exact IG: completeness to float64 rounding
                assert r.error_tier == "exact" and r.exact_error < 1e-9
    # midpoint Riemann sums of a piecewise-constant integrand: error ~ 1/m
    assert -1.35 < slope(steps, errs) < -0.65, errs


def test_exact_ig_matches_a_float64_autodiff_riemann_sum():
    """The reference integrates float64 ``jax.grad`` of a forward pass written here from
    the raw weights: it shares no code with the network's gradient or the exact IG."""
    ws, bs = random_weights(3)
    model = MLP.from_weights(ws, bs)
    x, x0 = np.array([3.0, -2.0]), np.array([-4.0, 1.5])
    r = attribution(model, "output:0", x, baseline=x0, num_steps=8)
    n = 200_000
    with jax.enable_x64(True):
        wj = [jnp.asarray(w, jnp.float64) for w in ws]
        bj = [jnp.asarray(b, jnp.float64) for b in bs]

        def f(z):
            h = z
            for w, b in zip(wj[:-1], bj[:-1], strict=True):
                h = jnp.maximum(h @ w + b, 0.0)
            return (h @ wj[-1] + bj[-1])[0]

        s = (jnp.arange(n, dtype=jnp.float64) + 0.5) / n
        pts = jnp.asarray(x0) + s[:, None] * jnp.asarray(x - x0)
        g = np.asarray(jax.vmap(jax.grad(f))(pts), np.float64)
    fine = (x - x0) * g.mean(0)
    # midpoint rule on a piecewise-constant integrand: each of the (pieces - 1) jumps
    # costs at most |jump| / n <= 2 max|grad| / n of the mean, times |x - x0|
    bound = r.num_pieces * 2 * float(np.abs(g).max()) * float(np.abs(x - x0).max()) / n
    assert np.abs(fine - r.exact_integrated_gradients).max() < bound + 1e-12
    assert r.num_pieces >= 2
    # the float64 gradient at x itself agrees with autodiff at x (x is not on a kink)
    with jax.enable_x64(True):
        gx = np.asarray(jax.grad(f)(jnp.asarray(x)), np.float64)
    np.testing.assert_allclose(r.exact_gradient, gx, rtol=0, atol=1e-12)


def test_line_sweep_error_is_order_one_over_m_and_matches_a_dense_reference():
    ws, bs = random_weights(5)
    model = MLP.from_weights(ws, bs)
    path = Line((-7.0, -5.0), (7.5, 5.5))
    pts = [17, 33, 65, 129, 257]
    res = [sweep(model, DIST, "hidden_1:2", key=jax.random.key(0), path=path, num_points=m)
           for m in pts]  # fmt: skip
    errs = [r.error for r in res]
    assert -1.35 < slope(pts, errs) < -0.65, errs
    # reference: the sampled polyline against a dense float64 forward pass written here
    t = np.linspace(0, 1, 200_001)
    x = np.array(path.start) + t[:, None] * np.subtract(path.end, path.start)
    ref = np_forward(ws, bs, x, upto=1)[:, 2]
    for r in res:
        assert r.error_tier == "exact"
        dense = float(np.abs(np.interp(t, r.t, r.values) - ref).max())
        slope_bound = float(np.abs(np.diff(ref) / np.diff(t)).max()) + float(
            np.abs(np.diff(r.values) / np.diff(r.t)).max()
        )
        # the exact max error is attained at a sample or a kink: the dense grid sees it up
        # to one grid step of slope
        assert dense - 1e-12 <= r.error <= dense + slope_bound * (t[1] - t[0])
        assert abs(r.exact - ref.max()) <= slope_bound * (t[1] - t[0])


def test_circle_sweep_error_is_certified_against_a_dense_reference():
    ws, bs = random_weights(6)
    model = MLP.from_weights(ws, bs)
    path = Circle((0.5, -0.5), (4.0, 2.0))
    res = [sweep(model, DIST, "hidden_1:4", key=jax.random.key(0), path=path, num_points=m)
           for m in (16, 64, 256)]  # fmt: skip
    t = np.linspace(0, 2 * np.pi, 400_001)
    v = np.array([3.5, 2.5])
    x = np.array([0.5, -0.5]) + np.cos(t)[:, None] * v + np.sin(t)[:, None] * np.array([-2.5, 3.5])
    ref = np_forward(ws, bs, x, upto=1)[:, 4]
    for r in res:
        assert r.error_tier == "certified"
        tt, vv = np.r_[r.t, 2 * np.pi], np.r_[r.values, r.values[:1]]
        dense = float(np.abs(np.interp(t, tt, vv) - ref).max())
        # the certified bracket [error, max_error_bound] holds the dense measurement (the
        # dense grid can miss the true max by at most the bracket's own slack)
        assert r.error - 1e-9 <= r.max_error_bound
        assert dense <= r.max_error_bound + 1e-9
        assert r.error >= dense - (r.max_error_bound - r.error) - 1e-6
    assert res[-1].error < res[0].error


def test_monte_carlo_ablation_and_selectivity_errors_shrink_like_root_n():
    model = random_mlp(7)
    ctx = Context(model, DIST)
    fire = ctx.analysis(0).moments["hidden_1"].firing_probability
    unit = int(np.argmin(np.abs(fire - 0.5)))  # a live neuron, so the error is not 0
    assert 0.05 < fire[unit] < 0.95
    sizes = [256, 1024, 4096, 16384]
    reps = 6
    abl_rms, sel_rms = [], []
    for n in sizes:
        a = s = 0.0
        for r in range(reps):
            key = jax.random.key(1000 * n + r)
            res = ablation(model, DIST, "hidden_0:3", key=key, mode="mean", num_samples=n,
                           context=ctx)  # fmt: skip
            a += (res.accuracy_edited - res.exact_accuracy_edited) ** 2
            sel = selectivity(model, DIST, f"hidden_1:{unit}", key=key, num_samples=n,
                              context=ctx)  # fmt: skip
            s += sel.mass_error**2
        abl_rms.append(math.sqrt(a / reps))
        sel_rms.append(math.sqrt(s / reps))
    assert -0.8 < slope(sizes, abl_rms) < -0.25, abl_rms
    assert -0.8 < slope(sizes, sel_rms) < -0.25, sel_rms
    # one analysis of the model and one of the (deterministic) mean-ablated network
    assert ctx.num_analyses == 2


# --------------------------------------------------------------------------- exact parts


def test_dataset_examples_quantiles_agree_with_monte_carlo():
    """The exact ``P(a <= value)`` of each example vs an independent Monte Carlo estimate
    (a float64 forward pass written here on 200 000 fresh samples)."""
    ws, bs = random_weights(8)
    model = MLP.from_weights(ws, bs)
    r = dataset_examples(model, DIST, "hidden_1:1", key=jax.random.key(1), num_samples=512,
                         num_examples=6, num_coverage=512)  # fmt: skip
    n = 200_000
    x = np.asarray(DIST.sample(jax.random.key(3), n).x, np.float64)
    a = np_forward(ws, bs, x, upto=1)[:, 1]
    mc = (a[:, None] <= r.values[None]).mean(0)
    se = np.sqrt(r.quantiles * (1 - r.quantiles) / n)
    # 5 standard errors: a failure budget of ~1e-6 per point, plus the float32 sampler
    assert np.all(np.abs(mc - r.quantiles) < 5 * se + 2e-5), (mc, r.quantiles)
    # the 0.99-quantile bracket: P(a <= lower) < 0.99 <= P(a <= upper), within 5 s.e.
    se99 = math.sqrt(0.99 * 0.01 / n)
    assert (a <= r.q99.lower).mean() < 0.99 + 5 * se99
    assert (a <= r.q99.upper).mean() >= 0.99 - 5 * se99
    assert r.exact == r.q99.upper and r.exact_error == r.q99.upper - r.q99.lower
    assert r.misleads == (r.sampled < r.q99.lower - 1e-6 * (r.exact_max - a.min()))


def test_mean_ablation_exact_accuracy_matches_analyze_of_the_hand_edited_network():
    """Review A4: the edit is written here by hand (outgoing weights zeroed, the mean
    folded into the next bias, float64 kept); both sides are exact float64 analyses of
    the same network, so they agree to rounding (1e-12, not 1e-6)."""
    ws, bs = random_weights(9)
    model = MLP.from_weights(ws, bs)
    names = ["hidden_0:1", "hidden_0:5"]
    res = ablation(model, DIST, names, key=jax.random.key(0), mode="mean")
    mean = analyze(model, DIST).moments["hidden_0"].mean
    w1, b1 = ws[1].copy(), bs[1].copy()
    for u in (1, 5):
        b1 += mean[u] * w1[u]
        w1[u] = 0.0
    ref = analyze(MLP.from_weights([ws[0], w1, ws[2]], [bs[0], b1, bs[2]],
                                   param_dtype=np.float64), DIST)  # fmt: skip
    assert abs(res.exact_accuracy_edited - ref.accuracy) < 1e-12
    assert res.error_tier == "exact"
    lo, hi = res.delta_accuracy_ci
    assert lo - 1e-3 <= res.exact <= hi + 1e-3


def test_zero_ablating_a_dead_unit_needs_no_new_analysis_and_changes_nothing():
    ws, bs = random_weights(9)
    bs[0][2] = -100.0  # hidden_0:2 never fires on the integration box
    model = MLP.from_weights(ws, bs)
    ctx = Context(model, DIST)
    res = ablation(model, DIST, "hidden_0:2", key=jax.random.key(0), num_samples=256,
                   context=ctx)  # fmt: skip
    assert ctx.num_analyses == 1 and res.exact == 0.0 and res.sampled == 0.0
    assert not res.misleads


def test_activation_patching_matches_a_float64_reference_and_self_patch_is_identity():
    ws, bs = random_weights(10)
    model = MLP.from_weights(ws, bs)
    x = np.array([[1.0, -2.0], [0.5, 0.5]])
    r = activation_patching(model, "hidden_0:2", x, x[::-1])
    src = np_forward(ws, bs, x[::-1], upto=0)[:, 2]
    h = np_forward(ws, bs, x, upto=0)
    h[:, 2] = src
    ref = np.maximum(h @ ws[1] + bs[1], 0) @ ws[2] + bs[2]
    np.testing.assert_allclose(r.exact_patched_logits, ref, rtol=0, atol=1e-12)
    assert r.error < 1e-4 and not r.misleads and r.tier == "exact"
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
    lm = local_maxima(analyze(model, DIST).geometry, "hidden_1", 0)
    np.testing.assert_allclose(lm.values, [2.0, 1.0], atol=1e-5)
    r = feature_visualization(model, DIST, "hidden_1:0", key=jax.random.key(0), num_starts=128)
    assert r.num_local_maxima == 2 and r.num_found == 2
    # starts that reach the global max are few; the lesser max collects far more
    assert r.fraction_at_max < 0.2
    assert r.basin_counts[1] > 3 * r.basin_counts[0]
    assert abs(r.exact - 2.0) < 1e-5 and r.error_tier == "exact"
    few = feature_visualization(model, DIST, "hidden_1:0", key=jax.random.key(1), num_starts=2)
    assert few.num_found <= 2
    # with two starts the best is the lesser bump: the result says it misleads
    assert few.misleads == (few.relative_gap > 0.05)


def test_maximum_where_the_data_has_no_mass_is_out_of_reach_of_dataset_examples():
    # hidden_0:0 = relu(y - 5): the blobs sit at y ~ N(0, 1), so P(a > 0) = Phi(-5)
    model = MLP.from_weights([[[0.0], [1.0]], [[1.0, -1.0]]], [[-5.0], [0.0, 0.0]])
    r = dataset_examples(model, DIST, "hidden_0:0", key=jax.random.key(0), num_samples=2048)
    assert r.relative_gap > 0.9  # the examples never see the maximum ...
    assert r.unreachable and r.expected_top < 1e-3  # ... and the exact CDF says why
    # P(a > top - 0.05 range) is a sliver of the upper tail of N(0, 1) beyond 5 + ...
    assert r.p_top < ndtr(-5.0)
    assert r.p_hit[0] <= r.p_hit[1] < 1e-3
    # the 0.99-quantile is the atom at 0: the top example (0) is not below it
    assert r.q99.lower == r.q99.upper == 0.0 and not r.misleads


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
        assert abs(r.exact - analyze(m, DIST).extrema("hidden_1").max[3]) < 1e-12
        assert r.error > -1e-4  # no start beats the exact maximum


def test_a_context_is_reused_and_checked():
    models = [random_mlp(s, widths=(2, 4, 2)) for s in (1, 2)]
    ctx = Context(models, DIST)
    key = jax.random.key(0)
    dataset_examples(models, DIST, "hidden_0:1", key=key, num_samples=64, num_coverage=64,
                     context=ctx)  # fmt: skip
    selectivity(models, DIST, "hidden_0:0", key=key, num_samples=64, context=ctx)
    feature_visualization(models, DIST, "hidden_0:0", key=key, num_starts=4, num_steps=3,
                          context=ctx)  # fmt: skip
    assert ctx.num_analyses == 2  # one per member, shared by three methods
    with pytest.raises(ValueError, match="context must be a Context built for this model"):
        selectivity(models[::-1], DIST, "hidden_0:0", key=key, context=ctx)
    with pytest.raises(ValueError, match="context must be a Context built for this model"):
        selectivity(models, two_blobs(distance=3.0), "hidden_0:0", key=key, context=ctx)


def test_compare_run_returns_typed_rows_and_writes_nothing(tmp_path):
    models = [random_mlp(s, widths=(2, 4, 4, 2)) for s in (20, 21)]
    run = types.SimpleNamespace(path=tmp_path, num_members=2, dist_of=lambda m: DIST,
                                models=lambda: models, model=models.__getitem__)  # fmt: skip
    phases = []
    res = compare_run(run, key=jax.random.key(0), budgets=CompareConfig.quick(),
                      progress=phases.append)  # fmt: skip
    assert list(tmp_path.iterdir()) == []  # a library function writes nothing
    assert len(res.rows) == 2 * 8 * 7 and "exact analysis" in phases
    assert res.num_analyses <= 2 + 2 * 8  # members, plus the zero-ablated networks
    lines = res.to_csv().splitlines()
    assert lines[0].split(",") == list(FIELDS) and len(lines) == 1 + 2 * 8 * 7
    data = json.loads(json.dumps(res.to_json()))
    assert data["summary"]["feature_visualization"]["rows"] == 16
    assert data["summary"]["joint_tuning"]["rows"] == 16
    assert any("feature_visualization" in line for line in report_lines(res))
    units = {r.method: r.units for r in res.rows}
    assert units["joint_tuning"] == "radians" and units["ablation"] == "accuracy (probability)"
    for r in res.rows:
        assert math.isfinite(r.sampled) and r.error_tier in ("exact", "certified")
        if r.method == "feature_visualization":  # never beats the exact max
            assert r.sampled <= r.exact + 1e-4 * (1 + abs(r.exact))


def test_compare_rejects_smooth_networks():
    model = MLP.from_weights([np.eye(2), np.ones((2, 2))], activation="tanh")
    with pytest.raises(NotApplicable, match="piecewise-linear"):
        compare(model, DIST, key=jax.random.key(0))
