"""One call that analyses a whole network exactly: :func:`analyze`.

For a piecewise-linear MLP (relu, leaky_relu, abs, hardtanh, identity) on a 2-D
Gaussian mixture, :func:`analyze` computes

* the exact partition of the distribution's domain box into linear regions,
  every neuron's exact maximum and minimum over the box and where they are
  attained, its zero set and the network's decision boundary (tier ``"exact"``);
* every neuron's exact firing probability ``P(a > 0)``, mean ``E[a]`` and the
  covariance matrix of each layer under the data distribution, and the
  network's exact accuracy, hence its exact gap to the Bayes-optimal accuracy.

**Integrals over the whole plane.** The partition for the integrals covers a box
that leaves at least ``12`` standard deviations (Mahalanobis, along each axis)
between every component's mean and the box's edges, so the mass outside it is
below ``4 Φ(-12) ≈ 7e-33`` per component; its contribution to any first or
second moment is bounded by Cauchy–Schwarz with the network's Lipschitz bound
and reported as ``truncation_bound`` (typically below 1e-12). Within the box, every
integral is a closed form (:mod:`toylab.exact.integrals`).

**Other 2-D densities** (rings, noisy curves): the same quantities by adaptive
quadrature over the exact regions (:func:`toylab.exact.polygon_quadrature`, a
pair of Gauss rules per triangle with 4-way refinement), over the distribution's
domain box; the result's tier is ``"bounded"``: ``error`` is the largest bound,
over every neuron's mean and second moment and the accuracy, obtained by
propagating the quadrature error estimates through the absolute affine maps;
``truncation_bound`` is the distribution's mass outside the domain, which the
integrals leave out.

For finite distributions it returns :func:`toylab.exact.finite_table`'s exact
enumeration instead. For networks or distributions where neither applies it
returns ``None`` (see :mod:`toylab.exact.bounds` for guaranteed bounds).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from scipy.special import ndtr

from toylab._errors import ToylabError
from toylab.activations import PIECEWISE_LINEAR
from toylab.exact.finite import FiniteResult, finite_table
from toylab.exact.integrals import mixture_polygon_moments, neuron_moments
from toylab.exact.regions import (
    Partition,
    argmax_pieces,
    extrema,
    level_set,
    partition,
)

__all__ = ["ExactAnalysis", "analyze", "gaussian_mixture_arrays", "integration_box"]

MARGIN_SIGMAS = 12.0


def gaussian_mixture_arrays(dist: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(means (K,d), covs (K,d,d), weights (K,), classes (K,))`` of a Gaussian mixture."""
    means = np.asarray(dist.means, np.float64)
    covs = np.asarray(dist.covs, np.float64)
    k = means.shape[0]
    weights = np.full(k, 1.0 / k) if dist.weights is None else np.asarray(dist.weights, float)
    classes = np.arange(k) if dist.classes is None else np.asarray(dist.classes, int)
    return means, covs, weights, classes


def integration_box(dist: Any, margin: float = MARGIN_SIGMAS) -> tuple[np.ndarray, np.ndarray]:
    """A box holding the domain and ``margin`` axis standard deviations around every mean."""
    means, covs, _, _ = gaussian_mixture_arrays(dist)
    sd = np.sqrt(np.diagonal(covs, axis1=1, axis2=2))
    low = np.minimum((means - margin * sd).min(0), np.asarray(dist.domain.low))
    high = np.maximum((means + margin * sd).max(0), np.asarray(dist.domain.high))
    return low, high


def _box_polygon(low: np.ndarray, high: np.ndarray) -> np.ndarray:
    (x0, y0), (x1, y1) = low, high
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)


def _truncation_bound(layers: list, dist: Any, low: np.ndarray, high: np.ndarray) -> float:
    """Bound on |E[a 1_outside]| and |E[a b 1_outside]| for every neuron.

    On the plane, |a(x)| <= A + L |x - c| with c the box centre, L the product of
    the layers' spectral norms (activations are 1-Lipschitz) and A a bound of |a(c)|.
    Cauchy–Schwarz: E[f 1_out] <= sqrt(E[f²]) sqrt(P(out)).
    """
    means, covs, weights, _ = gaussian_mixture_arrays(dist)
    c = 0.5 * (low + high)
    lip, h = 1.0, c
    bound_c = 0.0
    for W, b in layers:
        lip *= max(float(np.linalg.norm(W, 2)), 1e-300)
        h = h @ W + b
        bound_c = max(bound_c, float(np.abs(h).max()))
        h = np.abs(h)
    p_out = 0.0
    e_r2 = 0.0
    for mu, cov, w in zip(means, covs, weights, strict=True):
        sd = np.sqrt(np.diag(cov))
        z = np.minimum((mu - low) / sd, (high - mu) / sd)
        p_out += w * float(np.sum(2 * ndtr(-z)))
        e_r2 += w * float(np.trace(cov) + np.sum((mu - c) ** 2))
    # E[(A + L r)^2] <= 2 A^2 + 2 L^2 E[r^2]; products of two neurons need the 4th moment:
    # E[(A + L r)^4] <= 8 A^4 + 8 L^4 E[r^4], E[r^4] <= 3 E[r^2]^2 for Gaussian mixtures
    # componentwise (bounded here by a factor 3 * (dim + 2) to be safe).
    second = 2 * bound_c**2 + 2 * lip**2 * e_r2
    fourth = 8 * bound_c**4 + 8 * lip**4 * 3 * (len(low) + 2) * e_r2**2
    return float(max(np.sqrt(second), np.sqrt(fourth)) * np.sqrt(p_out))


@dataclasses.dataclass(frozen=True, eq=False)
class ExactAnalysis:
    """Exact analysis of one network on a 2-D Gaussian mixture (see :func:`analyze`).

    ``geometry`` is the partition of the distribution's domain box (for extrema,
    level sets and pictures); ``plane`` the partition of the integration box (for
    integrals). ``moments[key]`` is a
    :class:`toylab.exact.integrals.NeuronMomentsResult` for every layer key.
    """

    geometry: Partition
    plane: Partition
    moments: dict[str, Any]
    accuracy: float
    bayes_accuracy: float | None
    truncation_bound: float
    tier: str = "exact"
    error: float = 0.0
    class_accuracy: np.ndarray | None = None  # P(correct | y = c), per class

    @property
    def gap(self) -> float | None:
        return None if self.bayes_accuracy is None else self.bayes_accuracy - self.accuracy

    def extrema(self, key: str) -> Any:
        return extrema(self.geometry, key)

    def zero_set(self, key: str, unit: int) -> list[np.ndarray]:
        return level_set(self.geometry, key, unit, 0.0)

    def boundary_segments(self) -> np.ndarray:
        """Every linear-region boundary inside the domain as ``(N, 2, 2)`` segments."""
        p = self.geometry
        segs = []
        for poly in p.polygons:
            segs.append(np.stack([poly, np.roll(poly, -1, axis=0)], axis=1))
        return np.concatenate(segs) if segs else np.zeros((0, 2, 2))

    def report_summary(self) -> dict[str, Any]:
        """Numbers and overlays for the report (per hidden neuron)."""
        neurons: dict[str, dict[str, Any]] = {}
        overlays: dict[str, dict[str, Any]] = {}
        segs = self.boundary_segments()
        for key in self.geometry.maps:
            if not key.startswith("hidden_") or key.endswith(".pre"):
                continue
            ext = self.extrema(key)
            mom = self.moments[key]
            for u in range(len(mom.mean)):
                name = f"{key}:{u}"
                neurons[name] = {
                    "firing_probability": float(mom.firing_probability[u]),
                    "mean": float(mom.mean[u]),
                    "max": float(ext.max[u]),
                    "argmax": [float(v) for v in ext.argmax[u]],
                    "min": float(ext.min[u]),
                }
                overlays[name] = {
                    "segments": segs,
                    "zero_lines": level_set(self.geometry, f"{key}.pre", u, 0.0),
                    "marker": ext.argmax[u],
                    "title": f"{name}  P(on)={mom.firing_probability[u]:.2f}",
                }
        return {
            "accuracy": self.accuracy,
            "gap": self.gap if self.gap is not None else float("nan"),
            "num_regions": self.geometry.num_regions,
            "region_counts": dict(self.geometry.region_counts),
            "truncation_bound": self.truncation_bound,
            "neurons": neurons,
            "overlays": overlays,
        }


def analyze(
    model: Any, dist: Any, *, tol: float = 1e-9, rtol: float = 1e-7
) -> ExactAnalysis | FiniteResult | None:
    """Exact analysis of ``model`` under ``dist`` (see the module docstring).

    Returns an :class:`ExactAnalysis` for piecewise-linear MLPs on 2-D Gaussian
    mixtures (tier ``"exact"``) and on other 2-D densities (tier ``"bounded"``,
    quadrature to relative tolerance ``rtol``), a :class:`toylab.exact.FiniteResult`
    on finite domains, and ``None``
    when no exact analysis applies (smooth activations, other distributions, more
    than two input dimensions: use :func:`toylab.exact.slice_partition` or the
    bounds in :mod:`toylab.exact.bounds`).
    """
    if not hasattr(model, "affine_layers"):
        raise ToylabError(f"analyze: model must be a toylab MLP, got {type(model).__name__}.")
    if getattr(dist, "kind", None) == "finite":
        return finite_table(model, dist, keep_table=False)
    layers, acts = model.affine_layers()
    if not all(a in PIECEWISE_LINEAR for a in acts):
        return None
    if getattr(dist, "dim", None) != 2 or not hasattr(dist.domain, "low"):
        return None
    if type(dist).__name__ != "GaussianMixture":
        return _analyze_by_quadrature(layers, acts, dist, tol=tol, rtol=rtol)
    domain = dist.domain
    geometry = partition(layers, acts, domain.polygon(), tol=tol)
    low, high = integration_box(dist)
    plane = partition(layers, acts, _box_polygon(low, high), tol=tol)
    means, covs, weights, classes = gaussian_mixture_arrays(dist)
    m0k, m1k, m2k = mixture_polygon_moments(plane.polygons, means, covs, weights)
    m0, m1, m2 = m0k.sum(0), m1k.sum(0), m2k.sum(0)
    moments = {}
    for key, maps in plane.maps.items():
        mom = neuron_moments(m0, m1, m2, maps)
        fire = _firing_from_pattern(plane, key, m0)
        if fire is None:
            fire = _firing_mass(plane, maps, (means, covs, weights), m0)
        moments[key] = dataclasses.replace(mom, firing_probability=fire)
    pieces = argmax_pieces(plane)
    polys = [p for p, _ in pieces]
    cls = np.array([c for _, c in pieces])
    pm0, _, _ = mixture_polygon_moments(polys, means, covs, weights)
    # P(correct) = sum over pieces of P(y = argmax class, x in piece)
    accuracy = float(sum(pm0[k][cls == classes[k]].sum() for k in range(len(weights))))
    num_classes = int(classes.max()) + 1
    correct = np.array([sum(pm0[k][cls == c].sum() for k in range(len(weights)) if classes[k] == c)
                        for c in range(num_classes)])  # fmt: skip
    class_mass = np.array([weights[classes == c].sum() for c in range(num_classes)])
    bayes = dist.bayes().accuracy if dist.num_classes > 1 else None
    return ExactAnalysis(
        geometry=geometry,
        plane=plane,
        moments=moments,
        accuracy=accuracy,
        bayes_accuracy=bayes,
        truncation_bound=_truncation_bound(layers, dist, low, high),
        class_accuracy=correct / class_mass,
    )


def clip_halfplane(poly: np.ndarray, g: np.ndarray, c: float) -> np.ndarray:
    """The part of a convex polygon where ``g . x + c > 0`` (Sutherland–Hodgman)."""
    v = poly @ g + c
    out = []
    n = len(poly)
    for i in range(n):
        j = (i + 1) % n
        if v[i] > 0:
            out.append(poly[i])
        if (v[i] > 0) != (v[j] > 0) and v[i] != v[j]:
            t = v[i] / (v[i] - v[j])
            out.append(poly[i] + t * (poly[j] - poly[i]))
    return np.asarray(out).reshape(-1, 2)


def _firing_from_pattern(plane: Partition, key: str, m0: np.ndarray) -> np.ndarray | None:
    """P(a > 0) straight from the activation pattern, where the pattern decides the sign.

    relu / leaky_relu: pre and post are > 0 exactly on piece 1 (the region lies on
    the positive side of the neuron's cut). Other activations (hardtanh's cuts are
    at ±1, abs's pre-activation, identity, the logits) return ``None``.
    """
    layer = key.removesuffix(".pre")
    if layer not in plane.patterns:
        return None
    k = int(layer.split("_")[1])
    if plane.activations[k] not in ("relu", "leaky_relu"):
        return None
    return m0 @ (plane.patterns[layer] == 1)


def _firing_mass(plane: Partition, maps: np.ndarray, mixture: tuple, m0: np.ndarray) -> np.ndarray:
    """Exact P(a_i > 0): whole region masses where the neuron is positive on the whole
    region, plus the exact mass of the positive part of regions its zero line crosses."""
    counts = np.diff(plane.offsets)
    j = np.minimum(np.arange(counts.max())[None, :], counts[:, None] - 1)
    xy = plane.vertices[plane.ring[plane.offsets[:-1, None] + j]]  # (R, V, 2), last vertex repeated
    hom = np.concatenate([xy, np.ones((*xy.shape[:2], 1))], axis=-1)
    vals = np.matmul(hom, maps.transpose(0, 2, 1))  # (R, V, n)
    vmin, vmax = vals.min(1), vals.max(1)
    # vertices within the partition's rounding band of the zero line count as on it
    eps = plane.tol * np.maximum(np.abs(vals).max((0, 1)), 1e-300)
    positive = (vmax > eps) & (vmin >= -eps)
    fire = m0 @ positive
    rr, ii = np.nonzero((vmax > eps) & (vmin < -eps))
    if len(rr):
        pieces = [clip_halfplane(plane.polygons[r], maps[r, i, :2], maps[r, i, 2])
                  for r, i in zip(rr, ii, strict=True)]  # fmt: skip
        ok = np.array([len(pc) >= 3 for pc in pieces])
        if ok.any():
            pm = mixture_polygon_moments([pc for pc, k in zip(pieces, ok, strict=True) if k],
                                         *mixture)[0].sum(0)  # fmt: skip
            np.add.at(fire, ii[ok], pm)
    return fire


def _analyze_by_quadrature(
    layers: list, acts: list[str], dist: Any, *, tol: float, rtol: float
) -> ExactAnalysis:
    """Bounded-tier analysis of a non-Gaussian 2-D density (see the module docstring)."""
    from toylab.exact.integrals import polygon_quadrature

    geometry = partition(layers, acts, dist.domain.polygon(), tol=tol)

    def moment_columns(x: np.ndarray) -> np.ndarray:
        p = dist.prob(x)
        return np.stack(
            [p, p * x[:, 0], p * x[:, 1], p * x[:, 0] ** 2, p * x[:, 0] * x[:, 1],
             p * x[:, 1] ** 2],
            axis=1,
        )  # fmt: skip

    vals, errs = polygon_quadrature(moment_columns, geometry.polygons, rtol=rtol, atol=1e-13)
    m0, m1 = vals[:, 0], vals[:, 1:3]
    m2 = np.stack([vals[:, [3, 4]], vals[:, [4, 5]]], axis=1)
    outside = float(getattr(dist, "outside_mass", 0.0))
    # error bounds of the region moments propagate through |maps| (all terms absolute)
    e0, e1 = errs[:, 0], errs[:, 1:3]
    e2 = np.stack([errs[:, [3, 4]], errs[:, [4, 5]]], axis=1)
    moments = {}
    error = 0.0
    for key, maps in geometry.maps.items():
        mom = neuron_moments(m0, m1, m2, maps)
        bound = neuron_moments(e0, e1, e2, np.abs(maps))
        error = max(
            error, float(np.abs(bound.mean).max()), float(np.abs(bound.second_moment).max())
        )
        fire = _firing_from_pattern(geometry, key, m0)
        if fire is None:
            fire = _firing_by_quadrature(geometry, maps, dist, m0, rtol)
        moments[key] = dataclasses.replace(mom, firing_probability=fire)
    accuracy, acc_err = 0.0, 0.0
    class_accuracy = None
    if dist.num_classes > 1:
        pieces = argmax_pieces(geometry)
        cls = np.array([c for _, c in pieces])

        def joint(x: np.ndarray) -> np.ndarray:
            return dist.prob(x)[:, None] * dist.posterior(x)

        pv, pe = polygon_quadrature(joint, [p for p, _ in pieces], rtol=rtol, atol=1e-13)
        accuracy = float(pv[np.arange(len(cls)), cls].sum())
        acc_err = float(pe[np.arange(len(cls)), cls].sum()) + outside
        class_mass = pv.sum(0)
        class_accuracy = np.array(
            [pv[cls == c, c].sum() for c in range(dist.num_classes)]
        ) / np.where(class_mass > 0, class_mass, 1.0)
    bayes = dist.bayes().accuracy if dist.num_classes > 1 else None
    return ExactAnalysis(
        geometry=geometry,
        plane=geometry,
        moments=moments,
        accuracy=accuracy,
        bayes_accuracy=bayes,
        truncation_bound=outside,
        tier="bounded",
        error=max(error, acc_err),
        class_accuracy=class_accuracy,
    )


def _firing_by_quadrature(
    part: Partition, maps: np.ndarray, dist: Any, m0: np.ndarray, rtol: float
) -> np.ndarray:
    """P(a_i > 0) by quadrature over the positive parts of regions the zero line crosses."""
    from toylab.exact.integrals import polygon_quadrature

    counts = np.diff(part.offsets)
    j = np.minimum(np.arange(counts.max())[None, :], counts[:, None] - 1)
    xy = part.vertices[part.ring[part.offsets[:-1, None] + j]]
    hom = np.concatenate([xy, np.ones((*xy.shape[:2], 1))], axis=-1)
    vals = np.matmul(hom, maps.transpose(0, 2, 1))
    vmin, vmax = vals.min(1), vals.max(1)
    eps = part.tol * np.maximum(np.abs(vals).max((0, 1)), 1e-300)
    fire = m0 @ ((vmax > eps) & (vmin >= -eps))
    rr, ii = np.nonzero((vmax > eps) & (vmin < -eps))
    pieces = [
        clip_halfplane(part.polygons[r], maps[r, i, :2], maps[r, i, 2])
        for r, i in zip(rr, ii, strict=True)
    ]
    ok = np.array([len(pc) >= 3 for pc in pieces], bool)
    if ok.any():
        pm, _ = polygon_quadrature(dist.prob, [pc for pc, k in zip(pieces, ok, strict=True) if k],
                                   rtol=rtol, atol=1e-13)  # fmt: skip
        np.add.at(fire, ii[ok], pm)
    return fire
