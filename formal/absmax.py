"""Properties of the blockwise absmax unit (:class:`qdp.hdl.BlockwiseAbsmax`), on its ports.

One bounded proof from reset of :class:`AbsmaxProperties`, the properties of every unit
with one block of storage (:mod:`qdp.formal.block_store`: stream rules, beats and blocks
in = out -- at most 5 blocks between the input and ``scale``: three queued absmax
values, one draining, one waiting) and:

* every quantized element on ``o`` lies in ``[-qmax, qmax]``;
* a freely picked full block with free element values (``AnyConst``) gets, on ``scale``,
  exactly ``A = max |x|`` over its elements, and on ``o`` every element ``q = round(qmax
  * x / A)`` (0 when ``A = 0``) in the unit's rounding mode.

The rounding is stated without a division, by the inequalities that define it (for
``A > 0``): ``floor`` is ``q A <= qmax x < (q + 1) A``; ``trunc`` is ``floor`` for ``x >=
0`` and ``(q - 1) A < qmax x <= q A`` below; a nearest mode is ``|2 qmax x - 2 q A| <= A``
with equality (a tie, ``q`` half a unit below or above the exact value) allowed only on
the side the mode's tie rule picks. ``stochastic`` has no statement here.

The bound (:func:`qdp.formal.block_store.depth`) grows with ``out_width``, the rounding's
fraction bits and ``pipeline``: the configurations proved in reasonable time are small
ones (:data:`REFERENCE`).

Float input has the stream rules only (:data:`FLOAT_REFERENCE`); its arithmetic is
checked for every pair of a small format by simulation.
"""

from amaranth.hdl import Assert, Mux, signed

from ..golden.rounding import DETERMINISTIC_MODES
from .block_store import BlockStoreProperties, depth
from .runner import Proof
from .stream import StreamHarness

__all__ = ["REFERENCE", "FLOAT_REFERENCE", "ROUNDINGS", "AbsmaxProperties", "proofs"]

#: The reference configuration of the proofs in CI: a block is one beat of two elements,
#: which leaves ``o`` 8 cycles after reset (``latency`` 7).
REFERENCE = {"block_size": 2, "lanes": 2, "in_width": 4, "out_width": 2, "rounding": "floor",
             "pipeline": 0}

#: Rounding modes with a formal statement here.
ROUNDINGS = DETERMINISTIC_MODES

#: The reference configuration of the float-input proof: e2m1 blocks of one beat (z3
#: takes 2 s; e3m3, 85 s).
FLOAT_REFERENCE = {"block_size": 2, "lanes": 2, "in_format": "e2m1", "out_width": 2,
                   "rounding": "floor", "pipeline": 0}

#: Longest bound (cycles) :func:`proofs` accepts: z3 needs about 15 s at 10 (the
#: reference), 20 s to a minute and a half at 11, and longer beyond.
MAX_DEPTH = 11


def rounds_to(q, x, absmax, *, qmax, rounding):
    """``q == round(qmax * x / absmax)`` (``q == 0`` when ``absmax`` is 0), as an Amaranth
    condition stated by inequalities, not by a division."""
    n = qmax * x                        # the exact value is n / absmax
    below = q * absmax                  # q's place on the same scale
    x_neg = x < 0
    if rounding == "floor":
        fits = (below <= n) & (n < below + absmax)
    elif rounding == "trunc":
        fits = Mux(x_neg, (below - absmax < n) & (n <= below),
                   (below <= n) & (n < below + absmax))
    else:
        d = 2 * n - 2 * below           # 2 * absmax * (exact - q)
        # d == absmax: exact = q + 1/2 rounded down; d == -absmax: q - 1/2 rounded up.
        even = ~q[0]
        down, up = {
            "half_up": (0, 1),
            "half_down": (1, 0),
            "half_even": (even, even),
            "half_away": (x_neg, ~x_neg),
            "half_zero": (~x_neg, x_neg),
        }[rounding]
        fits = (((d > -absmax) & (d < absmax)) | ((d == absmax) & down) |
                ((d == -absmax) & up))
    return Mux(absmax == 0, q == 0, fits)


class AbsmaxProperties(BlockStoreProperties):
    """:class:`~qdp.formal.block_store.BlockStoreProperties` of the absmax unit: every
    quantized element on ``o`` in ``[-qmax, qmax]``; the picked block's scale ``A = max
    |x|``, and each element ``q = round(qmax * x / A)`` in the unit's rounding mode
    (:func:`rounds_to`).

    ``rounding`` overrides the mode of the golden statement (default: the unit's).
    """

    def __init__(self, dut, *, rounding=None):
        super().__init__(dut)
        self.rounding = dut.rounding if rounding is None else rounding
        if self.rounding not in ROUNDINGS:
            raise ValueError(f"rounding: no formal statement for {self.rounding!r}; "
                             f"expected one of {', '.join(ROUNDINGS)}")
        self.element = signed(dut.in_width)
        self.qmax = (1 << (dut.out_width - 1)) - 1
        self._max = None

    def _absmax(self, values):
        """``max |x|`` of the picked block's values (built once)."""
        if self._max is None:
            magnitude = [Mux(v < 0, -v, v) for v in values]
            self._max = magnitude[0]
            for mag in magnitude[1:]:
                self._max = Mux(mag > self._max, mag, self._max)
        return self._max

    def scale_holds(self, scale, values):
        return scale == self._absmax(values)

    def element_holds(self, q, values, index):
        return rounds_to(q, values[index], self._absmax(values), qmax=self.qmax,
                         rounding=self.rounding)

    def every_output(self, m, q):
        m.d.comb += Assert((q >= -self.qmax) & (q <= self.qmax))


def proofs(build):
    """The proofs of one absmax configuration; ``build()`` makes a fresh unit.

    Raises ``ValueError`` for a unit too large to prove in reasonable time, or a rounding
    mode without a formal statement.
    """
    dut = build()
    dut._MustUse__silence = True            # built only to read its parameters
    if dut.in_format != "int":
        return _float_proofs(build, dut)
    if dut.rounding not in ROUNDINGS:
        raise ValueError(f"rounding: no formal statement for {dut.rounding!r}; expected one "
                         f"of {', '.join(ROUNDINGS)}")
    bound = depth(dut)
    if dut.block_size > 4 or dut.in_width > 8 or bound > MAX_DEPTH:
        raise ValueError(f"absmax: block_size {dut.block_size} / in_width {dut.in_width} / "
                         f"latency {dut.latency} are too large for the formal proofs "
                         f"(allowed block_size <= 4, in_width <= 8, latency + 2 * "
                         f"block_size / lanes + 1 <= {MAX_DEPTH}; e.g. --block-size 2 "
                         f"--in-width 4 --out-width 2 --rounding floor --pipeline 0)")
    return [
        Proof("stream rules, idle after reset, beats and blocks in = out, "
              "q in [-qmax, qmax], scale = block max |x|, q = round(qmax x / scale)",
              lambda: AbsmaxProperties(build()), "bmc", bound),
    ]


def _float_proofs(build, dut):
    """Float input: the stream rules on ``o`` and ``scale`` and both idle after reset,
    up to the cycle in which a first one-beat block has left. Its arithmetic is checked
    for every (x, absmax) pair of e3m3 by simulation (tests/test_absmax_amaranth.py)."""
    depth = dut.latency + dut.beats_per_block + 2
    if dut.element_width > 8 or dut.block_size > 4 or dut.model != "exact" or depth > 16:
        raise ValueError(f"absmax: float input {dut.in_format}, block_size "
                         f"{dut.block_size}, model {dut.model}, latency {dut.latency} are "
                         f"too large for the formal proofs (allowed formats of at most 8 "
                         f"bits, block_size <= 4, the exact model, latency + block_size / "
                         f"lanes + 2 <= 16; e.g. --in-format e2m1 --block-size 2 --lanes 2 "
                         f"--out-width 2 --rounding floor --pipeline 0)")
    return [Proof("stream rules on o and scale, idle after reset (float input)",
                  lambda: StreamHarness(build()), "bmc", depth)]
