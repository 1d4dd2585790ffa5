"""Properties of the quantized linear layer (:class:`qdp.hdl.QLinear`), on its ports.

Its arithmetic is the MAC array's and the Quantizer's, proved in
:mod:`qdp.formal.mac_array` and :mod:`qdp.formal.quantizer`; here one bounded proof from
reset of the stream rules on ``o`` and an idle output after reset, for any input, bounded
by ``latency + 3`` cycles: the first beat, stalled once, is taken within it.
"""

from .runner import Proof
from .stream import StreamHarness

__all__ = ["proofs"]


def proofs(build):
    """The proofs of one QLinear configuration; ``build()`` makes a fresh layer.

    Raises ``ValueError`` for a layer too large to prove in reasonable time.
    """
    dut = build()
    dut._MustUse__silence = True            # built only to read its parameters
    if dut.a_width + dut.b_width > 8 or dut.rows * dut.cols > 4:
        raise ValueError(f"qlinear: {dut.rows}x{dut.cols} PEs of {dut.a_width}x"
                         f"{dut.b_width}-bit products are too large for the formal proofs "
                         f"(allowed rows * cols <= 4, a_width + b_width <= 8)")
    return [
        Proof("stream rules, idle after reset", lambda: StreamHarness(build()), "bmc",
              dut.latency + 3),
    ]
