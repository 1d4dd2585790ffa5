"""The MAC array: an output-stationary ``rows x cols`` integer matrix-multiply engine."""

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ._checks import check_bool, check_choice, check_int, check_ints
from .dsp import DSPMultiplier

__all__ = ["DATAFLOWS", "MacArray"]

DATAFLOWS = ("broadcast", "systolic")


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
      default because it is the fast one on ECP5 (see the numbers below).

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

    Measured on ECP5-85F speed 8, out of context (yosys ``synth_ecp5`` + nextpnr, int8,
    acc_width 32, seed 1), not pipelined: 4x4 broadcast 157 MHz (16 MULT18X18D, 910
    LUT4, 1351 FF); 8x8 broadcast 118 MHz (64 DSP, 3856 LUT4, 5256 FF), 8x8 systolic
    143 MHz (64 DSP, 3881 LUT4, 6759 FF). The critical path of all three is register ->
    routing -> the unregistered MULT18X18D -> the product register. Pipelined, exported
    with ``target="ecp5"`` (``qdp synth mac-array --rows 8 --cols 8 --target ecp5``),
    systolic: 4x4 313.6 MHz (16 DSP, 1721 LUT4, 3059 FF; critical path product register
    -> the accumulator's carry chain); 8x8 253.2 MHz (64 DSP, 6783 LUT4, 11484 FF;
    placement seeds 2 and 3: 249.7 and 262.0 MHz, both limited by a row's shift enable
    -> LUT -> the clock enables of that row's shadow registers, 2.7 ns of routing);
    16x16 needs 256 DSPs and does not fit the 85F (156). The 8x8's critical path is no
    longer in a PE's datapath but its control: a valid flag -> 1.7 ns of routing -> LUT
    -> 1.4 ns of routing -> the product register's synchronous reset (3.95 ns). Yosys
    merges the identical control registers of the PEs on one anti-diagonal (same delay
    from the input), so such a flag reaches PEs across the array. (Before the
    accumulator ran free, with the restart in its flip-flops' reset and a copy of the
    adder's output for the shadow, the 8x8 reached 206.7 MHz: the accumulator
    flip-flops could not share slices with their carry chain; restarting by loading
    the first product, a LUT in front of the carry chain, 202.7 MHz.) 8x8 broadcast (an
    earlier variant of the pipelined accumulator) reached 196-218 MHz, limited by
    control fan-out across the array.

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

    def __init__(self, *, rows=4, cols=4, a_width=8, a_signed=True, b_width=8, b_signed=True,
                 acc_width=32, saturate=False, runtime_zero=False, a_zero=0, b_zero=0,
                 dataflow="systolic", pipelined=True):
        self.rows = check_int("rows", rows, 1, 32)
        self.cols = check_int("cols", cols, 1, 32)
        self.a_width = check_int("a_width", a_width, 2, 8)
        self.b_width = check_int("b_width", b_width, 2, 8)
        self.a_signed = check_bool("a_signed", a_signed)
        self.b_signed = check_bool("b_signed", b_signed)
        self.acc_width = check_int("acc_width", acc_width, 16, 48)
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
        rows, cols, width = self.rows, self.cols, self.acc_width
        lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
        payload = self.i.payload
        systolic, pipelined = self.dataflow == "systolic", self.pipelined
        out_layout = self.o.payload.shape()

        # Drain state: `remaining` rows of the shadow tile are still to go out; `shift`
        # moves one out (row 0 leaves, the others move up).
        remaining = Signal(range(rows + 1))
        if pipelined:
            # Row 0 goes into a two-entry output FIFO, not to the port: o.ready then
            # drives only the FIFO's read side, never the shadow registers' enables.
            fifo = [Signal(out_layout, name=f"out{n}") for n in range(2)]
            count = Signal(range(3))
            wr, rd = Signal(), Signal()
            # Registers, their next values computed at the end: `shift` for the drain's
            # own counters, and copies with the same meaning for each row of shadow
            # registers and each FIFO entry, so that no enable is a LUT behind the
            # counters and no register drives both the counters and thousands of
            # enables.
            shift = Signal()
            shift_row = [Signal(name=f"shift_row{r}") for r in range(rows)]
            write = [Signal(name=f"write{n}") for n in range(2)]
            pop = self.o.valid & self.o.ready
            with m.If(pop):
                m.d.sync += rd.eq(~rd)
            m.d.sync += count.eq(count + shift - pop)
            m.d.comb += [self.o.valid.eq(count != 0),
                         self.o.payload.eq(Mux(rd, fifo[1], fifo[0]))]
        else:
            shift = self.o.valid & self.o.ready
            m.d.comb += [
                self.o.valid.eq(remaining != 0),
                self.o.payload.first.eq(remaining == rows),
                self.o.payload.last.eq(remaining == 1),
            ]
        drained = (remaining == 0) | ((remaining == 1) & shift)

        if systolic or pipelined:
            # The array never stops (no enable to fan out, and a wave of finishing PEs can
            # always complete). Instead a tile's last beat is held at the input until the
            # previous tile has both finished and drained, so it meets free shadow
            # registers. Other beats flow on meanwhile.
            enable = None
            pending = Signal()              # a last beat is in the array
            m.d.comb += self.i.ready.eq(~payload.last | (~pending & drained))
        else:
            # One enable for everything: the only reason to stop is a finished tile in
            # the product stage that has no free shadow to go to.
            valid2, last2 = Signal(), Signal()
            enable = Signal()
            m.d.comb += [
                enable.eq(~(valid2 & last2) | drained),
                self.i.ready.eq(enable),
            ]
        accept = self.i.valid & self.i.ready

        def sync(*statements):
            """Register ``statements``, under the array's enable if it has one."""
            if enable is None:
                m.d.sync += statements
            else:
                with m.If(enable):
                    m.d.sync += statements

        def zero(kind, index):
            if self.runtime_zero:
                return payload[f"{kind}_zero"][index]
            value = getattr(self, f"{kind}_zero")
            return value[index] if isinstance(value, tuple) else value

        def corrected(kind, index):
            z = zero(kind, index)
            x = payload[kind][index]
            return x - z if not isinstance(z, int) or z else x

        # Stage 1: zero-point-corrected operands, one register per row / column.
        da = [Signal(self._da_shape, name=f"da{r}") for r in range(rows)]
        db = [Signal(self._db_shape, name=f"db{c}") for c in range(cols)]
        valid1, last1 = Signal(), Signal()
        sync(valid1.eq(accept), last1.eq(payload.last),
             *[da[r].eq(corrected("a", r)) for r in range(rows)],
             *[db[c].eq(corrected("b", c)) for c in range(cols)])

        # The operands (and valid/last) each PE multiplies in a cycle.
        if systolic:
            a_op, b_op, flags = self._systolic_operands(m, da, db, valid1, last1)
        else:
            a_op = [[da[r]] * cols for r in range(rows)]
            b_op = [db] * rows
            flags = [[(valid1, last1)] * cols for _ in range(rows)]
        if not systolic and not pipelined:
            sync(valid2.eq(valid1), last2.eq(last1))
            finish = enable & valid2 & last2
        # Pipelined: the DSP tile, then a fabric product register, so that the route
        # from the DSP column to the accumulator has a cycle of its own.
        mul_latency = DSPMultiplier.latency + 1 if pipelined else 1

        acc_shape = signed(width)
        shadow = [[Signal(acc_shape, name=f"shadow{r}_{c}") for c in range(cols)]
                  for r in range(rows)]
        controls = {}
        for r in range(rows):
            for c in range(cols):
                if systolic or not pipelined:
                    key, tag = (r, c), f"{r}_{c}"
                else:
                    # Broadcast: one set of control registers per row, each driving the
                    # enables of one row of PEs only.
                    key, tag = r, f"{r}"
                if not systolic and not pipelined:
                    valid_p, last_p = valid2, last2
                elif key not in controls:
                    valid_p = _delayed(m, flags[r][c][0], mul_latency, f"pvalid{tag}_d")
                    last_p = _delayed(m, flags[r][c][1], mul_latency, f"plast{tag}_d")
                    controls[key] = valid_p, last_p
                else:
                    valid_p, last_p = controls[key]
                if pipelined and f"finish{tag}" not in controls:
                    # valid & last, a register beside valid_p, and the same one and two
                    # cycles later (`done`: the finished sum is in the accumulator).
                    finish_src = Signal(name=f"finish_src{tag}")
                    m.d.comb += finish_src.eq(flags[r][c][0] & flags[r][c][1])
                    finish_p = _delayed(m, finish_src, mul_latency, f"pfinish{tag}_d")
                    done = Signal(name=f"done{tag}")
                    taken = Signal(name=f"taken{tag}")
                    m.d.sync += [done.eq(finish_p), taken.eq(done)]
                    # valid beside the DSP's output register.
                    valid_m = _delayed(m, flags[r][c][0], mul_latency - 1, f"mvalid{tag}_d")
                    controls[f"finish{tag}"] = done, taken, valid_m
                if pipelined:
                    m.submodules[f"mul{r}_{c}"] = mul = DSPMultiplier(
                        self._da_shape, self._db_shape)
                    m.d.comb += [mul.a.eq(a_op[r][c]), mul.b.eq(b_op[r][c]), mul.en.eq(1)]
                    product = Signal(mul.p_shape, name=f"p{r}_{c}")
                    # Zero unless valid (the flip-flops' synchronous reset): the
                    # accumulator then adds every cycle and needs no enable.
                    m.d.sync += product.eq(Mux(controls[f"finish{tag}"][2], mul.p, 0))
                else:
                    # A product register: Yosys folds it into no DSP register on ECP5.
                    product = Signal(signed(self.product_width), name=f"p{r}_{c}")
                    sync(product.eq(a_op[r][c] * b_op[r][c]))
                acc = Signal(acc_shape, name=f"acc{r}_{c}")
                if pipelined and not self.saturate:
                    # The accumulator never restarts: it adds every cycle, wrapping, and
                    # a tile's sum is its value at the end less its value at the end of
                    # the previous tile (`mark`), exact modulo 2**acc_width. So the carry
                    # chain has no control input and drives the accumulator's flip-flops
                    # only, which then share slices with it; the subtraction has a
                    # register of its own (`diff`), which the shadow loads a cycle later.
                    done, taken, _ = controls[f"finish{tag}"]
                    mark = Signal(acc_shape, name=f"mark{r}_{c}")
                    diff = Signal(acc_shape, name=f"diff{r}_{c}")
                    m.d.sync += [acc.eq(acc + product), diff.eq(acc - mark)]
                    with m.If(done):
                        m.d.sync += mark.eq(acc)
                    finish_pe, loaded = taken, diff
                elif pipelined:
                    # Saturating: every tile restarts at zero, by loading the next
                    # tile's first product instead of adding it, while the finished sum
                    # moves on to `held` (same latency as above).
                    done, taken, _ = controls[f"finish{tag}"]
                    total = Mux(done, 0, acc) + product
                    held = Signal(acc_shape, name=f"held{r}_{c}")
                    m.d.sync += [acc.eq(Mux(total > hi, hi, Mux(total < lo, lo, total))),
                                 held.eq(acc)]
                    finish_pe, loaded = taken, held
                else:
                    total = acc + product                  # acc_width + 1 bits: exact
                    if self.saturate:
                        nxt = Mux(total > hi, hi, Mux(total < lo, lo, total))
                    else:
                        nxt = total
                    nxt_acc = Signal(acc_shape, name=f"next{r}_{c}")
                    m.d.comb += nxt_acc.eq(nxt)            # keeps the low acc_width bits
                    with m.If(valid_p if enable is None else enable & valid_p):
                        # A finished tile restarts at zero: the next k-step (in the
                        # product register on the next cycle) accumulates without a gap.
                        m.d.sync += acc.eq(Mux(last_p, 0, nxt_acc))
                    finish_pe = valid_p & last_p if systolic else finish
                    loaded = nxt_acc
                with m.If(finish_pe):
                    m.d.sync += shadow[r][c].eq(loaded)
                with m.Elif(shift_row[r] if pipelined else shift):
                    # Drain by shifting rows towards row 0, which feeds the output: a
                    # shift register needs no rows-to-1 multiplexer.
                    if r + 1 < rows:
                        m.d.sync += shadow[r][c].eq(shadow[r + 1][c])
                if (systolic and r == rows - 1 and c == cols - 1) or \
                        (pipelined and not systolic and r == 0 and c == 0):
                    finish = finish_pe                     # the tile is complete

        if pipelined:
            with m.If(shift):
                m.d.sync += wr.eq(~wr)
            for n in range(2):
                with m.If(write[n]):
                    m.d.sync += [fifo[n].first.eq(remaining == rows),
                                 fifo[n].last.eq(remaining == 1),
                                 *[fifo[n].data[c].eq(shadow[0][c]) for c in range(cols)]]
        else:
            for c in range(cols):
                m.d.comb += self.o.payload.data[c].eq(shadow[0][c])

        with m.If(finish):
            m.d.sync += remaining.eq(rows)
        with m.Elif(shift):
            m.d.sync += remaining.eq(remaining - 1)
        if pipelined:
            # Shift on the next cycle if a row will be left and the FIFO not full.
            # `occupied` is `remaining` as a thermometer code (bit r: row r holds a
            # result), so that every next value is a few gates, not a carry chain.
            occupied = Signal(rows)
            occupied_next = Mux(finish, (1 << rows) - 1,
                                Mux(shift, occupied >> 1, occupied))
            full_next = Mux(count == 2, ~pop | shift, (count == 1) & shift & ~pop)
            shift_next = occupied_next[0] & ~full_next
            m.d.sync += [occupied.eq(occupied_next), shift.eq(shift_next)]
            # Rows without a result may shift or not, the same; and the copies differ
            # in logic, so Yosys keeps them apart.
            m.d.sync += [shift_row[r].eq(shift_next & occupied_next[r]) for r in range(rows)]
            m.d.sync += [write[n].eq(shift_next & ((wr ^ shift) == n)) for n in range(2)]
        if enable is None:
            with m.If(finish):
                m.d.sync += pending.eq(0)
            with m.Elif(accept & payload.last):
                m.d.sync += pending.eq(1)
        return m

    def _systolic_operands(self, m, da, db, valid1, last1):
        """Skew and forward the operands: PE ``(r, c)`` sees k-step n at cycle
        ``n + r + c``. Row r of A waits r cycles, column c of B c cycles, then A moves
        one PE right and B one PE down per cycle; valid/last travel with A."""
        rows, cols = self.rows, self.cols

        a_op = [[None] * cols for _ in range(rows)]
        b_op = [[None] * cols for _ in range(rows)]
        flags = [[None] * cols for _ in range(rows)]
        for r in range(rows):
            a_in = _delayed(m, da[r], r, f"a{r}_skew")
            f_in = (_delayed(m, valid1, r, f"v{r}_skew"), _delayed(m, last1, r, f"l{r}_skew"))
            for c in range(cols):
                a_reg = Signal(self._da_shape, name=f"a{r}_{c}")
                v_reg, l_reg = Signal(name=f"v{r}_{c}"), Signal(name=f"l{r}_{c}")
                m.d.sync += [a_reg.eq(a_in), v_reg.eq(f_in[0]), l_reg.eq(f_in[1])]
                a_op[r][c], flags[r][c] = a_reg, (v_reg, l_reg)
                a_in, f_in = a_reg, (v_reg, l_reg)
        for c in range(cols):
            b_in = _delayed(m, db[c], c, f"b{c}_skew")
            for r in range(rows):
                b_reg = Signal(self._db_shape, name=f"b{r}_{c}")
                m.d.sync += b_reg.eq(b_in)
                b_op[r][c] = b_in = b_reg
        return a_op, b_op, flags


def _delayed(m, value, cycles, name):
    """``value`` behind ``cycles`` registers named ``<name><n>``."""
    for n in range(cycles):
        reg = Signal.like(value, name=f"{name}{n}")
        m.d.sync += reg.eq(value)
        value = reg
    return value
