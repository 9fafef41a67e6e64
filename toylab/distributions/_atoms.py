r"""Class-labelled Gaussian atoms and the Bayes-accuracy integrator built on them.

A *Gaussian atom* table is a finite mixture whose components carry a class::

    p(x, y = k) = sum_{m : c(m) = k} w_m N(x; mu_m, Sigma_m),        x in R^d, d in {1, 2}.

A :class:`~toylab.distributions.GaussianMixture` is one (its components), and so is
the quadrature rule of a :class:`~toylab.distributions.NoisyCurve` (one isotropic
atom per Gauss--Legendre node on each curve). :func:`bayes_accuracy` computes
``A = int max_k p(x, y=k) dx`` for such a table.

**Rows.** Along the line ``x_1 = s`` every atom restricts to a weighted 1-D normal in
``t = x_2``: ``w_m N(s; mu_m1, L_00^2) N(t; mu_m2 + (L_10/L_00)(s - mu_m1), L_11^2)``
(``L`` the Cholesky factor of ``Sigma_m``). Once the points where the winning class
changes along the row are known, the row integral ``F(s) = int max_k p(s, t, k) dt``
is a sum of normal CDF differences: it is *exact* given the partition. In 1-D there
is a single row.

**Partition of a row** (``_Row``), by one of three rules:

* ``"exact"`` -- every class has one atom: two atoms' log-densities differ by a
  quadratic in ``t``, so every class change is a root of one of the
  ``K (K - 1) / 2`` quadratics, solved in closed form. Between consecutive roots no
  pair changes order; the winner is read at the midpoint. No error but rounding.
* ``"convex"`` -- every atom has the same conditional sd ``tau`` along the row (a
  noisy curve; a mixture with one shared covariance). Then
  ``C_k(t) = L_k(t) + (t - l)^2 / (2 tau^2)`` is a log-sum-exp of affine functions of
  ``t``, hence convex, and ``C_w - C_k = L_w - L_k``. On an interval ``[l, r]``
  where ``w`` wins at both ends, ``C_w`` lies above its tangents at ``l`` and ``r``
  and every ``C_k`` below its chord; if the piecewise-linear
  ``max(tangents_w) - chord_k`` is ``>= 0`` at the tangents' crossing point (its only
  interior minimum) then ``w`` wins on all of ``[l, r]``: the interval is
  *certified*. Otherwise it is halved. Where the winners at the two ends differ, a
  class change is located by the Illinois method to a bracket of a few ulps.
  Intervals that stay undecided down to a width of ``1e-9 tau`` (and the ulp-wide
  root brackets, and the tails of the line beyond ``9`` sd of every atom) are
  *uncertain*: their whole mass of the other classes, computed exactly with normal
  CDFs, is added to the row's error. The row error is therefore a guarantee (up to
  float64 rounding, for which an allowance is added).
* ``"grid"`` -- atoms of several classes with different conditional sds: the same
  root location on a candidate grid (every atom's and every interacting pair's
  ``+-9`` sd window at ``tau / 2`` spacing), then one *check* round that halves every
  interval. Wherever the check finds a class change the coarse grid missed, the
  whole mass of the other classes in that coarse interval is added to the row's
  error: an a-posteriori *estimate* (it says nothing about islands narrower than
  ``tau / 4``), reported as such.

**Across rows** (2-D): composite 10-point Gauss--Legendre over panels no wider than
the ``x_1``-sd of every atom (and, for few atoms, of every interacting pair
``sqrt(p_i p_j)``, whose ``x_1`` window is where two atoms' competition can shape
``F``) covering each atom's ``+-9`` sd window; a panel is accepted when its 10-point
value and the sum over its halves differ by at most its share of ``tol``, else
halved (the halves' values are reused). That difference is an *estimate*, so 2-D
results are ``"estimated"``; a 1-D result is ``"certified"`` under the convex rule.

**Error** reported = outer halving differences + integral of the row errors + the
mass outside every atom's window, ``2 Phi(-9) ~ 2.3e-19`` per unit weight + a float64
rounding allowance (``|t| / tau`` times machine epsilon per breakpoint, which
matters only for atoms far narrower than their distance to the origin).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import numpy as np
from scipy import special

from toylab.distributions._numerics import gauss_legendre
from toylab.distributions.base import BayesResult
from toylab.tiers import Tier

__all__ = ["GaussianAtoms", "Progress", "bayes_accuracy"]

#: A progress callback: called with a fraction in ``[0, 1]`` (non-decreasing; 1 at the end).
Progress = Callable[[float], None]

_LOG_2PI = math.log(2.0 * math.pi)
#: Windows are ``+-Z`` sd: the mass outside is ``2 Phi(-9) = 2.3e-19`` per atom.
_Z = 9.0
_OUTSIDE = float(2.0 * special.ndtr(-_Z))
_ORDER = 10  # outer Gauss--Legendre points per panel
_CHUNK = 1 << 20  # elements per (points x atoms) block
_EPS = float(np.finfo(np.float64).eps)

Mode = Literal["exact", "convex", "grid"]


class GaussianAtoms:
    """A class-labelled finite Gaussian mixture in 1-D or 2-D (see the module docstring).

    ``means (M, d)``, ``covs (M, d, d)``, ``log_weights (M,)`` (``log w_m``; ``-inf``
    atoms are dropped), ``classes (M,)`` in ``[0, num_classes)``. The weights need not
    sum to one. ``pair_windows`` adds, for few atoms, the windows where two atoms of
    different classes interact to the sampling of the integrator.
    """

    def __init__(
        self,
        means: np.ndarray,
        covs: np.ndarray,
        log_weights: np.ndarray,
        classes: np.ndarray,
        num_classes: int,
        *,
        pair_windows: bool = True,
    ) -> None:
        means = np.asarray(means, np.float64)
        covs = np.asarray(covs, np.float64)
        logw = np.asarray(log_weights, np.float64)
        cls = np.asarray(classes, np.int64)
        keep = np.isfinite(logw)
        order = np.argsort(cls[keep], kind="stable")
        self.means = means[keep][order]
        self.covs = covs[keep][order]
        self.log_weights = logw[keep][order]
        self.classes = cls[keep][order]
        self.num_classes = int(num_classes)
        self.dim = int(means.shape[-1])
        k = np.arange(self.num_classes)
        self.starts = np.searchsorted(self.classes, k, "left")
        self.ends = np.searchsorted(self.classes, k, "right")
        chol = np.linalg.cholesky(self.covs) if self.classes.size else self.covs
        self.chol = chol
        # Row parameters: x_1 marginal sd, regression slope of x_2 on x_1, conditional sd.
        self.s1 = chol[:, 0, 0].copy()
        if self.dim == 2:
            self.beta = chol[:, 1, 0] / chol[:, 0, 0]
            self.tau = chol[:, 1, 1].copy()
        else:
            self.beta = np.zeros_like(self.s1)
            self.tau = self.s1.copy()
        m = self.classes.size
        self.num_atoms = m
        sizes = self.ends - self.starts
        self.populated = int(np.sum(sizes > 0))
        if self.populated <= 1 or np.all(sizes <= 1):
            self.mode: Mode = "exact"
        elif np.all(np.abs(self.tau - self.tau[0]) <= 1e-13 * self.tau[0]):
            self.mode = "convex"
        else:
            self.mode = "grid"
        self.pairs = self._pair_windows(pair_windows and m <= 64)
        #: every atom's and every pair's window: ``(mean (W, d), s1, beta, tau)``
        self.windows = tuple(
            np.concatenate([x, y])
            for x, y in zip((self.means, self.s1, self.beta, self.tau), self.pairs, strict=True)
        )
        # one isotropic covariance sd^2 I shared by every atom (noisy curves): a faster kernel
        eye = np.eye(self.dim)
        self.iso_sd = (
            float(math.sqrt(self.covs[0, 0, 0]))
            if m and np.all(self.covs == self.covs[0, 0, 0] * eye)
            else None
        )
        self.center = 0.5 * (self.means.min(0) + self.means.max(0)) if m else np.zeros(self.dim)

    # ------------------------------------------------------------------ windows
    def _pair_windows(self, pairs: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Windows ``(mean (W, d), s1 (W,), beta (W,), tau (W,))`` of every pair of atoms of
        different classes that interacts (when ``pairs``), as the Gaussian
        ``sqrt(p_i p_j) ~ N(m_ij, 2 (P_i + P_j)^-1)`` (``P`` precisions) where both are
        non-negligible (skipped when ``int sqrt(p_i p_j) < 1e-20``)."""
        d = self.dim
        means: list[np.ndarray] = [np.zeros((0, d))]
        s1: list[np.ndarray] = [np.zeros(0)]
        beta: list[np.ndarray] = [np.zeros(0)]
        tau: list[np.ndarray] = [np.zeros(0)]
        if pairs and self.num_atoms > 1:
            prec = np.linalg.inv(self.covs)
            w = self.log_weights
            for i in range(self.num_atoms):
                for j in range(i + 1, self.num_atoms):
                    if self.classes[i] == self.classes[j]:
                        continue
                    s = np.linalg.inv(prec[i] + prec[j])
                    mu = s @ (prec[i] @ self.means[i] + prec[j] @ self.means[j])
                    avg = 0.5 * (self.covs[i] + self.covs[j])
                    dm = self.means[i] - self.means[j]
                    _, ld = np.linalg.slogdet(avg)
                    _, li = np.linalg.slogdet(self.covs[i])
                    _, lj = np.linalg.slogdet(self.covs[j])
                    bhatt = dm @ np.linalg.solve(avg, dm) / 8 + 0.5 * (ld - 0.5 * (li + lj))
                    if 0.5 * (w[i] + w[j]) - bhatt < math.log(1e-20):
                        continue
                    c = np.linalg.cholesky(2.0 * s)
                    means.append(mu[None])
                    s1.append(c[None, 0, 0])
                    beta.append(c[None, 1, 0] / c[None, 0, 0] if self.dim == 2 else np.zeros(1))
                    tau.append(c[None, 1, 1] if self.dim == 2 else c[None, 0, 0])
        return (
            np.concatenate(means),
            np.concatenate(s1),
            np.concatenate(beta),
            np.concatenate(tau),
        )

    # ------------------------------------------------------------------ densities
    def class_log_joint(self, x: np.ndarray) -> np.ndarray:
        """``log p(x, y = k)`` at points ``x (..., d)``: shape ``(..., num_classes)``."""
        x = np.asarray(x, np.float64)
        if self.iso_sd is not None:
            return self._iso_class_log_joint(x)
        flat = x.reshape(-1, self.dim)
        out = np.empty((flat.shape[0], self.num_classes))
        step = max(1, _CHUNK // max(self.num_atoms * self.dim, 1))
        inv = np.linalg.inv(self.chol) if self.num_atoms else self.chol
        logdet = 2.0 * np.sum(np.log(np.diagonal(self.chol, axis1=1, axis2=2)), -1)
        const = self.log_weights - 0.5 * logdet - 0.5 * self.dim * _LOG_2PI
        for s in range(0, flat.shape[0], step):
            diff = flat[s : s + step, None, :] - self.means[None]
            r = np.einsum("mij,nmj->nmi", inv, diff)
            q = const - 0.5 * np.sum(r * r, -1)
            out[s : s + step] = _class_lse(q, self.starts, self.ends)[0]
        return out.reshape(x.shape[:-1] + (self.num_classes,))

    def _iso_class_log_joint(self, x: np.ndarray) -> np.ndarray:
        """Shared isotropic sd: ``-|x - mu|^2 / 2 s^2 = (x . mu - |mu|^2 / 2 - |x|^2 / 2) / s^2``
        with ``x`` and ``mu`` centred on the atoms' bounding box, so one matrix product
        gives every atom; the rounding of the expansion is ``~eps (|x| + |mu|)^2 / s^2``
        in the log density, far below the curves' quadrature error."""
        var = self.iso_sd**2  # type: ignore[operator]
        flat = x.reshape(-1, self.dim) - self.center
        mu = self.means - self.center
        bias = self.log_weights - 0.5 * np.sum(mu * mu, 1) / var
        bias -= self.dim * (0.5 * _LOG_2PI + math.log(self.iso_sd))  # type: ignore[arg-type]
        proj = (mu / var).T
        out = np.empty((flat.shape[0], self.num_classes))
        step = max(1, _CHUNK // max(self.num_atoms, 1))
        for s in range(0, flat.shape[0], step):
            p = flat[s : s + step]
            q = p @ proj
            q += bias
            lse = _class_lse(q, self.starts, self.ends)[0]
            out[s : s + step] = lse - 0.5 * np.sum(p * p, 1)[:, None] / var
        return out.reshape(x.shape[:-1] + (self.num_classes,))


# --------------------------------------------------------------------------- one batch of rows


class _Row:
    """A batch of rows ``x_1 = s_r`` (or the single 1-D line).

    Only the atoms whose ``x_1`` window ``mu_m1 +- 9 s_m1`` holds some row of the batch
    are kept: an atom dropped at a row lies outside its own window there, and the
    mass of every atom outside its window is already counted in the reported error
    (``2 Phi(-9)`` per unit weight). Kept atoms have coefficients ``logc (R, M)``
    (``log w_m`` plus the log ``x_1`` marginal), conditional means ``mu (R, M)`` and
    sds ``tau (M,)``; ``[lo, hi]`` per row is the hull of their (and the interacting
    pairs') ``+-9`` sd windows.
    """

    def __init__(self, atoms: GaussianAtoms, s: np.ndarray | None) -> None:
        a = atoms
        self.num_classes = a.num_classes
        pm, p1, pb, pt = a.pairs
        if s is None:  # 1-D
            keep = np.ones(a.num_atoms, bool)
            self.logc = a.log_weights[None].copy()
            self.mu = a.means[None, :, 0].copy()
            pmu = pm[None, :, 0]
        else:
            d1 = s[:, None] - a.means[None, :, 0]
            keep = np.any(np.abs(d1) <= _Z * a.s1, axis=0)
            d1 = d1[:, keep]
            z = d1 / a.s1[keep]
            self.logc = a.log_weights[keep] - 0.5 * z * z - np.log(a.s1[keep]) - 0.5 * _LOG_2PI
            self.mu = a.means[None, keep, 1] + a.beta[keep] * d1
            pmu = pm[None, :, 1] + pb * (s[:, None] - pm[None, :, 0])
        self.num_rows = self.logc.shape[0]
        cls = a.classes[keep]
        k = np.arange(a.num_classes)
        self.starts = np.searchsorted(cls, k, "left")
        self.ends = np.searchsorted(cls, k, "right")
        self.tau = a.tau[keep]
        self.num_atoms = int(self.tau.size)
        self.wmu = np.concatenate([self.mu, np.broadcast_to(pmu, (self.num_rows, pt.size))], 1)
        self.wtau = np.concatenate([self.tau, pt])
        if self.wtau.size:
            self.lo = np.min(self.wmu - _Z * self.wtau, axis=1)
            self.hi = np.max(self.wmu + _Z * self.wtau, axis=1)
        else:
            self.lo = self.hi = np.zeros(self.num_rows)
        c = np.exp(self.logc)
        self.weight = c.sum(1)  # the row's total line mass
        self.peak = np.sum(c / self.tau, 1) / math.sqrt(2 * math.pi)  # >= the line density
        self._c_tau = np.sum(c / self.tau, 1)
        self._c_mu_tau = np.sum(c * np.abs(self.mu) / self.tau, 1)
        self.lognorm = -np.log(self.tau) - 0.5 * _LOG_2PI
        # Shared tau and a row short in units of tau: expand the square once per row,
        # q_m(t) = A_m + (t - t_c) B_m - (t - t_c)^2 / (2 tau^2), whose rounding is
        # ~eps ((hi - lo) / tau)^2 <= 1e-12.
        self.linear = False
        if a.mode == "convex" and self.num_atoms:
            t0 = float(self.tau[0])
            span = float(np.max(self.hi - self.lo)) / t0
            if span * span * _EPS <= 1e-12:
                self.linear = True
                self.tc = 0.5 * (self.lo + self.hi)
                dm = self.mu - self.tc[:, None]
                self.B = dm / t0**2
                self.A = self.logc + self.lognorm - 0.5 * dm * self.B
                self.inv_var = 1.0 / t0**2

    def eval(
        self, rows: np.ndarray, t: np.ndarray, slopes: bool
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Class log-joints (and their ``t``-derivatives) at points ``(rows, t)``."""
        n, m = t.size, self.num_atoms
        out = np.empty((n, self.num_classes))
        dout = np.empty((n, self.num_classes)) if slopes else None
        step = max(1, _CHUNK // max(m, 1))
        for s in range(0, n, step):
            r, tt = rows[s : s + step], t[s : s + step]
            if self.linear:
                u = tt - self.tc[r]
                b = self.B[r]
                q = b * u[:, None]
                q += self.A[r]
                lse, d = _class_lse(q, self.starts, self.ends, b if slopes else None)
                lse -= (0.5 * self.inv_var * u * u)[:, None]
                if d is not None:
                    d -= (self.inv_var * u)[:, None]
            else:
                z = (tt[:, None] - self.mu[r]) / self.tau
                q = self.logc[r] + self.lognorm - 0.5 * z * z
                lse, d = _class_lse(q, self.starts, self.ends, -z / self.tau if slopes else None)
            out[s : s + step] = lse
            if dout is not None:
                dout[s : s + step] = d
        return out, dout

    def win_masses(
        self, rows: np.ndarray, lo: np.ndarray, hi: np.ndarray, cls: np.ndarray
    ) -> np.ndarray:
        """Mass of class ``cls`` on ``[lo, hi]`` of row ``rows`` (normal CDF differences)."""
        out = np.zeros(rows.size)
        for k in range(self.num_classes):
            sel = np.nonzero(cls == k)[0]
            a, b = self.starts[k], self.ends[k]
            if sel.size == 0 or a == b:
                continue
            step = max(1, _CHUNK // (b - a))
            for s in range(0, sel.size, step):
                i = sel[s : s + step]
                r = rows[i]
                mu, tau = self.mu[r, a:b], self.tau[a:b]
                phi = special.ndtr((hi[i, None] - mu) / tau)
                phi -= special.ndtr((lo[i, None] - mu) / tau)
                out[i] = np.sum(np.exp(self.logc[r, a:b]) * phi, 1)
        return out

    def class_masses(self, rows: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """Per-class masses ``(n, K)`` on ``[lo, hi]`` of row ``rows``."""
        return np.stack(
            [self.win_masses(rows, lo, hi, np.full(rows.size, k)) for k in range(self.num_classes)],
            1,
        )

    def rounding(self, count: np.ndarray, biggest: np.ndarray) -> np.ndarray:
        """Rounding allowance per row for ``count`` breakpoints no larger than ``biggest``
        in magnitude: each moves every ``z = (t - mu) / tau`` by at most
        ``4 eps (|t| + |mu|) / tau``, hence a mass by that times ``c / sqrt(2 pi)``."""
        return count * 4 * _EPS * (biggest * self._c_tau + self._c_mu_tau) / math.sqrt(2 * math.pi)


def _class_lse(
    q: np.ndarray, starts: np.ndarray, ends: np.ndarray, slope: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Per-class log-sum-exp of atom log-densities ``q (n, M)`` over the class blocks
    ``[starts[k], ends[k])``, and the softmax-weighted mean of ``slope`` per class."""
    n = q.shape[0]
    lse = np.full((n, starts.size), -np.inf)
    d = None if slope is None else np.zeros((n, starts.size))
    for k in range(starts.size):
        s, e = starts[k], ends[k]
        if s == e:
            continue
        blk = q[:, s:e]
        top = blk.max(axis=1)
        safe = np.where(np.isfinite(top), top, 0.0)
        ex = blk - safe[:, None]
        np.exp(ex, out=ex)
        tot = ex.sum(axis=1)
        with np.errstate(divide="ignore"):
            lse[:, k] = np.log(tot) + safe
        if d is not None and slope is not None:
            with np.errstate(invalid="ignore", divide="ignore"):
                num = np.einsum("nm,nm->n", ex, slope[:, s:e])
                d[:, k] = np.where(tot > 0, num / tot, 0.0)
    return lse, d


class _Intervals:
    """Struct of arrays: row, ends ``l < r``, the winning class at each end (ties broken
    toward the class already known there), class log-joints (and slopes) at both ends."""

    FIELDS = ("row", "l", "r", "kl", "kr", "Ll", "Lr", "dl", "dr", "depth")

    def __init__(self, row, l, r, kl, kr, Ll, Lr, dl, dr, depth):  # noqa: ANN001, N803
        self.row, self.l, self.r, self.kl, self.kr = row, l, r, kl, kr
        self.Ll, self.Lr, self.dl, self.dr, self.depth = Ll, Lr, dl, dr, depth

    def take(self, mask: np.ndarray) -> _Intervals:
        return _Intervals(
            *(None if getattr(self, f) is None else getattr(self, f)[mask] for f in self.FIELDS)
        )

    @staticmethod
    def cat(parts: list[_Intervals]) -> _Intervals:
        def c(name: str) -> np.ndarray | None:
            vals = [getattr(p, name) for p in parts]
            return None if vals[0] is None else np.concatenate(vals)

        return _Intervals(*(c(n) for n in _Intervals.FIELDS))

    @property
    def size(self) -> int:
        return int(self.row.size)


def _winner(L: np.ndarray, prefer: np.ndarray) -> np.ndarray:
    """``argmax_k L[:, k]``, but ``prefer`` where it ties for the maximum."""
    top = np.max(L, 1)
    return np.where(L[np.arange(L.shape[0]), prefer] >= top, prefer, np.argmax(L, 1))


class _Accepted:
    """Accepted pieces: row, ends, winning class, whether the winner is uncertain, and
    the slack ``delta >= 0`` of a certificate (``L_k <= L_w + delta`` on the piece)."""

    def __init__(self) -> None:
        self.parts: list[tuple[np.ndarray, ...]] = []

    def add(self, row, l, r, cls, uncertain, slack=0.0) -> None:  # noqa: ANN001
        if np.size(row):
            shape = np.shape(row)
            u = np.broadcast_to(np.asarray(uncertain, bool), shape)
            d = np.broadcast_to(np.asarray(slack, np.float64), shape)
            self.parts.append((row, l, r, cls, u, d))

    def arrays(self) -> tuple[np.ndarray, ...]:
        return tuple(np.concatenate([p[i] for p in self.parts]) for i in range(6))


def _row_integrals(row: _Row, mode: Mode) -> tuple[np.ndarray, np.ndarray]:
    """``(F, E)``: the integral of ``max_k p`` along every row of the batch and its error
    (guaranteed for ``"exact"``/``"convex"``, an estimate for ``"grid"``)."""
    R = row.num_rows
    est = np.zeros(R)
    if row.num_atoms == 0:
        return np.zeros(R), est
    acc = _Accepted()
    if mode == "exact":
        _exact_pieces(row, acc)
    else:
        _searched_pieces(row, mode, acc, est)
    rows, lo, hi, cls, unc, slack = _merge(*acc.arrays())
    cert = ~unc
    rc = rows[cert]
    win = row.win_masses(rc, lo[cert], hi[cert], cls[cert])
    F = np.bincount(rc, weights=win, minlength=R)
    # a certificate with slack delta: f_k <= e^delta f_w, so max_k f_k - f_w <= expm1(delta) f_w
    E = est + np.bincount(rc, weights=np.expm1(slack[cert]) * win, minlength=R)
    # uncertain pieces (ulp-wide root brackets, give-ups) are left out of F: their whole
    # mass is at most width x the row's peak density
    ru = rows[unc]
    E += np.bincount(ru, weights=(hi[unc] - lo[unc]) * row.peak[ru], minlength=R)
    # beyond [lo, hi] every atom has at most 2 Phi(-9) of its line mass
    E += _OUTSIDE * row.weight
    biggest = np.zeros(R)
    np.maximum.at(biggest, rows, np.maximum(np.abs(lo), np.abs(hi)))
    E += row.rounding(np.bincount(rows, minlength=R) + 1.0, biggest)
    return F, E


def _merge(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    """Merge contiguous pieces of one row with the same class, certainty and no slack."""
    rows, lo, hi, cls, unc, slack = arrays
    order = np.lexsort((lo, rows))
    rows, lo, hi, cls, unc, slack = (a[order] for a in (rows, lo, hi, cls, unc, slack))
    if rows.size == 0:
        return rows, lo, hi, cls, unc, slack
    brk = np.ones(rows.size, bool)
    brk[1:] = (
        (rows[1:] != rows[:-1])
        | (cls[1:] != cls[:-1])
        | (unc[1:] != unc[:-1])
        | (lo[1:] != hi[:-1])
        | (slack[1:] != 0)
        | (slack[:-1] != 0)
    )
    first = np.nonzero(brk)[0]
    last = np.append(first[1:] - 1, rows.size - 1)
    return rows[first], lo[first], hi[last], cls[first], unc[first], slack[first]


def _exact_pieces(row: _Row, acc: _Accepted) -> None:
    """One atom per class: class changes are roots of pairwise quadratics (closed form)."""
    R, M, tau = row.num_rows, row.num_atoms, row.tau
    lo, hi = row.lo, row.hi
    roots = [np.full((R, 0), np.nan)]
    lt = -np.log(tau)
    for i in range(M):
        for j in range(i + 1, M):
            # q_i - q_j in u = t - mu_i:  A u^2 + B u + C
            delta = row.mu[:, j] - row.mu[:, i]
            A = 0.5 * (1.0 / tau[j] ** 2 - 1.0 / tau[i] ** 2)
            B = -delta / tau[j] ** 2
            C = (row.logc[:, i] + lt[i]) - (row.logc[:, j] + lt[j]) + 0.5 * delta**2 / tau[j] ** 2
            r = _quadratic_roots(np.full(R, A), B, C)
            roots.append(row.mu[:, i : i + 1] + r)
    br = np.concatenate(roots, axis=1)
    br = np.where((br > lo[:, None]) & (br < hi[:, None]), br, np.nan)
    br = np.sort(br, axis=1)  # nan last
    edges = np.concatenate([lo[:, None], br, hi[:, None]], axis=1)
    # nan (missing) roots: collapse onto the right end so those pieces have zero width
    edges = np.where(np.isnan(edges), hi[:, None], edges)
    l, r = edges[:, :-1], edges[:, 1:]
    ok = r > l
    rows = np.broadcast_to(np.arange(R)[:, None], l.shape)[ok]
    l, r = l[ok], r[ok]
    # the winner is read inside each piece, at a third and at two thirds of it: at most
    # one of them can be a double root (two classes touching without crossing, where they
    # tie), so the point with the clearer lead decides
    La, _ = row.eval(rows, l + (r - l) / 3.0, False)
    Lb, _ = row.eval(rows, l + 2.0 * (r - l) / 3.0, False)
    lead_a = np.diff(np.sort(La, axis=1)[:, -2:], axis=1)[:, 0]
    lead_b = np.diff(np.sort(Lb, axis=1)[:, -2:], axis=1)[:, 0]
    win = np.where(lead_a >= lead_b, np.argmax(La, 1), np.argmax(Lb, 1))
    acc.add(rows, l, r, win, False)


def _quadratic_roots(A: np.ndarray, B: np.ndarray, C: np.ndarray) -> np.ndarray:
    """Real roots of ``A u^2 + B u + C`` (``(n, 2)``, nan where absent), stably."""
    out = np.full(A.shape + (2,), np.nan)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        lin = A == 0
        out[..., 0] = np.where(lin & (B != 0), -C / B, out[..., 0])
        disc = B * B - 4 * A * C
        q = -0.5 * (B + np.copysign(np.sqrt(np.maximum(disc, 0.0)), B))
        good = ~lin & (disc >= 0)
        out[..., 0] = np.where(good, q / A, out[..., 0])
        out[..., 1] = np.where(good & (q != 0), C / q, np.nan)
    return np.where(np.isfinite(out), out, np.nan)


def _spacing(mode: Mode) -> float:
    return 3.0 if mode == "convex" else 0.5


def _points_per_row(atoms: GaussianAtoms) -> int:
    """About how many candidate points :func:`_candidates` puts on a row."""
    nw = atoms.windows[3].size
    per = int(2 * _Z / _spacing(atoms.mode)) + 1
    if atoms.mode == "exact":
        return max(1, atoms.num_atoms**2)
    if nw <= 64:
        return nw * per + 2
    hull = float(np.ptp(atoms.windows[0][:, -1])) + 2 * _Z * float(np.max(atoms.windows[3]))
    return int(hull / (_spacing(atoms.mode) * float(np.min(atoms.windows[3])))) + 2


def _candidates(row: _Row, spacing: float) -> np.ndarray:
    """Sorted candidate points per row ``(R, P)``: each window at ``spacing`` of its sd
    (few windows), or a uniform grid at ``spacing`` of the smallest sd over the hull."""
    nw = row.wtau.size
    if nw <= 64:
        u = np.arange(-_Z, _Z + 0.5 * spacing, spacing)
        t = row.wmu[:, :, None] + row.wtau[None, :, None] * u
        t = t.reshape(row.num_rows, -1)
        t = np.concatenate([t, row.lo[:, None], row.hi[:, None]], axis=1)
    else:
        width = np.max(row.hi - row.lo)
        p = int(math.ceil(width / (spacing * float(np.min(row.wtau))))) + 1
        f = np.linspace(0.0, 1.0, p)
        t = row.lo[:, None] + (row.hi - row.lo)[:, None] * f
    return np.sort(t, axis=1)


_MAX_ROUNDS = 200
_MIN_WIDTH = 1e-9  # of tau: narrower undecided intervals are accepted as uncertain
_MAX_DEPTH = 40


def _searched_pieces(row: _Row, mode: Mode, acc: _Accepted, est: np.ndarray) -> None:
    slopes = mode == "convex"
    cand = _candidates(row, _spacing(mode))
    R, P = cand.shape
    rows = np.repeat(np.arange(R), P)
    L, dL = row.eval(rows, cand.ravel(), slopes)
    L = L.reshape(R, P, -1)
    dL = None if dL is None else dL.reshape(R, P, -1)

    def sl(a, i):  # noqa: ANN001, ANN202
        return None if a is None else a[:, i].reshape(-1, a.shape[-1])

    k0 = np.argmax(L, 2)
    iv = _Intervals(
        rows.reshape(R, P)[:, :-1].ravel(),
        cand[:, :-1].ravel(),
        cand[:, 1:].ravel(),
        k0[:, :-1].ravel(),
        k0[:, 1:].ravel(),
        L[:, :-1].reshape(-1, L.shape[-1]),
        L[:, 1:].reshape(-1, L.shape[-1]),
        sl(dL, slice(None, -1)),
        sl(dL, slice(1, None)),
        np.zeros(R * (P - 1), np.int64),
    )
    iv = iv.take(iv.r > iv.l)
    tau = float(np.min(row.tau))
    for _ in range(_MAX_ROUNDS):
        if iv.size == 0:
            break
        kl, kr = iv.kl, iv.kr
        br = kl != kr
        new: list[_Intervals] = []
        if br.any():
            new.append(_locate(row, iv.take(br), acc, slopes, tau))
        same = iv.take(~br)
        k = kl[~br]
        if same.size:
            if mode == "convex":
                margin, tol = _certificate(same, k, 1.0 / (2.0 * tau * tau))
                cert = margin >= -tol
                slack = np.maximum(-margin[cert], 0.0)
                acc.add(same.row[cert], same.l[cert], same.r[cert], k[cert], False, slack)
                narrow = ((same.r - same.l) < _MIN_WIDTH * tau) | (same.depth >= _MAX_DEPTH)
                give_up = ~cert & narrow
                acc.add(same.row[give_up], same.l[give_up], same.r[give_up], k[give_up], True)
                split = ~cert & ~narrow
            else:  # grid: one check round that halves every interval, then accept
                split = same.depth == 0
                done = ~split
                acc.add(same.row[done], same.l[done], same.r[done], k[done], False)
            if split.any():
                new.append(_split(row, same.take(split), k[split], est, mode, slopes))
        iv = _Intervals.cat(new) if new else iv.take(np.zeros(iv.size, bool))
    if iv.size:  # pragma: no cover - _MAX_ROUNDS is far above what the rules need
        acc.add(iv.row, iv.l, iv.r, iv.kl, True)


def _certificate(iv: _Intervals, w: np.ndarray, c: float) -> tuple[np.ndarray, np.ndarray]:
    """Convex certificate for class ``w`` on every ``[l, r]`` (module docstring):
    ``(margin, tol)``, where ``L_k >= L_w + min(margin, 0)`` cannot fail for any
    ``k != w`` on the interval, and ``tol = 64 eps (1 + |C|)`` is the float64 rounding
    of the bounds. ``margin >= 0`` certifies that ``w`` wins on all of it."""
    n = iv.size
    idx = np.arange(n)
    h = iv.r - iv.l
    cw_l = iv.Ll[idx, w]
    gw_l = iv.dl[idx, w]  # type: ignore[index]
    cw_r = iv.Lr[idx, w] + c * h * h
    gw_r = iv.dr[idx, w] + 2.0 * c * h  # type: ignore[index]
    # tangents at l and r meet at s* (offset from l); convexity puts it in [0, h]
    with np.errstate(divide="ignore", invalid="ignore"):
        s = (cw_r - gw_r * h - cw_l) / (gw_l - gw_r)
    s = np.where(np.isfinite(s), np.clip(s, 0.0, h), 0.0)
    tol = 64 * _EPS * (1.0 + np.abs(cw_l) + np.abs(cw_r))
    margin = np.full(n, np.inf)
    for k in range(iv.Ll.shape[1]):
        ck_l = iv.Ll[:, k]
        ck_r = iv.Lr[:, k] + c * h * h
        # max(tangents of C_w) - chord of C_k is piecewise linear with its kink at s*:
        # its minimum over [0, h] is at 0, s* or h
        with np.errstate(invalid="ignore"):
            m0 = cw_l - ck_l
            mh = cw_r - ck_r
            ms = cw_l + gw_l * s - np.where(h > 0, ck_l + (ck_r - ck_l) * (s / h), ck_l)
            mk = np.minimum(np.minimum(m0, mh), ms)
            mk = np.where(np.isneginf(ck_l) & np.isneginf(ck_r), np.inf, mk)
        margin = np.where(k != w, np.minimum(margin, mk), margin)
    return margin, tol


def _split(
    row: _Row, iv: _Intervals, k: np.ndarray, est: np.ndarray, mode: Mode, slopes: bool
) -> _Intervals:
    mid = 0.5 * (iv.l + iv.r)
    Lm, dm = row.eval(iv.row, mid, slopes)
    km = _winner(Lm, k)
    if mode == "grid":
        # a class the coarse grid did not see: the coarse interval's mass of the other
        # classes is what it could have got wrong (the estimate of this check round)
        found = km != k
        if found.any():
            mass = row.class_masses(iv.row[found], iv.l[found], iv.r[found])
            kk = k[found]
            other = mass.sum(1) - mass[np.arange(kk.size), kk]
            np.add.at(est, iv.row[found], np.maximum(other, 0.0))
    d = iv.depth + 1
    left = _Intervals(iv.row, iv.l, mid, iv.kl, km, iv.Ll, Lm, iv.dl, dm, d)
    right = _Intervals(iv.row, mid, iv.r, km, iv.kr, Lm, iv.Lr, dm, iv.dr, d)
    return _Intervals.cat([left, right])


def _locate(row: _Row, iv: _Intervals, acc: _Accepted, slopes: bool, tau: float) -> _Intervals:
    """Locate a class change in brackets where ``a`` wins at ``l`` and ``b`` at ``r``: a
    root of ``g = L_a - L_b`` by Newton steps from the end with the smaller ``|g|``
    (with slopes), else Illinois (regula falsi) steps, and bisection whenever the
    bracket did not halve in two steps. The final bracket: with slopes, down to
    ``1e-9 tau``, then accepted for ``a`` with the slack of its convex certificate
    (``L_b <= L_a + slack`` on it, so it costs ``<= expm1(slack)`` times its mass);
    without, down to a few ulps and accepted as uncertain. The two sides go back to
    the work list (a third class may win inside: then they are brackets again)."""
    n = iv.size
    idx = np.arange(n)
    a, b = iv.kl, iv.kr
    l, r = iv.l.copy(), iv.r.copy()
    Ll, Lr = iv.Ll.copy(), iv.Lr.copy()
    dl = None if iv.dl is None else iv.dl.copy()
    dr = None if iv.dr is None else iv.dr.copy()
    gl = Ll[idx, a] - Ll[idx, b]  # >= 0
    gr = Lr[idx, a] - Lr[idx, b]  # <= 0
    fl, fr = gl.copy(), gr.copy()  # Illinois-scaled values
    side = np.zeros(n, np.int8)  # which end moved last: -1 left, +1 right
    wtol = 4 * _EPS * (np.maximum(np.abs(l), np.abs(r)) + tau) + (1e-9 * tau if slopes else 0.0)
    w1 = np.full(n, np.inf)
    w2 = np.full(n, np.inf)
    for _ in range(200):
        width = r - l
        act = width > wtol
        if not act.any():
            break
        i = np.nonzero(act)[0]
        li_, ri_ = l[i], r[i]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            t = (li_ * fr[i] - ri_ * fl[i]) / (fr[i] - fl[i])
            if slopes and dl is not None and dr is not None:
                from_l = np.abs(gl[i]) <= np.abs(gr[i])
                ge = np.where(from_l, gl[i], gr[i])
                de = np.where(from_l, dl[i, a[i]] - dl[i, b[i]], dr[i, a[i]] - dr[i, b[i]])
                e = np.where(from_l, li_, ri_)
                step = -ge / de
                # a step shorter than the tolerance would not close the bracket: overshoot
                short = np.abs(step) < 0.5 * wtol[i]
                step = np.where(short, np.copysign(0.5 * wtol[i], step), step)
                tn = e + step
                newton = np.isfinite(tn) & (tn > li_) & (tn < ri_)
                t = np.where(newton, tn, t)
        slow = width[i] > 0.5 * w2[i]
        bad = ~np.isfinite(t) | (t <= li_) | (t >= ri_) | slow
        t = np.where(bad, 0.5 * (li_ + ri_), t)
        w2[i], w1[i] = w1[i], width[i]
        Lt, dt = row.eval(iv.row[i], t, slopes)
        gt = Lt[np.arange(i.size), a[i]] - Lt[np.arange(i.size), b[i]]
        left = gt >= 0
        li, ri = i[left], i[~left]
        # move the left end
        l[li] = t[left]
        Ll[li] = Lt[left]
        if dl is not None and dt is not None:
            dl[li] = dt[left]
        gl[li] = gt[left]
        fl[li] = gt[left]
        fr[li] = np.where(side[li] == -1, 0.5 * fr[li], fr[li])
        side[li] = -1
        # move the right end
        r[ri] = t[~left]
        Lr[ri] = Lt[~left]
        if dr is not None and dt is not None:
            dr[ri] = dt[~left]
        gr[ri] = gt[~left]
        fr[ri] = gt[~left]
        fl[ri] = np.where(side[ri] == 1, 0.5 * fl[ri], fl[ri])
        side[ri] = 1
    bracket = _Intervals(iv.row, l, r, a, a, Ll, Lr, dl, dr, iv.depth)
    if slopes:
        margin, _ = _certificate(bracket, a, 1.0 / (2.0 * tau * tau))
        acc.add(iv.row, l, r, a, False, np.maximum(-margin, 0.0))
    else:
        acc.add(iv.row, l, r, a, True)
    # g(l) >= 0 > g(r): a wins at l and b at r unless a third class beats both there
    left_iv = _Intervals(iv.row, iv.l, l, a, _winner(Ll, a), iv.Ll, Ll, iv.dl, dl, iv.depth)
    right_iv = _Intervals(iv.row, r, iv.r, _winner(Lr, b), b, Lr, iv.Lr, dr, iv.dr, iv.depth)
    both = _Intervals.cat([left_iv, right_iv])
    return both.take(both.r > both.l)


# --------------------------------------------------------------------------- across rows


def _panel_edges(centers: np.ndarray, sds: np.ndarray, width: float) -> np.ndarray:
    """Panels ``(n, 2)`` covering every window ``centers +- 9 sds``, each no wider than
    ``width`` times the smallest sd of the windows it meets; gaps are left out."""
    lo, hi = centers - _Z * sds, centers + _Z * sds
    pts = np.unique(np.concatenate([lo, hi]))
    a, b = pts[:-1], pts[1:]
    need = np.full(a.size, np.inf)
    order = np.argsort(sds)[::-1]  # assign wide first, narrow overwrite
    for j in order:
        cover = (a >= lo[j]) & (b <= hi[j])
        need[cover] = np.minimum(need[cover], width * sds[j])
    panels: list[tuple[float, float]] = []
    i, n = 0, a.size
    while i < n:
        if not np.isfinite(need[i]):
            i += 1
            continue
        start, h = a[i], need[i]
        j = i
        while j + 1 < n and np.isfinite(need[j + 1]) and b[j + 1] - start <= min(h, need[j + 1]):
            j += 1
            h = min(h, need[j])
        end = b[j]
        num = max(1, int(math.ceil((end - start) / h - 1e-9)))
        e = np.linspace(start, end, num + 1)
        panels.extend(zip(e[:-1], e[1:], strict=True))
        i = j + 1
    return np.asarray(panels, np.float64).reshape(-1, 2)


def _tangent_rows(atoms: GaussianAtoms) -> np.ndarray:
    """The rows ``x_1 = s`` where a class boundary of two atoms is vertical (``"exact"``
    mode, one atom per class): the discriminant in ``t`` of their log-density difference,
    a quadratic in ``s``, vanishes there (for equal ``t``-precisions: where the linear
    coefficient does). There the row integral ``F(s)`` has a ``|s - s*|^(3/2)``
    singularity that Gauss-Legendre panels straddling it converge to slowly and whose
    halving difference underestimates the error; panels are cut at these rows instead."""
    prec = np.linalg.inv(atoms.covs)
    logdet = np.linalg.slogdet(atoms.covs)[1]
    out: list[float] = []
    m = atoms.means.shape[0]
    for i in range(m):
        for j in range(i + 1, m):
            if atoms.classes[i] == atoms.classes[j]:
                continue
            q = prec[i] - prec[j]
            bv = prec[i] @ atoms.means[i] - prec[j] @ atoms.means[j]
            c = (atoms.log_weights[i] - atoms.log_weights[j] - 0.5 * (logdet[i] - logdet[j])
                 - 0.5 * (atoms.means[i] @ prec[i] @ atoms.means[i]
                          - atoms.means[j] @ prec[j] @ atoms.means[j]))  # fmt: skip
            scale = float(np.abs(q).max() + 1e-300)
            if abs(q[1, 1]) <= 1e-12 * scale:  # linear in t: B(s) = b1 - q01 s changes sign
                if abs(q[0, 1]) > 1e-12 * scale:
                    out.append(float(bv[1] / q[0, 1]))
                continue
            coef = (q[0, 1] ** 2 - q[1, 1] * q[0, 0], 2.0 * (q[1, 1] * bv[0] - q[0, 1] * bv[1]),
                    bv[1] ** 2 + 2.0 * q[1, 1] * c)  # fmt: skip
            roots = np.roots(coef) if np.any(np.abs(coef) > 0) else np.zeros(0)
            out.extend(float(r.real) for r in roots if abs(r.imag) <= 1e-12 * (1 + abs(r.real)))
            if coef[0] != 0.0:  # the vertex: a double root (two crossing lines) in rounding
                out.append(float(-coef[1] / (2.0 * coef[0])))
    return np.asarray(sorted(set(out)), np.float64)


def _cut_panels(panels: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``panels (n, 2)`` with every panel that strictly contains one of ``rows`` cut there."""
    if rows.size == 0 or panels.size == 0:
        return panels
    out: list[tuple[float, float]] = []
    for lo, hi in panels:
        inner = rows[(rows > lo) & (rows < hi)]
        edges = np.concatenate([[lo], inner, [hi]])
        out.extend(zip(edges[:-1], edges[1:], strict=True))
    return np.asarray(out, np.float64).reshape(-1, 2)


def _outer(
    atoms: GaussianAtoms,
    tol: float,
    progress: Progress | None,
    panel_width: float,
) -> tuple[float, float, float]:
    """Adaptive composite Gauss--Legendre over ``x_1`` of the row integrals:
    ``(integral, halving estimate, integral of the row errors)``."""
    ws = atoms.windows
    panels = _panel_edges(ws[0][:, 0], ws[1], panel_width)
    if atoms.mode == "exact":
        panels = _cut_panels(panels, _tangent_rows(atoms))
    a, b = panels[:, 0], panels[:, 1]
    total_width = float(np.sum(b - a))
    u, w = gauss_legendre(_ORDER)
    # rows per batch: about 2^17 candidate points, and 2^23 (points x atoms) elements
    points = _points_per_row(atoms)
    batch = max(1, min((1 << 17) // points, (1 << 23) // (points * max(atoms.num_atoms, 1))))
    done_rows = [0]
    expected = 3 * _ORDER * a.size * 1.2

    def rule(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        half = 0.5 * (hi - lo)
        s = (lo[:, None] + half[:, None] * (u + 1.0)).ravel()
        F, E = np.empty(s.size), np.empty(s.size)
        for i in range(0, s.size, batch):
            F[i : i + batch], E[i : i + batch] = _row_integrals(
                _Row(atoms, s[i : i + batch]), atoms.mode
            )
            done_rows[0] += s[i : i + batch].size
            if progress is not None:
                progress(min(done_rows[0] / expected, 0.99))
        F, E = F.reshape(lo.size, _ORDER), E.reshape(lo.size, _ORDER)
        return np.sum(F * w, 1) * half, np.sum(E * w, 1) * half

    coarse, _ = rule(a, b)
    total, est, inner = 0.0, 0.0, 0.0
    for round_ in range(30):
        m = 0.5 * (a + b)
        vals, errs = rule(np.concatenate([a, m]), np.concatenate([m, b]))
        n = a.size
        left, right = vals[:n], vals[n:]
        fine = left + right
        diff = np.abs(coarse - fine)
        ok = (diff <= tol * (b - a) / total_width) | (round_ == 29)
        total += math.fsum(fine[ok])
        est += math.fsum(diff[ok])
        inner += math.fsum(errs[:n][ok]) + math.fsum(errs[n:][ok])
        if ok.all():
            break
        keep = ~ok
        a, b = np.concatenate([a[keep], m[keep]]), np.concatenate([m[keep], b[keep]])
        coarse = np.concatenate([left[keep], right[keep]])
    if progress is not None:
        progress(1.0)
    return total, est, inner


def bayes_accuracy(
    atoms: GaussianAtoms,
    *,
    tol: float = 1e-11,
    progress: Progress | None = None,
    panel_width: float = 1.0,
) -> BayesResult:
    """``int max_k p(x, y=k) dx`` for a 1-D or 2-D atom table (see the module docstring).

    ``tol`` is the target of the outer halving estimate (2-D); ``progress`` is called
    with the fraction done; ``panel_width`` is the outer panel width in units of the
    narrowest window sd the panel meets.
    """
    a = atoms
    if a.populated == 0:
        return BayesResult(0.0, 0.0, "exact", "no atom has positive weight")
    if a.populated == 1:
        total = float(np.sum(np.exp(a.log_weights)))
        return BayesResult(total, 1e-16 * total, "exact", "a single class has positive weight")
    weight = float(np.sum(np.exp(a.log_weights)))
    outside = _OUTSIDE * weight
    rule = {
        "exact": "class changes are roots of pairwise quadratics (closed form)",
        "convex": "class changes located and certified between them by convexity",
        "grid": "class changes searched on a grid at half the atoms' sd and checked at a "
        "quarter (an estimate)",
    }[a.mode]
    if a.dim == 1:
        F, E = _row_integrals(_Row(a, None), a.mode)
        if progress is not None:
            progress(1.0)
        err = float(E[0]) + outside
        tier: Tier = "estimated" if a.mode == "grid" else "certified"
        return BayesResult(
            float(F[0]),
            err,
            tier,
            f"1-D: normal CDF differences between class changes; {rule}; error = mass "
            "of the undecided pieces + mass beyond 9 sd + float64 rounding allowance",
        )
    val, est, inner = _outer(a, tol, progress, panel_width)
    return BayesResult(
        float(val),
        float(est + inner + outside),
        "estimated",
        "nested quadrature: along x2 exact normal CDF differences between class changes "
        f"({rule}); along x1 adaptive Gauss-Legendre on panels no wider than every atom's "
        "x1 sd; error = change on halving the x1 panels (an estimate) + row errors + mass "
        "beyond 9 sd",
    )
