"""Regions of the input plane that claims talk about: half-planes, convex polygons, ellipses.

Every region is closed (its boundary counts as inside) and convex, and offers

* ``signed(x, xp)``: a continuous function that is ``>= 0`` exactly on the region
  (``xp`` is ``numpy`` or ``jax.numpy``, so searches can differentiate it);
* ``contains(x)``: the same test on points ``(N, d)``, with a small tolerance;
* ``intersects(poly)``: whether a convex polygon overlaps the region with positive area;
* ``clip_inside(poly)`` / ``clip_outside(poly)``: convex pieces of ``poly ∩ region`` and
  ``poly \\ region``.

**Ellipses.** :class:`Ellipse` is the ``k``-sigma ellipse
``{x : (x - mu)^T Sigma^{-1} (x - mu) <= k^2}`` of a Gaussian (give ``mean`` and ``cov``,
or a mixture ``component`` resolved against the distribution at check time). Verdicts
that only need *containment* and *overlap* are exact: a convex polygon lies in the
ellipse iff all its vertices do, and it overlaps the ellipse iff the whitened
distance from the centre to the polygon is below ``k``. Clipping is not polygonal,
so ``clip_outside`` returns the pieces outside the circumscribed polygon with
``num_vertices`` sides (a subset of the true difference) and ``clip_outside_upper``
those outside the inscribed polygon (a superset): failing masses of ellipse claims
are reported as that pair of bounds.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from toylab._errors import ToylabError, fail

__all__ = ["Ellipse", "HalfPlane", "Polygon", "box_region", "region_from_config"]

_TOL = 1e-9


def clip_convex(poly: np.ndarray, g: np.ndarray, c: float, *, strict: bool = False) -> np.ndarray:
    """The part of a convex polygon where ``g . x + c >= 0`` (Sutherland–Hodgman)."""
    v = poly @ g + c
    scale = _TOL * (float(np.abs(poly).max()) * float(np.abs(g).sum()) + abs(c) + 1e-300)
    keep = v > scale if strict else v >= -scale
    if keep.all():
        return poly
    if not keep.any():
        return np.zeros((0, 2))
    out = []
    n = len(poly)
    for i in range(n):
        j = (i + 1) % n
        if keep[i]:
            out.append(poly[i])
        if keep[i] != keep[j] and v[i] != v[j]:
            t = v[i] / (v[i] - v[j])
            out.append(poly[i] + t * (poly[j] - poly[i]))
    return np.asarray(out, dtype=np.float64).reshape(-1, 2)


def polygon_area(poly: np.ndarray) -> float:
    if len(poly) < 3:
        return 0.0
    x, y = poly[:, 0], poly[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))


def _nonempty(poly: np.ndarray, ref: float) -> bool:
    return len(poly) >= 3 and polygon_area(poly) > 1e-12 * max(ref, 1e-300)


class _Polygonal:
    """Shared code of the regions given by half-planes ``g . x + c >= 0``."""

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

    def clip_inside(self, poly: np.ndarray) -> list[np.ndarray]:
        ref = abs(polygon_area(poly))
        for g, c in self.halfplanes():
            poly = clip_convex(poly, g, c)
            if len(poly) < 3:
                return []
        return [poly] if _nonempty(poly, ref) else []

    def intersects(self, poly: np.ndarray) -> bool:
        return bool(self.clip_inside(poly))

    def contains_poly(self, poly: np.ndarray) -> bool:
        return bool(self.contains(poly).all())

    def clip_outside(self, poly: np.ndarray) -> list[np.ndarray]:
        """Disjoint convex pieces of ``poly`` outside the region (edge ``i`` violated,
        edges ``< i`` kept)."""
        ref = abs(polygon_area(poly))
        pieces = []
        rest = poly
        for g, c in self.halfplanes():
            out = clip_convex(rest, -g, -c, strict=True)
            if _nonempty(out, ref):
                pieces.append(out)
            rest = clip_convex(rest, g, c)
            if len(rest) < 3:
                break
        return pieces

    clip_outside_upper = clip_outside


@dataclasses.dataclass(frozen=True)
class HalfPlane(_Polygonal):
    """The closed half-plane ``{x : normal . x >= offset}``.

    >>> HalfPlane((1.0, 0.0), 0.0).contains([[1.0, 5.0], [-1.0, 0.0]]).tolist()
    [True, False]
    """

    normal: tuple[float, ...]
    offset: float = 0.0

    def __post_init__(self) -> None:
        n = tuple(float(v) for v in np.asarray(self.normal, np.float64).ravel())
        if len(n) < 1 or not all(math.isfinite(v) for v in n) or not any(n):
            raise fail("HalfPlane", "normal", self.normal, "a finite non-zero vector")
        if not math.isfinite(float(self.offset)):
            raise fail("HalfPlane", "offset", self.offset, "a finite number")
        object.__setattr__(self, "normal", n)
        object.__setattr__(self, "offset", float(self.offset))

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
        v = np.asarray(self.vertices, np.float64)
        if v.ndim != 2 or v.shape[1] != 2 or v.shape[0] < 3 or not np.isfinite(v).all():
            raise fail("Polygon", "vertices", self.vertices, "at least 3 finite (x, y) pairs")
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
    (x0, y0), (x1, y1) = (tuple(map(float, low)), tuple(map(float, high)))
    if not (x1 > x0 and y1 > y0):
        raise fail("box_region", "high", (x1, y1), f"> low = {(x0, y0)} in both coordinates")
    return Polygon(((x0, y0), (x1, y0), (x1, y1), (x0, y1)))


@dataclasses.dataclass(frozen=True)
class Ellipse:
    """The closed ``k``-sigma ellipse of ``N(mean, cov)`` or of a mixture ``component``.

    With ``component`` set, ``mean`` and ``cov`` come from the distribution at check
    time (:meth:`resolve`). See the module docstring for what is exact.
    """

    k: float = 2.0
    component: int | None = None
    mean: tuple[float, float] | None = None
    cov: tuple[tuple[float, float], tuple[float, float]] | None = None
    num_vertices: int = 256

    def __post_init__(self) -> None:
        if not (isinstance(self.k, int | float) and math.isfinite(self.k) and self.k > 0):
            raise fail("Ellipse", "k", self.k, "a positive number of standard deviations")
        if (self.component is None) == (self.mean is None):
            raise ToylabError(
                "Ellipse: give either component=j (a mixture component) or mean and cov, "
                f"got component={self.component!r}, mean={self.mean!r}."
            )
        if self.mean is not None:
            cov = np.asarray(self.cov, np.float64)
            if cov.shape != (2, 2) or not np.all(np.linalg.eigvalsh(0.5 * (cov + cov.T)) > 0):
                raise fail("Ellipse", "cov", self.cov, "a 2x2 positive definite matrix")
            object.__setattr__(self, "mean", tuple(map(float, self.mean)))
            object.__setattr__(self, "cov", tuple(tuple(map(float, r)) for r in cov))

    def resolve(self, dist: Any) -> Ellipse:
        if self.mean is not None:
            return self
        means = getattr(dist, "means", None)
        if means is None:
            raise ToylabError(
                f"Ellipse(component={self.component}): the distribution "
                f"{type(dist).__name__} has no mixture components; give mean and cov."
            )
        if not 0 <= int(self.component) < len(means):  # type: ignore[arg-type]
            raise fail("Ellipse", "component", self.component, f"in 0..{len(means) - 1}")
        if len(means[0]) != 2:
            raise ToylabError("Ellipse: components must be 2-D.")
        j = int(self.component)  # type: ignore[arg-type]
        return dataclasses.replace(self, component=None, mean=means[j], cov=dist.covs[j])

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

    def intersects(self, poly: np.ndarray) -> bool:
        """Exact: the whitened distance from the centre to the polygon is below ``k``."""
        mu, inv = self._whiten()
        z = (poly - mu) @ inv.T
        # distance from the origin to a convex polygon in whitened coordinates
        if polygon_area(z) < 0:
            z = z[::-1]
        e = np.roll(z, -1, axis=0) - z
        inside = np.all(e[:, 0] * (-z[:, 1]) - e[:, 1] * (-z[:, 0]) >= 0)
        if inside:
            return True
        t = np.clip(-(z * e).sum(1) / np.maximum((e * e).sum(1), 1e-300), 0.0, 1.0)
        d = np.hypot(*(z + t[:, None] * e).T).min()
        return bool(d < self.k * (1 - 1e-12))

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
        return {"kind": "ellipse", "mean": list(self.mean or ()), "k": self.k,
                "cov": [list(r) for r in self.cov or ()]}  # fmt: skip


Region = HalfPlane | Polygon | Ellipse
REGION_KINDS = ("halfplane", "polygon", "box", "ellipse")


def region_from_config(where: str, data: Any) -> Region:
    """A region from a claim file's table, e.g. ``{kind = "halfplane", normal = [1, 0]}``."""
    from toylab._errors import did_you_mean

    if isinstance(data, HalfPlane | Polygon | Ellipse):
        return data
    if not isinstance(data, dict) or "kind" not in data:
        raise ToylabError(
            f"{where}: region must be a table with a kind ({', '.join(REGION_KINDS)}), got "
            f'{data!r}. Example: region = {{ kind = "halfplane", normal = [1, 0], offset = 0 }}.'
        )
    kind = data["kind"]
    fields = {k: v for k, v in data.items() if k != "kind"}
    allowed = {
        "halfplane": {"normal", "offset"},
        "polygon": {"vertices"},
        "box": {"low", "high"},
        "ellipse": {"k", "component", "mean", "cov", "num_vertices"},
    }
    if kind not in allowed:
        raise ToylabError(
            f"{where}: region kind must be one of {list(REGION_KINDS)}, got {kind!r}."
            + did_you_mean(str(kind), REGION_KINDS)
        )
    for key in fields:
        if key not in allowed[kind]:
            raise ToylabError(
                f"{where}: unknown key {key!r} in a {kind} region; allowed: "
                f"{sorted(allowed[kind])}." + did_you_mean(key, allowed[kind])
            )
    try:
        if kind == "halfplane":
            return HalfPlane(tuple(fields["normal"]), float(fields.get("offset", 0.0)))
        if kind == "polygon":
            return Polygon(tuple(map(tuple, fields["vertices"])))
        if kind == "box":
            return box_region(fields["low"], fields["high"])
        return Ellipse(**fields)
    except KeyError as e:
        raise ToylabError(f"{where}: a {kind} region needs {e.args[0]!r}.") from None
    except (TypeError, ValueError) as e:
        if isinstance(e, ToylabError):
            raise ToylabError(f"{where}: {e}") from None
        raise ToylabError(f"{where}: bad {kind} region {data!r} ({e}).") from None
