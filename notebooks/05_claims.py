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
# # 05 · Interpretability claims as property tests
#
# "Neuron 3 detects the left blob" is a claim. Most claims in interpretability papers are
# checked by looking at a few pictures. `toylab.claims` makes them **testable**: you
# write the claim as a value (`fires_only_in(neuron, region)`, `dead(neuron)`,
# `fires_on_mass(neuron, q, cls=...)`, ...), and `check` decides it, saying how it
# reached the **verdict**:
#
# * `exact`: proved (piecewise-linear geometry, closed-form Gaussian integrals or finite
#   enumeration); a failure comes with a **witness** input, the exact **failing region**
#   and its **probability** under the data;
# * `searched`: no exact method applies (e.g. a tanh network), so a hypothesis search
#   looks for a counterexample within a budget; "holds" means none was found;
# * `sampled`: a Monte Carlo estimate with a confidence interval.
#
# These three words describe a yes/no answer. The *numbers* inside a verdict (an
# estimate, the probability of the failing set) carry their own tier from
# `toylab.tiers` (`exact`, `certified`, `estimated`, `sampled`), and the two can differ:
# an exact verdict about an ellipse comes with a *certified bracket* of the failing mass.
#
# You will
# 1. write claims about a hand-built network whose neurons you know, and get exact
#    verdicts with witnesses and failing masses;
# 2. combine claims with `&`, `|` and `~`;
# 3. get a searched verdict on a smooth network, and sampled verdicts with intervals;
# 4. write a claim file and guard a training run with `toylab check` (its exit code is
#    what CI looks at);
# 5. write an ordinary hypothesis `@given` test with `toylab.testing` strategies.
#
# The first cell holds the sizes; make them smaller for a quick run.

# %% tags=["parameters"]
budget = 200  # inputs tried by each hypothesis search
num_samples = 4_000  # samples per sampled verdict
num_repeats = 20  # sampled verdicts (different seeds) in the coverage plot
max_examples = 25  # examples per hypothesis @given test
num_steps = 300  # training steps of the run in section 5
map_size = 150  # neuron maps are drawn on a map_size x map_size grid
run_dir = "runs/05_claims"  # where section 5 writes its run (relative to the notebook)
SMALL = {"budget": 60, "num_samples": 1_000, "num_repeats": 8, "max_examples": 5,
         "num_steps": 30, "map_size": 50}  # fmt: skip

# %%
# ruff: noqa: E402  (imports follow the parameters cell)
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax
import matplotlib.pyplot as plt
import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy.special import ndtr

from toylab.claims import (
    Ellipse,
    HalfPlane,
    ablation_lowers_accuracy,
    activation_share,
    box_region,
    check,
    check_all,
    dead,
    fires_on_mass,
    fires_only_in,
)
from toylab.cli import main as toylab_main
from toylab.config import parse_config
from toylab.distributions import two_blobs
from toylab.exact import analyze
from toylab.models import MLP
from toylab.runs import start_run
from toylab.testing import assert_claim
from toylab.testing.strategies import networks
from toylab.viz.verdicts import CounterexampleDisplay

start = time.perf_counter()
# Keep compiled programs in an on-disk cache (a temporary directory), so that the
# `toylab check` process of section 5 reuses what this kernel compiled for the run.
jax_cache = tempfile.TemporaryDirectory(prefix="jax_cache_")  # removed when the kernel exits
jax.config.update("jax_compilation_cache_dir", jax_cache.name)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
dist = two_blobs(distance=4.0, scale=1.0)  # class 0 ~ N((2, 0), I), class 1 ~ N((-2, 0), I)

# %% [markdown]
# ## 1. A network whose neurons we know
#
# Five first-layer ReLUs, chosen so that every claim below has a known answer:
#
# | neuron | computes | |
# |---|---|---|
# | `hidden_0:0` | `relu(x1)` | fires on the right half-plane (class 0's blob) |
# | `hidden_0:1` | `relu(x2 − 1)` | fires above `x2 = 1` |
# | `hidden_0:2` | `relu(−x1 − x2)` | fires below the anti-diagonal |
# | `hidden_0:3` | `relu(−1)` | dead: never fires |
# | `hidden_0:4` | `relu(−x1)` | fires on the left half-plane |
#
# and logits `(hidden_0:0, hidden_0:4 + 0.1)`: class 0 iff `x1 > 0.1`, nearly Bayes-optimal.

# %%
W0 = np.array([[1.0, 0.0, -1.0, 0.0, -1.0], [0.0, 1.0, -1.0, 0.0, 0.0]])
B0 = np.array([0.0, -1.0, 0.0, -1.0, 0.0])
W1 = np.zeros((5, 2))
W1[0, 0] = W1[4, 1] = 1.0
net = MLP.from_weights([W0, W1], [B0, np.array([0.0, 0.1])])
net_exact = analyze(net, dist)
print(f"exact accuracy {net_exact.accuracy:.6f} (Bayes {dist.bayes().accuracy:.6f})")

# %% [markdown]
# ## 2. Exact verdicts, witnesses and failing masses
#
# `fires_only_in(neuron, region)` claims the neuron is `> 0` only inside a closed
# region. For `relu(x1)` and the half-plane `x1 ≥ 0` that holds. Shift the half-plane to
# `x1 ≥ 0.5` and it fails: the neuron fires on the strip `0 < x1 < 0.5`. The exact
# verdict returns a witness in that strip, the strip itself as convex polygons
# (`witness_region`), and its probability under the data, which we compare with the
# closed form `½[Φ(−1.5) − Φ(−2) + Φ(2.5) − Φ(2)]` times the probability that `x2` lies
# in the domain box (the claim is about the domain: its edges at `x2 = ±6.2` cut 1.5e-11).

# %%
right = fires_only_in("hidden_0:0", HalfPlane((1.0, 0.0), 0.0))
shifted = fires_only_in("hidden_0:0", HalfPlane((1.0, 0.0), 0.5))
print(check(right, net, dist).explain())
verdict = check(shifted, net, dist)
print(verdict.explain())
low2, high2 = dist.domain.low[1], dist.domain.high[1]
closed = 0.5 * (ndtr(-1.5) - ndtr(-2.0) + ndtr(2.5) - ndtr(2.0)) * (ndtr(high2) - ndtr(low2))
print(f"closed form of the failing mass: {closed:.15f}")
assert verdict.tier == "exact" and not verdict.holds  # self-check
assert abs(verdict.failing_mass - closed) < 1e-14 and 0 < verdict.witness[0] < 0.5

# %% [markdown]
# `CounterexampleDisplay` (in `toylab.viz.verdicts`) draws a verdict on the neuron's map:
# the witness (green cross) and the exact failing region (the green strip).

# %%
CounterexampleDisplay.from_result(verdict, net, dist, num=map_size).plot()
plt.show()

# %% [markdown]
# **An ellipse.** Regions can be the `k`-sigma ellipse of a mixture component. Whether
# `relu(x1)` fires outside blob 0's 3-sigma ellipse is decided exactly (a convex polygon
# lies in an ellipse iff its vertices do), but the set where it does is not a polygon, so
# its probability is not one closed-form number: the verdict brackets it between the
# masses outside the circumscribed and the inscribed 256-gons, labelled `certified`, and
# leaves `failing_mass` empty rather than quoting a midpoint as exact.

# %%
oval = check(fires_only_in("hidden_0:0", Ellipse(3.0, component=0)), net, dist)
print(oval.explain())
assert oval.tier == "exact" and oval.failing_mass is None  # self-check
assert oval.failing_mass_tier == "certified" and oval.failing_mass_bounds[0] > 0

# %% [markdown]
# The other kinds work the same way. Each verdict has a **margin**: positive when the
# claim holds, by how much (each kind defines it: here `P − q` for `fires_on_mass`, the
# accuracy drop minus `delta` for `ablation_lowers_accuracy`, minus the maximum for
# `dead`). `check_all` shares the exact partition between claims.
#
# * `dead`: never fires on the domain;
# * `fires_on_mass(neuron, q, cls=c)`: `P(fires | class c) ≥ q`; for `relu(x1)` on
#   class 0 that is exactly `Φ(2) = 0.97725`, so 0.97 holds and 0.98 fails;
# * `activation_share(neuron, share, component=k)`: at least `share` of the neuron's mean
#   activation `E[a]` comes from component `k` (`E[a 1(k)] / E[a]`; this is not the
#   selectivity *index* of `toylab.methods`);
# * `ablation_lowers_accuracy(neuron, cls, delta)`: zero-ablating the neuron costs class
#   `cls` at least `delta` of accuracy (exactly: the edited network is analysed too).

# %%
claims = [
    dead("hidden_0:3"),
    dead("hidden_0:0"),
    fires_on_mass("hidden_0:0", 0.97, cls=0),
    fires_on_mass("hidden_0:0", 0.98, cls=0),
    activation_share("hidden_0:0", 0.99, component=0),
    ablation_lowers_accuracy("hidden_0:0", 0, 0.5),
    ablation_lowers_accuracy("hidden_0:2", 0, 0.01),
    fires_only_in("hidden_0:2", HalfPlane((-1.0, -1.0), 0.0)),
]
results = check_all(claims, net, dist)
print(f"{'neuron':11s} {'claim':58s} {'verdict':7s} {'how':6s} {'margin':>9s} estimate")
for r in results:
    est = "" if r.estimate is None else f"{r.estimate:.5f} [{r.estimate_tier}]"
    print(f"{r.neuron:11s} {r.statement:58s} {'holds' if r.holds else 'FAILS':7s} "
          f"{r.tier:6s} {r.margin:9.4f} {est}")  # fmt: skip
assert [r.holds for r in results] == [True, False, True, False, True, True, False, True]
assert abs(results[2].estimate - ndtr(2.0)) < 1e-10  # exact: Φ(2)

# %% [markdown]
# ## 3. Composing claims: `&`, `|`, `~`
#
# Claims combine like booleans (`all_of`, `any_of`, `not_` by name); the verdict keeps
# every child's verdict, and a failing conjunction carries the witness of the child that
# failed.

# %%
left = fires_only_in("hidden_0:4", HalfPlane((-1.0, 0.0), 0.0))
claim = (right & left & dead("hidden_0:3")) | ~fires_on_mass("hidden_0:1", 0.5, cls=1)
r = check(claim, net, dist)
print(r.explain())
bad = check(right & shifted, net, dist)
print("\nconjunction with a false claim:", "holds" if bad.holds else "FAILS",
      "witness", np.round(bad.witness, 3))  # fmt: skip
assert r.holds and not bad.holds

# %% [markdown]
# ## 4. When no exact method applies: searched and sampled verdicts
#
# **Searched.** A tanh network is not piecewise linear: no exact partition. Here
# `hidden_1:0` of a small tanh network is positive only in a small square around
# `c = (1.3, −0.7)` (a product of two smooth bumps, thresholded). The claim "fires only
# where `x1 ≥ 3`" is false, but only on about 0.04% of the box. `check` runs a
# hypothesis search (random inputs plus gradient steps on the neuron, then shrinking
# to a simple counterexample) within `budget` inputs.

# %%
c, w, s = np.array([1.3, -0.7]), 0.3, 3.0
T0 = s * np.array([[1, 1, 0, 0], [0, 0, 1, 1]], float)
T0b = s * np.array([-c[0] + w, -c[0] - w, -c[1] + w, -c[1] - w])
T1 = np.array([[1.0], [-1.0], [1.0], [-1.0]])
smooth = MLP.from_weights([T0, T1, np.ones((1, 2))], [T0b, np.array([-2.7]), np.zeros(2)],
                          "tanh")  # fmt: skip
false_claim = fires_only_in("hidden_1:0", HalfPlane((1.0, 0.0), 3.0))
searched = check(false_claim, smooth, dist, budget=budget, seed=1)
print(searched.explain())
true_claim = fires_only_in("hidden_1:0", box_region(c - 0.4, c + 0.4))
print(check(true_claim, smooth, dist, budget=budget).explain())
assert searched.tier == "searched" and not searched.holds  # self-check
CounterexampleDisplay.from_result(searched, smooth, dist, num=map_size).plot()
plt.show()

# %% [markdown]
# A "holds" from a search is weaker than an exact "holds": it means no counterexample
# turned up in `num_tried` inputs. Uniform random inputs alone would rarely land in the
# square (200 of them all miss it with probability ~92%), which is why the search also
# climbs the neuron.
#
# **Sampled.** Claims about the distribution (`fires_on_mass`, `fires_only_in` as a
# frequency) can be estimated from samples with `tier="sampled"`: the verdict carries
# an estimate and a Wilson confidence interval. We repeat it with `num_repeats` seeds on
# the network of section 1, where the exact answer is known: about 95% of the 95%
# intervals should cover it.

# %%
mass_claim = fires_on_mass("hidden_0:0", 0.97, cls=0)
sampled = [check(mass_claim, net, dist, tier="sampled", num_samples=num_samples, seed=k)
           for k in range(num_repeats)]  # fmt: skip
print(sampled[0].explain())
exact_p = ndtr(2.0)
est = np.array([r.estimate for r in sampled])
lo, hi = np.array([r.interval for r in sampled]).T
covered = (lo <= exact_p) & (exact_p <= hi)
fig, ax = plt.subplots(figsize=(7, 3.8))
ax.errorbar(np.arange(num_repeats), est, yerr=[est - lo, hi - est], fmt="o", capsize=3,
            color="C0", label="sampled estimate, 95% Wilson interval")  # fmt: skip
ax.axhline(exact_p, color="C3", label=f"exact Φ(2) = {exact_p:.5f}")
ax.axhline(0.97, color="k", ls="--", lw=1, label="claimed q = 0.97")
ax.set_xlabel("seed")
ax.set_ylabel("P(fires | class 0)")
ax.set_title(f"{covered.sum()} of {num_repeats} intervals cover the exact value; "
             f"{sum(r.holds for r in sampled)} say 'holds'")  # fmt: skip
ax.legend(fontsize=8, loc="lower right")
plt.show()

# %% [markdown]
# The claim holds exactly (margin 0.007), but a sampled verdict compares the *estimate*
# with `q`, so with few samples it can say "fails": near the threshold, only the exact
# tier gives a reliable verdict.
#
# ## 5. A claim file and `toylab check`
#
# Claims can live in a TOML file next to a training config, and `toylab check RUN_DIR
# claims.toml` decides them about a trained member (0 by default), prints a table,
# writes `RUN_DIR/report/claims.md` and `claims.json`, and exits with **0** if every
# claim holds, **1** if one fails (2 for a bad file). That exit code is what a CI job
# checks.
#
# We train a small run on the two blobs, read the first layer's weights, and write two
# claims about the unit with the largest `|w₁|` (an "`x1` threshold unit"):
# a **rounded** claim as a person would state it ("fires only where `x1 ≤ t`",
# ignoring the small `x2` weight), and the claim with the exact line from the weights.

# %%
config = parse_config({
    "name": "05_claims", "seeds": [0], "distribution": {"name": "two_blobs"},
    "model": {"hidden": [4], "activation": "relu"},
    "train": {"num_steps": num_steps, "log_every": max(num_steps // 5, 1), "checkpoints": []},
})  # fmt: skip
run = start_run(config, run_dir, overwrite=True)
W, b = run.model(0).to_network().dense_layers()[0]  # float64 (W, b) of the first layer
j = int(np.argmax(np.abs(W[0])))
w1, w2, bj = float(W[0, j]), float(W[1, j]), float(b[j])
t = round(-bj / w1, 2)
side = "<=" if w1 < 0 else ">="
print(f"hidden_0:{j} = relu({w1:+.3f} x1 {w2:+.3f} x2 {bj:+.3f}): fires where x1 {side} "
      f"{-bj / w1:.3f} {-w2 / w1:+.3f} x2")  # fmt: skip

sign = float(np.sign(w1))
claims_path = Path(run_dir).parent / "05_claims.toml"
rounded = f"""
[[claim]]
name = "x1 threshold (rounded)"
neuron = "hidden_0:{j}"
statement = "fires only where x1 {side} {t}"
kind = "fires_only_in"
region = {{ kind = "halfplane", normal = [{sign}, 0.0], offset = {sign * t} }}
"""
from_weights = f"""
[[claim]]
name = "x1 threshold (from the weights)"
neuron = "hidden_0:{j}"
statement = "fires only where w.x + b >= 0"
kind = "fires_only_in"
region = {{ kind = "halfplane", normal = [{w1!r}, {w2!r}], offset = {-bj!r} }}

[[claim]]
name = "alive"
neuron = "hidden_0:{j}"
statement = "is not dead"
not = {{ kind = "dead" }}
"""
claims_path.write_text(rounded + from_weights)
print(claims_path.read_text())

# %% [markdown]
# Run the command as CI would, in a fresh process:

# %%
cmd = [sys.executable, "-m", "toylab", "check", run_dir, str(claims_path)]
cache = {
    "JAX_COMPILATION_CACHE_DIR": jax_cache.name,
    "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
}  # share this kernel's cache
t0 = time.perf_counter()
proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **cache})
print("$ toylab check", run_dir, claims_path)
print(proc.stdout, proc.stderr[-2000:])
print(f"exit code: {proc.returncode} (after {time.perf_counter() - t0:.1f} s)")
assert proc.returncode == 1  # self-check: the rounded claim fails (unless w2 is exactly 0)

# %% [markdown]
# The rounded claim fails: the true zero line is tilted by `−w₂/w₁` and shifted by the
# rounding, so the neuron fires on a thin wedge outside the rounded half-plane. The table shows a witness and the wedge's
# probability under the data: tiny, but not zero, and the exact tier says so. Drop the
# rounded claim and the guard passes. (`toylab.cli.main` runs the same command in this
# process, which skips a second JAX start-up.)

# %%
claims_path.write_text(from_weights)
code = toylab_main(["check", run_dir, str(claims_path)])
print("exit code:", code)
print((Path(run_dir) / "report" / "claims.md").read_text()[:600])
assert code == 0

# %% [markdown]
# ## 6. Your own property test with hypothesis
#
# `toylab.testing.strategies` generates toylab objects for ordinary `@given` tests:
# `networks(...)` random MLPs (including degenerate ones: dead units, zero columns,
# duplicated units), `distributions()`, `points(domain)`, `neurons(model)`. Here is a
# property every first-layer ReLU must have, with `assert_claim` raising (and saving a
# plot of the counterexample) if a claim fails. Calling the decorated function runs it.


# %%
@settings(max_examples=max_examples, deadline=None, database=None)
@given(networks(activations=("relu", "leaky_relu"), max_depth=1, max_width=3), st.data())
def test_first_layer_units_fire_on_their_half_plane(model, data):
    """hidden_0:j fires exactly where w_j . x + b_j >= 0, so this claim always holds."""
    Wm, bm = model.to_network().dense_layers()[0]
    unit = data.draw(st.integers(0, Wm.shape[1] - 1), label="unit")
    assume(np.abs(Wm[:, unit]).max() > 1e-3)  # a unit with zero weights is constant
    region = HalfPlane(tuple(Wm[:, unit]), -float(bm[unit]))
    assert_claim(fires_only_in(f"hidden_0:{unit}", region), model, dist)


t0 = time.perf_counter()
test_first_layer_units_fire_on_their_half_plane()
print(f"passed {max_examples} random networks in {time.perf_counter() - t0:.1f} s")

# %% [markdown]
# A property that is *false* fails like any hypothesis test, with a shrunk example:


# %%
@settings(max_examples=max_examples, deadline=None, database=None)
@given(networks(activations=("relu",), max_depth=1, max_width=3))
def test_no_unit_is_dead(model):
    r = check(dead("hidden_0:0"), model, dist)
    assert not r.holds, "hidden_0:0 is dead"


try:
    test_no_unit_is_dead()
    print("no dead unit found in", max_examples, "examples")
except AssertionError as e:
    print("hypothesis found a counterexample:", str(e).splitlines()[0])

# %%
print(f"notebook ran in {time.perf_counter() - start:.1f} s")

# %% [markdown]
# ## Exercises
#
# 1. **Your own claims.** Train the network of notebook 02 and write three claims about
#    its neurons from their maps (a half-plane, a class it fires on, one that is
#    dead or not). Check them; for each failure, look at the witness and the failing
#    mass: is the claim "almost" right?
# 2. **Searched vs exact.** Replace `tanh` by `hardtanh` in the smooth network of
#    section 4: which verdict does `check` reach now, and how? Shrink the bump (`w = 0.1`) and find the
#    smallest `budget` at which the search still finds the counterexample.
# 3. **Sampled near the threshold.** For `fires_on_mass("hidden_0:0", q, cls=0)` with
#    q = 0.97, 0.975, 0.977, how many samples does a sampled verdict need to agree with
#    the exact one 95% of the time?
# 4. **Guard a run in CI.** Add a `[[claim]]` with `all = [...]` (see
#    `toylab.claims.files`) to the claim file, run `toylab check` from a shell, and make a
#    one-line CI step that fails the build when a claim fails.
