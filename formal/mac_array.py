"""Properties of the MAC array (:class:`qdp.hdl.MacArray`), stated on its ports.

One bounded proof from reset (k-induction does not close at port level: the drain's
shadow registers can start in states no input sequence reaches) of :class:`MacArrayTiles`:
the stream rules on ``o`` and an idle output after reset, for any input; a freely picked
tile of up to ``max_k`` k-steps with free operands comes out as the exact sums of products
(compared as integers at a width no such sum leaves, so no accumulator wrapped); tiles in
(input beats with ``last``) minus tiles out (output beats with ``last``) never goes
negative and stays within two (one accumulating, one draining); every output tile is
``rows`` beats, ``first`` on the first, ``last`` on the last. ``Cover``s of the picked
tile's last row and of a stalled beat taken show that the bound reaches them (else the
proof is reported vacuous).
"""

from amaranth.asserts import AnyConst, AnySeq
from amaranth.hdl import Assert, Assume, Cover, Mux, Signal, signed, unsigned

from .runner import Proof
from .stream import Harness

__all__ = ["REFERENCE", "MacArrayTiles", "proofs"]

#: The reference configuration of the proofs in CI.
REFERENCE = {"rows": 2, "cols": 2, "a_width": 4, "b_width": 4, "acc_width": 16}


class MacArrayTiles(Harness):
    """Tile accounting, the shape of every output tile, and the arithmetic of one freely
    picked tile of ``K <= max_k`` k-steps with free operands (``AnyConst``)."""

    def __init__(self, dut, *, max_k=2):
        super().__init__(dut)
        self.max_k = max_k

    def properties(self, m, rules):
        dut = self.dut
        rules.drive_input(dut.i)
        rules.check_output(dut.o)
        fire_in, fire_out = rules.fire(dut.i), rules.fire(dut.o)
        tile_in = fire_in & dut.i.payload.last
        tile_out = fire_out & dut.o.payload.last
        tiles = rules.count(tile_in, tile_out, 2, name="tiles")
        row = Signal(range(dut.rows), name="out_row")
        with m.If(fire_out):
            m.d.comb += [
                Assert(dut.o.payload.first == (row == 0)),
                Assert(dut.o.payload.last == (row == dut.rows - 1)),
            ]
            m.d.sync += row.eq(Mux(row == dut.rows - 1, 0, row + 1))

        # The picked tile: K free in 1..max_k, operands free constants.
        a_shape = signed(dut.a_width) if dut.a_signed else unsigned(dut.a_width)
        b_shape = signed(dut.b_width) if dut.b_signed else unsigned(dut.b_width)
        a = [[AnyConst(a_shape) for _ in range(dut.rows)] for _ in range(self.max_k)]
        b = [[AnyConst(b_shape) for _ in range(dut.cols)] for _ in range(self.max_k)]
        k_last = AnyConst(range(self.max_k))
        m.d.comb += Assume(k_last < self.max_k)
        a_zero, b_zero = self._zeros(dut.a_zero, dut.rows), self._zeros(dut.b_zero, dut.cols)
        # The exact sums, at a width no sum of max_k products can leave: equality with the
        # acc_width-bit output then also says no accumulator wrapped or saturated.
        exact = [[Signal(signed(dut.a_width + dut.b_width + 2 + self.max_k),
                         name=f"exact_{r}_{c}") for c in range(dut.cols)]
                 for r in range(dut.rows)]
        for r in range(dut.rows):
            for c in range(dut.cols):
                terms = [Mux(k <= k_last, (a[k][r] - a_zero[r]) * (b[k][c] - b_zero[c]), 0)
                         for k in range(self.max_k)]
                m.d.comb += exact[r][c].eq(sum(terms))

        pick = AnySeq(1)
        at_start = Signal(init=1, name="in_tile_start")
        with m.If(fire_in):
            m.d.sync += at_start.eq(dut.i.payload.last)
        picked = Signal()
        filling = Signal()
        k = Signal(range(self.max_k), name="picked_k")
        pending = Signal()
        ahead = Signal.like(tiles)
        take = fire_in & at_start & pick & ~picked
        with m.If(take | (filling & fire_in)):
            kk = Mux(take, 0, k)
            for step in range(self.max_k):
                with m.If(kk == step):
                    m.d.comb += Assume(dut.i.payload.last == (k_last == step))
                    for r in range(dut.rows):
                        m.d.comb += Assume(dut.i.payload.a[r] == a[step][r])
                    for c in range(dut.cols):
                        m.d.comb += Assume(dut.i.payload.b[c] == b[step][c])
            m.d.sync += k.eq(kk + 1)
        with m.If(take):
            m.d.sync += [picked.eq(1), filling.eq(1)]
        with m.If(tile_in & (take | filling)):
            m.d.sync += [filling.eq(0), pending.eq(1), ahead.eq(tiles - tile_out)]
        with m.Elif(pending & tile_out):
            m.d.sync += ahead.eq(ahead - 1)
            with m.If(ahead == 0):
                m.d.sync += pending.eq(0)
        with m.If(pending & fire_out & (ahead == 0)):
            for r in range(dut.rows):
                with m.If(row == r):
                    for c in range(dut.cols):
                        m.d.comb += Assert(dut.o.payload.data[c] == exact[r][c])
        # The picked tile's last row leaves within the bound (else the proof is vacuous).
        m.d.comb += Cover(pending & tile_out & (ahead == 0))

    @staticmethod
    def _zeros(zero, n):
        return list(zero) if isinstance(zero, (list, tuple)) else [zero] * n


def proofs(build, *, max_k=1):
    """The proofs of one MAC array configuration; ``build()`` makes a fresh MacArray.

    The bound lets the picked tile (``max_k`` k-steps, behind at most one other) drain
    all its rows: ``latency + max_k + rows + 2`` cycles.
    """
    dut = build()
    dut._MustUse__silence = True            # built only to read its parameters
    if dut.runtime_zero:
        raise ValueError("mac-array: the formal proofs take constant zero points "
                         "(no --runtime-zero)")
    if dut.a_width + dut.b_width > 8 or dut.rows * dut.cols > 4:
        raise ValueError(f"mac-array: {dut.rows}x{dut.cols} PEs of {dut.a_width}x"
                         f"{dut.b_width}-bit products are too large for the formal proofs "
                         f"(allowed rows * cols <= 4, a_width + b_width <= 8)")
    return [
        Proof(f"stream rules, idle after reset, tiles in = out, tile shape, "
              f"C = sum of products for K <= {max_k} without overflow",
              lambda: MacArrayTiles(build(), max_k=max_k), "bmc",
              dut.latency + max_k + dut.rows + 2),
    ]
