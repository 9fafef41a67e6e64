"""Members sharded across devices: training throughput on 1 and on 2 CPU devices.

A host's CPU becomes N JAX devices with ``XLA_FLAGS=--xla_force_host_platform_device_count=N``
(read when JAX starts), so each device count runs in its own subprocess; every run
trains the same ensemble (2-16-16-2, batch 128, Adam, fresh samples) with
``toylab.train.train``, which shards the members over all devices (one program, no
Python loop). Printed: the loop's model-steps per second (initialisation and
compilation excluded) and the 2-device / 1-device ratio, for JAX's path and, with
``--kernel``, the fused CPU kernel. On a GPU machine the same script reports the GPU
count it finds (``--devices`` is then ignored).

Run:  python benchmarks/train_devices.py [--members 1024] [--steps 300] [--kernel]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys


def child(members: int, steps: int, repeats: int, kernel: str) -> None:
    import jax

    from toylab import _compile_cache
    from toylab.distributions import make
    from toylab.models import ModelConfig
    from toylab.train import TrainConfig, train

    _compile_cache.enable()
    cfg = TrainConfig(num_steps=steps, log_every=steps, checkpoints=[], num_eval_samples=128)
    model, dist = ModelConfig(hidden=(16, 16)), make("two_blobs")
    train(dist, model, TrainConfig(num_steps=2, log_every=2, checkpoints=[]), range(members),
          kernel=kernel)  # fmt: skip
    rates = []
    for _ in range(repeats):
        res = train(dist, model, cfg, seeds=range(members), kernel=kernel)
        rates.append(members * steps / res.timings["loop"])
        shards = len(jax.tree.leaves(res.params)[0].sharding.device_set)
    print(json.dumps({"devices": jax.device_count(), "shards": shards, "rate": max(rates)}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--members", type=int, default=1024)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--kernel", action="store_true", help="also the fused CPU kernel")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child is not None:
        child(args.members, args.steps, args.repeats, args.child)
        return
    print(f"{args.members} members x {args.steps} steps of 2-16-16-2, {os.cpu_count()} CPU(s)")
    for kernel in ("jax", "fused") if args.kernel else ("jax",):
        rates = {}
        for n in (1, 2):
            env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={n}"}
            cmd = [sys.executable, __file__, "--child", kernel, "--members", str(args.members),
                   "--steps", str(args.steps), "--repeats", str(args.repeats)]  # fmt: skip
            out = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if out.returncode != 0:
                print(f"  {kernel}: {n} device(s) failed:\n{out.stderr[-2000:]}")
                break
            got = json.loads(out.stdout.strip().splitlines()[-1])
            rates[n] = got["rate"]
            print(f"  {kernel:5s} {got['devices']} device(s), members on {got['shards']}: "
                  f"{got['rate']:>10,.0f} model-steps/s")  # fmt: skip
        if len(rates) == 2:
            print(f"  {kernel:5s} 2 devices / 1 device: {rates[2] / rates[1]:.2f}x")


if __name__ == "__main__":
    main()
