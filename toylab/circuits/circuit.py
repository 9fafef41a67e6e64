"""The :class:`Circuit` value: a network written by hand, with a meaning for every neuron.

A circuit is a :class:`toylab.network.Network` (``model``; the library builds it in
float64 with :meth:`~toylab.network.Network.from_weights`, so its weights are the
closed form to float64 rounding and every analysis tool applies to it unchanged), plus

* ``meanings``: neuron address -> ``(short name, one-line meaning)``;
* ``claim``: what the circuit computes, in one sentence;
* ``check``: a function that verifies the claim exactly and returns a
  :class:`VerifyResult` (see :meth:`Circuit.verify`).

``model`` is always a network: a toylab model passed to the constructor is stored as its
network value (:func:`toylab.network.as_network`, in the model's own dtype). Where an NNX
model is needed (training) use :func:`toylab.models.from_network`, which keeps the
dtype; :func:`toylab.circuits.train_from_circuit` does this for you.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from toylab._errors import ToylabError, did_you_mean
from toylab.network import Network, as_network
from toylab.neurons import resolve
from toylab.tiers import Tier

__all__ = ["Circuit", "VerifyResult"]


@dataclasses.dataclass(frozen=True)
class VerifyResult:
    """The verdict on a circuit's claim.

    ``passed``: whether the claim holds; ``numbers``: the quantities compared (named);
    ``tier``: how the numbers were obtained (:mod:`toylab.tiers`: ``"exact"`` for the
    library's checks, or the weakest tier of what they compare); ``method``: how, in
    words.
    """

    circuit: str
    claim: str
    passed: bool
    numbers: dict[str, float]
    tier: Tier
    method: str


@dataclasses.dataclass(frozen=True, eq=False)
class Circuit:
    """A handwritten network: ``model`` with named, explained neurons and a checkable claim.

    ``model`` is a :class:`~toylab.network.Network` (a toylab model is converted; see
    the module docstring).
    """

    name: str
    model: Network
    meanings: Mapping[str, tuple[str, str]]
    claim: str
    dist: Any = None
    check: Callable[[Circuit], VerifyResult] | None = dataclasses.field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ToylabError(f"Circuit: name must be a non-empty string, got {self.name!r}.")
        object.__setattr__(self, "model", as_network(self.model, f"Circuit({self.name!r})"))
        seen: dict[str, str] = {}
        canon: dict[str, tuple[str, str]] = {}
        for address, entry in self.meanings.items():
            nid = resolve(address, self.model.widths)
            if not (isinstance(entry, tuple) and len(entry) == 2 and all(isinstance(e, str)
                                                                         for e in entry)):  # fmt: skip
                raise ToylabError(
                    f"Circuit({self.name!r}): meanings[{address!r}] must be a (name, meaning) "
                    f"pair of strings, got {entry!r}."
                )
            if entry[0] in seen:
                raise ToylabError(
                    f"Circuit({self.name!r}): neuron name {entry[0]!r} is used by both "
                    f"{seen[entry[0]]!r} and {str(nid)!r}; names must be unique."
                )
            seen[entry[0]] = str(nid)
            canon[str(nid)] = entry
        object.__setattr__(self, "meanings", canon)

    def neuron_named(self, name: str) -> str:
        """The canonical address of the neuron called ``name``."""
        for address, (n, _) in self.meanings.items():
            if n == name:
                return address
        names = [n for n, _ in self.meanings.values()]
        raise ToylabError(
            f"Circuit({self.name!r}).neuron_named: no neuron is called {name!r}; names are "
            f"{names}." + did_you_mean(str(name), names)
        )

    def verify(self) -> VerifyResult:
        """Check the claim exactly (the check is documented by the constructor)."""
        if self.check is None:
            raise ToylabError(
                f"Circuit({self.name!r}).verify: this circuit has no check; pass check=... "
                "when building it."
            )
        return self.check(self)
