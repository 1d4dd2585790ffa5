"""Properties of QuantizeLinear (:class:`qdp.hdl.QuantizeLinear`), on its ports.

One bounded proof from reset of the stream rules on ``o`` (``valid`` held until
``ready``, payload stable while stalled) and an idle output after reset, for any input,
bounded by ``latency + 3`` cycles: the first beat, stalled once, is taken within it.

Its arithmetic is checked for every input at a small custom format by simulation, which
at these sizes is complete: every (x, scale) bit-pattern pair of ``e3m3`` (and of any
format of at most 8 bits) through the Verilog, see
:func:`qdp.sim.quantize_linear_tb.exhaustive_scales` (run in CI by
``tests/test_quantize_linear_cocotb.py``).
"""

from .runner import Proof
from .stream import StreamHarness

__all__ = ["REFERENCE", "proofs"]

#: The reference configuration of the proof in CI.
REFERENCE = {"in_format": "e3m3", "out_width": 4, "runtime_scale": True}


def proofs(build):
    """The proofs of one QuantizeLinear configuration; ``build()`` makes a fresh one.

    Raises ``ValueError`` for a configuration too large to prove in reasonable time.
    """
    dut = build()
    dut._MustUse__silence = True            # built only to read its parameters
    if dut.fmt.width > 8 or dut.lanes > 2:
        raise ValueError(f"quantize-linear: {dut.lanes} lanes of {dut.fmt.name} are too "
                         f"large for the formal proofs (allowed formats of at most 8 bits, "
                         f"lanes <= 2)")
    return [
        Proof("stream rules, idle after reset", lambda: StreamHarness(build()), "bmc",
              dut.latency + 3),
    ]
