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
