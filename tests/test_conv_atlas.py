"""The conv atlas's receptive-field sub-network is the same function of the pixels as the
network's channel (reference: the full network's own forward pass), and its family
renders exactly the family's pixels."""

import numpy as np
import pytest
from flax import nnx

from toylab.distributions import CurveImages
from toylab.models.conv import ConvNet, ConvSpec
from toylab.viz._conv_atlas import describe_conv, receptive_field


@pytest.mark.parametrize("pool", ["avg", "max"])
def test_receptive_field_is_the_channel(pool):
    family = CurveImages(size=12, length=9.0)
    model = ConvNet((12, 12, 1), [ConvSpec(3, 3, pool=pool), ConvSpec(2, 3)], (), 4,
                    rngs=nnx.Rngs(0))  # fmt: skip
    net = model.to_network().numpy(np.float64)
    rng = np.random.default_rng(1)
    p = family.param_low + rng.random((64, 4)) * (family.param_high - family.param_low)
    x = family.render(p)
    for address in ("conv_0:2", "conv_1:1", "conv_1:0@1,4"):
        sub, fam, addr = receptive_field(net, family, address)
        want = net.values(x, address)
        got = sub.values(fam.render(p), addr)
        # float64 sums of the same products in another order: rounding only
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
        if pool == "max" and address.startswith("conv_1"):
            assert sub is net  # not affine below the channel: bounded whole
        else:
            # by hand: a 3x3 kernel reads 3x3 pixels; conv_1 at (3, 3) of the 6x6 pooled
            # map reads pooled rows 2..4 = conv_0 rows 4..9 = pixel rows 3..10 (8x8); at
            # (1, 4): pooled rows 0..2, columns 3..5 = pixel rows 0..6, columns 5..11 (7x7)
            reads = {"conv_0:2": 9, "conv_1:1": 8 * 8, "conv_1:0@1,4": 7 * 7}
            assert sub.input_dim == reads[address]
            lo, hi = fam.render_bounds(family.param_low, family.param_high)
            flo, fhi = family.render_bounds(family.param_low, family.param_high)
            np.testing.assert_array_equal(lo, flo[fam.index])
            np.testing.assert_array_equal(hi, fhi[fam.index])


def test_describe_conv():
    specs = [ConvSpec(6, 5, pool="avg"), ConvSpec(4, (3, 1))]
    assert describe_conv(specs) == "6ch 5x5 avg2x2, 4ch 3x1"
