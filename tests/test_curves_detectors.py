"""Curve-detector analysis on hand-built conv nets whose tuning is known by construction.

References are independent of the code under test: the channel's response is computed as
a plain dot product of the rendered image with the hand-written kernel (NumPy), on a
dense grid of orientations; tiling statistics are checked on sets of angles whose gaps are
known by hand.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from toylab.curves.detectors import (
    analyze_detectors,
    channel_detector,
    local_problem,
    tiling,
)
from toylab.distributions import CurveImages
from toylab.layers.conv import AvgPool, Conv
from toylab.network import Dense, Network

SIZE = 11
FAM = CurveImages(size=SIZE, jitter=0.0, kappa_max=0.25, length=8.0)
PHI = 1.1  # radians: the template's orientation
KAPPA = float(0.5 * (FAM.param_low[1] + FAM.param_high[1]))


def _template(phi: float) -> np.ndarray:
    """The family's curve at (phi, kappa mid, centre) minus its 180° rotation (the curve
    at phi + pi): an odd template, so the pre-activation at theta + pi is minus that at
    theta (the pixel grid is symmetric about the image centre), plus the bias."""
    c = FAM.centre
    img = FAM.render(np.array([phi, KAPPA, c[0], c[1]])).reshape(SIZE, SIZE)
    return img - img[::-1, ::-1]


def _net(kernels: list[np.ndarray], bias: list[float]) -> Network:
    """One conv layer reading the whole image at the centre (kernel SIZE x SIZE, 'same')."""
    k = np.stack(kernels, -1)[:, :, None, :]
    conv = Conv(k, np.asarray(bias, np.float64), (SIZE, SIZE, 1))
    head = Dense(np.zeros((SIZE * SIZE * len(kernels), 2)), np.zeros(2))
    return Network((conv, head), ("relu", "identity"))


def _direct(kernel: np.ndarray, bias: float, theta: np.ndarray, pre: bool = False) -> np.ndarray:
    """Independent reference: relu(<kernel, image> + b) from the rendered images."""
    c = FAM.centre
    p = np.stack([theta, np.full_like(theta, KAPPA), np.full_like(theta, c[0]),
                  np.full_like(theta, c[1])], -1)  # fmt: skip
    z = FAM.render(p) @ kernel.ravel() + bias
    return z if pre else np.maximum(z, 0.0)


def _circ(a: float, b: float) -> float:
    return abs((a - b + 180.0) % 360.0 - 180.0)


def _in_arc(angle: float, arc: tuple[float, float], slack: float = 1e-9) -> bool:
    return (angle - arc[0]) % 360.0 <= arc[1] + slack


@pytest.fixture(scope="module")
def template_results():
    t = _template(PHI)
    th = np.linspace(0, 2 * math.pi, 720, endpoint=False)
    b = -0.4 * float(_direct(t, 0.0, th).max())  # fires only near the template
    net = _net([t, t[::-1, ::-1], np.ones_like(t)], [b, b, 0.0])
    res = [channel_detector(net, FAM, f"conv_0:{c}", invariance=c == 0, max_boxes=3000)
           for c in range(3)]  # fmt: skip
    return t, b, res


def test_template_prefers_its_orientation(template_results):
    t, b, (r, _, _) = template_results
    th = np.linspace(0, 2 * math.pi, 7200, endpoint=False)
    g = _direct(t, b, th)
    best = math.degrees(th[np.argmax(g)])
    # the true argmax (up to the 0.05° grid) lies in the certified arc
    assert _in_arc(best, r.preferred_arc, slack=0.1)
    # and is the template's own orientation up to the image grid's anisotropy (one cell)
    assert _circ(best, math.degrees(PHI)) < 15.0
    assert _circ(r.preferred, math.degrees(PHI)) < 15.0
    # certified peak encloses the grid maximum (the grid is a lower bound of the max)
    assert r.peak[0] - 1e-9 <= g.max() * (1 + 1e-12) + 1e-12 or r.peak[0] <= g.max() + 1e-9
    assert g.max() <= r.peak[1] + 1e-9
    # the half-maximum measure from the dense grid lies in the certified width (the
    # grid's own error: one step, 0.05°, per crossing; two crossings)
    grid_width = float(np.mean(g >= g.max() / 2) * 360.0)
    assert r.width[0] - 0.2 <= grid_width <= r.width[1] + 0.2
    # ±45°: the enclosures hold the direct values
    for k, s in enumerate((-1.0, 1.0)):
        v = _direct(t, b, np.array([math.radians(r.preferred) + s * math.pi / 4]))[0]
        assert r.off45[k, 0] - 1e-9 <= v <= r.off45[k, 1] + 1e-9
    # opposite orientation: the odd template's pre-activation at theta + pi is
    # -<t, x> + b < 0 (direct), and the certified sign agrees
    opp = _direct(t, b, np.array([math.radians(r.preferred) + math.pi]), pre=True)[0]
    assert opp < 0 and r.opposite_sign == "negative"
    assert r.opposite[0] - 1e-9 <= opp <= r.opposite[1] + 1e-9
    assert r.single_peak is True and r.is_detector is True, r.reasons
    assert r.tier == "certified" and r.tuning.tier == "certified"
    assert set(r.invariance) == {"polarity", "fill"}
    # reversed polarity inverts the image (contrast 1): the response anticorrelates
    assert r.invariance["polarity"][0] < 0


def test_mirror_template_prefers_the_opposite(template_results):
    _, _, (r, m, _) = template_results
    # the 180° rotation of a curve (theta, kappa) is the curve (theta + pi, kappa)
    assert _circ(m.preferred, r.preferred + 180.0) < 15.0
    assert _circ(m.preferred, math.degrees(PHI) + 180.0) < 15.0


def test_uniform_channel_is_not_a_detector(template_results):
    _, _, (_, _, u) = template_results
    # the sum of the pixels barely depends on theta: above half maximum everywhere
    assert u.single_peak is False
    assert u.is_detector is False
    assert u.width[0] > 300.0


def test_local_problem_is_the_same_function():
    """The receptive-field cut (with an avg pool merged away) against the full network."""
    rng = np.random.default_rng(3)
    c0 = Conv(rng.normal(size=(3, 3, 1, 2)), rng.normal(size=2), (8, 8, 1))
    pool = AvgPool((8, 8, 2), 2)
    c1 = Conv(rng.normal(size=(3, 3, 2, 3)), rng.normal(size=3), (4, 4, 2))
    head = Dense(rng.normal(size=(4 * 4 * 3, 2)), np.zeros(2))
    net = Network((c0, pool, c1, head), ("relu", "identity", "relu", "identity"))
    fam = CurveImages(size=8, length=5.0)
    for neuron in ("conv_1:1", "conv_1.pre:2", "conv_1:0@1,3", "conv_0:1"):
        lp = local_problem(net, fam, neuron)
        assert lp.cropped
        x = rng.uniform(0, 1, size=(16, 64))
        full = net.values(x, neuron)
        local = lp.network.values(x[:, lp.pixels], lp.neuron)
        np.testing.assert_allclose(local, full, rtol=1e-12, atol=1e-12)  # rounding only
    # the pool was merged (no identity layer left); by hand, conv_1:1 at (2, 2) reads pool
    # rows 1..3, conv_0 rows 2..7 and pixels rows 1..8 clipped to the image: 1..7 (and cols)
    lp = local_problem(net, fam, "conv_1:1")
    assert "identity" not in lp.network.activations[:-1]
    rows = np.arange(1, 8)
    assert lp.pixels.tolist() == (rows[:, None] * 8 + rows[None, :]).ravel().tolist()


def test_tiling_known_sets():
    t = tiling([0.0, 90.0, 180.0, 270.0])
    assert t.max_gap == (90.0, 90.0) and t.gap_ratio == pytest.approx(1.0)
    assert t.resultant == pytest.approx(0.0, abs=1e-12)
    assert t.tier == "exact"
    t = tiling([350.0, 10.0, 20.0])
    assert t.max_gap[0] == pytest.approx(330.0) and t.gap_ratio == pytest.approx(330.0 / 120.0)
    # arcs of 4° holding each angle: the max gap is enclosed, by hand [326, 334]
    t = tiling([352.0, 12.0, 22.0], [(350.0, 4.0), (10.0, 4.0), (20.0, 4.0)])
    assert t.tier == "certified"
    assert t.max_gap == (pytest.approx(326.0), pytest.approx(334.0))
    assert t.max_gap[0] <= 330.0 <= t.max_gap[1]
    # overlapping arcs: the order is unknown, the label says so
    assert tiling([10.0, 12.0], [(8.0, 6.0), (9.0, 6.0)]).tier == "estimated"
    assert math.isnan(tiling([]).gap_ratio)


def test_analyze_detectors_on_a_model(template_results):
    t, b, _ = template_results
    net = _net([t, np.ones_like(t)], [b, 0.0])
    res = analyze_detectors(net, FAM, layer="conv_0", invariance=False, max_boxes=3000)
    (fam,) = res.families
    assert fam.detectors == ("conv_0:0",)
    assert res.counts.tolist() == [1] and res.widths.shape == (1, 2)
    assert res.pooled.angles.shape == (1,)
    with pytest.raises(Exception, match="layer"):
        analyze_detectors(net, FAM, layer="conv_7")


def test_figures_render(template_results, tmp_path):
    from matplotlib.figure import Figure

    from toylab.curves.detectors import analyze_detectors
    from toylab.curves.tuning import tuning
    from toylab.viz.curves import (
        FilterDisplay,
        OrientationTuningDisplay,
        PreferredOrientationsDisplay,
        TuningHeatmapDisplay,
        WidthCurvatureDisplay,
    )

    t, b, chans = template_results
    net = _net([t, t[::-1, ::-1], np.ones_like(t)], [b, b, 0.0])
    d = OrientationTuningDisplay.from_detectors(chans).plot(Figure())
    # one panel per channel (plus the empty ones of the grid), the band drawn
    assert len(d.names) == 3 and len(d.figure_.axes) >= 3
    hm = tuning(net, FAM, "conv_0:0", resolution=(8, 2), tol=10.0, max_boxes=64)
    h = TuningHeatmapDisplay.from_tuning(hm)
    # every raster pixel lies in a cell; the painted bounds are the cells' own
    assert np.all(np.isfinite(h.lower)) and np.all(h.lower <= h.upper)
    assert h.lower.min() >= hm.lower.min() and h.upper.max() <= hm.upper.max()
    h.plot(Figure())
    res = analyze_detectors(net, FAM, layer="conv_0", channels=[0, 1], invariance=False,
                            max_boxes=3000)  # fmt: skip
    PreferredOrientationsDisplay.from_result(res).plot(Figure())
    w = WidthCurvatureDisplay.from_detectors(chans)  # no curvatures computed: nothing drawn
    assert w.names == []
    f = FilterDisplay.from_network(net, "conv_0").plot(Figure())
    np.testing.assert_array_equal(f.kernel[:, :, 0, 0], t)  # the template, as written
    f.figure_.savefig(tmp_path / "k.png")
    with pytest.raises(Exception, match="layer"):
        FilterDisplay.from_network(net, "output")


def test_report_section_on_an_image_run(template_results, tmp_path):
    """The report section on a stand-in run (one member: the hand-built template net)."""
    import types

    from toylab.curves._report import is_image_run, report_lines

    t, b, _ = template_results
    net = _net([t, np.ones_like(t)], [b, 0.0])
    run = types.SimpleNamespace(num_members=1, model=lambda m: net, dist_of=lambda m: FAM,
                                member_label=lambda m: "seed 0")  # fmt: skip
    assert is_image_run(run)
    summary: dict = {}
    lines = report_lines(run, tmp_path, summary, scores=False)
    text = "\n".join(lines)
    assert "## Curve detectors" in text and "| `conv_0:0` |" in text
    assert summary["curves"]["layers"]["conv_0"]["counts"].tolist() == [1]
    for name in ("curves_tuning_conv_0_member0.png", "curves_preferred_conv_0.png",
                 "curves_filters_conv_0_member0.png", "curves_triangle.png"):  # fmt: skip
        assert (tmp_path / name).stat().st_size > 1000
        assert f"]({name})" in text


def test_single_peak_rule_on_hand_made_enclosures():
    """The lobe rule on enclosures written by hand (cells of 30°, peak [1, 1])."""
    import types

    from toylab.curves.detectors import _width

    def res(lower, upper):
        lo = np.radians(np.arange(0, 360, 30.0))[:, None]
        return types.SimpleNamespace(cell_low=lo, cell_high=lo + math.radians(30),
                                     lower=np.asarray(lower, float),
                                     upper=np.asarray(upper, float))  # fmt: skip

    z = [0.0] * 12
    one = [0, 0, 0.9, 1, 0.9, 0, 0, 0, 0, 0, 0, 0]
    # one lobe: 3 cells certified above, the rest certified below: width exactly 90°
    assert _width(res(one, one), (1.0, 1.0)) == (pytest.approx(90.0), pytest.approx(90.0), True)
    two = [0, 0, 0.9, 1, 0.9, 0, 0, 0, 0.9, 1, 0.9, 0]
    assert _width(res(two, two), (1.0, 1.0))[2] is False
    # two cores joined by an undetermined cell: neither verdict is certain
    up = list(two)
    up[5:8] = [0.7, 0.7, 0.7]
    assert _width(res(two, up), (1.0, 1.0))[2] is None
    # a second, uncertain bump in another arc (no certified-above cell there): undecided
    up = list(one)
    up[9] = 0.6
    assert _width(res(one, up), (1.0, 1.0))[2] is None
    # flat above half maximum everywhere: untuned
    assert _width(res([0.8] * 12, [1.0] * 12), (1.0, 1.0))[2] is False
    assert _width(res(z, [1.0] * 12), (1.0, 1.0)) == (0.0, pytest.approx(360.0), None)
