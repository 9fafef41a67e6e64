"""Compilation: JAX's persistent cache for toylab, a compile counter, a cheaper RNG lowering.

**Persistent cache.** :func:`enable` points JAX's persistent compilation cache at
toylab's directory in the user's cache folder, so a program compiled once (the
training segment, the evaluation, the samplers) is loaded from disk by every later
process instead of being compiled again (a repeated ``toylab demo`` was 2.1-2.5x
faster with it). The directory is, in order of precedence:

1. ``$TOYLAB_CACHE_DIR`` (set it to an empty string to turn the cache off);
2. ``$XDG_CACHE_HOME/toylab/jax``, else ``~/Library/Caches/toylab/jax`` on macOS,
   ``%LOCALAPPDATA%/toylab/Cache/jax`` on Windows and ``~/.cache/toylab/jax``
   elsewhere.

The cache only holds compiled XLA programs keyed by a hash of the program, the
compiler options, the JAX version and the device: **it is safe to delete at any
time** (the next run compiles again and refills it). JAX writes each entry once and
never evicts; delete the directory to reclaim space. If JAX already has a cache
directory configured (``JAX_COMPILATION_CACHE_DIR`` or ``jax.config``), that choice
is kept.

**Counting compilations.** :class:`CompileCounter` (a context manager over JAX's
public monitoring events) records every XLA program built inside it, by name, and
how many of them came from the persistent cache: the tests use it to prove that a
whole ensemble trains (and resumes) in one compiled program.

**RNG lowering.** On CPU, JAX lowers the threefry hash (every ``jax.random`` draw) to
a rolled loop; under ``vmap`` over members that took ~3 s to compile for a training
step or an initialiser. :func:`use_unrolled_threefry` registers an unrolled lowering
of the same hash for CPU instead (JAX's unrolled form, emitted directly as StableHLO
rather than traced through ``jax.numpy`` at every lowering, which cost ~0.1 s per
program even when the compiled program came from the persistent cache): the random
bits are identical (the same uint32 arithmetic; ``tests/test_train_cache.py`` checks
it against the published algorithm), compilation takes a fraction of the time and the
step runs faster. It relies on private JAX modules, so it is guarded: if those names
are missing it does nothing and JAX's default lowering stays.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import jax

__all__ = ["CompileCounter", "cache_dir", "enable", "use_unrolled_threefry"]

ENV = "TOYLAB_CACHE_DIR"
_BACKEND_COMPILE = "/jax/core/compile/backend_compile_duration"
_CACHE_HIT = "/jax/compilation_cache/cache_hits"


def cache_dir() -> Path | None:
    """toylab's compilation-cache directory (see the module docstring); ``None`` when
    ``$TOYLAB_CACHE_DIR`` is set to an empty string."""
    env = os.environ.get(ENV)
    if env is not None:
        return Path(env).expanduser() if env.strip() else None
    if os.environ.get("XDG_CACHE_HOME"):
        base = Path(os.environ["XDG_CACHE_HOME"])
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    elif sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "toylab" / "Cache" / "jax"
    else:
        base = Path.home() / ".cache"
    return base / "toylab" / "jax"


def enable(path: str | Path | None = None) -> Path | None:
    """Use JAX's persistent compilation cache in ``path`` (default: :func:`cache_dir`).

    Returns the directory in use (JAX's own, if one was configured already), or
    ``None`` when the cache is turned off. Idempotent; call it before the first
    compilation (the CLI and ``tests/conftest.py`` do). Every program is cached,
    however quick to compile, since toylab's many small programs add up.
    """
    current = jax.config.jax_compilation_cache_dir  # type: ignore[attr-defined]
    if current:
        return Path(current)
    target = Path(path).expanduser() if path is not None else cache_dir()
    if target is None:
        return None
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError:  # read-only home, etc.: run without a cache rather than fail
        return None
    jax.config.update("jax_compilation_cache_dir", str(target))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    return target


class CompileCounter:
    """Count the XLA programs JAX builds while the context is open.

    >>> import jax.numpy as jnp
    >>> with CompileCounter() as c:
    ...     _ = jax.jit(lambda x: x * 3.0)(jnp.ones(7))
    >>> c.total >= 1
    True

    ``names`` counts programs by function name (``"jit(segment)"`` style names are
    reduced to ``"segment"``); ``total`` is their sum; ``cache_hits`` how many of them
    were loaded from the persistent cache rather than compiled.
    """

    def __init__(self) -> None:
        self.names: Counter[str] = Counter()
        self.cache_hits = 0

    @property
    def total(self) -> int:
        return sum(self.names.values())

    def count(self, name: str) -> int:
        return self.names[name]

    def _on_duration(self, event: str, duration_secs: float, **kwargs: Any) -> None:
        if event == _BACKEND_COMPILE:
            name = str(kwargs.get("fun_name", "?"))
            if name.startswith("jit(") and name.endswith(")"):
                name = name[4:-1]
            self.names[name] += 1

    def _on_event(self, event: str, **kwargs: Any) -> None:
        if event == _CACHE_HIT:
            self.cache_hits += 1

    def __enter__(self) -> CompileCounter:
        jax.monitoring.register_event_duration_secs_listener(self._on_duration)
        jax.monitoring.register_event_listener(self._on_event)
        return self

    def __exit__(self, *exc: Any) -> None:
        jax.monitoring.unregister_event_duration_listener(self._on_duration)
        jax.monitoring.unregister_event_listener(self._on_event)

    def __repr__(self) -> str:
        return (
            f"CompileCounter(total={self.total}, cache_hits={self.cache_hits}, {dict(self.names)})"
        )


_UNROLLED: list[bool] = []


def use_unrolled_threefry() -> bool:
    """Lower threefry on CPU unrolled (identical bits; see the module docstring).
    Idempotent; returns whether the unrolled rule is in use."""
    if _UNROLLED:
        return _UNROLLED[0]
    ok = False
    try:
        from jax._src.interpreters import mlir
        from jax._src.lib.mlir.dialects import hlo
        from jax._src.random import threefry2x32 as tf

        rule = _unrolled_threefry_rule(mlir, hlo)
        mlir.register_lowering(tf.threefry2x32_p, rule, platform="cpu", inline=False)
        ok = True
    except (ImportError, AttributeError, NotImplementedError, TypeError):  # pragma: no cover
        ok = False  # another JAX version: keep its default lowering
    _UNROLLED.append(ok)
    return ok


#: Threefry-2x32's rotations (Salmon et al. 2011, as in ``jax._src.random.threefry2x32``).
_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))


def _unrolled_threefry_rule(mlir: Any, hlo: Any) -> Any:
    """A lowering rule for ``threefry2x32_p`` that emits JAX's unrolled threefry hash
    (``_threefry2x32_lowering(..., use_rolled_loops=False)``) directly as StableHLO.

    JAX's own unrolled rule traces the hash with ``jax.numpy`` at every lowering (~100
    traced operations per call site, ~0.1 s per program); emitting the same integer
    operations directly costs microseconds. The arithmetic is the same uint32 adds,
    xors and rotations (exact modulo 2^32), so the bits are identical.
    """
    import numpy as np

    def rule(ctx: Any, key1: Any, key2: Any, x1: Any, x2: Any) -> list[Any]:
        aval = ctx.avals_out[0]
        rank = len(aval.shape)

        def full(v: Any, a: Any) -> Any:  # numpy broadcasting to the output's shape
            dims = range(rank - len(a.shape), rank)
            return mlir.broadcast_in_dim(ctx, v, aval, broadcast_dimensions=dims)

        consts: dict[int, Any] = {}

        def const(c: int) -> Any:
            if c not in consts:
                consts[c] = mlir.full_like_aval(ctx, np.uint32(c), aval)
            return consts[c]

        args = (key1, key2, x1, x2)
        k1, k2, y1, y2 = (full(v, a) for v, a in zip(args, ctx.avals_in, strict=True))

        def rotl(v: Any, r: int) -> Any:
            return hlo.or_(hlo.shift_left(v, const(r)), hlo.shift_right_logical(v, const(32 - r)))

        ks = [k1, k2, hlo.xor(hlo.xor(k1, k2), const(0x1BD11BDA))]
        x = [hlo.add(y1, ks[0]), hlo.add(y2, ks[1])]
        for i in range(5):
            for r in _ROTATIONS[i % 2]:
                x[0] = hlo.add(x[0], x[1])
                x[1] = hlo.xor(x[0], rotl(x[1], r))
            x[0] = hlo.add(x[0], ks[(i + 1) % 3])
            x[1] = hlo.add(hlo.add(x[1], ks[(i + 2) % 3]), const(i + 1))
        return x

    return rule
