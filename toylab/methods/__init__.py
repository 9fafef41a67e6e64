"""Sampled interpretability methods, each scored against the exact answer.

Every method takes a toylab MLP, or a list of MLPs of one architecture (an
ensemble: the sampled side runs as one ``jax.vmap`` over stacked member
parameters, the exact side as a loop over members, and a tuple of results comes
back), takes an explicit ``key`` where it samples, and returns a frozen
``*Result`` with ``tier="sampled"`` holding the sampled answer, the exact answer,
their error and the cost (``num_forward``, ``num_backward`` passes).

* :func:`feature_visualization` -- gradient ascent on the input from many starts;
* :func:`dataset_examples` -- top-k activating data samples vs the exact CDF;
* :func:`sweep`, :func:`joint_tuning` -- sweeps along segments and circles, and
  tuning curves over finite sub-families (:class:`Subfamily`);
* :func:`ablation`, :func:`edit_weights`, :func:`activation_patching`;
* :func:`attribution` -- gradient, gradient x input, integrated gradients;
* :func:`selectivity` -- activation mass per mixture component and class;
* :func:`compare`, :func:`compare_run` -- all of them on every hidden neuron.
"""

from toylab.methods._core import LocalMaxima, local_maxima
from toylab.methods.ablation import (
    EditResult,
    PatchResult,
    ablation,
    activation_patching,
    edit_weights,
)
from toylab.methods.attribution import AttributionResult, attribution, exact_integrated_gradients
from toylab.methods.compare import CompareConfig, CompareResult, compare, compare_run, report_lines
from toylab.methods.examples import (
    DatasetExamplesResult,
    dataset_examples,
    exact_cdf,
    exact_quantile,
)
from toylab.methods.featureviz import FeatureVisResult, feature_visualization
from toylab.methods.selectivity import SelectivityResult, exact_component_means, selectivity
from toylab.methods.sweeps import (
    Circle,
    JointTuningResult,
    Line,
    Subfamily,
    SubfamilySweepResult,
    SweepResult,
    exact_curve,
    joint_tuning,
    sweep,
)

__all__ = [
    "AttributionResult",
    "Circle",
    "CompareConfig",
    "CompareResult",
    "DatasetExamplesResult",
    "EditResult",
    "FeatureVisResult",
    "JointTuningResult",
    "Line",
    "LocalMaxima",
    "PatchResult",
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
    "edit_weights",
    "exact_cdf",
    "exact_component_means",
    "exact_curve",
    "exact_integrated_gradients",
    "exact_quantile",
    "feature_visualization",
    "joint_tuning",
    "local_maxima",
    "report_lines",
    "selectivity",
    "sweep",
]
