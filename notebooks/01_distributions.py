# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 01 · Analytic distributions
#
# Every task in toylab is an **analytic distribution**: we know how it generates data,
# so we know its exact density `p(x)`, its exact class posterior `p(y | x)` and the best
# accuracy any classifier can reach, the **Bayes-optimal accuracy**. Later notebooks
# score networks against these answers; this one looks at the answers themselves.
#
# You will
# 1. draw samples from four 2-D distributions and overlay their exact densities;
# 2. look at the exact posterior and the Bayes-optimal decision boundary;
# 3. read `dist.bayes()`, the Bayes-optimal accuracy with the *tier* that says how it was
#    obtained (`exact`, `bounded` or `sampled`);
# 4. check it against a Monte Carlo estimate, and see how slowly sampling converges;
# 5. meet a finite task, where everything is computed by enumeration.
#
# The first cell holds the sizes; make them smaller for a quick run.

# %% tags=["parameters"]
num_samples = 1_000  # points drawn for each scatter plot
num_mc = 100_000  # Monte Carlo samples for estimating each Bayes accuracy
grid_size = 200  # densities and posteriors are drawn on a grid_size x grid_size grid
seed = 0
SMALL = {"num_samples": 200, "num_mc": 2_000, "grid_size": 40}  # sizes for the test suite

# %%
# ruff: noqa: E402  (imports follow the parameters cell)
import time

import jax
import matplotlib.pyplot as plt
import numpy as np

from toylab.distributions import (
    Box,
    GaussianMixture,
    ModularArithmetic,
    Rings,
    make,
    two_blobs,
    xor_blobs,
)

start = time.perf_counter()
key = jax.random.key(seed)

# %% [markdown]
# ## 1. A distribution is a small frozen dataclass
#
# `two_blobs()` is two isotropic Gaussians, one per class. Its docstring states the
# generative process; its fields are the parameters.

# %%
dist = two_blobs(distance=4.0, scale=1.0)
print(dist)
print("classes:", dist.num_classes, " input dimension:", dist.dim)
print("domain (all but 1e-9 of the mass):", dist.domain)

# %% [markdown]
# `sample(key, num_samples)` is pure JAX (you can `jit` and `vmap` it); it returns a
# `Batch` with inputs `x`, labels `y` and the ground-truth `latent` (here: which mixture
# component produced each point).

# %%
batch = dist.sample(key, 5)
print("x =\n", batch.x)
print("y =", batch.y)
print("latent =", batch.latent)

# %% [markdown]
# ## 2. Samples and exact densities
#
# Four distributions, each built by name with `make` or directly:
#
# | name | generative process |
# |---|---|
# | `two_blobs` | `y ~ U{0,1}`, `x ~ N(±(d/2) e₁, s² I)` |
# | `xor_blobs` | four blobs at `(±a, ±a)`; the class is the XOR of the signs |
# | `rings` | `y ~ π`, angle uniform, radius `~ N(r_y, w_y²)` truncated to `ρ ≥ 0` |
# | `two_moons` | a point on one of two half circles plus `N(0, σ² I)` noise |
#
# We draw `num_mc` samples once per distribution (sampling compiles once per size, so
# we reuse them for the Monte Carlo section) and plot the first `num_samples`.
# The contour lines are the **exact** density `dist.prob(x)`, evaluated on a grid.

# %%
dists = {
    "two_blobs": two_blobs(distance=4.0),
    "xor_blobs": xor_blobs(offset=2.0, scale=1.0),
    "rings": Rings(radii=(0.5, 1.5), widths=(0.2, 0.25)),
    "two_moons": make("two_moons", noise=0.2),
}
batches = {
    name: d.sample(k, num_mc)
    for (name, d), k in zip(dists.items(), jax.random.split(key, len(dists)), strict=True)
}


def view_box(x: np.ndarray, pad: float = 0.4) -> Box:
    """A box around the first ``num_samples`` points, for plotting."""
    x = np.asarray(x[:num_samples], np.float64)
    return Box(tuple(x.min(0) - pad), tuple(x.max(0) + pad))


CLASS_COLORS = ("#1b9e77", "#d95f02")

fig, axes = plt.subplots(1, 4, figsize=(17, 4.4))
for ax, (name, d) in zip(axes, dists.items(), strict=True):
    x, y = np.asarray(batches[name].x), np.asarray(batches[name].y)
    xx, yy = view_box(x).grid(grid_size)
    density = d.prob(np.stack([xx, yy], -1))
    ax.contour(xx, yy, density, levels=8, colors="0.35", linewidths=0.8)
    for c in range(d.num_classes):
        sel = y[:num_samples] == c
        ax.scatter(*x[:num_samples][sel].T, s=6, alpha=0.6, color=CLASS_COLORS[c],
                   label=f"class {c}")  # fmt: skip
    ax.set_title(f"{name}: samples and exact density")
    ax.set_aspect("equal")
axes[0].legend(loc="upper left", fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 3. The exact posterior and the Bayes-optimal classifier
#
# `dist.posterior(x)` is the exact `p(y = k | x)`, shape `(..., num_classes)`. The
# classifier that predicts `argmax_k p(y = k | x)` is **Bayes-optimal**: no classifier
# has higher accuracy. Its decision boundary is where the posterior crosses 1/2 (the
# dashed line). Colour: `p(y = 1 | x)`, blue 0, red 1.

# %%
fig, axes = plt.subplots(1, 4, figsize=(17, 4.4), layout="constrained")
for ax, (name, d) in zip(axes, dists.items(), strict=True):
    x = np.asarray(batches[name].x)
    box = view_box(x)
    xx, yy = box.grid(grid_size)
    post = d.posterior(np.stack([xx, yy], -1))[..., 1]
    im = ax.imshow(post, origin="lower", extent=(box.low[0], box.high[0], box.low[1],
                   box.high[1]), cmap="RdBu_r", vmin=0, vmax=1, aspect="equal")  # fmt: skip
    ax.contour(xx, yy, post, levels=[0.5], colors="k", linestyles="--", linewidths=1.5)
    ax.set_title(f"{name}: p(y = 1 | x)")
fig.colorbar(im, ax=axes, shrink=0.8, pad=0.01)
plt.show()

# %% [markdown]
# ## 4. `dist.bayes()`: the Bayes-optimal accuracy and its tier
#
# `bayes()` returns a `BayesResult`: the accuracy, an absolute `error` bound and the
# **tier**, which says how the number was obtained:
#
# * `exact`: a closed form or finite enumeration (error is float rounding, ~1e-15);
# * `bounded`: a deterministic computation with a guaranteed error bound (here a nested
#   quadrature);
# * `sampled`: a Monte Carlo estimate; `error` is the half-width of a 99.9% interval.
#
# Two blobs have the closed form `Φ(d / 2s)`. The two moons have no closed form, so
# their accuracy is a quadrature (a few seconds; the result is cached per instance).

# %%
bayes = {}
for name, d in dists.items():
    t0 = time.perf_counter()
    bayes[name] = d.bayes()
    b = bayes[name]
    print(f"{name:10s} accuracy {b.accuracy:.10f}  ± {b.error:.1e}  tier={b.tier:8s} "
          f"({time.perf_counter() - t0:.2f} s)")  # fmt: skip
    print(f"{'':10s} method: {b.method}")

# %% [markdown]
# The third tier appears when neither a closed form nor a 2-D quadrature applies, e.g. a
# 3-D mixture whose components have different covariances: `bayes()` falls back to Monte
# Carlo in float64 and reports a 99.9% confidence half-width as its error.

# %%
blobs_3d = GaussianMixture(
    means=((0.0, 0.0, 0.0), (1.5, -1.0, 0.5)),
    covs=(
        ((1.0, 0.2, 0.0), (0.2, 1.0, 0.1), (0.0, 0.1, 0.5)),
        ((0.5, 0, 0), (0, 0.8, 0), (0, 0, 1.0)),
    ),
)
print(blobs_3d.bayes(num_samples=num_mc))

# %% [markdown]
# ## 5. Checking against Monte Carlo
#
# Two unbiased Monte Carlo estimates of the Bayes accuracy from samples `(x_i, y_i)`:
#
# * **hits**: the fraction of samples where the Bayes classifier is right,
#   `mean[argmax_k p(k | x_i) == y_i]`;
# * **max posterior**: `mean[max_k p(k | x_i)]`, which averages out the label noise
#   (it uses the labels only through the exact posterior) and so has a smaller variance.
#
# Each is reported with its standard error; `z` is the distance to the exact value in
# standard errors (|z| > 3 would be surprising).

# %%
print(f"{'':10s} {'exact':>10s} | {'hits':>10s} {'s.e.':>8s} {'z':>6s} | "
      f"{'max post.':>10s} {'s.e.':>8s} {'z':>6s}")  # fmt: skip
estimates = {}
for name, d in dists.items():
    x, y = np.asarray(batches[name].x, np.float64), np.asarray(batches[name].y)
    post = d.posterior(x)
    hits = (post.argmax(-1) == y).astype(np.float64)
    maxpost = post.max(-1)
    estimates[name] = hits
    exact = bayes[name].accuracy
    row = f"{name:10s} {exact:10.6f} |"
    for est in (hits, maxpost):
        mean, se = est.mean(), est.std(ddof=1) / np.sqrt(len(est))
        row += f" {mean:10.6f} {se:8.6f} {(mean - exact) / se:6.2f} |"
        # a self-check: 5 standard errors fail by chance with probability ~6e-7
        assert abs(mean - exact) < 5 * se + bayes[name].error, (name, mean, exact, se)
    print(row)

# %% [markdown]
# How fast does the "hits" estimate approach the exact answer? The error of a Monte
# Carlo average shrinks like `1/√n`: to gain one digit you need 100 times more samples.
# The exact value has all its digits at once. (Grey band: ±2 standard errors.)

# %%
name = "xor_blobs"
hits = estimates[name]
n = np.arange(1, len(hits) + 1)
running = np.cumsum(hits) / n
p = bayes[name].accuracy
fig, ax = plt.subplots(figsize=(6.5, 4))
ax.loglog(n, np.abs(running - p) + 1e-12, lw=0.8, label="|running estimate − exact|")
ax.fill_between(n, 1e-12, 2 * np.sqrt(p * (1 - p) / n), color="0.85", label="2 standard errors")
ax.set_xlabel("number of samples n")
ax.set_ylabel("absolute error")
ax.set_ylim(1e-6, 1)
ax.set_title(f"{name}: Monte Carlo vs exact Bayes accuracy")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# ## 6. A finite task: modular addition
#
# `ModularArithmetic(p)` draws operands `a, b` uniformly from `{0, …, p−1}`, feeds the
# network their concatenated one-hot codes and asks for `(a + b) mod p`. The input set is
# finite: `dist.domain` enumerates **every** input with its probability and label, so
# any average over the distribution is a finite sum, and the label is a function of the
# input, so the Bayes accuracy is exactly 1.

# %%
task = ModularArithmetic(p=7, op="add")
dom = task.domain
print(task)
print("inputs:", dom.inputs.shape, " probabilities sum to", dom.probs.sum())
print("input 10 (a, b) =", dom.latent[10], "encoded as", dom.inputs[10].astype(int),
      "label", dom.labels[10])  # fmt: skip
print(task.bayes())

table = np.zeros((task.p, task.p), int)
table[dom.latent[:, 0], dom.latent[:, 1]] = dom.labels
fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
axes[0].imshow(table, cmap="viridis")
for (a, b), v in np.ndenumerate(table):
    axes[0].text(b, a, v, ha="center", va="center", color="w", fontsize=9)
axes[0].set_xlabel("b")
axes[0].set_ylabel("a")
axes[0].set_title("(a + b) mod 7: the whole task")

# Samples cover the table uniformly: compare the sampled counts with the exact expectation.
sample = task.sample(jax.random.key(seed + 1), num_mc)
counts = np.bincount(np.asarray(sample.latent) @ np.array([task.p, 1]), minlength=dom.size)
axes[1].bar(np.arange(dom.size), counts, color="0.6", label="sampled count")
axes[1].axhline(num_mc * dom.probs[0], color="C3", label="exact expectation n / p²")
axes[1].set_xlabel("input index a·p + b")
axes[1].set_title(f"{num_mc} samples over the {dom.size} inputs")
axes[1].legend(fontsize=8, loc="lower right")
fig.tight_layout()
plt.show()

# %%
print(f"notebook ran in {time.perf_counter() - start:.1f} s")

# %% [markdown]
# ## Exercises
#
# 1. **Bayes error vs separation.** For `two_blobs(distance=d)` with `d` from 0.5 to 6,
#    plot `dist.bayes().bayes_error` against `d` together with the closed form
#    `scipy.special.ndtr(-d / 2)`. At which distance does the Bayes error fall below 1%?
# 2. **Leave the closed form.** Build
#    `GaussianMixture(means=((0, 0), (2, 0)), covs=(((1, 0), (0, 1)), ((0.3, 0), (0, 2))))`.
#    Which tier does `bayes()` report now, and why? Plot its posterior: is the Bayes
#    boundary still a straight line?
# 3. **How many samples for the bound?** `make("two_moons", noise=0.2).bayes()` has an
#    error bound near 1e-10. Using the standard error from section 5, estimate how many
#    Monte Carlo samples would be needed to match that precision.
# 4. **A finite task of your own.** Take `BooleanFunction(n=4, fn="majority")`: print its
#    truth table from `dist.domain`, check that `bayes()` is exactly 1, and find the inputs
#    where the majority is a tie (how does toylab break ties?).
