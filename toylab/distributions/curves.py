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
from toylab.distributions._atoms import GaussianAtoms, Progress, bayes_accuracy
from toylab.distributions._numerics import (
    DOMAIN_OUTSIDE_MASS,
    box_z,
    gauss_legendre,
    jit_sample,
    posterior_from_log_joint,
)
from toylab.distributions.base import AbstractDistribution, Batch, BayesResult, Box
from toylab.distributions.gaussian import MixtureArrays

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

    def _atom_table(self, refine: int) -> GaussianAtoms:
        """The density quadrature as Gaussian atoms: class ``k`` has one isotropic atom
        ``N(c_k(t_m), sigma^2 I)`` of weight ``w_m / (2 |T|)`` per node ``t_m``."""
        nodes, logw = self._nodes(refine)
        means = np.concatenate([self.points(0, nodes), self.points(1, nodes)])
        covs = np.broadcast_to(self.noise**2 * np.eye(2), (means.shape[0], 2, 2))
        log_weights = np.concatenate([logw, logw]) + math.log(0.5)
        classes = np.repeat([0, 1], nodes.size)
        return GaussianAtoms(means, covs, log_weights, classes, 2, pair_windows=False)

    @functools.cached_property
    def _atoms(self) -> GaussianAtoms:
        return self._atom_table(1)

    @functools.cached_property
    def _atoms_refined(self) -> GaussianAtoms:
        return self._atom_table(2)

    @functools.cached_property
    def _bayes_cache(self) -> dict[float, BayesResult]:
        return {}

    def gaussian_atoms(self) -> MixtureArrays:
        """The density as a finite Gaussian mixture: its quadrature over the curve
        parameter (one isotropic atom per node and class, weights summing to one). It is
        the density to a relative error ``density_rtol`` (an estimate); exact code
        integrates it in closed form (:func:`toylab.exact.region_moments`)."""
        a = self._atoms
        return MixtureArrays(a.means.copy(), a.covs.copy(), np.exp(a.log_weights), a.classes.copy())

    def class_log_joint(self, x: Any, *, refine: int = 1) -> np.ndarray:
        """``log p(x, y = k)``: shape ``(..., 2)`` (``refine=2``: every panel halved)."""
        x = np.asarray(x, np.float64)
        if x.shape[-1:] != (2,):
            raise fail("NoisyCurve.log_prob", "x", f"array of shape {x.shape}", "(..., 2)")
        atoms = {1: self._atoms, 2: self._atoms_refined}.get(refine) or self._atom_table(refine)
        return atoms.class_log_joint(x)

    def log_prob(self, x: Any) -> np.ndarray:
        return special.logsumexp(self.class_log_joint(x), axis=-1)

    def density_error(self, x: Any) -> np.ndarray:
        """An *estimate* (not a bound) of the relative error of :meth:`prob` at ``x``: the
        change when every panel of the parameter quadrature is halved, ``max_k |p_k /
        p_k' - 1|``. The halved rule is far more accurate, so this overstates the error
        of the default rule wherever the quadrature converges as it does for smooth
        integrands; it is checked against ``scipy.integrate.quad`` in the tests, not
        proved."""
        a = self.class_log_joint(x)
        b = self.class_log_joint(x, refine=2)
        return np.max(np.abs(np.expm1(a - b)), axis=-1)

    def posterior(self, x: Any) -> np.ndarray:
        return posterior_from_log_joint(self.class_log_joint(x), self.prior)

    def bayes(self, *, tol: float = 1e-10, progress: Progress | None = None) -> BayesResult:
        """Estimated: nested quadrature of ``max_k p(x, y=k)`` over the density's atoms
        (see the class docstring). ``progress(fraction)`` is called while it runs; the
        result is kept on the instance."""
        tol = check_float("NoisyCurve.bayes", "tol", tol, positive=True)
        cache = self._bayes_cache
        if tol not in cache:
            res = bayes_accuracy(self._atoms, tol=tol, progress=progress)
            cache[tol] = dataclasses.replace(
                res,
                # the atoms are the density to density_rtol: |A_atoms - A| <= density_rtol
                error=res.error + self.density_rtol,
                method=res.method + " + density_rtol (the density quadrature's relative "
                "error, an estimate)",
            )
        elif progress is not None:
            progress(1.0)
        return cache[tol]
