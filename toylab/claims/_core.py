"""Claims, their verdicts, and the checker (see :mod:`toylab.claims`)."""

from __future__ import annotations

import dataclasses
import math
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from toylab._errors import ToylabError, did_you_mean
from toylab.claims._context import Context
from toylab.claims._kinds import KINDS, _argmax_pointwise_factory
from toylab.claims._search import search, wilson
from toylab.claims.regions import Ellipse, HalfPlane, Polygon
from toylab.neurons import NeuronId

__all__ = [
    "TIERS",
    "Claim",
    "ClaimResult",
    "ablation_lowers_accuracy",
    "all_of",
    "any_of",
    "argmax_near",
    "assert_claim",
    "check",
    "check_all",
    "dead",
    "fires_on_mass",
    "fires_only_in",
    "linear_on",
    "matches_circuit",
    "monotone",
    "not_",
    "selectivity",
]

TIERS = ("exact", "searched", "sampled")
_RANK = {t: i for i, t in enumerate(TIERS)}
COMPOSITES = ("all", "any", "not")


@dataclasses.dataclass(frozen=True, eq=False)
class ClaimResult:
    """The verdict on one claim.

    ``tier``: ``"exact"`` (decided exactly: piecewise-linear geometry, Gaussian
    integrals or finite enumeration), ``"searched"`` (hypothesis searched
    ``num_tried`` inputs for a counterexample: ``holds`` means none was found) or
    ``"sampled"`` (a Monte Carlo estimate with ``interval`` at the requested
    confidence, by ``interval_method``). ``margin`` is ``>= 0`` when the claim holds
    and says by how much (each kind's docstring defines it). On failure ``witness``
    is an input where it fails (coordinates of the checked plane, if any),
    ``witness_region`` convex polygons covering the failing set (exact tier) and
    ``failing_mass`` its probability (or ``failing_mass_bounds``).
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
    num_tried: int = 0
    estimate: float | None = None
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
            "failing_mass_bounds": None if self.failing_mass_bounds is None
            else [num(v) for v in self.failing_mass_bounds],
            "num_tried": self.num_tried,
            "estimate": num(self.estimate),
            "interval": None if self.interval is None else [num(v) for v in self.interval],
            "interval_method": self.interval_method,
            "detail": self.detail,
            "children": [c.to_dict() for c in self.children],
            "plot_path": self.plot_path,
        }  # fmt: skip

    def explain(self) -> str:
        """The verdict in words, one line per fact."""
        word = "HOLDS" if self.holds else "FAILS"
        lines = [f"{word} [{self.tier}] {self.neuron}: {self.statement}"]
        lines.append(f"  margin: {self.margin:.6g}")
        if self.estimate is not None:
            ci = ""
            if self.interval is not None:
                ci = (f" ({self.interval[0]:.4g}, {self.interval[1]:.4g}) "
                      f"{self.interval_method} interval")  # fmt: skip
            lines.append(f"  estimate: {self.estimate:.6g}{ci}")
        if self.witness is not None:
            lines.append(f"  counterexample: x = {[float(f'{v:.6g}') for v in self.witness]}")
        if self.failing_mass is not None:
            lines.append(f"  probability of the failing set: {self.failing_mass:.6g}")
        if self.failing_mass_bounds is not None:
            lo, hi = self.failing_mass_bounds
            lines.append(f"  (between {lo:.6g} and {hi:.6g})")
        if self.tier != "exact":
            lines.append(f"  inputs tried: {self.num_tried}")
        if self.detail:
            lines.append(f"  {self.detail}")
        for c in self.children:
            lines += ["  " + line for line in c.explain().splitlines()]
        if self.plot_path:
            lines.append(f"  map with the counterexample: {self.plot_path}")
        return "\n".join(lines)


def _as_neurons(neuron: Any) -> tuple[str, ...]:
    items = [neuron] if isinstance(neuron, str | NeuronId) else list(neuron)
    if not items:
        raise ToylabError("Claim: neuron must name at least one neuron, got [].")
    return tuple(str(NeuronId.parse(n)) for n in items)


@dataclasses.dataclass(frozen=True, eq=False)
class Claim:
    """A statement about a neuron (or several), decided by :func:`check`.

    Build claims with the functions of :mod:`toylab.claims` (:func:`fires_only_in`,
    :func:`dead`, ...), :meth:`from_function` / :meth:`from_analysis`, or a claim file.
    Combine them with ``&`` (all hold), ``|`` (at least one holds) and ``~`` (does
    not hold); a claim about several neurons holds when it holds for each.
    """

    kind: str
    neuron: tuple[str, ...]
    statement: str
    params: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    children: tuple[Claim, ...] = ()
    name: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS and self.kind not in COMPOSITES:
            raise ToylabError(
                f"Claim: kind must be one of {sorted(KINDS)}, got {self.kind!r}."
                + did_you_mean(str(self.kind), list(KINDS))
            )

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
        if not callable(fn):
            raise ToylabError(f"Claim.from_function: fn must be callable, got {fn!r}.")
        return cls("function", _as_neurons(neuron), statement, {"fn": fn, "inputs": inputs})

    @classmethod
    def from_analysis(cls, neuron: Any, statement: str, fn: Callable[[Any, str], Any]) -> Claim:
        """A claim decided on the exact analysis: ``fn(analysis, neuron) -> bool`` (or a
        margin, holding when ``>= 0``), where ``analysis`` is
        :func:`toylab.exact.analyze`'s result (a finite table on finite domains)."""
        if not callable(fn):
            raise ToylabError(f"Claim.from_analysis: fn must be callable, got {fn!r}.")
        return cls("analysis", _as_neurons(neuron), statement, {"fn": fn})


def _neurons_of(claims: Sequence[Claim]) -> tuple[str, ...]:
    out: list[str] = []
    for c in claims:
        out += [n for n in c.neuron if n not in out]
    return tuple(out)


def all_of(*claims: Claim, statement: str | None = None) -> Claim:
    """Holds when every claim holds."""
    cs = _flatten("all", claims)
    text = statement or " and ".join(f"({c.statement})" for c in cs)
    return Claim("all", _neurons_of(cs), text, {}, cs)


def any_of(*claims: Claim, statement: str | None = None) -> Claim:
    """Holds when at least one claim holds."""
    cs = _flatten("any", claims)
    text = statement or " or ".join(f"({c.statement})" for c in cs)
    return Claim("any", _neurons_of(cs), text, {}, cs)


def not_(claim: Claim, statement: str | None = None) -> Claim:
    """Holds when ``claim`` does not."""
    _flatten("not", [claim])
    return Claim("not", claim.neuron, statement or f"not ({claim.statement})", {}, (claim,))


def _flatten(kind: str, claims: Iterable[Any]) -> tuple[Claim, ...]:
    out: list[Claim] = []
    for c in claims:
        if not isinstance(c, Claim):
            raise ToylabError(f"{kind}_of: every argument must be a Claim, got {c!r}.")
        out += list(c.children) if c.kind == kind and kind != "not" else [c]
    if not out:
        raise ToylabError(f"{kind}: needs at least one claim.")
    return tuple(out)


def _region(where: str, region: Any) -> Any:
    if not isinstance(region, HalfPlane | Polygon | Ellipse):
        raise ToylabError(
            f"{where}: region must be a HalfPlane, Polygon or Ellipse from "
            f"toylab.claims, got {region!r}."
        )
    return region


def _number(
    where: str, name: str, v: Any, lo: float | None = None, hi: float | None = None
) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float | np.integer | np.floating):
        raise ToylabError(f"{where}: {name} must be a number, got {v!r}.")
    v = float(v)
    if not math.isfinite(v) or (lo is not None and v < lo) or (hi is not None and v > hi):
        rng = f" in [{lo}, {hi}]" if lo is not None and hi is not None else (
            f" >= {lo}" if lo is not None else "")  # fmt: skip
        raise ToylabError(f"{where}: {name} must be a finite number{rng}, got {v!r}.")
    return v


def _index(where: str, name: str, v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 0:
        raise ToylabError(f"{where}: {name} must be an integer >= 0, got {v!r}.")
    return int(v)


def fires_only_in(neuron: Any, region: Any, *, statement: str | None = None) -> Claim:
    """The neuron fires (``a > 0``) only inside ``region`` (closed).

    Margin: minus the largest activation outside the region (``>= 0`` iff it holds).
    Exact for piecewise-linear networks in 2-D: the active region minus ``region``,
    clipped exactly region by region, with its exact mass under Gaussian mixtures.
    """
    region = _region("fires_only_in", region)
    return Claim("fires_only_in", _as_neurons(neuron),
                 statement or f"fires only in {region.describe()}", {"region": region})  # fmt: skip


def dead(neuron: Any, *, statement: str | None = None) -> Claim:
    """The neuron never fires on the distribution's domain (margin: ``-max a``)."""
    return Claim("dead", _as_neurons(neuron), statement or "is dead", {})


def _group_params(where: str, cls: Any, component: Any) -> dict[str, Any]:
    if (cls is None) == (component is None):
        raise ToylabError(f"{where}: give exactly one of cls=... or component=....")
    if cls is not None:
        return {"cls": _index(where, "cls", cls)}
    return {"component": _index(where, "component", component)}


def fires_on_mass(
    neuron: Any, q: float, *, cls: int | None = None, component: int | None = None,
    statement: str | None = None,
) -> Claim:  # fmt: skip
    """``P(a > 0 | class cls)`` (or ``| component``) is at least ``q``. Margin: ``P - q``."""
    p = {"q": _number("fires_on_mass", "q", q, 0.0, 1.0)}
    p.update(_group_params("fires_on_mass", cls, component))
    group = f"class {cls}" if cls is not None else f"component {component}"
    return Claim("fires_on_mass", _as_neurons(neuron),
                 statement or f"fires on at least {q:g} of {group}", p)  # fmt: skip


def monotone(
    neuron: Any, direction: Sequence[float], *, region: Any = None, decreasing: bool = False,
    statement: str | None = None,
) -> Claim:  # fmt: skip
    """Non-decreasing (or non-increasing) along ``direction`` within ``region``.

    Margin: the smallest directional derivative (negated when ``decreasing``)."""
    p: dict[str, Any] = {"direction": tuple(float(v) for v in direction),
                         "decreasing": bool(decreasing)}  # fmt: skip
    where = ""
    if region is not None:
        p["region"] = _region("monotone", region)
        where = f" in {region.describe()}"
    word = "decreasing" if decreasing else "increasing"
    return Claim("monotone", _as_neurons(neuron),
                 statement or f"is {word} along {list(p['direction'])}{where}", p)  # fmt: skip


def linear_on(neuron: Any, region: Any, *, statement: str | None = None) -> Claim:
    """The neuron is affine on ``region``. Margin: minus the largest deviation from
    the affine map of the largest piece (0 when it holds)."""
    region = _region("linear_on", region)
    return Claim("linear_on", _as_neurons(neuron),
                 statement or f"is linear on {region.describe()}", {"region": region})  # fmt: skip


def argmax_near(
    neuron: Any, point: Sequence[float], eps: float, *, statement: str | None = None
) -> Claim:
    """Every maximiser over the domain lies within ``eps`` of ``point``.

    Margin: ``eps`` minus the distance of the farthest maximiser. The searched tier
    compares against the best value found inside the ball (a lower bound of its max)."""
    pt = tuple(float(v) for v in point)
    p = {"point": pt, "eps": _number("argmax_near", "eps", eps, 0.0)}
    return Claim("argmax_near", _as_neurons(neuron),
                 statement or f"has its maximum within {eps:g} of {list(pt)}", p)  # fmt: skip


def selectivity(
    neuron: Any, s: float, *, component: int | None = None, cls: int | None = None,
    statement: str | None = None,
) -> Claim:  # fmt: skip
    """The group's share of the mean activation, ``E[a 1(group)] / E[a]``, is at least ``s``.

    Exact from per-component Gaussian moments (mixtures) or the finite table."""
    p = {"s": _number("selectivity", "s", s)}
    p.update(_group_params("selectivity", cls, component))
    group = f"class {cls}" if cls is not None else f"component {component}"
    return Claim("selectivity", _as_neurons(neuron),
                 statement or f"has selectivity >= {s:g} for {group}", p)  # fmt: skip


def ablation_lowers_accuracy(
    neuron: Any, cls: int, delta: float, *, statement: str | None = None
) -> Claim:
    """Zero-ablating the neuron lowers the accuracy on class ``cls`` by at least ``delta``.

    Margin: ``drop - delta``; exact via :func:`toylab.exact.analyze` on the ablated
    network (:func:`toylab.models.ablate`)."""
    p = {"cls": _index("ablation_lowers_accuracy", "cls", cls),
         "delta": _number("ablation_lowers_accuracy", "delta", delta)}  # fmt: skip
    return Claim("ablation_lowers_accuracy", _as_neurons(neuron),
                 statement or f"ablating it lowers class {cls} accuracy by >= {delta:g}", p)  # fmt: skip


def matches_circuit(
    neuron: Any, circuit: Any, circuit_neuron: str, tol: float, *, norm: str = "sup",
    statement: str | None = None,
) -> Claim:  # fmt: skip
    """The neuron equals ``circuit``'s neuron ``circuit_neuron`` within ``tol``.

    ``norm="sup"`` (over the domain) or ``"l2"`` (under the distribution); exact via
    :func:`toylab.circuits.functional_distance` where it is exact."""
    if norm not in ("sup", "l2"):
        raise ToylabError(f"matches_circuit: norm must be 'sup' or 'l2', got {norm!r}.")
    if not hasattr(circuit, "affine_layers"):
        raise ToylabError(f"matches_circuit: circuit must be a toylab MLP, got {circuit!r}.")
    p = {"circuit": circuit, "circuit_neuron": str(NeuronId.parse(circuit_neuron)),
         "tol": _number("matches_circuit", "tol", tol, 0.0), "norm": norm}  # fmt: skip
    return Claim("matches_circuit", _as_neurons(neuron), statement
                 or f"matches the circuit's {circuit_neuron} within {tol:g} ({norm})", p)  # fmt: skip


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
    """Decide ``claim`` about ``model`` under ``dist``.

    ``tier="auto"`` decides exactly where that is possible (piecewise-linear networks
    on 2-D inputs or on ``plane = (origin, d1, d2)`` restricted to ``window``, and
    finite domains), otherwise searches ``budget`` inputs for a counterexample
    (pointwise claims) or estimates from ``num_samples`` samples with a
    ``confidence`` interval (claims about the distribution). ``tier`` may force
    ``"searched"`` or ``"sampled"``. ``seed`` makes searches and samples reproducible.
    """
    opts = _options(tier, budget, num_samples, confidence, seed)
    if not isinstance(claim, Claim):
        raise ToylabError(f"check: claim must be a toylab.claims.Claim, got {claim!r}.")
    return _decide(claim, Context(model, dist, plane=plane, window=window), opts)


def _options(tier: str, budget: Any, num_samples: Any, confidence: Any, seed: Any) -> _Options:
    if tier != "auto" and tier not in TIERS:
        raise ToylabError(
            f"check: tier must be 'auto' or one of {list(TIERS)}, got {tier!r}."
            + did_you_mean(str(tier), TIERS)
        )
    return _Options(
        tier,
        int(_number("check", "budget", budget, 1)),
        int(_number("check", "num_samples", num_samples, 2)),
        _number("check", "confidence", confidence, 0.5, 0.999999),
        int(seed),
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
    """:func:`check` every claim, sharing the exact machinery (partitions) between them."""
    claims = list(claims)
    for c in claims:
        if not isinstance(c, Claim):
            raise ToylabError(f"check_all: every claim must be a Claim, got {c!r}.")
    opts = _options(tier, budget, num_samples, confidence, seed)
    ctx = Context(model, dist, plane=plane, window=window)
    return [_decide(c, ctx, opts) for c in claims]


def _combine(claim: Claim, results: list[ClaimResult], mode: str) -> ClaimResult:
    tier = max((r.tier for r in results), key=_RANK.__getitem__)
    if mode == "not":
        (r,) = results
        return ClaimResult(claim.statement, ", ".join(claim.neuron), claim.kind, r.tier,
                           not r.holds, -r.margin, num_tried=r.num_tried,
                           detail="the inner claim " + ("holds" if r.holds else "fails"),
                           children=(r,))  # fmt: skip
    holds = all(r.holds for r in results) if mode == "all" else any(r.holds for r in results)
    margin = min(r.margin for r in results) if mode == "all" else max(r.margin for r in results)
    bad = next((r for r in results if not r.holds), None)
    fields: dict[str, Any] = {}
    if not holds and bad is not None:
        fields = {"witness": bad.witness, "witness_region": bad.witness_region,
                  "failing_mass": bad.failing_mass}  # fmt: skip
    return ClaimResult(claim.statement, ", ".join(claim.neuron), claim.kind, tier, holds, margin,
                       num_tried=sum(r.num_tried for r in results), children=tuple(results),
                       **fields)  # fmt: skip


def _decide(claim: Claim, ctx: Context, opts: _Options) -> ClaimResult:
    if claim.kind in COMPOSITES:
        results = [_decide(c, ctx, opts) for c in claim.children]
        return _combine(claim, results, claim.kind)
    if len(claim.neuron) > 1:
        parts = [dataclasses.replace(claim, neuron=(n,)) for n in claim.neuron]
        return _combine(claim, [_decide(c, ctx, opts) for c in parts], "all")
    nid = ctx.resolve(claim.neuron[0])
    kind = KINDS[claim.kind]
    params = dict(claim.params)
    tiers = TIERS if opts.tier == "auto" else (opts.tier,)
    pointwise = kind.pointwise
    if claim.kind == "matches_circuit" and params.get("norm") == "l2":
        pointwise = None
    for t in tiers:
        fields = None
        if t == "exact":
            if kind.exact is not None:
                fields = kind.exact(ctx, nid, _resolved(params, ctx))
            if fields is None and ctx.finite and pointwise is not None:
                if not kind.finite_pointwise:
                    raise ToylabError(
                        f"check: a {claim.kind!r} claim needs a continuous domain; "
                        f"{type(ctx.dist).__name__} is finite."
                    )
                fields = _enumerate(ctx, nid, params, kind, pointwise)
        elif t == "searched" and pointwise is not None and not ctx.finite:
            fields = _searched(ctx, nid, params, kind, pointwise, opts)
        elif t == "sampled" and (kind.sampled is not None or pointwise is not None):
            if kind.sampled is not None:
                fields = kind.sampled(ctx, nid, _resolved(params, ctx), opts)
            else:
                fields = _sampled_pointwise(ctx, nid, params, kind, pointwise, opts)
        if fields is not None:
            return ClaimResult(claim.statement, str(nid), claim.kind, t, **fields)
    raise ToylabError(
        f"check: cannot decide the {claim.kind!r} claim {claim.statement!r} at tier "
        f"{opts.tier!r} for this model and distribution; try tier='auto'."
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
            raise ToylabError(
                f"check: the half-plane's normal has {len(p['region'].normal)} entries but the "
                f"inputs have {ctx.dim} dimensions."
            )
    return p


def _margin_fns(ctx: Context, nid: NeuronId, params: dict, kind: Any, pointwise: Any) -> tuple:
    p = _resolved(params, ctx)
    if kind.name == "argmax_near":
        p["_inside_best"] = _argmax_pointwise_factory(ctx, nid, p)

    def margin_np(x: np.ndarray) -> np.ndarray:
        return np.asarray(pointwise(ctx, nid, p, x, np), np.float64)

    margin_jnp = None
    if kind.name != "function":
        import jax.numpy as jnp

        def margin_jnp(x: Any) -> Any:
            return pointwise(ctx, nid, p, x, jnp)

    return margin_np, margin_jnp


def _searched(ctx: Context, nid: NeuronId, params: dict, kind: Any, pointwise: Any,
              opts: _Options) -> dict[str, Any]:  # fmt: skip
    margin_np, margin_jnp = _margin_fns(ctx, nid, params, kind, pointwise)
    low = np.tile(ctx.low, kind.arity)
    high = np.tile(ctx.high, kind.arity)
    out = search(margin_np, margin_jnp, low, high, budget=opts.budget, seed=opts.seed)
    fields: dict[str, Any] = {"holds": not out.found, "margin": out.margin,
                              "num_tried": out.num_tried}  # fmt: skip
    if out.found:
        fields["witness"] = out.x
        fields["detail"] = f"counterexample found by {out.engine} search"
    else:
        fields["detail"] = f"no counterexample in {out.num_tried} inputs ({out.engine} search)"
    return fields


def _enumerate(ctx: Context, nid: NeuronId, params: dict, kind: Any, pointwise: Any
               ) -> dict[str, Any]:  # fmt: skip
    dom = ctx.dist.domain
    inputs = np.asarray(dom.inputs, np.float64)
    probs = np.asarray(dom.probs, np.float64)
    margin_np, _ = _margin_fns(ctx, nid, params, kind, pointwise)
    m = np.where(probs > 0, margin_np(inputs), np.inf)
    worst = int(np.argmin(m))
    fails = m < 0
    fields: dict[str, Any] = {"holds": not fails.any(), "margin": float(m[worst]),
                              "num_tried": len(inputs)}  # fmt: skip
    if fails.any():
        fields.update(witness=inputs[worst], failing_mass=float(probs[fails].sum()),
                      detail=f"fails on {int(fails.sum())} of {len(inputs)} inputs")  # fmt: skip
    return fields


def _sampled_pointwise(ctx: Context, nid: NeuronId, params: dict, kind: Any, pointwise: Any,
                       opts: _Options) -> dict[str, Any]:  # fmt: skip
    import jax

    margin_np, _ = _margin_fns(ctx, nid, params, kind, pointwise)
    x, _, _ = ctx.sample(jax.random.key(opts.seed), opts.num_samples * kind.arity)
    x = x.reshape(opts.num_samples, kind.arity * ctx.dim)
    m = margin_np(x)
    ok = m >= 0
    k, n = int(ok.sum()), len(m)
    fields: dict[str, Any] = {"holds": k == n, "margin": float(m.min()), "num_tried": n,
                              "estimate": k / n, "interval": wilson(k, n, opts.confidence),
                              "interval_method": "Wilson",
                              "detail": f"holds at {k} of {n} sampled inputs"}  # fmt: skip
    if k < n:
        fields["witness"] = x[int(np.argmin(m))]
        fields["failing_mass"] = 1 - k / n
    return fields


# --------------------------------------------------------------------------- asserting


def plot_counterexample(result: ClaimResult, model: Any, dist: Any, path: str | Path, *,
                        plane: Any = None, window: Any = None) -> Path:  # fmt: skip
    """Write a PNG of the failing neuron's map with the counterexample marked."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from toylab.viz import NeuronMapDisplay

    leaf = result
    while leaf.children:
        leaf = next((c for c in leaf.children if not c.holds), leaf.children[0])
    ctx = Context(model, dist, plane=plane, window=window)
    if ctx.dim != 2 or ctx.finite:
        raise ToylabError("plot_counterexample: needs 2-D continuous inputs (or a plane).")
    nid = ctx.resolve(leaf.neuron.split(",")[0])
    xs = np.linspace(ctx.low[0], ctx.high[0], 160)
    ys = np.linspace(ctx.low[1], ctx.high[1], 160)
    xx, yy = np.meshgrid(xs, ys)
    vals = ctx.values(np.stack([xx.ravel(), yy.ravel()], -1), nid).reshape(xx.shape)
    points = {}
    if leaf.witness is not None:
        points["counterexample"] = np.asarray(leaf.witness, float).reshape(-1, 2)
    segs = [np.stack([q, np.roll(q, -1, axis=0)], 1) for q in leaf.witness_region]
    disp = NeuronMapDisplay(str(nid), xx, yy, vals, points=points,
                            segments=np.concatenate(segs) if segs else None,
                            title=f"{nid}: {leaf.statement}"[:70])  # fmt: skip
    disp.plot()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    disp.ax_.figure.savefig(path, dpi=80)
    plt.close(disp.ax_.figure)
    return path


def assert_claim(
    claim: Claim, model: Any, dist: Any, *, plot_dir: str | Path | None = None, **kwargs: Any
) -> ClaimResult:
    """:func:`check` the claim; raise ``AssertionError`` with the verdict if it fails.

    On failure with a 2-D counterexample, a PNG of the neuron's map with the
    counterexample marked is written to ``plot_dir`` (default: a new temporary
    directory) and its path is named in the message. Plotting never decides anything:
    if it fails, the message says so and the assertion is raised all the same.
    """
    result = check(claim, model, dist, **kwargs)
    if result.holds:
        return result
    note = ""
    try:
        out_dir = Path(plot_dir) if plot_dir is not None else Path(
            tempfile.mkdtemp(prefix="toylab-claim-"))  # fmt: skip
        slug = "".join(ch if ch.isalnum() else "_" for ch in result.neuron)[:40]
        path = plot_counterexample(result, model, dist, out_dir / f"counterexample_{slug}.png",
                                   plane=kwargs.get("plane"), window=kwargs.get("window"))  # fmt: skip
        result = dataclasses.replace(result, plot_path=str(path))
    except Exception as e:  # noqa: BLE001 - plotting is a convenience, never a verdict
        note = f"\n  (no plot: {e})"
    raise AssertionError("claim failed:\n" + result.explain() + note)
