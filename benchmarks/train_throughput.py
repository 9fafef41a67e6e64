"""Training throughput: toylab's one-program ensemble vs per-model loops, side by side.

Trains M MLPs 2-16-16-2 (batch 128, Adam, fresh samples from two_blobs every step)
and prints model-steps per second for

* toylab: every member in one compiled program (``toylab.train.train``);
* (a) a per-model Python loop calling a jitted step (the flax tutorial style:
  ``nnx.Optimizer`` updated in an ``nnx.jit`` step), timed on ``--baseline-models``
  models and reported per model-step;
* (a') a stronger per-model baseline: a plain ``jax.jit`` functional step (split once),
  one model at a time;
* (b) a PyTorch per-model loop, when torch is installed (skipped otherwise);
* (c) the fraction of this machine's measured float32 matmul rate that toylab's
  useful FLOPs reach.

Run:  python benchmarks/train_throughput.py [--members 256 1024] [--steps 1000]
The machine is shared and noisy: compare the ratios printed within one run.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from toylab.distributions import make
from toylab.models import MLP, ModelConfig
from toylab.train import TrainConfig, train

WIDTHS = (2, 16, 16, 2)
BATCH = 128


def flops_per_model_step() -> float:
    macs = sum(a * b for a, b in zip(WIDTHS[:-1], WIDTHS[1:], strict=True)) * BATCH
    return 2 * 3 * macs  # forward + backward (~2x forward), 2 flops per MAC


def bench_toylab(dist, members: int, steps: int) -> float:
    cfg = TrainConfig(num_steps=steps, log_every=steps, batch_size=BATCH, checkpoints=[],
                      learning_rate=1e-2, num_eval_samples=256)  # fmt: skip
    mc = ModelConfig(hidden=WIDTHS[1:-1], activation="relu")
    seeds = list(range(members))
    train(dist, mc, TrainConfig(**{**cfg.__dict__, "num_steps": 2, "log_every": 2}), seeds)  # warm
    t = time.perf_counter()
    res = train(dist, mc, cfg, seeds)
    jax.block_until_ready(res.params)
    return members * steps / (time.perf_counter() - t)


def bench_per_model_jit(dist, num_models: int, steps: int) -> float:
    """The flax tutorial style: one model at a time, a jitted step per call."""

    @nnx.jit
    def step(model, optimizer, x, y):
        def loss_fn(m):
            return optax.softmax_cross_entropy_with_integer_labels(m(x), y).mean()

        loss, grads = nnx.value_and_grad(loss_fn)(model)
        optimizer.update(model, grads)
        return loss

    sample = jax.jit(lambda k: dist.sample(k, BATCH))
    total = 0.0
    for m in range(num_models + 1):
        model = MLP(WIDTHS, "relu", rngs=nnx.Rngs(m))
        opt = nnx.Optimizer(model, optax.adam(1e-2), wrt=nnx.Param)
        key = jax.random.key(m)
        n = 3 if m == 0 else steps  # model 0 warms up compilation
        t = time.perf_counter()
        for s in range(n):
            b = sample(jax.random.fold_in(key, s))
            loss = step(model, opt, b.x, b.y)
        jax.block_until_ready(loss)
        if m:
            total += time.perf_counter() - t
    return num_models * steps / total


def bench_per_model_functional(dist, num_models: int, steps: int) -> float:
    """A stronger per-model baseline: ``nnx.split`` once, a plain ``jax.jit`` step that also
    samples the batch (the flax performance guide's style), one model at a time."""
    graphdef, params = nnx.split(MLP(WIDTHS, "relu", rngs=nnx.Rngs(0)), nnx.Param)
    tx = optax.adam(1e-2)

    @jax.jit
    def step(params, opt_state, key):
        b = dist.sample(key, BATCH)

        def loss_fn(p):
            out = nnx.merge(graphdef, p)(b.x)
            return optax.softmax_cross_entropy_with_integer_labels(out, b.y).mean()

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    total = 0.0
    for m in range(num_models + 1):
        params = nnx.split(MLP(WIDTHS, "relu", rngs=nnx.Rngs(m)), nnx.Param)[1]
        opt_state = tx.init(params)
        key = jax.random.key(m)
        n = 3 if m == 0 else steps
        t = time.perf_counter()
        for s in range(n):
            params, opt_state, loss = step(params, opt_state, jax.random.fold_in(key, s))
        jax.block_until_ready(loss)
        if m:
            total += time.perf_counter() - t
    return num_models * steps / total


def bench_torch(num_models: int, steps: int) -> float | None:
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)  # tiny ops: threads only add contention; this is its fastest setting
    total = 0.0
    for m in range(num_models):
        torch.manual_seed(m)
        net = torch.nn.Sequential(
            torch.nn.Linear(2, 16), torch.nn.ReLU(), torch.nn.Linear(16, 16), torch.nn.ReLU(),
            torch.nn.Linear(16, 2),
        )  # fmt: skip
        opt = torch.optim.Adam(net.parameters(), lr=1e-2)
        mu = torch.tensor([1.5, 0.0])
        t = time.perf_counter()
        for _ in range(steps):
            y = torch.randint(0, 2, (BATCH,))
            x = torch.randn(BATCH, 2) + (2 * y[:, None] - 1) * mu
            loss = torch.nn.functional.cross_entropy(net(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        total += time.perf_counter() - t
    return num_models * steps / total


def matmul_flops(n: int = 2048, repeats: int = 5) -> float:
    a = jnp.ones((n, n), jnp.float32)
    f = jax.jit(lambda x: x @ x)
    f(a).block_until_ready()
    t = time.perf_counter()
    for _ in range(repeats):
        f(a).block_until_ready()
    return 2 * n**3 * repeats / (time.perf_counter() - t)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--members", type=int, nargs="+", default=[256, 1024])
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--baseline-models", type=int, default=4)
    p.add_argument("--baseline-steps", type=int, default=300)
    args = p.parse_args()
    dist = make("two_blobs")
    print(f"jax {jax.__version__} on {jax.default_backend()}, {jax.device_count()} device(s)")
    peak = matmul_flops()
    print(f"measured float32 matmul rate: {peak / 1e9:.1f} GFLOP/s")
    base = bench_per_model_jit(dist, args.baseline_models, args.baseline_steps)
    print(f"(a) per-model jitted loop: {base:,.0f} model-steps/s "
          f"({args.baseline_models} models x {args.baseline_steps} steps)")  # fmt: skip
    func = bench_per_model_functional(dist, args.baseline_models, args.baseline_steps)
    print(f"(a') per-model functional jax.jit loop: {func:,.0f} model-steps/s")
    torch_rate = bench_torch(args.baseline_models, args.baseline_steps)
    if torch_rate is None:
        print("(b) PyTorch per-model loop: skipped (torch not installed)")
    else:
        print(f"(b) PyTorch per-model loop: {torch_rate:,.0f} model-steps/s")
    for members in args.members:
        rate = bench_toylab(dist, members, args.steps)
        frac = rate * flops_per_model_step() / peak
        line = (f"toylab, {members} members x {args.steps} steps: {rate:,.0f} model-steps/s | "
                f"vs (a) {rate / base:.1f}x | vs (a') {rate / func:.1f}x")  # fmt: skip
        if torch_rate is not None:
            line += f" | vs (b) {rate / torch_rate:.1f}x"
        line += f" | (c) {100 * frac:.1f}% of matmul peak"
        print(line, flush=True)


if __name__ == "__main__":
    main()
