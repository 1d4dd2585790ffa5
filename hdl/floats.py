"""Float fields in gateware: the hardware side of :mod:`qdp.golden.floats`.

A float enters as its bit pattern. :func:`unpack` reads its class (zero, subnormal,
normal, Inf, NaN), sign, significand and exponent; :func:`leading_zeros` is what
normalizing a significand (subnormals shifted up, their exponent down) needs;
:func:`divide_step` forms a quotient of two normalized significands bit by bit;
:class:`RoundingStages` rounds an exact value to a format in pipeline stages and
:func:`encode_rounded` packs the result. :func:`constant_parts`, :func:`encode` and
:func:`decode` do the same for elaboration-time constants. Combinational; the
components register around them."""

import dataclasses
import math
from fractions import Fraction

import numpy as np
from amaranth.hdl import Cat, Const, Mux, signed

__all__ = ["FloatFields", "Rounded", "RoundingStages", "unpack", "leading_zeros",
           "divide_step",
           "exponent_shape", "encode_rounded", "constant_parts",
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
    """The leading zero bits of the unsigned ``value`` (its width for 0), as a tree:
    the count of the upper half if it holds a one, else its width plus the lower
    half's count (log2 levels of muxes)."""
    width = len(value)
    if width == 1:
        return ~value[0]
    low = width // 2
    high = value[low:]
    return Mux(high == 0, (width - low) + leading_zeros(value[:low]), leading_zeros(high))


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
    """Round ``(-1)**sign * significand * 2**exponent`` half to even to ``precision``
    significant bits; with ``fmt`` also to its exponent range: subnormals below ``emin``
    (no flush to zero) and overflow past ``emax`` to Inf.

    Five pipeline stages (three without a format), each a method from one dict of values
    to the next (keys it does not read pass through): :meth:`count` finds the leading
    zeros, :meth:`normalize` puts the leading one at the top and keeps the
    ``precision + 1`` bits below its place with a sticky OR of the rest,
    :meth:`subnormal_amount` and :meth:`subnormal` shift them right by how far the
    result's exponent lies below ``emin``, :meth:`carry` adds the rounding increment and
    reads the overflow. The input dict holds ``sign``, ``significand``, ``exponent``
    (and ``inf``, ORed into the result's); the last stage's holds those of the rounded
    value (:class:`Rounded`'s fields).
    """

    def __init__(self, *, precision, fmt=None, exp_shape):
        self.precision, self.fmt, self.exp_shape = precision, fmt, exp_shape

    def stages(self):
        """The stage methods in order (no subnormal step without a format)."""
        return [self.count, self.normalize] \
            + ([self.subnormal_amount, self.subnormal] if self.fmt else []) + [self.carry]

    def count(self, v):
        significand, exponent = v["significand"], v["exponent"]
        if isinstance(exponent, int):
            exponent = Const(exponent, signed(max(exponent.bit_length() + 1, 2)))
        width = max(len(significand), self.precision + 2)
        sig = Cat(significand, Const(0, width - len(significand))) \
            if len(significand) < width else significand
        return dict(v, significand=sig, exponent=exponent.as_signed(),
                    lz=leading_zeros(sig))

    def normalize(self, v):
        sig, width, keep = v["significand"], len(v["significand"]), self.precision + 1
        top = (sig << v["lz"])[:width]
        lead = (v["exponent"] + (width - 1) - v["lz"]).as_signed()    # the leading one's
        out = {k: val for k, val in v.items() if k not in ("significand", "exponent", "lz")}
        return dict(out, window=top[width - keep:],
                    sticky=top[:width - keep] != 0 if width > keep else Const(0, 1),
                    lsb=(lead - (self.precision - 1))[:self.exp_shape.width].as_signed(),
                    nonzero=sig != 0)

    def subnormal_amount(self, v):
        """How far below ``emin`` the result's last place lies (0..precision + 1)."""
        keep = self.precision + 1
        # Below emin, the last place stays at the subnormals' one: shift right by extra.
        floor = self.fmt.emin - self.fmt.man_bits
        lsb = v["lsb"]
        extra = (floor - lsb).as_signed()
        extra = Mux(extra < 0, 0, Mux(extra > keep, keep, extra)) \
            .as_unsigned()[:keep.bit_length()]
        return dict(v, extra=extra,
                    lsb=Mux(lsb < floor, floor, lsb)[:self.exp_shape.width].as_signed())

    def subnormal(self, v):
        """The kept bits shifted right by that amount, the bits dropped ORed into the
        sticky bit (read where a left shift by ``keep - extra`` moves them: muxes, no
        carry chain)."""
        keep = self.precision + 1
        window, extra = v["window"], v["extra"]
        # Bit i of the window lands at i + keep - extra: the dropped ones (i < extra)
        # below keep, above the zeros the shift brings in.
        dropped = (window << (keep - extra).as_unsigned()[:len(extra) + 1])[:keep] != 0
        out = {k: val for k, val in v.items() if k != "extra"}
        return dict(out, window=window >> extra, sticky=v["sticky"] | dropped)

    def carry(self, v):
        window, lsb = v["window"], v["lsb"]
        kept, half = window[1:], window[0]
        rounded = kept + (half & (v["sticky"] | kept[0]))
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
    field = ((r.exponent - floor).as_unsigned() << fmt.man_bits) + r.significand
    field = Mux(r.significand == 0, 0, field)[:fmt.width - 1]
    return Cat(Mux(r.inf, fmt.inf_bits, field)[:fmt.width - 1], r.sign)


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
