"""OCP MX dequantization: element codes and one E8M0 scale per block in, floats out,
exactly as :func:`qdp.golden.mx_dequantize` states it."""

from amaranth.hdl import Cat, Const, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..golden.floats import float_format
from ..golden.mx import E8M0_BIAS, E8M0_NAN, element_format
from ._checks import check_int
from .floats import RoundingStages, exponent_shape
from .mx_element import decode_element
from .pipeline import BEAT_LATENCY
from .scale_fields import block_scaled_module
from .scaled_product import product_bits

__all__ = ["MxDequantize"]


class MxDequantize(wiring.Component):
    """``element value * 2**(scale - 127)`` on ``lanes`` element codes per beat, one
    E8M0 scale per block, rounded once (half to even) to ``out_format``.

    The result equals :func:`qdp.golden.mx_dequantize` bit for bit for every code and
    every scale byte: subnormal results rounded (not flushed), overflow to Inf, the NaN
    scale ``0xFF`` and NaN element codes (``fp8_e4m3``'s ``S.1111.111``, ``fp8_e5m2``'s)
    giving the format's canonical NaN, ``fp8_e5m2``'s Inf codes ±Inf, a zero code its
    signed zero. No multiplier: the scale is an exponent, added to the element's.

    Parameters
    ----------
    lanes : int
        Elements per beat, 1..32.
    element : str
        The element format: ``"int8"``, ``"fp8_e4m3"``, ``"fp8_e5m2"``, ``"fp6_e3m2"``,
        ``"fp6_e2m3"`` or ``"fp4_e2m1"``.
    out_format : str
        ``"fp32"``, ``"bf16"``, ``"fp16"`` or ``"eXmY"``.

    Members
    -------
    i : ``In(stream.Signature(StructLayout({"data": ..., "first": 1, "last": 1})))``
        ``data`` is ``ArrayLayout(unsigned(element width), lanes)``, the codes (MXINT8's
        as two's complement bytes). A beat with ``first`` set starts a block and takes
        the next beat of ``scale``.
    scale : ``In(stream.Signature(unsigned(8)))``
        One E8M0 byte per block.
    o : ``Out(stream.Signature(StructLayout({"data": ..., "first": 1, "last": 1})))``
        ``data`` is ``ArrayLayout(unsigned(out width), lanes)``; ``first`` and ``last``
        as they came in. One beat per input beat, in order, ``latency`` cycles later with
        ``o.ready`` high.
    dsp_tiles : int
        0: no multiplier.
    latency : int
        The input register (with the scale's exponent), the decode (the exponent
        sum), eight rounding stages
        (:class:`~qdp.hdl.floats.RoundingStages`) and the output register: 11 cycles.
    """

    RANGES = {"lanes": (1, 32)}

    def __init__(self, *, lanes=1, element="fp8_e4m3", out_format="fp32"):
        self.lanes = check_int("lanes", lanes, *self.RANGES["lanes"])
        self.elem = element_format(element)
        self.element = self.elem.name
        self.out = float_format(out_format, "out_format")
        self.out_format = self.out.name
        self.exp_shape = exponent_shape(self.out, extra=3)
        codes = data.StructLayout({"data": data.ArrayLayout(unsigned(self.elem.width), lanes),
                                   "first": 1, "last": 1})
        result = data.StructLayout({"data": data.ArrayLayout(unsigned(self.out.width), lanes),
                                    "first": 1, "last": 1})
        super().__init__({
            "i": In(stream.Signature(codes)),
            "scale": In(stream.Signature(unsigned(8))),
            "o": Out(stream.Signature(result)),
        })

    throughput = 1
    latency_definition = BEAT_LATENCY
    #: No multiplier tile: the scale is an exponent.
    dsp_tiles = 0
    #: No skid buffer: both inputs' ready follow ``o.ready``.
    ready_dependencies = {"i": ("o",), "scale": ("o",)}

    def _stages(self):
        rounding = RoundingStages(precision=self.out.precision, fmt=self.out,
                                  exp_shape=self.exp_shape)
        return [self._scale, self._decode] + rounding.stages()

    @property
    def latency(self):
        return len(self._stages()) + 1

    def elaborate(self, platform):
        return block_scaled_module(self, self._stages(), self._output)

    def _scale(self, v):
        """The scale's exponent with every constant of the element's exponent folded in
        (one subtraction, so that the decode adds only the element's field)."""
        elem = self.elem
        # The float elements' exponent is their step above the subnormals' (1 - bias).
        offset = E8M0_BIAS + elem.man_bits + (elem.bias - 1 if elem.exp_bits else 0)
        return dict(q=v["q"], nan=v["s"] == E8M0_NAN,
                    shared=self._exponent(Cat(v["s"], Const(0, 1)).as_signed() - offset))

    def _decode(self, v):
        """The element as ``(-1)**sign * significand * 2**exponent``, the scale's
        exponent added; the NaN and Inf flags."""
        parts = decode_element(v["q"], self.elem)
        nan = v["nan"] | parts.nan
        return dict(sign=parts.sign, significand=parts.significand, nan=nan,
                    inf=parts.inf & ~nan, exponent=self._exponent(v["shared"] + parts.step))

    def _exponent(self, value):
        return value.as_signed()[:self.exp_shape.width].as_signed()

    def _output(self, v):
        return product_bits(v, self.out)

