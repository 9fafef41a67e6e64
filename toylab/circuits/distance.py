r"""Exact functional distance between two networks, or between chosen neurons.

:func:`functional_distance` compares two networks (:class:`toylab.network.Network`
values or toylab models) on one distribution. For each compared pair of neurons
(default: every output unit against the same output unit) it reports

* ``sup`` -- :math:`\sup_{x \in D} |f(x) - g(x)|` over the distribution's domain
  ``D`` (the box ``dist.domain``, or the inputs of positive probability of a finite
  domain), and where it is attained;
* ``l2`` -- :math:`\sqrt{E_{x \sim \text{dist}}[(f(x) - g(x))^2]}` under the data.

**The joint network.** Both networks are stacked side by side into one
:class:`~toylab.network.Network` (:func:`joint_network`): the first layer is
``[W_a | W_b]`` (shared input), every later layer is block diagonal, and the output is
``[a's outputs, b's outputs]``. Each joint neuron *is* a neuron of ``a`` or of ``b``,
so one partition of the joint network is a common refinement of both networks'
partitions.

**The difference network.** :func:`difference_network` cuts both networks after the
compared neurons (a post-activation hidden unit gets an identity read-out layer, a
``.pre`` unit loses its activation), stacks the two cuts into a joint network and
folds ``f_a - f_b`` into its output layer: ``W_out D`` with ``D[c_a, i] = 1``,
``D[c_b, i] = -1`` (one float64 rounding per entry). Its ``output:i`` *is* the
difference of pair ``i``, so everything about the difference comes from the one exact
engine, :func:`toylab.exact.analyze`:

* ``mean_square`` is the diagonal of the output's exact second moments, ``sup`` the
  larger of ``max`` and ``-min`` of :meth:`toylab.exact.Analysis.extrema` (an affine
  function on a convex region is extreme at a vertex, and every vertex is checked);
* ``error``, ``errors`` and ``tier`` are the analysis' own: float64 rounding of the
  closed forms, the tolerance band of the partition, and the **truncation** of the
  integration box, bounded for Gaussian mixtures by
  :func:`toylab.exact.truncation_bounds` applied to the difference network (certified:
  Cauchy--Schwarz with the Gaussian fourth moments and a Lipschitz bound of the
  difference network itself). The tier is ``"exact"`` only when the truncation is below
  the rounding bound, ``"certified"`` otherwise; ``"estimated"`` for densities
  integrated by adaptive quadrature (rings, noisy curves: the quadrature's error
  estimate plus the declared mass outside the domain times the largest value).

On **finite domains** no joint network is needed (and none is built, so any depths and
activations compare): both networks are evaluated on every input in float64
(:func:`toylab.exact.finite_table`), ``d`` is the difference of the paired columns,
``mean_square = p . d^2`` and ``sup`` the largest ``|d|`` over the inputs of positive
probability; tier ``"exact"``, ``error`` the rounding bound
``(n + 4 L) eps max_i p . (|a_i| + |b_i|)^2`` (``n`` inputs, ``L`` layers of both
networks; the form of :func:`toylab.exact.finite_table`'s bound).

Pairs from different layer keys are grouped; each group is its own difference network
and analysis, and the result takes the largest error and the weakest tier
(:func:`toylab.tiers.weakest`).

If the depths differ, the shallower network is padded after its last hidden layer
with layers that compute the identity exactly, in the deeper network's activation
for that layer (a layer takes one activation for all its units):

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

Where no exact method applies (smooth activations on continuous inputs, more than two
input dimensions) :func:`functional_distance` raises :class:`toylab.NotApplicable`,
unless ``num_samples`` and ``key`` are given: then the result is a Monte Carlo
estimate, tier ``"sampled"``: ``l2`` from ``num_samples`` draws, ``error`` the
half-width of the normal confidence interval (``confidence``) of the mean square, and
``sup`` the largest ``|d|`` seen (a lower bound).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import stats

from toylab._errors import NotApplicable, ToylabError, fail
from toylab._validate import check_float, check_int
from toylab.activations import LEAKY_SLOPE
from toylab.distributions.base import Box, FiniteDomain
from toylab.exact import analyze, finite_table
from toylab.network import Network, as_network
from toylab.neurons import NeuronId, resolve
from toylab.tiers import Tier, weakest

__all__ = [
    "DistanceResult",
    "JointNetwork",
    "difference_network",
    "functional_distance",
    "joint_network",
]

_NONNEG = frozenset({"relu", "abs"})

Pair = tuple[NeuronId, NeuronId]


# --------------------------------------------------------------------------- joint network


@dataclasses.dataclass(frozen=True, eq=False)
class JointNetwork:
    """Two networks stacked side by side into one :class:`~toylab.network.Network`.

    ``network`` is the joint network (float64). ``columns[side][key]`` maps ``"a"`` /
    ``"b"`` and a layer key of that network (``"hidden_0"``, ``"hidden_0.pre"``,
    ``"output"``) to the joint network's columns of that key holding its units (layer
    keys are shared: unit ``i`` of ``a``'s ``hidden_k`` is a column of the joint
    ``hidden_k``); :meth:`column` resolves one neuron address. ``widths[side]`` are the
    original networks' widths.
    """

    network: Network
    columns: dict[str, dict[str, np.ndarray]]
    widths: dict[str, dict[str, int]]

    def column(self, side: str, neuron: str | NeuronId) -> tuple[str, int]:
        """``(joint layer key, column)`` holding ``neuron`` of network ``side``."""
        if side not in ("a", "b"):
            raise fail("JointNetwork.column", "side", side, "'a' or 'b'")
        nid = resolve(neuron, self.widths[side])
        if nid.layer == "input":
            raise fail(
                "JointNetwork.column", "neuron", str(nid), "a hidden or output neuron",
                "Inputs are shared by both networks.",
            )  # fmt: skip
        return nid.key, int(self.columns[side][nid.key][nid.unit])


def _float64(model: Any, where: str) -> Network:
    """``model``'s network with untied NumPy float64 arrays (an exact cast)."""
    return as_network(model, where).untied().numpy(np.float64)


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
    """The network computing both networks side by side (see the module docstring).

    ``model_a`` and ``model_b`` are networks or toylab models; the joint network is
    float64 (the cast of float32 weights is exact).
    """
    na, nb = _float64(model_a, where), _float64(model_b, where)
    if na.input_dim != nb.input_dim:
        raise fail(
            where, "model_b", repr(nb),
            f"a network with {na.input_dim} inputs, like model_a",
            "Both networks must read the same inputs.",
        )  # fmt: skip
    if na.output_activation != nb.output_activation:
        raise fail(
            where, "model_b", f"output activation {nb.output_activation!r}",
            f"model_a's output activation {na.output_activation!r}",
            "The joint network takes one activation per layer; compare the '.pre' outputs.",
        )  # fmt: skip
    aa, ab = list(na.hidden_activations), list(nb.hidden_activations)
    for k in range(min(len(aa), len(ab))):
        if aa[k] != ab[k]:
            raise ToylabError(
                f"{where}: hidden layer {k} uses {aa[k]!r} in model_a but {ab[k]!r} in model_b; "
                "the joint network takes one activation per layer."
            )
    target = aa if len(aa) >= len(ab) else ab
    la, lb = na.dense_layers(), nb.dense_layers()
    pa = _pad(la, aa, target, where) if len(aa) < len(target) else la
    pb = _pad(lb, ab, target, where) if len(ab) < len(target) else lb
    ws, bs = [], []
    columns: dict[str, dict[str, np.ndarray]] = {"a": {}, "b": {}}
    for k, ((wa, ba), (wb, bb)) in enumerate(zip(pa, pb, strict=True)):
        ws.append(np.hstack([wa, wb]) if k == 0 else _block(wa, wb))
        bs.append(np.concatenate([ba, bb]))
        key = "output" if k == len(pa) - 1 else f"hidden_{k}"
        na_k, nb_k = wa.shape[1], wb.shape[1]
        for side, cols, depth in (("a", np.arange(na_k), len(aa)), ("b", na_k + np.arange(nb_k),
                                                                     len(ab))):  # fmt: skip
            if key == "output" or k < depth:
                columns[side][key] = cols
                if key != "output" or na.output_activation != "identity":
                    columns[side][f"{key}.pre"] = cols
    net = Network.from_weights(
        ws, bs, tuple(target), output_activation=na.output_activation, dtype=np.float64
    )
    return JointNetwork(net, columns, {"a": na.widths, "b": nb.widths})


# --------------------------------------------------------------------------- difference network


def _cut(net: Network, key: str) -> Network:
    """The network whose ``output`` is ``net``'s layer ``key`` (identity output)."""
    post = key.removesuffix(".pre")
    k = net.layer_index(post)
    layers = net.dense_layers()[: k + 1]
    acts = list(net.activations[: k + 1])
    if key.endswith(".pre"):
        acts[-1] = "identity"
    elif acts[-1] != "identity":  # an exact identity read-out after the activation
        n = layers[-1][0].shape[1]
        layers.append((np.eye(n), np.zeros(n)))
        acts.append("identity")
    return Network.from_layers(layers, acts[:-1], dtype=np.float64)


def _difference(na: Network, nb: Network, pairs: Sequence[Pair], where: str) -> Network:
    (ka, kb) = pairs[0][0].key, pairs[0][1].key
    if any((ia.key, ib.key) != (ka, kb) for ia, ib in pairs):
        raise fail(
            where, "neurons", {str(a): str(b) for a, b in pairs},
            "pairs from one layer key of model_a and one of model_b",
            "Call it once per pair of layers (functional_distance groups pairs itself).",
        )  # fmt: skip
    joint = joint_network(_cut(na, ka), _cut(nb, kb), where=where)
    layers = joint.network.dense_layers()
    w, b = layers[-1]
    d = np.zeros((w.shape[1], len(pairs)))
    for i, (ia, ib) in enumerate(pairs):
        d[joint.columns["a"]["output"][ia.unit], i] += 1.0
        d[joint.columns["b"]["output"][ib.unit], i] -= 1.0
    return Network.from_layers(
        [*layers[:-1], (w @ d, b @ d)], joint.network.hidden_activations, dtype=np.float64
    )


def difference_network(
    model_a: Any, model_b: Any, neurons: Mapping[str, str] | None = None
) -> Network:
    """The network whose ``output:i`` is ``f_a - f_b`` for the ``i``-th pair of ``neurons``.

    ``neurons`` maps an address in ``model_a`` to one in ``model_b`` (default: each
    output to the same output); all pairs must come from one layer key of each network.
    Built as in the module docstring (float64), so :func:`toylab.exact.analyze`,
    :func:`toylab.exact.truncation_bounds` and every other exact tool apply to it.
    """
    where = "difference_network"
    na, nb = _float64(model_a, where), _float64(model_b, where)
    return _difference(na, nb, _pairs(na, nb, neurons, where), where)


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
      tier: ``"exact"``, ``"certified"``, ``"estimated"`` or ``"sampled"``
        (:mod:`toylab.tiers`; module docstring).
      error: bound (``exact``, ``certified``), estimate (``estimated``) or confidence
        half-width (``sampled``) of the absolute error of ``mean_square`` (for the
        exact tiers, of every moment of the difference networks); ``errors``: its parts
        (``rounding``, ``truncation``, ``band``; ``sampling``).
      method: how it was computed, in words.
    """

    pairs: tuple[tuple[str, str], ...]
    sup: np.ndarray
    argsup: np.ndarray
    mean_square: np.ndarray
    l2: np.ndarray
    tier: Tier
    error: float
    errors: dict[str, float]
    method: str

    @property
    def max_sup(self) -> float:
        return float(np.max(self.sup)) if len(self.sup) else 0.0

    @property
    def max_l2(self) -> float:
        return float(np.max(self.l2)) if len(self.l2) else 0.0


# --------------------------------------------------------------------------- helpers


def _pairs(na: Network, nb: Network, neurons: Mapping[str, str] | None, where: str) -> list[Pair]:
    if neurons is None:
        oa, ob = na.output_dim, nb.output_dim
        if oa != ob:
            raise fail(
                where, "neurons", None, f"a mapping (the networks have {oa} and {ob} outputs)",
                "Say which neurons to compare, e.g. neurons={'output:0': 'output:1'}.",
            )  # fmt: skip
        return [(NeuronId("output", i), NeuronId("output", i)) for i in range(oa)]
    if not isinstance(neurons, Mapping) or not neurons:
        raise fail(
            where, "neurons", neurons,
            "a non-empty mapping from an address in model_a to an address in model_b",
            "Example: {'hidden_0:2': 'hidden_0:0'}.",
        )  # fmt: skip
    return [(na.resolve(a), nb.resolve(b)) for a, b in neurons.items()]


def _sampled(
    na: Network, nb: Network, pairs: list[Pair], dist: Any, num_samples: int, key: Any,
    confidence: float, why: str,
) -> DistanceResult:  # fmt: skip
    x = np.asarray(dist.sample(key, num_samples).x, np.float64)
    va, vb = na.forward(x), nb.forward(x)
    d = np.stack([va[ia.key][:, ia.unit] - vb[ib.key][:, ib.unit] for ia, ib in pairs], axis=1)
    idx = np.abs(d).argmax(0)
    sq = d**2
    ms = sq.mean(0)
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    half = float((z * sq.std(0, ddof=1) / np.sqrt(len(x))).max())
    return DistanceResult(
        pairs=tuple((str(a), str(b)) for a, b in pairs),
        sup=np.abs(d[idx, np.arange(d.shape[1])]),
        argsup=x[idx],
        mean_square=ms,
        l2=np.sqrt(ms),
        tier="sampled",
        error=half,
        errors={"sampling": half},
        method=f"Monte Carlo over {len(x)} samples ({why}); sup is the largest |d| seen "
        f"(a lower bound); error is the half-width of the {confidence:.0%} normal confidence "
        "interval of the mean square",
    )


def _finite(na: Network, nb: Network, pairs: list[Pair], dist: Any) -> DistanceResult:
    """Exhaustive distances on a finite domain (module docstring)."""
    ta = finite_table(na, dist, keep_table=True).table
    tb = finite_table(nb, dist, keep_table=True).table
    va = np.stack([ta[ia.key][:, ia.unit] for ia, _ in pairs], axis=1)
    vb = np.stack([tb[ib.key][:, ib.unit] for _, ib in pairs], axis=1)
    d = va - vb
    domain = dist.domain
    p = np.asarray(domain.probs, np.float64)
    x = np.asarray(domain.inputs, np.float64)[p > 0]
    live = np.abs(d[p > 0])
    idx = live.argmax(0)
    n = len(p) + 4 * (na.num_layers + nb.num_layers)
    rounding = float(n * np.finfo(np.float64).eps * (p @ (np.abs(va) + np.abs(vb)) ** 2).max())
    ms = p @ (d * d)
    return DistanceResult(
        pairs=tuple((str(a), str(b)) for a, b in pairs),
        sup=live[idx, np.arange(d.shape[1])],
        argsup=x[idx],
        mean_square=ms,
        l2=np.sqrt(ms),
        tier="exact",
        error=rounding,
        errors={"rounding": rounding, "truncation": 0.0, "band": 0.0},
        method=f"exhaustive over all {len(p)} inputs of the finite domain (float64)",
    )


def _not_exact(na: Network, nb: Network, dist: Any) -> str:
    """Why no exact method applies ('' when one does)."""
    domain = getattr(dist, "domain", None)
    if isinstance(domain, FiniteDomain):
        return ""
    if not isinstance(domain, Box) or domain.dim != 2:
        return f"inputs have dimension {getattr(dist, 'dim', '?')}, the exact method needs 2"
    smooth = sorted({a for n in (na, nb) for a, act in zip(n.activations, n.acts, strict=True)
                     if not act.piecewise_linear})  # fmt: skip
    if smooth:
        return f"activations {smooth} are not piecewise linear"
    return ""


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
    confidence: float = 0.95,
) -> DistanceResult:
    """Exact sup and L2 distance between neurons of two networks (module docstring).

    ``neurons`` maps an address in ``model_a`` to one in ``model_b``
    (``{"hidden_0:2": "hidden_0:0"}``; default: each output to the same output).
    ``tol`` is the partition's tolerance and ``rtol`` the quadrature's (non-Gaussian
    densities), as in :func:`toylab.exact.analyze`. ``num_samples`` and ``key`` allow a
    labelled Monte Carlo estimate where no exact method applies.

    >>> import numpy as np
    >>> from toylab.network import Network
    >>> from toylab.distributions import two_blobs
    >>> a = Network.from_weights([np.eye(2), np.eye(2)])
    >>> b = Network.from_weights([2 * np.eye(2), 0.5 * np.eye(2)])
    >>> res = functional_distance(a, b, two_blobs())
    >>> float(res.max_sup), res.tier
    (0.0, 'exact')
    """
    where = "functional_distance"
    na, nb = _float64(model_a, where), _float64(model_b, where)
    pairs = _pairs(na, nb, neurons, where)
    if not 0.0 < check_float(where, "confidence", confidence) < 1.0:
        raise fail(where, "confidence", confidence, "in (0, 1)", "Example: confidence=0.95.")
    why = _not_exact(na, nb, dist)
    if why:
        if num_samples is None or key is None:
            raise NotApplicable(
                f"{where}: no exact method applies ({why}). Pass num_samples=... and "
                "key=jax.random.key(...) for a Monte Carlo estimate (tier 'sampled')."
            )
        n = check_int(where, "num_samples", num_samples, minimum=2)
        return _sampled(na, nb, pairs, dist, n, key, confidence, why)
    if isinstance(getattr(dist, "domain", None), FiniteDomain):
        return _finite(na, nb, pairs, dist)
    groups: dict[tuple[str, str], list[int]] = {}
    for i, (ia, ib) in enumerate(pairs):
        groups.setdefault((ia.key, ib.key), []).append(i)
    n = len(pairs)
    sup, mean_square = np.zeros(n), np.zeros(n)
    argsup = np.zeros((n, na.input_dim))
    tiers: list[str] = []
    errors: dict[str, float] = {}
    methods = []
    for idx in groups.values():
        diff = _difference(na, nb, [pairs[i] for i in idx], where)
        res = analyze(diff, dist, tol=tol, rtol=rtol)
        ext = res.extrema("output")
        hi, lo = np.asarray(ext.max, np.float64), np.asarray(ext.min, np.float64)
        up = hi >= -lo
        sup[idx] = np.where(up, hi, -lo)
        argsup[idx] = np.where(up[:, None], ext.argmax, ext.argmin)
        mean_square[idx] = np.maximum(np.diag(res.moments["output"].second_moment), 0.0)
        tiers.append(res.tier)
        for part, value in res.errors.items():
            errors[part] = max(errors.get(part, 0.0), float(value))
        methods.append(res.method)
    what = "sup at the partition's vertices, mean square from the difference network's moments"
    if len(groups) > 1:
        what += f" ({len(groups)} groups of pairs by layer)"
    return DistanceResult(
        pairs=tuple((str(a), str(b)) for a, b in pairs),
        sup=sup,
        argsup=argsup,
        mean_square=mean_square,
        l2=np.sqrt(mean_square),
        tier=weakest(*tiers),
        error=max(errors.values(), default=0.0),
        errors=errors,
        method=f"difference network, exact analysis: {methods[0]}; {what}",
    )
