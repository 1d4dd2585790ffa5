"""Blockwise absmax quantization unit: streaming, exact, one block of storage.

Per block of ``block_size`` elements, ``absmax = max |x|`` and every element becomes
``q = round(qmax * x / absmax)`` (``qmax = 2**(out_width-1) - 1``; ``q = 0`` when absmax
is 0), exactly as :func:`qdp.golden.absmax.blockwise_absmax` states it.

How it works
------------
A block can only be quantized once its last element has been seen: the unit stores one
block (:class:`~qdp.hdl.block_store.BlockStore`: one block of storage carries one beat
per cycle across back-to-back blocks, the block's absmax taken as it streams in). Each
element read out goes through a pipelined restoring divider, one quotient bit per stage,
with the block's absmax travelling alongside it, into the output FIFO.

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
  *above half* = ``h & sticky``, *tie* = ``h & ~sticky``, so ``up = h & (sticky | t)``
  where ``t``, whether a tie goes up, is :func:`qdp.hdl.rounding.tie_goes_up`
  (``half_even``: when ``floor(v)`` is odd, i.e. the integer quotient is even, as
  ``qmax`` is odd; ``half_away``: when ``x >= 0``; ``half_up``: always; ``half_down``:
  never; ``half_zero``: when ``x < 0``).
* ``stochastic`` (``F = 32``): ``floor(v + r / 2**32) = floor(v) + carry(g + r)`` where
  ``g = floor(frac(v) * 2**32)`` is the 32 fraction bits: ``r + frac * 2**32 >= 2**32``
  holds for integer ``r`` exactly when ``r + g >= 2**32``.

``r`` comes from one 32-bit LFSR per lane (:mod:`qdp.hdl.lfsr`, :mod:`qdp.golden.lfsr`,
seeded with ``lfsr_seed``) that steps once per output beat, in order; beat ``t`` after reset uses
``lfsr_values(lfsr_seed, lanes, ...)[t]`` (:func:`qdp.golden.absmax.stochastic_random`).

Float input
-----------
With a float ``in_format`` the elements are IEEE patterns. The block's absmax is the
largest pattern with its sign bit cleared (IEEE magnitudes order so), and ``scale``
carries it. At read time, four registered stages turn the absmax and each element into
integers over a common scale, so that the divider above computes the exact model of
:mod:`qdp.golden.absmax_float` unchanged: with significands ``a``, ``s`` and the exponent
difference ``d = e_absmax - e_x >= 0`` (``|x| <= absmax``; subnormals share the exponent of
the smallest normals), ``A = a << D`` and ``x = ±(s << (D - d))`` give ``x / A`` exactly for
``d <= D``. For ``d > D`` the element becomes ``±1``: with ``D = out_width + F + 2``, both
the true ``qmax * x / absmax * 2**F`` and ``qmax * (±1) / A * 2**F`` lie strictly between
-1 and 1 with a nonzero remainder, and ``floor`` of it and that remainder are all any
rounding mode reads. The divider is ``precision + D + 1`` bits wide. A block whose absmax
is Inf or NaN gets ``A = 0``, which quantizes every element to 0 as the golden model
states (``x / Inf`` is 0, ``Inf / Inf`` and NaN give 0); its ``scale`` shows the Inf or
NaN. The conversion adds four cycles of latency.

``model="float32"`` computes the golden model's other model instead, the seeds' formula
as FP32 code runs it: ``c = fl32(qmax / absmax)``, ``q = rint(fl32(c * x))``. The read
row then goes through :class:`~qdp.hdl.absmax_float.Float32Quantize` (a divider for
``c``, shared by the lanes, FP32 rounding, a DSP product per lane, FP32 rounding again,
``rint``) in place of the exact divider, and ``scale`` carries the absmax and ``c``
together, written when the block's first beat leaves that pipeline. Its latency is 60
cycles for FP32 input (59 for BF16 and FP16; ``pipeline`` 3 adds the read register, the
other settings change nothing in this model).

Blocks and ``last``
-------------------
A block closes after ``block_size / lanes`` beats, or earlier at an input beat with
``last`` set: a tensor whose length is not a multiple of ``block_size`` ends in a short
block of its own, exactly as the golden model treats the trailing partial block
(:class:`~qdp.hdl.block_store.BlockStore` states what short blocks cost). ``scale``
carries one absmax per block, in block order, pushed when the block starts to drain.

Latency and throughput
----------------------
``latency = out_width + F + 5 + pipeline`` cycles (4 more for float input): from the
cycle in which a block's last input beat is accepted to the cycle in which that block's
first output beat is valid on ``o``, when no earlier block is still draining and ``o`` is
ready. The remaining beats follow one per cycle; the block's absmax is valid on ``scale`` ``scale_latency = 3``
cycles after the same beat. ``throughput`` is 1 beat (``lanes`` elements) per cycle,
sustained across back-to-back blocks of any size (``block_size / lanes`` cycles per
block) as long as ``o`` and ``scale`` are ready.

``pipeline`` trades latency for clock rate: 1 puts a register between the rounding
decision (a wide sticky OR, or stochastic's 32-bit carry) and the rounding adder, 2 also
between ``x + A`` and ``qmax * (x + A)``, 3 also right behind the memory's read data (a
block RAM's data comes late in its cycle: large blocks want 3); the default is 2 (the
README gives the clock rates and sizes measured per configuration). Whatever the setting,
the control runs from registered flags (credit and scale-FIFO room, last row, "row already
read") so that accepting a beat, issuing a read and starting a drain stay a few LUT levels
deep. ``i.ready`` is a function of registers only.

Resources
---------
Block storage: one memory of ``block_size / lanes`` rows of ``lanes * in_width`` bits
(``storage_bits``), one read and one write port, BRAM-inferable. Besides it: the divider
pipeline (``out_width + F`` stages of ``lanes`` ``in_width``-bit subtractors and
``lanes * (in_width - 1 + out_width + F)`` flip-flops), an output FIFO of ``latency + 1``
entries of ``lanes * out_width + 2`` bits that absorbs the pipeline on backpressure, and a
3-entry FIFO for ``scale``; the registered write (address, data) and its copy for the
one-row read add ``2 * lanes * in_width`` flip-flops. ``stochastic`` costs 32 more
divider stages, and a 32-bit LFSR per lane.
"""

from amaranth.hdl import C, Cat, Mux, Signal, signed, unsigned
from amaranth.lib import data

from ..golden.lfsr import DEFAULT_SEED
from ..golden.rounding import ABSMAX_MODELS, NEAREST_MODES, ROUNDING_MODES, STOCHASTIC_BITS
from ..golden.floats import float_format
from ._checks import check_block_size, check_choice, check_int
from .absmax_float import Float32Quantize, scale_layout
from .block_store import BlockStore
from .floats import unpack
from .lfsr import lfsr_register
from .rounding import tie_goes_up

__all__ = ["BlockwiseAbsmax"]

#: Registered stages that turn float elements into integers (see "Float input").
_TO_INTEGER_STAGES = 4


def _fraction_bits(rounding):
    """F: the quotient bits below the binary point that ``rounding`` reads."""
    if rounding == "stochastic":
        return STOCHASTIC_BITS
    if rounding in NEAREST_MODES:
        return 1
    return 0


class BlockwiseAbsmax(BlockStore):
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
    pipeline : int
        Extra pipeline registers in the read and divider path, 0..3, one cycle of latency
        each (see the module documentation).
    in_format : str
        ``"int"`` (signed ``in_width``-bit integers), or a float format (``"fp32"``,
        ``"bf16"``, ``"fp16"``, ``"eXmY"``): elements and ``scale`` are then its bit
        patterns, ``in_width`` is not used, and ``model`` of
        :mod:`qdp.golden.absmax_float` is computed (see "Float input").
    model : str
        ``"exact"`` or, for float input, ``"float32"`` (half_even only; see "Float
        input").

    Attributes
    ----------
    latency : int
        Cycles from the acceptance of a block's last input beat to its first output beat:
        ``out_width + F + 5 + pipeline``, 4 more for float input.
    scale_latency : int
        Cycles from the acceptance of a block's last input beat to its absmax being valid
        on ``scale`` (3: the drain starts, then the scale FIFO's two registered cycles;
        ``latency`` in the float32 model).
    latency_definition : dict
        What ``latency`` and ``scale_latency`` count (the manifest's ``latency``).
    ready_dependencies : dict
        ``{"i": ()}``: ``i.ready`` depends on neither ``o.ready`` nor ``scale.ready`` in
        the same cycle (a function of registers only).
    dsp_tiles : int
        Registered multiplier tiles, each a MULT18X18D on ECP5: none in the exact model
        (a divider); in the float32 model those of ``c * x`` per lane.
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
        ``|-2**(in_width-1)|``; a float format's pattern for float input). In the
        float32 model a :py:`StructLayout({"absmax": ..., "c": unsigned(32)})`: the
        absmax and the block constant ``c`` as an FP32 pattern.
    """

    #: The range of each integer parameter, ``(lo, hi)`` inclusive: the checks in
    #: ``__init__`` and ``qdp list`` read it (``block_size`` is also a multiple of
    #: ``lanes``, at least ``lanes``).
    RANGES = {"lanes": (1, 16), "in_width": (2, 32), "out_width": (2, 8),
              "block_size": (1, 65536), "lfsr_seed": (0, (1 << 32) - 1), "pipeline": (0, 3)}

    def __init__(self, block_size=64, *, lanes=1, in_width=16, out_width=8,
                 rounding="half_even", lfsr_seed=DEFAULT_SEED, pipeline=2, in_format="int",
                 model="exact"):
        rounding = "half_even" if rounding is None else rounding
        try:
            self._check_parameters(block_size, lanes, in_width, out_width, rounding, lfsr_seed,
                                   pipeline)
            self._fmt = None if in_format == "int" else float_format(in_format, "in_format")
            self._model = self._check_model(model, self._fmt, rounding)
        except (TypeError, ValueError):
            # A component that failed its checks is not "unused": don't warn about it later.
            self._MustUse__used = True
            raise

        self._in_width = in_width
        self._out_width = out_width
        self._pipeline = pipeline
        self._rounding = rounding
        self._lfsr_seed = lfsr_seed

        self._frac_bits = _fraction_bits(rounding)
        self._quot_bits = out_width + self._frac_bits
        if self._fmt is None:
            element = signed(in_width)
            self._div_width = in_width
        else:
            element = unsigned(self._fmt.width)
            # x and absmax as integers over a common scale: see "Float input".
            self._align_bits = self._quot_bits + 2
            self._div_width = self._fmt.precision + self._align_bits + 1
        if self._model == "float32":
            # issue -> read data [-> register] -> the float32 stages -> FIFO write
            pipe_latency = 1 + (pipeline >= 3) + Float32Quantize(self._fmt, out_width).latency
        else:
            # issue -> read data -> [to integers (+4)] -> prepare (+1) -> K divider
            # stages -> (+1) FIFO write
            pipe_latency = self._quot_bits + 2 + pipeline \
                + _TO_INTEGER_STAGES * (self._fmt is not None)
        super().__init__(block_size=block_size, lanes=lanes, element=element, fmt=self._fmt,
                         result=signed(out_width), scale=self._scale_shape(element),
                         read_register=pipeline >= 3, pipe_latency=pipe_latency,
                         scale_at_drain=self._model == "exact")

    def _scale_shape(self, element):
        if self._fmt is None:
            return unsigned(element.width)
        return scale_layout(self._fmt, self._model)

    @staticmethod
    def _check_model(model, fmt, rounding):
        check_choice("model", model, ABSMAX_MODELS)
        if model == "exact":
            return model
        if fmt is None:
            raise ValueError("model: 'float32' needs a float in_format; integer input is "
                             "quantized exactly (model='exact')")
        if rounding != "half_even":
            raise ValueError(f"rounding: the float32 model rounds half to even (rint); "
                             f"got {rounding!r} (use model='exact' for the other modes)")
        return model

    @staticmethod
    def _check_parameters(block_size, lanes, in_width, out_width, rounding, lfsr_seed,
                          pipeline):
        ranges = BlockwiseAbsmax.RANGES
        check_int("lanes", lanes, *ranges["lanes"])
        check_int("in_width", in_width, *ranges["in_width"])
        check_int("out_width", out_width, *ranges["out_width"])
        check_block_size(block_size, lanes, ranges["block_size"][1])
        check_choice("rounding", rounding, ROUNDING_MODES)
        check_int("lfsr_seed", lfsr_seed, *ranges["lfsr_seed"])
        check_int("pipeline", pipeline, *ranges["pipeline"])

    @property
    def in_width(self):
        return self._in_width

    @property
    def in_format(self):
        return "int" if self._fmt is None else self._fmt.name

    @property
    def model(self):
        return self._model

    @property
    def element_width(self):
        """Bits of one element on ``i`` and of ``scale``: ``in_width``, or the float
        format's width."""
        return self._elem_width

    @property
    def out_width(self):
        return self._out_width

    @property
    def rounding(self):
        return self._rounding

    @property
    def lfsr_seed(self):
        return self._lfsr_seed

    @property
    def pipeline(self):
        return self._pipeline

    @property
    def dsp_tiles(self):
        if self._model != "float32":
            return 0
        return self.lanes * Float32Quantize(self._fmt, self._out_width).tiles_per_lane

    def datapath(self, m, valid, absmax, first, last, row, out_fifo, scale_fifo):
        """Divide the row by its absmax, round, queue the beat for ``o``."""
        if self._model == "float32":
            self.staged_datapath(m, Float32Quantize(self._fmt, self._out_width), valid,
                                 absmax, first, last, row, out_fifo, scale_fifo)
            return
        if self._fmt is not None:
            valid, absmax, first, last, row = self._to_integers(m, valid, absmax, first, last,
                                                                row)
        stage = self._prepare(m, valid, absmax, first, last, row)
        stage = self._divide(m, stage)
        integers, ups = self._round_decision(m, stage)
        self._output(m, stage, integers, ups, out_fifo)

    def _to_integers(self, m, valid, absmax, first, last, row):
        """Float input: the block's absmax and each element as integers of one scale,
        ``_TO_INTEGER_STAGES`` cycles later, the flags alongside (see "Float input"): ``A =
        significand(absmax) << D``, ``x = ±(significand(x) << (D - d))`` with ``d`` the
        exponent difference, ``±1`` when ``d > D``. An Inf or NaN absmax gives ``A = 0``:
        every q 0. The exponent difference (right behind the memory's read data), the
        shift amount, the shift and the negation take a cycle each."""
        fmt, D, width = self._fmt, self._align_bits, self._div_width
        fa = unpack(absmax, fmt)
        a_int = Signal(width, name="a_int")
        m.d.sync += a_int.eq(Mux(fa.nan | fa.inf, 0, fa.significand << D))
        row_int = Signal(data.ArrayLayout(signed(width), self._lanes))
        for lane in range(self._lanes):
            fx = unpack(row[lane], fmt)
            d = Signal(signed(fmt.exp_bits + 1), name=f"d{lane}")
            m.d.sync += d.eq(fa.biased_exponent - fx.biased_exponent)
            sig, sign = self._register(m, f"float{lane}", [fx.significand, fx.sign])
            left = Signal(range(D + 1), name=f"left{lane}")
            tiny = Signal(name=f"tiny{lane}")
            m.d.sync += [left.eq((D - d)[:len(left)]), tiny.eq(d > D)]
            sig, sign = self._register(m, f"shift{lane}", [sig, sign])
            mag = Signal(width - 1, name=f"mag_int{lane}")
            m.d.sync += mag.eq(Mux(tiny, sig != 0, sig << left))
            (sign,) = self._register(m, f"mag{lane}", [sign])
            m.d.sync += row_int[lane].eq(Mux(sign, -mag, mag))
        # The flags alongside all four stages, the absmax alongside the last three.
        for k in range(_TO_INTEGER_STAGES):
            valid, first, last = self._register(m, f"to_int{k}", [valid, first, last])
            if k:
                (a_int,) = self._register(m, f"a_int{k}", [a_int])
        return valid, a_int, first, last, row_int

    def _prepare(self, m, valid, absmax, first, last, row):
        """Divider stage 0: ``N = qmax * (x + A) >= 0`` split into the first partial
        remainder ``N >> out_width`` and the dividend bits still to bring down.

        ``x + A`` and ``qmax * (x + A)`` are two carry chains; ``pipeline >= 2`` puts a
        register between them."""
        lanes, iw, ow = self._lanes, self._div_width, self._out_width
        shifted, negative = [], []
        for lane in range(lanes):
            x = row[lane]
            xa = Signal(iw + 1, name=f"xa{lane}")               # x + A in [0, 2A]
            neg = Signal(name=f"neg{lane}")
            m.d.comb += [xa.eq(x + absmax), neg.eq(x < 0)]
            shifted.append(xa)
            negative.append(neg)
        if self._pipeline >= 2:
            valid, absmax, first, last, *rest = self._register(
                m, "prep", [valid, absmax, first, last, *shifted, *negative])
            shifted, negative = rest[:lanes], rest[lanes:]

        stage = self._stage_signals(0)
        m.d.sync += [
            stage["valid"].eq(valid), stage["absmax"].eq(absmax), stage["zero"].eq(absmax == 0),
            stage["first"].eq(first), stage["last"].eq(last),
        ]
        for lane in range(lanes):
            numer = Signal(iw + ow - 1, name=f"numer{lane}")  # qmax (x + A) < 2**(ow-1) 2A
            m.d.comb += numer.eq((shifted[lane] << (ow - 1)) - shifted[lane])
            m.d.sync += [
                stage["neg"][lane].eq(negative[lane]),
                stage["rem"][lane].eq(numer[ow:]),
                stage["bits"][lane].eq(numer[:ow] << self._frac_bits),
            ]
        return stage

    def _divide(self, m, stage):
        """K restoring division stages, one exact quotient bit each (remainder < A).

        ``bits`` holds the dividend bits still to bring down (high end) and the quotient
        bits produced so far (low end); after K stages it is the quotient
        ``floor(N * 2**F / A)`` and ``rem`` its remainder."""
        K = self._quot_bits
        for k in range(1, K + 1):
            nxt = self._stage_signals(k)
            m.d.sync += [nxt[key].eq(stage[key])
                         for key in ("valid", "absmax", "zero", "first", "last")]
            for lane in range(self._lanes):
                trial = Cat(stage["bits"][lane][K - 1], stage["rem"][lane])
                fits = Signal(name=f"s{k}_q{lane}")
                m.d.comb += fits.eq(trial >= stage["absmax"])
                m.d.sync += [
                    nxt["neg"][lane].eq(stage["neg"][lane]),
                    nxt["rem"][lane].eq(Mux(fits, trial - stage["absmax"], trial)),
                    nxt["bits"][lane].eq(Cat(fits, stage["bits"][lane][:K - 1])),
                ]
            stage = nxt
        return stage

    def _stage_signals(self, k):
        """The registers of divider stage ``k`` (``s<k>_...``)."""
        lanes = self._lanes
        return {
            "valid": Signal(name=f"s{k}_valid"),
            "absmax": Signal(self._div_width, name=f"s{k}_absmax"),
            "zero": Signal(name=f"s{k}_zero"),
            "first": Signal(name=f"s{k}_first"),
            "last": Signal(name=f"s{k}_last"),
            "neg": [Signal(name=f"s{k}_neg{l}") for l in range(lanes)],
            "rem": [Signal(self._div_width - 1, name=f"s{k}_rem{l}") for l in range(lanes)],
            "bits": [Signal(self._quot_bits, name=f"s{k}_bits{l}") for l in range(lanes)],
        }

    def _round_decision(self, m, stage):
        """Per lane, ``integer = floor(v) + qmax`` (in ``[0, 2 qmax]``) and the one-bit
        increment ``up`` of the rounding mode, from the last divider stage."""
        F = self._frac_bits
        integers, ups = [], []
        for lane in range(self._lanes):
            quotient = stage["bits"][lane]
            integer = quotient[F:]
            random = None
            if self._rounding == "stochastic":
                random = lfsr_register(m, self._lfsr_seed, lane, step=stage["valid"])
            up = self._increment(quotient, integer, sticky=stage["rem"][lane] != 0,
                                 negative=stage["neg"][lane], random=random)
            up_bit = Signal(name=f"up{lane}")
            m.d.comb += up_bit.eq(up)
            integers.append(integer)
            ups.append(up_bit)
        return integers, ups

    def _increment(self, quotient, integer, *, sticky, negative, random):
        """Whether ``floor(v)`` rounds up: see "Why the division is always exact"."""
        F = self._frac_bits
        if self._rounding == "stochastic":
            return (quotient[:F] + random)[F]       # carry of g + r
        if self._rounding == "floor":
            return C(0, 1)
        if self._rounding == "trunc":
            return negative & sticky
        # floor(v) = integer - qmax with qmax odd: floor(v) is odd when integer is even.
        tie_up = tie_goes_up(self._rounding, integer_lsb=~integer[0], negative=negative)
        return quotient[0] & (sticky | tie_up)

    def _output(self, m, stage, integers, ups, out_fifo):
        """``q = integer + up - qmax`` (0 for a block whose absmax is 0) into the output
        FIFO, which ``o`` reads."""
        lanes, ow = self._lanes, self._out_width
        qmax = (1 << (ow - 1)) - 1
        valid, zero, first, last = stage["valid"], stage["zero"], stage["first"], stage["last"]
        if self._pipeline >= 1:
            # The rounding decision (a wide sticky OR, or stochastic's 32-bit carry) and
            # the rounding adder in separate cycles.
            valid, zero, first, last, *rest = self._register(
                m, "rounding", [valid, zero, first, last, *integers, *ups])
            integers, ups = rest[:lanes], rest[lanes:]
        qs = [Mux(zero, 0, integers[lane] + ups[lane] - qmax) for lane in range(lanes)]
        self.push(m, valid, first, last, qs, out_fifo)

