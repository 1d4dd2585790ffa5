"""FuseSoC packaging of a generated module: its CAPI2 core file.

``qdp generate BLOCK ... --fusesoc`` writes ``<module>.core`` next to ``<module>.v``, and
the qdp FuseSoC generator (:mod:`qdp.build_scripts.fusesoc_generator`) writes the same core
for a block a user's core asks for. The core:

- ``name``: the VLNV ``qdp:<block>:<module>:<qdp version>``. A VLNV part may hold only
  letters, digits, ``.``, ``-`` and ``_`` (FuseSoC's ``fusesoc/vlnv.py``): block names
  (``mac-array``) and module names (plain Verilog identifiers) pass unchanged; any other
  character of the version (``+`` of a local version such as ``0.1.dev3+g1234``) becomes
  ``.``. A generated core is named by the VLNV FuseSoC hands the generator instead.
- ``filesets``: ``rtl`` (the module's Verilog) and, when the ECP5 export instantiates
  primitives Yosys has no simulation model of, ``sim_models`` (``MULT18X18D_sim.v``,
  :func:`qdp.sim.ecp5.write_models`), which no synthesis tool gets (FuseSoC's ``tool_yosys``,
  ``tool_trellis`` and ``tool_diamond`` flags exclude it), so Yosys maps the real primitive.
- ``targets``: ``default`` (the files: what a core depending on this one gets), ``sim``
  (Icarus, toplevel the module: elaborates and runs it with no stimulus), ``lint``
  (Verilator ``--lint-only`` with ``-Wno-WIDTH``: Amaranth's Verilog widens operands
  implicitly, every other warning fails) and ``synth`` (Yosys ``synth_ecp5``, or
  ``synth_ice40 -dsp`` for an ``--target ice40`` export, as ``qdp synth`` runs it).

The text is written directly (no YAML library is a dependency of qdp): every string is a
JSON string, which YAML reads as a double-quoted scalar.
"""

import importlib.metadata
import json
import re

__all__ = ["core_file", "core_vlnv", "vlnv_part", "SYNTH_TOOLS"]

#: FuseSoC flags of the synthesis tools that must not get the simulation models.
SYNTH_TOOLS = ("yosys", "trellis", "diamond")


def vlnv_part(text):
    """``text`` as a VLNV part: characters other than ``[A-Za-z0-9_.-]`` become ``.``."""
    return re.sub(r"[^A-Za-z0-9_.-]", ".", str(text))


def core_vlnv(manifest):
    """``qdp:<block>:<module>:<qdp version>`` of a generated module's manifest."""
    version = vlnv_part(importlib.metadata.version("qdp"))
    return ":".join(["qdp", vlnv_part(manifest["block"]), vlnv_part(manifest["module"]),
                     version])


def _q(text):
    return json.dumps(str(text))


def _sim_models_expr():
    """``!tool_yosys? (!tool_trellis? (... (sim_models)))``: every tool but synthesis."""
    expr = "sim_models"
    for tool in reversed(SYNTH_TOOLS):
        expr = f"!tool_{tool}? ({expr})"
    return expr


def core_file(manifest, verilog_name, *, vlnv=None):
    """The CAPI2 core (YAML text) of the module ``manifest`` describes, whose Verilog is
    the file ``verilog_name`` beside the core; ``vlnv`` overrides the name
    (:func:`core_vlnv`)."""
    module = manifest["module"]
    models = [m["file"] for m in manifest.get("simulation_models", [])]
    target = manifest.get("target")
    arch = "ice40" if target == "ice40" else "ecp5"
    filesets = ["rtl"] + ([_sim_models_expr()] if models else [])
    sim_filesets = ["rtl"] + (["sim_models"] if models else [])
    description = (f"qdp {manifest['block']}: {module} (interface "
                   f"{manifest.get('interface', 'amaranth')}, target {target or 'portable'})")
    lines = [
        "CAPI=2:",
        f"name: {_q(vlnv or core_vlnv(manifest))}",
        f"description: {_q(description)}",
        "",
        "filesets:",
        "  rtl:",
        "    file_type: verilogSource",
        "    files:",
        f"      - {_q(verilog_name)}",
    ]
    if models:
        lines += ["  sim_models:", "    file_type: verilogSource", "    files:"]
        lines += [f"      - {_q(name)}" for name in models]
    lines += [
        "",
        "targets:",
        "  default:",
        f"    filesets: [{', '.join(map(_q, filesets))}]",
        "  sim:",
        "    default_tool: icarus",
        f"    filesets: [{', '.join(map(_q, sim_filesets))}]",
        f"    toplevel: {_q(module)}",
        "    tools:",
        "      icarus:",
        "        iverilog_options: [\"-g2012\"]",
        "  lint:",
        "    default_tool: verilator",
        f"    filesets: [{', '.join(map(_q, sim_filesets))}]",
        f"    toplevel: {_q(module)}",
        "    tools:",
        "      verilator:",
        "        mode: lint-only",
        "        verilator_options: [\"-Wno-WIDTH\"]",
        "  synth:",
        "    default_tool: yosys",
        "    filesets: [\"rtl\"]",
        f"    toplevel: {_q(module)}",
        "    tools:",
        "      yosys:",
        f"        arch: {arch}",
        "        output_format: json",
    ]
    if arch == "ice40":
        lines.append("        yosys_synth_options: [\"-dsp\"]")
    return "\n".join(lines) + "\n"
