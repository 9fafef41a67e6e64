"""Hypothesis strategies for toylab objects.

Use them in ordinary pytest tests::

    from hypothesis import given
    from toylab.testing.strategies import distributions, networks, neurons, points

    @given(networks(activations=("relu",)), distributions())
    def test_something(model, dist): ...

* :func:`distributions` -- valid Gaussian mixtures (random, and the presets);
* :func:`networks` -- :meth:`toylab.models.MLP.from_weights` models with random
  widths, depths, activations and weights, including degenerate ones (zero rows,
  duplicated units, dead units);
* :func:`points` -- inputs inside a domain (a box, a finite domain, or a distribution's);
* :func:`neurons` -- canonical neuron addresses of a model (``"hidden_0:3"``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from hypothesis import strategies as st

from toylab._errors import ToylabError
from toylab.activations import ACTIVATIONS

__all__ = ["distributions", "networks", "neurons", "points"]


def _floats(lo: float, hi: float) -> st.SearchStrategy[float]:
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False)


@st.composite
def _mixtures(draw: Any, dim: int, max_components: int, max_classes: int) -> Any:
    from toylab.distributions import GaussianMixture

    k = draw(st.integers(1, max_components))
    means = [tuple(draw(_floats(-4.0, 4.0)) for _ in range(dim)) for _ in range(k)]
    covs = []
    for _ in range(k):
        # Sigma = L L^T + 0.05 I with bounded L: positive definite and well conditioned
        L = np.array([[draw(_floats(-1.5, 1.5)) if j <= i else 0.0 for j in range(dim)]
                      for i in range(dim)])  # fmt: skip
        cov = L @ L.T + 0.05 * np.eye(dim)
        covs.append(tuple(tuple(float(v) for v in row) for row in 0.5 * (cov + cov.T)))
    raw = np.array([draw(_floats(0.1, 1.0)) for _ in range(k)])
    weights = raw / raw.sum()
    weights[-1] = 1.0 - weights[:-1].sum()
    num_classes = draw(st.integers(1, min(k, max_classes)))
    classes = list(range(num_classes)) + [draw(st.integers(0, num_classes - 1))
                                          for _ in range(k - num_classes)]  # fmt: skip
    classes = draw(st.permutations(classes))
    return GaussianMixture(tuple(means), tuple(covs), tuple(float(w) for w in weights),
                           tuple(classes))  # fmt: skip


def _presets() -> st.SearchStrategy[Any]:
    from toylab.distributions import blobs_on_circle, two_blobs, xor_blobs

    return st.one_of(
        st.builds(two_blobs, distance=_floats(0.5, 6.0), scale=_floats(0.3, 2.0)),
        st.builds(xor_blobs, offset=_floats(0.5, 3.0), scale=_floats(0.3, 1.5)),
        st.builds(blobs_on_circle, k=st.integers(2, 6), radius=_floats(1.0, 4.0),
                  scale=_floats(0.2, 1.0), labels=st.sampled_from(["alternating", "distinct"])),
    )  # fmt: skip


def distributions(
    *, dim: int = 2, max_components: int = 4, max_classes: int = 3, presets: bool = True
) -> st.SearchStrategy[Any]:
    """Valid :class:`toylab.distributions.GaussianMixture` objects in ``dim`` dimensions.

    Random mixtures (1..``max_components`` components with means in ``[-4, 4]``,
    covariances ``L Lᵀ + 0.05 I``, positive weights, every class used) and, in 2-D
    with ``presets``, the presets with random parameters.
    """
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
        raise ToylabError(f"distributions: dim must be a positive integer, got {dim!r}.")
    if max_components < 1 or max_classes < 1:
        raise ToylabError(
            f"distributions: max_components and max_classes must be >= 1, got "
            f"{max_components!r} and {max_classes!r}."
        )
    random = _mixtures(dim, max_components, max_classes)
    return st.one_of(random, _presets()) if presets and dim == 2 else random


@st.composite
def _networks(draw: Any, input_dim: int, output_dim: int, activations: Sequence[str],
              max_width: int, max_depth: int, degenerate: bool) -> Any:  # fmt: skip
    depth = draw(st.integers(1, max_depth))
    widths = [input_dim] + [draw(st.integers(1, max_width)) for _ in range(depth)] + [output_dim]
    act = draw(st.sampled_from(list(activations)))
    weights, biases = [], []
    for a, b in zip(widths[:-1], widths[1:], strict=True):
        W = np.array([[draw(_floats(-3.0, 3.0)) for _ in range(b)] for _ in range(a)])
        c = np.array([draw(_floats(-2.0, 2.0)) for _ in range(b)])
        if degenerate and draw(st.booleans()):
            mode = draw(st.sampled_from(["zero_column", "duplicate", "dead", "zero"]))
            j = draw(st.integers(0, b - 1))
            if mode == "zero_column":
                W[:, j] = 0.0
            elif mode == "duplicate" and b > 1:
                W[:, j], c[j] = W[:, (j + 1) % b], c[(j + 1) % b]
            elif mode == "dead":
                W[:, j], c[j] = 0.0, -1.0
            elif mode == "zero":
                W[:] = 0.0
        weights.append(W)
        biases.append(c)
    from toylab.models import MLP

    return MLP.from_weights(weights, biases, act)  # the one builder: no initializer runs


def networks(
    input_dim: int = 2,
    *,
    output_dim: int = 2,
    activations: Sequence[str] = ("relu", "leaky_relu", "abs", "hardtanh", "tanh"),
    max_width: int = 4,
    max_depth: int = 2,
    degenerate: bool = True,
) -> st.SearchStrategy[Any]:
    """:class:`toylab.models.MLP` models with random widths, depths, activations, weights.

    Weights in ``[-3, 3]``, biases in ``[-2, 2]``; with ``degenerate`` a layer may get a
    zero column, a duplicated unit, a dead unit (zero weights, bias -1) or all-zero
    weights, the cases exact geometry must survive.
    """
    bad = [a for a in activations if a not in ACTIVATIONS]
    if bad or not activations:
        raise ToylabError(
            f"networks: activations must be names from {sorted(ACTIVATIONS)}, got "
            f"{list(activations)!r}."
        )
    for name, v in (("input_dim", input_dim), ("output_dim", output_dim),
                    ("max_width", max_width), ("max_depth", max_depth)):  # fmt: skip
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ToylabError(f"networks: {name} must be a positive integer, got {v!r}.")
    return _networks(input_dim, output_dim, tuple(activations), max_width, max_depth, degenerate)


def points(domain: Any) -> st.SearchStrategy[np.ndarray]:
    """Inputs ``(d,)`` inside a domain: a :class:`~toylab.distributions.Box`, a
    :class:`~toylab.distributions.FiniteDomain` (its elements), or a distribution."""
    dom = getattr(domain, "domain", domain)
    if hasattr(dom, "inputs"):
        inputs = np.asarray(dom.inputs, np.float64)
        return st.integers(0, len(inputs) - 1).map(lambda i: inputs[i].copy())
    if hasattr(dom, "low") and hasattr(dom, "high"):
        coords = [_floats(float(lo), float(hi)) for lo, hi in zip(dom.low, dom.high, strict=True)]
        return st.tuples(*coords).map(lambda t: np.asarray(t, np.float64))
    raise ToylabError(
        f"points: domain must be a Box, a FiniteDomain or a distribution, got {domain!r}."
    )


def neurons(
    model: Any, *, layers: Sequence[str] | None = None, pre: bool = False
) -> st.SearchStrategy[str]:
    """Canonical addresses of the model's neurons (hidden layers by default; ``pre``
    adds pre-activations; ``layers`` picks layer keys such as ``"output"``)."""
    from toylab.neurons import neuron_ids

    widths = model.widths
    if layers is None:
        layers = [k for k in widths if k.startswith("hidden_")
                  and (pre or not k.endswith(".pre"))]  # fmt: skip
    ids = [str(n) for n in neuron_ids(widths, list(layers))]
    if not ids:
        raise ToylabError(f"neurons: the model has no neurons in layers {list(layers)!r}.")
    return st.sampled_from(ids)
