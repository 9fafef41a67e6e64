"""The members of a sweep: every seed at every grid point, each with its own config.

:func:`sweep_members` builds, for every grid point of a :class:`SweepConfig`, the
distribution, model config and training config that the point's values give, through
the fields' own validators (a bad value is an error naming the axis, the value and
the fix), and lists the members in training order: member ``i`` has seed
``seeds[i // P]`` and grid point ``i % P`` (``P`` points, first axis slowest).
:func:`toylab.train.init_members` then groups the members by shape: each group is one
compiled program.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from toylab._errors import ToylabError, did_you_mean
from toylab.train.config import SweepAxis, SweepConfig, TrainConfig, format_value

__all__ = ["Member", "base_distribution", "point_configs", "sweep_members"]


@dataclasses.dataclass(frozen=True)
class Member:
    """One member of an experiment: its index, seed, swept values and configs."""

    index: int
    seed: int
    point: tuple[Any, ...]  # the swept values, in the sweep's axis order (() unswept)
    dist: Any
    model: Any  # ModelConfig
    train: TrainConfig
    label: str

    def values(self, sweep: SweepConfig | None) -> dict[str, Any]:
        """``{short axis name: value}`` (empty without a sweep)."""
        if sweep is None:
            return {}
        return dict(zip(sweep.names, self.point, strict=True))


def _fail(axes: Sequence[SweepAxis], point: dict[str, Any], e: ToylabError) -> ToylabError:
    what = ", ".join(f"{a.param} = {format_value(point[a.param])}" for a in axes)
    return ToylabError(f"[sweep] {what} gives an invalid member: {e}")


def _check_dist_param(axis: SweepAxis, name: Any) -> None:
    from toylab.distributions.registry import REGISTRY, _params

    if not isinstance(name, str) or name not in REGISTRY or axis.field == "name":
        return  # make() reports a bad name; sweeping the name itself is allowed
    every, _ = _params(name)
    if axis.field not in every:
        raise ToylabError(
            f"[sweep] param {axis.param!r}: distribution {name!r} has no parameter "
            f"{axis.field!r}.{did_you_mean(axis.field, every)} Parameters: {', '.join(every)}."
        )


def base_distribution(dist: Any) -> dict[str, Any]:
    """``dist`` (an object or a ``{"name": ..., **params}`` config) as a config dict."""
    if isinstance(dist, dict):
        return dict(dist)
    from toylab.distributions import to_config

    return to_config(dist)


def point_configs(
    dist: Any, model: Any, train: TrainConfig, sweep: SweepConfig | None
) -> list[tuple[tuple[Any, ...], Any, Any, TrainConfig]]:
    """``(point, dist, model config, train config)`` of every grid point (one, unswept).

    ``dist`` is a distribution or its config dict; a distribution axis overrides that
    parameter of the config (the base may leave swept parameters out)."""
    from toylab.distributions import make

    if sweep is None:
        return [((), dist if not isinstance(dist, dict) else _make(dist), model, train)]
    dist_axes = [a for a in sweep.axes if a.section == "distribution"]
    base = base_distribution(dist) if dist_axes else None
    if base is not None:
        name = base.get("name")
        for a in dist_axes:
            if a.field == "name":
                name = None
        for a in dist_axes:
            _check_dist_param(a, name)
    out = []
    for point in sweep.points():
        values = {a.param: v for a, v in zip(sweep.axes, point, strict=True)}
        t, m = train, model
        for a in sweep.axes:
            v = values[a.param]
            try:
                if a.section == "train":
                    t = dataclasses.replace(t, **{a.field: _plain(v)})
                elif a.section == "model" and a.field.startswith("init."):
                    init = dataclasses.replace(m.init, **{a.field[5:]: v})
                    m = dataclasses.replace(m, init=init)
                elif a.section == "model":
                    m = dataclasses.replace(m, **{a.field: v})
            except ToylabError as e:
                raise _fail([a], values, e) from None
        if base is None:
            d = dist
        else:
            params = {**base, **{a.field: _plain(values[a.param]) for a in dist_axes}}
            try:
                d = make(**params)
            except ToylabError as e:
                msg = str(e).removeprefix(f"make({params.get('name')!r}): ")
                raise _fail(dist_axes, values, ToylabError(f"[distribution] {msg}")) from None
        out.append((point, d, m, t))
    return out


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _make(config: dict[str, Any]) -> Any:
    from toylab.distributions import make

    params = dict(config)
    return make(params.pop("name"), **params)


def sweep_members(
    dist: Any,
    model: Any,
    train: TrainConfig,
    seeds: Sequence[int],
    sweep: SweepConfig | None = None,
) -> tuple[Member, ...]:
    """Every member, in training order (every seed at every grid point)."""
    points = point_configs(dist, model, train, sweep)
    members: list[Member] = []
    for s in seeds:
        for point, d, m, t in points:
            i = len(members)
            label = f"seed {int(s)}" + (f", {sweep.label(point)}" if sweep else "")
            members.append(Member(i, int(s), point, d, m, t, label))
    return tuple(members)
