"""The block-format comparison (``python -m qdp.build_scripts.formats_plot``): the bits per
weight each format stores, and the ordering of their errors on the trained weights."""

import numpy as np
import pytest

from qdp.build_scripts import formats_plot as fp


@pytest.fixture(scope="module")
def errors():
    return fp.format_errors(fp.trained_weights())


def test_bits_per_weight_count_the_scales(errors):
    bits = {name: row["bits_per_weight"] for name, row in errors.items()}
    n = 64 * 32
    assert bits == pytest.approx({
        "int8 absmax per tensor": 8 + 32 / n, "int8 blockwise B=64": 8.5,
        "MXINT8": 8.25, "MXFP8 (E4M3)": 8.25, "MXFP4 (E2M1)": 4.25, "NF4 B=64": 4.5,
        "NF4 B=64 + double quant": 4 + 8 / 64 + 64 / n, "group int4 g=128": 4 + 36 / 128},
        abs=1e-4)


def test_errors_order_as_the_formats_resolve(errors):
    rms = {name: row["rms_error"] for name, row in errors.items()}
    eight = [v for name, v in rms.items() if errors[name]["bits_per_weight"] > 6]
    four = [v for name, v in rms.items() if errors[name]["bits_per_weight"] < 6]
    assert max(eight) < min(four)
    # Blocks beat one scale per tensor; NF4's normal-quantile codes beat FP4's grid on
    # normally distributed weights; FP8's 3 mantissa bits lose to 7-bit integers.
    assert rms["int8 blockwise B=64"] < rms["int8 absmax per tensor"]
    assert rms["NF4 B=64"] < rms["MXFP4 (E2M1)"]
    assert rms["MXINT8"] < rms["MXFP8 (E4M3)"]
    # Double quantization saves 0.34 bits per weight at almost no cost.
    assert abs(rms["NF4 B=64 + double quant"] / rms["NF4 B=64"] - 1) < 0.01


def test_plot_is_a_png(errors, tmp_path):
    path = tmp_path / "formats.png"
    fp.formats_plot(errors, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert np.isfinite([row["rms_error"] for row in errors.values()]).all()
