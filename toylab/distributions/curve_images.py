r"""Analytic curve images: one blurred arc per image, a closed-form smooth function of
``(theta, kappa, cx, cy)``, with a certified enclosure over parameter boxes.

**Pixel coordinates.** Pixel ``(i, j)`` (row ``i`` from the top, column ``j``) has its
centre at ``(x, y) = (j, H - 1 - i)``: ``x`` to the right, ``y`` *up*, so angles turn
counter-clockwise in an image drawn with row 0 at the top (``imshow``'s default). The
flat index of pixel ``(i, j)`` is ``i * W + j`` (row-major). The image centre is
``((W - 1) / 2, (H - 1) / 2)``.

**The curve.** With ``c = (cx, cy)``, tangent ``tau = (cos theta, sin theta)`` and
left normal ``n = (-sin theta, cos theta)``, the curve is the arc of the circle through
``c`` with tangent ``tau`` at ``c``, curvature ``kappa >= 0`` bending to the left of
``tau`` (centre ``o = c + n / kappa``, radius ``R = 1 / kappa``), of arc length
``length`` centred at ``c``; at ``kappa = 0`` it is the segment ``c + s tau``,
``|s| <= length / 2``.

**Signed distance** (positive on the convex side). With ``q = p - c``, ``t = q . tau``,
``u = q . n``, the distance of ``p`` to the full circle is ``|p - o| - R = (|kappa q - n|
- 1) / kappa``. Multiplying by ``(|kappa q - n| + 1) / (|kappa q - n| + 1)`` and using
``|kappa q - n|^2 = kappa^2 |q|^2 - 2 kappa u + 1``::

    d = (kappa |q|^2 - 2 u) / (r + 1),    r = |kappa q - n| = sqrt((kappa t)^2 + (1 - kappa u)^2),

which has no ``1 / kappa`` and at ``kappa = 0`` is ``-u = -q . n``, the signed distance
to the line. ``d`` is exact Euclidean geometry for every ``kappa >= 0``.

**Arc length.** The arc-length coordinate of ``p`` is ``s = R phi`` with ``phi =
atan2(kappa t, 1 - kappa u)`` the angle at ``o`` between ``p`` and ``c`` (``|phi| <=
pi``, so the far side of the circle is at ``|s| = pi / kappa``, never inside the
window because ``kappa_max * length <= 4 < 2 pi``). For ``kappa <= KAPPA_SERIES`` the
renderer uses ``s = (t / b)(1 - (kappa t / b)^2 / 3)``, ``b = 1 - kappa u`` (the series of
``atan(z) / z``; its truncation error ``z^4 / 5 < 1e-22`` relative is below float64
rounding), which is ``t`` at ``kappa = 0``. At ``o`` itself ``phi`` is undefined and
``s = pi / kappa`` is used (the stroke there is ``P_{width/2}(R)``, ``4e-11`` for the
defaults, where ``R >= 4``).

**Intensity.** ``P_h(x) = Phi((h - |x|) / sigma) - Phi((-h - |x|) / sigma)`` is the
Gaussian blur (std ``sigma = psf``) of the indicator of ``[-h, h]``, evaluated at
``x``; it is even, in ``[0, 1]`` and decreasing in ``|x|``. The image at pixel centre
``p`` is::

    stroke = P_{width/2}(d) * P_{length/2}(s)         (band across, window along the arc)
    F      = Phi(-d / sigma)                          (blurred concave side)
    ink    = stroke + fill * F * (1 - stroke)         ("over" compositing, in [0, 1])
    pixel  = 1/2 + polarity * contrast * (ink - 1/2)

So ``polarity = +1`` draws a bright curve (``1/2 + contrast/2``) on a dark background
(``1/2 - contrast/2``) and ``-1`` the reverse. The fill covers the *whole* concave side
(the disc bounded by the full circle; a half-plane on the left of ``tau`` for a line),
not only the part beside the arc: it is smooth everywhere. Pixels are point samples of
the blurred picture at their centres (no box integration over the pixel).

For a straight segment (``kappa = 0``) the ideal picture is the rectangle ``|u| <=
width / 2, |t| <= length / 2`` and the isotropic Gaussian factorises along ``(t, u)``,
so ``stroke`` is *exactly* the blurred rectangle. For ``kappa > 0`` the ideal picture
is the annular sector ``| |p - o| - R | <= width / 2``, ``|phi| <= kappa length / 2``; the
closed form blurs across and along it separately, which misses the first-order
curvature correction of a blurred curved edge (``~ kappa sigma x phi(x) / 2`` per edge,
``<= 0.12 kappa sigma``) and the ``R / (R + d)`` stretch of the window across the
stroke (``O(kappa width)`` near the ends). ``tests/test_curve_images.py`` checks both
against an independent Gauss--Legendre quadrature of the Gaussian over the ideal
shape.

**Certified bounds.** :meth:`CurveImages.render_bounds` evaluates the same formula in
interval arithmetic: every ``+ - * / sqrt`` endpoint is moved outward by ``|x| 2^-51 +
1e-300`` (at least one ulp after rounding; IEEE operations are correctly rounded);
``cos``/``sin`` endpoints are widened by ``4e-16`` and ``atan2`` by ``1e-15`` absolute,
``atan(z) / z`` by ``1e-15`` relative (glibc's ``sin``, ``cos``, ``atan``, ``atan2`` are
accurate to 1 ulp), ``Phi`` by ``1e-14`` relative plus ``4e-16`` absolute (scipy's
``ndtr``, Cephes, to a few ulps). The monotone pieces are exact: ``P_h`` is decreasing
in ``|x|``, ``Phi`` increasing, ``ink`` increasing in ``stroke`` and ``F``. ``d`` is
also enclosed a second way and the two intersected: it is 1-Lipschitz in ``c`` (the
signed distance to a circle that moves with ``c``) and nondecreasing in ``kappa``
(``dd/dkappa = t^2 / (r (r + b)) >= 0``, ``b = 1 - kappa u``; continuous where ``r + b =
0``), so it is evaluated at the box's middle ``c`` and both ends of ``kappa`` and widened
by the box's reach in ``c``. ``|s|`` is enclosed two ways, intersected:
``atan2(y, x)`` on ``y >= 0`` is decreasing in ``x`` and monotone in ``y`` for each
``x``, so its range over a box is at its corners (``[0, pi]`` if the box holds the
origin), divided by the ``kappa`` interval; and where ``b > 0``, ``|s| = X atanc(kappa
X)``, ``X = |t| / b``, ``atanc(z) = atan(z) / z`` decreasing on ``z >= 0`` (no division by
``kappa``, so boxes with ``kappa = 0`` are fine). The result encloses the *real-valued*
formula; a final absolute pad of ``64 eps (1 + Q) / sigma``, ``Q = |q| (1 + kappa |q|)``
maximised over the box, also covers the rounding error of the float64 NumPy renderer
itself (its intermediates ``d`` and ``s`` carry ~20 roundings of quantities ``<= Q``,
amplified at most ``2 / (sigma sqrt(2 pi))`` by the profiles; within ``|kappa q - n| <
1e-4`` of the circle's centre, where the renderer's angle is ill-conditioned, the
window is taken as ``[0, 1]``), so ``lo <= render(P) <= hi`` holds for the computed
float64 values too. (A float32 JAX render differs from float64 by ~1e-6: not covered.)
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from scipy import special, stats

from toylab._errors import NotApplicable, fail
from toylab._validate import check_array, check_choice, check_float, check_int
from toylab.distributions._numerics import DOMAIN_OUTSIDE_MASS, jit_sample
from toylab.distributions.base import AbstractDistribution, Batch, BayesResult, Box

__all__ = ["KAPPA_SERIES", "TASKS", "CurveImages"]

TASKS = ("orientation", "line_vs_curve", "regression")
#: Below this curvature (1/pixel) the arc length uses the series of ``atan(z) / z``.
KAPPA_SERIES = 1e-7
_TWO_PI = 2.0 * math.pi
_EPS = float(np.finfo(np.float64).eps)
_DEFAULT_KAPPA_MAX = 0.25
_MAX_ARC_ANGLE = 4.0  # kappa_max * length: the arc never closes (< 2 pi)


def _is_jax(x: Any) -> bool:
    return isinstance(x, jax.Array)


@dataclasses.dataclass(frozen=True)
class CurveImages(AbstractDistribution):
    r"""Images of one blurred curve (arc or segment) each; see the module docstring
    for the rendering formula, the pixel convention and the certified bounds.

    Generative process (``Batch.latent`` is ``(n, 4)`` in the order :attr:`PARAMS`)::

        theta ~ U[0, 2 pi),
        kappa = 0 with probability line_fraction, else kappa ~ U[kappa_min, kappa_max],
        (cx, cy) ~ U[centre - jitter, centre + jitter]^2,   centre = ((W-1)/2, (H-1)/2),
        x = render(theta, kappa, cx, cy) + noise * eps,     eps ~ N(0, I_{H W}).

    Tasks (``y``):

    * ``"orientation"``: ``y = round(theta / (2 pi / num_bins)) mod num_bins`` (bins
      centred on ``k * 2 pi / num_bins``), int32;
    * ``"line_vs_curve"``: ``y = 1`` if ``kappa > 0`` (curve) else ``0`` (line), int32;
      ``line_fraction`` defaults to ``1/2`` for this task (``0`` otherwise);
    * ``"regression"``: ``y = (cos theta, sin theta)``, float (``num_classes = 0``,
      ``output_dim = 2``).

    Fields: ``size`` (``H = W``), ``width`` (stroke width, pixels), ``length`` (arc
    length, default ``size - 3``), ``psf`` (std of the Gaussian point-spread, pixels,
    ``>= 0.05``), ``polarity`` (``+1`` bright on dark, ``-1`` dark on bright),
    ``contrast`` (in ``(0, 1]``), ``fill`` (in ``[0, 1]``: intensity of the concave
    side), ``noise`` (pixel noise std), ``kappa_min``/``kappa_max`` (1/pixel; default
    ``kappa_max = min(0.25, 4 / length, 1 / width)``; ``kappa_max * length <= 4`` so an arc never
    closes, and ``kappa_max <= 1 / width`` so its radius is at least the stroke width),
    ``jitter`` (centre offset range, pixels).

    **No density over pixels.** The noiseless images lie on a 4-parameter surface in
    ``R^{H W}``: :meth:`log_prob`, :meth:`posterior` and :meth:`class_log_joint` raise
    :class:`~toylab.NotApplicable`. What conformance checks instead (tests): ``x`` is
    ``render(latent)`` (plus Gaussian noise of std ``noise``, a chi-square test on the
    residuals), ``y = label(latent)``, the latents follow the stated law (KS tests),
    determinism per key, and ``render_bounds`` encloses ``render``.

    ``domain`` is the box ``[1/2 - contrast/2 - z noise, 1/2 + contrast/2 + z noise]^{H
    W}``: every noiseless pixel is in the inner interval, and ``z`` is chosen so that the
    noise leaves the box with probability at most ``1e-9`` (a union bound over pixels):
    ``outside_mass``.
    """

    size: int = 16
    task: str = "orientation"
    num_bins: int = 8
    kappa_min: float = 0.0
    kappa_max: float | None = None
    line_fraction: float | None = None
    jitter: float = 1.0
    width: float = 1.5
    length: float | None = None
    psf: float = 0.5
    polarity: float = 1.0
    contrast: float = 1.0
    fill: float = 0.0
    noise: float = 0.0

    kind: ClassVar[str] = "image"
    PARAMS: ClassVar[tuple[str, ...]] = ("theta", "kappa", "cx", "cy")

    def __post_init__(self) -> None:
        where = "CurveImages"
        size = check_int(where, "size", self.size, minimum=4, maximum=256)
        task = check_choice(where, "task", self.task, TASKS)
        bins = check_int(where, "num_bins", self.num_bins, minimum=2)
        width = check_float(where, "width", self.width, positive=True)
        length = check_float(
            where, "length", size - 3.0 if self.length is None else self.length, positive=True
        )
        psf = check_float(where, "psf", self.psf, minimum=0.05)
        kmin = check_float(where, "kappa_min", self.kappa_min, nonneg=True)
        kmax_default = min(_DEFAULT_KAPPA_MAX, _MAX_ARC_ANGLE / length, 1.0 / width)
        kmax = check_float(
            where, "kappa_max", kmax_default if self.kappa_max is None else self.kappa_max,
            nonneg=True,
        )  # fmt: skip
        if kmax < kmin:
            raise fail(
                where, "kappa_max", kmax, f">= kappa_min = {kmin}",
                "kappa is drawn from U[kappa_min, kappa_max]; raise kappa_max or lower "
                "kappa_min.",
            )  # fmt: skip
        if kmax * length > _MAX_ARC_ANGLE:
            raise fail(
                where, "kappa_max", kmax, f"<= {_MAX_ARC_ANGLE} / length = "
                f"{_MAX_ARC_ANGLE / length:.6g}",
                "An arc of length `length` subtends kappa * length radians; keep it below 4 "
                "so it never closes on itself (or shorten length).",
            )  # fmt: skip
        if kmax > 1.0 / width:
            raise fail(
                where, "kappa_max", kmax, f"<= 1 / width = {1.0 / width:.6g}",
                "The radius 1/kappa must be at least the stroke width.",
            )  # fmt: skip
        default_lines = 0.5 if task == "line_vs_curve" else 0.0
        lines = check_float(
            where, "line_fraction", default_lines if self.line_fraction is None
            else self.line_fraction, minimum=0.0, maximum=1.0,
        )  # fmt: skip
        if task == "line_vs_curve" and not 0.0 < lines < 1.0:
            raise fail(
                where, "line_fraction", lines, "in (0, 1) for task='line_vs_curve'",
                "Both lines (kappa = 0) and curves must occur; e.g. line_fraction = 0.5.",
            )  # fmt: skip
        if task == "line_vs_curve" and kmax <= 0.0:
            raise fail(where, "kappa_max", kmax, "> 0 for task='line_vs_curve'")
        if lines == 1.0:
            raise fail(where, "line_fraction", lines, "< 1", "Some images must be curves.")
        polarity = check_float(where, "polarity", self.polarity)
        if polarity not in (1.0, -1.0):
            raise fail(
                where, "polarity", self.polarity, "+1 or -1",
                "+1 draws a bright curve on a dark background, -1 a dark curve on bright.",
            )  # fmt: skip
        contrast = check_float(where, "contrast", self.contrast, positive=True, maximum=1.0)
        fill = check_float(where, "fill", self.fill, minimum=0.0, maximum=1.0)
        noise = check_float(where, "noise", self.noise, nonneg=True)
        jitter = check_float(where, "jitter", self.jitter, nonneg=True)
        values = dict(
            size=size, task=task, num_bins=bins, kappa_min=kmin, kappa_max=kmax,
            line_fraction=lines, jitter=jitter, width=width, length=length, psf=psf,
            polarity=polarity, contrast=contrast, fill=fill, noise=noise,
        )  # fmt: skip
        for name, value in values.items():
            object.__setattr__(self, name, value)

    # ------------------------------------------------------------------ shape

    @property
    def image_shape(self) -> tuple[int, int]:
        """``(H, W)``."""
        return (self.size, self.size)

    @property
    def dim(self) -> int:
        return self.size * self.size

    @property
    def num_classes(self) -> int:
        return {"orientation": self.num_bins, "line_vs_curve": 2, "regression": 0}[self.task]

    @property
    def output_dim(self) -> int:
        """Network outputs: the classes, or 2 for the ``(cos, sin)`` regression."""
        return 2 if self.task == "regression" else self.num_classes

    @property
    def _length(self) -> Any:
        """``length`` (set by the constructor; a float, or a traced array in a sweep)."""
        return self.length

    @property
    def centre(self) -> tuple[float, float]:
        """The image centre ``((W - 1) / 2, (H - 1) / 2)`` in pixel coordinates."""
        return ((self.size - 1) / 2.0, (self.size - 1) / 2.0)

    @property
    def param_low(self) -> np.ndarray:
        """Lower ends of the family's ranges, in the order :attr:`PARAMS` (float64)."""
        cx, cy = self.centre
        kmin = 0.0 if self.line_fraction else self.kappa_min
        return np.array([0.0, kmin, cx - self.jitter, cy - self.jitter], np.float64)

    @property
    def param_high(self) -> np.ndarray:
        """Upper ends (``theta``'s is ``2 pi``, excluded by sampling)."""
        cx, cy = self.centre
        return np.array([_TWO_PI, self.kappa_max, cx + self.jitter, cy + self.jitter], np.float64)

    def pixel_xy(self) -> np.ndarray:
        """Pixel centres ``(x, y) = (j, H - 1 - i)`` in flat order, shape ``(H W, 2)``."""
        h, w = self.image_shape
        i, j = np.divmod(np.arange(h * w), w)
        return np.stack([j, h - 1 - i], axis=-1).astype(np.float64)

    @property
    def domain(self) -> Box:
        half = self.contrast / 2.0 + self._z() * self.noise
        return Box((0.5 - half,) * self.dim, (0.5 + half,) * self.dim)

    def _z(self) -> float:
        if self.noise == 0:
            return 0.0
        return float(stats.norm.isf(DOMAIN_OUTSIDE_MASS / (2.0 * self.dim)))

    @property
    def outside_mass(self) -> float:
        return 0.0 if self.noise == 0 else DOMAIN_OUTSIDE_MASS

    # ------------------------------------------------------------------ rendering

    def render(self, params: Any) -> Any:
        """Images ``(..., H W)`` of the curves ``params`` ``(..., 4)`` (see the module
        docstring). NumPy in: float64 NumPy out; JAX in: JAX out (in the input's float
        dtype), differentiable in ``params`` (finite gradients everywhere)."""
        if _is_jax(params):
            pj = jnp.asarray(params)
            if not jnp.issubdtype(pj.dtype, jnp.floating):
                pj = pj.astype(jnp.float32)
            return self._render(pj, jnp, jax.scipy.special.ndtr)
        p = check_array("CurveImages.render", "params", params)
        if p.shape[-1:] != (4,):
            raise fail(
                "CurveImages.render", "params", f"an array of shape {p.shape}",
                "of shape (..., 4) (theta, kappa, cx, cy)",
            )  # fmt: skip
        if np.any(p[..., 1] < 0):
            raise fail("CurveImages.render", "kappa", float(p[..., 1].min()), ">= 0")
        with np.errstate(divide="ignore", invalid="ignore"):
            return self._render(p, np, special.ndtr)

    def _render(self, p: Any, xp: Any, ndtr: Any) -> Any:
        xy = self.pixel_xy()
        px = xp.asarray(xy[:, 0], dtype=p.dtype)
        py = xp.asarray(xy[:, 1], dtype=p.dtype)
        th, ka, cx, cy = (p[..., k : k + 1] for k in range(4))
        dx, dy = px - cx, py - cy
        cos, sin = xp.cos(th), xp.sin(th)
        t = dx * cos + dy * sin
        u = dy * cos - dx * sin
        a = ka * t
        b = 1.0 - ka * u
        r2 = a * a + b * b
        r = xp.sqrt(xp.where(r2 > 0, r2, 1.0)) * (r2 > 0)
        d = (ka * (dx * dx + dy * dy) - 2.0 * u) / (r + 1.0)
        big = ka > KAPPA_SERIES
        at_o = big & (r2 == 0)
        phi = xp.arctan2(xp.where(at_o, 0.0, a), xp.where(at_o, -1.0, b))
        s_big = phi / xp.where(big, ka, 1.0)
        bs = xp.where(big, 1.0, b)
        z = ka * t / bs
        s_small = t / bs * (1.0 - z * z / 3.0)
        s = xp.where(big, s_big, s_small)
        sig = self.psf
        stroke = _profile(d, self.width / 2.0, sig, xp, ndtr) * _profile(
            s, self._length / 2.0, sig, xp, ndtr
        )
        ink = stroke + self.fill * ndtr(-d / sig) * (1.0 - stroke)
        return 0.5 + self.polarity * self.contrast * (ink - 0.5)

    def render_bounds(self, low: Any, high: Any) -> tuple[np.ndarray, np.ndarray]:
        """A certified enclosure ``(lo, hi)``, each ``(..., H W)`` float64, of every
        pixel of :meth:`render` over the parameter boxes ``[low, high]`` (``(..., 4)``
        each, broadcast together): ``lo <= render(P) <= hi`` for every ``P`` in the box
        (see the module docstring for the interval arithmetic and its rounding pads).
        ``theta`` may be any real interval (it is not reduced mod ``2 pi``); ``kappa``
        must be ``>= 0``. The width shrinks linearly with the box side."""
        where = "CurveImages.render_bounds"
        lo = check_array(where, "low", low)
        hi = check_array(where, "high", high)
        if lo.shape[-1:] != (4,) or hi.shape[-1:] != (4,):
            raise fail(where, "low/high", f"shapes {lo.shape}, {hi.shape}", "(..., 4) each")
        lo, hi = np.broadcast_arrays(lo, hi)
        if np.any(lo > hi):
            raise fail(where, "low", "a box with low > high", "<= high in every coordinate")
        if np.any(lo[..., 1] < 0):
            raise fail(where, "low[..., 1] (kappa)", float(lo[..., 1].min()), ">= 0")
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return self._bounds(lo[..., None, :], hi[..., None, :])

    def _bounds(self, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        xy = self.pixel_xy()
        th = (lo[..., 0], hi[..., 0])
        ka = (lo[..., 1], hi[..., 1])
        dx = _sub((xy[:, 0], xy[:, 0]), (lo[..., 2], hi[..., 2]))
        dy = _sub((xy[:, 1], xy[:, 1]), (lo[..., 3], hi[..., 3]))
        cos, sin = _cos(th), _cos(_sub(th, (np.pi / 2, np.pi / 2)))
        t, b, r, d = _distance(dx, dy, cos, sin, ka)
        # tighter: d is 1-Lipschitz in c (a signed distance to a curve that moves with c)
        # and nondecreasing in kappa (dd/dkappa = t^2 / (r (r + b)) >= 0): evaluate at the
        # box's middle c and at both ends of kappa, then widen by |c - c_mid|
        mid = 0.5 * (lo[..., 2:] + hi[..., 2:])  # a point of the box (rounding is harmless)
        half = np.maximum(mid - lo[..., 2:], hi[..., 2:] - mid)
        reach = _up(np.sqrt(_up(_up(half[..., 0] ** 2) + _up(half[..., 1] ** 2))))
        dxm = _sub((xy[:, 0], xy[:, 0]), (mid[..., 0], mid[..., 0]))
        dym = _sub((xy[:, 1], xy[:, 1]), (mid[..., 1], mid[..., 1]))
        d_at_lo = _distance(dxm, dym, cos, sin, (ka[0], ka[0]))[3]
        d_at_hi = _distance(dxm, dym, cos, sin, (ka[1], ka[1]))[3]
        d = (
            np.maximum(d[0], _dn(d_at_lo[0] - reach)),
            np.minimum(d[1], _up(d_at_hi[1] + reach)),
        )
        sig = self.psf
        band = _profile_bounds(_abs(d), self.width / 2.0, sig)
        window = _profile_bounds(_abs_s(t, ka, b), self._length / 2.0, sig)
        # within r < 1e-4 of the circle's centre o the renderer's angle atan2(a, b) is
        # ill-conditioned (its rounding errors over r): allow the whole window range there
        # (the stroke is tiny: d ~ -R)
        near_o = r[0] < 1e-4
        window = (np.where(near_o, 0.0, window[0]), np.where(near_o, 1.0, window[1]))
        stroke = (_dn(band[0] * window[0]), _up(band[1] * window[1]))
        fill_lo = _ndtr(_dn(-d[1] / sig))[0]
        fill_hi = _ndtr(_up(-d[0] / sig))[1]
        f = self.fill
        ink_lo = _dn(stroke[0] + _dn(_dn(f * fill_lo) * _dn(1.0 - stroke[0])))
        ink_hi = _up(stroke[1] + _up(_up(f * fill_hi) * _up(1.0 - stroke[1])))
        ink_lo, ink_hi = np.clip(ink_lo, 0.0, 1.0), np.clip(ink_hi, 0.0, 1.0)
        g = self.polarity * self.contrast
        ends = (0.5 + g * (ink_lo - 0.5), 0.5 + g * (ink_hi - 0.5))
        # the float64 renderer's own rounding: ~20 roundings of quantities <= Q = |q| (1 +
        # kappa |q|), amplified at most 2 / (sigma sqrt(2 pi)) by the profiles
        qmax = _abs(dx)[1] + _abs(dy)[1]
        pad = 64.0 * _EPS * (1.0 + qmax * (1.0 + ka[1] * qmax)) / sig
        out_lo = np.minimum(*ends) - pad
        out_hi = np.maximum(*ends) + pad
        return out_lo, out_hi

    # ------------------------------------------------------------------ labels, sampling

    def label(self, params: Any) -> Any:
        """The target of each parameter vector ``(..., 4)``: int32 class ``(...)`` or the
        regression target ``(..., 2)`` (NumPy in, NumPy out; JAX in, JAX out)."""
        xp = jnp if _is_jax(params) else np
        p = xp.asarray(params)
        th, ka = p[..., 0], p[..., 1]
        if self.task == "regression":
            return xp.stack([xp.cos(th), xp.sin(th)], axis=-1)
        if self.task == "line_vs_curve":
            return (ka > 0).astype(xp.int32)
        k = self.num_bins
        return (xp.floor(th * (k / _TWO_PI) + 0.5).astype(xp.int32) % k).astype(xp.int32)

    @jit_sample
    def sample(self, key: Any, num_samples: int, *, dtype: Any = jnp.float32) -> Batch:
        n = num_samples
        k_th, k_ka, k_line, k_c, k_noise = jax.random.split(key, 5)
        theta = jax.random.uniform(k_th, (n,), jnp.float32, 0.0, _TWO_PI)
        # U[0, 2 pi) in float32 may round up to 2 pi: fold it back
        theta = jnp.where(theta >= _TWO_PI, 0.0, theta)
        kmax: Any = self.kappa_max
        kappa = self.kappa_min + (kmax - self.kappa_min) * jax.random.uniform(
            k_ka, (n,), jnp.float32
        )
        # kappa = 0 with probability line_fraction (never when it is 0: U[0, 1) < 0)
        lines: Any = self.line_fraction
        line = jax.random.uniform(k_line, (n,), jnp.float32) < lines
        kappa = jnp.where(line, 0.0, kappa)
        centre = jnp.asarray(self.centre, jnp.float32)
        c = centre + self.jitter * jax.random.uniform(k_c, (n, 2), jnp.float32, -1.0, 1.0)
        latent = jnp.concatenate([theta[:, None], kappa[:, None], c], axis=-1).astype(jnp.float32)
        x = self._render(latent, jnp, jax.scipy.special.ndtr)
        x = x + self.noise * jax.random.normal(k_noise, x.shape, jnp.float32)
        y = self.label(latent)
        if self.task == "regression":
            y = y.astype(dtype)
        return Batch(x=x.astype(dtype), y=y, latent=latent)

    # ------------------------------------------------------------------ no density

    def log_prob(self, x: Any) -> np.ndarray:
        raise NotApplicable(
            "CurveImages.log_prob: curve images have no density over pixels (the noiseless "
            "images lie on a 4-parameter surface in R^{H W}). Work with the latent parameters "
            "(render, render_bounds, label) instead."
        )

    def posterior(self, x: Any) -> np.ndarray:
        raise NotApplicable(
            "CurveImages.posterior: no class posterior over pixels is computed (there is no "
            "density over pixels). Use label(latent) for the ground truth of a sample."
        )

    def class_log_joint(self, x: Any) -> np.ndarray:
        raise NotApplicable(
            "CurveImages.class_log_joint: curve images have no density over pixels."
        )

    def bayes(self) -> BayesResult:
        r"""The Bayes-optimal accuracy, for noiseless classification tasks only.

        The label is a function of the latent, so the Bayes accuracy given the latent
        is 1; the image is a function of the latent, so the Bayes accuracy given the
        image is at most that, with equality when label-distinct latents give distinct
        images almost surely. One exact symmetry breaks that: with ``fill = 0``, a line
        (``kappa = 0``) at ``theta`` and at ``theta + pi`` gives the same image (``d``
        and ``s`` change sign, the profiles are even), and the two orientations are
        equally likely and fall in different bins (bins are ``2 pi / num_bins <= pi``
        wide and centred), so on lines no classifier beats 1/2: for the orientation task
        the accuracy is ``1 - line_fraction / 2`` (``1`` when lines have probability 0).
        For ``line_vs_curve`` the ambiguity of a line's direction does not matter: 1.

        That no *other* coincidence of noiseless images occurs on a set of positive
        probability is not proven (the pixels are analytic in the parameters, so a
        coincidence of all ``H W`` pixels is a non-generic event; the tests check random
        pairs), hence tier ``"estimated"`` with ``error = 0``. With ``noise > 0`` there
        is no closed form: :class:`~toylab.NotApplicable`.
        """
        if self.task == "regression":
            raise NotApplicable(
                "CurveImages.bayes: the regression task (cos theta, sin theta) has no "
                "accuracy; there is no Bayes accuracy to report."
            )
        if self.noise > 0:
            raise NotApplicable(
                f"CurveImages.bayes: with pixel noise (noise={self.noise}) the Bayes accuracy "
                "has no closed form here (no density over pixels is computed). Use noise = 0 "
                "for a known Bayes accuracy."
            )
        ambiguous = self.task == "orientation" and self.fill == 0.0
        acc = 1.0 - self.line_fraction / 2.0 if ambiguous else 1.0  # type: ignore[operator]
        return BayesResult(
            accuracy=acc,
            error=0.0,
            tier="estimated",
            method=(
                "noiseless images: the label is a function of the latent; "
                + (
                    "lines (probability line_fraction) look the same at theta and theta + pi, "
                    "so half of them are misclassified; "
                    if ambiguous and self.line_fraction
                    else ""
                )
                + "assumes no other label-distinct latents render identically (not proven)"
            ),
        )


# --------------------------------------------------------------------------- profiles


def _profile(x: Any, half: Any, sigma: Any, xp: Any, ndtr: Any) -> Any:
    """``P_h(x) = Phi((h - |x|) / sigma) - Phi((-h - |x|) / sigma)``: the Gaussian blur of
    the indicator of ``[-h, h]`` at ``x`` (written at ``|x|`` so that the first term
    carries the tail accurately)."""
    ax = xp.abs(x)
    return ndtr((half - ax) / sigma) - ndtr((-half - ax) / sigma)


# --------------------------------------------------------------------------- intervals
# An interval is a pair (lo, hi) of broadcastable float64 arrays (or floats).

Iv = tuple[Any, Any]


_ULP2 = 2.0**-51  # |x| 2^-51 >= 2 ulp(x) for normal x
_TINY = 1e-300  # covers zeros and subnormals


def _dn(x: Any) -> Any:
    """A float ``<`` every real within half an ulp of finite ``x`` (a correctly rounded
    result lies within half an ulp of the exact one): ``x - (|x| 2^-51 + 1e-300)`` is below
    ``x`` by at least 2 ulps before rounding, 1.5 after. Cheaper than ``np.nextafter``."""
    return x - (np.abs(x) * _ULP2 + _TINY)


def _up(x: Any) -> Any:
    """The upward twin of :func:`_dn` (``+inf`` stays ``+inf``)."""
    return x + (np.abs(x) * _ULP2 + _TINY)


def _add(a: Iv, b: Iv) -> Iv:
    return _dn(a[0] + b[0]), _up(a[1] + b[1])


def _sub(a: Iv, b: Iv) -> Iv:
    return _dn(a[0] - b[1]), _up(a[1] - b[0])


def _mul(a: Iv, b: Iv) -> Iv:
    p = (a[0] * b[0], a[0] * b[1], a[1] * b[0], a[1] * b[1])
    return _dn(np.minimum(np.minimum(p[0], p[1]), np.minimum(p[2], p[3]))), _up(
        np.maximum(np.maximum(p[0], p[1]), np.maximum(p[2], p[3]))
    )


def _sq(a: Iv) -> Iv:
    lo2, hi2 = a[0] * a[0], a[1] * a[1]
    straddle = (a[0] < 0) & (a[1] > 0)
    low = np.where(straddle, 0.0, np.minimum(lo2, hi2))
    return np.maximum(_dn(low), 0.0), _up(np.maximum(lo2, hi2))


def _abs(a: Iv) -> Iv:
    lo = np.where(a[0] > 0, a[0], np.where(a[1] < 0, -a[1], 0.0))
    return lo, np.maximum(np.abs(a[0]), np.abs(a[1]))


def _sqrt(a: Iv) -> Iv:
    return np.maximum(_dn(np.sqrt(np.maximum(a[0], 0.0))), 0.0), _up(np.sqrt(a[1]))


def _div_pos(a: Iv, b: Iv) -> Iv:
    """``a / b`` for ``b > 0``."""
    q = (a[0] / b[0], a[0] / b[1], a[1] / b[0], a[1] / b[1])
    return _dn(np.minimum(np.minimum(q[0], q[1]), np.minimum(q[2], q[3]))), _up(
        np.maximum(np.maximum(q[0], q[1]), np.maximum(q[2], q[3]))
    )


def _distance(dx: Iv, dy: Iv, cos: Iv, sin: Iv, ka: Iv) -> tuple[Iv, Iv, Iv, Iv]:
    """Intervals of ``t``, ``b = 1 - kappa u``, ``r = |kappa q - n|`` and the signed
    distance ``d`` (the module docstring's formulas, in interval arithmetic)."""
    t = _add(_mul(dx, cos), _mul(dy, sin))
    u = _sub(_mul(dy, cos), _mul(dx, sin))
    a = _mul(ka, t)
    b = _sub((1.0, 1.0), _mul(ka, u))
    r = _sqrt(_add(_sq(a), _sq(b)))
    num = _sub(_mul(ka, _add(_sq(dx), _sq(dy))), _mul((2.0, 2.0), u))
    return t, b, r, _div_pos(num, _add(r, (1.0, 1.0)))


_TRIG_PAD = 4e-16  # absolute: glibc sin/cos are within 1 ulp (<= 2.2e-16 on [-1, 1])
_ANGLE_PAD = 1e-15  # absolute: atan/atan2 within 1 ulp (<= 4.4e-16 on [0, pi])


def _cos(a: Iv) -> Iv:
    """Range of ``cos`` over ``[a0, a1]``: the endpoint values, and +-1 when a multiple
    of ``pi`` lies in the interval (tested on an interval widened by ``1e-9`` relative
    so that rounding in the test only ever widens the enclosure)."""
    lo_x, hi_x = np.asarray(a[0], np.float64), np.asarray(a[1], np.float64)
    c0, c1 = np.cos(lo_x), np.cos(hi_x)
    slack = 1e-9 * (1.0 + np.abs(lo_x) + np.abs(hi_x))
    k_lo = np.ceil((lo_x - slack) / np.pi)
    k_hi = np.floor((hi_x + slack) / np.pi)
    has_max = _has_parity(k_lo, k_hi, 0)  # 2 m pi: cos = 1
    has_min = _has_parity(k_lo, k_hi, 1)  # (2 m + 1) pi: cos = -1
    lo = np.where(has_min, -1.0, np.minimum(c0, c1) - _TRIG_PAD)
    hi = np.where(has_max, 1.0, np.maximum(c0, c1) + _TRIG_PAD)
    return np.maximum(lo, -1.0), np.minimum(hi, 1.0)


def _has_parity(k_lo: np.ndarray, k_hi: np.ndarray, parity: int) -> np.ndarray:
    """Whether an integer ``k`` with ``k mod 2 == parity`` lies in ``[k_lo, k_hi]``."""
    first = k_lo + np.mod(parity - k_lo, 2.0)
    return first <= k_hi


def _ndtr(x: Any) -> Iv:
    """``Phi(x)`` with a rounding pad (scipy's ``ndtr`` is accurate to a few ulps)."""
    v = special.ndtr(x)
    pad = 1e-14 * v + _TRIG_PAD
    return np.maximum(v - pad, 0.0), np.minimum(v + pad, 1.0)


def _profile_bounds(ax: Iv, half: float, sigma: float) -> Iv:
    """Range of ``P_h`` over ``|x| in [ax0, ax1]`` (``P_h`` decreases in ``|x|``; an
    infinite ``ax1`` gives 0)."""

    def value(v: Any, side: int) -> Any:
        # two roundings each (a difference, a quotient): two steps outward
        hi_arg = (half - v) / sigma
        lo_arg = (-half - v) / sigma
        if side == 0:  # lower bound of P at |x| = v
            return _ndtr(_dn(_dn(hi_arg)))[0] - _ndtr(_up(_up(lo_arg)))[1]
        return _ndtr(_up(_up(hi_arg)))[1] - _ndtr(_dn(_dn(lo_arg)))[0]

    low = np.where(np.isinf(ax[1]), 0.0, value(np.where(np.isinf(ax[1]), 0.0, ax[1]), 0))
    high = value(ax[0], 1)
    return np.clip(_dn(low), 0.0, 1.0), np.clip(_up(high), 0.0, 1.0)


def _atanc(z: Any) -> Any:
    """``atan(z) / z`` for ``z >= 0`` (``1`` at ``0``); the series below ``1e-4`` has
    truncation error ``< z^6 / 7 < 1e-24``."""
    z = np.asarray(z, np.float64)
    small = z < 1e-4
    zs = np.where(small, 1.0, z)
    return np.where(small, 1.0 - z * z / 3.0 + z**4 / 5.0, np.arctan(zs) / zs)


def _atan2_range(y: Iv, x: Iv) -> Iv:
    """Range of ``atan2(y, x)`` for ``y >= 0`` over the box ``y x x``: decreasing in
    ``x``, and for each ``x`` monotone in ``y``, so its extremes are at the corners;
    ``[0, pi]`` when the box holds the origin."""
    lo = np.minimum(np.arctan2(y[0], x[1]), np.arctan2(y[1], x[1]))
    hi = np.maximum(np.arctan2(y[0], x[0]), np.arctan2(y[1], x[0]))
    origin = (y[0] <= 0) & (x[0] <= 0) & (x[1] >= 0)
    lo = np.where(origin, 0.0, np.maximum(lo - _ANGLE_PAD, 0.0))
    hi = np.where(origin, np.pi, np.minimum(hi + _ANGLE_PAD, np.pi))
    return lo, hi


def _abs_s(t: Iv, ka: Iv, b: Iv) -> Iv:
    """An enclosure of ``|s|`` (arc length of the pixel along the curve).

    Two enclosures, intersected. Where ``b = 1 - kappa u > 0`` on the whole box: ``|s| =
    X atanc(kappa X)`` with ``X = |t| / b`` (``atan2(kappa |t|, b) = atan(kappa X)``),
    ``atanc`` decreasing on ``z >= 0``; this never divides by ``kappa`` (tight near
    ``kappa = 0``). Always: ``|s| = atan2(kappa |t|, b) / kappa`` with the corner range of
    ``atan2`` (upper end infinite if ``kappa`` can be 0; tight where ``b`` is small).
    The renderer's series branch (``kappa <= KAPPA_SERIES``, ``b ~ 1``) agrees with
    the first form to ``1e-22`` relative.
    """
    at = _abs(t)
    pos = b[0] > 0
    b_lo = np.where(pos, b[0], 1.0)
    x_lo, x_hi = _dn(at[0] / b[1]), _up(at[1] / b_lo)
    x_lo = np.maximum(x_lo, 0.0)
    z_lo, z_hi = _dn(ka[0] * x_lo), _up(ka[1] * x_hi)
    # atanc is decreasing; pad its values by 1e-15 relative (atan within 1 ulp)
    g_lo = _atanc(z_hi) * (1.0 - 1e-15)
    g_hi = _atanc(np.maximum(z_lo, 0.0)) * (1.0 + 1e-15)
    s_x = (
        np.where(pos, np.maximum(_dn(x_lo * g_lo), 0.0), 0.0),
        np.where(pos, _up(x_hi * g_hi), np.inf),
    )
    y = (np.maximum(_dn(ka[0] * at[0]), 0.0), _up(ka[1] * at[1]))
    phi = _atan2_range(y, b)
    k_hi = np.where(ka[1] > 0, ka[1], 1.0)
    k_lo = np.where(ka[0] > 0, ka[0], 1.0)
    s_phi = (
        np.where(ka[1] > 0, np.maximum(_dn(phi[0] / k_hi), 0.0), 0.0),
        np.where(ka[0] > 0, _up(phi[1] / k_lo), np.inf),
    )
    # both are enclosures: keep their intersection (the first is tight near kappa = 0,
    # the second where b is small or negative)
    return np.maximum(s_x[0], s_phi[0]), np.minimum(s_x[1], s_phi[1])
