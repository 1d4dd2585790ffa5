"""Properties of the blockwise dequantizer (:class:`qdp.hdl.AbsmaxDequantize`), on its
ports.

One bounded proof from reset of the stream rules on ``o`` (``valid`` held until
``ready``, payload stable while stalled) and an idle output after reset, for any input
on both ``i`` and ``scale``, bounded by ``latency + 3`` cycles: the first beat, stalled
once, is taken within it.

Its arithmetic is checked for every input by simulation, which at these sizes is
complete: every ``q`` with every absmax pattern of an 8-bit format
(:func:`qdp.sim.absmax_dequantize_tb.exhaustive_scales`).
"""

from .runner import Proof
from .stream import StreamHarness

__all__ = ["REFERENCE", "proofs"]

#: The reference configuration of the proof in CI.
REFERENCE = {"in_format": "e3m3", "out_width": 3, "out_format": "e3m3"}


def proofs(build):
    """The proofs of one AbsmaxDequantize configuration; ``build()`` makes a fresh one.

    Raises ``ValueError`` for a configuration too large to prove in reasonable time.
    """
    dut = build()
    dut._MustUse__silence = True            # built only to read its parameters
    if dut.fmt.width > 8 or dut.out.width > 8 or dut.lanes > 2 or dut.model != "exact":
        raise ValueError(f"absmax-dequantize: {dut.lanes} lanes, {dut.fmt.name} to "
                         f"{dut.out.name}, model {dut.model} are too large for the formal "
                         f"proofs (allowed formats of at most 8 bits, lanes <= 2, the "
                         f"exact model)")
    return [
        Proof("stream rules, idle after reset", lambda: StreamHarness(build()), "bmc",
              dut.latency + 3),
    ]
