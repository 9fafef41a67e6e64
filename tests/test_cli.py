import json
import subprocess
import sys
from pathlib import Path

import pytest
import tomli_w

from toylab.cli import main

GOOD = {
    "name": "cli",
    "seeds": [0],
    "distribution": {"name": "two_blobs"},
    "model": {"hidden": [4]},
    "train": {"num_steps": 20, "log_every": 10},
}


def write(tmp_path, data, name="c.toml"):
    p = tmp_path / name
    p.write_text(tomli_w.dumps(data))
    return p


# Ten-plus distinct bad inputs, each must give exit code 2 and a message naming the problem.
BAD_CONFIGS = [
    ({**GOOD, "seeds": 3}, "seeds must be a list of integers"),
    ({**GOOD, "seeds": []}, "seeds must be a non-empty list"),
    ({**GOOD, "seeds": [1, 1]}, "seeds must be distinct"),
    ({**GOOD, "seeds": {"range": 0}}, "seeds.range must be an integer >= 1, got 0"),
    ({**GOOD, "seeds": {"count": 4}}, "unknown key 'count' in [seeds]"),
    ({**GOOD, "epochs": 3}, "unknown key 'epochs'"),
    ({**GOOD, "model": {"hiden": [4]}}, "Did you mean 'hidden'"),
    ({**GOOD, "model": {"activation": "rel"}}, "Did you mean 'relu'"),
    ({**GOOD, "train": {"learning_rate": -0.1}}, "learning_rate must be"),
    ({**GOOD, "train": {"optimizer": "adamm"}}, "Did you mean 'adam'"),
    ({**GOOD, "distribution": {"name": "two_blob"}}, "two_blobs"),
    ({**GOOD, "distribution": {"name": "two_blobs", "scale": -1.0}}, "scale"),
    ({**GOOD, "distribution": {"name": "modular_arithmetic", "p": 6}}, "prime"),
    ({**GOOD, "sweep": {"param": "model.hidden", "values": [1]}}, "hidden must be a list"),
    ({**GOOD, "train": {"data": "full"}}, "needs a finite distribution"),
    ({**GOOD, "model": {"kind": "onehot_mlp"}}, "modular-arithmetic"),
]


@pytest.mark.parametrize("data, match", BAD_CONFIGS)
def test_bad_configs_exit_2_with_clear_message(tmp_path, capsys, data, match):
    code = main(["train", str(write(tmp_path, data)), "--out", str(tmp_path / "r"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    assert match in err and "Traceback" not in err
    assert not (tmp_path / "r" / "state.npz").exists()


@pytest.mark.parametrize(
    "argv, match",
    [
        (["train", "missing.toml", "--out", "x"], "does not exist"),
        (["train"], "needs CONFIG and --out"),
        (["info", "no/such/run"], "does not exist"),
        (["train", "--resume", "no/such/run"], "does not exist"),
        (["demo", "--seeds", "0"], "--seeds must be an integer >= 1"),
        (["demo", "--steps", "-5"], "--steps must be an integer >= 1"),
        (["train", "--resume", "r", "--overwrite"], "takes no CONFIG, --out or --overwrite"),
    ],
)
def test_bad_arguments(argv, match, capsys):
    assert main(argv) == 2
    assert match in capsys.readouterr().err


def test_not_toml(tmp_path, capsys):
    p = tmp_path / "c.toml"
    p.write_text("name = [unclosed")
    assert main(["train", str(p), "--out", str(tmp_path / "r")]) == 2
    assert "not valid TOML" in capsys.readouterr().err


def test_train_info_report(tmp_path, capsys):
    cfg = write(tmp_path, GOOD)
    assert main(["train", str(cfg), "--out", str(tmp_path / "r"), "--quiet", "--report"]) == 0
    assert (tmp_path / "r" / "report" / "index.md").exists()
    assert main(["info", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    assert "status:   complete at step 20/20" in out and "accuracy @ 20" in out
    # a second train into the same directory refuses and keeps the run
    assert main(["train", str(cfg), "--out", str(tmp_path / "r"), "--quiet"]) == 2
    assert "already exists" in capsys.readouterr().err


def test_demo_writes_report(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--steps", "300", "--seeds", "2", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "report:" in printed
    report = out / "report"
    assert (report / "data.png").stat().st_size > 10_000
    assert (report / "neurons_member0.png").stat().st_size > 10_000
    text = (report / "index.md").read_text()
    assert "Bayes-optimal accuracy" in text and "| 1 (seed 1) |" in text
    assert "accuracy (exact)" in text and "P(active) (exact)" in text
    summary = json.loads((report / "summary.json").read_text())
    assert len(summary["members"]) == 2
    assert all(m["accuracy"] > 0.85 for m in summary["members"])
    bayes = summary["bayes"]["accuracy"]
    assert all(0 <= m["exact"]["gap"] < 0.05 and m["exact"]["accuracy"] <= bayes + 1e-12
               for m in summary["members"])  # fmt: skip
    # the atlas carries the method scores on every neuron page and the run page
    page = (out / "atlas" / "member0" / "hidden_0-0.html").read_text()
    assert "Sampled methods scored against the exact answer" in page and "hidden_0:0" in page
    assert "feature_visualization" in (out / "atlas" / "run.html").read_text()
    # rewriting the report keeps the stored comparison (it dropped the section before)
    assert main(["report", str(out), "--quiet"]) == 0
    assert "## Sampled methods vs the exact answer" in (report / "index.md").read_text()
    # running the demo again replaces the finished run cleanly
    assert main(["demo", "--out", str(out), "--steps", "100", "--seeds", "1", "--quiet"]) == 0
    assert json.loads((out / "manifest.json").read_text())["num_steps"] == 100


def test_superposition_demo_writes_report_and_feature_atlas(tmp_path, capsys):
    out = tmp_path / "sup"
    argv = ["demo", "--example", "superposition", "--out", str(out), "--steps", "200",
            "--seeds", "1", "--quiet"]  # fmt: skip
    assert main(argv) == 0
    assert "one program" in capsys.readouterr().out
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(manifest["members"]) == 6 and len(manifest["programs"]) == 1
    text = (out / "report" / "index.md").read_text()
    assert "## Superposition" in text and "Dictionary learning against the true features" in text
    assert (out / "report" / "superposition_dimensionality.png").stat().st_size > 10_000
    assert (out / "atlas" / "member5" / "input-19.html").is_file()


def test_help_and_module_entry_point():
    out = subprocess.run([sys.executable, "-m", "toylab", "--help"], capture_output=True,
                         text=True, timeout=60)  # fmt: skip
    assert out.returncode == 0
    for cmd in ("demo", "train", "info", "report"):
        assert cmd in out.stdout


@pytest.mark.parametrize(
    "data",
    [
        ({"name": "mod", "seeds": [0], "distribution": {"name": "modular_arithmetic", "p": 5},
          "model": {"kind": "onehot_mlp", "hidden": [8]},
          "train": {"data": "full", "num_steps": 20, "log_every": 10}}),
        ({"name": "sparse", "seeds": [0], "distribution": {"name": "sparse_features",
          "probs": [0.1] * 4, "importance": [1.0, 0.7, 0.5, 0.2]},
          "model": {"kind": "superposition_relu", "hidden": [2]},
          "train": {"loss": "importance_mse", "num_steps": 20, "log_every": 10}}),
    ],
)  # fmt: skip
def test_other_kinds_of_runs_report_and_fail_cleanly(tmp_path, capsys, data):
    """Finite tasks and superposition runs: the report and the atlas work; compare says it
    needs exact 2-D geometry on a finite task (exit 2, no traceback) and runs dictionary
    learning on a superposition run."""
    run = str(tmp_path / "r")
    assert main(["train", str(write(tmp_path, data)), "--out", run, "--quiet", "--report"]) == 0
    text = (tmp_path / "r" / "report" / "index.md").read_text()
    assert "nan" not in text.lower()
    if data["model"]["kind"].startswith("superposition"):
        # compare trains sparse autoencoders on the hidden layer (tests/test_methods_dictionary)
        assert main(["compare", run, "--quick", "--quiet"]) == 0
        assert "Traceback" not in capsys.readouterr().err
    else:
        assert main(["compare", run]) == 2
        err = capsys.readouterr().err
        assert "compare" in err and "Traceback" not in err
    assert main(["atlas", run]) == 0
    assert "Traceback" not in capsys.readouterr().err


def test_seed_range_is_the_list_it_names():
    from toylab.config import parse_config

    assert parse_config({**GOOD, "seeds": {"range": 3}}).seeds == (0, 1, 2)
    assert parse_config({**GOOD, "seeds": {"range": 2, "start": 5}}).seeds == (5, 6)
    # written back as the plain list (a run's stored config does not depend on the form)
    assert parse_config({**GOOD, "seeds": {"range": 2}}).to_dict()["seeds"] == [0, 1]


def test_info_summarises_many_members():
    from toylab.cli import _seeds_text, _values_line

    class Named:
        def member_label(self, m):
            return f"seed {m}"

    vals = [0.5] * 12
    vals[3], vals[7] = 0.1, 0.9
    assert _values_line(Named(), vals) == "min 0.1000 (seed 3), median 0.5000, max 0.9000 (seed 7)"
    assert _values_line(Named(), [0.25, float("nan")]) == "0.2500, nan"
    assert _seeds_text(range(64)) == "0 to 63"
    assert _seeds_text([0, 5, 6]) == "[0, 5, 6]"


@pytest.mark.parametrize(
    "path", sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.toml")),
    ids=lambda p: p.name,
)  # fmt: skip
def test_example_configs_parse(path):
    from toylab.config import load_config

    cfg = load_config(path)
    assert cfg.seeds and cfg.name
