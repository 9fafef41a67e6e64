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


def _threefry_reference(k1, k2, x1, x2):
    """Threefry-2x32, 20 rounds (Salmon et al. 2011, "Parallel random numbers: as easy as
    1, 2, 3"), in NumPy uint32 arithmetic: the independent reference for the lowering."""
    import numpy as np

    def rotl(v, r):
        return (v << np.uint32(r)) | (v >> np.uint32(32 - r))

    ks = [k1, k2, k1 ^ k2 ^ np.uint32(0x1BD11BDA)]
    x = [x1 + ks[0], x2 + ks[1]]
    rotations = ((13, 15, 26, 6), (17, 29, 16, 24))
    for i in range(5):
        for r in rotations[i % 2]:
            x[0] = x[0] + x[1]
            x[1] = x[0] ^ rotl(x[1], r)
        x[0] = x[0] + ks[(i + 1) % 3]
        x[1] = x[1] + ks[(i + 2) % 3] + np.uint32(i + 1)
    return x


def test_unrolled_threefry_lowering_gives_the_reference_bits():
    """toylab's direct StableHLO threefry rule (what every CPU program uses) hashes like
    the published algorithm: the Random123 known-answer vectors, and random keys and
    counters under jit and vmap (broadcast keys, batched keys)."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax._src.random.threefry2x32 import threefry2x32_p

    assert _compile_cache.use_unrolled_threefry()
    u32 = np.uint32
    # Random123's kat_vectors for threefry2x32_20: key, counter -> output.
    kat = [
        ((0, 0), (0, 0), (0x6B200159, 0x99BA4EFE)),
        ((0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF), (0x1CB996FC, 0xBB002BE7)),
        ((0x13198A2E, 0x03707344), (0x243F6A88, 0x85A308D3), (0xC4923A9C, 0x483DF7A0)),
    ]
    hash_ = jax.jit(lambda *a: threefry2x32_p.bind(*a))
    with np.errstate(over="ignore"):
        for (k1, k2), (c1, c2), want in kat:
            got = hash_(*(jnp.asarray([v], jnp.uint32) for v in (k1, k2, c1, c2)))
            assert tuple(int(g[0]) for g in got) == want
            assert tuple(int(r) for r in _threefry_reference(u32(k1), u32(k2), u32(c1), u32(c2)))\
                == want  # fmt: skip
        rng = np.random.default_rng(0)
        keys = rng.integers(0, 2**32, (5, 2), dtype=np.uint64).astype(u32)
        counts = rng.integers(0, 2**32, (5, 7, 2), dtype=np.uint64).astype(u32)
        # one key broadcast over a batch of counters, and a batch of keys under vmap
        got = hash_(u32(keys[0, 0]), u32(keys[0, 1]), counts[0, :, 0], counts[0, :, 1])
        want = _threefry_reference(keys[0, 0], keys[0, 1], counts[0, :, 0], counts[0, :, 1])
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
        got = jax.jit(jax.vmap(lambda k, c: threefry2x32_p.bind(k[0], k[1], c[:, 0], c[:, 1])))(
            keys, counts
        )
        want = _threefry_reference(keys[:, :1], keys[:, 1:], counts[..., 0], counts[..., 1])
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
