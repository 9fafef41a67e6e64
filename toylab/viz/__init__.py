"""Figures: compute once, plot onto a given axes (scikit-learn's Display pattern).

Every ``*Display`` has a ``from_*`` constructor that computes what to draw and a
``plot(ax=None)`` method that draws it; matplotlib is imported lazily. Neuron
maps use one diverging colormap centred at zero (``RdBu_r``: red positive, blue
negative, white zero) so maps are comparable across neurons and figures.

Maps are drawn from a grid of forward passes: a picture, not an exact result.
Exact region boundaries and level sets from :mod:`toylab.exact` are overlaid as
lines when given.
"""

from toylab.viz.maps import (
    CMAP,
    DataDisplay,
    NeuronMapDisplay,
    layer_grid_figure,
    symmetric_norm,
)

__all__ = ["CMAP", "DataDisplay", "NeuronMapDisplay", "layer_grid_figure", "symmetric_norm"]
