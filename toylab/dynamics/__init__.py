"""Training dynamics seen through exact neuron functions (issue 17).

* :func:`trajectory` -- every exact quantity (:func:`toylab.exact.analyze`) at every
  checkpoint of every member, stored in the run (``RUN/dynamics/trajectory.npz``); births,
  deaths and settling of units (:mod:`toylab.dynamics.trajectory`);
* grokking progress measures (:mod:`toylab.dynamics.grokking`): :func:`progress_measures`
  (restricted and excluded loss, Fourier sparsity, weight norm, exact train/test loss and
  accuracy at every checkpoint) and :func:`locate_phases`;
* the loss landscape (:mod:`toylab.dynamics.loss_landscape`): :func:`landscape` (Hessian
  spectra, outliers against the classes, gradient overlap with the top subspace, its
  stability, each neuron's share), :func:`mode_connectivity` and :func:`loss_plane`;
* :func:`write_dynamics_report` -- ``RUN/dynamics/index.md`` (``toylab dynamics RUN``),
  built from a list of sections (:data:`SECTIONS`).
"""

from toylab.dynamics._report import (
    SECTIONS,
    ReportContext,
    animation_path,
    write_dynamics_report,
)
from toylab.dynamics.grokking import (
    GrokkingResult,
    Phases,
    key_frequencies_of,
    locate_phases,
    progress_measures,
)
from toylab.dynamics.loss_landscape import (
    LandscapeResult,
    PathResult,
    PlaneResult,
    landscape,
    loss_plane,
    mode_connectivity,
    outlier_count,
)
from toylab.dynamics.trajectory import (
    SETTLE_THRESHOLD,
    Trajectory,
    dynamics_dir,
    load_trajectory,
    select_steps,
    settle_steps,
    trajectory,
    unit_events,
)

__all__ = [
    "SECTIONS",
    "SETTLE_THRESHOLD",
    "GrokkingResult",
    "LandscapeResult",
    "PathResult",
    "Phases",
    "PlaneResult",
    "ReportContext",
    "Trajectory",
    "animation_path",
    "dynamics_dir",
    "key_frequencies_of",
    "landscape",
    "load_trajectory",
    "locate_phases",
    "loss_plane",
    "mode_connectivity",
    "outlier_count",
    "progress_measures",
    "select_steps",
    "settle_steps",
    "trajectory",
    "unit_events",
    "write_dynamics_report",
]
