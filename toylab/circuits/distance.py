r"""Exact functional distance between two networks, or between chosen neurons.

:func:`functional_distance` compares two toylab MLPs on one distribution. For
each compared pair of neurons (default: every output unit against the same
output unit) it reports

* ``sup`` -- :math:`\sup_{x \in D} |f(x) - g(x)|` over the distribution's domain
  ``D`` (the box ``dist.domain``, or the finite input set), and where it is attained;
* ``l2`` -- :math:`\sqrt{E_{x \sim \text{dist}}[(f(x) - g(x))^2]}` under the data.

**The joint network.** Both networks are stacked side by side into one MLP
(:func:`joint_network`): the first layer is ``[W_a | W_b]`` (shared input), every
later layer is block diagonal, and the output is ``[a's outputs, b's outputs]``.
Each joint neuron *is* a neuron of ``a`` or of ``b``, so one partition of the
joint network is a common refinement of both networks' partitions: on each of
its regions every neuron of ``a`` and of ``b`` is affine, hence so is any
difference ``f - g``.

If the depths differ, the shallower network is padded after its last hidden
layer with layers that compute the identity exactly, in the deeper network's
activation for that layer (a layer takes one activation for all its units):

=================  =====================================  =======================
padding act.       construction                           exact when
=================  =====================================  =======================
identity           ``h -> h``                             always
relu, abs          ``h -> act(h) = h``                    ``h >= 0`` (the layer
                                                          before is relu or abs)
relu               ``h -> relu(h) - relu(-h) = h``        always (two units per unit)
leaky_relu         ``h -> (lr(h) - lr(-h)) / (1 + s)``    always (two units per unit)
hardtanh           ``h -> clip(h, -1, 1) = h``            the layer before is hardtanh
=================  =====================================  =======================

(the first applicable row is used). Layers present in both networks must share
their activation; otherwise :class:`toylab.ToylabError` explains why.

**Exact tiers.**

* 2-D Gaussian mixtures, piecewise-linear networks: on each region ``r`` of the
  joint partition the difference is ``d(x) = g_r . x + c_r``. An affine function
  on a convex polygon is extreme at a vertex, so ``sup |d|`` is the largest
  ``|d|`` over the vertices of the partition of ``dist.domain``. The mean square
  is a quadratic form in the region's Gaussian moments:
  :math:`E[d^2 1_r] = g^\top m_2 g + 2 c\, g \cdot m_1 + c^2 m_0`
  (:func:`toylab.exact.neuron_moments` on the difference maps, with the moments
  of :func:`toylab.exact.mixture_polygon_moments` over
  :func:`toylab.exact.integration_box`). The mass outside that box is bounded
  by ``truncation_bound`` (Cauchy--Schwarz: :math:`E[d^2 1_{out}] \le
  \sqrt{E[d^4]}\sqrt{P(out)}` with :math:`|d(x)| \le |d(c)| + L|x - c|`, ``L``
  the product of the layers' spectral norms, the activations being 1-Lipschitz).
  Tier ``"exact"``.
* finite domains: both networks on every input, in float64. Tier ``"exact"``.
* other 2-D densities (rings, noisy curves), piecewise-linear networks: ``sup``
  as above (exact); the mean square by adaptive quadrature over the joint
  regions (:func:`toylab.exact.polygon_quadrature`), with its error estimate in
  ``error``. Tier ``"bounded"``.
* anything else (smooth activations on continuous inputs, more than two input
  dimensions): a :class:`toylab.ToylabError`, unless ``num_samples`` and ``key``
  are given, in which case the result is a Monte Carlo estimate, tier
  ``"sampled"``: ``l2`` from ``num_samples`` draws with the standard error of the
  mean square in ``error``, and ``sup`` the largest ``|d|`` seen (a lower bound).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from toylab._errors import ToylabError
from toylab.activations import LEAKY_SLOPE, PIECEWISE_LINEAR
from toylab.exact import integration_domain
from toylab.exact.integrals import (
    mixture_polygon_moments,
    neuron_moments,
    polygon_quadrature,
)
from toylab.exact.regions import Partition, partition
from toylab.network import Network
from toylab.neurons import NeuronId, resolve

__all__ = ["DistanceResult", "JointNetwork", "functional_distance", "joint_network"]

_NONNEG = frozenset({"relu", "abs"})


# --------------------------------------------------------------------------- joint network


@dataclasses.dataclass(frozen=True, eq=False)
class JointNetwork:
    """Two networks stacked side by side into one MLP (see the module docstring).

    ``layers``/``activations`` describe the joint MLP (``(W, b)`` pairs, float64).
    ``columns[side][key]`` maps ``"a"``/``"b"`` and a layer key of that network
    (``"hidden_0"``, ``"hidden_0.pre"``, ``"output"``) to the joint column indices
    of its units; :meth:`column` resolves one neuron address.
    """

    layers: list[tuple[np.ndarray, np.ndarray]]
    activations: list[str]
    columns: dict[str, dict[str, np.ndarray]]
    widths: dict[str, dict[str, int]]

    def column(self, side: str, neuron: str | NeuronId) -> tuple[str, int]:
        """``(joint layer key, column)`` holding ``neuron`` of network ``side``."""
        if side not in ("a", "b"):
            raise ToylabError(f"JointNetwork.column: side must be 'a' or 'b', got {side!r}.")
        nid = resolve(neuron, self.widths[side])
        if nid.layer == "input":
            raise ToylabError(
                f"JointNetwork.column: neuron must be a hidden or output neuron, got {str(nid)!r}; "
                "inputs are shared by both networks."
            )
        return nid.key, int(self.columns[side][nid.key][nid.unit])


def _affine(model: Any, where: str) -> tuple[list[tuple[np.ndarray, np.ndarray]], list[str]]:
    if not hasattr(model, "affine_layers"):
        raise ToylabError(
            f"{where}: model must be a toylab MLP (with affine_layers()), got "
            f"{type(model).__name__}."
        )
    layers, acts = model.affine_layers()
    return [(np.asarray(w, np.float64), np.asarray(b, np.float64)) for w, b in layers], list(acts)


def _pad(
    layers: list[tuple[np.ndarray, np.ndarray]], acts: list[str], target: Sequence[str], where: str
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Pad ``layers`` with exact identity hidden layers up to ``len(target)`` hidden layers.

    ``unpair`` maps the current last hidden layer back to the original one
    (``h_orig = h_now @ unpair``); it is folded into the output layer at the end.
    """
    hidden = [(w.copy(), b.copy()) for w, b in layers[:-1]]
    w_out, b_out = layers[-1]
    last = acts[-1] if acts else "input"
    width = hidden[-1][0].shape[1] if hidden else layers[0][0].shape[0]
    unpair = np.eye(width)
    for k in range(len(acts), len(target)):
        act = target[k]
        eye = np.eye(width)
        if act == "identity":
            hidden.append((eye, np.zeros(width)))
        elif (act in _NONNEG and last in _NONNEG) or (act == "hardtanh" and last == "hardtanh"):
            hidden.append((eye, np.zeros(width)))
            last = act
        elif act in ("relu", "leaky_relu"):
            # act(h) - act(-h) = (1 + slope) h for every h: two units per unit
            hidden.append((np.hstack([eye, -eye]), np.zeros(2 * width)))
            scale = 1.0 if act == "relu" else 1.0 + LEAKY_SLOPE
            unpair = (np.vstack([eye, -eye]) / scale) @ unpair
            width, last = 2 * width, act
        else:
            raise ToylabError(
                f"{where}: cannot pad a network whose last hidden layer is {last!r} with an exact "
                f"identity {act!r} layer (act(h) = h needs h in the linear piece). Compare "
                "networks of equal depth, or with relu/abs/identity/leaky_relu activations."
            )
    return [*hidden, (unpair @ w_out, b_out)]


def _block(wa: np.ndarray, wb: np.ndarray) -> np.ndarray:
    out = np.zeros((wa.shape[0] + wb.shape[0], wa.shape[1] + wb.shape[1]))
    out[: wa.shape[0], : wa.shape[1]] = wa
    out[wa.shape[0] :, wa.shape[1] :] = wb
    return out


def joint_network(model_a: Any, model_b: Any, *, where: str = "joint_network") -> JointNetwork:
    """The MLP computing both networks side by side (see the module docstring)."""
    la, aa = _affine(model_a, where)
    lb, ab = _affine(model_b, where)
    if la[0][0].shape[0] != lb[0][0].shape[0]:
        raise ToylabError(
            f"{where}: the networks take different input sizes ({la[0][0].shape[0]} and "
            f"{lb[0][0].shape[0]}); both must read the same inputs."
        )
    common = min(len(aa), len(ab))
    for k in range(common):
        if aa[k] != ab[k]:
            raise ToylabError(
                f"{where}: hidden layer {k} uses {aa[k]!r} in model_a but {ab[k]!r} in model_b; "
                "the joint network takes one activation per layer."
            )
    target = aa if len(aa) >= len(ab) else ab
    pa = _pad(la, aa, target, where) if len(aa) < len(target) else la
    pb = _pad(lb, ab, target, where) if len(ab) < len(target) else lb
    layers = []
    for k, ((wa, ba), (wb, bb)) in enumerate(zip(pa, pb, strict=True)):
        w = np.hstack([wa, wb]) if k == 0 else _block(wa, wb)
        layers.append((w, np.concatenate([ba, bb])))
    columns: dict[str, dict[str, np.ndarray]] = {"a": {}, "b": {}}
    for k, ((wa, _), (wb, _)) in enumerate(zip(pa, pb, strict=True)):
        key = "output" if k == len(pa) - 1 else f"hidden_{k}"
        na, nb = wa.shape[1], wb.shape[1]
        cols_a, cols_b = np.arange(na), na + np.arange(nb)
        for side, cols, depth in (("a", cols_a, len(aa)), ("b", cols_b, len(ab))):
            if key == "output" or k < depth:
                columns[side][key] = cols
                if key != "output":
                    columns[side][f"{key}.pre"] = cols
    widths = {"a": dict(model_a.widths), "b": dict(model_b.widths)}
    return JointNetwork(layers, list(target), columns, widths)


# --------------------------------------------------------------------------- result


@dataclasses.dataclass(frozen=True)
class DistanceResult:
    """Functional distance between pairs of neurons of two networks.

    Attributes:
      pairs: ``((address in a, address in b), ...)``, one per compared pair.
      sup: ``(n,)`` ``sup |f - g|`` over the domain (tier ``"sampled"``: the largest seen).
      argsup: ``(n, d)`` an input attaining it.
      mean_square: ``(n,)`` ``E[(f - g)^2]`` under the distribution.
      l2: ``(n,)`` ``sqrt(mean_square)``.
      tier: ``"exact"``, ``"bounded"`` or ``"sampled"``.
      error: bound on the error of ``mean_square`` (truncation, quadrature) or,
        when sampled, its standard error.
      method: how it was computed, in words.
    """

    pairs: tuple[tuple[str, str], ...]
    sup: np.ndarray
    argsup: np.ndarray
    mean_square: np.ndarray
    l2: np.ndarray
    tier: str
    error: float
    method: str

    @property
    def max_sup(self) -> float:
        return float(np.max(self.sup)) if len(self.sup) else 0.0

    @property
    def max_l2(self) -> float:
        return float(np.max(self.l2)) if len(self.l2) else 0.0


# --------------------------------------------------------------------------- helpers


def _pairs(
    model_a: Any, model_b: Any, neurons: Mapping[str, str] | None, where: str
) -> list[tuple[NeuronId, NeuronId]]:
    if neurons is None:
        na, nb = model_a.widths["output"], model_b.widths["output"]
        if na != nb:
            raise ToylabError(
                f"{where}: the networks have {na} and {nb} outputs; pass neurons={{...}} to say "
                "which neurons to compare (e.g. {'output:0': 'output:1'})."
            )
        return [(NeuronId("output", i), NeuronId("output", i)) for i in range(na)]
    if not isinstance(neurons, Mapping) or not neurons:
        raise ToylabError(
            f"{where}: neurons must be a non-empty mapping from an address in model_a to an "
            f"address in model_b, got {neurons!r}. Example: {{'hidden_0:2': 'hidden_0:0'}}."
        )
    out = []
    for a, b in neurons.items():
        ia, ib = resolve(a, model_a.widths), resolve(b, model_b.widths)
        for nid in (ia, ib):
            if nid.layer == "input":
                raise ToylabError(f"{where}: neurons must not be inputs, got {str(nid)!r}.")
        out.append((ia, ib))
    return out


def _entry_xy_maps(part: Partition, maps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every ring entry's point ``(n_entries, 2)`` and the maps' values there."""
    xy = part.vertices[part.ring]
    own = np.repeat(np.arange(part.num_regions), np.diff(part.offsets))
    m = maps[own]
    return xy, m[:, :, 0] * xy[:, :1] + m[:, :, 1] * xy[:, 1:] + m[:, :, 2]


def difference_maps(
    part: Partition, joint: JointNetwork, pairs: Sequence[tuple[NeuronId, NeuronId]]
) -> np.ndarray:
    """``(R, n, 3)`` affine maps of ``f_a - f_b`` for each pair on the joint regions."""
    cols = []
    for ia, ib in pairs:
        ka, ca = joint.column("a", ia)
        kb, cb = joint.column("b", ib)
        cols.append(part.maps[ka][:, ca] - part.maps[kb][:, cb])
    return np.stack(cols, axis=1)


def _sup(part: Partition, diff: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    xy, vals = _entry_xy_maps(part, diff)
    idx = np.abs(vals).argmax(axis=0)
    return np.abs(vals[idx, np.arange(vals.shape[1])]), xy[idx]


def _gaussian_r4(mean: np.ndarray, cov: np.ndarray) -> float:
    """``E|y|^4`` for ``y ~ N(mean, cov)``: ``(tr S + |m|²)² + 2 tr(S²) + 4 mᵀ S m``."""
    return float(
        (np.trace(cov) + mean @ mean) ** 2 + 2 * np.trace(cov @ cov) + 4 * mean @ cov @ mean
    )


def _truncation(
    joint: JointNetwork, pairs: Sequence[tuple[NeuronId, NeuronId]], dist: Any, low, high
) -> float:
    from scipy.special import ndtr

    means, covs, weights, _ = dist.arrays()
    c = 0.5 * (np.asarray(low) + np.asarray(high))
    lip = 2.0  # |d| = |f - g| <= |f| + |g|: each part has Lipschitz <= prod of norms
    for w, _ in joint.layers:
        lip *= max(float(np.linalg.norm(w, 2)), 1e-300)
    vals = Network.from_layers(joint.layers, joint.activations).forward(c[None, :])
    dc = max(
        abs(
            float(vals[joint.column("a", ia)[0]][0, joint.column("a", ia)[1]])
            - float(vals[joint.column("b", ib)[0]][0, joint.column("b", ib)[1]])
        )
        for ia, ib in pairs
    )
    p_out, e_r4 = 0.0, 0.0
    for mu, cov, w in zip(means, covs, weights, strict=True):
        sd = np.sqrt(np.diag(cov))
        z = np.minimum((mu - low) / sd, (high - mu) / sd)
        p_out += w * float(np.sum(ndtr(-z)))
        e_r4 += w * _gaussian_r4(mu - c, cov)
    # d^2 <= 2 d(c)^2 + 2 L^2 r^2  =>  E[d^4] <= 8 d(c)^4 + 8 L^4 E[r^4]
    fourth = 8 * dc**4 + 8 * lip**4 * e_r4
    return float(np.sqrt(fourth) * np.sqrt(p_out))


def _pointwise(model_a: Any, model_b: Any, pairs: list, x: np.ndarray) -> tuple[np.ndarray, ...]:
    """Differences ``d`` (N, pairs) of the paired neurons at inputs ``x`` (float64), and the
    largest |d| of each pair with the input attaining it."""
    la, aa = _affine(model_a, "functional_distance")
    lb, ab = _affine(model_b, "functional_distance")
    va, vb = Network.from_layers(la, aa).forward(x), Network.from_layers(lb, ab).forward(x)
    d = np.stack([va[ia.key][:, ia.unit] - vb[ib.key][:, ib.unit] for ia, ib in pairs], axis=1)
    idx = np.abs(d).argmax(0)
    return d, np.abs(d[idx, np.arange(d.shape[1])]), x[idx]


def _sampled(
    model_a: Any, model_b: Any, pairs: list, dist: Any, num_samples: int, key: Any, why: str
) -> DistanceResult:
    x = np.asarray(dist.sample(key, int(num_samples)).x, np.float64)
    d, sup, argsup = _pointwise(model_a, model_b, pairs, x)
    sq = d**2
    ms = sq.mean(0)
    se = sq.std(0, ddof=1) / np.sqrt(len(x))
    return DistanceResult(
        pairs=tuple((str(a), str(b)) for a, b in pairs),
        sup=sup,
        argsup=argsup,
        mean_square=ms,
        l2=np.sqrt(ms),
        tier="sampled",
        error=float(se.max()),
        method=f"Monte Carlo over {len(x)} samples ({why}); sup is the largest |d| seen "
        "(a lower bound); error is the standard error of the mean square",
    )


# --------------------------------------------------------------------------- the function


def functional_distance(
    model_a: Any,
    model_b: Any,
    dist: Any,
    *,
    neurons: Mapping[str, str] | None = None,
    tol: float = 1e-9,
    rtol: float = 1e-9,
    num_samples: int | None = None,
    key: Any = None,
) -> DistanceResult:
    """Exact sup and L2 distance between neurons of two networks (module docstring).

    ``neurons`` maps an address in ``model_a`` to one in ``model_b``
    (``{"hidden_0:2": "hidden_0:0"}``; default: each output to the same output).
    ``num_samples`` and ``key`` allow a labelled Monte Carlo estimate where no exact
    method applies.

    >>> import numpy as np
    >>> from toylab.models import MLP
    >>> from toylab.distributions import two_blobs
    >>> a = MLP.from_weights([np.eye(2), np.eye(2)])
    >>> b = MLP.from_weights([2 * np.eye(2), 0.5 * np.eye(2)])
    >>> float(functional_distance(a, b, two_blobs()).max_sup)
    0.0
    """
    where = "functional_distance"
    _affine(model_a, where)
    _affine(model_b, where)
    pairs = _pairs(model_a, model_b, neurons, where)
    domain: Any = getattr(dist, "domain", None)
    if hasattr(domain, "probs"):
        x = np.asarray(domain.inputs, np.float64)
        p = np.asarray(domain.probs, np.float64)
        d, sup, argsup = _pointwise(model_a, model_b, pairs, x)
        ms = p @ (d * d)
        return DistanceResult(
            pairs=tuple((str(a), str(b)) for a, b in pairs),
            sup=sup,
            argsup=argsup,
            mean_square=ms,
            l2=np.sqrt(ms),
            tier="exact",
            error=0.0,
            method=f"exhaustive over all {len(x)} inputs of the finite domain (float64)",
        )
    acts = list(model_a.affine_layers()[1]) + list(model_b.affine_layers()[1])
    why = ""
    if not all(a in PIECEWISE_LINEAR for a in acts):
        why = f"activations {sorted(set(acts) - PIECEWISE_LINEAR)} are not piecewise linear"
    elif getattr(dist, "dim", None) != 2 or not hasattr(domain, "low"):
        why = f"inputs have dimension {getattr(dist, 'dim', None)}, the exact method needs 2"
    if why:
        if num_samples is None or key is None:
            raise ToylabError(
                f"{where}: no exact method applies ({why}). Pass num_samples=... and "
                "key=jax.random.key(...) for a Monte Carlo estimate (tier 'sampled')."
            )
        return _sampled(model_a, model_b, pairs, dist, num_samples, key, why)
    joint = joint_network(model_a, model_b, where=where)
    geometry = partition(
        Network.from_layers(joint.layers, joint.activations), domain.polygon(), tol=tol
    )
    sup, argsup = _sup(geometry, difference_maps(geometry, joint, pairs))
    if type(dist).__name__ == "GaussianMixture":
        _dom = integration_domain(dist)
        low, high = _dom.low, _dom.high
        box_poly = np.array([[low[0], low[1]], [high[0], low[1]], [high[0], high[1]],
                             [low[0], high[1]]])  # fmt: skip
        plane = partition(Network.from_layers(joint.layers, joint.activations), box_poly, tol=tol)
        means, covs, weights, _ = dist.arrays()
        m0k, m1k, m2k = mixture_polygon_moments(plane.polygons, means, covs, weights)
        mom = neuron_moments(
            m0k.sum(0), m1k.sum(0), m2k.sum(0), difference_maps(plane, joint, pairs)
        )
        ms = np.maximum(np.diag(mom.second_moment), 0.0)
        error = _truncation(joint, pairs, dist, low, high)
        tier = "exact"
        method = (
            f"joint partition ({geometry.num_regions} regions on the domain, "
            f"{plane.num_regions} on the integration box); sup at region vertices, mean "
            "square from exact Gaussian polygon moments"
        )
    else:
        diff = difference_maps(geometry, joint, pairs)

        def columns(x: np.ndarray) -> np.ndarray:
            p = np.asarray(dist.prob(x), np.float64)
            return np.stack([p, p * x[:, 0], p * x[:, 1], p * x[:, 0] ** 2,
                             p * x[:, 0] * x[:, 1], p * x[:, 1] ** 2], axis=1)  # fmt: skip

        vals, errs = polygon_quadrature(columns, geometry.polygons, rtol=rtol, atol=1e-14)
        m2 = np.stack([vals[:, [3, 4]], vals[:, [4, 5]]], axis=1)
        e2 = np.stack([errs[:, [3, 4]], errs[:, [4, 5]]], axis=1)
        mom = neuron_moments(vals[:, 0], vals[:, 1:3], m2, diff)
        bound = neuron_moments(errs[:, 0], errs[:, 1:3], e2, np.abs(diff))
        ms = np.maximum(np.diag(mom.second_moment), 0.0)
        error = float(np.abs(np.diag(bound.second_moment)).max())
        error += float(getattr(dist, "outside_mass", 0.0)) * float(sup.max() ** 2)
        tier = "bounded"
        method = (
            f"joint partition ({geometry.num_regions} regions); sup at region vertices (exact), "
            "mean square by adaptive quadrature over the regions (error estimate in error, "
            "plus sup² times the mass outside the domain)"
        )
    return DistanceResult(
        pairs=tuple((str(a), str(b)) for a, b in pairs),
        sup=sup,
        argsup=argsup,
        mean_square=ms,
        l2=np.sqrt(ms),
        tier=tier,
        error=error,
        method=method,
    )
