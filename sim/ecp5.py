"""Simulation models of the ECP5 primitives that qdp's ECP5 export instantiates.

``qdp generate ... --target ecp5`` (``target="ecp5"``) turns every registered multiplier
tile (:class:`qdp.hdl.DSPMultiplier`) into a ``MULT18X18D`` instance. Yosys ships no
simulation model of MULT18X18D (only a black box in ``ecp5/cells_bb.v``), so this module
carries one, to compile with the exported module in Icarus Verilog or Verilator::

    from qdp.sim.ecp5 import write_models
    write_models("out/")          # out/MULT18X18D_sim.v
    # iverilog -g2012 out/qdp_mac_array_....v out/MULT18X18D_sim.v your_tb.v

The manifest of an ECP5 export that instantiates MULT18X18D names this file under
``simulation_models``.

:data:`MULT18X18D_MODEL` is the subset the export uses, written from Lattice's
documentation (TN1267) against the primitive's port and parameter names: the 18x18
multiply with SIGNEDA/SIGNEDB and the four REG_* stages, each present only when its
``_CLK`` parameter is ``"CLK0"``, clocked by CLK0 under CE0 and reset (synchronously) by
RST0. It refuses any other register setting with ``$fatal``, so a wrong parameter name or
value shows up in simulation instead of passing silently. ``tests/test_dsp.py`` runs the
ECP5 export against the portable export with it, cycle by cycle. It models the function
and latency of the primitive, not its timing, the C port, the cascade or the silicon.
"""

from pathlib import Path

from ..hdl.dsp import SIMULATION_MODEL_FILES

__all__ = ["MULT18X18D_MODEL", "MODEL_FILES", "write_models"]

_PORTS = ([f"A{n}" for n in range(18)] + [f"B{n}" for n in range(18)]
          + [f"C{n}" for n in range(18)] + [f"P{n}" for n in range(36)]
          + ["SIGNEDA", "SIGNEDB", "SOURCEA", "SOURCEB", "CLK0", "CE0", "RST0"])

MULT18X18D_MODEL = f"""// MULT18X18D simulation model (subset) shipped with qdp (qdp.sim.ecp5).
// 18x18 multiply, SIGNEDA/SIGNEDB, REG_INPUTA/INPUTB/PIPELINE/OUTPUT on CLK0/CE0/RST0.
module MULT18X18D({", ".join(_PORTS)});
  input {", ".join(p for p in _PORTS if not p.startswith("P"))};
  output {", ".join(p for p in _PORTS if p.startswith("P"))};
  parameter REG_INPUTA_CLK = "NONE";
  parameter REG_INPUTA_CE = "CE0";
  parameter REG_INPUTA_RST = "RST0";
  parameter REG_INPUTB_CLK = "NONE";
  parameter REG_INPUTB_CE = "CE0";
  parameter REG_INPUTB_RST = "RST0";
  parameter REG_PIPELINE_CLK = "NONE";
  parameter REG_PIPELINE_CE = "CE0";
  parameter REG_PIPELINE_RST = "RST0";
  parameter REG_OUTPUT_CLK = "NONE";
  parameter REG_OUTPUT_CE = "CE0";
  parameter REG_OUTPUT_RST = "RST0";
  parameter CLK0_DIV = "ENABLED";
  parameter GSR = "ENABLED";
  parameter RESETMODE = "SYNC";
  wire [17:0] A = {{{", ".join(f"A{n}" for n in reversed(range(18)))}}};
  wire [17:0] B = {{{", ".join(f"B{n}" for n in reversed(range(18)))}}};
  reg [17:0] a_q = 0, b_q = 0;
  reg [35:0] pipe_q = 0, out_q = 0;
  initial begin
    if ((REG_INPUTA_CLK != "NONE" && REG_INPUTA_CLK != "CLK0") ||
        (REG_INPUTB_CLK != "NONE" && REG_INPUTB_CLK != "CLK0") ||
        (REG_PIPELINE_CLK != "NONE" && REG_PIPELINE_CLK != "CLK0") ||
        (REG_OUTPUT_CLK != "NONE" && REG_OUTPUT_CLK != "CLK0") ||
        REG_INPUTA_CE != "CE0" || REG_INPUTB_CE != "CE0" || REG_PIPELINE_CE != "CE0" ||
        REG_OUTPUT_CE != "CE0" || REG_INPUTA_RST != "RST0" || REG_INPUTB_RST != "RST0" ||
        REG_PIPELINE_RST != "RST0" || REG_OUTPUT_RST != "RST0" || RESETMODE != "SYNC") begin
      $display("MULT18X18D model: unsupported register setting");
      $fatal;
    end
  end
  wire [17:0] a_s = REG_INPUTA_CLK == "CLK0" ? a_q : A;
  wire [17:0] b_s = REG_INPUTB_CLK == "CLK0" ? b_q : B;
  wire signed [36:0] prod = $signed({{SIGNEDA & a_s[17], a_s}}) * $signed({{SIGNEDB & b_s[17], b_s}});
  wire [35:0] pipe_s = REG_PIPELINE_CLK == "CLK0" ? pipe_q : prod[35:0];
  wire [35:0] P = REG_OUTPUT_CLK == "CLK0" ? out_q : pipe_s;
  always @(posedge CLK0) if (CE0) begin
    a_q <= RST0 ? 18'd0 : A;
    b_q <= RST0 ? 18'd0 : B;
    pipe_q <= RST0 ? 36'd0 : prod[35:0];
    out_q <= RST0 ? 36'd0 : pipe_s;
  end
  assign {{{", ".join(f"P{n}" for n in reversed(range(36)))}}} = P;
endmodule
"""

#: ``{primitive: (file name, Verilog text)}`` of every model this module ships.
MODEL_FILES = {"MULT18X18D": (SIMULATION_MODEL_FILES["MULT18X18D"], MULT18X18D_MODEL)}


def write_models(directory, primitives=None):
    """Write the simulation model of each of ``primitives`` (default: every one in
    :data:`MODEL_FILES`) into ``directory`` (created if missing); return the paths."""
    directory = Path(directory)
    primitives = list(MODEL_FILES) if primitives is None else list(primitives)
    unknown = [p for p in primitives if p not in MODEL_FILES]
    if unknown:
        raise ValueError(f"primitives: no simulation model of {', '.join(unknown)}; "
                         f"qdp ships {', '.join(MODEL_FILES)}")
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for primitive in primitives:
        file_name, text = MODEL_FILES[primitive]
        path = directory / file_name
        path.write_text(text)
        paths.append(path)
    return paths
