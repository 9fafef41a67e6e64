import json
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest
import tomli_w

from toylab import ToylabError
from toylab.config import load_config, parse_config
from toylab.runs import load_run, resume_run, start_run
from toylab.runs.io import load_tree, save_tree

CONFIG = {
    "name": "small",
    "seeds": [0, 1],
    "distribution": {"name": "two_blobs"},
    "model": {"hidden": [5], "activation": "relu"},
    "train": {"num_steps": 120, "log_every": 40, "checkpoints": [60]},
}


def test_run_directory_layout_and_load(tmp_path):
    run = start_run(parse_config(CONFIG), tmp_path / "run")
    names = {p.name for p in (tmp_path / "run").iterdir()}
    assert {"config.toml", "manifest.json", "metrics.jsonl", "checkpoints", "state.npz"} <= names
    m = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert m["status"] == "complete" and m["step"] == 120 and m["format"] == "toylab-run/1"
    assert set(m["versions"]) >= {"toylab", "jax", "flax", "optax"}
    assert [r["member"] for r in m["members"]] == [0, 1] and m["end_time"]
    assert run.checkpoint_steps == [0, 60, 120]
    assert [r["step"] for r in run.metrics] == [0, 40, 80, 120]
    # the resolved config holds the distribution's defaults and round-trips
    cfg = load_config(tmp_path / "run" / "config.toml")
    # (presets resolve to their explicit form, so later default changes cannot alter a run)
    assert cfg.distribution["name"] == "gaussian_mixture" and "means" in cfg.distribution
    assert cfg.make_distribution() == parse_config(CONFIG).make_distribution()
    assert parse_config(cfg.to_dict()) == cfg
    # loaded models reproduce the recorded accuracy
    again = load_run(tmp_path / "run")
    x, y = again.ensemble.eval_x, again.ensemble.eval_y
    for member in range(2):
        acc = float(np.mean(np.argmax(again.model(member)(x), -1) == y))
        assert acc == pytest.approx(float(run.metrics[-1]["accuracy"][member]), abs=1e-6)
    # checkpoints differ from the final parameters
    k0 = again.params_at(0)["layers"][0]["kernel"][...]
    assert not np.allclose(k0, again.params["layers"][0]["kernel"][...])


def test_out_dir_is_never_overwritten_silently(tmp_path):
    start_run(parse_config(CONFIG), tmp_path / "run")
    before = (tmp_path / "run" / "state.npz").read_bytes()
    with pytest.raises(ToylabError, match="already exists and is not empty"):
        start_run(parse_config(CONFIG), tmp_path / "run")
    assert (tmp_path / "run" / "state.npz").read_bytes() == before


def test_resume_in_process_matches_uninterrupted(tmp_path):
    from toylab.runs import _state_tree
    from toylab.train import train

    data = {**CONFIG, "train": {**CONFIG["train"], "schedule": "cosine"}}
    full = start_run(parse_config(data), tmp_path / "full")
    part = start_run(parse_config(data), tmp_path / "part")
    cfg = part.config
    saved = {}

    def grab(ensemble, state, rec, is_ckpt):
        if int(state.step) == 40:
            saved["state"] = state

    train(cfg.make_distribution(), cfg.model, cfg.train, cfg.seeds, callback=grab)
    # roll the run back to its step-40 state, as if killed right after step 40
    save_tree(tmp_path / "part" / "state.npz", _state_tree(saved["state"]))
    man = json.loads((tmp_path / "part" / "manifest.json").read_text())
    (tmp_path / "part" / "manifest.json").write_text(json.dumps({**man, "status": "running"}))
    resumed = resume_run(tmp_path / "part")
    for a, b in zip(jax.tree.leaves(full.params), jax.tree.leaves(resumed.params), strict=True):
        np.testing.assert_array_equal(a, b)
    assert [r["step"] for r in resumed.metrics] == [0, 40, 80, 120]
    assert resumed.manifest["resumed"][0]["at_step"] == 40
    np.testing.assert_array_equal(resumed.metrics[-1]["loss"], full.metrics[-1]["loss"])


@pytest.mark.subprocess
def test_killed_subprocess_resumes_to_identical_parameters(tmp_path):
    """A real SIGKILL in the middle of training, then ``toylab train --resume``."""
    cfg = {**CONFIG, "seeds": [0], "train": {"num_steps": 3000, "log_every": 10,
                                            "checkpoints": "log:4"}}  # fmt: skip
    cfg_path = tmp_path / "cfg.toml"
    cfg_path.write_text(tomli_w.dumps(cfg))
    cmd = [sys.executable, "-m", "toylab", "train", str(cfg_path), "--quiet"]
    run_dir = tmp_path / "killed"
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    proc = subprocess.Popen([*cmd, "--out", str(run_dir)], env=env, start_new_session=True)
    deadline = time.time() + 120
    step = 0
    while time.time() < deadline and proc.poll() is None:
        try:
            step = json.loads((run_dir / "manifest.json").read_text())["step"]
        except (OSError, ValueError, KeyError):
            step = 0
        if step >= 200:
            break
        time.sleep(0.01)
    assert proc.poll() is None, "training finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    man = json.loads((run_dir / "manifest.json").read_text())
    assert man["status"] == "running" and 0 < man["step"] < 3000
    # every file present is whole (atomic writes): all of them load
    load_run(run_dir)
    out = subprocess.run([sys.executable, "-m", "toylab", "train", "--resume", str(run_dir),
                          "--quiet"], env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert out.returncode == 0, out.stderr
    ref_dir = tmp_path / "ref"
    out = subprocess.run([*cmd, "--out", str(ref_dir)], env=env, capture_output=True, text=True,
                         timeout=300)  # fmt: skip
    assert out.returncode == 0, out.stderr
    a, b = load_run(run_dir), load_run(ref_dir)
    assert a.manifest["status"] == "complete" and a.manifest["resumed"]
    for x, y in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params), strict=True):
        np.testing.assert_array_equal(x, y)
    assert [r["step"] for r in a.metrics] == [r["step"] for r in b.metrics]


def test_corrupted_and_incompatible_runs_give_clear_errors(tmp_path):
    from toylab._errors import CorruptRun

    start_run(parse_config(CONFIG), tmp_path / "run")
    d = tmp_path / "run"
    for name in ("state.npz", "checkpoints/step_00000120.npz", "checkpoints/step_00000060.npz"):
        data = (d / name).read_bytes()
        (d / name).write_bytes(data[: len(data) // 2])  # torn: the recorded SHA-256 catches it
        with pytest.raises(CorruptRun, match="does not match the SHA-256"):
            load_run(d)
        (d / name).write_bytes(data)
    load_run(d)
    man = json.loads((d / "manifest.json").read_text())
    (d / "manifest.json").write_text(json.dumps({**man, "format": "toylab-run/999"}))
    with pytest.raises(ToylabError, match="toylab-run/999"):
        load_run(d)
    (d / "manifest.json").write_text("{not json")
    with pytest.raises(ToylabError, match="corrupted"):
        load_run(d)
    with pytest.raises(ToylabError, match="does not exist"):
        load_run(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ToylabError, match="not a toylab run directory"):
        load_run(tmp_path / "empty")


def test_save_tree_refuses_mismatched_structure(tmp_path):
    save_tree(tmp_path / "a.npz", {"w": np.zeros((2, 3), np.float32)})
    with pytest.raises(ToylabError, match="expected"):
        load_tree(tmp_path / "a.npz", {"w": np.zeros((3, 3), np.float32)})
    with pytest.raises(ToylabError, match="has no array"):
        load_tree(tmp_path / "a.npz", {"v": np.zeros((2, 3), np.float32)})
    # arrays are stored without pickle
    with np.load(tmp_path / "a.npz", allow_pickle=False) as f:
        assert f["['w']"].dtype == np.float32
