"""The four saturation modes against independent definitions, exhaustively on small widths."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from qdp.golden import SATURATION_MODES, int_range, saturate


def ref_range(width, signed):
    if signed:
        return -2 ** (width - 1), 2 ** (width - 1) - 1
    return 0, 2 ** width - 1


def ref_saturate(r, width, signed, mode):
    lo, hi = ref_range(width, signed)
    if mode == "sat":
        return lo if r < lo else hi if r > hi else r
    if mode == "sat_sym":
        lo_sym = -hi if signed else 0
        return lo_sym if r < lo_sym else hi if r > hi else r
    if mode == "sat_zero":
        return r if lo <= r <= hi else 0
    if mode == "wrap":
        # Keep the low `width` bits (Python's & is two's complement on negatives), then read
        # the top bit as the sign.
        low = r & ((1 << width) - 1)
        if signed and low >> (width - 1):
            low -= 1 << width
        return low
    raise AssertionError(mode)


@pytest.mark.parametrize("mode", SATURATION_MODES)
@pytest.mark.parametrize("signed", [True, False])
@pytest.mark.parametrize("width", range(1, 8))
def test_exhaustive_small_widths(mode, signed, width):
    span = 3 << width
    r = np.arange(-span, span + 1)
    got = saturate(r, width=width, signed=signed, saturation=mode)
    lo, hi = ref_range(width, signed)
    for value, g in zip(r, got):
        want = ref_saturate(int(value), width, signed, mode)
        assert g == want, (mode, signed, width, value)
        assert lo <= g <= hi


@pytest.mark.parametrize("signed", [True, False])
@pytest.mark.parametrize("width", range(1, 10))
def test_int_range_is_every_value_the_width_holds(width, signed):
    """int_range's ends are the smallest and largest values that a width-bit register
    keeps unchanged (the bit-level wrap of ref_saturate, not the range formula)."""
    kept = [v for v in range(-(4 << width), 4 << width)
            if ref_saturate(v, width, signed, "wrap") == v]
    assert int_range(width, signed) == (min(kept), max(kept))
    assert len(kept) == 1 << width


def test_sat_sym_is_the_seeds_int8_range():
    got = saturate(np.array([-1000, -128, -127, 127, 128]), width=8, signed=True,
                   saturation="sat_sym")
    assert list(got) == [-127, -127, -127, 127, 127]


@settings(max_examples=250, deadline=None)
@given(st.integers(min_value=-(1 << 140), max_value=1 << 140),
       st.integers(min_value=1, max_value=96), st.booleans(), st.sampled_from(SATURATION_MODES))
def test_wide_values(r, width, signed, mode):
    got = saturate(r, width=width, signed=signed, saturation=mode)
    assert got.shape == ()
    assert got == ref_saturate(r, width, signed, mode)


def test_shape_is_kept():
    r = np.arange(-40, 40).reshape(4, 5, 4)
    for mode in SATURATION_MODES:
        got = saturate(r, width=4, signed=True, saturation=mode)
        assert got.shape == r.shape


@pytest.mark.parametrize("bad", ["clip", "saturate", "", None])
def test_unknown_mode_names_the_parameter(bad):
    with pytest.raises(ValueError, match="saturation"):
        saturate([1], width=8, signed=True, saturation=bad)
