"""flax NNX models whose every neuron has a canonical address.

Models are for training; every analysis works on their :class:`~toylab.network.Network`
value. All models share one contract:

* ``model.to_network()`` returns the network value (the model's own arrays: JAX,
  in the parameters' dtype); ``model.with_network(net)`` a model of the same class
  holding ``net``'s parameters (the inverse; dtypes kept);
* ``model(x)`` returns the output and ``model.intermediates(x)`` every layer's
  values (``"input"``, ``"hidden_0.pre"``, ``"hidden_0"``, ..., ``"output"``), both
  through the network's one forward pass; they are pure, so they work under
  ``jax.vmap`` over an ensemble's stacked parameters;
* ``model.widths`` maps those layer keys to their number of units.

Models built from explicit weights (:meth:`MLP.from_weights`,
:func:`from_network`) run no random initializer: an abstract module
(``nnx.eval_shape``) is filled with the arrays, so nothing is compiled.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from toylab._errors import ToylabError, fail
from toylab._validate import is_int
from toylab.activations import get_activation
from toylab.network import Dense, Network, Tied

__all__ = ["MLP", "OneHotMLP", "SuperpositionLinear", "SuperpositionReLU", "from_network"]


def _check_widths(where: str, widths: Sequence[int]) -> tuple[int, ...]:
    widths = tuple(widths)
    if len(widths) < 2:
        raise fail(
            where, "widths", widths, "at least the input and output sizes",
            "Example: widths=(2, 16, 16, 2).",
        )  # fmt: skip
    for w in widths:
        if not is_int(w) or w < 1:
            raise fail(where, "widths", widths, "positive integers")
    return tuple(int(w) for w in widths)


def _param(array: Any, dtype: Any) -> nnx.Param:
    """A parameter holding ``array`` in ``dtype`` (float64 stays float64: stored under x64)."""
    dt = np.dtype(dtype)
    host = np.asarray(array).astype(dt)
    with jax.enable_x64(bool(dt == np.float64)):
        return nnx.Param(jax.device_put(host))


def _abstract(build: Any) -> Any:
    """The module ``build()`` makes, with abstract parameters: no initializer runs."""
    return nnx.eval_shape(build)


class MLP(nnx.Module):
    """A multilayer perceptron ``x -> act(x W_0 + b_0) -> ... -> x W_L + b_L``.

    ``widths = (d_in, h_0, ..., h_{L-1}, d_out)``; every hidden layer uses the same
    ``activation`` (see :mod:`toylab.activations`); the output layer is affine
    (logits). Hidden layer ``k`` is addressed as ``"hidden_k"`` (after the
    activation) and ``"hidden_k.pre"`` (before); the logits as ``"output"``.
    """

    def __init__(
        self,
        widths: Sequence[int],
        activation: str = "relu",
        *,
        rngs: nnx.Rngs,
        param_dtype: Any = jnp.float32,
        kernel_init: Any = None,
        bias_init: Any = None,
    ):
        self.widths_in_order = _check_widths(type(self).__name__, widths)
        get_activation(activation, type(self).__name__)
        self.activation = activation
        init = {}
        if kernel_init is not None:
            init["kernel_init"] = kernel_init
        if bias_init is not None:
            init["bias_init"] = bias_init
        self.layers = nnx.List(
            [
                nnx.Linear(a, b, rngs=rngs, param_dtype=param_dtype, **init)
                for a, b in zip(self.widths_in_order[:-1], self.widths_in_order[1:], strict=True)
            ]
        )

    @property
    def num_hidden(self) -> int:
        return len(self.widths_in_order) - 2

    def to_network(self) -> Network:
        layers = tuple(Dense(lin.kernel[...], lin.bias[...]) for lin in self.layers)  # type: ignore[index]
        return Network(layers, (self.activation,) * self.num_hidden + ("identity",))

    @property
    def widths(self) -> dict[str, int]:
        out = {"input": self.widths_in_order[0]}
        for k, w in enumerate(self.widths_in_order[1:-1]):
            out[f"hidden_{k}.pre"] = w
            out[f"hidden_{k}"] = w
        out["output"] = self.widths_in_order[-1]
        return out

    def intermediates(self, x: jax.Array) -> dict[str, jax.Array]:
        return self.to_network().forward(x)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.to_network()(x)

    def with_network(self, net: Network) -> MLP:
        """A model of this class holding ``net``'s parameters (the dtype of ``net``'s arrays)."""
        where = f"{type(self).__name__}.with_network"
        if (
            net.tied
            or set(net.hidden_activations) - {self.activation}
            or (net.output_activation != "identity")
        ):
            raise fail(
                where, "net", repr(net),
                f"untied Dense layers with hidden activation {self.activation!r} and an affine "
                "output", "Use toylab.models.from_network for another architecture.",
            )  # fmt: skip
        got = [net.input_dim] + [
            net.dense_layers(None)[k][0].shape[1] for k in range(net.num_layers)
        ]
        if tuple(got) != self.widths_in_order:
            raise fail(where, "net", repr(net), f"widths {self.widths_in_order}")
        graphdef, state = nnx.split(self)
        model = nnx.merge(graphdef, state)
        for lin, (w, b) in zip(model.layers, net.dense_layers(None), strict=True):
            lin.kernel = _param(w, w.dtype)
            lin.bias = _param(b, b.dtype)
        return model

    @classmethod
    def from_weights(
        cls,
        weights: Sequence[Any],
        biases: Sequence[Any] | None = None,
        activation: str = "relu",
        *,
        param_dtype: Any = jnp.float32,
    ) -> MLP:
        """Build an MLP from explicit arrays: ``weights[k]`` has shape ``(fan_in, fan_out)``.

        ``biases`` defaults to zeros; shapes must chain. The parameters are stored in
        ``param_dtype`` (float32 by default, as training uses; ``np.float64`` keeps a
        handwritten circuit at full precision). Runs no initializer, compiles nothing.
        """
        net = Network.from_weights(weights, biases, activation)
        if cls is not MLP:
            raise ToylabError(
                f"{cls.__name__}.from_weights: use toylab.models.from_network for this model kind."
            )
        return from_network(net.numpy(param_dtype))  # type: ignore[return-value]


class OneHotMLP(MLP):
    """An MLP over concatenated one-hot operands, for finite tasks.

    The input is ``one_hot(a_1) ⊕ ... ⊕ one_hot(a_m)`` with ``num_values`` values per
    operand (modular arithmetic mod p: ``num_operands=2``, ``num_values=p``), exactly
    the ``x`` that :class:`toylab.distributions.ModularArithmetic` samples.
    ``encode(operands)`` builds that input from integer operands.
    """

    def __init__(
        self,
        num_values: int,
        hidden: Sequence[int],
        num_outputs: int,
        activation: str = "relu",
        *,
        num_operands: int = 2,
        rngs: nnx.Rngs,
        param_dtype: Any = jnp.float32,
        kernel_init: Any = None,
        bias_init: Any = None,
    ):
        for name, v in (("num_values", num_values), ("num_operands", num_operands)):
            if not is_int(v) or v < 1:
                raise fail("OneHotMLP", name, v, "a positive integer")
        self.num_values = num_values
        self.num_operands = num_operands
        super().__init__(
            (num_values * num_operands, *hidden, num_outputs),
            activation,
            rngs=rngs,
            param_dtype=param_dtype,
            kernel_init=kernel_init,
            bias_init=bias_init,
        )

    def encode(self, operands: jax.Array) -> jax.Array:
        """``(..., num_operands)`` integers to concatenated one-hot inputs."""
        oh = jax.nn.one_hot(operands, self.num_values)
        return oh.reshape(*oh.shape[:-2], self.num_operands * self.num_values)


class SuperpositionLinear(nnx.Module):
    """Toy model of superposition, linear: ``h = W x``, ``x' = Wᵀ h + b``.

    ``W`` is ``(num_hidden, num_features)``. As a network: a :class:`~toylab.network.Dense`
    encoder with kernel ``Wᵀ`` and no bias, and a :class:`~toylab.network.Tied` decoder
    reusing it. Layers: ``"hidden_0"`` (= ``"hidden_0.pre"``, identity activation) and
    ``"output"`` (``"output.pre"`` too where the output has an activation).
    """

    output_activation: str = "identity"

    def __init__(
        self,
        num_features: int,
        num_hidden: int,
        *,
        rngs: nnx.Rngs,
        param_dtype: Any = jnp.float32,
        kernel_init: Any = None,
        bias_init: Any = None,
    ):
        for name, v in (("num_features", num_features), ("num_hidden", num_hidden)):
            if not is_int(v) or v < 1:
                raise fail(type(self).__name__, name, v, "a positive integer")
        k_init = nnx.initializers.xavier_normal() if kernel_init is None else kernel_init
        b_init = nnx.initializers.zeros_init() if bias_init is None else bias_init
        self.W = nnx.Param(k_init(rngs.params(), (num_hidden, num_features), param_dtype))
        self.b = nnx.Param(b_init(rngs.params(), (num_features,), param_dtype))
        self.num_features = num_features
        self.num_hidden = num_hidden

    def to_network(self) -> Network:
        W = self.W[...]
        if isinstance(W, jax.core.Tracer):
            encoder = Dense(W.T, jnp.zeros((W.shape[0],), W.dtype))
        else:  # concrete parameters keep their dtype (float64 needs x64 for the transpose)
            with jax.enable_x64(W.dtype == jnp.float64):
                encoder = Dense(W.T, jnp.zeros((W.shape[0],), W.dtype))
        return Network((encoder, Tied(0, self.b[...])), ("identity", self.output_activation))

    @property
    def widths(self) -> dict[str, int]:
        out = {
            "input": self.num_features,
            "hidden_0.pre": self.num_hidden,
            "hidden_0": self.num_hidden,
        }
        if self.output_activation != "identity":
            out["output.pre"] = self.num_features
        out["output"] = self.num_features
        return out

    def intermediates(self, x: jax.Array) -> dict[str, jax.Array]:
        return self.to_network().forward(x)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.to_network()(x)

    def with_network(self, net: Network) -> SuperpositionLinear:
        """A model of this class holding ``net``'s parameters (tied, no encoder bias)."""
        where = f"{type(self).__name__}.with_network"
        ok = (
            net.num_layers == 2
            and isinstance(net.layers[0], Dense)
            and isinstance(net.layers[1], Tied)
            and net.activations == ("identity", self.output_activation)
        )
        if not ok:
            raise fail(where, "net", repr(net), "a tied superposition network of this kind")
        w = np.asarray(net.layers[0].kernel).T  # type: ignore[union-attr]
        if np.any(np.asarray(net.layers[0].bias) != 0):  # type: ignore[union-attr]
            raise fail(where, "net", repr(net), "an encoder without bias")
        graphdef, state = nnx.split(self)
        model = nnx.merge(graphdef, state)
        model.W = _param(w, w.dtype)
        b = np.asarray(net.layers[1].bias)  # type: ignore[union-attr]
        model.b = _param(b, b.dtype)
        return model

    @classmethod
    def from_weights(cls, W: Any, b: Any | None = None, *, param_dtype: Any = jnp.float32):
        where = f"{cls.__name__}.from_weights"
        W = np.asarray(W, dtype=np.float64)
        if W.ndim != 2:
            raise fail(where, "W", f"an array of shape {W.shape}", "(num_hidden, num_features)")
        b = np.zeros(W.shape[1]) if b is None else np.asarray(b, dtype=np.float64)
        if b.shape != (W.shape[1],):
            raise fail(where, "b", f"an array of shape {b.shape}", f"of shape ({W.shape[1]},)")
        net = Network(
            (Dense(W.T, np.zeros(W.shape[0])), Tied(0, b)), ("identity", cls.output_activation)
        )
        return from_network(net.numpy(param_dtype))


class SuperpositionReLU(SuperpositionLinear):
    """Toy model of superposition with ReLU output: ``x' = ReLU(Wᵀ W x + b)``.

    Layers: ``"hidden_0"``, ``"output.pre"`` (``WᵀWx + b``) and ``"output"``.
    """

    output_activation = "relu"


def from_network(net: Network) -> nnx.Module:
    """The NNX model holding ``net``'s parameters, in their dtype (no initializer runs).

    An untied network whose hidden layers share one activation and whose output is
    affine becomes an :class:`MLP`; conv layers (each optionally followed by a pooling)
    then dense ones a :class:`~toylab.models.conv.ConvNet`; a tied two-layer network with
    identity hidden layer becomes a :class:`SuperpositionLinear` (identity output) or
    :class:`SuperpositionReLU` (relu output).
    """
    if not isinstance(net, Network):
        raise fail("from_network", "net", type(net).__name__, "a toylab.network.Network")
    if not all(isinstance(layer, Dense | Tied) for layer in net.layers):  # conv layers
        from toylab.models.conv import conv_from_network

        return conv_from_network(net)
    if net.tied:
        cls: Any = {"identity": SuperpositionLinear, "relu": SuperpositionReLU}.get(
            net.output_activation
        )
        if cls is None or net.num_layers != 2:
            raise fail("from_network", "net", repr(net), "a superposition network (tied, 2 layers)")
        w = np.asarray(net.layers[0].kernel)  # type: ignore[union-attr]
        template = _abstract(lambda: cls(w.shape[0], w.shape[1], rngs=nnx.Rngs(0)))
        return template.with_network(net)
    acts = set(net.hidden_activations)
    if len(acts) > 1 or net.output_activation != "identity":
        raise fail(
            "from_network", "net", repr(net),
            "one activation for every hidden layer and an affine output (what an MLP holds)",
            "Keep working with the Network value: every analysis accepts it.",
        )  # fmt: skip
    act = acts.pop() if acts else "relu"
    pairs = net.dense_layers(None)
    widths = [pairs[0][0].shape[0]] + [w.shape[1] for w, _ in pairs]
    template = _abstract(lambda: MLP(widths, act, rngs=nnx.Rngs(0)))
    return template.with_network(net)
