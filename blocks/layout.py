"""Walking a stream payload's layout: every scalar field with its bit offset.

The manifest lists payload fields this way, and the benches pack and unpack beats with
it (:mod:`qdp.sim.payload`), so both read one definition of where each lane sits.
"""

from amaranth.hdl import Shape
from amaranth.lib import data

__all__ = ["leaves"]


def leaves(layout, offset=0, path=()):
    """Yield ``(path, offset, shape)`` for every scalar field of ``layout``: ``path`` is
    the tuple of struct field names and array indices from the top, ``offset`` the
    field's lowest bit in the flattened payload (lane 0 of an array lowest)."""
    if isinstance(layout, data.Layout):
        for key, field in layout:
            yield from leaves(field.shape, offset + field.offset, path + (key,))
    else:
        yield path, offset, Shape.cast(layout)
