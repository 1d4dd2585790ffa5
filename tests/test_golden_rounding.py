"""The eight rounding modes of qdp.golden.rounding against exact rational definitions.

The references below are written from the mode definitions in DESIGN.md section 3
(floor/ceil formulas on fractions.Fraction), not from the code under test, so a mistake
in one is not repeated in the other.
"""

from fractions import Fraction
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from qdp.golden import ROUNDING_MODES, lfsr_values, round_div, round_shift

from _reference import TWO32, ref_round

DETERMINISTIC = [m for m in ROUNDING_MODES if m != "stochastic"]


def test_reference_agrees_with_the_design_table():
    # Spot values pin the references themselves to DESIGN.md's table.
    v = Fraction(-5, 2)
    got = {m: ref_round(v, m) for m in DETERMINISTIC}
    assert got == {"half_even": -2, "half_away": -3, "half_up": -2, "half_down": -3,
                   "half_zero": -2, "floor": -3, "trunc": -2}
    v = Fraction(5, 2)
    got = {m: ref_round(v, m) for m in DETERMINISTIC}
    assert got == {"half_even": 2, "half_away": 3, "half_up": 3, "half_down": 2,
                   "half_zero": 2, "floor": 2, "trunc": 2}


NUMS = np.arange(-70, 71)
DENS = np.arange(1, 17)


@pytest.mark.parametrize("mode", DETERMINISTIC)
def test_exhaustive_small_rationals(mode):
    num = NUMS[:, None]
    den = DENS[None, :]
    got = round_div(num, den, mode)
    assert got.shape == (NUMS.size, DENS.size)
    for i, n in enumerate(NUMS):
        for j, d in enumerate(DENS):
            assert got[i, j] == ref_round(Fraction(int(n), int(d)), mode), (mode, n, d)


def test_exhaustive_stochastic_exact_formula():
    rs = [0, 1, (1 << 31) - 1, 1 << 31, TWO32 - 2, TWO32 - 1, 0x1234_5678, 0xDEAD_BEEF]
    num = NUMS[:, None, None]
    den = DENS[None, :, None]
    r = np.array(rs, dtype=np.int64)[None, None, :]
    got = round_div(num, den, "stochastic", random=r)
    for i, n in enumerate(NUMS):
        for j, d in enumerate(DENS):
            for k, rr in enumerate(rs):
                want = ref_round(Fraction(int(n), int(d)), "stochastic", rr)
                assert got[i, j, k] == want, (n, d, rr)


@pytest.mark.parametrize("mode", DETERMINISTIC)
def test_round_shift_is_division_by_power_of_two(mode):
    num = np.arange(-300, 301)[:, None]
    shift = np.arange(0, 10)[None, :]
    got = round_shift(num, shift, mode)
    for i, n in enumerate(num[:, 0]):
        for j, s in enumerate(shift[0]):
            assert got[i, j] == ref_round(Fraction(int(n), 1 << int(s)), mode)


@pytest.mark.parametrize("frac", [Fraction(1, 2), Fraction(1, 3), Fraction(7, 8),
                                  Fraction(1, 64), Fraction(5, 7)])
def test_stochastic_mean_approaches_v(frac):
    """Over LFSR values, E[stochastic(v)] = v within a Hoeffding bound.

    Consecutive Galois states are shifts of one another, so only every 32nd beat of a lane
    is taken; lanes start far apart in the sequence. The samples are then treated as
    independent, and Hoeffding's inequality with failure probability 1e-9 gives the bound
    (plus 2**-32 for the bias of r in 1..2**32-1). The LFSR is deterministic, so the check
    cannot flake: it either holds for these samples or the LFSR or the rounding is wrong.
    """
    lanes, beats, stride = 64, 2048, 32
    r = lfsr_values(0x1234_5678, lanes, beats)[::stride].reshape(-1)
    n_samples = r.size
    base = 3
    v = base + frac
    got = round_div(np.full(r.shape, v.numerator), v.denominator, "stochastic", random=r)
    assert set(np.unique(got.astype(np.int64))) <= {base, base + 1}
    mean = Fraction(int(got.sum()), n_samples)
    bound = math.sqrt(math.log(2 / 1e-9) / (2 * n_samples)) + 2.0 ** -32
    assert abs(float(mean - v)) <= bound, (float(mean), float(v), bound)
    # Also negative values: floor(v + u) for v < 0.
    got_neg = round_div(np.full(r.shape, -v.numerator), v.denominator, "stochastic", random=r)
    mean_neg = Fraction(int(got_neg.sum()), n_samples)
    assert abs(float(mean_neg + v)) <= bound


def test_stochastic_on_an_integer_never_moves():
    r = lfsr_values(7, 4, 100)
    got = round_div(np.full(r.shape, -12), 4, "stochastic", random=r)
    assert np.all(got == -3)


# --- properties --------------------------------------------------------------------------

big = st.integers(min_value=-(1 << 130), max_value=1 << 130)
dens = st.integers(min_value=1, max_value=1 << 70)
r32 = st.integers(min_value=0, max_value=TWO32 - 1)
modes = st.sampled_from(ROUNDING_MODES)


def _round(num, den, mode, r):
    return round_div(num, den, mode, random=r if mode == "stochastic" else None)


@settings(max_examples=300, deadline=None)
@given(big, dens, modes, r32)
def test_large_values_match_reference(num, den, mode, r):
    assert _round(num, den, mode, r) == ref_round(Fraction(num, den), mode, r)


@settings(max_examples=300, deadline=None)
@given(big, big, dens, modes, r32)
def test_monotone_in_numerator(a, b, den, mode, r):
    lo, hi = min(a, b), max(a, b)
    assert _round(lo, den, mode, r) <= _round(hi, den, mode, r)


@settings(max_examples=200, deadline=None)
@given(big, modes, r32)
def test_idempotent_on_integers(num, mode, r):
    assert _round(num, 1, mode, r) == num


@settings(max_examples=300, deadline=None)
@given(big, dens, st.sampled_from(["half_even", "half_away", "half_zero", "trunc"]))
def test_symmetric_modes(num, den, mode):
    assert round_div(-num, den, mode) == -round_div(num, den, mode)


@settings(max_examples=300, deadline=None)
@given(big, dens)
def test_mirror_pairs(num, den):
    assert round_div(num, den, "half_up") == -round_div(-num, den, "half_down")
    assert round_div(num, den, "floor") == -math.ceil(Fraction(-num, den))


def test_asymmetric_modes_really_are():
    # The symmetry property above must not hold for these: a tie tells them apart.
    for mode in ("half_up", "half_down", "floor"):
        assert round_div(-1, 2, mode) != -round_div(1, 2, mode)


def test_broadcasting_and_shapes():
    num = np.arange(12).reshape(3, 4) - 6
    got = round_div(num, np.array([1, 2, 3, 4]), "half_even")
    assert got.shape == (3, 4)
    assert got.dtype == object
    for (i, j), g in np.ndenumerate(got):
        assert g == round(Fraction(int(num[i, j]), j + 1))


@pytest.mark.parametrize("mode", DETERMINISTIC)
def test_scalar_inputs(mode):
    got = round_div(-7, 2, mode)
    assert got.shape == ()
    assert got == ref_round(Fraction(-7, 2), mode)
    huge = (1 << 100) + 1
    assert round_div(huge, 2, mode) == ref_round(Fraction(huge, 2), mode)


def test_empty_input():
    assert round_div(np.zeros((0, 3), dtype=np.int64), 1, "half_even").shape == (0, 3)


# --- bad input ---------------------------------------------------------------------------

@pytest.mark.parametrize("bad", ["nearest", "HALF_EVEN", "", None, "round"])
def test_unknown_mode_names_the_parameter(bad):
    with pytest.raises(ValueError, match="rounding"):
        round_div(1, 2, bad)


@pytest.mark.parametrize("den", [0, -1, [1, 0]])
def test_nonpositive_denominator(den):
    with pytest.raises(ValueError, match="den"):
        round_div(1, den, "half_even")


def test_negative_shift():
    with pytest.raises(ValueError, match="shift"):
        round_shift(1, -1, "half_even")


def test_random_is_checked():
    with pytest.raises(ValueError, match="random"):
        round_div(1, 2, "stochastic")
    with pytest.raises(ValueError, match="random"):
        round_div(1, 2, "stochastic", random=TWO32)
    with pytest.raises(ValueError, match="random"):
        round_div(1, 2, "stochastic", random=-1)
    with pytest.raises(ValueError, match="random"):
        round_div(1, 2, "half_even", random=5)


def test_floats_are_refused():
    with pytest.raises(TypeError):
        round_div(np.array([1.5]), 1, "half_even")
