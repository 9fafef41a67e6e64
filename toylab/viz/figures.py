"""More figures, all in the Display pattern: ``from_*`` computes, ``.plot(ax=None)`` draws.

* :class:`TuningCurveDisplay` -- a neuron's response along a 1-D sweep, exact vs sampled;
* :class:`ActivationDistributionDisplay` -- the exact distribution of a neuron's value
  (bin masses, or a CDF) against a sampled histogram;
* :class:`TrainingDynamicsDisplay` -- a neuron's map at every checkpoint, as small
  multiples (:meth:`~TrainingDynamicsDisplay.plot`) or an animated GIF
  (:meth:`~TrainingDynamicsDisplay.save_gif`);
* :class:`TrainingCurvesDisplay` -- logged metrics per member (``run.metrics``);
* :class:`CircuitDisplay` -- an MLP as a diagram: neurons as nodes (layers as columns),
  weights as edges coloured by sign and widened by magnitude, optional names;

A claim's verdict over a neuron map, with its counterexample, is
:class:`toylab.viz.verdicts.CounterexampleDisplay` (built from the claim's result).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from toylab._errors import ToylabError
from toylab.network import as_network
from toylab.viz.maps import CLASS_COLORS, CMAP, NeuronMapDisplay, symmetric_norm

__all__ = [
    "ActivationDistributionDisplay",
    "CircuitDisplay",
    "TrainingCurvesDisplay",
    "TrainingDynamicsDisplay",
    "TuningCurveDisplay",
]

EXACT_COLOR = "#b2182b"  # the red end of CMAP: exact results
SAMPLED_COLOR = "#2166ac"  # the blue end: sampled estimates


def _axes(ax: Any, figsize: tuple[float, float]) -> Any:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=figsize)
    return ax


def _array(where: str, name: str, value: Any, ndim: int | None = None) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if ndim is not None and arr.ndim != ndim:
        raise ToylabError(f"{where}: {name} must be a {ndim}-D array, got shape {arr.shape}.")
    return arr


@dataclasses.dataclass
class TuningCurveDisplay:
    """A neuron's response along a 1-D parameter ``t`` (an angle, a position along a
    line, a radius...): the exact curve and, optionally, a sampled one with its
    standard error band."""

    t: np.ndarray
    exact: np.ndarray | None = None
    sampled: np.ndarray | None = None
    sampled_err: np.ndarray | None = None
    neuron: str = ""
    xlabel: str = "t"
    ylabel: str = "activation"

    @classmethod
    def from_arrays(
        cls,
        t: Any,
        exact: Any = None,
        sampled: Any = None,
        *,
        sampled_err: Any = None,
        neuron: str = "",
        xlabel: str = "t",
        ylabel: str = "activation",
    ) -> TuningCurveDisplay:
        where = "TuningCurveDisplay.from_arrays"
        tt = _array(where, "t", t, 1)
        if exact is None and sampled is None:
            raise ToylabError(f"{where}: give exact, sampled or both (got neither).")
        arrs = {}
        for name, v in (("exact", exact), ("sampled", sampled), ("sampled_err", sampled_err)):
            if v is not None:
                arrs[name] = _array(where, name, v, 1)
                if arrs[name].shape != tt.shape:
                    raise ToylabError(
                        f"{where}: {name} must have the shape of t {tt.shape}, got "
                        f"{arrs[name].shape}."
                    )
        return cls(tt, neuron=neuron, xlabel=xlabel, ylabel=ylabel, **arrs)

    @classmethod
    def from_model(
        cls,
        model: Any,
        neuron: str,
        points: Any,
        t: Any,
        *,
        sampled: Any = None,
        sampled_err: Any = None,
        xlabel: str = "t",
    ) -> TuningCurveDisplay:
        """The exact response of ``neuron`` at the sweep's ``points`` ``(n, d)`` (a forward
        pass: every point is evaluated exactly), with an optional sampled estimate."""
        import jax.numpy as jnp

        from toylab.models import activations
        from toylab.neurons import resolve

        nid = resolve(neuron, model.widths)
        acts = activations(model, jnp.asarray(np.asarray(points), jnp.float32))
        exact = np.asarray(acts[nid.key])[:, nid.unit]
        return cls.from_arrays(
            t, exact, sampled, sampled_err=sampled_err, neuron=str(nid), xlabel=xlabel
        )

    def plot(self, ax: Any = None) -> TuningCurveDisplay:
        ax = _axes(ax, (5.5, 3.8))
        lines = []
        if self.sampled is not None:
            if self.sampled_err is not None:
                ax.fill_between(self.t, self.sampled - 2 * self.sampled_err,
                                self.sampled + 2 * self.sampled_err, color=SAMPLED_COLOR,
                                alpha=0.2, lw=0, label="sampled ± 2 s.e.")  # fmt: skip
            lines += ax.plot(self.t, self.sampled, "o", ms=4, color=SAMPLED_COLOR,
                             label="sampled")  # fmt: skip
        if self.exact is not None:
            lines += ax.plot(self.t, self.exact, "-", lw=2.2, color=EXACT_COLOR, label="exact")
        ax.axhline(0.0, color="0.6", lw=0.8, zorder=0)
        ax.set_xlabel(self.xlabel, fontsize=12)
        ax.set_ylabel(self.ylabel, fontsize=12)
        ax.set_title(f"tuning curve {self.neuron}".strip(), fontsize=13)
        ax.tick_params(labelsize=10)
        ax.legend(fontsize=10, framealpha=0.85)
        self.ax_, self.lines_ = ax, lines
        return self


@dataclasses.dataclass
class ActivationDistributionDisplay:
    """The distribution of a neuron's value under the data: exact bin masses (bars) or an
    exact CDF (line, on a twin axis) against a sampled histogram (step line).

    ``edges`` are ``B + 1`` bin edges; ``masses`` the exact probability of each bin;
    ``atom`` an exact point mass (e.g. ``P(a = 0)`` for a ReLU) drawn as a spike at
    ``atom_at``; ``samples`` raw sampled values, histogrammed on the same bins."""

    edges: np.ndarray
    masses: np.ndarray | None = None
    cdf_x: np.ndarray | None = None
    cdf: np.ndarray | None = None
    samples: np.ndarray | None = None
    atom: float | None = None
    atom_at: float = 0.0
    neuron: str = ""

    @classmethod
    def from_arrays(
        cls,
        edges: Any,
        masses: Any = None,
        *,
        samples: Any = None,
        cdf_x: Any = None,
        cdf: Any = None,
        atom: float | None = None,
        atom_at: float = 0.0,
        neuron: str = "",
    ) -> ActivationDistributionDisplay:
        where = "ActivationDistributionDisplay.from_arrays"
        e = _array(where, "edges", edges, 1)
        if len(e) < 2 or np.any(np.diff(e) <= 0):
            raise ToylabError(f"{where}: edges must be >= 2 increasing values, got {e!r}.")
        m = None if masses is None else _array(where, "masses", masses, 1)
        if m is not None and m.shape != (len(e) - 1,):
            raise ToylabError(
                f"{where}: masses must have one value per bin ({len(e) - 1}), got {m.shape}."
            )
        if (cdf_x is None) != (cdf is None):
            raise ToylabError(f"{where}: give cdf_x and cdf together.")
        return cls(
            e,
            m,
            None if cdf_x is None else _array(where, "cdf_x", cdf_x, 1),
            None if cdf is None else _array(where, "cdf", cdf, 1),
            None if samples is None else _array(where, "samples", samples).ravel(),
            None if atom is None else float(atom),
            float(atom_at),
            neuron,
        )

    def plot(self, ax: Any = None) -> ActivationDistributionDisplay:
        ax = _axes(ax, (5.5, 3.8))
        widths = np.diff(self.edges)
        if self.masses is not None:
            ax.bar(self.edges[:-1], self.masses / widths, width=widths, align="edge",
                   color=EXACT_COLOR, alpha=0.45, edgecolor=EXACT_COLOR, lw=0.6,
                   label="exact")  # fmt: skip
        if self.samples is not None and len(self.samples):
            counts, _ = np.histogram(self.samples, bins=self.edges)
            dens = counts / len(self.samples) / widths
            ax.stairs(dens, self.edges, color=SAMPLED_COLOR, lw=1.8,
                      label=f"sampled (n={len(self.samples)})")  # fmt: skip
        if self.atom is not None:
            top = ax.get_ylim()[1] if ax.has_data() else 1.0
            ax.vlines([self.atom_at], 0, top, color=EXACT_COLOR, lw=3)
            ax.annotate(f"P(a={self.atom_at:g}) = {self.atom:.3f}", (self.atom_at, top),
                        xytext=(6, -14), textcoords="offset points", fontsize=10,
                        color=EXACT_COLOR)  # fmt: skip
        if self.cdf is not None and self.cdf_x is not None:
            ax2 = ax.twinx()
            ax2.plot(self.cdf_x, self.cdf, "-", color="k", lw=1.6, label="exact CDF")
            ax2.set_ylim(0, 1.02)
            ax2.set_ylabel("CDF", fontsize=11)
            self.ax_cdf_ = ax2
        ax.set_xlabel("activation", fontsize=12)
        ax.set_ylabel("density", fontsize=12)
        ax.set_title(f"activation distribution {self.neuron}".strip(), fontsize=13)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=10, framealpha=0.85)
        self.ax_ = ax
        return self


@dataclasses.dataclass
class TrainingDynamicsDisplay:
    """One neuron's map at every checkpoint of one member (``run.checkpoint_steps``).

    Each frame has its own symmetric colour scale (so the shape is visible early, when
    values are small); ``vmax[i]`` is written in each frame's title."""

    neuron: str
    steps: list[int]
    xx: np.ndarray
    yy: np.ndarray
    frames: np.ndarray  # (num_steps, num, num)
    member: int = 0
    label: str | None = None  # the member's name, e.g. "seed 0, learning_rate=0.01"

    @classmethod
    def from_run(
        cls,
        run: Any,
        neuron: str,
        *,
        member: int = 0,
        steps: Sequence[int] | None = None,
        num: int = 80,
    ) -> TrainingDynamicsDisplay:
        from toylab.neurons import resolve
        from toylab.viz.maps import _box2d, grid_values

        steps = list(run.checkpoint_steps if steps is None else steps)
        if not steps:
            raise ToylabError(
                f"TrainingDynamicsDisplay.from_run: run {str(run.path)!r} has no checkpoints."
            )
        box = _box2d(run.dist_of(member))
        frames = []
        nid = None
        xx = yy = None
        for step in steps:
            model = run.model(member, step)
            nid = resolve(neuron, model.widths)
            xx, yy, acts = grid_values(model, box, num)
            frames.append(acts[nid.key][..., nid.unit])
        assert xx is not None and yy is not None
        label = run.member_label(member) if hasattr(run, "member_label") else None
        return cls(str(nid), steps, xx, yy, np.stack(frames), member, label)

    def _draw(self, ax: Any, i: int, small: bool) -> Any:
        disp = NeuronMapDisplay(self.neuron, self.xx, self.yy, self.frames[i],
                                title=f"step {self.steps[i]}")  # fmt: skip
        return disp.plot(ax, colorbar=False, small=small)

    def plot(self, fig: Any = None, *, ncols: int | None = None) -> TrainingDynamicsDisplay:
        """Small multiples, one panel per checkpoint."""
        import matplotlib.pyplot as plt

        n = len(self.steps)
        ncols = ncols or min(n, 5)
        nrows = -(-n // ncols)
        if fig is None:
            fig = plt.figure(figsize=(2.2 * ncols, 2.3 * nrows + 0.5))
        axes = fig.subplots(nrows, ncols, squeeze=False)
        for k, ax in enumerate(axes.ravel()):
            if k < n:
                self._draw(ax, k, small=True)
                vmax = float(np.abs(self.frames[k]).max())
                ax.set_title(f"step {self.steps[k]}\n|a| ≤ {vmax:.2g}", fontsize=9)
            else:
                ax.axis("off")
        who = f"member {self.member}" + (f", {self.label}" if self.label else "")
        fig.suptitle(f"{self.neuron} ({who}) during training", fontsize=12)
        fig.tight_layout()
        self.figure_, self.axes_ = fig, axes
        return self

    def save_gif(self, path: Any, *, fps: int = 2, dpi: int = 70) -> Any:
        """Write an animated GIF (one frame per checkpoint) with Pillow; returns ``path``."""
        from matplotlib.animation import FuncAnimation, PillowWriter
        from matplotlib.figure import Figure

        fig = Figure(figsize=(4.2, 3.8))
        ax = fig.subplots()
        vmax0 = max(float(np.abs(self.frames[0]).max()), 1e-12)
        first = self._draw(ax, 0, small=False)
        im = first.image_
        im.set_norm(symmetric_norm(self.frames[0]) if vmax0 > 0 else None)

        def update(i: int) -> list:
            im.set_data(self.frames[i])
            im.set_norm(symmetric_norm(self.frames[i]))
            ax.set_title(f"{self.neuron}  step {self.steps[i]}", fontsize=12)
            return [im]

        anim = FuncAnimation(fig, update, frames=len(self.steps), blit=False)
        anim.save(str(path), writer=PillowWriter(fps=fps), dpi=dpi)
        return path


#: most members a training-curve legend names (more: one line each, no legend)
MAX_LEGEND = 8


@dataclasses.dataclass
class TrainingCurvesDisplay:
    """Logged metrics (``run.metrics``: ``{"step": s, name: per-member values}``) against
    step, one line per member, one panel per metric; ``bayes`` draws the Bayes-optimal
    accuracy as a reference on the accuracy panel. ``labels`` name the members in the
    legend (default ``member 0``, ...; e.g. ``run.member_label(m)`` for a sweep); with more
    than :data:`MAX_LEGEND` members the legend is left out and the title says so."""

    steps: np.ndarray
    series: dict[str, np.ndarray]  # name -> (num_records, num_members)
    bayes: float | None = None
    labels: tuple[str, ...] | None = None

    @classmethod
    def from_metrics(
        cls,
        metrics: Sequence[Mapping[str, Any]],
        *,
        names: Sequence[str] = ("loss", "accuracy"),
        bayes: float | None = None,
        labels: Sequence[str] | None = None,
    ) -> TrainingCurvesDisplay:
        recs = [r for r in metrics if "step" in r]
        steps = np.array([int(r["step"]) for r in recs])
        series = {}
        for name in names:
            rows = [np.atleast_1d(np.asarray(r[name], np.float64)) for r in recs if name in r]
            if rows and len(rows) == len(recs):
                series[name] = np.stack(rows)
        return cls(steps, series, bayes, None if labels is None else tuple(labels))

    def plot(self, fig: Any = None) -> TrainingCurvesDisplay:
        import matplotlib.pyplot as plt

        n = max(len(self.series), 1)
        if fig is None:
            fig = plt.figure(figsize=(4.6 * n, 3.6))
        axes = fig.subplots(1, n, squeeze=False)[0]
        for ax, (name, vals) in zip(axes, self.series.items(), strict=False):
            many = vals.shape[1] > MAX_LEGEND
            for m in range(vals.shape[1]):
                label = self.labels[m] if self.labels and m < len(self.labels) else f"member {m}"
                ax.plot(self.steps, vals[:, m], lw=1.6, label=None if many else label,
                        color=CLASS_COLORS[m % len(CLASS_COLORS)])  # fmt: skip
            if name == "accuracy" and self.bayes is not None:
                ax.axhline(self.bayes, color="m", ls="--", lw=1.4, label="Bayes-optimal")
            finite = vals[np.isfinite(vals)]
            if name == "loss" and finite.size and np.all(finite > 0):
                ax.set_yscale("log")
            ax.set_xlabel("step", fontsize=11)
            ax.set_title(name + (f" ({vals.shape[1]} members)" if many else ""), fontsize=12)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=8, framealpha=0.85)
        if not self.series:
            axes[0].text(0.5, 0.5, "no metrics logged", ha="center", va="center")
            axes[0].axis("off")
        fig.tight_layout()
        self.figure_, self.axes_ = fig, axes
        return self


@dataclasses.dataclass
class CircuitDisplay:
    """An MLP as a diagram: one column per layer (input, hidden_0, ..., output), one node per
    neuron, one edge per weight (red positive, blue negative, width ∝ |w|); edges with
    ``|w| < threshold * max|w|`` are left out. ``labels`` names neurons by canonical
    address (``{"hidden_0:3": "left edge"}``)."""

    weights: list[np.ndarray]  # weights[k]: (fan_in, fan_out)
    labels: dict[str, str] = dataclasses.field(default_factory=dict)
    layer_names: list[str] = dataclasses.field(default_factory=list)
    threshold: float = 0.05
    title: str = "circuit"

    @classmethod
    def from_model(
        cls,
        model: Any,
        labels: Mapping[str, str] | None = None,
        *,
        threshold: float = 0.05,
        title: str = "circuit",
    ) -> CircuitDisplay:
        layers = as_network(model, "CircuitDisplay.from_model").untied().dense_layers()
        return cls.from_weights([w for w, _ in layers], labels, threshold=threshold, title=title)

    @classmethod
    def from_weights(
        cls,
        weights: Sequence[Any],
        labels: Mapping[str, str] | None = None,
        *,
        threshold: float = 0.05,
        title: str = "circuit",
    ) -> CircuitDisplay:
        ws = [_array("CircuitDisplay.from_weights", f"weights[{k}]", w, 2)
              for k, w in enumerate(weights)]  # fmt: skip
        for k in range(1, len(ws)):
            if ws[k].shape[0] != ws[k - 1].shape[1]:
                raise ToylabError(
                    f"CircuitDisplay.from_weights: weights[{k}] has fan-in {ws[k].shape[0]} but "
                    f"weights[{k - 1}] has fan-out {ws[k - 1].shape[1]}; shapes must chain."
                )
        names = ["input"] + [f"hidden_{k}" for k in range(len(ws) - 1)] + ["output"]
        return cls(ws, dict(labels or {}), names, threshold, title)

    def positions(self) -> dict[str, tuple[float, float]]:
        """Node address -> (x, y) in the diagram."""
        widths = [self.weights[0].shape[0]] + [w.shape[1] for w in self.weights]
        pos = {}
        for c, (name, n) in enumerate(zip(self.layer_names, widths, strict=True)):
            for u in range(n):
                pos[f"{name}:{u}"] = (float(c), (n - 1) / 2 - u)
        return pos

    def plot(self, ax: Any = None) -> CircuitDisplay:
        from matplotlib.collections import LineCollection

        widths = [self.weights[0].shape[0]] + [w.shape[1] for w in self.weights]
        ax = _axes(ax, (1.9 * len(widths) + 1.5, 0.55 * max(widths) + 1.6))
        pos = self.positions()
        wmax = max(float(np.abs(w).max()) for w in self.weights) or 1.0
        import matplotlib

        cmap = matplotlib.colormaps[CMAP]
        segs, colors, lws = [], [], []
        for k, w in enumerate(self.weights):
            for i, j in zip(*np.nonzero(np.abs(w) >= self.threshold * wmax), strict=True):
                a = pos[f"{self.layer_names[k]}:{i}"]
                b = pos[f"{self.layer_names[k + 1]}:{j}"]
                segs.append([a, b])
                v = w[i, j] / wmax
                # keep small weights visible: start 15% away from the white centre
                colors.append(cmap(0.5 + float(np.sign(v)) * (0.15 + 0.35 * min(abs(v), 1.0))))
                lws.append(0.4 + 4.0 * abs(float(v)))
        edges = LineCollection(segs, colors=colors, linewidths=lws, alpha=0.85, zorder=1)
        ax.add_collection(edges)
        xs = np.array([p[0] for p in pos.values()])
        ys = np.array([p[1] for p in pos.values()])
        named = np.array([a in self.labels for a in pos])
        ax.scatter(xs[~named], ys[~named], s=220, color="white", edgecolors="k", lw=1.2, zorder=3)
        if named.any():
            ax.scatter(xs[named], ys[named], s=260, color="gold", edgecolors="k", lw=1.4,
                       zorder=3)  # fmt: skip
        texts = []
        for addr, (x, y) in pos.items():
            unit = addr.rsplit(":", 1)[1]
            texts.append(ax.text(x, y, unit, ha="center", va="center", fontsize=9, zorder=4))
            if addr in self.labels:
                texts.append(ax.text(x, y - 0.38, self.labels[addr], ha="center", va="top",
                                     fontsize=10, zorder=4,
                                     bbox={"boxstyle": "round,pad=0.2", "fc": "white",
                                           "ec": "0.7", "alpha": 0.9}))  # fmt: skip
        top = max(widths) / 2
        for c, name in enumerate(self.layer_names):
            ax.text(c, top + 0.25, name, ha="center", va="bottom", fontsize=11, weight="bold")
        ax.set_xlim(-0.6, len(widths) - 0.4)
        ax.set_ylim(-top - 0.7, top + 0.9)
        ax.axis("off")
        ax.set_title(self.title, fontsize=13)
        self.ax_, self.edges_, self.texts_ = ax, edges, texts
        return self
