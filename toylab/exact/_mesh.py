"""The partition cutter (private): regions stored in a growing mesh, cut neuron by neuron.

:func:`cut` is the engine behind :func:`toylab.exact.partition`; see that module for
the geometry and the tolerance band. Vertex rows hold ``(x, y, z_0, ..., z_{w-1})``:
the position and the current layer's pre-activations; a cut places its new vertex by
interpolating the two endpoint rows of the edge it crosses, so neighbours share it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from typing import NamedTuple

import numpy as np
from scipy.sparse import csr_array

from toylab.activations import get_activation
from toylab.exact._polygon import expand_ranges

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


def _ring_sums(z: np.ndarray, ring: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Sum ``(R, k)`` of vertex values ``z (V, k)`` over each ring (a sparse product)."""
    num = len(offsets) - 1
    ones = np.ones(len(ring))
    return csr_array((ones, ring, offsets), shape=(num, len(z))) @ z


def _names(acts: Sequence[str]) -> list[tuple[str, str | None]]:
    """``(post key, pre key)`` per layer of a dense network (an identity output has no
    pre key); a network with other kinds passes its own
    :attr:`~toylab.network.Network.layer_names`."""
    out: list[tuple[str, str | None]] = [
        (f"hidden_{k}", f"hidden_{k}.pre") for k in range(len(acts) - 1)
    ]
    out.append(("output", "output.pre" if acts[-1] != "identity" else None))
    return out


_EPS = float(np.finfo(np.float64).eps)


class _Arranged(NamedTuple):
    """What :func:`_arrange` returns: new vertex rows (appended in order), the new regions
    stored flat, the region each came from and the side of every line on each."""

    new_rows: list[np.ndarray]
    ring: np.ndarray
    offsets: np.ndarray
    origin: np.ndarray
    side: np.ndarray


def _arrange(
    rows: np.ndarray,
    nv: int,
    ring: np.ndarray,
    offsets: np.ndarray,
    pr: np.ndarray,
    pl: np.ndarray,
    lines: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    side: np.ndarray,
) -> _Arranged | None:
    """Cut every region by all the lines of one layer at once, or ``None``.

    Region ``pr[p]`` is crossed by line ``pl[p]`` (the pairs sorted by region, then
    line); line ``l`` is ``rows[:, 2 + col[l]] == beta[l]`` with band ``thr[l]``, where
    ``lines = (col, beta, thr, margin)``. Inside a region every line is affine, so the
    pieces are the faces of an arrangement of chords: each chord joins the points where
    its line crosses two edges of the region (each shared with the neighbour across the
    edge), and two chords meet where the second line's sign differs at the first
    chord's ends. Each vertex of a region gets the sign of every line crossing it: the
    faces are the sign vectors, and a vertex on ``k`` of the lines (an edge point: 1, a
    chord crossing: 2) belongs to the ``2^k`` faces of the choices of their signs. Each
    face's vertices are then ordered by angle around their mean.

    New vertices are interpolated from the rows of the two ends of the edge or chord
    they lie on, as the line-by-line cut does (:meth:`_Mesh.cut`). The two give the same
    pieces up to rounding when every new vertex lies beyond ``margin`` (more than the
    band) from every other line of its region and no old vertex lies in the band of a
    line crossing its region. Where that fails (lines through a common point or an
    existing vertex, duplicate lines), or where a region's boundary is not crossed
    exactly twice by each of its lines or it does not get ``1 + lines + crossings``
    faces (rounding), the answer is ``None`` and the caller cuts line by line.

    ``side[r, l]`` is the side of line ``l`` that region ``r`` lies on (see
    :func:`_sides`); the new regions inherit it, and a face's sign vector gives it for
    the lines crossing its region (a face lies strictly on one side of each).
    """
    col, beta, thr, margin = lines
    num = len(offsets) - 1
    lens = offsets[1:] - offsets[:-1]
    npairs = len(pr)
    m = np.bincount(pr, minlength=num)  # lines crossing each region
    pstart = m.cumsum() - m  # first pair of each region
    rank = np.arange(npairs) - pstart[pr]  # of the line among its region's
    pcol, pbeta, pthr, pmar = 2 + col[pl], beta[pl], thr[pl], margin[pl]
    # every pair x the ring entries of its region: signs and crossed edges
    plen = lens[pr]
    pend = plen.cumsum()
    ent = expand_ranges(offsets[pr], plen)
    epair = np.repeat(np.arange(npairs), plen)
    z, eb, et = rows[ring[ent], pcol[epair]], pbeta[epair], pthr[epair]
    up = z > eb + et
    if not np.all(up | (z < eb - et)):
        return None  # an old vertex in the band of a line crossing its region
    enext = np.arange(1, len(ent) + 1)
    enext[pend - 1] = pend - plen
    ci = (up != up[enext]).nonzero()[0]
    if len(ci) != 2 * npairs:  # each at least twice, so then exactly twice
        return None
    # one new vertex per crossed edge and line, shared by the regions on either side
    a, b = ring[ent[ci]], ring[ent[enext[ci]]]
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    nl = len(col)
    key = (lo * nv + hi) * nl + pl[epair[ci]]
    order = key.argsort()
    ks = key[order]
    first = np.ones(len(ks), dtype=bool)
    np.not_equal(ks[1:], ks[:-1], out=first[1:])
    uid = first.cumsum() - 1
    flat_ends = np.empty(len(ks), dtype=np.int64)
    flat_ends[order] = nv + uid
    ends = flat_ends.reshape(npairs, 2)  # the two ends of every chord, in ring order
    eo = order[first]
    el = pl[epair[ci[eo]]]
    new_e = _interpolate(rows, lo[eo], hi[eo], 2 + col[el], beta[el])
    ne = len(eo)
    # every two lines of a region: each line at the other's chord ends
    cnt = m[pr] - 1 - rank
    pp = np.repeat(np.arange(npairs), cnt)
    qq = expand_ranges(np.arange(1, npairs + 1), cnt)
    epp, eqq = ends[pp] - nv, ends[qq] - nv  # rows of new_e
    fq = new_e[epp, pcol[qq][:, None]] - pbeta[qq][:, None]  # line q at p's ends
    fp = new_e[eqq, pcol[pp][:, None]] - pbeta[pp][:, None]  # line p at q's ends
    if np.any(np.abs(fq) <= pmar[qq][:, None]) or np.any(np.abs(fp) <= pmar[pp][:, None]):
        return None
    sq, sp = fq > 0, fp > 0
    meet = sq[:, 0] != sq[:, 1]
    if np.any(meet != (sp[:, 0] != sp[:, 1])):
        return None
    # the crossing of two chords, interpolated along the first (as the cut line by line)
    xi = meet.nonzero()[0]
    cp, cq = pp[xi], qq[xi]
    nc = len(xi)
    new_c = _interpolate(new_e, ends[cp, 0] - nv, ends[cp, 1] - nv, pcol[cq], pbeta[cq])
    # each crossing against every line of its region
    creg = pr[cp]
    kc = m[creg]
    tc = np.repeat(np.arange(nc), kc)
    tl = expand_ranges(pstart[creg], kc)
    ft = new_c[tc, pcol[tl]] - pbeta[tl]
    own = (tl == cp[tc]) | (tl == cq[tc])
    if np.any(~own & (np.abs(ft) <= pmar[tl])):
        return None
    # incidences (a vertex of a region): [old vertices of crossed regions | chord ends
    # (2 per pair) | chord crossings]; the sign vector of each as bits by rank
    hit = (m > 0).nonzero()[0]
    hlen = lens[hit]
    na = int(hlen.sum())
    astart = np.zeros(num, dtype=np.int64)
    astart[hit] = hlen.cumsum() - hlen
    ereg = pr[epair]
    nb = 2 * npairs
    ninc = na + nb + nc
    pos_t = (ft > 0) & ~own
    s_inc = np.concatenate(
        [
            (astart[ereg] + ent - offsets[ereg])[up],
            na + 2 * pp[sq[:, 0]],
            na + 2 * pp[sq[:, 1]] + 1,
            na + 2 * qq[sp[:, 0]],
            na + 2 * qq[sp[:, 1]] + 1,
            na + nb + tc[pos_t],
        ]
    )
    s_rank = np.concatenate(
        [rank[epair[up]], rank[qq[sq[:, 0]]], rank[qq[sq[:, 1]]], rank[pp[sp[:, 0]]],
         rank[pp[sp[:, 1]]], rank[tl[pos_t]]]
    )  # fmt: skip
    inc_reg = np.concatenate([np.repeat(hit, hlen), np.repeat(pr, 2), creg])
    # the incidence of each sign choice below: [old | ends | ends | crossings x 4]
    dup = np.concatenate(
        [np.arange(na), np.tile(np.arange(na, na + nb), 2), np.tile(np.arange(na + nb, ninc), 4)]
    )
    cvert = np.concatenate(
        [ring[expand_ranges(offsets[hit], hlen)], ends.ravel(), nv + ne + np.arange(nc)]
    )
    # each vertex's faces: its sign vector with each choice of signs of its own lines
    # (one for an old vertex, two for a chord end, four for a crossing); the faces are
    # the groups of equal (region, signs)
    mbits = int(m.max())
    own_b, own_p, own_q = np.repeat(rank, 2), rank[cp], rank[cq]
    fresh = np.ones(na + 2 * nb + 4 * nc, dtype=bool)
    if mbits + num.bit_length() <= 62:  # region and sign bits in one int64
        key = np.zeros(ninc, dtype=np.int64)
        np.add.at(key, s_inc, np.left_shift(1, s_rank))
        key |= inc_reg << mbits
        kb, kc = key[na : na + nb], key[na + nb :]
        ob, op, oq = np.left_shift(1, own_b), np.left_shift(1, own_p), np.left_shift(1, own_q)
        k1 = np.concatenate([key[:na], kb, kb | ob, kc, kc | op, kc | oq, kc | op | oq])
        order = k1.argsort()
        k1 = k1[order]
        np.not_equal(k1[1:], k1[:-1], out=fresh[1:])
        sreg = k1 >> mbits
    else:  # several 64-bit words of signs per vertex
        nw = (mbits + 63) >> 6
        flat_keys = np.zeros(ninc * nw, dtype=np.uint64)
        np.add.at(flat_keys, s_inc * nw + (s_rank >> 6), _bits(s_rank))
        keys = flat_keys.reshape(ninc, nw)
        kb, kc_ = keys[na : na + nb], keys[na + nb :]
        bb, bp, bq = _bit_rows(own_b, nw), _bit_rows(own_p, nw), _bit_rows(own_q, nw)
        ckeys = np.concatenate([keys[:na], kb, kb + bb, kc_, kc_ + bp, kc_ + bq, kc_ + bp + bq])
        creg_all = inc_reg[dup]
        order = np.lexsort((*(ckeys[:, w] for w in range(nw - 1, -1, -1)), creg_all))
        sreg, skeys = creg_all[order], ckeys[order]
        np.not_equal(sreg[1:], sreg[:-1], out=fresh[1:])
        for w in range(nw):
            fresh[1:] |= skeys[1:, w] != skeys[:-1, w]
    start = fresh.nonzero()[0]
    # the side of each crossing line on each face: the face's sign bits
    face_reg = sreg[start]
    fm = m[face_reg]
    fr = np.repeat(np.arange(len(start)), fm)
    rk = np.arange(len(fr)) - np.repeat(fm.cumsum() - fm, fm)
    if mbits + num.bit_length() <= 62:
        fbit = (k1[start][fr] >> rk) & 1
    else:
        fbit = (skeys[start[fr], rk >> 6] >> (rk & 63).astype(np.uint64)) & np.uint64(1)
    side_f = side[face_reg]
    side_f[fr, pl[pstart[face_reg][fr] + rk]] = fbit
    flen = np.empty(len(start), dtype=np.int64)
    flen[:-1] = start[1:] - start[:-1]
    flen[-1] = len(fresh) - start[-1]
    want = (1 + m + np.bincount(creg, minlength=num))[hit]  # faces of each crossed region
    if flen.min() < 3 or np.any(np.bincount(face_reg, minlength=num)[hit] != want):
        return None
    fv = cvert[dup[order]]
    # order each face's vertices by angle around their mean (a pseudo-angle, increasing
    # with the angle: complex numbers sort by real part, then imaginary part)
    x = np.concatenate([rows[:nv, 0], new_e[:, 0], new_c[:, 0]])[fv]
    y = np.concatenate([rows[:nv, 1], new_e[:, 1], new_c[:, 1]])[fv]
    x -= np.repeat(np.add.reduceat(x, start) / flen, flen)
    y -= np.repeat(np.add.reduceat(y, start) / flen, flen)
    turn = y / (np.abs(x) + np.abs(y))  # in [-1, 1], increasing with the angle in a half
    turn = np.where(x < 0, 2.0 - turn, turn + 4.0 * (y < 0))  # in [0, 4): a whole turn
    fv = fv[np.argsort(np.repeat(np.arange(len(start), dtype=np.float64), flen) + 1j * turn)]
    # the new regions: untouched ones and faces, in the order of the regions they came from
    keep = (m == 0).nonzero()[0]
    origin = np.concatenate([keep, face_reg])
    order = np.argsort(origin, kind="stable")
    klen = lens[keep]
    new_len = np.concatenate([klen, flen])
    src = np.concatenate([ring[expand_ranges(offsets[keep], klen)], fv])
    src_start = np.concatenate([[0], new_len.cumsum()[:-1]])
    new_len = new_len[order]
    new_ring = src[expand_ranges(src_start[order], new_len)]
    new_off = np.zeros(len(order) + 1, dtype=np.int64)
    new_len.cumsum(out=new_off[1:])
    new_side = np.concatenate([side[keep], side_f])[order]
    return _Arranged([new_e, new_c], new_ring, new_off, origin[order], new_side)


def _bits(rank: np.ndarray) -> np.ndarray:
    """``2 ** (rank % 64)`` as uint64 (the bit of a line within its word)."""
    return np.left_shift(np.uint64(1), (rank & 63).astype(np.uint64))


def _bit_rows(rank: np.ndarray, nw: int) -> np.ndarray:
    """Rows ``(n, nw)`` of uint64 words with the one bit of each rank set."""
    out = np.zeros((len(rank), nw), dtype=np.uint64)
    out[np.arange(len(rank)), rank >> 6] = _bits(rank)
    return out


def _interpolate(
    rows: np.ndarray, lo: np.ndarray, hi: np.ndarray, col: np.ndarray, beta: np.ndarray
) -> np.ndarray:
    """Rows where column ``col`` reaches ``beta`` between rows ``lo`` and ``hi``."""
    row_lo, row_hi = rows[lo], rows[hi]
    idx = np.arange(len(lo))
    za = row_lo[idx, col] - beta
    t = za / (za - (row_hi[idx, col] - beta))
    row_hi -= row_lo
    row_hi *= t[:, None]
    row_hi += row_lo
    row_hi[idx, col] = beta
    return row_hi


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
        names: Sequence[tuple[str, str | None]] | None = None,
    ) -> None:
        self._pairs = pairs
        self._acts = acts
        self._mesh = mesh
        self._layer: dict[str, tuple[int, bool]] = {}
        for k, (post, pre) in enumerate(names or _names(acts)):
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


def _sides(
    z: np.ndarray, ring: np.ndarray, offsets: np.ndarray, beta: np.ndarray, thr: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(straddle, side)`` ``(R, lines)`` of the lines ``z[:, j] == beta[i]`` (band ``thr``).

    ``straddle``: the region has vertices beyond the band on both sides (it is cut);
    ``side``: 1 if every vertex is above the band, 0 if every vertex is below it, 2 if
    some are in it (the side is then read at the vertex mean, see :func:`_resolve`).
    Lines are ordered by neuron ``j``, then breakpoint ``i``.
    """
    zv = z[:, :, None]
    # vertices above and below the band, counted per region in one float64 sum:
    # 1 per vertex above, 2 ** 20 per vertex below (exact for rings of < 2 ** 20)
    flags = (zv > beta + thr).astype(np.float64)
    flags += (zv < beta - thr) * float(1 << 20)
    both = _ring_sums(flags.reshape(len(z), -1), ring, offsets).astype(np.int64)
    above, below = both & ((1 << 20) - 1), both >> 20
    beyond = (above + below) == (offsets[1:] - offsets[:-1])[:, None]
    side = np.full(both.shape, 2, dtype=np.int8)
    side[beyond & (below == 0)] = 1
    side[beyond & (above == 0)] = 0
    return (above > 0) & (below > 0), side


def _resolve(
    side: np.ndarray,
    blocks: list[np.ndarray],
    ring: np.ndarray,
    offsets: np.ndarray,
    col: np.ndarray,
    beta: np.ndarray,
) -> np.ndarray:
    """Fill the sides left at 2 (a vertex in the band) from the value at the vertex mean
    (``z > beta``, as :meth:`toylab.activations.Activation.piece`)."""
    g, li = np.nonzero(side == 2)
    if len(g):
        glen = offsets[g + 1] - offsets[g]
        vid = ring[expand_ranges(offsets[g], glen)]
        cols = np.repeat(2 + col[li], glen)
        vals = np.empty(len(vid))
        lo = 0
        for blk in blocks:
            sel = (vid >= lo) & (vid < lo + len(blk))
            vals[sel] = blk[vid[sel] - lo, cols[sel]]
            lo += len(blk)
        at = np.zeros(len(g), dtype=np.int64)
        at[1:] = glen.cumsum()[:-1]
        side[g, li] = np.add.reduceat(vals, at) / glen > beta[li]
    return side


def cut(
    pairs: list[tuple[np.ndarray, np.ndarray]],
    acts: tuple[str, ...],
    poly: np.ndarray,
    tol: float,
    *,
    batch: bool = True,
    names: Sequence[tuple[str, str | None]] | None = None,
) -> MeshResult:
    """Cut the convex polygon ``poly`` into the regions where the network is affine.

    ``pairs`` are float64 ``(W, b)`` for every layer and ``acts`` one activation name per
    layer (piecewise linear), the last for the output. Each layer's lines cut all the
    regions at once (:func:`_arrange`); where that cannot vouch for giving the pieces of
    cutting line by line (lines through a common point or too close to one), or with
    ``batch=False``, the layer is cut line by line (:meth:`_Mesh.cut`). Each piece's
    pattern is the piece of each neuron at its vertex mean (an interior point). Only
    vertex values are used: the maps are composed by :class:`LayerMaps`, when read.
    ``names`` are the layers' ``(post, pre)`` keys (default: ``hidden_k``, ``output``).
    """
    num_layers = len(pairs)
    keys = list(names or _names(acts))
    w0, b0 = pairs[0]
    nv = len(poly)
    rows = np.empty((nv, 2 + w0.shape[1]))
    rows[:, :2] = poly
    rows[:, 2:] = poly @ w0 + b0
    scale = (np.abs(poly) @ np.abs(w0)).max(axis=0) + np.abs(b0)
    ring = np.arange(nv, dtype=np.int64)
    offsets = np.array([0, nv], dtype=np.int64)
    origins: list[np.ndarray] = []
    patterns: list[np.ndarray] = []
    counts: dict[str, int] = {}
    for k in range(num_layers):
        width = pairs[k][0].shape[1]
        act = get_activation(acts[k])
        breaks = np.asarray(act.breakpoints or (), dtype=np.float64)
        blocks = [rows]
        origin = np.arange(len(offsets) - 1)
        if len(breaks):
            # per neuron and breakpoint (a line): its band and the regions it crosses
            size = np.maximum(scale[:, None], np.abs(breaks)[None, :])
            thr = tol * size  # (width, breakpoints)
            strad, side = _sides(rows[:, 2:], ring, offsets, breaks, thr)
            pr, pl = strad.nonzero()
            col = np.repeat(np.arange(width), len(breaks))
            beta = np.tile(breaks, width)
            bands = thr.ravel()
            res = None
            if batch and len(pr):
                lines = (col, beta, bands, (2 * thr + 64 * _EPS * size).ravel())
                res = _arrange(rows, nv, ring, offsets, pr, pl, lines, side)
            if res is not None:
                blocks += res.new_rows
                ring, offsets, origin = res.ring, res.offsets, res.origin
                side = _resolve(res.side, blocks, ring, offsets, col, beta)
            elif len(pr):
                mesh = _Mesh(rows, nv, *_Mesh.padded(ring, offsets))
                for line in np.any(strad, axis=0).nonzero()[0].tolist():
                    mesh.cut(2 + int(col[line]), beta[line], bands[line], strad[:, line])
                rows, nv = mesh.V, mesh.nv
                blocks = [rows[:nv]]
                ring, offsets = mesh.flat()
                origin = mesh.porig[: mesh.np].copy()
                mean = _ring_sums(rows[:nv, 2:], ring, offsets) / np.diff(offsets)[:, None]
                side = (mean[:, col] > beta).view(np.int8)
            else:
                side = _resolve(side, blocks, ring, offsets, col, beta)
            pat = side.reshape(len(origin), width, len(breaks)).sum(axis=2, dtype=np.int8)
        else:  # identity
            pat = np.zeros((len(origin), width), dtype=np.int8)
        origins.append(origin)
        patterns.append(pat)
        if k < num_layers - 1 or acts[k] != "identity":
            counts[keys[k][0]] = len(origin)
        if k == num_layers - 1:
            break
        if k == num_layers - 2 and acts[k + 1] == "identity":
            # an affine output cuts nothing: its regions are these, its pattern all zeros
            origins.append(np.arange(len(origin)))
            patterns.append(np.zeros((len(origin), pairs[k + 1][0].shape[1]), dtype=np.int8))
            break
        # next layer's pre-activations at every vertex (a forward pass from the vertex values)
        # and the scale of its terms (for its bands)
        wn, bn = pairs[k + 1]
        nv = sum(len(blk) for blk in blocks)
        rows = np.empty((nv, 2 + wn.shape[1]))
        scale = np.zeros(wn.shape[1])
        lo = 0
        for blk in blocks:
            hi = lo + len(blk)
            a_next = act(blk[:, 2:])
            rows[lo:hi, :2] = blk[:, :2]
            np.matmul(a_next, wn, out=rows[lo:hi, 2:])
            rows[lo:hi, 2:] += bn
            np.abs(a_next, out=a_next)
            np.maximum(scale, (a_next @ np.abs(wn)).max(axis=0, initial=0.0), out=scale)
            lo = hi
        scale += np.abs(bn)
        del a_next
    # final region -> region right after layer k's cuts
    index: list[np.ndarray] = [np.arange(len(origins[-1]))]
    for k in range(num_layers - 1, 0, -1):
        index.append(origins[k][index[-1]])
    index.reverse()
    pats: dict[str, np.ndarray] = {}
    for k in range(num_layers):
        post = keys[k][0]
        if acts[k] != "identity" or post != "output":
            pats[post] = np.take(patterns[k], index[k], axis=0)
    vertices = np.concatenate([blk[:, :2] for blk in blocks])
    return MeshResult(
        vertices, ring, offsets, pats, counts, tuple(origins), tuple(patterns), tuple(index)
    )
