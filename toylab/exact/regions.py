r"""Exact linear regions of piecewise-linear networks on 2-D inputs (float64, NumPy).

A :class:`~toylab.network.Network` whose activations are all piecewise linear
(``relu``, ``leaky_relu``, ``abs``, ``hardtanh``, ``identity``: see
:mod:`toylab.activations`) is affine on each cell of a finite partition of the
plane into convex polygons. :func:`partition` computes that partition for a convex
polygonal domain, layer by layer: every pre-activation of layer :math:`k` is affine
on each region found so far (its map follows from layer :math:`k - 1`'s maps), so
each neuron cuts the regions it crosses along its breakpoint lines (:math:`z = 0`;
:math:`z = \pm 1` for ``hardtanh``), and the post-activation is affine on each
piece. An output with an activation (the toy models of superposition) is cut like
a hidden layer. Every neuron's value is kept at every vertex; a cut places its new
vertex by interpolating the two endpoint values of the edge it crosses, which is
exact up to rounding and never leaves a gap between neighbours (shared edges get
the same new vertex).

**Local coordinates.** The cuts are made in coordinates centred on the domain
(the first layer absorbs the shift exactly, up to one rounding of its bias), so the
tolerance band below scales with the domain's size, not with its distance from the
origin; vertices and maps are returned in the original coordinates.

**Tolerance.** With ``tol`` (default ``1e-9``), a vertex counts as *on* a
neuron's breakpoint line when :math:`|z - \beta| \le \mathrm{tol}\cdot s`, where
:math:`s = \max(\max_v (|a(v)|\,|W|)_j + |b_j|, |\beta|)` is the largest magnitude
of the terms summed into that neuron over all vertices (the scale of its rounding
error). A region is cut only if it has vertices beyond that band on both sides, so
lines through existing vertices, duplicate neurons, zero weight rows and dead
neurons never create zero-area slivers. The price: a region may keep a vertex that
lies up to :math:`\mathrm{tol}\cdot s` on the wrong side of a line, so its maps are
wrong on a thin sliver next to that vertex. :func:`band_violations` measures every
such violation from the final vertices, which lets :func:`toylab.exact.analyze`
bound the mass of those slivers and report it (and say ``exact`` only when it is
nil). The same band is used by the queries (:mod:`toylab.exact.queries`).

>>> import numpy as np
>>> from toylab.network import Network
>>> net = Network.from_weights([np.eye(2), np.ones((2, 1))], activation="relu")
>>> part = partition(net, box((-1, -1), (1, 1)))
>>> part.num_regions, float(part.areas.sum())
(4, 4.0)
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from toylab._errors import NotApplicable, fail
from toylab.activations import get_activation
from toylab.distributions.base import Box
from toylab.exact._mesh import LayerMaps, cut
from toylab.exact._polygon import areas as _areas
from toylab.exact._polygon import owner
from toylab.network import Network, as_network

__all__ = [
    "Partition",
    "band_violations",
    "box",
    "partition",
    "plane_through",
    "slice_partition",
]


def box(low: Sequence[float] = (-1.0, -1.0), high: Sequence[float] = (1.0, 1.0)) -> np.ndarray:
    """The box ``[low[0], high[0]] x [low[1], high[1]]`` as a CCW polygon ``(4, 2)``.

    >>> box((0, 0), (2, 1)).tolist()
    [[0.0, 0.0], [2.0, 0.0], [2.0, 1.0], [0.0, 1.0]]
    """
    return Box(tuple(map(float, low)), tuple(map(float, high))).polygon()


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
            where, "polygon", poly.tolist(),
            "the counter-clockwise vertices of a convex polygon with positive area",
            "Reverse the vertex order if it is clockwise.",
        )  # fmt: skip
    return poly


def _check_tol(where: str, tol: float) -> float:
    tol = float(tol)
    if not (0.0 <= tol < 1e-3):
        raise fail(where, "tol", tol, "in [0, 1e-3)", "The default 1e-9 suits float64 networks.")
    return tol


def _piecewise_linear(where: str, model: Any, dim: int | None) -> Network:
    net = as_network(model, where).untied().numpy(np.float64)
    smooth = sorted({a for a in net.activations if not get_activation(a).piecewise_linear})
    if smooth:
        raise NotApplicable(
            f"{where}: the network uses {smooth}, which are not piecewise linear, so it has no "
            "exact partition into linear regions. Use toylab.exact.linear_bounds or "
            "toylab.exact.maximize for certified bounds instead."
        )
    for k, (w, b) in enumerate(net.dense_layers()):
        if not (np.all(np.isfinite(w)) and np.all(np.isfinite(b))):
            raise fail(where, f"layer {k}", "non-finite weights", "finite")
    if dim is not None and net.input_dim != dim:
        raise fail(
            where, "model", repr(net), f"a network with {dim} inputs",
            "Use slice_partition for a 2-D slice of a higher-dimensional input.",
        )  # fmt: skip
    return net


@dataclasses.dataclass(frozen=True, eq=False)
class Partition:
    """The exact partition of a convex domain into regions where a network is affine.

    Attributes:
      polygons: the ``R`` regions, each a ``(V_r, 2)`` array of CCW vertices.
      maps: layer key -> ``(R, width, 3)``; ``maps[key][r, i] = (g_x, g_y, c)``
        with unit ``i`` equal to ``g_x x + g_y y + c`` on region ``r``.
      local_vertices, local_maps, local_polygons: the same relative to ``origin``
        (the coordinates the cuts were made in; exact integrals use them, so data far
        from the origin loses no precision).
      patterns: post-activation key (``"hidden_k"``, ``"output"`` when the output
        has an activation) -> ``(R, width)`` int8 index of the linear piece of each
        neuron (:meth:`toylab.activations.Activation.piece`: relu / leaky_relu 0
        inactive, 1 active; abs 0 negative, 1 positive; hardtanh 0 low, 1 linear, 2
        high; identity 0).
      region_counts: post key -> number of regions after that layer's cuts.
      areas: ``(R,)`` region areas; they sum to the domain's area.
      vertices, ring, offsets: the same regions stored flat: region ``r`` is
        ``vertices[ring[offsets[r]:offsets[r + 1]]]``; neighbouring regions share
        vertex ids.
      domain: the domain polygon; network: the (float64) network partitioned;
        origin: the centre of the local coordinates the cuts were made in; tol: the
        relative tolerance (see the module docstring).

    ``maps`` and ``local_maps`` are read-only mappings whose arrays are composed from
    the layers and the patterns when a key is first read, and then kept (every layer's
    maps on every region is most of a large partition's memory).
    """

    local_vertices: np.ndarray
    ring: np.ndarray
    offsets: np.ndarray
    local_maps: Mapping[str, np.ndarray]
    patterns: dict[str, np.ndarray]
    region_counts: dict[str, int]
    areas: np.ndarray
    domain: np.ndarray
    network: Network
    origin: np.ndarray
    tol: float
    tier: str = "exact"

    @property
    def num_regions(self) -> int:
        """Number of regions ``R``."""
        return len(self.offsets) - 1

    @property
    def activations(self) -> tuple[str, ...]:
        return self.network.activations

    def layer_keys(self) -> list[str]:
        """All layer keys, in network order."""
        return list(self.local_maps)

    @functools.cached_property
    def vertices(self) -> np.ndarray:
        """Every vertex ``(V, 2)`` in the original coordinates."""
        return _frozen(self.local_vertices + self.origin)

    @functools.cached_property
    def maps(self) -> Mapping[str, np.ndarray]:
        """Layer key -> ``(R, width, 3)`` affine maps in the original coordinates."""
        return _Absolute(self.local_maps, self.origin)

    @functools.cached_property
    def polygons(self) -> list[np.ndarray]:
        """The regions as ``(V_r, 2)`` arrays in the original coordinates."""
        return _split_flat(self.vertices[self.ring], self.offsets)

    @functools.cached_property
    def local_polygons(self) -> list[np.ndarray]:
        """The regions relative to :attr:`origin` (what exact integrals use)."""
        return _split_flat(self.local_vertices[self.ring], self.offsets)

    @property
    def local_domain(self) -> np.ndarray:
        return self.domain - self.origin


class _Absolute(Mapping[str, np.ndarray]):
    """Local maps moved to the original coordinates (``c = c_local - g . origin``), per key
    on first access."""

    def __init__(self, local: Mapping[str, np.ndarray], origin: np.ndarray) -> None:
        self._local = local
        self._origin = origin
        self._cache: dict[str, np.ndarray] = {}

    def __iter__(self) -> Iterator[str]:
        return iter(self._local)

    def __len__(self) -> int:
        return len(self._local)

    def __contains__(self, key: object) -> bool:
        return key in self._local

    def __getitem__(self, key: str) -> np.ndarray:
        if key not in self._cache:
            m = self._local[key].copy()
            o = self._origin
            m[:, :, 2] -= m[:, :, 0] * o[0] + m[:, :, 1] * o[1]
            self._cache[key] = _frozen(m)
        return self._cache[key]


def _frozen(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


def _split_flat(xy: np.ndarray, offsets: np.ndarray) -> list[np.ndarray]:
    return [xy[a:b] for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist(), strict=True)]


def _partition(net: Network, poly: np.ndarray, tol: float) -> Partition:
    origin = poly.mean(axis=0)
    local = net.compose_input(np.eye(2), origin)
    pairs = local.dense_layers()
    raw = cut(pairs, net.activations, poly - origin, tol, names=net.layer_names)
    area = _areas(raw.vertices[raw.ring], raw.offsets)
    for arr in (*raw.patterns.values(), raw.vertices, raw.ring, raw.offsets, area):
        arr.flags.writeable = False  # shared between keys and polygons: results are immutable
    return Partition(
        local_vertices=raw.vertices,
        ring=raw.ring,
        offsets=raw.offsets,
        local_maps=LayerMaps(pairs, net.activations, raw, net.layer_names),
        patterns=dict(raw.patterns),
        region_counts=dict(raw.region_counts),
        areas=area,
        domain=poly,
        network=net,
        origin=origin,
        tol=tol,
    )


def partition(model: Any, polygon: Any, *, tol: float = 1e-9) -> Partition:
    """The exact partition of a convex polygon into regions where the network is affine.

    ``model`` is a :class:`~toylab.network.Network` (or a toylab model) with 2 inputs
    and piecewise-linear activations; ``polygon`` the domain's counter-clockwise
    vertices ``(V, 2)`` (see :func:`box`). ``tol`` is the relative tolerance of the
    module docstring. Cost: about (number of neurons) x (regions cut per neuron).
    """
    net = _piecewise_linear("partition", model, 2)
    poly = _check_polygon("partition", polygon)
    return _partition(net, poly, _check_tol("partition", tol))


def plane_through(a: Any, b: Any, c: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(origin, d1, d2)`` of the plane through three inputs.

    The plane is ``x = origin + s d1 + t d2`` with ``origin = a``, ``d1 = b - a``,
    ``d2 = c - a``, so that ``a``, ``b``, ``c`` sit at slice coordinates ``(0, 0)``,
    ``(1, 0)`` and ``(0, 1)``.
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
    model: Any, origin: Any, d1: Any, d2: Any, polygon: Any, *, tol: float = 1e-9
) -> Partition:
    """The exact partition of a network restricted to the plane ``origin + s d1 + t d2``.

    For inputs of any dimension ``n``: ``origin``, ``d1`` and ``d2`` are ``(n,)`` and
    ``polygon`` is given in slice coordinates ``(s, t)``. The plane is composed into
    the first layer (:meth:`toylab.network.Network.on_plane`), so the result
    (polygons, maps, gradients) is in slice coordinates: ``maps[key][r, i, :2]`` is
    the derivative along ``(d1, d2)``. Use :func:`plane_through` for the plane through
    three inputs.
    """
    net = _piecewise_linear("slice_partition", model, None)
    poly = _check_polygon("slice_partition", polygon)
    return _partition(net.on_plane(origin, d1, d2), poly, _check_tol("slice_partition", tol))


def band_violations(part: Partition) -> dict[str, np.ndarray]:
    """How far each region's vertices lie on the wrong side of each neuron's breakpoints.

    For every post key with a pattern, ``(R, width)``: the largest amount by which the
    neuron's pre-activation at a vertex of the region leaves the interval of the linear
    piece the region was assigned (``0`` where every vertex is inside it). A positive
    value ``v`` means the region's maps are wrong on a sliver within distance
    ``v / |g|`` of the breakpoint line (``g`` the pre-activation's gradient); the
    vertex values are computed from the maps, so rounding gives values of order
    ``eps * (|g| |x| + |c|)``.
    """
    pid = owner(part.offsets)
    xy = part.local_vertices[part.ring]
    out = {}
    for post, pat in part.patterns.items():
        act = get_activation(part.network.activations[_layer_index(post, part)])
        if not act.breakpoints:
            out[post] = np.zeros(pat.shape)
            continue
        m = part.local_maps[f"{post}.pre"]
        mm = m[pid]
        z = mm[:, :, 0] * xy[:, :1] + mm[:, :, 1] * xy[:, 1:] + mm[:, :, 2]
        edges = np.array([-np.inf, *act.breakpoints, np.inf])
        p = pat[pid].astype(np.int64)
        lo, hi = edges[p], edges[p + 1]
        viol = np.maximum(np.maximum(z - hi, lo - z), 0.0)
        out[post] = np.maximum.reduceat(viol, part.offsets[:-1], axis=0)
    return out


def _layer_index(post: str, part: Partition) -> int:
    return part.network.layer_index(post)
