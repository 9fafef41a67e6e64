"""Exact analysis on finite domains (modular arithmetic, boolean functions).

On a finite input set every neuron is a finite table. :func:`finite_table`
evaluates the network on every input in float64 (the float32 weights are cast
to float64, so the table is the exact function of those weights up to float64
rounding), in chunks of ``chunk_size`` inputs so memory stays bounded, and
accumulates the exact expectations under the domain's probabilities:
``E[a]``, ``E[a²]``, ``P(a > 0)``, per-class means, and the exact accuracy.
Tier: ``"exact"`` (finite enumeration).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from toylab._errors import ToylabError
from toylab.network import Network
from toylab.neurons import resolve

__all__ = ["FiniteResult", "finite_table"]


@dataclasses.dataclass(frozen=True)
class FiniteResult:
    """Exact statistics of every neuron over a finite domain.

    ``mean[key]``, ``second_moment[key]``, ``firing_probability[key]``: arrays over the
    layer's units; ``class_means[key]``: ``(num_classes, width)``, E[a | y = c];
    ``accuracy``: the exact probability that the arg-max logit is the label (ties
    count as wrong); ``table``: every layer on every input when ``keep_table`` (else
    ``None``).
    """

    mean: dict[str, np.ndarray]
    second_moment: dict[str, np.ndarray]
    firing_probability: dict[str, np.ndarray]
    class_means: dict[str, np.ndarray]
    accuracy: float
    num_inputs: int
    table: dict[str, np.ndarray] | None
    tier: str = "exact"

    def variance(self, key: str) -> np.ndarray:
        return self.second_moment[key] - self.mean[key] ** 2

    def values(self, neuron: str) -> np.ndarray:
        """One neuron's value on every input (needs ``keep_table=True``)."""
        if self.table is None:
            raise ToylabError(
                "FiniteResult.values: the table was not kept; call finite_table(..., "
                "keep_table=True)."
            )
        nid = resolve(neuron, {k: v.shape[-1] for k, v in self.table.items()})
        return self.table[nid.key][:, nid.unit]


def finite_table(
    model: Any, dist: Any, *, chunk_size: int = 65536, keep_table: bool = True
) -> FiniteResult:
    """Evaluate ``model`` on every input of ``dist``'s finite domain, exactly."""
    domain: Any = getattr(dist, "domain", None)
    if not hasattr(domain, "probs"):
        raise ToylabError(
            f"finite_table: dist must have a finite domain, got {type(dist).__name__}. "
            "Use toylab.exact.analyze for continuous distributions."
        )
    if not hasattr(model, "affine_layers"):
        raise ToylabError(
            f"finite_table: model must be an MLP (with affine_layers()), got {type(model).__name__}."
        )
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ToylabError(
            f"finite_table: chunk_size must be a positive integer, got {chunk_size!r}."
        )
    layers, acts = model.affine_layers()
    inputs = np.asarray(domain.inputs, np.float64)
    if inputs.shape[1] != layers[0][0].shape[0]:
        raise ToylabError(
            f"finite_table: the model takes {layers[0][0].shape[0]} inputs but the domain's "
            f"inputs have {inputs.shape[1]}; build the model for this distribution."
        )
    probs = np.asarray(domain.probs, np.float64)
    labels = np.asarray(domain.labels)
    num_classes = int(getattr(dist, "num_classes", 0))
    sums: dict[str, np.ndarray] = {}
    sq: dict[str, np.ndarray] = {}
    fire: dict[str, np.ndarray] = {}
    cls: dict[str, np.ndarray] = {}
    table: dict[str, list[np.ndarray]] = {}
    correct = 0.0
    for start in range(0, inputs.shape[0], chunk_size):
        sl = slice(start, start + chunk_size)
        values = Network.from_layers(layers, acts).forward(inputs[sl])
        p = probs[sl]
        for key, v in values.items():
            if key == "input":
                continue
            sums[key] = sums.get(key, 0.0) + p @ v
            sq[key] = sq.get(key, 0.0) + p @ (v * v)
            fire[key] = fire.get(key, 0.0) + p @ (v > 0)
            if num_classes:
                onehot = (labels[sl][:, None] == np.arange(num_classes)) * p[:, None]
                cls[key] = cls.get(key, 0.0) + onehot.T @ v
            if keep_table:
                table.setdefault(key, []).append(v)
        if num_classes:
            out = values["output"]
            top = np.argmax(out, -1)
            unique = (out == out.max(-1, keepdims=True)).sum(-1) == 1
            correct += float(p @ ((top == labels[sl]) & unique))
    if num_classes:
        class_mass = np.array([probs[labels == c].sum() for c in range(num_classes)])
        with np.errstate(invalid="ignore", divide="ignore"):
            cls = {k: v / class_mass[:, None] for k, v in cls.items()}
    return FiniteResult(
        mean=sums,
        second_moment=sq,
        firing_probability=fire,
        class_means=cls,
        accuracy=correct if num_classes else float("nan"),
        num_inputs=int(inputs.shape[0]),
        table={k: np.concatenate(v) for k, v in table.items()} if keep_table else None,
    )
