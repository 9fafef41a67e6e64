"""Sampled methods vs the exact answer: finite sub-family sweeps, the feature
visualization miss rate, and joint tuning in ``compare``."""

from __future__ import annotations

import math

import jax
import numpy as np
import pytest
from flax import nnx

from toylab._errors import ToylabError
from toylab.distributions import ModularArithmetic, two_blobs
from toylab.exact import finite_table
from toylab.methods import (
    CompareConfig,
    Subfamily,
    compare,
    feature_visualization,
    joint_tuning,
    sweep,
)
from toylab.models import MLP, OneHotMLP

DIST = two_blobs()
P = 13
MOD = ModularArithmetic(P)


def onehot_models(seeds=(0, 1, 2)) -> list[OneHotMLP]:
    return [OneHotMLP(P, (16,), P, rngs=nnx.Rngs(s)) for s in seeds]


def hidden0(model: OneHotMLP, x: np.ndarray) -> np.ndarray:
    """The first hidden layer in float64, from the module's raw parameters (a reference
    that shares no code with toylab's forward pass)."""
    lin = model.layers[0]
    w, b = np.asarray(lin.kernel[...], np.float64), np.asarray(lin.bias[...], np.float64)
    return np.maximum(np.asarray(x, np.float64) @ w + b, 0.0)


# --------------------------------------------------------------------------- sub-families


def test_subfamily_sweep_exact_curve_is_the_restricted_finite_table():
    models = onehot_models()
    path = Subfamily(fixed={"a": 3})
    res = sweep(models, MOD, "hidden_0:5", key=jax.random.key(0), path=path, num_points=P)
    assert isinstance(res, tuple) and len(res) == 3
    for model, r in zip(models, res, strict=True):
        np.testing.assert_array_equal(r.rows, 3 * P + np.arange(P))  # domain order a * p + b
        np.testing.assert_array_equal(r.t, np.arange(P))  # the free operand b
        np.testing.assert_array_equal(
            r.exact_curve, finite_table(model, MOD).values("hidden_0:5")[r.rows]
        )
        # independent float64 forward pass on the encoded operands
        ops = np.stack([np.full(P, 3), np.arange(P)], -1)
        x = np.asarray(model.encode(ops), np.float64)
        np.testing.assert_allclose(r.exact_curve, hidden0(model, x)[:, 5], rtol=0, atol=1e-12)
        # the whole family seen: only float32 rounding separates sampled and exact
        assert r.coverage == 1.0 and len(r.sampled_rows) == P
        assert r.error < 1e-5 and r.error == pytest.approx(r.sample_error)
        assert r.exact == r.exact_curve.max() and r.error_tier == "exact" and not r.misleads
        assert r.argmax_match and r.peak_gap < 1e-5
        single = sweep(model, MOD, "hidden_0:5", key=jax.random.key(0), path=path, num_points=P)
        np.testing.assert_allclose(single.values, r.values, rtol=1e-6, atol=1e-6)


def test_subfamily_interpolated_and_nearest_errors_match_a_direct_computation():
    model = onehot_models((4,))[0]
    exact = finite_table(model, MOD).values("hidden_0:2")
    for fill in ("interp", "nearest"):
        r = sweep(model, MOD, "hidden_0:2", key=jax.random.key(7),
                  path=Subfamily(fixed={"b": 11}, fill=fill), num_points=5)  # fmt: skip
        ref = exact[np.arange(P) * P + 11]  # b = 11, a sweeps 0..p-1
        np.testing.assert_array_equal(r.exact_curve, ref)
        assert r.coverage == 5 / P and len(set(r.sampled_rows.tolist())) == 5
        ts = r.sampled_rows.astype(float)
        if fill == "interp":
            curve = np.interp(np.arange(P), ts, ref[r.sampled_rows])
        else:  # nearest sample, ties to the lower one
            d = np.abs(np.arange(P)[:, None] - ts[None])
            curve = ref[r.sampled_rows][np.argmin(d, axis=1)]
        err = np.abs(curve - ref)
        assert r.error == pytest.approx(err.max(), abs=1e-5)
        assert r.l2_error == pytest.approx(math.sqrt(np.mean(err**2)), abs=1e-5)
        assert r.error > 1e-3  # 8 of 13 members unseen: a real reconstruction error
        # misleads: the reconstruction is off by more than 5% of the curve's range
        assert r.misleads == (r.error > 0.05 * np.ptp(ref) + 1e-5 * (1 + np.abs(ref).max()))
    # a predicate on the latent operands and explicit indices select the same family
    by_pred = sweep(model, MOD, "hidden_0:2", key=jax.random.key(7),
                    path=Subfamily(where=lambda lat: lat[:, 1] == 11), num_points=5)  # fmt: skip
    np.testing.assert_array_equal(by_pred.rows, np.arange(P) * P + 11)
    idx = (40, 7, 100)
    by_idx = sweep(model, MOD, "hidden_0:2", key=jax.random.key(0),
                   path=Subfamily(indices=idx), num_points=3)  # fmt: skip
    np.testing.assert_array_equal(by_idx.rows, idx)
    np.testing.assert_array_equal(by_idx.t, [0, 1, 2])


def test_subfamily_argmax_is_found_with_the_exact_coverage_probability():
    """The sampled argmax equals the exact one iff the (unique) exact argmax is among
    the ``m`` members drawn without replacement: probability exactly ``m / n``."""
    model = onehot_models((1,))[0]
    path = Subfamily(fixed={"a": 5})
    table = finite_table(model, MOD)
    # a unit whose maximum over the family is unique (dead ReLU units tie at 0)
    gaps = [np.diff(np.sort(table.values(f"hidden_0:{u}")[5 * P : 6 * P])[-2:])[0]
            for u in range(16)]  # fmt: skip
    neuron = f"hidden_0:{int(np.argmax(gaps))}"
    m, reps = 4, 240
    hits = 0
    for r in range(reps):
        res = sweep(model, MOD, neuron, key=jax.random.key(r), path=path, num_points=m)
        top2 = np.sort(res.exact_curve)[-2:]
        assert top2[1] - top2[0] > 1e-3  # unique exact maximum, far above float32 rounding
        assert res.argmax_match == (res.exact_argmax[0] in res.sampled_rows)
        assert res.argmax_match == (res.peak_gap == 0.0)
        hits += res.argmax_match
    p = m / P
    # 4.5 binomial standard errors: a failure budget of ~1e-5
    assert abs(hits / reps - p) < 4.5 * math.sqrt(p * (1 - p) / reps), hits


def test_subfamily_rejects_bad_families():
    model = onehot_models((0,))[0]
    key = jax.random.key(0)
    with pytest.raises(ToylabError, match="keys among"):
        sweep(model, MOD, "hidden_0:0", key=key, path=Subfamily(fixed={"c": 1}))
    with pytest.raises(ToylabError, match="at least one input"):
        sweep(model, MOD, "hidden_0:0", key=key, path=Subfamily(fixed={"a": P}))
    with pytest.raises(ToylabError, match="finite domain"):
        sweep(MLP.from_weights([np.eye(2), np.eye(2)]), DIST, "hidden_0:0", key=key,
              path=Subfamily(fixed={"a": 0}))  # fmt: skip
    with pytest.raises(ToylabError, match="row indices"):
        sweep(model, MOD, "hidden_0:0", key=key, path=Subfamily(indices=(0, P * P)))


# --------------------------------------------------------------------------- feature vis rate


def _two_bump_neuron() -> MLP:
    """hidden_1:0 = relu(tent_A(x) + tent_B(x)) (as in test_methods): a wide low bump
    (centre -3, half-width 4, height 1) and a narrow high one (centre 5, half-width
    0.5, height 2); the value depends on the first coordinate only."""
    pieces = [(-3.0, 4.0, 1.0), (5.0, 0.5, 2.0)]
    w0, b0, w1 = np.zeros((2, 6)), np.zeros(6), np.zeros((6, 1))
    for i, (c, w, h) in enumerate(pieces):
        for j, (shift, coef) in enumerate(((-w, 1.0), (0.0, -2.0), (w, 1.0))):
            w0[0, 3 * i + j] = 1.0
            b0[3 * i + j] = -(c + shift)
            w1[3 * i + j, 0] = coef * h / w
    return MLP.from_weights([w0, w1, np.ones((1, 2))], [b0, np.zeros(1), np.zeros(2)])


def test_best_of_n_starts_miss_probability_decays_geometrically_at_the_basin_rate():
    """Best of ``N`` uniform starts misses the global maximum with probability
    ``(1 - q)^N``, ``q`` the start distribution's mass in the global maximum's basin.

    The narrow bump's basin is the band ``4.5 < x_1 < 5.5`` (outside both tents the
    gradient is 0, inside the wide tent ascent goes to -3), so ``q`` is the exact,
    data-independent area fraction ``1 / (high_1 - low_1)`` of the domain box.
    Expected: the slope of ``log P(miss)`` on ``N`` is ``log(1 - q) = -0.0628``.
    Tolerance: ``0.015`` absolute (~24%); simulating the estimator below (16384
    Bernoulli(q) starts split into disjoint groups of ``N``) gives a standard
    deviation of 0.0033, so this is ~4.5 sigma; a basin of the wrong size (the wide
    bump's, q ~ 0.49, slope -0.67; or one 25% larger or smaller) fails it.
    """
    model = _two_bump_neuron()
    r = feature_visualization(
        model, DIST, "hidden_1:0", key=jax.random.key(0), num_starts=16384
    )  # fmt: skip (default adam, 200 steps)
    low, high = DIST.domain.low, DIST.domain.high
    q = 1.0 / (high[0] - low[0])
    hit = r.values >= r.exact - 0.01 * (r.exact - r.exact_min)
    in_basin = (r.starts[:, 0] > 4.5) & (r.starts[:, 0] < 5.5)
    # the method's success set is the exact basin, start by start
    assert np.mean(hit == in_basin) > 0.999, (hit.sum(), in_basin.sum())
    ns = [1, 2, 4, 8, 16, 24, 32]
    miss = [1.0 - hit[: len(hit) // n * n].reshape(-1, n).any(1).mean() for n in ns]
    slope = float(np.polyfit(ns, np.log(miss), 1)[0])
    assert abs(slope - math.log1p(-q)) < 0.015, (slope, math.log1p(-q), miss)


# --------------------------------------------------------------------------- joint tuning


def _spike_model() -> MLP:
    """hidden_2:0 = relu(tent(x_1) + spike(x)): a tent of height 1 on ``x_1`` (centre
    -2, half-width 1.5, where the left blob's data is) plus a spike
    ``relu(2 - 20 |x_1| - 2 |x_2 - 2.4|)`` (height 2, 0.1 wide) that the data almost
    never reaches, but that every circle about the origin through a top example
    (radius ~2) crosses at an angle ~pi/2 away from the example."""
    w0, b0 = np.zeros((2, 7)), np.zeros(7)
    for j, c in enumerate((-3.5, -2.0, -0.5)):
        w0[0, j], b0[j] = 1.0, -c
    w0[0, 3], w0[0, 4] = 1.0, -1.0  # |x_1| = relu(x_1) + relu(-x_1)
    w0[1, 5], b0[5], w0[1, 6], b0[6] = 1.0, -2.4, -1.0, 2.4  # |x_2 - 2.4|
    w1, b1 = np.zeros((7, 2)), np.array([0.0, 2.0])
    w1[:3, 0] = np.array([1.0, -2.0, 1.0]) / 1.5
    w1[3:5, 1], w1[5:, 1] = -20.0, -2.0
    return MLP.from_weights([w0, w1, np.ones((2, 1)), np.ones((1, 2))],
                            [b0, b1, np.zeros(1), np.zeros(2)])  # fmt: skip


def test_compare_joint_tuning_misleads_on_a_narrow_spike_and_not_on_a_fine_grid():
    model = _spike_model()
    base = CompareConfig.quick()

    def row(num_angles):
        cfg = CompareConfig(**{**base.__dict__, "num_angles": num_angles, "num_rotated": 4})
        res = compare(model, DIST, key=jax.random.key(0), budgets=cfg)
        assert res.summary["joint_tuning"]["rows"] == 7 + 2 + 1
        return next(r for r in res.rows
                    if r.method == "joint_tuning" and r.neuron == "hidden_2:0")  # fmt: skip

    coarse = row(16)  # 0.39 rad steps step over a spike ~0.05 rad wide
    assert coarse.misleads and coarse.error > 1.0 and coarse.units == "radians", coarse
    fine = row(2048)  # 0.003 rad steps resolve it
    assert not fine.misleads and fine.error < 2 * 2 * math.pi / 2048, fine
    # the exact peak value is the spike's, above the tent's 1 (joint_tuning agrees)
    jt = joint_tuning(model, DIST, "hidden_2:0", key=jax.random.key(0), num_examples=4,
                      num_angles=16)  # fmt: skip
    assert np.all(jt.exact_peak_value > 1.1) and np.all(jt.value_at_sampled_peak < 1.01)
    assert np.all(jt.max_error <= jt.max_error_bound) and jt.misleads


def test_sweep_with_two_points_counts_every_kink_as_missed():
    """Two samples cannot show a change of slope: every exact breakpoint is missed."""
    import jax

    from toylab.distributions import two_blobs
    from toylab.methods import Line, sweep
    from toylab.models import MLP

    model = MLP.from_weights([np.array([[1.0, -1.0], [0.0, 0.0]]), np.ones((2, 2))], None)
    res = sweep(model, two_blobs(), "hidden_0:0", key=jax.random.key(0),
                path=Line((-3.0, 0.0), (3.0, 0.0)), num_points=2)  # fmt: skip
    assert res.missed_breakpoints == len(res.breakpoints) >= 1
    assert res.misleads  # the polyline between the two ends misses the kink entirely
