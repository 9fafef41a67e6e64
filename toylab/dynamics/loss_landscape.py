r"""The loss landscape of a run: exact Hessians, their outliers, and mode connectivity.

**The loss.** Everything here is about the *training objective* of a run, built from
the run's own per-example loss (:func:`toylab.train.loss_function`: the same
``cross_entropy`` / ``mse`` / ``importance_mse`` or user ``loss_fn`` the step
differentiates, on the model's outputs) averaged with weights over a fixed set of
examples, plus the weight-decay term the optimizer follows:

.. math:: \mathcal L(\theta) = \sum_n w_n\, \ell(f_\theta(x_n), y_n)
          + \tfrac{\lambda}{2} \lVert\theta\rVert^2 ,\qquad \sum_n w_n = 1 .

``λ`` is the member's ``weight_decay`` for ``sgd`` / ``momentum`` / ``adam``, whose
``optax.add_decayed_weights`` adds exactly ``λ θ`` to the gradient (the gradient of the
term above); for ``adamw`` the decay is decoupled from the gradient, is the gradient of
no loss, and ``λ = 0`` here (``method`` says which). The examples (``on=``):

* ``"train"`` (default for :func:`landscape`): what the optimizer's batches average to:
  ``data="full"`` the member's training subset of the finite domain (uniform over it);
  ``data="fixed"`` the member's fixed training set (uniform: the expectation of a
  minibatch with replacement); ``data="fresh"`` the population loss below;
* ``"population"``: a finite task's whole domain weighted by its probabilities (tier
  ``exact``); a continuous distribution's fixed sample of ``num_samples`` drawn from
  ``key`` (every member the same draw of its own distribution). The Hessian is then the
  **exact Hessian of the empirical loss on that sample**; as a statement about the
  population loss it is tier ``sampled`` (below).

**Hessian and spectrum.** The parameters of a member are flattened
(:func:`jax.flatten_util.ravel_pytree`: the order of ``nnx.split``'s state) and the full
``P × P`` Hessian :math:`H = \nabla^2 \mathcal L` is computed by forward-over-reverse
differentiation (:func:`jax.hessian`), for every member in **one compiled program**
(one call per checkpoint, the same program): ``vmap`` over the stacked parameters on an
accelerator; on a CPU, where XLA runs a ``vmap`` of these many tiny matrix products
slower than one member after another, ``lax.map`` over the members inside the same
program (``benchmarks/hessian_spectra.py`` measures both against a Python loop); then
:func:`jnp.linalg.eigh` of :math:`(H + H^\top)/2`. Eigenvalues are stored largest first.
At a kink of a piecewise-linear activation the Hessian is that of the affine piece
JAX's derivative picks (the convention of :mod:`toylab.activations`).

**Outliers** (Papyan 2019; Gur-Ari, Roberts & Dyer 2018, *Gradient descent happens in a
tiny subspace*: about one outlier per class). Rule: with the eigenvalues
:math:`\lambda_1 \ge \lambda_2 \ge \dots` floored at :math:`\tau` (the eigenvalue error,
below which values are indistinguishable from zero), the number of outliers is the
:math:`c \in \{1, \dots, m\}` maximising the log-gap
:math:`\log \lambda_c - \log \lambda_{c+1}`, among the top :math:`m` =
``max_outliers`` (default :math:`\min(3C, P-1)`, ``C`` the number of outputs).
``outlier_gap`` is the ratio :math:`\lambda_c / \lambda_{c+1}` at the chosen ``c``: a
ratio near 1 means there is no separated top group (see :func:`outlier_count`).

**Top subspace.** :math:`V_k` holds the top-``k`` eigenvectors (default ``k = C``) and
:math:`P_k = V_k V_k^\top`:

* ``gradient_overlap`` :math:`= \lVert P_k g\rVert^2 / \lVert g\rVert^2 \in [0, 1]`, ``g``
  the gradient of the same objective at the same point (1 for ``k = P``);
* ``subspace_stability`` between consecutive checkpoints ``t, t+1``:
  :math:`\lVert V_k(t)^\top V_k(t+1)\rVert_F^2 / k`, the mean squared cosine of the
  principal angles (1: the same subspace; ``k/P`` on average for random ones);
* per hidden neuron ``n`` (canonical address, :mod:`toylab.neurons`) with incoming
  weight and bias coordinates :math:`I_n`: ``neuron_share``
  :math:`= \sum_{i \in I_n} (P_k)_{ii} / k` (the fraction of the top subspace lying on
  that neuron's coordinates; the shares of all parameters sum to 1) and
  ``neuron_projection`` :math:`= \lVert P_k \theta_{I_n}\rVert^2 / \lVert\theta_{I_n}\rVert^2`
  (how much of the neuron's own incoming weight vector, embedded in parameter space,
  lies in the top subspace).

**Tiers and errors.** ``exact`` (float64, the default ``dtype``): the objective is a
finite sum and the Hessian is differentiated, not approximated; ``eigenvalue_error`` is
a rounding *budget* :math:`16\,u\,(P + \lceil\log_2 N\rceil)\lVert H\rVert_F` (summation
over ``N`` examples and ``eigh``'s backward error; a budget, not a proof), and the same
budget is the floor of the outlier rule. ``float32`` computes the same in single
precision: tier ``estimated``, with the budget for ``u = 2^{-24}``. ``sampled`` (a
continuous population): the sample is split into ``K = 8`` equal groups with Hessians
:math:`H_g` (their mean is :math:`\hat H`); the errors are approximate 95% confidence
half-widths from the batch means (Student ``t`` with 7 degrees of freedom): for the
loss, for each eigenvalue to first order (:math:`\delta\lambda_i = v_i^\top \delta H
v_i`, so the batch means of :math:`v_i^\top H_g v_i`), for :math:`\lVert \hat H -
H\rVert_2` (the root mean square of :math:`\lVert H_g - \hat H\rVert_2`, an estimate)
and for the gradient. Derived quantities carry the Davis–Kahan bound (Yu, Wang &
Samworth 2015) :math:`\lVert \hat P_k - P_k\rVert_2 \le \min(1, 2\varepsilon/\delta_k)`,
:math:`\delta_k = \lambda_k - \lambda_{k+1}`, ``ε`` the error of the Hessian in norm
(rounding budget, plus the sampled estimate): it bounds the change of the overlap for a
fixed gradient (``subspace_error``); a sampled gradient adds :math:`2\lVert \hat g -
g\rVert / \lVert\hat g\rVert`. A top-``k`` subspace whose gap :math:`\delta_k` is within
that error is not determined by the Hessian: its error is then 1, honestly.

**Mode connectivity** (Garipov et al. 2018; Frankle et al. 2020):
:func:`mode_connectivity` evaluates the objective along
:math:`\theta(\alpha) = (1-\alpha)\theta_a + \alpha\theta_b` (two members, or two
checkpoints of one member) on ``num_points`` values of ``α`` in one program, and at
each point the **exact accuracy** of the interpolated network
(:func:`toylab.exact.analyze` of the network value interpolated layer by layer, on 2-D
and finite distributions). The loss barrier
:math:`\max_\alpha [\mathcal L(\theta(\alpha)) - ((1-\alpha)\mathcal L(\theta_a) +
\alpha \mathcal L(\theta_b))]` is taken on the grid, then refined on a grid of the same
size between the neighbours of the best point: a grid maximum is only a lower bound,
so its tier is at best ``estimated`` with the refinement's change as the error.
:func:`loss_plane` evaluates the objective on a 2-D grid of the plane through three
parameter points (orthonormal coordinates in parameter space, ``a`` at the origin).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.flatten_util import ravel_pytree

from toylab._errors import NotApplicable, ToylabError, fail
from toylab._validate import check_choice, check_int, is_int
from toylab.distributions.params import with_fields
from toylab.models import from_network
from toylab.network import Dense, Network, as_network
from toylab.neurons import NeuronId
from toylab.tiers import Tier, weakest
from toylab.train import Ensemble, EnsembleGroups, loss_function

__all__ = [
    "LandscapeResult",
    "PathResult",
    "PlaneResult",
    "landscape",
    "loss_plane",
    "mode_connectivity",
    "outlier_count",
]

#: Groups a continuous sample is split into for its batch-means error (module docstring).
NUM_GROUPS = 8
#: Student-t 97.5% quantiles with ``K - 1`` degrees of freedom, by ``K``.
_T975 = {8: 2.3646}
_DTYPES = ("float64", "float32")
#: The most memory the Hessians of one call may take (members x groups x P^2 float64).
_MAX_BYTES = 8 * 2**30
_ONS = ("train", "population")


# --------------------------------------------------------------------------- results


@dataclasses.dataclass(frozen=True, eq=False)
class LandscapeResult:
    """The Hessian spectra of members along a run (see the module docstring).

    Arrays are indexed ``(member, checkpoint, ...)`` over ``members`` (run member
    indices) and ``steps``. ``eigenvalues`` ``(M, T, P)`` largest first, with
    ``eigenvalue_error`` ``(M, T)`` (every eigenvalue's error: a rounding budget, or for
    ``sampled`` a 97.5% Chebyshev half-width against the population Hessian);
    ``top_vectors`` ``(M, T, P, k)`` the top-``k`` eigenvectors; ``num_outliers``
    ``(M, T)`` and ``outlier_gap`` by the rule of :func:`outlier_count` (among the top
    ``max_outliers``); ``loss`` ``(M, T)`` the objective with ``loss_error``;
    ``gradient_norm`` ``(M, T)``; ``gradient_overlap`` ``(M, T)`` with
    ``overlap_error``; ``subspace_error`` ``(M, T)`` the bound on ``||P̂_k − P_k||_2``;
    ``subspace_stability`` ``(M, T − 1)`` with ``stability_error``; ``neurons`` the
    hidden neurons' canonical addresses, ``neuron_share`` and ``neuron_projection``
    ``(M, T, num_neurons)``. ``tier`` holds for every number (``exact``, ``estimated``
    for float32, ``sampled`` for a continuous population), ``method`` says how, ``data``
    which examples the loss averages, ``weight_decay`` ``(M,)`` the ``λ`` in it.
    """

    steps: np.ndarray
    members: np.ndarray
    labels: tuple[str, ...]
    num_params: int
    num_classes: int
    k: int
    max_outliers: int
    eigenvalues: np.ndarray
    eigenvalue_error: np.ndarray
    top_vectors: np.ndarray
    num_outliers: np.ndarray
    outlier_gap: np.ndarray
    loss: np.ndarray
    loss_error: np.ndarray
    gradient_norm: np.ndarray
    gradient_overlap: np.ndarray
    overlap_error: np.ndarray
    subspace_error: np.ndarray
    subspace_stability: np.ndarray
    stability_error: np.ndarray
    neurons: tuple[str, ...]
    neuron_share: np.ndarray
    neuron_projection: np.ndarray
    weight_decay: np.ndarray
    tier: Tier
    method: str
    data: str

    def summary(self) -> str:
        """One line per member: outlier counts along the steps, and the last checkpoint's
        top eigenvalues and gradient overlap."""
        lines = [
            f"Hessian spectra ({self.num_params} parameters, {self.num_classes} classes/outputs, "
            f"k = {self.k}) [{self.tier}]: {self.data}"
        ]
        for i, m in enumerate(self.members):
            top = ", ".join(f"{v:.3g}" for v in self.eigenvalues[i, -1, : min(6, self.num_params)])
            lines.append(
                f"member {int(m)} ({self.labels[i]}): outliers by step "
                f"{dict(zip(self.steps.tolist(), self.num_outliers[i].tolist(), strict=True))}; "
                f"last: top eigenvalues {top}; gradient overlap "
                f"{self.gradient_overlap[i, -1]:.3f} ± {self.overlap_error[i, -1]:.2g}"
            )
        return "\n".join(lines)


@dataclasses.dataclass(frozen=True, eq=False)
class PathResult:
    """The objective (and the exact accuracy) along ``θ(α) = (1 − α) θ_a + α θ_b``.

    ``alphas`` ``(A,)``, ``loss`` ``(A,)`` with ``loss_error`` and ``tier`` (as in
    :class:`LandscapeResult`; ``sampled``: a 95% normal CI half-width over the sample's
    per-example losses). ``accuracy`` ``(A,)`` the exact accuracy of the interpolated
    network under the distribution (``None`` where :func:`toylab.exact.analyze` does not
    apply; ``accuracy_method`` says why) with ``accuracy_error`` and
    ``accuracy_tier``. ``barrier`` the loss barrier, at ``barrier_alpha``, with
    ``barrier_error`` and ``barrier_tier`` (a refined grid maximum: ``estimated`` at
    best). ``a``, ``b`` describe the endpoints; ``distance`` is ``||θ_b − θ_a||``.
    """

    alphas: np.ndarray
    loss: np.ndarray
    loss_error: np.ndarray
    accuracy: np.ndarray | None
    accuracy_error: np.ndarray | None
    accuracy_tier: Tier | None
    accuracy_method: str
    barrier: float
    barrier_alpha: float
    barrier_error: float
    barrier_tier: Tier
    distance: float
    a: str
    b: str
    tier: Tier
    method: str
    data: str


@dataclasses.dataclass(frozen=True, eq=False)
class PlaneResult:
    """The objective on the plane through three parameter points.

    ``θ(u, v) = θ_a + u e_1 + v e_2`` with ``e_1 = (θ_b − θ_a)/||θ_b − θ_a||`` and ``e_2``
    the unit vector of ``θ_c − θ_a`` orthogonal to it (coordinates in parameter-space
    length). ``u`` ``(U,)``, ``v`` ``(V,)``, ``loss`` ``(U, V)`` with ``loss_error``;
    ``points`` maps each of ``a``, ``b``, ``c`` to its ``(u, v)``; ``accuracy`` ``(U, V)``
    exact accuracies where asked for and applicable (else ``None``).
    """

    u: np.ndarray
    v: np.ndarray
    loss: np.ndarray
    loss_error: np.ndarray
    points: dict[str, tuple[float, float]]
    accuracy: np.ndarray | None
    accuracy_tier: Tier | None
    tier: Tier
    method: str
    data: str


# --------------------------------------------------------------------------- the objective


@dataclasses.dataclass(frozen=True)
class _Spec:
    """The static part of the objective's programs (hashable: jit's key)."""

    graphdef: Any
    dist: Any
    loss: Any
    fields: tuple[str, ...]
    shared: bool  # examples shared by all members (else one set per member)
    sequential: bool = False  # members one after another inside the program (CPU)


@dataclasses.dataclass(frozen=True, eq=False)
class _Data:
    """Examples grouped ``(K, n, ...)`` (or ``(M, K, n, ...)`` per member), weights
    summing to 1 per member, and what they are."""

    x: np.ndarray
    y: np.ndarray
    w: np.ndarray
    shared: bool
    tier: Tier
    description: str
    num_examples: int


def _groups(x: np.ndarray, y: np.ndarray, w: np.ndarray, k: int, axis: int) -> tuple:
    """Split the example axis into ``k`` equal groups (the remainder is left out)."""
    n = x.shape[axis] // k * k

    def split(a: np.ndarray) -> np.ndarray:
        a = np.take(a, np.arange(n), axis=axis)
        return a.reshape(*a.shape[:axis], k, n // k, *a.shape[axis + 1 :])

    return split(x), split(y), split(w)


def _population(
    dist: Any, dist_params: Mapping[str, Any] | None, num_samples: int, key: Any
) -> _Data:
    if dist.kind == "finite":
        domain = dist.domain
        x, y = np.asarray(domain.inputs), np.asarray(domain.labels)
        w = np.asarray(domain.probs, np.float64)
        w = w / w.sum()
        return _Data(x[None], y[None], w[None], True, "exact",
                     f"the whole finite domain ({len(y)} inputs, weighted by their "
                     "probabilities)", len(y))  # fmt: skip
    key_text = f"key {int(key)}" if is_int(key) else "the given key"
    key = jax.random.key(int(key)) if is_int(key) else key
    if dist_params:
        batch = jax.vmap(lambda dp: with_fields(dist, dp).sample(key, num_samples))(dist_params)
        axis, shared = 1, False
    else:
        batch = dist.sample(key, num_samples)
        axis, shared = 0, True
    x, y = np.asarray(batch.x), np.asarray(batch.y)
    w = np.full(y.shape[: axis + 1], 1.0 / (num_samples // NUM_GROUPS * NUM_GROUPS))
    x, y, w = _groups(x, y, w, NUM_GROUPS, axis)
    n = num_samples // NUM_GROUPS * NUM_GROUPS
    return _Data(x, y, w, shared, "sampled",
                 f"a fixed sample of {n} inputs of the population drawn from {key_text} (the "
                 f"exact Hessian of the empirical loss on it; against the population: "
                 f"{NUM_GROUPS} groups, batch means)", n)  # fmt: skip


def _train_data(ensemble: Ensemble, idx: np.ndarray) -> _Data | None:
    """The training examples of members ``idx`` (``None`` for fresh data)."""
    mode = ensemble.config.data
    if mode == "full":
        d = ensemble.dist.domain
        mask = np.asarray(ensemble.train_data)[idx].astype(np.float64)
        w = mask / mask.sum(axis=1, keepdims=True)
        return _Data(np.asarray(d.inputs)[None], np.asarray(d.labels)[None], w[:, None], True,
                     "exact", f"each member's training subset of the finite domain "
                     f"({int(mask[0].sum())} of {d.size} inputs, uniform)", d.size)  # fmt: skip
    if mode == "fixed":
        x, y = (np.asarray(a)[idx] for a in ensemble.train_data)
        n = y.shape[1]
        w = np.full(y.shape[:2], 1.0 / n)
        return _Data(x[:, None], y[:, None], w[:, None], False, "exact",
                     f"each member's fixed training set ({n} samples, uniform)", n)  # fmt: skip
    return None


def _objective(spec: _Spec, wd: Any, dp: Any) -> Any:
    """``S(theta, x, y, w) = sum_n w_n loss_n`` for one member, and its L2 term."""
    dist = with_fields(spec.dist, dp) if spec.fields else spec.dist
    fn = loss_function(spec.loss, dist)

    def data_sum(theta: Any, unravel: Any, x: Any, y: Any, w: Any) -> Any:
        out = nnx.merge(spec.graphdef, unravel(theta))(x.astype(theta.dtype))
        return jnp.sum(fn(out, y) * w.astype(theta.dtype))

    return data_sum, lambda theta: 0.5 * wd * jnp.sum(theta**2)


@functools.partial(jax.jit, static_argnums=0)
def _spectra_program(
    spec: _Spec, params: Any, x: Any, y: Any, w: Any, wd: Any, dist_params: Any
) -> dict[str, Any]:
    """Loss, gradient and Hessian spectrum of every member (``vmap`` over members, or
    ``lax.map`` where ``spec.sequential``; the groups of a sample ``vmap``-ed inside:
    their Hessians sum to the whole one)."""

    def member(p: Any, x: Any, y: Any, w: Any, wd: Any, dp: Any) -> dict[str, Any]:
        theta, unravel = ravel_pytree(p)
        data_sum, l2 = _objective(spec, wd, dp)

        def group(xg: Any, yg: Any, wg: Any) -> tuple[Any, Any, Any]:
            f = lambda t: data_sum(t, unravel, xg, yg, wg)  # noqa: E731
            val, grad = jax.value_and_grad(f)(theta)
            return val, grad, jax.hessian(f)(theta)

        vals, grads, hess = jax.vmap(group)(x, y, w)
        mass = jnp.sum(w, axis=-1).astype(theta.dtype)  # (K,)
        h = jnp.sum(hess, 0) + wd * jnp.eye(theta.shape[0], dtype=theta.dtype)
        h = (h + h.T) / 2
        g = jnp.sum(grads, 0) + wd * theta
        evals, evecs = jnp.linalg.eigh(h)
        evals, evecs = evals[::-1], evecs[:, ::-1]
        out = {
            "loss": jnp.sum(vals) + l2(theta),
            "grad": g,
            "theta": theta,
            "evals": evals,
            "evecs": evecs,
            "hnorm": jnp.sqrt(jnp.sum(h**2)),
        }
        k = x.shape[0]
        if k > 1:  # batch means over the equal groups of a sample
            denom = k * (k - 1)
            hd, gd = jnp.sum(hess, 0), jnp.sum(grads, 0)
            dev = hess / mass[:, None, None] - hd  # (K, P, P)
            # first order: d lambda_i = v_i^T dH v_i
            q = jnp.einsum("pi,kpq,qi->ki", evecs, dev, evecs)
            out["se_evals"] = jnp.sqrt(jnp.sum(q**2, 0) / denom)
            spec_norm = jnp.max(jnp.abs(jnp.linalg.eigvalsh(dev)), -1)
            out["se_h2"] = jnp.sqrt(jnp.sum(spec_norm**2) / denom)
            out["se_g"] = jnp.sqrt(jnp.sum((grads / mass[:, None] - gd) ** 2) / denom)
            out["se_l"] = jnp.sqrt(jnp.sum((vals / mass - jnp.sum(vals)) ** 2) / denom)
        return out

    if not spec.sequential:
        data_axis = None if spec.shared else 0
        dp_axis = 0 if spec.fields else None
        return jax.vmap(member, in_axes=(0, data_axis, data_axis, 0, 0, dp_axis))(
            params, x, y, w, wd, dist_params
        )
    per: dict[str, Any] = {"p": params, "w": w, "wd": wd}
    if not spec.shared:
        per["x"], per["y"] = x, y
    if spec.fields:
        per["dp"] = dist_params

    def body(a: dict[str, Any]) -> dict[str, Any]:
        return member(a["p"], a.get("x", x), a.get("y", y), a["w"], a["wd"],
                      a.get("dp", dist_params))  # fmt: skip

    return jax.lax.map(body, per)


@functools.partial(jax.jit, static_argnums=0)
def _path_program(
    spec: _Spec, template: Any, thetas: Any, x: Any, y: Any, w: Any, wd: Any, dist_params: Any
) -> tuple[Any, Any]:
    """The objective at every row of ``thetas`` ``(A, P)`` (one member's data), and the
    standard error of its data part (batch means over the groups)."""
    _, unravel = ravel_pytree(template)
    data_sum, l2 = _objective(spec, wd, dist_params)

    def at(theta: Any) -> tuple[Any, Any]:
        vals = jax.vmap(lambda xg, yg, wg: data_sum(theta, unravel, xg, yg, wg))(x, y, w)
        mass = jnp.sum(w, axis=-1).astype(theta.dtype)
        k = x.shape[0]
        se = jnp.sqrt(jnp.sum((vals / mass - jnp.sum(vals)) ** 2) / max(k * (k - 1), 1))
        return jnp.sum(vals) + l2(theta), se

    return jax.vmap(at)(thetas)


# --------------------------------------------------------------------------- sources


def _ensemble_of(where: str, source: Any) -> Ensemble:
    ensemble = getattr(source, "ensemble", None)
    if isinstance(ensemble, EnsembleGroups):
        raise ToylabError(
            f"{where}: this run trained {len(ensemble.groups)} programs of different shapes "
            f"({'; '.join(ensemble.describe())}); Hessians of different sizes cannot share "
            "one program. Run the landscape on a run of one shape (one value of the swept "
            "shape parameter)."
        )
    if not isinstance(ensemble, Ensemble):
        raise fail(where, "run", type(source).__name__,
                   "a toylab run (toylab.runs.load_run) or a TrainResult (toylab.train.train)")  # fmt: skip
    return ensemble


def _steps_of(source: Any) -> list[int]:
    if hasattr(source, "checkpoint_steps"):
        return list(source.checkpoint_steps)
    return sorted(int(s) for s in source.checkpoints)


def _params_at(source: Any, step: int) -> Any:
    if hasattr(source, "params_at"):
        return source.params_at(step)
    return source.checkpoints[step]


def _select(where: str, name: str, value: Any, options: Sequence[int]) -> list[int]:
    if value is None:
        return list(options)
    vals = [value] if is_int(value) else value
    if isinstance(vals, str) or not isinstance(vals, Sequence | np.ndarray) or len(vals) == 0:
        raise fail(
            where, name, value, f"an integer or a non-empty list of them from {list(options)}"
        )
    bad = [v for v in vals if not is_int(v) or int(v) not in options]
    if bad:
        raise fail(where, name, value, f"values from {list(options)}", f"Not available: {bad}.")
    return [int(v) for v in vals]


def _dtype(where: str, dtype: Any) -> Any:
    name = np.dtype(dtype).name if not isinstance(dtype, str) else dtype
    check_choice(where, "dtype", name, _DTYPES)
    return np.float64 if name == "float64" else np.float32


def _cast(tree: Any, dtype: Any) -> Any:
    return jax.tree.map(lambda a: jnp.asarray(np.asarray(a), dtype), tree)


def _weight_decay(ensemble: Ensemble, idx: np.ndarray) -> tuple[np.ndarray, str]:
    wd = np.asarray(ensemble.hparams["weight_decay"], np.float64)[idx]
    if ensemble.config.optimizer == "adamw":
        return np.zeros_like(wd), "adamw's decoupled weight decay is not part of any loss (λ = 0)"
    if np.any(wd > 0):
        return wd, f"plus the L2 term of {ensemble.config.optimizer}'s weight decay"
    return wd, "no weight decay"


def _data_for(
    where: str, ensemble: Ensemble, idx: np.ndarray, on: str, num_samples: int, key: Any
) -> _Data:
    on = check_choice(where, "on", on, _ONS)
    num_samples = check_int(where, "num_samples", num_samples, minimum=2 * NUM_GROUPS)
    if on == "train":
        data = _train_data(ensemble, idx)
        if data is not None:
            return data
    dp = {f: np.asarray(v)[idx] for f, v in ensemble.dist_params.items()}
    data = _population(ensemble.dist, dp or None, num_samples, key)
    if data.shared:  # one weight vector per member (the program maps over them)
        w = np.broadcast_to(data.w, (len(idx), *data.w.shape))
        data = dataclasses.replace(data, w=w)
    return data


def _spec(ensemble: Ensemble, data: _Data, sequential: bool | None = None) -> _Spec:
    """The objective's static description; ``sequential`` (default: on a CPU) maps the
    members with ``lax.map`` instead of ``vmap`` (see :func:`landscape`)."""
    if sequential is None:
        sequential = jax.default_backend() == "cpu"
    return _Spec(ensemble.graphdef, ensemble.dist, ensemble.loss, ensemble.dist_fields,
                 data.shared, sequential)  # fmt: skip


def _eigen_budget(u: float, num_params: int, num_examples: int, hnorm: Any) -> Any:
    return 16 * u * (num_params + math.ceil(math.log2(max(num_examples, 2)))) * hnorm


def _loss_error(sampled: bool, u: float, num_examples: int, loss: Any, se: Any) -> Any:
    """A sample's 95% CI half-width (t with ``K - 1`` degrees of freedom on the batch
    means), else a rounding budget for a pairwise sum of ``N`` terms."""
    if sampled:
        return _T975[NUM_GROUPS] * np.asarray(se)
    return 4 * u * (math.ceil(math.log2(max(num_examples, 2))) + 4) * np.abs(loss)


# --------------------------------------------------------------------------- outliers


def outlier_count(
    eigenvalues: Any, *, max_outliers: int | None = None, floor: float = 0.0
) -> tuple[int, float]:
    r"""The number of outlier eigenvalues and the gap that separates them.

    ``eigenvalues`` sorted largest first (as :class:`LandscapeResult` stores them);
    values are floored at ``floor`` (> 0 if 0 is passed: the largest eigenvalue times
    ``1e-12``, so zero and negative eigenvalues compare equal). The count is the
    ``c`` in ``1..m`` maximising :math:`\log\lambda_c - \log\lambda_{c+1}`, ``m =
    max_outliers`` (default: all but the last); the gap is
    :math:`\lambda_c/\lambda_{c+1}` of the floored values (1.0 when every value is at the
    floor: no outliers to speak of, count 0).

    >>> outlier_count([100.0, 90.0, 80.0, 1.0, 0.9, 0.5, 0.0])
    (3, 80.0)
    """
    lam = np.asarray(eigenvalues, np.float64).ravel()
    if lam.size < 2:
        raise fail("outlier_count", "eigenvalues", lam.tolist(), "at least two values")
    m = lam.size - 1 if max_outliers is None else min(int(max_outliers), lam.size - 1)
    if m < 1:
        raise fail("outlier_count", "max_outliers", max_outliers, "at least 1")
    top = max(float(lam[0]), 0.0)
    tau = floor if floor > 0 else (top * 1e-12 if top > 0 else 1.0)
    if top <= tau:
        return 0, 1.0
    logs = np.log(np.maximum(lam[: m + 1], tau))
    gaps = logs[:-1] - logs[1:]
    c = int(np.argmax(gaps)) + 1
    return c, float(np.exp(gaps[c - 1]))


# --------------------------------------------------------------------------- neurons


def _neuron_coordinates(graphdef: Any, params: Any) -> dict[str, np.ndarray]:
    """Flat parameter indices of each hidden neuron's incoming weights and bias.

    The parameter vector's positions (1-based, so 0 marks an array that is not a
    parameter) are put into the model's own arrays and read back through its network
    value, so every model kind's layout is followed without knowing it."""
    theta, unravel = ravel_pytree(jax.tree.map(lambda a: np.zeros(np.shape(a), np.float32), params))
    if theta.shape[0] >= 2**24:
        raise ToylabError(f"landscape: {theta.shape[0]} parameters are too many for a Hessian.")
    index = unravel(jnp.arange(1, theta.shape[0] + 1, dtype=jnp.float32))
    net = nnx.merge(graphdef, index).to_network()
    out: dict[str, np.ndarray] = {}
    for k in range(net.num_layers - 1):
        layer = net.layers[k]
        if not isinstance(layer, Dense):
            continue
        kern, bias = np.asarray(layer.kernel), np.asarray(layer.bias)
        for j in range(kern.shape[1]):
            ids = np.concatenate([kern[:, j], bias[j : j + 1]]).astype(np.int64)
            out[str(NeuronId(f"hidden_{k}", j))] = ids[ids > 0] - 1
    return out


# --------------------------------------------------------------------------- landscape


def landscape(
    run: Any,
    *,
    members: Any = None,
    steps: Any = None,
    k: int | None = None,
    on: str = "train",
    num_samples: int = 4096,
    key: Any = 0,
    dtype: Any = "float64",
    max_outliers: int | None = None,
) -> LandscapeResult:
    """Hessian spectra, outliers, gradient overlap, subspace stability and neuron shares
    of ``members`` (default: all) at checkpoint ``steps`` (default: all) of ``run`` (a
    :class:`toylab.runs.Run` or a :class:`toylab.train.TrainResult`); see the module
    docstring for every definition, the objective (``on``, ``num_samples``, ``key``) and
    the tiers. ``k`` the top-subspace dimension (default: the number of classes, or of
    outputs for regression); ``dtype`` ``"float64"`` (default: tier ``exact``; computed
    under ``jax.enable_x64``) or ``"float32"`` (tier ``estimated``); ``max_outliers``
    the outlier search's range (default ``min(3 C, P − 1)``).
    """
    where = "landscape"
    ensemble = _ensemble_of(where, run)
    idx = np.asarray(_select(where, "members", members, range(ensemble.num_members)))
    all_steps = _steps_of(run)
    if not all_steps:
        raise ToylabError(f"{where}: the run has no checkpoints.")
    step_list = sorted(set(_select(where, "steps", steps, all_steps)))
    dt = _dtype(where, dtype)
    data = _data_for(where, ensemble, idx, on, num_samples, key)
    wd, wd_text = _weight_decay(ensemble, idx)
    num_out = ensemble.dist.output_dim
    spec = _spec(ensemble, data)
    dp = {f: np.asarray(v)[idx] for f, v in ensemble.dist_params.items()}
    by_step = {s: jax.tree.map(lambda a: np.asarray(a)[idx], _params_at(run, s)) for s in step_list}
    leaves = jax.tree.leaves(by_step[step_list[0]])
    num_params = int(sum(np.prod(np.shape(a)[1:], dtype=np.int64) for a in leaves))
    k = min(num_out, num_params) if k is None else check_int(where, "k", k, minimum=1,
                                                           maximum=num_params)  # fmt: skip
    m_out = (
        min(3 * num_out, num_params - 1)
        if max_outliers is None
        else check_int(where, "max_outliers", max_outliers, minimum=1, maximum=num_params - 1)
    )
    for s, tree in by_step.items():
        bad = [int(idx[i]) for i in range(len(idx))
               if not all(np.all(np.isfinite(a[i])) for a in jax.tree.leaves(tree))]  # fmt: skip
        if bad:
            raise ToylabError(
                f"{where}: members {bad} have non-finite parameters at step {s} (they diverged; "
                f"see run.diverged); a Hessian there means nothing. Pass members= without them."
            )
    size = len(idx) * data.x.shape[-3 if not data.shared else 0] * num_params**2 * 8
    if size > _MAX_BYTES:
        raise ToylabError(
            f"{where}: {len(idx)} members' Hessians of {num_params} parameters need about "
            f"{size / 2**30:.1f} GiB at once. Pass fewer members= (the program maps over them)."
        )
    outs = []
    with jax.enable_x64(dt == np.float64):
        for s in step_list:
            params = by_step[s]
            res = _spectra_program(spec, _cast(params, dt), jnp.asarray(data.x),
                                   jnp.asarray(data.y), jnp.asarray(data.w, dt),
                                   jnp.asarray(wd, dt), _cast(dp, dt) if dp else {})  # fmt: skip
            outs.append({name: np.asarray(v, np.float64) for name, v in res.items()})
        coords = _neuron_coordinates(ensemble.graphdef, jax.tree.map(lambda a: a[0], params))
    stack = {name: np.stack([o[name] for o in outs], axis=1) for name in outs[0]}  # (M, T, ...)
    u = float(np.finfo(dt).eps) / 2
    budget = _eigen_budget(u, num_params, data.num_examples, stack["hnorm"])
    sampled = data.tier == "sampled"
    t975 = _T975[NUM_GROUPS]
    eig_err = budget[..., None] + (t975 * stack["se_evals"] if sampled else 0.0)
    eps_h = budget + (t975 * stack["se_h2"] if sampled else 0.0)  # ||H_hat - H||_2
    tier: Tier = "sampled" if sampled else ("exact" if dt == np.float64 else "estimated")
    evals, evecs, grad = stack["evals"], stack["evecs"], stack["grad"]
    top = evecs[..., :k]
    num_m, num_t = evals.shape[:2]
    counts = np.zeros((num_m, num_t), np.int64)
    gaps = np.ones((num_m, num_t))
    for i in range(num_m):
        for t in range(num_t):
            counts[i, t], gaps[i, t] = outlier_count(
                evals[i, t], max_outliers=m_out, floor=float(budget[i, t])
            )
    # the top-k subspace: Davis-Kahan bound on its error (k = P: the whole space, exact)
    if k < num_params:
        delta = evals[..., k - 1] - evals[..., k]
        sub_err = np.where(delta > 0, np.minimum(1.0, 2 * eps_h / np.maximum(delta, 1e-300)), 1.0)
    else:
        sub_err = np.zeros((num_m, num_t))
    gnorm = np.linalg.norm(grad, axis=-1)
    proj = np.einsum("mtpk,mtp->mtk", top, grad)
    overlap = np.sum(proj**2, -1) / np.maximum(gnorm**2, np.finfo(np.float64).tiny)
    overlap = np.clip(overlap, 0.0, 1.0)
    g_err = (
        2 * t975 * stack["se_g"] / np.maximum(gnorm, np.finfo(np.float64).tiny) if sampled else 0
    )
    overlap_err = np.minimum(1.0, sub_err + g_err)
    cos = np.einsum("mtpk,mtpj->mtkj", top[:, :-1], top[:, 1:])
    stability = np.sum(cos**2, axis=(-1, -2)) / k
    stability_err = np.minimum(1.0, sub_err[:, :-1] + sub_err[:, 1:])
    names = tuple(coords)
    diag = np.sum(top**2, -1)  # (M, T, P): diagonal of P_k
    share = np.zeros((num_m, num_t, len(names)))
    nproj = np.zeros((num_m, num_t, len(names)))
    theta = stack["theta"]
    for j, name in enumerate(names):
        ids = coords[name]
        share[..., j] = np.sum(diag[..., ids], -1) / k
        sub = theta[..., ids]  # (M, T, |I|)
        pj = np.einsum("mtik,mti->mtk", top[..., ids, :], sub)
        nproj[..., j] = np.sum(pj**2, -1) / np.maximum(np.sum(sub**2, -1), 1e-300)
    loss_err = _loss_error(sampled, u, data.num_examples, stack["loss"], stack.get("se_l"))
    method = (
        f"{'float64' if dt == np.float64 else 'float32'} forward-over-reverse Hessian "
        f"(jax.hessian of the flattened parameters) of the training loss "
        f"{ensemble.loss if isinstance(ensemble.loss, str) else 'loss_fn'} averaged over "
        f"{data.description}, {wd_text}; eigh; outliers: largest log-gap among the top "
        f"{m_out}; all {len(idx)} members in one program per checkpoint "
        f"({'lax.map' if spec.sequential else 'vmap'} over members)"
    )
    return LandscapeResult(
        steps=np.asarray(step_list),
        members=idx,
        labels=tuple(ensemble.member_label(int(m)) for m in idx),
        num_params=int(num_params),
        num_classes=int(num_out),
        k=int(k),
        max_outliers=int(m_out),
        eigenvalues=evals,
        eigenvalue_error=eig_err,
        top_vectors=top,
        num_outliers=counts,
        outlier_gap=gaps,
        loss=stack["loss"],
        loss_error=loss_err,
        gradient_norm=gnorm,
        gradient_overlap=overlap,
        overlap_error=overlap_err,
        subspace_error=sub_err,
        subspace_stability=stability,
        stability_error=stability_err,
        neurons=names,
        neuron_share=share,
        neuron_projection=nproj,
        weight_decay=wd,
        tier=tier,
        method=method,
        data=data.description,
    )


# --------------------------------------------------------------------------- connectivity


@dataclasses.dataclass(frozen=True, eq=False)
class _Points:
    """Parameter points of one model structure and the objective they are compared on."""

    spec: _Spec
    template: Any  # one point's parameter pytree (the ravel layout)
    thetas: list[np.ndarray]  # flat float64 parameters per point
    models: list[Any]  # the NNX models (for their exact analysis)
    names: list[str]
    data: _Data  # one member's examples, groups first: (K, n, ...)
    wd: float
    wd_text: str
    dist_params: dict[str, Any]
    dist: Any


def _point_of(where: str, name: str, value: Any, source: Any, num_members: int) -> tuple[int, Any]:
    if is_int(value):
        member, step = int(value), None
    elif isinstance(value, tuple) and len(value) == 2 and all(is_int(v) for v in value):
        member, step = int(value[0]), int(value[1])
    else:
        raise fail(where, name, value, "a member index or a (member, step) pair",
                   "Example: mode_connectivity(run, 0, 1) or mode_connectivity(run, (0, 100), "
                   "(0, 1000)).")  # fmt: skip
    if not 0 <= member < num_members:
        raise fail(where, name, value, f"a member in 0..{num_members - 1}")
    if step is not None and source is not None and step not in _steps_of(source):
        raise fail(where, name, value, f"a checkpoint step of {_steps_of(source)}")
    return member, step


def _one(data: _Data, member: int | None) -> _Data:
    """The examples of one member (``member`` indexes a per-member ``data``)."""
    if data.shared:
        w = data.w[0] if data.w.ndim == 3 else data.w  # (M, K, n) -> (K, n)
        return dataclasses.replace(data, w=w)
    i = 0 if member is None else member
    return dataclasses.replace(data, x=data.x[i], y=data.y[i], w=data.w[i], shared=True)


def _points(
    where: str,
    source: Any,
    refs: Sequence[tuple[str, Any]],
    *,
    dist: Any,
    loss: Any,
    on: str | None,
    num_samples: int,
    key: Any,
) -> _Points:
    if isinstance(source, Sequence) and not isinstance(source, str):
        models = [from_network(m) if isinstance(m, Network) else m for m in source]
        if dist is None:
            raise fail(where, "dist", None, "the distribution the models are compared on",
                       "Models carry no data: pass dist=..., or pass a run.")  # fmt: skip
        if on == "train":
            raise fail(where, "on", on, "'population' for models (they have no training set)")
        num_samples = check_int(where, "num_samples", num_samples, minimum=2 * NUM_GROUPS)
        picked = [_point_of(where, n, v, None, len(models)) for n, v in refs]
        chosen = [models[m] for m, _ in picked]
        graphdef, template = nnx.split(chosen[0])
        for n, mdl in zip([n for n, _ in refs], chosen, strict=True):
            g, st = nnx.split(mdl)
            if g != graphdef:
                raise fail(
                    where, n, type(mdl).__name__, f"a model of the same structure as {refs[0][0]}"
                )
        loss = loss or ("cross_entropy" if dist.num_classes > 0 else "mse")
        data = _one(_population(dist, None, num_samples, key), None)
        spec = _Spec(graphdef, dist, loss, (), True)
        thetas = [np.asarray(ravel_pytree(nnx.split(m)[1])[0], np.float64) for m in chosen]
        names = [f"model {m}" for m, _ in picked]
        return _Points(spec, template, thetas, chosen, names, data, 0.0, "no weight decay",
                       {}, dist)  # fmt: skip
    ensemble = _ensemble_of(where, source)
    steps = _steps_of(source)
    picked = [_point_of(where, n, v, source, ensemble.num_members) for n, v in refs]
    picked = [(m, steps[-1] if s is None else s) for m, s in picked]
    dists = {ensemble.dist_of(m) for m, _ in picked}
    if len(dists) > 1:
        raise ToylabError(
            f"{where}: the points have different distributions (a sweep over distribution "
            "parameters); their losses are not one landscape. Compare members of one "
            "distribution."
        )
    on = on or "population"
    same_member = len({m for m, _ in picked}) == 1
    if on == "train" and ensemble.config.data != "fresh" and not same_member:
        raise fail(where, "on", on, "'population' for points of different members",
                   f"With data={ensemble.config.data!r} every member has its own training set, "
                   "so there is no one training loss between them.")  # fmt: skip
    m0 = picked[0][0]
    data = _data_for(where, ensemble, np.asarray([m0]), on, num_samples, key)
    data = _one(data, 0)
    wd, wd_text = _weight_decay(ensemble, np.asarray([m for m, _ in picked]))
    if len(set(wd.tolist())) > 1:
        raise ToylabError(f"{where}: the points were trained with different weight decay "
                          f"{wd.tolist()}: their objectives differ.")  # fmt: skip
    by_step: dict[int, Any] = {}
    for _, s in picked:
        if s not in by_step:
            by_step[s] = jax.tree.map(np.asarray, _params_at(source, s))
    models = [ensemble.model(by_step[s], m) for m, s in picked]
    template = jax.tree.map(lambda a: a[0], by_step[picked[0][1]])
    thetas = [
        np.asarray(ravel_pytree(jax.tree.map(lambda a, m=m: a[m], by_step[s]))[0], np.float64)
        for m, s in picked
    ]
    names = [f"member {m} at step {s}" for m, s in picked]
    dp = {f: np.asarray(v)[m0] for f, v in ensemble.dist_params.items()}
    return _Points(_spec(ensemble, data), template, thetas, models, names, data,
                   float(wd[0]), wd_text, dp, ensemble.dist_of(m0))  # fmt: skip


def _evaluate(pts: _Points, thetas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The objective at ``thetas`` ``(A, P)`` (float64) and its error."""
    d = pts.data
    with jax.enable_x64(True):
        vals, se = _path_program(
            pts.spec, _cast(pts.template, np.float64), jnp.asarray(thetas, jnp.float64),
            jnp.asarray(d.x), jnp.asarray(d.y), jnp.asarray(d.w, jnp.float64),
            jnp.asarray(pts.wd, jnp.float64), _cast(pts.dist_params, np.float64),
        )  # fmt: skip
        vals, se = np.asarray(vals, np.float64), np.asarray(se, np.float64)
    u = float(np.finfo(np.float64).eps) / 2
    return vals, _loss_error(d.tier == "sampled", u, d.num_examples, vals, se)


def _interpolated(models: Sequence[Any], coeffs: Sequence[float]) -> Network:
    """``Σ c_i net_i`` of the models' network values in float64 (layer by layer: the
    arrays of a network are its parameters, so this is the same point in parameter
    space)."""
    nets = [as_network(m, "mode_connectivity").numpy(np.float64) for m in models]
    return jax.tree.map(lambda *arrs: sum(c * a for c, a in zip(coeffs, arrs, strict=True)), *nets)


def _accuracies(
    pts: _Points, combos: Sequence[Sequence[float]]
) -> tuple[np.ndarray | None, np.ndarray | None, Tier | None, str]:
    from toylab.exact import analyze

    accs, errs, tiers = [], [], []
    for coeffs in combos:
        net = _interpolated(pts.models, coeffs)
        try:
            an = analyze(net, pts.dist)
        except NotApplicable as e:
            return None, None, None, f"no exact accuracy: {e}"
        accs.append(float(an.accuracy))
        errs.append(float(an.error))
        tiers.append(an.tier)
    method = (
        "toylab.exact.analyze of each interpolated network value (as_network(model)"
        ".numpy(float64), interpolated layer by layer)"
    )
    return np.asarray(accs), np.asarray(errs), weakest(*tiers), method


def mode_connectivity(
    run_or_models: Any,
    a: Any,
    b: Any,
    *,
    num_points: int = 25,
    on: str | None = None,
    num_samples: int = 4096,
    key: Any = 0,
    dist: Any = None,
    loss: Any = None,
    exact_accuracy: bool = True,
) -> PathResult:
    """The objective and the exact accuracy along the straight line from ``a`` to ``b``,
    and the loss barrier (module docstring).

    ``run_or_models``: a run / ``TrainResult`` (``a``, ``b`` are member indices at the
    last checkpoint, or ``(member, step)`` pairs: two members, or two checkpoints of one
    member), or a list of models or networks of one structure (``a``, ``b`` index it;
    ``dist`` and ``loss`` (default ``cross_entropy`` for classification, else ``mse``)
    define the objective). ``on`` (default ``"population"``; ``"train"`` only where the
    two points share a training set), ``num_samples`` and ``key`` choose the examples as
    in :func:`landscape`. The path is computed in float64, all ``num_points`` points in
    one program.
    """
    where = "mode_connectivity"
    num_points = check_int(where, "num_points", num_points, minimum=3)
    pts = _points(where, run_or_models, [("a", a), ("b", b)], dist=dist, loss=loss, on=on,
                  num_samples=num_samples, key=key)  # fmt: skip
    ta, tb = pts.thetas
    alphas = np.linspace(0.0, 1.0, num_points)
    line = lambda al: (1 - al)[:, None] * ta + al[:, None] * tb  # noqa: E731
    vals, errs = _evaluate(pts, line(alphas))
    excess = vals - ((1 - alphas) * vals[0] + alphas * vals[-1])
    i = int(np.argmax(excess))
    fine = np.linspace(alphas[max(i - 1, 0)], alphas[min(i + 1, num_points - 1)], num_points)
    fvals, _ = _evaluate(pts, line(fine))
    fexcess = fvals - ((1 - fine) * vals[0] + fine * vals[-1])
    j = int(np.argmax(fexcess))
    barrier, at = (fexcess[j], fine[j]) if fexcess[j] > excess[i] else (excess[i], alphas[i])
    change = abs(max(fexcess[j], excess[i]) - excess[i])
    acc = acc_err = None
    acc_tier: Tier | None = None
    acc_method = "not asked for (exact_accuracy=False)"
    if exact_accuracy:
        acc, acc_err, acc_tier, acc_method = _accuracies(
            pts, [(1 - al, al) for al in alphas.tolist()]
        )
    tier = pts.data.tier if pts.data.tier == "sampled" else "exact"
    return PathResult(
        alphas=alphas,
        loss=vals,
        loss_error=errs,
        accuracy=acc,
        accuracy_error=acc_err,
        accuracy_tier=acc_tier,
        accuracy_method=acc_method,
        barrier=float(barrier),
        barrier_alpha=float(at),
        barrier_error=float(change + 2 * np.max(errs)),
        barrier_tier=weakest(tier, "estimated"),
        distance=float(np.linalg.norm(tb - ta)),
        a=pts.names[0],
        b=pts.names[1],
        tier=tier,
        method=f"float64 objective at {num_points} points of the segment in one vmapped "
        f"program ({pts.wd_text}); barrier: grid maximum refined once between its neighbours",
        data=pts.data.description,
    )


def loss_plane(
    run_or_models: Any,
    a: Any,
    b: Any,
    c: Any,
    *,
    num_points: int = 21,
    margin: float = 0.25,
    on: str | None = None,
    num_samples: int = 4096,
    key: Any = 0,
    dist: Any = None,
    loss: Any = None,
    exact_accuracy: bool = False,
) -> PlaneResult:
    """The objective on a ``num_points × num_points`` grid of the plane through the
    parameter points ``a``, ``b``, ``c`` (as in :func:`mode_connectivity`), extending
    ``margin`` times the points' extent beyond them; ``exact_accuracy`` adds the exact
    accuracy at every grid point (one exact analysis each: slower)."""
    where = "loss_plane"
    num_points = check_int(where, "num_points", num_points, minimum=2)
    if not isinstance(margin, int | float) or isinstance(margin, bool) or margin < 0:
        raise fail(where, "margin", margin, "a number >= 0")
    pts = _points(where, run_or_models, [("a", a), ("b", b), ("c", c)], dist=dist, loss=loss,
                  on=on, num_samples=num_samples, key=key)  # fmt: skip
    ta, tb, tc = pts.thetas
    d1 = tb - ta
    n1 = float(np.linalg.norm(d1))
    d2 = tc - ta
    if n1 == 0:
        raise fail(where, "b", b, "a parameter point different from a")
    e1 = d1 / n1
    d2 = d2 - (d2 @ e1) * e1
    n2 = float(np.linalg.norm(d2))
    if n2 <= 1e-12 * max(n1, 1.0):
        raise fail(where, "c", c, "a point off the line through a and b")
    e2 = d2 / n2
    coords = {"a": (0.0, 0.0), "b": (n1, 0.0), "c": (float((tc - ta) @ e1), n2)}
    us, vs = [p[0] for p in coords.values()], [p[1] for p in coords.values()]
    ext = max(max(us) - min(us), max(vs) - min(vs))
    u = np.linspace(min(us) - margin * ext, max(us) + margin * ext, num_points)
    v = np.linspace(min(vs) - margin * ext, max(vs) + margin * ext, num_points)
    uu, vv = np.meshgrid(u, v, indexing="ij")
    thetas = ta + uu.ravel()[:, None] * e1 + vv.ravel()[:, None] * e2
    vals, errs = _evaluate(pts, thetas)
    acc = None
    acc_tier: Tier | None = None
    if exact_accuracy:
        # θ(u, v) = θa + u e1 + v e2 as a combination of the three points
        ca = (vv.ravel() / n2) * ((tc - ta) @ e1) / n1
        beta = uu.ravel() / n1 - ca
        gamma = vv.ravel() / n2
        combos = [(1 - bb - gg, bb, gg) for bb, gg in zip(beta, gamma, strict=True)]
        got, _, acc_tier, _ = _accuracies(pts, combos)
        acc = None if got is None else got.reshape(num_points, num_points)
    tier = pts.data.tier if pts.data.tier == "sampled" else "exact"
    return PlaneResult(
        u=u, v=v, loss=vals.reshape(num_points, num_points),
        loss_error=errs.reshape(num_points, num_points), points=coords, accuracy=acc,
        accuracy_tier=acc_tier, tier=tier,
        method=f"float64 objective on a {num_points}x{num_points} grid in one vmapped program "
        f"({pts.wd_text}); orthonormal plane coordinates",
        data=pts.data.description,
    )  # fmt: skip
