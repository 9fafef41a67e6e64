"""Guaranteed bounds on every neuron over an input box, and certified maxima.

The network is a :class:`~toylab.network.Network` (or a toylab model): layer ``k``
computes ``z_k = h_{k-1} @ W_k + b_k`` (``h_{-1} = x``) and ``h_k = act_k(z_k)``, the
activations coming from :mod:`toylab.activations` (their shape data, Lipschitz
constants and minima are defined there once). Layer keys follow
:mod:`toylab.neurons`: ``"input"``, ``"hidden_k.pre"`` (``z_k``), ``"hidden_k"``
(``h_k``), ``"output.pre"`` where the output has an activation, and ``"output"``.

Everything here is float64 NumPy on the host, tier ``"certified"``: the true values
lie inside the returned enclosure (:func:`interval_bounds`, :func:`linear_bounds`),
and the maximum of :func:`maximize` / :func:`minimize` is pinned down to within a
requested gap, with the leaf boxes that certify it. (A grid evaluation is a sampled
method: :func:`toylab.methods.grid_evaluate`.)

Soundness
---------
*Interval bound propagation* (IBP) maps a box through ``x @ W + b`` exactly
(centre/radius form) and through each activation by the exact range of the 1-D
function on the interval: ``[f(l), f(u)]`` for the monotone ones (relu,
leaky_relu, hardtanh, identity, tanh, sigmoid); for abs and quadratic the
minimum ``0`` is used when ``0 in [l, u]``; gelu ``x Φ(x)`` decreases to its
minimum at ``x* ≈ -0.75179`` and increases after it, so its range is the
endpoints plus ``gelu(x*)`` when ``x* in [l, u]``. ``x*`` solves
``gelu'(x) = Φ(x) + x φ(x) = 0`` (scipy ``brentq`` to ``1e-15``); since
``gelu'(x*) = 0`` the root error enters the value only quadratically, and the
value is padded down by 1e-12 (:data:`toylab.activations.GELU_MIN`).

*Linear bounds* (CROWN / DeepPoly style) relax every activation on its
pre-activation interval ``[l, u]`` by two lines ``a_L z + c_L <= f(z) <= a_U z + c_U``
and substitute them backwards through the network to the input box, where a
linear function is maximised in closed form. The slopes are picked by a
heuristic (among the chord and the tangent slopes at ``l``, ``u`` and the
midpoint, the one whose line is lowest / highest at the midpoint), but soundness
never depends on that choice: for a slope ``a`` the offsets are
``c_U >= max_[l,u] (f(z) - a z)`` and ``c_L <= min_[l,u] (f(z) - a z)``, computed by
splitting ``[l, u]`` at the kinks and inflection points of ``f`` (relu, leaky_relu,
abs: 0; hardtanh: ±1; tanh, sigmoid: 0; gelu: ±√2). On a linear piece the
extremes are at its ends. On a convex piece (``g = f - a z`` convex) the maximum
is at an end and the minimum is bounded below by the tangent of ``g`` at the
point ``t`` found by bisection on ``g'`` : ``g(z) >= g(t) + g'(t)(z - t)`` holds on the
whole piece by convexity, whatever the accuracy of ``t``; concave pieces are the
mirror image. This gives, for relu, the standard triangle relaxation (chord
above, the better of ``0`` and ``z`` below); for convex/concave parts of the
smooth functions, chords and tangents; and for mixed-curvature intervals sound
lines whose offsets are exact up to rounding.

*Input sets* (:func:`neuron_bounds`, batched over many boxes): besides the box, the
inputs may be known to lie in a zonotope ``{x0 + G e + r : |e| <= 1, |r| <= rad}``
(:class:`Zonotope`; e.g. a first-order model of an image renderer over a parameter
box). A linear function ``a.x`` is then also maximised over the zonotope in closed
form, ``a.x0 + |a|.rad + sum_p |a.G_p|``, and the smaller of the two maxima kept, at
every layer; both sets hold the inputs, so the bounds stay sound.

Rounding: every computed bound is pushed outwards by ``1e-11`` times the
magnitude of the terms that were summed to form it (about ``1e5`` unit
roundoffs), so the bounds also hold for the float64 forward pass.

*Branch and bound* (:func:`maximize`) keeps a partition of the box into leaf
boxes. Each leaf carries a certified upper bound (from :func:`linear_bounds`,
restricted to the leaf); the best value found at any evaluated point is a lower
bound. Points come from each leaf's centre, the corners that maximise the
linear relaxation's coefficients, and a few steps of projected sign-gradient
ascent. The leaves with the highest upper bounds are split at the midpoint of the
dimension with the largest coefficient-weighted width until every leaf's upper
bound is within ``gap`` of the best value. The leaves are returned as a
certificate.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import math
import time
from collections.abc import Sequence
from typing import Any, Literal, NamedTuple

import jax
import numpy as np

from toylab._errors import fail
from toylab.activations import Activation
from toylab.layers import MaxPool
from toylab.network import Network, as_network
from toylab.tiers import Tier

__all__ = [
    "BranchCertificate",
    "MaximizeResult",
    "interval_bounds",
    "linear_bounds",
    "maximize",
    "minimize",
    "neuron_bounds",
    "Zonotope",
    "NeuronBounds",
    "branch_and_bound",
]

Bounds = dict[str, tuple[np.ndarray, np.ndarray]]
_EPS = 1e-11  # relative outward padding against float64 rounding (~1e5 unit roundoffs)
_BISECT_STEPS = 40  # tightness only; soundness comes from the tangent bound


def _pad(x: np.ndarray, scale: np.ndarray) -> np.ndarray:
    return _EPS * (1e-300 + np.abs(x) + scale)


def _outward(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Replace NaN bounds (from ``inf - inf`` after an overflow) by ``-inf`` / ``inf``."""
    return np.where(np.isnan(lo), -np.inf, lo), np.where(np.isnan(hi), np.inf, hi)


_quiet = np.errstate(over="ignore", invalid="ignore", divide="ignore")
"""Overflow in huge networks gives infinite (still sound) bounds, without warnings."""


@_quiet
def _range(act: Activation, l: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A sound enclosure of ``{f(z) : l <= z <= u}`` (elementwise)."""
    fl, fu = act(l), act(u)
    lo, hi = np.minimum(fl, fu), np.maximum(fl, fu)
    if act.argmin is not None:
        inside = (l <= act.argmin) & (act.argmin <= u)
        lo = np.where(inside, np.minimum(lo, act.fmin), lo)
    scale = np.maximum(np.abs(l), np.abs(u))
    return _outward(lo - _pad(lo, scale), hi + _pad(hi, scale))


def _offsets(
    act: Activation, l: np.ndarray, u: np.ndarray, a: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Sound ``lo <= min g`` and ``hi >= max g`` of ``g(z) = f(z) - a z`` on ``[l, u]``.

    See the module docstring: the ends of every linear/convex/concave piece, plus a
    tangent bound at a bisection point for the interior extreme of curved pieces.
    """
    l, u, a = np.broadcast_arrays(l, u, a)

    def g(z: np.ndarray) -> np.ndarray:
        return act(z) - a * z

    gl, gu = g(l), g(u)
    lo, hi = np.minimum(gl, gu), np.maximum(gl, gu)
    for b in act.shape_points:
        gb = g(np.clip(b, l, u))
        lo, hi = np.minimum(lo, gb), np.maximum(hi, gb)
    edges = (-np.inf, *act.shape_points, np.inf)
    for p, c in enumerate(act.curvature):
        if c == 0:
            continue
        pl, pu = np.clip(edges[p], l, u), np.clip(edges[p + 1], l, u)
        # g' = f' - a is monotone on the piece (increasing if convex). An interior
        # extreme exists only where g' changes sign; elsewhere the piece's ends,
        # already counted, are its extremes.
        dl, du = act.grad(pl) - a, act.grad(pu) - a
        need = (pl < pu) & ((dl < 0) & (du > 0) if c > 0 else (dl > 0) & (du < 0))
        if not np.any(need):
            continue
        x0, x1, an = pl[need], pu[need], a[need]
        for _ in range(_BISECT_STEPS):
            mid = 0.5 * (x0 + x1)
            dm = act.grad(mid) - an
            root_left = dm > 0 if c > 0 else dm < 0
            x1 = np.where(root_left, mid, x1)
            x0 = np.where(root_left, x0, mid)
        t = 0.5 * (x0 + x1)
        gt, dt = act(t) - an * t, act.grad(t) - an
        ends = (dt * (pl[need] - t), dt * (pu[need] - t))
        if c > 0:  # convex: g >= its tangent at t on the whole piece
            lo[need] = np.minimum(lo[need], gt + np.minimum(*ends))
        else:  # concave: g <= its tangent at t
            hi[need] = np.maximum(hi[need], gt + np.maximum(*ends))
    scale = (np.abs(a) + 1.0) * np.maximum(np.abs(l), np.abs(u))
    return _outward(lo - _pad(lo, scale), hi + _pad(hi, scale))


@_quiet
def _relax(act: Activation, l: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, ...]:
    """Sound lines ``aL z + cL <= f(z) <= aU z + cU`` on ``[l, u]``: ``(aL, cL, aU, cU)``."""
    if act.name == "identity":
        one = np.ones_like(l)
        return one, np.zeros_like(l), one, np.zeros_like(l)
    m = 0.5 * (l + u)
    w = u - l
    wide = w > 1e-9 * (1.0 + np.abs(m))
    chord = np.where(wide, (act(u) - act(l)) / np.where(wide, w, 1.0), act.grad(m))
    slopes = np.stack([chord, act.grad(l), act.grad(u), act.grad(m)])
    lo, hi = _offsets(act, l[None], u[None], slopes)
    iu = np.argmin(slopes * m + hi, axis=0)[None]
    il = np.argmax(slopes * m + lo, axis=0)[None]
    take = np.take_along_axis
    return (
        take(slopes, il, 0)[0],
        take(lo, il, 0)[0],
        take(slopes, iu, 0)[0],
        take(hi, iu, 0)[0],
    )


# --------------------------------------------------------------------------- network


@dataclasses.dataclass(frozen=True)
class _Net:
    """The float64 dense view of a :class:`~toylab.network.Network` that the bounds use."""

    network: Network
    Ws: tuple[np.ndarray, ...]
    bs: tuple[np.ndarray, ...]
    acts: tuple[Activation, ...]  # one per layer, the output's last

    @property
    def dim(self) -> int:
        return self.Ws[0].shape[0]

    @property
    def widths(self) -> dict[str, int]:
        return self.network.widths


def _check_net(where: str, model: Any) -> _Net:
    net = as_network(model, where)
    pairs = net.dense_layers(np.float64)
    for k, (w, b) in enumerate(pairs):
        if not (np.all(np.isfinite(w)) and np.all(np.isfinite(b))):
            raise fail(where, f"layer {k}", "non-finite weights", "finite")
    return _Net(net, tuple(w for w, _ in pairs), tuple(b for _, b in pairs), net.acts)


def _check_box(
    where: str, net: _Net | _InputDim, low: Any, high: Any
) -> tuple[np.ndarray, np.ndarray]:
    lo = np.asarray(low, dtype=np.float64)
    hi = np.asarray(high, dtype=np.float64)
    for name, v in (("low", lo), ("high", hi)):
        if v.shape != (net.dim,):
            raise fail(
                where,
                name,
                v.shape,
                f"shape ({net.dim},), the input dimension (fan_in of layers[0] W)",
            )
        if not np.all(np.isfinite(v)):
            raise fail(where, name, v.tolist(), "finite")
    if not np.all(lo < hi):
        raise fail(
            where,
            "low",
            lo.tolist(),
            f"< high={hi.tolist()} in every dimension",
            "Pass a box with low < high.",
        )
    return lo, hi


@dataclasses.dataclass(frozen=True)
class _Target:
    layer: int  # affine layer index of the pre-activation; -1 for the input
    unit: int
    post: bool
    name: str


def _check_target(where: str, net: _Net, neuron: Any) -> _Target:
    """The layer, unit and side of a neuron address (``"input:0"`` allowed)."""
    nid = net.network.resolve(neuron, allow_input=True)
    name = str(nid)
    if nid.layer == "input":
        return _Target(-1, nid.unit, False, name)
    k = net.network.layer_index(nid.layer)
    return _Target(k, nid.unit, not nid.pre, name)


def _forward(net: _Net, x: np.ndarray, upto: int) -> list[np.ndarray]:
    """Pre-activations ``z_0..z_upto`` for points ``x`` of shape ``(N, d)``."""
    zs, h = [], x
    for k in range(upto + 1):
        z = h @ net.Ws[k] + net.bs[k]
        zs.append(z)
        h = net.acts[k](z)
    return zs


def _values(net: _Net, x: np.ndarray, target: _Target) -> np.ndarray:
    if target.layer < 0:
        return x[:, target.unit].copy()
    z = _forward(net, x, target.layer)[-1][:, target.unit]
    return net.acts[target.layer](z) if target.post else z


def _grads(net: _Net, x: np.ndarray, target: _Target) -> np.ndarray:
    """The gradient of the target neuron with respect to ``x``, shape ``(N, d)``."""
    if target.layer < 0:
        g = np.zeros_like(x)
        g[:, target.unit] = 1.0
        return g
    zs = _forward(net, x, target.layer)
    g = np.tile(net.Ws[target.layer][:, target.unit], (x.shape[0], 1))
    if target.post:
        g = g * net.acts[target.layer].grad(zs[-1][:, target.unit])[:, None]
    for k in range(target.layer - 1, -1, -1):
        g = (g * net.acts[k].grad(zs[k])) @ net.Ws[k].T
    return g


# --------------------------------------------------------------------------- propagation


def _ibp_affine(
    l: np.ndarray, u: np.ndarray, W: np.ndarray, b: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    c, r = 0.5 * (l + u), 0.5 * (u - l)
    zc = c @ W + b
    zr = r @ np.abs(W)
    pad = _EPS * (np.abs(c) @ np.abs(W) + zr + np.abs(b) + 1e-300)
    return _outward(zc - zr - pad, zc + zr + pad)


def _backsub(
    net: _Net,
    t: int,
    relax: list[tuple[np.ndarray, ...]],
    c: np.ndarray,
    r: np.ndarray,
    upper: bool,
    zono: Zonotope | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Linear bound on ``z_t`` from the relaxations of layers ``< t``: ``(bound, A)``.

    ``A`` (shape ``(B, n_t, d)``) holds the input coefficients of the linear bound.
    The linear function is maximised (minimised) over the box ``c ± r`` and, when
    ``zono`` is given, also over that set, and the better of the two is kept (the
    inputs lie in both).
    """
    B = c.shape[0]
    A = np.broadcast_to(net.Ws[t].T, (B,) + net.Ws[t].T.shape)
    Aabs = np.abs(A)
    d = np.broadcast_to(net.bs[t], (B, net.bs[t].size)).copy()
    dabs = np.abs(d)
    for j in range(t - 1, -1, -1):
        aL, cL, aU, cU = relax[j]
        Ap, An = np.maximum(A, 0.0), np.minimum(A, 0.0)
        if upper:
            Az = Ap * aU[:, None, :] + An * aL[:, None, :]
            d = d + np.einsum("bij,bj->bi", Ap, cU) + np.einsum("bij,bj->bi", An, cL)
        else:
            Az = Ap * aL[:, None, :] + An * aU[:, None, :]
            d = d + np.einsum("bij,bj->bi", Ap, cL) + np.einsum("bij,bj->bi", An, cU)
        dabs = dabs + np.einsum("bij,bj->bi", Aabs, np.abs(cU) + np.abs(cL))
        Aabs = Aabs * np.maximum(np.abs(aU), np.abs(aL))[:, None, :]
        d = d + Az @ net.bs[j]
        dabs = dabs + Aabs @ np.abs(net.bs[j])
        A = Az @ net.Ws[j].T
        Aabs = Aabs @ np.abs(net.Ws[j]).T
    lin = np.einsum("bij,bj->bi", A, c)
    absA = np.abs(A)
    spread = np.einsum("bij,bj->bi", absA, r)
    pad = _EPS * (dabs + np.einsum("bij,bj->bi", Aabs, np.abs(c) + r) + 1e-300)
    if zono is not None:
        # over the zonotope: a.x0 ± (|a|.radius + sum_p |a.G_p|)
        zlin = np.einsum("bij,bj->bi", A, zono.centre)
        zspread = np.einsum("bij,bj->bi", absA, zono.radius) + np.abs(
            np.matmul(A, zono.generators)
        ).sum(-1)
        zscale = np.abs(zono.centre) + zono.radius + np.abs(zono.generators).sum(-1)
        zpad = _EPS * (dabs + np.einsum("bij,bj->bi", Aabs, zscale) + 1e-300)
        if upper:
            lin, spread, pad = np.fmin(lin + spread + pad, zlin + zspread + zpad), 0.0, 0.0
        else:
            lin, spread, pad = np.fmax(lin - spread - pad, zlin - zspread - zpad), 0.0, 0.0
    if upper:
        return _outward(d, d + lin + spread + pad)[1], A
    return _outward(d + lin - spread - pad, d)[0], A


@_quiet
def _propagate(
    net: _Net,
    low: np.ndarray,
    high: np.ndarray,
    upto: int,
    linear: bool,
    zono: Zonotope | None = None,
    skip_identity: bool = False,
) -> tuple[list[tuple[np.ndarray, np.ndarray]], np.ndarray, np.ndarray]:
    """Bounds on ``z_0..z_upto`` for a batch of boxes ``(B, d)`` (each intersected
    with its ``zono`` set when given, which needs ``linear``).

    ``skip_identity``: layers below ``upto`` whose activation is the identity (an average
    pooling) keep their interval bounds: their relaxation is exact whatever the bounds,
    so back-substituting them (a full layer each) only tightens the next layer's
    interval bound, which its own back-substitution replaces anyway.

    Returns the pre-activation bounds and the input coefficients ``(A_U, A_L)`` of
    the linear upper and lower bounds of ``z_upto`` (``W^T`` for the first layer).
    """
    c, r = 0.5 * (low + high), 0.5 * (high - low)
    l, u = low, high
    pre: list[tuple[np.ndarray, np.ndarray]] = []
    relax: list[tuple[np.ndarray, ...]] = []
    A_U = A_L = np.broadcast_to(net.Ws[0].T, (low.shape[0],) + net.Ws[0].T.shape)
    for t in range(upto + 1):
        l, u = _ibp_affine(l, u, net.Ws[t], net.bs[t])
        exact_relax = skip_identity and t < upto and net.acts[t].name == "identity"
        if linear and (t > 0 or zono is not None) and not exact_relax:
            ub, A_U = _backsub(net, t, relax, c, r, upper=True, zono=zono)
            lb, A_L = _backsub(net, t, relax, c, r, upper=False, zono=zono)
            l, u = np.fmax(l, lb), np.fmin(u, ub)  # fmax: a NaN (inf - inf) bound is ignored
        pre.append((l, u))
        if t < upto:
            act = net.acts[t]
            if linear:
                relax.append(_relax(act, l, u))
            l, u = _range(act, l, u)
    return pre, A_U, A_L


@_quiet
def _all_bounds(net: _Net, low: np.ndarray, high: np.ndarray, linear: bool) -> Bounds:
    pre, _, _ = _propagate(net, low[None], high[None], len(net.Ws) - 1, linear)
    out: Bounds = {"input": (low.copy(), high.copy())}
    for k, act in enumerate(net.acts):
        l, u = pre[k][0][0], pre[k][1][0]
        post = net.network.layer_names[k][0]
        if act.name == "identity" and post == "output":
            out[post] = (l, u)
        else:
            out[f"{post}.pre"] = (l, u)
            out[post] = _range(act, l, u)
    return out


def interval_bounds(model: Any, low: Any, high: Any) -> Bounds:
    """Interval bounds on every neuron over the box ``[low, high]`` (tier ``"certified"``).

    Returns ``{layer_key: (lower, upper)}`` for ``"input"``, every ``"hidden_k.pre"``
    and ``"hidden_k"`` and ``"output"``: for every ``x`` in the box,
    ``lower <= neuron(x) <= upper`` elementwise. See the module docstring for how
    each activation is enclosed.

    >>> from toylab.network import Network
    >>> net = Network.from_weights([[[1.0, -1.0]], [[1.0], [1.0]]])
    >>> lo, hi = interval_bounds(net, [-1.0], [2.0])["output"]
    >>> bool(lo[0] <= 0.0 and 3.0 <= hi[0] < 3.0 + 1e-9)
    True
    """
    network = as_network(model, "interval_bounds")
    if any(isinstance(layer, MaxPool) for layer in network.layers):
        return _pooled_bounds("interval_bounds", network, low, high, linear=False)
    net = _check_net("interval_bounds", network)
    lo, hi = _check_box("interval_bounds", net, low, high)
    return _all_bounds(net, lo, hi, linear=False)


def linear_bounds(model: Any, low: Any, high: Any) -> Bounds:
    """Linear-relaxation (CROWN-style) bounds on every neuron over ``[low, high]``.

    Same contract and keys as :func:`interval_bounds`, and never looser: each
    bound is the elementwise best of the back-substituted linear bound and the
    interval bound (tier ``"certified"``).

    >>> from toylab.network import Network
    >>> net = Network.from_weights([[[1.0, -1.0]], [[1.0], [1.0]]])
    >>> lo, hi = linear_bounds(net, [-1.0], [2.0])["output"]
    >>> bool(0.0 - 1e-9 < lo[0] <= 0.0 and 2.0 <= hi[0])
    True
    """
    network = as_network(model, "linear_bounds")
    if any(isinstance(layer, MaxPool) for layer in network.layers):
        return _pooled_bounds("linear_bounds", network, low, high, linear=True)
    net = _check_net("linear_bounds", network)
    lo, hi = _check_box("linear_bounds", net, low, high)
    ibp = _all_bounds(net, lo, hi, linear=False)
    lin = _all_bounds(net, lo, hi, linear=True)
    return {k: (np.fmax(lin[k][0], ibp[k][0]), np.fmin(lin[k][1], ibp[k][1])) for k in ibp}


def _pooled_bounds(where: str, network: Network, low: Any, high: Any, linear: bool) -> Bounds:
    """Bounds of a network with max pooling layers (``toylab.layers.MaxPool``).

    The network is cut at each max pooling into affine-and-activation segments; each
    segment is bounded from the box enclosing its input as in :func:`interval_bounds`
    / :func:`linear_bounds`, and a max pooling maps the box ``[l, u]`` of its input to
    ``[maxpool(l), maxpool(u)]``: the exact image of a box, since the maximum is
    monotone in every argument (no arithmetic, so no rounding). Linear relations
    across a max pooling are not kept (its output box starts the next segment's
    back-substitution), so the result stays sound and is at most as tight as the
    boxes at the pools allow.
    """
    net = network.untied().numpy(np.float64)
    names = net.layer_names
    lo, hi = _check_box(where, _InputDim(net.input_dim), low, high)
    out: Bounds = {"input": (lo.copy(), hi.copy())}
    l, u, k = lo, hi, 0
    while k < net.num_layers:
        layer = net.layers[k]
        if isinstance(layer, MaxPool):
            pre_b = [(layer.apply(l), layer.apply(u))]
            end = k + 1
        else:
            end = k
            while end < net.num_layers and not isinstance(net.layers[end], MaxPool):
                end += 1
            seg = _check_net(where, Network(net.layers[k:end], net.activations[k:end]))
            pre_b = [
                (a[0], b[0]) for a, b in _propagate(seg, l[None], u[None], end - k - 1, False)[0]
            ]
            if linear:
                lin = _propagate(seg, l[None], u[None], end - k - 1, True)[0]
                pre_b = [
                    (np.fmax(a, c[0]), np.fmin(b, d[0]))
                    for (a, b), (c, d) in zip(pre_b, lin, strict=True)
                ]
        for i, (pl, pu) in zip(range(k, end), pre_b, strict=True):
            post, pre = names[i]
            if pre is None:  # an identity output
                l, u = pl, pu
            else:
                out[pre] = (pl, pu)
                l, u = _range(net.acts[i], pl, pu)
            out[post] = (l, u)
        k = end
    return out


class _InputDim(NamedTuple):
    dim: int


@dataclasses.dataclass(frozen=True)
class Zonotope:
    """A batch of input sets ``{centre + G e + r : e in [-1, 1]^P, |r| <= radius}``.

    ``centre`` and ``radius`` ``(B, d)``, ``generators`` ``(B, d, P)``: e.g. a
    first-order model of a renderer over a parameter box, ``render(c) + J (p - c)``
    plus a remainder (``G = J diag(h)`` for half-widths ``h``). The caller
    guarantees that the inputs lie in the set (rounding included).
    """

    centre: np.ndarray
    radius: np.ndarray
    generators: np.ndarray


@dataclasses.dataclass(frozen=True)
class NeuronBounds:
    """Certified bounds of one neuron over a batch of input sets (:func:`neuron_bounds`).

    ``lower``/``upper`` ``(B,)``: for every input in set ``b``,
    ``lower[b] <= neuron <= upper[b]``. ``coef_upper``/``coef_lower`` ``(B, d)``: the
    input coefficients of the linear upper/lower bound of the neuron's
    pre-activation; ``gen_upper``/``gen_lower`` ``(B, P)``: the same in the zonotope's
    generator coordinates ``e`` (``None`` without a zonotope).
    """

    neuron: str
    lower: np.ndarray
    upper: np.ndarray
    coef_upper: np.ndarray
    coef_lower: np.ndarray
    gen_upper: np.ndarray | None = None
    gen_lower: np.ndarray | None = None
    tier: Tier = "certified"


def neuron_bounds(
    model: Any, low: Any, high: Any, neuron: str, *, zonotope: Zonotope | None = None
) -> NeuronBounds:
    """Linear-relaxation bounds of one neuron over many boxes at once (batched).

    ``low``/``high`` ``(B, d)`` with ``low <= high`` (zero widths allowed): box ``b``
    is ``[low[b], high[b]]``. With ``zonotope`` the inputs of set ``b`` lie in the box
    *and* in the zonotope (:class:`Zonotope`); every linear bound is then maximised
    over both and the better kept, which is much tighter when the inputs move
    together (an image family's pixels). Same relaxations as :func:`linear_bounds`
    (tier ``"certified"``).

    >>> from toylab.network import Network
    >>> net = Network.from_weights([[[1.0], [-1.0]]], activation="relu")
    >>> z = Zonotope(np.zeros((1, 2)), np.zeros((1, 2)), np.ones((1, 2, 1)))
    >>> b = neuron_bounds(net, [[-1.0, -1.0]], [[1.0, 1.0]], "output:0", zonotope=z)
    >>> bool(abs(b.lower[0]) < 1e-9 and abs(b.upper[0]) < 1e-9)  # x0 - x1 = 0 on the set
    True
    """
    where = "neuron_bounds"
    net = _check_net(where, model)
    lo = np.asarray(low, dtype=np.float64)
    hi = np.asarray(high, dtype=np.float64)
    for name, v in (("low", lo), ("high", hi)):
        if v.ndim != 2 or v.shape[1] != net.dim or v.shape != lo.shape:
            raise fail(where, name, v.shape, f"shape (B, {net.dim}), the same for low and high")
        if not np.all(np.isfinite(v)):
            raise fail(where, name, "an array with non-finite entries", "finite")
    if not np.all(lo <= hi):
        raise fail(where, "low", "an array with low > high somewhere", "<= high everywhere")
    target = _check_target(where, net, neuron)
    if target.layer < 0:
        raise fail(where, "neuron", neuron, "a hidden or output neuron like 'hidden_0:3'")
    if zonotope is not None:
        B, d = lo.shape
        z = zonotope
        shapes = (z.centre.shape, z.radius.shape, z.generators.shape[:2])
        if shapes != ((B, d),) * 3 or z.generators.ndim != 3:
            raise fail(
                where, "zonotope", shapes,
                f"centre, radius (B, d) and generators (B, d, P) with B={B}, d={d}",
            )  # fmt: skip
    # only the target's row of its layer is needed (the layers below are bounded in full)
    k, unit = target.layer, target.unit
    sub = dataclasses.replace(
        net, Ws=net.Ws[:k] + (net.Ws[k][:, [unit]],), bs=net.bs[:k] + (net.bs[k][[unit]],)
    )
    pre, A_U, A_L = _propagate(sub, lo, hi, k, linear=True, zono=zonotope, skip_identity=True)
    l, u = pre[-1][0][:, 0], pre[-1][1][:, 0]
    if target.post:
        l, u = _range(net.acts[k], l, u)
    a_u, a_l = np.asarray(A_U[:, 0]), np.asarray(A_L[:, 0])
    g_u = g_l = None
    if zonotope is not None:
        g_u = np.matmul(a_u[:, None, :], zonotope.generators)[:, 0]
        g_l = np.matmul(a_l[:, None, :], zonotope.generators)[:, 0]
    return NeuronBounds(target.name, l, u, a_u, a_l, g_u, g_l)


# --------------------------------------------------------------------------- branch and bound


def _register(cls: type, meta: Sequence[str]) -> type:
    fields = [f.name for f in dataclasses.fields(cls)]
    return jax.tree_util.register_dataclass(
        cls, data_fields=[f for f in fields if f not in meta], meta_fields=list(meta)
    )


@dataclasses.dataclass(frozen=True)
class BranchCertificate:
    """The leaves of a branch-and-bound run: a partition of the input box.

    Leaf ``i`` is the box ``[leaf_low[i], leaf_high[i]]``; the leaves come from
    repeated midpoint bisection of the input box, so they cover it and their
    interiors are disjoint. ``leaf_bound[i]`` is a certified bound of the neuron
    on leaf ``i``: an upper bound when ``sense == "max"``, a lower bound when
    ``sense == "min"``. The certified bound of the whole run is the max (resp.
    min) of ``leaf_bound``.
    """

    leaf_low: np.ndarray
    leaf_high: np.ndarray
    leaf_bound: np.ndarray
    sense: Literal["max", "min"]

    @property
    def num_leaves(self) -> int:
        return int(self.leaf_bound.shape[0])


_register(BranchCertificate, ["sense"])


@dataclasses.dataclass(frozen=True)
class MaximizeResult:
    """A certified maximum (or minimum) of one neuron over a box (tier ``"certified"``).

    The true optimum lies in ``[lower, upper]``. For ``sense == "max"``,
    ``lower == value`` is attained at ``point`` and ``upper`` is certified by
    ``certificate``; for ``sense == "min"`` it is the other way round.
    ``gap = upper - lower``; ``converged`` is ``True`` when ``gap <= requested_gap``
    and ``False`` when the run stopped at ``max_nodes`` first. ``num_nodes`` counts
    the boxes that were bounded.
    """

    neuron: str
    sense: Literal["max", "min"]
    point: np.ndarray
    value: float
    lower: float
    upper: float
    gap: float
    requested_gap: float
    num_nodes: int
    converged: bool
    seconds: float
    certificate: BranchCertificate
    tier: Tier = "certified"


_register(
    MaximizeResult,
    ["neuron", "sense", "requested_gap", "num_nodes", "converged", "seconds", "tier"],
)


@_quiet
def _bound_boxes(
    net: _Net, low: np.ndarray, high: np.ndarray, target: _Target, sign: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Upper bounds of ``sign * neuron`` on boxes ``(B, d)`` and input coefficients."""
    if target.layer < 0:
        e = np.zeros((low.shape[0], low.shape[1]))
        e[:, target.unit] = 1.0
        ub = high[:, target.unit] if sign > 0 else -low[:, target.unit]
        return ub.copy(), e, e
    pre, A_U, A_L = _propagate(net, low, high, target.layer, linear=True)
    l, u = pre[-1][0][:, target.unit], pre[-1][1][:, target.unit]
    if target.post:
        l, u = _range(net.acts[target.layer], l, u)
    return (u if sign > 0 else -l), A_U[:, target.unit], A_L[:, target.unit]


@_quiet
def _search(
    net: _Net,
    low: np.ndarray,
    high: np.ndarray,
    a_u: np.ndarray,
    a_l: np.ndarray,
    target: _Target,
    sign: float,
    num_steps: int = 4,
) -> tuple[np.ndarray, np.ndarray]:
    """The best point found in each box and ``sign * neuron`` there: centre, the
    corners favoured by the linear bounds, then projected sign-gradient ascent."""
    B, d = low.shape
    c, r = 0.5 * (low + high), 0.5 * (high - low)
    cands = [c] + [c + s * r * np.sign(a) for a in (a_u, a_l) for s in (1.0, -1.0)]
    X = np.stack(cands)  # (K, B, d)
    v = sign * _values(net, X.reshape(-1, d), target).reshape(len(cands), B)
    v = np.where(np.isnan(v), -np.inf, v)  # overflow: such a point proves nothing
    best = np.argmax(v, axis=0)
    x = X[best, np.arange(B)]
    fx = v[best, np.arange(B)]
    etas = np.array([1.0, 0.25, 0.0625])[:, None, None]
    for _ in range(num_steps):
        g = sign * _grads(net, x, target)
        trial = np.clip(x[None] + etas * (high - low)[None] * np.sign(g)[None], low, high)
        vt = sign * _values(net, trial.reshape(-1, d), target).reshape(len(etas), B)
        vt = np.where(np.isnan(vt), -np.inf, vt)
        k = np.argmax(vt, axis=0)
        better = vt[k, np.arange(B)] > fx
        x = np.where(better[:, None], trial[k, np.arange(B)], x)
        fx = np.where(better, vt[k, np.arange(B)], fx)
    return x, fx


def _split_dim(low: np.ndarray, high: np.ndarray, a_u: np.ndarray, a_l: np.ndarray) -> np.ndarray:
    """The dimension to bisect: width times (|coefficient| + mean |coefficient|).

    The mean term keeps dimensions whose coefficient is small in the final linear
    bound, but which still matter through unstable neurons, from never being split;
    with all coefficients zero it falls back to the widest dimension.
    """
    w = high - low
    g = np.abs(a_u) + np.abs(a_l)
    return np.argmax(w * (g + np.mean(g, axis=1, keepdims=True) + 1e-300), axis=1)


Leaf = tuple[np.ndarray, np.ndarray, float]


def branch_and_bound(
    low: np.ndarray,
    high: np.ndarray,
    bound: Any,
    search: Any,
    *,
    gap: float,
    max_nodes: int,
    batch_size: int,
) -> tuple[np.ndarray, float, list[Leaf], int]:
    """The branch-and-bound loop of :func:`maximize`, for any bounded objective ``f``.

    ``bound(L, H) -> (ub, a_u, a_l)``: certified upper bounds of ``f`` on the boxes
    ``[L[b], H[b]]`` ``(B, d)`` and the coefficients that choose the split dimension
    (:func:`_split_dim`); ``search(L, H, a_u, a_l) -> (x, fx)``: a point of each box
    and ``f`` there (a lower bound on the maximum). Returns ``(best_x, best_f, leaves,
    num_nodes)``; ``leaves`` is a partition of the box into ``(low, high, ub)``, closed
    once ``ub <= best_f + gap``, or still open when ``max_nodes`` boxes were bounded.
    Zero-width dimensions are never split.
    """
    ub, a_u, a_l = bound(low[None], high[None])
    xs, fs = search(low[None], high[None], a_u, a_l)
    best_x, best_f = xs[0], float(fs[0])

    num_nodes = 1
    tie = itertools.count()
    # heap of open leaves: (-upper, tiebreak, low, high, split dimension)
    heap = [
        (-float(ub[0]), next(tie), low, high, int(_split_dim(low[None], high[None], a_u, a_l)[0]))
    ]
    closed: list[tuple[np.ndarray, np.ndarray, float]] = []
    while heap:
        batch: list[Any] = []
        while heap and len(batch) < batch_size:
            if -heap[0][0] <= best_f + gap:
                closed.extend((h[2], h[3], -h[0]) for h in heap)
                heap = []
                break
            if num_nodes + 2 * (len(batch) + 1) > max_nodes:
                break
            item = heapq.heappop(heap)
            _, _, blo, bhi, dim = item
            mid = 0.5 * (blo[dim] + bhi[dim])
            if not blo[dim] < mid < bhi[dim]:  # too small to split in float64
                closed.append((blo, bhi, -item[0]))
                continue
            batch.append((blo, bhi, dim, mid))
        if not batch:
            break
        lows, highs = [], []
        for blo, bhi, dim, mid in batch:
            left_hi, right_lo = bhi.copy(), blo.copy()
            left_hi[dim] = mid
            right_lo[dim] = mid
            lows += [blo, right_lo]
            highs += [left_hi, bhi]
        L, H = np.stack(lows), np.stack(highs)
        ub, a_u, a_l = bound(L, H)
        xs, fs = search(L, H, a_u, a_l)
        num_nodes += L.shape[0]
        i = int(np.argmax(fs))
        if fs[i] > best_f:
            best_f, best_x = float(fs[i]), xs[i]
        dims = _split_dim(L, H, a_u, a_l)
        for k in range(L.shape[0]):
            if ub[k] <= best_f + gap:
                closed.append((L[k], H[k], float(ub[k])))
            else:
                heapq.heappush(heap, (-float(ub[k]), next(tie), L[k], H[k], int(dims[k])))
    leaves = closed + [(h[2], h[3], -h[0]) for h in heap]
    return best_x, best_f, leaves, num_nodes


def _optimize(
    where: str,
    model: Any,
    low: Any,
    high: Any,
    neuron: Any,
    gap: Any,
    max_nodes: Any,
    batch_size: Any,
    sign: float,
) -> MaximizeResult:
    start = time.perf_counter()
    net = _check_net(where, model)
    lo, hi = _check_box(where, net, low, high)
    target = _check_target(where, net, neuron)
    if isinstance(gap, bool) or not isinstance(gap, (int, float)) or not gap > 0:
        raise fail(where, "gap", gap, "a number > 0", "Pass an absolute tolerance like 1e-6.")
    if not math.isfinite(gap):
        raise fail(where, "gap", gap, "finite")
    for name, val in (("max_nodes", max_nodes), ("batch_size", batch_size)):
        if isinstance(val, bool) or not isinstance(val, (int, np.integer)) or val < 1:
            raise fail(where, name, val, "an integer >= 1")
    gap = float(gap)

    def bound(L: np.ndarray, H: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return _bound_boxes(net, L, H, target, sign)

    def search(L: np.ndarray, H: np.ndarray, a_u: np.ndarray, a_l: np.ndarray) -> Any:
        return _search(net, L, H, a_u, a_l, target, sign)

    best_x, best_f, leaves, num_nodes = branch_and_bound(
        lo, hi, bound, search, gap=gap, max_nodes=int(max_nodes), batch_size=int(batch_size)
    )
    bounds = np.array([b for _, _, b in leaves])
    certified = max(float(bounds.max()), best_f)
    value = sign * best_f
    cert = BranchCertificate(
        leaf_low=np.stack([a for a, _, _ in leaves]),
        leaf_high=np.stack([b for _, b, _ in leaves]),
        leaf_bound=sign * bounds,
        sense="max" if sign > 0 else "min",
    )
    achieved = certified - best_f
    return MaximizeResult(
        neuron=target.name,
        sense=cert.sense,
        point=best_x.copy(),
        value=value,
        lower=value if sign > 0 else -certified,
        upper=certified if sign > 0 else value,
        gap=achieved,
        requested_gap=gap,
        num_nodes=num_nodes,
        converged=achieved <= gap,
        seconds=time.perf_counter() - start,
        certificate=cert,
    )


def maximize(
    model: Any,
    low: Any,
    high: Any,
    neuron: str,
    *,
    gap: float = 1e-6,
    max_nodes: int = 20_000,
    batch_size: int = 64,
) -> MaximizeResult:
    """The global maximum of one neuron over the box ``[low, high]``, to within ``gap``.

    ``model`` is a :class:`~toylab.network.Network` or a toylab model, ``neuron`` a
    canonical address (``"hidden_0:3"``). Branch and bound (see the module docstring):
    returns the best point found, its value (a lower bound on the maximum) and a
    certified upper bound with the leaf boxes that certify it. ``gap`` is absolute.
    When ``max_nodes`` boxes have been bounded first, the result says so
    (``converged=False``) and reports the larger gap honestly. ``batch_size`` leaves
    are split per step (vectorised bounding). Tier ``"certified"``.

    >>> from toylab.network import Network
    >>> net = Network.from_weights([[[1.0, 1.0]], [[1.0], [-2.0]]], [[0.0, -1.0], [0.0]])
    >>> res = maximize(net, [0.0], [2.0], "output:0")
    >>> round(res.value, 9), bool(res.upper - res.value <= 1e-6), res.converged
    (1.0, True, True)
    """
    return _optimize("maximize", model, low, high, neuron, gap, max_nodes, batch_size, 1.0)


def minimize(
    model: Any,
    low: Any,
    high: Any,
    neuron: str,
    *,
    gap: float = 1e-6,
    max_nodes: int = 20_000,
    batch_size: int = 64,
) -> MaximizeResult:
    """The global minimum of one neuron over ``[low, high]``: :func:`maximize` of its negation.

    The result has ``sense == "min"``: ``value == upper`` is attained at ``point``
    and ``lower`` is the certified lower bound.
    """
    return _optimize("minimize", model, low, high, neuron, gap, max_nodes, batch_size, -1.0)
