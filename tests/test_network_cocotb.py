"""The whole digits test set (450 images) through the generated QLinear hardware, layer by
layer, on Verilator and Icarus: every layer's hardware output fed to the next layer's
hardware, every output row scored in the bench with random gaps and backpressure, and the
chain's outputs equal to the golden integer network's, element for element."""

import importlib.util

import numpy as np
import pytest
from conftest import require, require_simulator
from qdp.build_scripts.demo import ROWS
from qdp.golden.network import accuracy
from qdp.sim.network import run_network


@pytest.fixture(scope="module")
def trained():
    require("the digits network", [m for m in ("sklearn",)
                                   if importlib.util.find_spec(m) is None],
            ' (pip install "qdp[demo]")')
    from qdp.build_scripts.demo import prepare
    return prepare()


def test_network_bit_exact(simulator, trained, tmp_path):
    network, golden = trained["network"], trained["golden"]
    n = len(trained["q_x"])
    assert n >= 360
    outputs, summaries = run_network(network, trained["q_x"], simulator, rows=ROWS,
                                     workdir=tmp_path)
    for index, (got, want, summary) in enumerate(zip(outputs, golden, summaries)):
        assert summary["passed"] and summary["mismatches"] == 0, \
            "\n".join(summary.get("reports", [])) or summary
        assert summary["images"] == n
        assert summary["compared"] >= n * network["layers"][index]["out_features"]
        assert got is not None and np.array_equal(got, want), f"layer {index}"
    assert len(outputs) == len(golden)
    assert accuracy(outputs[-1], trained["y_test"]) == accuracy(golden[-1], trained["y_test"])


def test_wrong_golden_is_caught(trained, tmp_path):
    require_simulator("verilator")
    outputs, summaries = run_network(trained["network"], trained["q_x"][:40], "verilator",
                                     rows=ROWS, workdir=tmp_path, golden={"rounding": "floor"})
    assert not summaries[0]["passed"] and summaries[0]["mismatches"] > 0
    assert outputs == [None]
