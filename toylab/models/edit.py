"""Editing models: ablate neurons, replace weights. Every edit returns a new model.

The edits are the :class:`~toylab.network.Network` edits (:meth:`Network.ablate`,
:meth:`Network.with_layer`), applied to the model's network value and put back into a
model of the same class with :meth:`with_network`, so the parameters keep their dtype
(a float64 circuit stays float64). Given a :class:`~toylab.network.Network`, they
return a network.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from toylab.network import Network, as_network
from toylab.neurons import NeuronId

__all__ = ["ablate", "with_weights"]


def _back(model: Any, net: Network) -> Any:
    return net if isinstance(model, Network) else model.with_network(net)


def ablate(
    model: Any,
    neurons: str | NeuronId | Iterable[str | NeuronId],
    values: float | Mapping[str, float] = 0.0,
) -> Any:
    """A copy of ``model`` with each hidden neuron's post-activation fixed to a constant.

    ``values`` is one constant for all (``0.0``: zero ablation) or a mapping from
    neuron address to constant (mean ablation: pass the exact means from
    :func:`toylab.exact.analyze`). See :meth:`toylab.network.Network.ablate`.
    """
    if not isinstance(neurons, str | NeuronId):
        neurons = list(neurons)
    return _back(model, as_network(model, "ablate").ablate(neurons, values))


def with_weights(model: Any, layer: int, W: Any = None, b: Any = None) -> Any:
    """A copy of ``model`` with layer ``layer``'s kernel and/or bias replaced."""
    return _back(model, as_network(model, "with_weights").with_layer(layer, kernel=W, bias=b))
