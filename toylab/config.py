"""Experiment configs: one TOML file describes distribution, model, training and seeds.

.. code-block:: toml

    name = "blobs"
    seeds = [0, 1, 2, 3]

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

    [sweep]                      # optional
    param = "train.learning_rate"
    values = [0.001, 0.01]
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

    def to_dict(self) -> dict[str, Any]:
        """A TOML-serialisable dict (``parse_config(c.to_dict()) == c``)."""
        out: dict[str, Any] = {
            "name": self.name,
            "seeds": list(self.seeds),
            "distribution": dict(self.distribution),
            "model": {**dataclasses.asdict(self.model), "hidden": list(self.model.hidden)},
            "train": dataclasses.asdict(self.train),
        }
        if isinstance(out["train"]["checkpoints"], tuple):
            out["train"]["checkpoints"] = list(out["train"]["checkpoints"])
        if self.sweep is not None:
            out["sweep"] = {"param": "train." + self.sweep.param, "values": list(self.sweep.values)}
        return out

    def resolved(self) -> ExperimentConfig:
        """The config with the distribution's defaults filled in."""
        from toylab.distributions import to_config

        return dataclasses.replace(self, distribution=to_config(self.make_distribution()))


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
            f"For {seeds} seeds write seeds = {list(range(seeds))!r}."
        )
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
    sweep = _build(SweepConfig, "sweep", data["sweep"]) if "sweep" in data else None
    config = ExperimentConfig(name, tuple(seeds), dict(dist), model, train, sweep)
    config.make_distribution()  # validate the distribution now, with its own errors
    return config


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
