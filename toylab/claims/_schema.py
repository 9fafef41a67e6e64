"""The one schema of claim parameters (private).

Each :class:`Kind` lists its parameters (:class:`Param`: a name, a validator built on
:mod:`toylab._validate`, whether it is required, a few words for the error message).
The Python constructors of :mod:`toylab.claims` and the claim files of
:mod:`toylab.claims.files` both go through :meth:`Kind.validate`, so a parameter has one
name (``cls``, ``q``, ``region``, ...) and one error message everywhere. The kinds
themselves, with their deciders, are in :mod:`toylab.claims._kinds`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from toylab._errors import ToylabError, did_you_mean, fail
from toylab._validate import check_choice, check_float, check_int, float_tuple
from toylab.claims.regions import region_from_config
from toylab.network import Network
from toylab.neurons import NeuronId

__all__ = ["RENAMED_KEYS", "RENAMED_KINDS", "Kind", "Param"]

#: Kinds that were renamed: old name -> new name (claim files get a did-you-mean error).
RENAMED_KINDS = {"selectivity": "activation_share"}
#: Claim-file keys that were renamed to the Python names: old key -> new key.
RENAMED_KEYS = {"class": "cls", "s": "share"}


@dataclasses.dataclass(frozen=True)
class Param:
    """One parameter of a kind: ``check(where, name, value) -> value`` validates it."""

    name: str
    check: Callable[[str, str, Any], Any]
    required: bool = True
    doc: str = ""


def probability(where: str, name: str, v: Any) -> float:
    return check_float(where, name, v, minimum=0.0, maximum=1.0)


def real(where: str, name: str, v: Any) -> float:
    return check_float(where, name, v)


def nonneg(where: str, name: str, v: Any) -> float:
    return check_float(where, name, v, nonneg=True)


def difference(where: str, name: str, v: Any) -> float:
    return check_float(where, name, v, minimum=-1.0, maximum=1.0)


def index(where: str, name: str, v: Any) -> int:
    return check_int(where, name, v, minimum=0)


def vector(where: str, name: str, v: Any) -> tuple[float, ...]:
    out = float_tuple(where, name, v)
    if not any(out):
        raise fail(where, name, v, "a non-zero vector")
    return out


def point(where: str, name: str, v: Any) -> tuple[float, ...]:
    return float_tuple(where, name, v)


def region(where: str, name: str, v: Any) -> Any:
    return region_from_config(where, name, v)


def a_callable(where: str, name: str, v: Any) -> Any:
    if not callable(v):
        raise fail(where, name, v, "a callable")
    return v


def address(where: str, name: str, v: Any) -> str:
    if not isinstance(v, str | NeuronId):
        raise fail(where, name, v, "a neuron address like 'hidden_0:3'")
    try:
        return str(NeuronId.parse(v))
    except ToylabError as e:
        raise ToylabError(f"{where}: {name}: {e}") from None


def a_model(where: str, name: str, v: Any) -> Any:
    if not (isinstance(v, Network) or hasattr(v, "to_network")):
        raise fail(where, name, type(v).__name__, "a toylab model or toylab.network.Network")
    return v


def norm(where: str, name: str, v: Any) -> str:
    return check_choice(where, name, v, ("sup", "l2"))


def group_text(p: Mapping[str, Any]) -> str:
    return f"class {p['cls']}" if p.get("cls") is not None else f"component {p['component']}"


@dataclasses.dataclass(frozen=True)
class Kind:
    """A kind of claim: its parameters and deciders (see the module docstring)."""

    name: str
    params: tuple[Param, ...]
    describe: Callable[[Mapping[str, Any]], str]
    one_of: tuple[str, ...] = ()  # exactly one of these (optional) parameters is given
    in_files: bool = True  # expressible in a claim file (no Python objects)
    pointwise: Callable[..., Any] | None = None
    arity: int = 1
    exact: Callable[..., Any] | None = None
    sampled: Callable[..., Any] | None = None
    finite_pointwise: bool = True  # pointwise margins are meaningful on finite domains
    features: bool = False  # about features (inputs "input:i"), not hidden or output units
    one_of_mode: str = "exactly"  # "exactly" one of ``one_of``, or "any" (at least one)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    def validate(self, where: str, values: Mapping[str, Any]) -> dict[str, Any]:
        """The parameters, validated and normalised; ``None`` means "not given"."""
        unknown = [k for k in values if k not in self.names]
        if unknown:
            raise ToylabError(
                f"{where}: unknown parameter {unknown[0]!r} for a {self.name!r} claim; it takes "
                f"{list(self.names)}." + did_you_mean(unknown[0], self.names)
            )
        out: dict[str, Any] = {}
        for p in self.params:
            v = values.get(p.name)
            if v is None:
                if p.required:
                    raise ToylabError(f"{where}: a {self.name!r} claim needs {p.name!r} ({p.doc}).")
                continue
            out[p.name] = p.check(where, p.name, v)
        if self.one_of and self.one_of_mode == "any":
            if not any(k in out for k in self.one_of):
                raise ToylabError(
                    f"{where}: a {self.name!r} claim needs at least one of "
                    f"{list(self.one_of)}, got neither."
                )
            if "low" in out and "high" in out and out["low"] > out["high"]:
                raise fail(where, "high", out["high"], f">= low = {out['low']}")
        elif self.one_of and sum(k in out for k in self.one_of) != 1:
            given = ", ".join(f"{k}={values.get(k)!r}" for k in self.one_of)
            docs = {p.name: p.doc for p in self.params}
            options = " or ".join(f"{k}=... ({docs[k]})" for k in self.one_of)
            raise ToylabError(f"{where}: give exactly one of {options}, got {given}.")
        return out
