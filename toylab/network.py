r"""The network value: one frozen pytree that every analysis in toylab speaks.

Training uses flax NNX modules (:mod:`toylab.models`); everything after training
(:mod:`toylab.exact`, :mod:`toylab.methods`, :mod:`toylab.claims`,
:mod:`toylab.circuits`, :mod:`toylab.viz`) works on a :class:`Network`:

* a sequence of **layers** over flat feature vectors, each followed by an
  **activation** (a name in :data:`toylab.activations.ACTIVATIONS`); the last layer
  is the output, usually with the ``"identity"`` activation (logits);
* layer kinds (:mod:`toylab.layers`): :class:`Dense` (``h @ kernel + bias``),
  :class:`Tied` (``h @ layers[source].kernel.T + bias``: the toy models of
  superposition reuse their encoder's weights), and the spatial kinds over flat
  HWC feature maps :class:`Conv`, :class:`AvgPool` (affine) and :class:`MaxPool`
  (not affine); every affine kind offers its dense ``(W, b)`` form, which is what
  the exact algorithms consume (:class:`MaxPool` raises
  :class:`~toylab._errors.NotApplicable` there);
* layer keys are named per kind, counting from 0 in each: ``conv_k``, ``pool_k``,
  ``hidden_k`` (dense), the last layer ``output`` (:attr:`Network.layer_names`,
  :meth:`Network.layer_index`); spatial keys have a shape ``(H, W, C)``
  (:meth:`Network.layer_shape`) and channel addresses ``"conv_1:5@7,7"``
  (:mod:`toylab.neurons`);
* its arrays keep their dtype and kind exactly: NumPy float64 stays NumPy float64,
  a model's JAX float32 parameters stay JAX float32 (``numpy(np.float64)`` casts);
* it is a registered pytree (arrays are leaves, activations and tie sources are
  static), so it passes through ``jax.jit`` and ``jax.vmap``; stacking members along a
  leading axis (:meth:`Network.stack`) gives an ensemble that ``vmap`` maps over.

There is **one forward pass** (:meth:`Network.forward`), written once for NumPy and
JAX: it returns every canonical layer key of :mod:`toylab.neurons` (``"input"``,
``"hidden_k.pre"``, ``"hidden_k"`` (likewise ``conv_k``, ``pool_k``), ``"output.pre"``
when the output has an activation, ``"output"``), and takes optional ``hooks`` that rewrite a layer's
values before they feed the next layer (activation patching, ablation by value).
Gradients (:meth:`Network.gradient`) and directional derivatives (:meth:`Network.jvp`)
use the activation table's derivatives, so the float64 gradient of a
piecewise-linear network is the exact gradient of the affine piece at the point.

Edits return new networks: :meth:`Network.with_layer`, :meth:`Network.ablate` (a
hidden unit fixed to a constant, folded exactly into the next layer's bias; a unit
read by a convolution or pooling cannot be folded and is refused) and
:meth:`Network.compose_input` (an affine change of input coordinates, e.g. a 2-D
slice :meth:`Network.on_plane`; the first layer becomes the composed dense map, a
:class:`SpatialDense` keeping a conv layer's name and shape).

>>> import numpy as np
>>> net = Network.from_weights([np.eye(2), np.ones((2, 1))], activation="relu")
>>> net.widths
{'input': 2, 'hidden_0.pre': 2, 'hidden_0': 2, 'output': 1}
>>> net(np.array([[1.0, -2.0]])).tolist()
[[1.0]]
>>> net.ablate("hidden_0:0", 5.0)(np.array([[1.0, -2.0]])).tolist()
[[5.0]]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from toylab._errors import NotApplicable, ToylabError, fail
from toylab.activations import Activation, get_activation
from toylab.layers import AvgPool, Conv, Dense, Layer, MaxPool, SpatialDense, Tied
from toylab.neurons import NeuronId, neuron_ids, resolve

__all__ = ["AvgPool", "Conv", "Dense", "MaxPool", "Network", "SpatialDense", "Tied", "as_network"]

_KINDS = (Dense, Tied, Conv, AvgPool, MaxPool, SpatialDense)

Hooks = Mapping[str, Callable[[Any], Any]]


def _xp(*arrays: Any) -> Any:
    return jnp if any(isinstance(a, jax.Array) for a in arrays) else np


# --------------------------------------------------------------------------- the network


def _prefix(layer: Any) -> str:
    """The key prefix of a layer's kind: ``hidden`` (dense), ``conv``, ``pool``."""
    return str(getattr(layer, "prefix", "hidden"))


def _layer_keys(layers: Sequence[Any], output_activation: str) -> list[tuple[str, str | None]]:
    """``(post key, pre key)`` per layer (``pre`` is ``None`` for an identity output).

    Layers are named per kind, counting from 0 in each kind (``conv_0``, ``pool_0``,
    ``conv_1``, ``hidden_0``, ...); the last layer is ``output``.
    """
    out: list[tuple[str, str | None]] = []
    count: dict[str, int] = {}
    for layer in layers[:-1]:
        p = _prefix(layer)
        k = count.get(p, 0)
        count[p] = k + 1
        out.append((f"{p}_{k}", f"{p}_{k}.pre"))
    out.append(("output", "output.pre" if output_activation != "identity" else None))
    return out


@dataclasses.dataclass(frozen=True)
class Network:
    """Affine layers and their activations (see the module docstring).

    ``layers[k]`` is followed by ``activations[k]``; ``len(layers) ==
    len(activations)`` and the last entry is the output layer. Build one with
    :meth:`from_weights`, :meth:`from_layers`, :func:`as_network` (from a model) or by
    hand from :class:`Dense` / :class:`Tied` layers.
    """

    layers: tuple[Layer, ...]
    activations: tuple[str, ...]

    def __post_init__(self) -> None:
        # only static checks here: unflattening (jit, vmap) calls the constructor with tracers
        layers, acts = tuple(self.layers), tuple(self.activations)
        if not layers:
            raise fail("Network", "layers", layers, "a non-empty sequence of layers")
        if len(acts) != len(layers):
            raise fail(
                "Network", "activations", list(acts),
                f"one name per layer ({len(layers)}), the last for the output",
                "Use 'identity' for an affine (logit) output.",
            )  # fmt: skip
        for a in acts:
            get_activation(a, "Network")
        for k, layer in enumerate(layers):
            if not isinstance(layer, _KINDS):
                raise fail(
                    "Network", f"layers[{k}]", type(layer).__name__,
                    "a layer of toylab.layers (Dense, Tied, Conv, AvgPool, MaxPool)",
                )  # fmt: skip
            prev_shape = _static_out_shape(layers[k - 1]) if k else None
            in_shape = getattr(layer, "in_shape", None)
            if prev_shape is not None and in_shape is not None and prev_shape != in_shape:
                raise fail(
                    "Network", f"layers[{k}].in_shape", in_shape,
                    f"the output shape {prev_shape} of layers[{k - 1}]",
                )  # fmt: skip
            if isinstance(layer, Tied) and not (
                0 <= layer.source < k and isinstance(layers[layer.source], Dense)
            ):
                raise fail(
                    "Network", f"layers[{k}].source", layer.source,
                    f"the index of an earlier Dense layer (< {k})",
                )  # fmt: skip
        object.__setattr__(self, "layers", layers)
        object.__setattr__(self, "activations", acts)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_weights(
        cls,
        weights: Sequence[Any],
        biases: Sequence[Any] | None = None,
        activation: str | Sequence[str] = "relu",
        *,
        output_activation: str = "identity",
        dtype: Any = None,
    ) -> Network:
        """A network of :class:`Dense` layers from explicit arrays.

        ``weights[k]`` has shape ``(fan_in, fan_out)`` and the shapes chain;
        ``biases`` defaults to zeros; ``activation`` is one name for every hidden
        layer or one per hidden layer. The arrays become NumPy arrays of ``dtype``
        (default: float64, so handwritten circuits are analysed at full precision).
        """
        where = "Network.from_weights"
        dt = np.dtype(np.float64 if dtype is None else dtype)
        if isinstance(weights, np.ndarray) or not isinstance(weights, Sequence) or not weights:
            raise fail(where, "weights", weights, "a non-empty list of 2-D matrices")
        ws: list[np.ndarray] = []
        for k, w in enumerate(weights):
            try:
                arr = np.asarray(w, dtype=dt)
            except (TypeError, ValueError):
                raise fail(where, f"weights[{k}]", type(w).__name__, "a 2-D array") from None
            if arr.ndim != 2 or 0 in arr.shape:
                raise fail(
                    where, f"weights[{k}]", f"an array of shape {arr.shape}",
                    "a non-empty 2-D (fan_in, fan_out) matrix",
                )  # fmt: skip
            if ws and ws[-1].shape[1] != arr.shape[0]:
                raise fail(
                    where, f"weights[{k}]", f"an array of shape {arr.shape}",
                    f"{ws[-1].shape[1]} rows (weights[{k - 1}] has {ws[-1].shape[1]} outputs)",
                    "Shapes must chain: weights[k] is (fan_in, fan_out).",
                )  # fmt: skip
            if not np.all(np.isfinite(arr)):
                raise fail(where, f"weights[{k}]", "an array with non-finite entries", "finite")
            ws.append(arr)
        if biases is None:
            bs = [np.zeros(w.shape[1], dt) for w in ws]
        else:
            if len(biases) != len(ws):
                raise fail(
                    where, "biases", f"{len(biases)} vectors",
                    f"one vector per weight matrix ({len(ws)})",
                )  # fmt: skip
            bs = []
            for k, (w, b) in enumerate(zip(ws, biases, strict=True)):
                arr = np.asarray(b, dtype=dt)
                if arr.shape != (w.shape[1],):
                    raise fail(
                        where, f"biases[{k}]", f"an array of shape {arr.shape}",
                        f"of shape ({w.shape[1]},)",
                    )  # fmt: skip
                if not np.all(np.isfinite(arr)):
                    raise fail(where, f"biases[{k}]", "an array with non-finite entries", "finite")
                bs.append(arr)
        num_hidden = len(ws) - 1
        if isinstance(activation, str):
            hidden = (activation,) * num_hidden
        else:
            hidden = tuple(activation)
            if len(hidden) != num_hidden:
                raise fail(
                    where, "activation", list(hidden),
                    f"one name, or one per hidden layer ({num_hidden})",
                )  # fmt: skip
        return cls(
            tuple(Dense(w, b) for w, b in zip(ws, bs, strict=True)),
            (*hidden, output_activation),
        )

    @classmethod
    def from_layers(
        cls,
        layers: Sequence[tuple[Any, Any]],
        activations: Sequence[str],
        *,
        dtype: Any = None,
    ) -> Network:
        """From ``(W, b)`` pairs and one activation per *hidden* layer (affine output)."""
        if isinstance(activations, str):
            raise fail(
                "Network.from_layers", "activations", activations,
                "a sequence of names, one per hidden layer",
            )  # fmt: skip
        pairs = list(layers)
        for k, pair in enumerate(pairs):
            if not (isinstance(pair, Sequence | np.ndarray) and len(pair) == 2):
                raise fail("Network.from_layers", f"layers[{k}]", pair, "a pair (W, b)")
        return cls.from_weights(
            [w for w, _ in pairs], [b for _, b in pairs], tuple(activations), dtype=dtype
        )

    @staticmethod
    def stack(networks: Sequence[Network]) -> Network:
        """Members of one architecture stacked along a new leading axis (an ensemble)."""
        nets = list(networks)
        if not nets:
            raise fail("Network.stack", "networks", nets, "a non-empty sequence of networks")
        ref = jax.tree_util.tree_structure(nets[0])
        shapes = [np.shape(leaf) for leaf in jax.tree.leaves(nets[0])]
        for i, n in enumerate(nets):
            same = jax.tree_util.tree_structure(n) == ref  # type: ignore[operator]
            if not same or [np.shape(leaf) for leaf in jax.tree.leaves(n)] != shapes:
                raise fail(
                    "Network.stack", f"networks[{i}]", repr(n),
                    f"the same architecture as networks[0] ({nets[0]!r})",
                )  # fmt: skip
        xp = _xp(*jax.tree.leaves(nets[0]))
        return jax.tree.map(lambda *a: xp.stack(a), *nets)

    def member(self, m: int) -> Network:
        """Member ``m`` of a stacked network."""
        return jax.tree.map(lambda a: a[m], self)

    # ------------------------------------------------------------------ structure
    @property
    def num_layers(self) -> int:
        return len(self.layers)

    @property
    def num_hidden(self) -> int:
        return len(self.layers) - 1

    @property
    def hidden_activations(self) -> tuple[str, ...]:
        return self.activations[:-1]

    @property
    def output_activation(self) -> str:
        return self.activations[-1]

    @property
    def acts(self) -> tuple[Activation, ...]:
        """The :class:`~toylab.activations.Activation` objects, one per layer."""
        return tuple(get_activation(a) for a in self.activations)

    @property
    def piecewise_linear(self) -> bool:
        return all(a.piecewise_linear for a in self.acts)

    @property
    def tied(self) -> bool:
        return any(isinstance(layer, Tied) for layer in self.layers)

    @property
    def dtype(self) -> np.dtype:
        return np.result_type(*(leaf.dtype for leaf in jax.tree.leaves(self)))

    def _shape(self, k: int) -> tuple[int, int]:
        """``(fan_in, fan_out)`` of layer ``k`` (ignoring a leading member axis)."""
        layer = self.layers[k]
        if isinstance(layer, Conv | AvgPool | MaxPool | SpatialDense):
            return layer.fan_in, layer.fan_out
        if isinstance(layer, Tied):
            w = self.layers[layer.source].kernel  # type: ignore[union-attr]
            return int(w.shape[-1]), int(w.shape[-2])
        return int(layer.kernel.shape[-2]), int(layer.kernel.shape[-1])

    @property
    def input_dim(self) -> int:
        return self._shape(0)[0]

    @property
    def output_dim(self) -> int:
        return self._shape(self.num_layers - 1)[1]

    @property
    def widths(self) -> dict[str, int]:
        """Layer key -> number of units, in network order (see :mod:`toylab.neurons`)."""
        out = {"input": self.input_dim}
        for k, (post, pre) in enumerate(self.layer_names):
            n = self._shape(k)[1]
            if pre is not None:
                out[pre] = n
            out[post] = n
        return out

    def layer_keys(self) -> list[str]:
        """Every layer key but ``"input"``, in network order (the flat order)."""
        return [k for k in self.widths if k != "input"]

    @property
    def layer_names(self) -> list[tuple[str, str | None]]:
        """``(post key, pre key)`` of each layer (``pre`` is ``None`` for an identity
        output): named per kind, counting from 0 in each (``conv_0``, ``pool_0``,
        ``hidden_0``, ...), the last layer ``output``. Every layer but an identity
        output has a ``.pre`` key (a pooling too: its ``pool_k.pre`` equals ``pool_k``
        when its activation is the identity)."""
        return _layer_keys(self.layers, self.output_activation)

    def layer_index(self, key: str) -> int:
        """The index into :attr:`layers` of the layer whose values are ``key`` (a post
        or ``.pre`` key, ``"hidden_0"``, ``"conv_1.pre"``, ``"output"``)."""
        for k, (post, pre) in enumerate(self.layer_names):
            if key in (post, pre):
                return k
        keys = [k for k in self.widths if k != "input"]
        if key == "input":
            raise fail(
                "Network.layer_index", "key", key, f"a layer key of this network: {keys}",
                "The input is not the output of a layer.",
            )  # fmt: skip
        raise fail("Network.layer_index", "key", key, f"a layer key of this network: {keys}")

    @property
    def spatial(self) -> bool:
        """Whether any layer is spatial (a convolution or a pooling)."""
        return any(hasattr(layer, "out_shape") for layer in self.layers)

    @property
    def layer_shapes(self) -> dict[str, tuple[int, int, int]]:
        """Spatial layer key -> its feature maps' ``(H, W, C)`` (``"input"`` when the
        first layer reads feature maps; ``.pre`` keys too)."""
        out: dict[str, tuple[int, int, int]] = {}
        first = self.layers[0]
        if isinstance(first, Conv | AvgPool | MaxPool):
            out["input"] = first.in_shape
        for layer, (post, pre) in zip(self.layers, self.layer_names, strict=True):
            shape = getattr(layer, "out_shape", None)
            if shape is not None:
                if pre is not None:
                    out[pre] = shape
                out[post] = shape
        return out

    def layer_shape(self, key: str) -> tuple[int, int, int]:
        """``(H, W, C)`` of a spatial layer's feature maps (see :attr:`layer_shapes`)."""
        shapes = self.layer_shapes
        if key not in shapes:
            raise fail(
                "Network.layer_shape", "key", key,
                f"a spatial layer key of this network: {list(shapes)}",
                "Dense layers have widths (Network.widths), not shapes.",
            )  # fmt: skip
        return shapes[key]

    def neuron_ids(self, layers: Sequence[str] | None = None) -> list[NeuronId]:
        """Every neuron of ``layers`` (default: every post-activation layer): one per
        unit of a dense layer, one per channel (at the centre) of a spatial one."""
        return neuron_ids(self.widths, layers, self.layer_shapes)

    def flat_index(self, neuron: str | NeuronId) -> int:
        """The neuron's position in :meth:`forward_flat`'s concatenation."""
        nid = self.resolve(neuron)
        offset = 0
        for key, width in self.widths.items():
            if key == "input":
                continue
            if key == nid.key:
                return offset + nid.unit
            offset += width
        raise AssertionError(nid)  # pragma: no cover - resolve checked the key

    def resolve(self, neuron: str | NeuronId, *, allow_input: bool = False) -> NeuronId:
        """The canonical :class:`~toylab.neurons.NeuronId` of ``neuron`` in this network."""
        nid = resolve(neuron, self.widths, self.layer_shapes)
        if nid.layer == "input" and not allow_input:
            raise ToylabError(
                f"neuron must be a hidden or output neuron like 'hidden_0:3' or "
                f"'conv_0:5@7,7', got {str(nid)!r}."
            )
        return nid

    def layer_arrays(self, k: int) -> tuple[Any, Any]:
        """``(W, b)`` of layer ``k`` in its own array type (tied weights resolved)."""
        return self.layers[k].arrays(self.layers)

    def dense_layers(self, dtype: Any = np.float64) -> list[tuple[np.ndarray, np.ndarray]]:
        """Every layer as NumPy ``(W, b)`` of ``dtype`` (``None``: keep each array's dtype)."""
        out = []
        for k in range(self.num_layers):
            w, b = self.layer_arrays(k)
            w, b = np.asarray(w), np.asarray(b)
            if dtype is not None:
                w, b = w.astype(dtype), b.astype(dtype)
            out.append((w, b))
        return out

    def numpy(self, dtype: Any = None) -> Network:
        """The same network with NumPy arrays (cast to ``dtype`` if given)."""
        return jax.tree.map(
            lambda a: np.asarray(a) if dtype is None else np.asarray(a).astype(dtype), self
        )

    def jax(self, dtype: Any = None) -> Network:
        """The same network with JAX arrays (cast to ``dtype`` if given). NumPy leaves are
        cast on the host and transferred (``jnp.asarray`` would compile a program per
        shape); the values are those ``jnp.asarray`` gives."""

        def put(a: Any) -> Any:
            if isinstance(a, np.ndarray):
                target = jax.dtypes.canonicalize_dtype(a.dtype if dtype is None else dtype)
                return jax.device_put(a.astype(target, copy=False))
            return jnp.asarray(a, dtype)

        return jax.tree.map(put, self)

    def untied(self) -> Network:
        """Every :class:`Tied` layer replaced by the :class:`Dense` layer it computes."""
        if not self.tied:
            return self
        layers = tuple(
            Dense(*layer.arrays(self.layers)) if isinstance(layer, Tied) else layer
            for layer in self.layers
        )
        return Network(layers, self.activations)

    def __repr__(self) -> str:
        """``Network(2-16-16-3, relu)``; with spatial layers the shapes and kinds:
        ``Network(16x16x1 -conv5x5x8-> 16x16x8 -avg2-> 8x8x8 -> 32 -> 8, relu)``
        (``/s``: stride; a pooling's identity activation is not listed)."""
        hidden = [
            a
            for layer, a in zip(self.layers, self.hidden_activations, strict=False)
            if not (isinstance(layer, AvgPool | MaxPool) and a == "identity")
        ]
        acts = sorted(set(hidden)) or ["-"]
        extra = f", output {self.output_activation}" if self.output_activation != "identity" else ""
        tied = ", tied" if self.tied else ""
        if not self.spatial:
            widths = [self.input_dim] + [self._shape(k)[1] for k in range(self.num_layers)]
            return f"Network({'-'.join(map(str, widths))}, {'/'.join(acts)}{extra}{tied})"
        shapes = self.layer_shapes
        parts = ["x".join(map(str, shapes["input"])) if "input" in shapes else str(self.input_dim)]
        for k, layer in enumerate(self.layers):
            out = getattr(layer, "out_shape", None)
            size = "x".join(map(str, out)) if out is not None else str(self._shape(k)[1])
            parts.append(f"{_arrow(layer)} {size}")
        return f"Network({' '.join(parts)}, {'/'.join(acts)}{extra}{tied})"

    # ------------------------------------------------------------------ evaluation
    def forward(self, x: Any, *, hooks: Hooks | None = None) -> dict[str, Any]:
        """Every layer's values at inputs ``x`` of shape ``(..., input_dim)``.

        NumPy inputs with NumPy weights are evaluated in NumPy (in the promoted dtype,
        float64 for a float64 network); anything involving JAX arrays (or tracers) in
        JAX. ``hooks[key](values) -> values`` rewrites a layer's values (a post-
        activation key such as ``"hidden_0"``, or a ``".pre"`` key) before they are
        used further; the returned dict holds the rewritten values.
        """
        out = {"input": x}
        h = x
        keys = self.layer_names
        for k, (layer, act) in enumerate(zip(self.layers, self.acts, strict=True)):
            post, pre = keys[k]
            z = layer.apply(h, self.layers)
            if pre is not None:
                if hooks and pre in hooks:
                    z = hooks[pre](z)
                out[pre] = z
            h = act(z)
            if hooks and post in hooks:
                h = hooks[post](h)
            out[post] = h
        return out

    def __call__(self, x: Any) -> Any:
        """The output at inputs ``x``."""
        return self.forward(x)["output"]

    def values(self, x: Any, neuron: str | NeuronId) -> Any:
        """One neuron's values at inputs ``x``: shape ``x.shape[:-1]``."""
        nid = self.resolve(neuron, allow_input=True)
        return self.forward(x)[nid.key][..., nid.unit]

    def forward_flat(self, x: Any, *, hooks: Hooks | None = None) -> Any:
        """Every layer but the input, concatenated in network order (:meth:`flat_index`)."""
        vals = self.forward(x, hooks=hooks)
        xp = _xp(x, *jax.tree.leaves(self))
        return xp.concatenate([vals[k] for k in self.layer_keys()], axis=-1)

    def jvp(self, x: Any, direction: Any) -> dict[str, Any]:
        """Directional derivatives of every layer at ``x`` along ``direction`` (forward mode).

        ``direction`` broadcasts against ``x``. Uses each activation's derivative, so for
        a piecewise-linear network it is the slope of the affine piece holding ``x``.
        """
        xp = _xp(x, direction, *jax.tree.leaves(self))
        h, dh = x, xp.broadcast_to(xp.asarray(direction), xp.shape(x)) + 0.0 * x
        out = {"input": dh}
        keys = self.layer_names
        for k, (layer, act) in enumerate(zip(self.layers, self.acts, strict=True)):
            post, pre = keys[k]
            z = layer.apply(h, self.layers)
            if isinstance(layer, MaxPool):  # not affine: the derivative at h
                dz = layer.linear_at(h, dh, self.layers)
            else:
                dz = layer.linear(dh, self.layers)
            if pre is not None:
                out[pre] = dz
            h, dh = act(z), act.grad(z) * dz
            out[post] = dh
        return out

    def gradient(self, x: Any, neuron: str | NeuronId) -> Any:
        """The gradient of one neuron with respect to the input at ``x``: ``x.shape``.

        Reverse mode with the activation table's derivatives (float64 for a float64
        network: the exact gradient of the affine piece for piecewise-linear ones; max
        pooling routes to each window's first maximum, :class:`MaxPool`).
        """
        nid = self.resolve(neuron)
        keys = self.layer_names
        target = next(k for k, (post, pre) in enumerate(keys) if nid.key in (post, pre))
        xp = _xp(x, *jax.tree.leaves(self))
        zs, hs = [], []
        h = x
        for k in range(target + 1):
            hs.append(h)
            z = self.layers[k].apply(h, self.layers)
            zs.append(z)
            h = self.acts[k](z)
        width = self._shape(target)[1]
        g = xp.zeros((*xp.shape(x)[:-1], width), dtype=xp.result_type(x, zs[-1]))
        g = g + (xp.arange(width) == nid.unit)
        if nid.key == keys[target][0]:  # post-activation
            g = g * self.acts[target].grad(zs[target])
        for k in range(target, -1, -1):
            layer = self.layers[k]
            if isinstance(layer, MaxPool):  # not affine: the transposed derivative at its input
                g = layer.transpose_at(hs[k], g, self.layers)
            else:
                g = layer.transpose(g, self.layers)
            if k > 0:
                g = g * self.acts[k - 1].grad(zs[k - 1])
        return g

    # ------------------------------------------------------------------ edits
    def _numpy_layers(self) -> list[list[np.ndarray]]:
        return [[w.copy(), b.copy()] for w, b in self.dense_layers(dtype=None)]

    def _rebuilt(self, pairs: list[list[np.ndarray]]) -> Network:
        return Network(tuple(Dense(w, b) for w, b in pairs), self.activations)

    def with_layer(self, k: int, *, kernel: Any = None, bias: Any = None) -> Network:
        """A copy with layer ``k``'s kernel and/or bias replaced (same shapes; dtype kept).

        Tied layers become :class:`Dense` (an edit unties them).
        """
        where = "Network.with_layer"
        if (
            isinstance(k, bool)
            or not isinstance(k, int | np.integer)
            or not 0 <= k < self.num_layers
        ):
            raise fail(where, "layer", k, f"an index in 0..{self.num_layers - 1}")
        if self.spatial:
            return self._with_spatial_layer(k, kernel, bias)
        pairs = self._numpy_layers()
        for idx, (name, new) in enumerate((("kernel", kernel), ("bias", bias))):
            if new is None:
                continue
            old = pairs[k][idx]
            arr = np.asarray(new, dtype=old.dtype)
            if arr.shape != old.shape:
                raise fail(where, name, f"an array of shape {arr.shape}", f"of shape {old.shape}")
            if not np.all(np.isfinite(arr)):
                raise fail(where, name, "an array with non-finite entries", "finite")
            pairs[k][idx] = arr
        return self._rebuilt(pairs)

    def _with_spatial_layer(self, k: int, kernel: Any, bias: Any) -> Network:
        """:meth:`with_layer` of a network with spatial layers: the others keep their kind."""
        where = "Network.with_layer"
        layers = list(self.numpy().layers)
        layer = layers[k]
        if isinstance(layer, Tied):
            layer = Dense(*layer.arrays(layers))
        changes = {}
        for name, new in (("kernel", kernel), ("bias", bias)):
            if new is None:
                continue
            if not hasattr(layer, name):
                raise fail(
                    where, name, "an array", f"nothing: layer {k} ({type(layer).__name__}) has "
                    "no parameters",
                )  # fmt: skip
            old = getattr(layer, name)
            arr = np.asarray(new, dtype=old.dtype)
            if arr.shape != old.shape:
                raise fail(where, name, f"an array of shape {arr.shape}", f"of shape {old.shape}")
            if not np.all(np.isfinite(arr)):
                raise fail(where, name, "an array with non-finite entries", "finite")
            changes[name] = arr
        layers[k] = dataclasses.replace(layer, **changes)  # type: ignore[type-var,arg-type]
        return Network(tuple(layers), self.activations)

    def ablate(
        self,
        neurons: str | NeuronId | Sequence[str | NeuronId],
        values: float | Mapping[str, float] = 0.0,
    ) -> Network:
        """A copy with each hidden unit's post-activation fixed to a constant.

        The unit's outgoing weights are zeroed and ``value`` times them added to the
        next layer's bias: an exact weight edit, so the result is again an ordinary
        network. ``values`` is one constant (``0.0``: zero ablation) or a mapping from
        address to constant (mean ablation with the exact means of
        :func:`toylab.exact.analyze`).
        """
        where = "ablate"
        if isinstance(neurons, str | NeuronId):
            neurons = [neurons]
        spatial = self.spatial
        if spatial:
            layers = list(self.numpy().layers)
            pairs: list[list[np.ndarray]] = []
        else:
            pairs = self._numpy_layers()
        for neuron in neurons:
            nid = self.resolve(neuron)
            if nid.pre or nid.layer == "output":
                raise fail(
                    where, "neurons", str(nid),
                    "hidden post-activation neurons like 'hidden_0:3' or 'conv_0:5@7,7'",
                )  # fmt: skip
            if isinstance(values, Mapping):
                # the canonical address, or the address as the caller wrote it
                given = neuron if isinstance(neuron, str) else str(neuron)
                entry = str(nid) if str(nid) in values else given
                if entry not in values:
                    raise fail(
                        where, "values", dict(values), f"a mapping with an entry for {str(nid)!r}"
                    )
                v = values[entry]
            else:
                v = values
            if isinstance(v, bool) or not isinstance(v, int | float | np.integer | np.floating):
                raise fail(where, "values", v, "a number or a mapping from neuron to number")
            if not np.isfinite(v):
                raise fail(where, "values", v, "finite")
            k = self.layer_index(nid.key)
            if spatial:
                layers[k + 1] = _ablated(layers, k + 1, nid, float(v))
                continue
            w_next, b_next = pairs[k + 1]
            b_next += float(v) * w_next[nid.unit]
            w_next[nid.unit] = 0.0
        if spatial:
            return Network(tuple(layers), self.activations)
        return self._rebuilt(pairs)

    def compose_input(self, matrix: Any, offset: Any) -> Network:
        """The network of new inputs ``u`` with ``x = u @ matrix + offset``.

        ``matrix`` is ``(new_dim, input_dim)``; the first layer absorbs the map exactly
        (up to one rounding of its product), so regions, maps and gradients of the
        result are in the new coordinates.
        """
        where = "Network.compose_input"
        if self.spatial:
            return self._compose_spatial(matrix, offset)
        pairs = self._numpy_layers()
        w0, b0 = pairs[0]
        a = np.asarray(matrix, dtype=np.result_type(w0.dtype, np.float64))
        c = np.asarray(offset, dtype=a.dtype)
        if a.ndim != 2 or a.shape[1] != w0.shape[0] or c.shape != (w0.shape[0],):
            raise fail(
                where, "matrix, offset", (a.shape, c.shape),
                f"a (new_dim, {w0.shape[0]}) matrix and a ({w0.shape[0]},) offset",
            )  # fmt: skip
        pairs[0] = [a @ w0, c @ w0 + b0]
        return self._rebuilt(pairs)

    def _compose_spatial(self, matrix: Any, offset: Any) -> Network:
        """:meth:`compose_input` of a network with spatial layers: the first layer
        becomes the composed affine map (a :class:`Dense`, or a :class:`SpatialDense`
        keeping a conv / pool layer's name and shape), computed by that layer itself
        (``matrix`` rows through its linear part, ``offset`` through the layer); the
        other layers are kept (as NumPy arrays)."""
        where = "Network.compose_input"
        net = self.numpy()
        first = net.layers[0]
        if not getattr(first, "affine", True):
            raise NotApplicable(
                f"{where}: the first layer ({type(first).__name__}) is not affine, so a change "
                "of input coordinates cannot be folded into it."
            )
        n = net.input_dim
        dt = np.result_type(net.dtype, np.float64)
        a = np.asarray(matrix, dtype=dt)
        c = np.asarray(offset, dtype=dt)
        if a.ndim != 2 or a.shape[1] != n or c.shape != (n,):
            raise fail(
                where, "matrix, offset", (a.shape, c.shape),
                f"a (new_dim, {n}) matrix and a ({n},) offset",
            )  # fmt: skip
        w, b = first.linear(a, net.layers), first.apply(c, net.layers)  # type: ignore[union-attr]
        shape = getattr(first, "out_shape", None)
        new = (
            Dense(w, b) if shape is None else SpatialDense(w, b, first.prefix, shape)  # type: ignore[union-attr]
        )
        return Network((new, *net.layers[1:]), self.activations)

    def on_plane(self, origin: Any, d1: Any, d2: Any) -> Network:
        """The network restricted to the plane ``origin + s d1 + t d2``: inputs ``(s, t)``."""
        n = self.input_dim
        arrs = []
        for name, p in (("origin", origin), ("d1", d1), ("d2", d2)):
            arr = np.asarray(p, np.float64)
            if arr.shape != (n,) or not np.all(np.isfinite(arr)):
                raise fail(
                    "Network.on_plane", name, getattr(arr, "shape", p), f"a finite ({n},) vector"
                )
            arrs.append(arr)
        return self.compose_input(np.stack(arrs[1:]), arrs[0])


jax.tree_util.register_dataclass(Network, data_fields=["layers"], meta_fields=["activations"])


def _static_out_shape(layer: Any) -> tuple[int, int, int] | None:
    """A spatial layer's output shape when it can be read (not from placeholder leaves)."""
    if isinstance(layer, AvgPool | MaxPool | SpatialDense):
        return layer.out_shape
    if isinstance(layer, Conv) and isinstance(getattr(layer.kernel, "shape", None), tuple):
        return layer.out_shape
    return None


def _arrow(layer: Any) -> str:
    """The arrow of a layer in :meth:`Network.__repr__`: ``-conv3x3x8/2->``, ``-avg2->``."""

    def pair(p: tuple[int, int], sep: str = "x") -> str:
        return str(p[0]) if p[0] == p[1] else f"{p[0]}{sep}{p[1]}"

    if isinstance(layer, Conv):
        (kh, kw), c = layer.window, layer.out_shape[2]
        step = "" if layer.stride == (1, 1) else f"/{pair(layer.stride)}"
        return f"-conv{kh}x{kw}x{c}{step}->"
    if isinstance(layer, AvgPool | MaxPool):
        step = "" if layer.stride == layer.window else f"/{pair(layer.stride)}"
        return f"-{layer.symbol}{pair(layer.window)}{step}->"
    return "->"


def _ablated(layers: list[Any], k: int, nid: NeuronId, v: float) -> Any:
    """Layer ``k`` reading unit ``nid.unit`` of its input as the constant ``v``: the
    unit's row of a dense kernel is zeroed and ``v`` times it added to the bias."""
    layer = layers[k]
    if isinstance(layer, Tied):
        layer = Dense(*layer.arrays(layers))
    if not isinstance(layer, Dense | SpatialDense):
        raise fail(
            "ablate", "neurons", str(nid),
            f"a unit read by a dense layer; {str(nid)!r} is read by layer {k} "
            f"({type(layer).__name__}), which cannot absorb a constant at one position "
            "(the result would no longer be that kind of layer)",
            "Ablate by value with Network.forward(x, hooks={key: ...}) instead.",
        )  # fmt: skip
    w, b = np.array(layer.kernel), np.array(layer.bias)
    b += v * w[nid.unit]
    w[nid.unit] = 0.0
    return dataclasses.replace(layer, kernel=w, bias=b)


def as_network(model: Any, where: str = "model") -> Network:
    """``model`` as a :class:`Network`: a network is returned as it is, a toylab model
    (anything with ``to_network()``) is converted, anything else is a clear error."""
    if isinstance(model, Network):
        return model
    to_network = getattr(model, "to_network", None)
    if to_network is None:
        raise fail(
            where, "model", type(model).__name__,
            "a toylab.network.Network or a toylab model (toylab.models.MLP, ...)",
            "Build one with Network.from_weights or MLP.from_weights.",
        )  # fmt: skip
    return to_network()
