"""The block descriptions: one entry per block, read by every layer above.

Each :class:`~qdp.blocks.registry.Block` names the component (:mod:`qdp.hdl`), the golden
function (:mod:`qdp.golden`), the cocotb bench and the proofs (module names, resolved by
:mod:`qdp.sim` and :mod:`qdp.formal`) and the parameters with their ranges. The CLI,
``qdp list``, the exporter and manifest (:mod:`qdp.blocks.export`), the benches, the
proofs and the benchmarks all read these entries; nothing here imports :mod:`qdp.sim`,
:mod:`qdp.formal` or :mod:`qdp.build_scripts`.
"""

from .registry import BLOCKS, Block, Param, get_block
from .export import check_module_name, generate, manifest, module_name
from .layout import leaves

__all__ = ["BLOCKS", "Block", "Param", "get_block", "check_module_name", "generate",
           "manifest", "module_name", "leaves"]
