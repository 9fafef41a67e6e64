"""The run report: pictures and a summary written into ``RUN_DIR/report/``.

``write_report(run)`` writes ``index.md`` (the summary with links to the figures),
``summary.json`` (the same numbers, machine-readable, strict JSON: a non-finite number
is ``null``) and PNGs: ``data.png`` (samples, every member's decision boundary, the
Bayes-optimal boundary) and ``neurons_member{m}.png`` (every hidden neuron's map over
the input domain, wrapped into a grid for wide layers).

Every number says how it was obtained:

* finite tasks (modular arithmetic, Boolean functions): **exact** train, test and
  whole-domain accuracy, from a float64 forward pass of every input of the domain
  through each member's network, split by the member's own training mask, and every
  hidden neuron's exact statistics by enumeration;
* piecewise-linear networks on 2-D densities: the accuracy of the network's exact
  decision regions under the distribution, labelled with the analysis' tier
  (``exact`` for Gaussian mixtures, ``estimated`` for other densities), and the firing
  probability, mean and argmax of every neuron (see :mod:`toylab.exact`);
* continuous distributions: the **sampled** held-out accuracy (and its standard error)
  from the run's metrics;
* regression tasks (sparse features, superposition models): the sampled held-out loss,
  and a statement of what the report does not analyse yet.

Members are named by their seed and, in a sweep, the swept value; diverged members are
named with the step at which they diverged. When ``RUN_DIR/compare/compare.json`` exists
(``toylab compare``), its summary is a section of the report.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from toylab._errors import ToylabError
from toylab._progress import QUIET, Progress
from toylab.curves._report import is_image_run
from toylab.curves._report import report_lines as curves_lines
from toylab.runs.io import atomic_write_json, atomic_write_text
from toylab.superposition._report import is_superposition_run
from toylab.superposition._report import report_lines as superposition_lines
from toylab.viz._output import MAX_DATA_PANELS, fmt_number, save_png

__all__ = ["fmt_number", "write_comparison", "write_report"]


def _stored_compare(run: Any) -> tuple[Any, str | None]:
    """The comparison saved in the run (``toylab compare``), or why it cannot be shown."""
    path = Path(run.path) / "compare" / "compare.json"
    if not path.exists():
        return None, None
    try:
        from toylab.methods.compare import CompareResult

        data = json.loads(path.read_text(encoding="utf-8"))
        result = CompareResult.from_json(data)
        from toylab.methods import report_lines

        report_lines(result)  # every field it needs is there
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        return None, (
            f"`compare/compare.json` exists but could not be read ({type(e).__name__}: {e}); "
            "rerun `toylab compare` to refresh it."
        )
    return result, None


def write_comparison(run: Any, result: Any) -> Path:
    """Store a :class:`toylab.methods.CompareResult` in the run: ``compare/compare.csv`` and
    ``compare/compare.json`` (atomically; strict JSON, non-finite numbers as null). The
    report and the atlas show the stored comparison. Returns the JSON file's path."""
    out = Path(run.path) / "compare"
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "compare.csv", result.to_csv())
    atomic_write_json(out / "compare.json", result.to_json())
    return out / "compare.json"


def _bayes(dist: Any, progress: Progress) -> Any:
    if getattr(dist, "num_classes", 0) < 2:
        return None
    with progress.task(f"Bayes-optimal accuracy of {type(dist).__name__}"):
        try:
            return dist.bayes()
        except ToylabError:  # no Bayes accuracy for this distribution
            return None


def write_report(run: Any, *, compare: Any = None, progress: Progress = QUIET) -> Path:
    """Write the report of a loaded run and return the path of ``index.md``.

    ``compare`` is an optional :class:`toylab.methods.CompareResult` (from
    :func:`toylab.methods.compare_run`) whose summary is added as a section; without it,
    the comparison stored in the run (``compare/compare.json``) is used when present.
    ``progress`` shows the long steps (:class:`toylab._progress.Progress`).
    """
    from matplotlib.figure import Figure

    from toylab.viz import layer_grid_figure

    out = Path(run.path) / "report"
    out.mkdir(parents=True, exist_ok=True)
    dist = run.dist_of(0)  # the kind of task (a sweep's members share it); analyses use their own
    cfg = run.config
    members = range(run.num_members)
    labels = [run.member_label(m) for m in members]
    diverged = run.diverged
    last = run.metrics[-1] if run.metrics else {}
    same = all(run.dist_of(m) == dist for m in range(run.num_members))
    bayes = _bayes(dist, progress) if same else None  # per member: bayes_gap in the metrics
    hidden = [k for k in _widths(run) if k.startswith("hidden_") and "." not in k]

    train = cfg.train
    lr = (f"learning_rate swept over {list(cfg.sweep.values)}"
          if cfg.sweep and cfg.sweep.param == "learning_rate" else f"lr {train.learning_rate}")  # fmt: skip
    sweep = (f"- sweep: `{cfg.sweep.describe()}` (every seed at every point; members are "
             "named by their seed and swept values)" if cfg.sweep else None)  # fmt: skip
    lines = [
        f"# toylab report: {cfg.name}",
        "",
        f"- distribution: `{cfg.distribution}`",
        f"- model: {cfg.model.kind}, hidden {list(cfg.model.hidden)}, "
        f"activation {cfg.model.activation}",
        f"- training: {train.optimizer}, {lr}, {train.num_steps} steps, "
        + (
            f"full batch on {train.train_fraction:g} of the domain"
            if train.data == "full"
            else f"batch {train.batch_size} ({train.data} data)"
        ),  # fmt: skip
        *([sweep] if sweep else []),
        f"- status: {run.manifest.get('status')} at step {run.manifest.get('step')}",
        f"- parameters: {getattr(run, 'params_source', '') or 'latest saved'}",
        "",
    ]
    summary: dict[str, Any] = {"name": cfg.name, "members": []}
    if bayes is not None:
        lines.append(
            f"Bayes-optimal accuracy: **{bayes.accuracy:.6f}** ({bayes.tier}: {bayes.method}; "
            f"error ≤ {bayes.error:.1e})"
        )
        lines.append("")
        summary["bayes"] = {"accuracy": bayes.accuracy, "tier": bayes.tier, "error": bayes.error}
    if diverged:
        lines += ["## Diverged members", ""]
        lines += [f"- **{msg}**" for _, msg in sorted(diverged.items())]
        lines += ["", "Their numbers below are those of the frozen parameters.", ""]

    exact = _exact_section(run, progress) if hidden or dist.kind != "finite" else None
    for m in members:
        summary["members"].append({"member": m, "seed": run.ensemble.member_seed(m),
                                   "label": labels[m], "diverged": m in diverged})  # fmt: skip
        summary["members"][m].update(run.ensemble.member_values(m))

    if dist.kind == "finite":
        lines += _finite_accuracy_lines(run, labels, diverged, summary, bayes)
    elif getattr(dist, "num_classes", 0) > 0:
        lines += _sampled_accuracy_lines(run, labels, diverged, summary, last, exact, bayes)
    else:
        lines += _regression_lines(run, labels, diverged, summary, last)

    planar = getattr(dist.domain, "dim", 0) == 2 and hasattr(dist.domain, "low")
    if is_superposition_run(run):
        lines += superposition_lines(run, out, summary, progress=progress)
    elif is_image_run(run):
        lines += curves_lines(run, out, summary, progress=progress)
    elif planar:
        lines += _data_figure(run, exact, labels, out, progress, Figure)
        lines += ["## Every hidden neuron", ""]
        if not hidden:
            lines += ["The model has no hidden layer: there are no hidden neurons to show.", ""]
        else:
            if exact:
                lines.append(
                    "Thin grey lines: linear-region boundaries; black: the neuron's zero set; "
                    "star: its argmax over the domain (all exact geometry). Colours, from a grid "
                    "of forward passes: red positive, blue negative, each map on its own "
                    "symmetric scale."
                )
                lines.append("")
            for m in progress.iterate(members, "neuron maps", unit="member"):
                overlays = exact["members"][m]["overlays"] if exact else None
                fig = layer_grid_figure(run.model(m), run.dist_of(m), overlays=overlays, fig=Figure(),
                                        title=f"member {m} ({labels[m]})")  # fmt: skip
                save_png(fig, out / f"neurons_member{m}.png")
                lines += [f"### member {m} ({labels[m]})", "",
                          f"![neurons of member {m}](neurons_member{m}.png)", ""]  # fmt: skip
                if exact:
                    lines += _neuron_table(exact["members"][m]["neurons"], exact["tier"])
    elif dist.kind == "finite" and hidden:
        lines += _finite_neuron_lines(run, labels, progress)
    elif dist.kind != "finite" and getattr(dist, "num_classes", 0) == 0:
        pass  # regression: said in its section
    else:
        lines += [
            "## Neurons",
            "",
            f"Neuron maps need a 2-D input domain; this distribution's inputs have "
            f"{getattr(dist, 'dim', '?')} dimensions. `toylab atlas` and `toylab.exact` "
            "analyse finite tasks by enumeration.",
            "",
        ]

    stored_note = None
    if compare is None:
        compare, stored_note = _stored_compare(run)
    if compare is not None:
        from toylab.methods import report_lines

        lines += report_lines(compare)
    elif stored_note:
        lines += ["## Sampled methods vs the exact answer", "", stored_note, ""]
    atomic_write_text(out / "index.md", "\n".join(lines) + "\n")
    atomic_write_json(out / "summary.json", _plain(summary))
    return out / "index.md"


def _widths(run: Any) -> dict[str, int]:
    return dict(getattr(run.model(0), "widths", {}))


def _plain(obj: Any) -> Any:
    """JSON-ready: NumPy scalars and arrays to Python numbers and lists."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _plain(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _name(m: int, label: str, diverged: dict[int, str]) -> str:
    return f"{m} ({label})" + (" **diverged**" if m in diverged else "")


def _finite_accuracy_lines(run: Any, labels: list[str], diverged: dict[int, str],
                           summary: dict[str, Any], bayes: Any) -> list[str]:  # fmt: skip
    """Exact train / test / domain accuracy per member, by enumeration."""
    from toylab.exact import finite_accuracy

    train_data = run.ensemble.train_data
    full = run.config.train.data == "full" and train_data is not None
    lines = ["## Accuracy (exact: every input of the finite domain)", ""]
    if full:
        lines += ["| member | train accuracy | test accuracy | whole domain |", "|---|---|---|---|"]
    else:
        lines += ["| member | accuracy over the domain |", "|---|---|"]
    sizes = None
    for m in range(run.num_members):
        mask = np.asarray(train_data[m]) if full else None
        acc = finite_accuracy(run.model(m), run.dist_of(m), mask)
        summary["members"][m]["exact"] = acc
        name = _name(m, labels[m], diverged)
        if full:
            sizes = (acc["num_train"], acc["num_test"])
            lines.append(f"| {name} | {fmt_number(acc['train'], 6)} | "
                         f"{fmt_number(acc['test'], 6)} | {fmt_number(acc['domain'], 6)} |")  # fmt: skip
        else:
            lines.append(f"| {name} | {fmt_number(acc['domain'], 6)} |")
    size = run.dist_of(0).domain.size
    lines.append("")
    note = (f"Exact: the float64 forward pass of all {size} inputs of the domain through each "
            "member's network (a tie for the largest output counts as wrong).")  # fmt: skip
    if full and sizes is not None:
        note += (f" Train: the member's own training set ({sizes[0]} inputs, "
                 f"train_fraction = {run.config.train.train_fraction:g}); test: the other "
                 f"{sizes[1]}.")  # fmt: skip
    elif not full:
        note += f" Training drew {run.config.train.data} samples from the whole domain."
    if bayes is not None:
        note += f" Bayes-optimal accuracy: {bayes.accuracy:.6f} ({bayes.tier})."
    return [*lines, note, ""]


def _sampled_accuracy_lines(run: Any, labels: list[str], diverged: dict[int, str],
                            summary: dict[str, Any], last: dict[str, Any], exact: Any,
                            bayes: Any) -> list[str]:  # fmt: skip
    n = run.ensemble.num_eval
    tier = exact["tier"] if exact else None
    header = "| member | held-out accuracy (sampled) | ± s.e. | gap to Bayes |"
    sep = "|---|---|---|---|"
    if exact:
        header += f" accuracy ({tier}) | gap to Bayes ({tier}) |"
        sep += "---|---|"
    lines = ["## Accuracy", "", header, sep]
    for m in range(run.num_members):
        acc = float(last["accuracy"][m]) if "accuracy" in last else float("nan")
        gap = float(last["bayes_gap"][m]) if "bayes_gap" in last else None
        se = float(np.sqrt(acc * (1 - acc) / n)) if np.isfinite(acc) else float("nan")
        row = (f"| {_name(m, labels[m], diverged)} | {fmt_number(acc)} | {fmt_number(se)} | "
               f"{fmt_number(gap)} |")  # fmt: skip
        rec = summary["members"][m]
        rec.update(accuracy=acc, accuracy_se=se, accuracy_tier="sampled", bayes_gap=gap)
        if exact:
            ex = exact["members"][m]
            row += f" {fmt_number(ex['accuracy'], 6)} | {fmt_number(ex['gap'], 6)} |"
            rec["exact"] = {k: v for k, v in ex.items() if k != "overlays"}
            rec["exact"]["tier"] = tier
        lines.append(row)
    lines.append("")
    note = f"Held-out accuracy is sampled: {n} samples drawn once, shared by every member."
    if exact:
        note += (" The other accuracy integrates each network's decision regions under the "
                 f"distribution ({tier}" + (f", error ≤ {exact['error']:.1e}" if tier != "exact"
                                            else "") + ").")  # fmt: skip
    return [*lines, note, ""]


def _regression_lines(run: Any, labels: list[str], diverged: dict[int, str],
                      summary: dict[str, Any], last: dict[str, Any]) -> list[str]:  # fmt: skip
    n = run.ensemble.num_eval
    lines = ["## Loss", "", f"| member | held-out {run.config.train.loss} loss (sampled) |",
             "|---|---|"]  # fmt: skip
    for m in range(run.num_members):
        loss = float(last["loss"][m]) if "loss" in last else float("nan")
        summary["members"][m].update(loss=loss, loss_tier="sampled")
        lines.append(f"| {_name(m, labels[m], diverged)} | {fmt_number(loss, 6)} |")
    lines += [
        "",
        f"Sampled: the mean loss over {n} held-out samples. This is a regression task "
        f"({type(run.dist_of(0)).__name__}) with no classes, so there is no accuracy or Bayes "
        "accuracy."
        + (
            " The superposition section below analyses every member's weights exactly."
            if is_superposition_run(run)
            else ""
        ),
        "",
    ]
    return lines


def _data_figure(run: Any, exact: Any, labels: list[str], out: Path, progress: Progress,
                 figure_cls: Any) -> list[str]:  # fmt: skip
    """Every member's decision boundary over the data (up to MAX_DATA_PANELS, said so)."""
    import jax

    from toylab.viz import DataDisplay

    if getattr(run.dist_of(0), "num_classes", 0) < 1:
        return []
    shown = list(range(min(run.num_members, MAX_DATA_PANELS)))
    ncol = min(len(shown), 4)
    nrow = -(-len(shown) // ncol)
    fig = figure_cls(figsize=(4.6 * ncol, 4.6 * nrow))
    axes = fig.subplots(nrow, ncol, squeeze=False)
    posteriors: dict[Any, Any] = {}  # one Bayes posterior per distinct distribution
    for i, m in enumerate(progress.iterate(shown, "decision boundaries", unit="member")):
        disp = DataDisplay.from_model(run.dist_of(m), run.model(m), key=jax.random.key(7),
                                      analysis=exact["analyses"][m] if exact else None,
                                      posteriors=posteriors)  # fmt: skip
        disp.title = f"member {m} ({labels[m]})"
        disp.plot(axes[i // ncol, i % ncol])
    for j in range(len(shown), nrow * ncol):
        axes[j // ncol, j % ncol].axis("off")
    fig.tight_layout()
    save_png(fig, out / "data.png")
    caption = ("The run's only member." if run.num_members == 1 else
               f"All {run.num_members} members." if len(shown) == run.num_members else
               f"Members 0-{shown[-1]} of {run.num_members} (the first {len(shown)}).")  # fmt: skip
    return ["## Data and decision boundaries", "", "![data](data.png)", "", caption, ""]


def _finite_neuron_lines(run: Any, labels: list[str], progress: Progress) -> list[str]:
    """Every hidden neuron's exact statistics on a finite domain, by enumeration."""
    from toylab.exact import analyze

    lines = ["## Every hidden neuron (exact: every input of the finite domain)", "",
             f"Under the domain's probabilities over its {run.dist_of(0).domain.size} inputs "
             "(float64 forward passes; each member's error bound on the float64 rounding of "
             "the sums is given).", ""]  # fmt: skip
    for m in progress.iterate(range(run.num_members), "exact statistics", unit="member"):
        res = analyze(run.model(m), run.dist_of(m))
        lines += [f"### member {m} ({labels[m]})", "", f"Error bound: {res.error:.1e}.", "",
                  "| neuron | P(active) | E[a] | max over the domain | min over the domain |",
                  "|---|---|---|---|---|"]  # fmt: skip
        for key in res.network.layer_keys():
            if not key.startswith("hidden_") or "." in key:
                continue
            for u in range(res.network.widths[key]):
                st = res.summary(f"{key}:{u}")
                lines.append(
                    f"| `{key}:{u}` | {fmt_number(st['firing_probability'], 6)} | "
                    f"{fmt_number(st['mean'], 6)} | {fmt_number(st['max'])} | "
                    f"{fmt_number(st['min'])} |"
                )
        lines.append("")
    return lines


def _neuron_table(neurons: dict[str, dict[str, Any]], tier: str) -> list[str]:
    """Per-neuron statistics: probabilities and means with the analysis' tier; the maximum
    and argmax come from the exact geometry (vertices of the linear regions)."""
    rows = [
        f"| neuron | P(active) ({tier}) | E[a] ({tier}) | max over domain (exact) | argmax |",
        "|---|---|---|---|---|",
    ]
    for name, s in neurons.items():
        rows.append(
            f"| `{name}` | {fmt_number(s['firing_probability'], 6)} | {fmt_number(s['mean'], 6)} "
            f"| {fmt_number(s['max'])} | ({fmt_number(s['argmax'][0], 3)}, "
            f"{fmt_number(s['argmax'][1], 3)}) |"
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


def _exact_section(run: Any, progress: Progress) -> dict[str, Any] | None:
    """Exact analysis for the report, when the run qualifies (else ``None``)."""
    from toylab._errors import NotApplicable
    from toylab.exact import analyze

    results = []
    try:
        for m in progress.iterate(range(run.num_members), "exact analysis", unit="member"):
            results.append(analyze(run.model(m), run.dist_of(m)))
    except NotApplicable:
        return None  # e.g. superposition models: no exact geometry
    if any(r.kind != "plane" for r in results):
        return None  # the finite section enumerates the domain itself
    tiers = sorted({str(r.tier) for r in results})
    return {
        "members": [_report_summary(r) for r in results],
        "analyses": results,
        "tier": "/".join(tiers),
        "error": max(float(getattr(r, "error", 0.0) or 0.0) for r in results),
    }
