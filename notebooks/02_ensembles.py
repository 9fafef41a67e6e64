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
# # 02 · Ensembles of small networks, neuron by neuron
#
# Small networks are cheap, so we never train just one: `toylab.train.train` trains an
# **ensemble** (several seeds, and optionally a sweep of one hyperparameter) as one
# compiled JAX program. Because the inputs are 2-D and the networks piecewise linear, we
# can then look at **every neuron's map** and compute each member's **exact accuracy**,
# and compare it with the Bayes-optimal accuracy from notebook 01.
#
# You will
# 1. train `len(seeds) × len(learning_rates)` ReLU MLPs on the XOR blobs in one call;
# 2. follow their training curves and compare learning rates;
# 3. compute each member's exact accuracy with `toylab.exact.analyze` and its gap to
#    Bayes-optimal (a gap that, unlike a sampled one, can never be negative);
# 4. draw every hidden neuron of one member with its exact region boundaries and zero set;
# 5. save the same experiment as a run directory on disk and load it back.

# %% tags=["parameters"]
num_steps = 1_500  # training steps per member
seeds = [0, 1, 2, 3]  # one member per seed and learning rate
learning_rates = [0.001, 0.01, 0.1]  # the sweep (Adam)
hidden = [8, 8]  # hidden layer widths
num_samples = 600  # points drawn in the data plots
run_dir = "runs/02_ensembles"  # where section 5 writes its run (relative to the notebook)
SMALL = {"num_steps": 40, "seeds": [0, 1], "learning_rates": [0.01, 0.1], "num_samples": 100}

# %%
# ruff: noqa: E402  (imports follow the parameters cell)
import tempfile
import time
from pathlib import Path

import jax
import matplotlib.pyplot as plt
import numpy as np

from toylab.config import ExperimentConfig
from toylab.distributions import to_config, xor_blobs
from toylab.exact import analyze
from toylab.models import ModelConfig
from toylab.runs import load_run, start_run
from toylab.train import SweepConfig, TrainConfig, train
from toylab.viz import DataDisplay, layer_grid_figure, layer_overlays

start = time.perf_counter()
# Keep compiled programs in an on-disk cache (a temporary directory), so that training
# the same experiment again in section 5 skips most of the compilation.
jax_cache = tempfile.TemporaryDirectory(prefix="jax_cache_")  # removed when the kernel exits
jax.config.update("jax_compilation_cache_dir", jax_cache.name)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)

# %% [markdown]
# ## 1. The task and the model
#
# Four Gaussian blobs with XOR labels (notebook 01): no single line separates the
# classes, so the network must combine several ReLUs. Its Bayes-optimal accuracy is
# known exactly.

# %%
dist = xor_blobs(offset=2.0, scale=1.0)
bayes = dist.bayes()
print(f"Bayes-optimal accuracy {bayes.accuracy:.6f} ({bayes.tier})")

model_config = ModelConfig(kind="mlp", hidden=tuple(hidden), activation="relu")
train_config = TrainConfig(
    optimizer="adam",
    num_steps=num_steps,
    batch_size=128,  # a fresh batch from the distribution at every step
    log_every=max(num_steps // 30, 10),
    checkpoints="log:6",  # parameters saved at 6 log-spaced steps (plus 0 and the last)
)
sweep = SweepConfig(param="train.learning_rate", values=tuple(learning_rates))
print(model_config)
print(sweep)

# %% [markdown]
# ## 2. One call, one compiled program, the whole ensemble
#
# With a sweep, member `m` has seed `seeds[m // len(values)]` and learning rate
# `values[m % len(values)]`. All members step together inside one `jax.lax.while_loop`
# (vectorised with `vmap`). On a laptop most of the time goes into compiling the program,
# so extra members are cheap.

# %%
t0 = time.perf_counter()
result = train(dist, model_config, train_config, seeds=seeds, sweep=sweep)
ensemble = result.ensemble
print(f"trained {ensemble.num_members} members for {num_steps} steps "
      f"in {time.perf_counter() - t0:.1f} s")  # fmt: skip
for m in range(ensemble.num_members):
    print(f"member {m:2d}: {ensemble.member_label(m)}")
print("diverged:", result.divergences() or "none")

# %% [markdown]
# `result.metrics` holds one record per logged step: arrays over members of the held-out
# loss and accuracy (on `num_eval_samples = 4096` fresh samples, so *sampled*) and
# `bayes_gap = Bayes accuracy − accuracy`.

# %%
steps = np.array([r["step"] for r in result.metrics])
acc = np.stack([r["accuracy"] for r in result.metrics])  # (num_logs, num_members)
lr_of = np.array([ensemble.member_value(m) for m in range(ensemble.num_members)])

fig, ax = plt.subplots(figsize=(7, 4))
for m in range(ensemble.num_members):
    i = learning_rates.index(lr_of[m])
    ax.plot(steps, acc[:, m], color=f"C{i}", lw=1, alpha=0.8,
            label=f"lr = {lr_of[m]:g}" if m < len(learning_rates) else None)  # fmt: skip
ax.axhline(bayes.accuracy, color="k", ls="--", lw=1, label="Bayes-optimal")
ax.set_xlabel("step")
ax.set_ylabel("held-out accuracy (sampled)")
ax.set_ylim(0.4, 1.0)
ax.set_title("training curves: every member, coloured by learning rate")
ax.legend(fontsize=8, loc="lower right")
plt.show()

# %% [markdown]
# ## 3. Exact accuracy vs Bayes-optimal, member by member
#
# `toylab.exact.analyze(model, dist)` partitions the plane into the network's linear
# regions and integrates the Gaussian mixture over each one in closed form. Among other
# things it returns the network's **exact** accuracy and its gap to the Bayes-optimal
# accuracy. The held-out accuracy from training is an estimate with a standard error of
# about `√(p(1−p)/4096) ≈ 0.003`, so it can even land *above* the Bayes accuracy; the
# exact gap is never negative. All members are scored on the *same* 4096 held-out
# samples, so their sampling errors are correlated: the Bayes-optimal classifier itself,
# scored on that set, is off from its exact accuracy by the same kind of amount.

# %%
analyses = [analyze(result.model(m), dist) for m in range(ensemble.num_members)]
sampled = acc[-1]
eval_x, eval_y = np.asarray(ensemble.eval_x), np.asarray(ensemble.eval_y)
bayes_on_eval = np.mean(dist.posterior(eval_x).argmax(-1) == eval_y)
print(f"Bayes classifier on the held-out set: {bayes_on_eval:.4f} (exact {bayes.accuracy:.4f})")
print(f"{'member':32s} {'sampled':>8s} {'exact':>9s} {'exact gap':>10s} {'regions':>8s}")
for m, a in enumerate(analyses):
    print(f"{m:2d} {ensemble.member_label(m):29s} {sampled[m]:8.4f} {a.accuracy:9.6f} "
          f"{a.gap:10.2e} {a.geometry.num_regions:8d}")  # fmt: skip

# %%
exact_gap = np.array([a.gap for a in analyses])
# a self-check: no classifier beats Bayes-optimal (up to float rounding in the integrals)
assert exact_gap.min() > -1e-9, exact_gap.min()
sampled_gap = bayes.accuracy - sampled
fig, ax = plt.subplots(figsize=(7, 4))
for i, lr in enumerate(learning_rates):
    sel = lr_of == lr
    jitter = np.linspace(-0.08, 0.08, sel.sum())
    ax.scatter(i + jitter, exact_gap[sel], color=f"C{i}", s=40, label="exact" if i == 0 else None)
    ax.scatter(i + jitter, sampled_gap[sel], color=f"C{i}", s=40, marker="x",
               label="sampled" if i == 0 else None)  # fmt: skip
ax.axhline(0, color="k", lw=0.8)
ax.set_yscale("symlog", linthresh=1e-4)
ax.set_xticks(range(len(learning_rates)), [f"lr = {lr:g}" for lr in learning_rates])
ax.set_ylabel("Bayes accuracy − accuracy")
ax.set_title("gap to Bayes-optimal: exact (dots) vs sampled (crosses)")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# ## 4. Every neuron of one member
#
# We take the member with the highest exact accuracy. `layer_grid_figure` draws every
# hidden neuron's value over the input domain (a grid of forward passes: red positive,
# blue negative, white zero; one row per layer). The overlays come from the exact
# analysis: `layer_overlays(analysis)` gives, for each neuron, the exact linear-region
# boundaries (thin grey), the exact zero set of its pre-activation (black: where the ReLU
# switches on), the exact argmax over the domain (star) and its exact firing probability
# `P(on)` under the data.

# %%
best = int(np.argmax([a.accuracy for a in analyses]))
model, analysis = result.model(best), analyses[best]
print(f"member {best} ({ensemble.member_label(best)}): {analysis.geometry.num_regions} linear "
      f"regions, exact accuracy {analysis.accuracy:.6f}, gap {analysis.gap:.2e} "
      f"(tier {analysis.tier}, error <= {analysis.error:.0e})")  # fmt: skip
fig = layer_grid_figure(
    model, dist, overlays=layer_overlays(analysis), title=f"member {best}: every hidden neuron"
)
plt.show()

# %% [markdown]
# The neuron numbers behind the pictures, for a few neurons (all exact):

# %%
for name in ["hidden_0:0", "hidden_0:1", "hidden_1:0", "hidden_1:1"]:
    row = analysis.summary(name)
    print(f"{name}: P(on) = {row['firing_probability']:.4f}, E[a] = {row['mean']:.4f}, "
          f"max {row['max']:.3f} at ({row['argmax'][0]:.2f}, {row['argmax'][1]:.2f})")  # fmt: skip

# %% [markdown]
# The member's decision regions, its exact decision boundary (black) and the
# Bayes-optimal boundary (dashed magenta):

# %%
DataDisplay.from_model(
    dist, model, key=jax.random.key(1), num_samples=num_samples, analysis=analysis
).plot()
plt.show()

# %% [markdown]
# ## 5. The same experiment as a run directory
#
# For anything you want to keep, train into a **run directory**: `start_run` writes the
# resolved config, a manifest (versions, seeds, members, git hash), the metrics, log-spaced
# checkpoints and a resumable training state; `load_run` reads it back without executing
# any code. The same config on the same machine gives the same parameters.

# %%
config = ExperimentConfig(
    name="02_ensembles",
    seeds=tuple(seeds),
    distribution=to_config(dist),
    model=model_config,
    train=train_config,
    sweep=sweep,
)
t0 = time.perf_counter()
start_run(config, run_dir, overwrite=True)
print(f"trained into {run_dir} in {time.perf_counter() - t0:.1f} s")
for path in sorted(Path(run_dir).rglob("*")):
    if path.is_file():
        print(f"  {path.relative_to(run_dir)}  ({path.stat().st_size} bytes)")

# %%
run = load_run(run_dir)
print("status:", run.manifest["status"], " members:", run.num_members)
print("checkpoint steps:", run.checkpoint_steps)
print("distribution, as resolved in config.toml:", run.config.distribution)
same = jax.tree.map(lambda a, b: float(np.max(np.abs(np.asarray(a) - np.asarray(b)))),
                    run.params, result.params)  # fmt: skip
print("largest difference from the in-memory ensemble:", max(jax.tree.leaves(same)))
assert max(jax.tree.leaves(same)) < 1e-6  # same config, same machine: same parameters

# %% [markdown]
# Checkpoints let us watch one member learn: its exact decision boundary at four of the
# saved steps.

# %%
shown = [
    run.checkpoint_steps[i] for i in np.linspace(0, len(run.checkpoint_steps) - 1, 4).astype(int)
]
fig, axes = plt.subplots(1, len(shown), figsize=(4.4 * len(shown), 4.4), layout="constrained")
for ax, step in zip(axes, shown, strict=True):
    m_step = run.model(best, step=step)
    a_step = analyze(m_step, dist)
    disp = DataDisplay.from_model(
        dist, m_step, key=jax.random.key(1), num_samples=num_samples, analysis=a_step
    )
    disp.title = f"step {step}: exact accuracy {a_step.accuracy:.3f}"
    disp.plot(ax)
    if ax is not axes[0]:
        ax.get_legend().remove()
plt.show()

# %%
print(f"notebook ran in {time.perf_counter() - start:.1f} s")

# %% [markdown]
# ## Exercises
#
# 1. **Width.** Retrain with `hidden = [2]`, `[4]` and `[16]` (one `train` call each; a
#    sweep cannot change shapes). How does the best exact gap depend on the width? What is
#    the smallest width that gets within 1e-3 of Bayes-optimal on the XOR blobs, and how
#    many linear regions does it use?
# 2. **Dead neurons.** Using `summary["neurons"]`, find neurons whose exact firing
#    probability is below 1e-3. Does their map in the grid agree? Are there more of them at
#    the largest learning rate?
# 3. **Sampled vs exact.** For one member, estimate its accuracy from `n` fresh samples
#    (`dist.sample`, `model(x).argmax(-1)`) for `n` = 100 … 100 000, and plot the error
#    against `analysis.accuracy`. How many samples does it take to tell apart two members
#    whose exact accuracies differ by 1e-3?
# 4. **Resume.** Train a new run with `num_steps = 3000`, interrupt the kernel halfway,
#    then continue it with `toylab.runs.resume_run(run_dir)`. Compare its final parameters
#    with an uninterrupted run of the same config.
