"""match_ensemble: matching across seeds against known answers (hand constructions, a
Monte Carlo reference, a trained run against its chance baselines)."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from toylab import ToylabError
from toylab.distributions import two_blobs
from toylab.network import Network
from toylab.universality import match_ensemble, shuffle_layers

DIST = two_blobs()  # N((±2, 0), I): exact moments in closed form (tier "exact")


def _relu(z):
    return np.maximum(z, 0.0)


def _net(w0, b0, w1, b1, w2=None, b2=None):
    """A relu network from explicit layers; the output layer defaults to a 2-unit read-out."""
    ws, bs = [np.asarray(w0, float), np.asarray(w1, float)], [np.asarray(b0, float),
                                                               np.asarray(b1, float)]  # fmt: skip
    if w2 is not None:
        ws.append(np.asarray(w2, float))
        bs.append(np.asarray(b2, float))
    return Network.from_weights(ws, bs, ("relu",) * (len(ws) - 1))


def _random_net(rng, widths=(2, 6, 5, 2)):
    # biases of 0.5 and first-layer directions spread out: every unit is live on the blobs
    layers = []
    for a, b in zip(widths[:-1], widths[1:], strict=True):
        layers.append((rng.normal(size=(a, b)), np.full(b, 0.5)))
    w = [w for w, _ in layers]
    b = [b for _, b in layers]
    return Network.from_weights(w, b, ("relu",) * (len(widths) - 2))


def _permute_rescale(net, perms, scales):
    """The same function with hidden units permuted (new unit j = old unit perm[j]) and
    each new unit's incoming weights scaled by ``scales[j] > 0`` (outgoing by 1/scale)."""
    layers = net.dense_layers(np.float64)
    ws, bs = [w.copy() for w, _ in layers], [b.copy() for _, b in layers]
    for k, (p, s) in enumerate(zip(perms, scales, strict=True)):
        ws[k], bs[k] = ws[k][:, p] * s, bs[k][p] * s
        ws[k + 1] = ws[k + 1][p] / s[:, None]
    return Network.from_weights(ws, bs, net.hidden_activations)


def test_permuted_rescaled_copies_match_perfectly_with_their_permutation_and_scales():
    rng = np.random.default_rng(3)
    ref = _random_net(rng)
    perms = [rng.permutation(6), rng.permutation(5)]
    scales = [rng.uniform(0.2, 5.0, 6), rng.uniform(0.2, 5.0, 5)]
    copy = _permute_rescale(ref, perms, scales)
    copy2 = _permute_rescale(ref, [rng.permutation(6), rng.permutation(5)],
                             [np.ones(6), np.ones(5)])  # fmt: skip
    x = rng.normal(size=(64, 2))  # the construction is the same function (independent check)
    np.testing.assert_allclose(copy(x), ref(x), rtol=1e-12, atol=1e-12)
    em = match_ensemble([ref, copy, copy2], DIST, baselines=())
    # scales up to 5 make the truncation bound of the integration box exceed rounding:
    # "certified" then; every moment is within 1e-8, and the units' variances are O(1),
    # so correlations and scales are good to ~1e-8 (the tolerances below are 1e-7)
    assert em.tier in ("exact", "certified") and em.error < 1e-8
    assert em.scheme == "star" and em.num_analyses == 2
    for k, lm in enumerate(em.matches[(1, 0)].layers):
        # copy's unit j is ref's unit perms[k][j], scaled by scales[k][j]
        np.testing.assert_array_equal(lm.perm, perms[k])
        np.testing.assert_allclose(lm.corr, 1.0, atol=1e-7)
        np.testing.assert_allclose(lm.scale, scales[k], rtol=1e-7)
    assert all(not d for d in em.dead.values()) and all(not d for d in em.duplicates.values())
    assert em.splits == ()  # every unit is matched by one unit exactly
    # one family per unit, in all three members
    assert len(em.families) == 11 and all(f.fraction == 1.0 for f in em.families)
    fam = [f for f in em.families if f.layer == "hidden_1" and (0, "hidden_1:2") in f.units][0]
    j = int(np.nonzero(perms[1] == 2)[0][0])
    assert (1, f"hidden_1:{j}") in fam.units and fam.mean_correlation > 1 - 1e-7
    assert em.partner(1, f"hidden_1:{j}")[0] == "hidden_1:2"
    s = em.layer_scores("hidden_0").trained
    assert s.num_dead == 0 and len(s.values) == 12 and s.median == pytest.approx(1.0, abs=1e-7)


def test_a_unit_split_in_two_is_found_with_its_parts_and_weights():
    # first layer in both: h1 = relu(x0), h2 = relu(-x0), h3 = relu(x1 + 1)
    w0 = [[1.0, -1.0, 0.0], [0.0, 0.0, 1.0]]
    b0 = [0.0, 0.0, 1.0]
    # reference: hidden_1 = (relu(h1 + h2) = |x0|, relu(h3)); other: (relu(h1), relu(h2), relu(h3))
    ref = _net(w0, b0, [[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], [0.0, 0.0], np.ones((2, 2)), [0, 0])
    other = _net(w0, b0, np.eye(3), np.zeros(3), np.ones((3, 2)), [0, 0])
    em = match_ensemble([ref, other], DIST, baselines=())
    found = [s for s in em.splits if s.layer == "hidden_1" and s.member == 0]
    assert len(found) == 1
    s = found[0]
    assert s.unit == "hidden_1:0" and s.other == 1
    assert sorted(s.parts) == ["hidden_1:0", "hidden_1:1"]
    # |x0| = relu(x0) + relu(-x0): both weights 1 and R² = 1, up to rounding of the moments
    np.testing.assert_allclose(s.coefficients, [1.0, 1.0], rtol=1e-8)
    assert s.r2 == pytest.approx(1.0, abs=1e-9) and s.tier == "exact"
    # independent reference for "no single unit explains it": Monte Carlo correlations;
    # 400k draws give a standard error of the squared correlation below 2e-3
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400_000, 2)) + np.where(rng.random(400_000) < 0.5, 2.0, -2.0)[:, None] * [
        1,
        0,
    ]
    y = np.abs(x[:, 0])
    singles = [np.corrcoef(y, _relu(z))[0, 1] for z in (x[:, 0], -x[:, 0], x[:, 1] + 1)]
    assert s.best_single_r2 == pytest.approx(max(max(c, 0) ** 2 for c in singles), abs=1e-2)
    assert s.best_single_r2 < 0.95
    # the other direction: relu(x0) is not a positive combination of |x0| and relu(x1+1)
    assert not [s for s in em.splits if s.member == 1 and s.unit == "hidden_1:0"]


def test_dead_and_duplicate_units_are_flagged_and_left_out_of_scores_and_families():
    rng = np.random.default_rng(1)
    ref = _random_net(rng, (2, 4, 3, 2))
    w0, b0 = (a.copy() for a in ref.dense_layers(np.float64)[0])
    w1, b1 = (a.copy() for a in ref.dense_layers(np.float64)[1])
    w2, b2 = ref.dense_layers(np.float64)[2]
    w0[:, 1], b0[1] = [1.0, 0.0], -100.0  # relu(x0 - 100) = 0 wherever the blobs live
    w0[:, 3], b0[3] = 2.0 * w0[:, 2], 2.0 * b0[2]  # unit 3 = 2 x unit 2: a duplicate
    other = _net(w0, b0, w1, b1, w2, b2)
    em = match_ensemble([ref, other], DIST, baselines=())
    assert em.dead[1] == ("hidden_0:1",)
    assert em.duplicates[1] == (("hidden_0:2", "hidden_0:3"),)
    lm = em.matches[(1, 0)].layers[0]
    assert lm.perm[1] == -1 and lm.dead_a == (1,)
    s = em.layer_scores("hidden_0").trained
    assert s.num_dead == 1 and len(s.values) == 3
    assert all((1, "hidden_0:1") not in f.units for f in em.families)


def _family_ensemble(rng, members_with_star):
    """5 one-hidden-layer networks; ``u* = relu(x0 - 0.5)`` (direction 0 degrees) is placed at
    a random position with a random positive scale in ``members_with_star``; the other
    units point at least 90 degrees away from it, with member-specific angles."""
    nets, where = [], {}
    for m in range(5):
        angles = list(90 + 45 * np.arange(4) + 20 * m)  # 4 other directions
        units = [(np.cos(np.radians(a)), np.sin(np.radians(a)), 0.3) for a in angles]
        if m in members_with_star:
            units[0] = (1.0, 0.0, -0.5)
        order = rng.permutation(4)
        scale = rng.uniform(0.5, 2.0, 4)
        w0 = np.array([units[i][:2] for i in order]).T * scale
        b0 = np.array([units[i][2] for i in order]) * scale
        where[m] = int(np.nonzero(order == 0)[0][0])
        nets.append(Network.from_weights([w0, np.ones((4, 2))], [b0, np.zeros(2)], ("relu",)))
    return nets, where


@pytest.mark.parametrize("scheme", ["star", "all"])
def test_a_unit_recurring_in_k_of_n_members_forms_one_family(scheme):
    rng = np.random.default_rng(7)
    star = (0, 2, 3)
    nets, where = _family_ensemble(rng, star)
    em = match_ensemble(nets, DIST, scheme=scheme, baselines=(), threshold=0.95)
    assert em.num_analyses == (4 if scheme == "star" else 10)
    fams = [f for f in em.families if (0, f"hidden_0:{where[0]}") in f.units]
    assert len(fams) == 1
    fam = fams[0]
    assert fam.fraction == pytest.approx(3 / 5)
    assert sorted(fam.units) == sorted((m, f"hidden_0:{where[m]}") for m in star)
    assert fam.mean_correlation > 1 - 1e-9 and fam.tier == "exact"


def test_trained_ensemble_beats_its_init_and_shuffle_baselines(tmp_path):
    from toylab.config import parse_config
    from toylab.runs import start_run

    cfg = {
        "name": "universality",
        "seeds": [0, 1, 2, 3],
        "distribution": {"name": "two_blobs"},
        "model": {"hidden": [8, 8], "activation": "relu"},
        "train": {"num_steps": 200, "log_every": 200, "batch_size": 128},
    }
    run = start_run(parse_config(cfg), tmp_path / "run")
    em = match_ensemble(run, key=0)
    assert em.members == (0, 1, 2, 3) and em.tier == "exact"
    assert em.num_analyses == 3 * 3  # trained, init and shuffle against the reference
    last = em.layer_scores("hidden_1")
    assert set(last.baselines) == {"init", "shuffle"}
    for name, base in last.baselines.items():
        # a second-layer unit of a trained member resembles the reference's units more than a
        # unit of an untrained or shuffled network does
        assert last.trained.median > base.median, name
        assert last.above[name] > 0.05, name
    assert last.trained.error < 1e-6 and last.tier == "exact"
    text = em.summary()
    assert "hidden_1: best-match" in text and "init baseline" in text
    # the baselines are the claimed networks: shuffles keep each layer's multiset of weights
    sh = shuffle_layers(run.model(1), jax.random.key(0))
    for (wa, ba), (wb, bb) in zip(
        sh.dense_layers(), run.model(1).to_network().dense_layers(np.float64), strict=True
    ):
        np.testing.assert_array_equal(np.sort(wa, axis=None), np.sort(wb, axis=None))
        np.testing.assert_array_equal(np.sort(ba), np.sort(bb))


class _StubRun:
    """A duck-typed run whose members train on two distributions."""

    num_members = 4

    def __init__(self, nets):
        self._nets = nets

    def dist_of(self, m):
        return two_blobs() if m < 2 else two_blobs(distance=6.0)

    def models(self, step=None):
        return self._nets


def test_bad_inputs_are_refused_with_the_fix():
    rng = np.random.default_rng(0)
    nets = [_random_net(rng, (2, 3, 2)) for _ in range(4)]
    with pytest.raises(ToylabError, match=r"2 different distributions.*members=\[\.\.\.\]"):
        match_ensemble(_StubRun(nets))
    em = match_ensemble(_StubRun(nets), members=[2, 3], reference=3, baselines=())
    assert em.members == (2, 3) and (2, 3) in em.matches
    # two shuffled stand-ins (of members 1 and 3) instead of one per non-reference member
    em = match_ensemble(nets, DIST, baselines=("shuffle",), baseline_size=2)
    assert em.num_analyses == 3 + 2
    sh = em.layer_scores("hidden_0").baselines["shuffle"]
    assert len(sh.values) + sh.num_dead == 2 * 3
    with pytest.raises(ToylabError, match="baseline_size"):
        match_ensemble(nets, DIST, baselines=("shuffle",), baseline_size=0)
    with pytest.raises(ToylabError, match="dist"):
        match_ensemble(nets)
    with pytest.raises(ToylabError, match="reference"):
        match_ensemble(nets, DIST, reference=7)
    with pytest.raises(ToylabError, match="key"):
        match_ensemble(nets, DIST, key="seven")
    with pytest.raises(ToylabError, match="model_config"):  # a net of mixed activations
        mixed = Network.from_weights([np.ones((2, 3)), np.ones((3, 3)), np.ones((3, 2))],
                                     activation=("relu", "abs"))  # fmt: skip
        match_ensemble([mixed, mixed], DIST, baselines=("init",))
    with pytest.raises(ToylabError, match="scheme"):
        match_ensemble(nets, DIST, scheme="pairs")
    with pytest.raises(ToylabError, match="hidden layers"):
        match_ensemble([nets[0], _random_net(rng, (2, 3, 3, 2))], DIST)


def test_correlation_error_bound_holds_under_perturbed_moments():
    from toylab.circuits.matching import unit_correlation

    rng = np.random.default_rng(11)
    a = _relu(rng.normal(size=(2000, 5)) @ rng.normal(size=(5, 5)) + 0.3)
    a[:, 4] = 0.02 * a[:, 0] + 0.01 * rng.normal(size=2000)  # a small-variance unit
    mean, second = a.mean(0), a.T @ a / len(a)
    err = 1e-5
    uc = unit_correlation(mean, second, err, 1e-12)
    assert uc.live.all()
    for _ in range(200):  # moments moved anywhere within ±err: corners and interior
        dm = rng.choice([-err, err, 0.0], size=5) * rng.random(5)
        ds = rng.uniform(-err, err, size=(5, 5))
        m2, s2 = mean + dm, second + (ds + ds.T) / 2
        cov = s2 - np.outer(m2, m2)
        sd = np.sqrt(np.diag(cov))
        moved = cov / np.outer(sd, sd)  # the plain formula, not the code under test
        assert np.all(np.abs(moved - uc.corr) <= uc.corr_error + 1e-12)
    assert np.max(uc.corr_error) < 1.0 and np.max(uc.corr_error[:4, :4]) < 1e-3
