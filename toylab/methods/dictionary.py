r"""Dictionary learning on a superposition model, scored against the true features.

**The method.** A sparse autoencoder (SAE) is trained on the hidden activations
:math:`h = W x` of a toy model of superposition (:class:`toylab.models.SuperpositionLinear`
/ :class:`~toylab.models.SuperpositionReLU`, ``W`` of shape ``(m, n)``), with ``x`` drawn
fresh every step from the model's own :class:`~toylab.distributions.SparseFeatures`
(explicit keys: step ``t`` of dictionary ``d`` draws from ``fold_in(key_d, t)``)::

    f = σ(W_enc (h - b_dec) + b_enc)          (L latents)
    ĥ = D f + b_dec,   D = V / ‖V‖ (column-wise: unit-norm decoder directions)

* ``sparsity="l1"``: σ = ReLU, loss ``mean_batch(‖h - ĥ‖² + λ ‖f‖₁)`` (the unit-norm
  decoder keeps the penalty from being dodged by shrinking ``f``);
* ``sparsity="topk"``: σ keeps the ``k`` largest pre-activations of each input (exactly
  ``k`` selected, ties broken by ``lax.top_k``) and applies ReLU to them (Gao et al. 2024),
  loss ``mean_batch ‖h - ĥ‖²``;
* ``tied=True``: ``W_enc = Dᵀ``; untied: ``W_enc`` is its own parameter (initialised to
  ``Dᵀ``). ``b_enc = b_dec = 0`` at the start; ``V`` is standard normal.

**Resampling dead latents** (after Anthropic's "Towards Monosemanticity"): training runs in
segments of ``resample_every`` steps; at the end of every segment but the last, each latent
that did not fire (``f > 0``) on any training input of that segment is re-initialised: an
input ``h`` is drawn among ``resample_samples`` fresh ones with probability proportional
to the square of its reconstruction loss ``‖h - ĥ‖²``; the decoder direction becomes
``(h - b_dec) / ‖h - b_dec‖``, the encoder row the same direction times 0.2 times the mean
norm of the live encoder rows (tied: the decoder alone), ``b_enc`` of the latent 0, and
the Adam moments of every reset entry are zeroed. ``resample_every=0`` switches it off.

**One program.** Dictionaries are the members ``model member × seed × penalty`` (``λ`` for
L1, ``k`` for top-k: per-member arrays, never constants), trained by one
``jit(vmap(scan over segments of scan over steps))``; the optimizer is
:func:`toylab.train.core.make_optimizer` of a :class:`toylab.train.TrainConfig` (its
optimizer, learning rate, schedule, momentum, weight decay, ``num_steps``, ``batch_size``).
Dictionary size: ``num_latents`` (default ``n``, the number of true features).

**Scores and their tiers.** The true feature directions are known exactly: column ``i``
of ``W`` normalised, ``Ŵ_i``. Features with ``‖W_i‖ <= min_norm`` (default 0.5, between
the "not represented" 0 and "represented" 1 of the paper's norm plots) are *not
represented* by the model and left out of the recovery scores.

* **exact** (float64 functions of the trained dictionary and ``W``): per feature the max
  cosine ``max_j cos(Ŵ_i, D_j)`` (signed: latents are non-negative); **MMCS**, their mean
  over represented features; the fraction recovered (max cosine ``>= recovered_cos``,
  default 0.9); the one-to-one matched cosines (Hungarian assignment, each latent serves
  one feature) and matched fraction; each latent's best feature (``"input:i"``);
  duplicated latents (pairs of decoder directions with cosine ``> duplicate_cos``) and
  indistinguishable features (pairs of true directions with cosine ``> duplicate_cos``: no
  dictionary of hidden directions tells them apart).
* **sampled** (``num_samples`` fresh inputs, 95% normal intervals): the reconstruction
  error ``E‖h - ĥ‖²``; the model's importance-weighted loss
  ``E Σ_i I_i (x'_i - x_i)²`` clean, with ``hidden_0`` replaced by ``ĥ`` (a forward hook)
  and with ``hidden_0`` zeroed, and the fraction of loss recovered
  ``(zero - patched) / (zero - clean)`` (paired samples, delta-method interval); firing
  frequencies and **dead** latents (no firing among the ``num_samples`` inputs: a sampled
  statement, the firing probability of such a latent is below ``3.7 / num_samples`` at 95%).

The headline (:class:`toylab.methods.MethodResult` fields) of a :class:`DictionaryResult`
is the MMCS averaged over its dictionaries against the exact answer 1 (the MMCS of the true
directions themselves); :meth:`DictionaryResult.member` gives one dictionary's row.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
import optax
from scipy.optimize import linear_sum_assignment

from toylab._compile_cache import use_unrolled_threefry
from toylab._errors import fail
from toylab._validate import check_bool, check_choice, check_float, check_int, float_tuple
from toylab.methods._core import (
    MISLEAD_FRACTION,
    Members,
    MethodResult,
    as_members,
    check_key,
    normal_ci,
)
from toylab.network import Network
from toylab.tiers import Tier

__all__ = [
    "SPARSITIES",
    "DictionaryMemberResult",
    "DictionaryResult",
    "Dictionaries",
    "Recovery",
    "dictionary_learning",
    "init_dictionaries",
    "replacement_losses",
    "recovery_scores",
    "score_dictionaries",
    "train_dictionaries",
]

SPARSITIES = ("l1", "topk")

#: encoder rows of resampled latents: this fraction of the mean live encoder-row norm
RESAMPLE_ENCODER_SCALE = 0.2


# --------------------------------------------------------------------------- inputs


def _members_and_weights(where: str, model: Any) -> tuple[Members, np.ndarray]:
    """The members of a superposition model (or list) and their ``W``: ``(M, m, n)`` float64
    (read by :func:`toylab.superposition.superposition_weights`, which checks the shape of
    a toy model of superposition and says how to build one)."""
    from toylab.superposition import superposition_weights

    members = as_members(where, model)
    W, _, _, _ = superposition_weights(list(members.networks), where)
    return members, W


def _check_dist(where: str, dist: Any, n: int) -> None:
    from toylab.distributions import SparseFeatures

    if not isinstance(dist, SparseFeatures) or dist.dim != n:
        raise fail(
            where, "dist", type(dist).__name__ if not isinstance(dist, SparseFeatures) else dist,
            f"the model's SparseFeatures distribution with {n} features",
            "Pass the distribution the superposition model was trained on (run.dist).",
        )  # fmt: skip


# --------------------------------------------------------------------------- the SAE


def _decoder(params: Mapping[str, Any]) -> Any:
    """Unit-norm decoder directions ``(..., m, L)``."""
    v = params["dec"]
    return v / jnp.linalg.norm(v, axis=-2, keepdims=True)


def _encoder(params: Mapping[str, Any]) -> Any:
    """``W_enc`` of shape ``(..., L, m)`` (``Dᵀ`` when tied)."""
    if "enc" in params:
        return params["enc"]
    return jnp.swapaxes(_decoder(params), -1, -2)


def _encode(params: Mapping[str, Any], h: Any, penalty: Any, sparsity: str, kmax: int) -> Any:
    """Latents ``f (B, L)`` of hidden activations ``h (B, m)``; ``penalty`` is ``k`` for top-k."""
    pre = (h - params["b_dec"]) @ _encoder(params).T + params["b_enc"]
    if sparsity == "l1":
        return jax.nn.relu(pre)
    vals, idx = jax.lax.top_k(pre, kmax)
    keep = jnp.arange(kmax) < penalty
    vals = jnp.where(keep, jax.nn.relu(vals), 0.0)
    return jnp.put_along_axis(jnp.zeros_like(pre), idx, vals, axis=-1, inplace=False)


def _decode(params: Mapping[str, Any], f: Any) -> Any:
    return f @ _decoder(params).T + params["b_dec"]


def init_dictionaries(
    key: jax.Array, num_dictionaries: int, num_hidden: int, num_latents: int, *, tied: bool
) -> dict[str, jax.Array]:
    """Stacked initial parameters (leading axis: dictionaries), float32.

    ``dec``: ``V (D, m, L)`` standard normal (the decoder is its column-normalisation);
    ``enc`` (untied only): ``Dᵀ (D, L, m)``; ``b_enc (D, L)`` and ``b_dec (D, m)`` zero.
    """
    where = "init_dictionaries"
    check_key(where, key)
    d = check_int(where, "num_dictionaries", num_dictionaries, minimum=1)
    m = check_int(where, "num_hidden", num_hidden, minimum=1)
    L = check_int(where, "num_latents", num_latents, minimum=1)
    v = jax.random.normal(key, (d, m, L), jnp.float32)
    params = {"dec": v, "b_enc": jnp.zeros((d, L)), "b_dec": jnp.zeros((d, m))}
    if not check_bool(where, "tied", tied):
        params["enc"] = jnp.swapaxes(_decoder(params), -1, -2)
    return params


# --------------------------------------------------------------------------- training


def _template(dist: Any) -> tuple[Any, dict[str, np.ndarray]]:
    """``(template, values)``: ``dist`` with every numeric field (probabilities,
    importances) replaced by zeros of its shape, and those fields' real values as arrays.
    The template keys the compiled programs and the values are their arguments, so
    dictionaries for models trained at different feature probabilities (a sweep) share
    one compilation (:mod:`toylab.distributions.params`)."""
    from toylab.distributions.params import numeric_fields, with_fields

    names = numeric_fields(dist)
    values = {f: np.asarray(getattr(dist, f), np.float32) for f in names}
    canon = {f: 0.0 if v.ndim == 0 else (0.0,) * v.shape[0] for f, v in values.items()}
    return with_fields(dist, canon), values


def _actual(template: Any, values: Any) -> Any:
    from toylab.distributions.params import with_fields

    return with_fields(template, dict(values))


@dataclasses.dataclass(frozen=True)
class _Spec:
    """The static part of the training program (hashable: the jit key)."""

    dist: Any
    train: Any  # TrainConfig
    sparsity: str
    kmax: int
    segment: int
    num_segments: int
    resample: bool
    resample_samples: int


def _hidden(net: Network, x: Any) -> Any:
    return net.forward(x)["hidden_0"]


def _optimizer(spec: _Spec) -> optax.GradientTransformation:
    from toylab.train.core import make_optimizer

    return make_optimizer(spec.train, spec.train.hyperparameters())


def _resample(
    spec: _Spec, opt: Any, params: Any, opt_state: Any, dead: Any, key: Any, net: Network,
    pen: Any, dist: Any,
) -> tuple[Any, Any, Any]:  # fmt: skip
    """Re-initialise ``dead (L,)`` latents towards badly reconstructed inputs (module doc)."""
    k_x, k_pick = jax.random.split(key)
    h = _hidden(net, dist.sample(k_x, spec.resample_samples).x)
    rec = _decode(params, _encode(params, h, pen, spec.sparsity, spec.kmax))
    w = jnp.sum((h - rec) ** 2, axis=-1) ** 2
    logits = jnp.where(w > 0, jnp.log(jnp.where(w > 0, w, 1.0)), -jnp.inf)
    logits = jnp.where(jnp.any(w > 0), logits, 0.0)  # nothing badly reconstructed: uniform
    pick = jax.random.categorical(k_pick, logits, shape=dead.shape)
    v = h[pick] - params["b_dec"]  # (L, m)
    norm = jnp.linalg.norm(v, axis=-1)
    redo = dead & (norm > 1e-6)
    d = v / jnp.where(norm > 0, norm, 1.0)[:, None]
    new = dict(params)
    new["dec"] = jnp.where(redo[None, :], d.T, params["dec"])
    new["b_enc"] = jnp.where(redo, 0.0, params["b_enc"])
    keep = {
        "dec": jnp.where(redo[None, :], 0.0, 1.0),
        "b_enc": jnp.where(redo, 0.0, 1.0),
        "b_dec": jnp.ones_like(params["b_dec"]),
    }
    if "enc" in params:
        rows = jnp.linalg.norm(params["enc"], axis=-1)
        live = ~dead
        scale = jnp.where(
            jnp.any(live), jnp.sum(jnp.where(live, rows, 0.0)) / jnp.maximum(jnp.sum(live), 1), 1.0
        )
        new["enc"] = jnp.where(redo[:, None], RESAMPLE_ENCODER_SCALE * scale * d, params["enc"])
        keep["enc"] = jnp.where(redo[:, None], 0.0, 1.0)
    opt_state = optax.tree_utils.tree_map_params(opt, lambda s, k: s * k, opt_state, keep)
    return new, opt_state, jnp.sum(redo)


def _train_member(
    spec: _Spec, dist_values: Any, params: Any, net: Network, pen: Any, key: Any
) -> tuple[Any, Any, Any, Any]:
    dist = _actual(spec.dist, dist_values)
    opt = _optimizer(spec)
    k_data, k_res = jax.random.split(key)
    B = spec.train.batch_size

    def loss_fn(p: Any, h: Any) -> tuple[Any, Any]:
        f = _encode(p, h, pen, spec.sparsity, spec.kmax)
        err = jnp.sum((h - _decode(p, f)) ** 2, axis=-1)
        sparsity_loss = pen * jnp.sum(f, axis=-1) if spec.sparsity == "l1" else 0.0
        return jnp.mean(err + sparsity_loss), f

    def step(carry: Any, t: Any) -> tuple[Any, Any]:
        p, s, fired = carry
        h = _hidden(net, dist.sample(jax.random.fold_in(k_data, t), B).x)
        (loss, f), g = jax.value_and_grad(loss_fn, has_aux=True)(p, h)
        updates, s = opt.update(g, s, p)
        p = optax.apply_updates(p, updates)
        return (p, s, fired | jnp.any(f > 0, axis=0)), loss

    def segment(carry: Any, seg: Any) -> tuple[Any, Any]:
        p, s, count = carry
        fired0 = jnp.zeros(p["b_enc"].shape, bool)
        ts = seg * spec.segment + jnp.arange(spec.segment)
        (p, s, fired), losses = jax.lax.scan(step, (p, s, fired0), ts)
        if spec.resample:
            k = jax.random.fold_in(k_res, seg)
            p2, s2, n = _resample(spec, opt, p, s, ~fired, k, net, pen, dist)
            last = seg == spec.num_segments - 1
            p, s = jax.tree.map(lambda a, b: jnp.where(last, a, b), (p, s), (p2, s2))
            count = count + jnp.where(last, 0, n)
        return (p, s, count), (losses, ~fired)

    init = (params, opt.init(params), jnp.zeros((), jnp.int32))
    (params, _, count), (losses, dead) = jax.lax.scan(segment, init, jnp.arange(spec.num_segments))
    return params, losses.reshape(-1), count, dead[-1]


@functools.partial(jax.jit, static_argnums=0)
def _train_program(
    spec: _Spec, dist_values: Any, params: Any, nets: Network, pens: Any, keys: Any
) -> Any:
    """Every dictionary in one program: ``vmap`` of the member's scans."""
    one = functools.partial(_train_member, spec, dist_values)
    return jax.vmap(one)(params, nets, pens, keys)


@dataclasses.dataclass(frozen=True, eq=False)
class Dictionaries:
    """Trained dictionaries (stacked over ``num_dictionaries``) and how they were trained.

    Dictionary ``d`` belongs to model member ``model_member[d]``, seed ``seeds[d]`` and
    penalty ``penalties[d]`` (``λ`` or ``k``), in the order model member, seed, penalty.
    ``params``: ``dec (D, m, L)`` (decoder ``V``, see :attr:`decoder`), ``b_dec (D, m)``,
    ``b_enc (D, L)`` and ``enc (D, L, m)`` when untied. ``train_loss (D, num_steps)``;
    ``resampled (D,)``: latents resampled in total; ``dead_last_window (D, L)``: did not
    fire during the last segment of training (sampled). ``W (M, m, n)``: the true weights.
    """

    params: dict[str, np.ndarray]
    sparsity: str
    tied: bool
    num_latents: int
    model_member: np.ndarray
    seeds: np.ndarray
    penalties: np.ndarray
    train: Any
    resample_every: int
    train_loss: np.ndarray
    resampled: np.ndarray
    dead_last_window: np.ndarray
    W: np.ndarray
    members: Members
    dist: Any

    @property
    def num_dictionaries(self) -> int:
        return int(self.model_member.shape[0])

    @property
    def decoder(self) -> np.ndarray:
        """Unit-norm decoder directions ``(D, m, L)``, float64."""
        v = np.asarray(self.params["dec"], np.float64)
        return v / np.linalg.norm(v, axis=-2, keepdims=True)

    @property
    def kmax(self) -> int:
        return int(np.max(self.penalties)) if self.sparsity == "topk" else 0

    def label(self, d: int) -> str:
        name = "λ" if self.sparsity == "l1" else "k"
        return f"seed {int(self.seeds[d])}, {name}={float(self.penalties[d]):g}"

    def encode(self, h: Any, d: int) -> np.ndarray:
        """Dictionary ``d``'s latents at hidden activations ``h (B, m)`` (float32 JAX)."""
        p = jax.tree.map(lambda a: jnp.asarray(a[d]), self.params)
        pen = jnp.float32(self.penalties[d])
        return np.asarray(_encode(p, jnp.asarray(h, jnp.float32), pen, self.sparsity, self.kmax))

    def reconstruct(self, h: Any, d: int) -> np.ndarray:
        """Dictionary ``d``'s reconstruction ``ĥ`` of ``h (B, m)``."""
        p = jax.tree.map(lambda a: jnp.asarray(a[d]), self.params)
        return np.asarray(_decode(p, jnp.asarray(self.encode(h, d))))


def train_dictionaries(
    model: Any,
    dist: Any,
    *,
    key: jax.Array,
    sparsity: str = "l1",
    penalties: Any = (1e-3, 3e-3, 1e-2, 3e-2),
    num_seeds: int = 2,
    num_latents: int | None = None,
    tied: bool = False,
    train: Any = None,
    resample_every: int = 500,
    resample_samples: int = 1024,
    init: Mapping[str, Any] | None = None,
) -> Dictionaries:
    """Train ``model members × num_seeds × len(penalties)`` SAEs in one compiled program.

    ``model``: a superposition model, network or list of them (an ensemble);
    ``dist``: its :class:`~toylab.distributions.SparseFeatures`. ``penalties``: the L1
    coefficients ``λ >= 0`` (``sparsity="l1"``) or the numbers of active latents
    ``1 <= k <= num_latents`` (``"topk"``). ``num_latents``: dictionary size (default
    ``n``). ``train``: a :class:`toylab.train.TrainConfig` (default Adam, learning rate
    3e-3, 2000 steps, batches of 256). ``resample_every``: segment length for resampling
    dead latents (0: never); it must divide ``train.num_steps``. ``init``: initial
    parameters (as :func:`init_dictionaries` returns, one per dictionary) instead of
    fresh ones. See the module docstring for the objective and the resampling.
    """
    from toylab.train import TrainConfig

    where = "train_dictionaries"
    check_key(where, key)
    members, W = _members_and_weights(where, model)
    num_models, m, n = W.shape
    _check_dist(where, dist, n)
    sparsity = check_choice(where, "sparsity", sparsity, SPARSITIES)
    L = n if num_latents is None else check_int(where, "num_latents", num_latents, minimum=1)
    if sparsity == "l1":
        pens = float_tuple(where, "penalties", penalties, nonneg=True)
    else:
        if isinstance(penalties, str) or not hasattr(penalties, "__len__") or not penalties:
            raise fail(where, "penalties", penalties, "a non-empty list of integers k")
        pens = tuple(
            float(check_int(where, f"penalties[{i}]", k, minimum=1, maximum=L))
            for i, k in enumerate(penalties)
        )
    seeds = check_int(where, "num_seeds", num_seeds, minimum=1)
    tied = check_bool(where, "tied", tied)
    cfg = (
        TrainConfig(optimizer="adam", learning_rate=3e-3, num_steps=2000, batch_size=256)
        if train is None
        else train
    )
    if not isinstance(cfg, TrainConfig):
        raise fail(where, "train", type(cfg).__name__, "a toylab.train.TrainConfig or None")
    every = check_int(where, "resample_every", resample_every, minimum=0)
    steps = cfg.num_steps
    if every and steps % every:
        raise fail(
            where, "resample_every", every, f"a divisor of train.num_steps ({steps}) or 0",
            f"Use e.g. resample_every={max(d for d in range(1, steps + 1) if steps % d == 0 and d <= every)}.",
        )  # fmt: skip
    check_int(where, "resample_samples", resample_samples, minimum=1)
    template, dist_values = _template(dist)
    spec = _Spec(
        dist=template, train=dataclasses.replace(cfg, checkpoints=(), log_every=1), sparsity=sparsity,
        kmax=int(max(pens)) if sparsity == "topk" else 0, segment=every or steps,
        num_segments=steps // every if every else 1, resample=bool(every),
        resample_samples=int(resample_samples),
    )  # fmt: skip
    grid = np.array(
        [(mm, s, p) for mm in range(num_models) for s in range(seeds) for p in range(len(pens))]
    )
    D = len(grid)
    k_init, k_train = jax.random.split(key)
    if init is None:
        params = init_dictionaries(k_init, D, m, L, tied=tied)
    else:
        ref = jax.eval_shape(lambda: init_dictionaries(jax.random.key(0), D, m, L, tied=tied))
        if not isinstance(init, Mapping) or set(init) != set(ref):
            raise fail(where, "init", type(init).__name__, f"a dict with keys {sorted(ref)}")
        params = {}
        for name, want in ref.items():
            arr = np.asarray(init[name], np.float32)
            if arr.shape != want.shape or not np.all(np.isfinite(arr)):
                raise fail(where, f"init[{name!r}]", f"an array of shape {arr.shape}",
                           f"a finite array of shape {want.shape}")  # fmt: skip
            params[name] = jnp.asarray(arr)
    # per-dictionary keys: the seed's key, distinct for each penalty and model member
    keys = jax.vmap(lambda i: jax.random.fold_in(k_train, i))(
        jnp.asarray(grid[:, 1] * 1_000_003 + grid[:, 2] * 1009 + grid[:, 0], jnp.uint32)
    )
    nets = jax.tree.map(lambda a: a[grid[:, 0]], members.stacked)
    pen_arr = jnp.asarray(np.array(pens, np.float32)[grid[:, 2]])
    use_unrolled_threefry()  # the training program's fast RNG lowering (identical bits)
    out, losses, count, dead = _train_program(spec, dist_values, params, nets, pen_arr, keys)
    return Dictionaries(
        params={k: np.asarray(v) for k, v in out.items()}, sparsity=sparsity, tied=tied,
        num_latents=L, model_member=grid[:, 0], seeds=grid[:, 1],
        penalties=np.array(pens)[grid[:, 2]], train=cfg, resample_every=every,
        train_loss=np.asarray(losses), resampled=np.asarray(count),
        dead_last_window=np.asarray(dead), W=W, members=members, dist=dist,
    )  # fmt: skip


# --------------------------------------------------------------------------- exact scores


@dataclasses.dataclass(frozen=True)
class Recovery:
    """Exact recovery scores of dictionaries against true feature weights (float64).

    Arrays over ``D`` dictionaries, ``n`` features and ``L`` latents: ``cos (D, L, n)``
    (cosine of decoder direction ``j`` with ``Ŵ_i``); ``max_cos (D, n)`` and
    ``best_latent (D, n)``; ``matched_cos (D, n)`` (one-to-one assignment maximising the
    summed cosine over represented features; 0 for a feature left without a latent);
    ``represented (n,)``: ``‖W_i‖ > min_norm``; ``mmcs``, ``recovered_fraction``,
    ``matched_fraction`` ``(D,)`` over represented features (``nan`` if there are none);
    ``best_feature (D, L)``: each latent's best represented feature index (-1 if none);
    ``duplicates[d]``: latent pairs ``(j, k)``, ``j < k``, with cosine ``> duplicate_cos``;
    ``indistinguishable``: feature pairs with ``cos(Ŵ_i, Ŵ_j) > duplicate_cos`` (both
    represented).
    """

    cos: np.ndarray
    max_cos: np.ndarray
    best_latent: np.ndarray
    matched_cos: np.ndarray
    represented: np.ndarray
    feature_norms: np.ndarray
    mmcs: np.ndarray
    recovered_fraction: np.ndarray
    matched_fraction: np.ndarray
    best_feature: np.ndarray
    duplicates: tuple[tuple[tuple[int, int], ...], ...]
    indistinguishable: tuple[tuple[int, int], ...]
    recovered_cos: float
    duplicate_cos: float
    min_norm: float


def _unit_columns(a: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(a, axis=-2, keepdims=True)
    return np.divide(a, norms, out=np.zeros_like(a), where=norms > 0)


def _pairs(c: np.ndarray, threshold: float, keep: np.ndarray | None = None) -> tuple:
    j, k = np.nonzero(np.triu(c > threshold, 1))
    if keep is not None:
        sel = keep[j] & keep[k]
        j, k = j[sel], k[sel]
    return tuple((int(a), int(b)) for a, b in zip(j, k, strict=True))


def recovery_scores(
    decoder: Any,
    W: Any,
    *,
    recovered_cos: float = 0.9,
    duplicate_cos: float = 0.9,
    min_norm: float = 0.5,
) -> Recovery:
    """Exact scores of decoder directions ``(D, m, L)`` (or ``(m, L)``) against ``W (m, n)``.

    Columns of ``decoder`` are normalised here (a zero column has cosine 0 with
    everything). See :class:`Recovery` and the module docstring.
    """
    where = "recovery_scores"
    dec = np.asarray(decoder, np.float64)
    if dec.ndim == 2:
        dec = dec[None]
    W = np.asarray(W, np.float64)
    if W.ndim != 2 or dec.ndim != 3 or dec.shape[1] != W.shape[0]:
        raise fail(where, "decoder, W", (dec.shape, W.shape), "(D, m, L) and (m, n) arrays")
    if not (np.all(np.isfinite(dec)) and np.all(np.isfinite(W))):
        raise fail(where, "decoder, W", "arrays with non-finite entries", "finite")
    rc = check_float(where, "recovered_cos", recovered_cos, minimum=-1.0, maximum=1.0)
    dc = check_float(where, "duplicate_cos", duplicate_cos, minimum=-1.0, maximum=1.0)
    mn = check_float(where, "min_norm", min_norm, nonneg=True)
    norms = np.linalg.norm(W, axis=0)
    rep = norms > mn
    what = _unit_columns(W)
    dhat = _unit_columns(dec)
    cos = np.einsum("dml,mn->dln", dhat, what)
    max_cos = cos.max(axis=1)
    best_latent = cos.argmax(axis=1)
    D, L, n = cos.shape
    matched = np.zeros((D, n))
    rep_idx = np.flatnonzero(rep)
    for d in range(D):
        if rep_idx.size:
            rows, cols = linear_sum_assignment(cos[d][:, rep_idx], maximize=True)
            matched[d, rep_idx[cols]] = cos[d][rows, rep_idx[cols]]
    with np.errstate(invalid="ignore"):
        if rep_idx.size:
            mmcs = max_cos[:, rep].mean(axis=1)
            rec = (max_cos[:, rep] >= rc).mean(axis=1)
            mrec = (matched[:, rep] >= rc).mean(axis=1)
        else:
            mmcs = rec = mrec = np.full(D, np.nan)
    masked = np.where(rep[None, None, :], cos, -np.inf)
    best_feature = np.where(rep.any(), masked.argmax(axis=2), -1)
    dups = tuple(_pairs(np.einsum("dml,dmk->dlk", dhat, dhat)[d], dc) for d in range(D))
    return Recovery(
        cos=cos, max_cos=max_cos, best_latent=best_latent, matched_cos=matched, represented=rep,
        feature_norms=norms, mmcs=mmcs, recovered_fraction=rec, matched_fraction=mrec,
        best_feature=best_feature, duplicates=dups,
        indistinguishable=_pairs(what.T @ what, dc, rep), recovered_cos=rc,
        duplicate_cos=dc, min_norm=mn,
    )  # fmt: skip


# --------------------------------------------------------------------------- sampled scores


def replacement_losses(net: Network, dist: Any, x: Any, reconstruct_fn: Any) -> tuple[Any, ...]:
    """Per-sample model losses at inputs ``x (N, n)``: ``(clean, patched, zero)``.

    The model's loss is the importance-weighted squared error it is trained with
    (:func:`toylab.train.core.loss_function` ``"importance_mse"``); ``patched`` runs the
    forward pass with ``hidden_0`` replaced by ``reconstruct_fn(h)`` (a hook), ``zero``
    with ``hidden_0`` set to 0. Pure and jittable (JAX or NumPy-free arrays).
    """
    from toylab.train.core import loss_function

    loss = loss_function("importance_mse", dist)
    clean = net.forward(x)["output"]
    patched = net.forward(x, hooks={"hidden_0": reconstruct_fn})["output"]
    zero = net.forward(x, hooks={"hidden_0": jnp.zeros_like})["output"]
    return loss(clean, x), loss(patched, x), loss(zero, x)


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _score_program(
    template: Any, sparsity: str, kmax: int, dist_values: Any, params: Any, nets: Network,
    pens: Any, x: Any,
) -> Any:  # fmt: skip
    """Per dictionary: per-sample ``‖h - ĥ‖², ‖h‖²``, losses, and firing counts ``(L,)``."""
    dist = _actual(template, dist_values)

    def one(p: Any, net: Network, pen: Any) -> Any:
        h = _hidden(net, x)
        f = _encode(p, h, pen, sparsity, kmax)
        rec = _decode(p, f)
        clean, patched, zero = replacement_losses(net, dist, x, lambda _: rec)
        err = jnp.sum((h - rec) ** 2, axis=-1)
        return err, jnp.sum(h**2, axis=-1), clean, patched, zero, jnp.sum(f > 0, axis=0)

    return jax.vmap(one)(params, nets, pens)


def _mean_ci(v: np.ndarray) -> tuple[float, tuple[float, float]]:
    mean = float(np.mean(v))
    se = float(np.std(v, ddof=1) / math.sqrt(len(v))) if len(v) > 1 else math.inf
    return mean, normal_ci(mean, se)


def _ratio_ci(a: np.ndarray, b: np.ndarray) -> tuple[float, tuple[float, float]]:
    """``mean(a) / mean(b)`` and its delta-method 95% interval (paired samples)."""
    ma, mb = float(np.mean(a)), float(np.mean(b))
    if not mb > 0:
        return math.nan, (math.nan, math.nan)
    r = ma / mb
    se = float(np.std(a - r * b, ddof=1) / math.sqrt(len(a))) / mb if len(a) > 1 else math.inf
    return r, normal_ci(r, se)


# --------------------------------------------------------------------------- results


@dataclasses.dataclass(frozen=True, eq=False, kw_only=True)
class DictionaryMemberResult(MethodResult):
    """One dictionary (row ``dictionary`` of a :class:`DictionaryResult`).

    ``sampled``: its MMCS over represented features (tier ``exact``: an exact function of
    the trained dictionary and ``W``); ``exact``: 1, the MMCS of the true directions;
    ``error = 1 - MMCS`` (``error_tier`` exact, ``exact_error`` 0). **Misleads** when
    ``error > MISLEAD_FRACTION`` (0.05). ``neuron`` is the layer read (``"hidden_0"``);
    ``num_forward``: SAE forward passes (training and scoring inputs), ``num_backward``:
    training inputs. ``label``: seed and penalty; ``facts``: the one-line summary.
    """

    method: ClassVar[str] = "dictionary_learning"
    score: ClassVar[str] = "mean max cosine of true feature directions with the dictionary"
    error_measure: ClassVar[str] = "1 - MMCS"

    dictionary: int
    label: str
    facts: str

    @property
    def detail(self) -> str:
        return f"dictionary {self.dictionary} ({self.label}): {self.facts}"


@dataclasses.dataclass(frozen=True, eq=False, kw_only=True)
class DictionaryResult(MethodResult):
    """Every dictionary trained on one model member, scored against its true features.

    Headline (:class:`toylab.methods.MethodResult`): ``sampled`` is the MMCS averaged over
    the ``D`` dictionaries (every one counted, none selected), ``exact`` 1, ``error = 1 -
    sampled``, ``tier = error_tier = "exact"`` (exact functions of the dictionaries),
    **misleads** when ``error > MISLEAD_FRACTION``. ``units``: cosine.

    Per dictionary (arrays over ``D``), **exact**: ``recovery`` (:class:`Recovery`:
    ``max_cos``, ``mmcs``, ``recovered_fraction``, ``matched_cos``, ``matched_fraction``,
    ``best_feature``, ``duplicates``; ``represented``, ``indistinguishable``);
    **sampled** (``loss_tier``) on ``num_samples`` fresh inputs with 95% intervals
    ``*_ci (D, 2)``: ``recon_error`` (``E‖h - ĥ‖²``), ``recon_relative``
    (``E‖h - ĥ‖² / E‖h‖²``), ``patched_loss``, ``loss_recovered``; ``clean_loss``,
    ``zero_loss`` (and ``*_ci``) do not depend on the dictionary; ``firing (D, L)``: firing
    frequency; ``dead (D, L)``: never fired. Training: ``labels``, ``seeds``,
    ``penalties``, ``sparsity``, ``tied``, ``num_latents``, ``num_steps``, ``resampled``,
    ``final_train_loss`` (mean over the last 10% of steps). :meth:`member` and
    :meth:`table` give the per-dictionary rows.
    """

    method: ClassVar[str] = "dictionary_learning"
    score: ClassVar[str] = "mean max cosine of true feature directions with the dictionary"
    error_measure: ClassVar[str] = "1 - MMCS"

    model_member: int
    labels: tuple[str, ...]
    seeds: np.ndarray
    penalties: np.ndarray
    sparsity: str
    tied: bool
    num_latents: int
    num_steps: int
    resampled: np.ndarray
    final_train_loss: np.ndarray
    recovery: Recovery
    num_samples: int
    recon_error: np.ndarray
    recon_error_ci: np.ndarray
    recon_relative: np.ndarray
    clean_loss: float
    clean_loss_ci: tuple[float, float]
    zero_loss: float
    zero_loss_ci: tuple[float, float]
    patched_loss: np.ndarray
    patched_loss_ci: np.ndarray
    loss_recovered: np.ndarray
    loss_recovered_ci: np.ndarray
    firing: np.ndarray
    dead: np.ndarray
    loss_tier: Tier = "sampled"

    @property
    def num_dictionaries(self) -> int:
        return len(self.labels)

    @property
    def detail(self) -> str:
        rec = self.recovery
        return (
            f"{self.num_dictionaries} {self.sparsity} dictionaries of {self.num_latents} "
            f"latents; {int(rec.represented.sum())} represented features; MMCS "
            f"{np.min(rec.mmcs):.3f}..{np.max(rec.mmcs):.3f}"
        )

    def facts(self, d: int) -> str:
        """Dictionary ``d`` in one line (exact scores, then sampled ones with intervals)."""
        rec = self.recovery
        nrep = int(rec.represented.sum())
        lo, hi = self.loss_recovered_ci[d]
        return (
            f"MMCS {rec.mmcs[d]:.3f}, recovered {rec.recovered_fraction[d] * nrep:.0f}/{nrep} "
            f"(cos >= {rec.recovered_cos:g}; one-to-one {rec.matched_fraction[d] * nrep:.0f}), "
            f"duplicates {len(rec.duplicates[d])} [exact]; dead {int(self.dead[d].sum())}/"
            f"{self.num_latents}, loss recovered {self.loss_recovered[d]:.3f} "
            f"[{lo:.3f}, {hi:.3f}] [sampled, {self.num_samples} inputs]"
        )

    def member(self, d: int) -> DictionaryMemberResult:
        """Dictionary ``d`` as its own :class:`~toylab.methods.MethodResult`."""
        mmcs = float(self.recovery.mmcs[d])
        return DictionaryMemberResult(
            neuron=self.neuron, sampled=mmcs, exact=1.0, error=1.0 - mmcs, error_tier="exact",
            exact_error=0.0, misleads=bool(1.0 - mmcs > MISLEAD_FRACTION),
            num_forward=self.num_forward // self.num_dictionaries,
            num_backward=self.num_backward // self.num_dictionaries, units="cosine",
            tier="exact", dictionary=d, label=self.labels[d], facts=self.facts(d),
        )  # fmt: skip

    def members(self) -> tuple[DictionaryMemberResult, ...]:
        return tuple(self.member(d) for d in range(self.num_dictionaries))

    def table(self) -> list[dict[str, Any]]:
        """One plain row per dictionary (exact columns, then sampled ones)."""
        rec = self.recovery
        rows = []
        for d in range(self.num_dictionaries):
            rows.append({
                "model_member": self.model_member, "dictionary": d,
                "seed": int(self.seeds[d]), "penalty": float(self.penalties[d]),
                "sparsity": self.sparsity, "mmcs": float(rec.mmcs[d]),
                "recovered_fraction": float(rec.recovered_fraction[d]),
                "matched_fraction": float(rec.matched_fraction[d]),
                "duplicates": len(rec.duplicates[d]),
                "dead": int(self.dead[d].sum()), "resampled": int(self.resampled[d]),
                "recon_error": float(self.recon_error[d]),
                "recon_relative": float(self.recon_relative[d]),
                "patched_loss": float(self.patched_loss[d]),
                "clean_loss": self.clean_loss, "zero_loss": self.zero_loss,
                "loss_recovered": float(self.loss_recovered[d]),
                "loss_recovered_low": float(self.loss_recovered_ci[d][0]),
                "loss_recovered_high": float(self.loss_recovered_ci[d][1]),
            })  # fmt: skip
        return rows


def score_dictionaries(
    dicts: Dictionaries,
    *,
    key: jax.Array,
    num_samples: int = 8192,
    recovered_cos: float = 0.9,
    duplicate_cos: float = 0.9,
    min_norm: float = 0.5,
) -> Any:
    """Score trained dictionaries: a :class:`DictionaryResult` per model member (a tuple
    for an ensemble). Exact recovery scores from the decoders and ``W``; sampled losses on
    ``num_samples`` fresh inputs from ``key`` (the same inputs for every dictionary)."""
    where = "score_dictionaries"
    if not isinstance(dicts, Dictionaries):
        raise fail(
            where, "dicts", type(dicts).__name__, "the Dictionaries train_dictionaries returns"
        )
    check_key(where, key)
    N = check_int(where, "num_samples", num_samples, minimum=2)
    x = dicts.dist.sample(key, N).x
    nets = jax.tree.map(lambda a: a[dicts.model_member], dicts.members.stacked)
    params = {k: jnp.asarray(v) for k, v in dicts.params.items()}
    pens = jnp.asarray(dicts.penalties, jnp.float32)
    template, dist_values = _template(dicts.dist)
    out = _score_program(template, dicts.sparsity, dicts.kmax, dist_values, params, nets, pens, x)
    err, hsq, clean, patched, zero, fired = (np.asarray(a, np.float64) for a in out)
    steps = dicts.train.num_steps
    tail = max(1, steps // 10)
    results = []
    for mm in range(dicts.W.shape[0]):
        sel = np.flatnonzero(dicts.model_member == mm)
        rec = recovery_scores(
            dicts.decoder[sel], dicts.W[mm], recovered_cos=recovered_cos,
            duplicate_cos=duplicate_cos, min_norm=min_norm,
        )  # fmt: skip
        e = [_mean_ci(err[d]) for d in sel]
        pl = [_mean_ci(patched[d]) for d in sel]
        fr = [_ratio_ci(zero[d] - patched[d], zero[d] - clean[d]) for d in sel]
        c_mean, c_ci = _mean_ci(clean[sel[0]])
        z_mean, z_ci = _mean_ci(zero[sel[0]])
        mean_mmcs = float(np.mean(rec.mmcs))
        D = len(sel)
        per = dicts.train.batch_size * steps
        results.append(DictionaryResult(
            neuron="hidden_0", sampled=mean_mmcs, exact=1.0, error=1.0 - mean_mmcs,
            error_tier="exact", exact_error=0.0,
            misleads=bool(1.0 - mean_mmcs > MISLEAD_FRACTION),
            num_forward=D * (per + N), num_backward=D * per, units="cosine", tier="exact",
            model_member=mm, labels=tuple(dicts.label(int(d)) for d in sel),
            seeds=dicts.seeds[sel], penalties=dicts.penalties[sel], sparsity=dicts.sparsity,
            tied=dicts.tied, num_latents=dicts.num_latents, num_steps=steps,
            resampled=dicts.resampled[sel],
            final_train_loss=dicts.train_loss[sel][:, -tail:].mean(axis=1),
            recovery=rec, num_samples=N,
            recon_error=np.array([v for v, _ in e]), recon_error_ci=np.array([c for _, c in e]),
            recon_relative=err[sel].mean(axis=1) / np.maximum(hsq[sel].mean(axis=1), 1e-300),
            clean_loss=c_mean, clean_loss_ci=c_ci, zero_loss=z_mean, zero_loss_ci=z_ci,
            patched_loss=np.array([v for v, _ in pl]),
            patched_loss_ci=np.array([c for _, c in pl]),
            loss_recovered=np.array([v for v, _ in fr]),
            loss_recovered_ci=np.array([c for _, c in fr]),
            firing=fired[sel] / N, dead=fired[sel] == 0,
        ))  # fmt: skip
    return dicts.members.result(results)


def dictionary_learning(
    model: Any,
    dist: Any,
    *,
    key: jax.Array,
    sparsity: str = "l1",
    penalties: Any = (1e-3, 3e-3, 1e-2, 3e-2),
    num_seeds: int = 2,
    num_latents: int | None = None,
    tied: bool = False,
    train: Any = None,
    resample_every: int = 500,
    num_samples: int = 8192,
    recovered_cos: float = 0.9,
    duplicate_cos: float = 0.9,
    min_norm: float = 0.5,
) -> Any:
    """Train sparse autoencoders on ``model``'s hidden layer and score them against its
    true features: :func:`train_dictionaries` then :func:`score_dictionaries` (one
    :class:`DictionaryResult`, or a tuple of them for a list of models)."""
    check_key("dictionary_learning", key)
    k_train, k_score = jax.random.split(key)
    dicts = train_dictionaries(
        model, dist, key=k_train, sparsity=sparsity, penalties=penalties, num_seeds=num_seeds,
        num_latents=num_latents, tied=tied, train=train, resample_every=resample_every,
    )  # fmt: skip
    return score_dictionaries(
        dicts, key=k_score, num_samples=num_samples, recovered_cos=recovered_cos,
        duplicate_cos=duplicate_cos, min_norm=min_norm,
    )  # fmt: skip
