"""OCP Microscaling (MX v1.0): blocks of ``block_size`` elements sharing one power-of-two
scale, an E8M0 byte.

Every step is stated in exact arithmetic on the input's bit patterns (FP32, BF16 or FP16):

The shared scale (OCP §6.3, the "minimally supported" conversion)
    ``amax = max |x|`` over the block (the largest pattern with the sign cleared, as in
    :mod:`qdp.golden.absmax_float`); ``e = floor(log2(amax))`` read from its exponent
    field and significand -- exact for subnormals too, never a float ``log2``, which
    rounds up just below a power of two; ``shared = clamp(e - emax_elem, -127, 127)``
    with ``emax_elem`` the exponent of the element's largest normal; the scale byte is
    ``shared + 127``. A block holding an Inf or a NaN gets the NaN scale ``0xFF``; an
    all-zero block gets ``shared = -127`` (byte 0).
The elements
    ``v = x / 2**shared`` (exact: a power of two) rounded to the element format in
    ``rounding`` (half even by default; ``half_away`` is microxcaling's default), its
    subnormals included, and saturated to ±(largest normal); the code is the element's
    encoding as a ``uint8`` (FP4/FP6 in the low bits). A zero keeps its sign (``-0``
    codes with the sign bit set), as the casts do. MXINT8 elements are two's-complement
    ``round(v * 64)`` clipped to ±127 (OCP's ``1.6`` fixed point; ``-128`` is never
    produced, as in microxcaling). In a block with the NaN scale every code is 0: the
    scale alone marks the block.
Dequantization
    ``element value * 2**shared`` rounded once, half to even, to ``out_format`` (FP32
    by default: exact but for values beyond FP32's range, which overflow to Inf;
    ``2**-127`` is FP32's subnormal, not clamped; BF16 and FP16 round in their
    subnormals); the NaN scale gives the canonical NaN for the whole block, as does a NaN
    element code (``fp8_e4m3``'s ``S.1111.111``, ``fp8_e5m2``'s NaNs); ``fp8_e5m2``'s
    Inf codes give ±Inf; a zero code keeps its sign.
"""

import dataclasses

import numpy as np

from . import floats
from ._intarray import check_count
from .absmax_float import as_given
from .rounding import DETERMINISTIC_MODES, round_shift

__all__ = ["MX_ELEMENTS", "ElementFormat", "mx_quantize", "mx_dequantize", "E8M0_NAN",
           "E8M0_BIAS", "element_format", "element_values", "element_parts", "shared_scales"]

E8M0_BIAS = 127
E8M0_NAN = 0xFF


@dataclasses.dataclass(frozen=True)
class ElementFormat:
    """An MX element format.

    Members
    -------
    name : str
    exp_bits, man_bits, bias : int
        The float layout (``exp_bits = 0``: MXINT8's two's-complement fixed point with
        ``man_bits`` fraction bits).
    max_value : float
        The largest finite magnitude (saturation bound).
    dtype_name : str or None
        The name of the ``ml_dtypes`` type of the same encoding.
    dtype : numpy dtype or None
        That type (references in the tests); ``ml_dtypes`` is imported on first use, as
        its import costs about half a second of CPU in every simulator launch.
    """

    name: str
    exp_bits: int
    man_bits: int
    bias: int
    max_value: float
    dtype_name: object

    @property
    def dtype(self):
        if self.dtype_name is None:
            return None
        import ml_dtypes
        return np.dtype(getattr(ml_dtypes, self.dtype_name))

    @property
    def width(self):
        return 8 if self.exp_bits == 0 else 1 + self.exp_bits + self.man_bits

    @property
    def lsb(self):
        """Exponent of the smallest step (the subnormals' last place; MXINT8's
        ``2**-man_bits``): every value is an integer times ``2**lsb``."""
        return -self.man_bits if self.exp_bits == 0 else 1 - self.bias - self.man_bits

    @property
    def emax(self):
        """Exponent of the largest normal: ``floor(log2(max_value))``."""
        return int(np.floor(np.log2(self.max_value)))

    @property
    def emin(self):
        """Exponent of the smallest normal (float elements)."""
        return 1 - self.bias

    @property
    def max_field(self):
        """The encoding of the largest normal without the sign (float elements; MXINT8's
        127)."""
        if self.exp_bits == 0:
            return 127
        fraction = self.max_value / 2.0 ** self.emax - 1
        return ((self.emax + self.bias) << self.man_bits) | int(fraction * (1 << self.man_bits))


MX_ELEMENTS = {f.name: f for f in (
    ElementFormat("int8", 0, 6, 0, 127 / 64, None),
    ElementFormat("fp8_e4m3", 4, 3, 7, 448.0, "float8_e4m3fn"),
    ElementFormat("fp8_e5m2", 5, 2, 15, 57344.0, "float8_e5m2"),
    ElementFormat("fp6_e3m2", 3, 2, 3, 28.0, "float6_e3m2fn"),
    ElementFormat("fp6_e2m3", 2, 3, 1, 7.5, "float6_e2m3fn"),
    ElementFormat("fp4_e2m1", 2, 1, 1, 6.0, "float4_e2m1fn"),
)}

def element_format(element):
    try:
        return MX_ELEMENTS[element]
    except (KeyError, TypeError):
        raise ValueError(f"element: unknown MX element {element!r}; expected one of "
                         f"{', '.join(MX_ELEMENTS)}") from None


def _floor_log2(bits, fmt):
    """``floor(log2(|x|))`` of nonzero finite patterns, from the fields."""
    _, sig, exp = floats.decompose(bits, fmt)
    return exp + floats.bit_length(sig) - 1


def _blocks(n, block_size):
    check_count("block_size", block_size)
    if n % block_size:
        raise ValueError(f"block_size: {n} elements are not whole blocks of {block_size}")
    return n // block_size


def shared_scales(bits, fmt, elem, block_size):
    """The E8M0 scale byte of every block of the flat patterns ``bits`` (see the
    module)."""
    blocks = _blocks(bits.size, block_size)
    amax = (bits & ((1 << (fmt.width - 1)) - 1)).reshape(blocks, block_size).max(axis=1)
    special = amax >= fmt.inf_bits
    e = _floor_log2(np.where((amax == 0) | special, 1, amax), fmt)
    shared = np.where(amax == 0, -E8M0_BIAS,
                      np.clip(e - elem.emax, -E8M0_BIAS, E8M0_BIAS))
    return np.where(special, E8M0_NAN, shared + E8M0_BIAS).astype(np.uint8)


def _round_element(sign, sig, exp, elem, rounding):
    """The codes of ``(-1)**sign * sig * 2**exp`` (int64 arrays) rounded to ``elem`` in
    ``rounding`` and saturated."""
    if elem.exp_bits == 0:                      # MXINT8: round(v * 2**man_bits)
        shift = -(exp + elem.man_bits)
        num = sig.astype(object) << np.maximum(-shift, 0).astype(object)
        q = round_shift(np.where(sign, -num, num), np.maximum(shift, 0), rounding)
        return (np.clip(q.astype(np.int64), -127, 127) & 0xFF).astype(np.uint8)
    lsb = np.maximum(exp + floats.bit_length(sig) - (elem.man_bits + 1), elem.lsb)
    shift = lsb - exp
    num = sig.astype(object) << np.maximum(-shift, 0).astype(object)
    magnitude = np.abs(round_shift(np.where(sign, -num, num), np.maximum(shift, 0),
                                   rounding)).astype(np.int64)
    # IEEE's encoding: a carry out of the significand steps the exponent, the last
    # subnormal step is the first normal; fields order as values, so saturating is a min.
    field = np.where(magnitude == 0, 0,
                     ((lsb - elem.lsb) << elem.man_bits) + magnitude)
    field = np.minimum(field, elem.max_field)
    return (field | (sign.astype(np.int64) << (elem.width - 1))).astype(np.uint8)


def mx_quantize(x, element, *, block_size=32, rounding="half_even", in_format=None):
    """OCP MX quantization of ``x`` (float32, bfloat16 or float16; blocks of
    ``block_size`` consecutive elements in C order): ``(codes, scales)``, the element
    codes (``uint8``, ``x``'s shape) and the E8M0 scale bytes (``uint8``, one per block).
    With ``in_format`` (``"fp32"``, ``"bf16"``, ``"fp16"``, ``"eXmY"``) ``x`` may also be
    that format's bit patterns (unsigned integers). See the module for every rule."""
    elem = element_format(element)
    if rounding not in DETERMINISTIC_MODES:
        raise ValueError(f"rounding: {rounding!r} is not one of "
                         f"{', '.join(DETERMINISTIC_MODES)}")
    shape = np.shape(x)
    if in_format is None:
        fmt, bits = floats.format_of(x)
    else:
        fmt = floats.float_format(in_format, "in_format")
        bits = floats.as_bits(x, fmt).reshape(-1)
    scales = shared_scales(bits, fmt, elem, block_size)
    shared = np.repeat(scales.astype(np.int64) - E8M0_BIAS, block_size)
    sign, sig, exp = floats.decompose(bits, fmt)
    codes = _round_element(sign.astype(bool), sig, exp - shared, elem, rounding)
    codes = np.where(np.repeat(scales == E8M0_NAN, block_size), 0, codes)
    return codes.astype(np.uint8).reshape(shape), scales


def element_values(codes, elem):
    """The exact values of element codes as float64 (NaN for NaN codes, ±Inf for
    fp8_e5m2's Inf)."""
    codes = np.asarray(codes, dtype=np.uint8)
    if elem.exp_bits == 0:
        return codes.view(np.int8).astype(np.float64) / (1 << elem.man_bits)
    return (codes & ((1 << elem.width) - 1)).view(elem.dtype).astype(np.float64) \
        if elem.width == 8 else _narrow_values(codes, elem)


def _narrow_values(codes, elem):
    """FP6/FP4 codes (low bits of a byte) by their fields."""
    sign, sig, exp = element_parts(codes, elem)
    return np.where(sign, -1.0, 1.0) * np.ldexp(sig.astype(np.float64), exp)


def element_parts(codes, elem):
    """``(sign, significand, exponent)`` (int64) of element codes with ``|value| =
    significand * 2**exponent`` for every finite code."""
    c = np.asarray(codes).astype(np.int64)
    if elem.exp_bits == 0:                      # two's complement, 1.6 fixed point
        v = np.where(c >= 128, c - 256, c)
        return v < 0, np.abs(v), np.full(c.shape, elem.lsb, dtype=np.int64)
    sign = ((c >> (elem.width - 1)) & 1) == 1
    field = (c >> elem.man_bits) & ((1 << elem.exp_bits) - 1)
    man = c & ((1 << elem.man_bits) - 1)
    sig = np.where(field > 0, man + (1 << elem.man_bits), man)
    return sign, sig, np.maximum(field, 1) - elem.bias - elem.man_bits


def mx_dequantize(codes, scales, element, *, block_size=32, out_format="fp32"):
    """``element value * 2**shared`` per element, rounded once (half to even) to
    ``out_format`` -- FP32, BF16 or FP16 values, or the bit patterns of a custom
    ``eXmY`` (see the module)."""
    elem = element_format(element)
    out = floats.float_format(out_format, "out_format")
    codes = np.asarray(codes, dtype=np.uint8)
    scales = np.asarray(scales, dtype=np.uint8).reshape(-1)
    blocks = _blocks(codes.size, block_size)
    if scales.size != blocks:
        raise ValueError(f"scales: expected {blocks} for {codes.size} elements in blocks "
                         f"of {block_size}, got {scales.size}")
    flat = codes.reshape(-1)
    values = element_values(flat, elem)                     # for the NaN / Inf codes
    shared = np.repeat(scales.astype(np.int64), block_size)
    sign, sig, exp = element_parts(flat, elem)
    bits = floats.round_scaled(sign, sig, exp + shared - E8M0_BIAS, out)
    signed = sign.astype(np.int64) << (out.width - 1)
    bits = np.select([np.isnan(values) | (shared == E8M0_NAN), np.isinf(values)],
                     [out.nan_bits, out.inf_bits | signed], bits)
    return as_given(bits, out, False).reshape(codes.shape)
