"""Numerics shared by the continuous distributions of :mod:`toylab.distributions`.

Gauss--Legendre rules, normal masses accurate in both tails, posterior normalisation,
per-coordinate box widths, the closed-form 1-D integral of a maximum of weighted
normals, the compiled ``sample`` wrapper, and the Monte Carlo Bayes accuracy. The
Bayes-accuracy quadrature lives in :mod:`toylab.distributions._atoms`. Nothing here
knows a distribution class: callers pass arrays and callables.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from scipy import special
from scipy import stats as _stats

from toylab.distributions.base import Batch, BayesResult

__all__ = [
    "DOMAIN_OUTSIDE_MASS",
    "Z_999",
    "bayes_monte_carlo",
    "box_z",
    "gauss_legendre",
    "gaussian_1d_max_integral",
    "jit_sample",
    "log_normal_1d",
    "normal_mass",
    "posterior_from_log_joint",
]

#: Every continuous ``domain`` box holds all but at most this much probability mass.
DOMAIN_OUTSIDE_MASS = 1e-9
#: Two-sided 99.9% normal quantile, for the Monte Carlo confidence intervals.
Z_999 = float(_stats.norm.ppf(0.9995))
_LOG_2PI = math.log(2.0 * math.pi)
_EPS = float(np.finfo(np.float64).eps)


# --------------------------------------------------------------------------- sampling


def jit_sample(fn: Callable[..., Batch]) -> Callable[..., Batch]:
    """Compile a ``sample(self, key, num_samples, *, dtype)`` method once per
    ``(self, num_samples, dtype)``: eager calls then cost one dispatch instead of one
    per primitive, and calls under an outer ``jit``/``vmap`` simply inline it. A
    distribution whose fields are traced arrays (a sweep's per-member parameters,
    :func:`toylab.distributions.params.with_fields`) is not hashable: its ``sample``
    runs traced, inside the caller's program."""
    compiled = jax.jit(fn, static_argnums=(0, 2), static_argnames=("dtype",))

    @functools.wraps(fn)
    def sample(self: Any, key: Any, num_samples: int, *, dtype: Any = jnp.float32) -> Batch:
        from toylab.distributions.params import is_traced

        if is_traced(self):
            return fn(self, key, int(num_samples), dtype=jnp.dtype(dtype))
        return compiled(self, key, int(num_samples), dtype=jnp.dtype(dtype))

    return sample


# --------------------------------------------------------------------------- numerics


@functools.lru_cache(maxsize=64)
def gauss_legendre(order: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss--Legendre nodes and weights on ``[-1, 1]`` (float64)."""
    nodes, weights = np.polynomial.legendre.leggauss(order)
    nodes.setflags(write=False)
    weights.setflags(write=False)
    return nodes, weights


def log_normal_1d(x: np.ndarray, mean: Any, sd: Any) -> np.ndarray:
    z = (x - mean) / sd
    return -0.5 * z * z - np.log(sd) - 0.5 * _LOG_2PI


def normal_mass(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``Phi(b) - Phi(a)`` for ``a <= b``, accurate in both tails."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    upper = a > 0
    return np.where(upper, special.ndtr(-a) - special.ndtr(-b), special.ndtr(b) - special.ndtr(a))


def posterior_from_log_joint(log_joint: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """Normalise ``log p(x, y=k)`` over ``k``; where ``p(x) = 0`` return ``prior``."""
    top = np.max(log_joint, axis=-1, keepdims=True)
    finite = np.isfinite(top)
    safe_top = np.where(finite, top, 0.0)
    with np.errstate(invalid="ignore", over="ignore"):
        e = np.exp(log_joint - safe_top)
        post = e / np.sum(e, axis=-1, keepdims=True)
    # +inf densities (a point mass of density) share the posterior among the +inf classes.
    posinf = np.isposinf(log_joint)
    any_inf = np.any(posinf, axis=-1, keepdims=True)
    post = np.where(any_inf, posinf / np.maximum(np.sum(posinf, -1, keepdims=True), 1), post)
    ok = finite | any_inf
    return np.where(ok, post, np.broadcast_to(prior, post.shape))


def bayes_monte_carlo(
    sample_fn: Callable[[np.random.Generator, int], np.ndarray],
    posterior: Callable[[np.ndarray], np.ndarray],
    *,
    seed: int,
    num_samples: int,
    chunk: int = 200_000,
) -> BayesResult:
    """``E[max_k p(k | x)]`` by Monte Carlo, with a 99.9% normal confidence interval."""
    rng = np.random.default_rng(seed)
    total, total_sq, n = 0.0, 0.0, 0
    while n < num_samples:
        m = min(chunk, num_samples - n)
        v = np.max(posterior(sample_fn(rng, m)), axis=-1)
        total += math.fsum(v)
        total_sq += math.fsum(v * v)
        n += m
    mean = total / n
    var = max(total_sq / n - mean * mean, 0.0)
    half = Z_999 * math.sqrt(var / (n - 1)) if n > 1 else 1.0
    return BayesResult(
        float(mean),
        float(half),
        "sampled",
        f"Monte Carlo mean of max_k p(k|x) over {n} float64 samples (seed={seed}); error = "
        "half-width of the 99.9% normal confidence interval",
    )


def box_z(eps: float, dim: int) -> float:
    """``z`` with ``dim * 2 * Phi(-z) = eps``: per-coordinate ``+-z sd`` boxes miss ``<= eps``."""
    return float(-special.ndtri(eps / (2.0 * dim)))


def gaussian_1d_max_integral(
    means: np.ndarray, sds: np.ndarray, log_coef: np.ndarray, lo: float, hi: float
) -> tuple[float, float]:
    """``int_lo^hi max_k c_k N(x; m_k, s_k^2) dx`` in closed form (``hi`` may be inf), and a
    bound on its float64 rounding error: ``(value, error)``.

    The log-ratio of two terms is a quadratic in ``u = x - m_i``,
    ``A u^2 + B u + C`` with ``A = (1/s_j^2 - 1/s_i^2)/2``, ``B = -(m_j - m_i)/s_j^2``,
    ``C = log(c_i s_j / (c_j s_i)) + (m_j - m_i)^2 / (2 s_j^2)`` (centred, so no
    cancellation of ``m^2 / s^2`` terms), solved stably; between consecutive crossings
    one term wins and its integral is a difference of normal CDFs. A breakpoint ``p``
    is only known to ``~4 eps (|p| + |m|)``, which moves the winner's ``z`` by that over
    ``s`` and its mass by that times ``c phi(z)``: the error adds these up (it matters
    only for terms far narrower than their distance to the origin).
    """
    k = len(means)
    pts = [lo, hi]
    for i in range(k):
        for j in range(i + 1, k):
            if not (np.isfinite(log_coef[i]) and np.isfinite(log_coef[j])):
                continue
            delta = means[j] - means[i]
            a = 0.5 / sds[j] ** 2 - 0.5 / sds[i] ** 2
            b = -delta / sds[j] ** 2
            c = (
                log_coef[i]
                - math.log(sds[i])
                - log_coef[j]
                + math.log(sds[j])
                + 0.5 * delta**2 / sds[j] ** 2
            )
            if a == 0.0:
                roots = [-c / b] if b != 0.0 else []
            else:
                disc = b * b - 4 * a * c
                if disc < 0:
                    roots = []
                else:
                    q = -0.5 * (b + math.copysign(math.sqrt(disc), b))
                    roots = [q / a] + ([c / q] if q != 0.0 else [])
            pts += [means[i] + r for r in roots if lo < means[i] + r < hi]
    grid = np.unique(np.asarray(pts, np.float64))
    total, err = 0.0, 0.0
    for a_, b_ in zip(grid[:-1], grid[1:], strict=True):
        mid = 0.5 * (a_ + b_) if np.isfinite(b_) else a_ + 1.0 + abs(a_)
        if not np.isfinite(a_):
            mid = b_ - 1.0 - abs(b_)
        win = int(np.argmax(log_coef + log_normal_1d(mid, means, sds)))  # type: ignore[arg-type]
        m, sd, cw = means[win], sds[win], math.exp(log_coef[win])
        total += cw * float(normal_mass((a_ - m) / sd, (b_ - m) / sd))
        for p in (a_, b_):
            if np.isfinite(p):
                z = (p - m) / sd
                dens = math.exp(-0.5 * min(z * z, 1e4)) / math.sqrt(2 * math.pi)
                err += cw * dens * 4 * _EPS * (abs(p) + abs(m)) / sd
    return total, err + 4 * _EPS * k
