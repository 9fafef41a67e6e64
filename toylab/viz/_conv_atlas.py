r"""The atlas of a run of conv nets on an image family: a page per channel (private).

:func:`toylab.viz.write_atlas` calls :func:`write_conv_atlas` for runs whose members are
conv nets (``[model] kind = "conv"``) trained on an image family (``CurveImages``). The
unit of interest is a channel at the centre position of its feature map, addressed
``conv_1:5`` (= ``conv_1:5@H//2,W//2``, :mod:`toylab.neurons`). Layout::

    atlas/index.html                 per member: conv layers as grids of channels, each with
                                     its certified tuning thumbnail; accuracy
    atlas/run.html                   config, accuracy per member, training curves
    atlas/member{m}/conv_1-5.html    one page per channel (conv_1-5: ``conv_1:5``)
    atlas/member{m}/img/*.png        its figures

A channel's page shows

* its filter weights as images (``conv_0``: the kernel over the pixels; deeper layers:
  one small image per input channel, largest norm first);
* its **certified** tuning over ``(theta, kappa)`` (the other parameters at the family's
  centre) from :func:`toylab.curves.tuning`: for every cell of the grid the response
  lies between the drawn lower and upper bounds; the page states the largest enclosure
  width (the budget ``tuning_boxes`` decides it; more boxes, narrower enclosures);
* the top dataset examples (the largest responses among ``num_samples`` images drawn
  from the distribution, tier ``sampled``);
* feature visualization in pixel space (:func:`toylab.curves.score_featureviz`) beside
  the certified best image of the family (:func:`toylab.curves.certified_max`'s argmax
  rendered), with the certified bracket of the family maximum;
* links to the channels it reads from (previous conv layer, by the norm of the kernel
  slice) and writes to (next conv layer, or the dense head's units).

**Receptive field.** A channel at one position reads only its receptive field: every
bound and search runs on :func:`toylab.curves.local_problem`'s cut of the
network (the same real-valued function of those pixels; max pooling below the channel:
the whole net), which costs what the receptive field costs.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from toylab._errors import ToylabError
from toylab._progress import QUIET, Progress
from toylab.runs.io import atomic_write_bytes, atomic_write_json, atomic_write_text
from toylab.viz._output import png_bytes

__all__ = ["ConvAtlasBudget", "describe_conv", "write_conv_atlas"]


@dataclasses.dataclass(frozen=True)
class ConvAtlasBudget:
    """The work per channel. ``tuning_boxes``: parameter boxes bounded for the tuning
    map (its initial grid is ``resolution`` cells; more boxes refine the widest cells);
    ``max_boxes``: for the certified family maximum; ``num_samples``: images drawn for
    the dataset examples; ``featureviz_starts``/``featureviz_steps``: gradient ascent."""

    resolution: tuple[int, int] = (24, 6)
    tuning_boxes: int = 400
    tuning_tol: float = 0.05
    max_boxes: int = 200
    num_samples: int = 2048
    num_examples: int = 8
    featureviz_starts: int = 4
    featureviz_steps: int = 150


def describe_conv(blocks: Sequence[Any]) -> str:
    """Conv blocks (:class:`toylab.models.conv.ConvSpec`) in one line:
    ``"6ch 5x5 avg2x2, 6ch 3x3 avg2x2"``."""

    def pair(v: Any) -> str:
        a, b = (v, v) if isinstance(v, int) else tuple(v)
        return f"{a}x{b}"

    parts = []
    for b in blocks:
        text = f"{b.channels}ch {pair(b.kernel)}"
        if b.pool:
            text += f" {b.pool}{pair(b.pool_window if b.pool_window is not None else 2)}"
        parts.append(text)
    return ", ".join(parts)


# --------------------------------------------------------------------------- figures


_UNREAD = (0.80, 0.84, 0.90, 1.0)  # pixels outside a receptive field (not read by the unit)


def _gray_tiles(images: np.ndarray, shape: tuple[int, int], scale: int = 6) -> list[bytes]:
    """Grayscale PNGs of flat images ``(n, H*W)`` on one shared scale (their min to max),
    nearest upscaled by ``scale``; ``nan`` pixels (not read) drawn light blue-grey."""
    from toylab.viz.atlas import _image_png

    arr = np.asarray(images, np.float64).reshape((-1, *shape))
    finite = arr[np.isfinite(arr)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    out = []
    for img in arr:
        t = np.clip((img - lo) / (hi - lo if hi > lo else 1.0), 0.0, 1.0)
        rgba = np.stack([t, t, t, np.ones_like(t)], axis=-1)
        rgba[~np.isfinite(img)] = _UNREAD
        big = np.repeat(np.repeat(rgba, scale, axis=0), scale, axis=1)
        out.append(_image_png(big[::-1]))  # _image_png draws origin="lower"
    return out


def _kernel_png(kernel: np.ndarray, scale: int = 12) -> bytes:
    """A kernel slice ``(kh, kw)`` as a red/blue image (white zero), nearest upscaled."""
    from toylab.viz.atlas import _colors, _image_png

    rgba = _colors(np.asarray(kernel, np.float64))
    big = np.repeat(np.repeat(rgba, scale, axis=0), scale, axis=1)
    return _image_png(big[::-1])  # _image_png draws origin="lower": flip to row 0 on top


def _thumb_png(res: Any) -> bytes:
    """The midpoint of the certified enclosure per grid cell, small (index thumbnails)."""
    import matplotlib

    from toylab.viz.atlas import _image_png

    lo, hi = res.grid_bounds()
    mid = 0.5 * (lo + hi)
    span = float(mid.max() - mid.min())
    t = (mid - mid.min()) / (span if span > 0 else 1.0)
    rgba = matplotlib.colormaps["viridis"](t.T)  # rows: kappa (up), columns: theta
    big = np.repeat(np.repeat(rgba, 4, axis=1), max(1, 96 // (4 * rgba.shape[0])), axis=0)
    return _image_png(big)


# --------------------------------------------------------------------------- the atlas


def _conv_layers(net: Any) -> list[str]:
    from toylab.layers.conv import Conv

    return [key for layer, (key, _) in zip(net.layers, net.layer_names, strict=True)
            if isinstance(layer, Conv)]  # fmt: skip


def _links(net: Any, key: str, channel: int) -> tuple[list[dict], list[dict]]:
    """``(reads_from, writes_to)``: neighbouring units by weight norm, largest first."""
    from toylab.layers.conv import Conv

    convs = _conv_layers(net)
    k = net.layer_index(key)
    K = np.asarray(net.layers[k].kernel, np.float64)  # (kh, kw, C_in, C_out)
    reads = []
    pos = convs.index(key)
    if pos > 0:
        norms = np.sqrt((K[:, :, :, channel] ** 2).sum(axis=(0, 1)))
        for c in np.argsort(-norms, kind="stable"):
            reads.append({"address": f"{convs[pos - 1]}:{int(c)}", "norm": float(norms[c]),
                          "page": True})  # fmt: skip
    writes = []
    from toylab.layers.conv import AvgPool, MaxPool

    nxt = next((t for t in range(k + 1, net.num_layers)
                if not isinstance(net.layers[t], AvgPool | MaxPool)), None)  # fmt: skip
    if nxt is not None and isinstance(net.layers[nxt], Conv):
        K2 = np.asarray(net.layers[nxt].kernel, np.float64)
        norms = np.sqrt((K2[:, :, channel, :] ** 2).sum(axis=(0, 1)))
        nkey = net.layer_names[nxt][0]
        for c in np.argsort(-norms, kind="stable"):
            writes.append({"address": f"{nkey}:{int(c)}", "norm": float(norms[c]), "page": True})
    elif nxt is not None:  # the dense head reads the flattened HWC map
        W, _ = net.layer_arrays(nxt)
        W = np.asarray(W, np.float64)
        C = net.layer_shape(net.layer_names[nxt - 1][0])[2]
        norms = np.sqrt((W[channel::C, :] ** 2).sum(axis=0))
        nkey = net.layer_names[nxt][0]
        for j in np.argsort(-norms, kind="stable"):
            writes.append({"address": f"{nkey}:{int(j)}", "norm": float(norms[j]),
                           "page": False})  # fmt: skip
    return reads, writes


def write_conv_atlas(
    run: Any,
    out: Path,
    *,
    members: Sequence[int],
    budget: ConvAtlasBudget | None = None,
    dpi: int = 80,
    progress: Progress = QUIET,
) -> Path:
    """Write the channel atlas of ``run`` (conv members on an image family) into ``out``
    (checked by the caller) and return the path of its ``index.html``."""
    import jax
    from matplotlib.figure import Figure

    import toylab
    from toylab.curves import certified_max, certified_min, score_featureviz, tuning
    from toylab.curves.tuning import local_problem
    from toylab.viz.atlas import _css, _fmt, _jinja, _template_dict, neuron_filename
    from toylab.viz.curves import TuningHeatmapDisplay
    from toylab.viz.figures import TrainingCurvesDisplay

    budget = ConvAtlasBudget() if budget is None else budget
    dist0 = run.dist_of(members[0])
    for attr in ("PARAMS", "render", "render_bounds", "image_shape"):
        if not hasattr(dist0, attr):
            raise ToylabError(
                f"write_atlas: a conv run's atlas needs an image family (CurveImages) as its "
                f"distribution, got {type(dist0).__name__}. 'toylab report DIR' reports it."
            )
    jinja2 = _jinja()
    env = jinja2.Environment(
        loader=jinja2.DictLoader({**_template_dict(), **_templates()}), autoescape=True,
        keep_trailing_newline=True,
    )  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "atlas.json", {"written_by": f"toylab {toylab.__version__}",
                                           "run": str(run.path), "members": list(members),
                                           "budget": dataclasses.asdict(budget)})  # fmt: skip
    (out / "img").mkdir(exist_ok=True)
    run_name = str(run.config.name)
    labels = {m: run.member_label(m) for m in range(run.num_members)}
    last = run.metrics[-1] if run.metrics else {}
    n_eval = run.ensemble.num_eval
    started = time.perf_counter()

    nets = {m: run.model(m).to_network().numpy(np.float64) for m in members}
    pages = [(m, key, c) for m in members for key in _conv_layers(nets[m])
             for c in range(nets[m].layer_shape(key)[2])]  # fmt: skip
    index_members: dict[int, dict[str, Any]] = {}
    samples: dict[int, tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]] = {}
    drawn: tuple[Any, np.ndarray, np.ndarray] | None = None
    total_boxes = 0
    for m, key, c in progress.iterate(pages, "channel pages", unit="page"):
        net = nets[m]
        dist = run.dist_of(m)
        shape = tuple(dist.image_shape)
        if m not in samples:  # one forward pass per member, one sample per distribution
            if drawn is None or drawn[0] != dist:
                batch = dist.sample(jax.random.key(1000), budget.num_samples)
                drawn = (dist, np.asarray(batch.x, np.float64), np.asarray(batch.latent))
            samples = {m: (drawn[1], drawn[2].astype(np.float64), net.forward(drawn[1]))}
            acc = float(np.asarray(last["accuracy"])[m]) if "accuracy" in last else None
            index_members[m] = {
                "member": m, "label": labels[m], "seed": run.ensemble.member_seed(m),
                "accuracy": "" if acc is None else
                f"accuracy {_fmt(acc)} (sampled, {n_eval} held-out images)",
                "layers": {},
            }  # fmt: skip
        x, latent, acts = samples[m]
        address = f"{key}:{c}"
        nid = net.resolve(address)
        H, W, C = net.layer_shape(key)
        stem = f"{key}-{c}"
        mdir = out / f"member{m}"
        (mdir / "img").mkdir(parents=True, exist_ok=True)
        lp = local_problem(net, dist, address)  # the channel on its receptive field
        sub, fam, sub_addr = lp.network, lp.family, lp.neuron
        idx = lp.pixels if lp.cropped else None

        # certified tuning over (theta, kappa)
        res = tuning(sub, fam, sub_addr, resolution=budget.resolution, tol=budget.tuning_tol,
                     max_boxes=budget.tuning_boxes)  # fmt: skip
        total_boxes += res.num_boxes
        fig = Figure()
        heat = TuningHeatmapDisplay.from_tuning(res, raster=(144, 48))
        heat.neuron = address
        heat.plot(fig)
        atomic_write_bytes(mdir / "img" / f"{stem}_tuning.png", png_bytes(fig, min(dpi, 64)))
        atomic_write_bytes(mdir / "img" / f"{stem}_thumb.png", _thumb_png(res))

        # the certified best (and worst) image of the family
        fmax = certified_max(sub, fam, sub_addr, gap=1e-3, max_boxes=budget.max_boxes)
        fmin = certified_min(sub, fam, sub_addr, gap=1e-3, max_boxes=max(4, budget.max_boxes // 4))
        total_boxes += fmax.num_boxes + fmin.num_boxes
        best_family = np.asarray(dist.render(np.asarray(fmax.argmax, np.float64)), np.float64)

        # feature visualization in pixel space (over the receptive field; the rest of the
        # image does not change the unit and is drawn at the background level)
        dom = getattr(dist, "domain", None)
        fv = None
        if dom is not None:
            plo = np.asarray(dom.low, np.float64)
            phi = np.asarray(dom.high, np.float64)
            if idx is not None:
                plo, phi = plo[idx], phi[idx]
            fv = score_featureviz(sub, fam, sub_addr, key=jax.random.key(m), pixel_low=plo,
                                  pixel_high=phi, num_starts=budget.featureviz_starts,
                                  num_steps=budget.featureviz_steps, extremes=(fmax, fmin))  # fmt: skip
        tiles = []
        if fv is not None:
            full = np.full(x.shape[-1], np.nan)
            if idx is not None:
                full[idx] = fv.best_image
            else:
                full = np.asarray(fv.best_image, np.float64)
            tiles.append((full, "feature visualization (sampled)", _fmt(fv.sampled)))
        tiles.append((best_family, "family's certified best image", _fmt(fmax.value)))
        best = []
        for q, (png, (_, what, value)) in enumerate(
            zip(_gray_tiles(np.stack([t[0] for t in tiles]), shape), tiles, strict=True)
        ):
            atomic_write_bytes(mdir / "img" / f"{stem}_best{q}.png", png)
            best.append({"src": f"img/{stem}_best{q}.png", "what": what, "value": value})

        # top dataset examples (sampled)
        vals = np.asarray(acts[key], np.float64)[:, nid.unit]
        top = np.argsort(-vals, kind="stable")[: budget.num_examples]
        examples = []
        for q, (png, t) in enumerate(zip(_gray_tiles(x[top], shape), top, strict=True)):
            atomic_write_bytes(mdir / "img" / f"{stem}_ex{q}.png", png)
            examples.append({"src": f"img/{stem}_ex{q}.png", "value": _fmt(vals[t], 3),
                             "theta": f"{np.degrees(latent[t, 0]):.0f}°",
                             "kappa": f"{latent[t, 1]:.2f}"})  # fmt: skip

        # filter weights
        K = np.asarray(net.layers[net.layer_index(key)].kernel, np.float64)[:, :, :, c]
        norms = np.sqrt((K**2).sum(axis=(0, 1)))
        kernels = []
        for ci in np.argsort(-norms, kind="stable"):
            name = f"{stem}_w{int(ci)}.png"
            atomic_write_bytes(mdir / "img" / name, _kernel_png(K[:, :, ci]))
            kernels.append({"src": f"img/{name}", "channel": int(ci),
                            "norm": _fmt(norms[ci], 3)})  # fmt: skip
        reads, writes = _links(net, key, c)
        for r in reads + writes:
            r["href"] = neuron_filename(r["address"]) if r.pop("page") else None
            r["text"] = _fmt(r.pop("norm"), 4)

        g_lo, g_hi = res.grid_bounds()
        stats = [
            ("certified maximum over the family", f"{_fmt(fmax.value)} (attained) ≤ max ≤ "
             f"{_fmt(fmax.upper)}" + ("" if fmax.converged else " (budget reached)")),
            ("argmax (θ°, κ, cx, cy)", f"({np.degrees(fmax.argmax[0]):.1f}°, "
             f"{fmax.argmax[1]:.3f}, {fmax.argmax[2]:.2f}, {fmax.argmax[3]:.2f})"),
            ("certified minimum over the family", f"{_fmt(fmin.lower)} ≤ min ≤ "
             f"{_fmt(fmin.value)} (attained)"),
            ("tuning map: largest enclosure width", f"{_fmt(res.max_width)} ({res.num_boxes} "
             f"boxes{'' if res.converged else ', budget reached'})"),
            ("tuning map: median cell width", _fmt(float(np.median(g_hi - g_lo)))),
            ("top sampled response", f"{_fmt(vals[top[0]])} (sampled, {len(vals)} images)"),
        ]  # fmt: skip
        if fv is not None:
            side = ("above the family's certified max (pixel space is larger)" if fv.above_family
                    else "below the family's attained max" if fv.below_family
                    else "within the family max's bracket")  # fmt: skip
            stats.append(("feature visualization", f"{_fmt(fv.sampled)} ({side}; correlation "
                          f"with the family's best image {fv.correlation:.2f})"))  # fmt: skip
        ids = [cc for cc in range(C)]
        nav = {k2: {"address": f"{key}:{j}", "href": neuron_filename(f"{key}:{j}")}
               for k2, j in (("prev", c - 1), ("next", c + 1)) if 0 <= j < len(ids)}  # fmt: skip
        html = env.get_template("conv_channel").render(
            css=_css(), run_name=run_name, member=m, label=labels[m], address=address,
            position=f"{H // 2},{W // 2}", map_shape=f"{H}×{W}×{C}", stats=stats,
            kernels=kernels, kernel_shape=f"{K.shape[0]}×{K.shape[1]}", first=key ==
            _conv_layers(net)[0], reads=reads, writes=writes, tuning_img=f"img/{stem}_tuning.png",
            width=_fmt(res.max_width), boxes=res.num_boxes, resolution=budget.resolution,
            best=best, examples=examples,
            method=res.method, crop=idx is not None, rf=0 if idx is None else len(idx),
            prev=nav.get("prev"), next=nav.get("next"), fv=fv is not None,
            fmax_lower=_fmt(fmax.lower), fmax_upper=_fmt(fmax.upper),
        )  # fmt: skip
        atomic_write_text(mdir / neuron_filename(address), html)
        layer = index_members[m]["layers"].setdefault(key, {"name": key, "channels": []})
        layer["channels"].append({
            "address": address, "href": f"member{m}/{neuron_filename(address)}",
            "thumb": f"member{m}/img/{stem}_thumb.png", "max": _fmt(fmax.value, 3),
            "width": _fmt(res.max_width, 2),
        })  # fmt: skip

    seconds = time.perf_counter() - started
    members_list = []
    for m in members:
        entry = index_members[m]
        members_list.append({**entry, "layers": list(entry["layers"].values())})
    # run page
    curves_img = None
    if run.metrics:
        fig = Figure(figsize=(9.7, 3.6))
        TrainingCurvesDisplay.from_metrics(
            run.metrics, names=("loss", "accuracy"),
            labels=[f"member {mm} ({labels[mm]})" for mm in range(run.num_members)],
        ).plot(fig)  # fmt: skip
        atomic_write_bytes(out / "img" / "training.png", png_bytes(fig, dpi))
        curves_img = "img/training.png"
    cfg, man = run.config, run.manifest
    convs = describe_conv(cfg.model.conv)
    facts = [
        ("name", run_name), ("distribution", str(cfg.distribution)),
        ("model", f"conv [{convs}], hidden {list(cfg.model.hidden)}, {cfg.model.activation}"),
        ("training", f"{cfg.train.optimizer}, lr {cfg.train.learning_rate}, "
                     f"{cfg.train.num_steps} steps, batch {cfg.train.batch_size}"),
        ("status", f"{man.get('status')} at step {man.get('step')}"),
        ("parameters", str(getattr(run, "params_source", "") or "latest saved")),
        ("atlas budget", f"tuning {budget.resolution[0]}×{budget.resolution[1]} cells, "
                         f"{budget.tuning_boxes} boxes per channel; family max "
                         f"{budget.max_boxes} boxes; {total_boxes} boxes bounded in all; "
                         f"written in {seconds:.0f} s"),
    ]  # fmt: skip
    rows = []
    for m in members:
        acc = float(np.asarray(last["accuracy"])[m]) if "accuracy" in last else None
        loss = float(np.asarray(last["loss"])[m]) if "loss" in last else None
        rows.append([f"{m} ({labels[m]})", _fmt(acc), _fmt(loss)])
    diverged = getattr(run, "diverged", {})
    atomic_write_text(out / "run.html", env.get_template("conv_run").render(
        css=_css(), run_name=run_name, facts=facts, rows=rows, n_eval=n_eval,
        diverged=[diverged[m] for m in sorted(diverged) if m in members], curves_img=curves_img,
    ))  # fmt: skip
    index = out / "index.html"
    atomic_write_text(index, env.get_template("conv_index").render(
        css=_css(), run_name=run_name, members=members_list, budget=budget,
    ))  # fmt: skip
    return index


# --------------------------------------------------------------------------- templates

CONV_INDEX = """{% extends "base" %}
{% block title %}atlas: {{ run_name }}{% endblock %}
{% block header %}
<h1>Channel atlas: {{ run_name }}</h1>
<nav class="crumbs"><a href="run.html">run page</a> (config, accuracy, training)</nav>
{% endblock %}
{% block main %}
<nav class="seeds" id="seeds">member:
{% for m in members %}<a href="#member{{ m.member }}">member {{ m.member }} ({{ m.label }})</a>
{% endfor %}</nav>
<p class="note">One cell per channel at the centre of its feature map
(<code>conv_1:5</code> is channel 5 of <code>conv_1</code> at the centre position).
Thumbnail: the channel's certified tuning over orientation θ (0 to 360°, left to right) and
curvature κ (bottom to top), the midpoint of each cell's enclosure, each on its own scale;
max: the certified maximum over the family (attained value); width: the widest enclosure
of the map. Click a cell for the channel's page.</p>
{% for m in members %}
<section class="member" id="member{{ m.member }}">
<h2>member {{ m.member }} ({{ m.label }}){% if m.accuracy %}: {{ m.accuracy }}{% endif %}</h2>
{% for layer in m.layers %}
<h3><code>{{ layer.name }}</code></h3>
<div class="grid">
{% for n in layer.channels %}<a class="cell" href="{{ n.href }}"><img src="{{ n.thumb }}" alt="tuning of {{ n.address }}" width="96" height="48" style="height:48px"><code>{{ n.address }}</code><br>max {{ n.max }} · width {{ n.width }}</a>
{% endfor %}</div>
{% endfor %}
</section>
{% endfor %}
"""

CONV_CHANNEL = """{% extends "base" %}
{% block title %}{{ address }} (member {{ member }}): {{ run_name }}{% endblock %}
{% block header %}
<nav class="crumbs"><a href="../index.html#member{{ member }}">atlas</a> ›
member {{ member }} ({{ label }}) › <a href="../run.html">run page</a>
{% if prev %} · <a href="{{ prev.href }}">← <code>{{ prev.address }}</code></a>{% endif %}
{% if next %} · <a href="{{ next.href }}"><code>{{ next.address }}</code> →</a>{% endif %}</nav>
<h1><code id="address">{{ address }}</code></h1>
<div>{{ run_name }} · member {{ member }} ({{ label }}) · position {{ position }} of a
{{ map_shape }} map</div>
{% endblock %}
{% block main %}
<h2>Certified tuning over orientation and curvature</h2>
<figure><img class="fig" src="{{ tuning_img }}" alt="certified tuning of {{ address }} over theta and kappa">
<figcaption>For every cell of the {{ resolution[0] }}×{{ resolution[1] }} grid over (θ, κ)
(the curve centred in the image) the channel's response lies between the certified lower and
upper bound drawn (second and third panel: bounds of the renderer over the cell, then of the
network); first panel: the value at each cell's centre; last: the enclosure width. Largest
enclosure width: <b>{{ width }}</b> after {{ boxes }} parameter boxes; a larger
<code>--tuning-boxes</code> narrows it.</figcaption></figure>
<div class="cols">
<div>
<h2>Statistics</h2>
<table>{% for k, v in stats %}<tr><th>{{ k }}</th><td>{{ v }}</td></tr>{% endfor %}</table>
</div>
<div>
<h2>Feature visualization and the family's best image</h2>
<div class="grid" style="grid-template-columns:repeat(auto-fill,minmax(112px,1fr))">
{% for b in best %}<div class="cell"><img src="{{ b.src }}" alt="{{ b.what }}">{{ b.what }}<br>{{ b.value }}</div>
{% endfor %}</div>
<p class="note">{% if fv %}Feature visualization: gradient ascent in pixel space from random
images (sampled; pixels outside the channel's receptive field do not change it and are drawn
blue-grey). {% endif %}The family's best image: the argmax of the certified maximum,
rendered; the family maximum lies in [{{ fmax_lower }}, {{ fmax_upper }}] (certified).</p>
</div>
</div>
<h2>Top dataset examples</h2>
<div class="grid" style="grid-template-columns:repeat(auto-fill,minmax(100px,1fr))">
{% for e in examples %}<div class="cell"><img src="{{ e.src }}" alt="example {{ loop.index }}">{{ e.value }}<br>θ={{ e.theta }} κ={{ e.kappa }}</div>
{% endfor %}</div>
<p class="note">The largest responses among images drawn from the distribution (sampled),
with their orientation θ and curvature κ; one gray scale for all.</p>
<h2>Filter weights</h2>
<p class="note">{% if first %}The {{ kernel_shape }} kernel over the pixels{% else %}One
{{ kernel_shape }} kernel slice per input channel, largest norm first{% endif %} (red positive,
blue negative, white zero; each on its own scale).</p>
<div class="grid" style="grid-template-columns:repeat(auto-fill,minmax(76px,1fr))">
{% for k in kernels %}<div class="cell"><img src="{{ k.src }}" alt="kernel slice {{ k.channel }}" style="width:60px;margin:auto">{% if not first %}in {{ k.channel }}<br>{% endif %}‖w‖ {{ k.norm }}</div>
{% endfor %}</div>
<div class="cols">
<div><h2>Reads from</h2>
{% if reads %}<table><tr><th>channel</th><th>kernel slice norm</th></tr>
{% for r in reads %}<tr><td>{% if r.href %}<a href="{{ r.href }}"><code>{{ r.address }}</code></a>{% else %}<code>{{ r.address }}</code>{% endif %}</td><td class="num">{{ r.text }}</td></tr>
{% endfor %}</table>{% else %}<p class="note">The pixels (the first conv layer).</p>{% endif %}</div>
<div><h2>Writes to</h2>
{% if writes %}<table><tr><th>unit</th><th>weight norm</th></tr>
{% for r in writes %}<tr><td>{% if r.href %}<a href="{{ r.href }}"><code>{{ r.address }}</code></a>{% else %}<code>{{ r.address }}</code>{% endif %}</td><td class="num">{{ r.text }}</td></tr>
{% endfor %}</table>{% else %}<p class="note">Nothing.</p>{% endif %}</div>
</div>
<p class="note">Bounds: {{ method }}{% if crop %}, on the sub-network of the channel's
receptive field ({{ rf }} pixels){% endif %}.</p>
{% endblock %}
"""

CONV_RUN = """{% extends "base" %}
{% block title %}run: {{ run_name }}{% endblock %}
{% block header %}
<nav class="crumbs"><a href="index.html">atlas</a> › run page</nav>
<h1>Run: {{ run_name }}</h1>
{% endblock %}
{% block main %}
<table>{% for k, v in facts %}<tr><th>{{ k }}</th><td>{{ v }}</td></tr>{% endfor %}</table>
<h2>Accuracy</h2>
{% for d in diverged %}<p class="note verdict-fails">{{ d }}</p>{% endfor %}
<table><tr><th>member</th><th>held-out accuracy (sampled)</th><th>held-out loss (sampled)</th></tr>
{% for row in rows %}<tr>{% for v in row %}<td class="num">{{ v }}</td>{% endfor %}</tr>{% endfor %}
</table>
<p class="note">Sampled: the metrics logged at the end of training, on {{ n_eval }} held-out
images.</p>
{% if curves_img %}<h2>Training curves</h2>
<figure><img class="fig" src="{{ curves_img }}" alt="training curves"></figure>{% endif %}
{% endblock %}
"""


def _templates() -> dict[str, str]:
    from toylab.viz._templates import MEMBER_NAV

    return {"conv_index": CONV_INDEX + MEMBER_NAV + "{% endblock %}\n",
            "conv_channel": CONV_CHANNEL, "conv_run": CONV_RUN}  # fmt: skip
