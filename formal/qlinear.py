"""Properties of the quantized linear layer (:class:`qdp.hdl.QLinear`), on its ports.

Its arithmetic is the MAC array's and the Quantizer's, proved in
:mod:`qdp.formal.mac_array` and :mod:`qdp.formal.quantizer`; here one bounded proof from
reset of the stream rules on ``o`` and an idle output after reset, for any input.
"""

from .runner import Proof
from .stream import StreamHarness

__all__ = ["proofs"]


def proofs(build):
    """The proofs of one QLinear configuration; ``build()`` makes a fresh layer."""
    return [
        Proof("stream rules, idle after reset", lambda: StreamHarness(build()), "bmc", 10),
    ]
