"""Tests for toylab.exact.regions: exact linear regions of piecewise-linear networks.

The reference is a plain NumPy forward pass written here (independent of the
module): the per-region affine maps must reproduce it at interior points of
every region to rounding error (float64, relative 1e-10 of the layer's value
scale), and the geometry must tile the domain.
"""

from __future__ import annotations

import numpy as np
import pytest
from _reference import forward
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from toylab._errors import ToylabError
from toylab.exact import (
    Partition,
    active_region,
    argmax_pieces,
    box,
    decision_boundary,
    extrema,
    level_set,
    locate,
    partition,
    partition_values,
    plane_through,
    slice_partition,
)
from toylab.network import Network

BREAKS = {"relu": [0.0], "leaky_relu": [0.0], "abs": [0.0], "hardtanh": [-1.0, 1.0], "identity": []}
RTOL = 1e-10  # maps vs forward pass: rounding only, relative to the layer's value scale


def he_net(widths, seed, bias=0.1):
    rng = np.random.default_rng(seed)
    return [
        (rng.normal(size=(a, b)) * np.sqrt(2.0 / a), rng.normal(size=b) * bias)
        for a, b in zip(widths[:-1], widths[1:], strict=True)
    ]


def shoelace(p):
    x, y = p[:, 0], p[:, 1]
    return 0.5 * float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))


def interior_points(polys, per, rng):
    """``per`` random strictly interior points of each polygon: (len(polys) * per, 2)."""
    pts = []
    for p in polys:
        w = rng.dirichlet(np.ones(len(p)), size=per)
        pts.append(w @ p)
    return np.concatenate(pts) if pts else np.zeros((0, 2))


def map_values(m, region, pts):
    mm = m[region]
    return mm[:, :, 0] * pts[:, :1] + mm[:, :, 1] * pts[:, 1:] + mm[:, :, 2]


def check_invariants(layers, acts, polygon, part, rng, *, per=3, overlap_points=200):
    """Every invariant of a partition, against the reference forward pass."""
    polygon = np.asarray(polygon, dtype=np.float64)
    dom_area = shoelace(polygon)
    # tiling: areas sum to the domain, each region convex, CCW and non-degenerate
    assert part.areas.shape == (len(part.polygons),)
    np.testing.assert_allclose(part.areas.sum(), dom_area, rtol=1e-10)
    assert np.all(part.areas > 0)
    for p, a in zip(part.polygons, part.areas, strict=True):
        assert p.shape[0] >= 3 and p.shape[1] == 2
        assert shoelace(p) == pytest.approx(a, rel=1e-8, abs=1e-14)
        e = np.roll(p, -1, axis=0) - p
        turn = e[:, 0] * np.roll(e[:, 1], -1) - e[:, 1] * np.roll(e[:, 0], -1)
        assert np.all(turn >= -1e-12 * np.max(np.abs(e)) ** 2), "region not convex / not CCW"
    # maps agree with the forward pass at interior points of every region
    num = len(part.polygons)
    region = np.repeat(np.arange(num), per)
    pts = interior_points(part.polygons, per, rng)
    ref = forward(layers, acts, pts)
    assert list(part.maps) == list(ref)
    for key, val in ref.items():
        got = map_values(part.maps[key], region, pts)
        scale = 1.0 + np.abs(val).max()
        np.testing.assert_allclose(got, val, rtol=0, atol=RTOL * scale, err_msg=key)
    # the activation pattern is constant on each region
    for k, act in enumerate(acts):
        z = ref[f"hidden_{k}.pre"]
        pat = part.patterns[f"hidden_{k}"][region]
        expect = np.zeros_like(pat)
        if act == "hardtanh":
            expect = (z >= -1).astype(np.int8) + (z > 1)
        elif act != "identity":
            expect = (z > 0).astype(np.int8)
        scale = 1.0 + np.abs(z).max()
        near = np.zeros(z.shape, dtype=bool)
        for beta in BREAKS[act]:
            near |= np.abs(z - beta) <= 1e-9 * scale  # constant at the breakpoint: either piece
        assert np.all((pat == expect) | near), f"pattern of hidden_{k} not constant"
    # no overlaps and no gaps: each random point is strictly inside at most one region
    # and inside (closed) at least one
    if overlap_points:
        lo, hi = polygon.min(axis=0), polygon.max(axis=0)
        q = rng.uniform(lo, hi, size=(overlap_points, 2))
        in_dom = inside_counts([polygon], q, eps=-1e-9)[0] > 0
        xy = part.vertices[part.ring]
        assert np.allclose(np.concatenate(part.polygons), xy)
        strict = inside_counts(part.polygons, q, eps=1e-9)
        closed = inside_counts(part.polygons, q, eps=-1e-9)
        assert np.all(strict.sum(axis=0) <= 1), "regions overlap"
        assert np.all(closed.sum(axis=0)[in_dom] >= 1), "gap between regions"
        assert np.array_equal(locate(part, q) >= 0, closed.sum(axis=0) >= 1)


def inside_counts(polys, q, eps):
    """(P, N) bool: point n has signed distance > eps to every edge of polygon p."""
    out = np.zeros((len(polys), len(q)), dtype=bool)
    for i, p in enumerate(polys):
        e = np.roll(p, -1, axis=0) - p
        n = np.hypot(e[:, 0], e[:, 1])
        d = (
            e[None, :, 0] * (q[:, None, 1] - p[None, :, 1])
            - e[None, :, 1] * (q[:, None, 0] - p[None, :, 0])
        ) / n
        out[i] = np.all(d > eps, axis=1)
    return out


# --------------------------------------------------------------------------- random networks


@pytest.mark.parametrize(
    "widths,acts,lim",
    [
        ((2, 8, 3), ["relu"], 1.0),
        ((2, 16, 16, 2), ["relu", "relu"], 3.0),
        ((2, 10, 10, 4), ["leaky_relu", "abs"], 2.0),
        ((2, 12, 6, 3), ["hardtanh", "relu"], 3.0),
        ((2, 6, 6, 6, 2), ["abs", "identity", "hardtanh"], 2.0),
    ],
)
def test_maps_match_forward_pass(widths, acts, lim):
    layers = he_net(widths, seed=sum(widths))
    dom = box((-lim, -lim), (lim, lim))
    part = partition(Network.from_layers(layers, acts), dom)
    assert isinstance(part, Partition)
    check_invariants(layers, acts, dom, part, np.random.default_rng(0))
    counts = list(part.region_counts.values())
    assert counts == sorted(counts) and counts[-1] == len(part.polygons)


def test_first_layer_count_is_the_arrangement_formula():
    """n lines in general position cut a convex domain into 1 + n_in + (crossings inside)."""
    rng = np.random.default_rng(3)
    w = rng.normal(size=(2, 12))
    b = rng.normal(size=12) * 0.5
    dom = box((-1, -1), (1, 1))
    corners = dom @ w + b
    crosses = (corners.min(axis=0) < 0) & (corners.max(axis=0) > 0)
    inside = 0
    for i in range(12):
        for j in range(i + 1, 12):
            if crosses[i] and crosses[j]:
                p = np.linalg.solve(w[:, [i, j]].T, -b[[i, j]])
                inside += bool(np.all(np.abs(p) < 1))
    part = partition(Network.from_layers([(w, b), (np.ones((12, 1)), np.zeros(1))], ["relu"]), dom)
    assert len(part.polygons) == 1 + int(crosses.sum()) + inside


def test_polygon_domain_and_partition_values():
    layers = he_net((2, 10, 10, 3), seed=5)
    hexagon = np.array([[np.cos(t), np.sin(t)] for t in np.linspace(0, 2 * np.pi, 7)[:-1]]) * 2
    part = partition(Network.from_layers(layers, ["relu", "abs"]), hexagon)
    rng = np.random.default_rng(1)
    check_invariants(layers, ["relu", "abs"], hexagon, part, rng)
    q = rng.uniform(-2, 2, size=(500, 2))
    inside = inside_counts([hexagon], q, eps=1e-9)[0]
    got = partition_values(part, q)
    ref = forward(layers, ["relu", "abs"], q)["output"]
    np.testing.assert_allclose(got[inside], ref[inside], atol=1e-10 * (1 + np.abs(ref).max()))
    outside = inside_counts([hexagon], q, eps=-1e-9)[0]
    assert np.all(np.isnan(got[~outside]))
    assert np.all(locate(part, q[~outside]) == -1)


# --------------------------------------------------------------------------- queries


def test_extrema_agree_with_dense_grid():
    layers = he_net((2, 12, 8, 3), seed=7)
    acts = ["relu", "leaky_relu"]
    part = partition(Network.from_layers(layers, acts), box((-2, -2), (2, 2)))
    g = np.linspace(-2, 2, 201)
    grid = np.stack(np.meshgrid(g, g), axis=-1).reshape(-1, 2)
    ref = forward(layers, acts, grid)
    for key in part.maps:
        res = extrema(part, key)
        scale = 1 + np.abs(ref[key]).max()
        assert np.all(ref[key].max(axis=0) <= res.max + 1e-10 * scale)
        assert np.all(ref[key].min(axis=0) >= res.min - 1e-10 * scale)
        # attained: the forward pass at the argmax / argmin gives the extreme value
        at_max = forward(layers, acts, res.argmax)[key]
        at_min = forward(layers, acts, res.argmin)[key]
        cols = np.arange(len(res.max))
        np.testing.assert_allclose(at_max[cols, cols], res.max, atol=1e-10 * scale)
        np.testing.assert_allclose(at_min[cols, cols], res.min, atol=1e-10 * scale)
        # the grid comes close (the grid spacing bounds the gap for a Lipschitz unit)
        lip = np.abs(part.maps[key][:, :, :2]).sum(axis=2).max(axis=0)
        assert np.all(res.max - ref[key].max(axis=0) <= lip * 0.02 + 1e-9)
    one = extrema(part, "hidden_1", 3)
    assert one.max == pytest.approx(extrema(part, "hidden_1").max[3])
    assert one.argmax.shape == (2,)


def test_level_sets_lie_on_the_level():
    layers = he_net((2, 10, 10, 1), seed=11)
    acts = ["relu", "relu"]
    part = partition(Network.from_layers(layers, acts), box((-2, -2), (2, 2)))
    total = 0
    for key, unit, level in [
        ("output", 0, 0.0),
        ("output", 0, float(extrema(part, "output", 0).max) * 0.5),
        ("hidden_1.pre", 2, 0.0),
        ("hidden_1", 4, 0.1),
        ("hidden_0", 1, 0.0),
    ]:
        lines = level_set(part, key, unit, level)
        unit_scale = 1 + np.abs(extrema(part, key).max).max()
        for line in lines:
            assert line.ndim == 2 and line.shape[1] == 2 and len(line) >= 2
            mids = 0.5 * (line[1:] + line[:-1])
            pts = np.concatenate([line, mids])
            vals = forward(layers, acts, pts)[key][:, unit]
            np.testing.assert_allclose(vals, level, atol=1e-9 * unit_scale)
            total += len(line)
    assert total > 0


def test_level_set_has_the_right_length():
    """Output = x + y on a box: the level set at 0 is the diagonal, one polyline."""
    w0 = np.array([[1.0, -1.0, 0.0, 0.0], [0.0, 0.0, 1.0, -1.0]])
    w1 = np.array([[1.0], [-1.0], [1.0], [-1.0]])
    layers = [(w0, np.zeros(4)), (w1, np.zeros(1))]
    part = partition(Network.from_layers(layers, ["relu"]), box((-1, -1), (1, 1)))
    lines = level_set(part, "output", 0, 0.0)
    assert len(lines) == 1
    length = np.sum(np.hypot(*np.diff(lines[0], axis=0).T))
    assert length == pytest.approx(2 * np.sqrt(2), rel=1e-12)
    # a relu's own boundary: post-activation of unit 0 (relu(x)) at 0 is the edge x = 0
    edge = level_set(part, "hidden_0", 0, 0.0)
    assert len(edge) == 1 and np.allclose(edge[0][:, 0], 0.0)
    assert np.ptp(edge[0][:, 1]) == pytest.approx(2.0)


def test_argmax_pieces_and_decision_boundary():
    layers = he_net((2, 12, 12, 4), seed=13, bias=0.5)
    acts = ["relu", "relu"]
    dom = box((-2, -2), (2, 2))
    part = partition(Network.from_layers(layers, acts), dom)
    pieces = argmax_pieces(part)
    assert sum(shoelace(p) for p, _ in pieces) == pytest.approx(16.0, rel=1e-10)
    assert len({c for _, c in pieces}) >= 2
    rng = np.random.default_rng(2)
    pts = interior_points([p for p, _ in pieces], 3, rng)
    cls = np.repeat([c for _, c in pieces], 3)
    logits = forward(layers, acts, pts)["output"]
    top2 = np.sort(logits, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 1e-9
    assert np.array_equal(logits.argmax(axis=1)[clear], cls[clear])
    # boundary segments are ties between the two top logits
    segs = decision_boundary(part)
    assert segs.shape[1:] == (2, 2) and len(segs) > 0
    mids = segs.mean(axis=1)
    lg = np.sort(forward(layers, acts, mids)["output"], axis=1)
    np.testing.assert_allclose(lg[:, -1], lg[:, -2], atol=1e-9 * (1 + np.abs(lg).max()))
    # every change of the argmax along a scan line is crossed by a boundary segment
    for y0 in (-1.3, 0.1, 0.77):
        xs = np.linspace(-2, 2, 4001)
        lab = forward(layers, acts, np.stack([xs, np.full_like(xs, y0)], 1))["output"].argmax(1)
        change = np.nonzero(lab[1:] != lab[:-1])[0]
        (ya, yb), (xa, xb) = segs[:, :, 1].T, segs[:, :, 0].T
        hit = (np.minimum(ya, yb) <= y0) & (np.maximum(ya, yb) >= y0) & (ya != yb)
        xcross = xa[hit] + (y0 - ya[hit]) / (yb[hit] - ya[hit]) * (xb[hit] - xa[hit])
        for i in change:
            assert np.any((xcross >= xs[i] - 1e-9) & (xcross <= xs[i + 1] + 1e-9))
        assert len(change) == len(np.unique(np.round(xcross, 9)))


def test_argmax_ties_go_to_the_lowest_class():
    """Two identical logits everywhere: all area goes to class 0 (as np.argmax)."""
    w1 = np.array([[1.0, 1.0, -1.0]])
    layers = [(np.array([[1.0], [0.5]]), np.zeros(1)), (w1, np.zeros(3))]
    part = partition(Network.from_layers(layers, ["relu"]), box())
    areas = {c: 0.0 for c in range(3)}
    for p, c in argmax_pieces(part):
        areas[c] += shoelace(p)
    # relu(x + y/2) >= 0 = -relu(...) only where relu > 0; elsewhere all three tie at 0
    assert areas[1] == 0.0
    assert areas[0] == pytest.approx(4.0)
    assert areas[2] == 0.0
    segs = decision_boundary(part)
    assert len(segs) == 0  # classes 0 and 1 tie everywhere: the argmax never changes


def test_active_region_is_where_the_unit_is_positive():
    layers = he_net((2, 10, 10, 2), seed=17)
    acts = ["relu", "relu"]
    part = partition(Network.from_layers(layers, acts), box((-2, -2), (2, 2)))
    rng = np.random.default_rng(4)
    q = rng.uniform(-2, 2, size=(2000, 2))
    for unit in range(10):
        polys = active_region(part, "hidden_1", unit)
        inside = inside_counts(polys, q, eps=-1e-9).any(axis=0) if polys else np.zeros(len(q), bool)
        v = forward(layers, acts, q)["hidden_1"][:, unit]
        assert np.all(inside[v > 1e-9]) and not np.any(inside[v <= -1e-9])
        if polys:
            pts = interior_points(polys, 2, rng)
            assert np.all(forward(layers, acts, pts)["hidden_1"][:, unit] > 0)
        # its area equals the area of regions whose pattern says active, for a relu
        act_area = part.areas[part.patterns["hidden_1"][:, unit] == 1].sum()
        assert sum(shoelace(p) for p in polys) == pytest.approx(act_area, rel=1e-9, abs=1e-12)


# --------------------------------------------------------------------------- degenerate cases


def _first_layer(cols, biases):
    w = np.array(cols, dtype=np.float64).T
    return [(w, np.array(biases, dtype=np.float64)), (np.ones((w.shape[1], 1)), np.zeros(1))]


def _check(layers, acts, dom=None):
    dom = box() if dom is None else dom
    part = partition(Network.from_layers(layers, acts), dom)
    check_invariants(layers, acts, dom, part, np.random.default_rng(0), overlap_points=300)
    return part


def test_lines_through_existing_vertices_make_no_slivers():
    # x = 0, y = 0, x + y = 0, x - y = 0: all through the origin; the diagonals through corners
    part = _check(_first_layer([[1, 0], [0, 1], [1, 1], [1, -1]], [0, 0, 0, 0]), ["relu"])
    assert len(part.polygons) == 8
    assert np.allclose(part.areas, 0.5)
    # a line through two box corners only
    part = _check(_first_layer([[1, -1]], [0]), ["relu"])
    assert len(part.polygons) == 2


def test_parallel_and_rescaled_lines():
    # x = 0.5, 2x = 1 (the same line, rescaled) and x = -0.25 (parallel)
    part = _check(_first_layer([[1, 0], [2, 0], [1, 0]], [-0.5, -1.0, 0.25]), ["relu"])
    assert len(part.polygons) == 3
    np.testing.assert_allclose(np.sort(part.areas), [1.0, 1.5, 1.5])


def test_zero_weight_rows_and_dead_neurons_do_not_cut():
    cols = [[1, 0], [0, 0], [0, 0], [0, 0], [0.3, 0.2]]
    part = _check(_first_layer(cols, [0, 0.0, 1.0, -1.0, -5.0]), ["relu"])
    assert len(part.polygons) == 2
    # constant neurons get a constant map with zero gradient
    assert np.all(part.maps["hidden_0"][:, 1:4, :2] == 0)
    np.testing.assert_allclose(part.maps["hidden_0"][:, 2, 2], 1.0)
    # a dead neuron in the second layer
    w1 = np.array([[1.0, -1.0], [0.0, 0.0]])
    layers = [
        (np.eye(2), np.zeros(2)),
        (w1, np.array([-10.0, 0.0])),
        (np.ones((2, 1)), np.zeros(1)),
    ]
    part = _check(layers, ["relu", "relu"])
    assert len(part.polygons) == 4


def test_duplicate_neurons_make_no_slivers():
    rng = np.random.default_rng(8)
    w = rng.normal(size=(2, 5))
    b = rng.normal(size=5) * 0.3
    once = partition(Network.from_layers([(w, b), (np.ones((5, 1)), np.zeros(1))], ["relu"]), box())
    w2, b2 = np.concatenate([w, w, 3 * w], axis=1), np.concatenate([b, b, 3 * b])
    layers = [(w2, b2), (np.ones((15, 1)), np.zeros(1))]
    part = _check(layers, ["relu"])
    assert len(part.polygons) == len(once.polygons)
    # duplicates in a deeper layer, after a first layer that bends the lines
    w1 = rng.normal(size=(5, 3))
    deep = [(w, b), (np.concatenate([w1, w1], axis=1), np.zeros(6)), (np.ones((6, 1)), np.zeros(1))]
    single = [(w, b), (w1, np.zeros(3)), (np.ones((3, 1)), np.zeros(1))]
    assert len(_check(deep, ["relu", "relu"]).polygons) == len(
        partition(Network.from_layers(single, ["relu", "relu"]), box()).polygons
    )


def test_lines_closer_than_the_tolerance_merge_but_thin_regions_survive():
    near = _check(_first_layer([[1, 0], [1, 0]], [0.0, 1e-13]), ["relu"])
    assert len(near.polygons) == 2
    assert near.areas.min() > 1e-9 * 4
    thin = _check(_first_layer([[1, 0], [1, 0]], [0.0, 1e-6]), ["relu"])
    assert len(thin.polygons) == 3
    assert thin.areas.min() == pytest.approx(2e-6, rel=1e-6)


def test_hardtanh_cuts_at_both_breakpoints():
    layers = _first_layer([[2, 0]], [0.0])  # clip(2x, -1, 1): kinks at x = -1/2 and x = 1/2
    part = _check(layers, ["hardtanh"])
    assert len(part.polygons) == 3
    assert sorted(part.patterns["hidden_0"][:, 0].tolist()) == [0, 1, 2]
    np.testing.assert_allclose(np.sort(part.areas), [1.0, 1.0, 2.0])


def test_no_hidden_layer_is_one_region():
    layers = [(np.array([[1.0, -2.0], [0.5, 1.0]]), np.array([0.1, 0.2]))]
    part = _check(layers, [])
    assert len(part.polygons) == 1 and part.region_counts == {}
    assert len(decision_boundary(part)) == 1


# --------------------------------------------------------------------------- slices


def test_slice_partition_matches_the_forward_pass_on_the_plane():
    layers = he_net((3, 10, 8, 2), seed=21)
    acts = ["relu", "abs"]
    rng = np.random.default_rng(5)
    a, b, c = rng.normal(size=(3, 3))
    origin, d1, d2 = plane_through(a, b, c)
    dom = box((-0.5, -0.5), (1.5, 1.5))
    part = slice_partition(Network.from_layers(layers, acts), origin, d1, d2, dom)
    assert np.allclose(origin + 1 * d1, b) and np.allclose(origin + 1 * d2, c)
    assert part.areas.sum() == pytest.approx(4.0, rel=1e-10)
    st_ = interior_points(part.polygons, 3, rng)
    region = np.repeat(np.arange(len(part.polygons)), 3)
    x = origin + st_[:, :1] * d1 + st_[:, 1:] * d2
    ref = forward(layers, acts, x)
    for key, val in ref.items():
        got = map_values(part.maps[key], region, st_)
        np.testing.assert_allclose(got, val, atol=RTOL * (1 + np.abs(val).max()), err_msg=key)


# --------------------------------------------------------------------------- errors


def test_errors_teach():
    layers = he_net((2, 4, 1), seed=0)
    with pytest.raises(ToylabError, match="Did you mean 'relu'"):
        partition(Network.from_layers(layers, ["reul"]), box())
    with pytest.raises(ToylabError, match="one per hidden layer"):
        partition(Network.from_layers(layers, ["relu", "relu"]), box())
    with pytest.raises(ToylabError, match=r"weights\[1\] must be 4 rows"):
        partition(Network.from_layers([layers[0], (np.ones((3, 1)), np.zeros(1))], ["relu"]), box())
    with pytest.raises(ToylabError, match="counter-clockwise"):
        partition(Network.from_layers(layers, ["relu"]), box()[::-1])
    with pytest.raises(ToylabError, match="counter-clockwise"):
        partition(
            Network.from_layers(layers, ["relu"]), np.array([[0, 0], [2, 0], [1, 0.1], [1, 2]])
        )
    part = partition(Network.from_layers(layers, ["relu"]), box())
    with pytest.raises(ToylabError, match="Did you mean 'hidden_0'"):
        extrema(part, "hiden_0")
    with pytest.raises(ToylabError, match="unit must be"):
        level_set(part, "hidden_0", 4)
    with pytest.raises(ToylabError, match="collinear"):
        plane_through([0, 0, 0], [1, 1, 1], [2, 2, 2])


# --------------------------------------------------------------------------- property test

GRID = [-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0]


@st.composite
def small_networks(draw):
    """Small nets with exactly representable weights, so degeneracies are exact.

    Columns may be zero (constant neurons), copies of another column
    (duplicate lines) or scaled copies; biases from a small grid put lines
    through the origin and through box corners and edges.
    """
    depth = draw(st.integers(1, 4))
    widths = [2] + [draw(st.integers(1, 8)) for _ in range(depth)] + [draw(st.integers(1, 3))]
    acts = [draw(st.sampled_from(sorted(BREAKS))) for _ in range(depth)]
    layers = []
    for k, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        w = np.array(
            draw(st.lists(st.sampled_from(GRID), min_size=n_in * n_out, max_size=n_in * n_out))
        )
        w = w.reshape(n_in, n_out)
        b = np.array(draw(st.lists(st.sampled_from(GRID), min_size=n_out, max_size=n_out)))
        for j in range(n_out):
            kind = draw(st.sampled_from(["keep", "keep", "keep", "zero", "copy", "scaled"]))
            if kind == "zero":
                w[:, j] = 0.0
            elif kind in ("copy", "scaled") and j > 0:
                src = draw(st.integers(0, j - 1))
                f = 1.0 if kind == "copy" else 2.0
                w[:, j], b[j] = f * w[:, src], f * b[src]
        if k == len(widths) - 2:
            b = b * 0.5
        layers.append((w, b))
    return layers, acts


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(net=small_networks(), lim=st.sampled_from([1.0, 1.5, 2.0]))
def test_invariants_hold_for_random_small_networks(net, lim):
    layers, acts = net
    dom = box((-lim, -lim), (lim, lim))
    part = partition(Network.from_layers(layers, acts), dom)
    rng = np.random.default_rng(0)
    check_invariants(layers, acts, dom, part, rng, per=2, overlap_points=100)
    assert sum(shoelace(p) for p, _ in argmax_pieces(part)) == pytest.approx(
        4 * lim * lim, rel=1e-9
    )
    ex = extrema(part, "output")
    verts = forward(layers, acts, part.vertices)["output"]
    scale = 1 + np.abs(verts).max()
    assert np.all(verts.max(axis=0) <= ex.max + 1e-10 * scale)


# --------------------------------------------------------------------------- the cutter


def _local_cut(layers, acts, lim, **kw):
    """The raw cut of a network on ``[-lim, lim]^2`` (its own local coordinates)."""
    from toylab.exact import _mesh

    net = Network.from_layers(layers, acts)
    return _mesh.cut(net.dense_layers(), net.activations, box((-lim, -lim), (lim, lim)), 1e-9, **kw)


def _canonical(raw):
    """Regions as (centroid-sorted) vertex arrays, each starting at its lowest vertex."""
    xy = raw.vertices[raw.ring]
    polys = [xy[a:b] for a, b in zip(raw.offsets[:-1], raw.offsets[1:], strict=True)]
    rolled = [np.roll(p, -int(np.lexsort((p[:, 1], p[:, 0]))[0]), axis=0) for p in polys]
    cent = np.array([p.mean(axis=0) for p in polys])
    order = np.lexsort((np.round(cent[:, 1], 9), np.round(cent[:, 0], 9)))
    return [rolled[i] for i in order], order


@pytest.mark.parametrize(
    "widths,acts",
    [
        ((2, 12, 12, 3), ["relu", "relu"]),
        ((2, 10, 10, 4), ["leaky_relu", "abs"]),
        ((2, 8, 6, 3), ["hardtanh", "relu"]),
        ((2, 70, 5), ["relu"]),  # 70 lines in one region: sign vectors of two words
    ],
)
def test_cutting_a_layer_at_once_matches_cutting_line_by_line(widths, acts, monkeypatch):
    """The arrangement of a whole layer (``_arrange``) gives the regions, patterns and maps
    of cutting neuron by neuron (``_Mesh.cut``), up to rounding; a spy checks that the
    arrangement, not the line-by-line fallback, made every layer."""
    from toylab.exact import _mesh

    layers = he_net(widths, seed=len(widths) + widths[1])
    made = []

    def spy(*args):
        out = arrange(*args)
        made.append(out is not None)
        return out

    arrange = _mesh._arrange
    monkeypatch.setattr(_mesh, "_arrange", spy)
    fast = _local_cut(layers, acts, 2.0)
    assert made and all(made)
    slow = _local_cut(layers, acts, 2.0, batch=False)
    assert len(made) == len(acts)  # the line-by-line cut never calls it
    pf, of = _canonical(fast)
    ps, os_ = _canonical(slow)
    assert len(pf) == len(ps)
    for a, b in zip(pf, ps, strict=True):
        # interpolated along different edges and chords: rounding of the coordinates
        assert a.shape == b.shape and np.allclose(a, b, rtol=0, atol=1e-12)
    assert fast.region_counts == slow.region_counts
    for key in fast.patterns:
        assert np.array_equal(fast.patterns[key][of], slow.patterns[key][os_])
    net = Network.from_layers(layers, acts)
    mf = _mesh.LayerMaps(net.dense_layers(), net.activations, fast)
    ms = _mesh.LayerMaps(net.dense_layers(), net.activations, slow)
    for key in ms:
        scale = 1 + np.abs(ms[key]).max()  # the same compositions, in another row order
        np.testing.assert_allclose(mf[key][of], ms[key][os_], rtol=0, atol=1e-13 * scale)


@pytest.mark.parametrize("seed", range(4))
def test_split_small_matches_split(seed, monkeypatch):
    """The two splits of the line-by-line cut (plain Python for a few pieces, vectorised
    for many) give identical meshes: forcing either for every cut changes nothing."""
    from toylab.exact import _mesh

    rng = np.random.default_rng(seed)
    layers = he_net((2, 9, 9, 2), seed=seed)
    if seed % 2:  # exactly representable weights: lines through vertices, duplicates
        layers = [(np.round(w * 2) / 2, np.round(b * 2) / 2) for w, b in layers]
    acts = [str(a) for a in rng.choice(["relu", "abs", "hardtanh"], size=2)]
    monkeypatch.setattr(_mesh, "_SMALL_CUT", 10**9)
    small = _local_cut(layers, acts, 1.5, batch=False)
    monkeypatch.setattr(_mesh, "_SMALL_CUT", 0)
    vec = _local_cut(layers, acts, 1.5, batch=False)
    for name in ("vertices", "ring", "offsets"):
        assert np.array_equal(getattr(small, name), getattr(vec, name)), name
    for key in small.patterns:
        assert np.array_equal(small.patterns[key], vec.patterns[key])


def test_lines_through_one_point_are_cut_line_by_line(monkeypatch):
    """Zero biases put every first-layer line through the origin: the arrangement declines
    (three lines through a point) and the layer is cut line by line, correctly."""
    from toylab.exact import _mesh

    made = []
    arrange = _mesh._arrange
    monkeypatch.setattr(_mesh, "_arrange", lambda *a: made.append(arrange(*a)) or made[-1])
    layers = [(w, np.zeros_like(b)) for w, b in he_net((2, 7, 5, 2), seed=9)]
    part = _check(layers, ["relu", "relu"], box((-1, -1), (1.5, 1)))
    assert made[0] is None
    assert len(part.polygons) >= 14  # 7 lines through one interior point


def test_maps_are_composed_when_read_in_any_order():
    """Keys read in reverse give the arrays read in order (each composed on first access,
    read-only and kept)."""
    layers = he_net((2, 8, 8, 8, 3), seed=4)
    net = Network.from_layers(layers, ["relu", "abs", "relu"])
    dom = box((-2, -2), (2, 2))
    a, b = partition(net, dom), partition(net, dom)
    forward = {key: a.local_maps[key] for key in a.local_maps}
    for key in reversed(list(b.local_maps)):
        np.testing.assert_array_equal(b.local_maps[key], forward[key])
        assert b.local_maps[key] is b.local_maps[key]
        assert not b.local_maps[key].flags.writeable and not b.maps[key].flags.writeable
    assert len(a.maps) == len(a.local_maps) == 7 and "hidden_1.pre" in a.maps
