"""Sparse features: the toy-models-of-superposition input distribution."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from toylab._errors import ToylabError, fail
from toylab._validate import check_float, check_int, float_tuple
from toylab.distributions._numerics import jit_sample
from toylab.distributions.base import AbstractDistribution, Batch, BayesResult, Box

__all__ = ["SparseFeatures"]


@dataclasses.dataclass(frozen=True)
class SparseFeatures(AbstractDistribution):
    r"""``n`` independent sparse features, reconstructed by an autoencoder.

    Generative process, with activation probabilities ``p_i``::

        a_i ~ Bernoulli(p_i),   u_i ~ U(0, 1],   x_i = a_i u_i   (independent over i),
        y = x   (the autoencoding target; num_classes = 0).

    ``importance`` (default all ones) weights the reconstruction loss of each
    feature; it does not change the distribution. ``Batch.latent`` is
    ``{"active": a}`` (bool).

    **The scalar form** (the toy-models-of-superposition sweep): ``num_features=n`` with
    ``feature_probability=p`` means ``probs = (p,) * n`` (the paper's sparsity is
    ``S = 1 - p``), and ``importance_decay=d`` means ``importance_i = d**i``. Give
    either ``probs`` or ``num_features`` and ``feature_probability``; either
    ``importance`` or ``importance_decay``. The scalars are kept (``to_config`` writes
    them instead of the tuples they determine), so ``distribution.feature_probability``
    and ``distribution.importance_decay`` are sweep axes.

    **Density.** ``x`` has an atom at ``x_i = 0``, so :meth:`log_prob` is the density
    with respect to the product, over coordinates, of the base measure ``delta_0 +
    Lebesgue on (0, 1]``: ``log p(x) = sum_i [x_i = 0] log(1 - p_i) + [0 < x_i <= 1]
    log p_i`` and ``-inf`` when some ``x_i`` is outside ``[0, 1]``.
    ``domain`` is ``[0, 1]^n`` (nothing outside). There are no classes:
    :meth:`posterior` and :meth:`bayes` raise :class:`~toylab.ToylabError`.
    """

    probs: tuple[float, ...] | None = None
    importance: tuple[float, ...] | None = None
    num_features: int | None = None
    feature_probability: float | None = None
    importance_decay: float | None = None

    kind: ClassVar[str] = "sparse"

    def __post_init__(self) -> None:
        where = "SparseFeatures"
        scalar = self.feature_probability is not None or self.num_features is not None
        if (self.probs is None) == (not scalar) or (
            scalar and (self.feature_probability is None or self.num_features is None)
        ):
            raise ToylabError(
                f"{where}: give either probs (one activation probability per feature) or "
                "num_features and feature_probability (the same probability for every "
                f"feature), got probs={self.probs!r}, num_features={self.num_features!r}, "
                f"feature_probability={self.feature_probability!r}. Example: "
                "num_features = 20, feature_probability = 0.1."
            )
        if scalar:
            n = check_int(where, "num_features", self.num_features, minimum=1)
            p = check_float(where, "feature_probability", self.feature_probability, minimum=0.0,
                            maximum=1.0)  # fmt: skip
            object.__setattr__(self, "num_features", n)
            object.__setattr__(self, "feature_probability", p)
            object.__setattr__(self, "probs", (p,) * n)
        if self.importance_decay is not None:
            if self.importance is not None:
                raise ToylabError(
                    f"{where}: give either importance or importance_decay (importance_i = "
                    f"decay**i), not both; got importance={self.importance!r}, "
                    f"importance_decay={self.importance_decay!r}."
                )
            d = check_float(where, "importance_decay", self.importance_decay, nonneg=True)
            object.__setattr__(self, "importance_decay", d)
            object.__setattr__(self, "importance", tuple(d**i for i in range(len(self.probs))))  # type: ignore[arg-type]
        probs = float_tuple(where, "probs", self.probs, nonneg=True)
        for i, p in enumerate(probs):
            if p > 1:
                raise fail(
                    where, f"probs[{i}]", p, "<= 1", "Activation probabilities are in [0, 1]."
                )
        imp = (
            (1.0,) * len(probs)
            if self.importance is None
            else float_tuple(where, "importance", self.importance, length=len(probs), nonneg=True)
        )
        object.__setattr__(self, "probs", probs)
        object.__setattr__(self, "importance", imp)

    def derived_fields(self) -> tuple[str, ...]:
        """The fields the scalar form determines (``to_config`` leaves them out)."""
        out = ("probs",) if self.feature_probability is not None else ()
        return out + (("importance",) if self.importance_decay is not None else ())

    @property
    def num_classes(self) -> int:
        return 0

    @property
    def dim(self) -> int:
        return len(self.probs)  # type: ignore[arg-type]

    @property
    def domain(self) -> Box:
        return Box((0.0,) * self.dim, (1.0,) * self.dim)

    @property
    def outside_mass(self) -> float:
        return 0.0

    @jit_sample
    def sample(self, key: Any, num_samples: int, *, dtype: Any = jnp.float32) -> Batch:
        k_act, k_val = jax.random.split(key)
        p = jnp.asarray(self.probs, jnp.float32)
        active = jax.random.uniform(k_act, (num_samples, self.dim)) < p
        # 1 - U[0, 1) is U(0, 1]: an active feature is never exactly 0
        u = 1.0 - jax.random.uniform(k_val, (num_samples, self.dim), dtype)
        x = jnp.where(active, u, jnp.zeros((), dtype))
        return Batch(x=x, y=x, latent={"active": active})

    def log_prob(self, x: Any) -> np.ndarray:
        x = np.asarray(x, np.float64)
        if x.shape[-1:] != (self.dim,):
            raise fail(
                "SparseFeatures.log_prob", "x", f"array of shape {x.shape}", f"(..., {self.dim})"
            )
        p = np.asarray(self.probs)
        with np.errstate(divide="ignore"):
            lp = np.where(x == 0, np.log1p(-p), np.where((x > 0) & (x <= 1), np.log(p), -np.inf))
        return np.sum(lp, axis=-1)

    def posterior(self, x: Any) -> np.ndarray:
        raise ToylabError(
            "SparseFeatures.posterior: this distribution has no classes (y = x, num_classes=0). "
            "Use log_prob, or a classification distribution."
        )

    def bayes(self) -> BayesResult:
        raise ToylabError(
            "SparseFeatures.bayes: Bayes accuracy is not defined for the autoencoding target "
            "y = x (num_classes=0)."
        )
