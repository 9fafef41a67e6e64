r"""Matching trained neurons to handwritten ones, and comparing their weights.

**Symmetries.** A ReLU network keeps its function when the units of a hidden layer
are permuted (with the next layer's rows), and when a unit's incoming weights and
bias are multiplied by :math:`c > 0` and its outgoing weights by :math:`1/c`
(:math:`\mathrm{relu}(cz) = c\,\mathrm{relu}(z)`; the same holds for leaky_relu
and abs, and for identity; not for hardtanh or smooth activations). A comparison
of two networks must therefore factor out one permutation and one positive scale
per hidden unit.

:func:`match_neurons` finds them from the data: the Pearson correlation of two
units is invariant to positive scaling, so for every hidden layer it computes the
exact correlation matrix :math:`\rho_{ij} = \mathrm{Cov}(a_i, b_j) /
\sqrt{\mathrm{Var}(a_i)\mathrm{Var}(b_j)}` under the distribution, and solves the
assignment problem :math:`\max_\pi \sum_i \rho_{i\pi(i)}`
(:func:`scipy.optimize.linear_sum_assignment`). The scale of a matched pair is the
least-squares :math:`c = E[a b] / E[b^2]` (exactly :math:`c` when :math:`a = c\,b`).
Pairs with :math:`\rho` below ``threshold`` are reported as unmatched.

**Dead and duplicate units** cannot be identified from the data, and are flagged
instead of being matched by accident:

* *dead* (or constant): :math:`\mathrm{Var}(a_i) \le \varepsilon\,E[a_i^2] + \delta_i`,
  with :math:`\delta_i = e(1 + 2|E a_i| + e)` the effect on the variance of the
  moments' numerical error ``e`` (the analysis' rounding and truncation parts; its
  ``band`` part, a worst-case bound for slivers next to nearly coincident breakpoint
  lines, stays in ``error`` and ``tier`` but does not make live units dead). A dead
  unit has no correlation with anything (its row is 0), is never matched, and is listed
  in ``dead_a`` / ``dead_b``;
* *duplicates*: live units of one network whose mutual correlation is at least
  ``1 - duplicate_tol`` (one is a positive multiple of the other, to that tolerance);
  their partners are interchangeable, so which one is matched is not determined by the
  data. They are listed as groups in ``duplicates_a`` / ``duplicates_b``.

**Exact moments.** Both networks are stacked into one joint network
(:func:`toylab.circuits.joint_network`) and analysed by :func:`toylab.exact.analyze`:
the joint layer's second moments hold :math:`E[a b^\top]` as a block. The result
carries the analysis' ``tier`` and ``error`` (``"exact"`` on finite domains and, up to
rounding, on Gaussian mixtures; ``"estimated"`` for densities integrated by
quadrature).

:func:`compare_weights` then expresses ``model_a`` in ``model_b``'s frame (undoing
the permutation and the scales: :func:`align`) and compares every unit's incoming
weights and bias: cosine and relative error per neuron.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from toylab._errors import NotApplicable, ToylabError, fail
from toylab._validate import check_float
from toylab.circuits.distance import joint_network
from toylab.exact import analyze
from toylab.network import Network, as_network
from toylab.tiers import Tier

__all__ = [
    "JointMoments",
    "LayerMatch",
    "MatchResult",
    "UnitCorrelation",
    "WeightComparison",
    "align",
    "compare_weights",
    "dead_units",
    "duplicate_groups",
    "joint_moments",
    "match_from_moments",
    "match_neurons",
    "unit_correlation",
]

SCALE_SYMMETRIC = frozenset({"relu", "leaky_relu", "abs", "identity"})


@dataclasses.dataclass(frozen=True)
class LayerMatch:
    """The matching of one hidden layer.

    ``perm[i]``: the unit of ``b`` matched to unit ``i`` of ``a`` (``-1``: none);
    ``corr[i]``: the correlation of unit ``i`` with its best assignable partner (0 for
    a dead unit); ``scale[i]``: ``c`` with ``a_i ≈ c b_perm[i]`` (``nan`` if unmatched);
    ``correlation``: the full ``(n_a, n_b)`` matrix (rows and columns of dead units are
    0); ``unmatched_a``/``unmatched_b``: units with no partner (dead ones included);
    ``dead_a``/``dead_b``: dead or constant units; ``duplicates_a``/``duplicates_b``:
    groups of units of one network that are positive multiples of each other (see the
    module docstring).
    """

    layer: str
    perm: np.ndarray
    corr: np.ndarray
    scale: np.ndarray
    correlation: np.ndarray
    unmatched_a: tuple[int, ...]
    unmatched_b: tuple[int, ...]
    dead_a: tuple[int, ...] = ()
    dead_b: tuple[int, ...] = ()
    duplicates_a: tuple[tuple[int, ...], ...] = ()
    duplicates_b: tuple[tuple[int, ...], ...] = ()


@dataclasses.dataclass(frozen=True)
class MatchResult:
    """Matches for every hidden layer (``layers[k]`` for ``"hidden_k"``).

    ``tier`` and ``error`` are those of the exact analysis of the joint network (the
    error bounds every moment the correlations and scales are computed from).
    """

    layers: tuple[LayerMatch, ...]
    threshold: float
    tier: Tier
    error: float = 0.0
    method: str = ""

    def pairs(self) -> list[tuple[str, str, float, float]]:
        """``(address in a, address in b, correlation, scale)`` for every matched pair."""
        out = []
        for lm in self.layers:
            for i, j in enumerate(lm.perm):
                if j >= 0:
                    out.append((f"{lm.layer}:{i}", f"{lm.layer}:{j}", float(lm.corr[i]),
                                float(lm.scale[i])))  # fmt: skip
        return out


def duplicate_groups(corr: np.ndarray, live: np.ndarray, cut: float) -> tuple[tuple[int, ...], ...]:
    """Connected groups (size >= 2) of live units with mutual correlation >= ``cut``."""
    n = len(live)
    seen = np.zeros(n, bool)
    out = []
    for i in range(n):
        if seen[i] or not live[i]:
            continue
        group, stack = [], [i]
        seen[i] = True
        while stack:
            u = stack.pop()
            group.append(u)
            for v in np.nonzero(live & ~seen & (corr[u] >= cut))[0]:
                seen[v] = True
                stack.append(int(v))
        if len(group) > 1:
            out.append(tuple(sorted(group)))
    return tuple(out)


def dead_units(mean: Any, second_moment: Any, error: Any, eps: float = 1e-12) -> np.ndarray:
    r"""Which units are dead (constant) under the distribution, one bool per unit.

    Unit ``i`` is dead when :math:`\mathrm{Var}(a_i) \le \varepsilon\,E[a_i^2] + \delta_i`
    with :math:`\delta_i = e(1 + 2|E a_i| + e)`, the effect on the variance of an absolute
    error ``e`` in the moments (see the module docstring): ``mean`` is ``E[a]``,
    ``second_moment`` the diagonal ``E[a_i^2]`` (same shape), ``error`` the moments'
    numerical error (an analysis' rounding and truncation parts; a number, or an array
    that broadcasts against ``mean``).
    """
    m = np.asarray(mean, np.float64)
    s = np.asarray(second_moment, np.float64)
    var = s - m**2
    return ~(var > eps * s + error * (1.0 + 2.0 * np.abs(m) + error))


@dataclasses.dataclass(frozen=True, eq=False)
class UnitCorrelation:
    r"""Exact correlations of a set of units from their first and second moments.

    ``live[i]``: unit ``i`` is not dead (module docstring: :math:`\mathrm{Var}(a_i) >
    \varepsilon E[a_i^2] + \delta_i`); ``cov``: the covariance matrix;
    ``corr``: the correlation matrix, clipped to ``[-1, 1]``, with rows and columns of
    dead units 0; ``corr_error``: a bound on each entry's error caused by a numerical
    error ``e`` of every moment (the covariance is off by at most
    :math:`e(1 + |E a_i| + |E a_j| + e)` and each variance by :math:`\delta_i`; the
    bound takes the worst corner of :math:`c / \sqrt{v_i v_j}`, and a sign change where
    the covariance is within its error of 0; ``inf`` where a variance could be 0).
    """

    live: np.ndarray
    cov: np.ndarray
    corr: np.ndarray
    corr_error: np.ndarray


def unit_correlation(
    mean: np.ndarray, second: np.ndarray, error: float, eps: float
) -> UnitCorrelation:
    """:class:`UnitCorrelation` of units with means ``mean`` and second moments
    ``second`` (``E[a a^T]``), each off by at most ``error``; ``eps`` the relative
    variance below which a unit is dead."""
    m = np.asarray(mean, np.float64)
    s = np.asarray(second, np.float64)
    cov = s - np.outer(m, m)
    var = np.diag(cov).copy()
    dvar = error * (1.0 + 2.0 * np.abs(m) + error)
    live = ~dead_units(m, np.diag(s), error, eps)
    sd = np.sqrt(np.where(live, var, 1.0))
    corr = np.clip(cov / np.outer(sd, sd), -1.0, 1.0)
    both = np.outer(live, live)
    corr = np.where(both, corr, 0.0)
    dcov = error * (1.0 + np.abs(m)[:, None] + np.abs(m)[None, :] + error)
    with np.errstate(divide="ignore", invalid="ignore"):
        lo_v = np.sqrt(np.outer(var - dvar, var - dvar))
        hi_v = np.sqrt(np.outer(var + dvar, var + dvar))
        ac = np.abs(cov)
        rho = np.abs(corr)
        up = np.minimum((ac + dcov) / lo_v, 1.0) - rho
        down = rho - np.maximum(ac - dcov, 0.0) / hi_v
        # a covariance within its error of 0 may change sign
        flip = np.where(ac <= dcov, rho + (dcov - ac) / lo_v, 0.0)
        bound = np.maximum(np.maximum(up, down), flip)
    ok = both & (var - dvar > 0)[:, None] & (var - dvar > 0)[None, :]
    corr_error = np.where(ok, np.maximum(bound, 0.0), np.where(both, np.inf, 0.0))
    return UnitCorrelation(live, cov, corr, corr_error)


@dataclasses.dataclass(frozen=True, eq=False)
class JointMoments:
    """Exact moments of two networks' hidden units from one analysis of their joint network.

    ``layer(key)`` gives ``(mean, second)`` of ``a``'s units of ``key`` followed by
    ``b``'s (``widths_a[key]`` of them first); ``numerical`` is the analysis' rounding
    and truncation error (the part of ``error`` that applies to every moment; the
    ``band`` part bounds slivers next to coincident breakpoint lines, see the module
    docstring); ``tier``, ``error`` and ``method`` are the analysis'.
    """

    analysis: Any
    columns_a: dict[str, np.ndarray]
    columns_b: dict[str, np.ndarray]
    numerical: float

    @property
    def tier(self) -> Tier:
        return self.analysis.tier  # type: ignore[no-any-return]

    @property
    def error(self) -> float:
        return float(self.analysis.error)

    @property
    def method(self) -> str:
        return str(self.analysis.method)

    def layer(self, key: str) -> tuple[np.ndarray, np.ndarray, int]:
        """``(mean, second moments, n_a)`` of ``a``'s then ``b``'s units of layer ``key``."""
        mom = self.analysis.moments[key]
        cols = np.concatenate([self.columns_a[key], self.columns_b[key]])
        return mom.mean[cols], mom.second_moment[np.ix_(cols, cols)], len(self.columns_a[key])


def joint_moments(
    model_a: Any, model_b: Any, dist: Any, *, where: str, tol: float = 1e-9, rtol: float = 1e-9
) -> JointMoments:
    """Analyse the joint network of two networks of equal depth (:class:`JointMoments`)."""
    na, nb = as_network(model_a, where), as_network(model_b, where)
    if na.num_hidden != nb.num_hidden:
        raise fail(
            where, "model_b", repr(nb), f"a network with {na.num_hidden} hidden layers, like "
            "model_a", "Matching pairs layer k with layer k, so the depths must agree.",
        )  # fmt: skip
    joint = joint_network(na, nb, where=where)
    try:
        res = analyze(joint.network, dist, tol=tol, rtol=rtol)
    except NotApplicable as err:
        raise NotApplicable(f"{where}: no exact moments for the joint network ({err})") from None
    numerical = max(res.errors.get("rounding", 0.0), res.errors.get("truncation", 0.0))
    return JointMoments(res, joint.columns["a"], joint.columns["b"], numerical)


def _match_layer(
    key: str, mean: np.ndarray, second: np.ndarray, na: int,
    error: float, threshold: float, eps: float, duplicate_tol: float,
) -> LayerMatch:  # fmt: skip
    uc = unit_correlation(mean, second, error, eps)
    live, corr, s = uc.live, uc.corr, second
    nb = len(mean) - na
    cab = corr[:na, na:]
    live_a, live_b = np.nonzero(live[:na])[0], np.nonzero(live[na:])[0]
    perm = np.full(na, -1)
    best = np.zeros(na)
    scale = np.full(na, np.nan)
    if len(live_a) and len(live_b):
        rows, cols_ = linear_sum_assignment(-cab[np.ix_(live_a, live_b)])
        for r, c in zip(live_a[rows], live_b[cols_], strict=True):
            best[r] = cab[r, c]
            if cab[r, c] >= threshold:
                perm[r] = c
                scale[r] = s[r, na + c] / s[na + c, na + c]
    matched_b = set(perm[perm >= 0].tolist())
    cut = 1.0 - duplicate_tol
    return LayerMatch(
        key,
        perm,
        best,
        scale,
        cab,
        tuple(int(i) for i in np.nonzero(perm < 0)[0]),
        tuple(j for j in range(nb) if j not in matched_b),
        tuple(int(i) for i in np.nonzero(~live[:na])[0]),
        tuple(int(j) for j in np.nonzero(~live[na:])[0]),
        duplicate_groups(corr[:na, :na], live[:na], cut),
        duplicate_groups(corr[na:, na:], live[na:], cut),
    )


def match_from_moments(
    jm: JointMoments, num_hidden: int, *, threshold: float, eps: float, duplicate_tol: float
) -> MatchResult:
    """:func:`match_neurons`' result from an already computed :class:`JointMoments`."""
    out = []
    for k in range(num_hidden):
        key = f"hidden_{k}"
        mean, second, na = jm.layer(key)
        out.append(_match_layer(key, mean, second, na, jm.numerical, threshold, eps, duplicate_tol))
    return MatchResult(tuple(out), threshold, jm.tier, jm.error, jm.method)


def match_neurons(
    model_a: Any,
    model_b: Any,
    dist: Any,
    *,
    threshold: float = 0.9,
    eps: float = 1e-12,
    duplicate_tol: float = 1e-9,
    tol: float = 1e-9,
    rtol: float = 1e-9,
) -> MatchResult:
    """Best assignment of ``model_a``'s hidden units to ``model_b``'s (module docstring).

    ``eps`` is the relative variance below which a unit counts as dead (constant),
    ``duplicate_tol`` how close to 1 a correlation within one network makes two units
    duplicates; ``tol``/``rtol`` are passed to :func:`toylab.exact.analyze`.
    """
    where = "match_neurons"
    threshold = check_float(where, "threshold", threshold, minimum=-1.0, maximum=1.0)
    eps = check_float(where, "eps", eps, nonneg=True)
    duplicate_tol = check_float(where, "duplicate_tol", duplicate_tol, nonneg=True)
    jm = joint_moments(model_a, model_b, dist, where=where, tol=tol, rtol=rtol)
    num_hidden = as_network(model_a, where).num_hidden
    return match_from_moments(
        jm, num_hidden, threshold=threshold, eps=eps, duplicate_tol=duplicate_tol
    )


def _frames(match: MatchResult, net: Network) -> list[tuple[np.ndarray, np.ndarray]]:
    if not isinstance(match, MatchResult):
        raise fail("align", "match", type(match).__name__, "a MatchResult from match_neurons")
    if len(match.layers) != net.num_hidden:
        raise fail(
            "align", "match", f"a match of {len(match.layers)} layers",
            f"a match of model_a's {net.num_hidden} hidden layers",
        )  # fmt: skip
    frames = []
    widths = net.widths
    for lm in match.layers:
        if len(lm.perm) != widths[lm.layer]:
            raise fail(
                "align", "match", f"{len(lm.perm)} units in {lm.layer}",
                f"model_a's {widths[lm.layer]} units",
            )  # fmt: skip
        if np.any(lm.perm < 0):
            raise ToylabError(
                f"align: layer {lm.layer!r} has unmatched units {list(lm.unmatched_a)} (dead: "
                f"{list(lm.dead_a)}); align needs a complete matching (lower the threshold, or "
                "compare matched units only)."
            )
        frames.append((lm.perm, lm.scale))
    return frames


def align(model_a: Any, match: MatchResult) -> Any:
    r"""``model_a`` rewritten in ``model_b``'s frame: same function, b's unit order and scales.

    Unit ``i`` of layer ``k`` (matched to ``j = perm[i]`` with scale ``s_i``) becomes
    unit ``j`` with incoming weights and bias divided by ``s_i`` and outgoing weights
    multiplied by ``s_i`` (exact for positively homogeneous activations). Returns a
    network for a network and a model of the same class for a model, in ``model_a``'s
    dtype (the arithmetic is float64).
    """
    net = as_network(model_a, "align")
    if net.tied:
        raise fail("align", "model_a", repr(net), "an untied network (tied weights cannot be "
                   "rescaled unit by unit)")  # fmt: skip
    acts = list(net.hidden_activations)
    if any(a not in SCALE_SYMMETRIC for a in acts):
        raise ToylabError(
            f"align: rescaling units is exact only for {sorted(SCALE_SYMMETRIC)}, got {acts}."
        )
    frames = _frames(match, net)
    layers = net.dense_layers(np.float64)
    ws, bs = [w.copy() for w, _ in layers], [b.copy() for _, b in layers]
    for k, (perm, scale) in enumerate(frames):
        if np.any(~(scale > 0)):
            raise ToylabError(f"align: layer hidden_{k} has non-positive scales {scale}.")
        inv = np.argsort(perm)
        ws[k] = (ws[k] / scale)[:, inv]
        bs[k] = (bs[k] / scale)[inv]
        ws[k + 1] = (ws[k + 1] * scale[:, None])[inv]
    out = Network.from_weights(
        ws, bs, tuple(acts), output_activation=net.output_activation, dtype=net.dtype
    )
    return out if isinstance(model_a, Network) else model_a.with_network(out)


@dataclasses.dataclass(frozen=True)
class WeightComparison:
    """Per-neuron weight comparison after alignment.

    ``cosine[layer][j]`` and ``relative_error[layer][j]`` compare unit ``j`` of
    ``model_b`` with its aligned partner in ``model_a`` (incoming weights and bias as
    one vector); ``layer`` runs over ``"hidden_k"`` and ``"output"``. ``aligned`` is
    :func:`align`'s network or model.
    """

    cosine: dict[str, np.ndarray]
    relative_error: dict[str, np.ndarray]
    aligned: Any


def compare_weights(model_a: Any, model_b: Any, match: MatchResult) -> WeightComparison:
    """Compare weights unit by unit after undoing permutations and scales (see :func:`align`)."""
    aligned = align(model_a, match)
    la = as_network(aligned, "compare_weights").dense_layers(np.float64)
    lb = as_network(model_b, "compare_weights").untied().dense_layers(np.float64)
    if [w.shape for w, _ in la] != [w.shape for w, _ in lb]:
        raise fail(
            "compare_weights", "model_b", [w.shape for w, _ in lb],
            f"the layer shapes of model_a, {[w.shape for w, _ in la]}",
        )  # fmt: skip
    cos, rel = {}, {}
    for k, ((wa, ba), (wb, bb)) in enumerate(zip(la, lb, strict=True)):
        key = "output" if k == len(la) - 1 else f"hidden_{k}"
        va = np.vstack([wa, ba[None]])
        vb = np.vstack([wb, bb[None]])
        na, nb = np.linalg.norm(va, axis=0), np.linalg.norm(vb, axis=0)
        cos[key] = (va * vb).sum(0) / np.maximum(na * nb, 1e-300)
        rel[key] = np.linalg.norm(va - vb, axis=0) / np.maximum(nb, 1e-300)
    return WeightComparison(cos, rel, aligned)
