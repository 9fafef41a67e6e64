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
# # 07 · Toy models of superposition
#
# A toy model of superposition (Elhage et al. 2022) squeezes `n` sparse features into
# `m < n` hidden dimensions, `h = W x`, and reads them back with
# `x' = ReLU(WᵀW x + b)`. Each feature is active with probability `p` (the *density*;
# the paper's sparsity is `S = 1 − p`) and then uniform on `(0, 1]`; the loss weighs
# feature `i` by its importance `I_i`. When features are dense the model keeps the `m`
# most important ones; when they are sparse it packs many more into the same `m`
# dimensions, in regular geometric arrangements. Because the distribution is known
# exactly, so are the true features (the columns `W_i`) and, for small models, the
# expected loss itself: every number below says how it was obtained.
#
# You will
# 1. train the paper's sparsity sweep (n = 20, m = 5, `I_i = 0.7^i`) at several densities
#    and seeds **in one call and one compiled program**, and watch the number of
#    represented features rise from 5 to well above `m`;
# 2. train n = 5 features into m = 2 dimensions at high sparsity and find the pentagon;
# 3. plot each feature's dimensionality `D_i` against density and check the sum rule
#    `Σ D_i ≤ m`;
# 4. compute a model's expected loss exactly and compare it with Monte Carlo;
# 5. draw the exact n = 2, m = 1 phase diagram beside the best of several trained seeds per
#    cell, again one program for the whole grid;
# 6. train sparse autoencoders on a hidden layer and score them against the true features;
# 7. check a few claims about features.
#
# The first cell holds the sizes; make them smaller for a quick run.

# %% tags=["parameters"]
sweep_steps = 1_500  # training steps of the n = 20 sweep (sections 1 and 3)
densities = [1.0, 0.3, 0.1, 0.03, 0.01]  # feature probabilities p = 1 − S
seeds = [0, 1]  # seeds of the n = 20 sweep (every seed at every grid point)
pentagon_steps = 1_000  # training steps of the n = 5, m = 2 model (section 2)
num_mc = 200_000  # Monte Carlo samples for the sampled expected loss (section 4)
max_patterns = 256  # activity patterns per output for the certified loss of n = 20
phase_importance = [0.3, 1.0, 3.0]  # relative importance I_1 / I_0 (section 5)
phase_density = [0.05, 0.3, 1.0]  # densities of the phase diagram
phase_seeds = [0, 1, 2]  # seeds per phase-diagram cell (the best one is kept)
phase_steps = 1_500  # training steps of the n = 2, m = 1 models
sae_steps = 1_000  # sparse-autoencoder training steps (section 6)
resample_every = 0  # SAE dead-latent resampling period (0: off; it must divide sae_steps)
SMALL = {"sweep_steps": 60, "densities": [1.0, 0.03], "seeds": [0], "pentagon_steps": 60,
         "num_mc": 20_000, "max_patterns": 16, "phase_importance": [0.3, 3.0],
         "phase_density": [0.3], "phase_seeds": [0], "phase_steps": 60,
         "sae_steps": 40}  # fmt: skip

# %%
# ruff: noqa: E402  (imports follow the parameters cell)
import tempfile
import time

import jax
import matplotlib.pyplot as plt
import numpy as np

from toylab.claims import antipodal, check, dimensions_per_feature, feature_dimensionality
from toylab.claims import represented as represented_claim
from toylab.distributions import SparseFeatures
from toylab.methods import dictionary_learning
from toylab.models import ModelConfig
from toylab.superposition import (
    classify_solution,
    expected_loss,
    phase_diagram,
    superposition_metrics,
    trained_phase,
)
from toylab.train import EnsembleGroups, SweepConfig, TrainConfig, train
from toylab.viz import (
    DimensionalityDisplay,
    EmbeddingDisplay,
    FeatureNormsDisplay,
    InterferenceDisplay,
    PhaseDiagramDisplay,
)

start = time.perf_counter()
# Keep compiled programs in an on-disk cache (a temporary directory) for this kernel.
jax_cache = tempfile.TemporaryDirectory(prefix="jax_cache_")  # removed when the kernel exits
jax.config.update("jax_compilation_cache_dir", jax_cache.name)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)

# %% [markdown]
# ## 1. The sparsity sweep: one call, one program
#
# The base distribution is `SparseFeatures(num_features=20, feature_probability=...,
# importance_decay=0.7)` (importance `0.7^i`); the model is `superposition_relu` with
# `m = 5` hidden dimensions, trained with the importance-weighted loss
# `importance_mse`. The sweep varies **distribution parameters** by their dotted paths:
# the feature probability, and the importance decay (0.7 for this section, 1.0, uniform
# importance, for section 3). Every seed trains at every grid point. All members have
# the same shapes, so the distribution parameters become per-member arrays of **one**
# compiled program: each member samples its own batches from its own distribution.
#
# As a config file, the same kind of sweep (feature probability × weight decay) is
# `examples/superposition_sweep.toml`
# (`toylab train examples/superposition_sweep.toml --out runs/superposition`).

# %%
base = SparseFeatures(num_features=20, feature_probability=1.0, importance_decay=0.7)
model_config = ModelConfig(kind="superposition_relu", hidden=(5,))
train_config = TrainConfig(
    optimizer="adamw",
    learning_rate=1e-3,
    batch_size=512,  # a fresh batch from each member's distribution at every step
    num_steps=sweep_steps,
    log_every=max(sweep_steps // 10, 1),
    checkpoints=[],
    loss="importance_mse",
)
sweep = SweepConfig(axes=[("distribution.importance_decay", (0.7, 1.0)),
                          ("distribution.feature_probability", tuple(densities))])  # fmt: skip
print(sweep.describe(), "× seeds", seeds)

t0 = time.perf_counter()
result = train(base, model_config, train_config, seeds=seeds, sweep=sweep)
ens = result.ensemble
programs = len(ens.groups) if isinstance(ens, EnsembleGroups) else 1
timings = result.timings
print(f"trained {ens.num_members} members for {sweep_steps} steps in "
      f"{time.perf_counter() - t0:.1f} s: {programs} compiled program(s); compiling "
      f"{timings['compile']:.1f} s, training loop {timings['loop']:.1f} s")  # fmt: skip
print("diverged:", result.divergences() or "none")

# %% [markdown]
# `superposition_metrics` computes every member's metrics at once from its weights, in
# float64 (tier `exact`: exact functions of the trained weights, the only error is
# rounding). A feature is *represented* when `‖W_i‖ > 0.5`, the threshold of the
# paper's plots.

# %%
members = range(ens.num_members)
metrics = superposition_metrics([result.model(m) for m in members])
decay = np.array([ens.member_values(m)["importance_decay"] for m in members])
density = np.array([ens.member_values(m)["feature_probability"] for m in members])
held_out = result.metrics[-1]["loss"]  # on 4096 fresh samples per member: sampled
print(f"{'member':46s} {'represented':>11s} {'D*':>6s} {'Σ D_i':>6s} {'loss (sampled)':>14s}")
for m in members:
    print(f"{ens.member_label(m):46s} {int(metrics.num_represented[m]):11d} "
          f"{float(metrics.dimensions_per_feature[m]):6.3f} "
          f"{float(metrics.sum_dimensionality[m]):6.3f} {held_out[m]:14.5f}")  # fmt: skip

# %% [markdown]
# The headline: with importance `0.7^i`, dense features (`p = 1`) get `m = 5` dedicated
# dimensions (the five most important), and the count rises as the features get
# sparser, well above `m` (exact counts of trained members; the seeds differ a little).

# %%
paper = decay == 0.7
fig, ax = plt.subplots(figsize=(6.4, 4))
for s in seeds:
    sel = paper & (np.array([ens.member_seed(m) for m in members]) == s)
    ax.plot(density[sel], metrics.num_represented[sel], "o-", label=f"seed {s}")
ax.axhline(5, color="k", ls="--", lw=1, label="m = 5 hidden dimensions")
ax.set_xscale("log")
ax.invert_xaxis()
ax.set_xlabel("feature density p = 1 − S (sparser to the right)")
ax.set_ylabel("represented features (‖W_i‖ > 0.5, exact)")
ax.set_title("n = 20, m = 5, importance 0.7^i")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# The paper's figure, for seed 0: the feature norms `‖W_i‖` coloured by how much each
# feature shares its dimension (`Σ_{j≠i} (Ŵ_i·W_j)²`, 0 for a dimension of its own:
# dark), densest on the left; then `WᵀW` and the bias of the densest and the sparsest
# member. In the dense member the unrepresented features get a positive bias (their
# mean); in the sparse one, features come in pairs with `W_i·W_j ≈ −‖W_i‖‖W_j‖` (dark
# blue, antipodal) and the represented features' biases are negative: the ReLU cuts off
# the interference from the partner and from the rest.

# %%
first = [m for m in members if paper[m] and ens.member_seed(m) == seeds[0]]
fig, axes = plt.subplots(1, len(first), figsize=(3.2 * len(first), 5.6), layout="constrained")
for ax, m in zip(np.atleast_1d(axes), first, strict=True):
    FeatureNormsDisplay.from_model(metrics, member=m, title=f"p = {density[m]:g}").plot(ax)
plt.show()
fig, axes = plt.subplots(1, 2, figsize=(13, 5.8), layout="constrained")
for ax, m in zip(axes, (first[0], first[-1]), strict=True):
    title = f"WᵀW and b, p = {density[m]:g}"
    InterferenceDisplay.from_model(metrics, member=m, title=title).plot(ax)
plt.show()
for m in (first[0], first[-1]):
    on = metrics.represented[m]
    print(f"p = {density[m]:g}: bias signs of the represented features "
          f"{metrics.bias_signs[m][on].tolist()}, of the others "
          f"{metrics.bias_signs[m][~on].tolist()} [exact]")  # fmt: skip

# %% [markdown]
# ## 2. Five features in two dimensions: the pentagon
#
# With uniform importance and sparse features (`p = 0.05`), five features fit into two
# dimensions as a regular pentagon: each feature's dimensionality is
# `D_i = ‖W_i‖² / Σ_j (Ŵ_i·W_j)² = 2/5` and together they use both dimensions
# (`Σ D_i = 2`). The negative biases cut off the small positive interference from the
# neighbours at 72°. Four seeds, one program.

# %%
dist5 = SparseFeatures(num_features=5, feature_probability=0.05)
config5 = TrainConfig(optimizer="adam", learning_rate=1e-2, batch_size=1024,
                      num_steps=pentagon_steps, log_every=pentagon_steps, checkpoints=[],
                      loss="importance_mse")  # fmt: skip
t0 = time.perf_counter()
result5 = train(dist5, ModelConfig(kind="superposition_relu", hidden=(2,)), config5,
                seeds=[0, 1, 2, 3])  # fmt: skip
print(f"trained 4 members in {time.perf_counter() - t0:.1f} s")
metrics5 = superposition_metrics([result5.model(m) for m in range(4)])
print(metrics5.summary())
best5 = int(np.argmin(result5.metrics[-1]["loss"]))  # lowest held-out loss (sampled)
pent = metrics5.member(best5)
print(f"\nmember {best5}: D_i = {np.round(pent.dimensionality, 4)}, "
      f"Σ D_i = {float(pent.sum_dimensionality):.4f} of m = 2 [exact]")  # fmt: skip
print(f"biases b = {np.round(pent.b, 4)} (signs {pent.bias_signs}) [exact]")
if pent.polygon is not None:
    print(f"polygon of {len(pent.polygon.features)} features, regular: {pent.polygon.regular} "
          f"(largest angle-gap error {pent.polygon.max_gap_error:.3f} rad, norm spread "
          f"{pent.polygon.norm_spread:.3f})")  # fmt: skip
EmbeddingDisplay.from_model(metrics5, member=best5).plot()
plt.show()

# %% [markdown]
# ## 3. Dimensionality against density, and the sum rule
#
# The uniform-importance half of the section 1 sweep (decay 1.0). Each dot is one
# represented feature's `D_i` at its member's density; the black dots are
# `D* = m / ‖W‖_F²`, the model's dimensions per feature; the grey lines are the
# fractions the paper's `D_i` cluster at (1, 3/4, 2/3, 1/2, 2/5, 3/8). Sparser features
# take fewer dimensions each.
#
# The **sum rule**: `Σ_i D_i ≤ rank W ≤ m` for any `W` (a projection argument,
# `toylab.superposition.metrics`), with equality for the tight frames training finds.

# %%
uniform = [m for m in members if decay[m] == 1.0]
DimensionalityDisplay.from_results(
    [density[m] for m in uniform], [metrics.member(m) for m in uniform],
    title="n = 20, m = 5, uniform importance",
).plot()  # fmt: skip
plt.show()
gap = metrics.sum_rule_gap
print(f"m − Σ D_i over all {ens.num_members} members: min {gap.min():.2e}, max {gap.max():.3f} "
      f"[exact]")  # fmt: skip
for m in uniform:
    print(f"  {ens.member_label(m):44s} Σ D_i = {float(metrics.sum_dimensionality[m]):.4f}")
assert gap.min() > -1e-9  # the sum rule holds for every W (up to rounding)

# %% [markdown]
# ## 4. The expected loss, exactly
#
# The loss a toy model reaches is an expectation over the sparse-feature distribution.
# `expected_loss` computes it **exactly** for the ReLU model when each output interacts
# with few enough features (it enumerates the activity patterns of the other features and
# integrates the piecewise-quadratic loss over each face of the unit cube), and compares
# with Monte Carlo (`method="sampled"`, a 95% confidence interval). The exact value must
# lie inside the interval about 95% of the time.

# %%
model5, dist5_best = result5.model(best5), result5.ensemble.dist_of(best5)
t0 = time.perf_counter()
exact = expected_loss(model5, dist5_best)
t_exact = time.perf_counter() - t0
t0 = time.perf_counter()
sampled = expected_loss(model5, dist5_best, method="sampled", num_samples=num_mc)
t_sampled = time.perf_counter() - t0
print(f"pentagon member, exact:   {exact}  ({exact.num_patterns} patterns, {t_exact:.2f} s)")
print(f"pentagon member, sampled: {sampled}  ({t_sampled:.2f} s)")
inside = sampled.lower <= exact.value <= sampled.upper
held_out5 = result5.metrics[-1]["loss"][best5]
print(f"exact value inside the Monte Carlo interval: {inside}; "
      f"held-out training loss {held_out5:.5f} [sampled, 4096 samples]")  # fmt: skip

# %% [markdown]
# For n = 20 an output interacts with up to 19 other features: `2^19` patterns. With a
# budget of `max_patterns` per output, `expected_loss` enumerates the most likely ones
# and bounds the rest: a **certified** enclosure (the true loss is inside, guaranteed),
# wider the smaller the budget (the printed value is the enclosure's midpoint, not an
# estimate). Monte Carlo gives a much narrower interval here, but only a 95% confidence
# statement; raise `max_patterns` to tighten the enclosure at the cost of time.

# %%
m20 = first[-1]
t0 = time.perf_counter()
cert = expected_loss(result.model(m20), ens.dist_of(m20), max_patterns=max_patterns, tol=1e-4)
t_cert = time.perf_counter() - t0
mc20 = expected_loss(result.model(m20), ens.dist_of(m20), method="sampled", num_samples=num_mc)
print(f"{ens.member_label(m20)}:")
print(f"  {cert.tier}: {cert}  ({cert.num_patterns} patterns, {t_cert:.2f} s)")
print(f"  sampled:   {mc20}")

# %% [markdown]
# ## 5. The n = 2, m = 1 phase diagram
#
# Two features compete for one dimension. Their importances are `(1, r)`; the relative
# importance `r = I_1 / I_0` of `input:1` is the **importance decay** of a two-feature
# `SparseFeatures` (`importance_i = decay^i`, so `(1, decay)`): sweeping
# `distribution.importance_decay` sweeps `r` as a scalar. The exact diagram compares the
# exact expected losses of the candidate solutions (one feature, the other, an antipodal
# pair, none) cell by cell; the trained one keeps, per cell, the seed with the lowest
# **exact** expected loss, as the paper keeps the best of several runs. All cells and
# seeds train in one program.

# %%
t0 = time.perf_counter()
exact_phase = phase_diagram(phase_importance, phase_density)
print(f"exact phase diagram, {len(phase_importance)} × {len(phase_density)} cells, in "
      f"{time.perf_counter() - t0:.1f} s [exact losses of each candidate]")  # fmt: skip

base2 = SparseFeatures(num_features=2, feature_probability=1.0, importance_decay=1.0)
config2 = TrainConfig(optimizer="adam", learning_rate=1e-2, batch_size=1024,
                      num_steps=phase_steps, log_every=phase_steps, checkpoints=[],
                      loss="importance_mse")  # fmt: skip
sweep2 = SweepConfig(axes=[("distribution.importance_decay", tuple(phase_importance)),
                           ("distribution.feature_probability", tuple(phase_density))])  # fmt: skip
t0 = time.perf_counter()
result2 = train(base2, ModelConfig(kind="superposition_relu", hidden=(1,)), config2,
                seeds=phase_seeds, sweep=sweep2)  # fmt: skip
ens2 = result2.ensemble
print(f"trained {ens2.num_members} members (one program) in {time.perf_counter() - t0:.1f} s")
entries = []
for m in range(ens2.num_members):
    v = ens2.member_values(m)
    loss = expected_loss(result2.model(m), ens2.dist_of(m))  # exact: 2 patterns per output
    entries.append((v["importance_decay"], v["feature_probability"], result2.model(m), loss.value))
trained = trained_phase(entries)
phase_fig = PhaseDiagramDisplay.from_results(exact_phase, trained).plot()
for ax in phase_fig.axes_:  # label the cells (a log axis under one decade crowds its labels)
    ax.set_xticks(phase_importance, [f"{r:g}" for r in phase_importance])
    ax.set_yticks(phase_density, [f"{p:g}" for p in phase_density])
    ax.minorticks_off()
plt.show()
print("exact winners (rows: relative importance, columns: density):")
print(exact_phase.winner_names())
print("best trained member per cell:")
print(trained.solution)

# %% [markdown]
# Dense features: only the more important one is kept (at `r = 1` the two one-feature
# solutions tie exactly; the exact diagram names the first). Sparse features: both, as an
# antipodal pair sharing the dimension with opposite signs. Where the trained cell
# disagrees with the exact one, look at `trained.loss` against `exact_phase.losses`:
# with few seeds, training can stay in a worse local optimum.

# %% [markdown]
# ## 6. Dictionary learning, scored against the truth
#
# A sparse autoencoder (SAE) learns an overcomplete basis of a hidden layer from its
# activations alone. Here we know the right answer exactly: the directions `Ŵ_i` of the
# represented features. `dictionary_learning` trains seeds × L1 penalties of SAEs on the
# pentagon model's 2-D hidden layer in one program and scores each dictionary: the
# mean max cosine similarity (MMCS) with the true directions and the recovered features
# (exact functions of the dictionary and `W`), and the model's loss with its hidden layer
# replaced by the reconstruction (sampled, with intervals). `resample_every` (off here,
# to keep the notebook fast) re-initialises latents that stopped firing.

# %%
t0 = time.perf_counter()
sae = dictionary_learning(
    model5, dist5_best, key=jax.random.key(0), penalties=(1e-3, 1e-2), num_seeds=2,
    train=TrainConfig(optimizer="adam", learning_rate=3e-3, num_steps=sae_steps, batch_size=256),
    resample_every=resample_every, num_samples=4096,
)  # fmt: skip
print(f"{sae.detail} ({time.perf_counter() - t0:.1f} s)")
for d in range(sae.num_dictionaries):
    print(f"  {sae.labels[d]}: {sae.facts(d)}")

# %% [markdown]
# ## 7. Claims about features
#
# `toylab.claims` decides statements about the features (`"input:i"`) of a toy model
# exactly, from the same metrics: the pentagon's dimensionality, a dense model's least
# important feature, and the antipodal pair of section 5.

# %%
anti = [m for m in range(ens2.num_members) if classify_solution(result2.model(m)) ==
        "antipodal pair"]  # fmt: skip
pair_model = result2.model(anti[0]) if anti else result2.model(0)
for claim, model, dist in [
    (feature_dimensionality("input:0", 0.35, 0.45), model5, dist5_best),
    (dimensions_per_feature(high=0.5), model5, dist5_best),
    (represented_claim("input:0"), result.model(first[0]), ens.dist_of(first[0])),
    (represented_claim("input:19"), result.model(first[0]), ens.dist_of(first[0])),
    (antipodal("input:0", "input:1"), pair_model, base2),
]:
    print(check(claim, model, dist).explain())

# %%
print(f"notebook ran in {time.perf_counter() - start:.1f} s")

# %% [markdown]
# ## Exercises
#
# 1. **Weight decay.** Add a third axis `("train.weight_decay", (0.0, 0.01))` to the
#    section 1 sweep (still one program). Does weight decay change the number of
#    represented features at `p = 0.01`?
# 2. **The linear model.** Train `kind="superposition_linear"` on the same sweep. How many
#    features does it represent at `p = 0.01`? Compare its exact expected loss (a closed
#    form for any n) with the ReLU model's certified one.
# 3. **Wider phase diagram.** Compute `phase_diagram` on a 7 × 7 grid and train it with
#    5 seeds per cell. Where do the trained members disagree with the exact winner, and
#    how large is the exact loss difference (`margin`) there?
# 4. **Top-k dictionaries.** Rerun section 6 with `sparsity="topk"`, `penalties=(1, 2)`
#    on a sparse member of section 1 (`n = 20`). Which features does the SAE miss, and
#    are they the antipodal ones?
