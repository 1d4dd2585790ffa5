import os

import pytest

from qdp.sim.toolchain import SIMULATORS, missing_tools


def require(what, missing, hint=""):
    """Skip (with the reason) when tools are ``missing`` -- but fail in CI, which installs
    every tool and must run every test."""
    if missing:
        message = f"{what} needs {', '.join(missing)}{hint}"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI must run it")
        pytest.skip(message)


def require_simulator(sim):
    require(sim, missing_tools(sim))


@pytest.fixture(params=SIMULATORS)
def simulator(request):
    require_simulator(request.param)
    return request.param


def pytest_report_header(config):
    """Which MatMulInteger arithmetic this CPU's onnxruntime computes: the tests compare
    onnxruntime with it, and count the known deviation where the probe finds it."""
    try:
        from qdp.build_scripts.ort_probe import probe
        return [probe().message]
    except ImportError as error:          # onnx / onnxruntime not installed
        return [f"onnxruntime probe not run: {error}"]
