"""The module under test as a bench sees it: everything read from its JSON manifest.

:func:`qdp.sim.runner.run_bench` hands the manifest that :func:`qdp.blocks.generate`
returned (and that it writes next to the build as ``<module>.json``) to the bench in its
config, so the cocotb process never rebuilds the Amaranth component: the payload layouts
come from the ports' ``fields``, the latency from ``latency_cycles``, and the component's
parameters from ``parameters``.
"""

import types

from .payload import manifest_fields

__all__ = ["Module"]


class Module:
    """The facts of a generated module that a bench needs.

    Members
    -------
    name : str
        The Verilog module name.
    latency : int
        ``latency_cycles`` of the manifest.
    lanes : int
        Elements per output beat: the lanes of the ``o`` payload's ``data`` field.
    fields : dict
        Per stream, its payload fields ``(path, offset, width, signed)`` for
        :func:`qdp.sim.payload.pack` and :func:`~qdp.sim.payload.unpack`.
    widths : dict
        Per stream, the width of its payload port.
    streams : list of str
        Every stream, in manifest order (the bench harness's order).
    inputs, outputs : list of str
        Stream names by direction, in manifest order.
    params : types.SimpleNamespace
        Every parameter as the component resolved it (lists as tuples, as the component
        holds them), plus ``lanes`` and ``latency``: what the stimulus and expectation
        functions read from a component, so they take either.
    """

    def __init__(self, manifest):
        self.name = manifest["module"]
        self.latency = manifest["latency_cycles"]
        payloads = [port for port in manifest["ports"] if port.get("role") == "payload"]
        self.fields = {port["stream"]: manifest_fields(port["fields"]) for port in payloads}
        self.widths = {port["stream"]: port["width"] for port in payloads}
        streams = manifest["streams"]
        self.streams = list(streams)
        self.inputs = [s for s, row in streams.items() if row["direction"] == "input"]
        self.outputs = [s for s, row in streams.items() if row["direction"] == "output"]
        self.lanes = sum(1 for path, *_ in self.fields.get("o", ()) if path[0] == "data") or 1
        params = {name: tuple(value) if isinstance(value, list) else value
                  for name, value in manifest["parameters"].items()}
        params.setdefault("lanes", self.lanes)
        params.setdefault("latency", self.latency)
        self.params = types.SimpleNamespace(**params)
