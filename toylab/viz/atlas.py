"""The neuron atlas: a static HTML site, one page per neuron, written into ``RUN_DIR/atlas/``.

Layout (every link relative; no server, no network, no external CSS or JS)::

    atlas/index.html                      layers x neurons thumbnails, per member, seed switch
    atlas/run.html                        data, training curves, exact vs Bayes accuracy, circuits
    atlas/img/*.png                       run-page figures
    atlas/member{m}/{layer}-{unit}.html   one page per hidden neuron (e.g. member0/hidden_0-3.html)
    atlas/member{m}/img/*.png             its map, thumbnail and training-dynamics strip

The index shows every member's grid; a tiny inline script turns the seed links into a
switch (without JavaScript they are anchors and every member stays visible). Neuron
pages show the canonical address (``hidden_0:3``) verbatim, the neuron's map (values on
a grid, with the exact region boundaries, zero set and argmax over it), exact statistics
from :func:`toylab.exact.analyze` (one analysis per member), its incoming and outgoing
weights with links to the neighbouring neurons, and, when given, results of other methods
(see :func:`write_atlas`). Every string is HTML-escaped (jinja2 autoescape). Every file
is written atomically (:mod:`toylab.runs.io`).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from toylab._errors import ToylabError
from toylab._progress import QUIET, Progress
from toylab.exact import finite_accuracy
from toylab.neurons import NeuronId, neuron_ids
from toylab.runs.io import atomic_write_bytes, atomic_write_json, atomic_write_text
from toylab.viz._output import MAX_DATA_PANELS, fmt_number, png_bytes
from toylab.viz.maps import CMAP, symmetric_norm

__all__ = ["neuron_filename", "write_atlas"]

Source = Mapping[Any, Any] | Callable[[int, str], Any] | None


def neuron_filename(neuron: str | NeuronId) -> str:
    """The page name of a neuron: its canonical address with ``:`` as ``-``
    (``"hidden_0:3"`` -> ``"hidden_0-3.html"``; ``"hidden_0.pre:3"`` -> ``"hidden_0.pre-3.html"``;
    a conv channel ``"conv_1:5"`` -> ``"conv_1-5.html"``, ``"conv_1:5@7,7"`` -> ``"conv_1-5@7,7.html"``)."""
    nid = NeuronId.parse(neuron)
    if nid.channel is not None:
        where = "" if nid.pos is None else f"@{nid.pos[0]},{nid.pos[1]}"
        return f"{nid.key}-{nid.channel}{where}.html"
    return f"{nid.key}-{nid.unit}.html"


def _lookup(src: Source, member: int, address: str) -> Any:
    """An optional per-neuron input: a callable ``(member, address) -> value or None`` or a
    mapping keyed by ``(member, address)`` or by ``address`` (then for every member)."""
    if src is None:
        return None
    if callable(src) and not isinstance(src, Mapping):
        return src(member, address)
    if (member, address) in src:
        return src[(member, address)]
    return src.get(address)


def _field(obj: Any, *names: str) -> Any:
    """The first of ``names`` present on ``obj`` (attribute or mapping key), else ``None``."""
    for n in names:
        if isinstance(obj, Mapping):
            if n in obj:
                return obj[n]
        elif hasattr(obj, n):
            return getattr(obj, n)
    return None


def _fmt(v: Any, digits: int = 4) -> str:
    """A number for a page: ``digits`` decimals (significant digits from 1e-12 to 1e-3),
    never ``-0.0000``; integers as integers; arrays as ``(a, b, ...)``."""
    if v is None:
        return ""
    if isinstance(v, str):
        return v
    arr = np.asarray(v)
    if arr.dtype.kind in "iu" and arr.ndim == 0:
        return str(int(arr))
    if arr.dtype.kind in "fiu":
        if arr.ndim == 0:
            f = float(arr)
            # small values keep significant digits; below 1e-12 (float64 rounding of an
            # exact zero, e.g. a ReLU's minimum) fixed decimals show 0
            if 1e-12 <= abs(f) < 1e-3 and np.isfinite(f):
                return f"{f:.{digits}g}"
            return fmt_number(f, digits)
        return "(" + ", ".join(_fmt(x, 3) for x in arr.ravel()[:8]) + ")"
    return str(v)


def _signed(v: float, digits: int = 4) -> str:
    """``+0.1234`` / ``-0.1234``; a value that rounds to zero is ``0.0000``, unsigned."""
    s = fmt_number(v, digits)
    return s if s.startswith("-") or float(s) == 0 else "+" + s


def _image_png(rgba: np.ndarray) -> bytes:
    from matplotlib.image import imsave

    buf = io.BytesIO()
    imsave(buf, rgba, format="png", origin="lower")
    return buf.getvalue()


def _colors(values: np.ndarray) -> np.ndarray:
    import matplotlib

    return matplotlib.colormaps[CMAP](symmetric_norm(values)(values))


def _weight_color(v: float, vmax: float) -> str:
    import matplotlib
    from matplotlib.colors import to_hex

    t = 0.5 + 0.4 * float(np.clip(v / vmax if vmax > 0 else 0.0, -1, 1))
    return to_hex(matplotlib.colormaps[CMAP](t))


def _analyze(model: Any, dist: Any) -> Any:
    from toylab.exact import analyze

    try:
        return analyze(model, dist)  # the plane's geometry, or a finite domain's enumeration
    except ToylabError:
        return None


def _points(value: Any) -> np.ndarray | None:
    if value is None:
        return None
    arr = np.asarray(value, np.float64)
    if arr.size == 0 or arr.shape[-1] != 2:
        return None
    return arr.reshape(-1, 2)


def write_atlas(
    run: Any,
    out_dir: str | Path | None = None,
    *,
    members: Sequence[int] | None = None,
    analyses: Sequence[Any] | None = None,
    num: int = 120,
    num_samples: int = 300,
    dynamics: bool = True,
    circuits: bool = True,
    feature_viz: Source = None,
    dataset_examples: Source = None,
    tuning_curves: Source = None,
    matches: Source = None,
    claims: Source = None,
    methods: Any = None,
    extra_sections: Callable[[int, str], Any] | None = None,
    dpi: int = 80,
    conv_budget: Any = None,
    progress: Progress = QUIET,
) -> Path:
    """Write the atlas of a loaded run (:func:`toylab.runs.load_run`) and return the path of
    its ``index.html`` (``out_dir`` defaults to ``RUN_DIR/atlas``).

    Exact analysis (:func:`toylab.exact.analyze`, once per member, or pass ``analyses``)
    gives each map its region boundaries, zero set and argmax and each page its exact
    statistics. Everything else is optional and duck-typed, so the atlas grows with the
    methods. Per-neuron inputs are a callable ``(member, address) -> value or None`` or a
    mapping keyed by ``(member, "hidden_0:3")`` or by ``"hidden_0:3"`` (every member):

    * ``feature_viz``: has ``start`` and ``end`` (``(n, 2)`` points; drawn on the map) and
      optionally ``values`` / ``value`` / ``scores`` / ``score`` (numbers, per point);
    * ``dataset_examples``: has ``x`` (``(k, 2)`` top inputs, drawn as triangles) and
      ``values`` / ``scores``;
    * ``tuning_curves``: a :class:`~toylab.viz.TuningCurveDisplay`, or anything with ``t``
      and ``exact`` and/or ``sampled`` (optionally ``sampled_err``, ``title``), or a list;
    * ``matches``: the matching handwritten neuron: ``name`` and optionally ``score`` /
      ``similarity``, ``circuit``, ``note``;
    * ``claims``: a list of claims with ``statement``, ``verdict``, optionally ``tier`` and
      ``counterexample`` (a point, drawn on the map, or a polygon);
    * ``extra_sections(member, address)``: a list of ``(title, content)`` with content a
      string (escaped), ``markupsafe.Markup`` (trusted HTML) or a matplotlib figure.

    ``methods`` (run page) is a list of mappings, one row each (e.g. method, score, tier).
    ``progress`` shows the exact analyses and the pages as they are written.

    Runs of conv nets on an image family get a page per channel (certified tuning,
    filters, examples, feature visualization; :mod:`toylab.viz._conv_atlas`), with the
    work per channel set by ``conv_budget`` (a ``ConvAtlasBudget``; default its defaults).

    ``out_dir`` must be missing, empty or an atlas written before (it holds ``atlas.json``):
    the atlas never writes into a directory of other files.
    """
    import jax
    import matplotlib
    from matplotlib.figure import Figure

    from toylab.viz.figures import CircuitDisplay, TrainingCurvesDisplay
    from toylab.viz.maps import DataDisplay, NeuronMapDisplay, grid_values

    jinja2 = _jinja()
    env = jinja2.Environment(
        loader=jinja2.DictLoader(_template_dict()), autoescape=True, keep_trailing_newline=True
    )
    superposition = str(run.config.model.kind).startswith("superposition")
    conv = run.config.model.kind == "conv"
    if run.config.model.kind not in ("mlp", "onehot_mlp") and not superposition and not conv:
        raise ToylabError(
            f"write_atlas: the atlas needs MLP members (kind 'mlp' or 'onehot_mlp'), conv nets "
            f"or toy models of superposition, got {type(run.model(0)).__name__}. 'toylab "
            "report DIR' reports this run."
        )
    hidden_layers = [k for k in run.model(0).widths if k.startswith("hidden_") and "." not in k]
    if not hidden_layers and not conv:
        raise ToylabError(
            "write_atlas: the atlas has a page per hidden neuron, and this model has no hidden "
            "layer ([model] hidden = []). 'toylab report DIR' reports this run."
        )
    out = Path(run.path) / "atlas" if out_dir is None else Path(out_dir)
    _check_out(out)
    members = list(range(run.num_members) if members is None else members)
    for m in members:
        if isinstance(m, bool) or not isinstance(m, int) or not 0 <= m < run.num_members:
            raise ToylabError(
                f"write_atlas: members must be in 0..{run.num_members - 1}, got {m!r}."
            )
    if superposition:  # a page per feature ("input:i"), not per hidden neuron
        from toylab.viz._feature_atlas import write_feature_atlas

        return write_feature_atlas(run, out, members=members, claims=claims, dpi=dpi,
                                   progress=progress)  # fmt: skip
    if conv:  # a page per channel at the centre position ("conv_1:5"), for image families
        from toylab.viz._conv_atlas import write_conv_atlas

        return write_conv_atlas(run, out, members=members, budget=conv_budget, dpi=dpi,
                                progress=progress)  # fmt: skip
    # the task (domain, kind) every member shares; each member's numbers use its own
    # distribution (a sweep over distribution parameters has no single run.dist)
    dist = run.dist_of(members[0])
    if analyses is not None and len(analyses) != len(members):
        raise ToylabError(
            f"write_atlas: analyses must have one entry per member ({len(members)}), got "
            f"{len(analyses)}."
        )
    out.mkdir(parents=True, exist_ok=True)
    import toylab

    atomic_write_json(out / "atlas.json", {"written_by": f"toylab {toylab.__version__}",
                                           "run": str(run.path), "members": members})  # fmt: skip
    run_name = str(run.config.name)
    labels = {m: run.member_label(m) for m in range(run.num_members)}
    diverged = getattr(run, "diverged", {})
    box = getattr(dist, "domain", None)
    planar = box is not None and hasattr(box, "low") and len(box.low) == 2
    with matplotlib.rc_context({"figure.max_open_warning": 0}):
        samples = None
        if planar:
            batch = dist.sample(jax.random.key(0), num_samples)
            samples = np.asarray(batch.x, np.float64)

        def render(path: Path, fig: Any) -> str:
            atomic_write_bytes(path, png_bytes(fig, dpi))
            return path.relative_to(out).as_posix()

        steps = list(run.checkpoint_steps) if dynamics and planar else []
        step_models: dict[int, list[Any]] = {}
        for s in steps:
            params = run.params_at(s)
            step_models[s] = [run.ensemble.model(params, m) for m in members]

        member_models = {m: run.model(m) for m in members}
        links = _universality_links(run.path)
        member_analyses: dict[int, Any] = {}
        for i, m in enumerate(progress.iterate(members, "exact analysis", unit="member")):
            member_analyses[m] = (
                analyses[i] if analyses is not None else _analyze(member_models[m], run.dist_of(m))
            )
        finite = {}
        if getattr(dist, "kind", None) == "finite":
            full = run.config.train.data == "full" and run.ensemble.train_data is not None
            for m in members:
                mask = np.asarray(run.ensemble.train_data[m]) if full else None
                finite[m] = finite_accuracy(member_models[m], run.dist_of(m), mask)

        index_members = []
        pages = []
        for i, m in enumerate(members):
            model = member_models[m]
            ids = neuron_ids(model.widths, hidden_layers)
            pages += [(i, m, j, nid, ids) for j, nid in enumerate(ids)]
            index_members.append({
                "member": m, "seed": run.ensemble.member_seed(m), "label": labels[m],
                "diverged": diverged.get(m),
                "layers": [{"name": layer, "neurons": []} for layer in hidden_layers],
                "accuracy": _member_accuracy(member_analyses[m], finite.get(m)),
            })  # fmt: skip
        grids: dict[int, Any] = {}
        dyn: dict[int, list[dict]] = {}
        for i, m, j, nid, ids in progress.iterate(pages, "neuron pages", unit="page"):
            model = member_models[m]
            if m not in grids:  # one forward pass per member, shared by its pages
                grids.clear()
                dyn.clear()
                grids[m] = grid_values(model, box, num) if planar else None
                dyn[m] = [grid_values(sm[i], box, 40)[2] for sm in step_models.values()]
            mdir = out / f"member{m}"
            (mdir / "img").mkdir(parents=True, exist_ok=True)
            network = model.to_network()
            k = network.layer_index(nid.layer)
            layers_w = network.dense_layers()
            page = _neuron_page(
                env=env, out=out, mdir=mdir, run_name=run_name, member=m,
                label=labels[m], nid=nid, ids=ids, j=j, k=k, model=model,
                analysis=member_analyses[m], grid=grids[m], samples=samples, layers_w=layers_w,
                layer_names=["input", *hidden_layers, "output"], steps=steps,
                dyn_grids=dyn[m], render=render,
                animation=_animation(run.path, m, nid),
                universality=_universality_entry(links, m, nid, members),
                sources={"feature_viz": feature_viz, "examples": dataset_examples,
                         "tuning": tuning_curves, "match": matches, "claims": claims},
                extra_sections=extra_sections, figure_cls=Figure,
                map_cls=NeuronMapDisplay,
            )  # fmt: skip
            index_members[i]["layers"][hidden_layers.index(nid.layer)]["neurons"].append(page)

        # run page
        img = out / "img"
        img.mkdir(exist_ok=True)
        data_img = curves_img = None
        data_caption = ""
        if planar and getattr(dist, "num_classes", 0) > 0:
            shown = members[:MAX_DATA_PANELS]
            ncol = min(len(shown), 4)
            nrow = -(-len(shown) // ncol)
            fig = Figure(figsize=(4.4 * ncol, 4.4 * nrow))
            axes = fig.subplots(nrow, ncol, squeeze=False)
            posteriors: dict[Any, Any] = {}  # the Bayes posterior once, for every panel
            for q, m in enumerate(shown):
                disp = DataDisplay.from_model(
                    dist, member_models[m], key=jax.random.key(0), num=160, num_samples=num_samples,
                    analysis=member_analyses[m], posteriors=posteriors,
                )  # fmt: skip
                disp.title = f"member {m} ({labels[m]})"
                disp.plot(axes[q // ncol, q % ncol])
            for q in range(len(shown), nrow * ncol):
                axes[q // ncol, q % ncol].axis("off")
            fig.tight_layout()
            data_img = render(img / "data.png", fig)
            data_caption = (
                "The only member in this atlas."
                if len(members) == 1
                else f"All {len(members)} members in this atlas."
                if len(shown) == len(members)
                else f"The first {len(shown)} of the {len(members)} members in this atlas "
                f"(members {', '.join(map(str, shown))})."
            )
        bayes = _bayes(dist)
        if run.metrics:
            metric_names: tuple[str, ...] = ("loss", "accuracy")
            if "test_accuracy" in run.metrics[-1]:  # finite tasks trained on part of the domain
                metric_names = ("loss", "train_accuracy", "test_accuracy")
            fig = Figure(figsize=(4.6 * len(metric_names) + 0.5, 3.6))
            TrainingCurvesDisplay.from_metrics(
                run.metrics,
                names=metric_names,
                bayes=None if bayes is None else bayes.accuracy,
                labels=[f"member {m} ({labels[m]})" for m in range(run.num_members)],
            ).plot(fig)
            curves_img = render(img / "training.png", fig)
        circuit_imgs = []
        if circuits:
            for m in members:
                names = {}
                for nid in neuron_ids(member_models[m].widths):
                    match = _lookup(matches, m, str(nid))
                    name = _field(match, "name", "label") if match is not None else None
                    if name is not None:
                        names[str(nid)] = str(name)
                circ = CircuitDisplay.from_model(member_models[m], names,
                                                 title=f"member {m} ({labels[m]})")  # fmt: skip
                widths = member_models[m].widths_in_order
                fig = Figure(figsize=(1.8 * len(widths) + 1, 0.5 * max(widths) + 1.4))
                circ.plot(fig.subplots())
                circuit_imgs.append({"member": m, "label": labels[m],
                                     "src": render(img / f"circuit_member{m}.png", fig)})  # fmt: skip
        _write_run_page(env, out, run, run_name, members, member_analyses, finite, bayes,
                        data_img, data_caption, curves_img, circuit_imgs, methods)  # fmt: skip
        index = out / "index.html"
        atomic_write_text(
            index,
            env.get_template("index").render(
                css=_css(), run_name=run_name, members=index_members, planar=planar
            ),
        )
    return index


def _check_out(out: Path) -> None:
    """The atlas directory is missing, empty or an earlier atlas (never someone's files)."""
    if out.exists() and not out.is_dir():
        raise ToylabError(
            f"atlas --out {str(out)!r} is a file, not a directory. Choose a directory path."
        )
    if out.is_dir() and any(out.iterdir()) and not (out / "atlas.json").exists():
        has_atlas = (out / "index.html").exists() and (out / "run.html").exists()
        if not has_atlas:  # atlases written before atlas.json existed have these two pages
            raise ToylabError(
                f"atlas --out {str(out)!r} is a directory of other files; the atlas never "
                "writes among files it did not write. Choose a new or empty directory."
            )


def _member_accuracy(analysis: Any, finite: dict[str, Any] | None) -> str:
    """The index heading's accuracy, with how it was obtained."""
    if finite is not None:
        if finite["test"] is not None:
            return (f"test accuracy {fmt_number(finite['test'])}, train "
                    f"{fmt_number(finite['train'])} (exact)")  # fmt: skip
        return f"accuracy {fmt_number(finite['domain'])} (exact, whole domain)"
    if analysis is not None and getattr(analysis, "accuracy", None) is not None:
        return f"accuracy {fmt_number(analysis.accuracy)} ({analysis.tier})"
    return ""


def _jinja() -> Any:
    try:
        import jinja2
    except ImportError:  # pragma: no cover - jinja2 is a dependency
        raise ToylabError("write_atlas needs jinja2: pip install 'jinja2>=3.1'.") from None
    return jinja2


def _template_dict() -> dict[str, str]:
    from toylab.viz import _templates as t

    return {"base": t.BASE, "index": t.INDEX, "neuron": t.NEURON, "run": t.RUN,
            "feature_index": t.FEATURE_INDEX, "feature": t.FEATURE,
            "feature_run": t.FEATURE_RUN}  # fmt: skip


def _css() -> str:
    from markupsafe import Markup

    from toylab.viz._templates import CSS

    return Markup(CSS)


def _bayes(dist: Any) -> Any:
    if getattr(dist, "num_classes", 0) < 2:
        return None
    try:
        return dist.bayes()
    except ToylabError:  # no Bayes accuracy for this distribution (e.g. regression)
        return None


def _animation(run_dir: Any, member: int, nid: NeuronId) -> Path | None:
    """The neuron's animation through training, when ``toylab dynamics`` has written it."""
    from toylab.dynamics import animation_path

    path = animation_path(run_dir, member, nid)
    return path if path.is_file() else None


def _universality_links(run_dir: Any) -> dict | None:
    """Every unit's matches in other seeds, when ``toylab universality`` has written them."""
    from toylab.universality._report import load_links

    return load_links(run_dir)


def _universality_entry(
    links: dict | None, member: int, nid: NeuronId, members: Sequence[int]
) -> dict[str, Any] | None:
    """The neuron's matches in other seeds (``links`` from :func:`_universality_links`),
    with the atlas page of each match when its member is in the atlas."""
    entry = None if links is None else links.get((member, str(nid)))
    if entry is None:
        return None
    rows = []
    for m, addr, corr in entry.get("others") or []:
        href = f"../member{m}/{neuron_filename(addr)}" if m in members else None
        rows.append((m, addr, corr, href))
    return {**entry, "rows": rows}


def _universality_html(entry: dict[str, Any], member: int) -> Any:
    from markupsafe import Markup, escape

    ref = entry["reference"]
    parts = []
    if entry.get("family"):
        parts.append(
            f"<p>Family <b>{escape(entry['family'])}</b>: found in "
            f"{100 * float(entry['fraction']):.0f}% of the seeds compared (mean exact "
            f"correlation with member {ref}'s unit {float(entry['mean_correlation']):.3f}, "
            f"{escape(entry['tier'])}).</p>"
        )
    elif entry.get("partner") is not None and member != ref:
        addr, corr = entry["partner"]
        parts.append(f"<p>Matched to member {ref}'s <code>{escape(addr)}</code> (exact "
                     f"correlation {float(corr):.3f}); in no recurring family.</p>")  # fmt: skip
    else:
        parts.append("<p>In no recurring family (no unit of another seed matched it).</p>")
    if entry["rows"]:
        cells = []
        for m, addr, corr, href in entry["rows"][:64]:
            name = f"<code>{escape(addr)}</code>"
            name = f'<a href="{escape(href)}">{name}</a>' if href else name
            c = "—" if corr is None else f"{float(corr):.3f}"
            cells.append(f"<tr><td>member {int(m)}</td><td>{name}</td><td class=num>{c}</td></tr>")
        more = len(entry["rows"]) - len(cells)
        parts.append(
            f"<table><tr><th>member</th><th>unit</th><th>correlation with member {ref}'s "
            "unit</th></tr>" + "".join(cells) + "</table>"
            + (f"<p class=note>{more} more in universality/summary.json.</p>" if more > 0 else "")
        )  # fmt: skip
    parts.append("<p class=note>From <code>toylab universality</code> (exact correlations "
                 "under the distribution; units match up to a positive scale).</p>")  # fmt: skip
    return Markup("".join(parts))


def _neighbour(address: str, member_dir_ids: set[str]) -> str | None:
    return neuron_filename(address) if address in member_dir_ids else None


def _neuron_page(
    *,
    env: Any,
    out: Path,
    mdir: Path,
    run_name: str,
    member: int,
    label: str,
    nid: NeuronId,
    ids: list[NeuronId],
    j: int,
    k: int,
    model: Any,
    analysis: Any,
    grid: Any,
    samples: np.ndarray | None,
    layers_w: list,
    layer_names: list[str],
    steps: list[int],
    dyn_grids: list[dict],
    render: Callable[[Path, Any], str],
    animation: Path | None = None,
    universality: dict[str, Any] | None = None,
    sources: dict[str, Source],
    extra_sections: Callable[[int, str], Any] | None,
    figure_cls: Any,
    map_cls: Any,
) -> dict[str, Any]:
    address = str(nid)
    stem = f"{nid.key}-{nid.unit}"
    page_name = neuron_filename(nid)
    rel = f"member{member}/"
    fv = _lookup(sources["feature_viz"], member, address)
    ex = _lookup(sources["examples"], member, address)
    tc = _lookup(sources["tuning"], member, address)
    match = _lookup(sources["match"], member, address)
    cl = _lookup(sources["claims"], member, address)
    claim_list = [] if cl is None else (list(cl) if isinstance(cl, list | tuple) else [cl])

    points: dict[str, np.ndarray] = {}
    if samples is not None:
        points["data"] = samples
    fv_rows, ex_rows = [], []
    if fv is not None:
        start = _points(_field(fv, "start", "starts", "x0", "init"))
        end = _points(_field(fv, "end", "ends", "endpoints", "x", "points"))
        score = _field(fv, "values", "value", "scores", "score")
        score = None if isinstance(score, str) else score  # a result's score names its measure
        if start is not None:
            points["start"] = start
        if end is not None:
            points["end"] = end
        n = max(len(start) if start is not None else 0, len(end) if end is not None else 0)
        sc = None if score is None else np.atleast_1d(np.asarray(score, np.float64))
        for r in range(min(n, 20)):
            fv_rows.append({
                "start": _fmt(start[r]) if start is not None and r < len(start) else "",
                "end": _fmt(end[r]) if end is not None and r < len(end) else "",
                "score": _fmt(sc[r]) if sc is not None and r < len(sc) else "",
            })  # fmt: skip
    if ex is not None:
        xs = _points(_field(ex, "x", "inputs", "examples", "points"))
        sc = _field(ex, "values", "scores", "activations", "value", "score")
        sc = None if isinstance(sc, str) else sc
        sc = None if sc is None else np.atleast_1d(np.asarray(sc, np.float64))
        if xs is not None:
            points["top"] = xs
            for r in range(min(len(xs), 20)):
                ex_rows.append({"x": _fmt(xs[r]),
                                "score": _fmt(sc[r]) if sc is not None and r < len(sc) else ""})  # fmt: skip
    for c in claim_list:
        cx = _field(c, "counterexample")
        if cx is not None and np.asarray(cx).shape == (2,):
            points.setdefault("counterexample", np.zeros((0, 2)))
            points["counterexample"] = np.vstack([points["counterexample"], np.asarray(cx)])

    map_img = thumb = dyn_img = None
    map_caption = dyn_caption = ""
    if grid is not None:
        xx, yy, acts = grid
        values = acts[nid.key][..., nid.unit]
        atomic_write_bytes(mdir / "img" / f"{stem}_thumb.png", _image_png(_colors(values)))
        thumb = f"{rel}img/{stem}_thumb.png"
        if analysis is not None:
            disp = map_cls.from_analysis(model, nid, analysis, grid=grid, points=points)
        else:
            disp = map_cls(address, xx, yy, values, points=points)
        # a fixed layout (room for the colorbar's label and the legend below): the
        # constrained layout engine cost about a third of every page's rendering time
        fig = figure_cls(figsize=(5.6, 5.2))
        fig.subplots_adjust(left=0.12, right=0.92, top=0.93, bottom=0.19)
        disp.plot(fig.subplots(), legend=True)
        render(mdir / "img" / f"{stem}.png", fig)
        map_img = f"img/{stem}.png"
        map_caption = (
            "Colour: the neuron's value on a grid (red positive, blue negative). "
            + ("Exact overlays: thin grey lines are the linear-region boundaries, the black "
               "line is where the neuron switches on (its pre-activation's zero set), the "
               "star its exact maximum over the domain. " if analysis is not None else "")
            + "Grey dots: data samples."
        )  # fmt: skip
        if dyn_grids:
            frames = [g[nid.key][..., nid.unit] for g in dyn_grids]
            tiles = []
            for f in frames:
                tile = _colors(f)
                pad = np.ones((tile.shape[0], 3, 4))
                tiles += [tile, pad]
            strip = np.concatenate(tiles[:-1], axis=1)
            atomic_write_bytes(mdir / "img" / f"{stem}_dynamics.png", _image_png(strip))
            dyn_img = f"img/{stem}_dynamics.png"
            dyn_caption = (
                "The map at each checkpoint, left to right: steps "
                + ", ".join(str(s) for s in steps)
                + ". Each frame has its own colour scale; max |a| per frame: "
                + ", ".join(f"{float(np.abs(f).max()):.2g}" for f in frames)
                + "."
            )

    stats: list[tuple[str, str]] = []
    if analysis is not None:
        mom = analysis.moments[nid.key]
        ext = analysis.extrema(nid.key)
        u = nid.unit
        stats = [
            ("tier", analysis.tier),
            ("firing probability P(a > 0)", _fmt(mom.firing_probability[u], 6)),
            ("mean E[a]", _fmt(mom.mean[u], 6)),
        ]
        cov = _field(mom, "cov")
        if cov is not None:
            stats.append(("std", _fmt(np.sqrt(max(float(np.asarray(cov)[u, u]), 0.0)), 6)))
        stats += [
            ("max over the domain", _fmt(ext.max[u], 6)),
            ("argmax", _fmt(ext.argmax[u])),
            ("min over the domain", _fmt(ext.min[u], 6)),
            ("argmin", _fmt(ext.argmin[u])),
        ]
        if analysis.tier != "exact":
            what = "error bound" if analysis.tier == "certified" else "error estimate"
            stats.append((what, _fmt(analysis.error)))

    page_ids = {str(i) for i in ids}
    W_in, b_in = layers_w[k]
    W_out, _ = layers_w[k + 1]
    vmax = max(float(np.abs(W_in[:, nid.unit]).max()), float(np.abs(W_out[nid.unit]).max()))
    incoming = []
    for i in np.argsort(-np.abs(W_in[:, nid.unit]), kind="stable"):
        src = f"{layer_names[k]}:{int(i)}"
        v = float(W_in[i, nid.unit])
        incoming.append({"address": src, "href": _neighbour(src, page_ids), "value": v,
                         "text": _signed(v), "color": _weight_color(v, vmax)})  # fmt: skip
    outgoing = []
    for i in np.argsort(-np.abs(W_out[nid.unit]), kind="stable"):
        dst = f"{layer_names[k + 2]}:{int(i)}"
        v = float(W_out[nid.unit, i])
        outgoing.append({"address": dst, "href": _neighbour(dst, page_ids), "value": v,
                         "text": _signed(v), "color": _weight_color(v, vmax)})  # fmt: skip

    match_rows = []
    if match is not None:
        for label, names in (("handwritten neuron", ("name", "label")),
                             ("similarity", ("score", "similarity", "correlation")),
                             ("circuit", ("circuit",)), ("note", ("note", "description"))):  # fmt: skip
            v = _field(match, *names)
            if v is not None:
                match_rows.append((label, _fmt(v)))
        if not match_rows:
            match_rows.append(("handwritten neuron", str(match)))

    claim_rows = []
    for c in claim_list:
        verdict = str(_field(c, "verdict", "result") or "")
        holds = _field(c, "holds")
        if holds is None:
            holds = verdict.strip().lower() in ("holds", "true", "proved", "verified")
        elif not verdict:  # toylab.claims.ClaimResult: holds is the verdict
            verdict = "holds" if holds else "fails"
        cx = _field(c, "counterexample", "witness")
        claim_rows.append({
            "statement": str(_field(c, "statement", "claim", "text") or c),
            "verdict": verdict, "holds": bool(holds),
            "tier": str(_field(c, "tier") or ""),
            "counterexample": "" if cx is None else _fmt(cx),
        })  # fmt: skip

    tuning = []
    if tc is not None:
        from toylab.viz.figures import TuningCurveDisplay

        for q, item in enumerate(tc if isinstance(tc, list | tuple) else [tc]):
            if not isinstance(item, TuningCurveDisplay):
                item = TuningCurveDisplay.from_arrays(
                    _field(item, "t", "angles", "params"), _field(item, "exact"),
                    _field(item, "sampled"), sampled_err=_field(item, "sampled_err", "stderr"),
                    neuron=address, xlabel=str(_field(item, "xlabel") or "t"),
                )  # fmt: skip
            fig = figure_cls(figsize=(5.5, 3.6))
            item.plot(fig.subplots())
            fig.tight_layout()
            render(mdir / "img" / f"{stem}_tuning{q}.png", fig)
            tuning.append({"src": f"img/{stem}_tuning{q}.png",
                           "title": str(_field(tc if not isinstance(tc, list | tuple) else item,
                                               "title") or "")})  # fmt: skip

    extra: list[dict[str, Any]] = []
    if animation is not None:  # written by 'toylab dynamics': copied, so the atlas stands alone
        from markupsafe import Markup, escape

        atomic_write_bytes(mdir / "img" / f"{stem}_training.gif", animation.read_bytes())
        extra.append({"title": "Exact map through training", "src": None, "body": Markup(
            f'<figure><img class="fig" src="img/{escape(stem)}_training.gif" alt="animated '
            f'map of {escape(address)} through training"><figcaption>The map at every '
            "analysed checkpoint (an animation, from <code>toylab dynamics</code>): colour "
            "from a grid, each frame on its own scale; exact overlays of that checkpoint: "
            "region boundaries (grey), the zero set (black), the argmax (star)."
            "</figcaption></figure>")})  # fmt: skip
    if universality is not None:  # written by 'toylab universality'
        extra.append({"title": "Matches in other seeds", "src": None,
                      "body": _universality_html(universality, member)})  # fmt: skip
    if extra_sections is not None:
        for q, (title, content) in enumerate(extra_sections(member, address) or []):
            if hasattr(content, "savefig"):
                render(mdir / "img" / f"{stem}_extra{q}.png", content)
                extra.append({"title": str(title), "src": f"img/{stem}_extra{q}.png"})
            else:
                extra.append({"title": str(title), "body": content, "src": None})

    def nav(i: int) -> dict[str, str] | None:
        if 0 <= i < len(ids):
            return {"address": str(ids[i]), "href": neuron_filename(ids[i])}
        return None

    html = env.get_template("neuron").render(
        css=_css(), run_name=run_name, member=member, label=label, address=address,
        prev=nav(j - 1), next=nav(j + 1), map_img=map_img, map_caption=map_caption,
        stats=stats, match=match_rows, claims=claim_rows, bias=_signed(float(b_in[nid.unit])),
        incoming=incoming, outgoing=outgoing, dynamics_img=dyn_img,
        dynamics_caption=dyn_caption, feature_viz=fv_rows, examples=ex_rows, tuning=tuning,
        extra=extra,
        feature_viz_note=_fmt(_field(fv, "note")) if fv is not None else "",
        examples_note=_fmt(_field(ex, "note")) if ex is not None else "",
    )  # fmt: skip
    atomic_write_text(mdir / page_name, html)
    firing = None
    if analysis is not None:
        firing = float(analysis.moments[nid.key].firing_probability[nid.unit])
    return {"address": address, "href": f"{rel}{page_name}", "thumb": thumb, "firing": firing}


def _write_run_page(
    env: Any,
    out: Path,
    run: Any,
    run_name: str,
    members: list[int],
    member_analyses: dict[int, Any],
    finite: dict[int, dict[str, Any]],
    bayes: Any,
    data_img: str | None,
    data_caption: str,
    curves_img: str | None,
    circuit_imgs: list[dict[str, Any]],
    methods: Any,
) -> None:
    cfg = run.config
    man = run.manifest
    lr = (f"learning_rate swept over {list(cfg.sweep.values)}"
          if cfg.sweep and cfg.sweep.param == "learning_rate"
          else f"lr {cfg.train.learning_rate}")  # fmt: skip
    facts = [
        ("name", run_name),
        ("distribution", str(cfg.distribution)),
        ("model", f"{cfg.model.kind}, hidden {list(cfg.model.hidden)}, {cfg.model.activation}"),
        ("training", f"{cfg.train.optimizer}, {lr}, {cfg.train.num_steps} steps"),
    ]  # fmt: skip
    if cfg.sweep:
        facts.append(("sweep", f"{cfg.sweep.describe()} (every seed at every point)"))
    facts += [
        ("status", f"{man.get('status')} at step {man.get('step')}"),
        ("parameters", str(getattr(run, "params_source", "") or "latest saved")),
        ("checkpoints", ", ".join(str(s) for s in run.checkpoint_steps)),
    ]
    if bayes is not None:
        facts.append(("Bayes-optimal accuracy", f"{bayes.accuracy:.6f} ({bayes.tier})"))
    last = run.metrics[-1] if run.metrics else {}
    diverged = getattr(run, "diverged", {})
    rows = []
    if finite:
        header = ["member", "train accuracy (exact)", "test accuracy (exact)",
                  "whole domain (exact)", "Bayes-optimal"]  # fmt: skip
        for m in members:
            f = finite[m]
            rows.append([f"{m} ({run.member_label(m)})", _fmt(f["train"], 6),
                         _fmt(f["test"], 6), _fmt(f["domain"], 6),
                         _fmt(None if bayes is None else bayes.accuracy, 6)])  # fmt: skip
        note = ("Exact: a float64 forward pass of every input of the finite domain; train and "
                "test split by each member's own training set.")  # fmt: skip
    else:
        header = ["member", "held-out accuracy (sampled)", "accuracy of the decision regions",
                  "Bayes-optimal", "gap to Bayes", "tier"]  # fmt: skip
        for m in members:
            a = member_analyses[m]
            sampled = float(np.asarray(last["accuracy"])[m]) if "accuracy" in last else None
            rows.append([
                f"{m} ({run.member_label(m)})", _fmt(sampled),
                _fmt(None if a is None else a.accuracy, 6),
                _fmt(None if bayes is None else bayes.accuracy, 6),
                _fmt(None if a is None or a.gap is None else a.gap, 6),
                "" if a is None else a.tier,
            ])  # fmt: skip
        n = run.ensemble.num_eval
        note = ("The accuracy of the decision regions integrates each network's exact regions "
                "under the distribution (its tier says how: exact, or estimated by quadrature); "
                f"the held-out accuracy is sampled ({n} samples).")  # fmt: skip
    table = None
    if methods:
        recs = [dict(r) if isinstance(r, Mapping) else vars(r) for r in methods]
        keys: list[str] = []
        for r in recs:
            keys += [k for k in r if k not in keys]
        table = {"header": keys, "rows": [[_fmt(r.get(k)) for k in keys] for r in recs]}
    html = env.get_template("run").render(
        css=_css(), run_name=run_name, facts=facts, acc_header=header, acc_rows=rows,
        acc_note=note, diverged=[diverged[m] for m in sorted(diverged) if m in members],
        data_img=data_img, data_caption=data_caption, curves_img=curves_img,
        circuits=circuit_imgs, methods=table,
    )  # fmt: skip
    atomic_write_text(out / "run.html", html)


def compare_inputs(run_dir: str | Path) -> dict[str, Any]:
    """Atlas inputs from ``RUN/compare/compare.json`` (written by ``toylab compare``), if any.

    Returns ``{"methods": rows for the run page, "extra_sections": per-neuron tables}``,
    or ``{}`` when the run has no comparison yet.
    """
    import json

    from markupsafe import Markup, escape

    path = Path(run_dir) / "compare" / "compare.json"
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        rows, summary = data["rows"], data["summary"]
    except (ValueError, KeyError) as e:
        raise ToylabError(f"{str(path)!r} is corrupted ({e}); rerun 'toylab compare'.") from None
    methods = [
        {"method": name, "neurons scored": s["rows"], "misleads": s["misleads"],
         "rate": f"{100 * s['rate']:.0f}%"}
        for name, s in summary.items() if isinstance(s, dict)
    ]  # fmt: skip
    by_neuron: dict[tuple[int, str], list[dict[str, Any]]] = {}
    for r in rows:
        by_neuron.setdefault((int(r["member"]), str(r["neuron"])), []).append(r)

    def fmt(v: Any) -> str:
        return f"{v:.4g}" if isinstance(v, float) else ("" if v is None else str(v))

    def sections(member: int, address: str) -> list[tuple[str, Any]]:
        recs = by_neuron.get((member, address))
        if not recs:
            return []
        head = "".join(f"<th>{h}</th>" for h in
                       ("method", "score", "sampled", "exact", "error", "misleads", "detail"))  # fmt: skip
        body = "".join(
            "<tr>" + "".join(f"<td>{escape(fmt(r.get(k)))}</td>" for k in
                             ("method", "score", "sampled", "exact", "error", "misleads",
                              "detail")) + "</tr>"
            for r in recs
        )  # fmt: skip
        return [("Sampled methods scored against the exact answer",
                 Markup(f"<table><tr>{head}</tr>{body}</table>"))]  # fmt: skip

    return {"methods": methods, "extra_sections": sections}
