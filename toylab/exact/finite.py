"""Exact analysis on finite domains (modular arithmetic, Boolean functions).

On a finite input set every neuron is a finite table. :func:`finite_table` evaluates
the network on every input in float64 (float32 weights are exactly representable in
float64, so the table is the network's function up to float64 rounding), in chunks of
``chunk_size`` inputs so memory stays bounded, and accumulates the exact expectations
under the domain's probabilities: ``E[a]``, ``E[a a^T]``, ``P(a > 0)``, per-class
means, every unit's extremes over the inputs of positive probability, and the exact
accuracy (ties count as wrong). It returns the same :class:`~toylab.exact.Analysis`
as the plane (``kind="finite"``, tier ``"exact"``), the error being a bound on the
rounding of the sums.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from toylab._errors import NotApplicable, fail
from toylab._validate import check_int
from toylab.distributions.base import FiniteDomain
from toylab.exact.analysis import Analysis
from toylab.exact.integrals import NeuronMomentsResult
from toylab.exact.queries import ExtremaResult
from toylab.network import as_network

__all__ = ["correct_predictions", "finite_accuracy", "finite_table"]

_EPS = float(np.finfo(np.float64).eps)


def finite_table(
    model: Any, dist: Any, *, chunk_size: int = 65536, keep_table: bool = True
) -> Analysis:
    """Evaluate ``model`` on every input of ``dist``'s finite domain, exactly."""
    where = "finite_table"
    domain: Any = getattr(dist, "domain", None)
    if not isinstance(domain, FiniteDomain):
        raise NotApplicable(
            f"{where}: dist must have a finite domain, got {type(dist).__name__}. Use "
            "toylab.exact.analyze for continuous distributions."
        )
    chunk = check_int(where, "chunk_size", chunk_size, minimum=1)
    net = as_network(model, where).untied().numpy(np.float64)
    inputs = np.asarray(domain.inputs, np.float64)
    if inputs.shape[1] != net.input_dim:
        raise fail(
            where, "model", repr(net), f"a network with {inputs.shape[1]} inputs (the domain's)",
            "Build the model for this distribution.",
        )  # fmt: skip
    probs = np.asarray(domain.probs, np.float64)
    labels = np.asarray(domain.labels)
    num_classes = int(getattr(dist, "num_classes", 0))
    keys = net.layer_keys()
    sums: dict[str, Any] = dict.fromkeys(keys, 0.0)
    abs_sums: dict[str, Any] = dict.fromkeys(keys, 0.0)
    sq: dict[str, Any] = dict.fromkeys(keys, 0.0)
    fire: dict[str, Any] = dict.fromkeys(keys, 0.0)
    cls: dict[str, Any] = dict.fromkeys(keys, 0.0)
    hi: dict[str, Any] = {}
    lo: dict[str, Any] = {}
    table: dict[str, list[np.ndarray]] = {k: [] for k in keys}
    correct = np.zeros(max(num_classes, 1))
    for start in range(0, inputs.shape[0], chunk):
        sl = slice(start, start + chunk)
        values = net.forward(inputs[sl])
        p = probs[sl]
        live = p > 0
        onehot = (labels[sl][:, None] == np.arange(num_classes)) * p[:, None]
        for key in keys:
            v = values[key]
            sums[key] = sums[key] + p @ v
            abs_sums[key] = abs_sums[key] + p @ np.abs(v)
            sq[key] = sq[key] + (v * p[:, None]).T @ v
            fire[key] = fire[key] + p @ (v > 0)
            if num_classes:
                cls[key] = cls[key] + onehot.T @ v
            if live.any():
                vl, xl = v[live], np.flatnonzero(live) + start
                imax, imin = vl.argmax(0), vl.argmin(0)
                cand = (vl[imax, np.arange(v.shape[1])], xl[imax], vl[imin, np.arange(v.shape[1])],
                        xl[imin])  # fmt: skip
                if key not in hi:
                    hi[key], lo[key] = cand[:2], cand[2:]
                else:
                    better = cand[0] > hi[key][0]
                    hi[key] = (np.where(better, cand[0], hi[key][0]),
                               np.where(better, cand[1], hi[key][1]))  # fmt: skip
                    worse = cand[2] < lo[key][0]
                    lo[key] = (np.where(worse, cand[2], lo[key][0]),
                               np.where(worse, cand[3], lo[key][1]))  # fmt: skip
            if keep_table:
                table[key].append(v)
        if num_classes:
            ok = correct_predictions(values["output"], labels[sl])
            correct += np.bincount(labels[sl][ok], weights=p[ok], minlength=num_classes)
    moments = {}
    extrema = {}
    for key in keys:
        mean = np.asarray(sums[key])
        second = np.asarray(sq[key])
        second = 0.5 * (second + second.T)
        moments[key] = NeuronMomentsResult(
            mean=mean,
            second_moment=second,
            cov=second - np.outer(mean, mean),
            firing_probability=np.asarray(fire[key]),
            mass=np.asarray(probs.sum()),
        )
        extrema[key] = ExtremaResult(hi[key][0], inputs[hi[key][1]], lo[key][0], inputs[lo[key][1]])
    class_mass = np.array([probs[labels == c].sum() for c in range(num_classes)])
    group_means = {k: np.asarray(cls[k]) for k in keys} if num_classes else {}
    # rounding: each sum of n products has error <= n eps sum |terms| (plus the forward pass,
    # whose relative error is a few eps per layer of the magnitudes involved)
    n = inputs.shape[0] + 4 * net.num_layers
    mag = max((float(np.max(abs_sums[k], initial=0.0)) for k in keys), default=0.0)
    rounding = n * _EPS * max(mag, mag**2, 1.0)
    accuracy = float(correct.sum()) if num_classes else float("nan")
    return Analysis(
        network=net,
        dist=dist,
        kind="finite",
        moments=moments,
        accuracy=accuracy,
        class_accuracy=correct / np.where(class_mass > 0, class_mass, 1.0)
        if num_classes
        else np.zeros(0),
        tier="exact",
        error=rounding,
        errors={"rounding": rounding, "truncation": 0.0, "band": 0.0},
        method=f"exhaustive over all {inputs.shape[0]} inputs of the finite domain (float64)",
        groups="class",
        group_class=np.arange(num_classes),
        _group_means=group_means,
        _extrema=extrema,
        _table={k: np.concatenate(v) for k, v in table.items()} if keep_table else None,
    )


def correct_predictions(outputs: Any, labels: Any) -> np.ndarray:
    """Whether each row's arg-max output is its label, one bool per row. A tie for the
    largest output counts as wrong (no class is predicted): the rule of every exact
    accuracy in toylab."""
    out = np.asarray(outputs)
    top = np.argmax(out, -1)
    unique = (out == out.max(-1, keepdims=True)).sum(-1) == 1
    return (top == np.asarray(labels)) & unique


def finite_accuracy(model: Any, dist: Any, train_mask: Any = None) -> dict[str, Any]:
    """Exact accuracy of ``model`` on a finite task, by enumeration, split into train and
    test by the member's training set.

    Every input of ``dist.domain`` goes through the float64 network
    (:func:`correct_predictions`: a tie counts as wrong). ``domain`` is the fraction of
    the domain's inputs classified correctly (each input counted once, as a training
    set is); with ``train_mask`` (a bool per domain input: the member's training set,
    ``data = 'full'``) also ``train`` and ``test`` (``None`` without a mask or for an
    empty side). Returns ``{"domain", "train", "test", "num_train", "num_test", "tier":
    "exact"}``.
    """
    where = "finite_accuracy"
    domain: Any = getattr(dist, "domain", None)
    if not isinstance(domain, FiniteDomain) or not getattr(dist, "num_classes", 0):
        raise NotApplicable(
            f"{where}: dist must be a classification task on a finite domain, got "
            f"{type(dist).__name__}. Use toylab.exact.analyze(model, dist).accuracy."
        )
    x = np.asarray(domain.inputs, np.float64)
    net = as_network(model, where).untied().numpy(np.float64)
    correct = correct_predictions(net(x), domain.labels)
    res: dict[str, Any] = {"domain": float(np.mean(correct)), "train": None, "test": None,
                           "num_train": None, "num_test": None, "tier": "exact"}  # fmt: skip
    if train_mask is not None:
        mask = np.asarray(train_mask, bool)
        if mask.shape != correct.shape:
            raise fail(
                where, "train_mask", f"shape {mask.shape}",
                f"one bool per input of the domain, shape {correct.shape}",
            )  # fmt: skip
        res["num_train"], res["num_test"] = int(mask.sum()), int((~mask).sum())
        if mask.any():
            res["train"] = float(np.mean(correct[mask]))
        if (~mask).any():
            res["test"] = float(np.mean(correct[~mask]))
    return res
