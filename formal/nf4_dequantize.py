"""Properties of NF4 dequantization (:class:`qdp.hdl.Nf4Dequantize`), on its ports.

One bounded proof from reset of the stream rules on ``o`` (``valid`` held until
``ready``, payload stable while stalled) and an idle output after reset, for any input
on both ``i`` and ``scale``, bounded by ``latency + 3`` cycles (plus the constants'
pipeline with ``double_quant``): the first beat, stalled once, is taken within it.

Its arithmetic is checked by simulation: every code in every lane against every sign,
exponent and leading mantissa bits of the absmax
(:func:`qdp.sim.nf4_dequantize_tb.exhaustive_stimulus`), and the absmax edges.
"""

from ..hdl.double_quant import DoubleDequantize
from .runner import Proof
from .stream import StreamHarness

__all__ = ["REFERENCE", "DOUBLE_QUANT_REFERENCE", "proofs"]

#: The reference configuration of the proof in CI.
REFERENCE = {"lanes": 1}
#: The same with double-quantized constants.
DOUBLE_QUANT_REFERENCE = {"lanes": 1, "double_quant": True}


def proofs(build):
    """The proofs of one Nf4Dequantize configuration; ``build()`` makes a fresh one.

    Raises ``ValueError`` for a configuration too large to prove in reasonable time.
    """
    dut = build()
    dut._MustUse__silence = True            # built only to read its parameters
    if dut.lanes > 2:
        raise ValueError(f"nf4-dequantize: {dut.lanes} lanes are too large for the formal "
                         f"proofs (allowed: lanes <= 2)")
    # Double-quantized constants reach the join through their own pipeline first.
    scale_path = DoubleDequantize().latency if dut.double_quant else 0
    return [
        Proof("stream rules, idle after reset", lambda: StreamHarness(build()), "bmc",
              dut.latency + scale_path + 3),
    ]
