"""The registry of generatable blocks: component, bench and CLI parameters of each.

Defaults come from the component's own signature, so the CLI, ``qdp list`` and the
manifest can never disagree with the code.
"""

import dataclasses
import inspect

from ..hdl import BlockwiseAbsmax, MacArray, QLinear, Quantizer

__all__ = ["Param", "Block", "BLOCKS", "get_block"]


@dataclasses.dataclass(frozen=True)
class Param:
    kind: str                   # "int", "bool", "choice", "ints" (int or comma list)
    allowed: str                # human-readable range, shown by `qdp list`
    help: str
    choices: tuple = ()


@dataclasses.dataclass(frozen=True)
class Block:
    name: str
    component: type
    bench: str                  # cocotb test module
    params: dict
    summary: str

    def defaults(self):
        signature = inspect.signature(self.component.__init__)
        return {name: signature.parameters[name].default for name in self.params}

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


_ROUNDING = ("half_even", "half_away", "half_up", "half_down", "half_zero", "floor", "trunc",
             "stochastic")
_SATURATION = ("sat", "sat_sym", "sat_zero", "wrap")

# The MAC array's parameters, shared by the linear layer built on it.
_MAC_PARAMS = {
    "rows": Param("int", "1..32", "rows of A per beat (rows of the result tile)"),
    "cols": Param("int", "1..32", "columns of B per beat (lanes per output beat)"),
    "a_width": Param("int", "2..8", "width of A's elements"),
    "a_signed": Param("bool", "true/false", "signed A"),
    "b_width": Param("int", "2..8", "width of B's elements"),
    "b_signed": Param("bool", "true/false", "signed B"),
    "acc_width": Param("int", "16..48 (holds one product)", "accumulator width"),
    "saturate": Param("bool", "true/false",
                      "saturate every partial sum instead of wrapping"),
    "runtime_zero": Param("bool", "true/false",
                          "zero points arrive with every beat (per row / column)"),
    "a_zero": Param("ints", "int, or one per row", "constant zero point of A"),
    "b_zero": Param("ints", "int, or one per column", "constant zero point of B"),
    "dataflow": Param("choice", "broadcast|systolic",
                      "operands broadcast to the PEs, or forwarded PE to PE",
                      ("broadcast", "systolic")),
    "pipelined": Param("bool", "true/false",
                       "registered multiplier tiles (MULT18X18D registers on ecp5), an "
                       "array that never stalls and an output FIFO: 6 cycles more latency"),
}

BLOCKS = {
    "quantizer": Block(
        name="quantizer",
        component=Quantizer,
        bench="qdp.sim.quantizer_tb",
        summary="y = saturate(round(x * M / 2**S) + Z), lanes per beat",
        params={
            "lanes": Param("int", "1..64", "elements per beat"),
            "in_width": Param("int", "2..64 (2..32 with tflite)", "input element width"),
            "in_signed": Param("bool", "true/false", "signed input"),
            "out_width": Param("int", "2..32", "output element width"),
            "out_signed": Param("bool", "true/false", "signed output"),
            "mult_width": Param("int", "1..32 (31 with tflite)", "unsigned multiplier width"),
            "rounding": Param("choice", "|".join(_ROUNDING), "rounding mode",
                              _ROUNDING),
            "saturation": Param("choice", "|".join(_SATURATION), "saturation mode", _SATURATION),
            "runtime_scale": Param("bool", "true/false", "M, S, Z arrive with every beat"),
            "per_lane": Param("bool", "true/false", "one (M, S, Z) per lane"),
            "multiplier": Param("ints", "int, or one per lane", "constant M"),
            "shift": Param("ints", "int, or one per lane", "constant S (tflite: -31..30)"),
            "zero_point": Param("ints", "int, or one per lane", "constant Z"),
            "shift_width": Param("int", "1..7", "run-time shift field width"),
            "tflite": Param("choice", "none|double|single", "TFLite requantization",
                            ("none", "double", "single")),
            "lfsr_seed": Param("int", "0..2**32-1", "stochastic rounding LFSR seed"),
            "latency": Param("int", "1..max_latency (11 at 32x32)",
                             "pipeline depth in cycles; 5+ = DSP tiles + staged rounding"),
        },
    ),
    "mac-array": Block(
        name="mac-array",
        component=MacArray,
        bench="qdp.sim.mac_array_tb",
        summary="output-stationary rows x cols MAC array: C = sum_k (A - a_zero)(B - b_zero), "
                "one k-step per beat, one row of C per output beat",
        params=_MAC_PARAMS,
    ),
    "qlinear": Block(
        name="qlinear",
        component=QLinear,
        bench="qdp.sim.qlinear_tb",
        summary="quantized linear layer: MAC array + bias per column + Quantizer per "
                "column -> int8/uint8, one row per output beat",
        params={
            **_MAC_PARAMS,
            "cols": Param("int", "1..32", "output channels (lanes per output beat)"),
            "b_width": Param("int", "2..8", "width of the weights"),
            "b_signed": Param("bool", "true/false", "signed weights"),
            "b_zero": Param("ints", "int, or one per column", "constant weight zero point"),
            "bias": Param("ints", "int, or one per column", "constant bias (acc_width bits)"),
            "multiplier": Param("ints", "int, or one per column", "constant M"),
            "shift": Param("ints", "int, or one per column", "constant S"),
            "zero_point": Param("ints", "int, or one per column", "output zero point Z"),
            "mult_width": Param("int", "1..32", "unsigned multiplier width"),
            "out_width": Param("int", "2..32", "output element width"),
            "out_signed": Param("bool", "true/false", "signed output (int8) or not (uint8)"),
            "rounding": Param("choice", "|".join(_ROUNDING[:-1]),
                              "rounding mode (no stochastic)", _ROUNDING[:-1]),
            "saturation": Param("choice", "|".join(_SATURATION), "output saturation",
                                _SATURATION),
            "quant_latency": Param("int", "1..4", "Quantizer pipeline depth"),
        },
    ),
    "absmax": Block(
        name="absmax",
        component=BlockwiseAbsmax,
        bench="qdp.sim.absmax_tb",
        summary="per block of block_size elements: q = round(qmax * x / absmax), "
                "and absmax on the scale stream",
        params={
            "block_size": Param("int", "multiple of lanes, lanes..65536", "elements per block"),
            "lanes": Param("int", "1..16", "elements per beat"),
            "in_width": Param("int", "2..32", "signed input element width"),
            "out_width": Param("int", "2..8", "signed output element width"),
            "rounding": Param("choice", "|".join(_ROUNDING), "rounding mode", _ROUNDING),
            "lfsr_seed": Param("int", "0..2**32-1", "stochastic rounding LFSR seed"),
            "pipeline": Param("int", "0..3", "extra read/divider pipeline registers, "
                              "+1 cycle of latency each (3: block RAM output)"),
        },
    ),
}


def get_block(name):
    try:
        return BLOCKS[name]
    except KeyError:
        raise ValueError(f"block: unknown block {name!r}; expected one of "
                         f"{', '.join(BLOCKS)}") from None
