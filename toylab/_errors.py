"""User-facing errors.

Every error toylab raises for a user mistake is a :class:`ToylabError` (a
``ValueError``) whose message names the function or argument, the value that
was given and what to do instead, e.g.::

    two_blobs(scale=-1.0): scale must be > 0, got -1.0. Pass a positive standard deviation.

The command line prints these messages without a traceback and exits with
status 2.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

__all__ = ["ToylabError", "did_you_mean", "fail"]


class ToylabError(ValueError):
    """A mistake in the arguments, a config or a run directory."""


def fail(where: str, name: str, value: Any, expected: str, fix: str = "") -> ToylabError:
    """Build a :class:`ToylabError` of the standard shape.

    ``where`` is the function or config section, ``name`` the argument, ``value``
    what was given, ``expected`` what was needed and ``fix`` how to mend it.
    """
    msg = f"{where}: {name} must be {expected}, got {value!r}."
    if fix:
        msg += f" {fix}"
    return ToylabError(msg)


def did_you_mean(word: str, options: Iterable[str]) -> str:
    """Return ``" Did you mean 'x'?"`` for the closest option, or ``""``."""
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.5)
    return f" Did you mean {close[0]!r}?" if close else ""
