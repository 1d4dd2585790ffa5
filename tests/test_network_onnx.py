"""The quantized digits network in onnxruntime against the golden integer path, layer by
layer (each layer fed the golden input of that layer).

The graph is ``MatMulInteger + Add(int32 bias)`` -- the accumulator, the same integer
arithmetic as qdp, so it must agree everywhere -- then ``Cast`` to float32, ``Mul`` by the
float32 ratio ``s_in * s_w / s_out`` and ``QuantizeLinear`` (round half to even,
saturate). qdp requantizes with the integer ``round(acc * M / 2**S)`` instead, so the
int8 outputs may differ where the float32 product lands on the other side of a
half-integer. The test pins down ORT's arithmetic exactly (a NumPy float32 emulation equals
ORT on every element), then counts the differences from qdp and checks that each one is
such a near-tie, by at most 1.

Run with ``-s`` to see the counts.
"""

import importlib.util
from fractions import Fraction

import numpy as np
import pytest
from conftest import require
from qdp.golden import matmul_int
from qdp.golden.network import run_layer


@pytest.fixture(scope="module")
def trained():
    missing = [m for m in ("sklearn", "onnx", "onnxruntime")
               if importlib.util.find_spec(m) is None]
    require("the onnxruntime check of the digits network", missing,
            ' (pip install "qdp[demo,dev]")')
    from qdp.build_scripts.demo import prepare
    return prepare()


def _ort_emulation(layer, acc):
    """What the ORT graph computes after the accumulator, in NumPy float32."""
    ratio = (layer["in_scale"] * np.asarray(layer["weight_scale"]) /
             layer["out_scale"]).astype(np.float32)
    scaled = acc.astype(np.float32) * ratio
    return np.clip(np.rint(scaled).astype(np.int64) + layer["zero_point"][0], -128, 127)


def test_layers_agree_with_onnxruntime(trained):
    from qdp.build_scripts.demo import ort_layer_model, ort_run

    network = trained["network"]
    a = trained["q_x"]
    for index, layer in enumerate(network["layers"]):
        acc, y = ort_run(ort_layer_model(layer), a)
        want_acc = matmul_int(a, np.asarray(layer["weights"]), a_zero=layer["a_zero"],
                              b_zero=layer["w_zero"], bias=layer["bias"])
        want_y = run_layer(layer, a, network)
        assert np.array_equal(acc, want_acc), "the int32 accumulators must be exact"
        assert np.array_equal(y, _ort_emulation(layer, acc))
        differ = np.argwhere(y != want_y)
        print(f"layer {index}: {len(differ)} of {y.size} int8 outputs differ from ORT, "
              f"largest difference {np.max(np.abs(y - want_y))}")
        assert np.max(np.abs(y - want_y)) <= 1
        assert len(differ) <= y.size // 1000
        for i, j in differ:
            exact = Fraction(int(acc[i, j]) * layer["multiplier"][j], 2 ** layer["shift"][j])
            tie_distance = abs(exact - (exact.numerator // exact.denominator) - Fraction(1, 2))
            # float32 rounds the cast, the ratio and the product: <= 3 * 2**-24 relative.
            assert tie_distance <= abs(exact) * 2**-22, (index, i, j, float(exact))
        a = want_y


def test_network_summary_matches(trained):
    from qdp.build_scripts.demo import ort_agreement

    result = ort_agreement(trained["network"], trained["q_x"])
    assert result["images"] == len(trained["y_test"])
    assert result["predictions_agree"] >= result["images"] - 2
    for row in result["layers"]:
        assert row["acc_exact"] == row["elements"] and row["acc_max_diff"] == 0
        assert row["out_max_diff"] <= 1
