"""What a check knows about one (model, distribution) pair (private).

A :class:`Context` holds the model as a float64 :class:`toylab.network.Network` and
evaluates it with the network's own forward pass (:meth:`~toylab.network.Network.forward`,
NumPy float64; JAX float64 for the gradient-guided search) and directional derivatives
(:meth:`~toylab.network.Network.jvp`). On a plane ``origin + s d1 + t d2`` the network
is composed with the plane (:meth:`~toylab.network.Network.on_plane`), so every
coordinate a claim sees is ``(s, t)``. Everything exact comes from :mod:`toylab.exact`.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import numpy as np

from toylab._errors import NotApplicable, ToylabError, fail
from toylab._validate import check_array
from toylab.claims.regions import Polygon
from toylab.distributions.base import Box, FiniteDomain
from toylab.exact import Analysis, analyze, box, partition, region_moments, slice_partition
from toylab.network import Network, as_network
from toylab.neurons import NeuronId
from toylab.tiers import Tier


@dataclasses.dataclass(frozen=True)
class Mass:
    """The probability of a set of polygons: ``value`` with an absolute ``error`` of ``tier``
    (``exact``: a rounding bound; ``estimated``: a quadrature's error estimate)."""

    value: float
    error: float
    tier: Tier


class Context:
    """A model and a distribution, seen through the coordinates claims use.

    Coordinates are the input itself, or ``(s, t)`` on a plane
    ``origin + s d1 + t d2`` (``plane``), restricted to the convex polygon ``window``.
    """

    def __init__(
        self, model: Any, dist: Any, *, plane: Any = None, window: Any = None, where: str = "check"
    ) -> None:
        self.model = model
        self.dist = dist
        self.network: Network = as_network(model, where).untied().numpy(np.float64)
        domain = getattr(dist, "domain", None)
        self.finite = isinstance(domain, FiniteDomain)
        if not self.finite and not isinstance(domain, Box):
            raise fail(
                where,
                "dist",
                type(dist).__name__,
                "a toylab distribution with a box or a finite domain",
            )
        data_dim = domain.dim  # type: ignore[union-attr]
        if self.network.input_dim != data_dim:
            raise fail(
                where,
                "model",
                repr(self.network),
                f"a network with {data_dim} inputs (the distribution's dimension)",
            )
        self.plane: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self.window: np.ndarray | None = None
        n = self.network.input_dim
        if plane is not None:
            if self.finite:
                raise fail(
                    where,
                    "plane",
                    "a plane",
                    "None for a finite domain",
                    "Finite domains are checked on their own inputs.",
                )
            if not isinstance(plane, tuple | list) or len(plane) != 3:
                raise fail(where, "plane", plane, "a triple (origin, d1, d2)")
            o, d1, d2 = (
                check_array(where, f"plane[{i}]", p, shape=(n,)) for i, p in enumerate(plane)
            )
            if np.linalg.matrix_rank(np.stack([d1, d2])) < 2:
                raise fail(where, "plane", plane, "two linearly independent directions d1, d2")
            self.plane = (o, d1, d2)
            self.net = self.network.on_plane(o, d1, d2)
            if window is None:
                window = box()
            try:
                self.window = np.asarray(Polygon(window).vertices)  # CCW
            except ToylabError:
                raise fail(
                    where,
                    "window",
                    window,
                    "the vertices of a convex polygon in (s, t)",
                    "For example toylab.exact.box((-2, -2), (2, 2)).",
                ) from None
            self.low, self.high = self.window.min(0), self.window.max(0)
        else:
            if window is not None:
                raise fail(
                    where,
                    "window",
                    window,
                    "None without a plane",
                    "A window is a region of a plane: pass plane=(origin, d1, d2).",
                )
            self.net = self.network
            if self.finite:
                inputs = np.asarray(domain.inputs, np.float64)  # type: ignore[union-attr]
                self.low, self.high = inputs.min(0), inputs.max(0)
            else:
                self.low = np.asarray(domain.low, np.float64)  # type: ignore[union-attr]
                self.high = np.asarray(domain.high, np.float64)  # type: ignore[union-attr]
                if len(self.low) == 2:
                    self.window = domain.polygon()  # type: ignore[union-attr]
        self.dim = len(self.low)

    # ------------------------------------------------------------------ neurons
    def resolve(self, neuron: str | NeuronId, *, allow_input: bool = False) -> NeuronId:
        return self.net.resolve(neuron, allow_input=allow_input)

    def _net(self, xp: Any) -> Network:
        if xp is np:
            return self.net
        import jax.numpy as jnp

        return self.net.jax(jnp.float64)  # traced inside jax.enable_x64 (the search)

    def values(self, x: Any, nid: NeuronId, xp: Any = np) -> Any:
        """The neuron's value at coordinates ``x (N, dim)`` (one forward pass)."""
        return self._net(xp).forward(x)[nid.key][..., nid.unit]

    def directional(self, x: Any, nid: NeuronId, d: Any, xp: Any = np) -> Any:
        """Derivative of the neuron along ``d`` (coordinates) at ``x``, by forward mode."""
        return self._net(xp).jvp(x, d)[nid.key][..., nid.unit]

    def gradient(self, x: np.ndarray, nid: NeuronId) -> np.ndarray:
        """The neuron's gradient with respect to the coordinates at ``x (N, dim)``."""
        return np.asarray(self.net.gradient(x, nid))

    # ------------------------------------------------------------------ exact machinery
    @property
    def exact_geometry(self) -> bool:
        """Piecewise-linear network on 2-D inputs (or a plane): exact geometry applies."""
        return (
            self.net.piecewise_linear
            and not self.finite
            and self.dim == 2
            and self.window is not None
        )

    @functools.cached_property
    def geometry(self) -> Any:
        """The exact partition of the domain box (or of the plane's window)."""
        if self.plane is not None:
            return slice_partition(self.network, *self.plane, self.window)
        return partition(self.network, self.window)

    @functools.cached_property
    def analysis(self) -> Analysis | None:
        """:func:`toylab.exact.analyze` of the pair (finite domains keep their table), or
        ``None`` where it does not apply (a plane, smooth activations, more dimensions)."""
        if self.plane is not None:
            return None
        try:
            return analyze(self.network, self.dist, keep_table=True)
        except NotApplicable:
            return None

    @functools.cached_property
    def superposition(self) -> Any:
        """The exact superposition metrics of a toy model of superposition
        (:func:`toylab.superposition.superposition_metrics`), ``None`` for other models."""
        from toylab.superposition import superposition_metrics

        try:
            return superposition_metrics(self.model, threshold=0.0)
        except ToylabError:
            return None

    @functools.cached_property
    def measurable(self) -> Tier | None:
        """The tier of masses of polygons under the distribution (``exact`` for Gaussian
        mixtures, ``estimated`` for other densities), ``None`` where there are none (a
        plane, a finite domain, inputs that are not 2-D)."""
        if self.plane is not None or self.finite or self.dim != 2:
            return None
        try:
            return region_moments(self.dist, []).tier
        except NotApplicable:
            return None

    def mass(self, polygons: list[np.ndarray]) -> Mass | None:
        """The probability of disjoint polygons (or ``None``: see :attr:`measurable`)."""
        if self.measurable is None:
            return None
        if not polygons:
            return Mass(0.0, 0.0, self.measurable)
        origin = self.geometry.origin
        rm = region_moments(self.dist, [q - origin for q in polygons], rtol=1e-7, origin=origin)
        return Mass(float(rm.m0.sum()), float(rm.error[:, :, 0].sum()), rm.tier)

    # ------------------------------------------------------------------ sampling
    def sample(self, key: Any, num_samples: int) -> tuple[np.ndarray, np.ndarray, Any]:
        if self.plane is not None:
            raise NotApplicable(
                "check: sampled verdicts need the distribution's own inputs, not a plane; "
                "check without plane=... to sample."
            )
        batch = self.dist.sample(key, num_samples)
        return np.asarray(batch.x, np.float64), np.asarray(batch.y), batch.latent
