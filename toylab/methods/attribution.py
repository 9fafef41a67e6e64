r"""Attribution: gradient, gradient x input and integrated gradients, scored exactly.

For a piecewise-linear network, integrated gradients along the straight path
``x(s) = baseline + s (x - baseline)`` is exact: the path crosses finitely many
linear regions (breakpoints found in closed form,
:func:`toylab.methods._core.propagate`), the gradient is constant on each piece
(the float64 gradient of the affine piece at its midpoint), so

.. math::

    IG_i = (x_i - x'_i) \sum_k (s_{k+1} - s_k)\, \partial_i f(\text{piece } k),

and completeness ``sum_i IG_i = f(x) - f(x')`` holds to float64 rounding
(tier ``"exact"``). The sampled method is the ``num_steps``-point midpoint
Riemann sum of float32 autodiff gradients (what attribution libraries run);
its error is ``O(1 / num_steps)`` because the integrand jumps at region boundaries.
Gradient and gradient x input at ``x`` are compared with the exact float64
gradient of the piece containing ``x``.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from toylab._errors import fail
from toylab.methods._core import as_nets, flat_index, jax_flat, np_flat, np_grad, propagate

__all__ = ["AttributionResult", "attribution", "exact_integrated_gradients"]


@dataclasses.dataclass(frozen=True, eq=False)
class AttributionResult:
    """Attributions of ``neuron`` at ``x`` (baseline ``baseline``).

    Attributes:
      gradient, gradient_x_input: float32 autodiff at ``x`` (sampled side);
      exact_gradient: the float64 gradient of the linear piece containing ``x``;
      integrated_gradients: the ``num_steps`` midpoint Riemann sum (float32);
      exact_integrated_gradients: the exact piecewise integral (float64);
      num_pieces: linear pieces the path crosses;
      completeness_gap: ``sum(IG) - (f(x) - f(baseline))`` for the Riemann sum
        (sampled) and exact_completeness_gap for the exact integral (~1e-15);
      ig_error: ``max_i |IG_i - exact IG_i|``; gradient_error likewise.
    """

    neuron: str
    x: np.ndarray
    baseline: np.ndarray
    gradient: np.ndarray
    gradient_x_input: np.ndarray
    exact_gradient: np.ndarray
    integrated_gradients: np.ndarray
    exact_integrated_gradients: np.ndarray
    num_pieces: int
    completeness_gap: float
    exact_completeness_gap: float
    ig_error: float
    gradient_error: float
    num_steps: int
    num_forward: int
    num_backward: int
    tier: str = "sampled"
    exact_tier: str = "exact"


def exact_integrated_gradients(layers: Any, acts: Any, x: np.ndarray, baseline: np.ndarray,
                               flat: int) -> tuple[np.ndarray, int]:  # fmt: skip
    """Exact IG of flat unit ``flat`` (float64) and the number of pieces on the path."""
    x, x0 = np.asarray(x, np.float64), np.asarray(baseline, np.float64)
    bounds, _ = propagate(layers, acts, "line", np.stack([x - x0, x0]), 0.0, 1.0)
    mids = 0.5 * (bounds[:-1] + bounds[1:])
    g = np_grad(layers, acts, x0 + mids[:, None] * (x - x0), flat)  # (I, d)
    return (x - x0) * (np.diff(bounds)[:, None] * g).sum(0), len(mids)


@functools.lru_cache(maxsize=16)
def _grad_program(acts: tuple[str, ...]) -> Any:
    def one(params, flat, x):
        return jax.grad(lambda z: jax_flat(params, acts, z)[flat])(x)

    pts = jax.vmap(one, in_axes=(None, None, 0))
    return jax.jit(jax.vmap(pts, in_axes=(0, None, None)))


def attribution(
    model: Any,
    neuron: str,
    x: Any,
    *,
    baseline: Any = None,
    num_steps: int = 64,
) -> AttributionResult | tuple[AttributionResult, ...]:
    """Gradient, gradient x input and integrated gradients of ``neuron`` at ``x``.

    ``baseline`` defaults to the origin. Deterministic (no key); members' gradients
    run in one vmapped program, the exact integrals in a loop over members.
    """
    where = "attribution"
    net = as_nets(where, model)
    if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 1:
        raise fail(where, "num_steps", num_steps, "a positive integer")
    nid, flat = flat_index(where, net.widths, neuron)
    xv = np.asarray(x, np.float64)
    x0 = np.zeros_like(xv) if baseline is None else np.asarray(baseline, np.float64)
    if xv.ndim != 1 or x0.shape != xv.shape:
        raise fail(where, "x", xv.shape, "one input (d,) with a baseline of the same shape")
    s = (np.arange(num_steps) + 0.5) / num_steps
    pts = np.concatenate([xv[None], x0 + s[:, None] * (xv - x0)])
    grads = np.asarray(_grad_program(net.acts)(net.params, flat, jnp.asarray(pts, jnp.float32)),
                       np.float64)  # fmt: skip
    out = []
    for m in range(net.num_members):
        layers = net.layers[m]
        g = grads[m, 0]
        ig = (xv - x0) * grads[m, 1:].mean(0)
        eig, pieces = exact_integrated_gradients(layers, net.acts, xv, x0, flat)
        fx, f0 = np_flat(layers, net.acts, np.stack([xv, x0]))[:, flat]
        eg = np_grad(layers, net.acts, xv[None], flat)[0]
        out.append(AttributionResult(
            neuron=str(nid), x=xv, baseline=x0, gradient=g, gradient_x_input=g * xv,
            exact_gradient=eg, integrated_gradients=ig, exact_integrated_gradients=eig,
            num_pieces=pieces, completeness_gap=float(ig.sum() - (fx - f0)),
            exact_completeness_gap=float(eig.sum() - (fx - f0)),
            ig_error=float(np.abs(ig - eig).max()), gradient_error=float(np.abs(g - eg).max()),
            num_steps=num_steps, num_forward=num_steps + 1, num_backward=num_steps + 1,
        ))  # fmt: skip
    return tuple(out) if net.ensemble else out[0]
