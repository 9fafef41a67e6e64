"""Exact linear regions: toylab vs regioncam vs a dense grid, side by side.

On the same random He-initialised ReLU networks (2-16-16, 2-32-32-32, 2-64-64-64,
a 2-unit output layer, a [-3, 3]² box) it prints

* region counts from toylab's exact partition and from ``regioncam`` (a Rust
  region library, float32; ``pip install regioncam``), which must agree;
* the time of toylab's partition (which also produces every neuron's float64
  affine map on every region) and its ratio to regioncam's;
* the time of a dense 1024×1024 grid evaluation of every neuron (float32, JAX):
  a sampled picture, not exact;
* the time of exact masses and moments of every region and the mean, covariance
  and firing probability of every neuron under a 3-component Gaussian mixture.

Run:  python benchmarks/exact_regions.py [--seeds 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from toylab.exact import box, mixture_polygon_moments, neuron_moments, partition
from toylab.exact.analysis import _firing_from_pattern, _firing_mass

SIZES = [(2, 16, 16), (2, 32, 32, 32), (2, 64, 64, 64)]
LIM = 3.0


def he_net(widths, seed, bias=0.1):
    rng = np.random.default_rng(seed)
    dims = [*widths, 2]
    return [
        (rng.normal(size=(a, b)) * np.sqrt(2 / a), rng.normal(size=b) * bias)
        for a, b in zip(dims[:-1], dims[1:], strict=True)
    ]


def best(fn, repeats):
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def regioncam_faces(layers):
    import regioncam

    rc = regioncam.Regioncam(size=LIM)
    for w, b in layers[:-1]:
        rc.linear(w.astype(np.float32), b.astype(np.float32))
        rc.relu()
    w, b = layers[-1]
    rc.linear(w.astype(np.float32), b.astype(np.float32))
    return rc.num_faces


def grid_all_neurons(layers, num=1024):
    xs = jnp.linspace(-LIM, LIM, num)
    pts = jnp.stack(jnp.meshgrid(xs, xs), -1).reshape(-1, 2)
    params = [(jnp.asarray(w, jnp.float32), jnp.asarray(b, jnp.float32)) for w, b in layers]

    @jax.jit
    def f(x):
        outs = []
        for w, b in params[:-1]:
            x = jax.nn.relu(x @ w + b)
            outs.append(x)
        return [*outs, x @ params[-1][0] + params[-1][1]]

    f(pts[:10])
    return lambda: jax.block_until_ready(f(pts))


MIXTURE = (
    np.array([[-1.0, 0.0], [1.0, 0.5], [0.0, -1.2]]),
    np.array([[[0.5, 0.1], [0.1, 0.3]], [[0.4, -0.1], [-0.1, 0.6]], [[0.3, 0.0], [0.0, 0.3]]]),
    np.array([0.3, 0.4, 0.3]),
)


def moments_all(part):
    m0k, m1k, m2k = mixture_polygon_moments(part.polygons, *MIXTURE)
    m0, m1, m2 = m0k.sum(0), m1k.sum(0), m2k.sum(0)
    out = {}
    for key, maps in part.maps.items():
        mom = neuron_moments(m0, m1, m2, maps)
        fire = _firing_from_pattern(part, key, m0)
        if fire is None:
            fire = _firing_mass(part, maps, MIXTURE, m0)
        out[key] = (mom, fire)
    return m0, out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    try:
        import regioncam  # noqa: F401

        have_rc = True
    except ImportError:
        have_rc = False
        print("regioncam not installed (pip install regioncam): its columns are skipped")
    dom = box((-LIM, -LIM), (LIM, LIM))
    print(f"{'network':>12} seed | regions toylab / regioncam | toylab ms | regioncam ms | "
          "ratio | grid 1024² ms | exact moments ms")  # fmt: skip
    for widths in SIZES:
        for seed in range(args.seeds):
            layers = he_net(widths, seed)
            acts = ["relu"] * (len(widths) - 1)
            t_ours, part = best(lambda: partition(layers, acts, dom), args.repeats)  # noqa: B023
            row = f"{'-'.join(map(str, widths)):>12} {seed:4d} | {part.num_regions:7d} / "
            if have_rc:
                t_rc, n_rc = best(lambda: regioncam_faces(layers), args.repeats)  # noqa: B023
                agree = "=" if n_rc == part.num_regions else "MISMATCH"
                row += f"{n_rc:7d} {agree:>2} | {t_ours * 1e3:9.1f} | {t_rc * 1e3:12.1f} | "
                row += f"{t_ours / t_rc:5.2f} | "
            else:
                row += f"{'-':>7}    | {t_ours * 1e3:9.1f} | {'-':>12} | {'-':>5} | "
            grid = grid_all_neurons(layers)
            t_grid, _ = best(grid, args.repeats)
            t_mom, (m0, _) = best(lambda: moments_all(part), args.repeats)  # noqa: B023
            row += f"{t_grid * 1e3:13.1f} | {t_mom * 1e3:9.1f} (mass in box {m0.sum():.6f})"
            print(row, flush=True)


if __name__ == "__main__":
    main()
