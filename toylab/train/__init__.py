"""Functional optax training of ensembles in one compiled program (see :mod:`toylab.train.core`)."""

from toylab.train.config import SWEEPABLE, SweepConfig, TrainConfig, checkpoint_steps
from toylab.train.core import (
    Ensemble,
    Evaluate,
    LossFn,
    TrainResult,
    TrainState,
    divergence_messages,
    ensemble_from_params,
    init_ensemble,
    loss_function,
    make_evaluate,
    make_optimizer,
    make_step,
    member_mesh,
    run_steps,
    train,
)

__all__ = [
    "SWEEPABLE",
    "Ensemble",
    "Evaluate",
    "LossFn",
    "SweepConfig",
    "TrainConfig",
    "TrainResult",
    "TrainState",
    "checkpoint_steps",
    "divergence_messages",
    "ensemble_from_params",
    "init_ensemble",
    "loss_function",
    "make_evaluate",
    "make_optimizer",
    "make_step",
    "member_mesh",
    "run_steps",
    "train",
]
