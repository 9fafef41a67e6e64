"""The exact accuracy of edited networks: ``accuracy`` against ``analyze``, side by side.

Scoring an ablation, a patch or a weight edit needs one number per edited network: its
exact accuracy. :func:`toylab.exact.analyze` gives it along with every unit's moments
(closed-form moments of every region under every Gaussian component or atom);
:func:`toylab.exact.accuracy` integrates only the decision regions' boundaries
(Green's theorem; edges shared by two regions of one class cancel and are skipped).
On random He-initialised 2-16-16-2 ReLU networks, each with every first-layer unit
zero-ablated in turn, it prints per distribution the time of both (alternating, best
of ``--repeats``), their ratio, and the largest difference of the accuracies (they
must agree within the stated errors). Noisy curves (spiral, two moons) are densities
of many Gaussian atoms, where the difference is largest.

Run:  python benchmarks/exact_accuracy.py [--repeats 2] [--ablations 4]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from toylab.distributions import NoisyCurve, two_blobs, xor_blobs
from toylab.exact import accuracy, analyze
from toylab.network import Network


def _net(seed: int, widths: tuple[int, ...] = (2, 16, 16, 2)) -> Network:
    rng = np.random.default_rng(seed)
    ws = [
        rng.normal(size=(a, b)) * np.sqrt(2.0 / a)
        for a, b in zip(widths[:-1], widths[1:], strict=True)
    ]
    bs = [rng.normal(size=b) * 0.1 for b in widths[1:]]
    return Network.from_weights(ws, bs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--ablations", type=int, default=4, help="first-layer units ablated")
    args = ap.parse_args()
    dists = {"two_blobs": two_blobs(), "xor_blobs": xor_blobs(),
             "two_moons": NoisyCurve("two_moons"), "spiral": NoisyCurve("spiral")}  # fmt: skip
    net = _net(0)
    edits = [net.ablate([f"hidden_0:{i}"], {f"hidden_0:{i}": 0.0}) for i in range(args.ablations)]
    print(f"{'distribution':<12} {'analyze':>10} {'accuracy':>10} {'ratio':>7} "
          f"{'max |diff|':>11} {'stated error':>13} tier")  # fmt: skip
    for name, dist in dists.items():
        analyze(edits[0], dist), accuracy(edits[0], dist)  # warm: atoms, caches
        t_an, t_acc = np.inf, np.inf
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            full = [analyze(e, dist) for e in edits]
            t1 = time.perf_counter()
            fast = [accuracy(e, dist) for e in edits]
            t2 = time.perf_counter()
            t_an, t_acc = min(t_an, t1 - t0), min(t_acc, t2 - t1)
        diff = max(abs(a.accuracy - b.accuracy) for a, b in zip(full, fast, strict=True))
        err = max(b.error for b in fast)
        print(
            f"{name:<12} {t_an / len(edits):>9.3f}s {t_acc / len(edits):>9.3f}s "
            f"{t_an / t_acc:>6.1f}x {diff:>11.1e} {err:>13.1e} {fast[0].tier}",
            flush=True,
        )


if __name__ == "__main__":
    main()
