"""Properties of NF4 quantization (:class:`qdp.hdl.Nf4Quantize`), on its ports.

One bounded proof from reset of :class:`Nf4QuantizeProperties`: the properties of every
unit with one block of storage (:mod:`qdp.formal.block_store`: stream rules on ``o`` and
``scale``, idle after reset, beats and blocks in = out), and for a freely picked full
block of free element patterns, its FP32 absmax and every code equal to the golden model
(:func:`qdp.golden.nf4.normalise_blocks` and :func:`qdp.golden.nf4.code_of`, the steps
of :func:`qdp.golden.nf4_codes`) -- for every input, since the golden's answer for every
block is a table the proof indexes with the block's patterns.

The table has ``2**(block_size * width)`` rows, so the proof runs the unit's own
generator at a size bitsandbytes does not take (:meth:`~qdp.hdl.Nf4Quantize.unchecked`):
blocks of two e2m1 patterns (:data:`REFERENCE`), with a register after every
:data:`FOLD` stage functions instead of after each (the proof's cost grows with its
depth; 59 cycles of latency take an hour, 13 take half a minute). Everything else is the
same logic: the same divider for ``fl32(1 / absmax)``, the same product rounded to FP32,
the same FP32 thresholds; e2m1's exponent range takes the subnormal-normalizing path of
the absmax's widening to FP32, as FP16 does. (Blocks of two e3m2 patterns, all 4,096,
also pass: 222 s.)
"""

import numpy as np
from amaranth.hdl import Array, Cat, Const, unsigned

from ..golden import floats
from ..golden.nf4 import code_of, normalise_blocks
from ..hdl import Nf4Quantize
from .block_store import BlockStoreProperties, depth
from .runner import Proof

__all__ = ["REFERENCE", "Nf4QuantizeProperties", "golden_table", "small", "proofs"]

#: The reference configuration of the proof in CI: blocks of two e2m1 patterns (every
#: one of the 256 blocks: zeros, subnormals, normals, Inf and NaN), one beat each.
REFERENCE = {"block_size": 2, "lanes": 2, "in_format": "e2m1"}

#: Most input bits of a block the table may take.
MAX_TABLE_BITS = 12


def golden_table(dut):
    """``(absmax, codes)`` of every block of patterns, row ``k`` the block whose
    patterns, lowest element first, are the bit fields of ``k``: the golden's answers
    (absmax as FP32 patterns)."""
    fmt, size = floats.float_format(dut.in_format), dut.block_size
    rows = np.arange(1 << (fmt.width * size), dtype=np.int64)
    blocks = (rows[:, None] >> (fmt.width * np.arange(size))) & ((1 << fmt.width) - 1)
    x = floats.convert(blocks.reshape(-1), fmt, floats.FP32)        # exact
    v, absmax = normalise_blocks(x.astype(np.uint32).view(np.float32), size)
    return (absmax.view(np.uint32).astype(np.int64),
            code_of(v).astype(np.int64).reshape(-1, size))


class Nf4QuantizeProperties(BlockStoreProperties):
    """:class:`~qdp.formal.block_store.BlockStoreProperties` of NF4 quantization: the
    picked block's absmax and codes are the golden table's row for its patterns.

    ``table`` overrides the golden table (to show that a wrong one fails)."""

    def __init__(self, dut, *, table=None):
        super().__init__(dut)
        self.element = unsigned(floats.float_format(dut.in_format).width)
        absmax, codes = golden_table(dut) if table is None else table
        self.absmax = Array(Const(int(a), 32) for a in absmax)
        self.codes = [Array(Const(int(c), 4) for c in codes[:, k])
                      for k in range(dut.block_size)]

    def scale_holds(self, scale, values):
        return scale == self.absmax[Cat(*values)]

    def element_holds(self, q, values, index):
        return q == self.codes[index][Cat(*values)]


#: Stage functions per register in the proof's pipeline: the same logic in a few cycles.
FOLD = 10


def small(read_register=False, fold=FOLD):
    """The unit at :data:`REFERENCE`, built by its own generator, its pipeline folded."""
    return Nf4Quantize.unchecked(**REFERENCE, read_register=read_register, fold=fold)


def proofs(build):
    """The proofs of one Nf4Quantize configuration; ``build()`` makes a fresh one.

    bitsandbytes' blocks (32 and more elements of 16 or 32 bits) are far too large for a
    table of every block, so the proof runs the same generator at :data:`REFERENCE`,
    with the configuration's ``read_register``; the description says so.
    """
    dut = build()
    dut._MustUse__silence = True            # built only to read its parameters
    reference = small(dut.read_register)
    reference._MustUse__silence = True
    bits = floats.float_format(reference.in_format).width * reference.block_size
    assert bits <= MAX_TABLE_BITS and reference.beats_per_block == 1
    return [
        Proof(f"at blocks of {reference.block_size} {reference.in_format} patterns "
              f"(read_register={dut.read_register}): stream rules, idle after reset, beats "
              f"and blocks in = out, absmax and codes = golden for every block",
              lambda: Nf4QuantizeProperties(small(dut.read_register)), "bmc",
              depth(reference)),
    ]
