r"""Modularity: clusterability of a network's weight graph (Filan et al. 2021).

**The graph.** Nodes are all units: inputs, every hidden layer, outputs (``N`` in all,
in network order). Consecutive layers are joined by edges of weight :math:`|W_{ij}|`;
the adjacency :math:`A` is symmetric, biases are ignored. Nodes without edges
(inputs or units whose every weight is 0) cannot be clustered and are left out
(label ``-1``).

**The partition.** Spectral clustering into ``k`` clusters: the ``k`` eigenvectors
:math:`U` of the normalised Laplacian :math:`L = I - D^{-1/2} A D^{-1/2}` with the
smallest eigenvalues (:math:`D` the degrees), mapped to the generalised eigenvectors
:math:`D^{-1/2} U` of :math:`L_{rw}` (Shi and Malik), then k-means on those rows
(k-means++ starts, ``num_init`` restarts from an explicit PRNG key, the lowest
within-cluster sum of squares kept). The minimum normalised cut is NP-hard; this
partition is the standard spectral relaxation, a heuristic.

**The score.** The normalised cut of a partition :math:`\{c\}`,

.. math:: \mathrm{ncut} = \sum_c \frac{\mathrm{cut}(c, \bar c)}{\mathrm{vol}(c)},
   \qquad \mathrm{cut}(c, \bar c) = \sum_{i \in c, j \notin c} A_{ij},
   \quad \mathrm{vol}(c) = \sum_{i \in c} \deg(i),

in ``[0, k]``; lower is more clusterable. It is computed for the found partition from
sums of non-negative terms (tier ``"exact"`` for that partition; ``ncut_error`` a
rounding budget ``4 k N eps``).

**The baseline.** The same pipeline on ``num_shuffles`` networks whose weights are
permuted uniformly at random within each layer (each weight matrix keeps its multiset
of values, so the layer sizes and weight distributions are those of the network, the
structure is random). Reported: the baseline's mean and standard deviation (``sampled``:
``baseline_error`` is the half-width of the normal ``confidence`` interval of the
mean), the **z-score** :math:`(\mathrm{ncut} - \mu)/\sigma` (its ``z_error`` the
normal-approximation half-width :math:`z_q \sqrt{1/S + z^2/2(S - 1)}`) and the
**percentile**: the fraction of shuffles whose n-cut is at most the network's (its
Clopper--Pearson ``confidence`` interval in ``percentile_interval``). A modular network
has a large negative z and a percentile near 0. The eigen-decompositions of all
shuffles are one batched ``numpy.linalg.eigh``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
from scipy import stats

from toylab._errors import fail
from toylab._validate import check_float, check_int
from toylab.network import Network, as_network
from toylab.tiers import Tier

__all__ = [
    "ClusterabilityResult",
    "clusterability",
    "clusterability_ensemble",
    "ncut",
    "spectral_partition",
    "weight_graph",
]

_EPS = float(np.finfo(np.float64).eps)


@dataclasses.dataclass(frozen=True, eq=False)
class ClusterabilityResult:
    """Clusterability of one network (see the module docstring).

    ``ncut``: the normalised cut of the spectral partition ``labels`` (one label per
    node in network order, ``-1`` for nodes without edges; ``layer_sizes`` says which
    nodes belong to which layer), tier ``ncut_tier`` (``"exact"`` for that partition)
    with rounding budget ``ncut_error``; ``baseline``: the n-cuts of the shuffled
    networks; ``baseline_mean``/``baseline_std``/``baseline_error`` (the CI half-width
    of the mean); ``z`` and ``z_error``; ``percentile`` and ``percentile_interval``;
    ``tier``: ``"sampled"`` (the baseline, z and percentile are Monte Carlo);
    ``error``: ``z_error``; ``method``: how everything was obtained.
    """

    ncut: float
    ncut_error: float
    ncut_tier: Tier
    labels: np.ndarray
    layer_sizes: tuple[int, ...]
    k: int
    baseline: np.ndarray
    baseline_mean: float
    baseline_std: float
    baseline_error: float
    z: float
    z_error: float
    percentile: float
    percentile_interval: tuple[float, float]
    tier: Tier
    error: float
    method: str
    num_shuffles: int
    confidence: float

    def __str__(self) -> str:
        lo, hi = self.percentile_interval
        return (
            f"n-cut {self.ncut:.4f} [exact for the spectral partition, k={self.k}]; shuffled "
            f"{self.baseline_mean:.4f} ± {self.baseline_std:.4f} ({self.num_shuffles} shuffles); "
            f"z = {self.z:.2f} ± {self.z_error:.2f}, percentile {self.percentile:.3f} "
            f"[{lo:.3f}, {hi:.3f}] [sampled]"
        )


def _weights(model: Any, where: str) -> list[np.ndarray]:
    net = as_network(model, where).untied().numpy(np.float64)
    ws = [w for w, _ in net.dense_layers(np.float64)]
    if ws[0].ndim != 2:
        raise fail(where, "model", repr(net), "one network (not a stacked ensemble)",
                   "Use clusterability_ensemble for an ensemble.")  # fmt: skip
    return ws


def weight_graph(model: Any) -> tuple[np.ndarray, tuple[int, ...]]:
    """The weight graph's symmetric adjacency ``(N, N)`` (``|W|`` between consecutive
    layers) and the layer sizes ``(input, hidden..., output)``; ``model`` is a toylab
    model or a :class:`~toylab.network.Network`."""
    return _adjacency(_weights(model, "weight_graph"))


def _adjacency(ws: list[np.ndarray]) -> tuple[np.ndarray, tuple[int, ...]]:
    sizes = (ws[0].shape[0], *(w.shape[1] for w in ws))
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    adj = np.zeros((offsets[-1], offsets[-1]))
    for k, w in enumerate(ws):
        r, c = slice(offsets[k], offsets[k + 1]), slice(offsets[k + 1], offsets[k + 2])
        adj[r, c] = np.abs(w)
        adj[c, r] = np.abs(w).T
    return adj, sizes


def ncut(adjacency: Any, labels: Any) -> float:
    r"""The normalised cut :math:`\sum_c \mathrm{cut}(c, \bar c) / \mathrm{vol}(c)` of a
    partition (``labels``: one int per node, ``-1`` for nodes left out, which must have
    no edges); clusters of zero volume contribute nothing.

    >>> import numpy as np
    >>> a = np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]], float)
    >>> ncut(a, [0, 0, 1])
    1.3333333333333333
    """
    adj = np.asarray(adjacency, np.float64)
    lab = np.asarray(labels)
    if adj.ndim != 2 or adj.shape[0] != adj.shape[1] or lab.shape != (adj.shape[0],):
        raise fail("ncut", "labels", f"shapes {adj.shape} and {lab.shape}",
                   "a square (N, N) adjacency and (N,) labels")  # fmt: skip
    return float(_ncuts(adj[None], lab[None])[0])


def _ncuts(adj: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """n-cut of each graph ``(S, N, N)`` under its labels ``(S, N)``."""
    k = int(labels.max(initial=-1)) + 1
    onehot = (labels[..., None] == np.arange(max(k, 1))).astype(np.float64)  # (S, N, k)
    deg = adj.sum(-1)
    vol = np.einsum("snk,sn->sk", onehot, deg)
    outside = (labels >= 0)[..., None] * (1.0 - onehot)  # clustered nodes not in c
    cut = np.einsum("snk,snm,smk->sk", onehot, adj, outside, optimize=True)
    return np.where(vol > 0, cut / np.where(vol > 0, vol, 1.0), 0.0).sum(-1)


def _embeddings(adj: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Shi--Malik spectral embeddings ``(S, N, k)`` of a stack of graphs, and which nodes
    have edges ``(S, N)``; one batched ``eigh``."""
    deg = adj.sum(-1)
    live = deg > 0
    inv = np.where(live, 1.0 / np.sqrt(np.where(live, deg, 1.0)), 0.0)
    norm = inv[..., :, None] * adj * inv[..., None, :]
    lap = np.eye(adj.shape[-1]) - norm  # isolated nodes: eigenvalue 1, eigenvector e_i
    _, vec = np.linalg.eigh(lap)
    return vec[..., :k] * inv[..., :, None], live


def _kmeans(x: np.ndarray, k: int, rng: np.random.Generator, num_init: int) -> np.ndarray:
    """Lloyd's k-means with k-means++ starts; the labels of the restart with the lowest
    within-cluster sum of squares."""
    n = x.shape[0]
    best, best_inertia = np.zeros(n, int), math.inf
    for _ in range(num_init):
        centres = [x[rng.integers(n)]]
        for _ in range(1, k):
            d2 = np.min(((x[:, None] - np.array(centres)[None]) ** 2).sum(-1), 1)
            total = d2.sum()
            idx = rng.choice(n, p=d2 / total) if total > 0 else rng.integers(n)
            centres.append(x[idx])
        c = np.array(centres)
        labels = np.zeros(n, int)
        for it in range(300):
            d2 = ((x[:, None] - c[None]) ** 2).sum(-1)
            new = d2.argmin(1)
            if it and np.array_equal(new, labels):
                break
            labels = new
            for j in range(k):
                if np.any(labels == j):
                    c[j] = x[labels == j].mean(0)
        inertia = float(((x - c[labels]) ** 2).sum())
        if inertia < best_inertia:
            best, best_inertia = labels, inertia
    return best


def _partitions(adj: np.ndarray, k: int, rng: np.random.Generator, num_init: int) -> np.ndarray:
    """Spectral partitions ``(S, N)`` of a stack of graphs (``-1``: nodes without edges)."""
    emb, live = _embeddings(adj, k)
    out = np.full(live.shape, -1)
    for s in range(adj.shape[0]):
        idx = np.flatnonzero(live[s])
        if len(idx):
            out[s, idx] = _kmeans(emb[s, idx], min(k, len(idx)), rng, num_init)
    return out


def spectral_partition(adjacency: Any, k: int = 4, *, key: Any, num_init: int = 10) -> np.ndarray:
    """Spectral clustering of a weighted graph into ``k`` clusters (module docstring):
    one label per node, ``-1`` for nodes without edges. ``key``: a JAX PRNG key for the
    k-means starts."""
    from toylab.methods._core import check_key, numpy_rng

    where = "spectral_partition"
    adj = np.asarray(adjacency, np.float64)
    if adj.ndim != 2 or adj.shape[0] != adj.shape[1] or not np.allclose(adj, adj.T):
        raise fail(where, "adjacency", f"an array of shape {adj.shape}",
                   "a symmetric (N, N) matrix")  # fmt: skip
    if np.any(adj < 0) or not np.all(np.isfinite(adj)):
        raise fail(where, "adjacency", "negative or non-finite weights", "finite and >= 0")
    k = check_int(where, "k", k, minimum=2, maximum=adj.shape[0])
    num_init = check_int(where, "num_init", num_init, minimum=1)
    rng = numpy_rng(check_key(where, key))
    return _partitions(adj[None], k, rng, num_init)[0]


def _shuffled(ws: list[np.ndarray], rng: np.random.Generator, num: int) -> np.ndarray:
    """Adjacencies ``(num, N, N)`` of networks with each weight matrix permuted."""
    graphs = []
    for _ in range(num):
        perm = [rng.permutation(w.ravel()).reshape(w.shape) for w in ws]
        graphs.append(_adjacency(perm)[0])
    return np.stack(graphs)


def clusterability(
    model: Any,
    *,
    k: int = 4,
    num_shuffles: int = 100,
    key: Any,
    num_init: int = 10,
    confidence: float = 0.95,
) -> ClusterabilityResult:
    """Clusterability of ``model``'s weight graph against within-layer weight shuffles.

    ``model``: a toylab model or a :class:`~toylab.network.Network`; ``k``: the number
    of clusters; ``num_shuffles``: the baseline's size; ``key``: a JAX PRNG key (the
    shuffles and every k-means start); ``num_init``: k-means restarts per graph;
    ``confidence``: of the baseline's intervals. See the module docstring.
    """
    from toylab.methods._core import check_key, numpy_rng

    where = "clusterability"
    ws = _weights(model, where)
    adj, sizes = _adjacency(ws)
    k = check_int(where, "k", k, minimum=2, maximum=adj.shape[0])
    num_shuffles = check_int(where, "num_shuffles", num_shuffles, minimum=2)
    num_init = check_int(where, "num_init", num_init, minimum=1)
    confidence = check_float(where, "confidence", confidence, positive=True, maximum=0.9999)
    rng = numpy_rng(check_key(where, key))
    labels = _partitions(adj[None], k, rng, num_init)[0]
    value = float(_ncuts(adj[None], labels[None])[0])
    shuffled = _shuffled(ws, rng, num_shuffles)
    base = _ncuts(shuffled, _partitions(shuffled, k, rng, num_init))
    return _result(value, labels, sizes, k, base, confidence, adj.shape[0], num_init)


def _result(
    value: float, labels: np.ndarray, sizes: tuple[int, ...], k: int, base: np.ndarray,
    confidence: float, num_nodes: int, num_init: int,
) -> ClusterabilityResult:  # fmt: skip
    s = len(base)
    mean, std = float(base.mean()), float(base.std(ddof=1))
    zq = float(stats.norm.ppf(0.5 + confidence / 2))
    if std > 0:
        z = (value - mean) / std
        z_err = zq * math.sqrt(1.0 / s + z * z / (2.0 * (s - 1)))
    else:
        z = 0.0 if value == mean else math.copysign(math.inf, value - mean)
        z_err = math.nan
    count = int(np.sum(base <= value))
    alpha = 1.0 - confidence
    lo = float(stats.beta.ppf(alpha / 2, count, s - count + 1)) if count > 0 else 0.0
    hi = float(stats.beta.ppf(1 - alpha / 2, count + 1, s - count)) if count < s else 1.0
    method = (
        f"spectral partition (normalised Laplacian, k-means with {num_init} k-means++ starts; "
        f"a heuristic for the NP-hard minimum n-cut), n-cut exact for that partition; baseline "
        f"over {s} within-layer weight shuffles (sampled: normal {confidence:.0%} interval of "
        f"the mean and of z, Clopper-Pearson for the percentile)"
    )
    return ClusterabilityResult(
        ncut=value,
        ncut_error=4 * k * num_nodes * _EPS,
        ncut_tier="exact",
        labels=labels,
        layer_sizes=sizes,
        k=k,
        baseline=base,
        baseline_mean=mean,
        baseline_std=std,
        baseline_error=zq * std / math.sqrt(s),
        z=float(z),
        z_error=float(z_err),
        percentile=count / s,
        percentile_interval=(lo, hi),
        tier="sampled",
        error=float(z_err),
        method=method,
        num_shuffles=s,
        confidence=confidence,
    )


def clusterability_ensemble(
    run_or_models: Any,
    *,
    k: int = 4,
    num_shuffles: int = 100,
    key: Any,
    num_init: int = 10,
    confidence: float = 0.95,
) -> tuple[ClusterabilityResult, ...]:
    """:func:`clusterability` of every member of an ensemble: a :class:`toylab.runs.Run`
    (its final models), a list of models or networks, or a stacked ensemble ``Network``;
    member ``m`` uses ``jax.random.fold_in(key, m)``."""
    import jax

    from toylab.methods._core import check_key
    from toylab.universality.similarity import _members

    key = check_key("clusterability_ensemble", key)
    nets: list[Network] = _members("clusterability_ensemble", run_or_models)
    return tuple(
        clusterability(
            net,
            k=k,
            num_shuffles=num_shuffles,
            key=jax.random.fold_in(key, m),
            num_init=num_init,
            confidence=confidence,
        )  # fmt: skip
        for m, net in enumerate(nets)
    )
