"""Handwritten circuits: every claim verified exactly; checks that can fail."""

import math

import jax.numpy as jnp
import numpy as np
import pytest

from toylab import ToylabError
from toylab.circuits import (
    Circuit,
    blob_detector,
    fisher_discriminant,
    majority,
    modular_addition,
    parity,
    polygon_detector,
    ring_detector,
    xor_circuit,
)
from toylab.distributions import GaussianMixture, two_blobs, xor_blobs
from toylab.exact import analyze, finite_table
from toylab.models import MLP, from_network, with_weights
from toylab.network import Network

SKEWED = GaussianMixture(
    ((0.0, 1.0), (1.5, -0.5)), (((1.0, 0.3), (0.3, 0.5)),) * 2, (0.3, 0.7), (1, 0)
)

CIRCUITS = [
    lambda: fisher_discriminant(two_blobs(3.0)),
    lambda: fisher_discriminant(SKEWED),
    lambda: xor_circuit(xor_blobs()),
    lambda: xor_circuit(xor_blobs(1.5, 0.8), activation="relu"),
    lambda: ring_detector(2.0, 8),
    lambda: ring_detector(1.0, 5),
    lambda: blob_detector(SKEWED, 1, k_sigma=2.0, num_sides=7),
    lambda: parity(5),
    lambda: majority(6),
    lambda: majority(5),
    *[lambda p=p: modular_addition(p) for p in (5, 7, 11, 13, 23)],
    lambda: modular_addition(13, [3]),
]


@pytest.mark.parametrize("make", CIRCUITS)
def test_every_circuit_claim_holds_exactly(make):
    circ = make()
    res = circ.verify()
    assert res.passed, res
    assert res.tier == "exact"
    # every named neuron resolves to its address
    for address, (name, meaning) in circ.meanings.items():
        assert circ.neuron_named(name) == address and meaning


def test_fisher_equals_bayes_and_a_shifted_threshold_does_not():
    circ = fisher_discriminant(SKEWED)
    res = circ.verify()
    assert res.numbers["gap"] <= 1e-12
    # moving the threshold by 0.2 costs accuracy: the check can fail
    b = circ.model.dense_layers()[0][1]
    shifted = with_weights(circ.model, 0, b=b + np.array([0.2, -0.2]))
    worse = Circuit("shifted", shifted, {}, circ.claim, circ.dist, circ.check)
    bad = worse.verify()
    assert not bad.passed and bad.numbers["gap"] > 1e-6


def test_xor_closed_form_accuracy():
    a, s = 1.5, 0.8
    res = xor_circuit(xor_blobs(a, s)).verify()
    from scipy.special import ndtr

    # independent closed form; the analysis states its own rounding bound (about 1e-13)
    closed = ndtr(a / s) ** 2 + ndtr(-a / s) ** 2
    assert abs(res.numbers["accuracy"] - closed) <= res.numbers["allowed_gap"] <= 1e-12


def test_ring_detector_error_follows_the_closed_form_in_k():
    r = 1.5
    for k in (3, 6, 12, 24):
        nums = ring_detector(r, k).verify().numbers
        # the fired region's exact area (from the partition) vs the closed form: float64
        # weights and vertices, so the shoelace sums agree to rounding (measured <= 4e-15)
        assert abs(nums["active_area"] - 0.5 * k * r * r * math.sin(2 * math.pi / k)) < 1e-12
        gap = math.pi * r * r - nums["active_area"]
        if k >= 12:  # leading order 2 pi^3 r^2 / (3 k^2), next term O(k^-4)
            assert abs(gap * k * k / (2 * math.pi**3 * r * r / 3) - 1) < 0.5 / k
    # a detector that is off by a shifted bias fails its check
    circ = ring_detector(r, 6)
    layers = circ.model.dense_layers()
    bad_model = with_weights(circ.model, 0, b=layers[0][1] + 0.05)
    assert not Circuit("bad", bad_model, {}, "", None, circ.check).verify().passed
    # the float64 check resolves a shift of 1e-9 r that the old float32 tolerance (1e-5 r)
    # could not see
    tiny = with_weights(circ.model, 0, b=layers[0][1] + 1e-9 * r)
    assert not Circuit("tiny", tiny, {}, "", None, circ.check).verify().passed


@pytest.mark.parametrize("radius", [1e-6, 1.0, 1e5])
def test_ring_detector_holds_at_extreme_scales(radius):
    """The 1e-12 relative tolerances are relative: they hold for tiny and huge discs."""
    for k in (3, 17, 64):
        res = ring_detector(radius, k).verify()
        assert res.passed, res.numbers
        assert res.numbers["max_vertex_distance"] <= 1e-13 * radius  # measured <= 4e-14 r


def test_blob_detector_masses():
    from scipy.integrate import quad

    k, m = 2.0, 7
    nums = blob_detector(SKEWED, 1, k_sigma=k, num_sides=m).verify().numbers
    assert abs(nums["ellipse_mass"] - (1 - math.exp(-k * k / 2))) < 1e-15
    # independent 1-D check of the polygon's mass in whitened coordinates:
    # P(y in regular m-gon of circumradius k) = (m / pi) int_0^{pi/m} 1 - exp(-(a sec t)^2 / 2) dt
    a = k * math.cos(math.pi / m)
    val, _ = quad(lambda t: 1 - math.exp(-((a / math.cos(t)) ** 2) / 2), 0, math.pi / m,
                  epsabs=1e-14, epsrel=1e-13)  # fmt: skip
    assert abs(nums["polygon_mass"] - m / math.pi * val) < 1e-10
    assert abs(nums["active_mass"] - nums["polygon_mass"]) <= nums["mass_tolerance"] <= 1e-10
    assert 0 < nums["approximation_gap"] < 0.1
    # a blob detector for the other component fails this component's check
    other = blob_detector(SKEWED, 0, k_sigma=k, num_sides=m)
    circ = blob_detector(SKEWED, 1, k_sigma=k, num_sides=m)
    assert not Circuit("other", other.model, {}, "", SKEWED, circ.check).verify().passed


def test_finite_circuits_margins_and_a_broken_one_fails():
    res = parity(6).verify()
    assert res.numbers["min_margin"] == 1.0  # integer weights: exact in float64
    circ = modular_addition(11)
    # the logits are sums of 30 float64 products of cosines: error <= 30 eps per term
    assert circ.verify().numbers["min_margin"] == pytest.approx(11 / 2, abs=1e-12)
    # shifting the readout by one class (c -> c + 1) breaks it: the check sees it
    layers = circ.model.dense_layers()
    broken = with_weights(circ.model, 1, W=np.roll(layers[1][0], 1, axis=1))
    table = finite_table(broken, circ.dist)
    bad = Circuit("broken", broken, {}, "", circ.dist, circ.check).verify()
    assert not bad.passed and table.accuracy == 0.0


def test_circuit_api_errors():
    circ = parity(3)
    with pytest.raises(ToylabError, match="Did you mean"):
        circ.neuron_named("count_above_O")
    with pytest.raises(ToylabError, match="unique"):
        Circuit("dup", circ.model, {"hidden_0:0": ("x", "a"), "hidden_0:1": ("x", "b")}, "")
    with pytest.raises(ToylabError, match="hidden_0"):
        Circuit("bad", circ.model, {"hidden_7:0": ("x", "a")}, "")
    with pytest.raises(ToylabError, match="no check"):
        Circuit("nocheck", circ.model, {}, "").verify()


def test_circuits_are_float64_networks_and_become_models_on_request():
    x = np.random.default_rng(0).normal(size=(50, 2))
    for circ in (xor_circuit(xor_blobs()), ring_detector(1.0, 5), modular_addition(5)):
        assert isinstance(circ.model, Network) and circ.model.dtype == np.float64
    circ = xor_circuit(xor_blobs(), activation="relu")
    assert "hidden_0" in analyze(circ.model, xor_blobs()).moments
    model = from_network(circ.model)  # an NNX model for training or transplanting
    assert isinstance(model, MLP) and model.layers[0].kernel[...].dtype == jnp.float64
    np.testing.assert_array_equal(np.asarray(model.to_network().numpy()(x)), circ.model(x))
    # the weights are the closed form, rounded once to float64
    w0 = circ.model.dense_layers()[0][0]
    np.testing.assert_array_equal(w0, [[1, -1, 1, -1], [1, -1, -1, 1]])
    # a model passed to Circuit is stored as its network value, in its own dtype
    as_model = Circuit("m", MLP.from_weights([np.eye(2), np.eye(2)]), {}, "")
    assert isinstance(as_model.model, Network) and as_model.model.dtype == np.float32
    with pytest.raises(ToylabError, match="Network.from_weights"):
        Circuit("bad", "not a network", {}, "")


def test_polygon_detector_validates_its_inputs():
    net, meanings = polygon_detector([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]], [1.0, 1.0, 1.0])
    assert isinstance(net, Network) and "hidden_2:0" in meanings
    with pytest.raises(ToylabError, match="normals"):
        polygon_detector([1.0, 0.0], [1.0])
    with pytest.raises(ToylabError, match="offsets"):
        polygon_detector([[1.0, 0.0]], [1.0, 2.0])
    with pytest.raises(ToylabError, match="inside_class"):
        polygon_detector([[1.0, 0.0]], [1.0], inside_class=2)
    with pytest.raises(TypeError):
        polygon_detector([[1.0, 0.0]], [1.0], name="unused")  # the dead parameter is gone
