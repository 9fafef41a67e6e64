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

:class:`Dense` and :class:`Tied` live in :mod:`toylab.layers.dense`. A new kind (a
convolution, a pooling that is affine) is one new file here plus its test, and an
entry in :data:`Layer`.
"""

from toylab.layers.dense import Dense, Tied

__all__ = ["Dense", "Layer", "Tied"]

Layer = Dense | Tied
