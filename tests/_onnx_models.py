"""Small quantized ONNX MLPs for the tests: torch exports them, onnxruntime's
``quantize_static`` quantizes them (the import, golden-graph and compile tests share them).

A spec is ``(widths, export, activations, per_channel, symmetric activations, format)``:
``export`` "gemm" (torch Linear), "matmul" (MatMul + Add, pre-processed into Gemm) or
"nobias" (MatMul); activations "s8", "u8" (int8 weights) or "u8u8" (uint8 weights);
format "qdq" or "qoperator". The (64, 32, 10) model's first Gemm output scale is scaled by
1.375 after quantizing, so the kept Relu that follows requantizes (a TableLayer).
"""

import importlib.util
import warnings

import numpy as np
import onnx
from conftest import require
from onnx import numpy_helper

__all__ = ["torch_mlp", "quantized_mlp"]


def torch_mlp(widths, export, seed, path):
    require("the torch-exported models", [] if importlib.util.find_spec("torch") else
            ["torch"], ' (pip install "qdp[torch]")')
    import torch

    class MatMulAdd(torch.nn.Module):          # exported as MatMul + Add (no bias: MatMul)
        def __init__(self, k, n, bias):
            super().__init__()
            self.w = torch.nn.Parameter(torch.randn(k, n) / k ** 0.5)
            self.b = torch.nn.Parameter(torch.randn(n) * 0.1) if bias else None

        def forward(self, x):
            y = torch.matmul(x, self.w)
            return y if self.b is None else y + self.b

    torch.manual_seed(seed)
    layers = []
    for k, n in zip(widths, widths[1:]):
        layers.append(torch.nn.Linear(k, n) if export == "gemm"
                      else MatMulAdd(k, n, export == "matmul"))
        layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers[:-1]).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(1, widths[0]),), str(path), dynamo=False,
                          input_names=["x"], output_names=["y"], opset_version=19,
                          dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})


def quantized_mlp(spec, tmp, seed):
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    widths, export, act, per_channel, symmetric, fmt = spec
    float_path, pre_path, q_path = tmp / "f.onnx", tmp / "p.onnx", tmp / "q.onnx"
    torch_mlp(widths, export, seed, float_path)
    if export == "matmul":                     # onnxruntime's own advice: fuses MatMul+Add
        quant_pre_process(str(float_path), str(pre_path), skip_symbolic_shape=True)
        float_path = pre_path
    rng = np.random.default_rng(seed)
    calibration = rng.uniform(0, 1, (32, widths[0])).astype(np.float32)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([{"x": calibration[i:i + 8]} for i in range(0, 32, 8)])

        def get_next(self):
            return next(self.batches, None)

    quantize_static(str(float_path), str(q_path), Reader(),
                    quant_format=QuantFormat.QDQ if fmt == "qdq" else QuantFormat.QOperator,
                    activation_type=QuantType.QInt8 if act == "s8" else QuantType.QUInt8,
                    weight_type=QuantType.QUInt8 if act == "u8u8" else QuantType.QInt8,
                    per_channel=per_channel,
                    extra_options={"ActivationSymmetric": symmetric})
    model = onnx.load(str(q_path))
    if widths == (64, 32, 10):
        for i, t in enumerate(model.graph.initializer):
            if t.name == "/0/Gemm_output_0_scale":
                scaled = numpy_helper.to_array(t) * np.float32(1.375)
                model.graph.initializer[i].CopyFrom(numpy_helper.from_array(scaled, t.name))
    return model
