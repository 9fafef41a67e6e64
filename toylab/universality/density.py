r"""Density or decision boundary? Per-neuron scores of what a neuron models, under the data.

For a network on a 2-D classification distribution with class densities
``p(x, y=c)`` (Gaussian mixtures, rings, noisy curves: anything with
``class_log_joint``), :func:`density_scores` says for every hidden unit ``a(x)``
(canonical addresses ``"hidden_k:i"``, :mod:`toylab.neurons`) how much of its function
is explained by the **data density** and how much by the **class posterior** (the
decision boundary). :func:`density_study` trains small ensembles across widths, depths,
activations, seeds and distributions and reports where neurons model the density.

**(a) Variance explained.** Two families of features of ``x``:

* density ``D``: ``log p(x)`` and the class joints ``p(x, y=c)`` for every class (their
  span holds the marginal ``p(x)`` and, up to the priors, the class-conditional densities
  ``p(x | c)``);
* boundary ``B``: the posterior log-odds ``log p(y=c|x) - log p(y=0|x)`` (``c >= 1``,
  capped at ``+-LOGIT_CAP``) and the posteriors ``p(y=c|x)`` (``c >= 1``).

The *class-conditional log densities* are deliberately not in ``D``:
``log p(x|c) - log p(x|c') = log-odds(c, c') - log(pi_c / pi_c')``, so their span
always contains the log-odds and ``D`` would explain every boundary detector. With
``f`` the features of a family ``J``, ``c = Cov(f, a)``, ``S = Cov(f, f)`` and
``v = Var(a)`` under the data, the fraction of variance explained by the best affine
combination (least squares with intercept) is

.. math::

    R^2_J = c^\top S^{+} c / v ,

computed on the standardised features (correlation matrix, eigenvalues below
``1e-10`` of the largest dropped). Reported: ``r2_density`` (``J = D``),
``r2_boundary`` (``J = B``), ``r2_joint`` (``D ∪ B``), the unique parts
``unique_density = R²(D∪B) - R²(B)``, ``unique_boundary = R²(D∪B) - R²(D)`` and the
``shared`` part ``R²(D) + R²(B) - R²(D∪B)``; ``preference = r2_density - r2_boundary``
and a ``label``: ``"density"`` / ``"boundary"`` where the preference exceeds
``threshold`` (default 0.1) plus its error, ``"mixed"`` otherwise, ``"neither"`` where
``R²(D∪B) < min_explained`` (default 0.5), ``"dead"`` where the unit has no variance
above its error. Read the unique parts, not only ``R²(D)``: the class joints also say
on which side of the boundary ``x`` lies (``p(x, 0)`` is large where class 0 is), so
on two blobs ``relu(x1)``, a pure boundary detector, still has ``R²(D) ≈ 0.52`` but
``unique_density ≈ 0.01`` (against ``r2_boundary ≈ 0.84``).

``method="quadrature"`` (piecewise-linear networks): the unit is affine on each region
``P_r`` of the exact partition of the integration box (:attr:`toylab.exact.Analysis.support`),
``a = g_r · x + c_r``, so

.. math::

    E[a f_j] = \sum_r g_r \cdot \int_{P_r} x f_j p\,dx + c_r \int_{P_r} f_j p\,dx ,

and ``E[f]``, ``E[f f^T]`` are sums of the same region integrals. Those integrals of
smooth non-polynomial integrands are taken by :func:`toylab.exact.polygon_quadrature`
(adaptive collapsed Gauss–Legendre, degree 20 against degree 10); ``E[a]`` and
``E[a^2]`` are the exact moments of :func:`toylab.exact.analyze`. **Tier
``estimated``**: ``error`` is a first-order propagation of the quadrature's error
estimates (and the analysis' error) through the formula above,
``(2|β|·δc + |β|ᵀ δS |β| + R² δv) / v`` with ``β = S⁺c``, an estimate, not a bound
(it is first order in the errors and ignores what the integration box leaves out,
``~1e-32`` of the mass for Gaussian mixtures, the declared ``outside_mass`` otherwise).

``method="sampled"`` (any network, e.g. ``tanh``): ``num_samples`` draws from the
distribution in ``num_batches`` batches; the value is the whole sample's ``R²`` and
``error`` the half-width of a 99.9% Student-t interval over the batches' ``R²``
(batch means; it ignores the ``O(F / n)`` bias of a sample ``R²``). **Tier ``sampled``**.

**(b) Zero-set alignment** (piecewise-linear networks only). The pre-activation
``z = hidden_k.pre:i`` is affine on each region, so its zero set is a union of segments
(:func:`toylab.exact.level_set` on the support partition: exact geometry). Along it,
with ``ds`` arc length, ``n`` the segment's unit normal (the direction of ``∇z``),
``ℓ`` the log-odds between the two most probable classes at the point (whose gradient
is the normal of the local Bayes boundary):

* ``zero_set_mass = ∫ p ds``: how much data density the zero set runs through;
* ``boundary_alignment = ∫ p |n·∇ℓ| / |∇ℓ| ds / ∫ p ds``: the mean ``|cos|`` between the
  zero set's normal and the Bayes boundary's (1 when it runs along the boundary);
* ``density_alignment``: the same with ``∇ log p`` (1 when it runs along density level
  sets);
* ``boundary_offset = ∫ p |ℓ| ds / ∫ p ds``: the mean distance from the Bayes boundary
  in log-odds (0 on it);
* ``level_spread``: the standard deviation of ``log p`` along the zero set (0 on a
  density level set).

Where the density's level sets run parallel to the Bayes boundary (concentric rings:
both are circles) the two alignments coincide and cannot tell density from boundary;
the variance explained still can (a unit that is a bump on one ring is not a monotone
function of the posterior). The zero set is taken within the integration box only, so
a unit whose zero set lies outside the data has ``zero_set_mass = 0`` and ``nan``
alignments.

The integrals along the segments are adaptive Gauss–Legendre (16 nodes against 8 per
piece, pieces halved until they agree); the gradients are central differences of
``class_log_joint`` with a step of ``1e-5`` of the integration box's half-width,
repeated with a 4x step. **Tier ``estimated``**: ``error`` is the quadrature's estimate plus the change
between the two steps, propagated through the ratios to first order. For networks
that are not piecewise linear these scores are ``nan`` (``alignment_tier`` is ``None``).

What is exact: the partition, the zero sets and ``Var(a)`` (for Gaussian mixtures).
What is not: every integral of a non-polynomial feature (quadrature, ``estimated``) and
every sampled number (``sampled``). The tiers say which.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from toylab._errors import NotApplicable, fail
from toylab._validate import check_choice, check_float, check_int
from toylab.tiers import Tier, weakest

__all__ = [
    "LOGIT_CAP",
    "DensityResult",
    "DensityStudyResult",
    "default_distributions",
    "density_features",
    "density_scores",
    "density_study",
    "feature_names",
]

#: Log-odds are capped at +-LOGIT_CAP (posterior 1 - 4e-18: beyond float64's resolution
#: of a probability), so that classes with disjoint supports give finite features.
LOGIT_CAP = 40.0
_EPS = float(np.finfo(np.float64).eps)
_METRICS = (
    "r2_density",
    "r2_boundary",
    "r2_joint",
    "zero_set_mass",
    "boundary_alignment",
    "density_alignment",
    "boundary_offset",
    "level_spread",
)


# ---------------------------------------------------------------------------- features


def _check_dist(where: str, dist: Any) -> int:
    k = int(getattr(dist, "num_classes", 0))
    kind = getattr(dist, "kind", None)
    if k < 2 or kind != "continuous" or not hasattr(dist, "class_log_joint"):
        raise NotApplicable(
            f"{where}: {type(dist).__name__} has no class densities with two or more classes "
            "(class_log_joint); density-vs-boundary scores need a 2-D classification "
            "distribution such as two_blobs, Rings or NoisyCurve."
        )
    dim = getattr(dist, "dim", None)
    if dim != 2:
        raise NotApplicable(
            f"{where}: {type(dist).__name__} has {dim}-dimensional inputs; the scores are "
            "defined on the plane (2-D inputs)."
        )
    return k


def feature_names(num_classes: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Names of the density features and of the boundary features."""
    dens = ("log p(x)", *(f"p(x, y={c})" for c in range(num_classes)))
    bnd = (
        *(f"log p(y={c}|x)/p(y=0|x)" for c in range(1, num_classes)),
        *(f"p(y={c}|x)" for c in range(1, num_classes)),
    )
    return dens, bnd


def density_features(dist: Any, x: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(p (N,), density features (N, K + 1), boundary features (N, 2 (K - 1)))`` at ``x``.

    See the module docstring for the two families (names: :func:`feature_names`). Where
    ``p(x) = 0`` every feature is set to 0 (it carries no weight under the data).
    """
    lj = np.asarray(dist.class_log_joint(np.asarray(x, np.float64)), np.float64)
    logp = np.logaddexp.reduce(lj, axis=-1)
    ok = np.isfinite(logp)
    safe = np.where(ok, logp, 0.0)
    p = np.where(ok, np.exp(safe), 0.0)
    joint = np.exp(lj)
    with np.errstate(invalid="ignore"):
        odds = lj[:, 1:] - lj[:, :1]
        post = np.exp(lj[:, 1:] - safe[:, None])
    odds = np.clip(np.nan_to_num(odds, nan=0.0), -LOGIT_CAP, LOGIT_CAP)
    dens = np.concatenate([safe[:, None], joint], axis=1)
    bnd = np.concatenate([odds, post], axis=1)
    dens[~ok] = 0.0
    bnd[~ok] = 0.0
    return p, dens, bnd


# ---------------------------------------------------------------------------- R^2 algebra


def _r2(
    cov_af: np.ndarray, cov_ff: np.ndarray, var: np.ndarray, idx: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``R^2 = c^T S^+ c / v`` for the features ``idx`` and every unit; also ``β = S^+ c``.

    ``cov_af (n, F)``, ``cov_ff (F, F)``, ``var (n,)``. Computed on standardised features
    (eigenvalues of the correlation matrix below 1e-10 of the largest dropped).
    """
    s = cov_ff[np.ix_(idx, idx)]
    d = np.sqrt(np.maximum(np.diag(s), 0.0))
    live = d > 1e-300
    beta = np.zeros((cov_af.shape[0], len(idx)))
    if not np.any(live):
        return np.zeros(cov_af.shape[0]), beta
    dl = d[live]
    corr = s[np.ix_(live, live)] / np.outer(dl, dl)
    evals, evecs = np.linalg.eigh(0.5 * (corr + corr.T))
    keep = evals > 1e-10 * max(float(evals.max()), 1e-300)
    pinv = (evecs[:, keep] / evals[keep]) @ evecs[:, keep].T
    r = cov_af[:, idx][:, live] / dl
    bs = r @ pinv
    with np.errstate(invalid="ignore", divide="ignore"):
        r2 = np.sum(bs * r, axis=1) / var
    beta[:, live] = bs / dl
    return r2, beta


def _r2_all(
    cov_af: np.ndarray, cov_ff: np.ndarray, var: np.ndarray, num_dens: int
) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``{name: (R², β, feature indices)}`` for the density, boundary and joint families."""
    f = cov_ff.shape[0]
    fam = {
        "r2_density": np.arange(num_dens),
        "r2_boundary": np.arange(num_dens, f),
        "r2_joint": np.arange(f),
    }
    out = {}
    for name, idx in fam.items():
        r2, beta = _r2(cov_af, cov_ff, var, idx)
        out[name] = (r2, beta, idx)
    return out


# ---------------------------------------------------------------------------- quadrature


def _quadrature_r2(
    net: Any, dist: Any, analysis: Any, keys: Sequence[str], rtol: float, atol: float
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], np.ndarray, np.ndarray, str]:
    """R² of every unit of ``keys`` from region integrals (module docstring, (a))."""
    from toylab.exact import polygon_quadrature

    part = analysis.support
    o = part.origin
    k = int(dist.num_classes)
    num_dens = k + 1
    nf = num_dens + 2 * (k - 1)
    iu, ju = np.triu_indices(nf)

    def columns(pts: np.ndarray) -> np.ndarray:
        p, dens, bnd = density_features(dist, pts + o)
        f = np.concatenate([dens, bnd], axis=1)
        pf = p[:, None] * f
        return np.concatenate(
            [p[:, None], pf, pts[:, :1] * pf, pts[:, 1:] * pf, pf[:, iu] * f[:, ju]], axis=1
        )

    vals, errs = polygon_quadrature(columns, part.local_polygons, rtol=rtol, atol=atol)
    tot, tot_err = vals.sum(0), errs.sum(0)
    ef, ef_err = tot[1 : 1 + nf], tot_err[1 : 1 + nf]
    eff = np.zeros((nf, nf))
    eff[iu, ju] = tot[1 + 3 * nf :]
    eff[ju, iu] = tot[1 + 3 * nf :]
    eff_err = np.zeros((nf, nf))
    eff_err[iu, ju] = tot_err[1 + 3 * nf :]
    eff_err[ju, iu] = tot_err[1 + 3 * nf :]
    cov_ff = eff - np.outer(ef, ef)
    dff = eff_err + np.abs(ef)[:, None] * ef_err[None, :] + np.abs(ef)[None, :] * ef_err[:, None]
    # per region: (x f, y f, f) integrals, in the order of the maps' (g_x, g_y, c)
    m = np.stack([vals[:, 1 + nf : 1 + 2 * nf], vals[:, 1 + 2 * nf : 1 + 3 * nf],
                  vals[:, 1 : 1 + nf]], axis=1)  # fmt: skip
    me = np.stack([errs[:, 1 + nf : 1 + 2 * nf], errs[:, 1 + 2 * nf : 1 + 3 * nf],
                   errs[:, 1 : 1 + nf]], axis=1)  # fmt: skip
    out: dict[str, list[np.ndarray]] = {name: [] for name in _METRICS[:3]}
    err: dict[str, list[np.ndarray]] = {name: [] for name in _METRICS[:3]}
    var_all, dvar_all = [], []
    for key in keys:
        mom = analysis.moments[key]
        ea = mom.mean
        var = np.diag(mom.cov).copy()
        e = float(analysis.error)
        # Cov(a, f) = E[(a - E a) f]: the centred unit is affine too (its constant term
        # minus E a), and integrating it directly avoids E[a f] - E[a] E[f]'s cancellation
        maps = part.local_maps[key].copy()
        maps[:, :, 2] -= ea[None, :]
        cov_af = np.einsum("rnk,rkf->nf", maps, m)
        daf = np.einsum("rnk,rkf->nf", np.abs(maps), me) + e * np.abs(ef)[None, :]
        dvar = e * (1.0 + 2.0 * np.abs(ea))
        for name, (r2, beta, idx) in _r2_all(cov_af, cov_ff, var, num_dens).items():
            ab = np.abs(beta)
            d = (2.0 * np.sum(ab * daf[:, idx], 1) + np.einsum("ni,ij,nj->n", ab,
                 dff[np.ix_(idx, idx)], ab) + np.abs(r2) * dvar)  # fmt: skip
            with np.errstate(invalid="ignore", divide="ignore"):
                out[name].append(r2)
                err[name].append(d / var)
        var_all.append(var)
        dvar_all.append(dvar)
    method = (
        f"R² from region integrals: E[a], E[a²] from toylab.exact.analyze ({analysis.tier}); "
        f"E[f], E[f fᵀ], E[a f] by adaptive polygon quadrature over the "
        f"{part.num_regions} regions of the exact partition (rtol {rtol:g}, atol {atol:g}; "
        "error: first-order propagation of the quadrature's estimates)"
    )
    return (
        {n: np.concatenate(v) for n, v in out.items()},
        {n: np.concatenate(v) for n, v in err.items()},
        np.concatenate(var_all),
        np.concatenate(dvar_all),
        method,
    )


# ---------------------------------------------------------------------------- sampling


def _sampled_r2(
    net: Any, dist: Any, keys: Sequence[str], num_samples: int, num_batches: int, seed: int
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], np.ndarray, np.ndarray, str]:
    """R² of every unit from samples, with a batch-means interval (module docstring)."""
    import jax
    from scipy import stats

    batch = dist.sample(jax.random.key(seed), num_samples)
    x = np.asarray(batch.x, np.float64)
    _, dens, bnd = density_features(dist, x)
    f = np.concatenate([dens, bnd], axis=1)
    vals = net.forward(x)
    a = np.concatenate([np.asarray(vals[key], np.float64) for key in keys], axis=1)
    num_dens = dens.shape[1]

    def moments(sl: slice) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
        fs, as_ = f[sl], a[sl]
        fc, ac = fs - fs.mean(0), as_ - as_.mean(0)
        n = fs.shape[0]
        return _r2_all(ac.T @ fc / n, fc.T @ fc / n, np.sum(ac * ac, 0) / n, num_dens)

    whole = moments(slice(None))
    size = num_samples // num_batches
    parts = [moments(slice(b * size, (b + 1) * size)) for b in range(num_batches)]
    tq = float(stats.t.ppf(0.9995, num_batches - 1))
    out, err = {}, {}
    for name in _METRICS[:3]:
        per = np.stack([p[name][0] for p in parts])
        out[name] = whole[name][0]
        with np.errstate(invalid="ignore"):
            err[name] = tq * per.std(0, ddof=1) / math.sqrt(num_batches)
    var = a.var(0)
    method = (
        f"R² by Monte Carlo: {num_samples} samples (seed {seed}); error: half-width of a 99.9% "
        f"Student-t interval over {num_batches} batches (batch means)"
    )
    return out, err, var, np.zeros_like(var), method


# ---------------------------------------------------------------------------- zero sets


def _gl(n: int) -> tuple[np.ndarray, np.ndarray]:
    x, w = np.polynomial.legendre.leggauss(n)
    return 0.5 * (x + 1.0), 0.5 * w


_GL_LOW, _GL_HIGH = _gl(8), _gl(16)


def _line_columns(dist: Any, x: np.ndarray, normal: np.ndarray, step: float) -> np.ndarray:
    """Integrand columns along the zero set: ``p``, ``p |cos_B|``, ``p |cos_D|``,
    ``p |ℓ|``, ``p log p``, ``p (log p)^2``, and the two cosines with a 4x step."""
    n = x.shape[0]
    lj = np.asarray(dist.class_log_joint(x), np.float64)
    logp = np.logaddexp.reduce(lj, axis=-1)
    ok = np.isfinite(logp)
    order = np.argsort(-lj, axis=1)
    top, second = order[:, 0], order[:, 1]
    rows = np.arange(n)

    def ell(v: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            d = v[rows, top] - v[rows, second]
        return np.clip(np.nan_to_num(d, nan=0.0), -LOGIT_CAP, LOGIT_CAP)

    cols = []
    for h in (step, 4.0 * step):
        offsets = np.array([[h, 0.0], [-h, 0.0], [0.0, h], [0.0, -h]])
        shifted = (x[None, :, :] + offsets[:, None, :]).reshape(-1, 2)
        ljs = np.asarray(dist.class_log_joint(shifted), np.float64).reshape(4, n, -1)
        ls = np.stack([ell(v) for v in ljs])
        lps = np.logaddexp.reduce(ljs, axis=-1)
        with np.errstate(invalid="ignore"):
            g_ell = np.stack([ls[0] - ls[1], ls[2] - ls[3]], axis=1) / (2 * h)
            g_lp = np.stack([lps[0] - lps[1], lps[2] - lps[3]], axis=1) / (2 * h)
        for g in (g_ell, g_lp):
            norm = np.hypot(g[:, 0], g[:, 1])
            with np.errstate(invalid="ignore", divide="ignore"):
                c = np.abs(np.sum(g * normal, axis=1)) / norm
            cols.append(np.where(np.isfinite(c), c, 0.0))
    safe = np.where(ok, logp, 0.0)
    p = np.where(ok, np.exp(safe), 0.0)
    out = np.stack(
        [p, p * cols[0], p * cols[1], p * np.abs(ell(lj)), p * safe, p * safe * safe,
         p * cols[2], p * cols[3]], axis=1,
    )  # fmt: skip
    out[~ok] = 0.0
    return out


def _segment_quadrature(
    fn: Any, a: np.ndarray, b: np.ndarray, *, rtol: float, atol: float, max_depth: int = 20
) -> tuple[np.ndarray, np.ndarray]:
    """``∫_a^b fn ds`` for segments ``a, b (S, 2)``: ``(values (S, k), error estimates)``.

    ``fn(points (N, 2), normals (N, 2)) -> (N, k)``. Gauss–Legendre with 16 nodes
    against 8 per piece; pieces whose difference exceeds their share of
    ``max(atol, rtol |value|)`` are halved (at most ``max_depth`` times).
    """
    seg_len = np.hypot(*(b - a).T)
    normal = np.stack([-(b - a)[:, 1], (b - a)[:, 0]], axis=1) / seg_len[:, None]
    owner = np.arange(len(a))
    lo, hi = np.zeros(len(a)), np.ones(len(a))
    total: np.ndarray | None = None
    total_err: np.ndarray | None = None
    for depth in range(max_depth + 1):
        (xl, wl), (xh, wh) = _GL_LOW, _GL_HIGH
        t = np.concatenate([xl, xh])
        s = lo[:, None] + (hi - lo)[:, None] * t[None, :]  # (P, 24)
        pts = a[owner][:, None, :] + s[..., None] * (b - a)[owner][:, None, :]
        nrm = np.broadcast_to(normal[owner][:, None, :], pts.shape)
        f = fn(pts.reshape(-1, 2), nrm.reshape(-1, 2)).reshape(len(owner), len(t), -1)
        length = (seg_len[owner] * (hi - lo))[:, None]
        ql = np.einsum("ptk,t->pk", f[:, : len(xl)], wl) * length
        qh = np.einsum("ptk,t->pk", f[:, len(xl) :], wh) * length
        est = (
            np.abs(qh - ql)
            + 64 * _EPS * np.einsum("ptk,t->pk", np.abs(f[:, len(xl) :]), wh) * length
        )
        if total is None or total_err is None:
            total = np.zeros((len(a), qh.shape[1]))
            total_err = np.zeros_like(total)
        share = (hi - lo)[:, None]
        ok = np.all(est <= np.maximum(atol * share, rtol * np.abs(qh)), axis=1)
        if depth == max_depth:
            ok[:] = True
        np.add.at(total, owner[ok], qh[ok])
        np.add.at(total_err, owner[ok], est[ok])
        if np.all(ok):
            break
        mid = 0.5 * (lo + hi)[~ok]
        owner = np.repeat(owner[~ok], 2)
        lo, hi = (np.stack([lo[~ok], mid], 1).reshape(-1), np.stack([mid, hi[~ok]], 1).reshape(-1))
    assert total is not None and total_err is not None
    return total, total_err


def _zero_set_scores(
    dist: Any, part: Any, units: Sequence[tuple[str, int]], rtol: float, atol: float
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], str]:
    """Zero-set alignment of every unit (module docstring, (b))."""
    from toylab.exact import level_set

    seg_a, seg_b, owner = [], [], []
    for u, (key, unit) in enumerate(units):
        for line in level_set(part, f"{key}.pre", unit, 0.0):
            a, b = line[:-1], line[1:]
            keep = np.hypot(*(b - a).T) > 0
            seg_a.append(a[keep])
            seg_b.append(b[keep])
            owner.append(np.full(int(keep.sum()), u))
    n = len(units)
    nan = np.full(n, np.nan)
    names = _METRICS[3:]
    out = {m: nan.copy() for m in names}
    err = {m: nan.copy() for m in names}
    out["zero_set_mass"] = np.zeros(n)
    err["zero_set_mass"] = np.zeros(n)
    dom = np.asarray(part.domain)
    step = 1e-5 * 0.5 * float(np.max(dom.max(0) - dom.min(0)))
    method = (
        "zero sets: exact segments of the support partition (toylab.exact.level_set); "
        "adaptive Gauss-Legendre along them (16 vs 8 nodes); gradients by central "
        f"differences of class_log_joint (step {step:.3g}, checked against 4x)"
    )
    if not seg_a or sum(len(s) for s in seg_a) == 0:
        return out, err, method
    a, b, own = np.concatenate(seg_a), np.concatenate(seg_b), np.concatenate(owner)
    vals, errs = _segment_quadrature(
        lambda x, nrm: _line_columns(dist, x, nrm, step), a, b, rtol=rtol, atol=atol
    )
    tot = np.zeros((n, vals.shape[1]))
    tot_err = np.zeros_like(tot)
    np.add.at(tot, own, vals)
    np.add.at(tot_err, own, errs)
    mass, dm = tot[:, 0], tot_err[:, 0]
    out["zero_set_mass"], err["zero_set_mass"] = mass, dm
    has = mass > 0
    with np.errstate(invalid="ignore", divide="ignore"):

        def ratio(col: int, extra: np.ndarray | float = 0.0) -> tuple[np.ndarray, np.ndarray]:
            r = tot[:, col] / mass
            e = (tot_err[:, col] + np.abs(r) * dm) / mass + extra
            return np.where(has, r, np.nan), np.where(has, e, np.nan)

        fd_b = np.abs(tot[:, 1] - tot[:, 6]) / mass
        fd_d = np.abs(tot[:, 2] - tot[:, 7]) / mass
        out["boundary_alignment"], err["boundary_alignment"] = ratio(1, fd_b)
        out["density_alignment"], err["density_alignment"] = ratio(2, fd_d)
        out["boundary_offset"], err["boundary_offset"] = ratio(3)
        m1, e1 = ratio(4)
        m2, e2 = ratio(5)
        var = np.maximum(m2 - m1 * m1, 0.0)
        sd = np.sqrt(var)
        out["level_spread"] = sd
        err["level_spread"] = np.where(
            sd > 0, (e2 + 2 * np.abs(m1) * e1) / (2 * np.where(sd > 0, sd, 1.0)),
            np.sqrt(e2 + 2 * np.abs(m1) * e1),
        )  # fmt: skip
    return out, err, method


# ---------------------------------------------------------------------------- result


@dataclasses.dataclass(frozen=True, eq=False)
class DensityResult:
    """Density-vs-boundary scores of every hidden unit of one network (module docstring).

    ``neurons`` are canonical addresses; every score is an ``(n,)`` array in
    ``scores[name]`` (names: ``r2_density``, ``r2_boundary``, ``r2_joint``,
    ``zero_set_mass``, ``boundary_alignment``, ``density_alignment``, ``boundary_offset``,
    ``level_spread``) with its error in ``errors[name]`` and its tier in ``tiers[name]``
    (``None`` where not computed: the zero-set scores of a smooth network).
    ``variance`` is ``Var(a)``; ``dead`` marks units whose variance is not above its
    error (their scores are ``nan``). ``tier`` is the weakest tier, ``error`` the largest
    error of a variance-explained score; ``method`` says how each part was computed.
    """

    neurons: tuple[str, ...]
    scores: dict[str, np.ndarray]
    errors: dict[str, np.ndarray]
    tiers: dict[str, Tier | None]
    variance: np.ndarray
    dead: np.ndarray
    density_features: tuple[str, ...]
    boundary_features: tuple[str, ...]
    tier: Tier
    error: float
    method: str
    threshold: float = 0.1
    min_explained: float = 0.5

    @property
    def unique_density(self) -> np.ndarray:
        """``R²(D ∪ B) - R²(B)``: what only the density explains."""
        return self.scores["r2_joint"] - self.scores["r2_boundary"]

    @property
    def unique_boundary(self) -> np.ndarray:
        """``R²(D ∪ B) - R²(D)``: what only the posterior explains."""
        return self.scores["r2_joint"] - self.scores["r2_density"]

    @property
    def shared(self) -> np.ndarray:
        """``R²(D) + R²(B) - R²(D ∪ B)``."""
        s = self.scores
        return s["r2_density"] + s["r2_boundary"] - s["r2_joint"]

    @property
    def preference(self) -> np.ndarray:
        """``r2_density - r2_boundary`` in ``[-1, 1]``: positive where the density explains
        more of the unit."""
        return self.scores["r2_density"] - self.scores["r2_boundary"]

    @property
    def labels(self) -> np.ndarray:
        """``"density"`` / ``"boundary"`` where the preference exceeds ``threshold`` (and
        its error) either way, ``"mixed"`` otherwise; ``"neither"`` where both families
        together explain less than ``min_explained`` of the variance; ``"dead"`` for dead
        units."""
        pref = self.preference
        e = self.errors["r2_density"] + self.errors["r2_boundary"]
        margin = self.threshold + np.nan_to_num(e, nan=np.inf)
        out = np.where(pref > margin, "density", np.where(pref < -margin, "boundary", "mixed"))
        out = np.where(self.scores["r2_joint"] < self.min_explained, "neither", out)
        return np.where(self.dead, "dead", out)

    def rows(self) -> list[dict[str, Any]]:
        """One dict per unit: address, every score and its error, label."""
        labels = self.labels
        out = []
        for i, name in enumerate(self.neurons):
            row: dict[str, Any] = {"neuron": name}
            for m in _METRICS:
                row[m] = float(self.scores[m][i])
                row[f"{m}_error"] = float(self.errors[m][i])
            row["preference"] = float(self.preference[i])
            row["label"] = str(labels[i])
            out.append(row)
        return out

    def to_markdown(self) -> str:
        """A Markdown table of the scores (``value ± error``) with the tiers."""
        head = ["neuron", "R² density", "R² boundary", "R² both", "cos boundary",
                "cos density", "∫p ds", "label"]  # fmt: skip
        keys = ["r2_density", "r2_boundary", "r2_joint", "boundary_alignment",
                "density_alignment", "zero_set_mass"]  # fmt: skip
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        labels = self.labels
        for i, name in enumerate(self.neurons):
            cells = [name] + [_pm(self.scores[k][i], self.errors[k][i]) for k in keys]
            lines.append("| " + " | ".join([*cells, str(labels[i])]) + " |")
        tiers = ", ".join(f"{k}: {self.tiers[k]}" for k in ("r2_density", "boundary_alignment"))
        lines.append("")
        lines.append(f"Tiers: {tiers}. {self.method}")
        return "\n".join(lines)


def _same_analysis(analysis: Any, net: Any, dist: Any) -> bool:
    """Whether ``analysis`` is of ``net`` (same float64 layers) under ``dist``."""
    other = getattr(analysis, "network", None)
    if getattr(analysis, "dist", None) != dist or other is None:
        return False
    if tuple(other.activations) != tuple(net.activations):
        return False
    mine, theirs = net.dense_layers(), other.dense_layers()
    return len(mine) == len(theirs) and all(
        w1.shape == w2.shape and np.array_equal(w1, w2) and np.array_equal(b1, b2)
        for (w1, b1), (w2, b2) in zip(mine, theirs, strict=True)
    )


def _pm(v: float, e: float) -> str:
    if not np.isfinite(v):
        return "–"
    return f"{v:.3f} ± {e:.1e}" if np.isfinite(e) else f"{v:.3f}"


def density_scores(
    model: Any,
    dist: Any,
    *,
    method: str = "auto",
    num_samples: int = 200_000,
    num_batches: int = 20,
    seed: int = 0,
    rtol: float = 1e-5,
    atol: float = 1e-9,
    threshold: float = 0.1,
    min_explained: float = 0.5,
    analysis: Any = None,
) -> DensityResult:
    """Density-vs-boundary scores of every hidden unit of ``model`` under ``dist``.

    ``method``: ``"quadrature"`` (piecewise-linear networks: region integrals, tier
    ``estimated``), ``"sampled"`` (Monte Carlo with ``num_samples`` draws from key
    ``seed``, tier ``sampled``) or ``"auto"`` (quadrature where it applies). The
    zero-set scores are computed for every piecewise-linear network. ``rtol``/``atol``
    are the quadratures' tolerances; ``threshold`` the preference beyond which a unit is
    labelled density or boundary, ``min_explained`` the joint R² below which it is
    labelled neither (:attr:`DensityResult.labels`); ``analysis`` an existing
    :func:`toylab.exact.analyze` of the same network and distribution (else computed).
    See the module docstring for the math and what each tier means.
    """
    where = "density_scores"
    from toylab.network import as_network

    net = as_network(model, where).untied().numpy(np.float64)
    k = _check_dist(where, dist)
    method = check_choice(where, "method", method, ("auto", "quadrature", "sampled"))
    num_samples = check_int(where, "num_samples", num_samples, minimum=100)
    num_batches = check_int(where, "num_batches", num_batches, minimum=2)
    if num_samples // num_batches < 10:
        raise fail(where, "num_batches", num_batches, f"at most num_samples / 10 = "
                   f"{num_samples // 10}")  # fmt: skip
    seed = check_int(where, "seed", seed, minimum=0)
    rtol = check_float(where, "rtol", rtol, positive=True)
    atol = check_float(where, "atol", atol, positive=True)
    threshold = check_float(where, "threshold", threshold, minimum=0.0)
    min_explained = check_float(where, "min_explained", min_explained, minimum=0.0, maximum=1.0)
    if net.input_dim != 2:
        raise fail(where, "model", repr(net), "a network with 2 inputs")
    if net.num_hidden == 0:
        raise fail(where, "model", repr(net), "a network with at least one hidden layer")
    keys = [f"hidden_{i}" for i in range(net.num_hidden)]
    units = [(key, u) for key in keys for u in range(net.widths[key])]
    pl = net.piecewise_linear
    if method == "quadrature" and not pl:
        raise NotApplicable(
            f"{where}: method='quadrature' needs a piecewise-linear network (region "
            f"integrals), this one uses {sorted(set(net.hidden_activations))}. Use "
            "method='sampled'."
        )
    if pl and analysis is None:
        from toylab.exact import analyze

        analysis = analyze(net, dist)
    elif analysis is not None and not _same_analysis(analysis, net, dist):
        raise fail(
            where, "analysis", repr(analysis.network),
            f"toylab.exact.analyze of this model under this distribution ({net!r})",
            "Pass analysis=None to compute it.",
        )  # fmt: skip
    if method == "auto":
        method = "quadrature" if pl else "sampled"
    if method == "quadrature":
        r2, r2_err, var, dvar, m_r2 = _quadrature_r2(net, dist, analysis, keys, rtol, atol)
        r2_tier: Tier = weakest("estimated", analysis.tier)
    else:
        r2, r2_err, var, dvar, m_r2 = _sampled_r2(net, dist, keys, num_samples, num_batches, seed)
        r2_tier = "sampled"
    # a unit is dead when its variance is not resolved above its own error (and rounding)
    scale = np.array([float(np.max(np.abs(analysis.extrema(key).max), initial=0.0))
                      for key in keys]) if pl else np.zeros(len(keys))  # fmt: skip
    dead = var <= np.maximum(100 * dvar, 1e-24 * (1.0 + np.repeat(scale, [net.widths[k_]
                             for k_ in keys]) ** 2))  # fmt: skip
    for name in r2:
        r2[name] = np.where(dead, np.nan, np.clip(r2[name], 0.0, 1.0))
        r2_err[name] = np.where(dead, np.nan, r2_err[name])
    tiers: dict[str, Tier | None] = {name: r2_tier for name in _METRICS[:3]}
    if pl:
        zs, zs_err, m_zs = _zero_set_scores(dist, analysis.support, units, rtol, atol)
        for name in zs:
            tiers[name] = weakest("estimated", analysis.tier)
    else:
        zs = {name: np.full(len(units), np.nan) for name in _METRICS[3:]}
        zs_err = {name: np.full(len(units), np.nan) for name in _METRICS[3:]}
        m_zs = "zero sets: not computed (the network is not piecewise linear)"
        for name in zs:
            tiers[name] = None
    scores = {**r2, **zs}
    errors = {**r2_err, **zs_err}
    dens, bnd = feature_names(k)
    live = [t for t in tiers.values() if t is not None]
    err_all = np.concatenate([errors[n][~dead] for n in _METRICS[:3]])
    return DensityResult(
        neurons=tuple(f"{key}:{u}" for key, u in units),
        scores=scores,
        errors=errors,
        tiers=tiers,
        variance=var,
        dead=dead,
        density_features=dens,
        boundary_features=bnd,
        tier=weakest(*live),
        error=float(np.nanmax(err_all, initial=0.0)) if err_all.size else 0.0,
        method=f"{m_r2}; {m_zs}",
        threshold=threshold,
        min_explained=min_explained,
    )


# ---------------------------------------------------------------------------- study


def default_distributions() -> dict[str, Any]:
    """The study's default distributions: two blobs, two rings and two moons."""
    from toylab.distributions import NoisyCurve, Rings, two_blobs

    return {
        "two_blobs": two_blobs(),
        "rings": Rings(radii=(1.0, 2.5), widths=(0.3, 0.3)),
        "two_moons": NoisyCurve("two_moons", noise=0.2),
    }


@dataclasses.dataclass(frozen=True, eq=False)
class DensityStudyResult:
    """Scores of every hidden unit of every trained member, per setting.

    ``rows``: one dict per unit (``distribution``, ``width``, ``depth``, ``activation``,
    ``seed``, ``accuracy`` (the member's held-out accuracy from training: sampled),
    ``layer``, ``neuron``, every score and error,
    ``preference``, ``label``). ``results[((distribution, width, depth, activation),
    seed)]`` is each member's :class:`DensityResult`. :meth:`summary` aggregates per
    setting and layer; :meth:`to_markdown` prints it. ``tier`` is the weakest tier of
    every score; ``skipped`` the members left out because training diverged.
    """

    rows: tuple[dict[str, Any], ...]
    results: dict[tuple[tuple[str, int, int, str], int], DensityResult]
    tier: Tier
    method: str
    skipped: tuple[str, ...] = ()

    def summary(self) -> list[dict[str, Any]]:
        """Per ``(distribution, width, depth, activation, layer)``: live units, medians
        of the scores, and the fractions labelled density / boundary / mixed."""
        groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
        for r in self.rows:
            key = (r["distribution"], r["width"], r["depth"], r["activation"], r["layer"])
            groups.setdefault(key, []).append(r)
        out = []
        for key, rs in groups.items():
            live = [r for r in rs if r["label"] != "dead"]
            row: dict[str, Any] = dict(zip(
                ("distribution", "width", "depth", "activation", "layer"), key, strict=True
            ))  # fmt: skip
            row["units"] = len(rs)
            row["live"] = len(live)
            row["accuracy"] = float(np.mean([r["accuracy"] for r in rs]))
            for m in (*_METRICS, "preference"):
                v = np.array([r[m] for r in live], np.float64)
                v = v[np.isfinite(v)]
                row[m] = float(np.median(v)) if v.size else float("nan")
            for lab in ("density", "boundary", "mixed", "neither"):
                row[f"frac_{lab}"] = (
                    sum(r["label"] == lab for r in live) / len(live) if live else float("nan")
                )
            out.append(row)
        return out

    def to_markdown(self) -> str:
        """The summary as a Markdown table (medians over live units, label fractions)."""
        head = ["dist", "width", "depth", "act", "layer", "live/units", "acc", "R² D",
                "R² B", "R² D−B", "cos B", "cos D", "density", "boundary", "mixed", "neither"]  # fmt: skip
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for r in self.summary():
            uniq = r["r2_density"] - r["r2_boundary"]
            cells = [
                r["distribution"], str(r["width"]), str(r["depth"]), r["activation"],
                r["layer"], f"{r['live']}/{r['units']}", f"{r['accuracy']:.3f}",
                f"{r['r2_density']:.2f}", f"{r['r2_boundary']:.2f}", f"{uniq:+.2f}",
                f"{r['boundary_alignment']:.2f}", f"{r['density_alignment']:.2f}",
                f"{r['frac_density']:.2f}", f"{r['frac_boundary']:.2f}", f"{r['frac_mixed']:.2f}",
                f"{r['frac_neither']:.2f}",
            ]  # fmt: skip
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
        lines.append(
            f"Medians over live units; 'R² D−B' is the median R²(D) − median R²(B). Tier: "
            f"{self.tier}. {self.method}"
        )
        return "\n".join(lines)


def density_study(
    distributions: Mapping[str, Any] | None = None,
    *,
    widths: Sequence[int] = (8,),
    depths: Sequence[int] = (1, 2),
    activations: Sequence[str] = ("relu",),
    seeds: Sequence[int] = (0, 1, 2, 3),
    train_config: Any = None,
    method: str = "auto",
    threshold: float = 0.1,
    num_samples: int = 100_000,
) -> DensityStudyResult:
    """Train small ensembles and score every hidden unit (see the module docstring).

    For every distribution (default :func:`default_distributions`), width, depth
    (number of hidden layers) and activation, all ``seeds`` train as one ensemble with
    :func:`toylab.train.train` (``train_config``, default 1000 steps of Adam at 1e-2,
    batch 128), and every member is scored with :func:`density_scores` (``method``,
    ``threshold``, ``num_samples`` for sampled scores).
    """
    where = "density_study"
    from toylab.models import ModelConfig
    from toylab.network import as_network
    from toylab.train import TrainConfig, train

    dists = default_distributions() if distributions is None else dict(distributions)
    if not dists:
        raise fail(where, "distributions", distributions, "a non-empty mapping name -> dist")
    for name, d in dists.items():
        _check_dist(f"{where}: distributions[{name!r}]", d)
    for name, vals in (("widths", widths), ("depths", depths), ("seeds", seeds)):
        if not vals:
            raise fail(where, name, vals, "a non-empty sequence of integers")
    widths = [check_int(where, "widths", w, minimum=1) for w in widths]
    depths = [check_int(where, "depths", d, minimum=1) for d in depths]
    seeds = [check_int(where, "seeds", s, minimum=0) for s in seeds]
    if len(set(seeds)) != len(seeds):
        raise fail(where, "seeds", seeds, "distinct integers", "Remove the repeated seeds.")
    if not activations:
        raise fail(where, "activations", activations, "a non-empty sequence of names")
    cfg = TrainConfig(num_steps=1000, log_every=1000) if train_config is None else train_config
    if not isinstance(cfg, TrainConfig):
        raise fail(where, "train_config", cfg, "a toylab.train.TrainConfig or None")
    rows: list[dict[str, Any]] = []
    results: dict[tuple[tuple[str, int, int, str], int], DensityResult] = {}
    tiers: list[str] = []
    skipped: list[str] = []
    for dname, dist in dists.items():
        for width in widths:
            for depth in depths:
                for act in activations:
                    mc = ModelConfig(hidden=(width,) * depth, activation=act)
                    res = train(dist, mc, cfg, seeds)
                    acc = np.asarray(res.metrics[-1].get("accuracy", np.full(len(seeds), np.nan)))
                    diverged = res.ensemble.diverged_at(res.state)
                    setting = (dname, width, depth, act)
                    for m, seed in enumerate(seeds):
                        if diverged[m] >= 0:  # its parameters are not a trained network
                            skipped.append(f"{setting} seed {seed} (diverged at {diverged[m]})")
                            continue
                        net = as_network(res.model(m))
                        sc = density_scores(
                            net, dist, method=method, threshold=threshold,
                            num_samples=num_samples, seed=seed,
                        )  # fmt: skip
                        results[(setting, seed)] = sc
                        tiers.extend(t for t in sc.tiers.values() if t is not None)
                        for row in sc.rows():
                            rows.append({
                                "distribution": dname, "width": width, "depth": depth,
                                "activation": act, "seed": seed, "accuracy": float(acc[m]),
                                "layer": row["neuron"].split(":")[0], **row,
                            })  # fmt: skip
    return DensityStudyResult(
        rows=tuple(rows),
        results=results,
        tier=weakest(*tiers),
        method=(
            f"{len(results)} members trained with toylab.train.train ({cfg.num_steps} steps, "
            f"{cfg.optimizer} at {cfg.learning_rate:g}); scores by density_scores "
            f"(method={method!r})"
            + (f"; skipped (diverged): {', '.join(skipped)}" if skipped else "")
        ),
        skipped=tuple(skipped),
    )
