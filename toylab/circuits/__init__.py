"""Handwritten circuits and their comparison with trained networks.

* :class:`Circuit`: a network written by hand (a float64
  :class:`toylab.network.Network`) with a name and a one-line meaning for every neuron
  and a claim that :meth:`Circuit.verify` checks exactly;
* the library (:mod:`toylab.circuits.library`): :func:`fisher_discriminant`,
  :func:`xor_circuit`, :func:`ring_detector`, :func:`blob_detector`,
  :func:`polygon_detector`, :func:`parity`, :func:`majority`, :func:`modular_addition`;
* comparison: :func:`functional_distance` (exact sup and L2 distance, through
  :func:`difference_network` and :func:`toylab.exact.analyze`), :func:`joint_network`,
  :func:`match_neurons` (exact correlations, optimal assignment, dead and duplicate
  units flagged), :func:`align` and :func:`compare_weights` (after matching and
  rescaling);
* training and Fourier analysis (:mod:`toylab.circuits.training`): :func:`fit`,
  :func:`train_from_circuit`, :func:`transplant`, :func:`fourier_frequencies`,
  :func:`train_modular_addition`, :func:`key_frequency_analysis`.
"""

from toylab.circuits.circuit import Circuit, VerifyResult
from toylab.circuits.distance import (
    DistanceResult,
    JointNetwork,
    difference_network,
    functional_distance,
    joint_network,
)
from toylab.circuits.library import (
    blob_detector,
    fisher_discriminant,
    majority,
    modular_addition,
    parity,
    polygon_detector,
    ring_detector,
    xor_circuit,
)
from toylab.circuits.matching import (
    LayerMatch,
    MatchResult,
    WeightComparison,
    align,
    compare_weights,
    match_neurons,
)
from toylab.circuits.training import (
    FitResult,
    FourierResult,
    KeyFrequencyResult,
    TrainFromCircuitResult,
    TransplantResult,
    fit,
    fourier_frequencies,
    key_frequency_analysis,
    train_from_circuit,
    train_modular_addition,
    transplant,
)

__all__ = [
    "Circuit",
    "FitResult",
    "FourierResult",
    "KeyFrequencyResult",
    "LayerMatch",
    "MatchResult",
    "TrainFromCircuitResult",
    "TransplantResult",
    "WeightComparison",
    "align",
    "compare_weights",
    "fit",
    "fourier_frequencies",
    "key_frequency_analysis",
    "match_neurons",
    "train_from_circuit",
    "train_modular_addition",
    "transplant",
    "DistanceResult",
    "JointNetwork",
    "VerifyResult",
    "blob_detector",
    "difference_network",
    "fisher_discriminant",
    "functional_distance",
    "joint_network",
    "majority",
    "modular_addition",
    "parity",
    "polygon_detector",
    "ring_detector",
    "xor_circuit",
]
