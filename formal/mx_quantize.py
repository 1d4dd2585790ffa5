"""Properties of MX quantization (:class:`qdp.hdl.MxQuantize`), on its ports.

One bounded proof from reset of :class:`MxQuantizeProperties`: the properties of every
unit with one block of storage (:mod:`qdp.formal.block_store`: stream rules on ``o`` and
``scale``, idle after reset, beats and blocks in = out), and for a freely picked full
block of free element patterns, its E8M0 scale and every element code equal to
:func:`qdp.golden.mx_quantize` -- for every input, since the golden's answer for every
block is a table the proof indexes with the block's patterns. The table has
``2**(block_size * width)`` rows: small formats and blocks of two (:data:`REFERENCE`).
"""

import numpy as np
from amaranth.hdl import Array, Cat, Const, unsigned

from ..golden.floats import float_format
from ..golden.mx import element_format, mx_quantize
from .block_store import BlockStoreProperties, depth
from .runner import Proof

__all__ = ["REFERENCE", "MxQuantizeProperties", "golden_table", "proofs"]

#: The reference configuration of the proof in CI: blocks of two e3m2 patterns (every
#: one of the 4096 blocks), one beat each, into FP4.
REFERENCE = {"block_size": 2, "lanes": 2, "in_format": "e3m2", "element": "fp4_e2m1"}

#: Most input bits of a block the table may take.
MAX_TABLE_BITS = 12


def golden_table(dut):
    """``(scales, codes)`` of every block of patterns, row ``k`` the block whose
    patterns, lowest element first, are the bit fields of ``k``: the golden's answers."""
    width, size = float_format(dut.in_format).width, dut.block_size
    rows = np.arange(1 << (width * size), dtype=np.int64)
    blocks = (rows[:, None] >> (width * np.arange(size))) & ((1 << width) - 1)
    codes, scales = mx_quantize(blocks.reshape(-1).astype(np.uint64), dut.element,
                                block_size=size, rounding=dut.rounding,
                                in_format=dut.in_format)
    return scales.astype(np.int64), codes.astype(np.int64).reshape(-1, size)


class MxQuantizeProperties(BlockStoreProperties):
    """:class:`~qdp.formal.block_store.BlockStoreProperties` of MX quantization: the
    picked block's scale and codes are the golden table's row for its patterns.

    ``table`` overrides the golden table (to show that a wrong one fails)."""

    def __init__(self, dut, *, table=None):
        super().__init__(dut)
        self.element = unsigned(float_format(dut.in_format).width)
        scales, codes = golden_table(dut) if table is None else table
        self.scales = Array(Const(int(s), 8) for s in scales)
        self.codes = [Array(Const(int(c), element_format(dut.element).width) for c in codes[:, k])
                      for k in range(dut.block_size)]

    def scale_holds(self, scale, values):
        return scale == self.scales[Cat(*values)]

    def element_holds(self, q, values, index):
        return q == self.codes[index][Cat(*values)]


def proofs(build):
    """The proofs of one MxQuantize configuration; ``build()`` makes a fresh one.

    Raises ``ValueError`` for a configuration too large to prove in reasonable time.
    """
    dut = build()
    dut._MustUse__silence = True            # built only to read its parameters
    bits = float_format(dut.in_format).width * dut.block_size
    if bits > MAX_TABLE_BITS or dut.beats_per_block > 2:
        raise ValueError(f"mx-quantize: blocks of {dut.block_size} {dut.in_format} patterns "
                         f"({bits} bits) in {dut.beats_per_block} beats are too large for "
                         f"the formal proofs (allowed at most {MAX_TABLE_BITS} bits per "
                         f"block, at most 2 beats; e.g. --in-format e3m2 --block-size 2 "
                         f"--lanes 2)")
    return [
        Proof("stream rules, idle after reset, beats and blocks in = out, scale and "
              "codes = golden for every block", lambda: MxQuantizeProperties(build()),
              "bmc", depth(dut)),
    ]
