"""A pure functional initialiser for whole ensembles.

Building an NNX module runs its initialisers one module at a time; under ``jax.vmap``
over 1024 members that took 5-10 s. Here the parameter structure is built once,
abstractly (``nnx.eval_shape``: nothing runs), and every leaf is drawn for all
members at once by one small compiled program::

    params[m][leaf] = init_leaf(fold_in(key[m], counter_leaf), shape_leaf, dtype)

with exactly the initialisers and key schedule of the NNX constructors, so member
``m`` gets **bit-identical** parameters to ``build_model(config, dist, key[m])``
(``tests/test_models_init.py`` checks this for every model kind):

* ``mlp`` / ``onehot_mlp`` (``nnx.Linear`` layers): layer ``k`` draws its kernel
  from ``lecun_normal`` (truncated normal, variance ``1/fan_in``) with counter
  ``2k`` and sets its bias to zero (counter ``2k + 1``, as ``nnx.Rngs`` counts it);
* ``superposition_*``: ``W`` from ``xavier_normal`` (variance
  ``2/(fan_in + fan_out)``) with counter 0, ``b`` zero (counter 1).

The counters are those of an ``nnx.Rngs(params=key)`` stream, which hands out
``fold_in(key, n)`` for its ``n``-th request.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from toylab._errors import fail

__all__ = ["abstract_model", "init_params"]

_LECUN = nnx.initializers.lecun_normal()
_XAVIER = nnx.initializers.xavier_normal()
_ZEROS = nnx.initializers.zeros_init()


def abstract_model(config: Any, dist: Any) -> tuple[Any, Any]:
    """``(graphdef, params)`` of the model ``config`` builds for ``dist``; the parameters
    are ``jax.ShapeDtypeStruct`` leaves (nothing is initialised or compiled)."""
    from toylab.models import build_model

    model = nnx.eval_shape(lambda: build_model(config, dist, jax.random.key(0)))
    graphdef, params = nnx.split(model, nnx.Param)
    return graphdef, params


def _leaf_rule(kind: str, path: tuple[Any, ...]) -> tuple[int, Any]:
    """``(counter, initializer)`` of the parameter at ``path`` (names without ``.value``)."""
    names = tuple(getattr(p, "key", getattr(p, "name", p)) for p in path)
    names = tuple(n for n in names if n != "value")
    if kind in ("mlp", "onehot_mlp") and len(names) == 3 and names[0] == "layers":
        k, leaf = int(names[1]), names[2]
        if leaf == "kernel":
            return 2 * k, _LECUN
        if leaf == "bias":
            return 2 * k + 1, _ZEROS
    if kind.startswith("superposition") and names in (("W",), ("b",)):
        return (0, _XAVIER) if names == ("W",) else (1, _ZEROS)
    raise fail(
        "init_params", "model", f"{kind} with a parameter at {'.'.join(map(str, names))}",
        "a model whose parameters follow toylab's initialisation schedule",
        "Add its (counter, initializer) rule to toylab.models.init._leaf_rule.",
    )  # fmt: skip


def _init_one(kind: str, abstract: Any, key: jax.Array) -> Any:
    def leaf(path: tuple[Any, ...], sds: jax.ShapeDtypeStruct) -> jax.Array:
        counter, init = _leaf_rule(kind, path)
        if init is _ZEROS:  # needs no key: skip the fold_in
            return jnp.zeros(sds.shape, sds.dtype)
        return init(jax.random.fold_in(key, counter), sds.shape, sds.dtype)

    return jax.tree_util.tree_map_with_path(leaf, abstract)


def init_params(config: Any, dist: Any, keys: jax.Array) -> tuple[Any, Any]:
    """``(graphdef, params)``: parameters of ``len(keys)`` members stacked on a leading axis.

    ``params`` has the structure of ``nnx.split(build_model(config, dist, key), nnx.Param)[1]``
    with a leading member axis; member ``m`` equals ``build_model(config, dist, keys[m])``'s
    parameters bit for bit. Traceable: call it under ``jax.jit`` (as
    :func:`toylab.train.init_ensemble` does) to draw every member in one program.
    """
    graphdef, abstract = abstract_model(config, dist)
    params = jax.vmap(lambda k: _init_one(config.kind, abstract, k))(keys)
    return graphdef, params
