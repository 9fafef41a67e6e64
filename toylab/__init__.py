"""toylab: interpretability research on toy models whose every neuron is known exactly."""

from toylab._errors import CorruptRun, NotApplicable, ToylabError
from toylab.neurons import NeuronId

__version__ = "0.1.0"

__all__ = ["CorruptRun", "NeuronId", "NotApplicable", "ToylabError", "__version__"]
