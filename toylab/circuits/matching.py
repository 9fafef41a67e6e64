r"""Matching trained neurons to handwritten ones, and comparing their weights.

**Symmetries.** A ReLU network keeps its function when the units of a hidden layer
are permuted (with the next layer's rows), and when a unit's incoming weights and
bias are multiplied by :math:`c > 0` and its outgoing weights by :math:`1/c`
(:math:`\mathrm{relu}(cz) = c\,\mathrm{relu}(z)`; the same holds for leaky_relu
and abs, and for identity; not for hardtanh or smooth activations). A comparison
of two networks must therefore factor out one permutation and one positive scale
per hidden unit.

:func:`match_neurons` finds them from the data: the Pearson correlation of two
units is invariant to positive scaling, so for every hidden layer it computes the
exact correlation matrix :math:`\rho_{ij} = \mathrm{Cov}(a_i, b_j) /
\sqrt{\mathrm{Var}(a_i)\mathrm{Var}(b_j)}` under the distribution, and solves the
assignment problem :math:`\max_\pi \sum_i \rho_{i\pi(i)}`
(:func:`scipy.optimize.linear_sum_assignment`). The scale of a matched pair is the
least-squares :math:`c = E[a b] / E[b^2]` (exactly :math:`c` when :math:`a = c\,b`).
Pairs with :math:`\rho` below ``threshold`` are reported as unmatched.

Exact moments: on 2-D Gaussian mixtures, piecewise-linear networks, from the joint
partition (:func:`toylab.circuits.joint_network`) over the integration box with
:func:`toylab.exact.cross_moments`; on finite domains, by enumeration. Both tier
``"exact"``.

:func:`compare_weights` then expresses ``model_a`` in ``model_b``'s frame (undoing
the permutation and the scales: :func:`align`) and compares every unit's incoming
weights and bias: cosine and relative error per neuron.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from toylab._errors import ToylabError
from toylab.activations import PIECEWISE_LINEAR
from toylab.circuits.distance import _affine, joint_network
from toylab.exact import integration_domain
from toylab.exact.integrals import cross_moments, mixture_polygon_moments, neuron_moments
from toylab.exact.regions import partition
from toylab.models.mlp import MLP
from toylab.network import Network

__all__ = [
    "LayerMatch",
    "MatchResult",
    "WeightComparison",
    "align",
    "build_mlp",
    "compare_weights",
    "layer_moments",
    "match_neurons",
]

SCALE_SYMMETRIC = frozenset({"relu", "leaky_relu", "abs", "identity"})


@dataclasses.dataclass(frozen=True)
class LayerMatch:
    """The matching of one hidden layer.

    ``perm[i]``: the unit of ``b`` matched to unit ``i`` of ``a`` (``-1``: none);
    ``corr[i]``: its exact correlation; ``scale[i]``: ``c`` with ``a_i ≈ c b_perm[i]``;
    ``correlation``: the full ``(n_a, n_b)`` matrix; ``unmatched_a``/``unmatched_b``:
    units with no partner above the threshold.
    """

    layer: str
    perm: np.ndarray
    corr: np.ndarray
    scale: np.ndarray
    correlation: np.ndarray
    unmatched_a: tuple[int, ...]
    unmatched_b: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class MatchResult:
    """Matches for every hidden layer (``layers[k]`` for ``"hidden_k"``)."""

    layers: tuple[LayerMatch, ...]
    threshold: float
    tier: str

    def pairs(self) -> list[tuple[str, str, float, float]]:
        """``(address in a, address in b, correlation, scale)`` for every matched pair."""
        out = []
        for lm in self.layers:
            for i, j in enumerate(lm.perm):
                if j >= 0:
                    out.append((f"{lm.layer}:{i}", f"{lm.layer}:{j}", float(lm.corr[i]),
                                float(lm.scale[i])))  # fmt: skip
        return out


def layer_moments(model_a: Any, model_b: Any, dist: Any, key: str) -> tuple[np.ndarray, ...]:
    """Exact ``(E[a], E[b], E[a bᵀ], E[a aᵀ], E[b bᵀ])`` of layer ``key`` of both networks."""
    where = "match_neurons"
    domain: Any = getattr(dist, "domain", None)
    if hasattr(domain, "probs"):
        la, aa = _affine(model_a, where)
        lb, ab = _affine(model_b, where)
        x = np.asarray(domain.inputs, np.float64)
        p = np.asarray(domain.probs, np.float64)
        va, vb = (
            Network.from_layers(la, aa).forward(x)[key],
            Network.from_layers(lb, ab).forward(x)[key],
        )
        return (
            p @ va,
            p @ vb,
            (va * p[:, None]).T @ vb,
            (va * p[:, None]).T @ va,
            (vb * p[:, None]).T @ vb,
        )
    acts = list(model_a.affine_layers()[1]) + list(model_b.affine_layers()[1])
    if (
        type(dist).__name__ != "GaussianMixture"
        or dist.dim != 2
        or not all(a in PIECEWISE_LINEAR for a in acts)
    ):
        raise ToylabError(
            f"{where}: exact moments need a finite domain, or a 2-D GaussianMixture and "
            f"piecewise-linear networks; got {type(dist).__name__} (dim "
            f"{getattr(dist, 'dim', None)}) and activations {sorted(set(acts))}."
        )
    joint = joint_network(model_a, model_b, where=where)
    _dom = integration_domain(dist)
    low, high = _dom.low, _dom.high
    poly = np.array([[low[0], low[1]], [high[0], low[1]], [high[0], high[1]], [low[0], high[1]]])
    plane = partition(Network.from_layers(joint.layers, joint.activations), poly)
    means, covs, weights, _ = dist.arrays()
    m0k, m1k, m2k = mixture_polygon_moments(plane.polygons, means, covs, weights)
    m0, m1, m2 = m0k.sum(0), m1k.sum(0), m2k.sum(0)
    maps_a = plane.maps[key][:, joint.columns["a"][key]]
    maps_b = plane.maps[key][:, joint.columns["b"][key]]
    cross = cross_moments(m0, m1, m2, maps_a, maps_b)
    ma = neuron_moments(m0, m1, m2, maps_a)
    mb = neuron_moments(m0, m1, m2, maps_b)
    return cross.mean_a, cross.mean_b, cross.second_moment, ma.second_moment, mb.second_moment


def match_neurons(
    model_a: Any, model_b: Any, dist: Any, *, threshold: float = 0.9, eps: float = 1e-12
) -> MatchResult:
    """Best assignment of ``model_a``'s hidden units to ``model_b``'s (module docstring).

    Units whose variance is below ``eps`` (dead or constant) have correlation 0.
    """
    where = "match_neurons"
    la, aa = _affine(model_a, where)
    lb, ab = _affine(model_b, where)
    if len(aa) != len(ab):
        raise ToylabError(
            f"{where}: the networks have {len(aa)} and {len(ab)} hidden layers; matching pairs "
            "layer k with layer k, so they must have the same depth."
        )
    out = []
    for k in range(len(aa)):
        key = f"hidden_{k}"
        mean_a, mean_b, ab_m, aa_m, bb_m = layer_moments(model_a, model_b, dist, key)
        var_a = np.diag(aa_m) - mean_a**2
        var_b = np.diag(bb_m) - mean_b**2
        cov = ab_m - np.outer(mean_a, mean_b)
        ok = np.outer(var_a > eps, var_b > eps)
        denom = np.sqrt(np.outer(np.maximum(var_a, eps), np.maximum(var_b, eps)))
        corr = np.where(ok, cov / denom, 0.0)
        rows, cols = linear_sum_assignment(-corr)
        perm = np.full(len(var_a), -1)
        c = np.zeros(len(var_a))
        scale = np.full(len(var_a), np.nan)
        for i, j in zip(rows, cols, strict=True):
            if corr[i, j] >= threshold:
                perm[i] = j
                c[i] = corr[i, j]
                scale[i] = ab_m[i, j] / bb_m[j, j] if bb_m[j, j] > 0 else np.nan
            else:
                c[i] = corr[i, j]
        matched_b = set(perm[perm >= 0].tolist())
        out.append(
            LayerMatch(
                key,
                perm,
                c,
                scale,
                corr,
                tuple(int(i) for i in np.nonzero(perm < 0)[0]),
                tuple(j for j in range(len(var_b)) if j not in matched_b),
            )
        )
    return MatchResult(tuple(out), float(threshold), "exact")


def _frames(match: MatchResult, n_layers: int) -> list[tuple[np.ndarray, np.ndarray]]:
    frames = []
    for lm in match.layers:
        if np.any(lm.perm < 0):
            raise ToylabError(
                f"align: layer {lm.layer!r} has unmatched units {list(lm.unmatched_a)}; align "
                "needs a complete matching (lower the threshold, or compare matched units only)."
            )
        frames.append((lm.perm, lm.scale))
    return frames


def align(model_a: Any, match: MatchResult) -> MLP:
    r"""``model_a`` rewritten in ``model_b``'s frame: same function, b's unit order and scales.

    Unit ``i`` of layer ``k`` (matched to ``j = perm[i]`` with scale ``s_i``) becomes
    unit ``j`` with incoming weights and bias divided by ``s_i`` and outgoing weights
    multiplied by ``s_i`` (exact for positively homogeneous activations).
    """
    layers, acts = _affine(model_a, "align")
    if any(a not in SCALE_SYMMETRIC for a in acts):
        raise ToylabError(
            f"align: rescaling units is exact only for {sorted(SCALE_SYMMETRIC)}, got {acts}."
        )
    frames = _frames(match, len(acts))
    ws, bs = [w.copy() for w, _ in layers], [b.copy() for _, b in layers]
    for k, (perm, scale) in enumerate(frames):
        if np.any(~(scale > 0)):
            raise ToylabError(f"align: layer hidden_{k} has non-positive scales {scale}.")
        inv = np.argsort(perm)
        ws[k] = (ws[k] / scale)[:, inv]
        bs[k] = (bs[k] / scale)[inv]
        ws[k + 1] = (ws[k + 1] * scale[:, None])[inv]
    dtype = model_a.layers[0].kernel[...].dtype  # keep float64 models float64
    return build_mlp(ws, bs, acts[0] if acts else "relu", dtype=dtype)


def build_mlp(weights: list, biases: list, activation: str = "relu", *, dtype: Any = None) -> MLP:
    """The MLP ``MLP.from_weights`` builds, without running (and compiling) initializers.

    ``dtype=float64`` keeps the weights in float64 (under ``jax.enable_x64``).
    """
    import jax
    import jax.numpy as jnp
    from flax import nnx

    dtype = jnp.float32 if dtype is None else dtype
    widths = [np.shape(weights[0])[0]] + [np.shape(w)[1] for w in weights]
    model = nnx.eval_shape(lambda: MLP(widths, activation, rngs=nnx.Rngs(0)))
    with jax.enable_x64(bool(np.dtype(dtype) == np.float64)):
        for lin, w, b in zip(model.layers, weights, biases, strict=True):
            lin.kernel = nnx.Param(jnp.asarray(w, dtype))
            lin.bias = nnx.Param(jnp.asarray(b, dtype))
    return model


@dataclasses.dataclass(frozen=True)
class WeightComparison:
    """Per-neuron weight comparison after alignment.

    ``cosine[layer][j]`` and ``relative_error[layer][j]`` compare unit ``j`` of
    ``model_b`` with its aligned partner in ``model_a`` (incoming weights and bias as
    one vector); ``layer`` runs over ``"hidden_k"`` and ``"output"``. ``aligned`` is
    :func:`align`'s model.
    """

    cosine: dict[str, np.ndarray]
    relative_error: dict[str, np.ndarray]
    aligned: MLP


def compare_weights(model_a: Any, model_b: Any, match: MatchResult) -> WeightComparison:
    """Compare weights unit by unit after undoing permutations and scales (see :func:`align`)."""
    aligned = align(model_a, match)
    la, _ = _affine(aligned, "compare_weights")
    lb, _ = _affine(model_b, "compare_weights")
    cos, rel = {}, {}
    for k, ((wa, ba), (wb, bb)) in enumerate(zip(la, lb, strict=True)):
        key = "output" if k == len(la) - 1 else f"hidden_{k}"
        va = np.vstack([wa, ba[None]])
        vb = np.vstack([wb, bb[None]])
        na, nb = np.linalg.norm(va, axis=0), np.linalg.norm(vb, axis=0)
        cos[key] = (va * vb).sum(0) / np.maximum(na * nb, 1e-300)
        rel[key] = np.linalg.norm(va - vb, axis=0) / np.maximum(nb, 1e-300)
    return WeightComparison(cos, rel, aligned)
