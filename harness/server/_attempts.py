"""A device's history of attestation attempts: how an enrollment closes the attempt its nonce
opened (or records one of its own), and supersedes any older unfinished one."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from ..status import AttestationStatus, StatusDetail


def finish_attempt(
    db: sqlite3.Connection,
    emm_device_id: str,
    stamp: str,
    status: AttestationStatus,
    detail: StatusDetail,
    decision: str,
    checks: list[dict[str, Any]],
    items: dict[str, str],
    trigger: str,
) -> None:
    open_attempt = db.execute(
        "SELECT id FROM attempts WHERE emm_device_id=? AND finished_at IS NULL ORDER BY id DESC LIMIT 1",
        (emm_device_id,),
    ).fetchone()
    values = (stamp, str(status), str(detail), decision, json.dumps(checks), json.dumps(items), trigger)
    if open_attempt is None:
        db.execute(
            """INSERT INTO attempts(emm_device_id, started_at, finished_at, status, detail,
                 decision, checks, items, trigger) VALUES (?,?,?,?,?,?,?,?,?)""",
            (emm_device_id, stamp, *values),
        )
    else:
        db.execute(
            "UPDATE attempts SET finished_at=?, status=?, detail=?, decision=?, checks=?, items=?, "
            "trigger=COALESCE(NULLIF(?, ''), trigger) WHERE id=?",
            (*values, open_attempt["id"]),
        )
    # Older unfinished attempts of this device were superseded by this one.
    db.execute(
        "UPDATE attempts SET finished_at=?, decision='superseded' WHERE emm_device_id=? "
        "AND finished_at IS NULL",
        (stamp, emm_device_id),
    )
