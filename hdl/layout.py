"""Walking a stream payload's layout: every scalar field with its bit offset and name.

The manifest lists payload fields this way (:mod:`qdp.blocks.export`), the AXI4-Stream
wrapper places them in TDATA with it (:mod:`qdp.hdl.axis`), and the benches pack and
unpack beats with it (:mod:`qdp.sim.payload`), so all of them read one definition of
where each lane sits and what it is called.
"""

from amaranth.hdl import Shape
from amaranth.lib import data

__all__ = ["leaves", "field_name", "field_rows"]


def leaves(layout, offset=0, path=()):
    """Yield ``(path, offset, shape)`` for every scalar field of ``layout``: ``path`` is
    the tuple of struct field names and array indices from the top, ``offset`` the
    field's lowest bit in the flattened payload (lane 0 of an array lowest)."""
    if isinstance(layout, data.Layout):
        for key, field in layout:
            yield from leaves(field.shape, offset + field.offset, path + (key,))
    else:
        yield path, offset, Shape.cast(layout)


def field_name(layout, path):
    """The name a manifest gives the field at ``path`` of a payload of ``layout``:
    ``"data.3"``, ``"first"``; a bare lane array is named like the ``data`` field of a
    struct payload (``"data.0"`` ...), a bare scalar ``"value"``."""
    prefix = ("data",) if isinstance(layout, data.ArrayLayout) else ()
    return ".".join(str(p) for p in prefix + tuple(path)) or "value"


def field_rows(layout):
    """Every scalar field of a payload of ``layout`` as the manifest lists it:
    ``{"field", "offset", "width", "signed"}``, in layout order."""
    return [{"field": field_name(layout, path), "offset": offset, "width": shape.width,
             "signed": shape.signed} for path, offset, shape in leaves(layout)]
