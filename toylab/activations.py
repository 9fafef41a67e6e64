r"""Every activation function toylab knows, in one table.

Each :class:`Activation` holds everything any part of toylab needs about it:

* its value and derivative, for NumPy (float64, exact host-side evaluation) and for
  JAX (training, gradients, vmapped sampled methods): ``act(z)`` and
  ``act.grad(z)`` pick the array library from the argument;
* for the piecewise-linear ones, the breakpoints and the affine pieces between
  them (:attr:`Activation.breakpoints`, :attr:`Activation.pieces`,
  :meth:`Activation.piece`), which the exact partition, the 1-D path partition
  and the exact gradients use;
* for the sound relaxations of :mod:`toylab.exact.bounds`, the points where the
  shape changes (kinks and inflection points, :attr:`Activation.shape_points`),
  the curvature sign between them, the global minimiser of the non-monotone ones
  and a certified lower bound on the minimum value;
* certified bounds on the Lipschitz constant and on ``|f''|``.

============  =============================  ===========  =========  ==========
name          function                       pieces       Lipschitz  ``|f''|``
============  =============================  ===========  =========  ==========
relu          max(0, z)                      2            1          0 (a.e.)
leaky_relu    z if z > 0 else 0.01 z         2            1          0 (a.e.)
abs           \|z\|                          2            1          0 (a.e.)
identity      z                              1            1          0
hardtanh      clip(z, -1, 1)                 3            1          0 (a.e.)
tanh          tanh(z)                        smooth       1          0.7698
gelu          z Φ(z) (exact erf form)        smooth       1.12891    0.79789
sigmoid       1 / (1 + exp(-z))              smooth       0.25       0.096226
quadratic     z²                             smooth       unbounded  2
============  =============================  ===========  =========  ==========

The constants are derived in the comments next to them (``gelu``'s largest slope
is at ``z = √2``, where ``gelu''(z) = φ(z)(2 - z²)`` vanishes; its minimiser solves
``Φ(z) + z φ(z) = 0``).

>>> import numpy as np
>>> ACTIVATIONS["leaky_relu"](np.array([-2.0, 3.0])).tolist()
[-0.02, 3.0]
>>> ACTIVATIONS["hardtanh"].piece(np.array([-3.0, 0.0, 3.0])).tolist()
[0, 1, 2]
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from scipy import special

from toylab._errors import ToylabError, did_you_mean

__all__ = [
    "ACTIVATIONS",
    "GELU_ARGMIN",
    "GELU_MIN",
    "LEAKY_SLOPE",
    "PIECEWISE_LINEAR",
    "Activation",
    "get_activation",
]

#: The slope of ``leaky_relu`` for negative inputs (the only definition in toylab).
LEAKY_SLOPE = 0.01

#: The minimiser of ``gelu(z) = z Φ(z)``, the root of ``Φ(z) + z φ(z) = 0``
#: (scipy ``brentq`` to 1e-15; since ``gelu'`` vanishes there, the root's error
#: enters the minimum value only quadratically).
GELU_ARGMIN = -0.7517915246935644
#: A certified lower bound on ``min_z gelu(z)``: the value at :data:`GELU_ARGMIN`
#: (≈ -0.169971) padded down by 1e-12 against erf rounding.
GELU_MIN = float(GELU_ARGMIN * special.ndtr(GELU_ARGMIN)) - 1e-12

_SQRT2 = math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _xp(z: Any) -> Any:
    """NumPy for NumPy arrays and Python scalars, ``jax.numpy`` for JAX arrays and tracers."""
    return jnp if isinstance(z, jax.Array) else np


def _ndtr(z: Any, xp: Any) -> Any:
    return special.ndtr(z) if xp is np else jax.scipy.special.ndtr(z)


def _sigmoid(z: Any, xp: Any) -> Any:
    return special.expit(z) if xp is np else jax.nn.sigmoid(z)


def _one(z: Any, xp: Any) -> Any:
    return xp.ones_like(z)


@dataclasses.dataclass(frozen=True, eq=False)
class Activation:
    """One activation function (see the module docstring for the table).

    Attributes:
      name: the name used in configs, models and every API.
      fn, dfn: ``(z, xp) -> f(z)`` and ``f'(z)`` for ``xp`` NumPy or ``jax.numpy``
        (at a kink ``dfn`` gives the slope of the piece :meth:`piece` assigns).
      breakpoints: for piecewise-linear activations the kinks, ascending; ``None``
        for smooth ones.
      pieces: ``(slope, offset)`` of each linear piece, in the order of
        :meth:`piece` (``len(breakpoints) + 1`` of them).
      shape_points: kinks and inflection points, ascending; ``curvature``: the sign
        of ``f''`` on each of the ``len(shape_points) + 1`` intervals between them
        (-1 concave, 0 linear, +1 convex).
      argmin, fmin: the global minimiser of a non-monotone activation and a
        certified lower bound on its minimum (``None`` and ``0`` for monotone ones).
      lipschitz, max_curvature: certified upper bounds on ``|f'|`` and ``|f''|``
        (``inf`` where unbounded).
      positive_homogeneous: ``f(c z) = c f(z)`` for ``c > 0`` (relu, leaky_relu,
        abs, identity): a unit's incoming weights can be scaled by ``c`` and its
        outgoing weights by ``1 / c`` without changing the network.
      nonnegative: ``f >= 0`` everywhere.
    """

    name: str
    fn: Callable[[Any, Any], Any]
    dfn: Callable[[Any, Any], Any]
    breakpoints: tuple[float, ...] | None
    pieces: tuple[tuple[float, float], ...]
    shape_points: tuple[float, ...]
    curvature: tuple[int, ...]
    lipschitz: float
    max_curvature: float
    argmin: float | None = None
    fmin: float = 0.0
    positive_homogeneous: bool = False
    nonnegative: bool = False

    @property
    def piecewise_linear(self) -> bool:
        return self.breakpoints is not None

    @property
    def monotone(self) -> bool:
        return self.argmin is None

    def __call__(self, z: Any) -> Any:
        """``f(z)`` in NumPy (float64 inputs stay float64) or JAX, following ``z``."""
        return self.fn(z, _xp(z))

    def grad(self, z: Any) -> Any:
        """``f'(z)`` (elementwise), in the array library of ``z``."""
        return self.dfn(z, _xp(z))

    def piece(self, z: Any) -> Any:
        """Index of the linear piece holding ``z``: the number of breakpoints below it."""
        if self.breakpoints is None:
            raise ToylabError(
                f"Activation.piece: {self.name!r} is smooth and has no linear pieces."
            )
        xp = _xp(z)
        out = xp.zeros(z.shape, dtype=xp.int8)
        for b in self.breakpoints:
            out = out + (z > b).astype(xp.int8)
        return out

    def piece_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """``(slopes, offsets)`` of the linear pieces as float64 arrays."""
        arr = np.asarray(self.pieces, np.float64).reshape(-1, 2)
        return arr[:, 0], arr[:, 1]


_TABLE = (
    Activation(
        "relu",
        lambda z, xp: np.maximum(z, 0.0) if xp is np else jnp.where(z > 0, z, 0.0),
        lambda z, xp: (z > 0).astype(z.dtype),
        (0.0,), ((0.0, 0.0), (1.0, 0.0)), (0.0,), (0, 0), 1.0, 0.0,
        positive_homogeneous=True, nonnegative=True,
    ),
    Activation(
        "leaky_relu",
        lambda z, xp: xp.where(z > 0, z, LEAKY_SLOPE * z),
        lambda z, xp: xp.where(z > 0, 1.0, LEAKY_SLOPE).astype(z.dtype),
        (0.0,), ((LEAKY_SLOPE, 0.0), (1.0, 0.0)), (0.0,), (0, 0), 1.0, 0.0,
        positive_homogeneous=True,
    ),
    Activation(
        "abs",
        lambda z, xp: xp.abs(z),
        lambda z, xp: xp.where(z > 0, 1.0, -1.0).astype(z.dtype),
        (0.0,), ((-1.0, 0.0), (1.0, 0.0)), (0.0,), (0, 0), 1.0, 0.0,
        argmin=0.0, fmin=0.0, positive_homogeneous=True, nonnegative=True,
    ),
    Activation(
        "identity",
        lambda z, xp: z,
        _one,
        (), ((1.0, 0.0),), (), (0,), 1.0, 0.0,
        positive_homogeneous=True,
    ),
    Activation(
        "hardtanh",
        lambda z, xp: xp.clip(z, -1.0, 1.0),
        lambda z, xp: ((z > -1.0) & (z <= 1.0)).astype(z.dtype),
        (-1.0, 1.0), ((0.0, -1.0), (1.0, 0.0), (0.0, 1.0)), (-1.0, 1.0), (0, 0, 0), 1.0, 0.0,
    ),
    # tanh'' = -2 tanh sech²: largest at tanh = 1/√3, 4/(3√3) = 0.76980...
    Activation(
        "tanh",
        lambda z, xp: xp.tanh(z),
        lambda z, xp: 1.0 - xp.tanh(z) ** 2,
        None, (), (0.0,), (1, -1), 1.0, 0.7698004,
    ),
    # gelu' = Φ + zφ is largest at z = √2 (gelu'' = φ(z)(2 - z²)): 1.1289041...;
    # |gelu''| is largest at z = 0: 2φ(0) = 0.7978845...
    Activation(
        "gelu",
        lambda z, xp: z * _ndtr(z, xp),
        lambda z, xp: _ndtr(z, xp) + z * xp.exp(-0.5 * z * z) * _INV_SQRT_2PI,
        None, (), (-_SQRT2, _SQRT2), (-1, 1, -1), 1.1289042, 0.7978846,
        argmin=GELU_ARGMIN, fmin=GELU_MIN,
    ),
    # sigmoid'' = s(1 - s)(1 - 2s): largest at s = (3 ± √3)/6, 1/(6√3) = 0.096225...
    Activation(
        "sigmoid",
        _sigmoid,
        lambda z, xp: _sigmoid(z, xp) * (1.0 - _sigmoid(z, xp)),
        None, (), (0.0,), (1, -1), 0.25, 0.0962251,
    ),
    Activation(
        "quadratic",
        lambda z, xp: z * z,
        lambda z, xp: 2.0 * z,
        None, (), (), (1,), math.inf, 2.0,
        argmin=0.0, fmin=0.0, nonnegative=True,
    ),
)  # fmt: skip

#: Every activation by name.
ACTIVATIONS: dict[str, Activation] = {a.name: a for a in _TABLE}
#: The names of the piecewise-linear activations (exact geometry applies to them).
PIECEWISE_LINEAR = frozenset(a.name for a in _TABLE if a.piecewise_linear)


def get_activation(name: Any, where: str = "activation") -> Activation:
    """The activation called ``name``; an unknown name gets a did-you-mean error."""
    if isinstance(name, Activation):
        return name
    act = ACTIVATIONS.get(name) if isinstance(name, str) else None
    if act is None:
        raise ToylabError(
            f"{where}: activation must be one of {sorted(ACTIVATIONS)}, got {name!r}."
            + did_you_mean(str(name), ACTIVATIONS)
        )
    return act
