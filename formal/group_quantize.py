"""Properties of group quantization (:class:`qdp.hdl.GroupQuantize`), on its ports.

One bounded proof from reset of :class:`GroupQuantizeProperties`: the properties of every
unit with one block of storage (:mod:`qdp.formal.block_store`: stream rules on ``o`` and
``scale``, idle after reset, beats and groups in = out), and for a freely picked full
group of free element patterns, its FP32 scale, its zero point and every code equal to
:func:`qdp.golden.group_quantize` -- for every group of finite patterns, since the
golden's answer for every group is a table the proof indexes with the group's patterns
(the golden refuses NaN and Inf: a group holding one is held to the stream rules only).

The table has ``2**(group_size * width)`` rows, so the proof runs the unit's own
generator at a size GPTQ does not take (:meth:`~qdp.hdl.GroupQuantize.unchecked`):
groups of two e2m1 patterns (:data:`REFERENCE`), with a register after every
:data:`FOLD` stage functions instead of after each (the proof's cost grows with its
depth). Everything else is the same logic: the same FP32 adder for the span, the same
dividers for the scale, the zero point and every ``x / scale``, the same ``rint`` and
clamp; e2m1's exponent range takes the subnormal-normalizing path of the widening to
FP32, as FP16 does.

It is a slow proof: about 7 minutes for the assertions and the covers together (two
shared cores, z3; about 2 for the symmetric form, which has no span adder and no zero
point), nearly all of it in the last step, where the solver meets three 26-step
dividers whatever the fold (:data:`FOLD` 40 is no faster than 12).
"""

import numpy as np
from amaranth.hdl import Array, Cat, Const, unsigned

from ..golden import floats
from ..golden.group import group_quantize
from ..hdl.group_quantize import GroupQuantize
from .block_store import BlockStoreProperties, depth
from .runner import Proof

__all__ = ["REFERENCE", "GroupQuantizeProperties", "golden_table", "small", "proofs"]

#: The reference configuration of the proof: groups of two e2m1 patterns (every one of
#: the 256: zeros, subnormals, normals, both signs; Inf and NaN held to the stream rules).
REFERENCE = {"group_size": 2, "lanes": 2, "in_format": "e2m1"}

#: Most input bits of a group the table may take.
MAX_TABLE_BITS = 12

#: Stage functions per register in the proof's pipeline: the same logic in a few cycles.
FOLD = 12


def golden_table(dut):
    """``(finite, scale, codes)`` of every group of patterns, row ``k`` the group whose
    patterns, lowest element first, are the bit fields of ``k``: whether the golden takes
    it, and its answers there (the scale payload as one integer: the FP32 pattern, the
    zero point above it unless symmetric)."""
    fmt, size = floats.float_format(dut.in_format), dut.group_size
    rows = np.arange(1 << (fmt.width * size), dtype=np.int64)
    groups = (rows[:, None] >> (fmt.width * np.arange(size))) & ((1 << fmt.width) - 1)
    x = floats.convert(groups.reshape(-1), fmt, floats.FP32)        # exact
    finite = (floats.classify(x, floats.FP32)[0] < floats.INF).reshape(-1, size).all(axis=1)
    x = np.where(finite.repeat(size), x, 0).astype(np.uint32).view(np.float32)
    q, scale, zero = group_quantize(x, bits=dut.bits, group_size=size,
                                    symmetric=dut.symmetric)
    payload = scale.view(np.uint32).astype(np.int64)
    if not dut.symmetric:
        payload = payload | (zero << 32)
    return finite, payload, (q & ((1 << dut.bits) - 1)).reshape(-1, size)


class GroupQuantizeProperties(BlockStoreProperties):
    """:class:`~qdp.formal.block_store.BlockStoreProperties` of group quantization: the
    picked group's scale (and zero point) and codes are the golden table's row for its
    patterns, wherever the golden takes them.

    ``table`` overrides the golden table (to show that a wrong one fails)."""

    def __init__(self, dut, *, table=None):
        super().__init__(dut)
        self.element = unsigned(floats.float_format(dut.in_format).width)
        finite, scale, codes = golden_table(dut) if table is None else table
        width = 32 if dut.symmetric else 32 + dut.bits + 1
        self.finite = Array(Const(int(f), 1) for f in finite)
        self.scale = Array(Const(int(s), width) for s in scale)
        self.codes = [Array(Const(int(c), dut.bits) for c in codes[:, k])
                      for k in range(dut.group_size)]

    def scale_holds(self, scale, values):
        row = Cat(*values)
        return ~self.finite[row] | (Cat(scale) == self.scale[row])

    def element_holds(self, q, values, index):
        row = Cat(*values)
        return ~self.finite[row] | (Cat(q) == self.codes[index][row])


def small(read_register=False, symmetric=False, fold=FOLD):
    """The unit at :data:`REFERENCE`, built by its own generator, its pipeline folded."""
    return GroupQuantize.unchecked(**REFERENCE, symmetric=symmetric,
                                   read_register=read_register, fold=fold)


def proofs(build):
    """The proofs of one GroupQuantize configuration; ``build()`` makes a fresh one.

    GPTQ's groups (32 and more elements of 16 or 32 bits) are far too large for a table of
    every group, so the proof runs the same generator at :data:`REFERENCE`, 4-bit codes,
    with the configuration's ``symmetric`` and ``read_register``; the description says
    so.
    """
    dut = build()
    dut._MustUse__silence = True            # built only to read its parameters
    reference = small(dut.read_register, dut.symmetric)
    reference._MustUse__silence = True
    bits = floats.float_format(reference.in_format).width * reference.group_size
    assert bits <= MAX_TABLE_BITS and reference.beats_per_block == 1
    return [
        Proof(f"at groups of {reference.group_size} {reference.in_format} patterns, 4-bit "
              f"codes (symmetric={dut.symmetric}, read_register={dut.read_register}): "
              f"stream rules, idle after reset, beats and groups in = out, "
              f"{'scale' if dut.symmetric else 'scale, zero point'} and codes = golden "
              f"for every finite group",
              lambda: GroupQuantizeProperties(small(dut.read_register, dut.symmetric)),
              "bmc", depth(reference)),
    ]
