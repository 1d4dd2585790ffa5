"""Formal proofs of the absmax unit, the MAC array and the linear layer (SymbiYosys +
z3) at their reference configurations, and mutants that the proofs must catch."""

import numpy as np
import pytest
from _mutants import (
    Mutant,
    negate_lane,
    passthrough,
    payload_moves_while_stalled,
    payload_plus_one,
)
from amaranth.hdl import Module, Signal, signed
from amaranth.sim import Simulator
from conftest import require
from qdp.blocks import get_block
from qdp.formal import absmax as fa
from qdp.formal import absmax_dequantize as fad
from qdp.formal import mx_dequantize as fmx
from qdp.formal import mx_mac_array as fmm
from qdp.formal import mx_quantize as fmq
from qdp.formal import nf4_dequantize as fnd
from qdp.formal import nf4_quantize as fnq
from qdp.formal import dequantize_linear as fdq
from qdp.formal import group_dequantize as fgd
from qdp.formal import group_quantize as fgq
from qdp.formal import mac_array as fm
from qdp.formal import qlinear as fl
from qdp.formal import quantize_linear as fq
from qdp.formal.runner import missing_tools, prove
from qdp.formal.stream import Harness, StreamHarness
from qdp.golden.absmax import blockwise_absmax
from qdp.hdl import (AbsmaxDequantize, BlockwiseAbsmax, DequantizeLinear, GroupDequantize,
                     GroupQuantize, MacArray, MxDequantize, MxMacArray, MxQuantize,
                     Nf4Dequantize, Nf4Quantize, QLinear, QuantizeLinear)


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


def test_absmax_rounding_statement_is_the_golden_model():
    # Every (x, A, q) at 4-bit inputs and 3-bit outputs: the inequalities hold for exactly
    # one q, the golden model's, in every mode.
    in_width, out_width = 4, 3
    m = Module()
    x, absmax, q = Signal(signed(in_width)), Signal(in_width), Signal(signed(out_width))
    holds = {r: Signal(name=f"holds_{r}") for r in fa.ROUNDINGS}
    for rounding, signal in holds.items():
        m.d.comb += signal.eq(fa.rounds_to(q, x, absmax, qmax=3, rounding=rounding))
    found = {}

    async def bench(ctx):
        for xv in range(-8, 8):
            for av in range(abs(xv), 9):
                ctx.set(x, xv)
                ctx.set(absmax, av)
                for qv in range(-4, 4):
                    ctx.set(q, qv)
                    for rounding, signal in holds.items():
                        if ctx.get(signal):
                            found.setdefault((xv, av, rounding), []).append(qv)

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    for xv in range(-8, 8):
        for av in range(abs(xv), 9):
            for rounding in fa.ROUNDINGS:
                golden, _ = blockwise_absmax(np.array([xv, -av]), 2, out_width=out_width,
                                             rounding=rounding, in_width=in_width)
                assert found.get((xv, av, rounding)) == [golden[0]], (xv, av, rounding)


def test_bounded_proof_without_a_cover_is_refused(tmp_path):
    class NoCover(Harness):
        def properties(self, m, rules):
            rules.drive_input(self.dut.i)
            m.d.comb += self.dut.o.ready.eq(1)

    with pytest.raises(ValueError, match="Cover"):
        prove(NoCover(BlockwiseAbsmax(**fa.REFERENCE)), mode="bmc", depth=4,
              workdir=tmp_path)


def test_absmax_bound_below_the_latency_is_vacuous(tmp_path):
    (proof,) = fa.proofs(lambda: BlockwiseAbsmax(**fa.REFERENCE))
    # The bound of the earlier proof: no beat reaches o, so nothing on o was checked.
    result = prove(proof.harness(), mode=proof.mode, depth=8, workdir=tmp_path)
    assert result.status == "UNKNOWN" and not result.passed
    assert result.note.startswith("vacuous at depth 8")


@pytest.mark.parametrize("o_fault, scale_fault", [
    (negate_lane, passthrough),         # q -> -q stays in [-qmax, qmax]: only the golden
                                        # statement of q can catch it
    (passthrough, payload_plus_one),    # a scale off by one
], ids=["negated-q", "scale-plus-one"])
def test_absmax_mutant_fails(tmp_path, o_fault, scale_fault):
    (proof,) = fa.proofs(lambda: BlockwiseAbsmax(**fa.REFERENCE))

    def fault(m, dut, outer):
        o_fault("o")(m, dut, outer)
        scale_fault("scale")(m, dut, outer)

    harness = fa.AbsmaxProperties(Mutant(BlockwiseAbsmax(**fa.REFERENCE), fault))
    result = run(proof, tmp_path, harness)
    assert result.status == "FAIL"
    assert result.trace is not None and result.trace.stat().st_size > 0


def test_mx_quantize_equals_the_golden_for_every_block(tmp_path):
    (proof,) = fmq.proofs(lambda: MxQuantize(**fmq.REFERENCE))
    result = run(proof, tmp_path)
    assert result.passed, result.workdir
    scales, codes = fmq.golden_table(get_block("mx-quantize").check(**fmq.REFERENCE))
    assert len(scales) == 4096 and len(set(scales.tolist())) > 8 and codes.shape == (4096, 2)


@pytest.mark.parametrize("o_fault, scale_fault", [
    (negate_lane("o", lane=1), passthrough("scale")),    # a code, wrong only in lane 1
    (passthrough("o"), payload_plus_one("scale")),       # a scale off by one
], ids=["negated-code", "scale-plus-one"])
def test_mx_quantize_mutant_fails(tmp_path, o_fault, scale_fault):
    (proof,) = fmq.proofs(lambda: MxQuantize(**fmq.REFERENCE))

    def fault(m, dut, outer):
        o_fault(m, dut, outer)
        scale_fault(m, dut, outer)

    harness = fmq.MxQuantizeProperties(Mutant(MxQuantize(**fmq.REFERENCE), fault))
    assert run(proof, tmp_path, harness).status == "FAIL"


def test_nf4_quantize_equals_the_golden_for_every_block(tmp_path):
    (proof,) = fnq.proofs(lambda: Nf4Quantize(lanes=4))
    assert "at blocks of 2 e2m1 patterns" in proof.name
    result = run(proof, tmp_path)
    assert result.passed, result.workdir
    absmax, codes = fnq.golden_table(fnq.small())
    assert len(absmax) == 256 and codes.shape == (256, 2)
    assert 0xFF7FFFFF in absmax.tolist() and len(set(codes.reshape(-1).tolist())) >= 10


@pytest.mark.parametrize("o_fault, scale_fault", [
    (negate_lane("o", lane=1), passthrough("scale")),    # a code, wrong only in lane 1
    (passthrough("o"), payload_plus_one("scale")),       # an absmax off by one ulp
], ids=["negated-code", "absmax-plus-one"])
def test_nf4_quantize_mutant_fails(tmp_path, o_fault, scale_fault):
    (proof,) = fnq.proofs(lambda: Nf4Quantize())

    def fault(m, dut, outer):
        o_fault(m, dut, outer)
        scale_fault(m, dut, outer)

    harness = fnq.Nf4QuantizeProperties(Mutant(fnq.small(), fault))
    assert run(proof, tmp_path, harness).status == "FAIL"


def test_group_quantize_equals_the_golden_for_every_group(tmp_path):
    """The symmetric form in CI (about 2 minutes); the asymmetric one, with its span
    adder and zero-point divider, takes about 7 (``qdp prove group-quantize``)."""
    (proof,) = fgq.proofs(lambda: GroupQuantize(lanes=4, symmetric=True))
    assert "at groups of 2 e2m1 patterns" in proof.name
    result = run(proof, tmp_path)
    assert result.passed, result.workdir
    finite, scale, codes = fgq.golden_table(fgq.small(symmetric=True))
    assert len(scale) == 256 and codes.shape == (256, 2) and finite.sum() == 12 * 12
    assert len(set(codes.reshape(-1).tolist())) >= 10 and len(set(scale.tolist())) >= 5


def test_group_quantize_wrong_table_fails(tmp_path):
    (proof,) = fgq.proofs(lambda: GroupQuantize(symmetric=True))
    dut = fgq.small(symmetric=True)
    finite, scale, codes = fgq.golden_table(dut)
    codes = codes.copy()
    codes[np.flatnonzero(finite)[7], 1] ^= 1          # one code of one finite group
    harness = fgq.GroupQuantizeProperties(dut, table=(finite, scale, codes))
    assert run(proof, tmp_path, harness).status == "FAIL"


def test_nf4_dequantize_with_double_quant_is_refused():
    with pytest.raises(ValueError, match="nf4-dequantize: 1 lanes with double_quant"):
        fnd.proofs(lambda: Nf4Dequantize(double_quant=True))


def test_mx_mac_array_too_large_is_refused():
    with pytest.raises(ValueError, match="mx-mac-array: a 2 x 2 array is too large"):
        fmm.proofs(lambda: MxMacArray(rows=2, cols=2))


def test_group_dequantize_too_large_is_refused():
    with pytest.raises(ValueError, match="group-dequantize: 3 lanes are too large"):
        fgd.proofs(lambda: GroupDequantize(lanes=3))


def test_mx_quantize_too_large_is_refused():
    with pytest.raises(ValueError, match="mx-quantize: blocks of 4 e3m2 patterns"):
        fmq.proofs(lambda: MxQuantize(4, lanes=2, in_format="e3m2"))


@pytest.mark.parametrize("params, match", [
    ({"rounding": "stochastic"}, "rounding"),
    ({"block_size": 8, "lanes": 2}, "block_size"),
    ({"out_width": 4, "rounding": "half_even", "pipeline": 3}, "latency"),
])
def test_absmax_configurations_without_a_proof_are_refused(params, match):
    with pytest.raises(ValueError, match=match):
        fa.proofs(lambda: BlockwiseAbsmax(**{**fa.REFERENCE, **params}))


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


def test_quantize_linear(tmp_path):
    (proof,) = fq.proofs(lambda: QuantizeLinear(**fq.REFERENCE))
    result = run(proof, tmp_path)
    assert result.passed, result.workdir


def test_quantize_linear_mutant_fails(tmp_path):
    (proof,) = fq.proofs(lambda: QuantizeLinear(**fq.REFERENCE))
    harness = StreamHarness(Mutant(QuantizeLinear(**fq.REFERENCE),
                                   payload_moves_while_stalled("o")))
    result = run(proof, tmp_path, harness)
    assert result.status == "FAIL"


@pytest.mark.parametrize("component, proofs, params", [
    (BlockwiseAbsmax, fa, fa.FLOAT_REFERENCE),
    (DequantizeLinear, fdq, fdq.REFERENCE),
    (AbsmaxDequantize, fad, fad.REFERENCE),
    (MxDequantize, fmx, fmx.REFERENCE),
    (Nf4Dequantize, fnd, fnd.REFERENCE),
    (GroupDequantize, fgd, fgd.REFERENCE),
    (MxMacArray, fmm, fmm.REFERENCE),
], ids=["absmax-float", "dequantize-linear", "absmax-dequantize", "mx-dequantize",
        "nf4-dequantize", "group-dequantize", "mx-mac-array"])
def test_float_blocks_keep_the_stream_rules(component, proofs, params, tmp_path):
    (proof,) = proofs.proofs(lambda: component(**params))
    result = run(proof, tmp_path)
    assert result.passed, result.workdir
    mutant = StreamHarness(Mutant(component(**params), payload_moves_while_stalled("o")))
    assert run(proof, tmp_path / "mutant", mutant).status == "FAIL"
