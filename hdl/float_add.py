"""The sum of two floats of one format as an exact value for
:class:`~qdp.hdl.floats.RoundingStages`: IEEE addition in pipeline stages.

Two stage functions on a dict holding the patterns ``x`` and ``y``:

1. :meth:`AddStages.align`: both unpacked, ordered so that ``a`` has the larger exponent
   (of its last place: for a format's own values that orders their magnitudes' binades),
   and ``b``'s significand, with ``GUARD`` guard bits, shifted right by the difference,
   the bits it loses ORed into a sticky bit;
2. :meth:`AddStages.add`: ``a ± b``, its magnitude and sign, as ``significand *
   2**exponent`` with the sticky bit as the lowest bit -- exact where nothing was lost,
   and otherwise (a difference of exponents of 2 or more, so at most one bit of
   cancellation) inside the same interval between two values one bit below the result's
   last place, which is all that rounding to the format reads.

IEEE's special cases ride beside it: a NaN operand or ``Inf - Inf`` is NaN (``nan``), an
Inf operand gives that Inf (``inf`` and ``sign``), and an exact zero sum is ``+0`` unless
both operands are ``-0``.
"""

from amaranth.hdl import Cat, Const, Mux

from .floats import unpack

__all__ = ["AddStages", "GUARD"]

#: Guard bits below the larger operand's last place: with the sticky bit below them, two
#: bits survive the one-bit normalization that a lossy (far) difference can need.
GUARD = 3


class AddStages:
    """``x + y`` for two ``fmt`` patterns, as the two stage functions :meth:`align` and
    :meth:`add` (keys they do not read pass through)."""

    def __init__(self, fmt, exp_shape):
        self.fmt, self.exp_shape = fmt, exp_shape

    def stages(self):
        return [self.align, self.add]

    def align(self, v):
        fx, fy = unpack(v["x"], self.fmt), unpack(v["y"], self.fmt)
        swap = fy.biased_exponent > fx.biased_exponent
        a_sig = Mux(swap, fy.significand, fx.significand)
        b_sig = Mux(swap, fx.significand, fy.significand)
        a_sign, b_sign = Mux(swap, fy.sign, fx.sign), Mux(swap, fx.sign, fy.sign)
        distance = (Mux(swap, fy.biased_exponent - fx.biased_exponent,
                        fx.biased_exponent - fy.biased_exponent)).as_unsigned()
        width = self.fmt.precision + GUARD
        limit = width + 1                   # beyond it, every bit of b is lost
        shift = Mux(distance > limit, limit, distance)[:limit.bit_length()]
        b_wide = Cat(Const(0, GUARD), b_sig)
        kept = b_wide >> shift
        sticky = (b_wide & ~(Const((1 << width) - 1, width) << shift)[:width]) != 0
        nan = fx.nan | fy.nan | (fx.inf & fy.inf & (fx.sign != fy.sign))
        out = {k: val for k, val in v.items() if k not in ("x", "y")}
        return dict(out, a=Cat(Const(0, GUARD), a_sig), b=kept, sticky=sticky,
                    a_sign=a_sign, subtract=a_sign != b_sign, both_negative=fx.sign & fy.sign,
                    exponent=Mux(swap, fy.exponent, fx.exponent) - GUARD,
                    nan=nan, inf=(fx.inf | fy.inf) & ~nan,
                    inf_sign=Mux(fx.inf, fx.sign, fy.sign))

    def add(self, v):
        # Twice a's value, twice b's kept part with the sticky bit as its half.
        a = Cat(Const(0, 1), v["a"], Const(0, 2)).as_signed()
        b = Cat(v["sticky"], v["b"], Const(0, 2)).as_signed()
        total = Mux(v["subtract"], a - b, a + b)
        negative = total < 0
        magnitude = Mux(negative, -total, total).as_unsigned()[:len(a) - 1]
        zero = magnitude == 0
        sign = Mux(v["inf"], v["inf_sign"],
                   Mux(zero, v["both_negative"], v["a_sign"] ^ negative))
        out = {k: val for k, val in v.items()
               if k not in ("a", "b", "sticky", "a_sign", "subtract", "both_negative",
                            "inf_sign", "exponent")}
        exponent = (v["exponent"] - 1).as_signed()[:self.exp_shape.width].as_signed()
        return dict(out, sign=sign, significand=magnitude, exponent=exponent)
