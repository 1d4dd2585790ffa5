"""The registry of generatable blocks: per block its component, golden function, bench,
proofs and parameters.

Defaults come from the component's own signature and are resolved by constructing it, so
the CLI, ``qdp list`` and the manifest can never disagree with the code. The bench and the
proofs are named as modules (``qdp.sim.<block>_tb``, ``qdp.formal.<block>``) so that this
layer imports neither: :mod:`qdp.sim.runner` hands the bench module to cocotb and
:func:`qdp.formal.runner.block_proofs` imports the proofs module.
"""

import dataclasses

from .. import golden
from ..golden.rounding import (ABSMAX_MODELS, DETERMINISTIC_MODES, ROUNDING_MODELS,
                               ROUNDING_MODES)
from ..golden.saturation import SATURATION_MODES
from ..golden.mx import MX_ELEMENTS
from ..hdl import (AbsmaxDequantize, BlockwiseAbsmax, DequantizeLinear, GroupDequantize,
                   GroupQuantize, MacArray, MxDequantize, MxMacArray, MxQuantize,
                   Nf4Dequantize, Nf4Quantize, QLinear, QuantizeLinear, Quantizer)
from ..hdl.group_quantize import GROUP_IN_FORMATS
from ..hdl.mx_mac_array import LIMB_WIDTHS
from ..hdl.nf4_quantize import NF4_IN_FORMATS

__all__ = ["Param", "Block", "BLOCKS", "get_block"]


@dataclasses.dataclass(frozen=True)
class Param:
    """One parameter of a block as the CLI and ``qdp list`` show it.

    Members
    -------
    kind : str
        ``"int"``, ``"bool"``, ``"choice"``, ``"ints"`` (an int or a comma list) or
        ``"floats"`` (a number or a comma list).
    allowed : str
        The range in words, as ``qdp list`` prints it; the component checks the value.
    help : str
        What the parameter does.
    choices : tuple of str
        The names a ``"choice"`` takes (``"none"`` among them where it is a value).
    """

    kind: str
    allowed: str
    help: str
    choices: tuple = ()


def _choice(choices, help):
    return Param("choice", "|".join(choices), help, tuple(choices))


def _bound(value):
    return f"2**{value.bit_length()}-1" if value > 1 << 16 and value & (value + 1) == 0 \
        else str(value)


def _float_format(help):
    """A float format parameter: a named format or a custom eXmY."""
    return Param("choice", "fp32|bf16|fp16|eXmY", help, ("fp32", "bf16", "fp16"))


#: QuantizeLinear's and DequantizeLinear's scale per block on a stream of its own.
_BLOCK_SCALE = Param("bool", "true/false", "run-time scale and zero point once per block, "
                     "on their own stream (scales); i and o carry first/last")


def _block_size(component, help):
    """A block size: a multiple of ``lanes`` up to the component's limit."""
    return Param("int", f"multiple of lanes, lanes..{component.RANGES['block_size'][1]}",
                 help)


def _int(component, name, help, note=""):
    """An integer parameter whose range is the one ``component`` checks."""
    lo, hi = component.RANGES[name]
    return Param("int", f"{_bound(lo)}..{_bound(hi)}{note}", help)


@dataclasses.dataclass(frozen=True)
class Block:
    """One generatable block.

    Members
    -------
    name : str
        The ``qdp`` name (``qdp generate <name>``).
    component : type
        The :class:`amaranth.lib.wiring.Component` (:mod:`qdp.hdl`).
    golden : callable
        The golden function that states what it computes (:mod:`qdp.golden`).
    bench : str
        The cocotb test module that checks its Verilog against ``golden``.
    proofs : str
        The module whose ``proofs(build)`` lists its formal proofs.
    params : dict of str to Param
        Its parameters, keyword names of ``component``.
    summary : str
        One line for ``qdp list``.
    """

    name: str
    component: type
    golden: object
    bench: str
    proofs: str
    params: dict
    summary: str

    def build(self, **params):
        """Construct the component; unknown names are a ``TypeError`` naming them."""
        unknown = sorted(set(params) - set(self.params))
        if unknown:
            raise TypeError(f"{', '.join(unknown)}: not a parameter of {self.name}")
        return self.component(**params)

    def check(self, **params):
        """Validate ``params`` by constructing the component without elaborating it."""
        component = self.build(**params)
        component._MustUse__silence = True      # built only to check, never elaborated
        return component

    def effective_params(self, component):
        """Every parameter's value as the constructed component resolved it."""
        values = {}
        for name in self.params:
            value = getattr(component, name)
            values[name] = list(value) if isinstance(value, tuple) else value
        return values



# The MAC array's parameters, shared by the linear layer built on it.
_MAC_PARAMS = {
    "rows": _int(MacArray, "rows", "rows of A per beat (rows of the result tile)"),
    "cols": _int(MacArray, "cols", "columns of B per beat (lanes per output beat)"),
    "a_width": _int(MacArray, "a_width", "width of A's elements"),
    "a_signed": Param("bool", "true/false", "signed A"),
    "b_width": _int(MacArray, "b_width", "width of B's elements"),
    "b_signed": Param("bool", "true/false", "signed B"),
    "acc_width": _int(MacArray, "acc_width", "accumulator width", " (holds one product)"),
    "saturate": Param("bool", "true/false",
                      "saturate every partial sum instead of wrapping"),
    "runtime_zero": Param("bool", "true/false",
                          "zero points arrive with every beat (per row / column)"),
    "a_zero": Param("ints", "int, or one per row", "constant zero point of A"),
    "b_zero": Param("ints", "int, or one per column", "constant zero point of B"),
    "dataflow": _choice(("broadcast", "systolic"),
                        "operands broadcast to the PEs, or forwarded PE to PE"),
    "pipelined": Param("bool", "true/false",
                       "registered multiplier tiles (MULT18X18D registers on ecp5), an "
                       "array that never stalls and an output FIFO: 6 cycles more latency"),
}

BLOCKS = {
    "quantizer": Block(
        name="quantizer",
        component=Quantizer,
        golden=golden.quantize,
        bench="qdp.sim.quantizer_tb",
        proofs="qdp.formal.quantizer",
        summary="y = saturate(round(x * M / 2**S) + Z), lanes per beat",
        params={
            "lanes": _int(Quantizer, "lanes", "elements per beat"),
            "in_width": _int(Quantizer, "in_width", "input element width",
                             f" (2..{Quantizer.TFLITE_MAX_IN_WIDTH} with tflite)"),
            "in_signed": Param("bool", "true/false", "signed input"),
            "out_width": _int(Quantizer, "out_width", "output element width"),
            "out_signed": Param("bool", "true/false", "signed output"),
            "mult_width": _int(Quantizer, "mult_width", "unsigned multiplier width",
                               " (31 with tflite)"),
            "rounding": _choice(ROUNDING_MODES, "rounding mode"),
            "saturation": _choice(SATURATION_MODES, "saturation mode"),
            "runtime_scale": Param("bool", "true/false", "M, S, Z arrive with every beat"),
            "per_lane": Param("bool", "true/false", "one (M, S, Z) per lane"),
            "multiplier": Param("ints", "int, or one per lane", "constant M"),
            "shift": Param("ints", "int, or one per lane", "constant S (tflite: -31..30)"),
            "zero_point": Param("ints", "int, or one per lane", "constant Z"),
            "shift_width": _int(Quantizer, "shift_width", "run-time shift field width"),
            "tflite": _choice(("none", "double", "single"), "TFLite requantization"),
            "lfsr_seed": _int(Quantizer, "lfsr_seed", "stochastic rounding LFSR seed"),
            "latency": Param("int", "1..max_latency (11 at 32x32)",
                             "pipeline depth in cycles; 5+ = DSP tiles + staged rounding"),
        },
    ),
    "mac-array": Block(
        name="mac-array",
        component=MacArray,
        golden=golden.matmul_int,
        bench="qdp.sim.mac_array_tb",
        proofs="qdp.formal.mac_array",
        summary="output-stationary rows x cols MAC array: C = sum_k (A - a_zero)(B - b_zero), "
                "one k-step per beat, one row of C per output beat",
        params=_MAC_PARAMS,
    ),
    "qlinear": Block(
        name="qlinear",
        component=QLinear,
        golden=golden.qlinear,
        bench="qdp.sim.qlinear_tb",
        proofs="qdp.formal.qlinear",
        summary="quantized linear layer: MAC array + bias per column + Quantizer per "
                "column -> int8/uint8, one row per output beat",
        params={
            **_MAC_PARAMS,
            "cols": _int(MacArray, "cols", "output channels (lanes per output beat)"),
            "b_width": _int(MacArray, "b_width", "width of the weights"),
            "b_signed": Param("bool", "true/false", "signed weights"),
            "b_zero": Param("ints", "int, or one per column", "constant weight zero point"),
            "bias": Param("ints", "int, or one per column", "constant bias (acc_width bits)"),
            "multiplier": Param("ints", "int, or one per column", "constant M"),
            "shift": Param("ints", "int, or one per column", "constant S"),
            "zero_point": Param("ints", "int, or one per column", "output zero point Z"),
            "mult_width": _int(Quantizer, "mult_width", "unsigned multiplier width"),
            "out_width": _int(Quantizer, "out_width", "output element width"),
            "out_signed": Param("bool", "true/false", "signed output (int8) or not (uint8)"),
            "rounding": _choice(DETERMINISTIC_MODES, "rounding mode (no stochastic)"),
            "saturation": _choice(SATURATION_MODES, "output saturation"),
            "quant_latency": _int(QLinear, "quant_latency", "Quantizer pipeline depth"),
        },
    ),
    "absmax": Block(
        name="absmax",
        component=BlockwiseAbsmax,
        golden=golden.blockwise_absmax,
        bench="qdp.sim.absmax_tb",
        proofs="qdp.formal.absmax",
        summary="per block of block_size elements: q = round(qmax * x / absmax), "
                "and absmax on the scale stream",
        params={
            "block_size": _block_size(BlockwiseAbsmax, "elements per block"),
            "lanes": _int(BlockwiseAbsmax, "lanes", "elements per beat"),
            "in_width": _int(BlockwiseAbsmax, "in_width", "signed input element width"),
            "out_width": _int(BlockwiseAbsmax, "out_width", "signed output element width"),
            "rounding": _choice(ROUNDING_MODES, "rounding mode"),
            "lfsr_seed": _int(BlockwiseAbsmax, "lfsr_seed", "stochastic rounding LFSR seed"),
            "pipeline": _int(BlockwiseAbsmax, "pipeline", "extra read/divider pipeline "
                             "registers, +1 cycle of latency each (3: block RAM output)"),
            "in_format": Param("choice", "int|fp32|bf16|fp16|eXmY",
                               "input elements: signed in_width-bit integers, or floats "
                               "(eXmY: custom)", ("int", "fp32", "bf16", "fp16")),
            "model": _choice(ABSMAX_MODELS, "float input: exact (the rational "
                             "qmax*x/absmax rounded once) or float32 (c = fl32(qmax/absmax), "
                             "q = rint(fl32(c*x)); scale carries absmax and c)"),
        },
    ),
    "absmax-dequantize": Block(
        name="absmax-dequantize",
        component=AbsmaxDequantize,
        golden=golden.dequantize_blockwise,
        bench="qdp.sim.absmax_dequantize_tb",
        proofs="qdp.formal.absmax_dequantize",
        summary="Eq. 2 per block: y = q * absmax / qmax (exact) or fl(q / c) (float32), "
                "absmax's o and scale in, FP32/BF16/FP16 out",
        params={
            "lanes": _int(AbsmaxDequantize, "lanes", "elements per beat"),
            "in_format": _float_format("the absmax's format (the absmax unit's input "
                                       "format)"),
            "out_width": _int(AbsmaxDequantize, "out_width", "signed q width (qmax = "
                              "2**(out_width-1) - 1)"),
            "out_format": _float_format("output format"),
            "model": _choice(ABSMAX_MODELS, "exact: q * absmax / qmax rounded once; "
                             "float32: fl_out(fl32(q / c)), c from the scale stream"),
        },
    ),
    "mx-quantize": Block(
        name="mx-quantize",
        component=MxQuantize,
        golden=golden.mx_quantize,
        bench="qdp.sim.mx_quantize_tb",
        proofs="qdp.formal.mx_quantize",
        summary="OCP MX quantization: FP32/BF16/FP16 in, per block an E8M0 scale from the "
                "exponent of max |x| on scale, element codes rounded and saturated on o",
        params={
            "block_size": _block_size(MxQuantize, "elements per block (OCP: 32)"),
            "lanes": _int(MxQuantize, "lanes", "elements per beat"),
            "element": _choice(tuple(MX_ELEMENTS), "the MX element format"),
            "in_format": _float_format("input format"),
            "rounding": _choice(DETERMINISTIC_MODES, "element rounding (OCP: half_even)"),
            "read_register": Param("bool", "true/false", "register the block storage's "
                                   "read data (+1 cycle; for block RAM)"),
        },
    ),
    "mx-mac-array": Block(
        name="mx-mac-array",
        component=MxMacArray,
        golden=golden.mx_matmul,
        bench="qdp.sim.mx_mac_array_tb",
        proofs="qdp.formal.mx_mac_array",
        summary="the MX dot product: rows x cols FP32 outputs, each the exact sum of its "
                "element products with their E8M0 block scales, rounded once",
        params={
            "rows": _int(MxMacArray, "rows", "rows of A per beat (rows of the result tile)"),
            "cols": _int(MxMacArray, "cols", "columns of B per beat (lanes per output beat)"),
            "element": _choice(tuple(MX_ELEMENTS), "the MX element format of both operands"),
            "block_size": _int(MxMacArray, "block_size", "elements of K per shared scale"),
            "limb_width": Param("int", "|".join(map(str, LIMB_WIDTHS)),
                                "bits of the accumulator ring's adder"),
        },
    ),
    "mx-dequantize": Block(
        name="mx-dequantize",
        component=MxDequantize,
        golden=golden.mx_dequantize,
        bench="qdp.sim.mx_dequantize_tb",
        proofs="qdp.formal.mx_dequantize",
        summary="OCP MX dequantization: element codes and one E8M0 scale per block in, "
                "value * 2**(scale - 127) rounded once to FP32/BF16/FP16 out",
        params={
            "lanes": _int(MxDequantize, "lanes", "elements per beat"),
            "element": _choice(tuple(MX_ELEMENTS), "the MX element format"),
            "out_format": _float_format("output format"),
        },
    ),
    "nf4-quantize": Block(
        name="nf4-quantize",
        component=Nf4Quantize,
        golden=golden.nf4_codes,
        bench="qdp.sim.nf4_quantize_tb",
        proofs="qdp.formal.nf4_quantize",
        summary="QLoRA NF4 as bitsandbytes' kernel: FP32/BF16/FP16 in, per block the FP32 "
                "absmax on scale, 4-bit codes of fl32(x * fl32(1/absmax)) on o",
        params={
            "block_size": Param("int", "power of two 32..4096, a multiple of lanes",
                                "elements per block (QLoRA: 64)"),
            "lanes": _int(Nf4Quantize, "lanes", "elements per beat"),
            "in_format": _choice(NF4_IN_FORMATS, "input format"),
            "read_register": Param("bool", "true/false", "register the block storage's "
                                   "read data (+1 cycle; for block RAM)"),
        },
    ),
    "nf4-dequantize": Block(
        name="nf4-dequantize",
        component=Nf4Dequantize,
        golden=golden.nf4_values,
        bench="qdp.sim.nf4_dequantize_tb",
        proofs="qdp.formal.nf4_dequantize",
        summary="NF4 dequantization as bitsandbytes' kernel: 4-bit codes and one FP32 "
                "absmax (or its double-quantized form) per block in, fl32(code value * "
                "absmax) out",
        params={
            "lanes": _int(Nf4Dequantize, "lanes", "codes per beat"),
            "double_quant": Param("bool", "true/false", "double-quantized constants on "
                                  "scale (code, absmax2, offset per block; QLoRA's "
                                  "compress_statistics)"),
        },
    ),
    "group-dequantize": Block(
        name="group-dequantize",
        component=GroupDequantize,
        golden=golden.group_dequantize,
        bench="qdp.sim.group_dequantize_tb",
        proofs="qdp.formal.group_dequantize",
        summary="GPTQ/AWQ group dequantization: bits-bit codes and one FP32 scale (and "
                "zero point) per group in, fl32(scale * (q - zero)) out",
        params={
            "lanes": _int(GroupDequantize, "lanes", "codes per beat"),
            "bits": _int(GroupDequantize, "bits", "code width (GPTQ, AWQ: 4)"),
            "symmetric": Param("bool", "true/false", "AWQ's symmetric form: signed codes, "
                               "no zero point (scale carries the FP32 scale alone); else "
                               "GPTQ's unsigned codes and a zero point per group"),
        },
    ),
    "group-quantize": Block(
        name="group-quantize",
        component=GroupQuantize,
        golden=golden.group_quantize,
        bench="qdp.sim.group_quantize_tb",
        proofs="qdp.formal.group_quantize",
        summary="GPTQ/AWQ group quantization: FP32/BF16/FP16 in, per group the FP32 scale "
                "(and zero point) on scale, bits-bit codes of clamp(rint(fl32(x / scale)) "
                "+ zero) on o",
        params={
            "group_size": Param("int", "1..4096, a multiple of lanes",
                                "elements per group (GPTQ, AWQ: 128)"),
            "lanes": _int(GroupQuantize, "lanes", "elements per beat"),
            "bits": _int(GroupQuantize, "bits", "code width (GPTQ, AWQ: 4)"),
            "symmetric": Param("bool", "true/false", "AWQ's symmetric form: signed codes, "
                               "no zero point (scale carries the FP32 scale alone); else "
                               "GPTQ's unsigned codes and a zero point per group"),
            "in_format": _choice(GROUP_IN_FORMATS, "input format"),
            "read_register": Param("bool", "true/false", "register the group storage's "
                                   "read data (+1 cycle; for block RAM)"),
        },
    ),
    "quantize-linear": Block(
        name="quantize-linear",
        component=QuantizeLinear,
        golden=golden.quantize_linear,
        bench="qdp.sim.quantize_linear_tb",
        proofs="qdp.formal.quantize_linear",
        summary="ONNX QuantizeLinear: y = saturate(round(x / scale) + zero_point), "
                "FP32/BF16/FP16 in, 2..16-bit integers out",
        params={
            "lanes": _int(QuantizeLinear, "lanes", "elements per beat"),
            "in_format": _float_format("input and scale format (eXmY: custom, 3+ exponent "
                                       "bits)"),
            "out_width": _int(QuantizeLinear, "out_width", "output element width"),
            "out_signed": Param("bool", "true/false", "signed output"),
            "rounding_model": _choice(ROUNDING_MODELS,
                                      "onnx: x / scale rounded to the format, then half to "
                                      "even; exact: the exact quotient rounded once"),
            "rounding": _choice(DETERMINISTIC_MODES, "rounding mode (exact model)"),
            "runtime_scale": Param("bool", "true/false",
                                   "scale and zero point arrive with every beat"),
            "per_lane": Param("bool", "true/false", "one scale and zero point per lane"),
            "block_scale": _BLOCK_SCALE,
            "scale": Param("floats", "positive finite, or one per lane",
                           "constant scale (rounded half to even to in_format)"),
            "zero_point": Param("ints", "int, or one per lane", "constant zero point"),
        },
    ),
    "dequantize-linear": Block(
        name="dequantize-linear",
        component=DequantizeLinear,
        golden=golden.dequantize_linear,
        bench="qdp.sim.dequantize_linear_tb",
        proofs="qdp.formal.dequantize_linear",
        summary="ONNX DequantizeLinear: y = (q - zero_point) * scale, 2..32-bit integers "
                "in, FP32/BF16/FP16 out, in the ONNX reference's rounding sequence",
        params={
            "lanes": _int(DequantizeLinear, "lanes", "elements per beat"),
            "in_width": _int(DequantizeLinear, "in_width", "input element width"),
            "in_signed": Param("bool", "true/false", "signed input"),
            "out_format": _float_format("output and scale format (eXmY: custom)"),
            "runtime_scale": Param("bool", "true/false",
                                   "scale and zero point arrive with every beat"),
            "per_lane": Param("bool", "true/false", "one scale and zero point per lane"),
            "block_scale": _BLOCK_SCALE,
            "scale": Param("floats", "positive finite, or one per lane",
                           "constant scale (rounded half to even to out_format)"),
            "zero_point": Param("ints", "int, or one per lane; none: absent",
                                "constant zero point (absent and 0 differ above 16 bits)"),
        },
    ),
}


def get_block(name):
    try:
        return BLOCKS[name]
    except KeyError:
        raise ValueError(f"block: unknown block {name!r}; expected one of "
                         f"{', '.join(BLOCKS)}") from None
