"""Editing networks: ablate neurons, replace weights. Every edit returns a new model.

Ablating a hidden neuron to a constant ``v`` is an exact weight edit: the
neuron's outgoing weights are zeroed and ``v`` times them is added to the next
layer's bias, so the edited network is again an ordinary MLP (and the exact
analysis applies to it unchanged).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from toylab._errors import ToylabError
from toylab.neurons import NeuronId, resolve

__all__ = ["ablate", "with_weights"]


def _layers_of(model: Any, where: str) -> tuple[list[list[np.ndarray]], list[str]]:
    if not hasattr(model, "affine_layers"):
        raise ToylabError(f"{where}: model must be a toylab MLP, got {type(model).__name__}.")
    layers, acts = model.affine_layers()
    return [[w.copy(), b.copy()] for w, b in layers], acts


def _rebuild(model: Any, layers: list[list[np.ndarray]], acts: list[str]) -> Any:
    cls = type(model)
    from toylab.models.mlp import MLP

    built: Any = MLP.from_weights(
        [w for w, _ in layers], [b for _, b in layers], acts[0] if acts else "relu"
    )
    if cls is not MLP and hasattr(model, "num_values"):
        # keep the one-hot wrapper's metadata (its forward pass is the MLP's)
        built.__class__ = cls
        built.num_values = model.num_values
        built.num_operands = model.num_operands
    return built


def ablate(
    model: Any,
    neurons: str | NeuronId | Iterable[str | NeuronId],
    values: float | Mapping[str, float] = 0.0,
) -> Any:
    """A copy of ``model`` with each hidden neuron's post-activation fixed to a constant.

    ``values`` is one constant for all (``0.0``: zero ablation) or a mapping from
    neuron address to constant (mean ablation: pass the exact means from
    :func:`toylab.exact.analyze`). Only post-activation hidden neurons
    (``"hidden_k:u"``) can be ablated.
    """
    where = "ablate"
    if isinstance(neurons, str | NeuronId):
        neurons = [neurons]
    layers, acts = _layers_of(model, where)
    for neuron in neurons:
        nid = resolve(neuron, model.widths)
        if nid.pre or not nid.layer.startswith("hidden_"):
            raise ToylabError(
                f"{where}: neurons must be hidden post-activation neurons like 'hidden_0:3', got "
                f"{str(nid)!r}."
            )
        if isinstance(values, Mapping):
            if str(nid) not in values:
                raise ToylabError(f"{where}: values has no entry for neuron {str(nid)!r}.")
            v = float(values[str(nid)])
        else:
            v = float(values)
        k = int(nid.layer.split("_")[1])
        w_next, b_next = layers[k + 1]
        b_next += v * w_next[nid.unit]
        w_next[nid.unit] = 0.0
    return _rebuild(model, layers, acts)


def with_weights(model: Any, layer: int, W: Any = None, b: Any = None) -> Any:
    """A copy of ``model`` with layer ``layer``'s kernel and/or bias replaced."""
    layers, acts = _layers_of(model, "with_weights")
    if isinstance(layer, bool) or not isinstance(layer, int) or not 0 <= layer < len(layers):
        raise ToylabError(
            f"with_weights: layer must be an index in 0..{len(layers) - 1}, got {layer!r}."
        )
    for name, new, idx in (("W", W, 0), ("b", b, 1)):
        if new is None:
            continue
        arr = np.asarray(new, np.float64)
        if arr.shape != layers[layer][idx].shape:
            raise ToylabError(
                f"with_weights: {name} must have shape {layers[layer][idx].shape}, got {arr.shape}."
            )
        layers[layer][idx] = arr
    return _rebuild(model, layers, acts)
