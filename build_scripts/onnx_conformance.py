"""The golden graph of an imported model against onnxruntime and the ONNX reference
evaluator, layer by layer.

:func:`layer_outputs` runs the file in a runtime with every layer's output codes (and the
first layer's input codes) added as graph outputs; :func:`compare_layers` feeds each golden
layer the runtime's own input codes of that layer -- so a difference belongs to that layer,
never to one before it -- and reports, per layer, how many codes differ and whether each
difference is one the definition allows:

``onnxruntime``, ``requant="float32"``
    none (the golden is onnxruntime's sequence), except the known AVX2 uint8 x int8
    saturation (:mod:`qdp.build_scripts.ort_probe`) where the probe finds it on this CPU:
    such a code must equal the float32 requantization of the pair-saturated accumulator,
    and is counted as ``saturation``.
``onnxruntime``, ``requant="integer"``
    a difference of 1 where a half-integer lies within ``|v| * 2**-21`` of the exact
    ``v = acc * s_x * s_w / s_y`` (the bound of :mod:`qdp.golden.graph`), or the saturation
    as above.
``reference``
    the reference evaluator runs QDQ as written: float32 DequantizeLinear, a float32
    MatMul/Gemm (and Add), QuantizeLinear. Its error is at most
    ``(K + 8) * 2**-23 * (sum_k |dx_k * dw_k| + |bias|) * rho`` output steps (a float32
    dot product of K terms, the dequantizations, the bias and the division), so a
    difference of 1 is allowed where a half-integer lies within that plus ``|v| * 2**-21``
    of ``v``. Its QLinearMatMul computes in float64 from the float32 ratio: ``|v| * 2**-21``.
    (It has no kernel for com.microsoft QGemm.)

A :class:`~qdp.golden.TableLayer` has no accumulator: it must equal either runtime.
"""

import dataclasses
from fractions import Fraction

import numpy as np

from ..golden import LinearLayer, TableLayer
from ..golden.graph import REQUANT_MODELS
from .ort_probe import probe

__all__ = ["LayerReport", "RUNTIMES", "layer_outputs", "compare_layers", "format_table"]

RUNTIMES = ("onnxruntime", "reference")


@dataclasses.dataclass(frozen=True)
class LayerReport:
    """One layer's comparison.

    Members
    -------
    layer, node : str
        The golden layer's output tensor and the file's node.
    elements : int
        Codes compared.
    differ : int
        Codes that differ from the golden layer.
    saturation : int
        Of those, the known AVX2 uint8 x int8 saturation (onnxruntime only).
    max_diff : int
        Largest ``|runtime - golden|``.
    unexplained : list of tuple
        ``(row, channel, expected, got)`` of each difference outside the stated bound:
        empty when the layer conforms.
    """

    layer: str
    node: str
    elements: int
    differ: int
    saturation: int
    max_diff: int
    unexplained: list

    @property
    def conforms(self):
        return not self.unexplained


def _with_outputs(model, graph):
    import onnx
    from onnx import TensorProto, helper

    model = onnx.ModelProto.FromString(model.SerializeToString())
    have = {o.name for o in model.graph.output}
    for name, quant in [(graph.layers[0].source, graph.input)] + \
            [(layer.name, layer.y) for layer in graph.layers]:
        if name not in have:
            elem = TensorProto.INT8 if quant.signed else TensorProto.UINT8
            model.graph.output.append(helper.make_tensor_value_info(name, elem, None))
    return model


def layer_outputs(model, graph, x, runtime="onnxruntime"):
    """Run ``model`` (an onnx.ModelProto) on ``x`` in ``runtime`` (:data:`RUNTIMES`):
    ``{tensor name: array}`` for the model's output, the first layer's input codes and
    every layer's output codes. onnxruntime runs on the CPU provider with its default
    optimizations (the QDQ fusions), one thread."""
    if runtime not in RUNTIMES:
        raise ValueError(f"runtime: {runtime!r}; expected one of {', '.join(RUNTIMES)}")
    extended = _with_outputs(model, graph)
    names = [o.name for o in extended.graph.output]
    feeds = {graph.input_name: x}
    if runtime == "reference":
        from onnx.reference import ReferenceEvaluator

        return dict(zip(names, ReferenceEvaluator(extended).run(None, feeds)))
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(extended.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    return dict(zip(names, session.run(None, feeds)))


def _rho(layer, j):
    return Fraction(float(layer.x.scale)) * Fraction(float(layer.w_scale[j])) \
        / Fraction(float(layer.y.scale))


def _near_tie(layer, q_row, acc, j, float_sequence):
    """Whether ``acc * rho`` lies within the stated bound of a half-integer."""
    rho = _rho(layer, j)
    v = int(acc) * rho
    bound = abs(v) * Fraction(1, 2 ** 21)
    if float_sequence:
        dx = np.abs(q_row - layer.x.zero_point)
        dw = np.abs(layer.weights[:, j] - layer.w_zero[j])
        total = int(dx @ dw) + abs(int(layer.bias[j]))
        bound += Fraction(layer.in_features + 8, 2 ** 23) * total * rho
    tie = Fraction(2 * (v.numerator // v.denominator) + 1, 2)
    return abs(v - tie) <= bound


def _saturated_accumulator(layer, q_in, verdict):
    """onnxruntime's accumulator where the probe found the AVX2 u8s8 saturation, else
    None."""
    if verdict is None or verdict.exact or layer.x.signed or not layer.w_signed:
        return None
    acc = verdict.matmul(q_in, layer.weights, a_zero=layer.x.zero_point, b_zero=layer.w_zero)
    return acc + layer.bias[None, :]


def _compare_linear(layer, q_in, got, requant, runtime, float_sequence, verdict):
    acc = layer.accumulate(q_in)
    want = layer.requantize(acc, requant)
    saturated = _saturated_accumulator(layer, q_in, verdict) if runtime == "onnxruntime" \
        else None
    alt = None if saturated is None else layer.requantize(saturated, "float32")
    unexplained, saturation = [], 0
    for i, j in np.argwhere(got != want):
        if alt is not None and got[i, j] == alt[i, j] and saturated[i, j] != acc[i, j]:
            saturation += 1
            continue
        exact_allowed = requant == "integer" or runtime == "reference"
        if not (exact_allowed and abs(int(got[i, j]) - int(want[i, j])) == 1 and
                _near_tie(layer, q_in[i], acc[i, j], j, float_sequence)):
            unexplained.append((int(i), int(j), int(want[i, j]), int(got[i, j])))
    return want, saturation, unexplained


def compare_layers(model, graph, outputs, requant="float32", *, runtime="onnxruntime",
                   verdict=None):
    """Per-layer :class:`LayerReport` of the golden ``graph`` (from ``model``) against a
    runtime's ``outputs`` (:func:`layer_outputs`) in requantization model ``requant``.

    ``verdict`` is an :class:`~qdp.build_scripts.ort_probe.OrtVerdict` (the probe of this
    CPU, :func:`~qdp.build_scripts.ort_probe.probe`, when None and ``runtime`` is
    onnxruntime)."""
    if requant not in REQUANT_MODELS:
        raise ValueError(f"requant: {requant!r}; expected one of {', '.join(REQUANT_MODELS)}")
    if runtime == "onnxruntime" and verdict is None:
        verdict = probe()
    ops = {node.name: node.op_type for node in model.graph.node}
    q_in = np.asarray(outputs[graph.layers[0].source], dtype=np.int64)
    reports = []
    for layer in graph.layers:
        got = np.asarray(outputs[layer.name], dtype=np.int64)
        if isinstance(layer, TableLayer):
            want = layer(q_in, requant)
            saturation = 0
            unexplained = [(int(i), int(j), int(want[i, j]), int(got[i, j]))
                           for i, j in np.argwhere(got != want)]
        elif isinstance(layer, LinearLayer):
            float_sequence = runtime == "reference" and ops.get(layer.node) in ("MatMul",
                                                                                 "Gemm")
            want, saturation, unexplained = _compare_linear(
                layer, q_in, got, requant, runtime, float_sequence, verdict)
        else:
            raise TypeError(f"graph: layer {layer.name} is a {type(layer).__name__}")
        reports.append(LayerReport(
            layer=layer.name, node=layer.node, elements=int(got.size),
            differ=int(np.sum(got != want)), saturation=saturation,
            max_diff=int(np.max(np.abs(got - want), initial=0)), unexplained=unexplained))
        q_in = got
    return reports


def format_table(rows):
    """A Markdown table of ``(label, reports)`` pairs (one column per label)."""
    labels = [label for label, _ in rows]
    layers = [r.node or r.layer for r in rows[0][1]]
    lines = ["| layer | " + " | ".join(labels) + " |",
             "|---|" + "---|" * len(labels)]
    for index, name in enumerate(layers):
        cells = []
        for _, reports in rows:
            r = reports[index]
            cell = f"{r.differ} / {r.elements}"
            if r.saturation:
                cell += f" ({r.saturation} AVX2 u8s8)"
            if r.unexplained:
                cell += f" **{len(r.unexplained)} outside the bound**"
            cells.append(cell)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
