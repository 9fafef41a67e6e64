"""User-facing errors.

Every error toylab raises for a user mistake is a :class:`ToylabError` (a
``ValueError``) whose message names the function or argument, the value that
was given and what to do instead, e.g.::

    two_blobs: scale must be > 0, got -1.0. Pass a positive scale.

Two subclasses say more than "bad argument":

* :class:`NotApplicable` -- the request is well formed but no method of the
  asked kind applies (an exact analysis of a smooth network, a method that needs
  a Gaussian mixture on rings); the message says why and what to use instead;
* :class:`CorruptRun` -- a run directory is damaged or incomplete.

The command line prints these messages without a traceback and exits with
status 2. Validators that produce the standard message live in
:mod:`toylab._validate`.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

__all__ = ["CorruptRun", "NotApplicable", "ToylabError", "did_you_mean", "fail", "is_out_of_memory"]


class ToylabError(ValueError):
    """A mistake in the arguments, a config or a run directory."""


class NotApplicable(ToylabError):
    """No method of the requested kind applies to these inputs (the message says what does)."""


class CorruptRun(ToylabError):
    """A run directory is damaged, incomplete or was written by an incompatible toylab."""


def fail(where: str, name: str, value: Any, expected: str, fix: str = "") -> ToylabError:
    """Build a :class:`ToylabError` of the standard shape.

    ``where`` is the function or config section, ``name`` the argument, ``value``
    what was given, ``expected`` what was needed and ``fix`` how to mend it::

        where: name must be expected, got value. fix
    """
    msg = f"{where}: {name} must be {expected}, got {value!r}."
    if fix:
        msg += f" {fix}"
    return ToylabError(msg)


def did_you_mean(word: str, options: Iterable[str]) -> str:
    """Return ``" Did you mean 'x'?"`` for the closest option, or ``""``."""
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.5)
    return f" Did you mean {close[0]!r}?" if close else ""


def is_out_of_memory(e: BaseException) -> bool:
    """Whether ``e`` says the machine ran out of memory (host ``MemoryError`` or an XLA
    allocation failure). JAX is not imported here: if it is not loaded, no JAX error."""
    import sys

    jax = sys.modules.get("jax")
    runtime = getattr(getattr(jax, "errors", None), "JaxRuntimeError", None)
    return isinstance(e, MemoryError) or (
        runtime is not None and isinstance(e, runtime) and "RESOURCE_EXHAUSTED" in str(e)
    )
