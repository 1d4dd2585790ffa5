"""Port-level stream properties shared by every block's harness.

A harness drives each input stream of the block under proof from free values (``AnySeq``)
constrained only by the stream rules, takes each output stream with a free ``ready``, and
asserts the rules on the outputs. Everything here looks at ports only, so the properties
survive any rewrite of a block's internals.

Reset is a free input too (the ``sync`` domain's ``rst``), high in the first cycle; a beat
moves when ``valid & ready & ~rst`` (a synchronous reset discards whatever the cycle
carried), and every rule about "the previous cycle" is waived for the cycle after a reset.
"""

from amaranth.asserts import AnySeq, Initial
from amaranth.hdl import (
    Assert,
    Assume,
    Cover,
    Elaboratable,
    Module,
    ResetSignal,
    Signal,
    Value,
)
from amaranth.lib.wiring import In

__all__ = ["Harness", "StreamHarness", "StreamRules", "streams"]


def streams(dut):
    """``(inputs, outputs)``: the stream ports of ``dut``, by its signature."""
    inputs, outputs = [], []
    for name, member in dut.signature.members.items():
        if member.is_signature:
            (inputs if member.flow == In else outputs).append(getattr(dut, name))
    return inputs, outputs


class StreamRules:
    """The previous cycle of the reset and of selected values, and the rules built on them.

    Parameters
    ----------
    m : Module
        The harness module the registers and properties go into.
    """

    def __init__(self, m):
        self.m = m
        self.rst = ResetSignal()
        # The first cycle counts as "just after reset": the Initial assumption below makes
        # it one, and in an induction step the registers start anywhere anyway.
        self.after_reset = self.past(self.rst, init=1)
        m.d.comb += Assume(~Initial() | self.rst)

    def past(self, value, init=0):
        """``value`` one cycle ago; reset-less, so it also sees the reset cycle itself."""
        reg = Signal(len(value), name="past", reset_less=True, init=init)
        self.m.d.sync += reg.eq(value)
        return reg

    def fire(self, port):
        """A beat moves on ``port`` in this cycle."""
        return port.valid & port.ready & ~self.rst

    def drive_input(self, port):
        """Drive the input stream ``port`` from free values that keep the stream rules:
        once valid, it stays valid with the same payload until it is taken."""
        m = self.m
        valid, payload = AnySeq(1), AnySeq(len(Value.cast(port.payload)))
        m.d.comb += [port.valid.eq(valid), port.payload.eq(payload)]
        stalled = self.past(port.valid & ~port.ready & ~self.rst)
        held = self.past(Value.cast(port.payload))
        with m.If(stalled):
            m.d.comb += Assume(port.valid & (Value.cast(port.payload) == held))

    def check_output(self, port):
        """Take the output stream ``port`` with a free ``ready`` and assert its rules:
        ``valid`` stays high with the payload unchanged until the beat is taken, and the
        cycle after a reset the stream is idle. A ``Cover`` of a stalled beat being taken
        shows that a bounded proof's bound reaches these assertions."""
        m = self.m
        m.d.comb += port.ready.eq(AnySeq(1))
        stalled = self.past(port.valid & ~port.ready & ~self.rst)
        held = self.past(Value.cast(port.payload))
        with m.If(stalled):
            m.d.comb += Assert(port.valid)
            m.d.comb += Assert(Value.cast(port.payload) == held)
        with m.If(self.after_reset):
            m.d.comb += Assert(~port.valid)
        m.d.comb += Cover(stalled & self.fire(port))

    def count(self, fire_in, fire_out, bound, *, name="inflight"):
        """Count beats in minus beats out; assert it never goes negative (no beat out of
        nothing: nothing duplicated) and never exceeds ``bound`` (nothing held back beyond
        the block's capacity). Returns the counter."""
        m = self.m
        inflight = Signal(range(bound + 2), name=name)
        m.d.sync += inflight.eq(inflight + fire_in - fire_out)
        m.d.comb += Assert(inflight <= bound)
        with m.If(fire_out & ~fire_in):
            m.d.comb += Assert(inflight != 0)
        return inflight

    def tracked_beat(self, fire_in, fire_out, inflight, payload, value):
        """Pick one input beat freely (``AnySeq``) and follow it to the output.

        The picked beat's ``payload`` is assumed to equal ``value`` (free ``AnyConst``
        fields, so every payload is covered); returns the condition "the picked beat
        leaves now", under which the harness asserts the output against the golden result
        of ``value``. One golden computation then covers the whole trace, and proving it
        for any pick proves that the n-th output beat is the n-th input's result: in
        order, none lost, none duplicated. ``inflight`` is :meth:`count`'s counter.
        """
        m = self.m
        pick = AnySeq(1)
        picked = Signal()               # at most one pick between resets
        pending = Signal()              # picked and not out yet
        ahead = Signal.like(inflight)   # beats in front of it still to leave
        take = fire_in & pick & ~picked
        with m.If(take):
            m.d.comb += Assume(payload == value)
            m.d.sync += [picked.eq(1), pending.eq(1), ahead.eq(inflight - fire_out)]
        with m.Elif(pending & fire_out):
            m.d.sync += ahead.eq(ahead - 1)
            with m.If(ahead == 0):
                m.d.sync += pending.eq(0)
        return pending & fire_out & (ahead == 0)


class Harness(Elaboratable):
    """Base of the property harnesses: ``dut`` plus the properties ``elaborate`` adds.

    Subclasses set ``mode`` and ``depth`` (the SymbiYosys job that proves them) and
    implement ``properties(m, rules)``.
    """

    mode = "bmc"
    depth = 10

    def __init__(self, dut):
        self.dut = dut

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = self.dut
        self.properties(m, StreamRules(m))
        return m


class StreamHarness(Harness):
    """The stream rules on every output of ``dut`` and every output idle after reset, with
    every input stream driven by free values that keep the rules."""

    def properties(self, m, rules):
        inputs, outputs = streams(self.dut)
        for port in inputs:
            rules.drive_input(port)
        for port in outputs:
            rules.check_output(port)
