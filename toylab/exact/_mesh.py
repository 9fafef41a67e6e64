"""The partition cutter (private): regions stored in a growing mesh, cut neuron by neuron.

:func:`cut` is the engine behind :func:`toylab.exact.partition`; see that module for
the geometry and the tolerance band. Vertex rows hold ``(x, y, z_0, ..., z_{w-1})``:
the position and the current layer's pre-activations; a cut places its new vertex by
interpolating the two endpoint rows of the edge it crosses, so neighbours share it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping

import numpy as np

from toylab.activations import get_activation

__all__ = ["LayerMaps", "MeshResult", "cut"]

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


def _ring_means(z: np.ndarray, ring: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Mean ``(R, width)`` of vertex values ``z (V, width)`` over each ring, in chunks.

    ``z`` is affine on each region, so this is its value at the region's vertex mean
    (an interior point).
    """
    num = len(offsets) - 1
    out = np.empty((num, z.shape[1]))
    lens = np.diff(offsets)
    step = max(1, (1 << 21) // max(1, z.shape[1] * int(lens.max(initial=1))))
    for a in range(0, num, step):
        b = min(num, a + step)
        ent = ring[offsets[a] : offsets[b]]
        np.add.reduceat(z[ent], offsets[a:b] - offsets[a], axis=0, out=out[a:b])
    out /= lens[:, None]
    return out


def _keys(k: int, num_layers: int, act: str) -> tuple[str, str | None]:
    """``(post key, pre key)`` of layer ``k`` (an identity output has no pre key)."""
    if k < num_layers - 1:
        return f"hidden_{k}", f"hidden_{k}.pre"
    return "output", ("output.pre" if act != "identity" else None)


@dataclasses.dataclass(frozen=True)
class MeshResult:
    """The raw partition (in cut coordinates): flat regions and what composes the maps.

    ``origins[k]`` maps the regions right after layer ``k``'s cuts to the regions
    before them, ``layer_patterns[k]`` holds the pieces of layer ``k`` on the former and
    ``final_index[k]`` maps the final regions to them; ``patterns`` are the final
    regions' (post key -> ``(R, width)`` int8).
    """

    vertices: np.ndarray  # (V, 2)
    ring: np.ndarray
    offsets: np.ndarray
    patterns: dict[str, np.ndarray]
    region_counts: dict[str, int]
    origins: tuple[np.ndarray, ...]
    layer_patterns: tuple[np.ndarray, ...]
    final_index: tuple[np.ndarray, ...]


class LayerMaps(Mapping[str, np.ndarray]):
    """Layer key -> ``(R, width, 3)`` local maps of the final regions, composed when read.

    Composing every layer eagerly is most of a large partition's time and memory
    (every layer's maps on the final regions), so each key is composed on first access
    and kept. The composition follows the cuts: layer ``k``'s maps are composed on the
    regions before its cuts (``pre = post_{k-1} W_k + b_k``), copied onto its pieces,
    bent by each piece's pattern (``post = slope * pre + offset``) and finally copied
    onto the final regions. The last composed layer is kept so that reading the keys
    in network order composes each layer once.
    """

    def __init__(
        self,
        pairs: list[tuple[np.ndarray, np.ndarray]],
        acts: tuple[str, ...],
        mesh: MeshResult,
    ) -> None:
        self._pairs = pairs
        self._acts = acts
        self._mesh = mesh
        self._layer: dict[str, tuple[int, bool]] = {}
        for k, act in enumerate(acts):
            post, pre = _keys(k, len(acts), act)
            if pre is not None:
                self._layer[pre] = (k, True)
            self._layer[post] = (k, False)
        self._cache: dict[str, np.ndarray] = {}
        self._front: tuple[int, np.ndarray, np.ndarray] | None = None

    def __iter__(self) -> Iterator[str]:
        return iter(self._layer)

    def __len__(self) -> int:
        return len(self._layer)

    def __contains__(self, key: object) -> bool:
        return key in self._layer

    def __getitem__(self, key: str) -> np.ndarray:
        if key not in self._cache:
            k, is_pre = self._layer[key]
            pre, post = self._own(k)
            m = pre if is_pre else post
            if k < len(self._acts) - 1:  # the last layer's pieces are the final regions
                m = np.take(m, self._mesh.final_index[k], axis=0)
            m.flags.writeable = False
            self._cache[key] = m.transpose(0, 2, 1)
        return self._cache[key]

    def _own(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Layer ``k``'s ``(pre, post)`` maps ``(R_k, 3, width)`` on its own pieces."""
        if self._front is None or self._front[0] > k:
            post = np.zeros((1, 3, 2))
            post[0, 0, 0] = post[0, 1, 1] = 1.0
            self._front = (-1, post, post)
        j, pre, post = self._front
        while j < k:
            j += 1
            w, b = self._pairs[j]
            pre = np.take(_compose(post, w, b), self._mesh.origins[j], axis=0)
            act = get_activation(self._acts[j])
            if act.breakpoints:
                pat = self._mesh.layer_patterns[j]
                slopes, offs = act.piece_arrays()
                post = pre * slopes[pat][:, None, :]
                if np.any(offs):
                    post[:, 2] += offs[pat]
            else:  # identity
                post = pre
            self._front = (j, pre, post)
        return pre, post


def cut(
    pairs: list[tuple[np.ndarray, np.ndarray]], acts: tuple[str, ...], poly: np.ndarray, tol: float
) -> MeshResult:
    """Cut the convex polygon ``poly`` into the regions where the network is affine.

    ``pairs`` are float64 ``(W, b)`` for every layer and ``acts`` one activation name per
    layer (piecewise linear), the last for the output. Only vertex values are used: the
    maps are composed afterwards by :class:`LayerMaps`, when read.
    """
    num_layers = len(pairs)
    w0, b0 = pairs[0]
    a_prev = poly  # activations feeding the current layer, at every vertex
    ring = np.arange(len(poly), dtype=np.int64)
    offsets = np.array([0, len(poly)], dtype=np.int64)
    mesh = _Mesh(
        np.concatenate([poly, poly @ w0 + b0], axis=1), len(poly), *_Mesh.padded(ring, offsets)
    )
    origins: list[np.ndarray] = []
    patterns: list[np.ndarray] = []
    counts: dict[str, int] = {}
    for k in range(num_layers):
        w, b = pairs[k]
        act = get_activation(acts[k])
        breaks = act.breakpoints or ()
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
        if breaks:
            # the piece of each neuron at the region's vertex mean (an interior point)
            pat = act.piece(_ring_means(mesh.V[: mesh.nv, 2:], ring, offsets))
        else:  # identity
            pat = np.zeros((len(origin), w.shape[1]), dtype=np.int8)
        origins.append(origin)
        patterns.append(pat)
        if k < num_layers - 1 or acts[k] != "identity":
            counts[_keys(k, num_layers, acts[k])[0]] = len(origin)
        if k == num_layers - 1:
            break
        # next layer's pre-activations at every vertex (a forward pass from the vertex values)
        a_next = act(mesh.V[: mesh.nv, 2:])
        wn, bn = pairs[k + 1]
        rows = np.empty((2 * mesh.nv + 16, 2 + wn.shape[1]))
        rows[: mesh.nv, :2] = mesh.V[: mesh.nv, :2]
        np.matmul(a_next, wn, out=rows[: mesh.nv, 2:])
        rows[: mesh.nv, 2:] += bn
        mesh = _Mesh(rows, mesh.nv, mesh.P, mesh.plen, mesh.np)
        a_prev = a_next
    # final region -> region right after layer k's cuts
    index: list[np.ndarray] = [np.arange(len(origins[-1]))]
    for k in range(num_layers - 1, 0, -1):
        index.append(origins[k][index[-1]])
    index.reverse()
    pats: dict[str, np.ndarray] = {}
    for k in range(num_layers):
        post = _keys(k, num_layers, acts[k])[0]
        if acts[k] != "identity" or post != "output":
            pats[post] = np.take(patterns[k], index[k], axis=0)
    vertices = np.ascontiguousarray(mesh.V[: mesh.nv, :2])
    return MeshResult(
        vertices, ring, offsets, pats, counts, tuple(origins), tuple(patterns), tuple(index)
    )
