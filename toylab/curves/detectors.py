r"""The curve-detector analysis as the Curve Detectors article ran it, every number certified
where it can be (issue 15, section 4).

For one channel ``c`` of a conv layer at its centre position (``"conv_1:3"``), write
``g(θ)`` for its response to the family's image of orientation ``θ`` with the other
parameters fixed (curvature ``κ``, by default the middle of the family's range, centre
at the image centre). :func:`channel_detector` encloses ``g`` on a partition of
``[0, 2π]`` into cells (:func:`toylab.curves.tuning`, tier ``certified``) and reads off:

* **peak** ``[p_lo, p_hi]``: the certified maximum of ``g`` (``p_lo`` attained at a
  rendered image, ``p_hi = max_i upper_i``);
* **preferred orientation**: ``θ*``, the best attained cell centre, and its certified
  enclosure: the argmax lies in the union of the cells with ``upper_i >= p_lo`` (the
  others are certified below an attained value), reported as the smallest circular arc
  holding them (``preferred_arc``, degrees);
* **tuning width**: the measure (degrees) of the half-maximum super-level set
  ``{θ : g(θ) >= p / 2}`` with ``p`` the true maximum: it lies in
  ``[Σ_{lower_i > p_hi/2} |cell_i|, Σ_{upper_i >= p_lo/2} |cell_i|]`` (certified: the
  first cells are above any possible half level, the others' complement below it). For
  a single lobe this is the full width at half maximum;
* **single peak** (one lobe at half maximum): ``True`` when the cells not certified
  below half maximum (``upper_i >= p_lo/2``) form one circular arc that is not the whole
  circle and the cells certified above it (``lower_i > p_hi/2``) one contiguous run inside
  it: the half-maximum set lies in that one arc (of at most ``width[1]`` degrees) and
  holds the contiguous core (``width[0]``); ``False`` when cells certified above fall in
  two arcs separated by cells certified below, or cover the whole circle (untuned);
  else ``None``;
* **±45° response** ``g(θ* ± π/4)``: enclosed at the two points (a zero-width box:
  the bound is the float64 value up to rounding), as a fraction of ``p_lo``;
* **opposite orientation**: the channel's *pre-activation* at ``θ* + π`` enclosed at
  the point (default), or its certified maximum over ``θ* + π ± opposite_halfwidth``
  (:func:`toylab.curves.certified_max`):
  ``"negative"`` when its upper bound is ``< 0``, ``"not negative"`` when an image there
  attains ``>= 0``, else ``"undetermined"``.

**Rule** (stated, tri-state): a channel is a *curve detector* when (1) its peak is
positive (``p_lo > 0``), (2) it is single-peaked, (3) ``g(θ* ± 45°) <= off_fraction ·
p_lo`` at both points (certified upper bounds; default ``off_fraction = 0.2``: "near
zero"), and (4) the opposite pre-activation is certified negative. ``is_detector`` is
``True`` when all four are certified, ``False`` when one is certified false, ``None``
when the budget left one undecided (never a guess).

**Curvature** (the "triangle"): with ``curvatures=...`` the same θ tuning at each ``κ``
slice gives the width enclosure per ``κ``. **Polarity and fill**: the Pearson
correlation of ``g`` with the response to the family with ``polarity = -1`` (and
``fill > 0``) at ``num_invariance`` uniformly random ``θ`` (tier ``sampled``, a 95%
percentile-bootstrap half-width as ``error``).

**Families** (:func:`detector_family`): the detectors of one member, their preferred
orientations ``θ_1 < ... < θ_n`` and how evenly they tile the circle: the largest circular
gap against ``360° / n`` (``gap_ratio``: 1 is perfect tiling, ``n`` all equal) and the
mean resultant length ``R = |mean e^{iθ_k}|`` (0 for evenly spread). The gaps are
enclosed from the preferred arcs (certified when the arcs are disjoint, so the order is
known; ``estimated`` otherwise). :func:`analyze_detectors` runs every channel of a layer
for every member and summarises across seeds (universality).

**Speed: the receptive field.** A centre channel reads only the pixels of its receptive
field. The network is cut to the dense rows and columns that reach the target unit
(``toylab.network.Network.dense_layers``: every kept entry is the conv's own weight) and
the family to those pixels, the same function of the parameters; an identity layer
(average pooling) whose rows each hold one power-of-two entry and no bias is multiplied
into the next layer, which is exact in float64 (one product per entry, by a power of
two). A ``conv_1`` channel of the example net goes from 2048 + 512 intermediate units to
288, and the bounds from ~0.5 s to a few ms per parameter box. Max pooling has no dense
form: such networks are bounded whole (slower, same answer).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from toylab._errors import NotApplicable, fail
from toylab._validate import check_float, check_int
from toylab.curves.tuning import TuningResult, _problem, certified_max, tuning
from toylab.network import Network, as_network
from toylab.tiers import Tier, weakest

__all__ = [
    "ChannelDetector",
    "DetectorFamily",
    "DetectorsResult",
    "LocalProblem",
    "Tiling",
    "analyze_detectors",
    "channel_detector",
    "detector_family",
    "local_problem",
    "tiling",
]

_TWO_PI = 2.0 * math.pi


# --------------------------------------------------------------------------- receptive field


@dataclasses.dataclass(frozen=True, eq=False)
class _PixelCrop:
    """A family restricted to some pixels (``index`` into the flat image)."""

    family: Any
    index: np.ndarray

    @property
    def PARAMS(self) -> tuple[str, ...]:  # noqa: N802 - the family protocol's name
        return tuple(self.family.PARAMS)

    @property
    def param_low(self) -> np.ndarray:
        return np.asarray(self.family.param_low, np.float64)

    @property
    def param_high(self) -> np.ndarray:
        return np.asarray(self.family.param_high, np.float64)

    def render(self, params: Any) -> Any:
        return self.family.render(params)[..., self.index]

    def render_bounds(self, low: Any, high: Any) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = self.family.render_bounds(low, high)
        return np.asarray(lo)[..., self.index], np.asarray(hi)[..., self.index]

    @property
    def domain(self) -> Any:
        """The family's pixel box on the kept pixels (when it has one)."""
        from toylab.distributions.base import Box

        dom = getattr(self.family, "domain", None)
        if dom is None or not hasattr(dom, "low"):
            return None
        lo, hi = np.asarray(dom.low, np.float64), np.asarray(dom.high, np.float64)
        return Box(tuple(lo[self.index].tolist()), tuple(hi[self.index].tolist()))

    def sample(self, key: Any, n: int) -> Any:
        """The family's own samples, cut to the kept pixels (labels and latents kept)."""
        batch = self.family.sample(key, n)
        return dataclasses.replace(batch, x=batch.x[..., self.index])


@dataclasses.dataclass(frozen=True, eq=False)
class LocalProblem:
    """A neuron's receptive field: ``network`` (dense, float64) reads ``family`` (the
    original family cut to ``pixels``); its ``neuron`` is the original ``address``
    (``pre``: ``pre_neuron``) exactly, as a function of the parameters. ``cropped``:
    whether the cut applied (max pooling: the whole network)."""

    address: str
    network: Network
    family: Any
    neuron: str
    pre_neuron: str
    pixels: np.ndarray
    cropped: bool


def _same(family: Any) -> Any:
    return family


def _power_of_two(a: np.ndarray) -> np.ndarray:
    m, _ = np.frexp(a)
    return np.abs(m) == 0.5


def local_problem(model: Any, family: Any, neuron: str) -> LocalProblem:
    """Cut the network to the receptive field of ``neuron`` (see the module docstring).

    Rows of each dense-form layer that do not reach the kept units are dropped (they
    multiply the target by zero), so the cut network computes the same real-valued
    function of the kept pixels; identity layers are merged into the next one only when
    that is exact in float64.
    """
    where = "local_problem"
    net = as_network(model, where).numpy(np.float64)
    nid = net.resolve(neuron)
    if nid.layer in ("input",):
        raise fail(where, "neuron", neuron, "a neuron of a hidden, conv, pool or output layer")
    k = net.layer_index(nid.layer)
    base = nid.layer
    try:
        pairs = net.dense_layers(np.float64)[: k + 1]
    except NotApplicable:
        pre = f"{base}.pre:{nid.unit}" if net.activations[k] != "identity" else str(nid)
        return LocalProblem(
            str(nid), net, family, str(nid), pre, np.arange(net.input_dim), False
        )  # fmt: skip
    acts = list(net.activations[: k + 1])
    need = np.array([nid.unit])
    Ws: list[np.ndarray] = []
    bs: list[np.ndarray] = []
    for W, b in reversed(pairs):
        sub = np.asarray(W, np.float64)[:, need]
        rows = np.nonzero(np.any(sub != 0, axis=1))[0]
        if len(rows) == 0:  # a unit that reads nothing: keep one input so shapes chain
            rows = np.array([0])
        Ws.append(sub[rows])
        bs.append(np.asarray(b, np.float64)[need])
        need = rows
    Ws.reverse()
    bs.reverse()
    # merge exact identity layers into the next: row i of W_j has one entry 2^e, b_j = 0
    j = 0
    while j < len(Ws) - 1:
        Wj = Ws[j]
        if (
            acts[j] == "identity"
            and np.all(bs[j] == 0)
            and np.all(np.count_nonzero(Wj, axis=1) <= 1)
            and np.all(_power_of_two(Wj[Wj != 0]))
        ):
            prod = Wj @ Ws[j + 1]
            col = np.argmax(Wj != 0, axis=1)
            ref = Wj[np.arange(len(Wj)), col][:, None] * Ws[j + 1][col]
            tiny = np.finfo(np.float64).tiny
            exact = np.all(prod == ref) and np.all((prod == 0) | (np.abs(prod) >= tiny))
            if exact and np.all((prod != 0) == ((Wj != 0) @ (Ws[j + 1] != 0))):
                Ws[j : j + 2] = [prod]
                bs[j : j + 2] = [bs[j + 1]]
                del acts[j]
                continue
        j += 1
    out = acts[-1]
    local = Network.from_weights(Ws, bs, acts[:-1], output_activation=out)
    post = "output:0"
    pre = "output.pre:0" if out != "identity" else post
    if nid.pre:
        post = pre
    return LocalProblem(str(nid), local, _PixelCrop(family, need), post, pre, need, True)


# --------------------------------------------------------------------------- one channel


@dataclasses.dataclass(frozen=True, eq=False)
class ChannelDetector:
    """One channel's orientation tuning and the curve-detector rule (module docstring).

    Angles in degrees in ``[0, 360)``. ``preferred``: ``θ*`` (attained best cell centre);
    ``preferred_arc``: ``(start, length)`` of the circular arc certified to hold the
    argmax (``length`` 360 when it is not localised); ``peak``: ``(lower, upper)``;
    ``width``: ``(lower, upper)`` of the half-maximum set's measure; ``off45``: the
    ``(lower, upper)`` of ``g(θ* - 45°)`` and ``g(θ* + 45°)`` (shape ``(2, 2)``);
    ``off45_fraction``: their largest upper bound over ``peak[0]``; ``opposite``: the
    certified ``(lower, upper)`` of the pre-activation's maximum over the opposite box,
    ``opposite_sign`` its verdict; ``single_peak``, ``is_detector``: ``True``/``False``/
    ``None`` (undecided); ``reasons``: why not / what is undecided. ``kappas`` and
    ``width_by_kappa`` ``(K, 2)``: the triangle (empty without ``curvatures``);
    ``invariance``: ``{"polarity": (r, half-width), "fill": (r, half-width)}``
    (sampled). ``tuning`` is the certified θ tuning (the figures draw it).
    ``tier``: ``certified`` for every bound here, ``error`` the largest enclosure
    half-width of the tuning; the invariance correlations carry their own ``sampled``.
    """

    address: str
    member: int | None
    kappa: float
    preferred: float
    preferred_arc: tuple[float, float]
    peak: tuple[float, float]
    width: tuple[float, float]
    single_peak: bool | None
    off45: np.ndarray
    off45_fraction: float
    opposite: tuple[float, float]
    opposite_sign: str
    is_detector: bool | None
    reasons: tuple[str, ...]
    kappas: np.ndarray
    width_by_kappa: np.ndarray
    tunings_by_kappa: tuple[TuningResult, ...]
    invariance: dict[str, tuple[float, float]]
    tuning: TuningResult
    converged: bool
    num_boxes: int
    seconds: float
    error: float
    method: str
    tier: Tier = "certified"


def _runs(mask: np.ndarray) -> int:
    """Number of circular runs of ``True`` (0 if none, 1 if all)."""
    if not mask.any():
        return 0
    if mask.all():
        return 1
    return int(np.sum(mask & ~np.roll(mask, 1)))


def _arc(lows: np.ndarray, highs: np.ndarray) -> tuple[float, float]:
    """Smallest circular arc ``(start, length)`` (radians) holding intervals on
    ``[0, 2π]``: the complement of the largest uncovered gap."""
    if len(lows) == 0:
        return (0.0, 0.0)
    order = np.argsort(lows)
    lo, hi = lows[order], highs[order]
    # merge
    segs: list[list[float]] = []
    for a, b in zip(lo, hi, strict=True):
        if segs and a <= segs[-1][1]:
            segs[-1][1] = max(segs[-1][1], b)
        else:
            segs.append([float(a), float(b)])
    if len(segs) == 1 and segs[0][1] - segs[0][0] >= _TWO_PI:
        return (0.0, _TWO_PI)
    gaps = [segs[i + 1][0] - segs[i][1] for i in range(len(segs) - 1)]
    gaps.append(segs[0][0] + _TWO_PI - segs[-1][1])
    g = int(np.argmax(gaps))
    start = segs[(g + 1) % len(segs)][0]
    return (start % _TWO_PI, _TWO_PI - gaps[g])


def _centre_params(family: Any, kappa: float | None) -> np.ndarray:
    lo, hi = np.asarray(family.param_low, np.float64), np.asarray(family.param_high, np.float64)
    p = 0.5 * (lo + hi)
    names = tuple(family.PARAMS)
    if kappa is not None:
        p[names.index("kappa")] = kappa
    return p


def _theta_tuning(
    prob: LocalProblem, family: Any, p0: np.ndarray, resolution: int, tol: float,
    max_boxes: int,
) -> TuningResult:  # fmt: skip
    names = tuple(family.PARAMS)
    fixed = {n: float(v) for n, v in zip(names, p0, strict=True) if n != "theta"}
    return tuning(
        prob.network, prob.family, prob.neuron, axes=("theta",), fixed=fixed,
        resolution=(resolution,), tol=tol, max_boxes=max_boxes,
    )  # fmt: skip


def _run_labels(mask: np.ndarray) -> np.ndarray:
    """Label of the circular run of ``True`` holding each entry (``-1`` for ``False``)."""
    n = len(mask)
    lab = np.full(n, -1)
    if not mask.any():
        return lab
    if mask.all():
        return np.zeros(n, int)
    start = int(np.argmin(mask))  # a False entry: runs do not wrap past it
    k = -1
    for i in range(1, n + 1):
        j = (start + i) % n
        if mask[j]:
            if not mask[(j - 1) % n]:
                k += 1
            lab[j] = k
    return lab


def _width(res: TuningResult, peak: tuple[float, float]) -> tuple[float, float, bool | None]:
    L = res.cell_high[:, 0] - res.cell_low[:, 0]
    order = np.argsort(res.cell_low[:, 0])
    above = (res.lower > peak[1] / 2)[order]
    possible = (res.upper >= peak[0] / 2)[order]
    w = (float(L[order][above].sum()), float(L[order][possible].sum()))
    single: bool | None
    lobes = len(set(_run_labels(possible)[above].tolist()))
    if above.all():  # certified above half maximum everywhere: untuned, no peak
        single = False
    elif _runs(possible) == 1 and not possible.all() and _runs(above) == 1:
        single = True
    elif lobes >= 2:  # certified-above cells in two arcs separated by certified-below cells
        single = False
    else:
        single = None
    return math.degrees(w[0]), math.degrees(w[1]), single


def _sampled_corr(
    net: Network, neuron: str, a: Any, b: Any, p0: np.ndarray, key: jax.Array, n: int
) -> tuple[float, float]:
    """Pearson correlation of the responses to families ``a`` and ``b`` at ``n`` uniform
    θ, with a 95% percentile-bootstrap half-width (200 resamples)."""
    rng = np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel())
    th = rng.uniform(0.0, _TWO_PI, n)
    p = np.tile(p0, (n, 1))
    p[:, 0] = th
    va = np.asarray(net.values(np.asarray(a.render(p), np.float64), neuron), np.float64)
    vb = np.asarray(net.values(np.asarray(b.render(p), np.float64), neuron), np.float64)

    def corr(x: np.ndarray, y: np.ndarray) -> float:
        x, y = x - x.mean(), y - y.mean()
        den = float(np.sqrt((x @ x) * (y @ y)))
        return float(x @ y / den) if den > 0 else float("nan")

    r = corr(va, vb)
    boots = []
    for _ in range(200):
        i = rng.integers(0, n, n)
        boots.append(corr(va[i], vb[i]))
    q = np.nanpercentile(boots, [2.5, 97.5]) if np.isfinite(boots).any() else [np.nan] * 2
    return r, float(0.5 * (q[1] - q[0]))


def channel_detector(
    model: Any,
    family: Any,
    neuron: str,
    *,
    member: int | None = None,
    kappa: float | None = None,
    resolution: int = 24,
    tol: float | None = None,
    rel_tol: float = 0.1,
    max_boxes: int = 2_000,
    off_fraction: float = 0.2,
    opposite_halfwidth: float = 0.0,
    curvatures: Sequence[float] | int | None = None,
    invariance: bool = True,
    num_invariance: int = 256,
    key: jax.Array | None = None,
) -> ChannelDetector:
    """The curve-detector statistics of one channel (see the module docstring).

    ``kappa``: the curvature of the θ tuning (default the middle of the family's range);
    ``resolution`` θ cells (refined until each enclosure is narrower than ``tol``,
    default ``rel_tol`` times the channel's largest response on a 72-point θ grid;
    ``max_boxes`` parameter boxes per tuning); ``off_fraction``: the rule's "near zero"
    at ±45°; ``opposite_halfwidth`` (degrees): the box around ``θ* + 180°``;
    ``curvatures``: ``κ`` values (or a number of evenly spaced ones over the family's
    range) for the width-against-curvature triangle; ``invariance``: the sampled
    polarity / fill correlations (needs a family with ``polarity`` and ``fill`` fields,
    e.g. :class:`~toylab.distributions.CurveImages`), ``key`` their PRNG key.
    """
    where = "channel_detector"
    start = time.perf_counter()
    resolution = check_int(where, "resolution", resolution, minimum=4)
    max_boxes = check_int(where, "max_boxes", max_boxes, minimum=resolution)
    rel_tol = check_float(where, "rel_tol", rel_tol, positive=True)
    off_fraction = check_float(where, "off_fraction", off_fraction, nonneg=True)
    halfw = math.radians(check_float(where, "opposite_halfwidth", opposite_halfwidth,
                                     nonneg=True, maximum=90.0))  # fmt: skip
    names = tuple(getattr(family, "PARAMS", ()))
    if names[:2] != ("theta", "kappa"):
        raise fail(where, "family", type(family).__name__,
                   "an image family whose first parameters are (theta, kappa)",
                   "Pass a toylab.distributions.CurveImages.")  # fmt: skip
    prob = local_problem(model, family, neuron)
    p0 = _centre_params(family, None if kappa is None else float(kappa))
    grid = np.tile(p0, (72, 1))
    grid[:, 0] = np.linspace(0.0, _TWO_PI, 72, endpoint=False)
    lp = _problem(where, prob.network, prob.family, prob.neuron)
    gv = lp.values(grid)[0]
    scale = float(np.max(np.abs(gv))) if np.all(np.isfinite(gv)) else 1.0
    if tol is None:
        tol = rel_tol * scale if scale > 0 else 1e-3
    tol = check_float(where, "tol", tol, positive=True)
    res = _theta_tuning(prob, family, p0, resolution, tol, max_boxes)
    num = res.num_boxes
    best = int(np.argmax(res.values))
    theta_star = float(res.centres[best, 0])
    peak = (max(float(res.values[best]), float(np.max(res.lower))), float(np.max(res.upper)))
    cand = res.upper >= peak[0]
    arc = _arc(res.cell_low[cand, 0], res.cell_high[cand, 0])
    wlo, whi, single = _width(res, peak)
    # ±45°: zero-width boxes (the float64 value, enclosed up to rounding)
    pts = np.tile(p0, (2, 1))
    pts[:, 0] = theta_star + np.array([-1.0, 1.0]) * math.pi / 4
    lb, ub, _, _ = lp.bounds(pts, pts)
    off45 = np.stack([lb, ub], axis=1)
    frac = float(np.max(ub) / peak[0]) if peak[0] > 0 else float("inf")
    # opposite orientation: the pre-activation at θ* + π (a point), or its max over a box
    olo, ohi = p0.copy(), p0.copy()
    olo[0], ohi[0] = theta_star + math.pi - halfw, theta_star + math.pi + halfw
    if halfw == 0:
        pp = _problem(where, prob.network, prob.family, prob.pre_neuron)
        plb, pub, _, _ = pp.bounds(olo[None], ohi[None])
        opp, opp_conv, opp_err = (float(plb[0]), float(pub[0])), True, 0.5 * float(pub[0] - plb[0])
    else:
        om = certified_max(prob.network, prob.family, prob.pre_neuron, box=(olo, ohi),
                           gap=max(tol, 1e-6), max_boxes=max(64, max_boxes // 8))  # fmt: skip
        num += om.num_boxes
        opp, opp_conv, opp_err = (float(om.lower), float(om.upper)), om.converged, om.error
    sign = "negative" if opp[1] < 0 else "not negative" if opp[0] >= 0 else "undetermined"
    # the rule
    checks: list[tuple[bool | None, str]] = [
        (peak[0] > 0 if peak[0] > 0 or peak[1] <= 0 else None, "peak not positive"),
        (single, "not single-peaked (half-maximum set not one lobe)"),
        (True if frac <= off_fraction else False if np.min(lb) > off_fraction * peak[1]
         else None if peak[0] > 0 and np.max(lb) <= off_fraction * peak[1] else False,
         f"±45° response above {off_fraction:g} of the peak"),
        ({"negative": True, "not negative": False}.get(sign), "opposite pre-activation "
         "not negative"),
    ]  # fmt: skip
    if any(c is False for c, _ in checks):
        verdict: bool | None = False
    elif all(c is True for c, _ in checks):
        verdict = True
    else:
        verdict = None
    reasons = tuple(
        ("undecided: " if c is None else "") + msg for c, msg in checks if c is not True
    )
    # the triangle: width per curvature slice
    kappas = np.zeros(0)
    wbk = np.zeros((0, 2))
    tks: list[TuningResult] = []
    if curvatures is not None:
        k_i = names.index("kappa")
        klo, khi = float(family.param_low[k_i]), float(family.param_high[k_i])
        kappas = (
            np.linspace(klo, khi, check_int(where, "curvatures", curvatures, minimum=2))
            if isinstance(curvatures, int)
            else np.asarray(curvatures, np.float64)
        )
        rows = []
        for kv in kappas:
            pk = p0.copy()
            pk[k_i] = kv
            r = _theta_tuning(prob, family, pk, resolution, tol, max_boxes)
            num += r.num_boxes
            b = int(np.argmax(r.values))
            pk_peak = (max(float(r.values[b]), float(np.max(r.lower))), float(np.max(r.upper)))
            lo_w, hi_w, _ = _width(r, pk_peak)
            rows.append((lo_w, hi_w))
            tks.append(r)
        wbk = np.asarray(rows, np.float64).reshape(-1, 2)
    inv: dict[str, tuple[float, float]] = {}
    if invariance and hasattr(family, "polarity") and hasattr(family, "fill"):
        key = jax.random.key(0) if key is None else key
        n = check_int(where, "num_invariance", num_invariance, minimum=8)
        base = dataclasses.replace(family, polarity=1.0, fill=0.0, noise=0.0)
        crop = functools.partial(_PixelCrop, index=prob.pixels) if prob.cropped else _same
        k1, k2 = jax.random.split(key)
        for name, variant, k in (("polarity", dataclasses.replace(base, polarity=-1.0), k1),
                                 ("fill", dataclasses.replace(base, fill=0.5), k2)):  # fmt: skip
            inv[name] = _sampled_corr(prob.network, prob.neuron, crop(base), crop(variant),
                                      p0, k, n)  # fmt: skip
    converged = res.converged and opp_conv and all(r.converged for r in tks)
    return ChannelDetector(
        address=prob.address, member=member, kappa=float(p0[1]),
        preferred=math.degrees(theta_star) % 360.0,
        preferred_arc=(math.degrees(arc[0]) % 360.0, math.degrees(arc[1])),
        peak=peak, width=(wlo, whi), single_peak=single, off45=off45, off45_fraction=frac,
        opposite=opp, opposite_sign=sign, is_detector=verdict, reasons=reasons,
        kappas=kappas, width_by_kappa=wbk, tunings_by_kappa=tuple(tks), invariance=inv,
        tuning=res, converged=converged, num_boxes=num,
        seconds=time.perf_counter() - start,
        error=max([res.error, opp_err] + [r.error for r in tks]),
        method=(
            f"certified θ tuning ({res.method}) on the receptive field "
            f"({len(prob.pixels)} pixels); ±45° at zero-width boxes; opposite sign by "
            "certified_max of the pre-activation; polarity/fill: sampled Pearson correlation "
            "with a bootstrap 95% half-width"
        ),
    )  # fmt: skip


# --------------------------------------------------------------------------- tiling


@dataclasses.dataclass(frozen=True, eq=False)
class Tiling:
    """How evenly angles tile the circle (degrees). ``angles`` sorted; ``gaps`` the
    circular gaps between consecutive angles (sum 360); ``max_gap`` ``(lower, upper)``
    enclosed from the angles' arcs; ``gap_ratio = max_gap / (360 / n)`` (midpoint; 1 is
    perfect tiling); ``resultant``: ``|mean e^{iθ}|``; ``tier``: ``exact`` for exact
    angles, ``certified`` when the arcs are disjoint, else ``estimated`` (``error``:
    the half-width of the gap enclosure)."""

    angles: np.ndarray
    gaps: np.ndarray
    max_gap: tuple[float, float]
    gap_ratio: float
    resultant: float
    error: float
    method: str
    tier: Tier


def tiling(angles: Any, arcs: Any = None) -> Tiling:
    """Tiling statistics of angles in degrees; ``arcs`` ``(n, 2)``: ``(start, length)``
    of an arc known to hold each angle (default: the angles are exact)."""
    where = "tiling"
    a = np.asarray(angles, np.float64).ravel() % 360.0
    n = len(a)
    if n == 0:
        return Tiling(a, np.zeros(0), (math.nan, math.nan), math.nan, math.nan, 0.0,
                      "no angles", "exact")  # fmt: skip
    if not np.all(np.isfinite(a)):
        raise fail(where, "angles", angles, "finite angles in degrees")
    order = np.argsort(a)
    a = a[order]
    gaps = np.diff(np.concatenate([a, [a[0] + 360.0]]))
    if arcs is None:
        start = a.copy()
        length = np.zeros(n)
        tier: Tier = "exact"
    else:
        arr = np.asarray(arcs, np.float64).reshape(n, 2)[order]
        start, length = arr[:, 0] % 360.0, arr[:, 1]
        tier = "certified"
    # each angle lies in [start, start + length] (mod 360): gap i between angle i and i+1
    s = start + np.where(start > a, -360.0, 0.0)
    e = s + length
    nxt = np.roll(s, -1) + np.where(np.arange(n) == n - 1, 360.0, 0.0)
    nxt_e = nxt + np.roll(length, -1)
    glo = np.maximum(nxt - e, 0.0) if n > 1 else np.array([360.0])
    ghi = nxt_e - s if n > 1 else np.array([360.0])
    disjoint = n == 1 or bool(np.all(nxt - e >= 0))
    if arcs is not None and not disjoint:
        tier = "estimated"
    mg = (float(glo.max()), float(min(ghi.max(), 360.0)))
    z = np.exp(1j * np.radians(a))
    return Tiling(
        angles=a, gaps=gaps, max_gap=mg, gap_ratio=0.5 * (mg[0] + mg[1]) / (360.0 / n),
        resultant=float(abs(z.mean())), error=0.5 * (mg[1] - mg[0]),
        method="largest circular gap between consecutive angles, enclosed from their arcs"
        if arcs is not None else "largest circular gap between consecutive angles",
        tier=tier,
    )  # fmt: skip


@dataclasses.dataclass(frozen=True, eq=False)
class DetectorFamily:
    """The detectors of one member's layer: ``channels`` (every channel analysed),
    ``detectors`` (addresses with ``is_detector True``), ``undecided`` (``None``),
    ``tiling`` of their preferred orientations, ``widths`` ``(n, 2)``."""

    member: int | None
    layer: str
    channels: tuple[ChannelDetector, ...]
    detectors: tuple[str, ...]
    undecided: tuple[str, ...]
    tiling: Tiling
    widths: np.ndarray
    seconds: float
    error: float
    method: str
    tier: Tier

    @property
    def num_detectors(self) -> int:
        return len(self.detectors)


def detector_family(channels: Sequence[ChannelDetector], *, layer: str = "") -> DetectorFamily:
    """Summarise analysed channels of one member (see :class:`DetectorFamily`)."""
    chans = tuple(channels)
    det = [c for c in chans if c.is_detector]
    til = tiling([c.preferred for c in det], [c.preferred_arc for c in det])
    tiers = [c.tier for c in chans] + [til.tier]
    return DetectorFamily(
        member=chans[0].member if chans else None, layer=layer, channels=chans,
        detectors=tuple(c.address for c in det),
        undecided=tuple(c.address for c in chans if c.is_detector is None),
        tiling=til, widths=np.asarray([c.width for c in det], np.float64).reshape(-1, 2),
        seconds=float(sum(c.seconds for c in chans)),
        error=max([c.error for c in chans] + [til.error], default=0.0),
        method="channel_detector per channel; tiling of the detectors' preferred orientations",
        tier=weakest(*tiers) if tiers else "exact",
    )  # fmt: skip


@dataclasses.dataclass(frozen=True, eq=False)
class DetectorsResult:
    """Every member's :class:`DetectorFamily` for one layer, and across seeds:
    ``counts`` (detectors per member), ``widths`` (pooled ``(n, 2)``), ``pooled`` (tiling
    of every detector's preferred orientation), ``seconds`` the wall time."""

    layer: str
    members: tuple[int, ...]
    families: tuple[DetectorFamily, ...]
    counts: np.ndarray
    widths: np.ndarray
    pooled: Tiling
    seconds: float
    error: float
    method: str
    tier: Tier


def _member_models(model_or_run: Any, members: Any) -> list[tuple[int | None, Any, Any]]:
    """``(member, model, family)`` for a run (its members) or one model."""
    if hasattr(model_or_run, "num_members") and hasattr(model_or_run, "model"):
        run = model_or_run
        ms = range(run.num_members) if members is None else members
        return [(int(m), run.model(int(m)), run.dist_of(int(m))) for m in ms]
    return [(None, model_or_run, None)]


def analyze_detectors(
    model_or_run: Any,
    family: Any = None,
    *,
    layer: str = "conv_1",
    members: Sequence[int] | None = None,
    channels: Sequence[int] | None = None,
    resolution: int = 24,
    tol: float | None = None,
    rel_tol: float = 0.1,
    max_boxes: int = 2_000,
    curvatures: Sequence[float] | int | None = None,
    invariance: bool = True,
    **kwargs: Any,
) -> DetectorsResult:
    """Every channel of ``layer`` (centre position) of every member (or ``members``) of a
    run, or of one model: :func:`channel_detector`, :func:`detector_family` per member,
    and the across-seed summary. ``family`` defaults to the run's distribution (each
    member's own). Other keywords go to :func:`channel_detector`."""
    where = "analyze_detectors"
    start = time.perf_counter()
    items = _member_models(model_or_run, members)
    fams = []
    for m, model, dist in items:
        fam = family if family is not None else dist
        if fam is None:
            raise fail(where, "family", None, "an image family (or pass a run)")
        net = as_network(model, where)
        if layer not in net.layer_keys() or not net.spatial:
            raise fail(where, "layer", layer, f"a spatial layer of {net!r}",
                       "For example layer='conv_1'.")  # fmt: skip
        nch = net.layer_shape(layer)[2]
        chs = range(nch) if channels is None else channels
        res = [
            channel_detector(model, fam, f"{layer}:{c}", member=m, resolution=resolution,
                             tol=tol, rel_tol=rel_tol, max_boxes=max_boxes,
                             curvatures=curvatures, invariance=invariance, **kwargs)
            for c in chs
        ]  # fmt: skip
        fams.append(detector_family(res, layer=layer))
    angles = [c.preferred for f in fams for c in f.channels if c.is_detector]
    arcs = [c.preferred_arc for f in fams for c in f.channels if c.is_detector]
    pooled = tiling(angles, arcs)
    tiers = [f.tier for f in fams]
    return DetectorsResult(
        layer=layer, members=tuple(-1 if m is None else m for m, _, _ in items),
        families=tuple(fams), counts=np.asarray([f.num_detectors for f in fams]),
        widths=np.concatenate([f.widths for f in fams]) if fams else np.zeros((0, 2)),
        pooled=pooled, seconds=time.perf_counter() - start,
        error=max([f.error for f in fams], default=0.0),
        method="channel_detector on every channel of every member; tiling pooled over members",
        tier=weakest(*tiers) if tiers else "exact",
    )  # fmt: skip
