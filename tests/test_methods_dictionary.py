"""Dictionary learning (toylab.methods.dictionary) on handwritten superposition models whose
true features are known by construction, against independent NumPy references."""

import math

import jax
import numpy as np
import pytest

from toylab import ToylabError
from toylab._compile_cache import CompileCounter
from toylab.distributions import SparseFeatures
from toylab.methods import dictionary as dl
from toylab.models import MLP, SuperpositionReLU
from toylab.train import TrainConfig

SHORT = TrainConfig(num_steps=300, batch_size=128, learning_rate=1e-2)


def _rotation(theta):
    c, s = math.cos(theta), math.sin(theta)
    return np.array([[c, -s], [s, c]])


def _orthogonal(n, seed=0):
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(n, n)))
    return q


def _numpy_scores(dec, W, rc):
    """Independent reference: explicit loops over features and latents in float64."""
    n, L = W.shape[1], dec.shape[1]
    best = []
    for i in range(n):
        wi = W[:, i] / math.sqrt(sum(v * v for v in W[:, i]))
        cs = []
        for j in range(L):
            dj = dec[:, j] / math.sqrt(sum(v * v for v in dec[:, j]))
            cs.append(sum(a * b for a, b in zip(wi, dj, strict=True)))
        best.append(max(cs))
    return sum(best) / n, sum(c >= rc for c in best) / n, best


# ------------------------------------------------------------------ exact scores (c), (b)


def test_scores_of_handmade_decoders_match_numpy():
    W = _orthogonal(3)[:, :3] * np.array([1.0, 2.0, 0.7])  # norms 1, 2, 0.7: all represented
    # the true directions themselves: every feature found with cosine 1
    r = dl.recovery_scores(W / np.linalg.norm(W, axis=0), W)
    assert np.allclose(r.mmcs, 1.0, atol=1e-12) and r.recovered_fraction[0] == 1.0
    assert r.matched_fraction[0] == 1.0 and r.duplicates == ((),)
    assert r.best_feature.tolist() == [[0, 1, 2]]
    # a 30-degree rotation in the plane: every max cosine is cos(30°) = 0.866
    r2 = dl.recovery_scores(_rotation(math.pi / 6), np.eye(2), recovered_cos=0.9)
    assert np.allclose(r2.max_cos, math.cos(math.pi / 6), atol=1e-12)
    assert r2.recovered_fraction[0] == 0.0
    r3 = dl.recovery_scores(_rotation(math.pi / 6), np.eye(2), recovered_cos=0.85)
    assert r3.recovered_fraction[0] == 1.0
    # random decoders (two dictionaries at once) against the loop reference
    rng = np.random.default_rng(1)
    W = rng.normal(size=(4, 6))
    W *= 1.5 / np.linalg.norm(W, axis=0)
    decs = rng.normal(size=(2, 4, 5))
    r = dl.recovery_scores(decs, W, recovered_cos=0.5)
    for d in range(2):
        mmcs, frac, best = _numpy_scores(decs[d], W, 0.5)
        # float64 sums of 4 products, reordered: agree to a few ulps
        assert r.mmcs[d] == pytest.approx(mmcs, abs=1e-12)
        assert r.recovered_fraction[d] == frac
        assert np.allclose(r.max_cos[d], best, atol=1e-12)
    # a feature at or below min_norm is not represented and left out of the scores
    W2 = np.eye(2) * np.array([1.0, 0.3])
    r4 = dl.recovery_scores(np.eye(2)[:, :1], W2)
    assert r4.represented.tolist() == [True, False] and r4.mmcs[0] == 1.0


def test_identical_true_features_cannot_both_be_told_apart():
    """W has two identical columns: one latent along them 'recovers' both by max cosine,
    but a one-to-one matching gives it to one of them only; the pair is flagged."""
    W = np.array([[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    r = dl.recovery_scores(np.eye(2), W)
    assert r.indistinguishable == ((0, 1),)
    assert r.max_cos.tolist() == [[1.0, 1.0, 1.0]] and r.mmcs[0] == 1.0
    # hand computation: 2 latents for 3 features, one-to-one: cosines {1, 0} on 0/1, 1 on 2
    assert sorted(r.matched_cos[0, :2].tolist()) == [0.0, 1.0] and r.matched_cos[0, 2] == 1.0
    assert r.matched_fraction[0] == pytest.approx(2 / 3)
    # a dictionary with the direction twice: the two latents are duplicates (cos 1 > 0.9)
    r2 = dl.recovery_scores(np.array([[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]), W)
    assert r2.duplicates == (((0, 1),),) and r2.matched_fraction[0] == 1.0


# ------------------------------------------------------------------ training (a), (f)


def test_orthogonal_model_is_recovered_in_one_program():
    """m = n and W orthogonal: h is a rotation of x, whose coordinates are independent,
    sparse and non-negative, so the dictionary D = W with f = x reconstructs exactly with
    the fewest active latents: the global optimum of an L1 SAE of n latents has MMCS 1.
    Gradient training from a random start can stop in a local minimum where one latent
    covers two features (MMCS ~0.75; seen in about 1 of 8 dictionaries here), so the test
    asks that, for each penalty, the median over 4 seeds exceeds 0.95 (within 18° of
    every true direction) and the best reaches 0.99. Seeds x penalties train in one
    compiled program; the same shapes with other penalty values and keys compile nothing."""
    n = 4
    model = SuperpositionReLU.from_weights(_orthogonal(n), np.zeros(n))
    dist = SparseFeatures(probs=(0.2,) * n)
    cfg = TrainConfig(num_steps=1000, batch_size=64, learning_rate=1e-2)
    jax.clear_caches()
    with CompileCounter() as compiled:
        res = dl.dictionary_learning(
            model, dist, key=jax.random.key(0), penalties=(0.01, 0.03), num_seeds=4,
            train=cfg, resample_every=250, num_samples=2048,
        )  # fmt: skip
        dl.train_dictionaries(
            model, dist, key=jax.random.key(1), penalties=(0.02, 0.05), num_seeds=4,
            train=cfg, resample_every=250,
        )  # fmt: skip
    assert compiled.count("_train_program") == 1, compiled
    assert compiled.count("_score_program") == 1, compiled
    assert res.num_dictionaries == 8 and res.recovery.mmcs.shape == (8,)
    mmcs = res.recovery.mmcs.reshape(4, 2)  # seed-major
    assert np.all(np.median(mmcs, axis=0) > 0.95) and np.all(mmcs.max(axis=0) > 0.99), mmcs
    best = int(np.argmax(res.recovery.mmcs))
    assert res.recovery.recovered_fraction[best] == 1.0
    assert res.tier == "exact" and res.loss_tier == "sampled"
    m0 = res.member(0)
    assert m0.sampled == res.recovery.mmcs[0] and m0.neuron == "hidden_0"
    assert "dictionary 0 (seed 0, λ=0.01)" in m0.detail
    # the best dictionary reconstructs: loss recovered near 1, inside its own interval
    lo, hi = res.loss_recovered_ci[best]
    assert lo <= res.loss_recovered[best] <= hi and res.loss_recovered[best] > 0.8
    assert res.zero_loss > res.clean_loss


# ------------------------------------------------------------------ top-k (d), resampling (e)


def test_topk_keeps_exactly_k_latents():
    """With every pre-activation positive (b_enc = 10 and few small steps) the top-k code
    has exactly k non-zero latents on every input."""
    n, L = 4, 6
    model = SuperpositionReLU.from_weights(_orthogonal(n), np.zeros(n))
    dist = SparseFeatures(probs=(0.5,) * n)
    init = dl.init_dictionaries(jax.random.key(3), 3, n, L, tied=False)
    init = {**init, "b_enc": np.full((3, L), 10.0, np.float32)}
    dicts = dl.train_dictionaries(
        model, dist, key=jax.random.key(0), sparsity="topk", penalties=(1, 2, 5), num_seeds=1,
        num_latents=L, train=TrainConfig(num_steps=5, batch_size=16), resample_every=0, init=init,
    )  # fmt: skip
    h = np.asarray(dist.sample(jax.random.key(9), 64).x) @ _orthogonal(n).T
    for d, k in enumerate((1, 2, 5)):
        f = dl.Dictionaries.encode(dicts, h, d)
        assert np.all((f > 0).sum(axis=1) == k), (k, (f > 0).sum(axis=1))


def test_resampling_revives_dead_latents():
    """Latents 0-2 of 4 start dead (b_enc = -100: they never fire, so get no gradient) and
    the one live latent cannot serve 4 features. Without resampling they stay dead; with
    it they are re-initialised, fire again and raise the MMCS (0.30 -> 0.48 here)."""
    n, L = 4, 4
    model = SuperpositionReLU.from_weights(_orthogonal(n), np.zeros(n))
    dist = SparseFeatures(probs=(0.2,) * n)
    init = dl.init_dictionaries(jax.random.key(4), 1, n, L, tied=False)
    b = np.zeros((1, L), np.float32)
    b[0, :3] = -100.0
    init = {**init, "b_enc": b}
    out = {}
    for every in (0, 100):
        dicts = dl.train_dictionaries(
            model, dist, key=jax.random.key(0), penalties=(0.01,), num_seeds=1, num_latents=L,
            train=SHORT, resample_every=every, init=init,
        )  # fmt: skip
        res = dl.score_dictionaries(dicts, key=jax.random.key(1), num_samples=2048)
        out[every] = (int(dicts.resampled[0]), res.dead[0], res.recovery.mmcs[0])
    assert out[0][0] == 0 and out[0][1][:3].all()
    assert out[100][0] >= 3 and not out[100][1].any(), out[100]
    assert out[100][2] > out[0][2] + 0.1, (out[0][2], out[100][2])


# ------------------------------------------------------------------ replacement loss (g)


def test_replacement_loss_with_perfect_reconstruction_is_the_clean_loss():
    rng = np.random.default_rng(2)
    W = rng.normal(size=(2, 5))
    b = rng.normal(size=5) * 0.1
    net = SuperpositionReLU.from_weights(W, b).to_network().numpy(np.float64)
    dist = SparseFeatures(probs=(0.3,) * 5, importance=(1.0, 0.8, 0.6, 0.4, 0.2))
    x = np.asarray(dist.sample(jax.random.key(0), 256).x, np.float64)
    clean, patched, zero = (np.asarray(a) for a in dl.replacement_losses(net, dist, x, lambda h: h))
    assert np.array_equal(clean, patched)
    imp = np.array(dist.importance)
    # independent references: x' = ReLU(Wᵀ W x + b), and ReLU(b) with the hidden layer zeroed
    ref = ((np.maximum(x @ W.T @ W + b, 0) - x) ** 2 * imp).sum(axis=1)
    assert np.allclose(clean, ref, rtol=1e-5, atol=1e-6)  # float32 importances
    assert np.allclose(zero, ((np.maximum(b, 0) - x) ** 2 * imp).sum(axis=1), rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------ bad inputs


def test_bad_inputs_are_clear_errors():
    model = SuperpositionReLU.from_weights(_orthogonal(3), np.zeros(3))
    dist = SparseFeatures(probs=(0.2,) * 3)
    key = jax.random.key(0)
    cases = [
        (dict(sparsity="topk", penalties=(2, 5)), "penalties[1] must be <= 3"),
        (dict(penalties=(0.1, -1.0)), "penalties[1] must be >= 0"),
        (dict(sparsity="lasso"), "sparsity must be one of ['l1', 'topk']"),
        (dict(resample_every=7), "resample_every must be a divisor of train.num_steps"),
        (dict(num_latents=0), "num_latents must be >= 1"),
    ]
    for kwargs, msg in cases:
        with pytest.raises(ToylabError, match="train_dictionaries") as err:
            dl.train_dictionaries(model, dist, key=key, **kwargs)
        assert msg in str(err.value), str(err.value)
    mlp = MLP.from_weights([np.eye(3), np.ones((3, 1))])
    with pytest.raises(ToylabError, match="model must be a toy model of superposition"):
        dl.train_dictionaries(mlp, dist, key=key)
    with pytest.raises(ToylabError, match="dist must be the model's SparseFeatures"):
        dl.train_dictionaries(model, SparseFeatures(probs=(0.2,) * 4), key=key)


# ------------------------------------------------------------------ compare and the CLI


def test_compare_on_a_superposition_run_runs_dictionary_learning(tmp_path, capsys):
    """`toylab compare RUN --quick` on a superposition run: one dictionary_learning row per
    (model member, dictionary), the per-neuron methods listed as not applicable with the
    reason, the stored JSON read back, and the report showing the dictionary table."""
    import json

    from toylab.cli import main
    from toylab.config import parse_config
    from toylab.methods import CompareConfig, CompareResult
    from toylab.methods.compare import METHODS
    from toylab.report import write_report
    from toylab.runs import start_run

    cfg = {"name": "sparse", "seeds": [0, 1],
           "distribution": {"name": "sparse_features", "probs": [0.1] * 4},
           "model": {"kind": "superposition_relu", "hidden": [2]},
           "train": {"loss": "importance_mse", "num_steps": 20, "log_every": 10,
                     "checkpoints": []}}  # fmt: skip
    run = start_run(parse_config(cfg), tmp_path / "run")
    assert main(["compare", str(run.path), "--quick", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "Not applicable to this model: feature_visualization, dataset_examples" in out
    assert "Dictionary learning against the true features" in out
    data = json.loads((run.path / "compare" / "compare.json").read_text())
    res = CompareResult.from_json(data)
    q = CompareConfig.quick()
    per_member = q.dictionary_seeds * len(q.dictionary_penalties)
    assert len(res.rows) == 2 * per_member and len(res.dictionary) == 2 * per_member
    assert {r.method for r in res.rows} == {"dictionary_learning"}
    assert {r.neuron for r in res.rows} == {"hidden_0"}
    assert set(res.not_applicable) == set(METHODS)
    assert res.config.dictionary_penalties == q.dictionary_penalties
    s = res.summary["dictionary_learning"]
    assert s["rows"] == len(res.rows) and s["misleads"] == sum(r.misleads for r in res.rows)
    assert len(s["neurons"]) == s["misleads"]
    assert all(n.split("/")[1].startswith("dictionary ") for n in s["neurons"])
    assert all(0 <= r.sampled <= 1 and r.error == pytest.approx(1 - r.sampled) for r in res.rows)
    text = write_report(run).read_text()
    assert "Dictionary learning against the true features" in text


def test_compare_run_on_a_sweep_uses_each_members_distribution(tmp_path):
    """A sweep over the feature probability: compare_run compares each group of members
    under its own distribution and keys every row and table entry by the run's member."""
    from toylab.config import parse_config
    from toylab.methods import CompareConfig, compare, compare_run
    from toylab.runs import start_run

    cfg = {"name": "sw", "seeds": [0],
           "distribution": {"name": "sparse_features", "num_features": 4},
           "model": {"kind": "superposition_relu", "hidden": [2]},
           "train": {"loss": "importance_mse", "num_steps": 20, "log_every": 10,
                     "checkpoints": []},
           "sweep": {"param": "distribution.feature_probability", "values": [0.5, 0.05]}}  # fmt: skip
    run = start_run(parse_config(cfg), tmp_path / "run")
    budgets = CompareConfig(dictionary_steps=40, dictionary_seeds=1,
                            dictionary_penalties=(1e-2,), dictionary_samples=256)  # fmt: skip
    key = jax.random.key(3)
    res = compare_run(run, key=key, budgets=budgets)
    assert sorted(r.member for r in res.rows) == [0, 1]
    assert sorted(t["model_member"] for t in res.dictionary) == [0, 1]
    # member 1's rows are those of comparing it alone under its own distribution (group 1)
    alone = compare([run.model(1)], run.dist_of(1), key=jax.random.fold_in(key, 1),
                    budgets=budgets)  # fmt: skip
    (mine,) = [r for r in res.rows if r.member == 1]
    assert mine.sampled == alone.rows[0].sampled and mine.detail == alone.rows[0].detail
