"""Canonical neuron addresses.

Every neuron in toylab has exactly one address, ``"{layer}:{unit}"``:

* ``"hidden_0:3"`` -- unit 3 of the first hidden layer, after the activation;
* ``"hidden_0.pre:3"`` -- the same unit before the activation;
* ``"output:1"`` -- logit (or output unit) 1.

Layers are numbered from 0 (``input``, ``hidden_0`` ... ``hidden_{L-1}``,
``output``); units from 0. The same strings are used in the API, the command
line, the figures and the atlas. There are no aliases.

>>> n = NeuronId.parse("hidden_0.pre:3")
>>> n.layer, n.unit, n.pre
('hidden_0', 3, True)
>>> str(n)
'hidden_0.pre:3'
>>> n.key
'hidden_0.pre'
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence

from toylab._errors import ToylabError, did_you_mean

__all__ = ["NeuronId", "neuron_ids", "resolve"]

_LAYER = re.compile(r"^(input|output|hidden_(0|[1-9][0-9]*))$")


@dataclasses.dataclass(frozen=True, order=True)
class NeuronId:
    """One neuron: a layer name, a unit index and whether it is pre-activation."""

    layer: str
    unit: int
    pre: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.layer, str) or not _LAYER.match(self.layer):
            raise ToylabError(
                f"NeuronId: layer must be 'input', 'output' or 'hidden_<k>', got {self.layer!r}."
            )
        if isinstance(self.unit, bool) or not isinstance(self.unit, int) or self.unit < 0:
            raise ToylabError(f"NeuronId: unit must be an integer >= 0, got {self.unit!r}.")

    @property
    def key(self) -> str:
        """The layer key used in :func:`toylab.models.activations` output."""
        return f"{self.layer}.pre" if self.pre else self.layer

    def __str__(self) -> str:
        return f"{self.key}:{self.unit}"

    @classmethod
    def parse(cls, address: str | NeuronId) -> NeuronId:
        """Parse ``"hidden_0:3"`` / ``"hidden_0.pre:3"`` / ``"output:1"``."""
        if isinstance(address, NeuronId):
            return address
        if not isinstance(address, str):
            raise ToylabError(
                f"NeuronId.parse: address must be a string like 'hidden_0:3', got {address!r}."
            )
        layer_key, sep, unit = address.partition(":")
        if not sep or not unit.isdigit():
            raise ToylabError(
                f"NeuronId.parse: address must look like 'hidden_0:3' (layer, colon, unit), "
                f"got {address!r}."
            )
        pre = layer_key.endswith(".pre")
        layer = layer_key[: -len(".pre")] if pre else layer_key
        if not _LAYER.match(layer):
            raise ToylabError(
                f"NeuronId.parse: unknown layer {layer!r} in {address!r}; layers are 'input', "
                f"'hidden_<k>' and 'output'."
                + did_you_mean(layer, ["input", "output", "hidden_0", "hidden_1"])
            )
        return cls(layer, int(unit), pre)


def resolve(address: str | NeuronId, widths: Mapping[str, int]) -> NeuronId:
    """Parse ``address`` and check it exists in a model with layer ``widths``.

    ``widths`` maps layer keys (``"hidden_0"``, ``"hidden_0.pre"``, ``"output"``,
    ...) to their number of units. Unknown layers raise an error that lists the
    valid ones with a did-you-mean suggestion; out-of-range units name the width.
    """
    if isinstance(address, str):
        layer_key = address.partition(":")[0]
        if layer_key not in widths:
            raise ToylabError(
                f"unknown layer {layer_key!r} in neuron {address!r}; this model has layers "
                f"{sorted(widths)}." + did_you_mean(layer_key, widths)
            )
    nid = NeuronId.parse(address)
    if nid.key not in widths:
        raise ToylabError(
            f"unknown layer {nid.key!r} in neuron {str(nid)!r}; this model has layers "
            f"{sorted(widths)}." + did_you_mean(nid.key, widths)
        )
    if nid.unit >= widths[nid.key]:
        raise ToylabError(
            f"neuron {str(nid)!r}: layer {nid.key!r} has {widths[nid.key]} units "
            f"(0..{widths[nid.key] - 1}), got unit {nid.unit}."
        )
    return nid


def neuron_ids(widths: Mapping[str, int], layers: Sequence[str] | None = None) -> list[NeuronId]:
    """All neurons of the given layer keys (default: every post-activation layer but input)."""
    if layers is None:
        layers = [k for k in widths if not k.endswith(".pre") and k != "input"]
    out = []
    for key in layers:
        if key not in widths:
            raise ToylabError(
                f"unknown layer {key!r}; this model has layers {sorted(widths)}."
                + did_you_mean(key, widths)
            )
        for u in range(widths[key]):
            out.append(NeuronId.parse(f"{key}:{u}"))
    return out
