"""Concentric rings: the class is the ring index."""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from scipy import special

from toylab._errors import fail
from toylab._validate import check_choice, check_weights, float_tuple
from toylab.distributions._numerics import (
    DOMAIN_OUTSIDE_MASS,
    gaussian_1d_max_integral,
    jit_sample,
    log_normal_1d,
    posterior_from_log_joint,
)
from toylab.distributions.base import AbstractDistribution, Batch, BayesResult, Box

__all__ = ["Rings"]


@dataclasses.dataclass(frozen=True)
class Rings(AbstractDistribution):
    r"""Concentric annuli in the plane; ring ``k`` is class ``k``.

    Generative process, with radii ``r_k``, widths ``w_k`` and weights ``pi_k``::

        k ~ Categorical(pi),   theta ~ U[0, 2 pi),   rho | k ~ p_k,
        x = rho (cos theta, sin theta),   y = k,

    where the radial law ``p_k`` is

    * ``radial="gaussian"``: ``N(r_k, w_k^2)`` conditioned on ``rho >= 0`` (truncation
      by conditioning, i.e. renormalised by ``Phi(r_k / w_k)``, not folded);
      sampled exactly by inverting the CDF of the lower-truncated normal;
    * ``radial="uniform"``: ``U[r_k - w_k, r_k + w_k]`` (needs ``r_k >= w_k``).

    The density in the plane is ``p(x) = sum_k pi_k p_k(|x|) / (2 pi |x|)`` (polar
    change of variables); it is infinite at the origin when some ``p_k(0) > 0``.
    Since the posterior depends on ``|x|`` only, the Bayes accuracy is the 1-D
    integral ``int_0^inf max_k pi_k p_k(rho) d rho``, computed in closed form
    (Gaussian: pairwise crossings are roots of quadratics, pieces are normal CDF
    differences; uniform: piecewise constant).

    ``domain`` is the square ``[-R, R]^2`` with ``R = max_k (r_k + z w_k)`` (Gaussian,
    ``z`` such that every ring puts at most ``1e-9`` beyond ``R``) or
    ``R = max_k (r_k + w_k)`` (uniform, nothing outside).
    ``Batch.latent`` is ``{"component": k, "radius": rho, "angle": theta}``.
    """

    radii: tuple[float, ...]
    widths: tuple[float, ...]
    weights: tuple[float, ...] | None = None
    radial: str = "gaussian"

    kind: ClassVar[str] = "continuous"

    def __post_init__(self) -> None:
        where = "Rings"
        radii = float_tuple(where, "radii", self.radii, nonneg=True)
        k = len(radii)
        widths = float_tuple(where, "widths", self.widths, length=k, positive=True)
        weights = (
            tuple([1.0 / k] * k) if self.weights is None else check_weights(where, self.weights, k)
        )
        radial = check_choice(where, "radial", self.radial, ("gaussian", "uniform"))
        if radial == "uniform":
            for i, (r, w) in enumerate(zip(radii, widths, strict=True)):
                if w > r:
                    raise fail(
                        where,
                        f"widths[{i}]",
                        w,
                        f"<= radii[{i}] = {r} for radial='uniform'",
                        "The annulus [r - w, r + w] must not cross the origin.",
                    )
        object.__setattr__(self, "radii", radii)
        object.__setattr__(self, "widths", widths)
        object.__setattr__(self, "weights", weights)

    @property
    def num_classes(self) -> int:
        return len(self.radii)

    @property
    def dim(self) -> int:
        return 2

    @functools.cached_property
    def _params(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        r = np.asarray(self.radii, np.float64)
        w = np.asarray(self.widths, np.float64)
        pi = np.asarray(self.weights, np.float64)
        pi = pi / pi.sum()
        # mass of N(r, w^2) on [0, inf): the truncation normaliser
        z = special.ndtr(r / w) if self.radial == "gaussian" else np.ones_like(r)
        return r, w, pi, z

    @property
    def _z_tail(self) -> float:
        r, w, _, z = self._params
        # P(rho > r + t w) = Phi(-t) / Z_k <= eps  <=>  t = -ndtri(eps * min Z_k)
        return float(-special.ndtri(DOMAIN_OUTSIDE_MASS * np.min(z)))

    @property
    def outer_radius(self) -> float:
        r, w, _, _ = self._params
        if self.radial == "uniform":
            return float(np.max(r + w))
        return float(np.max(r + self._z_tail * w))

    @property
    def domain(self) -> Box:
        big = self.outer_radius
        return Box((-big, -big), (big, big))

    @property
    def outside_mass(self) -> float:
        """Upper bound on the probability mass outside ``domain`` (the disc it holds)."""
        return DOMAIN_OUTSIDE_MASS if self.radial == "gaussian" else 0.0

    @property
    def prior(self) -> np.ndarray:
        return self._params[2].copy()

    @jit_sample
    def sample(self, key: Any, num_samples: int, *, dtype: Any = jnp.float32) -> Batch:
        r, w, pi, z = self._params
        out_dtype, dtype = dtype, jnp.promote_types(dtype, jnp.float32)
        k_comp, k_rad, k_ang = jax.random.split(key, 3)
        with np.errstate(divide="ignore"):
            logits = jnp.asarray(np.log(pi), jnp.float32)
        comp = jax.random.categorical(k_comp, logits, shape=(num_samples,))
        rk = jnp.asarray(r, dtype)[comp]
        wk = jnp.asarray(w, dtype)[comp]
        tiny = jnp.finfo(dtype).tiny
        u = jax.random.uniform(k_rad, (num_samples,), dtype, minval=tiny, maxval=1.0)
        if self.radial == "gaussian":
            # rho = r + w Z with Z ~ N(0,1) | Z >= -r/w, by inversion on the upper tail:
            # Z = -Phi^{-1}(u Phi(r/w)), u ~ U(0, 1], exact in the tail that matters.
            zk = jnp.asarray(z, dtype)[comp]
            rho = jnp.maximum(rk - wk * jax.scipy.special.ndtri(u * zk), 0.0)
        else:
            rho = rk + wk * (2.0 * u - 1.0)
        theta = jax.random.uniform(k_ang, (num_samples,), dtype, maxval=2 * jnp.pi)
        x = jnp.stack([rho * jnp.cos(theta), rho * jnp.sin(theta)], axis=-1).astype(out_dtype)
        latent = {"component": comp.astype(jnp.int32), "radius": rho, "angle": theta}
        return Batch(x=x, y=comp.astype(jnp.int32), latent=latent)

    def radial_log_joint(self, rho: Any) -> np.ndarray:
        """``log pi_k + log p_k(rho)`` for radii ``rho``: shape ``(..., num_classes)``."""
        r, w, pi, z = self._params
        rho = np.asarray(rho, np.float64)[..., None]
        with np.errstate(divide="ignore"):
            if self.radial == "gaussian":
                lp = log_normal_1d(rho, r, w) - np.log(z)
            else:
                lp = np.where(np.abs(rho - r) <= w, -np.log(2 * w), -np.inf)
            out = np.log(pi) + lp
        return np.where(rho >= 0, out, -np.inf)

    def class_log_joint(self, x: Any) -> np.ndarray:
        """``log p(x, y = k)``: shape ``(..., num_classes)``."""
        x = np.asarray(x, np.float64)
        if x.shape[-1:] != (2,):
            raise fail("Rings.log_prob", "x", f"array of shape {x.shape}", "(..., 2)")
        rho = np.hypot(x[..., 0], x[..., 1])
        with np.errstate(divide="ignore"):
            return self.radial_log_joint(rho) - np.log(2 * np.pi * rho)[..., None]

    def log_prob(self, x: Any) -> np.ndarray:
        return special.logsumexp(self.class_log_joint(x), axis=-1)

    def posterior(self, x: Any) -> np.ndarray:
        x = np.asarray(x, np.float64)
        if x.shape[-1:] != (2,):
            raise fail("Rings.posterior", "x", f"array of shape {x.shape}", "(..., 2)")
        rho = np.hypot(x[..., 0], x[..., 1])
        return posterior_from_log_joint(self.radial_log_joint(rho), self._params[2])

    def bayes(self) -> BayesResult:
        """Exact: ``int_0^inf max_k pi_k p_k(rho) d rho`` (see the class docstring)."""
        r, w, pi, z = self._params
        with np.errstate(divide="ignore"):
            logc = np.log(pi) - np.log(z)
        if self.radial == "gaussian":
            acc, err = gaussian_1d_max_integral(r, w, logc, 0.0, np.inf)
            method = (
                "1-D radial integral: quadratic crossings, normal CDF pieces; error = float64 "
                "rounding of the crossings"
            )
        else:
            pts = np.unique(np.concatenate([r - w, r + w]))
            acc = 0.0
            for a, b in zip(pts[:-1], pts[1:], strict=True):
                mid = 0.5 * (a + b)
                inside = np.abs(mid - r) <= w
                dens = np.where(inside, pi / (2 * w), 0.0)
                acc += float(np.max(dens)) * (b - a)
            err = 1e-14 * self.num_classes
            method = "1-D radial integral of a piecewise-constant maximum"
        return BayesResult(float(acc), float(err), "exact", method)
