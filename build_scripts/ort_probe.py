"""Does this CPU's onnxruntime compute ``MatMulInteger`` as ONNX defines it?

ONNX defines ``MatMulInteger`` (and the accumulator of ``QLinearMatMul``) as the exact
int32 sum ``sum_k (a[i][k] - a_zero) * (b[k][j] - b_zero[j])``; the ONNX reference
evaluator computes exactly that, and so does :func:`qdp.golden.matmul_int`.

onnxruntime does not, for uint8 A and int8 B on x86 CPUs without AVX-512 VNNI or
AVX-VNNI (AVX2 only): its MLAS kernel multiplies with ``vpmaddubsw``, which adds the two
products of neighbouring k (``2p`` and ``2p + 1``, on the raw operands) and saturates that
sum to int16 before widening it; the zero-point corrections that follow are exact int32.
Where ``a[i][2p] * b[2p][j] + a[i][2p+1] * b[2p+1][j]`` leaves ``[-32768, 32767]`` (both
operands near full range), the result is not the definition. :func:`pair_saturated_matmul`
states that arithmetic; on such CPUs onnxruntime equals it bit for bit. The other operand
types (int8 x int8, uint8 x uint8, int8 x uint8) are exact there too.

:func:`probe` runs one small case that triggers the saturation through onnxruntime and
through the ONNX reference evaluator and says which arithmetic this CPU's onnxruntime
computes. The conformance tests compare qdp with the reference always, and with
onnxruntime against what the probe says it computes: the known deviation is counted and
reported, never a failure and never a skip; any other difference still fails.
"""

import dataclasses
import functools

import numpy as np

from ..golden import matmul_int

__all__ = ["OrtVerdict", "pair_saturated_matmul", "probe", "probe_case", "probe_model",
           "run_onnxruntime"]

_INT16 = (-(1 << 15), (1 << 15) - 1)
#: ONNX opset of the probe's graph (MatMulInteger has not changed since opset 10).
OPSET = 21


def pair_saturated_matmul(a, b, *, a_zero=0, b_zero=0):
    """What onnxruntime's AVX2 uint8 x int8 kernel computes for ``MatMulInteger``.

    ``sum_p sat16(a[i][2p] * b[2p][j] + a[i][2p+1] * b[2p+1][j])`` over the raw operands
    (an odd K pads one zero column), then the exact zero-point corrections
    ``- b_zero[j] * sum_k a[i][k] - a_zero * sum_k b[k][j] + K * a_zero * b_zero[j]``.
    ``a`` is uint8 values (M, K), ``b`` int8 values (K, N), ``a_zero`` a scalar,
    ``b_zero`` a scalar or one per column. Returns int64 (M, N).
    """
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    m, k = a.shape
    n = b.shape[1]
    a_zero = int(np.asarray(a_zero))
    b_zero = np.broadcast_to(np.asarray(b_zero, dtype=np.int64), (n,))
    even = k + k % 2
    a_pad = np.zeros((m, even), dtype=np.int64)
    a_pad[:, :k] = a
    b_pad = np.zeros((even, n), dtype=np.int64)
    b_pad[:k] = b
    raw = np.zeros((m, n), dtype=np.int64)
    for p in range(0, even, 2):
        pair = (a_pad[:, p, None] * b_pad[None, p, :] +
                a_pad[:, p + 1, None] * b_pad[None, p + 1, :])
        raw += np.clip(pair, *_INT16)
    return (raw - b_zero[None, :] * a.sum(axis=1)[:, None] - a_zero * b.sum(axis=0)[None, :]
            + k * a_zero * b_zero[None, :])


@dataclasses.dataclass(frozen=True)
class OrtVerdict:
    """The probe's finding.

    Members
    -------
    exact : bool
        onnxruntime's uint8 x int8 ``MatMulInteger`` equals the definition on every
        probed value.
    explained : bool
        Every probed value equals :func:`pair_saturated_matmul` (the known deviation)
        where it is not exact; always true when ``exact``.
    deviating, total : int
        Probed values that differ from the definition, and values probed.
    version : str
        onnxruntime's version.
    """

    exact: bool
    explained: bool
    deviating: int
    total: int
    version: str

    def matmul(self, a, b, *, a_zero=0, b_zero=0):
        """The int32 accumulator this CPU's onnxruntime computes for uint8 ``a`` times
        int8 ``b``: the exact product, or :func:`pair_saturated_matmul` where the probe
        found the known saturation."""
        if self.exact:
            return np.asarray(matmul_int(a, b, a_zero=a_zero, b_zero=b_zero), dtype=np.int64)
        return pair_saturated_matmul(a, b, a_zero=a_zero, b_zero=b_zero)

    @property
    def message(self):
        who = f"onnxruntime {self.version} on this CPU"
        if self.exact:
            return (f"{who} computes MatMulInteger uint8 x int8 as defined ({self.total} of "
                    f"{self.total} probed values equal the ONNX reference)")
        why = ("known AVX2 u8s8 saturation: int16 sums of neighbouring products"
               if self.explained else "NOT explained by the known AVX2 u8s8 saturation")
        return (f"{who} deviates from MatMulInteger's definition in {self.deviating} of "
                f"{self.total} values ({why}); qdp equals the reference")


def probe_case():
    """The probe's operands: random full-range values, plus rows of 255 and columns of
    127 and -128, whose neighbouring products overflow int16 (255 * 127 * 2 > 32767)."""
    rng = np.random.default_rng(2024)
    a = rng.integers(0, 256, size=(8, 64)).astype(np.uint8)
    b = rng.integers(-128, 128, size=(64, 8)).astype(np.int8)
    a[0], b[:, 0], b[:, 1] = 255, 127, -128
    b_zero = rng.integers(-4, 5, size=8).astype(np.int8)
    return a, b, np.asarray(3, dtype=np.uint8), b_zero


def probe_model():
    """The probe's ONNX model: one ``MatMulInteger`` of uint8 ``a`` (M, K) and int8 ``b``
    (K, N), with a scalar uint8 ``az`` and per-column int8 ``bz`` zero points, to int32
    ``y`` (opset :data:`OPSET`, checked by ``onnx.checker``)."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["a", "b", "az", "bz"], ["y"])], "probe",
        [helper.make_tensor_value_info("a", TensorProto.UINT8, [None, None]),
         helper.make_tensor_value_info("b", TensorProto.INT8, [None, None]),
         helper.make_tensor_value_info("az", TensorProto.UINT8, []),
         helper.make_tensor_value_info("bz", TensorProto.INT8, [None])],
        [helper.make_tensor_value_info("y", TensorProto.INT32, [None, None])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 10
    onnx.checker.check_model(model)
    return model


def run_onnxruntime(model, feeds):
    """Run ``model`` on ``feeds`` (input name -> array) with onnxruntime's CPU provider:
    ``(first output, onnxruntime version)``, the ``run`` that :func:`probe` uses by
    default."""
    import onnxruntime as ort

    session = ort.InferenceSession(model.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    return session.run(None, feeds)[0], ort.__version__


def _verdict(got, version):
    from onnx.reference import ReferenceEvaluator

    a, b, a_zero, b_zero = probe_case()
    (want,) = ReferenceEvaluator(probe_model()).run(None, {"a": a, "b": b, "az": a_zero,
                                                      "bz": b_zero})
    want = want.astype(np.int64)
    golden = np.asarray(matmul_int(a, b, a_zero=a_zero, b_zero=b_zero), dtype=np.int64)
    if not np.array_equal(golden, want):            # qdp's own claim, checked every time
        raise AssertionError("qdp.golden.matmul_int differs from the ONNX reference "
                             "MatMulInteger on the probe case")
    got = np.asarray(got, dtype=np.int64)
    deviating = int(np.sum(got != want))
    model = pair_saturated_matmul(a, b, a_zero=a_zero, b_zero=b_zero)
    return OrtVerdict(exact=deviating == 0,
                      explained=deviating == 0 or bool(np.array_equal(got, model)),
                      deviating=deviating, total=int(want.size), version=version)


def probe(run=None):
    """Run the probe case through onnxruntime (or through ``run(model, feeds) ->
    (output, version)``, for tests) and return an :class:`OrtVerdict`. The default run is
    done once per process."""
    if run is None:
        return _probe_onnxruntime()
    a, b, a_zero, b_zero = probe_case()
    got, version = run(probe_model(), {"a": a, "b": b, "az": a_zero, "bz": b_zero})
    return _verdict(got, version)


@functools.cache
def _probe_onnxruntime():
    return probe(run_onnxruntime)
