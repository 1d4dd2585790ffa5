"""Double-quantized block constants back to FP32 in hardware: QLoRA's
``compress_statistics``, exactly as :func:`qdp.golden.double_dequantize` states it.

One constant per beat: ``fl32(fl32(T[code] * absmax2) + offset)``, ``T`` bitsandbytes'
signed 8-bit dynamic map (:func:`qdp.golden.double_quant.dynamic_map`, 256 FP32 values).
The map value's significand from a table times ``absmax2``'s on registered DSP tiles,
rounded to FP32 by the shared rounding stages and encoded; then the addition of
``offset`` (:class:`~qdp.hdl.float_add.AddStages`), rounded again. A pipeline that
stalls as one, no skid buffer."""

from amaranth.hdl import Array, Const, Module, Signal, Value, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..golden.double_quant import dynamic_map
from ..golden.floats import FP32
from .dsp import DSPMultiplier
from .float_add import AddStages
from .floats import RoundingStages, constant_parts, exponent_shape
from .multiplier import MULTIPLY, adder_levels, pipeline_products, registered_multiplier
from .pipeline import BEAT_LATENCY, Pipeline
from .scaled_product import product_bits, product_operands

__all__ = ["DoubleDequantize", "CONSTANTS"]

#: One double-quantized constant: its 8-bit code, the FP32 ``absmax2`` of its group of
#: 256 codes and the FP32 ``offset`` of its tensor.
CONSTANTS = data.StructLayout({"code": unsigned(8), "absmax2": unsigned(32),
                               "offset": unsigned(32)})


def _map_parts():
    """``(sign, significand, exponent)`` of each map value (0s for a zero)."""
    return [constant_parts(int(b), FP32) if int(b) & 0x7FFFFFFF else (0, 0, 0)
            for b in dynamic_map().view("uint32")]


class DoubleDequantize(wiring.Component):
    """``fl32(fl32(T[code] * absmax2) + offset)``, one constant per beat.

    Members
    -------
    i : ``In(stream.Signature(CONSTANTS))``
    o : ``Out(stream.Signature(unsigned(32)))``
        The FP32 constant, ``latency`` cycles after its beat with ``o.ready`` high.
    """

    _operand_shapes = (unsigned(FP32.precision), unsigned(FP32.precision))

    def __init__(self):
        self.exp_shape = exponent_shape(FP32, extra=3)
        super().__init__({"i": In(stream.Signature(CONSTANTS)),
                          "o": Out(stream.Signature(unsigned(FP32.width)))})

    throughput = 1
    latency_definition = BEAT_LATENCY
    ready_dependencies = {"i": ("o",)}
    dsp_tiles = 4

    def _rounding(self):
        return RoundingStages(precision=FP32.precision, fmt=FP32,
                              exp_shape=self.exp_shape).stages()

    def _stages(self):
        return ([lambda v: v, self._operands, MULTIPLY] + self._rounding()
                + [self._product] + AddStages(FP32, self.exp_shape).stages()
                + self._rounding())

    @property
    def latency(self):
        # The MULTIPLY marker counts for the output register; the multiplier for itself.
        return len(self._stages()) + DSPMultiplier.latency + adder_levels(*self._operand_shapes)

    def _multiplier(self):
        return registered_multiplier(*self._operand_shapes)

    def elaborate(self, platform):
        m = Module()
        advance = Signal()
        m.d.comb += [advance.eq(~self.o.valid | self.o.ready), self.i.ready.eq(advance)]
        pipe = Pipeline(m, advance, self.i.valid)
        products = {MULTIPLY: lambda v: pipeline_products(m, pipe, v, self._multiplier)}
        (v,), _ = pipe.run(self._stages(), [{"c": Value.cast(self.i.p)}], special=products)
        with m.If(advance):
            m.d.sync += [self.o.valid.eq(pipe.valid), self.o.p.eq(self._output(v))]
        return m

    def _operands(self, v):
        c = data.View(CONSTANTS, v["c"])
        code, parts = c.code, _map_parts()
        exponent = Array(Const(e, self.exp_shape) for _, _, e in parts)[code]
        operands = product_operands(
            Array(Const(n, 1) for n, _, _ in parts)[code],
            Array(Const(s, FP32.precision) for _, s, _ in parts)[code], exponent,
            Array(Const(s == 0, 1) for _, s, _ in parts)[code], c.absmax2, FP32,
            self.exp_shape)
        return dict(operands, y=c.offset)

    @staticmethod
    def _product(v):
        """The rounded product's FP32 pattern, the adder's ``x``."""
        return {"x": product_bits(v, FP32), "y": v["y"]}

    @staticmethod
    def _output(v):
        return product_bits(v, FP32)
