"""Properties of NF4 dequantization (:class:`qdp.hdl.Nf4Dequantize`), on its ports.

One bounded proof from reset of the stream rules on ``o`` (``valid`` held until
``ready``, payload stable while stalled) and an idle output after reset, for any input
on both ``i`` and ``scale``, bounded by ``latency + 3`` cycles: the first beat, stalled
once, is taken within it. Not with ``double_quant``: the constants' FP32 multiplier and
adder ahead of the join make the bound 46 cycles deep, past half an hour in z3; that
path's stream behaviour is the benches' (random gaps on both inputs, backpressure,
reset).

Its arithmetic is checked by simulation: every code in every lane against every sign,
exponent and leading mantissa bits of the absmax
(:func:`qdp.sim.nf4_dequantize_tb.exhaustive_stimulus`), and the absmax edges.
"""

from .runner import Proof
from .stream import StreamHarness

__all__ = ["REFERENCE", "proofs"]

#: The reference configuration of the proof in CI.
REFERENCE = {"lanes": 1}


def proofs(build):
    """The proofs of one Nf4Dequantize configuration; ``build()`` makes a fresh one.

    Raises ``ValueError`` for a configuration too large to prove in reasonable time.
    """
    dut = build()
    dut._MustUse__silence = True            # built only to read its parameters
    if dut.lanes > 2 or dut.double_quant:
        raise ValueError(f"nf4-dequantize: {dut.lanes} lanes"
                         f"{' with double_quant' if dut.double_quant else ''} are too large "
                         f"for the formal proofs (allowed: lanes <= 2, double_quant=False: "
                         f"the constants' multiplier and adder take the proof past 30 "
                         f"minutes)")
    return [
        Proof("stream rules, idle after reset", lambda: StreamHarness(build()), "bmc",
              dut.latency + 3),
    ]
