"""Compare received beats with the golden model, exactly, and explain every mismatch."""

import numpy as np

__all__ = ["Scoreboard"]


class Scoreboard:
    """Collects ``(inputs, expected, got)`` per beat and lane and reports mismatches.

    ``inputs`` maps a name to an array with one row per beat (a lane axis where the value
    is per lane), so a report can say exactly what went in.
    """

    def __init__(self, name, *, max_reports=10):
        self.name = name
        self.max_reports = max_reports
        self.compared = 0
        self.mismatches = 0
        self.reports = []

    def compare(self, got, expected, inputs, *, beat_offset=0, phase=""):
        """Compare ``got`` with ``expected`` (shape ``(beats, lanes)``) element by element."""
        got, expected = _rows(got), _rows(expected)
        if len(got) == 0 and len(expected) == 0:
            return
        if got.shape != expected.shape:
            raise AssertionError(f"{self.name}: {phase}shape {got.shape} != {expected.shape}")
        self.compared += got.size
        bad = np.argwhere(got != expected)
        self.mismatches += len(bad)
        for beat, lane in bad[: max(0, self.max_reports - len(self.reports))]:
            shown = {}
            for key, value in inputs.items():
                row = np.asarray(value)[beat]
                shown[key] = int(row[lane] if np.ndim(row) else row)
            self.reports.append(
                f"{self.name}: {phase}beat {beat + beat_offset} lane {lane}: "
                f"inputs {shown} expected {expected[beat, lane]} got {got[beat, lane]}")

    def summary(self):
        return {"compared": self.compared, "mismatches": self.mismatches,
                "reports": self.reports}


def _rows(values):
    """``values`` as a ``(beats, lanes)`` int64 array; a 1-D array is one lane."""
    values = np.asarray(values, dtype=np.int64)
    return values.reshape(len(values), -1) if values.size else values.reshape(len(values), 0)
