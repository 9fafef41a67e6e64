r"""The expected importance-weighted loss of a toy model of superposition, exactly.

Under :class:`~toylab.distributions.SparseFeatures` (``x_i = a_i u_i``, ``a_i ~
Bernoulli(p_i)``, ``u_i ~ U(0, 1]``, independent) the loss of ``x' = f(M x + b)`` with
``M = WᵀW`` is ``L = Σ_i I_i E[(f(M_i·x + b_i) − x_i)²]``.

**Linear output** (``f`` = identity): with ``c = M_i − e_i``, ``E x_j = p_j/2`` and
``Var x_j = p_j/3 − p_j²/4 = p_j (4 − 3 p_j)/12``,
``E[(c·x + b_i)²] = (c·E x + b_i)² + Σ_j c_j² Var x_j``: a closed form, exact for any n.

**ReLU output.** Output ``i`` depends only on the features ``J_i = {j : M_ij ≠ 0} ∪ {i}``.
Condition on which of the others, ``R ⊆ J_i ∖ {i}``, are active (probability
``Π_{j∈R} p_j Π_{j∉R} (1 − p_j)``); given ``R`` the active values are uniform on the cube and
``s = Σ_{j∈R} M_ij u_j``. With the *smoothed truncated powers*
``H_r(c) = E[ReLU(c + s)^r]`` (``r = 1, 2``) the conditional loss is
``(1 − p_i) H_2(b_i) + p_i ∫_0^1 [H_2(b_i + M_ii y) − 2 y H_1(b_i + M_ii y) + y²] dy``.

``H_r`` is built one feature at a time, ``H^{R∪{j}}(c) = ∫_0^1 H^R(c + M_ij y) dy``,
starting from ``ReLU(c)^r``. Each ``H^R`` is continuous and piecewise polynomial (degree
``r + |R|``) between the knots ``c = −Σ_{j∈T} M_ij`` (``T ⊆ R``); it is ``0`` left of
the knots and ``E[(c + s)^r]`` (from the mean and variance of ``s``) right of them, and
is stored on each interior interval by its values at Chebyshev points. Every integral
over ``y ∈ [0, 1]`` is split at the knots and done by Gauss–Legendre rules with enough
nodes to be exact for the piece's degree. Every value is a sum of positive weights times
values of a non-negative function, with no division by a coefficient: unlike the
alternating vertex formula ``Σ_v (−1)^{|v|} (a·v + b)_+^{d+r} / (d! Π a_k)`` it does not
cancel when some ``M_ij`` are tiny, huge or nearly equal (tier ``exact``: the only error
is rounding; ``error`` states a rounding budget).

**Many features.** When an output has more than ``max_patterns`` activity patterns, the
patterns are enumerated in decreasing probability until the unenumerated mass ``q``
times a bound on the conditional loss is below ``tol / n``: the result is the
enclosure ``[lower, upper]`` (tier ``certified``). Two bounds, the smaller is used:

* *vertex*: ``(ReLU(z) − x_i)² ≤ ReLU(z)² + x_i²`` (the cross term ``−2 ReLU(z) x_i`` is
  ``≤ 0``), ``z ≤ z_max = b_i + Σ_j (M_ij)_+`` on the cube (an affine function's maximum
  is at a vertex) and ``E x_i² = p_i/3``, so each left-out pattern's conditional loss is
  at most ``B_i = (z_max)_+² + p_i/3``: the rest is at most ``(1 − enumerated mass) B_i``;
* *moment*: with ``m_j = (M_ij)_+`` and ``x ≥ 0``, ``0 ≤ ReLU(z) ≤ (b_i)_+ + Σ_j m_j
  x_j`` pointwise, so given the pattern ``R`` of the other features the conditional loss
  is at most ``B(R) = E[((b_i)_+ + Σ_j m_j x_j)² | R] + p_i/3`` (mean² + variance of a
  sum of independent terms: ``x_j`` uniform on ``(0, 1]`` for ``j ∈ R``, ``0`` for the
  other free ``j``, sparse for ``j = i``). ``B ≥ 0``, so the left-out patterns contribute
  at most ``Σ_{R left out} P(R) B(R) = E[B] − Σ_{R enumerated} P(R) B(R)``, where
  ``E[B] = ((b_i)_+ + Σ_j m_j p_j/2)² + Σ_j m_j² p_j (4 − 3 p_j)/12 + p_i/3`` is the
  same closed form over the whole distribution. This charges a left-out pattern what its
  own active features can contribute, not the all-active worst case. The subtraction is
  padded by ``16 (k + count + 4) eps (E[B] + Σ P(R) B(R))`` for rounding
  (``k`` free features: each ``P(R)`` is an ``exp`` of a sum of ``k`` logarithms).

``method="sampled"`` is the Monte
Carlo mean with its normal confidence interval (tier ``sampled``), for comparison.
"""

from __future__ import annotations

import dataclasses
import heapq
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from toylab._errors import fail
from toylab._validate import check_choice, check_float, check_int
from toylab.distributions.sparse import SparseFeatures
from toylab.superposition.metrics import superposition_weights
from toylab.tiers import Tier

__all__ = ["ExpectedLossResult", "expected_loss"]

_EPS = float(np.finfo(np.float64).eps)
#: ``method="auto"`` beyond exact enumeration: at most this many patterns over all outputs
_AUTO_WORK = 1024


@dataclasses.dataclass(frozen=True)
class ExpectedLossResult:
    """The expected importance-weighted loss ``Σ_i I_i E[(x'_i − x_i)²]`` of one model
    or of an ensemble.

    ``value`` the exact value (``exact``), the enclosure's midpoint (``certified``) or the
    Monte Carlo mean (``sampled``); the true loss lies in ``[lower, upper]`` (for
    ``sampled``: with probability ``confidence``); ``error = (upper − lower) / 2`` (for
    ``exact``: a rounding budget). ``per_feature_lower``/``per_feature_upper`` ``(n,)``:
    the same for each output's term ``I_i E[(x'_i − x_i)²]``. ``num_patterns``: activity
    patterns enumerated (summed over outputs; 0 for the linear closed form and for
    sampling); ``unenumerated_mass``: the largest probability left out over outputs;
    ``num_samples`` and ``confidence`` for ``sampled``; ``kind``: ``"linear"`` or ``"relu"``.

    **Ensembles** (as :class:`~toylab.superposition.SuperpositionResult`): with
    ``ensemble=True`` the numeric fields have a leading member axis (``value`` ``(K,)``,
    ``per_feature_lower`` ``(K, n)``, ...), ``tier`` is the weakest over members,
    ``method`` the distinct methods joined by ``" / "``, and :meth:`member` gives member
    ``k``'s own result (``members`` holds them all).
    """

    value: Any
    lower: Any
    upper: Any
    error: Any
    tier: Tier
    method: str
    kind: str
    per_feature_lower: np.ndarray
    per_feature_upper: np.ndarray
    num_patterns: Any = 0
    unenumerated_mass: Any = 0.0
    num_samples: Any = 0
    confidence: float | None = None
    ensemble: bool = False
    members: tuple[ExpectedLossResult, ...] = ()

    @property
    def per_feature(self) -> np.ndarray:
        """Each output's term (midpoint of its bounds)."""
        return (self.per_feature_lower + self.per_feature_upper) / 2

    @property
    def num_members(self) -> int:
        return len(self.members) if self.ensemble else 1

    def member(self, k: int) -> ExpectedLossResult:
        """Member ``k`` of an ensemble result (with its own tier and method; a single
        result is its own member 0)."""
        if not self.ensemble:
            if k != 0:
                raise fail("ExpectedLossResult.member", "k", k, "0 (a single model)")
            return self
        if (
            isinstance(k, bool)
            or not isinstance(k, int | np.integer)
            or not 0 <= k < len(self.members)
        ):
            raise fail("ExpectedLossResult.member", "k", k, f"in 0..{len(self.members) - 1}")
        return self.members[int(k)]

    def __str__(self) -> str:
        if self.ensemble:
            return "\n".join(f"member {k}: {m}" for k, m in enumerate(self.members))
        if self.tier == "exact":
            return f"{self.value:.10g} [exact, {self.kind}]"
        if self.tier == "certified":
            return f"{self.value:.8g} in [{self.lower:.8g}, {self.upper:.8g}] [certified]"
        return (
            f"{self.value:.6g} ± {self.error:.2g} [sampled, {self.confidence:.0%} CI, "
            f"{self.num_samples} samples]"
        )


# --------------------------------------------------------------------------- tables


def _make_cheb(num: int) -> tuple[np.ndarray, np.ndarray]:
    j = np.arange(num)
    theta = (2 * j + 1) * np.pi / (2 * num)
    return np.cos(theta), (-1.0) ** j * np.sin(theta)


def _make_gauss01(num: int) -> tuple[np.ndarray, np.ndarray]:
    x, w = np.polynomial.legendre.leggauss(num)
    return (x + 1) / 2, w / 2


_MAX_RULE = 64  # rules up to 64 nodes: tables of up to ~120 interacting features
_CHEB = tuple(_make_cheb(k) if k else (np.zeros(0), np.zeros(0)) for k in range(_MAX_RULE + 1))
_GAUSS = tuple(_make_gauss01(k) if k else (np.zeros(0), np.zeros(0)) for k in range(_MAX_RULE + 1))


def _cheb(num: int) -> tuple[np.ndarray, np.ndarray]:
    """Chebyshev points of the first kind on [-1, 1] and their barycentric weights."""
    return _CHEB[num] if num <= _MAX_RULE else _make_cheb(num)


def _gauss01(num: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss–Legendre nodes and weights on [0, 1] (exact for degree 2 num − 1)."""
    return _GAUSS[num] if num <= _MAX_RULE else _make_gauss01(num)


@dataclasses.dataclass(frozen=True)
class _Table:
    """``(H_1, H_2)(c) = E[ReLU(c + s)^(1, 2)]`` for ``s = Σ a_j u_j`` (module docstring).

    ``knots`` sorted; ``vals[t]`` the values at :func:`_cheb` points of interval
    ``[knots[t], knots[t + 1]]``, shape ``(num_knots - 1, num_nodes, 2)``; ``mean`` and
    ``var`` those of ``s`` (the closed form right of the last knot).
    """

    knots: np.ndarray
    vals: np.ndarray
    mean: float
    var: float
    num_terms: int

    @property
    def degree(self) -> int:
        return self.num_terms + 2

    def evaluate(self, c: np.ndarray, piece: np.ndarray | None = None) -> np.ndarray:
        """``(..., 2)`` values at ``c``; ``piece`` = ``searchsorted(knots, c)`` if known
        (``0``: left of the knots, ``len(knots)``: right of them)."""
        K = self.knots
        if piece is None:
            piece = np.searchsorted(K, c)
        out = np.zeros((*c.shape, 2))
        right = piece >= len(K)
        if np.any(right):
            u = c[right] + self.mean
            out[right, 0] = u
            out[right, 1] = u * u + self.var
        inner = (piece > 0) & ~right
        if np.any(inner):
            t = piece[inner] - 1
            lo, hi = K[t], K[t + 1]
            x = np.clip((2 * c[inner] - (lo + hi)) / (hi - lo), -1.0, 1.0)
            nodes, w = _cheb(self.vals.shape[1])
            diff = x[:, None] - nodes[None, :]
            # at a node (diff = 0) the limit of the barycentric formula is that node's
            # value: a diff of 1e-300 gives it weight ~1e300 against O(1) for the others,
            # i.e. coefficient 1 to rounding (|w| ≤ 1, so w / 1e-300 is finite)
            coef = w / np.where(diff == 0, 1e-300, diff)
            coef /= coef.sum(1, keepdims=True)
            out[inner] = np.einsum("qj,qjr->qr", coef, self.vals[t])
        return np.maximum(out, 0.0)  # H_r >= 0: clip rounding below zero


def _base_table() -> _Table:
    return _Table(np.zeros(1), np.zeros((0, 3, 2)), 0.0, 0.0, 0)


def _line_points(
    table: _Table, c: np.ndarray, a: float, num_gauss: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Gauss points for ``∫_0^1 · (c + a y) dy`` split at the table's knots.

    Returns ``(q, y, weight, h)`` over the ``P`` sub-intervals of non-zero width only
    (a zero-width piece contributes nothing): ``q`` ``(P,)`` the index into ``c`` each
    belongs to, ``(P, g)`` nodes, their weights (sub-interval width times Gauss weight)
    and ``(P, g, 2)`` table values at ``c + a y``.
    """
    K = table.knots
    if a != 0.0:
        ys = np.clip((K[None, :] - c[:, None]) / a, 0.0, 1.0)
        edges = np.sort(np.concatenate([np.zeros((len(c), 1)), ys, np.ones((len(c), 1))], 1), 1)
    else:
        edges = np.tile([0.0, 1.0], (len(c), 1))
    lo, hi = edges[:, :-1], edges[:, 1:]
    q, s = np.nonzero(hi > lo)
    lo, width = lo[q, s], hi[q, s] - lo[q, s]
    mid = c[q] + a * (lo + width / 2)
    piece = np.searchsorted(K, mid)
    xg, wg = _gauss01(num_gauss)
    y = lo[:, None] + width[:, None] * xg
    pts = c[q, None] + a * y
    h = table.evaluate(pts, np.broadcast_to(piece[:, None], pts.shape))
    return q, y, width[:, None] * wg, h


def _step(table: _Table, a: float) -> _Table:
    """The table of ``s + a u`` (``u ~ U(0, 1)``) from that of ``s``."""
    K = np.unique(np.concatenate([table.knots, table.knots - a]))
    num_terms = table.num_terms + 1
    nodes, _ = _cheb(num_terms + 3)
    lo, hi = K[:-1], K[1:]
    c = ((lo + hi) / 2)[:, None] + ((hi - lo) / 2)[:, None] * nodes[None, :]
    q, _, weight, h = _line_points(table, c.ravel(), a, num_terms // 2 + 2)
    part = np.einsum("pg,pgr->pr", weight, h)
    vals = np.stack([np.bincount(q, part[:, r], c.size) for r in range(2)], -1)
    return _Table(K, vals.reshape(*c.shape, 2), table.mean + a / 2, table.var + a * a / 12,
                  num_terms)  # fmt: skip


def _active_term(table: _Table, b: float, a_ii: float) -> float:
    """``∫_0^1 [H_2(b + a_ii y) − 2 y H_1(b + a_ii y) + y²] dy``."""
    _, y, weight, h = _line_points(table, np.array([b]), a_ii, table.num_terms // 2 + 3)
    integrand = h[..., 1] - 2 * y * h[..., 0] + y * y
    return float(np.sum(weight * np.maximum(integrand, 0.0)))


def _inactive_term(table: _Table, b: float) -> float:
    return float(table.evaluate(np.array([b]))[0, 1])


def _output_terms(
    M_i: np.ndarray, b_i: float, i: int, probs: np.ndarray, max_patterns: int, tol: float
) -> tuple[float, float, int, float]:
    """``(lower, upper, num_patterns, unenumerated_mass)`` of ``E[(ReLU(M_i·x + b_i) − x_i)²]``."""
    others = [int(j) for j in np.flatnonzero(M_i) if j != i and 0 < probs[j]]
    always = [j for j in others if probs[j] >= 1]
    free = [j for j in others if probs[j] < 1]
    p_i = float(probs[i])
    a_ii = float(M_i[i])

    def contribution(table: _Table) -> float:
        inactive = _inactive_term(table, b_i) if p_i < 1 else 0.0
        active = _active_term(table, b_i, a_ii) if p_i > 0 else 0.0
        return (1 - p_i) * inactive + p_i * active

    cache: dict[tuple[int, ...], _Table] = {}

    def table_of(active: tuple[int, ...]) -> _Table:
        if active in cache:
            return cache[active]
        t = _base_table() if not active else _step(table_of(active[:-1]), float(M_i[active[-1]]))
        cache[active] = t
        return t

    base = tuple(always)
    p = np.array([probs[j] for j in free])
    if 2 ** len(free) <= max_patterns:  # exact: every pattern (depth first shares tables)
        total = 0.0
        for mask in range(2 ** len(free)):
            on = [(mask >> t) & 1 for t in range(len(free))]
            prob = math.prod(p[t] if on[t] else 1 - p[t] for t in range(len(free)))
            active = base + tuple(free[t] for t in range(len(free)) if on[t])
            if prob > 0:
                total += prob * contribution(table_of(active))
        return total, total, 2 ** len(free), 0.0
    # certified: best-first over deviations from the most likely pattern
    likely_on = p > 0.5
    delta = np.abs(np.log(p) - np.log1p(-p))
    order = np.argsort(delta, kind="stable")
    log_top = float(np.sum(np.log(np.where(likely_on, p, 1 - p))))
    z_max = b_i + float(np.sum(np.maximum(M_i[others], 0.0))) + max(a_ii, 0.0)
    bound = max(z_max, 0.0) ** 2 + p_i / 3
    # the moment bound B(R) = E[(b_+ + Σ_j m_j x_j)² | R] + p_i/3 (module docstring)
    m = np.maximum(M_i, 0.0)
    m_free = m[free]
    mean0 = max(b_i, 0.0) + m[i] * p_i / 2 + float(np.sum(m[always])) / 2
    var0 = m[i] ** 2 * p_i * (4 - 3 * p_i) / 12 + float(np.sum(m[always] ** 2)) / 12
    total_bound = (
        (mean0 + float(np.sum(m_free * p)) / 2) ** 2
        + var0
        + float(np.sum(m_free**2 * p * (4 - 3 * p))) / 12
        + p_i / 3
    )
    total, mass, count, covered = 0.0, 0.0, 0, 0.0
    heap: list[tuple[float, tuple[int, ...]]] = [(0.0, ())]
    while heap and count < max_patterns:
        cost, dev = heapq.heappop(heap)
        prob = math.exp(log_top - cost)
        flip = {int(order[t]) for t in dev}
        on_mask = np.array([likely_on[t] != (t in flip) for t in range(len(free))], bool)
        active = base + tuple(free[t] for t in range(len(free)) if on_mask[t])
        total += prob * contribution(table_of(active))
        mass += prob
        mean_r = mean0 + float(np.sum(m_free[on_mask])) / 2
        covered += prob * (mean_r**2 + var0 + float(np.sum(m_free[on_mask] ** 2)) / 12 + p_i / 3)
        count += 1
        slack = 16 * (len(free) + count + 4) * _EPS * (total_bound + covered)
        if min((1 - mass) * bound, total_bound - covered + slack) <= tol:
            break
        last = dev[-1] if dev else -1
        if last + 1 < len(free):
            nxt = last + 1
            heapq.heappush(heap, (cost + float(delta[order[nxt]]), (*dev, nxt)))
            if dev:
                swapped = (*dev[:-1], nxt)
                heapq.heappush(
                    heap, (cost - float(delta[order[last]]) + float(delta[order[nxt]]), swapped)
                )
    left = max(1.0 - mass, 0.0) + 4 * count * _EPS
    slack = 16 * (len(free) + count + 4) * _EPS * (total_bound + covered)
    rest = min(left * bound, max(total_bound - covered, 0.0) + slack)
    return total, total + rest, count, left


def _relu_terms(
    M: np.ndarray, b: np.ndarray, probs: np.ndarray, imp: np.ndarray, max_patterns: int,
    tol: float,
) -> tuple[np.ndarray, np.ndarray, int, float]:  # fmt: skip
    """Per-output ``(lower, upper)`` of ``I_i E[(ReLU(M_i·x + b_i) − x_i)²]``, the number
    of patterns and the largest unenumerated mass."""
    n = len(b)
    lows, ups, count, left = np.zeros(n), np.zeros(n), 0, 0.0
    for i in range(n):
        share = tol / n / max(float(imp[i]), 1e-300)
        lo, up, k, q = _output_terms(M[i], float(b[i]), i, probs, max_patterns, share)
        lows[i], ups[i] = imp[i] * lo, imp[i] * up
        count += k
        left = max(left, q)
    return lows, ups, count, left


# --------------------------------------------------------------------------- pairs


_PAIR_OUTER = _make_gauss01(3)  # degree ≤ 3 on each y-piece: exact with margin (degree 5)
_PAIR_INNER = _make_gauss01(2)  # degree ≤ 2 in u on the active interval: exact (degree 3)


def _active_interval(beta: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``[u_0, u_1] = {u ∈ [0, 1] : β + c u > 0}`` (up to its boundary), elementwise.

    The crossing ``−β/c`` is only used clipped to ``[0, 1]``: where ``c`` is tiny it is
    huge (or ``±inf``) and clips to an end; where it lies inside, ``|β| ≤ |c|`` and the
    quotient is accurate to rounding. No quotient enters a value otherwise.
    """
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        cross = np.clip(np.where(c != 0, -beta / np.where(c != 0, c, 1.0), 0.0), 0.0, 1.0)
    flat_on = (c == 0) & (beta > 0)
    u0 = np.where(c > 0, cross, 0.0)
    u1 = np.where(c < 0, cross, np.where(c > 0, 1.0, np.where(flat_on, 1.0, 0.0)))
    return u0, np.maximum(u1, u0)


def _pair_inner(
    beta: np.ndarray, c: np.ndarray, y: np.ndarray, grad: bool
) -> tuple[np.ndarray, ...]:
    """``∫_0^1 (ReLU(β + c u) − y)² du`` and, with ``grad``, ``∫ 1[z > 0] (z − y) du`` and
    ``∫ 1[z > 0] (z − y) u du`` (``z = β + c u``): the active interval by Gauss–Legendre
    (the integrand is a polynomial of degree ≤ 2 there, so 2 nodes are exact), the rest
    ``y²`` times its length. Both parts are non-negative."""
    u0, u1 = _active_interval(beta, c)
    length = u1 - u0
    xg, wg = _PAIR_INNER
    u = u0[..., None] + length[..., None] * xg
    w = length[..., None] * wg
    z = np.maximum(beta[..., None] + c[..., None] * u, 0.0)
    d = z - y[..., None]
    value = np.sum(w * d * d, -1) + (1.0 - length) * y * y
    if not grad:
        return (value,)
    return value, np.sum(w * d, -1), np.sum(w * d * u, -1)


def _pair_terms(
    a: np.ndarray, c: np.ndarray, b: np.ndarray, p_i: np.ndarray, p_j: np.ndarray,
    grad: bool = False,
) -> tuple[np.ndarray, ...]:  # fmt: skip
    r"""``E[(ReLU(a x_i + c x_j + b) − x_i)²]`` for independent sparse ``x_i, x_j``
    (probabilities ``p_i, p_j``), elementwise over broadcast arrays; with ``grad`` also
    its derivatives in ``(a, c, b)``.

    Condition on the activity of ``x_j`` (``c`` or ``0``) and of ``x_i = y``: inactive,
    the term is the inner integral at ``y = 0``; active, it is ``∫_0^1 F(y) dy`` with
    ``F(y) = ∫_0^1 (ReLU(b + a y + c u) − y)² du`` (:func:`_pair_inner`). ``F`` is a
    polynomial of degree ≤ 3 between the knots ``b + a y = 0`` and ``b + a y = −c``
    (where the active ``u``-interval changes form; its ends are linear in ``y`` in
    between), so 3-point Gauss–Legendre on each of the ≤ 3 pieces is exact. Knots are
    ``−b/a`` etc. clipped to ``[0, 1]`` (a tiny ``a`` puts them outside). Derivatives:
    ``∂/∂θ E[(ReLU(z) − y)²] = 2 E[1[z > 0] (z − y) ∂z/∂θ]`` with ``∂z/∂(a, c, b) =
    (y, u, 1)``, by the same rules (a kink misplaced by rounding moves them by a
    rounding-sized amount: they steer the optimiser and carry no tier).
    """
    a, c, b, p_i, p_j = np.broadcast_arrays(
        *(np.asarray(v, np.float64) for v in (a, c, b, p_i, p_j))
    )
    zero = np.zeros_like(a)
    # x_i inactive (y = 0)
    off = [_pair_inner(b, cc, zero, grad) for cc in (zero, c)]
    # x_i active: pieces of y ∈ [0, 1]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        safe = np.where(a != 0, a, 1.0)
        k1 = np.where(a != 0, -b / safe, 0.0)
        k2 = np.where(a != 0, -(b + c) / safe, 0.0)
    edges = np.sort(np.stack([zero, np.clip(k1, 0, 1), np.clip(k2, 0, 1), zero + 1], -1), -1)
    lo, width = edges[..., :-1], np.diff(edges, axis=-1)
    xg, wg = _PAIR_OUTER
    y = (lo[..., None] + width[..., None] * xg).reshape(*a.shape, -1)
    wy = (width[..., None] * wg).reshape(*a.shape, -1)
    beta = b[..., None] + a[..., None] * y
    on = [_pair_inner(beta, cc[..., None] + 0 * y, y, grad) for cc in (zero, c)]
    q = (1 - p_j, p_j)
    value = sum(q[t] * ((1 - p_i) * off[t][0] + p_i * np.sum(wy * on[t][0], -1)) for t in range(2))
    if not grad:
        return (value,)
    db = sum(q[t] * ((1 - p_i) * off[t][1] + p_i * np.sum(wy * on[t][1], -1)) for t in range(2))
    da = p_i * sum(q[t] * np.sum(wy * y * on[t][1], -1) for t in range(2))
    dc = p_j * ((1 - p_i) * off[1][2] + p_i * np.sum(wy * on[1][2], -1))
    return value, 2 * da, 2 * dc, 2 * db


# --------------------------------------------------------------------------- public


def _check_dist(where: str, dist: Any, n: int, name: str = "dist") -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(dist, SparseFeatures):
        raise fail(
            where, name, type(dist).__name__, "a SparseFeatures distribution",
            "The expected loss is defined for the sparse-feature distribution of the toy model.",
        )  # fmt: skip
    if dist.dim != n:
        raise fail(where, name, f"{dist.dim} features", f"{n} features (the model's n)")
    return np.asarray(dist.probs, np.float64), np.asarray(dist.importance, np.float64)


def _check_dists(
    where: str, dist: Any, n: int, members: int | None
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(probs, importance)`` per member: one distribution for all, or a list of one per
    member of an ensemble."""
    if isinstance(dist, list | tuple):
        if members is None:
            raise fail(
                where, "dist", f"a list of {len(dist)} distributions", "one SparseFeatures "
                "for one model", "Pass a list of distributions only with a list of models "
                "(or a stacked ensemble): one per member.",
            )  # fmt: skip
        if len(dist) != members:
            raise fail(
                where, "dist", f"a list of {len(dist)} distributions",
                f"one SparseFeatures per member ({members})",
            )  # fmt: skip
        return [_check_dist(where, d, n, f"dist[{k}]") for k, d in enumerate(dist)]
    one = _check_dist(where, dist, n)
    return [one] * (1 if members is None else members)


def _stack_results(members: tuple[ExpectedLossResult, ...]) -> ExpectedLossResult:
    """One result over an ensemble: arrays with a leading member axis, the weakest tier."""
    from toylab.tiers import weakest

    def arr(name: str) -> np.ndarray:
        return np.array([getattr(m, name) for m in members])

    methods = tuple(dict.fromkeys(m.method for m in members))
    confidences = {m.confidence for m in members}
    return ExpectedLossResult(
        arr("value"), arr("lower"), arr("upper"), arr("error"),
        weakest(*(m.tier for m in members)), " / ".join(methods), members[0].kind,
        arr("per_feature_lower"), arr("per_feature_upper"), arr("num_patterns"),
        arr("unenumerated_mass"), arr("num_samples"),
        confidences.pop() if len(confidences) == 1 else None, ensemble=True, members=members,
    )  # fmt: skip


def _sampled(
    W: np.ndarray, b: np.ndarray, relu: bool, probs: np.ndarray, imp: np.ndarray,
    num_samples: int, seed: int, confidence: float,
) -> tuple[float, float, np.ndarray, np.ndarray]:  # fmt: skip
    from scipy.stats import norm

    rng = np.random.default_rng(seed)
    M = W.T @ W
    n = len(probs)
    chunk = max(1, min(num_samples, 2**22 // max(n, 1)))
    total, total_sq, per = 0.0, 0.0, np.zeros(n)
    done = 0
    while done < num_samples:
        k = min(chunk, num_samples - done)
        active = rng.random((k, n)) < probs
        x = np.where(active, 1.0 - rng.random((k, n)), 0.0)
        out = x @ M + b
        if relu:
            out = np.maximum(out, 0.0)
        err = imp * (out - x) ** 2
        row = err.sum(1)
        total += float(row.sum())
        total_sq += float(np.sum(row * row))
        per += err.sum(0)
        done += k
    mean = total / num_samples
    var = max(total_sq / num_samples - mean * mean, 0.0) * num_samples / max(num_samples - 1, 1)
    half = float(norm.ppf(0.5 + confidence / 2)) * math.sqrt(var / num_samples)
    return mean, half, per / num_samples, np.full(n, np.nan)


def expected_loss(
    model: Any,
    dist: SparseFeatures | Sequence[SparseFeatures],
    *,
    method: str = "auto",
    tol: float = 1e-6,
    max_patterns: int = 256,
    num_samples: int = 200_000,
    seed: int = 0,
    confidence: float = 0.95,
) -> ExpectedLossResult:
    """The expected loss ``Σ_i I_i E[(x'_i − x_i)²]`` of a toy model under ``dist``.

    ``model``: a model or network, or an ensemble (a list of them, or a stacked network);
    ``dist``: one :class:`~toylab.distributions.SparseFeatures` for all members, or (with
    an ensemble) a list of one per member (a sweep over feature probability). An ensemble
    gives one result with a member axis (:class:`ExpectedLossResult`).

    ``method``: ``"auto"`` (exact where every output has at most ``max_patterns`` activity
    patterns; otherwise the certified enclosure with at most ``1024 / n`` patterns per
    output and the Monte Carlo interval are both computed and the narrower is returned:
    ``tier`` and ``method`` say which, so it takes seconds for n up to a few hundred), ``"exact"`` (an error if some output has more),
    ``"certified"`` (the enclosure, width about ``tol``, at most ``max_patterns`` patterns
    per output: a wider enclosure when the budget runs out) or ``"sampled"``
    (``num_samples`` Monte Carlo draws with ``numpy.random.default_rng(seed)``, a
    ``confidence`` normal interval). The linear model's closed form is always exact.

    >>> import numpy as np
    >>> from toylab.distributions import SparseFeatures
    >>> from toylab.network import Dense, Network, Tied
    >>> net = Network((Dense(np.zeros((2, 1)), np.zeros(1)), Tied(0, np.zeros(2))),
    ...               ("identity", "relu"))
    >>> round(expected_loss(net, SparseFeatures((0.3, 0.6))).value, 12)  # W = 0: Σ p_i / 3
    0.3
    """
    where = "expected_loss"
    method = check_choice(where, "method", method, ("auto", "exact", "certified", "sampled"))
    tol = check_float(where, "tol", tol, positive=True)
    max_patterns = check_int(where, "max_patterns", max_patterns, minimum=1)
    num_samples = check_int(where, "num_samples", num_samples, minimum=2)
    seed = check_int(where, "seed", seed, minimum=0)
    confidence = check_float(where, "confidence", confidence, positive=True, maximum=0.999999)
    W, b, act, ensemble = superposition_weights(model, where)
    n = W.shape[-1]
    dists = _check_dists(where, dist, n, len(W) if ensemble else None)

    def one(Wk: np.ndarray, bk: np.ndarray, d: tuple[np.ndarray, np.ndarray]) -> ExpectedLossResult:
        return _expected_loss_one(
            where, Wk, bk, act == "relu", d[0], d[1], method, tol, max_patterns, num_samples,
            seed, confidence,
        )  # fmt: skip

    if not ensemble:
        return one(W, b, dists[0])
    return _stack_results(tuple(one(W[k], b[k], dists[k]) for k in range(len(W))))


def _expected_loss_one(
    where: str, W: np.ndarray, b: np.ndarray, relu: bool, probs: np.ndarray, imp: np.ndarray,
    method: str, tol: float, max_patterns: int, num_samples: int, seed: int, confidence: float,
) -> ExpectedLossResult:  # fmt: skip
    n = W.shape[1]
    kind = "relu" if relu else "linear"
    if method == "sampled":
        mean, half, per, _ = _sampled(W, b, relu, probs, imp, num_samples, seed, confidence)
        return ExpectedLossResult(
            mean, mean - half, mean + half, half, "sampled", "monte carlo", kind, per, per,
            num_samples=num_samples, confidence=confidence,
        )  # fmt: skip
    M = W.T @ W
    if not relu:
        mu, var = probs / 2, probs * (4 - 3 * probs) / 12
        C = M - np.eye(n)
        per = imp * ((C @ mu + b) ** 2 + (C * C) @ var)
        value = math.fsum(per)
        err = 8 * n * _EPS * math.fsum(imp * ((np.abs(C) @ mu + np.abs(b)) ** 2 + (C * C) @ var))
        return ExpectedLossResult(
            value, value - err, value + err, err, "exact", "closed form", kind, per, per
        )
    free_counts = [
        sum(1 for j in np.flatnonzero(M[i]) if j != i and 0 < probs[j] < 1) for i in range(n)
    ]
    exact = all(2**c <= max_patterns for c in free_counts)
    if method == "auto" and not exact:
        budget = max(1, min(max_patterns, _AUTO_WORK // n))
        cert = _expected_loss_one(
            where, W, b, relu, probs, imp, "certified", tol, budget, num_samples, seed,
            confidence,
        )  # fmt: skip
        samp = _expected_loss_one(
            where, W, b, relu, probs, imp, "sampled", tol, budget, num_samples, seed,
            confidence,
        )  # fmt: skip
        pick = cert if cert.upper - cert.lower <= samp.upper - samp.lower else samp
        why = (
            f"auto: the certified enclosure ({budget} patterns per output, width "
            f"{cert.upper - cert.lower:.3g}) against the Monte Carlo interval (width "
            f"{samp.upper - samp.lower:.3g}): the narrower"
        )
        return dataclasses.replace(pick, method=f"{pick.method} ({why})")
    if method == "exact" and not exact:
        raise fail(
            where, "max_patterns", max_patterns,
            f">= {2 ** max(free_counts)} for an exact enumeration (an output interacts with "
            f"{max(free_counts)} features)",
            "Raise max_patterns, or use method='certified' or 'auto'.",
        )  # fmt: skip
    lows, ups, count, left = _relu_terms(M, b, probs, imp, max_patterns, tol)
    scale = math.fsum(
        imp[i] * (max(float(b[i]) + float(np.sum(np.maximum(M[i], 0.0))), 0.0) ** 2 + 1.0)
        for i in range(n)
    )
    rounding = 64 * (n + 4) * _EPS * scale
    lower, upper = math.fsum(lows), math.fsum(ups)
    if left == 0.0 and method != "certified":
        return ExpectedLossResult(
            lower, lower - rounding, lower + rounding, rounding, "exact", "enumeration",
            kind, lows, ups, num_patterns=count,
        )  # fmt: skip
    lower, upper = lower - rounding, upper + rounding
    return ExpectedLossResult(
        (lower + upper) / 2, lower, upper, (upper - lower) / 2, "certified",
        "enumeration in decreasing probability", kind, lows, ups, num_patterns=count,
        unenumerated_mass=left,
    )  # fmt: skip
