"""Deliberately broken blocks for the formal tests: a port-level wrapper injects one fault,
so the mutants survive any rewrite of a block's internals."""

from amaranth.hdl import Module, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In


class Mutant(wiring.Component):
    """``dut`` behind pass-through ports, with ``fault(m, dut, self)`` added to them.

    Parameters and attributes (``latency``, ``rounding``, ...) read through to ``dut``.
    """

    def __init__(self, dut, fault):
        self._dut, self._fault = dut, fault
        super().__init__(dut.signature)

    def __getattr__(self, name):
        if name.startswith("_") or name in self._dut.signature.members:
            raise AttributeError(name)
        return getattr(self._dut, name)

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = self._dut
        for name, member in self.signature.members.items():
            outer, inner = getattr(self, name), getattr(dut, name)
            if member.flow == In:
                m.d.comb += [inner.valid.eq(outer.valid), inner.payload.eq(outer.payload),
                             outer.ready.eq(inner.ready)]
            else:
                m.d.comb += [outer.valid.eq(inner.valid), inner.ready.eq(outer.ready)]
        self._fault(m, dut, self)
        return m


def payload_moves_while_stalled(port):
    """A fault: ``port``'s payload toggles its lowest bit every cycle it is stalled."""
    def fault(m, dut, outer):
        inner_port, outer_port = getattr(dut, port), getattr(outer, port)
        toggle = Signal()
        m.d.sync += toggle.eq(~toggle)
        stalled = inner_port.valid & ~inner_port.ready
        m.d.comb += Value.cast(outer_port.payload).eq(
            Value.cast(inner_port.payload) ^ (toggle & stalled))
    return fault


def payload_plus_one(port):
    """A fault: ``port``'s payload is one too large (wrapping), every beat."""
    def fault(m, dut, outer):
        m.d.comb += Value.cast(getattr(outer, port).payload).eq(
            Value.cast(getattr(dut, port).payload) + 1)
    return fault


def negate_lane(port, lane=0):
    """A fault: element ``lane`` of ``port``'s ``data`` is negated, every beat (a symmetric
    range such as absmax's ``[-qmax, qmax]`` still holds)."""
    def fault(m, dut, outer):
        inner, out = getattr(dut, port).payload, getattr(outer, port).payload
        m.d.comb += [Value.cast(out).eq(Value.cast(inner)),
                     out.data[lane].eq(-inner.data[lane])]
    return fault


def passthrough(port):
    """No fault on ``port``: its payload passes unchanged."""
    def fault(m, dut, outer):
        m.d.comb += Value.cast(getattr(outer, port).payload).eq(
            Value.cast(getattr(dut, port).payload))
    return fault


def drops_beat(port, beat):
    """A fault: beat number ``beat`` (from 0) of ``port`` is taken from the block but never
    offered outside: lost."""
    def fault(m, dut, outer):
        inner_port, outer_port = getattr(dut, port), getattr(outer, port)
        count = Signal(range(beat + 2))
        lost = inner_port.valid & (count == beat)
        with m.If(inner_port.valid & (inner_port.ready | lost) & (count <= beat)):
            m.d.sync += count.eq(count + 1)
        m.d.comb += [outer_port.valid.eq(inner_port.valid & ~lost),
                     inner_port.ready.eq(outer_port.ready | lost),
                     Value.cast(outer_port.payload).eq(Value.cast(inner_port.payload))]
    return fault
