"""Layer kinds of the network value (:class:`toylab.network.Network`), one file each.

A layer kind is a frozen dataclass registered as a pytree (arrays are leaves, shape
metadata static) that maps a batch of flat feature vectors ``h (..., fan_in)`` to
``(..., fan_out)`` affinely and offers:

* ``arrays(layers) -> (W, b)``: its dense form (``W`` of shape ``(fan_in, fan_out)``),
  which the exact algorithms consume; ``layers`` is the network's whole tuple, for
  kinds that share weights with an earlier layer (:class:`Tied`);
* ``apply(h, layers)``: ``h @ W + b`` computed the layer's own (fast) way;
* ``linear(h, layers)``: ``h @ W`` (tangents); ``transpose(g, layers)``: ``g @ W.T``
  (back-propagation).

A kind that is not affine (:class:`MaxPool`) says ``affine = False``, raises
:class:`~toylab._errors.NotApplicable` from ``arrays`` and offers ``linear_at(h, dh,
layers)`` / ``transpose_at(h, g, layers)`` (its derivative at the input ``h``) instead
of ``linear`` / ``transpose``. Spatial kinds (:class:`Conv`, :class:`AvgPool`,
:class:`MaxPool`, :class:`SpatialDense`) carry a static ``prefix`` (their layer keys:
``conv_k``, ``pool_k``) and ``out_shape`` ``(H, W, C)``.

:class:`Dense` and :class:`Tied` live in :mod:`toylab.layers.dense`, the spatial
kinds in :mod:`toylab.layers.conv`. A new kind is one new file here plus its test,
and an entry in :data:`Layer`.
"""

from toylab.layers.conv import AvgPool, Conv, MaxPool, SpatialDense
from toylab.layers.dense import Dense, Tied

__all__ = ["AvgPool", "Conv", "Dense", "Layer", "MaxPool", "SpatialDense", "Tied"]

Layer = Dense | Tied | Conv | AvgPool | MaxPool | SpatialDense
