"""The float32 model of float-input absmax quantization in pipeline stages.

:mod:`qdp.golden.absmax_float` states the model: ``c = fl32(qmax / absmax)`` per block,
``q = rint(fl32(c * x))`` per element, IEEE special values first, then NaN -> 0 and
±Inf -> ±qmax. :class:`Float32Quantize` computes it for one beat -- the block's absmax
and ``lanes`` elements -- as a pipeline that never stalls (the absmax unit issues a beat
only with room for it in its output FIFO):

1. unpack: the absmax's and the elements' fields (:func:`~qdp.hdl.floats.unpack`) and
   the absmax significand's leading zeros;
2. normalize, in two steps (by the multiple of 8, then the rest): ``qmax`` and that
   significand both ``W`` bits wide with their top bit set, so that their ratio lies in
   (1/2, 2);
3. ``QUOTIENT_BITS`` restoring division steps (:func:`~qdp.hdl.floats.division_step`),
   one per stage: 26 bits hold the 24 of FP32 and the round bit even when the ratio is
   below 1, and the last remainder is the sticky bit;
4. rounding to FP32 (:class:`~qdp.hdl.floats.RoundingStages`: subnormal ``c`` exact,
   overflow to Inf) and its bit pattern, ``c`` for the ``scale`` stream;
5. per lane, the exact product of ``c``'s and ``x``'s significands on registered DSP
   tiles (:func:`~qdp.hdl.multiplier.pipeline_products`), then rounded to FP32 again;
6. ``rint``: the FP32 product, ``±sig * 2**e``, shifted right by ``-e`` (at most 26:
   below that every nonzero product rounds to 0) and rounded half to even in three
   stages (the ORs of 8-bit groups, the shift by their multiple with its sticky bit, the
   rest: :func:`~qdp.hdl.rounding.coarse_shift`, :func:`~qdp.hdl.rounding.fine_round`);
   then the increment, the clip and the specials.

Why no more bits are needed: a finite product is at most ``c * absmax``, within an FP32
step of ``qmax < 2**8``, so its last place lies at ``2**-16`` or below wherever it is
nonzero, and the shift is a right shift; the clip to ``±qmax`` is the golden model's.

Every qdp float format widens to FP32 exactly (at most 8 exponent and 23 mantissa bits),
as the golden model's absmax does.
"""

from amaranth.hdl import Const, Mux, unsigned
from amaranth.lib import data

from ..golden.floats import FP32
from .floats import (Rounded, RoundingStages, division_step, encode_rounded,
                     exponent_shape, leading_zeros, quotient_value, shift_by_eights, unpack)
from .dsp import DSPMultiplier
from .multiplier import (MULTIPLY, adder_levels, pipeline_products, registered_multiplier,
                         tiles)
from .pipeline import on_block, on_lanes
from .rounding import coarse_shift, fine_round, group_ors

__all__ = ["Float32Quantize", "QUOTIENT_BITS", "MAX_SHIFT", "scale_layout"]

#: Quotient bits of ``qmax / absmax``: FP32's 24, a round bit, and one for a ratio < 1.
QUOTIENT_BITS = FP32.precision + 2
#: Right shifts of the rounded product beyond this leave nothing at or above 1/2.
MAX_SHIFT = FP32.precision + 2
#: The rounding shift goes by a multiple of 8, then by 0..7 (as QuantizeLinear's).
FINE_SHIFT_BITS = 3


def scale_layout(fmt, model):
    """The ``scale`` stream's payload of the absmax unit (and its dequantizer) for a float
    ``fmt``: the absmax pattern, and in the float32 model the block constant ``c`` (FP32)
    beside it."""
    if model == "exact":
        return unsigned(fmt.width)
    return data.StructLayout({"absmax": unsigned(fmt.width), "c": unsigned(FP32.width)})


class Float32Quantize:
    """``c`` and the beat's ``q`` in the float32 model, in pipeline stages.

    The pipeline's values are a list of dicts: the first holds the block's values (the
    absmax pattern ``absmax``, then ``c``, and whatever flags ride along: keys a stage does not
    know pass through), the others one element each (its pattern ``x``, then ``q``).
    :meth:`stages` lists the stage functions from one such list to the next, with
    :data:`MULTIPLY` where :meth:`multiply` runs; :meth:`outputs` reads the last list.

    Parameters
    ----------
    fmt : FloatFormat
        The elements' and the absmax's format.
    out_width : int
        Width of the signed ``q``: ``qmax = 2**(out_width-1) - 1``.
    """

    def __init__(self, fmt, out_width, *, fold=1):
        self.fmt, self.out_width, self.fold = fmt, out_width, fold
        self.qmax = (1 << (out_width - 1)) - 1
        # qmax and the absmax significand, normalized to one width.
        self.width = max(fmt.precision, out_width - 1)
        self.exp_shape = exponent_shape(FP32, extra=3)
        self.rounding = RoundingStages(precision=FP32.precision, fmt=FP32,
                                       exp_shape=self.exp_shape)

    def stages(self):
        """Stage functions on the list of dicts, :data:`MULTIPLY` for the multipliers."""
        return ([self._unpack, self._shift, self._normalize]
                + [on_block(s) for s in [self._divide] * QUOTIENT_BITS + [self._round_input]
                   + self.rounding.stages()]
                + [self._constant, MULTIPLY]
                + [on_lanes(s) for s in self.rounding.stages() + self.element_stages()])

    def element_stages(self):
        """The per-lane stages after ``fl32(c * x)`` (a rounded value, its ``nan`` and
        ``inf`` flags): ``rint``, clipped to ``±qmax``."""
        return [self._align, self._coarse, self._fine, self._clip]

    def registered(self, k):
        """Whether stage function ``k`` is followed by a register: every one, or with
        ``fold`` every ``fold``-th and the last (the same logic in fewer cycles, for the
        formal proofs, whose cost grows with the depth)."""
        return (k + 1) % self.fold == 0 or k == len(self.stages()) - 1

    @property
    def latency(self):
        """Registered stages (:meth:`registered`), the multiplier's for
        :data:`MULTIPLY`."""
        stages = self.stages()
        return sum(self.registered(k) for k, s in enumerate(stages) if s is not MULTIPLY) \
            + DSPMultiplier.latency + adder_levels(*self._operands)

    @property
    def tiles_per_lane(self):
        """Multiplier tiles of one lane's ``c * x`` (each a MULT18X18D on ECP5)."""
        return tiles(*self._operands)

    @property
    def _operands(self):
        return unsigned(FP32.precision + 1), unsigned(self.fmt.precision)

    def _multiplier(self):
        return registered_multiplier(*self._operands)

    # -- the block constant ------------------------------------------------------------

    def _unpack(self, values):
        block = values[0]
        fa = unpack(block["absmax"], self.fmt)
        block = dict(block, sig=fa.significand, exp=fa.exponent,
                     lz=leading_zeros(fa.significand), nan=fa.nan, vanish=fa.inf,
                     inf=fa.zero)
        lanes = []
        for v in values[1:]:
            fx = unpack(v["x"], self.fmt)
            lanes.append({"sign": fx.sign, "b": fx.significand, "exponent": fx.exponent,
                          "x_nan": fx.nan, "x_inf": fx.inf, "x_zero": fx.zero})
        return [block] + lanes

    def _shift(self, values):
        """``qmax / absmax = (num / divisor) * 2**exponent`` with both ``W`` bits wide and
        their top bit set: the exponent, and the significand shifted by the multiple of 8
        in its leading zeros."""
        block = values[0]
        p, w, top = self.fmt.precision, self.width, self.out_width - 1
        exponent = -(w - top) - (block["exp"] - block["lz"] - (w - p))
        out = {k: v for k, v in block.items() if k not in ("sig", "exp", "lz")}
        return [dict(out, sig=shift_by_eights(block["sig"], block["lz"]),
                     fine=block["lz"][:3],
                     exponent=exponent.as_signed()[:self.exp_shape.width].as_signed())] \
            + values[1:]

    def _normalize(self, values):
        """The rest of the shift: the divider's divisor; its first remainder is ``num``."""
        block = values[0]
        p, w, top = self.fmt.precision, self.width, self.out_width - 1
        divisor = ((block["sig"] << block["fine"])[:p] << (w - p))[:w]
        out = {k: v for k, v in block.items() if k not in ("sig", "fine")}
        return [dict(out, rem=Const(self.qmax << (w - top), w + 1), divisor=divisor)] \
            + values[1:]

    def _divide(self, block):
        return division_step(block, self.width)

    def _round_input(self, block):
        """The positive quotient with its sticky bit, as the rounding stages' value."""
        return dict(quotient_value(block, QUOTIENT_BITS, self.exp_shape), sign=Const(0, 1))

    def _constant(self, values):
        """The rounded ``c``: its FP32 pattern for ``scale``, its parts for the product
        (a zero ``c_sig`` for an Inf absmax, whose quotient is meaningless)."""
        block = values[0]
        vanish, nan = block["vanish"], block["nan"]
        r = Rounded(0, block["significand"], block["exponent"], block["inf"])
        bits = Mux(nan, FP32.nan_bits, Mux(vanish, 0, encode_rounded(r, FP32)))
        out = {k: v for k, v in block.items()
               if k not in ("significand", "exponent", "sign", "inf")}
        return [dict(out, c=bits, c_sig=Mux(vanish, 0, r.significand), c_exp=r.exponent,
                     inf=r.inf & ~vanish & ~nan)] + values[1:]

    # -- the elements ------------------------------------------------------------------

    def multiply(self, m, pipe, values):
        """``c * x`` per lane: the significands' product on registered DSP tiles, its
        exponent and IEEE special cases beside it; the block keeps only what the outputs
        read (the flags riding along, ``absmax`` and ``c``)."""
        block = values[0]
        lanes = []
        for v in values[1:]:
            nan = block["nan"] | v["x_nan"] | (block["inf"] & v["x_zero"]) \
                | (block["vanish"] & v["x_inf"])
            lanes.append({"sign": v["sign"], "a": block["c_sig"], "b": v["b"],
                          "exponent": (block["c_exp"] + v["exponent"]).as_signed(),
                          "nan": nan, "inf": (block["inf"] | v["x_inf"]) & ~nan})
        rest = {k: v for k, v in block.items()
                if k not in ("c_sig", "c_exp", "nan", "inf", "vanish")}
        return pipeline_products(m, pipe, [rest] + lanes, self._multiplier)

    def _align(self, v):
        """``rint`` of the rounded product ``±sig * 2**e``, first step: the signed value,
        the right shift ``-e`` (clamped), and the ORs of its bit groups."""
        e, sig = v["exponent"], v["significand"]
        shift = Mux(e < -MAX_SHIFT, MAX_SHIFT, Mux(e >= 0, 0, -e)).as_unsigned()
        value = Mux(v["sign"], -sig, sig).as_signed()
        return {"sign": v["sign"], "nan": v["nan"], "inf": v["inf"], "value": value,
                "shift": shift[:MAX_SHIFT.bit_length()],
                "groups": group_ors(value, fine_bits=FINE_SHIFT_BITS)}

    def _coarse(self, v):
        """The shift by the multiple of 8, the dropped bits' sticky OR beside it."""
        shifted, sticky = coarse_shift(v["value"], v["groups"], v["shift"],
                                       fine_bits=FINE_SHIFT_BITS)
        out = {k: v[k] for k in ("sign", "nan", "inf", "shift")}
        return dict(out, shifted=shifted, sticky=sticky, negative=v["value"] < 0)

    def _fine(self, v):
        """The rest of the shift and the half-even decision: floor and increment."""
        integer, up = fine_round(v["shifted"], v["sticky"], v["shift"],
                                 fine_bits=FINE_SHIFT_BITS, negative=v["negative"],
                                 rounding="half_even")
        return {"sign": v["sign"], "nan": v["nan"], "inf": v["inf"], "integer": integer,
                "up": up}

    def _clip(self, v):
        """``q``: the increment added, clipped to ``±qmax``, NaN 0, Inf ±qmax."""
        qmax, w = self.qmax, self.out_width
        q = (v["integer"] + v["up"]).as_signed()
        q = Mux(q > qmax, qmax, Mux(q < -qmax, -qmax, q))
        q = Mux(v["nan"], 0, Mux(v["inf"], Mux(v["sign"], -qmax, qmax), q))
        return {"q": q.as_signed()[:w].as_signed()}

    @staticmethod
    def outputs(values):
        """``(block values, q per lane)`` of the last stage."""
        return values[0], [v["q"] for v in values[1:]]

    @staticmethod
    def scale(block):
        """The ``scale`` stream's fields (:func:`scale_layout`)."""
        return {"absmax": block["absmax"], "c": block["c"]}
