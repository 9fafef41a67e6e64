"""The run report: pictures and a summary written into ``RUN_DIR/report/``.

``write_report(run)`` writes ``index.md`` (the summary with links to the
figures), ``summary.json`` (the same numbers, machine-readable) and PNGs:
``data.png`` (samples, each member's decision boundary, the Bayes-optimal
boundary) and ``neurons_member{m}.png`` (every hidden neuron's map over the input
domain). For piecewise-linear networks on 2-D Gaussian mixtures the maps carry the
exact linear-region boundaries and zero sets, and the summary the exact firing
probability and mean of every neuron and the exact accuracy (see :mod:`toylab.exact`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jax
import numpy as np

from toylab._errors import ToylabError
from toylab.runs.io import atomic_write_bytes, atomic_write_text

__all__ = ["write_report"]


def _save(fig: Any, path: Path) -> None:
    import io

    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def _fmt(v: float) -> str:
    return f"{v:.4f}"


def write_report(run: Any, *, compare: Any = None) -> Path:
    """Write the report of a loaded run and return the path of ``index.md``.

    ``compare`` is an optional :class:`toylab.methods.CompareResult` (from
    :func:`toylab.methods.compare_run`) whose summary is added as a section.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from toylab.viz import DataDisplay, layer_grid_figure

    out = Path(run.path) / "report"
    out.mkdir(parents=True, exist_ok=True)
    dist = run.dist
    bayes = None
    if dist.num_classes > 0:
        try:
            bayes = dist.bayes()
        except ToylabError:  # no Bayes accuracy for this distribution (e.g. regression)
            bayes = None
    last = run.metrics[-1] if run.metrics else {}
    members = run.manifest.get("members", [])
    lines = [
        f"# toylab report: {run.config.name}",
        "",
        f"- distribution: `{run.config.distribution}`",
        f"- model: {run.config.model.kind}, hidden {list(run.config.model.hidden)}, "
        f"activation {run.config.model.activation}",
        f"- training: {run.config.train.optimizer}, lr {run.config.train.learning_rate}, "
        f"{run.config.train.num_steps} steps, batch {run.config.train.batch_size}",
        f"- status: {run.manifest.get('status')} at step {run.manifest.get('step')}",
        "",
    ]
    summary: dict[str, Any] = {"name": run.config.name, "members": []}
    if bayes is not None:
        lines.append(
            f"Bayes-optimal accuracy: **{bayes.accuracy:.6f}** ({bayes.tier}: {bayes.method}; "
            f"error ≤ {bayes.error:.1e})"
        )
        lines.append("")
        summary["bayes"] = {"accuracy": bayes.accuracy, "tier": bayes.tier, "error": bayes.error}

    exact = _exact_section(run)
    header = "| member | seed | held-out accuracy (sampled) | gap to Bayes |"
    sep = "|---|---|---|---|"
    if exact:
        header += " exact accuracy | exact gap |"
        sep += "---|---|"
    lines += ["## Accuracy", "", header, sep]
    for m in range(run.num_members):
        seed = members[m]["seed"] if m < len(members) else "?"
        acc = float(last["accuracy"][m]) if "accuracy" in last else float("nan")
        gap = float(last["bayes_gap"][m]) if "bayes_gap" in last else float("nan")
        row = f"| {m} | {seed} | {_fmt(acc)} | {_fmt(gap)} |"
        rec: dict[str, Any] = {"member": m, "seed": seed, "accuracy": acc, "bayes_gap": gap}
        if exact:
            ex = exact["members"][m]
            row += f" {ex['accuracy']:.6f} | {ex['gap']:.6f} |"
            rec["exact"] = {k: v for k, v in ex.items() if k not in ("overlays",)}
        lines.append(row)
        summary["members"].append(rec)
    lines.append("")
    if "accuracy" in last:
        n = len(np.asarray(run.ensemble.eval_y))
        acc = float(np.mean(last["accuracy"]))
        lines.append(
            f"Held-out accuracy is sampled: {n} samples, standard error ≈ "
            f"{np.sqrt(acc * (1 - acc) / n):.4f}."
            + (
                " Exact accuracy integrates the network's exact decision regions under the "
                "distribution."
                if exact
                else ""
            )
        )
        lines.append("")

    if getattr(dist.domain, "dim", 0) == 2 and hasattr(dist.domain, "low"):
        num_show = min(run.num_members, 4)
        fig, axes = plt.subplots(1, num_show, figsize=(4.6 * num_show, 4.6), squeeze=False)
        for m in range(num_show):
            disp = DataDisplay.from_model(dist, run.model(m), key=jax.random.key(7),
                                          analysis=exact["analyses"][m] if exact else None)  # fmt: skip
            disp.title = f"member {m}: data and decision boundary"
            disp.plot(axes[0, m])
        fig.tight_layout()
        _save(fig, out / "data.png")
        lines += ["## Data and decision boundaries", "", "![data](data.png)", ""]
        lines += ["## Every hidden neuron", ""]
        if exact:
            lines.append(
                "Thin grey lines: exact linear-region boundaries; black: the neuron's exact zero "
                "set; star: exact argmax over the domain. Colours: red positive, blue negative."
            )
            lines.append("")
        for m in range(run.num_members):
            overlays = exact["members"][m]["overlays"] if exact else None
            fig = layer_grid_figure(run.model(m), dist, overlays=overlays,
                                    title=f"member {m} (seed {summary['members'][m]['seed']})")  # fmt: skip
            _save(fig, out / f"neurons_member{m}.png")
            lines += [f"### member {m}", "", f"![neurons of member {m}](neurons_member{m}.png)", ""]
            if exact:
                lines += _neuron_table(exact["members"][m]["neurons"])
    if compare is not None:
        from toylab.methods import report_lines

        lines += report_lines(compare)
    atomic_write_text(out / "index.md", "\n".join(lines) + "\n")
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2, default=float) + "\n")
    return out / "index.md"


def _neuron_table(neurons: dict[str, dict[str, Any]]) -> list[str]:
    rows = [
        "| neuron | P(active) exact | E[a] exact | max over domain | argmax |",
        "|---|---|---|---|---|",
    ]
    for name, s in neurons.items():
        rows.append(
            f"| `{name}` | {s['firing_probability']:.6f} | {s['mean']:.6f} | {s['max']:.4f} | "
            f"({s['argmax'][0]:.3f}, {s['argmax'][1]:.3f}) |"
        )
    return [*rows, ""]


def _report_summary(analysis: Any) -> dict[str, Any]:
    """Numbers and overlays of every hidden neuron for the report."""
    from toylab.viz import layer_overlays

    overlays = layer_overlays(analysis)
    neurons: dict[str, dict[str, Any]] = {}
    for name in overlays:
        s = analysis.summary(name)
        neurons[name] = {k: s[k] for k in ("firing_probability", "mean", "max", "argmax", "min")}
    return {
        "accuracy": analysis.accuracy,
        "gap": analysis.gap if analysis.gap is not None else float("nan"),
        "num_regions": analysis.geometry.num_regions,
        "region_counts": dict(analysis.geometry.region_counts),
        "error": analysis.error,
        "tier": analysis.tier,
        "neurons": neurons,
        "overlays": overlays,
    }


def _exact_section(run: Any) -> dict[str, Any] | None:
    """Exact analysis for the report, when the run qualifies (else ``None``)."""
    from toylab._errors import NotApplicable
    from toylab.exact import analyze

    try:
        results = [analyze(run.model(m), run.dist) for m in range(run.num_members)]
    except NotApplicable:
        return None
    if any(r.kind != "plane" for r in results):
        return None
    return {
        "members": [_report_summary(r) for r in results],
        "analyses": results,
    }
