"""The results of a design-space sweep: one SQLite file, one row per point and seed.

A row is one synthesis (and optionally one verification) of one configuration: the
block, its parameters (as given, and as the component resolves them), their hash, the
target and the seed, every figure of :func:`qdp.build_scripts.synth.synthesize`'s report,
the verification result, the tool versions, a status (``ok``, ``failed`` or
``does-not-fit``) with a one-line reason, and when and where it ran.

The file is in WAL mode, so a report can read it while a sweep writes it. Every row is
its own transaction, and ``UNIQUE (block, params_hash, target, seed)`` keeps any point
from being stored twice, whoever writes it. ``PRAGMA user_version`` marks the file as a
qdp sweep: any other SQLite file (or any other file) is refused, never written to.

    with SweepDB("s.sqlite") as db:
        db.done()          # the keys already stored
        db.add(row)        # one committed row, or False if the point was there already
        db.rows()          # every row, JSON columns decoded
"""

import json
import sqlite3
from pathlib import Path

__all__ = ["COLUMNS", "JSON_COLUMNS", "STATUSES", "USER_VERSION", "SweepDB"]

#: ``PRAGMA user_version`` of a qdp sweep file: "QDP" and the schema's version, 1.
USER_VERSION = 0x51445001
STATUSES = ("ok", "failed", "does-not-fit")

#: Column name -> SQL type, in table order; the key columns first.
COLUMNS = {
    "block": "TEXT NOT NULL",
    "params_hash": "TEXT NOT NULL",
    "target": "TEXT NOT NULL",
    "seed": "INTEGER NOT NULL",
    "params": "TEXT NOT NULL",              # JSON: the parameters given
    "effective_params": "TEXT NOT NULL",    # JSON: every parameter as resolved (hashed)
    "status": "TEXT NOT NULL CHECK (status IN ('ok', 'failed', 'does-not-fit'))",
    "reason": "TEXT",                       # one line, for failed and does-not-fit
    "luts": "INTEGER", "ffs": "INTEGER", "dsps": "INTEGER", "brams": "INTEGER",
    "lutram": "INTEGER",
    "fmax_mhz": "REAL", "freq_mhz": "REAL", "timing_met": "INTEGER",
    "latency_cycles": "INTEGER",
    "module": "TEXT", "device": "TEXT", "package": "TEXT",
    "critical_path": "TEXT", "utilization": "TEXT", "cells": "TEXT", "harness": "TEXT",
    "stage_seconds": "TEXT",                # JSON: export, yosys, nextpnr
    "report": "TEXT",                       # JSON: the whole synthesis report
    "verified": "TEXT",                     # bit-exact, mismatch, crashed; NULL: not asked
    "verify": "TEXT",                       # JSON: simulator, vectors, counts
    "tools": "TEXT",                        # JSON: tool versions on the worker
    "qdp_version": "TEXT", "worker": "TEXT",
    "started_at": "TEXT", "finished_at": "TEXT", "seconds": "REAL",
}
JSON_COLUMNS = ("params", "effective_params", "critical_path", "utilization", "cells",
                "harness", "stage_seconds", "report", "verify", "tools")
KEY = ("block", "params_hash", "target", "seed")

_SCHEMA = ("CREATE TABLE points (id INTEGER PRIMARY KEY, "
           + ", ".join(f"{name} {kind}" for name, kind in COLUMNS.items())
           + f", UNIQUE ({', '.join(KEY)}))")


class SweepDB:
    """A qdp sweep file, opened (and created if ``create`` and it is new or empty).

    Parameters
    ----------
    path : path
        The SQLite file. Its folder is created when the file is.
    create : bool
        Create the file when it does not exist; otherwise that is a ``ValueError``.

    Raises
    ------
    ValueError
        ``"db: ..."``, one line: the file does not exist (and ``create`` is false), is not
        SQLite, or is a SQLite database that is not a qdp sweep (another
        ``user_version``, or a ``points`` table without qdp's columns).
    """

    def __init__(self, path, *, create=True):
        self.path = Path(path)
        if not self.path.exists() and not create:
            raise ValueError(f"db: {self.path} does not exist")
        if self.path.exists() and not self.path.is_file():
            raise ValueError(f"db: {self.path} is not a file")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # A sweep and a report may hold the file at once; a writer waits for the other.
        self._conn = sqlite3.connect(self.path, timeout=30)
        try:
            self._check_or_create()
        except BaseException:
            self._conn.close()
            raise

    def _check_or_create(self):
        conn = self._conn
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            tables = [r[0] for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")]
        except sqlite3.DatabaseError as error:
            raise ValueError(f"db: {self.path} is not a qdp sweep database ({error})") \
                from None
        if version == 0 and not tables:
            with conn:
                conn.execute(_SCHEMA)
                conn.execute(f"PRAGMA user_version = {USER_VERSION}")
        elif version != USER_VERSION:
            raise ValueError(f"db: {self.path} is not a qdp sweep database (user_version "
                             f"{version:#x}, tables: {', '.join(tables) or 'none'}; a qdp "
                             f"sweep has user_version {USER_VERSION:#x})")
        else:
            have = {r[1] for r in conn.execute("PRAGMA table_info(points)")}
            if not set(COLUMNS) <= have:
                raise ValueError(f"db: {self.path} is not a qdp sweep database (its points "
                                 f"table lacks {', '.join(sorted(set(COLUMNS) - have))})")
        # WAL: readers (a --report) never block the writer, and a killed writer leaves
        # every committed row in place.
        conn.execute("PRAGMA journal_mode = WAL")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self._conn.close()

    def done(self):
        """The keys ``(block, params_hash, target, seed)`` of every stored row."""
        return {tuple(r) for r in self._conn.execute(f"SELECT {', '.join(KEY)} FROM points")}

    def add(self, row):
        """Store ``row`` (a dict of :data:`COLUMNS`; JSON columns as Python values) in one
        transaction; ``False`` if its point was stored already (and nothing changes)."""
        unknown = set(row) - set(COLUMNS)
        if unknown:
            raise ValueError(f"row: unknown columns {', '.join(sorted(unknown))}")
        names = list(row)
        values = [json.dumps(row[n], sort_keys=True) if n in JSON_COLUMNS and row[n]
                  is not None else row[n] for n in names]
        with self._conn:
            cursor = self._conn.execute(
                f"INSERT INTO points ({', '.join(names)}) VALUES "
                f"({', '.join('?' * len(names))}) ON CONFLICT ({', '.join(KEY)}) DO NOTHING",
                values)
        return cursor.rowcount == 1

    def forget(self, keys, *, status=None):
        """Delete the rows of ``keys`` (only those with ``status``, if given), in one
        transaction; return how many went."""
        where = " AND ".join(f"{k} = ?" for k in KEY)
        if status is not None:
            where += " AND status = ?"
        gone = 0
        with self._conn:
            for key in keys:
                gone += self._conn.execute(f"DELETE FROM points WHERE {where}",
                                           (*key, *([status] if status else []))).rowcount
        return gone

    def rows(self):
        """Every row as a dict, in the order stored, JSON columns decoded."""
        cursor = self._conn.execute(f"SELECT {', '.join(COLUMNS)} FROM points ORDER BY id")
        rows = []
        for values in cursor:
            row = dict(zip(COLUMNS, values))
            for name in JSON_COLUMNS:
                if row[name] is not None:
                    row[name] = json.loads(row[name])
            rows.append(row)
        return rows
