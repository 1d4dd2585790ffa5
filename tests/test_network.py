"""The golden digits network: int8 accuracy near float, the JSON round trip, and the
integer path against an independent exact reference written with Python ints and
Fractions (not through qdp's golden functions)."""

import importlib.util
import math
from fractions import Fraction

import numpy as np
import pytest
from conftest import require
from qdp.golden import network as net


def missing_modules(*names):
    return [name for name in names if importlib.util.find_spec(name) is None]


@pytest.fixture(scope="module")
def trained():
    require("the digits network", missing_modules("sklearn"), ' (pip install "qdp[demo]")')
    from qdp.build_scripts.demo import prepare
    return prepare()


def test_int8_accuracy_within_one_point_of_float(trained):
    y = trained["y_test"]
    assert len(y) >= 360
    float_acc = net.accuracy(trained["float_logits"], y)
    int8_acc = net.accuracy(trained["golden"][-1], y)
    assert float_acc > 0.9
    assert abs(int8_acc - float_acc) <= 0.01, (float_acc, int8_acc)


def test_training_is_deterministic(trained):
    x, y = trained["x_train"], trained["y_train"]
    again = net.train_float(x, y, seed=0)
    for (w, b), (w2, b2) in zip(trained["layers"], again):
        assert np.array_equal(w, w2) and np.array_equal(b, b2)


def test_relu_is_the_clip_of_every_hidden_layer(trained):
    layers = trained["network"]["layers"]
    for layer in layers[:-1]:
        assert layer["relu"] and set(layer["zero_point"]) == {-128}
    # Dequantized, the hidden int8 activations are never negative and some are clipped.
    hidden = trained["golden"][0]
    assert hidden.min() == -128 and np.mean(hidden == -128) > 0.1


def _round_half_even(value):
    floor = math.floor(value)
    rest = value - floor
    if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and floor % 2):
        return floor + 1
    return floor


def _reference_layer(layer, a):
    """The layer's definition, element by element, in Python ints and Fractions."""
    w = layer["weights"]
    out = []
    for row in a:
        out_row = []
        for j in range(layer["out_features"]):
            acc = sum((int(row[k]) - layer["a_zero"]) * (w[k][j] - layer["w_zero"])
                      for k in range(layer["in_features"])) + layer["bias"][j]
            assert -2**31 <= acc < 2**31            # no wrap: the int32 accumulator holds it
            y = _round_half_even(Fraction(acc * layer["multiplier"][j], 2 ** layer["shift"][j]))
            out_row.append(min(127, max(-128, y + layer["zero_point"][j])))
        out.append(out_row)
    return np.array(out, dtype=np.int64)


def test_integer_path_equals_exact_reference(trained):
    network = trained["network"]
    a = trained["q_x"][:150]
    # The input quantization, independently: round half to even of x / s, plus z, clipped.
    s, z = network["input"]["scale"], network["input"]["zero_point"]
    ref_x = np.array([[min(127, max(-128, _round_half_even(Fraction(float(v)) / Fraction(s))
                                    + z)) for v in row] for row in trained["x_test"][:150]])
    assert np.array_equal(a, ref_x)
    for layer, got in zip(network["layers"], trained["golden"]):
        want = _reference_layer(layer, a)
        assert np.array_equal(got[:150], want)
        a = want


def test_requantization_multipliers_match_the_float_scales(trained):
    for layer in trained["network"]["layers"]:
        ratios = layer["in_scale"] * np.asarray(layer["weight_scale"]) / layer["out_scale"]
        for m, s, r in zip(layer["multiplier"], layer["shift"], ratios):
            assert 2**31 <= m < 2**32
            assert abs(m / 2**s - r) <= r * 2**-31


def test_json_round_trip(trained, tmp_path):
    network = trained["network"]
    path = tmp_path / "net.json"
    net.export_json(network, path)
    loaded = net.load_json(path)
    assert loaded == network
    outputs = net.run_integer(loaded, trained["q_x"])
    for got, want in zip(outputs, trained["golden"]):
        assert np.array_equal(got, want)


def test_load_json_refuses_other_files(tmp_path):
    path = tmp_path / "other.json"
    path.write_text('{"format": "something-else"}')
    with pytest.raises(ValueError, match="path: .* is not a qdp-network-1 network"):
        net.load_json(path)


def test_hardware_params_build_the_layers(trained):
    from qdp.hdl import QLinear
    for index, layer in enumerate(trained["network"]["layers"]):
        q = QLinear(**net.hardware_params(trained["network"], index, rows=4))
        q._MustUse__silence = True
        assert (q.rows, q.cols) == (4, layer["out_features"])
        assert list(q.multiplier) == layer["multiplier"]
