"""The run history: one SQLite file that a CI job keeps as an artifact or cache.

Embedded, nothing to start. Each run is a row; each device of it a row keyed by the device's
stable key, so the same device tonight and last night are the same key in two runs.
"""

from __future__ import annotations

import json
import os
import sqlite3
from contextlib import closing
from pathlib import Path

from ..errors import HarnessError
from ..results import RunResult
from ._model import DeviceView, RunInfo, RunView, run_view

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    fingerprint TEXT NOT NULL UNIQUE,
    started_at TEXT NOT NULL,
    code TEXT NOT NULL,
    suite TEXT NOT NULL,
    total INTEGER NOT NULL,
    matched INTEGER NOT NULL,
    mismatched INTEGER NOT NULL,
    errors INTEGER NOT NULL,
    wall_seconds REAL NOT NULL,
    tpm_seconds REAL NOT NULL,
    by_detail TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS devices (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    grp TEXT NOT NULL,
    name TEXT NOT NULL,
    world TEXT NOT NULL,
    status TEXT NOT NULL,
    detail TEXT NOT NULL,
    outcome TEXT NOT NULL,
    checkpoint TEXT NOT NULL,
    error TEXT NOT NULL,
    seconds REAL NOT NULL,
    tpm_seconds REAL NOT NULL,
    PRIMARY KEY (run_id, key)
);
CREATE INDEX IF NOT EXISTS devices_by_key ON devices (key, run_id);
"""
_DEVICE_COLUMNS = "key, grp, name, world, status, detail, outcome, checkpoint, error, seconds, tpm_seconds"
_RUN_COLUMNS = (
    "fingerprint, started_at, code, suite, total, matched, mismatched, errors, wall_seconds, "
    "tpm_seconds, by_detail, id"
)


class History:
    """A history file; `record` adds a run, the rest reads."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path)
            self._db.execute("PRAGMA foreign_keys = ON")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise HarnessError(f"{self.path}: not a usable run history: {exc}") from exc
        except OSError as exc:
            raise HarnessError(f"{self.path}: cannot open the run history: {exc.strerror or exc}") from exc

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def record(self, result: RunResult) -> RunInfo:
        """Add a run (once: recording the same run again changes nothing)."""
        view = run_view(result)
        info = view.info
        with self._db:
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO runs (fingerprint, started_at, code, suite, total, matched, "
                "mismatched, errors, wall_seconds, tpm_seconds, by_detail) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    info.fingerprint,
                    info.started_at,
                    info.code,
                    info.suite,
                    info.total,
                    info.matched,
                    info.mismatched,
                    info.errors,
                    info.wall_seconds,
                    info.tpm_seconds,
                    json.dumps(info.by_detail, sort_keys=True),
                ),
            )
            if cursor.rowcount:
                run_id = cursor.lastrowid
                self._db.executemany(
                    f"INSERT OR REPLACE INTO devices (run_id, {_DEVICE_COLUMNS}) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                    [
                        (
                            run_id,
                            d.key,
                            d.group,
                            d.name,
                            d.world,
                            d.status,
                            d.detail,
                            d.outcome,
                            d.checkpoint,
                            d.error,
                            d.seconds,
                            d.tpm_seconds,
                        )
                        for d in view.devices.values()
                    ],
                )
        return self.run(info.fingerprint) or info

    def runs(self, *, suite: str | None = None, limit: int = 30) -> list[RunInfo]:
        """The last `limit` runs, oldest first; only those of one scenario suite when given."""
        where, args = ("WHERE suite = ?", [suite]) if suite is not None else ("", [])
        with closing(
            self._db.execute(
                f"SELECT {_RUN_COLUMNS} FROM runs {where} ORDER BY id DESC LIMIT ?", [*args, limit]
            )
        ) as cursor:
            rows = cursor.fetchall()
        return [_run_info(row) for row in reversed(rows)]

    def run(self, fingerprint: str) -> RunInfo | None:
        row = self._db.execute(
            f"SELECT {_RUN_COLUMNS} FROM runs WHERE fingerprint = ?", [fingerprint]
        ).fetchone()
        return _run_info(row) if row else None

    def devices(self, run: RunInfo) -> dict[str, DeviceView]:
        rows = self._db.execute(f"SELECT {_DEVICE_COLUMNS} FROM devices WHERE run_id = ?", [run.id])
        return {row[0]: _device_view(row) for row in rows}

    def view(self, run: RunInfo) -> RunView:
        return RunView(run, self.devices(run))

    def last_before(self, fingerprint: str | None, suite: str | None = None) -> RunInfo | None:
        """The latest run other than `fingerprint`, and recorded before it when it is recorded."""
        current = self.run(fingerprint) if fingerprint else None
        for run in reversed(self.runs(suite=suite, limit=1000)):
            if run.fingerprint != fingerprint and (current is None or run.id < current.id):
                return run
        return None

    def device_runs(self, key: str, *, limit: int = 10) -> list[tuple[RunInfo, DeviceView]]:
        """The device's last `limit` recorded runs, oldest first."""
        rows = self._db.execute(
            f"SELECT {', '.join('r.' + c.strip() for c in _RUN_COLUMNS.split(','))}, "
            f"{', '.join('d.' + c.strip() for c in _DEVICE_COLUMNS.split(','))} "
            "FROM devices d JOIN runs r ON r.id = d.run_id WHERE d.key = ? ORDER BY r.id DESC LIMIT ?",
            [key, limit],
        ).fetchall()
        width = len(_RUN_COLUMNS.split(","))
        return [(_run_info(row[:width]), _device_view(row[width:])) for row in reversed(rows)]


def _run_info(row: tuple[object, ...]) -> RunInfo:
    fp, started, code, suite, total, matched, mismatched, errors, wall, tpm, by_detail, run_id = row
    return RunInfo(
        fingerprint=str(fp),
        started_at=str(started),
        code=str(code),
        suite=str(suite),
        total=int(str(total)),
        matched=int(str(matched)),
        mismatched=int(str(mismatched)),
        errors=int(str(errors)),
        wall_seconds=float(str(wall)),
        tpm_seconds=float(str(tpm)),
        by_detail=json.loads(str(by_detail)),
        id=int(str(run_id)),
    )


def _device_view(row: tuple[object, ...]) -> DeviceView:
    key, group, name, world, status, detail, outcome, checkpoint, error, seconds, tpm = row
    return DeviceView(
        key=str(key),
        group=str(group),
        name=str(name),
        world=str(world),
        status=str(status),
        detail=str(detail),
        outcome=str(outcome),
        checkpoint=str(checkpoint),
        error=str(error),
        seconds=float(str(seconds)),
        tpm_seconds=float(str(tpm)),
    )


def record_run(path: str | os.PathLike[str], result: RunResult) -> RunInfo:
    with History(path) as history:
        return history.record(result)
