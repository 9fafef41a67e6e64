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
:func:`monotone`, :func:`linear_on`, :func:`argmax_near`, :func:`activation_share`,
:func:`ablation_lowers_accuracy`, :func:`matches_circuit`; about the features
(``"input:i"``) of a toy model of superposition: :func:`represented`, :func:`antipodal`,
:func:`feature_dimensionality`, :func:`dimensions_per_feature`; and your own with
:meth:`Claim.from_function` / :meth:`Claim.from_analysis`; combine with ``&``, ``|``,
``~`` (:func:`all_of`, :func:`any_of`, :func:`not_`). Regions: :class:`HalfPlane`,
:class:`Polygon` (convex), :func:`box_region`, :class:`Ellipse`. A claim's parameters
have one schema: the constructors' keyword arguments are the keys of a claim file
(:func:`load_claims`, see :mod:`toylab.claims.files`), checked by the same validators.

**Verdicts** (:class:`ClaimResult`) say how they were reached (:data:`VERDICTS`):
``"exact"`` (proved), ``"searched"`` (hypothesis found no counterexample in
``num_tried`` inputs, or found one) or ``"sampled"`` (an estimate with a confidence
interval). These are verdicts about a yes/no question, not the tiers of a number of
:mod:`toylab.tiers`; the numbers inside a verdict (its ``estimate``, the probability of
the failing set) carry their own tier (``estimate_tier``, ``failing_mass_tier``), e.g. a
certified bracket for a set cut by an ellipse.

:func:`toylab.testing.assert_claim` turns a verdict into a pytest assertion, with a plot
of the counterexample when matplotlib is available (:mod:`toylab.viz.verdicts`);
``toylab check RUN_DIR claims.toml`` checks a claim file against a run.
"""

from toylab.claims._core import (
    VERDICTS,
    Claim,
    ClaimResult,
    ablation_lowers_accuracy,
    activation_share,
    all_of,
    antipodal,
    any_of,
    argmax_near,
    check,
    check_all,
    dead,
    dimensions_per_feature,
    feature_dimensionality,
    fires_on_mass,
    fires_only_in,
    linear_on,
    matches_circuit,
    monotone,
    not_,
    represented,
)
from toylab.claims._search import clopper_pearson, wilson
from toylab.claims.files import claims_from_config, load_claims
from toylab.claims.regions import Ellipse, HalfPlane, Polygon, box_region

__all__ = [
    "VERDICTS",
    "Claim",
    "ClaimResult",
    "Ellipse",
    "HalfPlane",
    "Polygon",
    "ablation_lowers_accuracy",
    "activation_share",
    "all_of",
    "antipodal",
    "any_of",
    "argmax_near",
    "box_region",
    "check",
    "check_all",
    "claims_from_config",
    "clopper_pearson",
    "dead",
    "dimensions_per_feature",
    "feature_dimensionality",
    "fires_on_mass",
    "fires_only_in",
    "linear_on",
    "load_claims",
    "matches_circuit",
    "monotone",
    "not_",
    "represented",
    "wilson",
]


def __getattr__(name: str) -> object:
    if name in ("selectivity", "plot_counterexample", "TIERS"):
        new = {
            "selectivity": "activation_share (it is a share of the mean activation, not the "
            "selectivity index of toylab.methods)",
            "plot_counterexample": "toylab.viz.verdicts.plot_counterexample (plotting lives "
            "in toylab.viz)",
            "TIERS": "VERDICTS (verdicts are not the tiers of a number, see toylab.tiers)",
        }[name]
        raise AttributeError(f"toylab.claims.{name} was renamed: use {new}.")
    raise AttributeError(f"module 'toylab.claims' has no attribute {name!r}")
