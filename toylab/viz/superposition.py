"""Figures of the toy model of superposition (Elhage et al. 2022), in the Display pattern.

``from_*`` computes (the exact metrics of :mod:`toylab.superposition`), ``.plot(ax=None)``
draws; matplotlib is imported lazily. Features are named by their canonical address
(``"input:i"``).

* :class:`InterferenceDisplay` -- ``WᵀW`` as a heat map (diverging ``CMAP`` centred at 0)
  with the bias vector as a column beside it;
* :class:`FeatureNormsDisplay` -- ``‖W_i‖`` as bars coloured by the feature's
  superposition ``Σ_{j≠i}(Ŵ_i·W_j)²``, with the represented-feature threshold;
* :class:`EmbeddingDisplay` -- for ``m = 2``: each ``W_i`` as an arrow, the polygon of
  represented features drawn;
* :class:`DimensionalityDisplay` -- ``D_i`` against feature density over members, with the
  fractions 1, 3/4, 2/3, 1/2, 2/5, 3/8 as labelled lines;
* :class:`PhaseDiagramDisplay` -- the exact n = 2, m = 1 phase diagram beside the trained
  members' solutions;
* :class:`DictionaryRecoveryDisplay` -- sparse autoencoders against the true features:
  ``|cos|`` of features and latents, and the recovery scores against the penalty.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from toylab._errors import fail
from toylab.superposition.metrics import (
    FRACTIONS,
    SuperpositionResult,
    fraction_label,
    superposition_metrics,
)
from toylab.superposition.phase import CANDIDATES, PhaseDiagramResult, TrainedPhaseResult
from toylab.viz.maps import CMAP

__all__ = [
    "DictionaryRecoveryDisplay",
    "DimensionalityDisplay",
    "EmbeddingDisplay",
    "FeatureNormsDisplay",
    "InterferenceDisplay",
    "PhaseDiagramDisplay",
    "member_figure",
]

#: colours of the phase-diagram candidates (and of "other" / no member)
PHASE_COLORS = {
    "input:0 only": "#4575b4",
    "input:1 only": "#91bfdb",
    "antipodal pair": "#d73027",
    "none": "#bdbdbd",
    "other": "#7b3294",
    "": "#ffffff",
}


def _axes(ax: Any, figsize: tuple[float, float]) -> Any:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=figsize)
    return ax


def _one(result: SuperpositionResult, member: int) -> SuperpositionResult:
    return result.member(member) if result.ensemble else result


def _metrics(model: Any, member: int, where: str) -> SuperpositionResult:
    r = model if isinstance(model, SuperpositionResult) else superposition_metrics(model)
    if r.ensemble and not 0 <= member < r.num_members:
        raise fail(where, "member", member, f"in 0..{r.num_members - 1}")
    return _one(r, member)


def _feature_ticks(ax: Any, n: int, axis: str) -> None:
    step = max(1, int(np.ceil(n / 12)))
    ticks = list(range(0, n, step))
    labels = [f"input:{i}" for i in ticks]
    if axis == "y":
        ax.set_yticks(ticks, labels, fontsize=8)
    else:
        ax.set_xticks(ticks, labels, fontsize=8, rotation=60, ha="right")


@dataclasses.dataclass
class InterferenceDisplay:
    """``WᵀW`` (``n × n``) and the output bias ``b`` as a column on its right."""

    interference: np.ndarray
    bias: np.ndarray
    title: str = "interference WᵀW and bias b"

    @classmethod
    def from_model(
        cls, model: Any, *, member: int = 0, title: str | None = None
    ) -> InterferenceDisplay:
        """From a model, a network, an ensemble (``member``) or a :class:`SuperpositionResult`."""
        r = _metrics(model, member, "InterferenceDisplay.from_model")
        return cls(r.interference, r.b, title or "interference WᵀW and bias b")

    def plot(self, ax: Any = None) -> InterferenceDisplay:
        from matplotlib.colors import TwoSlopeNorm

        n = len(self.bias)
        ax = _axes(ax, (0.32 * n + 3.2, 0.3 * n + 2.2))
        img = np.full((n, n + 2), np.nan)
        img[:, :n] = self.interference
        img[:, n + 1] = self.bias
        vmax = float(np.nanmax(np.abs(img))) or 1.0
        im = ax.imshow(img, cmap=CMAP, norm=TwoSlopeNorm(0.0, -vmax, vmax), aspect="equal",
                       interpolation="nearest")  # fmt: skip
        _feature_ticks(ax, n, "y")
        step = max(1, int(np.ceil(n / 12)))
        xt = list(range(0, n, step))
        ax.set_xticks([*xt, n + 1], [f"input:{i}" for i in xt] + ["bias b"], fontsize=8,
                      rotation=60, ha="right")  # fmt: skip
        ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="value (red +, blue −)")
        ax.set_title(self.title, fontsize=11)
        self.ax_, self.image_ = ax, im
        return self


@dataclasses.dataclass
class FeatureNormsDisplay:
    """Horizontal bars ``‖W_i‖`` coloured by superposition ``Σ_{j≠i}(Ŵ_i·W_j)²`` (0:
    the feature has its dimension to itself), and the ``threshold`` line."""

    norms: np.ndarray
    superposition: np.ndarray
    threshold: float
    title: str = r"feature norms $\|W_i\|$"

    @classmethod
    def from_model(
        cls, model: Any, *, member: int = 0, title: str | None = None
    ) -> FeatureNormsDisplay:
        r = _metrics(model, member, "FeatureNormsDisplay.from_model")
        return cls(r.norms, r.superposition, r.threshold, title or r"feature norms $\|W_i\|$")

    def plot(self, ax: Any = None) -> FeatureNormsDisplay:
        import matplotlib
        from matplotlib.colors import Normalize

        n = len(self.norms)
        ax = _axes(ax, (5.2, 0.25 * n + 1.8))
        vmax = max(1.0, float(self.superposition.max()))
        norm = Normalize(0.0, vmax)
        cmap = matplotlib.colormaps["viridis"]
        bars = ax.barh(np.arange(n), self.norms, color=cmap(norm(self.superposition)),
                       edgecolor="k", lw=0.5)  # fmt: skip
        ax.axvline(self.threshold, color="0.3", ls="--", lw=1.2,
                   label=rf"represented: $\|W_i\|$ > {self.threshold:g}")  # fmt: skip
        ax.invert_yaxis()
        _feature_ticks(ax, n, "y")
        ax.set_xlabel(r"$\|W_i\|$", fontsize=11)
        sm = matplotlib.cm.ScalarMappable(norm=norm, cmap=cmap)
        ax.figure.colorbar(sm, ax=ax, fraction=0.05, pad=0.03,
                           label=r"superposition $\sum_{j\neq i}(\hat{W}_i\cdot W_j)^2$")  # fmt: skip
        ax.legend(fontsize=8, loc="lower right", framealpha=0.9)
        ax.set_title(self.title, fontsize=11)
        self.ax_, self.bars_ = ax, bars
        return self


@dataclasses.dataclass
class EmbeddingDisplay:
    """For ``m = 2``: each ``W_i`` as an arrow labelled ``input:i`` (grey when not
    represented), the polygon through the represented features' tips."""

    W: np.ndarray
    represented: np.ndarray
    polygon: Any
    threshold: float
    title: str = "feature embedding (m = 2)"

    @classmethod
    def from_model(
        cls, model: Any, *, member: int = 0, title: str | None = None
    ) -> EmbeddingDisplay:
        where = "EmbeddingDisplay.from_model"
        r = _metrics(model, member, where)
        if r.num_hidden != 2:
            raise fail(where, "model", f"m = {r.num_hidden} hidden dimensions", "m = 2",
                       "Use InterferenceDisplay or FeatureNormsDisplay for m != 2.")  # fmt: skip
        if title is None:
            title = "feature embedding (m = 2)"
            if r.polygon is not None and len(r.polygon.features) >= 3:
                kind = "regular" if r.polygon.regular else "irregular"
                title += f"\n{kind} {len(r.polygon.features)}-gon of represented features"
        return cls(r.W, r.represented, r.polygon, r.threshold, title)

    def plot(self, ax: Any = None) -> EmbeddingDisplay:
        ax = _axes(ax, (5.0, 5.0))
        n = self.W.shape[1]
        reach = max(float(np.abs(self.W).max()), 1e-12) * 1.3
        if self.polygon is not None and len(self.polygon.features) >= 3:
            idx = [int(f.split(":")[1]) for f in self.polygon.features]
            pts = self.W[:, idx + idx[:1]]
            ax.fill(pts[0], pts[1], color="#fdae61", alpha=0.25, lw=0)
            ax.plot(pts[0], pts[1], "--", color="#f46d43", lw=1.4, label="polygon (represented)")
        for i in range(n):
            x, y = self.W[:, i]
            on = bool(self.represented[i])
            color = "#b2182b" if on else "0.6"
            ax.annotate("", (x, y), (0, 0), arrowprops={"arrowstyle": "-|>", "color": color,
                                                        "lw": 1.8 if on else 1.0})  # fmt: skip
            r = np.hypot(x, y)
            off = 0.07 * reach
            tx, ty = (x + off * x / r, y + off * y / r) if r > 0 else (off, off)
            ax.text(tx, ty, f"input:{i}", fontsize=9, ha="center", va="center", color=color)
        t = np.linspace(0, 2 * np.pi, 200)
        ax.plot(self.threshold * np.cos(t), self.threshold * np.sin(t), ":", color="0.5", lw=1,
                label=f"norm threshold {self.threshold:g}")  # fmt: skip
        ax.set_xlim(-reach, reach)
        ax.set_ylim(-reach, reach)
        ax.set_aspect("equal")
        ax.axhline(0, color="0.85", lw=0.8, zorder=0)
        ax.axvline(0, color="0.85", lw=0.8, zorder=0)
        ax.set_xlabel("hidden_0:0", fontsize=10)
        ax.set_ylabel("hidden_0:1", fontsize=10)
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2,
                  frameon=False)  # fmt: skip
        ax.set_title(self.title, fontsize=11)
        self.ax_ = ax
        return self


@dataclasses.dataclass
class DimensionalityDisplay:
    """``D_i`` of every represented feature of every member against its feature density
    (log scale), ``D* = m/‖W‖_F²`` per member, and the fraction lines."""

    density: np.ndarray  # (num_points,)
    dimensionality: np.ndarray  # (num_points,)
    member_density: np.ndarray  # (num_members,)
    dimensions_per_feature: np.ndarray  # (num_members,)
    title: str = r"feature dimensionality $D_i$ against density"

    @classmethod
    def from_results(
        cls, densities: Sequence[float], results: Sequence[Any], *, title: str | None = None
    ) -> DimensionalityDisplay:
        """``densities[k]`` is member ``k``'s feature density (``1 − S``); ``results[k]`` its
        :class:`SuperpositionResult` (or a model). An ensemble result counts as its members,
        all at that density."""
        where = "DimensionalityDisplay.from_results"
        dens, res = list(densities), list(results)
        if not res or len(dens) != len(res):
            raise fail(where, "densities", dens, f"one density per result ({len(res)})")
        xs, ds, mx, md = [], [], [], []
        for p, r in zip(dens, res, strict=True):
            r = r if isinstance(r, SuperpositionResult) else superposition_metrics(r)
            for k in range(r.num_members):
                one = _one(r, k)
                on = np.asarray(one.represented)
                xs += [float(p)] * int(on.sum())
                ds += list(np.asarray(one.dimensionality)[on])
                mx.append(float(p))
                md.append(float(one.dimensions_per_feature))
        return cls(np.array(xs), np.array(ds), np.array(mx), np.array(md),
                   title or r"feature dimensionality $D_i$ against density")  # fmt: skip

    def plot(self, ax: Any = None) -> DimensionalityDisplay:
        ax = _axes(ax, (6.4, 4.4))
        for f in FRACTIONS:
            ax.axhline(f, color="0.75", lw=0.9, zorder=0)
            va = {2 / 5: "bottom", 3 / 8: "top"}.get(f, "center")  # 2/5 and 3/8 are close
            ax.text(1.01, f, fraction_label(f), transform=ax.get_yaxis_transform(), fontsize=9,
                    va=va, color="0.35")  # fmt: skip
        ax.scatter(self.density, self.dimensionality, s=14, alpha=0.55, color="#b2182b",
                   edgecolors="none", label=r"$D_i$ (represented features)")  # fmt: skip
        order = np.argsort(self.member_density, kind="stable")
        ax.plot(self.member_density[order], self.dimensions_per_feature[order], "k.", ms=6,
                label=r"$D^* = m / \|W\|_F^2$ per member")  # fmt: skip
        ax.set_xscale("log")
        ax.set_ylim(-0.03, 1.1)
        ax.set_xlabel("feature density 1 − S", fontsize=11)
        ax.set_ylabel(r"dimensionality $D_i$", fontsize=11)
        ax.legend(fontsize=8, loc="upper left", framealpha=0.9)
        ax.set_title(self.title, fontsize=11)
        self.ax_ = ax
        return self


@dataclasses.dataclass
class PhaseDiagramDisplay:
    """The exact n = 2, m = 1 phase diagram (winner per cell) and, beside it, the best
    trained member's solution per cell."""

    exact: PhaseDiagramResult
    trained: TrainedPhaseResult | None = None

    @classmethod
    def from_results(
        cls, exact: PhaseDiagramResult, trained: TrainedPhaseResult | None = None
    ) -> PhaseDiagramDisplay:
        if not isinstance(exact, PhaseDiagramResult):
            raise fail("PhaseDiagramDisplay.from_results", "exact", type(exact).__name__,
                       "a PhaseDiagramResult (toylab.superposition.phase_diagram)")  # fmt: skip
        return cls(exact, trained)

    @staticmethod
    def _edges(v: np.ndarray) -> np.ndarray:
        lv = np.log10(v)
        if len(lv) == 1:
            return 10.0 ** np.array([lv[0] - 0.5, lv[0] + 0.5])
        mids = (lv[1:] + lv[:-1]) / 2
        return 10.0 ** np.concatenate([[2 * lv[0] - mids[0]], mids, [2 * lv[-1] - mids[-1]]])

    def _panel(
        self, ax: Any, rel: np.ndarray, den: np.ndarray, names: np.ndarray, title: str
    ) -> None:
        import matplotlib.ticker
        from matplotlib.colors import ListedColormap

        keys = list(PHASE_COLORS)
        codes = np.vectorize(keys.index)(names.astype(str)).T  # (density, importance)
        cmap = ListedColormap([PHASE_COLORS[k] for k in keys])
        ax.pcolormesh(self._edges(rel), self._edges(den), codes, cmap=cmap, vmin=-0.5,
                      vmax=len(keys) - 0.5, edgecolors="w", linewidth=0.5)  # fmt: skip
        ax.set_xscale("log")
        ax.set_yscale("log")
        for axis, values in ((ax.xaxis, rel), (ax.yaxis, den)):
            step = max(1, int(np.ceil(len(values) / 7)))  # at most ~7 labelled cells per axis
            shown = values[::step]
            axis.set_ticks(shown, [f"{v:.2g}" for v in shown])
            axis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.set_xlabel(r"relative importance $I_1 / I_0$ of input:1", fontsize=10)
        ax.set_ylabel("feature density 1 − S", fontsize=10)
        ax.set_title(title, fontsize=11)

    def plot(self, fig: Any = None) -> PhaseDiagramDisplay:
        import matplotlib.pyplot as plt
        from matplotlib.patches import Patch

        ncols = 1 if self.trained is None else 2
        if fig is None:
            fig = plt.figure(figsize=(5.0 * ncols + 0.5, 4.9))
        axes = fig.subplots(1, ncols, squeeze=False)[0]
        e = self.exact
        self._panel(axes[0], e.relative_importance, e.density, e.winner_names(),
                    "exact: lowest expected loss")  # fmt: skip
        shown = set(e.winner_names().ravel())
        if self.trained is not None:
            t = self.trained
            self._panel(axes[1], t.relative_importance, t.density, t.solution,
                        "trained: best member per cell")  # fmt: skip
            shown |= {s for s in t.solution.ravel() if s}
            if np.any(t.solution == ""):
                shown.add("")
        handles = [Patch(facecolor=PHASE_COLORS[k], edgecolor="0.5", label=k or "no member")
                   for k in (*CANDIDATES, "other", "") if k in shown]  # fmt: skip
        fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=9,
                   frameon=False)  # fmt: skip
        fig.suptitle("n = 2 features, m = 1 dimension", fontsize=12)
        fig.tight_layout(rect=(0, 0.07, 1, 1))
        self.figure_, self.axes_ = fig, axes
        return self


@dataclasses.dataclass
class DictionaryRecoveryDisplay:
    """How well sparse autoencoders recover the true features of one model member
    (:func:`toylab.methods.dictionary_learning`): left, ``|cos|`` between every true
    feature direction ``Ŵ_i`` (rows, ``input:i``) and every latent's decoder direction
    (columns, ordered by the feature each latent matches best) for one dictionary; right,
    the mean max cosine (MMCS) and the fraction of features recovered against the sparsity
    penalty, one point per dictionary (seed). All exact functions of the dictionaries."""

    cos: np.ndarray  # (L, n) of the shown dictionary
    order: np.ndarray  # (L,) latent order
    represented: np.ndarray  # (n,)
    penalties: np.ndarray  # (D,)
    mmcs: np.ndarray  # (D,)
    recovered: np.ndarray  # (D,)
    recovered_cos: float
    sparsity: str
    title: str

    @classmethod
    def from_result(
        cls, result: Any, *, dictionary: int | None = None, title: str | None = None
    ) -> DictionaryRecoveryDisplay:
        """From a :class:`~toylab.methods.DictionaryResult` (one model member); shows the
        dictionary ``dictionary`` (default: the one with the highest MMCS) on the left."""
        where = "DictionaryRecoveryDisplay.from_result"
        rec = getattr(result, "recovery", None)
        if rec is None or not hasattr(rec, "cos"):
            raise fail(where, "result", type(result).__name__,
                       "a DictionaryResult (toylab.methods.dictionary_learning)")  # fmt: skip
        mmcs = np.asarray(rec.mmcs, np.float64)
        D = len(mmcs)
        d = int(np.nanargmax(mmcs)) if dictionary is None else dictionary
        if isinstance(d, bool) or not 0 <= d < D:
            raise fail(where, "dictionary", dictionary, f"in 0..{D - 1}")
        cos = np.abs(np.asarray(rec.cos[d], np.float64))  # (L, n)
        best = np.asarray(rec.best_feature[d])
        score = cos.max(axis=1)
        order = np.lexsort((-score, np.where(best < 0, cos.shape[1], best)))
        return cls(
            cos, order, np.asarray(rec.represented, bool), np.asarray(result.penalties),
            mmcs, np.asarray(rec.recovered_fraction, np.float64), float(rec.recovered_cos),
            str(result.sparsity),
            title or f"sparse autoencoders on model member {result.model_member}",
        )  # fmt: skip

    def plot(self, fig: Any = None) -> DictionaryRecoveryDisplay:
        if fig is None:
            import matplotlib.pyplot as plt

            fig = plt.figure(figsize=(11.0, 4.6), layout="constrained")
        left, right = fig.subplots(1, 2, width_ratios=[1.25, 1])
        L, n = self.cos.shape
        im = left.imshow(self.cos[self.order].T, cmap="viridis", vmin=0, vmax=1, aspect="auto",
                         interpolation="nearest")  # fmt: skip
        _feature_ticks(left, n, "y")
        for i in np.flatnonzero(~self.represented):
            left.axhspan(i - 0.5, i + 0.5, color="0.85", alpha=0.6, lw=0)
        left.set_xlabel("latent (ordered by its best-matching feature)", fontsize=10)
        fig.colorbar(im, ax=left, fraction=0.05, pad=0.02, label="|cos(Ŵ_i, decoder_j)|")
        left.set_title("true features against the best dictionary's latents\n"
                       "(grey rows: features the model does not represent)", fontsize=10)  # fmt: skip
        x = self.penalties.astype(np.float64)
        right.plot(x, self.mmcs, "o", color="#b2182b", label="MMCS")
        right.plot(x, self.recovered, "s", color="#2166ac", mfc="none",
                   label=f"recovered (max cos > {self.recovered_cos:g})")  # fmt: skip
        if self.sparsity == "l1" and np.all(x > 0):
            right.set_xscale("log")
        right.set_ylim(-0.03, 1.05)
        right.set_xlabel("L1 penalty λ" if self.sparsity == "l1" else "k (active latents)")
        right.set_ylabel("score over represented features")
        right.legend(fontsize=8, loc="center left", framealpha=0.9)
        right.set_title("every dictionary (one point per seed)", fontsize=10)
        fig.suptitle(self.title, fontsize=12)
        self.fig_ = fig
        return self


def member_figure(model: Any, *, member: int = 0, title: str | None = None) -> Any:
    """One member at a glance (a matplotlib ``Figure``, no pyplot): ``WᵀW`` with the biases
    (:class:`InterferenceDisplay`), the feature norms (:class:`FeatureNormsDisplay`) and,
    for m = 2, the embedding (:class:`EmbeddingDisplay`). The report and the atlas show it."""
    from matplotlib.figure import Figure

    r = _metrics(model, member, "member_figure")
    panels = 3 if r.num_hidden == 2 else 2
    n = r.num_features
    fig = Figure(figsize=(5.2 * panels, max(4.2, 0.28 * n + 2.4)), layout="constrained")
    axes = fig.subplots(1, panels)
    InterferenceDisplay.from_model(r).plot(axes[0])
    FeatureNormsDisplay.from_model(r).plot(axes[1])
    if panels == 3:
        EmbeddingDisplay.from_model(r).plot(axes[2])
    if title:
        fig.suptitle(title, fontsize=12)
    return fig
