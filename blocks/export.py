"""Verilog export and the JSON manifest that travels with every generated module."""

import hashlib
import json
import re

from amaranth.back import verilog
from amaranth.hdl import Shape
from amaranth.lib import wiring

from ..hdl.axis import MAX_TDATA_WIDTH, AxiStreamWrapper, axis_streams
from ..hdl.dsp import SIMULATION_MODEL_FILES, Target
from .layout import field_rows
from .registry import get_block

__all__ = ["generate", "manifest", "module_name", "check_module_name", "VERILOG_KEYWORDS",
           "INTERFACES", "axis_port_rows"]

#: The port conventions a module is generated with: Amaranth's stream names (the
#: default), or AXI4-Stream (:class:`qdp.hdl.axis.AxiStreamWrapper`).
INTERFACES = ("amaranth", "axis")

#: Reserved words of Verilog-2005 and SystemVerilog (IEEE 1800-2017, Annex B): a module
#: named like one of them is legal only as an escaped identifier, which tools, wrappers
#: and FuseSoC cores then have to spell ``\\name ``.
VERILOG_KEYWORDS = frozenset("""
accept_on alias always always_comb always_ff always_latch and assert assign assume
automatic before begin bind bins binsof bit break buf bufif0 bufif1 byte case casex casez
cell chandle checker class clocking cmos config const constraint context continue cover
covergroup coverpoint cross deassign default defparam design disable dist do edge else end
endcase endchecker endclass endclocking endconfig endfunction endgenerate endgroup
endinterface endmodule endpackage endprimitive endprogram endproperty endspecify
endsequence endtable endtask enum event eventually expect export extends extern final
first_match for force foreach forever fork forkjoin function generate genvar global highz0
highz1 if iff ifnone ignore_bins illegal_bins implements implies import incdir include
initial inout input inside instance int integer interconnect interface intersect join
join_any join_none large let liblist library local localparam logic longint macromodule
matches medium modport module nand negedge nettype new nexttime nmos nor noshowcancelled
not notif0 notif1 null or output package packed parameter pmos posedge primitive priority
program property protected pull0 pull1 pulldown pullup pulsestyle_ondetect
pulsestyle_onevent pure rand randc randcase randsequence rcmos real realtime ref reg
reject_on release repeat restrict return rnmos rpmos rtran rtranif0 rtranif1 s_always
s_eventually s_nexttime s_until s_until_with scalared sequence shortint shortreal
showcancelled signed small soft solve specify specparam static string strong strong0
strong1 struct super supply0 supply1 sync_accept_on sync_reject_on table tagged task this
throughout time timeprecision timeunit tran tranif0 tranif1 tri tri0 tri1 triand trior
trireg type typedef union unique unique0 unsigned until until_with untyped use uwire var
vectored virtual void wait wait_order wand weak weak0 weak1 while wildcard wire with within
wor xnor xor
""".split())


def module_name(block, params, target=None, interface="amaranth"):
    """``qdp_<block>_<hash>``: the hash covers every resolved parameter, the target family
    and the interface, so two modules with the same name are the same hardware."""
    key = {"block": block, "params": params}
    if target is not None:                  # generic modules keep their names
        key["target"] = target
    if interface != "amaranth":             # and so do Amaranth-interface ones
        key["interface"] = interface
    key = json.dumps(key, sort_keys=True)
    return f"qdp_{block.replace('-', '_')}_{hashlib.sha1(key.encode()).hexdigest()[:10]}"


def check_module_name(name):
    """Refuse a module name that is not a plain Verilog identifier or is a keyword."""
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError(f"name: {name!r} is not a plain Verilog identifier (letters, "
                         f"digits and _, not starting with a digit)")
    if name in VERILOG_KEYWORDS:
        raise ValueError(f"name: {name!r} is a Verilog/SystemVerilog keyword; choose "
                         f"another module name")
    return name


def _port_rows(component):
    rows = []
    for path, member, value in component.signature.flatten(component):
        name = "__".join(str(p) for p in path)
        row = {"name": name, "direction": "input" if member.flow == wiring.In else "output",
               "width": Shape.cast(member.shape).width}
        if len(path) == 2 and path[1] in ("valid", "ready", "payload"):
            row["stream"], row["role"] = path[0], path[1]
        if path[-1] == "payload":
            row["fields"] = field_rows(member.shape)
        rows.append(row)
    rows += [{"name": "clk", "direction": "input", "width": 1, "role": "clock"},
             {"name": "rst", "direction": "input", "width": 1,
              "role": "reset (synchronous, active high)"}]
    return rows


def axis_port_rows(streams):
    """The ports of the AXI4-Stream form, for the manifest: ``aclk``, ``aresetn`` and per
    stream of ``streams`` (:func:`qdp.hdl.axis.axis_streams`) its TDATA (with the bit range
    of every field), TVALID, TREADY, TLAST and TUSER."""
    rows = [{"name": "aclk", "direction": "input", "width": 1, "role": "clock"},
            {"name": "aresetn", "direction": "input", "width": 1,
             "role": "reset (synchronous, active low)"}]
    for role, row in streams.items():
        name, out = row["interface"], row["direction"]
        back = "input" if out == "output" else "output"
        common = {"stream": role, "interface": name}
        rows.append({"name": f"{name}_tdata", "direction": out, "width": row["tdata_width"],
                     "role": "tdata", **common,
                     "fields": [{k: f[k] for k in ("field", "offset", "width", "signed")}
                                for f in row["tdata"]]})
        rows += [{"name": f"{name}_tvalid", "direction": out, "width": 1, "role": "tvalid",
                  **common},
                 {"name": f"{name}_tready", "direction": back, "width": 1, "role": "tready",
                  **common},
                 {"name": f"{name}_tlast", "direction": out, "width": 1, "role": "tlast",
                  **common}]
        if row["tuser"] is not None:
            rows.append({"name": f"{name}_tuser", "direction": out,
                         "width": row["tuser"]["width"], "role": "tuser", **common})
    return rows


def _stream_rows(component):
    """``{stream: {"direction", ...}}``; an input stream also lists the output streams
    whose ``ready`` reaches its ``ready`` combinationally (the component states them)."""
    rows = {}
    for name, member in component.signature.members.items():
        if not member.is_signature:
            continue
        row = {"direction": "input" if member.flow == wiring.In else "output"}
        if row["direction"] == "input":
            row["ready_depends_on_output_ready"] = list(component.ready_dependencies[name])
        rows[name] = row
    return rows


def manifest(block, component, name, target=None, interface="amaranth"):
    """The manifest of ``component`` (the block itself, also for ``interface="axis"``,
    whose manifest lists the AXI4-Stream ports and adds the mapping as ``axis``)."""
    params = get_block(block).effective_params(component)
    axis = axis_streams(component) if interface == "axis" else None
    result = {
        "module": name,
        "block": block,
        "target": target,
        "interface": interface,
        "parameters": params,
        "ports": _port_rows(component) if axis is None else axis_port_rows(axis),
        "streams": _stream_rows(component),
        "latency_cycles": component.latency,
        # The component states what its latency counts: from which accepted input beat
        # to which valid output beat, and under which traffic.
        "latency": {"cycles": component.latency, **component.latency_definition},
        "throughput_beats_per_cycle": component.throughput,
        "lane_packing": "each payload field is listed with its absolute bit offset; "
                        "lane k of an array is field <name>.k, lane 0 at the lowest bits",
        "generator": "qdp",
    }
    if axis is not None:
        result["axis"] = {
            "clock": "aclk",
            "reset": {"port": "aresetn", "active": "low", "synchronous": True,
                      "effect": "resets the block; no beat moves while it is low"},
            "tdata_layout": "payload fields except first/last, packed without gaps in the "
                            "payload's bit order (lane 0 at bit 0), zero-padded to whole "
                            "bytes; each field's TDATA bit offset is listed",
            "max_tdata_width": MAX_TDATA_WIDTH,
            "streams": axis,
        }
    if target == "ecp5" and component.dsp_tiles:
        file_name = SIMULATION_MODEL_FILES["MULT18X18D"]
        result["simulation_models"] = [{
            "primitive": "MULT18X18D", "instances": component.dsp_tiles, "file": file_name,
            "how": "Yosys ships no simulation model of it; qdp.sim.ecp5.write_models(DIR) "
                   "writes this one, to compile with the module in Icarus or Verilator"}]
    return result


def generate(block, params, *, name=None, target=None, interface="amaranth"):
    """Build ``block`` with ``params``; return ``(verilog_text, manifest_dict)``.

    ``interface`` (one of :data:`INTERFACES`): ``"amaranth"`` keeps Amaranth's port names
    (``clk``, ``rst``, ``i__valid`` ...); ``"axis"`` wraps the block in AXI4-Stream
    (:class:`qdp.hdl.axis.AxiStreamWrapper`: ``aclk``, ``aresetn``, ``s_axis_<role>_t*``,
    ``m_axis_<role>_t*``), its default module name ending in ``_axis``, and the manifest
    records the mapping (``axis``).

    ``target`` (``None``, ``"ecp5"`` or ``"ice40"``) is the device family the Verilog is
    for: it reaches ``elaborate(platform)`` as a :class:`qdp.hdl.dsp.Target`, and on ECP5
    the MAC array's multipliers become MULT18X18D primitives with their own registers.
    ``None`` is portable Verilog (behavioural models only) for simulation and any tool.
    """
    if name is not None:
        check_module_name(name)
    if interface not in INTERFACES:
        raise ValueError(f"interface: {interface!r} is not one of {', '.join(INTERFACES)}")
    spec = get_block(block)
    platform = None if target is None else Target(target)
    component = spec.build(**params)
    top = component if interface == "amaranth" else AxiStreamWrapper(component)
    if name is None:
        name = module_name(block, spec.effective_params(component), target, interface)
        name += "_axis" if interface == "axis" else ""
    text = verilog.convert(top, name=name, emit_src=False, platform=platform)
    return text, manifest(block, component, name, target, interface)
