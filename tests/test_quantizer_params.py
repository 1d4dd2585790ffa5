# amaranth: UnusedElaboratable=no
"""Every bad Quantizer parameter is refused at construction with a message naming it."""

import pytest

from qdp.hdl import Quantizer

BAD = [
    (dict(out_width=0), ValueError, r"out_width: 0 is out of range \(allowed 2\.\.32\)"),
    (dict(out_width=33), ValueError, r"out_width: 33 is out of range"),
    (dict(lanes=0), ValueError, r"lanes: 0 is out of range \(allowed 1\.\.64\)"),
    (dict(lanes=65), ValueError, r"lanes: 65"),
    (dict(lanes=2.0), TypeError, r"lanes: expected an integer"),
    (dict(in_width=1), ValueError, r"in_width: 1 is out of range"),
    (dict(in_width=65), ValueError, r"in_width: 65"),
    (dict(mult_width=33), ValueError, r"mult_width: 33"),
    (dict(rounding="nearest"), ValueError, r"rounding: unknown value 'nearest'"),
    (dict(saturation="clip"), ValueError, r"saturation: unknown value 'clip'"),
    (dict(in_signed=1), TypeError, r"in_signed: expected True or False"),
    (dict(latency=0), ValueError, r"latency: 0"),
    (dict(shift_width=8), ValueError, r"shift_width: 8"),
    (dict(tflite="triple"), ValueError, r"tflite: unknown value 'triple'"),
    (dict(runtime_scale=True, multiplier=5), ValueError, r"multiplier: with runtime_scale"),
    # Constant scale.
    (dict(runtime_scale=False, multiplier=1 << 8, shift=0, mult_width=8), ValueError,
     r"multiplier: 256 is not a 8-bit unsigned integer"),
    (dict(runtime_scale=False, multiplier=-1, shift=0), ValueError, r"multiplier: -1"),
    (dict(runtime_scale=False, multiplier=3, shift=16 + 8, in_width=16, mult_width=8),
     ValueError, r"shift: 24 is not a shift that leaves result bits of the 24-bit product"),
    (dict(runtime_scale=False, multiplier=3, shift=-1), ValueError, r"shift: -1"),
    (dict(runtime_scale=False, multiplier=3, shift=2, zero_point=128), ValueError,
     r"zero_point: 128 is not in the output range \(allowed -128\.\.127\)"),
    (dict(runtime_scale=False, multiplier=3, shift=2, zero_point=-1, out_signed=False),
     ValueError, r"zero_point: -1 is not in the output range \(allowed 0\.\.255\)"),
    (dict(runtime_scale=False, per_lane=True, lanes=3, multiplier=[1, 2], shift=[0, 0, 0]),
     ValueError, r"multiplier: per_lane needs a sequence of 3 integers"),
    (dict(runtime_scale=False, multiplier=None, shift=0), ValueError,
     r"multiplier: a constant scale \(runtime_scale=False\) needs multiplier and shift"),
    (dict(runtime_scale=False, multiplier=[1, 2], shift=0), TypeError,
     r"multiplier: expected an integer constant \(a list needs per_lane\)"),
    # TFLite mode fixes rounding, saturation and the multiplier format.
    (dict(tflite="double", rounding="half_even"), ValueError, r"rounding: tflite mode"),
    (dict(tflite="double", saturation="wrap"), ValueError, r"saturation: tflite mode"),
    (dict(tflite="double", mult_width=32), ValueError, r"mult_width: tflite multipliers"),
    (dict(tflite="double", in_width=33), ValueError, r"in_width: 33"),
    (dict(tflite="single", in_signed=False), ValueError, r"in_signed: tflite"),
    (dict(tflite="single", runtime_scale=False, multiplier=1 << 30, shift=31), ValueError,
     r"shift: 31 is not TFLite's exponent range"),
]


@pytest.mark.parametrize("params,error,message", BAD, ids=[str(p) for p, _, _ in BAD])
def test_bad_parameter(params, error, message):
    with pytest.raises(error, match=message):
        Quantizer(**params)


def test_good_parameters_resolve_defaults():
    q = Quantizer()
    assert (q.rounding, q.mult_width, q.shift_width, q.latency) == ("half_even", 32, 6, 2)
    t = Quantizer(tflite="single")
    assert (t.rounding, t.mult_width) == (None, 31)
    c = Quantizer(runtime_scale=False, multiplier=5, shift=3)
    assert c.zero_point == 0
