r"""Ablation, weight editing and activation patching, scored against exact accuracy.

* **Constant ablations** (zero, or mean: the neuron's *exact* mean under the data, from
  the member's analysis) are exact weight edits (:meth:`toylab.network.Network.ablate`,
  float64 kept), so the edited network's accuracy comes from
  :func:`toylab.exact.analyze` like the original's (tier ``exact`` for Gaussian mixtures
  and finite domains, ``estimated`` under quadrature densities). When every ablated unit
  is already constant at the ablation value over the whole integration support (a dead
  unit zero-ablated), the edit changes nothing there and no new analysis is run.
* **Resample ablation** replaces the neuron's value at ``x`` by its value at an
  independent ``x' ~ data``: the edited function is random, so its accuracy is a
  sampled estimate only (no exact counterpart).
* **Weight edits** (:meth:`toylab.network.Network.with_layer`): exact like constant
  ablations.

For each, the sampled method estimates the accuracy and the change in accuracy (paired
on the same samples) from ``num_samples`` data samples with a 95% normal interval;
cross-entropy loss is reported **sampled only** (an exact expected cross-entropy is not
piecewise linear in ``x``).

**Activation patching** (:func:`activation_patching`) is deterministic: the float32
forward pass with one hidden unit's value taken from another input, next to the same in
float64.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Sequence
from typing import Any, ClassVar

import jax
import numpy as np

from toylab._errors import fail
from toylab._validate import check_array, check_choice, check_int
from toylab.methods._core import (
    Context,
    EditedAccuracy,
    MethodResult,
    check_key,
    context_for,
    f32,
    flat_values,
    normal_ci,
    patched_outputs,
    positive_int,
    to_f64,
)
from toylab.network import Network
from toylab.neurons import NeuronId
from toylab.tiers import Tier, weakest

__all__ = ["EditResult", "PatchResult", "ablation", "activation_patching", "edit_weights"]

_MODES = ("zero", "mean", "resample")


@dataclasses.dataclass(frozen=True, eq=False, kw_only=True)
class EditResult(MethodResult):
    """The effect of an edit on accuracy and loss: exact where possible, sampled beside it.

    Uniform fields (:class:`toylab.methods.MethodResult`): ``sampled`` is the sampled
    change in accuracy (edited minus original, paired on the same samples), ``exact``
    the exact change, ``error = |sampled - exact|``, in accuracy (probability) units;
    ``error_tier`` the weaker of the two analyses' tiers and ``exact_error`` the sum of
    their errors. **Misleads** when the exact change lies outside the sampled 95%
    interval ``delta_accuracy_ci`` widened by ``1 / num_samples`` (the resolution of a
    sampled accuracy) and ``exact_error``. Resample ablation has no exact counterpart:
    ``exact`` and ``error`` are ``nan``, ``misleads`` is false and ``error_tier`` is
    ``"sampled"``.

    Other fields: ``neuron`` (the edited neurons, or ``"layer k"``); ``edit``: what was
    done (``"zero hidden_0:3"``, ``"weights layer 1"``); ``exact_accuracy``,
    ``exact_accuracy_edited``, ``exact_class_accuracy_edited`` (``None`` for resample);
    ``accuracy``, ``accuracy_edited``, ``accuracy_edited_ci``, ``delta_accuracy_ci``:
    sampled; ``loss``, ``loss_edited``, ``delta_loss`` and their ``*_ci``: sampled
    cross-entropy (``loss_tier = "sampled"``).
    """

    method: ClassVar[str] = "ablation"
    score: ClassVar[str] = "change in accuracy"
    error_measure: ClassVar[str] = "|sampled change - exact change|"
    edit: str
    exact_accuracy: float
    exact_accuracy_edited: float | None
    exact_class_accuracy_edited: np.ndarray | None
    accuracy: float
    accuracy_edited: float
    accuracy_edited_ci: tuple[float, float]
    delta_accuracy_ci: tuple[float, float]
    loss: float
    loss_edited: float
    loss_edited_ci: tuple[float, float]
    delta_loss: float
    delta_loss_ci: tuple[float, float]
    num_samples: int
    units: str = "accuracy (probability)"
    tier: Tier = "sampled"
    loss_tier: Tier = "sampled"

    @property
    def detail(self) -> str:
        return f"{self.edit}: delta_loss={self.delta_loss:.3g} (sampled)"


def _stats(logits: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    correct = (np.argmax(logits, -1) == y).astype(np.float64)
    z = logits - logits.max(-1, keepdims=True)
    lse = np.log(np.exp(z).sum(-1))
    loss = lse - np.take_along_axis(z, y[:, None], -1)[:, 0]
    return correct, loss


def _mean_ci(v: np.ndarray) -> tuple[float, tuple[float, float]]:
    m = float(v.mean())
    return m, normal_ci(m, float(v.std(ddof=1)) / math.sqrt(len(v)))


def edit_result(
    neuron: str,
    edit: str,
    original: Any,
    edited: EditedAccuracy | None,
    clean: np.ndarray,
    after: np.ndarray,
    y: np.ndarray,
    num_forward: int,
) -> EditResult:
    """Sampled statistics of ``clean``/``after`` logits ``(N, C)`` next to the exact ones
    (``original``: the member's analysis; ``edited``: ``None`` without an exact answer)."""
    c0, l0 = _stats(clean, y)
    c1, l1 = _stats(after, y)
    acc1, acc1_ci = _mean_ci(c1)
    dacc, dacc_ci = _mean_ci(c1 - c0)
    loss1, loss1_ci = _mean_ci(l1)
    dl, dl_ci = _mean_ci(l1 - l0)
    n = len(y)
    if edited is None:
        exact, err, tier, exact_err, misleads = math.nan, math.nan, "sampled", math.nan, False
    else:
        exact = edited.accuracy - float(original.accuracy)
        err = abs(dacc - exact)
        tier = weakest(original.tier, edited.tier)
        exact_err = float(original.error) + edited.error
        slack = 1.0 / n + exact_err
        misleads = not (dacc_ci[0] - slack <= exact <= dacc_ci[1] + slack)
    return EditResult(
        neuron=neuron, sampled=dacc, exact=exact, error=err, error_tier=tier,  # type: ignore[arg-type]
        exact_error=exact_err, misleads=bool(misleads), num_forward=num_forward, num_backward=0,
        edit=edit, exact_accuracy=float(original.accuracy),
        exact_accuracy_edited=None if edited is None else edited.accuracy,
        exact_class_accuracy_edited=None if edited is None else edited.class_accuracy,
        accuracy=float(c0.mean()), accuracy_edited=acc1, accuracy_edited_ci=acc1_ci,
        delta_accuracy_ci=dacc_ci, loss=float(l0.mean()), loss_edited=loss1,
        loss_edited_ci=loss1_ci, delta_loss=dl, delta_loss_ci=dl_ci, num_samples=n,
    )  # fmt: skip


def _unchanged_on_support(analysis: Any, nids: Sequence[NeuronId], values: Sequence[float]) -> bool:
    """Whether every unit already equals its ablation value wherever the analysis
    integrates (the support partition, or every input of positive probability)."""
    from toylab.exact import region_ranges

    for nid, v in zip(nids, values, strict=True):
        if analysis.kind == "plane":
            lo, hi = region_ranges(analysis.support, nid.key, nid.unit)
        else:
            live = np.asarray(analysis.dist.domain.probs) > 0
            col = analysis.table[nid.key][live, nid.unit]
            lo, hi = col, col
        if not (np.all(lo == v) and np.all(hi == v)):
            return False
    return True


def ablated_accuracy(
    context: Context, m: int, nids: Sequence[NeuronId], values: Sequence[float], where: str
) -> EditedAccuracy:
    """The exact accuracy of member ``m`` with each unit fixed to its value."""
    ana = context.analysis(m, where)
    if _unchanged_on_support(ana, nids, values):
        return EditedAccuracy(
            float(ana.accuracy), np.asarray(ana.class_accuracy), ana.tier, float(ana.error)
        )
    consts = {str(n): float(v) for n, v in zip(nids, values, strict=True)}
    net = context.members.networks[m].ablate(list(consts), consts)
    label = "ablate " + ",".join(f"{k}={v!r}" for k, v in sorted(consts.items()))
    return context.edited(m, label, net, where)


def ablation(
    model: Any,
    dist: Any,
    neurons: str | Sequence[str],
    *,
    key: jax.Array,
    mode: str = "zero",
    num_samples: int = 4096,
    context: Context | None = None,
) -> EditResult | tuple[EditResult, ...]:
    """Zero, mean or resample ablation of one hidden neuron or a set (see the module
    docstring and :class:`EditResult`).

    The sampled estimates of every member come from one vmapped pass over the stacked
    members on shared samples; the exact side uses each member's analysis (a
    :class:`~toylab.methods.Context` to reuse). Applies wherever :func:`toylab.exact.analyze`
    does: 2-D distributions and finite domains.
    """
    where = "ablation"
    check_key(where, key)
    ctx = context_for(where, model, dist, context)
    members = ctx.members
    check_choice(where, "mode", mode, _MODES)
    num_samples = positive_int(where, "num_samples", num_samples, minimum=2)
    names = [neurons] if isinstance(neurons, str | NeuronId) else list(neurons)
    if not names:
        raise fail(where, "neurons", neurons, "a hidden neuron address or a non-empty list")
    pairs = [members.flat(where, n, hidden_post=True) for n in names]
    nids, flats = [p[0] for p in pairs], [p[1] for p in pairs]
    analyses = [ctx.analysis(m, where) for m in range(members.num_members)]
    k1, k2 = jax.random.split(key)
    batch = dist.sample(k1, num_samples)
    y = np.asarray(batch.y)
    x = f32(batch.x)
    mask = np.zeros(members.num_flat, bool)
    mask[flats] = True
    consts = np.zeros((members.num_members, len(nids)))
    if mode == "resample":
        xs = f32(dist.sample(k2, num_samples).x)
        vals = flat_values(members.stacked, xs)  # (M, N, F)
    else:
        if mode == "mean":
            for m, ana in enumerate(analyses):
                consts[m] = [ana.moments[n.key].mean[n.unit] for n in nids]
        full = np.zeros((members.num_members, 1, members.num_flat))
        full[:, 0, flats] = consts
        vals = f32(full)
    clean, patched = patched_outputs(members.stacked, x, mask, vals)
    clean, patched = to_f64(clean), to_f64(patched)
    label = ",".join(map(str, nids))
    out = []
    for m, ana in enumerate(analyses):
        edited = None
        if mode != "resample":
            edited = ablated_accuracy(ctx, m, nids, list(consts[m]), where)
        n_fw = 2 * num_samples * (2 if mode == "resample" else 1)
        out.append(
            edit_result(label, f"{mode} {label}", ana, edited, clean[m], patched[m], y, n_fw)
        )
    return members.result(out)


def _digest(*arrays: Any) -> str:
    h = hashlib.sha1()
    for a in arrays:
        if a is not None:
            arr = np.ascontiguousarray(np.asarray(a, np.float64))
            h.update(str(arr.shape).encode() + arr.tobytes())
        h.update(b"|")
    return h.hexdigest()[:12]


def edit_weights(
    model: Any,
    dist: Any,
    layer: int,
    *,
    key: jax.Array,
    W: Any = None,
    b: Any = None,
    num_samples: int = 4096,
    context: Context | None = None,
) -> EditResult | tuple[EditResult, ...]:
    """Replace layer ``layer``'s kernel and/or bias (the same edit for every member) and
    score it: the exact accuracy of each edited network next to the sampled estimate
    (one vmapped pass over the stacked edited members)."""
    where = "edit_weights"
    check_key(where, key)
    ctx = context_for(where, model, dist, context)
    members = ctx.members
    num_samples = positive_int(where, "num_samples", num_samples, minimum=2)
    layer = check_int(where, "layer", layer, minimum=0, maximum=members.reference.num_layers - 1)
    if W is None and b is None:
        raise fail(where, "W, b", (W, b), "at least one array to replace")
    edited = [net.with_layer(layer, kernel=W, bias=b) for net in members.networks]
    analyses = [ctx.analysis(m, where) for m in range(members.num_members)]
    batch = dist.sample(key, num_samples)
    y = np.asarray(batch.y)
    x = f32(batch.x)
    c = members.reference.output_dim
    clean = to_f64(flat_values(members.stacked, x))[..., -c:]
    stacked = Network.stack([net.numpy(np.float32) for net in edited]).jax()
    after = to_f64(flat_values(stacked, x))[..., -c:]
    label = f"weights layer {layer} {_digest(W, b)}"
    out = []
    for m, ana in enumerate(analyses):
        acc = ctx.edited(m, label, edited[m], where)
        out.append(edit_result(f"layer {layer}", f"weights layer {layer}", ana, acc, clean[m],
                               after[m], y, 2 * num_samples))  # fmt: skip
    return members.result(out)


@dataclasses.dataclass(frozen=True, eq=False, kw_only=True)
class PatchResult(MethodResult):
    """Activation patching: ``neuron``'s value at ``x`` replaced by its value at ``x_source``.

    Deterministic (``tier = "exact"``: the float32 pass differs from the float64 one by
    rounding only). Uniform fields (:class:`toylab.methods.MethodResult`): ``sampled`` is
    the largest change of any output caused by the patch in float32, ``exact`` the same
    in float64, ``error`` the largest difference between the float32 and float64 patched
    outputs, in output (logit) units; ``error_tier`` ``"exact"``. **Misleads** when
    ``error`` exceeds 5% of the exact effect plus a float32 rounding floor (it should
    never).

    Other fields: ``x``, ``x_source`` ``(N, d)``; ``logits``, ``patched_logits``
    (float32); ``exact_logits``, ``exact_patched_logits`` (float64); ``effect``:
    ``patched_logits - logits``.
    """

    method: ClassVar[str] = "activation_patching"
    score: ClassVar[str] = "largest change of an output"
    error_measure: ClassVar[str] = "max |float32 - float64| over the outputs"
    x: np.ndarray
    x_source: np.ndarray
    logits: np.ndarray
    patched_logits: np.ndarray
    exact_logits: np.ndarray
    exact_patched_logits: np.ndarray
    effect: np.ndarray
    units: str = "output"
    tier: Tier = "exact"

    @property
    def detail(self) -> str:
        return f"points={len(self.x)}"


def activation_patching(
    model: Any, neuron: str, x: Any, x_source: Any
) -> PatchResult | tuple[PatchResult, ...]:
    """Patch one hidden neuron from ``x_source`` into ``x`` (points ``(d,)`` or ``(N, d)``).

    Deterministic: no key, no distribution. Members run in one vmapped pass; the float64
    reference uses the network's hooks on the host.
    """
    from toylab.methods._core import as_members

    where = "activation_patching"
    members = as_members(where, model)
    nid, flat = members.flat(where, neuron, hidden_post=True)
    d = members.input_dim
    xa = check_array(where, "x", np.atleast_2d(np.asarray(x, np.float64)), shape=(None, d))
    xs = check_array(where, "x_source", np.atleast_2d(np.asarray(x_source, np.float64)),
                     shape=(xa.shape[0], d))  # fmt: skip
    mask = np.zeros(members.num_flat, bool)
    mask[flat] = True
    src = flat_values(members.stacked, f32(xs))
    clean, patched = patched_outputs(members.stacked, f32(xa), mask, src)
    out = []
    for m, net in enumerate(members.networks):
        source = net.forward(xs)[nid.key][:, nid.unit]

        def hook(h: np.ndarray, source: np.ndarray = source) -> np.ndarray:
            h = h.copy()
            h[:, nid.unit] = source
            return h

        ex_clean, ex_patched = net(xa), net.forward(xa, hooks={nid.key: hook})["output"]
        cl, pl = to_f64(clean[m]), to_f64(patched[m])
        err = max(float(np.abs(pl - ex_patched).max()), float(np.abs(cl - ex_clean).max()))
        effect, exact_effect = pl - cl, ex_patched - ex_clean
        scale = float(np.abs(exact_effect).max())
        floor = 1e-5 * (1.0 + float(np.abs(ex_patched).max()))  # float32 rounding
        out.append(PatchResult(
            neuron=str(nid), sampled=float(np.abs(effect).max()), exact=scale, error=err,
            error_tier="exact", exact_error=1e-12 * (1.0 + float(np.abs(ex_patched).max())),
            misleads=bool(err > 0.05 * scale + floor), num_forward=3 * len(xa), num_backward=0,
            x=xa, x_source=xs, logits=cl, patched_logits=pl, exact_logits=ex_clean,
            exact_patched_logits=ex_patched, effect=effect,
        ))  # fmt: skip
    return members.result(out)
