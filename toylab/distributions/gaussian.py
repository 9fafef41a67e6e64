"""Gaussian mixtures with full covariances and a component-to-class map.

Also holds the small numerical helpers (parameter validation, Gauss--Legendre
rules, the Bayes-accuracy quadrature) shared by the other continuous
distributions of this package.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from scipy import special
from scipy import stats as _stats

from toylab._errors import ToylabError, fail
from toylab._validate import (
    check_choice,
    check_float,
    check_int,
    check_weights,
    float_tuple,
    is_int,
)
from toylab.distributions.base import AbstractDistribution, Batch, BayesResult, Box

__all__ = [
    "DOMAIN_OUTSIDE_MASS",
    "GaussianMixture",
    "MixtureArrays",
    "blobs_on_circle",
    "two_blobs",
    "xor_blobs",
]

#: Every continuous ``domain`` box holds all but at most this much probability mass.
DOMAIN_OUTSIDE_MASS = 1e-9
#: The Bayes quadratures integrate over a larger box holding all but this much mass;
#: the Bayes accuracy restricted to that box is therefore off by at most this much.
_BAYES_OUTSIDE_MASS = 1e-13
# Inner cell width and initial outer panel width of the Bayes quadrature, in units of
# the distribution's length scale (measured: errors ~1e-13 against closed forms).
_CELL = 3.0
_PANEL = 6.0
# Bisection steps locating a class change inside a cell: the location error is
# <= cell * 2^-30, and a misplaced kink costs O(error^2), far below 1e-15.
_BISECTIONS = 30
#: Two-sided 99.9% normal quantile, for the Monte Carlo confidence intervals.
Z_999 = float(_stats.norm.ppf(0.9995))
_LOG_2PI = math.log(2.0 * math.pi)


# --------------------------------------------------------------------------- sampling


def jit_sample(fn: Callable[..., Batch]) -> Callable[..., Batch]:
    """Compile a ``sample(self, key, num_samples, *, dtype)`` method once per
    ``(self, num_samples, dtype)``: eager calls then cost one dispatch instead of one
    per primitive, and calls under an outer ``jit``/``vmap`` simply inline it."""
    compiled = jax.jit(fn, static_argnums=(0, 2), static_argnames=("dtype",))

    @functools.wraps(fn)
    def sample(self: Any, key: Any, num_samples: int, *, dtype: Any = jnp.float32) -> Batch:
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


def _integrate_max_cells(
    log_joint_at: Callable[[np.ndarray, np.ndarray], np.ndarray],
    num_rows: int,
    lo: float,
    hi: float,
    num_cells: int,
    order: int = 8,
) -> np.ndarray:
    """``int_lo^hi exp(max_k L(row, t)) dt`` for every row, shape ``(num_rows,)``.

    ``log_joint_at(rows, t)`` evaluates ``L`` (last axis: classes) at integer row
    indices ``rows`` and points ``t`` of one shape. The interval is cut into
    ``num_cells`` cells; a cell whose end points have different argmax classes is
    split at the change point (located by 30 bisection steps) and each piece integrated by ``order``-point Gauss--Legendre, so the
    kinks of ``max_k`` sit on piece boundaries and each piece is smooth.
    """
    edges = np.linspace(lo, hi, num_cells + 1)
    rows = np.arange(num_rows)[:, None]
    at_edges = np.argmax(log_joint_at(rows, np.broadcast_to(edges, (num_rows, num_cells + 1))), -1)
    cl, cr = at_edges[:, :-1], at_edges[:, 1:]
    left = np.broadcast_to(edges[:-1], (num_rows, num_cells))
    right = np.broadcast_to(edges[1:], (num_rows, num_cells))
    split = 0.5 * (left + right)
    bi, ci = np.nonzero(cl != cr)
    if bi.size:
        a, b, c0 = edges[ci].copy(), edges[ci + 1].copy(), cl[bi, ci]
        for _ in range(_BISECTIONS):
            m = 0.5 * (a + b)
            same = np.argmax(log_joint_at(bi, m), -1) == c0
            a = np.where(same, m, a)
            b = np.where(same, b, m)
        split = split.copy()
        split[bi, ci] = 0.5 * (a + b)
    u, w = gauss_legendre(order)
    total = np.zeros(num_rows)
    for lo_p, hi_p in ((left, split), (split, right)):
        half = 0.5 * (hi_p - lo_p)
        t = lo_p[..., None] + half[..., None] * (u + 1.0)
        lj = log_joint_at(rows[..., None], t)
        total += np.sum(np.exp(np.max(lj, -1)) * w * half[..., None], axis=(-1, -2))
    return total


def adaptive_gauss_legendre(
    fn: Callable[[np.ndarray], np.ndarray],
    lo: float,
    hi: float,
    *,
    tol: float,
    num_panels: int = 16,
    order: int = 10,
    max_rounds: int = 14,
) -> tuple[float, float]:
    """Adaptive composite Gauss--Legendre for a vectorised ``fn``: ``(integral, error)``.

    Each panel is integrated with one ``order``-point rule and with two on its
    halves; the difference estimates the error of the coarse rule (and is a
    conservative estimate for the finer one, which is what is summed). Panels whose
    estimate exceeds their share ``tol * width / (hi - lo)`` are split.
    """
    u, w = gauss_legendre(order)
    panels = np.linspace(lo, hi, num_panels + 1)
    a, b = panels[:-1], panels[1:]
    total, error = 0.0, 0.0
    for round_ in range(max_rounds):
        m = 0.5 * (a + b)
        los = np.concatenate([a, a, m])
        his = np.concatenate([b, m, b])
        half = 0.5 * (his - los)
        t = los[:, None] + half[:, None] * (u + 1.0)
        vals = fn(t.ravel()).reshape(t.shape)
        ints = np.sum(vals * w, axis=1) * half
        n = a.size
        coarse, fine = ints[:n], ints[n : 2 * n] + ints[2 * n :]
        est = np.abs(coarse - fine)
        ok = est <= tol * (b - a) / (hi - lo)
        if round_ == max_rounds - 1:
            ok[:] = True
        total += math.fsum(fine[ok])
        error += math.fsum(est[ok])
        if ok.all():
            break
        a, b = np.concatenate([a[~ok], m[~ok]]), np.concatenate([m[~ok], b[~ok]])
    return total, error


def bayes_quadrature(
    log_joint: Callable[[np.ndarray], np.ndarray],
    box: Box,
    *,
    length_scale: float,
    outside_mass: float,
    tol: float = 1e-9,
) -> BayesResult:
    """Bayes accuracy ``int max_k p(x, y=k) dx`` of a 1-D or 2-D distribution.

    ``log_joint(x)`` maps points ``(..., d)`` to ``log p(x, y=k)`` ``(..., K)``;
    ``box`` holds all but ``outside_mass``; ``length_scale`` is the smallest scale on
    which the density varies (it sets the inner cell width). 1-D: cells with
    located class changes (see :func:`_integrate_max_cells`); 2-D: the same along
    ``x2`` for each ``x1``, and adaptive Gauss--Legendre over ``x1``. The reported
    error adds the outer adaptive estimate, the change in the inner integral when its
    cells are halved (measured at 16 values of ``x1``, times the box width) and
    ``outside_mass``.
    """
    lo, hi = box.low, box.high
    if box.dim == 1:

        def lj1(rows: np.ndarray, t: np.ndarray) -> np.ndarray:
            return log_joint(np.asarray(t, np.float64)[..., None])

        # 1-D is cheap: cells a quarter of the length scale wide
        cells = max(256, int(math.ceil(4 * (hi[0] - lo[0]) / length_scale)))
        val = _integrate_max_cells(lj1, 1, lo[0], hi[0], cells)[0]
        val2 = _integrate_max_cells(lj1, 1, lo[0], hi[0], 2 * cells)[0]
        err = abs(val - val2) + outside_mass
        return BayesResult(
            float(val2),
            float(err),
            "bounded",
            f"Gauss-Legendre on {2 * cells} cells split at located class changes; error = "
            "change on halving the cells + mass outside the integration box",
        )
    if box.dim != 2:  # pragma: no cover - callers dispatch
        raise ToylabError(f"bayes_quadrature: needs a 1-D or 2-D box, got dim={box.dim}.")
    cells = max(16, int(math.ceil((hi[1] - lo[1]) / (_CELL * length_scale))))

    def inner(x1: np.ndarray, num_cells: int = cells) -> np.ndarray:
        x1 = np.asarray(x1, np.float64)

        def lj(rows: np.ndarray, t: np.ndarray) -> np.ndarray:
            rows, t = np.broadcast_arrays(rows, t)
            return log_joint(np.stack([x1[rows], t], axis=-1))

        out = np.empty(x1.shape)
        step = max(1, 400_000 // (num_cells * 16))
        for s in range(0, x1.size, step):
            chunk = x1[s : s + step]

            def ljc(rows: np.ndarray, t: np.ndarray, s: int = s) -> np.ndarray:
                return lj(rows + s, t)

            out[s : s + step] = _integrate_max_cells(ljc, chunk.size, lo[1], hi[1], num_cells)
        return out

    outer_panels = max(8, int(math.ceil((hi[0] - lo[0]) / (_PANEL * length_scale))))
    val, err = adaptive_gauss_legendre(inner, lo[0], hi[0], tol=tol, num_panels=outer_panels)
    probe = np.linspace(lo[0], hi[0], 18)[1:-1]
    inner_err = np.max(np.abs(inner(probe) - inner(probe, 2 * cells))) * (hi[0] - lo[0])
    return BayesResult(
        float(val),
        float(err + inner_err + outside_mass),
        "bounded",
        "nested quadrature: Gauss-Legendre along x2 on cells split at located class changes, "
        "adaptive Gauss-Legendre along x1; error = adaptive estimate + change on halving the "
        "inner cells + mass outside the integration box",
    )


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
) -> float:
    """``int_lo^hi max_k c_k N(x; m_k, s_k^2) dx`` in closed form (``hi`` may be inf).

    Pairwise crossings solve a quadratic exactly; between consecutive crossings one
    class wins and its integral is a difference of normal CDFs.
    """
    k = len(means)
    pts = [lo, hi]
    for i in range(k):
        for j in range(i + 1, k):
            a = -0.5 / sds[i] ** 2 + 0.5 / sds[j] ** 2
            b = means[i] / sds[i] ** 2 - means[j] / sds[j] ** 2
            c = (
                -0.5 * means[i] ** 2 / sds[i] ** 2
                + 0.5 * means[j] ** 2 / sds[j] ** 2
                + log_coef[i]
                - np.log(sds[i])
                - log_coef[j]
                + np.log(sds[j])
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
            pts += [r for r in roots if lo < r < hi]
    pts = np.unique(np.asarray(pts, np.float64))  # type: ignore[assignment]
    total = 0.0
    for a_, b_ in zip(pts[:-1], pts[1:], strict=True):
        mid = 0.5 * (a_ + b_) if np.isfinite(b_) else a_ + 1.0 + abs(a_)
        if not np.isfinite(a_):
            mid = b_ - 1.0 - abs(b_)
        win = int(np.argmax(log_coef + log_normal_1d(mid, means, sds)))  # type: ignore[arg-type]
        total += math.exp(log_coef[win]) * float(
            normal_mass((a_ - means[win]) / sds[win], (b_ - means[win]) / sds[win])
        )
    return total


# --------------------------------------------------------------------------- the mixture


class MixtureArrays(NamedTuple):
    """A Gaussian mixture's parameters as float64 arrays (the interface exact code uses)."""

    means: np.ndarray  # (K, d)
    covs: np.ndarray  # (K, d, d)
    weights: np.ndarray  # (K,), normalised
    classes: np.ndarray  # (K,) int


@dataclasses.dataclass(frozen=True)
class _MixtureArrays:
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
    isotropic XOR (see :func:`xor_blobs`); otherwise a bounded quadrature in 1-D and
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
    @functools.cached_property
    def _arrays(self) -> _MixtureArrays:
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
        return _MixtureArrays(means, covs, chols, inv_chols, logdets, logw, classes, prior)

    def arrays(self) -> MixtureArrays:
        """``(means, covs, weights, classes)`` as float64 arrays (weights normalised)."""
        a = self._arrays
        return MixtureArrays(a.means, a.covs, np.exp(a.log_weights), a.classes)

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
        return self._arrays.prior.copy()

    def _box(self, eps: float) -> Box:
        a = self._arrays
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
        a = self._arrays
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
        a = self._arrays
        comp = rng.choice(self.num_components, size=num_samples, p=np.exp(a.log_weights))
        z = rng.standard_normal((num_samples, self.dim))
        return a.means[comp] + np.einsum("nij,nj->ni", a.chols[comp], z)

    # -- densities
    def component_log_prob(self, x: Any) -> np.ndarray:
        """``log w_j + log N(x; mu_j, Sigma_j)`` for every component: ``(..., K)``."""
        a = self._arrays
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
        cls = self._arrays.classes
        for k in range(self.num_classes):
            out[..., k] = special.logsumexp(comp[..., cls == k], axis=-1)
        return out

    def log_prob(self, x: Any) -> np.ndarray:
        return special.logsumexp(self.component_log_prob(x), axis=-1)

    def posterior(self, x: Any) -> np.ndarray:
        return posterior_from_log_joint(self.class_log_joint(x), self._arrays.prior)

    # -- Bayes
    def _xor_offset_scale(self) -> tuple[float, float] | None:
        """``(a, sigma)`` when this is the symmetric isotropic XOR, else ``None``."""
        if self.dim != 2 or self.num_components != 4 or self.num_classes != 2:
            return None
        a = self._arrays
        if not np.allclose(a.log_weights, a.log_weights[0], rtol=0, atol=1e-12):
            return None
        s2 = a.covs[0, 0, 0]
        if not np.allclose(a.covs, s2 * np.eye(2), rtol=1e-12, atol=0):
            return None
        off = abs(a.means[0, 0])
        if off == 0 or not np.allclose(np.abs(a.means), off, rtol=1e-12, atol=0):
            return None
        signs = np.sign(a.means[:, 0] * a.means[:, 1])
        if len(set(map(tuple, np.sign(a.means)))) != 4:
            return None
        for c in (0, 1):
            if len(set(signs[a.classes == c])) != 1:
                return None
        return float(off), float(math.sqrt(s2))

    def bayes(self, *, seed: int = 0, num_samples: int = 1_000_000) -> BayesResult:
        """The Bayes-optimal accuracy (see the class docstring for the method).

        ``seed`` and ``num_samples`` only matter for the Monte Carlo tier (``dim > 2``
        without a closed form).
        """
        return _mixture_bayes(self, int(seed), int(num_samples))


@functools.lru_cache(maxsize=128)
def _mixture_bayes(dist: GaussianMixture, seed: int, num_samples: int) -> BayesResult:
    a = dist._arrays
    if dist.num_classes == 1:
        return BayesResult(1.0, 0.0, "exact", "a single class")
    if dist.num_components == 2 and dist.num_classes == 2 and np.array_equal(a.covs[0], a.covs[1]):
        diff = a.means[0] - a.means[1]
        delta = math.sqrt(float(diff @ np.linalg.solve(a.covs[0], diff)))
        w0, w1 = np.exp(a.log_weights)
        if w0 == 0 or w1 == 0:
            return BayesResult(1.0, 0.0, "exact", "one component has zero weight")
        lr = math.log(w0 / w1)
        acc = w0 * special.ndtr(delta / 2 + lr / delta) + w1 * special.ndtr(delta / 2 - lr / delta)
        return BayesResult(
            float(acc),
            1e-15,
            "exact",
            "two Gaussians with a shared covariance: linear boundary, "
            "w0 Phi(D/2 + ln(w0/w1)/D) + w1 Phi(D/2 - ln(w0/w1)/D), D the Mahalanobis distance",
        )
    xor = dist._xor_offset_scale()
    if xor is not None:
        r = xor[0] / xor[1]
        acc = special.ndtr(r) ** 2 + special.ndtr(-r) ** 2
        return BayesResult(
            float(acc),
            1e-15,
            "exact",
            "symmetric isotropic XOR: the boundary is the axes, Phi(a/s)^2 + Phi(-a/s)^2",
        )
    if dist.dim == 1 and len(set(dist.classes)) == dist.num_components:  # type: ignore[arg-type]
        order = np.argsort(a.classes)
        acc = gaussian_1d_max_integral(
            a.means[order, 0], np.sqrt(a.covs[order, 0, 0]), a.log_weights[order], -np.inf, np.inf
        )
        return BayesResult(
            float(acc),
            1e-14,
            "exact",
            "1-D, one component per class: crossings solve quadratics, pieces are normal CDFs",
        )
    if dist.dim <= 2:
        sd_min = float(np.min(np.sqrt(np.linalg.eigvalsh(a.covs)[:, 0])))
        return bayes_quadrature(
            dist.class_log_joint,
            dist._box(_BAYES_OUTSIDE_MASS),
            length_scale=sd_min,
            outside_mass=_BAYES_OUTSIDE_MASS,
        )
    return bayes_monte_carlo(dist.sample_numpy, dist.posterior, seed=seed, num_samples=num_samples)


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
