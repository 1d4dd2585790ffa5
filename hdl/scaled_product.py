"""An element times a float scale, rounded once: what the dequantizers' datapaths start
and end with.

:func:`product_operands` is the stage before a
:data:`~qdp.hdl.multiplier.MULTIPLY`: the element's magnitude and the scale's significand
as the product's operands, the product's sign and exponent, and IEEE's special cases
of the scale beside them. After :class:`~qdp.hdl.floats.RoundingStages`,
:func:`product_bits` gives the result's bit pattern, a NaN as the format's canonical
quiet NaN. Combinational; the components register around them."""

from amaranth.hdl import Const, Mux, unsigned

from .floats import Rounded, constant_parts, encode_rounded, unpack

__all__ = ["product_operands", "product_bits"]


def product_operands(sign, magnitude, exponent, zero, scale, fmt, exp_shape=None):
    """The stage dict of ``(-1)**sign * magnitude * 2**exponent`` times the ``fmt``
    pattern ``scale``: ``a`` (the magnitude) and ``b`` (the scale's significand) for the
    multiplier, the product's ``sign`` (the XOR of both: a zero product keeps it, as
    IEEE's does) and ``exponent``, ``nan`` (a NaN scale, or Inf times a ``zero``
    element) and ``inf`` (Inf times a nonzero element).

    ``exponent`` 0 (the int) takes the scale's exponent alone; otherwise the sum is cut
    to ``exp_shape``, which holds every sum the caller's elements make. A constant
    ``scale`` (an int: a nonzero finite pattern) has no special cases."""
    if isinstance(scale, int):
        scale_sign, significand, scale_exponent = constant_parts(scale, fmt)
        significand = Const(significand, unsigned(fmt.precision))
        nan = inf = 0
    else:
        fs = unpack(scale, fmt)
        scale_sign, significand, scale_exponent = fs.sign, fs.significand, fs.exponent
        nan, inf = fs.nan | (fs.inf & zero), fs.inf & ~zero
    if not (isinstance(exponent, int) and exponent == 0):
        exponent = (exponent + scale_exponent).as_signed()[:exp_shape.width].as_signed()
    else:
        exponent = scale_exponent
    return dict(a=magnitude, b=significand, sign=sign ^ scale_sign, exponent=exponent,
                nan=nan, inf=inf)


def product_bits(v, fmt):
    """The ``fmt`` bit pattern of the last rounding stage's dict (``sign``,
    ``significand``, ``exponent``, ``inf``) with ``nan`` from :func:`product_operands`:
    every NaN is ``fmt``'s canonical quiet NaN."""
    bits = encode_rounded(Rounded(v["sign"], v["significand"], v["exponent"], v["inf"]),
                          fmt)
    return Mux(v["nan"], fmt.nan_bits, bits)
