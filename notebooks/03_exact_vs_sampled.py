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
# # 03 · Exact vs sampled: where feature visualization and dataset examples mislead
#
# The usual interpretability methods are **sampled**: gradient ascent from random starts
# (feature visualization), the top-k activating inputs among N data samples (dataset
# examples), a neuron evaluated at a few points along a path (sweeps), a Riemann sum of
# gradients (integrated gradients). On real networks nobody knows the right answer, so
# nobody knows how wrong they are. On toylab's 2-D ReLU networks the answer is exact
# (notebook 02), and every method in `toylab.methods` returns **both**: the sampled
# answer, the exact one, the error and the cost.
#
# You will
# 1. hand-build a neuron with two maxima and watch most gradient-ascent starts settle on
#    the *lesser* one;
# 2. measure how many starts you need to find the true maximum;
# 3. build a neuron whose maximum lies where the data has almost no mass, and see the
#    dataset examples miss it (and the exact CDF say why);
# 4. sweep a path at too few points and miss a bump entirely;
# 5. compute integrated gradients exactly, and plot how the sampled error shrinks with
#    the budget (log-log).
#
# The first cell holds the sizes; make them smaller for a quick run.

# %% tags=["parameters"]
num_starts = 256  # gradient-ascent starts for feature visualization
num_steps = 200  # gradient-ascent steps per start
num_samples = 4_096  # data samples searched for dataset examples
budgets = [4, 8, 16, 32, 64, 128, 256, 512, 1024]  # points / Riemann steps (convergence plot)
num_paths = 16  # random segments averaged in the convergence plot
map_size = 200  # neuron maps are drawn on a map_size x map_size grid
seed = 0
SMALL = {
    "num_starts": 64,
    "num_steps": 60,
    "num_samples": 1_024,
    "budgets": [8, 32, 128, 512],
    "num_paths": 3,
    "map_size": 60,
}  # sizes for the test suite

# %%
# ruff: noqa: E402  (imports follow the parameters cell)
import time

import jax
import matplotlib.pyplot as plt
import numpy as np
from scipy.special import ndtr

from toylab.distributions import two_blobs
from toylab.exact import activation_cdf, analyze, local_maxima
from toylab.methods import Line, attribution, dataset_examples, feature_visualization, sweep
from toylab.models import MLP
from toylab.viz import NeuronMapDisplay, TuningCurveDisplay

start = time.perf_counter()
key = jax.random.key(seed)
dist = two_blobs(distance=4.0, scale=1.0)  # N((±2, 0), I), one blob per class
low, high = np.asarray(dist.domain.low), np.asarray(dist.domain.high)
print("domain box:", np.round(low, 2), "to", np.round(high, 2))

# %% [markdown]
# ## 1. A neuron with two maxima, built by hand
#
# A ReLU "tent" of centre `c`, half-width `w` and height `h` along `x1` takes three
# first-layer units:
#
# `tent(x) = h/w · [relu(x1 − c + w) − 2 relu(x1 − c) + relu(x1 − c − w)]`
#
# (zero outside `[c − w, c + w]`, peak `h` at `c`). The second-layer neuron
# `hidden_1:0` adds two tents: a **wide low** one (centre −3, half-width 4, height 1)
# and a **narrow high** one (centre 5, half-width 0.5, height 2). It has exactly two
# local maxima, values 1 and 2: `toylab.methods.local_maxima` finds them from the
# exact partition (a vertex is a local maximum if no partition edge leaving it goes up).

# %%
TENTS = [(-3.0, 4.0, 1.0), (5.0, 0.5, 2.0)]  # (centre, half-width, height)


def two_bump_neuron(tents=TENTS) -> MLP:
    """hidden_1:0 = relu(sum of tents along x1); output = (hidden_1:0, hidden_1:0)."""
    w0, b0 = np.zeros((2, 3 * len(tents))), np.zeros(3 * len(tents))
    w1 = np.zeros((3 * len(tents), 1))
    for i, (c, w, h) in enumerate(tents):
        for j, (shift, coef) in enumerate(((-w, 1.0), (0.0, -2.0), (w, 1.0))):
            w0[0, 3 * i + j] = 1.0
            b0[3 * i + j] = -(c + shift)
            w1[3 * i + j, 0] = coef * h / w
    return MLP.from_weights([w0, w1, np.ones((1, 2))], [b0, np.zeros(1), np.zeros(2)])


bumps = two_bump_neuron()
NEURON = "hidden_1:0"
bumps_exact = analyze(bumps, dist)
lm = local_maxima(bumps_exact.geometry, "hidden_1", 0)
print("exact local maxima:", lm.values)
print("  where (x1 range of each, the neuron is constant in x2):",
      [f"x1 = {p[:, 0].min():.2f}" for p in lm.points])  # fmt: skip
assert np.allclose(lm.values, [2.0, 1.0], atol=1e-5)  # self-check: the construction

# %% [markdown]
# Along the `x1` axis the neuron is piecewise linear, so its **exact** curve is the
# polyline through its breakpoints (the `sweep` result below returns them). The
# `TuningCurveDisplay` draws it:

# %%
axis = Line((float(low[0]), 0.0), (float(high[0]), 0.0))
# (num_points=3: the fewest points that work; sweep(num_points=2) raises an IndexError)
exact_sweep = sweep(bumps, dist, NEURON, key=key, path=axis, num_points=3)
t_exact = np.unique(np.concatenate([[0.0, 1.0], exact_sweep.breakpoints]))
x1_exact = low[0] + t_exact * (high[0] - low[0])
pts_exact = np.stack([x1_exact, np.zeros_like(x1_exact)], -1)
print(f"the exact curve along x1 has {len(t_exact) - 2} breakpoints")
TuningCurveDisplay.from_model(bumps, NEURON, pts_exact, x1_exact, xlabel="x1 (x2 = 0)").plot()
plt.show()

# %% [markdown]
# ## 2. Feature visualization: most starts find the lesser maximum
#
# `feature_visualization` runs `num_steps` of Adam on the input from `num_starts`
# uniform random starts in the domain box (all starts in one compiled program) and
# scores the endpoints against the exact local maxima. The wide bump's basin (where
# ascent flows to it) covers about half the box; the narrow one's about 1/16 of it.
# Starts in the flat dead region (where the neuron is 0 and the gradient too) never move.

# %%
fv = feature_visualization(bumps, dist, NEURON, key=key, num_starts=num_starts,
                           num_steps=num_steps)  # fmt: skip
print(f"best value found: {fv.sampled:.4f}   exact max: {fv.exact:.4f}")
print(f"fraction of starts that reach the exact max: {fv.fraction_at_max:.3f}")
for v, n in zip(fv.local_max_values, fv.basin_counts, strict=True):
    print(f"  local max {v:.2f}: {n:4d} of {num_starts} endpoints")
print(f"stuck in the dead region: {np.sum(fv.values < 1e-6)} of {num_starts}")
print(f"cost: {fv.num_forward} forward and {fv.num_backward} backward passes")
# self-check: the lesser maximum collects more endpoints than the global one
assert fv.basin_counts[1] > fv.basin_counts[0], fv.basin_counts

# %% [markdown]
# The map shows the starts (open circles), the endpoints (crosses), the exact region
# boundaries (grey), the exact zero set (black) and the exact argmax (star):

# %%
shown = slice(0, 48)  # a few starts keep the picture readable
NeuronMapDisplay.from_analysis(
    bumps, NEURON, bumps_exact, num=map_size,
    points={"start": fv.starts[shown], "end": fv.endpoints[shown]},
    title=f"{NEURON}: gradient ascent from {len(fv.starts[shown])} starts",
).plot(legend=True)  # fmt: skip
plt.show()

# %% [markdown]
# **How many starts are enough?** The method reports the best endpoint. It misses the
# global maximum only if *every* start misses it, so with `S` independent starts the
# failure probability is `(1 − q)^S`, `q` being the fraction of starts that reach it.
# We check that by resampling `S` starts from the endpoints above: with a handful of
# starts, feature visualization confidently reports the lesser maximum (value 1, half
# the truth).

# %%
rng = np.random.default_rng(seed)
q = fv.fraction_at_max
hit = fv.values >= fv.exact - 0.01 * (fv.exact - fv.exact_min)
S = np.array([1, 2, 4, 8, 16, 32, 64])
miss = np.array([np.mean(~hit[rng.integers(0, len(hit), (2000, s))].any(1)) for s in S])
fig, ax = plt.subplots(figsize=(6.5, 4))
ax.semilogy(S, miss, "o", label="resampled endpoints")
ax.semilogy(S, (1 - q) ** S, "-", label=f"(1 − q)^S, q = {q:.3f}")
ax.set_xscale("log", base=2)
ax.set_xlabel("number of starts S")
ax.set_ylabel("P(best endpoint misses the global max)")
ax.set_title("feature visualization: starts needed to find the global maximum")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# ## 3. Dataset examples: a maximum where the data has almost no mass
#
# `hidden_0:0 = relu(x2 − 5)`. The blobs have `x2 ~ N(0, 1)`, so the neuron fires with
# probability `Φ(−5) ≈ 2.9e-7`, yet its maximum over the domain (the box holding all
# but 1e-9 of the mass) sits on the top edge. `dataset_examples` takes the top
# activations among `num_samples` samples and scores them with the neuron's **exact**
# activation distribution (`toylab.exact.activation_cdf`: the mixture mass of every region
# clipped at a level, in closed form).

# %%
far = MLP.from_weights([[[0.0], [1.0]], [[1.0, -1.0]]], [[-5.0], [0.0, 0.0]])
far_exact = analyze(far, dist)
de = dataset_examples(far, dist, "hidden_0:0", key=jax.random.fold_in(key, 1),
                      num_samples=num_samples, num_examples=8)  # fmt: skip
p_fire = 1 - activation_cdf(far_exact, "hidden_0:0", [0.0], strict=False)[0]
print(f"exact P(fires) = {p_fire:.4e}   closed form Φ(−5) = {ndtr(-5.0):.4e}")
print(f"top example value {de.sampled:.3f} vs exact max {de.exact_max:.3f} at "
      f"{np.round(de.exact_argmax, 2)}  (relative gap {de.relative_gap:.2f})")  # fmt: skip
print(f"expected number of samples in the top 5% of the range: {de.expected_top:.2e}"
      f"  -> unreachable: {de.unreachable}")  # fmt: skip
print(f"samples needed for one firing on average: 1 / P = {1 / p_fire:,.0f}")
assert abs(p_fire - ndtr(-5.0)) < 1e-10  # self-check: the exact CDF is the closed form
assert de.unreachable and de.relative_gap > 0.9

# %% [markdown]
# All `num_samples` samples give 0, so the "top examples" (triangles) are an arbitrary
# draw from the data: they say nothing about what the neuron detects. Feature
# visualization, which ignores the data, goes straight to the edge of the box. Neither
# is wrong; they answer different questions, and only the exact CDF tells you which
# question you asked.

# %%
fv_far = feature_visualization(far, dist, "hidden_0:0", key=key, num_starts=num_starts,
                               num_steps=num_steps)  # fmt: skip
data = np.asarray(dist.sample(jax.random.fold_in(key, 2), 400).x)
fig, axes = plt.subplots(1, 2, figsize=(12.5, 4.6), layout="constrained")
NeuronMapDisplay.from_analysis(
    far, "hidden_0:0", far_exact, num=map_size, points={"data": data, "top": de.examples},
    title="relu(x2 − 5): dataset examples (triangles)",
).plot(axes[0], legend=True)  # fmt: skip
NeuronMapDisplay.from_analysis(
    far, "hidden_0:0", far_exact, num=map_size,
    points={"start": fv_far.starts[shown], "end": fv_far.endpoints[shown]},
    title=f"feature visualization: best {fv_far.sampled:.2f} of exact {fv_far.exact:.2f}",
).plot(axes[1])  # fmt: skip
plt.show()

# %% [markdown]
# ## 4. Sweeps: too few points miss a bump
#
# `sweep` evaluates the neuron at `num_points` equally spaced points of a segment and
# joins them; both curves are piecewise linear, so the maximum error of the sampled
# polyline is exact. At 8 points along the `x1` axis the narrow bump falls between two
# samples: the sweep shows only the wide bump (and even that one too low), and its
# maximum error is the whole height of the narrow one.

# %%
coarse = sweep(bumps, dist, NEURON, key=key, path=axis, num_points=8)
x1_coarse = low[0] + coarse.t * (high[0] - low[0])
print(f"8-point sweep: max error {coarse.error:.3f} (at most {coarse.max_error_bound:.3f}), "
      f"missed breakpoints "
      f"{coarse.missed_breakpoints} of {len(coarse.breakpoints)}")  # fmt: skip
disp = TuningCurveDisplay.from_model(bumps, NEURON, pts_exact, x1_exact, xlabel="x1 (x2 = 0)")
disp.plot()
disp.ax_.plot(x1_coarse, coarse.values, "o--", color="C1", label="8-point sweep")
disp.ax_.legend(fontsize=9)
plt.show()

# %% [markdown]
# ## 5. Integrated gradients, exactly
#
# Integrated gradients (IG) attributes `f(x) − f(baseline)` to input coordinates by
# integrating the gradient along the straight path. Attribution libraries approximate
# the integral with `m` gradient evaluations (a Riemann sum). Along the path a ReLU
# network is piecewise linear, so the integral is a finite sum over the pieces: toylab
# computes it **exactly**, and exact IG is *complete* (`sum(IG) = f(x) − f(baseline)`)
# to float64 rounding. The sampled sum is not.

# %%
x_peak, base = np.array([5.0, 1.0]), np.array([low[0], 0.0])
for m in (8, 64):
    ig = attribution(bumps, NEURON, x_peak, baseline=base, num_steps=m)
    print(f"m = {m:3d}: sampled IG {np.round(ig.integrated_gradients, 4)}, "
          f"exact IG {np.round(ig.exact_integrated_gradients, 4)} ({ig.num_pieces} pieces)")  # fmt: skip
    print(f"         completeness gap: sampled {ig.completeness_gap:+.2e}, "
          f"exact {ig.exact_error:.1e}")  # fmt: skip
assert ig.exact_error < 1e-9  # self-check: exact IG is complete

# %% [markdown]
# ## 6. Convergence: error vs budget
#
# Both sampled sweeps and Riemann-sum IG integrate functions that jump (the slope of a
# piecewise-linear curve, or its gradient) at region boundaries, so their errors shrink
# like `1/m`: ten times the budget for one more digit. We average both errors over
# `num_paths` random segments across the domain (a segment that misses the narrow bump
# is easy; one that clips it is hard) and plot them on log-log axes, with the
# least-squares slope.

# %%
path_rng = np.random.default_rng(seed + 1)
paths = low + path_rng.random((num_paths, 2, 2)) * (high - low)
ig_err = np.zeros(len(budgets))
sweep_err = np.zeros(len(budgets))
for i, m in enumerate(budgets):
    for x_end, x_base in paths:
        r = attribution(bumps, NEURON, x_end, baseline=x_base, num_steps=m)
        ig_err[i] += r.error / num_paths
        path = Line(tuple(x_base), tuple(x_end))
        sweep_err[i] += sweep(bumps, dist, NEURON, key=key, path=path, num_points=m).error
sweep_err /= num_paths
slope_ig = np.polyfit(np.log(budgets), np.log(ig_err), 1)[0]
slope_sw = np.polyfit(np.log(budgets), np.log(sweep_err), 1)[0]
fig, ax = plt.subplots(figsize=(6.5, 4.2))
ax.loglog(budgets, ig_err, "o-", label=f"integrated gradients (slope {slope_ig:.2f})")
ax.loglog(budgets, sweep_err, "s-", label=f"sweep max error (slope {slope_sw:.2f})")
b = np.asarray(budgets, float)
ax.loglog(b, sweep_err[0] * b[0] / b, "k:", lw=1, label="1 / m")
ax.set_xlabel("budget m (gradient steps / sweep points)")
ax.set_ylabel("error vs the exact answer")
ax.set_title(f"{NEURON}: sampled methods converge like 1/m")
ax.legend(fontsize=8)
plt.show()
print(f"slopes: IG {slope_ig:.2f}, sweep {slope_sw:.2f}")
assert -1.6 < slope_sw < -0.5, slope_sw  # self-check: first order

# %%
print(f"notebook ran in {time.perf_counter() - start:.1f} s")

# %% [markdown]
# ## Exercises
#
# 1. **Narrower, higher.** Rebuild the two-bump neuron with the narrow tent's half-width
#    at 0.25 and 0.1 (`two_bump_neuron([(-3, 4, 1), (5, w, 2)])`). How does `q`, the
#    fraction of starts reaching the global maximum, scale with `w`? How many starts do
#    you need for a 99% chance of finding it?
# 2. **Regularized feature visualization.** Rerun section 2 with `l2=0.05` (a penalty
#    pulling the input towards the centre) or `budget=3.0` (a ball constraint). Which
#    maximum does it report now? Is that still "what the neuron detects"?
# 3. **Reachable after all?** Move the far neuron's threshold: `relu(x2 − t)` for
#    t = 1, 2, 3, 4. For each, compare `de.sampled` with `de.exact_max` and `de.exact` (the
#    exact 0.99-quantile), and find the smallest `num_samples` for which `de.unreachable`
#    is False.
# 4. **A trained network.** Take the best member from notebook 02 and run
#    `toylab.methods.compare(model, dist, key=key)` on it. Which method misleads most
#    often (`summary[...]`), and on which neurons?
