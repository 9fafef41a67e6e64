"""Run directories never lose or misreport data (issue 12, section 1).

Every test here reproduces a defect of the run lifecycle: a user's directory deleted by
--overwrite, initial parameters presented as trained, an interrupted overwrite that
--resume ignored, a half-made directory left by a config that fails validation, files
unreadable by colleagues (mode 0600), bare NaN in metrics.jsonl.
"""

import json
import os
import shutil
import stat

import jax
import numpy as np
import pytest
import tomli_w

from toylab import ToylabError
from toylab._errors import CorruptRun
from toylab.cli import main
from toylab.config import parse_config
from toylab.runs import is_run_dir, load_run, pending_overwrite, start_run
from toylab.runs.io import load_tree

TINY = {
    "name": "tiny",
    "seeds": [0],
    "distribution": {"name": "two_blobs"},
    "model": {"hidden": [3]},
    "train": {"num_steps": 30, "log_every": 10, "checkpoints": [10]},
}


@pytest.fixture(scope="module")
def done(tmp_path_factory):
    """A complete tiny run (copy it before altering it)."""
    return start_run(parse_config(TINY), tmp_path_factory.mktemp("done") / "run").path


def _copy(src, tmp_path, name="run"):
    dst = tmp_path / name
    shutil.copytree(src, dst)
    return dst


def _snapshot(path):
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in path.rglob("*") if p.is_file()}


def _leaves_equal(a, b):
    return all(
        np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    )


# ---------------------------------------------------------------- never delete a user's data


def test_overwrite_never_touches_a_directory_that_is_not_a_toylab_run(tmp_path, capsys):
    manuscript = tmp_path / "manuscript"
    manuscript.mkdir()
    (manuscript / "paper.tex").write_text("\\section{Results} months of work")
    (manuscript / "figs").mkdir()
    (manuscript / "figs" / "f1.pdf").write_bytes(b"%PDF-1.4 ...")
    before = _snapshot(manuscript)
    cfg = tmp_path / "c.toml"
    cfg.write_text(tomli_w.dumps(TINY))
    for argv in (
        ["demo", "--out", str(manuscript), "--steps", "5", "--seeds", "1", "--quiet"],
        ["train", str(cfg), "--out", str(manuscript), "--overwrite", "--quiet"],
        ["train", str(cfg), "--out", str(manuscript), "--quiet"],
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "not a toylab run" in err and "Traceback" not in err
        assert _snapshot(manuscript) == before
    # a manifest.json of something else is not a toylab run either
    (manuscript / "manifest.json").write_text('{"format": "someone-elses/2"}')
    with pytest.raises(ToylabError, match="not a toylab run"):
        start_run(parse_config(TINY), manuscript, overwrite=True)
    assert (manuscript / "paper.tex").exists() and not is_run_dir(manuscript)


def test_overwrite_refuses_a_run_holding_the_users_files(done, tmp_path):
    run_dir = _copy(done, tmp_path)
    (run_dir / "notes.md").write_text("what I found")
    (run_dir / "checkpoints" / "my_best.npz").write_bytes(b"mine")
    before = _snapshot(run_dir)
    with pytest.raises(ToylabError, match=r"did not\s+write \(notes.md, checkpoints/my_best.npz\)"):
        start_run(parse_config(TINY), run_dir, overwrite=True)
    assert _snapshot(run_dir) == before
    assert not (tmp_path / ".run.new").exists()


def test_overwrite_replaces_a_run_only_once_the_new_one_is_complete(done, tmp_path):
    run_dir = _copy(done, tmp_path)
    (run_dir / "report").mkdir()
    (run_dir / "report" / "index.md").write_text("old report")
    new = start_run(parse_config({**TINY, "train": {**TINY["train"], "num_steps": 20}}), run_dir,
                    overwrite=True)  # fmt: skip
    assert new.manifest["num_steps"] == 20 and not (run_dir / "report").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no .run.new / .run.old


# ---------------------------------------------------------------- never misreport parameters


def test_a_finished_run_without_state_npz_loads_its_final_parameters(done, tmp_path):
    ref = load_run(done)
    final = load_tree(done / "checkpoints" / "step_00000030.npz", ref.params)
    initial = load_tree(done / "checkpoints" / "step_00000000.npz", ref.params)
    assert _leaves_equal(ref.params, final) and not _leaves_equal(final, initial)
    run_dir = _copy(done, tmp_path)
    (run_dir / "state.npz").unlink()
    run = load_run(run_dir)
    assert _leaves_equal(run.params, final)  # before the fix: the initial parameters
    assert "step_00000030.npz" in run.params_source and run.step == 30
    # the final checkpoint gone too: the final parameters are unknown, so refuse
    (run_dir / "checkpoints" / "step_00000030.npz").unlink()
    with pytest.raises(CorruptRun, match="will not substitute other parameters"):
        load_run(run_dir)
    assert main(["report", str(run_dir)]) == 2


def test_a_lost_final_checkpoint_falls_back_only_to_a_verified_state(done, tmp_path):
    ref = load_run(done)
    run_dir = _copy(done, tmp_path)
    (run_dir / "checkpoints" / "step_00000030.npz").unlink()
    run = load_run(run_dir)  # state.npz holds the same final parameters, checksum verified
    assert _leaves_equal(run.params, ref.params) and run.params_source.startswith("state.npz")
    man = json.loads((run_dir / "manifest.json").read_text())
    assert man["final_params"] == "checkpoints/step_00000030.npz"
    assert set(man["files"]) == {"state.npz"} | {
        f"checkpoints/step_{s:08d}.npz" for s in (0, 10, 30)
    }


def test_an_interrupted_run_without_state_is_refused_not_reinitialised(done, tmp_path):
    run_dir = _copy(done, tmp_path)
    man = json.loads((run_dir / "manifest.json").read_text())
    (run_dir / "manifest.json").write_text(json.dumps({**man, "status": "running"}))
    (run_dir / "state.npz").unlink()
    with pytest.raises(CorruptRun, match="no saved training state"):
        load_run(run_dir)


def _interrupt_at(monkeypatch, step):
    """Make training stop as if killed right after saving ``step``."""
    import toylab.runs as runs

    original = runs._Writer.__call__

    def writer(self, ensemble, state, rec, is_ckpt):
        original(self, ensemble, state, rec, is_ckpt)
        if int(state.step) >= step:
            raise KeyboardInterrupt

    monkeypatch.setattr(runs._Writer, "__call__", writer)


def test_an_interrupted_overwrite_is_resumed_and_swapped_in(done, tmp_path, monkeypatch, capsys):
    new_cfg = {**TINY, "seeds": [5], "train": {**TINY["train"], "num_steps": 40}}
    reference = start_run(parse_config(new_cfg), tmp_path / "reference")
    run_dir = _copy(done, tmp_path)
    old = _snapshot(run_dir)
    with monkeypatch.context() as mp:
        _interrupt_at(mp, 20)
        with pytest.raises(KeyboardInterrupt):
            start_run(parse_config(new_cfg), run_dir, overwrite=True)
    assert _snapshot(run_dir) == old  # the old run is intact until the new one is complete
    assert pending_overwrite(run_dir) == tmp_path / ".run.new"
    assert main(["info", str(run_dir)]) == 0
    assert f"toylab train --resume {run_dir}" in capsys.readouterr().out
    # before the fix, --resume silently returned the old run
    assert main(["train", "--resume", str(run_dir), "--quiet"]) == 0
    resumed = load_run(run_dir)
    assert resumed.manifest["seeds"] == [5] and resumed.manifest["status"] == "complete"
    assert resumed.manifest["resumed"][0]["at_step"] == 20
    assert _leaves_equal(resumed.params, reference.params)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reference", "run"]
    # the manifest of the resumed run records every array file with its SHA-256, those
    # written before the interruption too
    from toylab.runs.io import sha256_file

    files = resumed.manifest["files"]
    on_disk = {p.relative_to(run_dir).as_posix() for p in run_dir.rglob("*.npz")}
    assert set(files) == on_disk and "checkpoints/step_00000010.npz" in files
    for rel, digest in files.items():
        assert sha256_file(run_dir / rel) == digest


# ---------------------------------------------------------------- validate before writing

INCOMPATIBLE = [
    ({"model": {"kind": "onehot_mlp", "hidden": [4]}}, "modular-arithmetic"),
    ({"distribution": {"name": "sparse_features", "probs": [0.1, 0.2]}}, "cross_entropy"),
    ({"train": {"data": "full", "num_steps": 5}}, "needs a finite distribution"),
    ({"train": {"batch_size": 10**12, "num_steps": 5}}, r"batch_size = 1000000000000 needs"),
    ({"train": {"num_eval_samples": 10**12, "num_steps": 5}}, "num_eval_samples"),
]  # fmt: skip


@pytest.mark.parametrize("change, match", INCOMPATIBLE)
def test_a_config_that_cannot_train_writes_nothing(tmp_path, change, match):
    with pytest.raises(ToylabError, match=match):
        start_run(parse_config({**TINY, **change}), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_a_failed_validation_does_not_block_the_corrected_rerun(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text(tomli_w.dumps({**TINY, "model": {"kind": "onehot_mlp", "hidden": [3]}}))
    good = tmp_path / "good.toml"
    good.write_text(tomli_w.dumps(TINY))
    out = str(tmp_path / "run")
    assert main(["train", str(bad), "--out", out, "--quiet"]) == 2
    assert "[model]" in capsys.readouterr().err
    assert main(["train", str(good), "--out", out, "--quiet"]) == 0


# ---------------------------------------------------------------- files others can read


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_run_files_respect_the_umask(tmp_path, umask, mode):
    from toylab.runs.io import atomic_write_text, save_tree

    old = os.umask(umask)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
        save_tree(tmp_path / "b.npz", {"w": np.zeros(2)})
        (tmp_path / "c.txt").write_text("x")  # what a plain open() gives: the reference
    finally:
        os.umask(old)
    for name in ("a.txt", "b.npz", "c.txt"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode, name


def test_a_real_run_is_readable_by_colleagues(done):
    for p in done.rglob("*"):
        if p.is_file():
            assert stat.S_IMODE(p.stat().st_mode) & 0o044 == 0o044, p  # umask 022 in CI


# ---------------------------------------------------------------- strict JSON, divergence


def test_metrics_are_strict_json_and_diverged_members_are_named(tmp_path):
    cfg = {**TINY, "model": {"hidden": [2]},
           "train": {**TINY["train"], "optimizer": "sgd", "num_steps": 20},
           "sweep": {"param": "train.learning_rate", "values": [0.01, 1e30]}}  # fmt: skip
    run = start_run(parse_config(cfg), tmp_path / "run")

    def no_constants(name):
        raise AssertionError(f"non-standard JSON constant {name} in metrics.jsonl")

    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    records = [json.loads(line, parse_constant=no_constants) for line in lines]
    assert records[-1]["loss"][0] is not None and records[-1]["loss"][1] is None
    assert np.isnan(run.metrics[-1]["loss"][1])  # null reads back as NaN
    assert list(run.diverged) == [1] and "learning_rate=1e+30" in run.diverged[1]
    json.loads((tmp_path / "run" / "manifest.json").read_text(), parse_constant=no_constants)
    from toylab.report import write_report

    text = write_report(run).read_text()
    assert "## Diverged members" in text
    assert "1 (seed 0, learning_rate=1e+30) **diverged**" in text
    assert "0 (seed 0, learning_rate=0.01) |" in text
    summary = (tmp_path / "run" / "report" / "summary.json").read_text()
    json.loads(summary, parse_constant=no_constants)
    from toylab.viz.atlas import write_atlas

    index = write_atlas(run, num=16, dynamics=False, circuits=False, num_samples=20)
    assert "member 1 (seed 0, learning_rate=1e+30) diverged" in index.read_text()
    page = (index.parent / "member0" / "hidden_0-0.html").read_text()
    assert "member 0 (seed 0, learning_rate=0.01)" in page
    run_page = (index.parent / "run.html").read_text()
    assert "learning_rate swept over [0.01, 1e+30]" in run_page
    assert "diverged at step" in run_page and "All 2 members in this atlas." in run_page


def test_report_directories_are_toylabs_only_with_their_marker(done, tmp_path):
    from toylab.runs import _foreign_entries

    run_dir = _copy(done, tmp_path)
    (run_dir / "dynamics").mkdir()
    (run_dir / "dynamics" / "my_analysis.py").write_text("mine")
    (run_dir / "universality").mkdir()
    (run_dir / "universality" / "universality.json").write_text("{}")
    # a user's own dynamics/ (no marker) is foreign; toylab's universality/ is not
    assert _foreign_entries(run_dir) == ["dynamics"]
    before = _snapshot(run_dir)
    with pytest.raises(ToylabError, match=r"did not\s+write \(dynamics\)"):
        start_run(parse_config(TINY), run_dir, overwrite=True)
    assert _snapshot(run_dir) == before
