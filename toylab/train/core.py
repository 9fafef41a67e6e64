"""Functional ensemble training.

One experiment trains ``num_members = len(seeds) * len(sweep values)`` models of
the same shape in **one compiled program**: the model is split once with
``nnx.split``, its parameters are initialised per member under ``jax.vmap`` and
stacked, and one pure step (sample a batch, loss, gradient, optax update) is
``vmap``-ed over members and looped with ``lax.while_loop`` between logging
events. The loop bounds are dynamic, so every segment (and a resumed run) reuses
the same compiled program, and step ``t`` of member ``m`` always draws its batch
from ``fold_in(data_key[m], t)``: a run resumed from a saved state ends with
bit-identical parameters.

A member whose loss or parameters become non-finite is frozen at its last finite
parameters and reported (seed and step); the other members train on.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from toylab._errors import ToylabError
from toylab.models import ModelConfig, build_model
from toylab.train.config import SweepConfig, TrainConfig, checkpoint_steps

__all__ = [
    "Ensemble",
    "TrainResult",
    "TrainState",
    "evaluate",
    "init_ensemble",
    "make_optimizer",
    "train",
]


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
    """The fixed parts of an ensemble: model structure, members and their data."""

    graphdef: Any
    dist: Any
    model_config: ModelConfig
    config: TrainConfig
    seeds: tuple[int, ...]
    sweep: SweepConfig | None
    hparams: dict[str, jax.Array]  # name -> (M,) float32
    data_keys: jax.Array  # (M,) keys
    train_data: Any  # fixed: (x, y) stacked (M, N, ...); full: mask (M, N); fresh: None
    eval_x: jax.Array
    eval_y: jax.Array

    @property
    def num_members(self) -> int:
        return int(self.hparams["learning_rate"].shape[0])

    def member_seed(self, m: int) -> int:
        per = len(self.sweep.values) if self.sweep else 1
        return self.seeds[m // per]

    def member_value(self, m: int) -> float | None:
        if self.sweep is None:
            return None
        return self.sweep.values[m % len(self.sweep.values)]

    def member_label(self, m: int) -> str:
        v = self.member_value(m)
        s = f"seed {self.member_seed(m)}"
        return s if v is None else f"{s}, {self.sweep.param}={v:g}"  # type: ignore[union-attr]

    def model(self, params: Any, member: int) -> nnx.Module:
        """The ``member``-th model as an ordinary NNX module."""
        return nnx.merge(self.graphdef, jax.tree.map(lambda a: a[member], params))


@dataclasses.dataclass(frozen=True)
class TrainResult:
    ensemble: Ensemble
    state: TrainState
    metrics: list[dict[str, Any]]
    checkpoints: dict[int, Any]

    @property
    def params(self) -> Any:
        return self.state.params

    def model(self, member: int = 0) -> nnx.Module:
        return self.ensemble.model(self.state.params, member)

    def divergences(self) -> list[str]:
        return divergence_messages(self.ensemble, self.state)


def divergence_messages(ensemble: Ensemble, state: TrainState) -> list[str]:
    at = np.asarray(state.diverged_at)
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


def _loss_fn(config: TrainConfig, dist: Any) -> Callable[[Any, Any], Any]:
    """Per-example loss ``(output, target, weight) -> (B,)``."""
    classification = dist.num_classes > 0
    if config.loss == "cross_entropy":
        if not classification:
            raise ToylabError(
                f"[train] loss='cross_entropy' needs a classification distribution; "
                f"{type(dist).__name__} has regression targets. Use loss='mse' or "
                "'importance_mse'."
            )
        return lambda out, y: optax.softmax_cross_entropy_with_integer_labels(out, y)
    if config.loss == "mse":
        if classification:
            return lambda out, y: jnp.mean(
                (out - jax.nn.one_hot(y, dist.num_classes)) ** 2, axis=-1
            )
        return lambda out, y: jnp.mean((out - y) ** 2, axis=-1)
    importance = getattr(dist, "importance", None)
    if importance is None or classification:
        raise ToylabError(
            f"[train] loss='importance_mse' needs a sparse-feature distribution with "
            f"importances, got {type(dist).__name__}. Use loss='cross_entropy' or 'mse'."
        )
    imp = jnp.asarray(importance, jnp.float32)
    return lambda out, y: jnp.sum(imp * (out - y) ** 2, axis=-1)


def init_ensemble(
    dist: Any,
    model_config: ModelConfig,
    config: TrainConfig,
    seeds: Sequence[int],
    sweep: SweepConfig | None = None,
    *,
    abstract: bool = False,
) -> tuple[Ensemble, TrainState]:
    """Build the stacked initial state of every member (one per seed × sweep value).

    With ``abstract=True`` the parameters and optimizer state are only shapes and
    dtypes (``jax.ShapeDtypeStruct``, nothing is compiled or run): the template that
    loading a saved state needs.
    """
    seeds = tuple(int(s) for s in seeds)
    if not seeds:
        raise ToylabError("seeds must be a non-empty list of integers, got [].")
    if len(set(seeds)) != len(seeds):
        raise ToylabError(f"seeds must be distinct, got {list(seeds)!r}.")
    if config.data == "full" and dist.kind != "finite":
        raise ToylabError(
            f"[train] data='full' needs a finite distribution (modular arithmetic, boolean), "
            f"got {type(dist).__name__}. Use data='fresh' or 'fixed'."
        )
    values = sweep.values if sweep else (None,)
    members = [(s, v) for s in seeds for v in values]
    num = len(members)
    base = config.hyperparameters()
    hparams = {k: np.full((num,), v, np.float32) for k, v in base.items()}
    if sweep is not None:
        hparams[sweep.param] = np.array([v for _, v in members], np.float32)
    hparams_j = {k: jnp.asarray(v) for k, v in hparams.items()}

    seed_keys = jnp.stack([jax.random.key(s) for s, _ in members])
    init_keys = jax.vmap(lambda k: jax.random.fold_in(k, 0))(seed_keys)
    data_keys = jax.vmap(lambda k: jax.random.fold_in(k, 1))(seed_keys)

    graphdef, _ = nnx.split(build_model(model_config, dist, jax.random.key(0)), nnx.Param)

    def init_one(key, hp):
        _, params = nnx.split(build_model(model_config, dist, key), nnx.Param)
        return params, make_optimizer(config, hp).init(params)

    if abstract:
        params, opt_state = jax.eval_shape(jax.vmap(init_one), init_keys, hparams_j)
    else:
        params, opt_state = jax.jit(jax.vmap(init_one))(init_keys, hparams_j)

    train_data: Any = None
    if config.data == "fixed":
        train_data = jax.jit(
            jax.vmap(lambda k: dist.sample(jax.random.fold_in(k, 2), config.num_train)),
        )(data_keys)
        train_data = (train_data.x, train_data.y)
    elif config.data == "full":
        size = dist.domain.size
        num_train = max(1, int(round(config.train_fraction * size)))
        perms = jax.vmap(lambda k: jax.random.permutation(jax.random.fold_in(k, 2), size))(
            data_keys
        )
        train_data = (
            jnp.zeros((num, size), bool)
            .at[jnp.arange(num)[:, None], perms[:, :num_train]]
            .set(True)
        )

    if dist.kind == "finite":
        eval_x = jnp.asarray(dist.domain.inputs, jnp.float32)
        eval_y = jnp.asarray(dist.domain.labels)
    else:
        # one shared held-out set, independent of every seed's training data
        batch = dist.sample(jax.random.key(2**31 - 1), config.num_eval_samples)
        eval_x, eval_y = batch.x, batch.y

    ensemble = Ensemble(
        graphdef=graphdef,
        dist=dist,
        model_config=model_config,
        config=config,
        seeds=seeds,
        sweep=sweep,
        hparams=hparams_j,
        data_keys=data_keys,
        train_data=train_data,
        eval_x=eval_x,
        eval_y=eval_y,
    )
    state = TrainState(
        params=params,
        opt_state=opt_state,
        alive=jnp.ones((num,), bool),
        diverged_at=jnp.full((num,), -1, jnp.int32),
        step=jnp.zeros((), jnp.int32),
    )
    return ensemble, state


def _make_segment(ensemble: Ensemble) -> Callable[[TrainState, Any, Any], TrainState]:
    """A jitted ``(state, stop, train_data) -> state`` running steps ``state.step .. stop``."""
    config, dist, graphdef = ensemble.config, ensemble.dist, ensemble.graphdef
    loss_fn = _loss_fn(config, dist)

    def member_step(params, opt_state, alive, diverged_at, key, hp, data, step):
        if config.data == "fresh":
            batch = dist.sample(jax.random.fold_in(key, step), config.batch_size)
            x, y, w = batch.x, batch.y, None
        elif config.data == "fixed":
            idx = jax.random.randint(
                jax.random.fold_in(key, step), (config.batch_size,), 0, config.num_train
            )
            x, y, w = data[0][idx], data[1][idx], None
        else:
            x = jnp.asarray(dist.domain.inputs, jnp.float32)
            y = jnp.asarray(dist.domain.labels)
            w = data.astype(jnp.float32)

        def loss_of(p):
            per = loss_fn(nnx.merge(graphdef, p)(x), y)
            return jnp.mean(per) if w is None else jnp.sum(per * w) / jnp.sum(w)

        loss, grads = jax.value_and_grad(loss_of)(params)
        updates, new_opt = make_optimizer(config, hp).update(grads, opt_state, params)
        new_params = optax.apply_updates(params, updates)
        finite = jnp.isfinite(loss) & jnp.all(
            jnp.stack([jnp.all(jnp.isfinite(a)) for a in jax.tree.leaves(new_params)])
        )
        ok = alive & finite
        keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, old)  # noqa: E731
        diverged_at = jnp.where(alive & ~finite, step, diverged_at)
        return keep(new_params, params), keep(new_opt, opt_state), ok, diverged_at

    data_axis = None if ensemble.train_data is None else 0
    vstep = jax.vmap(member_step, in_axes=(0, 0, 0, 0, 0, 0, data_axis, None))

    def segment(state: TrainState, stop, train_data) -> TrainState:
        def body(s: TrainState) -> TrainState:
            p, o, a, d = vstep(
                s.params, s.opt_state, s.alive, s.diverged_at,
                ensemble.data_keys, ensemble.hparams, train_data, s.step,
            )  # fmt: skip
            return TrainState(p, o, a, d, s.step + 1)

        return jax.lax.while_loop(lambda s: s.step < stop, body, state)

    return jax.jit(segment)


def evaluate(ensemble: Ensemble, params: Any) -> dict[str, np.ndarray]:
    """Held-out metrics of every member: ``loss``, ``accuracy`` (classification),
    ``bayes_gap`` (Bayes-optimal accuracy minus accuracy, where known) and, for
    ``data="full"``, ``train_accuracy`` and ``test_accuracy``."""
    return _evaluate_jit(ensemble)(params)


def _evaluate_jit(ensemble: Ensemble):
    cached = _EVAL_CACHE.get(id(ensemble))
    if cached is not None and cached[0] is ensemble:
        return cached[1]
    config, dist, graphdef = ensemble.config, ensemble.dist, ensemble.graphdef
    loss_fn = _loss_fn(config, dist)
    x, y = ensemble.eval_x, ensemble.eval_y

    def one(p, mask):
        out = nnx.merge(graphdef, p)(x)
        res = {"loss": jnp.mean(loss_fn(out, y))}
        if dist.num_classes > 0:
            correct = (jnp.argmax(out, -1) == y).astype(jnp.float32)
            res["accuracy"] = jnp.mean(correct)
            if mask is not None:
                m = mask.astype(jnp.float32)
                res["train_accuracy"] = jnp.sum(correct * m) / jnp.maximum(jnp.sum(m), 1)
                res["test_accuracy"] = jnp.sum(correct * (1 - m)) / jnp.maximum(jnp.sum(1 - m), 1)
        return res

    mask = ensemble.train_data if config.data == "full" else None
    fn = jax.jit(
        lambda params: jax.vmap(one, in_axes=(0, None if mask is None else 0))(params, mask)
    )
    bayes = _bayes_accuracy(dist)

    def run(params):
        res = {k: np.asarray(v, np.float64) for k, v in fn(params).items()}
        if bayes is not None and "accuracy" in res:
            res["bayes_gap"] = bayes - res["accuracy"]
        return res

    _EVAL_CACHE.clear()
    _EVAL_CACHE[id(ensemble)] = (ensemble, run)
    return run


_EVAL_CACHE: dict[int, Any] = {}


def _bayes_accuracy(dist: Any) -> float | None:
    if dist.num_classes == 0:
        return None
    try:
        return float(dist.bayes().accuracy)
    except ToylabError:
        return None


def event_steps(config: TrainConfig, start: int = 0) -> list[int]:
    """Steps after ``start`` at which training pauses to log or checkpoint."""
    logs = set(range(0, config.num_steps + 1, config.log_every)) | {config.num_steps}
    return sorted(s for s in logs | set(checkpoint_steps(config)) if s > start)


def train(
    dist: Any,
    model_config: ModelConfig,
    config: TrainConfig,
    seeds: Sequence[int] = (0,),
    sweep: SweepConfig | None = None,
    *,
    state: TrainState | None = None,
    callback: Callable[[Ensemble, TrainState, dict[str, Any] | None, bool], None] | None = None,
    progress: bool = False,
) -> TrainResult:
    """Train an ensemble; see the module docstring.

    ``state`` resumes from a saved :class:`TrainState` (from
    :func:`toylab.runs.load_run`). ``callback(ensemble, state, metrics, is_checkpoint)``
    is called at step 0 (for a fresh run) and at every log or checkpoint step;
    ``metrics`` is ``None`` at checkpoint-only steps. Returns the final state, the
    metric records and the parameters at every checkpoint step reached here.
    """
    ensemble, init_state = init_ensemble(dist, model_config, config, seeds, sweep)
    if state is None:
        state = init_state
    segment = _make_segment(ensemble)
    ck = set(checkpoint_steps(config))
    metrics: list[dict[str, Any]] = []
    checkpoints: dict[int, Any] = {}

    def record(st: TrainState) -> None:
        step = int(st.step)
        rec = None
        if step % config.log_every == 0 or step == config.num_steps:
            rec = {"step": step, **evaluate(ensemble, st.params)}
            metrics.append(rec)
        if step in ck:
            checkpoints[step] = st.params
        if callback is not None:
            callback(ensemble, st, rec, step in ck)

    start = int(state.step)
    # compile before the clock starts, so the progress bar's rate is the training rate
    segment = segment.lower(state, jnp.int32(0), ensemble.train_data).compile()  # type: ignore[attr-defined]
    if start == 0:
        record(state)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=config.num_steps, initial=start, unit="step", desc="training")
    for stop in event_steps(config, start):
        state = segment(state, jnp.int32(stop), ensemble.train_data)
        record(state)
        if bar is not None:
            bar.update(stop - bar.n)
            if metrics and "accuracy" in metrics[-1]:
                bar.set_postfix(acc=f"{np.mean(metrics[-1]['accuracy']):.3f}")
    if bar is not None:
        bar.close()
    return TrainResult(ensemble, state, metrics, checkpoints)
