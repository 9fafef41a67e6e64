"""How each built-in kind of claim is decided, tier by tier (private).

A kind may provide

* ``pointwise(ctx, nid, p, x, xp) -> margin (N,)``: a margin at every input (``>= 0``
  where the claim holds there). Pointwise kinds are decided exactly on finite domains
  (enumeration), searched for counterexamples elsewhere, and sampled;
* ``exact(ctx, nid, p) -> dict | None``: an exact decision (piecewise-linear 2-D
  geometry, per-component Gaussian integrals, finite tables), or ``None`` where it does
  not apply;
* ``sampled(ctx, nid, p, opts) -> dict``: a Monte Carlo estimate with a confidence
  interval, for kinds about the distribution (masses, shares, accuracies).

The dicts hold :class:`toylab.claims.ClaimResult` fields.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy import stats

from toylab._errors import ToylabError
from toylab.claims._context import Context
from toylab.claims._search import wilson
from toylab.claims.regions import clip_convex, polygon_area
from toylab.neurons import NeuronId

_REL = 1e-9  # relative tolerance of exact comparisons (the partition's own band)


@dataclasses.dataclass(frozen=True)
class Kind:
    name: str
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    pointwise: Callable[..., Any] | None = None
    arity: int = 1
    exact: Callable[..., Any] | None = None
    sampled: Callable[..., Any] | None = None
    finite_pointwise: bool = True  # pointwise margins are meaningful on finite domains


def _vals(poly: np.ndarray, m: np.ndarray) -> np.ndarray:
    return poly @ m[:2] + m[2]


def _band(poly: np.ndarray, m: np.ndarray) -> float:
    return _REL * float((np.abs(poly) @ np.abs(m[:2]) + abs(m[2])).max() + 1e-300)


def _centroid(poly: np.ndarray) -> np.ndarray:
    return poly.mean(0)


def _group(ctx: Context, p: dict[str, Any]) -> tuple[str, np.ndarray]:
    """Components (mixtures) making up the group named by ``cls`` or ``component``."""
    cls, comp = p.get("cls"), p.get("component")
    if ctx.finite or not ctx.gaussian:
        if comp is not None:
            raise ToylabError(
                f"component={comp} needs a Gaussian mixture, got {type(ctx.dist).__name__}; "
                "use cls=... for a class."
            )
        return f"class {cls}", np.array([])
    _, _, _, classes = ctx.mixture
    if comp is not None:
        if not 0 <= comp < len(classes):
            raise ToylabError(f"component must be in 0..{len(classes) - 1}, got {comp}.")
        return f"component {comp}", np.array([comp])
    if cls is None or not 0 <= cls < int(classes.max()) + 1:
        raise ToylabError(f"cls must be in 0..{int(classes.max())}, got {cls}.")
    return f"class {cls}", np.nonzero(classes == cls)[0]


def _sample_group(ctx: Context, p: dict[str, Any], opts: Any) -> tuple[np.ndarray, np.ndarray]:
    """Samples and a mask of those in the group (class label or mixture component)."""
    import jax

    x, y, latent = ctx.sample(jax.random.key(opts.seed), opts.num_samples)
    if p.get("component") is not None:
        if not isinstance(latent, dict) or "component" not in latent:
            raise ToylabError("component=... needs a distribution with mixture components.")
        return x, np.asarray(latent["component"]) == p["component"]
    if p.get("cls") is not None:
        return x, y == p["cls"]
    return x, np.ones(len(x), bool)


# --------------------------------------------------------------------------- fires only in / dead


def _fires_only_pointwise(ctx: Context, nid: NeuronId, p: dict, x: Any, xp: Any) -> Any:
    a = ctx.values(x, nid, xp)
    region = p.get("region")
    if region is None:
        return -a
    return xp.maximum(-a, region.signed(x, xp))


def _fires_only_exact(ctx: Context, nid: NeuronId, p: dict) -> dict | None:
    if not ctx.exact_geometry:
        return None
    region = p.get("region")
    polys, maps = ctx.pieces(nid)
    sup_out = -math.inf
    failing: list[np.ndarray] = []
    failing_upper: list[np.ndarray] = []
    outside_vertices: list[tuple[float, Any]] = []
    for poly, m in zip(polys, maps, strict=True):
        outs = [poly] if region is None else region.clip_outside(poly)
        for piece in outs:
            sup_out = max(sup_out, float(_vals(piece, m).max()))
        active = clip_convex(poly, m[:2], m[2] - 0.0, strict=True)
        thr = _band(poly, m)
        if len(active) < 3 or float(_vals(active, m).max()) <= thr:
            continue
        if region is None:
            failing.append(active)
            continue
        failing += region.clip_outside(active)
        failing_upper += region.clip_outside_upper(active)
        if not region.contains_poly(active):
            for v in active[~region.contains(active)]:
                outside_vertices.append((float(_vals(v[None], m)[0]), (v, active, m)))
    if region is None:
        failing_upper = failing
    fails = bool(failing) or bool(outside_vertices)
    out: dict[str, Any] = {"holds": not fails}
    if failing:
        best = max(
            failing, key=lambda q: float(_vals(_centroid(q)[None], _map_of(q, polys, maps))[0])
        )
        out["witness"] = _centroid(best)
        out["witness_region"] = tuple(failing)
        out["margin"] = -max(sup_out, 0.0) if sup_out > 0 else -_REL
    elif outside_vertices:  # only an ellipse's sliver between its polygon approximations
        val, (v, active, m) = max(outside_vertices, key=lambda t: t[0])
        w = v + 1e-6 * (_centroid(active) - v)
        out["witness"] = w
        out["margin"] = -max(val, _REL)
    else:
        out["margin"] = max(0.0, -sup_out) if math.isfinite(sup_out) else 0.0
    if fails:
        lo, hi = ctx.mass(failing), ctx.mass(failing_upper)
        if lo is not None and hi is not None:
            out["failing_mass"] = lo if failing is failing_upper else 0.5 * (lo + hi)
            if failing is not failing_upper:
                out["failing_mass_bounds"] = (lo, hi)
        area = sum(polygon_area(q) for q in failing)
        out["detail"] = f"fires outside on {len(failing)} piece(s) of total area {area:.4g}"
    out["num_tried"] = len(polys)
    return out


def _map_of(q: np.ndarray, polys: list[np.ndarray], maps: np.ndarray) -> np.ndarray:
    """The affine map of the region holding the point ``centroid(q)``."""
    c = _centroid(q)
    for poly, m in zip(polys, maps, strict=True):
        e = np.roll(poly, -1, axis=0) - poly
        d = c - poly
        if np.all(e[:, 0] * d[:, 1] - e[:, 1] * d[:, 0] >= -1e-12 * (1 + np.abs(poly).max()) ** 2):
            return m
    return maps[0]


# --------------------------------------------------------------------------- monotone


def _direction(ctx: Context, p: dict) -> np.ndarray:
    d = np.asarray(p["direction"], np.float64)
    if d.shape != (ctx.dim,) or not np.isfinite(d).all() or not d.any():
        raise ToylabError(
            f"monotone: direction must be a non-zero vector of length {ctx.dim}, got "
            f"{p['direction']!r}."
        )
    return d


def _monotone_pointwise(ctx: Context, nid: NeuronId, p: dict, x: Any, xp: Any) -> Any:
    d = _direction(ctx, p)
    slope = ctx.directional(x, nid, d, xp)
    if p.get("decreasing"):
        slope = -slope
    region = p.get("region")
    if region is None:
        return slope
    return xp.maximum(slope, -region.signed(x, xp) - 1e-12)


def _covered(ctx: Context, region: Any, poly: np.ndarray) -> list[np.ndarray] | None:
    """``poly ∩ region`` as convex pieces, or ``None`` when they do not overlap."""
    if region is None:
        return [poly]
    if not region.intersects(poly):
        return None
    inside = region.clip_inside(poly)
    return inside or [poly]


def _monotone_exact(ctx: Context, nid: NeuronId, p: dict) -> dict | None:
    if not ctx.exact_geometry:
        return None
    d = _direction(ctx, p)
    sign = -1.0 if p.get("decreasing") else 1.0
    polys, maps = ctx.pieces(nid)
    worst, witness, failing = math.inf, None, []
    for poly, m in zip(polys, maps, strict=True):
        pieces = _covered(ctx, p.get("region"), poly)
        if pieces is None:
            continue
        slope = sign * float(m[:2] @ d)
        tol = _REL * float(np.abs(m[:2]).sum() * np.abs(d).sum())
        if slope < -tol:
            failing += pieces
        if slope < worst:
            worst, witness = slope, _centroid(max(pieces, key=polygon_area))
    if not math.isfinite(worst):
        return {"holds": True, "margin": math.inf, "detail": "the region misses the domain"}
    out: dict[str, Any] = {"holds": not failing, "margin": worst, "num_tried": len(polys)}
    if failing:
        out.update(witness=witness, witness_region=tuple(failing), failing_mass=ctx.mass(failing),
                   detail=f"slope {worst:.4g} along {d.tolist()} on {len(failing)} piece(s)")  # fmt: skip
    return out


# --------------------------------------------------------------------------- linear on


def _linear_pointwise(ctx: Context, nid: NeuronId, p: dict, x: Any, xp: Any) -> Any:
    n = ctx.dim
    a, b = x[..., :n], x[..., n:]
    fa, fb, fm = ctx.values(a, nid, xp), ctx.values(b, nid, xp), ctx.values(0.5 * (a + b), nid, xp)
    defect = xp.abs(fm - 0.5 * (fa + fb))
    tol = 1e-7 * (1.0 + xp.abs(fa) + xp.abs(fb))
    region = p["region"]
    outside = -xp.minimum(region.signed(a, xp), region.signed(b, xp))
    return xp.maximum(tol - defect, outside)


def _linear_exact(ctx: Context, nid: NeuronId, p: dict) -> dict | None:
    if not ctx.exact_geometry:
        return None
    polys, maps = ctx.pieces(nid)
    covered = []
    for poly, m in zip(polys, maps, strict=True):
        pieces = _covered(ctx, p["region"], poly)
        if pieces is not None:
            covered.append((pieces, m))
    if not covered:
        return {"holds": True, "margin": 0.0, "detail": "the region misses the domain"}
    ref = max(covered, key=lambda t: sum(polygon_area(q) for q in t[0]))[1]
    worst, witness, failing = 0.0, None, []
    for pieces, m in covered:
        for q in pieces:
            dev = float(np.abs(_vals(q, m) - _vals(q, ref)).max())
            if dev > max(_band(q, m), _band(q, ref)) * 10:
                failing.append(q)
                if dev > worst:
                    worst, witness = dev, _centroid(q)
    out: dict[str, Any] = {"holds": not failing, "margin": -worst, "num_tried": len(polys)}
    if failing:
        out.update(witness=witness, witness_region=tuple(failing), failing_mass=ctx.mass(failing),
                   detail=f"{len(covered)} linear pieces meet the region; largest deviation from "
                          f"the main piece's affine map: {worst:.4g}")  # fmt: skip
    return out


# --------------------------------------------------------------------------- argmax near


def _argmax_exact(ctx: Context, nid: NeuronId, p: dict) -> dict | None:
    point = np.asarray(p["point"], np.float64)
    eps = float(p["eps"])
    if ctx.finite:
        vals = ctx.table.values(str(nid))
        inputs = np.asarray(ctx.dist.domain.inputs, np.float64)
        probs = np.asarray(ctx.dist.domain.probs)
        vals = np.where(probs > 0, vals, -np.inf)
        top = vals.max()
        at = inputs[vals >= top - _REL * (1 + abs(top))]
        count = len(inputs)
    elif ctx.exact_geometry:
        polys, maps = ctx.pieces(nid)
        verts = np.concatenate(polys)
        vals = np.concatenate([_vals(q, m) for q, m in zip(polys, maps, strict=True)])
        top = vals.max()
        band = _REL * float(np.abs(vals).max() + 1e-300) * 10
        at = verts[vals >= top - band]
        count = len(polys)
    else:
        return None
    dist = np.linalg.norm(at - point, axis=1)
    far = int(dist.argmax())
    out: dict[str, Any] = {"holds": bool(dist[far] <= eps * (1 + 1e-12)),
                           "margin": eps - float(dist[far]), "num_tried": count,
                           "detail": f"maximum {top:.6g}"}  # fmt: skip
    if not out["holds"]:
        out["witness"] = at[far]
        out["detail"] += f", attained at distance {dist[far]:.4g} from {point.tolist()}"
    return out


def _argmax_pointwise_factory(ctx: Context, nid: NeuronId, p: dict) -> float:
    """A lower bound of the maximum inside the ball: gradient ascent from a few starts."""
    point = np.asarray(p["point"], np.float64)
    eps = float(p["eps"])
    rng = np.random.default_rng(0)
    starts = point + eps * rng.uniform(-1, 1, (64, ctx.dim)) / np.sqrt(ctx.dim)
    starts = np.concatenate([point[None], starts])
    best = float(np.max(ctx.values(starts, nid)))
    x = starts.copy()
    for i in range(50):
        g = np.stack([ctx.directional(x, nid, e) for e in np.eye(ctx.dim)], -1)
        x = x + 0.1 * eps * 0.95**i * g / (np.linalg.norm(g, axis=1, keepdims=True) + 1e-30)
        off = x - point
        r = np.linalg.norm(off, axis=1, keepdims=True)
        x = point + off * np.minimum(1.0, eps / np.maximum(r, 1e-300))
        best = max(best, float(np.max(ctx.values(x, nid))))
    return best


def _argmax_pointwise(ctx: Context, nid: NeuronId, p: dict, x: Any, xp: Any) -> Any:
    inside_best = p["_inside_best"]
    point = np.asarray(p["point"], np.float64)
    r = xp.sqrt(xp.sum((x - point) ** 2, axis=-1) + 1e-300)
    return xp.maximum(float(p["eps"]) - r, inside_best - ctx.values(x, nid, xp))


# --------------------------------------------------------------------------- masses and shares


def _fires_on_mass_exact(ctx: Context, nid: NeuronId, p: dict) -> dict | None:
    q = float(p["q"])
    label, comps = _group(ctx, p)
    if ctx.finite:
        vals = ctx.table.values(str(nid))
        probs = np.asarray(ctx.dist.domain.probs, np.float64)
        mask = np.asarray(ctx.dist.domain.labels) == p["cls"]
        total = float(probs[mask].sum())
        frac = float(probs[mask & (vals > 0)].sum()) / total if total > 0 else 0.0
        count = len(probs)
    elif ctx.exact_masses:
        polys, maps = ctx.pieces(nid, ctx.whole_plane)
        active = []
        for poly, m in zip(polys, maps, strict=True):
            a = clip_convex(poly, m[:2], m[2], strict=True)
            if len(a) >= 3 and float(_vals(a, m).max()) > _band(poly, m):
                active.append(a)
        _, _, weights, _ = ctx.mixture
        masses = ctx.masses(active).sum(1) if active else np.zeros(len(weights))
        frac = float(masses[comps].sum() / weights[comps].sum())
        count = len(polys)
    else:
        return None
    return {"holds": frac >= q - 1e-12, "margin": frac - q, "estimate": frac, "num_tried": count,
            "detail": f"P(a > 0 | {label}) = {frac:.6g}"}  # fmt: skip


def _fires_on_mass_sampled(ctx: Context, nid: NeuronId, p: dict, opts: Any) -> dict:
    x, mask = _sample_group(ctx, p, opts)
    a = ctx.values(x[mask], nid)
    n, k = int(mask.sum()), int((a > 0).sum())
    frac = k / n if n else 0.0
    q = float(p["q"])
    return {"holds": frac >= q, "margin": frac - q, "estimate": frac, "num_tried": len(x),
            "interval": wilson(k, n, opts.confidence), "interval_method": "Wilson",
            "detail": f"{k} of {n} group samples fire"}  # fmt: skip


def _component_means(ctx: Context, nid: NeuronId) -> np.ndarray:
    """Exact ``E[a 1(component k)]`` for every component (Gaussian mixtures)."""
    from toylab.exact import mixture_polygon_moments

    polys, maps = ctx.pieces(nid, ctx.whole_plane)
    means, covs, weights, _ = ctx.mixture
    m0, m1, _ = mixture_polygon_moments(polys, means, covs, weights)
    return np.einsum("krd,rd->k", m1, maps[:, :2]) + m0 @ maps[:, 2]


def _selectivity_exact(ctx: Context, nid: NeuronId, p: dict) -> dict | None:
    s = float(p["s"])
    label, comps = _group(ctx, p)
    if ctx.finite:
        if p.get("cls") is None:
            return None
        vals = ctx.table.values(str(nid))
        probs = np.asarray(ctx.dist.domain.probs, np.float64)
        mask = np.asarray(ctx.dist.domain.labels) == p["cls"]
        part, total = float(probs[mask] @ vals[mask]), float(probs @ vals)
    elif ctx.exact_masses:
        per = _component_means(ctx, nid)
        part, total = float(per[comps].sum()), float(per.sum())
    else:
        return None
    if not total > 0:
        return {"holds": False, "margin": -math.inf, "detail": f"E[a] = {total:.4g} is not "
                "positive, so selectivity is undefined"}  # fmt: skip
    share = part / total
    return {"holds": share >= s - 1e-12, "margin": share - s, "estimate": share,
            "detail": f"E[a·1({label})] / E[a] = {part:.6g} / {total:.6g} = {share:.6g}"}  # fmt: skip


def _selectivity_sampled(ctx: Context, nid: NeuronId, p: dict, opts: Any) -> dict:
    x, mask = _sample_group(ctx, p, opts)
    a = ctx.values(x, nid)
    c = a * mask
    n = len(a)
    ma, mc = a.mean(), c.mean()
    s = float(p["s"])
    if not ma > 0:
        return {"holds": False, "margin": -math.inf, "num_tried": n,
                "detail": "the sample mean of a is not positive"}  # fmt: skip
    r = mc / ma
    cov = np.cov(np.stack([c, a]))
    var = (cov[0, 0] - 2 * r * cov[0, 1] + r * r * cov[1, 1]) / (n * ma * ma)
    z = float(stats.norm.ppf(0.5 + opts.confidence / 2))
    half = z * math.sqrt(max(var, 0.0))
    return {"holds": r >= s, "margin": r - s, "estimate": r, "num_tried": n,
            "interval": (r - half, r + half), "interval_method": "delta-method normal"}  # fmt: skip


def _class_accuracy_finite(ctx: Context, model: Any, cls: int) -> float:
    from toylab.network import Network

    layers, acts = model.affine_layers()
    dom = ctx.dist.domain
    out = Network.from_layers(layers, acts).forward(np.asarray(dom.inputs, np.float64))["output"]
    labels = np.asarray(dom.labels)
    probs = np.asarray(dom.probs, np.float64)
    unique = (out == out.max(-1, keepdims=True)).sum(-1) == 1
    ok = (out.argmax(-1) == labels) & unique & (labels == cls)
    return float(probs[ok].sum() / probs[labels == cls].sum())


def _ablated(ctx: Context, nid: NeuronId) -> Any:
    from toylab.models import ablate

    if nid.pre or not nid.layer.startswith("hidden_"):
        raise ToylabError(
            f"ablation_lowers_accuracy: neuron must be a hidden post-activation neuron like "
            f"'hidden_0:3', got {str(nid)!r}."
        )
    return ablate(ctx.model, str(nid))


def _ablation_exact(ctx: Context, nid: NeuronId, p: dict) -> dict | None:
    cls, delta = int(p["cls"]), float(p["delta"])
    ablated = _ablated(ctx, nid)
    if ctx.finite:
        before = _class_accuracy_finite(ctx, ctx.model, cls)
        after = _class_accuracy_finite(ctx, ablated, cls)
    elif ctx.exact_masses:
        from toylab.exact import analyze

        ra, rb = analyze(ctx.model, ctx.dist), analyze(ablated, ctx.dist)
        before = float(ra.class_accuracy[cls])  # type: ignore[union-attr,index]
        after = float(rb.class_accuracy[cls])  # type: ignore[union-attr,index]
    else:
        return None
    drop = before - after
    return {"holds": drop >= delta - 1e-12, "margin": drop - delta, "estimate": drop,
            "detail": f"class {cls} accuracy {before:.6g} -> {after:.6g} when ablated"}  # fmt: skip


def _ablation_sampled(ctx: Context, nid: NeuronId, p: dict, opts: Any) -> dict:
    import jax

    from toylab.network import Network

    cls, delta = int(p["cls"]), float(p["delta"])
    x, y, _ = ctx.sample(jax.random.key(opts.seed), opts.num_samples)
    x, y = x[y == cls], y[y == cls]
    diffs = []
    for model in (ctx.model, _ablated(ctx, nid)):
        layers, acts = model.affine_layers()
        out = Network.from_layers(layers, acts).forward(x)["output"]
        diffs.append((out.argmax(-1) == y).astype(float))
    d = diffs[0] - diffs[1]
    n = len(d)
    drop = float(d.mean()) if n else 0.0
    z = float(stats.norm.ppf(0.5 + opts.confidence / 2))
    half = z * float(d.std(ddof=1)) / math.sqrt(n) if n > 1 else math.inf
    return {"holds": drop >= delta, "margin": drop - delta, "estimate": drop, "num_tried": n,
            "interval": (drop - half, drop + half),
            "interval_method": "normal, paired differences"}  # fmt: skip


# --------------------------------------------------------------------------- matches a circuit


def _circuit_ctx(ctx: Context, p: dict) -> tuple[Context, NeuronId]:
    other = Context(p["circuit"], ctx.dist, plane=ctx.plane,
                    window=ctx.window if ctx.plane is not None else None)  # fmt: skip
    return other, other.resolve(p["circuit_neuron"])


def _matches_pointwise(ctx: Context, nid: NeuronId, p: dict, x: Any, xp: Any) -> Any:
    other, onid = _circuit_ctx(ctx, p)
    return float(p["tol"]) - xp.abs(ctx.values(x, nid, xp) - other.values(x, onid, xp))


def _matches_exact(ctx: Context, nid: NeuronId, p: dict) -> dict | None:
    if ctx.plane is not None:
        return None
    try:
        from toylab.circuits import functional_distance
    except ImportError:
        return None
    res = functional_distance(ctx.model, p["circuit"], ctx.dist,
                              neurons={str(nid): str(p["circuit_neuron"])})  # fmt: skip
    tier = getattr(res, "tier", "exact")
    if tier != "exact":
        return None
    norm = p.get("norm", "sup")
    value = np.asarray(res.sup if norm == "sup" else res.l2, np.float64).ravel()
    if value.size != 1:
        return None
    dist = float(value[0])
    tol = float(p["tol"])
    out: dict[str, Any] = {"holds": dist <= tol, "margin": tol - dist, "estimate": dist,
                           "detail": f"{norm} distance {dist:.6g} ({res.method})"}  # fmt: skip
    if not out["holds"] and norm == "sup":
        out["witness"] = np.asarray(res.argsup, np.float64).reshape(-1)[: ctx.dim]
    return out


def _matches_sampled(ctx: Context, nid: NeuronId, p: dict, opts: Any) -> dict:
    import jax

    x, _, _ = ctx.sample(jax.random.key(opts.seed), opts.num_samples)
    other, onid = _circuit_ctx(ctx, p)
    sq = (ctx.values(x, nid) - other.values(x, onid)) ** 2
    n = len(sq)
    z = float(stats.norm.ppf(0.5 + opts.confidence / 2))
    m, half = float(sq.mean()), z * float(sq.std(ddof=1)) / math.sqrt(n)
    l2 = math.sqrt(m)
    tol = float(p["tol"])
    return {"holds": l2 <= tol, "margin": tol - l2, "estimate": l2, "num_tried": n,
            "interval": (math.sqrt(max(m - half, 0.0)), math.sqrt(m + half)),
            "interval_method": "normal interval of E[(a-b)^2], square-rooted"}  # fmt: skip


# --------------------------------------------------------------------------- user functions


def _function_pointwise(ctx: Context, nid: NeuronId, p: dict, x: Any, xp: Any) -> Any:
    vals = np.asarray(ctx.values(np.asarray(x), nid))
    ok = p["fn"](np.asarray(x), vals) if p.get("inputs") else p["fn"](vals)
    ok = np.broadcast_to(np.asarray(ok, bool), vals.shape)
    return np.where(ok, 1.0, -1.0)


def _analysis_exact(ctx: Context, nid: NeuronId, p: dict) -> dict | None:
    from toylab._errors import NotApplicable
    from toylab.exact import analyze

    if ctx.plane is not None:
        return None
    try:
        res = analyze(ctx.model, ctx.dist) if not ctx.finite else ctx.table
    except NotApplicable:
        return None
    if res.tier != "exact":
        return None
    v = p["fn"](res, str(nid))
    if isinstance(v, bool | np.bool_):
        return {"holds": bool(v), "margin": 0.0 if v else -1.0}
    return {"holds": float(v) >= 0, "margin": float(v)}


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind("fires_only_in", ("region",), (), _fires_only_pointwise, 1, _fires_only_exact),
        Kind("dead", (), (), _fires_only_pointwise, 1, _fires_only_exact),
        Kind("fires_on_mass", ("q",), ("cls", "component"), None, 1, _fires_on_mass_exact,
             _fires_on_mass_sampled),
        Kind("monotone", ("direction",), ("region", "decreasing"), _monotone_pointwise, 1,
             _monotone_exact, finite_pointwise=False),
        Kind("linear_on", ("region",), (), _linear_pointwise, 2, _linear_exact,
             finite_pointwise=False),
        Kind("argmax_near", ("point", "eps"), (), _argmax_pointwise, 1, _argmax_exact),
        Kind("selectivity", ("s",), ("cls", "component"), None, 1, _selectivity_exact,
             _selectivity_sampled),
        Kind("ablation_lowers_accuracy", ("cls", "delta"), (), None, 1, _ablation_exact,
             _ablation_sampled),
        Kind("matches_circuit", ("circuit", "circuit_neuron", "tol"), ("norm",),
             _matches_pointwise, 1, _matches_exact, _matches_sampled),
        Kind("function", ("fn",), ("inputs",), _function_pointwise, 1, None),
        Kind("analysis", ("fn",), (), None, 1, _analysis_exact),
    )
}  # fmt: skip
