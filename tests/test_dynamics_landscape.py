"""The loss landscape (toylab.dynamics.loss_landscape) against independent references."""

import types

import jax
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from toylab import ToylabError
from toylab.distributions import BooleanFunction, ModularArithmetic, blobs_on_circle
from toylab.dynamics import landscape, mode_connectivity, outlier_count
from toylab.exact import analyze
from toylab.models import ModelConfig
from toylab.train import TrainConfig, init_ensemble, train


def _source(dist, hidden, activation="tanh", seeds=(0,), **train_kw):
    """A landscape source at initialisation (no training: only the parameters matter)."""
    cfg = TrainConfig(num_steps=10, **train_kw)
    ensemble, state = init_ensemble(dist, ModelConfig(hidden=hidden, activation=activation), cfg,
                                    seeds)  # fmt: skip
    return types.SimpleNamespace(ensemble=ensemble, checkpoints={0: state.params})


def _member_layers(params, m):
    """Member ``m``'s (kernel, bias) pairs in float64, read from the NNX state by name."""
    layers = params["layers"]
    return [
        (np.asarray(layers[i]["kernel"][...], np.float64)[m],
         np.asarray(layers[i]["bias"][...], np.float64)[m])
        for i in sorted(layers)
    ]  # fmt: skip


def _flat_map(params, m):
    """``theta -> [(W, b), ...]`` for member ``m``'s flat parameter vector (the layout of
    ``ravel_pytree``, which the landscape documents), by plain indexing."""
    one = jax.tree.map(lambda a: np.asarray(a, np.float64)[m], params)
    theta, unravel = ravel_pytree(one)
    with jax.enable_x64(True):
        probe = unravel(np.arange(len(theta), dtype=np.float64))
    pos = [
        (w.astype(int), b.astype(int))
        for w, b in _member_layers(jax.tree.map(lambda a: np.asarray(a)[None], probe), 0)
    ]

    def layers(t):
        return [(t[w], t[b]) for w, b in pos]

    return np.asarray(theta, np.float64), layers


def _ce(logits, y, w):
    z = logits - logits.max(1, keepdims=True)
    lse = np.log(np.exp(z).sum(1)) + logits.max(1)
    return float(np.sum(w * (lse - logits[np.arange(len(y)), y])))


BOOL = BooleanFunction(3, "majority")


@pytest.fixture(scope="module")
def bool_source():
    # data="full": each member trains on half of the 8 inputs (the training loss is theirs)
    return _source(BOOL, (3,), seeds=(0, 1), data="full", train_fraction=0.5)


def test_hessian_equals_second_differences_of_the_loss(bool_source):
    # an independent float64 NumPy loss of a tanh MLP on the whole Boolean domain,
    # differentiated twice by central differences
    dist, src = BOOL, bool_source
    res = landscape(src, on="population", k=2)
    assert res.tier == "exact" and res.num_params == 3 * 3 + 3 + 3 * 2 + 2
    theta, layers = _flat_map(src.checkpoints[0], 0)
    d = dist.domain
    x, y, w = np.asarray(d.inputs, np.float64), np.asarray(d.labels), np.asarray(d.probs)

    def loss(t):
        (w0, b0), (w1, b1) = layers(t)
        return _ce(np.tanh(x @ w0 + b0) @ w1 + b1, y, w / w.sum())

    h, n = 1e-4, len(theta)
    eye = np.eye(n) * h
    ref = np.zeros((n, n))
    for i in range(n):
        for j in range(i, n):
            ref[i, j] = ref[j, i] = (
                loss(theta + eye[i] + eye[j]) - loss(theta + eye[i] - eye[j])
                - loss(theta - eye[i] + eye[j]) + loss(theta - eye[i] - eye[j])
            ) / (4 * h * h)  # fmt: skip
    # truncation O(h^2 |d4 L|) ~ 1e-8 and rounding eps |L| / h^2 ~ 1e-8: 1e-6 is far above both
    ref_evals = np.sort(np.linalg.eigvalsh(ref))[::-1]
    np.testing.assert_allclose(res.eigenvalues[0, 0], ref_evals, rtol=0, atol=1e-6)
    assert res.loss[0, 0] == pytest.approx(loss(theta), abs=1e-12)
    v = res.top_vectors[0, 0]  # eigenvectors of the reference with the same eigenvalues
    np.testing.assert_allclose(np.diag(v.T @ ref @ v), ref_evals[:2], rtol=0, atol=1e-6)


def test_training_loss_is_the_members_training_subset(bool_source):
    src = bool_source
    res = landscape(src)  # on="train": each member's own subset of the domain
    assert res.tier == "exact" and "training subset" in res.data
    d = BOOL.domain
    x, y = np.asarray(d.inputs, np.float64), np.asarray(d.labels)
    for m in range(2):
        mask = np.asarray(src.ensemble.train_data)[m].astype(np.float64)
        (w0, b0), (w1, b1) = _member_layers(src.checkpoints[0], m)
        ref = _ce(np.tanh(x @ w0 + b0) @ w1 + b1, y, mask / mask.sum())
        assert res.loss[m, 0] == pytest.approx(ref, rel=1e-12)  # float64 both ways


def test_softmax_regression_hessian_is_the_closed_form_with_weight_decay():
    # no hidden layer: H = sum_n w_n (diag p_n - p_n p_n^T) ⊗ [x_n; 1][x_n; 1]^T + lambda I
    dist = ModularArithmetic(p=3)
    wd = 0.05
    src = _source(dist, (), optimizer="sgd", weight_decay=wd)
    res = landscape(src, on="population", k=3)
    theta, layers = _flat_map(src.checkpoints[0], 0)
    ((W, b),) = layers(theta)
    d = dist.domain
    # (the labels do not enter: the Hessian of cross-entropy in the logits is diag p - pp^T)
    x, w = np.asarray(d.inputs, np.float64), np.asarray(d.probs)
    w = w / w.sum()
    z = x @ W + b
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    xt = np.concatenate([x, np.ones((len(x), 1))], 1)  # rows: the kernel's inputs, then bias
    block = sum(
        wn * np.kron(xn[:, None] * xn[None], np.diag(pn) - np.outer(pn, pn))
        for wn, xn, pn in zip(w, xt, p, strict=True)
    )  # index (i, c) = i * C + c: kernel[i, c] for i < d, bias[c] for i = d
    # the same matrix in the flat layout: position of every (i, c) in theta
    w_idx, b_idx = layers(np.arange(len(theta), dtype=np.float64))[0]
    pos = np.concatenate([w_idx, b_idx[None]]).astype(int)  # (d + 1, C) flat positions
    perm = pos.ravel()
    ref = np.zeros((len(theta), len(theta)))
    ref[np.ix_(perm, perm)] = block
    ref += float(np.float32(wd)) * np.eye(len(theta))  # hyperparameters are float32 arrays
    np.testing.assert_allclose(
        res.eigenvalues[0, 0], np.sort(np.linalg.eigvalsh(ref))[::-1], rtol=0, atol=1e-12
    )  # float64 rounding of sums of 9 terms and two eigh
    assert res.weight_decay[0] == pytest.approx(wd)
    assert res.top_vectors.shape == (1, 1, len(theta), 3)


def test_overlap_is_a_fraction_and_one_for_the_whole_space(bool_source):
    src = bool_source
    part = landscape(src, on="population")
    res_loss = landscape(src).loss[0, 0]
    full = landscape(src, on="population", k=part.num_params)
    assert np.all((part.gradient_overlap >= 0) & (part.gradient_overlap <= 1))
    # P_k = I: ||g||^2 / ||g||^2 up to rounding
    np.testing.assert_allclose(full.gradient_overlap, 1.0, atol=1e-12)
    assert np.all(full.subspace_error == 0)
    # neuron shares: 3 hidden neurons, 3 weights + 1 bias each, of the whole space: 4 / P
    assert full.neurons == tuple(f"hidden_0:{j}" for j in range(3))
    np.testing.assert_allclose(full.neuron_share, 4 / full.num_params, atol=1e-12)
    np.testing.assert_allclose(full.neuron_projection, 1.0, atol=1e-12)
    # mistakes name the argument and what it must be
    with pytest.raises(ToylabError, match="on must be one of"):
        landscape(src, on="populaton")
    with pytest.raises(ToylabError, match="dtype must be one of"):
        landscape(src, dtype="float16")
    with pytest.raises(ToylabError, match="steps must be values from"):
        landscape(src, steps=[5])
    with pytest.raises(ToylabError, match="k must be"):
        landscape(src, on="population", k=full.num_params + 1)
    nan = jax.tree.map(lambda a: np.where(np.arange(len(a)).reshape(-1, *[1] * (a.ndim - 1)) == 1,
                                          np.nan, np.asarray(a)), src.checkpoints[0])  # fmt: skip
    diverged = types.SimpleNamespace(ensemble=src.ensemble, checkpoints={0: nan})
    with pytest.raises(ToylabError, match=r"members \[1\] have non-finite parameters"):
        landscape(diverged)
    assert landscape(diverged, members=[0]).loss[0, 0] == res_loss


def test_vmap_and_sequential_programs_agree(bool_source):
    # the CPU maps members with lax.map, an accelerator with vmap: the same numbers
    import importlib

    mod = importlib.import_module("toylab.dynamics.loss_landscape")
    ens = bool_source.ensemble
    data = mod._data_for("t", ens, np.arange(2), "population", 64, 0)
    outs = []
    with jax.enable_x64(True):
        params = mod._cast(bool_source.checkpoints[0], np.float64)
        for seq in (False, True):
            res = mod._spectra_program(mod._spec(ens, data, seq), params, data.x, data.y,
                                       np.asarray(data.w), np.zeros(2), {})  # fmt: skip
            outs.append(np.asarray(res["evals"]))
    np.testing.assert_allclose(outs[0], outs[1], rtol=0, atol=1e-13)  # float64 rounding


def test_outlier_rule():
    assert outlier_count([10.0, 9.0, 8.0, 0.1, 0.09]) == (3, pytest.approx(80.0))
    # searching only the top 2: log 9 - log 8 > log 10 - log 9
    assert outlier_count([10.0, 9.0, 8.0, 0.1, 0.09], max_outliers=2)[0] == 2
    assert outlier_count([0.0, 0.0, -1.0]) == (0, 1.0)
    with pytest.raises(ToylabError, match="eigenvalues"):
        outlier_count([1.0])


@pytest.fixture(scope="module")
def mixture_run():
    dist = blobs_on_circle(4, labels="distinct", scale=0.6)
    cfg = TrainConfig(num_steps=300, learning_rate=0.02, checkpoints=[30], log_every=300)
    return dist, train(dist, ModelConfig(hidden=(8,)), cfg, seeds=(0, 1))


def test_outliers_near_the_number_of_classes_after_training(mixture_run):
    _, run = mixture_run
    res = landscape(run, on="population", num_samples=2048, steps=[300])
    assert res.tier == "sampled" and res.k == 4
    # Papyan / Gur-Ari et al.: about C outliers (C - 1 to C + 1 for C = 4 classes: the
    # cross-entropy's per-example curvature has rank C - 1, and small nets blur the edge)
    assert np.all(np.abs(res.num_outliers[:, -1] - 4) <= 1), res.num_outliers
    assert np.all(res.eigenvalue_error > 0) and np.all(res.loss_error > 0)
    # the figures draw what the result holds
    from toylab.viz.landscape import GradientOverlapDisplay, HessianSpectrumDisplay

    disp = HessianSpectrumDisplay.from_result(res, member=1).plot()
    outliers = [ln for ln in disp.ax_.get_lines() if ln.get_label() == "outliers"][0]
    assert len(outliers.get_xdata()) == res.num_outliers[1, -1]
    over = GradientOverlapDisplay.from_result(res).plot()
    assert len(over.ax_.get_lines()) == 2
    with pytest.raises(ToylabError, match="member must be"):
        HessianSpectrumDisplay.from_result(res, member=5)


def test_mode_connectivity_endpoints_are_the_models(mixture_run):
    dist, run = mixture_run
    path = mode_connectivity(run, 0, 1, num_points=5, num_samples=1024)
    batch = dist.sample(jax.random.key(0), 1024)  # the documented sample: key 0
    x, y = np.asarray(batch.x), np.asarray(batch.y)
    for i, m in ((0, 0), (-1, 1)):
        model = run.model(m)
        logits = np.asarray(model(x), np.float64)
        # float32 forward pass of the model vs the float64 path: 1e-5 relative
        assert path.loss[i] == pytest.approx(_ce(logits, y, np.full(len(y), 1 / len(y))), rel=1e-5)
        assert path.accuracy[i] == pytest.approx(analyze(model, dist).accuracy, abs=1e-9)
    assert path.accuracy_tier in ("exact", "estimated") and path.tier == "sampled"
    assert path.barrier >= 0 and path.barrier_tier == "sampled"
    from toylab.viz.landscape import ModeConnectivityDisplay

    disp = ModeConnectivityDisplay.from_path(path).plot()
    np.testing.assert_array_equal(disp.ax2_.get_lines()[0].get_ydata(), path.accuracy)
    # two checkpoints of one member; on="train" is refused between members with their own data
    again = mode_connectivity(run, (0, 30), (0, 300), num_points=5, num_samples=1024,
                              exact_accuracy=False)  # fmt: skip
    assert again.loss[-1] == pytest.approx(path.loss[0], rel=1e-12)
    with pytest.raises(ToylabError, match="member"):
        mode_connectivity(run, 0, 7)
