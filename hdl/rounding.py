"""Rounding and saturation in gateware: the hardware side of :mod:`qdp.golden.rounding` and
:mod:`qdp.golden.saturation`.

These are combinational building blocks; the components register around them.
"""

from amaranth.hdl import Cat, Const, Mux, Value

from ..golden.rounding import STOCHASTIC_BITS

__all__ = ["round_shift", "saturate"]


def round_shift(value, shift, *, max_shift, rounding, random=None):
    """Round ``value / 2**shift`` to an integer with ``rounding``.

    ``shift`` is an ``int`` or an unsigned ``Value`` never above ``max_shift``. The value is
    first aligned to ``max_shift`` fraction bits, so every rounding decision reads exact
    fraction bits: the integer part is ``floor(value / 2**shift)`` and the fraction is the
    exact remainder scaled by ``2**(max_shift - shift)``. With a constant shift the
    alignment is wiring only.

    For ``stochastic``, ``random`` is the 32-bit LFSR value r and the result is
    ``floor(v + r / 2**32)``: with an F-bit fraction f, ``f / 2**F + r / 2**32 >= 1`` holds
    exactly when ``f + floor(r * 2**F / 2**32) >= 2**F`` because f is an integer, so the
    truncated or zero-padded r gives the exact carry.

    Returns a signed ``Value`` wide enough for every result.
    """
    is_signed = value.shape().signed
    frac_bits = max_shift
    if isinstance(shift, int):
        aligned = value if shift == frac_bits else value << (frac_bits - shift)
    else:
        aligned = (value << frac_bits) >> shift
    integer = aligned >> frac_bits if frac_bits else aligned
    fraction = aligned[:frac_bits] if frac_bits else None
    negative = value < 0 if is_signed else Const(0, 1)

    if fraction is None or rounding == "floor":
        up = 0
    elif rounding == "stochastic":
        if frac_bits >= STOCHASTIC_BITS:
            r = random.as_unsigned() << (frac_bits - STOCHASTIC_BITS)
        else:
            r = random.as_unsigned() >> (STOCHASTIC_BITS - frac_bits)
        up = (fraction + r)[frac_bits]
    elif rounding == "trunc":
        up = negative & (fraction != 0)
    else:
        half = fraction[frac_bits - 1]
        below = fraction[:frac_bits - 1] != 0 if frac_bits > 1 else 0
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
