"""Import a quantized ONNX MLP into the golden integer graph (:mod:`qdp.golden.graph`).

:func:`import_onnx` reads the file with ``onnx`` and folds it into a
:class:`~qdp.golden.QuantGraph` whose parameters -- int8/uint8 weights, their per-tensor
or per-output-channel scales and zero points, int32 biases, every activation's scale and
zero point -- are the file's own, unchanged. The hardware half of ``qdp compile`` and the
conformance tests start from that graph.

What is folded (the patterns onnxruntime's QDQ transformer fuses into ``QLinearMatMul``
and ``QGemm``, and the QOperator forms it runs as such):

- ``QuantizeLinear`` of the float32 input (or int8/uint8 codes as the input), and
  ``DequantizeLinear`` of the last codes (or codes as the output);
- QDQ ``DQ(x), DQ(W) -> MatMul -> Q`` and ``DQ(x), DQ(W), DQ(bias) -> Gemm -> Q``
  (``alpha = beta = 1``, ``transA = 0``, ``transB`` 0 or 1); ``MatMul -> Add(DQ(bias))
  -> Q`` with the Add right behind the MatMul; weights int8 or uint8, per tensor or per
  output channel (``axis`` the output-channel axis); the bias ``DequantizeLinear`` of an
  int32 initializer with zero point 0 and scale ``fl32(s_x * s_w)`` per channel, as
  ``quantize_static`` writes it (any other bias scale is refused: the int32 bias is added
  in the accumulator, as onnxruntime's fusion does);
- QOperator ``QLinearMatMul`` and ``com.microsoft`` ``QGemm`` (int32 bias ``C``; an output
  scale and zero point required, ``alpha`` 1); not ``MatMulInteger`` with float glue
  (``Cast``, ``Mul``, ``QuantizeLinear``: a third requantization sequence, refused);
- Relu and Clip: a Relu that ``quantize_static`` dropped is already the output's range
  (zero point = qmin); one between a MatMul/Gemm and its Q, or ``DQ -> Relu|Clip -> Q``
  that maps every code to a clip of itself (same scale and zero point), is folded into the
  layer's output clip; otherwise (``DQ -> Relu|Clip -> Q`` with new quantization) it is
  kept as a :class:`~qdp.golden.TableLayer`, ONNX's float sequence tabulated per code.

What is refused, up front, with one line (:class:`UnsupportedModel`, a ``ValueError``)
naming the node, its op and what is supported: every other op (Softmax, LSTM, Conv, ...);
a float model (no quantization node: quantize it with ``quantize_static``); QDQ ``MatMul
-> Q -> DQ -> Add`` (onnxruntime's QLinearAdd: run ``quant_pre_process`` first, which
fuses MatMul+Add into Gemm); a tensor that feeds more than one node (a chain only, for
now); non-constant weights or quantization parameters; blocked (opset 21) quantization;
more than one input or output. The input must be ``(batch, features)``: a dynamic batch
dimension is accepted (the accelerator streams one sample at a time), any other dynamic
dimension is refused naming the input.
"""

import numpy as np

from ..golden import LinearLayer, Quant, QuantGraph, TableLayer

__all__ = ["UnsupportedModel", "import_onnx", "SUPPORTED"]

#: What the importer takes, for messages.
SUPPORTED = ("MatMul/Gemm in QDQ form (DequantizeLinear -> op -> QuantizeLinear), "
             "QLinearMatMul, QGemm, Relu, Clip, Identity")
_QUANT_OPS = {"QuantizeLinear", "DequantizeLinear", "QLinearMatMul", "QGemm",
              "MatMulInteger", "DynamicQuantizeLinear", "QLinearConv", "QLinearAdd"}
_OPS = {"QuantizeLinear", "DequantizeLinear", "MatMul", "Gemm", "Add", "Relu", "Clip",
        "Identity", "Constant", "QLinearMatMul", "QGemm"}
_CODE_TYPES = {2: (True, np.int8), 3: (False, np.uint8)}    # TensorProto INT8, UINT8


class UnsupportedModel(ValueError):
    """The model holds something qdp compile does not take (one line: what and where)."""


def _refuse(node, why):
    raise UnsupportedModel(f"node {node.name or '(unnamed)'!r} ({node.op_type}): {why}")


def _attrs(node):
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


class _Graph:
    """The model's nodes indexed by the tensors they read and write."""

    def __init__(self, model):
        from onnx import numpy_helper

        self.graph = model.graph
        self.consts = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
        self.producer, self.consumers = {}, {}
        for node in model.graph.node:
            if node.op_type == "Constant":
                self.consts[node.output[0]] = numpy_helper.to_array(_attrs(node)["value"])
            for name in node.output:
                self.producer[name] = node
            for name in node.input:
                if name:
                    self.consumers.setdefault(name, []).append(node)
        self.outputs = {o.name for o in model.graph.output}

    def const(self, node, index, what, *, optional=False):
        """Input ``index`` of ``node`` as a constant array (None if absent and optional)."""
        if index >= len(node.input) or not node.input[index]:
            if optional:
                return None
            _refuse(node, f"{what} is missing")
        name = node.input[index]
        if name not in self.consts:
            _refuse(node, f"{what} ({name}) is not a constant; weights and quantization "
                    f"parameters must be initializers")
        return self.consts[name]

    def through_identity(self, name):
        """``name`` followed through Identity nodes (the last name of the chain)."""
        while True:
            users = self.consumers.get(name, [])
            if len(users) == 1 and users[0].op_type == "Identity" and name not in self.outputs:
                name = users[0].output[0]
            else:
                return name

    def single_consumer(self, name):
        users = self.consumers.get(name, [])
        if len(users) != 1:
            node = self.producer.get(name)
            what = f"tensor {name!r} feeds {len(users)} nodes"
            if node is None:
                raise UnsupportedModel(f"{what}; qdp compile takes a chain of layers")
            _refuse(node, f"its output {what}; qdp compile takes a chain of layers")
        return users[0]


def _quant(g, node, s_index, z_index, what):
    """The :class:`Quant` of ``node``'s scale and zero point inputs (per tensor)."""
    scale = g.const(node, s_index, f"{what} scale")
    zero = g.const(node, z_index, f"{what} zero point", optional=True)
    if scale.dtype != np.float32 or scale.size != 1:
        _refuse(node, f"{what} scale must be one float32 value (got {scale.dtype} "
                f"{scale.shape}); activations are quantized per tensor")
    zero = np.zeros((), np.uint8) if zero is None else zero
    if zero.dtype not in (np.int8, np.uint8) or zero.size != 1:
        _refuse(node, f"{what} zero point must be one int8 or uint8 value (got "
                f"{zero.dtype} {zero.shape})")
    if _attrs(node).get("block_size", 0):
        _refuse(node, "blocked quantization (block_size) is not supported")
    return Quant(np.float32(scale.reshape(())), int(zero.reshape(())),
                 zero.dtype == np.int8)


def _weights(node, w, scale, zero, per_output, what):
    """``(W (K, N), w_zero (N,), w_scale (N,), per_channel, signed)`` of weight codes
    ``w`` already laid out (K, N); ``per_output``: the file's scales run along the output
    channels (or there is one)."""
    if w.dtype not in (np.int8, np.uint8) or w.ndim != 2:
        _refuse(node, f"{what} must be a 2-D int8 or uint8 initializer (got {w.dtype} "
                f"{w.shape})")
    n = w.shape[1]
    if scale.dtype != np.float32 or scale.size not in (1, n):
        _refuse(node, f"{what} scale must be float32, one value or one per output channel "
                f"({n}); got {scale.dtype} {scale.shape}")
    zero = np.zeros((), w.dtype) if zero is None else zero
    if zero.dtype != w.dtype or zero.size not in (1, n):
        _refuse(node, f"{what} zero point must be {w.dtype}, one value or one per output "
                f"channel")
    if scale.size > 1 and not per_output:
        _refuse(node, f"{what} is quantized per channel along the input axis; only per "
                f"output channel is supported")
    return (w.astype(np.int64), np.broadcast_to(zero.reshape(-1), (n,)).astype(np.int64),
            np.broadcast_to(scale.reshape(-1), (n,)).astype(np.float32), scale.size > 1,
            w.dtype == np.int8)


def _dq_constant(g, node, name, what, subject, expected):
    """``(dq, codes, scale, zero)`` of the DequantizeLinear of an initializer behind
    input ``name`` of ``node`` (``zero`` None when absent); refused if it is anything else."""
    dq = g.producer.get(name)
    if dq is None or dq.op_type != "DequantizeLinear":
        _refuse(node, f"its {subject} ({name}) must be a DequantizeLinear of {expected}")
    return (dq, g.const(dq, 0, what), g.const(dq, 1, f"{what} scale"),
            g.const(dq, 2, f"{what} zero point", optional=True))


def _dq_weights(g, node, name, transposed):
    """The weights behind ``name`` (DequantizeLinear of an initializer) as ``_weights``."""
    dq, w, scale, zero = _dq_constant(g, node, name, "weight", "weights",
                                      "an int8/uint8 initializer (a float weight is not "
                                      "quantized)")
    if _attrs(dq).get("block_size", 0):
        _refuse(dq, "blocked quantization (block_size) is not supported")
    axis = _attrs(dq).get("axis", 1) % max(w.ndim, 1)
    out_axis = 0 if transposed else 1
    per_out = scale.size <= 1 or axis == out_axis
    return _weights(node, w.T if transposed else w, scale, zero, per_out, "weight")


def _dq_bias(g, node, name, x, w_scale):
    """The int32 bias behind ``name``: DequantizeLinear of an int32 initializer, zero
    point 0, scale ``fl32(x.scale * w_scale)`` per channel (as quantize_static writes)."""
    _, b, scale, zero = _dq_constant(g, node, name, "bias", "bias",
                                     "an int32 initializer, as quantize_static writes it")
    n = w_scale.size
    if b.dtype != np.int32 or b.size != n:
        _refuse(node, f"its bias must be {n} int32 values (got {b.dtype} {b.shape})")
    if zero is not None and np.any(zero != 0):
        _refuse(node, "its bias zero point must be 0")
    want = (np.float32(x.scale) * w_scale).astype(np.float32)
    if not np.array_equal(np.broadcast_to(scale.reshape(-1), (n,)), want):
        _refuse(node, "its bias scale is not input scale * weight scale, so the int32 "
                "bias cannot be added in the accumulator")
    return b.reshape(-1).astype(np.int64)


def _clip_bounds(g, node):
    """Float (lo, hi) of a Relu or Clip node (None: unbounded)."""
    if node.op_type == "Relu":
        return 0.0, None
    attrs = _attrs(node)
    lo = g.const(node, 1, "Clip min", optional=True) if len(node.input) > 1 else \
        attrs.get("min")
    hi = g.const(node, 2, "Clip max", optional=True) if len(node.input) > 2 else \
        attrs.get("max")
    return (None if lo is None else float(np.float32(lo)),
            None if hi is None else float(np.float32(hi)))


def _code_clip(y, lo, hi):
    """The codes QuantizeLinear gives the float bounds ``lo, hi`` (None: the range)."""
    qlo, qhi = y.range
    f = [None if v is None else int(y.quantize(np.asarray([v], np.float32))[0])
         for v in (lo, hi)]
    return (qlo if f[0] is None else f[0]), (qhi if f[1] is None else f[1])


def _qdq_linear(g, op, x, source):
    """A QDQ MatMul/Gemm layer starting at ``op`` (its A input is ``DQ(source)``):
    ``(LinearLayer, output codes name)``."""
    attrs = _attrs(op)
    if op.op_type == "Gemm":
        if attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0 \
                or attrs.get("transA", 0):
            _refuse(op, "Gemm is supported with alpha = beta = 1 and transA = 0")
        transposed = bool(attrs.get("transB", 0))
    else:
        transposed = False
    w, w_zero, w_scale, per_channel, w_signed = _dq_weights(g, op, op.input[1], transposed)
    bias = np.zeros(w.shape[1], np.int64)
    if op.op_type == "Gemm" and len(op.input) > 2 and op.input[2]:
        bias = _dq_bias(g, op, op.input[2], x, w_scale)
    out = op.output[0]
    nxt = g.single_consumer(out)
    if op.op_type == "MatMul" and nxt.op_type == "Add":
        other = [i for i in nxt.input if i != out]
        bias = _dq_bias(g, nxt, other[0], x, w_scale)
        out = nxt.output[0]
        nxt = g.single_consumer(out)
    bounds = []
    while nxt.op_type in ("Relu", "Clip"):
        bounds.append(_clip_bounds(g, nxt))
        out = nxt.output[0]
        nxt = g.single_consumer(out)
    if nxt.op_type != "QuantizeLinear":
        _refuse(nxt, f"expected the QuantizeLinear of {op.name or op.op_type}'s output; "
                f"supported: {SUPPORTED}")
    y = _quant(g, nxt, 1, 2, "output")
    lo, hi = y.range
    for flo, fhi in bounds:
        clo, chi = _code_clip(y, flo, fhi)
        lo, hi = max(lo, clo), min(hi, chi)
    layer = LinearLayer(nxt.output[0], source, w, w_zero, w_scale, bias, x, y, lo=lo, hi=hi,
                        per_channel=per_channel, node=op.name, w_signed=w_signed)
    return layer, nxt.output[0]


def _qop_linear(g, op, x, source):
    """A QLinearMatMul or QGemm layer: ``(LinearLayer, output codes name)``."""
    attrs = _attrs(op)
    if op.op_type == "QLinearMatMul":
        transposed, bias_index, ys, yz = False, None, 6, 7
    else:
        if attrs.get("alpha", 1.0) != 1.0 or attrs.get("transA", 0):
            _refuse(op, "QGemm is supported with alpha = 1 and transA = 0")
        transposed, bias_index, ys, yz = bool(attrs.get("transB", 0)), 6, 7, 8
        if len(op.input) <= ys or not op.input[ys]:
            _refuse(op, "QGemm without an output scale (float output) is not supported")
    if _quant(g, op, 1, 2, "input") != x:
        _refuse(op, "its input quantization differs from the one its input was written in")
    w = g.const(op, 3, "weight")
    w, w_zero, w_scale, per_channel, w_signed = _weights(
        op, w.T if transposed and w.ndim == 2 else w, g.const(op, 4, "weight scale"),
        g.const(op, 5, "weight zero point", optional=True), True, "weight")
    bias = np.zeros(w.shape[1], np.int64)
    if bias_index is not None:
        b = g.const(op, bias_index, "bias", optional=True)
        if b is not None:
            if b.dtype != np.int32 or b.size != w.shape[1]:
                _refuse(op, f"its bias must be {w.shape[1]} int32 values")
            bias = b.reshape(-1).astype(np.int64)
    y = _quant(g, op, ys, yz, "output")
    layer = LinearLayer(op.output[0], source, w, w_zero, w_scale, bias, x, y,
                        per_channel=per_channel, node=op.name, w_signed=w_signed)
    return layer, op.output[0]


def _activation(g, act, x, source, layers):
    """``DQ(source) -> Relu|Clip -> Q``: folded into the previous layer's clip when the
    table is a clip of the codes, else a TableLayer. Returns the output codes name."""
    q = g.single_consumer(act.output[0])
    if q.op_type != "QuantizeLinear":
        _refuse(q, f"expected the QuantizeLinear of {act.name or act.op_type}'s output")
    y = _quant(g, q, 1, 2, "output")
    lo, hi = _clip_bounds(g, act)
    table = TableLayer(q.output[0], source, x, y, act.op_type, lo, hi, node=act.name)
    codes = np.arange(x.range[0], x.range[1] + 1)
    values = table.table
    previous = layers[-1] if layers else None
    if y == x and isinstance(previous, LinearLayer) and \
            np.array_equal(values, np.clip(codes, values.min(), values.max())):
        args = dict(previous.__dict__, name=q.output[0],
                    lo=max(previous.lo, int(values.min())),
                    hi=min(previous.hi, int(values.max())))
        layers[-1] = LinearLayer(**args)
    else:
        layers.append(table)
    return q.output[0]


def _check_ops(g):
    ops = {n.op_type for n in g.graph.node}
    if not ops & _QUANT_OPS:
        raise UnsupportedModel("model: a float model (no QuantizeLinear, DequantizeLinear "
                               "or QLinear* node); quantize it first with onnxruntime."
                               "quantization.quantize_static (QDQ or QOperator format)")
    for node in g.graph.node:
        if node.op_type == "DynamicQuantizeLinear":
            _refuse(node, "dynamic quantization (scales computed at run time) is not "
                    "supported; quantize the model with onnxruntime.quantization."
                    "quantize_static")
        if node.op_type == "MatMulInteger":
            _refuse(node, "MatMulInteger with float glue (Cast, Mul) is not supported; "
                    "quantize_static's QDQ or QOperator form is (QLinearMatMul, QGemm)")
        if node.op_type not in _OPS or (node.domain not in ("", "ai.onnx") and
                                        node.op_type != "QGemm"):
            _refuse(node, f"not supported; qdp compile takes quantized MLPs: {SUPPORTED}")


def _check_io(g):
    inputs = [i for i in g.graph.input if i.name not in g.consts]
    if len(inputs) != 1 or len(g.graph.output) != 1:
        raise UnsupportedModel(f"model: {len(inputs)} inputs and {len(g.graph.output)} "
                               f"outputs; qdp compile takes one input and one output")
    value = inputs[0]
    tensor = value.type.tensor_type
    dims = tensor.shape.dim
    if not tensor.HasField("shape"):
        raise UnsupportedModel(f"input {value.name!r}: no shape; qdp compile takes "
                               f"(batch, features) with a fixed feature count")
    if len(dims) != 2:
        raise UnsupportedModel(f"input {value.name!r}: rank {len(dims)}; qdp compile takes "
                               f"(batch, features)")
    if not dims[1].HasField("dim_value") or dims[1].dim_value <= 0:
        what = dims[1].dim_param or "unknown"
        raise UnsupportedModel(f"input {value.name!r}: dimension 1 is dynamic ({what}); "
                               f"only the batch dimension (0) may be dynamic")
    if tensor.elem_type not in (1, 2, 3):           # FLOAT, INT8, UINT8
        raise UnsupportedModel(f"input {value.name!r}: element type {tensor.elem_type}; "
                               f"qdp compile takes float32, int8 or uint8 input")
    return value.name, tensor.elem_type == 1


def _first(g, name, float_input):
    """The first codes tensor and its Quant (or None: read from the first layer)."""
    if not float_input:
        return name, None
    node = g.single_consumer(name)
    if node.op_type != "QuantizeLinear":
        _refuse(node, "a float input must go through QuantizeLinear first")
    return node.output[0], _quant(g, node, 1, 2, "input")


def import_onnx(model):
    """Fold a quantized ONNX MLP into a :class:`~qdp.golden.QuantGraph` (see the module).

    Parameters
    ----------
    model : str, os.PathLike or onnx.ModelProto

    Raises
    ------
    UnsupportedModel
        One line naming the node (or input) and what is supported.
    """
    import onnx

    if not isinstance(model, onnx.ModelProto):
        model = onnx.load(str(model))
    g = _Graph(model)
    _check_ops(g)
    input_name, float_input = _check_io(g)
    cur, quant = _first(g, input_name, float_input)
    layers = []
    while True:
        cur = g.through_identity(cur)
        if cur in g.outputs:
            float_output = False
            break
        node = g.single_consumer(cur)
        if node.op_type in ("QLinearMatMul", "QGemm"):
            if quant is None:
                quant = _quant(g, node, 1, 2, "input")
            layer, cur = _qop_linear(g, node, quant, cur)
            layers.append(layer)
            quant = layer.y
            continue
        if node.op_type != "DequantizeLinear":
            _refuse(node, f"expected a DequantizeLinear or QLinear op on codes {cur!r}; "
                    f"supported: {SUPPORTED}")
        dq = _quant(g, node, 1, 2, "input")
        if quant is not None and dq != quant:
            _refuse(node, f"dequantizes {cur!r} with other parameters than it was "
                    f"quantized with")
        quant = dq
        real = g.through_identity(node.output[0])
        if real in g.outputs:
            float_output = True
            break
        op = g.single_consumer(real)
        if op.op_type in ("MatMul", "Gemm") and op.input[0] == real:
            layer, cur = _qdq_linear(g, op, quant, cur)
            layers.append(layer)
            quant = layer.y
        elif op.op_type in ("Relu", "Clip"):
            cur = _activation(g, op, quant, cur, layers)
            quant = layers[-1].y
        elif op.op_type == "Add":
            _refuse(op, "an Add of a quantized MatMul output (onnxruntime's QLinearAdd) is "
                    "not supported; fuse MatMul+Add into Gemm before quantizing: "
                    "onnxruntime.quantization.quant_pre_process")
        else:
            _refuse(op, f"not supported on dequantized codes; supported: {SUPPORTED}")
    if not layers:
        raise UnsupportedModel("model: no MatMul, Gemm, QLinearMatMul or QGemm layer")
    return QuantGraph(layers, input_name=input_name, output_name=g.graph.output[0].name,
                      float_input=float_input, float_output=float_output)
