"""The MAC array: an output-stationary ``rows x cols`` integer matrix-multiply engine."""

from dataclasses import dataclass

from amaranth.hdl import Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ._checks import check_bool, check_choice, check_int, check_ints
from .dsp import DSPMultiplier

__all__ = ["DATAFLOWS", "MacArray"]

DATAFLOWS = ("broadcast", "systolic")

# The name Amaranth gives a Signal whose variable its tracer cannot find. A few of the
# array's registers (the operand stage's valid/last, the output FIFO's pointers, the
# stalling array's product valid) have carried it since they were created in tuple
# assignments; naming them would rename them in the generated Verilog.
_UNNAMED = "$signal"


def _range(width, is_signed):
    return ((-(1 << (width - 1)), (1 << (width - 1)) - 1) if is_signed
            else (0, (1 << width) - 1))


def _shape_for(lo, hi):
    """The smallest shape holding every integer in [lo, hi]."""
    if lo >= 0:
        return unsigned(max(1, hi.bit_length()))
    return signed(_signed_bits(lo, hi))


def _signed_bits(lo, hi):
    """Bits of the smallest two's complement range holding [lo, hi]."""
    bits = 1
    while not (-(1 << (bits - 1)) <= lo and hi <= (1 << (bits - 1)) - 1):
        bits += 1
    return bits


class MacArray(wiring.Component):
    """An output-stationary ``rows x cols`` MAC array:
    ``C = R(sum_k (A[:, k] - a_zero) * (B[k, :] - b_zero))``, one k-step per beat.

    The result equals :func:`qdp.golden.matmul_int` (without bias) for every input, bit
    for bit: ``R`` wraps every partial sum to ``acc_width`` bits, or with ``saturate``
    clips every partial sum (in the order the k-steps arrive).

    Dataflow (``dataflow``). Every processing element (PE) ``(r, c)`` owns one
    accumulator; the output stays put while the k-steps stream through.

    * ``"broadcast"``: A's column and B's row of each k-step go to all PEs of
      a row / column in the same cycle from one register per row / column. Lowest
      latency. The price is wire length: operand registers drive multipliers all over
      the die.
    * ``"systolic"`` (default): row r of A is delayed r cycles, column c of B c
      cycles, then A moves one PE right and B one PE down per cycle (valid/last travel
      with A), so PE ``(r, c)`` sees k-step n at cycle ``n + r + c`` from a neighbour's
      register. The array never stalls (a stall would freeze a half-finished wave);
      instead a tile's last beat waits at the input until the previous tile has
      finished its wave and drained. ``rows * cols * (a + b + 2)`` more flip-flops, no
      operand wire longer than one PE, and every PE has its own control registers: the
      default, because no register drives operands across the array.

    Pipelining (``pipelined``, default true). Every multiply is a :class:`DSPMultiplier`
    (operand, pipeline and output registers: on ECP5 the MULT18X18D's own, see
    :mod:`qdp.hdl.dsp`; export with ``target="ecp5"``) followed by a fabric product
    register, so no path runs through a multiplier or along the route from the DSP
    column to the accumulator. The product register holds zero unless its product is
    valid, so the accumulators add on every cycle without an enable. Without
    ``saturate`` an accumulator never restarts either: it wraps, and a tile's sum is
    its value after the tile's last product less its value after the previous tile's
    (a ``mark`` register per PE), exact modulo ``2**acc_width``; that difference gets a
    register of its own, which the shadow registers load a cycle later. So the
    accumulator's carry chain has no control input and drives only the accumulator's
    flip-flops, which nextpnr packs into the carry chain's slices. (With ``saturate`` a
    tile restarts by loading its first product instead of adding it, and the finished
    sum moves to the same extra register.) The array then never stalls in either
    dataflow: no enable fans out from the output's ``ready`` to every register. A
    tile's last beat waits at the input instead (as in the systolic dataflow), and row
    0 of the drain goes into a two-entry output FIFO whose fill level, not
    ``o.ready``, moves the shadow registers; ``o.ready`` only moves the FIFO's read
    pointer. Six more cycles of latency: the DSP's two extra stages, the fabric
    register, the register between accumulator and shadow, the shadow's load, the
    FIFO. With ``pipelined`` false the product is one fabric register behind a
    combinational multiplier (Yosys's MULT18X18D with its registers off), and the
    broadcast array stalls as a whole on one enable.

    ========================  =======================  =======================
    latency (cycles)          ``pipelined=False``       ``pipelined=True``
    ========================  =======================  =======================
    ``broadcast``             3                        9
    ``systolic``              ``rows + cols + 2``      ``rows + cols + 8``
    ========================  =======================  =======================

    Drain overlap. Every PE has a second, *shadow* register. The beat with ``last`` set
    moves each finished sum into the shadow registers and restarts the accumulators at
    zero in the same cycle (pipelined: see above), so the next tile's first k-step
    accumulates one cycle later.
    The shadow registers form a shift register of ``rows`` rows that drains one row
    (``cols`` lanes) per output beat while the array computes the next tile. The array
    waits only when a tile finishes before the previous one has drained. With a ready
    output it never waits (``rows * cols`` useful MACs on every cycle that an input beat
    arrives) for K >= rows (broadcast, not pipelined), K >= ``latency + rows - 1``
    (systolic, not pipelined: ``2 rows + cols + 1``) or K >= ``latency + rows - 2``
    (pipelined: ``rows + 7`` broadcast, ``2 rows + cols + 6`` systolic).

    Parameters
    ----------
    rows, cols : int
        Array shape, 1..32: ``rows`` values of A and ``cols`` values of B per beat, a
        ``rows x cols`` result tile.
    a_width, b_width : int
        Operand widths, 2..8.
    a_signed, b_signed : bool
        Operand signedness.
    acc_width : int
        Accumulator width, 16..48; must hold every single product (so e.g. int8 x int8
        with zero points needs 17 bits).
    saturate : bool
        Clip every partial sum to the ``acc_width`` range instead of wrapping.
    runtime_zero : bool
        If true, zero points arrive with every beat (``a_zero``: one per row,
        ``b_zero``: one per column, in the operand's own shape); keep them constant within
        a tile. If false, they are the constants below.
    a_zero, b_zero : int or sequence of int
        Constant zero points: one value, or one per row of A (``rows`` values) / per
        column of B (``cols`` values); each fits its operand's type. 0 (the default) adds
        no subtractor.
    dataflow : str
        ``"broadcast"`` or ``"systolic"``, see Dataflow above; both compute the same
        results.
    pipelined : bool
        Registered DSP multiplier tiles, a never-stalling array and an output FIFO; see
        Pipelining above. Same results, six cycles more latency, and the Fmax of the
        ECP5 export is no longer set by the multiplier.

    Members
    -------
    i : ``In(stream.Signature(data.StructLayout(...)))``
        One k-step per beat: ``a`` (``ArrayLayout(a_shape, rows)``, the k-th column of
        A), ``b`` (``ArrayLayout(b_shape, cols)``, the k-th row of B), with
        ``runtime_zero`` also ``a_zero`` and ``b_zero`` (same layouts), and ``last``,
        set on the beat that closes the tile's K (any K >= 1).
    o : ``Out(stream.Signature(data.StructLayout(...)))``
        The result tile, one row per beat: ``data`` (``ArrayLayout(signed(acc_width),
        cols)``, row r of C), ``first`` (row 0) and ``last`` (row ``rows - 1``). Its
        first beat is taken ``latency`` cycles after the tile's last input beat when
        ``o.ready`` is high. ``i.ready`` may depend on ``i.payload.last`` (systolic or
        pipelined) and, not pipelined, on ``o.ready`` in the same cycle (when the
        drain's last row leaving frees the shadow registers).
    """

    #: The range of each integer parameter, ``(lo, hi)`` inclusive: the checks in
    #: ``__init__`` and ``qdp list`` read it.
    RANGES = {"rows": (1, 32), "cols": (1, 32), "a_width": (2, 8), "b_width": (2, 8),
              "acc_width": (16, 48)}

    def __init__(self, *, rows=4, cols=4, a_width=8, a_signed=True, b_width=8, b_signed=True,
                 acc_width=32, saturate=False, runtime_zero=False, a_zero=0, b_zero=0,
                 dataflow="systolic", pipelined=True):
        self.rows = check_int("rows", rows, *self.RANGES["rows"])
        self.cols = check_int("cols", cols, *self.RANGES["cols"])
        self.a_width = check_int("a_width", a_width, *self.RANGES["a_width"])
        self.b_width = check_int("b_width", b_width, *self.RANGES["b_width"])
        self.a_signed = check_bool("a_signed", a_signed)
        self.b_signed = check_bool("b_signed", b_signed)
        self.acc_width = check_int("acc_width", acc_width, *self.RANGES["acc_width"])
        self.saturate = check_bool("saturate", saturate)
        self.runtime_zero = check_bool("runtime_zero", runtime_zero)
        self.dataflow = check_choice("dataflow", dataflow, DATAFLOWS)
        self.pipelined = check_bool("pipelined", pipelined)
        a_lo, a_hi = _range(a_width, a_signed)
        b_lo, b_hi = _range(b_width, b_signed)
        if runtime_zero:
            for name, value in (("a_zero", a_zero), ("b_zero", b_zero)):
                if value not in (0, None):
                    raise ValueError(f"{name}: with runtime_zero the zero points arrive in "
                                     f"the input payload; got the constant {value!r}")
            self.a_zero = self.b_zero = None
            # Any zero point of the operand's type: the difference spans both ways.
            da = (a_lo - a_hi, a_hi - a_lo)
            db = (b_lo - b_hi, b_hi - b_lo)
        else:
            self.a_zero = self._zeros("a_zero", a_zero, rows, "row of A", a_lo, a_hi)
            self.b_zero = self._zeros("b_zero", b_zero, cols, "column of B", b_lo, b_hi)
            az = self.a_zero if isinstance(self.a_zero, tuple) else (self.a_zero,)
            bz = self.b_zero if isinstance(self.b_zero, tuple) else (self.b_zero,)
            da = (a_lo - max(az), a_hi - min(az))
            db = (b_lo - max(bz), b_hi - min(bz))
        corners = [x * y for x in da for y in db]
        self.product_width = _signed_bits(min(corners), max(corners))
        if self.product_width > acc_width:
            raise ValueError(f"acc_width: {acc_width} bits cannot hold one product "
                             f"(range {min(corners)}..{max(corners)} needs "
                             f"{self.product_width}); allowed {self.product_width}..48")
        self._da_shape, self._db_shape = _shape_for(*da), _shape_for(*db)

        self.a_shape = signed(a_width) if a_signed else unsigned(a_width)
        self.b_shape = signed(b_width) if b_signed else unsigned(b_width)
        fields = {"a": data.ArrayLayout(self.a_shape, rows),
                  "b": data.ArrayLayout(self.b_shape, cols)}
        if runtime_zero:
            fields["a_zero"] = data.ArrayLayout(self.a_shape, rows)
            fields["b_zero"] = data.ArrayLayout(self.b_shape, cols)
        fields["last"] = 1
        out_layout = data.StructLayout({
            "data": data.ArrayLayout(signed(acc_width), cols), "first": 1, "last": 1})
        super().__init__({
            "i": In(stream.Signature(data.StructLayout(fields))),
            "o": Out(stream.Signature(out_layout)),
        })

    @staticmethod
    def _zeros(name, value, count, what, lo, hi):
        values = check_ints(name, value, count, what)
        for v in values:
            if not lo <= v <= hi:
                raise ValueError(f"{name}: {v!r} does not fit the operand type "
                                 f"(allowed {lo}..{hi})")
        return values[0] if isinstance(value, int) else tuple(values)

    @property
    def lanes(self):
        """Elements per output beat (one row of the result tile)."""
        return self.cols

    @property
    def latency(self):
        """Cycles from taking a tile's last input beat to its first output beat (with the
        output ready): operand register, product register, accumulate into the shadow;
        systolic adds the operand forwarding register and the ``rows + cols - 2``-cycle
        wave across the array; pipelined adds six (see Pipelining)."""
        # Pipelined: the DSP tile's three stages and a fabric register instead of one
        # product register, the register behind the accumulator that the shadow loads
        # from, the shadow's load, the output FIFO.
        extra = DSPMultiplier.latency + 3 if self.pipelined else 0
        if self.dataflow == "systolic":
            return self.rows + self.cols + 2 + extra
        return 3 + extra

    @property
    def throughput(self):
        """Sustained input beats (k-steps, ``rows * cols`` MACs each) per cycle, for
        K >= rows; shorter tiles are limited by the drain to K / rows."""
        return 1

    # What `latency` counts, as tests/test_mac_array_amaranth.py and tests/test_manifest.py
    # measure it.
    latency_definition = {
        "from_stream": "i",
        "from": "the cycle in which a tile's last beat (last = 1) is accepted on i",
        "to_stream": "o",
        "to": "the cycle in which that tile's first row (first = 1) is valid on o; its "
              "other rows follow one per cycle",
        "when": "o.ready held high and the previous tile drained",
    }

    @property
    def ready_dependencies(self):
        """``{"i": ("o",)}`` when not pipelined (the drain's last row leaving frees the
        shadow registers for a waiting last beat in the same cycle), else ``{"i": ()}``
        (``o.ready`` only moves the output FIFO's read side)."""
        return {"i": () if self.pipelined else ("o",)}

    @property
    def dsp_tiles(self):
        """Registered multiplier tiles (MULT18X18D in the ECP5 export): one per PE when
        pipelined."""
        return self.rows * self.cols if self.pipelined else 0

    def elaborate(self, platform):
        m = Module()
        drain = self._drain(m)
        control = self._input_control(m, drain.drained)
        da, db, flags = self._operand_registers(m, control)
        if self.dataflow == "systolic":
            operands = self._systolic_operands(m, da, db, flags)
        else:
            operands = self._broadcast_operands(da, db, flags)
        shadow, finish = self._pes(m, operands, control, drain.shift_row)
        self._drain_rows(m, drain, shadow)
        self._drain_control(m, drain, finish)
        self._pending_control(m, control, finish)
        return m

    @property
    def _mul_latency(self):
        """Cycles from the operands at a PE to its product register: the DSP tile and a
        fabric register (pipelined, so that the route from the DSP column to the
        accumulator has a cycle of its own), else the product register only."""
        return DSPMultiplier.latency + 1 if self.pipelined else 1

    # -- Drain: the shadow tile leaves one row per beat ------------------------------------

    def _drain(self, m):
        """The drain's state and, pipelined, its output FIFO's read side."""
        rows = self.rows
        remaining = Signal(range(rows + 1), name="remaining")
        if self.pipelined:
            # Registers, their next values computed in `_drain_control`: `shift` for the
            # drain's own counters, and copies with the same meaning for each row of
            # shadow registers, so that no enable is a LUT behind the counters and no
            # register drives both the counters and thousands of enables.
            shift = Signal(name="shift")
            fifo = self._output_fifo(m, shift)
            shift_row = [Signal(name=f"shift_row{r}") for r in range(rows)]
        else:
            shift = self.o.valid & self.o.ready
            m.d.comb += [
                self.o.valid.eq(remaining != 0),
                self.o.payload.first.eq(remaining == rows),
                self.o.payload.last.eq(remaining == 1),
            ]
            fifo, shift_row = None, [shift] * rows
        drained = (remaining == 0) | ((remaining == 1) & shift)
        return _Drain(remaining=remaining, shift=shift, shift_row=shift_row,
                      drained=drained, fifo=fifo)

    def _output_fifo(self, m, shift):
        """Pipelined: row 0 goes into a two-entry output FIFO, not to the port, so that
        ``o.ready`` drives only the FIFO's read side, never the shadow registers'
        enables. ``shift`` writes an entry."""
        out_layout = self.o.payload.shape()
        entries = [Signal(out_layout, name=f"out{n}") for n in range(2)]
        count = Signal(range(3), name="count")
        wr, rd = Signal(name=_UNNAMED), Signal(name=_UNNAMED)
        # Copies of "write entry n on this cycle", registers like `shift`.
        write = [Signal(name=f"write{n}") for n in range(2)]
        pop = self.o.valid & self.o.ready
        with m.If(pop):
            m.d.sync += rd.eq(~rd)
        m.d.sync += count.eq(count + shift - pop)
        m.d.comb += [self.o.valid.eq(count != 0),
                     self.o.payload.eq(Mux(rd, entries[1], entries[0]))]
        return _OutputFifo(entries=entries, count=count, wr=wr, rd=rd, write=write, pop=pop)

    def _drain_rows(self, m, drain, shadow):
        """Row 0 of the shadow registers to the output (pipelined: into the FIFO)."""
        fifo = drain.fifo
        if fifo is None:
            for c in range(self.cols):
                m.d.comb += self.o.payload.data[c].eq(shadow[0][c])
            return
        with m.If(drain.shift):
            m.d.sync += fifo.wr.eq(~fifo.wr)
        for n in range(2):
            with m.If(fifo.write[n]):
                m.d.sync += [fifo.entries[n].first.eq(drain.remaining == self.rows),
                             fifo.entries[n].last.eq(drain.remaining == 1),
                             *[fifo.entries[n].data[c].eq(shadow[0][c])
                               for c in range(self.cols)]]

    def _drain_control(self, m, drain, finish):
        """Count the rows left; pipelined, also compute the next cycle's shift enables."""
        rows = self.rows
        with m.If(finish):
            m.d.sync += drain.remaining.eq(rows)
        with m.Elif(drain.shift):
            m.d.sync += drain.remaining.eq(drain.remaining - 1)
        fifo = drain.fifo
        if fifo is None:
            return
        # Shift on the next cycle if a row will be left and the FIFO not full.
        # `occupied` is `remaining` as a thermometer code (bit r: row r holds a result),
        # so that every next value is a few gates, not a carry chain.
        shift, pop, count = drain.shift, fifo.pop, fifo.count
        occupied = Signal(rows, name="occupied")
        occupied_next = Mux(finish, (1 << rows) - 1, Mux(shift, occupied >> 1, occupied))
        full_next = Mux(count == 2, ~pop | shift, (count == 1) & shift & ~pop)
        shift_next = occupied_next[0] & ~full_next
        m.d.sync += [occupied.eq(occupied_next), shift.eq(shift_next)]
        # Rows without a result may shift or not, the same; and the copies differ in
        # logic, so Yosys keeps them apart.
        m.d.sync += [drain.shift_row[r].eq(shift_next & occupied_next[r]) for r in range(rows)]
        m.d.sync += [fifo.write[n].eq(shift_next & ((fifo.wr ^ shift) == n)) for n in range(2)]

    # -- Input: when a beat may enter --------------------------------------------------------

    def _input_control(self, m, drained):
        """``i.ready``, and the array's enable if it has one."""
        last = self.i.payload.last
        if self.dataflow == "systolic" or self.pipelined:
            # The array never stops (no enable to fan out, and a wave of finishing PEs
            # can always complete). Instead a tile's last beat is held at the input until
            # the previous tile has both finished and drained, so it meets free shadow
            # registers. Other beats flow on meanwhile.
            pending = Signal(name="pending")        # a last beat is in the array
            m.d.comb += self.i.ready.eq(~last | (~pending & drained))
            return _InputControl(accept=self.i.valid & self.i.ready, enable=None,
                                 pending=pending, product=None)
        # Broadcast, not pipelined: one enable for everything. The only reason to stop
        # is a finished tile in the product stage that has no free shadow to go to.
        product = _Flags(valid=Signal(name=_UNNAMED), last=Signal(name="last2"))
        enable = Signal(name="enable")
        m.d.comb += [
            enable.eq(~(product.valid & product.last) | drained),
            self.i.ready.eq(enable),
        ]
        return _InputControl(accept=self.i.valid & self.i.ready, enable=enable,
                             pending=None, product=product)

    def _pending_control(self, m, control, finish):
        """Never-stalling arrays: ``pending`` is set from a last beat's entry until its
        tile has finished."""
        if control.pending is None:
            return
        with m.If(finish):
            m.d.sync += control.pending.eq(0)
        with m.Elif(control.accept & self.i.payload.last):
            m.d.sync += control.pending.eq(1)

    # -- Operands: zero-point correction and distribution to the PEs -------------------------

    def _corrected(self, kind, index):
        """Operand ``index`` of ``kind`` (``"a"`` or ``"b"``) less its zero point."""
        payload = self.i.payload
        if self.runtime_zero:
            zero = payload[f"{kind}_zero"][index]
        else:
            zero = getattr(self, f"{kind}_zero")
            zero = zero[index] if isinstance(zero, tuple) else zero
        value = payload[kind][index]
        return value - zero if not isinstance(zero, int) or zero else value

    def _operand_registers(self, m, control):
        """Stage 1: the zero-point-corrected operands, one register per row / column, and
        the beat's flags beside them."""
        da = [Signal(self._da_shape, name=f"da{r}") for r in range(self.rows)]
        db = [Signal(self._db_shape, name=f"db{c}") for c in range(self.cols)]
        flags = _Flags(valid=Signal(name=_UNNAMED), last=Signal(name=_UNNAMED))
        _register(m, control.enable, [
            flags.valid.eq(control.accept), flags.last.eq(self.i.payload.last),
            *[da[r].eq(self._corrected("a", r)) for r in range(self.rows)],
            *[db[c].eq(self._corrected("b", c)) for c in range(self.cols)]])
        return da, db, flags

    def _broadcast_operands(self, da, db, flags):
        """Every PE of row r multiplies ``da[r]``, every PE of column c ``db[c]``."""
        rows, cols = self.rows, self.cols
        return _Operands(a=[[da[r]] * cols for r in range(rows)], b=[db] * rows,
                         flags=[[flags] * cols for _ in range(rows)])

    def _systolic_operands(self, m, da, db, flags):
        """Skew and forward the operands: PE ``(r, c)`` sees k-step n at cycle
        ``n + r + c``. Row r of A waits r cycles, column c of B c cycles, then A moves
        one PE right and B one PE down per cycle; valid/last travel with A."""
        rows, cols = self.rows, self.cols
        a_op = [[None] * cols for _ in range(rows)]
        b_op = [[None] * cols for _ in range(rows)]
        pe_flags = [[None] * cols for _ in range(rows)]
        for r in range(rows):
            a_in = _delayed(m, da[r], r, f"a{r}_skew")
            f_in = _Flags(valid=_delayed(m, flags.valid, r, f"v{r}_skew"),
                          last=_delayed(m, flags.last, r, f"l{r}_skew"))
            for c in range(cols):
                a_reg = Signal(self._da_shape, name=f"a{r}_{c}")
                f_reg = _Flags(valid=Signal(name=f"v{r}_{c}"), last=Signal(name=f"l{r}_{c}"))
                m.d.sync += [a_reg.eq(a_in), f_reg.valid.eq(f_in.valid),
                             f_reg.last.eq(f_in.last)]
                a_op[r][c], pe_flags[r][c] = a_reg, f_reg
                a_in, f_in = a_reg, f_reg
        for c in range(cols):
            b_in = _delayed(m, db[c], c, f"b{c}_skew")
            for r in range(rows):
                b_reg = Signal(self._db_shape, name=f"b{r}_{c}")
                m.d.sync += b_reg.eq(b_in)
                b_op[r][c] = b_in = b_reg
        return _Operands(a=a_op, b=b_op, flags=pe_flags)

    # -- PEs: multiply, accumulate, shadow -----------------------------------------------

    def _pes(self, m, operands, control, shift_row):
        """Build every PE; return the shadow registers and the signal that the whole tile
        has finished (moved into the shadow registers)."""
        rows, cols = self.rows, self.cols
        shared = None
        if control.product is not None:
            shared = self._stalling_control(m, control, operands.flags[0][0])
        shadow = [[Signal(signed(self.acc_width), name=f"shadow{r}_{c}") for c in range(cols)]
                  for r in range(rows)]
        controls = {}
        for r in range(rows):
            for c in range(cols):
                pe = (shared if shared is not None else
                      self._pe_control(m, r, c, operands.flags[r][c], controls))
                product = self._product(m, r, c, operands.a[r][c], operands.b[r][c], pe,
                                        control.enable)
                loaded = self._accumulate(m, r, c, product, pe, control.enable)
                with m.If(pe.finish):
                    m.d.sync += shadow[r][c].eq(loaded)
                with m.Elif(shift_row[r]):
                    # Drain by shifting rows towards row 0, which feeds the output: a
                    # shift register needs no rows-to-1 multiplexer.
                    if r + 1 < rows:
                        m.d.sync += shadow[r][c].eq(shadow[r + 1][c])
        # The tile is complete when its last PE has finished: systolic, the far corner;
        # broadcast, all PEs at once (pipelined: row 0's control registers).
        if shared is not None:
            return shadow, shared.finish
        last_pe = (rows - 1, cols - 1) if self.dataflow == "systolic" else (0, 0)
        key, _ = self._control_key(*last_pe)
        return shadow, controls[key].finish

    def _stalling_control(self, m, control, flags):
        """Broadcast, not pipelined: valid/last beside the product register, under the
        array's enable, shared by every PE."""
        product = control.product
        _register(m, control.enable, [product.valid.eq(flags.valid),
                                      product.last.eq(flags.last)])
        return _PEControl(valid=product.valid, last=product.last,
                          finish=control.enable & product.valid & product.last)

    def _control_key(self, r, c):
        """Which PEs share control registers: systolic, none (each PE sees its own
        cycle); broadcast pipelined, the PEs of one row (so that each set drives the
        enables of one row only)."""
        if self.dataflow == "systolic" or not self.pipelined:
            return (r, c), f"{r}_{c}"
        return r, f"{r}"

    def _pe_control(self, m, r, c, flags, controls):
        """The control registers of PE ``(r, c)``, built by the first PE that uses them:
        ``flags`` delayed to the product register (``valid``, ``last``) and, pipelined,
        ``done`` (the finished sum is in the accumulator), ``finish`` (``taken``, a cycle
        later: it moves to the shadow) and ``valid_m`` (beside the DSP's output)."""
        key, tag = self._control_key(r, c)
        if key in controls:
            return controls[key]
        mul_latency = self._mul_latency
        # (Pipelined, these two are not read -- the PE uses `done` and `valid_m` -- and
        # stay registers without a load, which synthesis removes.)
        valid = _delayed(m, flags.valid, mul_latency, f"pvalid{tag}_d")
        last = _delayed(m, flags.last, mul_latency, f"plast{tag}_d")
        if not self.pipelined:
            controls[key] = _PEControl(valid=valid, last=last, finish=valid & last)
            return controls[key]
        # valid & last, a register beside `valid`, and the same one and two cycles later.
        # Yosys merges identical control registers of PEs at the same delay from the
        # input (systolic: one anti-diagonal), so such a flag may reach across the array.
        finish_src = Signal(name=f"finish_src{tag}")
        m.d.comb += finish_src.eq(flags.valid & flags.last)
        finish = _delayed(m, finish_src, mul_latency, f"pfinish{tag}_d")
        done, taken = Signal(name=f"done{tag}"), Signal(name=f"taken{tag}")
        m.d.sync += [done.eq(finish), taken.eq(done)]
        valid_m = _delayed(m, flags.valid, mul_latency - 1, f"mvalid{tag}_d")
        controls[key] = _PEControl(valid=valid, last=last, finish=taken, done=done,
                                   valid_m=valid_m)
        return controls[key]

    def _product(self, m, r, c, a, b, pe, enable):
        """The product register of PE ``(r, c)``: ``a * b``."""
        if not self.pipelined:
            # A product register: Yosys folds it into no DSP register on ECP5.
            product = Signal(signed(self.product_width), name=f"p{r}_{c}")
            _register(m, enable, [product.eq(a * b)])
            return product
        m.submodules[f"mul{r}_{c}"] = mul = DSPMultiplier(self._da_shape, self._db_shape)
        m.d.comb += [mul.a.eq(a), mul.b.eq(b), mul.en.eq(1)]
        product = Signal(mul.p_shape, name=f"p{r}_{c}")
        # Zero unless valid (the flip-flops' synchronous reset): the accumulator then
        # adds every cycle and needs no enable.
        m.d.sync += product.eq(Mux(pe.valid_m, mul.p, 0))
        return product

    def _accumulate(self, m, r, c, product, pe, enable):
        """The accumulator of PE ``(r, c)``; returns the value the shadow register loads
        when ``pe.finish`` is set: the tile's sum."""
        acc = Signal(signed(self.acc_width), name=f"acc{r}_{c}")
        if self.pipelined and not self.saturate:
            return self._accumulate_free(m, r, c, acc, product, pe)
        if self.pipelined:
            return self._accumulate_restarting(m, r, c, acc, product, pe)
        return self._accumulate_enabled(m, r, c, acc, product, pe, enable)

    def _accumulate_free(self, m, r, c, acc, product, pe):
        """Pipelined, wrapping: the accumulator never restarts. It adds every cycle,
        wrapping, and a tile's sum is its value at the end less its value at the end of
        the previous tile (``mark``), exact modulo ``2**acc_width``. So the carry chain has
        no control input and drives the accumulator's flip-flops only, which then share
        slices with it; the subtraction has a register of its own (``diff``), which the
        shadow loads a cycle later."""
        mark = Signal(acc.shape(), name=f"mark{r}_{c}")
        diff = Signal(acc.shape(), name=f"diff{r}_{c}")
        m.d.sync += [acc.eq(acc + product), diff.eq(acc - mark)]
        with m.If(pe.done):
            m.d.sync += mark.eq(acc)
        return diff

    def _accumulate_restarting(self, m, r, c, acc, product, pe):
        """Pipelined, saturating: every tile restarts at zero, by loading the next tile's
        first product instead of adding it, while the finished sum moves on to ``held``
        (the same latency as :meth:`_accumulate_free`)."""
        lo, hi = _range(self.acc_width, True)
        total = Mux(pe.done, 0, acc) + product
        held = Signal(acc.shape(), name=f"held{r}_{c}")
        m.d.sync += [acc.eq(Mux(total > hi, hi, Mux(total < lo, lo, total))), held.eq(acc)]
        return held

    def _accumulate_enabled(self, m, r, c, acc, product, pe, enable):
        """Not pipelined: the accumulator adds a valid product (under the array's
        enable, if it has one), and a finished tile restarts at zero: the next k-step (in
        the product register on the next cycle) accumulates without a gap. The shadow
        loads the sum with the last product added."""
        total = acc + product                               # acc_width + 1 bits: exact
        if self.saturate:
            lo, hi = _range(self.acc_width, True)
            total = Mux(total > hi, hi, Mux(total < lo, lo, total))
        nxt = Signal(acc.shape(), name=f"next{r}_{c}")
        m.d.comb += nxt.eq(total)                           # keeps the low acc_width bits
        with m.If(pe.valid if enable is None else enable & pe.valid):
            m.d.sync += acc.eq(Mux(pe.last, 0, nxt))
        return nxt


@dataclass
class _Flags:
    """A k-step's flags where a stage sees them."""
    valid: Value
    last: Value


@dataclass
class _Operands:
    """What each PE ``(r, c)`` multiplies in a cycle: ``a[r][c] * b[r][c]``, with the
    k-step's ``flags[r][c]``."""
    a: list
    b: list
    flags: list


@dataclass
class _PEControl:
    """The control of one PE (or of the PEs that share it)."""
    valid: Value                # the product register holds a valid product
    last: Value                 # ... of a tile's last k-step
    finish: Value               # the tile's sum moves into the shadow register
    done: Value = None          # pipelined: the tile's sum is in the accumulator
    valid_m: Value = None       # pipelined: valid beside the DSP's output register


@dataclass
class _InputControl:
    accept: Value               # an input beat moves
    enable: Value | None        # broadcast, not pipelined: the array's one enable
    pending: Value | None       # otherwise: a last beat is in the array
    product: _Flags | None      # broadcast, not pipelined: the product stage's flags


@dataclass
class _OutputFifo:
    """Pipelined: the two-entry FIFO between row 0 of the drain and ``o``."""
    entries: list               # the entries' payloads
    count: Value                # entries held
    wr: Value                   # the entry written next
    rd: Value                   # the entry read next (at ``o``)
    write: list                 # write entry n on this cycle (registers)
    pop: Value                  # an output beat moves


@dataclass
class _Drain:
    remaining: Value            # rows of the shadow tile still to go out
    shift: Value                # a row goes out (row 0 leaves, the others move up)
    shift_row: list             # the same, per row of shadow registers
    drained: Value              # no row left after this cycle
    fifo: _OutputFifo | None    # pipelined only


def _register(m, enable, statements):
    """Register ``statements``, under ``enable`` unless it is ``None``."""
    if enable is None:
        m.d.sync += statements
    else:
        with m.If(enable):
            m.d.sync += statements


def _delayed(m, value, cycles, name):
    """``value`` behind ``cycles`` registers named ``<name><n>``."""
    for n in range(cycles):
        reg = Signal.like(value, name=f"{name}{n}")
        m.d.sync += reg.eq(value)
        value = reg
    return value
