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

Kinds and their keys (``?`` optional):

=========================  =====================================================
``fires_only_in``          ``region``
``dead``                   --
``fires_on_mass``          ``q``, ``class`` or ``component``
``monotone``               ``direction``, ``region?``, ``decreasing?``
``linear_on``              ``region``
``argmax_near``            ``point``, ``eps``
``selectivity``            ``s``, ``component`` or ``class``
``ablation_lowers_accuracy``  ``class``, ``delta``
=========================  =====================================================

Regions are tables: ``{kind = "halfplane", normal = [a, b], offset = c}`` (``a x1 + b
x2 >= c``), ``{kind = "polygon", vertices = [[x, y], ...]}`` (convex), ``{kind = "box",
low = [..], high = [..]}`` and ``{kind = "ellipse", component = j, k = 2.0}`` (or
``mean`` and ``cov``). Circuits and Python functions are not expressible in a file:
write those claims in Python.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from toylab._errors import ToylabError, did_you_mean
from toylab.claims import _core
from toylab.claims._core import Claim
from toylab.claims.regions import region_from_config

__all__ = ["FILE_KINDS", "claims_from_config", "load_claims"]

FILE_KINDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "fires_only_in": (("region",), ()),
    "dead": ((), ()),
    "fires_on_mass": (("q",), ("class", "component")),
    "monotone": (("direction",), ("region", "decreasing")),
    "linear_on": (("region",), ()),
    "argmax_near": (("point", "eps"), ()),
    "selectivity": (("s",), ("class", "component")),
    "ablation_lowers_accuracy": (("class", "delta"), ()),
}
_COMMON = {"neuron", "statement", "name", "kind"}


def load_claims(path: str | Path) -> list[Claim]:
    """Read a claim file (see the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise ToylabError(f"claim file {str(path)!r} does not exist.")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ToylabError(f"claim file {str(path)!r} is not valid TOML: {e}.") from None
    return claims_from_config(data, source=str(path))


def claims_from_config(data: dict[str, Any], *, source: str = "claims") -> list[Claim]:
    """Claims from a parsed claim file (a dict with a ``claim`` list of tables)."""
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
        raise ToylabError(f"{where}: must be a table, got {t!r}.")
    name = t.get("name")
    if name is not None:
        where = f"{where} ({name!r})"
    neuron = t.get("neuron", neuron)
    if neuron is None:
        raise ToylabError(f"{where}: missing 'neuron' (an address like 'hidden_0:3').")
    try:
        neurons = _core._as_neurons(neuron)
    except ToylabError as e:
        raise ToylabError(f"{where}: bad neuron {neuron!r}: {e}") from None
    statement = t.get("statement")
    if top and not isinstance(statement, str):
        raise ToylabError(f"{where}: missing 'statement' (what you believe, in words).")
    comps = [k for k in ("all", "any", "not") if k in t]
    if comps:
        if len(comps) > 1 or "kind" in t:
            raise ToylabError(
                f"{where}: give one of kind, all, any or not, got {sorted([*comps, *(['kind'] if 'kind' in t else [])])}."
            )
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
        raise ToylabError(f"{where}: missing 'kind' (one of {sorted(FILE_KINDS)}) or all/any/not.")
    if kind not in FILE_KINDS:
        raise ToylabError(
            f"{where}: unknown kind {kind!r}; kinds are {sorted(FILE_KINDS)}."
            + did_you_mean(str(kind), FILE_KINDS)
        )
    required, optional = FILE_KINDS[kind]
    for key in required:
        if key not in t:
            raise ToylabError(f"{where}: a {kind!r} claim needs {key!r}.")
    for key in t:
        if key not in _COMMON and key not in required and key not in optional:
            allowed = [*required, *optional]
            raise ToylabError(
                f"{where}: unknown key {key!r} for kind {kind!r}; it takes {allowed}."
                + did_you_mean(key, allowed)
            )
    kw: dict[str, Any] = {"statement": statement}
    try:
        if "region" in t:
            t = {**t, "region": region_from_config(where, t["region"])}
        if kind == "fires_only_in":
            claim = _core.fires_only_in(neurons, t["region"], **kw)
        elif kind == "dead":
            claim = _core.dead(neurons, **kw)
        elif kind == "fires_on_mass":
            claim = _core.fires_on_mass(neurons, t["q"], cls=t.get("class"),
                                        component=t.get("component"), **kw)  # fmt: skip
        elif kind == "monotone":
            claim = _core.monotone(neurons, t["direction"], region=t.get("region"),
                                   decreasing=bool(t.get("decreasing", False)), **kw)  # fmt: skip
        elif kind == "linear_on":
            claim = _core.linear_on(neurons, t["region"], **kw)
        elif kind == "argmax_near":
            claim = _core.argmax_near(neurons, t["point"], t["eps"], **kw)
        elif kind == "selectivity":
            claim = _core.selectivity(neurons, t["s"], cls=t.get("class"),
                                      component=t.get("component"), **kw)  # fmt: skip
        else:
            claim = _core.ablation_lowers_accuracy(neurons, t["class"], t["delta"], **kw)
    except ToylabError as e:
        msg = str(e)
        raise ToylabError(msg if msg.startswith(where) else f"{where}: {msg}") from None
    except (TypeError, ValueError) as e:
        raise ToylabError(f"{where}: bad parameters for kind {kind!r} ({e}).") from None
    return _named(claim, name)


def _named(claim: Claim, name: Any) -> Claim:
    import dataclasses

    return dataclasses.replace(claim, name=str(name)) if name is not None else claim
