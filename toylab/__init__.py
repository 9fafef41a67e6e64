"""toylab: interpretability research on toy models whose every neuron is known exactly."""

from toylab._errors import ToylabError
from toylab.neurons import NeuronId

__version__ = "0.1.0"

__all__ = ["NeuronId", "ToylabError", "__version__"]
