"""The training-dynamics report: ``RUN/dynamics/index.md`` and its figures.

:func:`write_dynamics_report` writes a header, then calls every *section* in turn: a
function ``section(ctx: ReportContext) -> list[str]`` that returns Markdown lines and
writes its figures into ``ctx.out`` (``RUN/dynamics``), adding machine-readable numbers
to ``ctx.summary`` (written to ``summary.json``). :data:`SECTIONS` lists them in order;
appending to it (or passing ``sections=``) adds a section. A section that does not apply
to the run raises :class:`~toylab.NotApplicable`; the report then says so in one line
and goes on (when no section applies, the error is raised).

The sections here: the exact quantities along training (:func:`trajectory_section`),
births, deaths and settling of every unit (:func:`units_section`), the loss landscape
(:func:`landscape_section`: Hessian spectra and outliers, gradient overlap, mode
connectivity), the grokking progress measures of a modular-addition run
(:func:`grokking_section`), and one animated GIF
per neuron of its exact map through training (:func:`animations_section`;
``RUN/dynamics/member{m}/{layer}-{unit}.gif``, which ``toylab atlas`` shows on the
neuron's page).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from toylab._errors import NotApplicable
from toylab._progress import QUIET, Progress
from toylab.dynamics.trajectory import (
    SETTLE_THRESHOLD,
    Trajectory,
    dynamics_dir,
    select_steps,
    trajectory,
)
from toylab.neurons import NeuronId
from toylab.viz._output import MAX_DATA_PANELS, fmt_number, save_png

__all__ = [
    "SECTIONS",
    "ReportContext",
    "Section",
    "animation_path",
    "animations_section",
    "grokking_section",
    "landscape_section",
    "trajectory_section",
    "units_section",
    "write_dynamics_report",
]


@dataclasses.dataclass(frozen=True, eq=False)
class ReportContext:
    """What every section of the dynamics report gets.

    ``run`` (a loaded run), ``out`` (``RUN/dynamics``, toylab's: see
    :func:`~toylab.dynamics.dynamics_dir`), the ``members`` and checkpoint ``steps`` the
    report covers, ``progress``, ``summary`` (a dict the sections fill; written to
    ``summary.json``) and ``threshold`` (the settling threshold). ``trajectory`` is
    computed (or reloaded) once, when a section first asks for it.
    """

    run: Any
    out: Path
    members: tuple[int, ...]
    steps: tuple[int, ...]
    progress: Progress = QUIET
    summary: dict[str, Any] = dataclasses.field(default_factory=dict)
    threshold: float = SETTLE_THRESHOLD

    @functools.cached_property
    def trajectory(self) -> Trajectory:
        return trajectory(self.run, members=self.members, steps=self.steps, progress=self.progress)

    def label(self, member: int) -> str:
        return f"member {member} ({self.run.member_label(member)})"

    @property
    def shown(self) -> tuple[int, ...]:
        """The members drawn in per-member figures (at most ``MAX_DATA_PANELS``)."""
        return self.members[:MAX_DATA_PANELS]


Section = Callable[[ReportContext], list[str]]


def animation_path(run_dir: str | Path, member: int, neuron: str | NeuronId) -> Path:
    """Where the animation of ``neuron`` of ``member`` is written:
    ``RUN/dynamics/member{m}/{layer}-{unit}.gif`` (``hidden_0:3`` -> ``hidden_0-3.gif``)."""
    nid = NeuronId.parse(neuron)
    return Path(run_dir) / "dynamics" / f"member{member}" / f"{nid.key}-{nid.unit}.gif"


def _tiers_note(traj: Trajectory) -> str:
    tiers = ", ".join(sorted({str(t) for t in traj.tier.ravel()}))
    dtiers = ", ".join(sorted({str(t) for t in traj.distance_tier.ravel() if t})) or "none"
    worst = float(np.nanmax(traj.error)) if traj.error.size else 0.0
    return (f"Tier of the analyses: {tiers} (largest error {worst:.1e}); of the distances: "
            f"{dtiers}; overall: **{traj.overall_tier}**.")  # fmt: skip


def trajectory_section(ctx: ReportContext) -> list[str]:
    """Exact accuracy, gap to Bayes, linear regions, live units against the step."""
    from matplotlib.figure import Figure

    from toylab.viz.dynamics import TrajectoryDisplay

    traj = ctx.trajectory
    labels = [ctx.label(m) for m in traj.members]
    fig = Figure()
    TrajectoryDisplay.from_trajectory(traj, labels).plot(fig)
    save_png(fig, ctx.out / "trajectory.png")
    finite = traj.kind == "finite"
    split = bool(np.isfinite(traj.test_accuracy).any())
    lines = [
        "## Exact quantities along training",
        "",
        "![exact quantities against the step](trajectory.png)",
        "",
        "Every number is from `toylab.exact.analyze` of the member's network at that "
        "checkpoint: " + ("a float64 forward pass of every input of the finite domain."
                          if finite else "the exact partition into linear regions, "
                          "integrated under the distribution.") + " " + _tiers_note(traj),
        "",
    ]  # fmt: skip
    alive = traj.alive.sum(-1)
    header = "| member | step | accuracy | gap to Bayes | "
    header += "train | test | " if split else ""
    header += (
        "linear regions | live units | tier | error |" if not finite else "live units | tier |"
    )
    lines += [header, "|" + "---|" * (header.count("|") - 1)]
    shown = list(range(min(traj.num_members, 8)))
    for i in shown:
        for t, step in enumerate(traj.steps):
            row = (f"| {ctx.label(int(traj.members[i]))} | {step} | "
                   f"{fmt_number(traj.accuracy[i, t], 6)} | {fmt_number(traj.gap[i, t], 6)} | ")  # fmt: skip
            if split:
                row += (f"{fmt_number(traj.train_accuracy[i, t], 6)} | "
                        f"{fmt_number(traj.test_accuracy[i, t], 6)} | ")  # fmt: skip
            if not finite:
                row += (f"{traj.num_regions[i, t]} | {alive[i, t]} / {len(traj.neurons)} | "
                        f"{traj.tier[i, t]} | {traj.error[i, t]:.1e} |")  # fmt: skip
            else:
                row += f"{alive[i, t]} / {len(traj.neurons)} | {traj.tier[i, t]} |"
            lines.append(row)
    lines.append("")
    if traj.num_members > len(shown):
        lines += [f"The table shows the first {len(shown)} of {traj.num_members} members; "
                  "`trajectory.npz` holds every member.", ""]  # fmt: skip
    bayes = traj.bayes_accuracy[np.isfinite(traj.bayes_accuracy)]
    if len(bayes):
        tiers = ", ".join(sorted({str(t) for t in traj.bayes_tier if t}))
        lines += [f"Gap to Bayes: the Bayes-optimal accuracy ({fmt_number(bayes[0], 6)}"
                  + (" for member 0" if len(np.unique(bayes)) > 1 else "")
                  + f", {tiers}) minus the exact accuracy.", ""]  # fmt: skip
    if split:
        lines += ["Train and test: the member's own training set and the rest of the domain "
                  "(exact, by enumeration).", ""]  # fmt: skip
    ctx.summary["trajectory"] = {
        "file": "trajectory.npz", "steps": traj.steps.tolist(), "members": traj.members.tolist(),
        "tier": traj.overall_tier, "accuracy": traj.accuracy.tolist(),
        "gap": traj.gap.tolist(), "num_regions": traj.num_regions.tolist(),
        "live_units": alive.tolist(),
    }  # fmt: skip
    return lines


def units_section(ctx: ReportContext) -> list[str]:
    """Every unit: firing probability, mean, distance between checkpoints; births,
    deaths and settling."""
    from matplotlib.figure import Figure

    from toylab.viz.dynamics import UnitQuantitiesDisplay, UnitTimelineDisplay

    traj, thr = ctx.trajectory, ctx.threshold
    births, deaths, settle = traj.births(), traj.deaths(), traj.settle_steps(thr)
    lines = [
        "## Births, deaths and settling of the units",
        "",
        "A unit is *dead* at a checkpoint when it is constant under the distribution (zero "
        "variance: e.g. a ReLU that never fires; the criterion of "
        "`toylab.circuits.matching.dead_units`, allowing for the analysis' numerical error). "
        "*Birth*: the first checkpoint from which it stays alive; *death*: the first from "
        "which it stays dead. Its function *settles* at the first checkpoint after which the "
        "relative distance between consecutive checkpoints, "
        "d = E[(a_t − a_t')²] / Var(a_t') (exact: one analysis of the two checkpoints' "
        f"networks side by side), stays below {thr:g}. `-` means never.",
        "",
    ]
    per_member: dict[str, Any] = {}
    for m in ctx.progress.iterate(list(ctx.shown), "unit figures", unit="member"):
        i = traj.index_of(m)
        fig = Figure()
        UnitQuantitiesDisplay.from_trajectory(traj, m, threshold=thr, title=ctx.label(m)).plot(fig)
        save_png(fig, ctx.out / f"units_member{m}.png")
        height = 0.26 * len(traj.neurons) + 1.6
        fig = Figure(figsize=(7.5, height))
        ax = fig.subplots()
        UnitTimelineDisplay.from_trajectory(traj, m, threshold=thr, title=ctx.label(m)).plot(ax)
        fig.subplots_adjust(left=0.16, right=0.97, top=1 - 0.35 / height, bottom=1.15 / height)
        save_png(fig, ctx.out / f"timeline_member{m}.png")
        lines += [f"### {ctx.label(m)}", "", f"![units of member {m}](units_member{m}.png)", "",
                  f"![timeline of member {m}](timeline_member{m}.png)", "",
                  "| neuron | birth | death | settles at | P(a > 0) at the end | "
                  "last distance | ± |", "|---|---|---|---|---|---|---|"]  # fmt: skip

        def step(v: int) -> str:
            return "-" if v < 0 else str(int(v))

        for u, name in enumerate(traj.neurons):
            last = traj.distance[i, -1, u]
            lines.append(
                f"| `{name}` | {step(births[i, u])} | {step(deaths[i, u])} | "
                f"{step(settle[i, u])} | {fmt_number(traj.firing_probability[i, -1, u], 6)} | "
                f"{fmt_number(last, 6)} | {traj.distance_error[i, -1, u]:.1e} |"
            )
        lines.append("")
        per_member[str(m)] = {
            "births": births[i].tolist(), "deaths": deaths[i].tolist(),
            "settle": settle[i].tolist(),
        }  # fmt: skip
    if traj.num_members > len(ctx.shown):
        lines += [f"Figures and tables for the first {len(ctx.shown)} of {traj.num_members} "
                  "members; `summary.json` and `trajectory.npz` hold the rest.", ""]  # fmt: skip
    for i, m in enumerate(traj.members.tolist()):
        per_member.setdefault(str(m), {"births": births[i].tolist(),
                                       "deaths": deaths[i].tolist(),
                                       "settle": settle[i].tolist()})  # fmt: skip
    ctx.summary["units"] = {"neurons": traj.neurons.tolist(), "threshold": thr,
                            "members": per_member}  # fmt: skip
    return lines


def animations_section(ctx: ReportContext) -> list[str]:
    """An animated GIF per neuron: its exact map at every checkpoint."""
    from toylab.exact import analyze
    from toylab.viz.dynamics import NeuronAnimationDisplay
    from toylab.viz.maps import _box2d, grid_values

    run = ctx.run
    dist0 = run.dist_of(ctx.members[0])
    box: Any = getattr(dist0, "domain", None)
    if not (hasattr(box, "low") and len(box.low) == 2):
        raise NotApplicable(
            "neuron maps through training need a 2-D input domain; this run's inputs are "
            f"{type(dist0).__name__} (the exact quantities above cover every neuron)."
        )
    steps = list(ctx.steps)
    lines = [
        "## Every neuron's exact map through training",
        "",
        "One animated GIF per neuron (a frame per checkpoint: colour from a grid of forward "
        "passes, each frame on its own symmetric scale; thin grey lines: exact linear-region "
        "boundaries; black: the zero set of its pre-activation; star: its exact argmax). The "
        "atlas (`toylab atlas`) shows each on the neuron's page.",
        "",
    ]
    neurons = [str(n) for n in ctx.trajectory.neurons]
    written: dict[str, list[str]] = {}
    models: dict[int, list[Any]] = {m: [] for m in ctx.shown}
    for step in steps:
        all_models = run.models(step)
        for m in ctx.shown:
            models[m].append(all_models[m])
    for m in ctx.progress.iterate(list(ctx.shown), "neuron animations", unit="member"):
        dist = run.dist_of(m)
        box = _box2d(dist)
        analyses = [analyze(model, dist) for model in models[m]]
        grids = [grid_values(model, box, 80) for model in models[m]]
        links = []
        for name in neurons:
            anim = NeuronAnimationDisplay.from_analyses(
                models[m], analyses, steps, name, grids=grids, member=m,
                label=run.member_label(m),
            )  # fmt: skip
            path = animation_path(run.path, m, name)
            anim.save_gif(path)
            rel = path.relative_to(ctx.out).as_posix()
            links.append(f"[`{name}`]({rel})")
        written[str(m)] = [animation_path(run.path, m, n).relative_to(ctx.out).as_posix()
                           for n in neurons]  # fmt: skip
        first = written[str(m)][0]
        lines += [f"### {ctx.label(m)}", "", f"![{neurons[0]} through training]({first})", "",
                  "All neurons: " + ", ".join(links) + ".", ""]  # fmt: skip
    if len(ctx.members) > len(ctx.shown):
        lines += [f"Animations for the first {len(ctx.shown)} of {len(ctx.members)} members.",
                  ""]  # fmt: skip
    ctx.summary["animations"] = written
    return lines


def grokking_section(ctx: ReportContext) -> list[str]:
    """Grokking progress measures (modular addition trained on part of its table)."""
    from toylab.dynamics.grokking import progress_measures
    from toylab.viz.grokking import grokking_figure

    res = progress_measures(ctx.run, members=ctx.members)
    lines = [
        "## Grokking progress measures",
        "",
        "The measures of Nanda et al. (2023), computed exactly over all p² pairs at every "
        f"checkpoint (p = {res.p}, loss `{res.loss}`; tier **{res.tier}**, rounding budget "
        f"{res.error:.1e}): train and test loss and accuracy, the *restricted* loss (logits "
        "projected onto the key frequencies' Fourier directions) and the *excluded* loss "
        "(those directions removed, on the training pairs), the Fourier sparsity of the "
        "embeddings and neurons, and the weight norm. `toylab.dynamics.progress_measures` "
        "states each definition and the phase rule:",
        "",
        f"> {res.phases[0].rule}" if res.phases else "",
        "",
        "| member | key frequencies | memorisation | circuit formation | cleanup | grok step "
        "| published order |",
        "|---|---|---|---|---|---|---|",
    ]
    for i, m in enumerate(res.members):
        ph = res.phases[i]

        def span(iv: Any) -> str:
            return "—" if iv is None else f"{iv[0]}–{iv[1]}"

        lines.append(
            f"| {ctx.label(m)} | {list(res.key_frequencies[i])} | {span(ph.memorisation)} | "
            f"{span(ph.circuit_formation)} | {span(ph.cleanup)} | "
            f"{'—' if ph.grok_step is None else ph.grok_step} | "
            f"{'yes' if ph.published_order else 'no'} |"
        )
    lines.append("")
    for i, m in enumerate(res.members[: len(ctx.shown)]):
        fig = grokking_figure(res, i)
        name = f"grokking_member{m}.png"
        save_png(fig, ctx.out / name)
        lines += [f"![grokking progress measures, {ctx.label(m)}]({name})", ""]
    ctx.summary["grokking"] = {
        "p": res.p, "tier": res.tier, "error": res.error,
        "members": {str(m): {
            "key_frequencies": list(res.key_frequencies[i]),
            "memorisation": res.phases[i].memorisation,
            "circuit_formation": res.phases[i].circuit_formation,
            "cleanup": res.phases[i].cleanup, "grok_step": res.phases[i].grok_step,
            "published_order": res.phases[i].published_order,
        } for i, m in enumerate(res.members)},
    }  # fmt: skip
    return lines


#: the landscape section's limit on parameters per member (a dense P x P Hessian per
#: member and checkpoint: 2000 parameters are 32 MB and a second of eigh each)
LANDSCAPE_MAX_PARAMS = 2000
#: ... and of members: a Hessian (with 8 batch-group Hessians for its error) per member and
#: checkpoint; the first 8 members stand for a larger ensemble (the report says so)
LANDSCAPE_MAX_MEMBERS = 8


def landscape_section(ctx: ReportContext) -> list[str]:
    """The loss landscape: Hessian spectra, outliers, gradient overlap, mode connectivity."""
    from matplotlib.figure import Figure

    from toylab.dynamics.loss_landscape import landscape, mode_connectivity
    from toylab.viz.landscape import (
        GradientOverlapDisplay,
        HessianSpectrumDisplay,
        ModeConnectivityDisplay,
    )

    run = ctx.run
    layers = run.model(ctx.members[0]).to_network().dense_layers(np.float64)
    num_params = sum(w.size + b.size for w, b in layers)
    if num_params > LANDSCAPE_MAX_PARAMS:
        raise NotApplicable(
            f"the landscape section computes dense Hessians; members have {num_params} "
            f"parameters (more than {LANDSCAPE_MAX_PARAMS}). Call "
            "toylab.dynamics.landscape(run, members=[...], steps=[...]) for a few."
        )
    members = list(ctx.members[:LANDSCAPE_MAX_MEMBERS])
    res = landscape(run, members=members, steps=list(ctx.steps))
    last = res.num_outliers[:, -1]
    lines = [
        "## The loss landscape",
        "",
        f"The Hessian of the training objective ({res.data}; tier **{res.tier}**) with "
        f"respect to all {res.num_params} parameters, per member and checkpoint "
        "(`toylab.dynamics.landscape`: its docstring states the objective, the outlier rule "
        f"and every error bound). {res.method}",
        "",
    ]
    if len(members) < len(ctx.members):
        lines += [f"Computed for the first {len(members)} of the {len(ctx.members)} members "
                  "(`toylab.dynamics.landscape(run, members=...)` for others).", ""]  # fmt: skip
    lines += [
        f"- outlier eigenvalues at the last checkpoint: "
        f"{', '.join(str(int(c)) for c in last[:16])}{' ...' if len(last) > 16 else ''} "
        f"(median {float(np.median(last)):g}) against **{res.num_classes} classes** "
        "(Papyan; Gur-Ari et al.: about one outlier per class);",
        f"- gradient overlap with the top-{res.k} eigenspace, ‖P_k g‖²/‖g‖², at the last "
        f"checkpoint: median {float(np.nanmedian(res.gradient_overlap[:, -1])):.3f} "
        f"(error bound up to {float(np.nanmax(res.overlap_error[:, -1])):.2g});",
        "",
    ]
    fig = Figure(figsize=(11.5, 3.8), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    HessianSpectrumDisplay.from_result(res, int(res.members[0])).plot(ax1)
    GradientOverlapDisplay.from_result(res).plot(ax2)
    save_png(fig, ctx.out / "landscape.png")
    lines += ["![Hessian spectrum and gradient overlap](landscape.png)", ""]
    ctx.summary["landscape"] = {
        "num_params": res.num_params, "num_classes": res.num_classes, "k": res.k,
        "tier": res.tier, "outliers_last": [int(c) for c in last],
        "gradient_overlap_last": [float(v) for v in res.gradient_overlap[:, -1]],
    }  # fmt: skip
    if len(ctx.members) >= 2:
        a, b = int(ctx.members[0]), int(ctx.members[1])
        try:
            path = mode_connectivity(run, a, b, num_points=17)
        except NotApplicable as err:
            lines += [f"Mode connectivity not computed: {err}", ""]
            return lines
        fig = Figure(figsize=(5.8, 3.8), layout="constrained")
        ModeConnectivityDisplay.from_path(path).plot(fig.subplots())
        save_png(fig, ctx.out / "mode_connectivity.png")
        acc = ""
        if path.accuracy is not None:
            acc = (f"; exact accuracy along the path from {float(path.accuracy.min()):.4f} to "
                   f"{float(path.accuracy.max()):.4f} ({path.accuracy_tier})")  # fmt: skip
        lines += [
            f"**Linear mode connectivity** between {ctx.label(a)} and {ctx.label(b)} (final "
            f"parameters, straight line): loss barrier {path.barrier:.4g} ± "
            f"{path.barrier_error:.2g} at α = {path.barrier_alpha:.2f} ({path.barrier_tier})"
            f"{acc}.",
            "",
            "![loss and exact accuracy along the line](mode_connectivity.png)",
            "",
        ]
        ctx.summary["landscape"]["mode_connectivity"] = {
            "a": a, "b": b, "barrier": path.barrier, "barrier_error": path.barrier_error,
            "tier": path.barrier_tier,
        }  # fmt: skip
    return lines


#: The report's sections, in order (see the module docstring); append to add one.
SECTIONS: list[Section] = [
    trajectory_section, units_section, landscape_section, grokking_section,
    animations_section,
]  # fmt: skip


def write_dynamics_report(
    run: Any,
    *,
    members: Sequence[int] | None = None,
    steps: Sequence[int] | None = None,
    max_checkpoints: int | None = None,
    sections: Sequence[Section] | None = None,
    threshold: float = SETTLE_THRESHOLD,
    progress: Progress = QUIET,
) -> Path:
    """Write ``RUN/dynamics/index.md`` (and ``summary.json``, the figures, the animations)
    for the loaded ``run``; return the path of ``index.md``.

    ``members`` (default all) and ``steps`` (default all checkpoints, thinned to at most
    ``max_checkpoints`` by :func:`~toylab.dynamics.select_steps`) choose what is analysed;
    ``sections`` default to :data:`SECTIONS`.
    """
    from toylab._validate import check_float
    from toylab.dynamics.trajectory import _check_selection
    from toylab.runs.io import atomic_write_json, atomic_write_text

    threshold = check_float("write_dynamics_report", "threshold", threshold, minimum=0.0)
    mem, chosen = _check_selection(run, members, steps)
    chosen = select_steps(chosen, max_checkpoints)
    out = dynamics_dir(run)
    ctx = ReportContext(run, out, tuple(mem), tuple(chosen), progress, {}, threshold)
    cfg = run.config
    lines = [
        f"# toylab dynamics: {cfg.name}",
        "",
        f"- distribution: `{cfg.distribution}`",
        f"- model: {cfg.model.kind}, hidden {list(cfg.model.hidden)}, "
        f"activation {cfg.model.activation}",
        f"- training: {cfg.train.optimizer}, {cfg.train.num_steps} steps",
        f"- members: {', '.join(ctx.label(m) for m in mem[:8])}"
        + (f" ... ({len(mem)} in all)" if len(mem) > 8 else ""),
        f"- checkpoints: {', '.join(map(str, chosen))}"
        + (f" ({len(chosen)} of the run's {len(run.checkpoint_steps)})"
           if len(chosen) < len(run.checkpoint_steps) else ""),
        "",
    ]  # fmt: skip
    ctx.summary.update(name=str(cfg.name), members=list(mem), steps=list(chosen))
    skipped = []
    sections = list(SECTIONS if sections is None else sections)
    for section in sections:
        try:
            lines += section(ctx)
        except NotApplicable as err:
            title = (section.__doc__ or section.__name__).strip().splitlines()[0]
            skipped.append(str(err))
            lines += [f"> {title} — not applicable: {err}", ""]
    if sections and len(skipped) == len(sections):
        raise NotApplicable(
            "toylab dynamics: no section applies to this run: " + "; ".join(skipped)
        )
    atomic_write_json(out / "summary.json", ctx.summary)
    atomic_write_text(out / "index.md", "\n".join(lines) + "\n")
    return out / "index.md"
