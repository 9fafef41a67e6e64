r"""A channel's tuning over an image family, certified: heat maps, maxima, firing sets.

A *family* renders images from a parameter vector ``p`` (names ``family.PARAMS``,
ranges ``family.param_low``/``param_high``): ``render(p) -> x`` with ``x`` the flat
image ``(..., H*W)`` the network reads, and ``render_bounds(low, high) -> (lo, hi)``, a
certified enclosure of every pixel over a parameter box. The response of neuron ``f``
to the family is ``r(p) = f(render(p))``. Everything here encloses ``r`` over
parameter boxes (tier ``certified``):

1. **Pixel box.** ``[lo, hi] = render_bounds(P)`` holds every image of the box ``P``.
2. **First-order model** (when the family offers ``render_jacobian_bounds(low, high)
   -> (jlo, jhi)``, an enclosure of the Jacobian ``∂x/∂p`` ``(..., H*W, P)`` over the
   box). With centre ``c`` and half-widths ``h``, the mean value theorem gives
   ``x(p) - x(c) = J̄ (p - c)`` where ``J̄ = ∫_0^1 J(c + t(p - c)) dt`` lies in
   ``[jlo, jhi]`` (a convex box), so with ``J_m``/``J_r`` the box's midpoint/radius
   ``x(p) ∈ {x(c) + J_m diag(h) e + ρ : |e| <= 1, |ρ| <= J_r h}``: a zonotope with one
   generator per parameter. Pixels that move together (a curve rotating) stay
   together, where the pixel box forgets it.
3. **Network.** CROWN linear bounds (:func:`toylab.exact.bounds.neuron_bounds`, batched
   over many boxes) with every linear bound maximised over the pixel box and the
   zonotope, the better kept. Both contain the images, so the bound is sound.
4. **Branch and bound.** Boxes whose enclosure is wider than asked are bisected (the
   dimension where the bound's parameter coefficient times the width is largest).

:func:`tuning` encloses the response over each cell of a 1-D or 2-D slice (the other
parameters fixed, or maximised / minimised over their ranges: ``max_o r(a, o)`` over a
cell ``A`` lies in ``[max_k L_k, max_k U_k]`` for any partition of the others into
boxes ``k`` with bounds ``[L_k, U_k]`` of ``r`` on ``A × k``); :func:`certified_max` /
:func:`certified_min` pin down the response's extremes over the family
(:func:`toylab.exact.bounds.branch_and_bound`, with the attained value at a rendered
image as lower bound); :func:`firing_set` partitions the box into certified firing,
certified silent and undetermined boxes and encloses the firing probability under the
uniform law on the box.

Rounding: the first-order remainder is padded by ``1e-9`` times the magnitudes that
formed it (the renderer's float64 evaluation at ``c``); the network bounds pad their own.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any, Literal

import numpy as np

from toylab._errors import fail
from toylab._validate import check_choice, check_float, check_int
from toylab.exact.bounds import (
    BranchCertificate,
    Zonotope,
    branch_and_bound,
    neuron_bounds,
)
from toylab.network import Network, as_network
from toylab.tiers import Tier

__all__ = [
    "FamilyMaxResult",
    "FiringSetResult",
    "TuningResult",
    "certified_max",
    "certified_min",
    "family_response",
    "firing_set",
    "tuning",
]

_REMAINDER_PAD = 1e-9  # relative pad on the first-order remainder (float64 render at c)
_CHUNK_FLOATS = 2**23  # ~64 MB of float64 per batch of the linear bounds' coefficients


# --------------------------------------------------------------------------- the family


def _check_family(where: str, family: Any) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    for attr in ("PARAMS", "param_low", "param_high", "render", "render_bounds"):
        if not hasattr(family, attr):
            raise fail(
                where, "family", type(family).__name__,
                "an image family with PARAMS, param_low, param_high, render and render_bounds",
                "Pass a toylab.distributions.CurveImages.",
            )  # fmt: skip
    names = tuple(family.PARAMS)
    lo = np.asarray(family.param_low, np.float64)
    hi = np.asarray(family.param_high, np.float64)
    if lo.shape != (len(names),) or hi.shape != lo.shape or not np.all(lo <= hi):
        raise fail(where, "family.param_low/param_high", (lo, hi), f"({len(names)},), low <= high")
    return names, lo, hi


def _method(family: Any) -> str:
    if hasattr(family, "render_jacobian_bounds"):
        return (
            "render_bounds pixel box ∩ mean-value first-order zonotope (render_jacobian_bounds),"
            " CROWN linear bounds, bisection of parameter boxes"
        )
    return "render_bounds pixel box, CROWN linear bounds, bisection of parameter boxes"


@dataclasses.dataclass(frozen=True)
class _Problem:
    """A network neuron composed with a family: bounds and values over parameter boxes."""

    net: Network  # float64 NumPy
    family: Any
    neuron: str
    names: tuple[str, ...]
    low: np.ndarray  # the family's parameter box
    high: np.ndarray

    def values(self, params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The response at parameter points ``(N, P)`` and the images ``(N, H*W)``."""
        x = np.asarray(self.family.render(np.asarray(params, np.float64)), np.float64)
        return np.asarray(self.net.values(x, self.neuron), np.float64), x

    def bounds(self, low: np.ndarray, high: np.ndarray) -> tuple[np.ndarray, ...]:
        """``(lower, upper, d_upper, d_lower)`` of the response on boxes ``(B, P)``.

        ``d_*`` ``(B, P)``: the parameter slopes of the linear bounds (first-order model),
        or ``1 / range`` per parameter without one (then the widest relative dimension
        is split).
        """
        width = max(self.net.widths.values())
        step = max(1, _CHUNK_FLOATS // (width * self.net.input_dim))
        parts = [
            self._bounds(low[i : i + step], high[i : i + step]) for i in range(0, len(low), step)
        ]
        return tuple(np.concatenate([p[k] for p in parts]) for k in range(4))

    def _bounds(self, low: np.ndarray, high: np.ndarray) -> tuple[np.ndarray, ...]:
        plo, phi = self.family.render_bounds(low, high)
        plo, phi = np.asarray(plo, np.float64), np.asarray(phi, np.float64)
        c, h = 0.5 * (low + high), 0.5 * (high - low)
        zono = None
        if hasattr(self.family, "render_jacobian_bounds"):
            jlo, jhi = self.family.render_jacobian_bounds(low, high)
            jlo, jhi = np.asarray(jlo, np.float64), np.asarray(jhi, np.float64)
            jm, jr = 0.5 * (jlo + jhi), 0.5 * (jhi - jlo)
            xc = np.asarray(self.family.render(c), np.float64)
            gens = jm * h[:, None, :]
            rem = np.einsum("bdp,bp->bd", jr, h)
            scale = np.abs(xc) + np.abs(gens).sum(-1) + rem
            zono = Zonotope(xc, rem + _REMAINDER_PAD * scale + 1e-300, gens)
            # the pixel box and the zonotope's hull both hold the images
            hull = np.abs(gens).sum(-1) + zono.radius
            plo, phi = np.fmax(plo, xc - hull), np.fmin(phi, xc + hull)
        b = neuron_bounds(self.net, plo, np.maximum(plo, phi), self.neuron, zonotope=zono)
        if zono is not None:
            safe = np.where(h > 0, h, 1.0)
            du = np.where(h > 0, b.gen_upper / safe, 0.0)  # type: ignore[operator]
            dl = np.where(h > 0, b.gen_lower / safe, 0.0)  # type: ignore[operator]
        else:
            rng = np.where(self.high > self.low, self.high - self.low, 1.0)
            du = dl = np.broadcast_to(1.0 / rng, low.shape)
        return b.lower, b.upper, du, dl


def _problem(where: str, model: Any, family: Any, neuron: Any) -> _Problem:
    names, lo, hi = _check_family(where, family)
    net = as_network(model, where).numpy(np.float64)
    if net.input_dim != np.asarray(family.render(0.5 * (lo + hi))).shape[-1]:
        raise fail(
            where, "model", repr(net),
            "a network whose input is the family's flat image (H*W)",
        )  # fmt: skip
    nid = net.resolve(neuron)
    return _Problem(net, family, str(nid), names, lo, hi)


def family_response(model: Any, family: Any, neuron: str, params: Any) -> np.ndarray:
    """The neuron's response ``f(render(p))`` at parameter points ``(..., P)`` (float64).

    A plain evaluation (a sampled method's building block; no bound).
    """
    prob = _problem("family_response", model, family, neuron)
    p = np.asarray(params, np.float64)
    flat = p.reshape(-1, len(prob.names))
    return prob.values(flat)[0].reshape(p.shape[:-1])


def _split_choice(
    low: np.ndarray, high: np.ndarray, du: np.ndarray, dl: np.ndarray, allowed: np.ndarray
) -> np.ndarray:
    """The dimension to bisect per box: the bound's slope times the width (the
    widest allowed dimension when every slope is zero)."""
    w = np.where(allowed, high - low, 0.0)
    g = np.abs(du) + np.abs(dl)
    return np.argmax(w * (g + np.mean(g, axis=-1, keepdims=True) + 1e-300), axis=-1)


# --------------------------------------------------------------------------- tuning


@dataclasses.dataclass(frozen=True, eq=False)
class TuningResult:
    """A neuron's response over a 1-D or 2-D slice of the family, enclosed per cell.

    Cell ``i`` is the box ``[cell_low[i], cell_high[i]]`` in the ``axes`` coordinates
    (a partition of the slice, refined from a ``grid_shape`` grid; ``grid_index[i]``
    is the grid cell holding it). For every ``a`` in cell ``i``,
    ``lower[i] <= g(a) <= upper[i]`` (tier ``certified``), where ``g(a)`` is the response
    with the other parameters at ``fixed`` (``others == "fixed"``) or maximised /
    minimised over ``[others_low, others_high]`` (``"max"`` / ``"min"``).
    ``values[i]``: the response at the cell's centre (``"max"``/``"min"``: the best
    over the others tried there, a bound on ``g`` at the centre from the attained side).
    ``width = upper - lower``; ``max_width`` the largest; ``unresolved``: the cells
    wider than ``tol`` when the ``max_boxes`` budget ran out (``converged`` is then
    ``False``). ``error = max_width / 2`` (the enclosure half-width about the
    midpoints). ``num_boxes`` counts the parameter boxes bounded.
    """

    neuron: str
    axes: tuple[str, ...]
    others: str
    fixed: np.ndarray
    others_low: np.ndarray
    others_high: np.ndarray
    grid_shape: tuple[int, ...]
    cell_low: np.ndarray
    cell_high: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    values: np.ndarray
    grid_index: np.ndarray
    tol: float
    max_width: float
    unresolved: np.ndarray
    converged: bool
    num_boxes: int
    seconds: float
    error: float
    method: str
    tier: Tier = "certified"

    @property
    def width(self) -> np.ndarray:
        return self.upper - self.lower

    @property
    def num_cells(self) -> int:
        return int(self.lower.shape[0])

    @property
    def centres(self) -> np.ndarray:
        return 0.5 * (self.cell_low + self.cell_high)

    def grid_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """``(lower, upper)`` of shape ``grid_shape``: the enclosure over each grid cell
        (min of its cells' lower bounds, max of their upper bounds; certified)."""
        n = int(np.prod(self.grid_shape))
        lo = np.full(n, np.inf)
        hi = np.full(n, -np.inf)
        np.minimum.at(lo, self.grid_index, self.lower)
        np.maximum.at(hi, self.grid_index, self.upper)
        return lo.reshape(self.grid_shape), hi.reshape(self.grid_shape)

    def bounds_at(self, points: Any) -> tuple[np.ndarray, np.ndarray]:
        """The certified ``(lower, upper)`` of ``g`` at slice points ``(N, len(axes))``:
        the tightest over the cells holding each point (``nan`` outside the slice)."""
        pts = np.asarray(points, np.float64).reshape(-1, len(self.axes))
        inside = np.all(
            (pts[:, None, :] >= self.cell_low[None]) & (pts[:, None, :] <= self.cell_high[None]),
            axis=-1,
        )
        lo = np.where(inside, self.lower[None], -np.inf).max(1)
        hi = np.where(inside, self.upper[None], np.inf).min(1)
        none = ~inside.any(1)
        return np.where(none, np.nan, lo), np.where(none, np.nan, hi)


def _axes_index(where: str, names: tuple[str, ...], axes: Any) -> list[int]:
    if isinstance(axes, str):
        axes = (axes,)
    axes = tuple(axes)
    if not 1 <= len(axes) <= len(names) or len(set(axes)) != len(axes):
        raise fail(where, "axes", axes, f"distinct parameter names from {list(names)}")
    for a in axes:
        check_choice(where, "axes", a, names)
    return [names.index(a) for a in axes]


def _resolve_box(
    where: str, names: tuple[str, ...], plo: np.ndarray, phi: np.ndarray, box: Any
) -> tuple[np.ndarray, np.ndarray]:
    """The parameter box: the family's, or ``box`` = ``(low, high)`` / ``{name: (lo, hi)}``."""
    lo, hi = plo.copy(), phi.copy()
    if box is None:
        return lo, hi
    if isinstance(box, dict):
        for k, v in box.items():
            check_choice(where, "box", k, names)
            a, b = (float(v[0]), float(v[1])) if np.ndim(v) else (float(v), float(v))
            lo[names.index(k)], hi[names.index(k)] = a, b
    else:
        lo = np.asarray(box[0], np.float64).copy()
        hi = np.asarray(box[1], np.float64).copy()
    if lo.shape != plo.shape or hi.shape != plo.shape or not np.all(np.isfinite(lo + hi)):
        raise fail(where, "box", box, f"(low, high) of shape ({len(names)},) or {{name: (lo, hi)}}")
    if not np.all(lo <= hi):
        raise fail(where, "box", box, "low <= high in every parameter")
    return lo, hi


def tuning(
    model: Any,
    family: Any,
    neuron: str,
    *,
    axes: Any = ("theta", "kappa"),
    fixed: Any = None,
    others: Literal["fixed", "max", "min"] = "fixed",
    box: Any = None,
    resolution: Any = (48, 12),
    tol: float = 0.05,
    max_boxes: int = 20_000,
    batch_size: int = 256,
) -> TuningResult:
    """The neuron's certified response over a 1-D or 2-D slice of the family.

    ``axes``: one or two names of ``family.PARAMS``; ``box`` (default the family's
    ranges; ``{name: (lo, hi)}`` or ``(low, high)``) gives their range and that of the
    others. ``others="fixed"``: the other parameters at ``fixed`` (``{name: value}`` or
    a full vector; default the box's centre); ``"max"``/``"min"``: the response
    maximised / minimised over the others' ranges. ``resolution``: the initial grid
    (one int per axis); cells wider than ``tol`` (``upper - lower``, in the neuron's
    units) are bisected until every cell is within ``tol`` or ``max_boxes`` parameter
    boxes have been bounded. See :class:`TuningResult` and the module docstring.
    """
    where = "tuning"
    start = time.perf_counter()
    prob = _problem(where, model, family, neuron)
    idx = _axes_index(where, prob.names, axes)
    if len(idx) > 2:
        raise fail(where, "axes", axes, "one or two parameter names (a curve or a heat map)")
    check_choice(where, "others", others, ("fixed", "max", "min"))
    tol = check_float(where, "tol", tol, positive=True)
    max_boxes = check_int(where, "max_boxes", max_boxes, minimum=1)
    batch_size = check_int(where, "batch_size", batch_size, minimum=1)
    res = (resolution,) if isinstance(resolution, int) else tuple(resolution)
    if len(res) != len(idx) or not all(isinstance(r, int) and r >= 1 for r in res):
        raise fail(where, "resolution", resolution, f"{len(idx)} positive integer(s), one per axis")
    lo, hi = _resolve_box(where, prob.names, prob.low, prob.high, box)
    P = len(prob.names)
    rest = [i for i in range(P) if i not in idx]
    fix = 0.5 * (lo + hi)
    if fixed is not None:
        if others != "fixed":
            raise fail(where, "fixed", fixed, "None when others is 'max' or 'min'")
        if isinstance(fixed, dict):
            for k, v in fixed.items():
                check_choice(where, "fixed", k, prob.names)
                fix[prob.names.index(k)] = check_float(where, f"fixed[{k!r}]", v)
        else:
            fix = np.asarray(fixed, np.float64).copy()
            if fix.shape != (P,) or not np.all(np.isfinite(fix)):
                raise fail(where, "fixed", fixed, f"a dict or a vector of {P} finite numbers")
    if others == "fixed":
        olo, ohi = fix[rest].copy(), fix[rest].copy()
    else:
        olo, ohi = lo[rest].copy(), hi[rest].copy()
    sign = -1.0 if others == "min" else 1.0

    # the initial grid of cells in the axes coordinates
    edges = [np.linspace(lo[i], hi[i], r + 1) for i, r in zip(idx, res, strict=True)]
    mesh = np.stack(np.meshgrid(*[np.arange(r) for r in res], indexing="ij"), -1).reshape(
        -1, len(idx)
    )
    cell_lo = np.stack([edges[a][mesh[:, a]] for a in range(len(idx))], -1)
    cell_hi = np.stack([edges[a][mesh[:, a] + 1] for a in range(len(idx))], -1)
    grid_index = np.arange(len(mesh))

    def full(slice_lo: np.ndarray, slice_hi: np.ndarray, o_lo: np.ndarray, o_hi: np.ndarray):
        L = np.empty((len(slice_lo), P))
        H = np.empty((len(slice_lo), P))
        L[:, idx], H[:, idx] = slice_lo, slice_hi
        L[:, rest], H[:, rest] = o_lo, o_hi
        return L, H

    # leaves: full parameter boxes, each in one cell; bounds in the signed objective s*f
    leaf_cell = np.arange(len(cell_lo))
    L, H = full(cell_lo, cell_hi, np.broadcast_to(olo, (len(cell_lo), len(rest))),
                np.broadcast_to(ohi, (len(cell_lo), len(rest))))  # fmt: skip
    lb, ub, du, dl = prob.bounds(L, H)
    num_boxes = len(L)
    vlo, vhi = (lb, ub) if sign > 0 else (-ub, -lb)
    leaves = {"L": L, "H": H, "vlo": vlo, "vhi": vhi, "du": du, "dl": dl, "cell": leaf_cell}
    splittable = np.zeros(P, bool)
    splittable[idx] = True
    if others != "fixed":
        splittable[rest] = True

    def cell_bounds() -> tuple[np.ndarray, np.ndarray]:
        n = len(cell_lo)
        a = np.full(n, -np.inf)
        b = np.full(n, -np.inf)
        np.maximum.at(a, leaves["cell"], leaves["vlo"])
        np.maximum.at(b, leaves["cell"], leaves["vhi"])
        return a, b

    while True:
        clo, chi = cell_bounds()
        # prune leaves that cannot hold their cell's max (U_k < max_j L_j)
        keep = leaves["vhi"] >= clo[leaves["cell"]]
        leaves = {k: v[keep] for k, v in leaves.items()}
        with np.errstate(invalid="ignore"):  # split parents: no leaves, -inf - -inf
            spread = np.where(np.isfinite(clo), chi - clo, 0.0)
        wide = np.nonzero(spread > tol)[0]
        if len(wide) == 0 or num_boxes >= max_boxes:
            break
        order = wide[np.argsort(-spread[wide])][:batch_size]
        new_cells_lo: list[np.ndarray] = []
        new_cells_hi: list[np.ndarray] = []
        new_grid: list[int] = []
        drop = np.zeros(len(leaves["vlo"]), bool)
        add_L: list[np.ndarray] = []
        add_H: list[np.ndarray] = []
        add_cell: list[int] = []
        budget = max_boxes - num_boxes
        for c in order:
            mine = np.nonzero(leaves["cell"] == c)[0]
            k = mine[np.argmax(leaves["vhi"][mine])]
            allowed = splittable & (leaves["H"][k] > leaves["L"][k])
            if not allowed.any():
                continue
            dim = int(
                _split_choice(
                    leaves["L"][k], leaves["H"][k], leaves["du"][k], leaves["dl"][k], allowed
                )
            )
            mid = 0.5 * (leaves["L"][k, dim] + leaves["H"][k, dim])
            if not leaves["L"][k, dim] < mid < leaves["H"][k, dim]:
                continue
            if dim in rest:  # split one leaf inside the cell
                if 2 > budget:
                    break
                parts = [k]
                cells = [(c, c)]
            else:  # split the cell, and every leaf of it, along an axis
                if 2 * len(mine) > budget:
                    break
                a = idx.index(dim)
                m = 0.5 * (cell_lo[c, a] + cell_hi[c, a])
                left_hi, right_lo = cell_hi[c].copy(), cell_lo[c].copy()
                left_hi[a] = m
                right_lo[a] = m
                n0 = len(cell_lo) + len(new_cells_lo)
                new_cells_lo += [cell_lo[c], right_lo]
                new_cells_hi += [left_hi, cell_hi[c]]
                new_grid += [int(grid_index[c])] * 2
                parts = list(mine)
                cells = [(n0, n0 + 1)] * len(mine)
                mid = m
            for j, (cl, cr) in zip(parts, cells, strict=True):
                left_h, right_l = leaves["H"][j].copy(), leaves["L"][j].copy()
                left_h[dim] = mid
                right_l[dim] = mid
                add_L += [leaves["L"][j], right_l]
                add_H += [left_h, leaves["H"][j]]
                add_cell += [cl, cr]
                drop[j] = True
            budget -= 2 * len(parts)
        if not add_L:
            break
        if new_cells_lo:
            cell_lo = np.concatenate([cell_lo, np.stack(new_cells_lo)])
            cell_hi = np.concatenate([cell_hi, np.stack(new_cells_hi)])
            grid_index = np.concatenate([grid_index, np.asarray(new_grid)])
        AL, AH = np.stack(add_L), np.stack(add_H)
        lb, ub, du, dl = prob.bounds(AL, AH)
        num_boxes += len(AL)
        vlo, vhi = (lb, ub) if sign > 0 else (-ub, -lb)
        new = {"L": AL, "H": AH, "vlo": vlo, "vhi": vhi, "du": du, "dl": dl,
               "cell": np.asarray(add_cell)}  # fmt: skip
        leaves = {k: np.concatenate([v[~drop], new[k]]) for k, v in leaves.items()}

    # live cells (split parents have no leaves left)
    clo, chi = cell_bounds()
    live = np.isfinite(clo)
    cell_lo, cell_hi, grid_index = cell_lo[live], cell_hi[live], grid_index[live]
    clo, chi = clo[live], chi[live]
    renum = np.cumsum(live) - 1
    leaf_cell = renum[leaves["cell"]]
    # values at the cell centres: the response with each leaf's others at their centre
    oc = 0.5 * (leaves["L"][:, rest] + leaves["H"][:, rest])
    sc = 0.5 * (cell_lo + cell_hi)[leaf_cell]
    Pc, _ = full(sc, sc, oc, oc)
    v = sign * prob.values(Pc)[0]
    best = np.full(len(cell_lo), -np.inf)
    np.maximum.at(best, leaf_cell, v)
    lower, upper = (clo, chi) if sign > 0 else (-chi, -clo)
    width = upper - lower
    max_width = float(width.max())
    return TuningResult(
        neuron=prob.neuron, axes=tuple(prob.names[i] for i in idx), others=others,
        fixed=fix, others_low=olo, others_high=ohi, grid_shape=res,
        cell_low=cell_lo, cell_high=cell_hi, lower=lower, upper=upper, values=sign * best,
        grid_index=grid_index, tol=tol, max_width=max_width,
        unresolved=np.nonzero(width > tol)[0], converged=bool(max_width <= tol),
        num_boxes=num_boxes, seconds=time.perf_counter() - start, error=max_width / 2,
        method=_method(family),
    )  # fmt: skip


# --------------------------------------------------------------------------- maxima


@dataclasses.dataclass(frozen=True, eq=False)
class FamilyMaxResult:
    """The neuron's maximum (or minimum) over a box of the family (tier ``certified``).

    The true optimum of ``r(p) = f(render(p))`` over ``[box_low, box_high]`` lies in
    ``[lower, upper]``. For ``sense == "max"``: ``value == lower`` is attained at the
    rendered image ``image = render(argmax)``, ``upper`` is certified by
    ``certificate`` (the leaf boxes of the branch and bound, each with its bound);
    ``"min"`` is the mirror image. ``gap = upper - lower = error``; ``converged`` when
    ``gap <= requested_gap``.
    """

    neuron: str
    sense: Literal["max", "min"]
    params: tuple[str, ...]
    argmax: np.ndarray
    image: np.ndarray
    value: float
    lower: float
    upper: float
    gap: float
    requested_gap: float
    box_low: np.ndarray
    box_high: np.ndarray
    num_boxes: int
    converged: bool
    seconds: float
    certificate: BranchCertificate
    error: float
    method: str
    tier: Tier = "certified"


def _search_family(prob: _Problem, sign: float) -> Any:
    """Candidates per box: the centre and the corners the linear bounds favour."""

    def search(L: np.ndarray, H: np.ndarray, a_u: np.ndarray, a_l: np.ndarray) -> Any:
        B, P = L.shape
        c, r = 0.5 * (L + H), 0.5 * (H - L)
        cands = np.stack([c] + [np.clip(c + s * r * np.sign(a), L, H)
                                for a in (a_u, a_l) for s in (1.0, -1.0)])  # fmt: skip
        v = sign * prob.values(cands.reshape(-1, P))[0].reshape(len(cands), B)
        v = np.where(np.isnan(v), -np.inf, v)
        best = np.argmax(v, axis=0)
        return cands[best, np.arange(B)], v[best, np.arange(B)]

    return search


def _extreme(
    where: str, model: Any, family: Any, neuron: str, box: Any, gap: Any, max_boxes: Any,
    batch_size: Any, sign: float,
) -> FamilyMaxResult:  # fmt: skip
    start = time.perf_counter()
    prob = _problem(where, model, family, neuron)
    gap = check_float(where, "gap", gap, positive=True)
    max_boxes = check_int(where, "max_boxes", max_boxes, minimum=1)
    batch_size = check_int(where, "batch_size", batch_size, minimum=1)
    lo, hi = _resolve_box(where, prob.names, prob.low, prob.high, box)

    def bound(L: np.ndarray, H: np.ndarray) -> Any:
        lb, ub, du, dl = prob.bounds(L, H)
        return (ub, du, dl) if sign > 0 else (-lb, -dl, -du)

    best_p, best_f, leaves, num = branch_and_bound(
        lo, hi, bound, _search_family(prob, sign), gap=gap, max_nodes=max_boxes,
        batch_size=batch_size,
    )  # fmt: skip
    bounds = np.array([b for _, _, b in leaves])
    certified = max(float(bounds.max()), best_f)
    value, image = prob.values(best_p[None])
    val = float(value[0])
    cert = BranchCertificate(
        leaf_low=np.stack([a for a, _, _ in leaves]),
        leaf_high=np.stack([b for _, b, _ in leaves]),
        leaf_bound=sign * bounds,
        sense="max" if sign > 0 else "min",
    )
    achieved = certified - sign * val
    return FamilyMaxResult(
        neuron=prob.neuron, sense=cert.sense, params=prob.names, argmax=best_p.copy(),
        image=image[0], value=val,
        lower=val if sign > 0 else -certified, upper=certified if sign > 0 else val,
        gap=achieved, requested_gap=gap, box_low=lo, box_high=hi, num_boxes=num,
        converged=achieved <= gap, seconds=time.perf_counter() - start, certificate=cert,
        error=achieved, method=_method(family) + "; attained value at the best rendered image",
    )  # fmt: skip


def certified_max(
    model: Any,
    family: Any,
    neuron: str,
    *,
    box: Any = None,
    gap: float = 1e-3,
    max_boxes: int = 20_000,
    batch_size: int = 128,
) -> FamilyMaxResult:
    """The neuron's maximum over the family (every parameter by default), to within ``gap``.

    Branch and bound over the parameter box (``box``: default the family's ranges;
    ``{name: (lo, hi)}`` or ``(low, high)``; a zero-width range fixes a parameter): the
    best rendered image found gives the lower bound, the leaf boxes' bounds the
    certified upper bound. Stops at ``max_boxes`` bounded boxes with
    ``converged=False`` and the achieved gap. See :class:`FamilyMaxResult`.
    """
    return _extreme("certified_max", model, family, neuron, box, gap, max_boxes, batch_size, 1.0)


def certified_min(
    model: Any,
    family: Any,
    neuron: str,
    *,
    box: Any = None,
    gap: float = 1e-3,
    max_boxes: int = 20_000,
    batch_size: int = 128,
) -> FamilyMaxResult:
    """The neuron's minimum over the family: :func:`certified_max` of its negation."""
    return _extreme("certified_min", model, family, neuron, box, gap, max_boxes, batch_size, -1.0)


# --------------------------------------------------------------------------- firing set


@dataclasses.dataclass(frozen=True, eq=False)
class FiringSetResult:
    """Where the neuron fires (``> threshold``) over a box of the family.

    The boxes ``[box_low_i, box_high_i]`` (``(N, P)``) partition the parameter box;
    ``status[i]`` is ``1`` (certified firing: lower bound ``> threshold``), ``-1``
    (certified silent: upper bound ``<= threshold``) or ``0`` (undetermined when the
    budget ran out). Under the uniform law on the box (zero-width parameters are
    fixed), the firing probability lies in ``[firing_lower, firing_upper]``
    (``firing_lower`` = measure of the firing boxes, ``firing_upper = 1 -`` measure of the
    silent boxes; ``undetermined = firing_upper - firing_lower``); ``value`` the
    midpoint and ``error`` half the bracket (tier ``certified``).
    """

    neuron: str
    params: tuple[str, ...]
    threshold: float
    box_low: np.ndarray
    box_high: np.ndarray
    status: np.ndarray
    measure: np.ndarray
    firing_lower: float
    firing_upper: float
    undetermined: float
    value: float
    error: float
    num_boxes: int
    seconds: float
    method: str
    tier: Tier = "certified"


def firing_set(
    model: Any,
    family: Any,
    neuron: str,
    *,
    box: Any = None,
    threshold: float = 0.0,
    tol: float = 1e-3,
    max_boxes: int = 20_000,
    batch_size: int = 256,
) -> FiringSetResult:
    """Partition the parameter box into certified firing / silent / undetermined boxes.

    Undetermined boxes (bounds straddling ``threshold``) are bisected, largest measure
    first, until their total measure is ``<= tol`` or ``max_boxes`` boxes have been
    bounded. ``box`` as in :func:`certified_max` (zero-width ranges fix parameters).
    See :class:`FiringSetResult`.
    """
    where = "firing_set"
    start = time.perf_counter()
    prob = _problem(where, model, family, neuron)
    threshold = check_float(where, "threshold", threshold)
    tol = check_float(where, "tol", tol, positive=True)
    max_boxes = check_int(where, "max_boxes", max_boxes, minimum=1)
    batch_size = check_int(where, "batch_size", batch_size, minimum=1)
    lo, hi = _resolve_box(where, prob.names, prob.low, prob.high, box)
    nid = prob.net.resolve(prob.neuron)
    posts = [k for k in prob.net.layer_keys() if not k.endswith(".pre")]  # one per layer
    if not nid.pre and threshold == 0.0 and prob.net.activations[posts.index(nid.layer)] == "relu":
        # relu(z) > 0 iff z > 0: decide on the pre-activation, whose bounds are not
        # padded outward past 0 by the activation's rounding pad
        prob = dataclasses.replace(prob, neuron=f"{nid.key}.pre:{nid.unit}")
    free = hi > lo
    total = float(np.prod((hi - lo)[free])) if free.any() else 1.0

    def measure(L: np.ndarray, H: np.ndarray) -> np.ndarray:
        return np.prod(np.where(free, H - L, 1.0), axis=-1) / total

    def status(lb: np.ndarray, ub: np.ndarray) -> np.ndarray:
        return np.where(lb > threshold, 1, np.where(ub <= threshold, -1, 0))

    L, H = lo[None].copy(), hi[None].copy()
    lb, ub, du, dl = prob.bounds(L, H)
    st = status(lb, ub)
    num = 1
    while True:
        und = np.nonzero(st == 0)[0]
        m = measure(L[und], H[und])
        if len(und) == 0 or m.sum() <= tol or num + 2 > max_boxes:
            break
        pick = und[np.argsort(-m)][: min(batch_size, (max_boxes - num) // 2)]
        dims = _split_choice(L[pick], H[pick], du[pick], dl[pick], free[None])
        mids = 0.5 * (L[pick, dims] + H[pick, dims])
        ok = (L[pick, dims] < mids) & (mids < H[pick, dims])
        pick, dims, mids = pick[ok], dims[ok], mids[ok]
        if len(pick) == 0:
            break
        left_h, right_l = H[pick].copy(), L[pick].copy()
        left_h[np.arange(len(pick)), dims] = mids
        right_l[np.arange(len(pick)), dims] = mids
        NL = np.concatenate([L[pick], right_l])
        NH = np.concatenate([left_h, H[pick]])
        nlb, nub, ndu, ndl = prob.bounds(NL, NH)
        num += len(NL)
        keep = np.ones(len(L), bool)
        keep[pick] = False
        L, H = np.concatenate([L[keep], NL]), np.concatenate([H[keep], NH])
        du, dl = np.concatenate([du[keep], ndu]), np.concatenate([dl[keep], ndl])
        st = np.concatenate([st[keep], status(nlb, nub)])
    meas = measure(L, H)
    f_lo = float(math.fsum(meas[st == 1]))
    f_hi = 1.0 - float(math.fsum(meas[st == -1]))
    # outward by the rounding of the products and sums of the measures (N + P ulps each)
    pad = 4 * (len(meas) + len(lo)) * float(np.finfo(np.float64).eps)
    f_lo, f_hi = max(0.0, f_lo - pad), min(1.0, max(f_hi, f_lo) + pad)
    return FiringSetResult(
        neuron=str(nid), params=prob.names, threshold=threshold, box_low=L, box_high=H,
        status=st, measure=meas, firing_lower=f_lo, firing_upper=f_hi,
        undetermined=f_hi - f_lo, value=0.5 * (f_lo + f_hi), error=0.5 * (f_hi - f_lo),
        num_boxes=num, seconds=time.perf_counter() - start, method=_method(family),
    )  # fmt: skip
