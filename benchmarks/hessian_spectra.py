"""Hessian spectra of an ensemble: one vmapped program vs a Python loop over members.

On a 4-class Gaussian mixture (``blobs_on_circle(4, labels="distinct")``) and an MLP
2-H-4 (``--hidden``), ``--members`` members at initialisation, it times the exact
float64 Hessian spectrum of the training loss on a fixed sample (``--samples``) as
:func:`toylab.dynamics.landscape` computes it:

* **vmap**: every member in one compiled program, ``vmap`` over the stacked parameters
  (:func:`toylab.dynamics.loss_landscape._spectra_program`, what an accelerator runs);
* **lax.map**: the same program mapping the members one after another inside it (what
  :func:`toylab.dynamics.landscape` runs on a CPU);
* **loop**: the vmap program called once per member (a batch of one), in a Python loop.

Both are compiled before the clock starts (their compile times are printed apart); the
best of ``--repeats`` runs taken alternately is compared, and the spectra must agree.
Ratios are what to compare: the machine may be shared, so absolute times vary.

Measured (2026-11, a shared 2-core CPU under load, ``--hidden 8 --samples 256 --repeats
3``, 60 parameters): loop / vmap 0.62x, loop / lax.map 0.88x, spectra equal to 8.6e-16.
On a CPU neither form of the one program beats the loop (XLA's CPU backend runs the
batched tiny matrix products and batched ``eigh`` no faster than one member at a time);
``lax.map`` is the CPU default as the less slow one. The accelerator measurement, where
``vmap`` should pay, is still to be made.

Run:  python benchmarks/hessian_spectra.py [--members 64] [--hidden 16] [--samples 1024]
      [--repeats 3]
"""

from __future__ import annotations

import argparse
import importlib
import time

import jax
import jax.numpy as jnp
import numpy as np

from toylab.distributions import blobs_on_circle
from toylab.models import ModelConfig
from toylab.train import TrainConfig, init_ensemble

# the module (its name is shadowed in toylab.dynamics by the function landscape)
L = importlib.import_module("toylab.dynamics.loss_landscape")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--members", type=int, default=64)
    ap.add_argument("--hidden", type=int, default=16)
    ap.add_argument("--samples", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    dist = blobs_on_circle(4, labels="distinct")
    ensemble, state = init_ensemble(
        dist, ModelConfig(hidden=(args.hidden,)), TrainConfig(num_steps=10),
        range(args.members),
    )  # fmt: skip
    idx = np.arange(args.members)
    data = L._data_for("benchmark", ensemble, idx, "population", args.samples, 0)
    spec = L._spec(ensemble, data, sequential=False)
    seq = L._spec(ensemble, data, sequential=True)
    with jax.enable_x64(True):
        params = L._cast(state.params, np.float64)
        x, y = jnp.asarray(data.x), jnp.asarray(data.y)
        w = jnp.asarray(data.w, jnp.float64)
        wd = jnp.zeros((args.members,), jnp.float64)

        def vmap_run() -> np.ndarray:
            return np.asarray(L._spectra_program(spec, params, x, y, w, wd, {})["evals"])

        def map_run() -> np.ndarray:
            return np.asarray(L._spectra_program(seq, params, x, y, w, wd, {})["evals"])

        def loop_run() -> np.ndarray:
            evals = []
            for m in range(args.members):
                one = jax.tree.map(lambda a, m=m: a[m : m + 1], params)
                out = L._spectra_program(spec, one, x, y, w[m : m + 1], wd[m : m + 1], {})
                evals.append(np.asarray(out["evals"]))
            return np.concatenate(evals)

        fns = {"vmap": vmap_run, "lax.map": map_run, "loop": loop_run}
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            print(f"compiled and ran {name} once: {time.perf_counter() - t:.2f} s", flush=True)
        best = dict.fromkeys(fns, np.inf)
        outs = dict.fromkeys(fns, np.zeros(0))
        for _ in range(args.repeats):
            for name, fn in fns.items():
                t = time.perf_counter()
                outs[name] = fn()
                best[name] = min(best[name], time.perf_counter() - t)
    num_params = outs["vmap"].shape[-1]
    ref = outs["loop"]
    diff = max(float(np.max(np.abs(o - ref)) / np.max(np.abs(ref))) for o in outs.values())
    print(f"device: {jax.devices()[0].platform}; {args.members} members, MLP 2-{args.hidden}-4 "
          f"({num_params} parameters), {data.num_examples} samples, float64")  # fmt: skip
    for name in fns:
        print(f"{name:8s}: {best[name] * 1e3:9.1f} ms   loop / {name}: "
              f"{best['loop'] / best[name]:5.2f}x")  # fmt: skip
    print(f"max relative difference of the spectra: {diff:.1e}")


if __name__ == "__main__":
    main()
