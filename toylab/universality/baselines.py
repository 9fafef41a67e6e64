r"""Chance-level networks for universality scores: random initialisations and layer shuffles.

A similarity score between trained networks means little on its own: two networks
drawn at initialisation already share units by chance (a 2-D input has few directions),
and any network's units correlate with something. The scores of
:func:`toylab.universality.match_ensemble` are therefore reported beside the same
scores for two kinds of chance networks, matched against the same trained reference:

* **random initialisation** (:func:`init_networks`): the same architecture drawn by
  the functional initialiser :func:`toylab.models.init.init_params` with the run's
  ``[model] init`` settings (:class:`toylab.models.init.InitConfig`) and keys that
  differ from the training keys -- what the units would be with no training at all;
* **layer shuffle** (:func:`shuffle_layers`): each layer's trained kernel entries
  permuted uniformly among themselves, and its biases among themselves (as in the
  clusterability baselines of Filan et al.), so the weight distribution of every layer
  is kept and its structure destroyed.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import numpy as np

from toylab._errors import fail
from toylab.network import Network, as_network

__all__ = ["default_model_config", "init_networks", "shuffle_layers"]


def default_model_config(net: Network, dist: Any, where: str = "default_model_config") -> Any:
    """The :class:`toylab.models.ModelConfig` an MLP like ``net`` was built from, with the
    default initialiser settings (for networks that come without a run's config)."""
    from toylab.models import ModelConfig

    acts = set(net.hidden_activations)
    if len(acts) != 1 or net.input_dim != getattr(dist, "dim", None):
        raise fail(
            where, "model_config", None,
            "a toylab.models.ModelConfig saying how these networks were initialised",
            f"The networks ({net!r}) are not an MLP with one hidden activation on "
            f"{type(dist).__name__}'s inputs, so the initialiser cannot be guessed.",
        )  # fmt: skip
    hidden = tuple(net.widths[f"hidden_{k}"] for k in range(net.num_hidden))
    return ModelConfig(kind="mlp", hidden=hidden, activation=acts.pop())


@functools.partial(jax.jit, static_argnums=(0, 1))
def _draw(model_config: Any, dist: Any, keys: jax.Array) -> Any:
    from toylab.models.init import init_params

    return init_params(model_config, dist, keys)[1]


def init_networks(model_config: Any, dist: Any, key: jax.Array, num: int) -> list[Network]:
    """``num`` float64 networks at initialisation: :func:`toylab.models.init.init_params`
    with ``model_config`` (its ``init`` settings included) and ``num`` keys split from
    ``key``; member ``m`` is bit-identical to ``build_model(model_config, dist, keys[m])``."""
    from flax import nnx

    from toylab._compile_cache import use_unrolled_threefry
    from toylab.models.init import abstract_model, init_params

    use_unrolled_threefry()  # as training does: the rolled threefry compiles for seconds
    graphdef, _ = abstract_model(model_config, dist)
    # one compiled program draws every member (eager vmap would compile op by op); jit's
    # own cache reuses it for equal (hashable) configs and distributions
    keys = jax.random.split(key, num)
    try:
        params = _draw(model_config, dist, keys)
    except TypeError:  # an unhashable distribution: compile for this call only
        params = jax.jit(lambda k: init_params(model_config, dist, k)[1])(keys)
    host = jax.tree.map(np.asarray, params)
    out = []
    for m in range(num):
        model = nnx.merge(graphdef, jax.tree.map(lambda a, m=m: a[m], host))
        out.append(as_network(model, "init_networks").numpy(np.float64))
    return out


def shuffle_layers(model: Any, key: jax.Array) -> Network:
    """``model`` (float64) with every layer's kernel entries permuted uniformly at random
    among themselves and its biases among themselves (one permutation per layer, drawn by
    a NumPy generator seeded with ``key``'s data); activations and shapes unchanged."""
    net = as_network(model, "shuffle_layers").untied().numpy(np.float64)
    layers = []
    rng = np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel())
    for w, b in net.dense_layers(np.float64):
        pw, pb = rng.permutation(w.size), rng.permutation(b.size)
        layers.append((w.reshape(-1)[pw].reshape(w.shape), b[pb]))
    return Network.from_weights(
        [w for w, _ in layers], [b for _, b in layers], tuple(net.activations[:-1]),
        output_activation=net.output_activation, dtype=np.float64,
    )  # fmt: skip
