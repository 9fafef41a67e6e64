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
# # 08 · Curve detectors, certified
#
# The Circuits thread studied **curve detectors** in InceptionV1 (Cammarata et al. 2020,
# *Curve Detectors* and *Curve Circuits*): neurons that fire for a curve at one
# orientation, fall to zero about 45° away and go negative for the opposite orientation.
# The evidence was sampled: dataset examples, feature visualization, synthetic curves on
# a grid. Here the images come from an **analytic family** (orientation θ, curvature κ,
# centre), so a channel's response is a known function of four numbers, and toylab can
# bound it over whole boxes of parameters: a **certified** tuning curve.
#
# You will
# 1. render the curve family and bound every pixel over a box of parameters;
# 2. train a small conv ensemble on orientation bins from a config;
# 3. draw the certified (θ, κ) tuning heat map of a channel;
# 4. find the curve detectors of every seed;
# 5. score the sampled methods (grid sweep, dataset examples, feature visualization)
#    against the certified answer;
# 6. write a curve detector by hand, check it with certified bounds, compare it with the
#    trained channels and transplant it into a trained network.
#
# Every number says how it was obtained: `certified` (a guaranteed enclosure) or
# `sampled` (a confidence interval). The first cell holds the sizes.

# %% tags=["parameters"]
num_seeds = 4  # members of the ensemble (one compiled program)
num_steps = 1_500  # training steps (Adam, learning rate 0.003, batch 64)
channels = [8, 8]  # channels of conv_0 (5x5) and conv_1 (3x3)
resolution = [36, 6]  # (theta, kappa) cells of the certified heat map
max_boxes = 2_000  # parameter boxes per certified computation
detector_resolution = 24  # theta cells per channel in the detector analysis
num_samples = 20_000  # images for the transplant accuracies
num_compare = 1_000  # (theta, kappa) points per circuit-channel correlation
circuit_step = 45  # degrees between the circuit orientations compared with each member
viz_steps = 100  # gradient-ascent steps of the feature visualization
num_certified = 4  # members whose circuit correlation is also certified
run_dir = "runs/08_curve_detectors"  # where section 2 writes its run
SMALL = {"num_seeds": 2, "num_steps": 20, "channels": [4, 4], "resolution": [12, 3],
         "max_boxes": 120, "detector_resolution": 8, "num_samples": 500, "num_compare": 200,
         "circuit_step": 90, "viz_steps": 20, "num_certified": 1}  # fmt: skip

# %%
# ruff: noqa: E402  (imports follow the parameters cell)
import math
import tempfile
import time

import jax
import matplotlib.pyplot as plt
import numpy as np

from toylab.config import ExperimentConfig
from toylab.curves import (
    analyze_detectors,
    certified_correlation,
    compare_circuit,
    curve_circuit,
    local_problem,
    score_dataset,
    score_featureviz,
    score_sweep,
    transplant,
    tuning,
)
from toylab.distributions import CurveImages
from toylab.models import ModelConfig
from toylab.runs import start_run
from toylab.train import TrainConfig

start = time.perf_counter()
jax_cache = tempfile.TemporaryDirectory(prefix="jax_cache_")  # removed when the kernel exits
jax.config.update("jax_compilation_cache_dir", jax_cache.name)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)

# %% [markdown]
# ## 1. The curve family
#
# `CurveImages` draws one blurred arc per 16x16 image: orientation θ (the tangent at the
# centre, counter-clockwise from the x axis), curvature κ (1/radius, the arc bends to the
# left of its direction; κ = 0 is a segment), centre (cx, cy). Rendering is a closed form
# (a smooth profile of the distance to the arc), so `render_bounds` can enclose every
# pixel over a **box** of parameters, with outward rounding: the certified building
# block of everything below.

# %%
family = CurveImages(size=16)
thetas = np.radians([0, 45, 90, 135, 180, 270])
kappas = [0.0, 0.1, 0.25]
fig, axes = plt.subplots(len(kappas), len(thetas), figsize=(1.6 * len(thetas), 1.7 * len(kappas)))
for r, ka in enumerate(kappas):
    for c, th in enumerate(thetas):
        img = family.render(np.array([th, ka, 7.5, 7.5])).reshape(16, 16)
        axes[r, c].imshow(img, cmap="gray", vmin=0, vmax=1)
        axes[r, c].set_title(f"θ={math.degrees(th):.0f}° κ={ka}", fontsize=7)
        axes[r, c].axis("off")
plt.show()

# A box of parameters: theta within ±5°, kappa in [0.1, 0.15], the centre within 0.25 px.
low = np.array([math.radians(40), 0.10, 7.25, 7.25])
high = np.array([math.radians(50), 0.15, 7.75, 7.75])
lo, hi = family.render_bounds(low, high)
inside = family.render(np.random.default_rng(0).uniform(low, high, (1000, 4)))
print(f"pixel bounds over the box [certified]: mean width {np.mean(hi - lo):.3f}, "
      f"max {np.max(hi - lo):.3f}; 1000 random renders inside: "
      f"{bool(np.all((lo <= inside) & (inside <= hi)))}")  # fmt: skip
fig, axes = plt.subplots(1, 3, figsize=(6, 2.2))
for ax, im, name in zip(axes, (lo, inside[0], hi), ("lower bound", "a render", "upper bound"),
                        strict=True):  # fmt: skip
    ax.imshow(im.reshape(16, 16), cmap="gray", vmin=0, vmax=1)
    ax.set_title(name, fontsize=8)
    ax.axis("off")
plt.show()

# %% [markdown]
# ## 2. A conv ensemble from a config
#
# The config is `[model] kind = "conv"` with two conv blocks (5x5 then 3x3, ReLU, 2x2
# average pooling) and a linear head over 8 orientation bins; the seeds train together
# in one compiled program. Lines look the same at θ and θ + 180°, so the task has no
# perfect answer on lines; the family here has κ ∈ [0, 0.25] drawn uniformly.

# %%
config = ExperimentConfig(
    name="08_curve_detectors",
    seeds=tuple(range(num_seeds)),
    distribution={"name": "curve_images", "size": 16, "task": "orientation", "num_bins": 8},
    model=ModelConfig(
        kind="conv",
        conv=tuple(
            {"channels": c, "kernel": k, "pool": "avg", "pool_window": 2}
            for c, k in zip(channels, (5, 3), strict=True)
        ),
        hidden=(),
        activation="relu",
    ),  # fmt: skip
    train=TrainConfig(
        optimizer="adam",
        learning_rate=0.003,
        batch_size=64,
        num_steps=num_steps,
        log_every=max(num_steps // 5, 20),
        checkpoints=[],
    ),  # fmt: skip
)
t0 = time.perf_counter()
run = start_run(config, run_dir, overwrite=True)
dist = run.dist_of(0)
print(f"trained {run.num_members} members in {time.perf_counter() - t0:.1f} s")
print(run.model(0).to_network())

# %% [markdown]
# ## 3. A certified tuning heat map
#
# Channel `conv_1:c` (channel c at the centre of the feature map) reads only its
# receptive field: `local_problem` cuts the network to the pixels and units that reach
# it (the same function, far fewer units), which makes the bounds fast. `tuning` then
# encloses the response on every cell of a (θ, κ) grid (the centre fixed), bisecting
# cells until the enclosure is narrow or the budget runs out. Left: the lower bound,
# right: the upper bound; the true response lies between them everywhere in the cell.

# %%
channel = 0
lp = local_problem(run.model(0), dist, f"conv_1:{channel}")
print(f"receptive field: {len(lp.pixels)} pixels, network {lp.network}")
heat = tuning(lp.network, lp.family, lp.neuron, resolution=tuple(resolution), tol=0.05,
              max_boxes=max_boxes)  # fmt: skip
glo, ghi = heat.grid_bounds()
fig, axes = plt.subplots(1, 2, figsize=(8, 2.6), layout="constrained")
for ax, g, name in zip(axes, (glo, ghi), ("lower", "upper"), strict=True):
    im = ax.imshow(g.T, origin="lower", aspect="auto", extent=(0, 360, 0, dist.kappa_max),
                   vmin=glo.min(), vmax=ghi.max())  # fmt: skip
    ax.set_xlabel("θ (degrees)")
    ax.set_ylabel("κ (1/px)")
    ax.set_title(f"conv_1:{channel} {name} bound [{heat.tier}]", fontsize=9)
fig.colorbar(im, ax=axes)
plt.show()
print(
    f"{heat.num_cells} cells, max enclosure width {heat.max_width:.3g}, "
    f"{heat.num_boxes} boxes in {heat.seconds:.1f} s, converged: {heat.converged}"
)

# %% [markdown]
# ## 4. The curve detectors of every seed
#
# `analyze_detectors` runs the article's statistics on every `conv_1` channel of every
# member, certified: the preferred orientation (an arc certified to hold the argmax), the
# tuning width at half maximum, the response ±45° away, the sign of the pre-activation
# at the opposite orientation, and the rule "peaked, near zero at ±45°, negative
# opposite". `is_detector` is `None` when the budget left a condition undecided.

# %%
det = analyze_detectors(run, resolution=detector_resolution, max_boxes=max_boxes,
                        invariance=False)  # fmt: skip
for fam in det.families:
    for ch in fam.channels:
        print(f"member {ch.member}: {ch.address:8s} preferred {ch.preferred:5.1f}°, peak "
              f"[{ch.peak[0]:.3g}, {ch.peak[1]:.3g}], half-max width [{ch.width[0]:.0f}°, "
              f"{ch.width[1]:.0f}°], detector: {ch.is_detector}")  # fmt: skip
print(f"detectors per member: {det.counts.tolist()} [{det.tier}] ({det.seconds:.1f} s)")

# %% [markdown]
# ## 5. Sampled methods against the certified answer
#
# Three sampled ways to ask "what does this channel respond to?", each scored against the
# certified maximum over the family: a **grid sweep** over (θ, κ) (what does it miss
# between grid points?), **dataset examples** (the top of a random sample) and
# **feature visualization** (gradient ascent in pixel space, which can go *above* the
# family: pixel space is larger than the family).

# %%
key = jax.random.key(0)
sweep = score_sweep(lp.network, lp.family, lp.neuron, points=(13, 4), max_boxes=max_boxes)
ext = (sweep.family_max, sweep.family_min)  # certified once, shared by the three scores
data = score_dataset(lp.network, lp.family, lp.neuron, key=key, num_samples=2000,
                     max_boxes=max_boxes, extremes=ext)  # fmt: skip
viz = score_featureviz(lp.network, lp.family, lp.neuron, key=key, num_starts=4,
                       num_steps=viz_steps, max_boxes=max_boxes, extremes=ext)  # fmt: skip
fmax = sweep.family_max
print(f"certified max over the family: [{fmax.lower:.4g}, {fmax.upper:.4g}] [{fmax.tier}]")
for s in (sweep, data, viz):
    print(f"{s.method:30s} found {s.sampled:.4g}; misleads: {s.misleads}")
print(f"feature visualization above the family's maximum: {viz.above_family}")

# %% [markdown]
# ## 6. A curve detector written by hand
#
# `curve_circuit` writes the construction of *Curve Circuits* as explicit weights
# (derived in its docstring): `conv_0` holds oriented **line detectors** (a Mexican hat
# across the line, a Gaussian along it); `conv_1` sums the line detectors whose
# position and orientation lie on the target **arc**, and subtracts those on its mirror
# image, which is exactly the curve of the opposite orientation. So a straight line
# gives 0, the target curve the peak, the opposite curve minus the peak, and a curve 45°
# off falls below the ReLU's threshold. `verify` checks this with certified maxima.

# %%
circ = curve_circuit(dist, orientation=math.radians(60), curvature=0.15)
print(circ.model)
small = CurveImages(size=10)  # the same construction on 10x10 images: fast certified check
check = curve_circuit(small, math.radians(60), 0.15).verify(small, max_boxes=max_boxes)
print(f"claim: {check.claim}\npassed: {check.passed} [{check.tier}]")
for k, v in check.numbers.items():
    print(f"  {k}: {v:.4g}")

# %%
cx, cy = circ.centre
th = np.linspace(0, 2 * math.pi, 181)
ka = np.linspace(0, dist.kappa_max, 26)
T, K = np.meshgrid(th, ka, indexing="ij")
P = np.stack([T, K, np.full_like(T, cx), np.full_like(T, cy)], -1).reshape(-1, 4)
resp = circ.model.values(dist.render(P), circ.neuron).reshape(T.shape)
fig, ax = plt.subplots(figsize=(5, 2.4))
ax.imshow(resp.T, origin="lower", aspect="auto", extent=(0, 360, 0, dist.kappa_max))
ax.set_xlabel("θ (degrees)")
ax.set_ylabel("κ (1/px)")
ax.set_title("the handwritten detector's response (dense sweep)", fontsize=9)
plt.show()

# %% [markdown]
# **Compare and transplant.** `compare_circuit` correlates the circuit's response with
# every `conv_1` channel at the same receptive field over random (θ, κ) (sampled, with
# a Fisher-z interval); `certified_correlation` encloses the correlation of the two
# orientation tuning curves from their certified tunings (loose when a tuning is wide). `transplant` writes the circuit into the best-matching trained
# channel: its line detectors become **new** `conv_0` channels (so nothing the other
# channels read changes) and the channel reads only them, scaled by least squares to the
# trained activations. The accuracy change is a paired difference on one fixed sample
# of images (sampled, 95% interval), beside the ablation of the same channel.

# %%
print("best-matching circuit orientation per member (sampled correlations):")
rows = []
for m in range(run.num_members):
    cands = [(compare_circuit(curve_circuit(dist, math.radians(d), 0.15), run.model(m), dist,
                              num_samples=num_compare), d)
             for d in range(0, 360, circuit_step)]  # fmt: skip
    cmp, deg = max(cands, key=lambda t: t[0].best_correlation)
    rows.append((m, deg, cmp))
    print(f"  member {m}: circuit {deg:3d}° ~ conv_1:{cmp.best} r = {cmp.best_correlation:.3f} "
          f"[{cmp.best_interval[0]:.3f}, {cmp.best_interval[1]:.3f}] [{cmp.tier}]")  # fmt: skip

# the same comparison certified, for the orientation tuning curves (kappa = 0.15)
for m, deg, cmp in rows[:num_certified]:
    cc = certified_correlation(curve_circuit(dist, math.radians(deg), 0.15), run.model(m), dist,
                               cmp.best, resolution=24, max_boxes=max_boxes)  # fmt: skip
    print(f"  member {m}: theta tuning correlation in [{cc.lower:.3f}, {cc.upper:.3f}] "
          f"[{cc.tier}] (grid estimate {cc.sampled:.3f})")  # fmt: skip

m, deg, cmp = rows[0]
tr = transplant(run.model(m), cmp.best, curve_circuit(dist, math.radians(deg), 0.15), dist,
                num_samples=num_samples, seed=1)  # fmt: skip
print(
    f"member {m}, conv_1:{cmp.best} <- circuit {deg}° (scale {tr.scale:.3g}), "
    f"{tr.num_samples} images [{tr.tier}]:"
)
print(
    f"  accuracy {tr.accuracy_before:.4f} -> {tr.accuracy_after:.4f}: change "
    f"{tr.effect:+.4f} [{tr.effect_interval[0]:+.4f}, {tr.effect_interval[1]:+.4f}]"
)
print(f"  ablating the channel instead: {tr.accuracy_ablated:.4f}, change "
      f"{tr.ablation_effect:+.4f} [{tr.ablation_interval[0]:+.4f}, "
      f"{tr.ablation_interval[1]:+.4f}]")  # fmt: skip

# %%
print(f"notebook ran in {time.perf_counter() - start:.1f} s")

# %% [markdown]
# ## Exercises
#
# 1. **Width against curvature.** Rerun section 4 with `curvatures=4`: does the tuning
#    width of the detectors grow or shrink with κ (the article's "triangle")?
# 2. **A better circuit.** Change `beta`, `threshold` and `num_orientations` of
#    `curve_circuit`. Which setting raises the correlation with the best trained channel?
#    Does the certified `verify` still pass?
# 3. **Grid sweeps.** In section 5, shrink the sweep to `points=(7, 3)`. How much does it
#    miss now, certified? Where in (θ, κ) is the missed maximum?
