r"""A small convolutional network over flat images, with addressable channels.

:class:`ConvNet` follows the model contract of :mod:`toylab.models.mlp`
(``to_network``, ``with_network``, ``widths``, ``intermediates``, construction from
explicit arrays without initialisers) for images given as **flat** vectors
``x (..., H*W*C_in)`` in HWC row-major order (pixel ``(i, j)``, channel ``c`` at index
``(i*W + j)*C_in + c``; a single-channel image distribution has ``C_in = 1``).

The architecture is a list of conv blocks (:class:`ConvSpec`), then a dense head::

    x -> [conv_k: act(conv(h; K_k, stride, padding) + b_k) -> optional pool_k] * n
      -> flatten (HWC) -> hidden_0 ... -> output (affine)

* a convolution with kernel ``K`` of shape ``(kh, kw, C_in, C_out)`` (HWIO, flax's
  layout) computes
  :math:`z_{i,j,o} = b_o + \sum_{u,v,c} h_{s_h i + u - p_t,\, s_w j + v - p_l,\, c} K_{u,v,c,o}`
  with zero padding outside the map. ``padding="valid"`` has no padding (output size
  :math:`\lfloor (n - k)/s \rfloor + 1`); ``"same"`` pads :math:`p = \max((\lceil n/s
  \rceil - 1)s + k - n, 0)` zeros in total, :math:`\lfloor p/2 \rfloor` before (output
  size :math:`\lceil n/s \rceil`), as ``lax.conv_general_dilated``'s ``"SAME"``;
* a pooling of window ``w`` and stride ``s`` (default ``w``) averages (``"avg"``) or
  takes the maximum (``"max"``) over each window, without padding (output size
  :math:`\lfloor (n - w)/s \rfloor + 1`). It follows the conv block's activation;
* the dense head is ``hidden`` widths with the same activation, then an affine output.

Layer keys (per kind, counting from 0; see :mod:`toylab.neurons`): ``"conv_k.pre"``,
``"conv_k"``, ``"pool_k"`` (the k-th pooling; ``"pool_k.pre"`` is the same values),
``"hidden_k.pre"``, ``"hidden_k"``, ``"output"``; a channel at a position is
``"conv_1:5@7,7"``.

The NNX module holds one ``nnx.Conv`` per conv block and one ``nnx.Linear`` per dense
layer in a single list ``layers`` (so the initialisers' key schedule is MLP's: module
``k`` draws its kernel with counter ``2k`` and its bias with ``2k + 1``,
:mod:`toylab.models.init`); the forward pass is the network value's
(:meth:`~toylab.network.Network.forward`), never ``nnx.Conv.__call__``.

>>> from flax import nnx
>>> net = ConvNet((8, 8, 1), [ConvSpec(4, 3, pool="max")], (), 3, rngs=nnx.Rngs(0))
>>> net.shapes
{'input': (8, 8, 1), 'conv_0': (8, 8, 4), 'pool_0': (4, 4, 4)}
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from toylab._errors import ToylabError, did_you_mean, fail
from toylab._validate import is_int
from toylab.activations import get_activation
from toylab.layers import AvgPool, Conv, Dense, MaxPool
from toylab.models.mlp import _abstract, _param
from toylab.network import Network

__all__ = [
    "PADDINGS",
    "POOLS",
    "ConvNet",
    "ConvSpec",
    "conv_from_network",
    "feature_shapes",
    "parse_conv",
]

PADDINGS = ("same", "valid")
POOLS = ("avg", "max")
_FIELDS = ("channels", "kernel", "stride", "padding", "pool", "pool_window", "pool_stride")


def _bad(prefix: str, name: str, value: Any, expected: str, fix: str = "") -> ToylabError:
    """``[model] conv[1].kernel must be ..., got ...`` (or ``ConvSpec: kernel must be``)."""
    msg = f"{prefix}{name} must be {expected}, got {value!r}."
    return ToylabError(msg + (f" {fix}" if fix else ""))


def _pair(prefix: str, name: str, value: Any, fix: str) -> tuple[int, int]:
    """A positive integer or a pair of them (rows, columns) as a pair."""
    if is_int(value) and value >= 1:
        return int(value), int(value)
    if (
        isinstance(value, list | tuple)
        and len(value) == 2
        and all(is_int(v) and v >= 1 for v in value)
    ):
        return int(value[0]), int(value[1])
    raise _bad(prefix, name, value, "a positive integer or a pair [rows, columns] of them", fix)


def _spec_fields(data: dict[str, Any], prefix: str) -> dict[str, Any]:
    """Validated, normalised fields of one conv block (``prefix`` names it in errors)."""
    for key in data:
        if key not in _FIELDS:
            raise ToylabError(
                f"{prefix.rstrip('.: ')}: unknown key {key!r}; valid keys are {list(_FIELDS)}."
                + did_you_mean(str(key), _FIELDS)
            )
    if "channels" not in data or "kernel" not in data:
        raise ToylabError(
            f"{prefix.rstrip('.: ')} needs channels and kernel, got {sorted(data)}. Example: "
            "{channels = 8, kernel = 5}."
        )
    channels = data["channels"]
    if not is_int(channels) or channels < 1:
        raise _bad(prefix, "channels", channels, "a positive integer", "Example: channels = 8.")
    out: dict[str, Any] = {"channels": int(channels)}
    out["kernel"] = _pair(prefix, "kernel", data["kernel"], "Example: kernel = 5 or [5, 3].")
    out["stride"] = _pair(prefix, "stride", data.get("stride", 1), "Example: stride = 2.")
    padding = data.get("padding", "same")
    if padding not in PADDINGS:
        raise _bad(
            prefix, "padding", padding, f"one of {list(PADDINGS)}",
            did_you_mean(str(padding), PADDINGS).strip(),
        )  # fmt: skip
    out["padding"] = padding
    pool = data.get("pool")
    if pool is not None and pool not in POOLS:
        raise _bad(
            prefix, "pool", pool, f"one of {list(POOLS)} (or left out for no pooling)",
            did_you_mean(str(pool), POOLS).strip(),
        )  # fmt: skip
    out["pool"] = pool
    for name in ("pool_window", "pool_stride"):
        value = data.get(name)
        if value is not None and pool is None:
            raise _bad(
                prefix, name, value, "left out without a pool",
                "Add pool = 'avg' or pool = 'max' to this conv block.",
            )  # fmt: skip
    window, stride = data.get("pool_window"), data.get("pool_stride")
    out["pool_window"] = out["pool_stride"] = None
    if pool is not None:
        out["pool_window"] = _pair(
            prefix, "pool_window", 2 if window is None else window, "Example: pool_window = 2."
        )
    if stride is not None:
        out["pool_stride"] = _pair(prefix, "pool_stride", stride, "Example: pool_stride = 2.")
    return out


@dataclasses.dataclass(frozen=True)
class ConvSpec:
    """One conv block: a convolution, the model's activation, an optional pooling.

    ``channels``: output channels; ``kernel``: ``k`` or ``(kh, kw)``; ``stride``: ``s``
    or ``(sh, sw)`` (default 1); ``padding``: ``"same"`` (default) or ``"valid"``;
    ``pool``: ``None`` (default), ``"avg"`` or ``"max"``, over windows ``pool_window``
    (default 2) with stride ``pool_stride`` (default: the window). Sizes are stored as
    pairs (rows, columns). A config file writes a block as a table:
    ``{channels = 8, kernel = 3, pool = "avg", pool_window = 2}``.
    """

    channels: int
    kernel: Any
    stride: Any = 1
    padding: str = "same"
    pool: str | None = None
    pool_window: Any = None
    pool_stride: Any = None

    def __post_init__(self) -> None:
        given = {f: getattr(self, f) for f in _FIELDS}
        given = {k: v for k, v in given.items() if v is not None or k in ("channels", "kernel")}
        for name, value in _spec_fields(given, "ConvSpec: ").items():
            object.__setattr__(self, name, value)

    @property
    def pool_step(self) -> Any:
        """The pooling stride (the window unless given; ``None`` without a pool)."""
        return self.pool_stride if self.pool_stride is not None else self.pool_window

    def to_dict(self) -> dict[str, Any]:
        """The TOML table of this block (defaults left out; square sizes as one number)."""

        def size(p: tuple[int, int]) -> Any:
            return p[0] if p[0] == p[1] else list(p)

        out: dict[str, Any] = {"channels": self.channels, "kernel": size(self.kernel)}
        if self.stride != (1, 1):
            out["stride"] = size(self.stride)
        if self.padding != "same":
            out["padding"] = self.padding
        if self.pool is not None:
            out["pool"] = self.pool
            out["pool_window"] = size(self.pool_window)
            if self.pool_stride is not None:
                out["pool_stride"] = size(self.pool_stride)
        return out


def _as_table(item: Any) -> Any:
    """A conv block as a dict: a sweep stores tables as tuples of ``(key, value)`` pairs."""
    if isinstance(item, tuple) and all(
        isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str) for p in item
    ):
        return dict(item)
    return item


def parse_conv(value: Any, where: str = "[model] conv") -> tuple[ConvSpec, ...]:
    """The conv blocks of a config (``[{channels = 8, kernel = 5}, ...]``) or of the Python
    API (:class:`ConvSpec` objects or dicts), validated; errors name ``where[i].field``."""
    if not isinstance(value, list | tuple):
        raise ToylabError(
            f"{where} must be a list of conv blocks, got {value!r}. Example: conv = "
            "[{channels = 8, kernel = 5}, {channels = 8, kernel = 3, pool = 'max'}]."
        )
    out = []
    for i, item in enumerate(value):
        item = _as_table(item)
        if isinstance(item, ConvSpec):
            out.append(item)
            continue
        if not isinstance(item, dict):
            raise ToylabError(
                f"{where}[{i}] must be a table such as {{channels = 8, kernel = 5}}, got {item!r}."
            )
        fields = _spec_fields(item, f"{where}[{i}].")
        out.append(ConvSpec(**fields))
    return tuple(out)


def feature_shapes(
    in_shape: tuple[int, int, int], specs: Sequence[ConvSpec], prefix: str = "ConvNet: "
) -> dict[str, tuple[int, int, int]]:
    """``{"input": (H, W, C), "conv_0": ..., "pool_0": ..., ...}``: every feature map's
    shape (the layers' own ``out_shape``: :mod:`toylab.layers.conv`); an error where a
    map would be empty (``prefix`` says where: ``"[model] "`` for a config)."""
    h, w, c = in_shape
    shapes = {"input": (h, w, c)}
    pools = 0
    for k, spec in enumerate(specs):
        kh, kw = spec.kernel
        if spec.padding == "valid" and (kh > h or kw > w):
            raise _bad(
                prefix, f"conv[{k}].kernel", list(spec.kernel),
                f"at most the {h}x{w} feature map it slides over (padding 'valid')",
                "Use a smaller kernel, padding = 'same', or a larger image.",
            )  # fmt: skip
        kernel = jax.ShapeDtypeStruct((kh, kw, c, spec.channels), jnp.float32)
        conv = Conv(kernel, None, (h, w, c), stride=spec.stride, padding=spec.padding)
        h, w, c = shapes[f"conv_{k}"] = conv.out_shape
        if spec.pool is not None:
            ph, pw = spec.pool_window
            if ph > h or pw > w:
                raise _bad(
                    prefix, f"conv[{k}].pool_window", list(spec.pool_window),
                    f"at most the {h}x{w} feature map of conv_{k}",
                    "Use a smaller window, fewer strides or a larger image.",
                )  # fmt: skip
            pool = AvgPool((h, w, c), spec.pool_window, spec.pool_step)
            h, w, c = shapes[f"pool_{pools}"] = pool.out_shape
            pools += 1
    return shapes


def _in_shape(where: str, in_shape: Any) -> tuple[int, int, int]:
    if (
        not isinstance(in_shape, list | tuple)
        or len(in_shape) not in (2, 3)
        or not all(is_int(v) and v >= 1 for v in in_shape)
    ):
        raise fail(
            where, "in_shape", in_shape, "(H, W) or (H, W, C) with positive integers",
            "Example: in_shape=(16, 16) for single-channel 16x16 images.",
        )  # fmt: skip
    h, w, *c = (int(v) for v in in_shape)
    return h, w, (c[0] if c else 1)


class ConvNet(nnx.Module):
    """Conv blocks, a dense head and an affine output over flat HWC images.

    ``in_shape``: ``(H, W)`` or ``(H, W, C)`` (inputs are flat ``(..., H*W*C)``);
    ``conv``: the conv blocks (:class:`ConvSpec` or dicts of its fields); ``hidden``: the
    dense head's widths (may be empty); ``num_outputs``: the output width; every conv
    block and hidden layer uses ``activation`` (see :mod:`toylab.activations`).
    ``kernel_init``/``bias_init`` are flax initializers (default flax's:
    ``lecun_normal`` with fan-in ``kh*kw*C_in`` for conv kernels, zero biases).
    """

    def __init__(
        self,
        in_shape: Sequence[int],
        conv: Sequence[Any],
        hidden: Sequence[int],
        num_outputs: int,
        activation: str = "relu",
        *,
        rngs: nnx.Rngs,
        param_dtype: Any = jnp.float32,
        kernel_init: Any = None,
        bias_init: Any = None,
    ):
        where = type(self).__name__
        self.in_shape = _in_shape(where, in_shape)
        self.specs = parse_conv(conv, f"{where}: conv")
        if not self.specs:
            raise fail(where, "conv", list(conv), "at least one conv block", "Or use an MLP.")
        if not isinstance(hidden, list | tuple) or not all(is_int(h) and h >= 1 for h in hidden):
            raise fail(where, "hidden", hidden, "a sequence of positive integers (may be empty)")
        self.hidden = tuple(int(h) for h in hidden)
        if not is_int(num_outputs) or num_outputs < 1:
            raise fail(where, "num_outputs", num_outputs, "a positive integer")
        self.num_outputs = int(num_outputs)
        get_activation(activation, where)
        self.activation = activation
        # static attributes of an NNX module are hashed (graphdefs key compiled programs)
        shapes = feature_shapes(self.in_shape, self.specs, f"{where}: ")
        self.shape_items = tuple(shapes.items())
        init = {}
        if kernel_init is not None:
            init["kernel_init"] = kernel_init
        if bias_init is not None:
            init["bias_init"] = bias_init
        layers: list[nnx.Module] = []
        c_in = self.in_shape[2]
        for spec in self.specs:
            layers.append(
                nnx.Conv(
                    c_in,
                    spec.channels,
                    spec.kernel,
                    strides=spec.stride,
                    padding=spec.padding.upper(),
                    rngs=rngs,
                    param_dtype=param_dtype,
                    **init,
                )  # fmt: skip
            )
            c_in = spec.channels
        flat = math.prod(self.shape_items[-1][1])
        for a, b in zip((flat, *self.hidden), (*self.hidden, self.num_outputs), strict=True):
            layers.append(nnx.Linear(a, b, rngs=rngs, param_dtype=param_dtype, **init))
        self.layers = nnx.List(layers)

    @property
    def shapes(self) -> dict[str, tuple[int, int, int]]:
        """``{"input": (H, W, C), "conv_0": ..., "pool_0": ..., ...}``: the feature maps."""
        return dict(self.shape_items)

    @property
    def input_dim(self) -> int:
        return math.prod(self.in_shape)

    @property
    def num_conv(self) -> int:
        return len(self.specs)

    def to_network(self) -> Network:
        return self._network(lambda v: v[...])

    def _network(self, value: Any) -> Network:
        """The network of ``value(param)`` arrays (``get_value()`` also reads abstract ones)."""
        layers: list[Any] = []
        acts: list[str] = []
        shape = self.in_shape
        pools = 0
        for k, spec in enumerate(self.specs):
            mod: Any = self.layers[k]
            kernel, bias = value(mod.kernel), value(mod.bias)
            layers.append(Conv(kernel, bias, shape, stride=spec.stride, padding=spec.padding))
            acts.append(self.activation)
            shape = self.shapes[f"conv_{k}"]
            if spec.pool is not None:
                cls = AvgPool if spec.pool == "avg" else MaxPool
                layers.append(cls(shape, spec.pool_window, spec.pool_step))
                acts.append("identity")
                shape = self.shapes[f"pool_{pools}"]
                pools += 1
        dense: list[Any] = list(self.layers)[self.num_conv :]
        for lin in dense:
            layers.append(Dense(value(lin.kernel), value(lin.bias)))
            acts.append(self.activation)
        acts[-1] = "identity"
        return Network(tuple(layers), tuple(acts))

    @property
    def widths(self) -> dict[str, int]:
        """Layer key -> number of units, in network order (a feature map counts ``H*W*C``)."""
        out = {"input": self.input_dim}
        for key, shape in list(self.shapes.items())[1:]:
            out[f"{key}.pre"] = out[key] = math.prod(shape)  # a pooling's .pre is itself
        for k, w in enumerate(self.hidden):
            out[f"hidden_{k}.pre"] = w
            out[f"hidden_{k}"] = w
        out["output"] = self.num_outputs
        return out

    def intermediates(self, x: jax.Array) -> dict[str, jax.Array]:
        return self.to_network().forward(x)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.to_network()(x)

    def with_network(self, net: Network) -> ConvNet:
        """A model of this class holding ``net``'s parameters (the dtype of ``net``'s
        arrays); ``net`` must have this model's architecture (as :meth:`to_network` gives)."""
        where = f"{type(self).__name__}.with_network"
        mine = self._network(lambda v: v.get_value())  # the template may be abstract
        same = (
            isinstance(net, Network)
            and net.activations == mine.activations
            and len(net.layers) == len(mine.layers)
            and all(
                type(a) is type(b)
                and jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)  # type: ignore[operator]
                and [np.shape(x) for x in jax.tree.leaves(a)]
                == [np.shape(x) for x in jax.tree.leaves(b)]
                for a, b in zip(net.layers, mine.layers, strict=True)
            )
        )
        if not same:
            raise fail(
                where, "net", repr(net), f"a network of this architecture ({mine!r})",
                "Use toylab.models.from_network for another architecture.",
            )  # fmt: skip
        graphdef, state = nnx.split(self)
        model = nnx.merge(graphdef, state)
        arrays: list[Any] = [layer for layer in net.layers if hasattr(layer, "kernel")]
        mods: list[Any] = list(model.layers)
        for mod, layer in zip(mods, arrays, strict=True):
            w, b = np.asarray(layer.kernel), np.asarray(layer.bias)
            mod.kernel = _param(w, w.dtype)
            mod.bias = _param(b, b.dtype)
        return model


def conv_from_network(net: Network) -> ConvNet:
    """The :class:`ConvNet` holding ``net``'s parameters (no initializer runs): conv
    layers (each optionally followed by one pooling), then dense layers, one activation
    for the conv and hidden layers and an affine output."""
    where = "from_network"
    specs: list[ConvSpec] = []
    layers: list[Any] = list(net.layers)
    k = 0
    while k < len(layers) and isinstance(layers[k], Conv):
        conv = layers[k]
        fields: dict[str, Any] = {
            "channels": int(np.shape(conv.kernel)[-1]),
            "kernel": tuple(int(s) for s in np.shape(conv.kernel)[:2]),
            "stride": conv.stride,
            "padding": conv.padding,
        }
        k += 1
        if k < len(layers) and isinstance(layers[k], AvgPool | MaxPool):
            pool = layers[k]
            fields.update(
                pool="avg" if isinstance(pool, AvgPool) else "max",
                pool_window=pool.window,
                pool_stride=None if pool.stride == pool.window else pool.stride,
            )
            k += 1
        specs.append(ConvSpec(**fields))
    pairs = list(zip(net.activations[:-1], layers[:-1], strict=True))
    acts_hidden = {a for a, layer in pairs if not _is_pool(layer)}
    if (
        not specs
        or not all(isinstance(layer, Dense) for layer in layers[k:])
        or k == len(layers)
        or len(acts_hidden) != 1
        or any(a != "identity" for a, layer in pairs if _is_pool(layer))
        or net.output_activation != "identity"
    ):
        raise fail(
            where, "net", repr(net),
            "conv layers (each optionally followed by a pooling), then Dense layers, one "
            "activation for every conv and hidden layer and an affine output (what a "
            "ConvNet holds)",
            "Keep working with the Network value: every analysis accepts it.",
        )  # fmt: skip
    first = layers[0]
    hidden = [int(np.shape(layer.kernel)[-1]) for layer in layers[k:-1]]
    out = int(np.shape(layers[-1].kernel)[-1])
    act = acts_hidden.pop()
    template = _abstract(lambda: ConvNet(first.in_shape, specs, hidden, out, act, rngs=nnx.Rngs(0)))
    return template.with_network(net)


def _is_pool(layer: Any) -> bool:
    return isinstance(layer, AvgPool | MaxPool)
