"""A claim's counterexample on the neuron's map (scikit-learn's Display pattern).

:class:`CounterexampleDisplay` takes a :class:`toylab.claims.ClaimResult` (the verdict
of :func:`toylab.claims.check`): :meth:`CounterexampleDisplay.from_result` evaluates
the failing neuron on a grid over the domain box (or over the window of the checked
plane) with the network's forward pass, and :meth:`CounterexampleDisplay.plot` draws the
map, the counterexample (a green cross) and the exact failing region of an exact verdict
(green outlines), with the verdict as the title. The map is a picture from a grid of
forward passes, not an exact result; the marks come from the verdict.

:func:`plot_counterexample` writes that figure to a PNG through a
:class:`matplotlib.figure.Figure` of its own (no pyplot, no backend switch), which is
what :func:`toylab.testing.assert_claim` calls on a failure.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from toylab._errors import fail
from toylab.distributions.base import Box
from toylab.network import as_network
from toylab.viz.maps import NeuronMapDisplay

if TYPE_CHECKING:
    from toylab.claims import ClaimResult

__all__ = ["CounterexampleDisplay", "plot_counterexample"]


def _failing_leaf(result: Any) -> Any:
    """The innermost failing verdict (the one whose witness a composite carries)."""
    leaf = result
    while leaf.children:
        leaf = next((c for c in leaf.children if not c.holds), leaf.children[0])
    return leaf


@dataclasses.dataclass
class CounterexampleDisplay:
    """A failing verdict drawn on the neuron's map.

    ``map`` is the neuron's :class:`~toylab.viz.NeuronMapDisplay`, ``witness`` the
    counterexample ``(2,)`` (or ``None``), ``region`` the polygons of the failing set
    that an exact verdict found, ``title`` the statement and verdict.
    """

    map: NeuronMapDisplay
    holds: bool
    title: str
    witness: np.ndarray | None = None
    region: tuple[np.ndarray, ...] = ()

    @classmethod
    def from_result(
        cls,
        result: ClaimResult,
        model: Any,
        dist: Any,
        *,
        plane: Any = None,
        window: Any = None,
        num: int = 160,
    ) -> CounterexampleDisplay:
        """Evaluate the verdict's failing neuron on a ``num x num`` grid.

        ``plane`` and ``window`` are those given to :func:`toylab.claims.check` (the
        coordinates of the witness); without a plane the distribution's 2-D box is used.
        """
        where = "CounterexampleDisplay.from_result"
        if isinstance(num, bool) or not isinstance(num, int) or num < 2:
            raise fail(where, "num", num, "an integer >= 2")
        leaf = _failing_leaf(result)
        net = as_network(model, where).untied().numpy(np.float64)
        if plane is not None:
            net = net.on_plane(*plane)
            if window is None:
                from toylab.exact import box

                window = box()
            w = np.asarray(window, np.float64)
            low, high = w.min(0), w.max(0)
        else:
            domain = getattr(dist, "domain", None)
            if not isinstance(domain, Box) or domain.dim != 2:
                raise fail(
                    where,
                    "dist",
                    type(dist).__name__,
                    "a distribution with 2-D box inputs",
                    "For more dimensions pass the plane the claim was checked on.",
                )
            low, high = np.asarray(domain.low), np.asarray(domain.high)
        nid = net.resolve(leaf.neuron.split(",")[0].strip())
        xx, yy = np.meshgrid(np.linspace(low[0], high[0], num), np.linspace(low[1], high[1], num))
        values = net.values(np.stack([xx.ravel(), yy.ravel()], -1), nid).reshape(xx.shape)
        witness = None if leaf.witness is None else np.asarray(leaf.witness, np.float64)
        points = {}
        if witness is not None and witness.size % 2 == 0:
            points["counterexample"] = witness.reshape(-1, 2)
        verdict = f"{'holds' if result.holds else 'FAILS'} [{result.tier}]"
        title = f"{nid}: {leaf.statement}"[:70] + f"\n{verdict}"
        m = NeuronMapDisplay(str(nid), xx, yy, values, points=points, title=title)
        return cls(m, bool(result.holds), title, witness, tuple(leaf.witness_region))

    def plot(self, ax: Any = None) -> CounterexampleDisplay:
        """Draw onto ``ax`` (a new pyplot figure if ``None``)."""
        self.map.plot(ax, colorbar=True)
        ax = self.map.ax_
        if self.region:
            from matplotlib.collections import PolyCollection

            ax.add_collection(
                PolyCollection(
                    list(self.region),
                    facecolors=(0.2, 1.0, 0.2, 0.25),
                    edgecolors="lime",
                    linewidths=1.5,
                    zorder=5,
                    label="failing region",
                )
            )
        ax.set_title(self.title, fontsize=10, color="#1a9850" if self.holds else "#d73027")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8, loc="lower right", framealpha=0.85)
        self.ax_ = ax
        return self


def plot_counterexample(
    result: ClaimResult,
    model: Any,
    dist: Any,
    path: str | Path,
    *,
    plane: Any = None,
    window: Any = None,
    num: int = 160,
) -> Path:
    """Write a PNG of :class:`CounterexampleDisplay` to ``path`` and return the path."""
    from matplotlib.figure import Figure

    disp = CounterexampleDisplay.from_result(
        result, model, dist, plane=plane, window=window, num=num
    )
    fig = Figure(figsize=(5.6, 4.8))
    disp.plot(fig.add_subplot())
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    return path
