"""Figure of the density-vs-boundary scores (:mod:`toylab.universality.density`).

:class:`DensityScoresDisplay` (the Display pattern: ``from_*`` computes, ``plot(ax=None)``
draws, matplotlib imported lazily) places every live hidden unit at
``(R² boundary, R² density)``: units above the diagonal band are explained more by the
data density, units below it by the class posterior. Colours are the groups (settings
and layers of a study, or layers of one network); the band is the labels' ``threshold``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from toylab._errors import fail

__all__ = ["DensityScoresDisplay"]


@dataclasses.dataclass(frozen=True, eq=False)
class DensityScoresDisplay:
    """``r2_boundary`` / ``r2_density`` ``(n,)`` of live units, ``groups`` ``(n,)`` their
    group labels, ``threshold`` the labels' preference threshold, ``tier`` the scores'."""

    r2_boundary: np.ndarray
    r2_density: np.ndarray
    groups: tuple[str, ...]
    threshold: float
    tier: str

    @classmethod
    def from_result(cls, result: Any) -> DensityScoresDisplay:
        """From a :class:`~toylab.universality.DensityResult` (groups: layers) or a
        :class:`~toylab.universality.DensityStudyResult` (groups: setting and layer)."""
        rows = getattr(result, "rows", None)
        if callable(rows):  # one network
            rs = [r for r in rows() if r["label"] != "dead"]
            groups = tuple(r["neuron"].split(":")[0] for r in rs)
            threshold = float(result.threshold)
        elif isinstance(rows, tuple):  # a study
            rs = [r for r in rows if r["label"] != "dead"]
            groups = tuple(
                f"{r['distribution']} w{r['width']} d{r['depth']} {r['activation']} {r['layer']}"
                for r in rs
            )
            first = next(iter(result.results.values()), None)
            threshold = float(first.threshold) if first is not None else 0.1
        else:
            raise fail(
                "DensityScoresDisplay.from_result", "result", type(result).__name__,
                "a DensityResult or a DensityStudyResult",
            )  # fmt: skip
        return cls(
            r2_boundary=np.array([r["r2_boundary"] for r in rs], np.float64),
            r2_density=np.array([r["r2_density"] for r in rs], np.float64),
            groups=groups,
            threshold=threshold,
            tier=str(result.tier),
        )

    def plot(self, ax: Any = None) -> Any:
        """Draw the scatter (one colour per group) and the ``±threshold`` band."""
        if ax is None:
            import matplotlib.pyplot as plt

            _, ax = plt.subplots(figsize=(4.8, 4.2))
        t = np.linspace(0.0, 1.0, 2)
        ax.fill_between(t, t - self.threshold, t + self.threshold, color="0.9", lw=0)
        ax.plot(t, t, color="0.5", lw=0.8)
        for g in dict.fromkeys(self.groups):
            sel = np.array([x == g for x in self.groups])
            ax.scatter(self.r2_boundary[sel], self.r2_density[sel], s=14, alpha=0.8, label=g)
        ax.set(xlim=(0, 1), ylim=(0, 1), aspect="equal",
               xlabel="R² by the posterior (boundary)", ylabel="R² by the density")  # fmt: skip
        ax.set_title(f"density or boundary? ({self.tier})", fontsize=10)
        if self.groups:
            ax.legend(fontsize=6, loc="lower right")
        return ax
