r"""One call that analyses a whole network exactly: :func:`analyze`.

:func:`analyze` returns one :class:`Analysis` whatever the domain, with the same
interface for the plane and for finite domains:

* ``moments[key]``: every unit's mean ``E[a]``, the layer's second moments and
  covariance, and its firing probability ``P(a > 0)``, for every layer key;
* ``accuracy`` (the probability that the arg-max logit is the label), ``class_accuracy``
  and the gap to the Bayes-optimal accuracy;
* ``extrema(key)``: every unit's maximum and minimum over the domain and where they
  are attained (over the domain box on the plane; over the inputs of positive
  probability on a finite domain);
* ``group_means(key)``: ``E[a 1(group g)]`` for the groups of the distribution
  (mixture components, or classes);
* ``tier``, ``error`` (and ``errors``, its parts) and ``method``: how the numbers were
  obtained, and how far from the truth they can be.

It raises :class:`~toylab.NotApplicable` (saying what to use instead) where no exact
analysis exists: smooth activations on continuous inputs, inputs of more than two
dimensions, distributions without a density or a finite domain.

**The plane.** For a piecewise-linear network on a 2-D distribution, the domain box
is partitioned exactly into linear regions (``geometry``: extrema, level sets,
pictures), and so is the *support*: the integration box of
:func:`toylab.exact.integration_domain` (the domain widened to leave 12 standard
deviations around every Gaussian component). On each support region every unit is
affine, so its moments are sums of the region moments of the distribution
(:func:`toylab.exact.region_moments`): closed forms for Gaussian mixtures, adaptive
quadrature for other densities (rings, noisy curves).

**Error and tier, honestly.** ``error`` bounds (or, for quadrature, estimates) the
absolute error of every number reported (moments, firing probabilities, accuracies)
and is the largest of its parts in ``errors``:

* ``rounding``: the closed forms' float64 rounding bounds (or the quadrature's error
  estimates), propagated through the absolute values of the affine maps;
* ``truncation``: what the integration box leaves out (a certified Cauchy–Schwarz bound
  for Gaussian mixtures, :func:`toylab.exact.truncation_bounds`; for other densities
  the declared mass outside the domain times the largest value on it, an estimate);
* ``band``: regions that keep a vertex inside the partition's tolerance band on the
  wrong side of a breakpoint (:func:`toylab.exact.band_violations`) have wrong maps on
  a sliver next to it, of area at most ``diam x violation / |gradient|``; its mass is
  bounded with the density's maximum (certified for Gaussian mixtures) and its effect
  on every moment with the largest value of the unit.

The tier is ``"exact"`` when the only error above float64 rounding is nil: no band
violation and a truncation below the rounding bound; ``"certified"`` when all the
parts are certified but some exceed rounding (degenerate or extremely scaled
networks); ``"estimated"`` whenever a quadrature is involved.

**Finite domains** (modular arithmetic, Boolean functions): every input is evaluated
in float64 (:func:`toylab.exact.finite_table`), tier ``"exact"``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

import numpy as np

from toylab._errors import NotApplicable
from toylab.distributions import GaussianMixture
from toylab.distributions.base import Box, FiniteDomain
from toylab.exact._polygon import clip_positive, owner
from toylab.exact.integrals import NeuronMomentsResult, neuron_moments
from toylab.exact.measure import (
    RegionMoments,
    class_edge_masses,
    density_bound,
    integration_domain,
    polygon_masses,
    region_moments,
    truncation_bounds,
)
from toylab.exact.queries import ExtremaResult, _argmax_flat, _split_flat, extrema
from toylab.exact.regions import Partition, _partition, _piecewise_linear, band_violations
from toylab.network import Network, as_network
from toylab.tiers import Tier

__all__ = ["AccuracyResult", "Analysis", "accuracy", "analyze"]

_EPS = float(np.finfo(np.float64).eps)


@dataclasses.dataclass(frozen=True, eq=False)
class Analysis:
    """The exact analysis of one network under one distribution (see :func:`analyze`).

    Attributes:
      network: the analysed network (float64).
      kind: ``"plane"`` or ``"finite"``.
      moments: layer key -> :class:`~toylab.exact.NeuronMomentsResult` (``mean``,
        ``second_moment``, ``cov``, ``firing_probability``).
      accuracy, class_accuracy: the exact probability that the arg-max logit is the
        label (ties count as wrong on finite domains and go to the lowest class on the
        plane, as ``numpy.argmax``), overall and given each class.
      bayes_accuracy: the distribution's Bayes-optimal accuracy (its own tier is in
        ``dist.bayes()``); ``gap``: ``bayes_accuracy - accuracy``.
      tier, error, errors, method: see the module docstring.
      groups, group_class: what :meth:`group_means` sums over (``"component"`` or
        ``"class"``) and the class of each group.
      rtol: the relative tolerance of the adaptive quadrature under non-Gaussian
        densities (what later integrals of this analysis, e.g. the activation CDF, use).
    """

    network: Network
    dist: Any
    kind: str
    moments: dict[str, NeuronMomentsResult]
    accuracy: float
    class_accuracy: np.ndarray
    tier: Tier
    error: float
    errors: dict[str, float]
    method: str
    groups: str
    group_class: np.ndarray
    _group_means: dict[str, np.ndarray]
    _extrema: dict[str, ExtremaResult]
    _geometry: Partition | None = None
    _support: Partition | None = None
    _support_moments: RegionMoments | None = None
    _table: dict[str, np.ndarray] | None = None
    rtol: float = 0.0

    @functools.cached_property
    def bayes_accuracy(self) -> float | None:
        """The distribution's Bayes-optimal accuracy (``dist.bayes()``, computed when asked:
        its quadrature can be slow); ``None`` for fewer than two classes."""
        return _bayes(self.dist)

    @property
    def gap(self) -> float | None:
        return None if self.bayes_accuracy is None else self.bayes_accuracy - self.accuracy

    def _plane_only(self, what: str) -> None:
        if self.kind != "plane":
            raise NotApplicable(
                f"Analysis.{what}: a finite domain has no planar geometry; use "
                "Analysis.extrema, Analysis.values or Analysis.table."
            )

    @property
    def geometry(self) -> Partition:
        """The exact partition of the domain box (the plane only)."""
        self._plane_only("geometry")
        assert self._geometry is not None
        return self._geometry

    @property
    def support(self) -> Partition:
        """The exact partition of the integration box (the plane only)."""
        self._plane_only("support")
        assert self._support is not None
        return self._support

    @property
    def support_moments(self) -> RegionMoments:
        """The distribution's per-group moments over the support's regions (the plane only)."""
        self._plane_only("support_moments")
        assert self._support_moments is not None
        return self._support_moments

    def extrema(self, key: str) -> ExtremaResult:
        """Every unit's max and min (and where) over the domain: ``(width,)`` arrays."""
        if key not in self._extrema:
            if self.kind == "plane":
                self._extrema[key] = extrema(self.geometry, key)
            else:
                raise NotApplicable(
                    f"Analysis.extrema: unknown layer key {key!r}; keys are {list(self.moments)}."
                )
        return self._extrema[key]

    def group_means(self, key: str) -> np.ndarray:
        """``E[a_i 1(group g)]`` for every group ``g`` and unit ``i``: ``(G, width)``."""
        if key not in self._group_means:
            if key not in self.moments:
                raise NotApplicable(
                    f"Analysis.group_means: unknown layer key {key!r}; keys are "
                    f"{list(self.moments)}."
                )
            rm = self.support_moments
            maps = self.support.local_maps[key]
            self._group_means[key] = np.einsum("grd,rnd->gn", rm.m1, maps[:, :, :2]) + np.einsum(
                "gr,rn->gn", rm.m0, maps[:, :, 2]
            )
        return self._group_means[key]

    @property
    def table(self) -> dict[str, np.ndarray]:
        """Every layer on every input (finite domains analysed with ``keep_table=True``)."""
        if self._table is None:
            raise NotApplicable(
                "Analysis.table: the table is kept only for finite domains analysed with "
                "keep_table=True (toylab.exact.finite_table keeps it)."
            )
        return self._table

    def values(self, neuron: str) -> np.ndarray:
        """One neuron's value on every input of a finite domain."""
        nid = self.network.resolve(neuron)
        return self.table[nid.key][:, nid.unit]

    def summary(self, neuron: str) -> dict[str, Any]:
        """The numbers a report or an atlas page shows for one neuron (all of this tier)."""
        nid = self.network.resolve(neuron)
        mom = self.moments[nid.key]
        ext = self.extrema(nid.key)
        u = nid.unit
        return {
            "firing_probability": float(mom.firing_probability[u]),
            "mean": float(mom.mean[u]),
            "std": float(math.sqrt(max(float(mom.cov[u, u]), 0.0))),
            "max": float(ext.max[u]),
            "argmax": np.asarray(ext.argmax[u]).tolist(),
            "min": float(ext.min[u]),
            "argmin": np.asarray(ext.argmin[u]).tolist(),
            "tier": self.tier,
            "error": self.error,
        }


def _bayes(dist: Any) -> float | None:
    if int(getattr(dist, "num_classes", 0)) < 2:
        return None
    try:
        return float(dist.bayes().accuracy)
    except NotApplicable:
        return None


def analyze(
    model: Any, dist: Any, *, tol: float = 1e-9, rtol: float = 1e-7, keep_table: bool = False
) -> Analysis:
    """Exact analysis of ``model`` (a toylab model or a :class:`~toylab.network.Network`)
    under ``dist`` (see the module docstring).

    ``tol`` is the partition's tolerance (:mod:`toylab.exact.regions`), ``rtol`` the
    quadrature's relative tolerance for non-Gaussian densities, ``keep_table`` keeps
    every layer on every input of a finite domain. Raises
    :class:`~toylab.NotApplicable` where no exact analysis applies.
    """
    where = "analyze"
    net = as_network(model, where)
    domain = getattr(dist, "domain", None)
    if isinstance(domain, FiniteDomain):
        from toylab.exact.finite import finite_table

        return finite_table(net, dist, keep_table=keep_table)
    if not isinstance(domain, Box) or domain.dim != 2:
        raise NotApplicable(
            f"{where}: exact analysis needs a finite domain or 2-D continuous inputs; "
            f"{type(dist).__name__} has {getattr(dist, 'dim', '?')}-dimensional inputs. Analyse "
            "a 2-D slice (toylab.exact.slice_partition) or bound neurons over a box "
            "(toylab.exact.linear_bounds, toylab.exact.maximize)."
        )
    if int(getattr(dist, "num_classes", 0)) < 1 or not hasattr(dist, "class_log_joint"):
        raise NotApplicable(
            f"{where}: {type(dist).__name__} has no class densities on the plane to integrate "
            "against (exact analysis covers 2-D classification distributions)."
        )
    net = _piecewise_linear(where, net, 2)
    return _analyze_plane(net, dist, tol=tol, rtol=rtol)


def _masses(
    dist: Any, polygons: list[np.ndarray], rtol: float, origin: Any = None
) -> tuple[np.ndarray, np.ndarray]:
    """Total mass ``(P,)`` of polygons (relative to ``origin``) and its error ``(P,)``."""
    if not polygons:
        return np.zeros(0), np.zeros(0)
    if isinstance(dist, GaussianMixture) or hasattr(dist, "gaussian_atoms"):
        return polygon_masses(dist, polygons, origin=origin)
    rm = region_moments(dist, polygons, rtol=rtol, origin=origin)
    return rm.m0.sum(0), rm.error[:, :, 0].sum(0)


def _entry_values(part: Partition, m: np.ndarray) -> np.ndarray:
    """Values of local maps ``m (R, n, 3)`` at every ring entry (local coordinates)."""
    xy = part.local_vertices[part.ring]
    mm = m[owner(part.offsets)]
    return mm[:, :, 0] * xy[:, :1] + mm[:, :, 1] * xy[:, 1:] + mm[:, :, 2]


def _firing(
    part: Partition, key: str, m0: np.ndarray, e0: np.ndarray, dist: Any, rtol: float
) -> tuple[np.ndarray, np.ndarray]:
    """``P(a_i > 0)`` for every unit of ``key`` and its error (rounding / quadrature).

    relu / leaky_relu post- and pre-activations are positive exactly on the regions whose
    pattern is the active piece; otherwise each region the unit is positive on counts
    whole, and each region its zero line crosses is clipped and its positive part measured.
    """
    post = key.removesuffix(".pre")
    if post in part.patterns:
        act = part.network.activations[part.network.layer_index(post)]
        if act in ("relu", "leaky_relu"):
            on = part.patterns[post] == 1
            return m0 @ on, e0 @ on
    maps = part.local_maps[key]
    vals = _entry_values(part, maps)  # (entries, n)
    vmin = np.minimum.reduceat(vals, part.offsets[:-1], axis=0)
    vmax = np.maximum.reduceat(vals, part.offsets[:-1], axis=0)
    # vertices within the partition's rounding band of the zero line count as on it
    eps = part.tol * np.maximum(np.abs(vals).max(axis=0), 1e-300)
    whole = (vmax > eps) & (vmin >= -eps)
    fire, err = m0 @ whole, e0 @ whole
    rr, ii = np.nonzero((vmax > eps) & (vmin < -eps))
    if len(rr):
        lens = np.diff(part.offsets)[rr]
        off = np.concatenate([[0], np.cumsum(lens)])
        ent = np.repeat(part.offsets[rr] - off[:-1], lens) + np.arange(off[-1])
        xy = part.local_vertices[part.ring[ent]]
        g = maps[rr, ii][owner(off)]
        f = g[:, 0] * xy[:, 0] + g[:, 1] * xy[:, 1] + g[:, 2]
        cxy, coff, src = clip_positive(xy, off, f, 0.0, keep_flat=False)
        if len(src):
            pm, pe = _masses(dist, _split_flat(cxy, coff), rtol, part.origin)
            np.add.at(fire, ii[src], pm)
            np.add.at(err, ii[src], pe)
    return fire, err


def _whole_pieces(part: Partition, xy: np.ndarray, off: np.ndarray, reg: np.ndarray) -> np.ndarray:
    """Which pieces ``(xy, off)`` of the regions ``reg`` are their whole region (the same
    vertices in the same order)."""
    lens = np.diff(off)
    whole = lens == part.offsets[reg + 1] - part.offsets[reg]
    if np.any(whole):
        ent = np.repeat(whole, lens)
        src = np.repeat(part.offsets[reg[whole]] - off[:-1][whole], lens[whole])
        same = xy[ent] == part.local_vertices[part.ring[np.flatnonzero(ent) + src]]
        ok = np.logical_and.reduceat(same.all(axis=1), np.cumsum(lens[whole]) - lens[whole])
        whole[np.flatnonzero(whole)[~ok]] = False
    return whole


def _piece_moments(
    part: Partition, support_rm: Any, xy: np.ndarray, off: np.ndarray, reg: np.ndarray,
    dist: Any, rtol: float,
) -> Any:  # fmt: skip
    """Per-group moments of pieces ``(xy, off)`` of the regions ``reg``: a piece that is
    its whole region (same vertices, same order) takes the region's moments from
    ``support_rm``; the others are integrated (the same numbers, without integrating
    most regions twice)."""
    lens = np.diff(off)
    whole = _whole_pieces(part, xy, off, reg)
    rest = np.flatnonzero(~whole)
    pieces = _split_flat(xy, off)
    part_rm = region_moments(dist, [pieces[i] for i in rest], rtol=rtol, origin=part.origin)
    take = np.flatnonzero(whole)

    def merge(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        out = np.zeros((a.shape[0], len(lens), *a.shape[2:]))
        out[:, take] = a[:, reg[take]]
        out[:, rest] = b
        return out

    return dataclasses.replace(
        part_rm, m0=merge(support_rm.m0, part_rm.m0), m1=merge(support_rm.m1, part_rm.m1),
        m2=merge(support_rm.m2, part_rm.m2), error=merge(support_rm.error, part_rm.error),
    )  # fmt: skip


def _accuracy(part: Partition, dist: Any, rtol: float, support_rm: Any) -> tuple[Any, ...]:
    """Accuracy, per-class accuracy, their error, and the band violation of the pieces.

    Returns ``(accuracy, class_accuracy, rounding error, piece violations (P,),
    (xy, offsets, region) of the pieces)``
    where each argmax piece's violation is how far a vertex's winning margin is negative
    (``0`` when every vertex has the piece's class on top: then, by convexity, so does
    the whole piece).
    """
    xy, off, reg, cls = _argmax_flat(part)  # local coordinates
    rm = _piece_moments(part, support_rm, xy, off, reg, dist, rtol)
    num_classes = part.local_maps["output"].shape[1]
    hit = rm.m0 * (cls[None, :] == rm.group_class[:, None])
    herr = rm.error[:, :, 0] * (cls[None, :] == rm.group_class[:, None])
    correct = np.array([hit[rm.group_class == c].sum() for c in range(num_classes)])
    class_mass = np.array([rm.m0[rm.group_class == c].sum() for c in range(num_classes)])
    class_acc = correct / np.where(class_mass > 0, class_mass, 1.0)
    viol = _piece_violations(part, xy, off, reg, cls)
    return float(hit.sum()), class_acc, float(herr.sum()), viol, (xy, off, reg)


def _piece_violations(
    part: Partition, xy: np.ndarray, off: np.ndarray, reg: np.ndarray, cls: np.ndarray
) -> np.ndarray:
    """How far a vertex's winning margin is negative, per argmax piece (``0`` when every
    vertex has the piece's class on top: then, by convexity, so does the whole piece)."""
    out = part.local_maps["output"]
    num_classes = out.shape[1]
    mm = out[reg][owner(off)]  # (entries, C, 3)
    logits = mm[:, :, 0] * xy[:, :1] + mm[:, :, 1] * xy[:, 1:] + mm[:, :, 2]
    pc = cls[owner(off)]
    mine = logits[np.arange(len(pc)), pc]
    others = np.where(np.arange(num_classes)[None, :] == pc[:, None], -np.inf, logits)
    margin = mine - others.max(axis=1) if num_classes > 1 else np.zeros(len(pc))
    return np.maximum.reduceat(np.maximum(-margin, 0.0), off[:-1]) if len(pc) else np.zeros(0)


def _sliver_mass(
    key_maps: np.ndarray,
    viol: np.ndarray,
    region_of: np.ndarray,
    polys_xy: tuple[np.ndarray, np.ndarray],
    pdf: float | np.ndarray,
) -> float:
    """Mass bound of slivers: ``pdf x min(area, diam x viol / |g|)`` summed over pieces."""
    xy, off = polys_xy
    if not np.any(viol > 0):
        return 0.0
    bad = np.nonzero(viol > 0)[0]
    g = np.hypot(key_maps[region_of[bad], 0], key_maps[region_of[bad], 1])
    lo = np.minimum.reduceat(xy, off[:-1], axis=0)[bad]
    hi = np.maximum.reduceat(xy, off[:-1], axis=0)[bad]
    diam = np.hypot(*(hi - lo).T)
    area = np.prod(hi - lo, axis=1)  # bounding-box area: an upper bound of the piece's
    sliver = np.where(g > 0, np.minimum(area, diam * viol[bad] / np.where(g > 0, g, 1.0)), area)
    dens = pdf if np.isscalar(pdf) else np.asarray(pdf)[bad]
    return float(np.sum(dens * sliver))


def _shift_errors(net: Network, origin: np.ndarray) -> dict[str, float]:
    """How much moving to local coordinates can change each layer's values (rounding).

    The first layer's bias becomes ``origin @ W_0 + b_0``, rounded: an error of at most
    ``4 eps (|origin| @ |W_0| + |b_0|)`` per unit, which the later layers carry along
    (times each activation's Lipschitz constant and ``|W|``).
    """
    out: dict[str, float] = {}
    pairs = net.dense_layers()
    delta = 4 * _EPS * (np.abs(origin) @ np.abs(pairs[0][0]) + np.abs(pairs[0][1]))
    for k, ((w, _), act) in enumerate(zip(pairs, net.acts, strict=True)):
        if k:
            delta = delta @ np.abs(w)
        post = net.layer_names[k][0]
        out[f"{post}.pre"] = float(delta.max(initial=0.0))
        delta = delta * act.lipschitz
        out[post] = float(delta.max(initial=0.0))
    return out


def _plane_support(net: Network, dist: Any, tol: float) -> tuple[Partition, Any, Partition]:
    """``(geometry, integration domain, support)``: the partitions of the domain box and
    of the integration box (the same object when the boxes are equal)."""
    box = dist.domain
    geometry = _partition(net, box.polygon(), tol)
    dom = integration_domain(dist)
    same = np.allclose(dom.low, box.low, rtol=0, atol=0) and np.allclose(
        dom.high, box.high, rtol=0, atol=0
    )
    return geometry, dom, geometry if same else _partition(net, dom.polygon, tol)


def _region_density(dist: Any, support: Partition) -> tuple[float | None, float | np.ndarray]:
    """``(certified bound or None, density bound per region)``: a certified maximum of
    the density, or (estimated) twice the largest density at each region's vertices."""
    certified_density = density_bound(dist)
    if certified_density is not None:
        return certified_density, certified_density
    pv = np.exp(np.logaddexp.reduce(dist.class_log_joint(support.vertices), axis=-1))
    return None, 2.0 * np.maximum.reduceat(pv[support.ring], support.offsets[:-1])


def _layer_band_mass(support: Partition, pdf_region: float | np.ndarray) -> float:
    """Mass of the slivers where some region's maps are wrong, from every layer."""
    region_xy = (support.local_vertices[support.ring], support.offsets)
    regions = np.arange(support.num_regions)
    band_mass = 0.0
    for post, viol in band_violations(support).items():
        pre = support.local_maps[f"{post}.pre"]
        for i in range(viol.shape[1]):
            noise = 64 * _EPS * (np.abs(pre[:, i, 2]) + 1.0)
            v = np.maximum(viol[:, i] - noise, 0.0)
            band_mass += _sliver_mass(pre[:, i], v, regions, region_xy, pdf_region)
    return band_mass


def _piece_band_mass(
    support: Partition, piece_viol: np.ndarray, xy: np.ndarray, off: np.ndarray,
    reg: np.ndarray, pdf_region: float | np.ndarray,
) -> float:  # fmt: skip
    """A piece with a vertex on the wrong side of a class boundary: its whole
    (bounding-box) mass counts as possibly misattributed (zero gradient makes the
    sliver bound fall back to the area)."""
    if not (len(piece_viol) and np.any(piece_viol > 0)):
        return 0.0
    out = support.local_maps["output"]
    pdf_p = pdf_region if isinstance(pdf_region, float) else pdf_region[reg]
    noise = 64 * _EPS * (np.abs(out[reg, :, 2]).max(axis=1) + 1.0)
    flat_maps = np.zeros((len(reg), 3))
    return _sliver_mass(
        flat_maps, np.maximum(piece_viol - noise, 0.0), np.arange(len(reg)), (xy, off), pdf_p
    )


def _tier(quadrature: bool, errors: dict[str, float]) -> Tier:
    """``estimated`` with a quadrature; ``exact`` when nothing but rounding is left;
    otherwise ``certified`` (see the module docstring)."""
    if quadrature:
        return "estimated"
    if errors["band"] == 0.0 and errors["truncation"] <= max(errors["rounding"], 64 * _EPS):
        return "exact"
    return "certified"


def _analyze_plane(net: Network, dist: Any, *, tol: float, rtol: float) -> Analysis:
    geometry, dom, support = _plane_support(net, dist, tol)
    rm = region_moments(dist, support.local_polygons, rtol=rtol, origin=support.origin)
    m0, m1, m2, err = rm.total()
    e0, e1 = err[:, 0], err[:, 1:3]
    e2 = np.stack([err[:, [3, 4]], err[:, [4, 5]]], axis=1)
    certified_density, pdf_region = _region_density(dist, support)
    trunc = truncation_bounds(net, dist, dom)
    shift = _shift_errors(net, support.origin)
    band_mass = _layer_band_mass(support, pdf_region)

    moments: dict[str, NeuronMomentsResult] = {}
    err_round = err_trunc = err_band = 0.0
    for key, maps in support.local_maps.items():
        mom = neuron_moments(m0, m1, m2, maps)
        bound = neuron_moments(e0, e1, e2, np.abs(maps))
        fire, fire_err = _firing(support, key, m0, e0, dist, rtol)
        moments[key] = dataclasses.replace(mom, firing_probability=fire)
        amax = float(np.abs(_entry_values(support, maps)).max()) if maps.size else 0.0
        err_round = max(
            err_round, float(np.abs(bound.mean).max(initial=0.0)),
            float(np.abs(bound.second_moment).max(initial=0.0)), float(fire_err.max(initial=0.0)),
            shift[key] * (1.0 + 2.0 * amax + shift[key]),
        )  # fmt: skip
        err_band = max(err_band, band_mass * max(2 * amax, 2 * amax**2, 1.0))
        if key in trunc:
            first, second = trunc[key]
            err_trunc = max(err_trunc, float(first.max(initial=0.0)), second)
        elif certified_density is None:  # an estimate: the outside mass at the edge's values
            err_trunc = max(err_trunc, dom.outside_mass * max(amax, amax**2, 1.0))
    err_trunc = max(err_trunc, dom.outside_mass)  # probabilities (firing, accuracy)

    accuracy, class_acc, acc_err, piece_viol, (xy, off, reg) = _accuracy(support, dist, rtol, rm)
    err_band = max(err_band, _piece_band_mass(support, piece_viol, xy, off, reg, pdf_region))
    err_round = max(err_round, acc_err)

    errors = {"rounding": err_round, "truncation": err_trunc, "band": err_band}
    error = max(errors.values())
    tier = _tier(rm.tier == "estimated", errors)
    method = (
        f"exact partition ({geometry.num_regions} regions on the domain, "
        f"{support.num_regions} on the integration box); "
        + rm.method
    )  # fmt: skip
    return Analysis(
        network=net,
        dist=dist,
        kind="plane",
        moments=moments,
        accuracy=accuracy,
        class_accuracy=class_acc,
        tier=tier,
        error=error,
        errors=errors,
        method=method,
        groups=rm.groups,
        group_class=rm.group_class,
        _group_means={},
        _extrema={},
        _geometry=geometry,
        _support=support,
        _support_moments=rm,
        rtol=rtol,
    )


# --------------------------------------------------------------------------- accuracy only


@dataclasses.dataclass(frozen=True, eq=False)
class AccuracyResult:
    """The exact accuracy of a network under a distribution (:func:`accuracy`): the same
    ``accuracy``, ``class_accuracy``, ``tier``, ``error``, ``errors`` and ``method`` as
    :class:`Analysis` gives, without the moments."""

    accuracy: float
    class_accuracy: np.ndarray
    tier: Tier
    error: float
    errors: dict[str, float]
    method: str


def accuracy(model: Any, dist: Any, *, tol: float = 1e-9, rtol: float = 1e-7) -> AccuracyResult:
    """The exact accuracy of ``model`` under ``dist``: :attr:`Analysis.accuracy` (to its
    error) without computing every unit's moments.

    On the plane, for Gaussian mixtures and densities of Gaussian atoms (noisy curves),
    the mass of each class's decision region ``D_c`` is integrated over its *boundary*
    (Green's theorem, :func:`toylab.exact.class_edge_masses`): the support partition is
    cut by the arg-max (:func:`toylab.exact.argmax_pieces`), the edges two pieces of
    one class share (the same two vertex ids, in opposite directions) cancel and are
    dropped, and only the decision boundary, the box and the pieces cut by a class
    boundary are integrated, against the components of their class. The errors are
    those of :func:`analyze` (rounding, truncation, and the band of every layer and of
    the arg-max pieces) and so is the tier. Other densities, and finite domains, take
    :func:`analyze`'s numbers.

    This is what edits need (ablations, patches, weight edits): a network's accuracy,
    many times, where :func:`analyze` would integrate every moment over every region.
    """
    where = "accuracy"
    net = as_network(model, where)
    domain = getattr(dist, "domain", None)
    closed_edges = (
        isinstance(domain, Box) and domain.dim == 2
        and (isinstance(dist, GaussianMixture) or hasattr(dist, "gaussian_atoms"))
        and int(getattr(dist, "num_classes", 0)) >= 1
    )  # fmt: skip
    if not closed_edges:
        res = analyze(net, dist, tol=tol, rtol=rtol)
        return AccuracyResult(float(res.accuracy), np.asarray(res.class_accuracy), res.tier,
                              float(res.error), dict(res.errors), res.method)  # fmt: skip
    net = _piecewise_linear(where, net, 2)
    _, dom, support = _plane_support(net, dist, tol)
    _, pdf_region = _region_density(dist, support)
    xy, off, reg, cls = _argmax_flat(support)
    a, b, edge_cls = _decision_edges(support, xy, off, reg, cls)
    correct, c_err, tier, method = class_edge_masses(dist, a, b, edge_cls,
                                                     origin=support.origin)  # fmt: skip
    num_classes = int(dist.num_classes)
    box = np.asarray(dom.polygon, np.float64) - support.origin  # counter-clockwise
    ba, bb = np.tile(box, (num_classes, 1)), np.tile(np.roll(box, -1, axis=0), (num_classes, 1))
    box_cls = np.repeat(np.arange(num_classes), len(box))
    class_mass, _, _, _ = class_edge_masses(dist, ba, bb, box_cls, origin=support.origin)
    class_acc = correct / np.where(class_mass > 0, class_mass, 1.0)
    viol = _piece_violations(support, xy, off, reg, cls)
    band = max(_layer_band_mass(support, pdf_region),
               _piece_band_mass(support, viol, xy, off, reg, pdf_region))  # fmt: skip
    errors = {"rounding": float(c_err.sum()), "truncation": float(dom.outside_mass),
              "band": float(band)}  # fmt: skip
    return AccuracyResult(
        float(correct.sum()), class_acc, _tier(tier == "estimated", errors),
        max(errors.values()), errors,
        f"exact partition ({support.num_regions} regions on the integration box), "
        f"{len(a)} decision-boundary edges; " + method,
    )  # fmt: skip


def _decision_edges(
    part: Partition, xy: np.ndarray, off: np.ndarray, reg: np.ndarray, cls: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The directed edges ``(a, b, class)`` bounding each class's arg-max pieces
    counter-clockwise, without the edges two whole-region pieces of one class share.

    Whole-region pieces are walked by vertex id (neighbouring regions share ids), so a
    shared edge is the same pair of ids in both directions and is dropped exactly; the
    pieces cut by a class boundary keep all their edges (their new vertices have no ids).
    """
    lens = np.diff(off)
    whole = _whole_pieces(part, xy, off, reg)
    # whole pieces: vertex ids, counter-clockwise (the partition's regions are)
    wl = lens[whole]
    starts = np.repeat(part.offsets[reg[whole]], wl)
    k = np.arange(int(wl.sum())) - np.repeat(np.cumsum(wl) - wl, wl)
    ids = part.ring[starts + k]
    nxt = part.ring[starts + (k + 1) % np.repeat(wl, wl)]
    wcls = np.repeat(cls[whole], wl).astype(np.int64)
    nv = np.int64(len(part.local_vertices))
    key = (wcls * nv + ids) * nv + nxt
    keep = ~np.isin(key, (wcls * nv + nxt) * nv + ids)
    a_w, b_w, c_w = part.local_vertices[ids[keep]], part.local_vertices[nxt[keep]], wcls[keep]
    # cut pieces: every edge, each piece turned counter-clockwise
    cut = np.flatnonzero(~whole)
    if len(cut) == 0:
        return a_w, b_w, c_w
    pieces = _split_flat(xy, off)
    a_c, b_c, c_c = [], [], []
    for i in cut:
        poly = pieces[i]
        if len(poly) < 3:
            continue
        nb = np.roll(poly, -1, axis=0)
        if np.sum(poly[:, 0] * nb[:, 1] - poly[:, 1] * nb[:, 0]) < 0:
            poly, nb = nb, poly  # reversed edges: b -> a
        a_c.append(poly)
        b_c.append(nb)
        c_c.append(np.full(len(poly), cls[i], np.int64))
    if not a_c:
        return a_w, b_w, c_w
    return (np.concatenate([a_w, *a_c]), np.concatenate([b_w, *b_c]),
            np.concatenate([c_w, *c_c]))  # fmt: skip
