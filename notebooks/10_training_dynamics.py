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
# # 10 · Training dynamics and the loss landscape, seen through exact neuron functions
#
# A network is trained by rolling down a loss landscape. The essays toylab grew from
# (`shared/seeds/`: the circuits thread and "Towards transparent AI in practice") ask two
# things of a laboratory like this one: that every neuron's function be known *exactly*
# (not sampled), and that the circuits view be compared with what is known about loss
# landscapes, for instance that "some directions in the loss landscape are more important
# than others", and whether such directions play a role from the circuits point of view.
# toylab keeps checkpoints on a log scale and computes everything about a small network
# on a 2-D distribution exactly, so we can watch every neuron's function form and tie it
# to the landscape.
#
# You will
# 1. train a k-class Gaussian mixture ensemble into a **run on disk** with log-spaced
#    checkpoints;
# 2. follow the exact quantities along training (accuracy and gap to Bayes, linear regions,
#    firing probabilities), the births, deaths and settling of units, and one neuron's
#    exact map through training;
# 3. compute the Hessian of the training loss at every checkpoint: its outlier eigenvalues
#    against the number of classes (Papyan 2019, 2020), the overlap of the gradient with
#    the top subspace (Gur-Ari, Roberts & Dyer 2018, *Gradient descent happens in a tiny
#    subspace*), and which neurons live in that subspace;
# 4. walk the straight line between two seeds and between two checkpoints (linear mode
#    connectivity, Frankle et al. 2020) with the exact accuracy along the path;
# 5. train modular addition until it groks and locate memorisation, circuit formation and
#    cleanup with the progress measures of Nanda et al. (2023);
# 6. write the whole report with `toylab dynamics RUN`.
#
# **Tiers.** Every number printed below says how it was obtained: `exact` (closed form,
# enumeration or exact geometry in float64; the error is a rounding budget), `estimated`
# (an error estimate, not a guarantee) or `sampled` (a confidence interval).
#
# The first cell holds the sizes; make them smaller for a quick run.

# %% tags=["parameters"]
num_classes = 4  # k: the blobs of the main run, one class each
scale = 0.7  # the blobs' standard deviation (radius 3): the classes overlap a little
hidden = 16  # hidden ReLU units of the main run
seeds = [0, 1, 2]  # members of the main run (one program)
num_steps = 1_000  # SGD steps of the main run
num_checkpoints = 12  # log-spaced checkpoints ("log:N")
outlier_ks = [2, 3, 4, 6, 8]  # numbers of classes of the outliers-against-k study
outlier_steps = 1_000  # training steps of each run of that study
path_points = 17  # points along each straight line of section 4
grok_p = 23  # the modulus of the grokking run (examples/grokking.toml: 23)
grok_hidden = 96  # its hidden width (examples/grokking.toml: 96)
grok_steps = 3_000  # its training steps (examples/grokking.toml: 3000)
grok_checkpoints = 40  # its log-spaced checkpoints (examples/grokking.toml: 40)
report_checkpoints = 8  # checkpoints the `toylab dynamics` report analyses
run_dir = "runs/10_training_dynamics"  # where the two runs go (relative to the notebook)
SMALL = {"hidden": 6, "seeds": [0, 1], "num_steps": 60, "num_checkpoints": 4,
         "outlier_ks": [4], "outlier_steps": 40, "path_points": 5, "grok_p": 7,
         "grok_hidden": 16, "grok_steps": 40, "grok_checkpoints": 4,
         "report_checkpoints": 3}  # fmt: skip

# %%
# ruff: noqa: E402  (imports follow the parameters cell)
import tempfile
import time
import tomllib
from pathlib import Path

import jax
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Image, Markdown, display

import toylab
from toylab.config import parse_config
from toylab.distributions import blobs_on_circle
from toylab.dynamics import (
    animation_path,
    landscape,
    mode_connectivity,
    progress_measures,
    trajectory,
    write_dynamics_report,
)
from toylab.models import ModelConfig
from toylab.runs import start_run
from toylab.tiers import weakest
from toylab.train import TrainConfig, train
from toylab.viz.dynamics import (
    NeuronAnimationDisplay,
    TrajectoryDisplay,
    UnitQuantitiesDisplay,
    UnitTimelineDisplay,
)
from toylab.viz.grokking import grokking_figure
from toylab.viz.landscape import (
    GradientOverlapDisplay,
    HessianSpectrumDisplay,
    ModeConnectivityDisplay,
)

start = time.perf_counter()
# Keep compiled programs in an on-disk cache (a temporary directory) for this kernel.
jax_cache = tempfile.TemporaryDirectory(prefix="jax_cache_")  # removed when the kernel exits
jax.config.update("jax_compilation_cache_dir", jax_cache.name)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
workdir = Path(run_dir)  # runs/10_training_dynamics/{blobs,grokking}: toylab runs, replaced
print("runs are written under", workdir.resolve())  # by the next run of this notebook

# %% [markdown]
# ## 1. A run with log-spaced checkpoints
#
# `blobs_on_circle(k, labels="distinct")` puts `k` isotropic Gaussian blobs on a circle of
# radius 3, blob `j` of class `j`. One hidden layer of ReLU units, softmax cross-entropy,
# plain SGD (the optimizer of Gur-Ari et al.; with Adam the step is not the gradient) on a
# fixed training set of 512 samples per seed, so that the training loss is a finite sum
# and its Hessian can be computed **exactly**. `checkpoints = "log:N"` keeps `N`
# checkpoints evenly spaced in log step: training changes fastest at the beginning.
#
# `start_run` writes the run to disk (config, checkpoints with their SHA-256, metrics);
# every function of `toylab.dynamics` reads a run, and `toylab dynamics RUN` writes its
# report into `RUN/dynamics/`.

# %%
config = parse_config({
    "name": f"blobs{num_classes}",
    "seeds": list(seeds),
    "distribution": {"name": "blobs_on_circle", "k": num_classes, "labels": "distinct",
                     "scale": scale},
    "model": {"hidden": [hidden], "activation": "relu"},
    "train": {"optimizer": "sgd", "learning_rate": 0.2, "num_steps": num_steps,
              "log_every": max(num_steps // 4, 1), "checkpoints": f"log:{num_checkpoints}",
              "data": "fixed", "num_train": 512},
})  # fmt: skip
t0 = time.perf_counter()
run = start_run(config, workdir / "blobs", overwrite=True)
print(f"trained {run.num_members} members for {num_steps} steps in "
      f"{time.perf_counter() - t0:.1f} s; checkpoints at steps {run.checkpoint_steps}")  # fmt: skip

# %% [markdown]
# ## 2. Exact quantities along training
#
# `trajectory(run)` runs `toylab.exact.analyze` on every member at every checkpoint: the
# exact partition of the plane into linear regions, integrated under the Gaussian mixture.
# It keeps the exact accuracy and its gap to the Bayes-optimal accuracy, the number of
# linear regions of the domain box, and for every hidden unit its firing probability
# `P(a_i > 0)`, mean, second moment and extrema. It also measures **how far each unit's
# function moves** between consecutive checkpoints `t < t'`,
#
# `d_i(t, t') = E[(a_i(t) − a_i(t'))²] / Var(a_i(t'))`,
#
# exactly, by analysing both checkpoints' networks side by side (one joint analysis gives
# the cross moment `E[a(t) a(t')]`). The result is stored in `RUN/dynamics/trajectory.npz`
# and reused by later calls and by `toylab dynamics`.
#
# The network's accuracy is `exact` (its decision regions are polygons). The Bayes-optimal
# accuracy of a mixture of more than two Gaussians has no closed form here: toylab
# computes it by nested quadrature (exact normal CDFs along one axis, adaptive
# Gauss–Legendre along the other) with an error *estimate*: `estimated`. So is the gap,
# and with it the trajectory's overall tier.

# %%
t0 = time.perf_counter()
traj = trajectory(run)
print(f"{traj.num_members} members × {traj.num_steps} checkpoints analysed in "
      f"{time.perf_counter() - t0:.1f} s; overall tier [{traj.overall_tier}], largest "
      f"analysis error {np.nanmax(traj.error):.1e}")  # fmt: skip
print(f"Bayes-optimal accuracy {traj.bayes_accuracy[0]:.6f} [{traj.bayes_tier[0]}, "
      f"± {traj.bayes_error[0]:.1e}]")  # fmt: skip
alive = traj.alive.sum(-1)
print(f"\n{'step':>6s} " + " ".join(f"{'acc m' + str(m):>10s} {'gap':>9s} {'regions':>7s} "
                                     f"{'live':>4s}" for m in traj.members))  # fmt: skip
for t, step in enumerate(traj.steps):
    print(f"{step:6d} " + " ".join(f"{traj.accuracy[i, t]:10.6f} {traj.gap[i, t]:9.2e} "
                                   f"{traj.num_regions[i, t]:7d} {alive[i, t]:4d}"
                                   for i in range(traj.num_members)))  # fmt: skip
acc_tier = weakest(*map(str, traj.tier.ravel()))
gap_tier = weakest(acc_tier, *map(str, traj.bayes_tier))
print(f"[accuracy, regions, live units: {acc_tier} (error ≤ {np.nanmax(traj.error):.1e}); "
      f"gap: {gap_tier}, it includes the Bayes-optimal accuracy]")  # fmt: skip
TrajectoryDisplay.from_trajectory(traj, [run.member_label(m) for m in traj.members]).plot()
plt.show()

# %% [markdown]
# Accuracy climbs to the Bayes-optimal accuracy within a few steps on the log time axis;
# the gap to Bayes then shrinks to a few 10⁻⁴ (and wobbles: the members fit their own 512
# training samples, not the distribution). The number of linear regions is set by the
# hidden units' lines crossing the domain box.
#
# Look at the last panel: at the default sizes the median unit moves by well under 1% of
# its own variance between checkpoints. The hidden units' lines at initialisation already
# cut the blobs, and most of the learning happens in the readout: this small network
# trains close to its *lazy* (linearised) regime. Smaller initial weights or more classes
# than units would force the hidden layer to move (exercise 2).
#
# ### Every unit of one member
#
# Firing probability and mean of each unit against the step, and its distance `d_i` from
# the previous checkpoint with the settling threshold (0.01). Below: a **timeline**, one row
# per unit: grey where it is alive (not constant under the distribution), `^` its *birth*
# (the first checkpoint from which it stays alive), `x` its *death* (from which it stays
# dead: a ReLU that never fires any more), `|` where its function *settles* (every later
# distance below the threshold).

# %%
m0 = int(traj.members[0])
fig = plt.figure(figsize=(13, 3.6))
UnitQuantitiesDisplay.from_trajectory(traj, m0, title=f"member {m0}").plot(fig)
plt.show()
UnitTimelineDisplay.from_trajectory(traj, m0, title=f"member {m0}").plot()
plt.show()
births, deaths, settle = traj.births(), traj.deaths(), traj.settle_steps()
i0 = traj.index_of(m0)
print(f"{'neuron':12s} {'birth':>6s} {'death':>6s} {'settles':>8s} {'P(a>0) end':>11s} "
      f"{'last d':>9s} {'± (bound)':>9s}")  # fmt: skip
for u, name in enumerate(traj.neurons):
    print(f"{name:12s} {births[i0, u]:6d} {deaths[i0, u]:6d} {settle[i0, u]:8d} "
          f"{traj.firing_probability[i0, -1, u]:11.6f} {traj.distance[i0, -1, u]:9.2e} "
          f"{traj.distance_error[i0, -1, u]:9.1e}")  # fmt: skip
dtiers = ", ".join(sorted({str(t) for t in traj.distance_tier[i0] if t}))
print(f"(-1: never) [distances: {dtiers}; ±: the bound on each distance's error]")
for i, m in enumerate(traj.members):
    s = settle[i]
    print(f"member {m}: {int((deaths[i] >= 0).sum())} dead units at the end, "
          f"{int((s >= 0).sum())} of {len(s)} settled, the last at step "
          f"{int(s.max()) if (s >= 0).any() else '-'}")  # fmt: skip

# %% [markdown]
# ### One neuron's exact map through training
#
# The unit of member 0 that settles last (or never). Each frame is its map at one
# checkpoint: the colour comes from a grid of forward passes (for the eye only), but the
# overlays are exact: thin grey lines are the linear-region boundaries, black the zero set
# of the unit's pre-activation, the star its exact argmax over the domain. Small multiples
# first, then the same frames as an animated GIF (the atlas shows one per neuron).

# %%
order = np.where(settle[i0] < 0, np.iinfo(np.int64).max, settle[i0])
neuron = str(traj.neurons[int(np.argmax(order))])
anim = NeuronAnimationDisplay.from_run(run, neuron, member=m0, num=60)
anim.plot(ncols=min(len(anim.steps), 6))
plt.show()
display(Image(data=anim.gif_bytes(fps=2, dpi=60)))  # or anim.save_gif(path)

# %% [markdown]
# ## 3. The loss landscape: Hessian outliers and the tiny subspace
#
# `landscape(run)` computes, per member and checkpoint, the full Hessian `H = ∇²L` of the
# training loss with respect to all parameters (116 for k = 4 and 16 units) by
# forward-over-reverse differentiation in float64, all members in one compiled program,
# and its spectrum.
#
# * **Outliers.** Papyan (2019, 2020) found the spectrum of a trained classifier to be a
#   bulk near zero plus a few *outliers*, about one per class (`k`, or `k − 1`: the
#   softmax's curvature has rank `k − 1` per example), explained by the class means of
#   the logit gradients. The rule here: the number of outliers is the `c` with the largest
#   log-gap `log λ_c − log λ_{c+1}` among the top `3k` eigenvalues.
# * **Gradient overlap.** Gur-Ari, Roberts & Dyer (2018) found that after a short initial
#   phase the gradient lies mostly in the span of the top-`k` eigenvectors:
#   `‖P_k g‖² / ‖g‖²` near 1, and that this subspace changes little. `subspace_stability`
#   is the mean squared cosine of the principal angles between consecutive checkpoints'
#   top subspaces (1: the same; `k / P` for random ones).
# * **Which neurons live there?** `neuron_share` is the fraction of the top subspace lying
#   on one neuron's incoming weights and bias (the shares of all parameters sum to 1);
#   `neuron_projection` how much of the neuron's own weight vector lies in it.
#
# The loss is a finite sum over each member's fixed training set, so the Hessian is
# `exact`; its error is a rounding budget.

# %%
t0 = time.perf_counter()
land = landscape(run)
print(f"in {time.perf_counter() - t0:.1f} s")
print(land.summary())
print(f"\ngradient overlap with the top-{land.k} subspace ‖P_k g‖²/‖g‖² [{land.tier}]:")
print(f"{'step':>6s} " + " ".join(f"{'member ' + str(m):>10s}" for m in land.members)
      + f" {'(bound)':>8s}")  # fmt: skip
for t, step in enumerate(land.steps):
    print(f"{step:6d} " + " ".join(f"{v:10.3f}" for v in land.gradient_overlap[:, t])
          + f" {land.overlap_error[:, t].max():8.1e}")  # fmt: skip
print(f"subspace stability between consecutive checkpoints (member {int(land.members[0])}): "
      f"{np.round(land.subspace_stability[0], 3).tolist()} [{land.tier}]")  # fmt: skip
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 3.8), layout="constrained")
HessianSpectrumDisplay.from_result(land, int(land.members[0])).plot(ax1)
GradientOverlapDisplay.from_result(land).plot(ax2)
plt.show()

# %% [markdown]
# Look at three things: whether the outlier count at the end is near `k`, when the
# gradient overlap becomes large, and whether it stays so. At the default sizes we saw
# exactly 4 outliers for 4 classes at the end in every member, from step ~80 on; an
# overlap of 0.77 to 0.96 during the fast phase (steps 2 to 7), as Gur-Ari et al. describe,
# which
# then *falls* to 0.1 or below once the loss has flattened, and for some seeds rises
# again late. Near the end the loss is small and the gradient tiny; its direction then
# follows the slow drift of the cross-entropy towards larger margins rather than the
# sharpest directions. The top subspace itself is stable (stability near 1 from step ~20
# on). Papyan's outliers and Gur-Ari et al.'s subspace were found for large networks:
# this small exact setting shows where they hold and where not.
#
# ### Which neurons live in the top subspace?

# %%
share, proj = land.neuron_share[0, -1], land.neuron_projection[0, -1]
fp_end = traj.firing_probability[traj.index_of(int(land.members[0])), -1]
print(f"member {int(land.members[0])}, step {int(land.steps[-1])} [{land.tier}]:")
print(f"{'neuron':12s} {'share of P_k':>12s} {'projection':>10s} {'P(a>0)':>9s} {'settles':>8s}")
for u in np.argsort(-share):
    name = land.neurons[u]
    j = list(traj.neurons).index(name)
    print(f"{name:12s} {share[u]:12.4f} {proj[u]:10.4f} {fp_end[j]:9.4f} "
          f"{settle[traj.index_of(int(land.members[0])), j]:8d}")  # fmt: skip
print(f"the hidden neurons hold {share.sum():.3f} of the top subspace; the output layer the rest")

# %% [markdown]
# ### Outliers against the number of classes
#
# The same experiment for several `k`, each trained with `train` (a `TrainResult` works
# wherever a run does; for `k = num_classes` we reuse the run above). For each `k` we
# print the outlier count of every member at every checkpoint, and the median at the
# last one.

# %%
outliers_rows = []
for k in outlier_ks:
    if k == num_classes:
        outliers_rows.append((k, land))
        print(f"k = {k}: the run above; outliers at the end {land.num_outliers[:, -1].tolist()}")
        continue
    dist_k = blobs_on_circle(k, labels="distinct", scale=scale)
    cfg_k = TrainConfig(optimizer="sgd", learning_rate=0.2, num_steps=outlier_steps,
                        log_every=outlier_steps, checkpoints=f"log:{max(num_checkpoints // 2, 3)}",
                        data="fixed", num_train=512)  # fmt: skip
    t0 = time.perf_counter()
    res_k = train(dist_k, ModelConfig(hidden=(hidden,)), cfg_k, seeds=seeds)
    land_k = landscape(res_k)
    last = land_k.num_outliers[:, -1]
    outliers_rows.append((k, land_k))
    print(f"k = {k}: {land_k.num_params} parameters; outliers by step "
          f"{dict(zip(land_k.steps.tolist(), land_k.num_outliers.T.tolist(), strict=True))}; "
          f"at the end median {np.median(last):g} [{land_k.tier}] "
          f"({time.perf_counter() - t0:.1f} s)")  # fmt: skip
fig, ax = plt.subplots(figsize=(5.2, 3.8))
for k, land_k in outliers_rows:
    last = land_k.num_outliers[:, -1]
    ax.plot(np.full(len(last), k) + np.linspace(-0.1, 0.1, len(last)), last, "o", color="C0")
ks = np.array(outlier_ks)
ax.plot(ks, ks, "k--", lw=1, label="one per class")
ax.plot(ks, ks - 1, "k:", lw=1, label="k − 1")
ax.set_xlabel("number of classes k")
ax.set_ylabel("outlier eigenvalues at the end [exact]")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# At the default sizes we saw exactly `k` outliers at the end for `k = 2, 4, 6, 8` in every
# member, but not for `k = 3` (counts 1, 2 and 4): there the log-gap rule picks a different
# break in a spectrum without one clear gap. Draw `HessianSpectrumDisplay` for those
# members to see why; an outlier count is only as meaningful as its gap (`outlier_gap`).

# %% [markdown]
# ## 4. Linear mode connectivity
#
# Frankle et al. (2020) asked whether two networks are connected by a straight line of low
# loss: `θ(α) = (1 − α) θ_a + α θ_b`. A **barrier** (a bump of the loss along the line)
# means two different basins. Two independently trained seeds usually have one (the hidden
# units are in different orders, among other things: permuting them gives the same
# function but a different point); two late checkpoints of one member usually do not.
# `mode_connectivity` evaluates the loss along the line in one program and, because the
# inputs are 2-D, the **exact** accuracy of every interpolated network.
#
# Between two seeds the training sets differ, so the loss is the population loss on a
# fixed sample (tier `sampled`, a 95% interval); between two checkpoints of one member it
# is its training loss (`exact`). The barrier itself is the maximum of a refined grid:
# `estimated` at best.


# %%
def describe_path(path, what):
    acc = (f"exact accuracy from {path.accuracy.min():.6f} to {path.accuracy.max():.6f} "
           f"[{path.accuracy_tier}]" if path.accuracy is not None else path.accuracy_method)  # fmt: skip
    print(f"{what}: ‖θ_b − θ_a‖ = {path.distance:.3f}; loss at the ends "
          f"{path.loss[0]:.4f}, {path.loss[-1]:.4f} ± {path.loss_error.max():.1e} [{path.tier}]; "
          f"barrier {path.barrier:.4f} ± {path.barrier_error:.1e} at α = "
          f"{path.barrier_alpha:.2f} [{path.barrier_tier}]; {acc}")  # fmt: skip


steps = run.checkpoint_steps
seed_path = mode_connectivity(run, 0, 1, num_points=path_points)
ckpt_path = mode_connectivity(run, (0, steps[-3]), (0, steps[-1]), num_points=path_points,
                              on="train")  # fmt: skip
describe_path(seed_path, f"seeds {seeds[0]} and {seeds[1]} (final)")
describe_path(ckpt_path, f"member 0, steps {steps[-3]} and {steps[-1]}")
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 3.8), layout="constrained")
ModeConnectivityDisplay.from_path(seed_path).plot(ax1)
ax1.set_title(f"seed {seeds[0]} → seed {seeds[1]}")
ModeConnectivityDisplay.from_path(ckpt_path).plot(ax2)
ax2.set_title(f"member 0: step {steps[-3]} → {steps[-1]}")
plt.show()

# %% [markdown]
# At the default sizes we saw a barrier of 0.18 ± 0.02 (sampled) halfway between seeds 0
# and 1, where the exact accuracy of the interpolated network drops from 0.997 to 0.935:
# two basins. Between steps 285 and 1000 of member 0 the loss falls monotonically along
# the line: no barrier, one basin. Exercise 3 asks how much of the first barrier is only
# the order of the hidden units.

# %% [markdown]
# ## 5. Grokking: progress measures and phases
#
# A small network trained on half of the table of `(a + b) mod p` first **memorises** its
# training pairs (train accuracy 1, test accuracy near 0) and only much later
# **generalises**. Nanda et al. (2023, *Progress measures for grokking via mechanistic
# interpretability*) reverse-engineered the algorithm (a few key Fourier frequencies
# `w_k = 2πk/p`; `cos(w(a + b − c))` summed over them peaks at `c = a + b`) and defined
# progress measures that move *before* the test accuracy does:
#
# * the **restricted loss**: the logits projected onto the key frequencies' Fourier
#   directions (only the circuit kept): it falls as the circuit forms;
# * the **excluded loss** on the training pairs: those directions removed (only the
#   memorisation left): it *rises* during circuit formation;
# * the Fourier sparsity of the embeddings and neurons, and the total **weight norm**,
#   which weight decay shrinks during **cleanup**, when the memorising components are
#   removed and the test loss falls.
#
# The phases (memorisation, circuit formation, cleanup) are located from these measures by
# a stated rule (`toylab.dynamics.locate_phases`). For an MLP on one-hot operands with
# quadratic units, the published setting is Gromov (2023), *Grokking modular arithmetic*;
# `examples/grokking.toml` trains it (about a minute on two cores). Every measure is
# computed exactly by enumerating all `p²` pairs in float64.

# %%
example = Path(toylab.__file__).resolve().parents[1] / "examples" / "grokking.toml"
with open(example, "rb") as f:
    grok = tomllib.load(f)
grok["distribution"]["p"] = grok_p
grok["model"]["hidden"] = [grok_hidden]
grok["train"].update(num_steps=grok_steps, checkpoints=f"log:{grok_checkpoints}",
                     log_every=max(grok_steps // 10, 1))  # fmt: skip
print(f"{example.name} at p = {grok_p}, hidden {grok_hidden}, {grok_steps} steps, "
      f"{grok_checkpoints} checkpoints, seeds {grok['seeds']}")  # fmt: skip
t0 = time.perf_counter()
grok_run = start_run(parse_config(grok), workdir / "grokking", overwrite=True)
print(f"trained in {time.perf_counter() - t0:.1f} s")
t0 = time.perf_counter()
grok_res = progress_measures(grok_run)
print(f"progress measures in {time.perf_counter() - t0:.1f} s [{grok_res.tier}, rounding "
      f"budget {grok_res.error:.1e}]")  # fmt: skip
print(grok_res.summary())
for i, m in enumerate(grok_res.members):
    ph = grok_res.phases[i]
    print(f"member {m}: train accuracy {grok_res.train_accuracy[i, -1]:.4f}, test accuracy "
          f"{grok_res.test_accuracy[i, -1]:.4f} at the end [exact]")  # fmt: skip
    for phase, trend in ph.trends.items():
        if trend:  # the change of each measure from the phase's first to its last checkpoint
            print(f"  {phase:18s} " + ", ".join(f"{k} {v:+.3g}" for k, v in trend.items()))
print("\nrule:", grok_res.phases[0].rule)
display(grokking_figure(grok_res, 0))

# %% [markdown]
# In the published order, the excluded loss turns up (the circuit starts to carry the
# training pairs) well before the test accuracy jumps, and the weight norm falls during
# cleanup. `published_order` says whether this member shows all of it. At the default
# sizes (`examples/grokking.toml` as it is) we saw, for both seeds: memorisation from step
# 0 to 112, circuit formation 112 to 385 (the excluded loss rises, the restricted loss
# falls), cleanup 385 to 713 (the sum of squared weights falls by about 20 from its peak of about
# 350, the test loss drops),
# test accuracy ≥ 0.95 from step 713: the published order. At the small test sizes the
# network has no time to grok and the later phases are `None`: that is the honest answer,
# not a failure.

# %% [markdown]
# ## 6. The report: `toylab dynamics RUN`
#
# Everything above, for any run, in one command:
#
#     toylab dynamics RUN [--members M ...] [--max-checkpoints N]
#
# writes `RUN/dynamics/index.md` with its figures, `summary.json` and an animated GIF of
# every neuron's exact map through training (which `toylab atlas` shows on the neuron's
# page). Sections that do not apply to a run say so in one line (the grokking section on
# the blobs run; the neuron maps on modular addition). A mistake (a member the run does
# not have) is a one-line error with exit status 2, not a traceback. From Python the same report is
# `write_dynamics_report(run, ...)`, which we call here (in this kernel the compiled
# programs are already warm; the CLI would start a fresh process). The trajectory is
# reused from `RUN/dynamics/trajectory.npz` where it covers the chosen checkpoints.

# %%
t0 = time.perf_counter()
index = write_dynamics_report(run, max_checkpoints=report_checkpoints)
print(f"toylab dynamics {run.path} --max-checkpoints {report_checkpoints}  ->  {index} "
      f"({time.perf_counter() - t0:.1f} s)")  # fmt: skip
print("written:", sorted(p.name for p in index.parent.iterdir()))
# the report's prose (its tables and figures are in the files; the figures' links are
# relative to RUN/dynamics, so we show one from its file below)
text = [ln for ln in index.read_text().splitlines() if not ln.startswith(("![", "|"))]
display(Markdown("\n".join(text[:60])))
display(Image(filename=str(index.parent / "landscape.png")))
display(Image(filename=str(animation_path(run.path, m0, traj.neurons[0]))))

# %%
print(f"notebook ran in {time.perf_counter() - start:.1f} s")

# %% [markdown]
# ## Exercises
#
# 1. **Adam instead of SGD.** Retrain section 1 with `"optimizer": "adam"` and
#    `"learning_rate": 0.01`. The Hessian is the same function of the parameters, but the
#    step is no longer the gradient: does the gradient overlap with the top subspace
#    change? Does the trajectory pass through different outlier counts?
# 2. **Make the hidden layer move.** Set `num_classes = 8` and `hidden = 4` (fewer units
#    than blobs), or raise `scale` to 1.2 so that the classes overlap. Do units now die
#    or get born late, and do they settle later? Does the outlier count still follow `k`,
#    and how does the gap to Bayes evolve?
# 3. **Permutations and barriers.** Match the hidden units of seeds 0 and 1 with
#    `toylab.circuits.match_neurons` (it uses the exact cross moments), permute seed 1's
#    units by `layers[0].perm` (the hidden kernel's columns and bias, the readout's rows,
#    with `Network.with_layer`), and recompute the straight-line path
#    between the models with `mode_connectivity([model_a, model_b_permuted], 0, 1,
#    dist=...)`. How much of the barrier was the permutation?
# 4. **When does the neuron settle?** Compare each unit's settle step with the step at
#    which its `neuron_share` of the top subspace peaks. Do the neurons in the important
#    directions settle last?
