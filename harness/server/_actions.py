"""The Attest device action in the store: queueing, delivery at check-in, and its state.

Functions over an open connection, called by the Store inside its transactions.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from ._schema import iso, iso_precise, parse_iso


@dataclass(frozen=True)
class ActionOutcome:
    """What became of an Attest device request: accepted (action_id set), or retry_after."""

    action_id: int | None = None
    requested_at: dt.datetime | None = None
    queued: tuple[str, ...] = ()
    unknown: tuple[str, ...] = ()
    retry_after: dt.timedelta | None = None


def sync_pending(db: sqlite3.Connection, emm_device_id: str, now: dt.datetime, timeout: dt.timedelta) -> None:
    """devices.pending_action: the action the device has yet to finish in time, or 0."""
    db.execute(
        """UPDATE devices SET pending_action=COALESCE(
             (SELECT ad.action_id FROM action_devices ad JOIN actions a ON a.id=ad.action_id
              WHERE ad.emm_device_id=:id AND ad.state IN ('queued','delivered')
                AND a.created_at > :cutoff
              ORDER BY ad.action_id DESC LIMIT 1), 0)
           WHERE emm_device_id=:id""",
        {"id": emm_device_id, "cutoff": iso_precise(now - timeout)},
    )


def complete_delivered(
    db: sqlite3.Connection, emm_device_id: str, now: dt.datetime, timeout: dt.timedelta
) -> None:
    # The enrollment answers an Attest command only if the device was given it, in time;
    # an action still queued waits for the next check-in, so pending_action is kept for it.
    db.execute(
        """UPDATE action_devices SET state='completed', completed_at=?
           WHERE emm_device_id=? AND state='delivered' AND action_id IN
             (SELECT id FROM actions WHERE created_at > ?)""",
        (iso_precise(now), emm_device_id, iso_precise(now - timeout)),
    )
    sync_pending(db, emm_device_id, now, timeout)


def trigger_of(
    db: sqlite3.Connection, emm_device_id: str, now: dt.datetime, timeout: dt.timedelta, claimed: str
) -> str:
    """What started an attempt, from the server's own records first: an Attest command handed to
    the device in time makes it 'attest-action'; otherwise the device's own word, which cannot
    claim an admin's action ('attest-action' without a delivered command is its own retry)."""
    delivered = db.execute(
        """SELECT 1 FROM action_devices ad JOIN actions a ON a.id=ad.action_id
           WHERE ad.emm_device_id=? AND ad.state='delivered' AND a.created_at > ? LIMIT 1""",
        (emm_device_id, iso_precise(now - timeout)),
    ).fetchone()
    if delivered is not None:
        return "attest-action"
    return "device-retry" if claimed == "attest-action" else claimed


def request_action(
    db: sqlite3.Connection,
    *,
    principal: str,
    device_ids: list[str],
    now: dt.datetime,
    min_interval: dt.timedelta,
) -> ActionOutcome:
    last = db.execute("SELECT created_at FROM actions ORDER BY id DESC LIMIT 1").fetchone()
    if last is not None:
        # A clock stepped backwards counts as no time passed, never as a negative wait.
        elapsed = max(now - parse_iso(last["created_at"]), dt.timedelta(0))
        if elapsed < min_interval:
            return ActionOutcome(retry_after=min_interval - elapsed)
    marks = ",".join("?" * len(device_ids))
    found = {
        row[0]
        for row in db.execute(
            f"SELECT emm_device_id FROM devices WHERE emm_device_id IN ({marks})", device_ids
        )
    }
    queued = tuple(d for d in device_ids if d in found)
    unknown = tuple(d for d in device_ids if d not in found)
    if not queued:
        return ActionOutcome(unknown=unknown)
    cursor = db.execute(
        "INSERT INTO actions(principal, created_at, device_ids) VALUES (?,?,?)",
        (principal, iso_precise(now), json.dumps(list(queued))),
    )
    action_id = int(cursor.lastrowid or 0)
    for device_id in queued:
        # A device carries one open action: a newer request replaces an older one.
        db.execute(
            "UPDATE action_devices SET state='superseded' WHERE emm_device_id=? "
            "AND state IN ('queued','delivered')",
            (device_id,),
        )
        db.execute(
            "INSERT INTO action_devices(action_id, emm_device_id, state) VALUES (?,?,'queued')",
            (action_id, device_id),
        )
        db.execute("UPDATE devices SET pending_action=? WHERE emm_device_id=?", (action_id, device_id))
    return ActionOutcome(action_id=action_id, requested_at=now, queued=queued, unknown=unknown)


def deliver(db: sqlite3.Connection, emm_device_id: str, now: dt.datetime, timeout: dt.timedelta) -> list[int]:
    """Hand over the device's queued commands whose action has not timed out, once each."""
    rows = db.execute(
        """SELECT ad.action_id FROM action_devices ad JOIN actions a ON a.id=ad.action_id
           WHERE ad.emm_device_id=? AND ad.state='queued' AND a.created_at > ?
           ORDER BY ad.action_id""",
        (emm_device_id, iso_precise(now - timeout)),
    ).fetchall()
    delivered = [int(r[0]) for r in rows]
    for action_id in delivered:
        db.execute(
            "UPDATE action_devices SET state='delivered', delivered_at=? "
            "WHERE action_id=? AND emm_device_id=?",
            (iso_precise(now), action_id, emm_device_id),
        )
    sync_pending(db, emm_device_id, now, timeout)
    return delivered


def action_of(
    db: sqlite3.Connection, emm_device_id: str, now: dt.datetime, timeout: dt.timedelta
) -> dict[str, Any] | None:
    """The device's latest Attest action as of now (None: never asked)."""
    row = db.execute(
        """SELECT ad.action_id, ad.state, ad.delivered_at, ad.completed_at, a.created_at, a.principal
           FROM action_devices ad JOIN actions a ON a.id=ad.action_id
           WHERE ad.emm_device_id=? ORDER BY ad.action_id DESC LIMIT 1""",
        (emm_device_id,),
    ).fetchone()
    if row is None:
        return None
    requested = parse_iso(row["created_at"])
    state = row["state"]
    if state in ("queued", "delivered") and now - requested >= timeout:
        state = "timed out"

    def stamp(value: str | None) -> str | None:
        return None if value is None else iso(parse_iso(value))

    return {
        "id": int(row["action_id"]),
        "requestedAt": iso(requested),
        "requestedBy": row["principal"],
        "state": state,
        "deliveredAt": stamp(row["delivered_at"]),
        "completedAt": stamp(row["completed_at"]),
    }
