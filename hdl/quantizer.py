"""The Quantizer: multiply by a scale, round, add a zero point, saturate."""

from amaranth.hdl import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..golden.lfsr import DEFAULT_SEED
from ..golden.rounding import ROUNDING_MODES
from ..golden.saturation import SATURATION_MODES
from ._checks import check_bool, check_choice, check_int
from .lfsr import lfsr_register
from .multiplier import TiledMultiplier, adder_levels, limbs
from .pipeline import BEAT_LATENCY, STALL_TOGETHER_READY, Pipeline
from .rounding import (
    add_carry,
    beyond,
    coarse_shift,
    fine_round,
    group_ors,
    round_parts,
    round_shift,
    saturate,
)

__all__ = ["Quantizer"]

TFLITE_MODES = (None, "double", "single")
SHALLOW_LATENCY = 4         # latencies above this build the deep pipeline
FINE_SHIFT_BITS = 3         # the deep pipeline's run-time shift: 8:1 muxes, then 8:1 again


class Quantizer(wiring.Component):
    """Requantize ``lanes`` integers per beat: ``y = saturate(round(x * M / 2**S) + Z)``.

    The result equals :func:`qdp.golden.quantize` (or, in ``tflite`` mode,
    :func:`qdp.golden.requantize_tflite`) for every input, bit for bit. Every internal width
    is derived from the parameters: the product, the rounding and the zero-point addition
    never overflow; only the output saturation, as chosen, limits the result.

    Parameters
    ----------
    lanes : int
        Elements per beat, 1..64.
    in_width, in_signed : int, bool
        Input element width (2..64; 2..32 in ``tflite`` mode) and signedness.
    out_width, out_signed : int, bool
        Output element width (2..32) and signedness.
    mult_width : int or None
        Width of the unsigned multiplier M, 1..32. ``None``: 32, or 31 in ``tflite`` mode
        (TFLite's non-negative int32 ``quantized_multiplier``).
    rounding : str or None
        One of :data:`~qdp.golden.ROUNDING_MODES`; ``None`` means ``half_even``. ``tflite``
        mode fixes its own rounding and takes ``None`` only.
    saturation : str
        One of :data:`~qdp.golden.SATURATION_MODES`; ``tflite`` mode takes ``sat`` only.
    runtime_scale : bool
        If true, M, S and Z arrive with every beat in the input payload; if false, they are
        the elaboration-time constants ``multiplier``, ``shift`` and ``zero_point``.
    per_lane : bool
        One (M, S, Z) per lane (per channel) instead of one per tensor.
    multiplier, shift, zero_point : int or sequence of int or None
        The constants (a sequence of ``lanes`` values when ``per_lane``); ``None`` with
        ``runtime_scale``. ``shift`` is ``0 <= S < in_width + mult_width``; in ``tflite``
        mode it is TFLite's exponent, -31..30 (positive shifts left). ``zero_point``
        lies in the output range and defaults to 0.
    shift_width : int or None
        Width of the run-time shift field, 1..7 (``None``: 6, so S is 0..63). In ``tflite``
        mode the shift field is always a signed 6-bit exponent and this must be ``None``.
    tflite : None, "double" or "single"
        Reproduce TFLite's ``MultiplyByQuantizedMultiplier`` with double rounding (the
        reference kernels) or single rounding (``TFLITE_SINGLE_ROUNDING``).
    lfsr_seed : int
        Seed of the per-lane LFSRs of ``stochastic`` rounding (see :mod:`qdp.golden.lfsr`).
    latency : int
        Pipeline depth in cycles, 1..``max_latency``. 1..4 build the shallow pipeline, one
        ``*`` per lane with registers after the output (1), the multiplier (2), the
        rounding (3) and the input (4). 5 and more build the deep pipeline (see below).

    Deep pipeline
    -------------
    For high clock rates on ECP5. Each lane's product comes from a
    :class:`~qdp.hdl.multiplier.TiledMultiplier`: 18x18 :class:`~qdp.hdl.dsp.DSPMultiplier`
    tiles with their own three registers (inside the MULT18X18D on ECP5) and an adder tree.
    With a run-time shift the rounding then runs in steps: *groups* ORs each 8-bit group
    of the product; *coarse* shifts by the multiple of 8 in S and picks the sticky OR of
    the groups it drops; *fine* shifts by the rest, finds the half bit, the sticky bit
    and the rounding increment, and, beside the shifter, whether the result is so large
    that it saturates whatever is added to it; *decide* adds the increment and the zero
    point at ``out_width + 3`` bits (wider results cannot come back into range, see
    :meth:`_fine`); the output step saturates with LUT range tests. The 4 registers of
    the tiles and the output are always there; ``latency - 4`` more go, in this order,
    after the adder tree's last level, the decide, fine and coarse steps, the adder tree's
    other levels, the groups step and the tiles (a fabric register between each DSP and
    the tree, for many lanes whose DSPs spread over the device). ``max_latency`` is 9 plus
    the tree's levels: 11 for a 32 x 32-bit product. Constant shifts,
    stochastic rounding and the TFLite modes round in the fine step; their groups and
    coarse registers only delay the product (in ``tflite="double"`` mode the coarse step
    shifts it left by the exponent: ``(x << e) * M == (x * M) << e``).

    Members
    -------
    i : ``In(stream.Signature(...))``
        Input stream. The payload is ``data.ArrayLayout(in_shape, lanes)``; with
        ``runtime_scale`` it is a ``data.StructLayout`` whose first field ``data`` is that
        array, followed by ``multiplier``, ``shift`` and ``zero_point`` (each one value, or
        an array of ``lanes`` values when ``per_lane``).
    o : ``Out(stream.Signature(data.ArrayLayout(out_shape, lanes)))``
        Output stream, one beat per input beat, in order, ``latency`` cycles later when
        ``o.ready`` is held high. A stalled output holds the whole pipeline (``i.ready`` is
        ``~o.valid | o.ready``), so throughput is one beat per cycle without backpressure.
        (The stall reaches every register's enable in one LUT from ``o.valid``; the
        pipeline holds no skid buffer, so ``i.ready`` follows ``o.ready`` combinationally.)
    max_latency : int
        The deepest pipeline these widths allow.
    latency_definition : dict
        What ``latency`` counts (the manifest's ``latency``): from the cycle a beat is
        accepted on ``i`` to the cycle its result is valid on ``o``, ``o.ready`` held high.
    ready_dependencies : dict
        ``{"i": ("o",)}``: ``i.ready`` is ``~o.valid | o.ready``, combinational in
        ``o.ready``.
    dsp_tiles : int
        Registered multiplier tiles (MULT18X18D instances in the ECP5 export): those of
        the deep pipeline's multipliers, none at latency 1..4.
    """

    #: The range of each integer parameter, ``(lo, hi)`` inclusive: the checks in
    #: ``__init__`` and ``qdp list`` read it (``latency`` is 1..``max_latency``).
    RANGES = {"lanes": (1, 64), "in_width": (2, 64), "out_width": (2, 32),
              "mult_width": (1, 32), "shift_width": (1, 7), "lfsr_seed": (0, (1 << 32) - 1)}
    #: ``in_width`` at most this in ``tflite`` mode (TFLite's int32 accumulators).
    TFLITE_MAX_IN_WIDTH = 32

    def __init__(self, *, lanes=1, in_width=32, in_signed=True, out_width=8, out_signed=True,
                 mult_width=None, rounding=None, saturation="sat", runtime_scale=True,
                 per_lane=False, multiplier=None, shift=None, zero_point=None,
                 shift_width=None, tflite=None, lfsr_seed=DEFAULT_SEED, latency=2):
        self.lanes = check_int("lanes", lanes, *self.RANGES["lanes"])
        self.tflite = check_choice("tflite", tflite, TFLITE_MODES)
        self.in_signed = check_bool("in_signed", in_signed)
        lo, hi = self.RANGES["in_width"]
        self.in_width = check_int("in_width", in_width, lo, self.TFLITE_MAX_IN_WIDTH if tflite
                                  else hi)
        self.out_width = check_int("out_width", out_width, *self.RANGES["out_width"])
        self.out_signed = check_bool("out_signed", out_signed)
        self.runtime_scale = check_bool("runtime_scale", runtime_scale)
        self.per_lane = check_bool("per_lane", per_lane)
        self.lfsr_seed = check_int("lfsr_seed", lfsr_seed, *self.RANGES["lfsr_seed"])
        check_choice("saturation", saturation, SATURATION_MODES)
        rounding, mult_width, shift_width = self._modes(rounding, saturation, mult_width,
                                                        shift_width)
        self.rounding, self.saturation = rounding, saturation
        self.mult_width = check_int("mult_width", mult_width, *self.RANGES["mult_width"])
        self.shift_width = check_int("shift_width", shift_width, *self.RANGES["shift_width"])
        self.tree_levels = adder_levels(signed(in_width) if in_signed else unsigned(in_width),
                                        unsigned(self.mult_width))
        self.max_latency = SHALLOW_LATENCY + 5 + self.tree_levels
        self.latency = check_int("latency", latency, 1, self.max_latency)
        self.multiplier, self.shift, self.zero_point = self._scale_constants(
            multiplier, shift, zero_point)
        self.in_shape = signed(in_width) if in_signed else unsigned(in_width)
        self.out_shape = signed(out_width) if out_signed else unsigned(out_width)
        super().__init__({
            "i": In(stream.Signature(self._input_layout())),
            "o": Out(stream.Signature(data.ArrayLayout(self.out_shape, lanes))),
        })

    def _modes(self, rounding, saturation, mult_width, shift_width):
        """``(rounding, mult_width, shift_width)`` with the defaults filled in; ``tflite``
        mode fixes all three (``rounding`` None: the mode rounds its own way)."""
        if not self.tflite:
            rounding = "half_even" if rounding is None else rounding
            check_choice("rounding", rounding, ROUNDING_MODES)
            return (rounding, 32 if mult_width is None else mult_width,
                    6 if shift_width is None else shift_width)
        if not self.in_signed:
            raise ValueError("in_signed: tflite mode takes signed int32 accumulators")
        if rounding is not None:
            raise ValueError(f"rounding: tflite mode fixes its own rounding; "
                             f"leave rounding unset, got {rounding!r}")
        if saturation != "sat":
            raise ValueError(f"saturation: tflite mode clamps ('sat'), got {saturation!r}")
        if mult_width not in (None, 31):
            raise ValueError(f"mult_width: tflite multipliers are 31-bit, got {mult_width!r}")
        if shift_width is not None:
            raise ValueError(f"shift_width: tflite shifts are signed 6-bit exponents; "
                             f"leave shift_width unset, got {shift_width!r}")
        return None, 31, 6

    def _scale_constants(self, multiplier, shift, zero_point):
        """``(multiplier, shift, zero_point)``: all ``None`` with ``runtime_scale``, else
        the checked constants (``zero_point`` defaults to 0)."""
        if self.runtime_scale:
            for name, value in (("multiplier", multiplier), ("shift", shift),
                                ("zero_point", zero_point)):
                if value is not None:
                    raise ValueError(f"{name}: with runtime_scale, {name} arrives in the "
                                     f"input payload; got the constant {value!r}")
            return None, None, None
        out_width, product_width = self.out_width, self.in_width + self.mult_width
        out_lo, out_hi = ((-(1 << (out_width - 1)), (1 << (out_width - 1)) - 1)
                          if self.out_signed else (0, (1 << out_width) - 1))
        shift_lo, shift_hi = (-31, 30) if self.tflite else (0, product_width - 1)
        multiplier = self._constants("multiplier", multiplier, 0, (1 << self.mult_width) - 1,
                                     f"a {self.mult_width}-bit unsigned integer")
        shift = self._constants("shift", shift, shift_lo, shift_hi,
                                "TFLite's exponent range" if self.tflite else
                                f"a shift that leaves result bits of the "
                                f"{product_width}-bit product")
        zero_point = self._constants("zero_point", 0 if zero_point is None else zero_point,
                                     out_lo, out_hi, "in the output range")
        return multiplier, shift, zero_point

    def _input_layout(self):
        """The input payload: the lanes' data and, with ``runtime_scale``, M, S and Z (one
        each, or one per lane with ``per_lane``)."""
        in_data = data.ArrayLayout(self.in_shape, self.lanes)
        if not self.runtime_scale:
            return in_data

        def per(shape):
            return data.ArrayLayout(shape, self.lanes) if self.per_lane else shape
        return data.StructLayout({
            "data": in_data,
            "multiplier": per(unsigned(self.mult_width)),
            "shift": per(signed(6) if self.tflite else unsigned(self.shift_width)),
            "zero_point": per(self.out_shape),
        })

    def _constants(self, name, value, lo, hi, allowed):
        values = list(value) if self.per_lane and not isinstance(value, int) else value
        if self.per_lane:
            if not isinstance(values, list) or len(values) != self.lanes:
                raise ValueError(f"{name}: per_lane needs a sequence of {self.lanes} "
                                 f"integers, got {value!r}")
        else:
            if values is None:
                raise ValueError(f"{name}: a constant scale (runtime_scale=False) needs "
                                 f"multiplier and shift")
            if not isinstance(values, int) or isinstance(values, bool):
                raise TypeError(f"{name}: expected an integer constant (a list needs "
                                f"per_lane), got {value!r}")
            values = [values]
        for v in values:
            if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
                raise ValueError(f"{name}: {v!r} is not {allowed} (allowed {lo}..{hi})")
        return tuple(values) if self.per_lane else values[0]

    @property
    def throughput(self):
        """Sustained input beats per cycle."""
        return 1

    # What `latency` counts, as tests/test_quantizer_amaranth.py and tests/test_manifest.py
    # measure it.
    latency_definition = BEAT_LATENCY

    # i.ready = ~o.valid | o.ready: the pipeline has no skid buffer.
    ready_dependencies = STALL_TOGETHER_READY

    @property
    def dsp_tiles(self):
        """Registered multiplier tiles, each a MULT18X18D in the ECP5 export."""
        if self.latency <= SHALLOW_LATENCY:
            return 0
        return self.lanes * len(limbs(self.in_shape)) * len(limbs(unsigned(self.mult_width)))

    def elaborate(self, platform):
        m = Module()
        advance = Signal(name="advance")
        m.d.comb += [
            advance.eq(~self.o.valid | self.o.ready),
            self.i.ready.eq(advance),
        ]
        pipe = Pipeline(m, advance, self.i.valid)
        lanes = self._lane_inputs(m)
        if self.latency <= SHALLOW_LATENCY:
            results = self._shallow(pipe, lanes)
        else:
            results = self._deep(m, pipe, lanes)
        with m.If(advance):
            m.d.sync += self.o.valid.eq(pipe.valid)
            for lane, y in enumerate(results):
                m.d.sync += self.o.payload[lane].eq(y)
        return m

    def _lane_inputs(self, m):
        """Per lane: ``x``, its ``multiplier``, ``shift`` and ``zero_point`` (constants, or
        fields of the input payload) and ``random``, the lane's LFSR for stochastic
        rounding (else 0), which steps with every accepted beat."""
        accept = self.i.valid & self.i.ready
        x = self.i.payload.data if self.runtime_scale else self.i.payload
        lanes = []
        for lane in range(self.lanes):
            if self.runtime_scale:
                fields = [self.i.payload.multiplier, self.i.payload.shift,
                          self.i.payload.zero_point]
            else:
                fields = [self.multiplier, self.shift, self.zero_point]
            multiplier, shift, zero_point = (f[lane] if self.per_lane else f for f in fields)
            random = 0
            if self.rounding == "stochastic":
                random = lfsr_register(m, self.lfsr_seed, lane, step=accept)
            lanes.append({"x": x[lane], "multiplier": multiplier, "shift": shift,
                          "zero_point": zero_point, "random": random})
        return lanes

    # -- Shallow pipeline (latency 1..4): input, multiply, round, saturate ----------------

    def _shallow(self, pipe, lanes):
        """Per lane ``saturate(round(x * M / 2**S) + Z)``, with registers after the product
        (latency 2 and more), the rounding (3 and more) and the input (4); the output
        register, always there, is :meth:`elaborate`'s."""
        lanes = pipe.register(self.latency >= 4, lanes)
        lanes = pipe.register(self.latency >= 2, [{
            "product": self._multiply(v["x"], v["multiplier"], v["shift"]),
            "shift": v["shift"], "zero_point": v["zero_point"], "random": v["random"],
        } for v in lanes])
        lanes = pipe.register(self.latency >= 3, [{
            "rounded": self._round(v["product"], v["shift"], v["random"]),
            "zero_point": v["zero_point"],
        } for v in lanes])
        return [saturate(v["rounded"] + self._out_const(v["zero_point"]),
                         width=self.out_width, signed_out=self.out_signed,
                         saturation=self.saturation)
                for v in lanes]

    # -- Deep pipeline (latency 5..max_latency): tiles, groups, coarse, fine, decide --------

    def _deep(self, m, pipe, lanes):
        """The deep pipeline (see the class docstring): the tiled multipliers, with
        ``shift``, ``zero_point`` and ``random`` delayed beside them, then the rounding
        steps, each registered if the latency asks for it."""
        order = (["tree"] * min(self.tree_levels, 1) + ["decide", "fine", "coarse"] +
                 ["tree"] * (self.tree_levels - 1) + ["groups", "tiles"])
        cuts = order[:self.latency - SHALLOW_LATENCY]
        products, sides = [], []
        for lane, v in enumerate(lanes):
            mul = TiledMultiplier(self.in_shape, unsigned(self.mult_width),
                                  registered_levels=cuts.count("tree"),
                                  register_tiles="tiles" in cuts)
            m.submodules[f"multiplier{lane}"] = mul
            m.d.comb += [mul.a.eq(v["x"]), mul.b.eq(v["multiplier"]), mul.en.eq(pipe.advance)]
            products.append(mul.p)
            sides.append({"shift": v["shift"], "zero_point": v["zero_point"],
                          "random": v["random"]})
        # A per-tensor run-time S drives every lane's shifters: each lane gets its own
        # copy, with its own reset value so that synthesis cannot merge the copies back
        # into one register whose fan-out would limit the clock.
        inits = [{"shift": self._distinct(v["shift"], lane)} for lane, v in enumerate(lanes)]
        for stage in range(mul.latency):
            sides = pipe.register(True, sides, inits if stage == 0 else None)
        lanes = pipe.register("groups" in cuts, [
            {**self._groups(p), **side} for p, side in zip(products, sides)])
        lanes = pipe.register("coarse" in cuts, [
            {**self._coarse(v), "shift": v["shift"], "zero_point": v["zero_point"],
             "random": v["random"]} for v in lanes])
        # The decide step adds the low out_width + 2 bits of the integer (a sum of
        # out_width + 3): wider results cannot come back into range once the increment
        # and the zero point are added.
        keep = self.out_width + 2
        lanes = pipe.register("fine" in cuts, [self._fine(v, keep) for v in lanes])
        lanes = pipe.register("decide" in cuts, [self._decide(v, keep) for v in lanes])
        return [saturate(v["total"], width=self.out_width, signed_out=self.out_signed,
                         saturation=self.saturation, overflow=(v["big"], v["negative"]))
                for v in lanes]

    def _multiply(self, x, multiplier, shift):
        """The exact product; in TFLite double mode, of the left-shifted accumulator."""
        multiplier = (Const(multiplier, unsigned(self.mult_width))
                      if isinstance(multiplier, int) else multiplier)
        if self.tflite == "double":
            x = self._tflite_left(x, shift)
        return x * multiplier

    @staticmethod
    def _tflite_left(value, shift):
        """``value`` shifted left by TFLite's exponent where it is positive."""
        if isinstance(shift, int):
            return value << max(shift, 0)
        return value << Mux(shift > 0, shift, 0).as_unsigned()[:5]

    def _out_const(self, zero_point):
        """``zero_point`` as a value of the output shape."""
        return Const(zero_point, self.out_shape) if isinstance(zero_point, int) else zero_point

    @staticmethod
    def _distinct(value, lane):
        """A reset value of ``value``'s shape that differs from lane to lane."""
        if isinstance(value, int):
            return 0
        shape = value.shape()
        return lane % (1 << (shape.width - shape.signed))

    def _staged_shift(self):
        """Whether the deep pipeline splits a run-time shift into coarse and fine steps."""
        return self.runtime_scale and not self.tflite and self.rounding != "stochastic"

    def _fine_bits(self):
        return min(FINE_SHIFT_BITS, self.shift_width)

    def _groups(self, product):
        """The deep pipeline's groups step: ``product`` and, with a staged shift, the OR of
        each ``2**fine_bits``-bit group of it (``groups``)."""
        if self._staged_shift():
            return {"product": product,
                    "groups": group_ors(product, fine_bits=self._fine_bits())}
        return {"product": product}

    def _coarse(self, v):
        """The deep pipeline's coarse step on :meth:`_groups`'s values: with a staged shift,
        the product shifted by the multiple of ``2**fine_bits`` in S (``shifted``), the
        sticky OR of the groups it drops (``sticky``) and the sign (``negative``); else the
        ``product`` (left-shifted by the exponent in TFLite double mode)."""
        product, shift = v["product"], v["shift"]
        if self._staged_shift():
            shifted, sticky = coarse_shift(product, v["groups"], shift,
                                           fine_bits=self._fine_bits())
            return {"shifted": shifted, "sticky": sticky, "negative": product < 0}
        if self.tflite == "double":
            # (x << left) * M == (x * M) << left: the tiles multiply the 32-bit x.
            return {"product": self._tflite_left(product, shift)}
        return {"product": product}

    def _fine(self, v, keep):
        """The deep pipeline's fine step on :meth:`_coarse`'s values. The rounded result is
        ``integer + up``: either ``far`` is set and ``|integer| >= 2**(keep - 1)`` (the
        result saturates), or ``integer`` fits in ``bits`` signed bits, and ``kept`` is
        ``integer`` cut to those bits. ``negative`` (``integer < 0``), ``up`` and the
        lane's ``zero_point`` go on to :meth:`_decide`.

        ``far`` reads the coarse-shifted value, in parallel with the fine shifter: with a
        fine shift of 1..``j = 2**fine_bits`` bits (half bit included), a value within
        ``keep + j`` signed bits leaves an integer within ``keep - 1 + j`` bits, and one
        beyond leaves an integer of at least ``2**(keep - 1)`` in magnitude."""
        if self._staged_shift():
            step = 1 << self._fine_bits()
            integer, up = fine_round(v["shifted"], v["sticky"], v["shift"],
                                     fine_bits=self._fine_bits(), negative=v["negative"],
                                     rounding=self.rounding)
            bits = min(keep - 1 + step, len(integer))
            far = beyond(v["shifted"], keep + step)
        else:
            integer, up = self._round_parts(v["product"], v["shift"], v["random"])
            far, bits = Const(0, 1), len(integer)
        return {"kept": integer[:bits].as_signed(), "far": far, "negative": integer < 0,
                "up": up, "zero_point": v["zero_point"]}

    def _decide(self, v, keep):
        """The deep pipeline's decide step on :meth:`_fine`'s values: ``total``, the low
        ``keep`` bits of ``kept`` plus Z plus ``up`` on one carry chain, and ``big``, set
        where the result saturates whatever Z is (``far``, or ``kept`` beyond ``keep``
        signed bits); ``negative`` is passed on."""
        kept = v["kept"]
        return {"total": add_carry(kept[:keep].as_signed(), self._out_const(v["zero_point"]),
                                   v["up"]),
                "big": v["far"] | beyond(kept, keep), "negative": v["negative"]}

    def _round(self, product, shift, random):
        integer, up = self._round_parts(product, shift, random)
        return integer + up

    def _round_parts(self, product, shift, random):
        """``(integer, up)`` of the rounding of ``product`` (already left-shifted in
        TFLite double mode)."""
        if self.tflite == "double":
            high = round_shift(product, 31, max_shift=31, rounding="half_up")
            if isinstance(shift, int):
                right = max(-shift, 0)
                return round_parts(high, right, max_shift=right, rounding="half_away")
            right = Mux(shift < 0, -shift, 0).as_unsigned()[:6]
            return round_parts(high, right, max_shift=32, rounding="half_away")
        if self.tflite == "single":
            if isinstance(shift, int):
                return round_parts(product, 31 - shift, max_shift=31 - shift,
                                   rounding="half_up")
            total = (31 - shift).as_unsigned()[:6]
            return round_parts(product, total, max_shift=63, rounding="half_up")
        max_shift = shift if isinstance(shift, int) else (1 << self.shift_width) - 1
        return round_parts(product, shift, max_shift=max_shift, rounding=self.rounding,
                           random=random)
