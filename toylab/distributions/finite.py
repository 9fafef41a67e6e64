"""Finite tasks: modular arithmetic and Boolean functions, uniform over their inputs."""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Sequence
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from toylab._errors import fail
from toylab._validate import check_choice, check_int
from toylab.distributions._numerics import jit_sample, posterior_from_log_joint
from toylab.distributions.base import AbstractDistribution, Batch, BayesResult, FiniteDomain

__all__ = ["BooleanFunction", "ModularArithmetic", "is_prime"]

MODULAR_OPS = ("add", "sub", "mul")
BOOLEAN_FNS = ("parity", "majority", "and", "or")
#: Largest modulus: ``(p - 1)^2`` must fit in int32 for ``op="mul"``.
MAX_MODULUS = 46337


def is_prime(n: int) -> bool:
    """Deterministic trial division (``n`` is at most ``MAX_MODULUS``)."""
    if n < 2:
        return False
    return all(n % d for d in range(2, math.isqrt(n) + 1))


class _FiniteTask(AbstractDistribution):
    """Shared code: a uniform distribution over an enumerated, deterministically labelled set."""

    kind: ClassVar[str] = "finite"

    def _enumerate(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # pragma: no cover
        raise NotImplementedError

    def _index(self, x: np.ndarray) -> np.ndarray:  # pragma: no cover
        """Row index of each input in the enumeration, ``-1`` outside the support."""
        raise NotImplementedError

    @functools.cached_property
    def domain(self) -> FiniteDomain:
        inputs, labels, latent = self._enumerate()
        probs = np.full(inputs.shape[0], 1.0 / inputs.shape[0])
        for a in (inputs, labels, latent, probs):
            a.setflags(write=False)
        return FiniteDomain(inputs=inputs, labels=labels, probs=probs, latent=latent)

    @property
    def size(self) -> int:  # pragma: no cover - overridden
        raise NotImplementedError

    @property
    def outside_mass(self) -> float:
        """Nothing lies outside a finite domain."""
        return 0.0

    @property
    def prior(self) -> np.ndarray:
        return np.bincount(self.domain.labels, minlength=self.num_classes) / self.domain.size

    def _check_x(self, x: Any, where: str) -> np.ndarray:
        x = np.asarray(x, np.float64)
        if x.shape[-1:] != (self.dim,):
            raise fail(where, "x", f"array of shape {x.shape}", f"(..., {self.dim})")
        return x

    def log_prob(self, x: Any) -> np.ndarray:
        """``-log |support|`` on the support, ``-inf`` elsewhere (a probability mass function)."""
        idx = self._index(self._check_x(x, f"{type(self).__name__}.log_prob"))
        return np.where(idx >= 0, -math.log(self.size), -np.inf)

    def posterior(self, x: Any) -> np.ndarray:
        """One-hot at the label on the support; the class prior elsewhere (undefined there)."""
        idx = self._index(self._check_x(x, f"{type(self).__name__}.posterior"))
        labels = self._labels_of(np.maximum(idx, 0))
        onehot = labels[..., None] == np.arange(self.num_classes)
        lj = np.where(onehot & (idx >= 0)[..., None], 0.0, -np.inf)
        return posterior_from_log_joint(lj, self.prior)

    def _labels_of(self, idx: np.ndarray) -> np.ndarray:
        return self.domain.labels[idx]

    def bayes(self) -> BayesResult:
        """Exact, by enumeration: ``sum_x p(x) max_y p(y | x)`` (1 for these deterministic tasks)."""
        d = self.domain
        acc = math.fsum(d.probs * np.max(self.posterior(d.inputs), axis=-1))
        return BayesResult(float(acc), 1e-15, "exact", "enumeration of the finite domain")


@dataclasses.dataclass(frozen=True)
class ModularArithmetic(_FiniteTask):
    r"""``(a op b) mod p`` from one-hot operands, ``p`` prime.

    Generative process::

        a, b ~ U{0, ..., p-1} independently,
        x = onehot_p(a) (+) onehot_p(b)   (concatenated, dim 2p),
        y = (a op b) mod p,   op in {add, sub, mul}.

    Uniform over all ``p^2`` pairs; the label is a function of ``x``, so the Bayes
    accuracy is exactly 1. ``domain`` enumerates the pairs in the order ``a * p + b``;
    its ``latent`` and ``Batch.latent`` are the operands ``(a, b)`` (int32, shape
    ``(..., 2)``).
    """

    p: int = 97
    op: str = "add"

    def __post_init__(self) -> None:
        where = "ModularArithmetic"
        p = check_int(where, "p", self.p, minimum=2)
        if p > MAX_MODULUS:
            raise fail(where, "p", p, f"<= {MAX_MODULUS}", "(p - 1)^2 must fit in int32.")
        if not is_prime(p):
            below = next(q for q in range(p - 1, 1, -1) if is_prime(q))
            above = next(q for q in range(p + 1, 2 * p + 2) if is_prime(q))
            raise fail(where, "p", p, "prime", f"Nearest primes: {below} and {above}.")
        check_choice(where, "op", self.op, MODULAR_OPS)
        object.__setattr__(self, "p", p)

    @property
    def num_classes(self) -> int:
        return self.p

    @property
    def dim(self) -> int:
        return 2 * self.p

    @property
    def size(self) -> int:
        return self.p * self.p

    def _apply(self, a: Any, b: Any, xp: Any) -> Any:
        if self.op == "add":
            return xp.mod(a + b, self.p)
        if self.op == "sub":
            return xp.mod(a - b, self.p)
        return xp.mod(a * b, self.p)

    def _enumerate(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        p = self.p
        a, b = np.divmod(np.arange(p * p), p)
        eye = np.eye(p)
        inputs = np.concatenate([eye[a], eye[b]], axis=1)
        return inputs, self._apply(a, b, np).astype(np.int64), np.stack([a, b], -1)

    def _index(self, x: np.ndarray) -> np.ndarray:
        p = self.p
        left, right = x[..., :p], x[..., p:]
        binary = np.all((x == 0) | (x == 1), axis=-1)
        ok = binary & (left.sum(-1) == 1) & (right.sum(-1) == 1)
        return np.where(ok, np.argmax(left, -1) * p + np.argmax(right, -1), -1)

    def _labels_of(self, idx: np.ndarray) -> np.ndarray:
        a, b = np.divmod(idx, self.p)
        return self._apply(a, b, np)

    @jit_sample
    def sample(self, key: Any, num_samples: int, *, dtype: Any = jnp.float32) -> Batch:
        ab = jax.random.randint(key, (num_samples, 2), 0, self.p, dtype=jnp.int32)
        a, b = ab[:, 0], ab[:, 1]
        x = jnp.concatenate(
            [jax.nn.one_hot(a, self.p, dtype=dtype), jax.nn.one_hot(b, self.p, dtype=dtype)], -1
        )
        return Batch(x=x, y=self._apply(a, b, jnp).astype(jnp.int32), latent=ab)


@dataclasses.dataclass(frozen=True)
class BooleanFunction(_FiniteTask):
    r"""A Boolean function of a subset of ``n`` uniform bits.

    Generative process, with ``S = subset`` (default: all bits)::

        x ~ U{0, 1}^n   (as floats),   y = f(x_S),

    with ``f`` one of ``parity`` (``sum x_S mod 2``), ``majority`` (1 iff more than half
    of ``x_S`` are 1; ties give 0), ``and``, ``or``. Bayes accuracy is exactly 1.
    ``domain`` enumerates ``{0,1}^n`` with row ``i`` holding the bits of ``i``
    (``x_j = (i >> j) & 1``); its ``latent`` and ``Batch.latent`` are that index
    (int32). ``n <= 30``; enumerating ``domain`` is practical up to ``n ~ 20``.
    """

    n: int = 4
    fn: str = "parity"
    subset: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        where = "BooleanFunction"
        n = check_int(where, "n", self.n, minimum=1)
        if n > 30:
            raise fail(where, "n", n, "<= 30", "The domain index must fit in int32.")
        check_choice(where, "fn", self.fn, BOOLEAN_FNS)
        if self.subset is None:
            subset = tuple(range(n))
        else:
            if isinstance(self.subset, str) or not isinstance(self.subset, Sequence | np.ndarray):
                raise fail(where, "subset", self.subset, "a list of bit indices", "")
            subset = tuple(self.subset)
            ok = all(isinstance(i, int | np.integer) and not isinstance(i, bool) for i in subset)
            if not subset or not ok or not all(0 <= i < n for i in subset):
                raise fail(
                    where,
                    "subset",
                    self.subset,
                    f"a non-empty list of bit indices in [0, {n})",
                    "",
                )
            subset = tuple(int(i) for i in subset)
            if len(set(subset)) != len(subset):
                raise fail(where, "subset", self.subset, "without repeats", "List each bit once.")
        object.__setattr__(self, "n", n)
        object.__setattr__(self, "subset", subset)

    @property
    def num_classes(self) -> int:
        return 2

    @property
    def dim(self) -> int:
        return self.n

    @property
    def size(self) -> int:
        return 2**self.n

    def _label(self, bits: Any, xp: Any) -> Any:
        sel = bits[..., list(self.subset)]  # type: ignore[arg-type]
        s = xp.sum(sel, axis=-1)
        k = len(self.subset)  # type: ignore[arg-type]
        if self.fn == "parity":
            out = s % 2
        elif self.fn == "majority":
            out = 2 * s > k
        elif self.fn == "and":
            out = s == k
        else:
            out = s > 0
        return out

    def _enumerate(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        idx = np.arange(2**self.n)
        bits = (idx[:, None] >> np.arange(self.n)) & 1
        return bits.astype(np.float64), self._label(bits, np).astype(np.int64), idx

    def _index(self, x: np.ndarray) -> np.ndarray:
        binary = np.all((x == 0) | (x == 1), axis=-1)
        idx = np.sum(x.astype(np.int64) << np.arange(self.n), axis=-1) if x.size else x[..., 0]
        return np.where(binary, idx, -1)

    def _labels_of(self, idx: np.ndarray) -> np.ndarray:
        bits = (np.asarray(idx)[..., None] >> np.arange(self.n)) & 1
        return self._label(bits, np).astype(np.int64)

    @jit_sample
    def sample(self, key: Any, num_samples: int, *, dtype: Any = jnp.float32) -> Batch:
        bits = jax.random.bernoulli(key, 0.5, (num_samples, self.n)).astype(jnp.int32)
        y = self._label(bits, jnp).astype(jnp.int32)
        index = jnp.sum(bits << jnp.arange(self.n, dtype=jnp.int32), axis=-1)
        return Batch(x=bits.astype(dtype), y=y, latent=index)
