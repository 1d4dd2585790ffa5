"""Blockwise dequantization, the seeds' Eq. 2: ``q`` and its block's absmax (or ``c``) in,
floats out, exactly as :func:`qdp.golden.dequantize_blockwise` states it."""

from amaranth.hdl import Mux, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..golden.floats import FP32, float_format
from ..golden.rounding import ABSMAX_MODELS
from ._checks import check_choice, check_int
from .absmax_float import scale_layout
from .floats import (RoundingStages, division_step, exponent_shape, leading_zeros,
                     quotient_value, shift_by_eights, unpack)
from .multiplier import (MULTIPLY, adder_levels, pipeline_products, registered_multiplier,
                         tiles)
from .pipeline import BEAT_LATENCY
from .scale_fields import block_scaled_module
from .scaled_product import product_bits

__all__ = ["AbsmaxDequantize"]


class AbsmaxDequantize(wiring.Component):
    """Eq. 2 on ``lanes`` quantized elements per beat, one scale per block.

    The result equals :func:`qdp.golden.dequantize_blockwise` (float ``in_format``) bit
    for bit, for every ``q`` and every bit pattern of the scale (see
    :mod:`qdp.golden.absmax_float`):

    ``"exact"``
        ``q * absmax / qmax`` rounded once to ``out_format`` (half to even, subnormals
        exact, overflow to Inf): the exact product ``|q| * significand(absmax)`` on a DSP
        tile, normalized, divided by the constant ``qmax`` in ``precision + 2`` restoring
        steps with a sticky remainder, and rounded. The absmax's sign bit is not read (an
        absmax is a magnitude, as in the golden model).
    ``"float32"``
        ``fl_out(fl32(q / c))``: ``|q|`` and ``c``'s significand normalized, 26 restoring
        division steps, the rounding to FP32, and for BF16/FP16/eXmY out a second
        rounding, as ``(q / c).to(dtype)`` computes it. IEEE special values: ``c`` NaN
        gives NaN, ``q / 0`` is ±Inf (``0 / 0`` NaN), ``q / Inf`` is ±0.

    NaN results are the format's canonical quiet NaN, positive.

    Parameters
    ----------
    lanes : int
        Elements per beat, 1..16.
    in_format : str
        The absmax's format, that of the absmax unit's input: ``"fp32"``, ``"bf16"``,
        ``"fp16"`` or ``"eXmY"``.
    out_width : int
        Width of the signed ``q``, 2..8: ``qmax = 2**(out_width-1) - 1``.
    out_format : str
        The result's format.
    model : str
        ``"exact"`` or ``"float32"``.

    Members
    -------
    i : ``In(stream.Signature(StructLayout({"data": ..., "first": 1, "last": 1})))``
        ``data`` is ``ArrayLayout(signed(out_width), lanes)``: the absmax unit's ``o``.
        A beat with ``first`` set starts a block and takes the next beat of ``scale``.
    scale : ``In(stream.Signature(...))``
        One beat per block, the absmax unit's ``scale``: the absmax pattern
        (``unsigned(width)``) in the exact model, a ``StructLayout`` of ``absmax`` and
        ``c`` (FP32) in the float32 model, of which ``c`` is read.
    o : ``Out(stream.Signature(StructLayout({"data": ..., "first": 1, "last": 1})))``
        ``data`` is ``ArrayLayout(unsigned(out width), lanes)``, the results' patterns;
        ``first`` and ``last`` as they came in. One beat per input beat, in order,
        ``latency`` cycles later with ``o.ready`` high.
    latency : int
        The input register; exact: the operands, the product (a MULT18X18D's three
        registers and its adder levels), the leading zeros, the normalization in two
        steps, ``precision + 2`` division steps, the sticky bit, eight rounding stages
        (:class:`~qdp.hdl.floats.RoundingStages`) and the output; float32: the operands,
        the normalization in two steps, 26 division steps, the sticky bit, eight stages
        per rounding and the output: FP32 to FP32 45 cycles (exact) and 40 (float32),
        BF16 to BF16 28 and 48.
    """

    RANGES = {"lanes": (1, 16), "out_width": (2, 8)}

    def __init__(self, *, lanes=1, in_format="fp32", out_width=8, out_format="fp32",
                 model="exact"):
        self.lanes = check_int("lanes", lanes, *self.RANGES["lanes"])
        self.fmt = float_format(in_format, "in_format")
        self.in_format = self.fmt.name
        self.out_width = check_int("out_width", out_width, *self.RANGES["out_width"])
        self.out = float_format(out_format, "out_format")
        self.out_format = self.out.name
        self.model = check_choice("model", model, ABSMAX_MODELS)
        self.qmax = (1 << (out_width - 1)) - 1
        self.exp_shape = exponent_shape(FP32, extra=3)
        if model == "exact":
            # |q| (out_width bits: -2**(out_width-1) too) times the absmax significand.
            self.width = out_width + self.fmt.precision
            self.quotient_bits = self.out.precision + 2
        else:
            self.width = max(FP32.precision, out_width)
            self.quotient_bits = FP32.precision + 2
        element = data.StructLayout({"data": data.ArrayLayout(signed(out_width), lanes),
                                     "first": 1, "last": 1})
        result = data.StructLayout({"data": data.ArrayLayout(unsigned(self.out.width), lanes),
                                    "first": 1, "last": 1})
        super().__init__({
            "i": In(stream.Signature(element)),
            "scale": In(stream.Signature(scale_layout(self.fmt, model))),
            "o": Out(stream.Signature(result)),
        })

    throughput = 1
    latency_definition = BEAT_LATENCY
    #: No skid buffer: both inputs' ready follow ``o.ready``.
    ready_dependencies = {"i": ("o",), "scale": ("o",)}

    @property
    def _operand_shapes(self):
        return unsigned(self.out_width), unsigned(self.fmt.precision)

    @property
    def dsp_tiles(self):
        """Registered multiplier tiles (exact model), each a MULT18X18D on ECP5."""
        if self.model != "exact":
            return 0
        return self.lanes * tiles(*self._operand_shapes)

    def _multiplier(self):
        return registered_multiplier(*self._operand_shapes)

    def _stages(self):
        """The pipeline, one register after each stage, the output register after them."""
        divide = [self._divide] * self.quotient_bits + [self._round_input]
        if self.model == "exact":
            return [lambda v: v, self._exact_operands, MULTIPLY, self._count,
                    self._exact_shift, self._exact_normalize] + divide \
                + self._rounding(self.out)
        second = self._rounding(self.out) if self.out != FP32 else []
        return [lambda v: v, self._float32_operands, self._float32_shift,
                self._float32_normalize] + divide \
            + self._rounding(FP32) + second

    def _rounding(self, fmt):
        return RoundingStages(precision=fmt.precision, fmt=fmt,
                              exp_shape=self.exp_shape).stages()

    @property
    def latency(self):
        # The MULTIPLY marker counts for the output register; the multiplier for itself.
        if self.model == "exact":
            a, b = self._operand_shapes
            return len(self._stages()) + 3 + adder_levels(a, b)
        return len(self._stages()) + 1

    def elaborate(self, platform):
        def products(m, pipe):
            return {MULTIPLY: lambda v: pipeline_products(m, pipe, v, self._multiplier)}
        return block_scaled_module(self, self._stages(), self._output,
                                   scale_bits=self._scale_bits, special=products)

    @property
    def _scale_bits(self):
        """Where the scale this model reads lies in the ``scale`` payload."""
        w = self.fmt.width
        return slice(0, w) if self.model == "exact" else slice(w, w + FP32.width)

    def _magnitude(self, q):
        return Mux(q < 0, -q, q).as_unsigned()[:self.out_width]

    # -- exact: q * absmax / qmax --------------------------------------------------------

    def _exact_operands(self, v):
        q, fa = v["q"], unpack(v["s"], self.fmt)
        zero = q == 0
        return dict(a=self._magnitude(q), b=fa.significand, sign=q < 0,
                    exponent=fa.exponent, nan=fa.nan | (fa.inf & zero),
                    inf=fa.inf & ~zero)

    def _count(self, v):
        return dict(v, lz=leading_zeros(v["significand"]))

    def _exact_shift(self, v):
        """``N / qmax = (N' / qmax') * 2**exponent`` with ``N'`` and ``qmax'`` both
        ``width`` bits, top bit set: the exponent, and ``N`` shifted by the multiple of 8
        in its leading zeros."""
        w, top = self.width, self.out_width - 1
        exponent = v["exponent"] - v["lz"] + (w - top)
        out = {k: val for k, val in v.items() if k not in ("significand", "lz", "exponent")}
        return dict(out, n=shift_by_eights(v["significand"], v["lz"]), fine=v["lz"][:3],
                    exponent=self._exponent(exponent))

    def _exact_normalize(self, v):
        """The rest of the shift: the divider's remainder ``N'`` and divisor ``qmax'``."""
        w, top = self.width, self.out_width - 1
        out = {k: val for k, val in v.items() if k not in ("n", "fine")}
        return dict(out, rem=(v["n"] << v["fine"])[:w], divisor=self.qmax << (w - top))

    # -- float32: fl32(q / c) ------------------------------------------------------------

    def _float32_operands(self, v):
        q, fc = v["q"], unpack(v["s"], FP32)
        zero = q == 0
        magnitude = self._magnitude(q)
        nan = fc.nan | (fc.zero & zero)
        return dict(q=magnitude, lzq=leading_zeros(magnitude),
                    c=fc.significand, lzc=leading_zeros(fc.significand),
                    ec=fc.exponent, sign=(q < 0) ^ fc.sign, nan=nan,
                    inf=fc.zero & ~zero & ~nan, vanish=fc.inf)

    def _float32_shift(self, v):
        """``|q| / c = (num / den) * 2**exponent``, both ``width`` bits, top bit set: the
        exponent, and both shifted by the multiple of 8 in their leading zeros."""
        out = {k: val for k, val in v.items() if k not in ("q", "lzq", "c", "lzc")}
        return dict(out, q=shift_by_eights(v["q"], v["lzq"]), fq=v["lzq"][:3],
                    c=shift_by_eights(v["c"], v["lzc"]), fc=v["lzc"][:3],
                    lz=(v["lzc"] - v["lzq"]).as_signed())

    def _float32_normalize(self, v):
        """The rest of both shifts: the divider's remainder and divisor; the exponent (one
        subtraction a stage after the other)."""
        w, p = self.width, FP32.precision
        num = ((v["q"] << v["fq"])[:self.out_width] << (w - self.out_width))[:w]
        den = ((v["c"] << v["fc"])[:p] << (w - p))[:w]
        exponent = v["lz"] - v["ec"] + (w - p) - (w - self.out_width)
        out = {k: val for k, val in v.items() if k not in ("q", "fq", "c", "fc", "lz", "ec")}
        return dict(out, rem=num, divisor=den, exponent=self._exponent(exponent))

    # -- shared --------------------------------------------------------------------------

    def _exponent(self, value):
        return value.as_signed()[:self.exp_shape.width].as_signed()

    def _divide(self, v):
        return division_step(v, self.width)

    def _round_input(self, v):
        """The quotient with its sticky bit as the rounding stages' value
        (:func:`~qdp.hdl.floats.quotient_value`); 0 for a ``q / Inf``."""
        out = quotient_value(v, self.quotient_bits, self.exp_shape)
        if "vanish" not in v:
            return out
        vanish = out.pop("vanish")
        return dict(out, significand=Mux(vanish, 0, out["significand"]))

    def _output(self, v):
        return product_bits(v, self.out)
