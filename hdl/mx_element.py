"""An OCP MX element code in hardware: its sign, significand and exponent step, and the
NaN and Inf codes of the formats that have them."""

from dataclasses import dataclass

from amaranth.hdl import Cat, Const, Mux, Value

__all__ = ["ElementParts", "decode_element"]


@dataclass
class ElementParts:
    """``|value| = significand * 2**(step + lsb)`` for every finite code (``lsb`` the
    format's :attr:`~qdp.golden.mx.ElementFormat.lsb`); ``nan`` and ``inf`` flag the
    special codes, whose ``significand`` and ``step`` mean nothing.

    Members
    -------
    sign, nan, inf : Value
        One bit each.
    significand : Value
        ``man_bits + 1`` bits (MXINT8: the 8-bit magnitude, 128 for -128).
    step : Value or int
        ``max(field, 1) - 1``: the exponent above the subnormals' (0 for MXINT8).
    """

    sign: Value
    significand: Value
    step: object
    nan: Value
    inf: Value


def decode_element(code, elem):
    """The :class:`ElementParts` of ``code`` (``elem.width`` bits), ``elem`` a
    :class:`~qdp.golden.mx.ElementFormat`: MXINT8 as a two's complement byte, the float
    elements by their fields -- ``fp8_e4m3``'s ``S.1111.111`` NaN (no Inf),
    ``fp8_e5m2``'s IEEE specials, every FP6 and FP4 code finite."""
    none = Const(0, 1)
    if elem.exp_bits == 0:
        sign = code[7]
        magnitude = Mux(sign, -code.as_signed(), code.as_signed()).as_unsigned()[:8]
        return ElementParts(sign, magnitude, 0, none, none)
    field = code[elem.man_bits:elem.man_bits + elem.exp_bits]
    man = code[:elem.man_bits]
    top = (1 << elem.exp_bits) - 1
    nan = inf = none
    if elem.name == "fp8_e4m3":
        nan = code[:7] == 0x7F
    elif elem.name == "fp8_e5m2":
        nan = (field == top) & (man != 0)
        inf = (field == top) & (man == 0)
    step = Mux(field != 0, field - 1, 0)[:elem.exp_bits]
    return ElementParts(code[elem.width - 1], Cat(man, field != 0), step, nan, inf)
