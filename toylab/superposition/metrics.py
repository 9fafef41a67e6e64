r"""Exact superposition metrics of a toy model's weights (Elhage et al. 2022).

For ``W`` of shape ``(m, n)`` (``m`` hidden dimensions, ``n`` features; column ``W_i``
embeds feature ``"input:i"``) and output bias ``b``:

* feature norms ``‖W_i‖``; interference matrix ``G = WᵀW`` (``G_ij = W_i·W_j``);
* dimensionality ``D_i = ‖W_i‖² / Σ_j (Ŵ_i·W_j)² = G_ii² / Σ_j G_ij²`` (``Ŵ_i = W_i/‖W_i‖``);
  ``D_i = 0`` for a zero column (a feature that is not embedded takes no dimension);
* superposition of feature ``i``: ``Σ_{j≠i} (Ŵ_i·W_j)²`` (0 for a zero column);
* dimensions per feature ``D* = m / ‖W‖_F²`` (``inf`` when ``W = 0``);
* represented features: ``‖W_i‖ > threshold`` (default 0.5, as the paper's plots);
* the **sum rule**: ``Σ_i D_i ≤ rank(W) ≤ m``. Proof: with ``P`` the projection onto the
  range of ``G``, ``G_ii = (G e_i)·(P e_i) ≤ ‖G e_i‖ ‖P e_i‖`` so ``D_i ≤ P_ii`` and
  ``Σ D_i ≤ tr P = rank G``; equality holds for the uniform-norm tight frames the
  paper finds (``Σ D_i ≈ m``);
* the **geometry**: each ``D_i`` is matched to the nearest of the fractions
  ``1, 3/4, 2/3, 1/2, 2/5, 3/8`` within ``tol`` (``0`` = not represented), and the
  represented features are grouped into *structures*: connected components of the graph
  ``|cos(W_i, W_j)| > link``; a component of ``k`` features that all carry the fraction
  ``f`` is a dedicated dimension (k=1, f=1), an antipodal pair (2, 1/2), a triangle
  (3, 2/3), a tetrahedron (4, 3/4), a pentagon (5, 2/5) or a square antiprism (8, 3/8);
  anything else is named ``"other"``;
* for ``m = 2``: the polygon of represented features (their angles in order); it is
  *regular* when every angular gap is ``2π/k`` within ``angle_tol`` radians and every
  norm is within ``norm_tol`` (relative) of their mean.

Everything is an exact function of the weights, computed in float64 (tier ``exact``;
the only error is rounding). Ensembles (a list of models/networks, or a stacked
:class:`~toylab.network.Network` with a member axis) are vectorised over members.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from toylab._errors import fail
from toylab._validate import check_float
from toylab.layers import Dense, Tied
from toylab.network import Network, as_network
from toylab.tiers import Tier

__all__ = [
    "FRACTIONS",
    "STRUCTURES",
    "Polygon",
    "Structure",
    "SuperpositionResult",
    "superposition_metrics",
    "superposition_weights",
]

#: dimensionality fraction -> the structure whose members carry it (k features in d dims)
STRUCTURES: dict[float, tuple[str, int]] = {
    1.0: ("dedicated dimension", 1),
    3 / 4: ("tetrahedron", 4),
    2 / 3: ("triangle", 3),
    1 / 2: ("antipodal pair", 2),
    2 / 5: ("pentagon", 5),
    3 / 8: ("square antiprism", 8),
}
#: the fractions the paper's D_i cluster at, largest first (0 = not represented)
FRACTIONS: tuple[float, ...] = tuple(STRUCTURES)
_FRACTION_LABELS = {1.0: "1", 3 / 4: "3/4", 2 / 3: "2/3", 1 / 2: "1/2", 2 / 5: "2/5", 3 / 8: "3/8"}


def fraction_label(f: float | None) -> str:
    """``"3/4"`` for 0.75, ``"0"`` for 0, ``"other"`` for ``None``."""
    if f is None:
        return "other"
    if f == 0:
        return "0"
    return _FRACTION_LABELS[f]


@dataclasses.dataclass(frozen=True)
class Structure:
    """A group of represented features that interfere only with each other.

    ``name`` is one of the structures of :data:`STRUCTURES` or ``"other"``; ``features``
    the canonical addresses (``"input:i"``); ``fraction`` the common D_i fraction (or
    ``None`` when they do not share one); ``dimensions`` ``Σ D_i`` over the group.
    """

    name: str
    features: tuple[str, ...]
    fraction: float | None
    dimensions: float


@dataclasses.dataclass(frozen=True)
class Polygon:
    """For ``m = 2``: the represented features in counter-clockwise order.

    ``angles`` in radians in ``[0, 2π)``; ``gaps`` the angle from each feature to the next
    (the last one wraps around); ``regular`` says whether every gap is ``2π/k`` within
    ``angle_tol`` and every norm is within ``norm_tol`` (relative) of the mean norm;
    ``max_gap_error`` and ``norm_spread`` are the measured deviations.
    """

    features: tuple[str, ...]
    angles: np.ndarray
    norms: np.ndarray
    gaps: np.ndarray
    regular: bool
    max_gap_error: float
    norm_spread: float
    angle_tol: float
    norm_tol: float


@dataclasses.dataclass(frozen=True)
class SuperpositionResult:
    """Superposition metrics of one member or an ensemble (tier ``exact``).

    Array fields have a leading member axis of length ``num_members`` when an ensemble
    was given (``ensemble=True``) and none otherwise; :meth:`member` takes one member.
    ``geometry``/``structures``/``polygon`` are per member (tuples over members for an
    ensemble). ``features`` are the canonical addresses ``"input:i"``.

    Fields: ``W`` ``(m, n)``, ``b`` ``(n,)``, ``norms`` ``‖W_i‖``, ``interference``
    ``WᵀW``, ``dimensionality`` ``D_i``, ``superposition`` ``Σ_{j≠i}(Ŵ_i·W_j)²``,
    ``dimensions_per_feature`` ``D*``, ``represented`` ``‖W_i‖ > threshold``,
    ``num_represented``, ``bias_signs`` (-1, 0, +1), ``sum_dimensionality`` ``Σ D_i``,
    ``rank`` (of ``W``, numerical, ``np.linalg.matrix_rank``), ``fractions`` (per feature
    the matched fraction, ``0.0`` for unrepresented, ``nan`` for none within ``tol``),
    ``geometry`` (per feature the fraction's structure name, ``"not represented"`` or
    ``"other"``), ``structures`` (:class:`Structure` s), ``polygon`` (:class:`Polygon`,
    ``m = 2`` only, else ``None``); ``threshold``, ``tol``, ``link`` the stated parameters.
    """

    W: np.ndarray
    b: np.ndarray
    norms: np.ndarray
    interference: np.ndarray
    dimensionality: np.ndarray
    superposition: np.ndarray
    dimensions_per_feature: np.ndarray
    represented: np.ndarray
    num_represented: np.ndarray
    bias_signs: np.ndarray
    sum_dimensionality: np.ndarray
    rank: np.ndarray
    fractions: np.ndarray
    geometry: Any
    structures: Any
    polygon: Any
    num_hidden: int
    num_features: int
    threshold: float
    tol: float
    link: float
    ensemble: bool
    tier: Tier = "exact"

    @property
    def features(self) -> tuple[str, ...]:
        return tuple(f"input:{i}" for i in range(self.num_features))

    @property
    def num_members(self) -> int:
        return int(self.W.shape[0]) if self.ensemble else 1

    @property
    def sum_rule_gap(self) -> Any:
        """``m − Σ D_i`` (≥ 0 up to rounding; 0 for a tight frame)."""
        return self.num_hidden - self.sum_dimensionality

    def member(self, k: int) -> SuperpositionResult:
        """Member ``k`` of an ensemble result (a single result is its own member 0)."""
        if not self.ensemble:
            if k != 0:
                raise fail("SuperpositionResult.member", "k", k, "0 (a single model)")
            return self
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 0 <= k < len(self.W):
            raise fail("SuperpositionResult.member", "k", k, f"in 0..{len(self.W) - 1}")
        arrays = {
            f.name: getattr(self, f.name)[k]
            for f in dataclasses.fields(self)
            if isinstance(getattr(self, f.name), np.ndarray | tuple)
        }
        return dataclasses.replace(self, **arrays, ensemble=False)

    def summary(self) -> str:
        """One line per member: counts, D*, the sum rule and the structures."""
        lines = []
        for k in range(self.num_members):
            r = self.member(k) if self.ensemble else self
            names = [s.name for s in r.structures]
            counts = {n: names.count(n) for n in dict.fromkeys(names)}
            found = ", ".join(f"{c} {n}" for n, c in counts.items()) or "none"
            lines.append(
                f"{'member ' + str(k) + ': ' if self.ensemble else ''}"
                f"{int(r.num_represented)}/{self.num_features} features represented "
                f"(norm > {self.threshold:g}), D* = {float(r.dimensions_per_feature):.3f}, "
                f"sum D_i = {float(r.sum_dimensionality):.3f} of m = {self.num_hidden}; {found}"
            )
        return "\n".join(lines)


# --------------------------------------------------------------------------- weights


def _network_weights(net: Network, where: str) -> tuple[np.ndarray, np.ndarray]:
    ok = (
        net.num_layers == 2
        and isinstance(net.layers[0], Dense)
        and isinstance(net.layers[1], Tied)
        and net.layers[1].source == 0
        and net.activations[0] == "identity"
        and net.activations[1] in ("identity", "relu")
    )
    if not ok:
        raise fail(
            where, "model", repr(net),
            "a toy model of superposition: Network((Dense(Wᵀ, 0), Tied(0, b)), "
            "('identity', 'identity' or 'relu'))",
            "Build it with SuperpositionReLU.from_weights(W, b) or train kind="
            "'superposition_relu'.",
        )  # fmt: skip
    kernel = np.asarray(net.layers[0].kernel, np.float64)  # type: ignore[union-attr]
    enc_bias = np.asarray(net.layers[0].bias, np.float64)  # type: ignore[union-attr]
    if np.any(enc_bias != 0):
        raise fail(where, "model", repr(net), "an encoder without bias (h = W x)")
    W = np.swapaxes(kernel, -1, -2)
    b = np.asarray(net.layers[1].bias, np.float64)  # type: ignore[union-attr]
    if not (np.all(np.isfinite(W)) and np.all(np.isfinite(b))):
        raise fail(where, "model", repr(net), "finite weights")
    return W, b


def superposition_weights(model: Any, where: str = "superposition_weights") -> tuple[
    np.ndarray, np.ndarray, str, bool
]:  # fmt: skip
    """``(W, b, output_activation, ensemble)`` of a toy model of superposition, in float64.

    ``model`` is a model (``SuperpositionLinear``/``SuperpositionReLU``), a tied
    :class:`~toylab.network.Network`, a stacked network (``W`` then has a member axis:
    ``(M, m, n)``) or a non-empty list of those (stacked along a new axis). ``W`` is
    ``(m, n)``: column ``i`` embeds feature ``"input:i"``.
    """
    if isinstance(model, Sequence) and not isinstance(model, str | Network):
        items = list(model)
        if not items:
            raise fail(where, "model", items, "a model, a network or a non-empty list of them")
        parts = [superposition_weights(m, where) for m in items]
        acts = {p[2] for p in parts}
        shapes = {p[0].shape for p in parts}
        if len(acts) > 1 or len(shapes) > 1 or any(p[3] for p in parts):
            raise fail(
                where, "model", f"members with shapes {sorted(shapes)} and outputs {sorted(acts)}",
                "members of one architecture (same m, n and output activation), not stacked",
            )  # fmt: skip
        return np.stack([p[0] for p in parts]), np.stack([p[1] for p in parts]), parts[0][2], True
    net = as_network(model, where)
    W, b = _network_weights(net, where)
    if W.ndim not in (2, 3) or b.shape != W.shape[:-2] + W.shape[-1:]:
        raise fail(where, "model", f"weights of shape {W.shape}", "(m, n) or (members, m, n)")
    return W, b, net.activations[1], W.ndim == 3


# --------------------------------------------------------------------------- metrics


def _dimensionality(W: np.ndarray) -> tuple[np.ndarray, ...]:
    """``(norms, G, D, superposition)`` over a leading member axis."""
    G = np.einsum("kmi,kmj->kij", W, W)
    sq = np.einsum("kmi,kmi->ki", W, W)
    norms = np.sqrt(sq)
    G2 = np.einsum("kij,kij->ki", G, G)  # Σ_j G_ij²
    zero = sq == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        D = np.where(zero, 0.0, sq**2 / np.where(zero, 1.0, G2))
        sup = np.where(zero, 0.0, (G2 - sq**2) / np.where(zero, 1.0, sq))
    return norms, G, D, np.maximum(sup, 0.0)


def _match_fraction(d: float, tol: float) -> float:
    best = min(FRACTIONS, key=lambda f: abs(d - f))
    return best if abs(d - best) <= tol else math.nan


def _structures(
    W: np.ndarray, represented: np.ndarray, fractions: np.ndarray, D: np.ndarray, link: float
) -> tuple[Structure, ...]:
    idx = [int(i) for i in np.flatnonzero(represented)]
    if not idx:
        return ()
    V = W[:, idx]
    U = V / np.linalg.norm(V, axis=0)
    adj = np.abs(U.T @ U) > link
    seen: set[int] = set()
    out = []
    for start in range(len(idx)):
        if start in seen:
            continue
        comp, stack = [], [start]
        seen.add(start)
        while stack:
            a = stack.pop()
            comp.append(a)
            for c in np.flatnonzero(adj[a]):
                if int(c) not in seen:
                    seen.add(int(c))
                    stack.append(int(c))
        feats = sorted(idx[c] for c in comp)
        fr = {float(fractions[i]) for i in feats}
        frac = fr.pop() if len(fr) == 1 else None
        if frac is not None and math.isnan(frac):
            frac = None
        name = "other"
        if frac is not None and frac in STRUCTURES and STRUCTURES[frac][1] == len(feats):
            name = STRUCTURES[frac][0]
        out.append(
            Structure(name, tuple(f"input:{i}" for i in feats), frac, float(np.sum(D[feats])))
        )
    return tuple(out)


def _polygon(
    W: np.ndarray, represented: np.ndarray, angle_tol: float, norm_tol: float
) -> Polygon | None:
    idx = np.flatnonzero(represented)
    if W.shape[0] != 2 or len(idx) == 0:
        return None
    ang = np.mod(np.arctan2(W[1, idx], W[0, idx]), 2 * np.pi)
    order = np.argsort(ang, kind="stable")
    idx, ang = idx[order], ang[order]
    norms = np.linalg.norm(W[:, idx], axis=0)
    k = len(idx)
    gaps = np.diff(np.append(ang, ang[0] + 2 * np.pi))
    gap_err = float(np.max(np.abs(gaps - 2 * np.pi / k)))
    spread = float(np.max(np.abs(norms - norms.mean())) / norms.mean())
    regular = bool(k >= 2 and gap_err <= angle_tol and spread <= norm_tol)
    return Polygon(
        tuple(f"input:{int(i)}" for i in idx), ang, norms, gaps, regular, gap_err, spread,
        angle_tol, norm_tol,
    )  # fmt: skip


def superposition_metrics(
    model: Any,
    *,
    threshold: float = 0.5,
    tol: float = 0.05,
    link: float = 0.1,
    angle_tol: float = 0.05,
    norm_tol: float = 0.05,
) -> SuperpositionResult:
    """The exact superposition metrics of ``model`` (see the module docstring).

    ``threshold``: a feature is represented when ``‖W_i‖ > threshold`` (0.5, the
    paper's plots); ``tol``: a D_i within ``tol`` of a fraction carries it; ``link``: two
    represented features belong to one structure when ``|cos(W_i, W_j)| > link``;
    ``angle_tol`` (radians) and ``norm_tol`` (relative): the regular-polygon test.

    >>> import numpy as np
    >>> from toylab.network import Dense, Network, Tied
    >>> t = 2 * np.pi * np.arange(5) / 5
    >>> W = np.stack([np.cos(t), np.sin(t)])
    >>> net = Network((Dense(W.T, np.zeros(2)), Tied(0, -0.1 * np.ones(5))), ("identity", "relu"))
    >>> r = superposition_metrics(net)
    >>> np.round(r.dimensionality, 6).tolist(), round(float(r.sum_dimensionality), 9)
    ([0.4, 0.4, 0.4, 0.4, 0.4], 2.0)
    >>> [s.name for s in r.structures], r.polygon.regular
    (['pentagon'], True)
    """
    where = "superposition_metrics"
    threshold = check_float(where, "threshold", threshold, nonneg=True)
    tol = check_float(where, "tol", tol, positive=True, maximum=0.5)
    link = check_float(where, "link", link, nonneg=True, maximum=1.0)
    angle_tol = check_float(where, "angle_tol", angle_tol, nonneg=True)
    norm_tol = check_float(where, "norm_tol", norm_tol, nonneg=True)
    W, b, _, ensemble = superposition_weights(model, where)
    Wk = W if ensemble else W[None]
    bk = b if ensemble else b[None]
    num_members, m, n = Wk.shape
    norms, G, D, sup = _dimensionality(Wk)
    frob = np.einsum("kmi,kmi->k", Wk, Wk)
    with np.errstate(divide="ignore"):
        dstar = np.where(frob == 0, np.inf, m / np.where(frob == 0, 1.0, frob))
    represented = norms > threshold
    fractions = np.full((num_members, n), np.nan)
    geometry, structures, polygons = [], [], []
    for k in range(num_members):
        geo = []
        for i in range(n):
            if not represented[k, i]:
                fractions[k, i] = 0.0
                geo.append("not represented")
                continue
            f = _match_fraction(float(D[k, i]), tol)
            fractions[k, i] = f
            geo.append("other" if math.isnan(f) else STRUCTURES[f][0])
        geometry.append(tuple(geo))
        structures.append(_structures(Wk[k], represented[k], fractions[k], D[k], link))
        polygons.append(_polygon(Wk[k], represented[k], angle_tol, norm_tol))
    rank = np.array([np.linalg.matrix_rank(w) if np.any(w) else 0 for w in Wk])
    fields: dict[str, Any] = {
        "W": Wk,
        "b": bk,
        "norms": norms,
        "interference": G,
        "dimensionality": D,
        "superposition": sup,
        "dimensions_per_feature": dstar,
        "represented": represented,
        "num_represented": represented.sum(-1),
        "bias_signs": np.sign(bk).astype(np.int64),
        "sum_dimensionality": D.sum(-1),
        "rank": rank,
        "fractions": fractions,
        "geometry": tuple(geometry),
        "structures": tuple(structures),
        "polygon": tuple(polygons),
    }
    if not ensemble:
        fields = {k: v[0] for k, v in fields.items()}
    return SuperpositionResult(
        **fields, num_hidden=m, num_features=n, threshold=threshold, tol=tol, link=link,
        ensemble=ensemble,
    )  # fmt: skip
