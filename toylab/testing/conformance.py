"""Conformance checks: does a distribution honour the contract of :mod:`toylab.distributions.base`?

:func:`check_distribution` draws samples and checks them against the exact host-side
quantities:

* ``shapes``: ``x`` is ``(n, dim)`` of the requested dtype, ``y`` int32 labels in
  ``[0, num_classes)`` (or ``y = x`` when ``num_classes == 0``);
* ``determinism``: the same key gives identical samples, another key different ones;
  ``jax.jit`` (``num_samples`` static) and ``jax.vmap`` over keys agree with eager calls;
* ``domain``: for a :class:`~toylab.distributions.base.Box`, the number of samples
  outside it is at most the ``1 - alpha`` binomial quantile for the stated
  ``outside_mass``; for a :class:`~toylab.distributions.base.FiniteDomain` every
  sample is an element of the domain and carries its label;
* ``normalisation``: ``exp(log_prob)`` integrates to one -- exact sum (finite),
  composite Gauss--Legendre over the domain box (1-D, 2-D; the result must lie in
  ``[1 - outside_mass - 1e-7, 1 + 1e-7]``), importance sampling with a confidence
  interval (more dimensions, and sparse features beyond 12), or an enumeration of
  activity patterns (sparse, up to 12 features);
* ``goodness_of_fit``: a chi-square test of the sample counts in (bin, label) cells
  against the density times the posterior integrated over each bin (12 x 12 bins in
  2-D, 24 in 1-D, atoms for finite domains, activity patterns and per-feature value
  bins for sparse features (more than 12 features: per-feature zero and value cells
  and pairwise joint activity against importance-sampled expectations), bins of the
  first coordinate with importance-sampled expectations in more dimensions); cells
  with fewer than 5 expected counts are pooled;
* image distributions (``kind == "image"``, no density over pixels) replace
  ``normalisation`` and ``goodness_of_fit`` by ``render`` (``x`` is the rendered latent
  plus Gaussian noise of the stated std: a chi-square test), ``labels`` (``y`` is
  ``label(latent)``), ``latent`` (inside ``[param_low, param_high]``) and ``bounds``
  (``render_bounds`` encloses ``render``), and have no ``posterior``/``bayes`` checks;
* ``posterior``: posteriors at the samples are in ``[0, 1]`` and sum to one;
* ``bayes``: the reported Bayes accuracy agrees with the Monte Carlo mean of
  ``max_y p(y | x)`` over the samples, within that estimate's ``1 - alpha`` interval
  plus the reported error.

**Failure rate.** Every statistical check is a test at level ``alpha`` (split evenly
over its sub-tests by a union bound), so a correct distribution fails one of the
at most 5 statistical checks with probability at most ``5 * alpha`` (``5e-6`` at the
default). Deterministic checks never fail by chance. For a fixed ``key`` the outcome
is reproducible.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats

from toylab.distributions.base import AbstractDistribution, Box, FiniteDomain
from toylab.tiers import TIERS

__all__ = ["ConformanceCheck", "ConformanceResult", "check_distribution"]


@dataclasses.dataclass(frozen=True)
class ConformanceCheck:
    """One check: its name, whether it passed and what was measured."""

    name: str
    passed: bool
    detail: str


@dataclasses.dataclass(frozen=True)
class ConformanceResult:
    """All checks run on one distribution."""

    dist: str
    num_samples: int
    alpha: float
    checks: tuple[ConformanceCheck, ...]

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def failures(self) -> tuple[ConformanceCheck, ...]:
        return tuple(c for c in self.checks if not c.passed)

    def report(self) -> str:
        lines = [f"conformance of {self.dist} (num_samples={self.num_samples}, alpha={self.alpha})"]
        lines += [f"  [{'ok' if c.passed else 'FAIL'}] {c.name}: {c.detail}" for c in self.checks]
        return "\n".join(lines)


def check_distribution(
    dist: AbstractDistribution,
    *,
    key: Any,
    num_samples: int = 20_000,
    alpha: float = 1e-6,
    check_bayes: bool = True,
    raise_on_failure: bool = True,
) -> ConformanceResult:
    """Run every conformance check on ``dist`` (see the module docstring).

    Raises ``AssertionError`` with the full report when a check fails and
    ``raise_on_failure`` is true; otherwise returns the :class:`ConformanceResult`.
    ``check_bayes=False`` skips ``bayes()`` (which may be a slow quadrature).
    """
    checks: list[ConformanceCheck] = []
    batch = dist.sample(key, num_samples)
    x = np.asarray(batch.x, np.float64)
    y = np.asarray(batch.y)
    rng = np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel().tolist())

    checks.append(_check_shapes(dist, batch, num_samples))
    checks.append(_check_determinism(dist, key, batch))
    checks.append(_check_domain(dist, x, y, alpha))
    if dist.kind == "image":  # no density over pixels: check against the renderer
        checks.extend(_check_image(dist, batch, alpha, rng))
    else:
        checks.extend(_check_density(dist, x, y, alpha, rng))
    if dist.num_classes > 0 and dist.kind != "image":
        post = np.asarray(dist.posterior(x))
        ok = (
            post.shape == (num_samples, dist.num_classes)
            and bool(np.all((post >= 0) & (post <= 1)))
            and bool(np.allclose(post.sum(-1), 1.0, rtol=0, atol=1e-9))
        )
        checks.append(
            ConformanceCheck(
                "posterior",
                ok,
                f"shape {post.shape}, range [{post.min():.3g}, {post.max():.3g}], "
                f"max |sum - 1| = {np.max(np.abs(post.sum(-1) - 1)):.2e}",
            )
        )
        if check_bayes:
            checks.append(_check_bayes(dist, post, alpha))
    result = ConformanceResult(repr(dist), num_samples, alpha, tuple(checks))
    if raise_on_failure and not result.passed:
        raise AssertionError(result.report())
    return result


# --------------------------------------------------------------------------- checks


def _check_shapes(dist: AbstractDistribution, batch: Any, n: int) -> ConformanceCheck:
    problems = []
    if tuple(batch.x.shape) != (n, dist.dim) or batch.x.dtype != jnp.float32:
        problems.append(f"x has shape {batch.x.shape} dtype {batch.x.dtype}")
    if dist.num_classes > 0:
        y = np.asarray(batch.y)
        if y.shape != (n,) or batch.y.dtype != jnp.int32:
            problems.append(f"y has shape {y.shape} dtype {batch.y.dtype}")
        elif y.min() < 0 or y.max() >= dist.num_classes:
            problems.append(f"labels in [{y.min()}, {y.max()}]")
    elif tuple(batch.y.shape) != (n, dist.output_dim):
        problems.append(f"regression target y has shape {batch.y.shape}")
    # traced, not compiled: the dtype argument reaches the output
    half = jax.eval_shape(lambda k: dist.sample(k, 4, dtype=jnp.bfloat16), jax.random.key(0))
    if half.x.dtype != jnp.bfloat16:
        problems.append(f"dtype=bfloat16 gave x of dtype {half.x.dtype}")
    return ConformanceCheck("shapes", not problems, "; ".join(problems) or "ok")


def _check_determinism(dist: AbstractDistribution, key: Any, batch: Any) -> ConformanceCheck:
    problems = []
    n = batch.x.shape[0]
    again = dist.sample(key, n)
    if not (np.array_equal(again.x, batch.x) and np.array_equal(again.y, batch.y)):
        problems.append("the same key gave different samples")
    other_key = jax.random.fold_in(key, 1)
    other = dist.sample(other_key, n)
    if np.array_equal(other.x, batch.x):
        problems.append("another key gave identical samples")
    # one compiled program checks both: jit (num_samples static) of vmap over keys
    keys = jnp.stack([key, other_key])
    vm = jax.jit(jax.vmap(dist.sample, in_axes=(0, None)), static_argnums=1)(keys, n)
    if tuple(vm.x.shape) != (2, n, dist.dim):
        problems.append(f"jit(vmap(sample)) over keys gave x of shape {vm.x.shape}")
    else:
        for i, one in enumerate((batch, other)):
            if not (
                np.allclose(vm.x[i], one.x, rtol=1e-5, atol=1e-5) and np.array_equal(vm.y[i], one.y)
            ):
                problems.append("jit(vmap(sample)) over keys differs from separate eager calls")
                break
    return ConformanceCheck("determinism", not problems, "; ".join(problems) or "ok")


def _check_image(
    dist: Any, batch: Any, alpha: float, rng: np.random.Generator
) -> list[ConformanceCheck]:
    """An image distribution (``kind == "image"``: ``render``, ``render_bounds``, ``label``,
    ``param_low``/``param_high``, ``noise``) has no density over pixels; instead:

    * ``render``: ``x - render(latent)`` is float32 rounding (``<= 1e-5``) without noise,
      else ``N(0, noise^2)`` iid: a two-sided chi-square test of the sum of squared
      standardised residuals (``n H W`` dof) at level ``alpha``;
    * ``labels``: ``y = label(latent)``; a class label may differ only where it is not
      stable under a ``1e-6`` relative change of the latent (float32 rounding at a class
      boundary); regression targets within ``1e-5``;
    * ``latent``: every latent lies in ``[param_low, param_high]``;
    * ``bounds``: ``render_bounds`` of a small box around 50 latents encloses their
      renders (a deterministic check).
    """
    lat = np.asarray(batch.latent, np.float64)
    x = np.asarray(batch.x, np.float64)
    y = np.asarray(batch.y)
    res = x - dist.render(lat)
    if dist.noise == 0:
        err = float(np.max(np.abs(res)))
        render = ConformanceCheck("render", err <= 1e-5, f"max |x - render(latent)| = {err:.2e}")
    else:
        ss = float(np.sum((res / dist.noise) ** 2))
        dof = res.size
        lo, hi = stats.chi2.ppf(alpha / 2, dof), stats.chi2.isf(alpha / 2, dof)
        render = ConformanceCheck(
            "render", bool(lo <= ss <= hi),
            f"sum of squared residuals / noise^2 = {ss:.6g} ({dof} dof; limits [{lo:.6g}, "
            f"{hi:.6g}])",
        )  # fmt: skip
    want = np.asarray(dist.label(lat))
    if dist.num_classes > 0:
        stable = np.asarray(dist.label(lat * (1 - 1e-6))) == np.asarray(
            dist.label(lat * (1 + 1e-6))
        )
        bad = int(np.sum((y != want) & stable))
        detail = f"{bad} of {y.size} labels differ from label(latent) away from class boundaries"
    else:
        bad = int(np.sum(np.any(np.abs(y - want) > 1e-5, axis=-1)))
        detail = f"{bad} of {y.shape[0]} regression targets differ from label(latent) by > 1e-5"
    labels = ConformanceCheck("labels", bad == 0, detail)
    low, high = np.asarray(dist.param_low), np.asarray(dist.param_high)
    outside = int(np.sum(~np.all((lat >= low - 1e-6) & (lat <= high + 1e-6), axis=-1)))
    latent = ConformanceCheck(
        "latent", outside == 0, f"{outside} latents outside [param_low, param_high]"
    )
    pick = lat[rng.choice(lat.shape[0], min(50, lat.shape[0]), replace=False)]
    half = 1e-3 * np.maximum(high - low, 1e-3)
    box_lo = np.minimum(pick, np.maximum(pick - half, low))  # kappa >= 0 stays so
    b_lo, b_hi = dist.render_bounds(box_lo, pick + half)
    inner = rng.uniform(box_lo, pick + half)
    v = dist.render(np.stack([pick, inner]))
    worst = float(np.max(np.maximum(b_lo - v, v - b_hi)))
    bounds = ConformanceCheck(
        "bounds", worst <= 0, f"render_bounds exceeded by {max(worst, 0.0):.2e} at most"
    )
    return [render, labels, latent, bounds]


def _binom_limit(n: int, p: float, alpha: float) -> int:
    return int(stats.binom.ppf(1 - alpha, n, min(max(p, 0.0), 1.0))) if p > 0 else 0


def _check_domain(
    dist: AbstractDistribution, x: np.ndarray, y: np.ndarray, alpha: float
) -> ConformanceCheck:
    dom = dist.domain
    if isinstance(dom, FiniteDomain):
        index = {row.tobytes(): i for i, row in enumerate(dom.inputs.astype(np.float64))}
        idx = np.array([index.get(row.tobytes(), -1) for row in x])
        missing = int(np.sum(idx < 0))
        wrong = int(np.sum(dom.labels[idx[idx >= 0]] != y[idx >= 0])) if dist.num_classes else 0
        ok = missing == 0 and wrong == 0 and bool(np.isclose(dom.probs.sum(), 1.0, atol=1e-12))
        return ConformanceCheck(
            "domain", ok, f"{missing} samples outside the domain, {wrong} with a wrong label"
        )
    assert isinstance(dom, Box)
    scale = 1e-5 * (1.0 + np.maximum(np.abs(dom.low), np.abs(dom.high)))
    lo, hi = np.asarray(dom.low) - scale, np.asarray(dom.high) + scale
    outside = int(np.sum(~np.all((x >= lo) & (x <= hi), axis=-1)))
    mass = float(dist.outside_mass)
    limit = _binom_limit(x.shape[0], mass, alpha)
    return ConformanceCheck(
        "domain",
        outside <= limit,
        f"{outside} of {x.shape[0]} samples outside the box (allowed {limit} for a stated "
        f"outside mass {mass:.1e})",
    )


def _gl_grid(lo: float, hi: float, panels: int, order: int = 6) -> tuple[np.ndarray, np.ndarray]:
    u, w = np.polynomial.legendre.leggauss(order)
    edges = np.linspace(lo, hi, panels + 1)
    half = 0.5 * np.diff(edges)
    nodes = edges[:-1, None] + half[:, None] * (u + 1)
    return nodes, half[:, None] * w  # (panels, order) each


def _chi2(observed: np.ndarray, expected_prob: np.ndarray, n: int) -> tuple[float, int, float]:
    """Chi-square with cells of expected count < 5 pooled: ``(statistic, dof, p-value)``."""
    obs = np.asarray(observed, np.float64).ravel()
    exp = np.clip(np.asarray(expected_prob, np.float64).ravel(), 0, None) * n
    small = exp < 5
    obs = np.append(obs[~small], obs[small].sum())
    exp = np.append(exp[~small], exp[small].sum())
    keep = exp > 0
    if np.any(obs[~keep] > 0):
        return math.inf, int(keep.sum()) - 1, 0.0
    obs, exp = obs[keep], exp[keep]
    stat = float(np.sum((obs - exp) ** 2 / exp))
    dof = max(obs.size - 1, 1)
    return stat, dof, float(stats.chi2.sf(stat, dof))


def _joint_table(dist: AbstractDistribution, pts: np.ndarray, dens: np.ndarray) -> np.ndarray:
    """``p(x) p(y|x)`` at ``pts`` (last axis: labels; a single column without classes)."""
    if dist.num_classes == 0:
        return dens[..., None]
    with np.errstate(invalid="ignore"):
        post = np.where(dens[..., None] > 0, dist.posterior(pts), 0.0)
    return dens[..., None] * post


def _check_density(
    dist: AbstractDistribution, x: np.ndarray, y: np.ndarray, alpha: float, rng: np.random.Generator
) -> list[ConformanceCheck]:
    dom = dist.domain
    if isinstance(dom, FiniteDomain):
        return _density_finite(dist, dom, x, y, alpha)
    if dist.kind == "sparse":
        return _density_sparse(dist, x, alpha, rng)
    if dist.dim <= 2:
        return _density_box(dist, dom, x, y, alpha)
    return _density_importance(dist, x, y, alpha, rng)


def _density_finite(
    dist: AbstractDistribution, dom: FiniteDomain, x: np.ndarray, y: np.ndarray, alpha: float
) -> list[ConformanceCheck]:
    lp = np.asarray(dist.log_prob(dom.inputs))
    total = math.fsum(np.exp(lp))
    ok = abs(total - 1) < 1e-12 and bool(np.allclose(np.exp(lp), dom.probs, rtol=1e-12, atol=0))
    norm = ConformanceCheck(
        "normalisation", ok, f"sum of exp(log_prob) over the domain = {total!r}"
    )
    n = x.shape[0]
    index = {row.tobytes(): i for i, row in enumerate(dom.inputs.astype(np.float64))}
    idx = np.array([index.get(row.tobytes(), -1) for row in x])
    if n * dom.probs.min() >= 5:
        counts = np.bincount(idx[idx >= 0], minlength=dom.size)
        stat, dof, pval = _chi2(counts, dom.probs, n)
        what = "atoms"
    else:
        counts = np.bincount(y, minlength=dist.num_classes)
        expected = np.bincount(dom.labels, weights=dom.probs, minlength=dist.num_classes)
        stat, dof, pval = _chi2(counts, expected, n)
        what = "labels"
    gof = ConformanceCheck(
        "goodness_of_fit",
        pval >= alpha,
        f"chi2 over {what} = {stat:.1f} (dof {dof}), p = {pval:.2e}",
    )
    return [norm, gof]


def _density_box(
    dist: AbstractDistribution, dom: Box, x: np.ndarray, y: np.ndarray, alpha: float
) -> list[ConformanceCheck]:
    mass = float(dist.outside_mass)
    d = dist.dim
    bins = 24 if d == 1 else 12
    per_bin = 8 if d == 1 else 4
    tol = 1e-7
    previous, slack = None, 0.0
    for refine in (1, 2):
        panels = bins * per_bin * refine
        axes = [_gl_grid(dom.low[i], dom.high[i], panels) for i in range(d)]
        if d == 1:
            pts = axes[0][0].ravel()[:, None]
            wts = axes[0][1].ravel()
        else:
            (n0, w0), (n1, w1) = axes
            g0, g1 = np.meshgrid(n0.ravel(), n1.ravel(), indexing="ij")
            pts = np.stack([g0, g1], -1).reshape(-1, 2)
            wts = np.outer(w0.ravel(), w1.ravel()).ravel()
        dens = np.exp(np.asarray(dist.log_prob(pts), np.float64))
        total = math.fsum(dens * wts)
        if previous is not None:
            # a density with kinks, jumps or an integrable singularity converges slowly:
            # allow twice the change on doubling the panels, if that change is small
            slack = 2 * abs(total - previous)
        if 1 - mass - tol - slack <= total <= 1 + tol + slack:
            break
        previous = total
    ok = 1 - mass - tol - slack <= total <= 1 + tol + slack and slack <= 5e-3
    norm = ConformanceCheck(
        "normalisation",
        ok,
        f"integral over the domain box = {total!r} ({panels} Gauss-Legendre panels per axis; "
        f"need [1 - {mass:.1e} - {tol:.0e}, 1 + {tol:.0e}] widened by {slack:.1e}, twice the "
        "change on doubling the panels)",
    )
    # expected probability of every (bin, label) cell
    joint = _joint_table(dist, pts, dens) * wts[:, None]
    k = joint.shape[-1]
    order = 6
    shape = (bins, per_bin * refine * order) * d + (k,)
    if d == 1:
        cell = joint.reshape(shape).sum(axis=1)
    else:
        cell = joint.reshape(bins, per_bin * refine * order, bins, per_bin * refine * order, k)
        cell = cell.sum(axis=(1, 3)).reshape(bins * bins, k)
    edges = [np.linspace(dom.low[i], dom.high[i], bins + 1) for i in range(d)]
    inside = np.all((x >= np.asarray(dom.low)) & (x <= np.asarray(dom.high)), axis=-1)
    b = np.zeros(x.shape[0], np.int64)
    for i in range(d):
        b = b * bins + np.clip(np.searchsorted(edges[i], x[:, i], side="right") - 1, 0, bins - 1)
    lab = y if dist.num_classes > 0 else np.zeros(x.shape[0], np.int64)
    counts = np.zeros_like(cell)
    np.add.at(counts, (b[inside], lab[inside]), 1)
    observed = np.append(counts.ravel(), np.sum(~inside))
    expected = np.append(cell.ravel(), max(1.0 - cell.sum(), 0.0))
    stat, dof, pval = _chi2(observed, expected, x.shape[0])
    gof = ConformanceCheck(
        "goodness_of_fit",
        pval >= alpha,
        f"chi2 over {bins}^{d} bins x {k} labels = {stat:.1f} (dof {dof}), p = {pval:.2e}",
    )
    return [norm, gof]


def _density_importance(
    dist: AbstractDistribution, x: np.ndarray, y: np.ndarray, alpha: float, rng: np.random.Generator
) -> list[ConformanceCheck]:
    n = x.shape[0]
    mean = x.mean(0)
    cov = np.cov(x.T) * 1.5**2
    q = stats.multivariate_normal(mean, cov)
    z = q.rvs(size=n, random_state=rng).reshape(n, -1)
    w = np.exp(np.asarray(dist.log_prob(z)) - q.logpdf(z))
    est, se = w.mean(), w.std(ddof=1) / math.sqrt(n)
    crit = stats.norm.isf(alpha / 2)
    norm = ConformanceCheck(
        "normalisation",
        abs(est - 1) <= crit * se + 1e-9 and se < 0.05,
        f"importance-sampling integral = {est:.5f} +- {se:.1e} (standard error)",
    )
    bins = 8
    edges = np.quantile(z[:, 0], np.linspace(0, 1, bins + 1))
    edges[0], edges[-1] = -np.inf, np.inf
    joint = (
        _joint_table(dist, z, np.exp(np.asarray(dist.log_prob(z)))) / np.exp(q.logpdf(z))[:, None]
    )
    k = joint.shape[-1]
    bz = np.clip(np.searchsorted(edges, z[:, 0], side="right") - 1, 0, bins - 1)
    bx = np.clip(np.searchsorted(edges, x[:, 0], side="right") - 1, 0, bins - 1)
    lab = y if dist.num_classes > 0 else np.zeros(n, np.int64)
    worst, ok = 0.0, True
    per = alpha / (bins * k)
    crit = stats.norm.isf(per / 2)
    for i in range(bins):
        for c in range(k):
            v = np.where(bz == i, joint[:, c], 0.0)
            p_is, var_is = v.mean(), v.var(ddof=1) / n
            f = np.mean((bx == i) & (lab == c))
            var = var_is + max(p_is * (1 - p_is), 1.0 / n) / n
            score = abs(f - p_is) / math.sqrt(var)
            worst = max(worst, score)
            ok &= score <= crit
    gof = ConformanceCheck(
        "goodness_of_fit",
        bool(ok),
        f"{bins} x0-bins x {k} labels: worst |freq - importance estimate| = {worst:.2f} "
        f"standard errors (limit {crit:.2f})",
    )
    return [norm, gof]


def _density_sparse(
    dist: AbstractDistribution, x: np.ndarray, alpha: float, rng: np.random.Generator
) -> list[ConformanceCheck]:
    d = dist.dim
    if d > _SPARSE_ENUMERATE:
        return _density_sparse_large(dist, x, alpha, rng)
    m = 256
    patterns = (np.arange(2**d)[:, None] >> np.arange(d)) & 1
    masses, variances = np.empty(2**d), np.empty(2**d)
    for s, pat in enumerate(patterns):
        pts = rng.uniform(0, 1, size=(m, d))
        pts = 1.0 - pts  # (0, 1]
        pts = np.where(pat.astype(bool), pts, 0.0)
        v = np.exp(np.asarray(dist.log_prob(pts)))
        masses[s], variances[s] = v.mean(), v.var() / m
    total, se = masses.sum(), math.sqrt(variances.sum())
    crit = stats.norm.isf(alpha / 4)
    norm = ConformanceCheck(
        "normalisation",
        abs(total - 1) <= crit * se + 1e-9,
        f"sum over {2**d} activity patterns of the integral = {total!r} +- {se:.1e}",
    )
    n = x.shape[0]
    obs_pat = np.bincount(np.sum((x != 0).astype(np.int64) << np.arange(d), -1), minlength=2**d)
    stat, dof, pval = _chi2(obs_pat, masses, n)
    ok = pval >= alpha / 2
    details = [f"patterns chi2 {stat:.1f} (dof {dof}) p = {pval:.1e}"]
    # value histogram of each active feature vs the density along that coordinate
    nodes, wts = _gl_grid(0.0, 1.0, 10, 8)
    for i in range(d):
        vals = x[x[:, i] != 0, i]
        if vals.size < 50:
            continue
        pts = np.zeros((nodes.size, d))
        pts[:, i] = nodes.ravel()
        g = np.exp(np.asarray(dist.log_prob(pts))).reshape(nodes.shape) * wts
        probs = g.sum(1) / g.sum()
        counts = np.bincount(
            np.clip((vals * 10).astype(int) - (vals * 10 % 1 == 0), 0, 9), None, 10
        )
        s_i, dof_i, p_i = _chi2(counts, probs, vals.size)
        ok &= p_i >= alpha / (2 * d)
        details.append(f"feature {i} values p = {p_i:.1e}")
    gof = ConformanceCheck("goodness_of_fit", bool(ok), "; ".join(details))
    return [norm, gof]


#: Up to this many features the sparse checks enumerate all ``2^d`` activity patterns.
_SPARSE_ENUMERATE = 12


def _density_sparse_large(
    dist: AbstractDistribution, x: np.ndarray, alpha: float, rng: np.random.Generator
) -> list[ConformanceCheck]:
    """Sparse checks for many features, by importance sampling.

    The proposal ``q`` draws every coordinate independently: ``0`` with the sample's
    zero frequency ``z_i`` (clipped to ``[1/(2n), 1 - 1/(2n)]``), else ``U(0, 1]``, so
    ``w = p / q`` has mean ``int p`` (with respect to ``prod (delta_0 + Lebesgue)``).

    * ``normalisation``: ``mean(w) = 1`` within ``z_{alpha/4}`` standard errors (and a
      standard error below 0.05, else the check cannot tell);
    * ``goodness_of_fit``: for every coordinate ``i``, the frequency of ``x_i = 0`` and of
      ``x_i`` in each of 5 value bins of ``(0, 1]`` agrees with its importance-sampling
      estimate ``mean(w 1[z in cell])``; for every pair ``i < j``, the frequency of
      "both active" agrees with ``mean(w 1[z_i, z_j != 0])``. Each of the
      ``6 d + d (d - 1) / 2`` comparisons is a two-sided z-test at level
      ``alpha / (2 (6 d + d (d - 1) / 2))`` (union bound: the check fails a correct
      distribution with probability ``<= alpha / 2``), with the variance of the sample
      frequency plus that of the estimate.
    """
    n, d = x.shape
    zero = np.clip(np.mean(x == 0, axis=0), 0.5 / n, 1 - 0.5 / n)
    atom = rng.uniform(size=(n, d)) < zero
    z = np.where(atom, 0.0, 1.0 - rng.uniform(size=(n, d)))
    log_q = np.sum(np.where(atom, np.log(zero), np.log1p(-zero)), axis=1)
    with np.errstate(over="ignore"):
        w = np.exp(np.asarray(dist.log_prob(z), np.float64) - log_q)
    est, se = float(w.mean()), float(w.std(ddof=1) / math.sqrt(n))
    crit = stats.norm.isf(alpha / 4)
    norm = ConformanceCheck(
        "normalisation",
        abs(est - 1) <= crit * se + 1e-9 and se < 0.05,
        f"importance-sampling integral over {d} features = {est:.5f} +- {se:.1e} (standard "
        "error; proposal: independent coordinates with the sample's zero frequencies)",
    )
    edges = np.linspace(0.0, 1.0, 6)

    def cells(v: np.ndarray) -> np.ndarray:
        """Indicators ``(n, 6 d)``: per coordinate, ``= 0`` and the 5 value bins."""
        b = np.clip(np.searchsorted(edges, v, side="left") - 1, 0, 4)
        out = np.zeros((v.shape[0], d, 6), bool)
        out[..., 0] = v == 0
        for k in range(5):
            out[..., k + 1] = (v != 0) & (b == k)
        return out.reshape(v.shape[0], -1)

    iu, ju = np.triu_indices(d, 1)

    def pairs(v: np.ndarray) -> np.ndarray:
        act = v != 0
        return act[:, iu] & act[:, ju]

    worst, ok = 0.0, True
    tests = 6 * d + iu.size
    crit = stats.norm.isf(alpha / (4 * tests))
    for fx, fz in ((cells(x), cells(z)), (pairs(x), pairs(z))):
        freq = fx.mean(0)
        vals = w[:, None] * fz
        p_is = vals.mean(0)
        var = vals.var(0, ddof=1) / n + np.maximum(p_is * (1 - p_is), 1.0 / n) / n
        score = np.abs(freq - p_is) / np.sqrt(var)
        worst = max(worst, float(score.max()))
        ok &= bool(np.all(score <= crit))
    gof = ConformanceCheck(
        "goodness_of_fit",
        ok,
        f"{6 * d} per-feature cells (zero, 5 value bins) and {iu.size} feature pairs (both "
        f"active) against importance-sampling estimates: worst {worst:.2f} standard errors "
        f"(limit {crit:.2f})",
    )
    return [norm, gof]


def _check_bayes(dist: AbstractDistribution, post: np.ndarray, alpha: float) -> ConformanceCheck:
    res = dist.bayes()
    m = post.max(-1)
    mc, se = m.mean(), m.std(ddof=1) / math.sqrt(m.size)
    crit = stats.norm.isf(alpha / 2)
    valid = res.tier in TIERS and res.error >= 0
    valid &= 1.0 / max(dist.num_classes, 1) - 1e-12 <= res.accuracy <= 1 + 1e-12
    ok = valid and abs(mc - res.accuracy) <= crit * se + res.error + 1e-12
    return ConformanceCheck(
        "bayes",
        bool(ok),
        f"bayes() = {res.accuracy:.6f} +- {res.error:.1e} ({res.tier}); Monte Carlo "
        f"E[max p(y|x)] = {mc:.6f} +- {se:.1e}",
    )
