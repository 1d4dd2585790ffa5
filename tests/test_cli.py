"""The qdp command: list, generate (Verilog + manifest), verify, and one-line errors."""

import importlib.metadata
import json
import subprocess
import sys
import tempfile

import pytest

from qdp.build_scripts.cli import main


def run(*args):
    return subprocess.run([sys.executable, "-m", "qdp.build_scripts.cli", *args],
                          capture_output=True, text=True)


def test_list_shows_parameters_ranges_and_defaults(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "quantizer:" in out
    assert "--in-width" in out and "2..64" in out and "default 32" in out
    assert "stochastic" in out and "sat_zero" in out


def test_list_shows_the_defaults_the_component_resolves(capsys):
    assert main(["list"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()
             if line.startswith("  --")}
    assert " default 32 " in lines["--mult-width"]
    assert " default half_even " in lines["--rounding"]
    assert " default 6 " in lines["--shift-width"]
    assert " default none " in lines["--tflite"]
    assert all(" default - " not in line for line in lines.values())


def test_tflite_none_is_the_default_mode(tmp_path):
    assert main(["generate", "quantizer", "--tflite", "none", "-o", str(tmp_path / "a")]) == 0
    assert main(["generate", "quantizer", "-o", str(tmp_path / "b")]) == 0
    assert [p.name for p in (tmp_path / "a").iterdir()] == \
        [p.name for p in (tmp_path / "b").iterdir()]


def test_version():
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"qdp {importlib.metadata.version('qdp')}"


def test_keyword_module_name_is_refused_by_the_python_api_too():
    from qdp.blocks.export import generate
    with pytest.raises(ValueError, match="^name: 'module' is a Verilog/SystemVerilog keyword"):
        generate("quantizer", {}, name="module")


def test_generate_writes_verilog_and_manifest(tmp_path):
    assert main(["generate", "quantizer", "--lanes", "3", "--no-runtime-scale",
                 "--multiplier", "5", "--shift", "2", "-o", str(tmp_path)]) == 0
    (verilog,) = tmp_path.glob("*.v")
    manifest = json.loads(verilog.with_suffix(".json").read_text())
    text = verilog.read_text()
    assert f"module {manifest['module']}(" in text
    for port in ("clk", "rst", "i__valid", "i__ready", "i__payload", "o__valid", "o__ready",
                 "o__payload"):
        assert port in text
    assert manifest["parameters"]["lanes"] == 3
    assert manifest["parameters"]["multiplier"] == 5
    assert manifest["latency_cycles"] == 2
    assert manifest["throughput_beats_per_cycle"] == 1
    ports = {p["name"]: p for p in manifest["ports"]}
    assert ports["i__payload"]["width"] == 3 * 32 and ports["o__payload"]["width"] == 3 * 8
    assert [f["offset"] for f in ports["o__payload"]["fields"]] == [0, 8, 16]


def test_generate_for_ecp5_writes_the_dsp_model_beside_the_module(tmp_path):
    assert main(["generate", "mac-array", "--rows", "2", "--cols", "2", "--target", "ecp5",
                 "-o", str(tmp_path / "ecp5")]) == 0
    assert main(["generate", "mac-array", "--rows", "2", "--cols", "2",
                 "-o", str(tmp_path / "portable")]) == 0
    model = tmp_path / "ecp5" / "MULT18X18D_sim.v"
    assert "module MULT18X18D(" in model.read_text()
    assert not (tmp_path / "portable" / "MULT18X18D_sim.v").exists()


def test_generate_respects_module_name(tmp_path):
    assert main(["generate", "quantizer", "--name", "my_quant", "-o", str(tmp_path)]) == 0
    assert (tmp_path / "my_quant.v").exists()


@pytest.mark.parametrize("args,message", [
    (["generate", "quantizer", "--out-width", "33"], "out_width: 33 is out of range"),
    (["generate", "quantizer", "--out-width", "0"], "out_width: 0 is out of range"),
    (["generate", "quantizer", "--lanes", "0"], "lanes: 0 is out of range"),
    (["generate", "quantizer", "--rounding", "nearest"], "rounding: unknown value"),
    (["generate", "quantizer", "--saturation", "clip"], "saturation: unknown value"),
    (["generate", "quantizer", "--no-runtime-scale", "--multiplier", "3", "--shift", "2",
      "--zero-point", "200"], "zero_point: 200 is not in the output range"),
    (["generate", "quantizer", "--no-runtime-scale"], "multiplier: a constant scale"),
    (["generate", "quantizer", "--name", "bad name"], "name: 'bad name' is not a plain"),
    (["generate", "quantizer", "--name", "9abc"], "name: '9abc' is not a plain"),
    (["generate", "quantizer", "-o", "/proc/qdp-cannot-write"], "output: cannot write"),
    (["generate", "quantizer", "--tflite", "triple"], "expected one of none, double, single"),
    (["verify", "quantizer", "--sim", "bogus"], "invalid choice: 'bogus'"),
    (["verify", "quantizer", "--workdir", "/etc/hostname"], "workdir: /etc/hostname exists"),
    (["generate", "absmax", "--block-size", "63", "--lanes", "4"],
     "block_size: 63 is out of range (allowed a multiple of lanes=4"),
    (["generate", "absmax", "--out-width", "1"], "out_width: 1 is out of range"),
    (["generate", "absmax", "--out-width", "9"], "out_width: 9 is out of range"),
    (["generate", "absmax", "--in-width", "1"], "in_width: 1 is out of range"),
    (["generate", "absmax", "--lanes", "0"], "lanes: 0 is out of range"),
    (["generate", "absmax", "--in-format", "fp8"], "in_format: unknown float format 'fp8'"),
    (["generate", "absmax", "--in-format", "e9m2"], "in_format: 'e9m2': exp_bits: 9"),
    (["verify", "absmax", "--in-format", "bf16", "--exhaustive"],
     "exhaustive: in_format bf16: exhaustive checks take integer input"),
    (["generate", "absmax", "--model", "float32"], "model: 'float32' needs a float in_format"),
    (["generate", "quantize-linear", "--block-scale"],
     "block_scale: a scale per block arrives at run time"),
    (["generate", "absmax", "--in-format", "fp32", "--model", "float32", "--rounding",
      "floor"], "rounding: the float32 model rounds half to even (rint); got 'floor'"),
    (["generate", "absmax", "--model", "fp64"], "model: unknown value 'fp64'; expected one of exact"),
    (["verify", "absmax", "--block-size", "0"], "block_size: 0 is out of range"),
    (["synth", "quantizer", "--target", "xilinx", "--json", "r.json"],
     "invalid choice: 'xilinx'"),
    (["synth", "quantizer", "--device", "xc7a35t", "--json", "r.json"],
     "device: unknown ecp5 device 'xc7a35t'"),
    (["synth", "quantizer", "--lanes", "0", "--json", "r.json"], "lanes: 0 is out of range"),
    (["synth", "quantizer"], "the following arguments are required: --json"),
    (["generate", "quantizer", "--no-runtime-scale", "--multiplier", "300", "--shift", "2",
      "--mult-width", "8"], "multiplier: 300"),
    (["generate", "quantizer", "--no-runtime-scale", "--multiplier", "3", "--shift", "64"],
     "shift: 64"),
    (["generate", "quantizer", "--lanes", "x"], "expected an integer"),
    (["generate", "blender"], "invalid choice: 'blender'"),
    (["verify", "quantizer", "--vectors", "0"], "vectors: must be >= 1"),
    (["verify", "quantizer", "--driver", "fast"], "argument --driver: invalid choice: 'fast'"),
    (["verify", "quantizer", "--exhaustive"],
     "exhaustive: in_width 32 has 2**32 inputs; exhaustive checks take in_width <= 16"),
    (["verify", "absmax", "--exhaustive"],
     "exhaustive: in_width 16 has 2**31 (x, absmax) pairs; exhaustive checks take in_width <= 10"),
    (["verify", "quantizer", "--lanes", "0"], "lanes: 0 is out of range"),
    (["verify", "quantizer", "--seed", "-1"], "seed: -1 is out of range (allowed 0..2**32-1)"),
    (["verify", "quantizer", "--seed", str(1 << 32)], "seed: 4294967296 is out of range"),
    (["synth", "quantizer", "--seed", "-1", "--json", "r.json"], "seed: -1 is out of range"),
    (["generate", "quantizer", "--rounding", "none"], "rounding: unknown value 'none'"),
    (["generate", "absmax", "--rounding", "None"], "rounding: unknown value 'None'"),
    (["generate", "mac-array", "--dataflow", "none"], "dataflow:"),
    (["generate", "mx-dequantize", "--element", "fp5"],
     "element: unknown MX element 'fp5'; expected one of int8"),
    (["generate", "mx-dequantize", "--lanes", "33"], "lanes: 33 is out of range"),
    (["generate", "mx-dequantize", "--out-format", "int8"], "out_format: unknown float"),
    (["generate", "mx-quantize", "--element", "mxfp4"], "element: unknown MX element 'mxfp4'"),
    (["verify", "mx-quantize", "--block-size", "30", "--lanes", "4"],
     "block_size: 30 is out of range (allowed a multiple of lanes=4 from 4 to 65536)"),
    (["synth", "mx-quantize", "--rounding", "stochastic", "--json", "r.json"],
     "rounding: unknown value 'stochastic'"),
    (["generate", "mx-quantize", "--in-format", "fp64"], "in_format: unknown float format"),
    (["verify", "nf4-quantize", "--block-size", "16"],
     "block_size: 16 is not allowed (a power of two from 32 to 4096"),
    (["generate", "nf4-quantize", "--block-size", "8192"], "block_size: 8192 is not allowed"),
    (["generate", "nf4-quantize", "--in-format", "e4m3"], "in_format: unknown value 'e4m3'"),
    (["generate", "nf4-quantize", "--lanes", "64", "--block-size", "64"],
     "lanes: 64 is out of range"),
    (["verify", "nf4-dequantize", "--lanes", "0"], "lanes: 0 is out of range"),
    (["generate", "nf4-dequantize", "--block-size", "64"],
     "unrecognized arguments: --block-size"),
    (["generate", "group-dequantize", "--bits", "9"], "bits: 9 is out of range (allowed 2..8)"),
    (["verify", "group-dequantize", "--bits", "1"], "bits: 1 is out of range"),
    (["generate", "group-dequantize", "--lanes", "33"],
     "lanes: 33 is out of range (allowed 1..32)"),
    (["verify", "group-dequantize", "--bits", "5", "--exhaustive"],
     "exhaustive: bits=5 has 32 x 32 (code, zero) pairs"),
    (["generate", "group-dequantize", "--group-size", "128"],
     "unrecognized arguments: --group-size"),
    (["generate", "group-quantize", "--group-size", "0"],
     "group_size: 0 is out of range (allowed 1..4096)"),
    (["verify", "group-quantize", "--group-size", "12", "--lanes", "8"],
     "group_size: 12 is out of range (allowed a multiple of lanes=8 from 8 to 4096)"),
    (["generate", "group-quantize", "--group-size", "8192"], "group_size: 8192 is out of range"),
    (["generate", "group-quantize", "--bits", "9"], "bits: 9 is out of range (allowed 2..8)"),
    (["generate", "group-quantize", "--in-format", "e4m3"], "in_format: unknown value 'e4m3'"),
    (["verify", "mx-mac-array", "--element", "fp8"], "element: unknown MX element 'fp8'"),
    (["generate", "mx-mac-array", "--limb-width", "48"],
     "limb_width: unknown value 48; expected one of 32, 64, 128"),
    (["generate", "mx-mac-array", "--rows", "17"], "rows: 17 is out of range"),
    (["synth", "mx-mac-array", "--block-size", "0", "--json", "r.json"],
     "block_size: 0 is out of range"),
    (["generate", "quantizer", "--name", "module"],
     "name: 'module' is a Verilog/SystemVerilog keyword"),
    (["generate", "quantizer", "--name", "logic"], "name: 'logic' is a Verilog/SystemVerilog"),
    (["generate", "quantizer", "--name", "\\esc"], "is not a plain Verilog identifier"),
])
def test_errors_are_one_line_and_exit_2(args, message):
    result = run(*args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("qdp: error: "), result.stderr
    assert message in lines[0]
    assert "Traceback" not in result.stderr


def test_verify_default_quantizer_100k_bit_exact(simulator, tmp_path, capsys):
    """The README's main job: 100,000 vectors of the default Quantizer, bit-exact."""
    status = main(["verify", "quantizer", "--sim", simulator, "--workdir", str(tmp_path)])
    out = capsys.readouterr().out
    assert status == 0, out
    compared = int(out.split(f"quantizer on {simulator}: ")[1].split(" vectors")[0])
    assert compared >= 100_000 and "0 mismatches (bit-exact)" in out, out


@pytest.mark.parametrize("driver", ["bulk", "cycle"])
def test_verify_drives_with_either_driver(simulator, driver, tmp_path, capsys):
    status = main(["verify", "quantizer", "--in-width", "10", "--sim", simulator,
                   "--vectors", "2000", "--driver", driver, "--workdir", str(tmp_path)])
    out = capsys.readouterr().out
    assert status == 0 and "0 mismatches (bit-exact)" in out, out
    summary = json.loads((tmp_path / simulator / "summary.json").read_text())
    assert summary["driver"] == driver


def test_verify_exhaustive_says_so(capsys):
    status = main(["verify", "quantizer", "--in-width", "8", "--exhaustive", "--no-reset"])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "1024 vectors compared, 0 mismatches (bit-exact; 1024 of them cover every input)" \
        in out


def test_verify_waves_in_a_relative_workdir(simulator, tmp_path, monkeypatch, capsys):
    """The simulator runs inside the workdir, so a relative --workdir must still work."""
    monkeypatch.chdir(tmp_path)
    status = main(["verify", "quantizer", "--sim", simulator, "--vectors", "50", "--waves",
                   "--workdir", "wd"])
    assert status == 0, capsys.readouterr().out
    trace = "dump.vcd" if simulator == "verilator" else "*.fst"
    assert list((tmp_path / "wd" / simulator).glob(trace))
    assert (tmp_path / "wd" / simulator / "summary.json").exists()


def test_verify_leaves_no_temporary_folder(simulator, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    assert main(["verify", "quantizer", "--sim", simulator, "--vectors", "50"]) == 0
    assert list(tmp_path.iterdir()) == []


def test_a_crashing_bench_is_exit_3_with_its_reason(tmp_path, monkeypatch, capsys):
    """The seed check let through, -1 crashes the bench itself (NumPy refuses the seed)."""
    from qdp.build_scripts import cli
    from conftest import require_simulator
    require_simulator("icarus")
    monkeypatch.setattr(cli, "SEED_RANGE", (-1, 10))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    assert main(["verify", "quantizer", "--sim", "icarus", "--vectors", "20",
                 "--seed", "-1"]) == cli.EXIT_CRASH
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["qdp: error: quantizer on icarus: the bench crashed: ValueError: expected "
                   "non-negative integer (rerun with --workdir DIR to keep its log)"]
    assert list(tmp_path.iterdir()) == []
    keep = tmp_path / "kept"
    assert main(["verify", "quantizer", "--sim", "icarus", "--vectors", "20", "--seed", "-1",
                 "--workdir", str(keep)]) == cli.EXIT_CRASH
    log = keep / "icarus" / "sim.log"
    assert f"(log: {log})" in capsys.readouterr().err
    assert "ValueError: expected non-negative integer" in log.read_text()


def test_verify_builds_the_component_once(monkeypatch, capsys):
    """One construction per qdp verify, for both simulators together; the bench in the
    simulator reads the manifest instead of building the component again."""
    from qdp.hdl import Quantizer
    from conftest import require_simulator
    require_simulator("icarus")
    require_simulator("verilator")
    built = []
    original = Quantizer.__init__

    def counting(self, *args, **kwargs):
        built.append(kwargs)
        original(self, *args, **kwargs)
    monkeypatch.setattr(Quantizer, "__init__", counting)
    # The default configuration: its Verilog is built for other tests already.
    assert main(["verify", "quantizer", "--sim", "both", "--vectors", "30"]) == 0
    assert built == [{}]
