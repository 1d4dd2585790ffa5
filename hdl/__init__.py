"""Amaranth components of qdp: one concept per module, each with a golden model of the
same name in :mod:`qdp.golden`."""

from .quantizer import Quantizer

__all__ = ["Quantizer"]
