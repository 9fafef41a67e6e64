"""Exact expected losses of toy models of superposition: timings as ratios in one process.

Prints (1) the n = 2 loss: the vectorised closed form (``_pair_terms``, 10,000 parameter
sets in one call) against the general enumeration (``_relu_terms``, one set per call),
per parameter set, and their largest disagreement; (2) ``phase_diagram`` at 7 × 7 and
25 × 25; (3) the exact ReLU ``expected_loss`` at n = 5..8 (m = 2, p = 0.1) against
Monte Carlo with 200,000 samples; (4) ``method="auto"`` at n = 20, 50, 200 (which tier it
picked and its width). The machine may be shared: compare ratios, not absolute times.

Run:  python benchmarks/superposition_loss.py
"""

from __future__ import annotations

import time

import numpy as np

from toylab.distributions import SparseFeatures
from toylab.network import Dense, Network, Tied
from toylab.superposition import expected_loss, phase_diagram
from toylab.superposition.loss import _pair_terms, _relu_terms


def _net(W: np.ndarray, b: np.ndarray) -> Network:
    return Network((Dense(W.T, np.zeros(W.shape[0])), Tied(0, b)), ("identity", "relu"))


def _time(fn, *args, **kw):  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    out = fn(*args, **kw)
    return time.perf_counter() - t, out


def main() -> None:
    rng = np.random.default_rng(0)
    W, b, p, imp = rng.normal(size=(10_000, 1, 2)), 0.3 * rng.normal(size=(10_000, 2)), 0.2, 1.5
    M = np.einsum("kmi,kmj->kij", W, W)
    t_fast, f0 = _time(_pair_terms, M[:, 0, 0], M[:, 0, 1], b[:, 0], p, p)
    t_fast1, f1 = _time(_pair_terms, M[:, 1, 1], M[:, 1, 0], b[:, 1], p, p)
    fast = f0[0] + imp * f1[0]
    k = 200
    t_gen, gen = _time(
        lambda: [
            _relu_terms(M[j], b[j], np.array([p, p]), np.array([1.0, imp]), 4, 1e-12)[0].sum()
            for j in range(k)
        ]
    )
    per_fast, per_gen = (t_fast + t_fast1) / len(M), t_gen / k
    diff = np.max(np.abs(fast[:k] - np.array(gen)) / (1 + np.abs(fast[:k])))
    print(f"n=2 loss per parameter set: closed form {per_fast * 1e6:.1f} us, general "
          f"{per_gen * 1e6:.0f} us, ratio {per_gen / per_fast:.0f}x; max rel diff {diff:.1e}")  # fmt: skip
    for size in (7, 25):
        t, d = _time(phase_diagram, np.logspace(-1, 1, size), np.logspace(-2, 0, size))
        print(f"phase_diagram {size}x{size}: {t:.2f} s (max projected gradient "
              f"{d.projected_gradient.max():.1e})")  # fmt: skip
    for n in (5, 6, 7, 8):
        W2, b2 = rng.normal(size=(2, n)), -0.1 * rng.random(n)
        dist = SparseFeatures((0.1,) * n)
        t_ex, r = _time(expected_loss, _net(W2, b2), dist, max_patterns=2**n)
        t_mc, _ = _time(expected_loss, _net(W2, b2), dist, method="sampled")
        print(f"exact n={n}: {t_ex:.2f} s ({r.tier}), Monte Carlo 200k: {t_mc:.2f} s, "
              f"ratio {t_ex / t_mc:.1f}")  # fmt: skip
    for n, m in ((20, 5), (50, 10), (200, 20)):
        W3, b3 = rng.normal(size=(m, n)) / np.sqrt(m), -0.05 * rng.random(n)
        t, r = _time(expected_loss, _net(W3, b3), SparseFeatures((0.05,) * n))
        print(f"auto n={n}: {t:.2f} s, {r.tier}, [{r.lower:.4g}, {r.upper:.4g}]")


if __name__ == "__main__":
    main()
