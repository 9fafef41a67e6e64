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
# # 09 · Universality: do many seeds learn the same units?
#
# The Circuits thread (Olah et al. 2020, *Zoom In*) made three claims about vision
# networks: features are the units of networks, circuits connect them, and
# **universality**: "analogous features and circuits form across models and tasks". It
# called universality the most speculative of the three; the evidence was curve and edge
# detectors that look alike in different ImageNet models. Checking it needs a way to say
# when two units "are the same", and a baseline for how alike two units are *by chance*.
#
# Small 2-D networks make both precise. toylab trains dozens of seeds in one compiled
# program, and on a Gaussian mixture it knows every unit's function **exactly**: the
# correlation of two units under the data distribution is a closed-form integral over
# the networks' linear regions, not an estimate from a sample of inputs. A second
# question from the same essays: *what does a neuron model?* The data distribution
# (where the data is), or only the decision boundary between the classes?
#
# You will
# 1. train `num_seeds` seeds of a 2-8-8-2 ReLU MLP on **two blobs** and on **XOR blobs**
#    in one call, into a run directory;
# 2. match every unit of every seed against a reference seed with exact correlations,
#    and compare the best-match scores with two chance baselines (random initialisation
#    and layer shuffles);
# 3. look at the **families** of units that recur across seeds, their exact maps side by
#    side, and at a unit that one seed **splits** into two;
# 4. compare whole layers with **CKA** (Kornblith et al. 2019), computed exactly from
#    second moments, and check its invariances against **CCA** (Raghu et al. 2017,
#    SVCCA);
# 5. score units for **density vs decision boundary**, first on two handwritten
#    detectors whose answer we know, then on the trained units;
# 6. measure **clusterability** of the weight graph (Filan et al. 2021) against shuffles.
#
# Every number is printed with its tier: `exact` (closed form, exact geometry, float64
# rounding only), `certified` (a guaranteed enclosure), `estimated` (an error estimate,
# not a guarantee) or `sampled` (a confidence interval). The first cell holds the sizes.

# %% tags=["parameters"]
num_seeds = 64  # seeds per distribution (both distributions train in one call)
num_steps = 2_000  # training steps (Adam, learning rate 0.01, batch 128)
hidden = [8, 8]  # hidden layer widths
baseline_size = 32  # chance networks per baseline (random init, layer shuffle)
num_families = 4  # recurring families drawn per distribution
members_shown = 5  # seeds drawn per family
num_density_members = 8  # members per distribution scored for density vs boundary
num_cluster_members = 16  # members per distribution scored for clusterability
num_shuffles = 100  # weight shuffles of the clusterability baseline
run_dir = "runs/09_universality"  # where section 1 writes its run (relative to the notebook)
SMALL = {"num_seeds": 4, "num_steps": 60, "baseline_size": 4, "num_families": 2,
         "members_shown": 3, "num_density_members": 1, "num_cluster_members": 2,
         "num_shuffles": 10}  # fmt: skip

# %%
# ruff: noqa: E402  (imports follow the parameters cell)
import math
import tempfile
import time

import jax
import matplotlib.pyplot as plt
import numpy as np

from toylab.config import ExperimentConfig
from toylab.exact import analyze
from toylab.models import ModelConfig
from toylab.network import Network
from toylab.runs import start_run
from toylab.tiers import weakest
from toylab.train import SweepConfig, TrainConfig
from toylab.universality import (
    cca,
    clusterability,
    clusterability_ensemble,
    density_scores,
    distribution_groups,
    init_networks,
    linear_cka,
    match_ensemble,
    procrustes,
    similarity_matrix,
)
from toylab.viz import NeuronMapDisplay, grid_values
from toylab.viz.density import DensityScoresDisplay

start = time.perf_counter()
# Keep compiled programs in an on-disk cache (a temporary directory) for this kernel.
jax_cache = tempfile.TemporaryDirectory(prefix="jax_cache_")  # removed when the kernel exits
jax.config.update("jax_compilation_cache_dir", jax_cache.name)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)

# %% [markdown]
# ## 1. Many seeds, two tasks, one call
#
# The experiment is `examples/universality_blobs.toml` and `examples/universality_xor.toml`
# in one config: a sweep over the **distribution's name** (`distribution.name`) puts
# every seed on both tasks. Two blobs have two mixture components and XOR blobs four, so
# their parameter arrays differ in shape and the call compiles two programs (one per
# shape group); within each, all seeds step together. `start_run` writes a run directory
# that the command line reads too (`toylab atlas RUN_DIR` draws every unit of every seed).

# %%
config = ExperimentConfig(
    name="09_universality",
    seeds=tuple(range(num_seeds)),
    distribution={"name": "two_blobs"},
    model=ModelConfig(kind="mlp", hidden=tuple(hidden), activation="relu"),
    train=TrainConfig(
        optimizer="adam",
        learning_rate=0.01,
        batch_size=128,
        num_steps=num_steps,
        log_every=max(num_steps // 10, 10),
        checkpoints=[],
    ),
    sweep=SweepConfig("distribution.name", ("two_blobs", "xor_blobs")),
)
t0 = time.perf_counter()
run = start_run(config, run_dir, overwrite=True)
print(f"trained {run.num_members} members for {num_steps} steps in "
      f"{time.perf_counter() - t0:.1f} s")  # fmt: skip

# members grouped by distribution, keyed by the swept name
groups = {run.member_values(g[0])["name"]: g for g in distribution_groups(run)}
dists = {name: run.dist_of(g[0]) for name, g in groups.items()}

# Every member's exact accuracy: which seeds solved their task?
analyses = {m: analyze(run.model(m), run.dist_of(m)) for m in range(run.num_members)}
refs = {}
for name, g in groups.items():
    bayes = dists[name].bayes()
    acc = np.array([analyses[m].accuracy for m in g])
    gap = np.array([analyses[m].gap for m in g])
    refs[name] = g[int(np.argmax(acc))]  # the reference: the most accurate seed
    tier = weakest(*(analyses[m].tier for m in g))
    print(f"{name}: Bayes accuracy {bayes.accuracy:.4f} [{bayes.tier}]; {len(g)} seeds, exact "
          f"accuracy min/median/max {acc.min():.4f}/{np.median(acc):.4f}/{acc.max():.4f}, "
          f"{int(np.sum(gap < 1e-2))} within 0.01 of Bayes [{tier}]; reference: member "
          f"{refs[name]}")  # fmt: skip

# %% [markdown]
# ## 2. Matching every unit against a reference, and against chance
#
# Following Li et al. (2016, *Convergent learning*), two units are "the same" when their
# activations are highly correlated over the inputs. Here the correlation is the exact
# one under the distribution: the two networks are stacked into one joint network and
# `toylab.exact.analyze` integrates every product `E[a_i b_j]` over its linear regions in
# closed form. `match_ensemble` does this for every member against a **reference**
# (`scheme="star"`, `N − 1` joint analyses), and for every unit records its
# **best-match correlation** (its largest correlation with any live reference unit), the
# optimal one-to-one assignment, dead and duplicate units, and splits (section 3).
#
# A correlation of 0.95 means little without chance levels. The same scores are computed
# for networks that learned nothing, matched against the same reference:
# * **random initialisation**: fresh networks of the same architecture and initialiser;
# * **layer shuffle**: each trained member with every layer's weights permuted within the
#   layer (Filan et al.'s baseline), which keeps the weight distribution and destroys
#   the structure.
#
# `above` is the fraction of trained units above the baseline's 95th percentile: about
# 0.05 if trained units were no more alike than chance.

# %%
matches = {}
for name, g in groups.items():
    t0 = time.perf_counter()
    matches[name] = match_ensemble(run, members=g, reference=refs[name],
                                   baseline_size=baseline_size, key=0)  # fmt: skip
    em = matches[name]
    print(f"== {name} ({em.num_analyses} joint analyses, {time.perf_counter() - t0:.1f} s)")
    print(em.summary(families=3))

# %%
layers = matches["two_blobs"].layers
fig, axes = plt.subplots(len(groups), len(layers), figsize=(5.2 * len(layers), 3.6 * len(groups)),
                         layout="constrained", squeeze=False)  # fmt: skip
bins = np.linspace(0, 1, 41)
for row, (name, em) in zip(axes, matches.items(), strict=True):
    for ax, sc in zip(row, em.scores, strict=True):
        ax.hist(sc.trained.values, bins=bins, density=True, color="k", alpha=0.75,
                label=f"trained ({len(sc.trained.values)} units)")  # fmt: skip
        for i, (bname, b) in enumerate(sc.baselines.items()):
            ax.hist(b.values, bins=bins, density=True, histtype="step", lw=1.8,
                    color=f"C{i}", label=f"{bname} baseline")  # fmt: skip
            ax.axvline(b.quantiles[-1], color=f"C{i}", ls=":", lw=1)
        above = ", ".join(f"{k} {v:.2f}" for k, v in sc.above.items())
        ax.set_title(f"{name} {sc.layer} [{sc.tier}]\nabove the baseline's q95: {above}",
                     fontsize=9)  # fmt: skip
        ax.set_xlabel("best-match correlation with the reference")
        ax.legend(fontsize=7, loc="upper left")
plt.show()

# %% [markdown]
# Read the first layer with care. With 2-D inputs a first-layer ReLU is a half-plane
# ramp: its only freedom is a direction and an offset. Any two ramps of nearby directions
# correlate strongly, so even random networks have first-layer units that "match" the
# reference at 0.95 and above. A high score there says little: against random
# initialisation `above` stays near the chance level of 0.05 (at the full sizes, 64 seeds:
# 0.07 on two blobs, 0.04 on XOR blobs). The second layer has far more room, and there the
# trained scores separate from both baselines (at full size `above` is 0.66-0.74 on two
# blobs and 0.16-0.34 on XOR blobs), although many second-layer units die (printed as
# dead units, left out of the scores). This is why every score needs its baseline:
# without one, layer 0 would look like the strongest evidence for universality.

# %% [markdown]
# ## 3. Recurring families, and a split unit
#
# A **family** is a reference unit together with the unit of every member matched to it
# one-to-one at correlation ≥ 0.9; `fraction` is the fraction of seeds that have one.
# Below, the most frequent families of the last hidden layer: each row is one family,
# each column one seed's unit, drawn as its exact map (`NeuronMapDisplay.from_analysis`:
# colours from a grid of forward passes, the region boundaries and the zero set in black
# from the exact partition, the star at the exact argmax). ρ is the exact correlation
# with the reference unit.

# %%
grids = {}  # one grid of forward passes per member, shared by all of its units


def draw_unit(ax, member, address, title):
    model = run.model(member)
    if member not in grids:
        grids[member] = grid_values(model, run.dist_of(member).domain, 90)
    NeuronMapDisplay.from_analysis(model, address, analyses[member], grid=grids[member],
                                   title=title).plot(ax, colorbar=False, small=True)  # fmt: skip


for name, em in matches.items():
    last = em.layers[-1]
    fams = [f for f in em.families if f.layer == last][:num_families]
    if not fams:
        print(f"{name}: no family of {last} recurs in two or more seeds")
        continue
    fig, axes = plt.subplots(len(fams), members_shown, squeeze=False, layout="constrained",
                             figsize=(2.2 * members_shown, 2.3 * len(fams)))  # fmt: skip
    for row, fam in zip(axes, fams, strict=True):
        units = sorted(fam.units, key=lambda u: u[0] != em.reference)[:members_shown]
        for ax, (m, addr) in zip(row, units, strict=False):
            rho = em.partner(m, addr)
            rho_txt = "reference" if m == em.reference else f"ρ = {rho[1]:.3f}"
            draw_unit(ax, m, addr, f"seed {run.ensemble.member_seed(m)} {addr}\n{rho_txt}")
        for ax in row[len(units) :]:
            ax.axis("off")
        row[0].set_ylabel(f"in {fam.fraction:.0%} of seeds", fontsize=9)
    fig.suptitle(f"{name}: the {len(fams)} most frequent families of {last} "
                 f"(correlations {fams[0].tier})", fontsize=11)  # fmt: skip
    plt.show()

# %% [markdown]
# **Splits.** One seed may compute with two units what another computes with one. A unit
# `y` is *split* in another member when a nonnegative combination `α b_j + β b_k` of two of
# that member's units explains at least 95% of its variance while no single unit does as
# well (the R² is a closed form of exact second moments). Below, the split whose best
# single match is weakest: the unit, then the two parts it splits into.

# %%
candidates = [(name, s) for name, em in matches.items() for s in em.splits]
if candidates:
    name, s = min(candidates, key=lambda c: c[1].best_single_r2)
    fig, axes = plt.subplots(1, 3, figsize=(7.5, 2.8), layout="constrained")
    draw_unit(axes[0], s.member, s.unit, f"seed {run.ensemble.member_seed(s.member)} {s.unit}")
    for ax, part, c in zip(axes[1:], s.parts, s.coefficients, strict=True):
        draw_unit(ax, s.other, part, f"seed {run.ensemble.member_seed(s.other)} {part}\n× {c:.3f}")
    fig.suptitle(f"{name}: a split unit, R² = {s.r2:.3f} from two parts, "
                 f"{s.best_single_r2:.3f} from one [{s.tier}]", fontsize=10)  # fmt: skip
    plt.show()
    print(f"{name}: member {s.member} {s.unit} ≈ const + {s.coefficients[0]:.3f} · "
          f"{s.parts[0]} + {s.coefficients[1]:.3f} · {s.parts[1]} of member {s.other}: "
          f"R² = {s.r2:.4f}, best single unit R² = {s.best_single_r2:.4f} "
          f"[{s.tier}, moment error ≤ {s.error:.1e}]")  # fmt: skip
    print("splits found:", {n: len(em.splits) for n, em in matches.items()})
else:
    print("no split units in this ensemble (more seeds make some likely)")

# %% [markdown]
# ## 4. Whole layers: CKA, exactly
#
# Matching units assumes the basis of the layer means something. **Centred kernel
# alignment** (Kornblith et al. 2019) compares whole representations instead. For
# representations `a`, `b` of the same input, linear CKA is
#
# `CKA = ‖Σ_ab‖²_F / (‖Σ_aa‖_F ‖Σ_bb‖_F)`,
#
# a function of the covariances only; toylab computes them exactly (the same joint
# analysis), so CKA is exact too (the printed error is the propagated rounding bound).
# The chance level is again a set of randomly initialised networks against the same
# reference. (On XOR blobs the tier is `certified` rather than `exact`: the analysis
# integrates over a box, and the mass outside it is bounded, not zero.)

# %%
fig, axes = plt.subplots(1, len(groups), figsize=(5.2 * len(groups), 3.6), layout="constrained")
for ax, (name, g) in zip(np.atleast_1d(axes), groups.items(), strict=True):
    ref, dist = refs[name], dists[name]
    others = [m for m in g if m != ref]
    chance = init_networks(run.config.model, dist, jax.random.key(7), baseline_size)
    for i, layer in enumerate(layers):
        trained = similarity_matrix([run.model(ref)] + [run.model(m) for m in others], dist,
                                    layer, measure="linear_cka", reference=0)  # fmt: skip
        rand = similarity_matrix([run.model(ref), *chance], dist, layer, measure="linear_cka",
                                 reference=0)  # fmt: skip
        tv, rv = trained.values[1:], rand.values[1:]  # entry 0 is the reference itself
        x = 2 * i + np.array([0.0, 0.8])
        ax.boxplot([tv, rv], positions=x, widths=0.6, showfliers=True)
        ax.scatter(np.full(len(tv), x[0]), tv, s=6, color="k", alpha=0.4, zorder=3)
        tier = weakest(trained.tier, rand.tier)
        err = max(float(np.max(trained.errors)), float(np.max(rand.errors)))
        print(f"{name} {layer}: linear CKA with the reference, trained median "
              f"{np.median(tv):.3f} (min {tv.min():.3f}), random init median {np.median(rv):.3f}"
              f" [{tier}, error ≤ {err:.0e}]")  # fmt: skip
    ax.set_xticks([2 * i + d for i in range(len(layers)) for d in (0, 0.8)],
                  [f"{lay}\n{w}" for lay in layers for w in ("trained", "init")])  # fmt: skip
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("linear CKA with the reference")
    ax.set_title(name)
plt.show()

# %% [markdown]
# ### What CKA is blind to, and what it is not
#
# Kornblith et al. argue a similarity index should be invariant to **orthogonal
# transforms** and **isotropic scaling** (a rotated, rescaled representation carries the
# same information at the same geometry), but *not* to arbitrary **invertible linear
# maps**: those change the geometry, and an index invariant to them (like CCA) says that
# any two representations of `d ≥ n` dimensions are identical. We check this on the exact
# covariance `Σ` of the reference's first hidden layer on two blobs: a transformed layer
# `b = Tᵀa` has `Σ_ab = Σ T` and `Σ_bb = Tᵀ Σ T`, so every measure below is again an
# exact function of exact moments. The invertible map *whitens* the layer (scales each
# principal direction to unit variance, with a floor of 1e-3 of the largest variance so
# that dead directions keep it invertible).

# %%
name = "two_blobs"
sigma = analyses[refs[name]].moments[layers[0]].cov
d = sigma.shape[0]
rng = np.random.default_rng(0)
q, _ = np.linalg.qr(rng.normal(size=(d, d)))  # a random orthogonal matrix
lam, v = np.linalg.eigh(sigma)
whiten = v @ np.diag(1 / np.sqrt(np.maximum(lam, 1e-3 * lam.max()))) @ v.T
transforms = {"identity": np.eye(d), "orthogonal Q": q, "isotropic scaling 3·I": 3 * np.eye(d),
              f"whitening (condition {np.linalg.cond(whiten):.0f})": whiten}  # fmt: skip
print(f"{'b = Tᵀa with T':32s} {'linear CKA':>10s} {'mean CCA':>9s} {'Procrustes':>10s}")
for label, t in transforms.items():
    s_ab, s_bb = sigma @ t, t.T @ sigma @ t
    print(f"{label:32s} {float(linear_cka(sigma, s_ab, s_bb)):10.6f} "
          f"{cca(sigma, s_ab, s_bb):9.6f} {float(procrustes(sigma, s_ab, s_bb)):10.6f}")  # fmt: skip
print("[exact: closed forms of the exact covariance, float64 rounding only]")

# %% [markdown]
# CKA and the Procrustes distance (Ding et al. 2021) are unchanged by `Q` and by scaling
# and move under the general map (CKA weighs directions by their variance; whitening
# makes the weak ones count as much as the strong ones); the mean canonical correlation stays at 1 under every
# invertible map (on the directions whose variance is above the relative cut 1e-10: a
# dead unit gives a zero eigenvalue that CCA drops). SVCCA (`svcca`) first keeps the top
# principal directions (99% of the variance), which makes it sensitive to the general
# map again through which directions are kept.

# %% [markdown]
# ## 5. Density or decision boundary?
#
# "Under what circumstances do (linear combinations of) neurons actually model aspects of
# the data distribution that they're trained on, as opposed to just encoding the decision
# boundaries between classes?" asks one of the essays toylab grew from (on transparency
# and the circuits program, in its directions for future work), adding that something
# like this "seems necessary for feature visualization to work". `density_scores` answers per unit, under the data: the fraction of the unit's variance
# explained by **density features** (`log p(x)` and the class joints `p(x, y=c)`) and by
# **boundary features** (the posterior log-odds and posteriors), the unique parts of
# each, and how its zero set lies against the Bayes boundary and density level sets.
# These integrals of smooth non-polynomial functions over the exact regions are taken by
# adaptive quadrature with an error estimate: tier `estimated`.
#
# First two handwritten detectors on two blobs (classes at `(±2, 0)`), whose answer is
# known by construction:
# * a **boundary detector** `relu(x1)`: its zero set is the Bayes boundary `x1 = 0`;
# * a **density detector**: a bump `relu(2 − ‖x − (2, 0)‖_oct)` over the class-0 blob,
#   built from eight first-layer ReLUs (`relu(t) + relu(−t) = |t|` in four directions give
#   an octagonal norm); its level sets are octagons around the blob, close to its density
#   level sets.

# %%
MU = np.array([2.0, 0.0])  # the class-0 blob of two_blobs()
boundary_net = Network.from_weights(
    [np.array([[1.0], [0.0]]), np.array([[-1.0, 1.0]])], [np.zeros(1), np.zeros(2)]
)
ang = np.arange(4) * np.pi / 4
u = np.stack([np.cos(ang), np.sin(ang)])  # four directions, (2, 4)
w0 = np.concatenate([u, -u], axis=1)
density_net = Network.from_weights(
    [w0, -np.ones((8, 1)) / (1 + math.sqrt(2)), np.array([[1.0, -1.0]])],
    [-(MU @ w0), np.array([2.0]), np.zeros(2)],
)
blobs = dists["two_blobs"]
for label, net in [("boundary detector relu(x1)", boundary_net),
                   ("density detector (hidden_1:0 is the bump)", density_net)]:  # fmt: skip
    r = density_scores(net, blobs)
    print(f"### {label}\n{r.to_markdown()}\n")

# %% [markdown]
# The boundary detector is labelled `boundary` (its zero set runs exactly along the Bayes
# boundary: alignment 1, log-odds offset 0) and the bump `density`. Note that `R²
# density` of the boundary detector is about 0.5, not 0: the class joints also say on
# which side of the boundary `x` lies. The unique parts (`r.unique_density`,
# `r.unique_boundary`) separate the two cleanly.
#
# Now the trained units: the first `num_density_members` seeds of each task. Units above
# the grey band are explained more by the density, units below it by the posterior.

# %%
fig, axes = plt.subplots(1, len(groups), figsize=(5.0 * len(groups), 4.4), layout="constrained")
for ax, (name, g) in zip(np.atleast_1d(axes), groups.items(), strict=True):
    results = [density_scores(run.model(m), dists[name], analysis=analyses[m])
               for m in g[:num_density_members]]  # fmt: skip
    rows = [(r, row) for r in results for row in r.rows() if row["label"] != "dead"]
    labels, counts = np.unique([row["label"] for r in results for row in r.rows()],
                               return_counts=True)  # fmt: skip
    tier = weakest(*(r.tier for r in results))
    err = max(r.error for r in results)
    print(f"{name}: {len(results)} members, unit labels "
          f"{dict(zip(labels.tolist(), counts.tolist(), strict=True))} "
          f"[{tier}, largest R² error estimate {err:.1e}]")  # fmt: skip
    DensityScoresDisplay(
        r2_boundary=np.array([row["r2_boundary"] for _, row in rows]),
        r2_density=np.array([row["r2_density"] for _, row in rows]),
        groups=tuple(row["neuron"].split(":")[0] for _, row in rows),
        threshold=results[0].threshold,
        tier=str(tier),
    ).plot(ax)
    ax.set_title(f"{name}: density or boundary? ({tier})", fontsize=10)
plt.show()

# %% [markdown]
# In our run at the full sizes (8 seeds per task, 2-8-8-2) no trained unit is labelled `density`.
# On two blobs most units are boundary detectors (101 of 128 units), the rest ramps that
# neither family explains (`neither`: a ramp far from the boundary is linear in `x`, and
# neither `log p` nor the posterior is). On XOR blobs most units are `neither` (101 of
# 128): the XOR posterior is a product of two sigmoids, one per axis, so no single
# half-plane ramp follows it; the network encodes the boundary jointly, across units.
# Almost every unit lies below the diagonal band (the posterior explains more than the
# density); the few above it are `neither` units that both families explain poorly. That fits the loss: cross-entropy is minimised by the posterior and says
# nothing about the density. For the full question (widths, depths, activations, rings
# and moons) run `density_study` (see the exercises).

# %% [markdown]
# ## 6. Modularity: is the weight graph clusterable?
#
# Filan et al. (2021, *Clusterability in neural networks*) view a network as a graph whose
# nodes are units and whose edge weights are `|w|`, partition it by spectral clustering
# into `k` clusters, and score the partition by its **normalised cut** (lower is more
# modular). The baseline is the same network with each layer's weights shuffled within
# the layer; the result is a z-score and a percentile (a modular network has a large
# negative z and a percentile near 0). The n-cut of the found partition is exact; the
# baseline, z and percentile are `sampled` (with intervals).
#
# Against the trained reference, a 2-8-8-2 network built block-diagonal: input 0 feeds
# units 0-3 of both layers and output 0, input 1 feeds units 4-7 and output 1 (two
# disconnected halves), with weights drawn at random.

# %%
rng = np.random.default_rng(1)
blk = [np.kron(np.eye(2), rng.normal(size=(1, 4))), np.kron(np.eye(2), rng.normal(size=(4, 4))),
       np.kron(np.eye(2), rng.normal(size=(4, 1)))]  # fmt: skip
block_net = Network.from_weights(blk, [rng.normal(size=w.shape[1]) for w in blk])
key = jax.random.key(0)
for label, net in [("block-diagonal (built modular)", block_net),
                   ("trained reference, two blobs", run.model(refs["two_blobs"])),
                   ("trained reference, XOR blobs", run.model(refs["xor_blobs"]))]:  # fmt: skip
    c = clusterability(net, k=2, num_shuffles=num_shuffles, key=key)
    print(f"{label:32s} {c}")

# %% [markdown]
# And the z-scores of the first `num_cluster_members` seeds of each task (k = 2): are
# small trained networks modular at all?

# %%
fig, ax = plt.subplots(figsize=(6, 3.4))
for i, (name, g) in enumerate(groups.items()):
    res = clusterability_ensemble([run.model(m) for m in g[:num_cluster_members]], k=2,
                                  num_shuffles=num_shuffles, key=key)  # fmt: skip
    z = np.array([r.z for r in res])
    ax.scatter(z, np.full(len(z), i) + rng.uniform(-0.15, 0.15, len(z)), s=16, label=name)
    print(f"{name}: z median {np.median(z):.2f}, {int(np.sum(z < -2))} of {len(z)} below −2 "
          f"[{weakest(*(r.tier for r in res))}]")  # fmt: skip
ax.axvline(-2, color="k", ls=":", lw=1)
ax.set_yticks(range(len(groups)), list(groups))
ax.set_xlabel("clusterability z-score (k = 2; negative: more modular than shuffles)")
plt.show()

# %% [markdown]
# The block-diagonal network is found at once (n-cut 0, far below every shuffle). The
# trained networks are not modular: in our run at full size their z-scores sit around 0
# to +2 (the two-blobs reference is even *less* clusterable than its shuffles, z ≈ +2.3). Filan et
# al. found trained MLPs on MNIST more clusterable than shuffles; a 2-8-8-2 network on a
# 2-D task has nothing to split into modules: every unit sees both inputs.

# %%
print(f"notebook ran in {time.perf_counter() - start:.1f} s")

# %% [markdown]
# ## Exercises
#
# 1. **All pairs.** Rerun section 2 with `scheme="all"` on 16 seeds of XOR blobs (every
#    pair analysed, families by clustering all units). Do the same families come out as
#    with the star around the best seed? Which families depend on the choice of reference?
# 2. **Width and universality.** Retrain with `hidden = [16, 16]` and with `[4, 4]`. Does
#    the fraction of trained second-layer units above the baselines' 95th percentile grow
#    or shrink with width? Do wider networks split units more often?
# 3. **Where do neurons model the density?** Run
#    `toylab.universality.density_study(widths=(4, 16), depths=(1, 2))` (two blobs, rings,
#    moons) and plot it with `DensityScoresDisplay.from_result`. On which distribution,
#    if any, do units get labelled `density`? Why would the rings differ from the blobs?
# 4. **CKA vs matching.** Find two seeds whose second-layer linear CKA is high but whose
#    one-to-one matching leaves several units unmatched (`em.matches[(m, ref)]`). Draw
#    their maps: what does CKA see that unit matching misses?
