"""Every figure renders (Agg) to a non-empty image with the artists it promises."""

import io

import matplotlib
import numpy as np
import pytest
from matplotlib.collections import LineCollection, PathCollection
from matplotlib.figure import Figure
from matplotlib.image import AxesImage

from toylab import ToylabError
from toylab.distributions import two_blobs
from toylab.exact import analyze, decision_boundary, partition_edges
from toylab.models import MLP
from toylab.viz import (
    CMAP,
    ActivationDistributionDisplay,
    CircuitDisplay,
    DataDisplay,
    NeuronMapDisplay,
    TrainingCurvesDisplay,
    TrainingDynamicsDisplay,
    TuningCurveDisplay,
    layer_grid_figure,
)

matplotlib.use("Agg")


def _png_pixels(fig):
    """Save ``fig`` as PNG and read it back: ``(H, W, 3)`` floats in [0, 1]."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=60)
    buf.seek(0)
    return matplotlib.image.imread(buf)[..., :3]


def _assert_drawn(fig, min_ink=0.02):
    """The saved image is not blank: enough non-white pixels and some variance."""
    px = _png_pixels(fig)
    ink = float(np.mean(np.any(px < 0.95, axis=-1)))
    assert ink > min_ink, f"only {ink:.3%} of the image is drawn"
    assert float(px.std()) > 0.02


def _colls(ax, kind):
    return [c for c in ax.collections if isinstance(c, kind)]


@pytest.fixture(scope="module")
def net():
    """A fixed 2-3-2 ReLU network on two blobs and its exact analysis."""
    w0 = np.array([[1.0, -0.5, 0.3], [0.2, 1.0, -1.0]])
    b0 = np.array([0.1, -0.2, 0.5])
    w1 = np.array([[1.0, -1.0], [-0.7, 0.4], [0.5, 0.9]])
    model = MLP.from_weights([w0, w1], [b0, np.zeros(2)])
    dist = two_blobs()
    return model, dist, analyze(model, dist)


def test_neuron_map_from_analysis_draws_exact_overlays(net, tmp_path):
    model, dist, analysis = net
    pts = {"data": np.zeros((5, 2)), "start": np.ones((3, 2)), "end": -np.ones((3, 2)),
           "top": np.full((2, 2), 0.5)}  # fmt: skip
    disp = NeuronMapDisplay.from_analysis(model, "hidden_0:1", analysis, num=60, points=pts)
    # the exact argmax is a vertex where the grid value is (nearly) the grid maximum
    ext = analysis.extrema("hidden_0")
    np.testing.assert_allclose(disp.marker, ext.argmax[1])
    assert disp.values.max() <= ext.max[1] + 1e-5
    assert len(disp.zero_lines) >= 1 and len(disp.segments) == len(
        partition_edges(analysis.geometry)
    )
    fig = Figure(figsize=(5, 4))
    disp.plot(fig.subplots(), legend=True)
    ax = disp.ax_
    assert isinstance(disp.image_, AxesImage) and disp.image_.get_cmap().name == CMAP
    norm = disp.image_.norm
    assert norm.vmin == -norm.vmax  # centred at zero
    assert len(_colls(ax, LineCollection)) == 1  # region boundaries
    assert len(ax.lines) == len(disp.zero_lines)
    assert len(_colls(ax, PathCollection)) == len(pts) + 1  # point sets + the argmax star
    assert ax.get_title() == "hidden_0:1"
    assert {"argmax", "zero set", "region boundaries"} <= set(ax.get_legend_handles_labels()[1])
    _assert_drawn(fig)


def test_neuron_map_rejects_unknown_neuron(net):
    model, dist, analysis = net
    with pytest.raises(ToylabError, match="hidden_0"):
        NeuronMapDisplay.from_analysis(model, "hidden_0:7", analysis)


def test_layer_grid_and_data_display_with_exact_boundary(net):
    model, dist, analysis = net
    fig = layer_grid_figure(model, dist, num=40, title="grid")
    assert sum(bool(ax.images) for ax in fig.axes) == 3
    _assert_drawn(fig)
    import jax

    disp = DataDisplay.from_model(dist, model, key=jax.random.key(0), num=80, num_samples=100,
                                  analysis=analysis)  # fmt: skip
    np.testing.assert_allclose(disp.boundary_segments, decision_boundary(analysis.geometry))
    fig = Figure(figsize=(5, 5))
    disp.plot(fig.subplots())
    ax = disp.ax_
    labels = ax.get_legend_handles_labels()[1]
    assert "network boundary (exact)" in labels and "Bayes-optimal boundary" in labels
    assert len(_colls(ax, LineCollection)) >= 1
    _assert_drawn(fig)


def test_tuning_curve_display():
    t = np.linspace(0, 2 * np.pi, 40)
    exact = np.maximum(np.cos(t), 0)
    rng = np.random.default_rng(0)
    sampled = exact + rng.normal(0, 0.05, t.shape)
    disp = TuningCurveDisplay.from_arrays(t, exact, sampled, sampled_err=np.full(40, 0.05),
                                          neuron="hidden_0:1", xlabel="angle")  # fmt: skip
    fig = Figure(figsize=(5, 3.5))
    disp.plot(fig.subplots())
    ax = disp.ax_
    labels = ax.get_legend_handles_labels()[1]
    assert labels == ["sampled ± 2 s.e.", "sampled", "exact"]
    exact_line = [ln for ln in ax.lines if ln.get_label() == "exact"][0]
    np.testing.assert_allclose(exact_line.get_ydata(), exact)
    _assert_drawn(fig)
    with pytest.raises(ToylabError, match="shape of t"):
        TuningCurveDisplay.from_arrays(t, exact[:-1])
    with pytest.raises(ToylabError, match="neither"):
        TuningCurveDisplay.from_arrays(t)


def test_tuning_curve_from_model_is_the_forward_pass(net):
    model, _, _ = net
    t = np.linspace(-2, 2, 9)
    pts = np.stack([t, np.zeros_like(t)], 1)
    disp = TuningCurveDisplay.from_model(model, "hidden_0:0", pts, t)
    w0, b0 = model.to_network().dense_layers()[0]
    np.testing.assert_allclose(disp.exact, np.maximum(pts @ w0[:, 0] + b0[0], 0), atol=1e-6)


def test_activation_distribution_display():
    rng = np.random.default_rng(1)
    samples = np.maximum(rng.normal(size=2000), 0)
    edges = np.linspace(0, 3, 13)
    from scipy.stats import norm

    masses = np.diff(norm.cdf(edges))
    masses[0] = norm.cdf(edges[1]) - 0.5  # the continuous part only
    disp = ActivationDistributionDisplay.from_arrays(
        edges, masses, samples=samples, atom=0.5, cdf_x=edges,
        cdf=np.concatenate([[0.5], 0.5 + np.cumsum(masses)]), neuron="hidden_0:0",
    )  # fmt: skip
    fig = Figure(figsize=(5, 3.5))
    disp.plot(fig.subplots())
    ax = disp.ax_
    assert len(ax.patches) >= len(edges) - 1  # exact bars (+ the sampled stairs)
    assert any("sampled" in lab for lab in ax.get_legend_handles_labels()[1])
    assert any("P(a=0)" in t.get_text() for t in ax.texts)
    assert len(disp.ax_cdf_.lines) == 1
    _assert_drawn(fig)
    with pytest.raises(ToylabError, match="one value per bin"):
        ActivationDistributionDisplay.from_arrays(edges, masses[:-1])


def test_training_dynamics_small_multiples_and_gif(tmp_path):
    xx, yy = np.meshgrid(np.linspace(-1, 1, 20), np.linspace(-1, 1, 20))
    frames = np.stack([s * (xx + yy) for s in (0.01, 0.5, 2.0)])
    disp = TrainingDynamicsDisplay("hidden_0:0", [0, 10, 100], xx, yy, frames)
    fig = Figure(figsize=(7, 3))
    disp.plot(fig)
    assert sum(bool(ax.images) for ax in fig.axes) == 3
    assert [ax.get_title().split("\n")[0] for ax in fig.axes[:3]] == [
        "step 0", "step 10", "step 100"]  # fmt: skip
    assert fig.get_suptitle() == "hidden_0:0 (member 0) during training"
    _assert_drawn(fig)
    named = TrainingDynamicsDisplay("hidden_0:0", [0], xx, yy, frames[:1], 3, "seed 1, lr=0.1")
    assert named.plot(Figure()).figure_.get_suptitle() == (
        "hidden_0:0 (member 3, seed 1, lr=0.1) during training"
    )
    path = disp.save_gif(tmp_path / "dyn.gif", dpi=40)
    from PIL import Image

    with Image.open(path) as im:
        assert im.n_frames == 3
        first = np.asarray(im.convert("RGB"), float)
        assert first.std() > 5


def test_training_curves_display():
    metrics = [{"step": s, "loss": np.array([1.0 / (s + 1), 2.0 / (s + 1)]),
                "accuracy": np.array([0.5 + s / 400, 0.6])} for s in range(0, 200, 20)]  # fmt: skip
    disp = TrainingCurvesDisplay.from_metrics(metrics, bayes=0.98)
    assert disp.series["loss"].shape == (10, 2)
    fig = Figure(figsize=(8, 3))
    disp.plot(fig)
    loss_ax, acc_ax = disp.axes_
    assert len(loss_ax.lines) == 2 and loss_ax.get_yscale() == "log"
    assert len(acc_ax.lines) == 3  # two members + the Bayes line
    _assert_drawn(fig)


def test_circuit_display_edges_and_labels(net):
    model, _, _ = net
    labels = {"hidden_0:2": "<b>detector</b>"}
    disp = CircuitDisplay.from_model(model, labels, threshold=0.0)
    fig = Figure(figsize=(6, 4))
    disp.plot(fig.subplots())
    n_weights = sum(w.size for w in disp.weights)
    assert len(disp.edges_.get_paths()) == n_weights
    lws = disp.edges_.get_linewidths()
    flat = np.concatenate([w.ravel() for w in disp.weights])
    order = np.argsort(np.abs(flat))
    assert lws[order[-1]] > lws[order[0]]  # width grows with |w|
    colors = disp.edges_.get_colors()
    pos, neg = int(np.argmax(flat)), int(np.argmin(flat))
    assert colors[pos][0] > colors[pos][2] and colors[neg][2] > colors[neg][0]  # red +, blue -
    assert any(t.get_text() == "<b>detector</b>" for t in disp.texts_)
    assert set(disp.positions()) == {"input:0", "input:1", "hidden_0:0", "hidden_0:1",
                                     "hidden_0:2", "output:0", "output:1"}  # fmt: skip
    _assert_drawn(fig)
    with pytest.raises(ToylabError, match="chain"):
        CircuitDisplay.from_weights([np.ones((2, 3)), np.ones((2, 2))])


@pytest.mark.parametrize("corner", [(-8.0, -8.0), (8.0, 8.0), (-8.0, 8.0), (8.0, -8.0), (0.0, 0.0)])
def test_legend_never_hides_the_argmax_star(net, corner):
    """The legend sits outside the map, so the star is visible wherever it is (it was drawn
    under an 'upper left' legend before). Checked in display coordinates after drawing."""
    model, dist, analysis = net
    disp = NeuronMapDisplay.from_analysis(model, "hidden_0:0", analysis, num=30,
                                          points={"data": np.zeros((3, 2))})  # fmt: skip
    disp.marker = np.array(corner)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.transforms import Bbox

    fig = Figure(figsize=(5.6, 5.2), layout="constrained")  # as the atlas draws it
    disp.plot(fig.subplots(), legend=True)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    ax = disp.ax_
    legend = ax.get_legend().get_window_extent(canvas.get_renderer())
    star = next(c for c in ax.collections if c.get_label() == "argmax")
    cx, cy = ax.transData.transform(star.get_offsets()[0])
    r = np.sqrt(star.get_sizes()[0]) / 2 * fig.dpi / 72  # marker size is in points^2
    assert not legend.overlaps(Bbox([[cx - r, cy - r], [cx + r, cy + r]]))
    assert not legend.overlaps(ax.get_window_extent())  # below the axes, not on the map
    # the legend is inside the saved figure (nothing cut off)
    assert legend.x0 >= 0 and legend.y0 >= 0 and legend.x1 <= fig.bbox.x1


def test_maps_have_axis_labels(net):
    model, dist, analysis = net
    disp = NeuronMapDisplay.from_model(model, "hidden_0:1", dist, num=20)
    disp.plot(Figure().subplots())
    assert disp.ax_.get_xlabel() == "x₁ (input:0)" and disp.ax_.get_ylabel() == "x₂ (input:1)"
    fig = layer_grid_figure(model, dist, num=20, fig=Figure())
    assert "input:0" in fig.get_supxlabel() and "input:1" in fig.get_supylabel()
    data = DataDisplay.from_model(dist, model, key=__import__("jax").random.key(0), num=20,
                                  num_samples=20).plot(Figure().subplots())  # fmt: skip
    assert data.ax_.get_xlabel() == "x₁ (input:0)"


def test_wide_layers_wrap_into_a_grid():
    """A 32-wide layer made a 6688 x 484 px strip before; now rows of at most 8 maps."""
    rng = np.random.default_rng(0)
    model = MLP.from_weights([rng.normal(size=(2, 32)), rng.normal(size=(32, 5)),
                              rng.normal(size=(5, 2))])  # fmt: skip
    fig = layer_grid_figure(model, two_blobs(), num=12, fig=Figure())
    maps = [ax for ax in fig.axes if ax.images]
    assert len(maps) == 37
    rows = sorted({round(ax.get_position().y0, 3) for ax in maps})
    assert len(rows) == 4 + 1  # hidden_0: 4 rows of 8; hidden_1: its own row
    cols = sorted({round(ax.get_position().x0, 3) for ax in maps})
    assert len(cols) == 8
    width, height = fig.get_size_inches()
    assert width / height < 2  # a block, not a strip
    hidden_1 = [ax for ax in maps if ax.get_title().startswith("hidden_1")]
    assert len({round(ax.get_position().y0, 3) for ax in hidden_1}) == 1  # a layer starts a row
    with pytest.raises(ToylabError, match="columns must be"):
        layer_grid_figure(model, two_blobs(), columns=0)
    bare = MLP.from_weights([rng.normal(size=(2, 2))])
    with pytest.raises(ToylabError, match="no neurons"):
        layer_grid_figure(bare, two_blobs(), num=8)


def test_training_curves_name_members_and_survive_nan():
    metrics = [{"step": s, "loss": np.array([1.0 / (s + 1), np.nan]),
                "accuracy": np.array([0.5, 0.5])} for s in (0, 10, 20)]  # fmt: skip
    disp = TrainingCurvesDisplay.from_metrics(metrics, labels=["seed 0, lr=0.01", "seed 0, lr=1"])
    disp.plot(Figure(figsize=(8, 3)))
    names = disp.axes_[0].get_legend_handles_labels()[1]
    assert names == ["seed 0, lr=0.01", "seed 0, lr=1"]
    many = [{"step": s, "loss": np.ones(12), "accuracy": np.ones(12)} for s in (0, 1)]
    disp = TrainingCurvesDisplay.from_metrics(many).plot(Figure(figsize=(8, 3)))
    assert disp.axes_[0].get_legend() is None and "(12 members)" in disp.axes_[0].get_title()
