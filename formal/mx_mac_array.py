"""Properties of the MX dot product (:class:`qdp.hdl.MxMacArray`), on its ports.

One bounded proof from reset of the stream rules on ``o`` (``valid`` held until
``ready``, payload stable while stalled) and an idle output after reset, for any input,
bounded by ``latency + 3`` cycles: the first tile's result, stalled once, is taken
within it. The reference is the smallest array (one PE, blocks of one FP4 element, the
shortest ring of 128-bit limbs); the ring, the window finder and the rounder are the
same circuit at every size.

Its arithmetic is checked by simulation: every pair of element codes as a product
(:func:`qdp.sim.mx_mac_array_tb.exhaustive_tiles`), exact cancellation across scales,
rounding ties broken and unbroken, the E8M0 range ends and the special values.
"""

from .runner import Proof
from .stream import StreamHarness

__all__ = ["REFERENCE", "proofs"]

#: The reference configuration of the proof in CI.
REFERENCE = {"rows": 1, "cols": 1, "element": "fp4_e2m1", "block_size": 1,
             "limb_width": 128}


def proofs(build):
    """The proofs of one MxMacArray configuration; ``build()`` makes a fresh one.

    Raises ``ValueError`` for a configuration too large to prove in reasonable time.
    """
    dut = build()
    dut._MustUse__silence = True            # built only to read its parameters
    if dut.rows * dut.cols > 2:
        raise ValueError(f"mx-mac-array: a {dut.rows} x {dut.cols} array is too large for "
                         f"the formal proofs (allowed: rows * cols <= 2)")
    return [
        Proof("stream rules, idle after reset", lambda: StreamHarness(build()), "bmc",
              dut.latency + 3),
    ]
