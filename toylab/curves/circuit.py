r"""A curve detector written by hand: oriented line filters summed along an arc.

:func:`curve_circuit` builds a two-conv-layer :class:`~toylab.network.Network` in
float64 whose ``conv_1`` channel 0 is a curve detector for one orientation
``theta0`` and curvature ``kappa0`` of a :class:`~toylab.distributions.CurveImages`
family (``conv_0``: oriented line detectors; ``pool_0``: 2x2 average; ``conv_1``: the
arc). :func:`compare_circuit` correlates its tuning with the channels of trained
conv nets over random ``(theta, kappa)`` (sampled), :func:`certified_correlation` encloses
the correlation of two orientation tuning curves (certified), :func:`transplant` writes it into a trained network and measures the change
in accuracy (and the ablation of the same channel, for comparison).

**Geometry.** Pixel ``(i, j)`` sits at ``(x, y) = (j, H - 1 - i)`` (``y`` up, as the
family draws). The circuit's layers mirror a trained ``conv = [{kernel = 5, pool =
"avg", pool_window = 2}, {kernel = 3, ...}]`` net but with ``"valid"`` padding (only the
receptive field is computed): ``conv_0`` unit ``(o_i, o_j)`` looks at the 5x5 patch
centred on pixel ``(o_i + 2, o_j + 2)``; ``pool_0`` cell ``P`` averages ``conv_0``
rows ``2P, 2P + 1``, centred on pixel row ``2P + 2.5``; ``conv_1`` unit ``U`` reads the
cells ``U..U+2``, centred on pixel ``2U + 4.5``. ``neuron`` is the centre unit
``conv_1:0`` (``U = (H' // 2, W' // 2)``); for ``H = 16`` it reads pixels 4..13, the same
receptive field as the centre unit of a ``"same"``-padded trained net (whose ``conv_1``
unit ``U`` reads cells ``U - 1..U + 1``, centred on pixel ``2U + 0.5``). ``centre`` is the
point ``(cx, cy)`` in the family's coordinates where that receptive field is centred:
evaluate tunings there (``fixed={"cx": cx, "cy": cy}``).

**Layer 1: line detectors.** For orientations ``phi_k = k pi / K`` (lines have no
direction: ``phi`` and ``phi + pi`` are the same line), with ``(t, u)`` the coordinates
of a kernel offset along and across ``phi``,

.. math::

    F_k(t, u) = \Big(1 - \frac{u^2}{s_u^2}\Big) e^{-u^2 / 2 s_u^2}\; e^{-t^2 / 2 s_t^2}
                \;-\; \text{mean},

a Mexican hat across the line (a bright centre of width ``~2 s_u``, dark flanks) times
a Gaussian window along it, made zero-mean (a uniform image gives 0) and scaled so a
straight rendered line of the family through the kernel's centre at ``phi_k`` gives
1. ``conv_0 = relu(F_k * x - b_0)``: a line at angle ``delta`` to ``phi_k`` crosses the
positive band over a length ``~2 s_u / |sin delta|`` instead of the whole window, and
its flanks cancel the rest, so the detector's response falls with ``delta`` (it is
``~0.3`` at 30°) and the threshold ``b_0`` cuts the tail.

**Layer 2: the arc.** The arc ``A`` of the target curve (through the receptive-field
centre, tangent ``tau = (cos theta0, sin theta0)``, left normal ``n``) is
``A(s) = (sin(kappa0 s) / kappa0) tau + ((1 - cos(kappa0 s)) / kappa0) n`` with tangent
angle ``theta0 + kappa0 s``; its mirror image ``B`` across the tangent line (the same
formula with ``-n``, tangent ``theta0 - kappa0 s``) is exactly the curve of orientation
``theta0 + pi`` (the family's arc bends to the left of its direction). The ``conv_1``
weight from line detector ``k`` in pool cell ``a`` (centre ``p_a`` relative to the
receptive-field centre) is

.. math::

    w_{a,k} = \int \big[G(p_a - A(s))\, V(\phi_k - \theta_0 - \kappa_0 s)
              - G(p_a - B(s))\, V(\phi_k - \theta_0 + \kappa_0 s)\big]\, ds,
    \quad G(d) = e^{-|d|^2/2\sigma_p^2},\ V(\delta) = e^{\beta(\cos 2\delta - 1)}

(``s`` over ``[-3, 3]`` px, the receptive field's reach; a midpoint rule on a fine
grid: the *circuit* is this sum, not an approximation of anything), then
``conv_1 = relu(w * pool_0 - b_1)`` with ``b_1 = threshold`` times the pre-activation at
the target curve. ``V`` has period ``pi`` like the line detectors.

**Why it is tuned as it is** (the response ``r(theta, kappa)`` with the curve's
centre at ``centre``; these are the claims the tests check with the certified tuning):

* *Orientation.* Each pool cell holds detector responses ``~V``-shaped in the angle
  between ``phi_k`` and the curve's local tangent; the excitatory term of ``w`` is a
  matched filter of the arc ``A`` (positions ``G``, orientations ``V``), largest
  when the curve passes the same cells at the same tangents: at ``theta = theta0``.
* *About 45° away* the curve's tangent in every cell differs from the template's by
  ``~45°``; the line detectors give ``~V(45°) = e^{-beta}`` (about ``0.3`` of their peak
  after the threshold ``b_0``), the excitatory and inhibitory terms nearly cancel and
  ``b_1`` puts the pre-activation below zero: the response is ``0``.
* *Opposite orientation* (``theta0 + pi``): the image is the arc ``B``, which matches the
  inhibitory term exactly, and the excitatory term only where ``A`` and ``B`` share
  cells and tangents (near the centre, where both terms cancel): the pre-activation is
  minus the peak (``w`` is odd under the reflection across the tangent line, up to the
  line detectors' discrete orientations), negative.
* *Curvature.* A straight line at ``theta0`` is its own mirror image, so it excites
  ``A`` and ``B`` equally: pre-activation ``~0``. Bending the curve toward ``A`` rotates
  its tangents by ``kappa s`` in the side cells toward the template's and away from
  ``B``'s, so the response grows with ``kappa`` up to about ``kappa0`` and falls when the
  tangent overshoots. Within a 3x3-cell receptive field (``|s| <= 3`` px) the tangent
  turns by at most ``3 kappa`` (``0.75`` rad at ``kappa = 0.25``), and the mirror term
  keeps falling with ``kappa``: curvature selectivity is weak. Measured (dense sweeps,
  ``theta0 = 0.3``): the peak over ``kappa`` sits at ``0.18``-``0.22``/px on 16x16 images
  (``0.25`` on 10x10) for every ``kappa0`` in ``[0.05, 0.25]``; ``kappa0`` shapes the
  template, the receptive field cannot place the peak at it. The tests check what holds:
  straight lines are silent (certified) and the certified curvature peak is not below
  ``kappa0 - 0.05``; the orientation is resolved to a few degrees.

Everything is float64; the line detectors keep only the orientations whose ``conv_1``
weights are not negligible (``> 1e-2`` of the largest; the dropped ones are not in the
circuit, so nothing is approximated).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
from scipy.special import ndtri

from toylab._errors import ToylabError, fail
from toylab._validate import check_float, check_int
from toylab.circuits.circuit import Circuit, VerifyResult
from toylab.layers import Dense
from toylab.layers.conv import AvgPool, Conv
from toylab.network import Network, as_network
from toylab.tiers import Tier

__all__ = [
    "CertifiedCorrelation",
    "CircuitComparison",
    "CurveCircuit",
    "CurveTransplantResult",
    "certified_correlation",
    "compare_circuit",
    "curve_circuit",
    "preferred_orientation",
    "transplant",
    "transplanted_network",
]

_ARC_REACH = 3.0  # px: the arc is summed over |s| <= 3 (the 3x3-cell receptive field)
_ARC_STEPS = 61  # midpoint rule on [-3, 3]: spacing 0.1 px, << the cells' spacing 2
_SILENT = 1e-8  # "silent": a certified upper bound within the bounds' rounding pads of 0
_KEEP = 1e-2  # line detectors whose weights are below this fraction of the largest are left out


@dataclasses.dataclass(frozen=True, eq=False)
class CurveCircuit:
    """A handwritten curve detector (see the module docstring for the construction).

    ``model``: the float64 network (input the family's flat image); ``neuron``: the
    detector's address (``"conv_1:0"``, the centre unit); ``centre``: ``(cx, cy)``
    where its receptive field is centred (evaluate tunings there);
    ``line_orientations``: the ``conv_0`` channels' orientations (radians, mod pi);
    ``line_kernel`` ``(5, 5, 1, K)``, ``line_bias`` ``(K,)``, ``curve_kernel``
    ``(3, 3, K)`` and ``curve_bias`` (float): the weights :func:`transplant` writes into a
    trained net.
    """

    name: str
    model: Network
    neuron: str
    orientation: float
    curvature: float
    centre: tuple[float, float]
    line_orientations: np.ndarray
    line_kernel: np.ndarray
    line_bias: np.ndarray
    curve_kernel: np.ndarray
    curve_bias: float
    pool: int

    @property
    def circuit(self) -> Circuit:
        """As a :class:`toylab.circuits.Circuit` (named neurons and the claim)."""
        meanings = {
            f"conv_0:{k}": (
                f"line_{math.degrees(p):.0f}",
                f"line detector at {math.degrees(p):.1f} deg (mod 180)",
            )
            for k, p in enumerate(self.line_orientations)
        }
        meanings[self.neuron] = (
            "curve",
            f"curve detector: orientation {math.degrees(self.orientation):.1f} deg, "
            f"curvature {self.curvature:g}/px",
        )
        return Circuit(self.name, self.model, meanings, self.claim)

    @property
    def claim(self) -> str:
        return (
            f"{self.neuron} peaks at orientation {math.degrees(self.orientation):.1f} deg "
            "(certified maximum over theta within 12 deg), is silent 45 deg away and has a "
            "negative pre-activation at the opposite orientation"
        )

    def verify(self, family: Any, *, gap: float = 0.05, max_boxes: int = 400) -> VerifyResult:
        """Check :attr:`claim` with the certified tuning (:mod:`toylab.curves.tuning`).

        With ``kappa`` at the construction's and the curve centred on :attr:`centre`:
        the certified argmax over ``theta`` is within 12° of ``orientation`` and no
        ``theta`` farther than 30° from it can reach the attained maximum
        (:func:`preferred_orientation`); the certified maximum of the response at
        ``theta0 ± 45°`` is ``0`` up to the bounds' rounding pads (``<= 1e-8``: silent 45°
        away); the certified maximum of the pre-activation at ``theta0 + pi`` is negative.
        """
        from toylab.curves.tuning import certified_max

        res = preferred_orientation(self, family, gap=gap, max_boxes=max_boxes)
        cx, cy = self.centre
        fix = {"kappa": (self.curvature,) * 2, "cx": (cx, cx), "cy": (cy, cy)}
        th0 = self.orientation
        opp = th0 + math.pi
        neg = certified_max(
            self.model, family, _pre(self.neuron), box={"theta": (opp, opp), **fix}, gap=gap
        )
        side = [
            certified_max(
                self.model, family, self.neuron, box={"theta": (t, t), **fix}, gap=gap
            ).upper
            for t in (th0 + math.pi / 4, th0 - math.pi / 4)
        ]
        off = abs(_angle_diff(res["argmax"], th0))
        passed = (
            off <= math.radians(12.0)
            and res["far_upper"] < res["lower"]
            and max(side) <= _SILENT
            and neg.upper < 0
        )
        return VerifyResult(
            self.name,
            self.claim,
            passed,
            {
                "argmax_theta": res["argmax"],
                "offset_deg": math.degrees(off),
                "max_lower": res["lower"],
                "max_upper": res["upper"],
                "far_upper": res["far_upper"],
                "at_45_upper": float(max(side)),
                "opposite_pre_upper": float(neg.upper),
            },
            "certified",
            "certified_max over theta (branch and bound over parameter boxes, CROWN bounds)",
        )


def _pre(neuron: str) -> str:
    layer, unit = neuron.split(":", 1)
    return f"{layer}.pre:{unit}"


def _angle_diff(a: float, b: float) -> float:
    """``a - b`` wrapped to ``(-pi, pi]``."""
    d = (a - b) % (2 * math.pi)
    return d - 2 * math.pi if d > math.pi else d


def preferred_orientation(
    circ: CurveCircuit, family: Any, *, curvature: float | None = None, gap: float = 0.05,
    max_boxes: int = 400, exclude: float = 30.0,
) -> dict[str, float]:  # fmt: skip
    """The certified preferred orientation of ``circ`` at ``curvature`` (default its own).

    Two certified maxima over ``theta`` (:func:`toylab.curves.certified_max`; ``kappa``
    fixed, the curve centred on :attr:`CurveCircuit.centre`): over the whole circle,
    giving ``argmax`` (radians) and the enclosure ``[lower, upper]`` of the maximum;
    then over the orientations more than ``exclude`` degrees from ``argmax`` (the arc
    ``[argmax + exclude, argmax + 360 - exclude]``; the renderer is ``2 pi``-periodic),
    giving ``far_upper`` (to a gap of a quarter of the peak: only its comparison with
    the peak matters). ``far_upper < lower`` certifies that no orientation farther
    than ``exclude`` from ``argmax`` responds as much as the peak (tier ``certified``).
    """
    from toylab.curves.tuning import certified_max

    kappa = circ.curvature if curvature is None else float(curvature)
    cx, cy = circ.centre
    fix = {"kappa": (kappa, kappa), "cx": (cx, cx), "cy": (cy, cy)}
    m = certified_max(
        circ.model, family, circ.neuron, box={"theta": (0.0, 2 * math.pi), **fix},
        gap=gap, max_boxes=max_boxes,
    )  # fmt: skip
    arg = float(m.argmax[0])
    ex = math.radians(check_float("preferred_orientation", "exclude", exclude, positive=True))
    far = certified_max(
        circ.model, family, circ.neuron,
        box={"theta": (arg + ex, arg + 2 * math.pi - ex), **fix},
        gap=max(gap, 0.25 * float(m.lower)), max_boxes=max_boxes,
    )  # fmt: skip
    return {"argmax": arg % (2 * math.pi), "lower": float(m.lower), "upper": float(m.upper),
            "far_upper": float(far.upper)}  # fmt: skip


# --------------------------------------------------------------------------- construction


def _line_filters(family: Any, phis: np.ndarray, size: int, s_u: float, s_t: float) -> np.ndarray:
    """``(size, size, 1, K)`` zero-mean line templates, each giving 1 on the family's
    straight line through its centre pixel at its orientation."""
    r = size // 2
    off = np.arange(size) - r
    dy, dx = -off[:, None] + 0.0 * off[None], 0.0 * off[:, None] + off[None]
    h, w = family.image_shape
    ci, cj = h // 2, w // 2
    out = np.zeros((size, size, 1, len(phis)))
    for k, ph in enumerate(phis):
        u = -dx * math.sin(ph) + dy * math.cos(ph)
        t = dx * math.cos(ph) + dy * math.sin(ph)
        f = (1 - u**2 / s_u**2) * np.exp(-(u**2) / (2 * s_u**2)) * np.exp(-(t**2) / (2 * s_t**2))
        f -= f.mean()
        line = np.array([ph, 0.0, float(cj), float(h - 1 - ci)])
        img = np.asarray(family.render(line), np.float64).reshape(h, w)
        resp = float((img[ci - r : ci + r + 1, cj - r : cj + r + 1] * f).sum())
        out[:, :, 0, k] = f / resp
    return out


def _arc_weights(
    theta0: float, kappa0: float, phis: np.ndarray, cells: np.ndarray, beta: float, sigma: float
) -> np.ndarray:
    """``w[a, k]``: the arc template minus its mirror image (module docstring)."""
    ds = 2 * _ARC_REACH / _ARC_STEPS
    s = -_ARC_REACH + ds * (np.arange(_ARC_STEPS) + 0.5)
    tau = np.array([math.cos(theta0), math.sin(theta0)])
    nrm = np.array([-math.sin(theta0), math.cos(theta0)])
    if kappa0 > 0:
        along, across = np.sin(kappa0 * s) / kappa0, (1 - np.cos(kappa0 * s)) / kappa0
    else:
        along, across = s, 0.0 * s
    w = np.zeros((len(cells), len(phis)))
    for side in (1.0, -1.0):
        pts = along[:, None] * tau + side * across[:, None] * nrm  # (S, 2)
        tang = theta0 + side * kappa0 * s  # (S,)
        g = np.exp(-((cells[:, None, :] - pts[None]) ** 2).sum(-1) / (2 * sigma**2))  # (A, S)
        v = np.exp(beta * (np.cos(2 * (phis[:, None] - tang[None])) - 1))  # (K, S)
        w += side * ds * (g @ v.T)
    return w


def curve_circuit(
    family: Any,
    orientation: float,
    curvature: float,
    *,
    num_orientations: int = 12,
    beta: float = 6.0,
    line_threshold: float = 0.3,
    threshold: float = 0.25,
    across: float = 0.8,
    along: float = 1.5,
    cell_sigma: float = 1.0,
) -> CurveCircuit:
    """A handwritten curve detector for ``family`` (derivation: module docstring).

    ``orientation`` ``theta0`` (radians) and ``curvature`` ``kappa0`` (1/px, ``>= 0``)
    of the preferred curve; ``num_orientations`` line detectors tile ``[0, pi)`` (only
    those the arc uses are kept); ``beta``: the sharpness of the orientation match
    ``V``; ``line_threshold`` ``b_0`` (line detectors give 1 on a matched line);
    ``threshold``: ``b_1`` as a fraction of the pre-activation at the target curve;
    ``across``/``along``: ``s_u``/``s_t`` of the line templates (px); ``cell_sigma``:
    ``sigma_p`` (px). The network: ``conv_0`` 5x5 valid (K line detectors), 2x2
    average pool, ``conv_1`` 3x3 valid (one channel, the detector), and an identity
    read-out of its centre unit (``output:0``).
    """
    where = "curve_circuit"
    for attr in ("render", "image_shape", "PARAMS"):
        if not hasattr(family, attr):
            raise fail(where, "family", type(family).__name__, "a CurveImages family")
    theta0 = check_float(where, "orientation", orientation) % (2 * math.pi)
    kappa0 = check_float(where, "curvature", curvature, nonneg=True)
    num = check_int(where, "num_orientations", num_orientations, minimum=2)
    beta = check_float(where, "beta", beta, positive=True)
    b0 = check_float(where, "line_threshold", line_threshold, nonneg=True)
    frac = check_float(where, "threshold", threshold, minimum=0.0, maximum=1.0)
    s_u = check_float(where, "across", across, positive=True)
    s_t = check_float(where, "along", along, positive=True)
    sig = check_float(where, "cell_sigma", cell_sigma, positive=True)
    h, w = family.image_shape
    if min(h, w) < 10:
        raise fail(where, "family", family, "images of at least 10x10 pixels (the 10x10 field)")
    phis = np.arange(num) * math.pi / num
    # pool cell offsets (a, e) in 0..2 -> (dx, dy) relative to the receptive-field centre
    ai, ei = np.meshgrid(np.arange(3), np.arange(3), indexing="ij")
    cells = np.stack([2.0 * (ei - 1), -2.0 * (ai - 1)], -1).reshape(9, 2)
    warc = _arc_weights(theta0, kappa0, phis, cells, beta, sig)  # (9, K)
    keep = np.abs(warc).max(0) > _KEEP * np.abs(warc).max()
    phis, warc = phis[keep], warc[:, keep]
    k = len(phis)
    k0 = _line_filters(family, phis, 5, s_u, s_t)
    b0v = np.full(k, -b0)
    k1 = warc.reshape(3, 3, k)
    h0, w0 = h - 4, w - 4
    pool = AvgPool((h0, w0, k), 2)
    hp, wp, _ = pool.out_shape
    h1, w1 = hp - 2, wp - 2
    if h1 < 1 or w1 < 1:
        raise fail(where, "family", family, "images of at least 10x10 pixels")
    u = (h1 // 2, w1 // 2)
    readout = np.zeros((h1 * w1, 1))
    readout[u[0] * w1 + u[1], 0] = 1.0

    def build(bias1: float) -> Network:
        layers = (
            Conv(k0, b0v, (h, w, 1), padding="valid"),
            pool,
            Conv(k1[..., None], np.array([bias1]), (hp, wp, k), padding="valid"),
            Dense(readout, np.zeros(1)),
        )
        return Network(layers, ("relu", "identity", "relu", "identity"))

    # receptive-field centre of unit U: pixel row/col 2U + 4.5 -> family coordinates
    cx, cy = 2 * u[1] + 4.5, (h - 1) - (2 * u[0] + 4.5)
    target = np.array([theta0, kappa0, cx, cy])
    peak = float(build(0.0).values(np.asarray(family.render(target[None])), "conv_1.pre:0")[0])
    if not peak > 0:
        raise ToylabError(
            f"{where}: the construction gives no positive response to its own curve "
            f"(pre-activation {peak:g}) for orientation={orientation!r}, curvature="
            f"{curvature!r}; use curvature > 0 (a straight line excites the arc and its "
            "mirror image equally)."
        )
    bias1 = -frac * peak
    net = build(bias1)
    return CurveCircuit(
        name=f"curve_{math.degrees(theta0):.0f}deg_k{kappa0:g}",
        model=net, neuron="conv_1:0", orientation=theta0, curvature=kappa0,
        centre=(float(cx), float(cy)), line_orientations=phis, line_kernel=k0,
        line_bias=b0v, curve_kernel=k1, curve_bias=bias1, pool=2,
    )  # fmt: skip


# --------------------------------------------------------------------------- comparison


def _slice_points(family: Any, centre: tuple[float, float], n: int, seed: int) -> np.ndarray:
    """``n`` uniform points of the ``(theta, kappa)`` slice at ``centre`` (float64)."""
    rng = np.random.default_rng(seed)
    lo, hi = np.asarray(family.param_low, float), np.asarray(family.param_high, float)
    th = rng.uniform(lo[0], hi[0], n)
    ka = rng.uniform(lo[1], hi[1], n)
    return np.stack([th, ka, np.full(n, centre[0]), np.full(n, centre[1])], -1)


def _corr_ci(r: float, n: int, level: float = 0.95) -> tuple[float, float]:
    """Fisher-z confidence interval of a Pearson correlation of ``n`` iid pairs."""
    z = math.atanh(max(min(r, 1 - 1e-15), -1 + 1e-15))
    half = float(ndtri(0.5 + level / 2)) / math.sqrt(max(n - 3, 1))
    return math.tanh(z - half), math.tanh(z + half)


@dataclasses.dataclass(frozen=True, eq=False)
class CircuitComparison:
    """The circuit's tuning against a trained net's channels on the ``(theta, kappa)``
    slice at the circuit's receptive-field centre (``centre``).

    ``correlation[c]``: Pearson correlation, over ``num_samples`` uniform points of the
    slice, of the circuit's response (:attr:`CurveCircuit.neuron`) with channel ``c`` of
    ``layer`` at the same receptive field (``position``); ``interval[c]``: its 95%
    Fisher-z confidence interval (tier ``sampled``; ``error`` the largest half-width).
    ``best``: the channel with the largest correlation (the maximum of several
    sampled correlations is biased upward by the selection; ``best_interval`` is the
    interval of that channel alone). ``nan`` for a channel that is constant on the
    sample (dead).
    """

    neuron: str
    layer: str
    position: tuple[int, int]
    centre: tuple[float, float]
    correlation: np.ndarray
    interval: np.ndarray
    best: int
    best_correlation: float
    best_interval: tuple[float, float]
    num_samples: int
    error: float
    method: str
    tier: Tier = "sampled"


def compare_circuit(
    circuit: CurveCircuit,
    model: Any,
    family: Any,
    *,
    layer: str = "conv_1",
    position: Any = None,
    num_samples: int = 2000,
    seed: int = 0,
) -> CircuitComparison:
    """Correlate the circuit's tuning with every channel of ``layer`` in ``model``.

    ``position``: the ``(i, j)`` of the trained channels (default the centre of the
    feature map, the same receptive field as the circuit's for the geometry of the
    module docstring). Both respond to the same rendered images (the ``(theta,
    kappa)`` slice at ``circuit.centre``, ``num_samples`` uniform points, ``seed``). See
    :class:`CircuitComparison`.
    """
    where = "compare_circuit"
    n = check_int(where, "num_samples", num_samples, minimum=10)
    seed = check_int(where, "seed", seed, minimum=0)
    net = as_network(model, where).numpy(np.float64)
    shape = net.layer_shape(layer) if layer in net.layer_shapes else None
    if shape is None:
        raise fail(where, "layer", layer, f"a spatial layer of the model: {list(net.layer_shapes)}")
    hh, ww, cc = shape
    pos = (hh // 2, ww // 2) if position is None else tuple(int(v) for v in position)
    if len(pos) != 2 or not (0 <= pos[0] < hh and 0 <= pos[1] < ww):
        raise fail(where, "position", position, f"(i, j) inside the {hh}x{ww} feature map")
    p = _slice_points(family, circuit.centre, n, seed)
    x = np.asarray(family.render(p), np.float64)
    ref = np.asarray(circuit.model.values(x, circuit.neuron), np.float64)
    acts = np.asarray(net.forward(x)[layer], np.float64).reshape(n, hh, ww, cc)[:, pos[0], pos[1]]
    corr = np.full(cc, np.nan)
    ivs = np.full((cc, 2), np.nan)
    for c in range(cc):
        a = acts[:, c]
        if np.ptp(a) > 0 and np.ptp(ref) > 0:
            corr[c] = float(np.corrcoef(ref, a)[0, 1])
            ivs[c] = _corr_ci(corr[c], n)
    if np.all(np.isnan(corr)):
        raise ToylabError(f"{where}: every channel (or the circuit) is constant on the sample.")
    best = int(np.nanargmax(corr))
    half = np.nanmax(0.5 * (ivs[:, 1] - ivs[:, 0]))
    return CircuitComparison(
        neuron=circuit.neuron, layer=layer, position=(int(pos[0]), int(pos[1])),
        centre=circuit.centre, correlation=corr, interval=ivs, best=best,
        best_correlation=float(corr[best]), best_interval=(float(ivs[best, 0]),
                                                           float(ivs[best, 1])),
        num_samples=n, error=float(half),
        method=(
            f"Pearson correlation over {n} uniform (theta, kappa) points at centre "
            f"{circuit.centre} (seed {seed}); float64 forward passes; Fisher-z 95% CI"
        ),
    )  # fmt: skip


@dataclasses.dataclass(frozen=True, eq=False)
class CertifiedCorrelation:
    """A certified enclosure of the correlation of two orientation tuning curves.

    ``f`` is the circuit's response and ``g`` the trained channel's (``channel`` of
    ``layer`` at ``position``), both as functions of ``theta`` over ``[0, 2 pi]``
    (``kappa`` and the centre fixed: ``fixed`` is ``(kappa, cx, cy)``), with ``theta``
    uniform. Their Pearson correlation ``rho = Cov(f, g) / sqrt(Var f Var g)`` lies in
    ``[lower, upper]`` (tier ``certified``; ``value`` the midpoint, ``error`` the
    half-width): the two certified tunings (:func:`toylab.curves.tuning` on each unit's
    receptive field, :func:`toylab.curves.local_problem`) are put on their common
    refinement of ``[0, 2 pi]``; on each piece (width ``w_i``) the means of ``f``, ``g``,
    ``f g``, ``f^2``, ``g^2`` lie in the interval products of the pieces' enclosures, so
    ``E[f g]`` etc. lie in the ``w``-weighted sums, and interval arithmetic on ``Cov``
    and ``Var`` (padded by ``1e-12`` relative for the float64 sums) encloses ``rho``.
    This loses the dependence between ``E[f^2]`` and ``E[f]^2``: the enclosure is
    useful only when the tunings are tight (``max_width`` of each, reported).
    ``sampled``: the width-weighted correlation of the cell-centre values (a grid:
    no guarantee).
    """

    channel: int
    layer: str
    position: tuple[int, int]
    fixed: tuple[float, float, float]
    lower: float
    upper: float
    value: float
    sampled: float
    circuit_width: float
    channel_width: float
    num_pieces: int
    error: float
    method: str
    tier: Tier = "certified"


def _piece_bounds(res: Any, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Enclosures of a 1-D tuning on the pieces between consecutive ``edges``."""
    mid = 0.5 * (edges[:-1] + edges[1:])
    lo = res.cell_low[:, 0]
    hi = res.cell_high[:, 0]
    inside = (mid[:, None] >= lo[None]) & (mid[:, None] <= hi[None])
    a = np.where(inside, res.lower[None], -np.inf).max(1)
    b = np.where(inside, res.upper[None], np.inf).min(1)
    return a, b


def _imul(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> Any:
    p = np.stack([a[0] * b[0], a[0] * b[1], a[1] * b[0], a[1] * b[1]])
    return p.min(0), p.max(0)


def _isq(a: tuple[np.ndarray, np.ndarray]) -> Any:
    lo = np.where((a[0] <= 0) & (a[1] >= 0), 0.0, np.minimum(a[0] ** 2, a[1] ** 2))
    return lo, np.maximum(a[0] ** 2, a[1] ** 2)


def certified_correlation(
    circuit: CurveCircuit,
    model: Any,
    family: Any,
    channel: int,
    *,
    layer: str = "conv_1",
    position: Any = None,
    kappa: float | None = None,
    resolution: int = 72,
    tol: float = 0.01,
    max_boxes: int = 4_000,
) -> CertifiedCorrelation:
    """The certified correlation of the circuit's and a trained channel's theta tuning
    curves (see :class:`CertifiedCorrelation`). ``kappa``: default the circuit's;
    ``tol``: the enclosure width asked of both tunings, relative to each unit's largest
    response on the initial grid."""
    from toylab.curves.tuning import local_problem, tuning

    where = "certified_correlation"
    net = as_network(model, where).numpy(np.float64)
    if layer not in net.layer_shapes:
        raise fail(where, "layer", layer, f"a spatial layer of the model: {list(net.layer_shapes)}")
    hh, ww, cc = net.layer_shape(layer)
    channel = check_int(where, "channel", channel, minimum=0, maximum=cc - 1)
    pos = (hh // 2, ww // 2) if position is None else tuple(int(v) for v in position)
    ka = circuit.curvature if kappa is None else check_float(where, "kappa", kappa, nonneg=True)
    cx, cy = circuit.centre
    fixed = {"kappa": ka, "cx": cx, "cy": cy}
    tol = check_float(where, "tol", tol, positive=True)
    results = []
    for m, address in (
        (circuit.model, circuit.neuron),
        (net, f"{layer}:{channel}@{pos[0]},{pos[1]}"),
    ):
        lp = local_problem(m, family, address)
        coarse = tuning(lp.network, lp.family, lp.neuron, axes=("theta",), fixed=fixed,
                        resolution=(resolution,), tol=1e300, max_boxes=resolution)  # fmt: skip
        scale = float(np.max(np.abs(coarse.values))) or 1.0
        results.append(
            tuning(lp.network, lp.family, lp.neuron, axes=("theta",), fixed=fixed,
                   resolution=(resolution,), tol=tol * scale, max_boxes=max_boxes)
        )  # fmt: skip
    edges = np.unique(np.concatenate([np.concatenate([r.cell_low[:, 0], r.cell_high[:, 0]])
                                      for r in results]))  # fmt: skip
    w = np.diff(edges) / (edges[-1] - edges[0])
    f = _piece_bounds(results[0], edges)
    g = _piece_bounds(results[1], edges)

    def mean(iv: Any) -> tuple[float, float]:
        lo, hi = float(w @ iv[0]), float(w @ iv[1])
        pad = 1e-12 * (float(w @ np.abs(iv[0])) + float(w @ np.abs(iv[1])))
        return lo - pad, hi + pad

    ef, eg = mean(f), mean(g)
    efg, eff, egg = mean(_imul(f, g)), mean(_isq(f)), mean(_isq(g))
    pf = _imul((np.array([ef[0]]), np.array([ef[1]])), (np.array([eg[0]]), np.array([eg[1]])))
    sf = _isq((np.array([ef[0]]), np.array([ef[1]])))
    sg = _isq((np.array([eg[0]]), np.array([eg[1]])))
    cov = (efg[0] - float(pf[1][0]), efg[1] - float(pf[0][0]))
    vf = (max(eff[0] - float(sf[1][0]), 0.0), eff[1] - float(sf[0][0]))
    vg = (max(egg[0] - float(sg[1][0]), 0.0), egg[1] - float(sg[0][0]))
    if vf[1] <= 0 or vg[1] <= 0:
        raise ToylabError(f"{where}: a tuning curve is constant (zero variance): no correlation.")
    inv_hi = math.inf if vf[0] * vg[0] <= 0 else 1.0 / math.sqrt(vf[0] * vg[0])
    inv_lo = 1.0 / math.sqrt(vf[1] * vg[1])
    cands = [c * s for c in cov for s in (inv_lo, inv_hi) if not (c == 0 and math.isinf(s))]
    lower, upper = max(min(cands), -1.0), min(max(cands), 1.0)
    mids = []
    for r in results:  # the response at each piece's centre cell value (a grid, no bound)
        order = np.argsort(r.centres[:, 0])
        mids.append(np.interp(0.5 * (edges[:-1] + edges[1:]), r.centres[order, 0],
                              r.values[order]))  # fmt: skip
    da, db = mids[0] - w @ mids[0], mids[1] - w @ mids[1]
    sampled = float((w @ (da * db)) / math.sqrt((w @ da**2) * (w @ db**2)))
    return CertifiedCorrelation(
        channel=channel, layer=layer, position=(int(pos[0]), int(pos[1])),
        fixed=(float(ka), float(cx), float(cy)), lower=lower, upper=upper,
        value=0.5 * (lower + upper), sampled=sampled, circuit_width=results[0].max_width,
        channel_width=results[1].max_width, num_pieces=len(w), error=0.5 * (upper - lower),
        method=(
            "certified theta tunings of both units (receptive-field networks, CROWN bounds, "
            "bisection) on their common refinement; interval arithmetic on the moments"
        ),
    )  # fmt: skip


# --------------------------------------------------------------------------- transplant


@dataclasses.dataclass(frozen=True, eq=False)
class CurveTransplantResult:
    """Accuracy before and after writing the circuit into channel ``channel`` of ``conv_1``.

    ``model``: the edited network (``conv_0`` has the circuit's ``K`` line detectors as
    extra channels ``C0..C0+K-1``; channel ``channel`` of ``conv_1`` reads only them,
    with ``scale`` times the circuit's weights and bias; every other weight is the
    trained one, and the other ``conv_1`` channels read the new channels with weight
    0). ``ablated``: the same channel set to zero (kernel and bias 0: ``relu(0) = 0``
    at every position). Accuracies are on one fixed sample of ``num_samples`` images
    (``family.sample`` with ``seed``), each with a 95% Wilson interval; the changes
    ``effect = after - before`` and ``ablation_effect = ablated - before`` are paired
    differences on that sample with 95% intervals (normal approximation, the variance
    bounded by the Wilson upper bound of the fraction of images whose correctness
    changed). Tier ``sampled``; ``error`` = the half-width of ``effect``'s interval.
    """

    model: Network
    ablated: Network
    channel: int
    scale: float
    accuracy_before: float
    accuracy_after: float
    accuracy_ablated: float
    before_interval: tuple[float, float]
    after_interval: tuple[float, float]
    ablated_interval: tuple[float, float]
    effect: float
    effect_interval: tuple[float, float]
    ablation_effect: float
    ablation_interval: tuple[float, float]
    num_samples: int
    error: float
    method: str
    tier: Tier = "sampled"


def _wilson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    from toylab.methods._core import wilson

    return wilson(k, n, level)


def _paired(a: np.ndarray, b: np.ndarray) -> tuple[float, tuple[float, float]]:
    """Mean of ``b - a`` (0/1 correctness) and its 95% interval (see the result class)."""
    n = len(a)
    d = b.astype(np.int64) - a.astype(np.int64)
    diff = float(d.mean())
    disc = int(np.count_nonzero(d))
    p_hi = _wilson(disc, n)[1]
    half = float(ndtri(0.975)) * math.sqrt(p_hi / n)
    return diff, (diff - half, diff + half)


def _conv_layers(net: Network, where: str) -> tuple[int, int, int]:
    """Indices of conv_0, pool_0, conv_1 in a trained net of the circuit's shape."""
    try:
        i0, ip, i1 = (net.layer_index(k) for k in ("conv_0", "pool_0", "conv_1"))
    except ToylabError:
        raise fail(
            where, "model", repr(net), "a conv net with conv_0, pool_0 (average), conv_1"
        ) from None
    if not (i0 + 1 == ip and ip + 1 == i1 and isinstance(net.layers[ip], AvgPool)):
        raise fail(where, "model", repr(net), "conv_0 -> avg pool_0 -> conv_1 in sequence")
    return i0, ip, i1


def transplanted_network(
    model: Any, channel: int, circuit: CurveCircuit, *, scale: float = 1.0
) -> Network:
    """The exact edit of :func:`transplant` (see :class:`CurveTransplantResult`)."""
    where = "transplant"
    net = as_network(model, where).numpy(np.float64)
    i0, ip, i1 = _conv_layers(net, where)
    l0, lp, l1 = net.layers[i0], net.layers[ip], net.layers[i1]
    assert isinstance(l0, Conv) and isinstance(lp, AvgPool) and isinstance(l1, Conv)
    c1 = l1.kernel.shape[-1]
    channel = check_int(where, "channel", channel, minimum=0, maximum=c1 - 1)
    scale = check_float(where, "scale", scale, nonneg=True)
    if l0.window != circuit.line_kernel.shape[:2] or l1.window != circuit.curve_kernel.shape[:2]:
        raise fail(
            where, "model", repr(net),
            f"conv_0 {circuit.line_kernel.shape[:2]} and conv_1 "
            f"{circuit.curve_kernel.shape[:2]} kernels (the circuit's)",
        )  # fmt: skip
    if lp.window != (circuit.pool, circuit.pool) or lp.stride != lp.window:
        raise fail(where, "model", repr(net), f"a {circuit.pool}x{circuit.pool} average pool_0")
    if l0.stride != (1, 1) or l1.stride != (1, 1) or l0.in_shape[2] != 1:
        raise fail(where, "model", repr(net), "stride-1 convolutions over one-channel images")
    k = circuit.line_kernel.shape[-1]
    c0 = l0.kernel.shape[-1]
    kern0 = np.concatenate([l0.kernel, circuit.line_kernel], axis=-1)
    bias0 = np.concatenate([l0.bias, circuit.line_bias])
    new0 = dataclasses.replace(l0, kernel=kern0, bias=bias0)
    hh, ww, _ = lp.in_shape
    newp = AvgPool((hh, ww, c0 + k), lp.window, lp.stride)
    kern1 = np.concatenate([l1.kernel, np.zeros((*l1.window, k, c1))], axis=2)
    kern1[..., channel] = 0.0
    kern1[:, :, c0:, channel] = scale * circuit.curve_kernel
    bias1 = l1.bias.copy()
    bias1[channel] = scale * circuit.curve_bias
    new1 = Conv(kern1, bias1, (*lp.out_shape[:2], c0 + k), l1.stride, l1.padding)
    layers = list(net.layers)
    layers[i0], layers[ip], layers[i1] = new0, newp, new1
    return Network(tuple(layers), net.activations)


def transplant(
    model: Any,
    channel: int,
    circuit: CurveCircuit,
    family: Any,
    *,
    scale: float | None = None,
    num_samples: int = 20_000,
    seed: int = 0,
) -> CurveTransplantResult:
    """Replace ``conv_1`` channel ``channel`` of a trained net by the circuit; accuracy change.

    The circuit's ``conv_0`` line detectors are added to the trained ``conv_0`` as new
    channels (so nothing the other channels read changes: an exact construction, no
    fit), and the channel reads only them with the circuit's ``conv_1`` weights times
    ``scale`` (``relu`` is positively homogeneous: the channel becomes ``scale`` times
    the circuit's detector at every position). ``scale=None``: the least-squares
    ``scale = <a, t> / <a, a> >= 0`` of the trained channel's activations ``t`` by the
    circuit's ``a`` (at scale 1) over every position of every image of the sample, so the
    layers above see activations of the same size (``0`` when the two never fire
    together: the transplant is then the ablation). See :class:`CurveTransplantResult`.
    """
    where = "transplant"
    import jax

    n = check_int(where, "num_samples", num_samples, minimum=100)
    seed = check_int(where, "seed", seed, minimum=0)
    net = as_network(model, where).numpy(np.float64)
    if getattr(family, "num_classes", 0) < 2:
        raise fail(where, "family", family, "a classification task (orientation bins)")
    batch = family.sample(jax.random.key(seed), n)
    x = np.asarray(batch.x, np.float64)
    y = np.asarray(batch.y)
    i1 = _conv_layers(net, where)[2]
    key = "conv_1"
    c1 = net.layers[i1].kernel.shape[-1]  # type: ignore[union-attr]
    channel = check_int(where, "channel", channel, minimum=0, maximum=c1 - 1)
    base = net.forward(x)
    if scale is None:
        unit = transplanted_network(net, channel, circuit, scale=1.0)
        mine = np.asarray(unit.forward(x)[key])[..., channel::c1].ravel()
        theirs = np.asarray(base[key])[..., channel::c1].ravel()
        den = float(mine @ mine)
        scale = max(float(mine @ theirs) / den, 0.0) if den > 0 else 0.0
    edited = transplanted_network(net, channel, circuit, scale=scale)
    l1 = net.layers[i1]
    assert isinstance(l1, Conv)
    kz, bz = l1.kernel.copy(), l1.bias.copy()
    kz[..., channel] = 0.0
    bz[channel] = 0.0
    ablated = net.with_layer(i1, kernel=kz, bias=bz)
    outs = [base["output"], edited(x), ablated(x)]
    right = [np.argmax(np.asarray(o), -1) == y for o in outs]
    ks = [int(r.sum()) for r in right]
    eff, eff_iv = _paired(right[0], right[1])
    abl, abl_iv = _paired(right[0], right[2])
    return CurveTransplantResult(
        model=edited, ablated=ablated, channel=channel, scale=float(scale),
        accuracy_before=ks[0] / n, accuracy_after=ks[1] / n, accuracy_ablated=ks[2] / n,
        before_interval=_wilson(ks[0], n), after_interval=_wilson(ks[1], n),
        ablated_interval=_wilson(ks[2], n), effect=eff, effect_interval=eff_iv,
        ablation_effect=abl, ablation_interval=abl_iv, num_samples=n,
        error=0.5 * (eff_iv[1] - eff_iv[0]),
        method=(
            f"float64 forward passes on one sample of {n} images (family.sample, seed "
            f"{seed}); Wilson 95% intervals; paired differences with a normal 95% interval "
            "(variance bounded by the Wilson upper bound of the discordant fraction)"
        ),
    )  # fmt: skip
