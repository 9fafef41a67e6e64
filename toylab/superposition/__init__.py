r"""Toy models of superposition as first-class citizens (Elhage et al. 2022).

A toy model embeds ``n`` sparse features into ``m < n`` dimensions with ``W`` (``m × n``,
column ``W_i`` for feature ``"input:i"``) and reads them back with ``x' = WᵀW x + b``
(:class:`~toylab.models.SuperpositionLinear`) or ``x' = ReLU(WᵀW x + b)``
(:class:`~toylab.models.SuperpositionReLU`), trained on
:class:`~toylab.distributions.SparseFeatures` (``x_i = a_i u_i``, ``a_i ~ Bernoulli(p_i)``,
``u_i ~ U(0, 1]``) with the importance-weighted loss ``Σ_i I_i (x'_i − x_i)²``.

**Metrics** (:func:`superposition_metrics`, tier ``exact``: exact functions of the
weights in float64): feature norms ``‖W_i‖``, interference ``WᵀW``, dimensionality
``D_i = ‖W_i‖² / Σ_j (Ŵ_i·W_j)²`` (0 for a zero column), superposition
``Σ_{j≠i}(Ŵ_i·W_j)²``, ``D* = m/‖W‖_F²``, represented features (``‖W_i‖ > 0.5``), bias
signs, the sum rule ``Σ D_i ≤ rank W ≤ m`` and the geometry (D_i at the fractions 1, 3/4,
2/3, 1/2, 2/5, 3/8: dedicated dimensions, tetrahedra, triangles, antipodal pairs,
pentagons, square antiprisms; for ``m = 2`` the polygon and whether it is regular).

**Expected loss** (:func:`expected_loss`): the linear model's loss is a closed form in the
moments ``E x_i = p_i/2``, ``E x_i² = p_i/3`` (``exact``). The ReLU model's loss is an
exact sum over activity patterns of integrals of a piecewise quadratic over the unit
cube, computed one feature at a time through smoothed truncated powers
``E[ReLU(c + Σ_j M_ij u_j)^r]`` with positive-weight quadrature exact on every polynomial
piece (``exact``, no alternating vertex sums that cancel on adversarial weights); with
too many patterns it enumerates them in decreasing probability and bounds the rest
(``certified`` enclosure); ``method="sampled"`` is Monte Carlo with a confidence
interval (``sampled``).

**Phase diagram** (:func:`phase_diagram`): for n = 2, m = 1 the candidate solutions
(one feature, the other, an antipodal pair, none) compared by their exact losses over
relative importance × density; :func:`classify_solution` and :func:`trained_phase` put
trained members beside it. Figures: :mod:`toylab.viz.superposition`.
"""

from toylab.superposition.loss import ExpectedLossResult, expected_loss
from toylab.superposition.metrics import (
    FRACTIONS,
    STRUCTURES,
    Polygon,
    Structure,
    SuperpositionResult,
    superposition_metrics,
    superposition_weights,
)
from toylab.superposition.phase import (
    ANTIPODAL_BOUNDS,
    ANTIPODAL_STARTS,
    CANDIDATES,
    PhaseDiagramResult,
    TrainedPhaseResult,
    classify_solution,
    phase_diagram,
    trained_phase,
)

__all__ = [
    "ANTIPODAL_BOUNDS",
    "ANTIPODAL_STARTS",
    "CANDIDATES",
    "FRACTIONS",
    "STRUCTURES",
    "ExpectedLossResult",
    "PhaseDiagramResult",
    "Polygon",
    "Structure",
    "SuperpositionResult",
    "TrainedPhaseResult",
    "classify_solution",
    "expected_loss",
    "phase_diagram",
    "superposition_metrics",
    "superposition_weights",
    "trained_phase",
]
