"""Vectorized helpers for batches of convex polygons stored flat (private).

A batch of ``P`` polygons is stored as one array of per-entry data (vertex
coordinates or vertex ids, ``n`` rows in all) plus ``offsets`` of shape
``(P + 1,)``: polygon ``p`` owns entries ``offsets[p]:offsets[p + 1]``, in
counter-clockwise order. Every polygon has at least three entries.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "areas",
    "clip_convex",
    "clip_positive",
    "expand_ranges",
    "next_index",
    "owner",
    "polygon_area",
    "sign_band",
]


def expand_ranges(starts: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """``concatenate([arange(s, s + l) for s, l in zip(starts, lens)])`` without a loop."""
    lens = np.asarray(lens, dtype=np.int64)
    total = int(lens.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    excl = np.cumsum(lens) - lens
    return np.arange(total, dtype=np.int64) + np.repeat(
        np.asarray(starts, dtype=np.int64) - excl, lens
    )


def next_index(offsets: np.ndarray) -> np.ndarray:
    """Index of each entry's cyclic successor within its polygon."""
    n = int(offsets[-1])
    nxt = np.arange(1, n + 1, dtype=np.int64)
    nxt[offsets[1:] - 1] = offsets[:-1]
    return nxt


def owner(offsets: np.ndarray) -> np.ndarray:
    """Polygon index of every entry."""
    return np.repeat(np.arange(len(offsets) - 1, dtype=np.int64), np.diff(offsets))


def areas(xy: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Signed shoelace areas (positive for counter-clockwise polygons).

    Coordinates are taken relative to each polygon's first vertex, so the
    rounding error scales with the polygon's size, not its distance from 0.
    """
    first = np.repeat(xy[offsets[:-1]], np.diff(offsets), axis=0)
    rel = xy - first
    nxt = next_index(offsets)
    cross = rel[:, 0] * rel[nxt, 1] - rel[nxt, 0] * rel[:, 1]
    return 0.5 * np.add.reduceat(cross, offsets[:-1])


def sign_band(f: np.ndarray, thr: float | np.ndarray) -> np.ndarray:
    """``+1`` where ``f > thr``, ``-1`` where ``f < -thr``, ``0`` in the band (int8)."""
    return (f > thr).astype(np.int8) - (f < -thr).astype(np.int8)


def clip_positive(
    xy: np.ndarray,
    offsets: np.ndarray,
    f: np.ndarray,
    thr: float | np.ndarray,
    *,
    keep_flat: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Clip every polygon to the side where its affine function ``f`` is ``>= 0``.

    ``f`` holds the function's value at every entry (one affine function per
    polygon). Values with ``|f| <= thr`` count as on the line, so a polygon
    is cut only if it has vertices beyond the band on both sides, and no
    zero-area sliver is produced. A polygon with every vertex in the band
    ("flat": the function is zero on it up to rounding) is kept whole if
    ``keep_flat`` and dropped otherwise; one with no vertex above the band is
    dropped. Returns ``(xy, offsets, source)``, ``source[q]`` being the input
    polygon that output polygon ``q`` came from (in increasing order).
    """
    num = len(offsets) - 1
    lens = np.diff(offsets)
    pid = owner(offsets)
    sg = sign_band(f, thr)
    smax = np.maximum.reduceat(sg, offsets[:-1])
    smin = np.minimum.reduceat(sg, offsets[:-1])
    flat = (smax == 0) & (smin == 0)
    cut = (smax > 0) & (smin < 0)
    whole = ((smax > 0) & (smin >= 0)) | (flat & keep_flat)
    if not cut.any():
        keep = whole
        emask = np.repeat(keep, lens)
        counts = lens[keep]
        return xy[emask], np.concatenate([[0], np.cumsum(counts)]), np.nonzero(keep)[0]
    nxt = next_index(offsets)
    cut_e = cut[pid]
    cross = cut_e & (sg * sg[nxt] < 0)
    keep_v = np.where(cut_e, sg >= 0, whole[pid])
    ci = np.nonzero(cross)[0]
    fa, fb = f[ci], f[nxt[ci]]
    t = fa / (fa - fb)
    pts = np.zeros_like(xy)
    pts[ci] = xy[ci] + t[:, None] * (xy[nxt[ci]] - xy[ci])
    cand = np.stack([xy, pts], axis=1).reshape(-1, 2)
    mask = np.stack([keep_v, cross], axis=1).reshape(-1)
    out_xy = cand[mask]
    out_pid = np.repeat(pid, 2)[mask]
    counts = np.bincount(out_pid, minlength=num)
    src = np.nonzero(counts > 0)[0]
    return out_xy, np.concatenate([[0], np.cumsum(counts[src])]), src


def clip_convex(poly: np.ndarray, g: np.ndarray, c: float, *, band: float = 0.0) -> np.ndarray:
    """The part of one convex polygon ``(V, 2)`` where ``g . x + c >= 0`` (``(0, 2)`` if none).

    Vertices with ``|g . x + c| <= band`` count as on the line (see :func:`clip_positive`).
    """
    poly = np.asarray(poly, np.float64)
    if len(poly) < 3:
        return np.zeros((0, 2))
    f = poly @ np.asarray(g, np.float64) + float(c)
    xy, _, src = clip_positive(poly, np.array([0, len(poly)]), f, band, keep_flat=False)
    return xy if len(src) else np.zeros((0, 2))


def polygon_area(poly: np.ndarray) -> float:
    """Signed area of one polygon (positive counter-clockwise; 0 for fewer than 3 vertices)."""
    poly = np.asarray(poly, np.float64)
    if len(poly) < 3:
        return 0.0
    return float(areas(poly, np.array([0, len(poly)]))[0])
