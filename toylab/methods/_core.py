r"""What every sampled method shares: members, the per-call :class:`Context`, the result
protocol, the vmapped JAX programs and small statistics.

**Members.** A method takes one model (a toylab model or a
:class:`~toylab.network.Network`) or a list of them with one architecture (an ensemble).
Internally that is a :class:`Members` value: every member as a float64 NumPy network
(the exact side evaluates on the host) and all members stacked as one float32 JAX
network (:meth:`~toylab.network.Network.stack`), so every sampled computation is one
``jax.vmap`` over members.

**One compiled program for every neuron.** The programs below take the stacked network
and a *flat index* (:meth:`~toylab.network.Network.flat_index`, a traced integer), so
one compilation serves every neuron; patching uses the network's ``hooks`` with a flat
mask and flat values. Their compilations depend on the architecture and array shapes
only, never on the neuron.

**The context.** A :class:`Context` is owned by the caller and holds what the exact
side computes once per member: the exact :class:`~toylab.exact.Analysis` (computed when
first asked), the exact partition of the domain box (free once the analysis exists),
and the exact accuracies of edited networks. Pass one to several methods (``context=``)
to reuse it; :func:`toylab.methods.compare` builds one per call.

**Results.** Every method result satisfies :class:`MethodResult`: the same fields
``sampled``, ``exact``, ``error``, ``error_tier``, ``exact_error``, ``misleads``,
``num_forward``, ``num_backward``, ``units`` and ``tier``, with the meaning of
``sampled``/``exact`` (``score``) and of ``error`` (``error_measure``) stated by each
result class.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from scipy.special import ndtri

from toylab._errors import NotApplicable, ToylabError, fail
from toylab.distributions.base import Box, FiniteDomain
from toylab.network import Network, as_network
from toylab.neurons import NeuronId
from toylab.tiers import Tier

__all__ = [
    "MISLEAD_FRACTION",
    "Context",
    "EditedAccuracy",
    "MethodResult",
    "Members",
    "as_members",
]

#: A sampled answer *misleads* when it is off by more than this fraction of the
#: relevant exact scale (each result class says which scale).
MISLEAD_FRACTION = 0.05


# --------------------------------------------------------------------------- results


@dataclasses.dataclass(frozen=True, eq=False, kw_only=True)
class MethodResult:
    """The fields every sampled-method result exposes (one meaning each).

    * ``sampled``: the method's headline answer; ``exact``: its exact counterpart (the
      class attribute ``score`` says what both are, ``units`` in what units);
    * ``error``: how wrong the method is (``error_measure`` says how it is measured;
      ``nan`` when there is no exact counterpart);
    * ``error_tier``: how ``exact``, ``error`` and the ``misleads`` verdict were obtained
      (:mod:`toylab.tiers`: ``exact``, ``certified``, ``estimated``), and
      ``exact_error`` how far they can be from the truth (a bound or an estimate, as the
      tier says);
    * ``misleads``: the result's own verdict, decided in the result (the rule is in each
      class's docstring);
    * ``num_forward``, ``num_backward``: forward and backward passes the method spent;
    * ``tier``: the tier of the sampled answer itself (``"sampled"``, or ``"exact"`` for
      deterministic float32 evaluations such as activation patching).
    """

    method: ClassVar[str]
    score: ClassVar[str]
    error_measure: ClassVar[str]

    neuron: str
    sampled: float
    exact: float
    error: float
    error_tier: Tier
    exact_error: float
    misleads: bool
    num_forward: int
    num_backward: int
    units: str = "activation"
    tier: Tier = "sampled"

    @property
    def detail(self) -> str:
        """Method-specific facts, one line (each result class says more)."""
        return ""


# --------------------------------------------------------------------------- members


@dataclasses.dataclass(frozen=True, eq=False)
class Members:
    """One architecture and its members (see the module docstring).

    ``networks[m]``: member ``m`` as a float64 NumPy network; ``stacked``: every member's
    float32 JAX arrays stacked along a leading axis; ``ensemble``: whether the caller
    passed a list (then methods return a tuple of results).
    """

    networks: tuple[Network, ...]
    stacked: Network
    ensemble: bool

    @property
    def num_members(self) -> int:
        return len(self.networks)

    @property
    def reference(self) -> Network:
        return self.networks[0]

    @property
    def piecewise_linear(self) -> bool:
        return self.reference.piecewise_linear

    @property
    def input_dim(self) -> int:
        return self.reference.input_dim

    @property
    def num_flat(self) -> int:
        return sum(w for k, w in self.reference.widths.items() if k != "input")

    def resolve(self, where: str, neuron: Any, *, hidden_post: bool = False) -> NeuronId:
        """The canonical id of ``neuron`` (a hidden post-activation one if asked)."""
        if not isinstance(neuron, str | NeuronId):
            raise fail(where, "neuron", neuron, "a neuron address like 'hidden_0:3'")
        try:
            nid = self.reference.resolve(neuron)
        except ToylabError as err:
            raise ToylabError(f"{where}: {err}") from None
        if hidden_post and (nid.pre or not nid.layer.startswith("hidden_")):
            raise fail(
                where, "neuron", str(nid), "a hidden post-activation neuron like 'hidden_0:3'"
            )
        return nid

    def flat(self, where: str, neuron: Any, *, hidden_post: bool = False) -> tuple[NeuronId, int]:
        """``(canonical id, flat index)`` of ``neuron``."""
        nid = self.resolve(where, neuron, hidden_post=hidden_post)
        return nid, self.reference.flat_index(nid)

    def hidden_neurons(self) -> list[str]:
        """Every post-activation hidden neuron's address, in network order."""
        widths = self.reference.widths
        keys = [k for k in self.reference.layer_keys() if k.startswith("hidden_") and "." not in k]
        return [f"{k}:{u}" for k in keys for u in range(widths[k])]

    def result(self, items: Sequence[Any]) -> Any:
        """A tuple of per-member results for an ensemble, else the single result."""
        return tuple(items) if self.ensemble else items[0]


def _arrays_equal(a: Network, b: Network) -> bool:
    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    if jax.tree.structure(a) != jax.tree.structure(b):  # type: ignore[operator]
        return False
    return all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(la, lb, strict=True))


def as_members(where: str, model: Any) -> Members:
    """A model, a network or a list of them with one architecture, as :class:`Members`."""
    if isinstance(model, Members):
        return model
    ensemble = isinstance(model, list | tuple)
    items = list(model) if ensemble else [model]
    if not items:
        raise fail(where, "model", model, "a toylab model or a non-empty list of models")
    nets = []
    for i, item in enumerate(items):
        try:
            net = as_network(item, where if not ensemble else f"{where}: model[{i}]")
        except ToylabError:
            raise fail(
                where, "model" if not ensemble else f"model[{i}]", type(item).__name__,
                "a toylab model (toylab.models.MLP, ...) or a toylab.network.Network",
                "Build one with MLP.from_weights or Network.from_weights.",
            ) from None  # fmt: skip
        nets.append(net.numpy(np.float64))
    ref = nets[0]
    for i, net in enumerate(nets[1:], 1):
        shapes = [np.shape(a) for a in jax.tree.leaves(net)]
        shapes0 = [np.shape(a) for a in jax.tree.leaves(ref)]
        if jax.tree.structure(net) != jax.tree.structure(ref) or shapes != shapes0:  # type: ignore[operator]
            raise fail(
                where, f"model[{i}]", repr(net), f"the same architecture as model[0] ({ref!r})",
                "An ensemble's members must share one architecture.",
            )  # fmt: skip
    # stacked on the host in float32, then moved once (no device-side casts to compile)
    stacked = Network.stack([n.numpy(np.float32) for n in nets]).jax()
    return Members(tuple(nets), stacked, ensemble)


# --------------------------------------------------------------------------- the context


def is_finite(dist: Any) -> bool:
    """Whether ``dist`` has a finite domain (modular arithmetic, Boolean functions)."""
    return isinstance(getattr(dist, "domain", None), FiniteDomain)


def is_plane(dist: Any) -> bool:
    """Whether ``dist`` is continuous on a 2-D box (mixtures, rings, noisy curves)."""
    dom = getattr(dist, "domain", None)
    return isinstance(dom, Box) and dom.dim == 2


def require_plane(where: str, dist: Any, why: str) -> None:
    """``NotApplicable`` unless ``dist`` is a 2-D continuous distribution."""
    if not is_plane(dist):
        raise NotApplicable(
            f"{where}: {why}, so it needs a distribution on a 2-D box (Gaussian mixtures, "
            f"rings, noisy curves); got {type(dist).__name__}."
            + (
                " On a finite domain use dataset_examples, ablation, selectivity or "
                "sweep(path=Subfamily(...))."
                if is_finite(dist)
                else ""
            )
        )


@dataclasses.dataclass(frozen=True)
class EditedAccuracy:
    """The exact accuracy of an edited member (and its tier and error)."""

    accuracy: float
    class_accuracy: np.ndarray
    tier: Tier
    error: float


class Context:
    """The exact side of the methods for one model (or ensemble) under one distribution,
    computed once per member and reused by every method and neuron.

    Build one with ``Context(model, dist)`` and pass it as ``context=`` to several
    methods (they check that it was built for the same model and distribution). It holds,
    per member ``m``:

    * :meth:`analysis`: ``toylab.exact.analyze(member, dist, rtol=rtol)`` (on finite
      domains with the table kept), computed when first asked;
    * :meth:`geometry`: the exact partition of the domain box (the analysis' own once it
      exists, else :func:`toylab.exact.partition`, which needs no integration);
    * :meth:`edited`: the exact accuracy of an edited member, keyed by a label.

    ``rtol`` is the quadrature tolerance for non-Gaussian densities
    (:func:`toylab.exact.analyze`). ``num_analyses`` counts the analyses run so far.
    """

    def __init__(self, model: Any, dist: Any, *, rtol: float = 1e-7) -> None:
        from toylab._validate import check_float

        self.members = as_members("Context", model)
        self.dist = dist
        self.rtol = check_float("Context", "rtol", rtol, positive=True)
        self.num_analyses = 0
        self._analyses: dict[int, Any] = {}
        self._geometry: dict[int, Any] = {}
        self._edited: dict[tuple[int, str], EditedAccuracy] = {}

    def __repr__(self) -> str:
        return (
            f"Context({self.members.num_members} member(s) {self.members.reference!r}, "
            f"{type(self.dist).__name__}, {len(self._analyses)} analysed)"
        )

    def check(self, where: str, model: Any, dist: Any) -> None:
        """A clear error unless this context was built for ``model`` and ``dist``."""
        same_dist = dist is self.dist
        if not same_dist:
            try:
                same_dist = bool(dist == self.dist)
            except Exception:  # noqa: BLE001 - incomparable objects are different
                same_dist = False
        members = as_members(where, model)
        same_model = members.num_members == self.members.num_members and all(
            _arrays_equal(a, b)
            for a, b in zip(members.networks, self.members.networks, strict=True)
        )
        if not (same_dist and same_model):
            raise fail(
                where, "context", repr(self), "a Context built for this model and distribution",
                "Build it with toylab.methods.Context(model, dist), or leave context=None.",
            )  # fmt: skip

    def analysis(self, m: int, where: str = "Context") -> Any:
        """The exact analysis of member ``m`` (:class:`toylab.exact.Analysis`)."""
        if m not in self._analyses:
            from toylab.exact import analyze

            try:
                res = analyze(
                    self.members.networks[m],
                    self.dist,
                    rtol=self.rtol,
                    keep_table=is_finite(self.dist),
                )
            except NotApplicable as err:
                raise NotApplicable(f"{where}: no exact answer to score against. {err}") from None
            self.num_analyses += 1
            self._analyses[m] = res
        return self._analyses[m]

    def geometry(self, m: int, where: str = "Context") -> Any:
        """The exact partition of the domain box for member ``m`` (2-D distributions)."""
        if m in self._analyses and self._analyses[m].kind == "plane":
            return self._analyses[m].geometry
        if m not in self._geometry:
            from toylab.exact import partition

            require_plane(where, self.dist, "the exact answer is a partition of the plane")
            try:
                part = partition(self.members.networks[m], self.dist.domain.polygon())
            except NotApplicable as err:
                raise NotApplicable(f"{where}: no exact answer to score against. {err}") from None
            self._geometry[m] = part
        return self._geometry[m]

    def edited(
        self, m: int, label: str, network: Network, where: str = "Context"
    ) -> EditedAccuracy:
        """The exact accuracy of ``network`` (an edit of member ``m`` named ``label``)."""
        if (m, label) not in self._edited:
            from toylab.exact import accuracy

            try:
                res = accuracy(network, self.dist, rtol=self.rtol)
            except NotApplicable as err:
                raise NotApplicable(f"{where}: no exact answer to score against. {err}") from None
            self.num_analyses += 1
            self._edited[m, label] = EditedAccuracy(
                float(res.accuracy), np.asarray(res.class_accuracy), res.tier, float(res.error)
            )
        return self._edited[m, label]


def context_for(where: str, model: Any, dist: Any, context: Context | None) -> Context:
    """``context`` checked against ``model`` and ``dist``, or a fresh one."""
    if context is None:
        return Context(model, dist)
    if not isinstance(context, Context):
        raise fail(where, "context", type(context).__name__, "a toylab.methods.Context or None")
    context.check(where, model, dist)
    return context


# --------------------------------------------------------------------------- JAX programs


def _flat_offsets(net: Network) -> dict[str, tuple[int, int]]:
    out, o = {}, 0
    widths = net.widths
    for key in net.layer_keys():
        out[key] = (o, widths[key])
        o += widths[key]
    return out


def _patch_hooks(net: Network, mask: Any, values: Any) -> dict[str, Any]:
    """Hooks replacing post-activation hidden units where the flat ``mask`` is set."""
    hooks = {}
    for key, (o, w) in _flat_offsets(net).items():
        if key.startswith("hidden_") and "." not in key:

            def hook(h: Any, o: int = o, w: int = w) -> Any:
                return jnp.where(mask[o : o + w], values[..., o : o + w], h)

            hooks[key] = hook
    return hooks


@jax.jit
def flat_values(stacked: Network, x: jax.Array) -> jax.Array:
    """Every member's flat values at shared inputs ``x (..., d)``: ``(M, ..., F)``."""
    return jax.vmap(lambda n: n.forward_flat(x))(stacked)


@jax.jit
def flat_values_each(stacked: Network, x: jax.Array) -> jax.Array:
    """Flat values at per-member inputs ``x (M, ..., d)``: ``(M, ..., F)``."""
    return jax.vmap(lambda n, xx: n.forward_flat(xx))(stacked, x)


@jax.jit
def patched_outputs(
    stacked: Network, x: jax.Array, mask: jax.Array, values: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Clean and patched outputs ``(M, N, C)`` at shared inputs ``x (N, d)``; the hidden
    units where ``mask (F,)`` is set take ``values (M, N or 1, F)``."""

    def one(net: Network, v: jax.Array) -> tuple[jax.Array, jax.Array]:
        return net(x), net.forward(x, hooks=_patch_hooks(net, mask, v))["output"]

    return jax.vmap(one)(stacked, values)


@jax.jit
def flat_gradients(stacked: Network, flat: jax.Array, x: jax.Array) -> jax.Array:
    """The input gradient of flat unit ``flat`` at points ``x (P, d)``: ``(M, P, d)``
    (float32 reverse-mode autodiff, what attribution libraries run)."""

    def one(net: Network) -> jax.Array:
        return jax.vmap(jax.grad(lambda z: net.forward_flat(z)[flat]))(x)

    return jax.vmap(one)(stacked)


def f32(x: Any) -> np.ndarray:
    """``x`` as a host float32 array (passed to the programs as it is: no device-side
    conversion, so no compilation per array shape)."""
    return np.asarray(x, np.float32)


def to_f64(x: Any) -> np.ndarray:
    return np.asarray(x, np.float64)


# --------------------------------------------------------------------------- helpers


def check_key(where: str, key: Any) -> jax.Array:
    """``key`` if it is a JAX PRNG key (``jax.random.key(seed)``)."""
    ok = isinstance(key, jax.Array) and (
        jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key)
        or (key.dtype == jnp.uint32 and key.shape == (2,))
    )
    if not ok:
        raise fail(where, "key", type(key).__name__, "a JAX PRNG key", "Pass jax.random.key(seed).")
    return key


def numpy_rng(key: jax.Array) -> np.random.Generator:
    """A NumPy generator seeded by the key's bits (no compiled sampler needed)."""
    return np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel().tolist())


def positive_int(where: str, name: str, value: Any, minimum: int = 1) -> int:
    from toylab._validate import check_int

    return check_int(where, name, value, minimum=minimum)


def normal_ci(mean: float, se: float, level: float = 0.95) -> tuple[float, float]:
    """Two-sided normal confidence interval."""
    z = float(ndtri(0.5 + level / 2))
    return float(mean - z * se), float(mean + z * se)


def wilson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for ``k`` successes in ``n`` trials."""
    if n == 0:
        return (0.0, 1.0)
    z = float(ndtri(0.5 + level / 2))
    p = k / n
    den = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return (max(0.0, mid - half), min(1.0, mid + half))


def domain_box(dist: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(low, high)`` float64 of a continuous distribution's domain box."""
    return np.asarray(dist.domain.low, np.float64), np.asarray(dist.domain.high, np.float64)


def latent_groups(batch: Any, groups: str) -> np.ndarray:
    """Each sample's group: its mixture component, or its class."""
    if groups == "component":
        lat: Mapping[str, Any] = batch.latent
        return np.asarray(lat["component"])
    return np.asarray(batch.y)
