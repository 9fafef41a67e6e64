"""Training configuration."""

from __future__ import annotations

import dataclasses
import itertools
import math
from typing import Any

import numpy as np

from toylab._errors import ToylabError, did_you_mean

__all__ = [
    "SWEEPABLE",
    "SweepAxis",
    "SweepConfig",
    "TrainConfig",
    "checkpoint_steps",
    "format_value",
]

OPTIMIZERS = ("sgd", "momentum", "adam", "adamw")
SCHEDULES = ("constant", "cosine", "warmup_cosine", "exponential")
LOSSES = ("cross_entropy", "mse", "importance_mse")
DATA_MODES = ("fresh", "fixed", "full")
#: hyperparameters that vary per member inside one compiled program (arguments, not constants)
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


#: ``[train]`` fields a sweep may not vary: every member shares the run's steps, logging,
#: checkpoints and held-out set size.
UNSWEEPABLE_TRAIN = ("num_steps", "log_every", "checkpoints", "num_eval_samples")
SECTIONS = ("train", "model", "distribution")


def _frozen(value: Any) -> Any:
    """A TOML value made hashable: lists become tuples (recursively)."""
    if isinstance(value, list | tuple):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _frozen(v)) for k, v in value.items()))
    return value


def _plain(value: Any) -> Any:
    """The TOML form of a swept value (tuples become lists)."""
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def format_value(value: Any) -> str:
    """A swept value as a member label shows it: ``0.1``, ``1e+06``, ``[5]``, ``'adam'``,
    ``[{channels=8, kernel=3}]`` (a list of tables, as ``model.conv``)."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return f"{value:g}"
    if _is_table(value):  # a table, frozen by _frozen: {channels=8, kernel=3}
        return "{" + ", ".join(f"{k}={format_value(v)}" for k, v in value) + "}"
    if isinstance(value, tuple):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    return repr(value)


def _is_table(value: Any) -> bool:
    return (
        isinstance(value, tuple)
        and len(value) > 0
        and all(isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str) for p in value)
    )


def _check_path(param: Any) -> str:
    """The canonical dotted path of an axis (``"learning_rate"`` is ``"train.learning_rate"``,
    as the first sweeps wrote it); the section and, for ``train`` and ``model``, the field
    must exist. Distribution parameters are checked against the distribution when the
    members are built (:func:`toylab.train.sweep.sweep_members`)."""
    if not isinstance(param, str) or not param:
        raise ToylabError(
            f"[sweep] param must be a dotted path such as 'train.learning_rate' or "
            f"'distribution.feature_probability', got {param!r}."
        )
    if param in SWEEPABLE:
        param = "train." + param
    section, _, rest = param.partition(".")
    if section not in SECTIONS or not rest:
        raise ToylabError(
            f"[sweep] param must be a dotted path '<section>.<field>' with section one of "
            f"{list(SECTIONS)}, got {param!r}. Examples: 'train.weight_decay', "
            "'distribution.feature_probability', 'model.hidden'." + did_you_mean(section, SECTIONS)
        )
    if section == "train":
        fields = tuple(f.name for f in dataclasses.fields(TrainConfig))
        if rest not in fields:
            raise ToylabError(
                f"[sweep] param {param!r}: [train] has no field {rest!r}."
                + did_you_mean(rest, fields)
                + f" Fields: {', '.join(f for f in fields if f not in UNSWEEPABLE_TRAIN)}."
            )
        if rest in UNSWEEPABLE_TRAIN:
            raise ToylabError(
                f"[sweep] param {param!r} cannot be swept: every member of a run shares its "
                f"steps, logging, checkpoints and held-out set ({', '.join(UNSWEEPABLE_TRAIN)}). "
                "Run one experiment per value instead."
            )
    elif section == "model":
        from toylab.models import ModelConfig
        from toylab.models.init import InitConfig

        head, _, sub = rest.partition(".")
        fields = tuple(f.name for f in dataclasses.fields(ModelConfig))
        if head not in fields or (sub and head != "init"):
            raise ToylabError(
                f"[sweep] param {param!r}: [model] has no field {rest!r}."
                + did_you_mean(rest, fields + tuple(f"init.{f}" for f in InitConfig.FIELDS))
                + f" Fields: {', '.join(fields)} (and init.<{'|'.join(InitConfig.FIELDS)}>)."
            )
        if sub and sub not in InitConfig.FIELDS:
            raise ToylabError(
                f"[sweep] param {param!r}: [model] init has no field {sub!r}."
                + did_you_mean(sub, InitConfig.FIELDS)
                + f" Fields: {', '.join(InitConfig.FIELDS)}."
            )
    return param


@dataclasses.dataclass(frozen=True)
class SweepAxis:
    """One axis of a sweep: the config field at dotted path ``param`` takes ``values``."""

    param: str
    values: tuple[Any, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "param", _check_path(self.param))
        if not isinstance(self.values, list | tuple) or not self.values:
            raise ToylabError(
                f"[sweep] values of {self.param!r} must be a non-empty list, got {self.values!r}."
            )
        values = tuple(_frozen(v) for v in self.values)
        if len(set(map(repr, values))) != len(values):
            raise ToylabError(
                f"[sweep] values of {self.param!r} must be distinct, got {list(self.values)!r}."
            )
        object.__setattr__(self, "values", values)

    @property
    def section(self) -> str:
        return self.param.partition(".")[0]

    @property
    def field(self) -> str:
        """The path inside its section (``"learning_rate"``, ``"init.weight_scale"``)."""
        return self.param.partition(".")[2]


@dataclasses.dataclass(frozen=True, init=False)
class SweepConfig:
    """Vary config fields across ensemble members: a grid over one or several axes.

    ``SweepConfig("train.learning_rate", (1e-3, 1e-2))`` is one axis;
    ``SweepConfig(axes=[("distribution.feature_probability", (0.1, 0.01)),
    ("train.weight_decay", (0.0, 1e-3))])`` the grid product of two. An axis names any
    config field by its dotted path: ``train.<field>`` (except the run-wide
    ``num_steps``, ``log_every``, ``checkpoints``, ``num_eval_samples``),
    ``model.<field>`` (``model.hidden``, ``model.init.weight_scale``, ...) or
    ``distribution.<parameter>``. Every seed is trained at every grid point: member
    ``i`` has seed ``seeds[i // P]`` and grid point ``points()[i % P]`` (``P`` points,
    the first axis varying slowest). Each member's config is built and validated by the
    field's own validators (:func:`toylab.train.sweep.sweep_members`); members whose
    shapes agree train in one compiled program.
    """

    axes: tuple[SweepAxis, ...]

    def __init__(self, param: str | None = None, values: Any = None, *, axes: Any = None) -> None:
        if axes is None:
            if param is None:
                raise ToylabError(
                    "[sweep] needs param and values (one axis) or [[sweep.axes]] tables. "
                    "Example: param = 'train.learning_rate', values = [0.001, 0.01]."
                )
            axes = (SweepAxis(param, values),)
        elif param is not None or values is not None:
            raise ToylabError(
                "[sweep] takes either param/values (one axis) or axes (several), not both."
            )
        if not isinstance(axes, list | tuple) or not axes:
            raise ToylabError(f"[sweep] axes must be a non-empty list of axes, got {axes!r}.")
        out = []
        for a in axes:
            if isinstance(a, SweepAxis):
                out.append(a)
            elif isinstance(a, dict):
                unknown = sorted(set(a) - {"param", "values"})
                if unknown or "param" not in a or "values" not in a:
                    raise ToylabError(
                        f"[[sweep.axes]] tables hold exactly param and values, got {sorted(a)}."
                        + (did_you_mean(unknown[0], ("param", "values")) if unknown else "")
                    )
                out.append(SweepAxis(a["param"], a["values"]))
            elif isinstance(a, list | tuple) and len(a) == 2:
                out.append(SweepAxis(a[0], a[1]))
            else:
                raise ToylabError(
                    f"[sweep] axes must hold (param, values) pairs or tables, got {a!r}."
                )
        params = [a.param for a in out]
        dup = sorted({p for p in params if params.count(p) > 1})
        if dup:
            raise ToylabError(f"[sweep] each field may be swept by one axis only; {dup} repeat.")
        object.__setattr__(self, "axes", tuple(out))

    # the one-axis form of the first sweeps
    @property
    def param(self) -> str:
        """The swept field's name (``"learning_rate"``; ``"a × b"`` for several axes)."""
        return " × ".join(self.names)

    @property
    def values(self) -> tuple[Any, ...]:
        """The values of a one-axis sweep (for several axes: the grid points)."""
        return self.axes[0].values if len(self.axes) == 1 else tuple(self.points())

    @property
    def names(self) -> tuple[str, ...]:
        """Short names of the axes (the last part of the path, unless two axes share it)."""
        short = [a.param.rsplit(".", 1)[1] for a in self.axes]
        return tuple(
            s if short.count(s) == 1 else a.param for s, a in zip(short, self.axes, strict=True)
        )

    @property
    def num_points(self) -> int:
        return math.prod(len(a.values) for a in self.axes)

    def points(self) -> list[tuple[Any, ...]]:
        """The grid points, first axis slowest (``itertools.product`` order)."""
        return list(itertools.product(*(a.values for a in self.axes)))

    def label(self, point: tuple[Any, ...]) -> str:
        """``"feature_probability=0.1, hidden=[5]"``."""
        return ", ".join(f"{n}={format_value(v)}" for n, v in zip(self.names, point, strict=True))

    def describe(self) -> str:
        """``"feature_probability = [1, 0.3] × weight_decay = [0, 0.01]"``."""
        return " × ".join(f"{a.param} = {format_value(a.values)}" for a in self.axes)

    def to_dict(self) -> dict[str, Any]:
        """The TOML ``[sweep]`` table: ``param``/``values`` for one axis, else ``axes``."""
        if len(self.axes) == 1:
            a = self.axes[0]
            return {"param": a.param, "values": _plain(a.values)}
        return {"axes": [{"param": a.param, "values": _plain(a.values)} for a in self.axes]}
