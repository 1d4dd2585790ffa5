"""Properties of MX dequantization (:class:`qdp.hdl.MxDequantize`), on its ports.

One bounded proof from reset of the stream rules on ``o`` (``valid`` held until
``ready``, payload stable while stalled) and an idle output after reset, for any input
on both ``i`` and ``scale``, bounded by ``latency + 3`` cycles: the first beat, stalled
once, is taken within it.

Its arithmetic is checked for every input by simulation, which is complete here: every
(code, scale byte) pair of the element (:func:`qdp.sim.mx_dequantize_tb.exhaustive_stimulus`).
"""

from .runner import Proof
from .stream import StreamHarness

__all__ = ["REFERENCE", "proofs"]

#: The reference configuration of the proof in CI.
REFERENCE = {"element": "fp4_e2m1", "out_format": "e5m2"}


def proofs(build):
    """The proofs of one MxDequantize configuration; ``build()`` makes a fresh one.

    Raises ``ValueError`` for a configuration too large to prove in reasonable time.
    """
    dut = build()
    dut._MustUse__silence = True            # built only to read its parameters
    if dut.out.width > 16 or dut.lanes > 2:
        raise ValueError(f"mx-dequantize: {dut.lanes} lanes to {dut.out.name} are too "
                         f"large for the formal proofs (allowed: outputs of at most 16 "
                         f"bits, lanes <= 2)")
    return [
        Proof("stream rules, idle after reset", lambda: StreamHarness(build()), "bmc",
              dut.latency + 3),
    ]
