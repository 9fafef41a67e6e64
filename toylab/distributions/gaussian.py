"""Gaussian mixtures with full covariances and a component-to-class map, and presets."""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Sequence
from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from scipy import special

from toylab._errors import fail
from toylab._validate import (
    check_choice,
    check_float,
    check_int,
    check_weights,
    float_tuple,
    is_int,
)
from toylab.distributions._atoms import GaussianAtoms, Progress, bayes_accuracy
from toylab.distributions._numerics import (
    DOMAIN_OUTSIDE_MASS,
    bayes_monte_carlo,
    box_z,
    gaussian_1d_max_integral,
    jit_sample,
    posterior_from_log_joint,
)
from toylab.distributions.base import AbstractDistribution, Batch, BayesResult, Box

__all__ = [
    "GaussianMixture",
    "MixtureArrays",
    "blobs_on_circle",
    "two_blobs",
    "xor_blobs",
]

_LOG_2PI = math.log(2.0 * math.pi)
_EPS = float(np.finfo(np.float64).eps)


# --------------------------------------------------------------------------- the mixture


class MixtureArrays(NamedTuple):
    """A Gaussian mixture as float64 arrays: the interface exact code reads.

    ``means (K, d)``, ``covs (K, d, d)`` (symmetric positive definite), ``weights (K,)``
    (non-negative, summing to one) and ``classes (K,)`` (int64, the class of each
    component). Returned by :meth:`GaussianMixture.arrays`; fresh copies, so callers
    may modify them.
    """

    means: np.ndarray
    covs: np.ndarray
    weights: np.ndarray
    classes: np.ndarray


@dataclasses.dataclass(frozen=True)
class _Prepared:
    means: np.ndarray  # (K, d)
    covs: np.ndarray  # (K, d, d)
    chols: np.ndarray  # (K, d, d) lower
    inv_chols: np.ndarray  # (K, d, d) inverses of the Cholesky factors
    logdets: np.ndarray  # (K,)
    log_weights: np.ndarray  # (K,)
    classes: np.ndarray  # (K,)
    prior: np.ndarray  # (C,)


@dataclasses.dataclass(frozen=True)
class GaussianMixture(AbstractDistribution):
    r"""A mixture of Gaussians in ``R^d`` whose components map to classes.

    Generative process, with ``K`` components, weights ``w``, means ``mu_j``,
    covariances ``Sigma_j`` and class map ``c``::

        j ~ Categorical(w),   x | j ~ N(mu_j, Sigma_j),   y = c(j).

    So ``p(x) = sum_j w_j N(x; mu_j, Sigma_j)`` and
    ``p(y = k | x) = sum_{j: c(j)=k} w_j N(x; mu_j, Sigma_j) / p(x)``.
    ``Batch.latent`` is ``{"component": j}``.

    ``domain`` is the hull of the boxes ``mu_j +- z sqrt(diag Sigma_j)`` with
    ``z`` chosen so that each holds all but ``DOMAIN_OUTSIDE_MASS = 1e-9`` of its
    component (union bound over coordinates); the mixture then puts at most
    ``outside_mass = 1e-9`` outside.

    ``bayes()``: exact for two components of distinct classes with a shared
    covariance (``Phi(Delta/2 + ln(w0/w1)/Delta)`` weighted, ``Delta`` the Mahalanobis
    distance; ``Phi(-Delta/2)`` error for equal weights) and for the symmetric
    isotropic XOR (see :func:`xor_blobs`); otherwise an estimated quadrature in 1-D and
    2-D and Monte Carlo above.

    Parameters are tuples (``means[j]``, ``covs[j]`` row by row, ``weights``,
    ``classes``); ``weights`` defaults to uniform and ``classes`` to one class per
    component. Every class ``0..C-1`` must be used.
    """

    means: tuple[tuple[float, ...], ...]
    covs: tuple[tuple[tuple[float, ...], ...], ...]
    weights: tuple[float, ...] | None = None
    classes: tuple[int, ...] | None = None

    kind: ClassVar[str] = "continuous"

    def __post_init__(self) -> None:
        where = "GaussianMixture"
        if isinstance(self.means, str) or not isinstance(self.means, Sequence | np.ndarray):
            raise fail(where, "means", self.means, "a list of mean vectors", "")
        if len(self.means) == 0:
            raise fail(where, "means", self.means, "non-empty", "Pass at least one component.")
        means = tuple(float_tuple(where, f"means[{j}]", m) for j, m in enumerate(self.means))
        d = len(means[0])
        for j, m in enumerate(means):
            if len(m) != d:
                raise fail(
                    where,
                    f"means[{j}]",
                    self.means[j],
                    f"of dimension {d} like means[0]",
                    "All means need the same length.",
                )
        k = len(means)
        if isinstance(self.covs, str) or not isinstance(self.covs, Sequence | np.ndarray):
            raise fail(where, "covs", self.covs, "a list of covariance matrices", "")
        if len(self.covs) != k:
            raise fail(
                where,
                "covs",
                self.covs,
                f"a list of {k} matrices (one per mean)",
                f"Got {len(self.covs)} covariances for {k} means.",
            )
        covs = []
        for j, c in enumerate(self.covs):
            arr = np.asarray(c, dtype=object)
            if arr.shape != (d, d):
                raise fail(where, f"covs[{j}]", c, f"a {d}x{d} matrix", "Match the mean dimension.")
            rows = tuple(float_tuple(where, f"covs[{j}]", row, length=d) for row in c)
            m = np.asarray(rows)  # type: ignore[assignment]
            scale = max(np.max(np.abs(m)), 1e-300)
            if np.max(np.abs(m - m.T)) > 1e-10 * scale:  # type: ignore[attr-defined]
                raise fail(
                    where, f"covs[{j}]", c, "symmetric", "Pass (C + C.T) / 2 or a symmetric matrix."
                )
            eig = np.linalg.eigvalsh(0.5 * (m + m.T))  # type: ignore[attr-defined]
            if not eig[0] > 1e-12 * max(eig[-1], 0.0) or not eig[0] > 0:
                raise fail(
                    where,
                    f"covs[{j}]",
                    c,
                    "positive definite",
                    f"Its smallest eigenvalue is {eig[0]:.3g}; use a positive scale.",
                )
            covs.append(rows)
        weights = (
            tuple([1.0 / k] * k) if self.weights is None else check_weights(where, self.weights, k)
        )
        if self.classes is None:
            classes = tuple(range(k))
        else:
            if isinstance(self.classes, str) or not isinstance(self.classes, Sequence | np.ndarray):
                raise fail(where, "classes", self.classes, "a list of class indices", "")
            classes = tuple(self.classes)
            if len(classes) != k or not all(is_int(c) and c >= 0 for c in classes):
                raise fail(
                    where,
                    "classes",
                    self.classes,
                    f"{k} non-negative integers (the class of each component)",
                    "",
                )
            classes = tuple(int(c) for c in classes)
            used = sorted(set(classes))
            if used != list(range(len(used))):
                raise fail(
                    where,
                    "classes",
                    self.classes,
                    f"using every class 0..{max(classes)}",
                    f"Classes {sorted(set(range(max(classes) + 1)) - set(used))} have no "
                    "component; renumber the classes.",
                )
        object.__setattr__(self, "means", means)
        object.__setattr__(self, "covs", tuple(covs))
        object.__setattr__(self, "weights", weights)
        object.__setattr__(self, "classes", classes)

    # -- derived quantities
    def arrays(self) -> MixtureArrays:
        """The mixture as float64 arrays (:class:`MixtureArrays`, weights normalised):
        the interface exact code uses instead of reading the tuple fields."""
        a = self._prepared
        return MixtureArrays(a.means.copy(), a.covs.copy(), np.exp(a.log_weights), a.classes.copy())

    @functools.cached_property
    def _prepared(self) -> _Prepared:
        means = np.asarray(self.means, np.float64)
        covs = np.asarray(self.covs, np.float64)
        covs = 0.5 * (covs + np.swapaxes(covs, -1, -2))
        chols = np.linalg.cholesky(covs)
        logdets = 2.0 * np.sum(np.log(np.diagonal(chols, axis1=-2, axis2=-1)), -1)
        w = np.asarray(self.weights, np.float64)
        w = w / w.sum()
        with np.errstate(divide="ignore"):
            logw = np.log(w)
        classes = np.asarray(self.classes, np.int64)
        prior = np.bincount(classes, weights=w, minlength=self.num_classes)
        inv_chols = np.linalg.inv(chols)
        return _Prepared(means, covs, chols, inv_chols, logdets, logw, classes, prior)

    @property
    def num_classes(self) -> int:
        return max(self.classes) + 1  # type: ignore[arg-type]

    @property
    def num_components(self) -> int:
        return len(self.means)

    @property
    def dim(self) -> int:
        return len(self.means[0])

    @property
    def prior(self) -> np.ndarray:
        """Class prior ``p(y = k)``."""
        return self._prepared.prior.copy()

    def _box(self, eps: float) -> Box:
        a = self._prepared
        z = box_z(eps, self.dim)
        sd = np.sqrt(np.diagonal(a.covs, axis1=-2, axis2=-1))
        return Box(
            tuple(float(v) for v in np.min(a.means - z * sd, 0)),
            tuple(float(v) for v in np.max(a.means + z * sd, 0)),
        )

    @property
    def domain(self) -> Box:
        return self._box(DOMAIN_OUTSIDE_MASS)

    @property
    def outside_mass(self) -> float:
        """Upper bound on the probability mass outside ``domain``."""
        return DOMAIN_OUTSIDE_MASS

    # -- sampling
    @jit_sample
    def sample(self, key: Any, num_samples: int, *, dtype: Any = jnp.float32) -> Batch:
        a = self._prepared
        k_comp, k_noise = jax.random.split(key)
        comp = jax.random.categorical(
            k_comp, jnp.asarray(a.log_weights, jnp.float32), shape=(num_samples,)
        )
        z = jax.random.normal(k_noise, (num_samples, self.dim), dtype)
        chols = jnp.asarray(a.chols, dtype)[comp]
        x = jnp.asarray(a.means, dtype)[comp] + jnp.einsum("nij,nj->ni", chols, z)
        y = jnp.asarray(a.classes, jnp.int32)[comp]
        return Batch(x=x, y=y, latent={"component": comp.astype(jnp.int32)})

    def sample_numpy(self, rng: np.random.Generator, num_samples: int) -> np.ndarray:
        """Float64 host samples of ``x`` (used by the Monte Carlo Bayes estimate)."""
        a = self._prepared
        comp = rng.choice(self.num_components, size=num_samples, p=np.exp(a.log_weights))
        z = rng.standard_normal((num_samples, self.dim))
        return a.means[comp] + np.einsum("nij,nj->ni", a.chols[comp], z)

    # -- densities
    def component_log_prob(self, x: Any) -> np.ndarray:
        """``log w_j + log N(x; mu_j, Sigma_j)`` for every component: ``(..., K)``."""
        a = self._prepared
        x = np.asarray(x, np.float64)
        if x.shape[-1:] != (self.dim,):
            raise fail(
                "GaussianMixture.log_prob", "x", f"array of shape {x.shape}", f"(..., {self.dim})"
            )
        flat = x.reshape(-1, self.dim)
        out = np.empty((flat.shape[0], self.num_components))
        for j in range(self.num_components):
            r = (flat - a.means[j]) @ a.inv_chols[j].T
            out[:, j] = -0.5 * (np.sum(r * r, 1) + a.logdets[j] + self.dim * _LOG_2PI)
        return (out + a.log_weights).reshape(x.shape[:-1] + (self.num_components,))

    def class_log_joint(self, x: Any) -> np.ndarray:
        """``log p(x, y = k)``: shape ``(..., num_classes)``."""
        comp = self.component_log_prob(x)
        out = np.full(comp.shape[:-1] + (self.num_classes,), -np.inf)
        cls = self._prepared.classes
        for k in range(self.num_classes):
            out[..., k] = special.logsumexp(comp[..., cls == k], axis=-1)
        return out

    def log_prob(self, x: Any) -> np.ndarray:
        return special.logsumexp(self.component_log_prob(x), axis=-1)

    def posterior(self, x: Any) -> np.ndarray:
        return posterior_from_log_joint(self.class_log_joint(x), self._prepared.prior)

    # -- Bayes
    def _xor_offset_scale(self) -> tuple[float, float] | None:
        """``(a, sigma)`` when this is the symmetric isotropic XOR, else ``None``."""
        if self.dim != 2 or self.num_components != 4 or self.num_classes != 2:
            return None
        # exact equalities: a near-symmetric mixture is not the XOR of the closed form
        a = self._prepared
        if not np.all(a.log_weights == a.log_weights[0]):
            return None
        s2 = a.covs[0, 0, 0]
        if not np.all(a.covs == s2 * np.eye(2)):
            return None
        off = abs(a.means[0, 0])
        if off == 0 or not np.all(np.abs(a.means) == off):
            return None
        signs = np.sign(a.means[:, 0] * a.means[:, 1])
        if len(set(map(tuple, np.sign(a.means)))) != 4:
            return None
        for c in (0, 1):
            if len(set(signs[a.classes == c])) != 1:
                return None
        return float(off), float(math.sqrt(s2))

    @functools.cached_property
    def _atoms(self) -> GaussianAtoms:
        a = self._prepared
        return GaussianAtoms(a.means, a.covs, a.log_weights, a.classes, self.num_classes)

    @functools.cached_property
    def _bayes_cache(self) -> dict[tuple[int, int], BayesResult]:
        return {}

    def bayes(
        self, *, seed: int = 0, num_samples: int = 1_000_000, progress: Progress | None = None
    ) -> BayesResult:
        """The Bayes-optimal accuracy (see the class docstring for the method).

        ``seed`` and ``num_samples`` only matter for the Monte Carlo tier (``dim > 2``
        without a closed form). ``progress(fraction)`` is called during a quadrature.
        Results are kept on the instance.
        """
        where = "GaussianMixture.bayes"
        seed = check_int(where, "seed", seed, minimum=0)
        num_samples = check_int(where, "num_samples", num_samples, minimum=2)
        closed = self._closed_form()
        if closed is not None:
            return closed
        key = (seed, num_samples) if self.dim > 2 else (0, 0)
        cache = self._bayes_cache
        if key not in cache:
            if self.dim <= 2:
                cache[key] = bayes_accuracy(self._atoms, progress=progress)
            else:
                cache[key] = bayes_monte_carlo(
                    self.sample_numpy, self.posterior, seed=seed, num_samples=num_samples
                )
        elif progress is not None:
            progress(1.0)
        return cache[key]

    def _closed_form(self) -> BayesResult | None:
        """The Bayes accuracy in closed form where one applies (components of zero weight
        are ignored), else ``None``."""
        a = self._prepared
        w = np.exp(a.log_weights)
        if np.count_nonzero(a.prior > 0) <= 1:
            return BayesResult(1.0, 0.0, "exact", "one class holds all the probability")
        pos = w > 0
        means, covs, w, cls = a.means[pos], a.covs[pos], w[pos], a.classes[pos]
        if means.shape[0] == 2 and np.array_equal(covs[0], covs[1]):
            w0, w1 = float(w[0]), float(w[1])
            chol = np.linalg.cholesky(covs[0])
            z = np.linalg.solve(chol, means[0] - means[1])
            delta = float(np.sqrt(z @ z))
            if delta == 0.0:
                return BayesResult(
                    max(w0, w1),
                    1e-16,
                    "exact",
                    "two identical Gaussians: the larger weight (the posterior is the prior)",
                )
            lr = math.log(w0 / w1)
            acc = w0 * special.ndtr(delta / 2 + lr / delta) + w1 * special.ndtr(
                delta / 2 - lr / delta
            )
            # Rounding of D: the difference of the means (eps max|mu| per coordinate,
            # magnified by ||L^-1|| = lambda_min^-1/2) and the triangular solve (~d eps
            # cond(L) D). dA/dD = w0 phi(D/2 + ln(w0/w1)/D) (the two terms' densities
            # are equal on the boundary).
            lam = np.linalg.eigvalsh(covs[0])
            big = float(np.max(np.abs(means)))
            d = self.dim
            err_d = (
                4
                * _EPS
                * (math.sqrt(d) * big / math.sqrt(lam[0]) + d * math.sqrt(lam[-1] / lam[0]) * delta)
            )
            slope = w0 * math.exp(-0.5 * (delta / 2 + lr / delta) ** 2) / math.sqrt(2 * math.pi)
            return BayesResult(
                float(acc),
                1e-15 + slope * err_d,
                "exact",
                "two Gaussians with a shared covariance: linear boundary, "
                "w0 Phi(D/2 + ln(w0/w1)/D) + w1 Phi(D/2 - ln(w0/w1)/D), D the Mahalanobis "
                "distance; error = float64 rounding of D",
            )
        xor = self._xor_offset_scale()
        if xor is not None:
            r = xor[0] / xor[1]
            acc = special.ndtr(r) ** 2 + special.ndtr(-r) ** 2
            return BayesResult(
                float(acc),
                1e-15,
                "exact",
                "symmetric isotropic XOR: the boundary is the axes, Phi(a/s)^2 + Phi(-a/s)^2",
            )
        if self.dim == 1 and len(set(cls.tolist())) == cls.size:
            order = np.argsort(cls)
            acc, err = gaussian_1d_max_integral(
                means[order, 0], np.sqrt(covs[order, 0, 0]), np.log(w[order]), -np.inf, np.inf
            )
            return BayesResult(
                float(acc),
                float(err),
                "exact",
                "1-D, one component per class: crossings solve quadratics, pieces are normal "
                "CDFs; error = float64 rounding of the crossings",
            )
        return None


# --------------------------------------------------------------------------- presets


def two_blobs(distance: float = 4.0, scale: float = 1.0, dim: int = 2) -> GaussianMixture:
    r"""Two isotropic Gaussians ``N(+-distance/2 e_1, scale^2 I)`` in ``R^dim``, one per class.

    Equal weights; Bayes error ``Phi(-distance / (2 scale))`` (closed form).
    """
    where = "two_blobs"
    distance = check_float(where, "distance", distance, positive=True)
    scale = check_float(where, "scale", scale, positive=True)
    dim = check_int(where, "dim", dim, minimum=1)
    m0 = tuple(distance / 2 if i == 0 else 0.0 for i in range(dim))
    m1 = tuple(-distance / 2 if i == 0 else 0.0 for i in range(dim))
    cov = tuple(tuple(scale**2 if i == j else 0.0 for j in range(dim)) for i in range(dim))
    return GaussianMixture((m0, m1), (cov, cov), (0.5, 0.5), (0, 1))


def xor_blobs(offset: float = 2.0, scale: float = 1.0) -> GaussianMixture:
    r"""Four isotropic blobs ``N((+-a, +-a), s^2 I)``, equal weights, XOR labels.

    Class 0: the blobs at ``(a, a)`` and ``(-a, -a)``; class 1: ``(a, -a)``, ``(-a, a)``.

    Bayes accuracy: writing ``phi_+ = phi((x - a)/s)`` and ``phi_- = phi((x + a)/s)``
    per coordinate, ``p(x, 0) - p(x, 1) \propto (phi_+(x1) - phi_-(x1))(phi_+(x2) -
    phi_-(x2))``, whose sign is ``sign(x1 x2)``: the boundary is the two axes. Given the
    blob at ``(a, a)`` the rule is right when both coordinates keep their sign or both
    flip: accuracy ``Phi(a/s)^2 + Phi(-a/s)^2`` (the same for every blob by symmetry).
    """
    where = "xor_blobs"
    a = check_float(where, "offset", offset, positive=True)
    s = check_float(where, "scale", scale, positive=True)
    cov = ((s * s, 0.0), (0.0, s * s))
    means = ((a, a), (-a, -a), (a, -a), (-a, a))
    return GaussianMixture(means, (cov,) * 4, (0.25,) * 4, (0, 0, 1, 1))


def blobs_on_circle(
    k: int = 6, radius: float = 3.0, scale: float = 0.5, labels: str = "alternating"
) -> GaussianMixture:
    r"""``k`` isotropic blobs ``N(radius (cos 2 pi j/k, sin 2 pi j/k), scale^2 I)``, equal weights.

    ``labels="alternating"``: blob ``j`` has class ``j mod 2`` (with odd ``k`` the
    blobs ``k-1`` and ``0`` are neighbours of the same class); ``labels="distinct"``:
    blob ``j`` is class ``j``.
    """
    where = "blobs_on_circle"
    k = check_int(where, "k", k, minimum=2)
    radius = check_float(where, "radius", radius, positive=True)
    scale = check_float(where, "scale", scale, positive=True)
    labels = check_choice(where, "labels", labels, ("alternating", "distinct"))
    ang = 2 * np.pi * np.arange(k) / k
    means = tuple((float(radius * np.cos(t)), float(radius * np.sin(t))) for t in ang)
    cov = ((scale**2, 0.0), (0.0, scale**2))
    classes = tuple(j % 2 if labels == "alternating" else j for j in range(k))
    return GaussianMixture(means, (cov,) * k, (1.0 / k,) * k, classes)
