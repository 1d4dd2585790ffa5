"""Amaranth components of qdp: one concept per module, each with a golden model of the
same name in :mod:`qdp.golden`."""

from .dsp import DSPMultiplier, Target
from .multiplier import TiledMultiplier
from .quantizer import Quantizer
from .absmax import BlockwiseAbsmax
from .mac_array import MacArray
from .qlinear import QLinear

__all__ = ["Quantizer", "BlockwiseAbsmax", "MacArray", "QLinear", "DSPMultiplier",
           "TiledMultiplier", "Target"]
