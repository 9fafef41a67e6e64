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
# # 04 · Handwritten circuits, checked exactly, and matched to trained networks
#
# A **circuit** is a network written by hand: every weight is derived, every neuron has
# a name and a meaning, and the whole has a one-sentence claim ("the decision boundary
# is the two axes", "computes (a + b) mod p"). In toylab a circuit
# (`toylab.circuits.Circuit`) holds a `toylab.network.Network` in float64 (its weights
# are the closed form, rounded once to float64), so every exact tool of notebooks 02-03
# applies to it, and `circuit.verify()` checks its claim exactly: on 2-D Gaussian
# inputs with the exact partition and closed-form Gaussian integrals, on finite tasks
# by enumerating every input. Where an NNX model is needed (training),
# `toylab.models.from_network(circuit.model)` makes one.
#
# You will
# 1. build the XOR circuit and check that it is Bayes-optimal, exactly;
# 2. approximate a disc by a k-gon of ReLU half-planes (the ring detector) and measure
#    the exact approximation error as k grows;
# 3. check the Fourier construction for modular addition on *all* p² inputs, and see an
#    exhaustive check catch a bug a sampled check would likely miss;
# 4. train small networks on XOR and match their neurons to the circuit's
#    (`match_neurons`, exact correlations) and measure how far apart they are
#    (`functional_distance`, exact sup and L2 distances);
# 5. draw circuits as diagrams with `CircuitDisplay`.
#
# The first cell holds the sizes; make them smaller for a quick run.

# %% tags=["parameters"]
ks = [3, 4, 6, 8, 12, 16, 24, 32, 48, 64]  # polygon sides for the ring detector
radius = 1.0  # radius of the disc the ring detector approximates
p = 23  # modulus for modular addition (a prime)
seeds = [0, 1, 2]  # one trained XOR network per seed
num_steps = 1_000  # training steps for each XOR network
map_size = 150  # neuron maps are drawn on a map_size x map_size grid
SMALL = {"ks": [3, 6, 12, 24], "p": 11, "seeds": [0], "num_steps": 300, "map_size": 50}

# %%
# ruff: noqa: E402  (imports follow the parameters cell)
import math
import time

import jax
import matplotlib.pyplot as plt
import numpy as np

from toylab.circuits import (
    fit,
    fourier_frequencies,
    functional_distance,
    match_neurons,
    modular_addition,
    ring_detector,
    xor_circuit,
)
from toylab.distributions import Box, xor_blobs
from toylab.exact import analyze, finite_table
from toylab.models import MLP, ablate, with_weights
from toylab.network import as_network
from toylab.viz import CircuitDisplay, NeuronMapDisplay


def diagram(model, labels, title):
    """The circuit diagram of a network or a model (drawn from its weight matrices)."""
    weights = [w for w, _ in as_network(model).dense_layers()]
    return CircuitDisplay.from_weights(weights, labels, title=title)


start = time.perf_counter()

# %% [markdown]
# ## 1. XOR: two absolute values, or four ReLUs
#
# Four Gaussian blobs at `(±a, ±a)` with XOR labels (class 0 where `x1 x2 > 0`). By
# symmetry the Bayes-optimal boundary is the two axes. The circuit uses
#
# `|x1 + x2| − |x1 − x2| = 2 sign(x1 x2) min(|x1|, |x2|)`,
#
# whose zero set is exactly the axes: the two logits are `|x1 + x2|` ("same-sign
# evidence") and `|x1 − x2|` ("opposite-sign evidence"). With ReLUs, each absolute
# value is `relu(u) + relu(−u)`: four hidden units. `verify()` computes the circuit's
# exact accuracy and compares it with the closed-form Bayes accuracy
# `Φ(a/s)² + Φ(−a/s)²`.

# %%
dist = xor_blobs(offset=2.0, scale=1.0)
xor = xor_circuit(dist, activation="relu")
print(xor.claim)
for address, (name, meaning) in xor.meanings.items():
    print(f"  {address}  {name:14s} {meaning}")
res = xor.verify()
print(f"exact accuracy {res.numbers['accuracy']:.12f}, Bayes {res.numbers['bayes_accuracy']:.12f}"
      f" -> passed={res.passed} ({res.tier}: {res.method})")  # fmt: skip
assert res.passed  # self-check

# %%
labels = {a: name for a, (name, _) in xor.meanings.items()}
labels.update({"output:0": "class 0 (same sign)", "output:1": "class 1 (opposite sign)"})
diagram(xor.model, labels, "XOR circuit (ReLU)").plot()
plt.show()

# %% [markdown]
# ## 2. The ring detector: a disc from k half-planes
#
# A ReLU network can only draw straight lines, so "fires inside a circle" has to be
# approximated. `ring_detector(r, k)` takes the regular k-gon inscribed in the circle of
# radius `r` (the intersection of k half-planes) and computes its "outside score"
# `max_i (n_i · x − o_i)` exactly with a tree of maxima
# (`max(u, v) = u + relu(v − u)`, depth `⌈log₂ k⌉`); the last hidden layer holds
# `inside = relu(−max)` and `outside = relu(max)`.
#
# `verify()` reads the region where `inside` fires off the **exact partition** and
# checks that it is the k-gon. The approximation error, the area of the disc that the
# k-gon misses, has the closed form `π r² − (k/2) r² sin(2π/k) ≈ 2π³ r² / (3k²)`: we
# compare the exact area of the fired region with it.

# %%
ring = ring_detector(radius, 6)
inside = ring.neuron_named("inside")
print(f"k = 6: widths {[ring.model.widths[f'hidden_{i}'] for i in range(4)]}, "
      f"'inside' is {inside}")  # fmt: skip
fig, axes = plt.subplots(1, 2, figsize=(13, 4.8), gridspec_kw={"width_ratios": [1.6, 1]})
ring_labels = {inside: "inside", ring.neuron_named("outside"): "outside"}
diagram(ring.model, ring_labels, "ring detector, k = 6").plot(axes[0])
view = Box((-1.6 * radius, -1.6 * radius), (1.6 * radius, 1.6 * radius))
ring_map = NeuronMapDisplay.from_model(ring.model, inside, view, num=map_size)
ring_map.plot(axes[1])
theta = np.linspace(0, 2 * np.pi, 200)
axes[1].plot(radius * np.cos(theta), radius * np.sin(theta), "k--", lw=1, label="circle")
axes[1].set_aspect("equal")
axes[1].legend(fontsize=8, loc="upper right")
plt.show()

# %%
rows = []
for k in ks:
    nums = ring_detector(radius, k).verify().numbers
    closed = math.pi * radius**2 - 0.5 * k * radius**2 * math.sin(2 * math.pi / k)
    rows.append((k, math.pi * radius**2 - nums["active_area"], closed, nums["area_error"]))
    # self-check: the fired region's exact area is the k-gon's (float64 weights: to 1e-12)
    assert abs(rows[-1][1] - closed) < 1e-12, rows[-1]
print(f"{'k':>4s} {'missed area (exact)':>20s} {'closed form':>14s} {'|difference|':>13s}")
for k, missed, closed, _ in rows:
    print(f"{k:4d} {missed:20.10f} {closed:14.10f} {abs(missed - closed):13.2e}")

ks_arr = np.array([r[0] for r in rows], float)
fig, ax = plt.subplots(figsize=(6.5, 4.2))
ax.loglog(ks_arr, [r[1] for r in rows], "o", ms=7, label="exact, from the partition")
ax.loglog(ks_arr, [r[2] for r in rows], "-", lw=1, label="closed form π r² − A_k")
ax.loglog(ks_arr, 2 * math.pi**3 * radius**2 / (3 * ks_arr**2), "k:", label="2π³ r² / (3k²)")
ax.set_xticks(ks_arr, [f"{k:g}" for k in ks_arr])
ax.set_xticks([], minor=True)
ax.set_xlabel("number of sides k (hidden units ≈ 3k)")
ax.set_ylabel("area of the disc outside the k-gon")
ax.set_title("ring detector: exact approximation error vs k")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# ## 3. Modular addition: the Fourier construction, checked on every input
#
# `ModularArithmetic(p)` feeds the one-hot codes of `a` and `b` and asks for
# `(a + b) mod p`. The construction (after Gromov, 2023) uses **quadratic** units: for a
# frequency `f`, with `u = cos(2π f a/p + φ)` and `v = cos(2π f b/p + φ)`,
#
# `(u + v)² − (u − v)² = 4uv = 2 cos(2π f (a + b)/p + 2φ) + 2 cos(2π f (a − b)/p)`,
#
# and averaging three phases `φ = 0, π/3, 2π/3` cancels everything except
# `cos(2π f (a + b − c)/p)` in logit `c`. Summed over `f = 1 … (p−1)/2` that is
# `(p [c = a + b mod p] − 1) / 2`: the right logit is `(p − 1)/2`, every other `−1/2`.
#
# The task is finite, so "the circuit computes (a + b) mod p" is checked by
# `toylab.exact.finite_table` on all `p²` inputs: a proof, not an estimate.

# %%
mod = modular_addition(p)
print(mod.claim, f"with {mod.model.widths['hidden_0']} quadratic units")
print("unit 0:", mod.meanings["hidden_0:0"])
table = finite_table(mod.model, mod.dist)
logits = table.table["output"]
labels_mod = np.asarray(mod.dist.domain.labels)
correct = logits[np.arange(len(logits)), labels_mod]
rival = np.where(np.eye(p, dtype=bool)[labels_mod], -np.inf, logits).max(1)
print(f"exhaustive over {len(table.table['output'])} inputs: accuracy {table.accuracy:.15f}")
print(f"right logit: {correct.min():.6f} … {correct.max():.6f} (theory {(p - 1) / 2}); "
      f"best wrong logit ≤ {rival.max():.6f} (theory −0.5)")  # fmt: skip
assert len(table.table["output"]) == p * p and np.all(correct > rival)  # self-check: 100%

# %%
a, b = 7 % p, 9 % p
i = int(np.flatnonzero((mod.dist.domain.latent == [a, b]).all(1))[0])
fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
axes[0].bar(np.arange(p), logits[i], color=["C3" if c == (a + b) % p else "0.6" for c in range(p)])
axes[0].set_xlabel("logit c")
axes[0].set_title(f"logits for a = {a}, b = {b}: the peak is c = {(a + b) % p}")
fr = fourier_frequencies(mod.model, p)
axes[1].bar(np.arange(len(fr.key_frequency)), fr.key_frequency, color="C0")
axes[1].set_xlabel("hidden unit")
axes[1].set_ylabel("key frequency")
axes[1].set_title("each unit reads exactly one frequency (share of power = 1)")
fig.tight_layout()
plt.show()
print("units per key frequency:", fr.frequencies_used(0.999))

# %% [markdown]
# **A bug only an exhaustive check finds.** Drop the third phase (`φ = 2π/3`) of every
# frequency, as a buggy implementation might: the cancellation is no longer exact.
# Enumerating every input finds the few pairs it gets wrong; a test that samples 200
# random pairs would miss them with the probability printed below.

# %%
n_units = mod.model.widths["hidden_0"]
dropped = [f"hidden_0:{u}" for u in range(n_units) if (u // 2) % 3 == 2]
buggy = finite_table(ablate(mod.model, dropped), mod.dist)
wrong = round((1 - buggy.accuracy) * p * p)
print(f"without phase 2: exact accuracy {buggy.accuracy:.6f} ({wrong} of {p * p} pairs wrong)")
print(f"P(200 random test pairs all pass) = {(1 - wrong / p**2) ** 200:.3f}")
print("one frequency is enough, with a smaller margin:")
for freqs in ([1], [1, 2]):
    r = modular_addition(p, freqs).verify()
    print(f"  frequencies {freqs}: passed={r.passed}, min margin {r.numbers['min_margin']:.4f}")

# %% [markdown]
# ## 4. Do trained networks learn the circuit?
#
# We train ReLU networks with the circuit's architecture (2 → 4 → 2) on the XOR blobs
# from random weights (`toylab.circuits.fit`, Adam on cross-entropy), then ask which
# trained unit plays which handwritten role.
#
# A ReLU network keeps its function when hidden units are permuted or rescaled by
# `c > 0`, so a comparison must factor those out. `match_neurons` computes the **exact**
# correlation of every trained unit with every circuit unit under the data (exact
# Gaussian moments over the joint partition of both networks), and solves the
# assignment problem; a matched pair's `scale` is the least-squares `c` with
# `trained ≈ c · circuit`. `functional_distance` then gives the exact sup (over the
# domain box) and L2 (under the data) distance between the matched units, after we
# rescale the circuit's units by `c`. Dead units (constant on the data) and duplicates
# (positive multiples of another unit) cannot be identified from the data: the match
# lists them (`dead_a`, `duplicates_a`, ...) instead of pairing them by accident.

# %%
(W0, b0), _ = xor.model.dense_layers()
print(f"Bayes accuracy {dist.bayes().accuracy:.5f}")
trained, matches = [], []
for s in seeds:
    rng = np.random.default_rng(s)
    init = MLP.from_weights([rng.normal(0, 1, (2, 4)), rng.normal(0, 0.5, (4, 2))],
                            [np.zeros(4), np.zeros(2)])  # fmt: skip
    model = fit(init, dist, key=jax.random.key(s), num_steps=num_steps, learning_rate=0.03).model
    m = match_neurons(model, xor.model, dist, threshold=0.0).layers[0]
    # the circuit with each unit rescaled to its trained partner
    scale = np.ones(4)
    scale[m.perm[m.perm >= 0]] = m.scale[m.perm >= 0]
    scaled = with_weights(xor.model, 0, W=W0 * scale, b=b0 * scale)
    pairs = {f"hidden_0:{i}": f"hidden_0:{j}" for i, j in enumerate(m.perm) if j >= 0}
    d = functional_distance(model, scaled, dist, neurons=pairs)
    trained.append(model)
    matches.append(m)
    print(f"seed {s}: exact accuracy {analyze(model, dist).accuracy:.5f}; distances {d.tier} "
          f"(error {d.error:.1e}); dead units {list(m.dead_a)}, duplicates "
          f"{list(m.duplicates_a)}")  # fmt: skip
    for (ta, ca), corr, sup, l2 in zip(pairs.items(), m.corr[m.perm >= 0], d.sup, d.l2,
                                       strict=True):  # fmt: skip
        print(f"   {ta} ~ {labels[ca]:14s} corr {corr:.3f}   sup {sup:7.3f}   L2 {l2:.3f}")
    for i in np.flatnonzero(m.perm < 0):
        j = int(m.correlation[i].argmax())
        print(f"   hidden_0:{i} unmatched: its best partner {labels[f'hidden_0:{j}']} "
              f"(corr {m.correlation[i, j]:.2f}) is taken; one partner per unit")  # fmt: skip

# %% [markdown]
# The exact correlation matrix of the first network, and its diagram next to the
# circuit's. Trained networks reach nearly Bayes-optimal accuracy, yet usually only one
# or two units are (close to) a handwritten unit: the rest share the work differently.
# The sup distance is large because it runs over the whole domain box, far from any
# data; the L2 distance weighs by the data.

# %%
m = matches[0]
fig, axes = plt.subplots(1, 2, figsize=(12.5, 4.4), gridspec_kw={"width_ratios": [1, 1.5]})
im = axes[0].imshow(m.correlation, cmap="RdBu_r", vmin=-1, vmax=1)
axes[0].set_xticks(range(4), [labels[f"hidden_0:{j}"] for j in range(4)], rotation=30,
                   fontsize=8)  # fmt: skip
axes[0].set_yticks(range(4), [f"trained {i}" for i in range(4)])
for (i, j), v in np.ndenumerate(m.correlation):
    axes[0].text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=9)
axes[0].set_title(f"seed {seeds[0]}: exact correlations")
fig.colorbar(im, ax=axes[0], shrink=0.8)
trained_labels = {f"hidden_0:{i}": f"~{labels[f'hidden_0:{j}']}" for i, j in enumerate(m.perm)
                  if j >= 0 and m.corr[i] > 0.95}  # fmt: skip
diagram(trained[0], trained_labels, f"trained, seed {seeds[0]} (gold: corr > 0.95)").plot(axes[1])
plt.show()

# %%
print(f"notebook ran in {time.perf_counter() - start:.1f} s")

# %% [markdown]
# ## Exercises
#
# 1. **Ring detector vs data.** Train a 2-layer ReLU network on
#    `Rings(radii=(0.5, 1.5), widths=(0.15, 0.15))` and count the linear pieces of the
#    boundary of its class-0 region (`analyze(model, dist).geometry`). Which `k` of the
#    ring detector does it resemble? Compare their exact accuracies.
# 2. **Train from the circuit.** `toylab.circuits.train_from_circuit(xor, dist, key=...)`
#    starts training at the circuit's weights. How far does training move it (relative
#    weight distance, exact functional distance)? Does the accuracy change?
# 3. **Transplant.** For a trained network, replace its best-matched unit by the
#    circuit's with `toylab.circuits.transplant(model, xor.model, i, j, dist, scale=c)`.
#    What happens to the exact accuracy at the matched scale, and at `-c`?
# 4. **Fewer frequencies.** For `p = 23`, find the smallest set of frequencies for
#    which the modular-addition circuit still passes, and how its minimum margin changes
#    with the frequencies you pick. Which frequency gives the largest margin, and why?
