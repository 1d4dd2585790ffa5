"""Formal proofs of the absmax unit, the MAC array and the linear layer (SymbiYosys +
z3) at their reference configurations, and mutants that the proofs must catch."""

import pytest
from _mutants import Mutant, passthrough, payload_moves_while_stalled, payload_plus_one
from conftest import require
from qdp.formal import absmax as fa
from qdp.formal import mac_array as fm
from qdp.formal import qlinear as fl
from qdp.formal.runner import missing_tools, prove
from qdp.hdl import BlockwiseAbsmax, MacArray, QLinear


@pytest.fixture(autouse=True)
def _tools():
    require("formal proofs", missing_tools())


def run(proof, tmp_path, harness=None):
    return prove(proof.harness() if harness is None else harness, mode=proof.mode,
                 depth=proof.depth, workdir=tmp_path)


def test_absmax(tmp_path):
    (proof,) = fa.proofs(lambda: BlockwiseAbsmax(**fa.REFERENCE))
    result = run(proof, tmp_path)
    assert result.passed, result.workdir


def test_absmax_wrong_scale_fails(tmp_path):
    (proof,) = fa.proofs(lambda: BlockwiseAbsmax(**fa.REFERENCE))

    def fault(m, dut, outer):
        payload_plus_one("scale")(m, dut, outer)
        passthrough("o")(m, dut, outer)

    harness = fa.AbsmaxProperties(Mutant(BlockwiseAbsmax(**fa.REFERENCE), fault))
    result = run(proof, tmp_path, harness)
    assert result.status == "FAIL"
    assert result.trace is not None and result.trace.stat().st_size > 0


@pytest.mark.parametrize("dataflow, width, max_k", [
    ("broadcast", 4, 1),
    ("broadcast", 2, 2),        # accumulation over two k-steps, at narrow operands
    ("systolic", 4, 1),
])
def test_mac_array(tmp_path, dataflow, width, max_k):
    params = {**fm.REFERENCE, "a_width": width, "b_width": width, "dataflow": dataflow}
    (proof,) = fm.proofs(lambda: MacArray(**params), max_k=max_k)
    result = run(proof, tmp_path)
    assert result.passed, result.workdir


@pytest.mark.parametrize("fault", [payload_moves_while_stalled("o"), payload_plus_one("o")],
                         ids=["payload moves while stalled", "wrong sum"])
def test_mac_array_mutants_fail(tmp_path, fault):
    (proof,) = fm.proofs(lambda: MacArray(**fm.REFERENCE))
    harness = fm.MacArrayTiles(Mutant(MacArray(**fm.REFERENCE), fault))
    result = run(proof, tmp_path, harness)
    assert result.status == "FAIL"
    assert result.trace is not None and result.trace.stat().st_size > 0


def test_qlinear(tmp_path):
    (proof,) = fl.proofs(lambda: QLinear(**fm.REFERENCE, out_width=4))
    result = run(proof, tmp_path)
    assert result.passed, result.workdir
