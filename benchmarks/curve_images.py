"""Certified curve-image bounds: cost against rendering, and tightness against sampling.

Branch and bound over the curve family (theta, kappa, cx, cy) calls
:meth:`toylab.distributions.CurveImages.render_bounds` on thousands of parameter boxes.
This prints, for boxes of half-width ``h`` around random family members, the time of
``render_bounds`` per box relative to ``render`` of one image per box (same process, best
of ``--repeats``), and the mean bound width against the mean range of the pixels over
dense samples inside the box (a lower bound on the true range: the ratio is an upper
bound on the overestimation).

Run:  python benchmarks/curve_images.py [--boxes 2000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from toylab.distributions import CurveImages


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--boxes", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    dist = CurveImages()
    rng = np.random.default_rng(0)
    low = dist.param_low + [0.0, 0.02, 0.0, 0.0]
    high = dist.param_high - [0.0, 0.01, 0.0, 0.0]
    centre = rng.uniform(low, high, (args.boxes, 4))
    t_render = t_bounds = np.inf
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        dist.render(centre)
        t1 = time.perf_counter()
        dist.render_bounds(centre - 0.01, centre + 0.01)
        t2 = time.perf_counter()
        t_render, t_bounds = min(t_render, t1 - t0), min(t_bounds, t2 - t1)
    print(f"{args.boxes} boxes of {dist.dim} pixels: render {t_render:.3f} s, "
          f"render_bounds {t_bounds:.3f} s ({1e3 * t_bounds / args.boxes:.3f} ms per box, "
          f"{t_bounds / t_render:.1f}x render)")  # fmt: skip
    print("half-width h   mean bound width   mean sampled range   ratio")
    for h in (0.1, 0.01, 0.001):
        half = np.array([h, h / 10, h, h])
        c = centre[:100]
        lo, hi = dist.render_bounds(c - half, c + half)
        pts = rng.uniform(c[:, None] - half, c[:, None] + half, (100, 400, 4))
        v = dist.render(pts)
        width, rng_s = float(np.mean(hi - lo)), float(np.mean(v.max(1) - v.min(1)))
        print(f"{h:<14g} {width:<18.4g} {rng_s:<20.4g} {width / rng_s:.2f}")


if __name__ == "__main__":
    main()
