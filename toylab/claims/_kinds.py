"""Every built-in kind of claim and how it is decided, tier by tier (private).

The kinds' parameters are the one schema of :mod:`toylab.claims._schema`. A kind may
provide these deciders:

* ``pointwise(ctx, nid, p, x, xp) -> margin (N,)``: a margin at every input (``>= 0``
  where the claim holds there). Pointwise kinds are decided exactly on finite domains
  (enumeration), searched for counterexamples elsewhere, and sampled;
* ``exact(ctx, nid, p) -> dict | None``: an exact decision (piecewise-linear 2-D
  geometry, masses and moments from :mod:`toylab.exact`, finite tables), or ``None``
  where it does not apply;
* ``sampled(ctx, nid, p, opts) -> dict``: a Monte Carlo estimate with a confidence
  interval, for kinds about the distribution (masses, shares, accuracies).

The dicts hold :class:`toylab.claims.ClaimResult` fields. A number that decides a verdict
carries its own tier (:mod:`toylab.tiers`): an exact verdict needs an ``exact`` number,
or a ``certified`` enclosure that does not straddle the claim's threshold; otherwise the
decider returns ``None`` and the next verdict tier (searched, sampled) is tried.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy import stats

from toylab._errors import fail
from toylab._validate import check_bool
from toylab.claims import _schema as sc
from toylab.claims._context import Context
from toylab.claims._features import FEATURE_KINDS
from toylab.claims._schema import Kind, Param
from toylab.claims._search import wilson
from toylab.exact import (
    Analysis,
    accuracy,
    active_region,
    clip_convex,
    polygon_area,
)
from toylab.exact import region_moments as _region_moments
from toylab.network import Network
from toylab.neurons import NeuronId
from toylab.tiers import weakest

_REL = 1e-9  # relative tolerance of exact comparisons (the partition's own band)
_EPS = float(np.finfo(np.float64).eps)


# --------------------------------------------------------------------------- shared helpers


def _vals(poly: np.ndarray, m: np.ndarray) -> np.ndarray:
    return poly @ m[:2] + m[2]


def _band(poly: np.ndarray, m: np.ndarray) -> float:
    return _REL * float((np.abs(poly) @ np.abs(m[:2]) + abs(m[2])).max() + 1e-300)


def _centroid(poly: np.ndarray) -> np.ndarray:
    return poly.mean(0)


def _decide_number(
    value: float, error: float, tier: str, threshold: float, *, at_most: bool = False
) -> dict[str, Any] | None:
    """An exact verdict on ``value >= threshold`` (``<=`` with ``at_most``), or ``None``.

    ``exact`` numbers decide (a tie within the rounding bound ``error`` counts as
    holding); ``certified`` ones decide only when ``value ± error`` lies on one side of
    the threshold; ``estimated`` ones never (they are not a proof).
    """
    margin = threshold - value if at_most else value - threshold
    out: dict[str, Any] = {"margin": margin, "estimate": value, "estimate_tier": tier}
    if tier == "exact":
        return {**out, "holds": margin >= -error}
    if tier == "certified" and abs(margin) > error:
        return {
            **out,
            "holds": margin > 0,
            "interval": (value - error, value + error),
            "interval_method": "certified enclosure",
        }
    return None


def _mass_fields(
    ctx: Context, lower: list[np.ndarray], upper: list[np.ndarray], exact_pieces: bool
) -> dict[str, Any]:
    """``failing_mass`` fields of a failing set given as ``lower ⊂ set ⊂ upper``.

    Exact pieces (``exact_pieces``: polygonal regions, ``lower == upper``) give the
    mass itself, with the tier of the measure (an ``estimated`` quadrature also gives
    ``value ± its error estimate`` as bounds); otherwise (an ellipse) the bracket
    ``[mass(lower), mass(upper)]``, padded by the masses' errors and by what float64
    rounding of the bracketing polygons' vertices can move: ``certified`` when the
    masses are exact, ``estimated`` when they are quadratures.
    """
    lo = ctx.mass(lower)
    if lo is None:
        return {}
    if exact_pieces:
        out: dict[str, Any] = {"failing_mass": lo.value, "failing_mass_tier": lo.tier}
        if lo.tier != "exact":
            out["failing_mass_bounds"] = (max(lo.value - lo.error, 0.0), lo.value + lo.error)
        return out
    hi = ctx.mass(upper) or lo  # not None: mass() is None only when lo is
    pad = _vertex_rounding_mass(ctx, upper)
    bounds = (max(lo.value - lo.error - pad, 0.0), min(hi.value + hi.error + pad, 1.0))
    tier = "certified" if lo.tier == hi.tier == "exact" else "estimated"
    return {"failing_mass": None, "failing_mass_bounds": bounds, "failing_mass_tier": tier}


def _vertex_rounding_mass(ctx: Context, pieces: list[np.ndarray]) -> float:
    """Density bound x perimeter x 8 eps |x|: what rounding the vertices can move."""
    from toylab.exact import density_bound

    if not pieces:
        return 0.0
    pdf = density_bound(ctx.dist)
    if pdf is None:
        return 0.0
    perim = sum(float(np.hypot(*(np.roll(q, -1, 0) - q).T).sum()) for q in pieces)
    scale = max(float(np.abs(q).max()) for q in pieces)
    return pdf * perim * 8 * _EPS * max(scale, 1.0)


def _group(ctx: Context, an: Analysis, p: Mapping[str, Any]) -> tuple[str, np.ndarray]:
    """``(label, mask over the analysis' groups)`` of the group named by ``cls``/``component``."""
    if p.get("component") is not None:
        comp = int(p["component"])
        if an.groups != "component":
            raise fail(
                "check",
                "component",
                comp,
                "a component of a Gaussian mixture",
                f"{type(ctx.dist).__name__} has classes, not mixture components: use cls=....",
            )
        if comp >= len(an.group_class):
            raise fail("check", "component", comp, f"in 0..{len(an.group_class) - 1}")
        return f"component {comp}", np.arange(len(an.group_class)) == comp
    cls = int(p["cls"])
    num_classes = int(an.group_class.max()) + 1 if len(an.group_class) else 0
    if cls >= num_classes:
        raise fail("check", "cls", cls, f"a class in 0..{num_classes - 1}")
    return f"class {cls}", an.group_class == cls


def _sample_group(ctx: Context, p: Mapping[str, Any], opts: Any) -> tuple[np.ndarray, np.ndarray]:
    """Samples and a mask of those in the group (class label or mixture component)."""
    import jax

    x, y, latent = ctx.sample(jax.random.key(opts.seed), opts.num_samples)
    if p.get("component") is not None:
        if not isinstance(latent, dict) or "component" not in latent:
            raise fail(
                "check",
                "component",
                p["component"],
                "a component of a mixture",
                f"{type(ctx.dist).__name__} has no mixture components: use cls=....",
            )
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


def _ellipse_witness(
    ctx: Context, nid: NeuronId, region: Any, active: np.ndarray, m: np.ndarray
) -> np.ndarray | None:
    """A verified point outside ``region`` where the neuron is > 0, near a vertex of
    ``active`` that lies outside it (an ellipse's sliver between its polygons)."""
    vals = _vals(active, m)
    top = active[int(vals.argmax())]
    out = ~region.contains(active)
    for v in active[out][np.argsort(-vals[out])]:
        s = -float(region.signed(v[None])[0])  # > 0: how far outside (whitened)
        _, inv = region._whiten()
        step = float(np.linalg.norm(inv @ (top - v)))
        for t in (0.0, min(0.5, 0.5 * s / step) if step > 0 else 0.5):
            w = v + t * (top - v)
            if ctx.values(w[None], nid)[0] > 0 and not region.contains(w[None])[0]:
                return w
    return None


def _fires_only_exact(ctx: Context, nid: NeuronId, p: dict) -> dict | None:
    if not ctx.exact_geometry:
        return None
    region = p.get("region")
    exact_pieces = region is None or region.polygonal
    part = ctx.geometry
    polys, maps = part.polygons, part.maps[nid.key][:, nid.unit, :]
    sup_out = -math.inf
    lower: list[np.ndarray] = []
    upper: list[np.ndarray] = []
    best: tuple[float, np.ndarray] | None = None  # (value, point) of the best failing point
    for poly, m in zip(polys, maps, strict=True):
        vals = _vals(poly, m)
        top = int(vals.argmax())
        if region is None or not region.contains(poly[top][None])[0]:
            sup_out = max(sup_out, float(vals[top]))  # the cell's max lies outside the region
        else:
            for piece in region.clip_outside_upper(poly):
                sup_out = max(sup_out, float(_vals(piece, m).max()))
        thr = _band(poly, m)
        active = clip_convex(poly, m[:2], m[2], band=thr)
        if len(active) < 3 or float(_vals(active, m).max()) <= thr:
            continue
        if region is None:
            lower.append(active)
            upper.append(active)
            lo = [active]
        else:
            lo = region.clip_outside(active)
            lower += lo
            upper += lo if exact_pieces else region.clip_outside_upper(active)
        for q in lo:
            c = _centroid(q)
            v = float(_vals(c[None], m)[0])
            if best is None or v > best[0]:
                best = (v, c)
        if (
            best is None
            and region is not None
            and not exact_pieces
            and not region.contains_poly(active)
        ):
            w = _ellipse_witness(ctx, nid, region, active, m)
            if w is not None:
                best = (float(ctx.values(w[None], nid)[0]), w)
    out: dict[str, Any] = {"holds": best is None, "num_tried": len(polys)}
    if best is None:
        out["margin"] = max(0.0, -sup_out) if math.isfinite(sup_out) else 0.0
        if not exact_pieces:
            out["detail"] = "margin: a lower bound (the ellipse's inscribed polygon)"
        return out
    out["witness"] = best[1]
    out["witness_region"] = tuple(lower)
    out["margin"] = -max(sup_out, best[0], _REL)
    out.update(_mass_fields(ctx, lower, upper, exact_pieces))
    area = sum(polygon_area(q) for q in lower)
    out["detail"] = f"fires outside on {len(lower)} piece(s) of total area {area:.4g}"
    return out


# --------------------------------------------------------------------------- monotone


def _direction(ctx: Context, p: dict) -> np.ndarray:
    d = np.asarray(p["direction"], np.float64)
    if d.shape != (ctx.dim,):
        raise fail(
            "monotone",
            "direction",
            list(p["direction"]),
            f"a vector of length {ctx.dim} (the checked coordinates)",
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


def _overlap(region: Any, poly: np.ndarray) -> tuple[list, list, np.ndarray] | None:
    """``(lower pieces, upper pieces, a point)`` of ``poly ∩ region``; ``None`` if empty."""
    if region is None:
        return [poly], [poly], _centroid(poly)
    point = region.point_inside(poly)
    if point is None:
        return None
    # poly itself is a superset of the overlap if clipping left no piece (a sliver)
    return region.clip_inside(poly), region.clip_inside_upper(poly) or [poly], point


def _monotone_exact(ctx: Context, nid: NeuronId, p: dict) -> dict | None:
    if not ctx.exact_geometry:
        return None
    d = _direction(ctx, p)
    sign = -1.0 if p.get("decreasing") else 1.0
    region = p.get("region")
    part = ctx.geometry
    polys, maps = part.polygons, part.maps[nid.key][:, nid.unit, :]
    worst, witness, num_failing = math.inf, None, 0
    lower: list[np.ndarray] = []
    upper: list[np.ndarray] = []
    for poly, m in zip(polys, maps, strict=True):
        over = _overlap(region, poly)
        if over is None:
            continue
        slope = sign * float(m[:2] @ d)
        tol = _REL * float(np.abs(m[:2]).sum() * np.abs(d).sum())
        if slope < -tol:
            lower += over[0]
            upper += over[1]
            num_failing += 1
        if slope < worst:
            worst, witness = slope, over[2]
    if not math.isfinite(worst):
        return {"holds": True, "margin": math.inf, "detail": "the region misses the domain"}
    out: dict[str, Any] = {"holds": not num_failing, "margin": worst, "num_tried": len(polys)}
    if num_failing:
        out.update(
            witness=witness,
            witness_region=tuple(lower),
            detail=f"slope {worst:.4g} along {d.tolist()} on {num_failing} region(s)",
        )
        out.update(_mass_fields(ctx, lower, upper, region is None or region.polygonal))
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
    region = p["region"]
    part = ctx.geometry
    polys, maps = part.polygons, part.maps[nid.key][:, nid.unit, :]
    covered = []
    for poly, m in zip(polys, maps, strict=True):
        over = _overlap(region, poly)
        if over is not None:
            covered.append((*over, m))
    if not covered:
        return {"holds": True, "margin": 0.0, "detail": "the region misses the domain"}
    ref = max(covered, key=lambda t: sum(polygon_area(q) for q in t[1]))[3]
    worst, witness, num_failing = 0.0, None, 0
    lower: list[np.ndarray] = []
    upper: list[np.ndarray] = []
    for lo, hi, point, m in covered:
        # deviation from the main piece's map, measured on the upper pieces (a superset
        # of the overlap: an upper bound of the deviation for ellipses)
        dev = max(float(np.abs(_vals(q, m) - _vals(q, ref)).max()) for q in hi)
        band = max(max(_band(q, m), _band(q, ref)) for q in hi) * 10
        if dev > band:
            lower += lo
            upper += hi
            num_failing += 1
            if dev > worst:
                worst, witness = dev, point
    out: dict[str, Any] = {
        "holds": not num_failing,
        "margin": -worst if worst else 0.0,
        "num_tried": len(polys),
    }
    if num_failing:
        out.update(
            witness=witness,
            witness_region=tuple(lower),
            detail=f"{len(covered)} linear pieces meet the region; largest deviation from "
            f"the main piece's affine map: {worst:.4g}",
        )
        out.update(_mass_fields(ctx, lower, upper, region.polygonal))
    return out


# --------------------------------------------------------------------------- argmax near


def _argmax_exact(ctx: Context, nid: NeuronId, p: dict) -> dict | None:
    point = np.asarray(p["point"], np.float64)
    eps = float(p["eps"])
    if point.shape != (ctx.dim,):
        raise fail(
            "argmax_near",
            "point",
            list(p["point"]),
            f"a point with {ctx.dim} coordinates (the checked coordinates)",
        )
    if ctx.finite:
        an = ctx.analysis
        if an is None:
            return None
        vals = an.values(str(nid))
        inputs = np.asarray(ctx.dist.domain.inputs, np.float64)
        vals = np.where(np.asarray(ctx.dist.domain.probs) > 0, vals, -np.inf)
        top = vals.max()
        at = inputs[vals >= top - _REL * (1 + abs(top))]
        count = len(inputs)
    elif ctx.exact_geometry:
        part = ctx.geometry
        polys, maps = part.polygons, part.maps[nid.key][:, nid.unit, :]
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
    out: dict[str, Any] = {
        "holds": bool(dist[far] <= eps * (1 + 1e-12)),
        "margin": eps - float(dist[far]),
        "num_tried": count,
        "detail": f"maximum {top:.6g}",
    }
    if not out["holds"]:
        out["witness"] = at[far]
        out["detail"] += f", attained at distance {dist[far]:.4g} from {point.tolist()}"
    return out


def inside_best(ctx: Context, nid: NeuronId, p: dict) -> float:
    """The best value inside the ball: the maximum over a finite domain's inputs in it
    (``-inf`` if none), else a lower bound by gradient ascent from a few starts."""
    point = np.asarray(p["point"], np.float64)
    eps = float(p["eps"])
    if point.shape != (ctx.dim,):
        raise fail(
            "argmax_near",
            "point",
            list(p["point"]),
            f"a point with {ctx.dim} coordinates (the checked coordinates)",
        )
    if ctx.finite:
        dom = ctx.dist.domain
        inputs = np.asarray(dom.inputs, np.float64)
        near = (np.linalg.norm(inputs - point, axis=1) <= eps) & (np.asarray(dom.probs) > 0)
        return float(ctx.values(inputs[near], nid).max()) if near.any() else -math.inf
    rng = np.random.default_rng(0)
    starts = point + eps * rng.uniform(-1, 1, (64, ctx.dim)) / np.sqrt(ctx.dim)
    starts = np.concatenate([point[None], starts])
    best = float(np.max(ctx.values(starts, nid)))
    x = starts.copy()
    for i in range(50):
        g = ctx.gradient(x, nid)
        x = x + 0.1 * eps * 0.95**i * g / (np.linalg.norm(g, axis=1, keepdims=True) + 1e-30)
        off = x - point
        r = np.linalg.norm(off, axis=1, keepdims=True)
        x = point + off * np.minimum(1.0, eps / np.maximum(r, 1e-300))
        best = max(best, float(np.max(ctx.values(x, nid))))
    return best


def _argmax_pointwise(ctx: Context, nid: NeuronId, p: dict, x: Any, xp: Any) -> Any:
    """Holds at ``x`` inside the ball, or where the neuron is below the best value inside
    it by more than the exact verdicts' tie tolerance (a tie outside is a maximiser)."""
    point = np.asarray(p["point"], np.float64)
    r = xp.sqrt(xp.sum((x - point) ** 2, axis=-1) + 1e-300)
    best = p["_inside_best"]
    tie = _REL * (1 + abs(best)) if math.isfinite(best) else 0.0
    return xp.maximum(float(p["eps"]) - r, best - tie - ctx.values(x, nid, xp))


# --------------------------------------------------------------------------- masses and shares


def _finite_group(ctx: Context, p: dict) -> tuple[np.ndarray, np.ndarray]:
    """``(probs, mask of the class)`` on a finite domain."""
    if p.get("component") is not None:
        raise fail(
            "check",
            "component",
            p["component"],
            "omitted on a finite domain",
            f"{type(ctx.dist).__name__} has classes, not mixture components: use cls=....",
        )
    dom = ctx.dist.domain
    labels = np.asarray(dom.labels)
    num_classes = int(getattr(ctx.dist, "num_classes", labels.max() + 1))
    if p["cls"] >= num_classes:
        raise fail("check", "cls", p["cls"], f"a class in 0..{num_classes - 1}")
    return np.asarray(dom.probs, np.float64), labels == p["cls"]


def _fires_on_mass_exact(ctx: Context, nid: NeuronId, p: dict) -> dict | None:
    q = float(p["q"])
    if not ctx.finite and ctx.measurable != "exact":
        return None
    an = ctx.analysis
    if an is None:
        return None
    if an.kind == "finite":
        vals = an.values(str(nid))
        probs, mask = _finite_group(ctx, p)
        total = float(probs[mask].sum())
        frac = float(probs[mask & (vals > 0)].sum()) / total if total > 0 else 0.0
        error, tier, label, count = an.error, an.tier, f"class {p['cls']}", len(probs)
    else:
        if an.tier not in ("exact", "certified"):
            return None
        label, sel = _group(ctx, an, p)
        part = an.support
        pieces = active_region(part, nid.key, nid.unit)
        rm = _region_moments(ctx.dist, [q_ - part.origin for q_ in pieces], origin=part.origin)
        fire = float(rm.m0[sel].sum())
        group_mass = float(an.support_moments.m0[sel].sum())
        frac = fire / group_mass
        num_error = float(rm.error[sel][:, :, 0].sum()) + an.error
        error = (num_error + frac * (an.support_moments.error[sel][:, :, 0].sum() + an.error)) / (
            group_mass
        )
        tier, count = weakest(an.tier, rm.tier), part.num_regions
    out = _decide_number(frac, error, tier, q)
    if out is None:
        return None
    return {**out, "num_tried": count, "detail": f"P(a > 0 | {label}) = {frac:.6g}"}


def _fires_on_mass_sampled(ctx: Context, nid: NeuronId, p: dict, opts: Any) -> dict:
    x, mask = _sample_group(ctx, p, opts)
    a = ctx.values(x[mask], nid)
    n, k = int(mask.sum()), int((a > 0).sum())
    frac = k / n if n else 0.0
    q = float(p["q"])
    return {
        "holds": frac >= q,
        "margin": frac - q,
        "estimate": frac,
        "estimate_tier": "sampled",
        "num_tried": len(x),
        "interval": wilson(k, n, opts.confidence),
        "interval_method": "Wilson",
        "detail": f"{k} of {n} group samples fire",
    }


def _share_exact(ctx: Context, nid: NeuronId, p: dict) -> dict | None:
    share = float(p["share"])
    if not ctx.finite and ctx.measurable != "exact":
        return None
    an = ctx.analysis
    if an is None or an.tier not in ("exact", "certified"):
        return None
    per = an.group_means(nid.key)[:, nid.unit]
    if an.kind == "finite":
        _finite_group(ctx, p)  # validates cls
        sel = an.group_class == p["cls"]
        label = f"class {p['cls']}"
    else:
        label, sel = _group(ctx, an, p)
    part, total = float(per[sel].sum()), float(per.sum())
    # every group mean is within an.error; the ratio's error follows (denominator > error)
    e_part, e_total = an.error * int(sel.sum()), an.error * len(per)
    if total <= e_total:
        if an.tier != "exact" and total + e_total > 0:
            return None  # the enclosure of E[a] straddles 0
        return {
            "holds": False,
            "margin": -math.inf,
            "detail": f"E[a] = {total:.4g} is not positive, so the share is undefined",
        }
    value = part / total
    error = (e_part + abs(value) * e_total) / (total - e_total)
    out = _decide_number(value, error, an.tier, share)
    if out is None:
        return None
    return {**out, "detail": f"E[a·1({label})] / E[a] = {part:.6g} / {total:.6g} = {value:.6g}"}


def _share_sampled(ctx: Context, nid: NeuronId, p: dict, opts: Any) -> dict:
    x, mask = _sample_group(ctx, p, opts)
    a = ctx.values(x, nid)
    c = a * mask
    n = len(a)
    ma, mc = a.mean(), c.mean()
    s = float(p["share"])
    if not ma > 0:
        return {
            "holds": False,
            "margin": -math.inf,
            "num_tried": n,
            "detail": "the sample mean of a is not positive",
        }
    r = mc / ma
    cov = np.cov(np.stack([c, a]))
    var = (cov[0, 0] - 2 * r * cov[0, 1] + r * r * cov[1, 1]) / (n * ma * ma)
    z = float(stats.norm.ppf(0.5 + opts.confidence / 2))
    half = z * math.sqrt(max(var, 0.0))
    return {
        "holds": r >= s,
        "margin": r - s,
        "estimate": r,
        "estimate_tier": "sampled",
        "num_tried": n,
        "interval": (r - half, r + half),
        "interval_method": "delta-method normal",
    }


def _ablated(ctx: Context, nid: NeuronId) -> Network:
    if nid.pre or not nid.layer.startswith("hidden_"):
        raise fail(
            "ablation_lowers_accuracy",
            "neuron",
            str(nid),
            "a hidden post-activation neuron like 'hidden_0:3'",
        )
    return ctx.network.ablate(str(nid))


def _ablation_exact(ctx: Context, nid: NeuronId, p: dict) -> dict | None:
    cls, delta = int(p["cls"]), float(p["delta"])
    ablated = _ablated(ctx, nid)
    if not ctx.finite and ctx.measurable != "exact":
        return None
    an = ctx.analysis
    if an is None:
        return None
    if cls >= len(an.class_accuracy):
        raise fail("check", "cls", cls, f"a class in 0..{len(an.class_accuracy) - 1}")
    ab = accuracy(ablated, ctx.dist)
    before, after = float(an.class_accuracy[cls]), float(ab.class_accuracy[cls])
    out = _decide_number(before - after, an.error + ab.error, weakest(an.tier, ab.tier), delta)
    if out is None:
        return None
    return {**out, "detail": f"class {cls} accuracy {before:.6g} -> {after:.6g} when ablated"}


def _ablation_sampled(ctx: Context, nid: NeuronId, p: dict, opts: Any) -> dict:
    import jax

    cls, delta = int(p["cls"]), float(p["delta"])
    x, y, _ = ctx.sample(jax.random.key(opts.seed), opts.num_samples)
    x, y = x[y == cls], y[y == cls]
    diffs = []
    for net in (ctx.network, _ablated(ctx, nid)):
        diffs.append((net(x).argmax(-1) == y).astype(float))
    d = diffs[0] - diffs[1]
    n = len(d)
    drop = float(d.mean()) if n else 0.0
    z = float(stats.norm.ppf(0.5 + opts.confidence / 2))
    half = z * float(d.std(ddof=1)) / math.sqrt(n) if n > 1 else math.inf
    return {
        "holds": drop >= delta,
        "margin": drop - delta,
        "estimate": drop,
        "estimate_tier": "sampled",
        "num_tried": n,
        "interval": (drop - half, drop + half),
        "interval_method": "normal, paired differences",
    }


# --------------------------------------------------------------------------- matches a circuit


def _circuit_ctx(ctx: Context, p: dict) -> tuple[Context, NeuronId]:
    other = Context(
        p["circuit"],
        ctx.dist,
        plane=ctx.plane,
        window=ctx.window if ctx.plane is not None else None,
    )
    return other, other.resolve(p["circuit_neuron"])


def _matches_pointwise(ctx: Context, nid: NeuronId, p: dict, x: Any, xp: Any) -> Any:
    other, onid = _circuit_ctx(ctx, p)
    return float(p["tol"]) - xp.abs(ctx.values(x, nid, xp) - other.values(x, onid, xp))


def _matches_exact(ctx: Context, nid: NeuronId, p: dict) -> dict | None:
    if ctx.plane is not None:
        return None
    from toylab.circuits import functional_distance

    res = functional_distance(
        ctx.model,
        p["circuit"],
        ctx.dist,
        neurons={str(nid): str(p["circuit_neuron"])},
    )
    if getattr(res, "tier", "exact") != "exact":
        return None
    norm = p.get("norm", "sup")
    value = np.asarray(res.sup if norm == "sup" else res.l2, np.float64).ravel()
    if value.size != 1:
        return None
    dist = float(value[0])
    tol = float(p["tol"])
    out: dict[str, Any] = {
        "holds": dist <= tol,
        "margin": tol - dist,
        "estimate": dist,
        "estimate_tier": "exact",
        "detail": f"{norm} distance {dist:.6g} ({res.method})",
    }
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
    return {
        "holds": l2 <= tol,
        "margin": tol - l2,
        "estimate": l2,
        "estimate_tier": "sampled",
        "num_tried": n,
        "interval": (math.sqrt(max(m - half, 0.0)), math.sqrt(m + half)),
        "interval_method": "normal interval of E[(a-b)^2], square-rooted",
    }


# --------------------------------------------------------------------------- user functions


def _function_pointwise(ctx: Context, nid: NeuronId, p: dict, x: Any, xp: Any) -> Any:
    vals = np.asarray(ctx.values(np.asarray(x), nid))
    ok = p["fn"](np.asarray(x), vals) if p.get("inputs") else p["fn"](vals)
    ok = np.broadcast_to(np.asarray(ok, bool), vals.shape)
    return np.where(ok, 1.0, -1.0)


def _analysis_exact(ctx: Context, nid: NeuronId, p: dict) -> dict | None:
    an = ctx.analysis
    if an is None or an.tier != "exact":
        return None
    v = p["fn"](an, str(nid))
    if isinstance(v, bool | np.bool_):
        return {"holds": bool(v), "margin": 0.0 if v else -1.0}
    return {"holds": float(v) >= 0, "margin": float(v)}


# --------------------------------------------------------------------------- the kinds

_REGION = Param("region", sc.region, True, "a HalfPlane, Polygon or Ellipse, or a region table")
_CLS = Param("cls", sc.index, False, "a class label")
_COMPONENT = Param("component", sc.index, False, "a mixture component")

KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind(
            "fires_only_in",
            (_REGION,),
            lambda p: f"fires only in {p['region'].describe()}",
            pointwise=_fires_only_pointwise,
            exact=_fires_only_exact,
        ),
        Kind(
            "dead",
            (),
            lambda p: "is dead",
            pointwise=_fires_only_pointwise,
            exact=_fires_only_exact,
        ),
        Kind(
            "fires_on_mass",
            (Param("q", sc.probability, True, "a probability in [0, 1]"), _CLS, _COMPONENT),
            lambda p: f"fires on at least {p['q']:g} of {sc.group_text(p)}",
            ("cls", "component"),
            exact=_fires_on_mass_exact,
            sampled=_fires_on_mass_sampled,
        ),
        Kind(
            "monotone",
            (
                Param("direction", sc.vector, True, "a non-zero vector"),
                dataclasses.replace(_REGION, required=False),
                Param("decreasing", check_bool, False, "true or false"),
            ),
            lambda p: (
                f"is {'decreasing' if p.get('decreasing') else 'increasing'} along "
                f"{list(p['direction'])}"
                + (f" in {p['region'].describe()}" if p.get("region") else "")
            ),
            pointwise=_monotone_pointwise,
            exact=_monotone_exact,
            finite_pointwise=False,
        ),
        Kind(
            "linear_on",
            (_REGION,),
            lambda p: f"is linear on {p['region'].describe()}",
            pointwise=_linear_pointwise,
            arity=2,
            exact=_linear_exact,
            finite_pointwise=False,
        ),
        Kind(
            "argmax_near",
            (
                Param("point", sc.point, True, "a point"),
                Param("eps", sc.nonneg, True, "a distance >= 0"),
            ),
            lambda p: f"has its maximum within {p['eps']:g} of {list(p['point'])}",
            pointwise=_argmax_pointwise,
            exact=_argmax_exact,
        ),
        Kind(
            "activation_share",
            (Param("share", sc.real, True, "the smallest share, e.g. 0.9"), _CLS, _COMPONENT),
            lambda p: (
                f"gets at least {p['share']:g} of its mean activation from {sc.group_text(p)}"
            ),
            ("cls", "component"),
            exact=_share_exact,
            sampled=_share_sampled,
        ),
        Kind(
            "ablation_lowers_accuracy",
            (
                Param("cls", sc.index, True, "a class label"),
                Param("delta", sc.difference, True, "an accuracy difference in [-1, 1]"),
            ),
            lambda p: f"ablating it lowers class {p['cls']} accuracy by >= {p['delta']:g}",
            exact=_ablation_exact,
            sampled=_ablation_sampled,
        ),
        Kind(
            "matches_circuit",
            (
                Param("circuit", sc.a_model, True, "a toylab model or Network"),
                Param("circuit_neuron", sc.address, True, "an address in the circuit"),
                Param("tol", sc.nonneg, True, "a tolerance >= 0"),
                Param("norm", sc.norm, False, "'sup' or 'l2'"),
            ),
            lambda p: (
                f"matches the circuit's {p['circuit_neuron']} within {p['tol']:g} "
                f"({p.get('norm', 'sup')})"
            ),
            in_files=False,
            pointwise=_matches_pointwise,
            exact=_matches_exact,
            sampled=_matches_sampled,
        ),
        Kind(
            "function",
            (
                Param("fn", sc.a_callable, True, "values -> bool array"),
                Param("inputs", check_bool, False, "whether fn takes (x, values)"),
            ),
            lambda p: "satisfies a function",
            in_files=False,
            pointwise=_function_pointwise,
        ),
        Kind(
            "analysis",
            (Param("fn", sc.a_callable, True, "(analysis, neuron) -> bool or margin"),),
            lambda p: "satisfies an analysis",
            in_files=False,
            exact=_analysis_exact,
        ),
        *FEATURE_KINDS,
    )
}
