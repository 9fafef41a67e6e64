"""Exact linear regions: toylab's partition vs regioncam, side by side in one process.

On the same random He-initialised ReLU networks (2-16-16, 2-32-32, 2-64-64-64,
2-128x4, each with a 2-unit affine output, a [-3, 3]² box) it prints

* the time of toylab's exact partition (float64; every layer's maps are available
  and computed when first read) and of ``regioncam`` (a Rust region library,
  float32, which builds every layer's per-region data as it cuts; ``pip install
  regioncam``), best of ``--repeats`` runs taken alternately, and their ratio;
* the time of toylab's partition followed by reading every layer's maps
  (``+maps``), i.e. what a caller who needs all of them pays;
* the region counts of both, which must agree;
* peak memory: toylab's by ``tracemalloc`` (every NumPy array), and the growth of
  the process's peak resident set (``VmHWM``, reset through ``/proc/self/clear_refs``)
  for both, each in its own untimed run;
* the time of :func:`toylab.exact.analyze` on two Gaussian blobs (the exact moments,
  firing probabilities and accuracy of every neuron: two partitions, of the domain
  and of the integration box, and the closed-form moments).

BLAS threads are pinned to one for both libraries by setting the ``*_NUM_THREADS``
environment variables before NumPy loads (regioncam is single-threaded). Ratios are
what to compare: the machine may be shared, so absolute times vary between runs.

Run:  python benchmarks/exact_regions.py [--sizes 2-16-16,2-32-32] [--repeats 5]
      [--seeds 1] [--analyze 2-16-16,2-32-32,2-64-64-64]
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
import gc  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

from toylab.distributions import two_blobs  # noqa: E402
from toylab.exact import analyze, box, partition  # noqa: E402
from toylab.network import Network  # noqa: E402

SIZES = {
    "2-16-16": (2, 16, 16),
    "2-32-32": (2, 32, 32),
    "2-64-64-64": (2, 64, 64, 64),
    "2-128x4": (2, 128, 128, 128, 128),
}
LIM = 3.0


def he_layers(widths: tuple[int, ...], seed: int, bias: float = 0.1) -> list[tuple[Any, Any]]:
    rng = np.random.default_rng(seed)
    dims = [*widths, 2]
    return [
        (rng.normal(size=(a, b)) * np.sqrt(2 / a), rng.normal(size=b) * bias)
        for a, b in zip(dims[:-1], dims[1:], strict=True)
    ]


def toylab_partition(net: Network, dom: np.ndarray) -> Callable[[], int]:
    return lambda: partition(net, dom).num_regions


def toylab_with_maps(net: Network, dom: np.ndarray) -> Callable[[], int]:
    def run() -> int:
        part = partition(net, dom)
        for key in part.local_maps:
            part.local_maps[key]  # noqa: B018  (computed when first read)
        return part.num_regions

    return run


def regioncam_faces(layers: list[tuple[Any, Any]]) -> Callable[[], int]:
    import regioncam

    f32 = [(w.astype(np.float32), b.astype(np.float32)) for w, b in layers]

    def run() -> int:
        rc = regioncam.Regioncam(size=LIM)
        for w, b in f32[:-1]:
            rc.linear(w, b)
            rc.relu()
        rc.linear(*f32[-1])
        return int(rc.num_faces)

    return run


def best_alternating(fns: list[Callable[[], int]], repeats: int) -> list[tuple[float, int]]:
    """Best time of each function, the functions run in turn ``repeats`` times."""
    times = [np.inf] * len(fns)
    outs = [0] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            gc.collect()
            t = time.perf_counter()
            outs[i] = fn()
            times[i] = min(times[i], time.perf_counter() - t)
    return list(zip(times, outs, strict=True))


def _status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def rss_peak_mb(fn: Callable[[], int]) -> float | None:
    """Growth of the peak resident set while ``fn`` runs (MB; ``None`` if unsupported)."""
    gc.collect()
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current resident set
    except OSError:
        return None
    before = _status_kb("VmRSS")
    fn()
    peak = _status_kb("VmHWM")
    if before is None or peak is None:
        return None
    return (peak - before) / 1024


def traced_peak_mb(fn: Callable[[], int]) -> float:
    gc.collect()
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def _mb(x: float | None) -> str:
    return "-" if x is None else f"{x:.0f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--sizes", default=",".join(SIZES), help="comma-separated, from " + str(SIZES))
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--repeats", type=int, default=5, help="timed runs of each (fewer if slow)")
    p.add_argument("--analyze", default="2-16-16,2-32-32,2-64-64-64", help="sizes for analyze")
    args = p.parse_args()
    try:
        import regioncam  # noqa: F401

        have_rc = True
    except ImportError:
        have_rc = False
        print("regioncam not installed (pip install regioncam): its columns are skipped")
    dom = box((-LIM, -LIM), (LIM, LIM))
    sizes = [s for s in args.sizes.split(",") if s]
    print("BLAS threads pinned to 1 (environment variables set before NumPy loads)")
    print(
        f"{'network':>11} seed | {'regions toylab / rc':>19} | {'toylab ms':>9} | "
        f"{'rc ms':>9} | ratio | {'+maps ms':>9} | toylab MB traced / rss | rc MB rss"
    )
    for name in sizes:
        widths = SIZES[name]
        for seed in range(args.seeds):
            layers = he_layers(widths, seed)
            net = Network.from_layers(layers, ["relu"] * (len(widths) - 1))
            ours, ours_maps = toylab_partition(net, dom), toylab_with_maps(net, dom)
            ours()  # warm-up (imports, first-call costs)
            t0 = time.perf_counter()
            ours_maps()
            slow = time.perf_counter() - t0 > 2.0
            repeats = 2 if slow else args.repeats
            fns = [ours, ours_maps]
            if have_rc:
                fns.append(regioncam_faces(layers))
            res = best_alternating(fns, repeats)
            (t_ours, n_ours), (t_maps, _) = res[0], res[1]
            mem_traced = traced_peak_mb(ours)
            mem_ours = rss_peak_mb(ours)
            row = f"{name:>11} {seed:4d} | {n_ours:8d} / "
            if have_rc:
                t_rc, n_rc = res[2]
                mem_rc = rss_peak_mb(fns[2])
                agree = "=" if n_rc == n_ours else "MISMATCH"
                row += f"{n_rc:7d} {agree:>2} | {t_ours * 1e3:9.1f} | {t_rc * 1e3:9.1f} | "
                row += f"{t_ours / t_rc:5.2f} | {t_maps * 1e3:9.1f} | "
            else:
                mem_rc = None
                row += f"{'-':>7}    | {t_ours * 1e3:9.1f} | {'-':>9} | {'-':>5} | "
                row += f"{t_maps * 1e3:9.1f} | "
            row += f"{mem_traced:13.0f} / {_mb(mem_ours):>4} | {_mb(mem_rc):>9}"
            print(row, flush=True)
    analyze_sizes = [s for s in args.analyze.split(",") if s]
    if analyze_sizes:
        dist = two_blobs()
        print("\nanalyze(net, two_blobs()): exact moments of every neuron (one run each)")
        for name in analyze_sizes:
            widths = SIZES[name]
            net = Network.from_layers(he_layers(widths, 0), ["relu"] * (len(widths) - 1))
            gc.collect()
            t = time.perf_counter()
            an = analyze(net, dist)
            dt = time.perf_counter() - t
            print(f"{name:>11}: {dt * 1e3:9.1f} ms  tier {an.tier}  {an.method}", flush=True)


if __name__ == "__main__":
    main()
