"""Properties of every unit built on one block of storage
(:class:`qdp.hdl.block_store.BlockStore`), on its ports.

:class:`BlockStoreProperties`, one bounded proof from reset:

* the stream rules on ``o`` and ``scale`` and both idle after reset, for any input;
* beats in minus beats out on ``o`` never negative, at most two blocks plus the latency
  and the output queue; blocks closed at the input (a full block or ``last``) minus
  ``scale`` beats never negative and at most the scale queue plus one block draining and
  one waiting: one ``scale`` beat per block;
* a freely picked full block with free element values (``AnyConst``) gets, on ``scale``,
  the value a subclass states (:meth:`BlockStoreProperties.scale_holds`), and on ``o``, in
  order, ``first`` on its first beat, ``last`` on its last, and per element what the
  subclass states (:meth:`BlockStoreProperties.element_holds`).

The bound is the cycle in which the picked block's last beat can leave when it is the
first block after reset, ``latency + 2 * beats_per_block + 1`` (:func:`depth`); the
proof's ``Cover``s (the picked block's last beat and its scale delivered, a stalled beat
taken on each output) show that the bound reaches every assertion, so that a bound too
short for the latency is reported vacuous rather than passed.
"""

from amaranth.asserts import AnyConst, AnySeq
from amaranth.hdl import Assume, Assert, Cover, Mux, Signal

from .stream import Harness

__all__ = ["BlockStoreProperties", "depth"]


def depth(dut):
    """The bound that reaches the first block's last beat after reset: it leaves
    ``latency + 2 beats - 1`` cycles after reset; a stalled beat taken needs one cycle
    more than a one-beat block's."""
    return dut.latency + dut.beats_per_block + max(dut.beats_per_block, 2)


class BlockStoreProperties(Harness):
    """Stream rules, beat and block accounting, and the picked block's scale, block marks
    and elements. A subclass sets ``element`` (the shape of a free element value) and
    states the picked block's outputs."""

    element = None

    def scale_holds(self, scale, values):
        """The condition on the ``scale`` payload of a block of ``values``."""
        raise NotImplementedError

    def element_holds(self, q, values, index):
        """The condition on the output ``q`` of element ``index`` of that block."""
        raise NotImplementedError

    def every_output(self, m, q):
        """Assertions on every output element ``q`` (none by default)."""

    def properties(self, m, rules):
        dut = self.dut
        rules.drive_input(dut.i)
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
        blocks = rules.count(closes, fire_scale, dut.pending_blocks, name="blocks")

        with m.If(fire_out):
            for lane in range(dut.lanes):
                self.every_output(m, dut.o.payload.data[lane])

        # The picked block: its elements are free constants.
        values = [AnyConst(self.element) for _ in range(dut.block_size)]
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
            m.d.comb += Assert(self.scale_holds(dut.scale.payload, values))
        m.d.comb += Cover(scale_out)
        self._picked_beats(m, take, fire_out, inflight, values)

    def _picked_beats(self, m, take, fire_out, inflight, values):
        """Its beats on o: the `beats` output beats after those still in flight when its
        first beat went in."""
        dut, beats = self.dut, self.dut.beats_per_block
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
                        m.d.comb += Assert(self.element_holds(
                            dut.o.payload.data[lane], values, b * dut.lanes + lane))
        m.d.comb += Cover(mine & (o_beat == beats - 1))
