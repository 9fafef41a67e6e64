"""Every method on every hidden neuron, each scored against the exact answer.

:func:`compare` runs feature visualization, dataset examples, a random sweep,
attribution, zero ablation, joint tuning and selectivity on every hidden neuron of every
member, and returns one :class:`CompareRow` per (member, neuron, method), built from the
method's result (:class:`toylab.methods.MethodResult`) alone: the same columns mean the
same thing for every method (``score`` says what ``sampled`` and ``exact`` are,
``error_measure`` how ``error`` is measured, ``units`` their units, ``error_tier`` and
``exact_error`` how the exact side was obtained), and ``misleads`` is each result's own
verdict (the rules are in each result class's docstring).

It applies to piecewise-linear networks on 2-D distributions: Gaussian mixtures (closed
forms, tier ``exact``), noisy curves (closed forms over the density's Gaussian atoms)
and rings (adaptive quadrature), both tier ``estimated`` (feature visualization, sweeps,
joint tuning and attribution stay ``exact`` there, since their exact answers are
geometry only). It raises :class:`~toylab.NotApplicable`
otherwise.

**Superposition models** (:class:`toylab.models.SuperpositionLinear` /
:class:`~toylab.models.SuperpositionReLU` under their
:class:`~toylab.distributions.SparseFeatures`): the per-neuron methods above are scored
against an exact analysis, which :mod:`toylab.exact` does not have for sparse features
(``n``-dimensional inputs with atoms at 0), so none of them applies
(``CompareResult.not_applicable`` says why, method by method); compare runs dictionary
learning instead (:mod:`toylab.methods.dictionary`: sparse autoencoders on the hidden
layer, all seeds x penalties in one program, scored against the true features), one row
per dictionary with neuron ``"hidden_0"``.

**Speed.** One :class:`~toylab.methods.Context` per call: one exact analysis per member,
reused by every method and neuron, the domain partition with it, one path partition per
member for the sweep; every sampled step is one compiled program for all neurons (the
neuron is a traced index), so the number of compilations does not grow with the number
of neurons. The edited networks of zero ablation need their own accuracies (a dead unit
needs none); they dominate the time under quadrature densities.

Library functions return values: :func:`compare_run` writes nothing; the command line stores
the result in the run (:func:`toylab.report.write_comparison`).
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import math
import time
from collections.abc import Callable, Iterator
from typing import Any

import jax
import numpy as np

from toylab._errors import NotApplicable
from toylab.methods._core import (
    Context,
    MethodResult,
    check_key,
    context_for,
    domain_box,
    f32,
    flat_gradients,
    flat_values,
    flat_values_each,
    latent_groups,
    patched_outputs,
    require_plane,
    to_f64,
)
from toylab.methods.ablation import ablated_accuracy, edit_result
from toylab.methods.attribution import riemann_points, score_attribution
from toylab.methods.examples import score_examples
from toylab.methods.featureviz import run_ascent, score_ascent
from toylab.methods.selectivity import score_selectivity
from toylab.methods.sweeps import (
    path_partition_of,
    path_points,
    random_line,
    rotated_points,
    sample_parameters,
    score_joint,
    score_sweep,
)

__all__ = [
    "METHODS",
    "CompareConfig",
    "CompareResult",
    "CompareRow",
    "compare",
    "compare_run",
    "report_lines",
]

METHODS = (
    "feature_visualization",
    "dataset_examples",
    "sweep",
    "attribution",
    "ablation",
    "selectivity",
    "joint_tuning",
)

#: the method compare runs on superposition models (rows with neuron "hidden_0")
DICTIONARY = "dictionary_learning"


@dataclasses.dataclass(frozen=True)
class CompareConfig:
    """Budgets of every method in :func:`compare` (``quick()`` halves most of them).

    ``rtol`` is the quadrature tolerance of the exact analyses under non-Gaussian
    densities (rings, noisy curves; Gaussian mixtures use closed forms): the sampled
    answers it is compared with are accurate to ~1e-2, so 1e-6 leaves the exact side
    four orders of magnitude finer while halving the quadrature.

    ``dictionary_*``: the sparse autoencoders trained on superposition models
    (:func:`toylab.methods.dictionary_learning`: L1 penalties ``dictionary_penalties``,
    ``dictionary_seeds`` seeds each, ``dictionary_steps`` Adam steps of batches of 256 at
    learning rate 3e-3, dead latents resampled every quarter of the run, ``n`` latents,
    losses sampled on ``dictionary_samples`` inputs).
    """

    num_starts: int = 32
    num_steps: int = 100
    num_samples: int = 1024
    num_examples: int = 8
    num_coverage: int = 8192
    num_points: int = 64
    ig_steps: int = 32
    ablation_samples: int = 2048
    num_rotated: int = 2
    num_angles: int = 32
    rtol: float = 1e-6
    dictionary_steps: int = 2000
    dictionary_seeds: int = 2
    dictionary_penalties: tuple[float, ...] = (1e-3, 1e-2, 3e-2, 1e-1)
    dictionary_samples: int = 8192

    @classmethod
    def quick(cls) -> CompareConfig:
        return cls(num_starts=16, num_steps=60, num_samples=512, num_coverage=4096,
                   num_points=32, ig_steps=16, ablation_samples=1024, num_rotated=1,
                   num_angles=16, dictionary_steps=1000,
                   dictionary_samples=4096)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class CompareRow:
    """One (member, neuron, method) row, one meaning per column.

    ``sampled``, ``exact``: the method's headline answer and its exact counterpart (what
    they are: ``score``; in ``units``); ``error``: how wrong the method is
    (``error_measure``); ``error_tier``, ``exact_error``: how the exact side was obtained
    and how far it can be off; ``misleads``: the result's verdict; ``num_forward``,
    ``num_backward``: the passes the method spent; ``detail``: method-specific facts.
    """

    member: int
    neuron: str
    method: str
    score: str
    units: str
    sampled: float
    exact: float
    error: float
    error_measure: str
    error_tier: str
    exact_error: float
    misleads: bool
    num_forward: int
    num_backward: int
    detail: str

    @classmethod
    def from_result(cls, member: int, result: MethodResult) -> CompareRow:
        return cls(
            member=int(member), neuron=result.neuron, method=result.method, score=result.score,
            units=result.units, sampled=float(result.sampled), exact=float(result.exact),
            error=float(result.error), error_measure=result.error_measure,
            error_tier=str(result.error_tier), exact_error=float(result.exact_error),
            misleads=bool(result.misleads), num_forward=int(result.num_forward),
            num_backward=int(result.num_backward), detail=result.detail,
        )  # fmt: skip


FIELDS = tuple(f.name for f in dataclasses.fields(CompareRow))


@dataclasses.dataclass(frozen=True, eq=False)
class CompareResult:
    """Rows and a summary per method.

    ``summary[method] = {"rows", "misleads", "rate", "neurons"}`` where ``neurons``
    lists ``"m{member}/{neuron}"`` of the misleading rows; ``summary["unreachable"]``
    counts neurons whose top 5% the data almost never reaches (expected < 1 sample among
    ``num_samples``, from the exact CDF). ``seconds``: wall time; ``timings``: seconds
    per phase; ``num_analyses``: exact analyses run (members and edited networks);
    ``error_tiers``: the tiers of the exact answers in the rows. ``not_applicable``:
    method -> why it did not run on this model; ``dictionary``: the per-dictionary table
    of dictionary learning (:meth:`toylab.methods.DictionaryResult.table`, one row per
    model member and dictionary; empty unless the model is a superposition model).
    """

    rows: tuple[CompareRow, ...]
    summary: dict[str, Any]
    config: CompareConfig
    seconds: float
    timings: dict[str, float]
    num_analyses: int
    tier: str = "sampled"
    not_applicable: dict[str, str] = dataclasses.field(default_factory=dict)
    dictionary: tuple[dict[str, Any], ...] = ()

    @property
    def error_tiers(self) -> list[str]:
        return sorted({r.error_tier for r in self.rows})

    def to_csv(self) -> str:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(FIELDS))
        w.writeheader()
        for r in self.rows:
            w.writerow(dataclasses.asdict(r))
        return buf.getvalue()

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CompareResult:
        """The inverse of :meth:`to_json` (``None`` in a float field reads back as NaN)."""
        floats = {f.name for f in dataclasses.fields(CompareRow) if f.type in ("float", float)}

        def row(r: dict[str, Any]) -> CompareRow:
            fields: dict[str, Any] = {
                k: (math.nan if v is None and k in floats else v) for k, v in r.items()
            }
            return CompareRow(**fields)

        rows = tuple(row(r) for r in data["rows"])
        config: dict[str, Any] = {
            k: tuple(v) if isinstance(v, list) else v for k, v in data["config"].items()
        }
        return cls(
            rows=rows, summary=data["summary"], config=CompareConfig(**config),
            seconds=float(data["seconds"]), timings=dict(data["timings"]),
            num_analyses=int(data["num_analyses"]),
            not_applicable=dict(data.get("not_applicable", {})),
            dictionary=tuple(data.get("dictionary", ())),
        )  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        def clean(v: Any) -> Any:
            if isinstance(v, float) and not math.isfinite(v):
                return None
            return v

        return {
            "config": dataclasses.asdict(self.config),
            "seconds": self.seconds,
            "timings": self.timings,
            "num_analyses": self.num_analyses,
            "summary": self.summary,
            "not_applicable": self.not_applicable,
            "dictionary": [{k: clean(v) for k, v in r.items()} for r in self.dictionary],
            "rows": [{k: clean(v) for k, v in dataclasses.asdict(r).items()} for r in self.rows],
        }


class _Clock:
    """Seconds spent per phase (and the phase names, for a progress display)."""

    def __init__(self, progress: Callable[[str], None] | None) -> None:
        self.times: dict[str, float] = {}
        self.progress = progress

    @contextlib.contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        if self.progress is not None and phase not in self.times:
            self.progress(phase)
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.times[phase] = self.times.get(phase, 0.0) + time.perf_counter() - t0


def _compare(
    ctx: Context, key: jax.Array, cfg: CompareConfig, clock: _Clock
) -> tuple[list[CompareRow], int]:
    members, dist = ctx.members, ctx.dist
    nm = members.num_members
    neurons = members.hidden_neurons()
    flats = [members.reference.flat_index(n) for n in neurons]
    k_fv, k_de, k_sw = jax.random.split(key, 3)
    with clock("exact analysis"):
        analyses = [ctx.analysis(m, "compare") for m in range(nm)]

    # feature visualization: one program for all members x neurons x starts
    with clock("feature_visualization (sampled)"):
        st, en, va = run_ascent(
            members, dist, flats, key=k_fv, num_starts=cfg.num_starts, num_steps=cfg.num_steps,
            learning_rate=None, optimizer="adam", l2=0.0, center=None, budget=None,
        )  # fmt: skip

    # one draw, split three ways: examples, coverage, ablation and selectivity
    with clock("samples"):
        n1, n2 = cfg.num_samples, cfg.num_samples + cfg.num_coverage
        big = dist.sample(k_de, n2 + cfg.ablation_samples)
        xs = to_f64(big.x)
        x, cover, x_ab = xs[:n1], xs[n1:n2], xs[n2:]
        y_ab = np.asarray(big.y)[n2:]
        groups = latent_groups(big, analyses[0].groups)[n2:]
        vals_all = to_f64(flat_values(members.stacked, f32(np.concatenate([x, x_ab]))))
        vals, vals_ab = vals_all[:, :n1], vals_all[:, n1:]

    # sweep: one random segment, one exact path partition per member for every neuron
    line = random_line(dist, k_sw)
    t = sample_parameters(line, cfg.num_points)
    with clock("sweep (sampled)"):
        pts = f32(path_points(line, t))
        sw_vals = to_f64(flat_values(members.stacked, pts))
    with clock("sweep (exact)"):
        sw_parts = [path_partition_of(n, line, where="compare") for n in members.networks]

    # joint tuning: every (member, neuron)'s top examples rotated about the centre
    low, high = domain_box(dist)
    centre = 0.5 * (low + high)
    angles = 2 * np.pi * np.arange(cfg.num_angles) / cfg.num_angles
    k_rot = min(cfg.num_rotated, len(x))
    tops = np.stack([x[np.argsort(-vals[:, :, f], axis=1, kind="stable")[:, :k_rot]]
                     for f in flats], axis=1)  # (M, J, k, 2)  # fmt: skip
    with clock("joint_tuning (sampled)"):
        rot = f32(rotated_points(centre, tops, angles))
        jt_vals = to_f64(flat_values_each(members.stacked, rot))

    # attribution of the first data sample against the origin; ablation masks
    ig_x, ig_x0 = x[0], np.zeros_like(x[0])
    ig_pts = f32(riemann_points(ig_x, ig_x0, cfg.ig_steps))
    x_ab_j = f32(x_ab)
    zeros = np.zeros((nm, 1, members.num_flat), np.float32)

    rows: list[CompareRow] = []
    unreachable = 0
    for j, (neuron, flat) in enumerate(zip(neurons, flats, strict=True)):
        nid = members.resolve("compare", neuron)
        if clock.progress is not None:
            clock.progress(f"neuron {j + 1}/{len(neurons)} ({neuron}) of every member")
        with clock("attribution (sampled)"):
            grads = to_f64(flat_gradients(members.stacked, np.int32(flat), ig_pts))
        with clock("ablation (sampled)"):
            mask = np.zeros(members.num_flat, bool)
            mask[flat] = True
            clean_j, patched_j = patched_outputs(members.stacked, x_ab_j, mask, zeros)
            clean, patched = to_f64(clean_j), to_f64(patched_j)
        for m in range(nm):
            res: list[MethodResult] = []
            with clock("feature_visualization (exact)"):
                res.append(score_ascent(ctx, m, neuron, st[m, j], en[m, j], va[m, j], rtol=0.01,
                                        radius=None, num_steps=cfg.num_steps))  # fmt: skip
            with clock("dataset_examples (exact)"):
                de = score_examples(ctx, m, neuron, x, vals[m, :, flat], cover,
                                    num_examples=cfg.num_examples)  # fmt: skip
            unreachable += de.unreachable
            res.append(de)
            with clock("sweep (exact)"):
                res.append(score_sweep(members, neuron, line, t, sw_vals[m, :, flat], sw_parts[m]))
            with clock("attribution (exact)"):
                res.append(score_attribution(members, m, neuron, ig_x, ig_x0, grads[m],
                                             cfg.ig_steps))  # fmt: skip
            with clock("ablation (exact)"):
                acc = ablated_accuracy(ctx, m, [nid], [0.0], "compare")
            res.append(edit_result(neuron, f"zero {neuron}", analyses[m], acc, clean[m],
                                   patched[m], y_ab, 2 * len(y_ab)))  # fmt: skip
            with clock("joint_tuning (exact)"):
                res.append(score_joint(ctx, m, neuron, centre, tops[m, j], angles,
                                       jt_vals[m, j, :, :, flat],
                                       num_forward=k_rot * cfg.num_angles))  # fmt: skip
            with clock("selectivity (exact)"):
                res.append(score_selectivity(ctx, m, neuron, vals_ab[m, :, flat], groups,
                                             threshold=0.25))  # fmt: skip
            rows += [CompareRow.from_result(m, r) for r in res]
    return rows, unreachable


#: why the per-neuron methods do not run on a superposition model
_NO_EXACT_SPARSE = (
    "it is scored against an exact analysis of the network under the distribution, and "
    "toylab.exact has none for sparse features (n-dimensional inputs with atoms at 0)"
)


def _superposition(members: Any, dist: Any) -> bool:
    """Whether ``members`` are superposition models under a sparse-feature distribution."""
    from toylab._errors import ToylabError
    from toylab.distributions import SparseFeatures
    from toylab.superposition import superposition_weights

    if not isinstance(dist, SparseFeatures):
        return False
    try:
        superposition_weights(list(members.networks), "compare")
    except ToylabError:
        return False
    return True


def _compare_superposition(
    ctx: Context, key: jax.Array, cfg: CompareConfig, clock: _Clock
) -> tuple[list[CompareRow], tuple[dict[str, Any], ...], list[str]]:
    """Dictionary learning on a superposition model: rows, the per-dictionary table and
    the misleading dictionaries (``"m{member}/dictionary {d}"``)."""
    from toylab.methods.dictionary import dictionary_learning
    from toylab.train import TrainConfig

    steps = cfg.dictionary_steps
    train = TrainConfig(optimizer="adam", learning_rate=3e-3, num_steps=steps, batch_size=256)
    with clock(f"{DICTIONARY} (sampled)"):
        res = dictionary_learning(
            ctx.members, ctx.dist, key=key, penalties=cfg.dictionary_penalties,
            num_seeds=cfg.dictionary_seeds, train=train,
            resample_every=steps // 4 if steps % 4 == 0 else 0,
            num_samples=cfg.dictionary_samples,
        )  # fmt: skip
    results = res if isinstance(res, tuple) else (res,)
    rows = [CompareRow.from_result(r.model_member, m) for r in results for m in r.members()]
    bad = [f"m{r.model_member}/dictionary {m.dictionary}" for r in results for m in r.members()
           if m.misleads]  # fmt: skip
    return rows, tuple(row for r in results for row in r.table()), bad


def _summary(
    rows: list[CompareRow], unreachable: int, methods: tuple[str, ...] = METHODS
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for method in methods:
        rs = [r for r in rows if r.method == method]
        bad = [f"m{r.member}/{r.neuron}" for r in rs if r.misleads]
        out[method] = {"rows": len(rs), "misleads": len(bad),
                       "rate": len(bad) / len(rs) if rs else 0.0, "neurons": bad}  # fmt: skip
    out["unreachable"] = unreachable
    return out


def compare(
    model: Any,
    dist: Any,
    *,
    key: jax.Array,
    budgets: CompareConfig | None = None,
    context: Context | None = None,
    progress: Callable[[str], None] | None = None,
) -> CompareResult:
    """Run every method on every hidden neuron of ``model`` (or of each member of a list).

    ``dist``: a 2-D distribution with an exact analysis (Gaussian mixtures, rings, noisy
    curves), or, for a superposition model, its sparse-feature distribution (then
    dictionary learning runs, and ``not_applicable`` says why the others do not).
    ``context``: a :class:`~toylab.methods.Context` to reuse (one is built
    otherwise, with ``budgets.rtol``); ``progress``: called with the name of each phase
    as it starts and with each neuron as its turn comes (for a progress display). Raises :class:`~toylab.NotApplicable` for
    smooth networks and other distributions.
    """
    where = "compare"
    t0 = time.perf_counter()
    check_key(where, key)
    cfg = CompareConfig() if budgets is None else budgets
    if not isinstance(cfg, CompareConfig):
        from toylab._errors import fail

        raise fail(where, "budgets", type(cfg).__name__, "a CompareConfig or None")
    if context is None:
        ctx = Context(model, dist, rtol=cfg.rtol)
    else:
        ctx = context_for(where, model, dist, context)
    if _superposition(ctx.members, dist):
        clock = _Clock(progress)
        rows, table, bad = _compare_superposition(ctx, key, cfg, clock)
        summary = _summary(rows, 0, (DICTIONARY,))
        summary[DICTIONARY]["neurons"] = bad
        return CompareResult(
            rows=tuple(rows), summary=summary, config=cfg,
            seconds=time.perf_counter() - t0, timings=dict(clock.times), num_analyses=0,
            not_applicable={m: _NO_EXACT_SPARSE for m in METHODS}, dictionary=table,
        )  # fmt: skip
    if not ctx.members.piecewise_linear:
        raise NotApplicable(
            f"{where}: the exact answers need a piecewise-linear network (relu, leaky_relu, "
            f"abs, hardtanh, identity), got activations {list(ctx.members.reference.activations)}. "
            "Use a relu-family model, or toylab.exact.linear_bounds / maximize for certified "
            "bounds on a smooth one."
        )
    require_plane(where, dist, "it runs every method, including those searching the plane")
    clock = _Clock(progress)
    before = ctx.num_analyses
    rows, unreachable = _compare(ctx, key, cfg, clock)
    return CompareResult(
        rows=tuple(rows), summary=_summary(rows, unreachable), config=cfg,
        seconds=time.perf_counter() - t0, timings=dict(clock.times),
        num_analyses=ctx.num_analyses - before,
    )  # fmt: skip


def compare_run(
    run: Any,
    *,
    key: jax.Array,
    budgets: CompareConfig | None = None,
    progress: Callable[[str], None] | None = None,
) -> CompareResult:
    """:func:`compare` on every member of a run, each under its own distribution
    (``run.dist_of(m)``: a sweep over distribution parameters gives members different
    ones). Members that share a distribution are compared together; the results are
    merged with every row, table entry and name keyed by the run's member index.

    Writes nothing: the caller stores ``result.to_csv()`` and ``result.to_json()`` (the
    command line writes them to ``RUN/compare/compare.csv`` and ``compare.json``).
    """
    groups: dict[Any, list[int]] = {}
    for m in range(run.num_members):
        groups.setdefault(run.dist_of(m), []).append(m)
    if len(groups) == 1:
        return compare(run.models(), run.dist_of(0), key=key, budgets=budgets,
                       progress=progress)  # fmt: skip
    t0 = time.perf_counter()
    parts = []
    for g, (dist, members) in enumerate(groups.items()):
        res = compare([run.model(m) for m in members], dist, key=jax.random.fold_in(key, g),
                      budgets=budgets, progress=progress)  # fmt: skip
        parts.append((members, res))
    return _merge(parts, time.perf_counter() - t0)


def _merge(parts: list[tuple[list[int], CompareResult]], seconds: float) -> CompareResult:
    """One result from results on groups of members (``members[i]``: the run's index of the
    group's member ``i``)."""
    import re

    rows: list[CompareRow] = []
    table: list[dict[str, Any]] = []
    timings: dict[str, float] = {}
    not_applicable: dict[str, str] = {}
    summary: dict[str, Any] = {"unreachable": 0}
    for members, res in parts:

        def name(s: str, members: list[int] = members) -> str:
            return re.sub(r"^m(\d+)/", lambda mt: f"m{members[int(mt.group(1))]}/", s)

        rows += [dataclasses.replace(r, member=members[r.member]) for r in res.rows]
        table += [{**t, "model_member": members[int(t["model_member"])]} for t in res.dictionary]
        for k, v in res.timings.items():
            timings[k] = timings.get(k, 0.0) + v
        not_applicable.update(res.not_applicable)
        for method, v in res.summary.items():
            if method == "unreachable":
                summary["unreachable"] += v
                continue
            acc = summary.setdefault(method, {"rows": 0, "misleads": 0, "neurons": []})
            acc["rows"] += v["rows"]
            acc["misleads"] += v["misleads"]
            acc["neurons"] += [name(n) for n in v["neurons"]]
    for method, v in summary.items():
        if method != "unreachable":
            v["rate"] = v["misleads"] / v["rows"] if v["rows"] else 0.0
    first = parts[0][1]
    return CompareResult(
        rows=tuple(rows), summary=summary, config=first.config, seconds=seconds,
        timings=timings, num_analyses=sum(r.num_analyses for _, r in parts),
        not_applicable=not_applicable, dictionary=tuple(table),
    )  # fmt: skip


def _dictionary_lines(table: tuple[dict[str, Any], ...]) -> list[str]:
    def num(v: Any, fmt: str) -> str:
        return (
            "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else format(v, fmt)
        )

    lines = [
        "",
        "### Dictionary learning against the true features",
        "",
        "Sparse autoencoders on `hidden_0`; MMCS, recovered (max cosine >= 0.9) and "
        "duplicates are exact functions of each dictionary and W; dead latents and the "
        "fraction of the model's loss recovered with `hidden_0` replaced by the "
        "reconstruction are sampled (95% interval).",
        "",
        "| member | dictionary | penalty | MMCS | recovered | duplicates | dead | loss recovered |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in table:
        ci = f"[{num(r['loss_recovered_low'], '.3f')}, {num(r['loss_recovered_high'], '.3f')}]"
        lines.append(
            f"| {r['model_member']} | {r['dictionary']} (seed {r['seed']}) | "
            f"{r['sparsity']} {r['penalty']:g} | {num(r['mmcs'], '.3f')} | "
            f"{num(r['recovered_fraction'], '.0%')} | {r['duplicates']} | {r['dead']} | "
            f"{num(r['loss_recovered'], '.3f')} {ci} |"
        )
    return lines


def report_lines(result: CompareResult) -> list[str]:
    """A markdown section for the run report."""
    lines = [
        "## Sampled methods vs the exact answer",
        "",
        f"Every method on every hidden neuron ({result.seconds:.1f} s; exact answers of tier "
        f"{', '.join(result.error_tiers) or '-'}); `toylab compare` writes every row to "
        "`compare/compare.csv`.",
        "",
        "| method | rows | misleads | rate | where (first 6) |",
        "|---|---|---|---|---|",
    ]
    for method in (*METHODS, DICTIONARY):
        if method in result.not_applicable or method not in result.summary:
            continue
        s = result.summary[method]
        where = ", ".join(s["neurons"][:6]) + (" ..." if len(s["neurons"]) > 6 else "")
        lines.append(f"| {method} | {s['rows']} | {s['misleads']} | {s['rate']:.0%} | {where} |")
    reasons: dict[str, list[str]] = {}
    for m, why in result.not_applicable.items():
        reasons.setdefault(why, []).append(m)
    for why, names in reasons.items():
        lines += ["", f"Not applicable to this model: {', '.join(names)} ({why})."]
    if result.dictionary:
        lines += _dictionary_lines(result.dictionary)
    if any(m not in result.not_applicable for m in METHODS):
        lines += [
            "",
            f"Neurons whose top 5% the data almost never reaches (exact CDF): "
            f"{result.summary['unreachable']}.",
        ]
    return [*lines, ""]
