"""GPTQ/AWQ group quantization in hardware: float elements in, one ``bits``-bit code per
element and one FP32 scale (and zero point) per group out, equal bit for bit to
:func:`qdp.golden.group_quantize`.

A group's scale needs its minimum and maximum before any element can leave, so the unit
stores one group (:class:`~qdp.hdl.block_store.BlockStore`: one beat per cycle across
back-to-back groups). The store keeps one maximum per group; here that maximum holds two
side by side (:meth:`GroupQuantize.magnitude`, :meth:`GroupQuantize.larger`): the
largest magnitude among the positive elements (``hi``) and among the negative ones
(``-lo``), as patterns without their sign bit (IEEE magnitudes order as integers; ``-0``
and ``+0`` both count as 0). Each row read out then goes through :class:`GroupStages`:

1. ``hi`` and ``-lo`` widened to FP32 (asymmetric: a group of zeros takes 1 and 1);
   symmetric: ``amax = max(hi, -lo, fl32(1e-5))``;
2. asymmetric: ``span = fl32(hi + (-lo))`` (:class:`~qdp.hdl.float_add.AddStages`, then
   :class:`~qdp.hdl.floats.RoundingStages`);
3. ``scale = fl32(span / maxq)`` (or ``fl32(amax / (2**(bits-1) - 1))``): an exactly
   rounded FP32 division (:meth:`GroupStages.divider`: both significands normalized to 24
   bits, 26 restoring steps, one per stage, the remainder as the sticky bit, rounded
   half to even with subnormals);
4. per lane ``fl32(x / scale)`` by the same divider, and beside the lanes one more
   division, ``fl32(-lo / scale)`` for the zero point;
5. ``rint`` of each rounded quotient (half to even: the two-step shift of
   :mod:`~qdp.hdl.rounding`), then ``clamp(q + zero, 0, maxq)`` (symmetric:
   ``clamp(q, -2**(bits-1), 2**(bits-1) - 1)``).

Why the rint reads only the rounded quotient's low bits: whenever ``scale`` is nonzero,
``|x| <= span`` and ``scale >= fl32(span / maxq)`` within half an FP32 step put
``|x / scale|`` below ``2 * maxq < 512`` (a nonzero subnormal scale is at least half of
``span / maxq``), so the quotient's last place lies at ``2**-15`` or below and the shift
of ``rint`` is a right shift. Rounding the quotient to FP32 first and then to an integer
is the golden's double rounding, reproduced step by step: the divider's FP32 quotient is
IEEE's correctly rounded one, so ``rint`` sees exactly the golden's ``fl32(x / scale)``
(a quotient just above ``k + 1/2`` that FP32 rounds onto the tie goes to even).

Latency: 94 stages (83 symmetric, without the span's adder) behind the storage's read,
98 cycles (87) from a group's last input beat to its first output beat, one more with
``read_register``; one beat per cycle across back-to-back groups.

Finite input whose span overflows FP32 (``hi - lo`` above the largest float) is the
golden's too: the scale is Inf, every ``x / scale`` and ``-lo / scale`` is 0, every code
0. Outside the golden's contract (it refuses NaN and Inf, and its NumPy ``rint`` of an Inf
quotient is platform-defined) the hardware still keeps the streams' rules and emits
defined values: NaN and Inf elements order above every finite magnitude, so they set
``hi`` or ``-lo`` and the span becomes Inf or NaN; a quotient that is Inf or at least
512 saturates (``rint`` is taken as ``±(2**(bits+1) - 1)`` before the clamp), a NaN
quotient counts as 0. Only FP32 input can give a zero scale (every ``|x| <= maxq *
2**-150``): then ``x / 0`` saturates by the sign of ``x`` and ``0 / 0`` counts as 0.
"""

import numpy as np
from amaranth.hdl import Cat, Const, Mux, signed, unsigned
from amaranth.lib import data

from ..golden.floats import FP32, float_format
from ._checks import check_bool, check_choice, check_int
from .block_store import BlockStore
from .float_add import AddStages
from .floats import (Rounded, RoundingStages, divide_step, encode_rounded, exponent_shape,
                     leading_zeros, quotient_value, shift_by_eights, unpack, widen)
from .rounding import coarse_shift, fine_round, group_ors

__all__ = ["GroupQuantize", "GroupStages", "GROUP_IN_FORMATS", "group_scale_layout"]

#: The input formats of GPTQ's and AWQ's weights.
GROUP_IN_FORMATS = ("fp32", "bf16", "fp16")
#: Most elements per group: the storage of one group.
MAX_GROUP_SIZE = 4096
#: The divider's significands: FP32's 24 bits, the dividend's format padded to them.
WIDTH = FP32.precision
#: Quotient bits: FP32's 24, a round bit, and one for a ratio below 1.
QUOTIENT_BITS = WIDTH + 2
#: ``fl32(1e-5)``: AWQ's smallest symmetric range.
AWQ_FLOOR = 0x3727C5AC
ONE = 0x3F800000
#: A rounded quotient whose last place is at ``2**BIG_LSB`` or above is at least 512.
BIG_LSB = -(WIDTH - 1) + 9
#: Right shifts of ``rint`` beyond this leave nothing at or above 1/2.
MAX_SHIFT = WIDTH + 2
FINE_SHIFT_BITS = 3


def group_scale_layout(bits, symmetric):
    """The ``scale`` stream's payload: ``StructLayout({"scale": unsigned(32), "zero":
    unsigned(bits + 1)})``, or the FP32 scale alone when ``symmetric``. The zero point
    is one bit wider than the codes: with a subnormal scale (every ``|x|`` below about
    ``2**-118``) the golden's ``rint(-lo / scale)`` can exceed ``maxq``."""
    if symmetric:
        return unsigned(FP32.width)
    return data.StructLayout({"scale": unsigned(FP32.width), "zero": unsigned(bits + 1)})


def _float32_bits(value):
    return int(np.float32(value).view(np.uint32))


class GroupStages:
    """The stages of group quantization on the list of dicts of
    :meth:`~qdp.hdl.block_store.BlockStore.staged_datapath`.

    The block's dict comes first, one dict per element lane after it. The divisions run
    on "dividing" dicts (those holding the key ``div``), the divisor's fields in the
    block's dict: first one extra dict for ``span / maxq``, then every lane and, for the
    asymmetric form, one extra dict for ``-lo / scale`` in front of the lanes. Keys a
    stage does not read pass through.

    Parameters
    ----------
    fmt : FloatFormat
        The elements' format (widened exactly to FP32).
    bits : int
        Code width.
    symmetric : bool
        AWQ's signed form instead of GPTQ's unsigned one with a zero point.
    fold : int
        A register after every ``fold`` stage functions (and the last): 1 in the
        component, more for the formal proofs' shorter pipeline.

    Members
    -------
    latency : int
        Registered stages from the read row to the finished beat.
    """

    def __init__(self, fmt, bits, symmetric, *, fold=1):
        self.fmt, self.bits, self.symmetric, self.fold = fmt, bits, symmetric, fold
        self.maxq = (1 << (bits - 1)) - 1 if symmetric else (1 << bits) - 1
        self.exp_shape = exponent_shape(FP32, extra=3)
        self.rounding = RoundingStages(precision=WIDTH, fmt=FP32, exp_shape=self.exp_shape)
        self.adder = AddStages(FP32, self.exp_shape)

    def stages(self):
        """Stage functions on the list of dicts, in order."""
        on_block = lambda s: lambda values: [s(values[0])] + values[1:]  # noqa: E731
        span = [] if self.symmetric else \
            [on_block(s) for s in self.adder.stages() + self.rounding.stages()] \
            + [self._span]
        return ([self._range] + span + self.divider() + [self._scale] + self.divider()
                + [self._lanes(s) for s in (self._align, self._coarse, self._fine)]
                + [self._zero, self._clip])

    def registered(self, k):
        """Whether stage function ``k`` is followed by a register (every one, or with
        ``fold`` every ``fold``-th and the last)."""
        return (k + 1) % self.fold == 0 or k == len(self.stages()) - 1

    @property
    def latency(self):
        return sum(self.registered(k) for k in range(len(self.stages())))

    @staticmethod
    def _lanes(stage):
        """``stage`` on every dividing dict; the others pass through."""
        return lambda values: values[:1] + [stage(v) if "div" in v else v
                                            for v in values[1:]]

    # -- the group's range -------------------------------------------------------------

    def _range(self, values):
        """``hi`` and ``-lo`` as FP32 patterns (1 and 1 for a group of zeros); symmetric:
        the dividing dict of ``amax``, else the adder's operands."""
        block, top = values[0], self.fmt.width - 1
        key = block["absmax"]
        wide = []
        for half in (key[:top], key[top:]):
            pattern = Cat(half, Const(0, 1))
            fields = unpack(pattern, self.fmt)
            wide.append(widen(pattern, fields, leading_zeros(fields.significand),
                              self.fmt, FP32))
        hi, lo = wide
        out = {k: v for k, v in block.items() if k != "absmax"}
        out.update(self._divisor(Const(_float32_bits(self.maxq), 32)))
        if self.symmetric:      # a group of zeros takes AWQ's floor
            amax = Mux(hi > lo, hi, lo)
            amax = Mux(amax > AWQ_FLOOR, amax, AWQ_FLOOR)
            return [out, self._dividend(amax, FP32)] + values[1:]
        empty = key == 0
        hi, lo = Mux(empty, ONE, hi), Mux(empty, ONE, lo)
        return [dict(out, x=hi, y=lo, lo=lo)] + values[1:]

    def _span(self, values):
        """The rounded span's pattern as the dividing dict of ``span / maxq``."""
        block = values[0]
        r = Rounded(block["sign"], block["significand"], block["exponent"], block["inf"])
        span = Mux(block["nan"], FP32.nan_bits, encode_rounded(r, FP32))
        out = {k: v for k, v in block.items()
               if k not in ("sign", "significand", "exponent", "inf", "nan")}
        return [out, self._dividend(span, FP32)] + values[1:]

    @staticmethod
    def _divisor(pattern):
        """The divisor's fields, in the block's dict."""
        f = unpack(pattern, FP32)
        return {"dsig": f.significand, "dexp": f.exponent, "dzero": f.zero,
                "dnan": f.nan, "dinf": f.inf}

    @staticmethod
    def _dividend(pattern, fmt):
        """A dividing dict of ``pattern`` (a ``fmt`` float), its significand padded to
        :data:`WIDTH` bits."""
        f = unpack(pattern, fmt)
        pad = WIDTH - fmt.precision
        return {"div": 0, "sign": f.sign,
                "nsig": Cat(Const(0, pad), f.significand) if pad else f.significand,
                "nexp": (f.exponent - pad).as_signed(), "nzero": f.zero,
                "nnan": f.nan, "ninf": f.inf}

    def _scale(self, values):
        """``scale``'s pattern into the block's dict and its divisor fields; the dividing
        dicts of ``-lo / scale`` (asymmetric) and of every lane's element."""
        block, quotient = values[0], values[1]
        r = Rounded(0, quotient["significand"], quotient["exponent"], quotient["inf"])
        scale = Mux(quotient["nan"], FP32.nan_bits, encode_rounded(r, FP32))
        out = {k: v for k, v in block.items()
               if k not in ("dsig", "dexp", "dzero", "dnan", "dinf", "lo")}
        out = dict(out, scale=scale, **self._divisor(scale))
        lanes = [self._dividend(v["x"], self.fmt) for v in values[2:]]
        if self.symmetric:
            return [out] + lanes
        return [out, self._dividend(block["lo"], FP32)] + lanes

    # -- the divider ---------------------------------------------------------------------

    def divider(self):
        """``fl32(n / d)`` for every dividing dict, ``d`` the block's divisor: leading
        zeros, the normalizing shift in two steps, the restoring steps, the quotient with
        its sticky bit, rounding to FP32 (IEEE's special cases beside it)."""
        return ([self._count, self._shift_eights, self._normalize]
                + [self._step] * QUOTIENT_BITS + [self._quotient]
                + [self._lanes(s) for s in self.rounding.stages()])

    @staticmethod
    def _count(values):
        block = dict(values[0], dlz=leading_zeros(values[0]["dsig"]))
        return [block] + [dict(v, nlz=leading_zeros(v["nsig"])) if "div" in v else v
                          for v in values[1:]]

    @staticmethod
    def _shift_eights(values):
        block = values[0]
        block = dict(block, dsig=shift_by_eights(block["dsig"], block["dlz"]))
        return [block] + [dict(v, nsig=shift_by_eights(v["nsig"], v["nlz"]))
                          if "div" in v else v for v in values[1:]]

    def _normalize(self, values):
        """Both significands with their top bit set: the dividend is the first remainder,
        the quotient's exponent ``(en - lz_n) - (ed - lz_d)``."""
        block = values[0]
        dlz = block["dlz"]
        divisor = (block["dsig"] << dlz[:3])[:WIDTH]
        d_exp = (block["dexp"] - dlz).as_signed()
        out = {k: v for k, v in block.items() if k not in ("dsig", "dexp", "dlz")}
        lanes = []
        for v in values[1:]:
            if "div" not in v:
                lanes.append(v)
                continue
            rest = {k: x for k, x in v.items() if k not in ("nsig", "nexp", "nlz")}
            exponent = (v["nexp"] - v["nlz"] - d_exp).as_signed()
            lanes.append(dict(rest, rem=Cat((v["nsig"] << v["nlz"][:3])[:WIDTH], Const(0, 1)),
                              exponent=exponent[:self.exp_shape.width].as_signed()))
        return [dict(out, divisor=divisor)] + lanes

    @staticmethod
    def _step(values):
        """One restoring step in every dividing dict, against the block's divisor."""
        divisor = values[0]["divisor"]
        lanes = []
        for v in values[1:]:
            if "div" not in v:
                lanes.append(v)
                continue
            bit, rem = divide_step(v["rem"], divisor, WIDTH)
            quotient = bit if "quotient" not in v else Cat(bit, v["quotient"])
            lanes.append(dict(v, rem=rem, quotient=quotient))
        return values[:1] + lanes

    def _quotient(self, values):
        """The quotient as the rounding stages' value, IEEE's special cases beside it:
        ``Inf / d`` and ``n / 0`` are Inf, ``n / Inf`` is 0, ``0 / 0``, ``Inf / Inf`` and
        a NaN operand NaN (a span that overflows to Inf is the golden's too: its scale is
        Inf and every ``x / scale`` 0)."""
        block = values[0]
        dzero, dnan, dinf = block["dzero"], block["dnan"], block["dinf"]
        out = {k: v for k, v in block.items()
               if k not in ("divisor", "dzero", "dnan", "dinf")}
        lanes = []
        for v in values[1:]:
            if "div" not in v:
                lanes.append(v)
                continue
            q = quotient_value(v, QUOTIENT_BITS, self.exp_shape)
            nan = v["nnan"] | dnan | (v["ninf"] & dinf) | (v["nzero"] & dzero)
            inf = ~nan & (v["ninf"] | (dzero & ~v["nzero"]))
            zero = nan | inf | v["nzero"] | dinf
            rest = {k: x for k, x in q.items() if k not in ("nzero", "nnan", "ninf")}
            lanes.append(dict(rest, significand=Mux(zero, 0, q["significand"]),
                              inf=inf, nan=nan))
        return [out] + lanes

    # -- rint, the zero point and the clamp ------------------------------------------------

    def _align(self, v):
        """``rint`` of ``sig * 2**lsb``, first step: the right shift ``-lsb`` (clamped) and
        the ORs of the significand's bit groups; ``big`` for a quotient of 512 or more."""
        e, sig = v["exponent"], v["significand"]
        shift = Mux(e < -MAX_SHIFT, MAX_SHIFT, -e).as_unsigned()
        return {"div": 0, "sign": v["sign"], "nan": v["nan"],
                "big": v["inf"] | ((e >= BIG_LSB) & (sig != 0)), "value": sig,
                "shift": shift[:MAX_SHIFT.bit_length()],
                "groups": group_ors(sig, fine_bits=FINE_SHIFT_BITS)}

    @staticmethod
    def _coarse(v):
        shifted, sticky = coarse_shift(v["value"], v["groups"], v["shift"],
                                       fine_bits=FINE_SHIFT_BITS)
        out = {k: v[k] for k in ("div", "sign", "nan", "big", "shift")}
        return dict(out, shifted=shifted, sticky=sticky)

    def _fine(self, v):
        """The magnitude rounded half to even, saturated for a big (or Inf) quotient, 0
        for a NaN one; then the sign."""
        integer, up = fine_round(v["shifted"], v["sticky"], v["shift"],
                                 fine_bits=FINE_SHIFT_BITS, negative=Const(0, 1),
                                 rounding="half_even")
        top = (1 << (self.bits + 1)) - 1
        magnitude = Mux(v["big"], top, (integer + up)[:10])
        magnitude = Mux(v["nan"], 0, magnitude)
        r = Mux(v["sign"], -magnitude, magnitude).as_signed()
        return {"div": 0, "r": r[:12].as_signed()}

    def _zero(self, values):
        """The zero point (asymmetric): the extra dict's ``rint``, into the block's dict."""
        if self.symmetric:
            return [dict(values[0], zero=Const(0, 1))] + values[1:]
        top = (1 << (self.bits + 1)) - 1
        r = values[1]["r"]
        zero = Mux(r > top, top, Mux(r < 0, 0, r))[:self.bits + 1]
        return [dict(values[0], zero=zero)] + values[2:]

    def _clip(self, values):
        """``clamp(r + zero, 0, maxq)``, or symmetric ``clamp(r, -2**(bits-1),
        2**(bits-1) - 1)``: each code ``bits`` wide."""
        block = values[0]
        lo, hi = (-(self.maxq + 1), self.maxq) if self.symmetric else (0, self.maxq)
        lanes = []
        for v in values[1:]:
            t = (v["r"] + block["zero"]).as_signed()
            q = Mux(t > hi, hi, Mux(t < lo, lo, t))
            lanes.append({"q": q.as_signed()[:self.bits]})
        return [block] + lanes

    @staticmethod
    def outputs(values):
        return values[0], [v["q"] for v in values[1:]]

    def scale(self, block):
        if self.symmetric:
            return block["scale"]
        return {"scale": block["scale"], "zero": block["zero"]}


class GroupQuantize(BlockStore):
    """GPTQ/AWQ group quantization of a stream of float elements: per group of
    ``group_size`` elements one FP32 scale (and zero point) on ``scale`` and a ``bits``-bit
    code per element on ``o``, equal to :func:`qdp.golden.group_quantize` bit for bit (see
    the module for how).

    Parameters
    ----------
    group_size : int
        Elements per group: a multiple of ``lanes`` from ``lanes`` to 4096 (GPTQ's and
        AWQ's usual 128; 32 and 64 too).
    lanes : int
        Elements per beat, 1..32.
    bits : int
        Code width, 2..8.
    symmetric : bool
        AWQ's symmetric form (signed codes, no zero point) instead of GPTQ's asymmetric
        one (unsigned codes, a zero point per group).
    in_format : str
        ``"fp32"``, ``"bf16"`` or ``"fp16"``.
    read_register : bool
        A register right behind the storage's read data (one cycle more latency).

    Attributes
    ----------
    latency : int
        Cycles from the acceptance of a group's last input beat to its first output beat
        (``o.ready`` and ``scale.ready`` high, no earlier group draining); the scale leaves
        with that beat.
    dsp_tiles : int
        0: the divisions are restoring dividers in LUT logic, no multiplier tiles.

    Members
    -------
    i : :py:`In(stream.Signature(StructLayout({"data": ..., "last": 1})))`
        ``data`` is :py:`ArrayLayout(unsigned(in width), lanes)`, the float patterns;
        ``last`` closes a (short) group.
    o : :py:`Out(stream.Signature(StructLayout({"data": ..., "first": 1, "last": 1})))`
        ``data`` is :py:`ArrayLayout(unsigned(bits), lanes)` (two's complement codes when
        ``symmetric``); ``first`` and ``last`` mark each group.
    scale : :py:`Out(stream.Signature(group_scale_layout(bits, symmetric)))`
        One FP32 scale (and its ``bits + 1``-bit zero point) per group, in group order.
    """

    RANGES = {"lanes": (1, 32), "bits": (2, 8), "group_size": (1, MAX_GROUP_SIZE)}
    scale_meaning = "that group's FP32 scale and zero point"
    dsp_tiles = 0

    def __init__(self, group_size=128, *, lanes=1, bits=4, symmetric=False,
                 in_format="fp32", read_register=False):
        try:
            check_int("lanes", lanes, *self.RANGES["lanes"])
            check_int("bits", bits, *self.RANGES["bits"])
            check_int("group_size", group_size, *self.RANGES["group_size"])
            if group_size % lanes or group_size < lanes:
                raise ValueError(f"group_size: {group_size} is out of range (allowed a "
                                 f"multiple of lanes={lanes} from {lanes} to "
                                 f"{MAX_GROUP_SIZE})")
            check_bool("symmetric", symmetric)
            fmt = float_format(check_choice("in_format", in_format, GROUP_IN_FORMATS))
            check_bool("read_register", read_register)
        except (TypeError, ValueError):
            self._MustUse__used = True      # failed its checks: not "unused"
            raise
        self._build(group_size, lanes, bits, symmetric, fmt, read_register)

    @classmethod
    def unchecked(cls, group_size, *, lanes, bits=4, symmetric=False, in_format,
                  read_register=False, fold=1):
        """The same logic for any qdp float format (``"e3m2"``, ...), with a register
        after every ``fold`` stages only: the exhaustive tests' and proofs' small
        formats."""
        unit = cls.__new__(cls)
        unit._build(group_size, lanes, bits, symmetric, float_format(in_format),
                    read_register, fold)
        return unit

    def _build(self, group_size, lanes, bits, symmetric, fmt, read_register, fold=1):
        self.in_format, self.read_register = fmt.name, read_register
        self.bits, self.symmetric = bits, symmetric
        self._stages = GroupStages(fmt, bits, symmetric, fold=fold)
        result = signed(bits) if symmetric else unsigned(bits)
        super().__init__(block_size=group_size, lanes=lanes, element=unsigned(fmt.width),
                         fmt=fmt, result=result, scale=group_scale_layout(bits, symmetric),
                         read_register=read_register,
                         pipe_latency=1 + read_register + self._stages.latency,
                         scale_at_drain=False)

    @property
    def group_size(self):
        return self.block_size

    @property
    def key_width(self):
        return 2 * (self._fmt.width - 1)

    def magnitude(self, x):
        """Two magnitudes side by side: ``|x|`` in the low half for a positive ``x``, in
        the high half for a negative one, 0 in the other (``-0`` is 0 in both)."""
        top = self._fmt.width - 1
        mag = x[:top]
        negative = x[top]
        return Cat(Mux(negative, 0, mag), Mux(negative, mag, 0))

    def larger(self, a, b):
        """Each half's maximum."""
        top = self._fmt.width - 1
        return Cat(*(Mux(p > q, p, q) for p, q in ((a[:top], b[:top]),
                                                   (a[top:], b[top:]))))

    def datapath(self, m, valid, absmax, first, last, row, out_fifo, scale_fifo):
        self.staged_datapath(m, self._stages, valid, absmax, first, last, row, out_fifo,
                             scale_fifo)
