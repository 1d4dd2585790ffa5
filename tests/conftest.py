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
