"""NF4 dequantization: 4-bit codes and one FP32 absmax per block in, FP32 out, exactly as
:func:`qdp.golden.nf4_dequantize` (bitsandbytes' ``dDequantizeNF4(q) * absmax``) states
it."""

from amaranth.hdl import Array, Const, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..golden.floats import FP32
from ..golden.nf4 import CODE_VALUES
from ._checks import check_bool, check_int
from .double_quant import CONSTANTS, DoubleDequantize
from .dsp import DSPMultiplier
from .floats import RoundingStages, constant_parts, exponent_shape
from .multiplier import (MULTIPLY, adder_levels, pipeline_products, registered_multiplier,
                         tiles)
from .pipeline import BEAT_LATENCY
from .scale_fields import block_scaled_module
from .scaled_product import product_bits, product_operands

__all__ = ["Nf4Dequantize"]

#: The code of 0.0.
ZERO_CODE = 7


def _code_parts():
    """``(sign, significand, exponent)`` of each code value, the significand normalized to
    FP32's 24 bits (0 for the zero code)."""
    parts = []
    for code, value in enumerate(CODE_VALUES.view("uint32")):
        parts.append((0, 0, 0) if code == ZERO_CODE else constant_parts(int(value), FP32))
    return parts


class Nf4Dequantize(wiring.Component):
    """``fl32(CODE_VALUES[code] * absmax)`` on ``lanes`` codes per beat, one FP32 absmax
    per block: the exact product of the two significands on registered DSP tiles, rounded
    once to FP32 (half to even, subnormals rounded, overflow to Inf).

    Equal to :func:`qdp.golden.nf4_values` for every code and every absmax pattern: a
    negative absmax (a block of NaNs' ``-FLT_MAX``) flips the sign, a zero absmax gives a
    signed zero, ``0 * Inf`` and a NaN absmax the canonical NaN ``0x7FC00000``.

    Parameters
    ----------
    lanes : int
        Codes per beat, 1..32.
    double_quant : bool
        The block constants arrive double-quantized (QLoRA's ``compress_statistics``):
        ``scale`` carries per block its 8-bit code, the FP32 ``absmax2`` of its group of
        256 and the tensor's FP32 ``offset``, and the block's absmax is
        ``fl32(fl32(T[code] * absmax2) + offset)``
        (:class:`~qdp.hdl.double_quant.DoubleDequantize`, on the scale stream before the
        join: a block's first beat waits for its constant, 27 cycles after the
        constant's beat, so a producer sends constants ahead).

    Members
    -------
    i : ``In(stream.Signature(StructLayout({"data": ..., "first": 1, "last": 1})))``
        ``data`` is ``ArrayLayout(unsigned(4), lanes)``, the codes as
        :class:`~qdp.hdl.Nf4Quantize` emits them. A beat with ``first`` set starts a
        block and takes the next beat of ``scale``.
    scale : ``In(stream.Signature(unsigned(32)))``
        One FP32 absmax pattern per block; with ``double_quant``
        ``In(stream.Signature(CONSTANTS))``, :data:`~qdp.hdl.double_quant.CONSTANTS`.
    o : ``Out(stream.Signature(StructLayout({"data": ..., "first": 1, "last": 1})))``
        ``data`` is ``ArrayLayout(unsigned(32), lanes)``, FP32 patterns; ``first`` and
        ``last`` as they came in. One beat per input beat, in order, ``latency`` cycles
        later with ``o.ready`` high.
    latency : int
        The input register, the operands (the code's value from a table, the absmax's
        fields), the multiplier, eight rounding stages and the output register.
    dsp_tiles : int
        ``lanes`` products of 24 x 24 bits: 4 tiles each (4 more with ``double_quant``).
    """

    RANGES = {"lanes": (1, 32)}

    def __init__(self, *, lanes=1, double_quant=False):
        self.lanes = check_int("lanes", lanes, *self.RANGES["lanes"])
        self.double_quant = check_bool("double_quant", double_quant)
        self.exp_shape = exponent_shape(FP32, extra=3)
        codes = data.StructLayout({"data": data.ArrayLayout(unsigned(4), lanes),
                                   "first": 1, "last": 1})
        result = data.StructLayout({"data": data.ArrayLayout(unsigned(FP32.width), lanes),
                                    "first": 1, "last": 1})
        super().__init__({
            "i": In(stream.Signature(codes)),
            "scale": In(stream.Signature(CONSTANTS if double_quant
                                         else unsigned(FP32.width))),
            "o": Out(stream.Signature(result)),
        })

    throughput = 1
    latency_definition = BEAT_LATENCY
    #: No skid buffer: both inputs' ready follow ``o.ready``.
    ready_dependencies = {"i": ("o",), "scale": ("o",)}
    _operand_shapes = (unsigned(FP32.precision), unsigned(FP32.precision))

    @property
    def dsp_tiles(self):
        return self.lanes * tiles(*self._operand_shapes) \
            + (DoubleDequantize.dsp_tiles if self.double_quant else 0)

    def _multiplier(self):
        return registered_multiplier(*self._operand_shapes)

    def _stages(self):
        rounding = RoundingStages(precision=FP32.precision, fmt=FP32, exp_shape=self.exp_shape)
        return [lambda v: v, self._operands, MULTIPLY] + rounding.stages()

    @property
    def latency(self):
        # The MULTIPLY marker counts for the output register; the multiplier for itself.
        return len(self._stages()) + DSPMultiplier.latency + adder_levels(*self._operand_shapes)

    def elaborate(self, platform):
        def products(m, pipe):
            return {MULTIPLY: lambda v: pipeline_products(m, pipe, v, self._multiplier)}
        if not self.double_quant:
            return block_scaled_module(self, self._stages(), self._output, special=products)
        constants = DoubleDequantize()
        m = block_scaled_module(self, self._stages(), self._output, special=products,
                                scale=constants.o)
        m.submodules.constants = constants
        wiring.connect(m, wiring.flipped(self.scale), constants.i)
        return m

    def _operands(self, v):
        """The code's value and the absmax as the product's operands, sign and exponent;
        IEEE's special cases beside them."""
        code, parts = v["q"], _code_parts()
        exponent = Array(Const(e, self.exp_shape) for _, _, e in parts)[code]
        return product_operands(code < ZERO_CODE,
                                Array(Const(s, FP32.precision) for _, s, _ in parts)[code],
                                exponent, code == ZERO_CODE, v["s"], FP32, self.exp_shape)

    @staticmethod
    def _output(v):
        return product_bits(v, FP32)
