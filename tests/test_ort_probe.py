"""The onnxruntime probe: which MatMulInteger arithmetic this CPU's onnxruntime computes,
and that its verdict is reported either way -- on this CPU, on an emulated AVX2-only CPU
(qemu's Haswell model, AVX2 without AVX-512 or VNNI), and on injected runtimes."""

import json
import os
import platform
import shutil
import subprocess
import sys

import numpy as np
import pytest
from conftest import require
from onnx.reference import ReferenceEvaluator

from qdp.build_scripts.ort_probe import (pair_saturated_matmul, probe, probe_case,
                                         probe_model, run_onnxruntime)


def loop_pair_saturated(a, b, a_zero, b_zero):
    """The AVX2 kernel's arithmetic written as plain Python loops over k in pairs."""
    a, b = np.asarray(a).tolist(), np.asarray(b).tolist()
    m, k, n = len(a), len(b), len(b[0])
    b_zero = np.broadcast_to(b_zero, (n,)).tolist()
    out = np.zeros((m, n), dtype=np.int64)
    for i in range(m):
        for j in range(n):
            raw = 0
            for p in range(0, k, 2):
                pair = a[i][p] * b[p][j] + (a[i][p + 1] * b[p + 1][j] if p + 1 < k else 0)
                raw += min(32767, max(-32768, pair))
            out[i, j] = raw - b_zero[j] * sum(a[i]) - int(a_zero) * sum(
                b[t][j] for t in range(k)) + k * int(a_zero) * b_zero[j]
    return out


@pytest.mark.parametrize("k", [1, 2, 7, 64])
def test_pair_saturated_matmul_equals_a_loop_reference(k):
    rng = np.random.default_rng(k)
    a = rng.integers(0, 256, size=(5, k))
    b = rng.integers(-128, 128, size=(k, 4))
    a[0], b[:, 0] = 255, -128
    b_zero = rng.integers(-8, 9, size=4)
    assert np.array_equal(pair_saturated_matmul(a, b, a_zero=17, b_zero=b_zero),
                          loop_pair_saturated(a, b, 17, b_zero))


def test_pair_saturated_matmul_is_exact_while_pairs_fit_int16():
    rng = np.random.default_rng(3)
    a = rng.integers(0, 128, size=(6, 33))          # 127 * 128 * 2 = 32512 < 32768
    b = rng.integers(-128, 128, size=(33, 5))
    want = (a - 9) @ (b - 2)
    assert np.array_equal(pair_saturated_matmul(a, b, a_zero=9, b_zero=2), want)


def _reference(model, feeds):
    (y,) = ReferenceEvaluator(model).run(None, feeds)
    return y, "fake-exact"


def _saturating(model, feeds):
    return pair_saturated_matmul(feeds["a"], feeds["b"], a_zero=feeds["az"],
                                 b_zero=feeds["bz"]), "fake-avx2"


def _otherwise_wrong(model, feeds):
    y, _ = _reference(model, feeds)
    y = y.copy()
    y[3, 3] += 1
    return y, "fake-broken"


def test_verdict_exact_is_reported():
    verdict = probe(_reference)
    assert (verdict.exact, verdict.explained, verdict.deviating) == (True, True, 0)
    assert verdict.message == ("onnxruntime fake-exact on this CPU computes MatMulInteger "
                               "uint8 x int8 as defined (64 of 64 probed values equal the "
                               "ONNX reference)")


def test_verdict_known_saturation_is_reported_and_modelled():
    verdict = probe(_saturating)
    assert not verdict.exact and verdict.explained
    assert 0 < verdict.deviating < verdict.total == 64
    assert verdict.message == (
        f"onnxruntime fake-avx2 on this CPU deviates from MatMulInteger's definition in "
        f"{verdict.deviating} of 64 values (known AVX2 u8s8 saturation: int16 sums of "
        f"neighbouring products); qdp equals the reference")
    a, b, a_zero, b_zero = probe_case()
    assert np.array_equal(verdict.matmul(a, b, a_zero=a_zero, b_zero=b_zero),
                          _saturating(None, {"a": a, "b": b, "az": a_zero, "bz": b_zero})[0])


def test_any_other_deviation_is_not_called_known():
    verdict = probe(_otherwise_wrong)
    assert not verdict.exact and not verdict.explained and verdict.deviating == 1
    assert "NOT explained by the known AVX2 u8s8 saturation" in verdict.message


def test_probe_case_triggers_the_saturation():
    a, b, a_zero, b_zero = probe_case()
    exact = (a.astype(np.int64) - int(a_zero)) @ (b.astype(np.int64) - b_zero)
    assert np.sum(pair_saturated_matmul(a, b, a_zero=a_zero, b_zero=b_zero) != exact) > 0


def test_probe_on_this_cpu_agrees_with_a_direct_run():
    verdict = probe()
    a, b, a_zero, b_zero = probe_case()
    got, version = run_onnxruntime(probe_model(),
                                   {"a": a, "b": b, "az": a_zero, "bz": b_zero})
    exact = (a.astype(np.int64) - int(a_zero)) @ (b.astype(np.int64) - b_zero)
    assert verdict.version == version
    assert verdict.deviating == int(np.sum(got != exact))
    assert verdict.explained, verdict.message
    print(f"\n{verdict.message}")


_EMULATED = """
import dataclasses, json
from qdp.build_scripts.ort_probe import probe
verdict = probe()
print(json.dumps({**dataclasses.asdict(verdict), "message": verdict.message}))
"""


def test_probe_on_an_emulated_avx2_only_cpu():
    """qemu's user-mode Haswell: AVX2, no AVX-512, no VNNI, as the CPUs that show it."""
    if platform.machine() != "x86_64":
        pytest.skip("qemu-x86_64 can only run this x86_64 Python")
    require("the AVX2-only probe", [] if shutil.which("qemu-x86_64") else ["qemu-x86_64"],
            " (Debian package qemu-user)")
    result = subprocess.run(["qemu-x86_64", "-cpu", "Haswell", sys.executable, "-c",
                             _EMULATED], capture_output=True, text=True, timeout=300,
                            env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert result.returncode == 0, result.stderr[-2000:]
    verdict = json.loads(result.stdout.strip().splitlines()[-1])
    assert not verdict["exact"] and verdict["explained"] and verdict["deviating"] > 0
    assert "(known AVX2 u8s8 saturation" in verdict["message"]
    print(f"\nemulated Haswell: {verdict['message']}")
