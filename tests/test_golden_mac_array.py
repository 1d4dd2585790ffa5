"""The MAC-array and quantized-linear golden models: against an int64 NumPy matmul with an
explicit wrap, a per-step saturating reference written here, ONNX ``MatMulInteger``
(the ONNX reference, exact; ONNX Runtime, exact except for its known uint8 x int8
saturation on AVX2-only x86, which is counted) and ``QLinearMatMul`` (float
requantization: the differences are counted and bounded).

What the runtimes accept (found by these tests, ORT 1.23 / onnx 1.19+): ORT's
``MatMulInteger`` takes a per-column ``b_zero_point`` but only a scalar
``a_zero_point``; the ONNX reference takes a per-row ``a_zero_point`` only as shape
(M, 1) (its (M,) broadcasts against the wrong axis), so per-row A zero points are checked
against the reference with that shape.

onnxruntime's uint8 x int8 kernel on x86 CPUs without AVX-512 VNNI / AVX-VNNI saturates
the int16 sum of neighbouring products (:mod:`qdp.build_scripts.ort_probe`). The probe's
verdict (in pytest's header) says which arithmetic this CPU's onnxruntime computes; the
tests check onnxruntime against exactly that, and qdp against the ONNX reference always.

Run with ``-s -n 0`` to see the QLinearMatMul difference counts.
"""

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import onnx
import onnxruntime as ort
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

from qdp.build_scripts.ort_probe import probe
from qdp.golden import multiplier_from_scale, quantize
from qdp.golden.mac_array import matmul_int
from qdp.golden.qlinear import qlinear

OPSET = 21
# ORT 1.23's CPU provider implements QLinearMatMul up to opset 20 (not 21's version).
QLINEAR_OPSET = 20
TYPES = {"uint8": (TensorProto.UINT8, np.uint8), "int8": (TensorProto.INT8, np.int8)}


def wrap(x, width):
    """Two's complement wrap of int64 values, written independently of qdp."""
    x = np.asarray(x, dtype=np.int64)
    mask = (1 << width) - 1
    u = x & mask
    return np.where(u >> (width - 1) & 1, u - (1 << width), u)


def saturating_reference(a, b, a_zero, b_zero, bias, width):
    """Plain-Python saturating accumulator, one partial sum at a time, in k order."""
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    m, k = len(a), len(a[0])
    n = len(b[0])
    out = np.zeros((m, n), dtype=np.int64)
    for i in range(m):
        for j in range(n):
            acc = 0
            for t in range(k):
                acc = min(hi, max(lo, acc + (int(a[i][t]) - int(a_zero[i])) *
                                  (int(b[t][j]) - int(b_zero[j]))))
            out[i, j] = min(hi, max(lo, acc + int(bias[j])))
    return out


# --- against NumPy ------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(1, 1, 1), (1, 8, 1), (8, 1, 8), (3, 100, 5), (16, 1000, 16)])
@pytest.mark.parametrize("signs", [(True, True), (False, True), (False, False)])
@pytest.mark.parametrize("acc_width", [16, 20, 32, 48])
def test_wrap_equals_numpy_int64(shape, signs, acc_width):
    m, k, n = shape
    rng = np.random.default_rng(m * 1000 + k + n + acc_width)
    lo_a, hi_a = (-128, 127) if signs[0] else (0, 255)
    lo_b, hi_b = (-128, 127) if signs[1] else (0, 255)
    a = rng.integers(lo_a, hi_a + 1, size=(m, k))
    b = rng.integers(lo_b, hi_b + 1, size=(k, n))
    a_zero = rng.integers(lo_a, hi_a + 1, size=m)
    b_zero = rng.integers(lo_b, hi_b + 1, size=n)
    bias = rng.integers(-(1 << (acc_width - 1)), 1 << (acc_width - 1), size=n)
    exact = (a - a_zero[:, None]) @ (b - b_zero[None, :]) + bias
    got = matmul_int(a, b, a_zero=a_zero, b_zero=b_zero, bias=bias, acc_width=acc_width)
    assert got.dtype == np.int64
    assert np.array_equal(got, wrap(exact, acc_width))


def test_extremes_overflow_int16_both_ways():
    """All -128 times all -128: 16384 per step, so K = 2 already overflows int16."""
    a = np.full((4, 2), -128)
    b = np.full((2, 4), -128)
    assert np.all(matmul_int(a, b, acc_width=16) == wrap(2 * 16384, 16))
    assert np.all(matmul_int(a, b, acc_width=16, saturate=True) == 32767)
    a3, b3 = np.full((4, 3), -128), np.full((3, 4), 127)         # 3 * -16256 < -32768
    assert np.all(matmul_int(a3, b3, acc_width=16, saturate=True) == -32768)
    assert np.all(matmul_int(a3, b3, acc_width=16) == wrap(3 * -16256, 16))
    assert np.all(matmul_int(a, b, acc_width=17) == 32768)


def test_saturation_is_per_partial_sum_not_of_the_final_sum():
    """+20000, +20000, -20000 at 16 bits: the exact sum 20000 fits, but the running sum
    clips at 32767 and then walks back to 12767. The order of k matters."""
    a = np.array([[1, 1, -1]])
    b = np.array([[20000], [20000], [20000]])
    assert matmul_int(a, b, acc_width=16, saturate=True)[0, 0] == 32767 - 20000
    assert matmul_int(a[:, ::-1], b[::-1], acc_width=16, saturate=True)[0, 0] == 20000
    assert matmul_int(a, b, acc_width=16)[0, 0] == 20000        # wrap: order-free


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_saturate_equals_reference(data):
    m = data.draw(st.integers(1, 4))
    k = data.draw(st.integers(1, 12))
    n = data.draw(st.integers(1, 4))
    width = data.draw(st.sampled_from([8, 12, 16, 20]))
    ints = st.integers(-128, 127)
    a = data.draw(st.lists(st.lists(ints, min_size=k, max_size=k), min_size=m, max_size=m))
    b = data.draw(st.lists(st.lists(ints, min_size=n, max_size=n), min_size=k, max_size=k))
    a_zero = data.draw(st.lists(ints, min_size=m, max_size=m))
    b_zero = data.draw(st.lists(ints, min_size=n, max_size=n))
    lim = 1 << (width - 1)
    bias = data.draw(st.lists(st.integers(-lim, lim - 1), min_size=n, max_size=n))
    got = matmul_int(a, b, a_zero=a_zero, b_zero=b_zero, bias=bias, acc_width=width,
                     saturate=True)
    assert np.array_equal(got, saturating_reference(a, b, a_zero, b_zero, bias, width))
    exact = (np.array(a) - np.array(a_zero)[:, None]) @ (np.array(b) - np.array(b_zero)) \
        + np.array(bias)
    assert np.array_equal(matmul_int(a, b, a_zero=a_zero, b_zero=b_zero, bias=bias,
                                     acc_width=width), wrap(exact, width))


def test_wide_accumulator_is_exact():
    """acc_width 64 with operands that overflow int64 products: Python ints throughout."""
    big = (1 << 40)
    a = np.array([[big, big]], dtype=object)
    b = np.array([[big], [big]], dtype=object)
    got = matmul_int(a, b, acc_width=64)
    want = (2 * big * big) % (1 << 64)
    want = want - (1 << 64) if want >= 1 << 63 else want
    assert int(got[0, 0]) == want
    assert int(matmul_int(a, b, acc_width=64, saturate=True)[0, 0]) == (1 << 63) - 1


def test_scalar_zero_points_equal_vectors():
    rng = np.random.default_rng(3)
    a = rng.integers(0, 256, size=(5, 9))
    b = rng.integers(-128, 128, size=(9, 4))
    assert np.array_equal(matmul_int(a, b, a_zero=7, b_zero=-3),
                          matmul_int(a, b, a_zero=[7] * 5, b_zero=[-3] * 4))


# --- against ONNX MatMulInteger -----------------------------------------------------------

def _model(nodes, inputs, outputs, opset=OPSET):
    graph = helper.make_graph(nodes, "g", inputs, outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 10
    onnx.checker.check_model(model)
    return model


def matmul_integer_model(ta, tb, a_zero_shape, b_zero_shape):
    return _model(
        [helper.make_node("MatMulInteger", ["a", "b", "az", "bz"], ["y"])],
        [helper.make_tensor_value_info("a", TYPES[ta][0], [None, None]),
         helper.make_tensor_value_info("b", TYPES[tb][0], [None, None]),
         helper.make_tensor_value_info("az", TYPES[ta][0], a_zero_shape),
         helper.make_tensor_value_info("bz", TYPES[tb][0], b_zero_shape)],
        [helper.make_tensor_value_info("y", TensorProto.INT32, [None, None])])


def _ort(model, feeds):
    session = ort.InferenceSession(model.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def _run(runtime, model, feeds):
    if runtime == "reference":
        return ReferenceEvaluator(model).run(None, feeds)
    return _ort(model, feeds)


RUNTIMES = ["reference", "onnxruntime"]


def runtime_accumulator(runtime, a, b, a_zero, b_zero):
    """The int32 accumulator ``runtime`` computes for ``MatMulInteger(a, b)``: the
    definition, except for onnxruntime's uint8 x int8 product on a CPU where the probe
    found the known saturation."""
    if runtime == "onnxruntime" and a.dtype == np.uint8 and b.dtype == np.int8:
        return probe().matmul(a, b, a_zero=a_zero, b_zero=b_zero)
    return np.asarray(matmul_int(a, b, a_zero=a_zero, b_zero=b_zero), dtype=np.int64)


def _random(rng, ty, shape):
    info = np.iinfo(TYPES[ty][1])
    return rng.integers(info.min, info.max + 1, size=shape).astype(TYPES[ty][1])


@pytest.mark.parametrize("ta", ["uint8", "int8"])
@pytest.mark.parametrize("tb", ["uint8", "int8"])
@pytest.mark.parametrize("shape", [(1, 1, 1), (3, 5, 4), (8, 100, 8), (17, 1000, 9)])
def test_matmul_integer_against_reference_and_onnxruntime(ta, tb, shape):
    """Scalar A zero point, per-column B zero point: qdp equals the ONNX reference; ORT
    equals what the probe says it computes on this CPU (the definition, or for uint8 x
    int8 on AVX2-only x86 the pair-saturated product, whose differences are counted)."""
    m, k, n = shape
    rng = np.random.default_rng(k * 7 + m)
    a, b = _random(rng, ta, (m, k)), _random(rng, tb, (k, n))
    az, bz = _random(rng, ta, ()), _random(rng, tb, (n,))
    feeds = {"a": a, "b": b, "az": az, "bz": bz}
    model = matmul_integer_model(ta, tb, [], [n])
    want = matmul_int(a, b, a_zero=az, b_zero=bz)
    (ref,) = _run("reference", model, feeds)
    assert np.array_equal(ref.astype(np.int64), want)
    (got,) = _run("onnxruntime", model, feeds)
    assert np.array_equal(got.astype(np.int64),
                          runtime_accumulator("onnxruntime", a, b, az, bz))
    deviating = int(np.sum(got.astype(np.int64) != want))
    print(f"\nMatMulInteger {ta} x {tb} {shape}: onnxruntime differs from the definition in "
          f"{deviating} of {want.size} values")


@pytest.mark.parametrize("ta,tb", [("uint8", "int8"), ("int8", "int8"), ("uint8", "uint8")])
def test_onnx_reference_matmul_integer_per_row_exact(ta, tb):
    """The ONNX reference with per-row A zero points (shape (M, 1)) and per-column B."""
    m, k, n = 6, 33, 5
    rng = np.random.default_rng(11)
    a, b = _random(rng, ta, (m, k)), _random(rng, tb, (k, n))
    az, bz = _random(rng, ta, (m,)), _random(rng, tb, (n,))
    model = matmul_integer_model(ta, tb, [m, 1], [n])
    (y,) = ReferenceEvaluator(model).run(None, {"a": a, "b": b, "az": az.reshape(m, 1),
                                                "bz": bz})
    assert np.array_equal(y.astype(np.int64), matmul_int(a, b, a_zero=az, b_zero=bz))


def test_extremes_match_onnxruntime():
    """All -128, all 127, mixed: int32 accumulators at K = 1000 do not overflow."""
    k = 1000
    for fill_a, fill_b in ((-128, -128), (127, 127), (-128, 127)):
        a = np.full((4, k), fill_a, dtype=np.int8)
        b = np.full((k, 4), fill_b, dtype=np.int8)
        (y,) = _ort(matmul_integer_model("int8", "int8", [], [4]),
                    {"a": a, "b": b, "az": np.asarray(0, np.int8),
                     "bz": np.zeros(4, np.int8)})
        assert np.array_equal(y.astype(np.int64), matmul_int(a, b))


# --- against ONNX Runtime QLinearMatMul (float requantization) -----------------------------

def qlinear_matmul_model(per_column, n):
    bshape = [n] if per_column else []
    return _model(
        [helper.make_node("QLinearMatMul", ["a", "as", "az", "b", "bs", "bz", "ys", "yz"],
                          ["y"])],
        [helper.make_tensor_value_info("a", TensorProto.UINT8, [None, None]),
         helper.make_tensor_value_info("as", TensorProto.FLOAT, []),
         helper.make_tensor_value_info("az", TensorProto.UINT8, []),
         helper.make_tensor_value_info("b", TensorProto.INT8, [None, None]),
         helper.make_tensor_value_info("bs", TensorProto.FLOAT, bshape),
         helper.make_tensor_value_info("bz", TensorProto.INT8, bshape),
         helper.make_tensor_value_info("ys", TensorProto.FLOAT, []),
         helper.make_tensor_value_info("yz", TensorProto.UINT8, [])],
        # ORT implements y of A's type only (here uint8).
        [helper.make_tensor_value_info("y", TensorProto.UINT8, [None, None])],
        opset=QLINEAR_OPSET)


QLINEAR_CASES = [
    # (per_column, K, seed)
    (False, 64, 1), (False, 512, 2), (True, 64, 3), (True, 512, 4),
]


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("per_column,k,seed", QLINEAR_CASES)
def test_qlinear_against_qlinearmatmul(runtime, per_column, k, seed):
    """ORT requantizes ``acc * (a_scale * b_scale / y_scale)`` in float32 (the reference
    in float64); qdp rounds ``acc * M / 2**S`` exactly, with (M, S) =
    multiplier_from_scale(the float64 value of that ratio of float32s, 32-bit M).

    Measured bound: the outputs differ by at most 1, and only where the exact value
    ``acc * ratio`` lies within a float32 error margin of a half-integer (a near tie that
    float rounding pushes across). The counts are printed and asserted small. Where the
    runtime's accumulator is not the definition (onnxruntime's uint8 x int8 saturation on
    AVX2-only x86, :func:`runtime_accumulator`), qdp's requantization is applied to the
    runtime's accumulator, so every output is still compared; those are counted apart.
    """
    m, n = 64, 32
    rng = np.random.default_rng(seed)
    mismatched = total = saturated = 0
    for trial in range(8):
        a = rng.integers(0, 256, size=(m, k)).astype(np.uint8)
        b = rng.integers(-128, 128, size=(k, n)).astype(np.int8)
        az = np.asarray(rng.integers(0, 256), dtype=np.uint8)
        bz = (rng.integers(-8, 9, size=n) if per_column else
              np.asarray(rng.integers(-8, 9))).astype(np.int8)
        a_scale = np.float32(rng.uniform(0.005, 0.05))
        b_scale = (rng.uniform(0.001, 0.02, size=n) if per_column else
                   np.asarray(rng.uniform(0.001, 0.02))).astype(np.float32)
        # y_scale chosen so that the outputs spread over the int8 range without all clipping.
        acc = matmul_int(a, b, a_zero=az, b_zero=bz)
        spread = np.float32(np.std(acc.astype(np.float64)) * float(a_scale) *
                            float(np.mean(b_scale)) / 40)
        y_scale = np.float32(max(spread, 1e-6))
        yz = np.asarray(rng.integers(118, 139), dtype=np.uint8)
        (y,) = _run(runtime, qlinear_matmul_model(per_column, n),
                    {"a": a, "as": np.asarray(a_scale), "az": az, "b": b,
                     "bs": np.asarray(b_scale), "bz": bz, "ys": np.asarray(y_scale),
                     "yz": yz})
        acc_rt = runtime_accumulator(runtime, a, b, az, bz)
        ratios = np.broadcast_to(np.float64(a_scale) * b_scale.astype(np.float64) /
                                 np.float64(y_scale), (n,))
        mults, shifts = zip(*[multiplier_from_scale(float(r))[:2] for r in ratios])
        got = qlinear(a, b, a_zero=az, w_zero=bz, multiplier=list(mults), shift=list(shifts),
                      zero_point=int(yz), out_signed=False)
        requant = np.stack([quantize(acc_rt[:, j], mults[j], shifts[j], zero_point=int(yz),
                                     in_width=32, out_signed=False) for j in range(n)], axis=1)
        assert np.array_equal(requant[acc_rt == acc], got[acc_rt == acc])
        diff = requant - y.astype(np.int64)
        assert np.abs(diff).max() <= 1
        saturated += int(np.sum(acc_rt != acc))
        total += diff.size
        for i, j in np.argwhere(diff != 0):
            mismatched += 1
            # Exact value with qdp's (M, S); it must be within float32 reach of a tie.
            v = Fraction(int(acc_rt[i, j]) * mults[j], 1 << shifts[j])
            frac = v - (v.numerator // v.denominator)
            margin = abs(v) * Fraction(1, 1 << 21) + Fraction(1, 1 << 20)
            assert abs(frac - Fraction(1, 2)) <= margin, (i, j, float(v))
    print(f"\nQLinearMatMul ({runtime}) per_column={per_column} K={k}: {mismatched} of "
          f"{total} outputs differ (each by 1, each at a near tie); {saturated} of them "
          f"requantize the runtime's saturated accumulator")
    assert mismatched <= total * 1e-3


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_qlinear_power_of_two_scale_equals_qlinearmatmul(runtime):
    """With a_scale * b_scale / y_scale = 2**-S and |acc| < 2**24 every float step is exact,
    so the runtime and qdp agree bit for bit, ties included (on the runtime's accumulator,
    :func:`runtime_accumulator`, where that is not the definition; counted)."""
    m, k, n = 32, 200, 16
    rng = np.random.default_rng(5)
    a = rng.integers(0, 256, size=(m, k)).astype(np.uint8)
    b = rng.integers(-128, 128, size=(k, n)).astype(np.int8)
    az, bz, yz = np.asarray(128, np.uint8), np.asarray(0, np.int8), np.asarray(131, np.uint8)
    acc_rt = runtime_accumulator(runtime, a, b, az, bz)
    same_acc = acc_rt == matmul_int(a, b, a_zero=az, b_zero=bz)
    for shift in (8, 11, 14):
        (y,) = _run(runtime, qlinear_matmul_model(False, n),
                    {"a": a, "as": np.asarray(0.5, np.float32), "az": az, "b": b,
                     "bs": np.asarray(0.25, np.float32), "bz": bz,
                     "ys": np.asarray(2.0 ** (shift - 3), np.float32), "yz": yz})
        got = qlinear(a, b, a_zero=az, w_zero=bz, multiplier=1, shift=shift, zero_point=131,
                      out_signed=False)
        want = quantize(acc_rt, 1, shift, zero_point=131, in_width=32, mult_width=1,
                        out_signed=False)
        assert np.array_equal(want[same_acc], got[same_acc])
        assert np.array_equal(y.astype(np.int64), want), shift
    print(f"\nQLinearMatMul ({runtime}), power-of-two scales: {int(np.sum(~same_acc))} of "
          f"{same_acc.size} outputs requantize the runtime's saturated accumulator")


def test_qlinear_is_matmul_then_quantize_per_column():
    rng = np.random.default_rng(9)
    a = rng.integers(-128, 128, size=(7, 40))
    w = rng.integers(-128, 128, size=(40, 5))
    bias = rng.integers(-5000, 5000, size=5)
    mult = rng.integers(1 << 20, 1 << 24, size=5)
    shift = rng.integers(28, 34, size=5)
    zp = rng.integers(-20, 20, size=5)
    got = qlinear(a, w, a_zero=1, w_zero=[0, 1, 2, 3, 4], bias=bias, multiplier=mult,
                  shift=shift, zero_point=zp, rounding="half_away", saturation="sat_sym",
                  acc_width=24, saturate=True)
    acc = matmul_int(a, w, a_zero=1, b_zero=[0, 1, 2, 3, 4], bias=bias, acc_width=24,
                     saturate=True)
    for j in range(5):
        want = quantize(acc[:, j], int(mult[j]), int(shift[j]), zero_point=int(zp[j]),
                        in_width=24, rounding="half_away", saturation="sat_sym")
        assert np.array_equal(got[:, j], want)
    # uint8 output, against Python ints: the exact accumulator, round(acc / 2**8) half to
    # even (Fraction's rounding) plus 128, clipped to [0, 255]. The shift spreads the
    # values past both ends of the range, so some clip low, some high and most do not.
    got_u = qlinear(a, w, multiplier=1, shift=8, zero_point=128, out_signed=False)
    rows, cols = a.tolist(), w.T.tolist()
    unclipped = [[round(Fraction(sum(x * y for x, y in zip(row, col)), 1 << 8)) + 128
                  for col in cols] for row in rows]
    want_u = [[min(max(v, 0), 255) for v in row] for row in unclipped]
    assert got_u.tolist() == want_u
    flat = [v for row in unclipped for v in row]
    assert any(v < 0 for v in flat) and any(v > 255 for v in flat)
    assert any(0 <= v <= 255 for v in flat)


# --- bad parameters -----------------------------------------------------------------------

A2 = [[1, 2], [3, 4]]


@pytest.mark.parametrize("kwargs,match", [
    (dict(a=[1, 2], b=A2), "a"),
    (dict(a=A2, b=[[1, 2, 3]]), "b"),
    (dict(a=A2, b=A2, acc_width=1), "acc_width"),
    (dict(a=A2, b=A2, acc_width=65), "acc_width"),
    (dict(a=A2, b=A2, acc_width=32.0), "acc_width"),
    (dict(a=A2, b=A2, a_zero=[1, 2, 3]), "a_zero"),
    (dict(a=A2, b=A2, b_zero=[[1, 2]]), "b_zero"),
    (dict(a=A2, b=A2, bias=[1, 2, 3]), "bias"),
    (dict(a=A2, b=A2, bias=[1 << 31, 0]), "bias"),
    (dict(a=A2, b=A2, bias=[1 << 15, 0], acc_width=16), "bias"),
    (dict(a=A2, b=A2, saturate="yes"), "saturate"),
    (dict(a=np.zeros((2, 0), dtype=int), b=np.zeros((0, 2), dtype=int)), "a"),
])
def test_bad_parameters_name_themselves(kwargs, match):
    a, b = kwargs.pop("a"), kwargs.pop("b")
    with pytest.raises(ValueError, match=f"^{match}:"):
        matmul_int(a, b, **kwargs)


def test_float_operands_are_a_type_error():
    with pytest.raises(TypeError, match="^a:"):
        matmul_int([[1.5]], [[1]])


@pytest.mark.parametrize("kwargs,match", [
    (dict(multiplier=[1, 2, 3]), "multiplier"),
    (dict(shift=[1, 2, 3]), "shift"),
    (dict(zero_point=[1, 2, 3]), "zero_point"),
    (dict(zero_point=200), "zero_point"),
    (dict(out_width=1), "out_width"),
    (dict(rounding="nearest"), "rounding"),
    (dict(bias=[1 << 40, 0]), "bias"),
])
def test_qlinear_bad_parameters_name_themselves(kwargs, match):
    params = dict(multiplier=1, shift=4, zero_point=0)
    params.update(kwargs)
    with pytest.raises(ValueError, match=f"^{match}:"):
        qlinear(A2, A2, **params)
