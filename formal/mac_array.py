"""Properties of the MAC array (:class:`qdp.hdl.MacArray`), stated on its ports.

One bounded proof from reset (k-induction does not close at port level: the drain's
shadow registers can start in states no input sequence reaches) of :class:`MacArrayTiles`:
the stream rules on ``o`` and an idle output after reset, for any input; tiles in (input beats with ``last``) minus tiles out (output
  beats with ``last``) never goes negative and stays within two (one accumulating, one
  draining); every output tile is ``rows`` beats, ``first`` on the first, ``last`` on the
  last.
"""

from amaranth.hdl import Assert, Signal

from .runner import Proof
from .stream import Harness

__all__ = ["REFERENCE", "MacArrayTiles", "proofs"]

#: The reference configuration of the proofs in CI.
REFERENCE = {"rows": 2, "cols": 2, "a_width": 4, "b_width": 4, "acc_width": 16}


class MacArrayTiles(Harness):
    """Tile accounting and the shape of every output tile."""

    def properties(self, m, rules):
        dut = self.dut
        rules.drive_input(dut.i)
        rules.check_output(dut.o)
        fire_in, fire_out = rules.fire(dut.i), rules.fire(dut.o)
        rules.count(fire_in & dut.i.payload.last, fire_out & dut.o.payload.last, 2,
                    name="tiles")
        row = Signal(range(dut.rows), name="out_row")
        with m.If(fire_out):
            m.d.comb += [
                Assert(dut.o.payload.first == (row == 0)),
                Assert(dut.o.payload.last == (row == dut.rows - 1)),
            ]
            m.d.sync += row.eq(0 if dut.rows == 1 else
                               (row + 1) % dut.rows)


def proofs(build):
    """The proofs of one MAC array configuration; ``build()`` makes a fresh MacArray."""
    return [
        Proof("stream rules, idle after reset, tiles in = out, tile shape",
              lambda: MacArrayTiles(build()), "bmc", 12),
    ]
