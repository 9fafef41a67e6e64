"""Claims, their verdicts, and the checker (see :mod:`toylab.claims`)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from toylab._errors import ToylabError, did_you_mean, fail
from toylab._validate import check_choice, check_float, check_int
from toylab.claims._context import Context
from toylab.claims._kinds import KINDS, Kind, inside_best
from toylab.claims._search import search, search_finite, wilson
from toylab.claims.regions import HalfPlane
from toylab.neurons import NeuronId

__all__ = [
    "VERDICTS",
    "Claim",
    "ClaimResult",
    "ablation_lowers_accuracy",
    "activation_share",
    "all_of",
    "any_of",
    "argmax_near",
    "check",
    "check_all",
    "dead",
    "fires_on_mass",
    "fires_only_in",
    "linear_on",
    "matches_circuit",
    "monotone",
    "not_",
]

#: How a verdict was reached, strongest first. These are *verdicts*, not tiers of a number
#: (:mod:`toylab.tiers`): ``"exact"`` (proved: exact geometry, exact numbers or certified
#: enclosures that do not straddle the threshold, finite enumeration), ``"searched"`` (a
#: counterexample search: a "fails" is proved by its witness, a "holds" only means none was
#: found) and ``"sampled"`` (a Monte Carlo estimate with a confidence interval).
VERDICTS = ("exact", "searched", "sampled")
_RANK = {t: i for i, t in enumerate(VERDICTS)}
COMPOSITES = ("all", "any", "not")


@dataclasses.dataclass(frozen=True, eq=False)
class ClaimResult:
    """The verdict on one claim.

    ``tier`` says how the verdict was reached (one of :data:`VERDICTS`: ``"exact"``,
    ``"searched"`` with ``num_tried`` inputs, ``"sampled"``). The numbers inside a
    result carry their own tiers of :mod:`toylab.tiers`:

    * ``estimate`` (the quantity the claim thresholds: a mass, a share, an accuracy
      drop, a distance) with ``estimate_tier``, and ``interval``: a confidence
      interval (sampled, by ``interval_method``) or a certified enclosure;
    * ``failing_mass``, the probability of the failing set, with ``failing_mass_tier``
      and, where it is not exact, ``failing_mass_bounds`` whose meaning is the tier's
      (:mod:`toylab.tiers`): a guaranteed enclosure (``certified``), the value plus or
      minus a quadrature's error estimate (``estimated``, non-Gaussian densities), a
      Wilson confidence interval (``sampled``). Where only bounds are known (a set cut
      by an :class:`~toylab.claims.Ellipse`, bracketed by polygons) ``failing_mass`` is
      ``None``.

    ``margin`` is ``>= 0`` when the claim holds and says by how much (each kind's
    docstring defines it). On failure ``witness`` is an input where it fails
    (coordinates of the checked plane, if any) and ``witness_region`` convex polygons
    inside the failing set (exact verdicts).
    """

    statement: str
    neuron: str
    kind: str
    tier: str
    holds: bool
    margin: float
    witness: np.ndarray | None = None
    witness_region: tuple[np.ndarray, ...] = ()
    failing_mass: float | None = None
    failing_mass_bounds: tuple[float, float] | None = None
    failing_mass_tier: str | None = None
    num_tried: int = 0
    estimate: float | None = None
    estimate_tier: str | None = None
    interval: tuple[float, float] | None = None
    interval_method: str | None = None
    detail: str = ""
    children: tuple[ClaimResult, ...] = ()
    plot_path: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (polygons are left out; their count is kept)."""

        def num(v: Any) -> Any:
            if v is None:
                return None
            v = float(v)
            return v if math.isfinite(v) else str(v)

        def pair(v: Any) -> Any:
            return None if v is None else [num(x) for x in v]

        return {
            "statement": self.statement,
            "neuron": self.neuron,
            "kind": self.kind,
            "tier": self.tier,
            "holds": self.holds,
            "margin": num(self.margin),
            "witness": None if self.witness is None else [float(v) for v in self.witness],
            "num_failing_pieces": len(self.witness_region),
            "failing_mass": num(self.failing_mass),
            "failing_mass_bounds": pair(self.failing_mass_bounds),
            "failing_mass_tier": self.failing_mass_tier,
            "num_tried": self.num_tried,
            "estimate": num(self.estimate),
            "estimate_tier": self.estimate_tier,
            "interval": pair(self.interval),
            "interval_method": self.interval_method,
            "detail": self.detail,
            "children": [c.to_dict() for c in self.children],
            "plot_path": self.plot_path,
        }

    def explain(self) -> str:
        """The verdict in words, one line per fact."""
        word = "HOLDS" if self.holds else "FAILS"
        lines = [f"{word} [{self.tier}] {self.neuron}: {self.statement}"]
        lines.append(f"  margin: {self.margin:.6g}")
        if self.estimate is not None:
            ci = ""
            if self.interval is not None:
                ci = f" ({self.interval[0]:.4g}, {self.interval[1]:.4g}) {self.interval_method}"
                ci += "" if self.interval_method == "certified enclosure" else " interval"
            tier = f" [{self.estimate_tier}]" if self.estimate_tier else ""
            lines.append(f"  estimate: {self.estimate:.6g}{tier}{ci}")
        if self.witness is not None:
            lines.append(f"  counterexample: x = {[float(f'{v:.6g}') for v in self.witness]}")
        tier = f" [{self.failing_mass_tier}]" if self.failing_mass_tier else ""
        bounds = self.failing_mass_bounds
        if self.failing_mass is not None:
            within = "" if bounds is None else f" in [{bounds[0]:.6g}, {bounds[1]:.6g}]"
            lines.append(f"  probability of the failing set: {self.failing_mass:.6g}{within}{tier}")
        elif bounds is not None:
            lines.append(
                f"  probability of the failing set: between {bounds[0]:.6g} and {bounds[1]:.6g}"
                f"{tier}"
            )
        if self.tier != "exact":
            lines.append(f"  inputs tried: {self.num_tried}")
        if self.detail:
            lines.append(f"  {self.detail}")
        for c in self.children:
            lines += ["  " + line for line in c.explain().splitlines()]
        if self.plot_path:
            lines.append(f"  map with the counterexample: {self.plot_path}")
        return "\n".join(lines)


def _as_neurons(where: str, neuron: Any) -> tuple[str, ...]:
    """One address or a non-empty list of them, as canonical strings."""
    items = [neuron] if isinstance(neuron, str | NeuronId) else neuron
    if not isinstance(items, list | tuple) or not items:
        raise fail(where, "neuron", neuron, "an address like 'hidden_0:3' or a list of them")
    out = []
    for n in items:
        if not isinstance(n, str | NeuronId):
            raise fail(where, "neuron", n, "an address like 'hidden_0:3' (a string)")
        try:
            out.append(str(NeuronId.parse(n)))
        except ToylabError as e:
            raise ToylabError(f"{where}: bad neuron {n!r}: {e}") from None
    return tuple(out)


@dataclasses.dataclass(frozen=True, eq=False)
class Claim:
    """A statement about a neuron (or several), decided by :func:`check`.

    Build claims with the functions of :mod:`toylab.claims` (:func:`fires_only_in`,
    :func:`dead`, ...), :meth:`from_function` / :meth:`from_analysis`, or a claim file.
    Combine them with ``&`` (all hold), ``|`` (at least one holds) and ``~`` (does
    not hold); a claim about several neurons holds when it holds for each.

    ``params`` are validated against the kind's schema (the same names and checks as
    the constructors' arguments and the claim files' keys); an empty ``statement`` (or
    ``None``) gives the kind's own wording.
    """

    kind: str
    neuron: tuple[str, ...]
    statement: str = ""
    params: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    children: tuple[Claim, ...] = ()
    name: str | None = None

    def __post_init__(self) -> None:
        kinds = [*KINDS, *COMPOSITES]
        if not isinstance(self.kind, str) or self.kind not in kinds:
            hint = did_you_mean(self.kind, kinds) if isinstance(self.kind, str) else ""
            raise fail("Claim", "kind", self.kind, f"one of {sorted(KINDS)}", hint.strip())
        where = self.kind
        object.__setattr__(self, "neuron", _as_neurons(where, self.neuron))
        if self.statement is None:
            object.__setattr__(self, "statement", "")
        if not isinstance(self.statement, str):
            raise fail(where, "statement", self.statement, "a string (what you believe)")
        if self.name is not None and not isinstance(self.name, str):
            raise fail(where, "name", self.name, "a string")
        if self.kind in COMPOSITES:
            if self.params:
                raise fail(where, "params", dict(self.params), "empty for a composition")
            return
        if self.children:
            raise fail(where, "children", self.children, "empty (only all/any/not have them)")
        params = KINDS[self.kind].validate(where, self.params)
        object.__setattr__(self, "params", params)
        if not self.statement:
            object.__setattr__(self, "statement", KINDS[self.kind].describe(params))

    def __and__(self, other: Claim) -> Claim:
        return all_of(self, other)

    def __or__(self, other: Claim) -> Claim:
        return any_of(self, other)

    def __invert__(self) -> Claim:
        return not_(self)

    @classmethod
    def from_function(
        cls,
        neuron: Any,
        statement: str,
        fn: Callable[..., Any],
        *,
        inputs: bool = False,
    ) -> Claim:
        """A pointwise claim: ``fn(values) -> bool array`` (``fn(x, values)`` with
        ``inputs=True``) says where it holds. Decided exactly on finite domains, by a
        counterexample search elsewhere (or sampled with ``tier="sampled"``)."""
        return cls("function", neuron, statement, {"fn": fn, "inputs": inputs})

    @classmethod
    def from_analysis(cls, neuron: Any, statement: str, fn: Callable[[Any, str], Any]) -> Claim:
        """A claim decided on the exact analysis: ``fn(analysis, neuron) -> bool`` (or a
        margin, holding when ``>= 0``), where ``analysis`` is
        :func:`toylab.exact.analyze`'s result (finite domains keep their table)."""
        return cls("analysis", neuron, statement, {"fn": fn})


def _neurons_of(claims: Sequence[Claim]) -> tuple[str, ...]:
    out: list[str] = []
    for c in claims:
        out += [n for n in c.neuron if n not in out]
    return tuple(out)


def all_of(*claims: Claim, statement: str | None = None) -> Claim:
    """Holds when every claim holds."""
    cs = _flatten("all_of", "all", claims)
    text = statement or " and ".join(f"({c.statement})" for c in cs)
    return Claim("all", _neurons_of(cs), text, {}, cs)


def any_of(*claims: Claim, statement: str | None = None) -> Claim:
    """Holds when at least one claim holds."""
    cs = _flatten("any_of", "any", claims)
    text = statement or " or ".join(f"({c.statement})" for c in cs)
    return Claim("any", _neurons_of(cs), text, {}, cs)


def not_(claim: Claim, statement: str | None = None) -> Claim:
    """Holds when ``claim`` does not."""
    _flatten("not_", "not", [claim])
    return Claim("not", claim.neuron, statement or f"not ({claim.statement})", {}, (claim,))


def _flatten(where: str, kind: str, claims: Iterable[Any]) -> tuple[Claim, ...]:
    out: list[Claim] = []
    for c in claims:
        if not isinstance(c, Claim):
            raise fail(where, "claims", c, "Claim objects (from toylab.claims)")
        out += list(c.children) if c.kind == kind and kind != "not" else [c]
    if not out:
        raise fail(where, "claims", (), "at least one claim")
    return tuple(out)


def fires_only_in(neuron: Any, region: Any, *, statement: str | None = None) -> Claim:
    """The neuron fires (``a > 0``) only inside ``region`` (closed).

    Margin: minus the largest activation outside the region (``>= 0`` iff it holds; a
    lower bound for an :class:`~toylab.claims.Ellipse`). Exact for piecewise-linear
    networks in 2-D: the active region minus ``region``, clipped exactly region by
    region (:func:`toylab.exact.clip_convex`), with the mass of that set under the
    distribution (:func:`toylab.exact.region_moments`).
    """
    return Claim("fires_only_in", neuron, statement or "", {"region": region})


def dead(neuron: Any, *, statement: str | None = None) -> Claim:
    """The neuron never fires on the distribution's domain (margin: ``-max a``)."""
    return Claim("dead", neuron, statement or "")


def fires_on_mass(
    neuron: Any,
    q: float,
    *,
    cls: int | None = None,
    component: int | None = None,
    statement: str | None = None,
) -> Claim:
    """``P(a > 0 | class cls)`` (or ``| component``) is at least ``q``. Margin: ``P - q``."""
    return Claim(
        "fires_on_mass", neuron, statement or "", {"q": q, "cls": cls, "component": component}
    )


def represented(neuron: Any, threshold: float = 0.5, *, statement: str | None = None) -> Claim:
    """A toy model of superposition represents the feature ``neuron`` (``"input:i"``):
    ``‖W_i‖ >= threshold`` (0.5, as the paper's plots). Margin: ``‖W_i‖ - threshold``."""
    return Claim("represented", neuron, statement or "", {"threshold": threshold})


def antipodal(neuron: Any, other: str, tol: float = 0.05, *, statement: str | None = None) -> Claim:
    """Features ``neuron`` and ``other`` (``"input:i"``, ``"input:j"``) are an antipodal pair: ``cos(W_i, W_j) <= -1 +
    tol`` (both embedded). Margin: ``-1 + tol - cos``."""
    return Claim("antipodal", neuron, statement or "", {"other": other, "tol": tol})


def feature_dimensionality(
    neuron: Any,
    low: float | None = None,
    high: float | None = None,
    *,
    statement: str | None = None,
) -> Claim:
    """The feature's dimensionality ``D_i = ‖W_i‖² / Σ_j (Ŵ_i·W_j)²`` lies in ``[low,
    high]`` (either bound may be omitted), e.g. ``(0.35, 0.45)`` for a pentagon's 2/5."""
    return Claim("feature_dimensionality", neuron, statement or "", {"low": low, "high": high})


def dimensions_per_feature(
    low: float | None = None,
    high: float | None = None,
    *,
    neuron: Any = "input:0",
    statement: str | None = None,
) -> Claim:
    """The model's dimensions per feature ``D* = m / ‖W‖_F²`` lie in ``[low, high]``. D* is
    a property of the whole model; the claim is filed under ``neuron`` (any feature)."""
    return Claim("dimensions_per_feature", neuron, statement or "", {"low": low, "high": high})


def monotone(
    neuron: Any,
    direction: Sequence[float],
    *,
    region: Any = None,
    decreasing: bool = False,
    statement: str | None = None,
) -> Claim:
    """Non-decreasing (or non-increasing) along ``direction`` within ``region``.

    Margin: the smallest directional derivative (negated when ``decreasing``)."""
    params = {"direction": direction, "region": region, "decreasing": decreasing}
    return Claim("monotone", neuron, statement or "", params)


def linear_on(neuron: Any, region: Any, *, statement: str | None = None) -> Claim:
    """The neuron is affine on ``region``. Margin: minus the largest deviation from
    the affine map of the largest piece (0 when it holds)."""
    return Claim("linear_on", neuron, statement or "", {"region": region})


def argmax_near(
    neuron: Any, point: Sequence[float], eps: float, *, statement: str | None = None
) -> Claim:
    """Every maximiser over the domain lies within ``eps`` of ``point``.

    Margin: ``eps`` minus the distance of the farthest maximiser. The searched tier
    compares against the best value found inside the ball (a lower bound of its max)."""
    return Claim("argmax_near", neuron, statement or "", {"point": point, "eps": eps})


def activation_share(
    neuron: Any,
    share: float,
    *,
    cls: int | None = None,
    component: int | None = None,
    statement: str | None = None,
) -> Claim:
    r"""The group's share of the mean activation is at least ``share``:

    .. math:: \frac{E[a\,1(\text{group})]}{E[a]} \ge \text{share}

    (the group is class ``cls`` or mixture component ``component``). Margin: the share
    minus ``share``. Exact from :meth:`toylab.exact.Analysis.group_means` (Gaussian
    mixtures, finite domains). This is not the selectivity *index* of
    :mod:`toylab.methods` (top share minus second share)."""
    return Claim(
        "activation_share",
        neuron,
        statement or "",
        {"share": share, "cls": cls, "component": component},
    )


def ablation_lowers_accuracy(
    neuron: Any, cls: int, delta: float, *, statement: str | None = None
) -> Claim:
    """Zero-ablating the neuron lowers the accuracy on class ``cls`` by at least ``delta``.

    Margin: ``drop - delta``; exact via :func:`toylab.exact.analyze` on the ablated
    network (:meth:`toylab.network.Network.ablate`), on the plane and on finite domains."""
    return Claim("ablation_lowers_accuracy", neuron, statement or "", {"cls": cls, "delta": delta})


def matches_circuit(
    neuron: Any,
    circuit: Any,
    circuit_neuron: str,
    tol: float,
    *,
    norm: str = "sup",
    statement: str | None = None,
) -> Claim:
    """The neuron equals ``circuit``'s neuron ``circuit_neuron`` within ``tol``.

    ``norm="sup"`` (over the domain) or ``"l2"`` (under the distribution); exact via
    :func:`toylab.circuits.functional_distance` where it is exact."""
    params = {"circuit": circuit, "circuit_neuron": circuit_neuron, "tol": tol, "norm": norm}
    return Claim("matches_circuit", neuron, statement or "", params)


# --------------------------------------------------------------------------- checking


@dataclasses.dataclass(frozen=True)
class _Options:
    tier: str
    budget: int
    num_samples: int
    confidence: float
    seed: int


def check(
    claim: Claim,
    model: Any,
    dist: Any,
    *,
    tier: str = "auto",
    budget: int = 200,
    num_samples: int = 20_000,
    confidence: float = 0.95,
    seed: int = 0,
    plane: tuple[Any, Any, Any] | None = None,
    window: Any = None,
) -> ClaimResult:
    """Decide ``claim`` about ``model`` (a toylab model or a
    :class:`~toylab.network.Network`) under ``dist``.

    ``tier="auto"`` decides exactly where that is possible (piecewise-linear networks
    on 2-D inputs or on ``plane = (origin, d1, d2)`` restricted to the convex polygon
    ``window``, and finite domains), otherwise searches ``budget`` inputs for a
    counterexample (pointwise claims) or estimates from ``num_samples`` samples with a
    ``confidence`` interval (claims about the distribution). ``tier`` may force
    ``"searched"`` or ``"sampled"`` (see :data:`VERDICTS`). ``seed`` makes searches and
    samples reproducible.
    """
    opts = _options("check", tier, budget, num_samples, confidence, seed)
    if not isinstance(claim, Claim):
        raise fail("check", "claim", claim, "a toylab.claims.Claim")
    return _decide(claim, Context(model, dist, plane=plane, window=window), opts)


def _options(
    where: str, tier: Any, budget: Any, num_samples: Any, confidence: Any, seed: Any
) -> _Options:
    return _Options(
        check_choice(where, "tier", tier, ("auto", *VERDICTS)),
        check_int(where, "budget", budget, minimum=1),
        check_int(where, "num_samples", num_samples, minimum=2),
        check_float(where, "confidence", confidence, minimum=0.5, maximum=0.999999),
        check_int(where, "seed", seed, minimum=0),
    )


def check_all(
    claims: Iterable[Claim],
    model: Any,
    dist: Any,
    *,
    tier: str = "auto",
    budget: int = 200,
    num_samples: int = 20_000,
    confidence: float = 0.95,
    seed: int = 0,
    plane: tuple[Any, Any, Any] | None = None,
    window: Any = None,
) -> list[ClaimResult]:
    """:func:`check` every claim, sharing the exact machinery (partitions, the analysis)."""
    claims = list(claims)
    for c in claims:
        if not isinstance(c, Claim):
            raise fail("check_all", "claims", c, "a list of toylab.claims.Claim")
    opts = _options("check_all", tier, budget, num_samples, confidence, seed)
    ctx = Context(model, dist, plane=plane, window=window, where="check_all")
    return [_decide(c, ctx, opts) for c in claims]


def _combine(claim: Claim, results: list[ClaimResult], mode: str) -> ClaimResult:
    tier = max((r.tier for r in results), key=_RANK.__getitem__)
    statement = str(claim.statement)
    if mode == "not":
        (r,) = results
        return ClaimResult(
            statement,
            ", ".join(claim.neuron),
            claim.kind,
            r.tier,
            not r.holds,
            -r.margin,
            num_tried=r.num_tried,
            detail="the inner claim " + ("holds" if r.holds else "fails"),
            children=(r,),
        )
    holds = all(r.holds for r in results) if mode == "all" else any(r.holds for r in results)
    margin = min(r.margin for r in results) if mode == "all" else max(r.margin for r in results)
    bad = next((r for r in results if not r.holds), None)
    fields: dict[str, Any] = {}
    if not holds and bad is not None:
        fields = {
            "witness": bad.witness,
            "witness_region": bad.witness_region,
            "failing_mass": bad.failing_mass,
            "failing_mass_bounds": bad.failing_mass_bounds,
            "failing_mass_tier": bad.failing_mass_tier,
        }
    return ClaimResult(
        statement,
        ", ".join(claim.neuron),
        claim.kind,
        tier,
        holds,
        margin,
        num_tried=sum(r.num_tried for r in results),
        children=tuple(results),
        **fields,
    )


def _decide(claim: Claim, ctx: Context, opts: _Options) -> ClaimResult:
    if claim.kind in COMPOSITES:
        results = [_decide(c, ctx, opts) for c in claim.children]
        return _combine(claim, results, claim.kind)
    if len(claim.neuron) > 1:
        parts = [dataclasses.replace(claim, neuron=(n,)) for n in claim.neuron]
        return _combine(claim, [_decide(c, ctx, opts) for c in parts], "all")
    kind = KINDS[claim.kind]
    nid = ctx.resolve(claim.neuron[0], allow_input=kind.features)
    params = _resolved(dict(claim.params), ctx)
    tiers = VERDICTS if opts.tier == "auto" else (opts.tier,)
    pointwise = kind.pointwise
    if claim.kind == "matches_circuit" and params.get("norm") == "l2":
        pointwise = None
    for t in tiers:
        fields = None
        if t == "exact":
            if kind.exact is not None:
                fields = kind.exact(ctx, nid, params)
            if fields is None and ctx.finite and pointwise is not None:
                _finite_pointwise_ok(claim, kind, ctx)
                fields = _enumerate(ctx, nid, params, kind, pointwise)
        elif t == "searched" and pointwise is not None:
            if ctx.finite:
                _finite_pointwise_ok(claim, kind, ctx)
            fields = _searched(ctx, nid, params, kind, pointwise, opts)
        elif t == "sampled" and (kind.sampled is not None or pointwise is not None):
            if kind.sampled is not None:
                fields = kind.sampled(ctx, nid, params, opts)
            else:
                fields = _sampled_pointwise(ctx, nid, params, kind, pointwise, opts)
        if fields is not None:
            fields["holds"] = bool(fields["holds"])
            return ClaimResult(str(claim.statement), str(nid), claim.kind, t, **fields)
    raise ToylabError(
        f"check: cannot decide the {claim.kind!r} claim {claim.statement!r} at tier "
        f"{opts.tier!r} for this model and distribution; try tier='auto'."
    )


def _finite_pointwise_ok(claim: Claim, kind: Kind, ctx: Context) -> None:
    if not kind.finite_pointwise:
        raise ToylabError(
            f"check: a {claim.kind!r} claim needs a continuous domain; "
            f"{type(ctx.dist).__name__} is finite."
        )


def _resolved(params: dict[str, Any], ctx: Context) -> dict[str, Any]:
    p = dict(params)
    if p.get("region") is not None:
        p["region"] = p["region"].resolve(ctx.dist)
        if ctx.dim != 2 and not isinstance(p["region"], HalfPlane):
            raise ToylabError(
                f"check: polygon and ellipse regions are 2-D; the inputs have {ctx.dim} "
                "dimensions (check on a plane, or use a HalfPlane)."
            )
        if isinstance(p["region"], HalfPlane) and len(p["region"].normal) != ctx.dim:
            raise fail(
                "check",
                "region",
                f"HalfPlane(normal={list(p['region'].normal)})",
                f"a half-plane with a normal of length {ctx.dim} (the checked coordinates)",
            )
    return p


def _margin_fns(ctx: Context, nid: NeuronId, p: dict, kind: Kind, pointwise: Any) -> tuple:
    if kind.name == "argmax_near":
        p = {**p, "_inside_best": inside_best(ctx, nid, p)}

    def margin_np(x: np.ndarray) -> np.ndarray:
        return np.asarray(pointwise(ctx, nid, p, x, np), np.float64)

    margin_jnp = None
    if kind.name != "function":
        import jax.numpy as jnp

        def margin_jnp(x: Any) -> Any:
            return pointwise(ctx, nid, p, x, jnp)

    return margin_np, margin_jnp


def _searched(
    ctx: Context, nid: NeuronId, params: dict, kind: Kind, pointwise: Any, opts: _Options
) -> dict[str, Any]:
    margin_np, margin_jnp = _margin_fns(ctx, nid, params, kind, pointwise)
    if ctx.finite:
        dom = ctx.dist.domain
        inputs = np.asarray(dom.inputs, np.float64)[np.asarray(dom.probs) > 0]
        out = search_finite(margin_np, inputs, budget=opts.budget, seed=opts.seed)
    elif _family(ctx) is not None and kind.arity == 1:
        return _searched_family(ctx, margin_np, margin_jnp, opts)
    else:
        low = np.tile(ctx.low, kind.arity)
        high = np.tile(ctx.high, kind.arity)
        out = search(margin_np, margin_jnp, low, high, budget=opts.budget, seed=opts.seed)
    fields: dict[str, Any] = {
        "holds": not out.found,
        "margin": out.margin,
        "num_tried": out.num_tried,
    }
    if out.found:
        fields["witness"] = out.x
        fields["detail"] = f"counterexample found by {out.engine} search"
    else:
        fields["detail"] = f"no counterexample in {out.num_tried} inputs ({out.engine} search)"
    return fields


def _family(ctx: Context) -> Any:
    """The image family of an image distribution (``kind == "image"``, with ``render``
    and parameter ranges), or ``None``."""
    dist = ctx.dist
    if getattr(dist, "kind", None) == "image" and hasattr(dist, "render"):
        return dist
    return None


def _searched_family(ctx: Context, margin_np: Any, margin_jnp: Any, opts: _Options) -> dict:
    """The search on an image distribution: over the family's parameters ``p`` (its
    noiseless images ``render(p)``, the data's support without pixel noise), not over the
    box of all pixel values (hundreds of dimensions, almost none of them images). The
    counterexample is the rendered image; its parameters are in ``detail``."""
    fam = ctx.dist

    def m_np(p: np.ndarray) -> np.ndarray:
        return margin_np(np.asarray(fam.render(np.asarray(p, np.float64)), np.float64))

    m_jnp = None if margin_jnp is None else (lambda p: margin_jnp(fam.render(p)))
    out = search(
        m_np, m_jnp, fam.param_low, fam.param_high, budget=opts.budget, seed=opts.seed
    )  # fmt: skip
    where = "the family's noiseless images"
    fields: dict[str, Any] = {
        "holds": not out.found,
        "margin": out.margin,
        "num_tried": out.num_tried,
    }
    if out.found:
        assert out.x is not None
        p = ", ".join(f"{n}={v:.4g}" for n, v in zip(fam.PARAMS, out.x, strict=True))
        fields["witness"] = np.asarray(fam.render(out.x), np.float64)
        fields["detail"] = f"counterexample found by {out.engine} search over {where} ({p})"
    else:
        fields["detail"] = f"no counterexample in {out.num_tried} of {where} ({out.engine} search)"
    return fields


def _enumerate(
    ctx: Context, nid: NeuronId, params: dict, kind: Kind, pointwise: Any
) -> dict[str, Any]:
    dom = ctx.dist.domain
    inputs = np.asarray(dom.inputs, np.float64)
    probs = np.asarray(dom.probs, np.float64)
    margin_np, _ = _margin_fns(ctx, nid, params, kind, pointwise)
    m = np.where(probs > 0, margin_np(inputs), np.inf)
    worst = int(np.argmin(m))
    fails = m < 0
    fields: dict[str, Any] = {
        "holds": not fails.any(),
        "margin": float(m[worst]),
        "num_tried": len(inputs),
    }
    if fails.any():
        fields.update(
            witness=inputs[worst],
            failing_mass=float(probs[fails].sum()),
            failing_mass_tier="exact",
            detail=f"fails on {int(fails.sum())} of {len(inputs)} inputs",
        )
    return fields


def _sampled_pointwise(
    ctx: Context, nid: NeuronId, params: dict, kind: Kind, pointwise: Any, opts: _Options
) -> dict[str, Any]:
    import jax

    margin_np, _ = _margin_fns(ctx, nid, params, kind, pointwise)
    x, _, _ = ctx.sample(jax.random.key(opts.seed), opts.num_samples * kind.arity)
    x = x.reshape(opts.num_samples, kind.arity * ctx.dim)
    m = margin_np(x)
    ok = m >= 0
    k, n = int(ok.sum()), len(m)
    lo, hi = wilson(k, n, opts.confidence)
    fields: dict[str, Any] = {
        "holds": k == n,
        "margin": float(m.min()),
        "num_tried": n,
        "estimate": k / n,
        "estimate_tier": "sampled",
        "interval": (lo, hi),
        "interval_method": "Wilson",
        "detail": f"holds at {k} of {n} sampled inputs",
    }
    if k < n:
        fields.update(
            witness=x[int(np.argmin(m))],
            failing_mass=1 - k / n,
            failing_mass_bounds=(1 - hi, 1 - lo),
            failing_mass_tier="sampled",
        )
    return fields
