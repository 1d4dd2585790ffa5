"""Properties of the Quantizer (:class:`qdp.hdl.Quantizer`), stated on its ports.

Two harnesses, each around one Quantizer:

* :class:`~qdp.formal.stream.StreamHarness` -- the stream rules on ``o`` (``valid`` held
  until ``ready``, payload stable while stalled, idle after reset) for any input; proved
  by k-induction.
* :class:`QuantizerArithmetic` -- every output beat equals the golden formula
  ``saturate(round(x * M / 2**S) + Z)`` of the matching input beat, in order, none lost
  or duplicated (one freely picked input beat with free field values, followed to the
  output, and a beat counter bounded by ``latency``); a bounded proof from reset, whose
  ``Cover``s (the tracked beat delivered, a stalled beat taken) show that its bound of
  ``latency + 3`` cycles reaches the checked beat.

The golden formula is written here in Amaranth as exact wide arithmetic, independently of
the HDL: ``floor`` is an arithmetic shift, the remainder ``r = p - floor * 2**S`` decides
every rounding by comparing ``2 r`` with ``2**S``, and saturation compares the exact sum
with the output range. ``stochastic`` rounding and ``tflite`` mode are not covered.
"""

from amaranth.asserts import AnyConst
from amaranth.hdl import Assert, Cat, Const, Cover, Mux, Signal, signed

from ..golden.rounding import DETERMINISTIC_MODES
from .runner import Proof
from .stream import Harness, StreamHarness

__all__ = [
    "REFERENCE",
    "QuantizerArithmetic",
    "golden_quantize",
    "proofs",
]

#: The reference configuration of the proofs in CI, at every rounding and saturation mode.
REFERENCE = {"lanes": 1, "in_width": 8, "out_width": 4, "mult_width": 2, "shift_width": 3,
                 "runtime_scale": True}

#: Largest ``in_width + mult_width`` of the golden-arithmetic proof: z3 needs about 10 s
#: at 10 bits, a minute at 12, and much longer beyond.
MAX_PRODUCT_WIDTH = 12

#: Rounding modes with a golden statement here.
ROUNDINGS = DETERMINISTIC_MODES


def golden_quantize(m, x, multiplier, shift, zero_point, *, out_width, out_signed,
                    rounding, saturation):
    """The exact ``saturate(round(x * M / 2**S) + Z)`` as an Amaranth value of
    ``out_width`` bits (two's complement when ``out_signed``)."""
    if rounding not in ROUNDINGS:
        raise ValueError(f"rounding: no formal golden statement for {rounding!r}; "
                         f"expected one of {', '.join(ROUNDINGS)}")
    # Wide enough for the product and, sign-extended, for every remainder r < 2**S.
    p = Signal(signed(max(len(x) + len(multiplier), 1 << len(shift)) + 1), name="g_product")
    m.d.comb += p.eq(x * multiplier)
    # p = fl * 2**S + r with 0 <= r < 2**S: for each constant S, fl is p's high bits and r
    # its low S bits. Rounding compares r with half a unit (2**(S-1)).
    fl = Signal(signed(len(p)), name="g_floor")
    up = Signal(name="g_up")
    negative = p < 0
    with m.Switch(shift):
        for s in range(1 << len(shift)):
            with m.Case(s):
                rem = p.as_unsigned()[:s] if s else Const(0, 1)
                half = 1 << (s - 1) if s else None
                above = rem > half if s else Const(0, 1)
                tie = rem == half if s else Const(0, 1)
                floor = p >> s
                rounds_up = {
                    "floor": Const(0, 1),
                    "trunc": (rem != 0) & negative,
                    "half_up": above | tie,
                    "half_down": above,
                    "half_even": above | (tie & floor[0]),
                    "half_away": above | (tie & ~negative),
                    "half_zero": above | (tie & negative),
                }[rounding]
                m.d.comb += [fl.eq(floor), up.eq(rounds_up)]
    width = len(p)
    total = Signal(signed(width + 2 + out_width), name="g_total")
    m.d.comb += total.eq(fl + up + zero_point)
    if out_signed:
        lo, hi = -(1 << (out_width - 1)), (1 << (out_width - 1)) - 1
    else:
        lo, hi = 0, (1 << out_width) - 1
    result = Signal(out_width, name="g_result")
    if saturation == "wrap":
        m.d.comb += result.eq(total[:out_width])
    elif saturation == "sat_zero":
        m.d.comb += result.eq(Mux((total >= lo) & (total <= hi), total[:out_width], 0))
    else:
        if saturation == "sat_sym":
            lo = max(lo, -hi)
        clipped = Mux(total < lo, lo, Mux(total > hi, hi, total))
        m.d.comb += result.eq(clipped[:out_width])
    return result


class QuantizerArithmetic(Harness):
    """Golden arithmetic, order, nothing lost or duplicated, the stream rules of ``o``.

    ``rounding`` overrides the mode the golden formula uses (default: the DUT's), so a
    test can prove a block against another mode's statement and see it fail.
    """

    def __init__(self, dut, *, rounding=None):
        super().__init__(dut)
        self.rounding = dut.rounding if rounding is None else rounding

    def properties(self, m, rules):
        dut = self.dut
        rules.drive_input(dut.i)
        rules.check_output(dut.o)
        fire_in, fire_out = rules.fire(dut.i), rules.fire(dut.o)
        inflight = rules.count(fire_in, fire_out, dut.latency)
        # One tracked beat with free constant fields stands for every input beat.
        x = [AnyConst(dut.in_shape) for _ in range(dut.lanes)]
        multiplier = AnyConst(dut.mult_width)
        shift = AnyConst(dut.shift_width)
        zero_point = AnyConst(dut.out_shape)
        value = Cat(*x, multiplier, shift, zero_point)
        out = rules.tracked_beat(fire_in, fire_out, inflight, dut.i.payload.as_value(), value)
        expected = Cat(*(golden_quantize(m, xv, multiplier, shift, zero_point,
                                         out_width=dut.out_width, out_signed=dut.out_signed,
                                         rounding=self.rounding, saturation=dut.saturation)
                         for xv in x))
        with m.If(out):
            m.d.comb += Assert(dut.o.payload.as_value() == expected)
        m.d.comb += Cover(out)


def proofs(build):
    """The proofs of one Quantizer configuration; ``build()`` makes a fresh Quantizer.

    Raises ``ValueError`` for a configuration the golden-arithmetic harness does not
    state (``stochastic``, ``tflite``, constant or per-lane scales, wide products).
    """
    dut = build()
    dut._MustUse__silence = True            # built only to read its parameters
    if not dut.runtime_scale or dut.tflite or dut.per_lane:
        raise ValueError("quantizer: the formal proofs take run-time per-tensor scales "
                         "(--runtime-scale, no --per-lane, no --tflite)")
    if dut.rounding not in ROUNDINGS:
        raise ValueError(f"rounding: no formal golden statement for {dut.rounding!r}; "
                         f"expected one of {', '.join(ROUNDINGS)}")
    if dut.in_width + dut.mult_width > MAX_PRODUCT_WIDTH:
        raise ValueError(f"in_width + mult_width: {dut.in_width + dut.mult_width} is too wide "
                         f"for the formal proofs (allowed <= {MAX_PRODUCT_WIDTH}, e.g. "
                         f"--in-width 8 --mult-width 2)")
    return [
        Proof("stream rules, idle after reset", lambda: StreamHarness(build()), "prove",
              dut.latency + 3),
        Proof("golden arithmetic, order, no beat lost or duplicated",
              lambda: QuantizerArithmetic(build()), "bmc", dut.latency + 3),
    ]
