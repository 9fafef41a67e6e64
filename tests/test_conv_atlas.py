"""Pieces of the conv atlas against hand computations: the reads-from / writes-to links
(norms of kernel slices and read-out rows computed here from the raw arrays) and the
one-line description of conv blocks."""

import numpy as np
from flax import nnx

from toylab.models.conv import ConvNet, ConvSpec
from toylab.viz._conv_atlas import _links, describe_conv


def test_links_by_weight_norm():
    model = ConvNet((8, 8, 1), [ConvSpec(3, 3, pool="avg"), ConvSpec(2, 3, pool="avg")], (), 5,
                    rngs=nnx.Rngs(0))  # fmt: skip
    net = model.to_network().numpy(np.float64)
    K1 = np.asarray(net.layers[2].kernel)  # (3, 3, 3, 2)
    reads, writes = _links(net, "conv_0", 1)
    assert reads == []  # conv_0 reads pixels
    want = [np.sqrt(np.sum(K1[:, :, 1, d] ** 2)) for d in range(2)]
    assert [w["address"] for w in writes] == [f"conv_1:{d}" for d in np.argsort(want)[::-1]]
    assert np.allclose(sorted(w["norm"] for w in writes), sorted(want))
    reads, writes = _links(net, "conv_1", 0)
    want = [np.sqrt(np.sum(K1[:, :, c, 0] ** 2)) for c in range(3)]
    assert {r["address"]: r["norm"] for r in reads} == {f"conv_0:{c}": want[c] for c in range(3)}
    assert [r["norm"] for r in reads] == sorted(want, reverse=True)
    # the read-out sees the 2x2x2 pooled map flat (HWC): channel 0 is rows 0, 2, 4, 6
    W = np.asarray(net.layers[-1].arrays(net.layers)[0])
    want = np.sqrt((W[[0, 2, 4, 6], :] ** 2).sum(axis=0))
    assert {w["address"]: w["norm"] for w in writes} == pytest_approx(want)
    assert not any(w["page"] for w in writes)


def pytest_approx(want):
    import pytest

    return pytest.approx({f"output:{j}": float(v) for j, v in enumerate(want)}, rel=1e-12)


def test_describe_conv():
    specs = [ConvSpec(6, 5, pool="avg"), ConvSpec(4, (3, 1))]
    assert describe_conv(specs) == "6ch 5x5 avg2x2, 4ch 3x1"
