"""The AXI4-Stream form of any qdp block: :class:`AxiStreamWrapper`.

The wrapper is generated from the block's own signature, never written per block: every
``amaranth.lib.stream`` port of the block becomes one AXI4-Stream interface, ``s_axis_<role>``
for an input stream and ``m_axis_<role>`` for an output stream, with the names the Vivado IP
packager infers interfaces from:

- ``aclk``: the clock of every interface and of the block;
- ``aresetn``: reset, active low, synchronous (sampled on the rising edge of ``aclk``), as
  AMBA specifies; it resets the block, and while it is low no ``s_axis_*_tready`` and no
  ``m_axis_*_tvalid`` is high, so no beat moves;
- ``<interface>_tdata``: every payload field except the ``first``/``last`` flags, packed
  without gaps in the payload's own bit order (lane 0 of an array at bit 0, struct fields
  in their order), padded with zeros to whole bytes (:func:`axis_streams` states the bit
  range of every field);
- ``<interface>_tvalid``, ``<interface>_tready``: the stream's ``valid`` and ``ready``;
- ``<interface>_tlast``: the block's ``last`` flag where the payload has one; an output
  stream without it drives 1 on every beat (each beat is a packet of its own, AXI's value
  for an absent TLAST), an input stream without it ignores it;
- ``<interface>_tuser``: one bit, bit 0 the block's ``first`` flag, only on streams whose
  payload has one.

The wrapper adds no register: latency and throughput are the block's.
"""

from amaranth.hdl import ClockDomain, Module, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .layout import field_rows

__all__ = ["AxiStreamWrapper", "axis_streams", "interface_name", "MAX_TDATA_WIDTH"]

#: Widest TDATA the wrapper makes (bits): the AXI4-Stream IP packager's limit, 512 bytes.
MAX_TDATA_WIDTH = 4096
#: Payload flags that leave TDATA for a signal of their own.
FLAGS = ("first", "last")


def interface_name(role, direction):
    """``s_axis_<role>`` for an input stream, ``m_axis_<role>`` for an output stream."""
    return ("s" if direction == "input" else "m") + f"_axis_{role}"


def _stream_map(role, direction, layout):
    """The AXI4-Stream mapping of one stream whose payload has ``layout``."""
    rows = field_rows(layout)
    flags = {r["field"]: r for r in rows if r["field"] in FLAGS and r["width"] == 1}
    position, tdata = 0, []
    for row in sorted((r for r in rows if r["field"] not in flags),
                      key=lambda r: r["offset"]):
        tdata.append({"field": row["field"], "offset": position, "width": row["width"],
                      "signed": row["signed"], "payload_offset": row["offset"]})
        position += row["width"]
    width = max(8, -(-position // 8) * 8)
    name = interface_name(role, direction)
    if width > MAX_TDATA_WIDTH:
        raise ValueError(f"{name}_tdata: stream {role} needs {width} bits of TDATA "
                         f"({position} payload bits padded to bytes); AXI4-Stream IP takes "
                         f"at most {MAX_TDATA_WIDTH} bits (512 bytes): fewer lanes or "
                         f"narrower elements")
    last = flags.get("last")
    if last is not None:
        tlast = {"field": "last", "payload_offset": last["offset"],
                 "meaning": "the block's last flag (end of its packet, block or tile)"}
    elif direction == "output":
        tlast = {"field": None, "meaning": "1 on every beat: the stream has no packets, "
                                           "each beat is one"}
    else:
        tlast = {"field": None, "meaning": "ignored: the stream has no packets"}
    first = flags.get("first")
    tuser = None if first is None else {
        "width": 1, "bits": [{"bit": 0, "field": "first", "payload_offset": first["offset"],
                              "meaning": "the block's first flag (first beat of its "
                                         "packet, block or tile)"}]}
    return {"stream": role, "interface": name, "direction": direction,
            "mode": "slave" if direction == "input" else "master",
            "tdata_width": width, "tdata_bits_used": position, "tdata": tdata,
            "tlast": tlast, "tuser": tuser}


def axis_streams(component):
    """Per stream of ``component`` (in its signature's order), its AXI4-Stream mapping as
    JSON-able data: ``{role: {"stream", "interface", "direction", "mode", "tdata_width",
    "tdata_bits_used", "tdata": [{"field", "offset", "width", "signed",
    "payload_offset"}], "tlast": {"field", "meaning", ...}, "tuser": None or {"width",
    "bits": [{"bit", "field", "payload_offset", "meaning"}]}}}``. ``offset`` is the bit of
    TDATA a field starts at, ``payload_offset`` its bit in the block's own payload.

    ``ValueError`` naming the stream, its TDATA width and the limit when a stream needs
    more than :data:`MAX_TDATA_WIDTH` bits.
    """
    streams = {}
    for role, member in component.signature.members.items():
        if not member.is_signature:
            continue
        direction = "input" if member.flow == In else "output"
        layout = member.signature.members["payload"].shape
        streams[role] = _stream_map(role, direction, layout)
    return streams


class AxiStreamWrapper(wiring.Component):
    """``block`` (any qdp component with ``amaranth.lib.stream`` ports) with AXI4-Stream
    ports: ``aclk``, ``aresetn`` and per stream the signals of :func:`axis_streams` (see
    the module docstring). Export it with ``amaranth.back.verilog.convert(wrapper,
    name=...)``: the Verilog module's ports are exactly these names.

    Members
    -------
    block : wiring.Component
        The wrapped block (elaborated as submodule ``block``).
    streams : dict
        :func:`axis_streams` of the block: the TDATA/TLAST/TUSER mapping per stream.
    """

    def __init__(self, block):
        if not isinstance(block, wiring.Component):
            self._MustUse__silence = True
            raise TypeError(f"block: {block!r} is not an amaranth.lib.wiring.Component")
        self.block = block
        try:
            self.streams = axis_streams(block)
            if not self.streams:
                raise ValueError(f"block: {type(block).__name__} has no stream ports to "
                                 f"wrap")
        except ValueError:
            # Neither will be elaborated: no "never elaborated" warning on top of the error.
            block._MustUse__silence = self._MustUse__silence = True
            raise
        members = {"aclk": In(1), "aresetn": In(1)}
        for row in self.streams.values():
            here, there = (In, Out) if row["direction"] == "input" else (Out, In)
            name = row["interface"]
            members[f"{name}_tdata"] = here(row["tdata_width"])
            members[f"{name}_tvalid"] = here(1)
            members[f"{name}_tready"] = there(1)
            members[f"{name}_tlast"] = here(1)
            if row["tuser"] is not None:
                members[f"{name}_tuser"] = here(row["tuser"]["width"])
        super().__init__(wiring.Signature(members))

    # The block's figures: the wrapper adds no register.
    latency = property(lambda self: self.block.latency)
    throughput = property(lambda self: self.block.throughput)
    latency_definition = property(lambda self: self.block.latency_definition)
    ready_dependencies = property(lambda self: self.block.ready_dependencies)
    dsp_tiles = property(lambda self: self.block.dsp_tiles)

    def elaborate(self, platform):
        m = Module()
        # The block's sync domain, clocked by aclk, reset (synchronously) by ~aresetn;
        # local, so that the wrapper can sit in a design with a sync domain of its own.
        m.domains.sync = domain = ClockDomain("sync", local=True)
        m.d.comb += [domain.clk.eq(self.aclk), domain.rst.eq(~self.aresetn)]
        m.submodules.block = self.block
        for role, row in self.streams.items():
            self._connect(m, getattr(self.block, role), row)
        return m

    def _connect(self, m, port, row):
        """Wire the block's stream ``port`` to the AXI4-Stream signals of ``row``."""
        name, live = row["interface"], self.aresetn
        tdata, tvalid, tready, tlast = (getattr(self, f"{name}_{s}")
                                        for s in ("tdata", "tvalid", "tready", "tlast"))
        tuser = getattr(self, f"{name}_tuser", None)
        payload = Value.cast(port.payload)
        pairs = [(payload[f["payload_offset"]:f["payload_offset"] + f["width"]],
                  tdata[f["offset"]:f["offset"] + f["width"]]) for f in row["tdata"]]
        if row["tlast"]["field"] is not None:
            offset = row["tlast"]["payload_offset"]
            pairs.append((payload[offset], tlast))
        if tuser is not None:
            pairs += [(payload[b["payload_offset"]], tuser[b["bit"]])
                      for b in row["tuser"]["bits"]]
        if row["direction"] == "input":
            m.d.comb += [port.valid.eq(tvalid & live), tready.eq(port.ready & live)]
            m.d.comb += [inner.eq(outer) for inner, outer in pairs]
        else:
            m.d.comb += [tvalid.eq(port.valid & live), port.ready.eq(tready & live)]
            m.d.comb += [outer.eq(inner) for inner, outer in pairs]
            if row["tlast"]["field"] is None:
                m.d.comb += tlast.eq(1)
