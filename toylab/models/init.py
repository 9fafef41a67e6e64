"""A pure functional initialiser for whole ensembles, and the initialiser settings.

Building an NNX module runs its initialisers one module at a time; under ``jax.vmap``
over 1024 members that took 5-10 s. Here the parameter structure is built once,
abstractly (``nnx.eval_shape``: nothing runs), and every leaf is drawn for all
members at once by one small compiled program::

    params[m][leaf] = scale[m] * init_leaf(fold_in(key[m], counter_leaf), shape_leaf, dtype)

with exactly the initialisers and key schedule of the NNX constructors, so member
``m`` gets **bit-identical** parameters to ``build_model(config, dist, key[m])``
(``tests/test_train_init.py`` checks this for every model kind):

* ``mlp`` / ``onehot_mlp`` (``nnx.Linear`` layers): layer ``k`` draws its kernel
  with counter ``2k`` and its bias with counter ``2k + 1`` (as ``nnx.Rngs`` counts it);
* ``conv`` (:class:`~toylab.models.conv.ConvNet`: its ``nnx.Conv`` blocks, then its
  ``nnx.Linear`` layers, in one list ``layers``): the same rule, module ``k`` of the
  list drawing kernel ``2k`` and bias ``2k + 1`` (``nnx.Conv`` draws its kernel's key
  first, then its bias's). A conv kernel ``(kh, kw, C_in, C_out)`` has the fans of
  flax's ``variance_scaling``: ``fan_in = kh kw C_in``, ``fan_out = kh kw C_out``;
* ``superposition_*``: ``W`` with counter 0, ``b`` with counter 1.

The counters are those of an ``nnx.Rngs(params=key)`` stream, which hands out
``fold_in(key, n)`` for its ``n``-th request.

**Initialiser settings** (:class:`InitConfig`, ``[model] init = {...}`` in a config):
the weights are ``weight_scale`` times a draw from ``weights``:

* ``"default"`` -- the model's own: ``lecun_normal`` for MLPs and conv nets,
  ``xavier_normal`` for the superposition models (flax's defaults);
* ``"lecun_normal"`` -- truncated normal with variance ``1/fan_in``; ``"he_normal"`` --
  truncated normal with variance ``2/fan_in``; ``"xavier_normal"`` -- normal with
  variance ``2/(fan_in + fan_out)``; ``"xavier_uniform"`` -- uniform with that variance
  (flax's ``variance_scaling`` initialisers, fans of the stored kernel);
* ``"normal"`` -- ``N(0, 1)``; ``"uniform"`` -- ``U(-1, 1)``; ``"zeros"``;

and the biases are ``bias_scale`` times ``biases``: ``"zeros"`` (the default; no key is
drawn), ``"normal"`` (``N(0, 1)``), ``"uniform"`` (``U(-1, 1)``) or ``"constant"`` (1,
so every bias equals ``bias_scale``). So ``weights = "normal", weight_scale = 0.1``
draws ``N(0, 0.01)`` weights. The scales are per-member arrays of the program, so a
sweep over ``model.init.weight_scale`` trains in one program.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
from flax import nnx

from toylab._errors import ToylabError, did_you_mean, fail

__all__ = ["BIAS_INITS", "WEIGHT_INITS", "InitConfig", "abstract_model", "init_params"]

_ZEROS = nnx.initializers.zeros_init()
_BASE: dict[str, Any] = {
    "lecun_normal": nnx.initializers.lecun_normal(),
    "he_normal": nnx.initializers.he_normal(),
    "xavier_normal": nnx.initializers.xavier_normal(),
    "xavier_uniform": nnx.initializers.xavier_uniform(),
    "normal": nnx.initializers.normal(1.0),
    "uniform": nnx.initializers.uniform(2.0),  # U[0, 2), shifted to U[-1, 1) below
    "zeros": _ZEROS,
    "constant": nnx.initializers.ones_init(),
}
WEIGHT_INITS = (
    "default", "lecun_normal", "he_normal", "xavier_normal", "xavier_uniform", "normal",
    "uniform", "zeros",
)  # fmt: skip
BIAS_INITS = ("zeros", "normal", "uniform", "constant")


def _finite(name: str, value: Any, nonneg: bool) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or value != value or abs(value) == float("inf") or (nonneg and value < 0):
        bound = "a finite number >= 0" if nonneg else "a finite number"
        raise ToylabError(f"[model] init.{name} must be {bound}, got {value!r}.")
    return float(value)


@dataclasses.dataclass(frozen=True)
class InitConfig:
    """How a model's parameters are initialised (see the module docstring)."""

    weights: str = "default"
    weight_scale: float = 1.0
    biases: str = "zeros"
    bias_scale: float = 1.0

    FIELDS: ClassVar[tuple[str, ...]] = ("weights", "weight_scale", "biases", "bias_scale")

    def __post_init__(self) -> None:
        for name, value, options in (
            ("weights", self.weights, WEIGHT_INITS),
            ("biases", self.biases, BIAS_INITS),
        ):
            if value not in options:
                raise ToylabError(
                    f"[model] init.{name} must be one of {list(options)}, got {value!r}."
                    + did_you_mean(str(value), options)
                )
        object.__setattr__(self, "weight_scale", _finite("weight_scale", self.weight_scale, True))
        object.__setattr__(self, "bias_scale", _finite("bias_scale", self.bias_scale, False))

    @classmethod
    def parse(cls, value: Any) -> InitConfig:
        """An :class:`InitConfig` from a config table (or itself)."""
        if isinstance(value, InitConfig):
            return value
        if not isinstance(value, dict):
            raise ToylabError(
                f"[model] init must be a table such as {{weights = 'normal', weight_scale = "
                f"0.1}}, got {value!r}."
            )
        for key in value:
            if key not in cls.FIELDS:
                raise ToylabError(
                    f"[model] init: unknown key {key!r}; valid keys are {list(cls.FIELDS)}."
                    + did_you_mean(str(key), cls.FIELDS)
                )
        return cls(**value)

    def weight_kind(self, model_kind: str) -> str:
        if self.weights != "default":
            return self.weights
        return "xavier_normal" if model_kind.startswith("superposition") else "lecun_normal"

    @property
    def is_default(self) -> bool:
        return self == InitConfig()

    def static(self) -> InitConfig:
        """These settings with the scales normalised: what a compiled initialiser depends
        on (the scales are arguments)."""
        return dataclasses.replace(self, weight_scale=1.0, bias_scale=1.0)


def _draw(kind: str) -> Callable[[Any, Any, Any], jax.Array]:
    base = _BASE[kind]
    if kind == "uniform":
        return lambda key, shape, dtype: base(key, shape, dtype) - jnp.ones((), dtype)
    return base


def initializer(init: InitConfig, model_kind: str, role: str, scale: Any = None) -> Any:
    """The flax-style initializer ``(key, shape, dtype) -> array`` of the ``role``
    (``"weights"`` or ``"biases"``) parameters; ``scale`` (default: the config's, may be
    traced) multiplies the draw. ``None`` for the NNX constructors' own default (what
    ``build_model`` then leaves alone)."""
    kind = init.weight_kind(model_kind) if role == "weights" else init.biases
    if scale is None:
        scale = init.weight_scale if role == "weights" else init.bias_scale
        if init.is_default:
            return None
    if kind == "zeros":
        return _ZEROS
    draw = _draw(kind)
    return lambda key, shape, dtype=jnp.float32: draw(key, shape, dtype) * jnp.asarray(scale, dtype)


def abstract_model(config: Any, dist: Any) -> tuple[Any, Any]:
    """``(graphdef, params)`` of the model ``config`` builds for ``dist``; the parameters
    are ``jax.ShapeDtypeStruct`` leaves (nothing is initialised or compiled). The
    initialiser settings do not change the structure: the graphdef is that of the
    default settings, so members with other settings share it."""
    config = dataclasses.replace(config, init=InitConfig())
    try:
        graphdef, params = _abstract_cached(config, dist)
    except TypeError:  # an unhashable distribution (traced fields): build it afresh
        graphdef, params = _abstract(config, dist)
    return graphdef, jax.tree.map(lambda x: x, params)  # a fresh State per caller


def _abstract(config: Any, dist: Any) -> tuple[Any, Any]:
    from toylab.models import build_model

    model = nnx.eval_shape(lambda: build_model(config, dist, jax.random.key(0)))
    return nnx.split(model, nnx.Param)


#: Tracing the NNX constructor costs ~0.05 s; :func:`init_ensemble` needs the structure
#: twice (the graphdef, then inside the initialiser's trace). Keyed by the (frozen,
#: hashable) configs' values; the leaves are shapes only.
_abstract_cached = functools.lru_cache(maxsize=16)(_abstract)


def _leaf_rule(kind: str, path: tuple[Any, ...]) -> tuple[int, str]:
    """``(counter, role)`` of the parameter at ``path`` (names without ``.value``)."""
    names = tuple(getattr(p, "key", getattr(p, "name", p)) for p in path)
    names = tuple(n for n in names if n != "value")
    if kind in ("mlp", "onehot_mlp", "conv") and len(names) == 3 and names[0] == "layers":
        k, leaf = int(names[1]), names[2]
        if leaf == "kernel":
            return 2 * k, "weights"
        if leaf == "bias":
            return 2 * k + 1, "biases"
    if kind.startswith("superposition") and names in (("W",), ("b",)):
        return (0, "weights") if names == ("W",) else (1, "biases")
    raise fail(
        "init_params", "model", f"{kind} with a parameter at {'.'.join(map(str, names))}",
        "a model whose parameters follow toylab's initialisation schedule",
        "Add its (counter, role) rule to toylab.models.init._leaf_rule.",
    )  # fmt: skip


def _init_one(config: Any, abstract: Any, key: jax.Array, scales: dict[str, Any]) -> Any:
    init = config.init

    def leaf(path: tuple[Any, ...], sds: jax.ShapeDtypeStruct) -> jax.Array:
        counter, role = _leaf_rule(config.kind, path)
        fn = initializer(init, config.kind, role, scales[role])
        if fn is _ZEROS:  # needs no key: skip the fold_in
            return jnp.zeros(sds.shape, sds.dtype)
        return fn(jax.random.fold_in(key, counter), sds.shape, sds.dtype)

    return jax.tree_util.tree_map_with_path(leaf, abstract)


def init_params(
    config: Any, dist: Any, keys: jax.Array, scales: dict[str, jax.Array] | None = None
) -> tuple[Any, Any]:
    """``(graphdef, params)``: parameters of ``len(keys)`` members stacked on a leading axis.

    ``params`` has the structure of ``nnx.split(build_model(config, dist, key), nnx.Param)[1]``
    with a leading member axis; member ``m`` equals ``build_model(config, dist, keys[m])``'s
    parameters bit for bit. ``scales`` (``{"weights": (M,), "biases": (M,)}``, default:
    the config's ``weight_scale`` and ``bias_scale`` for every member) are per-member
    scales of the draws. Traceable: call it under ``jax.jit`` (as
    :func:`toylab.train.init_ensemble` does) to draw every member in one program.
    """
    graphdef, abstract = abstract_model(config, dist)
    num = keys.shape[0]
    if scales is None:
        scales = {
            "weights": jnp.full((num,), config.init.weight_scale, jnp.float32),
            "biases": jnp.full((num,), config.init.bias_scale, jnp.float32),
        }
    params = jax.vmap(lambda k, s: _init_one(config, abstract, k, s))(keys, scales)
    return graphdef, params
