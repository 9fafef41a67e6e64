r"""Matching units across an ensemble of N seeds, exactly, against chance.

:func:`match_ensemble` compares the hidden units of N networks trained on one
distribution (a toylab run, or a list of models) through their **exact correlations**
under the distribution, as :func:`toylab.circuits.match_neurons` does for two: the two
networks are stacked into one joint network (:func:`toylab.circuits.joint_network`)
and one :func:`toylab.exact.analyze` gives every cross moment :math:`E[a_i b_j]`
(:func:`toylab.circuits.matching.joint_moments`); dead and duplicate units are
detected by the same code (:func:`toylab.circuits.matching.unit_correlation`,
:func:`~toylab.circuits.matching.duplicate_groups`).

**Which pairs are analysed** (``scheme``):

* ``"star"`` (default): every member against the ``reference`` member, N - 1 joint
  analyses. Measured (``benchmarks/universality_matching.py``, trained nets on two
  blobs, a heavily shared 2-core machine): 2-8-8-2 0.1-0.2 s per analysis, 64 seeds in
  10-20 s, 256 in under a minute; 2-16-16-2 64 seeds in 43 s. The chance baselines add
  ``2 * baseline_size`` analyses (85 s in all for 64 seeds of 2-16-16-2);
* ``"all"``: every pair, N(N-1)/2 analyses: for 64 seeds 2016, about 400 s (2-8-8-2)
  or 40 min (2-16-16-2) extrapolated from 16 and 8 seeds; for 256 seeds hours. It makes
  the families below a clustering of all units rather than a grouping around the
  reference's units, so use it on tens of seeds.

**One-to-one matching.** For each analysed pair ``(m, r)`` and hidden layer,
``matches[(m, r)]`` is :func:`~toylab.circuits.match_neurons`' :class:`MatchResult`
with ``a`` = member ``m`` and ``b`` = member ``r``: the optimal assignment
(:func:`scipy.optimize.linear_sum_assignment`) of correlations, pairs below
``threshold`` unmatched, positive scales, dead units and duplicate groups.

**Many-to-one matching (splits).** A unit :math:`y` of one member is *split* in
another member when a nonnegative combination of two of its units explains it,

.. math:: R^2 = \max_{\alpha, \beta \ge 0} 1 - \frac{\mathrm{Var}(y - \alpha b_j -
   \beta b_k)}{\mathrm{Var}(y)} = \frac{c^\top \Sigma^{-1} c}{\mathrm{Var}(y)}
   \ge t_{\mathrm{split}},

(:math:`c = (\mathrm{Cov}(y, b_j), \mathrm{Cov}(y, b_k))`, :math:`\Sigma` the
covariance of :math:`(b_j, b_k)`; the closed form holds when both unconstrained
weights :math:`\Sigma^{-1} c` are positive, otherwise the optimum uses one unit and is
no split), while no single unit does: :math:`\max_j \max(\rho_{yj}, 0)^2 <
t_{\mathrm{split}}` (a nonnegative multiple of one unit explains
:math:`\max(\rho, 0)^2`). All moments are the joint analysis' exact second moments.
For example a second-layer unit :math:`\mathrm{relu}(h_1 + h_2)` with first-layer
ReLUs :math:`h_1, h_2 \ge 0` equals :math:`h_1 + h_2`, so it is split in a network
holding :math:`h_1` and :math:`h_2` as separate second-layer units. Both directions of
every analysed pair are searched; ``splits`` lists them (:class:`Split`). On 2-D inputs
many first-layer units are such splits in the weak sense (two ReLUs of neighbouring
directions add up to a third at :math:`R^2 \ge 0.95` while one alone reaches 0.9):
``best_single_r2`` tells these apart from units no single unit matches at all
(:meth:`EnsembleMatch.summary` counts both).

**Families** of units that recur (:class:`Family`), per hidden layer, over live units
only: with ``"star"``, each live unit ``u`` of the reference together with the unit of
every member matched one-to-one to it (correlation at least ``threshold``); only the
correlations with the reference are known, so ``mean_correlation`` averages those.
With ``"all"``, average-linkage clustering of all live units of all members on the
distance :math:`1 - \rho` (every pair's correlation is known exactly), cut at
:math:`1 - t`; ``mean_correlation`` is the mean correlation over the family's pairs of
units from different members. Families that occur in at least two members are kept,
each with the ``fraction`` of members where it occurs and its units' canonical
addresses (:mod:`toylab.neurons`), most frequent first.

**Scores and baselines.** A unit's *best-match correlation* is its largest
correlation with any live unit of the reference (the one-to-one assignment can only be
lower). ``scores`` holds, per hidden layer, the distribution of the best-match
correlations of the live units of all non-reference members (``"trained"``) and of
chance networks matched against the same reference (``baseline_size`` of each kind,
standing in for non-reference members spread evenly over the ensemble)
(:mod:`toylab.universality.baselines`): ``"init"`` (random initialisations of the same
architecture with the run's ``[model] init`` settings) and ``"shuffle"`` (each
non-reference member with every layer's weights shuffled within the layer). Each
:class:`ScoreDistribution` gives quantiles; :class:`LayerScores` gives, per baseline,
the fraction of trained units above the baseline's 95th percentile (about 0.05 if
trained networks were no more similar than chance).

**Tiers.** Every correlation comes from an exact analysis: ``"exact"`` on finite
domains and, up to rounding, on Gaussian mixtures (``"certified"`` when the
integration box's truncation bound exceeds rounding; ``"estimated"`` for densities
integrated by quadrature). Each result carries the weakest tier of the analyses it
uses (:func:`toylab.tiers.weakest`); ``error`` of a correlation score is a bound on the
error of each correlation caused by the moments' numerical error
(:class:`~toylab.circuits.matching.UnitCorrelation`), that of a split's :math:`R^2` or
a family the analyses' moment error bound. Quantiles and fractions of exactly computed
correlations are computed exactly (they carry the correlations' tier and error).
Where no exact analysis applies (inputs of more than two dimensions, smooth
activations) :class:`toylab.NotApplicable` is raised.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from toylab._errors import ToylabError, fail
from toylab._validate import check_choice, check_float, check_int, is_int
from toylab.circuits.matching import (
    MatchResult,
    duplicate_groups,
    joint_moments,
    match_from_moments,
    unit_correlation,
)
from toylab.network import Network, as_network
from toylab.neurons import NeuronId
from toylab.tiers import Tier, weakest
from toylab.universality.baselines import default_model_config, init_networks, shuffle_layers

__all__ = [
    "BASELINES",
    "EnsembleMatch",
    "Family",
    "LayerScores",
    "ScoreDistribution",
    "Split",
    "distribution_groups",
    "match_ensemble",
]

BASELINES = ("init", "shuffle")
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


# --------------------------------------------------------------------------- results


@dataclasses.dataclass(frozen=True, eq=False)
class Split:
    """Unit ``unit`` of member ``member`` is a nonnegative combination of units ``parts``
    of member ``other`` (module docstring): ``unit ≈ const + coefficients[0] part_0 +
    coefficients[1] part_1`` with ``r2`` of its variance explained, while the best single
    unit explains only ``best_single_r2``. Addresses are canonical (``"hidden_1:3"``).
    ``error`` bounds the moments the R² is computed from; ``tier`` is the analysis'."""

    layer: str
    member: int
    unit: str
    other: int
    parts: tuple[str, str]
    coefficients: tuple[float, float]
    r2: float
    best_single_r2: float
    tier: Tier
    error: float


@dataclasses.dataclass(frozen=True, eq=False)
class Family:
    """Units of several members that compute the same function up to scale (module
    docstring). ``units``: ``(member, address)`` pairs; ``fraction``: the fraction of the
    ensemble's members holding a unit of the family; ``mean_correlation`` /
    ``min_correlation``: over the pairs of units whose correlation was analysed (with
    ``"star"``: each unit with the reference's); ``tier`` and ``error`` those of the
    correlations (``error`` bounds each correlation's error)."""

    layer: str
    units: tuple[tuple[int, str], ...]
    fraction: float
    mean_correlation: float
    min_correlation: float
    tier: Tier
    error: float

    @property
    def members(self) -> tuple[int, ...]:
        return tuple(sorted({m for m, _ in self.units}))


@dataclasses.dataclass(frozen=True, eq=False)
class ScoreDistribution:
    """Best-match correlations of one kind of network (``"trained"``, ``"init"``,
    ``"shuffle"``) in one layer: ``values`` (one per live unit, sorted), ``quantiles``
    at ``QUANTILES`` (0.05, 0.25, 0.5, 0.75, 0.95; linear interpolation), ``median``,
    ``num_dead`` units left out; ``error`` bounds each value's error (``inf`` if a
    variance could not be bounded away from 0), ``tier`` is the weakest analysis'."""

    name: str
    values: np.ndarray
    quantiles: np.ndarray
    num_dead: int
    tier: Tier
    error: float
    method: str

    @property
    def median(self) -> float:
        return float(self.quantiles[2])


@dataclasses.dataclass(frozen=True, eq=False)
class LayerScores:
    """Trained best-match correlations of one layer against each baseline.

    ``above[name]``: the fraction of trained values above the 95th percentile of
    baseline ``name`` (0.05 expected if trained units were no more similar than
    chance); its ``tier`` is the weakest of both distributions', and it is exact in
    that tier when no trained value lies within ``error`` of the percentile
    (``ambiguous[name]`` counts those that do)."""

    layer: str
    trained: ScoreDistribution
    baselines: dict[str, ScoreDistribution]
    above: dict[str, float]
    ambiguous: dict[str, int]
    tier: Tier
    error: float


@dataclasses.dataclass(frozen=True, eq=False)
class EnsembleMatch:
    """The matching of an ensemble (module docstring).

    ``members``: the matched members (run indices, or positions in the list);
    ``reference``: the reference member; ``layers``: the hidden layer keys;
    ``matches[(m, r)]``: the :class:`~toylab.circuits.MatchResult` of member ``m`` (as
    ``a``) against member ``r`` (as ``b``) for every analysed pair (``"star"``: ``r``
    is the reference); ``dead[m]`` / ``duplicates[m]``: member ``m``'s dead units and
    groups of duplicate units (addresses); ``splits``, ``families``, ``scores`` (one
    :class:`LayerScores` per layer); ``threshold`` / ``split_threshold``; ``tier``,
    ``error``: the weakest tier and largest moment error of all analyses (trained and
    baseline); ``method`` says how it was computed; ``num_analyses`` counts the joint
    analyses (baselines included)."""

    members: tuple[int, ...]
    reference: int
    layers: tuple[str, ...]
    scheme: str
    matches: dict[tuple[int, int], MatchResult]
    dead: dict[int, tuple[str, ...]]
    duplicates: dict[int, tuple[tuple[str, ...], ...]]
    splits: tuple[Split, ...]
    families: tuple[Family, ...]
    scores: tuple[LayerScores, ...]
    threshold: float
    split_threshold: float
    tier: Tier
    error: float
    method: str
    num_analyses: int

    def partner(self, member: int, address: str) -> tuple[str, float] | None:
        """The reference unit matched one-to-one to ``address`` of ``member`` and the
        correlation, or ``None`` (unmatched, dead, or the pair was not analysed)."""
        nid = NeuronId.parse(address)
        if member == self.reference:
            return address, 1.0
        pair = self.matches.get((member, self.reference))  # the reference is always "b"
        if pair is None or nid.pre or not nid.layer.startswith("hidden_"):
            return None
        lm = pair.layers[int(nid.layer.split("_")[1])]
        j = int(lm.perm[nid.unit])
        return (_addr(nid.layer, j), float(lm.corr[nid.unit])) if j >= 0 else None

    def summary(self, families: int = 5) -> str:
        """A few lines per layer: best-match quantiles against each baseline, dead units,
        the most frequent families and the number of splits, with tiers."""

        def q(d: ScoreDistribution) -> str:
            return "/".join(f"{v:.3f}" for v in d.quantiles[[0, 2, 4]])

        lines = [
            f"{len(self.members)} members, reference {self.reference}, scheme {self.scheme!r}, "
            f"threshold {self.threshold}; tier {self.tier}, moment error {self.error:.1e}"
        ]
        for sc in self.scores:
            lay = sc.layer
            lines.append(
                f"{lay}: best-match correlation q05/median/q95 trained {q(sc.trained)} "
                f"({sc.trained.num_dead} dead units)"
            )
            for name, b in sc.baselines.items():
                lines.append(
                    f"  {name} baseline {q(b)}; trained above its 95th percentile: "
                    f"{sc.above[name]:.2f} (chance: 0.05)"
                )
            fams = [f for f in self.families if f.layer == lay]
            for f in fams[:families]:
                ref = [a for m, a in f.units if m == self.reference]
                lines.append(
                    f"  family {ref[0] if ref else f.units[0][1]}: in {f.fraction:.0%} of "
                    f"members, mean correlation {f.mean_correlation:.3f}"
                )
            sp = [x for x in self.splits if x.layer == lay]
            strict = sum(x.best_single_r2 < max(self.threshold, 0.0) ** 2 for x in sp)
            lines.append(
                f"  {len(fams)} recurring families, {len(sp)} splits ({strict} of units no "
                f"single unit matches at correlation {self.threshold}); tier {sc.tier}"
            )
        return "\n".join(lines)

    def layer_scores(self, layer: str) -> LayerScores:
        for s in self.scores:
            if s.layer == layer:
                return s
        raise fail("EnsembleMatch.layer_scores", "layer", layer, f"one of {list(self.layers)}")


# --------------------------------------------------------------------------- inputs


def distribution_groups(run: Any, members: Sequence[int] | None = None) -> list[list[int]]:
    """Members of ``run`` grouped by the distribution they trained on (first-seen order)."""
    idx = list(range(run.num_members)) if members is None else [int(m) for m in members]
    groups: list[tuple[Any, list[int]]] = []
    for m in idx:
        d = run.dist_of(m)
        for gd, g in groups:
            if gd == d:
                g.append(m)
                break
        else:
            groups.append((d, [m]))
    return [g for _, g in groups]


def select_members(
    where: str, run: Any, members: Sequence[int] | None
) -> tuple[list[int], list[str]]:
    """``(member indices, notes)``: every member but the diverged ones (a note says which
    were left out), or ``members`` checked as distinct indices into the run."""
    n = run.num_members
    if members is None:
        skip = set(getattr(run, "diverged", {}) or {})
        idx = [m for m in range(n) if m not in skip]
        return idx, [f"diverged members {sorted(skip)} left out"] if skip else []
    idx = []
    for m in members:
        if not is_int(m) or not 0 <= int(m) < n:
            raise fail(where, "members", list(members), f"member indices in 0..{n - 1}")
        idx.append(int(m))
    if len(set(idx)) != len(idx):
        raise fail(where, "members", list(members), "distinct member indices")
    return idx, []


def _is_run(obj: Any) -> bool:
    return all(hasattr(obj, a) for a in ("models", "dist_of", "num_members"))


def _inputs(
    where: str, source: Any, dist: Any, members: Sequence[int] | None, step: int | None
) -> tuple[list[Network], tuple[int, ...], Any, list[Any] | None, list[str]]:
    """``(networks, member ids, dist, model configs or None, notes)``."""
    notes: list[str] = []
    if _is_run(source):
        idx, notes = select_members(where, source, members)
        if dist is None:
            groups = distribution_groups(source, idx)
            if len(groups) > 1:
                desc = "; ".join(f"{g} on {source.dist_of(g[0])!r}" for g in groups)
                raise ToylabError(
                    f"{where}: the members train on {len(groups)} different distributions "
                    f"({desc}). Units are only comparable under one distribution: pass "
                    "members=[...] for one group (toylab.universality.distribution_groups(run) "
                    "lists them)."
                )
            dist = source.dist_of(idx[0])
        models = source.models(step)
        nets = [as_network(models[m], where) for m in idx]
        ens = getattr(source, "ensemble", None)
        cfgs = None
        if ens is not None and len(getattr(ens, "members", ())) == source.num_members:
            cfgs = [ens.members[m].model for m in idx]
        elif getattr(getattr(source, "config", None), "model", None) is not None:
            cfgs = [source.config.model] * len(idx)
        return nets, tuple(idx), dist, cfgs, notes
    if isinstance(source, Network) or not isinstance(source, Sequence) or isinstance(source, str):
        raise fail(
            where, "run_or_models", type(source).__name__,
            "a toylab Run (toylab.runs.load_run) or a list of at least two models or networks",
        )  # fmt: skip
    if dist is None:
        raise fail(where, "dist", None, "the distribution the models were trained on")
    if members is not None:
        raise fail(where, "members", members, "None for a list of models (select them yourself)")
    if step is not None:
        raise fail(where, "step", step, "None for a list of models (steps belong to a run)")
    nets = [as_network(m, where) for m in source]
    return nets, tuple(range(len(nets))), dist, None, notes


# --------------------------------------------------------------------------- pieces


def _addr(layer: str, unit: Any) -> str:
    return str(NeuronId(layer, int(unit)))


def _splits_one_way(
    cov: np.ndarray, corr: np.ndarray, live: np.ndarray, targets: np.ndarray,
    parts: np.ndarray, t: float,
) -> list[tuple[int, int, int, float, float, float, float]]:  # fmt: skip
    """``(target, part_j, part_k, w_j, w_k, r2, best single r2)`` for each split target."""
    tl = targets[live[targets]]
    pl = parts[live[parts]]
    if len(tl) == 0 or len(pl) < 2:
        return []
    jj, kk = np.array(list(itertools.combinations(range(len(pl)), 2))).T
    j, k = pl[jj], pl[kk]
    vj, vk, cjk = cov[j, j], cov[k, k], cov[j, k]
    det = vj * vk - cjk**2
    ok = det > 1e-9 * vj * vk  # collinear parts (duplicates) carry no split
    out = []
    for y in tl:
        single = np.max(np.maximum(corr[y, pl], 0.0) ** 2)
        if single >= t:
            continue
        cj, ck = cov[y, j], cov[y, k]
        with np.errstate(divide="ignore", invalid="ignore"):
            wj = (vk * cj - cjk * ck) / det
            wk = (vj * ck - cjk * cj) / det
            r2 = (wj * cj + wk * ck) / cov[y, y]
        good = ok & (wj > 0) & (wk > 0) & (r2 >= t)
        if not np.any(good):
            continue
        best = int(np.argmax(np.where(good, r2, -np.inf)))
        out.append((int(y), int(j[best]), int(k[best]), float(wj[best]), float(wk[best]),
                    float(min(r2[best], 1.0)), float(single)))  # fmt: skip
    return out


@dataclasses.dataclass
class _Pair:
    match: MatchResult
    corr: dict[str, np.ndarray]  # (n_a, n_b) cross correlations per layer
    corr_error: dict[str, np.ndarray]
    within_a: dict[str, tuple[np.ndarray, np.ndarray]]  # (corr, live)
    within_b: dict[str, tuple[np.ndarray, np.ndarray]]
    splits: list[Split]
    tier: Tier
    error: float
    method: str


def _analyse_pair(
    net_a: Network, net_b: Network, ids: tuple[int, int], dist: Any, layers: Sequence[str],
    opts: dict[str, Any], want_splits: bool,
) -> _Pair:  # fmt: skip
    where = "match_ensemble"
    jm = joint_moments(net_a, net_b, dist, where=where, tol=opts["tol"], rtol=opts["rtol"])
    match = match_from_moments(
        jm, net_a.num_hidden, threshold=opts["threshold"], eps=opts["eps"],
        duplicate_tol=opts["duplicate_tol"],
    )  # fmt: skip
    corr, corr_err, wa, wb, splits = {}, {}, {}, {}, []
    for key in layers:
        mean, second, na = jm.layer(key)
        uc = unit_correlation(mean, second, jm.numerical, opts["eps"])
        corr[key] = uc.corr[:na, na:]
        corr_err[key] = uc.corr_error[:na, na:]
        wa[key] = (uc.corr[:na, :na], uc.live[:na])
        wb[key] = (uc.corr[na:, na:], uc.live[na:])
        if not want_splits:
            continue
        n = len(mean)
        ia, ib = np.arange(na), np.arange(na, n)
        for tg, pt, tm, pm, off_t, off_p in ((ia, ib, ids[0], ids[1], 0, na),
                                             (ib, ia, ids[1], ids[0], na, 0)):  # fmt: skip
            for y, j, k, w1, w2, r2, single in _splits_one_way(
                uc.cov, uc.corr, uc.live, tg, pt, opts["split_threshold"]
            ):
                splits.append(
                    Split(
                        key,
                        tm,
                        _addr(key, y - off_t),
                        pm,
                        (_addr(key, j - off_p), _addr(key, k - off_p)),
                        (w1, w2),
                        r2,
                        single,
                        jm.tier,
                        jm.error,
                    )  # fmt: skip
                )
    return _Pair(match, corr, corr_err, wa, wb, splits, jm.tier, jm.error, jm.method)


def _score(name: str, pairs: Sequence[_Pair], key: str, ref_live: np.ndarray) -> ScoreDistribution:
    """Best-match correlations of the live ``a`` units of ``pairs`` against the reference."""
    vals, errs, dead = [], [0.0], 0
    for p in pairs:
        c, e = p.corr[key], p.corr_error[key]
        live_a = p.within_a[key][1]
        dead += int(np.sum(~live_a))
        if not np.any(ref_live):
            continue
        sub = np.where(ref_live[None, :], c, -np.inf)[live_a]
        if sub.size:
            best = np.argmax(sub, axis=1)
            vals.append(sub[np.arange(len(sub)), best])
            # the max moves by at most the largest error of any entry in its row
            errs.append(float(np.max(np.where(ref_live[None, :], e, 0.0)[live_a])))
    values = np.sort(np.concatenate(vals)) if vals else np.zeros(0)
    q = np.quantile(values, QUANTILES) if len(values) else np.full(len(QUANTILES), np.nan)
    tiers = [p.tier for p in pairs] or ["exact"]
    return ScoreDistribution(
        name, values, q, dead, weakest(*tiers), max(errs),
        f"best-match exact correlation of every live unit of {len(pairs)} networks with the "
        "reference's live units",
    )  # fmt: skip


def _layer_scores(
    key: str, trained: ScoreDistribution, baselines: dict[str, ScoreDistribution]
) -> LayerScores:
    above, ambiguous = {}, {}
    for name, b in baselines.items():
        p95, err = b.quantiles[-1], trained.error + b.error
        if len(trained.values) and np.isfinite(p95):
            above[name] = float(np.mean(trained.values > p95))
            ambiguous[name] = int(np.sum(np.abs(trained.values - p95) <= err))
        else:
            above[name], ambiguous[name] = float("nan"), 0
    tiers = [trained.tier, *(b.tier for b in baselines.values())]
    errs = [trained.error, *(b.error for b in baselines.values())]
    return LayerScores(key, trained, baselines, above, ambiguous, weakest(*tiers), max(errs))


def _star_families(
    key: str, ref: int, members: tuple[int, ...], pairs: dict[int, _Pair], ref_live: np.ndarray,
) -> list[Family]:  # fmt: skip
    out = []
    for u in np.nonzero(ref_live)[0]:
        units, cs, errs, tiers = [(ref, _addr(key, u))], [], [0.0], []
        for m in members:
            if m == ref:
                continue
            p = pairs[m]
            lm = p.match.layers[int(key.split("_")[1])]
            hits = np.nonzero(lm.perm == u)[0]
            if len(hits):
                i = int(hits[0])
                units.append((m, _addr(key, i)))
                cs.append(float(lm.corr[i]))
                errs.append(float(p.corr_error[key][i, u]))
                tiers.append(p.tier)
        if len(units) >= 2:
            out.append(
                Family(
                    key,
                    tuple(units),
                    len(units) / len(members),
                    float(np.mean(cs)),
                    float(np.min(cs)),
                    weakest(*tiers),
                    max(errs),
                )  # fmt: skip
            )
    return out


def _all_families(
    key: str, members: tuple[int, ...], pairs: dict[tuple[int, int], _Pair], threshold: float
) -> list[Family]:
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    within: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for (a, b), p in pairs.items():
        within.setdefault(a, p.within_a[key])
        within.setdefault(b, p.within_b[key])
    nodes = [(m, int(u)) for m in members for u in np.nonzero(within[m][1])[0]]
    pos = {node: i for i, node in enumerate(nodes)}
    n = len(nodes)
    if n < 2:
        return []
    c = np.zeros((n, n))
    e = np.zeros((n, n))
    for m in members:
        corr, live = within[m]
        ids = [pos[(m, int(u))] for u in np.nonzero(live)[0]]
        c[np.ix_(ids, ids)] = corr[np.ix_(live, live)]
    for (a, b), p in pairs.items():
        la, lb = within[a][1], within[b][1]
        ia = [pos[(a, int(u))] for u in np.nonzero(la)[0]]
        ib = [pos[(b, int(u))] for u in np.nonzero(lb)[0]]
        blk, err = p.corr[key][np.ix_(la, lb)], p.corr_error[key][np.ix_(la, lb)]
        c[np.ix_(ia, ib)], c[np.ix_(ib, ia)] = blk, blk.T
        e[np.ix_(ia, ib)], e[np.ix_(ib, ia)] = err, err.T
    dist = np.clip(1.0 - c, 0.0, 2.0)
    np.fill_diagonal(dist, 0.0)
    labels = fcluster(
        linkage(squareform(dist, checks=False), "average"), 1.0 - threshold, "distance"
    )
    owner = np.array([m for m, _ in nodes])
    tier = weakest(*(p.tier for p in pairs.values()))
    out = []
    for lab in np.unique(labels):
        idx = np.nonzero(labels == lab)[0]
        ms = set(owner[idx].tolist())
        if len(ms) < 2:
            continue
        cross = owner[idx][:, None] != owner[idx][None, :]
        sub, sube = c[np.ix_(idx, idx)][cross], e[np.ix_(idx, idx)][cross]
        units = tuple((nodes[i][0], _addr(key, nodes[i][1])) for i in idx)
        out.append(
            Family(
                key,
                units,
                len(ms) / len(members),
                float(np.mean(sub)),
                float(np.min(sub)),
                tier,
                float(np.max(sube)),
            )  # fmt: skip
        )
    return out


# --------------------------------------------------------------------------- main


def match_ensemble(
    run_or_models: Any,
    dist: Any = None,
    *,
    reference: int = 0,
    layers: Sequence[str] | None = None,
    threshold: float = 0.9,
    split_threshold: float = 0.95,
    scheme: str = "star",
    members: Sequence[int] | None = None,
    step: int | None = None,
    baselines: Sequence[str] = BASELINES,
    key: Any = 0,
    model_config: Any = None,
    baseline_size: int | None = 32,
    eps: float = 1e-12,
    duplicate_tol: float = 1e-9,
    tol: float = 1e-9,
    rtol: float = 1e-9,
) -> EnsembleMatch:
    """Match every hidden unit of an ensemble against a reference member (module docstring).

    ``run_or_models``: a toylab run (:func:`toylab.runs.load_run`; ``members`` selects
    some, default all but diverged ones; ``step`` a checkpoint, default the final
    parameters; ``dist`` defaults to the members' distribution and members of different
    distributions are refused) or a list of models / networks with ``dist``.
    ``reference``: the reference member (a run index, or a list position). ``layers``:
    hidden layer keys (default all). ``threshold``: the least correlation of a one-to-one
    match and within a family; ``split_threshold``: the least R² of a split.
    ``scheme``: ``"star"`` or ``"all"``. ``baselines``: any of ``"init"``, ``"shuffle"``;
    ``key``: a JAX PRNG key or an int seed for them; ``model_config``: the
    :class:`toylab.models.ModelConfig` of the random-initialisation baseline (default:
    the run's member configs, or an MLP like the networks with default initialisers).
    ``baseline_size``: chance networks per baseline, standing in for that many
    non-reference members spread evenly over them (``None``: one per non-reference
    member; the default 32 gives hundreds of chance units, enough for the quantiles, at
    a fixed cost however large the ensemble).
    ``eps``, ``duplicate_tol``, ``tol``, ``rtol``: as in
    :func:`toylab.circuits.match_neurons`.
    """
    where = "match_ensemble"
    threshold = check_float(where, "threshold", threshold, minimum=-1.0, maximum=1.0)
    split_threshold = check_float(where, "split_threshold", split_threshold, minimum=0.0,
                                  maximum=1.0)  # fmt: skip
    scheme = check_choice(where, "scheme", scheme, ("star", "all"))
    if isinstance(baselines, str):
        baselines = (baselines,)
    for b in baselines:
        check_choice(where, "baselines", b, BASELINES)
    opts = {
        "threshold": threshold,
        "split_threshold": split_threshold,
        "eps": check_float(where, "eps", eps, nonneg=True),
        "duplicate_tol": check_float(where, "duplicate_tol", duplicate_tol, nonneg=True),
        "tol": tol,
        "rtol": rtol,
    }
    nets, ids, dist, cfgs, notes = _inputs(where, run_or_models, dist, members, step)
    if len(nets) < 2:
        raise fail(where, "run_or_models", f"{len(nets)} member(s)", "at least two members")
    check_int(where, "reference", reference)
    if reference not in ids:
        raise fail(where, "reference", reference, f"one of the members {list(ids)}")
    if is_int(key):
        rng = jax.random.key(int(key))
    elif isinstance(key, jax.Array):
        rng = key
    else:
        raise fail(where, "key", key, "a JAX PRNG key (jax.random.key(0)) or an int seed")
    depth = nets[0].num_hidden
    for m, net in zip(ids, nets, strict=True):
        if net.num_hidden != depth:
            raise fail(
                where, "run_or_models", f"member {m} with {net.num_hidden} hidden layers",
                f"members with {depth} hidden layers, like member {ids[0]}",
                "Units are matched layer by layer; match members of one depth.",
            )  # fmt: skip
    all_layers = tuple(f"hidden_{k}" for k in range(depth))
    if layers is None:
        layers = all_layers
    else:
        layers = tuple(layers)
        for lay in layers:
            check_choice(where, "layers", lay, all_layers)
    net_of = dict(zip(ids, nets, strict=True))
    ref_net = net_of[reference]

    # chance networks first, so a bad baseline setting fails before the long part
    others = [m for m in ids if m != reference]
    stand_in = others
    if baseline_size is not None:
        size = check_int(where, "baseline_size", baseline_size, minimum=1)
        if size < len(others):
            stand_in = [
                others[i] for i in np.linspace(0, len(others) - 1, size).round().astype(int)
            ]
    chance: dict[str, list[Network]] = {}
    for name in baselines:
        if name == "init":
            chance[name] = _init_baseline(where, stand_in, net_of, cfgs, ids, dist, model_config,
                                          jax.random.fold_in(rng, 0))  # fmt: skip
        else:
            shuffle_key = jax.random.fold_in(rng, 1)
            chance[name] = [shuffle_layers(net_of[m], jax.random.fold_in(shuffle_key, m))
                            for m in stand_in]  # fmt: skip

    pair_ids = (
        [(m, reference) for m in others]
        if scheme == "star"
        else [(b, a) if a == reference else (a, b) for a, b in itertools.combinations(ids, 2)]
    )  # the reference is always "b"
    pairs = {
        (a, b): _analyse_pair(net_of[a], net_of[b], (a, b), dist, layers, opts, True)
        for a, b in pair_ids
    }
    star = {m: pairs[(m, reference)] for m in others}
    base_pairs = {
        name: [_analyse_pair(c, ref_net, (-1, reference), dist, layers, opts, False) for c in cs]
        for name, cs in chance.items()
    }
    num_analyses = len(pairs) + sum(len(cs) for cs in chance.values())

    dead: dict[int, tuple[str, ...]] = {}
    duplicates: dict[int, tuple[tuple[str, ...], ...]] = {}
    cut = 1.0 - opts["duplicate_tol"]
    first_ref = star[others[0]]
    for m in ids:
        p = first_ref if m == reference else star[m]
        side = p.within_b if m == reference else p.within_a
        dead[m] = tuple(_addr(k, u) for k in layers for u in np.nonzero(~side[k][1])[0])
        duplicates[m] = tuple(
            tuple(_addr(k, u) for u in g)
            for k in layers
            for g in duplicate_groups(side[k][0], side[k][1], cut)
        )

    scores, families = [], []
    for k in layers:
        ref_live = first_ref.within_b[k][1]
        trained = _score("trained", list(star.values()), k, ref_live)
        bases = {n: _score(n, ps, k, ps[0].within_b[k][1]) for n, ps in base_pairs.items()}
        scores.append(_layer_scores(k, trained, bases))
        if scheme == "star":
            families += _star_families(k, reference, ids, star, ref_live)
        else:
            families += _all_families(k, ids, pairs, threshold)
    families.sort(key=lambda f: (f.layer, -f.fraction, -f.mean_correlation))

    everything = [*pairs.values(), *(p for ps in base_pairs.values() for p in ps)]
    splits = tuple(s for p in pairs.values() for s in p.splits)
    method = (
        f"exact correlations from {num_analyses} joint-network analyses "
        f"({'every member against member ' + str(reference) if scheme == 'star' else 'all pairs'}"
        f"{', baselines ' + '/'.join(baselines) if baselines else ''}); "
        f"{everything[0].method}" + (f"; {'; '.join(notes)}" if notes else "")
    )
    return EnsembleMatch(
        ids, reference, tuple(layers), scheme,
        {pid: p.match for pid, p in pairs.items()},
        dead, duplicates, splits, tuple(families), tuple(scores), threshold, split_threshold,
        weakest(*(p.tier for p in everything)), max(p.error for p in everything), method,
        num_analyses,
    )  # fmt: skip


def _init_baseline(
    where: str, others: list[int], net_of: dict[int, Network], cfgs: list[Any] | None,
    ids: tuple[int, ...], dist: Any, model_config: Any, key: jax.Array,
) -> list[Network]:  # fmt: skip
    """One random initialisation per non-reference member, of that member's config."""
    if model_config is not None:
        per = dict.fromkeys(others, model_config)
    elif cfgs is not None:
        per = {m: cfgs[ids.index(m)] for m in others}
    else:
        per = {m: default_model_config(net_of[m], dist, where) for m in others}
    out: dict[int, Network] = {}
    for g, cfg in enumerate(dict.fromkeys(per.values())):
        group = [m for m in others if per[m] == cfg]
        nets = init_networks(cfg, dist, jax.random.fold_in(key, g), len(group))
        out.update(zip(group, nets, strict=True))
    return [out[m] for m in others]
