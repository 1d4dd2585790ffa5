"""Properties of group dequantization (:class:`qdp.hdl.GroupDequantize`), on its ports.

One bounded proof from reset of the stream rules on ``o`` (``valid`` held until
``ready``, payload stable while stalled) and an idle output after reset, for any input
on both ``i`` and ``scale``, bounded by ``latency + 3`` cycles: the first beat, stalled
once, is taken within it.

Its arithmetic is checked by simulation: every code against every zero point against
every sign, exponent and leading mantissa bits of the scale
(:func:`qdp.sim.group_dequantize_tb.exhaustive_stimulus`), and the scale edges.
"""

from .runner import Proof
from .stream import StreamHarness

__all__ = ["REFERENCE", "proofs"]

#: The reference configuration of the proof in CI: the smallest multiplier (2 x 24 bits).
REFERENCE = {"lanes": 1, "bits": 2}


def proofs(build):
    """The proofs of one GroupDequantize configuration; ``build()`` makes a fresh one.

    Raises ``ValueError`` for a configuration too large to prove in reasonable time.
    """
    dut = build()
    dut._MustUse__silence = True            # built only to read its parameters
    if dut.lanes > 2:
        raise ValueError(f"group-dequantize: {dut.lanes} lanes are too large for the formal "
                         f"proofs (allowed: lanes <= 2)")
    return [
        Proof("stream rules, idle after reset", lambda: StreamHarness(build()), "bmc",
              dut.latency + 3),
    ]
