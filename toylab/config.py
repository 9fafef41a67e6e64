"""Experiment configs: one TOML file describes distribution, model, training and seeds.

.. code-block:: toml

    name = "blobs"
    seeds = [0, 1, 2, 3]      # or seeds = { range = 64 } for seeds 0 to 63

    [distribution]
    name = "two_blobs"
    distance = 3.0

    [model]
    kind = "mlp"
    hidden = [8, 8]
    activation = "relu"

    [train]
    optimizer = "adam"
    learning_rate = 0.01
    num_steps = 2000

    [sweep]                      # optional: one axis
    param = "train.learning_rate"
    values = [0.001, 0.01]

**Sweeps.** ``[sweep]`` varies config fields across the ensemble's members. One axis is
``param``/``values`` as above; several axes are ``[[sweep.axes]]`` tables, and every seed
is trained at every point of their grid (the first axis varies slowest)::

    [distribution]
    name = "sparse_features"
    num_features = 20
    importance_decay = 0.7       # importance_i = 0.7**i

    [[sweep.axes]]
    param = "distribution.feature_probability"   # 1 - sparsity
    values = [1.0, 0.3, 0.1, 0.03, 0.01]

    [[sweep.axes]]
    param = "train.weight_decay"
    values = [0.0, 0.001]

``param`` is a field's dotted path: ``train.<field>`` (any but ``num_steps``,
``log_every``, ``checkpoints``, ``num_eval_samples``, which every member shares),
``model.<field>`` (``model.hidden``, ``model.activation``, ``model.init.weight_scale``,
...) or ``distribution.<parameter>`` (the ``[distribution]`` table may leave a swept
parameter out). Every member's config is built and checked by the field's own
validators, so a bad value is an error naming the axis and the value. Members whose
shapes agree train in one compiled program (hyperparameters, initialiser scales and
numeric distribution parameters are per-member arrays); values that change shapes
(``model.hidden``, ``distribution.num_features``, ...) split the members into shape
groups, one program each. Members are named by their seed and swept values
(``"seed 0, feature_probability=0.1, weight_decay=0"``).

**Initialisers.** ``[model] init = {weights = "normal", weight_scale = 0.1, biases =
"zeros", bias_scale = 1.0}`` (see :class:`toylab.models.init.InitConfig`); omitted, each
model keeps its own default.

**Conv nets.** ``kind = "conv"`` trains a :class:`toylab.models.ConvNet` on images (a
distribution with an ``image_shape``, or ``image_shape = [H, W]`` in ``[model]``)::

    [model]
    kind = "conv"
    conv = [{channels = 8, kernel = 5}, {channels = 8, kernel = 3, pool = "max"}]
    hidden = []

Each block takes ``channels``, ``kernel``, ``stride``, ``padding`` (``"same"``/
``"valid"``), ``pool`` (``"avg"``/``"max"``), ``pool_window``, ``pool_stride`` (see
:class:`toylab.models.conv.ConvSpec`).
"""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from typing import Any

from toylab._errors import ToylabError, did_you_mean
from toylab.models import ModelConfig
from toylab.train import SweepConfig, TrainConfig

__all__ = ["ExperimentConfig", "load_config", "parse_config"]

_TOP = ("name", "seeds", "distribution", "model", "train", "sweep")


def _known(section: str, data: dict[str, Any], fields: tuple[str, ...]) -> None:
    for key in data:
        if key not in fields:
            where = f"[{section}]" if section else "the top level"
            raise ToylabError(
                f"unknown key {key!r} in {where} of the config; valid keys are "
                f"{sorted(fields)}." + did_you_mean(key, fields)
            )


def _build(cls: Any, section: str, data: Any) -> Any:
    if not isinstance(data, dict):
        raise ToylabError(f"[{section}] must be a table, got {data!r}.")
    fields = tuple(f.name for f in dataclasses.fields(cls))
    _known(section, data, fields)
    try:
        return cls(**data)
    except TypeError as e:  # pragma: no cover - guarded by _known
        raise ToylabError(f"[{section}] {e}") from None


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    """A whole experiment. ``distribution`` is ``{"name": ..., **params}`` (see
    :func:`toylab.distributions.make`)."""

    name: str
    seeds: tuple[int, ...]
    distribution: dict[str, Any]
    model: ModelConfig
    train: TrainConfig
    sweep: SweepConfig | None = None

    def make_distribution(self) -> Any:
        """The ``[distribution]`` table's distribution (a sweep's members have their own:
        :meth:`member_dists`)."""
        from toylab.distributions import make

        params = dict(self.distribution)
        name = params.pop("name", None)
        if name is None:
            raise ToylabError(
                f"[distribution] needs a name, e.g. name = 'two_blobs'; got {self.distribution!r}."
            )
        try:
            return make(name, **params)
        except ToylabError as e:  # say where in the config the mistake is, in its words
            msg = str(e).removeprefix(f"make({name!r}): ").removeprefix("make: ")
            raise type(e)(
                msg if msg.startswith("[distribution]") else f"[distribution] {msg}"
            ) from None

    @property
    def sweeps_distribution(self) -> bool:
        return self.sweep is not None and any(a.section == "distribution" for a in self.sweep.axes)

    def members(self) -> tuple[Any, ...]:
        """Every member (:class:`toylab.train.sweep.Member`: seed, swept values, its own
        distribution and configs), in training order; validates each member's config."""
        from toylab.train.sweep import sweep_members

        dist = self.distribution if self.sweeps_distribution else self.make_distribution()
        return sweep_members(dist, self.model, self.train, self.seeds, self.sweep)

    def to_dict(self) -> dict[str, Any]:
        """A TOML-serialisable dict (``parse_config(c.to_dict()) == c``)."""
        model = self.model.to_dict()  # configs written before init/conv existed stay as they were
        out: dict[str, Any] = {
            "name": self.name,
            "seeds": list(self.seeds),
            "distribution": dict(self.distribution),
            "model": model,
            "train": dataclasses.asdict(self.train),
        }
        if isinstance(out["train"]["checkpoints"], tuple):
            out["train"]["checkpoints"] = list(out["train"]["checkpoints"])
        if self.sweep is not None:
            out["sweep"] = self.sweep.to_dict()
        return out

    def resolved(self) -> ExperimentConfig:
        """The config with the distribution's defaults filled in (under a distribution
        sweep: those of the first member, less the swept parameters)."""
        from toylab.distributions import to_config

        if not self.sweeps_distribution:
            return dataclasses.replace(self, distribution=to_config(self.make_distribution()))
        assert self.sweep is not None
        swept = {a.field for a in self.sweep.axes if a.section == "distribution"}
        first = to_config(self.members()[0].dist)
        if "name" in swept:
            return self
        kept = {k: v for k, v in first.items() if k not in swept}
        return dataclasses.replace(self, distribution=kept)


def _seed_range(table: dict[str, Any]) -> list[int]:
    """``seeds = { range = N }`` (seeds ``0 .. N-1``) or ``{ range = N, start = S }``
    (seeds ``S .. S+N-1``): the many-seed form, written back as a list."""
    _known("seeds", table, ("range", "start"))
    n, start = table.get("range"), table.get("start", 0)
    for name, v, low in (("range", n, 1), ("start", start, 0)):
        if not isinstance(v, int) or isinstance(v, bool) or v < low:
            raise ToylabError(
                f"config: seeds.{name} must be an integer >= {low}, got {v!r}. "
                "Write seeds = { range = 64 } for seeds 0 to 63."
            )
    assert isinstance(n, int) and isinstance(start, int)
    return list(range(start, start + n))


def parse_config(data: dict[str, Any]) -> ExperimentConfig:
    """Validate a config dict (as read from TOML) and build an :class:`ExperimentConfig`."""
    if not isinstance(data, dict):
        raise ToylabError(f"a config must be a table, got {type(data).__name__}.")
    _known("", data, _TOP)
    name = data.get("name", "experiment")
    if not isinstance(name, str) or not name:
        raise ToylabError(f"config: name must be a non-empty string, got {name!r}.")
    seeds = data.get("seeds", [0])
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        raise ToylabError(
            f"config: seeds must be a list of integers, got {seeds!r}. "
            f"For {seeds} seeds write seeds = {{ range = {seeds} }} (seeds 0 to {seeds - 1})."
        )
    if isinstance(seeds, dict):
        seeds = _seed_range(seeds)
    if (
        not isinstance(seeds, list)
        or not seeds
        or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds)
    ):
        raise ToylabError(
            f"config: seeds must be a non-empty list of integers >= 0, got {seeds!r}."
        )
    if len(set(seeds)) != len(seeds):
        raise ToylabError(f"config: seeds must be distinct, got {seeds!r}.")
    dist = data.get("distribution", {"name": "two_blobs"})
    if not isinstance(dist, dict):
        raise ToylabError(f"[distribution] must be a table, got {dist!r}.")
    model = _build(ModelConfig, "model", data.get("model", {}))
    train = _build(TrainConfig, "train", data.get("train", {}))
    sweep = _sweep(data["sweep"]) if "sweep" in data else None
    config = ExperimentConfig(name, tuple(seeds), dict(dist), model, train, sweep)
    if not config.sweeps_distribution:
        config.make_distribution()  # validate the distribution now, with its own errors
    if sweep is not None:
        config.members()  # validate every member's config (the axes' values)
    return config


def _sweep(data: Any) -> SweepConfig:
    if not isinstance(data, dict):
        raise ToylabError(f"[sweep] must be a table, got {data!r}.")
    _known("sweep", data, ("param", "values", "axes"))
    if "axes" in data:
        if set(data) != {"axes"}:
            raise ToylabError(
                "[sweep] takes either param/values (one axis) or [[sweep.axes]] tables, not "
                "both. Move the axis into a [[sweep.axes]] table."
            )
        return SweepConfig(axes=data["axes"])
    if "param" not in data or "values" not in data:
        raise ToylabError(
            f"[sweep] needs param and values, got {sorted(data)}. Example: param = "
            "'train.learning_rate', values = [0.001, 0.01]; or [[sweep.axes]] tables."
        )
    return SweepConfig(data["param"], data["values"])


def load_config(path: str | Path) -> ExperimentConfig:
    """Read and validate a TOML experiment config."""
    path = Path(path)
    if not path.is_file():
        raise ToylabError(f"config file {str(path)!r} does not exist. Check the path.")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ToylabError(f"config file {str(path)!r} is not valid TOML: {e}.") from None
    except UnicodeDecodeError:
        raise ToylabError(f"config file {str(path)!r} is not UTF-8 text.") from None
    return parse_config(data)
