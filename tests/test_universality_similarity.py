"""Representation similarity: invariances, exact vs enumeration and vs sampling.

References are independent of the code under test: the sample-space (Gram matrix) form
of CKA and HSIC, ``tr(K H L H)``; canonical correlations from QR factors (Björck and
Golub: the singular values of ``Q_x^T Q_y``); Procrustes from
:func:`scipy.linalg.orthogonal_procrustes`; duplicated rows for weighted
distributions; the networks' own forward passes on every input of a finite task.
"""

import jax
import numpy as np
import pytest
from scipy.linalg import orthogonal_procrustes
from scipy.spatial.distance import cdist
from scipy.stats import ortho_group

from toylab import NotApplicable, ToylabError
from toylab.distributions import BooleanFunction, Rings, two_blobs
from toylab.network import Network
from toylab.universality import (
    MEASURES,
    canonical_correlations,
    cca,
    covariances,
    linear_cka,
    procrustes,
    rbf_cka,
    representation_similarity,
    similarity_matrix,
    svcca,
)

RNG = np.random.default_rng(0)
X = RNG.normal(size=(300, 5)) @ RNG.normal(size=(5, 5))
Y = np.tanh(X @ RNG.normal(size=(5, 4)) + 0.3 * RNG.normal(size=(300, 4)))


def _net(seed, widths):
    rng = np.random.default_rng(seed)
    dims = zip(widths[:-1], widths[1:], strict=True)
    ws = [rng.normal(size=(m, n)) * np.sqrt(2 / m) for m, n in dims]
    bs = [0.3 * rng.normal(size=n) for n in widths[1:]]
    return Network.from_weights(ws, bs, "relu")


# --------------------------------------------------------------------------- references


def _gram_cka(a, b):
    """Kornblith et al.'s sample form: HSIC(K, L) = tr(K H L H) with linear kernels."""
    return _gram_kernel_cka(a @ a.T, b @ b.T)


def _gram_kernel_cka(k, lm):
    n = k.shape[0]
    h = np.eye(n) - 1.0 / n
    kc, lc = h @ k @ h, h @ lm @ h
    return np.sum(kc * lc) / np.sqrt(np.sum(kc * kc) * np.sum(lc * lc))


def _rbf_reference(a, b, beta=1.0):
    def kernel(z):
        zc = z - z.mean(0)
        sigma2 = beta**2 * np.mean(np.sum(zc**2, 1))  # β² tr Σ
        return np.exp(-cdist(z, z, "sqeuclidean") / (2 * sigma2))

    return _gram_kernel_cka(kernel(a), kernel(b))


def _qr_cca(a, b):
    qa = np.linalg.qr(a - a.mean(0))[0]
    qb = np.linalg.qr(b - b.mean(0))[0]
    return np.linalg.svd(qa.T @ qb, compute_uv=False)


def _scipy_procrustes(a, b):
    ac, bc = a - a.mean(0), b - b.mean(0)
    ac, bc = ac / np.linalg.norm(ac), bc / np.linalg.norm(bc)
    d = max(ac.shape[1], bc.shape[1])
    ac = np.pad(ac, ((0, 0), (0, d - ac.shape[1])))
    bc = np.pad(bc, ((0, 0), (0, d - bc.shape[1])))
    r, _ = orthogonal_procrustes(bc, ac)
    return np.sum((ac - bc @ r) ** 2)


def _measures(a, b):
    c = covariances(a, b)
    return {
        "linear_cka": linear_cka(*c),
        "cca": cca(*c),
        "svcca": svcca(*c, keep=0.99),
        "procrustes": procrustes(*c),
        "rbf_cka": rbf_cka(a, b),
    }


# --------------------------------------------------------------------------- pure functions


def test_pure_measures_match_independent_references():
    # tolerance 1e-10: the same quantities in float64 by different algebra
    v = _measures(X, Y)
    assert v["linear_cka"] == pytest.approx(_gram_cka(X - X.mean(0), Y - Y.mean(0)), abs=1e-10)
    assert v["cca"] == pytest.approx(_qr_cca(X, Y).mean(), abs=1e-10)
    np.testing.assert_allclose(canonical_correlations(*covariances(X, Y)), _qr_cca(X, Y),
                               atol=1e-10)  # fmt: skip
    assert v["procrustes"] == pytest.approx(_scipy_procrustes(X, Y), abs=1e-10)
    assert v["rbf_cka"] == pytest.approx(_rbf_reference(X, Y), abs=1e-10)


def test_weighted_rows_are_duplicated_rows():
    # probabilities 1/6, 2/6, 3/6 over row blocks = a sample with those rows repeated
    a, b = X[:30], Y[:30]
    counts = np.repeat([1, 2, 3], 10)
    p = counts / counts.sum()
    ad, bd = np.repeat(a, counts, 0), np.repeat(b, counts, 0)
    for got, ref in [
        (linear_cka(*covariances(a, b, p)), _gram_cka(ad - ad.mean(0), bd - bd.mean(0))),
        (rbf_cka(a, b, p, chunk_size=7), _rbf_reference(ad, bd)),
        (procrustes(*covariances(a, b, p)), _scipy_procrustes(ad, bd)),
    ]:
        assert got == pytest.approx(ref, abs=1e-10)


def test_invariances_on_representation_matrices():
    q = ortho_group.rvs(5, random_state=1)
    m = np.random.default_rng(2).normal(size=(5, 5))  # a generic invertible linear map
    assert abs(np.linalg.det(m)) > 0.1
    base = _measures(X, Y)
    rotated = _measures(3.7 * X @ q + 1.5, Y)  # orthogonal + isotropic scaling + shift
    linear = _measures(X @ m, Y)
    # orthogonal maps and isotropic scaling: CKA (linear, RBF), SVCCA, Procrustes, CCA
    for name in MEASURES:
        assert rotated[name] == pytest.approx(base[name], abs=1e-9), name
    # invertible linear maps: CCA yes; CKA and Procrustes no (they change by far more than
    # rounding: the map is far from orthogonal)
    assert linear["cca"] == pytest.approx(base["cca"], abs=1e-9)
    assert abs(linear["linear_cka"] - base["linear_cka"]) > 1e-2
    assert abs(linear["procrustes"] - base["procrustes"]) > 1e-2
    assert abs(linear["rbf_cka"] - base["rbf_cka"]) > 1e-2


def test_identical_and_degenerate_representations():
    c = covariances(X, X)
    assert linear_cka(*c) == pytest.approx(1.0, abs=1e-12)
    assert cca(*c) == pytest.approx(1.0, abs=1e-9)
    assert procrustes(*c) == pytest.approx(0.0, abs=1e-9)
    # a duplicated column (rank deficient) and a constant one (dead): CCA's cut drops them
    x_def = np.hstack([X, X[:, :1] * 2.0, np.ones((len(X), 1))])
    assert cca(*covariances(x_def, Y)) == pytest.approx(cca(*covariances(X, Y)), abs=1e-7)
    dead = np.ones((len(X), 3))
    assert np.isnan(linear_cka(*covariances(dead, Y)))
    assert np.isnan(cca(*covariances(dead, Y)))
    with pytest.raises(ToylabError, match="cov_ab"):
        linear_cka(np.eye(2), np.eye(3), np.eye(2))


# --------------------------------------------------------------------------- exact moments


def test_finite_task_matches_direct_enumeration():
    dist = BooleanFunction(n=4)
    na, nb = _net(0, (4, 6, 5, 2)), _net(1, (4, 7, 2))
    x = np.asarray(dist.domain.inputs, np.float64)
    a, b = na.forward(x)["hidden_1"], nb.forward(x)["hidden_0"]
    res = representation_similarity(na, nb, dist, layer_a="hidden_1", layer_b="hidden_0",
                                    measures=MEASURES)  # fmt: skip
    assert res.tier == "exact" and res.num_samples == 0
    live = a.std(0) > 0
    refs = {
        "linear_cka": _gram_cka(a - a.mean(0), b - b.mean(0)),
        "cca": _qr_cca(a[:, live], b).mean(),
        "procrustes": _scipy_procrustes(a, b),
        "rbf_cka": _rbf_reference(a, b),
    }
    for name, ref in refs.items():
        v = res.measures[name]
        assert v.tier == "exact"
        # the stated error bounds the difference (plus 1e-9 for the reference's own rounding)
        assert abs(v.value - ref) <= v.error + 1e-9, name


def test_permuted_copy_has_cka_one_on_two_blobs():
    net = _net(3, (2, 8, 6, 2))
    perm = np.random.default_rng(4).permutation(8)
    (w0, b0), (w1, b1), out = net.dense_layers()
    copy = Network.from_layers([(w0[:, perm], b0[perm]), (w1[perm], b1), out], ["relu", "relu"])
    for layer in ("hidden_0", "hidden_1"):
        res = representation_similarity(net, copy, two_blobs(), layer_a=layer)
        assert res.tier == "exact"
        assert abs(res["linear_cka"] - 1.0) <= res.measures["linear_cka"].error
        assert abs(res["procrustes"]) <= res.measures["procrustes"].error
        # CCA: dead units are cut; every live direction is matched with itself
        assert abs(res["cca"] - 1.0) <= res.measures["cca"].error + 1e-9


def test_exact_agrees_with_sampling_on_two_blobs():
    dist = two_blobs()
    na, nb = _net(5, (2, 8, 8, 2)), _net(6, (2, 8, 8, 2))
    kw = dict(layer_a="hidden_0", layer_b="hidden_1")
    exact = representation_similarity(na, nb, dist, **kw)
    assert exact.tier == "exact" and exact.error < 1e-3
    # a 99.9% interval per measure: the four checks fail by chance with probability < 0.4%
    mc = representation_similarity(na, nb, dist, method="sampled", key=jax.random.key(0),
                                   num_samples=20000, confidence=0.999, **kw)  # fmt: skip
    assert mc.tier == "sampled" and mc.num_samples == 20000
    for name, v in mc.measures.items():
        lo, hi = v.interval
        assert lo <= v.value <= hi
        assert abs(v.value - exact[name]) <= v.error, (name, v, exact[name])


def test_dead_units_and_dead_layers():
    net = _net(7, (2, 6, 2))
    (w0, b0), out = net.dense_layers()
    w_dead, b_dead = w0.copy(), b0.copy()
    w_dead[:, 2], b_dead[2] = 0.0, -1.0  # unit 2 never fires
    keep = [0, 1, 3, 4, 5]
    with_dead = Network.from_layers([(w_dead, b_dead), out], ["relu"])
    without = Network.from_layers([(w0[:, keep], b0[keep]), (out[0][keep], out[1])], ["relu"])
    other = _net(8, (2, 5, 2))
    dist = two_blobs()
    r1 = representation_similarity(with_dead, other, dist, measures=("linear_cka", "cca"))
    r2 = representation_similarity(without, other, dist, measures=("linear_cka", "cca"))
    for name in ("linear_cka", "cca"):
        assert r1[name] == pytest.approx(r2[name], abs=r1.measures[name].error + 1e-9)
    w_all = np.zeros_like(w0)
    all_dead = Network.from_layers([(w_all, -np.ones(6)), out], ["relu"])
    r3 = representation_similarity(all_dead, other, dist)
    assert all(np.isnan(v.value) for v in r3.measures.values())
    assert "no variance" in r3.measures["linear_cka"].method


class _FakeRun:
    """The part of toylab.runs.Run that similarity_matrix reads."""

    def __init__(self, nets, dist):
        self._nets, self.dist, self.num_members = nets, dist, len(nets)

    def models(self):
        return list(self._nets)


def test_similarity_matrix_matches_pairs():
    dist = BooleanFunction(n=4)
    nets = [_net(s, (4, 6, 2)) for s in range(4)]
    m = similarity_matrix(nets, dist, "hidden_0")
    assert m.values.shape == (4, 4) and m.tier == "exact"
    np.testing.assert_allclose(m.values, m.values.T)
    np.testing.assert_allclose(np.diag(m.values), 1.0, atol=1e-12)
    x = np.asarray(dist.domain.inputs, np.float64)
    reps = [n.forward(x)["hidden_0"] for n in nets]
    for i in range(4):
        for j in range(4):
            ref = _gram_cka(reps[i] - reps[i].mean(0), reps[j] - reps[j].mean(0))
            assert abs(m.values[i, j] - ref) <= m.errors[i, j] + 1e-12
    # a run (anything with models(), num_members and dist) gives the same matrix
    run = _FakeRun(nets, dist)
    np.testing.assert_array_equal(similarity_matrix(run, layer="hidden_0").values, m.values)
    ref_row = similarity_matrix(nets, dist, "hidden_0", measure="cca", reference=2)
    assert ref_row.values.shape == (4,)
    for j in range(4):
        pair = representation_similarity(nets[2], nets[j], dist, measures=("cca",))
        assert ref_row.values[j] == pytest.approx(pair["cca"], abs=1e-12)
    # the plane: one joint analysis per pair, the same numbers as pairwise calls
    plane = [_net(s, (2, 5, 2)) for s in range(3)]
    row = similarity_matrix(plane, two_blobs(), "hidden_0", reference=0)
    pair = representation_similarity(plane[0], plane[2], two_blobs())
    assert row.values[2] == pytest.approx(pair["linear_cka"], abs=1e-12)
    assert len(row.off_diagonal()) == 2


def test_no_exact_moments_needs_samples():
    dist = two_blobs(dim=3)
    na, nb = _net(0, (3, 5, 2)), _net(1, (3, 5, 2))
    with pytest.raises(NotApplicable, match="num_samples"):
        representation_similarity(na, nb, dist)
    res = representation_similarity(na, nb, dist, key=jax.random.key(1), num_samples=500,
                                    num_bootstrap=50)  # fmt: skip
    assert res.tier == "sampled" and 0 < res.measures["linear_cka"].error < 0.5
    with pytest.raises(ToylabError, match="layer_a"):
        representation_similarity(na, nb, dist, layer_a="hidden_3")
    with pytest.raises(ToylabError, match="measures"):
        representation_similarity(na, nb, dist, measures=("cka",))


def test_quadrature_densities_are_estimated():
    dist = Rings(radii=(1.0, 2.5), widths=(0.3, 0.3))
    na, nb = _net(9, (2, 4, 2)), _net(10, (2, 4, 2))
    res = representation_similarity(na, nb, dist, measures=("linear_cka",))
    v = res.measures["linear_cka"]
    assert res.tier == "estimated" and v.tier == "estimated" and 0 < v.error < 1e-3
    # a 99.9% bootstrap interval from an independent sample: fails by chance < 0.1%
    mc = representation_similarity(na, nb, dist, measures=("linear_cka",), method="sampled",
                                   key=jax.random.key(2), num_samples=3000, num_bootstrap=100,
                                   confidence=0.999)  # fmt: skip
    assert abs(mc["linear_cka"] - v.value) <= mc.measures["linear_cka"].error + v.error
