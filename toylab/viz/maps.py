"""Neuron maps and data plots."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import jax.numpy as jnp
import numpy as np

from toylab._errors import ToylabError
from toylab.distributions.base import Box
from toylab.models import activations
from toylab.network import Network, as_network
from toylab.neurons import NeuronId, neuron_ids, resolve

CMAP = "RdBu_r"
#: axis labels of 2-D input maps: the input coordinates by their canonical addresses
INPUT_LABELS = ("x₁ (input:0)", "x₂ (input:1)")
CLASS_COLORS = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d")


def symmetric_norm(values: Any):
    """A colour norm centred at zero, symmetric so that equal magnitudes get equal intensity."""
    from matplotlib.colors import Normalize

    vmax = float(np.nanmax(np.abs(values))) if np.size(values) else 1.0
    vmax = vmax if vmax > 0 else 1.0
    return Normalize(-vmax, vmax)


def _box2d(dist_or_box: Any):
    box = getattr(dist_or_box, "domain", dist_or_box)
    if not hasattr(box, "low") or len(box.low) != 2:
        raise ToylabError(
            f"neuron maps need a 2-D box domain, got {type(box).__name__} of "
            f"dim {getattr(box, 'dim', '?')}; use a 2-D distribution or a 2-D slice."
        )
    return box


def grid_values(model: Any, box: Any, num: int = 200) -> tuple[np.ndarray, np.ndarray, dict]:
    """Forward pass on a ``num x num`` grid over a 2-D box: ``(xx, yy, {layer: (num, num, width)})``.

    Networks and toylab models are evaluated in float64 NumPy (no JAX compilation per
    model), other modules through :func:`toylab.models.activations`."""
    xx, yy = box.grid(num)
    flat = np.stack([xx.ravel(), yy.ravel()], -1)
    if isinstance(model, Network) or hasattr(model, "to_network"):
        # the float64 NumPy pass of the network value: no compilation per model
        raw: dict[str, Any] = as_network(model).numpy(np.float64).forward(flat)
    else:
        raw = activations(model, jnp.asarray(flat, jnp.float32))
    acts = {k: np.asarray(v).reshape(num, num, -1) for k, v in raw.items()}
    return xx, yy, acts


@dataclasses.dataclass
class NeuronMapDisplay:
    """One neuron's value over a 2-D input domain.

    ``segments`` are exact line segments to overlay (e.g. region boundaries,
    ``(N, 2, 2)``), ``zero_lines`` polylines of the exact zero set, ``points``
    named point sets (data samples, feature-visualization ends, top examples)
    and ``marker`` a point to star (e.g. the exact argmax).
    """

    neuron: str
    xx: np.ndarray
    yy: np.ndarray
    values: np.ndarray
    segments: np.ndarray | None = None
    zero_lines: Sequence[np.ndarray] = ()
    points: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    marker: np.ndarray | None = None
    title: str | None = None

    @classmethod
    def from_model(
        cls, model: Any, neuron: str | NeuronId, domain: Any, *, num: int = 200, **kwargs: Any
    ) -> NeuronMapDisplay:
        nid = resolve(neuron, model.widths)
        box = _box2d(domain)
        xx, yy, acts = grid_values(model, box, num)
        return cls(str(nid), xx, yy, acts[nid.key][..., nid.unit], **kwargs)

    @classmethod
    def from_analysis(
        cls,
        model: Any,
        neuron: str | NeuronId,
        analysis: Any,
        *,
        domain: Any = None,
        num: int = 200,
        grid: tuple[np.ndarray, np.ndarray, dict] | None = None,
        points: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> NeuronMapDisplay:
        """The map of ``neuron`` with the exact overlays of ``analysis``
        (:func:`toylab.exact.analyze`): every linear-region boundary, the zero set of the
        neuron's pre-activation (where it switches on) and the exact argmax over the domain.

        ``domain`` defaults to the analysis' domain box; ``grid`` is a precomputed
        :func:`grid_values` result (to share one forward pass between many neurons);
        ``points`` named ``(n, 2)`` point sets (``"data"``, ``"start"``, ``"end"``, ``"top"``).
        """
        nid = resolve(neuron, model.widths)
        overlays = exact_overlays(analysis, nid)
        if grid is None:
            if domain is None:
                geo = analysis.geometry.domain
                domain = Box(tuple(map(float, geo.min(0))), tuple(map(float, geo.max(0))))
            grid = grid_values(model, _box2d(domain), num)
        xx, yy, acts = grid
        pts = {k: np.asarray(v, np.float64).reshape(-1, 2) for k, v in (points or {}).items()}
        return cls(
            str(nid), xx, yy, acts[nid.key][..., nid.unit], points=pts, **{**overlays, **kwargs}
        )

    def plot(
        self,
        ax: Any = None,
        *,
        colorbar: bool = True,
        norm: Any = None,
        small: bool = False,
        legend: bool = False,
    ) -> NeuronMapDisplay:
        """Draw onto ``ax`` (a new figure if ``None``); ``small`` for thumbnails and small
        multiples (no ticks, thinner lines), ``legend`` to name the overlays."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(5.6, 4.6))
        norm = norm or symmetric_norm(self.values)
        extent = (self.xx.min(), self.xx.max(), self.yy.min(), self.yy.max())
        im = ax.imshow(
            self.values, origin="lower", extent=extent, cmap=CMAP, norm=norm,
            interpolation="nearest", aspect="auto",
        )  # fmt: skip
        if self.segments is not None and len(self.segments):
            from matplotlib.collections import LineCollection

            ax.add_collection(LineCollection(list(self.segments), colors="0.4",
                                             linewidths=0.3 if small else 0.6, alpha=0.7,
                                             label="region boundaries"))  # fmt: skip
        for i, line in enumerate(self.zero_lines):
            ax.plot(line[:, 0], line[:, 1], color="k", lw=1.0 if small else 2.0,
                    label="zero set" if i == 0 else None)  # fmt: skip
        shrink = 3 if small else 1
        for name, pts in self.points.items():
            style = _POINT_STYLES.get(name, _POINT_STYLES["other"])
            ax.scatter(pts[:, 0], pts[:, 1], label=name, zorder=4,
                       **{**style, "s": style["s"] / shrink})  # fmt: skip
        if self.marker is not None:
            ax.scatter([self.marker[0]], [self.marker[1]], marker="*", s=60 if small else 320,
                       color="gold", edgecolors="k", zorder=5, label="argmax",
                       clip_on=False)  # fmt: skip
        ax.set_xlim(extent[0], extent[1])
        ax.set_ylim(extent[2], extent[3])
        ax.set_title(self.title or self.neuron, fontsize=9 if small else 14)
        if small:
            ax.set_xticks([])
            ax.set_yticks([])
        else:
            ax.tick_params(labelsize=11)
            ax.set_xlabel(INPUT_LABELS[0], fontsize=11)
            ax.set_ylabel(INPUT_LABELS[1], fontsize=11)
        if colorbar:
            cb = ax.figure.colorbar(im, ax=ax, shrink=0.85)
            cb.ax.tick_params(labelsize=10 if not small else 7)
            if not small:
                cb.set_label("activation", fontsize=10)
        handles = ax.get_legend_handles_labels()[0]
        if legend and handles:
            # below the axes, outside the map: it can hide neither the star nor the data
            ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=min(len(handles), 5),
                      fontsize=9, frameon=False, markerscale=0.8, handletextpad=0.3,
                      columnspacing=1.0)  # fmt: skip
        self.ax_, self.image_ = ax, im
        return self


_POINT_STYLES: dict[str, dict[str, Any]] = {
    "data": {"marker": "o", "s": 7, "color": "0.25", "alpha": 0.35, "linewidths": 0},
    "start": {"marker": "o", "s": 22, "facecolors": "none", "edgecolors": "k", "linewidths": 1},
    "end": {"marker": "X", "s": 70, "color": "k", "edgecolors": "w", "linewidths": 0.8},
    "top": {"marker": "^", "s": 70, "color": "#ffe08a", "edgecolors": "k", "linewidths": 1},
    "counterexample": {"marker": "X", "s": 200, "color": "lime", "edgecolors": "k",
                       "linewidths": 1.4},
    "other": {"marker": "D", "s": 40, "color": "w", "edgecolors": "k", "linewidths": 1},
}  # fmt: skip


def exact_overlays(analysis: Any, neuron: str | NeuronId) -> dict[str, Any]:
    """:class:`NeuronMapDisplay` fields drawn from an exact analysis: region boundaries
    (``segments``), the exact zero set (``zero_lines``: of the pre-activation for a
    hidden neuron) and the exact argmax (``marker``). Empty without an analysis."""
    if analysis is None or getattr(analysis, "kind", None) != "plane":
        return {}
    from toylab.exact import partition_edges

    nid = NeuronId.parse(neuron)
    geo = analysis.geometry
    out: dict[str, Any] = {"segments": geo.vertices[partition_edges(geo)]}
    zkey = f"{nid.layer}.pre" if nid.layer.startswith("hidden_") else nid.key
    if zkey in geo.maps:
        from toylab.exact import level_set

        out["zero_lines"] = level_set(geo, zkey, nid.unit, 0.0)
    if nid.key in geo.maps:
        out["marker"] = np.asarray(analysis.extrema(nid.key).argmax[nid.unit])
    return out


def layer_overlays(analysis: Any) -> dict[str, dict[str, Any]]:
    """:func:`exact_overlays` for every hidden neuron, titled with its exact firing probability
    (what :func:`layer_grid_figure` takes as ``overlays``)."""
    out: dict[str, dict[str, Any]] = {}
    widths = analysis.network.widths
    for key in widths:
        if not key.startswith("hidden_") or key.endswith(".pre"):
            continue
        for u in range(widths[key]):
            name = f"{key}:{u}"
            ov = exact_overlays(analysis, name)
            p_on = float(analysis.moments[key].firing_probability[u])
            ov["title"] = f"{name}  P(on)={p_on:.2f}"
            out[name] = ov
    return out


@dataclasses.dataclass
class DataDisplay:
    """Samples coloured by class, with the model's decision regions and optional
    Bayes-optimal boundary (a contour of the exact posterior)."""

    x: np.ndarray
    y: np.ndarray
    xx: np.ndarray | None = None
    yy: np.ndarray | None = None
    predicted: np.ndarray | None = None
    bayes_posterior: np.ndarray | None = None
    boundary_segments: np.ndarray | None = None
    title: str = "data and decision boundary"

    @classmethod
    def from_model(
        cls,
        dist: Any,
        model: Any = None,
        *,
        key: Any,
        num_samples: int = 600,
        num: int = 300,
        analysis: Any = None,
        posteriors: dict[Any, Any] | None = None,
    ) -> DataDisplay:
        """Samples of ``dist``, ``model``'s decision regions on a grid and the Bayes-optimal
        boundary; with ``analysis`` (:func:`toylab.exact.analyze`) the network's boundary is
        drawn from its exact segments (:func:`toylab.exact.decision_boundary`).

        ``posteriors``: a dict the caller keeps across the panels of one figure; the Bayes
        posterior on the grid is then computed once per distinct ``(dist, num)`` (it is the
        slow part for many-atom densities such as the noisy curves)."""
        box = _box2d(dist)
        batch = dist.sample(key, num_samples)
        kw: dict[str, Any] = {}
        xx, yy = box.grid(num)
        if model is not None:
            _, _, acts = grid_values(model, box, num)
            kw.update(xx=xx, yy=yy, predicted=np.argmax(acts["output"], -1))
        cache = {} if posteriors is None else posteriors
        if (dist, num) not in cache:
            try:
                pts = np.stack([xx.ravel(), yy.ravel()], -1)
                cache[dist, num] = dist.posterior(pts).reshape(num, num, -1)
            except (NotImplementedError, ToylabError):
                cache[dist, num] = None
        if cache[dist, num] is not None:
            kw.update(xx=xx, yy=yy, bayes_posterior=cache[dist, num])
        if analysis is not None and hasattr(analysis, "geometry"):
            from toylab.exact import decision_boundary

            kw["boundary_segments"] = decision_boundary(analysis.geometry)
        return cls(np.asarray(batch.x), np.asarray(batch.y), **kw)

    def plot(self, ax: Any = None):
        import matplotlib.pyplot as plt
        from matplotlib.colors import ListedColormap

        if ax is None:
            _, ax = plt.subplots(figsize=(5.5, 5))
        k = int(max(self.y.max(), 1)) + 1
        colors = CLASS_COLORS[:k] if k <= len(CLASS_COLORS) else None
        if self.predicted is not None and colors is not None:
            ax.contourf(self.xx, self.yy, self.predicted, levels=np.arange(k + 1) - 0.5,
                        cmap=ListedColormap(colors), alpha=0.18)  # fmt: skip
            if self.boundary_segments is None:
                ax.contour(self.xx, self.yy, self.predicted, levels=np.arange(k) + 0.5,
                           colors="k", linewidths=1.4)  # fmt: skip
        if self.boundary_segments is not None and len(self.boundary_segments):
            from matplotlib.collections import LineCollection

            ax.add_collection(
                LineCollection(list(self.boundary_segments), colors="k", linewidths=1.8)
            )
        if self.bayes_posterior is not None and self.bayes_posterior.shape[-1] >= 2:
            top = np.argmax(self.bayes_posterior, -1)
            ax.contour(self.xx, self.yy, top, levels=np.arange(k) + 0.5, colors="m",
                       linewidths=1.4, linestyles="--")  # fmt: skip
            ax.plot([], [], "m--", label="Bayes-optimal boundary")
        if self.boundary_segments is not None:
            ax.plot([], [], "k-", lw=1.8, label="network boundary (exact)")
        elif self.predicted is not None:
            ax.plot([], [], "k-", label="network boundary")
        for c in range(k):
            sel = self.y == c
            ax.scatter(self.x[sel, 0], self.x[sel, 1], s=6, alpha=0.5, label=f"class {c}",
                       color=None if colors is None else colors[c])  # fmt: skip
        if self.xx is not None and self.yy is not None:
            ax.set_xlim(self.xx.min(), self.xx.max())
            ax.set_ylim(self.yy.min(), self.yy.max())
        ax.set_aspect("equal")
        ax.set_xlabel(INPUT_LABELS[0])
        ax.set_ylabel(INPUT_LABELS[1])
        ax.legend(loc="upper right", fontsize=8, framealpha=0.85)
        ax.set_title(self.title)
        self.ax_ = ax
        return self


#: at most this many maps per row of :func:`layer_grid_figure`; wider layers wrap
GRID_COLUMNS = 8


def layer_grid_figure(
    model: Any,
    domain: Any,
    layers: Sequence[str] | None = None,
    *,
    num: int = 120,
    overlays: dict[str, dict[str, Any]] | None = None,
    title: str | None = None,
    columns: int = GRID_COLUMNS,
    fig: Any = None,
):
    """Small multiples: every neuron of the given layers (default: all hidden layers), each
    map with its own symmetric colour scale. Each layer starts a new row and wraps after
    ``columns`` maps, so a wide layer makes a block of rows, not a strip. ``overlays``
    maps a neuron address to extra :class:`NeuronMapDisplay` fields (segments, zero_lines,
    marker, title). ``fig``: a :class:`matplotlib.figure.Figure` to draw into (default: a
    new pyplot figure)."""
    box = _box2d(domain)
    if layers is None:
        layers = [k for k in model.widths if k.startswith("hidden_") and not k.endswith(".pre")]
    if isinstance(columns, bool) or not isinstance(columns, int) or columns < 1:
        raise ToylabError(f"layer_grid_figure: columns must be an integer >= 1, got {columns!r}.")
    blocks = [neuron_ids(model.widths, [layer]) for layer in layers]
    if not any(blocks):
        raise ToylabError(
            f"layer_grid_figure: the model has no neurons in layers {list(layers)!r} (a model "
            "without hidden layers has nothing to map)."
        )
    ncol = min(columns, max(len(b) for b in blocks))
    rows: list[list[NeuronId]] = []
    for block in blocks:
        rows += [block[i : i + ncol] for i in range(0, len(block), ncol)]
    xx, yy, acts = grid_values(model, box, num)
    size = (1.9 * ncol + 0.5, 2.0 * len(rows) + 0.9)
    if fig is None:
        import matplotlib.pyplot as plt

        fig = plt.figure(figsize=size)
    else:
        fig.set_size_inches(*size)
    # a fixed layout, in inches (room for the shared labels, the title and each map's
    # title): the constrained layout engine cost about a third of the figure's time
    w, h = size
    axes = fig.subplots(len(rows), ncol, squeeze=False, gridspec_kw=dict(
        left=0.5 / w, right=1 - 0.12 / w, bottom=0.45 / h, top=1 - (0.62 if title else 0.4) / h,
        wspace=0.12, hspace=0.3 / 1.7,
    ))  # fmt: skip
    overlays = overlays or {}
    for i, row in enumerate(rows):
        for j in range(ncol):
            ax = axes[i, j]
            if j >= len(row):
                ax.axis("off")
                continue
            nid = row[j]
            disp = NeuronMapDisplay(
                str(nid), xx, yy, acts[nid.key][..., nid.unit], **overlays.get(str(nid), {})
            )
            disp.plot(ax, colorbar=False, small=True)
    fig.supxlabel(f"{INPUT_LABELS[0]} (left to right)", fontsize=10, y=0.12 / h, va="bottom")
    fig.supylabel(f"{INPUT_LABELS[1]} (bottom to top)", fontsize=10, x=0.12 / w, ha="left")
    if title:
        fig.suptitle(title, fontsize=12, y=1 - 0.1 / h, va="top")
    return fig
