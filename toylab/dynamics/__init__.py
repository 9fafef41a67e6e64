"""Training dynamics seen through exact neuron functions (issue 17).

* :func:`trajectory` -- every exact quantity (:func:`toylab.exact.analyze`) at every
  checkpoint of every member, stored in the run (``RUN/dynamics/trajectory.npz``); births,
  deaths and settling of units (:mod:`toylab.dynamics.trajectory`);
* :func:`write_dynamics_report` -- ``RUN/dynamics/index.md`` (``toylab dynamics RUN``),
  built from a list of sections (:data:`SECTIONS`).
"""

from toylab.dynamics._report import (
    SECTIONS,
    ReportContext,
    animation_path,
    write_dynamics_report,
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
    "ReportContext",
    "Trajectory",
    "animation_path",
    "dynamics_dir",
    "load_trajectory",
    "select_steps",
    "settle_steps",
    "trajectory",
    "unit_events",
    "write_dynamics_report",
]
