"""Figures of universality across seeds, in the Display pattern (``from_*`` computes,
``plot`` draws).

* :class:`ScoreDistributionDisplay` -- per hidden layer, the best-match correlations of
  the trained units with the reference's units against the random-initialisation and
  layer-shuffle baselines (:func:`toylab.universality.match_ensemble`): histograms above,
  empirical CDFs below, each baseline's 95th percentile marked;
* :class:`FamilyMapsDisplay` -- recurring families of units as rows, one small exact
  neuron map (:class:`toylab.viz.maps.NeuronMapDisplay`) per seed holding the family.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from toylab.neurons import NeuronId
from toylab.viz.maps import NeuronMapDisplay

__all__ = ["FamilyMapsDisplay", "ScoreDistributionDisplay"]

#: colours of the three kinds of networks (trained, and the two chance baselines)
KIND_COLORS = {"trained": "#1b5e20", "init": "#d95f02", "shuffle": "#7570b3"}
KIND_LABELS = {
    "trained": "trained seeds",
    "init": "random init (baseline)",
    "shuffle": "layer shuffle (baseline)",
}


def _figure(fig: Any, size: tuple[float, float]) -> Any:
    if fig is not None:
        fig.set_size_inches(*size)
        return fig
    import matplotlib.pyplot as plt

    return plt.figure(figsize=size)


@dataclasses.dataclass
class ScoreDistributionDisplay:
    """Best-match correlation distributions, one column per layer.

    ``layers``: layer keys; ``values[layer][kind]``: sorted scores of ``kind``
    (``"trained"``, ``"init"``, ``"shuffle"``); ``p95[layer][kind]``: each baseline's 95th
    percentile; ``above[layer][kind]``: the fraction of trained units above it;
    ``tiers[layer]``: the tier of the layer's scores.
    """

    layers: Sequence[str]
    values: dict[str, dict[str, np.ndarray]]
    p95: dict[str, dict[str, float]]
    above: dict[str, dict[str, float]]
    tiers: dict[str, str]
    reference: int

    @classmethod
    def from_match(cls, em: Any) -> ScoreDistributionDisplay:
        """From a :class:`toylab.universality.EnsembleMatch`."""
        values, p95, above, tiers = {}, {}, {}, {}
        for sc in em.scores:
            values[sc.layer] = {"trained": np.asarray(sc.trained.values)} | {
                k: np.asarray(b.values) for k, b in sc.baselines.items()
            }
            p95[sc.layer] = {k: float(b.quantiles[-1]) for k, b in sc.baselines.items()}
            above[sc.layer] = dict(sc.above)
            tiers[sc.layer] = str(sc.tier)
        return cls(list(em.layers), values, p95, above, tiers, em.reference)

    def plot(self, fig: Any = None) -> ScoreDistributionDisplay:
        n = len(self.layers)
        fig = _figure(fig, (4.6 * n + 0.6, 6.6))
        axes = fig.subplots(2, n, squeeze=False)
        for c, layer in enumerate(self.layers):
            vals = self.values[layer]
            present = [v for v in vals.values() if len(v)]
            lo = min(float(np.min(v)) for v in present) if present else 0.0
            lo = min(lo, 0.0) if lo < 0.5 else lo
            lo = max(-1.0, lo - 0.02)
            bins = np.linspace(lo, 1.0, 41)
            hist, ecdf = axes[0, c], axes[1, c]
            for kind, v in vals.items():
                if not len(v):
                    continue
                color, label = KIND_COLORS.get(kind, "k"), KIND_LABELS.get(kind, kind)
                lw = 2.2 if kind == "trained" else 1.4
                hist.hist(v, bins=bins, density=True, histtype="step", color=color, lw=lw,
                          label=f"{label} ({len(v)} units)")  # fmt: skip
                y = np.arange(1, len(v) + 1) / len(v)
                ecdf.step(np.sort(v), y, where="post", color=color, lw=lw, label=label)
            for kind, q in self.p95[layer].items():
                if np.isfinite(q):
                    for ax in (hist, ecdf):
                        ax.axvline(q, color=KIND_COLORS.get(kind, "k"), ls=":", lw=1.2)
            hist.set_yscale("log")
            hist.set_title(f"{layer} ({self.tiers[layer]})", fontsize=12)
            hist.set_ylabel("density (log scale)", fontsize=10)
            ecdf.set_ylabel("fraction of units ≤ x", fontsize=10)
            ecdf.set_xlabel(f"best-match correlation with member {self.reference}'s units",
                            fontsize=10)  # fmt: skip
            ecdf.set_ylim(0, 1.01)
            txt = "\n".join(
                f"above {k} p95: {a:.0%}" for k, a in self.above[layer].items() if np.isfinite(a)
            )
            if txt:
                ecdf.text(0.03, 0.97, txt + "\n(chance: 5%)", transform=ecdf.transAxes,
                          va="top", fontsize=9, color="0.2")  # fmt: skip
            for ax in (hist, ecdf):
                ax.set_xlim(bins[0], 1.0)
                ax.grid(True, color="0.92", lw=0.6)
        handles, labels = axes[0, 0].get_legend_handles_labels()
        fig.legend(handles, [lab.split(" (")[0] for lab in labels], loc="lower center",
                   ncol=len(labels), frameon=False, fontsize=10)  # fmt: skip
        fig.text(0.5, 0.045, "dotted: each baseline's 95th percentile", ha="center",
                 fontsize=9, color="0.3")  # fmt: skip
        fig.subplots_adjust(left=0.08, right=0.98, top=0.94, bottom=0.17, hspace=0.25,
                            wspace=0.25)  # fmt: skip
        self.figure_ = fig
        return self


@dataclasses.dataclass
class FamilyMapsDisplay:
    """Families as rows, seeds as columns: each cell the exact map of the family's unit in
    that seed. ``rows``: ``(label, [(title, NeuronMapDisplay or None), ...])`` (``None``:
    a blank cell, the member holds no unit of the family)."""

    rows: Sequence[tuple[str, Sequence[tuple[str, NeuronMapDisplay | None]]]]

    @classmethod
    def from_families(
        cls,
        families: Sequence[Any],
        models: dict[int, Any],
        analyses: dict[int, Any],
        grids: dict[int, Any],
        correlations: dict[tuple[int, str], float],
        *,
        names: Sequence[str] | None = None,
        columns: Sequence[int] | None = None,
    ) -> FamilyMapsDisplay:
        """``families`` (:class:`toylab.universality.Family`); ``models``, ``analyses``
        (exact, for the overlays; ``None`` entries allowed) and ``grids``
        (:func:`toylab.viz.maps.grid_values`) of the members drawn; ``correlations``:
        ``(member, address) -> correlation with the reference's unit``. ``columns``: the
        members drawn, one column each (default those of ``models``); a member without
        a unit of the family leaves its cell blank."""
        cols = list(models) if columns is None else list(columns)
        rows = []
        for i, fam in enumerate(families):
            unit_of: dict[int, str] = {}
            for m, addr in fam.units:
                unit_of.setdefault(m, addr)
            cells: list[tuple[str, NeuronMapDisplay | None]] = []
            for m in cols:
                addr = unit_of.get(m)
                if addr is None:
                    cells.append((f"member {m}: none", None))
                    continue
                if analyses.get(m) is not None:
                    disp = NeuronMapDisplay.from_analysis(models[m], addr, analyses[m],
                                                          grid=grids[m])  # fmt: skip
                else:
                    nid = NeuronId.parse(addr)
                    xx, yy, acts = grids[m]
                    disp = NeuronMapDisplay(addr, xx, yy, acts[nid.key][..., nid.unit])
                rho = correlations.get((m, addr))
                disp.title = f"member {m}: {addr}" + ("" if rho is None else f"\nρ = {rho:.3f}")
                cells.append((disp.title, disp))
            name = names[i] if names is not None else f"family {i + 1}"
            rows.append((f"{name}\n{fam.fraction:.0%} of seeds", cells))
        return cls(rows)

    def plot(self, fig: Any = None) -> FamilyMapsDisplay:
        ncol = max((len(c) for _, c in self.rows), default=1)
        nrow = max(len(self.rows), 1)
        fig = _figure(fig, (1.2 + 2.0 * ncol, 0.5 + 2.25 * nrow))
        axes = fig.subplots(nrow, ncol, squeeze=False)
        for r, (label, cells) in enumerate(self.rows):
            for c in range(ncol):
                ax = axes[r, c]
                disp = cells[c][1] if c < len(cells) else None
                if disp is None:
                    ax.set_xticks([])
                    ax.set_yticks([])
                    ax.set_facecolor("0.96")
                    if c < len(cells):
                        ax.set_title(cells[c][0], fontsize=8, color="0.5")
                        ax.text(0.5, 0.5, "no unit of this\nfamily (no match\nabove the threshold)",
                                ha="center", va="center", fontsize=7, color="0.5",
                                transform=ax.transAxes)  # fmt: skip
                    continue
                disp.plot(ax, colorbar=False, small=True)
                ax.title.set_fontsize(8)
            axes[r, 0].set_ylabel(label, fontsize=9, rotation=0, ha="right", va="center",
                                  labelpad=6)  # fmt: skip
        fig.subplots_adjust(left=1.15 / (1.2 + 2.0 * ncol), right=0.99, top=0.93, bottom=0.02,
                            hspace=0.45, wspace=0.08)  # fmt: skip
        self.figure_ = fig
        return self
