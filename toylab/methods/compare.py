"""Every method on every hidden neuron, each scored against the exact answer.

One row per (member, neuron, method) with the method's sampled answer, the exact
counterpart, their error, the cost and whether the method **misleads**:

=====================  ===========================================================
method                 misleads when
=====================  ===========================================================
feature_visualization  the best start misses the exact max by > 5% of the range
dataset_examples       the top example lies below the exact 0.99-quantile
sweep                  the sampled polyline is off the exact curve by > 5% of the
                       neuron's range somewhere on the segment
attribution            Riemann IG is off the exact IG by > 5% of |f(x) - f(x')|
                       (plus 1e-3 of the range)
ablation (zero)        the exact change in accuracy lies outside the sampled 95% CI
selectivity            the sampled polysemanticity flag differs from the exact one
joint_tuning           for one of the top ``num_rotated`` dataset examples rotated
                       about the domain centre, the sampled peak angle is more than
                       one angular step (``2 pi / num_angles``) from the exact peak
                       *and* the exact curve there is > 5% of the neuron's range
                       below its peak (a flat or plateau-topped curve, whose peak
                       angle is ill-defined, does not mislead)
=====================  ===========================================================

The joint-tuning row reports the top example's sampled and exact peak angles
(radians) and, as ``error``, the largest wrapped peak-angle error over the
rotated examples; the rotated points of every member, neuron and example are one
vmapped forward pass, the exact curves (closed-form circle pieces) a loop.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
from pathlib import Path
from typing import Any

import jax
import numpy as np

from toylab.methods._core import Net, as_nets, flat_index, hidden_neurons
from toylab.methods.attribution import attribution
from toylab.methods.examples import sample_values, score_examples
from toylab.methods.featureviz import run_ascent, score_ascent
from toylab.methods.selectivity import score_selectivity
from toylab.methods.sweeps import (
    _sample,
    path_points,
    random_line,
    rotated_points,
    score_joint,
    score_sweep,
)

__all__ = ["CompareConfig", "CompareResult", "compare", "compare_run", "report_lines"]

METHODS = (
    "feature_visualization",
    "dataset_examples",
    "sweep",
    "attribution",
    "ablation",
    "selectivity",
    "joint_tuning",
)
FIELDS = ("member", "neuron", "method", "score", "sampled", "exact", "error", "num_forward",
          "num_backward", "misleads", "detail")  # fmt: skip


@dataclasses.dataclass(frozen=True)
class CompareConfig:
    """Budgets of every method in :func:`compare` (``quick()`` halves most of them)."""

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

    @classmethod
    def quick(cls) -> CompareConfig:
        return cls(num_starts=16, num_steps=60, num_samples=512, num_coverage=4096,
                   num_points=32, ig_steps=16, ablation_samples=1024, num_rotated=1,
                   num_angles=16)  # fmt: skip


@dataclasses.dataclass(frozen=True, eq=False)
class CompareResult:
    """Rows (dicts with :data:`FIELDS`) and a summary per method.

    ``summary[method] = {"rows", "misleads", "rate", "neurons"}`` where ``neurons``
    lists ``"m{member}/{neuron}"`` of the misleading rows; ``summary["unreachable"]``
    counts neurons whose top 5% the data almost never reaches (expected < 1 sample
    among ``num_samples``, from the exact CDF).
    """

    rows: tuple[dict[str, Any], ...]
    summary: dict[str, Any]
    config: CompareConfig
    seconds: float
    tier: str = "sampled"

    def to_csv(self) -> str:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(FIELDS))
        w.writeheader()
        for r in self.rows:
            w.writerow({k: r[k] for k in FIELDS})
        return buf.getvalue()

    def to_json(self) -> dict[str, Any]:
        def clean(v: Any) -> Any:
            if isinstance(v, float) and not math.isfinite(v):
                return None
            return v

        return {
            "config": dataclasses.asdict(self.config),
            "seconds": self.seconds,
            "summary": self.summary,
            "rows": [{k: clean(v) for k, v in r.items()} for r in self.rows],
        }


def _row(member: int, neuron: str, method: str, score: str, sampled: float, exact: float,
         error: float, nf: int, nb: int, misleads: bool, detail: str = "") -> dict[str, Any]:  # fmt: skip
    return {"member": member, "neuron": neuron, "method": method, "score": score,
            "sampled": float(sampled), "exact": float(exact), "error": float(error),
            "num_forward": int(nf), "num_backward": int(nb), "misleads": bool(misleads),
            "detail": detail}  # fmt: skip


def _compare_net(net: Net, dist: Any, key: jax.Array, cfg: CompareConfig) -> list[dict[str, Any]]:
    neurons = hidden_neurons(net.widths)
    flats = [flat_index("compare", net.widths, n)[1] for n in neurons]
    k_fv, k_de, k_sw = jax.random.split(key, 3)
    rows: list[dict[str, Any]] = []
    # feature visualization: one program for all members x neurons x starts
    st, en, va = run_ascent(net, dist, flats, key=k_fv, num_starts=cfg.num_starts,
                            num_steps=cfg.num_steps, learning_rate=None, optimizer="adam",
                            l2=0.0, center=None, budget=None)  # fmt: skip
    # dataset examples and selectivity share one sample; coverage uses another
    total = cfg.num_samples + cfg.num_coverage + cfg.ablation_samples
    big = dist.sample(k_de, total)  # one draw (one compiled sampler), split three ways
    xs_all = np.asarray(big.x, np.float64)
    comp_all = np.asarray(big.latent["component"]) if isinstance(big.latent, dict) else None
    n1, n2 = cfg.num_samples, cfg.num_samples + cfg.num_coverage
    x, cover, x_ab = xs_all[:n1], xs_all[n1:n2], xs_all[n2:]
    y_ab = np.asarray(big.y)[n2:]
    vals_all = sample_values(net, np.concatenate([x, x_ab]))
    vals = vals_all[:, :n1]
    sel_vals, sel_comp = vals_all[:, n1:], (comp_all[n2:] if comp_all is not None else None)
    abl = _zero_ablations(net, dist, flats, neurons, x_ab, y_ab)
    line = random_line(dist, k_sw)
    t = np.linspace(0.0, 1.0, cfg.num_points)
    pts = path_points(line, t)
    sw_vals = _sample(net, np.broadcast_to(pts, (net.num_members, *pts.shape)))
    tol_ab = 1.0 / cfg.ablation_samples  # the resolution of a sampled accuracy
    # joint tuning: top examples of every (member, neuron) rotated about the centre
    centre = 0.5 * (np.asarray(dist.domain.low, np.float64) + np.asarray(dist.domain.high))
    angles = 2 * math.pi * np.arange(cfg.num_angles) / cfg.num_angles
    k_rot = min(cfg.num_rotated, len(x))
    tops = np.stack([x[np.argsort(-vals[:, :, f], axis=1, kind="stable")[:, :k_rot]]
                     for f in flats], axis=1)  # (M, J, k, 2)  # fmt: skip
    jt_vals = _sample(net, rotated_points(centre, tops, angles))  # (M, J, k, a, F)
    ig_x = x[:1, :]  # the first data sample, attributed against the origin
    for j, (neuron, flat) in enumerate(zip(neurons, flats, strict=True)):
        att = attribution(net.models if net.ensemble else net.models[0], neuron, ig_x[0],
                          num_steps=cfg.ig_steps)  # fmt: skip
        att_t = att if isinstance(att, tuple) else (att,)
        for m in range(net.num_members):
            fv = score_ascent(net, m, dist, neuron, st[m, j], en[m, j], va[m, j], rtol=0.01,
                              radius=None, num_steps=cfg.num_steps)  # fmt: skip
            rng = max(fv.exact_max - fv.exact_min, 1e-12)
            rows.append(_row(m, neuron, "feature_visualization", "best value", fv.best_value,
                             fv.exact_max, fv.gap, fv.num_forward, fv.num_backward, fv.misleads,
                             f"at_max={fv.fraction_at_max:.2f} found={fv.num_found}/"
                             f"{fv.num_local_maxima} dist={fv.distance:.3g}"))  # fmt: skip
            de = score_examples(net, m, dist, neuron, x, vals[m, :, flat], cover,
                                num_examples=cfg.num_examples)  # fmt: skip
            rows.append(_row(m, neuron, "dataset_examples", "top value", de.top_value,
                             de.exact_max, de.gap, de.num_forward, 0, de.misleads,
                             f"top_quantile={de.quantiles[0]:.4f} q99={de.q99:.4g} "
                             f"expected_top={de.expected_top:.3g} coverage={de.coverage:.2f} "
                             f"unreachable={de.unreachable}"))  # fmt: skip
            sw = score_sweep(net, m, neuron, line, t, sw_vals[m, :, flat])
            rows.append(_row(m, neuron, "sweep", "max error", sw.max_error, 0.0, sw.max_error,
                             sw.num_forward, 0, sw.max_error > 0.05 * rng,
                             f"breakpoints={len(sw.breakpoints)} missed={sw.missed_breakpoints} "
                             f"l2={sw.l2_error:.3g}"))  # fmt: skip
            a = att_t[m]
            scale = abs(float(a.exact_integrated_gradients.sum()))
            rows.append(_row(m, neuron, "attribution", "IG sum", a.integrated_gradients.sum(),
                             a.exact_integrated_gradients.sum(), a.ig_error, a.num_forward,
                             a.num_backward, a.ig_error > 0.05 * scale + 1e-3 * rng,
                             f"pieces={a.num_pieces} completeness_gap={a.completeness_gap:.3g} "
                             f"exact_gap={a.exact_completeness_gap:.1e}"))  # fmt: skip
            ab = abl[j][m]
            exact_delta = (ab.exact_accuracy_edited or 0.0) - ab.exact_accuracy
            lo, hi = ab.delta_accuracy_ci
            rows.append(_row(m, neuron, "ablation", "delta accuracy (zero)", ab.delta_accuracy,
                             exact_delta, abs(ab.delta_accuracy - exact_delta), ab.num_forward, 0,
                             not (lo - tol_ab <= exact_delta <= hi + tol_ab),
                             f"delta_loss={ab.delta_loss:.3g} (sampled)"))  # fmt: skip
            jt = score_joint(net, m, neuron, centre, tops[m, j], angles,
                             jt_vals[m, j, :, :, flat], num_forward=k_rot * cfg.num_angles)  # fmt: skip
            loss = (jt.exact_peak_value - jt.value_at_sampled_peak) / rng
            step = 2 * math.pi / cfg.num_angles
            bad = bool(np.any((jt.peak_angle_error > step * (1 + 1e-9)) & (loss > 0.05)))
            rows.append(_row(m, neuron, "joint_tuning", "peak angle", jt.sampled_peak_angle[0],
                             jt.exact_peak_angle[0], jt.peak_angle_error.max(), jt.num_forward,
                             0, bad, f"examples={k_rot} value_loss={loss.max():.3g} "
                             f"max_error={jt.max_error.max():.3g}"))  # fmt: skip
            if sel_comp is not None:
                se = score_selectivity(net, m, dist, neuron, sel_vals[m, :, flat], sel_comp,
                                       threshold=0.25)  # fmt: skip
                rows.append(_row(m, neuron, "selectivity", "selectivity index", se.selectivity,
                                 se.exact_selectivity,
                                 abs(se.selectivity - se.exact_selectivity), se.num_forward, 0,
                                 se.misleads, f"polysemantic={se.exact_polysemantic}"))  # fmt: skip
    return rows


def _zero_ablations(net: Net, dist: Any, flats: list[int], neurons: list[str], x: np.ndarray,
                    y: np.ndarray) -> list[list[Any]]:  # fmt: skip
    """Zero ablation of each neuron: ``[neuron][member]`` :class:`EditResult` (one compiled
    program, vmapped over members; exact accuracy of each edited network)."""
    import jax.numpy as jnp

    from toylab.methods.ablation import _eval_program, _result, ablated_layers, exact_accuracy

    prog = _eval_program(net.acts)
    num_flat = sum(net.widths[k] for k in net.widths if k != "input")
    zeros = jnp.zeros((net.num_members, 1, num_flat), jnp.float32)
    xj = jnp.asarray(x, jnp.float32)
    out = []
    for neuron, flat in zip(neurons, flats, strict=True):
        mask = np.zeros(num_flat, bool)
        mask[flat] = True
        clean, patched, _ = prog(net.params, xj, jnp.asarray(mask), zeros)
        per = []
        for m in range(net.num_members):
            acc, cls = exact_accuracy(ablated_layers(net, m, {neuron: 0.0}), net.acts, dist)
            per.append(_result(f"zero {neuron}", float(net.exact(m, dist).accuracy), acc, cls,
                               np.asarray(clean[m], np.float64), np.asarray(patched[m], np.float64),
                               y, 2 * len(y)))  # fmt: skip
        out.append(per)
    return out


def _summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for method in METHODS:
        rs = [r for r in rows if r["method"] == method]
        bad = [f"m{r['member']}/{r['neuron']}" for r in rs if r["misleads"]]
        out[method] = {"rows": len(rs), "misleads": len(bad),
                       "rate": len(bad) / len(rs) if rs else 0.0, "neurons": bad}  # fmt: skip
    out["unreachable"] = sum(1 for r in rows if r["method"] == "dataset_examples"
                             and "unreachable=True" in r["detail"])  # fmt: skip
    return out


def compare(model: Any, dist: Any, *, key: jax.Array, budgets: CompareConfig | None = None
            ) -> CompareResult:  # fmt: skip
    """Run every method on every hidden neuron of ``model`` (or of each member of a list)."""
    import time

    t0 = time.perf_counter()
    cfg = budgets or CompareConfig()
    net = as_nets("compare", model)
    if not net.piecewise_linear:
        from toylab._errors import ToylabError

        raise ToylabError(
            f"compare: the exact answers need a piecewise-linear MLP (relu, leaky_relu, abs, "
            f"hardtanh, identity), got activations {list(net.acts)}. Use a relu-family model."
        )
    if type(dist).__name__ != "GaussianMixture" or getattr(dist, "dim", None) != 2:
        from toylab._errors import ToylabError

        raise ToylabError(
            f"compare: the methods' exact answers need a 2-D Gaussian mixture, got "
            f"{type(dist).__name__} (dim {getattr(dist, 'dim', '?')}). Use a run on a "
            "Gaussian-mixture distribution, or toylab.exact.analyze / finite_table directly."
        )
    rows = _compare_net(net, dist, key, cfg)
    return CompareResult(tuple(rows), _summary(rows), cfg, time.perf_counter() - t0)


def compare_run(run: Any, *, key: jax.Array, budgets: CompareConfig | None = None) -> CompareResult:
    """:func:`compare` on every member of a run; writes ``RUN/compare/compare.csv`` and
    ``compare.json`` atomically and returns the result (its ``summary`` says which
    methods mislead, on which neurons, how often)."""
    from toylab.runs.io import atomic_write_json, atomic_write_text

    res = compare(run.models(), run.dist, key=key, budgets=budgets)
    out = Path(run.path) / "compare"
    atomic_write_text(out / "compare.csv", res.to_csv())
    atomic_write_json(out / "compare.json", res.to_json())
    return res


def report_lines(result: CompareResult) -> list[str]:
    """A markdown section for the run report."""
    lines = [
        "## Sampled methods vs the exact answer",
        "",
        f"Every method on every hidden neuron ({result.seconds:.1f} s); "
        "see `compare/compare.csv` for every row.",
        "",
        "| method | rows | misleads | rate | where (first 6) |",
        "|---|---|---|---|---|",
    ]
    for method in METHODS:
        s = result.summary[method]
        where = ", ".join(s["neurons"][:6]) + (" ..." if len(s["neurons"]) > 6 else "")
        lines.append(f"| {method} | {s['rows']} | {s['misleads']} | {s['rate']:.0%} | {where} |")
    lines += [
        "",
        f"Neurons whose top 5% the data almost never reaches (exact CDF): "
        f"{result.summary['unreachable']}.",
        "",
    ]
    return lines
