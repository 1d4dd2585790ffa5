"""DequantizeLinear: integers in, floats out, ``y = (q - z) * scale``."""

from amaranth.hdl import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..golden.floats import FP32, float_format
from ._checks import check_bool, check_int, check_numbers
from .floats import (Rounded, constant_parts, decode, encode, encode_rounded,
                     exponent_shape, round_to_precision, unpack)
from .pipeline import BEAT_LATENCY, STALL_TOGETHER_READY, Pipeline

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
        Input and difference (1, 2 for wide inputs), product (2), one stage per rounding
        (1 or 2), output (1).
    """

    RANGES = {"lanes": (1, 64), "in_width": (2, 32)}

    def __init__(self, *, lanes=1, in_width=8, in_signed=True, out_format="fp32",
                 runtime_scale=False, per_lane=False, scale=None, zero_point=None):
        self.lanes = check_int("lanes", lanes, *self.RANGES["lanes"])
        self.in_width = check_int("in_width", in_width, *self.RANGES["in_width"])
        self.in_signed = check_bool("in_signed", in_signed)
        self.fmt = float_format(out_format, "out_format")
        self.out_format = self.fmt.name
        self.runtime_scale = check_bool("runtime_scale", runtime_scale)
        self.per_lane = check_bool("per_lane", per_lane)
        self.in_shape = signed(in_width) if in_signed else unsigned(in_width)
        self.scale, self.scale_bits, self.zero_point = self._constants(scale, zero_point)
        self.wide = in_width > WIDE
        super().__init__({
            "i": In(stream.Signature(self._input_layout())),
            "o": Out(stream.Signature(data.ArrayLayout(unsigned(self.fmt.width), lanes))),
        })

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

    def _input_layout(self):
        in_data = data.ArrayLayout(self.in_shape, self.lanes)
        if not self.runtime_scale:
            return in_data

        def per(shape):
            return data.ArrayLayout(shape, self.lanes) if self.per_lane else shape
        return data.StructLayout({"data": in_data, "scale": per(unsigned(self.fmt.width)),
                                  "zero_point": per(self.in_shape)})

    @property
    def _two_roundings(self):
        return self.fmt != FP32 or (self.wide and self.zero_point is not None)

    @property
    def latency(self):
        return 2 + self.wide + 2 + (2 if self._two_roundings else 1)

    throughput = 1
    dsp_tiles = 0
    latency_definition = BEAT_LATENCY
    ready_dependencies = STALL_TOGETHER_READY

    def elaborate(self, platform):
        m = Module()
        advance = Signal()
        m.d.comb += [advance.eq(~self.o.valid | self.o.ready), self.i.ready.eq(advance)]
        pipe = Pipeline(m, advance, self.i.valid)
        lanes = pipe.register(True, self._lane_inputs())
        if self.wide:
            lanes = pipe.register(True, [self._widen(v) for v in lanes])
        lanes = pipe.register(True, [self._difference(v) for v in lanes])
        lanes = pipe.register(True, [self._product(v) for v in lanes])
        lanes = pipe.register(True, [self._first_rounding(v) for v in lanes])
        if self._two_roundings:
            lanes = pipe.register(True, [self._second_rounding(v) for v in lanes])
        with m.If(advance):
            m.d.sync += self.o.valid.eq(pipe.valid)
            for lane, v in enumerate(lanes):
                m.d.sync += self.o.payload[lane].eq(self._output(v))
        return m

    def _lane_inputs(self):
        payload = self.i.payload
        q = payload.data if self.runtime_scale else payload
        lanes = []
        for lane in range(self.lanes):
            if self.runtime_scale:
                s, z = ((payload.scale[lane], payload.zero_point[lane]) if self.per_lane
                        else (payload.scale, payload.zero_point))
            else:
                z = self.zero_point
                s, z = ((self.scale_bits[lane], None if z is None else z[lane])
                        if self.per_lane else (self.scale_bits, z))
            lanes.append({"q": q[lane], "s": s, "z": 0 if z is None else z})
        return lanes

    def _widen(self, v):
        """``q.astype(float32)``: ``q`` rounded half to even to 24 significant bits."""
        q = v["q"]
        negative = q < 0 if self.in_signed else 0
        magnitude = Mux(negative, -q, q).as_unsigned()[:self.in_width]
        r = round_to_precision(negative, magnitude, Const(0, signed(2)),
                               precision=FP32.precision, exp_shape=signed(8))
        value = Mux(r.exponent >= 0, r.significand << r.exponent.as_unsigned(),
                    r.significand >> (-r.exponent).as_unsigned())[:self.in_width + 1]
        return {**v, "q": Mux(negative, -value, value)}

    def _difference(self, v):
        return {"d": v["q"] - v["z"], "s": v["s"]}

    def _product(self, v):
        d = v["d"]
        sign_d = d < 0
        magnitude = Mux(sign_d, -d, d).as_unsigned()[:len(d)]
        if isinstance(v["s"], int):
            sign_s, ms, es = constant_parts(v["s"], self.fmt)
            special = {"nan": 0, "inf": 0}
        else:
            fs = unpack(v["s"], self.fmt)
            sign_s, ms, es = fs.sign, fs.significand, fs.exponent
            special = {"nan": fs.nan | (fs.inf & (d == 0)), "inf": fs.inf}
        return {"sign": sign_d ^ sign_s, "product": magnitude * ms, "exponent": es,
                **special}

    def _first_rounding(self, v):
        shape = exponent_shape(self.fmt, extra=2)
        if self.wide and self.zero_point is not None:
            r = round_to_precision(v["sign"], v["product"], v["exponent"],
                                   precision=FLOAT64_PRECISION, exp_shape=shape)
        else:
            r = round_to_precision(v["sign"], v["product"], v["exponent"],
                                   precision=FP32.precision, fmt=FP32, exp_shape=shape)
        return {"nan": v["nan"], "inf": v["inf"] | r.inf, "sign": r.sign,
                "significand": r.significand, "exponent": r.exponent}

    def _second_rounding(self, v):
        shape = exponent_shape(self.fmt, extra=2)
        r = round_to_precision(v["sign"], v["significand"], v["exponent"],
                               precision=self.fmt.precision, fmt=self.fmt, exp_shape=shape)
        return {"nan": v["nan"], "inf": v["inf"] | r.inf, "sign": r.sign,
                "significand": r.significand, "exponent": r.exponent}

    def _output(self, v):
        bits = encode_rounded(Rounded(v["sign"], v["significand"], v["exponent"], v["inf"]),
                              self.fmt)
        return Mux(v["nan"], self.fmt.nan_bits, bits)

