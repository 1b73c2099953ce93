"""`harness verify` against a run: each device's bundle, judged offline, gives the status and
detail of the run's results (what it could not judge offline, it names in its output)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from harness.results import DeviceResult
from harness.status import AttestationStatus
from harness.trust import trust_for, verify_bundle


def disagreements(devices: list[DeviceResult], bundle_dir: Path) -> list[str]:
    """What `harness verify` on a run's bundles says differently from the run's results; empty
    when every device agrees. A device with no bundle must be one that never sent an
    enrollment request (it fetched a nonce and stopped: In progress)."""
    problems = []
    now = dt.datetime.now(dt.UTC)
    for device in devices:
        path = bundle_dir / f"{device.device_id}.json"
        actual = device.actual
        if not path.exists():
            if actual is None or actual.status is not AttestationStatus.IN_PROGRESS:
                problems.append(f"{device.group}: no bundle, yet the run reports {actual}")
            continue
        verdict = verify_bundle(path, trust_for(path, None), at=None, now=now).verdict
        judged = (str(verdict.status), str(verdict.detail))
        reported = (str(actual.status), str(actual.detail)) if actual is not None else None
        if judged != reported:
            unjudged = "; ".join(verdict.not_judged) or "nothing"
            problems.append(
                f"{device.group}: harness verify says {judged}, the run {reported} "
                f"(not judged offline: {unjudged})"
            )
    return problems
