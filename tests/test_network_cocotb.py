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
    """One golden element planted off by one in layer 0: that layer's bench fails naming
    it, and the chain stops there with the rows the hardware produced."""
    require_simulator("verilator")
    from qdp.golden.network import run_integer
    q_x = trained["q_x"][:40]
    expected = run_integer(trained["network"], q_x)
    expected[0][13, 5] += 1
    outputs, summaries = run_network(trained["network"], q_x, "verilator", rows=ROWS,
                                     workdir=tmp_path, expected=expected)
    assert not summaries[0]["passed"] and summaries[0]["mismatches"] == 1
    assert len(outputs) == 1 and outputs[0][13, 5] == expected[0][13, 5] - 1
    assert "lane 5" in summaries[0]["reports"][0], summaries[0]["reports"]
