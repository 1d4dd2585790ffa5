"""cocotb bench of the Quantizer: random, corner and tie vectors through the generated
Verilog with random valid gaps and backpressure, a reset in the middle of the stream, and
every output compared exactly with :func:`qdp.golden.quantize` (or
:func:`qdp.golden.requantize_tflite`). :class:`QuantizerTraffic` configures the bench engine
(:mod:`qdp.sim.bench`): ``vectors`` elements checked, a quarter as many cut by the reset.

The stimulus and expectation functions are plain Python, shared with the Amaranth-
simulator tests: they take a Quantizer or the parameters of the module's manifest.
"""

import cocotb
import numpy as np

from .. import golden
from .bench import run_stream_bench
from .traffic import Check, Expect, Phase, Traffic

__all__ = ["stimulus", "expected", "QuantizerTraffic", "test_quantizer"]


def _uniform(rng, lo, hi, size):
    """Uniform integers in [lo, hi] for ranges wider than int64."""
    span = hi - lo + 1
    if span <= 1 << 62:
        return (rng.integers(0, span, size=size, dtype=np.int64).astype(object) + lo)
    words = (span.bit_length() + 63) // 64 + 1
    raw = np.zeros(size, dtype=object)
    for _ in range(words):
        raw = (raw << 64) | rng.integers(0, 1 << 63, size=size, dtype=np.int64).astype(object)
    return raw % span + lo


def _scale_shape(q, beats):
    return (beats, q.lanes) if q.per_lane else (beats,)


def stimulus(q, beats, rng):
    """Input fields for ``beats`` beats of the Quantizer ``q``: a dict of int arrays.

    Mixes uniform values, extremes, tie-makers (x * M an odd multiple of 2**(S-1)) and
    multiplier/shift pairs that land the result near the output range, so every rounding
    and saturation branch is exercised.
    """
    lanes = q.lanes
    in_lo, in_hi = golden._intarray.int_range(q.in_width, q.in_signed)
    out_lo, out_hi = golden._intarray.int_range(q.out_width, q.out_signed)
    shape = _scale_shape(q, beats)
    if q.runtime_scale:
        m_hi = (1 << q.mult_width) - 1
        if q.tflite:
            mult = _uniform(rng, 1 << 30, m_hi, shape)
            shift = rng.integers(-31, 1, size=shape).astype(object)
            left = rng.random(shape) < 0.1
            shift[left] = rng.integers(1, 31, size=int(left.sum()))
        else:
            mult = _uniform(rng, 0, m_hi, shape)
            shift = rng.integers(0, 1 << q.shift_width, size=shape).astype(object)
            # Shifts that bring |x * M| near the output range, where rounding matters.
            useful = rng.random(shape) < 0.6
            target = q.in_width + np.array([int(m).bit_length() for m in mult.flat],
                                           dtype=object).reshape(shape) - q.out_width
            nudged = np.clip(target + rng.integers(-3, 4, size=shape), 0,
                             (1 << q.shift_width) - 1)
            shift = np.where(useful, nudged, shift)
        corner = rng.random(shape) < 0.05
        mult = np.where(corner, rng.choice(np.array([0, 1, m_hi], dtype=object), size=shape),
                        mult)
        zero = rng.integers(out_lo, out_hi + 1, size=shape).astype(object)
    else:
        def const(v):
            return np.broadcast_to(np.array(v, dtype=object), shape).copy()
        mult, shift, zero = const(q.multiplier), const(q.shift), const(q.zero_point)

    x = _uniform(rng, in_lo, in_hi, (beats, lanes))
    kind = rng.random((beats, lanes))
    corners = np.array(sorted({in_lo, in_hi, 0, min(1, in_hi), max(-1, in_lo)}), dtype=object)
    x = np.where(kind < 0.1, rng.choice(corners, size=(beats, lanes)), x)
    if not q.tflite:
        _make_ties(q, rng, x, mult, shift, np.nonzero(rng.random(beats) < 0.25)[0])
    if q.runtime_scale:
        fields = {"data": x, "multiplier": mult, "shift": shift, "zero_point": zero}
    else:
        fields = {"data": x}
    return fields, {"multiplier": mult, "shift": shift, "zero_point": zero}


def _make_ties(q, rng, x, mult, shift, beats):
    """Turn ``beats`` into exact ties: x * M an odd multiple of 2**(S-1).

    With x = odd * 2**k and M = odd' * 2**t that needs k + t = S - 1. A wide constant
    scale may leave no such x in range (then the beat stays random); a run-time M is
    given the trailing zeros it needs.
    """
    in_lo, in_hi = golden._intarray.int_range(q.in_width, q.in_signed)
    magnitude_bits = q.in_width - 1 if q.in_signed else q.in_width
    for b in beats:
        for group in (range(q.lanes) if q.per_lane else [None]):
            where = (b, group) if q.per_lane else (b,)
            m, s = int(mult[where]), int(shift[where])
            if s == 0:
                continue
            if q.runtime_scale:
                k = int(rng.integers(0, min(s, magnitude_bits)))
                t = s - 1 - k
                if t >= q.mult_width:
                    continue
                mult[where] = m = ((m >> t) | 1) << t
            elif m == 0:
                continue
            k = s - 1 - ((m & -m).bit_length() - 1)
            if not 0 <= k < magnitude_bits:
                continue
            for lane in (range(q.lanes) if group is None else [group]):
                odd = int(rng.integers(0, 1 << max(0, magnitude_bits - k - 1))) * 2 + 1
                value = odd << k
                value = -value if in_lo < 0 and rng.random() < 0.5 else value
                if in_lo <= value <= in_hi:
                    x[b, lane] = value


def expected(q, fields, scale, golden_overrides=None):
    """What the Quantizer must output for ``fields``: shape ``(beats, lanes)``."""
    x = fields["data"]
    beats = len(x)

    def lanes(v):
        return v if q.per_lane else v[:, None]

    m, s, z = lanes(scale["multiplier"]), lanes(scale["shift"]), lanes(scale["zero_point"])
    if q.tflite:
        return golden.requantize_tflite(x, m, s, zero_point=z, in_width=q.in_width,
                                        out_width=q.out_width, out_signed=q.out_signed,
                                        single_rounding=q.tflite == "single")
    kwargs = dict(zero_point=z, in_width=q.in_width, in_signed=q.in_signed,
                  mult_width=q.mult_width, out_width=q.out_width, out_signed=q.out_signed,
                  rounding=q.rounding, saturation=q.saturation)
    kwargs.update(golden_overrides or {})
    if kwargs["rounding"] == "stochastic":
        kwargs["random"] = golden.lfsr_values(q.lfsr_seed, q.lanes, beats)
    return golden.quantize(x, m, s, **kwargs)


class QuantizerTraffic(Traffic):
    """One output beat per input beat, every lane compared with the golden model."""

    name = "quantizer"

    def __init__(self, bench):
        super().__init__(bench)
        self.beats = max(1, -(-bench.config["vectors"] // bench.params.lanes))

    def interrupted(self):
        return self._phase(max(4, self.beats // 4))

    def checked(self):
        return self._phase(self.beats)

    def _phase(self, beats):
        q = self.bench.params
        fields, scale = stimulus(q, beats, self.bench.rng)
        want = expected(q, fields, scale, self.bench.config.get("golden"))
        check = Check(np.asarray(want).reshape(beats, q.lanes), {"x": fields["data"], **scale})
        return Phase({"i": fields}, {"o": Expect(beats, [check], per_input=True)},
                     timeout_beats=beats)


@cocotb.test()
async def test_quantizer(dut):
    await run_stream_bench(dut, QuantizerTraffic)
