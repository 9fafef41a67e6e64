"""The superposition sparsity sweep: one program vs a per-instance loop, side by side.

Trains the toy-models-of-superposition sparsity sweep (n = 200 features, m = 20 hidden
dimensions, ``x' = ReLU(WᵀW x + b)``, importance-weighted MSE, Adam, a fresh batch of
``SparseFeatures`` every step) at ``len(densities) × len(seeds)`` members (16 by default)
and prints, in one process:

* **toylab's sweep**: one ``toylab.train.train`` call with a sweep over
  ``distribution.feature_probability`` and the seeds: every member in one compiled
  program (the feature probabilities are per-member arrays);
* **the per-instance loop**: the SAME training (same steps, batch, optimizer, model and
  distribution per member) as one ``train`` call per member, as one writes it without
  sweeps over distribution parameters. A distribution without a sweep is part of the
  program's static description, so every distinct density compiles its own program
  (seeds of the same density reuse it);
* optionally (``--bare``) two more baselines: the sweep written directly as one program,
  ``jax.jit(jax.vmap(scan))`` over members with per-member probabilities, and the same
  with ``jax.lax.map`` instead of ``vmap`` (the members one after the other inside one
  program: on a CPU this can beat ``vmap`` when each member's step is already large).

For each: the fixed costs (initialisation + compilation, from ``TrainResult.timings``;
for the loop summed over its calls), the steady-state throughput in member-steps per
second (the training loop alone, best of ``--repeats`` passes) and the end-to-end
throughput (member-steps over the whole first pass, fixed costs included), then the
ratios. The machine is shared and noisy: compare the ratios printed within one run, not
absolute rates across runs. JAX's persistent compilation cache is left as the process
finds it (toylab's is not enabled here), so the first pass pays every compilation.

Run:  python benchmarks/superposition_sweep.py                 (a few minutes on 2 cores)
      python benchmarks/superposition_sweep.py --quick --bare  (smaller steps and batch)
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from toylab._compile_cache import CompileCounter
from toylab.distributions import SparseFeatures
from toylab.models import ModelConfig
from toylab.train import SweepConfig, TrainConfig, train


def train_config(steps: int, batch: int) -> TrainConfig:
    # one segment (log_every = steps), no checkpoints, a small held-out set: the loop dominates
    return TrainConfig(optimizer="adam", learning_rate=1e-3, num_steps=steps, batch_size=batch,
                       log_every=steps, checkpoints=[], loss="importance_mse",
                       num_eval_samples=256)  # fmt: skip


def fixed(timings: dict[str, float]) -> float:
    return timings["init"] + timings["compile"]


# --------------------------------------------------------------------------- toylab


def run_sweep(n: int, m: int, decay: float, densities: list[float], seeds: list[int],
              cfg: TrainConfig) -> tuple[dict[str, float], float]:  # fmt: skip
    """One ``train`` call over every density and seed; ``(timings, wall seconds)``."""
    base = SparseFeatures(num_features=n, feature_probability=1.0, importance_decay=decay)
    sweep = SweepConfig("distribution.feature_probability", tuple(densities))
    t = time.perf_counter()
    res = train(base, ModelConfig(kind="superposition_relu", hidden=(m,)), cfg, seeds=seeds,
                sweep=sweep)  # fmt: skip
    jax.block_until_ready(res.params)
    return res.timings, time.perf_counter() - t


def run_loop(n: int, m: int, decay: float, densities: list[float], seeds: list[int],
             cfg: TrainConfig) -> tuple[dict[str, float], float]:  # fmt: skip
    """One ``train`` call per member (same order as the sweep: seed, then density);
    ``(summed timings, wall seconds)``."""
    total = dict.fromkeys(("init", "compile", "loop", "evaluate", "callback"), 0.0)
    t = time.perf_counter()
    for s in seeds:
        for p in densities:
            dist = SparseFeatures(num_features=n, feature_probability=p, importance_decay=decay)
            res = train(dist, ModelConfig(kind="superposition_relu", hidden=(m,)), cfg,
                        seeds=[s])  # fmt: skip
            jax.block_until_ready(res.params)
            for k, v in res.timings.items():
                total[k] += v
    return total, time.perf_counter() - t


# --------------------------------------------------------------------------- bare


def bare_program(n: int, m: int, decay: float, densities: list[float], seeds: list[int],
                 steps: int, batch: int, over: str = "vmap") -> tuple[Any, Any, float]:  # fmt: skip
    """The same sweep written directly as one program, ``jax.jit(jax.vmap(scan))`` over
    members (``over="vmap"``) or ``jax.jit(jax.lax.map(scan))`` (``over="map"``: the
    members one after the other inside the program): ``(run, args, compile seconds)``;
    ``run(*args)`` trains every member ``steps`` steps."""
    tx = optax.adam(1e-3)
    imp = jnp.asarray(decay ** np.arange(n), jnp.float32)

    def member(params, p, key):
        def body(carry, t):
            w, o = carry
            k_act, k_val = jax.random.split(jax.random.fold_in(key, t))
            active = jax.random.uniform(k_act, (batch, n)) < p
            x = jnp.where(active, 1.0 - jax.random.uniform(k_val, (batch, n)), 0.0)

            def loss(w):
                out = jax.nn.relu((x @ w["W"].T) @ w["W"] + w["b"])
                return jnp.mean(jnp.sum(imp * (out - x) ** 2, axis=-1))

            g = jax.grad(loss)(w)
            u, o = tx.update(g, o, w)
            return (optax.apply_updates(w, u), o), None

        (w, _), _ = jax.lax.scan(body, (params, tx.init(params)), jnp.arange(steps))
        return w

    probs = np.array([p for _ in seeds for p in densities], np.float32)
    keys = jax.vmap(jax.random.key)(np.arange(len(probs), dtype=np.uint32))
    std = np.sqrt(2.0 / (n + m))  # xavier normal, as toylab's superposition models
    rng = np.random.default_rng(0)
    params = {"W": jnp.asarray(rng.normal(0, std, (len(probs), m, n)), jnp.float32),
              "b": jnp.zeros((len(probs), n), jnp.float32)}  # fmt: skip
    args = (params, jnp.asarray(probs), keys)
    t = time.perf_counter()
    if over == "vmap":
        program = jax.vmap(member)
    else:

        def program(params, probs, keys):
            return jax.lax.map(lambda a: member(*a), (params, probs, keys))

    run = jax.jit(program).lower(*args).compile()
    return run, args, time.perf_counter() - t


def time_bare(run: Any, args: tuple[Any, ...]) -> float:
    t = time.perf_counter()
    jax.block_until_ready(run(*args))
    return time.perf_counter() - t


# --------------------------------------------------------------------------- main


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--features", type=int, default=200, help="n, the number of features")
    p.add_argument("--hidden", type=int, default=20, help="m, the hidden dimensions")
    p.add_argument("--densities", type=float, nargs="+",
                   default=[float(f"{v:.3g}") for v in np.geomspace(1.0, 0.001, 8)],
                   help="feature probabilities p = 1 - S (the swept values)")  # fmt: skip
    p.add_argument("--seeds", type=int, default=2, help="seeds per density")
    p.add_argument("--importance-decay", type=float, default=1.0, help="importance_i = d**i")
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--repeats", type=int, default=2, help="passes; steady state = best")
    p.add_argument("--bare", action="store_true", help="also the bare jit(vmap(scan))")
    p.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run)")
    args = p.parse_args()
    if args.quick:
        args.steps, args.batch, args.repeats = 100, 256, 1
        args.densities = [1.0, 0.1, 0.01, 0.001]
        args.seeds = 4
    n, m, d = args.features, args.hidden, args.importance_decay
    dens, seeds = list(args.densities), list(range(args.seeds))
    members = len(dens) * len(seeds)
    cfg = train_config(args.steps, args.batch)
    work = members * args.steps  # member-steps of one pass
    print(f"jax {jax.__version__} on {jax.default_backend()}, {jax.device_count()} device(s), "
          f"{os.cpu_count()} CPU(s)")  # fmt: skip
    print(f"n = {n} features, m = {m} hidden (ReLU output), importance {d:g}^i; "
          f"{len(dens)} densities {dens} x {len(seeds)} seeds = {members} members; "
          f"{args.steps} steps, batch {args.batch}, Adam 1e-3")  # fmt: skip

    # first passes: every program compiled here (fixed costs) -- interleaved with repeats
    sweep_fixed, sweep_loop, sweep_wall = 0.0, [], 0.0
    loop_fixed, loop_loop, loop_wall = 0.0, [], 0.0
    bare_loop: list[float] = []
    map_loop: list[float] = []
    bare = bare_map = None
    sweep_programs = loop_programs = CompileCounter()
    for r in range(args.repeats):
        with CompileCounter() as counter:
            timings, wall = run_sweep(n, m, d, dens, seeds, cfg)
        sweep_loop.append(timings["loop"])
        if r == 0:
            sweep_fixed, sweep_wall, sweep_programs = fixed(timings), wall, counter
        with CompileCounter() as counter:
            timings, wall = run_loop(n, m, d, dens, seeds, cfg)
        loop_loop.append(timings["loop"])
        if r == 0:
            loop_fixed, loop_wall, loop_programs = fixed(timings), wall, counter
        if args.bare:
            if bare is None or bare_map is None:
                bare = bare_program(n, m, d, dens, seeds, args.steps, args.batch)
                bare_map = bare_program(n, m, d, dens, seeds, args.steps, args.batch, "map")
            bare_loop.append(time_bare(bare[0], bare[1]))
            map_loop.append(time_bare(bare_map[0], bare_map[1]))

    s_rate, l_rate = work / min(sweep_loop), work / min(loop_loop)
    s_e2e, l_e2e = work / sweep_wall, work / loop_wall
    print(f"\n{'':34s} {'step programs':>13s} {'init+compile':>13s} {'steady state':>22s} "
          f"{'end to end (1st pass)':>28s}")  # fmt: skip
    print(f"{'toylab sweep (one train call)':34s} {sweep_programs.count('_segment'):13d} "
          f"{sweep_fixed:11.1f} s {s_rate:12,.0f} member-steps/s {s_e2e:10,.0f} "
          f"member-steps/s ({sweep_wall:.1f} s)")  # fmt: skip
    print(f"{'per-instance loop (' + str(members) + ' train calls)':34s} "
          f"{loop_programs.count('_segment'):13d} {loop_fixed:11.1f} s {l_rate:12,.0f} "
          f"member-steps/s {l_e2e:10,.0f} member-steps/s ({loop_wall:.1f} s)")  # fmt: skip
    if bare is not None and bare_map is not None:
        b_rate, map_rate = work / min(bare_loop), work / min(map_loop)
        print(f"{'bare jit(vmap(scan))':34s} {1:13d} {bare[2]:11.1f} s {b_rate:12,.0f} "
              f"member-steps/s")  # fmt: skip
        print(f"{'bare jit(lax.map(scan))':34s} {1:13d} {bare_map[2]:11.1f} s {map_rate:12,.0f} "
              f"member-steps/s")  # fmt: skip
    print(f"programs compiled in the first pass (all kinds): sweep {sweep_programs.total}, "
          f"loop {loop_programs.total}")  # fmt: skip
    print("\nratios (sweep / per-instance loop):")
    print(f"  steady state {s_rate / l_rate:5.2f}x, end to end {s_e2e / l_e2e:5.2f}x, "
          f"fixed costs {loop_fixed / sweep_fixed:5.2f}x lower")  # fmt: skip
    if bare is not None:
        print(f"  toylab sweep / bare jit(vmap(scan)), steady state: {s_rate / b_rate:5.2f}x")
        print(f"  bare lax.map / bare vmap over members, steady state: {map_rate / b_rate:5.2f}x")
    print(f"(steady state: best of {args.repeats} pass(es), the training loop alone; step "
          "programs: training programs compiled in the first pass)")  # fmt: skip


if __name__ == "__main__":
    main()
