"""What changed between two runs: devices, mismatches new and persistent, flakiness, timing."""

from __future__ import annotations

import itertools
import statistics
from dataclasses import dataclass, field
from typing import Any

from ._model import DeviceView, RunInfo, RunView
from ._store import History

# A device is slower beyond noise when it took more than FACTOR times its baseline and at
# least SECONDS more: a swtpm's RSA key generation alone varies by a factor of two or three.
SLOWER_FACTOR = 2.0
SLOWER_SECONDS = 2.0
FLAKY_WINDOW = 10  # runs of a device looked at for flakiness


@dataclass(frozen=True)
class Change:
    key: str
    before: DeviceView | None
    after: DeviceView | None

    @property
    def group(self) -> str:
        return self.after.group if self.after else self.before.group if self.before else ""

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "group": self.group,
            "before": _device_json(self.before),
            "after": _device_json(self.after),
        }


@dataclass
class RunDiff:
    before: RunInfo
    after: RunInfo
    changed: list[Change] = field(default_factory=list)  # status, detail or outcome differ
    added: list[Change] = field(default_factory=list)
    removed: list[Change] = field(default_factory=list)
    new_mismatches: list[Change] = field(default_factory=list)
    persistent_mismatches: list[Change] = field(default_factory=list)
    fixed: list[Change] = field(default_factory=list)
    slower: list[Change] = field(default_factory=list)
    flaky: list[str] = field(default_factory=list)  # keys

    @property
    def same_code(self) -> bool:
        return bool(self.before.code) and self.before.code == self.after.code

    def to_json(self) -> dict[str, Any]:
        def changes(items: list[Change]) -> list[dict[str, Any]]:
            return [c.to_json() for c in items]

        return {
            "before": _run_json(self.before),
            "after": _run_json(self.after),
            "same_code": self.same_code,
            "changed": changes(self.changed),
            "new_devices": changes(self.added),
            "removed_devices": changes(self.removed),
            "new_mismatches": changes(self.new_mismatches),
            "persistent_mismatches": changes(self.persistent_mismatches),
            "fixed": changes(self.fixed),
            "slower": changes(self.slower),
            "flaky": self.flaky,
        }


def _device_json(view: DeviceView | None) -> dict[str, Any] | None:
    if view is None:
        return None
    return {
        "name": view.name,
        "status": view.status,
        "detail": view.detail,
        "outcome": view.outcome,
        "checkpoint": view.checkpoint,
        "error": view.error,
        "seconds": view.seconds,
        "tpm_seconds": view.tpm_seconds,
    }


def _run_json(info: RunInfo) -> dict[str, Any]:
    return {
        "started_at": info.started_at,
        "code": info.code,
        "scenarios": info.suite,
        "total": info.total,
        "matched": info.matched,
        "mismatched": info.mismatched,
        "errors": info.errors,
        "wall_seconds": info.wall_seconds,
    }


def _failing(view: DeviceView | None) -> bool:
    return view is not None and view.outcome != "matched"


def diff_runs(before: RunView, after: RunView, history: History | None = None) -> RunDiff:
    """`after` against `before`; with a history, flakiness and timing baselines come from it."""
    result = RunDiff(before.info, after.info)
    if history is not None:  # two runs alone cannot tell noise from a change (see is_flaky)
        result.flaky = sorted(k for k, v in after.devices.items() if is_flaky(history, v, after.info))
    noise = set(result.flaky)
    for key in sorted(before.devices.keys() | after.devices.keys()):
        old, new = before.devices.get(key), after.devices.get(key)
        change = Change(key, old, new)
        if key in noise:
            # Its outcome differs between runs of the same world on the same code: noise, listed
            # as flaky, not a change or a new mismatch that a gate would fail on.
            continue
        if old is None:
            result.added.append(change)
        elif new is None:
            result.removed.append(change)
        elif old.state != new.state:
            result.changed.append(change)
        if _failing(new):
            (result.persistent_mismatches if _failing(old) else result.new_mismatches).append(change)
        elif _failing(old) and new is not None:
            result.fixed.append(change)
        if old is not None and new is not None and _slower(new, _baseline(old, key, after, history)):
            result.slower.append(change)
    return result


def _baseline(old: DeviceView, key: str, after: RunView, history: History | None) -> float:
    if history is None:
        return old.seconds
    earlier = [
        v.seconds for run, v in history.device_runs(key, limit=6) if run.fingerprint != after.info.fingerprint
    ]
    return statistics.median(earlier[-5:]) if earlier else old.seconds


def _slower(new: DeviceView, baseline: float) -> bool:
    return new.seconds > baseline * SLOWER_FACTOR and new.seconds - baseline >= SLOWER_SECONDS


def recent(
    history: History, view: DeviceView, run: RunInfo, *, limit: int = FLAKY_WINDOW
) -> list[DeviceView]:
    """The device's recorded runs up to `run`, oldest first, `run` itself last."""
    rows = [
        (r, v) for r, v in history.device_runs(view.key, limit=limit + 1) if r.fingerprint != run.fingerprint
    ]
    return [v for _, v in rows[-(limit - 1) :]] + [view] if limit > 1 else [view]


def is_flaky(history: History, view: DeviceView, run: RunInfo) -> bool:
    """Its outcome went back and forth in recent runs of the same world on the same code.

    One change that stays is a change, not noise: something outside the scenario and the code
    (the server's trust store, say) may have changed with it. A second change within the
    window (A, B, A or A, B, C) is what no single cause explains.
    """
    if not run.code:
        return False
    rows = [
        (r, v)
        for r, v in history.device_runs(view.key, limit=FLAKY_WINDOW)
        if r.fingerprint != run.fingerprint
    ]
    states = [v.state for r, v in rows if r.code == run.code and v.world == view.world] + [view.state]
    return sum(1 for a, b in itertools.pairwise(states) if a != b) >= 2


def label(history: History, view: DeviceView, run: RunInfo) -> str:
    """flaky, new, persistent, fixed, or '' for a device that keeps matching."""
    if is_flaky(history, view, run):
        return "flaky"
    earlier = [
        v for r, v in history.device_runs(view.key, limit=FLAKY_WINDOW) if r.fingerprint != run.fingerprint
    ]
    previous = earlier[-1] if earlier else None
    if _failing(view):
        return "persistent" if _failing(previous) else "new"
    return "fixed" if _failing(previous) else ""
