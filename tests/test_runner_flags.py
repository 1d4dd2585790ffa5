"""The build cache of :mod:`qdp.sim.runner`: the Verilator build flags, what reaches make,
and that changing them changes the build cache key (so a build made with other flags is
never reused); the exported Verilog kept per configuration and sources. No simulator
runs."""

import hashlib
import os

import cocotb

from qdp.sim import runner


def _key(sim="verilator"):
    return runner._cache_key("module m; endmodule\n", "module b; endmodule\n", sim, False)


def test_make_gets_opt_fast(monkeypatch):
    monkeypatch.delenv("QDP_VERILATOR_OPT_FAST", raising=False)
    assert runner._make_args() == [f"OPT_FAST={runner.OPT_FAST_DEFAULT}"]
    monkeypatch.setenv("QDP_VERILATOR_OPT_FAST", "-O1")
    assert runner._make_args() == ["OPT_FAST=-O1"]


def test_verilator_skips_the_quadratic_merge_cond_pass():
    assert "-fno-merge-cond" in runner.VERILATOR_ARGS


def test_the_key_covers_the_flags(monkeypatch):
    monkeypatch.delenv("QDP_VERILATOR_OPT_FAST", raising=False)
    base = _key()
    assert _key() == base
    monkeypatch.setenv("QDP_VERILATOR_OPT_FAST", "-O1")
    assert _key() != base
    monkeypatch.delenv("QDP_VERILATOR_OPT_FAST")
    monkeypatch.setattr(runner, "VERILATOR_ARGS", [*runner.VERILATOR_ARGS, "--x-assign", "0"])
    assert _key() != base
    monkeypatch.undo()
    monkeypatch.delenv("QDP_VERILATOR_OPT_FAST", raising=False)
    monkeypatch.setenv("MAKEFLAGS", os.environ.get("MAKEFLAGS", "") + " OPT_SLOW=-O2")
    assert _key() != base


def test_icarus_keys_do_not_change():
    parts = ["module m; endmodule\n", "module b; endmodule\n", runner._tool_version("icarus"),
             cocotb.__version__, "False"]
    assert _key("icarus") == hashlib.sha1("\n".join(parts).encode()).hexdigest()[:12]


def test_throughput_builds_optimize_the_model_inside_only(monkeypatch):
    monkeypatch.delenv("QDP_VERILATOR_OPT_FAST", raising=False)
    with runner.throughput_builds():
        assert runner._make_args() == [f"OPT_FAST={runner.OPT_FAST_THROUGHPUT}"]
    assert "QDP_VERILATOR_OPT_FAST" not in os.environ
    monkeypatch.setenv("QDP_VERILATOR_OPT_FAST", "-O3")       # the user's choice stands
    with runner.throughput_builds():
        assert runner._make_args() == ["OPT_FAST=-O3"]
    assert os.environ["QDP_VERILATOR_OPT_FAST"] == "-O3"


def test_the_exported_verilog_is_cached_by_parameters_and_sources(monkeypatch, tmp_path):
    """A configuration is elaborated once per build cache; other parameters or other
    sources elaborate again; a damaged cache file is regenerated."""
    monkeypatch.setenv("QDP_BUILD_DIR", str(tmp_path))
    calls = []

    def generate(block, params, interface):
        calls.append((block, dict(params), interface))
        return f"module m{len(calls)}; endmodule\n", {"module": f"m{len(calls)}",
                                                     "ports": ({"name": "x"},)}
    monkeypatch.setattr(runner, "generate", generate)
    first = runner._exported("quantizer", {"lanes": 2})
    assert first == ("module m1; endmodule\n", {"module": "m1", "ports": [{"name": "x"}]})
    assert runner._exported("quantizer", {"lanes": 2}) == first and len(calls) == 1
    runner._exported("quantizer", {"lanes": 3})
    runner._exported("quantizer", {"lanes": 3}, "axis")
    assert len(calls) == 3 and calls[-1][2] == "axis"
    (path,) = [p for p in (tmp_path / "verilog").iterdir() if "m1" in p.read_text()]
    path.write_text("{")
    assert runner._exported("quantizer", {"lanes": 2})[1]["module"] == "m4"
    monkeypatch.setattr(runner, "_source_fingerprint", lambda: "other sources")
    runner._exported("quantizer", {"lanes": 2})
    assert len(calls) == 5
