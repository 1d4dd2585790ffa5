"""Properties of the blockwise absmax unit (:class:`qdp.hdl.BlockwiseAbsmax`), on its ports.

One bounded proof from reset of :class:`AbsmaxProperties`:

* the stream rules on ``o`` and ``scale`` and both idle after reset, for any input;
* beats in minus beats out on ``o`` never negative, at most two blocks plus the latency
  and the output queue; blocks closed at the input (a full block or ``last``) minus
  ``scale`` beats never negative and at most 5 (three queued absmax values, one block
  draining, one waiting): one ``scale`` beat per block;
* every quantized element lies in ``[-qmax, qmax]`` (asserted, but at the reference depth
  of 8 cycles no element reaches ``o`` yet: ``latency`` is 11 there, and deeper bounds
  cost minutes with z3);
* a freely picked full block with free element values (``AnyConst``) gets, on ``scale``,
  exactly ``max |x|`` over its elements.
"""

from amaranth.asserts import AnyConst, AnySeq
from amaranth.hdl import Assert, Assume, Mux, Signal, signed

from .runner import Proof
from .stream import Harness

__all__ = ["REFERENCE", "AbsmaxProperties", "proofs"]

#: The reference configuration of the proofs in CI.
REFERENCE = {"block_size": 2, "lanes": 1, "in_width": 4, "out_width": 3}


class AbsmaxProperties(Harness):
    """Stream rules, beat and block accounting, output range, the block maximum."""

    def properties(self, m, rules):
        dut = self.dut
        for port in (dut.i,):
            rules.drive_input(port)
        for port in (dut.o, dut.scale):
            rules.check_output(port)
        fire_in, fire_out, fire_scale = rules.fire(dut.i), rules.fire(dut.o), \
            rules.fire(dut.scale)
        beats = dut.beats_per_block
        rules.count(fire_in, fire_out, 2 * beats + dut.latency + 4, name="beats")

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
        with m.If(pending & fire_scale & (ahead == 0)):
            m.d.comb += Assert(dut.scale.payload == absmax)


def proofs(build):
    """The proofs of one absmax configuration; ``build()`` makes a fresh unit.

    Raises ``ValueError`` for a unit too large to prove in reasonable time.
    """
    dut = build()
    dut._MustUse__silence = True            # built only to read its parameters
    if dut.block_size > 4 or dut.in_width > 8:
        raise ValueError(f"absmax: block_size {dut.block_size} / in_width {dut.in_width} are "
                         f"too large for the formal proofs (allowed block_size <= 4, "
                         f"in_width <= 8, e.g. --block-size 2 --in-width 4 --out-width 3)")
    return [
        Proof("stream rules, idle after reset, beats and blocks in = out, "
              "q in [-qmax, qmax], scale = block max |x|",
              lambda: AbsmaxProperties(build()), "bmc", 8),
    ]
