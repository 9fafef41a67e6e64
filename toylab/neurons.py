"""Canonical neuron addresses.

Every neuron in toylab has exactly one address, ``"{layer}:{unit}"``:

* ``"hidden_0:3"`` -- unit 3 of the first (dense) hidden layer, after the activation;
* ``"hidden_0.pre:3"`` -- the same unit before the activation;
* ``"output:1"`` -- logit (or output unit) 1.

Spatial layers (convolutions ``conv_k``, poolings ``pool_k``; their feature maps are
``(H, W, C)``, stored flat HWC row-major: channel ``c`` at row ``i``, column ``j`` is
unit ``(i W + j) C + c``) are addressed by **channel and position**:

* ``"conv_1:5@7,7"`` -- channel 5 of ``conv_1`` at row 7, column 7 of its feature map;
* ``"conv_1:5"`` -- channel 5 at the centre position ``(H // 2, W // 2)`` (the
  canonical form of that neuron: it prints this way);
* ``"conv_1.pre:5@7,7"``, ``"pool_0:2@1,3"`` likewise. The unit of a ``conv_k`` /
  ``pool_k`` address is always a channel; ``@i,j`` is also accepted on ``input`` and
  ``output`` when they are spatial (``"input:0@3,4"``: pixel ``(3, 4)``).

Layers are numbered from 0 within each kind (``input``, ``conv_0``, ``pool_0``,
``conv_1``, ..., ``hidden_0`` ... for dense layers, ``output``); units and channels
from 0. The same strings are used in the API, the command line, the figures and the
atlas. There are no aliases: a network's :meth:`~toylab.network.Network.resolve`
gives the one :class:`NeuronId` of a neuron, whose ``unit`` is always the flat index
into the layer's values (``forward(x)[nid.key][..., nid.unit]``).
:meth:`NeuronId.parse` is a pure string parser: it cannot know a layer's shape, so a
parsed spatial address has ``unit == -1`` (unresolved) until a network resolves it.

>>> n = NeuronId.parse("hidden_0.pre:3")
>>> n.layer, n.unit, n.pre
('hidden_0', 3, True)
>>> str(n)
'hidden_0.pre:3'
>>> n.key
'hidden_0.pre'
>>> c = resolve("conv_1:5@7,7", {"conv_1": 16 * 16 * 8}, {"conv_1": (16, 16, 8)})
>>> c.channel, c.pos, c.unit, str(c)
(5, (7, 7), 957, 'conv_1:5@7,7')
>>> str(resolve("conv_1:5@8,8", {"conv_1": 2048}, {"conv_1": (16, 16, 8)}))
'conv_1:5'
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence

from toylab._errors import ToylabError, did_you_mean

__all__ = ["NeuronId", "neuron_ids", "resolve"]

_LAYER = re.compile(r"^(input|output|(hidden|conv|pool)_(0|[1-9][0-9]*))$")
_SPATIAL = re.compile(r"^(conv|pool)_")
_POS = re.compile(r"^(0|[1-9][0-9]*),(0|[1-9][0-9]*)$")

Shapes = Mapping[str, tuple[int, int, int]]


def _nonneg(v: object) -> bool:
    return not isinstance(v, bool) and isinstance(v, int) and v >= 0


@dataclasses.dataclass(frozen=True, order=True)
class NeuronId:
    """One neuron: a layer name, a unit index and whether it is pre-activation.

    A neuron of a spatial layer also has its ``channel`` and ``pos`` ``(row, column)``;
    ``unit`` is then the flat index ``(row W + column) C + channel`` once resolved by a
    network (``-1`` for an address only parsed; ``pos`` is ``None`` for a parsed
    ``"conv_1:5"``, the centre). ``centre`` (not compared) records that the resolved
    position is the layer's centre, which prints in the short form ``"conv_1:5"``.
    """

    layer: str
    unit: int
    pre: bool = False
    channel: int | None = None
    pos: tuple[int, int] | None = None
    centre: bool = dataclasses.field(default=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.layer, str) or not _LAYER.match(self.layer):
            raise ToylabError(
                "NeuronId: layer must be 'input', 'output', 'hidden_<k>', 'conv_<k>' or "
                f"'pool_<k>', got {self.layer!r}."
            )
        spatial = self.channel is not None
        if spatial:
            if not _nonneg(self.channel):
                raise ToylabError(
                    f"NeuronId: channel must be an integer >= 0, got {self.channel!r}."
                )
            if self.pos is not None and not (
                isinstance(self.pos, tuple) and len(self.pos) == 2 and all(map(_nonneg, self.pos))
            ):
                raise ToylabError(
                    f"NeuronId: pos must be a (row, column) pair of integers >= 0, got {self.pos!r}."
                )
        elif _SPATIAL.match(self.layer):
            raise ToylabError(
                f"NeuronId: a neuron of the spatial layer {self.layer!r} needs its channel "
                "(and position): NeuronId(layer, unit, pre, channel, (row, column)), or resolve "
                f"an address like '{self.layer}:5@7,7' with network.resolve."
            )
        elif self.pos is not None:
            raise ToylabError("NeuronId: pos needs a channel.")
        ok = _nonneg(self.unit) or (spatial and self.unit == -1 and not isinstance(self.unit, bool))
        if not ok:
            raise ToylabError(f"NeuronId: unit must be an integer >= 0, got {self.unit!r}.")

    @property
    def key(self) -> str:
        """The layer key used in :meth:`toylab.network.Network.forward` output."""
        return f"{self.layer}.pre" if self.pre else self.layer

    @property
    def resolved(self) -> bool:
        """Whether ``unit`` is the flat index (always, but for a parsed spatial address)."""
        return self.unit >= 0

    def __str__(self) -> str:
        if self.channel is None:
            return f"{self.key}:{self.unit}"
        if _SPATIAL.match(self.layer) and (self.pos is None or self.centre):
            return f"{self.key}:{self.channel}"
        if self.pos is None:  # an unresolved centre of an input/output map
            return f"{self.key}:{self.channel}@centre"  # pragma: no cover - parse cannot make it
        return f"{self.key}:{self.channel}@{self.pos[0]},{self.pos[1]}"

    @classmethod
    def parse(cls, address: str | NeuronId) -> NeuronId:
        """Parse ``"hidden_0:3"`` / ``"hidden_0.pre:3"`` / ``"output:1"`` /
        ``"conv_1:5@7,7"`` / ``"conv_1:5"`` (a pure string parser: see the module)."""
        if isinstance(address, NeuronId):
            return address
        if not isinstance(address, str):
            raise ToylabError(
                f"NeuronId.parse: address must be a string like 'hidden_0:3', got {address!r}."
            )
        layer_key, sep, unit = address.partition(":")
        unit, at, pos = unit.partition("@")
        if not sep or not unit.isdigit() or not unit.isascii():
            raise ToylabError(
                f"NeuronId.parse: address must look like 'hidden_0:3' (layer, colon, unit) or "
                f"'conv_1:5@7,7' (layer, colon, channel, @row,column), got {address!r}."
            )
        pre = layer_key.endswith(".pre")
        layer = layer_key[: -len(".pre")] if pre else layer_key
        if not _LAYER.match(layer):
            raise ToylabError(
                f"NeuronId.parse: unknown layer {layer!r} in {address!r}; layers are 'input', "
                f"'conv_<k>', 'pool_<k>', 'hidden_<k>' and 'output'."
                + did_you_mean(
                    layer, ["input", "output", "hidden_0", "hidden_1", "conv_0", "pool_0"]
                )
            )
        if at:
            m = _POS.match(pos)
            if m is None:
                raise ToylabError(
                    f"NeuronId.parse: the position in {address!r} must be '@row,column' (two "
                    f"integers >= 0, no spaces), like 'conv_1:5@7,7'."
                )
            return cls(layer, -1, pre, int(unit), (int(m.group(1)), int(m.group(2))))
        if _SPATIAL.match(layer):
            return cls(layer, -1, pre, int(unit), None)
        return cls(layer, int(unit), pre)


def resolve(
    address: str | NeuronId, widths: Mapping[str, int], shapes: Shapes | None = None
) -> NeuronId:
    """Parse ``address`` and check it exists in a model with layer ``widths``.

    ``widths`` maps layer keys (``"hidden_0"``, ``"hidden_0.pre"``, ``"output"``,
    ...) to their number of units; ``shapes`` maps the spatial keys to their ``(H, W,
    C)``. Unknown layers raise an error that lists the valid ones with a did-you-mean
    suggestion; out-of-range units, channels and positions name the layer's size. A
    spatial address resolves to its flat ``unit``, its ``pos`` (the centre ``(H // 2,
    W // 2)`` if none was given) and ``centre``.
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
    if nid.channel is not None:
        shape = (shapes or {}).get(nid.key)
        if shape is None:
            raise ToylabError(
                f"neuron {str(nid)!r}: layer {nid.key!r} is not spatial (it has "
                f"{widths[nid.key]} units), so it has no channels or positions; address "
                f"its units as '{nid.key}:3'."
            )
        h, w, c = shape
        i, j = nid.pos if nid.pos is not None else (h // 2, w // 2)
        if nid.channel >= c or i >= h or j >= w:
            raise ToylabError(
                f"neuron {str(nid)!r}: layer {nid.key!r} has feature maps of shape (H, W, C) = "
                f"{(h, w, c)}: channels 0..{c - 1}, rows 0..{h - 1}, columns 0..{w - 1}; got "
                f"channel {nid.channel} at ({i}, {j})."
            )
        unit = (i * w + j) * c + nid.channel
        centre = (i, j) == (h // 2, w // 2)
        return NeuronId(nid.layer, unit, nid.pre, nid.channel, (i, j), centre)
    if nid.unit >= widths[nid.key]:
        raise ToylabError(
            f"neuron {str(nid)!r}: layer {nid.key!r} has {widths[nid.key]} units "
            f"(0..{widths[nid.key] - 1}), got unit {nid.unit}."
        )
    return nid


def neuron_ids(
    widths: Mapping[str, int],
    layers: Sequence[str] | None = None,
    shapes: Shapes | None = None,
) -> list[NeuronId]:
    """All neurons of the given layer keys (default: every post-activation layer but input).

    A ``conv_k`` / ``pool_k`` layer (its shape in ``shapes``) lists one neuron per
    channel, at the centre position (``"conv_1:0"``, ``"conv_1:1"``, ...): a channel's
    representative; other positions are addressed with ``@row,column``.
    """
    if layers is None:
        layers = [k for k in widths if not k.endswith(".pre") and k != "input"]
    out = []
    for key in layers:
        if key not in widths:
            raise ToylabError(
                f"unknown layer {key!r}; this model has layers {sorted(widths)}."
                + did_you_mean(key, widths)
            )
        if _SPATIAL.match(key):
            shape = (shapes or {}).get(key)
            if shape is None:
                raise ToylabError(
                    f"neuron_ids: layer {key!r} is spatial; pass its shape (shapes="
                    "network.layer_shapes) or use network.neuron_ids()."
                )
            out += [resolve(f"{key}:{c}", widths, shapes) for c in range(shape[2])]
            continue
        for u in range(widths[key]):
            out.append(NeuronId.parse(f"{key}:{u}"))
    return out
