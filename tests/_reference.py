"""Independent references for the tests: every activation and the forward pass of a
dense network, written from their textbook definitions in plain float64 NumPy, without
toylab (so a wrong activation table or forward pass in toylab cannot cancel out)."""

from __future__ import annotations

import math

import numpy as np

LEAKY_SLOPE = 0.01  # the slope toylab documents for leaky_relu

ACTIVATIONS = {
    "relu": lambda z: np.maximum(z, 0.0),
    "leaky_relu": lambda z: np.where(z > 0, z, LEAKY_SLOPE * z),
    "abs": np.abs,
    "identity": lambda z: z,
    "hardtanh": lambda z: np.clip(z, -1.0, 1.0),
    "tanh": np.tanh,
    "sigmoid": lambda z: 1.0 / (1.0 + np.exp(-z)),
    "quadratic": np.square,
    "gelu": lambda z: z * 0.5 * (1 + np.vectorize(math.erf)(z / np.sqrt(2))),
}


def forward(layers, acts, x):
    """``{"hidden_k.pre", "hidden_k", "output"}`` of the network ``layers = [(W, b), ...]``
    with hidden activations ``acts`` (the output layer is affine) at inputs ``x``."""
    out, h = {}, np.asarray(x, np.float64)
    for k, (w, b) in enumerate(layers[:-1]):
        z = h @ w + b
        h = ACTIVATIONS[acts[k]](z)
        out[f"hidden_{k}.pre"], out[f"hidden_{k}"] = z, h
    out["output"] = h @ layers[-1][0] + layers[-1][1]
    return out
