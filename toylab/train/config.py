"""Training configuration."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from toylab._errors import ToylabError, did_you_mean

__all__ = ["SWEEPABLE", "SweepConfig", "TrainConfig", "checkpoint_steps"]

OPTIMIZERS = ("sgd", "momentum", "adam", "adamw")
SCHEDULES = ("constant", "cosine", "warmup_cosine", "exponential")
LOSSES = ("cross_entropy", "mse", "importance_mse")
DATA_MODES = ("fresh", "fixed", "full")
#: hyperparameters that a sweep may vary inside one compiled program
SWEEPABLE = ("learning_rate", "weight_decay", "momentum")


def _choice(section: str, name: str, value: Any, options: tuple[str, ...]) -> None:
    if value not in options:
        raise ToylabError(
            f"[{section}] {name} must be one of {list(options)}, got {value!r}."
            + did_you_mean(str(value), options)
        )


def _positive_int(section: str, name: str, value: Any, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ToylabError(f"[{section}] {name} must be an integer >= {minimum}, got {value!r}.")


def _nonneg_float(section: str, name: str, value: Any, *, positive: bool = False) -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (positive and value == 0):
        bound = "> 0" if positive else ">= 0"
        raise ToylabError(f"[{section}] {name} must be a finite number {bound}, got {value!r}.")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How to train.

    Attributes:
      optimizer: ``"sgd"``, ``"momentum"`` (SGD with heavy-ball ``momentum``),
        ``"adam"`` or ``"adamw"`` (decoupled ``weight_decay``). For the others a
        non-zero ``weight_decay`` adds ``weight_decay * params`` to the gradient.
      learning_rate: peak learning rate.
      schedule: ``"constant"``, ``"cosine"`` (decay to 0 over ``num_steps``),
        ``"warmup_cosine"`` (linear warm-up for ``warmup_steps``, then cosine) or
        ``"exponential"`` (multiplied by ``decay_rate`` over the whole run).
      loss: ``"cross_entropy"`` (classification), ``"mse"`` (one-hot targets for
        classification, raw targets for regression) or ``"importance_mse"``
        (per-feature importance of a sparse-feature distribution).
      data: ``"fresh"`` (a new batch from the distribution every step),
        ``"fixed"`` (a training set of ``num_train`` samples drawn once per seed,
        minibatches of ``batch_size``) or ``"full"`` (finite tasks: full batch on a
        random ``train_fraction`` of the whole domain, per seed).
      log_every: steps between metric records.
      checkpoints: ``"log:N"`` for N log-spaced steps, or an explicit list of steps;
        step 0 and the last step are always saved.
      num_eval_samples: held-out samples for evaluation (continuous distributions).
    """

    optimizer: str = "adam"
    learning_rate: float = 1e-2
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: str = "constant"
    warmup_steps: int = 0
    decay_rate: float = 0.1
    num_steps: int = 1000
    batch_size: int = 128
    loss: str = "cross_entropy"
    data: str = "fresh"
    num_train: int = 1024
    train_fraction: float = 0.5
    log_every: int = 100
    checkpoints: Any = "log:8"
    num_eval_samples: int = 4096

    def __post_init__(self) -> None:
        s = "train"
        _choice(s, "optimizer", self.optimizer, OPTIMIZERS)
        _choice(s, "schedule", self.schedule, SCHEDULES)
        _choice(s, "loss", self.loss, LOSSES)
        _choice(s, "data", self.data, DATA_MODES)
        _nonneg_float(s, "learning_rate", self.learning_rate, positive=True)
        _nonneg_float(s, "momentum", self.momentum)
        if self.momentum >= 1:
            raise ToylabError(f"[train] momentum must be in [0, 1), got {self.momentum!r}.")
        _nonneg_float(s, "weight_decay", self.weight_decay)
        _nonneg_float(s, "decay_rate", self.decay_rate, positive=True)
        _positive_int(s, "num_steps", self.num_steps)
        _positive_int(s, "batch_size", self.batch_size)
        _positive_int(s, "num_train", self.num_train)
        _positive_int(s, "log_every", self.log_every)
        _positive_int(s, "warmup_steps", self.warmup_steps, minimum=0)
        _positive_int(s, "num_eval_samples", self.num_eval_samples)
        if not (isinstance(self.train_fraction, int | float) and 0 < self.train_fraction <= 1):
            raise ToylabError(
                f"[train] train_fraction must be in (0, 1], got {self.train_fraction!r}."
            )
        if self.warmup_steps >= self.num_steps and self.schedule == "warmup_cosine":
            raise ToylabError(
                f"[train] warmup_steps must be < num_steps ({self.num_steps}), got "
                f"{self.warmup_steps}."
            )
        checkpoint_steps(self)  # validates the checkpoints field
        if isinstance(self.checkpoints, list):  # hashable: the config keys compiled programs
            object.__setattr__(self, "checkpoints", tuple(self.checkpoints))

    def hyperparameters(self) -> dict[str, float]:
        return {name: float(getattr(self, name)) for name in SWEEPABLE}


def checkpoint_steps(config: TrainConfig) -> list[int]:
    """The steps at which parameters are saved (always including 0 and ``num_steps``)."""
    ck = config.checkpoints
    n = config.num_steps
    if isinstance(ck, str):
        head, _, count = ck.partition(":")
        if head != "log" or not count.isdigit() or int(count) < 1:
            raise ToylabError(
                f"[train] checkpoints must be 'log:N' (N log-spaced steps) or a list of steps, "
                f"got {ck!r}. Example: checkpoints = 'log:8'."
            )
        steps = {int(round(s)) for s in np.geomspace(1, n, int(count))}
    elif isinstance(ck, list | tuple):
        for s_ in ck:
            if isinstance(s_, bool) or not isinstance(s_, int) or not 0 <= s_ <= n:
                raise ToylabError(
                    f"[train] checkpoints must hold integer steps in [0, num_steps={n}], got "
                    f"{s_!r}."
                )
        steps = set(ck)
    else:
        raise ToylabError(f"[train] checkpoints must be 'log:N' or a list of steps, got {ck!r}.")
    return sorted(steps | {0, n})


@dataclasses.dataclass(frozen=True)
class SweepConfig:
    """Vary one training hyperparameter across ensemble members.

    Every seed is trained with every value, in one compiled program; member ``i``
    has seed ``seeds[i // len(values)]`` and value ``values[i % len(values)]``.
    """

    param: str
    values: tuple[float, ...]

    def __post_init__(self) -> None:
        name = self.param.removeprefix("train.")
        if name not in SWEEPABLE:
            raise ToylabError(
                f"[sweep] param must be one of {['train.' + p for p in SWEEPABLE]}, got "
                f"{self.param!r}. Only these can vary inside one compiled program; for "
                "model shapes, run one experiment per shape." + did_you_mean(name, SWEEPABLE)
            )
        object.__setattr__(self, "param", name)
        if not isinstance(self.values, list | tuple) or not self.values:
            raise ToylabError(f"[sweep] values must be a non-empty list, got {self.values!r}.")
        for v in self.values:
            _nonneg_float("sweep", "values", v, positive=(name == "learning_rate"))
        object.__setattr__(self, "values", tuple(float(v) for v in self.values))
