"""Matching units across many seeds: match_ensemble vs a loop of match_neurons vs sampling.

Trains N seeds of a small MLP (default 2-8-8-2, also try ``--hidden 16,16``) on two
Gaussian blobs (or ``--dist xor_blobs``) in one program, then times, for each N of ``--seeds``:

* ``match_ensemble`` with ``scheme="star"`` and no baselines (N - 1 joint analyses: every
  member against member 0; splits, dead/duplicates and families included), and with
  both baselines (3 (N - 1) analyses: trained, random-initialisation and layer-shuffle
  members against the reference);
* the **baseline**: :func:`toylab.circuits.match_neurons` called in a Python loop over
  the same N - 1 pairs (what a study had to write by hand; one-to-one matches only);
* **sampled correlations**: every member and the reference evaluated on ``--samples``
  draws (float64 NumPy) and Pearson correlations computed from the sample -- the cheap
  alternative, tier ``"sampled"``; its largest deviation from the exact correlations is
  printed beside it;
* ``scheme="all"`` (N(N-1)/2 analyses) on the first ``--all-seeds`` members, and its
  time extrapolated to N by the number of pairs (the reason ``"star"`` is the default).

Tiers: the correlations are exact on two blobs (closed-form Gaussian moments on an exact
partition; ``"certified"`` if the integration box's truncation bound exceeds rounding);
the tier and error printed are the result's. BLAS threads are pinned to one. Ratios are
what to compare: the machine may be shared, so absolute times vary between runs.

Run:  python benchmarks/universality_matching.py [--seeds 64,256] [--hidden 8,8]
      [--steps 1000] [--samples 100000] [--all-seeds 16] [--repeats 2]
      [--dist two_blobs|xor_blobs]
"""

from __future__ import annotations

import os

for _var in (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
):
    os.environ[_var] = "1"  # before NumPy is imported: its BLAS reads them when it loads

import argparse  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

from toylab.circuits import match_neurons  # noqa: E402
from toylab.distributions import two_blobs, xor_blobs  # noqa: E402
from toylab.models import ModelConfig  # noqa: E402
from toylab.network import Network  # noqa: E402
from toylab.train import TrainConfig, train  # noqa: E402
from toylab.universality import match_ensemble  # noqa: E402

DISTS = {"two_blobs": two_blobs, "xor_blobs": xor_blobs}


def trained_networks(dist: Any, hidden: tuple[int, ...], seeds: int, steps: int) -> list[Network]:
    res = train(
        dist, ModelConfig(hidden=hidden), TrainConfig(num_steps=steps, log_every=steps),
        seeds=range(seeds),
    )  # fmt: skip
    return [res.model(m).to_network().numpy(np.float64) for m in range(seeds)]


def sampled_correlations(
    nets: list[Network], dist: Any, samples: int
) -> list[dict[str, np.ndarray]]:
    """Monte Carlo correlations of every member's units with member 0's, per layer."""
    x = dist.sample_numpy(np.random.default_rng(0), samples)
    acts = [n.forward(x) for n in nets]
    out = []
    for a in acts[1:]:
        layer = {}
        for k in range(nets[0].num_hidden):
            key = f"hidden_{k}"
            u, r = a[key], acts[0][key]
            u = (u - u.mean(0)) / np.maximum(u.std(0), 1e-300)
            r = (r - r.mean(0)) / np.maximum(r.std(0), 1e-300)
            layer[key] = u.T @ r / len(x)
        out.append(layer)
    return out


def timed(fn: Any) -> tuple[float, Any]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--seeds", default="64,256", help="comma-separated ensemble sizes")
    p.add_argument("--hidden", default="8,8", help="hidden widths, e.g. 16,16")
    p.add_argument("--steps", type=int, default=1000, help="training steps")
    p.add_argument("--samples", type=int, default=100_000, help="draws for sampled correlations")
    p.add_argument("--all-seeds", type=int, default=16, help="members for scheme='all'")
    p.add_argument("--repeats", type=int, default=2, help="alternate timed runs (best of)")
    p.add_argument("--dist", default="two_blobs", choices=sorted(DISTS))
    args = p.parse_args()
    dist = DISTS[args.dist]()
    hidden = tuple(int(h) for h in args.hidden.split(","))
    sizes = [int(s) for s in args.seeds.split(",")]
    print("BLAS threads pinned to 1 (environment variables set before NumPy loads)")
    t, nets_all = timed(lambda: trained_networks(dist, hidden, max(sizes), args.steps))
    arch = "-".join(map(str, (2, *hidden, 2)))
    print(f"trained {max(sizes)} seeds of {arch} on {args.dist}, {args.steps} steps: {t:.1f} s")
    match_ensemble(nets_all[:2], dist, baselines=())  # warm-up (imports, first calls)
    mc = ModelConfig(hidden=hidden)
    for n in sizes:
        nets = nets_all[:n]
        t_star, t_loop = np.inf, np.inf
        for _ in range(args.repeats):  # alternately, best of each (the machine may be shared)
            t, em = timed(lambda nets=nets: match_ensemble(nets, dist, baselines=()))
            t_star = min(t_star, t)
            t, _ = timed(lambda nets=nets: [match_neurons(m, nets[0], dist)
                                            for m in nets[1:]])  # fmt: skip
            t_loop = min(t_loop, t)
        t_base, eb = timed(lambda nets=nets: match_ensemble(nets, dist, model_config=mc))
        t_mc, mc_corr = timed(lambda nets=nets: sampled_correlations(nets, dist, args.samples))
        dev = max(
            float(np.max(np.abs(mc_corr[i - 1][lm.layer] - lm.correlation)))
            for i in range(1, n)
            for lm in em.matches[(i, 0)].layers
        )
        print(f"\nN = {n} seeds of {arch} ({n - 1} joint analyses per kind; tier {em.tier}, "
              f"moment error {em.error:.1e})")  # fmt: skip
        print(f"  match_ensemble star, no baselines : {t_star:7.1f} s")
        print(
            f"  match_neurons loop (baseline)     : {t_loop:7.1f} s   ratio {t_loop / t_star:.2f}"
        )
        print(
            f"  match_ensemble star + init/shuffle: {t_base:7.1f} s   ({eb.num_analyses} analyses)"
        )
        print(f"  sampled correlations, {args.samples} draws: {t_mc:7.2f} s   "
              f"largest |sampled - exact| = {dev:.3f}")  # fmt: skip
        for s in eb.scores:
            q = lambda d: "/".join(f"{v:.3f}" for v in d.quantiles[[0, 2, 4]])  # noqa: E731
            base = ", ".join(
                f"{k} {q(b)} (above its p95: {s.above[k]:.2f})" for k, b in s.baselines.items()
            )
            print(f"  {s.layer}: best-match q05/median/q95 trained {q(s.trained)}; {base}; "
                  f"dead {s.trained.num_dead}; tier {s.tier}, corr error {s.error:.1e}")  # fmt: skip
        recurring = [f for f in em.families if f.fraction >= 0.9]
        print(f"  families in >= 90% of seeds: {len(recurring)} "
              f"({', '.join(f'{f.layer} {f.fraction:.2f}' for f in recurring[:6])}); "
              f"splits {len(em.splits)}")  # fmt: skip
    k = min(args.all_seeds, max(sizes))
    if k >= 2:
        t_all, ea = timed(lambda: match_ensemble(nets_all[:k], dist, scheme="all",
                                                 baselines=()))  # fmt: skip
        t_s, _ = timed(lambda: match_ensemble(nets_all[:k], dist, baselines=()))
        pairs = k * (k - 1) // 2
        print(f"\nscheme='all' on {k} seeds: {t_all:.1f} s ({pairs} analyses) vs star "
              f"{t_s:.1f} s ({k - 1}); per analysis {t_all / pairs:.3f} s")  # fmt: skip
        for n in sizes:
            est = t_all / pairs * n * (n - 1) / 2
            print(f"  extrapolated 'all' for N = {n}: {est:.0f} s ({n * (n - 1) // 2} analyses)")


if __name__ == "__main__":
    main()
