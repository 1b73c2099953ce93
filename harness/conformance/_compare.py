"""Two vendor-check reports side by side: which requirements changed, and which latencies moved
beyond their noise (two firmware builds, two lots, two implementations)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ._model import VendorCheckError

FORMATS = ("harness-vendor-check/1", "harness-vendor-check/2")
COMPARISON_FORMAT = "harness-vendor-check-comparison/1"
_MIN_RUNS = 3  # below this a spread says nothing about noise
_MIN_RELATIVE = 0.10  # and a change smaller than a tenth of the old time is not worth a line


@dataclass(frozen=True)
class RowChange:
    key: str
    old: str  # status, or "absent"
    new: str
    evidence: str  # the new report's evidence (the old one's when the row went away)


@dataclass(frozen=True)
class LatencyChange:
    key: str
    old_ms: float
    new_ms: float
    noise_ms: float

    @property
    def percent(self) -> float:
        return (self.new_ms - self.old_ms) / self.old_ms * 100 if self.old_ms else 0.0


@dataclass
class Comparison:
    old: str
    new: str
    rows: list[RowChange] = field(default_factory=list)
    latencies: list[LatencyChange] = field(default_factory=list)
    latency_note: str = ""

    @property
    def changed(self) -> bool:
        return bool(self.rows)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": COMPARISON_FORMAT,
            "old": self.old,
            "new": self.new,
            "rows": [asdict(r) for r in self.rows],
            "latencies": [{**asdict(c), "percent": round(c.percent, 1)} for c in self.latencies],
            "latency_note": self.latency_note,
        }


def load_report(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise VendorCheckError(f"--compare {path}: cannot read: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise VendorCheckError(f"--compare {path}: not JSON ({exc})") from exc
    if not isinstance(document, dict) or document.get("format") not in FORMATS:
        raise VendorCheckError(f"--compare {path}: not a vendor-check report.json")
    return document


def _rows(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    for row in document.get("rows", []):
        key = row.get("key") or (f"{row['unit']}/{row['id']}" if row.get("unit") else row["id"])
        rows[key] = row
    return rows


def _time(row: dict[str, Any]) -> tuple[float, float] | None:
    latency = row.get("latency")
    if not latency:
        return None
    if int(latency.get("runs", 0)) < _MIN_RUNS:
        return None  # timed once (a one-off such as the storage root key): no spread to judge by
    median = latency.get("net_median_ms")
    median = latency["median_ms"] if median is None else median
    return float(median), float(latency["max_ms"]) - float(latency["min_ms"])


def compare_reports(
    old: dict[str, Any], new: dict[str, Any], *, old_name: str = "old", new_name: str = "new"
) -> Comparison:
    result = Comparison(old_name, new_name)
    before, after = _rows(old), _rows(new)
    for key in [*before, *(k for k in after if k not in before)]:
        was, now = before.get(key), after.get(key)
        old_status = was["status"] if was else "absent"
        new_status = now["status"] if now else "absent"
        if old_status != new_status:
            evidence = (now or was or {}).get("evidence", "")
            result.rows.append(RowChange(key, old_status, new_status, evidence))
    runs = min(int(old.get("runs", 0)), int(new.get("runs", 0)))
    if runs < _MIN_RUNS:
        result.latency_note = (
            f"latencies not compared: {runs} run(s) per operation, at least {_MIN_RUNS} to know the noise"
        )
        return result
    for key, was in before.items():
        now = after.get(key)
        old_time, new_time = _time(was), _time(now) if now else None
        if old_time is None or new_time is None:
            continue
        noise = max(old_time[1], new_time[1])
        delta = abs(new_time[0] - old_time[0])
        if delta > noise and delta > _MIN_RELATIVE * old_time[0]:
            result.latencies.append(LatencyChange(key, old_time[0], new_time[0], round(noise, 2)))
    result.latency_note = (
        f"a latency is listed when its median (net of the round trip) moved by more than both spreads "
        f"and more than {_MIN_RELATIVE:.0%}"
    )
    return result
