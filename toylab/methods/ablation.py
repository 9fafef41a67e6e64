r"""Ablation, activation patching and weight editing, scored against exact accuracy.

* **Constant ablations** (zero, or mean: the neuron's *exact* mean under the data,
  from :func:`toylab.exact.analyze`) are exact weight edits
  (:func:`toylab.models.ablate`), so the edited network's accuracy and per-class
  accuracy are exact (tier ``"exact"``).
* **Resample ablation** replaces the neuron's value at ``x`` by its value at an
  independent ``x' ~ data``: the edited function is random, so its accuracy is a
  sampled estimate only.
* **Weight edits** (:func:`toylab.models.with_weights`): exact like constant ablations.

For each, the sampled method estimates accuracy (and the change in accuracy,
paired on the same samples) from ``num_samples`` data samples with a 95% normal
interval; cross-entropy loss is reported **sampled only** (an exact expected
cross-entropy is not piecewise linear in ``x``; it would need quadrature).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from toylab._errors import fail
from toylab.methods._core import Net, as_nets, flat_index, jax_flat, normal_ci
from toylab.models import with_weights

__all__ = ["EditResult", "PatchResult", "ablation", "activation_patching", "edit_weights"]

_MODES = ("zero", "mean", "resample")


@dataclasses.dataclass(frozen=True, eq=False)
class EditResult:
    """The effect of an edit on accuracy and loss: exact where possible, sampled beside it.

    Attributes:
      edit: what was done (``"zero hidden_0:3"``, ``"weights layer 1"``...).
      exact_accuracy / exact_accuracy_edited / exact_class_accuracy_edited: exact
        (``None`` for resample ablation, which has no exact counterpart here).
      accuracy / accuracy_edited / delta_accuracy and their ``*_ci``: sampled
        (paired on the same samples).
      loss / loss_edited / delta_loss and ``*_ci``: sampled cross-entropy.
      error: ``|accuracy_edited - exact_accuracy_edited|`` (``nan`` without exact).
    """

    edit: str
    exact_accuracy: float
    exact_accuracy_edited: float | None
    exact_class_accuracy_edited: np.ndarray | None
    accuracy: float
    accuracy_edited: float
    accuracy_edited_ci: tuple[float, float]
    delta_accuracy: float
    delta_accuracy_ci: tuple[float, float]
    loss: float
    loss_edited: float
    loss_edited_ci: tuple[float, float]
    delta_loss: float
    delta_loss_ci: tuple[float, float]
    error: float
    num_samples: int
    num_forward: int
    num_backward: int = 0
    tier: str = "sampled"
    exact_tier: str = "exact"
    loss_tier: str = "sampled"


@functools.lru_cache(maxsize=16)
def _eval_program(acts: tuple[str, ...]) -> Any:
    """Per member: logits of the clean and the patched network at ``x``."""

    def one(params, x, mask, vals):
        clean = jax_flat(params, acts, x)
        patched = jax_flat(params, acts, x, patch=(mask, vals))
        n = params[-1][0].shape[-1]
        return clean[..., -n:], patched[..., -n:], clean

    return jax.jit(jax.vmap(one, in_axes=(0, None, None, 0)))


def _stats(logits: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    correct = (np.argmax(logits, -1) == y).astype(np.float64)
    z = logits - logits.max(-1, keepdims=True)
    lse = np.log(np.exp(z).sum(-1))
    loss = lse - np.take_along_axis(z, y[:, None], -1)[:, 0]
    return correct, loss


def _mean_ci(v: np.ndarray) -> tuple[float, tuple[float, float]]:
    m = float(v.mean())
    return m, normal_ci(m, float(v.std(ddof=1)) / math.sqrt(len(v)))


def _result(edit: str, exact: float, exact_edit: Any, exact_cls: Any, clean: np.ndarray,
            edited: np.ndarray, y: np.ndarray, n_forward: int) -> EditResult:  # fmt: skip
    c0, l0 = _stats(clean, y)
    c1, l1 = _stats(edited, y)
    acc1, acc1_ci = _mean_ci(c1)
    dacc, dacc_ci = _mean_ci(c1 - c0)
    loss1, loss1_ci = _mean_ci(l1)
    dl, dl_ci = _mean_ci(l1 - l0)
    return EditResult(
        edit=edit, exact_accuracy=exact, exact_accuracy_edited=exact_edit,
        exact_class_accuracy_edited=exact_cls, accuracy=float(c0.mean()), accuracy_edited=acc1,
        accuracy_edited_ci=acc1_ci, delta_accuracy=dacc, delta_accuracy_ci=dacc_ci,
        loss=float(l0.mean()), loss_edited=loss1, loss_edited_ci=loss1_ci, delta_loss=dl,
        delta_loss_ci=dl_ci,
        error=abs(acc1 - exact_edit) if exact_edit is not None else math.nan,
        num_samples=len(y), num_forward=n_forward,
    )  # fmt: skip


def ablation(
    model: Any,
    dist: Any,
    neurons: str | Sequence[str],
    *,
    key: jax.Array,
    mode: str = "zero",
    num_samples: int = 4096,
) -> EditResult | tuple[EditResult, ...]:
    """Zero, mean or resample ablation of one hidden neuron or a set.

    The sampled estimates of every member come from one vmapped pass over the
    stacked parameters on shared samples; the exact side (an exact ``analyze``
    of the edited network) is a loop over members. See the module docstring.
    """
    where = "ablation"
    net = as_nets(where, model)
    if mode not in _MODES:
        raise fail(where, "mode", mode, f"one of {list(_MODES)}")
    names = [neurons] if isinstance(neurons, str) else list(neurons)
    if not names:
        raise fail(where, "neurons", neurons, "a hidden neuron address or a non-empty list")
    flats = []
    for n in names:
        nid, flat = flat_index(where, net.widths, n)
        if nid.pre or not nid.layer.startswith("hidden_"):
            raise fail(where, "neurons", n, "hidden post-activation neurons like 'hidden_0:3'")
        flats.append(flat)
    k1, k2 = jax.random.split(key)
    batch = dist.sample(k1, num_samples)
    y = np.asarray(batch.y)
    x = batch.x
    num_flat = sum(net.widths[k] for k in net.widths if k != "input")
    mask = np.zeros(num_flat, bool)
    mask[flats] = True
    prog = _eval_program(net.acts)
    if mode == "resample":
        xs = dist.sample(k2, num_samples).x
        _, _, src = prog(
            net.params, xs, jnp.asarray(mask), jnp.zeros((net.num_members, 1, num_flat))
        )
        vals = src
    else:
        consts = np.zeros((net.num_members, num_flat))
        for m in range(net.num_members):
            if mode == "mean":
                ex = net.exact(m, dist)
                for n, f in zip(names, flats, strict=True):
                    nid, _ = flat_index(where, net.widths, n)
                    consts[m, f] = ex.moments[nid.key].mean[nid.unit]
        vals = jnp.asarray(np.broadcast_to(consts[:, None], (net.num_members, 1, num_flat)),
                           jnp.float32)  # fmt: skip
    clean, patched, _ = prog(net.params, x, jnp.asarray(mask), vals)
    clean, patched = np.asarray(clean, np.float64), np.asarray(patched, np.float64)
    out = []
    for m in range(net.num_members):
        ex = net.exact(m, dist)
        exact_edit, exact_cls = None, None
        if mode != "resample":
            values = {n: float(consts[m, f]) for n, f in zip(names, flats, strict=True)}
            exact_edit, exact_cls = exact_accuracy(ablated_layers(net, m, values), net.acts, dist)
        n_fw = 2 * num_samples * (2 if mode == "resample" else 1)
        out.append(_result(f"{mode} {','.join(names)}", float(ex.accuracy), exact_edit, exact_cls,
                           clean[m], patched[m], y, n_fw))  # fmt: skip
    return tuple(out) if net.ensemble else out[0]


def ablated_layers(
    net: Net, m: int, values: dict[str, float]
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Member ``m``'s float64 layers with each neuron fixed to a constant (as
    :func:`toylab.models.ablate` does, without building a model)."""
    layers = [(w.copy(), b.copy()) for w, b in net.layers[m]]
    for name, v in values.items():
        nid, _ = flat_index("ablation", net.widths, name)
        k = int(nid.layer.split("_")[1])
        w_next, b_next = layers[k + 1]
        b_next += v * w_next[nid.unit]
        w_next[nid.unit] = 0.0
    return layers


def exact_accuracy(layers: Any, acts: Any, dist: Any) -> tuple[float, np.ndarray]:
    """Exact accuracy and per-class accuracy (:func:`toylab.exact.analyze`)."""
    from toylab.exact import analyze
    from toylab.network import Network

    res = analyze(Network.from_layers(layers, list(acts)), dist)
    return float(res.accuracy), res.class_accuracy


def edit_weights(
    model: Any,
    dist: Any,
    layer: int,
    *,
    key: jax.Array,
    W: Any = None,
    b: Any = None,
    num_samples: int = 4096,
) -> EditResult | tuple[EditResult, ...]:
    """Replace layer ``layer``'s kernel and/or bias (same edit for every member) and score it.

    A loop over members (each edit builds a new model): exact accuracy of the
    edited network next to the sampled estimate.
    """
    net = as_nets("edit_weights", model)
    batch = dist.sample(key, num_samples)
    y = np.asarray(batch.y)
    out = []
    for m in range(net.num_members):
        edited = with_weights(net.models[m], layer, W, b)
        enet = as_nets("edit_weights", edited)
        prog = _eval_program(net.acts)
        num_flat = sum(net.widths[k] for k in net.widths if k != "input")
        mask = jnp.zeros(num_flat, bool)
        z = jnp.zeros((1, 1, num_flat))
        clean = np.asarray(prog(tuple((w[m:m + 1], bb[m:m + 1]) for w, bb in net.params),
                                batch.x, mask, z)[0][0], np.float64)  # fmt: skip
        after = np.asarray(prog(enet.params, batch.x, mask, z)[0][0], np.float64)
        exact_edit = enet.exact(0, dist)
        out.append(_result(f"weights layer {layer}", float(net.exact(m, dist).accuracy),
                           float(exact_edit.accuracy), exact_edit.class_accuracy, clean, after, y,
                           2 * num_samples))  # fmt: skip
    return tuple(out) if net.ensemble else out[0]


@dataclasses.dataclass(frozen=True, eq=False)
class PatchResult:
    """Activation patching: ``neuron``'s value at ``x`` replaced by its value at ``x_source``.

    ``logits`` / ``patched_logits``: float32 forward passes (the method);
    ``exact_logits`` / ``exact_patched_logits``: the same in float64 (exact, no
    sampling involved); ``error``: the largest difference between the two;
    ``effect``: ``patched_logits - logits``.
    """

    neuron: str
    x: np.ndarray
    x_source: np.ndarray
    logits: np.ndarray
    patched_logits: np.ndarray
    exact_logits: np.ndarray
    exact_patched_logits: np.ndarray
    effect: np.ndarray
    error: float
    num_forward: int = 3
    num_backward: int = 0
    tier: str = "exact"


def activation_patching(model: Any, neuron: str, x: Any, x_source: Any
                        ) -> PatchResult | tuple[PatchResult, ...]:  # fmt: skip
    """Patch one hidden neuron from ``x_source`` into ``x`` (points ``(d,)`` or ``(N, d)``).

    Deterministic: no key. Members run in one vmapped pass.
    """
    where = "activation_patching"
    net = as_nets(where, model)
    nid, flat = flat_index(where, net.widths, neuron)
    if nid.pre or not nid.layer.startswith("hidden_"):
        raise fail(where, "neuron", neuron, "a hidden post-activation neuron like 'hidden_0:3'")
    xa, xs = np.atleast_2d(np.asarray(x, np.float64)), np.atleast_2d(np.asarray(x_source, float))
    num_flat = sum(net.widths[k] for k in net.widths if k != "input")
    mask = np.zeros(num_flat, bool)
    mask[flat] = True
    prog = _eval_program(net.acts)
    _, _, src = prog(net.params, jnp.asarray(xs, jnp.float32), jnp.asarray(mask),
                     jnp.zeros((net.num_members, 1, num_flat)))  # fmt: skip
    clean, patched, _ = prog(net.params, jnp.asarray(xa, jnp.float32), jnp.asarray(mask), src)
    out = []
    for m in range(net.num_members):
        ex_clean, ex_patched = _np_patch(net, m, xa, xs, flat)
        pl, cl = np.asarray(patched[m], np.float64), np.asarray(clean[m], np.float64)
        err = max(float(np.abs(pl - ex_patched).max()), float(np.abs(cl - ex_clean).max()))
        out.append(PatchResult(str(nid), xa, xs, cl, pl, ex_clean, ex_patched, pl - cl, err))
    return tuple(out) if net.ensemble else out[0]


def _np_patch(net: Net, m: int, xa: np.ndarray, xs: np.ndarray, flat: int
              ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    from toylab.activations import ACTIVATIONS as NUMPY_ACTIVATIONS

    layers = net.layers[m]

    def run(x: np.ndarray, replace: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
        h, o, got = x, 0, None
        for k, act in enumerate(net.acts):
            w, b = layers[k]
            h = NUMPY_ACTIVATIONS[act](h @ w + b)
            n = w.shape[1]
            if o + n <= flat < o + 2 * n:
                got = h[:, flat - o - n].copy()
                if replace is not None:
                    h = h.copy()
                    h[:, flat - o - n] = replace
            o += 2 * n
        w, b = layers[-1]
        return h @ w + b, got

    _, src = run(xs, None)
    clean, _ = run(xa, None)
    patched, _ = run(xa, src)
    return clean, patched
