"""The joint and difference networks, the distance's error and tier, and matching's flags.

References are independent of the code under test: closed forms for affine and
single-ReLU differences, the two networks' own forward passes for the difference
network, exact integrals over a deliberately small box for the truncation bound, Monte
Carlo for quadrature densities.
"""

import jax
import numpy as np
import pytest
from scipy.special import ndtr

import toylab.exact.analysis
from toylab import NotApplicable, ToylabError
from toylab.circuits import (
    align,
    difference_network,
    functional_distance,
    joint_network,
    match_neurons,
    modular_addition,
    train_from_circuit,
    transplant,
    xor_circuit,
)
from toylab.distributions import GaussianMixture, Rings, xor_blobs
from toylab.distributions.base import Box
from toylab.exact import (
    IntegrationDomain,
    neuron_moments,
    partition,
    region_moments,
    truncation_bounds,
)
from toylab.models import MLP
from toylab.network import Network

DIST = xor_blobs(1.5, 0.8)
ANISO = GaussianMixture(
    means=((-1.0, 0.5), (1.5, -0.5), (0.0, 2.0)),
    covs=(((0.6, 0.25), (0.25, 0.4)), ((0.3, -0.1), (-0.1, 0.8)), ((0.5, 0.0), (0.0, 0.2))),
    weights=(0.3, 0.5, 0.2),
    classes=(0, 1, 0),
)


def _net(seed, widths, act="relu", output_activation="identity"):
    rng = np.random.default_rng(seed)
    ws = [rng.normal(size=(m, n)) for m, n in zip(widths[:-1], widths[1:], strict=True)]
    bs = [0.5 * rng.normal(size=n) for n in widths[1:]]
    return Network.from_weights(ws, bs, act, output_activation=output_activation)


# --------------------------------------------------------------------------- construction


@pytest.mark.parametrize(
    "wa, wb, act, neurons",
    [
        ((2, 5, 3), (2, 4, 6, 3), "relu", None),  # padding: relu(h) = h
        ((2, 5, 3), (2, 4, 6, 3), "leaky_relu", None),  # padding: two units per unit
        ((2, 5, 3), (2, 4, 6, 3), "relu", {"hidden_0:2": "hidden_1:5", "hidden_0:0": "hidden_1:1"}),
        ((2, 5, 3), (2, 4, 6, 3), "relu", {"hidden_0.pre:1": "hidden_1.pre:0"}),
        ((2, 5, 3), (2, 4, 6, 3), "abs", {"hidden_0:1": "hidden_1:0", "hidden_0:4": "hidden_1:5"}),
        ((2, 5, 3), (2, 4, 3), "relu", {"output:2": "hidden_0:3"}),
        ((3, 4, 4, 2), (3, 4, 2), "identity", {"hidden_1:3": "output:0"}),
    ],
)
def test_difference_network_computes_the_pair_differences(wa, wb, act, neurons):
    a, b = _net(0, wa, act), _net(1, wb, act)
    diff = difference_network(a, b, neurons)
    pairs = neurons or {f"output:{i}": f"output:{i}" for i in range(wa[-1])}
    x = np.random.default_rng(2).normal(size=(200, wa[0])) * 3
    va, vb = a.forward(x), b.forward(x)
    want = np.stack([a.values(x, na) - b.values(x, nb) for na, nb in pairs.items()], axis=1)
    assert diff.dtype == np.float64 and diff.output_activation == "identity"
    # the same float64 arithmetic composed differently (and the leaky pad's 1/(1+s)):
    # a few eps per layer of the values' magnitude
    scale = max(np.abs(v).max() for v in (*va.values(), *vb.values()))
    np.testing.assert_allclose(diff(x), want, rtol=0, atol=1e-12 * scale)


def test_difference_network_of_a_relu_output_and_its_errors():
    a = _net(3, (2, 4, 3), "relu", output_activation="relu")
    b = _net(4, (2, 4, 3), "relu", output_activation="relu")
    x = np.random.default_rng(0).normal(size=(100, 2))
    for key in ("output", "output.pre"):
        diff = difference_network(a, b, {f"{key}:1": f"{key}:2"})
        want = a.values(x, f"{key}:1") - b.values(x, f"{key}:2")
        np.testing.assert_allclose(diff(x)[:, 0], want, atol=1e-12)
    with pytest.raises(ToylabError, match="one layer key"):
        difference_network(a, b, {"output:0": "output:0", "hidden_0:0": "hidden_0:0"})
    with pytest.raises(ToylabError, match="'a' or 'b'"):
        joint_network(a, b).column("c", "output:0")
    tanh = _net(5, (2, 3, 3), "tanh")
    with pytest.raises(ToylabError, match="hidden layer 0 uses 'relu'"):
        joint_network(_net(6, (2, 3, 3)), tanh)
    with pytest.raises(ToylabError, match="cannot pad"):
        joint_network(tanh, _net(7, (2, 3, 3, 3), "tanh"))
    with pytest.raises(ToylabError, match="inputs"):
        joint_network(_net(8, (3, 2, 2)), _net(9, (2, 2, 2)))


def test_joint_network_holds_both_networks():
    a = MLP.from_weights([np.ones((2, 3)), np.ones((3, 2))])  # float32 model: cast exactly
    b = _net(1, (2, 4, 5, 2))
    joint = joint_network(a, b)
    assert isinstance(joint.network, Network) and joint.network.dtype == np.float64
    x = np.random.default_rng(0).normal(size=(50, 2))
    vj = joint.network.forward(x)
    for side, net in (("a", a.to_network().numpy(np.float64)), ("b", b)):
        own = net.forward(x)
        for key in own:
            if key == "input":
                continue
            for unit in range(own[key].shape[1]):
                jkey, col = joint.column(side, f"{key}:{unit}")
                np.testing.assert_allclose(vj[jkey][:, col], own[key][:, unit], atol=1e-12)


# --------------------------------------------------------------------------- exact values


def _mixture_second_moments(dist):
    """``E[x]`` and ``E[x x^T]`` of a Gaussian mixture, in closed form."""
    means, covs, weights, _ = dist.arrays()
    m1 = weights @ means
    m2 = np.einsum("k,kij->ij", weights, covs + np.einsum("ki,kj->kij", means, means))
    return m1, m2


def test_affine_difference_against_the_closed_form():
    """Identity activations: d(x) = g.x + c, so E[d^2] = g'E[xx']g + 2c g.E[x] + c^2 and the
    sup over the box is at a corner."""
    a, b = _net(0, (2, 3, 2), "identity"), _net(1, (2, 5, 4, 2), "identity")
    res = functional_distance(a, b, ANISO)
    (wa, ca) = _collapse(a)
    (wb, cb) = _collapse(b)
    g, c = wa - wb, ca - cb
    m1, m2 = _mixture_second_moments(ANISO)
    want = np.einsum("ij,ik,kj->j", g, m2, g) + 2 * c * (m1 @ g) + c**2
    assert res.tier == "exact"
    np.testing.assert_allclose(res.mean_square, want, rtol=1e-12)
    assert np.all(np.abs(res.mean_square - want) <= res.error)
    box = ANISO.domain
    corners = np.array(
        [[x, y] for x in (box.low[0], box.high[0]) for y in (box.low[1], box.high[1])]
    )
    np.testing.assert_allclose(res.sup, np.abs(corners @ g + c).max(0), rtol=1e-12)


def _collapse(net):
    """An affine network as one ``(W, b)``."""
    w, b = np.eye(net.input_dim), np.zeros(net.input_dim)
    for wk, bk in net.dense_layers():
        w, b = w @ wk, b @ wk + bk
    return w, b


def test_single_relu_unit_against_the_gaussian_closed_form():
    """d = relu(w.x + b) - 0: per component u = w.x + b ~ N(m, s^2) and
    E[relu(u)^2] = (m^2 + s^2) Phi(m/s) + m s phi(m/s)."""
    w, bias = np.array([0.7, -1.3]), 0.4
    a = Network.from_weights([w[:, None], np.ones((1, 1))], [[bias], [0.0]])
    zero = Network.from_weights([np.zeros((2, 1)), np.zeros((1, 1))])
    res = functional_distance(a, zero, ANISO, neurons={"hidden_0:0": "hidden_0:0"})
    means, covs, weights, _ = ANISO.arrays()
    m = means @ w + bias
    s = np.sqrt(np.einsum("i,kij,j->k", w, covs, w))
    z = m / s
    want = weights @ ((m**2 + s**2) * ndtr(z) + m * s * np.exp(-(z**2) / 2) / np.sqrt(2 * np.pi))
    assert abs(res.mean_square[0] - want) <= max(res.error, 1e-14)
    assert abs(res.mean_square[0] - want) <= 1e-12 * want


# --------------------------------------------------------------------------- truncation (B2, B3)


def _small_domain(dist, half):
    """The box ``[-half, half]^2`` as an integration domain, with the union bound on the
    mass each component puts outside it (computed here, independently)."""
    low, high = -half * np.ones(2), half * np.ones(2)
    means, covs, weights, _ = dist.arrays()
    sd = np.sqrt(np.diagonal(covs, axis1=1, axis2=2))
    comp = np.minimum(np.sum(ndtr(-(means - low) / sd) + ndtr(-(high - means) / sd), axis=1), 1.0)
    poly = Box(tuple(low), tuple(high)).polygon()
    return IntegrationDomain(low, high, poly, float(weights @ comp), "certified", comp)


def _inside(net, dist, domain):
    """``E[d^2 1_box]`` for every output of ``net``: exact integrals over the small box."""
    part = partition(net, domain.polygon)
    m0, m1, m2, _ = region_moments(dist, part.polygons).total()
    return np.diag(neuron_moments(m0, m1, m2, part.maps["output"]).second_moment)


@pytest.mark.parametrize("half", [0.8, 1.5, 2.5])
def test_truncation_bound_of_the_difference_network_covers_a_small_box(half):
    """Shrink the integration box: what it leaves out of E[d^2] is then the difference of
    two exact integrals, and the certified bound must cover it (so it cannot be 0)."""
    a, b = _net(0, (2, 6, 3)), _net(1, (2, 4, 5, 3))
    diff = difference_network(a, b)
    full = functional_distance(a, b, ANISO)
    small = _small_domain(ANISO, half)
    left_out = full.mean_square - _inside(diff, ANISO, small)
    assert np.all(left_out > 1e3 * full.error)  # a real test: much is left out
    _, second = truncation_bounds(diff, ANISO, small)["output"]
    assert np.all(second >= left_out - full.error), (second, left_out)


@pytest.mark.parametrize("half", [1.0, 2.0])
def test_distance_error_and_tier_include_the_truncation(monkeypatch, half):
    """functional_distance folds the truncation into error and tier: integrate over a small
    box (by handing analyze a small integration domain) and the reported error must cover
    the left-out part, for every group of pairs, and the tier must drop to certified."""
    a, b = _net(2, (2, 5, 2)), _net(3, (2, 4, 3, 2))
    neurons = {"output:0": "output:1", "hidden_0:1": "hidden_1:2", "hidden_0:3": "hidden_1:0"}
    full = functional_distance(a, b, ANISO, neurons=neurons)
    small = _small_domain(ANISO, half)
    monkeypatch.setattr(toylab.exact.analysis, "integration_domain", lambda dist, **kw: small)
    cut = functional_distance(a, b, ANISO, neurons=neurons)
    left_out = full.mean_square - cut.mean_square
    assert np.all(left_out > 1e3 * full.error)
    assert cut.tier == "certified" and full.tier == "exact"
    assert np.all(cut.error >= left_out - full.error), (cut.errors, left_out)
    assert cut.errors["truncation"] > full.errors["truncation"] > 0
    # the sup runs over the domain box, which did not change
    np.testing.assert_allclose(cut.sup, full.sup, rtol=1e-12)


def test_quadrature_densities_are_estimated_and_agree_with_a_fine_grid():
    dist = Rings(radii=(0.5, 1.5), widths=(0.15, 0.15))
    a, b = _net(4, (2, 4, 2)), _net(5, (2, 3, 2))
    res = functional_distance(a, b, dist, rtol=1e-7)
    assert res.tier == "estimated" and res.errors["truncation"] > 0
    # reference: the midpoint rule on a 500 x 500 grid of the domain box, from the density
    # alone. It converges like h (the rings' density has a 1/r singularity at the origin):
    # measured relative errors 1.4e-6, 7e-7, 3e-7 at n = 500, 1000, 2000.
    n = 500
    lo, hi = np.asarray(dist.domain.low), np.asarray(dist.domain.high)
    h = (hi - lo) / n
    axes = [lo[i] + h[i] * (np.arange(n) + 0.5) for i in range(2)]
    g = np.stack(np.meshgrid(*axes), -1).reshape(-1, 2)
    p = np.exp(np.logaddexp.reduce(dist.class_log_joint(g), axis=-1))
    ref = (p[:, None] * (a(g) - b(g)) ** 2).sum(0) * h.prod()
    np.testing.assert_allclose(res.mean_square, ref, rtol=1e-5)


def test_no_exact_method_says_what_to_do():
    eye = tuple(map(tuple, np.eye(3)))
    three_d = GaussianMixture(((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)), (eye, eye))
    a = _net(6, (3, 2, 2))
    with pytest.raises(NotApplicable, match="dimension 3"):
        functional_distance(a, a, three_d)
    with pytest.raises(ToylabError, match="num_samples"):
        functional_distance(a, a, three_d, num_samples=1, key=jax.random.key(0))


# --------------------------------------------------------------------------- matching


def test_matching_flags_dead_and_duplicate_units():
    # units: relu(x1), relu(-x1 - 100) (dead on the data), 3 relu(x1) (a duplicate of
    # unit 0), relu(x2), relu(0 x + 2) = 2 (constant)
    w0 = np.array([[1.0, -1.0, 3.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0, 0.0]])
    b0 = np.array([0.0, -100.0, 0.0, 0.0, 2.0])
    w1 = np.arange(10.0).reshape(5, 2)
    b = Network.from_weights([w0, w1], [b0, np.zeros(2)])
    perm = np.array([3, 0, 4, 1, 2])  # unit i of a is unit perm[i] of b
    a = Network.from_weights([w0[:, perm], w1[perm]], [b0[perm], np.zeros(2)])
    m = match_neurons(a, b, DIST, threshold=0.0)
    lm = m.layers[0]
    assert lm.dead_b == (1, 4) and lm.dead_a == (2, 3)
    assert lm.duplicates_b == ((0, 2),) and lm.duplicates_a == ((1, 4),)
    # dead units are never matched (not even with threshold 0) and correlate with nothing
    assert lm.perm[2] == -1 and lm.perm[3] == -1 and {1, 4} <= set(lm.unmatched_b)
    assert np.all(lm.correlation[[2, 3]] == 0) and np.all(lm.correlation[:, [1, 4]] == 0)
    # the live, distinct unit is matched exactly; duplicates match one of their group
    assert lm.perm[0] == 3 and lm.corr[0] == pytest.approx(1.0, abs=1e-12)
    assert {lm.perm[1], lm.perm[4]} == {0, 2}
    with pytest.raises(ToylabError, match="dead"):
        align(a, m)


def test_matching_on_a_finite_domain_recovers_a_rescaled_permutation():
    """Quadratic units: (s z)^2 = s^2 z^2, so unit i of the copy is s_i^2 times unit perm[i]
    of the circuit; the correlations are exact (enumeration) and so is the matching."""
    circ = modular_addition(7, [1, 3])
    (w0, b0), (w1, b1) = circ.model.dense_layers()
    rng = np.random.default_rng(0)
    perm = rng.permutation(w0.shape[1])
    s = rng.uniform(0.5, 2.0, w0.shape[1])
    copy = Network.from_weights(
        [w0[:, perm] * s, w1[perm] / s[:, None] ** 2], [b0[perm] * s, b1], "quadratic"
    )
    m = match_neurons(copy, circ.model, circ.dist)
    assert m.tier == "exact"
    np.testing.assert_array_equal(m.layers[0].perm, perm)
    np.testing.assert_allclose(m.layers[0].scale, s**2, rtol=1e-12)


def test_align_keeps_the_kind_and_dtype():
    b = _net(7, (2, 4, 2))
    (w0, b0), (w1, b1) = b.dense_layers()
    perm, s = np.array([2, 0, 3, 1]), np.array([0.5, 2.0, 1.5, 3.0])
    a32 = MLP.from_weights([w0[:, perm] * s, w1[perm] / s[:, None]], [b0[perm] * s, b1])
    m = match_neurons(a32, b, DIST)
    aligned = align(a32, m)
    assert isinstance(aligned, MLP) and aligned.layers[0].kernel[...].dtype == np.float32
    # float32 weights: the aligned ones equal b's to float32 rounding
    np.testing.assert_allclose(aligned.to_network().dense_layers()[0][0], w0, rtol=1e-6)
    net = align(a32.to_network().numpy(np.float64), m)
    assert isinstance(net, Network) and net.dtype == np.float64


# --------------------------------------------------------------------------- training


def test_train_from_circuit_and_transplant_on_networks():
    dist = xor_blobs(2.0, 1.0)
    circ = xor_circuit(dist, activation="relu")
    res = train_from_circuit(circ, dist, key=jax.random.key(0), num_steps=5, learning_rate=1e-3)
    # trained as a float32 NNX model, measured against the float64 circuit
    assert isinstance(res.model, MLP) and res.model.layers[0].kernel[...].dtype == np.float32
    assert 0 < res.relative_weight_distance < 0.05
    assert res.distance.tier in ("exact", "certified") and res.distance.max_l2 > 0
    assert abs(res.accuracy_before - dist.bayes().accuracy) < 1e-12
    # transplanting a circuit unit into a network keeps the network kind
    t = transplant(circ.model, circ.model, "hidden_0:1", "hidden_0:1", dist)
    assert isinstance(t.model, Network) and t.effect == 0.0
    with pytest.raises(ToylabError, match="first-layer unit"):
        transplant(circ.model, circ.model, "output:0", "hidden_0:1", dist)


def test_finite_distance_compares_any_depths_and_activations():
    """On a finite domain nothing is padded: a quadratic circuit against a deeper tanh
    network, checked against both networks evaluated on every input."""
    circ = modular_addition(5)
    rng = np.random.default_rng(0)
    deep = Network.from_weights(
        [rng.normal(size=(10, 6)), rng.normal(size=(6, 4)), rng.normal(size=(4, 5))],
        activation="tanh",
    )
    res = functional_distance(circ.model, deep, circ.dist, neurons={"output:1": "hidden_1:2"})
    x = np.asarray(circ.dist.domain.inputs, np.float64)
    d = circ.model.values(x, "output:1") - deep.values(x, "hidden_1:2")
    assert res.tier == "exact" and 0 < res.error < 1e-12
    assert abs(res.mean_square[0] - np.mean(d**2)) <= res.error  # uniform probabilities
    assert res.sup[0] == np.abs(d).max()
    np.testing.assert_array_equal(res.argsup[0], x[np.abs(d).argmax()])
