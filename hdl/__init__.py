"""Amaranth components of qdp: one concept per module, each with a golden model of the
same name in :mod:`qdp.golden`."""

from .dsp import DSPMultiplier, Target
from .multiplier import TiledMultiplier
from .quantizer import Quantizer
from .absmax import BlockwiseAbsmax
from .mac_array import MacArray
from .qlinear import QLinear
from .quantize_linear import QuantizeLinear
from .dequantize_linear import DequantizeLinear
from .absmax_dequantize import AbsmaxDequantize
from .mx_dequantize import MxDequantize
from .mx_quantize import MxQuantize
from .nf4_quantize import Nf4Quantize
from .nf4_dequantize import Nf4Dequantize
from .group_dequantize import GroupDequantize
from .group_quantize import GroupQuantize
from .mx_mac_array import MxMacArray
from .axis import AxiStreamWrapper

__all__ = ["Quantizer", "QuantizeLinear", "DequantizeLinear", "BlockwiseAbsmax",
           "AbsmaxDequantize", "MxQuantize", "MxDequantize", "Nf4Quantize", "Nf4Dequantize",
           "GroupDequantize", "GroupQuantize", "MacArray", "MxMacArray", "QLinear", "DSPMultiplier",
           "TiledMultiplier", "Target", "AxiStreamWrapper"]
