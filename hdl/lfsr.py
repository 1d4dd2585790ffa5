"""The random numbers of ``stochastic`` rounding in gateware: the hardware side of
:mod:`qdp.golden.lfsr`.

One 32-bit Galois LFSR per lane, x^32 + x^22 + x^2 + x + 1, stepping as::

    state = (state >> 1) ^ (LFSR_TAPS if state[0] else 0)

Lane ``k`` starts (and restarts on reset) from ``lane_seed(seed, k)``; the state before a
step is the ``r`` that rounds the beat, as :func:`qdp.golden.lfsr.lfsr_values` gives it.
"""

from amaranth.hdl import Mux, Signal

from ..golden.lfsr import LFSR_TAPS, lane_seed

__all__ = ["lfsr_next", "lfsr_register"]


def lfsr_next(state):
    """The state after one Galois step of the 32-bit ``state`` (combinational)."""
    return (state >> 1) ^ Mux(state[0], LFSR_TAPS, 0)


def lfsr_register(m, seed, lane, *, step):
    """Lane ``lane``'s LFSR: a 32-bit register ``lfsr<lane>`` that starts from
    ``lane_seed(seed, lane)`` and takes one step in every cycle in which ``step`` is set.

    Returns the register: its value is ``r`` for the beat that ``step`` accepts."""
    state = Signal(32, init=lane_seed(seed, lane), name=f"lfsr{lane}")
    with m.If(step):
        m.d.sync += state.eq(lfsr_next(state))
    return state
