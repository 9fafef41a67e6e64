"""Tests for toylab.curves.tuning: certified tuning, maxima and firing sets over a family.

The family here is a hand-written one (a Gaussian bar at angle ``theta`` and offset
``offset`` on a small image) with its own interval bounds of the pixels and of their
Jacobian, written independently of the module; the closed-form references use the
polar form ``rho sin(theta - phi) - offset`` of the bar's signed distance, while the
renderer uses ``u sin(theta) - v cos(theta) - offset``.
"""

import math

import numpy as np
import pytest

from toylab import ToylabError
from toylab.curves import certified_max, certified_min, family_response, firing_set, tuning
from toylab.network import Network

PAD = 1e-12  # outward pad of the test family's interval bounds (float64 rounding)


def _sin_range(a, b):
    """Exact range of sin on [a, b] (elementwise)."""
    lo = np.minimum(np.sin(a), np.sin(b))
    hi = np.maximum(np.sin(a), np.sin(b))
    k = np.ceil((a - math.pi / 2) / (2 * math.pi))
    hi = np.where(math.pi / 2 + 2 * math.pi * k <= b, 1.0, hi)
    k = np.ceil((a + math.pi / 2) / (2 * math.pi))
    lo = np.where(-math.pi / 2 + 2 * math.pi * k <= b, -1.0, lo)
    full = b - a >= 2 * math.pi
    return np.where(full, -1.0, lo), np.where(full, 1.0, hi)


def _mul(a, b):
    """Interval product."""
    p = np.stack([a[0] * b[0], a[0] * b[1], a[1] * b[0], a[1] * b[1]])
    return p.min(0), p.max(0)


class Bar:
    """A Gaussian bar ``exp(-d^2 / (2 sigma^2))``, ``d = u sin(theta) - v cos(theta) - offset``,
    ``(u, v)`` the pixel centre relative to the image centre."""

    PARAMS = ("theta", "offset")

    def __init__(self, size=8, sigma=1.0, offset=2.0):
        self.image_shape = (size, size)
        self.sigma = sigma
        i, j = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
        self.u = (j - (size - 1) / 2).ravel().astype(float)
        self.v = (i - (size - 1) / 2).ravel().astype(float)
        self.rho = np.hypot(self.u, self.v)
        self.phi = np.arctan2(self.v, self.u)
        self.param_low = np.array([0.0, -offset])
        self.param_high = np.array([math.pi, offset])

    def render(self, p):
        p = np.asarray(p, float)
        th, s = p[..., :1], p[..., 1:2]
        d = self.u * np.sin(th) - self.v * np.cos(th) - s
        return np.exp(-(d**2) / (2 * self.sigma**2))

    def _d_range(self, low, high):
        a = low[..., :1] - self.phi
        b = high[..., :1] - self.phi
        slo, shi = _sin_range(a, b)
        return self.rho * slo - high[..., 1:2], self.rho * shi - low[..., 1:2]

    def render_bounds(self, low, high):
        low, high = np.asarray(low, float), np.asarray(high, float)
        dl, du = self._d_range(low, high)
        amin = np.where((dl <= 0) & (du >= 0), 0.0, np.minimum(abs(dl), abs(du)))
        amax = np.maximum(abs(dl), abs(du))
        s2 = 2 * self.sigma**2
        return np.exp(-(amax**2) / s2) - PAD, np.exp(-(amin**2) / s2) + PAD

    def render_jacobian_bounds(self, low, high):
        low, high = np.asarray(low, float), np.asarray(high, float)
        dl, du = self._d_range(low, high)
        sg = self.sigma

        def q(d):
            return d * np.exp(-(d**2) / (2 * sg**2)) / sg**2

        qlo, qhi = np.minimum(q(dl), q(du)), np.maximum(q(dl), q(du))
        peak = math.exp(-0.5) / sg
        qhi = np.where((dl <= sg) & (sg <= du), peak, qhi)
        qlo = np.where((dl <= -sg) & (-sg <= du), -peak, qlo)
        clo, chi = _sin_range(low[..., :1] - self.phi + math.pi / 2,
                              high[..., :1] - self.phi + math.pi / 2)  # fmt: skip
        tlo, thi = _mul((qlo, qhi), (self.rho * clo, self.rho * chi))
        d_theta = (-thi - PAD, -tlo + PAD)  # dI/dtheta = -q(d) rho cos(theta - phi)
        d_off = (qlo - PAD, qhi + PAD)  # dI/doffset = q(d)
        jlo = np.stack([d_theta[0], d_off[0]], -1)
        jhi = np.stack([d_theta[1], d_off[1]], -1)
        return jlo, jhi


class BoxOnly:
    """The same family without Jacobian bounds (pixel-box method only)."""

    PARAMS = Bar.PARAMS

    def __init__(self, fam):
        self.f = fam
        self.param_low, self.param_high = fam.param_low, fam.param_high

    def render(self, p):
        return self.f.render(p)

    def render_bounds(self, low, high):
        return self.f.render_bounds(low, high)


def closed_form(fam, k, theta, offset):
    """Pixel ``k`` of the bar in polar form (independent of ``Bar.render``)."""
    d = fam.rho[k] * np.sin(theta - fam.phi[k]) - offset
    return np.exp(-(d**2) / (2 * fam.sigma**2))


def random_net(seed, d=64, widths=(16, 4)):
    rng = np.random.default_rng(seed)
    dims = (d, *widths)
    ws = [rng.normal(size=(a, b)) / math.sqrt(a) for a, b in zip(dims[:-1], dims[1:], strict=True)]
    bs = [0.3 * rng.normal(size=b) for b in dims[1:]]
    return Network.from_weights(ws, bs, "relu")


def pixel_net(fam, k, bias=0.0, act="identity"):
    w = np.zeros((fam.rho.size, 1))
    w[k, 0] = 1.0
    if act == "identity":
        return Network.from_weights([w], [[bias]])
    return Network.from_weights([w, np.ones((1, 1))], [[bias], [0.0]], act)


def dense_points(res, n, rng):
    """``n`` uniform points in each cell of a tuning result, ``(cells, n, k)``."""
    u = rng.random((res.num_cells, n, len(res.axes)))
    return res.cell_low[:, None] + u * (res.cell_high - res.cell_low)[:, None]


def full_params(res, pts, fam):
    names = list(fam.PARAMS)
    out = np.broadcast_to(res.fixed, pts.shape[:-1] + (len(names),)).copy()
    for a, name in enumerate(res.axes):
        out[..., names.index(name)] = pts[..., a]
    return out


@pytest.mark.parametrize("jac", [True, False])
def test_tuning_encloses_dense_samples_on_a_random_net(jac):
    fam = Bar()
    famx = fam if jac else BoxOnly(fam)
    net = random_net(0)
    for neuron in ("hidden_0:3", "output:1"):
        res = tuning(net, famx, neuron, axes=("theta", "offset"), resolution=(12, 4), tol=0.1,
                     max_boxes=3000)  # fmt: skip
        pts = dense_points(res, 20, np.random.default_rng(1))
        v = net.values(fam.render(full_params(res, pts, fam)), neuron)
        # no tolerance: the bounds are padded outward for float64 rounding
        assert np.all(res.lower[:, None] <= v) and np.all(v <= res.upper[:, None])
        assert res.tier == "certified" and res.max_width == pytest.approx(res.width.max())
        # the centre values are responses at the centres
        c = full_params(res, res.centres, fam)
        np.testing.assert_allclose(res.values, net.values(fam.render(c), neuron), atol=1e-12)
        # the cells partition the slice: their areas sum to the box's
        area = np.prod(res.cell_high - res.cell_low, axis=1).sum()
        assert area == pytest.approx(math.pi * 4.0, rel=1e-12)


def test_first_order_model_is_tighter_than_the_pixel_box():
    fam = Bar()
    net = random_net(2)
    kw = dict(axes=("theta", "offset"), resolution=(32, 16), tol=1e-9, max_boxes=512)
    a = tuning(net, fam, "output:0", **kw)
    b = tuning(net, BoxOnly(fam), "output:0", **kw)
    assert a.num_cells == b.num_cells == 512  # no splitting: the same cells
    # first order: width O(h^2) against O(h); measured 0.17 vs 0.42 on these cells
    assert np.mean(a.width) < 0.7 * np.mean(b.width)


def test_tuning_of_one_pixel_matches_the_closed_form():
    fam = Bar()
    k = 9  # pixel (1, 1)
    net = pixel_net(fam, k)
    tol = 0.02
    res = tuning(net, fam, "output:0", axes="theta", fixed={"offset": 0.7}, resolution=16,
                 tol=tol, max_boxes=5000)  # fmt: skip
    assert res.converged and res.max_width <= tol
    pts = dense_points(res, 50, np.random.default_rng(0))[..., 0]
    ref = closed_form(fam, k, pts, 0.7)
    # enclosure within tol of the closed form on each cell (sound and at most tol wide)
    assert np.all(res.lower <= ref.min(1)) and np.all(ref.max(1) <= res.upper)
    assert np.all(res.upper - ref.min(1) <= tol) and np.all(ref.max(1) - res.lower <= tol)
    # grid view: the enclosure over each of the 16 grid cells
    glo, ghi = res.grid_bounds()
    assert glo.shape == (16,) and np.all(glo <= ghi)
    assert glo.min() == pytest.approx(res.lower.min()) and ghi.max() == res.upper.max()


def test_widths_shrink_with_tol():
    fam = Bar()
    net = random_net(3)
    widths = []
    for tol in (0.8, 0.4, 0.2):
        r = tuning(net, fam, "output:2", axes=("theta", "offset"), resolution=(8, 2), tol=tol,
                   max_boxes=20_000)  # fmt: skip
        assert r.converged and r.max_width <= tol
        widths.append(r.max_width)
    assert widths[0] > widths[1] > widths[2]


def test_tuning_maximised_over_the_others():
    fam = Bar()
    k = 27  # pixel (3, 3), near the centre
    net = pixel_net(fam, k)
    res = tuning(net, fam, "output:0", axes="theta", others="max", resolution=12, tol=0.05,
                 max_boxes=5000)  # fmt: skip
    th = np.linspace(0, math.pi, 301)
    s = np.linspace(-2, 2, 2001)
    sampled = closed_form(fam, k, th[:, None], s[None]).max(1)  # <= max over offset
    lo, hi = res.bounds_at(th[:, None])
    assert np.all(sampled <= hi)
    # the sampled max misses the true max by at most |dI/ds| * ds / 2 = e^{-1/2}/sigma * ds / 2
    slack = math.exp(-0.5) / fam.sigma * (s[1] - s[0]) / 2
    assert np.all(lo <= sampled + slack)
    # an offset range holding d = 0 for every theta: the max over the offset is 1
    assert np.all(hi >= 1.0) and res.converged


def test_certified_max_and_min():
    fam = Bar()
    k = 9
    net = pixel_net(fam, k)
    res = certified_max(net, fam, "output:0", gap=1e-3, max_boxes=5000)
    # closed form: some (theta, offset) in the box puts the bar through the pixel (d = 0)
    assert res.lower <= 1.0 <= res.upper and res.converged and res.gap <= 1e-3
    assert res.value == pytest.approx(float(closed_form(fam, k, *res.argmax)), abs=1e-12)
    np.testing.assert_allclose(res.image, fam.render(res.argmax))
    # random net: >= every sampled value, and within gap of an attained one
    net = random_net(4)
    rng = np.random.default_rng(0)
    p = fam.param_low + rng.random((4000, 2)) * (fam.param_high - fam.param_low)
    v = net.values(fam.render(p), "hidden_0:5")
    mx = certified_max(net, fam, "hidden_0:5", gap=1e-3, max_boxes=5000)
    mn = certified_min(net, fam, "hidden_0:5", gap=1e-3, max_boxes=5000)
    assert mx.upper >= v.max() and mx.converged and mx.upper - mx.lower <= 1e-3
    assert mx.value == pytest.approx(family_response(net, fam, "hidden_0:5", mx.argmax))
    assert mn.lower <= v.min() and mn.converged and mn.value <= mn.lower + 1e-3
    assert mx.certificate.num_leaves >= 1 and mx.tier == "certified"


def test_firing_set_measure_against_dense_grid():
    fam = Bar()
    k = 9
    net = pixel_net(fam, k, bias=-0.5, act="relu")  # fires iff I_k > 1/2
    res = firing_set(net, fam, "hidden_0:0", box={"offset": (0.7, 0.7)}, tol=1e-3,
                     max_boxes=5000)  # fmt: skip
    th = (np.arange(1_000_000) + 0.5) / 1_000_000 * math.pi
    ref = float(np.mean(closed_form(fam, k, th, 0.7) > 0.5))
    # a midpoint grid of N points misses at most (crossings / N) of the measure; <= 4 crossings
    assert res.firing_lower - 4e-6 <= ref <= res.firing_upper + 4e-6
    assert res.undetermined <= 1e-3 + 1e-12
    assert np.sum(res.measure) == pytest.approx(1.0)
    # every status is certified: sample each box
    rng = np.random.default_rng(0)
    for s in (1, -1):
        sel = res.status == s
        u = rng.random((sel.sum(), 10, 2))
        p = res.box_low[sel][:, None] + u * (res.box_high - res.box_low)[sel][:, None]
        z = closed_form(fam, k, p[..., 0], p[..., 1]) - 0.5
        assert np.all(z > 0) if s == 1 else np.all(z <= 0)


def test_bad_arguments():
    fam = Bar()
    net = random_net(0)
    with pytest.raises(ToylabError, match="axes"):
        tuning(net, fam, "output:0", axes=("kappa",))
    with pytest.raises(ToylabError, match="others"):
        tuning(net, fam, "output:0", axes="theta", others="mean")
    with pytest.raises(ToylabError, match="resolution"):
        tuning(net, fam, "output:0", axes="theta", resolution=(3, 3))
    with pytest.raises(ToylabError, match="family"):
        tuning(net, object(), "output:0")
    with pytest.raises(ToylabError, match="hidden_7"):
        certified_max(net, fam, "hidden_7:0")
    with pytest.raises(ToylabError, match="model"):
        certified_max(random_net(0, d=10), fam, "output:0")


# --------------------------------------------------------------------------- scoring


def test_score_sweep_against_dense_sampling():
    from toylab.curves import score_sweep

    fam = Bar()
    net = random_net(5)
    neuron = "output:3"
    sc = score_sweep(net, fam, neuron, axes=("theta", "offset"), points=(7, 4), tol=0.1,
                     gap=1e-3, max_boxes=8000)  # fmt: skip
    assert sc.grid_values.shape == (7, 4) and sc.tier == "sampled"
    assert sc.error_tier == "certified"
    # the grid values are the responses at the grid points (an independent loop)
    for i, th in enumerate(sc.grid[0]):
        for j, s in enumerate(sc.grid[1]):
            x = fam.render(np.array([th, s]))[None]
            assert sc.grid_values[i, j] == pytest.approx(net.values(x, neuron)[0], abs=1e-12)
    # dense samples of the slice: never above the certified max, and the grid max is
    # below both; what the grid misses lies in the certified bracket
    rng = np.random.default_rng(0)
    p = fam.param_low + rng.random((20_000, 2)) * (fam.param_high - fam.param_low)
    v = net.values(fam.render(p), neuron)
    assert v.max() <= sc.slice_max.upper and sc.sampled <= sc.slice_max.upper
    assert sc.miss_slice[0] <= sc.slice_max.upper - sc.sampled == sc.miss_slice[1]
    assert sc.miss_slice[0] == pytest.approx(sc.slice_max.lower - sc.grid_values.max())
    # the interpolation error bracket holds the dense-sampled sup |g - I|
    interp = _bilinear(sc.grid, sc.grid_values, p)
    err = np.abs(v - interp).max()
    assert sc.interp_error[0] <= sc.interp_error[1] and err <= sc.interp_error[1]


def _bilinear(grid, values, pts):
    """Reference bilinear interpolation through scipy (independent of the module)."""
    from scipy.interpolate import RegularGridInterpolator

    return RegularGridInterpolator(grid, values, method="linear")(pts)


def test_score_dataset_top_examples():
    import jax

    from toylab.curves import score_dataset

    fam = Bar()
    net = random_net(6)
    sc = score_dataset(net, fam, "hidden_0:2", key=jax.random.key(0), num_samples=500, k=5)
    assert np.all(np.diff(sc.top_values) <= 0) and sc.top_values[0] == sc.sampled
    # every sample is below the certified max: the top one too
    assert sc.miss[1] >= 0 and sc.sampled <= sc.family_max.upper
    np.testing.assert_allclose(sc.top_images, fam.render(sc.top_latent))
    np.testing.assert_allclose(sc.top_values, net.values(sc.top_images, "hidden_0:2"))
    assert np.all((0 <= sc.distance) & (sc.distance <= 1))
    ref = [np.corrcoef(x, sc.family_max.image)[0, 1] for x in sc.top_images]
    np.testing.assert_allclose(sc.image_correlation, ref, atol=1e-12)
    assert sc.num_samples == 500 and 0 < sc.fraction_near_max <= 1


def test_score_featureviz_linear_unit_reaches_the_pixel_box_max():
    import jax

    from toylab.curves import pixel_box, score_featureviz

    fam = Bar()
    rng = np.random.default_rng(7)
    w = rng.normal(size=(64, 1))
    net = Network.from_weights([w], [[0.1]])
    sc = score_featureviz(net, fam, "output:0", key=jax.random.key(1), num_starts=4,
                          num_steps=200, learning_rate=0.05)  # fmt: skip
    lo, hi = pixel_box(fam)
    # closed form: a linear unit's max over a box is at the corner picked by sign(w)
    ref = float(np.where(w[:, 0] > 0, hi, lo) @ w[:, 0] + 0.1)
    assert sc.sampled <= ref + 1e-9 and sc.sampled == pytest.approx(ref, abs=1e-3)
    # pixel space holds far more than bars: certified above the family's max
    assert sc.above_family and sc.sampled > sc.family_max.upper and not sc.below_family
    assert -1 <= sc.correlation <= 1


# --------------------------------------------------------------------------- on CurveImages


def _curves():
    from toylab.distributions import CurveImages

    return CurveImages(size=8, jitter=0.5)


def test_tuning_on_curve_images_is_sound():
    fam = _curves()
    net = random_net(8, d=64, widths=(16, 4))
    res = tuning(net, fam, "hidden_0:1", resolution=(8, 2), tol=0.05, max_boxes=600)
    assert res.num_cells > 16  # refined
    assert res.axes == ("theta", "kappa") and "render_bounds pixel box" in res.method
    pts = dense_points(res, 12, np.random.default_rng(0))
    p = np.broadcast_to(res.fixed, pts.shape[:-1] + (4,)).copy()
    p[..., :2] = pts
    v = net.values(fam.render(p), "hidden_0:1")
    assert np.all(res.lower[:, None] <= v) and np.all(v <= res.upper[:, None])


def test_certified_max_on_curve_images():
    fam = _curves()
    net = random_net(9, d=64, widths=(16, 4))
    c = 0.5 * (fam.param_low + fam.param_high)
    box = (np.array([0.0, 0.0, c[2] - 0.25, c[3] - 0.25]), np.array([0.6, 0.1, c[2], c[3]]))
    res = certified_max(net, fam, "output:0", box=box, gap=0.05, max_boxes=4000)
    rng = np.random.default_rng(1)
    p = box[0] + rng.random((3000, 4)) * (box[1] - box[0])
    v = net.values(fam.render(p), "output:0")
    assert res.converged and res.upper >= v.max() and res.upper - res.lower <= 0.05
    assert np.all((box[0] <= res.argmax) & (res.argmax <= box[1]))
    assert res.value == pytest.approx(float(net.values(fam.render(res.argmax), "output:0")))


def test_scores_on_curve_images():
    import jax

    from toylab.curves import score_dataset, score_featureviz

    fam = _curves()
    net = random_net(10, d=64, widths=(16, 4))
    ext = (certified_max(net, fam, "hidden_0:0", gap=0.05, max_boxes=600),
           certified_min(net, fam, "hidden_0:0", gap=0.05, max_boxes=600))  # fmt: skip
    ds = score_dataset(net, fam, "hidden_0:0", key=jax.random.key(0), num_samples=300, k=3,
                       extremes=ext)  # fmt: skip
    # the family's own sampler: latents in the parameter box, images its renders (float32)
    assert np.all((fam.param_low <= ds.top_latent) & (ds.top_latent <= fam.param_high))
    np.testing.assert_allclose(ds.top_images, fam.render(ds.top_latent), atol=1e-6)
    # float32 images: the top value may exceed the certified max by float32 rounding only
    assert ds.sampled <= ext[0].upper + 1e-5
    fv = score_featureviz(net, fam, "hidden_0:0", key=jax.random.key(1), num_starts=2,
                          num_steps=50, extremes=ext)  # fmt: skip
    np.testing.assert_array_equal(fv.pixel_low, np.asarray(fam.domain.low))
    assert np.all((fv.pixel_low <= fv.best_image) & (fv.best_image <= fv.pixel_high))
    assert fv.above_family == (fv.sampled > ext[0].upper)
