r"""Attribution: gradient, gradient x input and integrated gradients, scored exactly.

For a piecewise-linear network, integrated gradients along the straight path
``x(s) = baseline + s (x - baseline)`` is exact (:func:`toylab.exact.integrated_gradients`):
the path crosses finitely many linear regions, the gradient is constant on each piece,
so

.. math::

    IG_i = (x_i - x'_i) \sum_k (s_{k+1} - s_k)\, \partial_i f(\text{piece } k),

and completeness ``sum_i IG_i = f(x) - f(x')`` holds to float64 rounding (tier
``"exact"``). The sampled method is the ``num_steps``-point midpoint Riemann sum of
float32 autodiff gradients (what attribution libraries run); its error is
``O(1 / num_steps)`` because the integrand jumps at region boundaries. Gradient and
gradient x input at ``x`` are compared with the float64 gradient of the piece containing
``x`` (:meth:`toylab.network.Network.gradient`). No distribution is involved, so
attribution applies to any input dimension.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import numpy as np

from toylab._errors import NotApplicable, fail
from toylab.methods._core import (
    MISLEAD_FRACTION,
    Members,
    MethodResult,
    as_members,
    f32,
    flat_gradients,
    positive_int,
    to_f64,
)
from toylab.tiers import Tier

__all__ = ["AttributionResult", "attribution"]


@dataclasses.dataclass(frozen=True, eq=False, kw_only=True)
class AttributionResult(MethodResult):
    """Attributions of ``neuron`` at ``x`` from ``baseline``.

    Uniform fields (:class:`toylab.methods.MethodResult`): ``sampled`` is the sum of the
    Riemann-sum IG, ``exact`` the sum of the exact IG (``f(x) - f(baseline)`` up to
    rounding), ``error = max_i |IG_i - exact IG_i|``, in the neuron's units;
    ``error_tier`` ``"exact"``, ``exact_error`` the exact IG's completeness gap (its
    float64 rounding). **Misleads** when ``error`` exceeds 5% of the largest exact
    attribution ``max_i |exact IG_i|`` (plus a float32 rounding floor): the Riemann sum
    then misattributes a visible share.

    Other fields: ``gradient``, ``gradient_x_input``: float32 autodiff at ``x``;
    ``exact_gradient``: the float64 gradient of the piece containing ``x``;
    ``integrated_gradients`` (Riemann, float32) and ``exact_integrated_gradients``;
    ``num_pieces``: linear pieces the path crosses; ``completeness_gap``: ``sum(IG) -
    (f(x) - f(baseline))`` for the Riemann sum; ``gradient_error``; ``num_steps``.
    """

    method: ClassVar[str] = "attribution"
    score: ClassVar[str] = "sum of integrated gradients"
    error_measure: ClassVar[str] = "max_i |Riemann IG_i - exact IG_i|"
    x: np.ndarray
    baseline: np.ndarray
    gradient: np.ndarray
    gradient_x_input: np.ndarray
    exact_gradient: np.ndarray
    integrated_gradients: np.ndarray
    exact_integrated_gradients: np.ndarray
    num_pieces: int
    completeness_gap: float
    gradient_error: float
    num_steps: int
    units: str = "activation"
    tier: Tier = "sampled"

    @property
    def detail(self) -> str:
        return (
            f"pieces={self.num_pieces} completeness_gap={self.completeness_gap:.3g} "
            f"exact_gap={self.exact_error:.1e}"
        )


def score_attribution(
    members: Members, m: int, neuron: str, xv: np.ndarray, x0: np.ndarray, grads: np.ndarray,
    num_steps: int,
) -> AttributionResult:  # fmt: skip
    """Score member ``m``'s float32 gradients ``grads (1 + num_steps, d)`` (at ``x``, then at
    the Riemann midpoints)."""
    from toylab.exact import integrated_gradients

    nid = members.resolve("attribution", neuron)
    net = members.networks[m]
    g = grads[0]
    ig = (xv - x0) * grads[1:].mean(0)
    try:
        eig, pieces = integrated_gradients(net, str(nid), xv, x0)
    except NotApplicable as exc:
        raise NotApplicable(f"attribution: no exact integrated gradients. {exc}") from None
    fx, f0 = net.values(np.stack([xv, x0]), nid)
    eg = net.gradient(xv[None], nid)[0]
    err = float(np.abs(ig - eig).max())
    floor = 1e-5 * (1.0 + abs(float(fx)) + abs(float(f0)))  # float32 rounding
    return AttributionResult(
        neuron=str(nid), sampled=float(ig.sum()), exact=float(eig.sum()), error=err,
        error_tier="exact", exact_error=abs(float(eig.sum() - (fx - f0))),
        misleads=bool(err > MISLEAD_FRACTION * float(np.abs(eig).max()) + floor),
        num_forward=num_steps + 1, num_backward=num_steps + 1, x=xv, baseline=x0, gradient=g,
        gradient_x_input=g * xv, exact_gradient=eg, integrated_gradients=ig,
        exact_integrated_gradients=eig, num_pieces=pieces,
        completeness_gap=float(ig.sum() - (fx - f0)),
        gradient_error=float(np.abs(g - eg).max()), num_steps=num_steps,
    )  # fmt: skip


def riemann_points(xv: np.ndarray, x0: np.ndarray, num_steps: int) -> np.ndarray:
    """``x`` followed by the ``num_steps`` midpoints of the path: ``(1 + num_steps, d)``."""
    s = (np.arange(num_steps) + 0.5) / num_steps
    return np.concatenate([xv[None], x0 + s[:, None] * (xv - x0)])


def attribution(
    model: Any,
    neuron: str,
    x: Any,
    *,
    baseline: Any = None,
    num_steps: int = 64,
) -> AttributionResult | tuple[AttributionResult, ...]:
    """Gradient, gradient x input and integrated gradients of ``neuron`` at ``x``.

    ``baseline`` defaults to the origin. Deterministic (no key); members' gradients run
    in one vmapped program (one compilation for every neuron), the exact integrals per
    member. Raises :class:`~toylab.NotApplicable` for networks that are not piecewise
    linear (no exact IG).
    """
    where = "attribution"
    members = as_members(where, model)
    num_steps = positive_int(where, "num_steps", num_steps)
    nid, flat = members.flat(where, neuron)
    d = members.input_dim
    xv = np.asarray(x, np.float64)
    x0 = np.zeros_like(xv) if baseline is None else np.asarray(baseline, np.float64)
    if xv.shape != (d,) or x0.shape != (d,):
        raise fail(where, "x, baseline", (xv.shape, x0.shape), f"two inputs of shape ({d},)")
    if not (np.all(np.isfinite(xv)) and np.all(np.isfinite(x0))):
        raise fail(where, "x, baseline", (xv.tolist(), x0.tolist()), "finite inputs")
    if not members.piecewise_linear:
        raise NotApplicable(
            f"{where}: exact integrated gradients need a piecewise-linear network, got "
            f"activations {list(members.reference.activations)}."
        )
    pts = riemann_points(xv, x0, num_steps)
    grads = to_f64(flat_gradients(members.stacked, np.int32(flat), f32(pts)))
    return members.result([
        score_attribution(members, m, str(nid), xv, x0, grads[m], num_steps)
        for m in range(members.num_members)
    ])  # fmt: skip
