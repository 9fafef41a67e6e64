"""Claims about the features of a toy model of superposition (private).

A feature of a toy model of superposition is an input, addressed ``"input:i"``; its
embedding is column ``i`` of ``W`` (``h = W x``). These kinds are decided on the exact
metrics of :func:`toylab.superposition.superposition_metrics` (exact functions of the
weights in float64), so every verdict is ``exact``; a tie within the rounding bound of
the number counts as holding:

* ``represented``: ``‖W_i‖ ≥ threshold`` (the paper's plots use 0.5);
* ``antipodal`` (with ``other = "input:j"``): ``cos(W_i, W_j) ≤ −1 + tol``, both
  columns non-zero;
* ``feature_dimensionality``: ``low ≤ D_i ≤ high``, ``D_i = ‖W_i‖² / Σ_j (Ŵ_i·W_j)²``;
* ``dimensions_per_feature``: ``low ≤ D* ≤ high``, ``D* = m / ‖W‖_F²`` (a property of
  the whole model: the address names any of its features).

Rounding bounds: a sum of ``k`` products in float64 is within ``k·eps`` (relative to
the sum of absolute values, here of non-negative terms), a square root and a division
add ``eps`` each, so a norm is within ``(m + 2)·eps`` relative, a cosine within
``(2m + 4)·eps`` absolute and ``D_i``, ``D*`` within ``(2(m + n) + 6)·eps`` relative; the
bounds below double these.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from toylab._errors import ToylabError, fail
from toylab.claims import _schema as sc
from toylab.claims._context import Context
from toylab.claims._schema import Kind, Param
from toylab.neurons import NeuronId

_EPS = float(np.finfo(np.float64).eps)


def _metrics(ctx: Context, nid: NeuronId, kind: str) -> Any:
    r = ctx.superposition
    if r is None:
        raise ToylabError(
            f"check: a {kind!r} claim is about a toy model of superposition (h = W x, "
            f"x' = [ReLU](Wᵀ h + b)); the model is {ctx.network!r}. Train one with "
            "[model] kind = 'superposition_relu' or build it with "
            "toylab.models.SuperpositionReLU.from_weights(W, b)."
        )
    if nid.layer != "input" or nid.pre:
        raise fail(kind, "neuron", str(nid), "a feature address 'input:i'",
                   "The features of a toy model of superposition are its inputs.")  # fmt: skip
    return r


def _decide(value: float, error: float, low: float | None, high: float | None) -> dict:
    margins = []
    if low is not None:
        margins.append(value - low)
    if high is not None:
        margins.append(high - value)
    margin = min(margins)
    return {"holds": margin >= -error, "margin": margin, "estimate": value,
            "estimate_tier": "exact"}  # fmt: skip


def _represented(ctx: Context, nid: NeuronId, p: dict) -> dict:
    r = _metrics(ctx, nid, "represented")
    norm = float(r.norms[nid.unit])
    return _decide(norm, 2 * (r.num_hidden + 2) * _EPS * norm, p.get("threshold", 0.5), None)


def _antipodal(ctx: Context, nid: NeuronId, p: dict) -> dict:
    r = _metrics(ctx, nid, "antipodal")
    j = ctx.net.resolve(p["other"], allow_input=True)
    if j.layer != "input" or j.unit == nid.unit:
        raise fail("antipodal", "other", p["other"], f"another feature 'input:j' (not {nid})")
    i, j_ = nid.unit, j.unit
    ni, nj = float(r.norms[i]), float(r.norms[j_])
    if ni == 0 or nj == 0:  # a zero column has no direction: not antipodal
        return {"holds": False, "margin": -1.0, "estimate": float("nan"),
                "estimate_tier": "exact", "detail": "a feature with a zero embedding"}  # fmt: skip
    cos = float(r.interference[i, j_]) / (ni * nj)
    out = _decide(cos, 2 * (2 * r.num_hidden + 4) * _EPS, None, -1.0 + p.get("tol", 0.05))
    return {**out, "detail": f"cos(W_{i}, W_{j_}) = {cos:.6f}"}


def _dimensionality(ctx: Context, nid: NeuronId, p: dict) -> dict:
    r = _metrics(ctx, nid, "feature_dimensionality")
    d = float(r.dimensionality[nid.unit])
    err = 2 * (2 * (r.num_hidden + r.num_features) + 6) * _EPS * abs(d)
    return _decide(d, err, p.get("low"), p.get("high"))


def _dstar(ctx: Context, nid: NeuronId, p: dict) -> dict:
    r = _metrics(ctx, nid, "dimensions_per_feature")
    d = float(r.dimensions_per_feature)
    err = 2 * (2 * (r.num_hidden + r.num_features) + 6) * _EPS * abs(d) if np.isfinite(d) else 0.0
    return _decide(d, err, p.get("low"), p.get("high"))


def _range_text(p: Any) -> str:
    lo, hi = p.get("low"), p.get("high")
    if lo is not None and hi is not None:
        return f"in [{lo:g}, {hi:g}]"
    return f">= {lo:g}" if lo is not None else f"<= {hi:g}"


_LOW = Param("low", sc.nonneg, False, "a lower bound >= 0")
_HIGH = Param("high", sc.nonneg, False, "an upper bound >= 0")

FEATURE_KINDS: tuple[Kind, ...] = (
    Kind(
        "represented",
        (Param("threshold", sc.nonneg, False, "a norm >= 0 (default 0.5)"),),
        lambda p: f"is represented (‖W_i‖ >= {p.get('threshold', 0.5):g})",
        exact=_represented,
        features=True,
    ),
    Kind(
        "antipodal",
        (
            Param("other", sc.address, True, "another feature 'input:j'"),
            Param("tol", sc.nonneg, False, "a cosine tolerance >= 0 (default 0.05)"),
        ),
        lambda p: f"is antipodal to {p['other']} (cos <= {-1 + p.get('tol', 0.05):g})",
        exact=_antipodal,
        features=True,
    ),
    Kind(
        "feature_dimensionality",
        (_LOW, _HIGH),
        lambda p: f"has dimensionality D_i {_range_text(p)}",
        ("low", "high"),
        exact=_dimensionality,
        features=True,
        one_of_mode="any",
    ),
    Kind(
        "dimensions_per_feature",
        (_LOW, _HIGH),
        lambda p: f"belongs to a model with D* = m/‖W‖_F² {_range_text(p)}",
        ("low", "high"),
        exact=_dstar,
        features=True,
        one_of_mode="any",
    ),
)
