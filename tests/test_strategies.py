"""The public hypothesis strategies generate valid objects."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toylab import ToylabError
from toylab.distributions import GaussianMixture, ModularArithmetic
from toylab.models import MLP, activations
from toylab.neurons import NeuronId, resolve
from toylab.testing.strategies import distributions, networks, neurons, points

FAST = settings(max_examples=25, deadline=None, database=None)


@FAST
@given(distributions())
def test_distributions_are_valid_mixtures(dist):
    assert isinstance(dist, GaussianMixture) and dist.dim == 2
    w = np.asarray(dist.weights)
    assert (w > 0).all() and abs(w.sum() - 1) < 1e-9
    for cov in np.asarray(dist.covs):
        assert np.linalg.eigvalsh(cov).min() > 0
    assert sorted(set(dist.classes)) == list(range(dist.num_classes))
    x = dist.sample_numpy(np.random.default_rng(0), 64)  # (dist.sample compiles per object)
    assert x.shape == (64, 2) and np.isfinite(dist.log_prob(x)).all()


@settings(max_examples=10, deadline=None, database=None)
@given(distributions(dim=3, max_components=2))
def test_distributions_in_other_dimensions(dist):
    assert dist.dim == 3 and dist.num_components <= 2


@settings(max_examples=8, deadline=None, database=None)
@given(networks(max_width=3, max_depth=2), st.data())
def test_networks_are_mlps_equal_to_from_weights(model, data):
    assert isinstance(model, MLP)
    widths = model.widths_in_order
    assert widths[0] == 2 and widths[-1] == 2 and 1 <= len(widths) - 2 <= 2
    assert all(1 <= w <= 3 for w in widths[1:-1])
    assert model.activation in ("relu", "leaky_relu", "abs", "hardtanh", "tanh")
    net = model.to_network()
    layers, acts = net.dense_layers(), net.hidden_activations
    ref = MLP.from_weights([w for w, _ in layers], [b for _, b in layers], acts[0])
    x = data.draw(
        st.lists(points(__import__("toylab").distributions.two_blobs()), min_size=4, max_size=4)
    )  # fmt: skip  (one input shape: no recompiles)
    x = np.stack(x).astype(np.float32)
    got, want = activations(model, x), activations(ref, x)
    assert set(got) == set(want)
    for k in got:
        np.testing.assert_allclose(np.asarray(got[k]), np.asarray(want[k]), rtol=1e-6, atol=1e-6)


def test_networks_include_degenerate_weights():
    seen = set()

    @settings(max_examples=60, deadline=None, database=None)
    @given(networks(activations=("relu",), max_width=3, max_depth=1))
    def collect(model):
        W, b = model.to_network().dense_layers()[0]
        if (np.abs(W).max(0) == 0).any():
            seen.add("zero column")
        if W.shape[1] > 1 and any(np.array_equal(W[:, i], W[:, j]) and b[i] == b[j]
                                  for i in range(W.shape[1]) for j in range(i)):  # fmt: skip
            seen.add("duplicate")

    collect()
    assert seen == {"zero column", "duplicate"}


@FAST
@given(st.data())
def test_points_lie_in_their_domain(data):
    dist = data.draw(distributions())
    x = data.draw(points(dist))
    assert x.shape == (2,) and dist.domain.contains(x)
    mod = ModularArithmetic(p=5)
    y = data.draw(points(mod.domain))
    assert any(np.array_equal(y, row) for row in np.asarray(mod.domain.inputs))


@FAST
@given(st.data())
def test_neurons_are_canonical_addresses_of_the_model(data):
    model = data.draw(networks(max_width=3))
    address = data.draw(neurons(model))
    nid = resolve(address, model.widths)
    assert str(NeuronId.parse(address)) == address and nid.layer.startswith("hidden_")
    assert not nid.pre
    pre = data.draw(neurons(model, layers=["output"]))
    assert pre.startswith("output:")


def test_strategy_arguments_are_validated():
    with pytest.raises(ToylabError, match="activations must be names"):
        networks(activations=("rlu",))
    with pytest.raises(ToylabError, match="max_width must be"):
        networks(max_width=0)
    with pytest.raises(ToylabError, match="dim must be"):
        distributions(dim=0)
    with pytest.raises(ToylabError, match="domain must be"):
        points(3)
