"""qdp against ONNX QuantizeLinear / DequantizeLinear / MatMulInteger.

Both the ONNX reference implementation (``onnx.reference.ReferenceEvaluator``) and ONNX
Runtime's CPU provider are run. What they compute (read from onnx/reference/ops/
op_quantize_linear.py and confirmed on ORT by these tests):

    QuantizeLinear:   y = saturate(rint(float32(x / scale)) + zero_point)
    DequantizeLinear: y = float32((x - zero_point) * scale)

``rint`` rounds half to even, so with a power-of-two scale (``x / scale`` exact in float32)
ONNX equals qdp's exact ``quantize(..., rounding="half_even", saturation="sat")`` bit for
bit, ties included -- the zero point is added after rounding in both. With any other float32
scale the quotient is rounded to float32 before ``rint``; the result then differs from the
exact rational rounding only where ``x / scale`` lies within that float32 rounding error
(``|v| * 2**-24``) of a half-integer, and by exactly 1. The tests count those cases over a
large random set and check the condition for every one of them.

Run with ``-s -n 0`` to see the counts.
"""

from fractions import Fraction
import math

import numpy as np
import pytest

import onnx
import onnxruntime as ort
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

from qdp.build_scripts.ort_probe import probe
from qdp.golden import (matmul_int, multiplier_from_scale, quantize, round_div, saturate,
                        zeropoint_dequantize)

OPSET = 21
QTYPES = {
    "uint8": (TensorProto.UINT8, np.uint8, 8, False),
    "int8": (TensorProto.INT8, np.int8, 8, True),
    "uint16": (TensorProto.UINT16, np.uint16, 16, False),
    "int16": (TensorProto.INT16, np.int16, 16, True),
}
RUNTIMES = ["reference", "onnxruntime"]


def _model(nodes, inputs, outputs):
    graph = helper.make_graph(nodes, "g", inputs, outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 10
    onnx.checker.check_model(model)
    return model


def quantize_model(qtype, per_axis):
    elem = QTYPES[qtype][0]
    rank_x = [None, None] if per_axis else [None]
    rank_s = [None] if per_axis else []
    attrs = {"axis": 1} if per_axis else {}
    return _model(
        [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"], **attrs)],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, rank_x),
         helper.make_tensor_value_info("s", TensorProto.FLOAT, rank_s),
         helper.make_tensor_value_info("z", elem, rank_s)],
        [helper.make_tensor_value_info("y", elem, rank_x)])


def dequantize_model(qtype, per_axis):
    elem = QTYPES[qtype][0]
    rank_x = [None, None] if per_axis else [None]
    rank_s = [None] if per_axis else []
    attrs = {"axis": 1} if per_axis else {}
    return _model(
        [helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"], **attrs)],
        [helper.make_tensor_value_info("q", elem, rank_x),
         helper.make_tensor_value_info("s", TensorProto.FLOAT, rank_s),
         helper.make_tensor_value_info("z", elem, rank_s)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, rank_x)])


def run(runtime, model, feeds):
    if runtime == "reference":
        return ReferenceEvaluator(model).run(None, feeds)
    session = ort.InferenceSession(model.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def onnx_quantize(runtime, qtype, x, scale, zero_point, per_axis=False):
    np_type = QTYPES[qtype][1]
    feeds = {"x": np.asarray(x, dtype=np.float32),
             "s": np.asarray(scale, dtype=np.float32),
             "z": np.asarray(zero_point, dtype=np_type)}
    return run(runtime, quantize_model(qtype, per_axis), feeds)[0].astype(np.int64)


def ratio_arrays(values):
    """Exact (num, den) of float values, as object arrays (written here, not qdp's)."""
    pairs = [float(v).as_integer_ratio() for v in np.asarray(values, dtype=np.float64).flat]
    shape = np.shape(values)
    num = np.array([p[0] for p in pairs], dtype=object).reshape(shape)
    den = np.array([p[1] for p in pairs], dtype=object).reshape(shape)
    return num, den


def near_tie(v, rel):
    """True if the exact rational ``v`` is within ``rel * |v|`` of a half-integer."""
    tie = math.floor(v) + Fraction(1, 2)
    return abs(v - tie) <= rel * abs(v)


# --- power-of-two scales: exact ----------------------------------------------------------

FRAC = 8                                  # x = x_int * 2**-8 is exact in float32


def grid_inputs(rng, n):
    # Every small value (ties at each power-of-two scale) and random int16 values.
    return np.concatenate([np.arange(-1024, 1024), rng.integers(-(1 << 15), 1 << 15, n)])


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("qtype", list(QTYPES))
def test_power_of_two_scale_is_exact(runtime, qtype):
    _, np_type, width, signed = QTYPES[qtype]
    info = np.iinfo(np_type)
    rng = np.random.default_rng(1)
    x_int = grid_inputs(rng, 2000)
    x = np.ldexp(x_int.astype(np.float32), -FRAC)
    for k in (-3, 0, 1, 2, 5, 7, 8):       # scale 2**-k, so x / scale = x_int * 2**(k - 8)
        for zero_point in sorted({info.min, info.min + 1, 0, 1, 3, info.max} & set(
                range(info.min, info.max + 1))):
            got = onnx_quantize(runtime, qtype, x, np.float32(2.0 ** -k), zero_point)
            want = quantize(x_int, 1, FRAC - k, zero_point=zero_point, in_width=16,
                            mult_width=1, out_width=width, out_signed=signed,
                            rounding="half_even", saturation="sat")
            assert np.array_equal(got, want), (qtype, k, zero_point)


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("qtype", ["uint8", "int8"])
def test_power_of_two_scale_per_axis_is_exact(runtime, qtype):
    _, np_type, width, signed = QTYPES[qtype]
    info = np.iinfo(np_type)
    rng = np.random.default_rng(2)
    channels = 7
    x_int = rng.integers(-(1 << 15), 1 << 15, size=(3000, channels))
    x_int[:64] = np.arange(-32, 32)[:, None]            # rows of ties for every channel
    x = np.ldexp(x_int.astype(np.float32), -FRAC)
    k = np.array([-2, 0, 1, 3, 5, 7, 8])
    zero_point = rng.integers(info.min, info.max, size=channels, endpoint=True)
    got = onnx_quantize(runtime, qtype, x, np.ldexp(np.ones(channels, np.float32), -k),
                        zero_point, per_axis=True)
    want = quantize(x_int, 1, FRAC - k, zero_point=zero_point, in_width=16, mult_width=1,
                    out_width=width, out_signed=signed)
    assert np.array_equal(got, want)


# --- arbitrary float32 scales: counted, bounded -------------------------------------------

def _exact_quantize(x, scale, zero_point, width, signed):
    """Exact half-even rounding of the rational x / scale, + zero point, clipped (qdp)."""
    xn, xd = ratio_arrays(x)
    sn, sd = ratio_arrays(scale)
    rounded = round_div(xn * sd, xd * sn, "half_even")
    return saturate(rounded + zero_point, width=width, signed=signed,
                    saturation="sat").astype(np.int64)


def _check_mismatches(got, want, x, scale, zero_point, lo, hi, rel):
    """Every mismatch is off by one and sits within rel * |v| of a tie; returns the count."""
    bad = np.flatnonzero(got.reshape(-1) != want.reshape(-1))
    xs, ss = np.broadcast_arrays(x, scale)
    zs = np.broadcast_to(zero_point, x.shape).reshape(-1)
    for i in bad:
        v = Fraction(float(xs.flat[i])) / Fraction(float(ss.flat[i]))
        g, w = int(got.flat[i]), int(want.flat[i])
        assert abs(g - w) == 1, (float(v), g, w)
        assert near_tie(v, rel), (float(v), g, w)
        # ...and the framework did round the float32 quotient, as documented.
        q32 = np.float32(xs.flat[i]) / np.float32(ss.flat[i])
        assert g == min(max(int(np.rint(q32)) + int(zs[i]), lo), hi)
    return bad.size


def random_and_near_tie_inputs(rng, scale, zero_point, lo, hi, n, n_near=500):
    """Uniform values over the output range, and values float32((k + 1/2) * scale) that sit
    within float32 rounding of a tie -- where the float quotient and exact rounding can
    disagree."""
    uniform = (rng.uniform(lo - zero_point, hi - zero_point, n) * scale).astype(np.float32)
    k = rng.integers(lo - zero_point, hi - zero_point, n_near)
    near_tie_x = ((k + 0.5) * np.float64(scale)).astype(np.float32)
    return uniform, near_tie_x


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("qtype", ["uint8", "int8", "int16"])
def test_float32_scale_mismatches_are_counted_and_bounded(runtime, qtype):
    _, np_type, width, signed = QTYPES[qtype]
    info = np.iinfo(np_type)
    rng = np.random.default_rng(3)
    counts = {"uniform": [0, 0], "near-tie": [0, 0]}
    for _ in range(40):
        scale = np.float32(10.0 ** rng.uniform(-4, 0))
        zero_point = int(rng.integers(info.min, info.max, endpoint=True))
        sets = random_and_near_tie_inputs(rng, scale, zero_point, info.min, info.max, 2500)
        for name, x in zip(counts, sets):
            got = onnx_quantize(runtime, qtype, x, scale, zero_point)
            want = _exact_quantize(x, scale, zero_point, width, signed)
            counts[name][0] += _check_mismatches(got, want, x, scale, zero_point, info.min,
                                                 info.max, Fraction(1, 1 << 24))
            counts[name][1] += x.size
    for name, (bad, total) in counts.items():
        print(f"\nONNX {runtime} QuantizeLinear {qtype}, {name} inputs: {bad} of {total} "
              f"differ from exact half-even rounding of x/scale (each by 1, each within "
              f"2**-24*|x/scale| of a tie)")
    # Off the ties, a mismatch needs x/scale within 2**-24 |v| of a half-integer.
    assert counts["uniform"][0] <= counts["uniform"][1] // 1000


HW_FRAC = 40        # float32 x with 2**-16 <= |x| < 2**15 is x_int * 2**-40 exactly, 56 bits


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_qdp_hardware_pipeline_vs_onnx(runtime):
    """The number a user sees: ONNX QuantizeLinear vs qdp's Quantizer fed the same float32
    values as exact fixed point (``x_int = x * 2**40``, 56-bit input) with (M, S) from
    ``multiplier_from_scale(1 / scale, mult_width=32)``.

    A mismatch needs ``v = x / scale`` within ``(2**-24 + 2**-31 + 2**-52) * |v|`` of a tie:
    ONNX's float32 quotient, M's relative error (at most 2**-31 for 32 bits, as reported
    by ``multiplier_from_scale``) and the float64 ``1 / scale``.
    """
    rng = np.random.default_rng(4)
    rel = Fraction(1, 1 << 24) + Fraction(1, 1 << 31) + Fraction(1, 1 << 52)
    counts = {"uniform": [0, 0], "near-tie": [0, 0]}
    for _ in range(40):
        scale = np.float32(10.0 ** rng.uniform(-3, 0))
        zero_point = int(rng.integers(-128, 127, endpoint=True))
        sets = random_and_near_tie_inputs(rng, scale, zero_point, -128, 127, 2500)
        m, s, m_rel = multiplier_from_scale(1 / float(scale), mult_width=32)
        assert m_rel <= 2.0 ** -31
        for name, x in zip(counts, sets):
            x = x[np.abs(x) >= 2.0 ** -16]
            x_int = np.ldexp(x.astype(np.float64), HW_FRAC).astype(np.int64)
            assert np.array_equal(np.ldexp(x_int.astype(np.float64), -HW_FRAC), x)
            got = onnx_quantize(runtime, "int8", x, scale, zero_point)
            hw = quantize(x_int, m, s + HW_FRAC, zero_point=zero_point, in_width=56,
                          mult_width=32)
            bad = np.flatnonzero(got != hw)
            for i in bad:
                v = Fraction(int(x_int[i]), 1 << HW_FRAC) / Fraction(float(scale))
                assert abs(int(got[i]) - int(hw[i])) == 1
                assert near_tie(v, rel), float(v)
            counts[name][0] += bad.size
            counts[name][1] += x_int.size
    for name, (bad, total) in counts.items():
        print(f"\nONNX {runtime} QuantizeLinear int8 vs qdp Quantizer (32-bit M), {name} "
              f"inputs: {bad} of {total} differ (each by 1, each near a tie)")
    assert counts["uniform"][0] <= counts["uniform"][1] // 1000


# --- DequantizeLinear: exact ---------------------------------------------------------------

@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("qtype", ["uint8", "int8"])
def test_dequantize_is_exact(runtime, qtype):
    """(q - z) has at most 9 significant bits and a float32 scale 24, so the product is
    exact in float64 and a single rounding to float32 is what ONNX's float32 multiply
    does: the cast golden result equals ONNX bit for bit."""
    _, np_type, _, _ = QTYPES[qtype]
    info = np.iinfo(np_type)
    rng = np.random.default_rng(5)
    q = np.arange(info.min, info.max + 1).astype(np_type)
    model = dequantize_model(qtype, per_axis=False)
    for _ in range(50):
        scale = np.float32(10.0 ** rng.uniform(-6, 2))
        zero_point = int(rng.integers(info.min, info.max, endpoint=True))
        got = run(runtime, model, {"q": q, "s": np.asarray(scale),
                                   "z": np.asarray(zero_point, dtype=np_type)})[0]
        want = zeropoint_dequantize(q.astype(np.int64), float(scale), zero_point)
        assert got.dtype == np.float32
        assert np.array_equal(got, want.astype(np.float32))


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_dequantize_per_axis_is_exact(runtime):
    rng = np.random.default_rng(6)
    channels = 5
    q = rng.integers(-128, 128, size=(400, channels)).astype(np.int8)
    scale = (10.0 ** rng.uniform(-5, 1, channels)).astype(np.float32)
    zero_point = rng.integers(-128, 128, channels).astype(np.int8)
    got = run(runtime, dequantize_model("int8", per_axis=True),
              {"q": q, "s": scale, "z": zero_point})[0]
    for c in range(channels):
        want = zeropoint_dequantize(q[:, c].astype(np.int64), float(scale[c]),
                                    int(zero_point[c]))
        assert np.array_equal(got[:, c], want.astype(np.float32))


# --- integer-only pipeline: MatMulInteger + power-of-two requantization ----------------------

def matmul_requant_model(shift):
    return _model(
        [helper.make_node("MatMulInteger", ["a", "b", "az", "bz"], ["acc"]),
         helper.make_node("Cast", ["acc"], ["accf"], to=TensorProto.FLOAT),
         helper.make_node("QuantizeLinear", ["accf", "s", "yz"], ["y"])],
        [helper.make_tensor_value_info("a", TensorProto.UINT8, [None, None]),
         helper.make_tensor_value_info("b", TensorProto.INT8, [None, None]),
         helper.make_tensor_value_info("az", TensorProto.UINT8, []),
         helper.make_tensor_value_info("bz", TensorProto.INT8, []),
         helper.make_tensor_value_info("s", TensorProto.FLOAT, []),
         helper.make_tensor_value_info("yz", TensorProto.INT8, [])],
        [helper.make_tensor_value_info("acc", TensorProto.INT32, [None, None]),
         helper.make_tensor_value_info("y", TensorProto.INT8, [None, None])])


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_integer_linear_layer_with_power_of_two_requant_is_exact(runtime):
    """A quantized linear layer whose output scale ratio is 2**-S: ONNX's MatMulInteger
    then QuantizeLinear(scale = 2**S) equals qdp's quantize(acc, 1, S), bit for bit
    (|acc| < 2**24, so the int32 -> float32 cast is exact).

    The accumulator is the definition in the reference. onnxruntime's uint8 x int8 kernel
    computes what :mod:`qdp.build_scripts.ort_probe` found on this CPU (the definition, or
    the known AVX2 pair saturation, counted); its QuantizeLinear is checked on whatever
    accumulator it produced."""
    rng = np.random.default_rng(7)
    a = rng.integers(0, 256, size=(32, 64)).astype(np.uint8)
    b = rng.integers(-128, 128, size=(64, 24)).astype(np.int8)
    a_zero, b_zero, y_zero = np.uint8(131), np.int8(-3), np.int8(5)
    want_acc = ((a.astype(np.int64) - int(a_zero)) @ (b.astype(np.int64) - int(b_zero)))
    assert np.abs(want_acc).max() < 1 << 24
    assert np.array_equal(matmul_int(a, b, a_zero=a_zero, b_zero=b_zero), want_acc)
    runtime_acc = want_acc if runtime == "reference" else \
        probe().matmul(a, b, a_zero=a_zero, b_zero=b_zero)
    for shift in (0, 6, 9, 12, 15):
        acc, y = run(runtime, matmul_requant_model(shift),
                     {"a": a, "b": b, "az": np.asarray(a_zero), "bz": np.asarray(b_zero),
                      "s": np.asarray(2.0 ** shift, dtype=np.float32),
                      "yz": np.asarray(y_zero)})
        assert np.array_equal(acc.astype(np.int64), runtime_acc)
        got = quantize(acc, 1, shift, zero_point=int(y_zero), in_width=32, mult_width=1)
        assert np.array_equal(y.astype(np.int64), got), shift
    print(f"\nMatMulInteger uint8 x int8 ({runtime}): {int(np.sum(runtime_acc != want_acc))} "
          f"of {want_acc.size} accumulators differ from the definition")
