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


def test_dictionary_recovery_display(tmp_path):
    """The display shows |cos| of the best dictionary, latents grouped by their feature, and
    every dictionary's scores (from recovery_scores on hand-made decoders: no training)."""
    from types import SimpleNamespace

    from toylab.methods.dictionary import recovery_scores
    from toylab.viz.superposition import DictionaryRecoveryDisplay

    W = np.eye(3)  # true features e_0, e_1, e_2 in m = 3
    perfect = np.eye(3)[:, [2, 0, 1]]  # latents are e_2, e_0, e_1
    rotated = np.array([[np.cos(0.5), -np.sin(0.5), 0], [np.sin(0.5), np.cos(0.5), 0], [0, 0, 1]])
    rec = recovery_scores(np.stack([rotated, perfect]), W)
    res = SimpleNamespace(recovery=rec, penalties=np.array([0.01, 0.1]), sparsity="l1",
                          model_member=0)  # fmt: skip
    disp = DictionaryRecoveryDisplay.from_result(res)
    np.testing.assert_allclose(disp.mmcs, [(2 * np.cos(0.5) + 1) / 3, 1.0])
    np.testing.assert_allclose(disp.cos, np.abs(perfect.T))  # the best dictionary: 1
    assert disp.order.tolist() == [1, 2, 0]  # latent 1 matches input:0, 2 input:1, 0 input:2
    np.testing.assert_allclose(disp.cos[disp.order], np.eye(3))
    fig = Figure(figsize=(9, 4), layout="constrained")
    disp.plot(fig)
    save_png(fig, tmp_path / "sae.png")
    assert (tmp_path / "sae.png").stat().st_size > 10_000
    with pytest.raises(ToylabError, match="dictionary"):
        DictionaryRecoveryDisplay.from_result(res, dictionary=5)
