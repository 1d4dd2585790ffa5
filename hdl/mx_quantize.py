"""OCP MX quantization: float elements in, element codes and one E8M0 scale per block out,
exactly as :func:`qdp.golden.mx_quantize` states it.

A block's scale needs its ``max |x|`` before any element can leave, so the unit stores
one block (:class:`~qdp.hdl.block_store.BlockStore`, the absmax unit's storage: one beat
per cycle across back-to-back blocks, the maximum taken as the block streams in). Each
row read out then goes, with that maximum, through twelve registered stages
(:class:`MxStages`):

1. the shared exponent from the maximum's fields -- ``floor(log2)`` is the exponent field
   for a normal maximum, and for a subnormal one the field's floor less the mantissa's
   leading zeros (needed only where a subnormal maximum can escape the clamp: FP16, not
   FP32 or BF16) -- minus the element's ``emax``, clamped to [-127, 127]; the scale byte
   (0 for an all-zero block, ``0xFF`` for one holding an Inf or a NaN); each element's
   fields;
2. each element's exponent less the shared one: ``x / 2**shared`` exactly;
3. eight stages of :class:`~qdp.hdl.floats.RoundingStages`: rounded in ``rounding`` to
   the element's precision and its subnormals (no flush to zero), overflow flagged;
4. the encoding: overflow saturates to the largest normal; a zero keeps its sign; MXINT8's
   magnitude (a multiple of ``2**-6`` below 2, so always on its "subnormal" grid) is
   clipped to 127 and negated in two's complement;
5. the code: fp8_e4m3's ``S.1111.111`` (a NaN code, but reached by the encoding's carry)
   saturates to the largest normal; every code of a NaN-scale block is 0.

The scale byte leaves on ``scale`` with the block's first beat on ``o``.

Why saturation covers every overflow: ``|x / 2**shared| < 2**(emax + 1)`` for every
element wherever the clamp does not cap ``shared`` from above (it never does for FP32,
BF16 or FP16 input), so only the carry of rounding overflows; where it does (a custom
format with a wider range), the rounding stages flag every value past the largest
normal as overflow, and overflow saturates, as the golden model does.
"""

import dataclasses

from amaranth.hdl import Cat, Const, Mux, unsigned

from ..golden.floats import FP32, float_format
from ..golden.mx import E8M0_BIAS, E8M0_NAN, element_format
from ..golden.rounding import DETERMINISTIC_MODES
from ._checks import check_block_size, check_bool, check_choice, check_int
from .block_store import BlockStore
from .floats import Rounded, RoundingStages, encode_rounded, exponent_shape, leading_zeros, \
    unpack
from .pipeline import on_lanes

__all__ = ["MxQuantize", "MxStages"]


@dataclasses.dataclass(frozen=True)
class _Grid:
    """The element's values as :class:`~qdp.hdl.floats.RoundingStages` and
    :func:`~qdp.hdl.floats.encode_rounded` read a format: the exponent range, and the
    largest normal's field where IEEE's encoding would put Inf (the saturation)."""

    man_bits: int
    emin: int
    emax: int
    width: int
    inf_bits: int

    @classmethod
    def of(cls, elem):
        if elem.exp_bits == 0:
            # MXINT8 as a float with a 7-bit mantissa whose subnormals are the 2**-6
            # grid: every |v| < 2 lies below emin = 1, and emax = 1 never overflows.
            return cls(man_bits=7, emin=1, emax=1, width=8, inf_bits=0)
        return cls(man_bits=elem.man_bits, emin=elem.emin, emax=elem.emax,
                   width=elem.width, inf_bits=elem.max_field)

    @property
    def precision(self):
        return self.man_bits + 1


class MxStages:
    """The MX scale and the beat's codes in pipeline stages, for
    :meth:`~qdp.hdl.block_store.BlockStore.staged_datapath`: a list of dicts, the block's
    values first (``absmax``, the maximum's pattern, then ``scale``; flags ride along),
    one per element after it (its pattern ``x``, then ``q``).

    Parameters
    ----------
    fmt : FloatFormat
        The input format.
    elem : ElementFormat
        The MX element format.
    rounding : str
        A deterministic rounding mode for the elements.
    """

    def __init__(self, fmt, elem, rounding):
        self.fmt, self.elem, self.grid = fmt, elem, _Grid.of(elem)
        # x's exponents less the shared one (-127..127), as wide as FP32's need or wider.
        self.exp_shape = max((exponent_shape(f, extra=3) for f in (fmt, FP32)),
                             key=lambda shape: shape.width)
        self.rounding = RoundingStages(precision=self.grid.precision, fmt=self.grid,
                                       exp_shape=self.exp_shape, rounding=rounding)

    def stages(self):
        return [self._shared, self._offset] \
            + [on_lanes(s) for s in self.rounding.stages()] + [self._encode, self._code]

    @property
    def latency(self):
        """Registered stages: one per stage function."""
        return len(self.stages())

    def _shared(self, values):
        """The scale byte ``clamp(floor(log2(amax)) - emax, -127, 127) + 127`` (0 for
        ``amax = 0``, ``0xFF`` for Inf or NaN), with every constant folded into one
        addition; each element's fields."""
        block, fmt, elem = values[0], self.fmt, self.elem
        amax = block["absmax"]
        field, man = amax[fmt.man_bits:fmt.man_bits + fmt.exp_bits], amax[:fmt.man_bits]
        # floor(log2(amax)) + bias: the field, or for a subnormal -(mantissa's leading
        # zeros); a subnormal amax matters only if the largest one escapes the clamp.
        top = Cat(field, Const(0, 2)).as_signed()
        if -fmt.bias - elem.emax > -E8M0_BIAS:
            top = Mux(field == 0, -leading_zeros(man), top).as_signed()
        # The clamp's comparisons on `top` against constants, beside the two subtractions
        # (the byte and the signed exponent, so that the next stage subtracts the exponent
        # without first undoing the bias).
        offset = fmt.bias + elem.emax
        low, high = top < offset - E8M0_BIAS, top > offset + E8M0_BIAS
        shared = Mux(low, -E8M0_BIAS, Mux(high, E8M0_BIAS, top - offset))
        byte = Mux(low, 0, Mux(high, 2 * E8M0_BIAS, top + (E8M0_BIAS - offset)))
        special = field == (1 << fmt.exp_bits) - 1
        scale = Mux(special, E8M0_NAN, Mux(amax == 0, 0, byte))[:8]
        out = {k: v for k, v in block.items() if k != "absmax"}
        lanes = []
        for v in values[1:]:
            fx = unpack(v["x"], fmt)
            lanes.append({"sign": fx.sign, "significand": fx.significand,
                          "exponent": fx.exponent})
        return [dict(out, scale=scale, nan=special,
                     shared=Mux(amax == 0, -E8M0_BIAS, shared)[:9].as_signed())] + lanes

    def _offset(self, values):
        """``x / 2**shared``: the shared exponent subtracted from each element's (garbage
        in a NaN-scale block, whose codes are 0)."""
        block, width = values[0], self.exp_shape.width
        out = {k: v for k, v in block.items() if k != "shared"}
        return [out] + [dict(v, exponent=(v["exponent"] - block["shared"])[:width].as_signed())
                        for v in values[1:]]

    def _encode(self, values):
        """The element's encoding, saturated where the rounding overflowed (MXINT8: the
        clipped two's complement code)."""
        elem, grid = self.elem, self.grid
        lanes = []
        for v in values[1:]:
            if elem.exp_bits == 0:
                # inf: beyond the grid's range, for inputs whose scale the clamp capped.
                magnitude = Mux(v["inf"] | (v["significand"] > 127), 127,
                                v["significand"])[:8]
                code = Mux(v["sign"], -magnitude, magnitude)[:8]
            else:
                code = encode_rounded(Rounded(v["sign"], v["significand"], v["exponent"],
                                              v["inf"]), grid)
            lanes.append({"code": code})
        return values[:1] + lanes

    def _code(self, values):
        """The code: fp8_e4m3's NaN code saturated, 0 in a NaN-scale block (a stage of
        its own, behind the encoding's carry chain)."""
        block, elem = values[0], self.elem
        ieee_top = ((elem.emax + elem.bias) << elem.man_bits) | ((1 << elem.man_bits) - 1)
        lanes = []
        for v in values[1:]:
            code = v["code"]
            if elem.exp_bits and ieee_top > elem.max_field:     # fp8_e4m3: S.1111.111
                # No finite rounded value encodes above ieee_top: one code to catch.
                field = code[:elem.width - 1]
                field = Mux(field == ieee_top, elem.max_field, field)
                code = Cat(field[:elem.width - 1], code[elem.width - 1])
            lanes.append({"q": Mux(block["nan"], 0, code)[:elem.width]})
        return [block] + lanes

    @staticmethod
    def outputs(values):
        """``(block values, code per lane)`` of the last stage."""
        return values[0], [v["q"] for v in values[1:]]

    @staticmethod
    def scale(block):
        return block["scale"]


class MxQuantize(BlockStore):
    """OCP MX quantization of a stream of float elements: per block of ``block_size``
    elements one E8M0 scale on ``scale`` and an element code per element on ``o``, equal
    to :func:`qdp.golden.mx_quantize` bit for bit (see the module for how).

    Parameters
    ----------
    block_size : int
        Elements per block (OCP's is 32): a multiple of ``lanes`` from ``lanes`` to 65536.
    lanes : int
        Elements per beat, 1..32.
    element : str
        The element format: ``"int8"``, ``"fp8_e4m3"``, ``"fp8_e5m2"``, ``"fp6_e3m2"``,
        ``"fp6_e2m3"`` or ``"fp4_e2m1"``.
    in_format : str
        ``"fp32"``, ``"bf16"``, ``"fp16"`` or a custom ``"eXmY"``.
    rounding : str
        The elements' rounding, a deterministic mode (OCP: ``half_even``;
        microxcaling's default is ``half_away``).
    read_register : bool
        A register right behind the storage's read data (one cycle more latency): for
        block RAM storage, whose data comes late in its cycle.

    Attributes
    ----------
    latency : int
        Cycles from the acceptance of a block's last input beat to its first output beat
        (``o.ready`` and ``scale.ready`` high, no earlier block draining): 16, 17 with
        ``read_register``. The scale leaves with that beat (``scale_latency``).
    dsp_tiles : int
        0: no multiplier (the scale is a power of two).

    Members
    -------
    i : :py:`In(stream.Signature(StructLayout({"data": ..., "last": 1})))`
        ``data`` is :py:`ArrayLayout(unsigned(in width), lanes)`, the float patterns;
        ``last`` closes a (short) block.
    o : :py:`Out(stream.Signature(StructLayout({"data": ..., "first": 1, "last": 1})))`
        ``data`` is :py:`ArrayLayout(unsigned(element width), lanes)`, the codes (MXINT8's
        as two's complement bytes); ``first`` and ``last`` mark each block.
    scale : :py:`Out(stream.Signature(unsigned(8)))`
        One E8M0 byte per block, in block order.
    """

    RANGES = {"lanes": (1, 32), "block_size": (1, 65536)}
    scale_meaning = "that block's E8M0 scale"
    dsp_tiles = 0

    def __init__(self, block_size=32, *, lanes=1, element="fp8_e4m3", in_format="fp32",
                 rounding="half_even", read_register=False):
        try:
            check_int("lanes", lanes, *self.RANGES["lanes"])
            check_block_size(block_size, lanes, self.RANGES["block_size"][1])
            self.elem = element_format(element)
            fmt = float_format(in_format, "in_format")
            self.rounding = check_choice("rounding", rounding, DETERMINISTIC_MODES)
            check_bool("read_register", read_register)
        except (TypeError, ValueError):
            self._MustUse__used = True      # failed its checks: not "unused"
            raise
        self.element, self.in_format, self.read_register = self.elem.name, fmt.name, \
            read_register
        self._stages = MxStages(fmt, self.elem, self.rounding)
        # issue -> read data [-> register] -> the stages -> FIFO write
        super().__init__(block_size=block_size, lanes=lanes, element=unsigned(fmt.width),
                         fmt=fmt, result=unsigned(self.elem.width), scale=unsigned(8),
                         read_register=read_register,
                         pipe_latency=1 + read_register + self._stages.latency,
                         scale_at_drain=False)

    def datapath(self, m, valid, absmax, first, last, row, out_fifo, scale_fifo):
        self.staged_datapath(m, self._stages, valid, absmax, first, last, row, out_fifo,
                             scale_fifo)
