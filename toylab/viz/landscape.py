"""Figures of the loss landscape (:mod:`toylab.dynamics.loss_landscape`), in the Display
pattern of :mod:`toylab.viz.figures`: ``from_*`` reads a result, ``.plot(ax=None)`` draws.

* :class:`HessianSpectrumDisplay` -- one member's Hessian eigenvalues at one checkpoint,
  largest first, the outliers (by the result's stated rule) marked;
* :class:`GradientOverlapDisplay` -- the gradient's overlap with the top-``k`` subspace
  against the step, one line per member, with its error band;
* :class:`ModeConnectivityDisplay` -- the loss (and the exact accuracy) along the
  straight line between two parameter points.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from toylab._errors import fail
from toylab.viz.figures import EXACT_COLOR, SAMPLED_COLOR, _axes
from toylab.viz.maps import CLASS_COLORS

__all__ = ["GradientOverlapDisplay", "HessianSpectrumDisplay", "ModeConnectivityDisplay"]


@dataclasses.dataclass
class HessianSpectrumDisplay:
    """Eigenvalues ``(P,)`` largest first (symmetric-log scale), the first
    ``num_outliers`` drawn as outliers, with the error band of each eigenvalue."""

    eigenvalues: np.ndarray
    error: np.ndarray
    num_outliers: int
    title: str = ""

    @classmethod
    def from_result(
        cls, result: Any, member: int = 0, step: int | None = None
    ) -> HessianSpectrumDisplay:
        where = "HessianSpectrumDisplay.from_result"
        members = [int(m) for m in result.members]
        if member not in members:
            raise fail(where, "member", member, f"one of the result's members {members}")
        steps = [int(s) for s in result.steps]
        step = steps[-1] if step is None else step
        if step not in steps:
            raise fail(where, "step", step, f"one of the result's steps {steps}")
        i, t = members.index(member), steps.index(step)
        title = (f"member {member}, step {step}: {int(result.num_outliers[i, t])} outliers "
                 f"({result.num_classes} classes) [{result.tier}]")  # fmt: skip
        return cls(np.asarray(result.eigenvalues[i, t]), np.asarray(result.eigenvalue_error[i, t]),
                   int(result.num_outliers[i, t]), title)  # fmt: skip

    def plot(self, ax: Any = None) -> HessianSpectrumDisplay:
        ax = _axes(ax, (5.6, 3.6))
        idx = np.arange(1, len(self.eigenvalues) + 1)
        c = self.num_outliers
        lo, hi = self.eigenvalues - self.error, self.eigenvalues + self.error
        ax.fill_between(idx, lo, hi, color="0.85", lw=0, label="error")
        ax.plot(idx[c:], self.eigenvalues[c:], "o", ms=3, color=SAMPLED_COLOR, label="bulk")
        ax.plot(idx[:c], self.eigenvalues[:c], "o", ms=6, color=EXACT_COLOR, label="outliers")
        top = float(np.max(np.abs(self.eigenvalues))) or 1.0
        ax.set_yscale("symlog", linthresh=top * 1e-4)
        ax.set_xlabel("eigenvalue index (largest first)", fontsize=11)
        ax.set_ylabel("Hessian eigenvalue", fontsize=11)
        ax.set_title(self.title, fontsize=11)
        ax.legend(fontsize=8, framealpha=0.85)
        self.ax_ = ax
        return self


@dataclasses.dataclass
class GradientOverlapDisplay:
    """``||P_k g||² / ||g||²`` against the step (``(M, T)`` values and errors)."""

    steps: np.ndarray
    overlap: np.ndarray
    error: np.ndarray
    labels: tuple[str, ...]
    k: int

    @classmethod
    def from_result(cls, result: Any) -> GradientOverlapDisplay:
        return cls(np.asarray(result.steps), np.asarray(result.gradient_overlap),
                   np.asarray(result.overlap_error), tuple(result.labels), int(result.k))  # fmt: skip

    def plot(self, ax: Any = None) -> GradientOverlapDisplay:
        ax = _axes(ax, (5.6, 3.6))
        x = np.maximum(self.steps, 1)  # step 0 drawn at 1 on the log axis
        undetermined = 0
        for m in range(self.overlap.shape[0]):
            color = CLASS_COLORS[m % len(CLASS_COLORS)]
            v, e = self.overlap[m], self.error[m]
            ax.plot(x, v, "-o", ms=3, lw=1.5, color=color, label=self.labels[m])
            # a bound that spans the whole axis says nothing: left out of the picture and
            # counted in the title instead of shading every member's band over [0, 1]
            band = e < 0.5
            undetermined += int(np.sum(~band))
            ax.fill_between(x, np.clip(v - e, 0, 1), np.clip(v + e, 0, 1), where=band,
                            color=color, alpha=0.15, lw=0)  # fmt: skip
        ax.set_xscale("log")
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("step (0 drawn at 1)", fontsize=11)
        ax.set_ylabel(f"gradient in top-{self.k} subspace", fontsize=11)
        if undetermined:
            ax.set_title(f"{undetermined} of {self.error.size} points have an error bound ≥ 0.5 "
                         "(the top subspace is not pinned down): no band drawn", fontsize=8)  # fmt: skip
        if self.overlap.shape[0] <= 8:
            ax.legend(fontsize=8, framealpha=0.85)
        self.ax_ = ax
        return self


@dataclasses.dataclass
class ModeConnectivityDisplay:
    """Loss along ``θ(α)`` with its error band and, where known, the exact accuracy on
    a second axis; the barrier marked."""

    alphas: np.ndarray
    loss: np.ndarray
    loss_error: np.ndarray
    accuracy: np.ndarray | None
    barrier: float
    barrier_alpha: float
    title: str = ""

    @classmethod
    def from_path(cls, path: Any) -> ModeConnectivityDisplay:
        title = f"{path.a} → {path.b}: barrier {path.barrier:.3g} [{path.barrier_tier}]"
        acc = None if path.accuracy is None else np.asarray(path.accuracy)
        return cls(np.asarray(path.alphas), np.asarray(path.loss), np.asarray(path.loss_error),
                   acc, float(path.barrier), float(path.barrier_alpha), title)  # fmt: skip

    def plot(self, ax: Any = None) -> ModeConnectivityDisplay:
        ax = _axes(ax, (5.6, 3.6))
        a, v, e = self.alphas, self.loss, self.loss_error
        ax.fill_between(a, v - e, v + e, color=SAMPLED_COLOR, alpha=0.2, lw=0)
        ax.plot(a, v, "-o", ms=3, color=SAMPLED_COLOR, label="loss")
        line = (1 - a) * v[0] + a * v[-1]
        ax.plot(a, line, "--", lw=1, color="0.5", label="linear interpolation")
        ax.axvline(self.barrier_alpha, color="0.7", lw=0.8)
        ax.set_xlabel("α  (θ = (1 − α) θ_a + α θ_b)", fontsize=11)
        ax.set_ylabel("loss", fontsize=11, color=SAMPLED_COLOR)
        ax.set_title(self.title, fontsize=10)
        if self.accuracy is not None:
            ax2 = ax.twinx()
            ax2.plot(a, self.accuracy, "-s", ms=3, color=EXACT_COLOR, label="exact accuracy")
            ax2.set_ylabel("exact accuracy", fontsize=11, color=EXACT_COLOR)
            self.ax2_ = ax2
        ax.legend(fontsize=8, framealpha=0.85, loc="upper left")
        self.ax_ = ax
        return self
