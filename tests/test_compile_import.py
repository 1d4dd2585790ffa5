"""The ONNX importer (qdp.build_scripts.onnx_import) on MLPs that torch exported and
onnxruntime's quantize_static quantized, layer by layer against onnxruntime and the ONNX
reference evaluator; and what it refuses.

Per layer, each runtime's own input codes of that layer go through the golden layer, so a
difference is that layer's and never an inherited one. What is asserted:

- ``float32`` requantization against onnxruntime (which fuses the QDQ patterns into
  QLinearMatMul/QGemm, or runs the QOperator file): equal, every element, S8S8; U8S8 as
  well where :func:`qdp.build_scripts.ort_probe.probe` finds this CPU's uint8 x int8
  kernel exact, else each difference must be the known AVX2 pair saturation (counted).
  The whole network from float input to float output is compared too (float32 bits).
- ``integer`` requantization against onnxruntime: counted; each difference is 1 and lies
  where a half-integer is within ``|v| * 2**-21`` of the exact ``v = acc * s_x * s_w / s_y``
  (the bound of :mod:`qdp.golden.graph`).
- against the reference evaluator, which runs a QDQ file as written (DequantizeLinear,
  a float32 MatMul/Gemm, QuantizeLinear) and QLinearMatMul in float64: counted; each
  difference is 1 and within the float error of that sequence,
  ``(K + 8) * 2**-23 * (sum_k |dx_k * dw_k| + |bias|) * rho + |v| * 2**-21``, of a tie.
  (QGemm is com.microsoft's: the reference evaluator has no kernel for it.)

Run with ``-s`` to see the counts.
"""

import dataclasses
import json

import numpy as np
import onnx
import pytest
from _onnx_models import quantized_mlp, torch_mlp
from onnx import TensorProto, helper, numpy_helper

from qdp.build_scripts.onnx_conformance import compare_layers, layer_outputs
from qdp.build_scripts.onnx_import import UnsupportedModel, import_onnx
from qdp.build_scripts.ort_probe import OrtVerdict, probe
from qdp.golden import LinearLayer, QuantGraph, TableLayer, qlinear, qlinear_params

SAMPLES = 1000
#: name: (widths, export, activations, per_channel, symmetric activations, format)
#: "requantized relu": the first Gemm's output scale is scaled by 1.375 after quantizing,
#: so the kept Relu that follows maps codes to other codes (a TableLayer).
MODELS = {
    "64-48-10 gemm s8s8 per-channel": ((64, 48, 10), "gemm", "s8", True, False, "qdq"),
    "64-128-64-10 matmul+add s8s8 per-tensor": ((64, 128, 64, 10), "matmul", "s8", False,
                                                False, "qdq"),
    "64-48-10 gemm u8s8 per-channel": ((64, 48, 10), "gemm", "u8", True, False, "qdq"),
    "64-32-16-10 gemm s8s8 relu kept": ((64, 32, 16, 10), "gemm", "s8", False, True, "qdq"),
    "64-32-10 gemm s8s8 requantized relu": ((64, 32, 10), "gemm", "s8", True, True, "qdq"),
    "64-24-10 gemm u8u8 per-tensor": ((64, 24, 10), "gemm", "u8u8", False, False, "qdq"),
    "64-48-10 qgemm s8s8 qoperator": ((64, 48, 10), "gemm", "s8", True, False, "qoperator"),
    "64-40-10 qlinearmatmul u8s8 qoperator": ((64, 40, 10), "nobias", "u8", False, False,
                                              "qoperator"),
}


@pytest.fixture(scope="module", params=list(MODELS))
def case(request, tmp_path_factory):
    spec = MODELS[request.param]
    seed = list(MODELS).index(request.param)
    model = quantized_mlp(spec, tmp_path_factory.mktemp("model"), seed)
    graph = import_onnx(model)
    x = np.random.default_rng(100 + seed).uniform(-0.1, 1.1, (SAMPLES, spec[0][0])) \
        .astype(np.float32)
    reference = None
    if not any(n.op_type == "QGemm" for n in model.graph.node):
        reference = layer_outputs(model, graph, x, "reference")
    return {"name": request.param, "spec": spec, "model": model, "graph": graph, "x": x,
            "ort": layer_outputs(model, graph, x, "onnxruntime"), "ref": reference}


def _u8s8(layer):
    return isinstance(layer, LinearLayer) and not layer.x.signed and layer.w_signed


def _summary(reports):
    return "; ".join(f"{r.node}: {r.differ} of {r.elements}"
                     + (f" ({r.saturation} AVX2 u8s8 saturation)" if r.saturation else "")
                     for r in reports)


def test_float32_requant_equals_onnxruntime_per_layer(case):
    verdict = probe()
    reports = compare_layers(case["model"], case["graph"], case["ort"], "float32")
    print(f"\n{case['name']}: float32 vs onnxruntime: {_summary(reports)} "
          f"({verdict.message})")
    for layer, report in zip(case["graph"].layers, reports):
        assert report.conforms, (report.layer, report.unexplained[:5])
        if verdict.exact or not _u8s8(layer):
            assert report.differ == 0, report.layer        # S8S8: equal, every code
        else:
            assert report.differ == report.saturation, report.layer


def test_float32_whole_network_equals_onnxruntime(case):
    """From the float input to the float output, float32 bits, every layer on the way."""
    if any(_u8s8(layer) for layer in case["graph"].layers) and not probe().exact:
        return          # the AVX2 saturation propagates; it is counted per layer above
    trace = case["graph"].run(case["x"], "float32")
    out = case["ort"][case["graph"].output_name]
    assert out.dtype == np.float32
    assert np.array_equal(trace.output.view(np.uint32), out.view(np.uint32))
    assert np.array_equal(trace.input, case["ort"][case["graph"].layers[0].source])
    for layer, got in zip(case["graph"].layers, trace.layers):
        assert np.array_equal(got, case["ort"][layer.name].astype(np.int64)), layer.name


def test_onnxruntime_runs_every_linear_layer_as_an_integer_kernel(case, tmp_path):
    """What the float32 equality means: onnxruntime fused every QDQ MatMul/Gemm into
    QLinearMatMul or QGemm (or the file is QOperator), so no layer ran in float."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    options.log_severity_level = 3
    ort.InferenceSession(case["model"].SerializeToString(), options,
                         providers=["CPUExecutionProvider"])
    ops = [n.op_type for n in onnx.load(options.optimized_model_filepath).graph.node]
    linear = [op for op in ops if op in ("QGemm", "QLinearMatMul", "MatMul", "Gemm")]
    assert linear and set(linear) <= {"QGemm", "QLinearMatMul"}, ops
    assert len(linear) == sum(isinstance(layer, LinearLayer)
                              for layer in case["graph"].layers)


def test_integer_requant_against_onnxruntime_is_bounded(case):
    reports = compare_layers(case["model"], case["graph"], case["ort"], "integer")
    print(f"\n{case['name']}: integer vs onnxruntime: {_summary(reports)}")
    for report in reports:
        assert report.conforms and report.max_diff <= 1, (report.layer,
                                                          report.unexplained[:5])


@pytest.mark.parametrize("requant", ["float32", "integer"])
def test_golden_against_the_reference_evaluator_is_bounded(case, requant):
    if case["ref"] is None:
        pytest.skip("QGemm (com.microsoft) has no ONNX reference kernel")
    g = case["graph"]
    assert np.array_equal(case["ref"][g.layers[0].source], g.input.quantize(case["x"]))
    reports = compare_layers(case["model"], g, case["ref"], requant, runtime="reference")
    print(f"\n{case['name']}: {requant} vs the reference evaluator: {_summary(reports)}")
    for report in reports:
        assert report.conforms and report.max_diff <= 1, (report.layer,
                                                          report.unexplained[:5])


def test_import_keeps_the_files_parameters(case):
    """Weights are the file's, bit for bit; Relus are folded or tabulated."""
    inits = {t.name: numpy_helper.to_array(t) for t in case["model"].graph.initializer}
    weights = [v for k, v in inits.items() if v.dtype in (np.int8, np.uint8) and v.ndim == 2]
    linear = [layer for layer in case["graph"].layers if isinstance(layer, LinearLayer)]
    assert len(weights) == len(linear)
    for layer in linear:
        assert any(np.array_equal(w, layer.weights) or np.array_equal(w.T, layer.weights)
                   for w in weights)
        assert layer.per_channel == case["spec"][3]
        assert any(np.array_equal(np.broadcast_to(v.reshape(-1), layer.w_scale.shape),
                                  layer.w_scale) for v in inits.values()
                   if v.dtype == np.float32 and v.size in (1, layer.out_features))
    relus = [n for n in case["model"].graph.node if n.op_type == "Relu"]
    tables = [layer for layer in case["graph"].layers if isinstance(layer, TableLayer)]
    # A kept Relu is a TableLayer, or folded into its layer's clip when its output
    # quantization is its input's (then the table is max(q, zero point)).
    folded = [layer for layer in linear if layer.lo > layer.y.range[0]]
    assert len(relus) == len(tables) + len(folded)
    assert bool(tables) == (case["spec"][0] == (64, 32, 10))
    if case["spec"][4]:
        assert relus
    else:
        assert not relus and not tables
    rows = case["graph"].summary()
    assert [r["kind"] for r in rows] == [type(layer).__name__ for layer in case["graph"].layers]
    assert rows[0]["in_features"] == case["spec"][0][0] and json.dumps(rows)


def _qlinear_golden(params, q, weights):
    """:func:`qdp.golden.qlinear` called with a QLinear's keyword arguments."""
    return qlinear(q, weights, a_zero=params["a_zero"], w_zero=params["b_zero"],
                   bias=params["bias"], multiplier=params["multiplier"],
                   shift=params["shift"], zero_point=params["zero_point"],
                   out_width=params["out_width"], out_signed=params["out_signed"],
                   rounding=params["rounding"], saturation=params["saturation"],
                   acc_width=params["acc_width"], saturate=params["saturate"],
                   mult_width=params["mult_width"])


def test_qlinear_params_are_the_integer_layer_exactly(case):
    """The hardware mapping (qdp.golden.qlinear_params): the QLinear golden with those
    parameters equals every linear layer in the integer model, on the layer's inputs
    from the test set and on codes drawn over the whole input range (saturating)."""
    g = case["graph"]
    trace = g.run(case["x"], "integer")
    rng = np.random.default_rng(7)
    for layer, q_in in zip(g.layers, [trace.input, *trace.layers]):
        if not isinstance(layer, LinearLayer):
            continue
        params = qlinear_params(layer, rows=4)
        assert (params["cols"], params["a_signed"], params["b_signed"]) == \
            (layer.out_features, layer.x.signed, layer.w_signed)
        lo, hi = layer.x.range
        for q in (q_in, rng.integers(lo, hi + 1, (500, layer.in_features))):
            assert np.array_equal(_qlinear_golden(params, q, layer.weights),
                                  layer(q, "integer")), layer.name
        if layer.lo > layer.y.range[0]:       # a folded Relu: a narrower output type
            assert (params["out_width"], params["out_signed"]) == (7, False)


def test_a_wrong_golden_is_caught(case):
    """The bounded comparison is not vacuous: weight zero points off by one fail it."""
    g = case["graph"]
    wrong = [LinearLayer(**dict(layer.__dict__, w_zero=layer.w_zero + 1))
             if isinstance(layer, LinearLayer) else layer for layer in g.layers]
    graph = QuantGraph(wrong, input_name=g.input_name, output_name=g.output_name)
    for requant in ("float32", "integer"):
        reports = compare_layers(case["model"], graph, case["ort"], requant)
        assert not reports[0].conforms


def test_the_avx2_saturation_is_counted_not_failed(case):
    """Where the probe finds onnxruntime's uint8 x int8 pair saturation (not this CPU's
    case, perhaps), a runtime that computes it is counted and conforms: here its codes
    are made from the pair-saturated accumulator of full-scale inputs."""
    layer = case["graph"].layers[0]
    if not _u8s8(layer):
        return
    verdict = OrtVerdict(exact=False, explained=True, deviating=1, total=1, version="x")
    q_in = np.full((8, layer.in_features), 255, dtype=np.int64)
    q_in[1::2, ::3] = 250
    acc = verdict.matmul(q_in, layer.weights, a_zero=layer.x.zero_point,
                         b_zero=layer.w_zero) + layer.bias[None, :]
    outputs = {layer.source: q_in, layer.name: layer.requantize(acc, "float32")}
    graph = QuantGraph([layer], input_name="x")
    report = compare_layers(case["model"], graph, outputs, "float32", verdict=verdict)[0]
    assert report.conforms and report.differ == report.saturation > 0
    exact = compare_layers(case["model"], graph, outputs, "float32",
                           verdict=dataclasses.replace(verdict, exact=True))[0]
    assert not exact.conforms


# --- refusals: one line, naming the node or input -----------------------------------

def _tiny_quantized(tail_nodes=(), shape=("N", 4), extra_inits=()):
    """x -> Q -> DQ -> (tail) -> y, the smallest graph with quantization nodes."""
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"], name="quant"),
             helper.make_node("DequantizeLinear", ["q", "s", "z"], ["d"], name="dequant")]
    last = "d"
    for node in tail_nodes:
        nodes.append(node)
        last = node.output[0]
    nodes.append(helper.make_node("Identity", [last], ["y"], name="out"))
    inits = [helper.make_tensor("s", TensorProto.FLOAT, [], [0.1]),
             helper.make_tensor("z", TensorProto.INT8, [], [0])] + list(extra_inits)
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, list(shape))], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, None)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _refusal(model):
    with pytest.raises(UnsupportedModel) as info:
        import_onnx(model)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_softmax_is_refused_naming_the_node():
    message = _refusal(_tiny_quantized([helper.make_node("Softmax", ["d"], ["p"],
                                                         name="probs")]))
    assert message.startswith("node 'probs' (Softmax): not supported") and "Gemm" in message


def test_lstm_is_refused_naming_the_node():
    w = helper.make_tensor("W", TensorProto.FLOAT, [1, 8, 4], [0.0] * 32)
    r = helper.make_tensor("R", TensorProto.FLOAT, [1, 8, 2], [0.0] * 16)
    lstm = helper.make_node("LSTM", ["d", "W", "R"], ["h"], name="rnn", hidden_size=2)
    message = _refusal(_tiny_quantized([lstm], shape=(3, 1, 4), extra_inits=[w, r]))
    assert message.startswith("node 'rnn' (LSTM): not supported")


def test_dynamic_feature_dimension_is_refused_naming_the_input():
    message = _refusal(_tiny_quantized(shape=("N", "features")))
    assert message == ("input 'x': dimension 1 is dynamic (features); only the batch "
                       "dimension (0) may be dynamic")


def test_float_model_gets_the_quantize_static_line(tmp_path):
    torch_mlp((8, 4), "gemm", 0, tmp_path / "f.onnx")
    message = _refusal(onnx.load(str(tmp_path / "f.onnx")))
    assert message.startswith("model: a float model") and "quantize_static" in message


def test_unfused_matmul_add_is_refused_with_the_pre_process_line(tmp_path):
    """quantize_static without quant_pre_process quantizes the Add on its own (onnxruntime
    runs it as QLinearAdd): refused, pointing at quant_pre_process."""
    from onnxruntime.quantization import CalibrationDataReader, quantize_static

    torch_mlp((8, 4), "matmul", 0, tmp_path / "f.onnx")

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.left = [{"x": np.ones((2, 8), np.float32)}]

        def get_next(self):
            return self.left.pop() if self.left else None

    quantize_static(str(tmp_path / "f.onnx"), str(tmp_path / "q.onnx"), Reader())
    message = _refusal(onnx.load(str(tmp_path / "q.onnx")))
    assert "(Add)" in message and "quant_pre_process" in message


def test_dynamic_batch_is_accepted(case):
    dim = case["model"].graph.input[0].type.tensor_type.shape.dim[0]
    assert dim.dim_param == "batch" and not dim.HasField("dim_value")
    one = case["graph"].run(case["x"][:1], "float32")
    assert one.output.shape == (1, case["spec"][0][-1])


# --- hand-written QDQ forms the importer folds, and what it refuses in them ----------

def _hand_qdq(*, k=16, n=6, act=None, bias_scale=1.0, alpha=1.0, integer_io=False,
              w_axis=1, fan_out=False):
    """x -> Q -> DQ -> MatMul(DQ(W)) -> Add(DQ(int32 b)) -> [act] -> Q -> DQ -> y
    (with ``integer_io``: int8 codes in and out, no Q at the input, no DQ at the end)."""
    rng = np.random.default_rng(11)
    sx, sy = np.float32(0.0123), np.float32(0.0871)
    sw = rng.uniform(0.002, 0.01, n).astype(np.float32)
    w = rng.integers(-127, 128, (k, n)).astype(np.int8)
    b = rng.integers(-2000, 2000, n).astype(np.int32)
    init = [numpy_helper.from_array(np.asarray(v), name) for name, v in [
        ("sx", sx), ("zx", np.int8(-4)), ("sy", sy), ("zy", np.int8(3)),
        ("W", w), ("sw", sw), ("zw", np.zeros(n, np.int8)), ("B", b),
        ("sb", (sx * sw * np.float32(bias_scale)).astype(np.float32)),
        ("zb", np.zeros(n, np.int32)), ("lo", np.float32(-0.4)), ("hi", np.float32(0.9))]]
    nodes = [] if integer_io else [helper.make_node("QuantizeLinear", ["x", "sx", "zx"],
                                                    ["q"], name="quant_in")]
    src = "x" if integer_io else "q"
    nodes += [helper.make_node("DequantizeLinear", [src, "sx", "zx"], ["d"], name="dq_x"),
              helper.make_node("DequantizeLinear", ["W", "sw", "zw"], ["dw"], name="dq_w",
                               axis=w_axis),
              helper.make_node("DequantizeLinear", ["B", "sb", "zb"], ["db"], name="dq_b",
                               axis=0)]
    if alpha != 1.0:
        nodes.append(helper.make_node("Gemm", ["d", "dw", "db"], ["s"], name="fc",
                                      alpha=alpha))
    else:
        nodes += [helper.make_node("MatMul", ["d", "dw"], ["m"], name="mm"),
                  helper.make_node("Add", ["m", "db"], ["s"], name="bias")]
    last = "s"
    if act == "relu":
        nodes.append(helper.make_node("Relu", ["s"], ["r"], name="act"))
        last = "r"
    elif act == "clip":
        nodes.append(helper.make_node("Clip", ["s", "lo", "hi"], ["r"], name="act"))
        last = "r"
    out = "y" if integer_io else "qy"
    nodes.append(helper.make_node("QuantizeLinear", [last, "sy", "zy"], [out], name="quant"))
    if not integer_io:
        nodes.append(helper.make_node("DequantizeLinear", ["qy", "sy", "zy"], ["y"],
                                      name="dq_y"))
    outputs = [helper.make_tensor_value_info("y", TensorProto.INT8 if integer_io
                                             else TensorProto.FLOAT, ["N", n])]
    if fan_out:
        nodes.append(helper.make_node("Identity", ["d"], ["d2"], name="tap"))
        outputs.append(helper.make_tensor_value_info("d2", TensorProto.FLOAT, ["N", k]))
    graph = helper.make_graph(nodes, "hand", [helper.make_tensor_value_info(
        "x", TensorProto.INT8 if integer_io else TensorProto.FLOAT, ["N", k])], outputs,
        init)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    return model


@pytest.mark.parametrize("act", [None, "relu", "clip"])
@pytest.mark.parametrize("integer_io", [False, True])
def test_matmul_add_and_activation_before_the_q_fold(act, integer_io):
    """MatMul -> Add(int32 bias) -> Relu|Clip -> Q: one layer, the activation in its clip,
    within the float sequence's bound of the reference evaluator (onnxruntime does not
    fuse this form: it runs it in float, as the reference does)."""
    model = _hand_qdq(act=act, integer_io=integer_io)
    graph = import_onnx(model)
    (layer,) = graph.layers
    assert (graph.float_input, graph.float_output) == (not integer_io, not integer_io)
    assert layer.node == "mm" and layer.lo == {None: -128, "relu": 3, "clip": 3 - 5}[act]
    if act == "clip":
        assert layer.hi == 3 + 10       # rint(0.9 / 0.0871) + 3
    rng = np.random.default_rng(12)
    x = rng.integers(-128, 128, (400, 16)).astype(np.int8) if integer_io else \
        rng.uniform(-2, 2, (400, 16)).astype(np.float32)
    for runtime in ("reference", "onnxruntime"):
        outputs = layer_outputs(model, graph, x, runtime)
        for requant in ("float32", "integer"):
            (report,) = compare_layers(model, graph, outputs, requant, runtime="reference")
            assert report.conforms and report.max_diff <= 1, (runtime, requant)
        trace = graph.run(x)
        assert trace.output.dtype == (np.int64 if integer_io else np.float32)


@pytest.mark.parametrize("kwargs, where", [
    ({"bias_scale": 1.5}, "node 'bias' (Add): its bias scale is not input scale * weight "
                          "scale"),
    ({"alpha": 0.5}, "node 'fc' (Gemm): Gemm is supported with alpha = beta = 1"),
    ({"w_axis": 0}, "node 'mm' (MatMul): weight is quantized per channel along the input "
                    "axis"),
    ({"fan_out": True}, "model: 1 inputs and 2 outputs"),
])
def test_hand_written_forms_refused(kwargs, where):
    message = _refusal(_hand_qdq(k=6, **kwargs) if "w_axis" in kwargs else _hand_qdq(**kwargs))
    assert message.startswith(where), message


def test_dynamic_quantization_and_matmulinteger_are_refused_with_their_own_lines():
    dyn = helper.make_node("DynamicQuantizeLinear", ["d"], ["dq", "ds", "dz"], name="dyn")
    message = _refusal(_tiny_quantized([dyn]))
    assert message.startswith("node 'dyn' (DynamicQuantizeLinear): dynamic quantization")
    mmi = helper.make_node("MatMulInteger", ["q", "q"], ["acc"], name="mmi")
    message = _refusal(_tiny_quantized([mmi]))
    assert message.startswith("node 'mmi' (MatMulInteger): MatMulInteger with float glue")


def test_a_tensor_feeding_two_layers_is_refused():
    nodes = [helper.make_node("Relu", ["d"], ["r1"], name="a"),
             helper.make_node("Relu", ["d"], ["r2"], name="b"),
             helper.make_node("Add", ["r1", "r2"], ["s"], name="join")]
    message = _refusal(_tiny_quantized(nodes))
    assert message == ("node 'dequant' (DequantizeLinear): its output tensor 'd' feeds 2 "
                       "nodes; qdp compile takes a chain of layers")
