"""Tests for CurveImages.render_jacobian_bounds: a certified enclosure of ∂render/∂p.

Reference: forward-mode automatic differentiation (``jax.jacfwd``) of the JAX renderer in
float64, an independent computation of the derivative (it differentiates the renderer's
own code path, the enclosure evaluates hand-derived formulas in interval arithmetic).

Tolerance of the comparison, ``TOL * (1 + |J|)``: the forward-mode derivative is computed
in about a hundred float64 operations on quantities bounded by ``|q|^2 (1 + kappa |q|) <~
1e3`` (``|q| <= 16`` pixels), each with relative error ``eps``, so it differs from the
real derivative by ``<~ 1e2 * 1e3 * eps * (1 + |J|) ~ 2e-11 (1 + |J|)``; ``TOL = 1e-9``
leaves a factor of 50. (Below ``KAPPA_SERIES`` the renderer's series branch differs from
the exact arc length in its kappa derivative by ``<~ kappa^3 |t|^5 < 1e-14``, inside it.)
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from toylab.curves import tuning
from toylab.distributions import CurveImages
from toylab.network import Network

TOL = 1e-9
FAMILIES = {
    "default": CurveImages(size=16),
    "fill": CurveImages(size=12, fill=0.6, polarity=-1.0, contrast=0.7, psf=0.35, width=2.0),
}


def _jacobian(fam, points):
    """``∂render/∂p`` at points ``(N, 4)`` by forward-mode AD in float64: ``(N, H*W, 4)``."""
    with jax.enable_x64(True):
        f = jax.vmap(jax.jacfwd(lambda p: fam.render(p)))
        return np.asarray(f(jnp.asarray(points, jnp.float64)), np.float64)


def _points(rng, lo, hi, per_box):
    """Random points in each box, a quarter of their coordinates snapped to a box end
    (edges and corners: kappa = 0 exactly, the ends of theta)."""
    u = rng.random((per_box,) + lo.shape)
    snap = rng.random(u.shape) < 0.25
    u = np.where(snap, np.round(u), u)
    return lo + u * (hi - lo)  # (per_box, B, 4)


def _assert_encloses(fam, lo, hi, rng, per_box=12):
    jlo, jhi = fam.render_jacobian_bounds(lo, hi)
    assert jlo.shape == jhi.shape == lo.shape[:-1] + (fam.dim, 4)
    assert not np.isnan(jlo).any() and not np.isnan(jhi).any()
    pts = _points(rng, lo, hi, per_box)
    J = _jacobian(fam, pts.reshape(-1, 4)).reshape(pts.shape[:-1] + (fam.dim, 4))
    viol = np.maximum(jlo - J, J - jhi)
    unbounded = ~np.isfinite(jlo) & ~np.isfinite(jhi)  # (-inf, inf): nothing claimed
    ok = (viol <= TOL * (1.0 + np.abs(J))) | unbounded
    assert ok.all(), f"{(~ok).sum()} entries outside, worst {np.nanmax(viol / (1 + abs(J)))}"
    return jlo, jhi


def _random_boxes(fam, rng, n, scale):
    c = fam.param_low + rng.random((n, 4)) * (fam.param_high - fam.param_low)
    h = scale * rng.random((n, 4)) * np.array([0.3, 0.02, 0.5, 0.5])
    lo, hi = c - h, c + h
    lo[:, 1] = np.maximum(lo[:, 1], 0.0)
    return lo, hi


@pytest.mark.parametrize("name", list(FAMILIES))
def test_encloses_autodiff_on_random_boxes(name):
    fam = FAMILIES[name]
    rng = np.random.default_rng(0)
    lo, hi = _random_boxes(fam, rng, 60, 1.0)
    jlo, jhi = _assert_encloses(fam, lo, hi, rng)
    # useful: most pixel rows are finite (unbounded only where the box's enclosure of
    # the distance r to the circle's centre o reaches 1e-4: o moves by up to 2 pixels here)
    assert np.isfinite(jhi).all(-1).mean() > 0.95


def test_encloses_autodiff_on_adversarial_boxes():
    fam = FAMILIES["default"]
    rng = np.random.default_rng(1)
    c = np.array(fam.centre)
    th, tp = 0.7, 2 * math.pi
    boxes = [
        # kappa = 0 edge, the series switch (KAPPA_SERIES = 1e-7), wide and narrow in kappa
        ([th, 0.0, *c], [th + 0.05, 0.03, *(c + 0.2)]),
        ([th, 0.0, *c], [th + 0.01, 1e-8, *c]),
        ([th, 0.9e-7, *c], [th, 1.1e-7, *c]),
        ([4.0, 0.0, *(c - 1)], [4.3, 0.25, *(c + 1)]),  # the whole kappa range
        # tiny boxes (rounding-level widths) and a point box
        ([th, 0.1, *c], [th + 1e-12, 0.1 + 1e-13, *(c + 1e-12)]),
        ([1.0, 0.2, 7.3, 7.6], [1.0, 0.2, 7.3, 7.6]),
        # theta past 2 pi, negative, far out
        ([tp - 0.01, 0.1, *c], [tp + 0.02, 0.11, *c]),
        ([-3.0, 0.05, *c], [-2.9, 0.06, *c]),
        ([50.0, 0.2, *c], [50.1, 0.21, *c]),
        # the circle's centre o = c + n / kappa on a pixel: theta = 0, kappa = 1/4,
        # c = (7, 3) puts o at pixel (x, y) = (7, 7); boxes holding it and just missing it
        ([-0.01, 0.245, 6.9, 2.9], [0.01, 0.25, 7.1, 3.1]),
        ([0.0, 0.25, 7.0, 3.0], [0.0, 0.25, 7.0, 3.0]),
        ([0.0, 0.25, 7.0, 3.001], [1e-4, 0.25, 7.0, 3.002]),
        ([0.0, 0.25, 7.0, 3.05], [1e-3, 0.25, 7.01, 3.06]),
        # pixels beyond o (b = 1 - kappa u < 0) with kappa near its maximum
        ([2.0, 0.2, 6.0, 6.0], [2.1, 0.25, 6.5, 6.5]),
    ]
    lo = np.array([b[0] for b in boxes], np.float64)
    hi = np.array([b[1] for b in boxes], np.float64)
    jlo, jhi = _assert_encloses(fam, lo, hi, rng, per_box=40)
    # the rows at o itself cannot be bounded (the image is discontinuous there) ...
    o_pixel = (fam.size - 1 - 7) * fam.size + 7  # (x, y) = (7, 7): row H - 1 - 7, column 7
    assert not np.isfinite(jhi[10, o_pixel]).all()
    # ... but every other pixel of that box is, and the tiny boxes are tight
    assert np.isfinite(jhi[10]).all(-1).sum() == fam.dim - 1
    assert np.isfinite(jhi[4]).all() and np.max(jhi[4] - jlo[4]) < 1e-6


def test_width_shrinks_linearly_with_the_box():
    fam = FAMILIES["fill"]
    rng = np.random.default_rng(2)
    c = fam.param_low + rng.random((20, 4)) * (fam.param_high - fam.param_low)
    c[:, 1] = np.maximum(c[:, 1], 0.05)
    h = np.array([0.2, 0.01, 0.3, 0.3])
    enc = [fam.render_jacobian_bounds(c - s * h, c + s * h) for s in (0.1, 0.01, 0.001)]
    rows = np.isfinite(enc[0][1]).all(-1, keepdims=True)  # the large boxes' finite rows
    assert rows.mean() > 0.9 and np.isfinite(enc[2][1]).all(-1).mean() > 0.99
    widths = [np.where(rows, hi - lo, 0.0).max(axis=1) for lo, hi in enc]  # (20, 4)
    # linear in the box side: a tenth of the box, about a tenth of the width (the
    # enclosure is a first-order interval extension of a smooth function)
    assert np.all(widths[1] <= 0.15 * widths[0]) and np.all(widths[2] <= 0.15 * widths[1])
    # and it converges to the derivative itself
    J = _jacobian(fam, c)
    jlo, jhi = fam.render_jacobian_bounds(c, c)
    assert np.all(jhi - jlo <= 1e-9 * (1 + np.abs(J)))


def test_bad_boxes():
    fam = FAMILIES["default"]
    from toylab import ToylabError

    with pytest.raises(ToylabError, match="kappa"):
        fam.render_jacobian_bounds([0, -0.1, 7, 7], [1, 0.1, 7, 7])
    with pytest.raises(ToylabError, match="low"):
        fam.render_jacobian_bounds([1, 0.1, 7, 7], [0, 0.1, 7, 7])


class _PixelBoxOnly:
    """The same family without its Jacobian bounds (tuning then uses the pixel box)."""

    PARAMS = CurveImages.PARAMS

    def __init__(self, fam):
        self.fam = fam
        self.param_low, self.param_high = fam.param_low, fam.param_high

    def render(self, p):
        return self.fam.render(p)

    def render_bounds(self, low, high):
        return self.fam.render_bounds(low, high)


def test_tuning_with_the_first_order_model_is_sound_and_tighter():
    fam = CurveImages(size=8, jitter=0.5)
    rng = np.random.default_rng(3)
    ws = [rng.normal(size=(64, 16)) / 8.0, rng.normal(size=(16, 4)) / 4.0]
    net = Network.from_weights(ws, [0.1 * rng.normal(size=16), 0.1 * rng.normal(size=4)])
    # a patch of the (theta, kappa) plane, cells 0.05 x 0.0125 (one box per cell)
    kw = dict(box={"theta": (0.5, 0.9), "kappa": (0.1, 0.15)}, resolution=(8, 4), tol=1e-12,
              max_boxes=32)  # fmt: skip
    first = tuning(net, fam, "hidden_0:1", **kw)
    box = tuning(net, _PixelBoxOnly(fam), "hidden_0:1", **kw)
    assert "render_jacobian_bounds" in first.method and "render_jacobian" not in box.method
    np.testing.assert_array_equal(first.cell_low, box.cell_low)
    # sound: dense samples of each cell within its enclosure
    u = rng.random((first.num_cells, 40, 2))
    pts = first.cell_low[:, None] + u * (first.cell_high - first.cell_low)[:, None]
    p = np.broadcast_to(first.fixed, pts.shape[:-1] + (4,)).copy()
    p[..., :2] = pts
    v = net.values(fam.render(p), "hidden_0:1")
    assert np.all(first.lower[:, None] <= v) and np.all(v <= first.upper[:, None])
    # tighter than the pixel box alone, never looser (both sets are intersected)
    assert np.all(first.width <= box.width + 1e-12)
    assert first.width.mean() < 0.8 * box.width.mean()
