"""Float fields in gateware: the hardware side of :mod:`qdp.golden.floats`.

A float enters as its bit pattern. :func:`unpack` reads its class (zero, subnormal,
normal, Inf, NaN), sign, significand and exponent; :func:`leading_zeros` is what
normalizing a significand (subnormals shifted up, their exponent down) needs;
:func:`divide_step` forms a quotient of two normalized significands bit by bit
(:func:`division_step` and :func:`quotient_value` on a stage's dict);
:class:`RoundingStages` rounds an exact value to a format in pipeline stages and
:func:`encode_rounded` packs the result. :func:`constant_parts`, :func:`encode` and
:func:`decode` do the same for elaboration-time constants. Combinational; the
components register around them."""

import dataclasses
import math
from fractions import Fraction

import numpy as np
from amaranth.hdl import Cat, Const, Mux, signed

from .rounding import magnitude_rounds_up

__all__ = ["FloatFields", "Rounded", "RoundingStages", "unpack", "leading_zeros",
           "leading_zeros_groups", "leading_zeros_finish",
           "shift_by_eights", "divide_step", "division_step", "quotient_value",
           "exponent_shape", "encode_rounded", "widen", "constant_parts",
           "encode", "decode"]


@dataclasses.dataclass
class FloatFields:
    """The fields and class of one float.

    Members
    -------
    sign : Value
        The sign bit (set for -0, -Inf and negative NaNs).
    significand : Value
        ``p`` bits: the mantissa with the hidden bit (0 for subnormals and zeros).
    exponent : Value
        Signed: the exponent of the significand's last place (``max(E, 1) - bias - m``).
    biased_exponent : Value
        ``max(E, 1)``, unsigned: differences of two are differences of exponents.
    zero, inf, nan : Value
        One bit each.
    """

    sign: object
    significand: object
    exponent: object
    biased_exponent: object
    zero: object
    inf: object
    nan: object


def exponent_shape(fmt, extra=0):
    """A signed shape for every normalized exponent of ``fmt`` (and ``extra`` more bits
    of range), differences of two included."""
    span = fmt.emax - fmt.emin + 3 * fmt.precision
    return signed(span.bit_length() + 2 + extra)


def unpack(bits, fmt):
    """:class:`FloatFields` of the ``fmt.width``-bit pattern ``bits``."""
    man = bits[:fmt.man_bits]
    field = bits[fmt.man_bits:fmt.man_bits + fmt.exp_bits]
    sign = bits[fmt.width - 1]
    top = (1 << fmt.exp_bits) - 1
    normal = field != 0
    biased = Mux(normal, field, 1)
    exponent = biased - (fmt.bias + fmt.man_bits)
    return FloatFields(sign=sign, significand=Cat(man, normal & (field != top)),
                       exponent=exponent.as_signed(), biased_exponent=biased,
                       zero=(field == 0) & (man == 0),
                       inf=(field == top) & (man == 0),
                       nan=(field == top) & (man != 0))


def leading_zeros(value):
    """The leading zero bits of the unsigned ``value`` (its width for 0), as a tree
    without adders: ``value`` padded below to a power of two, each half's count and
    all-zero flag, and per level one mux that takes the upper half's count, or the lower
    half's with the level's bit set when the upper half is all zeros."""
    return leading_zeros_finish(value, leading_zeros_groups(value, group=None))


#: Bits per group of :func:`leading_zeros_groups`.
LZ_GROUP = 8


def leading_zeros_groups(value, group=LZ_GROUP):
    """The first half of :func:`leading_zeros`, to register between the two:
    ``(counts, zeros)``, the count and the all-zero flag of every ``group``-bit group of
    ``value`` padded below to a power of two, lowest group first, as two ``Cat``
    (``group=None``: one group, the whole tree)."""
    width = len(value)
    size = 1 << max(0, (width - 1).bit_length())
    padded = Cat(Const(0, size - width), value) if size > width else value
    group = size if group is None else min(group, size)
    nodes = [_leading_zeros_tree(padded[k:k + group]) for k in range(0, size, group)]
    return Cat(count for count, _ in nodes), Cat(zero for _, zero in nodes)


def leading_zeros_finish(value, groups):
    """The second half of :func:`leading_zeros`: the groups' counts combined."""
    counts, zeros = groups
    n = len(zeros)
    bits = len(counts) // n
    nodes = [(counts[k * bits:(k + 1) * bits], zeros[k]) for k in range(n)]
    while len(nodes) > 1:
        nodes = [_combine(low, high) for low, high in zip(nodes[0::2], nodes[1::2])]
    count, zero = nodes[0]
    return Mux(zero, len(value), count)


def _combine(low, high):
    (low_count, low_zero), (high_count, high_zero) = low, high
    return (Mux(high_zero, Cat(low_count, Const(1, 1)), Cat(high_count, Const(0, 1))),
            high_zero & low_zero)


def _leading_zeros_tree(value):
    """``(count, all zero)`` of a power-of-two-wide ``value`` (count meaningful when not
    all zero)."""
    if len(value) == 1:
        return Const(0, 0), ~value[0]
    half = len(value) // 2
    return _combine(_leading_zeros_tree(value[:half]), _leading_zeros_tree(value[half:]))


def shift_by_eights(value, amount):
    """``value`` shifted left by the multiple of 8 in ``amount``, same width: the first
    half of a normalizing shift, the rest (``amount[:3]``) a stage later."""
    if len(amount) <= 3:
        return value
    return (value << Cat(Const(0, 3), amount[3:]))[:len(value)]


def divide_step(rem, divisor, width):
    """One step of restoring division: ``(bit, rem')`` with ``bit = rem >= divisor`` (read
    from the sign of ``rem - divisor``: one carry chain) and ``rem' = 2 * (rem - bit *
    divisor)``, for a ``width``-bit divisor (a ``Value`` or an int) with its top bit set.
    With ``rem < 2 * divisor`` on entry, so is ``rem'``: it is kept ``width + 1`` bits
    wide."""
    width += 1
    difference = rem - divisor
    bit = ~difference[-1]
    rest = Mux(bit, difference[:width], rem)
    return bit, (rest << 1)[:width]


def division_step(v, width):
    """:func:`divide_step` as a pipeline stage on a dict: its ``rem`` and ``divisor``
    (``width`` bits), and the quotient bits so far in ``quotient`` (absent before the
    first step; the newest bit at the bottom)."""
    bit, rem = divide_step(v["rem"], v["divisor"], width)
    return dict(v, rem=rem, quotient=bit if "quotient" not in v else Cat(bit, v["quotient"]))


def quotient_value(v, bits, exp_shape):
    """A finished division's dict as the value :class:`RoundingStages` take: the
    ``bits``-bit quotient ``Q`` with the sticky bit (``rem != 0``) below it,
    ``(2 Q + sticky) * 2**(exponent - bits)``; ``rem``, ``divisor`` and ``quotient``
    dropped."""
    out = {k: val for k, val in v.items() if k not in ("rem", "divisor", "quotient")}
    exponent = (v["exponent"] - bits).as_signed()
    return dict(out, significand=Cat(v["rem"] != 0, v["quotient"]),
                exponent=exponent[:exp_shape.width].as_signed())


@dataclasses.dataclass
class Rounded:
    """A value rounded to a precision: ``(-1)**sign * significand * 2**exponent``
    exactly, or ``inf`` (IEEE overflow).

    Members
    -------
    sign, significand, exponent, inf : Value
        ``significand`` has at most ``precision + 1`` bits (a carry), ``exponent`` is
        signed; a zero significand is a zero of that sign.
    """

    sign: object
    significand: object
    exponent: object
    inf: object


class RoundingStages:
    """Round ``(-1)**sign * significand * 2**exponent`` half to even (or in another
    deterministic ``rounding`` mode) to ``precision`` significant bits; with ``fmt`` also to its exponent range: subnormals below ``emin``
    (no flush to zero) and overflow past ``emax`` to Inf.

    Eight pipeline stages (five without a format), each a method from one dict of values
    to the next (keys it does not read pass through): :meth:`count` and
    :meth:`count_rest` find the leading zeros, :meth:`shift` and :meth:`normalize` put the leading one at the top and keep the
    ``precision + 1`` bits below its place with a sticky OR of the rest,
    :meth:`subnormal_amount`, :meth:`subnormal` and :meth:`merge_sticky` shift them right
    by how far the result's exponent lies below ``emin``, :meth:`carry` adds the rounding
    increment and reads the overflow. The input dict holds ``sign``, ``significand``, ``exponent``
    (and ``inf``, ORed into the result's); the last stage's holds those of the rounded
    value (:class:`Rounded`'s fields).
    """

    def __init__(self, *, precision, fmt=None, exp_shape, rounding="half_even"):
        self.precision, self.fmt, self.exp_shape = precision, fmt, exp_shape
        self.rounding = rounding

    def stages(self):
        """The stage methods in order (no subnormal step without a format)."""
        return [self.count, self.count_rest, self.shift, self.normalize] \
            + ([self.subnormal_amount, self.subnormal, self.merge_sticky] if self.fmt
               else []) + [self.carry]

    def count(self, v):
        significand, exponent = v["significand"], v["exponent"]
        if isinstance(exponent, int):
            exponent = Const(exponent, signed(max(exponent.bit_length() + 1, 2)))
        width = max(len(significand), self.precision + 2)
        sig = Cat(significand, Const(0, width - len(significand))) \
            if len(significand) < width else significand
        counts, zeros = leading_zeros_groups(sig)
        return dict(v, significand=sig, exponent=exponent.as_signed(), lz_counts=counts,
                    lz_zeros=zeros)

    def count_rest(self, v):
        """The leading zeros of the 8-bit groups combined (the count in two stages)."""
        out = {k: val for k, val in v.items() if k not in ("lz_counts", "lz_zeros")}
        return dict(out, lz=leading_zeros_finish(v["significand"],
                                                 (v["lz_counts"], v["lz_zeros"])))

    def shift(self, v):
        """The leading one's place (its exponent, one adder) and the shift by the multiple
        of 8 in the leading zeros: half of the normalizing shift, a mux level or two."""
        sig, width = v["significand"], len(v["significand"])
        lead = (v["exponent"] + (width - 1) - v["lz"]).as_signed()    # the leading one's
        out = {k: val for k, val in v.items() if k not in ("exponent", "lz")}
        return dict(out, significand=shift_by_eights(sig, v["lz"]), fine=v["lz"][:3],
                    lsb=(lead - (self.precision - 1))[:self.exp_shape.width].as_signed(),
                    nonzero=sig != 0)

    def normalize(self, v):
        """The rest of the shift (0..7): the leading one at the top, the ``precision + 1``
        bits below its place kept, a sticky OR of the rest."""
        sig, width, keep = v["significand"], len(v["significand"]), self.precision + 1
        top = (sig << v["fine"])[:width]
        out = {k: val for k, val in v.items() if k not in ("significand", "fine")}
        out = dict(out, window=top[width - keep:],
                   sticky=top[:width - keep] != 0 if width > keep else Const(0, 1))
        if self.fmt is not None:
            # How far the last place lies below the subnormals' (:meth:`subnormal_amount`
            # clamps it), and its comparisons, made on the last place against constants
            # so that they run beside the subtraction, not behind it.
            floor, lsb = self.fmt.emin - self.fmt.man_bits, v["lsb"]
            out.update(below=(floor - lsb).as_signed(), below_floor=lsb < floor,
                       below_window=lsb < floor - keep)
        return out

    def subnormal_amount(self, v):
        """How far below ``emin`` the result's last place lies (0..precision + 1)."""
        keep = self.precision + 1
        # Below emin, the last place stays at the subnormals' one: shift right by extra.
        floor = self.fmt.emin - self.fmt.man_bits
        extra = Mux(v["below_floor"], Mux(v["below_window"], keep, v["below"]), 0) \
            .as_unsigned()[:keep.bit_length()]
        out = {k: val for k, val in v.items()
               if k not in ("below", "below_floor", "below_window")}
        return dict(out, extra=extra, lsb=Mux(v["below_floor"], floor, v["lsb"])
                    [:self.exp_shape.width].as_signed())

    def subnormal(self, v):
        """The kept bits shifted right by the multiple of 8 in that amount; the bits the
        whole shift drops, as the ORs of their 4-bit groups (bit ``i`` drops when ``i <
        extra``: a compare with a constant per bit, no shifter), for :meth:`merge_sticky`."""
        window, extra = v["window"], v["extra"]
        dropped = Cat(window[i] & (extra > i) for i in range(len(window)))
        groups = Cat(dropped[k:k + 4] != 0 for k in range(0, len(dropped), 4))
        coarse = Cat(Const(0, 3), extra[3:]) if len(extra) > 3 else Const(0, 1)
        out = {k: val for k, val in v.items() if k != "extra"}
        return dict(out, window=window >> coarse, fine=extra[:3], dropped=groups)

    def merge_sticky(self, v):
        """The rest of the shift (0..7), and the dropped bits ORed into the sticky bit."""
        out = {k: val for k, val in v.items() if k not in ("dropped", "fine")}
        return dict(out, window=v["window"] >> v["fine"],
                    sticky=v["sticky"] | (v["dropped"] != 0))

    def carry(self, v):
        window, lsb = v["window"], v["lsb"]
        kept, half = window[1:], window[0]
        rounded = kept + magnitude_rounds_up(self.rounding, half=half, sticky=v["sticky"],
                                             lsb=kept[0], negative=v["sign"])
        inf = v.get("inf", Const(0, 1))
        if self.fmt is not None:
            # The largest finite value is (2**p - 1) * 2**(emax - p + 1).
            top_lsb = self.fmt.emax - self.fmt.man_bits
            inf = inf | (((lsb > top_lsb) | ((lsb == top_lsb) & rounded[self.precision]))
                         & v["nonzero"])
        out = {k: val for k, val in v.items()
               if k not in ("window", "sticky", "lsb", "nonzero")}
        return dict(out, significand=rounded, exponent=lsb, inf=inf)


def encode_rounded(r, fmt):
    """The ``fmt`` bit pattern of a :class:`Rounded` value of ``fmt``'s precision and
    range: IEEE's encoding makes a carry into the next binade and the step from the
    subnormals to the normals come out right from one formula."""
    floor = fmt.emin - fmt.man_bits
    m = fmt.man_bits
    # (e - floor) * 2**m + significand, the addition only where the fields overlap: the
    # significand's hidden and carry bits land in the exponent field.
    top = ((r.exponent - floor).as_unsigned() + r.significand[m:])
    field = Cat(r.significand[:m], top)
    field = Mux(r.significand == 0, 0, field)[:fmt.width - 1]
    return Cat(Mux(r.inf, fmt.inf_bits, field)[:fmt.width - 1], r.sign)


def widen(bits, fields, lz, fmt, to):
    """The ``to`` pattern of the ``fmt`` pattern ``bits``, which ``to`` holds exactly
    (every qdp format in FP32): ``fields`` are its :func:`unpack`, ``lz`` the leading
    zeros of their significand. A format with ``to``'s exponent range only moves its
    mantissa up; a narrower range normalizes a subnormal (``to`` has no subnormal of
    ``fmt``'s)."""
    if (fmt.exp_bits, fmt.bias) == (to.exp_bits, to.bias):
        return Cat(Const(0, to.man_bits - fmt.man_bits), bits[:fmt.width])
    extra = to.precision - fmt.precision
    significand = Cat(Const(0, extra), (fields.significand << lz)[:fmt.precision])
    r = Rounded(fields.sign, significand, fields.exponent - lz - extra, fields.inf)
    return Mux(fields.nan, to.nan_bits | (fields.sign << (to.width - 1)),
               encode_rounded(r, to))


def constant_parts(bits, fmt):
    """``(sign, significand, exponent)`` of a constant nonzero finite pattern, normalized
    with the top bit of the significand set (Python ints)."""
    sign = bits >> (fmt.width - 1)
    field = (bits >> fmt.man_bits) & ((1 << fmt.exp_bits) - 1)
    man = bits & ((1 << fmt.man_bits) - 1)
    significand = man | ((1 << fmt.man_bits) if field else 0)
    exponent = max(field, 1) - fmt.bias - fmt.man_bits
    lz = fmt.precision - significand.bit_length()
    return sign, significand << lz, exponent - lz


def encode(value, fmt, name):
    """The bit pattern of the number ``value`` in ``fmt``: rounded half to even for a
    named format (as NumPy casts), exact or refused for a custom one."""
    if fmt.dtype is not None:
        return int(fmt.bits(np.asarray(float(value), dtype=np.float64).astype(fmt.dtype)))
    fraction = Fraction(value)
    for bits in range(1 << fmt.width):
        if decode(bits, fmt) == fraction:
            return bits
    raise ValueError(f"{name}: {value!r} is not exactly a {fmt.name} number")


def decode(bits, fmt):
    """The value of a finite bit pattern: a Python float (exact up to FP32)."""
    sign, significand, exponent = constant_parts(bits, fmt) if bits & fmt.max_bits \
        else (bits >> (fmt.width - 1), 0, 0)
    return (-1.0) ** sign * math.ldexp(significand, exponent)
