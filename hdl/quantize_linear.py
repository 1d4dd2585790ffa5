"""QuantizeLinear: floats in, integers out, ``y = saturate(round(x / scale) + z)``."""

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..golden.floats import float_format
from ..golden.rounding import DETERMINISTIC_MODES, ROUNDING_MODELS
from ._checks import check_bool, check_choice, check_int, check_numbers
from .floats import constant_parts, decode, encode, exponent_shape, normalize, unpack
from .pipeline import BEAT_LATENCY, STALL_TOGETHER_READY, Pipeline
from .rounding import round_parts, saturate

__all__ = ["QuantizeLinear"]


class QuantizeLinear(wiring.Component):
    """ONNX QuantizeLinear on ``lanes`` floats per beat: ``y = saturate(round(x / s) + z)``.

    The result equals :func:`qdp.golden.quantize_linear` for every bit pattern of ``x``
    (and of a run-time ``s``), bit for bit: in the ``"onnx"`` model ``x / s`` is rounded
    to the input format, then half to even; in the ``"exact"`` model the exact quotient
    is rounded once in ``rounding``. ±Inf saturate, NaN gives the output range's lowest
    value (see :mod:`qdp.golden.quantize_linear` for every special case).

    How: both significands are normalized (subnormals too, so no flush-to-zero), a
    restoring divider forms ``F + 1`` bits of their ratio ``r`` in (1/2, 2) -- one bit per
    pipeline stage -- with a sticky remainder, and the exponent difference ``d`` places
    the binary point. Only ``-2 <= d <= out_width + 2`` needs the quotient: below, every
    mode rounds the value as it rounds any tiny nonzero value; above, it saturates.
    ``F`` is ``precision + 1`` for ``"onnx"`` (enough to round ``r`` to the format with
    its round and sticky bits) and ``out_width + 2`` for ``"exact"`` (enough to reach the
    integer's half bit at the largest ``d``).

    Parameters
    ----------
    lanes : int
        Elements per beat, 1..64.
    in_format : str
        ``"fp32"``, ``"bf16"``, ``"fp16"`` or a custom ``"eXmY"`` with at least 3
        exponent bits (x and the scale share it, as in ONNX).
    out_width, out_signed : int, bool
        The output: 2..16 bits, signed or unsigned.
    rounding_model : str
        ``"onnx"`` or ``"exact"``.
    rounding : str or None
        ``"exact"`` model: a deterministic mode of
        :data:`~qdp.golden.rounding.ROUNDING_MODES`; ``"onnx"``: ``half_even`` only.
        ``None``: ``half_even``.
    runtime_scale : bool
        The scale (a bit pattern of ``in_format``, any value) and the zero point arrive
        with every beat; else they are the constants ``scale`` and ``zero_point``.
    per_lane : bool
        One scale and zero point per lane (ONNX's ``axis`` on the lanes).
    scale : float or sequence of float or None
        The constant scale (one per lane with ``per_lane``): positive and finite, rounded
        half to even to ``in_format`` (a custom format takes exact values only). ``None``
        is 1.0 for a constant scale.
    zero_point : int or sequence of int or None
        The constant zero point, in the output range (``None``: 0).

    Members
    -------
    i : ``In(stream.Signature(...))``
        ``data.ArrayLayout(unsigned(width), lanes)``: the input bit patterns; with
        ``runtime_scale`` a ``data.StructLayout`` with ``data``, ``scale`` and
        ``zero_point`` (one each, or arrays of ``lanes`` with ``per_lane``).
    o : ``Out(stream.Signature(data.ArrayLayout(out_shape, lanes)))``
        One beat per input beat, in order, ``latency`` cycles later with ``o.ready``
        high. The pipeline stalls as one (``i.ready`` is ``~o.valid | o.ready``).
    latency : int
        ``F + 6`` for ``"onnx"`` (unpack, normalize, ``F + 1`` divider steps, rounding to
        the format, rounding to an integer, output), ``F + 5`` for ``"exact"``.
    scale_bits : int or tuple of int or None
        The constant scale's bit patterns.
    """

    RANGES = {"lanes": (1, 64), "out_width": (2, 16)}

    def __init__(self, *, lanes=1, in_format="fp32", out_width=8, out_signed=True,
                 rounding_model="onnx", rounding=None, runtime_scale=False, per_lane=False,
                 scale=None, zero_point=None):
        self.lanes = check_int("lanes", lanes, *self.RANGES["lanes"])
        self.fmt = float_format(in_format, "in_format")
        if self.fmt.exp_bits < 3:
            raise ValueError(f"in_format: {in_format} has {self.fmt.exp_bits} exponent "
                             f"bits; the hardware takes 3 or more")
        self.in_format = self.fmt.name
        self.out_width = check_int("out_width", out_width, *self.RANGES["out_width"])
        self.out_signed = check_bool("out_signed", out_signed)
        self.rounding_model = check_choice("rounding_model", rounding_model, ROUNDING_MODELS)
        self.rounding = "half_even" if rounding is None else rounding
        check_choice("rounding", self.rounding, DETERMINISTIC_MODES)
        if rounding_model == "onnx" and self.rounding != "half_even":
            raise ValueError(f"rounding: the onnx model rounds half to even; "
                             f"{rounding!r} needs rounding_model='exact'")
        self.runtime_scale = check_bool("runtime_scale", runtime_scale)
        self.per_lane = check_bool("per_lane", per_lane)
        self.scale, self.scale_bits, self.zero_point = self._constants(scale, zero_point)
        self.out_shape = signed(out_width) if out_signed else unsigned(out_width)
        p = self.fmt.precision
        self.fraction_bits = p + 1 if rounding_model == "onnx" else out_width + 2
        # The quotient is aligned so that the integer's half bit is always inside it.
        self.align = max(0, out_width + 2 - self.fraction_bits)
        super().__init__({
            "i": In(stream.Signature(self._input_layout())),
            "o": Out(stream.Signature(data.ArrayLayout(self.out_shape, lanes))),
        })

    def _constants(self, scale, zero_point):
        """``(scale, scale_bits, zero_point)``: ``None`` each with ``runtime_scale``."""
        if self.runtime_scale:
            for name, value in (("scale", scale), ("zero_point", zero_point)):
                if value is not None:
                    raise ValueError(f"{name}: with runtime_scale, {name} arrives in the "
                                     f"input payload; got the constant {value!r}")
            return None, None, None
        if scale is None:
            scale = [1.0] * self.lanes if self.per_lane else 1.0
        scales = check_numbers("scale", scale, self.lanes if self.per_lane else 1)
        bits = [self._scale_bits(v) for v in scales]
        lo, hi = ((-(1 << (self.out_width - 1)), (1 << (self.out_width - 1)) - 1)
                  if self.out_signed else (0, (1 << self.out_width) - 1))
        if zero_point is None:
            zero_point = [0] * self.lanes if self.per_lane else 0
        zeros = check_numbers("zero_point", zero_point, self.lanes if self.per_lane else 1,
                              (int,))
        for z in zeros:
            if not lo <= z <= hi:
                raise ValueError(f"zero_point: {z} is outside the output range "
                                 f"(allowed {lo}..{hi})")
        values = [decode(b, self.fmt) for b in bits]
        if self.per_lane:
            return tuple(values), tuple(bits), tuple(zeros)
        return values[0], bits[0], zeros[0]

    def _scale_bits(self, value):
        bits = encode(value, self.fmt, "scale")
        if not (0 < bits < self.fmt.inf_bits):
            raise ValueError(f"scale: {value!r} is not allowed; a scale must be a positive "
                             f"finite {self.fmt.name} number")
        return bits

    def _input_layout(self):
        in_data = data.ArrayLayout(unsigned(self.fmt.width), self.lanes)
        if not self.runtime_scale:
            return in_data

        def per(shape):
            return data.ArrayLayout(shape, self.lanes) if self.per_lane else shape
        return data.StructLayout({"data": in_data, "scale": per(unsigned(self.fmt.width)),
                                  "zero_point": per(self.out_shape)})

    @property
    def quotient_bits(self):
        return self.fraction_bits + 1

    @property
    def latency(self):
        return self.quotient_bits + (5 if self.rounding_model == "onnx" else 4)

    throughput = 1
    dsp_tiles = 0
    latency_definition = BEAT_LATENCY
    # i.ready = ~o.valid | o.ready: the pipeline has no skid buffer.
    ready_dependencies = STALL_TOGETHER_READY

    def elaborate(self, platform):
        m = Module()
        advance = Signal()
        m.d.comb += [advance.eq(~self.o.valid | self.o.ready), self.i.ready.eq(advance)]
        pipe = Pipeline(m, advance, self.i.valid)
        lanes = pipe.register(True, [self._classify(v) for v in self._lane_inputs()])
        lanes = pipe.register(True, [self._normalize(v) for v in lanes])
        for _ in range(self.quotient_bits):
            lanes = pipe.register(True, [self._divide_step(v) for v in lanes])
        if self.rounding_model == "onnx":
            lanes = pipe.register(True, [self._round_to_format(v) for v in lanes])
        lanes = pipe.register(True, [self._round_to_integer(v) for v in lanes])
        with m.If(advance):
            m.d.sync += self.o.valid.eq(pipe.valid)
            for lane, v in enumerate(lanes):
                m.d.sync += self.o.payload[lane].eq(self._output(v))
        return m

    def _lane_inputs(self):
        payload = self.i.payload
        x = payload.data if self.runtime_scale else payload
        lanes = []
        for lane in range(self.lanes):
            if self.runtime_scale:
                s, z = ((payload.scale[lane], payload.zero_point[lane]) if self.per_lane
                        else (payload.scale, payload.zero_point))
            else:
                s, z = ((self.scale_bits[lane], self.zero_point[lane]) if self.per_lane
                        else (self.scale_bits, self.zero_point))
            lanes.append({"x": x[lane], "s": s, "z": z})
        return lanes

    def _classify(self, v):
        """The special cases of x / s (IEEE's) and both operands' fields."""
        fx = unpack(v["x"], self.fmt)
        out = {"z": v["z"], "ex": fx.exponent}
        if isinstance(v["s"], int):
            sign_s, ms, es = constant_parts(v["s"], self.fmt)
            nan, inf, vanish = fx.nan, fx.inf, 0
            out.update(sign=fx.sign ^ sign_s, ms=ms, es=es)
        else:
            fs = unpack(v["s"], self.fmt)
            nan = fx.nan | fs.nan | (fx.zero & fs.zero) | (fx.inf & fs.inf)
            inf = (fx.inf | fs.zero) & ~nan
            vanish = fs.inf
            # An Inf scale divides 0 (below) by any nonzero significand.
            ms = Mux(vanish, 1 << (self.fmt.precision - 1), fs.significand)
            out.update(sign=fx.sign ^ fs.sign, ms=ms, es=fs.exponent)
        # A quotient that is zero (x / Inf) divides 0 instead.
        out.update(nan=nan, inf=inf, mx=Mux(vanish, 0, fx.significand))
        return out

    def _normalize(self, v):
        """Normalized significands; the shift that puts the binary point at the integer."""
        shape = exponent_shape(self.fmt)
        mx, ex = normalize(v["mx"], v["ex"], shape)
        ms, es = v["ms"], v["es"]
        if not isinstance(ms, int):         # a constant scale is normalized already
            ms, es = normalize(ms, es, shape)
        d = (ex - es).as_signed()
        lo, hi = -2, self.out_width + 2
        clamped = Mux(d < lo, lo, Mux(d > hi, hi, d))
        top = self.fraction_bits + self.align + 1
        return {"sign": v["sign"], "nan": v["nan"], "inf": v["inf"], "z": v["z"],
                "rem": mx, "divisor": ms, "quotient": 0,
                "d": clamped.as_signed()[:hi.bit_length() + 2].as_signed(),
                "shift": (top - clamped).as_unsigned()[:(top + 2).bit_length()]}

    def _divide_step(self, v):
        """One quotient bit: ``rem >= divisor`` (the remainder stays below twice it)."""
        rem, divisor = v["rem"], v["divisor"]
        p = self.fmt.precision
        ge = rem >= divisor
        rest = Mux(ge, rem - divisor, rem)
        out = dict(v)
        out["rem"] = (rest << 1)[:p + 1]
        out["quotient"] = ge if isinstance(v["quotient"], int) else Cat(ge, v["quotient"])
        return out

    def _round_to_format(self, v):
        """``fl(x / s)``: the quotient rounded half to even to ``precision`` bits (the
        last remainder is the sticky bit); overflow past the format's largest exponent
        becomes Inf, as IEEE division gives."""
        q, sticky = v["quotient"], v["rem"] != 0
        f = self.fraction_bits
        top = q[f]
        kept = Mux(top, q >> 2, q >> 1)[:self.fmt.precision]
        half = Mux(top, q[1], q[0])
        below = Mux(top, q[0], 0) | sticky
        up = half & (below | kept[0])
        rounded = (kept + up) << Mux(top, 2, 1)
        lead = v["d"] + Mux(rounded[f + 1], 1, Mux(rounded[f], 0, -1))
        out = {k: v[k] for k in ("sign", "nan", "z", "shift")}
        out.update(value=rounded[:f + 2], sticky=0, inf=v["inf"] | (lead > self.fmt.emax))
        return out

    def _round_to_integer(self, v):
        value = v["quotient"] if "quotient" in v else v["value"]
        sticky = (v["rem"] != 0) if "rem" in v else v["sticky"]
        magnitude = Cat(sticky, value << self.align)
        signed_value = Mux(v["sign"], -magnitude, magnitude).as_signed()
        integer, up = round_parts(signed_value, v["shift"],
                                  max_shift=self.fraction_bits + self.align + 3,
                                  rounding=self.rounding)
        return {"integer": integer, "up": up, "sign": v["sign"], "nan": v["nan"],
                "inf": v["inf"], "z": v["z"]}

    def _output(self, v):
        lo, hi = ((-(1 << (self.out_width - 1)), (1 << (self.out_width - 1)) - 1)
                  if self.out_signed else (0, (1 << self.out_width) - 1))
        total = v["integer"] + v["up"] + v["z"]
        y = saturate(total, width=self.out_width, signed_out=self.out_signed,
                     saturation="sat")
        return Mux(v["nan"], lo, Mux(v["inf"], Mux(v["sign"], lo, hi), y))
