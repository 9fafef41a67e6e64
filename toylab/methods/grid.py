"""Grid evaluation: the simplest sampled method, and what every map picture is made of.

A grid is a sample: its maximum is only a lower bound on the true maximum over the box
(the optimum may lie between grid points). :func:`toylab.exact.maximize` gives a
certified maximum; :func:`toylab.exact.extrema` the exact one for piecewise-linear
networks on 2-D inputs.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from toylab._errors import fail
from toylab._validate import check_array, check_int
from toylab.network import as_network
from toylab.tiers import Tier

__all__ = ["GridResult", "grid_evaluate"]

_MAX_GRID_POINTS = 4_000_000


@dataclasses.dataclass(frozen=True)
class GridResult:
    """One neuron on a regular grid over a box (tier ``"sampled"``, not exact).

    ``values[i0, i1, ...]`` is the neuron at ``(axes[0][i0], axes[1][i1], ...)``.
    ``max`` is only a lower bound on the true maximum over the box (and ``min``
    an upper bound on the true minimum).
    """

    neuron: str
    axes: tuple[np.ndarray, ...]
    values: np.ndarray
    max: float
    argmax: np.ndarray
    min: float
    argmin: np.ndarray
    num_points: int
    tier: Tier = "sampled"
    note: str = (
        "sampled on a grid: max is a lower bound on the true maximum and min an upper "
        "bound on the true minimum; not exact"
    )


def grid_evaluate(
    model: Any, low: Any, high: Any, neuron: str, *, num_per_axis: int = 201
) -> GridResult:
    """Evaluate one neuron on a ``num_per_axis``-per-axis grid over ``[low, high]`` (float64).

    Any input dimension works as long as ``num_per_axis ** dim <= 4e6``; the grid
    includes the box corners.

    >>> from toylab.network import Network
    >>> net = Network.from_weights([[[1.0], [1.0]]])
    >>> res = grid_evaluate(net, [0.0, 0.0], [1.0, 1.0], "output:0", num_per_axis=3)
    >>> res.max, res.argmax.tolist(), res.tier
    (2.0, [1.0, 1.0], 'sampled')
    """
    where = "grid_evaluate"
    net = as_network(model, where).numpy(np.float64)
    nid = net.resolve(neuron, allow_input=True)
    dim = net.input_dim
    lo = check_array(where, "low", low, shape=(dim,))
    hi = check_array(where, "high", high, shape=(dim,))
    if not np.all(lo < hi):
        raise fail(where, "low", lo.tolist(), f"< high={hi.tolist()} in every dimension")
    num = check_int(where, "num_per_axis", num_per_axis, minimum=2)
    total = num**dim
    if total > _MAX_GRID_POINTS:
        raise fail(
            where, "num_per_axis", num,
            f"small enough that num_per_axis ** {dim} <= {_MAX_GRID_POINTS}",
            "Use fewer points per axis, or toylab.exact.maximize for a certified answer.",
        )  # fmt: skip
    axes = tuple(np.linspace(a, b, num) for a, b in zip(lo, hi, strict=True))
    mesh = np.meshgrid(*axes, indexing="ij")
    pts = np.stack([m.ravel() for m in mesh], axis=1)
    vals = net.values(pts, nid)
    imax, imin = int(np.argmax(vals)), int(np.argmin(vals))
    return GridResult(
        neuron=str(nid),
        axes=axes,
        values=vals.reshape(mesh[0].shape),
        max=float(vals[imax]),
        argmax=pts[imax].copy(),
        min=float(vals[imin]),
        argmin=pts[imin].copy(),
        num_points=total,
    )
