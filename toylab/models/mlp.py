"""flax NNX models whose every neuron has a canonical address.

All models share one contract:

* ``model(x)`` returns the output (logits, or reconstructions for superposition);
* ``model.intermediates(x)`` returns a dict from layer key to array with every
  layer's pre- and post-activations in one pass (``"input"``, ``"hidden_0.pre"``,
  ``"hidden_0"``, ..., ``"output"``; ``"output.pre"`` where the output has an
  activation). It is pure, so it works under ``jax.vmap`` over an ensemble's
  stacked parameters (see :func:`toylab.models.ensemble_activations`);
* ``model.widths`` maps those layer keys to their number of units;
* ``model.affine_layers()`` returns the weights as float64 NumPy ``(W, b)`` pairs
  (``y = x @ W + b``) plus the activation of each hidden layer, which is what
  :mod:`toylab.exact` analyses.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from toylab._errors import ToylabError
from toylab.models.activations import get_activation

__all__ = ["MLP", "OneHotMLP", "SuperpositionLinear", "SuperpositionReLU"]


def _check_widths(where: str, widths: Sequence[int]) -> tuple[int, ...]:
    widths = tuple(widths)
    if len(widths) < 2:
        raise ToylabError(
            f"{where}: widths must list at least the input and output sizes, got {widths!r}. "
            "Example: widths=(2, 16, 16, 2)."
        )
    for w in widths:
        if isinstance(w, bool) or not isinstance(w, int | np.integer) or w < 1:
            raise ToylabError(f"{where}: every width must be a positive integer, got {widths!r}.")
    return tuple(int(w) for w in widths)


def _host_zeros(key: Any, shape: Any, dtype: Any = jnp.float32) -> jax.Array:
    """Zeros made on the host: no compiled initialiser per new shape."""
    return jax.device_put(np.zeros(shape, np.dtype(dtype)))


class MLP(nnx.Module):
    """A multilayer perceptron ``x -> act(x W_0 + b_0) -> ... -> x W_L + b_L``.

    ``widths = (d_in, h_0, ..., h_{L-1}, d_out)``; every hidden layer uses the same
    ``activation`` (see :mod:`toylab.models.activations`); the output layer is
    affine (logits). Hidden layer ``k`` is addressed as ``"hidden_k"`` (after the
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
    ):
        self.widths_in_order = _check_widths(type(self).__name__, widths)
        get_activation(activation)
        self.activation = activation
        init = {} if kernel_init is None else {"kernel_init": kernel_init, "bias_init": kernel_init}
        self.layers = nnx.List(
            [
                nnx.Linear(a, b, rngs=rngs, param_dtype=param_dtype, **init)
                for a, b in zip(self.widths_in_order[:-1], self.widths_in_order[1:], strict=True)
            ]
        )

    @property
    def num_hidden(self) -> int:
        return len(self.widths_in_order) - 2

    @property
    def widths(self) -> dict[str, int]:
        out = {"input": self.widths_in_order[0]}
        for k, w in enumerate(self.widths_in_order[1:-1]):
            out[f"hidden_{k}.pre"] = w
            out[f"hidden_{k}"] = w
        out["output"] = self.widths_in_order[-1]
        return out

    def intermediates(self, x: jax.Array) -> dict[str, jax.Array]:
        act = get_activation(self.activation)
        out = {"input": x}
        h = x
        for k, layer in enumerate(self.layers[:-1]):
            pre = layer(h)
            h = act(pre)
            out[f"hidden_{k}.pre"] = pre
            out[f"hidden_{k}"] = h
        out["output"] = self.layers[-1](h)
        return out

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.intermediates(x)["output"]

    def affine_layers(self) -> tuple[list[tuple[np.ndarray, np.ndarray]], list[str]]:
        layers = [
            (np.asarray(lin.kernel[...], np.float64), np.asarray(lin.bias[...], np.float64))  # type: ignore[index]
            for lin in self.layers
        ]
        return layers, [self.activation] * self.num_hidden

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

        ``biases`` defaults to zeros. Shapes must chain (``weights[k].shape[1] ==
        weights[k+1].shape[0]``). Handwritten circuits use this.
        """
        where = f"{cls.__name__}.from_weights"
        ws = [np.asarray(w, dtype=np.float64) for w in weights]
        if not ws:
            raise ToylabError(f"{where}: weights must hold at least one matrix, got [].")
        for k, w in enumerate(ws):
            if w.ndim != 2:
                raise ToylabError(
                    f"{where}: weights[{k}] must be a 2-D (fan_in, fan_out) matrix, got shape "
                    f"{w.shape}."
                )
            if k and ws[k - 1].shape[1] != w.shape[0]:
                raise ToylabError(
                    f"{where}: weights[{k - 1}] has {ws[k - 1].shape[1]} outputs but weights[{k}] "
                    f"has {w.shape[0]} inputs; shapes must chain."
                )
        if biases is None:
            bs = [np.zeros(w.shape[1]) for w in ws]
        else:
            bs = [np.asarray(b, dtype=np.float64) for b in biases]
            if len(bs) != len(ws):
                raise ToylabError(
                    f"{where}: biases must have one vector per weight matrix ({len(ws)}), got "
                    f"{len(bs)}."
                )
            for k, (w, b) in enumerate(zip(ws, bs, strict=True)):
                if b.shape != (w.shape[1],):
                    raise ToylabError(
                        f"{where}: biases[{k}] must have shape ({w.shape[1]},), got {b.shape}."
                    )
        widths = [ws[0].shape[0]] + [w.shape[1] for w in ws]
        # build without a random initialiser (it would compile one per new shape), then fill in
        model = MLP(widths, activation, rngs=nnx.Rngs(0), param_dtype=param_dtype,
                    kernel_init=_host_zeros)  # fmt: skip
        model.__class__ = cls
        for lin, w, b in zip(model.layers, ws, bs, strict=True):
            # convert on the host: a device-side cast would compile once per shape
            lin.kernel = nnx.Param(jax.device_put(w.astype(np.dtype(param_dtype))))
            lin.bias = nnx.Param(jax.device_put(b.astype(np.dtype(param_dtype))))
        return model


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
    ):
        for name, v in (("num_values", num_values), ("num_operands", num_operands)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ToylabError(f"OneHotMLP: {name} must be a positive integer, got {v!r}.")
        self.num_values = num_values
        self.num_operands = num_operands
        super().__init__(
            (num_values * num_operands, *hidden, num_outputs),
            activation,
            rngs=rngs,
            param_dtype=param_dtype,
        )

    def encode(self, operands: jax.Array) -> jax.Array:
        """``(..., num_operands)`` integers to concatenated one-hot inputs."""
        oh = jax.nn.one_hot(operands, self.num_values)
        return oh.reshape(*oh.shape[:-2], self.num_operands * self.num_values)


class SuperpositionLinear(nnx.Module):
    """Toy model of superposition, linear: ``h = W x``, ``x' = Wᵀ h + b``.

    ``W`` is ``(num_hidden, num_features)``, stored as the kernel of ``h = x @ Wᵀ``.
    Layers: ``"hidden_0"`` (= ``"hidden_0.pre"``, identity activation) and ``"output"``.
    """

    output_activation: str = "identity"

    def __init__(self, num_features: int, num_hidden: int, *, rngs: nnx.Rngs):
        for name, v in (("num_features", num_features), ("num_hidden", num_hidden)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ToylabError(
                    f"{type(self).__name__}: {name} must be a positive integer, got {v!r}."
                )
        init = nnx.initializers.xavier_normal()
        self.W = nnx.Param(init(rngs.params(), (num_hidden, num_features)))
        self.b = nnx.Param(jnp.zeros((num_features,)))
        self.num_features = num_features
        self.num_hidden = num_hidden

    @property
    def widths(self) -> dict[str, int]:
        out = {
            "input": self.num_features,
            "hidden_0.pre": self.num_hidden,
            "hidden_0": self.num_hidden,
            "output": self.num_features,
        }
        if self.output_activation != "identity":
            out["output.pre"] = self.num_features
        return out

    def intermediates(self, x: jax.Array) -> dict[str, jax.Array]:
        W = self.W[...]
        h = x @ W.T
        pre = h @ W + self.b[...]
        out = {"input": x, "hidden_0.pre": h, "hidden_0": h}
        if self.output_activation != "identity":
            out["output.pre"] = pre
        out["output"] = get_activation(self.output_activation)(pre)
        return out

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.intermediates(x)["output"]

    @classmethod
    def from_weights(cls, W: Any, b: Any | None = None):
        W = np.asarray(W, dtype=np.float64)
        if W.ndim != 2:
            raise ToylabError(
                f"{cls.__name__}.from_weights: W must be (num_hidden, num_features), got shape "
                f"{W.shape}."
            )
        m = cls(W.shape[1], W.shape[0], rngs=nnx.Rngs(0))
        m.W[...] = jnp.asarray(W, jnp.float32)
        if b is not None:
            b = np.asarray(b, dtype=np.float64)
            if b.shape != (W.shape[1],):
                raise ToylabError(
                    f"{cls.__name__}.from_weights: b must have shape ({W.shape[1]},), got {b.shape}."
                )
            m.b[...] = jnp.asarray(b, jnp.float32)
        return m


class SuperpositionReLU(SuperpositionLinear):
    """Toy model of superposition with ReLU output: ``x' = ReLU(Wᵀ W x + b)``.

    Layers: ``"hidden_0"``, ``"output.pre"`` (``WᵀWx + b``) and ``"output"``.
    """

    output_activation = "relu"
