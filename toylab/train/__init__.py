"""Functional optax training of ensembles in one compiled program."""

from toylab.train.config import SWEEPABLE, SweepConfig, TrainConfig, checkpoint_steps
from toylab.train.core import (
    Ensemble,
    TrainResult,
    TrainState,
    divergence_messages,
    evaluate,
    init_ensemble,
    make_optimizer,
    train,
)

__all__ = [
    "SWEEPABLE",
    "Ensemble",
    "SweepConfig",
    "TrainConfig",
    "TrainResult",
    "TrainState",
    "checkpoint_steps",
    "divergence_messages",
    "evaluate",
    "init_ensemble",
    "make_optimizer",
    "train",
]
