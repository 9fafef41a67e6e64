"""Clusterability: networks built to be modular, and built not to be.

References are hand constructions: block-diagonal weights, whose blocks are the
connected components of the weight graph (n-cut 0, the partition known), and the
n-cut of a given partition summed edge by edge in plain Python.
"""

import jax
import numpy as np
import pytest

from toylab import ToylabError
from toylab.network import Network
from toylab.universality import (
    clusterability,
    clusterability_ensemble,
    ncut,
    spectral_partition,
    weight_graph,
)

SIZES = (8, 16, 16, 8)


def _block_diagonal(seed, noise=0.0, blocks=4):
    rng = np.random.default_rng(seed)
    ws = []
    for m, n in zip(SIZES[:-1], SIZES[1:], strict=True):
        w = noise * rng.normal(size=(m, n))
        for b in range(blocks):
            rows = slice(b * m // blocks, (b + 1) * m // blocks)
            cols = slice(b * n // blocks, (b + 1) * n // blocks)
            w[rows, cols] = rng.normal(size=(m // blocks, n // blocks))
        ws.append(w)
    return Network.from_weights(ws)


def _dense(seed):
    rng = np.random.default_rng(seed)
    return Network.from_weights(
        [rng.normal(size=(m, n)) for m, n in zip(SIZES[:-1], SIZES[1:], strict=True)]
    )


def _block_of_node():
    """Block of every node of the block-diagonal network, in network order."""
    return np.concatenate([np.arange(n) * 4 // n for n in SIZES])


def _loop_ncut(adj, labels):
    total = 0.0
    for c in set(labels.tolist()) - {-1}:
        inside = [i for i in range(len(labels)) if labels[i] == c]
        cut = sum(adj[i, j] for i in inside for j in range(len(labels))
                  if labels[j] != c and labels[j] != -1)  # fmt: skip
        vol = sum(adj[i].sum() for i in inside)
        total += cut / vol if vol > 0 else 0.0
    return total


def test_weight_graph_and_ncut_by_hand():
    net = _dense(0)
    adj, sizes = weight_graph(net)
    assert sizes == SIZES and adj.shape == (48, 48)
    np.testing.assert_array_equal(adj, adj.T)
    w1 = net.dense_layers()[1][0]
    np.testing.assert_array_equal(adj[8:24, 24:40], np.abs(w1))
    assert adj[:8, 24:].sum() == 0  # only consecutive layers are joined
    labels = np.random.default_rng(1).integers(0, 4, size=48)
    # the same sums in a different order: 1e-12 relative
    assert ncut(adj, labels) == pytest.approx(_loop_ncut(adj, labels), rel=1e-12)


def test_modular_network_is_found_and_beats_the_baseline():
    res = clusterability(_block_diagonal(0), k=4, num_shuffles=30, num_init=4,
                         key=jax.random.key(0))  # fmt: skip
    # the four blocks are the graph's connected components: the partition is the blocks
    blocks = _block_of_node()
    for b in range(4):
        assert len(set(res.labels[blocks == b].tolist())) == 1
    assert len(set(res.labels.tolist())) == 4
    assert res.ncut == 0.0 and res.ncut_tier == "exact"
    assert res.tier == "sampled" and res.baseline.shape == (30,)
    # every shuffle mixes the blocks (a shuffle that keeps all 4 blocks apart has
    # probability far below 1e-30), so z is large and no shuffle is as low
    assert res.baseline.min() > 0.1
    assert res.z < -5 and res.percentile == 0.0
    lo, hi = res.percentile_interval
    assert lo == 0.0 and 0 < hi < 0.2
    # with weak connections between the blocks it is still clearly modular
    noisy = clusterability(_block_diagonal(1, noise=0.05), k=4, num_shuffles=30, num_init=4,
                           key=jax.random.key(1))  # fmt: skip
    assert noisy.ncut == pytest.approx(_loop_ncut(weight_graph(_block_diagonal(1, 0.05))[0],
                                                  noisy.labels), rel=1e-12)  # fmt: skip
    assert noisy.z < -5 and noisy.percentile == 0.0


def test_dense_random_network_is_not_modular():
    # iid weights: the network is itself a draw from the shuffle distribution, so its
    # percentile is uniform on [0, 1]; with this seed it is not in the extreme 2% and
    # |z| < 3 (chance of failing for a fresh seed: about 2%)
    res = clusterability(_dense(3), k=4, num_shuffles=30, num_init=4, key=jax.random.key(3))
    assert abs(res.z) < 3 and 0.02 <= res.percentile <= 0.98
    assert res.ncut > 1.0  # four clusters of a dense graph cut many edges


def test_spectral_partition_and_ensemble():
    adj, _ = weight_graph(_block_diagonal(2))
    labels = spectral_partition(adj, 4, key=jax.random.key(0))
    blocks = _block_of_node()
    # the same partition as the blocks, up to renaming
    pairs = set(zip(blocks.tolist(), labels.tolist(), strict=True))
    assert len(pairs) == 4
    # a node without edges (an input whose weights are all 0) is left out
    net = _block_diagonal(2)
    (w0, b0), *rest = net.dense_layers()
    w0 = w0.copy()
    w0[0] = 0.0
    cut = Network.from_layers([(w0, b0), *rest], ["relu", "relu"])
    res = clusterability(cut, k=4, num_shuffles=5, num_init=2, key=jax.random.key(0))
    assert res.labels[0] == -1
    many = clusterability_ensemble([_dense(0), _block_diagonal(0)], k=4, num_shuffles=5,
                                   num_init=2, key=jax.random.key(0))  # fmt: skip
    assert len(many) == 2 and many[1].ncut == 0.0
    with pytest.raises(ToylabError, match="k"):
        clusterability(_dense(0), k=100, key=jax.random.key(0))
    with pytest.raises(ToylabError, match="key"):
        clusterability(_dense(0), key=0)
