"""Exact integrals of Gaussians over polygons, neuron moments, and polygon quadrature.

A ReLU-family network on a 2-D input is affine on each of its linear regions,
which are convex polygons. Under a Gaussian input ``x ~ N(mu, Sigma)`` every
expectation of a neuron, or of a product of two neurons, is therefore a sum
over regions of the three *region moments*

.. math::

    m_0(P) = \\int_P N(x)\\,dx, \\qquad
    m_1(P) = \\int_P x\\,N(x)\\,dx, \\qquad
    m_2(P) = \\int_P x x^\\top N(x)\\,dx,

which this module computes in closed form (tier ``"exact"``).

**Method.** Whiten ``x = mu + L z`` with ``Sigma = L L^T`` (Cholesky, so
orientation is kept). Split the polygon into signed triangles ``(0, a, b)``, one
per edge. Drop the perpendicular from the origin to the edge's line, at signed
distance ``h``; with ``t`` the coordinate along the edge, the triangle is the
difference of two right triangles with legs ``h`` and ``t``, whose standard
normal mass is

.. math::

    G(h, t) = \\frac{\\arctan(t/h)}{2\\pi} - T(h, t/h)

(Owen's ``T``). The identity
``G(h, t) + G(t, h) = (Phi(h) - 1/2)(Phi(t) - 1/2)`` keeps the second argument
of ``T`` in ``[0, 1]``. The moments follow from the divergence theorem, since
``grad phi = -z phi``:

.. math::

    \\int_P z\\,\\phi = -\\oint_{\\partial P} \\phi\\, n\\,ds, \\qquad
    \\int_P z z^\\top \\phi = m_0 I - \\oint_{\\partial P} z\\, n^\\top \\phi\\,ds,

and along an edge ``z = h n + t d`` the boundary integrals are 1-D Gaussian
integrals in closed form (``phi(h) [Phi(t_b) - Phi(t_a)]`` and
``phi(h) [phi(t_a) - phi(t_b)]``). Every term is bounded, so the absolute error
is a few ulps per edge. The relative error is worse for tiny or far-out
polygons (the per-edge terms cancel). With ``refine=True``, where a pair of
collapsed Gauss-Legendre rules on the polygon's fan triangles estimates a smaller
error, that value is used instead; such values are *estimated*, not exact, so the
exact analyses keep ``refine=False`` (the default): what they need is absolute
accuracy, which the closed form has.

:func:`polygon_quadrature` integrates any smooth vectorized function over
polygons adaptively and reports an error *estimate* (tier ``"estimated"``), for
non-Gaussian densities (rings, noisy curves).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np
from scipy.special import erf, ndtr, owens_t

from toylab._errors import fail

__all__ = [
    "CrossMomentsResult",
    "NeuronMomentsResult",
    "cross_moments",
    "gaussian_polygon_moments",
    "mixture_edge_masses",
    "mixture_polygon_moments",
    "neuron_moments",
    "polygon_quadrature",
]

_EPS = np.finfo(np.float64).eps
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_INV_2PI = 1.0 / (2.0 * math.pi)
_INV_SQRT2 = 1.0 / math.sqrt(2.0)

Polygons = Sequence[Any] | np.ndarray


# ---------------------------------------------------------------------------
# input handling
# ---------------------------------------------------------------------------


def _as_padded(polygons: Polygons, where: str) -> np.ndarray:
    """Return polygons as one ``(R, V, 2)`` float64 array.

    Shorter polygons are padded by repeating their last vertex; the padded
    edges have zero length and contribute nothing.
    """
    if isinstance(polygons, np.ndarray) and polygons.ndim == 3:
        arr = np.asarray(polygons, dtype=np.float64)
        if arr.shape[-1] != 2:
            raise fail(where, "polygons", f"array of shape {arr.shape}", "of shape (R, V, 2)")
        if not np.all(np.isfinite(arr)):
            raise fail(where, "polygons", "an array with non-finite entries", "finite")
        return arr
    if isinstance(polygons, np.ndarray) and polygons.ndim == 2:
        raise fail(
            where,
            "polygons",
            f"one array of shape {polygons.shape}",
            "a list of (V, 2) arrays or an (R, V, 2) array",
            "Wrap a single polygon in a list: [polygon].",
        )
    polys = [np.asarray(p, dtype=np.float64) for p in polygons]
    if not polys:
        return np.zeros((0, 3, 2))
    sizes = np.empty(len(polys), dtype=np.int64)
    for i, p in enumerate(polys):
        if p.size == 0:
            polys[i] = p = np.zeros((1, 2))  # empty polygon: zero moments
        if p.ndim != 2 or p.shape[1] != 2:
            raise fail(where, f"polygons[{i}]", f"array of shape {p.shape}", "of shape (V, 2)")
        sizes[i] = p.shape[0]
    vmax = max(int(sizes.max()), 3)
    out = np.empty((len(polys), vmax, 2))
    for v in np.unique(sizes):
        idx = np.flatnonzero(sizes == v)
        block = np.stack([polys[i] for i in idx])
        out[idx, :v] = block
        out[idx, v:] = block[:, -1:, :]
    bad = ~np.all(np.isfinite(out), axis=(1, 2))
    if np.any(bad):
        i = int(np.flatnonzero(bad)[0])
        raise fail(where, f"polygons[{i}]", "an array with non-finite entries", "finite")
    return out


def _cholesky_all(mus: np.ndarray, sigmas: np.ndarray, where: str) -> np.ndarray:
    """Cholesky factors ``(K, 2, 2)`` of ``K`` covariances, checked as
    :func:`_check_gaussian` checks one (in one vectorised pass; the per-component check
    names the first bad one)."""
    k = mus.shape[0]
    if k == 0:
        return np.zeros((0, 2, 2))
    ok = (
        sigmas.shape == (k, 2, 2)
        and bool(np.all(np.isfinite(mus)))
        and bool(np.all(np.isfinite(sigmas)))
    )
    if ok:
        off = np.abs(sigmas[:, 0, 1] - sigmas[:, 1, 0])
        big = np.maximum(np.abs(sigmas[:, 0, 1]), np.abs(sigmas).max(axis=(1, 2)))
        ok = bool(np.all(off <= 1e-12 * np.maximum(big, 1e-300)))
    if ok:
        sym = 0.5 * (sigmas + np.swapaxes(sigmas, 1, 2))
        a, b, c = sym[:, 0, 0], sym[:, 1, 0], sym[:, 1, 1]
        with np.errstate(invalid="ignore", divide="ignore"):
            l00 = np.sqrt(a)
            l10 = b / l00
            l11 = np.sqrt(c - l10 * l10)
        if bool(np.all(l00 > 0) and np.all(l11 > 0)):
            chols = np.zeros((k, 2, 2))
            chols[:, 0, 0], chols[:, 1, 0], chols[:, 1, 1] = l00, l10, l11
            return chols
    for i in range(k):  # the slow path names the component that fails
        _check_gaussian(mus[i], sigmas[i], where)
    return np.stack([_check_gaussian(mus[i], sigmas[i], where)[1] for i in range(k)])


def _check_gaussian(mean: Any, cov: Any, where: str) -> tuple[np.ndarray, np.ndarray]:
    mu = np.asarray(mean, dtype=np.float64)
    sigma = np.asarray(cov, dtype=np.float64)
    if mu.shape != (2,) or not np.all(np.isfinite(mu)):
        raise fail(where, "mean", mean, "a finite array of shape (2,)")
    if sigma.shape != (2, 2) or not np.all(np.isfinite(sigma)):
        raise fail(where, "cov", cov, "a finite array of shape (2, 2)")
    if abs(sigma[0, 1] - sigma[1, 0]) > 1e-12 * max(abs(sigma[0, 1]), abs(sigma).max(), 1e-300):
        raise fail(where, "cov", cov, "symmetric", "Pass (cov + cov.T) / 2.")
    sigma = 0.5 * (sigma + sigma.T)
    try:
        chol = np.linalg.cholesky(sigma)
    except np.linalg.LinAlgError:
        raise fail(
            where, "cov", cov, "positive definite", "Add a small multiple of the identity."
        ) from None
    if not np.all(np.diag(chol) > 0):
        raise fail(where, "cov", cov, "positive definite", "Add a small multiple of the identity.")
    return mu, chol


# ---------------------------------------------------------------------------
# closed form for the standard normal
# ---------------------------------------------------------------------------


def _g_right_triangle(h: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Signed standard normal mass of the right triangle ``0, (h, 0), (h, t)``.

    The sign is ``sign(h) * sign(t)``; ``Owen's T`` is only called with its
    second argument in ``[0, 1]``.
    """
    ah, at = np.abs(h), np.abs(t)
    direct = at <= ah
    big = np.maximum(ah, at)
    small = np.minimum(ah, at)
    ratio = np.divide(small, big, out=np.zeros_like(small), where=big > 0)
    core = np.arctan2(small, big) * _INV_2PI - owens_t(big, ratio)
    out = np.copysign(core, h * t)
    # swapped: G(h, t) = (Phi(h) - 1/2)(Phi(t) - 1/2) - G(t, h)
    sw = np.flatnonzero(~direct)
    out[sw] = 0.25 * erf(h[sw] * _INV_SQRT2) * erf(t[sw] * _INV_SQRT2) - out[sw]
    return out


def _phi_diff(ta: np.ndarray, tb: np.ndarray) -> np.ndarray:
    """``Phi(tb) - Phi(ta)`` computed on the side of the smaller tail."""
    upper = (ta + tb) > 0
    return np.where(upper, ndtr(-ta) - ndtr(-tb), ndtr(tb) - ndtr(ta))


def _edge_frame(
    ax: np.ndarray, ay: np.ndarray, bx: np.ndarray, by: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For edges ``a -> b`` of positive length: the unit direction ``(dx, dy)``, the
    signed distance ``h`` of the edge's line from the origin (positive when the origin
    is on the left) and the coordinates ``ta``, ``tb`` of ``a``, ``b`` along it."""
    ex, ey = bx - ax, by - ay
    length = np.hypot(ex, ey)
    dx, dy = ex / length, ey / length
    return dx, dy, (ax * by - ay * bx) / length, ax * dx + ay * dy, bx * dx + by * dy


def _standard_edge_mass(z_a: np.ndarray, z_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Green's-theorem terms of the standard normal mass: for edges ``z_a -> z_b``
    ``(..., 2)``, ``G(h, t_b) - G(h, t_a)`` (:func:`_g_right_triangle`), whose sum over
    the edges of a counter-clockwise closed boundary is the mass inside (the same terms
    :func:`_standard_moments` sums per polygon), and each term's rounding scale
    ``|G(h, t_a)| + |G(h, t_b)|`` (``16 eps`` times it bounds the rounding, as there).
    Zero-length edges give ``0``."""
    ax, ay, bx, by = z_a[..., 0], z_a[..., 1], z_b[..., 0], z_b[..., 1]
    ok = (ax != bx) | (ay != by)
    term, scale = np.zeros(ax.shape), np.zeros(ax.shape)
    if np.any(ok):
        _, _, h, ta, tb = _edge_frame(ax[ok], ay[ok], bx[ok], by[ok])
        g_b, g_a = _g_right_triangle(h, tb), _g_right_triangle(h, ta)
        term[ok], scale[ok] = g_b - g_a, np.abs(g_a) + np.abs(g_b)
    return term, scale


def mixture_edge_masses(
    a: Any, b: Any, means: Any, covs: Any, weights: Any
) -> tuple[np.ndarray, np.ndarray]:
    r"""Per-component Green's-theorem mass terms of directed edges ``a[e] -> b[e]``.

    The mass of a Gaussian :math:`N(\mu_k, L_k L_k^\top)` inside a region bounded
    counter-clockwise by some of the edges is the sum of their terms: in the whitened
    coordinates :math:`z = L_k^{-1}(x - \mu_k)` (orientation-preserving: :math:`L_k` has
    a positive diagonal) each edge contributes :math:`G(h, t_b) - G(h, t_a)`, the signed
    standard normal mass of the triangle it spans with :math:`\mu_k` (the closed form of
    :func:`gaussian_polygon_moments`, summed over a boundary instead of per polygon).
    An edge shared by two regions of one union appears once in each direction and its
    terms cancel, so the mass of a union of many regions needs only the edges of its
    outer boundary.

    Args:
        a, b: ``(E, 2)`` edge endpoints.
        means, covs, weights: ``(K, 2)``, ``(K, 2, 2)``, ``(K,)`` as in
          :func:`mixture_polygon_moments`.

    Returns:
        ``(terms (K, E), error (K, E))``: the weighted terms and a bound on each one's
        rounding (``16 eps`` times its scale, as :func:`gaussian_polygon_moments`).
    """
    where = "mixture_edge_masses"
    pa, pb = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if pa.ndim != 2 or pa.shape[1:] != (2,) or pb.shape != pa.shape:
        raise fail(where, "a, b", f"arrays of shapes {pa.shape} and {pb.shape}",
                   "two (E, 2) arrays of edge endpoints")  # fmt: skip
    mus = np.asarray(means, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    k = mus.shape[0] if mus.ndim == 2 else -1
    if k < 0 or mus.shape[1] != 2:
        raise fail(where, "means", f"array of shape {mus.shape}", "of shape (K, 2)")
    if w.shape != (k,) or not np.all(np.isfinite(w)) or np.any(w < 0):
        raise fail(where, "weights", weights, f"{k} finite non-negative numbers")
    sigmas = np.asarray(covs, dtype=np.float64)
    chols = _cholesky_all(mus, sigmas, where)
    e = pa.shape[0]
    terms, err = np.zeros((k, e)), np.zeros((k, e))
    step = max(1, (1 << 18) // max(1, e))
    blocks = [slice(lo, min(k, lo + step)) for lo in range(0, k if e else 0, step)]

    def run(sl: slice) -> None:
        inv_t = np.swapaxes(np.linalg.inv(chols[sl]), 1, 2)[:, None]  # (k, 1, 2, 2)
        za = ((pa[None] - mus[sl, None, :])[:, :, None, :] @ inv_t)[:, :, 0, :]
        zb = ((pb[None] - mus[sl, None, :])[:, :, None, :] @ inv_t)[:, :, 0, :]
        t, sc = _standard_edge_mass(za, zb)
        terms[sl], err[sl] = t, 16.0 * _EPS * (sc + 1e-17)

    workers = min(len(blocks), _num_cpus())
    if workers > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(run, blocks))
    else:
        for sl in blocks:
            run(sl)
    return terms * w[:, None], err * w[:, None]


def _standard_moments(
    z: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Standard normal moments of padded polygons ``z`` of shape ``(R, V, 2)``.

    Returns ``m0 (R,)``, ``m1 (R, 2)``, ``m2 (R, 2, 2)`` and the analytic
    error estimate ``(R, 6)`` for the columns ``1, z1, z2, z1^2, z1 z2, z2^2``.
    """
    r = z.shape[0]
    b_all = np.roll(z, -1, axis=1)
    ax_all, ay_all = z[..., 0], z[..., 1]
    bx_all, by_all = b_all[..., 0], b_all[..., 1]
    cross_all = ax_all * by_all - ay_all * bx_all
    area2 = np.sum(cross_all, axis=1)
    orient = np.sign(area2)  # clockwise polygons give the negated integrals

    # keep the edges of positive length only (padding repeats vertices)
    ex_all, ey_all = bx_all - ax_all, by_all - ay_all
    valid = (ex_all != 0) | (ey_all != 0)
    owner = np.broadcast_to(np.arange(r)[:, None], valid.shape)[valid]
    ax, ay, bx, by = ax_all[valid], ay_all[valid], bx_all[valid], by_all[valid]
    dx, dy, h, ta, tb = _edge_frame(ax, ay, bx, by)
    nx, ny = dy, -dx  # outward normal for counter-clockwise polygons

    def total(w: np.ndarray) -> np.ndarray:
        return np.bincount(owner, weights=w, minlength=r)

    g_b = _g_right_triangle(h, tb)
    g_a = _g_right_triangle(h, ta)
    m0 = total(g_b - g_a)

    ph = _INV_SQRT_2PI * np.exp(-0.5 * h * h)
    edge0 = ph * _phi_diff(ta, tb)  # int_edge phi ds
    edge1 = ph * _INV_SQRT_2PI * (np.exp(-0.5 * ta * ta) - np.exp(-0.5 * tb * tb))  # t phi
    m1 = -np.stack([total(edge0 * nx), total(edge0 * ny)], axis=1)
    he = h * edge0
    bxx = total(he * nx * nx + edge1 * dx * nx)
    byy = total(he * ny * ny + edge1 * dy * ny)
    bxy = total(he * nx * ny + 0.5 * edge1 * (dx * ny + dy * nx))
    m2 = np.empty((r, 2, 2))
    m2[:, 0, 0] = m0 - bxx
    m2[:, 1, 1] = m0 - byy
    m2[:, 0, 1] = m2[:, 1, 0] = -bxy

    m0 = orient * m0
    m1 = orient[:, None] * m1
    m2 = orient[:, None, None] * m2

    scale0 = total(np.abs(g_a) + np.abs(g_b)) + 1e-17 * z.shape[1]
    scale1 = total(np.abs(edge0))
    scale2 = scale0 + total(np.abs(he) + np.abs(edge1))
    err = 16.0 * _EPS * np.stack([scale0, scale1, scale1, scale2, scale2, scale2], axis=1)
    return m0, m1, m2, err


def _moment_quadrature(dz: np.ndarray, z0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Standard normal moments of small polygons by a pair of collapsed Gauss rules.

    ``dz`` ``(R, V, 2)`` are the vertices relative to ``z0`` ``(R, 2)``. Returns
    values ``(R, 6)`` (columns ``1, z1, z2, z1^2, z1 z2, z2^2``) from the degree-10
    rule and ``|Q10 - Q6|`` plus a round-off floor as the error estimate.
    """
    r = dz.shape[0]
    tri, owner = _fan(dz)
    area = _tri_area(tri)
    keep = area != 0
    tri, owner, area = tri[keep], owner[keep], area[keep]
    # clockwise polygons: count their (negative) area positively
    area = area * np.sign(np.bincount(owner, area, minlength=r))[owner]
    origin = z0[owner] + tri[:, 0]
    ab = tri[:, 1] - tri[:, 0]
    bc = tri[:, 2] - tri[:, 1]
    results = []
    for p, w in _REFINE_RULES:
        # points relative to the first vertex of each triangle, then absolute
        lx = p[None, :, 0] * ab[:, None, 0] + p[None, :, 1] * bc[:, None, 0]
        ly = p[None, :, 0] * ab[:, None, 1] + p[None, :, 1] * bc[:, None, 1]
        zx = origin[:, None, 0] + lx
        zy = origin[:, None, 1] + ly
        f = np.exp(-0.5 * (zx * zx + zy * zy)) * (_INV_2PI * w)
        cols = [f, f * zx, f * zy]
        cols += [cols[1] * zx, cols[1] * zy, cols[2] * zy]
        tri_vals = np.stack([c.sum(axis=1) for c in cols], axis=1) * area[:, None]
        results.append(tri_vals)
    low, high = results
    out = np.stack([np.bincount(owner, high[:, c], minlength=r) for c in range(6)], axis=1)
    est = np.abs(high - low) + 64.0 * _EPS * np.abs(high)  # |high| >= its |terms| sum here
    bound = np.stack([np.bincount(owner, est[:, c], minlength=r) for c in range(6)], axis=1)
    return out, bound


def _refine(z0: np.ndarray, dz: np.ndarray, m0, m1, m2, err) -> None:
    """Replace analytic moments by quadrature where that is more accurate (in place).

    ``z0`` ``(R, 2)`` is each polygon's first whitened vertex and ``dz`` the
    vertices relative to it, computed from differences in ``x`` so that tiny
    polygons keep their shape to full relative precision.
    """
    m0_abs = np.abs(m0)
    rel = err[:, 0] / np.maximum(m0_abs, 1e-300)
    diam = 2.0 * np.max(np.linalg.norm(dz, axis=2), axis=1)
    reach = np.linalg.norm(z0, axis=1) + diam
    # candidates: the analytic value has lost relative accuracy, and the Gaussian
    # varies by less than a factor e^0.3 over the polygon, so that a degree-10
    # rule is accurate to about 1e-14 relative without subdivision
    cand = np.flatnonzero((rel > 1e-11) & (diam * reach < 0.3) & (m0_abs > 0))
    if cand.size == 0:
        return
    vals, bounds = _moment_quadrature(dz[cand], z0[cand])
    ok = np.all(bounds <= err[cand], axis=1)
    idx = cand[ok]
    v = vals[ok]
    m0[idx] = v[:, 0]
    m1[idx] = v[:, 1:3]
    m2[idx, 0, 0] = v[:, 3]
    m2[idx, 0, 1] = v[:, 4]
    m2[idx, 1, 0] = v[:, 4]
    m2[idx, 1, 1] = v[:, 5]


def gaussian_polygon_moments(
    polygons: Polygons, mean: Any, cov: Any, *, refine: bool = False, return_error: bool = False
) -> Any:
    """Exact mass, first and second moments of ``N(mean, cov)`` over polygons.

    Args:
        polygons: a list of ``(V, 2)`` vertex arrays (any ``V``), or one
            ``(R, V, 2)`` array. Polygons are simple (convex regions in
            practice); counter-clockwise and clockwise orders give the same
            result. Degenerate polygons (zero area) give zeros.
        mean: shape ``(2,)``.
        cov: shape ``(2, 2)``, symmetric positive definite.
        refine: where the closed form loses relative accuracy (tiny or far-out
            polygons) and a Gauss-Legendre rule is estimated to be more accurate,
            use it (those values are then estimated, not exact).
        return_error: also return ``err (R, 6)``, a bound on the absolute rounding
            error of the columns ``(m0, m1_x, m1_y, m2_xx, m2_xy, m2_yy)`` (for
            refined polygons: the quadrature's error estimate).

    Returns:
        ``(m0, m1, m2)`` with shapes ``(R,)``, ``(R, 2)``, ``(R, 2, 2)``:
        ``m0[r] = P(x in P_r)``, ``m1[r] = E[x 1{x in P_r}]`` and
        ``m2[r] = E[x x^T 1{x in P_r}]``, in float64 (tier ``"exact"`` with
        ``refine=False``; absolute error a few ulps per edge, scaled by ``|mean|`` and
        ``||cov||``), and ``err`` when ``return_error``.

    Example:
        >>> import numpy as np
        >>> box = np.array([[-40.0, -40.0], [40.0, -40.0], [40.0, 40.0], [-40.0, 40.0]])
        >>> m0, m1, m2 = gaussian_polygon_moments([box], [1.0, 2.0], np.eye(2))
        >>> round(float(m0[0]), 12), np.round(m1[0], 12).tolist()
        (1.0, [1.0, 2.0])
    """
    where = "gaussian_polygon_moments"
    mu, chol = _check_gaussian(mean, cov, where)
    x = _as_padded(polygons, where)
    if x.shape[0] == 0:
        return np.zeros(0), np.zeros((0, 2)), np.zeros((0, 2, 2))
    # whiten: z = L^{-1} (x - mu)
    inv = np.linalg.inv(chol)
    z = (x - mu) @ inv.T
    m0, m1z, m2z, err = _standard_moments(z)
    if refine:
        dz = (x - x[:, :1, :]) @ inv.T
        _refine(z[:, 0, :], dz, m0, m1z, m2z, err)
    # unwhiten: x = mu + L z
    (l00, _), (l10, l11) = chol
    lm1 = np.empty_like(m1z)
    lm1[:, 0] = l00 * m1z[:, 0]
    lm1[:, 1] = l10 * m1z[:, 0] + l11 * m1z[:, 1]
    zxx, zxy, zyy = m2z[:, 0, 0], m2z[:, 0, 1], m2z[:, 1, 1]
    m1 = m0[:, None] * mu + lm1
    m2 = np.empty((m0.shape[0], 2, 2))
    m2[:, 0, 0] = m0 * mu[0] ** 2 + 2.0 * mu[0] * lm1[:, 0] + l00 * l00 * zxx
    m2[:, 1, 1] = (
        m0 * mu[1] ** 2
        + 2.0 * mu[1] * lm1[:, 1]
        + l10 * l10 * zxx
        + 2.0 * l10 * l11 * zxy
        + l11 * l11 * zyy
    )
    m2[:, 0, 1] = m2[:, 1, 0] = (
        m0 * mu[0] * mu[1] + mu[0] * lm1[:, 1] + mu[1] * lm1[:, 0] + l00 * (l10 * zxx + l11 * zxy)
    )
    if not return_error:
        return m0, m1, m2
    return m0, m1, m2, _unwhitened_error(err, mu, chol, m0, m1z, m2z)


def _unwhitened_error(
    err: np.ndarray,
    mu: np.ndarray,
    chol: np.ndarray,
    m0: np.ndarray,
    m1z: np.ndarray,
    m2z: np.ndarray,
) -> np.ndarray:
    """Propagate whitened-moment errors ``(..., R, 6)`` through ``x = mu + L z`` (first order
    is exact here: the map is linear in the moments), plus the rounding of that map.
    ``mu (..., 2)`` and ``chol (..., 2, 2)`` may carry leading axes (one per component)."""
    L = np.abs(chol)[..., None, :, :]  # (..., 1, 2, 2)
    Lt = np.swapaxes(L, -1, -2)
    am = np.abs(mu)[..., None, :]  # (..., 1, 2)
    e0 = err[..., 0]
    e1z = err[..., 1:3]
    e2z = np.stack([err[..., [3, 4]], err[..., [4, 5]]], axis=-2)
    le1 = (e1z[..., None, :] @ Lt)[..., 0, :]  # |L| e1z per row
    e1 = am * e0[..., None] + le1
    e2 = (
        am[..., :, None] * am[..., None, :] * e0[..., None, None]
        + am[..., :, None] * le1[..., None, :]
        + am[..., None, :] * le1[..., :, None]
        + L @ e2z @ Lt
    )
    # rounding of the unwhitening itself: a few ulps of the magnitudes of its terms
    mag0 = np.abs(m0)
    mag1 = am * mag0[..., None] + (np.abs(m1z)[..., None, :] @ Lt)[..., 0, :]
    mag2 = (
        am[..., :, None] * am[..., None, :] * mag0[..., None, None]
        + am[..., :, None] * mag1[..., None, :]
        + am[..., None, :] * mag1[..., :, None]
        + L @ np.abs(m2z) @ Lt
    )
    e1 = e1 + 8.0 * _EPS * mag1
    e2 = e2 + 8.0 * _EPS * mag2
    return np.stack(
        [e0, e1[..., 0], e1[..., 1], e2[..., 0, 0], e2[..., 0, 1], e2[..., 1, 1]], axis=-1
    )


def mixture_polygon_moments(
    polygons: Polygons,
    means: Any,
    covs: Any,
    weights: Any,
    *,
    refine: bool = False,
    return_error: bool = False,
) -> Any:
    """Per-component moments of a Gaussian mixture over polygons.

    The mixture density is ``sum_k weights[k] N(x; means[k], covs[k])``.
    Component ``k``'s arrays are ``weights[k]`` times
    :func:`gaussian_polygon_moments` for that component, so summing over the
    first axis gives the mixture's moments, and one component (one class)
    gives the joint ``P(class = k, x in P_r)`` and its moments.

    Args:
        polygons: as in :func:`gaussian_polygon_moments`.
        means: shape ``(K, 2)``.
        covs: shape ``(K, 2, 2)``.
        weights: shape ``(K,)``, non-negative (not required to sum to one).

    Returns:
        ``(m0, m1, m2)`` with shapes ``(K, R)``, ``(K, R, 2)``, ``(K, R, 2, 2)``, and,
        with ``return_error``, the rounding bounds ``(K, R, 6)`` of
        :func:`gaussian_polygon_moments` times the weights.
    """
    where = "mixture_polygon_moments"
    mus = np.asarray(means, dtype=np.float64)
    sigmas = np.asarray(covs, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    if mus.ndim != 2 or mus.shape[1] != 2:
        raise fail(where, "means", f"array of shape {mus.shape}", "of shape (K, 2)")
    k = mus.shape[0]
    if sigmas.shape != (k, 2, 2):
        raise fail(where, "covs", f"array of shape {sigmas.shape}", f"of shape ({k}, 2, 2)")
    if w.shape != (k,) or not np.all(np.isfinite(w)) or np.any(w < 0):
        raise fail(where, "weights", weights, f"{k} finite non-negative numbers")
    x = _as_padded(polygons, where)
    chols = _cholesky_all(mus, sigmas, where)
    r = x.shape[0]
    m0, m1 = np.zeros((k, r)), np.zeros((k, r, 2))
    m2, err = np.zeros((k, r, 2, 2)), np.zeros((k, r, 6))
    # components in blocks of about 2**18 vertices: one vectorised pass per block (the
    # same arithmetic as gaussian_polygon_moments, component by component), blocks on
    # every core (NumPy releases the GIL in its loops; each block writes its own rows)
    step = max(1, (1 << 18) // max(1, x.size // 2))
    blocks = [slice(lo, min(k, lo + step)) for lo in range(0, k if r else 0, step)]

    def run(sl: slice) -> None:
        m0[sl], m1[sl], m2[sl], err[sl] = _block_moments(x, mus[sl], chols[sl], refine)

    workers = min(len(blocks), _num_cpus())
    if workers > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(run, blocks))
    else:
        for sl in blocks:
            run(sl)
    m0, m1, m2 = m0 * w[:, None], m1 * w[:, None, None], m2 * w[:, None, None, None]
    if not return_error:
        return m0, m1, m2
    return m0, m1, m2, err * w[:, None, None]


def _num_cpus() -> int:
    """The cores this process may use."""
    import os

    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _block_moments(
    x: np.ndarray, mus: np.ndarray, chols: np.ndarray, refine: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`gaussian_polygon_moments` (with its error) of polygons ``x (R, V, 2)`` under
    ``N(mus[k], chols[k] chols[k]^T)`` for every ``k`` at once: ``(K, R)``, ``(K, R, 2)``,
    ``(K, R, 2, 2)``, ``(K, R, 6)``."""
    k, (r, v, _) = mus.shape[0], x.shape
    invs = np.linalg.inv(chols)  # (K, 2, 2)
    inv_t = np.swapaxes(invs, 1, 2)[:, None]  # (K, 1, 2, 2)
    z = (x[None] - mus[:, None, None, :]) @ inv_t  # (K, R, V, 2)
    m0, m1z, m2z, e = _standard_moments(z.reshape(k * r, v, 2))
    if refine:
        dz = (x - x[:, :1, :])[None] @ inv_t
        _refine(z[:, :, 0, :].reshape(k * r, 2), dz.reshape(k * r, v, 2), m0, m1z, m2z, e)
    m0, m1z = m0.reshape(k, r), m1z.reshape(k, r, 2)
    m2z, e = m2z.reshape(k, r, 2, 2), e.reshape(k, r, 6)
    # unwhiten: x = mu + L z (as in gaussian_polygon_moments, per component)
    l00, l10, l11 = chols[:, 0, 0, None], chols[:, 1, 0, None], chols[:, 1, 1, None]
    mu0, mu1 = mus[:, 0, None], mus[:, 1, None]
    lm1 = np.empty_like(m1z)
    lm1[..., 0] = l00 * m1z[..., 0]
    lm1[..., 1] = l10 * m1z[..., 0] + l11 * m1z[..., 1]
    zxx, zxy, zyy = m2z[..., 0, 0], m2z[..., 0, 1], m2z[..., 1, 1]
    m1 = m0[..., None] * mus[:, None, :] + lm1
    m2 = np.empty((k, r, 2, 2))
    m2[..., 0, 0] = m0 * mu0**2 + 2.0 * mu0 * lm1[..., 0] + l00 * l00 * zxx
    m2[..., 1, 1] = (
        m0 * mu1**2
        + 2.0 * mu1 * lm1[..., 1]
        + l10 * l10 * zxx
        + 2.0 * l10 * l11 * zxy
        + l11 * l11 * zyy
    )
    m2[..., 0, 1] = m2[..., 1, 0] = (
        m0 * mu0 * mu1 + mu0 * lm1[..., 1] + mu1 * lm1[..., 0] + l00 * (l10 * zxx + l11 * zxy)
    )
    return m0, m1, m2, _unwhitened_error(e, mus, chols, m0, m1z, m2z)


# ---------------------------------------------------------------------------
# neuron moments
# ---------------------------------------------------------------------------


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class NeuronMomentsResult:
    """Moments of the neurons of one layer, from region moments (exact when they are).

    Attributes:
        mean: ``E[a_i]``, shape ``(n,)``.
        second_moment: ``E[a_i a_j]``, shape ``(n, n)``.
        cov: ``Cov(a_i, a_j)``, shape ``(n, n)``.
        firing_probability: ``P(a_i > 0)``, shape ``(n,)``.
        mass: total mass of the regions (1 when they cover the plane).
    """

    mean: np.ndarray
    second_moment: np.ndarray
    cov: np.ndarray
    firing_probability: np.ndarray
    mass: np.ndarray


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class CrossMomentsResult:
    """Exact cross moments of two layers on shared regions (tier ``"exact"``).

    Attributes:
        mean_a: ``E[a_i]``, shape ``(n_a,)``.
        mean_b: ``E[b_j]``, shape ``(n_b,)``.
        second_moment: ``E[a_i b_j]``, shape ``(n_a, n_b)``.
        cov: ``Cov(a_i, b_j)``, shape ``(n_a, n_b)``.
        mass: total mass of the regions.
    """

    mean_a: np.ndarray
    mean_b: np.ndarray
    second_moment: np.ndarray
    cov: np.ndarray
    mass: np.ndarray


def _check_region_moments(m0, m1, m2, where: str):
    m0 = np.asarray(m0, dtype=np.float64)
    m1 = np.asarray(m1, dtype=np.float64)
    m2 = np.asarray(m2, dtype=np.float64)
    if m0.ndim != 1:
        raise fail(where, "m0", f"array of shape {m0.shape}", "of shape (R,)")
    r = m0.shape[0]
    if m1.shape != (r, 2):
        raise fail(where, "m1", f"array of shape {m1.shape}", f"of shape ({r}, 2)")
    if m2.shape != (r, 2, 2):
        raise fail(where, "m2", f"array of shape {m2.shape}", f"of shape ({r}, 2, 2)")
    # homogeneous moment matrix E[(x, 1)(x, 1)^T 1_R], shape (R, 3, 3)
    big = np.empty((r, 3, 3))
    big[:, :2, :2] = m2
    big[:, :2, 2] = m1
    big[:, 2, :2] = m1
    big[:, 2, 2] = m0
    return m0, m1, big


def _check_maps(maps, r: int, name: str, where: str) -> np.ndarray:
    arr = np.asarray(maps, dtype=np.float64)
    if arr.ndim != 3 or arr.shape[0] != r or arr.shape[2] != 3:
        raise fail(
            where,
            name,
            f"array of shape {arr.shape}",
            f"of shape ({r}, n, 3) holding (g_x, g_y, c) per region and neuron",
        )
    return arr


def _gram(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``x.T @ y`` for tall ``x`` ``(K, na)`` and ``y`` ``(K, nb)``.

    Computed as a batch of small products summed: a single tall-skinny product
    goes to threaded BLAS, which slows down badly when the CPU is shared, while
    products with ``na * nb * k < 2**18`` run on one thread (OpenBLAS's cut-off).
    """
    na, nb = x.shape[1], y.shape[1]
    k = int(min(64, max(4, 2**18 // (na * nb) - 1)))
    whole = (x.shape[0] // k) * k
    out = x[whole:].T @ y[whole:]
    xb = x[:whole].reshape(-1, k, na).transpose(0, 2, 1)
    yb = y[:whole].reshape(-1, k, nb)
    step = max(1, 2**20 // (na * nb))  # batch items per call: ~8 MB of partial products
    for s in range(0, xb.shape[0], step):
        out += np.matmul(xb[s : s + step], yb[s : s + step]).sum(axis=0)
    return out


_ROWS = 4096  # regions per block, to keep temporaries small


def _second(maps_a: np.ndarray, big: np.ndarray, maps_b: np.ndarray) -> np.ndarray:
    """``sum_r A_r M_r B_r^T`` (``M_r`` symmetric), shape ``(n_a, n_b)``."""
    na, nb = maps_a.shape[1], maps_b.shape[1]
    out = np.zeros((na, nb))
    for s in range(0, maps_a.shape[0], _ROWS):
        a = maps_a[s : s + _ROWS]
        b = maps_b[s : s + _ROWS]
        m = big[s : s + _ROWS]
        rows = a.shape[0]
        x = np.ascontiguousarray(a.transpose(0, 2, 1)).reshape(rows * 3, na)
        y = np.ascontiguousarray(np.matmul(b, m).transpose(0, 2, 1)).reshape(rows * 3, nb)
        out += _gram(x, y)
    return out


def _first(maps: np.ndarray, big: np.ndarray) -> np.ndarray:
    """``sum_r A_r (m1_r, m0_r)``, shape ``(n,)``."""
    return np.einsum("rik,rk->i", maps, big[:, 2, :])


def neuron_moments(
    m0: Any,
    m1: Any,
    m2: Any,
    maps: Any,
    patterns: Any = None,
    *,
    conditional: bool = False,
) -> NeuronMomentsResult:
    """Exact means, second moments, covariances and firing rates of a layer.

    On region ``r`` neuron ``i`` is ``a_i(x) = g_i . x + c_i`` with
    ``maps[r, i] = (g_x, g_y, c)``; then

    .. math::

        E[a_i 1_r] = g_i \\cdot m_1 + c_i m_0, \\qquad
        E[a_i a_j 1_r] = g_i^\\top m_2 g_j + c_i\\, g_j \\cdot m_1
            + c_j\\, g_i \\cdot m_1 + c_i c_j m_0,

    summed over regions, and ``P(a_i > 0) = sum_r m0_r [active_{r, i}]``.

    Args:
        m0, m1, m2: region moments, shapes ``(R,)``, ``(R, 2)``, ``(R, 2, 2)``
            (from :func:`gaussian_polygon_moments`).
        maps: shape ``(R, n, 3)``.
        patterns: ``(R, n)`` booleans, ``True`` where neuron ``i`` is active
            (positive) on region ``r``. ``None``: active where the map is not
            identically zero (right for post-activation ReLU maps).
        conditional: divide by the total mass, giving expectations conditional
            on ``x`` lying in the union of the regions.

    Returns:
        :class:`NeuronMomentsResult`.
    """
    where = "neuron_moments"
    m0, m1, big = _check_region_moments(m0, m1, m2, where)
    r = m0.shape[0]
    a = _check_maps(maps, r, "maps", where)
    n = a.shape[1]
    if patterns is None:
        active = (a[:, :, 0] != 0.0) | (a[:, :, 1] != 0.0) | (a[:, :, 2] != 0.0)
    else:
        active = np.asarray(patterns)
        if active.shape != (r, n):
            raise fail(where, "patterns", f"array of shape {active.shape}", f"of shape ({r}, {n})")
        active = active.astype(bool)
    mass = np.sum(m0)
    mean = _first(a, big)
    second = _second(a, big, a)
    second = 0.5 * (second + second.T)
    firing = np.einsum("r,ri->i", m0, active)
    if conditional:
        if not mass > 0:
            raise fail(where, "m0", "moments of total mass 0", "of positive total mass")
        mean, second, firing = mean / mass, second / mass, firing / mass
    cov = second - np.outer(mean, mean)
    return NeuronMomentsResult(
        mean=mean,
        second_moment=second,
        cov=cov,
        firing_probability=firing,
        mass=np.asarray(mass),
    )


def cross_moments(
    m0: Any, m1: Any, m2: Any, maps_a: Any, maps_b: Any, *, conditional: bool = False
) -> CrossMomentsResult:
    """Exact ``E[a_i b_j]`` and ``Cov(a_i, b_j)`` for two layers on shared regions.

    ``maps_a`` ``(R, n_a, 3)`` and ``maps_b`` ``(R, n_b, 3)`` are the affine
    maps of two layers (of one network, or of two networks whose regions have
    been intersected) on the same regions. See :func:`neuron_moments`.
    """
    where = "cross_moments"
    m0, m1, big = _check_region_moments(m0, m1, m2, where)
    r = m0.shape[0]
    a = _check_maps(maps_a, r, "maps_a", where)
    b = _check_maps(maps_b, r, "maps_b", where)
    mass = np.sum(m0)
    mean_a = _first(a, big)
    mean_b = _first(b, big)
    second = _second(a, big, b)
    if conditional:
        if not mass > 0:
            raise fail(where, "m0", "moments of total mass 0", "of positive total mass")
        mean_a, mean_b, second = mean_a / mass, mean_b / mass, second / mass
    cov = second - np.outer(mean_a, mean_b)
    return CrossMomentsResult(
        mean_a=mean_a, mean_b=mean_b, second_moment=second, cov=cov, mass=np.asarray(mass)
    )


# ---------------------------------------------------------------------------
# adaptive quadrature over polygons
# ---------------------------------------------------------------------------


def _collapsed_rule(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Collapsed (Duffy) Gauss-Legendre rule on the reference triangle.

    A point is ``A + p[0] (B - A) + p[1] (C - B)``; weights sum to 1 (multiply
    by the triangle's area). Exact for polynomials of degree ``2n - 2``.
    """
    x, w = np.polynomial.legendre.leggauss(n)
    x = 0.5 * (x + 1.0)
    w = 0.5 * w
    u, v = np.meshgrid(x, x, indexing="ij")
    wu, wv = np.meshgrid(w, w, indexing="ij")
    p = np.stack([u.ravel(), (u * v).ravel()], axis=1)
    weight = 2.0 * (wu * wv * u).ravel()
    return p, weight


_LOW = _collapsed_rule(6)  # degree 10
_HIGH = _collapsed_rule(11)  # degree 20
_REFINE_RULES = (_collapsed_rule(4), _collapsed_rule(6))  # degrees 6 and 10


def _fan(poly: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fan triangles ``(T, 3, 2)`` of padded polygons ``(R, V, 2)`` and their owner."""
    r, v, _ = poly.shape
    a = np.broadcast_to(poly[:, :1, :], (r, v - 2, 2))
    tri = np.stack([a, poly[:, 1:-1, :], poly[:, 2:, :]], axis=2).reshape(-1, 3, 2)
    owner = np.repeat(np.arange(r), v - 2)
    return tri, owner


def _tri_area(tri: np.ndarray) -> np.ndarray:
    e1 = tri[:, 1] - tri[:, 0]
    e2 = tri[:, 2] - tri[:, 0]
    return 0.5 * (e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0])


def _eval_rules(
    fn: Callable[[np.ndarray], np.ndarray],
    tri: np.ndarray,
    chunk: int = 512,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """High-rule value, ``|high - low|`` and a round-off floor per triangle, ``(T, k)``."""
    pl, wl = _LOW
    ph, wh = _HIGH
    nl, nh = len(wl), len(wh)
    area = np.abs(_tri_area(tri))
    vals, ests, floors = [], [], []
    for s in range(0, tri.shape[0], chunk):
        t = tri[s : s + chunk]
        ab = t[:, 1] - t[:, 0]
        bc = t[:, 2] - t[:, 1]
        pts_l = t[:, None, 0] + pl[None, :, :1] * ab[:, None] + pl[None, :, 1:] * bc[:, None]
        pts_h = t[:, None, 0] + ph[None, :, :1] * ab[:, None] + ph[None, :, 1:] * bc[:, None]
        pts = np.concatenate([pts_l, pts_h], axis=1).reshape(-1, 2)
        f = np.asarray(fn(pts), dtype=np.float64)
        if f.ndim == 1:
            f = f[:, None]
        if f.shape[0] != pts.shape[0] or f.ndim != 2:
            raise fail(
                "polygon_quadrature",
                "fn",
                f"a function returning shape {f.shape} for {pts.shape[0]} points",
                "a vectorized function returning (N,) or (N, k)",
            )
        f = f.reshape(t.shape[0], nl + nh, -1)
        a = area[s : s + chunk, None]
        ql = np.einsum("tpk,p->tk", f[:, :nl], wl) * a
        qh = np.einsum("tpk,p->tk", f[:, nl:], wh) * a
        vals.append(qh)
        ests.append(np.abs(qh - ql))
        floors.append(64.0 * _EPS * np.einsum("tpk,p->tk", np.abs(f[:, nl:]), wh) * a)
    return np.concatenate(vals), np.concatenate(ests), np.concatenate(floors)


def _split4(tri: np.ndarray) -> np.ndarray:
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
    ab, bc, ca = 0.5 * (a + b), 0.5 * (b + c), 0.5 * (c + a)
    kids = np.stack(
        [
            np.stack([a, ab, ca], axis=1),
            np.stack([ab, b, bc], axis=1),
            np.stack([ca, bc, c], axis=1),
            np.stack([bc, ca, ab], axis=1),
        ],
        axis=1,
    )
    return kids.reshape(-1, 3, 2)


def polygon_quadrature(
    fn: Callable[[np.ndarray], np.ndarray],
    polygons: Polygons,
    *,
    rtol: float = 1e-10,
    atol: float = 1e-12,
    max_depth: int = 8,
    max_triangles: int = 2_000_000,
) -> tuple[np.ndarray, np.ndarray]:
    """Adaptive quadrature of ``fn`` over polygons, with an error estimate.

    Each polygon is split into fan triangles (so it must be convex, or at least
    star-shaped from its first vertex). On each triangle a collapsed
    Gauss-Legendre rule exact to degree 10 and one exact to degree 20 are
    applied; the value is the degree-20 result and ``|Q20 - Q10|`` (plus a
    round-off floor) is the triangle's error estimate, a conservative estimate
    of the degree-20 error for smooth integrands. Triangles are split 4-way at
    their edge midpoints until every polygon meets
    ``error <= max(atol, rtol * |value|)`` in every column, or ``max_depth``
    splits, or ``max_triangles`` live triangles, are reached; the estimate
    left is reported as it is (tier ``"estimated"``: an a-posteriori estimate,
    not a rigorous enclosure).

    Args:
        fn: vectorized integrand, points ``(N, 2)`` -> ``(N,)`` or ``(N, k)``;
            several columns (say density, ``x`` times density, ...) share one
            pass.
        polygons: a list of ``(V, 2)`` arrays or one ``(R, V, 2)`` array.
        rtol, atol: per-polygon, per-column tolerance.
        max_depth: the most times a triangle is split.
        max_triangles: cap on the triangles alive at one time.

    Returns:
        ``(values, error_bounds)``, each ``(R,)`` (or ``(R, k)`` when ``fn``
        returns columns).

    Example:
        >>> import numpy as np
        >>> sq = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
        >>> v, e = polygon_quadrature(lambda p: p[:, 0] ** 3 * p[:, 1], [sq])
        >>> round(float(v[0]), 12), bool(e[0] < 1e-12)
        (0.125, True)
    """
    where = "polygon_quadrature"
    if not callable(fn):
        raise fail(where, "fn", fn, "a callable mapping points (N, 2) to (N,) or (N, k)")
    for name, limit in (("rtol", rtol), ("atol", atol)):
        if not (np.isfinite(limit) and limit >= 0):
            raise fail(where, name, limit, "a finite number >= 0")
    if rtol == 0 and atol == 0:
        raise fail(where, "rtol", rtol, "> 0 when atol is 0", "Pass a positive rtol or atol.")
    if not (isinstance(max_depth, int | np.integer) and max_depth >= 0):
        raise fail(where, "max_depth", max_depth, "an integer >= 0")
    poly = _as_padded(polygons, where)
    r = poly.shape[0]
    tri, owner = _fan(poly)
    area = _tri_area(tri)
    keep = area != 0
    tri, owner = tri[keep], owner[keep]
    # orient every triangle counter-clockwise; remember the polygon's orientation
    sign_t = np.sign(_tri_area(tri))
    ccw = tri.copy()
    ccw[sign_t < 0] = tri[sign_t < 0][:, ::-1]
    tri = ccw
    poly_area = np.zeros(r)
    np.add.at(poly_area, owner, sign_t * np.abs(_tri_area(tri)))
    orient = np.sign(poly_area)
    poly_area = np.abs(poly_area)
    tri_sign = sign_t * orient[owner]  # +1 for triangles that add, -1 for ones that subtract

    probe = np.asarray(fn(poly[:1, 0] if r else np.zeros((1, 2))), dtype=np.float64)
    columns = probe.ndim == 2
    if tri.shape[0] == 0:
        shape = (r, probe.shape[1]) if columns else (r,)
        return np.zeros(shape), np.zeros(shape)

    val, est, floor = _eval_rules(fn, tri)
    k = val.shape[1]

    def per_polygon(idx: np.ndarray, w: np.ndarray) -> np.ndarray:
        return np.stack([np.bincount(idx, w[:, c], minlength=r) for c in range(k)], axis=1)

    done_val = np.zeros((r, k))
    done_err = np.zeros((r, k))
    sgn = tri_sign
    for depth in range(max_depth + 1):
        err = est + floor
        tot_val = done_val + per_polygon(owner, sgn[:, None] * val)
        tot_err = done_err + per_polygon(owner, err)
        tol = np.maximum(atol, rtol * np.abs(tot_val))
        poly_ok = np.all(tot_err <= tol, axis=1)
        # a triangle within its area share of its polygon's tolerance is done
        share = np.abs(_tri_area(tri)) / np.where(poly_area > 0, poly_area, 1.0)[owner]
        tri_ok = poly_ok[owner] | np.all(err <= tol[owner] * share[:, None], axis=1)
        if depth == max_depth or 4 * np.count_nonzero(~tri_ok) > max_triangles:
            tri_ok[:] = True
        done_val += per_polygon(owner[tri_ok], sgn[tri_ok, None] * val[tri_ok])
        done_err += per_polygon(owner[tri_ok], err[tri_ok])
        if np.all(tri_ok):
            break
        split = ~tri_ok
        tri = _split4(tri[split])
        owner = np.repeat(owner[split], 4)
        sgn = np.repeat(sgn[split], 4)
        val, est, floor = _eval_rules(fn, tri)
    if not columns:
        return done_val[:, 0], done_err[:, 0]
    return done_val, done_err
