"""Blockwise absmax quantization unit: streaming, exact, one block of storage.

Per block of ``block_size`` elements, ``absmax = max |x|`` and every element becomes
``q = round(qmax * x / absmax)`` (``qmax = 2**(out_width-1) - 1``; ``q = 0`` when absmax
is 0), exactly as :func:`qdp.golden.absmax.blockwise_absmax` states it.

How it works
------------
A block can only be quantized once its last element has been seen, so the unit stores one
block. While block *k* streams in, it is written into a memory of ``block_size / lanes``
rows at addresses 0, 1, ...; while block *k+1* streams in, block *k* is read out of the same
rows just ahead of the writes. The read port is not transparent: a read and a write of the
same row in the same cycle return the old row, so block *k+1*'s element *j* can be written
in the very cycle block *k*'s element *j* is read. One block of storage therefore carries
one beat per cycle across back-to-back blocks; a write waits only for its row to have been
read (an input beat is refused while the row still holds an unread element).

Each element read out goes through a pipelined restoring divider, one quotient bit per
stage, with the block's absmax travelling alongside it. Finished beats enter an output
FIFO; the reads are issued against credits for that FIFO, so ``o.ready`` and
``scale.ready`` only reach the FIFOs and never any combinational path inside the unit.

Why the division is always exact
--------------------------------
Let ``A`` be the absmax and ``v = qmax * x / A``. Because ``|x| <= A``, the numerator
``N = qmax * (x + A)`` lies in ``[0, 2 * qmax * A]`` and ``v = N / A - qmax``: the divider
only ever sees a non-negative numerator, and ``floor(v) = floor(N / A) - qmax`` with the
same fractional part as ``N / A``. The divider computes ``floor(N * 2**F / A)`` and its
remainder by restoring long division, which is exact by construction (every stage keeps
the invariant ``partial remainder < A`` and emits one exact quotient bit). ``K =
out_width + F`` quotient bits are always enough because ``N * 2**F < 2**K * A``
(``2 * qmax < 2**out_width``); equivalently the initial partial remainder ``N >>
out_width`` is already below ``A``. Every stage subtracts at ``in_width`` bits, the width
of its trial value ``2 * remainder + 1 <= 2 * A - 1 < 2**in_width``. A block whose absmax
is 0 holds only zeros; its quotient is ignored and its elements are 0.

The rounding decision then needs no approximation:

* ``floor`` (``F = 0``): the integer quotient.
* ``trunc`` (``F = 0``): plus one when ``x < 0`` and the remainder is non-zero.
* nearest modes (``F = 1``): the half bit ``h`` and ``sticky = remainder != 0`` give
  *above half* = ``h & sticky``, *tie* = ``h & ~sticky``; a tie goes up according to the
  mode (``half_even``: when ``floor(v)`` is odd, i.e. the integer quotient is even, as
  ``qmax`` is odd; ``half_away``: when ``x >= 0``; ``half_zero``: when ``x < 0``).
* ``stochastic`` (``F = 32``): ``floor(v + r / 2**32) = floor(v) + carry(g + r)`` where
  ``g = floor(frac(v) * 2**32)`` is the 32 fraction bits: ``r + frac * 2**32 >= 2**32``
  holds for integer ``r`` exactly when ``r + g >= 2**32``.

``r`` comes from one 32-bit LFSR per lane (:mod:`qdp.golden.lfsr`, seeded with
``lfsr_seed``) that steps once per output beat, in order; beat ``t`` after reset uses
``lfsr_values(lfsr_seed, lanes, ...)[t]`` (:func:`qdp.golden.absmax.stochastic_random`).

Blocks and ``last``
-------------------
A block closes after ``block_size / lanes`` beats, or earlier at an input beat with
``last`` set: a tensor whose length is not a multiple of ``block_size`` ends in a short
block of its own, exactly as the golden model treats the trailing partial block (a short
block is a whole number of beats). ``o`` marks each block's first and last beat; ``scale``
carries one absmax per block, in block order, pushed when the block starts to drain.
Short blocks cost bubbles: a short block cannot start draining before the longer block
ahead of it has, so the input waits for the difference; a tensor pays this once, at its
end.

Latency and throughput
----------------------
``latency = out_width + F + 5`` cycles: from the cycle in which a block's last input beat
is accepted to the cycle in which that block's first output beat is valid on ``o``, when no
earlier block is still draining and ``o`` is ready. The remaining beats follow one per
cycle. ``throughput`` is 1 beat (``lanes`` elements) per cycle, sustained across
back-to-back blocks of any size (``block_size / lanes`` cycles per block) as long as ``o``
and ``scale`` are ready.

Resources
---------
Block storage: one memory of ``block_size / lanes`` rows of ``lanes * in_width`` bits
(``storage_bits``), one read and one write port, BRAM-inferable. Besides it: the divider
pipeline (``out_width + F`` stages of ``lanes`` ``in_width``-bit subtractors and
``lanes * (in_width - 1 + out_width + F)`` flip-flops), an output FIFO of ``latency + 1``
entries of ``lanes * out_width + 2`` bits that absorbs the pipeline on backpressure, and a
3-entry FIFO for ``scale``. ``stochastic`` costs 32 more divider stages, and a 32-bit LFSR
per lane.
"""

from amaranth import *
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..golden.lfsr import DEFAULT_SEED, LFSR_TAPS, lane_seed
from ..golden.rounding import ROUNDING_MODES, STOCHASTIC_BITS
from ._checks import check_choice, check_int

__all__ = ["BlockwiseAbsmax"]

_NEAREST = ("half_even", "half_away", "half_up", "half_down", "half_zero")


def _fraction_bits(rounding):
    if rounding == "stochastic":
        return STOCHASTIC_BITS
    if rounding in _NEAREST:
        return 1
    return 0


class BlockwiseAbsmax(wiring.Component):
    """Blockwise absmax quantizer for a stream of signed integers.

    See the module documentation for the arithmetic, why it is exact, and the timing.

    Parameters
    ----------
    block_size : int
        Elements per block: a multiple of ``lanes`` from ``lanes`` to 65536.
    lanes : int
        Elements per beat, 1..16.
    in_width : int
        Width of the signed input elements, 2..32.
    out_width : int
        Width of the signed quantized elements, 2..8 (``qmax = 2**(out_width-1) - 1``).
    rounding : str or None
        One of :data:`qdp.golden.rounding.ROUNDING_MODES`; ``None`` means ``half_even``.
    lfsr_seed : int
        Seed of the per-lane LFSRs of ``stochastic`` rounding, 0..2**32-1 (see
        :mod:`qdp.golden.lfsr`; ignored by the other modes).

    Attributes
    ----------
    latency : int
        Cycles from the acceptance of a block's last input beat to its first output beat.
    throughput : int
        Sustained beats per cycle (1).
    beats_per_block : int
        ``block_size // lanes``: cycles per block in steady state.
    storage_bits : int
        Bits of block storage, ``block_size * in_width``.

    Members
    -------
    i : :py:`In(stream.Signature(StructLayout({"data": ..., "last": 1})))`
        Input elements, ``data`` being :py:`ArrayLayout(signed(in_width), lanes)`;
        ``last`` closes a (short) block.
    o : :py:`Out(stream.Signature(StructLayout({"data": ..., "first": 1, "last": 1})))`
        Quantized elements in input order, ``data`` being
        :py:`ArrayLayout(signed(out_width), lanes)`; ``first`` and ``last`` mark each
        block's first and last beat.
    scale : :py:`Out(stream.Signature(unsigned(in_width)))`
        One absmax per block, in block order (``in_width`` unsigned bits hold
        ``|-2**(in_width-1)|``).
    """

    def __init__(self, block_size=64, *, lanes=1, in_width=16, out_width=8,
                 rounding="half_even", lfsr_seed=DEFAULT_SEED):
        rounding = "half_even" if rounding is None else rounding
        try:
            self._check_parameters(block_size, lanes, in_width, out_width, rounding, lfsr_seed)
        except (TypeError, ValueError):
            # A component that failed its checks is not "unused": don't warn about it later.
            self._MustUse__used = True
            raise

        self._block_size = block_size
        self._lanes = lanes
        self._in_width = in_width
        self._out_width = out_width
        self._rounding = rounding
        self._lfsr_seed = lfsr_seed

        self._frac_bits = _fraction_bits(rounding)
        self._quot_bits = out_width + self._frac_bits
        # issue -> read data -> prepare -> K divider stages -> FIFO write
        self._pipe_latency = self._quot_bits + 2
        # A beat holds a credit from issue until it leaves o: the pipeline, the FIFO write
        # and the two cycles of SyncFIFOBuffered's registered read; one more keeps the count
        # registered (no o.ready to issue path) without a bubble.
        self._credits = self._pipe_latency + 3

        super().__init__({
            "i": In(stream.Signature(data.StructLayout({
                "data": data.ArrayLayout(signed(in_width), lanes),
                "last": 1,
            }))),
            "o": Out(stream.Signature(data.StructLayout({
                "data": data.ArrayLayout(signed(out_width), lanes),
                "first": 1,
                "last": 1,
            }))),
            "scale": Out(stream.Signature(unsigned(in_width))),
        })

    @staticmethod
    def _check_parameters(block_size, lanes, in_width, out_width, rounding, lfsr_seed):
        check_int("lanes", lanes, 1, 16)
        check_int("in_width", in_width, 2, 32)
        check_int("out_width", out_width, 2, 8)
        check_int("block_size", block_size, 1)
        if block_size % lanes or not lanes <= block_size <= 65536:
            raise ValueError(f"block_size: {block_size} is out of range (allowed a multiple "
                             f"of lanes={lanes} from {lanes} to 65536)")
        check_choice("rounding", rounding, ROUNDING_MODES)
        check_int("lfsr_seed", lfsr_seed, 0, (1 << 32) - 1)

    block_size = property(lambda self: self._block_size)
    lanes = property(lambda self: self._lanes)
    in_width = property(lambda self: self._in_width)
    out_width = property(lambda self: self._out_width)
    rounding = property(lambda self: self._rounding)
    lfsr_seed = property(lambda self: self._lfsr_seed)

    @property
    def beats_per_block(self):
        return self._block_size // self._lanes

    @property
    def latency(self):
        return self._pipe_latency + 3

    @property
    def throughput(self):
        return 1

    @property
    def storage_bits(self):
        return self._block_size * self._in_width

    def elaborate(self, platform):
        m = Module()

        lanes, iw, ow = self._lanes, self._in_width, self._out_width
        beats = self.beats_per_block
        F, K = self._frac_bits, self._quot_bits
        qmax = (1 << (ow - 1)) - 1
        rounding = self._rounding

        m.submodules.storage = storage = Memory(
            shape=data.ArrayLayout(signed(iw), lanes), depth=beats, init=[])
        wr = storage.write_port()
        rd = storage.read_port(transparent_for=())   # read-before-write: see module doc

        o_layout = self.o.p.shape()
        m.submodules.out_fifo = out_fifo = SyncFIFOBuffered(
            width=o_layout.size, depth=self._credits + 1)
        m.submodules.scale_fifo = scale_fifo = SyncFIFOBuffered(width=iw, depth=3)

        # -- fill side: the block being written --------------------------------------------
        wptr = Signal(range(beats))
        fill_max = Signal(iw)
        fill_done = Signal()            # a complete block waits for the previous one to drain
        fill_end = Signal(range(beats))

        # -- drain side: the block being read ----------------------------------------------
        drain_active = Signal()
        drain_end = Signal(range(beats))
        drain_max = Signal(iw)
        rptr = Signal(range(beats))
        occupancy = Signal(range(self._credits + 1))

        # A beat is read (issued) only when the output FIFO is sure to have room for it
        # (credits) and, for a block's first beat, when the scale FIFO has room for the
        # block's absmax: backpressure on either output stalls reads, never drops data.
        issue = Signal()
        drain_finish = Signal()
        m.d.comb += [
            issue.eq(drain_active & (occupancy < self._credits) &
                     ((rptr != 0) | scale_fifo.w_rdy)),
            drain_finish.eq(issue & (rptr == drain_end)),
        ]
        drain_free = ~drain_active | drain_finish
        # A row may be overwritten once the draining block has read it -- in this very
        # cycle at the latest, since the read port returns the old row.
        slot_free = (~drain_active | (wptr < rptr) | (wptr > drain_end) |
                     (issue & (wptr == rptr)))
        m.d.comb += self.i.ready.eq(~fill_done & slot_free)

        i_fire = self.i.valid & self.i.ready
        o_fire = self.o.valid & self.o.ready

        magnitudes = []
        for lane in range(lanes):
            x = self.i.p.data[lane]
            mag = Signal(iw, name=f"mag{lane}")
            m.d.comb += mag.eq(Mux(x < 0, -x, x))   # |-2**(iw-1)| = 2**(iw-1) fits iw bits
            magnitudes.append(mag)
        while len(magnitudes) > 1:
            pairs = []
            for a, b in zip(magnitudes[0::2], magnitudes[1::2]):
                top = Signal(iw)
                m.d.comb += top.eq(Mux(a > b, a, b))
                pairs.append(top)
            magnitudes = pairs + magnitudes[len(pairs) * 2:]
        new_max = Signal(iw)
        m.d.comb += new_max.eq(Mux(magnitudes[0] > fill_max, magnitudes[0], fill_max))

        m.d.comb += [
            wr.addr.eq(wptr),
            wr.data.eq(self.i.p.data),
            wr.en.eq(i_fire),
        ]

        with m.If(issue):
            m.d.sync += rptr.eq(rptr + 1)
            with m.If(drain_finish):
                m.d.sync += [rptr.eq(0), drain_active.eq(0)]
        m.d.sync += occupancy.eq(occupancy + issue - o_fire)

        with m.If(i_fire):
            m.d.sync += [wptr.eq(wptr + 1), fill_max.eq(new_max)]
            with m.If((wptr == beats - 1) | self.i.p.last):
                m.d.sync += wptr.eq(0)
                with m.If(drain_free):
                    m.d.sync += [
                        drain_active.eq(1), drain_end.eq(wptr), drain_max.eq(new_max),
                        rptr.eq(0), fill_max.eq(0),
                    ]
                with m.Else():
                    m.d.sync += [fill_done.eq(1), fill_end.eq(wptr)]
        with m.Elif(fill_done & drain_free):
            m.d.sync += [
                drain_active.eq(1), drain_end.eq(fill_end), drain_max.eq(fill_max),
                rptr.eq(0), fill_max.eq(0), fill_done.eq(0),
            ]

        m.d.comb += [
            scale_fifo.w_en.eq(issue & (rptr == 0)),
            scale_fifo.w_data.eq(drain_max),
            self.scale.valid.eq(scale_fifo.r_rdy),
            self.scale.p.eq(scale_fifo.r_data),
            scale_fifo.r_en.eq(self.scale.ready),
        ]

        # -- read: the row arrives one cycle after the issue, with its block's absmax ------
        m.d.comb += [rd.addr.eq(rptr), rd.en.eq(issue)]
        v0, a0, first0, last0 = Signal(), Signal(iw), Signal(), Signal()
        m.d.sync += [
            v0.eq(issue), a0.eq(drain_max),
            first0.eq(rptr == 0), last0.eq(rptr == drain_end),
        ]

        # -- prepare: N = qmax * (x + A) >= 0, split into first remainder and low bits -----
        def stage_signals(k):
            return dict(
                valid=Signal(name=f"s{k}_valid"),
                absmax=Signal(iw, name=f"s{k}_absmax"),
                zero=Signal(name=f"s{k}_zero"),
                first=Signal(name=f"s{k}_first"),
                last=Signal(name=f"s{k}_last"),
                neg=[Signal(name=f"s{k}_neg{l}") for l in range(lanes)],
                rem=[Signal(iw - 1, name=f"s{k}_rem{l}") for l in range(lanes)],
                bits=[Signal(K, name=f"s{k}_bits{l}") for l in range(lanes)],
            )

        stage = stage_signals(0)
        m.d.sync += [
            stage["valid"].eq(v0), stage["absmax"].eq(a0), stage["zero"].eq(a0 == 0),
            stage["first"].eq(first0), stage["last"].eq(last0),
        ]
        for lane in range(lanes):
            x = rd.data[lane]
            shifted = Signal(iw + 1, name=f"xa{lane}")        # x + A in [0, 2A]
            numer = Signal(iw + ow - 1, name=f"numer{lane}")  # qmax (x + A) < 2**(ow-1) 2A
            m.d.comb += [
                shifted.eq(x + a0),
                numer.eq((shifted << (ow - 1)) - shifted),
            ]
            m.d.sync += [
                stage["neg"][lane].eq(x < 0),
                stage["rem"][lane].eq(numer[ow:]),
                stage["bits"][lane].eq(numer[:ow] << F),
            ]

        # -- K restoring division stages: remainder < A, one exact quotient bit each ------
        # `bits` holds the dividend bits still to bring down (high end) and the quotient bits
        # produced so far (low end); after K stages it is the quotient floor(N 2**F / A).
        for k in range(1, K + 1):
            nxt = stage_signals(k)
            m.d.sync += [nxt[key].eq(stage[key])
                         for key in ("valid", "absmax", "zero", "first", "last")]
            for lane in range(lanes):
                trial = Cat(stage["bits"][lane][K - 1], stage["rem"][lane])
                fits = Signal(name=f"s{k}_q{lane}")
                m.d.comb += fits.eq(trial >= stage["absmax"])
                m.d.sync += [
                    nxt["neg"][lane].eq(stage["neg"][lane]),
                    nxt["rem"][lane].eq(Mux(fits, trial - stage["absmax"], trial)),
                    nxt["bits"][lane].eq(Cat(fits, stage["bits"][lane][:K - 1])),
                ]
            stage = nxt

        # -- round, and write the beat into the output FIFO ---------------------------------
        result = Signal(o_layout)
        for lane in range(lanes):
            quotient = stage["bits"][lane]
            integer = quotient[F:]                   # floor(v) + qmax, in [0, 2 qmax]
            sticky = stage["rem"][lane] != 0
            neg = stage["neg"][lane]
            if rounding == "stochastic":
                state = Signal(32, name=f"lfsr{lane}", init=lane_seed(self._lfsr_seed, lane))
                with m.If(stage["valid"]):
                    m.d.sync += state.eq((state >> 1) ^ Mux(state[0], LFSR_TAPS, 0))
                up = (quotient[:F] + state)[F]
            elif rounding == "floor":
                up = C(0, 1)
            elif rounding == "trunc":
                up = neg & sticky
            else:
                half = quotient[0]
                tie_up = {
                    "half_even": ~integer[0],
                    "half_away": ~neg,
                    "half_up": C(1, 1),
                    "half_down": C(0, 1),
                    "half_zero": neg,
                }[rounding]
                up = half & (sticky | tie_up)
            q = Signal(signed(ow), name=f"q{lane}")
            m.d.comb += [
                q.eq(Mux(stage["zero"], 0, integer + up - qmax)),
                result.data[lane].eq(q),
            ]
        m.d.comb += [
            result.first.eq(stage["first"]),
            result.last.eq(stage["last"]),
            out_fifo.w_en.eq(stage["valid"]),
            out_fifo.w_data.eq(result),
            self.o.valid.eq(out_fifo.r_rdy),
            self.o.p.eq(out_fifo.r_data),
            out_fifo.r_en.eq(self.o.ready),
        ]

        return m
