"""Walking a stream payload's layout: every scalar field with its bit offset.

The definition lives in :mod:`qdp.hdl.layout` (the AXI4-Stream wrapper needs it below
this layer); the manifest lists payload fields with it, and the benches pack and unpack
beats with it (:mod:`qdp.sim.payload`), so all of them read one definition of where each
lane sits.
"""

from ..hdl.layout import field_name, field_rows, leaves

__all__ = ["leaves", "field_name", "field_rows"]
