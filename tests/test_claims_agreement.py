"""Exact and searched verdicts agree on finite domains, against a brute-force reference.

On a finite domain every pointwise claim has a truth computable by brute force: the
reference below evaluates the network with its own NumPy code (not toylab's forward pass)
on every input and applies each claim's definition. Exact verdicts (enumeration) must
equal it; searched verdicts must never contradict it (a counterexample is a real input
where the claim fails), and with a budget of twice the domain's size the search finds
every failure.
"""

import numpy as np
import pytest

from toylab.claims import Claim, HalfPlane, argmax_near, check, dead, fires_only_in
from toylab.distributions import BooleanFunction, ModularArithmetic
from toylab.network import Network

_ACTS = {"relu": lambda z: np.maximum(z, 0.0), "tanh": np.tanh, "abs": np.abs}
TIE = 1e-9  # the relative tolerance within which two values of the exact verdicts tie


def _reference_values(ws, bs, act, x):
    """Every layer of the MLP, by hand: {"hidden_0": ..., "output": ...}."""
    h = _ACTS[act](x @ ws[0] + bs[0])
    return {"hidden_0": h, "output": h @ ws[1] + bs[1]}


def _reference_truth(kind, params, values, x):
    """``(holds, the fraction of inputs where it fails)`` (all inputs are equally likely
    here; ``None`` for argmax_near, which is not a pointwise statement)."""
    if kind == "argmax_near":
        point, eps = params
        top = values.max()
        at = x[values >= top - TIE * (1 + abs(top))]
        return bool(np.linalg.norm(at - point, axis=1).max() <= eps * (1 + 1e-12)), None
    if kind == "dead":
        fails = values > 0
    elif kind == "fires_only_in":
        normal, offset = params
        fails = (x @ normal < offset - 1e-9 * (1 + np.abs(x).max(1))) & (values > 0)
    else:
        (bound,) = params  # from_function: values < bound everywhere
        fails = ~(values < bound)
    return not fails.any(), float(fails.mean())


def _cases(dist, seed):
    """Random networks and claims on ``dist`` with their brute-force truth."""
    x = np.asarray(dist.domain.inputs, np.float64)
    rng = np.random.default_rng(seed)
    out = []
    for i in range(6):
        act = ("relu", "tanh", "abs")[i % 3]
        dim, width = x.shape[1], 3
        ws = [rng.normal(size=(dim, width)), rng.normal(size=(width, 2))]
        bs = [rng.normal(size=width), rng.normal(size=2)]
        net = Network.from_weights(ws, bs, act)
        vals = _reference_values(ws, bs, act, x)
        normal, offset = rng.normal(size=dim), float(rng.normal())
        point = x[rng.integers(len(x))]
        bound = float(np.quantile(vals["output"][:, 1], 0.9))
        for kind, claim, unit, params in [
            ("dead", dead("hidden_0:0"), ("hidden_0", 0), ()),
            ("fires_only_in", fires_only_in("hidden_0:1", HalfPlane(tuple(normal), offset)),
             ("hidden_0", 1), (normal, offset)),
            ("argmax_near", argmax_near("output:0", tuple(point), 1.0), ("output", 0),
             (point, 1.0)),
            ("function", Claim.from_function("output:1", "below", lambda v, b=bound: v < b),
             ("output", 1), (bound,)),
        ]:  # fmt: skip
            values = vals[unit[0]][:, unit[1]]
            out.append((f"{act} {kind}", net, claim, *_reference_truth(kind, params, values, x)))
    return out


@pytest.mark.parametrize("dist", [BooleanFunction(n=4, fn="parity"), ModularArithmetic(p=5)],
                         ids=["boolean_4", "modular_5"])  # fmt: skip
def test_exact_and_searched_verdicts_agree_with_brute_force(dist):
    x = np.asarray(dist.domain.inputs, np.float64)
    cases = _cases(dist, seed=0)
    num_false = 0
    for name, net, claim, truth, failing in cases:
        exact = check(claim, net, dist)
        assert exact.tier == "exact" and exact.holds == truth, name
        num_false += not truth
        # a budget of twice the domain's size: the search finds every failure
        searched = check(claim, net, dist, tier="searched", budget=2 * len(x), seed=1)
        assert searched.tier == "searched" and searched.holds == truth, (name, searched.explain())
        # a small budget: never a false counterexample, every witness a real failing input
        small = check(claim, net, dist, tier="searched", budget=6, seed=2)
        if not small.holds:
            assert not truth, name
            assert (x == small.witness).all(axis=1).any() and small.margin < 0, name
        if not truth and failing is not None:  # uniform inputs: 1e-12 is float64 rounding
            assert exact.failing_mass == pytest.approx(failing, abs=1e-12), name
            assert exact.failing_mass_tier == "exact", name
    # both outcomes occur (the test can fail in both directions)
    assert 0 < num_false < len(cases), num_false
