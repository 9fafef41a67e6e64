"""The curve-detector section of a run's report, for runs on image families (private).

For every member: the detector table of each analysed conv layer (centre channels;
:func:`toylab.curves.analyze_detectors`), the orientation tuning curves with their
certified bands, the conv kernels as images; across members: the preferred orientations
on a circle, the number of detectors per seed, the pooled tiling and widths; for a few
channels the θ × κ heat map, the width-against-curvature triangle and the scores of
the sampled methods (:mod:`toylab.curves.scoring`) against the certified answer.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import jax
import numpy as np

from toylab._progress import QUIET, Progress

__all__ = ["is_image_run", "report_lines"]

#: the layers analysed (those the network has), and how many channels get the extras
LAYERS = ("conv_1", "conv_0")
NUM_EXTRA = 2
#: parameter boxes for the heat map and for each certified family extreme of the scores
HEATMAP_BOXES = 1500
SCORE_BOXES = 2000


def is_image_run(run: Any) -> bool:
    """Whether the run's members read images of an analytic family (``kind == "image"``)."""
    return getattr(run.dist_of(0), "kind", None) == "image"


def _fmt(v: float, d: int = 3) -> str:
    from toylab.viz._output import fmt_number

    return fmt_number(v, d)


def _yn(v: bool | None) -> str:
    return "**yes**" if v else "no" if v is False else "undecided"


def _table(fam: Any) -> list[str]:
    rows = [
        "| channel | preferred θ* (°) | argmax arc (°) | peak | half-max width (°) | "
        "single peak | ±45° / peak | opposite pre-act. | detector | polarity r | fill r |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in fam.channels:
        arc = "—" if c.preferred_arc[1] >= 360 else (
            f"{c.preferred_arc[0]:.0f} + {c.preferred_arc[1]:.0f}")  # fmt: skip
        inv = {k: f"{v[0]:.2f} ± {v[1]:.2f}" for k, v in c.invariance.items()}
        off = "—" if not np.isfinite(c.off45_fraction) else f"{c.off45_fraction:.2f}"
        if c.peak[1] <= 0:  # certified silent on the whole slice: nothing to prefer
            rows.append(f"| `{c.address}` | — | — | [{_fmt(c.peak[0])}, {_fmt(c.peak[1])}] | "
                        "never fires on this slice (certified) | — | — | "
                        f"{c.opposite_sign} ({_fmt(c.opposite[1])}) | no | — | — |")  # fmt: skip
            continue
        rows.append(
            f"| `{c.address}` | {c.preferred:.1f} | {arc} | [{_fmt(c.peak[0])}, {_fmt(c.peak[1])}] "
            f"| [{c.width[0]:.0f}, {c.width[1]:.0f}] | {_yn(c.single_peak)} | {off} | "
            f"{c.opposite_sign} ({_fmt(c.opposite[1])}) | {_yn(c.is_detector)} | "
            f"{inv.get('polarity', '—')} | {inv.get('fill', '—')} |"
        )
    return [*rows, ""]


def _extras(channels: list[Any]) -> list[Any]:
    """Detectors first, then the strongest responders."""
    return sorted(channels, key=lambda c: (not c.is_detector, -c.peak[0]))[:NUM_EXTRA]


def report_lines(
    run: Any, out: Path, summary: dict[str, Any], *, progress: Progress = QUIET,
    scores: bool = True,
) -> list[str]:  # fmt: skip
    """Write the figures into ``out`` and return the section's markdown lines; the
    numbers go into ``summary["curves"]``."""
    from matplotlib.figure import Figure

    from toylab.curves.detectors import analyze_detectors, channel_detector, local_problem
    from toylab.network import as_network
    from toylab.viz._output import save_png
    from toylab.viz.curves import (
        FilterDisplay,
        OrientationTuningDisplay,
        PreferredOrientationsDisplay,
        TuningHeatmapDisplay,
        WidthCurvatureDisplay,
    )

    start, cpu = time.perf_counter(), time.process_time()
    net0 = as_network(run.model(0), "report")
    layers = [k for k in LAYERS if k in net0.layer_keys()]
    labels = [run.member_label(m) for m in range(run.num_members)]
    lines = [
        "## Curve detectors",
        "",
        "Each channel at the centre of its feature map, swept over the orientation θ of the "
        "family's curve (curvature at the middle of its range, curve centred): the response "
        "is **certified** on every θ cell (branch and bound over parameter boxes through the "
        "renderer's interval bounds and the network's linear bounds, on the channel's "
        "receptive field). Rule: a channel is a *curve detector* when its certified peak is "
        "positive, its half-maximum set is one lobe, its response 45° either side of θ* is at "
        "most 0.2 of the peak (certified upper bounds) and its pre-activation at θ* + 180° is "
        "certified negative; *undecided* when the budget left a criterion open. Widths: "
        "certified enclosure of the measure of {θ : g(θ) ≥ max/2}. Polarity / fill: Pearson "
        "correlation of the tuning with that to the inverted (polarity −1) or filled (fill "
        "0.5) family, **sampled** at 256 random θ, ± a bootstrap 95% half-width.",
        "",
        "(Neuron maps over the input space need a 2-D input; these inputs are "
        f"{getattr(run.dist_of(0), 'dim', '?')}-pixel images, so this section replaces them.)",
        "",
    ]
    rec: dict[str, Any] = {"layers": {}}
    results = {}
    for layer in layers:
        cpu0 = time.process_time()
        with progress.task(f"curve detectors in {layer}"):
            res = analyze_detectors(run, layer=layer)
        layer_cpu = time.process_time() - cpu0
        results[layer] = res
        lines += [f"### {layer}", ""]
        for f, m in zip(res.families, res.members, strict=True):
            lines += [f"#### member {m} ({labels[m]}): {f.num_detectors} detector(s)", ""]
            lines += _table(f)
            fig = OrientationTuningDisplay.from_detectors(f.channels).plot(Figure()).figure_
            name = f"curves_tuning_{layer}_member{m}.png"
            save_png(fig, out / name)
            lines += [f"![tuning of {layer}, member {m}]({name})", ""]
        fig = PreferredOrientationsDisplay.from_result(res, labels).plot(Figure()).figure_
        name = f"curves_preferred_{layer}.png"
        save_png(fig, out / name)
        t = res.pooled
        widths = ", ".join(f"[{w[0]:.0f}, {w[1]:.0f}]" for w in res.widths) or "none"
        lines += [
            f"#### {layer} across seeds",
            "",
            f"![preferred orientations, {layer}]({name})",
            "",
            f"- detectors per seed: {res.counts.tolist()} (of {net0.layer_shape(layer)[2]} "
            "channels each)",
            f"- half-maximum widths of the detectors (°, certified): {widths}",
            f"- pooled preferred orientations (°): "
            f"{', '.join(f'{a:.0f}' for a in t.angles) or 'none'}; largest gap "
            f"[{t.max_gap[0]:.0f}, {t.max_gap[1]:.0f}]° against 360/n = "
            f"{360 / max(len(t.angles), 1):.0f}° ({t.tier}); mean resultant length "
            f"{_fmt(t.resultant)}",
            f"- time: {res.seconds:.1f} s wall clock ({layer_cpu:.1f} s CPU) for "
            f"{len(res.members)} members × {net0.layer_shape(layer)[2]} channels",
            "",
        ]
        rec["layers"][layer] = {
            "counts": res.counts, "widths": res.widths, "pooled_angles": t.angles,
            "pooled_max_gap": t.max_gap, "pooled_tier": t.tier, "seconds": res.seconds,
            "cpu_seconds": layer_cpu,
            "members": [
                [{"address": c.address, "preferred": c.preferred, "arc": c.preferred_arc,
                  "peak": c.peak, "width": c.width, "single_peak": c.single_peak,
                  "off45_fraction": c.off45_fraction, "opposite": c.opposite,
                  "opposite_sign": c.opposite_sign, "is_detector": c.is_detector,
                  "invariance": c.invariance, "tier": c.tier, "error": c.error}
                 for c in f.channels] for f in res.families
            ],
        }  # fmt: skip
    # kernels
    lines += ["### Filters", ""]
    for m in range(run.num_members):
        for layer in sorted(layers):
            disp = FilterDisplay.from_network(run.model(m), layer, f"{layer} kernels, member {m}")
            name = f"curves_filters_{layer}_member{m}.png"
            save_png(disp.plot(Figure()).figure_, out / name)
            lines += [f"![{layer} kernels, member {m}]({name})", ""]
    # heat map, triangle and scores for a few channels of the deepest layer
    if layers:
        layer = layers[0]
        picks = [c for f in results[layer].families for c in _extras(list(f.channels))]
        picks = sorted(picks, key=lambda c: (not c.is_detector, -c.peak[0]))[:NUM_EXTRA]
        lines += ["### Curvature", ""]
        tri = []
        for c in progress.iterate(picks, "curvature", unit="channel"):
            m = c.member
            fam = run.dist_of(m)
            tri.append(channel_detector(run.model(m), fam, c.address, member=m, curvatures=4,
                                        invariance=False))  # fmt: skip
            hm = TuningHeatmapDisplay.from_model(run.model(m), fam, c.address,
                                                 tol=max(0.1 * c.peak[0], 1e-3),
                                                 max_boxes=HEATMAP_BOXES)  # fmt: skip
            name = f"curves_heatmap_member{m}_{c.address.replace(':', '_')}.png"
            save_png(hm.plot(Figure()).figure_, out / name)
            lines += [f"![θ × κ tuning of member {m} {c.address}]({name})", ""]
        if tri:
            fig = Figure()
            WidthCurvatureDisplay.from_detectors(tri).plot(fig.subplots())
            fig.tight_layout()
            save_png(fig, out / "curves_triangle.png")
            lines += ["Width against curvature (certified enclosures at each κ):", "",
                      "![width vs curvature](curves_triangle.png)", "",
                      "| channel | κ | width (°) |", "|---|---|---|"]  # fmt: skip
            for c in tri:
                for k, w in zip(c.kappas, c.width_by_kappa, strict=True):
                    lines.append(f"| m{c.member} `{c.address}` | {k:.3f} | "
                                 f"[{w[0]:.0f}, {w[1]:.0f}] |")  # fmt: skip
            lines.append("")
        if scores:
            lines += _score_lines(run, picks[:1], progress, local_problem)
    secs, cpu = time.perf_counter() - start, time.process_time() - cpu
    lines += [f"Curve-detector section: {secs:.0f} s wall clock, {cpu:.0f} s CPU.", ""]
    rec["seconds"] = secs
    rec["cpu_seconds"] = cpu
    summary["curves"] = rec
    return lines


def _score_lines(run: Any, picks: list[Any], progress: Progress, local_problem: Any) -> list[str]:
    from toylab.curves.scoring import score_dataset, score_featureviz, score_sweep
    from toylab.curves.tuning import certified_max, certified_min

    lines = [
        "### Sampled methods against the certified answer",
        "",
        "On each channel's receptive field. `sampled`: the method's best response "
        "(tier sampled); `certified`: the certified maximum over the family [lower, upper]; "
        "miss: what the sampled method misses below it (certified bracket). Synthetic sweep: "
        "a 25 × 7 grid over (θ, κ); dataset examples: top of 4096 draws of the training "
        "distribution; feature visualization: gradient ascent in the pixel box (may exceed "
        "the family: pixel space is larger).",
        "",
        "| channel | method | sampled | certified family max | miss | detail |",
        "|---|---|---|---|---|---|",
    ]
    for c in progress.iterate(picks, "scoring sampled methods", unit="channel"):
        m = c.member
        lp = local_problem(run.model(m), run.dist_of(m), c.address)
        gap = max(0.02 * c.peak[1], 1e-3)
        ext = (certified_max(lp.network, lp.family, lp.neuron, gap=gap, max_boxes=SCORE_BOXES),
               certified_min(lp.network, lp.family, lp.neuron, gap=gap, max_boxes=SCORE_BOXES))  # fmt: skip
        fmax = ext[0]
        rows = [
            score_sweep(lp.network, lp.family, lp.neuron, tol=max(0.1 * c.peak[1], 1e-3),
                        gap=gap, max_boxes=SCORE_BOXES, extremes=ext),
            score_dataset(lp.network, lp.family, lp.neuron, key=jax.random.key(1),
                          num_samples=4096, gap=gap, extremes=ext),
            score_featureviz(lp.network, lp.family, lp.neuron, key=jax.random.key(2),
                             num_starts=8, num_steps=200, gap=gap, extremes=ext),
        ]  # fmt: skip
        for s in rows:
            miss = f"[{_fmt(fmax.lower - s.sampled)}, {_fmt(fmax.upper - s.sampled)}]"
            lines.append(
                f"| m{m} `{c.address}` | {s.method} ({s.tier}) | {_fmt(s.sampled)} | "
                f"[{_fmt(fmax.lower)}, {_fmt(fmax.upper)}] ({fmax.tier}"
                f"{'' if fmax.converged else ', not converged'}) | {miss} | {s.detail} |"
            )
    return [*lines, ""]
