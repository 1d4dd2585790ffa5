"""`qdp prove`: PASS is exit 0, a failed proof prints its trace and exits 1, a bad --depth
or a missing tool is one line and exit 2."""

from pathlib import Path

import pytest
from _mutants import Mutant, payload_moves_while_stalled
from conftest import require
from qdp.build_scripts import cli
from qdp.build_scripts.cli import main
from qdp.formal import quantizer as fq
from qdp.formal import runner
from qdp.formal.runner import Proof, missing_tools
from qdp.formal.stream import StreamHarness
from qdp.hdl import Quantizer

MAC = ["--rows", "2", "--cols", "2", "--a-width", "4", "--b-width", "4", "--acc-width", "16"]


def one_error_line(capsys):
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    return err


@pytest.mark.parametrize("depth", ["0", "-3", "x", "1.5"])
def test_bad_depth(capsys, depth):
    assert main(["prove", "mac-array", *MAC, "--depth", depth]) == 2
    assert "depth" in one_error_line(capsys)


def test_missing_solver(capsys, monkeypatch):
    which = runner.find_tool
    monkeypatch.setattr(runner, "find_tool", lambda tool: None if tool == "z3" else which(tool))
    assert main(["prove", "mac-array", *MAC]) == 2
    assert "z3" in one_error_line(capsys)


def test_missing_sby(capsys, monkeypatch):
    monkeypatch.setattr(runner, "find_tool", lambda tool: None)
    assert main(["prove", "quantizer", "--in-width", "8", "--mult-width", "2"]) == 2
    assert "yowasp-sby" in one_error_line(capsys)


@pytest.mark.parametrize("block, match", [
    ("quantizer", "in_width + mult_width"),
    ("absmax", "block_size"),
    ("mac-array", "too large"),
    ("qlinear", "too large"),
])
def test_default_configurations_are_too_large_to_prove(capsys, block, match):
    require("formal proofs", missing_tools())
    assert main(["prove", block]) == 2
    assert match in one_error_line(capsys)


def test_pass(capsys, tmp_path):
    require("formal proofs", missing_tools())
    assert main(["prove", "qlinear", *MAC, "--out-width", "4", "--workdir", str(tmp_path)]) == 0
    assert "PASS" in capsys.readouterr().out
    assert (tmp_path / "proof0" / "job.sby").exists()


def test_too_short_a_bound_is_vacuous_not_pass(capsys, tmp_path):
    require("formal proofs", missing_tools())
    # The quantizer's tracked beat, stalled once, is taken at cycle latency + 2 after
    # reset: a bound of latency + 2 cycles ends one cycle short.
    _, arithmetic = fq.proofs(lambda: Quantizer(**fq.REFERENCE))
    depth = arithmetic.depth - 1
    args = ["--lanes", "1", "--in-width", "8", "--out-width", "4", "--mult-width", "2",
            "--shift-width", "3", "--runtime-scale"]
    assert main(["prove", "quantizer", *args, "--depth", str(depth),
                 "--workdir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "golden arithmetic" in out and "UNKNOWN" in out
    assert f"vacuous at depth {depth}" in out


def test_fail_prints_the_trace(capsys, monkeypatch, tmp_path):
    require("formal proofs", missing_tools())

    def mutant_proofs(block, params):
        def build():
            return Mutant(Quantizer(**fq.REFERENCE), payload_moves_while_stalled("o"))
        return [Proof("stream rules of a mutant", lambda: StreamHarness(build()), "prove", 5)]

    # The proof list that `qdp prove` runs: the name the CLI calls.
    monkeypatch.setattr(cli, "block_proofs", mutant_proofs)
    assert main(["prove", "quantizer", "--workdir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out
    trace = Path(out.split("trace: ")[1].split()[0])
    assert trace.suffix == ".vcd" and trace.is_relative_to(tmp_path) and trace.exists()
