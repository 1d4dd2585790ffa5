"""Properties of DequantizeLinear (:class:`qdp.hdl.DequantizeLinear`), on its ports.

One bounded proof from reset of the stream rules on ``o`` (``valid`` held until
``ready``, payload stable while stalled) and an idle output after reset, for any input,
bounded by ``latency + 3`` cycles: the first beat, stalled once, is taken within it.

Its arithmetic is checked for every input by simulation, which at these sizes is
complete: every input of a type of at most 16 bits through the Verilog for several
scales (:func:`qdp.sim.dequantize_linear_tb.exhaustive_scales`).
"""

from .runner import Proof
from .stream import StreamHarness

__all__ = ["REFERENCE", "proofs"]

#: The reference configuration of the proof in CI (z3 takes 2 s; 4-bit inputs to e3m3, 58 s).
REFERENCE = {"in_width": 2, "out_format": "e2m2", "runtime_scale": True}


def proofs(build):
    """The proofs of one DequantizeLinear configuration; ``build()`` makes a fresh one.

    Raises ``ValueError`` for a configuration too large to prove in reasonable time.
    """
    dut = build()
    dut._MustUse__silence = True            # built only to read its parameters
    if dut.fmt.width > 8 or dut.in_width > 8 or dut.lanes > 2:
        raise ValueError(f"dequantize-linear: {dut.lanes} lanes of {dut.in_width}-bit "
                         f"inputs to {dut.fmt.name} are too large for the formal proofs "
                         f"(allowed formats of at most 8 bits, in_width <= 8, lanes <= 2)")
    return [
        Proof("stream rules, idle after reset", lambda: StreamHarness(build()), "bmc",
              dut.latency + 3),
    ]
