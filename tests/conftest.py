import os

import pytest

from qdp.sim.toolchain import SIMULATORS, missing_tools


def require_simulator(sim):
    """Skip (with the reason) when ``sim`` is missing -- but fail in CI, which must run
    both simulators."""
    missing = missing_tools(sim)
    if missing:
        message = f"{sim} needs {', '.join(missing)}"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI must run every simulator")
        pytest.skip(message)


@pytest.fixture(params=SIMULATORS)
def simulator(request):
    require_simulator(request.param)
    return request.param
