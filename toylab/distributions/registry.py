"""Build distributions by name from plain config values, and back.

>>> from toylab.distributions.registry import make, to_config
>>> d = make("two_blobs", distance=3.0)
>>> make(**to_config(d)) == d
True
>>> to_config(make("modular_arithmetic", p=7))
{'name': 'modular_arithmetic', 'p': 7, 'op': 'add'}
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable
from typing import Any

from toylab._errors import ToylabError, did_you_mean
from toylab.distributions.base import AbstractDistribution
from toylab.distributions.curve_images import CurveImages
from toylab.distributions.curves import NoisyCurve
from toylab.distributions.finite import BooleanFunction, ModularArithmetic
from toylab.distributions.gaussian import GaussianMixture, blobs_on_circle, two_blobs, xor_blobs
from toylab.distributions.rings import Rings
from toylab.distributions.sparse import SparseFeatures

__all__ = ["REGISTRY", "examples", "make", "names", "to_config"]


def _curve(curve: str) -> Callable[..., NoisyCurve]:
    def build(
        noise: float = 0.1,
        turns: float = 1.5,
        amplitude: float = 1.0,
        frequency: float = 1.0,
        gap: float = 1.0,
    ) -> NoisyCurve:
        return NoisyCurve(curve, noise, turns, amplitude, frequency, gap)

    build.__name__ = curve
    build.__doc__ = f"``NoisyCurve(curve={curve!r}, ...)``."
    return build


#: Every buildable name and its constructor (a class or a preset function).
REGISTRY: dict[str, Callable[..., AbstractDistribution]] = {
    "gaussian_mixture": GaussianMixture,
    "two_blobs": two_blobs,
    "xor_blobs": xor_blobs,
    "blobs_on_circle": blobs_on_circle,
    "rings": Rings,
    "noisy_curve": NoisyCurve,
    "spiral": _curve("spiral"),
    "two_moons": _curve("two_moons"),
    "sine": _curve("sine"),
    "sparse_features": SparseFeatures,
    "modular_arithmetic": ModularArithmetic,
    "boolean": BooleanFunction,
    "curve_images": CurveImages,
}

_CANONICAL: dict[type, str] = {
    GaussianMixture: "gaussian_mixture",
    Rings: "rings",
    NoisyCurve: "noisy_curve",
    SparseFeatures: "sparse_features",
    ModularArithmetic: "modular_arithmetic",
    BooleanFunction: "boolean",
    CurveImages: "curve_images",
}


def names() -> list[str]:
    """The registered names, sorted."""
    return sorted(REGISTRY)


@functools.cache
def _params(name: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(all parameter names, required parameter names)`` of a registered constructor."""
    sig = inspect.signature(REGISTRY[name])
    every = tuple(sig.parameters)
    required = tuple(n for n, p in sig.parameters.items() if p.default is inspect.Parameter.empty)
    return every, required


def make(name: str, **params: Any) -> AbstractDistribution:
    """Build the distribution registered as ``name`` from keyword ``params``.

    Unknown names or parameters raise :class:`~toylab.ToylabError` listing the valid
    ones (with a did-you-mean); parameter values are validated by the constructor.
    """
    if not isinstance(name, str) or name not in REGISTRY:
        hint = did_you_mean(name, REGISTRY) if isinstance(name, str) else ""
        raise ToylabError(
            f"make: name must be a registered distribution, got {name!r}.{hint} "
            f"Valid names: {', '.join(names())}."
        )
    every, required = _params(name)
    for key in params:
        if key not in every:
            raise ToylabError(
                f"make({name!r}): unknown parameter {key!r}.{did_you_mean(key, every)} "
                f"Valid parameters: {', '.join(every)}."
            )
    missing = [r for r in required if r not in params]
    if missing:
        raise ToylabError(
            f"make({name!r}): missing required parameter(s) {', '.join(map(repr, missing))}. "
            f"Valid parameters: {', '.join(every)}."
        )
    return REGISTRY[name](**params)


def _plain(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    raise ToylabError(f"to_config: cannot serialise {value!r} ({type(value).__name__}).")


def to_config(dist: AbstractDistribution) -> dict[str, Any]:
    """``{"name": ..., **params}`` with TOML-safe values, such that
    ``make(**to_config(dist)) == dist``. Presets come back under their class's name
    (``two_blobs(...)`` becomes a ``"gaussian_mixture"`` config). Fields that are
    ``None`` (unset options) or determined by others (``dist.derived_fields()``, e.g.
    the per-feature ``probs`` of a sparse-feature distribution given by one
    ``feature_probability``) are left out."""
    name = _CANONICAL.get(type(dist))
    if name is None:
        raise ToylabError(
            f"to_config: dist must be a registered distribution, got {type(dist).__name__}. "
            f"Known classes: {', '.join(t.__name__ for t in _CANONICAL)}."
        )
    out: dict[str, Any] = {"name": name}
    derived: tuple[str, ...] = getattr(dist, "derived_fields", tuple)()
    for f in dataclasses.fields(dist):  # type: ignore[arg-type]
        value = getattr(dist, f.name)
        if f.name not in derived and value is not None:
            out[f.name] = _plain(value)
    return out


def examples() -> dict[str, AbstractDistribution]:
    """One small instance of every distribution class (plus the radial variants), by label.

    Used by the conformance tests; small enough that every check runs in seconds.
    """
    return {
        "gaussian_mixture": GaussianMixture(
            means=((0.0, 0.0), (2.0, 1.0), (-1.0, 2.0)),
            covs=(((1.0, 0.3), (0.3, 0.5)), ((0.4, -0.1), (-0.1, 0.6)), ((0.3, 0.0), (0.0, 0.3))),
            weights=(0.5, 0.3, 0.2),
            classes=(0, 1, 1),
        ),
        "gaussian_mixture_1d": GaussianMixture(
            means=((0.0,), (2.0,)), covs=(((1.0,),), ((0.25,),)), weights=(0.6, 0.4)
        ),
        "gaussian_mixture_3d": GaussianMixture(
            means=((0.0, 0.0, 0.0), (1.5, -1.0, 0.5)),
            covs=(
                ((1.0, 0.2, 0.0), (0.2, 1.0, 0.1), (0.0, 0.1, 0.5)),
                ((0.5, 0.0, 0.0), (0.0, 0.8, 0.0), (0.0, 0.0, 1.0)),
            ),
        ),
        "rings": Rings(radii=(0.5, 1.5), widths=(0.2, 0.25), weights=(0.4, 0.6)),
        "rings_uniform": Rings(radii=(1.0, 2.0), widths=(0.4, 0.5), radial="uniform"),
        "noisy_curve": NoisyCurve("two_moons", noise=0.2),
        "sparse_features": SparseFeatures(probs=(0.1, 0.3, 0.5, 0.05)),
        "modular_arithmetic": ModularArithmetic(p=5, op="mul"),
        "boolean": BooleanFunction(n=4, fn="majority", subset=(0, 1, 3)),
    }
