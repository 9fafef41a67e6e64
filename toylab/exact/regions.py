r"""Exact linear regions of piecewise-linear networks on 2-D inputs (float64, NumPy).

A network is given as plain arrays: ``layers = [(W_0, b_0), ..., (W_L, b_L)]``
with ``W_k`` of shape ``(fan_in, fan_out)`` (flax kernel layout,
:math:`y = x W + b`) and one activation name per hidden layer from
``relu``, ``leaky_relu`` (slope 0.01), ``abs``, ``hardtanh`` (clip to
:math:`[-1, 1]`) and ``identity``. The last layer is the output (logits, no
activation). Layer keys follow :mod:`toylab.neurons`: ``"hidden_{k}.pre"``,
``"hidden_{k}"`` and ``"output"``.

Such a network is affine on each cell of a finite partition of the plane
into convex polygons. :func:`partition` computes that partition for a convex
polygonal domain, layer by layer: every pre-activation of layer :math:`k` is
affine on each region found so far (its map follows from layer
:math:`k - 1`'s maps), so each neuron cuts the regions it crosses along its
breakpoint lines (:math:`z = 0`; :math:`z = \pm 1` for ``hardtanh``), and
the post-activation is affine on each piece. Every neuron's value is kept at
every vertex; a cut places its new vertex by interpolating the two endpoint
values of the edge it crosses, which is exact up to rounding and never
leaves a gap between neighbours (shared edges get the same new vertex).

**Tolerance.** With ``tol`` (default ``1e-9``), a vertex counts as *on* a
neuron's breakpoint line when :math:`|z - \beta| \le \mathrm{tol}\cdot s`,
where :math:`s = \max(\max_v (|a(v)|\,|W|)_j + |b_j|, |\beta|)` is the largest
magnitude of the terms summed into that neuron over all vertices of the
domain's partition (the scale of its rounding error). A region is cut only if
it has vertices beyond that band on both sides, so lines through existing
vertices, duplicate neurons, zero weight rows and dead neurons never create
zero-area slivers; the price is that a region may keep a vertex that lies up
to :math:`\mathrm{tol}\cdot s` on the wrong side of a line, i.e. the maps are
exact up to that error near such vertices. The same band is used by the
queries (:func:`level_set`, :func:`active_region`, :func:`argmax_pieces`),
relative to the scale of the values they test.

>>> import numpy as np
>>> W0 = np.array([[1.0, 0.0], [0.0, 1.0]]); b0 = np.zeros(2)
>>> W1 = np.ones((2, 1)); b1 = np.zeros(1)
>>> part = partition([(W0, b0), (W1, b1)], ["relu"], box((-1, -1), (1, 1)))
>>> len(part.polygons), float(part.areas.sum())
(4, 4.0)
>>> float(extrema(part, "output", 0).max)
2.0
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from toylab._errors import ToylabError, did_you_mean, fail
from toylab.exact._polygon import (
    areas as _areas,
)
from toylab.exact._polygon import (
    clip_positive,
    expand_ranges,
    next_index,
    owner,
    sign_band,
)

__all__ = [
    "LEAKY_SLOPE",
    "ExtremaResult",
    "Partition",
    "active_region",
    "argmax_pieces",
    "box",
    "decision_boundary",
    "evaluate",
    "extrema",
    "forward",
    "level_set",
    "locate",
    "partition",
    "plane_through",
    "slice_partition",
]

LEAKY_SLOPE = 0.01  # the same slope as toylab.models.activations.LEAKY_SLOPE

# Breakpoints, and (slope, offset) of each linear piece in pattern order.
_BREAKS: dict[str, tuple[float, ...]] = {
    "relu": (0.0,),
    "leaky_relu": (0.0,),
    "abs": (0.0,),
    "hardtanh": (-1.0, 1.0),
    "identity": (),
}
_PIECES: dict[str, tuple[tuple[float, float], ...]] = {
    "relu": ((0.0, 0.0), (1.0, 0.0)),
    "leaky_relu": ((LEAKY_SLOPE, 0.0), (1.0, 0.0)),
    "abs": ((-1.0, 0.0), (1.0, 0.0)),
    "hardtanh": ((0.0, -1.0), (1.0, 0.0), (0.0, 1.0)),
    "identity": ((1.0, 0.0),),
}


def _act(name: str, z: np.ndarray) -> np.ndarray:
    if name == "relu":
        return np.maximum(z, 0.0)
    if name == "leaky_relu":
        return np.where(z > 0, z, LEAKY_SLOPE * z)
    if name == "abs":
        return np.abs(z)
    if name == "hardtanh":
        return np.clip(z, -1.0, 1.0)
    return z


def _piece(name: str, z: np.ndarray) -> np.ndarray:
    """Pattern index of the linear piece that ``z`` falls in (int8)."""
    if name == "hardtanh":
        return ((z >= -1.0).astype(np.int8) + (z > 1.0)).astype(np.int8)
    if name == "identity":
        return np.zeros(z.shape, dtype=np.int8)
    return (z > 0).astype(np.int8)


# --------------------------------------------------------------------------- validation


def _check_network(
    where: str, layers: Sequence[Any], activations: Sequence[str], in_dim: int | None
) -> tuple[list[tuple[np.ndarray, np.ndarray]], tuple[str, ...]]:
    if isinstance(activations, str):
        raise fail(where, "activations", activations, "a sequence of names, one per hidden layer")
    acts = tuple(activations)
    try:
        pairs = [
            (np.asarray(w, dtype=np.float64), np.asarray(b, dtype=np.float64)) for w, b in layers
        ]
    except (TypeError, ValueError):
        raise fail(
            where, "layers", type(layers).__name__, "a sequence of (W, b) array pairs"
        ) from None
    if not pairs:
        raise fail(where, "layers", layers, "a non-empty sequence of (W, b) pairs")
    if len(acts) != len(pairs) - 1:
        raise fail(
            where,
            "activations",
            list(acts),
            f"one name per hidden layer ({len(pairs) - 1} for {len(pairs)} layers)",
            "The last layer is the output and has no activation.",
        )
    for a in acts:
        if a not in _BREAKS:
            raise ToylabError(
                f"{where}: activations must be names from {sorted(_BREAKS)}, got {a!r}."
                + did_you_mean(str(a), _BREAKS)
                + " Smooth activations have no exact partition; use bounds instead."
            )
    prev = in_dim
    for k, (w, b) in enumerate(pairs):
        if w.ndim != 2 or b.shape != (w.shape[1],):
            raise fail(
                where,
                f"layers[{k}]",
                f"W{w.shape}, b{b.shape}",
                "(W, b) with W of shape (fan_in, fan_out) and b of shape (fan_out,)",
            )
        if prev is not None and w.shape[0] != prev:
            raise fail(
                where,
                f"layers[{k}][0].shape[0]",
                w.shape[0],
                f"{prev} (the width of the previous layer or the input)",
            )
        if not (np.all(np.isfinite(w)) and np.all(np.isfinite(b))):
            raise fail(where, f"layers[{k}]", "non-finite values", "finite")
        prev = w.shape[1]
    return pairs, acts


def _check_polygon(where: str, polygon: Any) -> np.ndarray:
    poly = np.asarray(polygon, dtype=np.float64)
    if poly.ndim != 2 or poly.shape[1] != 2 or poly.shape[0] < 3:
        raise fail(
            where, "polygon", getattr(poly, "shape", polygon), "an array of shape (V >= 3, 2)"
        )
    if not np.all(np.isfinite(poly)):
        raise fail(where, "polygon", "non-finite vertices", "finite vertices")
    e = np.roll(poly, -1, axis=0) - poly
    cross = e[:, 0] * np.roll(e, -1, axis=0)[:, 1] - e[:, 1] * np.roll(e, -1, axis=0)[:, 0]
    area = float(_areas(poly, np.array([0, len(poly)]))[0])
    scale = float(np.max(np.abs(e))) ** 2
    if area <= 0 or np.any(cross < -1e-12 * scale):
        raise fail(
            where,
            "polygon",
            poly.tolist(),
            "the counter-clockwise vertices of a convex polygon with positive area",
            "Reverse the vertex order if it is clockwise.",
        )
    return poly


def box(low: Sequence[float] = (-1.0, -1.0), high: Sequence[float] = (1.0, 1.0)) -> np.ndarray:
    """The box ``[low[0], high[0]] x [low[1], high[1]]`` as a CCW polygon ``(4, 2)``.

    >>> box((0, 0), (2, 1)).tolist()
    [[0.0, 0.0], [2.0, 0.0], [2.0, 1.0], [0.0, 1.0]]
    """
    (x0, y0), (x1, y1) = (tuple(map(float, low)), tuple(map(float, high)))
    if not (x1 > x0 and y1 > y0):
        raise fail("box", "high", (x1, y1), f"> low = {(x0, y0)} in both coordinates")
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])


# --------------------------------------------------------------------------- result


class ExtremaResult(NamedTuple):
    """Exact max and min of a unit over the domain, and points attaining them.

    Scalars and ``(2,)`` points for one unit; ``(width,)`` and ``(width, 2)``
    arrays for a whole layer.
    """

    max: Any
    argmax: np.ndarray
    min: Any
    argmin: np.ndarray


@dataclasses.dataclass(frozen=True, eq=False)
class Partition:
    """The exact partition of a convex domain into regions where a network is affine.

    Attributes:
      polygons: the ``R`` regions, each a ``(V_r, 2)`` array of CCW vertices.
      maps: layer key -> ``(R, width, 3)``; ``maps[key][r, i] = (g_x, g_y, c)``
        with unit ``i`` equal to ``g_x x + g_y y + c`` on region ``r``.
      patterns: hidden layer key (``"hidden_k"``) -> ``(R, width)`` int8 index
        of the linear piece of each neuron (relu / leaky_relu: 0 inactive, 1
        active; abs: 0 negative, 1 positive; hardtanh: 0 low, 1 linear, 2 high;
        identity: 0).
      region_counts: hidden layer key -> number of regions after that layer's cuts.
      areas: ``(R,)`` region areas; they sum to the domain's area.
      vertices, ring, offsets: the same regions stored flat: region ``r`` is
        ``vertices[ring[offsets[r]:offsets[r + 1]]]``; neighbouring regions
        share vertex ids.
      domain: the domain polygon; ``activations``; ``tol``: the relative
        tolerance used (see the module docstring).
    """

    polygons: list[np.ndarray]
    maps: dict[str, np.ndarray]
    patterns: dict[str, np.ndarray]
    region_counts: dict[str, int]
    areas: np.ndarray
    vertices: np.ndarray
    ring: np.ndarray
    offsets: np.ndarray
    domain: np.ndarray
    activations: tuple[str, ...]
    tol: float

    @property
    def num_regions(self) -> int:
        """Number of regions ``R``."""
        return len(self.offsets) - 1

    def layer_keys(self) -> list[str]:
        """All layer keys, in network order."""
        return list(self.maps)


# --------------------------------------------------------------------------- the cutter


_SMALL_CUT = 24  # at most this many crossed pieces: split them in plain Python


class _Mesh:
    """Growing storage of regions (pieces) sharing a vertex table.

    Vertex rows hold ``(x, y, z_0, ..., z_{w-1})``: the position and the
    current layer's pre-activations (``V`` is filled up to ``nv``). Piece
    ``p`` is ``P[p, :plen[p]]`` (vertex ids, CCW); the rest of its row repeats
    its first vertex, so row-wise min / max of vertex values ignore the
    padding and the edge from the last vertex leads back to the first. Piece
    ``p`` descends from region ``porig[p]`` of the partition at the start of
    the layer. A cut piece keeps its index for its ``>= 0`` side and appends
    its ``<= 0`` side.
    """

    def __init__(
        self, rows: np.ndarray, nv: int, P: np.ndarray, plen: np.ndarray, num: int
    ) -> None:
        self.V = rows
        self.nv = nv
        self.P = P
        self.plen = plen
        self.porig = np.empty(len(plen), dtype=np.int64)
        self.porig[:num] = np.arange(num)
        self.np = num

    @staticmethod
    def padded(ring: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
        """``(P, plen, num)`` storage of flat ``(ring, offsets)`` with spare room."""
        num = len(offsets) - 1
        lens = np.diff(offsets)
        width = int(lens.max()) + 4
        P = np.empty((2 * num + 16, width), dtype=np.int64)
        plen = np.empty(2 * num + 16, dtype=np.int64)
        plen[:num] = lens
        _Mesh._fill(P, np.arange(num), ring, lens)
        return P, plen, num

    @staticmethod
    def _fill(P: np.ndarray, rows: np.ndarray, flat: np.ndarray, lens: np.ndarray) -> None:
        """Write rings stored flat (``lens`` entries each) into rows ``rows`` of ``P``."""
        ends = lens.cumsum()
        starts = ends - lens
        P[rows] = flat[starts][:, None]
        P[rows.repeat(lens), np.arange(len(flat)) - starts.repeat(lens)] = flat

    def _grow_vertices(self, extra: int) -> None:
        need = self.nv + extra
        if need > len(self.V):
            big = np.empty((max(need, 2 * len(self.V)), self.V.shape[1]))
            big[: self.nv] = self.V[: self.nv]
            self.V = big

    def _grow_pieces(self, extra: int, width: int) -> None:
        need = self.np + extra
        cap, old = self.P.shape
        if need > cap or width > old:
            cap = max(need, 2 * cap) if need > cap else cap
            big = np.empty((cap, max(width + 2, old)), dtype=np.int64)
            big[: self.np, :old] = self.P[: self.np]
            big[: self.np, old:] = self.P[: self.np, :1]
            self.P = big
        if need > len(self.plen):
            for name in ("plen", "porig"):
                new = np.empty(cap, dtype=np.int64)
                new[: self.np] = getattr(self, name)[: self.np]
                setattr(self, name, new)

    def flat(self) -> tuple[np.ndarray, np.ndarray]:
        """Compact ``(ring, offsets)`` of the pieces, in piece order."""
        lens = self.plen[: self.np]
        P = self.P[: self.np]
        ring = P[np.arange(P.shape[1]) < lens[:, None]]
        offsets = np.zeros(self.np + 1, dtype=np.int64)
        lens.cumsum(out=offsets[1:])
        return ring, offsets

    def cut(self, col: int, beta: float, thr: float, straddle: np.ndarray) -> None:
        """Cut every piece crossed by the line ``V[:, col] == beta`` (band ``thr``).

        ``straddle[o]`` says whether origin region ``o`` has vertices beyond
        the band on both sides; only its descendants can be crossed.
        """
        cand = straddle[self.porig[: self.np]].nonzero()[0]
        if not cand.size:
            return
        pc = self.P[cand]
        z = self.V[pc, col]
        sg = (z > beta + thr).view(np.int8) - (z < beta - thr).view(np.int8)
        crossed = (sg.max(axis=1) > 0) & (sg.min(axis=1) < 0)
        sel = crossed.nonzero()[0]
        if not sel.size:
            return
        if sel.size < cand.size:
            cand, pc, sg = cand[sel], pc[sel], sg[sel]
        lens = self.plen[cand]
        if len(cand) <= _SMALL_CUT:
            self._split_small(col, beta, cand, pc, sg, lens)
        else:
            self._split(col, beta, cand, pc, sg, lens)

    def _new_vertices(self, col: int, beta: float, ulo: np.ndarray, uhi: np.ndarray) -> None:
        """Append the crossing points of edges ``ulo -> uhi`` (``ulo < uhi``) with the line."""
        row_lo, row_hi = self.V[ulo], self.V[uhi]
        za = row_lo[:, col] - beta
        t = za / (za - (row_hi[:, col] - beta))
        row_hi -= row_lo
        row_hi *= t[:, None]
        row_hi += row_lo
        row_hi[:, col] = beta
        nnew = len(ulo)
        self._grow_vertices(nnew)
        self.V[self.nv : self.nv + nnew] = row_hi
        self.nv += nnew

    def _split_small(
        self,
        col: int,
        beta: float,
        cand: np.ndarray,
        pc: np.ndarray,
        sg: np.ndarray,
        lens: np.ndarray,
    ) -> None:
        """:meth:`_split` for a few pieces, in plain Python (same results)."""
        edges: dict[tuple[int, int], int] = {}
        sides_a: list[list[int]] = []
        sides_b: list[list[int]] = []
        for ring, sgn, n in zip(pc.tolist(), sg.tolist(), lens.tolist(), strict=True):
            s0 = sgn[0]
            if s0 and 0 not in sgn:
                # no vertex on the line: signs s0 on slots 0..k1 and k2+1.., -s0 between
                k1 = sgn.index(-s0) - 1
                try:
                    k2 = sgn.index(s0, k1 + 1) - 1
                except ValueError:
                    k2 = n - 1
                v, w = ring[k1], ring[k1 + 1]
                new1 = edges.setdefault((v, w) if v < w else (w, v), -1 - len(edges))
                v, w = ring[k2], ring[k2 + 1 if k2 + 1 < n else 0]
                new2 = edges.setdefault((v, w) if v < w else (w, v), -1 - len(edges))
                same = ring[: k1 + 1] + [new1, new2] + ring[k2 + 1 : n]
                other = [new1, *ring[k1 + 1 : k2 + 1], new2]
                sides_a.append(same if s0 > 0 else other)
                sides_b.append(other if s0 > 0 else same)
                continue
            side_a: list[int] = []
            side_b: list[int] = []
            prev_v, prev_s = ring[n - 1], sgn[n - 1]
            # walk from the last vertex so that each edge (prev -> cur) is seen before cur
            for i in range(n):
                v, s = ring[i], sgn[i]
                if i and prev_s * s < 0:
                    key = (prev_v, v) if prev_v < v else (v, prev_v)
                    new = edges.setdefault(key, -1 - len(edges))
                    side_a.append(new)
                    side_b.append(new)
                if s >= 0:
                    side_a.append(v)
                if s <= 0:
                    side_b.append(v)
                prev_v, prev_s = v, s
            if prev_s * sgn[0] < 0:  # the closing edge (last -> first)
                v = ring[0]
                key = (prev_v, v) if prev_v < v else (v, prev_v)
                new = edges.setdefault(key, -1 - len(edges))
                side_a.append(new)
                side_b.append(new)
            sides_a.append(side_a)
            sides_b.append(side_b)
        # number the new vertices in edge order, as the vectorised split does
        keys = sorted(edges)
        base = self.nv
        rank = [0] * len(keys)
        for r, key in enumerate(keys):
            rank[-1 - edges[key]] = base + r
        ulo = np.array([k[0] for k in keys], dtype=np.int64)
        uhi = np.array([k[1] for k in keys], dtype=np.int64)
        self._new_vertices(col, beta, ulo, uhi)
        num = len(sides_a)
        flat: list[int] = []
        counts: list[int] = []
        for side in (*sides_a, *sides_b):
            flat += side
            counts.append(len(side))
        ids = np.array(flat, dtype=np.int64)
        if len(edges):
            fresh = ids < 0
            ids[fresh] = np.array(rank, dtype=np.int64)[-1 - ids[fresh]]
        cnt = np.array(counts, dtype=np.int64)
        self._grow_pieces(num, int(cnt.max()))
        p0 = self.np
        idx = np.concatenate([cand, np.arange(p0, p0 + num)])
        self._fill(self.P, idx, ids, cnt)
        self.plen[idx] = cnt
        self.porig[p0 : p0 + num] = self.porig[cand]
        self.np = p0 + num

    def _split(
        self,
        col: int,
        beta: float,
        cand: np.ndarray,
        pc: np.ndarray,
        sg2: np.ndarray,
        lens: np.ndarray,
    ) -> None:
        """Split pieces ``cand`` (vertex ids ``pc``, signs ``sg2``) along the line."""
        valid = np.arange(pc.shape[1]) < lens[:, None]
        v = pc[valid]
        sg = sg2[valid]
        ends = lens.cumsum()
        first = ends - lens
        num = len(cand)
        m = len(v)
        nxt = np.arange(1, m + 1)
        nxt[ends - 1] = first
        vn = v[nxt]
        cross = (sg * sg[nxt]) < 0
        # one new vertex per crossed edge, shared by the pieces on either side of it
        a, b = v[cross], vn[cross]
        base = self.nv
        key = np.minimum(a, b) * base + np.maximum(a, b)
        order = key.argsort()
        ks = key[order]
        fresh = np.ones(len(ks), dtype=bool)
        np.not_equal(ks[1:], ks[:-1], out=fresh[1:])
        keys = ks[fresh]
        inv = np.empty(len(ks), dtype=np.int64)
        inv[order] = fresh.cumsum() - 1
        self._new_vertices(col, beta, keys // base, keys % base)
        # walk each ring, inserting the crossing vertex after the start of its edge
        seq = np.empty((m, 2), dtype=np.int64)
        seq[:, 0] = v
        seq[cross, 1] = inv + base
        sgs = np.zeros((m, 2), dtype=np.int8)
        sgs[:, 0] = sg
        ok = np.empty((m, 2), dtype=bool)
        ok[:, 0] = True
        ok[:, 1] = cross
        seq, sgs = seq[ok], sgs[ok]
        va, vb = seq[sgs >= 0], seq[sgs <= 0]
        cnt_a = np.add.reduceat(
            (sg >= 0).view(np.int8) + cross.view(np.int8), first, dtype=np.int64
        )
        cnt_b = np.add.reduceat(
            (sg <= 0).view(np.int8) + cross.view(np.int8), first, dtype=np.int64
        )
        self._grow_pieces(num, int(max(cnt_a.max(), cnt_b.max())))
        p0 = self.np
        self._fill(self.P, cand, va, cnt_a)
        self._fill(self.P, np.arange(p0, p0 + num), vb, cnt_b)
        self.plen[cand] = cnt_a
        self.plen[p0 : p0 + num] = cnt_b
        self.porig[p0 : p0 + num] = self.porig[cand]
        self.np = p0 + num


def _compose(post: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Maps ``(R, 3, n)`` of one layer -> maps ``(R, 3, m)`` of ``post @ w + b``.

    Internally a map array holds ``(g_x, g_y, c)`` along axis 1, so composing
    with a layer is one matrix product; :class:`Partition` exposes the
    ``(R, width, 3)`` transposed view.
    """
    r, _, n = post.shape
    out = (post.reshape(r * 3, n) @ w).reshape(r, 3, -1)
    out[:, 2, :] += b
    return out


def _segment_range(z: np.ndarray, mesh: _Mesh) -> tuple[np.ndarray, ...]:
    """Per-piece min and max ``(R, width)`` of vertex values ``z`` over each ring."""
    P = mesh.P[: mesh.np]
    lo = z[P[:, 0]]
    hi = lo.copy()
    for slot in range(1, int(mesh.plen[: mesh.np].max())):
        vals = z[P[:, slot]]  # padding repeats the first vertex
        np.minimum(lo, vals, out=lo)
        np.maximum(hi, vals, out=hi)
    return lo, hi


def _split_flat(xy: np.ndarray, offsets: np.ndarray) -> list[np.ndarray]:
    return [xy[a:b] for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist(), strict=True)]


def _partition(
    pairs: list[tuple[np.ndarray, np.ndarray]], acts: tuple[str, ...], poly: np.ndarray, tol: float
) -> Partition:
    nh = len(acts)
    w0, b0 = pairs[0]
    a_prev = poly  # activations feeding the current layer, at every vertex
    ring = np.arange(len(poly), dtype=np.int64)
    offsets = np.array([0, len(poly)], dtype=np.int64)
    mesh = _Mesh(
        np.concatenate([poly, poly @ w0 + b0], axis=1), len(poly), *_Mesh.padded(ring, offsets)
    )
    post_map = np.zeros((1, 3, 2))
    post_map[0, 0, 0] = post_map[0, 1, 1] = 1.0
    # per hidden layer: its maps on the regions right after its cuts, and the
    # origin of each of those regions among the regions before the cuts
    layer_maps: list[tuple[np.ndarray, np.ndarray]] = []
    origins: list[np.ndarray] = []
    patterns: list[np.ndarray] = []
    counts: dict[str, int] = {}
    for k in range(nh):
        w, b = pairs[k]
        act = acts[k]
        pre_map = _compose(post_map, w, b)  # on the regions before this layer's cuts
        breaks = _BREAKS[act]
        if breaks:
            scale = (np.abs(a_prev) @ np.abs(w)).max(axis=0) + np.abs(b)
            lo, hi = _segment_range(mesh.V[: mesh.nv, 2:], mesh)
            lo, hi = lo.T, hi.T  # (width, R)
            # per breakpoint: the band of every neuron and which regions it crosses
            thrs = [tol * np.maximum(scale, abs(beta)) for beta in breaks]
            strads = [
                (lo < (beta - thr)[:, None]) & (hi > (beta + thr)[:, None])
                for beta, thr in zip(breaks, thrs, strict=True)
            ]
            todo = np.stack([s.any(axis=1) for s in strads], axis=1).nonzero()
            for j, i in zip(*(t.tolist() for t in todo), strict=True):
                mesh.cut(2 + j, breaks[i], float(thrs[i][j]), strads[i][j])
        origin = mesh.porig[: mesh.np].copy()
        ring, offsets = mesh.flat()
        pre_map = np.take(pre_map, origin, axis=0)
        # the piece of each neuron, read off at the vertex mean (an interior point)
        lens = np.diff(offsets)
        mean = np.add.reduceat(mesh.V[ring, :2], offsets[:-1], axis=0) / lens[:, None]
        zc = mean[:, :1] * pre_map[:, 0] + mean[:, 1:] * pre_map[:, 1] + pre_map[:, 2]
        pat = _piece(act, zc)
        pieces = np.asarray(_PIECES[act])
        if act == "identity":
            post_map = pre_map
        else:
            post_map = pre_map * pieces[pat, 0][:, None, :]
            if np.any(pieces[:, 1]):
                post_map[:, 2] += pieces[pat, 1]
        layer_maps.append((pre_map, post_map))
        origins.append(origin)
        patterns.append(pat)
        counts[f"hidden_{k}"] = len(lens)
        # next layer's pre-activations at every vertex (a forward pass from the vertex values)
        a_next = _act(act, mesh.V[: mesh.nv, 2:])
        wn, bn = pairs[k + 1]
        rows = np.empty((2 * mesh.nv + 16, 2 + wn.shape[1]))
        rows[: mesh.nv, :2] = mesh.V[: mesh.nv, :2]
        np.matmul(a_next, wn, out=rows[: mesh.nv, 2:])
        rows[: mesh.nv, 2:] += bn
        mesh = _Mesh(rows, mesh.nv, mesh.P, mesh.plen, mesh.np)
        a_prev = a_next
    w, b = pairs[-1]
    num = len(offsets) - 1
    out_map = _compose(post_map, w, b)
    if out_map.shape[0] != num:  # no hidden layer: one region
        out_map = np.repeat(out_map, num, axis=0)
    maps: dict[str, np.ndarray] = {}
    pats: dict[str, np.ndarray] = {}
    idx: np.ndarray | None = None  # final region -> region right after layer k's cuts
    for k in range(nh - 1, -1, -1):
        pre_map, post_map = layer_maps[k]
        pat = patterns[k]
        if idx is not None:
            pre_map = np.take(pre_map, idx, axis=0)
            post_map = pre_map if post_map is layer_maps[k][0] else np.take(post_map, idx, axis=0)
            pat = np.take(pat, idx, axis=0)
        maps[f"hidden_{k}.pre"] = pre_map.transpose(0, 2, 1)
        maps[f"hidden_{k}"] = post_map.transpose(0, 2, 1)
        pats[f"hidden_{k}"] = pat
        idx = origins[k] if idx is None else origins[k][idx]
    maps = {key: maps[key] for key in sorted(maps, key=_key_order)}
    maps["output"] = out_map.transpose(0, 2, 1)
    pats = {key: pats[key] for key in sorted(pats, key=_key_order)}
    vertices = np.ascontiguousarray(mesh.V[: mesh.nv, :2])
    xy = vertices[ring]
    area = _areas(xy, offsets)
    for arr in (*maps.values(), *pats.values(), vertices, ring, offsets, area, xy):
        arr.flags.writeable = False  # shared between keys and polygons: results are immutable
    return Partition(
        polygons=_split_flat(xy, offsets),
        maps=maps,
        patterns=pats,
        region_counts=counts,
        areas=area,
        vertices=vertices,
        ring=ring,
        offsets=offsets,
        domain=poly,
        activations=acts,
        tol=tol,
    )


def _key_order(key: str) -> tuple[int, int]:
    layer, _, pre = key.partition(".")
    return int(layer.split("_")[1]), 0 if pre else 1


def _check_tol(where: str, tol: float) -> float:
    tol = float(tol)
    if not (0.0 <= tol < 1e-3):
        raise fail(where, "tol", tol, "in [0, 1e-3)", "The default 1e-9 suits float64 networks.")
    return tol


def partition(
    layers: Sequence[tuple[Any, Any]],
    activations: Sequence[str],
    polygon: Any,
    *,
    tol: float = 1e-9,
) -> Partition:
    """The exact partition of a convex polygon into regions where the network is affine.

    ``layers`` are ``(W, b)`` pairs with ``W`` of shape ``(fan_in, fan_out)``
    (the first ``fan_in`` must be 2), ``activations`` one name per hidden
    layer, ``polygon`` the domain's counter-clockwise vertices ``(V, 2)``
    (see :func:`box`). ``tol`` is the relative tolerance of the module
    docstring. Cost: about (number of neurons) x (regions cut per neuron).
    """
    pairs, acts = _check_network("partition", layers, activations, 2)
    poly = _check_polygon("partition", polygon)
    return _partition(pairs, acts, poly, _check_tol("partition", tol))


def plane_through(a: Any, b: Any, c: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(origin, d1, d2)`` of the plane through three inputs.

    The plane is ``x = origin + s d1 + t d2`` with ``origin = a``,
    ``d1 = b - a``, ``d2 = c - a``, so that ``a``, ``b``, ``c`` sit at slice
    coordinates ``(0, 0)``, ``(1, 0)`` and ``(0, 1)``.
    """
    a, b, c = (np.asarray(p, dtype=np.float64) for p in (a, b, c))
    if not (a.ndim == 1 and a.shape == b.shape == c.shape):
        raise fail("plane_through", "a, b, c", (a.shape, b.shape, c.shape), "three (n,) inputs")
    d1, d2 = b - a, c - a
    gram = np.array([[d1 @ d1, d1 @ d2], [d1 @ d2, d2 @ d2]])
    if abs(np.linalg.det(gram)) <= 1e-24 * max(float(gram.max()), 1e-300) ** 2:
        raise fail(
            "plane_through", "a, b, c", "collinear points", "three affinely independent inputs"
        )
    return a, d1, d2


def slice_partition(
    layers: Sequence[tuple[Any, Any]],
    activations: Sequence[str],
    origin: Any,
    d1: Any,
    d2: Any,
    polygon: Any,
    *,
    tol: float = 1e-9,
) -> Partition:
    """The exact partition of a network restricted to the plane ``origin + s d1 + t d2``.

    For inputs of any dimension ``n``: ``origin``, ``d1`` and ``d2`` are
    ``(n,)`` and ``polygon`` is given in slice coordinates ``(s, t)``. The
    plane is composed into the first layer, so the result (polygons, maps,
    gradients) is in slice coordinates: ``maps[key][r, i, :2]`` is the
    derivative along ``(d1, d2)``. Use :func:`plane_through` for the plane
    through three inputs.
    """
    pairs, acts = _check_network("slice_partition", layers, activations, None)
    n = pairs[0][0].shape[0]
    o, e1, e2 = (np.asarray(p, dtype=np.float64) for p in (origin, d1, d2))
    for name, p in (("origin", o), ("d1", e1), ("d2", e2)):
        if p.shape != (n,) or not np.all(np.isfinite(p)):
            raise fail("slice_partition", name, p.shape, f"a finite array of shape ({n},)")
    w0, b0 = pairs[0]
    pairs = [(np.stack([e1, e2]) @ w0, o @ w0 + b0), *pairs[1:]]
    poly = _check_polygon("slice_partition", polygon)
    return _partition(pairs, acts, poly, _check_tol("slice_partition", tol))


# --------------------------------------------------------------------------- queries


def forward(
    layers: Sequence[tuple[Any, Any]], activations: Sequence[str], x: Any
) -> dict[str, np.ndarray]:
    """Plain NumPy forward pass: layer key -> ``(N, width)`` values at inputs ``x``."""
    pairs, acts = _check_network("forward", layers, activations, None)
    h = np.asarray(x, dtype=np.float64)
    out: dict[str, np.ndarray] = {}
    for k, act in enumerate(acts):
        z = h @ pairs[k][0] + pairs[k][1]
        h = _act(act, z)
        out[f"hidden_{k}.pre"], out[f"hidden_{k}"] = z, h
    out["output"] = h @ pairs[-1][0] + pairs[-1][1]
    return out


def _check_key(where: str, part: Partition, key: str) -> np.ndarray:
    if key not in part.maps:
        raise ToylabError(
            f"{where}: key must be one of {list(part.maps)}, got {key!r}."
            + did_you_mean(str(key), part.maps)
        )
    return part.maps[key]


def _check_unit(where: str, maps: np.ndarray, key: str, unit: Any) -> int:
    width = maps.shape[1]
    if isinstance(unit, bool) or not isinstance(unit, (int, np.integer)) or not 0 <= unit < width:
        raise fail(where, "unit", unit, f"an integer in [0, {width}) for layer {key!r}")
    return int(unit)


def _entry_values(part: Partition, m: np.ndarray) -> np.ndarray:
    """Values ``(n, width)`` of per-region maps ``m (R, width, 3)`` at every ring entry."""
    xy = part.vertices[part.ring]
    pid = owner(part.offsets)
    mm = m[pid]
    return mm[:, :, 0] * xy[:, :1] + mm[:, :, 1] * xy[:, 1:] + mm[:, :, 2]


def _magnitude(part: Partition, m: np.ndarray) -> np.ndarray:
    """Per-entry ``|g_x x| + |g_y y| + |c|``: the rounding scale of the map values."""
    xy = np.abs(part.vertices[part.ring])
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
    first = np.full(len(part.vertices), -1, dtype=np.int64)
    first[part.ring[::-1]] = owner(part.offsets)[::-1]
    xy = part.vertices
    g = np.take(m.transpose(0, 2, 1), first, axis=0)  # (V, 3, width)
    vals = g[:, 0] * xy[:, :1] + g[:, 1] * xy[:, 1:] + g[:, 2]
    imax, imin = vals.argmax(axis=0), vals.argmin(axis=0)
    cols = np.arange(vals.shape[1])
    res = ExtremaResult(vals[imax, cols], xy[imax], vals[imin, cols], xy[imin])
    if unit is not None:
        return ExtremaResult(float(res.max[0]), res.argmax[0], float(res.min[0]), res.argmin[0])
    return res


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
    nv = np.int64(len(part.vertices))
    v, vn = part.ring, part.ring[nxt]
    xy = part.vertices[v]
    # candidate points in crossing regions: zero vertices and crossed edges, in ring order
    at_vertex = crossing & (sg == 0)
    on_edge = crossing & (sg * sg[nxt] < 0)
    cand = np.stack([at_vertex, on_edge], axis=1).reshape(-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(on_edge, f / (f - f[nxt]), 0.0)
    edge_pts = xy + t[:, None] * (part.vertices[vn] - xy)
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
        seg_pa.append(part.vertices[v[sel]])
        seg_pb.append(part.vertices[vn[sel]])
    if not seg_ka:
        return []
    return _chain(
        np.concatenate(seg_ka),
        np.concatenate(seg_kb),
        np.concatenate(seg_pa),
        np.concatenate(seg_pb),
    )


def active_region(part: Partition, key: str, unit: int) -> list[np.ndarray]:
    """Convex polygons covering exactly where unit ``unit`` of layer ``key`` is ``> 0``.

    Each region is clipped by its own affine map; regions where the unit is
    zero up to the tolerance band contribute nothing.
    """
    m = _check_key("active_region", part, key)
    u = _check_unit("active_region", m, key, unit)
    f = _entry_values(part, m[:, [u]])[:, 0]
    thr = part.tol * float(_magnitude(part, m[:, [u]]).max())
    xy, off, _ = clip_positive(part.vertices[part.ring], part.offsets, f, thr, keep_flat=False)
    return _split_flat(xy, off)


def _argmax_flat(part: Partition) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Argmax pieces stored flat: ``(xy, offsets, region, class)``.

    Ties go to the lowest class index (as ``np.argmax``). Regions whose
    vertices all have the same winner by more than the band are kept whole;
    the others are clipped class by class against every rival.
    """
    out = part.maps["output"]
    num_classes = out.shape[1]
    xy_all = part.vertices[part.ring]
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
    return list(zip(_split_flat(xy, off), cls.tolist(), strict=True))


def _twins(part: Partition) -> np.ndarray:
    """For each ring entry (edge ``a -> b``), the region across it (``-1`` on the domain edge)."""
    nv = np.int64(len(part.vertices))
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
    size = float(np.ptp(part.domain, axis=0).max())
    eps = 1e-9 * size
    rl = np.diff(part.offsets)[r]
    pair_e = np.repeat(np.arange(len(p)), rl)
    pair_j = expand_ranges(part.offsets[r], rl)
    rnxt = next_index(part.offsets)
    a = part.vertices[part.ring[pair_j]]
    e = part.vertices[part.ring[rnxt[pair_j]]] - a
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
    return np.stack([p[sel], q[sel]], axis=1)


def locate(part: Partition, x: Any) -> np.ndarray:
    """Index of the region containing each point ``x (N, 2)``; ``-1`` outside the domain.

    A point on a shared edge goes to the region it is deepest inside (any
    of them is correct: the maps agree there).
    """
    pts = np.asarray(x, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise fail("locate", "x", getattr(pts, "shape", x), "an array of shape (N, 2)")
    xy = part.vertices[part.ring]
    off = part.offsets
    num = part.num_regions
    lo = np.minimum.reduceat(xy, off[:-1], axis=0)
    hi = np.maximum.reduceat(xy, off[:-1], axis=0)
    dlo, dhi = part.domain.min(axis=0), part.domain.max(axis=0)
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


def evaluate(part: Partition, x: Any, key: str = "output") -> np.ndarray:
    """Values ``(N, width)`` of layer ``key`` at points ``x`` via the region maps.

    Points outside the domain get NaN.
    """
    m = _check_key("evaluate", part, key)
    pts = np.asarray(x, dtype=np.float64)
    r = locate(part, pts)
    mm = m[np.maximum(r, 0)]
    vals = mm[:, :, 0] * pts[:, :1] + mm[:, :, 1] * pts[:, 1:] + mm[:, :, 2]
    vals[r < 0] = np.nan
    return vals
