"""Sampled interpretability methods, each scored against the exact answer.

Every method takes a toylab model or :class:`~toylab.network.Network`, or a list of them
with one architecture (an ensemble: the sampled side runs as one ``jax.vmap`` over the
stacked members and a tuple of results comes back), takes an explicit ``key`` where it
samples, and returns a frozen ``*Result`` with the same fields (:class:`MethodResult`):
``sampled``, ``exact``, ``error``, ``error_tier``, ``exact_error``, ``misleads``,
``num_forward``, ``num_backward``, ``units`` and ``tier``. The exact answers come from
:mod:`toylab.exact` (this package holds only the sampled methods and their scores); a
:class:`Context` holds each member's exact analysis so that several methods reuse it.

* :func:`feature_visualization` -- gradient ascent on the input from many starts;
* :func:`dataset_examples` -- top-k activating data samples vs the exact CDF;
* :func:`sweep`, :func:`joint_tuning` -- sweeps along segments and circles, tuning curves
  over finite sub-families (:class:`Subfamily`) and rotated examples;
* :func:`ablation`, :func:`edit_weights`, :func:`activation_patching`;
* :func:`attribution` -- gradient, gradient x input, integrated gradients;
* :func:`selectivity` -- activation mass per mixture component (or class);
* :func:`grid_evaluate` -- a neuron on a grid (a sample, never exact);
* :func:`dictionary_learning` -- sparse autoencoders on a superposition model's hidden
  layer, scored against its true features (:mod:`toylab.methods.dictionary`);
* :func:`compare`, :func:`compare_run` -- all of them on every hidden neuron.

Where a method has no exact answer to score against (a smooth network on the plane, a
distribution without an exact analysis, a finite domain for a method that searches the
plane) it raises :class:`toylab.NotApplicable` saying what applies instead.
"""

from toylab.methods._core import Context, EditedAccuracy, MethodResult
from toylab.methods.ablation import (
    EditResult,
    PatchResult,
    ablation,
    activation_patching,
    edit_weights,
)
from toylab.methods.attribution import AttributionResult, attribution
from toylab.methods.compare import (
    CompareConfig,
    CompareResult,
    CompareRow,
    compare,
    compare_run,
    report_lines,
)
from toylab.methods.dictionary import (
    Dictionaries,
    DictionaryMemberResult,
    DictionaryResult,
    Recovery,
    dictionary_learning,
    recovery_scores,
    score_dictionaries,
    train_dictionaries,
)
from toylab.methods.examples import DatasetExamplesResult, dataset_examples
from toylab.methods.featureviz import FeatureVisResult, feature_visualization
from toylab.methods.grid import GridResult, grid_evaluate
from toylab.methods.selectivity import SelectivityResult, selectivity
from toylab.methods.sweeps import (
    Circle,
    JointTuningResult,
    Line,
    Subfamily,
    SubfamilySweepResult,
    SweepResult,
    joint_tuning,
    sweep,
)

__all__ = [
    "AttributionResult",
    "Circle",
    "CompareConfig",
    "CompareResult",
    "CompareRow",
    "Context",
    "DatasetExamplesResult",
    "Dictionaries",
    "DictionaryMemberResult",
    "DictionaryResult",
    "EditResult",
    "EditedAccuracy",
    "FeatureVisResult",
    "GridResult",
    "JointTuningResult",
    "Line",
    "MethodResult",
    "PatchResult",
    "Recovery",
    "SelectivityResult",
    "Subfamily",
    "SubfamilySweepResult",
    "SweepResult",
    "ablation",
    "activation_patching",
    "attribution",
    "compare",
    "compare_run",
    "dataset_examples",
    "dictionary_learning",
    "edit_weights",
    "feature_visualization",
    "grid_evaluate",
    "joint_tuning",
    "recovery_scores",
    "report_lines",
    "score_dictionaries",
    "selectivity",
    "sweep",
    "train_dictionaries",
]
