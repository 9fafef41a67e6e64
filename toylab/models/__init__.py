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
from toylab.models.conv import ConvNet, ConvSpec, feature_shapes, parse_conv
from toylab.models.edit import ablate, with_weights
from toylab.models.init import InitConfig, initializer
from toylab.models.mlp import MLP, OneHotMLP, SuperpositionLinear, SuperpositionReLU, from_network
from toylab.network import as_network
from toylab.neurons import NeuronId

__all__ = [
    "ACTIVATIONS",
    "MLP",
    "MODEL_KINDS",
    "ConvNet",
    "ConvSpec",
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

MODEL_KINDS = ("mlp", "onehot_mlp", "superposition_linear", "superposition_relu", "conv")


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
    ``"superposition_relu"`` (``hidden`` holds the single bottleneck width), or
    ``"conv"`` (:class:`toylab.models.conv.ConvNet` over images: ``conv`` lists the conv
    blocks, ``hidden`` the dense head's widths, which may be empty).
    The input and output sizes come from the distribution (the output: its
    ``output_dim``, else its number of classes, else its dimension). ``init`` sets the
    initialisers (:class:`toylab.models.init.InitConfig`; a config file writes
    ``init = {weights = "normal", weight_scale = 0.1, biases = "zeros"}``).

    For ``kind = "conv"`` a config file writes the blocks as tables
    (:class:`~toylab.models.conv.ConvSpec`: ``channels``, ``kernel``, ``stride``,
    ``padding`` = ``"same"``/``"valid"``, ``pool`` = ``"avg"``/``"max"``,
    ``pool_window``, ``pool_stride``)::

        [model]
        kind = "conv"
        conv = [{channels = 8, kernel = 5}, {channels = 8, kernel = 3, pool = "avg", pool_window = 2}]
        hidden = []

    ``image_shape`` (``[H, W]`` or ``[H, W, C]``) is the input image's shape; left out, it
    is the distribution's ``image_shape`` (one channel).
    """

    kind: str = "mlp"
    hidden: tuple[int, ...] = (16,)
    activation: str = "relu"
    init: InitConfig = InitConfig()
    conv: tuple[ConvSpec, ...] = ()
    image_shape: tuple[int, ...] | None = None

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
        object.__setattr__(self, "conv", parse_conv(self.conv))
        if self.kind == "conv" and not self.conv:
            raise ToylabError(
                "[model] kind='conv' needs at least one conv block, got conv = []. Example: "
                "conv = [{channels = 8, kernel = 5}]."
            )
        if self.kind != "conv" and self.conv:
            raise ToylabError(
                f"[model] conv is for kind='conv' only, got kind={self.kind!r} with "
                f"{len(self.conv)} conv blocks. Set kind = 'conv' or remove conv."
            )
        shape = self.image_shape
        if shape is not None:
            if self.kind != "conv":
                raise ToylabError(
                    f"[model] image_shape is for kind='conv' only, got kind={self.kind!r}. "
                    "Remove image_shape."
                )
            if (
                not isinstance(shape, list | tuple)
                or len(shape) not in (2, 3)
                or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in shape)
            ):
                raise ToylabError(
                    f"[model] image_shape must be [H, W] or [H, W, C] with positive integers, "
                    f"got {shape!r}. Example: image_shape = [8, 8]."
                )
            object.__setattr__(self, "image_shape", tuple(shape))

    def to_dict(self) -> dict[str, Any]:
        """The TOML ``[model]`` table (``ModelConfig(**c.to_dict()) == c``); fields at
        their defaults that older configs did not have (``init``, ``conv``,
        ``image_shape``) are left out."""
        out: dict[str, Any] = {
            "kind": self.kind,
            "hidden": list(self.hidden),
            "activation": self.activation,
        }
        if not self.init.is_default:
            out["init"] = dataclasses.asdict(self.init)
        if self.conv:
            out["conv"] = [spec.to_dict() for spec in self.conv]
        if self.image_shape is not None:
            out["image_shape"] = list(self.image_shape)
        return out


def image_shape(config: ModelConfig, dist: Any) -> tuple[int, int, int]:
    """``(H, W, C)`` of a conv model's input: ``config.image_shape`` or the distribution's
    ``image_shape`` (one channel); they must agree with each other and with ``dist.dim``."""
    own = getattr(dist, "image_shape", None)
    name = type(dist).__name__
    if config.image_shape is None and own is None:
        raise ToylabError(
            f"[model] kind='conv' needs the image shape: {name} has no image_shape. Write "
            f"image_shape = [H, W] in [model] with H*W = {dist.dim} (the distribution's "
            "dimension), e.g. image_shape = [8, 8] for 64 inputs."
        )
    given: Any = config.image_shape if config.image_shape is not None else own
    shape = tuple(int(v) for v in given)
    h, w, c = (*shape, 1) if len(shape) == 2 else shape
    if own is not None and config.image_shape is not None and tuple(own) != (h, w):
        raise ToylabError(
            f"[model] image_shape {list(config.image_shape)} disagrees with {name}'s image "
            f"shape {list(own)}. Remove image_shape from [model]."
        )
    if h * w * c != dist.dim:
        raise ToylabError(
            f"[model] image_shape {[h, w, c]} has {h * w * c} values, but {name} has "
            f"dimension {dist.dim}. Use an image shape with H*W*C = {dist.dim}."
        )
    return h, w, c


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
    if config.kind == "conv":
        shape = image_shape(config, dist)
        feature_shapes(shape, config.conv, "[model] ")  # errors in the config's words
        return ConvNet(
            shape, config.conv, config.hidden, num_out, config.activation,
            rngs=rngs, **inits,
        )  # fmt: skip
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
