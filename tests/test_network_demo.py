"""``qdp demo``: its options, its exit status on a hardware mismatch, and the outlier
plot's claim that blocking contains the damage of a few outliers."""

import importlib.util
import tempfile

import numpy as np
import pytest
from conftest import require
from qdp.build_scripts import demo
from qdp.build_scripts.cli import main


def _require(*modules):
    require("the digits demo", [m for m in modules if importlib.util.find_spec(m) is None],
            ' (pip install "qdp[demo,dev]")')


@pytest.mark.parametrize("argv", [["demo", "--sim", "modelsim"], ["demo", "--bogus"],
                                  ["demo", "--plot"]])
def test_bad_options_are_one_line_and_exit_2(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("qdp: error:") and err.count("\n") == 1


@pytest.fixture(scope="module")
def weights():
    _require("sklearn")
    from qdp.golden.network import load_digits_split, train_float
    x_train, _, y_train, _ = load_digits_split()
    return train_float(x_train, y_train)[0][0]


def test_blocking_contains_outliers(weights):
    errors = demo.outlier_errors(weights)
    clean, spiked = errors["trained"], errors["with outliers"]
    assert max(clean.values()) < 0.02                   # int8 of the trained weights: ~1 %
    assert min(spiked.values()) > 3 * max(clean.values())
    b64, b256 = spiked["blockwise absmax B=64"], spiked["blockwise absmax B=256"]
    assert b64 < b256 < spiked["absmax per tensor"]
    # Blocks of 64 without an outlier keep the clean error; every other scheme's profile
    # is damaged wherever its scale block holds an outlier.
    chunk = errors["chunk"]
    hit = {index // chunk for index in errors["outliers"]}
    profile = np.asarray(errors["profile"]["blockwise absmax B=64"])
    untouched = [c for c in range(len(profile)) if c not in hit]
    assert np.all(profile[untouched] < 0.02)
    assert np.all(profile[sorted(hit)] > 0.05)
    assert np.all(np.asarray(errors["profile"]["absmax per tensor"]) > 0.1)


def test_outlier_plot_is_a_png(weights, tmp_path):
    _require("matplotlib")
    path = tmp_path / "plot.png"
    demo.outlier_plot(demo.outlier_errors(weights), path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _chain(broken):
    """A stand-in for the hardware chain: the golden outputs (one element off if
    ``broken``); it records the folder it was given and writes a file into it."""
    calls = []

    def run_network(network, q_x, sim, *, workdir, on_layer, **kwargs):
        from qdp.golden.network import run_integer
        calls.append(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "sim.log").write_text("log")
        outputs = run_integer(network, q_x)
        for index in range(len(outputs)):
            on_layer(index, len(outputs))
        if broken:
            outputs[-1][0, 0] += 1
        return outputs, [{"passed": True, "compared": o.size, "mismatches": 0, "cycles": 1,
                          "log": str(workdir / "sim.log")} for o in outputs]
    return run_network, calls


@pytest.mark.parametrize("broken", [False, True])
def test_exit_status_progress_and_no_folder_left(broken, tmp_path, monkeypatch, capsys):
    """Exit 1 on a hardware mismatch, 0 otherwise; a progress line before each slow step
    (on stderr); the simulations' folder is removed either way unless --workdir."""
    _require("sklearn", "onnx", "onnxruntime")
    chain, calls = _chain(broken)
    monkeypatch.setattr(demo, "run_network", chain)
    monkeypatch.setattr(demo, "check_tools", lambda sims, plot: None)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    assert demo.run_demo(("verilator",)) == int(broken)
    captured = capsys.readouterr()
    assert calls and calls[0].is_relative_to(tmp_path / "tmp")
    assert list((tmp_path / "tmp").iterdir()) == []
    progress = captured.err.splitlines()
    assert progress[0] == "  ... training the float MLP and quantizing it"
    assert progress[-1] == "  ... verilator: building and simulating layer 2 of 2 (450 images)"
    if broken:
        assert "MISMATCH" in captured.out
        assert "1 layer outputs differ from the golden network" in captured.out
    else:
        assert "every layer bit-exact" in captured.out
    assert demo.run_demo(("verilator",), workdir=tmp_path / "kept") == int(broken)
    assert (tmp_path / "kept" / "verilator" / "sim.log").exists()
