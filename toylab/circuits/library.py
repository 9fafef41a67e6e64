r"""A library of handwritten circuits, each derived in its docstring and verified exactly.

Every constructor returns a :class:`toylab.circuits.Circuit` whose ``model`` is a
float64 :class:`toylab.network.Network` (every analysis accepts one) and whose
:meth:`~toylab.circuits.Circuit.verify` checks the claim with toylab's exact tools:
the exact partition and Gaussian integrals on 2-D inputs (:func:`toylab.exact.analyze`,
:func:`toylab.exact.partition`), exhaustive enumeration on finite domains
(:func:`toylab.exact.finite_table`).

**float64, and the tolerances it allows.** A circuit's weights are its closed form
rounded once to float64 (relative error ``2^-53 ~ 1.1e-16``), and the checks analyse
those weights in float64. The tolerances are therefore set by float64 rounding, not by
the float32 rounding of toylab's training models (which moved polygon vertices by
``~1e-7`` relative and needed tolerances of ``1e-5``):

* accuracies: an accuracy is stationary at the Bayes optimum, so weight rounding of
  ``1e-16`` moves it by ``~1e-32``; the check allows exactly the two computations'
  stated error bounds (``accuracy(...).error + dist.bayes().error``, about ``1e-13``);
* polygons: the active region's vertices are intersections of float64 lines, so they
  sit within a few thousand ulps of the polygon's (tolerance ``1e-12`` times the
  polygon's size; areas ``1e-12`` times its squared size). The partition's tolerance
  band (``tol = 1e-9`` relative) never moves a vertex: it only decides on which side
  of a line a vertex lies;
* masses of the blob detector: the two polygon masses are closed forms (Owen's T) with
  stated rounding bounds, over polygons whose boundaries are within ``1e-12`` relative
  of each other: the tolerance is the two bounds plus the mass of that band;
* finite tasks: the margins are computed in float64 (every input); the accuracy must be
  1 within the table's rounding bound and every margin positive.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from toylab._errors import ToylabError, fail
from toylab._validate import check_float, check_int, is_int
from toylab.circuits.circuit import Circuit, VerifyResult
from toylab.distributions import GaussianMixture
from toylab.exact import (
    accuracy,
    active_region,
    finite_table,
    gaussian_polygon_moments,
    partition,
    polygon_area,
)
from toylab.exact import box as exact_box
from toylab.network import Network
from toylab.tiers import weakest

__all__ = [
    "blob_detector",
    "fisher_discriminant",
    "majority",
    "modular_addition",
    "parity",
    "polygon_detector",
    "ring_detector",
    "xor_circuit",
]

#: relative tolerance of the polygon checks (float64 vertices: module docstring)
POLYGON_RTOL = 1e-12


def _net(weights: list[np.ndarray], biases: list[np.ndarray], activation: str = "relu") -> Network:
    return Network.from_weights(weights, biases, activation, dtype=np.float64)


# --------------------------------------------------------------------------- 2-D Gaussians


def _reaches_bayes(dist: Any, reference: str) -> Any:
    """A ``verify`` check: the circuit's exact accuracy equals the Bayes accuracy within
    the two computations' stated errors (module docstring)."""

    def check(circ: Circuit) -> VerifyResult:
        res = accuracy(circ.model, dist)
        bayes = dist.bayes()
        bayes_tier = bayes.tier
        gap = abs(res.accuracy - float(bayes.accuracy))
        allowed = res.error + float(bayes.error)
        return VerifyResult(
            circ.name,
            circ.claim,
            gap <= allowed,
            {
                "accuracy": res.accuracy,
                "bayes_accuracy": float(bayes.accuracy),
                "gap": gap,
                "allowed_gap": allowed,
            },
            weakest(res.tier, bayes_tier),
            f"{res.method}; vs {reference} ({bayes.method})",
        )

    return check


def fisher_discriminant(dist: Any) -> Circuit:
    r"""The Bayes-optimal classifier of two Gaussians with a shared covariance.

    Derivation. With :math:`x \mid y{=}k \sim N(\mu_k, \Sigma)` and priors
    :math:`\pi_k`, the log posterior ratio is affine:

    .. math::

        s(x) = \log\frac{p(x, y{=}1)}{p(x, y{=}0)}
             = w^\top x + c,\quad w = \Sigma^{-1}(\mu_1 - \mu_0),\quad
             c = -\tfrac12 (\mu_1 + \mu_0)^\top w + \log\frac{\pi_1}{\pi_0},

    (the quadratic terms :math:`x^\top\Sigma^{-1}x` cancel), and the Bayes rule
    predicts class 1 iff :math:`s(x) > 0` (Fisher's discriminant with the threshold
    from the log prior ratio). As a ReLU network: two hidden units
    :math:`h_1 = \mathrm{relu}(s)`, :math:`h_0 = \mathrm{relu}(-s)` and logits
    :math:`(\ell_0, \ell_1) = (h_0, h_1)`, so :math:`\ell_1 - \ell_0 = s` exactly.

    Claim (checked by :meth:`Circuit.verify`): the exact accuracy
    (:func:`toylab.exact.accuracy`) equals the exact Bayes accuracy ``dist.bayes()``
    within their stated errors (about ``1e-13``; module docstring).
    """
    where = "fisher_discriminant"
    if not isinstance(dist, GaussianMixture) or dist.num_components != 2:
        raise fail(where, "dist", dist, "a GaussianMixture with two components")
    means, covs, weights, classes = dist.arrays()
    if not np.array_equal(covs[0], covs[1]):
        raise ToylabError(f"{where}: the two components must share one covariance, got {covs}.")
    if sorted(classes.tolist()) != [0, 1]:
        raise ToylabError(f"{where}: the components must have classes 0 and 1, got {classes}.")
    i0, i1 = classes.tolist().index(0), classes.tolist().index(1)
    w = np.linalg.solve(covs[0], means[i1] - means[i0])
    c = -0.5 * (means[i1] + means[i0]) @ w + math.log(weights[i1] / weights[i0])
    W0 = np.stack([w, -w], axis=1)
    model = _net([W0, np.array([[0.0, 1.0], [1.0, 0.0]])], [np.array([c, -c]), np.zeros(2)])
    meanings = {
        "hidden_0:0": ("evidence_1", "relu of the log posterior ratio log p(y=1|x)/p(y=0|x)"),
        "hidden_0:1": ("evidence_0", "relu of the log posterior ratio log p(y=0|x)/p(y=1|x)"),
    }

    check = _reaches_bayes(dist, "the closed-form Bayes accuracy")

    return Circuit(
        "fisher_discriminant",
        model,
        meanings,
        "exact accuracy equals the Bayes-optimal accuracy (within the stated errors)",
        dist,
        check,
    )


def xor_circuit(dist: Any, *, activation: str = "abs") -> Circuit:
    r"""XOR of four blobs: class 0 iff :math:`x_1 x_2 > 0` (the axes boundary).

    Derivation. :math:`|x_1 + x_2| - |x_1 - x_2| = 2\,\mathrm{sign}(x_1 x_2)
    \min(|x_1|, |x_2|)` (check the four sign cases), whose zero set is exactly the
    two axes. With ``activation="abs"`` two hidden units compute
    :math:`|x_1 + x_2|` ("same-sign evidence") and :math:`|x_1 - x_2|`
    ("opposite-sign evidence") and the logits are those two units. With
    ``activation="relu"`` each absolute value is :math:`|u| = \mathrm{relu}(u) +
    \mathrm{relu}(-u)`, four hidden units. (With two or three ReLU units the
    decision function has at most three breakpoint lines and cannot change sign
    across both half-axes of both axes with the correct signs; we use four.)

    For :func:`toylab.distributions.xor_blobs` (isotropic, equal weights) the axes
    are the Bayes boundary, with accuracy :math:`\Phi(a/s)^2 + \Phi(-a/s)^2`.

    Claim: the exact accuracy equals that Bayes accuracy within the stated errors.
    """
    where = "xor_circuit"
    if activation not in ("abs", "relu"):
        raise ToylabError(f"{where}: activation must be 'abs' or 'relu', got {activation!r}.")
    if activation == "abs":
        W0 = np.array([[1.0, 1.0], [1.0, -1.0]])
        W1 = np.eye(2)
        meanings = {
            "hidden_0:0": ("same_sign", "|x1 + x2|: large when x1 and x2 share a sign"),
            "hidden_0:1": ("opposite_sign", "|x1 - x2|: large when x1 and x2 differ in sign"),
        }
    else:
        W0 = np.array([[1.0, -1.0, 1.0, -1.0], [1.0, -1.0, -1.0, 1.0]])
        W1 = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
        meanings = {
            "hidden_0:0": ("both_positive", "relu(x1 + x2): the (+,+) side of the same-sign axis"),
            "hidden_0:1": ("both_negative", "relu(-x1 - x2): the (-,-) side"),
            "hidden_0:2": ("x1_over_x2", "relu(x1 - x2): the (+,-) side of the opposite axis"),
            "hidden_0:3": ("x2_over_x1", "relu(x2 - x1): the (-,+) side"),
        }
    model = _net([W0, W1], [np.zeros(W0.shape[1]), np.zeros(2)], activation)

    check = _reaches_bayes(dist, "the closed-form XOR Bayes accuracy")

    return Circuit(
        f"xor_{activation}",
        model,
        meanings,
        "decision boundary is the two axes; exact accuracy equals the Bayes accuracy",
        dist,
        check,
    )


# --------------------------------------------------------------------------- polygons


def _max_tree(A: np.ndarray, c: np.ndarray) -> tuple[list, list, dict, np.ndarray, np.ndarray]:
    r"""Hidden ReLU layers computing :math:`g(x) = \max_i (x A + c)_i` exactly.

    Uses :math:`\max(u, v) = u + \mathrm{relu}(v - u)` and :math:`u = \mathrm{relu}(u)
    - \mathrm{relu}(-u)`: each level pairs the running values, with units
    ``relu(u), relu(-u), relu(v - u)`` per pair (``relu(u), relu(-u)`` for an odd
    one out), halving their number. Returns the layers and ``(M, m)`` with
    ``g = H M + m`` for the last hidden layer ``H``.
    """
    Ws: list[np.ndarray] = []
    bs: list[np.ndarray] = []
    meanings: dict[str, tuple[str, str]] = {}
    M, m = A, c  # current values z = H @ M + m (H = x at the start)
    spans = [(i, i) for i in range(A.shape[1])]
    level = 0
    while M.shape[1] > 1:
        cols_w, cols_b, new_rows, new_spans = [], [], [], []
        n = M.shape[1]
        unit = 0
        for j in range(0, n, 2):
            u_w, u_b = M[:, j], m[j]
            if j + 1 < n:
                v_w, v_b = M[:, j + 1], m[j + 1]
                cols_w += [u_w, -u_w, v_w - u_w]
                cols_b += [u_b, -u_b, v_b - u_b]
                new_rows.append([1.0, -1.0, 1.0])
                lo, hi = spans[j][0], spans[j + 1][1]
                names: tuple[str, ...] = ("pos", "neg", "gain")
                expl: tuple[str, ...] = (
                    f"relu of the running max over edges {spans[j][0]}..{spans[j][1]}",
                    f"relu of minus the running max over edges {spans[j][0]}..{spans[j][1]}",
                    f"how much edges {spans[j + 1][0]}..{spans[j + 1][1]} exceed edges "
                    f"{spans[j][0]}..{spans[j][1]}",
                )
            else:
                cols_w += [u_w, -u_w]
                cols_b += [u_b, -u_b]
                new_rows.append([1.0, -1.0])
                lo, hi = spans[j]
                names, expl = (
                    ("pos", "neg"),
                    (
                        f"relu of the running max over edges {lo}..{hi}",
                        f"relu of minus the running max over edges {lo}..{hi}",
                    ),
                )
            for nm, ex in zip(names, expl, strict=True):
                meanings[f"hidden_{level}:{unit}"] = (f"max{level}_{lo}_{hi}_{nm}", ex)
                unit += 1
            new_spans.append((lo, hi))
        Ws.append(np.stack(cols_w, axis=1))
        bs.append(np.asarray(cols_b))
        M_new = np.zeros((unit, len(new_rows)))
        r = 0
        for col, rows in enumerate(new_rows):
            M_new[r : r + len(rows), col] = rows
            r += len(rows)
        M, m, spans = M_new, np.zeros(len(new_rows)), new_spans
        level += 1
    return Ws, bs, meanings, M[:, 0], np.asarray(m[0])


def polygon_detector(
    normals: Any, offsets: Any, *, inside_class: int = 0
) -> tuple[Network, dict[str, tuple[str, str]]]:
    r"""A ReLU network whose last hidden unit fires exactly inside a convex polygon.

    The polygon is :math:`P = \{x : n_i \cdot x \le o_i\ \forall i\}`. Its "outside
    score" :math:`g(x) = \max_i (n_i\cdot x - o_i)` is negative exactly on the
    interior, and is computed exactly by a tree of maxima (:func:`_max_tree`, depth
    :math:`\lceil\log_2 k\rceil`). The last hidden layer holds
    :math:`\mathrm{relu}(-g)` ("inside", active exactly on the open interior) and
    :math:`\mathrm{relu}(g)` ("outside"); the logits are those two units, so the
    prediction is ``inside_class`` exactly on the interior (ties only on the edges).

    Returns the float64 network and the meanings of its units (the building block of
    :func:`ring_detector` and :func:`blob_detector`, which add the check).
    """
    where = "polygon_detector"
    N = np.asarray(normals, np.float64)
    if N.ndim != 2 or N.shape[1] != 2 or len(N) < 1 or not np.all(np.isfinite(N)):
        raise fail(where, "normals", normals, "a finite (k, 2) array of edge normals, k >= 1")
    o = np.asarray(offsets, np.float64)
    if o.shape != (len(N),) or not np.all(np.isfinite(o)):
        raise fail(where, "offsets", offsets, f"a finite ({len(N)},) array, one per normal")
    if inside_class not in (0, 1) or isinstance(inside_class, bool):
        raise fail(where, "inside_class", inside_class, "0 or 1")
    Ws, bs, meanings, gw, gb = _max_tree(N.T, -o)
    L = len(Ws)
    Ws.append(np.stack([-gw, gw], axis=1))
    bs.append(np.array([-float(gb), float(gb)]))
    meanings[f"hidden_{L}:0"] = ("inside", "relu(-max_i(n_i.x - o_i)): > 0 exactly inside")
    meanings[f"hidden_{L}:1"] = ("outside", "relu(max_i(n_i.x - o_i)): > 0 exactly outside")
    out = np.eye(2) if inside_class == 0 else np.eye(2)[::-1]
    Ws.append(out)
    bs.append(np.zeros(2))
    return _net(Ws, bs), meanings


def _regular_polygon(k: int, circumradius: float, phase: float = 0.0) -> tuple[np.ndarray, ...]:
    """Vertices (CCW), unit edge normals and apothems of a regular k-gon centred at 0."""
    t = phase + 2 * np.pi * np.arange(k) / k
    vertices = circumradius * np.stack([np.cos(t), np.sin(t)], axis=1)
    mid = t + np.pi / k
    normals = np.stack([np.cos(mid), np.sin(mid)], axis=1)
    apothem = np.full(k, circumradius * math.cos(math.pi / k))
    return vertices, normals, apothem


def _check_region_is_polygon(
    model: Any, unit_key: str, unit: int, vertices: np.ndarray, box: np.ndarray
) -> tuple[dict[str, float], list[np.ndarray]]:
    """Compare the exact active region of a unit with a CCW polygon (areas, Hausdorff).

    Returns the numbers and the active region's pieces.
    """
    pieces = active_region(partition(model, box), unit_key, unit)
    area = float(sum(abs(polygon_area(p)) for p in pieces))
    pts = np.concatenate(pieces) if pieces else np.zeros((0, 2))
    exact_area = abs(polygon_area(vertices))
    # every active vertex lies in the polygon, every polygon vertex is an active vertex
    edges = np.roll(vertices, -1, axis=0) - vertices
    normal = np.stack([edges[:, 1], -edges[:, 0]], 1) / np.linalg.norm(edges, axis=1)[:, None]
    if len(pts):
        signed = np.einsum("pvd,vd->pv", pts[:, None, :] - vertices[None], normal)
        outside = float(max(signed.max(), 0.0))
        near = float(np.linalg.norm(vertices[:, None] - pts[None], axis=2).min(1).max())
    else:
        outside, near = 0.0, float("inf")
    nums = {
        "active_area": area,
        "polygon_area": exact_area,
        "area_error": abs(area - exact_area),
        "max_outside": outside,
        "max_vertex_distance": near,
        "num_pieces": float(len(pieces)),
    }
    return nums, pieces


def ring_detector(radius: float, k: int, *, inside_class: int = 0) -> Circuit:
    r"""A k-gon of ReLU half-planes approximating the disc of radius ``radius``.

    Construction: the regular k-gon inscribed in the circle (vertices
    :math:`r(\cos 2\pi j/k, \sin 2\pi j/k)`) is :math:`\{x : n_j\cdot x \le
    r\cos(\pi/k)\}` with unit normals :math:`n_j` at angles :math:`2\pi j/k + \pi/k`
    (the apothem is :math:`r\cos(\pi/k)`); :func:`polygon_detector` turns it into a
    network whose "inside" unit fires exactly on it.

    Exact approximation error (closed form). The inscribed k-gon has area
    :math:`A_k = \tfrac{k}{2} r^2 \sin(2\pi/k)` and lies inside the disc, so the
    symmetric difference with the disc has area
    :math:`\pi r^2 - A_k = \pi r^2 (1 - \tfrac{\sin(2\pi/k)}{2\pi/k})
    = \tfrac{2\pi^3}{3k^2} r^2 + O(k^{-4})`.

    Claim (checked exactly from the partition of the box :math:`[-2r, 2r]^2`): the
    region where the "inside" unit fires is the k-gon (areas agree, no active vertex
    outside it, every k-gon vertex is a vertex of the region), up to float64 rounding
    (tolerance ``1e-12 r``, ``1e-12 r^2`` on areas; module docstring).
    """
    where = "ring_detector"
    k = check_int(where, "k", k, minimum=3)
    radius = check_float(where, "radius", radius, positive=True)
    vertices, normals, apothem = _regular_polygon(k, radius)
    model, meanings = polygon_detector(normals, apothem, inside_class=inside_class)
    inside = next(a for a, (n, _) in meanings.items() if n == "inside")
    key, unit = inside.split(":")
    box = exact_box((-2.0 * radius, -2.0 * radius), (2.0 * radius, 2.0 * radius))

    def check(circ: Circuit) -> VerifyResult:
        nums, _ = _check_region_is_polygon(circ.model, key, int(unit), vertices, box)
        closed = 0.5 * k * radius**2 * math.sin(2 * math.pi / k)
        nums["closed_form_area"] = closed
        nums["disc_area"] = math.pi * radius**2
        nums["symmetric_difference_area"] = math.pi * radius**2 - closed
        tol = POLYGON_RTOL * radius
        ok = (
            nums["area_error"] <= tol * radius
            and abs(nums["polygon_area"] - closed) <= POLYGON_RTOL * radius**2
            and nums["max_outside"] <= tol
            and nums["max_vertex_distance"] <= tol
        )
        return VerifyResult(circ.name, circ.claim, ok, nums, "exact",
                            "active region of 'inside' from the exact partition vs the k-gon")  # fmt: skip

    return Circuit(
        f"ring_detector_{k}",
        model,
        meanings,
        f"the 'inside' unit fires exactly on the regular {k}-gon inscribed in the circle of "
        f"radius {radius}",
        None,
        check,
    )


def blob_detector(
    dist: Any, component: int, *, k_sigma: float = 2.0, num_sides: int = 8
) -> Circuit:
    r"""A unit active only inside a polygon approximating a component's k-sigma ellipse.

    Construction. With :math:`\Sigma = L L^\top` (Cholesky), the ellipse
    :math:`E = \{x : (x-\mu)^\top\Sigma^{-1}(x-\mu) \le k^2\}` is the image of the
    disc of radius :math:`k` under :math:`y \mapsto \mu + L y`. The image of the
    regular ``num_sides``-gon inscribed in that disc, :math:`P = \mu + L P_m`, is
    :math:`\{x : n_j\cdot L^{-1}(x - \mu) \le k\cos(\pi/m)\}`, i.e. half-planes with
    normals :math:`L^{-\top} n_j` and offsets :math:`k\cos(\pi/m) + (L^{-\top}n_j)
    \cdot\mu`; :func:`polygon_detector` builds the unit.

    Masses. Under the component, :math:`(x-\mu)^\top\Sigma^{-1}(x-\mu) \sim
    \chi^2_2`, so :math:`P(x \in E) = 1 - e^{-k^2/2}` (closed form), and
    :math:`P(x \in P) = P(y \in P_m)` for standard normal ``y``, computed exactly by
    :func:`toylab.exact.gaussian_polygon_moments`. The difference
    :math:`P(E) - P(P) > 0` is the polygon approximation.

    Claim (checked exactly): the unit's active region is the polygon (as in
    :func:`ring_detector`: positions within ``1e-12`` times the polygon's size), and its
    exact mass under the component equals the polygon's exact mass, which is below the
    ellipse's chi-square mass. The masses may differ by their closed forms' stated
    rounding bounds plus the mass of a band of that width around the boundary
    (perimeter x width x peak density): ``mass_tolerance``, about ``1e-12``.
    """
    where = "blob_detector"
    if not isinstance(dist, GaussianMixture):
        raise fail(where, "dist", dist, "a GaussianMixture")
    means, covs, _, _ = dist.arrays()
    component = check_int(where, "component", component, minimum=0, maximum=len(means) - 1)
    k_sigma = check_float(where, "k_sigma", k_sigma, positive=True)
    num_sides = check_int(where, "num_sides", num_sides, minimum=3)
    mu, cov = means[component], covs[component]
    L = np.linalg.cholesky(cov)
    unit_vertices, unit_normals, apothem = _regular_polygon(num_sides, k_sigma)
    vertices = mu + unit_vertices @ L.T
    normals = unit_normals @ np.linalg.inv(L)  # rows: L^{-T} n_j
    offsets = apothem + normals @ mu
    model, meanings = polygon_detector(normals, offsets)
    key, unit = next(a for a, (n, _) in meanings.items() if n == "inside").split(":")
    half = 2.0 * float(np.max(np.abs(vertices - mu))) + 1.0
    box = exact_box(mu - half, mu + half)

    def check(circ: Circuit) -> VerifyResult:
        nums, pieces = _check_region_is_polygon(circ.model, key, int(unit), vertices, box)
        active_m0, *_, active_err = gaussian_polygon_moments(pieces, mu, cov, return_error=True)
        poly_m0, *_, poly_err = gaussian_polygon_moments([vertices], mu, cov, return_error=True)
        active_mass, polygon_mass = float(active_m0.sum()), float(poly_m0.sum())
        ellipse_mass = 1.0 - math.exp(-(k_sigma**2) / 2)
        tol = POLYGON_RTOL * float(np.abs(vertices).max())  # the polygon's size
        # the masses differ by their rounding bounds plus the mass of a band of width tol
        # around the polygon's boundary (at most its perimeter x tol x the peak density)
        perimeter = float(np.linalg.norm(np.roll(vertices, -1, 0) - vertices, axis=1).sum())
        peak = 1.0 / (2.0 * math.pi * math.sqrt(float(np.linalg.det(cov))))
        mass_tol = float(active_err[:, 0].sum() + poly_err[:, 0].sum()) + perimeter * tol * peak
        nums.update(
            active_mass=active_mass,
            polygon_mass=polygon_mass,
            ellipse_mass=ellipse_mass,
            approximation_gap=ellipse_mass - polygon_mass,
            mass_tolerance=mass_tol,
        )
        ok = (
            nums["max_outside"] <= tol
            and nums["max_vertex_distance"] <= tol
            and abs(active_mass - polygon_mass) <= mass_tol
            and polygon_mass < ellipse_mass
        )
        return VerifyResult(circ.name, circ.claim, ok, nums, "exact",
                            "exact partition; exact Gaussian polygon masses vs chi-square")  # fmt: skip

    return Circuit(
        f"blob_detector_{component}",
        model,
        meanings,
        f"the 'inside' unit fires exactly on a {num_sides}-gon inscribed in component "
        f"{component}'s {k_sigma}-sigma ellipse",
        dist,
        check,
    )


# --------------------------------------------------------------------------- finite tasks


def _finite_check(dist: Any) -> Any:
    """A ``verify`` check: every input's correct logit beats every other (exhaustive)."""

    def check(circ: Circuit) -> VerifyResult:
        res = finite_table(circ.model, dist, keep_table=True)
        out = res.table["output"]
        labels = np.asarray(dist.domain.labels)
        correct = out[np.arange(len(out)), labels]
        rival = np.where(np.eye(out.shape[1], dtype=bool)[labels], -np.inf, out).max(1)
        margin = float((correct - rival).min())
        return VerifyResult(
            circ.name,
            circ.claim,
            margin > 0 and res.accuracy >= 1.0 - res.error,
            {"accuracy": res.accuracy, "min_margin": margin, "num_inputs": float(len(out))},
            res.tier,
            res.method,
        )

    return check


def parity(n: int) -> Circuit:
    r"""Parity of ``n`` bits with ``n`` ReLU units on the bit count.

    Derivation. Parity depends only on :math:`s = \sum_i x_i \in \{0..n\}`. Take the
    piecewise-linear interpolant :math:`g` of :math:`g(j) = (-1)^{j+1}` (``+1`` for
    odd counts). Its slope on :math:`[j, j+1]` is :math:`2(-1)^j`, so
    :math:`g(s) = -1 + 2\,\mathrm{relu}(s) + \sum_{j=1}^{n-1} 4(-1)^j\,
    \mathrm{relu}(s - j)`: hidden unit ``j`` is :math:`\mathrm{relu}(s - j)`
    ("at least j+1 bits on" beyond j). Logits :math:`(\ell_0, \ell_1) = (-g/2, g/2)`;
    the margin :math:`|g(s)| = 1` at every input, so the logit gap is 1.

    Claim: 100% accuracy on all :math:`2^n` inputs, minimum margin 1.
    """
    from toylab.distributions import BooleanFunction

    n = check_int("parity", "n", n, minimum=1)
    W0 = np.ones((n, n))
    b0 = -np.arange(n, dtype=np.float64)
    coef = np.array([2.0] + [4.0 * (-1) ** j for j in range(1, n)])
    W1 = np.stack([-coef / 2, coef / 2], axis=1)
    b1 = np.array([0.5, -0.5])
    meanings = {
        f"hidden_0:{j}": (f"count_above_{j}", f"relu(#bits - {j}): bits counted beyond {j}")
        for j in range(n)
    }
    dist = BooleanFunction(n, "parity")
    return Circuit(
        f"parity_{n}",
        _net([W0, W1], [b0, b1]),
        meanings,
        f"computes the parity of {n} bits on every input",
        dist,
        _finite_check(dist),
    )


def majority(n: int) -> Circuit:
    r"""Majority of ``n`` bits (1 iff more than half are on; ties give 0) with two ReLUs.

    Derivation. The label is 1 iff :math:`s = \sum x_i \ge \lfloor n/2\rfloor + 1`,
    i.e. iff :math:`g(s) = s - \lfloor n/2\rfloor - \tfrac12 > 0`; on integers
    :math:`|g| \ge 1/2`. Hidden units :math:`\mathrm{relu}(g)` ("votes for 1
    beyond the threshold") and :math:`\mathrm{relu}(-g)` (for 0); logits are those
    units, so :math:`\ell_1 - \ell_0 = g` and the margin is :math:`1/2`.

    Claim: 100% accuracy on all :math:`2^n` inputs, minimum margin 1/2.
    """
    from toylab.distributions import BooleanFunction

    n = check_int("majority", "n", n, minimum=1)
    t = n // 2 + 0.5
    W0 = np.stack([np.ones(n), -np.ones(n)], axis=1)
    b0 = np.array([-t, t])
    W1 = np.array([[0.0, 1.0], [1.0, 0.0]])
    meanings = {
        "hidden_0:0": ("votes_for_1", f"relu(#bits - {t}): excess of on-bits over the threshold"),
        "hidden_0:1": ("votes_for_0", f"relu({t} - #bits): shortfall below the threshold"),
    }
    dist = BooleanFunction(n, "majority")
    return Circuit(
        f"majority_{n}",
        _net([W0, W1], [b0, np.zeros(2)]),
        meanings,
        f"computes the majority of {n} bits on every input",
        dist,
        _finite_check(dist),
    )


PHASES = 3  # phases per frequency; any M >= 3 cancels the unwanted terms


def modular_addition(p: int, frequencies: Any = None) -> Circuit:
    r"""Modular addition ``(a + b) mod p`` with quadratic activations (Fourier construction).

    After Gromov, *Grokking modular arithmetic* (2023), made exact by averaging over
    phases instead of relying on random ones. Write :math:`\theta = 2\pi f/p` for a
    frequency :math:`f`, :math:`u = \cos(\theta a + \varphi)`,
    :math:`v = \cos(\theta b + \varphi)` (first-layer weights read off the one-hot
    inputs: row ``a`` of the first block holds :math:`\cos(\theta a + \varphi)`).
    Two hidden units :math:`h_\pm = (u \pm v)^2` give

    .. math::

        h_+ - h_- = 4uv = 2\cos(\theta(a+b) + 2\varphi) + 2\cos(\theta(a-b)).

    With output weights :math:`\pm\cos(\theta c + 2\varphi)/M` to logit ``c`` and
    phases :math:`\varphi_j = \pi j/M`, :math:`j < M = 3`, the sums
    :math:`\sum_j \cos(X + 2\pi j/M)` and :math:`\sum_j \cos(X + 4\pi j/M)` vanish
    (``M >= 3``), leaving exactly :math:`\cos(\theta(a + b - c))` per frequency
    (the squares :math:`u^2, v^2` cancel in :math:`h_+ - h_-`). Over the
    frequencies :math:`f = 1..(p-1)/2`:

    .. math::

        \ell_c = \sum_f \cos(2\pi f (a + b - c)/p) = \tfrac{p\,[c \equiv a+b] - 1}{2},

    so the right logit is :math:`(p-1)/2`, every other is :math:`-1/2` (margin
    :math:`p/2`). With a subset of frequencies the right logit is still the unique
    maximum (:math:`\cos(2\pi f m/p) = 1` iff :math:`p \mid m`, for prime ``p``),
    with a smaller margin. Width: :math:`2M` units per frequency.

    Claim: 100% accuracy over all :math:`p^2` pairs (exhaustive), i.e. the correct
    logit beats every other on every pair (minimum margin > 0).
    """
    from toylab.distributions import ModularArithmetic

    p = check_int("modular_addition", "p", p, minimum=3)
    freqs = list(range(1, (p - 1) // 2 + 1)) if frequencies is None else list(frequencies)
    if not freqs or not all(is_int(f) and 0 < f % p for f in freqs):
        raise ToylabError(
            f"modular_addition: frequencies must be non-zero integers mod p, got {frequencies!r}."
        )
    dist = ModularArithmetic(p, "add")  # validates that p is prime
    a = np.arange(p)
    cols_in, cols_out, meanings = [], [], {}
    unit = 0
    for f in freqs:
        theta = 2 * np.pi * f / p
        for j in range(PHASES):
            phi = np.pi * j / PHASES
            for sign in (1.0, -1.0):
                cols_in.append(
                    np.concatenate([np.cos(theta * a + phi), sign * np.cos(theta * a + phi)])
                )
                cols_out.append(sign * np.cos(theta * a + 2 * phi) / PHASES)
                s = "+" if sign > 0 else "-"
                meanings[f"hidden_0:{unit}"] = (
                    f"f{f}_phase{j}{s}",
                    f"(cos(2pi {f} a/p + {j}pi/3) {s} cos(2pi {f} b/p + {j}pi/3))^2",
                )
                unit += 1
    W0 = np.stack(cols_in, axis=1)
    W1 = np.stack(cols_out, axis=0)
    model = _net([W0, W1], [np.zeros(W0.shape[1]), np.zeros(p)], "quadratic")
    return Circuit(
        f"modular_addition_{p}",
        model,
        meanings,
        f"computes (a + b) mod {p} on all {p * p} pairs",
        dist,
        _finite_check(dist),
    )
