"""IEEE binary floating-point formats, stated exactly.

A float of a :class:`FloatFormat` with ``e`` exponent bits and ``m`` mantissa bits is the
bit pattern ``sign | exponent field | mantissa field`` of IEEE 754, subnormals included
(no flush-to-zero anywhere in qdp). Every finite value is the exact dyadic rational
``(-1)**sign * significand * 2**exponent`` that :func:`decompose` returns, so every
float-facing block has an exact definition in integers:

- :func:`decompose` and :func:`classify` read a bit pattern (zero, subnormal, normal,
  Inf, NaN; the sign of each, -0 included);
- :func:`round_scaled` and :func:`round_rational` round an exact value to a format in
  any deterministic mode of :data:`~qdp.golden.rounding.ROUNDING_MODES` (``half_even``
  is IEEE's roundTiesToEven, ``half_away`` roundTiesToAway, ``trunc`` roundTowardZero,
  ``floor`` roundTowardNegative), with IEEE overflow: to Inf when the mode rounds the
  magnitude up (the nearest modes; ``floor`` below zero), to the largest finite value
  otherwise;
- :meth:`FloatFormat.bits` and :meth:`FloatFormat.values` convert between NumPy float
  arrays (``float32``; ``ml_dtypes.bfloat16``; ``float16``) and bit patterns.

``FP32``, ``BF16`` and ``FP16`` are named; a custom format (``"e3m3"``: 3 exponent and 3
mantissa bits) serves exhaustive tests and proofs. All arithmetic here is on int64
arrays, exact for formats up to FP32: a significand holds at most 24 bits, and the
values rounded are significands of at most 62 bits with a sticky flag.
"""

import dataclasses
import re
from fractions import Fraction

import numpy as np

from .rounding import DETERMINISTIC_MODES, NEAREST_MODES

__all__ = ["FloatFormat", "FP32", "BF16", "FP16", "FORMATS", "float_format", "format_of",
           "convert", "multiply", "add", "round_integer", "from_fraction",
           "ZERO", "SUBNORMAL", "NORMAL", "INF", "NAN", "CLASS_NAMES",
           "as_bits", "classify", "decompose", "round_scaled", "round_precision",
           "round_rational", "divide", "to_fraction", "bit_length"]

#: Classes of a bit pattern, as :func:`classify` returns them.
ZERO, SUBNORMAL, NORMAL, INF, NAN = range(5)
CLASS_NAMES = ("zero", "subnormal", "normal", "inf", "nan")


@dataclasses.dataclass(frozen=True)
class FloatFormat:
    """An IEEE 754 binary format: 1 sign bit, ``exp_bits``, ``man_bits``.

    Members
    -------
    name : str
        ``"fp32"``, ``"bf16"``, ``"fp16"`` or ``"eXmY"``.
    exp_bits, man_bits : int
        Exponent field width (2..8) and mantissa field width (1..23).
    width : int
        ``1 + exp_bits + man_bits``.
    precision : int
        Significand bits, the hidden one included: ``man_bits + 1``.
    bias, emin, emax : int
        Exponent bias, smallest and largest normal exponents (``emin = 1 - bias``).
    dtype : numpy.dtype or None
        The NumPy dtype of a named format (``ml_dtypes.bfloat16`` for BF16), else None.
    """

    name: str
    exp_bits: int
    man_bits: int

    def __post_init__(self):
        if not 2 <= self.exp_bits <= 8:
            raise ValueError(f"exp_bits: {self.exp_bits} is out of range (allowed 2..8)")
        if not 1 <= self.man_bits <= 23:
            raise ValueError(f"man_bits: {self.man_bits} is out of range (allowed 1..23)")

    @property
    def width(self):
        return 1 + self.exp_bits + self.man_bits

    @property
    def precision(self):
        return self.man_bits + 1

    @property
    def bias(self):
        return (1 << (self.exp_bits - 1)) - 1

    @property
    def emin(self):
        return 1 - self.bias

    @property
    def emax(self):
        return self.bias

    @property
    def dtype(self):
        dtype = _DTYPES.get((self.exp_bits, self.man_bits))
        return dtype() if callable(dtype) else dtype

    @property
    def inf_bits(self):
        """The bit pattern of +Inf."""
        return ((1 << self.exp_bits) - 1) << self.man_bits

    @property
    def max_bits(self):
        """The bit pattern of the largest finite value."""
        return self.inf_bits - 1

    @property
    def nan_bits(self):
        """The canonical quiet NaN (top mantissa bit set) that qdp's hardware emits."""
        return self.inf_bits | (1 << (self.man_bits - 1))

    def bits(self, values):
        """Bit patterns (int64) of NumPy floats of this format (a named format only)."""
        dtype = self._require_dtype()
        array = np.asarray(values)
        if array.dtype != dtype:
            raise TypeError(f"values: expected {self.name} ({dtype}), got dtype "
                            f"{array.dtype}; convert with .astype first, which rounds")
        return array.view(_UINTS[self.width]).astype(np.int64)

    def values(self, bits):
        """NumPy floats of this format (a named format only) from bit patterns."""
        dtype = self._require_dtype()
        return np.asarray(bits).astype(_UINTS[self.width]).view(dtype)

    def _require_dtype(self):
        if self.dtype is None:
            raise ValueError(f"format: {self.name} has no NumPy dtype; use bit patterns")
        return self.dtype

    def __str__(self):
        return self.name


FP32 = FloatFormat("fp32", 8, 23)
BF16 = FloatFormat("bf16", 8, 7)
FP16 = FloatFormat("fp16", 5, 10)
#: The named formats, by the names the CLI and the golden functions take.
FORMATS = {f.name: f for f in (FP32, BF16, FP16)}
def _bfloat16():
    # ml_dtypes is imported on first use: its import costs about half a second of CPU,
    # paid by every simulator launch of a bench that has no bfloat16 in it.
    import ml_dtypes
    return np.dtype(ml_dtypes.bfloat16)


_DTYPES = {(8, 23): np.dtype(np.float32), (8, 7): _bfloat16, (5, 10): np.dtype(np.float16)}
_UINTS = {8: np.uint8, 16: np.uint16, 32: np.uint32}
_CUSTOM = re.compile(r"e(\d+)m(\d+)")


def float_format(spec, name="format"):
    """The :class:`FloatFormat` ``spec`` names: a format, ``"fp32"``, ``"bf16"``,
    ``"fp16"`` or ``"eXmY"`` (custom, for tests and proofs). ``name`` is the parameter
    an error names."""
    if isinstance(spec, FloatFormat):
        return spec
    if isinstance(spec, str):
        if spec in FORMATS:
            return FORMATS[spec]
        match = _CUSTOM.fullmatch(spec)
        if match:
            try:
                fmt = FloatFormat(spec, int(match[1]), int(match[2]))
            except ValueError as error:
                raise ValueError(f"{name}: {spec!r}: {error}") from None
            if fmt.width <= 16 or (fmt.exp_bits, fmt.man_bits) in _DTYPES:
                return FORMATS.get(_name_of(fmt), fmt)
    raise ValueError(f"{name}: unknown float format {spec!r}; expected one of "
                     f"{', '.join(FORMATS)} or eXmY (custom, at most 16 bits)")


def format_of(values, name="x"):
    """The named format whose dtype ``values`` has (float32, bfloat16 or float16), and
    ``values`` as its bit patterns (int64, flat). Any other dtype is refused."""
    dtype = np.asarray(values).dtype
    for fmt in FORMATS.values():
        if fmt.dtype == dtype:
            return fmt, as_bits(values, fmt, name).reshape(-1)
    raise ValueError(f"{name}: expected float32, bfloat16 or float16 values, got {dtype}")


def _name_of(fmt):
    for named in FORMATS.values():
        if (named.exp_bits, named.man_bits) == (fmt.exp_bits, fmt.man_bits):
            return named.name
    return fmt.name


def as_bits(values, fmt, name="x"):
    """Bit patterns (int64) of ``values``: floats of ``fmt``'s own dtype, or (any format)
    its bit patterns as an unsigned integer array. Python numbers and lists are rounded
    to the format (half to even, as NumPy casts); any other dtype is refused, since a
    silent cast would round."""
    fmt = float_format(fmt)
    array = np.asarray(values)
    if array.dtype.kind == "u":
        bits = array.astype(np.int64)
        if bits.size and int(bits.max()) >> fmt.width:
            raise ValueError(f"{name}: bit patterns wider than {fmt.width} bits "
                             f"({fmt.name})")
        return bits
    if fmt.dtype is not None and array.dtype == fmt.dtype:
        return fmt.bits(array)
    if isinstance(values, (int, float, list, tuple)) and array.dtype.kind in "fi" \
            and fmt.dtype is not None:
        return fmt.bits(np.asarray(values, dtype=np.float64).astype(fmt.dtype))
    raise TypeError(f"{name}: expected {fmt.name} values"
                    + (f" ({fmt.dtype})" if fmt.dtype is not None else "")
                    + f" or their bit patterns (unsigned integers), got dtype "
                    f"{array.dtype}; convert explicitly, a cast rounds")


def bit_length(values):
    """``int.bit_length`` of each non-negative int64, vectorised."""
    v = np.asarray(values, dtype=np.int64).copy()
    length = np.zeros(v.shape, dtype=np.int64)
    for step in (32, 16, 8, 4, 2, 1):
        big = v >= (np.int64(1) << step)
        length += np.where(big, step, 0)
        v = np.where(big, v >> step, v)
    return length + (v > 0)


def _fields(bits, fmt):
    bits = np.asarray(bits, dtype=np.int64)
    if np.any((bits < 0) | (bits >> fmt.width != 0)):
        raise ValueError(f"bits: not {fmt.width}-bit patterns of {fmt.name}")
    sign = (bits >> (fmt.width - 1)) & 1 == 1
    exponent = (bits >> fmt.man_bits) & ((1 << fmt.exp_bits) - 1)
    mantissa = bits & ((1 << fmt.man_bits) - 1)
    return sign, exponent, mantissa


def classify(bits, fmt):
    """``(cls, sign)`` of each bit pattern: cls one of ZERO, SUBNORMAL, NORMAL, INF,
    NAN (int8), sign a bool (set for -0, -Inf and NaNs with the sign bit)."""
    sign, exponent, mantissa = _fields(bits, float_format(fmt))
    top = (1 << float_format(fmt).exp_bits) - 1
    cls = np.select([exponent == top, exponent == 0],
                    [np.where(mantissa == 0, INF, NAN), np.where(mantissa == 0, ZERO,
                                                                 SUBNORMAL)],
                    NORMAL).astype(np.int8)
    return cls, sign


def decompose(bits, fmt):
    """``(sign, significand, exponent)``, int64, with ``|value| = significand *
    2**exponent`` for every finite pattern (significand 0 for zeros; Inf and NaN give
    significand 0 too: check :func:`classify`)."""
    fmt = float_format(fmt)
    sign, exponent, mantissa = _fields(bits, fmt)
    finite = exponent != (1 << fmt.exp_bits) - 1
    normal = exponent != 0
    significand = np.where(finite, mantissa + np.where(normal, 1 << fmt.man_bits, 0), 0)
    exp = np.maximum(exponent, 1) - fmt.bias - fmt.man_bits
    return sign, significand.astype(np.int64), exp.astype(np.int64)


def to_fraction(bits, fmt):
    """The exact value of one finite bit pattern as a :class:`~fractions.Fraction`."""
    cls, _ = classify(bits, fmt)
    if int(cls) in (INF, NAN):
        raise ValueError(f"bits: {int(bits):#x} is {CLASS_NAMES[int(cls)]}, not a number")
    sign, significand, exponent = (int(v) for v in decompose(bits, fmt))
    return (-1) ** sign * Fraction(significand) * Fraction(2) ** exponent


def _check_mode(rounding):
    if rounding not in DETERMINISTIC_MODES:
        raise ValueError(f"rounding: {rounding!r} is not a float rounding mode; expected "
                         f"one of {', '.join(DETERMINISTIC_MODES)}")


def _magnitude_up(rounding, sign, above, tie, inexact, odd):
    """Whether rounding the magnitude down (truncation) must be followed by one step up."""
    if rounding == "floor":
        return inexact & sign
    if rounding == "trunc":
        return np.zeros_like(inexact)
    tie_up = {"half_even": odd, "half_away": np.ones_like(tie), "half_up": ~sign,
              "half_down": sign, "half_zero": np.zeros_like(tie)}[rounding]
    return above | (tie & tie_up)


def round_scaled(sign, significand, exponent, fmt, rounding="half_even", *, sticky=None):
    """Round ``(-1)**sign * (significand + e) * 2**exponent`` to ``fmt``; bit patterns.

    ``significand`` (int64, ``0 <= significand < 2**62``) and ``exponent`` give an exact
    dyadic value; ``sticky`` (bool, optional) says the true value is a little more in
    magnitude: ``0 < e < 1`` (the remainder of a division). A sticky value must hold at
    least ``precision + 1`` significant bits so that ``e`` lies below the rounding bit.
    The result is the IEEE rounding in ``rounding`` (a deterministic mode), subnormals
    included, overflowing per IEEE (see the module). Zero keeps its sign.
    """
    fmt = float_format(fmt)
    _check_mode(rounding)
    sign, sig, exp = np.broadcast_arrays(np.asarray(sign, dtype=bool),
                                         np.asarray(significand, dtype=np.int64),
                                         np.asarray(exponent, dtype=np.int64))
    sticky = (np.zeros(sig.shape, dtype=bool) if sticky is None
              else np.broadcast_to(np.asarray(sticky, dtype=bool), sig.shape))
    if np.any((sig < 0) | (sig >= np.int64(1) << 62)):
        raise ValueError("significand: must lie in 0..2**62-1")
    # The exponent of the result's last place: p bits below the leading one, but never
    # below the subnormals' last place.
    lsb = np.maximum(exp + bit_length(sig) - fmt.precision, fmt.emin - fmt.man_bits)
    shift = np.minimum(lsb - exp, 63)
    if np.any(sticky & (shift < 1)):
        raise ValueError("sticky: a value with a remainder needs precision + 1 bits")
    right = np.maximum(shift, 0)
    kept = np.where(shift > 0, sig >> right, sig << np.maximum(-shift, 0))
    rest = np.where(shift > 0, sig - (kept << right), 0)
    half = np.where(right > 0, np.int64(1) << np.maximum(right - 1, 0), 0)
    above = (right > 0) & ((rest > half) | ((rest == half) & sticky))
    tie = (right > 0) & (rest == half) & ~sticky
    inexact = (rest != 0) | sticky
    up = _magnitude_up(rounding, sign, above, tie, inexact, (kept & 1) == 1)
    magnitude = kept + up
    # IEEE's encoding makes a carry out of the significand a step of the exponent, and
    # the last subnormal step the first normal, so one formula encodes every result.
    field = np.where(magnitude == 0, 0,
                     ((lsb - (fmt.emin - fmt.man_bits)) << fmt.man_bits) + magnitude)
    overflow = field >= fmt.inf_bits
    to_inf = (np.full(sign.shape, rounding in NEAREST_MODES)
              | ((rounding == "floor") & sign))
    field = np.where(overflow, np.where(to_inf, fmt.inf_bits, fmt.max_bits), field)
    return (field | (sign.astype(np.int64) << (fmt.width - 1))).astype(np.int64)


def round_precision(significand, precision):
    """Round non-negative int64 ``significand`` to ``precision`` significant bits, half
    to even, keeping its scale (the float64 steps of a NumPy sequence: no exponent
    limit is ever reached there)."""
    sig = np.asarray(significand, dtype=np.int64)
    drop = np.maximum(bit_length(sig) - precision, 0)
    kept = sig >> drop
    rest = sig - (kept << drop)
    half = np.where(drop > 0, np.int64(1) << np.maximum(drop - 1, 0), 0)
    up = (drop > 0) & ((rest > half) | ((rest == half) & ((kept & 1) == 1)))
    return (kept + up) << drop


def round_rational(sign, num, den, exponent, fmt, rounding="half_even"):
    """Round ``(-1)**sign * num / den * 2**exponent`` (int64, ``0 <= num < 2**31``,
    ``0 < den < 2**31``) to ``fmt``; bit patterns. The quotient is formed with
    ``precision + 2`` significant bits and a sticky remainder."""
    fmt = float_format(fmt)
    sign, num, den, exponent = np.broadcast_arrays(
        np.asarray(sign, dtype=bool), np.asarray(num, dtype=np.int64),
        np.asarray(den, dtype=np.int64), np.asarray(exponent, dtype=np.int64))
    if np.any((den <= 0) | (den >= 1 << 31) | (num < 0) | (num >= 1 << 31)):
        raise ValueError("num, den: expected 0 <= num < 2**31 and 0 < den < 2**31")
    k = np.maximum(fmt.precision + 2 - bit_length(num) + bit_length(den), 0)
    scaled = num << k
    quotient = scaled // den
    return round_scaled(sign, quotient, exponent - k, fmt, rounding,
                        sticky=(scaled - quotient * den) != 0)


def round_integer(sign, magnitude, exponent, fmt, rounding="half_even"):
    """Round ``(-1)**sign * magnitude * 2**exponent`` to ``fmt``; bit patterns.

    Like :func:`round_scaled` for magnitudes of any size (Python ints, or an object
    array of them): bits beyond 62 become the sticky flag, which leaves every rounding
    decision as the exact value makes it (62 bits exceed any precision + 2 here)."""
    magnitude = np.asarray(magnitude, dtype=object)
    length = np.frompyfunc(int.bit_length, 1, 1)(magnitude).astype(np.int64)
    drop = np.maximum(length - 62, 0)
    kept = np.frompyfunc(lambda m, d: m >> d, 2, 1)(magnitude, drop.astype(object))
    sticky = np.frompyfunc(lambda m, d: m & ((1 << d) - 1) != 0, 2, 1)(
        magnitude, drop.astype(object)).astype(bool)
    return round_scaled(sign, kept.astype(np.int64), np.asarray(exponent) + drop, fmt,
                        rounding, sticky=sticky)


def from_fraction(value, fmt, rounding="half_even"):
    """The bit pattern of the rational ``value`` (a :class:`~fractions.Fraction`, int or
    float) rounded once to ``fmt``."""
    value = Fraction(value)
    fmt = float_format(fmt)
    num, den = abs(value.numerator), value.denominator
    # Enough quotient bits that the remainder is only a sticky bit.
    k = max(fmt.precision + 2 - num.bit_length() + den.bit_length(), 0)
    quotient, rest = divmod(num << k, den)
    # One more bit, set when a remainder is left: it only ever decides "above a tie".
    bits = round_integer(value < 0, np.array([(quotient << 1) | (rest != 0)], dtype=object),
                         -k - 1, fmt, rounding)
    return int(bits[0])


def add(x_bits, y_bits, fmt, rounding="half_even"):
    """IEEE sum ``x + y`` of two ``fmt`` bit patterns, correctly rounded to ``fmt``:
    NaN operands and ``Inf + -Inf`` give the canonical NaN; an exact zero sum is ``+0``
    unless both operands are ``-0`` (``-0`` in every mode but ``floor``, where IEEE
    makes it ``-0``)."""
    fmt = float_format(fmt)
    xc, xs = classify(x_bits, fmt)
    yc, ys = classify(y_bits, fmt)
    _, xm, xe = decompose(x_bits, fmt)
    _, ym, ye = decompose(y_bits, fmt)
    low = np.minimum(xe, ye)
    # The exact sum as a Python int over the lower exponent (at most ~2**280).
    left = np.frompyfunc(lambda m, s: int(m) << int(s), 2, 1)
    total = (np.where(xs, -1, 1).astype(object) * left(xm, xe - low)
             + np.where(ys, -1, 1).astype(object) * left(ym, ye - low))
    negative = (total < 0).astype(bool)
    zero_sign = (xs & ys) | ((rounding == "floor") & (xs | ys))
    sign = np.where(total == 0, zero_sign, negative)
    rounded = round_integer(sign, np.abs(total), low, fmt, rounding)
    nan = (xc == NAN) | (yc == NAN) | ((xc == INF) & (yc == INF) & (xs != ys))
    inf = (xc == INF) | (yc == INF)
    inf_sign = np.where(xc == INF, xs, ys).astype(np.int64) << (fmt.width - 1)
    return np.select([nan, inf], [fmt.nan_bits, fmt.inf_bits | inf_sign],
                     rounded).astype(np.int64)


def multiply(x_bits, y_bits, fmt, rounding="half_even"):
    """IEEE product ``x * y`` of two ``fmt`` bit patterns, correctly rounded to ``fmt``:
    ``0 * Inf`` and NaN operands give the canonical NaN, Inf times nonzero a signed Inf."""
    fmt = float_format(fmt)
    xc, xs = classify(x_bits, fmt)
    yc, ys = classify(y_bits, fmt)
    sign = xs ^ ys
    _, xm, xe = decompose(x_bits, fmt)
    _, ym, ye = decompose(y_bits, fmt)
    product = round_scaled(sign, xm * ym, xe + ye, fmt, rounding)
    signed = sign.astype(np.int64) << (fmt.width - 1)
    nan = (xc == NAN) | (yc == NAN) | ((xc == ZERO) & (yc == INF)) \
        | ((xc == INF) & (yc == ZERO))
    inf = ((xc == INF) | (yc == INF)) & ~nan
    return np.select([nan, inf], [fmt.nan_bits, fmt.inf_bits | signed],
                     product).astype(np.int64)


def divide(x_bits, y_bits, fmt, rounding="half_even"):
    """IEEE division ``x / y`` of two ``fmt`` bit patterns, correctly rounded to ``fmt``:
    ``x / ±0`` is ±Inf for ``x`` nonzero, ``0 / 0``, ``Inf / Inf`` and NaN operands give
    the canonical NaN, ``finite / Inf`` a signed zero."""
    fmt = float_format(fmt)
    xc, xs = classify(x_bits, fmt)
    yc, ys = classify(y_bits, fmt)
    sign = xs ^ ys
    _, xm, xe = decompose(x_bits, fmt)
    _, ym, ye = decompose(y_bits, fmt)
    finite = (xc != INF) & (xc != NAN) & (yc != INF) & (yc != NAN) & (yc != ZERO)
    quotient = round_rational(sign, np.where(finite, xm, 0), np.where(finite, ym, 1),
                              np.where(finite, xe - ye, 0), fmt, rounding)
    signed = sign.astype(np.int64) << (fmt.width - 1)
    nan = (xc == NAN) | (yc == NAN) | ((xc == ZERO) & (yc == ZERO)) \
        | ((xc == INF) & (yc == INF))
    inf = ((xc == INF) | (yc == ZERO)) & ~nan
    zero = (yc == INF) & ~nan
    return np.select([nan, inf, zero], [fmt.nan_bits, fmt.inf_bits | signed, signed],
                     quotient).astype(np.int64)


def convert(bits, src, dst, rounding="half_even"):
    """``src`` bit patterns converted to ``dst``: finite values rounded (exact when
    ``dst`` holds them, as FP32 holds every BF16 and FP16 value), ``±Inf`` kept, NaNs
    the canonical NaN of ``dst``."""
    src, dst = float_format(src), float_format(dst)
    cls, sign = classify(bits, src)
    s, m, e = decompose(bits, src)
    signed = sign.astype(np.int64) << (dst.width - 1)
    return np.select([cls == NAN, cls == INF], [dst.nan_bits, dst.inf_bits | signed],
                     round_scaled(s, m, e, dst, rounding)).astype(np.int64)
