"""The superposition figures render to PNG with the artists they promise."""

import matplotlib
import numpy as np
import pytest
from matplotlib.figure import Figure

from toylab import ToylabError
from toylab.network import Dense, Network, Tied
from toylab.superposition import phase_diagram, superposition_metrics, trained_phase
from toylab.viz._output import save_png
from toylab.viz.superposition import (
    DimensionalityDisplay,
    EmbeddingDisplay,
    FeatureNormsDisplay,
    InterferenceDisplay,
    PhaseDiagramDisplay,
)

matplotlib.use("Agg")


def _net(W, b=None):
    W = np.asarray(W, np.float64)
    b = np.zeros(W.shape[1]) if b is None else np.asarray(b, np.float64)
    return Network((Dense(W.T, np.zeros(W.shape[0])), Tied(0, b)), ("identity", "relu"))


def _pentagon():
    t = 2 * np.pi * np.arange(5) / 5
    W = np.concatenate([np.stack([np.cos(t), np.sin(t)]), 0.1 * np.ones((2, 1))], 1)
    return _net(W, np.r_[-0.1 * np.ones(5), 0.02])


def _ink(path):
    px = matplotlib.image.imread(path)[..., :3]
    return float(np.mean(np.any(px < 0.95, axis=-1)))


def test_single_model_figures(tmp_path):
    net = _pentagon()
    inter = InterferenceDisplay.from_model(net)
    fig = Figure(figsize=(5, 4))
    inter.plot(fig.add_subplot())
    img = inter.image_.get_array()
    np.testing.assert_allclose(img[:, :6], superposition_metrics(net).interference)
    np.testing.assert_allclose(img[:, 7], superposition_metrics(net).b)  # the bias column
    assert inter.image_.norm.vcenter == 0.0
    save_png(fig, tmp_path / "interference.png")
    norms = FeatureNormsDisplay.from_model(net)
    fig = Figure(figsize=(5.5, 3.5))
    norms.plot(fig.add_subplot())
    assert len(norms.bars_) == 6
    assert [t.get_text() for t in norms.ax_.get_yticklabels()][0] == "input:0"
    save_png(fig, tmp_path / "norms.png")
    emb = EmbeddingDisplay.from_model(net)
    assert "regular 5-gon" in emb.title
    fig = Figure(figsize=(5, 5.4))
    emb.plot(fig.add_subplot())
    labels = {t.get_text() for t in emb.ax_.texts}
    assert {f"input:{i}" for i in range(6)} <= labels
    save_png(fig, tmp_path / "embedding.png")
    for name in ("interference", "norms", "embedding"):
        assert _ink(tmp_path / f"{name}.png") > 0.05


def test_dimensionality_and_phase(tmp_path):
    rng = np.random.default_rng(0)
    dens = [0.01, 0.1, 1.0]
    results = [superposition_metrics([_net(rng.normal(size=(2, 6))) for _ in range(2)])
               for _ in dens]  # fmt: skip
    d = DimensionalityDisplay.from_results(dens, results)
    assert len(d.member_density) == 6
    assert len(d.dimensionality) == sum(int(r.num_represented.sum()) for r in results)
    fig = Figure(figsize=(6.4, 4.4))
    d.plot(fig.add_subplot())
    save_png(fig, tmp_path / "dim.png")
    exact = phase_diagram([0.1, 10.0], [0.01, 1.0])
    trained = trained_phase([(0.1, 0.01, _net([[1.0, -1.0]]), 0.2),
                             (0.1, 0.01, _net([[1.0, 0.0]]), 0.1)])  # fmt: skip
    p = PhaseDiagramDisplay.from_results(exact, trained)
    fig = Figure(figsize=(10.5, 4.9))
    p.plot(fig)
    assert len(p.axes_) == 2
    save_png(fig, tmp_path / "phase.png")
    for name in ("dim", "phase"):
        assert _ink(tmp_path / f"{name}.png") > 0.05


def test_embedding_needs_two_dimensions():
    with pytest.raises(ToylabError, match="m = 2"):
        EmbeddingDisplay.from_model(_net(np.eye(3)))
