"""The superposition section of a run's report and the numbers its atlas shows (private).

For a run of toy models of superposition, every member's exact metrics
(:func:`toylab.superposition.superposition_metrics`: exact functions of the weights),
one figure per member (``WᵀW`` with the biases beside the feature norms, and the m = 2
embedding), ``D_i`` against feature density over the members, and, for n = 2, m = 1
runs, the exact phase diagram beside the trained members.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from toylab._progress import QUIET, Progress
from toylab.superposition.metrics import SuperpositionResult, superposition_metrics

__all__ = ["density", "is_superposition_run", "member_metrics", "report_lines"]


def is_superposition_run(run: Any) -> bool:
    """Whether the run's members are toy models of superposition."""
    return str(run.config.model.kind).startswith("superposition")


def density(dist: Any) -> tuple[float, bool]:
    """``(feature density, uniform)``: the features' common activation probability
    ``1 − S``, or their mean (``uniform`` False) when they differ."""
    p = np.asarray(dist.probs, np.float64)
    return float(p.mean()), bool(np.all(p == p[0]))


def member_metrics(run: Any, members: Any = None) -> list[SuperpositionResult]:
    """Every member's exact superposition metrics (float64, from the saved parameters)."""
    members = range(run.num_members) if members is None else members
    return [superposition_metrics(run.model(m).to_network()) for m in members]


def _structures_text(r: SuperpositionResult) -> str:
    counts: dict[str, int] = {}
    for s in r.structures:
        counts[s.name] = counts.get(s.name, 0) + 1
    return ", ".join(f"{k} × {v}" if v > 1 else k for k, v in counts.items()) or "none"


#: the report states each member's exact expected loss up to this many features (the
#: enumeration of activity patterns grows as 2^n; 6 features take well under a second)
EXACT_LOSS_FEATURES = 6


def _expected_loss_lines(run: Any, members: list[int], labels: list[str]) -> list[str]:
    from toylab.superposition.loss import expected_loss

    lines = [
        "### Expected loss, exactly",
        "",
        "The expected importance-weighted loss under each member's own distribution, by "
        "enumerating the features' activity patterns and integrating the piecewise-quadratic "
        "loss over each exactly (float64), beside the held-out estimate of training.",
        "",
        "| member | expected loss | tier | held-out loss (sampled) |",
        "|---|---|---|---|",
    ]
    last = run.metrics[-1] if run.metrics else {}
    for m in members:
        res = expected_loss(run.model(m).to_network(), run.dist_of(m))
        held = f"{float(np.asarray(last['loss'])[m]):.6g}" if "loss" in last else "-"
        lines.append(f"| {m} ({labels[m]}) | {res.value:.8g} | {res.tier} | {held} |")
    return [*lines, ""]


def _phase_lines(run: Any, members: list[int], out: Path) -> list[str]:
    """n = 2, m = 1: the exact phase diagram on the run's grid beside its members."""
    from matplotlib.figure import Figure

    from toylab.superposition.loss import expected_loss
    from toylab.superposition.phase import phase_diagram, trained_phase
    from toylab.viz._output import save_png
    from toylab.viz.superposition import PhaseDiagramDisplay

    entries = []
    for m in members:
        dist = run.dist_of(m)
        imp, (p0, p1) = np.asarray(dist.importance, np.float64), dist.probs
        if imp[0] <= 0 or imp[1] <= 0 or p0 != p1 or not 0 < p0 <= 1:
            return []  # the diagram is drawn over (I_2 / I_1, a common density)
        loss = expected_loss(run.model(m).to_network(), dist).value / imp[0]
        entries.append((float(imp[1] / imp[0]), float(p0), run.model(m), float(loss)))
    trained = trained_phase(entries)
    exact = phase_diagram(sorted({e[0] for e in entries}), sorted({e[1] for e in entries}))
    fig = Figure(figsize=(11.0, 4.6))  # the display lays itself out
    PhaseDiagramDisplay.from_results(exact, trained).plot(fig)
    save_png(fig, out / "superposition_phase.png")
    return [
        "### The n = 2, m = 1 phase diagram",
        "",
        "![phase diagram](superposition_phase.png)",
        "",
        "Left: the candidate solution with the lowest exact expected loss in each cell "
        "(feature 1 alone, feature 2 alone, the antipodal pair, nothing), each optimised on "
        "the exact loss (the antipodal pair's parameters are a local optimum of that "
        "optimisation). Right: the best member per cell by its exact expected loss, "
        "classified.",
        "",
    ]


def report_lines(
    run: Any, out: Path, summary: dict[str, Any], *, progress: Progress = QUIET
) -> list[str]:
    """The report's superposition section (figures written into ``out``); fills
    ``summary["members"][m]["superposition"]``."""
    from matplotlib.figure import Figure

    from toylab.viz._output import save_png
    from toylab.viz.superposition import DimensionalityDisplay, member_figure

    members = list(range(run.num_members))
    labels = [run.member_label(m) for m in members]
    results = member_metrics(run)
    r0 = results[0]
    lines = [
        "## Superposition",
        "",
        f"Each member squeezes n = {r0.num_features} features (`input:0` … "
        f"`input:{r0.num_features - 1}`) into m = {r0.num_hidden} hidden dimensions; feature "
        "i's embedding is column i of W (h = W x). Every number in this section is an exact "
        "function of the saved weights (float64): ‖W_i‖ (represented when > "
        f"{r0.threshold:g}, as in the paper's plots), the dimensionality D_i = ‖W_i‖² / "
        "Σ_j (Ŵ_i·W_j)², the dimensions per feature D* = m/‖W‖_F², and the structures the "
        "represented features form (D_i at 1, 3/4, 2/3, 1/2, 2/5, 3/8 within "
        f"{r0.tol:g}). The sum rule Σ D_i ≤ rank W ≤ m holds with equality for the "
        "uniform tight frames the paper finds.",
        "",
        "| member | density 1−S | represented (of n) | D* | Σ D_i (m) | negative biases | "
        "structures |",
        "|---|---|---|---|---|---|---|",
    ]
    densities = []
    for m, r in zip(members, results, strict=True):
        dens, uniform = density(run.dist_of(m))
        densities.append(dens)
        neg = int((r.bias_signs < 0).sum())
        lines.append(
            f"| {m} ({labels[m]}) | {dens:.3g}{'' if uniform else ' (mean)'} | "
            f"{int(r.num_represented)} | {float(r.dimensions_per_feature):.4f} | "
            f"{float(r.sum_dimensionality):.4f} ({r.num_hidden}) | {neg} | "
            f"{_structures_text(r)} |"
        )
        summary["members"][m]["superposition"] = {
            "density": dens,
            "num_represented": int(r.num_represented),
            "dimensions_per_feature": float(r.dimensions_per_feature),
            "sum_dimensionality": float(r.sum_dimensionality),
            "dimensionality": [float(d) for d in r.dimensionality],
            "norms": [float(v) for v in r.norms],
            "structures": [s.name for s in r.structures],
            "tier": r.tier,
        }
    lines.append("")

    if len(set(densities)) > 1:
        fig = Figure(figsize=(7.0, 4.6), layout="constrained")
        DimensionalityDisplay.from_results(densities, results).plot(fig.subplots())
        save_png(fig, out / "superposition_dimensionality.png")
        lines += [
            "### Feature dimensionality against density",
            "",
            "![D_i against feature density](superposition_dimensionality.png)",
            "",
            "Red: D_i of every represented feature of every member; black: each member's D*. "
            "Grey lines: the fractions of the paper's structures.",
            "",
        ]
    if r0.num_features <= EXACT_LOSS_FEATURES:
        lines += _expected_loss_lines(run, members, labels)
    if r0.num_features == 2 and r0.num_hidden == 1:
        lines += _phase_lines(run, members, out)
    lines += ["### Every member's features", ""]
    for m in progress.iterate(members, "superposition figures", unit="member"):
        fig = member_figure(results[m], title=f"member {m} ({labels[m]})")
        save_png(fig, out / f"superposition_member{m}.png")
        lines += [f"#### member {m} ({labels[m]})", "",
                  f"![features of member {m}](superposition_member{m}.png)", ""]  # fmt: skip
    return lines
