"""Every public method on every distribution family: a scored answer with the right tier,
or a clear ``NotApplicable`` naming the method (review §2.6.1: no ``AttributeError``).

The families: a 2-D Gaussian mixture (closed forms: the analysis is ``exact``), rings and
a noisy curve (adaptive quadrature: ``estimated``), a finite task (modular arithmetic:
``exact`` enumeration), a 3-D mixture (no exact analysis), and a smooth (tanh) network on
the mixture (no exact partition). Networks are tiny and each family shares one
:class:`~toylab.methods.Context` (``rtol=1e-4``: these checks are about applicability and
labels, not digits), so the whole module runs in well under a minute of CPU.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import numpy as np
import pytest

from toylab._errors import NotApplicable, ToylabError
from toylab.distributions import GaussianMixture, ModularArithmetic, NoisyCurve, Rings
from toylab.methods import (
    CompareConfig,
    Context,
    MethodResult,
    ablation,
    activation_patching,
    attribution,
    compare,
    dataset_examples,
    edit_weights,
    feature_visualization,
    joint_tuning,
    selectivity,
    sweep,
)
from toylab.network import Network
from toylab.tiers import TIERS

KEY = jax.random.key(0)

MIXTURE = GaussianMixture(
    means=((0.0, 0.0), (2.0, 1.0), (-1.0, 2.0)),
    covs=(((1.0, 0.3), (0.3, 0.5)), ((0.4, -0.1), (-0.1, 0.6)), ((0.3, 0.0), (0.0, 0.3))),
    weights=(0.5, 0.3, 0.2),
    classes=(0, 1, 1),
)
FAMILIES: dict[str, tuple[Any, str]] = {
    # name: (distribution, activation)
    "mixture": (MIXTURE, "relu"),
    "rings": (Rings(radii=(0.5, 1.5), widths=(0.2, 0.25)), "relu"),
    "curve": (NoisyCurve("two_moons", noise=0.4), "relu"),
    "finite": (ModularArithmetic(5), "relu"),
    "mixture_3d": (
        GaussianMixture(
            means=((0.0, 0.0, 0.0), (1.5, -1.0, 0.5)),
            covs=(np.eye(3).tolist(), (0.5 * np.eye(3)).tolist()),
        ),
        "relu",
    ),  # fmt: skip
    "smooth": (MIXTURE, "tanh"),
}

# the tier of the exact side where a method scores; None: NotApplicable
ANALYSIS = {"mixture": "exact", "rings": "estimated", "curve": "estimated", "finite": "exact"}
EXPECTED: dict[str, dict[str, str | None]] = {
    "feature_visualization": {"mixture": "exact", "rings": "exact", "curve": "exact"},
    "dataset_examples": {
        "mixture": "certified",
        "rings": "estimated",
        "curve": "estimated",
        "finite": "certified",
    },  # fmt: skip
    "sweep": {"mixture": "exact", "rings": "exact", "curve": "exact", "mixture_3d": "exact"},
    "joint_tuning": {"mixture": "exact", "rings": "exact", "curve": "exact"},
    "ablation": dict(ANALYSIS),
    "edit_weights": dict(ANALYSIS),
    "selectivity": dict(ANALYSIS),
    "attribution": {f: "exact" for f in FAMILIES if f != "smooth"},
    "activation_patching": {f: "exact" for f in FAMILIES},
    "compare": {"mixture": "exact", "rings": "estimated", "curve": "estimated"},
}


def _network(dist: Any, activation: str) -> Network:
    dom = dist.domain
    d = dom.dim
    c = int(dist.num_classes)
    rng = np.random.default_rng(1)
    return Network.from_weights(
        [rng.normal(0, 1.0, (d, 4)), rng.normal(0, 1.0, (4, c))],
        [rng.normal(0, 0.5, 4), np.zeros(c)],
        activation=activation,
    )


@pytest.fixture(scope="module")
def setups() -> dict[str, tuple[Network, Any, Context]]:
    out = {}
    for name, (dist, act) in FAMILIES.items():
        net = _network(dist, act)
        out[name] = (net, dist, Context(net, dist, rtol=1e-4))
    return out


def _point(dist: Any) -> np.ndarray:
    dom = dist.domain
    if hasattr(dom, "inputs"):
        return np.asarray(dom.inputs[7], np.float64)
    return 0.3 * np.asarray(dom.high) + 0.7 * np.asarray(dom.low)


TINY = CompareConfig(num_starts=4, num_steps=5, num_samples=64, num_examples=2,
                     num_coverage=64, num_points=8, ig_steps=4, ablation_samples=64,
                     num_rotated=1, num_angles=8, rtol=1e-4)  # fmt: skip


def _run(method: str, net: Network, dist: Any, ctx: Context) -> Any:
    n = "hidden_0:1"
    if method == "feature_visualization":
        return feature_visualization(net, dist, n, key=KEY, num_starts=4, num_steps=5,
                                     context=ctx)  # fmt: skip
    if method == "dataset_examples":
        return dataset_examples(net, dist, n, key=KEY, num_samples=64, num_examples=3,
                                num_coverage=64, context=ctx)  # fmt: skip
    if method == "sweep":
        return sweep(net, dist, n, key=KEY, num_points=8, context=ctx)
    if method == "joint_tuning":
        return joint_tuning(net, dist, n, key=KEY, num_samples=32, num_examples=1, num_angles=8,
                            context=ctx)  # fmt: skip
    if method == "ablation":
        return ablation(net, dist, n, key=KEY, num_samples=64, context=ctx)
    if method == "edit_weights":
        return edit_weights(net, dist, 0, key=KEY, b=np.zeros(4), num_samples=64, context=ctx)
    if method == "selectivity":
        return selectivity(net, dist, n, key=KEY, num_samples=64, context=ctx)
    if method == "attribution":
        return attribution(net, n, _point(dist), num_steps=4)
    if method == "activation_patching":
        x = _point(dist)
        return activation_patching(net, n, x, 0.5 * x)
    assert method == "compare"
    return compare(net, dist, key=KEY, budgets=TINY, context=ctx)


def _check_result(r: Any, tier: str) -> None:
    assert isinstance(r, MethodResult)
    assert isinstance(r.neuron, str) and isinstance(r.units, str) and r.units
    assert isinstance(r.detail, str) and r.score and r.error_measure
    assert math.isfinite(r.sampled)
    assert r.tier in TIERS and r.error_tier in TIERS
    assert isinstance(r.misleads, bool)
    assert r.num_forward >= 1 and r.num_backward >= 0
    assert r.error_tier == tier, (r.method, r.error_tier, tier)


@pytest.mark.parametrize("family", list(FAMILIES))
@pytest.mark.parametrize("method", list(EXPECTED))
def test_every_method_on_every_family_scores_or_says_why(setups, method, family):
    net, dist, ctx = setups[family]
    tier = EXPECTED[method].get(family)
    if tier is None:
        with pytest.raises(NotApplicable) as err:
            _run(method, net, dist, ctx)
        assert method.split("_")[0] in str(err.value)
        return
    res = _run(method, net, dist, ctx)
    if method == "compare":
        assert len(res.rows) == 4 * 7
        assert {r.method for r in res.rows} == set(res.summary) - {"unreachable"}
        for row in res.rows:
            assert math.isfinite(row.sampled)
            if tier == "estimated" and row.method in (
                "dataset_examples",
                "ablation",
                "selectivity",
            ):
                assert row.error_tier == "estimated", row  # integrated by quadrature
            else:  # geometry (or closed forms) only
                assert row.error_tier in ("exact", "certified"), row
        return
    _check_result(res, tier)


def test_finite_tasks_get_subfamily_sweeps_and_refuse_random_lines(setups):
    from toylab.methods import Subfamily

    net, dist, ctx = setups["finite"]
    res = sweep(net, dist, "hidden_0:2", key=KEY, path=Subfamily(fixed={"a": 1}), num_points=3,
                context=ctx)  # fmt: skip
    _check_result(res, "exact")
    with pytest.raises(NotApplicable, match="Subfamily"):
        sweep(net, dist, "hidden_0:2", key=KEY, context=ctx)


def test_bad_arguments_are_clear_errors(setups):
    net, dist, ctx = setups["mixture"]
    with pytest.raises(ToylabError, match="key must be a JAX PRNG key"):
        dataset_examples(net, dist, "hidden_0:1", key=0, context=ctx)
    with pytest.raises(ToylabError, match="neuron must be"):
        selectivity(net, dist, None, key=KEY, context=ctx)  # type: ignore[arg-type]
    with pytest.raises(ToylabError, match="hidden_7"):
        selectivity(net, dist, "hidden_7:0", key=KEY, context=ctx)
    with pytest.raises(ToylabError, match="mode must be one of"):
        ablation(net, dist, "hidden_0:1", key=KEY, mode="mena", context=ctx)
    with pytest.raises(ToylabError, match="hidden post-activation"):
        ablation(net, dist, "output:0", key=KEY, context=ctx)
    with pytest.raises(ToylabError, match="num_starts must be"):
        feature_visualization(net, dist, "hidden_0:1", key=KEY, num_starts=0, context=ctx)
    with pytest.raises(ToylabError, match="model must be a toylab model"):
        sweep("not a model", dist, "hidden_0:1", key=KEY)
    with pytest.raises(ToylabError, match="same architecture"):
        sweep([net, Network.from_weights([np.eye(2), np.ones((2, 2))])], dist, "hidden_0:1",
              key=KEY)  # fmt: skip
