"""Interpretability claims as property tests.

Write down what you believe a neuron does; toylab decides it, exactly where the
exact tier allows and otherwise by a hypothesis search for a counterexample::

    >>> import numpy as np
    >>> from toylab.models import MLP
    >>> from toylab.distributions import two_blobs
    >>> model = MLP.from_weights([np.eye(2), np.ones((2, 1))], activation="relu")
    >>> claim = fires_only_in("hidden_0:0", HalfPlane((1.0, 0.0), 0.0))
    >>> r = check(claim, model, two_blobs())
    >>> r.tier, r.holds
    ('exact', True)
    >>> r = check(fires_only_in("hidden_0:0", HalfPlane((1.0, 0.0), 1.0)), model, two_blobs())
    >>> r.holds, round(r.failing_mass, 4)  # 0 < x1 < 1: ½[Φ(-1) - Φ(-2) + Φ(3) - Φ(2)]
    (False, 0.0787)

Claims (:class:`Claim`): :func:`fires_only_in`, :func:`dead`, :func:`fires_on_mass`,
:func:`monotone`, :func:`linear_on`, :func:`argmax_near`, :func:`selectivity`,
:func:`ablation_lowers_accuracy`, :func:`matches_circuit`, and your own with
:meth:`Claim.from_function` / :meth:`Claim.from_analysis`; combine with ``&``, ``|``,
``~`` (:func:`all_of`, :func:`any_of`, :func:`not_`). Regions: :class:`HalfPlane`,
:class:`Polygon` (convex), :func:`box_region`, :class:`Ellipse`.

Verdicts (:class:`ClaimResult`) say their tier: ``"exact"``, ``"searched"``
(hypothesis found no counterexample in ``num_tried`` inputs, or found one) or
``"sampled"`` (an estimate with a confidence interval). :func:`assert_claim` turns a
verdict into a pytest assertion with a plot of the counterexample;
:func:`load_claims` reads a claim file (see :mod:`toylab.claims.files`), which
``toylab check RUN_DIR claims.toml`` checks against a run.
"""

from toylab.claims._core import (
    TIERS,
    Claim,
    ClaimResult,
    ablation_lowers_accuracy,
    all_of,
    any_of,
    argmax_near,
    assert_claim,
    check,
    check_all,
    dead,
    fires_on_mass,
    fires_only_in,
    linear_on,
    matches_circuit,
    monotone,
    not_,
    plot_counterexample,
    selectivity,
)
from toylab.claims._search import clopper_pearson, wilson
from toylab.claims.files import claims_from_config, load_claims
from toylab.claims.regions import Ellipse, HalfPlane, Polygon, box_region

__all__ = [
    "TIERS",
    "Claim",
    "ClaimResult",
    "Ellipse",
    "HalfPlane",
    "Polygon",
    "ablation_lowers_accuracy",
    "all_of",
    "any_of",
    "argmax_near",
    "assert_claim",
    "box_region",
    "check",
    "check_all",
    "claims_from_config",
    "clopper_pearson",
    "dead",
    "fires_on_mass",
    "fires_only_in",
    "linear_on",
    "load_claims",
    "matches_circuit",
    "monotone",
    "not_",
    "plot_counterexample",
    "selectivity",
    "wilson",
]
