"""Durable server state in one SQLite file.

FastAPI runs sync handlers on a thread pool, so one connection is shared under
a lock; WAL keeps readers of the report from blocking enrollments.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..protocol import REPORT_COLUMNS as REPORT_COLUMNS  # its home is the protocol; kept importable here
from ..status import AttestationStatus, StatusDetail

_SCHEMA = """
CREATE TABLE IF NOT EXISTS devices (
    emm_device_id TEXT PRIMARY KEY,
    device_name TEXT NOT NULL,
    entra_device_id TEXT NOT NULL DEFAULT '',
    upn TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '',
    decision TEXT NOT NULL DEFAULT '',
    os TEXT NOT NULL DEFAULT 'Windows',
    os_version TEXT NOT NULL DEFAULT '',
    ownership TEXT NOT NULL DEFAULT '',
    manufacturer TEXT NOT NULL DEFAULT '',
    model TEXT NOT NULL DEFAULT '',
    serial TEXT NOT NULL DEFAULT '',
    tpm_version TEXT NOT NULL DEFAULT '',
    tpm_manufacturer TEXT NOT NULL DEFAULT '',
    last_checkin TEXT NOT NULL,
    enrolled_at TEXT NOT NULL DEFAULT '',
    pending_action INTEGER NOT NULL DEFAULT 0
);
-- The report pages through devices in name order, optionally filtered by status and ownership;
-- an index per filter combination, in page order, keeps deep pages of a large fleet cheap.
CREATE INDEX IF NOT EXISTS devices_page ON devices(device_name, emm_device_id);
CREATE INDEX IF NOT EXISTS devices_status_page ON devices(status, device_name, emm_device_id);
CREATE INDEX IF NOT EXISTS devices_ownership_page ON devices(ownership, device_name, emm_device_id);
CREATE INDEX IF NOT EXISTS devices_status_ownership_page
    ON devices(status, ownership, device_name, emm_device_id);
CREATE TABLE IF NOT EXISTS attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    emm_device_id TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    status TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '',
    decision TEXT NOT NULL DEFAULT '',
    checks TEXT NOT NULL DEFAULT '[]',
    items TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS attempts_device ON attempts(emm_device_id);
CREATE TABLE IF NOT EXISTS nonces (
    nonce BLOB PRIMARY KEY,
    emm_device_id TEXT NOT NULL,
    issued_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at TEXT
);
CREATE TABLE IF NOT EXISTS aik_challenges (
    id TEXT PRIMARY KEY,
    secret BLOB NOT NULL,
    aik_pub BLOB NOT NULL,
    identity TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS entra_devices (
    device_id TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    spki BLOB NOT NULL,
    registered_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS actions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    principal TEXT NOT NULL,
    created_at TEXT NOT NULL,
    device_ids TEXT NOT NULL
);
-- One row per device an Attest device action was accepted for. state is what happened
-- (queued, delivered, completed, superseded); "timed out" is judged when read, against the clock.
CREATE TABLE IF NOT EXISTS action_devices (
    action_id INTEGER NOT NULL REFERENCES actions(id),
    emm_device_id TEXT NOT NULL,
    state TEXT NOT NULL,
    delivered_at TEXT,
    completed_at TEXT,
    PRIMARY KEY (action_id, emm_device_id)
);
CREATE INDEX IF NOT EXISTS action_devices_device ON action_devices(emm_device_id, state);
"""


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def parse_iso(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def iso_precise(moment: dt.datetime) -> str:
    # Action times keep microseconds: the one-minute rule must not gain or lose up to a second.
    return moment.astimezone(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class ActionOutcome:
    """What became of an Attest device request: accepted (action_id set), or retry_after."""

    action_id: int | None = None
    requested_at: dt.datetime | None = None
    queued: tuple[str, ...] = ()
    unknown: tuple[str, ...] = ()
    retry_after: dt.timedelta | None = None


class Store:
    def __init__(self, path: Path, action_timeout: dt.timedelta = dt.timedelta(minutes=15)) -> None:
        self.action_timeout = action_timeout
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # --- nonces ------------------------------------------------------------------

    def issue_nonce(
        self,
        nonce: bytes,
        emm_device_id: str,
        device_name: str,
        now: dt.datetime,
        lifetime: dt.timedelta,
    ) -> None:
        """Store a nonce and mark the device's attestation as started."""
        with self._transaction() as db:
            db.execute(
                "INSERT INTO nonces(nonce, emm_device_id, issued_at, expires_at) VALUES (?,?,?,?)",
                (nonce, emm_device_id, iso(now), iso(now + lifetime)),
            )
            db.execute(
                """INSERT INTO devices(emm_device_id, device_name, status, detail, last_checkin)
                   VALUES (?,?,?,?,?)
                   ON CONFLICT(emm_device_id) DO UPDATE SET
                     status=excluded.status, detail=excluded.detail, decision='',
                     last_checkin=excluded.last_checkin""",
                (
                    emm_device_id,
                    device_name,
                    AttestationStatus.IN_PROGRESS,
                    StatusDetail.IN_PROCESS,
                    iso(now),
                ),
            )
            db.execute(
                "INSERT INTO attempts(emm_device_id, started_at, status, detail) VALUES (?,?,?,?)",
                (emm_device_id, iso(now), AttestationStatus.IN_PROGRESS, StatusDetail.IN_PROCESS),
            )

    def consume_nonce(self, nonce: bytes, now: dt.datetime) -> tuple[bool, bool, bool]:
        """(issued, expired, used before) for a nonce, marking it used."""
        with self._transaction() as db:
            row = db.execute("SELECT expires_at, used_at FROM nonces WHERE nonce=?", (nonce,)).fetchone()
            if row is None:
                return False, False, False
            used = row["used_at"] is not None
            expired = parse_iso(row["expires_at"]) < now
            if not used:
                db.execute("UPDATE nonces SET used_at=? WHERE nonce=?", (iso(now), nonce))
            return True, expired, used

    # --- AIK challenges ----------------------------------------------------------

    def add_challenge(
        self,
        challenge_id: str,
        secret: bytes,
        aik_pub: bytes,
        identity: dict[str, str],
        expires: dt.datetime,
    ) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT INTO aik_challenges(id, secret, aik_pub, identity, expires_at) VALUES (?,?,?,?,?)",
                (challenge_id, secret, aik_pub, json.dumps(identity), iso(expires)),
            )

    def take_challenge(self, challenge_id: str) -> dict[str, Any] | None:
        """The challenge, marked used; None if unknown or used already."""
        with self._transaction() as db:
            row = db.execute("SELECT * FROM aik_challenges WHERE id=? AND used=0", (challenge_id,)).fetchone()
            if row is None:
                return None
            db.execute("UPDATE aik_challenges SET used=1 WHERE id=?", (challenge_id,))
            result = dict(row)
            result["identity"] = json.loads(result["identity"])
            return result

    # --- identity provider -------------------------------------------------------

    def register_entra_device(self, device_id: str, name: str, spki: bytes, now: dt.datetime) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT INTO entra_devices(device_id, display_name, spki, registered_at) VALUES (?,?,?,?)",
                (device_id, name, spki, iso(now)),
            )

    def entra_device_key(self, device_id: str) -> bytes | None:
        with self._lock:
            row = self._db.execute(
                "SELECT spki FROM entra_devices WHERE device_id=?", (device_id,)
            ).fetchone()
        return None if row is None else bytes(row["spki"])

    # --- enrollment results ------------------------------------------------------

    def record_enrollment(
        self,
        *,
        emm_device_id: str,
        inventory: dict[str, str],
        status: AttestationStatus,
        detail: StatusDetail,
        decision: str,
        checks: list[dict[str, Any]],
        items: dict[str, str],
        now: dt.datetime,
    ) -> None:
        stamp = iso(now)
        with self._transaction() as db:
            db.execute(
                """INSERT INTO devices(emm_device_id, device_name, entra_device_id, upn, status, detail,
                     decision, os_version, ownership, manufacturer, model, serial, tpm_version,
                     tpm_manufacturer, last_checkin, enrolled_at)
                   VALUES (:id,:device_name,:entra_device_id,:upn,:status,:detail,:decision,:os_version,
                     :ownership,:manufacturer,:model,:serial,:tpm_version,:tpm_manufacturer,:now,:now)
                   ON CONFLICT(emm_device_id) DO UPDATE SET
                     device_name=excluded.device_name, entra_device_id=excluded.entra_device_id,
                     upn=excluded.upn, status=excluded.status, detail=excluded.detail,
                     decision=excluded.decision, os_version=excluded.os_version,
                     ownership=excluded.ownership, manufacturer=excluded.manufacturer,
                     model=excluded.model, serial=excluded.serial, tpm_version=excluded.tpm_version,
                     tpm_manufacturer=excluded.tpm_manufacturer, last_checkin=excluded.last_checkin,
                     enrolled_at=CASE WHEN devices.enrolled_at='' THEN excluded.enrolled_at
                                      ELSE devices.enrolled_at END,
                     pending_action=0""",
                {
                    "id": emm_device_id,
                    "status": str(status),
                    "detail": str(detail),
                    "decision": decision,
                    "now": stamp,
                    **inventory,
                },
            )
            open_attempt = db.execute(
                "SELECT id FROM attempts WHERE emm_device_id=? AND finished_at IS NULL "
                "ORDER BY id DESC LIMIT 1",
                (emm_device_id,),
            ).fetchone()
            values = (
                stamp,
                str(status),
                str(detail),
                decision,
                json.dumps(checks),
                json.dumps(items),
            )
            if open_attempt is None:
                db.execute(
                    """INSERT INTO attempts(emm_device_id, started_at, finished_at, status, detail,
                         decision, checks, items) VALUES (?,?,?,?,?,?,?,?)""",
                    (emm_device_id, stamp, *values),
                )
            else:
                db.execute(
                    """UPDATE attempts SET finished_at=?, status=?, detail=?, decision=?, checks=?,
                         items=? WHERE id=?""",
                    (*values, open_attempt["id"]),
                )
            # Older unfinished attempts of this device were superseded by this one.
            db.execute(
                "UPDATE attempts SET finished_at=?, decision='superseded' WHERE emm_device_id=? "
                "AND finished_at IS NULL",
                (stamp, emm_device_id),
            )
            # The enrollment answers an Attest command only if the device was given it, in time;
            # an action still queued waits for the next check-in, so pending_action is kept for it.
            db.execute(
                """UPDATE action_devices SET state='completed', completed_at=?
                   WHERE emm_device_id=? AND state='delivered' AND action_id IN
                     (SELECT id FROM actions WHERE created_at > ?)""",
                (iso_precise(now), emm_device_id, iso_precise(now - self.action_timeout)),
            )
            self._sync_pending(db, emm_device_id, now)

    # --- the Attest device action ------------------------------------------------

    def _sync_pending(self, db: sqlite3.Connection, emm_device_id: str, now: dt.datetime) -> None:
        """devices.pending_action: the action the device has yet to finish in time, or 0."""
        db.execute(
            """UPDATE devices SET pending_action=COALESCE(
                 (SELECT ad.action_id FROM action_devices ad JOIN actions a ON a.id=ad.action_id
                  WHERE ad.emm_device_id=:id AND ad.state IN ('queued','delivered')
                    AND a.created_at > :cutoff
                  ORDER BY ad.action_id DESC LIMIT 1), 0)
               WHERE emm_device_id=:id""",
            {"id": emm_device_id, "cutoff": iso_precise(now - self.action_timeout)},
        )

    def request_action(
        self,
        *,
        principal: str,
        device_ids: list[str],
        now: dt.datetime,
        min_interval: dt.timedelta,
    ) -> ActionOutcome:
        """Queue an Attest command for the known devices, unless the last accepted action is too recent.

        Nothing is recorded when no device is known, so such a request does not start the interval.
        """
        with self._transaction() as db:
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
                db.execute(
                    "UPDATE devices SET pending_action=? WHERE emm_device_id=?", (action_id, device_id)
                )
        return ActionOutcome(action_id=action_id, requested_at=now, queued=queued, unknown=unknown)

    def checkin(self, emm_device_id: str, now: dt.datetime) -> list[int] | None:
        """Record a check-in and hand over the device's queued Attest commands, once each.

        None for a device the server has never seen. A command whose action timed out
        before the device checked in is not delivered: the admin has been told it timed out.
        """
        with self._transaction() as db:
            updated = db.execute(
                "UPDATE devices SET last_checkin=? WHERE emm_device_id=?", (iso(now), emm_device_id)
            )
            if updated.rowcount == 0:
                return None
            rows = db.execute(
                """SELECT ad.action_id FROM action_devices ad JOIN actions a ON a.id=ad.action_id
                   WHERE ad.emm_device_id=? AND ad.state='queued' AND a.created_at > ?
                   ORDER BY ad.action_id""",
                (emm_device_id, iso_precise(now - self.action_timeout)),
            ).fetchall()
            delivered = [int(r[0]) for r in rows]
            for action_id in delivered:
                db.execute(
                    "UPDATE action_devices SET state='delivered', delivered_at=? "
                    "WHERE action_id=? AND emm_device_id=?",
                    (iso_precise(now), action_id, emm_device_id),
                )
            self._sync_pending(db, emm_device_id, now)
        return delivered

    def _action_of(self, emm_device_id: str, now: dt.datetime) -> dict[str, Any] | None:
        row = self._db.execute(
            """SELECT ad.action_id, ad.state, ad.delivered_at, ad.completed_at, a.created_at, a.principal
               FROM action_devices ad JOIN actions a ON a.id=ad.action_id
               WHERE ad.emm_device_id=? ORDER BY ad.action_id DESC LIMIT 1""",
            (emm_device_id,),
        ).fetchone()
        if row is None:
            return None
        requested = parse_iso(row["created_at"])
        state = row["state"]
        if state in ("queued", "delivered") and now - requested >= self.action_timeout:
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

    # --- the report --------------------------------------------------------------

    def report(
        self,
        *,
        status: str | None = None,
        ownership: str | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> tuple[int, list[dict[str, Any]]]:
        where, params = [], []
        if status:
            where.append("status = ?")
            params.append(status)
        if ownership:
            where.append("ownership = ?")
            params.append(ownership)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        with self._lock:
            total = self._db.execute(f"SELECT COUNT(*) FROM devices {clause}", params).fetchone()[0]
            rows = self._db.execute(
                f"SELECT * FROM devices {clause} ORDER BY device_name, emm_device_id LIMIT ? OFFSET ?",
                [*params, limit, offset],
            ).fetchall()
        return int(total), [dict(r) for r in rows]

    def device(self, emm_device_id: str, now: dt.datetime) -> dict[str, Any] | None:
        """The device, its attempts, and its latest Attest action as of now (None: never asked)."""
        with self._lock:
            row = self._db.execute("SELECT * FROM devices WHERE emm_device_id=?", (emm_device_id,)).fetchone()
            if row is None:
                return None
            attempts = self._db.execute(
                "SELECT * FROM attempts WHERE emm_device_id=? ORDER BY id", (emm_device_id,)
            ).fetchall()
            action = self._action_of(emm_device_id, now)
        result = dict(row)
        result["action"] = action
        result["attempts"] = [
            {**dict(a), "checks": json.loads(a["checks"]), "items": json.loads(a["items"])} for a in attempts
        ]
        return result
