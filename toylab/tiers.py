"""How a number was obtained: the four tiers every toylab result states.

============  ==================================================================  ===========
tier          meaning                                                             ``error``
============  ==================================================================  ===========
``exact``     closed form, finite enumeration or exact geometry in float64; the   rounding
              only error is floating-point rounding                                bound
``certified`` a guaranteed enclosure: the true value lies within ``error`` of the  guaranteed
              number (interval / linear bound propagation, branch and bound, a
              Lipschitz bound, a bisection bracket on an exact function)
``estimated`` an a-posteriori error *estimate* that is not a guarantee (an         estimate
              adaptive quadrature's halving difference)
``sampled``   a Monte Carlo estimate; ``error`` is the half-width of its stated    CI half-
              confidence interval                                                  width
============  ==================================================================  ===========

A grid evaluation is ``sampled`` (its maximum is only a lower bound on the true
maximum), never ``exact``. When several numbers are combined, the result takes the
weakest tier of its inputs (:func:`weakest`).

Claims have *verdicts* (``exact``, ``searched``, ``sampled``: see
:mod:`toylab.claims`), which say how a yes/no answer was reached; they are not
tiers of a number.
"""

from __future__ import annotations

from typing import Literal

from toylab._errors import fail

__all__ = ["TIERS", "Tier", "check_tier", "weakest"]

Tier = Literal["exact", "certified", "estimated", "sampled"]
TIERS: tuple[Tier, ...] = ("exact", "certified", "estimated", "sampled")
_RANK = {t: i for i, t in enumerate(TIERS)}


def check_tier(where: str, tier: str) -> Tier:
    """``tier`` if it is one of :data:`TIERS`, else a :class:`~toylab.ToylabError`."""
    if tier not in _RANK:
        raise fail(where, "tier", tier, f"one of {list(TIERS)}")
    return tier  # type: ignore[return-value]


def weakest(*tiers: str) -> Tier:
    """The weakest of ``tiers`` (``exact`` < ``certified`` < ``estimated`` < ``sampled``).

    >>> weakest("exact", "estimated", "certified")
    'estimated'
    """
    if not tiers:
        return "exact"
    for t in tiers:
        check_tier("weakest", t)
    return max(tiers, key=_RANK.__getitem__)  # type: ignore[arg-type,return-value]
