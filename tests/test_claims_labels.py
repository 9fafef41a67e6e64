"""Every number inside a verdict says how it was obtained, and the label is true."""

import subprocess
import sys

import numpy as np
import pytest
from scipy import integrate
from scipy.stats import norm

from toylab.claims import (
    VERDICTS,
    Ellipse,
    HalfPlane,
    check,
    check_all,
    dead,
    fires_on_mass,
    fires_only_in,
    monotone,
)
from toylab.distributions import Rings, two_blobs
from toylab.models import MLP
from toylab.network import Network
from toylab.testing import assert_claim
from toylab.tiers import TIERS

RELU_X1 = Network.from_weights([np.array([[1.0], [0.0]]), np.ones((1, 2))])  # relu(x1)
DIST = two_blobs()  # 0.5 N((2, 0), I) + 0.5 N((-2, 0), I)


def _outside_disk_mass(low, high, centre, radius):
    """P(x in box, x1 > 0, |x - centre| > radius) under DIST, by 1-D quadrature in x1 of
    the closed-form x2 probabilities (both components have x2 ~ N(0, 1))."""
    (_, lo2), (hi1, hi2) = low, high

    def x2_mass(x1):
        total = norm.cdf(hi2) - norm.cdf(lo2)
        d = radius**2 - (x1 - centre[0]) ** 2
        if d > 0:
            h = np.sqrt(d)
            a, b = max(centre[1] - h, lo2), min(centre[1] + h, hi2)
            total -= max(norm.cdf(b) - norm.cdf(a), 0.0)
        return total

    out = 0.0
    for mu in (2.0, -2.0):
        val, err = integrate.quad(lambda t, mu=mu: norm.pdf(t - mu) * x2_mass(t), 0.0, hi1,
                                  points=[centre[0] + radius], epsabs=1e-14, epsrel=1e-12,
                                  limit=200)  # fmt: skip
        assert err < 1e-11
        out += 0.5 * val
    return out


def test_ellipse_failing_mass_is_a_certified_bracket_not_a_midpoint():
    """Review E3: the failing set of a claim cut by an ellipse has no polygonal mass; the
    verdict reports the bracket of the inscribed and circumscribed 256-gons, labelled
    certified, and it contains an independent quadrature of the true mass."""
    r = check(fires_only_in("hidden_0:0", Ellipse(3.0, component=0)), RELU_X1, DIST)
    assert r.tier == "exact" and not r.holds
    assert r.failing_mass is None and r.failing_mass_tier == "certified"
    lo, hi = r.failing_mass_bounds
    box = DIST.domain
    ref = _outside_disk_mass(box.low, box.high, (2.0, 0.0), 3.0)
    assert lo <= ref <= hi, (lo, ref, hi)
    assert 0 < hi - lo < 1e-5  # the 256-gons' area gap times the density: ~3e-6
    w = r.witness  # a true counterexample: fires, outside the ellipse
    assert w[0] > 0 and np.hypot(w[0] - 2.0, w[1]) > 3.0
    d = r.to_dict()
    assert d["failing_mass"] is None and d["failing_mass_tier"] == "certified"
    assert "between" in r.explain() and "[certified]" in r.explain()
    # polygonal regions keep an exact number
    r = check(fires_only_in("hidden_0:0", HalfPlane((1, 0), 0.5)), RELU_X1, DIST)
    assert r.failing_mass_tier == "exact" and r.failing_mass_bounds is None
    # 0 < x1 < 0.5 within the domain box (its x2 edges cut ~1.5e-11 off the strip)
    strip = 0.5 * (norm.cdf(-1.5) - norm.cdf(-2) + norm.cdf(2.5) - norm.cdf(2))
    strip *= norm.cdf(box.high[1]) - norm.cdf(box.low[1])
    assert r.failing_mass == pytest.approx(strip, abs=1e-15)  # closed forms, float64


def test_ellipse_monotone_bracket_and_witness_inside():
    """monotone within an ellipse: the failing set is (cells with a bad slope) ∩ ellipse,
    bracketed; the witness lies inside the ellipse."""
    r = check(monotone("hidden_0:0", (1.0, 0.0), decreasing=True,
                       region=Ellipse(1.0, mean=(0.0, 0.0), cov=((1.0, 0.0), (0.0, 1.0)))),
              RELU_X1, DIST)  # fmt: skip
    assert not r.holds and r.failing_mass is None and r.failing_mass_tier == "certified"
    lo, hi = r.failing_mass_bounds
    # relu(x1) increases on x1 > 0: the failing set is the right half of the unit disk
    ref = 0.0
    for mu in (2.0, -2.0):
        val, _ = integrate.quad(lambda t, mu=mu: norm.pdf(t - mu) * (
            norm.cdf(np.sqrt(1 - t * t)) - norm.cdf(-np.sqrt(1 - t * t))), 0.0, 1.0,
            epsabs=1e-14)  # fmt: skip
        ref += 0.5 * val
    assert lo <= ref <= hi and hi - lo < 1e-5
    assert np.hypot(*r.witness) < 1.0 and r.witness[0] > 0


def test_non_gaussian_masses_are_labelled_estimated():
    """On rings, exact geometry decides the verdict, but the failing mass is a quadrature
    (the density is infinite at the origin, on the strip's edge): tier 'estimated', with
    bounds of plus or minus its error estimate, which here cover a 1-D polar quadrature
    of the same density (measured: error 7e-7, estimate 2.7e-6). Claims whose verdict
    needs such a number fall back to the sampled tier."""
    rings = Rings(radii=(0.5, 1.5), widths=(0.2, 0.25), weights=(0.4, 0.6))
    net = Network.from_weights([np.eye(2), np.ones((2, 2))])
    r = check(fires_only_in("hidden_0:0", HalfPlane((1, 0), 0.5)), net, rings)
    assert r.tier == "exact" and not r.holds and r.failing_mass_tier == "estimated"
    # P(0 < x1 < 0.5, |x2| <= R): per ring, the radial density times the angle fraction
    big = rings.domain.high[0]

    def angle_fraction(rho):
        lo = np.arccos(min(1.0, 0.5 / rho))
        return max(0.0, np.arcsin(min(1.0, big / rho)) - lo) / np.pi

    ref = 0.0
    for weight, radius, width in zip((0.4, 0.6), (0.5, 1.5), (0.2, 0.25), strict=True):

        def integrand(t, radius=radius, width=width):
            dens = norm.pdf((t - radius) / width) / (width * norm.cdf(radius / width))
            return dens * angle_fraction(t)

        val, err = integrate.quad(integrand, 0.0, big * np.sqrt(2), points=[0.5, big],
                                  epsabs=1e-14, epsrel=1e-13, limit=500)  # fmt: skip
        assert err < 1e-12
        ref += weight * val
    lo, hi = r.failing_mass_bounds
    assert lo <= ref <= hi and hi - lo < 1e-5, (lo, ref, hi)
    r = check(fires_on_mass("hidden_0:0", 0.3, cls=0), net, rings, num_samples=500)
    assert r.tier == "sampled" and r.estimate_tier == "sampled"


def test_decide_number_uses_the_tier_of_the_number():
    from toylab.claims._kinds import _decide_number

    assert _decide_number(0.5, 1e-16, "exact", 0.5)["holds"]  # a tie within rounding holds
    assert not _decide_number(0.5 - 1e-9, 1e-16, "exact", 0.5)["holds"]
    out = _decide_number(0.6, 0.05, "certified", 0.5)
    assert out["holds"] and out["interval"] == pytest.approx((0.55, 0.65), abs=1e-15)
    assert out["estimate_tier"] == "certified"
    assert not _decide_number(0.4, 0.05, "certified", 0.5)["holds"]
    assert _decide_number(0.52, 0.05, "certified", 0.5) is None  # straddles: not proved
    assert _decide_number(0.9, 1e-3, "estimated", 0.5) is None  # an estimate proves nothing


def test_verdicts_are_not_tiers_and_every_label_is_one_of_them():
    assert VERDICTS == ("exact", "searched", "sampled")
    model = MLP.from_weights([np.eye(2), np.ones((2, 2))])
    claims = [fires_only_in("hidden_0:0", HalfPlane((1, 0), 0.5)), dead("hidden_0:1"),
              fires_on_mass("hidden_0:0", 0.5, cls=0)]  # fmt: skip
    for kwargs in ({}, {"tier": "sampled", "num_samples": 500}):
        for r in check_all(claims, model, DIST, **kwargs):
            assert r.tier in VERDICTS
            for label in (r.estimate_tier, r.failing_mass_tier):
                assert label is None or label in TIERS
    # a model and its Network get the same verdicts
    net = model.to_network()
    for a, b in zip(check_all(claims, model, DIST), check_all(claims, net, DIST), strict=True):
        assert a.to_dict() == b.to_dict()


def test_counterexample_display_and_optional_plot(tmp_path):
    from matplotlib.collections import PolyCollection
    from matplotlib.figure import Figure

    from toylab.viz.verdicts import CounterexampleDisplay

    net = Network.from_weights([np.eye(2), np.ones((2, 2))])  # relu(x1), relu(x2)
    r = check(fires_only_in("hidden_0:0", HalfPlane((1, 0), 0.5)) & dead("hidden_0:1"), net, DIST)
    disp = CounterexampleDisplay.from_result(r, net, DIST, num=40)
    assert disp.map.values.shape == (40, 40) and not disp.holds
    np.testing.assert_allclose(disp.map.values, np.maximum(disp.map.xx, 0.0), atol=0)
    ax = Figure().add_subplot()
    disp.plot(ax)
    marks = [c for c in ax.collections if c.get_label() == "counterexample"]
    np.testing.assert_allclose(marks[0].get_offsets()[0], r.witness)
    polys = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert len(polys[-1].get_paths()) == len(r.witness_region) > 0
    assert "FAILS" in ax.get_title()
    with pytest.raises(AssertionError, match="FAILS") as info:
        assert_claim(dead("hidden_0:0"), RELU_X1, DIST, plot=False, plot_dir=tmp_path)
    assert "map with the counterexample" not in str(info.value)
    assert not list(tmp_path.iterdir())


def test_claims_import_neither_matplotlib_nor_viz():
    code = ("import sys, toylab.claims; "
            "bad = [m for m in sys.modules if m.split('.')[0] == 'matplotlib' "
            "or m.startswith('toylab.viz')]; assert not bad, bad")  # fmt: skip
    subprocess.run([sys.executable, "-c", code], check=True)
