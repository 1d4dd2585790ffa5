import json
import os
from pathlib import Path

import pytest

import qdp.sim.runner
from qdp.sim.toolchain import SIMULATORS, missing_tools

# Every bench run of the session is counted: the elements it compared, per simulator and
# driver. Workers append to one file each; the controller adds them up at the end.
_run_bench = qdp.sim.runner.run_bench


def _tally_file(config):
    root = Path(config.cache.makedir("qdp-benches"))
    return root / f"{os.environ.get('PYTEST_XDIST_WORKER', 'main')}.jsonl"


def _counted_run_bench(block, params, sim, config, **kwargs):
    result = _run_bench(block, params, sim, config, **kwargs)
    if _CONFIG is not None:
        compared = sum(v for k, v in result.summary.items()
                       if k.startswith("compared") and isinstance(v, int))
        with open(_tally_file(_CONFIG), "a") as f:
            f.write(json.dumps({"sim": sim, "driver": config.get("driver", "bulk"),
                                "compared": compared}) + "\n")
    return result


qdp.sim.runner.run_bench = _counted_run_bench
_CONFIG = None


def pytest_configure(config):
    global _CONFIG
    _CONFIG = config
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        for old in Path(config.cache.makedir("qdp-benches")).glob("*.jsonl"):
            old.unlink()


def pytest_terminal_summary(terminalreporter, config):
    totals = {}
    for path in Path(config.cache.makedir("qdp-benches")).glob("*.jsonl"):
        for line in path.read_text().splitlines():
            row = json.loads(line)
            key = (row["sim"], row["driver"])
            runs, compared = totals.get(key, (0, 0))
            totals[key] = (runs + 1, compared + row["compared"])
    if totals:
        terminalreporter.write_line("cocotb benches: " + "; ".join(
            f"{sim} {driver}: {runs} runs, {compared:,} elements compared"
            for (sim, driver), (runs, compared) in sorted(totals.items())))


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


def params_id(params):
    """A test id from a block's parameters: ``name=value`` joined by ``-``."""
    return "-".join(f"{k}={v}" for k, v in params.items())


def assert_bit_exact(result):
    """A bench result that passed with no mismatch; else its mismatch reports."""
    assert result.passed and result.mismatches == 0, "\n".join(
        result.summary.get("reports", [])) or result.summary
