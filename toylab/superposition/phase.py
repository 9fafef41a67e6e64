r"""The n = 2, m = 1 phase diagram of the toy model of superposition (Elhage et al. 2022).

Two features of density ``p`` (``1 − S``, the same for both) and importances
``(1, r)`` (``r``: the relative importance of ``"input:1"`` against ``"input:0"``) compete
for one hidden dimension of the ReLU-output model ``x' = ReLU(Wᵀ W x + b)``,
``W = (w_0, w_1)``. The candidate solutions and their best exact expected losses
(:func:`toylab.superposition.expected_loss`):

* ``"input:0 only"`` (``w_1 = 0``): output 0 is perfect at ``w_0 = 1, b_0 = 0`` (loss 0,
  the minimum of a non-negative loss) and output 1 is the constant ``ReLU(b_1)``, best at
  ``b_1 = p/2``: loss ``r (p/3 − p²/4)`` (the variance of ``x_1``), exactly;
* ``"input:1 only"``: likewise ``1 · (p/3 − p²/4)``;
* ``"none"`` (``W = 0``): ``(1 + r)(p/3 − p²/4)``, never better than the two above;
* ``"antipodal pair"`` (``w_0 > 0 > w_1``): both features share the dimension with
  opposite signs; ``(|w_0|, |w_1|, b_0, b_1)`` are optimised by L-BFGS-B (finite-difference
  gradients) on the exact expected loss from the starting points
  :data:`ANTIPODAL_STARTS`, within :data:`ANTIPODAL_BOUNDS` (both ``|w_i| ≥ 0.5``). The loss is exact at
  the parameters found, which are a local optimum: the candidate's true best is at most
  this value.

The winner per cell has the lowest loss; ``margin`` is the runner-up's loss minus the
winner's. :func:`classify_solution` names the candidate a trained ``W`` (``1 × 2``) is
closest to, and :func:`trained_phase` keeps the best member (lowest loss) per cell.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from toylab._errors import fail
from toylab._validate import check_float, float_tuple
from toylab.superposition.loss import _relu_terms
from toylab.superposition.metrics import superposition_weights
from toylab.tiers import Tier

__all__ = [
    "ANTIPODAL_BOUNDS",
    "ANTIPODAL_STARTS",
    "CANDIDATES",
    "PhaseDiagramResult",
    "TrainedPhaseResult",
    "classify_solution",
    "phase_diagram",
    "trained_phase",
]

#: the candidate solutions, in the order of :attr:`PhaseDiagramResult.losses`' last axis
CANDIDATES: tuple[str, ...] = ("input:0 only", "input:1 only", "antipodal pair", "none")
#: L-BFGS-B starting points ``(|w_0|, |w_1|, b_0, b_1)`` of the antipodal candidate
ANTIPODAL_STARTS: tuple[tuple[float, float, float, float], ...] = (
    (1.0, 1.0, 0.0, 0.0),
    (1.0, 1.0, -0.2, -0.2),
)
#: box of the antipodal search: both features represented (``|w_i| ≥ 0.5``, the
#: threshold of :func:`classify_solution`), so the candidate cannot slide into a
#: one-feature solution
ANTIPODAL_BOUNDS = ((0.5, 3.0), (0.5, 3.0), (-3.0, 3.0), (-3.0, 3.0))


@dataclasses.dataclass(frozen=True)
class PhaseDiagramResult:
    """The exact phase diagram over ``relative_importance`` (``R``) × ``density`` (``D``).

    ``losses`` ``(R, D, 4)`` the best exact loss of each of :data:`CANDIDATES`;
    ``params`` ``(R, D, 4)`` the antipodal candidate's ``(w_0, w_1, b_0, b_1)``;
    ``winner`` ``(R, D)`` index into ``candidates``; ``margin`` ``(R, D)`` runner-up minus
    winner. Tier ``exact``: each loss is the exact value at its parameters (the antipodal
    parameters are a local optimum from :data:`ANTIPODAL_STARTS`).
    """

    relative_importance: np.ndarray
    density: np.ndarray
    losses: np.ndarray
    params: np.ndarray
    winner: np.ndarray
    margin: np.ndarray
    candidates: tuple[str, ...] = CANDIDATES
    tier: Tier = "exact"

    def winner_names(self) -> np.ndarray:
        return np.asarray(self.candidates, dtype=object)[self.winner]


@dataclasses.dataclass(frozen=True)
class TrainedPhaseResult:
    """Trained members, the best (lowest loss) per ``(relative importance, density)`` cell.

    ``relative_importance``, ``density``: the sorted distinct values; ``solution`` ``(R,
    D)`` the :func:`classify_solution` name (``""`` where no member was given);
    ``loss`` ``(R, D)`` the best member's loss (``nan`` where none); ``W`` ``(R, D, 2)``,
    ``b`` ``(R, D, 2)`` its weights; ``num_members`` ``(R, D)`` members per cell.
    """

    relative_importance: np.ndarray
    density: np.ndarray
    solution: np.ndarray
    loss: np.ndarray
    W: np.ndarray
    b: np.ndarray
    num_members: np.ndarray


def _variance(p: float) -> float:
    return p * (4 - 3 * p) / 12


def _antipodal_loss(theta: np.ndarray, p: float, r: float) -> float:
    w = np.array([abs(theta[0]), -abs(theta[1])])
    M = np.outer(w, w)
    low, _, _, _ = _relu_terms(M, np.asarray(theta[2:4], float), np.array([p, p]),
                               np.array([1.0, r]), 4, 1e-12)  # fmt: skip
    return float(low.sum())


def _best_antipodal(p: float, r: float) -> tuple[float, np.ndarray]:
    from scipy.optimize import minimize

    best_loss, best = np.inf, np.zeros(4)
    for start in ANTIPODAL_STARTS:
        res = minimize(
            _antipodal_loss, np.asarray(start, float), args=(p, r), method="L-BFGS-B",
            bounds=ANTIPODAL_BOUNDS, options={"ftol": 1e-12, "gtol": 1e-9, "maxiter": 200},
        )  # fmt: skip
        loss = _antipodal_loss(res.x, p, r)  # the exact loss at the parameters kept
        if loss < best_loss:
            best_loss, best = loss, np.array([abs(res.x[0]), -abs(res.x[1]), *res.x[2:]])
    return best_loss, best


def phase_diagram(
    relative_importance: Sequence[float] | None = None,
    density: Sequence[float] | None = None,
) -> PhaseDiagramResult:
    """The exact n = 2, m = 1 phase diagram (see the module docstring).

    Defaults: ``relative_importance = logspace(-1, 1, 7)`` (0.1 .. 10) and ``density =
    logspace(-2, 0, 7)`` (0.01 .. 1). Each cell optimises the antipodal candidate (about two
    seconds per cell on one CPU core).
    """
    where = "phase_diagram"
    rel = np.asarray(
        np.logspace(-1, 1, 7)
        if relative_importance is None
        else float_tuple(where, "relative_importance", relative_importance, positive=True)
    )
    den = np.asarray(
        np.logspace(-2, 0, 7) if density is None else float_tuple(where, "density", density)
    )
    for k, p in enumerate(den):
        if not 0 < p <= 1:
            raise fail(where, f"density[{k}]", float(p), "in (0, 1]", "Density is 1 − S.")
    losses = np.zeros((len(rel), len(den), len(CANDIDATES)))
    params = np.zeros((len(rel), len(den), 4))
    for a, r in enumerate(rel):
        for c, p in enumerate(den):
            v = _variance(float(p))
            anti, theta = _best_antipodal(float(p), float(r))
            losses[a, c] = (r * v, v, anti, (1 + r) * v)
            params[a, c] = theta
    order = np.argsort(losses, axis=-1, kind="stable")
    winner = order[..., 0]
    sorted_losses = np.take_along_axis(losses, order, -1)
    margin = sorted_losses[..., 1] - sorted_losses[..., 0]
    return PhaseDiagramResult(rel, den, losses, params, winner, margin)


def classify_solution(model: Any, *, threshold: float = 0.5) -> str:
    """Which candidate of :data:`CANDIDATES` a trained n = 2, m = 1 model is.

    ``model`` is a model or network (``W`` of shape ``(1, 2)``). A feature is represented
    when ``|w_i| > threshold``; both represented with opposite signs is ``"antipodal
    pair"``; both with the same sign is ``"other"`` (not a candidate: they cannot be told
    apart by the ReLU).
    """
    where = "classify_solution"
    threshold = check_float(where, "threshold", threshold, nonneg=True)
    W, _, _, ensemble = superposition_weights(model, where)
    if ensemble or W.shape != (1, 2):
        raise fail(
            where, "model", f"weights of shape {W.shape}", "one model with W of shape (1, 2)"
        )
    w = W[0]
    on = np.abs(w) > threshold
    if on.all():
        return "antipodal pair" if w[0] * w[1] < 0 else "other"
    if on[0]:
        return "input:0 only"
    if on[1]:
        return "input:1 only"
    return "none"


def trained_phase(
    entries: Sequence[tuple[float, float, Any, float]], *, threshold: float = 0.5
) -> TrainedPhaseResult:
    """The best trained member per cell, classified.

    ``entries`` are ``(relative_importance, density, model, loss)`` (several seeds per cell
    allowed: the lowest ``loss`` is kept, as the paper does).
    """
    where = "trained_phase"
    items = list(entries)
    if not items:
        raise fail(
            where, "entries", items, "a non-empty list of (importance, density, model, loss)"
        )
    best: dict[tuple[float, float], tuple[float, Any]] = {}
    counts: dict[tuple[float, float], int] = {}
    for k, item in enumerate(items):
        if not (isinstance(item, Sequence) and len(item) == 4):
            raise fail(where, f"entries[{k}]", item, "a tuple (importance, density, model, loss)")
        r = check_float(where, f"entries[{k}][0]", item[0], positive=True)
        p = check_float(where, f"entries[{k}][1]", item[1], positive=True, maximum=1.0)
        loss = check_float(where, f"entries[{k}][3]", item[3])
        key = (r, p)
        counts[key] = counts.get(key, 0) + 1
        if key not in best or loss < best[key][0]:
            best[key] = (loss, item[2])
    rel = np.array(sorted({k[0] for k in best}))
    den = np.array(sorted({k[1] for k in best}))
    sol = np.full((len(rel), len(den)), "", dtype=object)
    loss_arr = np.full((len(rel), len(den)), np.nan)
    Ws, bs = np.full((len(rel), len(den), 2), np.nan), np.full((len(rel), len(den), 2), np.nan)
    num = np.zeros((len(rel), len(den)), int)
    for (r, p), (loss, model) in best.items():
        a, c = int(np.searchsorted(rel, r)), int(np.searchsorted(den, p))
        sol[a, c] = classify_solution(model, threshold=threshold)
        W, b, _, _ = superposition_weights(model, where)
        loss_arr[a, c], Ws[a, c], bs[a, c] = loss, W[0], b
        num[a, c] = counts[(r, p)]
    return TrainedPhaseResult(rel, den, sol, loss_arr, Ws, bs, num)
