"""NumPy golden models: what each qdp block computes, stated exactly.

Every function that defines a hardware output works on integers only and is exact (int64,
or Python ints where 64 bits are not enough). Floats appear only in the float-facing
helpers (scale conversion, the float quantization schemes, calibration).
"""

from ._intarray import int_range
from .rounding import ROUNDING_MODES, round_div, round_shift
from .saturation import SATURATION_MODES, saturate
from .lfsr import lfsr_values
from .quantizer import (quantize, requantize_tflite, multiplier_from_scale,
                        quantize_multiplier_tflite)
from .absmax import blockwise_absmax, dequantize_blockwise, block_constant, stochastic_random
from .mac_array import matmul_int
from .qlinear import qlinear
from .graph import (REQUANT_MODELS, Quant, LinearLayer, TableLayer, QuantGraph, Trace,
                    qlinear_params)
from .floats import FloatFormat, FP32, BF16, FP16, float_format
from .quantize_linear import quantize_linear
from .dequantize_linear import dequantize_linear
from .mx import MX_ELEMENTS, mx_quantize, mx_dequantize
from .mx_mac_array import mx_matmul
from .nf4 import nf4_codes, nf4_quantize, nf4_dequantize, nf4_values
from .double_quant import double_quantize, double_dequantize
from .group import group_quantize, group_dequantize, group_pack, group_unpack
from .schemes import (absmax_quantize, absmax_dequantize, zeropoint_params,
                      zeropoint_quantize, zeropoint_dequantize, fixed_point_frac_bits,
                      fixed_point_quantize, calibrate_minmax)

__all__ = [
    "ROUNDING_MODES", "SATURATION_MODES",
    "int_range", "round_div", "round_shift", "saturate", "lfsr_values",
    "quantize", "requantize_tflite", "multiplier_from_scale", "quantize_multiplier_tflite",
    "absmax_quantize", "absmax_dequantize", "zeropoint_params", "zeropoint_quantize",
    "zeropoint_dequantize", "fixed_point_frac_bits", "fixed_point_quantize", "calibrate_minmax",
    "blockwise_absmax", "dequantize_blockwise", "block_constant", "stochastic_random",
    "matmul_int", "qlinear",
    "REQUANT_MODELS", "Quant", "LinearLayer", "TableLayer", "QuantGraph", "Trace",
    "qlinear_params",
    "FloatFormat", "FP32", "BF16", "FP16", "float_format", "quantize_linear",
    "dequantize_linear", "MX_ELEMENTS", "mx_quantize", "mx_dequantize", "nf4_quantize", "nf4_codes", "nf4_values",
    "nf4_dequantize", "mx_matmul", "double_quantize", "double_dequantize", "group_quantize",
    "group_dequantize", "group_pack", "group_unpack",
]
