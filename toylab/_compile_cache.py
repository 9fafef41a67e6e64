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
step or an initialiser. :func:`use_unrolled_threefry` registers JAX's own unrolled
lowering of the same hash for CPU instead: the random bits are identical (the same
arithmetic, not unrolled at trace level), compilation takes a fraction of the time
and the step runs faster. It relies on a private JAX module, so it is guarded: if
those names are missing it does nothing and JAX's default lowering stays.
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
    """Lower threefry on CPU with JAX's unrolled rule (identical bits; see the module
    docstring). Idempotent; returns whether the unrolled rule is in use."""
    if _UNROLLED:
        return _UNROLLED[0]
    ok = False
    try:
        from jax._src.interpreters import mlir
        from jax._src.random import threefry2x32 as tf

        rule = tf._threefry2x32_lowering_rule
        prim = tf.threefry2x32_p
        mlir.register_lowering(prim, rule, platform="cpu", inline=False)
        ok = True
    except (ImportError, AttributeError, NotImplementedError, TypeError):  # pragma: no cover
        ok = False  # another JAX version: keep its default lowering
    _UNROLLED.append(ok)
    return ok
