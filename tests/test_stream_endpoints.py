"""The cocotb stream endpoints on their own, cycle by cycle, with stand-in signals: the
source keeps the valid/ready rules and the sink catches a DUT that breaks them."""

import pytest

from qdp.sim.stream import StreamSink, StreamSource, pause_generator


class _Value(int):
    def to_unsigned(self):
        return int(self)


class _Signal:
    def __init__(self, value=0):
        self._value = _Value(value)

    @property
    def value(self):
        return self._value

    @value.setter
    def value(self, v):
        self._value = _Value(v)


class _Dut:
    def __init__(self, name):
        for role in ("valid", "ready", "payload"):
            setattr(self, f"{name}__{role}", _Signal())


def test_source_holds_each_beat_until_taken():
    dut = _Dut("i")
    source = StreamSource(dut, "i", pause=pause_generator(0.5, 3))
    source.send([11, 22, 33])
    ready_pattern = [0, 0, 1, 0, 1, 1, 0, 0, 1, 1, 1, 1]
    seen = []
    for ready in ready_pattern:
        dut.i__ready.value = ready          # what the DUT shows during this cycle
        source.sample()
        previous = (int(dut.i__valid.value), int(dut.i__payload.value), ready)
        source.edge()
        if previous[0] and not previous[2]:
            # stalled over the edge: still valid, same payload
            assert dut.i__valid.value == 1 and dut.i__payload.value == previous[1]
        if previous[0] and previous[2]:
            seen.append(previous[1])
    assert seen == [11, 22, 33] and source.accepted == 3


def _sink_run(valids, payloads, readies):
    dut = _Dut("o")
    sink = StreamSink(dut, "o", pause=iter([not r for r in readies]))
    for valid, payload in zip(valids, payloads):
        sink.edge()
        dut.o__valid.value, dut.o__payload.value = valid, payload
        sink.sample()
    return sink


def test_sink_takes_beats_in_order():
    sink = _sink_run([1, 1, 1, 0, 1], [5, 5, 6, 0, 7], [0, 1, 1, 1, 1, 1])
    sink.edge()
    assert sink.words == [5, 6, 7]


def test_sink_catches_payload_change_while_stalled():
    with pytest.raises(AssertionError, match="payload changed while stalled"):
        _sink_run([1, 1], [5, 6], [0, 0, 0])


def test_sink_catches_valid_dropped_while_stalled():
    with pytest.raises(AssertionError, match="valid fell without ready"):
        _sink_run([1, 0], [5, 0], [0, 0, 0])
