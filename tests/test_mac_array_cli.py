"""The qdp command for the MAC array: generate (Verilog + manifest), verify, and one-line
errors with exit status 2 for bad parameters."""

import json
import subprocess
import sys

import pytest

from qdp.build_scripts.cli import main

from conftest import require_simulator


def run(*args):
    return subprocess.run([sys.executable, "-m", "qdp.build_scripts.cli", *args],
                          capture_output=True, text=True)


def test_generate_mac_array(tmp_path):
    assert main(["generate", "mac-array", "--rows", "3", "--cols", "5", "--acc-width", "20",
                 "--saturate", "--a-zero", "1,2,3", "-o", str(tmp_path)]) == 0
    (verilog,) = tmp_path.glob("*.v")
    manifest = json.loads(verilog.with_suffix(".json").read_text())
    assert f"module {manifest['module']}(" in verilog.read_text()
    assert manifest["parameters"]["a_zero"] == [1, 2, 3]
    assert manifest["parameters"]["saturate"] is True
    assert manifest["latency_cycles"] == 3 + 5 + 2 + 6 and manifest["throughput_beats_per_cycle"] == 1
    assert manifest["target"] is None and "MULT18X18D" not in verilog.read_text()
    ports = {p["name"]: p for p in manifest["ports"]}
    assert ports["i__payload"]["width"] == 3 * 8 + 5 * 8 + 1
    assert ports["o__payload"]["width"] == 5 * 20 + 2
    fields = {f["field"]: f for f in ports["o__payload"]["fields"]}
    assert fields["data.0"]["offset"] == 0 and fields["data.4"]["offset"] == 80
    assert fields["first"]["offset"] == 100 and fields["last"]["offset"] == 101


def test_generate_for_ecp5_instantiates_registered_dsps(tmp_path):
    """--target ecp5: one MULT18X18D with all four register stages per PE; another module
    name than the portable export; --no-pipelined keeps the plain multiply."""
    for target, pipelined in ((None, True), ("ecp5", True), ("ecp5", False)):
        out = tmp_path / f"{target}-{pipelined}"
        args = ["generate", "mac-array", "--rows", "2", "--cols", "3", "-o", str(out)]
        args += ["--target", target] if target else []
        args += [] if pipelined else ["--no-pipelined"]
        assert main(args) == 0
    (generic,) = (tmp_path / "None-True").glob("qdp_*.v")
    (ecp5,) = (tmp_path / "ecp5-True").glob("qdp_*.v")
    (plain,) = (tmp_path / "ecp5-False").glob("qdp_*.v")
    # The DSP model comes with the export that instantiates it, and only with that one.
    assert (tmp_path / "ecp5-True" / "MULT18X18D_sim.v").exists()
    assert not (tmp_path / "ecp5-False" / "MULT18X18D_sim.v").exists()
    assert generic.stem != ecp5.stem
    manifest = json.loads(ecp5.with_suffix(".json").read_text())
    assert manifest["target"] == "ecp5" and manifest["parameters"]["pipelined"] is True
    text = ecp5.read_text()
    assert text.count("MULT18X18D #(") == 6
    for reg in ("INPUTA", "INPUTB", "PIPELINE", "OUTPUT"):
        assert text.count(f'.REG_{reg}_CLK("CLK0")') == 6
    assert "MULT18X18D" not in plain.read_text()
    assert json.loads(plain.with_suffix(".json").read_text())["latency_cycles"] == 2 + 3 + 2


@pytest.mark.parametrize("args,message", [
    (["--rows", "0"], "rows: 0 is out of range"),
    (["--cols", "33"], "cols: 33 is out of range"),
    (["--a-width", "9"], "a_width: 9 is out of range"),
    (["--acc-width", "49"], "acc_width: 49 is out of range"),
    (["--acc-width", "16", "--runtime-zero"], "acc_width: 16 bits cannot hold one product"),
    (["--a-zero", "200"], "a_zero: 200 does not fit"),
    (["--rows", "2", "--a-zero", "1,2,3"], "a_zero: expected one value or 2"),
])
def test_bad_parameters_one_line_exit_2(args, message, tmp_path):
    result = run("generate", "mac-array", *args, "-o", str(tmp_path))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("qdp: error: ") and message in lines[0], \
        result.stderr


def test_verify_mac_array_on_icarus(tmp_path):
    require_simulator("icarus")
    result = run("verify", "mac-array", "--rows", "3", "--cols", "2", "--acc-width", "16",
                 "--saturate", "--sim", "icarus", "--vectors", "600", "--workdir",
                 str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 mismatches (bit-exact)" in result.stdout
