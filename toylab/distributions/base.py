"""The contract every toylab distribution follows.

A distribution is a small frozen dataclass. It offers

* ``sample(key, num_samples, *, dtype=jnp.float32) -> Batch`` -- pure JAX, jittable
  and vmappable over ``key``; ``Batch.x`` are inputs, ``Batch.y`` labels (int32
  class indices, or regression targets for the sparse-feature distribution) and
  ``Batch.latent`` the ground-truth latent (mixture component, curve parameter,
  operands, ...), ``None`` where there is none;
* ``log_prob(x) -> np.ndarray`` -- the exact log density (float64, NumPy, host);
* ``posterior(x) -> np.ndarray`` -- the exact class posterior p(y | x), shape
  ``(..., num_classes)`` (float64, host);
* ``bayes() -> BayesResult`` -- the Bayes-optimal accuracy, with its tier in the
  vocabulary of :mod:`toylab.tiers` (``"exact"`` for a closed form or finite
  enumeration, ``"certified"`` for a guaranteed enclosure, ``"estimated"`` for a
  quadrature whose error is an a-posteriori estimate, ``"sampled"`` for Monte Carlo
  with a confidence interval) and its error;
* ``domain`` -- a :class:`Box` or a :class:`FiniteDomain`;
* ``outside_mass: float`` -- an upper bound on ``P(x not in domain)`` (``0.0`` for a
  finite domain or a bounded support).

**Continuous classification distributions** (``kind == "continuous"`` and
``num_classes > 0``: :class:`~toylab.distributions.GaussianMixture`,
:class:`~toylab.distributions.Rings`, :class:`~toylab.distributions.NoisyCurve`)
also offer

* ``class_log_joint(x) -> np.ndarray`` -- ``log p(x, y = k)``, shape
  ``(..., num_classes)`` (float64, host), consistent with the rest:
  ``logsumexp_k class_log_joint(x) = log_prob(x)`` and
  ``class_log_joint(x) - log_prob(x) = log posterior(x)`` wherever ``p(x) > 0``.

Exact analysis relies on these two (integrals of ``max_k p(x, y=k)`` over regions,
truncation to ``domain``), never on a class's name. A Gaussian mixture additionally
exposes its parameters through :meth:`GaussianMixture.arrays
<toylab.distributions.GaussianMixture.arrays>`.

Densities are evaluated on the host in float64 because exact analysis needs
float64 and must not depend on JAX's global ``jax_enable_x64`` flag; sampling is
JAX so that training can draw fresh batches inside one compiled program.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import jax
import numpy as np

from toylab.tiers import Tier

__all__ = [
    "AbstractDistribution",
    "BayesResult",
    "Batch",
    "Box",
    "FiniteDomain",
]


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Batch:
    """A batch of samples: inputs ``x``, targets ``y`` and the ground-truth ``latent``."""

    x: Any
    y: Any
    latent: Any = None


@dataclasses.dataclass(frozen=True)
class Box:
    """An axis-aligned box ``[low_i, high_i]`` in ``R^d`` (float64)."""

    low: tuple[float, ...]
    high: tuple[float, ...]

    def __post_init__(self) -> None:
        from toylab._errors import ToylabError

        if len(self.low) != len(self.high):
            raise ToylabError(
                f"Box: low and high must have the same length, got {len(self.low)} and "
                f"{len(self.high)}."
            )
        for lo, hi in zip(self.low, self.high, strict=True):
            if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
                raise ToylabError(
                    f"Box: need finite low < high in every dimension, got low={self.low!r}, "
                    f"high={self.high!r}."
                )

    @property
    def dim(self) -> int:
        return len(self.low)

    @property
    def volume(self) -> float:
        return float(np.prod(np.asarray(self.high) - np.asarray(self.low)))

    def contains(self, x: Any, atol: float = 0.0) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        lo = np.asarray(self.low) - atol
        hi = np.asarray(self.high) + atol
        return np.all((x >= lo) & (x <= hi), axis=-1)

    def polygon(self) -> np.ndarray:
        """The 2-D box as a counter-clockwise polygon, shape ``(4, 2)``."""
        if self.dim != 2:
            from toylab._errors import ToylabError

            raise ToylabError(f"Box.polygon: needs a 2-D box, this one has dim={self.dim}.")
        (x0, y0), (x1, y1) = self.low, self.high
        return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)

    def grid(self, num: int) -> tuple[np.ndarray, np.ndarray]:
        """A ``num x num`` grid of cell centres over a 2-D box: ``(xx, yy)``."""
        xs = np.linspace(self.low[0], self.high[0], num)
        ys = np.linspace(self.low[1], self.high[1], num)
        return np.meshgrid(xs, ys)


@dataclasses.dataclass(frozen=True)
class FiniteDomain:
    """A finite input set: ``inputs[i]`` has probability ``probs[i]``.

    ``inputs`` is the encoded network input (e.g. concatenated one-hots), ``labels``
    the target of each input, ``latent`` the readable form (e.g. operands ``(a, b)``).
    """

    inputs: np.ndarray
    labels: np.ndarray
    probs: np.ndarray
    latent: np.ndarray

    @property
    def size(self) -> int:
        return int(self.inputs.shape[0])

    @property
    def dim(self) -> int:
        return int(self.inputs.shape[1])


@dataclasses.dataclass(frozen=True)
class BayesResult:
    """The Bayes-optimal accuracy of a distribution.

    ``tier`` says how it was computed (:mod:`toylab.tiers`) and fixes the meaning of
    ``error``: for ``"exact"`` a bound on the rounding error (~1e-15); for
    ``"certified"`` a guaranteed bound on ``|accuracy - true accuracy|``; for
    ``"estimated"`` an a-posteriori *estimate* of that difference (a quadrature's
    change under refinement: not a guarantee); for ``"sampled"`` the half-width of a
    99.9% confidence interval. ``method`` says how, in words, and how ``error`` was
    obtained.
    """

    accuracy: float
    error: float
    tier: Tier
    method: str

    @property
    def bayes_error(self) -> float:
        return 1.0 - self.accuracy


class AbstractDistribution:
    """Base of all distributions (see the module docstring for the contract).

    Subclasses are frozen dataclasses and set ``num_classes`` (0 for regression
    targets) and ``kind`` (``"continuous"``, ``"finite"``, ``"sparse"`` or ``"image"``).
    """

    kind: ClassVar[str] = "continuous"

    @property
    def num_classes(self) -> int:  # pragma: no cover - overridden
        raise NotImplementedError

    @property
    def dim(self) -> int:  # pragma: no cover - overridden
        raise NotImplementedError

    @property
    def output_dim(self) -> int:
        """The number of network outputs: ``num_classes`` for classification, else the
        dimension of the regression target (``dim`` where the target is the input,
        ``y = x``; distributions with another target override this)."""
        return self.num_classes if self.num_classes > 0 else self.dim

    @property
    def domain(self) -> Box | FiniteDomain:  # pragma: no cover - overridden
        raise NotImplementedError

    def sample(self, key: Any, num_samples: int, *, dtype: Any = None) -> Batch:  # pragma: no cover
        raise NotImplementedError

    def log_prob(self, x: Any) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def prob(self, x: Any) -> np.ndarray:
        return np.exp(self.log_prob(x))

    def posterior(self, x: Any) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def bayes(self) -> BayesResult:  # pragma: no cover
        raise NotImplementedError

    @property
    def outside_mass(self) -> float:  # pragma: no cover - overridden
        """Upper bound on the probability mass outside ``domain``."""
        raise NotImplementedError

    def class_log_joint(self, x: Any) -> np.ndarray:  # pragma: no cover - overridden
        """``log p(x, y = k)``, shape ``(..., num_classes)`` (continuous classification)."""
        raise NotImplementedError
