"""The universality report: ``RUN/universality/index.md``, ``summary.json`` and figures.

:func:`write_universality_report` matches every member of a run against a reference
member (:func:`~toylab.universality.match_ensemble`, once) and calls every *section*
in turn: a function ``section(ctx: UniversalityContext) -> list[str]`` returning
Markdown lines, writing its figures into ``ctx.out`` and adding machine-readable numbers
to ``ctx.summary``. A section that does not apply raises :class:`~toylab.NotApplicable`;
the report says so in one line and goes on (as the dynamics report does).

Sections: the best-match score distributions against the chance baselines
(:func:`scores_section`), the recurring families and their maps across seeds
(:func:`families_section`), dead, duplicate and split units (:func:`units_section`),
linear CKA of every member with the reference against the same baselines
(:func:`cka_section`), clusterability z-scores (:func:`clusterability_section`) and
density-vs-boundary labels (:func:`density_section`).

``RUN/universality`` is toylab's (marker ``universality.json``; a directory of other
files is refused and left untouched: :func:`toylab.runs.io.owned_dir`). ``summary.json``
also lists every unit's one-to-one partner in the reference and the families, which
``toylab atlas`` shows on each neuron's page (:func:`load_links`).

**Members.** A run whose members train on different distributions (a sweep over
distribution parameters) is grouped by :func:`~toylab.universality.distribution_groups`;
units are only comparable under one distribution, so the report covers the group of the
reference member and names the others.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from toylab._errors import NotApplicable, ToylabError, fail
from toylab._progress import QUIET, Progress
from toylab.neurons import NeuronId
from toylab.viz._output import fmt_number, save_png

__all__ = [
    "CKA_BASELINE_SIZE",
    "CLUSTER_MEMBERS",
    "DENSITY_MEMBERS",
    "FAMILY_MEMBERS",
    "SECTIONS",
    "UniversalityContext",
    "cka_section",
    "clusterability_section",
    "density_section",
    "families_section",
    "load_links",
    "scores_section",
    "units_section",
    "universality_dir",
    "write_universality_report",
]

MARKER = "universality.json"
#: chance networks per baseline for the CKA section (one exact analysis each per layer)
CKA_BASELINE_SIZE = 16
#: members whose clusterability is computed (50 shuffles each: about 0.5 s per member)
CLUSTER_MEMBERS = 16
CLUSTER_SHUFFLES = 50
#: members whose density-vs-boundary scores are computed (about 1 s each on blobs) ...
DENSITY_MEMBERS = 4
#: ... and the time after which no further member is started
DENSITY_BUDGET_S = 30.0
#: seeds drawn per family in the family figures, and families drawn per layer
FAMILY_MEMBERS = 6
FAMILY_ROWS = 4
#: families listed per layer in the tables
FAMILY_TABLE = 8


def universality_dir(run: Any, *, create: bool = True) -> Path:
    """``RUN/universality`` (created with its marker ``universality.json`` when
    ``create``); a :class:`~toylab.ToylabError` when it is a file or a directory of files
    toylab did not write."""
    from toylab.runs.io import owned_dir

    return owned_dir(Path(run.path) / "universality", MARKER, "the universality report",
                     create=create, stamp={"run": str(run.path)})  # fmt: skip


@dataclasses.dataclass(frozen=True, eq=False)
class UniversalityContext:
    """What every section gets: the loaded ``run``, ``out`` (``RUN/universality``), the
    ``members`` compared (one distribution), the ``reference`` member, the hidden
    ``layers``, the ``baselines`` and ``baseline_size`` of the matching, ``progress``,
    ``summary`` (filled by the sections; ``summary.json``). ``match`` (the
    :class:`~toylab.universality.EnsembleMatch`) is computed once, when first asked for."""

    run: Any
    out: Path
    members: tuple[int, ...]
    reference: int
    layers: tuple[str, ...] | None
    baselines: tuple[str, ...]
    baseline_size: int | None
    progress: Progress = QUIET
    summary: dict[str, Any] = dataclasses.field(default_factory=dict)

    @functools.cached_property
    def match(self) -> Any:
        from toylab.universality.matching import match_ensemble

        size = len(self.members) - 1
        if self.baseline_size is not None:
            size += len(self.baselines) * min(self.baseline_size, len(self.members) - 1)
        with self.progress.task(f"matching {len(self.members)} members ({size} exact joint "
                                "analyses)"):  # fmt: skip
            return match_ensemble(
                self.run, reference=self.reference, members=list(self.members),
                layers=self.layers, baselines=self.baselines, baseline_size=self.baseline_size,
            )  # fmt: skip

    @property
    def dist(self) -> Any:
        return self.run.dist_of(self.reference)

    @functools.cached_property
    def models(self) -> dict[int, Any]:
        all_models = self.run.models()
        return {m: all_models[m] for m in self.members}

    @property
    def hidden_layers(self) -> tuple[str, ...]:
        if self.layers is not None:
            return self.layers
        net = self.models[self.reference].to_network()
        return tuple(f"hidden_{k}" for k in range(net.num_hidden))

    def label(self, member: int) -> str:
        return f"member {member} ({self.run.member_label(member)})"


Section = Callable[[UniversalityContext], list[str]]


def _q(d: Any) -> str:
    return " | ".join(fmt_number(v, 3) for v in d.quantiles)


def scores_section(ctx: UniversalityContext) -> list[str]:
    """Best-match correlations of the trained units against the chance baselines."""
    from matplotlib.figure import Figure

    from toylab.viz.universality import ScoreDistributionDisplay

    em = ctx.match
    fig = Figure()
    ScoreDistributionDisplay.from_match(em).plot(fig)
    save_png(fig, ctx.out / "scores.png")
    lines = [
        "## Best-match correlations against chance",
        "",
        f"Each live unit of every member but the reference is scored by its largest exact "
        f"correlation with a live unit of the reference ({ctx.label(em.reference)}) under "
        "the distribution (one exact analysis of the two networks side by side per member: "
        "`toylab.universality.match_ensemble`). The same score for chance networks matched "
        "against the same reference: **init** (random initialisations with the run's "
        "initialiser) and **shuffle** (each member's weights permuted within each layer). "
        "If trained seeds were no more alike than chance, about 5% of trained units would "
        "lie above a baseline's 95th percentile.",
        "",
        "![best-match correlation distributions](scores.png)",
        "",
    ]
    out: dict[str, Any] = {}
    for sc in em.scores:
        lines += [
            f"### `{sc.layer}`",
            "",
            "| networks | live units | dead units | q05 | q25 | median | q75 | q95 | trained "
            "above its q95 | tier | error |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
            f"| trained (members) | {len(sc.trained.values)} | {sc.trained.num_dead} | "
            f"{_q(sc.trained)} | — | {sc.trained.tier} | {sc.trained.error:.1e} |",
        ]
        for name, b in sc.baselines.items():
            amb = sc.ambiguous[name]
            above = fmt_number(sc.above[name], 3) + (f" ({amb} within error)" if amb else "")
            lines.append(
                f"| {name} (baseline) | {len(b.values)} | {b.num_dead} | {_q(b)} | {above} | "
                f"{b.tier} | {b.error:.1e} |"
            )
        lines.append("")
        out[sc.layer] = {
            kind: {
                "num_units": len(d.values), "num_dead": d.num_dead, "median": d.median,
                "quantiles": [float(v) for v in d.quantiles], "tier": d.tier, "error": d.error,
            }
            for kind, d in {"trained": sc.trained, **sc.baselines}.items()
        }  # fmt: skip
        out[sc.layer]["above_baseline_p95"] = dict(sc.above)
        out[sc.layer]["ambiguous"] = dict(sc.ambiguous)
        out[sc.layer]["tier"] = sc.tier
    lines += [
        f"Quantiles q05, q25, median, q75, q95 (linear interpolation). Tier of every "
        f"correlation: **{em.tier}** (largest moment error {em.error:.1e}; `error` bounds "
        "each correlation's error). A trained value within that error of a baseline's q95 "
        "is counted as *within error*.",
        "",
    ]
    ctx.summary["scores"] = out
    return lines


def _family_names(em: Any) -> list[str]:
    """``"hidden_0/F1"``, ... for ``em.families`` in order: numbered per layer in the
    match's order (most frequent first)."""
    names: list[str] = []
    count: dict[str, int] = {}
    for f in em.families:
        count[f.layer] = count.get(f.layer, 0) + 1
        names.append(f"{f.layer}/F{count[f.layer]}")
    return names


def _unit_correlation(em: Any, member: int, address: str) -> float | None:
    p = em.partner(member, address)
    return None if p is None else p[1]


def families_section(ctx: UniversalityContext) -> list[str]:
    """Recurring families of units, with their exact maps side by side across seeds."""
    em = ctx.match
    names = _family_names(em)
    fams_out = []
    for f, name in zip(em.families, names, strict=True):
        fams_out.append({
            "id": name, "layer": f.layer, "fraction": f.fraction,
            "mean_correlation": f.mean_correlation, "min_correlation": f.min_correlation,
            "tier": f.tier, "error": f.error,
            "units": [[m, a, _unit_correlation(em, m, a)] for m, a in f.units],
        })  # fmt: skip
    ctx.summary["families"] = fams_out
    lines = [
        "## Recurring families of units",
        "",
        f"A family is a live unit of the reference together with the unit of every other "
        f"member matched one-to-one to it (optimal assignment of exact correlations, at "
        f"least {em.threshold}); families found in at least two members, most frequent "
        "first. *Seeds*: the fraction of the compared members holding the family; ρ: "
        "correlation with the reference's unit (units match up to a positive scale).",
        "",
    ]
    for layer in em.layers:
        fams = [f for f in em.families if f.layer == layer]
        lines += [f"### `{layer}`: {len(fams)} recurring families", ""]
        if not fams:
            continue
        lines += ["| family | reference unit | seeds | mean ρ | min ρ | tier | units (member: "
                  "address) |", "|---|---|---|---|---|---|---|"]  # fmt: skip
        for i, f in enumerate(fams[:FAMILY_TABLE]):
            ref = next((a for m, a in f.units if m == em.reference), "—")
            some = ", ".join(f"{m}: `{a}`" for m, a in f.units[:5])
            more = f" … ({len(f.units)} units)" if len(f.units) > 5 else ""
            lines.append(
                f"| {layer}/F{i + 1} | `{ref}` | {f.fraction:.0%} | "
                f"{fmt_number(f.mean_correlation, 3)} | {fmt_number(f.min_correlation, 3)} | "
                f"{f.tier} | {some}{more} |"
            )
        if len(fams) > FAMILY_TABLE:
            lines.append(f"\n{len(fams) - FAMILY_TABLE} more in `summary.json`.")
        lines.append("")
    lines += _family_figures(ctx)
    return lines


def _family_figures(ctx: UniversalityContext) -> list[str]:
    from matplotlib.figure import Figure

    from toylab.exact import analyze
    from toylab.viz.maps import _box2d, grid_values
    from toylab.viz.universality import FamilyMapsDisplay

    em, dist = ctx.match, ctx.dist
    box: Any = getattr(dist, "domain", None)
    if not (hasattr(box, "low") and len(box.low) == 2):
        return [f"No family maps: the inputs ({type(dist).__name__}) are not a 2-D box.", ""]
    shown = [em.reference, *[m for m in em.members if m != em.reference]][:FAMILY_MEMBERS]
    models = {m: ctx.models[m] for m in shown}
    analyses: dict[int, Any] = {}
    for m in ctx.progress.iterate(shown, "exact maps of the family figures", unit="member"):
        try:
            analyses[m] = analyze(models[m], dist)
        except NotApplicable:
            analyses[m] = None
    grids = {m: grid_values(models[m], _box2d(dist), 80) for m in shown}
    corr = {(m, a): c for f in em.families for m, a in f.units
            if (c := _unit_correlation(em, m, a)) is not None}  # fmt: skip
    lines = [
        f"Maps of the {FAMILY_ROWS} most frequent families of each layer in the first "
        f"{len(shown)} members ({', '.join(map(str, shown))}; a blank cell: that member has "
        "no unit of the family). Colour: the unit's value on a grid, each map on its own "
        "symmetric scale (red positive, blue negative); exact overlays: region boundaries "
        "(grey), the unit's zero set (black), its argmax (star).",
        "",
    ]
    files = {}
    for layer in em.layers:
        fams = [f for f in em.families if f.layer == layer][:FAMILY_ROWS]
        if not fams:
            continue
        # every row keeps the shown members' columns: a member without the family is blank
        disp = FamilyMapsDisplay.from_families(
            fams, models, analyses, grids, corr, names=[f"{layer}/F{i + 1}" for i in range(len(fams))],
            columns=shown,
        )  # fmt: skip
        fig = Figure()
        disp.plot(fig)
        name = f"families_{layer}.png"
        save_png(fig, ctx.out / name, dpi=90)
        files[layer] = name
        lines += [f"![families of {layer} across seeds]({name})", ""]
    ctx.summary["family_figures"] = files
    return lines


def units_section(ctx: UniversalityContext) -> list[str]:
    """Dead, duplicate and split units."""
    em = ctx.match
    t2 = max(em.threshold, 0.0) ** 2
    lines = [
        "## Dead, duplicate and split units",
        "",
        "*Dead*: constant under the distribution. *Duplicates*: groups of units of one member "
        "that are positive multiples of each other. *Split*: a unit that a nonnegative "
        "combination of two units of another member explains (R² ≥ "
        f"{em.split_threshold}); *strict*: no single unit explains it (best single R² < "
        f"{t2:.2f}). Splits are searched both ways between each member and the reference. "
        f"All from exact moments (tier {em.tier}).",
        "",
        "| layer | dead units | members with a dead unit | duplicate groups | splits | strict "
        "splits |",
        "|---|---|---|---|---|---|",
    ]
    out = {}
    for layer in em.layers:
        dead = {m: [a for a in em.dead[m] if NeuronId.parse(a).layer == layer] for m in em.members}
        dups = sum(1 for m in em.members for g in em.duplicates[m]
                   if NeuronId.parse(g[0]).layer == layer)  # fmt: skip
        sp = [s for s in em.splits if s.layer == layer]
        strict = sum(s.best_single_r2 < t2 for s in sp)
        nd = sum(len(v) for v in dead.values())
        with_dead = sum(bool(v) for v in dead.values())
        lines.append(f"| `{layer}` | {nd} | {with_dead} of {len(em.members)} | {dups} | "
                     f"{len(sp)} | {strict} |")  # fmt: skip
        out[layer] = {"dead": nd, "members_with_dead": with_dead, "duplicate_groups": dups,
                      "splits": len(sp), "strict_splits": strict}  # fmt: skip
    lines.append("")
    ctx.summary["units"] = out
    ctx.summary["dead"] = {str(m): list(v) for m, v in em.dead.items()}
    ctx.summary["duplicates"] = {str(m): [list(g) for g in v] for m, v in em.duplicates.items()}
    return lines


def _chance_networks(ctx: UniversalityContext, size: int) -> dict[str, list[Any]]:
    import jax

    from toylab.universality.baselines import init_networks, shuffle_layers

    others = [m for m in ctx.members if m != ctx.reference]
    pick = [others[i] for i in np.linspace(0, len(others) - 1, size).round().astype(int)]
    out: dict[str, list[Any]] = {}
    key = jax.random.key(1)
    if "init" in ctx.baselines:
        ens = getattr(ctx.run, "ensemble", None)
        members = getattr(ens, "members", ())
        cfg = members[ctx.reference].model if len(members) > ctx.reference else None
        cfg = cfg if cfg is not None else ctx.run.config.model
        out["init"] = init_networks(cfg, ctx.dist, jax.random.fold_in(key, 0), size)
    if "shuffle" in ctx.baselines:
        out["shuffle"] = [shuffle_layers(ctx.models[m], jax.random.fold_in(key, 1 + m))
                          for m in pick]  # fmt: skip
    return out


def cka_section(ctx: UniversalityContext) -> list[str]:
    """Linear CKA of every member with the reference, against the chance baselines."""
    import jax

    from toylab.universality.similarity import similarity_matrix

    others = [m for m in ctx.members if m != ctx.reference]
    if not others:
        raise NotApplicable("one member only; CKA compares members with the reference.")
    size = min(CKA_BASELINE_SIZE, len(others))
    chance = _chance_networks(ctx, size)
    ref_model = ctx.models[ctx.reference]
    nets = [ref_model, *(ctx.models[m] for m in others)]
    lines = [
        "## Linear CKA with the reference",
        "",
        "Linear CKA ‖Σ_ab‖²_F / (‖Σ_aa‖_F ‖Σ_bb‖_F) of each member's layer with the "
        "reference's, from exact second moments where they exist "
        "(`toylab.universality.similarity_matrix`; sampled with a bootstrap interval "
        f"otherwise), and of {size} chance networks per baseline with the reference.",
        "",
        "| layer | networks | n | q05 | median | q95 | trained above its q95 | tier | largest "
        "error |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    out: dict[str, Any] = {}
    layers = ctx.hidden_layers
    steps = [(layer, kind) for layer in layers for kind in ("trained", *chance)]
    results: dict[tuple[str, str], Any] = {}
    for layer, kind in ctx.progress.iterate(steps, "linear CKA", unit="set"):
        group = nets if kind == "trained" else [ref_model, *chance[kind]]
        results[layer, kind] = similarity_matrix(group, ctx.dist, layer, reference=0,
                                                 key=jax.random.key(2), num_samples=4000)  # fmt: skip
    for layer in layers:
        trained = results[layer, "trained"]
        tv = trained.off_diagonal()
        entry: dict[str, Any] = {
            "members": others, "values": [float(v) for v in tv],
            "errors": [float(v) for v in np.delete(trained.errors, 0)], "tier": trained.tier,
            "method": trained.method,
        }  # fmt: skip
        for kind in ("trained", *chance):
            sm = results[layer, kind]
            v = sm.off_diagonal()
            q = np.nanquantile(v, [0.05, 0.5, 0.95]) if len(v) else np.full(3, np.nan)
            above = "—"
            if kind != "trained":
                frac = float(np.mean(tv > q[2]))
                above = fmt_number(frac, 3)
                entry[f"above_{kind}_p95"] = frac
                entry[kind] = [float(x) for x in v]
            err = float(np.nanmax(np.delete(sm.errors, 0))) if len(v) else float("nan")
            lines.append(f"| `{layer}` | {kind} | {len(v)} | {fmt_number(q[0], 3)} | "
                         f"{fmt_number(q[1], 3)} | {fmt_number(q[2], 3)} | {above} | "
                         f"{sm.tier} | {err:.1e} |")  # fmt: skip
            entry[f"{kind}_median"] = float(q[1])
        out[layer] = entry
    lines += ["", f"Method: {results[layers[0], 'trained'].method}.", ""]
    ctx.summary["cka"] = out
    return lines


def clusterability_section(ctx: UniversalityContext) -> list[str]:
    """Clusterability of every member's weight graph against within-layer shuffles."""
    import jax

    from toylab.universality.modularity import clusterability_ensemble

    shown = list(ctx.members[:CLUSTER_MEMBERS])
    with ctx.progress.task(f"clusterability of {len(shown)} members"):
        res = clusterability_ensemble([ctx.models[m] for m in shown], key=jax.random.key(3),
                                      num_shuffles=CLUSTER_SHUFFLES)  # fmt: skip
    z = np.array([r.z for r in res])
    lines = [
        "## Modularity: clusterability of the weight graph",
        "",
        f"The normalised cut of the spectral partition of each member's weight graph (k = "
        f"{res[0].k}; exact for that partition) against {CLUSTER_SHUFFLES} shuffles of the "
        "weights within each layer (`toylab.universality.clusterability`, tier "
        f"**{res[0].tier}**). A modular network has a large negative z-score. Median z over "
        f"{len(res)} members: **{fmt_number(np.median(z), 2)}** ({int(np.sum(z < -2))} with "
        f"z < −2)"
        + (f"; the first {len(shown)} of {len(ctx.members)} members." if len(shown) < len(ctx.members) else "."),  # noqa: E501
        "",
        "| member | n-cut | shuffled mean ± std | z | percentile |",
        "|---|---|---|---|---|",
    ]  # fmt: skip
    for m, r in zip(shown, res, strict=True):
        lines.append(f"| {ctx.label(m)} | {fmt_number(r.ncut, 4)} | {fmt_number(r.baseline_mean, 4)}"
                     f" ± {fmt_number(r.baseline_std, 4)} | {fmt_number(r.z, 2)} ± "
                     f"{fmt_number(r.z_error, 2)} | {fmt_number(r.percentile, 2)} |")  # fmt: skip
    lines.append("")
    ctx.summary["clusterability"] = {
        "members": shown, "k": res[0].k, "num_shuffles": CLUSTER_SHUFFLES, "tier": res[0].tier,
        "z": [float(r.z) for r in res], "z_error": [float(r.z_error) for r in res],
        "ncut": [float(r.ncut) for r in res], "percentile": [float(r.percentile) for r in res],
    }  # fmt: skip
    return lines


def density_section(ctx: UniversalityContext) -> list[str]:
    """Density-vs-boundary labels of the units of a few members."""
    from toylab.universality.density import _check_dist, density_scores

    _check_dist("density_scores", ctx.dist)  # NotApplicable before any work
    start = time.perf_counter()
    results: dict[int, Any] = {}
    budget_note = ""
    for m in ctx.progress.iterate(list(ctx.members[:DENSITY_MEMBERS]), "density scores",
                                  unit="member"):  # fmt: skip
        if results and time.perf_counter() - start > DENSITY_BUDGET_S:
            budget_note = (f" Stopped after {len(results)} members: the scores took longer than "
                           f"{DENSITY_BUDGET_S:g} s.")  # fmt: skip
            break
        results[m] = density_scores(ctx.models[m], ctx.run.dist_of(m))
    kinds = ("density", "boundary", "mixed", "neither", "dead")
    lines = [
        "## Density or decision boundary?",
        "",
        "Per unit, the fraction of its variance explained by density features (log p(x), "
        "class joint densities) and by posterior features (log-odds, posteriors): a unit is "
        "*density* or *boundary* when one family explains more by a margin, *mixed* "
        "otherwise, *neither* when both together explain little "
        "(`toylab.universality.density_scores`; its docstring states the method). "
        f"Members {', '.join(map(str, results))}.{budget_note}",
        "",
        "| layer | " + " | ".join(kinds) + " | tier |",
        "|---|" + "---|" * (len(kinds) + 1),
    ]
    out: dict[str, Any] = {}
    tier = ", ".join(sorted({str(r.tier) for r in results.values()}))
    for layer in ctx.hidden_layers:
        counts = dict.fromkeys(kinds, 0)
        for r in results.values():
            for name, lab in zip(r.neurons, r.labels, strict=True):
                if NeuronId.parse(name).layer == layer:
                    counts[str(lab)] = counts.get(str(lab), 0) + 1
        lines.append(f"| `{layer}` | " + " | ".join(str(counts[k]) for k in kinds) +
                     f" | {tier} |")  # fmt: skip
        out[layer] = counts
    lines.append("")
    ctx.summary["density"] = {
        "members": list(results), "tier": tier, "labels": out,
        "per_member": {str(m): {n: str(lab) for n, lab in zip(r.neurons, r.labels, strict=True)}
                       for m, r in results.items()},
    }  # fmt: skip
    return lines


#: The report's sections, in order (see the module docstring).
SECTIONS: list[Section] = [
    scores_section, families_section, units_section, cka_section, clusterability_section,
    density_section,
]  # fmt: skip


def _select(run: Any, reference: int | None, members: Sequence[int] | None
            ) -> tuple[list[int], int, list[str]]:  # fmt: skip
    """``(members of the reference's distribution group, reference, notes)``."""
    from toylab._validate import is_int
    from toylab.universality.matching import distribution_groups, select_members

    where = "write_universality_report"
    idx, notes = select_members(where, run, members)
    if reference is None:
        reference = idx[0] if idx else 0
    if not is_int(reference) or int(reference) not in idx:
        raise fail(where, "reference", reference, f"one of the compared members {idx[:16]}")
    reference = int(reference)
    groups = distribution_groups(run, idx)
    if len(groups) > 1:
        mine = next(g for g in groups if reference in g)
        notes.append(
            f"the members train on {len(groups)} distributions; units are only comparable "
            f"under one, so this report covers the reference's group ({len(mine)} members: "
            f"{run.dist_of(reference)!r}); the others: "
            + "; ".join(f"members {g[:8]}{' …' if len(g) > 8 else ''} on {run.dist_of(g[0])!r}"
                        for g in groups if g is not mine)
            + ". Rerun with --reference in another group to report it."
        )  # fmt: skip
        idx = mine
    if len(idx) < 2:
        raise fail(where, "members", list(members or idx), "at least two members to compare")
    return idx, reference, notes


def write_universality_report(
    run: Any,
    *,
    reference: int | None = None,
    members: Sequence[int] | None = None,
    layers: Sequence[str] | None = None,
    baselines: Sequence[str] = ("init", "shuffle"),
    baseline_size: int | None = 32,
    sections: Sequence[Section] | None = None,
    progress: Progress = QUIET,
) -> Path:
    """Write ``RUN/universality/index.md`` (with ``summary.json`` and the figures) for the
    loaded ``run``; return the path of ``index.md``.

    ``reference``: the member every other is matched against (default the first compared
    member); ``members``: the members compared (default all but diverged ones; only the
    reference's distribution group is reported, see the module docstring); ``layers``:
    hidden layer keys (default all); ``baselines`` and ``baseline_size``: as in
    :func:`~toylab.universality.match_ensemble`; ``sections`` default to :data:`SECTIONS`.
    """
    from toylab.runs.io import atomic_write_json, atomic_write_text

    t0 = time.perf_counter()
    idx, reference, notes = _select(run, reference, members)
    out = universality_dir(run)
    ctx = UniversalityContext(
        run, out, tuple(idx), reference, None if layers is None else tuple(layers),
        tuple(baselines), baseline_size, progress, {},
    )  # fmt: skip
    cfg = run.config
    body: list[str] = []
    skipped = []
    sections = list(SECTIONS if sections is None else sections)
    for section in sections:
        try:
            body += section(ctx)
        except NotApplicable as err:
            title = (section.__doc__ or section.__name__).strip().splitlines()[0]
            skipped.append(str(err))
            body += [f"> {title} — not applicable: {err}", ""]
    if sections and len(skipped) == len(sections):
        raise NotApplicable(
            "toylab universality: no section applies to this run: " + "; ".join(skipped)
        )
    head = [
        f"# toylab universality: {cfg.name}",
        "",
        f"- distribution: `{run.dist_of(reference)!r}`",
        f"- model: {cfg.model.kind}, hidden {list(cfg.model.hidden)}, activation "
        f"{cfg.model.activation}",
        f"- members compared: {len(idx)} ({', '.join(map(str, idx[:12]))}"
        + (" …" if len(idx) > 12 else "") + f"); reference: {ctx.label(reference)}",
        *(f"- note: {n}" for n in notes),
    ]  # fmt: skip
    if "match" in ctx.__dict__:
        em = ctx.match
        head += [
            f"- matching: {em.method}",
            f"- baselines: {', '.join(baselines) or 'none'} ("
            + ("one chance network per member" if baseline_size is None else
               f"{min(baseline_size, len(idx) - 1)} chance networks each") + ")",
            f"- tier of the correlations: **{em.tier}** (largest moment error {em.error:.1e})",
        ]  # fmt: skip
    head += [f"- written in {time.perf_counter() - t0:.0f} s", ""]
    if "match" in ctx.__dict__:
        em = ctx.match
        ctx.summary.update(
            threshold=em.threshold, split_threshold=em.split_threshold, tier=em.tier,
            error=em.error, method=em.method, num_analyses=em.num_analyses,
            partners={str(m): {str(a): list(p) for a in _addresses(em, m)
                               if (p := em.partner(m, a)) is not None}
                      for m in em.members},
        )  # fmt: skip
    ctx.summary.update(name=str(cfg.name), members=idx, reference=reference,
                       layers=list(ctx.hidden_layers), notes=notes)  # fmt: skip
    atomic_write_json(out / "summary.json", ctx.summary)
    atomic_write_text(out / "index.md", "\n".join(head + body) + "\n")
    return out / "index.md"


def _addresses(em: Any, member: int) -> list[str]:
    """Every hidden unit address of ``member`` in the matched layers."""
    pair = em.matches.get((member, em.reference))
    lms = (pair or next(iter(em.matches.values()))).layers
    return [f"{lm.layer}:{u}" for lm in lms if lm.layer in em.layers
            for u in range(len(lm.corr) if pair is not None else lm.correlation.shape[1])]  # fmt: skip


def load_links(run_dir: str | Path) -> dict[tuple[int, str], dict[str, Any]] | None:
    """What ``toylab atlas`` shows on a neuron's page when ``RUN/universality/summary.json``
    exists: ``(member, address) -> {"family": id or None, "fraction": ..., "reference":
    member, "partner": (address, correlation) or None, "others": [(member, address,
    correlation with the reference's unit or None), ...]}``; ``None`` without a report."""
    path = Path(run_dir) / "universality" / "summary.json"
    if not (path.parent / MARKER).is_file() or not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
        ref = int(data["reference"])
        out: dict[tuple[int, str], dict[str, Any]] = {}
        for m, units in (data.get("partners") or {}).items():
            for addr, (partner, corr) in units.items():
                out[int(m), addr] = {"family": None, "fraction": None, "reference": ref,
                                     "partner": (partner, corr), "others": []}  # fmt: skip
        for fam in data.get("families") or []:
            units = [(int(m), str(a), c) for m, a, c in fam["units"]]
            for m, a, _ in units:
                entry = out.setdefault((m, a), {"reference": ref, "partner": None})
                entry.update(family=fam["id"], fraction=fam["fraction"],
                             mean_correlation=fam["mean_correlation"], tier=fam["tier"],
                             others=[u for u in units if u[0] != m])  # fmt: skip
        return out
    except (KeyError, TypeError, ValueError) as err:
        raise ToylabError(
            f"{str(path)!r} is not a universality summary toylab can read ({err}); rerun "
            "'toylab universality' on the run."
        ) from err
