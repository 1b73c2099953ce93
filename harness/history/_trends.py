"""What a run's report shows of its history: the runs before it and each device's recent outcomes."""

from __future__ import annotations

from typing import Any

from ..results import RunResult
from ._diff import is_flaky, label, recent
from ._model import run_view, view_of
from ._store import History

TREND_RUNS = 30  # runs on the report's charts
RECENT = 10  # outcomes on a device's row

_LETTER = {"matched": "m", "mismatched": "x", "error": "e"}


def trends(history: History, result: RunResult) -> dict[str, Any]:
    """The report's history: one entry per run of the same scenarios, oldest first, this run last;
    per device (in the result's order) its label and recent outcomes ('m', 'x', 'e' per run)."""
    view = run_view(result)
    runs = [
        r
        for r in history.runs(suite=view.info.suite, limit=TREND_RUNS)
        if r.fingerprint != view.info.fingerprint
    ]
    runs = runs[-(TREND_RUNS - 1) :] if TREND_RUNS > 1 else []
    entries = []
    for info, devices in [*((r, history.devices(r)) for r in runs), (view.info, view.devices)]:
        count = max(len(devices), 1)
        entries.append(
            {
                "started_at": info.started_at,
                "code": info.code,
                "matched": info.matched,
                "mismatched": info.mismatched - info.errors,
                "errors": info.errors,
                "mix": info.by_detail,
                "wall_seconds": info.wall_seconds,
                "device_seconds": round(sum(d.seconds for d in devices.values()) / count, 3),
                "device_tpm_seconds": round(sum(d.tpm_seconds for d in devices.values()) / count, 3),
            }
        )
    rows = []
    for device in map(view_of, result.devices):  # in the result's order, as the page lists them
        outcomes = "".join(_LETTER[v.outcome] for v in recent(history, device, view.info, limit=RECENT))
        rows.append([label(history, device, view.info), outcomes])
    return {"runs": entries, "devices": rows}


def flaky_keys(history: History, result: RunResult) -> set[str]:
    view = run_view(result)
    return {k for k, v in view.devices.items() if is_flaky(history, v, view.info)}
