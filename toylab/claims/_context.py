"""What a check knows about one (model, distribution) pair (private)."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from toylab._errors import ToylabError
from toylab.activations import PIECEWISE_LINEAR
from toylab.network import Network
from toylab.neurons import NeuronId, resolve


def _act(name: str, z: Any, xp: Any) -> Any:
    if name == "relu":
        return xp.maximum(z, 0.0)
    if name == "leaky_relu":
        return xp.where(z > 0, z, 0.01 * z)
    if name == "abs":
        return xp.abs(z)
    if name == "hardtanh":
        return xp.clip(z, -1.0, 1.0)
    if name == "identity":
        return z
    if name == "tanh":
        return xp.tanh(z)
    if name == "sigmoid":
        return 0.5 * (1.0 + xp.tanh(0.5 * z))
    if name == "quadratic":
        return z * z
    if name == "gelu":
        return z * _ndtr(z, xp)
    raise ToylabError(f"claims: unsupported activation {name!r}.")


def _ndtr(z: Any, xp: Any) -> Any:
    if xp is np:
        from scipy.special import ndtr

        return ndtr(z)
    import jax.scipy.special as jss

    return jss.ndtr(z)


def _dact(name: str, z: Any, xp: Any) -> Any:
    one = z * 0.0 + 1.0
    if name == "relu":
        return xp.where(z > 0, one, 0.0 * one)
    if name == "leaky_relu":
        return xp.where(z > 0, one, 0.01 * one)
    if name == "abs":
        return xp.sign(z)
    if name == "hardtanh":
        return xp.where(xp.abs(z) < 1.0, one, 0.0 * one)
    if name == "identity":
        return one
    if name == "tanh":
        return 1.0 - xp.tanh(z) ** 2
    if name == "sigmoid":
        s = 0.5 * (1.0 + xp.tanh(0.5 * z))
        return s * (1.0 - s)
    if name == "quadratic":
        return 2.0 * z
    if name == "gelu":
        return _ndtr(z, xp) + z * xp.exp(-0.5 * z * z) / np.sqrt(2 * np.pi)
    raise ToylabError(f"claims: unsupported activation {name!r}.")


class Context:
    """A model and a distribution, seen through the coordinates claims use.

    Coordinates are the input itself, or ``(s, t)`` on a plane
    ``origin + s d1 + t d2`` (``plane``), restricted to ``window``.
    """

    def __init__(self, model: Any, dist: Any, *, plane: Any = None, window: Any = None) -> None:
        if not hasattr(model, "affine_layers"):
            raise ToylabError(
                f"check: model must be a toylab MLP (with affine_layers()), got "
                f"{type(model).__name__}."
            )
        self.model = model
        self.dist = dist
        layers, acts = model.affine_layers()
        self.layers = [(np.asarray(w, np.float64), np.asarray(b, np.float64)) for w, b in layers]
        self.acts = list(acts)
        self.input_dim = self.layers[0][0].shape[0]
        self.piecewise_linear = all(a in PIECEWISE_LINEAR for a in self.acts)
        self.finite = getattr(dist, "kind", None) == "finite"
        self.gaussian = type(dist).__name__ == "GaussianMixture"
        self.plane: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self.window: np.ndarray | None = None
        self.low: np.ndarray
        self.high: np.ndarray
        if plane is not None:
            o, d1, d2 = (np.asarray(p, np.float64) for p in plane)
            for name, p in (("origin", o), ("d1", d1), ("d2", d2)):
                if p.shape != (self.input_dim,):
                    raise ToylabError(
                        f"check: plane {name} must have shape ({self.input_dim},), got {p.shape}."
                    )
            self.plane = (o, d1, d2)
            from toylab.exact import box

            self.window = np.asarray(window if window is not None else box(), np.float64)
            self.low, self.high = self.window.min(0), self.window.max(0)
        else:
            domain = getattr(dist, "domain", None)
            if self.finite:
                self.window = None
                inputs = np.asarray(domain.inputs, np.float64)  # type: ignore[union-attr]
                self.low, self.high = inputs.min(0), inputs.max(0)
            else:
                if not hasattr(domain, "low"):
                    raise ToylabError(
                        f"check: dist must have a box or finite domain, got {type(dist).__name__}."
                    )
                self.low = np.asarray(domain.low, np.float64)  # type: ignore[union-attr]
                self.high = np.asarray(domain.high, np.float64)  # type: ignore[union-attr]
                if len(self.low) == 2:
                    self.window = domain.polygon()  # type: ignore[union-attr]
            if self.input_dim != len(self.low):
                raise ToylabError(
                    f"check: the model takes {self.input_dim} inputs but the distribution has "
                    f"dimension {len(self.low)}."
                )
        self.dim = len(self.low)

    # ------------------------------------------------------------------ neurons
    def resolve(self, neuron: str | NeuronId) -> NeuronId:
        nid = resolve(neuron, self.model.widths)
        if nid.layer == "input":
            raise ToylabError(
                f"check: claims are about hidden or output neurons, got {str(nid)!r}."
            )
        return nid

    def to_input(self, x: Any, xp: Any = np) -> Any:
        if self.plane is None:
            return x
        o, d1, d2 = self.plane
        return o + x[..., :1] * d1 + x[..., 1:2] * d2

    def values(self, x: Any, nid: NeuronId, xp: Any = np) -> Any:
        """The neuron's value at coordinates ``x (N, dim)``."""
        h = self.to_input(x, xp)
        for k, ((W, b), act) in enumerate(zip(self.layers[:-1], self.acts, strict=True)):
            z = h @ W + b
            if nid.layer == f"hidden_{k}":
                return z[..., nid.unit] if nid.pre else _act(act, z[..., nid.unit], xp)
            h = _act(act, z, xp)
        W, b = self.layers[-1]
        return (h @ W + b)[..., nid.unit]

    def directional(self, x: Any, nid: NeuronId, d: Any, xp: Any = np) -> Any:
        """Derivative of the neuron along ``d`` (coordinates) at ``x``, by forward mode."""
        h = self.to_input(x, xp)
        dh = self.to_input(xp.asarray(d) + 0.0 * x, xp) - self.to_input(0.0 * x, xp)
        for k, ((W, b), act) in enumerate(zip(self.layers[:-1], self.acts, strict=True)):
            z, dz = h @ W + b, dh @ W
            if nid.layer == f"hidden_{k}":
                if nid.pre:
                    return dz[..., nid.unit]
                return _dact(act, z[..., nid.unit], xp) * dz[..., nid.unit]
            h, dh = _act(act, z, xp), _dact(act, z, xp) * dz
        return (dh @ self.layers[-1][0])[..., nid.unit]

    # ------------------------------------------------------------------ exact machinery
    @property
    def exact_geometry(self) -> bool:
        """Piecewise-linear network on 2-D inputs (or a plane): exact geometry applies."""
        return (
            self.piecewise_linear and not self.finite and self.dim == 2 and self.window is not None
        )

    @property
    def exact_masses(self) -> bool:
        return self.exact_geometry and self.plane is None and self.gaussian

    @functools.cached_property
    def geometry(self) -> Any:
        """The exact partition of the domain box (or the plane's window)."""
        from toylab.exact import partition, slice_partition

        if self.plane is not None:
            return slice_partition(
                Network.from_layers(self.layers, self.acts), *self.plane, self.window
            )
        return partition(Network.from_layers(self.layers, self.acts), self.window)

    @functools.cached_property
    def whole_plane(self) -> Any:
        """The exact partition of the integration box (all but ~1e-32 of the mass)."""
        from toylab.exact import integration_domain, partition

        return partition(
            Network.from_layers(self.layers, self.acts), integration_domain(self.dist).polygon
        )

    @functools.cached_property
    def mixture(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        return tuple(self.dist.arrays())  # type: ignore[return-value]

    def masses(self, polygons: list[np.ndarray]) -> np.ndarray:
        """Per-component masses ``(K, P)`` of polygons (exact; Gaussian mixtures only)."""
        from toylab.exact import mixture_polygon_moments

        means, covs, weights, _ = self.mixture
        if not polygons:
            return np.zeros((len(weights), 0))
        return mixture_polygon_moments(polygons, means, covs, weights)[0]

    def mass(self, polygons: list[np.ndarray]) -> float | None:
        """Total probability of polygons, or ``None`` where no exact mass is available."""
        if not self.exact_masses:
            return None
        return float(self.masses(polygons).sum())

    def pieces(self, nid: NeuronId, part: Any = None) -> tuple[list[np.ndarray], np.ndarray]:
        """Regions of a partition and the neuron's affine map ``(R, 3)`` on each."""
        part = self.geometry if part is None else part
        return part.polygons, part.maps[nid.key][:, nid.unit, :]

    @functools.cached_property
    def table(self) -> Any:
        from toylab.exact import finite_table

        return finite_table(self.model, self.dist, keep_table=True)

    # ------------------------------------------------------------------ sampling
    def sample(self, key: Any, num_samples: int) -> tuple[np.ndarray, np.ndarray, Any]:
        if self.plane is not None:
            raise ToylabError(
                "check: sampled verdicts need the distribution's own inputs, not a plane."
            )
        batch = self.dist.sample(key, num_samples)
        return np.asarray(batch.x, np.float64), np.asarray(batch.y), batch.latent
