"""Activation functions by name.

Names are the ones used in configs and in :mod:`toylab.exact`:

============  =========================================  ================
name          function                                   piecewise linear
============  =========================================  ================
relu          max(0, x)                                  yes
leaky_relu    x if x > 0 else 0.01 x                     yes
abs           |x|                                        yes
identity      x                                          yes
hardtanh      clip(x, -1, 1)                             yes
tanh          tanh(x)                                    no
gelu          x Φ(x) (exact erf form)                    no
sigmoid       1 / (1 + exp(-x))                          no
quadratic     x²                                         no
============  =========================================  ================
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from toylab._errors import ToylabError, did_you_mean

__all__ = [
    "ACTIVATIONS",
    "LEAKY_SLOPE",
    "NUMPY_ACTIVATIONS",
    "PIECEWISE_LINEAR",
    "forward_float64",
    "get_activation",
]

LEAKY_SLOPE = 0.01

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "relu": jax.nn.relu,
    "leaky_relu": lambda x: jnp.where(x > 0, x, LEAKY_SLOPE * x),
    "abs": jnp.abs,
    "identity": lambda x: x,
    "hardtanh": lambda x: jnp.clip(x, -1.0, 1.0),
    "tanh": jnp.tanh,
    "gelu": lambda x: jax.nn.gelu(x, approximate=False),
    "sigmoid": jax.nn.sigmoid,
    "quadratic": jnp.square,
}

PIECEWISE_LINEAR = frozenset({"relu", "leaky_relu", "abs", "identity", "hardtanh"})


def get_activation(name: str) -> Callable[[jax.Array], jax.Array]:
    """The activation called ``name``; unknown names get a did-you-mean error."""
    try:
        return ACTIVATIONS[name]
    except (KeyError, TypeError):
        raise ToylabError(
            f"activation must be one of {sorted(ACTIVATIONS)}, got {name!r}."
            + did_you_mean(str(name), ACTIVATIONS)
        ) from None


def _np_gelu(x: np.ndarray) -> np.ndarray:
    from scipy.special import ndtr

    return x * ndtr(x)


#: float64 NumPy versions of every activation, for exact host-side evaluation
NUMPY_ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "relu": lambda x: np.maximum(x, 0.0),
    "leaky_relu": lambda x: np.where(x > 0, x, LEAKY_SLOPE * x),
    "abs": np.abs,
    "identity": lambda x: x,
    "hardtanh": lambda x: np.clip(x, -1.0, 1.0),
    "tanh": np.tanh,
    "gelu": _np_gelu,
    "sigmoid": lambda x: 0.5 * (1.0 + np.tanh(0.5 * x)),
    "quadratic": np.square,
}


def forward_float64(
    layers: list[tuple[np.ndarray, np.ndarray]], activations: list[str], x: np.ndarray
) -> dict[str, np.ndarray]:
    """Every layer of an MLP given as float64 ``(W, b)`` pairs, evaluated in float64."""
    h = np.asarray(x, np.float64)
    out = {"input": h}
    for k, ((W, b), name) in enumerate(zip(layers[:-1], activations, strict=True)):
        pre = h @ W + b
        h = NUMPY_ACTIVATIONS[name](pre)
        out[f"hidden_{k}.pre"], out[f"hidden_{k}"] = pre, h
    W, b = layers[-1]
    out["output"] = h @ W + b
    return out
