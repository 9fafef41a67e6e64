"""The functional initialiser: every member at once, bit-identical to building each model."""

import jax
import numpy as np
import pytest
from flax import nnx

from toylab.distributions import make
from toylab.models import ModelConfig, build_model
from toylab.models.init import abstract_model, init_params

CASES = [
    (ModelConfig(hidden=(5, 3)), make("two_blobs")),
    (ModelConfig(kind="onehot_mlp", hidden=(4,)), make("modular_arithmetic", p=5)),
    (
        ModelConfig(kind="superposition_linear", hidden=(2,)),
        make("sparse_features", probs=[0.1] * 4),
    ),
    (ModelConfig(kind="superposition_relu", hidden=(3,)), make("sparse_features", probs=[0.2] * 5)),
    (
        ModelConfig(kind="conv", conv=({"channels": 2, "kernel": 3},), hidden=(3,)),
        make("curve_images", size=6, length=3.0),
    ),
]


@pytest.mark.parametrize("config, dist", CASES, ids=lambda c: getattr(c, "kind", ""))
def test_init_params_equals_the_nnx_constructors_bit_for_bit(config, dist):
    """Reference: the NNX module built on its own from each member's key (flax's Linear
    defaults lecun_normal/zeros, xavier_normal for the superposition models)."""
    keys = jax.vmap(jax.random.key)(np.array([3, 2**32 - 1], np.uint32))
    graphdef, params = jax.jit(lambda k: init_params(config, dist, k))(keys)
    for m, seed in enumerate([3, 2**32 - 1]):
        ref_graph, ref = nnx.split(build_model(config, dist, jax.random.key(seed)), nnx.Param)
        got = jax.tree.map(lambda a, m=m: a[m], params)
        assert jax.tree.structure(got) == jax.tree.structure(ref)
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(ref), strict=True):
            np.testing.assert_array_equal(a, b)
    assert graphdef == ref_graph
    # the abstract structure runs nothing and has the same shapes
    _, abstract = abstract_model(config, dist)
    shapes = [(a.shape, a.dtype) for a in jax.tree.leaves(abstract)]
    assert shapes == [(a.shape[1:], a.dtype) for a in jax.tree.leaves(params)]
