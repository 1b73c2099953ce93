"""The Attest device action in the store: queueing, delivery at check-in, and its state.

Functions over an open connection, called by the Store inside its transactions.

A command waits until the device picks it up, however long that takes: an online device is
told by push and checks in within minutes, an offline one at its next scheduled check-in
(hours later, in its 8-hour phase). The action shows `pending` until then. How soon the
admin may expect it (`expectedBy`) depends on how many devices the action selected: the
push goes out in batches (harness.server's push channel), and a device takes a few minutes
to sync after its push; past that the action is `overdue`, never dropped.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from ._schema import iso, iso_precise, parse_iso

# The push fan-out: this many of an action's devices are notified per batch, one batch per
# interval, so the last of 100 selected is told 8 minutes after the first.
PUSH_BATCH = 20
PUSH_BATCH_INTERVAL = dt.timedelta(minutes=2)

# What a device told by push takes to sync, at most, once its push is sent.
SYNC_ALLOWANCE = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class ActionOutcome:
    """What became of an Attest device request: accepted (action_id set), or retry_after."""

    action_id: int | None = None
    requested_at: dt.datetime | None = None
    queued: tuple[str, ...] = ()
    unknown: tuple[str, ...] = ()
    retry_after: dt.timedelta | None = None


def sync_pending(db: sqlite3.Connection, emm_device_id: str) -> None:
    """devices.pending_action: the action the device has yet to finish, or 0."""
    db.execute(
        """UPDATE devices SET pending_action=COALESCE(
             (SELECT ad.action_id FROM action_devices ad
              WHERE ad.emm_device_id=:id AND ad.state IN ('queued','delivered')
              ORDER BY ad.action_id DESC LIMIT 1), 0)
           WHERE emm_device_id=:id""",
        {"id": emm_device_id},
    )


def complete_delivered(db: sqlite3.Connection, emm_device_id: str, now: dt.datetime) -> None:
    # The enrollment answers an Attest command only if the device was given it; an action
    # still queued waits for the next check-in, so pending_action is kept for it.
    db.execute(
        "UPDATE action_devices SET state='completed', completed_at=? "
        "WHERE emm_device_id=? AND state='delivered'",
        (iso_precise(now), emm_device_id),
    )
    sync_pending(db, emm_device_id)


def trigger_of(db: sqlite3.Connection, emm_device_id: str, claimed: str) -> str:
    """What started an attempt, from the server's own records first: an Attest command handed to
    the device (however long after the action it came to get it) makes it 'attest-action';
    otherwise the device's own word, which cannot claim an admin's action ('attest-action'
    without a delivered command is its own retry)."""
    delivered = db.execute(
        "SELECT 1 FROM action_devices WHERE emm_device_id=? AND state='delivered' LIMIT 1",
        (emm_device_id,),
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


def deliver(db: sqlite3.Connection, emm_device_id: str, now: dt.datetime) -> list[int]:
    """Hand over the device's queued commands, once each."""
    rows = db.execute(
        "SELECT action_id FROM action_devices WHERE emm_device_id=? AND state='queued' ORDER BY action_id",
        (emm_device_id,),
    ).fetchall()
    delivered = [int(r[0]) for r in rows]
    for action_id in delivered:
        db.execute(
            "UPDATE action_devices SET state='delivered', delivered_at=? "
            "WHERE action_id=? AND emm_device_id=?",
            (iso_precise(now), action_id, emm_device_id),
        )
    sync_pending(db, emm_device_id)
    return delivered


def expected_by(requested: dt.datetime, position: int, bound: dt.timedelta) -> dt.datetime:
    """When a device at `position` in an action's selection should have attested: its push
    batch, then a few minutes to sync, never later than the page's bound."""
    batch_sent = (position // PUSH_BATCH) * PUSH_BATCH_INTERVAL
    return requested + min(batch_sent + SYNC_ALLOWANCE, bound)


def action_of(
    db: sqlite3.Connection, emm_device_id: str, now: dt.datetime, bound: dt.timedelta
) -> dict[str, Any] | None:
    """The device's latest Attest action as of now (None: never asked)."""
    row = db.execute(
        """SELECT ad.action_id, ad.state, ad.delivered_at, ad.completed_at, a.created_at, a.principal,
                  a.device_ids
           FROM action_devices ad JOIN actions a ON a.id=ad.action_id
           WHERE ad.emm_device_id=? ORDER BY ad.action_id DESC LIMIT 1""",
        (emm_device_id,),
    ).fetchone()
    if row is None:
        return None
    requested = parse_iso(row["created_at"])
    selected = json.loads(row["device_ids"])
    position = selected.index(emm_device_id) if emm_device_id in selected else len(selected)
    expected = expected_by(requested, position, bound)
    state = "pending" if row["state"] == "queued" else row["state"]

    def stamp(value: str | None) -> str | None:
        return None if value is None else iso(parse_iso(value))

    return {
        "id": int(row["action_id"]),
        "requestedAt": iso(requested),
        "requestedBy": row["principal"],
        "state": state,
        "expectedBy": iso(expected),
        "overdue": state in ("pending", "delivered") and now > expected,
        "deliveredAt": stamp(row["delivered_at"]),
        "completedAt": stamp(row["completed_at"]),
    }
