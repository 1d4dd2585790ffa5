"""The golden integer graph (qdp.golden.graph): each layer against exact Fraction
references and against NumPy's own float32 arithmetic, and the documented bound between
the two requantization models (at most 1, only where a half-integer lies within
|v| * 2**-21 of the exact v = acc * s_x * s_w / s_y)."""

import json
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from qdp.golden import (LinearLayer, Quant, QuantGraph, TableLayer, REQUANT_MODELS, qlinear,
                        qlinear_params)


def _half_even(v):
    return round(v)          # Fraction.__round__ ties to even


def _layer(rng, k=12, n=6, *, signed=True, per_channel=True, lo=None, hi=None,
           out_zero=-5):
    x = Quant(np.float32(rng.uniform(0.005, 0.05)), int(rng.integers(-20, 20)) if signed
              else int(rng.integers(100, 150)), signed)
    y = Quant(np.float32(rng.uniform(0.02, 0.3)), out_zero, True)
    scales = rng.uniform(0.001, 0.02, n if per_channel else 1).astype(np.float32)
    return LinearLayer("y", "x", rng.integers(-128, 128, (k, n)), rng.integers(-3, 4, n),
                       scales, rng.integers(-3000, 3000, n), x, y, lo=lo, hi=hi,
                       per_channel=per_channel)


def _codes(rng, layer, rows=9):
    qlo, qhi = layer.x.range
    return rng.integers(qlo, qhi + 1, (rows, layer.in_features))


@pytest.mark.parametrize("signed", [True, False])
def test_accumulator_is_the_exact_sum(signed):
    rng = np.random.default_rng(1)
    layer = _layer(rng, signed=signed)
    q = _codes(rng, layer)
    acc = layer.accumulate(q)
    for i in range(q.shape[0]):
        for j in range(layer.out_features):
            want = sum((int(q[i, k]) - layer.x.zero_point) *
                       (int(layer.weights[k, j]) - int(layer.w_zero[j]))
                       for k in range(layer.in_features)) + int(layer.bias[j])
            assert acc[i, j] == want


def test_integer_model_is_the_quantizer_exactly():
    rng = np.random.default_rng(2)
    layer = _layer(rng)
    acc = layer.accumulate(_codes(rng, layer))
    got = layer.requantize(acc, "integer")
    m, s = layer.multiplier_shift
    for (i, j), a in np.ndenumerate(acc):
        want = _half_even(Fraction(int(a) * int(m[j]), 2 ** int(s[j]))) + layer.y.zero_point
        assert got[i, j] == min(max(want, -128), 127)
        # (M, S) is the existing conversion of the float64 ratio, 32 bits, top bit set.
        assert 2 ** 31 <= m[j] < 2 ** 32


def test_float32_model_is_numpy_float32():
    """NumPy's float32 ops are IEEE's: the golden's exact sequence must equal them,
    including int32 accumulators beyond 2**24 (where the cast rounds)."""
    rng = np.random.default_rng(3)
    layer = _layer(rng, n=5)
    acc = np.concatenate([rng.integers(-2 ** 31, 2 ** 31, (200, 5)),
                          rng.integers(-3000, 3000, (200, 5))])
    ratio = (np.float32(layer.x.scale) * layer.w_scale) / np.float32(layer.y.scale)
    assert ratio.dtype == np.float32
    assert np.array_equal(layer.float_ratio, ratio)
    scaled = acc.astype(np.float32) * ratio
    want = np.clip(np.rint(scaled.astype(np.float64)) + layer.y.zero_point, -128, 127)
    assert np.array_equal(layer.requantize(acc, "float32"), want.astype(np.int64))


def _near_tie_accumulators(rng, layer, rows):
    """Accumulators whose exact value acc * rho lies next to a half-integer inside the
    output range (the elements where the two models can differ)."""
    rho = layer.real_ratio
    target = rng.integers(-120, 120, (rows, layer.out_features)) + 0.5
    acc = np.rint(target / rho[None, :]) + rng.integers(-2, 3, target.shape)
    return np.clip(acc, -2 ** 31, 2 ** 31 - 1).astype(np.int64)


def _check_models_bound(layer, acc):
    a, b = layer.requantize(acc, "integer"), layer.requantize(acc, "float32")
    assert np.max(np.abs(a - b)) <= 1
    for i, j in np.argwhere(a != b):
        v = Fraction(int(acc[i, j])) * Fraction(float(layer.x.scale)) \
            * Fraction(float(layer.w_scale[j])) / Fraction(float(layer.y.scale))
        tie = Fraction(2 * (v.numerator // v.denominator) + 1, 2)
        assert abs(v - tie) <= abs(v) * Fraction(1, 2 ** 21)
    return int(np.sum(a != b))


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2 ** 32 - 1), wide=st.booleans())
def test_models_differ_by_at_most_one_and_only_near_ties(seed, wide):
    """Random and near-tie accumulators; ``wide`` makes rho ~ 2**-22 so that in-range
    outputs need |acc| > 2**24, where the float32 model's cast of acc rounds."""
    rng = np.random.default_rng(seed)
    layer = _layer(rng, n=4)
    if wide:
        layer = LinearLayer(**dict(layer.__dict__, y=Quant(
            np.float32(float(layer.x.scale) * 0.01 * 2 ** 22 * rng.uniform(1, 4)), -5,
            True)))
    random = rng.integers(-2 ** 31, 2 ** 31, (32, 4))
    _check_models_bound(layer, random)
    _check_models_bound(layer, _near_tie_accumulators(rng, layer, 64))


def test_near_ties_do_differ():
    """Not vacuous: near ties make the two models differ, each time within the bound."""
    rng = np.random.default_rng(8)
    count = sum(_check_models_bound(layer, _near_tie_accumulators(rng, layer, 500))
                for layer in (_layer(rng, n=8) for _ in range(5)))
    assert count > 0


def test_folded_relu_clip_is_quantize_of_relu():
    """A Relu folded as lo = y.zero_point equals QuantizeLinear(max(v, 0)) for the
    real v the float32 model rounds; a Clip's bounds clip the codes."""
    rng = np.random.default_rng(4)
    plain = _layer(rng, out_zero=-10)
    relu = LinearLayer(**{**plain.__dict__, "lo": plain.y.zero_point})
    acc = plain.accumulate(_codes(rng, plain, rows=40))
    for requant in REQUANT_MODELS:
        assert np.array_equal(relu.requantize(acc, requant),
                              np.maximum(plain.requantize(acc, requant), -10))
    clipped = LinearLayer(**{**plain.__dict__, "lo": -20, "hi": 30})
    assert np.array_equal(clipped.requantize(acc), np.clip(plain.requantize(acc), -20, 30))


@pytest.mark.parametrize("signed_in", [True, False])
def test_table_layer_is_onnx_float_sequence(signed_in):
    x = Quant(np.float32(0.0371), 3 if signed_in else 131, signed_in)
    y = Quant(np.float32(0.0213), -7, True)
    for lo, hi in ((0.0, None), (-0.5, 1.25)):
        layer = TableLayer("t", "s", x, y, "Clip", lo, hi)
        codes = np.arange(*x.range)
        real = ((codes - x.zero_point).astype(np.float32) * x.scale).astype(np.float32)
        real = np.maximum(real, np.float32(lo))
        if hi is not None:
            real = np.minimum(real, np.float32(hi))
        want = np.clip(np.rint(real / y.scale) + y.zero_point, -128, 127)
        assert np.array_equal(layer(codes), want.astype(np.int64))


def test_graph_runs_the_chain_and_checks_it():
    rng = np.random.default_rng(5)
    first = _layer(rng, k=8, n=6)
    second_y = Quant(np.float32(0.1), 0, True)
    second = LinearLayer("z", "y", rng.integers(-128, 128, (6, 3)), 0,
                         np.float32(0.01), [1, 2, 3], first.y, second_y)
    graph = QuantGraph([first, second])
    x = rng.uniform(-1, 1, (5, 8)).astype(np.float32)
    trace = graph.run(x, "integer")
    assert np.array_equal(trace.input, first.x.quantize(x))
    assert np.array_equal(trace.layers[0], first(trace.input, "integer"))
    assert np.array_equal(trace.layers[1], second(trace.layers[0], "integer"))
    assert trace.output.dtype == np.float32
    assert np.array_equal(trace.output, second_y.dequantize(trace.layers[1]))
    rows = graph.summary()
    assert [r["kind"] for r in rows] == ["LinearLayer", "LinearLayer"]
    assert rows[1]["in_features"] == 6 and rows[1]["weight_bytes"] == 18
    assert rows[0]["y"] == rows[1]["x"] and rows[0]["clip"] == [-128, 127]
    json.dumps(rows)
    with pytest.raises(ValueError, match="requant"):
        graph.run(x, "float64")
    with pytest.raises(TypeError, match="float32"):
        graph.run(x.astype(np.float64))
    with pytest.raises(ValueError, match="layers: z reads"):
        QuantGraph([first, LinearLayer(**{**second.__dict__, "x": second_y})])


def test_bad_parameters_are_refused():
    rng = np.random.default_rng(6)
    layer = _layer(rng)
    with pytest.raises(ValueError, match="bias"):
        LinearLayer(**{**layer.__dict__, "bias": np.full(6, 2 ** 31)})
    with pytest.raises(TypeError, match="w_scale"):
        LinearLayer(**{**layer.__dict__, "w_scale": np.ones(6)})
    with pytest.raises(ValueError, match="zero_point"):
        Quant(np.float32(1), 200, True)
    with pytest.raises(ValueError, match="empty"):
        LinearLayer(**{**layer.__dict__, "lo": 10, "hi": 5})


def _qlinear_of(params, layer, q):
    return qlinear(q, layer.weights, a_zero=params["a_zero"], w_zero=params["b_zero"],
                   bias=params["bias"], multiplier=params["multiplier"],
                   shift=params["shift"], zero_point=params["zero_point"],
                   out_width=params["out_width"], out_signed=params["out_signed"],
                   rounding=params["rounding"], saturation=params["saturation"],
                   acc_width=params["acc_width"], mult_width=params["mult_width"])


@pytest.mark.parametrize("out_zero, lo, hi, out_type", [
    (-5, None, None, (8, True)),        # the type's range
    (0, 0, None, (7, False)),           # a Relu folded into symmetric int8: uint7
    (0, -64, 63, (7, True)),            # a Clip to the int7 range
    (3, 0, 15, (4, False)),             # uint4, holding the zero point
])
def test_qlinear_params_express_a_clip_that_is_a_type_range(out_zero, lo, hi, out_type):
    """An output clip is the QLinear's saturation when it is some type's range: the
    QLinear golden with qlinear_params equals the integer layer, accumulators over the
    whole output range and past it (saturating both ways)."""
    rng = np.random.default_rng(8)
    layer = _layer(rng, out_zero=out_zero, lo=lo, hi=hi)
    params = qlinear_params(layer, rows=2)
    assert (params["out_width"], params["out_signed"]) == out_type
    assert params["a_zero"] == layer.x.zero_point and params["zero_point"] == out_zero
    assert params["b_zero"] == [int(v) for v in layer.w_zero]
    q = _codes(rng, layer, rows=400)
    want = layer(q, "integer")
    assert want.min() == layer.lo and want.max() == layer.hi     # both ends are reached
    assert np.array_equal(_qlinear_of(params, layer, q), want)


@pytest.mark.parametrize("out_zero, lo, hi", [(5, 5, None), (-128, -128, 100), (0, 1, 127)])
def test_qlinear_params_refuse_a_clip_the_saturation_cannot_express(out_zero, lo, hi):
    layer = _layer(np.random.default_rng(9), out_zero=out_zero, lo=lo, hi=hi)
    with pytest.raises(ValueError, match=r"layer y: its output clip .* cannot express it"):
        qlinear_params(layer)


def test_a_layer_split_by_columns_computes_its_columns():
    """A layer too wide for one array runs as column parts: each part's QLinear golden
    (qlinear_params of LinearLayer.columns) equals those columns of the whole layer in
    the integer model, and the float32 model's columns too."""
    rng = np.random.default_rng(10)
    layer = _layer(rng)
    q = _codes(rng, layer, rows=200)
    whole = {requant: layer(q, requant) for requant in ("integer", "float32")}
    for start, stop in ((0, 2), (2, 5), (5, 6)):
        part = layer.columns(start, stop)
        assert part.out_features == stop - start and part.in_features == layer.in_features
        got = _qlinear_of(qlinear_params(part, rows=2), part, q)
        assert np.array_equal(got, whole["integer"][:, start:stop])
        assert np.array_equal(part(q, "float32"), whole["float32"][:, start:stop])
    for start, stop in ((0, 0), (3, 7), (-1, 2)):
        with pytest.raises(ValueError, match="columns: .* output channels"):
            layer.columns(start, stop)
