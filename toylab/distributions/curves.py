"""Noisy parametric curves in the plane: two moons, a two-armed spiral, two sine bands."""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from scipy import special

from toylab._errors import fail
from toylab._validate import check_choice, check_float
from toylab.distributions._numerics import (
    BAYES_OUTSIDE_MASS,
    DOMAIN_OUTSIDE_MASS,
    bayes_quadrature,
    box_z,
    gauss_legendre,
    jit_sample,
    posterior_from_log_joint,
)
from toylab.distributions.base import AbstractDistribution, Batch, BayesResult, Box

__all__ = ["CURVES", "NoisyCurve"]

CURVES = ("spiral", "two_moons", "sine")
#: The spiral arms start at this parameter value (``t`` runs over ``[SPIRAL_START, 1]``).
SPIRAL_START = 0.25
_ORDER = 10  # Gauss--Legendre points per panel
_PANELS_PER_SIGMA = 1.0  # panels are at most noise / max_speed wide
_GRADING = 8  # geometric refinement levels at each end of the parameter interval


def _curve(curve: str, k: int, t: Any, xp: Any, turns: float, amp: float, freq: float, gap: float):
    """``c_k(t)`` as ``(x1, x2)``, in NumPy (``xp=np``) or JAX (``xp=jnp``)."""
    if curve == "two_moons":
        if k == 0:
            return xp.cos(t), xp.sin(t)
        return 1.0 - xp.cos(t), 0.5 - xp.sin(t)
    if curve == "spiral":
        ang = 2 * math.pi * turns * t + k * math.pi
        return t * xp.cos(ang), t * xp.sin(ang)
    return t, amp * xp.sin(freq * t) + (0.5 - k) * gap


@dataclasses.dataclass(frozen=True)
class NoisyCurve(AbstractDistribution):
    r"""Points on one of two parametric curves plus isotropic Gaussian noise.

    Generative process, for curves ``c_0, c_1`` on a parameter interval ``T``::

        k ~ U{0, 1},   t ~ U(T),   x = c_k(t) + sigma eps,   eps ~ N(0, I_2),   y = k.

    So ``p(x) = sum_k 1/2 * 1/|T| int_T N(x; c_k(t), sigma^2 I) dt``, with ``sigma =
    noise``. ``t`` is uniform in the *parameter*, not in arc length.
    ``Batch.latent`` is ``{"component": k, "t": t}``.

    Curves (``curve=``):

    * ``"two_moons"``: ``T = [0, pi]``, ``c_0(t) = (cos t, sin t)``, ``c_1(t) = (1 - cos t,
      1/2 - sin t)``; class = moon.
    * ``"spiral"``: ``T = [1/4, 1]``, ``c_k(t) = t (cos(2 pi turns t + k pi), sin(2 pi turns
      t + k pi))``; class = arm.
    * ``"sine"``: ``T = [-pi, pi]``, ``c_k(t) = (t, amplitude sin(frequency t) + (1/2 - k)
      gap)``: two parallel sine bands, class 0 above, class 1 below.

    Fields that do not apply to the chosen curve (``turns`` for moons and sines,
    ``amplitude``/``frequency``/``gap`` except for sines) are kept but ignored.

    The density integral is composite ``12``-point Gauss--Legendre over panels of
    width ``<= sigma / (2 v_max)`` (``v_max`` the largest curve speed), with ``10``
    levels of geometric refinement at both ends of ``T`` (which keeps the relative
    accuracy for points beyond the curve ends, where the integrand decays
    exponentially). Its relative error is below ``density_rtol = 1e-10`` (checked
    against ``scipy.integrate.quad`` and by :meth:`density_error`, which compares
    with halved panels). ``domain`` is the curve's bounding box widened by ``z
    sigma``, holding all but ``1e-9`` of the mass. ``bayes()`` is the nested
    quadrature of :func:`toylab.distributions.gaussian.bayes_quadrature` (tier
    ``"estimated"``, measured error ~1e-11; a few seconds for the moons, ~30 s for the
    spiral, cached per instance).
    """

    curve: str
    noise: float = 0.1
    turns: float = 1.5
    amplitude: float = 1.0
    frequency: float = 1.0
    gap: float = 1.0

    kind: ClassVar[str] = "continuous"
    density_rtol: ClassVar[float] = 1e-10

    def __post_init__(self) -> None:
        where = "NoisyCurve"
        check_choice(where, "curve", self.curve, CURVES)
        object.__setattr__(self, "noise", check_float(where, "noise", self.noise, positive=True))
        for name in ("turns", "amplitude", "frequency", "gap"):
            v = check_float(where, name, getattr(self, name), nonneg=name == "amplitude")
            if name != "amplitude" and not v > 0:
                raise fail(where, name, v, "> 0", f"Pass a positive {name}.")
            object.__setattr__(self, name, v)

    @property
    def num_classes(self) -> int:
        return 2

    @property
    def dim(self) -> int:
        return 2

    @property
    def prior(self) -> np.ndarray:
        return np.array([0.5, 0.5])

    @property
    def interval(self) -> tuple[float, float]:
        """The parameter interval ``T``."""
        return {
            "two_moons": (0.0, math.pi),
            "spiral": (SPIRAL_START, 1.0),
            "sine": (-math.pi, math.pi),
        }[self.curve]

    @property
    def max_speed(self) -> float:
        """``max_t |c_k'(t)|`` over both curves."""
        if self.curve == "two_moons":
            return 1.0
        if self.curve == "spiral":
            return math.hypot(1.0, 2 * math.pi * self.turns)
        return math.hypot(1.0, self.amplitude * self.frequency)

    def points(self, k: int, t: Any) -> np.ndarray:
        """``c_k(t)`` in float64, shape ``t.shape + (2,)``."""
        t = np.asarray(t, np.float64)
        c = _curve(self.curve, k, t, np, self.turns, self.amplitude, self.frequency, self.gap)
        return np.stack(np.broadcast_arrays(*c), axis=-1)

    # -- domain
    def _box(self, eps: float) -> Box:
        t0, t1 = self.interval
        t = np.linspace(t0, t1, 20001)
        pts = np.concatenate([self.points(0, t), self.points(1, t)])
        slack = self.max_speed * (t[1] - t[0])
        pad = box_z(eps, 2) * self.noise + slack
        return Box(
            tuple(float(v) for v in pts.min(0) - pad), tuple(float(v) for v in pts.max(0) + pad)
        )

    @functools.cached_property
    def domain(self) -> Box:
        return self._box(DOMAIN_OUTSIDE_MASS)

    @property
    def outside_mass(self) -> float:
        """Upper bound on the probability mass outside ``domain``."""
        return DOMAIN_OUTSIDE_MASS

    # -- sampling
    @jit_sample
    def sample(self, key: Any, num_samples: int, *, dtype: Any = jnp.float32) -> Batch:
        out_dtype, dtype = dtype, jnp.promote_types(dtype, jnp.float32)
        k_cls, k_t, k_eps = jax.random.split(key, 3)
        t0, t1 = self.interval
        k = jax.random.bernoulli(k_cls, 0.5, (num_samples,)).astype(jnp.int32)
        t = jax.random.uniform(k_t, (num_samples,), dtype, minval=t0, maxval=t1)
        args = (self.turns, self.amplitude, self.frequency, self.gap)
        a = jnp.stack(_curve(self.curve, 0, t, jnp, *args), -1)
        b = jnp.stack(_curve(self.curve, 1, t, jnp, *args), -1)
        c = jnp.where(k[:, None] == 0, a, b).astype(dtype)
        x = (c + self.noise * jax.random.normal(k_eps, (num_samples, 2), dtype)).astype(out_dtype)
        return Batch(x=x, y=k, latent={"component": k, "t": t})

    # -- density
    @functools.lru_cache(maxsize=4)  # noqa: B019 - instances are small, hashable values
    def _nodes(self, refine: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Parameter nodes ``t_m`` and log weights ``log(w_m / |T|)``; ``refine`` splits panels."""
        t0, t1 = self.interval
        length = t1 - t0
        num = max(4, int(math.ceil(length * _PANELS_PER_SIGMA * self.max_speed / self.noise)))
        h = length / num
        grade = h * 2.0 ** -np.arange(_GRADING, 0, -1)
        inner = np.linspace(t0 + h, t1 - h, num - 1)
        edges = np.unique(np.concatenate([[t0], t0 + grade, inner, t1 - grade[::-1], [t1]]))
        if refine > 1:
            fine = [edges[:-1] + (edges[1:] - edges[:-1]) * j / refine for j in range(refine)]
            edges = np.unique(np.concatenate(fine + [edges[-1:]]))
        u, w = gauss_legendre(_ORDER)
        half = 0.5 * np.diff(edges)
        nodes = (edges[:-1, None] + half[:, None] * (u + 1)).ravel()
        weights = (half[:, None] * w).ravel() / length
        return nodes, np.log(weights)

    def class_log_joint(self, x: Any, *, refine: int = 1) -> np.ndarray:
        """``log p(x, y = k)``: shape ``(..., 2)``."""
        x = np.asarray(x, np.float64)
        if x.shape[-1:] != (2,):
            raise fail("NoisyCurve.log_prob", "x", f"array of shape {x.shape}", "(..., 2)")
        flat = x.reshape(-1, 2)
        nodes, logw = self._nodes(refine)
        s2 = self.noise**2
        w = np.exp(logw)
        out = np.empty((flat.shape[0], 2))
        step = max(1, 65_536 // nodes.size)
        for k in (0, 1):
            c = self.points(k, nodes) / self.noise
            for s in range(0, flat.shape[0], step):
                p = flat[s : s + step] / self.noise
                # e = |x - c(t_m)|^2 / (2 sigma^2), shifted by its minimum over m so that
                # the sum over nodes never underflows (a log-sum-exp done by hand).
                e = np.subtract.outer(p[:, 0], c[:, 0])
                np.square(e, out=e)
                e2 = np.subtract.outer(p[:, 1], c[:, 1])
                np.square(e2, out=e2)
                e += e2
                e *= 0.5
                e_min = e.min(axis=1)
                e -= e_min[:, None]
                np.negative(e, out=e)
                np.exp(e, out=e)
                out[s : s + step, k] = np.log(e @ w) - e_min
        out += math.log(0.5) - math.log(2 * math.pi * s2)
        return out.reshape(x.shape[:-1] + (2,))

    def log_prob(self, x: Any) -> np.ndarray:
        return special.logsumexp(self.class_log_joint(x), axis=-1)

    def density_error(self, x: Any) -> np.ndarray:
        """Estimated relative error of :meth:`prob` at ``x``: the change when every panel is
        halved (the halved rule is far more accurate, so this bounds the error of the
        default one in practice)."""
        a = self.class_log_joint(x)
        b = self.class_log_joint(x, refine=2)
        return np.max(np.abs(np.expm1(a - b)), axis=-1)

    def posterior(self, x: Any) -> np.ndarray:
        return posterior_from_log_joint(self.class_log_joint(x), self.prior)

    def bayes(self, *, tol: float = 1e-8) -> BayesResult:
        """Bounded: nested quadrature of ``max_k p(x, y=k)`` (see the class docstring)."""
        return _curve_bayes(self, float(tol))


@functools.lru_cache(maxsize=32)
def _curve_bayes(dist: NoisyCurve, tol: float) -> BayesResult:
    res = bayes_quadrature(
        dist.class_log_joint,
        dist._box(BAYES_OUTSIDE_MASS),
        # cells one noise scale wide: arms can be closer than the default 3 length scales
        length_scale=dist.noise / 3,
        outside_mass=BAYES_OUTSIDE_MASS,
        tol=tol,
    )
    # The density itself is accurate to density_rtol: add that (relative to a mass of 1).
    return dataclasses.replace(res, error=res.error + dist.density_rtol)
