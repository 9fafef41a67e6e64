r"""Integrals of a 2-D distribution over polygons: the one place exact code measures mass.

:func:`region_moments` gives, for every polygon ``P_r`` and every *group* ``g`` of the
distribution (a Gaussian mixture's components; the classes of other densities),

.. math::

    m_0 = \int_{P_r} p(x, g)\,dx,\quad m_1 = \int_{P_r} x\,p(x, g)\,dx,\quad
    m_2 = \int_{P_r} x x^\top p(x, g)\,dx,

with an error per region and column: for Gaussian mixtures the closed form of
:mod:`toylab.exact.integrals` (tier ``"exact"``, the error a rounding bound); for a
density that declares itself a sum of Gaussian atoms (``gaussian_atoms()``, e.g. the
noisy curves, whose density is a quadrature over the curve parameter) the same closed
form over every atom, summed per class (tier ``"estimated"``: the atoms are the
density to its declared relative error ``density_rtol``, an estimate); for any other
density with ``class_log_joint`` (rings) adaptive quadrature (tier ``"estimated"``,
the error the quadrature's estimate). ``method`` says which.

:func:`integration_domain` says where to integrate: for a Gaussian mixture, a box
leaving ``margin = 12`` standard deviations around every component (the mass outside
is bounded per component by a union bound over the four faces, ``~1e-32``), for other
densities the distribution's ``domain`` and its declared ``outside_mass``.
:func:`truncation_bounds` bounds what that leaves out of every neuron's moments
(certified, for Gaussian mixtures).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
from scipy.special import ndtr

from toylab._errors import NotApplicable
from toylab.distributions import GaussianMixture
from toylab.distributions.base import Box
from toylab.exact.integrals import (
    mixture_edge_masses,
    mixture_polygon_moments,
    polygon_quadrature,
)
from toylab.network import Network
from toylab.tiers import Tier

__all__ = [
    "IntegrationDomain",
    "RegionMoments",
    "class_edge_masses",
    "density_bound",
    "polygon_masses",
    "integration_domain",
    "region_moments",
    "truncation_bounds",
]

MARGIN_SIGMAS = 12.0


@dataclasses.dataclass(frozen=True, eq=False)
class RegionMoments:
    """Per-group moments of a distribution over polygons (see the module docstring).

    ``m0 (G, R)``, ``m1 (G, R, 2)``, ``m2 (G, R, 2, 2)``; ``error (G, R, 6)`` bounds
    (``exact``) or estimates (``estimated``) the absolute error of the columns
    ``(m0, m1_x, m1_y, m2_xx, m2_xy, m2_yy)``. ``groups`` is ``"component"`` or
    ``"class"`` and ``group_class[g]`` the class of group ``g``.
    """

    m0: np.ndarray
    m1: np.ndarray
    m2: np.ndarray
    error: np.ndarray
    groups: str
    group_class: np.ndarray
    tier: Tier
    method: str = "closed-form Gaussian polygon moments"

    @property
    def num_regions(self) -> int:
        return int(self.m0.shape[1])

    def total(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(m0 (R,), m1 (R, 2), m2 (R, 2, 2), error (R, 6))`` summed over the groups."""
        return self.m0.sum(0), self.m1.sum(0), self.m2.sum(0), self.error.sum(0)


def _empty(num_groups: int, group_class: np.ndarray, groups: str, tier: Tier) -> RegionMoments:
    g = num_groups
    return RegionMoments(
        np.zeros((g, 0)), np.zeros((g, 0, 2)), np.zeros((g, 0, 2, 2)), np.zeros((g, 0, 6)),
        groups, group_class, tier,
    )  # fmt: skip


def _check_planar(where: str, dist: Any) -> Box:
    domain = getattr(dist, "domain", None)
    if not isinstance(domain, Box) or domain.dim != 2:
        raise NotApplicable(
            f"{where}: exact integrals over the plane need a continuous distribution on 2-D "
            f"inputs, got {type(dist).__name__} with domain {type(domain).__name__} of dimension "
            f"{getattr(domain, 'dim', '?')}. For finite domains use toylab.exact.analyze (it "
            "enumerates them); for more dimensions, a 2-D slice (toylab.exact.slice_partition)."
        )
    return domain


def region_moments(
    dist: Any, polygons: Any, *, rtol: float = 1e-9, atol: float = 1e-14, origin: Any = None
) -> RegionMoments:
    """Per-group moments of ``dist`` over convex ``polygons`` (see the module docstring).

    With ``origin``, the polygons are given relative to it and the moments are those of
    ``x - origin`` (``m1 = E[(x - origin) 1_P]``, ...): data far from the origin keeps
    full precision. ``rtol``/``atol`` are the quadrature's per-polygon tolerances
    (non-Gaussian densities).
    """
    o = np.zeros(2) if origin is None else np.asarray(origin, np.float64)
    where = "region_moments"
    if isinstance(dist, GaussianMixture):
        arrays = dist.arrays()
        if arrays.means.shape[1] != 2:
            _check_planar(where, dist)
        if len(polygons) == 0:
            return _empty(len(arrays.weights), arrays.classes, "component", "exact")
        m0, m1, m2, err = mixture_polygon_moments(
            polygons, arrays.means - o, arrays.covs, arrays.weights, return_error=True
        )
        return RegionMoments(m0, m1, m2, err, "component", np.asarray(arrays.classes), "exact")
    _check_planar(where, dist)
    gaussian_atoms = getattr(dist, "gaussian_atoms", None)
    if gaussian_atoms is not None:
        return _atom_moments(dist, gaussian_atoms(), polygons, o)
    log_joint = getattr(dist, "class_log_joint", None)
    num_classes = int(getattr(dist, "num_classes", 0))
    if log_joint is None or num_classes < 1:
        raise NotApplicable(
            f"{where}: {type(dist).__name__} has no class densities on the plane "
            "(class_log_joint), so nothing can be integrated over regions."
        )
    classes = np.arange(num_classes)
    if len(polygons) == 0:
        return _empty(num_classes, classes, "class", "estimated")

    def columns(x: np.ndarray) -> np.ndarray:
        p = np.exp(log_joint(x + o))  # (N, C)
        mono = np.stack(
            [np.ones(len(x)), x[:, 0], x[:, 1], x[:, 0] ** 2, x[:, 0] * x[:, 1], x[:, 1] ** 2],
            axis=1,
        )
        return (p[:, :, None] * mono[:, None, :]).reshape(len(x), -1)

    vals, errs = polygon_quadrature(columns, polygons, rtol=rtol, atol=atol)
    r = vals.shape[0]
    v = vals.reshape(r, num_classes, 6).transpose(1, 0, 2)
    e = errs.reshape(r, num_classes, 6).transpose(1, 0, 2)
    m1 = v[:, :, 1:3]
    m2 = np.stack([v[:, :, [3, 4]], v[:, :, [4, 5]]], axis=2)
    return RegionMoments(
        v[:, :, 0], m1, m2, e, "class", classes, "estimated",
        f"adaptive quadrature over the regions (rtol {rtol:g}; error estimated)",
    )  # fmt: skip


def _atom_moments(dist: Any, atoms: Any, polygons: Any, o: np.ndarray) -> RegionMoments:
    """Closed-form moments of every Gaussian atom, summed per class (see the module
    docstring); the error adds the atoms' relative density error to the rounding."""
    num_classes = int(dist.num_classes)
    classes = np.arange(num_classes)
    rel = float(getattr(dist, "density_rtol", 0.0))
    method = (f"closed-form Gaussian polygon moments over the density's {len(atoms.weights)} "
              f"Gaussian atoms (relative density error {rel:g}, an estimate)")  # fmt: skip
    if len(polygons) == 0:
        return dataclasses.replace(_empty(num_classes, classes, "class", "estimated"),
                                   method=method)  # fmt: skip
    m0, m1, m2, err = mixture_polygon_moments(
        polygons, atoms.means - o, atoms.covs, atoms.weights, return_error=True
    )
    onehot = (np.asarray(atoms.classes)[None, :] == classes[:, None]).astype(np.float64)
    c0 = onehot @ m0
    c1 = np.einsum("ck,krd->crd", onehot, m1)
    c2 = np.einsum("ck,krde->crde", onehot, m2)
    e = np.einsum("ck,krj->crj", onehot, err)
    # |int f (p - p_atoms)| <= rel int |f| p, with int |x_i| p <= sqrt(m0 m2_ii) and
    # int |x y| p <= sqrt(m2_xx m2_yy) (Cauchy-Schwarz)
    sxx, syy = np.maximum(c2[..., 0, 0], 0.0), np.maximum(c2[..., 1, 1], 0.0)
    c0p = np.maximum(c0, 0.0)
    dens = np.stack([c0p, np.sqrt(c0p * sxx), np.sqrt(c0p * syy), sxx, np.sqrt(sxx * syy), syy],
                    axis=-1)  # fmt: skip
    return RegionMoments(c0, c1, c2, e + rel * dens, "class", classes, "estimated", method)


def _closed_form_components(
    where: str, dist: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float, Tier, str]:
    """``(means, covs, weights, classes, rel, tier, what)`` of a Gaussian mixture (exact)
    or of a density of Gaussian atoms (estimated, to its relative density error ``rel``);
    :class:`~toylab.NotApplicable` for other densities."""
    if isinstance(dist, GaussianMixture):
        arr = dist.arrays()
        return (np.asarray(arr.means), np.asarray(arr.covs), np.asarray(arr.weights),
                np.asarray(arr.classes), 0.0, "exact", "")  # fmt: skip
    _check_planar(where, dist)
    gaussian_atoms = getattr(dist, "gaussian_atoms", None)
    if gaussian_atoms is None:
        raise NotApplicable(
            f"{where}: {type(dist).__name__} is neither a Gaussian mixture nor a sum of "
            "Gaussian atoms, so its masses have no closed form over edges; use "
            "toylab.exact.region_moments (quadrature over the regions)."
        )
    atoms = gaussian_atoms()
    rel = float(getattr(dist, "density_rtol", 0.0))
    return (np.asarray(atoms.means), np.asarray(atoms.covs), np.asarray(atoms.weights),
            np.asarray(atoms.classes), rel, "estimated",
            f", {len(atoms.weights)} Gaussian atoms (relative density error {rel:g}, an "
            "estimate)")  # fmt: skip


def polygon_masses(
    dist: Any, polygons: Any, *, origin: Any = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(mass (P,), error (P,))`` of convex ``polygons`` (relative to ``origin``) under a
    Gaussian mixture or a density of Gaussian atoms: ``m0`` of :func:`region_moments`
    summed over the groups, from each polygon's edge terms alone (no first or second
    moments), with the same rounding bound (plus the atoms' density error)."""
    where = "polygon_masses"
    means, covs, weights, _, rel, _, _ = _closed_form_components(where, dist)
    o = np.zeros(2) if origin is None else np.asarray(origin, np.float64)
    polys = [np.asarray(p, np.float64) for p in polygons]
    if not polys:
        return np.zeros(0), np.zeros(0)
    lens = np.array([len(p) for p in polys])
    a = np.concatenate(polys)
    b = np.concatenate([np.roll(p, -1, axis=0) for p in polys])
    pid = np.repeat(np.arange(len(polys)), lens)
    # clockwise polygons count with the opposite sign (as gaussian_polygon_moments)
    cross = a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]
    sign = np.sign(np.bincount(pid, cross, minlength=len(polys)))
    terms, err = mixture_edge_masses(a, b, means - o, covs, weights)
    mass = sign * np.bincount(pid, terms.sum(0), minlength=len(polys))
    error = np.bincount(pid, err.sum(0), minlength=len(polys))
    return mass, error + rel * np.maximum(mass, 0.0)


def class_edge_masses(
    dist: Any, a: Any, b: Any, edge_class: Any, *, origin: Any = None
) -> tuple[np.ndarray, np.ndarray, Tier, str]:
    """``P(class = c, x in D_c)`` for every class ``c``, where ``D_c`` is the union of
    regions whose counter-clockwise boundaries are the directed edges ``a[e] -> b[e]``
    with ``edge_class[e] == c`` (relative to ``origin``).

    By Green's theorem a mass is a sum over the boundary's edges
    (:func:`~toylab.exact.integrals.mixture_edge_masses`), and edges shared by two regions
    of one union cancel: the caller passes only the outer boundaries, so the cost is
    their length times the components, not every region's. Closed form for Gaussian
    mixtures (tier ``"exact"``, the error a rounding bound) and for densities of Gaussian
    atoms (``"estimated"``: the atoms' declared relative density error is added, as in
    :func:`region_moments`); other densities raise :class:`~toylab.NotApplicable`.

    Returns ``(masses (C,), error (C,), tier, method)``.
    """
    where = "class_edge_masses"
    o = np.zeros(2) if origin is None else np.asarray(origin, np.float64)
    means, covs, weights, classes, rel, tier, what = _closed_form_components(where, dist)
    method = "closed-form Gaussian masses over the decision regions' boundaries" + what
    pa, pb = np.asarray(a, np.float64), np.asarray(b, np.float64)
    ec = np.asarray(edge_class)
    num_classes = int(dist.num_classes)
    masses, error = np.zeros(num_classes), np.zeros(num_classes)
    for c in range(num_classes):
        sel, comp = ec == c, classes == c
        if not sel.any() or not comp.any():
            continue
        terms, err = mixture_edge_masses(pa[sel], pb[sel], means[comp] - o, covs[comp],
                                         weights[comp])  # fmt: skip
        masses[c] = terms.sum()
        error[c] = err.sum() + rel * max(masses[c], 0.0)
    return masses, error, tier, method


@dataclasses.dataclass(frozen=True, eq=False)
class IntegrationDomain:
    """Where exact integrals over the plane are taken, and what they leave out.

    ``polygon`` is the box ``[low, high]``; ``outside_mass`` a bound on the probability
    outside it (``outside_tier`` says whether it is certified, computed here, or the
    distribution's own declared bound); for Gaussian mixtures ``component_outside``
    holds the per-component bound, used by :func:`truncation_bounds`.
    """

    low: np.ndarray
    high: np.ndarray
    polygon: np.ndarray
    outside_mass: float
    outside_tier: Tier
    component_outside: np.ndarray | None = None


def integration_domain(dist: Any, *, margin: float = MARGIN_SIGMAS) -> IntegrationDomain:
    """The integration box of ``dist`` (see the module docstring).

    For a Gaussian mixture: the distribution's domain widened to leave ``margin``
    standard deviations (along each axis) around every mean. The mass component ``k``
    puts outside is at most ``sum_j [Phi(-(mu_j - lo_j)/s_j) + Phi(-(hi_j - mu_j)/s_j)]``
    (a union bound over the faces; certified).
    """
    box = _check_planar("integration_domain", dist)
    if not isinstance(dist, GaussianMixture):
        low, high = np.asarray(box.low, np.float64), np.asarray(box.high, np.float64)
        return IntegrationDomain(
            low, high, box.polygon(), float(getattr(dist, "outside_mass", 0.0)), "certified"
        )
    a = dist.arrays()
    sd = np.sqrt(np.diagonal(a.covs, axis1=1, axis2=2))
    low = np.minimum((a.means - margin * sd).min(0), np.asarray(box.low))
    high = np.maximum((a.means + margin * sd).max(0), np.asarray(box.high))
    out = np.sum(ndtr(-(a.means - low) / sd) + ndtr(-(high - a.means) / sd), axis=1)
    out = np.minimum(out, 1.0)
    return IntegrationDomain(
        low, high, Box(tuple(low), tuple(high)).polygon(), float(a.weights @ out), "certified", out
    )


def density_bound(dist: Any) -> float | None:
    """A certified upper bound on the density of ``dist`` on the plane, where one is known.

    Gaussian mixture: ``sum_k w_k / (2 pi sqrt(det S_k))``. Other densities: ``None``.
    """
    if not isinstance(dist, GaussianMixture):
        return None
    a = dist.arrays()
    dets = np.linalg.det(a.covs)
    return float(np.sum(a.weights / (2.0 * math.pi * np.sqrt(dets))) * (1.0 + 1e-12))


def _gaussian_r4(mean: np.ndarray, cov: np.ndarray) -> float:
    """``E|y|^4`` for ``y ~ N(mean, cov)``: ``(tr S + |m|²)² + 2 tr(S²) + 4 mᵀ S m``."""
    return float(
        (np.trace(cov) + mean @ mean) ** 2 + 2 * np.trace(cov @ cov) + 4 * mean @ cov @ mean
    )


def truncation_bounds(
    net: Network, dist: Any, domain: IntegrationDomain
) -> dict[str, tuple[np.ndarray, float]]:
    r"""Certified bounds on what the integration box leaves out of every layer's moments.

    For a Gaussian mixture and every layer key: ``(first (n,), second)`` with
    ``|E[a_i 1_out]| <= first[i]`` and ``|E[a_i a_j 1_out]| <= second`` for all ``i, j``.

    Derivation: with ``c`` the box centre, ``|a_i(x)| <= A_i + L_i |x - c|`` where
    ``A_i = |a_i(c)|`` (a float64 forward pass, padded by 1e-12 relative) and ``L_i`` is
    the product of the spectral norms of the layers up to unit ``i`` times the
    activations' Lipschitz constants (:mod:`toylab.activations`). Per component ``k``,
    Cauchy–Schwarz gives ``|E_k[a_i 1_out]| <= sqrt(E_k[a_i^2]) sqrt(P_k(out))`` with
    ``E_k[a_i^2] <= 2 A_i^2 + 2 L_i^2 E_k|x - c|^2``, and
    ``|E_k[a_i a_j 1_out]| <= (E_k[a_i^4] E_k[a_j^4])^{1/4} sqrt(P_k(out))`` with
    ``E_k[a^4] <= 8 A^4 + 8 L^4 E_k|x - c|^4`` (Gaussian fourth moments in closed form).
    Returns ``{}`` for other distributions (no certified tail bound).
    """
    if not isinstance(dist, GaussianMixture) or domain.component_outside is None:
        return {}
    a = dist.arrays()
    c = 0.5 * (domain.low + domain.high)
    at_c = net.forward(c[None, :])
    r2 = np.array(
        [np.trace(cov) + (mu - c) @ (mu - c) for mu, cov in zip(a.means, a.covs, strict=True)]
    )
    r4 = np.array([_gaussian_r4(mu - c, cov) for mu, cov in zip(a.means, a.covs, strict=True)])
    p_out = domain.component_outside
    out: dict[str, tuple[np.ndarray, float]] = {}
    lip_in = 1.0  # Lipschitz bound of the layer's input as a function of x
    for k, ((w, _), act) in enumerate(zip(net.dense_layers(), net.acts, strict=True)):
        col = np.linalg.norm(w, axis=0) * lip_in  # per unit, pre-activation
        post_key = net.layer_names[k][0]
        keys = [(f"{post_key}.pre", col), (post_key, col * act.lipschitz)]
        if post_key == "output" and act.name == "identity":
            keys = [(post_key, col)]
        for key, lip in keys:
            amp = np.abs(at_c[key][0]) * (1 + 1e-12) + 1e-300
            e2 = 2 * amp[None, :] ** 2 + 2 * lip[None, :] ** 2 * r2[:, None]  # (K, n)
            e4 = 8 * amp[None, :] ** 4 + 8 * lip[None, :] ** 4 * r4[:, None]
            first = np.sum(a.weights[:, None] * np.sqrt(e2 * p_out[:, None]), axis=0)
            second = float(np.sum(a.weights * np.sqrt(e4.max(axis=1)) * np.sqrt(p_out)))
            out[key] = (first, second)
        lip_in = lip_in * float(np.linalg.norm(w, 2)) * act.lipschitz
    return out
