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
  opposite signs; ``(|w_0|, |w_1|, b_0, b_1)`` are optimised by a projected Newton method
  (exact gradient, Hessian by differences of it) on the exact expected loss, from each of
  the starting points :data:`ANTIPODAL_STARTS`, within :data:`ANTIPODAL_BOUNDS` (both
  ``|w_i| ≥ 0.5``), vectorised over all cells and starts; the best start is kept. The
  parameters found are a local optimum found by the optimiser (first order:
  :attr:`PhaseDiagramResult.projected_gradient` says how well), not a certified global
  one; the loss *at those parameters* is exact (the closed-form piecewise quadrature of
  :func:`~toylab.superposition.loss._pair_terms`), so the candidate's true best is at
  most this value.

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
from toylab.superposition.loss import _pair_terms
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
#: the optimiser's starting points ``(|w_0|, |w_1|, b_0, b_1)`` of the antipodal candidate
ANTIPODAL_STARTS: tuple[tuple[float, float, float, float], ...] = (
    (1.0, 1.0, 0.0, 0.0),
    (1.0, 1.0, -0.2, -0.2),
    (1.3, 0.7, -0.1, 0.1),
    (0.7, 1.3, 0.1, -0.1),
    (1.5, 1.5, -0.5, -0.5),
    (0.6, 0.6, 0.1, 0.1),
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
    winner; ``projected_gradient`` ``(R, D)`` the largest component of the antipodal
    loss's projected gradient at ``params`` (≈ 0: a first-order local optimum). Tier
    ``exact``: each loss is the exact value at its parameters (the antipodal parameters
    are a local optimum found by the optimiser from :data:`ANTIPODAL_STARTS`).
    """

    relative_importance: np.ndarray
    density: np.ndarray
    losses: np.ndarray
    params: np.ndarray
    winner: np.ndarray
    margin: np.ndarray
    projected_gradient: np.ndarray
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


def _antipodal(theta: np.ndarray, p: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact loss and gradient of the antipodal candidate at ``theta = (|w_0|, |w_1|, b_0,
    b_1)`` (``(N, 4)``), vectorised: ``M = w wᵀ`` with ``w = (s_0, −s_1)``; output 0 is
    :func:`~toylab.superposition.loss._pair_terms` at ``(a, c) = (s_0², −s_0 s_1)``, output
    1 (importance ``r``) at ``(s_1², −s_0 s_1)``; the chain rule gives the gradient."""
    s0, s1, b0, b1 = theta.T
    cross = -s0 * s1
    f0, a0, c0, d0 = _pair_terms(s0 * s0, cross, b0, p, p, grad=True)
    f1, a1, c1, d1 = _pair_terms(s1 * s1, cross, b1, p, p, grad=True)
    loss = f0 + r * f1
    grad = np.stack(
        [2 * s0 * a0 - s1 * (c0 + r * c1), 2 * s1 * r * a1 - s0 * (c0 + r * c1), d0, r * d1], -1
    )
    return loss, grad


def _minimise(
    p: np.ndarray, r: np.ndarray, x: np.ndarray, max_iter: int = 60, gtol: float = 1e-10
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Projected Newton, vectorised over problems (rows of ``x``), inside
    :data:`ANTIPODAL_BOUNDS`: the Hessian by forward differences of the exact gradient,
    shifted to be positive definite, free variables only (a variable at a bound whose
    gradient pushes outward stays there), Armijo backtracking on the projected step.
    Returns ``(x, loss, projected gradient norm)``: a point where the projected gradient
    vanishes (to ``gtol``) is a first-order local optimum; the loss is exact at ``x``."""
    lo, hi = np.array(ANTIPODAL_BOUNDS).T
    x = np.clip(x, lo, hi)
    f, g = _antipodal(x, p, r)
    pg = np.zeros_like(x)
    eye = np.eye(4)
    for _ in range(max_iter):
        free = ~(((x <= lo) & (g > 0)) | ((x >= hi) & (g < 0)))
        pg = np.where(free, g, 0.0)
        todo = np.flatnonzero(np.max(np.abs(pg), -1) > gtol)
        if not len(todo):
            break
        xt, gt, ft, fr = x[todo], g[todo], f[todo], free[todo]
        pt, rt = p[todo], r[todo]
        h = 1e-6 * np.maximum(np.abs(xt), 1.0)
        shifted = xt[:, None, :] + h[:, :, None] * eye  # (T, 4, 4): row k moves variable k
        _, gs = _antipodal(shifted.reshape(-1, 4), np.repeat(pt, 4), np.repeat(rt, 4))
        H = (gs.reshape(-1, 4, 4) - gt[:, None, :]) / h[:, :, None]
        H = (H + np.swapaxes(H, 1, 2)) / 2
        both = fr[:, :, None] & fr[:, None, :]
        H = np.where(both, H, eye)
        low = np.linalg.eigvalsh(H)[:, 0]
        scale = np.maximum(np.abs(H).max((1, 2)), 1e-12)
        H = H + np.maximum(1e-8 * scale - low, 0.0)[:, None, None] * eye
        step = -np.linalg.solve(H, np.where(fr, gt, 0.0)[..., None])[..., 0]
        t = np.ones(len(todo))
        accepted = np.zeros(len(todo), bool)
        xn, fn = xt.copy(), ft.copy()
        for _ in range(40):
            rest = np.flatnonzero(~accepted)
            if not len(rest):
                break
            cand = np.clip(xt[rest] + t[rest, None] * step[rest], lo, hi)
            fc, _ = _antipodal(cand, pt[rest], rt[rest])
            decrease = np.sum(gt[rest] * (cand - xt[rest]), -1)
            ok = fc <= ft[rest] + 1e-4 * np.minimum(decrease, 0.0)
            ok &= fc <= ft[rest]
            xn[rest[ok]], fn[rest[ok]] = cand[ok], fc[ok]
            accepted[rest[ok]] = True
            t[rest[~ok]] /= 2
        moved = todo[accepted]
        if not len(moved):
            break
        x[moved] = xn[accepted]
        f[moved], g[moved] = _antipodal(x[moved], p[moved], r[moved])
    f, g = _antipodal(x, p, r)  # the exact loss (and gradient) at the parameters kept
    free = ~(((x <= lo) & (g > 0)) | ((x >= hi) & (g < 0)))
    return x, f, np.max(np.abs(np.where(free, g, 0.0)), -1)


def phase_diagram(
    relative_importance: Sequence[float] | None = None,
    density: Sequence[float] | None = None,
) -> PhaseDiagramResult:
    """The exact n = 2, m = 1 phase diagram (see the module docstring).

    Defaults: ``relative_importance = logspace(-1, 1, 7)`` (0.1 .. 10) and ``density =
    logspace(-2, 0, 7)`` (0.01 .. 1). All cells and starts are optimised at once (a few
    seconds for a 25 × 25 grid on one CPU core).
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
    R, D, S = len(rel), len(den), len(ANTIPODAL_STARTS)
    rr, pp = np.meshgrid(rel, den, indexing="ij")  # (R, D)
    starts = np.broadcast_to(np.asarray(ANTIPODAL_STARTS, float), (R, D, S, 4)).reshape(-1, 4)
    x, f, pg = _minimise(np.repeat(pp.ravel(), S), np.repeat(rr.ravel(), S), starts.copy())
    x, f, pg = x.reshape(R, D, S, 4), f.reshape(R, D, S), pg.reshape(R, D, S)
    best = np.argmin(f, -1)[..., None]
    anti = np.take_along_axis(f, best, -1)[..., 0]
    theta = np.take_along_axis(x, best[..., None], -2)[..., 0, :]
    gradient = np.take_along_axis(pg, best, -1)[..., 0]
    v = pp * (4 - 3 * pp) / 12
    losses = np.stack([rr * v, v, anti, (1 + rr) * v], -1)
    params = np.concatenate([theta[..., :1], -theta[..., 1:2], theta[..., 2:]], -1)
    order = np.argsort(losses, axis=-1, kind="stable")
    winner = order[..., 0]
    sorted_losses = np.take_along_axis(losses, order, -1)
    margin = sorted_losses[..., 1] - sorted_losses[..., 0]
    return PhaseDiagramResult(rel, den, losses, params, winner, margin, gradient)


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
