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
