"""Exact queries on a :class:`~toylab.exact.Partition`: extrema, level sets, regions, maxima.

Every query reads the partition's per-region affine maps and vertices only (no
sampling): an affine function on a convex polygon is extreme at a vertex, its level
set in a region is a segment, and so on. The tolerance band of
:mod:`toylab.exact.regions` is used relative to the scale of the values tested.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from typing import Any

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from toylab._errors import ToylabError, did_you_mean, fail
from toylab.exact._polygon import clip_positive, expand_ranges, next_index, owner, sign_band
from toylab.exact.regions import Partition, _split_flat

__all__ = [
    "ExtremaResult",
    "LocalMaxima",
    "active_region",
    "argmax_pieces",
    "decision_boundary",
    "extrema",
    "level_set",
    "local_maxima",
    "locate",
    "partition_edges",
    "partition_values",
    "region_ranges",
    "vertex_values",
]


@dataclasses.dataclass(frozen=True)
class ExtremaResult:
    """Exact max and min of a unit (or of every unit of a layer) over the domain.

    Scalars and ``(2,)`` points for one unit; ``(width,)`` and ``(width, 2)`` arrays
    for a whole layer. Tier ``"exact"``: an affine function on a convex region is
    extreme at a vertex, and every vertex is checked.
    """

    max: Any
    argmax: np.ndarray
    min: Any
    argmin: np.ndarray
    tier: str = "exact"


def _check_key(where: str, part: Partition, key: str) -> np.ndarray:
    if key not in part.local_maps:
        raise ToylabError(
            f"{where}: key must be one of {list(part.local_maps)}, got {key!r}."
            + did_you_mean(str(key), part.local_maps)
        )
    return part.local_maps[key]


def _check_unit(where: str, maps: np.ndarray, key: str, unit: Any) -> int:
    width = maps.shape[1]
    if isinstance(unit, bool) or not isinstance(unit, (int, np.integer)) or not 0 <= unit < width:
        raise fail(where, "unit", unit, f"an integer in [0, {width}) for layer {key!r}")
    return int(unit)


def _entry_values(part: Partition, m: np.ndarray) -> np.ndarray:
    """Values ``(n, width)`` of per-region maps ``m (R, width, 3)`` at every ring entry."""
    xy = part.local_vertices[part.ring]
    pid = owner(part.offsets)
    mm = m[pid]
    return mm[:, :, 0] * xy[:, :1] + mm[:, :, 1] * xy[:, 1:] + mm[:, :, 2]


def _magnitude(part: Partition, m: np.ndarray) -> np.ndarray:
    """Per-entry ``|g_x x| + |g_y y| + |c|``: the rounding scale of the map values."""
    xy = np.abs(part.local_vertices[part.ring])
    mm = np.abs(m[owner(part.offsets)])
    return mm[:, :, 0] * xy[:, :1] + mm[:, :, 1] * xy[:, 1:] + mm[:, :, 2]


def extrema(part: Partition, key: str, unit: int | None = None) -> ExtremaResult:
    """Exact max and min of unit ``unit`` of layer ``key`` over the domain.

    An affine function on a convex polygon attains its extremes at vertices,
    so the answer is the best vertex value over all regions. With
    ``unit=None`` every unit of the layer is done at once (arrays).
    """
    m = _check_key("extrema", part, key)
    if unit is not None:
        m = m[:, [_check_unit("extrema", m, key, unit)]]
    # maps agree on shared vertices, so one incident region per vertex suffices
    first = np.full(len(part.local_vertices), -1, dtype=np.int64)
    first[part.ring[::-1]] = owner(part.offsets)[::-1]
    xy = part.local_vertices
    g = np.take(m.transpose(0, 2, 1), first, axis=0)  # (V, 3, width)
    vals = g[:, 0] * xy[:, :1] + g[:, 1] * xy[:, 1:] + g[:, 2]
    imax, imin = vals.argmax(axis=0), vals.argmin(axis=0)
    cols = np.arange(vals.shape[1])
    o = part.origin
    if unit is not None:
        return ExtremaResult(
            float(vals[imax[0], 0]), xy[imax[0]] + o, float(vals[imin[0], 0]), xy[imin[0]] + o
        )
    return ExtremaResult(vals[imax, cols], xy[imax] + o, vals[imin, cols], xy[imin] + o)


def _chain(ka: np.ndarray, kb: np.ndarray, pa: np.ndarray, pb: np.ndarray) -> list[np.ndarray]:
    """Merge segments (endpoint keys and points) into polylines (closed ones repeat the start)."""
    pts: dict[int, np.ndarray] = {}
    adj: dict[int, list[int]] = defaultdict(list)
    for i, (a, b) in enumerate(zip(ka.tolist(), kb.tolist(), strict=True)):
        adj[a].append(i)
        adj[b].append(i)
        pts.setdefault(a, pa[i])
        pts.setdefault(b, pb[i])
    used = np.zeros(len(ka), dtype=bool)
    ends = {i: (a, b) for i, (a, b) in enumerate(zip(ka.tolist(), kb.tolist(), strict=True))}
    lines: list[np.ndarray] = []
    starts = [k for k, segs in adj.items() if len(segs) != 2] + list(adj)
    for s in starts:
        while True:
            free = [i for i in adj[s] if not used[i]]
            if not free:
                break
            path = [s]
            cur = s
            while True:
                nxt_seg = [i for i in adj[cur] if not used[i]]
                if not nxt_seg:
                    break
                i = nxt_seg[0]
                used[i] = True
                a, b = ends[i]
                cur = b if a == cur else a
                path.append(cur)
                if cur == s:
                    break
            lines.append(np.array([pts[k] for k in path]))
    return lines


def level_set(part: Partition, key: str, unit: int, level: float = 0.0) -> list[np.ndarray]:
    """Polylines ``(k, 2)`` where unit ``unit`` of layer ``key`` equals ``level``.

    In each region the unit is affine, so the level set is a segment (found
    from the vertex values, with the tolerance band of the module docstring)
    or, where it runs along a region edge, that edge (reported once).
    Regions where the unit is constant at ``level`` (e.g. a dead ReLU's
    post-activation at level 0) are 2-D pieces of the level set and are
    omitted: use :func:`active_region` for those. Segments are joined into
    polylines through shared vertices and edges; a closed curve repeats its
    first point at the end.
    """
    m = _check_key("level_set", part, key)
    u = _check_unit("level_set", m, key, unit)
    level = float(level)
    f = _entry_values(part, m[:, [u]])[:, 0] - level
    thr = part.tol * (float(_magnitude(part, m[:, [u]]).max()) + abs(level))
    sg = sign_band(f, thr)
    off = part.offsets
    pid = owner(off)
    nxt = next_index(off)
    smax = np.maximum.reduceat(sg, off[:-1])
    smin = np.minimum.reduceat(sg, off[:-1])
    crossing = ((smax > 0) & (smin < 0))[pid]
    nv = np.int64(len(part.local_vertices))
    v, vn = part.ring, part.ring[nxt]
    xy = part.local_vertices[v]
    # candidate points in crossing regions: zero vertices and crossed edges, in ring order
    at_vertex = crossing & (sg == 0)
    on_edge = crossing & (sg * sg[nxt] < 0)
    cand = np.stack([at_vertex, on_edge], axis=1).reshape(-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(on_edge, f / (f - f[nxt]), 0.0)
    edge_pts = xy + t[:, None] * (part.local_vertices[vn] - xy)
    lo, hi = np.minimum(v, vn), np.maximum(v, vn)
    keys = np.stack([v, nv + lo * nv + hi], axis=1).reshape(-1)[cand]
    points = np.stack([xy, edge_pts], axis=1).reshape(-1, 2)[cand]
    owners = np.repeat(pid, 2)[cand]
    seg_ka: list[np.ndarray] = []
    seg_kb: list[np.ndarray] = []
    seg_pa: list[np.ndarray] = []
    seg_pb: list[np.ndarray] = []
    if len(owners):
        first = np.ones(len(owners), dtype=bool)
        first[1:] = owners[1:] != owners[:-1]
        last = np.ones(len(owners), dtype=bool)
        last[:-1] = owners[1:] != owners[:-1]
        i0, i1 = np.nonzero(first)[0], np.nonzero(last)[0]
        ok = keys[i0] != keys[i1]
        seg_ka.append(keys[i0][ok])
        seg_kb.append(keys[i1][ok])
        seg_pa.append(points[i0][ok])
        seg_pb.append(points[i1][ok])
    # edges lying on the level set, in regions on one side of it (not constant at the level)
    flat = ((smax == 0) & (smin == 0))[pid]
    edge = ~crossing & ~flat & (sg == 0) & (sg[nxt] == 0)
    if edge.any():
        ek = lo[edge] * nv + hi[edge]
        _, first_idx = np.unique(ek, return_index=True)
        sel = np.nonzero(edge)[0][first_idx]
        seg_ka.append(v[sel])
        seg_kb.append(vn[sel])
        seg_pa.append(part.local_vertices[v[sel]])
        seg_pb.append(part.local_vertices[vn[sel]])
    if not seg_ka:
        return []
    lines = _chain(
        np.concatenate(seg_ka),
        np.concatenate(seg_kb),
        np.concatenate(seg_pa),
        np.concatenate(seg_pb),
    )
    return [line + part.origin for line in lines]


def active_region(part: Partition, key: str, unit: int) -> list[np.ndarray]:
    """Convex polygons covering exactly where unit ``unit`` of layer ``key`` is ``> 0``.

    Each region is clipped by its own affine map; regions where the unit is
    zero up to the tolerance band contribute nothing.
    """
    m = _check_key("active_region", part, key)
    u = _check_unit("active_region", m, key, unit)
    f = _entry_values(part, m[:, [u]])[:, 0]
    thr = part.tol * float(_magnitude(part, m[:, [u]]).max())
    xy, off, _ = clip_positive(
        part.local_vertices[part.ring], part.offsets, f, thr, keep_flat=False
    )
    return _split_flat(xy + part.origin, off)


def _argmax_flat(part: Partition) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Argmax pieces stored flat: ``(xy, offsets, region, class)``.

    Ties go to the lowest class index (as ``np.argmax``). Regions whose
    vertices all have the same winner by more than the band are kept whole;
    the others are clipped class by class against every rival.
    """
    out = part.local_maps["output"]
    num_classes = out.shape[1]
    xy_all = part.local_vertices[part.ring]
    off_all = part.offsets
    num = part.num_regions
    vals = _entry_values(part, out)
    if num_classes == 1:
        return xy_all, off_all, np.arange(num), np.zeros(num, dtype=np.int64)
    thr = part.tol * float(_magnitude(part, out).max())
    top2 = np.sort(vals, axis=1)[:, -2:]
    win = vals.argmax(axis=1)
    clear = top2[:, 1] - top2[:, 0] > thr
    pure = np.minimum.reduceat(clear.astype(np.int8), off_all[:-1]) > 0
    w0 = win[off_all[:-1]]
    pure &= np.maximum.reduceat(win, off_all[:-1]) == np.minimum.reduceat(win, off_all[:-1])
    lens = np.diff(off_all)
    parts_xy = [xy_all[np.repeat(pure, lens)]]
    parts_len = [lens[pure]]
    parts_reg = [np.nonzero(pure)[0]]
    parts_cls = [w0[pure]]
    mixed = np.nonzero(~pure)[0]
    if len(mixed):
        emask = np.repeat(~pure, lens)
        mxy = xy_all[emask]
        moff = np.concatenate([[0], np.cumsum(lens[mixed])])
        for c in range(num_classes):
            xy, off, src = mxy, moff, np.arange(len(mixed))
            for d in range(num_classes):
                if d == c or len(src) == 0:
                    continue
                g = out[mixed[src], c] - out[mixed[src], d]
                gp = g[owner(off)]
                f = gp[:, 0] * xy[:, 0] + gp[:, 1] * xy[:, 1] + gp[:, 2]
                xy, off, keep = clip_positive(xy, off, f, thr, keep_flat=c < d)
                src = src[keep]
            parts_xy.append(xy)
            parts_len.append(np.diff(off))
            parts_reg.append(mixed[src])
            parts_cls.append(np.full(len(src), c, dtype=np.int64))
    xy = np.concatenate(parts_xy)
    lens = np.concatenate(parts_len)
    reg = np.concatenate(parts_reg)
    cls = np.concatenate(parts_cls)
    return xy, np.concatenate([[0], np.cumsum(lens)]).astype(np.int64), reg, cls


def argmax_pieces(part: Partition) -> list[tuple[np.ndarray, int]]:
    """Convex pieces ``(polygon, class)`` on which one logit is the largest.

    Each region is cut where the top logit changes (ties go to the lowest
    class index, as :func:`numpy.argmax`). The pieces tile the domain, so
    summing the areas of a class's pieces gives its exact share of the
    domain (e.g. for an exact accuracy against a known Bayes classifier).
    """
    _check_key("argmax_pieces", part, "output")
    xy, off, _, cls = _argmax_flat(part)
    return list(zip(_split_flat(xy + part.origin, off), cls.tolist(), strict=True))


def _twins(part: Partition) -> np.ndarray:
    """For each ring entry (edge ``a -> b``), the region across it (``-1`` on the domain edge)."""
    nv = np.int64(len(part.local_vertices))
    nxt = next_index(part.offsets)
    a, b = part.ring, part.ring[nxt]
    key = a * nv + b
    order = key.argsort()
    sk = key[order]
    want = b * nv + a
    pos = np.minimum(np.searchsorted(sk, want), len(sk) - 1)
    found = sk[pos] == want
    return np.where(found, owner(part.offsets)[order[pos]], -1)


def decision_boundary(part: Partition) -> np.ndarray:
    """Segments ``(S, 2, 2)`` where the top logit (``np.argmax``, ties to the lowest class) changes.

    These are the edges of :func:`argmax_pieces` whose class differs from
    the class just across them, each reported once. The class across an
    edge is decided exactly: among the logits tied at the edge's midpoint
    (maps of the region across), the one growing fastest across the edge
    wins. Boundaries along the domain's edge are not reported.
    """
    out = _check_key("decision_boundary", part, "output")
    num_classes = out.shape[1]
    if num_classes == 1:
        return np.zeros((0, 2, 2))
    xy, off, reg, cls = _argmax_flat(part)
    thr = part.tol * float(_magnitude(part, out).max())
    pid = owner(off)
    nxt = next_index(off)
    p, q = xy, xy[nxt]
    r = reg[pid]
    # which edge of its region (if any) each piece edge lies on
    size = float(np.ptp(part.local_domain, axis=0).max())
    eps = 1e-9 * size
    rl = np.diff(part.offsets)[r]
    pair_e = np.repeat(np.arange(len(p)), rl)
    pair_j = expand_ranges(part.offsets[r], rl)
    rnxt = next_index(part.offsets)
    a = part.local_vertices[part.ring[pair_j]]
    e = part.local_vertices[part.ring[rnxt[pair_j]]] - a
    elen = np.hypot(e[:, 0], e[:, 1])

    def dist(pt: np.ndarray) -> np.ndarray:
        d = pt[pair_e] - a
        return np.abs(e[:, 0] * d[:, 1] - e[:, 1] * d[:, 0]) / elen

    on = (dist(p) <= eps) & (dist(q) <= eps)
    across = r.copy()
    twins = _twins(part)
    across[pair_e[on]] = twins[pair_j[on]]
    keep = across >= 0
    # the class just across each edge
    mid = 0.5 * (p + q)
    d = q - p
    normal = np.stack([d[:, 1], -d[:, 0]], axis=1)  # outward for a CCW piece
    mm = out[np.maximum(across, 0)]
    f = mm[:, :, 0] * mid[:, :1] + mm[:, :, 1] * mid[:, 1:] + mm[:, :, 2]
    slope = mm[:, :, 0] * normal[:, :1] + mm[:, :, 1] * normal[:, 1:]
    tied = f >= f.max(axis=1, keepdims=True) - thr
    slope = np.where(tied, slope, -np.inf)
    gthr = part.tol * float(np.abs(out[:, :, :2]).max()) * np.hypot(d[:, 0], d[:, 1])
    best = slope >= slope.max(axis=1, keepdims=True) - gthr[:, None]
    other = best.argmax(axis=1)
    c = cls[pid]
    sel = np.nonzero(keep & (other != c) & (c < other))[0]
    return np.stack([p[sel], q[sel]], axis=1) + part.origin


def locate(part: Partition, x: Any) -> np.ndarray:
    """Index of the region containing each point ``x (N, 2)``; ``-1`` outside the domain.

    A point on a shared edge goes to the region it is deepest inside (any
    of them is correct: the maps agree there).
    """
    pts = np.asarray(x, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise fail("locate", "x", getattr(pts, "shape", x), "an array of shape (N, 2)")
    pts = pts - part.origin
    xy = part.local_vertices[part.ring]
    off = part.offsets
    num = part.num_regions
    lo = np.minimum.reduceat(xy, off[:-1], axis=0)
    hi = np.maximum.reduceat(xy, off[:-1], axis=0)
    dlo, dhi = part.local_domain.min(axis=0), part.local_domain.max(axis=0)
    size = np.maximum(dhi - dlo, 1e-300)
    g = max(1, int(np.sqrt(num)))
    eps = 1e-9 * float(size.max())

    def cell(p: np.ndarray) -> np.ndarray:
        return np.clip(((p - dlo) / size * g).astype(np.int64), 0, g - 1)

    c0, c1 = cell(lo - eps), cell(hi + eps)
    span = c1 - c0 + 1
    npairs = span[:, 0] * span[:, 1]
    reg = np.repeat(np.arange(num), npairs)
    k = np.arange(len(reg)) - np.repeat(np.cumsum(npairs) - npairs, npairs)
    cx = c0[reg, 0] + k % span[reg, 0]
    cy = c0[reg, 1] + k // span[reg, 0]
    cid = cx * g + cy
    order = np.argsort(cid, kind="stable")
    reg, cid = reg[order], cid[order]
    cstart = np.searchsorted(cid, np.arange(g * g + 1))
    pc = cell(pts)
    pcid = pc[:, 0] * g + pc[:, 1]
    ncand = cstart[pcid + 1] - cstart[pcid]
    pair_pt = np.repeat(np.arange(len(pts)), ncand)
    pair_reg = reg[expand_ranges(cstart[pcid], ncand)]
    # keep candidates whose bounding box holds the point (up to eps)
    pp = pts[pair_pt]
    inbox = np.all((pp >= lo[pair_reg] - eps) & (pp <= hi[pair_reg] + eps), axis=1)
    pair_pt, pair_reg = pair_pt[inbox], pair_reg[inbox]
    ncand = np.bincount(pair_pt, minlength=len(pts))
    # signed distance to each edge of the candidate region; inside if all >= 0
    rl = np.diff(off)[pair_reg]
    ent = expand_ranges(off[pair_reg], rl)
    nxt = next_index(off)
    a, b = xy[ent], xy[nxt[ent]]
    p = pts[np.repeat(pair_pt, rl)]
    e = b - a
    dist = (e[:, 0] * (p[:, 1] - a[:, 1]) - e[:, 1] * (p[:, 0] - a[:, 0])) / np.hypot(
        e[:, 0], e[:, 1]
    )
    result = np.full(len(pts), -1, dtype=np.int64)
    if len(pair_reg) == 0:
        return result
    depth = np.minimum.reduceat(dist, np.concatenate([[0], np.cumsum(rl)[:-1]]))
    # pairs are grouped by point: the best candidate of each point
    has = ncand > 0
    gstart = (np.cumsum(ncand) - ncand)[has]
    best = np.full(len(pts), -np.inf)
    best[has] = np.maximum.reduceat(depth, gstart)
    hit = depth >= best[pair_pt]
    result[pair_pt[hit]] = pair_reg[hit]
    result[best < -eps] = -1
    return result


def partition_values(part: Partition, x: Any, key: str = "output") -> np.ndarray:
    """Values ``(N, width)`` of layer ``key`` at points ``x`` via the region maps.

    Points outside the domain get NaN.
    """
    m = _check_key("partition_values", part, key)
    pts = np.asarray(x, dtype=np.float64)
    r = locate(part, pts)
    pts = pts - part.origin
    mm = m[np.maximum(r, 0)]
    vals = mm[:, :, 0] * pts[:, :1] + mm[:, :, 1] * pts[:, 1:] + mm[:, :, 2]
    vals[r < 0] = np.nan
    return vals


def vertex_values(part: Partition, key: str, unit: int) -> np.ndarray:
    """The unit's value at every vertex of a partition (maps agree on shared vertices)."""
    m = _check_key("vertex_values", part, key)
    u = _check_unit("vertex_values", m, key, unit)
    first = np.full(len(part.local_vertices), -1, np.int64)
    first[part.ring[::-1]] = owner(part.offsets)[::-1]
    mu = m[first, u]
    return mu[:, 0] * part.local_vertices[:, 0] + mu[:, 1] * part.local_vertices[:, 1] + mu[:, 2]


def partition_edges(part: Partition) -> np.ndarray:
    """Every edge of the partition once, as vertex-id pairs ``(E, 2)``."""
    a = part.ring
    b = part.ring[next_index(part.offsets)]
    e = np.stack([np.minimum(a, b), np.maximum(a, b)], axis=1)
    e = e[e[:, 0] != e[:, 1]]
    return np.unique(e, axis=0)


def region_ranges(part: Partition, key: str, unit: int) -> tuple[np.ndarray, np.ndarray]:
    """Min and max ``(R,)`` of one unit over each region (at its vertices: exact)."""
    m = _check_key("region_ranges", part, key)
    u = _check_unit("region_ranges", m, key, unit)
    xy = part.local_vertices[part.ring]
    mm = m[:, u][owner(part.offsets)]
    v = mm[:, 0] * xy[:, 0] + mm[:, 1] * xy[:, 1] + mm[:, 2]
    return np.minimum.reduceat(v, part.offsets[:-1]), np.maximum.reduceat(v, part.offsets[:-1])


@dataclasses.dataclass(frozen=True, eq=False)
class LocalMaxima:
    """Exact local maxima of one unit over a partition's domain (tier ``"exact"``).

    ``values[i]`` is the value of local maximum ``i``; ``points[i]`` its vertices
    ``(n_i, 2)`` (one for a strict maximum; several for a plateau); ``segments[i]`` the
    flat edges joining them ``(s_i, 2, 2)``. Sorted by value, largest first.
    """

    values: np.ndarray
    points: tuple[np.ndarray, ...]
    segments: tuple[np.ndarray, ...]
    tol: float
    tier: str = "exact"

    def distance(self, x: np.ndarray) -> np.ndarray:
        """Distance ``(N, K)`` from points ``x (N, 2)`` to every local maximum's set."""
        x = np.asarray(x, np.float64)
        out = np.empty((len(x), len(self.values)))
        for i, (pts, segs) in enumerate(zip(self.points, self.segments, strict=True)):
            d = np.sqrt(((x[:, None, :] - pts[None]) ** 2).sum(-1)).min(1)
            if len(segs):
                a, b = segs[:, 0], segs[:, 1]
                ab = b - a
                t = np.clip(
                    ((x[:, None] - a[None]) * ab[None]).sum(-1)
                    / np.maximum((ab**2).sum(-1), 1e-300)[None],
                    0.0,
                    1.0,
                )
                proj = a[None] + t[..., None] * ab[None]
                d = np.minimum(d, np.sqrt(((x[:, None] - proj) ** 2).sum(-1)).min(1))
            out[:, i] = d
        return out


def local_maxima(part: Partition, key: str, unit: int, *, rtol: float = 1e-9) -> LocalMaxima:
    r"""Exact local maxima of a piecewise-linear unit on a 2-D partition.

    **Definition.** The unit is affine on every region, so near a vertex ``v`` it is at
    most ``f(v)`` iff it does not increase along any partition edge leaving ``v``
    (every region's cone at ``v`` is spanned by its two edges at ``v``), and a local
    maximum in the interior of a region or an edge forces the unit to be constant
    there. So: join vertices by *flat* edges (values equal within ``tol = rtol * (max
    |f| + 1)``); a connected set ``C`` of such vertices is a **local maximum** iff no
    edge leaves ``C`` towards a strictly higher value (``> f(C) + tol``). A strict
    maximum is a single vertex; a *plateau* (a flat edge or region at the top of its
    neighbourhood, e.g. a ridge) is one local maximum however many vertices it has. A
    dead ReLU region is not a local maximum unless every neighbour is also at most 0,
    since its flat component reaches the zero line where the neuron starts to rise.
    """
    f = vertex_values(part, key, unit)
    tol = rtol * (float(np.abs(f).max()) + 1.0)
    e = partition_edges(part)
    fa, fb = f[e[:, 0]], f[e[:, 1]]
    flat = np.abs(fa - fb) <= tol
    nv = len(f)
    ef = e[flat]
    graph = coo_matrix((np.ones(len(ef)), (ef[:, 0], ef[:, 1])), shape=(nv, nv))
    _, label = connected_components(graph, directed=False)
    higher = np.zeros(label.max() + 1, bool)
    up_a = ~flat & (fb > fa + tol)  # edge rises from a to b
    up_b = ~flat & (fa > fb + tol)
    higher[label[e[up_a, 0]]] = True
    higher[label[e[up_b, 1]]] = True
    comps = np.nonzero(~higher)[0]
    used = np.zeros(nv, bool)
    used[e.ravel()] = True
    vals, pts, segs = [], [], []
    for c in comps:
        members = np.nonzero((label == c) & used)[0]
        if not len(members):
            continue
        vals.append(float(f[members].max()))
        pts.append(part.local_vertices[members] + part.origin)
        inside = flat & (label[e[:, 0]] == c)
        segs.append(
            np.stack([part.local_vertices[e[inside, 0]], part.local_vertices[e[inside, 1]]], 1)
            + part.origin
        )
    order = np.argsort(vals)[::-1]
    return LocalMaxima(
        np.asarray(vals)[order],
        tuple(pts[i] for i in order),
        tuple(segs[i].reshape(-1, 2, 2) for i in order),
        tol,
    )
