r"""Training from a circuit, transplanting handwritten neurons, and Fourier analysis.

* :func:`fit` -- a small full-batch (finite domains) or minibatch optax loop over a
  toylab MLP's parameters (cross-entropy), used to train from a circuit;
* :func:`train_from_circuit` -- start from a circuit's weights and measure how far
  training moves it (relative weight distance, exact functional distance, exact
  accuracy before and after);
* :func:`transplant` -- replace a trained ``hidden_0`` unit by its handwritten
  counterpart (scaled by the matched scale) with
  :func:`toylab.models.with_weights`, and measure the exact effect on accuracy;
* :func:`fourier_frequencies` -- the key-frequency analysis of modular-addition
  networks: for each hidden unit, the DFT over ``a`` of its input weights
  :math:`W[a, n]`, :math:`\hat W_n(f) = \sum_a W[a, n] e^{-2\pi i f a / p}`; the
  dominant frequency, the share of the (non-constant) power it holds, and
  the same for the ``b`` block. The closed-form construction
  (:func:`toylab.circuits.modular_addition`) has a share of exactly 1 on both blocks
  with equal frequencies.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from toylab._errors import ToylabError
from toylab.circuits.distance import DistanceResult, functional_distance
from toylab.exact.analysis import analyze
from toylab.models.edit import with_weights

__all__ = [
    "FitResult",
    "FourierResult",
    "TrainFromCircuitResult",
    "TransplantResult",
    "fit",
    "fourier_frequencies",
    "train_from_circuit",
    "transplant",
]


def _copy(model: Any) -> Any:
    graphdef, state = nnx.split(model)
    return nnx.merge(graphdef, jax.tree.map(jnp.array, state))


@dataclasses.dataclass(frozen=True, eq=False)
class FitResult:
    """``model`` after training; ``losses`` per step; ``train_accuracy``/``test_accuracy``
    on the finite split (``nan`` for continuous distributions)."""

    model: Any
    losses: np.ndarray
    train_accuracy: float
    test_accuracy: float


def fit(
    model: Any,
    dist: Any,
    *,
    key: jax.Array,
    num_steps: int = 500,
    learning_rate: float = 1e-2,
    weight_decay: float = 0.0,
    batch_size: int = 512,
    train_fraction: float = 1.0,
) -> FitResult:
    """Train a copy of ``model`` with adamw on cross-entropy, in one ``lax.scan``.

    Finite domains: full batch over a random ``train_fraction`` of all inputs (the
    rest is the test split). Continuous: a fresh batch of ``batch_size`` per step.
    """
    if not (isinstance(num_steps, int) and num_steps >= 1):
        raise ToylabError(f"fit: num_steps must be a positive integer, got {num_steps!r}.")
    if not 0 < train_fraction <= 1:
        raise ToylabError(f"fit: train_fraction must be in (0, 1], got {train_fraction!r}.")
    graphdef, params, rest = nnx.split(_copy(model), nnx.Param, ...)  # type: ignore[misc]
    tx = optax.adamw(learning_rate, weight_decay=weight_decay)
    opt_state = tx.init(params)
    k_split, k_data = jax.random.split(key)
    finite = hasattr(getattr(dist, "domain", None), "probs")
    if finite:
        x_all = jnp.asarray(dist.domain.inputs, jnp.float32)
        y_all = jnp.asarray(dist.domain.labels, jnp.int32)
        n = x_all.shape[0]
        order = np.asarray(jax.random.permutation(k_split, n))
        num_train = max(1, int(round(train_fraction * n)))
        tr, te = order[:num_train], order[num_train:]
        x_tr, y_tr = x_all[tr], y_all[tr]

    def loss_fn(p: Any, x: jax.Array, y: jax.Array) -> jax.Array:
        logits = nnx.merge(graphdef, p, rest)(x)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    def step(carry: Any, k: jax.Array) -> tuple[Any, jax.Array]:
        p, s = carry
        if finite:
            x, y = x_tr, y_tr
        else:
            batch = dist.sample(k, batch_size)
            x, y = batch.x, batch.y
        loss, g = jax.value_and_grad(loss_fn)(p, x, y)
        updates, s = tx.update(g, s, p)
        return (optax.apply_updates(p, updates), s), loss

    run = jax.jit(lambda p, s, ks: jax.lax.scan(step, (p, s), ks))
    (params, _), losses = run(params, opt_state, jax.random.split(k_data, num_steps))
    trained = nnx.merge(graphdef, params, rest)
    train_acc = test_acc = float("nan")
    if finite:
        pred = np.asarray(jnp.argmax(trained(x_all), -1))
        labels = np.asarray(y_all)
        train_acc = float(np.mean(pred[tr] == labels[tr]))
        test_acc = float(np.mean(pred[te] == labels[te])) if len(te) else float("nan")
    return FitResult(trained, np.asarray(losses), train_acc, test_acc)


def _flat(model: Any) -> np.ndarray:
    layers, _ = model.affine_layers()
    return np.concatenate([np.concatenate([w.ravel(), b]) for w, b in layers])


@dataclasses.dataclass(frozen=True, eq=False)
class TrainFromCircuitResult:
    """How far training from a circuit moved it.

    ``relative_weight_distance``: ``|θ_after - θ_circuit| / |θ_circuit|`` over all
    weights and biases; ``distance``: exact :func:`functional_distance` between the
    circuit and the trained network (outputs); ``accuracy_before``/``after``: exact
    accuracies (:func:`toylab.exact.analyze`).
    """

    model: Any
    relative_weight_distance: float
    distance: DistanceResult
    accuracy_before: float
    accuracy_after: float


def train_from_circuit(
    circuit: Any, dist: Any, *, key: jax.Array, **fit_kwargs: Any
) -> TrainFromCircuitResult:
    """Train starting from ``circuit.model``'s weights (see :func:`fit`) and measure the move."""
    res = fit(circuit.model, dist, key=key, **fit_kwargs)
    before, after = analyze(circuit.model, dist), analyze(res.model, dist)
    if before is None or after is None:
        raise ToylabError(
            "train_from_circuit: no exact analysis applies to this model and distribution "
            "(needs a piecewise-linear network on a 2-D density, or a finite domain)."
        )
    w0, w1 = _flat(circuit.model), _flat(res.model)
    return TrainFromCircuitResult(
        res.model,
        float(np.linalg.norm(w1 - w0)) / max(float(np.linalg.norm(w0)), 1e-300),
        functional_distance(circuit.model, res.model, dist),
        float(before.accuracy),
        float(after.accuracy),
    )


@dataclasses.dataclass(frozen=True, eq=False)
class TransplantResult:
    """``model``: the trained network with one unit replaced; exact accuracies before/after."""

    model: Any
    neuron: str
    accuracy_before: float
    accuracy_after: float

    @property
    def effect(self) -> float:
        return self.accuracy_after - self.accuracy_before


def transplant(
    trained: Any, circuit_model: Any, neuron: str, source: str, dist: Any, *, scale: float = 1.0
) -> TransplantResult:
    """Replace unit ``neuron`` (``"hidden_0:i"``) of ``trained`` by ``scale`` times ``source``.

    Only first-layer units can be transplanted as they are (deeper units read
    different upstream units in the two networks). The replaced unit's incoming
    weights and bias become ``scale`` times the handwritten unit's; its outgoing
    weights are kept (so ``scale`` should be the matched scale of
    :func:`toylab.circuits.match_neurons`).
    """
    for name, addr in (("neuron", neuron), ("source", source)):
        if not (isinstance(addr, str) and addr.startswith("hidden_0:")):
            raise ToylabError(
                f"transplant: {name} must be a first-layer unit like 'hidden_0:3', got {addr!r}."
            )
    i, j = int(neuron.split(":")[1]), int(source.split(":")[1])
    (wa, ba), *_ = trained.affine_layers()[0]
    (wb, bb), *_ = circuit_model.affine_layers()[0]
    wa, ba = wa.copy(), ba.copy()
    wa[:, i], ba[i] = scale * wb[:, j], scale * bb[j]
    edited = with_weights(trained, 0, wa, ba)
    before, after = analyze(trained, dist), analyze(edited, dist)
    if before is None or after is None:
        raise ToylabError("transplant: no exact analysis applies to this model and distribution.")
    return TransplantResult(edited, neuron, float(before.accuracy), float(after.accuracy))


@dataclasses.dataclass(frozen=True)
class FourierResult:
    """Per hidden unit of a modular-arithmetic network (``p`` values per operand).

    ``power_a[n, f]``/``power_b[n, f]``: DFT power of the unit's input weights over
    ``a`` (resp. ``b``) at frequency ``f = 0..(p-1)/2`` (``f`` and ``p - f`` folded);
    ``key_frequency[n]``: the dominant non-zero frequency over both blocks;
    ``share_a[n]``/``share_b[n]``: the fraction of the non-constant power at it
    (1 for a pure sinusoid, as in the closed-form construction).
    """

    power_a: np.ndarray
    power_b: np.ndarray
    key_frequency: np.ndarray
    share_a: np.ndarray
    share_b: np.ndarray

    def frequencies_used(self, min_share: float = 0.5) -> dict[int, int]:
        """Key frequency -> number of units with share ``>= min_share`` on both blocks."""
        ok = (self.share_a >= min_share) & (self.share_b >= min_share)
        vals, counts = np.unique(self.key_frequency[ok], return_counts=True)
        return {int(v): int(c) for v, c in zip(vals, counts, strict=True)}


def fourier_frequencies(model: Any, p: int) -> FourierResult:
    """The key-frequency analysis of a one-hot modular-arithmetic MLP (module docstring)."""
    w = model.affine_layers()[0][0][0]
    if w.shape[0] != 2 * p:
        raise ToylabError(
            f"fourier_frequencies: the model must read two one-hot operands of {p} values "
            f"(2p = {2 * p} inputs), got {w.shape[0]} inputs."
        )
    half = (p - 1) // 2

    def power(block: np.ndarray) -> np.ndarray:
        spec = np.abs(np.fft.fft(block, axis=0)) ** 2  # (p, n)
        folded = spec[: half + 1].copy()
        folded[1:] += spec[p - np.arange(1, half + 1)]
        return folded.T  # (n, half + 1)

    pa, pb = power(w[:p]), power(w[p:])
    key = np.argmax(pa[:, 1:] + pb[:, 1:], axis=1) + 1
    rows = np.arange(len(key))
    share_a = pa[rows, key] / np.maximum(pa[:, 1:].sum(1), 1e-300)
    share_b = pb[rows, key] / np.maximum(pb[:, 1:].sum(1), 1e-300)
    return FourierResult(pa, pb, key, share_a, share_b)
