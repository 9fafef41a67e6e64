"""Certified tuning over curve images: cell widths and times on small random networks.

On a 16x16 :class:`~toylab.distributions.CurveImages` family it prints, for a random
dense 256-32-8 ReLU network and a random conv net written in its exact dense form
(3x3 conv, 4 channels, same padding -> ReLU -> 3x3 conv stride 2, 8 channels -> ReLU ->
dense 8), the certified (theta, kappa) tuning of one hidden unit and one output: the
enclosure widths of the initial grid cells, then after refining to ``--tol`` within
``--max-boxes`` parameter boxes, and the certified maximum over the whole family (4
parameters) within the same budget (the conv output: a 12x3 grid and
``--conv-output-boxes``, since each of its boxes back-substitutes through 1536 units). Times are wall-clock seconds of this run (compare
them only with each other).

Each tuning runs twice: ``box`` with the renderer's pixel box only, ``1st`` with the
first-order model (``render_jacobian_bounds``: the pixel box intersected with the
mean-value zonotope). ``--run DIR`` also tunes channels ``conv_1:0`` .. ``conv_1:7`` (centre
position) of member 0 of a trained conv run over theta x kappa at 48x12.

Run:  python benchmarks/curves_tuning.py [--tol 0.1] [--max-boxes 4000] [--run DIR]
"""

from __future__ import annotations

import argparse
import math

import numpy as np

from toylab.curves import certified_max, tuning
from toylab.distributions import CurveImages
from toylab.network import Network


def _conv_dense(rng: np.random.Generator, hw: int, cin: int, cout: int, stride: int) -> tuple:
    """A random 3x3 'same'-padded conv as a dense (HWC in -> HWC out) matrix and bias."""
    k = rng.normal(size=(3, 3, cin, cout)) * np.sqrt(2.0 / (9 * cin))
    out = (hw + stride - 1) // stride
    W = np.zeros((hw * hw * cin, out * out * cout))
    for oi in range(out):
        for oj in range(out):
            for di in range(3):
                for dj in range(3):
                    i, j = oi * stride + di - 1, oj * stride + dj - 1
                    if 0 <= i < hw and 0 <= j < hw:
                        rows = (i * hw + j) * cin + np.arange(cin)
                        cols = (oi * out + oj) * cout + np.arange(cout)
                        W[np.ix_(rows, cols)] += k[di, dj]
    return W, np.tile(0.1 * rng.normal(size=cout), out * out), out


def _nets(seed: int) -> dict[str, Network]:
    rng = np.random.default_rng(seed)
    dims = (256, 32, 8)
    ws = [
        rng.normal(size=(a, b)) * np.sqrt(2.0 / a) for a, b in zip(dims[:-1], dims[1:], strict=True)
    ]
    bs = [0.1 * rng.normal(size=b) for b in dims[1:]]
    dense = Network.from_weights(ws, bs)
    W1, b1, h1 = _conv_dense(rng, 16, 1, 4, 1)
    W2, b2, h2 = _conv_dense(rng, h1, 4, 8, 2)
    W3 = rng.normal(size=(h2 * h2 * 8, 8)) * np.sqrt(2.0 / (h2 * h2 * 8))
    conv = Network.from_weights([W1, W2, W3], [b1, b2, 0.1 * rng.normal(size=8)])
    return {"dense 256-32-8": dense, "conv(4)-conv(8,s2)-8 dense form": conv}


class PixelBoxOnly:
    """The family without ``render_jacobian_bounds``: tuning falls back to the pixel box."""

    def __init__(self, fam: CurveImages) -> None:
        self.fam = fam
        self.PARAMS = fam.PARAMS
        self.param_low, self.param_high = fam.param_low, fam.param_high

    def render(self, p: np.ndarray) -> np.ndarray:
        return self.fam.render(p)

    def render_bounds(self, low: np.ndarray, high: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.fam.render_bounds(low, high)


def _both(fam: CurveImages) -> dict[str, object]:
    return {"box": PixelBoxOnly(fam), "1st": fam}


def _trained(args: argparse.Namespace) -> None:
    """Channels ``conv_1:0`` .. of member 0 of a trained conv run (read only)."""
    from toylab.runs import load_run

    run = load_run(args.run)
    model = run.model(0)
    fam = run.dist_of(0)
    for ch in range(args.channels):
        neuron = f"conv_1:{ch}"
        line = [f"trained {neuron:9s}"]
        for label, family in _both(fam).items():
            r = tuning(model, family, neuron, resolution=(48, 12), tol=args.tol,
                       max_boxes=args.trained_boxes)  # fmt: skip
            line.append(
                f"{label}: max width {r.max_width:.3g} mean {r.width.mean():.3g} unresolved"
                f" {len(r.unresolved)} ({r.num_boxes} boxes, {r.seconds:.1f}s)"
            )
        rng = f"range~[{r.values.min():.3g}, {r.values.max():.3g}]"
        print(" | ".join(line[:1] + [rng] + line[1:]), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tol", type=float, default=0.1)
    ap.add_argument("--max-boxes", type=int, default=4000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--conv-output-boxes", type=int, default=100)
    ap.add_argument("--run", default=None, help="a trained conv run directory (read only)")
    ap.add_argument("--channels", type=int, default=8)
    ap.add_argument("--trained-boxes", type=int, default=2000)
    ap.add_argument("--skip-random", action="store_true")
    args = ap.parse_args()
    if args.run:
        _trained(args)
    if args.skip_random:
        return
    fam = CurveImages(size=16)
    channels = {"dense 256-32-8": 32, "conv(4)-conv(8,s2)-8 dense form": 8}
    for name, net in _nets(args.seed).items():
        # the last hidden layer's channel 0 at the centre of its map (HWC order)
        side = int(round(math.sqrt(net.widths[f"hidden_{net.num_hidden - 1}"] / channels[name])))
        centre = ((side // 2) * side + side // 2) * channels[name]
        conv = name.startswith("conv")
        for neuron in (f"hidden_{net.num_hidden - 1}:{centre}", "output:0"):
            # the conv output back-substitutes through 512 + 1024 units per box: a small run
            small = conv and neuron == "output:0"
            res = (12, 3) if small else (48, 12)
            boxes = args.conv_output_boxes if small else args.max_boxes
            for label, family in _both(fam).items():
                r0 = tuning(net, family, neuron, resolution=res, tol=1e-12,
                            max_boxes=res[0] * res[1])  # fmt: skip
                r = tuning(net, family, neuron, resolution=res, tol=args.tol, max_boxes=boxes)
                print(
                    f"{name:34s} {neuron:11s} {label:3s} range~[{r0.values.min():.3g},"
                    f" {r0.values.max():.3g}]  {res[0]}x{res[1]} cells: width mean"
                    f" {r0.width.mean():.3g} max {r0.max_width:.3g} ({r0.seconds:.2f}s) | tol"
                    f" {args.tol}: {r.num_cells} cells, max width {r.max_width:.3g}, mean"
                    f" {r.width.mean():.3g}, unresolved {len(r.unresolved)} ({r.num_boxes}"
                    f" boxes, {r.seconds:.1f}s)",
                    flush=True,
                )
        if conv:
            continue
        for label, family in _both(fam).items():
            m = certified_max(net, family, "output:0", gap=0.01, max_boxes=args.max_boxes)
            print(
                f"{name:34s} output:0 {label:3s} max over the family in [{m.lower:.4g},"
                f" {m.upper:.4g}] gap {m.gap:.3g} converged={m.converged} ({m.num_boxes} boxes,"
                f" {m.seconds:.1f}s) argmax {np.round(m.argmax, 3).tolist()}",
                flush=True,
            )


if __name__ == "__main__":
    main()
