"""Claim files: claims written in TOML, checked by ``toylab check RUN_DIR claims.toml``.

Each ``[[claim]]`` table names a ``neuron`` (an address, or a list of them), a
``statement`` in words, and either a ``kind`` with its parameters or a composition
(``all = [...]``, ``any = [...]`` or ``not = {...}``) of inline tables that inherit the
neuron. An optional ``name`` labels the claim in reports::

    [[claim]]
    name = "x1 detector"
    neuron = "hidden_0:0"
    statement = "fires only where x1 >= 0"
    kind = "fires_only_in"
    region = { kind = "halfplane", normal = [1.0, 0.0], offset = 0.0 }

    [[claim]]
    neuron = ["hidden_0:1", "hidden_0:2"]
    statement = "alive, and increasing along x2 in the first blob's 2-sigma ellipse"
    all = [
      { kind = "fires_on_mass", q = 0.1, component = 0 },
      { kind = "monotone", direction = [0.0, 1.0],
        region = { kind = "ellipse", component = 0, k = 2.0 } },
    ]

    [[claim]]
    neuron = "hidden_0:3"
    statement = "is not dead"
    not = { kind = "dead" }

**One schema.** A kind's keys are the keyword arguments of its Python constructor
(:func:`toylab.claims.fires_on_mass` takes ``q`` and ``cls`` or ``component``, and so does
a ``fires_on_mass`` table), validated by the same code with the same messages. Kinds and
their keys (``?`` optional):

============================  =====================================================
``fires_only_in``             ``region``
``dead``                      --
``fires_on_mass``             ``q``, ``cls`` or ``component``
``monotone``                  ``direction``, ``region?``, ``decreasing?``
``linear_on``                 ``region``
``argmax_near``               ``point``, ``eps``
``activation_share``          ``share``, ``cls`` or ``component``
``ablation_lowers_accuracy``  ``cls``, ``delta``
``represented``               ``threshold?`` (the neuron is a feature ``"input:i"``)
``antipodal``                 ``other`` (``"input:j"``), ``tol?``
``feature_dimensionality``    ``low`` and/or ``high``
``dimensions_per_feature``    ``low`` and/or ``high``
============================  =====================================================

Regions are tables: ``{kind = "halfplane", normal = [a, b], offset = c}`` (``a x1 + b
x2 >= c``), ``{kind = "polygon", vertices = [[x, y], ...]}`` (convex), ``{kind = "box",
low = [..], high = [..]}`` and ``{kind = "ellipse", component = j, k = 2.0}`` (or
``mean`` and ``cov``). Circuits and Python functions are not expressible in a file:
write those claims in Python.

Renamed: the kind ``selectivity`` is ``activation_share`` (it measures a share of the
mean activation, not :mod:`toylab.methods`' selectivity index), with the key ``share``
(was ``s``); the key ``class`` is ``cls``. Files with the old names get an error
saying so.
"""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from typing import Any

from toylab._errors import ToylabError, did_you_mean, fail
from toylab.claims import _core
from toylab.claims._core import Claim
from toylab.claims._kinds import KINDS
from toylab.claims._schema import RENAMED_KEYS, RENAMED_KINDS

__all__ = ["FILE_KINDS", "claims_from_config", "load_claims"]

#: The kinds a claim file can express (no Python objects among their parameters).
FILE_KINDS = tuple(name for name, kind in KINDS.items() if kind.in_files)
_COMMON = {"neuron", "statement", "name", "kind"}


def load_claims(path: str | Path) -> list[Claim]:
    """Read a claim file (see the module docstring): UTF-8 TOML with ``[[claim]]`` tables."""
    path = Path(path)
    where = f"claim file {str(path)!r}"
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "does not exist"
        raise ToylabError(f"{where} {what}; pass the path of a TOML file of [[claim]] tables.")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise ToylabError(
            f"{where} is not UTF-8 text (byte {e.start}: {e.reason}); save it as UTF-8."
        ) from None
    except OSError as e:
        raise ToylabError(f"{where} cannot be read: {e.strerror}.") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ToylabError(f"{where} is not valid TOML: {e}.") from None
    return claims_from_config(data, source=str(path))


def claims_from_config(data: dict[str, Any], *, source: str = "claims") -> list[Claim]:
    """Claims from a parsed claim file (a dict with a ``claim`` list of tables)."""
    if not isinstance(data, dict):
        raise fail(source, "claims", type(data).__name__, "a table with a [[claim]] list")
    extra = sorted(set(data) - {"claim"})
    if extra:
        raise ToylabError(
            f"{source}: unknown top-level key {extra[0]!r}; a claim file holds [[claim]] "
            "tables." + did_you_mean(extra[0], ["claim"])
        )
    tables = data.get("claim")
    if not isinstance(tables, list) or not tables:
        raise ToylabError(
            f"{source}: no claims; write at least one [[claim]] table with neuron, statement "
            "and kind."
        )
    return [_parse(f"{source}: claim {i + 1}", t, None, top=True) for i, t in enumerate(tables)]


def _parse(where: str, t: Any, neuron: Any, *, top: bool = False) -> Claim:
    if not isinstance(t, dict):
        raise fail(where, "claim", t, "a table")
    name = t.get("name")
    if name is not None:
        if not isinstance(name, str):
            raise fail(where, "name", name, "a string")
        where = f"{where} ({name!r})"
    neuron = t.get("neuron", neuron)
    if neuron is None:
        raise ToylabError(f"{where}: missing 'neuron' (an address like 'hidden_0:3').")
    neurons = _core._as_neurons(where, neuron)
    statement = t.get("statement")
    if statement is not None and not isinstance(statement, str):
        raise fail(where, "statement", statement, "a string (what you believe, in words)")
    if top and statement is None:
        raise ToylabError(f"{where}: missing 'statement' (what you believe, in words).")
    comps = [k for k in ("all", "any", "not") if k in t]
    if comps:
        if len(comps) > 1 or "kind" in t:
            given = sorted([*comps, *(["kind"] if "kind" in t else [])])
            raise ToylabError(f"{where}: give one of kind, all, any or not, got {given}.")
        key = comps[0]
        unknown = sorted(set(t) - _COMMON - {key})
        if unknown:
            raise ToylabError(f"{where}: unknown key {unknown[0]!r} next to {key!r}.")
        if key == "not":
            child = _parse(f"{where} -> not", t["not"], neurons)
            return _named(_core.not_(child, statement), name)
        items = t[key]
        if not isinstance(items, list) or not items:
            raise ToylabError(f"{where}: {key} must be a non-empty list of claim tables.")
        children = [_parse(f"{where} -> {key}[{i}]", c, neurons) for i, c in enumerate(items)]
        fn = _core.all_of if key == "all" else _core.any_of
        return _named(fn(*children, statement=statement), name)
    kind = t.get("kind")
    if kind is None:
        raise ToylabError(f"{where}: missing 'kind' (one of {list(FILE_KINDS)}) or all/any/not.")
    if not isinstance(kind, str) or kind not in FILE_KINDS:
        if kind in RENAMED_KINDS:
            new = RENAMED_KINDS[kind]
            raise ToylabError(
                f"{where}: kind {kind!r} was renamed {new!r} (the share of the mean activation "
                f"that comes from a class or component). Did you mean {new!r}?"
            )
        hint = did_you_mean(kind, FILE_KINDS) if isinstance(kind, str) else ""
        raise fail(where, "kind", kind, f"one of {list(FILE_KINDS)}", hint.strip())
    spec = KINDS[kind]
    params = {k: v for k, v in t.items() if k not in _COMMON}
    for key in params:
        if key in spec.names:
            continue
        renamed = RENAMED_KEYS.get(key)
        if renamed in spec.names:
            raise ToylabError(
                f"{where}: key {key!r} is now {renamed!r} (the name of the Python argument). "
                f"Did you mean {renamed!r}?"
            )
        raise ToylabError(
            f"{where}: unknown key {key!r} for kind {kind!r}; it takes {list(spec.names)}."
            + did_you_mean(key, spec.names)
        )
    try:
        claim = Claim(kind, neurons, "" if statement is None else statement, params)
    except ToylabError as e:
        raise ToylabError(f"{where}: {e}") from None
    return _named(claim, name)


def _named(claim: Claim, name: Any) -> Claim:
    return dataclasses.replace(claim, name=name) if name is not None else claim
