"""Affine layers over flat feature vectors: :class:`Dense` and :class:`Tied`."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import jax

__all__ = ["Dense", "Tied"]


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Dense:
    """``h -> h @ kernel + bias`` with ``kernel`` of shape ``(fan_in, fan_out)``."""

    kernel: Any
    bias: Any

    def arrays(self, layers: Sequence[Any]) -> tuple[Any, Any]:
        """``(W, b)``: the dense weight matrix and bias."""
        return self.kernel, self.bias

    def apply(self, h: Any, layers: Sequence[Any]) -> Any:
        return h @ self.kernel + self.bias

    def linear(self, h: Any, layers: Sequence[Any]) -> Any:
        """The linear part ``h @ kernel`` (tangents and gradients)."""
        return h @ self.kernel

    def transpose(self, g: Any, layers: Sequence[Any]) -> Any:
        """``g @ kernel.T`` (back-propagation)."""
        return g @ self.kernel.T


@dataclasses.dataclass(frozen=True)
class Tied:
    """``h -> h @ layers[source].kernel.T + bias``: weights tied to an earlier layer."""

    source: int
    bias: Any

    def arrays(self, layers: Sequence[Any]) -> tuple[Any, Any]:
        return layers[self.source].kernel.T, self.bias

    def apply(self, h: Any, layers: Sequence[Any]) -> Any:
        return h @ layers[self.source].kernel.T + self.bias

    def linear(self, h: Any, layers: Sequence[Any]) -> Any:
        return h @ layers[self.source].kernel.T

    def transpose(self, g: Any, layers: Sequence[Any]) -> Any:
        return g @ layers[self.source].kernel


jax.tree_util.register_dataclass(Tied, data_fields=["bias"], meta_fields=["source"])
