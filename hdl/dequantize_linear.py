"""DequantizeLinear: integers in, floats out, ``y = (q - z) * scale``."""

from amaranth.hdl import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring

from ..golden.floats import FP32, float_format
from ._checks import check_bool, check_int, check_numbers
from .floats import RoundingStages, decode, encode, exponent_shape
from .dsp import DSPMultiplier
from .multiplier import (MULTIPLY, adder_levels, pipeline_products, registered_multiplier,
                         tiles)
from .pipeline import BEAT_LATENCY, Pipeline
from .scale_fields import ScaledStreams, check_block_scale
from .scaled_product import product_bits, product_operands

__all__ = ["DequantizeLinear"]

#: Inputs wider than this take ONNX's float64 path (NumPy promotes int32 with float32).
WIDE = 16
FLOAT64_PRECISION = 53


class DequantizeLinear(wiring.Component):
    """ONNX DequantizeLinear on ``lanes`` integers per beat: ``y = (q - z) * scale``.

    The result equals :func:`qdp.golden.dequantize_linear` for every input (and every
    bit pattern of a run-time scale), bit for bit, in the ONNX reference's operation
    sequence (see :mod:`qdp.golden.dequantize_linear`): for inputs of at most 16 bits
    ``q - z`` is exact and the product is rounded to FP32, then to ``out_format``; wider
    inputs are first rounded to FP32's 24 bits, and with a zero point the product is
    rounded to float64's 53 bits, then to ``out_format``. Every rounding is half to even
    with subnormals (no flush-to-zero) and IEEE overflow to Inf.

    Parameters
    ----------
    lanes : int
        Elements per beat, 1..64.
    in_width, in_signed : int, bool
        The input integers: 2..32 bits, signed or unsigned.
    out_format : str
        ``"fp32"``, ``"bf16"``, ``"fp16"`` or ``"eXmY"``: the output's and the scale's
        format (ONNX types them alike).
    runtime_scale : bool
        The scale (a bit pattern of ``out_format``, any value) and the zero point arrive
        with every beat; else they are the constants ``scale`` and ``zero_point``.
    per_lane : bool
        One scale and zero point per lane.
    scale : float or sequence of float or None
        The constant scale: positive and finite, rounded half to even to ``out_format``
        (``None``: 1.0).
    zero_point : int or sequence of int or None
        The constant zero point, of the input's type. ``None`` is ONNX's absent zero
        point, which differs from 0 only for inputs wider than 16 bits.

    Members
    -------
    i : ``In(stream.Signature(...))``
        ``data.ArrayLayout(in_shape, lanes)``; with ``runtime_scale`` a
        ``data.StructLayout`` with ``data``, ``scale`` and ``zero_point``.
    o : ``Out(stream.Signature(data.ArrayLayout(unsigned(width), lanes)))``
        The output bit patterns, one beat per input beat, in order, ``latency`` cycles
        later with ``o.ready`` high; the pipeline stalls as one.
    latency : int
        The input register; for wide inputs the rounding of ``q`` to 24 bits and back
        (7 stages); the difference; the product; eight stages per rounding to a format
        (five to float64's precision, see :class:`~qdp.hdl.floats.RoundingStages`); the
        output: 16 cycles for int8 -> FP32, 23 for int8 -> BF16, 29 for int32 -> BF16.
        The product comes from registered DSP tiles
        (:class:`~qdp.hdl.multiplier.TiledMultiplier`: 3 cycles plus its adder levels).
    """

    RANGES = {"lanes": (1, 64), "in_width": (2, 32)}

    def __init__(self, *, lanes=1, in_width=8, in_signed=True, out_format="fp32",
                 runtime_scale=False, per_lane=False, scale=None, zero_point=None,
                 block_scale=False):
        self.lanes = check_int("lanes", lanes, *self.RANGES["lanes"])
        self.in_width = check_int("in_width", in_width, *self.RANGES["in_width"])
        self.in_signed = check_bool("in_signed", in_signed)
        self.fmt = float_format(out_format, "out_format")
        self.out_format = self.fmt.name
        self.runtime_scale = check_bool("runtime_scale", runtime_scale)
        self.per_lane = check_bool("per_lane", per_lane)
        self.block_scale = check_block_scale(block_scale, runtime_scale)
        self.in_shape = signed(in_width) if in_signed else unsigned(in_width)
        self.scale, self.scale_bits, self.zero_point = self._constants(scale, zero_point)
        self.wide = in_width > WIDE
        self._streams = ScaledStreams(self.in_shape, unsigned(self.fmt.width),
                                      unsigned(self.fmt.width), self.in_shape, lanes=lanes,
                                      runtime=runtime_scale, per_lane=per_lane,
                                      block=block_scale)
        super().__init__(self._streams.members)

    def _constants(self, scale, zero_point):
        if self.runtime_scale:
            for name, value in (("scale", scale), ("zero_point", zero_point)):
                if value is not None:
                    raise ValueError(f"{name}: with runtime_scale, {name} arrives in the "
                                     f"input payload; got the constant {value!r}")
            return None, None, 0
        count = self.lanes if self.per_lane else 1
        scales = check_numbers("scale", [1.0] * count if scale is None else scale, count)
        bits = []
        for value in scales:
            b = encode(value, self.fmt, "scale")
            if not 0 < b < self.fmt.inf_bits:
                raise ValueError(f"scale: {value!r} is not allowed; a scale must be a "
                                 f"positive finite {self.fmt.name} number")
            bits.append(b)
        zeros = None
        if zero_point is not None:
            zeros = check_numbers("zero_point", zero_point, count, (int,))
            lo = -(1 << (self.in_width - 1)) if self.in_signed else 0
            hi = (1 << (self.in_width - (1 if self.in_signed else 0))) - 1
            for z in zeros:
                if not lo <= z <= hi:
                    raise ValueError(f"zero_point: {z} does not fit the input type "
                                     f"(allowed {lo}..{hi})")
        values = [decode(b, self.fmt) for b in bits]
        if self.per_lane:
            return tuple(values), tuple(bits), None if zeros is None else tuple(zeros)
        return values[0], bits[0], None if zeros is None else zeros[0]

    @property
    def _two_roundings(self):
        return self.fmt != FP32 or (self.wide and self.zero_point is not None)

    throughput = 1
    latency_definition = BEAT_LATENCY

    @property
    def ready_dependencies(self):
        return self._streams.ready_dependencies

    def _stages(self):
        """The pipeline, one register after each stage, the output register after them."""
        shape = exponent_shape(self.fmt, extra=2)
        widen = RoundingStages(precision=FP32.precision, exp_shape=signed(8))
        if self.wide and self.zero_point is not None:
            first = RoundingStages(precision=FLOAT64_PRECISION, exp_shape=shape)
        else:
            first = RoundingStages(precision=FP32.precision, fmt=FP32, exp_shape=shape)
        second = RoundingStages(precision=self.fmt.precision, fmt=self.fmt, exp_shape=shape)
        return ([lambda v: v]
                + ([self._widen] + widen.stages() + [self._widened, self._signed]
                   if self.wide else [])
                + [self._difference, self._operands, MULTIPLY] + first.stages()
                + (second.stages() if self._two_roundings else []))

    @property
    def latency(self):
        # The MULTIPLY marker counts for the output register; the multiplier for itself.
        return len(self._stages()) + DSPMultiplier.latency + adder_levels(*self._operand_shapes)

    @property
    def _operand_shapes(self):
        return unsigned(self.in_width + self.wide), unsigned(self.fmt.precision)

    def _multiplier(self):
        """The exact ``|q - z| * significand``: registered DSP tiles and adder tree."""
        return registered_multiplier(*self._operand_shapes)

    def elaborate(self, platform):
        m = Module()
        advance = Signal()
        m.d.comb += advance.eq(~self.o.valid | self.o.ready)
        valid, inputs, flags = self._streams.inputs(m, self, advance, scale=self.scale_bits,
                                                    zero_point=self.zero_point)
        pipe = Pipeline(m, advance, valid)
        lanes = [{"q": element, "s": s, "z": z} for element, s, z in inputs]
        products = {MULTIPLY: lambda v: pipeline_products(m, pipe, v, self._multiplier)}
        lanes, flags = pipe.run(self._stages(), lanes, riders=flags, special=products)
        with m.If(advance):
            m.d.sync += self.o.valid.eq(pipe.valid)
            self._streams.output(m, self, [self._output(v) for v in lanes], flags)
        return m

    def _widen(self, v):
        """``q.astype(float32)``, first: ``|q|`` to round to 24 significant bits (half to
        even; the rounding is symmetric in the sign)."""
        q = v["q"]
        negative = q < 0 if self.in_signed else Const(0, 1)
        magnitude = Mux(negative, -q, q).as_unsigned()[:self.in_width]
        return {"s": v["s"], "z": v["z"], "sign": negative, "significand": magnitude,
                "exponent": 0}

    def _widened(self, v):
        """The rounded ``|q|`` back to an integer: ``significand * 2**e`` with ``e`` in
        ``-(24 + 1)..in_width - 23`` (a significand normalized to 24 bits, its carry),
        so both shifters take only that many places."""
        e, sig = v["exponent"], v["significand"]
        left = e.as_unsigned()[:(self.in_width - 23).bit_length()]
        right = (-e).as_unsigned()[:(FP32.precision + 1).bit_length()]
        value = Mux(e >= 0, sig << left, sig >> right)[:self.in_width + 1]
        return {"s": v["s"], "z": v["z"], "sign": v["sign"], "magnitude": value}

    def _signed(self, v):
        """The integer with its sign again."""
        value = v["magnitude"]
        return {"s": v["s"], "z": v["z"], "q": Mux(v["sign"], -value, value)}

    def _difference(self, v):
        return {"d": v["q"] - v["z"], "s": v["s"]}

    @property
    def dsp_tiles(self):
        """Registered multiplier tiles, each a MULT18X18D in the ECP5 export."""
        return self.lanes * tiles(*self._operand_shapes)

    def _operands(self, v):
        """The product's operands, ``|q - z|`` and the scale's significand, its sign and
        exponent, and the special cases a run-time scale brings."""
        d = v["d"]
        sign_d = d < 0
        magnitude = Mux(sign_d, -d, d).as_unsigned()[:self.in_width + self.wide]
        return product_operands(sign_d, magnitude, 0, d == 0, v["s"], self.fmt)

    def _output(self, v):
        return product_bits(v, self.fmt)

