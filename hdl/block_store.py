"""One block of storage between a stream of elements and a per-beat datapath: what every
unit needs whose output depends on a statistic of the whole block (the absmax unit, MX
quantization).

How it works
------------
A block can only be quantized once its last element has been seen, so the unit stores one
block. While block *k* streams in, it is written into a memory of ``block_size / lanes``
rows at addresses 0, 1, ...; while block *k+1* streams in, block *k* is read out of the same
rows just ahead of the writes. A beat's write lands one cycle after the beat is accepted
(from registers, so the accept decision never drives the memory's write enables), so block
*k+1*'s element *j* can be accepted in the very cycle block *k*'s element *j* is read. One
block of storage therefore carries one beat per cycle across back-to-back blocks; a beat
waits only for its row to have been read (an input beat is refused while the row still
holds an unread element). The read port is not transparent; the one read that can meet
its row's write in the same cycle -- row 0 of a one-row block that starts draining as it
closes -- takes the data from a copy of the write.

While a block streams in, its ``max |x|`` is kept: of signed integers, or of IEEE patterns
(the largest pattern with the sign bit cleared: IEEE magnitudes order so, a NaN above Inf
above every finite value). Each row read out goes, with that maximum, through the
subclass's datapath (:meth:`BlockStore.datapath`); finished beats enter an output FIFO.
The reads are issued against credits for that FIFO, so ``o.ready`` and ``scale.ready``
only reach the FIFOs and never any combinational path inside the unit.

Blocks and ``last``
-------------------
A block closes after ``block_size / lanes`` beats, or earlier at an input beat with
``last`` set: a tensor whose length is not a multiple of ``block_size`` ends in a short
block of its own (a short block is a whole number of beats). ``o`` marks each block's
first and last beat; ``scale`` carries one value per block, in block order: the maximum,
pushed when the block starts to drain, or a value of the datapath's, written when the
block's first beat leaves it. Short blocks cost bubbles: a short block cannot start
draining before the longer block ahead of it has, so the input waits for the difference;
a tensor pays this once, at its end.

``read_register`` puts a register right behind the memory's read data (a block RAM's data
comes late in its cycle: large blocks want it). Whatever the datapath, the control runs
from registered flags (credit and scale-FIFO room, last row, "row already read") so that
accepting a beat, issuing a read and starting a drain stay a few LUT levels deep.
``i.ready`` is a function of registers only.
"""

from amaranth.hdl import C, Module, Mux, Shape, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .multiplier import MULTIPLY
from .pipeline import Pipeline

__all__ = ["BlockStore", "SCALE_DEPTH"]

#: Entries of the scale FIFO when the maximum is the block's scale.
SCALE_DEPTH = 3


class BlockStore(wiring.Component):
    """Block storage, fill and drain control and the output FIFOs of a blockwise unit.

    A subclass states its datapath: :meth:`datapath` turns each row read out (with the
    block's maximum and first/last flags) into the beat pushed on ``o``, either in its
    own logic or through a staged model (:meth:`staged_datapath`).

    Parameters
    ----------
    block_size, lanes : int
        Elements per block and per beat (checked by the subclass: ``block_size`` a
        multiple of ``lanes``).
    element : Shape
        One input element: ``signed(in_width)``, or ``unsigned(width)`` for float
        patterns.
    fmt : FloatFormat or None
        The elements' float format, ``None`` for integers (how the maximum is taken).
    result : Shape
        One output element on ``o``.
    scale : ShapeLike
        The ``scale`` stream's payload.
    read_register : bool
        A register right behind the memory's read data.
    pipe_latency : int
        Cycles from a read's issue to its beat's write into the output FIFO.
    scale_at_drain : bool
        ``scale`` carries the maximum, pushed as the block starts to drain; otherwise
        the datapath writes a value when the block's first beat leaves it.

    Members
    -------
    i : :py:`In(stream.Signature(StructLayout({"data": ArrayLayout(element, lanes), "last": 1})))`
    o : :py:`Out(stream.Signature(StructLayout({"data": ArrayLayout(result, lanes), "first": 1, "last": 1})))`
    scale : :py:`Out(stream.Signature(scale))`
    """

    def __init__(self, *, block_size, lanes, element, fmt, result, scale, read_register,
                 pipe_latency, scale_at_drain):
        self._block_size, self._lanes, self._fmt = block_size, lanes, fmt
        self._elem_width = Shape.cast(element).width
        self._read_register, self._pipe_latency = read_register, pipe_latency
        self._scale_at_drain = scale_at_drain
        # A beat holds a credit from issue until it leaves o: the pipeline, the FIFO write
        # and the two cycles of SyncFIFOBuffered's registered read; one more keeps the count
        # registered (no o.ready to issue path) without a bubble.
        self._credits = pipe_latency + 3
        # A scale written by the datapath leaves with its block's first beat: room for
        # every block a full pipeline can hold.
        self._scale_depth = SCALE_DEPTH if scale_at_drain else \
            SCALE_DEPTH + -(-self._credits // self.beats_per_block)
        super().__init__({
            "i": In(stream.Signature(data.StructLayout({
                "data": data.ArrayLayout(element, lanes),
                "last": 1,
            }))),
            "o": Out(stream.Signature(data.StructLayout({
                "data": data.ArrayLayout(result, lanes),
                "first": 1,
                "last": 1,
            }))),
            "scale": Out(stream.Signature(scale)),
        })

    @property
    def block_size(self):
        return self._block_size

    @property
    def lanes(self):
        return self._lanes

    @property
    def beats_per_block(self):
        return self._block_size // self._lanes

    @property
    def latency(self):
        return self._pipe_latency + 3

    @property
    def scale_latency(self):
        # The closing beat starts the drain a cycle later, whose first issue pushes the
        # maximum into SyncFIFOBuffered, two cycles from its write to r_rdy. A datapath's
        # scale leaves with the block's first beat.
        return 3 if self._scale_at_drain else self.latency

    #: What ``scale`` carries, for :attr:`latency_definition`.
    scale_meaning = "that block's absmax"

    @property
    def latency_definition(self):
        """What ``latency`` counts, as tests/test_absmax_amaranth.py and
        tests/test_manifest.py measure it."""
        last_beat = ("the cycle in which a block's last beat is accepted on i (beat "
                     "block_size/lanes of the block, or the beat with last = 1)")
        return {
            "from_stream": "i",
            "from": last_beat,
            "to_stream": "o",
            "to": "the cycle in which that block's first beat (first = 1) is valid on o; "
                  "its other beats follow one per cycle",
            "when": "o.ready and scale.ready held high and no earlier block still draining",
            "also": [{"to_stream": "scale", "cycles": self.scale_latency,
                      "to": f"the cycle in which {self.scale_meaning} is valid on scale"}],
        }

    # i.ready is a function of registers only: o.ready and scale.ready reach the FIFOs.
    ready_dependencies = {"i": ()}

    throughput = 1

    @property
    def pending_blocks(self):
        """Most blocks closed on ``i`` whose ``scale`` beat has not left: the scale FIFO's
        entries, one block draining and one waiting."""
        return self._scale_depth + 2

    @property
    def storage_bits(self):
        return self._block_size * self._elem_width

    def elaborate(self, platform):
        # One stage after another, in this order: the order of the statements, which the
        # emitted Verilog follows.
        m = Module()
        wr, rd = self._block_memory(m)
        out_fifo, scale_fifo = self._output_fifos(m)

        # Fill and drain control: which beat is accepted, which row is read, which block
        # drains.
        c = _Control(self.i, self.o, beats=self.beats_per_block, width=self.key_width,
                     credits=self._credits, scale_depth=self._scale_depth)
        self._issue_and_accept(m, c)
        new_max = self._capture_absmax(m, c)
        self._write_row(m, c, wr)
        self._advance_read(m, c)
        self._advance_fill(m, c, new_max)
        self._start_drain(m, c, new_max)
        self._track_free_row(m, c)
        self._count_credits(m, c)
        self._scale_stream(m, c, scale_fifo)

        # Datapath: read a row, turn it into a beat for o.
        self.datapath(m, *self._read_row(m, c, wr, rd), out_fifo, scale_fifo)
        return m

    def magnitude(self, x):
        """The value of one element whose maximum over the block the datapath receives
        as ``absmax`` (``element``'s width): ``|x|`` of an integer; of a float pattern,
        the pattern without its sign bit (IEEE magnitudes order so, a NaN above Inf
        above every finite value)."""
        if self._fmt is None:
            return Mux(x < 0, -x, x)        # |-2**(iw-1)| = 2**(iw-1) fits
        return x[:self._elem_width - 1]

    @property
    def key_width(self):
        """Bits of :meth:`magnitude`'s value (and of the datapath's ``absmax``): the
        element's width unless a subclass keeps more per block."""
        return self._elem_width

    @staticmethod
    def larger(a, b):
        """The maximum of two :meth:`magnitude` values: their unsigned maximum, unless a
        subclass keeps several maxima side by side in one value."""
        return Mux(a > b, a, b)

    def datapath(self, m, valid, absmax, first, last, row, out_fifo, scale_fifo):
        """The subclass's datapath: from the read ``row`` (valid in the cycle ``valid`` is
        set) to a beat pushed with :meth:`push`, ``pipe_latency`` cycles after the read's
        issue, never stalling."""
        raise NotImplementedError

    def staged_datapath(self, m, model, valid, absmax, first, last, row, out_fifo,
                        scale_fifo):
        """A datapath of stage functions on a list of dicts (the block's values first, one
        dict per lane after it), a register after each: ``model.stages()`` lists them,
        :data:`~qdp.hdl.multiplier.MULTIPLY` where ``model.multiply`` registers its own;
        ``model.registered(k)``, where the model has it, says which stages a register
        follows (all by default); ``model.outputs`` reads ``(block values, q per lane)``
        from the last list and
        ``model.scale(block)`` the value for ``scale`` (a dict for a struct), written as
        the block's first beat leaves."""
        pipe = Pipeline(m, C(1, 1), valid)
        values = [{"absmax": absmax, "first": first, "last": last}] \
            + [{"x": row[lane]} for lane in range(self._lanes)]
        registered = getattr(model, "registered", lambda k: True)
        for k, stage in enumerate(model.stages()):
            values = model.multiply(m, pipe, values) if stage is MULTIPLY \
                else pipe.register(True, stage(values)) if registered(k) \
                else pipe.wire(stage(values))
        block, qs = model.outputs(values)
        self.push(m, pipe.valid, block["first"], block["last"], qs, out_fifo)
        scale, value = Signal(self.scale.p.shape()), model.scale(block)
        if isinstance(value, dict):
            m.d.comb += [getattr(scale, name).eq(v) for name, v in value.items()]
        else:
            m.d.comb += scale.eq(value)
        m.d.comb += [scale_fifo.w_en.eq(pipe.valid & block["first"]),
                     scale_fifo.w_data.eq(scale)]

    # -- block storage ------------------------------------------------------------------

    def _block_memory(self, m):
        """One block of storage, ``block_size / lanes`` rows of one beat each: a write port
        and a read port that is not transparent (read-before-write, see the module doc)."""
        m.submodules.storage = storage = Memory(
            shape=self.i.p.data.shape(),
            depth=self.beats_per_block, init=[])
        wr = storage.write_port()
        rd = storage.read_port(transparent_for=())
        return wr, rd

    def _output_fifos(self, m):
        """The FIFOs in front of ``o`` and ``scale``: the only logic that ``o.ready`` and
        ``scale.ready`` reach. The output FIFO holds every beat that has a credit (issued
        and not yet taken from ``o``), so it never overflows."""
        m.submodules.out_fifo = out_fifo = SyncFIFOBuffered(
            width=self.o.p.shape().size, depth=self._credits + 1)
        m.submodules.scale_fifo = scale_fifo = SyncFIFOBuffered(
            width=Shape.cast(self.scale.p.shape()).width, depth=self._scale_depth)
        return out_fifo, scale_fifo

    # -- fill and drain control -----------------------------------------------------------

    def _issue_and_accept(self, m, c):
        """Issue a read, finish a drain, accept an input beat: all from registered flags.

        A beat is read (issued) only when the output FIFO is sure to have room for it
        (credits) and, for a block's first beat, when the scale FIFO has room for the
        block's absmax: backpressure on either output stalls reads, never drops data."""
        m.d.comb += [
            c.issue.eq(c.drain_active & c.may_issue),
            c.drain_finish.eq(c.issue & c.rptr_at_end),
        ]
        # A row may be overwritten once the draining block has read it -- in this very
        # cycle at the latest, since the write lands a cycle later. Both pointers start a
        # drain at row 0 and only the read may run ahead, so while a block drains the fill
        # is either behind the read (wptr < rptr), past the draining block's last row
        # (wptr > that row >= rptr), or exactly on the row about to be read: wptr != rptr
        # means "already read". (`issue` is `may_issue` while a block drains.)
        m.d.comb += self.i.ready.eq(~c.fill_done & (~c.drain_active | c.row_free | c.may_issue))
        m.d.comb += c.closing.eq(self.i.valid & c.block_end)

    def _capture_absmax(self, m, c):
        """``max |x|`` over the offered beat's lanes and the block so far: the block's
        absmax once its last beat is accepted."""
        iw = self.key_width
        magnitudes = []
        for lane in range(self._lanes):
            mag = Signal(iw, name=f"mag{lane}")
            m.d.comb += mag.eq(self.magnitude(self.i.p.data[lane]))
            magnitudes.append(mag)
        while len(magnitudes) > 1:
            pairs = []
            for a, b in zip(magnitudes[0::2], magnitudes[1::2]):
                top = Signal(iw)
                m.d.comb += top.eq(self.larger(a, b))
                pairs.append(top)
            magnitudes = pairs + magnitudes[len(pairs) * 2:]
        new_max = Signal(iw)
        m.d.comb += new_max.eq(Mux(c.fill_fresh, magnitudes[0],
                                   self.larger(magnitudes[0], c.fill_max)))
        return new_max

    def _write_row(self, m, c, wr):
        """The write lands one cycle after its beat is accepted, from registers: the accept
        decision never reaches the memory's write enables in the same cycle."""
        m.d.sync += [
            wr.addr.eq(c.wptr),
            wr.data.eq(self.i.p.data),
            wr.en.eq(c.i_fire),
        ]

    @staticmethod
    def _advance_read(m, c):
        """The read pointer steps with every issue and returns to row 0 at a drain's end."""
        # The *_next values are single expressions (continuous assignments): a default
        # overridden in a process would start as X in Icarus and hold its register there.
        m.d.comb += c.rptr_zero_next.eq(Mux(c.issue, c.drain_finish, c.rptr_zero))
        with m.If(c.issue):
            m.d.sync += [c.rptr.eq(c.rptr + 1),
                         c.rptr_at_end.eq(c.rptr == c.drain_before_end)]
            with m.If(c.drain_finish):
                m.d.sync += c.rptr.eq(0)
        m.d.sync += c.rptr_zero.eq(c.rptr_zero_next)

    def _advance_fill(self, m, c, new_max):
        """The write pointer and the block's absmax follow the accepted beats; a block's
        closing beat returns the pointer to row 0 and makes the next beat start afresh."""
        beats = self.beats_per_block
        # An offered beat is this block's next one unless the block is done: held until
        # taken, folding it into the maximum early (and again) changes nothing, and keeps
        # the accept decision off the maximum's enables.
        with m.If(c.i.valid & ~c.fill_done):
            m.d.sync += c.fill_max.eq(new_max)
        with m.If(c.i_fire):
            m.d.sync += [c.wptr.eq(c.wptr + 1), c.fill_fresh.eq(c.block_end)]
            if beats > 1:
                m.d.sync += c.wptr_last.eq(c.wptr == beats - 2)
            with m.If(c.block_end):
                m.d.sync += [c.wptr.eq(0), c.wptr_last.eq(beats == 1)]
        with m.If(~c.fill_done):                # fill_end is only read while fill_done
            m.d.sync += c.fill_end.eq(c.wptr)

    @staticmethod
    def _start_drain(m, c, new_max):
        """A drain starts when the draining block is done (or none drains) and a block is
        complete: waiting (``fill_done``) or closing with this beat, which a free drain
        always accepts (``i.ready = ~fill_done`` then)."""
        # Both pointers start a drain at row 0; rptr is there already. The drain's end row
        # and absmax are loaded whenever the drain is free: with no start they go unused.
        end = Mux(c.fill_done, c.fill_end, c.wptr)
        with m.If(c.drain_free):
            m.d.sync += [
                c.drain_before_end.eq(end - 1), c.rptr_at_end.eq(end == 0),
                c.drain_max.eq(Mux(c.fill_done, c.fill_max, new_max)),
            ]
        # Written out, without a shared `start`, these stay two or three LUT levels deep.
        m.d.sync += [
            c.drain_active.eq(~c.drain_free | c.fill_done | c.closing),
            c.fill_done.eq(~c.drain_free & (c.fill_done | (c.closing & c.i.ready))),
        ]

    @staticmethod
    def _track_free_row(m, c):
        """``row_free`` (the fill's row has been read) from ``lead = rptr - wptr``.

        lead and row_free restart at 0 for the next drain; a block closing or waiting means
        the fill stands still until that drain starts (or is refused this beat, which
        already means lead = 0). Otherwise a block drains (or row_free is unused) and
        ``i.ready = row_free | may_issue``: the updates are "issue and no beat: lead + 1; a
        beat and no issue: lead - 1", written on the registered flags for a shallower
        row_free."""
        with m.If(c.closing | c.fill_done):
            m.d.sync += [c.row_free.eq(0), c.lead.eq(0)]
        with m.Elif(c.may_issue & ~c.i.valid):
            m.d.sync += [c.lead.eq(c.lead + 1), c.row_free.eq(c.lead != c.lead_minus_one)]
        with m.Elif(~c.may_issue & c.i.valid & c.row_free):
            m.d.sync += [c.lead.eq(c.lead - 1), c.row_free.eq(c.lead != 1)]

    def _count_credits(self, m, c):
        """Beats issued and not yet taken from ``o``; ``credit`` is ``occupancy < credits``,
        registered."""
        # credit_after, the credit after one more issue, is kept registered too, so that
        # credit_next is a mux of registers (the comparisons run a cycle ahead).
        up, down = c.issue & ~c.o_fire, c.o_fire & ~c.issue
        m.d.comb += c.credit_next.eq(Mux(up, c.credit_after, Mux(down, 1, c.credit)))
        with m.If(up):
            m.d.sync += [c.occupancy.eq(c.occupancy + 1),
                         c.credit_after.eq(c.occupancy < self._credits - 2)]
        with m.Elif(down):
            m.d.sync += [c.occupancy.eq(c.occupancy - 1), c.credit_after.eq(c.credit)]
        m.d.sync += c.credit.eq(c.credit_next)

    def _scale_stream(self, m, c, scale_fifo):
        """A block's first issue pushes its maximum into the scale FIFO, which ``scale``
        reads; ``scale_room`` is ``scale_count < scale FIFO depth``, registered. A
        datapath's scale is counted at the block's first issue as well, and written when
        that beat leaves the datapath (:meth:`staged_datapath`)."""
        scale_push = c.issue & c.rptr_zero
        scale_pop = self.scale.valid & self.scale.ready
        up, down = scale_push & ~scale_pop, scale_pop & ~scale_push
        m.d.comb += c.scale_room_next.eq(Mux(up, c.scale_room_after,
                                             Mux(down, 1, c.scale_room)))
        with m.If(up):
            m.d.sync += [c.scale_count.eq(c.scale_count + 1),
                         c.scale_room_after.eq(c.scale_count < self._scale_depth - 2)]
        with m.Elif(down):
            m.d.sync += [c.scale_count.eq(c.scale_count - 1),
                         c.scale_room_after.eq(c.scale_room)]
        m.d.sync += c.scale_room.eq(c.scale_room_next)
        # may_issue is a register of its own, from the next credit, read row and scale
        # room: i.ready and the drain's decisions then start one LUT level closer to it.
        m.d.sync += c.may_issue.eq(c.credit_next & (~c.rptr_zero_next | c.scale_room_next))

        if self._scale_at_drain:
            m.d.comb += [scale_fifo.w_en.eq(scale_push), scale_fifo.w_data.eq(c.drain_max)]
        m.d.comb += [
            self.scale.valid.eq(scale_fifo.r_rdy),
            self.scale.p.eq(scale_fifo.r_data),
            scale_fifo.r_en.eq(self.scale.ready),
        ]

    # -- datapath -------------------------------------------------------------------------

    def _read_row(self, m, c, wr, rd):
        """The issued row, one cycle later (two with ``read_register``), with its block's
        absmax and first/last flags: ``(valid, absmax, first, last, row)``.

        A one-row block that closes and starts draining in the same cycle is read (row 0,
        the next cycle) while its delayed write lands, and the read port returns the old
        row: that read takes the written data from a copy instead. Nothing else collides:
        a block's rows are written before its drain starts, except its last one."""
        collide = Signal()
        held = Signal.like(wr.data)
        bypass0 = Signal()
        m.d.sync += [
            collide.eq(c.closing & (c.wptr == 0)),  # accepted if wr.en is set next
            held.eq(wr.data),
        ]
        # Read every cycle: the datapath never stalls and takes the row the cycle after its
        # issue, so an enable would only load `issue` with the row's whole width.
        m.d.comb += [rd.addr.eq(c.rptr), rd.en.eq(1)]
        v0, a0, first0, last0 = Signal(), Signal(self.key_width), Signal(), Signal()
        m.d.sync += [
            v0.eq(c.issue), a0.eq(c.drain_max),
            bypass0.eq(c.issue & c.rptr_zero & collide & wr.en),
            first0.eq(c.rptr_zero), last0.eq(c.rptr_at_end),
        ]
        values = [v0, a0, first0, last0, bypass0, held, rd.data]
        if self._read_register:
            # A block RAM's read data comes late in its cycle: register it before any logic.
            values = self._register(m, "row", values)
        valid, absmax, first, last, bypass, copy, read = values
        row = Signal.like(rd.data)
        m.d.comb += row.eq(Mux(bypass, copy, read))
        return valid, absmax, first, last, row


    def push(self, m, valid, first, last, qs, out_fifo):
        """A finished beat into the output FIFO, which ``o`` reads."""
        result = Signal(self.o.p.shape())
        for lane, q in enumerate(qs):
            m.d.comb += result.data[lane].eq(q)
        m.d.comb += [result.first.eq(first), result.last.eq(last)]
        m.d.comb += [
            out_fifo.w_en.eq(valid),
            out_fifo.w_data.eq(result),
            self.o.valid.eq(out_fifo.r_rdy),
            self.o.p.eq(out_fifo.r_data),
            out_fifo.r_en.eq(self.o.ready),
        ]

    @staticmethod
    def _register(m, name, values):
        """One pipeline register for each value: the values a cycle later."""
        delayed = [Signal.like(value, name=f"{name}_{n}") for n, value in enumerate(values)]
        m.d.sync += [d.eq(v) for d, v in zip(delayed, values)]
        return delayed




class _Control:
    """The state of the fill/drain control, and the decisions of a cycle.

    The decisions of a cycle (issue a read, accept a beat, start a drain) depend on each
    other when fill and drain run in lockstep, so everything they need is kept as
    registered flags, updated from comparisons made a cycle ahead."""

    def __init__(self, i, o, *, beats, width, credits, scale_depth):
        self.i = i
        # -- fill side: the block being written -----------------------------------------
        self.wptr = Signal(range(beats))
        self.fill_max = Signal(width)
        # fill_max belongs to the previous block (drained or waiting): read it as 0. This
        # keeps the drain start off fill_max's reset.
        self.fill_fresh = Signal(init=1)
        self.fill_done = Signal()       # a complete block waits for the previous one to drain
        self.fill_end = Signal(range(beats))

        # -- drain side: the block being read -------------------------------------------
        self.drain_active = Signal()
        self.drain_before_end = Signal(range(beats))    # end row - 1: compared with rptr
        self.drain_max = Signal(width)
        self.rptr = Signal(range(beats))                # 0 whenever no block drains

        # -- registered flags ---------------------------------------------------------------
        self.rptr_zero = Signal(init=1)
        self.rptr_zero_next = Signal()
        self.rptr_at_end = Signal()                     # rptr is the draining block's last row
        self.wptr_last = Signal(init=beats == 1)        # wptr is the last row
        # While a block drains, the fill may write row wptr: wptr != rptr.
        self.row_free = Signal()
        # rptr - wptr while a block drains, so that row_free is updated from comparisons
        # with constants; wide enough that -1 (all ones) is not a valid lead.
        self.lead = Signal(len(self.rptr) + 1)
        self.lead_minus_one = (1 << len(self.lead)) - 1
        self.occupancy = Signal(range(credits + 1))
        self.credit = Signal(init=1)                    # occupancy < credits
        self.credit_next = Signal()
        self.credit_after = Signal(init=credits > 1)    # occupancy < credits - 1
        self.scale_count = Signal(range(scale_depth + 1))
        self.scale_room = Signal(init=1)                # scale_count < scale_depth
        self.scale_room_next = Signal()
        self.scale_room_after = Signal(init=scale_depth > 1)    # scale_count < depth - 1

        # -- the decisions of this cycle --------------------------------------------------
        # credit & (~rptr_zero | scale_room), registered: issue, were a block draining.
        self.may_issue = Signal(init=1)
        self.issue = Signal()
        self.drain_finish = Signal()
        self.drain_free = ~self.drain_active | self.drain_finish
        self.i_fire = i.valid & i.ready
        self.o_fire = o.valid & o.ready
        self.block_end = self.wptr_last | i.p.last
        self.closing = Signal()         # a beat that closes its block is offered
