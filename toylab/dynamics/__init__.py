"""Training dynamics: quantities along a run's checkpoints.

* grokking progress measures (:mod:`toylab.dynamics.grokking`): :func:`progress_measures`
  (restricted and excluded loss, Fourier sparsity, weight norm, exact train/test loss and
  accuracy at every checkpoint) and :func:`locate_phases`.
"""

from toylab.dynamics.grokking import (
    GrokkingResult,
    Phases,
    key_frequencies_of,
    locate_phases,
    progress_measures,
)

__all__ = [
    "GrokkingResult",
    "Phases",
    "key_frequencies_of",
    "locate_phases",
    "progress_measures",
]
