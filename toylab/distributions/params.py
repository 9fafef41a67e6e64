"""Numeric parameters of a distribution as arrays: what lets a sweep over any
distribution parameter train in one compiled program.

A distribution is a frozen dataclass; its *numeric fields* are the fields holding a
float or a (nested) tuple of floats (``SparseFeatures.probs``, ``Rings.radii``,
``GaussianMixture.means``, ...). Integers, strings, booleans and ``None`` are
*structure* (dimensions, numbers of components, kinds): they fix shapes and code paths.
Finite distributions have only structure (their domain is enumerated on the host).

For members whose distributions share their structure and the shapes of their numeric
fields (:func:`structure`), the fields that differ (:func:`varying_fields`) are stacked
into per-member arrays (:func:`stack_fields`); inside the vmapped training step each
member samples from :func:`with_fields`, a copy of one representative distribution
whose varying fields are that member's (traced) arrays. ``sample`` is then ordinary
traced JAX: nothing here knows a distribution class. A distribution whose ``sample``
reads a field through host NumPy (a cached Cholesky factor, ...) cannot take traced
fields; :func:`traceable` says so, and such members train in separate programs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

__all__ = [
    "is_traced",
    "numeric_fields",
    "stack_fields",
    "structure",
    "traceable",
    "varying_fields",
    "with_fields",
]

_TRACED = "_toylab_traced_fields"


def _is_numeric(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, float):
        return True
    if isinstance(value, tuple) and value:
        return all(_is_numeric(v) for v in value)
    return False


def numeric_fields(dist: Any) -> tuple[str, ...]:
    """The dataclass fields of ``dist`` holding floats or (nested) tuples of floats
    (none for a finite distribution)."""
    if getattr(dist, "kind", None) == "finite" or not dataclasses.is_dataclass(dist):
        return ()
    return tuple(f.name for f in dataclasses.fields(dist) if _is_numeric(getattr(dist, f.name)))


def structure(dist: Any) -> Any:
    """A hashable description of ``dist`` without the values of its numeric fields: two
    distributions with the same structure can share one compiled program."""
    numeric = set(numeric_fields(dist))
    parts = []
    for f in dataclasses.fields(dist):
        v = getattr(dist, f.name)
        parts.append((f.name, ("numeric", np.shape(v)) if f.name in numeric else v))
    return (type(dist), tuple(parts))


def varying_fields(dists: Sequence[Any]) -> tuple[str, ...]:
    """The numeric fields whose values differ among ``dists`` (same structure)."""
    first = dists[0]
    return tuple(
        name
        for name in numeric_fields(first)
        if any(getattr(d, name) != getattr(first, name) for d in dists[1:])
    )


def stack_fields(dists: Sequence[Any], fields: Sequence[str]) -> dict[str, np.ndarray]:
    """``{field: (M, ...) float32}``: each field of every distribution, stacked."""
    return {f: np.asarray([getattr(d, f) for d in dists], np.float32) for f in fields}


def with_fields(dist: Any, values: dict[str, Any]) -> Any:
    """A copy of ``dist`` whose fields ``values`` are replaced by (possibly traced) arrays.

    Built without running the constructor (a tracer cannot be validated) and without
    any cached value of ``dist`` (it would belong to the old fields). It is for
    sampling inside a compiled program only: host methods (densities, Bayes accuracy)
    need a real distribution.
    """
    if not values:
        return dist
    new = object.__new__(type(dist))
    for f in dataclasses.fields(dist):
        object.__setattr__(new, f.name, values.get(f.name, getattr(dist, f.name)))
    object.__setattr__(new, _TRACED, tuple(values))
    return new


def is_traced(dist: Any) -> bool:
    """Whether ``dist`` was made by :func:`with_fields` (its fields may be tracers)."""
    return bool(getattr(dist, "__dict__", {}).get(_TRACED))


#: the errors of a function that reads a traced value on the host
_TRACE_ERRORS = (
    jax.errors.ConcretizationTypeError,
    jax.errors.TracerArrayConversionError,
    jax.errors.TracerBoolConversionError,
    jax.errors.TracerIntegerConversionError,
)


def traceable(dist: Any, fields: Sequence[str], use: Any = None) -> bool:
    """Whether ``dist.sample`` (and ``use(dist, batch)``, if given: e.g. a loss that
    reads the distribution) runs with ``fields`` as traced arrays (checked abstractly:
    nothing is compiled)."""
    if not fields:
        return True
    row = {f: np.asarray(getattr(dist, f), np.float32) for f in fields}

    def run(values: dict[str, Any], key: jax.Array) -> Any:
        d = with_fields(dist, values)
        out = d.sample(key, 2)
        return out if use is None else (out, use(d, out))

    try:
        jax.eval_shape(run, row, jax.random.key(0))
    except _TRACE_ERRORS:
        return False
    return True
