r"""Representation similarity of two layers, from exact second moments where they exist.

Two representations ``a`` (``d_a`` units) and ``b`` (``d_b`` units) of the same input
``x ~ dist`` -- two networks' layers, or two layers of one network -- are compared
through their population covariances :math:`\Sigma_{aa} = \mathrm{Cov}(a)`,
:math:`\Sigma_{bb}` and the cross covariance :math:`\Sigma_{ab} = E[a b^\top] - E[a]E[b]^\top`.
All measures below are the *population* forms: a data matrix ``A`` of ``n`` centred
rows with weights ``p`` (``A^T diag(p) A = Σ_aa``) is one distribution among others.

* **linear CKA** (Kornblith et al. 2019, centred):
  :math:`\mathrm{CKA} = \|\Sigma_{ab}\|_F^2 / (\|\Sigma_{aa}\|_F \|\Sigma_{bb}\|_F)`
  in ``[0, 1]``; invariant to orthogonal transforms and isotropic scaling of either
  representation, *not* to general invertible linear maps.
* **CCA**: the canonical correlations :math:`\rho_i` are the singular values of
  :math:`\Sigma_{aa}^{-1/2}\Sigma_{ab}\Sigma_{bb}^{-1/2}`; the score is their mean over
  :math:`\min(r_a, r_b)` directions (``r``: the retained ranks). Rank deficiency (dead or
  duplicate units, a layer wider than its input can span) is handled by an **eigenvalue
  cut**: eigen-directions of :math:`\Sigma_{aa}` with eigenvalue at most
  ``cut * λ_max`` are dropped before whitening (and, on the exact path, those at most
  four times the Weyl bound of the moments' own error, so that rounding noise is never
  whitened into a direction). The result is the exact value *of that truncated
  quantity*; invariant to invertible linear maps of either representation.
* **SVCCA** (Raghu et al. 2017): keep the fewest top principal directions of each
  representation (eigenvectors of :math:`\Sigma_{aa}`: the right singular vectors of
  the centred data matrix) whose variance is at least ``keep`` of the total, then CCA
  on them.
* **orthogonal Procrustes** (Ding et al. 2021), on centred representations normalised
  to unit Frobenius norm: :math:`\min_Q \|A/\|A\|_F - B Q/\|B\|_F\|_F^2 = 2 - 2
  \|\Sigma_{ab}\|_* / \sqrt{\mathrm{tr}\,\Sigma_{aa}\,\mathrm{tr}\,\Sigma_{bb}}`
  (``Q`` with orthonormal columns, ``‖·‖_*`` the nuclear norm): a squared distance in
  ``[0, 2]``, 0 iff the representations agree up to rotation and scale.
* **RBF CKA**: CKA with Gaussian kernels :math:`k(a, a') = \exp(-\|a - a'\|^2 /
  2\sigma_a^2)`, the bandwidth a fixed multiple of the representation's spread,
  :math:`\sigma_a^2 = \beta^2\,\mathrm{tr}\,\Sigma_{aa} = \beta^2 E\|a - a'\|^2 / 2`
  (``bandwidth`` ``β``; a moment-defined bandwidth keeps the invariance to rotation and
  isotropic scaling, unlike a fraction of the sample median distance). It does not
  follow from second moments: with probabilities ``p`` the population HSIC is
  :math:`\sum_{ij} p_i p_j K_{ij} L_{ij} - 2 \sum_i p_i (Kp)_i (Lp)_i + (p^\top K p)
  (p^\top L p)` and CKA is :math:`\mathrm{HSIC}(K, L) / \sqrt{\mathrm{HSIC}(K, K)
  \mathrm{HSIC}(L, L)}`, computed exactly by enumeration on finite tasks (in row
  chunks, never holding the ``N x N`` kernel) and sampled otherwise.

**Where the moments come from** (:func:`representation_similarity`):

* *2-D distributions*: the two networks, each cut after its compared layer, are stacked
  into one joint network (:func:`toylab.circuits.joint_network`) and analysed by
  :func:`toylab.exact.analyze`; the joint output's second moments hold ``E[a b^T]`` as a
  block. Tier ``"exact"`` on Gaussian mixtures (closed forms), ``"estimated"`` for
  densities integrated by quadrature (``analysis.tier`` says which);
* *finite tasks*: both networks on every input in float64
  (:func:`toylab.exact.finite_table`), the moments as ``p``-weighted sums; tier
  ``"exact"``. Any depths and activations compare;
* otherwise (more than two input dimensions, smooth activations on the plane; or
  ``method="sampled"``): ``num_samples`` draws with ``key``, every measure the plug-in
  value on the sample, tier ``"sampled"``, ``error`` the half-width of a **bootstrap
  percentile interval** (``num_bootstrap`` multinomial reweightings of the sample, the
  same weights for every measure) widened to be symmetric about the value. RBF CKA's
  replicates keep the kernels at the sample's bandwidths (matrix products with the
  weights, one pass over the kernels) and add the bandwidths' own bootstrap variation to
  first order (central differences of CKA in each bandwidth). Plug-in CKA is biased by
  ``O(1/n)``, well inside the interval's ``O(1/\sqrt{n})`` for the sample sizes here.

**Errors of exact values.** ``error`` propagates the analysis' absolute error ``e`` of
every moment (``|ΔΣ_ij| <= e (1 + |E a_i| + |E b_j|) + e^2``) through each measure:
an interval enclosure for linear CKA and Procrustes (``|Δ‖M‖_*| <= \sqrt{r}\,\|ΔM\|_F``);
a first-order bound for CCA and SVCCA (Weyl on the whitened matrix; the Fréchet
derivative of :math:`t^{-1/2}` bounded over the retained spectrum widened by the
moments' error; the motion of the retained subspace is not included), capped at the
whole range 1, which it is also set to when an eigenvalue lies within the moments' error
of the cut (the retained set is then not determined by the moments). A layer without
variance makes every measure ``nan`` (``method`` says so).

:func:`similarity_matrix` compares every member of an ensemble (a list of models or a
:class:`toylab.runs.Run`) with a reference member, or all pairs: on finite tasks every
member's table is computed once and all cross covariances come from one ``einsum``
(linear CKA and its bounds for every pair at once); on the plane each pair is one joint
analysis.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from toylab._errors import NotApplicable, ToylabError, fail
from toylab._validate import check_choice, check_float, check_int
from toylab.circuits.distance import _cut, joint_network
from toylab.distributions.base import FiniteDomain
from toylab.exact import analyze, finite_table
from toylab.network import Network, as_network
from toylab.tiers import Tier, weakest

__all__ = [
    "MEASURES",
    "SimilarityMatrix",
    "SimilarityResult",
    "SimilarityValue",
    "canonical_correlations",
    "cca",
    "covariances",
    "linear_cka",
    "procrustes",
    "rbf_cka",
    "representation_similarity",
    "similarity_matrix",
    "svcca",
]

_EPS = float(np.finfo(np.float64).eps)
#: every measure :func:`representation_similarity` computes; the first four need only
#: second moments
MEASURES: tuple[str, ...] = ("linear_cka", "cca", "svcca", "procrustes", "rbf_cka")
_MOMENT_MEASURES = MEASURES[:4]


# --------------------------------------------------------------------------- pure measures


def _cov_triple(
    where: str, cov_aa: Any, cov_ab: Any, cov_bb: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    aa, ab, bb = (np.asarray(c, np.float64) for c in (cov_aa, cov_ab, cov_bb))
    if aa.ndim < 2 or aa.shape[-1] != aa.shape[-2]:
        raise fail(where, "cov_aa", f"an array of shape {aa.shape}", "a square (d_a, d_a) matrix")
    if bb.ndim < 2 or bb.shape[-1] != bb.shape[-2]:
        raise fail(where, "cov_bb", f"an array of shape {bb.shape}", "a square (d_b, d_b) matrix")
    if ab.shape[-2:] != (aa.shape[-1], bb.shape[-1]):
        raise fail(
            where, "cov_ab", f"an array of shape {ab.shape}",
            f"of shape (d_a, d_b) = ({aa.shape[-1]}, {bb.shape[-1]})",
        )  # fmt: skip
    for name, c in (("cov_aa", aa), ("cov_ab", ab), ("cov_bb", bb)):
        if not np.all(np.isfinite(c)):
            raise fail(where, name, "an array with non-finite entries", "finite")
    return aa, ab, bb


def covariances(values_a: Any, values_b: Any, probs: Any = None) -> tuple[np.ndarray, ...]:
    r"""``(Σ_aa, Σ_ab, Σ_bb)`` of representations given row by row (float64).

    ``values_a`` ``(n, d_a)`` and ``values_b`` ``(n, d_b)`` hold the two representations
    of the same ``n`` inputs; ``probs`` ``(n,)`` their probabilities (default uniform,
    normalised to sum 1): the population covariances of that discrete distribution,
    :math:`\Sigma_{ab} = A_c^\top \mathrm{diag}(p) B_c` with centred rows.
    """
    where = "covariances"
    a, b = np.asarray(values_a, np.float64), np.asarray(values_b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[0] != b.shape[0] or a.shape[0] == 0:
        raise fail(
            where, "values_b", f"arrays of shapes {a.shape} and {b.shape}",
            "two 2-D arrays with the same (non-zero) number of rows",
        )  # fmt: skip
    p = _probs(where, probs, a.shape[0])
    ac, bc = _centred(a, p), _centred(b, p)
    return (ac * p[:, None]).T @ ac, (ac * p[:, None]).T @ bc, (bc * p[:, None]).T @ bc


def _centred(v: np.ndarray, p: np.ndarray) -> np.ndarray:
    """``v - E_p v``, with constant columns exactly 0 (no rounding noise for dead units)."""
    out = v - p @ v
    out[:, np.ptp(v, axis=0) == 0] = 0.0
    return out


def _probs(where: str, probs: Any, n: int) -> np.ndarray:
    if probs is None:
        return np.full(n, 1.0 / n)
    p = np.asarray(probs, np.float64)
    if p.shape != (n,) or not np.all(np.isfinite(p)) or np.any(p < 0) or not p.sum() > 0:
        raise fail(where, "probs", f"an array of shape {p.shape}",
                   f"({n},) non-negative finite weights with a positive sum")  # fmt: skip
    return p / p.sum()


def linear_cka(cov_aa: Any, cov_ab: Any, cov_bb: Any) -> Any:
    r"""Linear CKA :math:`\|\Sigma_{ab}\|_F^2 / (\|\Sigma_{aa}\|_F \|\Sigma_{bb}\|_F)`.

    Leading axes broadcast (a stack of covariance triples gives a stack of values);
    ``nan`` where a representation has no variance.

    >>> import numpy as np
    >>> c = np.diag([2.0, 1.0])
    >>> float(linear_cka(c, c, c))
    1.0
    """
    aa, ab, bb = _cov_triple("linear_cka", cov_aa, cov_ab, cov_bb)
    num = (ab**2).sum((-2, -1))
    den = np.sqrt((aa**2).sum((-2, -1)) * (bb**2).sum((-2, -1)))
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
    return float(out) if out.ndim == 0 else out


def _whitener(cov: np.ndarray, cut: float, floor: float) -> tuple[np.ndarray, np.ndarray, bool]:
    """``(W, λ)`` with ``W^T Σ W = I`` on the retained eigen-directions of ``Σ``; and
    whether an eigenvalue lies within ``floor / 4`` (the Weyl bound) of the threshold."""
    lam, vec = np.linalg.eigh(0.5 * (cov + cov.T))
    top = float(lam[-1]) if lam.size else 0.0
    thr = max(cut * max(top, 0.0), floor)
    keep = lam > thr
    weyl = floor / 4
    ambiguous = bool(weyl > 0 and np.any(np.abs(lam - thr) <= weyl))
    return vec[:, keep] / np.sqrt(lam[keep]), lam[keep], ambiguous


def canonical_correlations(
    cov_aa: Any, cov_ab: Any, cov_bb: Any, *, cut: float = 1e-10
) -> np.ndarray:
    r"""The canonical correlations, descending: singular values of
    :math:`\Sigma_{aa}^{-1/2}\Sigma_{ab}\Sigma_{bb}^{-1/2}` on the eigen-directions kept
    by the relative eigenvalue ``cut`` (module docstring); ``min(r_a, r_b)`` values in
    ``[0, 1]`` (empty if a representation has no variance)."""
    aa, ab, bb = _cov_triple("canonical_correlations", cov_aa, cov_ab, cov_bb)
    cut = check_float("canonical_correlations", "cut", cut, nonneg=True, maximum=1.0)
    return _canonical(aa, ab, bb, cut, 0.0)[0]


def _canonical(
    aa: np.ndarray, ab: np.ndarray, bb: np.ndarray, cut: float, floor: float
) -> tuple[np.ndarray, bool, np.ndarray, np.ndarray]:
    wa, la, amb_a = _whitener(aa, cut, floor)
    wb, lb, amb_b = _whitener(bb, cut, floor)
    if wa.shape[1] == 0 or wb.shape[1] == 0:
        return np.zeros(0), amb_a or amb_b, la, lb
    rho = np.linalg.svd(wa.T @ ab @ wb, compute_uv=False)
    return np.clip(rho, 0.0, 1.0), amb_a or amb_b, la, lb


def cca(cov_aa: Any, cov_ab: Any, cov_bb: Any, *, cut: float = 1e-10) -> float:
    """Mean canonical correlation (:func:`canonical_correlations`); ``nan`` without variance.

    >>> import numpy as np
    >>> c = np.diag([2.0, 1.0])
    >>> cca(c, 3 * c, 9 * c)
    1.0
    """
    rho = canonical_correlations(cov_aa, cov_ab, cov_bb, cut=cut)
    return float(rho.mean()) if rho.size else float("nan")


def _principal(cov: np.ndarray, keep: float) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvectors and eigenvalues of the fewest top directions holding ``keep`` of the
    variance (descending)."""
    lam, vec = np.linalg.eigh(0.5 * (cov + cov.T))
    lam, vec = np.clip(lam[::-1], 0.0, None), vec[:, ::-1]
    total = lam.sum()
    if not total > 0:
        return vec[:, :0], lam[:0]
    k = int(np.searchsorted(np.cumsum(lam) / total, keep * (1 - 4 * _EPS))) + 1
    k = min(k, len(lam))
    return vec[:, :k], lam[:k]


def svcca(
    cov_aa: Any, cov_ab: Any, cov_bb: Any, *, keep: float = 0.99, cut: float = 1e-10
) -> float:
    """SVCCA: CCA (mean canonical correlation) on the fewest top principal directions of
    each representation that keep a fraction ``keep`` of its variance."""
    aa, ab, bb = _cov_triple("svcca", cov_aa, cov_ab, cov_bb)
    keep = check_float("svcca", "keep", keep, positive=True, maximum=1.0)
    cut = check_float("svcca", "cut", cut, nonneg=True, maximum=1.0)
    return _svcca(aa, ab, bb, keep, cut, 0.0)[0]


def _svcca(
    aa: np.ndarray, ab: np.ndarray, bb: np.ndarray, keep: float, cut: float, floor: float
) -> tuple[float, bool, np.ndarray, np.ndarray]:
    ua, la = _principal(aa, keep)
    ub, lb = _principal(bb, keep)
    rho, amb, ra, rb = _canonical(np.diag(la), ua.T @ ab @ ub, np.diag(lb), cut, floor)
    return (float(rho.mean()) if rho.size else float("nan")), amb, ra, rb


def procrustes(cov_aa: Any, cov_ab: Any, cov_bb: Any) -> Any:
    r"""Squared orthogonal Procrustes distance of the centred, normalised representations,
    :math:`2 - 2\|\Sigma_{ab}\|_* / \sqrt{\mathrm{tr}\Sigma_{aa}\,\mathrm{tr}\Sigma_{bb}}`
    in ``[0, 2]`` (module docstring); leading axes broadcast; ``nan`` without variance.

    >>> import numpy as np
    >>> c = np.diag([2.0, 1.0])
    >>> round(float(procrustes(c, c, c)), 12)
    0.0
    """
    aa, ab, bb = _cov_triple("procrustes", cov_aa, cov_ab, cov_bb)
    nuc = np.linalg.svd(ab, compute_uv=False).sum(-1)
    den = np.sqrt(np.clip(np.trace(aa, axis1=-2, axis2=-1), 0, None)
                  * np.clip(np.trace(bb, axis1=-2, axis2=-1), 0, None))  # fmt: skip
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(den > 0, np.clip(2.0 - 2.0 * nuc / np.where(den > 0, den, 1.0), 0, 2),
                       np.nan)  # fmt: skip
    return float(out) if out.ndim == 0 else out


def rbf_cka(
    values_a: Any,
    values_b: Any,
    probs: Any = None,
    *,
    bandwidth: float = 1.0,
    chunk_size: int = 2048,
) -> float:
    r"""CKA with RBF kernels of a discrete distribution over rows (module docstring).

    ``values_a`` ``(n, d_a)``, ``values_b`` ``(n, d_b)``, ``probs`` ``(n,)`` (default
    uniform); ``σ_a^2 = bandwidth^2 tr Σ_aa``. Exact by enumeration of all pairs of rows,
    ``chunk_size`` rows at a time (memory ``O(chunk_size * n)``); ``nan`` without
    variance.
    """
    where = "rbf_cka"
    a, b = np.asarray(values_a, np.float64), np.asarray(values_b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[0] != b.shape[0] or a.shape[0] == 0:
        raise fail(where, "values_b", f"arrays of shapes {a.shape} and {b.shape}",
                   "two 2-D arrays with the same (non-zero) number of rows")  # fmt: skip
    p = _probs(where, probs, a.shape[0])
    beta = check_float(where, "bandwidth", bandwidth, positive=True)
    chunk = check_int(where, "chunk_size", chunk_size, minimum=1)
    return float(_rbf_hsic(a, b, p[None], beta, chunk)[0])


def _rbf_hsic(a: np.ndarray, b: np.ndarray, w: np.ndarray, beta: float, chunk: int) -> np.ndarray:
    """RBF CKA under each row of weights ``w`` ``(R, n)`` (rows summing to 1), each row
    with its own bandwidths ``σ^2 = β^2 tr Σ`` (one pass over the kernels per row)."""
    sa, sb = _bandwidths(a, w, beta), _bandwidths(b, w, beta)
    return np.concatenate([_rbf_fixed(a, b, w[i : i + 1], sa[i], sb[i], chunk)
                           for i in range(w.shape[0])])  # fmt: skip


def _bandwidths(a: np.ndarray, w: np.ndarray, beta: float) -> np.ndarray:
    """``2σ^2 = 2β^2 tr Σ`` under each row of weights (``nan`` without variance)."""
    a = a - a.mean(0)
    var = w @ (a * a).sum(1) - ((w @ a) ** 2).sum(1)
    return np.where(var > 0, 2 * beta**2 * np.where(var > 0, var, 1.0), np.nan)


def _rbf_fixed(
    a: np.ndarray, b: np.ndarray, w: np.ndarray, sa: float, sb: float, chunk: int
) -> np.ndarray:
    """RBF CKA with the kernels ``exp(-|a - a'|^2 / sa)``, ``exp(-|b - b'|^2 / sb)`` held
    fixed, under each row of weights ``w`` ``(R, n)``: one pass over the kernel rows,
    ``chunk`` at a time, and five matrix products with ``w``."""
    r, n = w.shape
    if not (math.isfinite(sa) and math.isfinite(sb)):
        return np.full(r, np.nan)
    a, b = a - a.mean(0), b - b.mean(0)
    na, nb = (a * a).sum(1), (b * b).sum(1)
    kp, lp = np.zeros((r, n)), np.zeros((r, n))
    kl, kk, ll = np.zeros(r), np.zeros(r), np.zeros(r)
    wt = np.ascontiguousarray(w.T)
    for s in range(0, n, chunk):
        sl = slice(s, s + chunk)
        k = np.exp(-np.clip(na[sl, None] + na[None] - 2 * a[sl] @ a.T, 0, None) / sa)
        lm = np.exp(-np.clip(nb[sl, None] + nb[None] - 2 * b[sl] @ b.T, 0, None) / sb)
        ws = w[:, sl]
        kp[:, sl], lp[:, sl] = (k @ wt).T, (lm @ wt).T
        kl += (ws * ((k * lm) @ wt).T).sum(1)
        kk += (ws * ((k * k) @ wt).T).sum(1)
        ll += (ws * ((lm * lm) @ wt).T).sum(1)
    ek, el = (w * kp).sum(1), (w * lp).sum(1)
    h_kl = kl - 2 * (w * kp * lp).sum(1) + ek * el
    h_kk = kk - 2 * (w * kp * kp).sum(1) + ek * ek
    h_ll = ll - 2 * (w * lp * lp).sum(1) + el * el
    den = np.sqrt(np.clip(h_kk, 0, None) * np.clip(h_ll, 0, None))
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(den > 0, h_kl / np.where(den > 0, den, 1.0), np.nan)
    return np.clip(out, 0.0, 1.0)


def _rbf_bootstrap(
    a: np.ndarray, b: np.ndarray, w: np.ndarray, beta: float, chunk: int, h: float = 1e-3
) -> np.ndarray:
    """RBF CKA of the sample (row 0 of ``w``: uniform) and of its bootstrap reweightings:
    the kernels at the sample's bandwidths, plus the bandwidths' own bootstrap variation
    to first order (central differences of CKA in each bandwidth, relative step ``h``)."""
    sa, sb = _bandwidths(a, w, beta), _bandwidths(b, w, beta)
    sa0, sb0 = float(sa[0]), float(sb[0])
    base = _rbf_fixed(a, b, w, sa0, sb0, chunk)
    if not np.isfinite(base[0]):
        return base
    u = w[:1]
    ga = (_rbf_fixed(a, b, u, sa0 * (1 + h), sb0, chunk)
          - _rbf_fixed(a, b, u, sa0 * (1 - h), sb0, chunk)) / (2 * h * sa0)  # fmt: skip
    gb = (_rbf_fixed(a, b, u, sa0, sb0 * (1 + h), chunk)
          - _rbf_fixed(a, b, u, sa0, sb0 * (1 - h), chunk)) / (2 * h * sb0)  # fmt: skip
    return base + ga * (sa - sa0) + gb * (sb - sb0)


# --------------------------------------------------------------------------- error propagation


def _entry_error(mean: np.ndarray, e: float) -> np.ndarray:
    """Bound on ``|ΔΣ_ij|`` from moments with absolute error ``e`` (module docstring)."""
    m = np.abs(mean)
    return e * (1.0 + m[:, None] + m[None]) + e * e


def _ratio_error(v: Any, num: Any, dnum: Any, den: Any, dden: Any) -> Any:
    """Half-width of an enclosure of ``num / den`` around ``v`` (``den`` > 0; arrays
    broadcast)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        lo = np.maximum(num - dnum, 0.0) / (den + dden)
        hi = np.where(den > dden, (num + dnum) / np.where(den > dden, den - dden, 1.0), np.inf)
    return np.maximum(v - lo, hi - v)


def _cka_error(v: Any, n_ab: Any, f_ab: Any, n_aa: Any, f_aa: Any, n_bb: Any, f_bb: Any,
               rnd: float) -> Any:  # fmt: skip
    """Enclosure half-width of linear CKA from the Frobenius norms ``n_*`` of the blocks
    and ``f_*`` of their error bounds (plus ``rnd``, at most 1); arrays broadcast."""
    dden = n_aa * f_bb + f_aa * n_bb + f_aa * f_bb
    err = _ratio_error(v, n_ab**2, 2 * n_ab * f_ab + f_ab**2, n_aa * n_bb, dden)
    return np.minimum(err + rnd, 1.0)


def _exact_errors(
    aa: np.ndarray, ab: np.ndarray, bb: np.ndarray, delta: np.ndarray, values: dict[str, float],
    extras: dict[str, Any],
) -> dict[str, float]:  # fmt: skip
    """Error of each exact measure from the covariance entry bounds ``delta`` (joint order)."""
    da = aa.shape[0]
    d_aa, d_ab, d_bb = delta[:da, :da], delta[:da, da:], delta[da:, da:]
    f_aa, f_ab, f_bb = (float(np.linalg.norm(d)) for d in (d_aa, d_ab, d_bb))
    rnd = 16 * (aa.shape[0] + bb.shape[0]) * _EPS  # the measure's own float64 evaluation
    out: dict[str, float] = {}
    for name, v in values.items():
        if not math.isfinite(v):
            out[name] = math.nan
        elif name == "linear_cka":
            norms = (float(np.linalg.norm(c)) for c in (ab, aa, bb))
            n_ab, n_aa, n_bb = norms
            out[name] = float(_cka_error(v, n_ab, f_ab, n_aa, f_aa, n_bb, f_bb, rnd))
        elif name == "procrustes":
            nuc = float(np.linalg.svd(ab, compute_uv=False).sum())
            ta, tb = float(np.trace(aa)), float(np.trace(bb))
            dta, dtb = float(np.trace(d_aa)), float(np.trace(d_bb))
            t = 1.0 - v / 2.0
            dnuc = math.sqrt(min(ab.shape)) * f_ab
            lo_den = (ta - dta) * (tb - dtb) if ta > dta and tb > dtb else 0.0
            hi_t = (nuc + dnuc) / math.sqrt(lo_den) if lo_den > 0 else math.inf
            lo_t = max(nuc - dnuc, 0.0) / math.sqrt((ta + dta) * (tb + dtb))
            out[name] = min(2.0 * max(t - lo_t, hi_t - t) + rnd, 2.0)
        elif name in ("cca", "svcca"):
            ambiguous, la, lb = extras[name]
            if ambiguous:
                out[name] = 1.0
                continue
            if la.size == 0 or lb.size == 0:
                out[name] = math.nan
                continue
            # the smallest retained eigenvalues as low as the moments' error can push them
            # (Weyl), so the derivative of t^(-1/2) is bounded over the whole perturbation
            amin, bmin = la.min() - f_aa, lb.min() - f_bb
            amax, bmax = la.max() + f_aa, lb.max() + f_bb
            if amin <= 0 or bmin <= 0:
                out[name] = 1.0
                continue
            err = (f_ab / math.sqrt(amin * bmin) + f_aa * math.sqrt(amax) / (2 * amin**1.5)
                   + f_bb * math.sqrt(bmax) / (2 * bmin**1.5))  # fmt: skip
            out[name] = min(float(err) + rnd, 1.0)
        else:  # rbf_cka: filled in by the caller
            out[name] = math.nan
    return out


def _svcca_ambiguous(cov: np.ndarray, keep: float, f: float) -> bool:
    """Whether a perturbation of Frobenius norm ``f`` can change SVCCA's retained set."""
    if f <= 0:
        return False
    lam = np.clip(np.linalg.eigvalsh(0.5 * (cov + cov.T))[::-1], 0.0, None)
    total = lam.sum()
    if not total > 0:
        return False
    k = len(_principal(cov, keep)[1])
    frac = np.cumsum(lam) / total
    slack = 2 * math.sqrt(len(lam)) * f / total
    near = bool(np.any(np.abs(frac[:-1] - keep) <= slack))
    gap = bool(k < len(lam) and lam[k - 1] - lam[k] <= 2 * f)
    return near or gap


def _moment_measures(
    aa: np.ndarray, ab: np.ndarray, bb: np.ndarray, measures: Sequence[str], keep: float,
    cut: float, floor: float,
) -> tuple[dict[str, float], dict[str, Any], np.ndarray]:  # fmt: skip
    """Every requested moment measure; extras for the error bounds; the canonical
    correlations (empty unless ``cca`` was asked for)."""
    values: dict[str, float] = {}
    extras: dict[str, Any] = {}
    rho = np.zeros(0)
    for name in measures:
        if name == "linear_cka":
            values[name] = float(linear_cka(aa, ab, bb))
        elif name == "procrustes":
            values[name] = float(procrustes(aa, ab, bb))
        elif name == "cca":
            rho, amb, la, lb = _canonical(aa, ab, bb, cut, floor)
            values[name] = float(rho.mean()) if rho.size else math.nan
            extras[name] = (amb, la, lb)
        elif name == "svcca":
            v, amb, la, lb = _svcca(aa, ab, bb, keep, cut, floor)
            values[name] = v
            extras[name] = (amb, la, lb)
    return values, extras, rho


# --------------------------------------------------------------------------- results


@dataclasses.dataclass(frozen=True, eq=False)
class SimilarityValue:
    """One measure's value with how it was obtained.

    ``tier``: ``"exact"``/``"certified"``/``"estimated"`` (the moments' analysis) or
    ``"sampled"``; ``error``: the bound of the module docstring (exact paths) or the
    half-width of the bootstrap interval, widened to be symmetric about ``value``
    (``sampled``); ``interval``: the bootstrap percentile interval (``sampled`` only);
    ``method``: how the number was obtained.
    """

    value: float
    tier: Tier
    error: float
    method: str
    interval: tuple[float, float] | None = None

    def __str__(self) -> str:
        return f"{self.value:.6g} ± {self.error:.2g} [{self.tier}]"


@dataclasses.dataclass(frozen=True, eq=False)
class SimilarityResult:
    """Representation similarity of ``layer_a`` of one network and ``layer_b`` of another.

    ``measures[name]``: a :class:`SimilarityValue` per requested measure (names in
    :data:`MEASURES`; ``result["linear_cka"]`` is its value); ``canonical_correlations``:
    the descending canonical correlations behind ``"cca"`` (empty if not requested);
    ``tier``: the weakest over the measures; ``error``: the largest error; ``method``:
    where the moments came from; ``num_samples``: 0 for exact moments; ``dims``:
    ``(d_a, d_b)``.
    """

    layer_a: str
    layer_b: str
    measures: dict[str, SimilarityValue]
    canonical_correlations: np.ndarray
    tier: Tier
    error: float
    method: str
    num_samples: int = 0
    dims: tuple[int, int] = (0, 0)

    def __getitem__(self, name: str) -> float:
        if name not in self.measures:
            raise fail("SimilarityResult", "measure", name, f"one of {sorted(self.measures)}")
        return self.measures[name].value

    def __str__(self) -> str:
        rows = [f"{self.layer_a} vs {self.layer_b} ({self.method})"]
        rows += [f"  {k:>10}: {v}" for k, v in self.measures.items()]
        return "\n".join(rows)


# --------------------------------------------------------------------------- moments


def _float64(model: Any, where: str, name: str) -> Network:
    try:
        return as_network(model, where).untied().numpy(np.float64)
    except ToylabError:
        raise fail(
            where, name, type(model).__name__, "a toylab model or a toylab.network.Network"
        ) from None


def _check_layer(where: str, name: str, net: Network, layer: Any) -> str:
    keys = net.layer_keys()
    if not isinstance(layer, str) or layer not in keys:
        raise fail(where, name, layer, f"a layer key of {net!r}, one of {keys}",
                   "Compare whole layers ('hidden_0', 'hidden_0.pre', 'output').")  # fmt: skip
    return layer


def _is_finite(dist: Any) -> bool:
    return isinstance(getattr(dist, "domain", None), FiniteDomain)


def _finite_values(net: Network, dist: Any, layer: str) -> tuple[np.ndarray, float]:
    """Layer ``layer`` on every input of the finite domain, and the table's rounding bound."""
    res = finite_table(net, dist, keep_table=True)
    assert res.table is not None
    return res.table[layer], float(res.error)


def _finite_moments(
    va: np.ndarray, vb: np.ndarray, p: np.ndarray, err: float
) -> tuple[np.ndarray, np.ndarray, float]:
    """Joint mean and second moments of ``[a, b]`` under ``p``, and their error bound."""
    v = np.concatenate([va, vb], axis=1)
    mean = p @ v
    second = (v * p[:, None]).T @ v
    second = 0.5 * (second + second.T)
    # each p-weighted sum of n products: error <= n eps sum p |a_i b_j| (as finite_table)
    mag = float(np.max(p @ (np.abs(v) ** 2), initial=0.0))
    rounding = (len(p) + 4) * _EPS * max(mag, 1.0)
    return mean, second, max(err, rounding)


def _plane_moments(
    na: Network, nb: Network, la: str, lb: str, dist: Any, tol: float, rtol: float, where: str
) -> tuple[np.ndarray, np.ndarray, float, Tier, str, int]:
    """Exact joint moments of ``[a, b]`` from one analysis of the joint of the two cuts."""
    try:
        joint = joint_network(_cut(na, la), _cut(nb, lb), where=where)
    except ToylabError as err:
        raise NotApplicable(f"{where}: no joint network for exact moments ({err})") from None
    res = analyze(joint.network, dist, tol=tol, rtol=rtol)
    mom = res.moments["output"]
    cols = np.concatenate([joint.columns["a"]["output"], joint.columns["b"]["output"]])
    mean = np.asarray(mom.mean)[cols]
    second = np.asarray(mom.second_moment)[np.ix_(cols, cols)]
    method = f"exact moments of the joint network ({res.method})"
    return mean, second, float(res.error), res.tier, method, len(joint.columns["a"]["output"])


def _split(mean: np.ndarray, second: np.ndarray, da: int) -> tuple[np.ndarray, ...]:
    cov = second - np.outer(mean, mean)
    cov = 0.5 * (cov + cov.T)
    return cov[:da, :da], cov[:da, da:], cov[da:, da:]


# --------------------------------------------------------------------------- sampled


def _bootstrap_weights(rng: np.random.Generator, n: int, num_bootstrap: int) -> np.ndarray:
    """Row 0: the sample itself (uniform); rows 1..B: multinomial bootstrap reweightings."""
    w = rng.multinomial(n, np.full(n, 1.0 / n), size=num_bootstrap) / n
    return np.vstack([np.full((1, n), 1.0 / n), w])


def _weighted_covs(ra: np.ndarray, rb: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, ...]:
    """``(Σ_aa, Σ_ab, Σ_bb)`` under each row of weights ``w`` ``(R, n)``: ``(R, d, d)``."""
    v = _centred(np.concatenate([ra, rb], axis=1), np.full(len(ra), 1.0 / len(ra)))
    mean = w @ v
    d = v.shape[1]
    second = (w @ (v[:, :, None] * v[:, None, :]).reshape(len(v), d * d)).reshape(-1, d, d)
    cov = second - mean[:, :, None] * mean[:, None, :]
    da = ra.shape[1]
    return cov[:, :da, :da], cov[:, :da, da:], cov[:, da:, da:]


def _sampled_measures(
    ra: np.ndarray, rb: np.ndarray, w: np.ndarray, measures: Sequence[str], keep: float,
    cut: float, bandwidth: float, chunk: int,
) -> dict[str, np.ndarray]:  # fmt: skip
    """Each measure under each weighting (row 0 the plug-in value, then the replicates)."""
    aa, ab, bb = _weighted_covs(ra, rb, w)
    out: dict[str, np.ndarray] = {}
    for name in measures:
        if name == "linear_cka":
            out[name] = np.asarray(linear_cka(aa, ab, bb), np.float64)
        elif name == "procrustes":
            out[name] = np.asarray(procrustes(aa, ab, bb), np.float64)
        elif name == "cca":
            out[name] = np.array([
                (lambda r: r.mean() if r.size else np.nan)(_canonical(x, y, z, cut, 0.0)[0])
                for x, y, z in zip(aa, ab, bb, strict=True)
            ])  # fmt: skip
        elif name == "svcca":
            out[name] = np.array([_svcca(x, y, z, keep, cut, 0.0)[0]
                                  for x, y, z in zip(aa, ab, bb, strict=True)])  # fmt: skip
        elif name == "rbf_cka":
            out[name] = _rbf_bootstrap(ra, rb, w, bandwidth, chunk)
    return out


def _interval(reps: np.ndarray, confidence: float) -> tuple[float, float, float, float]:
    """``(value, error, low, high)`` from the plug-in value and the bootstrap replicates."""
    v = float(reps[0])
    boot = reps[1:][np.isfinite(reps[1:])]
    if not math.isfinite(v) or boot.size == 0:
        return v, math.nan, math.nan, math.nan
    lo, hi = np.quantile(boot, [(1 - confidence) / 2, (1 + confidence) / 2])
    return v, float(max(hi - v, v - lo, 0.0)), float(lo), float(hi)


def _sample_representations(
    nets: Sequence[Network], layers: Sequence[str], dist: Any, key: Any, num_samples: int,
    num_bootstrap: int, where: str,
) -> tuple[list[np.ndarray], np.ndarray]:  # fmt: skip
    """Every network's layer on one shared sample, and the bootstrap weights."""
    import jax

    from toylab.methods._core import check_key, numpy_rng

    key = check_key(where, key)
    k_sample, k_boot = jax.random.split(key)
    x = np.asarray(dist.sample(k_sample, num_samples).x, np.float64)
    pairs = zip(nets, layers, strict=True)
    reps = [np.asarray(net.forward(x)[layer], np.float64) for net, layer in pairs]
    return reps, _bootstrap_weights(numpy_rng(k_boot), num_samples, num_bootstrap)


# --------------------------------------------------------------------------- public API


def _check_measures(where: str, measures: Any) -> tuple[str, ...]:
    if isinstance(measures, str):
        measures = (measures,)
    out = tuple(measures)
    if not out:
        raise fail(where, "measures", measures, f"a non-empty list from {list(MEASURES)}")
    for m in out:
        check_choice(where, "measures", m, MEASURES)
    return tuple(dict.fromkeys(out))


def representation_similarity(
    model_a: Any,
    model_b: Any,
    dist: Any,
    *,
    layer_a: str = "hidden_0",
    layer_b: str | None = None,
    measures: Sequence[str] | str = _MOMENT_MEASURES,
    method: str = "auto",
    key: Any = None,
    num_samples: int | None = None,
    num_bootstrap: int = 200,
    confidence: float = 0.95,
    keep: float = 0.99,
    cut: float = 1e-10,
    bandwidth: float = 1.0,
    tol: float = 1e-9,
    rtol: float = 1e-7,
) -> SimilarityResult:
    """Similarity of ``model_a``'s ``layer_a`` and ``model_b``'s ``layer_b`` under ``dist``.

    ``layer_b`` defaults to ``layer_a``; pass the same model twice to compare two layers
    of one network. ``measures``: names from :data:`MEASURES`. ``method``: ``"auto"``
    (exact moments where :func:`toylab.exact.analyze` applies, else sampled if ``key``
    and ``num_samples`` are given, else :class:`~toylab.NotApplicable`), ``"exact"`` or
    ``"sampled"``. ``rbf_cka`` is exact on finite tasks and sampled otherwise (it needs
    ``key`` and ``num_samples`` there). ``num_bootstrap`` and ``confidence``: the
    bootstrap interval of sampled values; ``keep``: SVCCA's variance fraction; ``cut``:
    the relative eigenvalue cut of CCA and SVCCA; ``bandwidth``: RBF CKA's ``β``;
    ``tol``/``rtol``: passed to :func:`toylab.exact.analyze`. See the module docstring.
    """
    where = "representation_similarity"
    na, nb = _float64(model_a, where, "model_a"), _float64(model_b, where, "model_b")
    if na.input_dim != nb.input_dim:
        raise fail(where, "model_b", repr(nb), f"a network with {na.input_dim} inputs, like "
                   "model_a", "Both representations must be of the same inputs.")  # fmt: skip
    la = _check_layer(where, "layer_a", na, layer_a)
    lb = _check_layer(where, "layer_b", nb, la if layer_b is None else layer_b)
    names = _check_measures(where, measures)
    check_choice(where, "method", method, ("auto", "exact", "sampled"))
    keep = check_float(where, "keep", keep, positive=True, maximum=1.0)
    cut = check_float(where, "cut", cut, nonneg=True, maximum=1.0)
    beta = check_float(where, "bandwidth", bandwidth, positive=True)
    confidence = check_float(where, "confidence", confidence, positive=True, maximum=0.9999)
    num_bootstrap = check_int(where, "num_bootstrap", num_bootstrap, minimum=10)
    can_sample = key is not None and num_samples is not None
    finite = _is_finite(dist)
    if method != "sampled":
        try:
            return _exact_pair(na, nb, la, lb, dist, names, finite, keep, cut, beta, tol, rtol,
                               key, num_samples, num_bootstrap, confidence, where)  # fmt: skip
        except NotApplicable as err:
            if method == "exact" or not can_sample:
                raise NotApplicable(
                    f"{err} Pass num_samples=... and key=jax.random.key(...) for sampled "
                    "values (tier 'sampled', bootstrap interval)."
                ) from None
            why = str(err)
    else:
        why = "method='sampled'"
    if not can_sample:
        raise fail(where, "key", key, "a JAX PRNG key, with num_samples",
                   "Sampled similarity needs key=jax.random.key(...) and num_samples=.")  # fmt: skip
    n = check_int(where, "num_samples", num_samples, minimum=10)
    (ra, rb), w = _sample_representations((na, nb), (la, lb), dist, key, n, num_bootstrap, where)
    return _sampled_pair(ra, rb, w, la, lb, names, keep, cut, beta, confidence, why)


def _sampled_pair(
    ra: np.ndarray, rb: np.ndarray, w: np.ndarray, la: str, lb: str, names: Sequence[str],
    keep: float, cut: float, beta: float, confidence: float, why: str, chunk: int = 2048,
) -> SimilarityResult:  # fmt: skip
    reps = _sampled_measures(ra, rb, w, names, keep, cut, beta, chunk)
    n, b = w.shape[1], w.shape[0] - 1
    desc = (f"plug-in on {n} samples ({why}); error: half-width of the {confidence:.0%} "
            f"bootstrap percentile interval ({b} multinomial reweightings)")  # fmt: skip
    out: dict[str, SimilarityValue] = {}
    for name in names:
        v, e, lo, hi = _interval(reps[name], confidence)
        out[name] = SimilarityValue(v, "sampled", e, desc, (lo, hi))
    rho = np.zeros(0)
    if "cca" in names:
        aa, ab, bb = (c[0] for c in _weighted_covs(ra, rb, w[:1]))
        rho = _canonical(aa, ab, bb, cut, 0.0)[0]
    return _result(la, lb, out, rho, desc, n, (ra.shape[1], rb.shape[1]))


def _result(
    la: str, lb: str, out: dict[str, SimilarityValue], rho: np.ndarray, method: str,
    num_samples: int, dims: tuple[int, int],
) -> SimilarityResult:  # fmt: skip
    errs = [v.error for v in out.values() if math.isfinite(v.error)]
    return SimilarityResult(
        la, lb, out, rho, weakest(*(v.tier for v in out.values())), max(errs, default=0.0),
        method, num_samples, dims,
    )  # fmt: skip


def _exact_pair(
    na: Network, nb: Network, la: str, lb: str, dist: Any, names: Sequence[str], finite: bool,
    keep: float, cut: float, beta: float, tol: float, rtol: float, key: Any,
    num_samples: int | None, num_bootstrap: int, confidence: float, where: str,
) -> SimilarityResult:  # fmt: skip
    if finite:
        va, ea = _finite_values(na, dist, la)
        vb, eb = _finite_values(nb, dist, lb)
        p = np.asarray(dist.domain.probs, np.float64)
        mean, second, err = _finite_moments(va, vb, p, max(ea, eb))
        tier: Tier = "exact"
        method = f"exhaustive over all {len(p)} inputs of the finite domain (float64)"
        da = va.shape[1]
    else:
        if "rbf_cka" in names and (key is None or num_samples is None):
            raise NotApplicable(
                f"{where}: RBF CKA does not follow from second moments; it is exact only on "
                "finite tasks."
            )
        mean, second, err, tier, method, da = _plane_moments(na, nb, la, lb, dist, tol, rtol,
                                                             where)  # fmt: skip
    out, rho, dims = _from_moments(mean, second, err, da, tier, method, names, keep, cut)
    if "rbf_cka" in names:
        if finite:
            p = np.asarray(dist.domain.probs, np.float64)
            v = float(_rbf_hsic(va, vb, p[None], beta, 2048)[0])
            # N-term sums of kernel values in [0, 1] with weights summing to 1, three HSICs
            rnd = 16 * (len(p) + va.shape[1] + vb.shape[1]) * _EPS
            out["rbf_cka"] = SimilarityValue(v, "exact", rnd if math.isfinite(v) else math.nan,
                                             method + "; RBF CKA by enumeration of all pairs "
                                             "of inputs")  # fmt: skip
        else:
            assert num_samples is not None
            n = check_int(where, "num_samples", num_samples, minimum=10)
            (ra, rb), w = _sample_representations((na, nb), (la, lb), dist, key, n,
                                                  num_bootstrap, where)  # fmt: skip
            out["rbf_cka"] = _sampled_pair(ra, rb, w, la, lb, ("rbf_cka",), keep, cut, beta,
                                           confidence, "RBF CKA has no moment form").measures[
                                               "rbf_cka"]  # fmt: skip
    return _result(la, lb, out, rho, method, 0, dims)


def _from_moments(
    mean: np.ndarray, second: np.ndarray, err: float, da: int, tier: Tier, method: str,
    names: Sequence[str], keep: float, cut: float,
) -> tuple[dict[str, SimilarityValue], np.ndarray, tuple[int, int]]:  # fmt: skip
    """Every moment measure of ``[a, b]`` (joint mean and second moments with absolute
    error ``err``; ``a`` the first ``da`` entries) with its error bound."""
    aa, ab, bb = _split(mean, second, da)
    delta = _entry_error(mean, err)
    floor = 4 * float(np.linalg.norm(delta))
    moment_names = [m for m in names if m != "rbf_cka"]
    values, extras, rho = _moment_measures(aa, ab, bb, moment_names, keep, cut, floor)
    if "svcca" in extras:
        f_aa, f_bb = float(np.linalg.norm(delta[:da, :da])), float(np.linalg.norm(delta[da:, da:]))
        amb, ra_, rb_ = extras["svcca"]
        amb = amb or _svcca_ambiguous(aa, keep, f_aa) or _svcca_ambiguous(bb, keep, f_bb)
        extras["svcca"] = (amb, ra_, rb_)
    dead = [s for s, c in (("a", aa), ("b", bb)) if not np.trace(c) > floor]
    if dead:
        values = dict.fromkeys(values, math.nan)
        rho = np.zeros(0)
    errors = _exact_errors(aa, ab, bb, delta, values, extras)
    out: dict[str, SimilarityValue] = {}
    for name in moment_names:
        note = method
        if dead:
            note += f"; undefined: layer {' and '.join(dead)} has no variance"
        elif name in extras and errors[name] >= 1.0:
            note += (
                "; the error bound covers the whole range: an eigenvalue lies within the "
                "moments' error of the cut, or the smallest retained variance is too small "
                "for the moments' accuracy (raise cut, or lower rtol for quadrature)"
            )
        out[name] = SimilarityValue(values[name], tier, errors[name], note)
    return out, rho, (aa.shape[0], bb.shape[0])


# --------------------------------------------------------------------------- ensembles


@dataclasses.dataclass(frozen=True, eq=False)
class SimilarityMatrix:
    """One measure between members of an ensemble (:func:`similarity_matrix`).

    ``values``/``errors``: ``(M, M)`` for all pairs (symmetric), or ``(M,)`` against
    ``reference``; ``tiers``: the tier of each entry (same shape); ``tier``: the weakest;
    ``method``: how the entries were obtained; ``members``: the compared member indices.
    """

    measure: str
    layer: str
    values: np.ndarray
    errors: np.ndarray
    tiers: np.ndarray
    tier: Tier
    method: str
    reference: int | None
    members: tuple[int, ...]

    def off_diagonal(self) -> np.ndarray:
        """The values of distinct pairs (upper triangle of an all-pairs matrix; every
        member but the reference against it)."""
        if self.reference is None:
            return self.values[np.triu_indices(len(self.members), 1)]
        return np.delete(self.values, self.members.index(self.reference))


def _members(where: str, run_or_models: Any) -> list[Network]:
    """An ensemble's members as float64 networks: a Run's final models, a list of models
    or networks, or the members of a stacked ``Network``."""
    if hasattr(run_or_models, "models") and hasattr(run_or_models, "num_members"):
        models = run_or_models.models()
    elif isinstance(run_or_models, Network) and np.ndim(run_or_models.layers[0].arrays(())[0]) == 3:
        num = np.shape(run_or_models.layers[0].arrays(())[0])[0]
        models = [run_or_models.member(m) for m in range(num)]
    elif isinstance(run_or_models, Sequence) and not isinstance(run_or_models, str):
        models = list(run_or_models)
    else:
        raise fail(where, "run_or_models", type(run_or_models).__name__,
                   "a toylab Run, a list of models or networks, or a stacked Network")  # fmt: skip
    if len(models) < 1:
        raise fail(where, "run_or_models", "no members", "at least one member")
    return [_float64(m, where, f"run_or_models[{i}]") for i, m in enumerate(models)]


def _ensemble(where: str, run_or_models: Any, dist: Any) -> tuple[list[Network], Any]:
    """Members as float64 networks, and the distribution (a Run's own by default)."""
    nets = _members(where, run_or_models)
    if dist is None and hasattr(run_or_models, "models") and hasattr(run_or_models, "dist"):
        dist = run_or_models.dist
    if dist is None:
        raise fail(where, "dist", None, "a distribution", "Pass dist=... (a Run brings its own).")
    return nets, dist


def similarity_matrix(
    run_or_models: Any,
    dist: Any = None,
    layer: str = "hidden_0",
    *,
    measure: str = "linear_cka",
    reference: int | None = None,
    method: str = "auto",
    key: Any = None,
    num_samples: int | None = None,
    num_bootstrap: int = 200,
    confidence: float = 0.95,
    keep: float = 0.99,
    cut: float = 1e-10,
    bandwidth: float = 1.0,
    tol: float = 1e-9,
    rtol: float = 1e-7,
) -> SimilarityMatrix:
    """``measure`` between every member's ``layer`` and a ``reference`` member's (``(M,)``),
    or between all pairs (``reference=None``: ``(M, M)``).

    ``run_or_models``: a :class:`toylab.runs.Run` (its final models; ``dist`` defaults to
    the run's), a list of models or networks, or a stacked ensemble ``Network``. Finite
    tasks: every member's table once, all cross covariances in one ``einsum`` (RBF CKA per
    pair by enumeration). The plane: one joint analysis per pair. Otherwise (or
    ``method="sampled"``): one shared sample and one set of bootstrap weights for every
    pair. Other arguments as in :func:`representation_similarity`.
    """
    where = "similarity_matrix"
    nets, dist = _ensemble(where, run_or_models, dist)
    name = check_choice(where, "measure", measure, MEASURES)
    check_choice(where, "method", method, ("auto", "exact", "sampled"))
    mcount = len(nets)
    if reference is not None:
        reference = check_int(where, "reference", reference, minimum=0, maximum=mcount - 1)
    for i, net in enumerate(nets):
        _check_layer(where, f"layer (of member {i})", net, layer)
        if net.input_dim != nets[0].input_dim:
            raise fail(where, f"run_or_models[{i}]", repr(net),
                       f"a network with {nets[0].input_dim} inputs, like member 0")  # fmt: skip
    pairs = (
        [(reference, j) for j in range(mcount)]
        if reference is not None
        else [(i, j) for i in range(mcount) for j in range(i, mcount)]
    )
    keep = check_float(where, "keep", keep, positive=True, maximum=1.0)
    cut = check_float(where, "cut", cut, nonneg=True, maximum=1.0)
    beta = check_float(where, "bandwidth", bandwidth, positive=True)
    confidence = check_float(where, "confidence", confidence, positive=True, maximum=0.9999)
    num_bootstrap = check_int(where, "num_bootstrap", num_bootstrap, minimum=10)
    entries: dict[tuple[int, int], SimilarityValue] = {}
    finite = _is_finite(dist)
    sampled = method == "sampled" or (not finite and name == "rbf_cka")
    how = ""
    if not sampled and finite:
        entries, how = _finite_matrix(nets, dist, layer, name, pairs, beta, keep, cut)
    elif not sampled:
        try:
            for i, j in pairs:
                r = representation_similarity(
                    nets[i], nets[j], dist, layer_a=layer, measures=(name,), method="exact",
                    tol=tol, rtol=rtol, keep=keep, cut=cut,
                )  # fmt: skip
                entries[i, j] = r.measures[name]
            how = "one exact joint analysis per pair"
        except NotApplicable:
            if method == "exact" or key is None or num_samples is None:
                raise
            sampled, entries = True, {}
    if sampled:
        if key is None or num_samples is None:
            raise fail(where, "key", key, "a JAX PRNG key, with num_samples",
                       "Sampled similarity needs key=jax.random.key(...) and num_samples=.")  # fmt: skip
        n = check_int(where, "num_samples", num_samples, minimum=10)
        reps, w = _sample_representations(nets, [layer] * mcount, dist, key, n, num_bootstrap,
                                          where)  # fmt: skip
        why = "method='sampled'" if method == "sampled" else "no exact moments"
        for i, j in pairs:
            r = _sampled_pair(
                reps[i], reps[j], w, layer, layer, (name,), keep, cut, beta, confidence, why
            )
            entries[i, j] = r.measures[name]
        how = f"one shared sample of {n} inputs for every pair"
    shape = (mcount,) if reference is not None else (mcount, mcount)
    values, errors = np.full(shape, np.nan), np.full(shape, np.nan)
    tiers = np.full(shape, "", dtype=object)
    for (i, j), v in entries.items():
        idx = (j,) if reference is not None else (i, j)
        values[idx], errors[idx], tiers[idx] = v.value, v.error, v.tier
        if reference is None:
            values[j, i], errors[j, i], tiers[j, i] = v.value, v.error, v.tier
    first = next(iter(entries.values()))
    return SimilarityMatrix(
        name, layer, values, errors, tiers, weakest(*(v.tier for v in entries.values())),
        f"{how}: {first.method}", reference, tuple(range(mcount)),
    )  # fmt: skip


def _finite_matrix(
    nets: list[Network], dist: Any, layer: str, name: str, pairs: list[tuple[int, int]],
    beta: float, keep: float, cut: float,
) -> tuple[dict[tuple[int, int], SimilarityValue], str]:  # fmt: skip
    """All requested pairs on a finite task from every member's table (one einsum)."""
    tables, errs = zip(*(_finite_values(net, dist, layer) for net in nets), strict=True)
    p = np.asarray(dist.domain.probs, np.float64)
    t = np.stack(tables)  # (M, N, d)
    means = np.einsum("n,mnd->md", p, t)
    seconds = np.einsum("mnd,n,kne->mkde", t, p, t, optimize=True)
    mag = np.einsum("n,mnd->md", p, t * t).max(initial=0.0)
    rounding = (len(p) + 4) * _EPS * max(float(mag), 1.0)
    method = f"exhaustive over all {len(p)} inputs of the finite domain (float64)"
    d = t.shape[2]
    out: dict[tuple[int, int], SimilarityValue] = {}
    if name == "linear_cka":
        err = max(max(errs), rounding)
        return _finite_cka(means, seconds, err, d, pairs, method), (
            "every member's table once, all cross moments and CKAs in one einsum"
        )
    for i, j in pairs:
        mean = np.concatenate([means[i], means[j]])
        second = np.block([[seconds[i, i], seconds[i, j]], [seconds[j, i], seconds[j, j]]])
        err = max(errs[i], errs[j], rounding)
        if name == "rbf_cka":
            v = float(_rbf_hsic(t[i], t[j], p[None], beta, 2048)[0])
            rnd = 16 * (len(p) + 2 * d) * _EPS
            out[i, j] = SimilarityValue(v, "exact", rnd if math.isfinite(v) else math.nan,
                                        method + "; RBF CKA by enumeration of all pairs of "
                                        "inputs")  # fmt: skip
        else:
            vals, _, _ = _from_moments(mean, 0.5 * (second + second.T), err, d, "exact", method,
                                       (name,), keep, cut)  # fmt: skip
            out[i, j] = vals[name]
    return out, "every member's table once, all cross moments in one einsum"


def _finite_cka(
    means: np.ndarray, seconds: np.ndarray, err: float, d: int, pairs: list[tuple[int, int]],
    method: str,
) -> dict[tuple[int, int], SimilarityValue]:  # fmt: skip
    """Linear CKA of every pair at once from stacked moments ``(M, d)``, ``(M, M, d, d)``
    with absolute error ``err``: the bounds of :func:`_from_moments`, vectorised."""
    cov = seconds - means[:, None, :, None] * means[None, :, None, :]
    norms = np.sqrt((cov**2).sum((-2, -1)))  # (M, M)
    diag = np.diag(norms)
    trace = np.einsum("mmdd->m", cov)
    with np.errstate(invalid="ignore", divide="ignore"):
        value = norms**2 / (diag[:, None] * diag[None])
    # Frobenius norms of the entry bounds e (1 + |m_i| + |m_j|) + e^2 of each block
    am = np.abs(means)
    s1, s2 = am.sum(1), (am**2).sum(1)
    c = err + err * err
    sq = (d * d * c * c + 2 * c * err * d * (s1[:, None] + s1[None])
          + err * err * (d * s2[:, None] + d * s2[None] + 2 * s1[:, None] * s1[None]))  # fmt: skip
    f = np.sqrt(sq)
    fd = np.diag(f)
    rnd = 16 * 2 * d * _EPS
    error = _cka_error(value, norms, f, diag[:, None], fd[:, None], diag[None], fd[None], rnd)
    floor = 4 * np.sqrt(fd[:, None] ** 2 + 2 * f**2 + fd[None] ** 2)
    dead = ~(trace[:, None] > floor) | ~(trace[None] > floor)
    out = {}
    for i, j in pairs:
        if dead[i, j]:
            which = " and ".join(s for s, m in (("a", i), ("b", j)) if not trace[m] > floor[i, j])
            note = f"{method}; undefined: layer {which} has no variance"
            out[i, j] = SimilarityValue(math.nan, "exact", math.nan, note)
        else:
            out[i, j] = SimilarityValue(float(value[i, j]), "exact", float(error[i, j]), method)
    return out
