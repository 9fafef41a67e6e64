"""Models with addressable neurons (see :mod:`toylab.models.mlp` for the contract).

>>> import jax.numpy as jnp
>>> from flax import nnx
>>> model = MLP((2, 4, 2), "relu", rngs=nnx.Rngs(0))
>>> acts = activations(model, jnp.zeros((3, 2)))
>>> sorted(acts)
['hidden_0', 'hidden_0.pre', 'input', 'output']
>>> neuron_values(model, jnp.zeros((3, 2)), "hidden_0:1").shape
(3,)
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
from flax import nnx

from toylab._errors import ToylabError, did_you_mean
from toylab.activations import ACTIVATIONS, PIECEWISE_LINEAR, get_activation
from toylab.models.edit import ablate, with_weights
from toylab.models.init import InitConfig, initializer
from toylab.models.mlp import MLP, OneHotMLP, SuperpositionLinear, SuperpositionReLU, from_network
from toylab.network import as_network
from toylab.neurons import NeuronId

__all__ = [
    "ACTIVATIONS",
    "MLP",
    "InitConfig",
    "PIECEWISE_LINEAR",
    "ModelConfig",
    "OneHotMLP",
    "SuperpositionLinear",
    "SuperpositionReLU",
    "ablate",
    "activations",
    "build_model",
    "ensemble_activations",
    "from_network",
    "get_activation",
    "neuron_values",
    "with_weights",
]

MODEL_KINDS = ("mlp", "onehot_mlp", "superposition_linear", "superposition_relu")


def activations(model: Any, x: jax.Array) -> dict[str, jax.Array]:
    """Every layer's pre- and post-activations for inputs ``x`` of shape ``(..., d_in)``.

    ``model`` is a toylab model or a :class:`~toylab.network.Network`; the one forward
    pass is :meth:`Network.forward`.
    """
    return as_network(model, "activations").forward(x)


def neuron_values(model: Any, x: jax.Array, neuron: str | NeuronId) -> jax.Array:
    """The values of one neuron (e.g. ``"hidden_0:3"``) at inputs ``x``."""
    return as_network(model, "neuron_values").values(x, neuron)


def ensemble_activations(graphdef: Any, params: Any, x: jax.Array) -> dict[str, jax.Array]:
    """Activations of every member of an ensemble with stacked ``params``.

    ``params`` has a leading member axis (as :func:`toylab.train.train` returns);
    the result's arrays have shape ``(num_members, ..., width)``.
    """
    return jax.vmap(lambda p: nnx.merge(graphdef, p).to_network().forward(x))(params)


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Which model to build.

    ``kind``: ``"mlp"`` (inputs of the distribution's dimension), ``"onehot_mlp"``
    (finite tasks with one-hot operands), ``"superposition_linear"`` or
    ``"superposition_relu"`` (``hidden`` holds the single bottleneck width).
    The input and output sizes come from the distribution. ``init`` sets the
    initialisers (:class:`toylab.models.init.InitConfig`; a config file writes
    ``init = {weights = "normal", weight_scale = 0.1, biases = "zeros"}``).
    """

    kind: str = "mlp"
    hidden: tuple[int, ...] = (16,)
    activation: str = "relu"
    init: InitConfig = InitConfig()

    def __post_init__(self) -> None:
        if self.kind not in MODEL_KINDS:
            raise ToylabError(
                f"[model] kind must be one of {list(MODEL_KINDS)}, got {self.kind!r}."
                + did_you_mean(str(self.kind), MODEL_KINDS)
            )
        if not isinstance(self.hidden, tuple | list) or not all(
            isinstance(h, int) and not isinstance(h, bool) and h >= 1 for h in self.hidden
        ):
            raise ToylabError(
                f"[model] hidden must be a list of positive integers, got {self.hidden!r}. "
                "Example: hidden = [16, 16]."
            )
        object.__setattr__(self, "hidden", tuple(self.hidden))
        if self.activation not in ACTIVATIONS:
            raise ToylabError(
                f"[model] activation must be one of {sorted(ACTIVATIONS)}, got "
                f"{self.activation!r}." + did_you_mean(str(self.activation), ACTIVATIONS)
            )
        object.__setattr__(self, "init", InitConfig.parse(self.init))
        if self.kind.startswith("superposition") and len(self.hidden) != 1:
            raise ToylabError(
                f"[model] hidden must hold exactly one width for kind={self.kind!r}, got "
                f"{list(self.hidden)!r}. Example: hidden = [2]."
            )


def build_model(config: ModelConfig, dist: Any, key: jax.Array) -> nnx.Module:
    """Build the model described by ``config`` for distribution ``dist``, initialised from ``key``."""
    rngs = nnx.Rngs(params=key)
    num_out = dist.output_dim
    inits = {
        "kernel_init": initializer(config.init, config.kind, "weights"),
        "bias_init": initializer(config.init, config.kind, "biases"),
    }
    if config.kind == "mlp":
        return MLP((dist.dim, *config.hidden, num_out), config.activation, rngs=rngs, **inits)
    if config.kind == "onehot_mlp":
        p = getattr(dist, "p", None)
        if p is None:
            raise ToylabError(
                f"[model] kind='onehot_mlp' needs a modular-arithmetic distribution, got "
                f"{type(dist).__name__}. Use kind='mlp'."
            )
        return OneHotMLP(p, config.hidden, num_out, config.activation, rngs=rngs, **inits)
    cls = SuperpositionLinear if config.kind == "superposition_linear" else SuperpositionReLU
    return cls(dist.dim, config.hidden[0], rngs=rngs, **inits)
