"""Rounding and saturation in gateware: the hardware side of :mod:`qdp.golden.rounding` and
:mod:`qdp.golden.saturation`.

These are combinational building blocks; the components register around them.
"""

from amaranth.hdl import Array, Cat, Const, Mux, Value

from ..golden.rounding import NEAREST_MODES, STOCHASTIC_BITS

__all__ = ["add_carry", "beyond", "coarse_shift", "fine_round", "group_ors", "round_parts", "round_shift",
           "magnitude_rounds_up", "saturate", "tie_goes_up"]


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
    integer, up = round_parts(value, shift, max_shift=max_shift, rounding=rounding,
                              random=random)
    return integer + up


def round_parts(value, shift, *, max_shift, rounding, random=None):
    """``(integer, up)`` with ``integer + up`` the result of :func:`round_shift`:
    ``integer = floor(value / 2**shift)`` (signed) and ``up`` the one-bit rounding
    increment, so that a pipeline may add them in a later stage."""
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
    if not is_signed:
        integer = Cat(integer, Const(0, 1)).as_signed()
    return integer, _round_up(rounding, integer, half, below, negative, random)


def _round_up(rounding, integer, half, below, negative, random):
    """The increment: from the half bit, the sticky ``below`` and the sign (for
    ``stochastic``, ``half`` already is the carry)."""
    if half is None or rounding == "floor":
        return Const(0, 1)
    if rounding == "stochastic":
        return Value.cast(half)
    if rounding == "trunc":
        return negative & (Value.cast(half) | below)
    tie_up = tie_goes_up(rounding, integer_lsb=integer[0], negative=negative)
    return half & (Value.cast(below) | tie_up)


def tie_goes_up(rounding, *, integer_lsb, negative):
    """Whether a tie -- a value exactly half-way between ``floor(v)`` and ``floor(v) + 1``
    -- rounds up to ``floor(v) + 1`` in the nearest mode ``rounding``: the one statement
    of the tie rule of :data:`qdp.golden.rounding.NEAREST_MODES` in gateware.

    ``integer_lsb`` is the least significant bit of ``floor(v)`` and ``negative`` is
    ``v < 0`` (one-bit values). ``half_even``: up when ``floor(v)`` is odd; ``half_away``:
    when ``v >= 0``; ``half_up``: always; ``half_down``: never; ``half_zero``: when
    ``v < 0``. Returns a one-bit ``Value``."""
    if rounding not in NEAREST_MODES:
        raise ValueError(f"rounding: {rounding!r} is not a nearest mode (expected one of "
                         f"{', '.join(NEAREST_MODES)})")
    return {
        "half_even": integer_lsb,
        "half_away": ~negative,
        "half_up": Const(1, 1),
        "half_down": Const(0, 1),
        "half_zero": negative,
    }[rounding]


def magnitude_rounds_up(rounding, *, half, sticky, lsb, negative):
    """Whether the magnitude ``|v|`` of a sign-magnitude value steps up from
    ``floor(|v|)`` when ``v`` is rounded in the deterministic mode ``rounding``, from the
    half bit, the sticky OR below it, ``floor(|v|)``'s last bit and the sign (one-bit
    values): the rules of :data:`qdp.golden.rounding.DETERMINISTIC_MODES` seen from the
    magnitude (``half_away`` goes up at every tie, ``floor`` for any inexact negative)."""
    if rounding == "half_even":
        return half & (sticky | lsb)
    if rounding == "half_away":
        return half
    if rounding == "half_zero":
        return half & sticky
    if rounding in ("half_up", "half_down"):
        return half & (sticky | (negative if rounding == "half_down" else ~negative))
    if rounding == "floor":
        return negative & (half | sticky)
    if rounding == "trunc":
        return Const(0, 1)
    raise ValueError(f"rounding: {rounding!r} is not a deterministic mode")


def group_ors(value, *, fine_bits):
    """The OR of each ``2**fine_bits``-bit group of ``value << 1``, lowest group first:
    what :func:`coarse_shift` needs of the bits it drops, one pipeline stage ahead."""
    doubled = (value << 1).as_unsigned()
    step = 1 << fine_bits
    return Cat(doubled[k:k + step] != 0 for k in range(0, len(doubled), step))


def coarse_shift(value, groups, shift, *, fine_bits):
    """First step of a run-time :func:`round_parts` in two: shift ``value << 1`` right by
    the multiple of ``2**fine_bits`` in ``shift`` (its bits from ``fine_bits`` up).

    Returns ``(shifted, sticky)``: ``sticky`` is the OR of the shifted-out bits (from
    ``groups``, the :func:`group_ors` of ``value``), all of them below the half bit that
    :func:`fine_round` finds. Bits beyond the value's width are copies of its sign, so a
    negative value shifted past its width is never exact, as it must be."""
    amount = Cat(Const(0, fine_bits), shift[fine_bits:])
    return (value << 1) >> amount, _below(groups, shift[fine_bits:], 1)


def fine_round(shifted, sticky, shift, *, fine_bits, negative, rounding):
    """Second stage after :func:`coarse_shift`: ``(integer, up)`` as :func:`round_parts`
    gives them for a run-time shift of ``value`` (``negative`` is ``value < 0``;
    ``rounding`` is not ``stochastic``)."""
    amount = shift[:fine_bits]
    final = shifted >> amount
    below = Value.cast(sticky) | _below(shifted, amount, 1)
    integer = final >> 1
    if not final.shape().signed:
        integer = Cat(integer, Const(0, 1)).as_signed()
    return integer, _round_up(rounding, integer, final[0], below, negative, None)


def saturate(value, *, width, signed_out, saturation, overflow=None):
    """Bring the signed ``value`` into the ``width``-bit (un)signed range.

    ``overflow``, if given, is ``(big, negative)``: when ``big`` is set, ``value`` holds
    only the low bits of a result known to lie beyond the range on the side of its sign
    ``negative``; only ``wrap`` reads ``value`` then."""
    if signed_out:
        qmin, qmax = -(1 << (width - 1)), (1 << (width - 1)) - 1
    else:
        qmin, qmax = 0, (1 << width) - 1
    if saturation == "wrap":
        return value[:width].as_signed() if signed_out else value[:width]
    # Range tests on the bits above the output (LUTs), not comparisons (carry chains).
    negative_value = value[-1]
    keep = width - 1 if signed_out else width
    top = value[keep:]
    if len(top) == 0:
        outside = Const(0, 1)
    elif signed_out:
        outside = (top != 0) & (top != (1 << len(top)) - 1)
    else:
        outside = top != 0
    low, high = negative_value & outside, ~negative_value & outside
    if not signed_out:
        low = negative_value
    if saturation == "sat_sym" and signed_out:
        qmin = -qmax
        low = low | (value == qmin - 1)
    if overflow is not None:
        big, negative = overflow
        low, high = Mux(big, negative, low), Mux(big, ~negative, high)
    if saturation == "sat_zero":
        clipped = Mux(low | high, 0, value)
    else:
        clipped = Mux(low, qmin, Mux(high, qmax, value))
    return clipped[:width].as_signed() if signed_out else clipped[:width].as_unsigned()


def add_carry(a, b, carry):
    """``a + b + carry`` on one carry chain (``carry`` enters as the chain's carry-in)
    where ``a + b + carry`` would build two; ``a`` is signed."""
    b_ext = Cat(carry, b).as_signed() if b.shape().signed else Cat(carry, b, Const(0, 1))
    return (Cat(carry, a).as_signed() + b_ext.as_signed()) >> 1


def _below(value, amount, step):
    """Whether any bit of ``value`` under bit ``amount * step`` is set: a multiplexer of
    prefix ORs, which maps to LUTs where a mask ``(1 << amount) - 1`` would be a carry
    chain. (Bits beyond the width copy the sign bit, which the widest prefix holds.)"""
    prefixes = []
    for k in range(1 << len(amount)):
        bits = min(k * step, len(value))
        prefixes.append(value.as_unsigned()[:bits] != 0 if bits else Const(0, 1))
    return Array(prefixes)[amount]


def beyond(value, bits):
    """Whether ``value`` lies outside the ``bits``-bit signed range: its bits from
    ``bits - 1`` up are neither all zeros nor, if it is signed, all ones (a LUT tree, no
    carry chain)."""
    top = value[bits - 1:].as_unsigned()
    if not value.shape().signed:
        return top != 0 if len(top) else Const(0, 1)
    if len(top) <= 1:
        return Const(0, 1)
    return (top != 0) & (top != (1 << len(top)) - 1)


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
