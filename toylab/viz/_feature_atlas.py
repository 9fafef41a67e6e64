"""The atlas of a run of toy models of superposition: a page per feature (private).

:func:`toylab.viz.write_atlas` calls :func:`write_feature_atlas` for runs whose members are
toy models of superposition (``h = W x``, ``x' = [ReLU](Wᵀ h + b)``). Their unit of
interest is the feature ``"input:i"`` (column ``i`` of ``W``), not a hidden neuron: the
index shows every member's features with their exact metrics
(:func:`toylab.superposition.superposition_metrics`) and one figure per member (``WᵀW``
with the biases, the feature norms, the m = 2 embedding); each feature's page gives its
exact statistics, its embedding over the hidden dimensions and the features it shares its
dimensions with (``Ŵ_i·W_j``), linked; the run page the members' losses, ``D_i`` against
density and the training curves. Pages are plain HTML (no per-feature figure), so an
atlas of hundreds of features is written in seconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from toylab._progress import QUIET, Progress
from toylab.runs.io import atomic_write_bytes, atomic_write_json, atomic_write_text
from toylab.viz._output import png_bytes

__all__ = ["write_feature_atlas"]

MAX_SHARES = 12  # the features listed as sharing a feature's dimensions


def _verdict(r: Any, i: int) -> str:
    if not r.represented[i]:
        return "not represented"
    g = r.geometry[i]
    return f"represented ({g})" if g != "other" else "represented"


def _structure_of(r: Any, address: str) -> str:
    for s in r.structures:
        if address in s.features:
            others = [f for f in s.features if f != address]
            return s.name + (f" with {', '.join(others)}" if others else "")
    return "none"


def write_feature_atlas(
    run: Any,
    out: Path,
    *,
    members: Sequence[int],
    claims: Any = None,
    dpi: int = 80,
    progress: Progress = QUIET,
) -> Path:
    """Write the feature atlas of ``run`` into ``out`` (checked by the caller) and return the
    path of its ``index.html``. ``claims`` as in :func:`toylab.viz.write_atlas`, keyed by
    feature address."""
    from matplotlib.figure import Figure

    import toylab
    from toylab.superposition._report import density, member_metrics
    from toylab.viz.atlas import (
        _css,
        _field,
        _fmt,
        _jinja,
        _lookup,
        _signed,
        _template_dict,
        _weight_color,
        neuron_filename,
    )
    from toylab.viz.figures import TrainingCurvesDisplay
    from toylab.viz.superposition import DimensionalityDisplay, member_figure

    jinja2 = _jinja()
    env = jinja2.Environment(
        loader=jinja2.DictLoader(_template_dict()), autoescape=True, keep_trailing_newline=True
    )
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "atlas.json", {"written_by": f"toylab {toylab.__version__}",
                                           "run": str(run.path), "members": list(members)})  # fmt: skip
    (out / "img").mkdir(exist_ok=True)
    run_name = str(run.config.name)
    labels = {m: run.member_label(m) for m in members}
    results = dict(zip(members, member_metrics(run, members), strict=True))
    index_members = []
    for m in progress.iterate(members, "feature pages", unit="member"):
        r = results[m]
        dist = run.dist_of(m)
        n, hid = r.num_features, r.num_hidden
        mdir = out / f"member{m}"
        mdir.mkdir(exist_ok=True)
        fig = member_figure(r)
        atomic_write_bytes(out / "img" / f"member{m}.png", png_bytes(fig, dpi))
        unit = np.where(r.norms > 0, r.norms, 1.0)
        proj = r.interference / unit[:, None]  # proj[i, j] = Ŵ_i·W_j
        cos = proj / unit[None, :]
        wmax = float(np.abs(r.W).max()) or 1.0
        features = []
        for i in range(n):
            address = f"input:{i}"
            href = f"member{m}/{neuron_filename(address)}"
            features.append({"address": address, "href": href,
                             "represented": bool(r.represented[i]),
                             "norm": _fmt(r.norms[i], 2), "dim": _fmt(r.dimensionality[i], 2),
                             "geometry": r.geometry[i]})  # fmt: skip
        for i in range(n):
            address = f"input:{i}"
            order = [j for j in np.argsort(-np.abs(proj[i]), kind="stable") if j != i]
            scale = max(float(r.norms[i]), 1e-300)
            shares = [{"address": f"input:{j}", "href": neuron_filename(f"input:{j}"),
                       "text": _signed(proj[i, j]), "cos": _signed(cos[i, j], 3)
                       if r.norms[i] > 0 and r.norms[j] > 0 else "",
                       "color": _weight_color(proj[i, j], scale),
                       "bar": int(round(120 * min(abs(proj[i, j]) / scale, 1.0)))}
                      for j in order[:MAX_SHARES]]  # fmt: skip
            stats = [
                ("‖W_i‖ (norm)", _fmt(r.norms[i], 6)),
                ("represented", f"{'yes' if r.represented[i] else 'no'} (‖W_i‖ > {r.threshold:g})"),
                ("dimensionality D_i", _fmt(r.dimensionality[i], 6)),
                ("nearest fraction", _fmt(r.fractions[i], 4) if np.isfinite(r.fractions[i])
                 else f"none within {r.tol:g}"),
                ("geometry", r.geometry[i]),
                ("structure", _structure_of(r, address)),
                ("superposition Σ_{j≠i}(Ŵ_i·W_j)²", _fmt(r.superposition[i], 6)),
                ("output bias b_i", _signed(r.b[i], 6)),
                ("importance I_i", _fmt(dist.importance[i], 6)),
                ("activation probability p_i", _fmt(dist.probs[i], 6)),
            ]  # fmt: skip
            embedding = [{"address": f"hidden_0:{k}", "text": _signed(r.W[k, i]),
                          "color": _weight_color(r.W[k, i], wmax)} for k in range(hid)]  # fmt: skip
            page_claims = []
            for c in _lookup(claims, m, address) or []:
                holds = bool(_field(c, "holds"))
                verdict = _field(c, "verdict") or ("holds" if holds else "fails")
                page_claims.append({"statement": _field(c, "statement"), "holds": holds,
                                    "verdict": verdict, "tier": _field(c, "tier") or ""})  # fmt: skip
            nav = {k: {"address": f"input:{j}", "href": neuron_filename(f"input:{j}")}
                   for k, j in (("prev", i - 1), ("next", i + 1)) if 0 <= j < n}  # fmt: skip
            html = env.get_template("feature").render(
                css=_css(), run_name=run_name, member=m, label=labels[m], address=address,
                verdict=_verdict(r, i), stats=stats, embedding=embedding, shares=shares,
                claims=page_claims, prev=nav.get("prev"), next=nav.get("next"),
            )  # fmt: skip
            atomic_write_text(mdir / neuron_filename(address), html)
        structures = ", ".join(s.name for s in r.structures) or "none"
        summary = (f"n = {n} features in m = {hid} dimensions: {int(r.num_represented)} "
                   f"represented, D* = {_fmt(r.dimensions_per_feature)}, Σ D_i = "
                   f"{_fmt(r.sum_dimensionality)} (≤ m), structures: {structures}.")  # fmt: skip
        index_members.append({"member": m, "label": labels[m], "summary": summary,
                              "features": features, "figure": f"img/member{m}.png",
                              "embedding": hid == 2})  # fmt: skip

    # the run page: members' losses and metrics, D_i against density, training curves
    last = run.metrics[-1] if run.metrics else {}
    header = ["member", "density 1−S", "held-out loss (sampled)", "represented", "D*", "Σ D_i"]
    rows, densities = [], []
    for m in members:
        r = results[m]
        dens, uniform = density(run.dist_of(m))
        densities.append(dens)
        loss = float(np.asarray(last["loss"])[m]) if "loss" in last else None
        rows.append([f"{m} ({labels[m]})", _fmt(dens, 4) + ("" if uniform else " (mean)"),
                     _fmt(loss, 6), str(int(r.num_represented)),
                     _fmt(r.dimensions_per_feature), _fmt(r.sum_dimensionality)])  # fmt: skip
    dim_img = curves_img = None
    if len(set(densities)) > 1:
        fig = Figure(figsize=(7.0, 4.6), layout="constrained")
        DimensionalityDisplay.from_results(densities, [results[m] for m in members]).plot(
            fig.subplots()
        )
        atomic_write_bytes(out / "img" / "dimensionality.png", png_bytes(fig, dpi))
        dim_img = "img/dimensionality.png"
    if run.metrics:
        fig = Figure(figsize=(5.6, 3.6))
        TrainingCurvesDisplay.from_metrics(
            run.metrics, names=("loss",),
            labels=[f"member {m} ({run.member_label(m)})" for m in range(run.num_members)],
        ).plot(fig)  # fmt: skip
        atomic_write_bytes(out / "img" / "training.png", png_bytes(fig, dpi))
        curves_img = "img/training.png"
    cfg, man = run.config, run.manifest
    facts = [("name", run_name), ("distribution", str(cfg.distribution)),
             ("model", f"{cfg.model.kind}, hidden {list(cfg.model.hidden)}"),
             ("training", f"{cfg.train.optimizer}, lr {cfg.train.learning_rate}, "
                          f"{cfg.train.num_steps} steps, loss {cfg.train.loss}")]  # fmt: skip
    if cfg.sweep:
        facts.append(("sweep", f"{cfg.sweep.describe()} (every seed at every point)"))
    facts += [("status", f"{man.get('status')} at step {man.get('step')}"),
              ("parameters", str(getattr(run, "params_source", "") or "latest saved"))]  # fmt: skip
    diverged = getattr(run, "diverged", {})
    note = (f"The loss is sampled ({run.ensemble.num_eval} held-out samples); everything "
            "else is an exact function of the weights.")  # fmt: skip
    atomic_write_text(out / "run.html", env.get_template("feature_run").render(
        css=_css(), run_name=run_name, facts=facts, header=header, rows=rows, note=note,
        diverged=[diverged[m] for m in sorted(diverged) if m in members], dim_img=dim_img,
        curves_img=curves_img,
    ))  # fmt: skip
    index = out / "index.html"
    atomic_write_text(index, env.get_template("feature_index").render(
        css=_css(), run_name=run_name, members=index_members, threshold=f"{results[members[0]].threshold:g}" if members else "0.5",
    ))  # fmt: skip
    return index
