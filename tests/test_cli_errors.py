"""Every bad input is a clear one-line error with exit status 2 (issue 12, section 2).

Exit status 1 is reserved for ``toylab check`` finding a failed claim; an unexpected
exception inside toylab is exit status 3 with a short message naming a traceback file.
One test per class of bad input; each failed with a Python traceback (exit 1) before.
"""

import shutil
import subprocess
import sys

import pytest
import tomli_w

from toylab.cli import LAZY, build_parser, main

CFG = {
    "name": "errs",
    "seeds": [0],
    "distribution": {"name": "two_blobs"},
    "model": {"hidden": [3]},
    "train": {"num_steps": 5, "log_every": 5, "checkpoints": []},
}
CLAIM = '[[claim]]\nneuron = "hidden_0:0"\nstatement = "s"\nkind = "dead"\n'


@pytest.fixture(autouse=True)
def _tracebacks_in_tmp_path(tmp_path, monkeypatch):
    """Internal errors write their traceback file to the temporary directory: the test's."""
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from toylab.config import parse_config
    from toylab.runs import start_run

    return start_run(parse_config(CFG), tmp_path_factory.mktemp("errs") / "run").path


def _user_error(capsys, argv, match):
    """``toylab ARGV`` exits 2 with one line naming the problem, and no traceback."""
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert match in err, err
    assert "Traceback" not in err and "internal error" not in err
    assert len(err.strip().splitlines()) == 1, err
    return err


def _write(tmp_path, name, data):
    path = tmp_path / name
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data)
    return str(path)


# ---------------------------------------------------------------- claim files


def test_claim_file_that_is_not_utf8(run_dir, tmp_path, capsys):
    bad = _write(tmp_path, "c.toml", CLAIM.replace('"s"', '"caf\xe9"').encode("latin-1"))
    _user_error(capsys, ["check", str(run_dir), bad], "is not UTF-8 text (byte 48")


def test_claim_file_that_is_a_directory_or_missing(run_dir, tmp_path, capsys):
    _user_error(capsys, ["check", str(run_dir), str(tmp_path)], "is a directory")
    _user_error(capsys, ["check", str(run_dir), str(tmp_path / "no.toml")], "does not exist")


def test_claim_neuron_address_that_is_not_a_string(run_dir, tmp_path, capsys):
    bad = _write(tmp_path, "c.toml", CLAIM.replace('"hidden_0:0"', "3"))
    _user_error(capsys, ["check", str(run_dir), bad], "neuron")


def test_claim_coordinates_that_are_nan(run_dir, tmp_path, capsys):
    body = CLAIM.replace('kind = "dead"', 'kind = "argmax_near"\npoint = [nan, 0.0]\neps = 0.5')
    _user_error(capsys, ["check", str(run_dir), _write(tmp_path, "c.toml", body)], "point")


def test_check_flags_in_the_users_vocabulary(run_dir, tmp_path, capsys):
    claims = _write(tmp_path, "c.toml", CLAIM)
    _user_error(capsys, ["check", str(run_dir), claims, "--member", "4"],
                "--member must be in 0..0 (the run has 1 member(s)), got 4")  # fmt: skip
    _user_error(capsys, ["check", str(run_dir), claims, "--budget", "0"], "--budget must be")
    _user_error(capsys, ["check", str(run_dir), claims, "--samples", "-1"], "--samples must be")


# ---------------------------------------------------------------- paths


def test_out_is_a_file_or_cannot_be_created(tmp_path, capsys):
    cfg = _write(tmp_path, "c.toml", tomli_w.dumps(CFG))
    afile = _write(tmp_path, "afile", "x")
    _user_error(capsys, ["train", cfg, "--out", afile, "--quiet"], "is a file, not a directory")
    _user_error(capsys, ["train", cfg, "--out", afile + "/sub/run", "--quiet"],
                "cannot be created")  # fmt: skip
    _user_error(capsys, ["demo", "--out", afile, "--steps", "2", "--quiet"], "is a file")
    assert open(afile).read() == "x"


def test_atlas_out_is_a_file_or_someone_elses_directory(run_dir, tmp_path, capsys):
    afile = _write(tmp_path, "afile", "x")
    _user_error(capsys, ["atlas", str(run_dir), "--out", afile, "--quiet"], "is a file")
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("<h1>my homepage</h1>")
    _user_error(capsys, ["atlas", str(run_dir), "--out", str(site), "--quiet"],
                "a directory of other files")  # fmt: skip
    assert (site / "index.html").read_text() == "<h1>my homepage</h1>"
    _user_error(capsys, ["atlas", str(run_dir), "--members", "3"], "--members must be in 0..0")


def test_run_directory_that_is_a_file_or_missing(tmp_path, capsys):
    afile = _write(tmp_path, "afile", "x")
    for cmd in ("info", "report", "atlas", "compare"):
        _user_error(capsys, [cmd, afile], "is a file, not a run directory")
        _user_error(capsys, [cmd, str(tmp_path / "nope")], "does not exist")
    _user_error(capsys, ["train", "--resume", afile], "is a file")


# ---------------------------------------------------------------- memory and model shape


def test_a_batch_too_large_for_memory(tmp_path, capsys):
    cfg = _write(tmp_path, "c.toml",
                 tomli_w.dumps({**CFG, "train": {**CFG["train"], "batch_size": 10**12}}))  # fmt: skip
    _user_error(capsys, ["train", cfg, "--out", str(tmp_path / "r"), "--quiet"],
                "[train] batch_size = 1000000000000 needs at least")  # fmt: skip
    assert not (tmp_path / "r").exists()


def test_out_of_memory_during_a_command_is_a_user_error(monkeypatch, capsys):
    """XLA's RESOURCE_EXHAUSTED (e.g. a model that fits the estimate but not the device)."""
    import jax

    import toylab.cli

    def boom(args):
        raise jax.errors.JaxRuntimeError(
            "RESOURCE_EXHAUSTED: Out of memory allocating 352000001056 bytes."
        )

    monkeypatch.setattr(toylab.cli, "cmd_info", boom)
    _user_error(capsys, ["info", "x"], "out of memory")


def test_a_model_without_hidden_layers(tmp_path, capsys):
    """It trains; every command then gives its output or a one-line error (before: report
    crashed with ValueError, compare with 'need at least one array to stack')."""
    cfg = _write(tmp_path, "c.toml", tomli_w.dumps({**CFG, "model": {"hidden": []}}))
    run = str(tmp_path / "r")
    assert main(["train", cfg, "--out", run, "--quiet", "--report"]) == 0
    text = (tmp_path / "r" / "report" / "index.md").read_text()
    assert "no hidden layer" in text and "| 0 (seed 0) |" in text
    capsys.readouterr()
    assert main(["info", run]) == 0
    _user_error(capsys, ["atlas", run], "no hidden layer")
    _user_error(capsys, ["compare", run], "no hidden layer")
    claims = _write(tmp_path, "c2.toml", CLAIM)
    _user_error(capsys, ["check", run, claims], "unknown layer 'hidden_0'")


# ---------------------------------------------------------------- the CLI itself


def test_usage_errors_return_2_without_raising(capsys):
    assert main(["train", "--no-such-flag"]) == 2
    assert main(["frobnicate"]) == 2
    assert main([]) == 2
    assert main(["check"]) == 2  # a lazy subcommand's own usage error
    capsys.readouterr()


def test_an_unexpected_exception_is_exit_3_with_a_traceback_file(monkeypatch, capsys, tmp_path):
    import re

    import toylab.cli

    def bug(args):
        return {}["no such key"]

    monkeypatch.setattr(toylab.cli, "cmd_info", bug)
    assert main(["info", "somewhere"]) == 3
    err = capsys.readouterr().err
    assert "internal error (KeyError: 'no such key')" in err and "bug in toylab" in err
    path = re.search(r"traceback is in (\S+)\.", err).group(1)
    text = open(path).read()
    assert "Traceback (most recent call last)" in text and "def bug" not in err
    assert "toylab info somewhere" in text and 'return {}["no such key"]' in text
    assert path.startswith(str(tmp_path))


def test_help_version_and_lazy_subcommands():
    """--help imports no jax, flax or matplotlib (it answered in 5-8 s before); the lazy
    subcommands' one-line help is the one their modules register."""
    code = ("import sys; from toylab.cli import main; rc = main(['--help']); "
            "heavy = sorted({m.split('.')[0] for m in sys.modules} & "
            "{'jax', 'jaxlib', 'flax', 'optax', 'matplotlib', 'scipy'}); "
            "print('HEAVY', heavy, rc)")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "HEAVY [] 0" in out.stdout, out.stdout + out.stderr
    for cmd in ("demo", "train", "info", "report", "compare", "check", "atlas"):
        assert cmd in out.stdout
    out = subprocess.run([sys.executable, "-m", "toylab", "--version"], capture_output=True,
                         text=True, timeout=120)  # fmt: skip
    import toylab

    assert out.returncode == 0 and out.stdout.strip() == f"toylab {toylab.__version__}"
    full = build_parser("all")
    sub = next(a for a in full._actions if a.dest == "command")
    registered = {a.dest: a.help for a in sub._choices_actions}
    for name, (_, summary) in LAZY.items():
        assert registered[name] == summary


def test_the_standalone_check_entry_point_uses_the_same_exit_codes(run_dir, tmp_path, capsys):
    from toylab.claims.cli import main as check_main

    bad = _write(tmp_path, "c.toml", CLAIM.encode("utf-16"))
    assert check_main([str(run_dir), bad]) == 2
    assert "not UTF-8" in capsys.readouterr().err


def test_progress_is_quiet_off_a_terminal_and_with_quiet(run_dir, tmp_path, capsys):
    import io

    from toylab._progress import Progress
    from toylab.report import write_report
    from toylab.runs import load_run

    assert not Progress.for_cli(quiet=False).enabled  # pytest's stdout is not a terminal
    assert not Progress.for_cli(quiet=True).enabled
    buf = io.StringIO()
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    write_report(load_run(copy), progress=Progress(True, stream=buf))
    text = buf.getvalue()
    assert "exact analysis" in text and "neuron maps" in text and "1/1" in text
    assert "Bayes-optimal" not in text  # a status line only for a call that takes > 1 s
    import time

    with Progress(True, stream=buf).task("Bayes-optimal accuracy", after=0.01):
        time.sleep(0.2)
    assert "Bayes-optimal accuracy ...\nBayes-optimal accuracy: done in 0." in buf.getvalue()
    assert main(["report", str(copy), "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out.startswith("report:")
