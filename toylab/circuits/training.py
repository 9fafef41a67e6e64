r"""Training from a circuit, transplanting handwritten neurons, and Fourier analysis.

* :func:`fit` -- a small full-batch (finite domains) or minibatch optax loop over a
  toylab MLP's parameters (cross-entropy), used to train from a circuit;
* :func:`train_from_circuit` -- start from a circuit's weights and measure how far
  training moves it (relative weight distance, exact functional distance, exact
  accuracy before and after); the circuit's float64 network becomes a float32 NNX
  model (:func:`toylab.models.from_network` of its float32 rounding) because
  :func:`fit` trains in float32;
* :func:`transplant` -- replace a trained ``hidden_0`` unit by its handwritten
  counterpart (scaled by the matched scale) with
  :func:`toylab.models.with_weights`, and measure the exact effect on accuracy;
* :func:`fourier_frequencies` -- the key-frequency analysis of modular-addition
  networks: for each hidden unit, the DFT over ``a`` of its input weights
  :math:`W[a, n]`, :math:`\hat W_n(f) = \sum_a W[a, n] e^{-2\pi i f a / p}`; the
  dominant frequency, the share of the (non-constant) power it holds, and
  the same for the ``b`` block. The closed-form construction
  (:func:`toylab.circuits.modular_addition`) has a share of exactly 1 on both blocks
  with equal frequencies;
* :func:`train_modular_addition` -- Gromov's grokking setting (quadratic units, full
  batch on a fraction of the pairs, AdamW with weight decay, squared error), which
  generalises to the held-out pairs;
* :func:`key_frequency_analysis` -- per hidden unit of such a network: key frequency,
  power fraction at it, amplitudes and phases of the input and output weights, the
  phase relations, and the relative residual to the nearest unit of the closed-form
  construction's form; the key frequencies the network uses.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from toylab._errors import NotApplicable, ToylabError, fail
from toylab.circuits.distance import DistanceResult, functional_distance
from toylab.exact import accuracy
from toylab.models import from_network, with_weights
from toylab.network import as_network

__all__ = [
    "FitResult",
    "FourierResult",
    "KeyFrequencyResult",
    "TrainFromCircuitResult",
    "TransplantResult",
    "fit",
    "fourier_frequencies",
    "key_frequency_analysis",
    "train_from_circuit",
    "train_modular_addition",
    "transplant",
]


def _copy(model: Any) -> Any:
    graphdef, state = nnx.split(model)
    return nnx.merge(graphdef, jax.tree.map(jnp.array, state))


@dataclasses.dataclass(frozen=True, eq=False)
class FitResult:
    """``model`` after training; ``losses`` per step; ``train_accuracy``/``test_accuracy``
    on the finite split (``nan`` for continuous distributions); ``train_mask``: for
    finite domains, a boolean array over ``dist.domain.inputs`` marking the training
    inputs (``None`` for continuous distributions)."""

    model: Any
    losses: np.ndarray
    train_accuracy: float
    test_accuracy: float
    train_mask: np.ndarray | None = None


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
    loss: str = "cross_entropy",
) -> FitResult:
    """Train a copy of ``model`` with AdamW: a one-member :mod:`toylab.train` ensemble.

    The step is :func:`toylab.train.make_step` (the same core as :func:`toylab.train.train`),
    scanned ``num_steps`` times in one program. Finite domains: full batch over a random
    ``train_fraction`` of all inputs (the rest is the test split; ``data="full"``).
    Continuous: a fresh batch of ``batch_size`` per step (``data="fresh"``); step ``t``
    draws from ``fold_in(key, t)``. ``loss``: ``"cross_entropy"`` or ``"mse"``, the
    squared error to the one-hot label **averaged** over the classes and the batch (the
    one meaning of ``"mse"`` in toylab, see :mod:`toylab.train.core`). Gromov (2023)
    sums over the classes instead; that multiplies the loss and its gradient by the
    number of classes, which AdamW's normalised update ignores up to its epsilon.
    """
    from toylab.train import TrainConfig, ensemble_from_params, run_steps

    if loss not in ("cross_entropy", "mse"):
        raise ToylabError(f"fit: loss must be 'cross_entropy' or 'mse', got {loss!r}.")
    if not (isinstance(num_steps, int) and num_steps >= 1):
        raise ToylabError(f"fit: num_steps must be a positive integer, got {num_steps!r}.")
    if not 0 < train_fraction <= 1:
        raise ToylabError(f"fit: train_fraction must be in (0, 1], got {train_fraction!r}.")
    finite = getattr(dist, "kind", None) == "finite"
    config = TrainConfig(
        optimizer="adamw",
        learning_rate=learning_rate,
        weight_decay=weight_decay,
        num_steps=num_steps,
        batch_size=batch_size,
        loss=loss,
        data="full" if finite else "fresh",
        train_fraction=train_fraction,
        log_every=num_steps,
        checkpoints=[],
        num_eval_samples=1,
    )
    graphdef, params = nnx.split(_copy(model), nnx.Param)
    stacked = jax.tree.map(lambda a: a[None], params)
    ensemble, state = ensemble_from_params(graphdef, stacked, dist, config, key[None])
    state, losses = run_steps(ensemble, state, num_steps)
    trained = ensemble.model(state.params, 0)
    train_acc = test_acc = float("nan")
    mask = None
    if finite:
        mask = np.asarray(ensemble.train_data[0])
        pred = np.asarray(jnp.argmax(trained(ensemble.eval_x), -1))
        correct = pred == np.asarray(ensemble.eval_y)
        train_acc = float(np.mean(correct[mask]))
        test_acc = float(np.mean(correct[~mask])) if (~mask).any() else float("nan")
    return FitResult(trained, np.asarray(losses[:, 0]), train_acc, test_acc, mask)


def _flat(model: Any) -> np.ndarray:
    layers = as_network(model, "train_from_circuit").dense_layers(np.float64)
    return np.concatenate([np.concatenate([w.ravel(), b]) for w, b in layers])


def _accuracy(model: Any, dist: Any, where: str) -> float:
    try:
        return float(accuracy(model, dist).accuracy)
    except NotApplicable as err:
        raise NotApplicable(f"{where}: no exact accuracy for this model ({err})") from None


@dataclasses.dataclass(frozen=True, eq=False)
class TrainFromCircuitResult:
    """How far training from a circuit moved it.

    ``relative_weight_distance``: ``|θ_after - θ_circuit| / |θ_circuit|`` over all
    weights and biases; ``distance``: exact :func:`functional_distance` between the
    circuit and the trained network (outputs); ``accuracy_before``/``after``: exact
    accuracies (:func:`toylab.exact.accuracy`). Everything is measured against the
    circuit's float64 network; ``model`` is the trained float32 NNX model.
    """

    model: Any
    relative_weight_distance: float
    distance: DistanceResult
    accuracy_before: float
    accuracy_after: float


def train_from_circuit(
    circuit: Any, dist: Any, *, key: jax.Array, **fit_kwargs: Any
) -> TrainFromCircuitResult:
    """Train starting from ``circuit.model``'s weights (see :func:`fit`) and measure the move.

    ``circuit`` is a :class:`~toylab.circuits.Circuit` (or a network or model). Training
    runs on the float32 rounding of its weights (:func:`fit` trains float32 models).
    """
    where = "train_from_circuit"
    net = as_network(getattr(circuit, "model", circuit), where)
    start = from_network(net.untied().numpy(np.float32))
    res = fit(start, dist, key=key, **fit_kwargs)
    before, after = _accuracy(net, dist, where), _accuracy(res.model, dist, where)
    w0, w1 = _flat(net), _flat(res.model)
    return TrainFromCircuitResult(
        res.model,
        float(np.linalg.norm(w1 - w0)) / max(float(np.linalg.norm(w0)), 1e-300),
        functional_distance(net, res.model, dist),
        before,
        after,
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
    :func:`toylab.circuits.match_neurons`). ``trained`` and ``circuit_model`` are
    networks or toylab models; the edit keeps ``trained``'s kind and dtype.
    """
    where = "transplant"
    net_t, net_c = as_network(trained, where), as_network(circuit_model, where)
    ids = []
    for name, addr, net in (("neuron", neuron, net_t), ("source", source, net_c)):
        nid = net.resolve(addr) if isinstance(addr, str) else None
        if nid is None or nid.key != "hidden_0":
            raise fail(where, name, addr, "a first-layer unit like 'hidden_0:3'")
        ids.append(nid.unit)
    i, j = ids
    if net_t.input_dim != net_c.input_dim:
        raise fail(where, "circuit_model", repr(net_c), f"a network with {net_t.input_dim} inputs")
    wa, ba = net_t.dense_layers(np.float64)[0]
    wb, bb = net_c.dense_layers(np.float64)[0]
    wa[:, i], ba[i] = scale * wb[:, j], scale * bb[j]
    edited = with_weights(trained, 0, wa, ba)
    before, after = _accuracy(trained, dist, where), _accuracy(edited, dist, where)
    return TransplantResult(edited, str(neuron), before, after)


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
    w = as_network(model, "fourier_frequencies").dense_layers(np.float64)[0][0]
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


def train_modular_addition(
    p: int,
    *,
    key: jax.Array,
    hidden: int = 96,
    num_steps: int = 1500,
    learning_rate: float = 1e-2,
    weight_decay: float = 1.0,
    train_fraction: float = 0.5,
    loss: str = "mse",
    init_scale: float = 1.0,
) -> FitResult:
    """Train a quadratic one-hot MLP on ``(a + b) mod p`` from a fraction of all pairs.

    The setting of Gromov, *Grokking modular arithmetic* (2023): concatenated one-hot
    operands, one hidden layer of ``hidden`` quadratic units, full batch on a random
    ``train_fraction`` of the :math:`p^2` pairs, AdamW with weight decay, squared
    error to the one-hot label. The defaults generalise: 100% on the held-out pairs
    for ``p`` = 23 (``train_fraction=0.5``) and ``p`` = 17 (0.6) for seeds 0-5, and
    ``p`` = 13 (0.6) for 5 of 6 seeds (98.5% for the other), in 1-3 s each on a 2-core
    CPU after compilation. Too few pairs do not: ``p`` = 11 with 0.6 (73 pairs) reaches
    only 17-85%. With ``loss="cross_entropy"`` and the same budget the network
    memorises the training pairs instead (100% train, 6-15% held-out for ``p`` = 23).
    ``init_scale`` multiplies the default initial weights and biases.
    """
    from toylab.distributions import ModularArithmetic
    from toylab.models import ModelConfig, build_model

    if not (isinstance(hidden, int) and hidden >= 1):
        raise ToylabError(f"train_modular_addition: hidden must be a positive int, got {hidden!r}.")
    if not (isinstance(init_scale, int | float) and np.isfinite(init_scale) and init_scale > 0):
        raise ToylabError(
            f"train_modular_addition: init_scale must be a positive number, got {init_scale!r}."
        )
    dist = ModularArithmetic(p, "add")
    k_init, k_fit = jax.random.split(key)
    model = build_model(
        ModelConfig(kind="onehot_mlp", hidden=(hidden,), activation="quadratic"), dist, k_init
    )
    if init_scale != 1.0:
        graphdef, state = nnx.split(model)
        model = nnx.merge(graphdef, jax.tree.map(lambda v: v * init_scale, state))
    return fit(
        model,
        dist,
        key=k_fit,
        num_steps=num_steps,
        learning_rate=learning_rate,
        weight_decay=weight_decay,
        train_fraction=train_fraction,
        loss=loss,
    )


def _wrap(angle: np.ndarray) -> np.ndarray:
    """Angles to ``(-pi, pi]``."""
    return np.asarray(np.pi - np.mod(np.pi - angle, 2 * np.pi))


@dataclasses.dataclass(frozen=True, eq=False)
class KeyFrequencyResult:
    r"""Per hidden unit of a quadratic modular-addition MLP: its key frequency and how
    close it is to a unit of the closed-form construction (see
    :func:`key_frequency_analysis`).

    Arrays are over the ``n`` hidden units:

    * ``frequency``: the dominant non-zero frequency ``f`` in ``1..(p-1)/2`` of the
      input weights (power of both operand blocks added; ``f`` and ``p - f`` folded);
    * ``power_fraction``: the share of the non-constant input power (both blocks
      together) at ``frequency``; ``share_a``/``share_b``: the same per block;
      ``share_out``: the same for the output weights;
    * ``amplitude_a``, ``phase_a`` (and ``_b``, ``_out``): the sinusoid
      :math:`\alpha\cos(2\pi f a/p + \varphi_a)` at ``frequency`` fitted (least squares,
      i.e. the DFT coefficient) to the block;
    * ``phase_difference``: :math:`\varphi_b - \varphi_a` wrapped to ``(-pi, pi]``
      (0 or ``pi`` in :func:`toylab.circuits.modular_addition`; free in Gromov's
      general solution);
    * ``phase_sum_error``: :math:`\psi_{out} - (\varphi_a + \varphi_b)` wrapped: 0 when
      the unit's output reads the :math:`\cos(\theta(a + b) + \varphi_a + \varphi_b)`
      term with the right sign;
    * ``residual``: relative distance in ``[0, 1]`` to the nearest construction-form
      unit (0 for every unit of the construction);
    * ``weight``: the unit's size :math:`\lVert w_{in}\rVert^2 \lVert w_{out}\rVert`
      (invariant under the rescaling :math:`w_{in} \to s w_{in}`,
      :math:`w_{out} \to w_{out}/s^2`), to tell live units from ones weight decay
      switched off; ``active``: ``weight >= active_tol * max(weight)``;
    * ``key_frequencies``: frequency -> number of active units using it;
    * ``idealized``: a copy of the model with every hidden unit replaced by its
      fitted construction-form unit (output bias kept). A diagnostic, not a
      guarantee: for grokked ``p`` = 23 networks (seeds 0-4) its exact accuracy was
      0.91-1.0 while the trained networks scored 1.0, i.e. the off-form remainder
      (residual about 0.1 per unit) still carries part of the margin.
    """

    p: int
    frequency: np.ndarray
    power_fraction: np.ndarray
    share_a: np.ndarray
    share_b: np.ndarray
    share_out: np.ndarray
    amplitude_a: np.ndarray
    amplitude_b: np.ndarray
    amplitude_out: np.ndarray
    phase_a: np.ndarray
    phase_b: np.ndarray
    phase_out: np.ndarray
    phase_difference: np.ndarray
    phase_sum_error: np.ndarray
    residual: np.ndarray
    weight: np.ndarray
    active: np.ndarray
    key_frequencies: dict[int, int]
    idealized: Any


def key_frequency_analysis(model: Any, p: int, *, active_tol: float = 0.05) -> KeyFrequencyResult:
    r"""The key-frequency analysis of a one-hidden-layer quadratic modular-addition MLP.

    Unit ``n`` reads :math:`h_n = (W_a[a] + W_b[b] + c)^2` and writes
    :math:`h_n W_{out}[n, :]` to the logits. Every unit of the closed-form construction
    (:func:`toylab.circuits.modular_addition`) has the form

    .. math::

        W_a[a] = \alpha\cos(\theta a + \varphi_a),\quad
        W_b[b] = \beta\cos(\theta b + \varphi_b),\quad c = 0,\quad
        W_{out}[c'] = \gamma\cos(\theta c' + \varphi_a + \varphi_b),\quad \gamma \ge 0,

    with :math:`\theta = 2\pi f/p`: the cross term
    :math:`2\alpha\beta\cos(\theta a + \varphi_a)\cos(\theta b + \varphi_b)` of the square
    holds :math:`\alpha\beta\cos(\theta(a+b) + \varphi_a + \varphi_b)`, which the output
    weights turn into :math:`\propto\cos(\theta(a + b - c'))` (the construction takes
    :math:`\alpha = \beta`, :math:`\varphi_b \in \{\varphi_a, \varphi_a + \pi\}`; Gromov's
    trained networks have free amplitudes and phases, which this form allows).

    Gauge: one operand is active per block, so adding a constant to :math:`W_a` and
    subtracting it from :math:`c` changes nothing; the block means are therefore moved
    into the effective bias :math:`c_{eff} = c + \bar W_a + \bar W_b` (0 in the
    construction). A constant added to a unit's output weights shifts every logit
    equally (no change to the arg-max or the cross-entropy), so the output weights are
    centred too.

    Fit per unit (closed form): ``frequency`` maximises the input power; the DFT
    coefficient at it gives :math:`\alpha, \varphi_a, \beta, \varphi_b` (the least-squares
    sinusoid), and :math:`\gamma = \max(0, \langle W_{out}, \cos(\theta c' + \varphi_a +
    \varphi_b)\rangle / \lVert\cos\rVert^2)`. With ``in = (W_a - \bar W_a, W_b - \bar W_b,
    c_{eff})`` and ``out = W_out - \bar W_{out}``,

    .. math::

        \mathrm{residual} = \sqrt{\tfrac12\left(
            \frac{\lVert in - \widehat{in}\rVert^2}{\lVert in\rVert^2}
          + \frac{\lVert out - \widehat{out}\rVert^2}{\lVert out\rVert^2}\right)},

    invariant under rescaling a unit and 0 exactly for construction-form units; a unit
    with random weights scores about 0.9 (most of its power lies off the best
    frequency, and its output phase is unrelated to its input phases).
    """
    net = as_network(model, "key_frequency_analysis")
    layers, acts = net.dense_layers(np.float64), list(net.activations)
    if acts != ["quadratic", "identity"]:
        raise ToylabError(
            "key_frequency_analysis: the model must have one hidden layer of quadratic units "
            f"and an affine output, got activations {acts}."
        )
    (w0, b0), (w1, b1) = layers
    if w0.shape[0] != 2 * p or w1.shape[1] != p:
        raise ToylabError(
            f"key_frequency_analysis: the model must read two one-hot operands of {p} values "
            f"(2p = {2 * p} inputs) and write {p} logits, got {w0.shape[0]} inputs and "
            f"{w1.shape[1]} outputs."
        )
    if not (isinstance(active_tol, int | float) and 0 <= active_tol <= 1):
        raise ToylabError(
            f"key_frequency_analysis: active_tol must be in [0, 1], got {active_tol!r}."
        )
    fr = fourier_frequencies(model, p)
    f = fr.key_frequency
    n = len(f)
    rows = np.arange(n)
    theta = 2 * np.pi * f / p  # (n,)
    grid = np.arange(p)
    wa, wb, wo = w0[:p], w0[p:], w1.T  # (p, n) each
    ma, mb, mo = wa.mean(0), wb.mean(0), wo.mean(0)
    ca, cb, co = wa - ma, wb - mb, wo - mo
    c_eff = b0 + ma + mb

    def coef(block: np.ndarray) -> np.ndarray:
        return np.asarray(np.fft.fft(block, axis=0)[f, rows])  # (n,) complex

    za, zb, zo = coef(wa), coef(wb), coef(wo)
    amp_a, amp_b, amp_o = 2 * np.abs(za) / p, 2 * np.abs(zb) / p, 2 * np.abs(zo) / p
    ph_a, ph_b, ph_o = np.angle(za), np.angle(zb), np.angle(zo)
    wave = np.cos(np.outer(grid, theta) + ph_a + ph_b)  # (p, n): cos(theta c + phi_a + phi_b)
    gamma = np.maximum(0.0, (co * wave).sum(0) / (wave * wave).sum(0))
    fit_a = amp_a * np.cos(np.outer(grid, theta) + ph_a)
    fit_b = amp_b * np.cos(np.outer(grid, theta) + ph_b)
    fit_o = gamma * wave
    tiny = 1e-300
    in_norm = (ca**2).sum(0) + (cb**2).sum(0) + c_eff**2
    in_res = ((ca - fit_a) ** 2).sum(0) + ((cb - fit_b) ** 2).sum(0) + c_eff**2
    out_norm = (co**2).sum(0)
    out_res = ((co - fit_o) ** 2).sum(0)
    residual = np.sqrt(
        0.5 * (in_res / np.maximum(in_norm, tiny) + out_res / np.maximum(out_norm, tiny))
    )
    po = np.abs(np.fft.fft(co, axis=0)) ** 2
    share_out = (po[f, rows] + po[p - f, rows]) / np.maximum(po.sum(0), tiny)
    pa, pb = fr.power_a[rows, f], fr.power_b[rows, f]
    power_fraction = (pa + pb) / np.maximum(
        fr.power_a[:, 1:].sum(1) + fr.power_b[:, 1:].sum(1), tiny
    )
    weight = in_norm * np.sqrt(out_norm)
    active = weight >= active_tol * max(float(weight.max()), tiny)
    vals, counts = np.unique(f[active], return_counts=True)
    ideal_w0 = np.concatenate([fit_a, fit_b], axis=0)
    ideal = with_weights(model, 0, ideal_w0, np.zeros_like(b0))
    ideal = with_weights(ideal, 1, fit_o.T, b1)
    return KeyFrequencyResult(
        p=p,
        frequency=f,
        power_fraction=power_fraction,
        share_a=fr.share_a,
        share_b=fr.share_b,
        share_out=share_out,
        amplitude_a=amp_a,
        amplitude_b=amp_b,
        amplitude_out=amp_o,
        phase_a=ph_a,
        phase_b=ph_b,
        phase_out=ph_o,
        phase_difference=_wrap(ph_b - ph_a),
        phase_sum_error=_wrap(ph_o - ph_a - ph_b),
        residual=residual,
        weight=weight,
        active=active,
        key_frequencies={int(v): int(c) for v, c in zip(vals, counts, strict=True)},
        idealized=ideal,
    )
