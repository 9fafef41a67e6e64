"""Functional ensemble training, in the style of optax.

One experiment trains ``num_members = len(seeds) * (sweep grid points)`` models of the
same shape in **one compiled program**. A sweep (:class:`toylab.train.SweepConfig`) may
vary any config field: optimizer hyperparameters, initialiser scales and numeric
distribution parameters become per-member arrays of that program (each member samples
its batches from, and is evaluated on, its own distribution:
:mod:`toylab.distributions.params`); values that change shapes split the members into
shape groups, one program each (:func:`init_members`, :class:`EnsembleGroups`). The
pieces are public and pure:

* :func:`init_ensemble` -- the fixed parts of the ensemble (:class:`Ensemble`: model
  structure, per-member hyperparameters and data keys, held-out data) and the stacked
  initial :class:`TrainState`. Parameters come from toylab's functional initialiser
  (:func:`toylab.models.init.init_params`: every member in one small program,
  bit-identical to building each model on its own);
* :func:`make_step` -- ``step(state) -> (state, loss)``: one optimizer step of every
  member (sample a batch, loss, gradient, optax update, divergence check), pure and
  jittable, ``vmap``-ed over members. It accepts a user ``loss_fn``;
* :func:`run_steps` -- ``n`` steps in one compiled ``lax.scan``, returning every
  step's losses (what :func:`toylab.circuits.fit` runs);
* :func:`make_evaluate` -- ``evaluate(params) -> metrics``: held-out metrics of every
  member. The program is an object the caller owns (no hidden cache);
* :func:`train` -- the closed loop: ``jit`` of a ``lax.while_loop`` over ``step`` between
  logging events, with metrics, checkpoints, a callback and a progress bar.

The loop bounds are dynamic, so every segment of a run (and a resumed run) reuses the
same compiled program, and step ``t`` of member ``m`` always draws its batch from
``fold_in(data_key[m], t)``: a run resumed from a saved state ends with bit-identical
parameters. Compiled programs are JAX's ``jit`` functions at module level whose static
part is the program's description (model structure, distribution, optimizer, loss):
a second :func:`train` of the same shapes in a process reuses them, and JAX's
persistent cache (:mod:`toylab._compile_cache`) serves them to later processes. The
per-member arrays (keys, hyperparameters, data) are arguments, never constants, so a
program does not depend on the seeds.

**Losses.** A loss is per example: ``loss_fn(output, target) -> (B,)`` for a batch of
model outputs ``(B, d_out)`` and targets (integer labels ``(B,)`` for classification,
``(B, d)`` for regression); the step averages it over the batch (over the training
subset, for ``data="full"``). The named losses are

* ``"cross_entropy"``: :math:`-\\log \\mathrm{softmax}(o)_y` (classification);
* ``"mse"``: :math:`\\frac{1}{K}\\sum_k (o_k - t_k)^2`, the squared error **averaged
  over the K output units**, with ``t`` the one-hot label for classification and the
  raw target for regression. The batch mean of it is the usual mean squared error
  over all entries. :func:`toylab.circuits.fit` uses the same definition;
* ``"importance_mse"``: :math:`\\sum_i I_i (o_i - x_i)^2` with the sparse-feature
  distribution's importances :math:`I` (Elhage et al. 2022: summed, not averaged).

A member whose loss or parameters become non-finite is frozen at its last finite
parameters and reported (seed and step); the other members train on.

**Kernels.** ``kernel="jax"`` (the default, and the only path on GPU/TPU) is the step
above, ``vmap``-ed over members. ``kernel="fused"`` (CPU, optional) replaces only the
loss and gradient of an MLP ensemble by a C++ kernel called through ``jax.ffi``
(:mod:`toylab.train._fused`): same batches, same optax update, results equal to float32
rounding and deterministic, so resuming stays bit-identical. It is faster where the
JAX step is bound by passes over ``(members, batch, width)`` tensors (small widths).

**Several devices.** When JAX sees several devices, :func:`train` shards the members
over them with ``jax.sharding`` (a 1-D mesh, axis ``"members"``; the largest number of
devices that divides the member count): the same single program runs on every device
on its share of the members, with no Python loop and no communication inside a step.
On a CPU, ``XLA_FLAGS=--xla_force_host_platform_device_count=N`` (set before JAX is
imported) splits the host into N devices, which lets the members use N cores. A run
resumed on the same devices is bit-identical; on another number of devices it agrees to
float32 rounding (XLA compiles the per-device program for a different member count).

**Several hosts.** Start the same script on every host and call
``jax.distributed.initialize(coordinator_address="host0:1234", num_processes=P,
process_id=p)`` before anything else touches JAX; ``jax.devices()`` then lists the
devices of every host, :func:`train` builds its mesh over all of them and each host
trains the members on its own devices. Metrics are gathered to every host
(``multihost_utils.process_allgather``); the returned state is a global array (gather it
the same way before saving it on one host; :mod:`toylab.runs` writes single-host runs).
With ``num_processes=1`` this is the single-host path, tested in ``tests/test_train_devices.py``.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from toylab._compile_cache import use_unrolled_threefry
from toylab._errors import ToylabError, fail
from toylab.distributions.params import stack_fields, structure, traceable, varying_fields
from toylab.distributions.params import with_fields as _with_fields
from toylab.models import ModelConfig
from toylab.models.init import abstract_model, init_params
from toylab.train.config import (
    LOSSES,
    SWEEPABLE,
    SweepConfig,
    TrainConfig,
    checkpoint_steps,
    format_value,
)
from toylab.train.sweep import Member, sweep_members

__all__ = [
    "Ensemble",
    "EnsembleGroups",
    "Evaluate",
    "LossFn",
    "TrainResult",
    "TrainState",
    "init_ensemble",
    "init_members",
    "loss_function",
    "make_evaluate",
    "make_optimizer",
    "ensemble_from_params",
    "make_step",
    "member_mesh",
    "run_steps",
    "train",
]

#: A per-example loss: ``loss_fn(output (B, d_out), target) -> (B,)``.
LossFn = Callable[[jax.Array, jax.Array], jax.Array]

#: The held-out set of a continuous distribution is drawn from this key (shared by all
#: members, independent of every seed's training data).
EVAL_KEY = 2**31 - 1


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class TrainState:
    """Everything that changes during training, stacked over members."""

    params: Any
    opt_state: Any
    alive: jax.Array  # (M,) bool: still finite
    diverged_at: jax.Array  # (M,) int32: step of divergence, -1 if none
    step: jax.Array  # () int32


@dataclasses.dataclass(frozen=True)
class Ensemble:
    """The fixed parts of an ensemble: model structure, members and their data.

    One ensemble is one compiled program. ``loss`` is a named loss (see the module
    docstring) or a per-example ``loss_fn``; ``model_config`` is ``None`` for an
    ensemble built around given parameters (:func:`toylab.circuits.fit`). ``kernel`` is
    ``"jax"`` or ``"fused"`` (the optional CPU kernel, :mod:`toylab.train._fused`);
    ``mesh`` the devices its members are sharded over (:func:`member_mesh`), ``None``
    for one device. ``members`` describes each member (seed, swept values, its own
    distribution and configs; :class:`toylab.train.sweep.Member`); ``dist`` is the first
    member's distribution, and where a sweep varies numeric distribution parameters
    inside the program, ``dist_params`` holds them per member (``{field: (M, ...)}``,
    arguments of the program, see :mod:`toylab.distributions.params`).
    """

    graphdef: Any
    dist: Any
    model_config: ModelConfig | None
    config: TrainConfig
    seeds: tuple[int, ...]
    sweep: SweepConfig | None
    hparams: dict[str, jax.Array]  # name -> (M,) float32
    data_keys: jax.Array  # (M,) keys
    train_data: Any  # fixed: (x, y) stacked (M, N, ...); full: mask (M, N); fresh: None
    eval_x: jax.Array  # (N, ...) shared, or (M, N, ...) where the distribution varies
    eval_y: jax.Array
    loss: str | LossFn = "cross_entropy"
    kernel: str = "jax"
    mesh: Mesh | None = None
    members: tuple[Member, ...] = ()
    dist_params: dict[str, jax.Array] = dataclasses.field(default_factory=dict)

    @property
    def num_members(self) -> int:
        return int(self.hparams["learning_rate"].shape[0])

    @property
    def dist_fields(self) -> tuple[str, ...]:
        """The distribution fields that are per-member arrays of the program."""
        return tuple(sorted(self.dist_params))

    @property
    def num_eval(self) -> int:
        """The number of held-out samples (or domain inputs) each member is evaluated on."""
        return int(self.eval_y.shape[1 if self.dist_params else 0])

    def member_seed(self, m: int) -> int:
        if self.members:
            return self.members[m].seed
        per = self.sweep.num_points if self.sweep else 1
        return self.seeds[m // per]

    def member_values(self, m: int) -> dict[str, Any]:
        """Member ``m``'s swept values, ``{short axis name: value}`` (empty unswept)."""
        return self.members[m].values(self.sweep) if self.members else {}

    def member_value(self, m: int) -> Any:
        """The swept value of member ``m`` in a one-axis sweep (``None`` unswept)."""
        if self.sweep is None:
            return None
        values = list(self.member_values(m).values())
        return values[0] if len(values) == 1 else tuple(values)

    def member_label(self, m: int) -> str:
        """``"seed 0"``, or in a sweep ``"seed 0, feature_probability=0.1, hidden=[5]"``."""
        if self.members:
            return self.members[m].label
        return f"seed {self.member_seed(m)}"

    def dist_of(self, m: int) -> Any:
        """Member ``m``'s own distribution."""
        return self.members[m].dist if self.members else self.dist

    def model(self, params: Any, member: int) -> nnx.Module:
        """The ``member``-th model as an ordinary NNX module. Its parameters are sliced on
        the host (NumPy; free on CPU, and ``params`` may already be NumPy) and put on the
        device: indexing device arrays eagerly would compile a program per leaf shape."""
        return nnx.merge(
            self.graphdef, jax.tree.map(lambda a: jax.device_put(np.asarray(a)[member]), params)
        )

    def diverged_at(self, state: TrainState) -> np.ndarray:
        """``(M,)``: the step at which each member diverged, ``-1`` if it did not."""
        return _host(state.diverged_at)

    def _arrays(self) -> dict[str, Any]:
        """The per-member arrays a step reads (arguments of the compiled programs)."""
        return {
            "hparams": self.hparams,
            "data_keys": self.data_keys,
            "data": self.train_data,
            "dist": self.dist_params,
        }

    def _spec(self, loss_fn: str | LossFn | None = None) -> _Spec:
        loss = loss_fn or self.loss
        return _Spec(
            self.graphdef, self.dist, _step_config(self.config), loss, self.kernel, self.mesh,
            self.dist_fields,
        )  # fmt: skip


@dataclasses.dataclass(frozen=True)
class EnsembleGroups:
    """The members of a sweep over shapes: one :class:`Ensemble` (one compiled program)
    per shape group. ``members`` are every member in training order; ``groups[g]``
    trains the members ``indices[g]`` (its local member ``i`` is global member
    ``indices[g][i]``). Its state is a :class:`TrainState` whose ``params``,
    ``opt_state``, ``alive`` and ``diverged_at`` are tuples over the groups."""

    groups: tuple[Ensemble, ...]
    indices: tuple[tuple[int, ...], ...]
    members: tuple[Member, ...]
    sweep: SweepConfig | None
    seeds: tuple[int, ...]

    @property
    def num_members(self) -> int:
        return len(self.members)

    @property
    def config(self) -> TrainConfig:
        return self.groups[0].config

    @property
    def dist(self) -> Any:
        return self.groups[0].dist

    @property
    def train_data(self) -> Any:
        """Per member (indexable by the global member), or ``None`` for fresh data."""
        if all(g.train_data is None for g in self.groups):
            return None
        return tuple(
            jax.tree.map(lambda a, i=i: a[i], self.groups[g].train_data)
            for g, i in map(self.locate, range(self.num_members))
        )

    @property
    def num_eval(self) -> int:
        return self.groups[0].num_eval

    def locate(self, m: int) -> tuple[int, int]:
        """``(group, index in the group)`` of global member ``m``."""
        for g, idx in enumerate(self.indices):
            if m in idx:
                return g, idx.index(m)
        raise ToylabError(f"member must be in 0..{self.num_members - 1}, got {m!r}.")

    def member_seed(self, m: int) -> int:
        return self.members[m].seed

    def member_values(self, m: int) -> dict[str, Any]:
        return self.members[m].values(self.sweep)

    def member_value(self, m: int) -> Any:
        values = list(self.member_values(m).values())
        return values[0] if len(values) == 1 else tuple(values)

    def member_label(self, m: int) -> str:
        return self.members[m].label

    def dist_of(self, m: int) -> Any:
        return self.members[m].dist

    def model(self, params: Any, member: int) -> nnx.Module:
        g, i = self.locate(member)
        return self.groups[g].model(params[g], i)

    def diverged_at(self, state: TrainState) -> np.ndarray:
        out = np.full((self.num_members,), -1, np.int32)
        for idx, d in zip(self.indices, state.diverged_at, strict=True):
            out[list(idx)] = _host(d)
        return out

    def describe(self) -> list[str]:
        """One line per program: the swept values its members share (what sets its
        shapes apart) and which members it trains."""
        return [
            f"program {g}: {_group_label(self.sweep, [self.members[i] for i in idx])} "
            f"({len(idx)} members)"
            for g, idx in enumerate(self.indices)
        ]


def _group_label(sweep: SweepConfig | None, members: Sequence[Member]) -> str:
    """The swept values shared by all ``members`` (``"hidden=[2]"``)."""
    if sweep is None:
        return "all members"
    shared = [
        f"{n}={format_value(members[0].point[k])}"
        for k, n in enumerate(sweep.names)
        if all(m.point[k] == members[0].point[k] for m in members)
    ]
    return ", ".join(shared) or "all members"


@dataclasses.dataclass(frozen=True)
class TrainResult:
    """What :func:`train` returns. ``timings`` (seconds, wall clock): ``init`` (building
    the ensemble), ``compile`` (compiling or loading the step program), ``loop`` (the
    training steps alone), ``evaluate`` (held-out metrics) and ``callback``."""

    ensemble: Ensemble | EnsembleGroups
    state: TrainState
    metrics: list[dict[str, Any]]
    checkpoints: dict[int, Any]
    timings: dict[str, float] = dataclasses.field(default_factory=dict)

    @property
    def params(self) -> Any:
        return self.state.params

    def model(self, member: int = 0) -> nnx.Module:
        return self.ensemble.model(self.state.params, member)

    def divergences(self) -> list[str]:
        return divergence_messages(self.ensemble, self.state)


def divergence_messages(ensemble: Ensemble | EnsembleGroups, state: TrainState) -> list[str]:
    at = ensemble.diverged_at(state)
    return [
        f"member {m} ({ensemble.member_label(m)}) diverged at step {int(at[m])} "
        "(non-finite loss or parameters); it was frozen at its last finite parameters"
        for m in range(len(at))
        if at[m] >= 0
    ]


def make_optimizer(config: TrainConfig, hp: dict[str, Any]) -> optax.GradientTransformation:
    """The optax optimizer for ``config`` with (possibly traced) hyperparameters ``hp``."""
    lr: Any = hp["learning_rate"]
    n = config.num_steps
    if config.schedule == "cosine":
        lr = optax.cosine_decay_schedule(lr, n)
    elif config.schedule == "warmup_cosine":
        lr = optax.warmup_cosine_decay_schedule(0.0, lr, config.warmup_steps, n)
    elif config.schedule == "exponential":
        lr = optax.exponential_decay(lr, n, config.decay_rate)
    wd = hp["weight_decay"]
    if config.optimizer == "adamw":
        return optax.adamw(lr, weight_decay=wd)
    base = {
        "sgd": lambda: optax.sgd(lr),
        "momentum": lambda: optax.sgd(lr, momentum=hp["momentum"]),
        "adam": lambda: optax.adam(lr),
    }[config.optimizer]()
    return optax.chain(optax.add_decayed_weights(wd), base)


# --------------------------------------------------------------------------- losses


def _num_outputs(dist: Any) -> int:
    return int(dist.output_dim)


def loss_function(loss: str | LossFn, dist: Any) -> LossFn:
    """The per-example loss ``(output (B, d_out), target) -> (B,)`` named by ``loss`` for
    ``dist`` (see the module docstring), or ``loss`` itself if it is a callable."""
    if callable(loss):
        return loss
    classification = dist.num_classes > 0
    if loss == "cross_entropy":
        if not classification:
            raise ToylabError(
                f"[train] loss='cross_entropy' needs a classification distribution; "
                f"{type(dist).__name__} has regression targets. Use loss='mse' or "
                "'importance_mse'."
            )
        k = dist.num_classes
        # logsumexp(o) - o_y via a one-hot product: its gradient is elementwise, where
        # indexing by the label would transpose to a scatter (slow on CPU)
        return lambda out, y: (
            jax.nn.logsumexp(out, axis=-1)
            - jnp.sum(out * jax.nn.one_hot(y, k, dtype=out.dtype), axis=-1)
        )
    if loss == "mse":
        if classification:
            k = dist.num_classes
            return lambda out, y: jnp.mean((out - jax.nn.one_hot(y, k, dtype=out.dtype)) ** 2, -1)
        return lambda out, y: jnp.mean((out - y) ** 2, axis=-1)
    if loss == "importance_mse":
        importance = getattr(dist, "importance", None)
        if importance is None or classification:
            raise ToylabError(
                f"[train] loss='importance_mse' needs a sparse-feature distribution with "
                f"importances, got {type(dist).__name__}. Use loss='cross_entropy' or 'mse'."
            )
        # an array: a sweep's per-member importances are traced (toylab.distributions.params)
        imp = jnp.asarray(importance, jnp.float32)
        return lambda out, y: jnp.sum(imp * (out - y) ** 2, axis=-1)
    raise fail(
        "train", "loss", loss, f"one of {list(LOSSES)} or a callable loss_fn(output, target)"
    )


def _check_loss(loss: str | LossFn, dist: Any) -> None:
    """Resolve ``loss`` now (a named loss raises for the wrong kind of distribution) and
    check a user loss's output shape on an abstract batch of 3 examples."""
    fn = loss_function(loss, dist)
    if not callable(loss):
        return
    batch = jax.eval_shape(lambda k: dist.sample(k, 3), jax.random.key(0))
    out_shape = jax.ShapeDtypeStruct((3, _num_outputs(dist)), jnp.float32)
    try:
        out = jax.eval_shape(fn, out_shape, batch.y)
    except Exception as e:
        raise fail(
            "train", "loss_fn", loss, "a function (output, target) -> per-example loss",
            f"Calling it on outputs of shape {out_shape.shape} and targets of shape "
            f"{batch.y.shape} failed: {type(e).__name__}: {e}",
        ) from None  # fmt: skip
    if getattr(out, "shape", None) != (3,):
        raise fail(
            "train", "loss_fn", loss,
            "a function returning one loss per example (shape (B,))",
            f"For a batch of 3 it returned shape {getattr(out, 'shape', None)}; "
            "the step averages it over the batch itself.",
        )  # fmt: skip


# --------------------------------------------------------------------------- programs


def _step_config(config: TrainConfig) -> TrainConfig:
    """``config`` with the fields no step reads normalised, so runs that differ only in
    logging, checkpoints, evaluation size or the values of the sweepable hyperparameters
    (arguments of the program, ``Ensemble.hparams``) share one compiled program."""
    fixed: dict[str, Any] = {name: 0.5 for name in SWEEPABLE}
    return dataclasses.replace(config, log_every=1, checkpoints=(), num_eval_samples=1, **fixed)


@dataclasses.dataclass(frozen=True)
class _Spec:
    """The static description of a step or evaluation program (hashable: jit's key)."""

    graphdef: Any
    dist: Any
    config: TrainConfig
    loss: str | LossFn
    kernel: str = "jax"
    mesh: Mesh | None = None
    fields: tuple[str, ...] = ()  # distribution fields that are per-member arrays


def _member_dist(spec: _Spec, dist_params: dict[str, Any]) -> Any:
    """The distribution one member samples from: ``spec.dist`` with that member's
    (traced) values of the swept fields."""
    return _with_fields(spec.dist, dist_params) if spec.fields else spec.dist


def _batch(
    spec: _Spec, key: jax.Array, data: Any, step: jax.Array, dist_params: dict[str, Any]
) -> tuple[Any, Any, Any]:
    """Member's batch at ``step``: inputs, targets and example weights (or ``None``)."""
    config, dist = spec.config, _member_dist(spec, dist_params)
    if config.data == "fresh":
        batch = dist.sample(jax.random.fold_in(key, step), config.batch_size)
        return batch.x, batch.y, None
    if config.data == "fixed":
        idx = jax.random.randint(
            jax.random.fold_in(key, step), (config.batch_size,), 0, config.num_train
        )
        return data[0][idx], data[1][idx], None
    x = jnp.asarray(dist.domain.inputs, jnp.float32)
    y = jnp.asarray(dist.domain.labels)
    return x, y, data.astype(jnp.float32)


def _update(config, params, opt_state, alive, diverged_at, hp, loss, grads, step):
    """One member's optax update and divergence check (shared by both kernels)."""
    updates, new_opt = make_optimizer(config, hp).update(grads, opt_state, params)
    new_params = optax.apply_updates(params, updates)
    finite = jnp.isfinite(loss) & jnp.all(
        jnp.stack([jnp.all(jnp.isfinite(a)) for a in jax.tree.leaves(new_params)])
    )
    ok = alive & finite
    keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, old)  # noqa: E731
    diverged_at = jnp.where(alive & ~finite, step, diverged_at)
    return keep(new_params, params), keep(new_opt, opt_state), ok, diverged_at, loss


def _step_fn(spec: _Spec, arrays: dict[str, Any]) -> Callable[[TrainState], Any]:
    """``step(state) -> (state, loss)`` for the members whose arrays are ``arrays``."""
    if spec.kernel == "fused":
        return _fused_step_fn(spec, arrays)
    config, graphdef = spec.config, spec.graphdef

    def member_step(params, opt_state, alive, diverged_at, key, hp, data, dp, step):
        x, y, w = _batch(spec, key, data, step, dp)
        loss_fn = loss_function(spec.loss, _member_dist(spec, dp))

        def loss_of(p):
            per = loss_fn(nnx.merge(graphdef, p)(x), y)
            return jnp.mean(per) if w is None else jnp.sum(per * w) / jnp.sum(w)

        loss, grads = jax.value_and_grad(loss_of)(params)
        return _update(config, params, opt_state, alive, diverged_at, hp, loss, grads, step)

    data_axis = None if arrays["data"] is None else 0
    vstep = jax.vmap(member_step, in_axes=(0, 0, 0, 0, 0, 0, data_axis, 0, None))

    def step(s: TrainState) -> tuple[TrainState, jax.Array]:
        p, o, a, d, loss = vstep(
            s.params, s.opt_state, s.alive, s.diverged_at,
            arrays["data_keys"], arrays["hparams"], arrays["data"], arrays["dist"], s.step,
        )  # fmt: skip
        return TrainState(p, o, a, d, s.step + 1), loss

    return step


def _fused_plan(spec: _Spec, params: Any) -> tuple[tuple[int, ...], int, int, float]:
    """``(widths, loss_kind, act_kind, slope)`` of the fused kernel for ``params``
    (stacked; abstract is enough), or a :class:`ToylabError` saying why it does not apply."""
    from toylab.activations import LEAKY_SLOPE
    from toylab.train import _fused

    member = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape[1:], a.dtype), params)
    model = nnx.merge(spec.graphdef, member)
    classification = spec.dist.num_classes > 0
    why = _fused.unavailable() or _fused.unsupported(model, spec.loss, classification, params)
    if why is not None:
        raise fail("train", "kernel", "fused", "usable here", f"Not here: {why}. Use kernel='jax'.")
    widths = tuple(int(w) for w in model.widths_in_order)  # type: ignore[attr-defined]
    loss_kind = _fused.LOSS_KINDS[(spec.loss, classification)]  # type: ignore[index]
    act = model.activation  # type: ignore[attr-defined]
    return widths, loss_kind, _fused.ACT_KINDS[act], float(LEAKY_SLOPE)


def _fused_step_fn(spec: _Spec, arrays: dict[str, Any]) -> Callable[[TrainState], Any]:
    """The step with the fused CPU kernel's loss and gradient (:mod:`toylab.train._fused`):
    the same batches (JAX samples them in the step) and the same optax update."""
    from toylab.train import _fused

    config = spec.config
    data_axis = None if arrays["data"] is None else 0

    def step(s: TrainState) -> tuple[TrainState, jax.Array]:
        widths, loss_kind, act_kind, slope = _fused_plan(spec, s.params)
        x, y, w = jax.vmap(
            lambda k, d, dp: _batch(spec, k, d, s.step, dp), in_axes=(0, data_axis, 0)
        )(arrays["data_keys"], arrays["data"], arrays["dist"])
        num, size = x.shape[0], x.shape[1]
        w = jnp.full((num, size), 1.0 / size) if w is None else w / jnp.sum(w, 1, keepdims=True)
        y = y.astype(jnp.float32)
        y = y[..., None] if y.ndim == 2 else y

        def kernel(x, y, w, theta):
            return _fused.value_and_grad(widths, loss_kind, act_kind, slope, x, y, w, theta)

        if spec.mesh is not None:  # each device runs the kernel on its own members
            split = PartitionSpec("members")
            kernel = jax.shard_map(kernel, mesh=spec.mesh, in_specs=split, out_specs=split)
        loss, grad = kernel(x, y, w, _fused.pack(s.params))
        grads = _fused.unpack(grad, s.params)
        p, o, a, d, loss = jax.vmap(functools.partial(_update, config), in_axes=(0,) * 7 + (None,))(
            s.params, s.opt_state, s.alive, s.diverged_at, arrays["hparams"], loss, grads, s.step
        )
        return TrainState(p, o, a, d, s.step + 1), loss

    return step


@functools.partial(jax.jit, static_argnums=0)
def _segment(spec: _Spec, arrays: dict[str, Any], state: TrainState, stop: jax.Array):
    """Steps ``state.step .. stop`` of every member (a ``while_loop``: one program for any
    ``stop``)."""
    step = _step_fn(spec, arrays)
    return jax.lax.while_loop(lambda s: s.step < stop, lambda s: step(s)[0], state)


@functools.partial(jax.jit, static_argnums=(0, 1))
def _scan(spec: _Spec, num_steps: int, arrays: dict[str, Any], state: TrainState):
    """``num_steps`` steps, returning the final state and every step's losses ``(T, M)``."""
    step = _step_fn(spec, arrays)
    return jax.lax.scan(lambda s, _: step(s), state, None, length=num_steps)


def make_step(
    ensemble: Ensemble, loss_fn: str | LossFn | None = None
) -> Callable[[TrainState], tuple[TrainState, jax.Array]]:
    """One training step of every member: ``step(state) -> (new_state, loss)``.

    Pure and jittable (``jax.jit(make_step(ensemble))``): member ``m`` draws its batch
    from ``fold_in(ensemble.data_keys[m], state.step)``, computes ``loss_fn`` (default:
    the ensemble's loss, see the module docstring) averaged over the batch, its
    gradient and the optax update of :func:`make_optimizer`; ``loss`` ``(M,)`` is each
    member's training loss before the update. A member whose loss or new parameters
    are non-finite keeps its old parameters and is marked in ``alive`` /
    ``diverged_at``. Running ``step`` ``n`` times is what :func:`train` does between
    two logging events (inside one ``lax.while_loop``).

    Example (a custom loss, and driving the loop yourself)::

        ensemble, state = init_ensemble(dist, ModelConfig(), TrainConfig(), seeds=range(8))
        hinge = lambda out, y: jax.nn.relu(1 - (2 * y - 1) * (out[:, 1] - out[:, 0]))
        step = jax.jit(make_step(ensemble, hinge))
        for _ in range(100):
            state, loss = step(state)
    """
    if loss_fn is not None:
        _check_loss(loss_fn, ensemble.dist)
    return _step_fn(ensemble._spec(loss_fn), ensemble._arrays())


def run_steps(
    ensemble: Ensemble, state: TrainState, num_steps: int, loss_fn: LossFn | None = None
) -> tuple[TrainState, jax.Array]:
    """``num_steps`` applications of :func:`make_step` in one compiled ``lax.scan``:
    the final state and every step's training losses, shape ``(num_steps, M)``.

    The program is cached by JAX on the ensemble's description (not its arrays), so
    calling it again with other seeds or parameters of the same shapes compiles nothing.
    """
    if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 1:
        raise fail("run_steps", "num_steps", num_steps, "a positive integer")
    if loss_fn is not None:
        _check_loss(loss_fn, ensemble.dist)
    return _scan(ensemble._spec(loss_fn), num_steps, ensemble._arrays(), state)


# --------------------------------------------------------------------------- evaluation


@functools.partial(jax.jit, static_argnums=0)
def _evaluate_program(spec: _Spec, arrays: dict[str, Any], params: Any) -> dict[str, jax.Array]:
    dist, graphdef = spec.dist, spec.graphdef
    x, y, mask = arrays["x"], arrays["y"], arrays["mask"]
    shared = 0 if spec.fields else None  # per-member held-out sets where the dist varies

    def one(p, m, x, y, dp):
        loss_fn = loss_function(spec.loss, _member_dist(spec, dp))
        out = nnx.merge(graphdef, p)(x)
        res = {"loss": jnp.mean(loss_fn(out, y))}
        if dist.num_classes > 0:
            correct = (jnp.argmax(out, -1) == y).astype(jnp.float32)
            res["accuracy"] = jnp.mean(correct)
            if m is not None:
                m = m.astype(jnp.float32)
                res["train_accuracy"] = jnp.sum(correct * m) / jnp.maximum(jnp.sum(m), 1)
                res["test_accuracy"] = jnp.sum(correct * (1 - m)) / jnp.maximum(jnp.sum(1 - m), 1)
        return res

    in_axes = (0, None if mask is None else 0, shared, shared, 0)
    return jax.vmap(one, in_axes=in_axes)(params, mask, x, y, arrays["dist"])


@dataclasses.dataclass(frozen=True, eq=False)
class Evaluate:
    """Held-out metrics of every member: ``evaluate(params) -> {name: (M,) float64}``.

    ``loss`` (the training loss on the held-out set), ``accuracy`` (classification),
    ``bayes_gap`` (the Bayes-optimal accuracy minus ``accuracy``, where the
    distribution knows it) and, for ``data="full"``, ``train_accuracy`` and
    ``test_accuracy``. Built by :func:`make_evaluate`; holds its compiled program and
    the Bayes accuracy of each member's distribution (computed once, when built).
    Each member is evaluated under its own distribution.
    """

    spec: _Spec
    arrays: dict[str, Any]
    bayes_accuracy: float | np.ndarray | None

    def __call__(self, params: Any) -> dict[str, np.ndarray]:
        out = _evaluate_program(self.spec, self.arrays, params)
        res = {k: _host(v).astype(np.float64) for k, v in out.items()}
        if self.bayes_accuracy is not None and "accuracy" in res:
            res["bayes_gap"] = self.bayes_accuracy - res["accuracy"]
        return res


def make_evaluate(ensemble: Ensemble, loss_fn: str | LossFn | None = None) -> Evaluate:
    """The evaluation of ``ensemble``'s members on its held-out data (see :class:`Evaluate`)."""
    if loss_fn is not None:
        _check_loss(loss_fn, ensemble.dist)
    mask = ensemble.train_data if ensemble.config.data == "full" else None
    arrays = {"x": ensemble.eval_x, "y": ensemble.eval_y, "mask": mask,
              "dist": ensemble.dist_params}  # fmt: skip
    bayes: float | np.ndarray | None = _bayes_accuracy(ensemble.dist)
    if ensemble.members and ensemble.dist_params and bayes is not None:
        by_dist: dict[Any, float | None] = {}
        for m in ensemble.members:
            if m.dist not in by_dist:
                by_dist[m.dist] = _bayes_accuracy(m.dist)
        per = [by_dist[m.dist] for m in ensemble.members]
        bayes = None if any(b is None for b in per) else np.asarray(per, np.float64)
    return Evaluate(ensemble._spec(loss_fn), arrays, bayes)


def _bayes_accuracy(dist: Any) -> float | None:
    if dist.num_classes == 0:
        return None
    try:
        return float(dist.bayes().accuracy)
    except ToylabError:
        return None


def _host(x: Any) -> np.ndarray:
    """``x`` on the host; a global array of a multi-host run is gathered first."""
    if isinstance(x, jax.Array) and not x.is_fully_addressable:  # pragma: no cover - multi-host
        from jax.experimental import multihost_utils

        x = multihost_utils.process_allgather(x, tiled=True)
    return np.asarray(x)


# --------------------------------------------------------------------------- devices


def member_mesh(num_members: int, devices: Sequence[Any] | None = None) -> Mesh | None:
    """The 1-D mesh (axis ``"members"``) over which ``num_members`` are sharded: the
    largest number of ``devices`` (default: all of JAX's) dividing ``num_members``;
    ``None`` when that is one device."""
    devices = list(jax.devices() if devices is None else devices)
    n = max(d for d in range(1, len(devices) + 1) if num_members % d == 0)
    if n == 1:
        return None
    return Mesh(np.array(devices[:n]), ("members",))


def _shardings(tree: Any, mesh: Mesh, num_members: int) -> Any:
    """Per leaf: split over ``mesh`` along a leading member axis, else replicated."""
    split = NamedSharding(mesh, PartitionSpec("members"))
    whole = NamedSharding(mesh, PartitionSpec())
    leading = lambda a: getattr(a, "ndim", 0) >= 1 and a.shape[0] == num_members  # noqa: E731
    return jax.tree.map(lambda a: split if leading(a) else whole, tree)


def _constrain(tree: Any, mesh: Mesh | None, num_members: int) -> Any:
    """Inside a program: lay ``tree`` out over ``mesh`` (see :func:`_shardings`)."""
    if mesh is None:
        return tree
    return jax.lax.with_sharding_constraint(tree, _shardings(tree, mesh, num_members))


def _place(tree: Any, mesh: Mesh | None, num_members: int) -> Any:
    """Move ``tree`` (e.g. a state loaded from disk) onto ``mesh``'s layout; arrays already
    there stay (nothing is compiled: other arrays go through the host)."""
    if mesh is None:
        return tree

    def put(a: Any, target: NamedSharding) -> Any:
        if isinstance(a, jax.Array) and a.sharding.is_equivalent_to(target, a.ndim):
            return a
        return jax.device_put(np.asarray(a), target)

    return jax.tree.map(put, tree, _shardings(tree, mesh, num_members))


# --------------------------------------------------------------------------- init


def _member_keys(where: str, seeds: Sequence[int]) -> np.ndarray:
    seeds = tuple(int(s) for s in seeds)
    if not seeds:
        raise ToylabError("seeds must be a non-empty list of integers, got [].")
    if len(set(seeds)) != len(seeds):
        raise ToylabError(f"seeds must be distinct, got {list(seeds)!r}.")
    bad = [s for s in seeds if not 0 <= s < 2**32]
    if bad:
        raise fail(
            where, "seeds", bad[:3], "integers in [0, 2**32)",
            "JAX keys hold 32 bits of a seed: larger seeds would collide with smaller ones.",
        )  # fmt: skip
    return np.asarray(seeds, np.uint32)


def _members_data(
    dist: Any,
    config: TrainConfig,
    data_keys: jax.Array,
    dist_params: dict[str, jax.Array] | None = None,
) -> dict[str, Any]:
    """Training data of every member (``"data"``: ``None``, the fixed sets or the masks)
    and the held-out set of a continuous distribution (``"eval"``): shared by all
    members, or, where members have their own distribution parameters (``dist_params``,
    ``{field: (M, ...)}``), one per member drawn from the same key."""
    dist_params = dist_params or {}
    fields = tuple(sorted(dist_params))
    spec_like = _Spec(None, dist, config, "mse", fields=fields)
    out: dict[str, Any] = {"data": None}
    if config.data == "fixed":
        batch = jax.vmap(
            lambda k, dp: _member_dist(spec_like, dp).sample(
                jax.random.fold_in(k, 2), config.num_train
            )
        )(data_keys, dist_params)
        out["data"] = (batch.x, batch.y)
    elif config.data == "full":
        out["data"] = _train_masks(dist, config, data_keys)
    if dist.kind != "finite":
        key = jax.random.key(EVAL_KEY)
        if fields:
            batch = jax.vmap(
                lambda dp: _member_dist(spec_like, dp).sample(key, config.num_eval_samples)
            )(dist_params)
        else:
            batch = dist.sample(key, config.num_eval_samples)
        out["eval"] = (batch.x, batch.y)
    return out


#: Programs that run once (initialisation) are compiled with fewer LLVM optimisations
#: (about half the compile time; they run in milliseconds either way). Level 1, not 0:
#: at level 0 the float arithmetic changes (no fused multiply-adds) and the initial
#: parameters would differ from ``build_model``'s in the last bit.
_RUN_ONCE = {"xla_backend_optimization_level": 1}


@functools.partial(jax.jit, static_argnums=(0, 1, 2, 3, 4), compiler_options=_RUN_ONCE)
def _init_program(
    model_config: ModelConfig,
    dist: Any,
    config: TrainConfig,
    with_params: bool,
    mesh: Mesh | None,
    seeds: jax.Array,
    hparams: dict[str, jax.Array],
    dist_params: dict[str, jax.Array],
    scales: dict[str, jax.Array],
) -> dict[str, Any]:
    """Keys, data and (``with_params``) parameters and optimizer state of every member,
    laid out over ``mesh`` (members split, shared data replicated). ``model_config`` and
    ``config`` are the static parts (the per-member values are ``hparams``,
    ``dist_params`` and the initialiser ``scales``)."""
    seed_keys = jax.vmap(jax.random.key)(seeds)
    init_keys = jax.vmap(lambda k: jax.random.fold_in(k, 0))(seed_keys)
    data_keys = jax.vmap(lambda k: jax.random.fold_in(k, 1))(seed_keys)
    num = seeds.shape[0]
    out = {
        "data_keys": data_keys,
        "hparams": hparams,
        "dist_params": dist_params,
        **_members_data(dist, config, data_keys, dist_params),
    }
    if with_params:
        _, params = init_params(model_config, dist, init_keys, scales)
        out["params"] = params
        out["opt_state"] = jax.vmap(lambda p, hp: make_optimizer(config, hp).init(p))(
            params, hparams
        )
        out["alive"] = jnp.ones((num,), bool)
        out["diverged_at"] = jnp.full((num,), -1, jnp.int32)
    return _constrain(out, mesh, num)


@functools.partial(jax.jit, static_argnums=(0, 1), compiler_options=_RUN_ONCE)
def _given_params_program(
    dist: Any, config: TrainConfig, data_keys: jax.Array, params: Any, hparams: dict[str, jax.Array]
) -> dict[str, Any]:
    """:func:`ensemble_from_params`'s data and optimizer state, in one program."""
    num = data_keys.shape[0]
    out = _members_data(dist, config, data_keys)
    out["opt_state"] = jax.vmap(lambda p, hp: make_optimizer(config, hp).init(p))(params, hparams)
    out["alive"] = jnp.ones((num,), bool)
    out["diverged_at"] = jnp.full((num,), -1, jnp.int32)
    return out


def _train_masks(dist: Any, config: TrainConfig, data_keys: jax.Array) -> jax.Array:
    """``data="full"``: per member, a random ``train_fraction`` of the domain (mask)."""
    size = dist.domain.size
    num_train = max(1, int(round(config.train_fraction * size)))
    perms = jax.vmap(lambda k: jax.random.permutation(jax.random.fold_in(k, 2), size))(data_keys)
    num = data_keys.shape[0]
    return jnp.zeros((num, size), bool).at[jnp.arange(num)[:, None], perms[:, :num_train]].set(True)


def _hparams(configs: Sequence[TrainConfig]) -> dict[str, np.ndarray]:
    """``{name: (M,) float32}``: each member's sweepable hyperparameters."""
    return {
        name: np.asarray([c.hyperparameters()[name] for c in configs], np.float32)
        for name in SWEEPABLE
    }


def _eval_data(dist: Any, out: dict[str, Any]) -> tuple[jax.Array, jax.Array]:
    if dist.kind == "finite":
        d = dist.domain
        x, y = np.asarray(d.inputs, np.float32), np.asarray(d.labels)
        return jax.device_put(x), jax.device_put(y)
    return out["eval"]


def _static_train(config: TrainConfig) -> TrainConfig:
    """What a member's training config contributes to its group's programs (the
    sweepable hyperparameters are arrays; logging fields are the run's)."""
    fixed: dict[str, Any] = dict.fromkeys(SWEEPABLE, 0.5)
    return dataclasses.replace(config, **fixed)


def _group_key(member: Member) -> Any:
    """Members with equal keys share one compiled program (see :func:`init_members`)."""
    model = dataclasses.replace(member.model, init=member.model.init.static())
    return structure(member.dist), model, _static_train(member.train)


def _plan_groups(
    members: Sequence[Member], loss: str | LossFn
) -> list[tuple[tuple[int, ...], tuple[str, ...]]]:
    """``(member indices, per-member distribution fields)`` of every program: members are
    grouped by shape and static settings; inside a group the distribution fields whose
    values differ are per-member arrays, if the distribution samples (and the loss
    reads) them traced; otherwise each distinct distribution gets its own program."""
    by_key: dict[Any, list[int]] = {}
    point_keys: dict[Any, Any] = {}  # members at one grid point share their configs
    for m in members:
        if m.point not in point_keys:
            point_keys[m.point] = _group_key(m)
        by_key.setdefault(point_keys[m.point], []).append(m.index)
    out: list[tuple[tuple[int, ...], tuple[str, ...]]] = []
    for idx in by_key.values():
        dists = [members[i].dist for i in idx]
        fields = varying_fields(dists)
        use = None
        if isinstance(loss, str):
            use = lambda d, b: _named_loss_probe(loss, d, b)  # noqa: E731
        if not fields or traceable(dists[0], fields, use):
            out.append((tuple(idx), fields))
            continue
        by_dist: dict[Any, list[int]] = {}
        for i in idx:
            by_dist.setdefault(members[i].dist, []).append(i)
        out += [(tuple(sub), ()) for sub in by_dist.values()]
    return sorted(out)


def _named_loss_probe(loss: str, dist: Any, batch: Any) -> jax.Array:
    """The named loss on a batch, with outputs shaped like the targets' one-hot or value."""
    out = jnp.zeros((batch.x.shape[0], _num_outputs(dist)), jnp.float32)
    return loss_function(loss, dist)(out, batch.y)


def _check_members(members: Sequence[Member], loss: str | LossFn) -> None:
    checked: set[Any] = set()
    for m in members:
        if m.train.data == "full" and m.dist.kind != "finite":
            raise ToylabError(
                f"[train] data='full' needs a finite distribution (modular arithmetic, "
                f"boolean), got {type(m.dist).__name__}. Use data='fresh' or 'fixed'."
            )
        if m.dist not in checked:
            checked.add(m.dist)
            _check_loss(loss, m.dist)


def _build_group(
    members: Sequence[Member],
    fields: tuple[str, ...],
    seeds: tuple[int, ...],
    sweep: SweepConfig | None,
    loss: str | LossFn,
    abstract: bool,
    devices: Sequence[Any] | None,
    kernel: str,
) -> tuple[Ensemble, TrainState]:
    first = members[0]
    dist, model_config, config = first.dist, first.model, first.train
    graphdef, _ = abstract_model(model_config, dist)
    hparams = _hparams([m.train for m in members])
    dist_params = stack_fields([m.dist for m in members], fields)
    scales = {
        "weights": np.asarray([m.model.init.weight_scale for m in members], np.float32),
        "biases": np.asarray([m.model.init.bias_scale for m in members], np.float32),
    }
    seed_arr = np.asarray([m.seed for m in members], np.uint32)
    num = len(members)
    mesh = member_mesh(num, devices)
    static_model = dataclasses.replace(model_config, init=model_config.init.static())
    static = (static_model, dist, _static_train(config))
    args = (seed_arr, hparams, dist_params, scales)
    if abstract:
        out = _init_program(*static, False, mesh, *args)
        full = _init_program.eval_shape(*static, True, None, *args)
        for name in ("params", "opt_state", "alive", "diverged_at"):
            out[name] = full[name]
    else:
        out = _init_program(*static, True, mesh, *args)
    eval_x, eval_y = _eval_data(dist, out)
    ensemble = Ensemble(
        graphdef=graphdef,
        dist=dist,
        model_config=model_config,
        config=config,
        seeds=seeds,
        sweep=sweep,
        hparams=out["hparams"],
        data_keys=out["data_keys"],
        train_data=out["data"],
        eval_x=eval_x,
        eval_y=eval_y,
        loss=loss,
        kernel=kernel,
        mesh=mesh,
        members=tuple(members),
        dist_params=out["dist_params"],
    )
    if kernel == "fused":
        _fused_plan(ensemble._spec(), out["params"])
    step: Any = jax.ShapeDtypeStruct((), jnp.int32) if abstract else jax.device_put(np.int32(0))
    state = TrainState(out["params"], out["opt_state"], out["alive"], out["diverged_at"], step)
    return ensemble, state


def init_members(
    dist: Any,
    model_config: ModelConfig,
    config: TrainConfig,
    seeds: Sequence[int],
    sweep: SweepConfig | None = None,
    *,
    abstract: bool = False,
    loss_fn: LossFn | None = None,
    devices: Sequence[Any] | None = None,
    kernel: str = "jax",
) -> tuple[Ensemble | EnsembleGroups, TrainState]:
    """Build every member of an experiment (one per seed × sweep grid point) and their
    stacked initial state, grouped into as few compiled programs as their shapes allow.

    Member ``i`` has seed ``seeds[i // P]`` and grid point ``sweep.points()[i % P]``
    (:func:`toylab.train.sweep.sweep_members`: each member's distribution, model and
    training config, validated). Members whose model structure, shapes and static
    settings (optimizer, loss, data mode, ...) agree form one group: their
    hyperparameters, initialiser scales and differing numeric distribution
    parameters (:mod:`toylab.distributions.params`) are per-member arrays of one
    program. One group gives an :class:`Ensemble` and its :class:`TrainState`; several
    (a sweep over widths, the number of features, ...) an :class:`EnsembleGroups` and
    a state whose fields are tuples over the groups. ``dist`` is a distribution, or its
    config dict (``{"name": ..., **params}``; a distribution axis may fill in a
    parameter it leaves out). See :func:`init_ensemble` for the other arguments.
    """
    if kernel not in ("jax", "fused"):
        raise fail("init_ensemble", "kernel", kernel, "'jax' or 'fused'")
    seed_arr = _member_keys("init_ensemble", seeds)
    use_unrolled_threefry()
    members = sweep_members(dist, model_config, config, [int(s) for s in seed_arr], sweep)
    loss = loss_fn if loss_fn is not None else config.loss
    _check_members(members, loss)
    plan = _plan_groups(members, loss)
    unique = tuple(int(s) for s in seed_arr)
    built = [
        _build_group(
            [members[i] for i in idx], fields, unique, sweep, loss, abstract, devices, kernel
        )
        for idx, fields in plan
    ]
    if len(built) == 1:
        return built[0]
    groups = EnsembleGroups(
        tuple(e for e, _ in built), tuple(idx for idx, _ in plan), members, sweep, unique
    )
    return groups, _join([st for _, st in built])


def _join(states: Sequence[TrainState]) -> TrainState:
    """One state of several groups: tuples over the groups (one group: itself)."""
    if len(states) == 1:
        return states[0]
    fields = ("params", "opt_state", "alive", "diverged_at")
    parts: dict[str, Any] = {f: tuple(getattr(st, f) for st in states) for f in fields}
    return TrainState(**parts, step=states[0].step)


def _split(state: TrainState, num_groups: int) -> list[TrainState]:
    if num_groups == 1:
        return [state]
    return [
        TrainState(state.params[g], state.opt_state[g], state.alive[g], state.diverged_at[g],
                   state.step)
        for g in range(num_groups)
    ]  # fmt: skip


def init_ensemble(
    dist: Any,
    model_config: ModelConfig,
    config: TrainConfig,
    seeds: Sequence[int],
    sweep: SweepConfig | None = None,
    *,
    abstract: bool = False,
    loss_fn: LossFn | None = None,
    devices: Sequence[Any] | None = None,
    kernel: str = "jax",
) -> tuple[Ensemble, TrainState]:
    """Build the stacked initial state of every member (one per seed × sweep grid point),
    when they train in one compiled program (see :func:`init_members` for sweeps over
    shapes).

    Member ``i`` has seed ``seeds[i // P]`` and grid point ``i % P`` of the sweep; its
    parameters are those of ``build_model(model_config_i, dist_i, fold_in(key(seed),
    0))`` (bit for bit) and its data key is ``fold_in(key(seed), 1)``. One compiled
    program draws everything. With ``abstract=True`` the parameters and optimizer
    state are only shapes and dtypes (``jax.ShapeDtypeStruct``; no initialiser runs):
    the template that loading a saved state needs. ``loss_fn`` replaces ``config.loss``
    (see :func:`make_step`). The arrays are laid out over :func:`member_mesh` of
    ``devices`` (default: all of JAX's). ``kernel="fused"`` computes the loss and
    gradient with the optional fused CPU kernel (:mod:`toylab.train._fused`; an error
    says why when it does not apply).
    """
    ensemble, state = init_members(
        dist, model_config, config, seeds, sweep, abstract=abstract, loss_fn=loss_fn,
        devices=devices, kernel=kernel,
    )  # fmt: skip
    if isinstance(ensemble, EnsembleGroups):
        raise ToylabError(
            f"init_ensemble: the sweep {ensemble.sweep.describe() if ensemble.sweep else ''} "
            f"changes shapes, so its members need {len(ensemble.groups)} programs "
            f"({'; '.join(ensemble.describe())}). Use toylab.train.init_members, which "
            "returns them grouped."
        )
    return ensemble, state


def ensemble_from_params(
    graphdef: Any,
    params: Any,
    dist: Any,
    config: TrainConfig,
    data_keys: jax.Array,
    *,
    loss_fn: LossFn | None = None,
) -> tuple[Ensemble, TrainState]:
    """An ensemble around given stacked ``params`` (leading member axis) and data keys
    ``(M,)``, with fresh optimizer state: what :func:`toylab.circuits.fit` trains.
    Members are labelled ``seed 0 .. M-1`` in messages."""
    num = int(data_keys.shape[0])
    if config.data == "full" and dist.kind != "finite":
        raise ToylabError(
            f"[train] data='full' needs a finite distribution, got {type(dist).__name__}."
        )
    loss = loss_fn if loss_fn is not None else config.loss
    _check_loss(loss, dist)
    hparams = _hparams([config] * num)
    out = _given_params_program(dist, config, data_keys, params, hparams)
    eval_x, eval_y = _eval_data(dist, out)
    ensemble = Ensemble(
        graphdef=graphdef, dist=dist, model_config=None, config=config,
        seeds=tuple(range(num)), sweep=None, hparams=jax.device_put(hparams),
        data_keys=data_keys, train_data=out["data"], eval_x=eval_x, eval_y=eval_y, loss=loss,
    )  # fmt: skip
    state = TrainState(
        params, out["opt_state"], out["alive"], out["diverged_at"], jax.device_put(np.int32(0))
    )
    return ensemble, state


# --------------------------------------------------------------------------- the loop


def event_steps(config: TrainConfig, start: int = 0) -> list[int]:
    """Steps after ``start`` at which training pauses to log or checkpoint."""
    logs = set(range(0, config.num_steps + 1, config.log_every)) | {config.num_steps}
    return sorted(s for s in logs | set(checkpoint_steps(config)) if s > start)


def _merge_metrics(
    ensemble: Ensemble | EnsembleGroups, parts: Sequence[dict[str, np.ndarray]]
) -> dict[str, np.ndarray]:
    """Every group's metrics in global member order (NaN where a group has no such metric)."""
    if not isinstance(ensemble, EnsembleGroups):
        return dict(parts[0])
    out: dict[str, np.ndarray] = {}
    for idx, part in zip(ensemble.indices, parts, strict=True):
        for k, v in part.items():
            out.setdefault(k, np.full((ensemble.num_members,), np.nan))[list(idx)] = v
    return out


def train(
    dist: Any,
    model_config: ModelConfig,
    config: TrainConfig,
    seeds: Sequence[int] = (0,),
    sweep: SweepConfig | None = None,
    *,
    state: TrainState | None = None,
    callback: Callable[[Any, TrainState, dict[str, Any] | None, bool], None] | None = None,
    progress: bool = False,
    loss_fn: LossFn | None = None,
    devices: Sequence[Any] | None = None,
    kernel: str = "jax",
) -> TrainResult:
    """Train an ensemble; see the module docstring.

    ``sweep`` varies config fields across members (:class:`SweepConfig`); members
    whose shapes agree train in one compiled program, a sweep over shapes trains one
    program per shape group (:func:`init_members`; the result's ``ensemble`` is then an
    :class:`EnsembleGroups` and its state holds tuples over the groups). ``state``
    resumes from a saved :class:`TrainState` (from :func:`toylab.runs.load_run`).
    ``callback(ensemble, state, metrics, is_checkpoint)`` is called at step 0 (for a
    fresh run) and at every log or checkpoint step; ``metrics`` is ``None`` at
    checkpoint-only steps. ``loss_fn`` replaces ``config.loss`` by a per-example loss
    ``(output, target) -> (B,)``. ``devices`` (default: all of JAX's) are the devices
    the members are sharded over (:func:`member_mesh`). ``kernel="fused"`` uses the
    optional fused CPU kernel for the loss and gradient (:mod:`toylab.train._fused`).
    Returns the final state, the metric records, the parameters at every checkpoint
    step reached here and the timings.
    """
    clock = time.perf_counter()
    timings = dict.fromkeys(("init", "compile", "loop", "evaluate", "callback"), 0.0)

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] += now - clock
        clock = now

    ensemble, init_state = init_members(
        dist, model_config, config, seeds, sweep, abstract=state is not None, loss_fn=loss_fn,
        devices=devices, kernel=kernel,
    )  # fmt: skip
    groups = ensemble.groups if isinstance(ensemble, EnsembleGroups) else (ensemble,)
    states = [
        _place(st, member_mesh(g.num_members, devices), g.num_members)
        for g, st in zip(groups, _split(init_state if state is None else state, len(groups)),
                         strict=True)
    ]  # fmt: skip
    arrays = [g._arrays() for g in groups]
    specs = [g._spec() for g in groups]
    evaluates = [make_evaluate(g) for g in groups]
    ck = set(checkpoint_steps(config))
    metrics: list[dict[str, Any]] = []
    checkpoints: dict[int, Any] = {}

    def record(st: TrainState) -> None:
        step = int(st.step)
        rec = None
        if step % config.log_every == 0 or step == config.num_steps:
            parts = [ev(s.params) for ev, s in zip(evaluates, states, strict=True)]
            rec = {"step": step, **_merge_metrics(ensemble, parts)}
            metrics.append(rec)
        if step in ck:
            checkpoints[step] = st.params
        lap("evaluate")
        if callback is not None:
            callback(ensemble, st, rec, step in ck)
        lap("callback")

    start = int(states[0].step)
    lap("init")

    # compile (or load) before the clock starts, so the progress bar's rate is the
    # training rate: zero steps run
    def advance(stop: int) -> list[TrainState]:
        out = [
            _segment(sp, ar, st, np.int32(stop))
            for sp, ar, st in zip(specs, arrays, states, strict=True)
        ]
        return jax.block_until_ready(out)

    states = advance(start)
    lap("compile")
    if start == 0:
        record(_join(states))
    bar = None
    if progress:
        from tqdm.auto import tqdm

        desc = "training" if len(groups) == 1 else f"training ({len(groups)} programs)"
        bar = tqdm(total=config.num_steps, initial=start, unit="step", desc=desc)
    for stop in event_steps(config, start):
        states = advance(stop)
        lap("loop")
        record(_join(states))
        if bar is not None:
            bar.update(stop - bar.n)
            if metrics and "accuracy" in metrics[-1]:
                bar.set_postfix(acc=f"{np.nanmean(metrics[-1]['accuracy']):.3f}")
    if bar is not None:
        bar.close()
    return TrainResult(ensemble, _join(states), metrics, checkpoints, timings)
