"""Figures of training dynamics, in the Display pattern (``from_*`` computes, ``plot`` draws).

* :class:`TrajectoryDisplay` -- a run's exact quantities against the step (log axis):
  accuracy (and the Bayes-optimal accuracy), linear regions, live units, how far the
  units' functions move between checkpoints;
* :class:`UnitQuantitiesDisplay` -- one member's units: firing probability, mean and
  distance from the previous checkpoint against the step;
* :class:`UnitTimelineDisplay` -- one member's units as rows: when each is alive, born,
  dead and settled;
* :class:`NeuronAnimationDisplay` -- a neuron's exact map (region boundaries, zero set,
  argmax from :func:`toylab.exact.analyze`) at every checkpoint, as small multiples or an
  animated GIF (:meth:`~NeuronAnimationDisplay.save_gif`; a GIF plays in a browser, in
  the atlas and in a notebook via ``IPython.display.Image``).

Steps are drawn on a symmetric-log axis (linear below step 1, logarithmic above), since
checkpoints are kept on a log scale and the first is step 0. The quantities come from a
:class:`toylab.dynamics.Trajectory`.
"""

from __future__ import annotations

import dataclasses
import io
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from toylab._errors import ToylabError
from toylab.viz.maps import CLASS_COLORS, NeuronMapDisplay

__all__ = [
    "NeuronAnimationDisplay",
    "TrajectoryDisplay",
    "UnitQuantitiesDisplay",
    "UnitTimelineDisplay",
]


def _step_axis(ax: Any, steps: Any) -> None:
    ax.set_xscale("symlog", linthresh=1.0, linscale=0.5)
    ax.set_xlim(min(0.0, float(steps[0])) - 0.1, float(steps[-1]) * 1.3 + 1)
    ax.set_xlabel("step (log scale; 0 at left)", fontsize=10)
    ax.grid(True, which="major", color="0.9", lw=0.6)


def _figure(fig: Any, size: tuple[float, float]) -> Any:
    """``fig`` (resized to ``size``) or a new pyplot figure of that size."""
    if fig is not None:
        fig.set_size_inches(*size)
        return fig
    import matplotlib.pyplot as plt

    return plt.figure(figsize=size)


def _color(i: int) -> str:
    return CLASS_COLORS[i % len(CLASS_COLORS)]


def _unit_color(u: int) -> Any:
    import matplotlib

    return matplotlib.colormaps["tab20"](u % 20)


@dataclasses.dataclass
class TrajectoryDisplay:
    """A run's exact quantities against the step, one line per member (see the module
    docstring); ``tier`` is the weakest tier of what is drawn."""

    steps: np.ndarray
    labels: list[str]
    accuracy: np.ndarray  # (M, T)
    bayes: np.ndarray  # (M,)
    num_regions: np.ndarray  # (M, T), -1: not applicable
    alive: np.ndarray  # (M, T) live units
    num_units: int
    median_distance: np.ndarray  # (M, T)
    train_accuracy: np.ndarray | None = None
    test_accuracy: np.ndarray | None = None
    tier: str = "exact"

    @classmethod
    def from_trajectory(cls, traj: Any, labels: Sequence[str] | None = None) -> TrajectoryDisplay:
        labels = list(labels) if labels is not None else [f"member {m}" for m in traj.members]
        with warnings.catch_warnings():  # a checkpoint with no finite distance: nan
            warnings.simplefilter("ignore", RuntimeWarning)
            med = np.nanmedian(np.where(np.isfinite(traj.distance), traj.distance, np.nan), -1)
        split = np.isfinite(traj.test_accuracy).any()
        return cls(
            traj.steps, labels, traj.accuracy, traj.bayes_accuracy, traj.num_regions,
            traj.alive.sum(-1), len(traj.neurons), med,
            traj.train_accuracy if split else None, traj.test_accuracy if split else None,
            traj.overall_tier,
        )  # fmt: skip

    def plot(self, fig: Any = None) -> TrajectoryDisplay:
        planar = bool((self.num_regions >= 0).any())
        panels = ["accuracy", *(["regions"] if planar else []), "alive", "distance"]
        fig = _figure(fig, (3.9 * len(panels), 3.7))
        axes = fig.subplots(1, len(panels), squeeze=False)[0]
        many = len(self.labels) > 8
        for ax, name in zip(axes, panels, strict=True):
            for i, label in enumerate(self.labels):
                kw = dict(color=_color(i), lw=1.5, marker="o", ms=3,
                          label=None if many else label)  # fmt: skip
                if name == "accuracy":
                    if self.test_accuracy is not None and self.train_accuracy is not None:
                        ax.plot(self.steps, self.train_accuracy[i], ls="-", **kw)
                        kw["label"] = None
                        ax.plot(self.steps, self.test_accuracy[i], ls="--", **kw)
                    else:
                        ax.plot(self.steps, self.accuracy[i], **kw)
                elif name == "regions":
                    ax.plot(self.steps, self.num_regions[i], **kw)
                elif name == "alive":
                    ax.plot(self.steps, self.alive[i], **kw)
                else:
                    ax.plot(self.steps[1:], self.median_distance[i, 1:], **kw)
            _step_axis(ax, self.steps)
        titles = {
            "accuracy": f"accuracy ({self.tier})"
            + ("\ntrain solid, test dashed" if self.test_accuracy is not None else ""),
            "regions": "linear regions of the domain",
            "alive": f"live hidden units (of {self.num_units})",
            "distance": "median unit distance\nfrom the previous checkpoint",
        }
        for ax, name in zip(axes, panels, strict=True):
            ax.set_title(titles[name], fontsize=10)
        bayes = self.bayes[np.isfinite(self.bayes)]
        if len(bayes):
            for b in np.unique(bayes):
                axes[0].axhline(b, color="m", ls=":", lw=1.3,
                                label="Bayes-optimal" if b == bayes[0] else None)  # fmt: skip
        axes[-1].set_yscale("log")
        from matplotlib.ticker import MaxNLocator

        axes[panels.index("alive")].yaxis.set_major_locator(MaxNLocator(integer=True))
        if axes[0].get_legend_handles_labels()[0]:
            axes[0].legend(fontsize=7, framealpha=0.85)
        fig.tight_layout()
        self.figure_, self.axes_ = fig, axes
        return self


@dataclasses.dataclass
class UnitQuantitiesDisplay:
    """One member's hidden units against the step: firing probability, mean, and the
    relative distance of each unit's function from the previous checkpoint (log scale,
    with the settling ``threshold``)."""

    steps: np.ndarray
    neurons: list[str]
    firing_probability: np.ndarray  # (T, U)
    mean: np.ndarray  # (T, U)
    distance: np.ndarray  # (T, U)
    threshold: float
    title: str = ""
    tier: str = "exact"

    @classmethod
    def from_trajectory(
        cls, traj: Any, member: int, *, threshold: float | None = None, title: str = ""
    ) -> UnitQuantitiesDisplay:
        from toylab.dynamics.trajectory import SETTLE_THRESHOLD

        i = traj.index_of(member)
        return cls(
            traj.steps, [str(n) for n in traj.neurons], traj.firing_probability[i],
            traj.mean[i], traj.distance[i],
            SETTLE_THRESHOLD if threshold is None else float(threshold),
            title or f"member {member}", traj.overall_tier,
        )  # fmt: skip

    def plot(self, fig: Any = None) -> UnitQuantitiesDisplay:
        fig = _figure(fig, (13.0, 3.6))
        axes = fig.subplots(1, 3, squeeze=False)[0]
        layers = sorted({n.split(":")[0] for n in self.neurons})
        styles = ["-", "--", ":", "-."]
        for u, name in enumerate(self.neurons):
            ls = styles[layers.index(name.split(":")[0]) % len(styles)]
            kw = dict(color=_unit_color(u), lw=1.2, ls=ls, label=name)
            axes[0].plot(self.steps, self.firing_probability[:, u], **kw)
            axes[1].plot(self.steps, self.mean[:, u], **kw)
            d = np.where(np.isfinite(self.distance[:, u]) & (self.distance[:, u] > 0),
                         self.distance[:, u], np.nan)  # fmt: skip
            axes[2].plot(self.steps[1:], d[1:], marker="o", ms=2.5, **kw)
        axes[2].axhline(self.threshold, color="k", ls=":", lw=1.2,
                        label=f"settling threshold {self.threshold:g}")  # fmt: skip
        axes[2].set_yscale("log")
        for ax, t in zip(axes, (f"firing probability P(a > 0) ({self.tier})",
                                f"mean E[a] ({self.tier})",
                                "distance from the previous checkpoint\n"
                                "E[(a_t − a_t')²] / Var(a_t')"), strict=True):  # fmt: skip
            _step_axis(ax, self.steps)
            ax.set_title(t, fontsize=10)
        if len(self.neurons) <= 16:
            axes[2].legend(fontsize=6, ncol=2, framealpha=0.85)
        fig.suptitle(self.title, fontsize=11)
        fig.tight_layout()
        self.figure_, self.axes_ = fig, axes
        return self


@dataclasses.dataclass
class UnitTimelineDisplay:
    """One member's hidden units as rows against the step: a bar where the unit is alive,
    ``^`` its birth, ``x`` its death, ``|`` where its function settles."""

    steps: np.ndarray
    neurons: list[str]
    alive: np.ndarray  # (T, U)
    births: np.ndarray  # (U,) step or -1
    deaths: np.ndarray
    settle: np.ndarray
    threshold: float
    title: str = ""

    @classmethod
    def from_trajectory(
        cls, traj: Any, member: int, *, threshold: float | None = None, title: str = ""
    ) -> UnitTimelineDisplay:
        from toylab.dynamics.trajectory import SETTLE_THRESHOLD

        thr = SETTLE_THRESHOLD if threshold is None else float(threshold)
        i = traj.index_of(member)
        return cls(
            traj.steps, [str(n) for n in traj.neurons], traj.alive[i], traj.births()[i],
            traj.deaths()[i], traj.settle_steps(thr)[i], thr, title or f"member {member}",
        )  # fmt: skip

    def plot(self, ax: Any = None) -> UnitTimelineDisplay:
        if ax is None:
            import matplotlib.pyplot as plt

            _, ax = plt.subplots(figsize=(7.5, 0.28 * len(self.neurons) + 1.6))
        x = self.steps.astype(np.float64)
        for u in range(len(self.neurons)):
            y = len(self.neurons) - 1 - u
            for t in range(len(x)):
                if self.alive[t, u]:
                    right = x[t + 1] if t + 1 < len(x) else x[t] * 1.3 + 1
                    ax.plot([x[t], right], [y, y], color="0.55", lw=5, solid_capstyle="butt")
            if self.births[u] >= 0:
                ax.plot(self.births[u], y, "^", color="#1b9e77", ms=7, zorder=3)
            if self.deaths[u] >= 0:
                ax.plot(self.deaths[u], y, "x", color="#d95f02", ms=8, mew=2, zorder=3)
            if self.settle[u] >= 0:
                ax.plot(self.settle[u], y, "|", color="k", ms=14, mew=2, zorder=4)
        ax.plot([], [], color="0.55", lw=5, label="alive")
        ax.plot([], [], "^", color="#1b9e77", label="birth (alive from here on)")
        ax.plot([], [], "x", color="#d95f02", mew=2, label="death (dead from here on)")
        ax.plot([], [], "|", color="k", mew=2, ms=10,
                label=f"settled (distance < {self.threshold:g} from here on)")  # fmt: skip
        ax.set_yticks(range(len(self.neurons)))
        ax.set_yticklabels(self.neurons[::-1], fontsize=7)
        ax.set_ylim(-0.8, len(self.neurons) - 0.2)
        _step_axis(ax, x)
        ax.set_title(self.title, fontsize=11)
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2,
                  frameon=False)  # fmt: skip
        self.ax_ = ax
        return self


@dataclasses.dataclass
class NeuronAnimationDisplay:
    """A neuron's exact map at every checkpoint: one :class:`~toylab.viz.NeuronMapDisplay`
    per frame, with the exact overlays of that checkpoint's analysis (region boundaries,
    the zero set of the pre-activation, the argmax over the domain). Colours come from a
    grid of forward passes, each frame on its own symmetric scale."""

    neuron: str
    steps: list[int]
    frames: list[NeuronMapDisplay]
    member: int = 0
    label: str | None = None

    @classmethod
    def from_analyses(
        cls,
        models: Sequence[Any],
        analyses: Sequence[Any],
        steps: Sequence[int],
        neuron: str,
        *,
        grids: Sequence[Any] | None = None,
        num: int = 80,
        member: int = 0,
        label: str | None = None,
    ) -> NeuronAnimationDisplay:
        """Frames from each checkpoint's model and :func:`toylab.exact.analyze` result;
        ``grids`` (one :func:`toylab.viz.grid_values` per checkpoint) share the forward
        passes between the neurons of one member."""
        where = "NeuronAnimationDisplay.from_analyses"
        if not (len(models) == len(analyses) == len(steps)) or not steps:
            raise ToylabError(
                f"{where}: models, analyses and steps must have one entry per checkpoint "
                f"(at least one), got {len(models)}, {len(analyses)}, {len(steps)}."
            )
        frames = []
        for q, (model, analysis, step) in enumerate(zip(models, analyses, steps, strict=True)):
            grid = grids[q] if grids is not None else None
            disp = NeuronMapDisplay.from_analysis(model, neuron, analysis, grid=grid, num=num)
            disp.title = f"step {step}"
            frames.append(disp)
        return cls(frames[0].neuron, [int(s) for s in steps], frames, member, label)

    @classmethod
    def from_run(
        cls,
        run: Any,
        neuron: str,
        *,
        member: int = 0,
        steps: Sequence[int] | None = None,
        num: int = 80,
    ) -> NeuronAnimationDisplay:
        """Analyse ``member`` at every checkpoint (``steps``, default all) of ``run``."""
        from toylab.exact import analyze

        steps = list(run.checkpoint_steps if steps is None else steps)
        dist = run.dist_of(member)
        models = [run.model(member, s) for s in steps]
        analyses = [analyze(m, dist) for m in models]
        return cls.from_analyses(models, analyses, steps, neuron, num=num, member=member,
                                 label=run.member_label(member))  # fmt: skip

    def _draw(self, ax: Any, i: int, small: bool) -> None:
        self.frames[i].plot(ax, colorbar=False, small=small)
        vmax = float(np.abs(self.frames[i].values).max())
        ax.set_title(f"{self.neuron}  step {self.steps[i]}  |a| ≤ {vmax:.2g}"
                     if not small else f"step {self.steps[i]}\n|a| ≤ {vmax:.2g}",
                     fontsize=9 if small else 10)  # fmt: skip

    def plot(self, fig: Any = None, *, ncols: int | None = None) -> NeuronAnimationDisplay:
        """Small multiples, one panel per checkpoint."""
        n = len(self.steps)
        ncols = ncols or min(n, 5)
        nrows = -(-n // ncols)
        fig = _figure(fig, (2.2 * ncols, 2.3 * nrows + 0.5))
        axes = fig.subplots(nrows, ncols, squeeze=False)
        for k, ax in enumerate(axes.ravel()):
            if k < n:
                self._draw(ax, k, small=True)
            else:
                ax.axis("off")
        who = f"member {self.member}" + (f", {self.label}" if self.label else "")
        fig.suptitle(f"{self.neuron} ({who}) during training", fontsize=11)
        fig.tight_layout()
        self.figure_, self.axes_ = fig, axes
        return self

    def gif_bytes(self, *, fps: int = 2, dpi: int = 80) -> bytes:
        """The animation as GIF bytes (Pillow), one frame per checkpoint, looping.

        The figure is drawn once and each frame only swaps the data of its artists (the
        image, the region boundaries, the zero set, the argmax, the title): redrawing a
        whole axes per frame cost several times more."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.collections import LineCollection
        from matplotlib.figure import Figure
        from PIL import Image

        from toylab.viz.maps import CMAP, INPUT_LABELS, symmetric_norm

        fig = Figure(figsize=(3.6, 3.7))
        canvas = FigureCanvasAgg(fig)
        fig.subplots_adjust(left=0.08, right=0.98, top=0.92, bottom=0.08)
        ax = fig.subplots()
        f0 = self.frames[0]
        extent = (f0.xx.min(), f0.xx.max(), f0.yy.min(), f0.yy.max())
        im = ax.imshow(f0.values, origin="lower", extent=extent, cmap=CMAP,
                       norm=symmetric_norm(f0.values), interpolation="nearest", aspect="auto")  # fmt: skip
        regions = LineCollection([], colors="0.4", linewidths=0.5, alpha=0.7)
        zeros = LineCollection([], colors="k", linewidths=1.6)
        ax.add_collection(regions)
        ax.add_collection(zeros)
        star = ax.scatter([np.nan], [np.nan], marker="*", s=200, color="gold", edgecolors="k",
                          zorder=5, clip_on=False)  # fmt: skip
        ax.set_xlim(extent[0], extent[1])
        ax.set_ylim(extent[2], extent[3])
        ax.set_xticks([])  # tick labels were most of the drawing time; the extent is the
        ax.set_yticks([])  # domain box, as on the neuron's page
        ax.set_xlabel(INPUT_LABELS[0], fontsize=8)
        ax.set_ylabel(INPUT_LABELS[1], fontsize=8)
        title = ax.set_title("", fontsize=9)
        # blitting: the static parts (frame, labels) are drawn once; each frame restores
        # them and draws only its own artists
        moving = [im, regions, zeros, star, title]
        for artist in moving:
            artist.set_animated(True)
        fig.set_dpi(dpi)
        canvas.draw()
        background = canvas.copy_from_bbox(fig.bbox)
        images = []
        for i, frame in enumerate(self.frames):
            im.set_data(frame.values)
            im.set_norm(symmetric_norm(frame.values))
            segs = frame.segments if frame.segments is not None else np.zeros((0, 2, 2))
            regions.set_segments(list(segs))
            zeros.set_segments([np.asarray(z) for z in frame.zero_lines])
            mark = frame.marker if frame.marker is not None else np.array([np.nan, np.nan])
            star.set_offsets(np.asarray(mark, np.float64).reshape(1, 2))
            vmax = float(np.abs(frame.values).max())
            title.set_text(f"{self.neuron}  step {self.steps[i]}  |a| ≤ {vmax:.2g}")
            canvas.restore_region(background)
            for artist in moving:
                (fig if artist is title else ax).draw_artist(artist)
            rgba = np.asarray(canvas.buffer_rgba())
            images.append(
                Image.fromarray(rgba[..., :3].copy()).quantize(
                    colors=255, method=Image.Quantize.FASTOCTREE
                )
            )
        buf = io.BytesIO()
        images[0].save(buf, format="GIF", save_all=True, append_images=images[1:],
                       duration=int(1000 / max(fps, 1)), loop=0)  # fmt: skip
        return buf.getvalue()

    def save_gif(self, path: Any, *, fps: int = 2, dpi: int = 80) -> Any:
        """Write the animated GIF to ``path`` atomically; returns ``path``."""
        from toylab.runs.io import atomic_write_bytes

        atomic_write_bytes(path, self.gif_bytes(fps=fps, dpi=dpi))
        return path
