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

Run:  python benchmarks/curves_tuning.py [--tol 0.1] [--max-boxes 4000]
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tol", type=float, default=0.1)
    ap.add_argument("--max-boxes", type=int, default=4000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--conv-output-boxes", type=int, default=100)
    args = ap.parse_args()
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
            r0 = tuning(net, fam, neuron, resolution=res, tol=1e-12, max_boxes=res[0] * res[1])
            r = tuning(net, fam, neuron, resolution=res, tol=args.tol, max_boxes=boxes)
            print(
                f"{name:34s} {neuron:11s} range~[{r0.values.min():.3g}, {r0.values.max():.3g}]"
                f"  {res[0]}x{res[1]} cells: width mean {r0.width.mean():.3g} max {r0.max_width:.3g}"
                f" ({r0.seconds:.2f}s) | tol {args.tol}: {r.num_cells} cells, max width"
                f" {r.max_width:.3g}, mean {r.width.mean():.3g}, unresolved"
                f" {len(r.unresolved)} ({r.num_boxes} boxes, {r.seconds:.1f}s)"
            )
        if conv:
            continue
        m = certified_max(net, fam, "output:0", gap=0.01, max_boxes=args.max_boxes)
        print(
            f"{name:34s} output:0 max over the family in [{m.lower:.4g}, {m.upper:.4g}]"
            f" gap {m.gap:.3g} converged={m.converged} ({m.num_boxes} boxes, {m.seconds:.1f}s)"
            f" argmax {np.round(m.argmax, 3).tolist()}"
        )


if __name__ == "__main__":
    main()
