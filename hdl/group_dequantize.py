"""Group dequantization (GPTQ, AWQ): integer codes and one FP32 scale (and zero point) per
group in, FP32 out, exactly as :func:`qdp.golden.group_dequantize` states it."""

from amaranth.hdl import Mux, Shape, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..golden.floats import FP32
from ._checks import check_bool, check_int
from .dsp import DSPMultiplier
from .floats import RoundingStages, exponent_shape
from .multiplier import (MULTIPLY, adder_levels, pipeline_products, registered_multiplier,
                         tiles)
from .pipeline import BEAT_LATENCY
from .scale_fields import block_scaled_module
from .scaled_product import product_bits, product_operands

__all__ = ["GroupDequantize", "group_constants"]


def group_constants(bits, symmetric):
    """The layout of one group's constants on ``scale``: ``StructLayout({"scale":
    unsigned(32), "zero": unsigned(bits)})``, or the FP32 scale alone (``unsigned(32)``)
    when ``symmetric``."""
    if symmetric:
        return unsigned(FP32.width)
    return data.StructLayout({"scale": unsigned(FP32.width), "zero": unsigned(bits)})


class GroupDequantize(wiring.Component):
    """``fl32(scale * (q - zero))`` on ``lanes`` codes per beat, one FP32 scale (and zero
    point) per group: ``|q - zero|`` times the scale's 24-bit significand exactly on
    registered DSP tiles, rounded once to FP32 (half to even, subnormals rounded, overflow
    to Inf).

    Equal to :func:`qdp.golden.group_dequantize` for every code, every zero point and
    every scale pattern: a zero product keeps the XOR of the scale's sign and
    ``q - zero < 0`` (``-0`` for a negative scale and ``q = zero``, or ``+0`` times a
    negative difference), ``Inf * 0`` and a NaN scale give the canonical NaN
    ``0x7FC00000``.

    Parameters
    ----------
    lanes : int
        Codes per beat, 1..32.
    bits : int
        Code width, 2..8 (GPTQ and AWQ: 4).
    symmetric : bool
        AWQ's symmetric form: signed two's complement codes
        ``-2**(bits-1)..2**(bits-1)-1`` and no zero point (0); else GPTQ's asymmetric
        form, unsigned codes ``0..2**bits-1`` and an unsigned ``bits``-bit zero point per
        group.

    Members
    -------
    i : ``In(stream.Signature(StructLayout({"data": ..., "first": 1, "last": 1})))``
        ``data`` is ``ArrayLayout(unsigned(bits), lanes)`` (``signed(bits)`` when
        ``symmetric``), the codes in element order, lane 0 first (unpack GPTQ's or AWQ's
        ``uint32`` words with :func:`qdp.golden.group_unpack`). A beat with ``first`` set
        starts a group and takes the next beat of ``scale``; the group's other beats use
        its constants. A group may be any number of beats; ``last`` only rides along.
    scale : ``In(stream.Signature(group_constants(bits, symmetric)))``
        One beat per group: ``StructLayout({"scale": unsigned(32), "zero":
        unsigned(bits)})``, the FP32 scale pattern (any pattern) and the zero point; when
        ``symmetric`` the FP32 pattern alone, ``unsigned(32)``
        (:func:`group_constants`).
    o : ``Out(stream.Signature(StructLayout({"data": ..., "first": 1, "last": 1})))``
        ``data`` is ``ArrayLayout(unsigned(32), lanes)``, FP32 patterns; ``first`` and
        ``last`` as they came in. One beat per input beat, in order, ``latency`` cycles
        later with ``o.ready`` high; the pipeline stalls as one (both inputs' ``ready``
        follow ``o.ready``, no skid buffer).
    latency : int
        15 cycles: the input register, the operands (``|q - zero|`` from both
        differences at once, the scale's fields), the multiplier (3 cycles in the tiles,
        one adder level), eight rounding stages and the output register.
    dsp_tiles : int
        ``lanes`` products of ``bits x 24`` bits: 2 tiles each (one 18x18 tile cannot
        hold the 24-bit significand).
    """

    RANGES = {"lanes": (1, 32), "bits": (2, 8)}

    def __init__(self, *, lanes=1, bits=4, symmetric=False):
        self.lanes = check_int("lanes", lanes, *self.RANGES["lanes"])
        self.bits = check_int("bits", bits, *self.RANGES["bits"])
        self.symmetric = check_bool("symmetric", symmetric)
        code = signed(bits) if symmetric else unsigned(bits)
        codes = data.StructLayout({"data": data.ArrayLayout(code, lanes),
                                   "first": 1, "last": 1})
        result = data.StructLayout({"data": data.ArrayLayout(unsigned(FP32.width), lanes),
                                    "first": 1, "last": 1})
        super().__init__({
            "i": In(stream.Signature(codes)),
            "scale": In(stream.Signature(group_constants(bits, symmetric))),
            "o": Out(stream.Signature(result)),
        })

    throughput = 1
    latency_definition = BEAT_LATENCY
    #: No skid buffer: both inputs' ready follow ``o.ready``.
    ready_dependencies = {"i": ("o",), "scale": ("o",)}

    @property
    def _operand_shapes(self):
        # |q - zero| <= 2**bits - 1 and |q| <= 2**(bits-1): bits unsigned bits either way.
        return unsigned(self.bits), unsigned(FP32.precision)

    @property
    def dsp_tiles(self):
        return self.lanes * tiles(*self._operand_shapes)

    def _multiplier(self):
        return registered_multiplier(*self._operand_shapes)

    def _stages(self):
        # The exponent is the scale's alone (the difference is an integer): FP32's
        # shape holds it and the rounding's offsets of a 32-bit product.
        rounding = RoundingStages(precision=FP32.precision, fmt=FP32,
                                  exp_shape=exponent_shape(FP32))
        return [lambda v: v, self._operands, MULTIPLY] + rounding.stages()

    @property
    def latency(self):
        # The MULTIPLY marker counts for the output register; the multiplier for itself.
        return len(self._stages()) + DSPMultiplier.latency + adder_levels(*self._operand_shapes)

    def elaborate(self, platform):
        def products(m, pipe):
            return {MULTIPLY: lambda v: pipeline_products(m, pipe, v, self._multiplier)}
        # The constants ride the pipeline as plain bits (its registers reset to 0, which a
        # layout's signal does not take); _operands reads them through the layout again.
        width = Shape.cast(group_constants(self.bits, self.symmetric)).width
        return block_scaled_module(self, self._stages(), self._output, special=products,
                                   scale_bits=slice(0, width))

    def _operands(self, v):
        """``|q - zero|`` and the scale as the product's operands, the sign of ``q -
        zero`` beside the scale's; IEEE's special cases of the scale."""
        q = v["q"]
        if self.symmetric:
            scale, negative, zero = v["s"], q < 0, q == 0
            magnitude = Mux(negative, -q, q)
        else:
            constants = data.View(group_constants(self.bits, False), v["s"])
            scale, z = constants.scale, constants.zero
            # Both differences side by side, the choice from the first one's sign: one
            # carry chain deep, where a difference and then its negation would be two.
            difference = q - z
            negative, zero = difference[-1], q == z
            magnitude = Mux(negative, z - q, difference)
        return product_operands(negative, magnitude.as_unsigned()[:self.bits], 0, zero,
                                scale, FP32)

    @staticmethod
    def _output(v):
        return product_bits(v, FP32)
