# amaranth: UnusedElaboratable=no
# (The MacArray and Quantizer built here are always elaborated with the QLinear; only a
# constructor that raises leaves them unused, and that is not worth a warning.)
"""The quantized linear layer: MAC array, per-column bias, per-column Quantizer."""

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from ..golden.rounding import ROUNDING_MODES
from ..golden.saturation import SATURATION_MODES
from ._checks import check_choice, check_int, check_ints
from .mac_array import MacArray
from .quantizer import Quantizer

__all__ = ["QLinear"]

# An entry of the flags FIFO beside the Quantizer: an output row's first/last flags.
_FLAGS = data.StructLayout({"first": 1, "last": 1})


class QLinear(wiring.Component):
    """A quantized linear layer: ``y = quantize(R(C + bias))`` per output column, with
    ``C`` the :class:`MacArray` tile and ``quantize`` the :class:`Quantizer`.

    The result equals :func:`qdp.golden.qlinear.qlinear` bit for bit: ``R`` is the
    accumulator's rule (wrap, or with ``saturate`` clip to ``acc_width`` bits), applied
    to every partial sum and to the bias addition; then per column
    ``saturate(round(acc * M / 2**S) + Z)``.

    Datapath. ``MacArray -> bias adder -> Quantizer(lanes=cols, per_lane)``. The bias
    adder is combinational between the array's output registers and the Quantizer's
    first register (``quant_latency`` 4 registers the Quantizer's input, which keeps the
    adder off the multiplier's path). The Quantizer's stream carries no flags, so the
    ``first``/``last`` flags of each output row wait in a small FIFO beside it: pushed
    when the Quantizer takes a row, popped when its result leaves. The Quantizer holds
    at most ``quant_latency`` rows in flight; the FIFO has one entry more.

    Latency: the :class:`MacArray`'s plus ``quant_latency`` (default, pipelined
    systolic: ``rows + cols + 8 + quant_latency`` cycles).

    Parameters
    ----------
    rows, cols, a_width, a_signed, b_width, b_signed, acc_width, saturate, runtime_zero,
    a_zero, b_zero, dataflow, pipelined
        As for :class:`MacArray` (B is the weight matrix: one column per output channel).
    bias : int or sequence of int
        Constant bias, one value or one per column, each fitting ``acc_width`` signed
        bits.
    multiplier, shift, zero_point : int or sequence of int
        Constant requantization per tensor or per column (``cols`` values), as for the
        :class:`Quantizer`'s constants.
    mult_width, out_width, out_signed, rounding, saturation
        As for the :class:`Quantizer` (``stochastic`` rounding is not offered here).
    quant_latency : int
        The Quantizer's pipeline depth, 1..4.

    Members
    -------
    i : ``In(stream.Signature(...))``
        The :class:`MacArray` input: one k-step per beat (``a``, ``b``, optional
        ``a_zero``/``b_zero``, ``last``).
    o : ``Out(stream.Signature(data.StructLayout(...)))``
        One row of the quantized tile per beat: ``data``
        (``ArrayLayout(out_shape, cols)``), ``first``, ``last``.
    """

    #: The range of each integer parameter of its own, ``(lo, hi)`` inclusive (the others
    #: are :class:`MacArray`'s and :class:`Quantizer`'s): the checks and ``qdp list`` read it.
    RANGES = {"quant_latency": (1, 4)}

    def __init__(self, *, rows=4, cols=4, a_width=8, a_signed=True, b_width=8, b_signed=True,
                 acc_width=32, saturate=False, runtime_zero=False, a_zero=0, b_zero=0,
                 bias=0, multiplier=1, shift=0, zero_point=0, mult_width=32, out_width=8,
                 out_signed=True, rounding="half_even", saturation="sat", quant_latency=4,
                 dataflow="systolic", pipelined=True):
        self.array = MacArray(rows=rows, cols=cols, a_width=a_width, a_signed=a_signed,
                              b_width=b_width, b_signed=b_signed, acc_width=acc_width,
                              saturate=saturate, runtime_zero=runtime_zero, a_zero=a_zero,
                              b_zero=b_zero, dataflow=dataflow, pipelined=pipelined)
        for name in ("rows", "cols", "a_width", "a_signed", "b_width", "b_signed",
                     "acc_width", "saturate", "runtime_zero", "a_zero", "b_zero", "dataflow",
                     "pipelined"):
            setattr(self, name, getattr(self.array, name))
        if rounding == "stochastic":
            raise ValueError("rounding: stochastic rounding is not offered by qlinear; "
                             "expected one of " + ", ".join(m for m in ROUNDING_MODES
                                                           if m != "stochastic"))
        check_choice("rounding", rounding, ROUNDING_MODES)
        check_choice("saturation", saturation, SATURATION_MODES)
        self.quant_latency = check_int("quant_latency", quant_latency,
                                       *self.RANGES["quant_latency"])
        lo, hi = -(1 << (acc_width - 1)), (1 << (acc_width - 1)) - 1
        self.bias = self._per_column("bias", bias, cols)
        for v in self.bias:
            if not lo <= v <= hi:
                raise ValueError(f"bias: {v} is wider than acc_width {acc_width} "
                                 f"(allowed {lo}..{hi})")
        per = {name: list(self._per_column(name, value, cols)) for name, value in
               (("multiplier", multiplier), ("shift", shift), ("zero_point", zero_point))}
        # The Quantizer checks M, S, Z, widths and modes and names them.
        self.quantizer = Quantizer(lanes=cols, in_width=acc_width, in_signed=True,
                                   out_width=out_width, out_signed=out_signed,
                                   mult_width=mult_width, rounding=rounding,
                                   saturation=saturation, runtime_scale=False, per_lane=True,
                                   latency=quant_latency, **per)
        self.multiplier, self.shift, self.zero_point = (self.quantizer.multiplier,
                                                        self.quantizer.shift,
                                                        self.quantizer.zero_point)
        self.mult_width, self.out_width = self.quantizer.mult_width, out_width
        self.out_signed, self.rounding, self.saturation = out_signed, rounding, saturation
        out_layout = data.StructLayout({
            "data": data.ArrayLayout(self.quantizer.out_shape, cols), "first": 1, "last": 1})
        super().__init__({
            "i": In(stream.Signature(self.array.i.payload.shape())),
            "o": Out(stream.Signature(out_layout)),
        })

    @staticmethod
    def _per_column(name, value, cols):
        values = check_ints(name, value, cols, "column")
        return tuple(values * cols if len(values) == 1 else values)

    @property
    def lanes(self):
        """Elements per output beat (one row of the quantized tile)."""
        return self.cols

    @property
    def latency(self):
        """Cycles from a tile's last input beat to its first output beat."""
        return self.array.latency + self.quant_latency

    @property
    def throughput(self):
        """Input beats (k-steps) per cycle, for K >= rows."""
        return 1

    latency_definition = MacArray.latency_definition

    @property
    def ready_dependencies(self):
        """``i.ready`` is the array's; the array's ``o.ready`` is the Quantizer's
        ``i.ready`` (and the flags FIFO's room), which follows ``o.ready``."""
        through = self.array.ready_dependencies["i"] and self.quantizer.ready_dependencies["i"]
        return {"i": ("o",) if through else ()}

    @property
    def dsp_tiles(self):
        """Registered multiplier tiles (MULT18X18D in the ECP5 export)."""
        return self.array.dsp_tiles + self.quantizer.dsp_tiles

    def elaborate(self, platform):
        m = Module()
        m.submodules.array = array = self.array
        m.submodules.quantizer = quantizer = self.quantizer
        # One more entry than rows in flight: at full rate a row enters while another
        # leaves, and SyncFIFO's w_rdy does not count the concurrent read.
        m.submodules.flags = flags = fifo.SyncFIFO(width=_FLAGS.size,
                                                   depth=self.quant_latency + 1)
        read = data.View(_FLAGS, flags.r_data)
        wiring.connect(m, wiring.flipped(self.i), array.i)

        width = self.acc_width
        lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
        for c in range(self.cols):
            total = array.o.payload.data[c] + self.bias[c]           # exact: width + 1
            if self.saturate:
                total = Mux(total > hi, hi, Mux(total < lo, lo, total))
            biased = Signal(signed(width), name=f"biased{c}")
            m.d.comb += [biased.eq(total), quantizer.i.payload[c].eq(biased)]

        # A row enters the Quantizer only when its flags have room beside it.
        m.d.comb += [
            quantizer.i.valid.eq(array.o.valid & flags.w_rdy),
            array.o.ready.eq(quantizer.i.ready & flags.w_rdy),
            flags.w_en.eq(quantizer.i.valid & quantizer.i.ready),
            flags.w_data.eq(array.o.payload.first |
                            (array.o.payload.last << _FLAGS["last"].offset)),
            self.o.valid.eq(quantizer.o.valid),
            quantizer.o.ready.eq(self.o.ready),
            flags.r_en.eq(self.o.valid & self.o.ready),
            self.o.payload.first.eq(read.first),
            self.o.payload.last.eq(read.last),
        ]
        for c in range(self.cols):
            m.d.comb += self.o.payload.data[c].eq(quantizer.o.payload[c])
        return m
