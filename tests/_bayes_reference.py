"""Independent references for Bayes accuracies ``int max_k p(x, y=k) dx`` (test helpers).

Nothing here uses toylab's quadrature: the 1-D references integrate with mpmath at 30
digits between crossings found by mpmath's root finder; the 2-D reference for one
Gaussian per class works in each component's own whitened frame, where the
component is a standard normal and the region where it wins is cut by quadratics,
and integrates with scipy's adaptive quadrature.
"""

from __future__ import annotations

import math

import mpmath as mp
import numpy as np
from scipy import integrate, special


def max_mixture_1d(means, sds, weights, classes, *, lo: float = -math.inf, dps: int = 30) -> float:
    """``int_lo^inf max_k sum_{j: c_j = k} w_j N(x; m_j, s_j^2) dx`` at ``dps`` digits.

    Crossings of every pair of classes are bracketed on a grid fine at every
    component's scale (a tenth of its sd within 12 sd) and polished by mpmath; the
    integral is a sum of mpmath quadratures between consecutive crossings, each
    split at the component means and +-1, +-3 sd (where the integrand bends)."""
    with mp.workdps(dps):
        comps = [
            (mp.mpf(m), mp.mpf(s), mp.mpf(w), int(c))
            for m, s, w, c in zip(means, sds, weights, classes, strict=True)
            if w > 0
        ]
        ncls = max(c for *_, c in comps) + 1

        def joint(x):
            out = [mp.mpf(0)] * ncls
            for m, s, w, c in comps:
                out[c] += w * mp.npdf(x, m, s)
            return out

        grid = sorted(
            {float(m + s * u) for m, s, _, _ in comps for u in np.linspace(-12, 12, 241)}
            | ({lo} if math.isfinite(lo) else set())
        )
        grid = [x for x in grid if x >= lo]
        lab = [int(np.argmax([float(v) for v in joint(mp.mpf(x))])) for x in grid]
        cuts = []
        for x0, x1, a, b in zip(grid[:-1], grid[1:], lab[:-1], lab[1:], strict=True):
            if a != b:

                def g(x, a=a, b=b):
                    j = joint(x)
                    return j[a] - j[b]

                cuts.append(mp.findroot(g, (mp.mpf(x0), mp.mpf(x1)), solver="anderson"))
        bends = {float(m + k * s) for m, s, _, _ in comps for k in (-3, -1, 0, 1, 3)}
        pts = sorted([mp.mpf(c) for c in cuts] + [mp.mpf(b) for b in bends if b > lo])
        pts = [mp.mpf(lo) if math.isfinite(lo) else -mp.inf] + pts + [mp.inf]
        total = mp.mpf(0)
        for a, b in zip(pts[:-1], pts[1:], strict=True):
            if a == b:
                continue
            if mp.isfinite(a) and mp.isfinite(b):
                mid = (a + b) / 2
            else:
                mid = b - 1 if mp.isfinite(b) else a + 1
            k = int(np.argmax([float(v) for v in joint(mid)]))
            total += mp.quad(lambda x, k=k: joint(x)[k], [a, b])
        return float(total)


def _interval_set(alpha: float, beta: float, gamma: float) -> list[tuple[float, float]]:
    """``{t : alpha t^2 + beta t + gamma > 0}`` as a list of open intervals."""
    inf = math.inf
    if alpha == 0.0:
        if beta == 0.0:
            return [(-inf, inf)] if gamma > 0 else []
        r = -gamma / beta
        return [(r, inf)] if beta > 0 else [(-inf, r)]
    disc = beta * beta - 4.0 * alpha * gamma
    if disc <= 0.0:
        return [(-inf, inf)] if alpha > 0 else []
    q = -0.5 * (beta + math.copysign(math.sqrt(disc), beta))
    r1, r2 = sorted((q / alpha, gamma / q))
    return [(-inf, r1), (r2, inf)] if alpha > 0 else [(r1, r2)]


def _intersect(a: list[tuple[float, float]], b: list[tuple[float, float]]):
    out = []
    for lo1, hi1 in a:
        for lo2, hi2 in b:
            lo, hi = max(lo1, lo2), min(hi1, hi2)
            if lo < hi:
                out.append((lo, hi))
    return out


def single_gaussian_classes_2d(means, covs, weights) -> tuple[float, float]:
    """``(A, error estimate)`` for a 2-D mixture with one Gaussian per class.

    ``A = sum_j w_j P_{z ~ N(0, I)}(component j wins at mu_j + L_j z)``. In component
    ``j``'s frame ``x = mu_j + L_j z`` the log ratio to component ``i`` is the quadratic
    ``z^T M z + v^T z + c`` with ``M = (A^T A - I) / 2``, ``v = A^T b``,
    ``c = |b|^2 / 2 + log(w_j |L_i| / (w_i |L_j|))``, ``A = L_i^-1 L_j``,
    ``b = L_i^-1 (mu_j - mu_i)``. For each ``z_1`` the set of ``z_2`` where ``j`` beats
    every ``i`` is an intersection of quadratic sets, whose normal mass is exact; the
    ``z_1`` integral is scipy's ``quad`` on ``[-9, 9]`` split where a discriminant
    vanishes (outside: at most ``2 Phi(-9)`` per component). Identical components tie
    everywhere: the larger weight, then the lower index, wins. The error estimate is the sum of ``quad``'s
    estimates and that tail."""
    means = np.asarray(means, np.float64)
    covs = np.asarray(covs, np.float64)
    weights = np.asarray(weights, np.float64)
    chols = np.linalg.cholesky(covs)
    logdet = np.log(chols[:, 0, 0] * chols[:, 1, 1])
    k = len(weights)
    total, err = 0.0, 0.0
    for j in range(k):
        if weights[j] == 0:
            continue
        quads = []
        never = False
        for i in range(k):
            if i == j or weights[i] == 0:
                continue
            if np.array_equal(means[i], means[j]) and np.array_equal(covs[i], covs[j]):
                # identical components: the larger weight, then the lower index, wins
                never |= (weights[i], -i) > (weights[j], -j)
                continue
            a = np.linalg.solve(chols[i], chols[j])
            b = np.linalg.solve(chols[i], means[j] - means[i])
            m = 0.5 * (a.T @ a - np.eye(2))
            v = a.T @ b
            c = 0.5 * b @ b + math.log(weights[j] / weights[i]) + logdet[i] - logdet[j]
            quads.append((m, v, c))
        if never:
            continue

        def mass(z1: float, quads=quads) -> float:
            sets = [(-math.inf, math.inf)]
            for m, v, c in quads:
                alpha = m[1, 1]
                beta = 2 * m[0, 1] * z1 + v[1]
                gamma = m[0, 0] * z1 * z1 + v[0] * z1 + c
                sets = _intersect(sets, _interval_set(alpha, beta, gamma))
                if not sets:
                    return 0.0
            return sum(float(special.ndtr(hi) - special.ndtr(lo)) for lo, hi in sets)

        brk = [-9.0, 9.0]
        for m, v, c in quads:
            # discriminant of the z2-quadratic as a quadratic in z1
            qa = 4 * m[0, 1] ** 2 - 4 * m[1, 1] * m[0, 0]
            qb = 4 * m[0, 1] * v[1] - 4 * m[1, 1] * v[0]
            qc = v[1] ** 2 - 4 * m[1, 1] * c
            for lo, hi in _interval_set(qa, qb, qc):
                brk += [x for x in (lo, hi) if -9 < x < 9]
        brk = sorted(set(brk))
        for lo, hi in zip(brk[:-1], brk[1:], strict=True):
            val, e = integrate.quad(
                lambda z1: mass(z1) * math.exp(-0.5 * z1 * z1) / math.sqrt(2 * math.pi),
                lo,
                hi,
                epsabs=1e-15,
                epsrel=1e-13,
                limit=400,
            )
            total += weights[j] * val
            err += weights[j] * e
        err += weights[j] * 2 * special.ndtr(-9.0)
    return total, err
