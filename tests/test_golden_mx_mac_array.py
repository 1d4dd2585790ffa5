"""The MX dot product (:func:`qdp.golden.mx_matmul`) against exact Fraction sums of the
elements as ``ml_dtypes`` decodes them, summation-order independence, and the IEEE
special cases."""

from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest

from qdp.golden import floats, mx_matmul, mx_quantize
from qdp.golden.mx import MX_ELEMENTS

DECODE = {"fp8_e4m3": ml_dtypes.float8_e4m3fn, "fp8_e5m2": ml_dtypes.float8_e5m2,
          "fp6_e3m2": ml_dtypes.float6_e3m2fn, "fp6_e2m3": ml_dtypes.float6_e2m3fn,
          "fp4_e2m1": ml_dtypes.float4_e2m1fn}


def decoded(code, element):
    """One element code as a float, decoded independently of qdp."""
    if element == "int8":
        return int(np.uint8(code).view(np.int8)) / 64
    return float(np.array([code], np.uint8).view(DECODE[element])[0])


def value(code, element):
    return Fraction(decoded(code, element))


def reference(a, sa, b, sb, element, block=32):
    m, k = a.shape
    n = b.shape[1]
    out = np.zeros((m, n), np.uint32)
    for i in range(m):
        for j in range(n):
            total = sum(value(a[i, t], element) * value(b[t, j], element)
                        * Fraction(2) ** (int(sa[i, t // block]) + int(sb[t // block, j])
                                          - 254) for t in range(k))
            out[i, j] = floats.from_fraction(total, floats.FP32) if total else 0
    return out


def operands(rng, element, m, k, n):
    """MX operands quantized from data spanning many scales, plus raw random codes."""
    width = MX_ELEMENTS[element].width
    x = (rng.standard_normal((m, k)) * 2.0 ** rng.integers(-20, 20, (m, 1))).astype(np.float32)
    y = (rng.standard_normal((n, k)) * 2.0 ** rng.integers(-20, 20, (n, 1))).astype(np.float32)
    a, sa = mx_quantize(x, element)
    bt, sbt = mx_quantize(y, element)
    a = a.reshape(m, k)
    b = bt.reshape(n, k).T.copy()
    sa, sb = sa.reshape(m, k // 32), sbt.reshape(n, k // 32).T.copy()
    finite = np.isfinite([decoded(c, element) for c in range(1 << width)])
    raw = rng.choice(np.flatnonzero(finite), (m, k)).astype(np.uint8)
    a[0] = raw[0]                                  # one row of arbitrary finite codes
    return a, sa, b, sb


@pytest.mark.parametrize("element", sorted(MX_ELEMENTS))
def test_equals_the_exact_sum_rounded_once(element):
    rng = np.random.default_rng(len(element))
    a, sa, b, sb = operands(rng, element, 3, 96, 4)
    got = mx_matmul(a, sa, b, sb, element)
    assert (got.view(np.uint32) == reference(a, sa, b, sb, element)).all()


@pytest.mark.parametrize("element", ("int8", "fp8_e4m3", "fp8_e5m2"))
def test_does_not_depend_on_the_order_of_blocks(element):
    rng = np.random.default_rng(7)
    a, sa, b, sb = operands(rng, element, 4, 256, 4)
    order = rng.permutation(8)
    k = (order[:, None] * 32 + np.arange(32)).reshape(-1)
    got = mx_matmul(a[:, k], sa[:, order], b[k], sb[order], element)
    assert (got.view(np.uint32) == mx_matmul(a, sa, b, sb, element).view(np.uint32)).all()


def test_cancellation_and_the_scale_range_ends():
    """A huge product cancelled by its negative leaves the tiny one exactly; scales 0
    and 254 give 2**-254 and 2**254 times the element products."""
    one, big = 0x38, 0x7E                     # e4m3 1.0 and 448
    a = np.array([[big, big | 0x80, one] + [0] * 29], np.uint8)
    b = np.array([[big], [big]] + [[one]] + [[0]] * 29, np.uint8)
    for sa, sb, want in ((200, 140, Fraction(2) ** (340 - 254)), (0, 0, Fraction(2) ** -254),
                         (254, 254, Fraction(2) ** 254)):
        got = mx_matmul(a, np.array([[sa]], np.uint8), b, np.array([[sb]], np.uint8),
                        "fp8_e4m3")
        assert got.view(np.uint32)[0, 0] == floats.from_fraction(want, floats.FP32)


def test_specials():
    inf, ninf, nan, one, zero = 0x7C, 0xFC, 0x7E, 0x3C, 0x00        # fp8_e5m2
    def run(a_row, b_col, sa=127, sb=127):
        a = np.array([a_row + [zero] * (32 - len(a_row))], np.uint8)
        b = np.array([[v] for v in b_col + [zero] * (32 - len(b_col))], np.uint8)
        return mx_matmul(a, np.array([[sa]], np.uint8), b, np.array([[sb]], np.uint8),
                         "fp8_e5m2")[0, 0]
    assert run([inf], [one]) == np.inf and run([inf], [ninf]) == -np.inf
    assert np.isnan(run([inf], [zero])) and np.isnan(run([inf, inf], [one, ninf]))
    assert np.isnan(run([nan], [one])) and np.isnan(run([one], [one], sa=0xFF))
    assert run([0x7B], [0x7B], 254, 254) == np.inf                  # overflow
    assert run([one | 0x80], [one]) == -1.0 and not np.signbit(run([one], [zero]))


@pytest.mark.parametrize("call, match", [
    (lambda: mx_matmul(np.zeros((2, 32)), np.zeros((2, 1)), np.zeros((32, 2)),
                       np.zeros((1, 2)), "fp5"), "element: unknown"),
    (lambda: mx_matmul(np.zeros((2, 30)), np.zeros((2, 1)), np.zeros((30, 2)),
                       np.zeros((1, 2)), "int8"), "a_codes: K = 30"),
    (lambda: mx_matmul(np.zeros((2, 32)), np.zeros((2, 2)), np.zeros((32, 2)),
                       np.zeros((1, 2)), "int8"), "a_scales: expected shape"),
    (lambda: mx_matmul(np.zeros((2, 32)), np.zeros((2, 1)), np.zeros((64, 2)),
                       np.zeros((2, 2)), "int8"), "b_codes: K = 64"),
])
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()
