r"""Grokking progress measures along a run's checkpoints, exactly by enumeration.

The progress measures of Nanda et al., *Progress measures for grokking via mechanistic
interpretability* (ICLR 2023), adapted to toylab's MLPs on
:class:`~toylab.distributions.ModularArithmetic` with ``op="add"``.

**Input encoding.** A pair ``(a, b)`` enters the network as ``onehot_p(a) ⊕ onehot_p(b)``
(dimension ``2p``; ``model.kind`` ``"mlp"`` or ``"onehot_mlp"``), so the first layer's
weight matrix ``W`` (``2p × n``) is two embeddings: row ``a`` of ``W[:p]`` is the
embedding of ``a``, row ``b`` of ``W[p:]`` that of ``b``, and unit ``n``'s pre-activation
is ``W[a, n] + W[p + b, n] + c_n``. The Fourier basis is that of functions on
:math:`\mathbb{Z}_p`: ``1``, :math:`\cos(\omega_f x)`, :math:`\sin(\omega_f x)` with
:math:`\omega_f = 2\pi f/p`, ``f = 1..(p-1)/2`` (``f`` and ``p - f`` are one real
frequency), applied to an embedding column over ``x = a`` (resp. ``b``), and, for a
function of the pair, over :math:`\mathbb{Z}_p^2`.

Every measure is a float64 computation over all :math:`p^2` pairs (the forward pass of
:func:`toylab.exact.finite_table`), so everything is tier ``exact``; ``error`` is a
rounding budget (below). With ``L[a, b, :]`` the logits, ``y = (a + b) mod p``, ``T`` the
member's training pairs (its ``train.train_fraction`` mask, ``data = "full"``) and ``ℓ``
the run's loss (``train.loss``: ``"cross_entropy"`` :math:`\operatorname{lse}(L) - L_y`,
or ``"mse"``, the squared error to the one-hot label averaged over the ``p`` classes,
the meanings of :mod:`toylab.train.core`):

* ``train_loss``/``test_loss``: the mean of ``ℓ`` over ``T`` / over the other pairs;
  ``train_accuracy``/``test_accuracy``: the fraction whose arg-max logit is ``y`` (a tie
  counts as wrong, :func:`toylab.exact.correct_predictions`).
* **Key frequencies** ``K`` (one set per member, from its *final* checkpoint, as in the
  paper). The embedding power at ``f`` is
  :math:`E(f) = \sum_n |\hat W_a(f)|^2 + |\hat W_b(f)|^2` (both signs ``±f`` folded;
  :func:`toylab.circuits.fourier_frequencies`' ``power_a + power_b`` summed over the
  units); ``K`` holds the frequencies with :math:`E(f) \ge` ``key_ratio`` (default 0.5)
  times the mean :math:`\frac{2}{p-1}\sum_{f\ge1} E(f)`. A transformer's handful of key
  frequencies (the paper's 5 of 56) stand far above the mean and the rest far below; an
  MLP that spreads its units over every frequency (Gromov's solution, what the MLPs of
  ``examples/grokking.toml`` learn: each frequency holds 8-10% of the power) has every
  frequency key, and then the restricted logits are the part of the logits that depends
  on ``a + b`` only, the excluded logits the rest. ``key_frequencies=`` overrides it.
* **Restricted loss.** For each logit ``c`` write :math:`L_c(a, b)` in the Fourier basis
  of :math:`\mathbb{Z}_p^2`; the directions :math:`\cos(\omega_f(a+b))`,
  :math:`\sin(\omega_f(a+b))` are the ones the algorithm uses
  (:math:`\cos(\omega_f(a+b-c))` expands into them). :math:`P_K L_c` is the orthogonal
  projection of :math:`L_c` onto the span of ``1`` and these directions for
  :math:`f \in K` (``1`` keeps each logit's mean; the mean alone carries no information
  about ``(a, b)``). Since those directions depend on ``s = a + b`` only, the projection
  is: average :math:`L_c` over the ``p`` pairs with ``a + b ≡ s`` (giving
  :math:`g_c(s)`), keep the DFT bins ``0``, ``±f`` (:math:`f\in K`) of :math:`g_c`, and
  evaluate at ``s = a + b``. ``restricted_loss`` is the mean of ``ℓ(P_K L)`` over all
  pairs; ``restricted_test_loss`` over the test pairs.
* **Excluded loss**: the mean of ``ℓ(L - (P_K L - \bar L))`` over the training pairs:
  the key directions removed (each logit's mean kept). A network that memorised its
  training pairs keeps a low excluded loss; one whose training accuracy rests on the key
  frequencies loses it.
* **Fourier sparsity.** ``embedding_key_fraction``: :math:`\sum_{f\in K}E(f) /
  \sum_{f\ge1}E(f)` at each checkpoint (with the final ``K``);
  ``embedding_top_fraction``: the same for the checkpoint's own ``|K|`` largest
  frequencies; ``embedding_unit_fraction``: the fraction of the embedding power at each
  unit's own dominant frequency, :math:`\sum_n \max_f P_n(f) / \sum_n\sum_{f\ge1}
  P_n(f)` with :math:`P_n(f)` unit ``n``'s share of ``E(f)`` (1 when every unit reads
  one frequency, whichever it is; 0.22 for the initial weights at ``p = 23``).
  ``neuron_fraction[layer]``: each unit of a hidden layer is a function :math:`h(a, b)`
  on :math:`\mathbb{Z}_p^2`; its one-frequency share at ``f`` is the
  fraction of its variance (the 2-D DFT power off the ``(0, 0)`` bin) in the bins
  :math:`(u, v)` with :math:`u, v \in \{0, \pm f, \pm 2f\}` (the frequency and its second
  harmonic, which a quadratic unit's square produces: :math:`\cos^2 = (1 +
  \cos 2\theta)/2`); a unit is *explained by one frequency* when its best share is at
  least ``neuron_threshold`` (0.85). ``neuron_fraction`` is the fraction of the layer's
  *live* units that are explained, live meaning a variance of at least ``live_tol``
  (0.01) times the layer's largest (``nan`` when no unit varies). Weight decay leaves
  many units near zero, with spectra of noise: in the grokked networks of
  ``examples/grokking.toml`` about 53 of 96 units hold 20-100% of the largest variance,
  every one explained (share ≥ 0.97), and the rest hold below 0.2% with shares
  0.2-0.7.
* **Weight norm**: ``weight_norm`` is :math:`\sum_k \lVert W_k\rVert_F^2 +
  \lVert b_k\rVert^2` over all layers (the paper's sum of squared weights);
  ``layer_weight_norm[..., k]`` per layer.

**Phases** (:func:`locate_phases`, per member, on the checkpoint grid; the published
picture is memorisation → circuit formation → cleanup):

* ``t_mem``: the first checkpoint with train accuracy ``≥ train_threshold`` (0.99);
* ``t_grok``: the first checkpoint with test accuracy ``≥ test_threshold`` (0.95);
* ``t_clean``: the last checkpoint before ``t_grok`` with test accuracy ``≤ test_low``
  (0.5; the test-accuracy jump's midpoint, where test loss falls fastest); without
  ``t_grok``, the last checkpoint;
* ``t_circ``: the checkpoint in ``[t_mem, t_clean]`` where the excluded loss is smallest
  (the memorising solution at its strongest: from there on the training accuracy rests
  more and more on the key frequencies, so removing them hurts more);
* memorisation ``[first, t_circ]`` if test accuracy at ``t_mem`` is ``≤ test_low``
  (otherwise the member generalised while fitting: no memorisation and no circuit
  formation phase); circuit formation ``[t_circ, t_clean]`` (if ``t_circ < t_clean``);
  cleanup ``[t_clean, t_grok]``. Phases that do not happen are ``None`` (a member that
  never reaches ``test_threshold`` has a circuit formation phase open to the last
  checkpoint and no cleanup).

:class:`Phases` also reports how each measure moved across each phase (``trends``), so
the order the paper describes can be checked: during circuit formation restricted loss
falls and excluded loss rises while test accuracy is still low; during cleanup the weight
norm and the test loss fall.

**Measured** (``examples/grokking.toml``: ``p = 23``, 96 quadratic units, squared error,
AdamW with weight decay 1, half the pairs; seeds 0 and 1, identical phase steps): train
accuracy ``≥ 0.99`` at step 27 / 22; every frequency is key (each holds 8-10% of the
embedding power). Memorisation ``[0, 112]``: train loss 0.048 → 0.001, test loss rises
0.048 → 0.094, excluded loss falls to its minimum 0.016. Circuit formation ``[112, 385]``:
restricted loss 0.013 → 0.008 and excluded loss 0.016 → 0.020 while test accuracy is
still 0.05 → 0.33. Cleanup ``[385, 713]``: test accuracy 0.33 → 0.99, test loss 0.058 →
0.017, weight norm 347 → 327 (seed 0; its peak, 350, is at step 255). After: restricted
loss → 0.0000, excluded loss → 0.041 (constant logits score 1/23 = 0.043), the per-unit
embedding sparsity 0.22 → 0.99 and 0.55-0.90 of the live units one-frequency. The
published order holds for both seeds (:attr:`Phases.published_order`).

**Rounding budget** (``error``): the forward pass and the sums are float64; the logits'
absolute rounding is bounded by :func:`toylab.exact.finite_table`'s ``error`` (``E_L``).
The projection keeps at most ``p`` Fourier modes of a length-``p`` average, so it
amplifies a max-norm perturbation at most ``p``-fold, and the excluded logits add the
logits and their mean: every logit array used is off by at most ``δ = (p + 2) E_L``.
Cross-entropy is 2-Lipschitz in the max-norm of the logits; the mean squared error
moves by at most ``2 (M + 1) δ + δ²`` (``M``: the largest absolute logit of the three
arrays). ``error`` is ``2 (M + 1) δ + δ² + 64 p² ε max(1, max ℓ)`` (the last term for
the sums, the DFTs and the Fourier fractions), maximised over checkpoints and members: a
generous budget, not a tight bound. Accuracies are counts, exact unless a logit gap is
below ``E_L``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.special import logsumexp

from toylab._errors import NotApplicable, fail
from toylab._validate import check_float
from toylab.circuits.training import fourier_frequencies
from toylab.exact import correct_predictions, finite_table
from toylab.network import as_network
from toylab.tiers import Tier

__all__ = [
    "GrokkingResult",
    "Phases",
    "key_frequencies_of",
    "locate_phases",
    "logit_measures",
    "neuron_fractions",
    "progress_measures",
    "restrict_logits",
]

_EPS = float(np.finfo(np.float64).eps)
#: the measures whose motion :class:`Phases` reports per phase
TREND_KEYS = (
    "train_loss",
    "test_loss",
    "test_accuracy",
    "restricted_loss",
    "excluded_loss",
    "weight_norm",
    "embedding_key_fraction",
    "embedding_unit_fraction",
)


# ------------------------------------------------------------------ measures of one network


def _loss(logits: np.ndarray, labels: np.ndarray, loss: str) -> np.ndarray:
    """Per-pair loss (``toylab.train.core`` meanings, in float64)."""
    if loss == "cross_entropy":
        return np.asarray(logsumexp(logits, axis=-1) - logits[np.arange(len(labels)), labels])
    onehot = labels[:, None] == np.arange(logits.shape[-1])
    return np.asarray(np.mean((logits - onehot) ** 2, axis=-1))


def restrict_logits(logits: np.ndarray, p: int, frequencies: Sequence[int]) -> np.ndarray:
    r""":math:`P_K L`: the logits' projection onto ``1`` and :math:`\cos/\sin(\omega_f(a+b))`.

    ``logits``: ``(p*p, C)`` in the domain order ``a * p + b``. Returns the projection,
    same shape (module docstring). The excluded logits are
    ``logits - (restrict_logits(...) - logits.mean(0))``.
    """
    grid = np.asarray(logits, np.float64).reshape(p, p, -1)
    a, b = np.divmod(np.arange(p * p), p)
    s = (a + b) % p
    g = np.zeros((p, grid.shape[-1]))
    np.add.at(g, s, grid.reshape(p * p, -1))
    g /= p  # g_c(s): the mean over the p pairs with a + b = s
    spec = np.fft.fft(g, axis=0)
    keep = np.zeros(p, bool)
    keep[0] = True
    for f in frequencies:
        keep[f % p] = keep[(-f) % p] = True
    proj = np.real(np.fft.ifft(np.where(keep[:, None], spec, 0), axis=0))
    return np.asarray(proj[s])


def _unit_power(net: Any, p: int) -> np.ndarray:
    """``P_n(f)``, ``(units, (p-1)/2)`` for ``f = 1..(p-1)/2``: both operand blocks' DFT
    power of each unit's first-layer weights (:func:`fourier_frequencies`)."""
    fr = fourier_frequencies(net, p)
    return np.asarray(fr.power_a + fr.power_b)[:, 1:]


def key_frequencies_of(model: Any, p: int, *, key_ratio: float = 0.5) -> tuple[int, ...]:
    """The key frequencies of a modular-addition MLP: those whose embedding power is at
    least ``key_ratio`` times the mean over the non-zero frequencies (module docstring).
    Sorted ascending."""
    check_float("key_frequencies_of", "key_ratio", key_ratio, positive=True)
    e = _unit_power(as_network(model, "key_frequencies_of"), p).sum(0)
    if not float(e.sum()) > 0:
        raise NotApplicable(
            "key_frequencies_of: the first layer's weights are constant over the operands "
            "(no non-constant Fourier power); there are no key frequencies."
        )
    keys = tuple(int(f) + 1 for f in np.flatnonzero(e >= key_ratio * e.mean()))
    if not keys:  # pragma: no cover - the largest power is at least the mean
        raise NotApplicable(f"key_frequencies_of: no frequency reaches key_ratio = {key_ratio}.")
    return keys


def neuron_fractions(
    table: dict[str, np.ndarray], p: int, *, threshold: float = 0.85, live_tol: float = 0.01
) -> dict[str, tuple[float, np.ndarray, np.ndarray]]:
    """Per hidden layer of an exhaustive table (``{"hidden_k": (p*p, n)}``): the fraction
    of live units explained by one frequency, each unit's best one-frequency share and its
    frequency (module docstring). Units of zero variance have share ``nan``."""
    half = (p - 1) // 2
    out = {}
    for key, values in table.items():
        if not key.startswith("hidden_") or key.endswith(".pre"):
            continue
        h = np.asarray(values, np.float64).reshape(p, p, -1)
        power = np.abs(np.fft.fft2(h - h.mean((0, 1)), axes=(0, 1))) ** 2
        total = power.sum((0, 1))
        shares = np.zeros((half, h.shape[-1]))
        for f in range(1, half + 1):
            idx = np.unique(np.array([0, f, -f, 2 * f, -2 * f]) % p)
            shares[f - 1] = power[np.ix_(idx, idx)].sum((0, 1))
        varies = total > 0
        live = varies & (total >= live_tol * total.max(initial=0.0))
        share = np.where(varies, shares.max(0) / np.where(varies, total, 1.0), np.nan)
        best = np.argmax(shares, 0) + 1
        frac = float(np.mean(share[live] >= threshold)) if live.any() else float("nan")
        out[key] = (frac, share, best)
    return out


def logit_measures(
    model: Any,
    p: int,
    train_mask: np.ndarray,
    frequencies: Sequence[int],
    *,
    loss: str = "cross_entropy",
    neuron_threshold: float = 0.85,
) -> dict[str, Any]:
    """Every progress measure of one network (module docstring), as plain floats, plus
    ``"logit_error"`` (the forward pass's rounding bound) and ``"max_logit"``."""
    from toylab.distributions import ModularArithmetic

    dist = ModularArithmetic(p, "add")
    net = as_network(model, "progress_measures")
    res = finite_table(net, dist)
    logits = np.asarray(res.table["output"], np.float64)
    labels = np.asarray(dist.domain.labels)
    mask = np.asarray(train_mask, bool)
    test = ~mask
    per = _loss(logits, labels, loss)
    correct = correct_predictions(logits, labels)
    restricted = restrict_logits(logits, p, frequencies)
    excluded = logits - (restricted - logits.mean(0))
    per_r = _loss(restricted, labels, loss)
    per_x = _loss(excluded, labels, loss)
    units = _unit_power(net, p)
    e = units.sum(0)
    tot = max(float(e.sum()), 1e-300)
    k = len(frequencies)
    layers = net.dense_layers(np.float64)
    norms = np.array([float((w**2).sum() + (b**2).sum()) for w, b in layers])
    fracs = neuron_fractions(res.table, p, threshold=neuron_threshold)

    def mean(v: np.ndarray, m: np.ndarray) -> float:
        return float(v[m].mean()) if m.any() else float("nan")

    return {
        "train_loss": mean(per, mask),
        "test_loss": mean(per, test),
        "train_accuracy": mean(correct, mask),
        "test_accuracy": mean(correct, test),
        "restricted_loss": float(per_r.mean()),
        "restricted_test_loss": mean(per_r, test),
        "excluded_loss": mean(per_x, mask),
        "embedding_key_fraction": float(sum(e[f - 1] for f in frequencies)) / tot,
        "embedding_top_fraction": float(np.sort(e)[::-1][:k].sum()) / tot,
        "embedding_unit_fraction": float(units.max(1).sum()) / tot,
        "neuron_fraction": {key: v[0] for key, v in fracs.items()},
        "weight_norm": float(norms.sum()),
        "layer_weight_norm": norms,
        "logit_error": float(res.error),
        "max_logit": float(max(np.abs(a).max() for a in (logits, restricted, excluded))),
        "max_loss": float(max(per.max(), per_r.max(), per_x.max())),
    }


# --------------------------------------------------------------------------- phases


@dataclasses.dataclass(frozen=True, eq=False)
class Phases:
    """The grokking phases of one member, as ``(start_step, end_step)`` checkpoint
    intervals (``None``: the phase did not happen), located by the rule of the module
    docstring.

    ``memorisation_end`` (``t_mem``: train accuracy reached), ``circuit_start``
    (``t_circ``), ``cleanup_start`` (``t_clean``) and ``grok_step`` (``t_grok``) are the
    checkpoints the rule found (``None`` if never). ``trends[phase]
    [measure]``: the measure's change from the phase's first to its last checkpoint
    (``TREND_KEYS``). ``published_order``: memorisation, circuit formation and cleanup
    all happened in this order -- in particular the excluded loss turned up (``t_circ``)
    before the test accuracy jumped (``t_clean``) -- and during circuit formation the
    restricted loss fell, and during cleanup the test loss and the weight norm fell.
    (That the excluded loss rises during circuit formation is part of the rule: it
    starts at the excluded loss's minimum.)
    ``rule``: the rule with its thresholds.
    """

    memorisation: tuple[int, int] | None
    circuit_formation: tuple[int, int] | None
    cleanup: tuple[int, int] | None
    memorisation_end: int | None
    circuit_start: int | None
    cleanup_start: int | None
    grok_step: int | None
    trends: dict[str, dict[str, float]]
    published_order: bool
    rule: str


def locate_phases(
    steps: Sequence[int],
    measures: dict[str, np.ndarray],
    *,
    train_threshold: float = 0.99,
    test_threshold: float = 0.95,
    test_low: float = 0.5,
) -> Phases:
    """The phases of one member from its measures along ``steps`` (module docstring).

    ``measures[name]``: one value per step for ``train_accuracy``, ``test_accuracy`` and
    the ``TREND_KEYS``.
    """
    where = "locate_phases"
    for name, v in (("train_threshold", train_threshold), ("test_threshold", test_threshold),
                    ("test_low", test_low)):  # fmt: skip
        check_float(where, name, v, minimum=0.0, maximum=1.0)
    if test_low >= test_threshold:
        raise fail(where, "test_low", test_low, f"< test_threshold ({test_threshold})")
    st = [int(s) for s in steps]
    train = np.asarray(measures["train_accuracy"], np.float64)
    test = np.asarray(measures["test_accuracy"], np.float64)
    if len(train) != len(st) or len(test) != len(st):
        raise fail(where, "measures", f"{len(train)} values", f"one per step ({len(st)})")

    def first(cond: np.ndarray, start: int = 0) -> int | None:
        hits = np.flatnonzero(cond[start:])
        return int(hits[0]) + start if hits.size else None

    i_mem = first(train >= train_threshold)
    i_grok = first(test >= test_threshold)
    i_clean: int | None = len(st) - 1
    if i_grok is not None:
        low = np.flatnonzero(test[:i_grok] <= test_low)
        i_clean = int(low[-1]) if low.size else None
    mem = circ = clean = None
    i_circ = None
    if i_mem is not None and test[i_mem] <= test_low:
        end = i_clean if i_clean is not None and i_clean >= i_mem else i_mem
        excluded = np.asarray(measures["excluded_loss"], np.float64)[i_mem : end + 1]
        i_circ = i_mem + int(np.argmin(excluded))
        mem = (0, i_circ)
        if i_circ < end:
            circ = (i_circ, end)
    if i_clean is not None and i_grok is not None:
        clean = (i_clean, i_grok)

    def trend(iv: tuple[int, int] | None) -> dict[str, float]:
        if iv is None:
            return {}
        a, b = iv
        return {k: float(measures[k][b] - measures[k][a]) for k in TREND_KEYS if k in measures}

    trends = {"memorisation": trend(mem), "circuit_formation": trend(circ),
              "cleanup": trend(clean)}  # fmt: skip
    ordered = mem is not None and circ is not None and clean is not None
    if ordered:
        c, q = trends["circuit_formation"], trends["cleanup"]
        ordered = (
            c.get("restricted_loss", 0.0) < 0 < c.get("excluded_loss", 0.0)
            and q.get("test_loss", 0.0) < 0
            and q.get("weight_norm", 0.0) < 0
        )

    def steps_of(iv: tuple[int, int] | None) -> tuple[int, int] | None:
        return None if iv is None else (st[iv[0]], st[iv[1]])

    return Phases(
        memorisation=steps_of(mem),
        circuit_formation=steps_of(circ),
        cleanup=steps_of(clean),
        memorisation_end=None if i_mem is None else st[i_mem],
        circuit_start=None if i_circ is None else st[i_circ],
        cleanup_start=None if clean is None else st[clean[0]],
        grok_step=None if i_grok is None else st[i_grok],
        trends=trends,
        published_order=bool(ordered),
        rule=(
            f"t_mem: first train accuracy >= {train_threshold:g}; t_grok: first test "
            f"accuracy >= {test_threshold:g}; t_clean: last checkpoint before t_grok with "
            f"test accuracy <= {test_low:g}; t_circ: smallest excluded loss in [t_mem, "
            f"t_clean]; memorisation [0, t_circ] (if test accuracy at t_mem <= "
            f"{test_low:g}), circuit formation [t_circ, t_clean], cleanup [t_clean, t_grok]"
        ),
    )


# --------------------------------------------------------------------------- along a run


@dataclasses.dataclass(frozen=True, eq=False)
class GrokkingResult:
    """The grokking progress measures of a run's members at every checkpoint.

    Arrays are ``(members, steps)`` (``layer_weight_norm``: ``(members, steps, layers)``),
    in the order of ``members`` and ``steps``; the measures are defined in the module
    docstring. ``key_frequencies[i]``: member ``members[i]``'s key frequencies (from its
    final checkpoint unless given). ``neuron_fraction[layer]``: ``(members, steps)``.
    ``phases[i]``: :class:`Phases`. ``loss``: the loss every ``*_loss`` measures (the
    run's ``train.loss``). ``tier`` is ``"exact"`` (enumeration of all ``p^2`` pairs in
    float64); ``error`` the rounding budget of the module docstring for the losses and
    fractions; ``method`` says how it was computed.
    """

    p: int
    steps: np.ndarray
    members: tuple[int, ...]
    labels: tuple[str, ...]
    loss: str
    key_frequencies: tuple[tuple[int, ...], ...]
    train_loss: np.ndarray
    test_loss: np.ndarray
    train_accuracy: np.ndarray
    test_accuracy: np.ndarray
    restricted_loss: np.ndarray
    restricted_test_loss: np.ndarray
    excluded_loss: np.ndarray
    embedding_key_fraction: np.ndarray
    embedding_top_fraction: np.ndarray
    embedding_unit_fraction: np.ndarray
    neuron_fraction: dict[str, np.ndarray]
    weight_norm: np.ndarray
    layer_weight_norm: np.ndarray
    phases: tuple[Phases, ...]
    tier: Tier
    error: float
    method: str

    def measures(self, i: int) -> dict[str, np.ndarray]:
        """Member ``members[i]``'s measures, ``{name: (steps,)}``."""
        names = ("train_loss", "test_loss", "train_accuracy", "test_accuracy",
                 "restricted_loss", "restricted_test_loss", "excluded_loss",
                 "embedding_key_fraction", "embedding_top_fraction", "embedding_unit_fraction",
                 "weight_norm")  # fmt: skip
        out = {n: np.asarray(getattr(self, n)[i]) for n in names}
        out.update({f"neuron_fraction[{k}]": v[i] for k, v in self.neuron_fraction.items()})
        return out

    def summary(self) -> str:
        """A plain-text table: per member, its key frequencies and phase intervals."""
        lines = [f"grokking progress measures (p = {self.p}, loss = {self.loss}, {self.tier})"]
        for i, m in enumerate(self.members):
            ph = self.phases[i]
            lines.append(
                f"member {m} ({self.labels[i]}): key frequencies {list(self.key_frequencies[i])}; "
                f"memorisation {ph.memorisation}, circuit formation {ph.circuit_formation}, "
                f"cleanup {ph.cleanup}; grok step {ph.grok_step}; published order: "
                f"{ph.published_order}"
            )
        return "\n".join(lines)


def _modulus(run: Any, member: int) -> int:
    dist = run.dist_of(member)
    p = getattr(dist, "p", None)
    if p is None or getattr(dist, "op", None) != "add":
        raise NotApplicable(
            f"progress_measures: the grokking measures need modular addition "
            f"(ModularArithmetic with op='add'), member {member} trains on {dist!r}."
        )
    return int(p)


def progress_measures(
    run: Any,
    *,
    members: Sequence[int] | None = None,
    key_frequencies: Sequence[int] | None = None,
    key_ratio: float = 0.5,
    neuron_threshold: float = 0.85,
    train_threshold: float = 0.99,
    test_threshold: float = 0.95,
    test_low: float = 0.5,
) -> GrokkingResult:
    """The grokking progress measures of ``run`` (a :class:`toylab.runs.Run`) at every
    checkpoint, for ``members`` (default all), and the phases they locate.

    The run must train modular addition with ``train.data = "full"`` (so each member has
    a training mask and held-out pairs). ``key_frequencies``: use these for every member
    instead of finding each member's from its final checkpoint (``key_ratio``).
    ``neuron_threshold`` and the phase thresholds: module docstring.
    """
    where = "progress_measures"
    check_float(where, "key_ratio", key_ratio, positive=True)
    check_float(where, "neuron_threshold", neuron_threshold, minimum=0.0, maximum=1.0)
    num = run.num_members
    if members is None:
        mem = tuple(range(num))
    else:
        if isinstance(members, int | str) or not all(
            isinstance(m, int) and not isinstance(m, bool) and 0 <= m < num for m in members
        ):
            raise fail(where, "members", members, f"a list of member indices in 0..{num - 1}")
        mem = tuple(int(m) for m in members)
        if not mem:
            raise fail(where, "members", members, "a non-empty list of member indices")
    if run.config.train.data != "full" or run.ensemble.train_data is None:
        raise NotApplicable(
            f"{where}: the run trained on {run.config.train.data!r} data, so there are no "
            "held-out pairs. Train with train.data = 'full' and train.train_fraction < 1."
        )
    loss = run.config.train.loss
    if loss not in ("cross_entropy", "mse"):
        raise NotApplicable(f"{where}: the run's loss {loss!r} is not a classification loss.")
    ps = {m: _modulus(run, m) for m in mem}
    if len(set(ps.values())) > 1:
        raise fail(where, "members", list(mem), "members of one modulus p",
                   f"These train on p = {sorted(set(ps.values()))}; call once per p.")  # fmt: skip
    steps = [int(s) for s in run.checkpoint_steps]
    if not steps:
        raise NotApplicable(f"{where}: the run {str(run.path)!r} has no checkpoints.")
    masks = {m: np.asarray(run.ensemble.train_data[m], bool) for m in mem}
    final = run.models(steps[-1])
    keys: dict[int, tuple[int, ...]] = {}
    for m in mem:
        if key_frequencies is not None:
            freqs = tuple(int(f) for f in key_frequencies)
            half = (ps[m] - 1) // 2
            if not freqs or not all(1 <= f <= half for f in freqs):
                raise fail(where, "key_frequencies", key_frequencies,
                           f"a non-empty list of frequencies in 1..{half}")  # fmt: skip
            keys[m] = freqs
        else:
            keys[m] = key_frequencies_of(final[m], ps[m], key_ratio=key_ratio)
    rows: dict[int, list[dict[str, Any]]] = {m: [] for m in mem}
    for s in steps:
        models = run.models(s)
        for m in mem:
            rows[m].append(
                logit_measures(
                    models[m],
                    ps[m],
                    masks[m],
                    keys[m],
                    loss=loss,
                    neuron_threshold=neuron_threshold,
                )  # fmt: skip
            )

    def arr(name: str) -> np.ndarray:
        return np.array([[r[name] for r in rows[m]] for m in mem], np.float64)

    layer_keys = sorted(rows[mem[0]][0]["neuron_fraction"])
    neuron = {k: np.array([[r["neuron_fraction"][k] for r in rows[m]] for m in mem])
              for k in layer_keys}  # fmt: skip
    error = 0.0
    for m in mem:
        for r in rows[m]:
            delta = (ps[m] + 2) * r["logit_error"]
            budget = 2 * (r["max_logit"] + 1) * delta + delta**2
            budget += 64 * ps[m] ** 2 * _EPS * max(1.0, r["max_loss"])
            error = max(error, budget)
    scalars = ("train_loss", "test_loss", "train_accuracy", "test_accuracy", "restricted_loss",
               "restricted_test_loss", "excluded_loss", "embedding_key_fraction",
               "embedding_top_fraction", "embedding_unit_fraction", "weight_norm")  # fmt: skip
    values = {n: arr(n) for n in scalars}
    layer_norm = np.array([[r["layer_weight_norm"] for r in rows[m]] for m in mem])
    phases = tuple(
        locate_phases(
            steps,
            {n: values[n][i] for n in scalars},
            train_threshold=train_threshold,
            test_threshold=test_threshold,
            test_low=test_low,
        )  # fmt: skip
        for i in range(len(mem))
    )
    p_set = sorted(set(ps.values()))
    return GrokkingResult(
        p=p_set[0],
        steps=np.asarray(steps),
        members=mem,
        labels=tuple(run.member_label(m) for m in mem),
        loss=loss,
        key_frequencies=tuple(keys[m] for m in mem),
        neuron_fraction=neuron,
        layer_weight_norm=layer_norm,
        phases=phases,
        tier="exact",
        error=error,
        method=(
            f"float64 forward pass of all p^2 = {p_set[0] ** 2} pairs at each of "
            f"{len(steps)} checkpoints (toylab.exact.finite_table); losses, projections "
            "and Fourier powers computed from that table"
        ),
        **values,
    )
