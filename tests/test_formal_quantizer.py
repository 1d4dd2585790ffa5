"""Formal proofs of the Quantizer (SymbiYosys + z3): every rounding and saturation mode
at the reference widths, and mutants that the proofs must catch."""

import pytest
from _mutants import Mutant, payload_moves_while_stalled
from conftest import require
from qdp.formal import quantizer as fq
from qdp.formal.runner import missing_tools, prove
from qdp.formal.stream import StreamHarness
from qdp.hdl import Quantizer


@pytest.fixture(autouse=True)
def _tools():
    require("formal proofs", missing_tools())


def build(**params):
    return Quantizer(**{**fq.REFERENCE, **params})


def run(harness, proof, tmp_path):
    return prove(harness, mode=proof.mode, depth=proof.depth, workdir=tmp_path)


def test_stream_rules_by_induction(tmp_path):
    stream, _ = fq.proofs(build)
    assert stream.mode == "prove"
    result = run(stream.harness(), stream, tmp_path)
    assert result.passed, result.workdir


# Every rounding mode, every saturation mode and every signedness once (each BMC is
# followed by its cover job: seven proofs keep the suite's time).
@pytest.mark.parametrize("rounding, saturation, signs", [
    ("half_even", "sat", (True, True)),
    ("half_away", "sat", (False, False)),
    ("half_up", "sat_zero", (True, True)),
    ("half_down", "wrap", (True, True)),
    ("half_zero", "sat_sym", (True, True)),
    ("floor", "sat", (True, True)),
    ("trunc", "sat_sym", (True, False)),
])
def test_golden_arithmetic(tmp_path, rounding, saturation, signs):
    in_signed, out_signed = signs
    params = {"rounding": rounding, "saturation": saturation, "in_signed": in_signed,
                  "out_signed": out_signed}
    _, arithmetic = fq.proofs(lambda: build(**params))
    result = run(arithmetic.harness(), arithmetic, tmp_path)
    assert result.passed, result.workdir


def test_mutant_payload_moving_while_stalled_fails_the_stream_proof(tmp_path):
    stream, _ = fq.proofs(build)
    mutant = Mutant(build(), payload_moves_while_stalled("o"))
    result = run(StreamHarness(mutant), stream, tmp_path)
    assert result.status == "FAIL"
    assert result.trace is not None and result.trace.stat().st_size > 0


def test_another_tie_rule_fails_the_arithmetic_proof(tmp_path):
    _, arithmetic = fq.proofs(build)
    harness = fq.QuantizerArithmetic(build(rounding="half_even"), rounding="half_away")
    result = run(harness, arithmetic, tmp_path)
    assert result.status == "FAIL"
    assert result.trace is not None and result.trace.stat().st_size > 0


@pytest.mark.parametrize("params, match", [
    ({"rounding": "stochastic"}, "rounding"),
    ({"runtime_scale": False, "multiplier": 3, "shift": 2}, "run-time"),
    ({"in_width": 16}, "in_width"),
])
def test_configurations_without_a_formal_statement_are_refused(params, match):
    with pytest.raises(ValueError, match=match):
        fq.proofs(lambda: build(**params))
