"""Rounding and saturation in gateware: the hardware side of :mod:`qdp.golden.rounding` and
:mod:`qdp.golden.saturation`.

These are combinational building blocks; the components register around them.
"""

from amaranth.hdl import Cat, Const, Mux, Value

from ..golden.rounding import STOCHASTIC_BITS

__all__ = ["round_shift", "saturate"]


def round_shift(value, shift, *, max_shift, rounding, random=None):
    """Round ``value / 2**shift`` to an integer with ``rounding``.

    ``shift`` is an ``int`` or an unsigned ``Value`` never above ``max_shift``. Every
    rounding decision reads exact bits of the remainder: the half bit (weight 1/2), the
    sticky OR of the bits below it, the LSB of ``floor(value / 2**shift)`` and the sign.
    A constant shift makes them wiring; a run-time shift uses one shifter as wide as the
    value plus a mask (stochastic rounding, which needs the whole remainder, aligns the
    value to ``max_shift`` fraction bits instead).

    For ``stochastic``, ``random`` is the 32-bit LFSR value r and the result is
    ``floor(v + r / 2**32)``: with an F-bit fraction f, ``f / 2**F + r / 2**32 >= 1`` holds
    exactly when ``f + floor(r * 2**F / 2**32) >= 2**F`` because f is an integer, so the
    truncated or zero-padded r gives the exact carry.

    Returns a signed ``Value`` wide enough for every result.
    """
    is_signed = value.shape().signed
    negative = value < 0 if is_signed else Const(0, 1)
    if isinstance(shift, int) or rounding == "stochastic":
        integer, half, below = _aligned_split(value, shift, max_shift, rounding, random)
    else:
        # A run-time shift without stochastic rounding needs only the half bit and the
        # sticky OR below it: one bit below the binary point rides along through a shifter
        # as wide as the value, and a mask of the bits under the half bit gives the
        # sticky. (For shift - 1 beyond the value's width the sign bit lies under the
        # mask, so a negative value is correctly never exact.)
        shifted = (value << 1) >> shift
        integer = shifted >> 1
        half = shifted[0]
        under_half = ((Const(1, 1) << shift) - 1).as_unsigned() >> 1
        bits = min(len(value), len(under_half))
        below = (value.as_unsigned()[:bits] & under_half[:bits]) != 0

    if half is None or rounding == "floor":
        up = 0
    elif rounding == "stochastic":
        up = half                           # the carry, see _aligned_split
    elif rounding == "trunc":
        up = negative & (Value.cast(half) | below)
    else:
        tie_up = {
            "half_even": integer[0],
            "half_away": ~negative,
            "half_up": 1,
            "half_down": 0,
            "half_zero": negative,
        }[rounding]
        up = half & (Value.cast(below) | tie_up)
    if not is_signed:
        integer = Cat(integer, Const(0, 1)).as_signed()
    return integer + Value.cast(up).as_unsigned()


def saturate(value, *, width, signed_out, saturation):
    """Bring the signed ``value`` into the ``width``-bit (un)signed range."""
    if signed_out:
        qmin, qmax = -(1 << (width - 1)), (1 << (width - 1)) - 1
    else:
        qmin, qmax = 0, (1 << width) - 1
    if saturation == "wrap":
        return value[:width].as_signed() if signed_out else value[:width]
    if saturation == "sat_sym":
        qmin = max(qmin, -qmax)
    low, high = value < qmin, value > qmax
    if saturation == "sat_zero":
        clipped = Mux(low | high, 0, value)
    else:
        clipped = Mux(low, qmin, Mux(high, qmax, value))
    return clipped[:width].as_signed() if signed_out else clipped[:width].as_unsigned()


def _aligned_split(value, shift, max_shift, rounding, random):
    """``(integer, half, below)`` from the value aligned to ``max_shift`` fraction bits
    (wiring only for a constant shift). For ``stochastic``, ``half`` is the carry of the
    fraction plus the aligned random number instead. ``half`` is ``None`` when there is no
    fraction at all."""
    frac_bits = max_shift
    if isinstance(shift, int):
        aligned = value if shift == frac_bits else value << (frac_bits - shift)
    else:
        aligned = (value << frac_bits) >> shift
    if not frac_bits:
        return aligned, None, 0
    integer = aligned >> frac_bits
    fraction = aligned[:frac_bits]
    if rounding == "stochastic":
        if frac_bits >= STOCHASTIC_BITS:
            r = random.as_unsigned() << (frac_bits - STOCHASTIC_BITS)
        else:
            r = random.as_unsigned() >> (STOCHASTIC_BITS - frac_bits)
        return integer, (fraction + r)[frac_bits], None
    below = fraction[:frac_bits - 1] != 0 if frac_bits > 1 else 0
    return integer, fraction[frac_bits - 1], below
