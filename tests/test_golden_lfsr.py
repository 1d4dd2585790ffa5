"""The per-lane LFSR of stochastic rounding.

A bit-level reference written from the polynomial (not from the mask constant), a check
of the output bit stream against the polynomial's linear recurrence, and a proof that the
period is maximal by fast exponentiation of the step's GF(2) matrix (running 2**32 - 1
steps would take too long).
"""

import numpy as np
import pytest

from qdp.golden.lfsr import DEFAULT_SEED, LFSR_TAPS, lane_seed, lfsr_step, lfsr_values

TAPS = (32, 22, 2, 1)           # x^32 + x^22 + x^2 + x + 1
PERIOD = (1 << 32) - 1
PERIOD_PRIMES = (3, 5, 17, 257, 65537)


def ref_step_bits(bits):
    """One right-shifting Galois step on a list of 32 bits, bits[0] the LSB."""
    out = bits[0]
    new = bits[1:] + [0]
    if out:
        for t in TAPS:
            new[t - 1] ^= 1
    return new


def to_bits(value):
    return [(value >> i) & 1 for i in range(32)]


def from_bits(bits):
    return sum(b << i for i, b in enumerate(bits))


def ref_lane_seed(seed, lane):
    value = (seed ^ (lane * 0x9E37_79B9)) % (1 << 32)
    return value if value else 1


def test_taps_constant_is_the_polynomial():
    assert LFSR_TAPS == sum(1 << (t - 1) for t in TAPS)


@pytest.mark.parametrize("seed", [1, DEFAULT_SEED, 0xFFFF_FFFF, 0x8000_0000])
def test_steps_match_bitwise_reference(seed):
    bits = to_bits(seed)
    state = seed
    for _ in range(3000):
        bits = ref_step_bits(bits)
        state = lfsr_step(state)
        assert state == from_bits(bits)
        assert state != 0


def test_lfsr_values_match_reference_per_lane():
    seed, lanes, beats = 0xC0FF_EE00, 5, 2000
    got = lfsr_values(seed, lanes, beats)
    assert got.shape == (beats, lanes)
    assert got.dtype == np.int64
    for lane in range(lanes):
        bits = to_bits(ref_lane_seed(seed, lane))
        for t in range(beats):
            # The state *before* the step rounds beat t.
            assert got[t, lane] == from_bits(bits), (lane, t)
            bits = ref_step_bits(bits)
    assert got.min() >= 1 and got.max() <= PERIOD


def test_output_bits_follow_the_linear_recurrence():
    # A right-shifting Galois register with the taps of P(x) emits (at bit 0) a sequence
    # whose characteristic polynomial is the reciprocal x^32 P(1/x) =
    # x^32 + x^31 + x^30 + x^10 + 1, i.e. s[t+32] = s[t+31] ^ s[t+30] ^ s[t+10] ^ s[t].
    s = lfsr_values(DEFAULT_SEED, 1, 4000)[:, 0] & 1
    for t in range(len(s) - 32):
        assert s[t + 32] == s[t + 31] ^ s[t + 30] ^ s[t + 10] ^ s[t], t


def _matrix_of_step():
    # The step is linear over GF(2): column j is the image of basis vector 1 << j.
    return [lfsr_step(1 << j) for j in range(32)]


def _apply(matrix, vector):
    out = 0
    j = 0
    while vector:
        if vector & 1:
            out ^= matrix[j]
        vector >>= 1
        j += 1
    return out


def _compose(a, b):
    return [_apply(a, col) for col in b]


def _power(matrix, n):
    result = [1 << j for j in range(32)]
    while n:
        if n & 1:
            result = _compose(matrix, result)
        matrix = _compose(matrix, matrix)
        n >>= 1
    return result


def test_period_is_maximal():
    # The orbit of a nonzero state has period dividing 2**32 - 1 iff T**(2**32-1) fixes it,
    # and exactly 2**32 - 1 iff no T**((2**32-1)/p) does for the primes p of 2**32 - 1.
    assert np.prod(PERIOD_PRIMES, dtype=object) == PERIOD
    step = _matrix_of_step()
    state = DEFAULT_SEED
    assert _apply(_power(step, PERIOD), state) == state
    for p in PERIOD_PRIMES:
        assert _apply(_power(step, PERIOD // p), state) != state, p


def test_lanes_differ():
    got = lfsr_values(DEFAULT_SEED, 16, 1000)
    # Different start states of a bijective step stay different at every beat.
    for t in range(got.shape[0]):
        assert len(set(got[t].tolist())) == 16
    # And no lane is a short delay of another.
    for a in range(16):
        for b in range(16):
            if a != b:
                for delay in range(1, 64):
                    assert not np.array_equal(got[delay:, a], got[:-delay, b])


@pytest.mark.parametrize("seed,lane", [(0, 0), (0x9E37_79B9, 1), ((2 * 0x9E37_79B9) % (1 << 32), 2)])
def test_zero_start_state_becomes_one(seed, lane):
    assert lane_seed(seed, lane) == 1
    assert lfsr_values(seed, lane + 1, 3)[0, lane] == 1


@pytest.mark.parametrize("seed", [0, 1, DEFAULT_SEED, 0xFFFF_FFFF])
def test_lane_seed_formula(seed):
    for lane in range(64):
        assert lane_seed(seed, lane) == ref_lane_seed(seed, lane)
