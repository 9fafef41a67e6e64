"""Sweeps over any config field: axes by dotted path, a grid with seeds on top, members whose
shapes agree in one compiled program (per-member distribution parameters), shape groups,
member names, and the initialiser settings."""

import json
import math

import jax
import numpy as np
import pytest
from flax import nnx

from toylab import ToylabError
from toylab.config import parse_config
from toylab.distributions import make
from toylab.models import ModelConfig, build_model
from toylab.models.init import InitConfig, init_params
from toylab.runs import _dist_arg, _state_tree, load_run, resume_run, start_run
from toylab.runs.io import save_tree
from toylab.train import (
    Ensemble,
    EnsembleGroups,
    SweepConfig,
    TrainConfig,
    init_ensemble,
    init_members,
    train,
)
from toylab.train import core as _core

SPARSE = {"name": "sparse_features", "num_features": 6, "importance_decay": 0.7}
SUPER = {"kind": "superposition_relu", "hidden": [2]}
TWO_AXES = {
    "axes": [
        {"param": "distribution.feature_probability", "values": [1.0, 0.5, 0.1]},
        {"param": "train.weight_decay", "values": [0.0, 0.01]},
    ]
}
CONFIG = {
    "name": "sweep",
    "seeds": [0, 1],
    "distribution": SPARSE,
    "model": SUPER,
    "train": {"loss": "importance_mse", "num_steps": 60, "log_every": 20, "checkpoints": [30],
              "batch_size": 64, "num_eval_samples": 256},
    "sweep": TWO_AXES,
}  # fmt: skip


# ------------------------------------------------------------------ config


def test_multi_axis_config_round_trips_and_names_members():
    c = parse_config({**CONFIG, "model": {**SUPER, "init": {"weights": "normal",
                                                            "weight_scale": 0.5}}})  # fmt: skip
    assert parse_config(c.to_dict()) == c
    assert c.to_dict()["sweep"] == TWO_AXES
    members = c.members()
    assert len(members) == 2 * 3 * 2
    # member i: seed seeds[i // P], grid point i % P, first axis slowest
    assert members[9].label == "seed 1, feature_probability=0.5, weight_decay=0.01"
    assert members[9].dist.probs == (0.5,) * 6 and members[9].train.weight_decay == 0.01
    assert members[9].seed == 1 and members[9].point == (0.5, 0.01)
    # the one-axis form of the first sweeps is still written (and read) as param/values
    old = parse_config({**CONFIG, "distribution": {**SPARSE, "feature_probability": 0.1},
                        "sweep": {"param": "learning_rate", "values": [0.1, 0.2]}})  # fmt: skip
    assert old.to_dict()["sweep"] == {"param": "train.learning_rate", "values": [0.1, 0.2]}
    assert parse_config(old.to_dict()) == old
    assert old.sweep is not None and old.sweep.param == "learning_rate"


@pytest.mark.parametrize(
    "sweep, match",
    [
        ({"param": "train.learning_rat", "values": [0.1]}, "Did you mean 'learning_rate'"),
        ({"param": "distribution.feature_prob", "values": [0.1]},
         "no parameter 'feature_prob'. Did you mean 'feature_probability'"),
        ({"param": "modle.hidden", "values": [[2]]}, "Did you mean 'model'"),
        ({"param": "model.init.weight_scal", "values": [1.0]}, "Did you mean 'weight_scale'"),
        ({"param": "distribution.feature_probability", "values": [0.5, 1.5]},
         r"\[sweep\] distribution.feature_probability = 1.5 gives an invalid member: "
         r"\[distribution\] SparseFeatures: feature_probability must be <= 1.0"),
        ({"param": "train.learning_rate", "values": [0.1, -1]},
         r"train.learning_rate = -1 .*learning_rate must be a finite number > 0"),
        ({"param": "train.num_steps", "values": [10, 20]}, "cannot be swept"),
        ({"param": "train.weight_decay", "values": []}, "non-empty list"),
        ({"param": "train.weight_decay", "values": [0.1, 0.1]}, "must be distinct"),
        ({"param": "train.weight_decay", "values": [0.1], "axes": []}, "not both"),
        ({"axes": [{"param": "train.weight_decay", "value": [0.1]}]}, "Did you mean 'values'"),
    ],
)  # fmt: skip
def test_bad_axes_name_the_axis_the_value_and_the_fix(sweep, match):
    with pytest.raises(ToylabError, match=match):
        parse_config({**CONFIG, "distribution": {**SPARSE, "feature_probability": 0.2},
                      "sweep": sweep})  # fmt: skip


# ------------------------------------------------------------------ one program


def test_two_axis_sweep_is_one_program_and_each_member_samples_its_own_distribution():
    cfg = parse_config(CONFIG)
    before = _core._segment._cache_size()
    res = train(_dist_arg(cfg), cfg.model, cfg.train, cfg.seeds, cfg.sweep)
    ens = res.ensemble
    assert isinstance(ens, Ensemble) and ens.num_members == 12
    # one training program for all 12 members (two axes x two seeds); the distribution's
    # swept fields and the weight decay are its per-member arguments
    assert _core._segment._cache_size() - before == 1
    assert set(ens.dist_fields) == {"feature_probability", "probs"}
    np.testing.assert_allclose(ens.hparams["weight_decay"], [0.0, 0.01] * 6)
    p = np.array([ens.dist_of(m).feature_probability for m in range(12)])
    np.testing.assert_array_equal(p, [1.0, 1.0, 0.5, 0.5, 0.1, 0.1] * 2)
    # the batches the step trains on (the step's own _batch, vmapped as in the step), and
    # the held-out sets: the fraction of nonzero inputs of member m is a binomial
    # proportion with mean p_m; 6 standard deviations (plus one count) never fail by chance
    spec, arrays = ens._spec(), ens._arrays()
    num = 4096
    spec = _core._Spec(spec.graphdef, spec.dist, TrainConfig(batch_size=num), spec.loss,
                       fields=spec.fields)  # fmt: skip
    x, _, _ = jax.vmap(lambda k, dp: _core._batch(spec, k, None, np.int32(3), dp))(
        arrays["data_keys"], arrays["dist"]
    )
    for name, data in (("batch", np.asarray(x)), ("held-out", np.asarray(ens.eval_x))):
        count = data[0].size
        frac = (data != 0).reshape(12, -1).mean(1)
        tol = 6 * np.sqrt(p * (1 - p) / count) + 1 / count
        assert np.all(np.abs(frac - p) <= tol), (name, frac, p)
    # the loss is importance-weighted with the member's own importances: recompute it in
    # NumPy from the member's model and its held-out set
    last = res.metrics[-1]["loss"]
    for m in (0, 5):
        xm = np.asarray(ens.eval_x[m], np.float64)
        w = np.asarray(res.model(m).W[...], np.float64)
        b = np.asarray(res.model(m).b[...], np.float64)
        out = np.maximum(xm @ w.T @ w + b, 0)
        imp = 0.7 ** np.arange(6)
        ref = np.mean(np.sum(imp * (out - xm) ** 2, -1))
        assert last[m] == pytest.approx(ref, rel=1e-4)  # float32 forward pass vs float64


def test_importance_is_per_member_too():
    sweep = SweepConfig("distribution.importance_decay", (1.0, 0.5))
    dist = {"name": "sparse_features", "num_features": 4, "feature_probability": 0.5}
    ens, _ = init_ensemble(dist, ModelConfig(**SUPER), TrainConfig(loss="importance_mse",
                           num_eval_samples=64), [0], sweep)  # fmt: skip
    assert set(ens.dist_fields) == {"importance", "importance_decay"}
    np.testing.assert_allclose(np.asarray(ens.dist_params["importance"]),
                               [[1, 1, 1, 1], [1, 0.5, 0.25, 0.125]])  # fmt: skip
    # same data key, same distribution of x: the held-out sets are equal, the losses differ
    np.testing.assert_array_equal(ens.eval_x[0], ens.eval_x[1])


# ------------------------------------------------------------------ runs


def test_multi_axis_sweep_run_resumes_bit_identically(tmp_path):
    cfg = parse_config(CONFIG)
    full = start_run(cfg, tmp_path / "full")
    part = start_run(cfg, tmp_path / "part")
    saved = {}

    def grab(ensemble, state, rec, is_ckpt):
        if int(state.step) == 20:
            saved["state"] = state

    c = part.config
    train(_dist_arg(c), c.model, c.train, c.seeds, c.sweep, callback=grab)
    save_tree(tmp_path / "part" / "state.npz", _state_tree(saved["state"]))
    man = json.loads((tmp_path / "part" / "manifest.json").read_text())
    (tmp_path / "part" / "manifest.json").write_text(json.dumps({**man, "status": "running"}))
    resumed = resume_run(tmp_path / "part")
    for a, b in zip(jax.tree.leaves(full.params), jax.tree.leaves(resumed.params), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(resumed.metrics[-1]["loss"], full.metrics[-1]["loss"])
    # the manifest names every member by its swept values; run.dist refuses to pick one
    row = resumed.manifest["members"][3]
    assert row["label"] == "seed 0, feature_probability=0.5, weight_decay=0.01"
    assert row["values"] == {"distribution.feature_probability": 0.5, "train.weight_decay": 0.01}
    assert len(resumed.manifest["programs"]) == 1
    assert resumed.dist_of(9).feature_probability == 0.5
    assert resumed.member_label(9) == "seed 1, feature_probability=0.5, weight_decay=0.01"
    with pytest.raises(ToylabError, match="dist_of"):
        _ = resumed.dist


def test_shape_group_sweep_trains_saves_and_loads_every_member(tmp_path):
    data = {
        "name": "widths", "seeds": [0, 1], "distribution": {"name": "two_blobs"},
        "model": {"hidden": [4]}, "train": {"num_steps": 30, "log_every": 15},
        "sweep": {"axes": [{"param": "model.hidden", "values": [[2], [3]]},
                           {"param": "train.learning_rate", "values": [0.01, 0.1]}]},
    }  # fmt: skip
    cfg = parse_config(data)
    ens, state = init_members(cfg.make_distribution(), cfg.model, cfg.train, cfg.seeds, cfg.sweep)
    assert isinstance(ens, EnsembleGroups) and ens.indices == ((0, 1, 4, 5), (2, 3, 6, 7))
    with pytest.raises(ToylabError, match="2 programs .*hidden=\\[2\\].*init_members"):
        init_ensemble(cfg.make_distribution(), cfg.model, cfg.train, cfg.seeds, cfg.sweep)
    run = start_run(cfg, tmp_path / "run")
    progs = run.manifest["programs"]
    assert [p["members"] for p in progs] == [[0, 1, 4, 5], [2, 3, 6, 7]]
    assert "hidden=[2]" in progs[0]["description"]
    again = load_run(tmp_path / "run")
    x = np.asarray(again.dist.sample(jax.random.key(1), 64).x)
    for m in range(8):
        width = 2 if m % 4 < 2 else 3
        model = again.model(m)
        assert model.widths["hidden_0"] == width
        assert again.member_label(m).endswith(f"hidden=[{width}], learning_rate="
                                              f"{[0.01, 0.1][m % 2]:g}")  # fmt: skip
        # each member's own metrics: its final accuracy is what its loaded model scores on
        # the held-out set (shared by all members of this unswept distribution)
        g, i = again.ensemble.locate(m)
        group = again.ensemble.groups[g]
        acc = np.mean(np.argmax(model(group.eval_x), -1) == group.eval_y)
        assert acc == pytest.approx(float(again.metrics[-1]["accuracy"][m]), abs=1e-6)
        assert model(x).shape == (64, 2)
    # checkpoints load for every member; a member at step 0 is its initialisation
    p0 = again.params_at(0)
    init = build_model(dataclasses_replace(cfg.model, hidden=(3,)), again.dist,
                       jax.random.fold_in(jax.random.key(1), 0))  # fmt: skip
    k0 = again.ensemble.model(p0, 6).layers[0].kernel[...]
    np.testing.assert_array_equal(k0, init.layers[0].kernel[...])
    assert len(again.models()) == 8


def dataclasses_replace(obj, **kw):
    import dataclasses

    return dataclasses.replace(obj, **kw)


def test_old_single_param_sweeps_and_old_manifests_still_load(tmp_path):
    data = {**CONFIG, "distribution": {"name": "two_blobs"}, "model": {"hidden": [3]},
            "train": {"num_steps": 10, "log_every": 10},
            "sweep": {"param": "train.learning_rate", "values": [0.01, 0.1]}}  # fmt: skip
    run = start_run(parse_config(data), tmp_path / "run")
    assert [run.member_label(m) for m in range(4)] == [
        "seed 0, learning_rate=0.01", "seed 0, learning_rate=0.1",
        "seed 1, learning_rate=0.01", "seed 1, learning_rate=0.1",
    ]  # fmt: skip
    assert [r["sweep_value"] for r in run.manifest["members"]] == [0.01, 0.1, 0.01, 0.1]
    # a manifest written before sweeps had axes: no labels, values or programs
    man = json.loads((tmp_path / "run" / "manifest.json").read_text())
    man.pop("programs")
    man["members"] = [{"member": r["member"], "seed": r["seed"], "sweep_value": r["sweep_value"]}
                      for r in man["members"]]  # fmt: skip
    (tmp_path / "run" / "manifest.json").write_text(json.dumps(man))
    old = load_run(tmp_path / "run")
    assert old.member_label(3) == "seed 1, learning_rate=0.1"
    assert old.ensemble.member_value(3) == 0.1
    for a, b in zip(jax.tree.leaves(old.params), jax.tree.leaves(run.params), strict=True):
        np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------ initialisers


def test_init_settings_give_the_stated_distribution_and_match_build_model():
    """Reference: the stated distributions (N(0, s^2), U(-s, s), a constant), checked by
    moments with their sampling error, and build_model bit for bit."""
    dist = make("sparse_features", num_features=400, feature_probability=0.1)
    keys = jax.vmap(jax.random.key)(np.array([0, 1], np.uint32))
    cases = [
        (InitConfig(weights="normal", weight_scale=0.1, biases="constant", bias_scale=-0.3),
         0.1, "constant"),
        (InitConfig(weights="uniform", weight_scale=2.0, biases="normal", bias_scale=0.5),
         2.0 / math.sqrt(3), "normal"),
    ]  # fmt: skip
    for init, sd, bias in cases:
        config = ModelConfig(kind="superposition_linear", hidden=(50,), init=init)
        _, params = init_params(config, dist, keys)
        w = np.asarray(params["W"][...][0], np.float64).ravel()  # 20000 draws
        # the sample sd of n normal (or uniform) draws has relative sd <= 1/sqrt(n/2)
        # (the kurtosis of a uniform is smaller); 6 of them never fail by chance
        assert abs(w.std() / sd - 1) < 6 / math.sqrt(w.size / 2)
        assert abs(w.mean()) < 6 * sd / math.sqrt(w.size)
        if init.weights == "uniform":
            assert w.min() >= -2.0 and w.max() <= 2.0 and w.max() > 1.99
        b = np.asarray(params["b"][...][0], np.float64)
        if bias == "constant":
            np.testing.assert_array_equal(b, np.float32(-0.3))
        else:
            assert abs(b.std() / 0.5 - 1) < 6 / math.sqrt(b.size / 2)
        ref = build_model(config, dist, keys[1])
        _, ref_params = nnx.split(ref, nnx.Param)
        for a, r in zip(jax.tree.leaves(params), jax.tree.leaves(ref_params), strict=True):
            np.testing.assert_array_equal(a[1], r)
    with pytest.raises(ToylabError, match="Did you mean 'xavier_normal'"):
        ModelConfig(init={"weights": "xavier_norml"})
    with pytest.raises(ToylabError, match="weight_scale must be a finite number >= 0"):
        ModelConfig(init={"weight_scale": -1})


def test_init_scale_sweep_is_one_program():
    sweep = SweepConfig("model.init.weight_scale", (0.1, 1.0))
    model = ModelConfig(kind="superposition_linear", hidden=(20,),
                        init={"weights": "normal"})  # fmt: skip
    dist = make("sparse_features", num_features=100, feature_probability=0.1)
    ens, state = init_ensemble(dist, model, TrainConfig(loss="mse"), [0], sweep)
    w = np.asarray(state.params["W"][...])
    # the same key, scaled: member 1 is exactly 10 x member 0 up to float32 rounding
    np.testing.assert_allclose(w[1], 10 * w[0], rtol=1e-6)
    assert ens.member_label(1) == "seed 0, weight_scale=1"
