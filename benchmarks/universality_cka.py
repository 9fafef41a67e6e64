"""Exact linear CKA across many seeds, beside the sampled estimate and a per-pair loop.

On ``--seeds`` 2-8-8-2 ReLU networks on two Gaussian blobs (He-initialised from NumPy
seeds, or trained by ``toylab.train.train`` for ``--steps`` steps, every seed in one
program) it prints, in one process:

* **exact, against a reference**: :func:`toylab.universality.similarity_matrix` of every
  member's ``hidden_1`` against member 0 (one exact joint analysis per pair), its time
  per pair and the largest stated error;
* **sampled, the baseline**: the same with ``method="sampled"`` (``--samples`` draws
  shared by every pair, a 200-replicate bootstrap interval), its time, its largest
  interval half-width, the largest ``|exact - sampled|`` in units of that half-width,
  and the extrapolated number of samples (and time, linear in the samples) the sampled
  estimate would need to reach the exact one's error and ``1e-3``;
* **exact, all pairs** of the first ``--pairs`` members;
* **a finite task** (8 random bits, Boolean parity, 8-8-8-2 networks): all pairs of the
  ``--seeds`` members from one ``einsum`` over the members' tables, beside a Python
  loop calling :func:`toylab.universality.representation_similarity` once per pair.

BLAS threads are pinned to one. Ratios are what to compare: the machine may be shared.

Run:  python benchmarks/universality_cka.py [--seeds 256] [--pairs 16] [--steps 0]
      [--samples 4000] [--loop-pairs 200]
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

import jax  # noqa: E402
import numpy as np  # noqa: E402

from toylab.distributions import BooleanFunction, two_blobs  # noqa: E402
from toylab.network import Network  # noqa: E402
from toylab.universality import representation_similarity, similarity_matrix  # noqa: E402


def he_network(widths: tuple[int, ...], seed: int) -> Network:
    rng = np.random.default_rng(seed)
    dims = zip(widths[:-1], widths[1:], strict=True)
    layers = [(rng.normal(size=(a, b)) * np.sqrt(2 / a), 0.1 * rng.normal(size=b)) for a, b in dims]
    return Network.from_layers(layers, ["relu"] * (len(widths) - 2))


def trained(dist: Any, num_seeds: int, steps: int) -> list[Any]:
    from toylab.models import ModelConfig
    from toylab.train import TrainConfig, train

    cfg = TrainConfig(num_steps=steps, log_every=steps, checkpoints=[], num_eval_samples=256)
    res = train(dist, ModelConfig(hidden=(8, 8), activation="relu"), cfg, seeds=range(num_seeds))
    return [res.model(m) for m in range(num_seeds)]


def timed(fn: Any) -> tuple[float, Any]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--seeds", type=int, default=256)
    p.add_argument("--pairs", type=int, default=16, help="all pairs of the first N members")
    p.add_argument("--steps", type=int, default=0, help="training steps (0: at initialisation)")
    p.add_argument("--samples", type=int, default=4000, help="samples of the sampled baseline")
    p.add_argument("--loop-pairs", type=int, default=200, help="pairs timed in the Python loop")
    args = p.parse_args()
    dist = two_blobs()
    if args.steps > 0:
        t, models = timed(lambda: trained(dist, args.seeds, args.steps))
        print(f"trained {args.seeds} seeds of 2-8-8-2 for {args.steps} steps in {t:.1f} s")
    else:
        models = [he_network((2, 8, 8, 2), s) for s in range(args.seeds)]
        print(f"{args.seeds} seeds of 2-8-8-2 at He initialisation")
    layer = "hidden_1"
    m = len(models)

    t_ex, ex = timed(lambda: similarity_matrix(models, dist, layer, reference=0))
    print(f"\nexact linear CKA vs member 0 ({m} pairs): {t_ex:.2f} s, "
          f"{t_ex / m * 1e3:.1f} ms/pair, tier {ex.tier}, max error {np.nanmax(ex.errors):.2g}")  # fmt: skip
    tiers = {t: int(np.sum(ex.tiers == t)) for t in sorted(set(ex.tiers.tolist()))}
    print(f"  tiers {tiers}, median error {np.nanmedian(ex.errors):.2g}")
    others = ex.off_diagonal()
    print(f"  CKA over seeds: median {np.nanmedian(others):.3f}, "
          f"5-95% [{np.nanquantile(others, 0.05):.3f}, {np.nanquantile(others, 0.95):.3f}]")  # fmt: skip

    key = jax.random.key(0)
    similarity_matrix(
        models[:2], dist, layer, reference=0, method="sampled", key=key, num_samples=64
    )  # fmt: skip  (compiles the sampler: not timed)
    t_mc, mc = timed(lambda: similarity_matrix(models, dist, layer, reference=0,
                                               method="sampled", key=key,
                                               num_samples=args.samples))  # fmt: skip
    half = float(np.nanmax(mc.errors))
    dev = np.abs(mc.values - ex.values) / np.where(mc.errors > 0, mc.errors, np.nan)
    print(f"sampled baseline ({args.samples} samples, 200 bootstrap replicates): {t_mc:.2f} s, "
          f"{t_mc / m * 1e3:.1f} ms/pair; max CI half-width {half:.3g}; "
          f"max |exact - sampled| / half-width {np.nanmax(dev):.2f}, outside the interval "
          f"{int(np.nansum(dev > 1))} of {int(np.sum(np.isfinite(dev)))}")  # fmt: skip
    for target in (float(np.nanmax(ex.errors)), 1e-3):
        need = args.samples * (half / target) ** 2
        print(f"  to reach ±{target:.2g}: ~{need:.2g} samples, ~{t_mc * need / args.samples:.2g} s "
              f"(x{t_mc * need / args.samples / t_ex:.2g} the exact time)")  # fmt: skip

    k = min(args.pairs, m)
    t_all, allp = timed(lambda: similarity_matrix(models[:k], dist, layer))
    npairs = k * (k - 1) // 2
    print(f"exact all pairs of {k} members ({npairs} pairs): {t_all:.2f} s, "
          f"{t_all / max(npairs, 1) * 1e3:.1f} ms/pair, max error {np.nanmax(allp.errors):.2g}")  # fmt: skip

    bits = BooleanFunction(n=8)
    fin = [he_network((8, 8, 8, 2), s) for s in range(args.seeds)]
    t_vec, vec = timed(lambda: similarity_matrix(fin, bits, layer))
    total = m * (m + 1) // 2
    loop_pairs = [(i, j) for i in range(m) for j in range(i, m)][: args.loop_pairs]

    def loop() -> list[float]:
        return [representation_similarity(fin[i], fin[j], bits, layer_a=layer,
                                          measures=("linear_cka",))["linear_cka"]
                for i, j in loop_pairs]  # fmt: skip

    t_loop, vals = timed(loop)
    agree = max(abs(v - vec.values[i, j]) for v, (i, j) in zip(vals, loop_pairs, strict=True))
    per_vec, per_loop = t_vec / total, t_loop / len(loop_pairs)
    print(f"\nfinite task (BooleanFunction(n=8), {m} members of 8-8-8-2, {total} pairs):")
    print(f"  one einsum over the tables: {t_vec:.2f} s, {per_vec * 1e6:.0f} us/pair")
    print(f"  Python loop of representation_similarity ({len(loop_pairs)} pairs timed): "
          f"{per_loop * 1e6:.0f} us/pair -> ratio x{per_loop / per_vec:.1f}; "
          f"max |difference| {agree:.1e}")  # fmt: skip


if __name__ == "__main__":
    main()
