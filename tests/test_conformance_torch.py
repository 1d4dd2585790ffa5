"""qdp against PyTorch's quantization: quantize_per_tensor, fake quantize, MinMaxObserver.

What PyTorch (CPU, 2.x) computes, from aten/src/ATen/native/quantized and
torch/ao/quantization/observer.py, and confirmed by the tests below:

* ``torch.quantize_per_tensor(x, scale, z, dtype)``: ``inv = float32(1) / float32(scale)``
  and ``q = clamp(nearbyint(z + x * inv))`` in float32 -- the zero point is added *before*
  rounding, the seeds' ``round(f / s + z)`` (qdp's :func:`zeropoint_quantize`). The 8-bit
  dtypes go through FBGEMM, which fuses ``x * inv + z`` into one FMA; qint32 rounds the
  product and the sum separately. Either way the only difference from the exact rational
  ``round(x / scale + z)`` is float32 error, at most ``2**-22 * (|x/scale| + |z|)``.
* ``torch.fake_quantize_per_tensor_affine(x, scale, z, qmin, qmax)``: ``q = clamp(z +
  nearbyint(x * inv))`` -- the zero point is added *after* rounding, like ONNX and like
  qdp's Quantizer hardware -- then ``(q - z) * scale`` in float32. Float error: at most
  ``(2**-23 + 2**-47) * |x/scale|`` (the rounded reciprocal, then the rounded product).
* So the two PyTorch functions disagree with each other on exact ties with an odd zero
  point (``x/scale = 0.5, z = 1``: 2 vs 1). Both round half to even.
* ``MinMaxObserver.calculate_qparams``: float32 arithmetic, reproduced bit for bit by
  :func:`qdp.golden.calibrate_minmax`.

With power-of-two scales every float operation above is exact (for qint32 while
``|x/scale + z| < 2**24``), and qdp matches PyTorch bit for bit, ties included. With other scales the tests count the differences and check
each against the float error bound. Run with ``-s -n 0`` to see the counts.
"""

from fractions import Fraction
import math

import numpy as np
import pytest

from conftest import require
from qdp.golden import (calibrate_minmax, quantize, round_div, saturate,
                        zeropoint_dequantize, zeropoint_quantize)

try:
    import torch
except ImportError:         # the module still imports: each test then skips, or fails in CI
    torch = None

pytestmark = pytest.mark.filterwarnings(
    "ignore:torch.quantize_per_tensor.*:UserWarning")


@pytest.fixture(autouse=True, scope="module")
def _torch():
    """Every test here needs PyTorch: skipped without it, except in CI (which installs the
    optional 'torch' extra and must run them), where a missing torch fails each test."""
    require("this PyTorch conformance test", [] if torch is not None else ["torch"],
            " (the optional 'torch' extra: pip install \"qdp[torch]\")")
    torch.set_num_threads(1)        # tests run two workers on two cores


#: torch dtype name (an attribute of ``torch``) -> width, signedness.
DTYPES = {
    "quint8": (8, False),
    "qint8": (8, True),
    "qint32": (32, True),
}
FRAC = 8


def int_range(width, signed):
    return (-(1 << (width - 1)), (1 << (width - 1)) - 1) if signed else (0, (1 << width) - 1)


def torch_quantize(x, scale, zero_point, dtype):
    q = torch.quantize_per_tensor(torch.from_numpy(np.asarray(x, dtype=np.float32)),
                                  float(scale), int(zero_point), getattr(torch, dtype))
    return q.int_repr().numpy().astype(np.int64)


def torch_fake_quantize(x, scale, zero_point, qmin, qmax):
    return torch.fake_quantize_per_tensor_affine(
        torch.from_numpy(np.asarray(x, dtype=np.float32)), float(scale), int(zero_point),
        qmin, qmax).numpy()


def ratio_arrays(values):
    pairs = [float(v).as_integer_ratio() for v in np.asarray(values, dtype=np.float64).flat]
    num = np.array([p[0] for p in pairs], dtype=object).reshape(np.shape(values))
    den = np.array([p[1] for p in pairs], dtype=object).reshape(np.shape(values))
    return num, den


def within_of_tie(w, bound):
    """True if the exact rational ``w`` is within ``bound`` of a half-integer."""
    return abs(w - (math.floor(w) + Fraction(1, 2))) <= bound


def grid(rng, n):
    # Every small multiple of 2**-8 (ties at every power-of-two scale) and random ones.
    x_int = np.concatenate([np.arange(-1024, 1024), rng.integers(-(1 << 15), 1 << 15, n)])
    return x_int, np.ldexp(x_int.astype(np.float32), -FRAC)


# --- quantize_per_tensor ------------------------------------------------------------------

@pytest.mark.parametrize("dtype", list(DTYPES))
def test_quantize_per_tensor_power_of_two_scale_is_exact(dtype):
    width, signed = DTYPES[dtype]
    lo, hi = int_range(width, signed)
    rng = np.random.default_rng(1)
    x_int, x = grid(rng, 1000)
    # qint32 adds z in float32 too, exact only while |x/scale + z| < 2**24.
    zero_points = {lo, lo + 1, 0, 1, 3, 100, hi} if width == 8 else {-1001, -1, 0, 1, 3, 100}
    for k in (-3, 0, 1, 2, 5, 7, 8):
        scale = 2.0 ** -k
        for zero_point in sorted(zero_points):
            got = torch_quantize(x, scale, zero_point, dtype)
            seeds = zeropoint_quantize(x, scale, zero_point, bits=width, signed=signed)
            assert np.array_equal(got, seeds), (dtype, k, zero_point)
            # The hardware adds the zero point after rounding: the same except on a tie
            # with an odd zero point, where it differs by exactly 1.
            hw = quantize(x_int, 1, FRAC - k, zero_point=zero_point, in_width=16,
                          mult_width=1, out_width=width, out_signed=signed)
            v2 = x_int * 2.0 ** (k - FRAC) * 2          # 2 * x/scale, exact in float64
            tie = (v2 % 2 == 1) & (zero_point % 2 == 1)
            tie &= (np.rint(v2 / 2) + zero_point >= lo) & (np.rint(v2 / 2) + zero_point <= hi)
            differ = got != hw
            assert np.array_equal(differ & ~tie, np.zeros_like(differ)), (dtype, k, zero_point)
            assert np.all(np.abs(got - hw)[differ] == 1)


def test_zero_point_order_at_a_tie():
    # The documented disagreement, on the smallest example.
    x = np.array([0.5, 1.5, -0.5], dtype=np.float32)
    assert list(torch_quantize(x, 1.0, 1, "qint8")) == [2, 2, 0]       # round(v + z)
    assert list(zeropoint_quantize(x, 1.0, 1, signed=True)) == [2, 2, 0]
    fake = torch_fake_quantize(x, 1.0, 1, -128, 127)                   # round(v) + z
    assert list(fake) == [0.0, 2.0, 0.0]
    assert list(quantize(np.array([1, 3, -1]), 1, 1, zero_point=1)) == [1, 3, 1]


def _exact_round_plus_z(x, scale, zero_point, width, signed):
    """round_half_even(x / scale + z) exactly, clipped (the seeds' order)."""
    xn, xd = ratio_arrays(x)
    sn, sd = float(scale).as_integer_ratio()
    q = round_div(xn * sd + zero_point * xd * sn, xd * sn, "half_even")
    return saturate(q, width=width, signed=signed, saturation="sat").astype(np.int64)


@pytest.mark.parametrize("dtype", list(DTYPES))
def test_quantize_per_tensor_float32_scales_counted(dtype):
    width, signed = DTYPES[dtype]
    lo, hi = int_range(width, signed)
    qlo, qhi = (lo, hi) if width == 8 else (-(1 << 15), 1 << 15)
    rng = np.random.default_rng(2)
    counts = {"uniform": [0, 0], "near-tie": [0, 0]}
    for _ in range(40):
        scale = float(np.float32(10.0 ** rng.uniform(-4, 0)))
        zero_point = int(rng.integers(max(lo, -1000), min(hi, 1000), endpoint=True))
        uniform = (rng.uniform(qlo - zero_point, qhi - zero_point, 2500) * scale)
        k = rng.integers(qlo - zero_point, qhi - zero_point, 500)
        sets = [uniform.astype(np.float32), ((k + 0.5) * scale).astype(np.float32)]
        for name, x in zip(counts, sets):
            got = torch_quantize(x, scale, zero_point, dtype)
            want = zeropoint_quantize(x, scale, zero_point, bits=width, signed=signed)
            # An independent check of the golden helper on the same values.
            assert np.array_equal(want, _exact_round_plus_z(x, scale, zero_point, width,
                                                            signed))
            bad = np.flatnonzero(got != want)
            for i in bad:
                w = Fraction(float(x[i])) / Fraction(scale) + zero_point
                assert abs(int(got[i]) - int(want[i])) == 1
                bound = Fraction(1, 1 << 22) * (abs(w - zero_point) + abs(zero_point))
                assert within_of_tie(w, bound), (float(w), int(got[i]), int(want[i]))
            counts[name][0] += bad.size
            counts[name][1] += x.size
    for name, (bad, total) in counts.items():
        print(f"\ntorch.quantize_per_tensor {dtype}, {name} inputs: {bad} of {total} differ "
              f"from exact round(x/scale + z) (each by 1, each within "
              f"2**-22*(|x/scale|+|z|) of a tie)")
    assert counts["uniform"][0] <= counts["uniform"][1] // 1000


# --- fake_quantize_per_tensor_affine -------------------------------------------------------

@pytest.mark.parametrize("qrange", [(-128, 127), (0, 255), (-8, 7)])
def test_fake_quantize_power_of_two_scale_is_exact(qrange):
    qmin, qmax = qrange
    width = (qmax - qmin + 1).bit_length() - 1
    signed = qmin < 0
    rng = np.random.default_rng(3)
    x_int, x = grid(rng, 1000)
    for k in (-3, 0, 1, 2, 5, 7, 8):
        scale = 2.0 ** -k
        for zero_point in sorted(z for z in {qmin, 0, 1, 3, qmax} if qmin <= z <= qmax):
            got = torch_fake_quantize(x, scale, zero_point, qmin, qmax)
            q = quantize(x_int, 1, FRAC - k, zero_point=zero_point, in_width=16,
                         mult_width=1, out_width=width, out_signed=signed)
            want = zeropoint_dequantize(q, scale, zero_point).astype(np.float32)
            assert np.array_equal(got, want), (qrange, k, zero_point)


def test_fake_quantize_float32_scales_counted():
    rng = np.random.default_rng(4)
    counts = {"uniform": [0, 0], "near-tie": [0, 0]}
    for _ in range(40):
        scale = float(np.float32(10.0 ** rng.uniform(-4, 0)))
        zero_point = int(rng.integers(-128, 127, endpoint=True))
        uniform = rng.uniform(-128 - zero_point, 127 - zero_point, 2500) * scale
        k = rng.integers(-128 - zero_point, 127 - zero_point, 500)
        sets = [uniform.astype(np.float32), ((k + 0.5) * scale).astype(np.float32)]
        for name, x in zip(counts, sets):
            got = torch_fake_quantize(x, scale, zero_point, -128, 127)
            # qdp: exact round(x / scale) + z, clipped; dequantized as a float32 product.
            xn, xd = ratio_arrays(x)
            sn, sd = scale.as_integer_ratio()
            q = saturate(round_div(xn * sd, xd * sn, "half_even") + zero_point, width=8,
                         signed=True, saturation="sat").astype(np.int64)
            want = zeropoint_dequantize(q, scale, zero_point).astype(np.float32)
            bad = np.flatnonzero(got != want)
            for i in bad:
                v = Fraction(float(x[i])) / Fraction(scale)
                # Recover torch's integer (the float32 product is within 2**-24 of it) and
                # check it is one step from qdp's.
                q_torch = int(np.rint(float(got[i]) / scale)) + zero_point
                assert np.float32((q_torch - zero_point) * scale) == got[i]
                assert abs(q_torch - int(q[i])) == 1
                bound = (Fraction(1, 1 << 23) + Fraction(1, 1 << 47)) * abs(v)
                assert within_of_tie(v, bound), float(v)
            counts[name][0] += bad.size
            counts[name][1] += x.size
    for name, (bad, total) in counts.items():
        print(f"\ntorch.fake_quantize_per_tensor_affine int8, {name} inputs: {bad} of "
              f"{total} differ from exact round(x/scale) + z (each by one step, each within "
              f"(2**-23+2**-47)*|x/scale| of a tie)")
    assert counts["uniform"][0] <= counts["uniform"][1] // 1000


# --- MinMaxObserver ------------------------------------------------------------------------

#: qscheme and dtype (attribute names of ``torch``), symmetric, signed.
OBSERVERS = {
    "affine-quint8": ("per_tensor_affine", "quint8", False, False),
    "affine-qint8": ("per_tensor_affine", "qint8", False, True),
    "symmetric-qint8": ("per_tensor_symmetric", "qint8", True, True),
    "symmetric-quint8": ("per_tensor_symmetric", "quint8", True, False),
}


def observe(x, qscheme, dtype):
    """MinMaxObserver's ``(scale, zero_point)`` for ``x``; ``qscheme`` and ``dtype`` name
    attributes of ``torch``."""
    observer = torch.ao.quantization.MinMaxObserver(dtype=getattr(torch, dtype),
                                                    qscheme=getattr(torch, qscheme))
    observer(torch.from_numpy(np.asarray(x, dtype=np.float32)))
    scale, zero_point = observer.calculate_qparams()
    return float(scale.item()), int(zero_point.item())


def calibration_tensors(rng):
    yield np.array([-1.0, 3.0])
    yield np.array([0.0, 0.0, 0.0])
    yield np.array([2.5])
    yield np.array([-7.25])
    yield np.array([1e-30, 2e-30])                      # below float32 eps: scale = eps
    yield np.array([-1e38, 1e38])
    for _ in range(300):
        size = int(rng.integers(1, 200))
        loc = rng.uniform(-10, 10) * 10.0 ** rng.uniform(-6, 3)
        spread = 10.0 ** rng.uniform(-6, 3)
        yield rng.normal(loc, spread, size)
        yield np.abs(rng.normal(0, spread, size))           # ReLU output


@pytest.mark.parametrize("name", list(OBSERVERS))
def test_minmax_observer_is_reproduced_bit_for_bit(name):
    qscheme, dtype, symmetric, signed = OBSERVERS[name]
    rng = np.random.default_rng(5)
    for x in calibration_tensors(rng):
        want = observe(x, qscheme, dtype)
        got = calibrate_minmax(x, symmetric=symmetric, bits=8, signed=signed)
        assert got == want, (name, x[:4], got, want)


def test_calibration_range_overflowing_float32_is_refused():
    with pytest.raises(ValueError, match="x"):
        calibrate_minmax(np.array([-3e38, 3e38]))


def test_calibration_default_signedness_follows_the_scheme():
    x = np.array([-1.0, 3.0])
    assert calibrate_minmax(x) == observe(x, "per_tensor_affine", "quint8")
    assert calibrate_minmax(x, symmetric=True) == observe(x, "per_tensor_symmetric", "qint8")


def test_calibrated_quantization_round_trip():
    """The qparams from calibrate_minmax drive torch and the golden helper alike; the
    quantized values agree except near ties (counted with the quantize_per_tensor bound)."""
    rng = np.random.default_rng(6)
    total = mismatches = 0
    for _ in range(40):
        x = rng.normal(rng.uniform(-1, 1), 10.0 ** rng.uniform(-3, 2), 2000).astype(np.float32)
        scale, zero_point = calibrate_minmax(x)
        got = torch_quantize(x, scale, zero_point, "quint8")
        want = zeropoint_quantize(x, scale, zero_point)
        bad = np.flatnonzero(got != want)
        for i in bad:
            w = Fraction(float(x[i])) / Fraction(scale) + zero_point
            assert abs(int(got[i]) - int(want[i])) == 1
            assert within_of_tie(w, Fraction(1, 1 << 22) * (abs(w) + 2 * abs(zero_point)))
        # Calibrated so that nothing clips: the exact, unclipped round(x/scale + z) of
        # every element (Python's Fraction rounding, half to even) lies in [0, 255], so the
        # clip in zeropoint_quantize changed nothing.
        unclipped = np.array([round(Fraction(float(v)) / Fraction(scale) + zero_point)
                              for v in x])
        assert 0 <= unclipped.min() and unclipped.max() <= 255, \
            (scale, zero_point, int(unclipped.min()), int(unclipped.max()))
        assert np.array_equal(want, unclipped)
        mismatches += bad.size
        total += x.size
    print(f"\nMinMaxObserver-calibrated quint8: {mismatches} of {total} values differ "
          f"between torch.quantize_per_tensor and zeropoint_quantize")
    assert mismatches <= total // 1000
