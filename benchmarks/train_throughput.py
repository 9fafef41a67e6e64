"""Training throughput: toylab's loop vs a bare ``jit(vmap(scan))``, side by side.

Trains M MLPs 2-H-H-2 (batch 128, Adam, fresh samples from two_blobs every step) and
prints, in one process:

* the measured float32 matmul rate of this machine (the "peak": a 1024x1024 product);
* the **bare baseline**: ``jax.jit(jax.vmap(scan))`` of the same ensemble written
  directly (parameters as arrays, ``optax.adam``, ``dist.sample`` per step);
* **toylab's loop** (``toylab.train.train``), timed without initialisation and
  compilation (``TrainResult.timings``), with the ratio to the baseline and the
  fraction of the matmul rate its useful FLOPs reach (6 FLOPs per multiply-add of the
  forward pass: forward + backward);
* with ``--kernel``, the same for toylab's optional fused CPU kernel;
* width scaling (H = 16/64/256), member-count scaling (M = 1/64/1024/4096) and the
  peak memory of one step (XLA's buffer assignment: arguments + outputs + temporaries);
* the fixed costs: ``init_ensemble`` of 1024 members and the compile time.

Every rate is the best of ``--repeats`` interleaved runs (the machine is shared and
noisy: compare the ratios printed within one run, not across runs).

Run:  python benchmarks/train_throughput.py            (a few minutes on 2 cores)
      python benchmarks/train_throughput.py --quick    (smaller sizes)
      python benchmarks/train_throughput.py --fixed-only   (only the fixed costs)
Devices: ``benchmarks/train_devices.py`` prints the 1 -> 2 (CPU) device scaling.
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

from toylab import _compile_cache
from toylab.distributions import make
from toylab.models import ModelConfig
from toylab.train import TrainConfig, init_ensemble, make_step, train

BATCH = 128


def flops_per_model_step(width: int) -> float:
    widths = (2, width, width, 2)
    macs = sum(a * b for a, b in zip(widths[:-1], widths[1:], strict=True)) * BATCH
    return 6.0 * macs  # forward 2 FLOPs per multiply-add, backward twice the forward


def matmul_rate(n: int = 1024, repeats: int = 20) -> float:
    """Best float32 rate of an n x n product (FLOP/s)."""
    a = jnp.ones((n, n), jnp.float32)
    f = jax.jit(lambda x: x @ x)
    f(a).block_until_ready()
    best = 0.0
    for _ in range(repeats):
        t = time.perf_counter()
        f(a).block_until_ready()
        best = max(best, 2 * n**3 / (time.perf_counter() - t))
    return best


# --------------------------------------------------------------------------- baseline


def bare_program(dist: Any, width: int, members: int, steps: int):
    """``jit(vmap(scan))`` of a 2-H-H-2 MLP with Adam on fresh samples, written directly.

    Returns ``(run, args)``: ``run(*args)`` trains every member ``steps`` steps."""
    widths = (2, width, width, 2)
    tx = optax.adam(1e-2)

    def init(key):
        keys = jax.random.split(key, len(widths) - 1)
        return [
            (jax.random.normal(k, (a, b)) / np.sqrt(a), jnp.zeros(b))
            for k, a, b in zip(keys, widths[:-1], widths[1:], strict=True)
        ]

    def forward(params, x):
        for i, (w, b) in enumerate(params):
            x = x @ w + b
            if i < len(params) - 1:
                x = jax.nn.relu(x)
        return x

    def member(params, key):
        def body(carry, t):
            p, o = carry
            batch = dist.sample(jax.random.fold_in(key, t), BATCH)

            def loss(p):
                out = forward(p, batch.x)
                return optax.softmax_cross_entropy_with_integer_labels(out, batch.y).mean()

            g = jax.grad(loss)(p)
            u, o = tx.update(g, o, p)
            return (optax.apply_updates(p, u), o), None

        (p, _), _ = jax.lax.scan(body, (params, tx.init(params)), jnp.arange(steps))
        return p

    keys = jax.vmap(jax.random.key)(np.arange(members, dtype=np.uint32))
    params = jax.jit(jax.vmap(init))(keys)
    run = jax.jit(jax.vmap(member)).lower(params, keys).compile()
    return run, (params, keys)


def time_bare(run, args) -> float:
    t = time.perf_counter()
    jax.block_until_ready(run(*args))
    return time.perf_counter() - t


# --------------------------------------------------------------------------- toylab


def toylab_config(steps: int) -> TrainConfig:
    # one segment (log_every = steps) and a small held-out set: the loop dominates
    return TrainConfig(num_steps=steps, log_every=steps, checkpoints=[], batch_size=BATCH,
                       learning_rate=1e-2, num_eval_samples=128)  # fmt: skip


def time_toylab(dist: Any, width: int, members: int, steps: int, **kw: Any) -> dict[str, float]:
    res = train(dist, ModelConfig(hidden=(width, width)), toylab_config(steps),
                seeds=range(members), **kw)  # fmt: skip
    return res.timings


def step_memory(dist: Any, width: int, members: int) -> float | None:
    """Bytes XLA assigns to one training step (arguments + outputs + temporaries)."""
    ens, state = init_ensemble(
        dist, ModelConfig(hidden=(width, width)), toylab_config(1), range(members)
    )
    try:
        m = jax.jit(make_step(ens)).lower(state).compile().memory_analysis()
    except Exception:  # pragma: no cover - backends without memory analysis
        return None
    if m is None:
        return None
    return float(
        m.argument_size_in_bytes
        + m.output_size_in_bytes
        + m.temp_size_in_bytes
        - m.alias_size_in_bytes
    )


def compare(dist: Any, width: int, members: int, steps: int, repeats: int, peak: float,
            kernel: bool) -> None:  # fmt: skip
    t = time.perf_counter()
    run, args = bare_program(dist, width, members, steps)
    bare_compile = time.perf_counter() - t
    time_toylab(dist, width, members, 2)  # compile toylab's programs (same shapes)
    bare, toy, fused = [], [], []
    for _ in range(repeats):
        bare.append(members * steps / time_bare(run, args))
        toy.append(members * steps / time_toylab(dist, width, members, steps)["loop"])
        if kernel:
            fused.append(
                members * steps / time_toylab(dist, width, members, steps, kernel="fused")["loop"]
            )
    fl = flops_per_model_step(width)
    b, y = max(bare), max(toy)
    print(f"2-{width}-{width}-2, {members} members x {steps} steps (batch {BATCH}, Adam, fresh "
          f"samples); best of {repeats}:")  # fmt: skip
    print(f"  bare jit(vmap(scan)):  {b:>12,.0f} model-steps/s  {100 * b * fl / peak:5.1f}% of "
          f"matmul peak  (compile {bare_compile:.1f} s)")  # fmt: skip
    print(f"  toylab loop (JAX):     {y:>12,.0f} model-steps/s  {100 * y * fl / peak:5.1f}% of "
          f"matmul peak  {y / b:5.2f}x bare")  # fmt: skip
    if fused:
        f = max(fused)
        print(f"  toylab fused kernel:   {f:>12,.0f} model-steps/s  {100 * f * fl / peak:5.1f}% "
              f"of matmul peak  {f / b:5.2f}x bare")  # fmt: skip


def fixed_costs(dist: Any, members: int) -> None:
    mc = ModelConfig(hidden=(16, 16))
    cfg = toylab_config(100)
    t = time.perf_counter()
    with _compile_cache.CompileCounter() as c:
        ens, state = init_ensemble(dist, mc, cfg, range(members))
        jax.block_until_ready(state)
    first = time.perf_counter() - t
    t = time.perf_counter()
    ens, state = init_ensemble(dist, mc, cfg, range(members, 2 * members))
    jax.block_until_ready(state)
    again = time.perf_counter() - t
    how = "loaded from the persistent cache" if c.cache_hits else "compiled"
    print(f"init_ensemble, {members} members: first {first:.2f} s (program {how}), "
          f"again (other seeds) {again:.3f} s")  # fmt: skip
    timings = time_toylab(dist, 16, members, 100)
    print(f"train(), {members} members x 100 steps: init {timings['init']:.2f} s, step program "
          f"{timings['compile']:.2f} s, loop {timings['loop']:.2f} s, evaluation "
          f"{timings['evaluate']:.2f} s")  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--members", type=int, default=1024)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--widths", type=int, nargs="+", default=[16, 64, 256])
    p.add_argument("--member-counts", type=int, nargs="+", default=[1, 64, 1024, 4096])
    p.add_argument("--kernel", action="store_true", help="also time the fused CPU kernel")
    p.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run)")
    p.add_argument("--no-cache", action="store_true", help="do not use the compilation cache")
    p.add_argument(
        "--fixed-only", action="store_true", help="only the matmul rate and the fixed costs"
    )
    args = p.parse_args()
    if args.quick:
        args.members, args.steps, args.repeats = 256, 100, 2
        args.widths, args.member_counts = [16, 64], [1, 64, 256]
    if not args.no_cache:
        _compile_cache.enable()
    dist = make("two_blobs")
    print(f"jax {jax.__version__} on {jax.default_backend()}, {jax.device_count()} device(s), "
          f"{os.cpu_count()} CPU(s)")  # fmt: skip
    peak = matmul_rate()
    print(f"measured float32 matmul rate (1024^3, best of 20): {peak / 1e9:.1f} GFLOP/s")
    print("\n== fixed costs")
    fixed_costs(dist, 1024)
    if args.fixed_only:
        return
    print("\n== the loop, side by side")
    for width in args.widths:
        members = args.members if width <= 64 else max(1, args.members // 4)
        steps = args.steps if width <= 64 else max(10, args.steps // 4)
        compare(dist, width, members, steps, args.repeats, peak, args.kernel)
    print("\n== member-count scaling (2-16-16-2)")
    for members in args.member_counts:
        steps = max(20, min(args.steps * 4, 300_000 // members))
        rates = [members * steps / time_toylab(dist, 16, members, steps)["loop"]
                 for _ in range(args.repeats)]  # fmt: skip
        mem = step_memory(dist, 16, members)
        mem_s = "n/a" if mem is None else f"{mem / 2**20:8.1f} MiB"
        rate = max(rates)
        print(f"  {members:5d} members: {rate:>12,.0f} model-steps/s, "
              f"{100 * rate * flops_per_model_step(16) / peak:5.1f}% of peak, "
              f"peak step memory {mem_s}")  # fmt: skip
    print("\n== peak step memory by width (1024 members)")
    for width in args.widths:
        mem = step_memory(dist, width, args.members)
        print(f"  2-{width}-{width}-2: " + ("n/a" if mem is None else f"{mem / 2**20:.1f} MiB"))


if __name__ == "__main__":
    main()
