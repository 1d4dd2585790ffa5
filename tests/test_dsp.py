# amaranth: UnusedElaboratable=no
"""The registered multiplier tile: parameter checks, the behavioural model in Amaranth's
simulator against the arithmetic, and the ECP5 export (a MULT18X18D instance) against the
behavioural export in Icarus Verilog, cycle by cycle -- the tile alone and inside a MAC
array.

Yosys ships no simulation model of MULT18X18D (only a black box in ``ecp5/cells_bb.v``),
so the package ships one, :data:`qdp.sim.ecp5.MULT18X18D_MODEL`, which these tests use as
a user would (:func:`qdp.sim.ecp5.write_models`): the 18x18 multiply with SIGNEDA/SIGNEDB
and the four REG_* stages, each present only when its ``_CLK`` parameter is ``"CLK0"``,
clocked by CLK0 under CE0 and reset by RST0. It refuses any other register setting, so a
wrong parameter name or value in :class:`qdp.hdl.dsp.DSPMultiplier` shows up as a failure.
"""

import random
import shutil
import subprocess

import pytest
from amaranth.back import verilog
from amaranth.hdl import Shape, signed, unsigned
from amaranth.sim import Simulator
from conftest import require
from qdp.hdl.dsp import DSPMultiplier, Target, is_ecp5
from qdp.hdl.mac_array import MacArray
from qdp.hdl.quantizer import Quantizer
from qdp.sim.ecp5 import write_models
from qdp.sim.runner import VERILATOR_ARGS
from qdp.sim.toolchain import missing_tools, setup_verilator



def _value(bits, shape):
    shape = Shape.cast(shape)
    if shape.signed and bits >> (shape.width - 1) & 1:
        return bits - (1 << shape.width)
    return bits


def _random(rng, shape):
    shape = Shape.cast(shape)
    corners = [0, (1 << shape.width) - 1, 1 << (shape.width - 1), (1 << (shape.width - 1)) - 1]
    return rng.choice(corners) if rng.random() < 0.2 else rng.getrandbits(shape.width)


def _expected(stimulus, a_shape, b_shape):
    """The product of the operands taken three enabled cycles before each cycle (None
    until three have been taken)."""
    taken, out = [], []
    for _rst, a, b, en in stimulus:
        out.append(_value(taken[-3][0], a_shape) * _value(taken[-3][1], b_shape)
                   if len(taken) >= 3 else None)
        if en:
            taken.append((a, b))
    return out


SHAPES = [(signed(8), signed(8)), (unsigned(8), unsigned(8)), (signed(9), unsigned(8)),
          (signed(18), signed(18)), (unsigned(18), unsigned(18)), (unsigned(1), signed(18)),
          (unsigned(17), signed(5)), (signed(2), signed(2))]


def _seed(a_shape, b_shape):
    return (a_shape.width * 2 + a_shape.signed) * 100 + b_shape.width * 2 + b_shape.signed


def _stimulus(a_shape, b_shape, cycles, seed):
    rng = random.Random(seed)
    return [(0, _random(rng, a_shape), _random(rng, b_shape), int(rng.random() < 0.7))
            for _ in range(cycles)]


@pytest.mark.parametrize("a_shape,b_shape", SHAPES)
def test_behavioural_model_multiplies_with_three_enabled_stages(a_shape, b_shape):
    dut = DSPMultiplier(a_shape, b_shape)
    stimulus = _stimulus(a_shape, b_shape, 200, seed=_seed(a_shape, b_shape))
    want = _expected(stimulus, a_shape, b_shape)
    got = []

    async def bench(ctx):
        for _rst, a, b, en in stimulus:
            ctx.set(dut.a, _value(a, a_shape))
            ctx.set(dut.b, _value(b, b_shape))
            ctx.set(dut.en, en)
            got.append(ctx.get(dut.p))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    checked = [(g, w) for g, w in zip(got, want) if w is not None]
    assert len(checked) > 100
    assert all(g == w for g, w in checked), [(g, w) for g, w in checked if g != w][:5]
    assert dut.p_shape == (signed if a_shape.signed or b_shape.signed else unsigned)(
        a_shape.width + b_shape.width)


def _ports(component):
    """``[(name, width, is_input)]`` of the exported module, clock and reset first."""
    rows = [("clk", 1, True), ("rst", 1, True)]
    for path, member, _value in component.signature.flatten(component):
        name = "__".join(str(p) for p in path)
        rows.append((name, Shape.cast(member.shape).width, member.flow.name == "In"))
    return rows


def _icarus(tmp_path, make, stimulus, sim="icarus"):
    """Simulate the generic and the ECP5 export of ``make()`` side by side in ``sim``
    (Icarus, or Verilator's ``--binary``), driving both with ``stimulus`` (one list of
    input values per cycle, in the order of the inputs of :func:`_ports` after clk);
    return each cycle's outputs of both as two lists of integer lists."""
    generic, ecp5 = make(), make()
    assert not is_ecp5(None) and is_ecp5(Target("ecp5")) and not is_ecp5(Target("ice40"))
    text_g = verilog.convert(generic, name="dut_generic", emit_src=False)
    text_e = verilog.convert(ecp5, name="dut_ecp5", emit_src=False, platform=Target("ecp5"))
    assert "MULT18X18D" in text_e and "MULT18X18D" not in text_g
    ports = _ports(generic)
    inputs = [(n, w) for n, w, i in ports if i and n != "clk"]
    outputs = [(n, w) for n, w, i in ports if not i]
    in_bits = sum(w for _, w in inputs)
    lines = []
    for values in stimulus:
        word = 0
        for (_name, w), v in zip(inputs, values):
            word = (word << w) | (v & ((1 << w) - 1))
        lines.append(f"{word:x}")
    (tmp_path / "stim.hex").write_text("\n".join(lines) + "\n")
    concat_in = ", ".join(n for n, _ in inputs)
    # No initial value: the first assignment is then an event, which runs the exports'
    # `always @*` blocks (an unchanged input would leave their outputs x in Icarus).
    decls = "\n".join(f"  reg [{w - 1}:0] {n};" for n, w in inputs)
    for side in ("g", "e"):
        decls += "\n" + "\n".join(f"  wire [{w - 1}:0] {side}_{n};" for n, w in outputs)
    conns = {side: ", ".join([".clk(clk)"] + [f".{n}({n})" for n, _ in inputs if n != "clk"]
                             + [f".{n}({side}_{n})" for n, _ in outputs])
             for side in ("g", "e")}
    show = " ".join("%0d" for _ in outputs)
    tb = f"""`timescale 1ns/1ps
module tb;
  reg clk = 0;
{decls}
  reg [{in_bits - 1}:0] mem [0:{len(stimulus) - 1}];
  integer n;
  dut_generic g({conns["g"]});
  dut_ecp5 e({conns["e"]});
  initial begin
    $readmemh("stim.hex", mem);
    for (n = 0; n < {len(stimulus)}; n = n + 1) begin
      {{{concat_in}}} = mem[n];
      #1;
      $display("G {show}", {", ".join(f"g_{o}" for o, _ in outputs)});
      $display("E {show}", {", ".join(f"e_{o}" for o, _ in outputs)});
      #4 clk = 1; #5 clk = 0;
    end
    $finish;
  end
endmodule
"""
    (tmp_path / "tb.v").write_text(tb)
    (tmp_path / "dut_generic.v").write_text(text_g)
    (tmp_path / "dut_ecp5.v").write_text(text_e)
    # The model as a user gets it: the file the ECP5 manifest names, from the package.
    model, = write_models(tmp_path, ["MULT18X18D"])
    sources = ["tb.v", "dut_generic.v", "dut_ecp5.v", model.name]
    if sim == "icarus":
        subprocess.run(["iverilog", "-g2012", "-o", "tb.vvp", *sources], cwd=tmp_path,
                       check=True, capture_output=True, text=True)
        command = ["vvp", "-n", "tb.vvp"]
    else:
        setup_verilator()
        # --binary runs the testbench's delays as C++20 coroutines; g++ 12 defaults to 17.
        subprocess.run(["verilator", "--binary", *VERILATOR_ARGS, "-CFLAGS", "-std=c++20",
                        "--top-module", "tb", "-j", "2", *sources], cwd=tmp_path, check=True,
                       capture_output=True, text=True)
        command = [str(tmp_path / "obj_dir" / "Vtb")]
    result = subprocess.run(command, cwd=tmp_path, check=True, capture_output=True,
                            text=True)
    rows = {"G": [], "E": []}
    for line in result.stdout.splitlines():
        if line[:2] in ("G ", "E "):
            rows[line[0]].append([int(x) for x in line[2:].split()])
    assert "unsupported" not in result.stdout
    assert len(rows["G"]) == len(rows["E"]) == len(stimulus)
    return rows["G"], rows["E"]


def _require_icarus():
    require("the Icarus comparison", missing_tools("icarus"))
    assert shutil.which("iverilog")


@pytest.mark.parametrize("a_shape,b_shape", SHAPES)
def test_ecp5_instance_equals_behavioural_model_in_icarus(tmp_path, a_shape, b_shape):
    _require_icarus()
    stimulus = _stimulus(a_shape, b_shape, 300, seed=_seed(a_shape, b_shape) + 1)
    # Port order of the export: clk, rst, then a, b, en (the signature's order).
    generic, ecp5 = _icarus(tmp_path, lambda: DSPMultiplier(a_shape, b_shape),
                            [list(s) for s in stimulus])
    p_shape = DSPMultiplier(a_shape, b_shape).p_shape
    want = _expected(stimulus, a_shape, b_shape)
    checked = 0
    for cycle, (g, e, w) in enumerate(zip(generic, ecp5, want)):
        assert g == e, f"cycle {cycle}: generic p={g} ECP5 p={e}"
        if w is not None:
            assert _value(g[0], p_shape) == w, f"cycle {cycle}: p={g[0]}, expected {w}"
            checked += 1
    assert checked > 150


def _random_traffic(tmp_path, make, sim, cycles=600):
    """Random valid, ready and payload (so random `last`), a reset at the start and one
    in the middle: the generic and the ECP5 export of ``make()`` agree on every output,
    every cycle."""
    component = make()
    component._MustUse__silence = True
    rng = random.Random(5)
    ports = [(n, w) for n, w, i in _ports(component) if i and n != "clk"]
    stimulus = []
    for cycle in range(cycles):
        values = []
        for name, width in ports:
            if name == "rst":
                values.append(int(cycle < 2 or cycles // 2 <= cycle < cycles // 2 + 2))
            elif name.endswith(("valid", "ready")):
                values.append(int(rng.random() < 0.75))
            else:
                values.append(rng.getrandbits(width))
        stimulus.append(values)
    generic, ecp5 = _icarus(tmp_path, make, stimulus, sim)
    names = [n for n, _w, i in _ports(component) if not i]
    valid = names.index("o__valid")
    assert sum(row[valid] for row in generic) > 50       # results did come out
    for cycle, (g, e) in enumerate(zip(generic, ecp5)):
        assert g == e, f"cycle {cycle}: " + ", ".join(
            f"{n} generic {x} ECP5 {y}" for n, x, y in zip(names, g, e) if x != y)


@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_ecp5_mac_array_equals_generic_mac_array(tmp_path, sim):
    """A 2x3 pipelined MAC array with run-time zero points: every output, every cycle,
    under random valid, last and ready -- in Icarus and in Verilator, with the model the
    package ships."""
    if sim == "icarus":
        _require_icarus()
    else:
        require("the Verilator comparison", missing_tools("verilator"))
    _random_traffic(tmp_path, lambda: MacArray(rows=2, cols=3, runtime_zero=True,
                                               acc_width=20, saturate=True), sim)


def test_ecp5_deep_quantizer_equals_generic_quantizer_in_icarus(tmp_path):
    """The Quantizer's deep pipeline (latency 6: 2 lanes of 4 tiles of 18x18) exported for
    ECP5 and simulated with the shipped model, against the portable export."""
    _require_icarus()
    _random_traffic(tmp_path, lambda: Quantizer(lanes=2, in_width=24, mult_width=20,
                                                shift_width=6, latency=6), "icarus")


@pytest.mark.parametrize("a_shape,b_shape,match", [
    (signed(19), signed(8), "a_shape"),
    (signed(8), unsigned(19), "b_shape"),
    (unsigned(0), signed(8), "a_shape"),
])
def test_bad_widths_name_the_parameter(a_shape, b_shape, match):
    with pytest.raises(ValueError, match=f"^{match}:"):
        DSPMultiplier(a_shape, b_shape)


def test_bad_shape_and_family_name_the_parameter():
    with pytest.raises(TypeError, match="^b_shape:"):
        DSPMultiplier(signed(8), "wide")
    with pytest.raises(ValueError, match="^family:"):
        Target("xilinx")
    assert repr(Target("ecp5")) == "Target('ecp5')"
