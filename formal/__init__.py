"""Formal properties of qdp's blocks, proved with SymbiYosys (``qdp prove``)."""
