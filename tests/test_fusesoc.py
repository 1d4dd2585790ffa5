"""FuseSoC: the CAPI2 core of a generated module, and qdp's generator run by ``fusesoc run``.

The end-to-end test is a user's own project: a core ``user:demo:top:0`` whose targets
``generate:`` a quantizer through the qdp generator and whose testbench (its own Verilog)
drives one beat into the generated module and checks the result against
:func:`qdp.golden.quantize`. ``fusesoc run`` builds and runs it on Icarus and lints it
with Verilator.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from qdp import golden
from qdp.blocks import generate
from qdp.build_scripts import cli
from qdp.build_scripts.fusesoc import core_file, core_vlnv, vlnv_part
from qdp.build_scripts.fusesoc_generator import GENERATOR_CORE, main, write_generator_core
from qdp.sim.toolchain import setup_verilator

yaml = pytest.importorskip("yaml")            # FuseSoC's dependency, so present with it
pytest.importorskip("fusesoc")


def _fusesoc(*args, cwd):
    """``fusesoc ARGS`` in ``cwd`` with this Python's environment on ``PATH`` (the
    generator core's interpreter is ``python3`` on ``PATH``)."""
    env = dict(os.environ)
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    fusesoc = shutil.which("fusesoc", path=env["PATH"])
    assert fusesoc, "fusesoc is not installed (pip install -e .[dev])"
    return subprocess.run([fusesoc, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.parametrize("block,params,target", [
    ("quantizer", {"lanes": 2}, None),
    ("mac-array", {"rows": 2, "cols": 2}, "ecp5"),
])
def test_core_file_parses_with_the_vlnv_files_and_targets(block, params, target):
    _, manifest = generate(block, params, target=target)
    module = manifest["module"]
    core = yaml.safe_load(core_file(manifest, f"{module}.v"))
    assert core["name"] == core_vlnv(manifest)
    vendor, library, name, version = core["name"].split(":")
    assert (vendor, library, name) == ("qdp", block, module)
    assert version == vlnv_part(version)
    assert core["filesets"]["rtl"]["files"] == [f"{module}.v"]
    assert set(core["targets"]) == {"default", "sim", "lint", "synth"}
    assert core["targets"]["sim"]["default_tool"] == "icarus"
    assert core["targets"]["sim"]["toplevel"] == module
    assert core["targets"]["lint"]["tools"]["verilator"]["mode"] == "lint-only"
    assert core["targets"]["synth"]["tools"]["yosys"]["arch"] == "ecp5"
    assert core["targets"]["synth"]["filesets"] == ["rtl"]
    if target == "ecp5":
        assert core["filesets"]["sim_models"]["files"] == ["MULT18X18D_sim.v"]
        assert "sim_models" in core["targets"]["sim"]["filesets"]
    else:
        assert "sim_models" not in core["filesets"]


def test_fusesoc_reads_the_core_and_keeps_the_models_from_synthesis(tmp_path):
    """FuseSoC's own parser: a core depending on this one gets the MULT18X18D model under
    a simulator and not under Yosys."""
    from fusesoc.capi2.coreparser import Core2Parser
    from fusesoc.core import Core
    _, manifest = generate("mac-array", {"rows": 2, "cols": 2}, target="ecp5")
    path = tmp_path / "m.core"
    path.write_text(core_file(manifest, "m.v"))
    core = Core(Core2Parser(), str(path))
    assert str(core.name) == core_vlnv(manifest)

    def files(tool):
        return [f["name"] for f in core.get_files({"tool": tool, "target": "default"})]
    assert files("icarus") == ["m.v", "MULT18X18D_sim.v"]
    assert files("yosys") == ["m.v"]


def test_vlnv_part_maps_what_a_vlnv_refuses():
    assert vlnv_part("mac-array") == "mac-array"
    assert vlnv_part("0.1.dev3+g1234") == "0.1.dev3.g1234"


def test_cli_generate_fusesoc_writes_the_core(tmp_path, capsys):
    assert cli.main(["generate", "quantizer", "--lanes", "2", "--name", "q2", "--fusesoc",
                     "-o", str(tmp_path)]) == 0
    printed = capsys.readouterr().out.split()
    core = tmp_path / "q2.core"
    assert str(core) in printed
    data = yaml.safe_load(core.read_text())
    assert data["name"].startswith("qdp:quantizer:q2:")
    assert data["filesets"]["rtl"]["files"] == ["q2.v"]


def test_cli_generate_fusesoc_ecp5_lists_the_model(tmp_path, capsys):
    assert cli.main(["generate", "mac-array", "--rows", "2", "--cols", "2", "--target",
                     "ecp5", "--name", "m", "--fusesoc", "-o", str(tmp_path)]) == 0
    data = yaml.safe_load((tmp_path / "m.core").read_text())
    assert data["filesets"]["sim_models"]["files"] == ["MULT18X18D_sim.v"]
    assert (tmp_path / "MULT18X18D_sim.v").exists()


# The user's own project: a quantizer of two lanes, one beat, checked in Verilog.
PARAMS = {"lanes": 2, "in_width": 16, "rounding": "half_away"}
# x * 3/32 + 3: lane 0 rounds 115.6875 up, lane 1 is the tie -10.5 that half_away takes
# to -11 (half_even would give -10); neither saturates.
X, M, S, Z = [1234, -112], 24_576, 18, 3
_USER_CORE = """CAPI=2:
name: user:demo:top:0
filesets:
  tb:
    file_type: verilogSource
    files: [tb.v]
    depend: ["qdp:qdp:generators"]
generate:
  quantizer_gen:
    generator: qdp
    parameters:
      block: quantizer
      lanes: 2
      in_width: 16
      rounding: half_away
      name: demo_quantizer
targets:
  sim:
    default_tool: icarus
    filesets: [tb]
    generate: [quantizer_gen]
    toplevel: tb
    tools:
      icarus:
        iverilog_options: [-g2012]
  lint:
    default_tool: verilator
    filesets: [tb]
    generate: [quantizer_gen]
    toplevel: tb
    tools:
      verilator:
        mode: lint-only
        verilator_options: [--timing, -Wno-WIDTH]
"""


def _testbench(manifest, expected):
    """The user's testbench: reset, one beat in, the beat out compared with
    ``expected`` (the golden's output lanes), then ``$finish``."""
    ports = {p["name"]: p for p in manifest["ports"]}
    fields = {f["field"]: f for f in ports["i__payload"]["fields"]}
    values = {"data.0": X[0], "data.1": X[1], "multiplier": M, "shift": S, "zero_point": Z}
    beat = 0
    for field, value in values.items():
        f = fields[field]
        beat |= (value & ((1 << f["width"]) - 1)) << f["offset"]
    iw, ow = ports["i__payload"]["width"], ports["o__payload"]["width"]
    out_fields = ports["o__payload"]["fields"]
    want = 0
    for f, value in zip(out_fields, expected):
        want |= (int(value) & ((1 << f["width"]) - 1)) << f["offset"]
    return f"""`timescale 1ns/1ps
module tb;
  reg clk = 0, rst = 1, i_valid = 0;
  reg [{iw - 1}:0] i_payload = {iw}'h{beat:x};
  wire i_ready, o_valid;
  wire [{ow - 1}:0] o_payload;
  integer n;
  always #5 clk = ~clk;
  demo_quantizer dut(.clk(clk), .rst(rst), .i__payload(i_payload), .i__valid(i_valid),
                     .i__ready(i_ready), .o__payload(o_payload), .o__valid(o_valid),
                     .o__ready(1'b1));
  // Inputs change and outputs are sampled on the falling edge, away from the DUT's.
  initial begin
    repeat (2) @(negedge clk);
    rst = 0;
    @(negedge clk);
    i_valid = 1;
    while (!i_ready) @(negedge clk);
    @(negedge clk);             // the beat moved on the rising edge before this one
    i_valid = 0;
    n = 1;
    while (!o_valid && n < 20) begin @(negedge clk); n = n + 1; end
    if (o_valid && o_payload == {ow}'h{want:x})
      $display("USER TB PASS: o = %h after %0d cycles", o_payload, n);
    else
      $display("USER TB FAIL: o = %h valid %b, expected {ow}'h{want:x}", o_payload, o_valid);
    $finish;
  end
endmodule
"""


def test_a_user_core_generates_a_block_and_fusesoc_runs_it(tmp_path):
    setup_verilator()
    library = tmp_path / "qdp-lib"
    assert main(["--library", str(library)]) == 0
    assert (library / GENERATOR_CORE).exists()
    _, manifest = generate("quantizer", PARAMS, name="demo_quantizer")
    expected = golden.quantize(X, M, S, zero_point=Z, in_width=16,
                               rounding="half_away").tolist()
    assert expected == [119, -8]
    user = tmp_path / "user"
    user.mkdir()
    (user / "top.core").write_text(_USER_CORE)
    (user / "tb.v").write_text(_testbench(manifest, expected))
    build = tmp_path / "build"
    common = ["--cores-root", str(library), "--cores-root", str(user)]
    sim = _fusesoc(*common, "run", "--build-root", str(build / "sim"), "--target", "sim",
                   "user:demo:top", cwd=tmp_path)
    out = sim.stdout + sim.stderr
    assert sim.returncode == 0, out[-3000:]
    assert "USER TB PASS" in out, out[-3000:]
    generated = list((build / "sim").rglob("demo_quantizer.v"))
    assert generated, "the generator wrote no demo_quantizer.v"
    lint = _fusesoc(*common, "run", "--build-root", str(build / "lint"), "--target",
                    "lint", "user:demo:top", cwd=tmp_path)
    assert lint.returncode == 0, (lint.stdout + lint.stderr)[-3000:]
    (vc,) = (build / "lint").rglob("user_demo_top_0.vc")
    assert "demo_quantizer.v" in vc.read_text() and "--top-module tb" in vc.read_text()
    assert "mode: lint-only" in (vc.parent / "user_demo_top_0.eda.yml").read_text()


def test_the_generator_refuses_a_bad_parameter_in_one_line(tmp_path):
    library = tmp_path / "qdp-lib"
    write_generator_core(library)
    user = tmp_path / "user"
    user.mkdir()
    (user / "top.core").write_text(_USER_CORE.replace("lanes: 2", "lanes: 0"))
    (user / "tb.v").write_text("module tb; endmodule\n")
    run = _fusesoc("--cores-root", str(library), "--cores-root", str(user), "run",
                   "--build-root", str(tmp_path / "build"), "--target", "sim",
                   "--setup", "user:demo:top", cwd=tmp_path)
    out = run.stdout + run.stderr
    assert run.returncode != 0
    lines = [line for line in out.splitlines() if "qdp: error:" in line]
    assert len(lines) == 1 and "lanes" in lines[0], out[-3000:]
    assert "Traceback" not in out


def test_the_generator_writes_the_module_models_and_core_named_by_fusesoc(tmp_path):
    """The generator protocol without FuseSoC: its input file in, files and a core out;
    an ECP5 export brings its MULT18X18D model, ``none`` is a choice's None."""
    from qdp.build_scripts.fusesoc_generator import run
    data = {"files_root": str(tmp_path), "gapi": "1.0", "vlnv": "user:lib:top-mac:1.2",
            "parameters": {"block": "mac-array", "rows": 2, "cols": 2, "target": "ecp5",
                           "interface": "axis", "name": "mac_axis"}}
    (tmp_path / "in.yml").write_text(yaml.safe_dump(data))
    out = tmp_path / "out"
    out.mkdir()
    core = run(tmp_path / "in.yml", out)
    assert core == out / "top-mac.core"
    parsed = yaml.safe_load(core.read_text())
    assert parsed["name"] == "user:lib:top-mac:1.2"
    assert parsed["filesets"]["rtl"]["files"] == ["mac_axis.v"]
    assert parsed["filesets"]["sim_models"]["files"] == ["MULT18X18D_sim.v"]
    assert {p.name for p in out.iterdir()} == {"mac_axis.v", "mac_axis.json",
                                                "MULT18X18D_sim.v", "top-mac.core"}
    data["parameters"] = {"block": "quantizer", "tflite": "none", "name": "q"}
    (tmp_path / "in.yml").write_text(yaml.safe_dump(data))
    assert run(tmp_path / "in.yml", out).exists()


@pytest.mark.parametrize("parameters,message", [
    ({"lanes": 2}, "block: the qdp generator needs a block parameter"),
    ({"block": "nope"}, "block: unknown block 'nope'"),
    ({"block": "quantizer", "lane": 2}, "lane: not a parameter of quantizer"),
])
def test_the_generator_names_a_bad_parameter(tmp_path, capsys, parameters, message):
    data = {"files_root": str(tmp_path), "gapi": "1.0", "vlnv": "u:l:t-g:0",
            "parameters": parameters}
    (tmp_path / "in.yml").write_text(yaml.safe_dump(data))
    assert main([str(tmp_path / "in.yml")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("qdp: error: " + message), err
