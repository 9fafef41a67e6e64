r"""Regions of the input plane that claims talk about: half-planes, convex polygons, ellipses.

Every region is closed (its boundary counts as inside) and convex, and offers

* ``signed(x, xp)``: a continuous function that is ``>= 0`` exactly on the region
  (``xp`` is ``numpy`` or ``jax.numpy``, so searches can differentiate it);
* ``contains(x)``: the same test on points ``(N, d)``, with a relative tolerance of 1e-9;
* ``intersects(poly)``: whether a convex polygon overlaps the region with positive area,
  and ``point_inside(poly)`` a point of that overlap (``None`` if there is none);
* ``clip_inside(poly)`` / ``clip_outside(poly)``: convex pieces of ``poly ∩ region`` and
  ``poly \ region``, clipped with :func:`toylab.exact.clip_convex` (the exact module's
  clipper; vertices within 1e-9 of the scale of a line count as on it, so no zero-area
  sliver is produced).

**Polygonal regions** (:class:`HalfPlane`, :class:`Polygon`, :func:`box_region`) are
clipped exactly, so ``clip_inside_upper`` and ``clip_outside_upper`` are the same as
``clip_inside`` and ``clip_outside`` (``polygonal = True``).

**Ellipses.** :class:`Ellipse` is the ``k``-sigma ellipse
``{x : (x - mu)^T Sigma^{-1} (x - mu) <= k^2}`` of a Gaussian (give ``mean`` and ``cov``,
or a mixture ``component`` resolved against the distribution at check time). Verdicts
that only need *containment* and *overlap* are exact: a convex polygon lies in the
ellipse iff all its vertices do, and it overlaps the ellipse iff the whitened
distance from the centre to the polygon is below ``k``. Clipping is not polygonal
(``polygonal = False``): with the inscribed polygon ``I`` and the circumscribed polygon
``O`` of ``num_vertices`` sides (``I ⊂ ellipse ⊂ O``),

* ``clip_inside(poly) = poly ∩ I`` (a subset of ``poly ∩ ellipse``) and
  ``clip_inside_upper(poly) = poly ∩ O`` (a superset);
* ``clip_outside(poly) = poly \ O`` (a subset of ``poly \ ellipse``) and
  ``clip_outside_upper(poly) = poly \ I`` (a superset).

Masses of sets cut by an ellipse are therefore reported as a certified pair of bounds
(the masses of the subset and of the superset), never as one number.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from toylab._errors import ToylabError, did_you_mean, fail
from toylab._validate import check_array, check_float, check_int, float_tuple
from toylab.distributions import GaussianMixture
from toylab.exact import clip_convex, polygon_area

__all__ = ["REGION_KINDS", "Ellipse", "HalfPlane", "Polygon", "box_region", "region_from_config"]

_TOL = 1e-9  # relative: the scale of a line's rounding error (as in toylab.exact.regions)


def _band(poly: np.ndarray, g: np.ndarray, c: float) -> float:
    """Vertices within this distance of ``g . x + c = 0`` count as on the line."""
    return _TOL * (float(np.abs(poly).max()) * float(np.abs(g).sum()) + abs(c)) + 1e-300


def _nonempty(poly: np.ndarray, ref: float) -> bool:
    return len(poly) >= 3 and polygon_area(poly) > 1e-12 * max(ref, 1e-300)


class _Polygonal:
    """Shared code of the regions given by half-planes ``g . x + c >= 0``."""

    polygonal = True

    def halfplanes(self) -> list[tuple[np.ndarray, float]]:  # pragma: no cover - abstract
        raise NotImplementedError

    def resolve(self, dist: Any) -> Any:
        return self

    def signed(self, x: Any, xp: Any = np) -> Any:
        vals = [
            (x[..., 0] * g[0] + x[..., 1] * g[1] + c) / float(np.hypot(*g))
            for g, c in self.halfplanes()
        ]
        out = vals[0]
        for v in vals[1:]:
            out = xp.minimum(out, v)
        return out

    def contains(self, x: Any) -> np.ndarray:
        x = np.asarray(x, np.float64)
        scale = _TOL * (1.0 + np.abs(x).max(axis=-1))
        return np.asarray(self.signed(x)) >= -scale

    def contains_poly(self, poly: np.ndarray) -> bool:
        return bool(self.contains(poly).all())

    def _crossing(self, poly: np.ndarray) -> list[tuple[np.ndarray, float]]:
        """The half-planes that ``poly`` is not inside (beyond the band): the only ones that
        can cut it (clipping by the others changes nothing)."""
        hp = self.halfplanes()
        g = np.array([h[0] for h in hp])
        c = np.array([h[1] for h in hp])
        band = _TOL * (float(np.abs(poly).max()) * np.abs(g).sum(1) + np.abs(c)) + 1e-300
        out = ((poly @ g.T + c) < -band).any(axis=0)
        return [hp[i] for i in np.nonzero(out)[0]]

    def clip_inside(self, poly: np.ndarray) -> list[np.ndarray]:
        ref = abs(polygon_area(poly))
        for g, c in self._crossing(poly):
            poly = clip_convex(poly, g, c, band=_band(poly, g, c))
            if len(poly) < 3:
                return []
        return [poly] if _nonempty(poly, ref) else []

    def intersects(self, poly: np.ndarray) -> bool:
        return bool(self.clip_inside(poly))

    def point_inside(self, poly: np.ndarray) -> np.ndarray | None:
        """A point of ``poly ∩ region`` (the centroid of the overlap), or ``None``."""
        pieces = self.clip_inside(poly)
        return pieces[0].mean(axis=0) if pieces else None

    def clip_outside(self, poly: np.ndarray) -> list[np.ndarray]:
        """Disjoint convex pieces of ``poly`` outside the region (edge ``i`` violated,
        edges ``< i`` kept)."""
        ref = abs(polygon_area(poly))
        pieces = []
        rest = poly
        for g, c in self._crossing(poly):
            out = clip_convex(rest, -g, -c, band=_band(rest, g, c))
            if _nonempty(out, ref):
                pieces.append(out)
            rest = clip_convex(rest, g, c, band=_band(rest, g, c))
            if len(rest) < 3:
                break
        return pieces

    def clip_inside_upper(self, poly: np.ndarray) -> list[np.ndarray]:
        return self.clip_inside(poly)

    def clip_outside_upper(self, poly: np.ndarray) -> list[np.ndarray]:
        return self.clip_outside(poly)


@dataclasses.dataclass(frozen=True)
class HalfPlane(_Polygonal):
    """The closed half-plane ``{x : normal . x >= offset}``.

    >>> HalfPlane((1.0, 0.0), 0.0).contains([[1.0, 5.0], [-1.0, 0.0]]).tolist()
    [True, False]
    """

    normal: tuple[float, ...]
    offset: float = 0.0

    def __post_init__(self) -> None:
        n = float_tuple("HalfPlane", "normal", self.normal)
        if not any(n):
            raise fail("HalfPlane", "normal", self.normal, "a non-zero vector")
        object.__setattr__(self, "normal", n)
        object.__setattr__(self, "offset", check_float("HalfPlane", "offset", self.offset))

    def halfplanes(self) -> list[tuple[np.ndarray, float]]:
        return [(np.asarray(self.normal), -self.offset)]

    def signed(self, x: Any, xp: Any = np) -> Any:
        g = np.asarray(self.normal)
        return (x @ g - self.offset) / float(np.linalg.norm(g))

    def describe(self) -> str:
        terms = " + ".join(f"{v:g}·x{i + 1}" for i, v in enumerate(self.normal) if v)
        return f"{terms} >= {self.offset:g}"

    def to_config(self) -> dict[str, Any]:
        return {"kind": "halfplane", "normal": list(self.normal), "offset": self.offset}


@dataclasses.dataclass(frozen=True)
class Polygon(_Polygonal):
    """A closed convex polygon given by its vertices (either orientation)."""

    vertices: tuple[tuple[float, float], ...]

    def __post_init__(self) -> None:
        v = check_array("Polygon", "vertices", self.vertices, shape=(None, 2))
        if len(v) < 3:
            raise fail("Polygon", "vertices", self.vertices, "at least 3 (x, y) pairs")
        a = polygon_area(v)
        if a == 0:
            raise fail("Polygon", "vertices", self.vertices, "a polygon with positive area")
        if a < 0:
            v = v[::-1]
        e = np.roll(v, -1, axis=0) - v
        cross = e[:, 0] * np.roll(e, -1, axis=0)[:, 1] - e[:, 1] * np.roll(e, -1, axis=0)[:, 0]
        if np.any(cross < -1e-12 * float(np.abs(e).max()) ** 2):
            raise fail(
                "Polygon",
                "vertices",
                self.vertices,
                "the vertices of a convex polygon",
                "Split a non-convex region into convex parts and combine claims with |.",
            )
        object.__setattr__(self, "vertices", tuple((float(p[0]), float(p[1])) for p in v))

    def halfplanes(self) -> list[tuple[np.ndarray, float]]:
        v = np.asarray(self.vertices)
        out = []
        for i in range(len(v)):
            a, b = v[i], v[(i + 1) % len(v)]
            g = np.array([-(b[1] - a[1]), b[0] - a[0]])  # inward normal of a CCW edge
            out.append((g, -float(g @ a)))
        return out

    def describe(self) -> str:
        return "polygon " + ", ".join(f"({x:g}, {y:g})" for x, y in self.vertices)

    def to_config(self) -> dict[str, Any]:
        return {"kind": "polygon", "vertices": [list(p) for p in self.vertices]}


def box_region(low: Any, high: Any) -> Polygon:
    """The closed box ``[low[0], high[0]] x [low[1], high[1]]`` as a :class:`Polygon`."""
    x0, y0 = float_tuple("box_region", "low", low, length=2)
    x1, y1 = float_tuple("box_region", "high", high, length=2)
    if not (x1 > x0 and y1 > y0):
        raise fail("box_region", "high", [x1, y1], f"> low = {[x0, y0]} in both coordinates")
    return Polygon(((x0, y0), (x1, y0), (x1, y1), (x0, y1)))


@dataclasses.dataclass(frozen=True)
class Ellipse:
    """The closed ``k``-sigma ellipse of ``N(mean, cov)`` or of a mixture ``component``.

    With ``component`` set, ``mean`` and ``cov`` come from the distribution at check
    time (:meth:`resolve`). ``num_vertices`` is the number of sides of the inscribed and
    circumscribed polygons that bracket it (see the module docstring for what is exact).
    """

    k: float = 2.0
    component: int | None = None
    mean: tuple[float, float] | None = None
    cov: tuple[tuple[float, float], tuple[float, float]] | None = None
    num_vertices: int = 256

    polygonal = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "k", check_float("Ellipse", "k", self.k, positive=True))
        n = check_int("Ellipse", "num_vertices", self.num_vertices, minimum=8)
        object.__setattr__(self, "num_vertices", n)
        if (self.component is None) == (self.mean is None):
            raise fail(
                "Ellipse",
                "component/mean",
                (self.component, self.mean),
                "given one at a time",
                "Give component=j (a mixture component) or mean and cov.",
            )
        if self.component is not None:
            j = check_int("Ellipse", "component", self.component, minimum=0)
            object.__setattr__(self, "component", j)
            if self.cov is not None:
                raise fail(
                    "Ellipse",
                    "cov",
                    self.cov,
                    "omitted with component=...",
                    "The component's own covariance is used.",
                )
            return
        mean = float_tuple("Ellipse", "mean", self.mean, length=2)
        cov = check_array("Ellipse", "cov", self.cov, shape=(2, 2))
        if not (
            np.allclose(cov, cov.T, rtol=1e-12, atol=0) and np.all(np.linalg.eigvalsh(cov) > 0)
        ):
            raise fail("Ellipse", "cov", self.cov, "a symmetric positive definite 2x2 matrix")
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "cov", tuple(tuple(map(float, r)) for r in cov))

    def resolve(self, dist: Any) -> Ellipse:
        """The ellipse with ``mean`` and ``cov`` filled in from a Gaussian mixture."""
        if self.mean is not None:
            return self
        if not isinstance(dist, GaussianMixture):
            raise fail(
                f"Ellipse(component={self.component})",
                "dist",
                type(dist).__name__,
                "a Gaussian mixture (the ellipse of a mixture component)",
                "Give mean and cov instead of component.",
            )
        a = dist.arrays()
        j = check_int("Ellipse", "component", self.component, maximum=len(a.weights) - 1)
        if a.means.shape[1] != 2:
            raise fail("Ellipse", "component", j, "a component of a 2-D mixture")
        mean = (float(a.means[j, 0]), float(a.means[j, 1]))
        (c00, c01), (c10, c11) = a.covs[j].tolist()
        return dataclasses.replace(self, component=None, mean=mean, cov=((c00, c01), (c10, c11)))

    def _whiten(self) -> tuple[np.ndarray, np.ndarray]:
        mu = np.asarray(self.mean, np.float64)
        chol = np.linalg.cholesky(np.asarray(self.cov, np.float64))
        return mu, np.linalg.inv(chol)

    def signed(self, x: Any, xp: Any = np) -> Any:
        mu, inv = self._whiten()
        z = (x - mu) @ inv.T
        return self.k - xp.sqrt(xp.sum(z * z, axis=-1) + 1e-300)

    def contains(self, x: Any) -> np.ndarray:
        return np.asarray(self.signed(np.asarray(x, np.float64))) >= -_TOL * self.k

    def contains_poly(self, poly: np.ndarray) -> bool:
        return bool(self.contains(poly).all())

    def _nearest(self, poly: np.ndarray) -> tuple[float, np.ndarray]:
        """The whitened distance from the centre to a convex polygon, and the nearest point."""
        mu, inv = self._whiten()
        z = (poly - mu) @ inv.T
        if polygon_area(z) < 0:
            z, poly = z[::-1], poly[::-1]
        e = np.roll(z, -1, axis=0) - z
        if np.all(e[:, 0] * (-z[:, 1]) - e[:, 1] * (-z[:, 0]) >= 0):
            return 0.0, mu  # the centre is inside the polygon
        t = np.clip(-(z * e).sum(1) / np.maximum((e * e).sum(1), 1e-300), 0.0, 1.0)
        d = np.hypot(*(z + t[:, None] * e).T)
        i = int(d.argmin())
        return float(d[i]), poly[i] + t[i] * (np.roll(poly, -1, axis=0)[i] - poly[i])

    def intersects(self, poly: np.ndarray) -> bool:
        """Exact: the whitened distance from the centre to the polygon is below ``k``."""
        return self._nearest(poly)[0] < self.k * (1 - 1e-12)

    def point_inside(self, poly: np.ndarray) -> np.ndarray | None:
        """A point inside both ``poly`` and the ellipse (off their boundaries), or ``None``."""
        d, p = self._nearest(poly)
        if not d < self.k * (1 - 1e-12):
            return None
        c = poly.mean(axis=0)
        _, inv = self._whiten()
        step = float(np.linalg.norm(inv @ (c - p)))
        t = 0.5 if step == 0 else min(0.5, 0.5 * (self.k - d) / step)
        return p + t * (c - p)  # moves into poly, stays inside the ellipse

    def polygon(self, *, outer: bool) -> Polygon:
        """Inscribed (``outer=False``) or circumscribed polygon with ``num_vertices`` sides."""
        n = int(self.num_vertices)
        t = 2 * np.pi * np.arange(n) / n
        r = self.k / (np.cos(np.pi / n) if outer else 1.0)
        circle = r * np.stack([np.cos(t), np.sin(t)], 1)
        mu = np.asarray(self.mean, np.float64)
        chol = np.linalg.cholesky(np.asarray(self.cov, np.float64))
        return Polygon(tuple(map(tuple, mu + circle @ chol.T)))

    def clip_inside(self, poly: np.ndarray) -> list[np.ndarray]:
        return self.polygon(outer=False).clip_inside(poly)

    def clip_inside_upper(self, poly: np.ndarray) -> list[np.ndarray]:
        return self.polygon(outer=True).clip_inside(poly)

    def clip_outside(self, poly: np.ndarray) -> list[np.ndarray]:
        return self.polygon(outer=True).clip_outside(poly)

    def clip_outside_upper(self, poly: np.ndarray) -> list[np.ndarray]:
        return self.polygon(outer=False).clip_outside(poly)

    def describe(self) -> str:
        where = f"component {self.component}" if self.component is not None else "N(mean, cov)"
        return f"{self.k:g}-sigma ellipse of {where}"

    def to_config(self) -> dict[str, Any]:
        if self.component is not None:
            return {"kind": "ellipse", "component": self.component, "k": self.k}
        return {
            "kind": "ellipse",
            "mean": list(self.mean or ()),
            "k": self.k,
            "cov": [list(r) for r in self.cov or ()],
        }


Region = HalfPlane | Polygon | Ellipse
#: Region tables in claim files: kind -> (required keys, optional keys).
REGION_KINDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "halfplane": (("normal",), ("offset",)),
    "polygon": (("vertices",), ()),
    "box": (("low", "high"), ()),
    "ellipse": ((), ("k", "component", "mean", "cov", "num_vertices")),
}


def region_from_config(where: str, name: str, data: Any) -> Region:
    """A region from a table, e.g. ``{kind = "halfplane", normal = [1, 0]}`` (or a region)."""
    if isinstance(data, HalfPlane | Polygon | Ellipse):
        return data
    example = 'region = { kind = "halfplane", normal = [1, 0], offset = 0 }'
    if not isinstance(data, dict) or "kind" not in data:
        raise fail(
            where,
            name,
            data,
            f"a region (HalfPlane, Polygon, Ellipse) or a table with a kind in {list(REGION_KINDS)}",
            f"Example: {example}.",
        )
    kind = data["kind"]
    if not isinstance(kind, str) or kind not in REGION_KINDS:
        hint = did_you_mean(kind, REGION_KINDS) if isinstance(kind, str) else ""
        raise fail(where, f"{name}.kind", kind, f"one of {list(REGION_KINDS)}", hint.strip())
    required, optional = REGION_KINDS[kind]
    fields = {k: v for k, v in data.items() if k != "kind"}
    for key in fields:
        if key not in required and key not in optional:
            allowed = [*required, *optional]
            raise ToylabError(
                f"{where}: unknown key {key!r} in a {kind} {name}; allowed: {allowed}."
                + did_you_mean(key, allowed)
            )
    for key in required:
        if key not in fields:
            raise ToylabError(f"{where}: a {kind} {name} needs {key!r}. Example: {example}.")
    try:
        if kind == "halfplane":
            return HalfPlane(fields["normal"], fields.get("offset", 0.0))
        if kind == "polygon":
            vertices = fields["vertices"]
            if not isinstance(vertices, list | tuple) or not all(
                isinstance(p, list | tuple) for p in vertices
            ):
                raise fail("Polygon", "vertices", vertices, "a list of [x, y] pairs")
            return Polygon(tuple(map(tuple, vertices)))
        if kind == "box":
            return box_region(fields["low"], fields["high"])
        return Ellipse(**fields)
    except ToylabError as e:
        raise ToylabError(f"{where}: {name}: {e}") from None
