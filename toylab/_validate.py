"""One validator dialect for every argument and config field toylab checks.

Every check raises a :class:`~toylab.ToylabError` of the shape built by
:func:`toylab._errors.fail`::

    where: name must be expected, got value. fix

``where`` is the function (``"two_blobs"``), the class (``"Rings"``) or the config
section (``"[train]"``) in the user's vocabulary; ``name`` the argument or field.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from toylab._errors import ToylabError, did_you_mean, fail

__all__ = [
    "check_array",
    "check_bool",
    "check_choice",
    "check_float",
    "check_int",
    "check_weights",
    "float_tuple",
    "is_int",
]


def is_int(value: Any) -> bool:
    """An integer that is not a bool (``True`` is not a width)."""
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def check_float(
    where: str,
    name: str,
    value: Any,
    *,
    positive: bool = False,
    nonneg: bool = False,
    minimum: float | None = None,
    maximum: float | None = None,
) -> float:
    """``value`` as a finite float (optionally > 0, >= 0 or within bounds)."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise fail(where, name, value, "a real number", "Pass a float.")
    out = float(value)
    if not math.isfinite(out):
        raise fail(where, name, value, "finite", "Pass a finite float.")
    if positive and not out > 0:
        raise fail(where, name, value, "> 0", f"Pass a positive {name}.")
    if nonneg and not out >= 0:
        raise fail(where, name, value, ">= 0", f"Pass a non-negative {name}.")
    if minimum is not None and out < minimum:
        raise fail(where, name, value, f">= {minimum}")
    if maximum is not None and out > maximum:
        raise fail(where, name, value, f"<= {maximum}")
    return out


def check_int(
    where: str, name: str, value: Any, *, minimum: int | None = None, maximum: int | None = None
) -> int:
    """``value`` as an int (optionally within ``[minimum, maximum]``)."""
    if not is_int(value):
        raise fail(where, name, value, "an integer", "Pass an int.")
    out = int(value)
    if minimum is not None and out < minimum:
        raise fail(where, name, value, f">= {minimum}", f"Pass an integer {name} >= {minimum}.")
    if maximum is not None and out > maximum:
        raise fail(where, name, value, f"<= {maximum}", f"Pass an integer {name} <= {maximum}.")
    return out


def check_bool(where: str, name: str, value: Any) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise fail(where, name, value, "true or false")
    return bool(value)


def check_choice(where: str, name: str, value: Any, options: Sequence[str]) -> str:
    """``value`` if it is one of ``options`` (strings), with a did-you-mean hint otherwise."""
    if not isinstance(value, str) or value not in options:
        hint = did_you_mean(value, options) if isinstance(value, str) else ""
        raise fail(where, name, value, f"one of {list(options)}", hint.strip())
    return value


def float_tuple(
    where: str,
    name: str,
    value: Any,
    *,
    length: int | None = None,
    positive: bool = False,
    nonneg: bool = False,
) -> tuple[float, ...]:
    """A non-empty 1-D sequence of finite floats as a tuple."""
    if isinstance(value, str) or not isinstance(value, Sequence | np.ndarray):
        raise fail(where, name, value, "a sequence of numbers", "Pass a list of floats.")
    items = list(value)
    if length is not None and len(items) != length:
        raise fail(
            where, name, value, f"of length {length}", f"Pass exactly {length} entries for {name}."
        )
    if not items:
        raise fail(where, name, value, "non-empty", f"Pass at least one entry for {name}.")
    out = []
    for i, v in enumerate(items):
        try:
            out.append(check_float(where, f"{name}[{i}]", v, positive=positive, nonneg=nonneg))
        except ToylabError as err:
            raise ToylabError(f"{err} (in {name}={value!r})") from None
    return tuple(out)


def check_weights(where: str, value: Any, length: int, name: str = "weights") -> tuple[float, ...]:
    """Mixture weights: ``length`` non-negative floats summing to 1 (within 1e-9)."""
    w = float_tuple(where, name, value, length=length)
    if any(v < 0 for v in w):
        raise fail(where, name, value, "non-negative", "Mixture weights are probabilities.")
    total = math.fsum(w)
    if abs(total - 1.0) > 1e-9:
        raise fail(
            where, name, value, "summing to 1", f"They sum to {total!r}; divide each by the sum."
        )
    return w


def check_array(
    where: str,
    name: str,
    value: Any,
    *,
    shape: tuple[int | None, ...] | None = None,
    ndim: int | None = None,
    finite: bool = True,
    dtype: Any = np.float64,
) -> np.ndarray:
    """``value`` as a NumPy array of ``dtype`` with the given ``shape`` (``None`` = any size)."""
    try:
        arr = np.asarray(value, dtype=dtype)
    except (TypeError, ValueError):
        raise fail(where, name, type(value).__name__, "an array of numbers") from None
    want_ndim = len(shape) if shape is not None else ndim
    if want_ndim is not None and arr.ndim != want_ndim:
        raise fail(where, name, f"an array of shape {arr.shape}", f"{want_ndim}-dimensional")
    if shape is not None:
        for got, want in zip(arr.shape, shape, strict=True):
            if want is not None and got != want:
                expected = "(" + ", ".join("n" if s is None else str(s) for s in shape) + ")"
                raise fail(where, name, f"an array of shape {arr.shape}", f"of shape {expected}")
    if finite and arr.dtype.kind in "fc" and not np.all(np.isfinite(arr)):
        raise fail(where, name, "an array with non-finite entries", "finite")
    return arr


def check_members_flag(members: Sequence[int] | None, num_members: int) -> list[int] | None:
    """The CLI's ``--members``: ``None`` (all), or distinct indices into a run of
    ``num_members`` members; anything else is a :class:`~toylab.ToylabError` naming it."""
    if members is None:
        return None
    bad = [m for m in members if not 0 <= m < num_members]
    if bad:
        raise ToylabError(
            f"--members must be in 0..{num_members - 1} (the run has {num_members} member(s)), "
            f"got {bad[0]}."
        )
    if len(set(members)) != len(members):
        raise ToylabError(f"--members must be distinct, got {list(members)}.")
    return list(members)
