"""JAX's persistent compilation cache: toylab's directory, and a second process loads
every program the first one compiled."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from toylab import _compile_cache

SCRIPT = textwrap.dedent(
    """
    import json, sys
    from toylab import _compile_cache
    print(json.dumps({"dir": str(_compile_cache.enable())}))
    if "--enable-only" in sys.argv:
        sys.exit(0)
    from toylab.distributions import make
    from toylab.models import ModelConfig
    from toylab.train import TrainConfig, train
    with _compile_cache.CompileCounter() as c:
        cfg = TrainConfig(num_steps=4, log_every=2, checkpoints=[], num_eval_samples=64)
        train(make("two_blobs"), ModelConfig(hidden=(3,)), cfg, seeds=[0, 1])
    print(json.dumps({"total": c.total, "hits": c.cache_hits, "names": dict(c.names)}))
    """
)


def _run(env, *args):
    out = subprocess.run([sys.executable, "-c", SCRIPT, *args], env=env, capture_output=True,
                         text=True, timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr
    lines = [json.loads(x) for x in out.stdout.splitlines() if x.startswith("{")]
    return lines[0]["dir"], lines[1:]


@pytest.mark.subprocess
def test_second_process_compiles_nothing_it_compiled_before(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_COMPILATION_CACHE")}
    env["TOYLAB_CACHE_DIR"] = str(tmp_path / "cache")
    env["JAX_PLATFORMS"] = "cpu"
    where, (first,) = _run(env)
    assert where == str(tmp_path / "cache") and any((tmp_path / "cache").iterdir())
    assert first["total"] >= 3 and first["names"]["_segment"] == 1
    _, (second,) = _run(env)
    # every program of the second run came from the cache (none compiled again)
    assert second["total"] == first["total"] and second["hits"] == second["total"], second
    # turned off: no directory, the cache is not used
    env["TOYLAB_CACHE_DIR"] = ""
    where, _ = _run(env, "--enable-only")
    assert where == "None"


def test_cache_directory_follows_the_platform_conventions(monkeypatch, tmp_path):
    monkeypatch.delenv("TOYLAB_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert _compile_cache.cache_dir() == tmp_path / "xdg" / "toylab" / "jax"
    monkeypatch.setenv("TOYLAB_CACHE_DIR", str(tmp_path / "mine"))
    assert _compile_cache.cache_dir() == tmp_path / "mine"
    monkeypatch.setenv("TOYLAB_CACHE_DIR", "")
    assert _compile_cache.cache_dir() is None
    monkeypatch.delenv("TOYLAB_CACHE_DIR")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert _compile_cache.cache_dir() == tmp_path / "home" / ".cache" / "toylab" / "jax"


@pytest.mark.subprocess
def test_the_cli_uses_the_persistent_cache(tmp_path):
    """Every command that runs enables the cache: `toylab train` fills the directory, and
    a second process training the same config loads its training segment from it."""
    (tmp_path / "c.toml").write_text(
        'name = "tiny"\nseeds = [0]\n[distribution]\nname = "two_blobs"\n'
        "[model]\nhidden = [3]\n[train]\nnum_steps = 4\nlog_every = 2\ncheckpoints = []\n"
        "num_eval_samples = 64\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_COMPILATION_CACHE")}
    env["TOYLAB_CACHE_DIR"] = str(tmp_path / "cache")
    env["JAX_PLATFORMS"] = "cpu"
    cmd = [sys.executable, "-m", "toylab", "train", str(tmp_path / "c.toml"), "--quiet"]
    out = subprocess.run([*cmd, "--out", str(tmp_path / "r1")], env=env, capture_output=True,
                         text=True, timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr
    entries = {p.name for p in (tmp_path / "cache").iterdir()}
    assert any("segment" in e for e in entries), sorted(entries)
    out = subprocess.run([*cmd, "--out", str(tmp_path / "r2")], env=env, capture_output=True,
                         text=True, timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr
    # nothing new was compiled for the same config: no new entries appeared
    assert {p.name for p in (tmp_path / "cache").iterdir()} == entries
