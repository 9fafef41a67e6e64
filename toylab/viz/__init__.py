"""Figures: compute once, plot onto a given axes (scikit-learn's Display pattern).

Families of figures: neuron maps and data (:mod:`~toylab.viz.maps`), tuning curves,
training curves and circuits (:mod:`~toylab.viz.figures`), superposition
(:mod:`~toylab.viz.superposition`), universality across seeds
(:mod:`~toylab.viz.universality`, :mod:`~toylab.viz.density`) and training dynamics
(:mod:`~toylab.viz.dynamics`, :mod:`~toylab.viz.landscape`, :mod:`~toylab.viz.grokking`),
curve detectors on image families (:mod:`~toylab.viz.curves`).

Every ``*Display`` has a ``from_*`` constructor that computes what to draw and a
``plot(ax=None)`` method that draws it; matplotlib is imported lazily. Neuron
maps use one diverging colormap centred at zero (``CMAP = "RdBu_r"``: red positive,
blue negative, white zero) so maps are comparable across neurons and figures.

Maps are drawn from a grid of forward passes: a picture, not an exact result.
Exact region boundaries, zero sets, argmaxes and decision boundaries from
:mod:`toylab.exact` are overlaid as lines and markers
(:meth:`NeuronMapDisplay.from_analysis`, ``DataDisplay.from_model(..., analysis=)``).

:class:`toylab.viz.verdicts.CounterexampleDisplay` draws a claim's verdict and its
counterexample from the :class:`toylab.claims.ClaimResult`.

:func:`write_atlas` writes the neuron atlas, a static HTML site (``toylab atlas RUN_DIR``).
"""

from toylab.viz.curves import (
    FilterDisplay,
    OrientationTuningDisplay,
    PreferredOrientationsDisplay,
    TuningHeatmapDisplay,
    WidthCurvatureDisplay,
)
from toylab.viz.density import DensityScoresDisplay
from toylab.viz.dynamics import (
    NeuronAnimationDisplay,
    TrajectoryDisplay,
    UnitQuantitiesDisplay,
    UnitTimelineDisplay,
)
from toylab.viz.figures import (
    ActivationDistributionDisplay,
    CircuitDisplay,
    TrainingCurvesDisplay,
    TrainingDynamicsDisplay,
    TuningCurveDisplay,
)
from toylab.viz.grokking import grokking_figure
from toylab.viz.landscape import (
    GradientOverlapDisplay,
    HessianSpectrumDisplay,
    ModeConnectivityDisplay,
)
from toylab.viz.maps import (
    CMAP,
    DataDisplay,
    NeuronMapDisplay,
    exact_overlays,
    grid_values,
    layer_grid_figure,
    layer_overlays,
    symmetric_norm,
)
from toylab.viz.superposition import (
    DictionaryRecoveryDisplay,
    DimensionalityDisplay,
    EmbeddingDisplay,
    FeatureNormsDisplay,
    InterferenceDisplay,
    PhaseDiagramDisplay,
)
from toylab.viz.universality import FamilyMapsDisplay, ScoreDistributionDisplay


def write_atlas(*args, **kwargs):  # noqa: ANN002, ANN003 - thin lazy wrapper
    """See :func:`toylab.viz.atlas.write_atlas` (imported lazily: it needs jinja2)."""
    from toylab.viz.atlas import write_atlas as _write_atlas

    return _write_atlas(*args, **kwargs)


__all__ = [
    "CMAP",
    "ActivationDistributionDisplay",
    "CircuitDisplay",
    "DataDisplay",
    "DensityScoresDisplay",
    "DictionaryRecoveryDisplay",
    "DimensionalityDisplay",
    "EmbeddingDisplay",
    "FamilyMapsDisplay",
    "FeatureNormsDisplay",
    "FilterDisplay",
    "GradientOverlapDisplay",
    "HessianSpectrumDisplay",
    "InterferenceDisplay",
    "ModeConnectivityDisplay",
    "NeuronAnimationDisplay",
    "NeuronMapDisplay",
    "OrientationTuningDisplay",
    "PhaseDiagramDisplay",
    "PreferredOrientationsDisplay",
    "ScoreDistributionDisplay",
    "TrainingCurvesDisplay",
    "TrainingDynamicsDisplay",
    "TrajectoryDisplay",
    "TuningCurveDisplay",
    "TuningHeatmapDisplay",
    "UnitQuantitiesDisplay",
    "UnitTimelineDisplay",
    "WidthCurvatureDisplay",
    "exact_overlays",
    "grid_values",
    "grokking_figure",
    "layer_grid_figure",
    "layer_overlays",
    "symmetric_norm",
    "write_atlas",
]
