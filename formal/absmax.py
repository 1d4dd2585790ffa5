"""Properties of the blockwise absmax unit (:class:`qdp.hdl.BlockwiseAbsmax`), on its ports.

One bounded proof from reset of :class:`AbsmaxProperties`:

* the stream rules on ``o`` and ``scale`` and both idle after reset, for any input;
* beats in minus beats out on ``o`` never negative, at most two blocks plus the latency
  and the output queue; blocks closed at the input (a full block or ``last``) minus
  ``scale`` beats never negative and at most 5 (three queued absmax values, one block
  draining, one waiting): one ``scale`` beat per block;
* every quantized element on ``o`` lies in ``[-qmax, qmax]``;
* a freely picked full block with free element values (``AnyConst``) gets, on ``scale``,
  exactly ``A = max |x|`` over its elements, and on ``o``, in order, ``first`` on its
  first beat, ``last`` on its last, and every element ``q = round(qmax * x / A)`` (0 when
  ``A = 0``) in the unit's rounding mode.

The rounding is stated without a division, by the inequalities that define it (for
``A > 0``): ``floor`` is ``q A <= qmax x < (q + 1) A``; ``trunc`` is ``floor`` for ``x >=
0`` and ``(q - 1) A < qmax x <= q A`` below; a nearest mode is ``|2 qmax x - 2 q A| <= A``
with equality (a tie, ``q`` half a unit below or above the exact value) allowed only on
the side the mode's tie rule picks. ``stochastic`` has no statement here.

The bound is the cycle in which the picked block's last beat can leave when it is the
first block after reset, ``latency + 2 * beats_per_block + 1``; the proof's ``Cover``s
(the picked block's last beat and its scale delivered, a stalled beat taken on each
output) show that the bound reaches every assertion, so that a bound too short for the
latency is reported vacuous rather than passed. That bound grows with ``out_width``, the
rounding's fraction bits and ``pipeline``: the configurations proved in reasonable time
are small ones (:data:`REFERENCE`).

Float input has the stream rules only (:data:`FLOAT_REFERENCE`); its arithmetic is
checked for every pair of a small format by simulation.
"""

from amaranth.asserts import AnyConst, AnySeq
from amaranth.hdl import Assert, Assume, Cover, Mux, Signal, signed

from ..golden.rounding import DETERMINISTIC_MODES
from .runner import Proof
from .stream import Harness, StreamHarness

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


class AbsmaxProperties(Harness):
    """Stream rules, beat and block accounting, output range, and the picked block's
    absmax, block marks and quantized elements.

    ``rounding`` overrides the mode of the golden statement (default: the unit's).
    """

    def __init__(self, dut, *, rounding=None):
        super().__init__(dut)
        self.rounding = dut.rounding if rounding is None else rounding
        if self.rounding not in ROUNDINGS:
            raise ValueError(f"rounding: no formal statement for {self.rounding!r}; "
                             f"expected one of {', '.join(ROUNDINGS)}")

    def properties(self, m, rules):
        dut = self.dut
        for port in (dut.i,):
            rules.drive_input(port)
        for port in (dut.o, dut.scale):
            rules.check_output(port)
        fire_in, fire_out, fire_scale = rules.fire(dut.i), rules.fire(dut.o), \
            rules.fire(dut.scale)
        beats = dut.beats_per_block
        inflight = rules.count(fire_in, fire_out, 2 * beats + dut.latency + 4, name="beats")

        # Where the input stands in its block: a block closes after `beats` beats or at
        # `last`.
        pos = Signal(range(beats), name="in_pos")
        closes = fire_in & ((pos == beats - 1) | dut.i.payload.last)
        with m.If(fire_in):
            m.d.sync += pos.eq(Mux(closes, 0, pos + 1))
        blocks = rules.count(closes, fire_scale, 5, name="blocks")

        qmax = (1 << (dut.out_width - 1)) - 1
        with m.If(fire_out):
            for lane in range(dut.lanes):
                q = dut.o.payload.data[lane]
                m.d.comb += Assert((q >= -qmax) & (q <= qmax))

        # The picked block: its elements are free constants, its scale their max |x|.
        values = [AnyConst(signed(dut.in_width)) for _ in range(dut.block_size)]
        magnitude = [Mux(v < 0, -v, v) for v in values]
        absmax = magnitude[0]
        for mag in magnitude[1:]:
            absmax = Mux(mag > absmax, mag, absmax)
        pick = AnySeq(1)
        picked = Signal()
        filling = Signal()              # the picked block is still streaming in
        pending = Signal()              # closed, its scale beat not out yet
        ahead = Signal.like(blocks)     # scale beats in front of it
        take = fire_in & (pos == 0) & pick & ~picked
        with m.If(take | (filling & fire_in)):
            m.d.comb += Assume(~dut.i.payload.last)
            for b in range(beats):
                with m.If(pos == b):
                    for lane in range(dut.lanes):
                        m.d.comb += Assume(dut.i.payload.data[lane] ==
                                           values[b * dut.lanes + lane])
        with m.If(take):
            m.d.sync += [picked.eq(1), filling.eq(beats > 1)]
        with m.If(closes & (take | filling)):
            m.d.sync += [filling.eq(0), pending.eq(1), ahead.eq(blocks - fire_scale)]
        with m.Elif(pending & fire_scale):
            m.d.sync += ahead.eq(ahead - 1)
            with m.If(ahead == 0):
                m.d.sync += pending.eq(0)
        scale_out = pending & fire_scale & (ahead == 0)
        with m.If(scale_out):
            m.d.comb += Assert(dut.scale.payload == absmax)
        m.d.comb += Cover(scale_out)

        # Its beats on o: the `beats` output beats after those still in flight when its
        # first beat went in.
        draining = Signal()             # picked, not all its beats out yet
        o_ahead = Signal.like(inflight)
        o_beat = Signal(range(beats), name="o_beat")
        with m.If(take):
            m.d.sync += [draining.eq(1), o_ahead.eq(inflight - fire_out)]
        with m.Elif(draining & fire_out):
            with m.If(o_ahead != 0):
                m.d.sync += o_ahead.eq(o_ahead - 1)
            with m.Else():
                m.d.sync += o_beat.eq(Mux(o_beat == beats - 1, 0, o_beat + 1))
                with m.If(o_beat == beats - 1):
                    m.d.sync += draining.eq(0)
        mine = draining & fire_out & (o_ahead == 0)
        with m.If(mine):
            m.d.comb += [Assert(dut.o.payload.first == (o_beat == 0)),
                         Assert(dut.o.payload.last == (o_beat == beats - 1))]
            for b in range(beats):
                with m.If(o_beat == b):
                    for lane in range(dut.lanes):
                        m.d.comb += Assert(rounds_to(
                            dut.o.payload.data[lane], values[b * dut.lanes + lane], absmax,
                            qmax=qmax, rounding=self.rounding))
        m.d.comb += Cover(mine & (o_beat == beats - 1))


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
    # The picked block's last beat leaves `latency + 2 beats - 1` cycles after reset; a
    # stalled beat taken needs one cycle more than a one-beat block's.
    depth = dut.latency + dut.beats_per_block + max(dut.beats_per_block, 2)
    if dut.block_size > 4 or dut.in_width > 8 or depth > MAX_DEPTH:
        raise ValueError(f"absmax: block_size {dut.block_size} / in_width {dut.in_width} / "
                         f"latency {dut.latency} are too large for the formal proofs "
                         f"(allowed block_size <= 4, in_width <= 8, latency + 2 * "
                         f"block_size / lanes + 1 <= {MAX_DEPTH}; e.g. --block-size 2 "
                         f"--in-width 4 --out-width 2 --rounding floor --pipeline 0)")
    return [
        Proof("stream rules, idle after reset, beats and blocks in = out, "
              "q in [-qmax, qmax], scale = block max |x|, q = round(qmax x / scale)",
              lambda: AbsmaxProperties(build()), "bmc", depth),
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
