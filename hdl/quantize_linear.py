"""QuantizeLinear: floats in, integers out, ``y = saturate(round(x / scale) + z)``."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring

from ..golden.floats import float_format
from ..golden.rounding import DETERMINISTIC_MODES, ROUNDING_MODELS
from ._checks import check_bool, check_choice, check_int, check_numbers
from .floats import (constant_parts, decode, division_step, encode, exponent_shape,
                     leading_zeros, shift_by_eights, unpack)
from .pipeline import BEAT_LATENCY, Pipeline
from .scale_fields import ScaledStreams, check_block_scale
from .rounding import add_carry, coarse_shift, fine_round, group_ors, saturate

__all__ = ["QuantizeLinear"]

FINE_SHIFT_BITS = 3         # the rounding shift: by a multiple of 8, then by 0..7


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
        ``F + 16`` for ``"onnx"`` (unpack, leading zeros, normalize in two steps, clamp,
        place, ``F + 1`` divider steps, rounding to the format in two steps, align,
        negate, the rounding shift in three steps, add the zero point, the saturating
        output), ``F + 14`` for ``"exact"``: 41 cycles for FP32 -> int8, 24 for BF16 ->
        int8, one beat per cycle.
    scale_bits : int or tuple of int or None
        The constant scale's bit patterns.
    """

    RANGES = {"lanes": (1, 64), "out_width": (2, 16)}

    def __init__(self, *, lanes=1, in_format="fp32", out_width=8, out_signed=True,
                 rounding_model="onnx", rounding=None, runtime_scale=False, per_lane=False,
                 scale=None, zero_point=None, block_scale=False):
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
        self.block_scale = check_block_scale(block_scale, runtime_scale)
        self.scale, self.scale_bits, self.zero_point = self._constants(scale, zero_point)
        self.out_shape = signed(out_width) if out_signed else unsigned(out_width)
        p = self.fmt.precision
        self.fraction_bits = p + 1 if rounding_model == "onnx" else out_width + 2
        # The quotient is aligned so that the integer's half bit is always inside it.
        self.align = max(0, out_width + 2 - self.fraction_bits)
        width = unsigned(self.fmt.width)
        self._streams = ScaledStreams(width, self.out_shape, width, self.out_shape,
                                      lanes=lanes, runtime=runtime_scale, per_lane=per_lane,
                                      block=block_scale)
        super().__init__(self._streams.members)

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

    @property
    def quotient_bits(self):
        return self.fraction_bits + 1

    @property
    def latency(self):
        return len(self._stages()) + 1

    def _stages(self):
        """The pipeline, one register after each stage, the output register after them."""
        return ([self._classify, self._leading_zeros, self._normalize,
                 self._normalize_rest, self._clamp, self._place]
                + [self._divide_step] * self.quotient_bits
                + ([self._round_to_format, self._carry_to_format]
                   if self.rounding_model == "onnx" else [])
                + [self._align, self._negate, self._groups, self._coarse, self._fine,
                   self._add])

    throughput = 1
    dsp_tiles = 0
    latency_definition = BEAT_LATENCY

    @property
    def ready_dependencies(self):
        """``i.ready`` (and ``scale.ready``) is ``~o.valid | o.ready``: no skid buffer."""
        return self._streams.ready_dependencies

    def elaborate(self, platform):
        m = Module()
        advance = Signal()
        m.d.comb += advance.eq(~self.o.valid | self.o.ready)
        valid, inputs, flags = self._streams.inputs(m, self, advance, scale=self.scale_bits,
                                                    zero_point=self.zero_point)
        pipe = Pipeline(m, advance, valid)
        lanes = [{"x": element, "s": s, "z": z} for element, s, z in inputs]
        lanes, flags = pipe.run(self._stages(), lanes, riders=flags)
        with m.If(advance):
            m.d.sync += self.o.valid.eq(pipe.valid)
            self._streams.output(m, self, [self._output(v) for v in lanes], flags)
        return m

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
        out.update(nan=nan, inf=inf, mx=Mux(vanish, 0, fx.significand),
                   ediff=(out.pop("ex") - out.pop("es")).as_signed())
        return out

    def _leading_zeros(self, v):
        out = dict(v, lzx=leading_zeros(v["mx"]))
        if not isinstance(v["ms"], int):     # a constant scale is normalized already
            out["lzs"] = leading_zeros(v["ms"])
        return out

    def _normalize(self, v):
        """Both significands shifted left by the multiple of 8 in their leading zeros;
        ``d``, the exponent difference of the normalized operands: ``x / s = (mx / ms) *
        2**d`` with ``mx / ms`` in (1/2, 2) once :meth:`_normalize_rest` is done."""
        out = {k: v[k] for k in ("sign", "nan", "inf", "z", "lzx")}
        d = v["ediff"] - v["lzx"]
        ms = v["ms"]
        if "lzs" in v:
            d, ms = d + v["lzs"], shift_by_eights(ms, v["lzs"])
            out["lzs"] = v["lzs"]
        shape = exponent_shape(self.fmt)
        return dict(out, mx=shift_by_eights(v["mx"], v["lzx"]), ms=ms,
                    d=d.as_signed()[:shape.width].as_signed())

    def _normalize_rest(self, v):
        """The rest of the normalizing shifts (0..7 bits)."""
        out = {k: v[k] for k in ("sign", "nan", "inf", "z", "d")}
        width = self.fmt.precision
        ms = v["ms"] if "lzs" not in v else (v["ms"] << v["lzs"][:3])[:width]
        return dict(out, mx=(v["mx"] << v["lzx"][:3])[:width], ms=ms)

    def _clamp(self, v):
        """Whether ``d`` lies below or above the values that neither vanish nor
        saturate (two comparisons side by side)."""
        lo, hi = -2, self.out_width + 2
        return dict(v, below=v["d"] < lo, above=v["d"] > hi)

    def _place(self, v):
        """``d`` clamped, and the right shift that puts the integer's binary point into
        the aligned quotient; the divider's first remainder."""
        lo, hi = -2, self.out_width + 2
        bits = hi.bit_length() + 2
        d = v["d"].as_signed()[:bits].as_signed()       # exact where it is not clamped
        clamped = Mux(v["below"], lo, Mux(v["above"], hi, d))
        top = self.fraction_bits + self.align + 1
        return {"sign": v["sign"], "nan": v["nan"], "inf": v["inf"], "z": v["z"],
                "rem": v["mx"], "divisor": v["ms"],
                "d": clamped.as_signed()[:bits].as_signed(),
                "shift": (top - clamped).as_unsigned()[:(top + 2).bit_length()]}

    def _divide_step(self, v):
        """One quotient bit (:func:`~qdp.hdl.floats.division_step`); the remainder stays
        below twice the divisor."""
        return division_step(v, self.fmt.precision)

    def _round_to_format(self, v):
        """``fl(x / s)``, first step: the ``precision`` bits to keep, and whether to round
        them up (half to even; the last remainder is the sticky bit)."""
        q, sticky = v["quotient"], v["rem"] != 0
        f = self.fraction_bits
        top = q[f]
        kept = Mux(top, q >> 2, q >> 1)[:self.fmt.precision]
        half = Mux(top, q[1], q[0])
        below = Mux(top, q[0], 0) | sticky
        out = {k: v[k] for k in ("sign", "nan", "inf", "z", "shift", "d")}
        return dict(out, kept=kept, up=half & (below | kept[0]), top=top)

    def _carry_to_format(self, v):
        """``fl(x / s)``, second step: the rounded significand, back at the quotient's
        scale."""
        rounded = Mux(v["top"], (v["kept"] + v["up"]) << 2, (v["kept"] + v["up"]) << 1)
        out = {k: v[k] for k in ("sign", "nan", "inf", "z", "shift", "d")}
        return dict(out, value=rounded[:self.fraction_bits + 2], sticky=0)

    def _align(self, v):
        """The quotient's magnitude with the sticky bit below it; in the onnx model, an
        ``fl(x / s)`` past the format's largest exponent is Inf."""
        value = v["quotient"] if "quotient" in v else v["value"]
        sticky = (v["rem"] != 0) if "rem" in v else v["sticky"]
        inf = v["inf"]
        if "value" in v:
            f = self.fraction_bits
            lead = v["d"] + Mux(value[f + 1], 1, Mux(value[f], 0, -1))
            inf = inf | (lead > self.fmt.emax)
        return {"magnitude": Cat(sticky, value << self.align), "shift": v["shift"],
                "sign": v["sign"], "nan": v["nan"], "inf": inf, "z": v["z"]}

    def _negate(self, v):
        """The quotient as a signed value."""
        magnitude = v["magnitude"]
        out = {k: val for k, val in v.items() if k != "magnitude"}
        return dict(out, value=Mux(v["sign"], -magnitude, magnitude).as_signed())

    # The rounding shift in two steps, as the Quantizer's deep pipeline does it: the ORs
    # of 8-bit groups, the shift by the multiple of 8 with their sticky OR, the rest.
    def _groups(self, v):
        return dict(v, groups=group_ors(v["value"], fine_bits=FINE_SHIFT_BITS))

    def _coarse(self, v):
        shifted, sticky = coarse_shift(v["value"], v["groups"], v["shift"],
                                       fine_bits=FINE_SHIFT_BITS)
        out = {k: v[k] for k in ("shift", "sign", "nan", "inf", "z")}
        return dict(out, shifted=shifted, sticky=sticky, negative=v["value"] < 0)

    def _fine(self, v):
        integer, up = fine_round(v["shifted"], v["sticky"], v["shift"],
                                 fine_bits=FINE_SHIFT_BITS, negative=v["negative"],
                                 rounding=self.rounding)
        return {"integer": integer, "up": up, "sign": v["sign"], "nan": v["nan"],
                "inf": v["inf"], "z": v["z"]}

    def _add(self, v):
        """``integer + up + z`` on one carry chain, kept ``out_width + 3`` bits wide: a
        wider integer saturates, and its low bits keep its side of the range."""
        keep = self.out_width + 3
        integer = v["integer"]
        top = integer >> (keep - 1)
        big = (top != 0) & (top != -1)
        low = integer.as_signed()[:keep].as_signed()
        z = v["z"] if not isinstance(v["z"], int) else Const(v["z"], self.out_shape)
        return {"total": add_carry(low, z, v["up"]), "big": big, "negative": integer < 0,
                "sign": v["sign"], "nan": v["nan"], "inf": v["inf"]}

    def _output(self, v):
        lo, hi = ((-(1 << (self.out_width - 1)), (1 << (self.out_width - 1)) - 1)
                  if self.out_signed else (0, (1 << self.out_width) - 1))
        y = saturate(v["total"], width=self.out_width, signed_out=self.out_signed,
                     saturation="sat", overflow=(v["big"], v["negative"]))
        return Mux(v["nan"], lo, Mux(v["inf"], Mux(v["sign"], lo, hi), y))
