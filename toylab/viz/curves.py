"""Figures of the curve-detector analysis, in the Display pattern (``from_*`` computes,
``plot`` draws). Every band and heat map is a **certified** enclosure from
:mod:`toylab.curves` (the lower and upper bounds are drawn, never a grid alone).

* :class:`OrientationTuningDisplay` -- each channel's response against orientation:
  the certified band ``[lower, upper]`` per θ cell, the attained values at the cell
  centres, the preferred arc, the half-maximum level and the ±45° points;
* :class:`TuningHeatmapDisplay` -- a θ × κ heat map: the value at each cell's centre, the
  certified lower and upper bounds (one colour scale) and the enclosure width;
* :class:`PreferredOrientationsDisplay` -- each member's channels on a circle at their
  preferred orientation (detectors filled, with the certified arc; others hollow);
* :class:`WidthCurvatureDisplay` -- the "triangle": tuning width (enclosure as an error
  bar) against curvature, one line per channel;
* :class:`FilterDisplay` -- conv kernels as images (``conv_0``: one per channel;
  ``conv_k``: a row per output channel, a column per input channel).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from toylab._errors import fail
from toylab.network import as_network
from toylab.viz.maps import CMAP, symmetric_norm

__all__ = [
    "FilterDisplay",
    "OrientationTuningDisplay",
    "PreferredOrientationsDisplay",
    "TuningHeatmapDisplay",
    "WidthCurvatureDisplay",
]

BAND_COLOR = "#b2182b"  # certified enclosures (the red end of CMAP, as exact results)
DETECTOR_COLOR = "#1b5e20"
OTHER_COLOR = "#888888"


def _figure(fig: Any, size: tuple[float, float]) -> Any:
    if fig is not None:
        fig.set_size_inches(*size)
        return fig
    import matplotlib.pyplot as plt

    return plt.figure(figsize=size)


def _axes(ax: Any, figsize: tuple[float, float]) -> Any:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=figsize)
    return ax


def _grid(n: int, ncol: int) -> tuple[int, int]:
    ncol = max(1, min(n, ncol))
    return -(-n // ncol), ncol


def _verdict(v: bool | None) -> str:
    return "detector" if v else "not a detector" if v is False else "undecided"


# --------------------------------------------------------------------------- tuning curves


@dataclasses.dataclass
class OrientationTuningDisplay:
    """Orientation tuning of channels, one panel each (degrees on the x axis).

    ``cells[i]``: ``(low, high)`` degrees of each θ cell; ``lower``/``upper``: the
    certified enclosure per cell; ``values``: the attained response at the centres;
    ``info[i]``: preferred angle, arc, peak, ±45° points and verdict for the title.
    """

    names: list[str]
    cells: list[np.ndarray]
    lower: list[np.ndarray]
    upper: list[np.ndarray]
    values: list[np.ndarray]
    info: list[dict[str, Any]]

    @classmethod
    def from_detectors(cls, channels: Sequence[Any]) -> OrientationTuningDisplay:
        """From :class:`toylab.curves.ChannelDetector` results."""
        names, cells, lo, hi, vals, info = [], [], [], [], [], []
        for c in channels:
            r = c.tuning
            order = np.argsort(r.cell_low[:, 0])
            cells.append(np.degrees(np.stack([r.cell_low[order, 0], r.cell_high[order, 0]], 1)))
            lo.append(r.lower[order])
            hi.append(r.upper[order])
            vals.append(r.values[order])
            m = "" if c.member is None else f"m{c.member} "
            names.append(f"{m}{c.address}")
            info.append({"preferred": c.preferred, "arc": c.preferred_arc, "peak": c.peak,
                         "off45": c.off45, "verdict": c.is_detector, "width": c.width})  # fmt: skip
        return cls(names, cells, lo, hi, vals, info)

    def plot(self, fig: Any = None, ncol: int = 4) -> OrientationTuningDisplay:
        n = len(self.names)
        nrow, ncol = _grid(n, ncol)
        fig = _figure(fig, (3.4 * ncol, 2.6 * nrow + 0.4))
        axes = np.atleast_1d(fig.subplots(nrow, ncol, squeeze=False)).ravel()
        for i in range(n):
            ax = axes[i]
            c = self.cells[i]
            mid = c.mean(1)
            ax.fill_between(
                c.ravel(), np.repeat(self.lower[i], 2), np.repeat(self.upper[i], 2),
                step=None, color=BAND_COLOR, alpha=0.35, lw=0, label="certified enclosure",
            )  # fmt: skip
            ax.plot(mid, self.values[i], ".", color="k", ms=2.5, label="value at cell centre")
            inf = self.info[i]
            p0 = inf["peak"][0]
            if p0 > 0:
                ax.axhline(p0 / 2, color="#555555", lw=0.7, ls=":", label="half maximum")
            a0, al = inf["arc"]
            if al < 360:
                for off in (0.0, -360.0, 360.0):
                    ax.axvspan(a0 + off, a0 + al + off, color=DETECTOR_COLOR, alpha=0.12, lw=0)
            ax.axvline(inf["preferred"], color=DETECTOR_COLOR, lw=1.0)
            for k, s in enumerate((-45.0, 45.0)):
                x = (inf["preferred"] + s) % 360.0
                ax.errorbar([x], [0.5 * inf["off45"][k].sum()],
                            yerr=[[0.5 * np.diff(inf["off45"][k])[0]]] * 2,
                            fmt="v", color="#d95f02", ms=4)  # fmt: skip
            ax.set_xlim(0, 360)
            ax.set_xticks([0, 90, 180, 270, 360])
            top = float(np.max(self.upper[i]))
            ax.set_ylim(min(0.0, float(np.min(self.lower[i]))), top + 0.05 * max(abs(top), 1e-9))
            if inf["peak"][1] <= 0:
                sub = "never fires on this slice (certified)"
            elif inf["peak"][0] <= 0:
                sub = "peak not certified positive"
            else:
                sub = (f"θ*={inf['preferred']:.0f}°, width "
                       f"{inf['width'][0]:.0f}–{inf['width'][1]:.0f}°")  # fmt: skip
            ax.set_title(f"{self.names[i]}: {_verdict(inf['verdict'])}\n{sub}", fontsize=8)
            ax.tick_params(labelsize=7)
            if i % ncol == 0:
                ax.set_ylabel("response", fontsize=8)
            if i >= n - ncol:
                ax.set_xlabel("orientation θ (degrees)", fontsize=8)
        for j in range(n, len(axes)):
            axes[j].axis("off")
        if n:
            from matplotlib.lines import Line2D
            from matplotlib.patches import Patch

            h = [
                Patch(color=BAND_COLOR, alpha=0.35, label="certified enclosure per θ cell"),
                Line2D([], [], ls="", marker=".", color="k", label="value at cell centre"),
                Line2D([], [], color=DETECTOR_COLOR, label="θ* (shade: certified argmax arc)"),
                Line2D([], [], color="#555555", ls=":", label="half maximum"),
                Line2D([], [], ls="", marker="v", color="#d95f02", label="θ* ± 45° (enclosed)"),
            ]
            fig.legend(handles=h, loc="lower center", ncol=len(h), fontsize=7, frameon=False)
        fig.tight_layout(rect=(0, 0.05, 1, 1))
        self.figure_ = fig
        return self


# --------------------------------------------------------------------------- heat map


@dataclasses.dataclass
class TuningHeatmapDisplay:
    """A 2-D certified tuning (θ × κ by default) as four panels: the attained value at
    each refined cell's centre, the certified lower and upper bounds (one colour scale)
    and the enclosure width."""

    neuron: str
    axes_names: tuple[str, str]
    edges: tuple[np.ndarray, np.ndarray]
    lower: np.ndarray
    upper: np.ndarray
    values: np.ndarray

    @classmethod
    def from_tuning(cls, res: Any, raster: tuple[int, int] = (360, 96)) -> TuningHeatmapDisplay:
        """From a 2-D :class:`toylab.curves.TuningResult`: each refined cell's enclosure
        painted on a ``raster`` of pixels (a pixel shows the cell holding its centre)."""
        if len(res.axes) != 2:
            raise fail("TuningHeatmapDisplay.from_tuning", "res.axes", res.axes,
                       "a 2-D tuning (two axes)")  # fmt: skip
        edges = []
        for a in range(2):
            a_lo, a_hi = float(res.cell_low[:, a].min()), float(res.cell_high[:, a].max())
            edges.append(np.linspace(a_lo, a_hi, raster[a] + 1))
        cx = 0.5 * (edges[0][1:] + edges[0][:-1])
        cy = 0.5 * (edges[1][1:] + edges[1][:-1])
        lo = np.full(raster, np.nan)
        hi = np.full(raster, np.nan)
        val = np.full(raster, np.nan)
        for i in range(res.num_cells):
            sx = (cx >= res.cell_low[i, 0]) & (cx <= res.cell_high[i, 0])
            sy = (cy >= res.cell_low[i, 1]) & (cy <= res.cell_high[i, 1])
            lo[np.ix_(sx, sy)] = res.lower[i]
            hi[np.ix_(sx, sy)] = res.upper[i]
            val[np.ix_(sx, sy)] = res.values[i]
        return cls(res.neuron, (res.axes[0], res.axes[1]), (edges[0], edges[1]), lo, hi, val)

    @classmethod
    def from_model(
        cls, model: Any, family: Any, neuron: str, *, resolution: Any = (24, 6),
        tol: float = 0.5, max_boxes: int = 3000,
    ) -> TuningHeatmapDisplay:  # fmt: skip
        """Compute the θ × κ tuning on the neuron's receptive field, then draw it."""
        from toylab.curves.detectors import local_problem
        from toylab.curves.tuning import tuning

        lp = local_problem(model, family, neuron)
        res = tuning(lp.network, lp.family, lp.neuron, axes=("theta", "kappa"),
                     resolution=resolution, tol=tol, max_boxes=max_boxes)  # fmt: skip
        out = cls.from_tuning(res)
        out.neuron = lp.address
        return out

    def plot(self, fig: Any = None) -> TuningHeatmapDisplay:
        fig = _figure(fig, (15.0, 3.4))
        fig.set_layout_engine("constrained")
        axes = fig.subplots(1, 4)
        x = self.edges[0]
        y = self.edges[1]
        xs = np.degrees(x) if self.axes_names[0] == "theta" else x
        norm = symmetric_norm(np.concatenate([self.lower.ravel(), self.upper.ravel()]))
        for ax, data, title in ((axes[0], self.values, "value at each cell's centre"),
                                (axes[1], self.lower, "certified lower bound"),
                                (axes[2], self.upper, "certified upper bound")):  # fmt: skip
            im = ax.pcolormesh(xs, y, data.T, cmap=CMAP, norm=norm, shading="flat")
            ax.set_title(f"{self.neuron}: {title}", fontsize=9)
        fig.colorbar(im, ax=axes[:3].tolist(), fraction=0.03, pad=0.01)
        w = axes[3].pcolormesh(xs, y, (self.upper - self.lower).T, cmap="Greys", shading="flat")
        axes[3].set_title("enclosure width (upper − lower)", fontsize=9)
        fig.colorbar(w, ax=axes[3], fraction=0.08, pad=0.01)
        for ax in axes:
            ax.set_xlabel("θ (degrees)" if self.axes_names[0] == "theta" else self.axes_names[0])
            ax.set_ylabel("κ (1/pixel)" if self.axes_names[1] == "kappa" else self.axes_names[1])
            ax.tick_params(labelsize=7)
            if self.axes_names[0] == "theta":
                ax.set_xticks([0, 90, 180, 270, 360])
        self.figure_ = fig
        return self


# --------------------------------------------------------------------------- circles


@dataclasses.dataclass
class PreferredOrientationsDisplay:
    """Each member's channels on a circle: ``angles[m]`` (degrees), ``arcs[m]``
    ``(start, length)``, ``detector[m]`` (bool per channel), ``labels[m]``; the title
    gives the number of detectors and the largest gap against ``360 / n``."""

    members: list[str]
    angles: list[np.ndarray]
    arcs: list[np.ndarray]
    detector: list[np.ndarray]
    captions: list[str]

    @classmethod
    def from_result(cls, res: Any, labels: Sequence[str] | None = None) -> (
        PreferredOrientationsDisplay
    ):  # fmt: skip
        """From a :class:`toylab.curves.DetectorsResult`."""
        names, ang, arcs, det, caps = [], [], [], [], []
        for i, f in enumerate(res.families):
            live = [c for c in f.channels if c.peak[0] > 0]
            names.append(labels[i] if labels else f"member {f.member}")
            ang.append(np.asarray([c.preferred for c in live]))
            arcs.append(np.asarray([c.preferred_arc for c in live]).reshape(-1, 2))
            det.append(np.asarray([bool(c.is_detector) for c in live], bool))
            t = f.tiling
            cap = f"{f.num_detectors} detector(s)"
            if f.num_detectors:
                cap += f", max gap {t.max_gap[0]:.0f}–{t.max_gap[1]:.0f}° vs {360 / f.num_detectors:.0f}°"
            caps.append(cap)
        return cls(names, ang, arcs, det, caps)

    def plot(self, fig: Any = None, ncol: int = 4) -> PreferredOrientationsDisplay:
        n = len(self.members)
        nrow, ncol = _grid(n, ncol)
        fig = _figure(fig, (3.0 * ncol, 3.4 * nrow + 0.3))
        axes = np.atleast_1d(fig.subplots(nrow, ncol, squeeze=False)).ravel()
        t = np.linspace(0, 2 * math.pi, 361)
        for i in range(n):
            ax = axes[i]
            ax.plot(np.cos(t), np.sin(t), color="#cccccc", lw=1)
            for a, arc, d in zip(self.angles[i], self.arcs[i], self.detector[i], strict=True):
                r = 1.0 if d else 0.75
                if d and arc[1] < 360:
                    s = np.radians(np.linspace(arc[0], arc[0] + arc[1], 30))
                    ax.plot(1.08 * np.cos(s), 1.08 * np.sin(s), color=DETECTOR_COLOR, lw=3)
                x, y = r * math.cos(math.radians(a)), r * math.sin(math.radians(a))
                ax.plot([0, x], [0, y], color=DETECTOR_COLOR if d else OTHER_COLOR,
                        lw=1.5 if d else 0.8)  # fmt: skip
                ax.plot([x], [y], "o", ms=6 if d else 4,
                        mfc=DETECTOR_COLOR if d else "white",
                        mec=DETECTOR_COLOR if d else OTHER_COLOR)  # fmt: skip
            for deg in (0, 90, 180, 270):
                ax.text(1.3 * math.cos(math.radians(deg)), 1.3 * math.sin(math.radians(deg)),
                        f"{deg}°", ha="center", va="center", fontsize=7, color="#666666")  # fmt: skip
            ax.set_xlim(-1.45, 1.45)
            ax.set_ylim(-1.45, 1.45)
            ax.set_aspect("equal")
            ax.axis("off")
            ax.set_title(f"{self.members[i]}\n{self.captions[i]}", fontsize=8)
        for j in range(n, len(axes)):
            axes[j].axis("off")
        fig.suptitle("preferred orientations (filled: curve detectors, bar: certified argmax "
                     "arc; hollow: other live channels)", fontsize=8)  # fmt: skip
        fig.tight_layout(rect=(0, 0, 1, 0.95))
        self.figure_ = fig
        return self


# --------------------------------------------------------------------------- triangle


@dataclasses.dataclass
class WidthCurvatureDisplay:
    """Tuning width (degrees, certified enclosure as a bar) against curvature."""

    names: list[str]
    kappas: list[np.ndarray]
    widths: list[np.ndarray]

    @classmethod
    def from_detectors(cls, channels: Sequence[Any]) -> WidthCurvatureDisplay:
        """From :class:`toylab.curves.ChannelDetector` results computed with
        ``curvatures=...`` (channels without them are skipped)."""
        names, ks, ws = [], [], []
        for c in channels:
            if len(c.kappas):
                m = "" if c.member is None else f"m{c.member} "
                names.append(f"{m}{c.address}")
                ks.append(np.asarray(c.kappas))
                ws.append(np.asarray(c.width_by_kappa))
        return cls(names, ks, ws)

    def plot(self, ax: Any = None) -> WidthCurvatureDisplay:
        ax = _axes(ax, (5.0, 3.6))
        import matplotlib as mpl

        cmap = mpl.colormaps["tab10"]
        for i, (name, k, w) in enumerate(zip(self.names, self.kappas, self.widths, strict=True)):
            mid = w.mean(1)
            ax.errorbar(k + (i - len(self.names) / 2) * 0.002 * (k.max() - k.min() + 1e-9),
                        mid, yerr=[mid - w[:, 0], w[:, 1] - mid], fmt="-o", ms=3, capsize=2,
                        color=cmap(i % 10), label=name)  # fmt: skip
        ax.set_xlabel("curvature κ (1/pixel)")
        ax.set_ylabel("half-maximum width (degrees)")
        ax.set_title("tuning width against curvature (certified enclosures)", fontsize=9)
        if self.names:
            ax.legend(fontsize=7, frameon=False)
        self.ax_ = ax
        return self


# --------------------------------------------------------------------------- filters


@dataclasses.dataclass
class FilterDisplay:
    """Conv kernels ``(kh, kw, C_in, C_out)`` as images, one symmetric scale per output
    channel (red positive, blue negative; a row of ``conv_k`` compares its inputs)."""

    layer: str
    kernel: np.ndarray
    title: str = ""

    @classmethod
    def from_network(cls, model: Any, layer: str = "conv_0", title: str = "") -> FilterDisplay:
        net = as_network(model, "FilterDisplay.from_network").numpy(np.float64)
        k = net.layer_index(layer) if layer in net.layer_keys() else -1
        kern = getattr(net.layers[k], "kernel", None) if k >= 0 else None
        if kern is None or not layer.startswith("conv_"):
            raise fail("FilterDisplay.from_network", "layer", layer,
                       "a conv layer of the network, e.g. 'conv_0'")  # fmt: skip
        return cls(layer, np.asarray(kern, np.float64), title)

    def plot(self, fig: Any = None, max_inputs: int = 8) -> FilterDisplay:
        _, _, cin, cout = self.kernel.shape
        cin_shown = min(cin, max_inputs)
        if cin == 1:
            nrow, ncol = _grid(cout, 8)
        else:
            nrow, ncol = cout, cin_shown
        fig = _figure(fig, (1.1 * ncol + 0.4, 1.1 * nrow + 0.6))
        axes = np.atleast_1d(fig.subplots(nrow, ncol, squeeze=False))
        for ax in axes.ravel():
            ax.set_xticks([])
            ax.set_yticks([])
        for o in range(cout):
            norm = symmetric_norm(self.kernel[:, :, :, o])  # one scale per output channel
            for c in range(cin_shown):
                ax = axes.ravel()[o] if cin == 1 else axes[o, c]
                img = self.kernel[:, :, c, o]
                ax.imshow(img, cmap=CMAP, norm=norm, interpolation="nearest")
                if cin == 1:
                    ax.set_title(f"{self.layer}:{o}", fontsize=7)
                else:
                    if o == 0:
                        ax.set_title(f"in {c}", fontsize=7)
                    if c == 0:
                        ax.set_ylabel(f"{self.layer}:{o}", fontsize=7)
        if cin == 1:
            for j in range(cout, nrow * ncol):
                axes.ravel()[j].axis("off")
        fig.suptitle(self.title or f"{self.layer} kernels", fontsize=9)
        fig.tight_layout()
        self.figure_ = fig
        return self
