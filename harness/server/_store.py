"""Durable server state in one SQLite file (schema in _schema, actions in _actions).

FastAPI runs sync handlers on a thread pool, so one connection for writes is shared under
a lock; the report reads through a connection of its own per thread, which WAL lets read
while enrollments write. `version` moves with every write, so readers can cache a page.
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

from ..status import AttestationStatus, StatusDetail
from . import _actions, _unbound
from ._actions import ActionOutcome
from ._attempts import finish_attempt
from ._schema import create_schema, iso, parse_iso
from ._secure import private_database
from ._unbound import UnboundLimitError

__all__ = ["ActionOutcome", "DeviceBinding", "NonceLookup", "Store", "UnboundLimitError", "UnownedRoom"]


_TPM_UNKNOWN = {"tpm_model": "", "tpm_firmware": "", "tpm_evidence": ""}


@dataclass(frozen=True)
class NonceLookup:
    """What the store knows of a nonce an enrollment carries."""

    issued: bool  # issued by this server to the device that presents it
    expired: bool = False
    used: bool = False  # presented before by that device: a replay


@dataclass(frozen=True)
class UnownedRoom:
    """How many records unauthenticated enrollments may hold, and when one is stale."""

    cap: int
    stale_after: dt.timedelta


@dataclass(frozen=True)
class DeviceBinding:
    """Who a device record belongs to, once an authenticated first enrollment said so."""

    bound: bool
    entra_device_id: str  # '' when bound through a user token: only the credential proves it
    credential_sha256: bytes | None
    claimed_by: str = ""  # not bound yet: the identity whose token asked for its nonce


class Store:
    def __init__(self, path: Path, action_timeout: dt.timedelta = dt.timedelta(minutes=15)) -> None:
        self.action_timeout = action_timeout
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        private_database(path)  # created 0600 before SQLite opens it, so never readable by others
        self._path = path
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._lock = threading.Lock()
        self._readers = threading.local()
        self._reader_connections: list[sqlite3.Connection] = []
        self.version = 0  # moved by every committed write
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            create_schema(self._db)
        private_database(path)  # SQLite gives WAL and shared memory the database's mode

    def close(self) -> None:
        with self._lock:
            self._db.close()
            for reader in self._reader_connections:
                reader.close()

    def _reader(self) -> sqlite3.Connection:
        """This thread's read-only connection (WAL: it reads while a write is in progress)."""
        reader: sqlite3.Connection | None = getattr(self._readers, "db", None)
        if reader is None:
            reader = sqlite3.connect(
                f"file:{self._path}?mode=ro", uri=True, check_same_thread=False, isolation_level=None
            )
            reader.row_factory = sqlite3.Row
            self._readers.db = reader
            with self._lock:
                self._reader_connections.append(reader)
        return reader

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
            self.version += 1

    # --- nonces ------------------------------------------------------------------

    def issue_nonce(
        self,
        nonce: bytes,
        emm_device_id: str,
        device_name: str,
        now: dt.datetime,
        lifetime: dt.timedelta,
        trigger: str = "",
        claim: str = "",
    ) -> None:
        """Store a nonce bound to the device and mark the device's attestation as started.

        `claim` (the identity of the token that asked) is kept for a record nobody has bound yet:
        until it enrolls, only that identity may change it."""
        with self._transaction() as db:
            trigger = _actions.trigger_of(db, emm_device_id, trigger)
            db.execute(
                "INSERT INTO nonces(nonce, emm_device_id, issued_at, expires_at) VALUES (?,?,?,?)",
                (nonce, emm_device_id, iso(now), iso(now + lifetime)),
            )
            db.execute(
                """INSERT INTO devices(emm_device_id, device_name, status, detail, last_checkin, claimed_by)
                   VALUES (?,?,?,?,?,?)
                   ON CONFLICT(emm_device_id) DO UPDATE SET
                     status=excluded.status, detail=excluded.detail, decision='',
                     last_checkin=excluded.last_checkin,
                     claimed_by=CASE WHEN devices.bound=0 AND devices.claimed_by=''
                                     THEN excluded.claimed_by ELSE devices.claimed_by END""",
                (
                    emm_device_id,
                    device_name,
                    AttestationStatus.IN_PROGRESS,
                    StatusDetail.IN_PROCESS,
                    iso(now),
                    claim,
                ),
            )
            db.execute(
                "INSERT INTO attempts(emm_device_id, started_at, status, detail, trigger) VALUES (?,?,?,?,?)",
                (emm_device_id, iso(now), AttestationStatus.IN_PROGRESS, StatusDetail.IN_PROCESS, trigger),
            )

    def consume_nonce(self, nonce: bytes, emm_device_id: str, now: dt.datetime) -> NonceLookup:
        """Look a nonce up for the device presenting it; its first presentation uses it up.

        A nonce issued to another device is not this device's, and is left untouched for its owner.
        """
        with self._transaction() as db:
            row = db.execute(
                "SELECT emm_device_id, expires_at, used_at FROM nonces WHERE nonce=?", (nonce,)
            ).fetchone()
            if row is None or row["emm_device_id"] != emm_device_id:
                return NonceLookup(issued=False)
            used = row["used_at"] is not None
            expired = parse_iso(row["expires_at"]) < now
            if not used:
                db.execute("UPDATE nonces SET used_at=? WHERE nonce=?", (iso(now), nonce))
            return NonceLookup(issued=True, expired=expired, used=used)

    # --- AIK challenges ----------------------------------------------------------

    def add_challenge(
        self,
        challenge_id: str,
        secret_sha256: bytes,
        aik_pub: bytes,
        identity: dict[str, str],
        expires: dt.datetime,
    ) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT INTO aik_challenges(id, secret_sha256, aik_pub, identity, expires_at) "
                "VALUES (?,?,?,?,?)",
                (challenge_id, secret_sha256, aik_pub, json.dumps(identity), iso(expires)),
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

    def binding(self, emm_device_id: str) -> DeviceBinding | None:
        """None for an id the server has no record of."""
        with self._lock:
            row = self._db.execute(
                "SELECT bound, binding, credential_sha256, claimed_by FROM devices WHERE emm_device_id=?",
                (emm_device_id,),
            ).fetchone()
        if row is None:
            return None
        credential = row["credential_sha256"]
        return DeviceBinding(
            bound=bool(row["bound"]),
            entra_device_id=str(row["binding"]),
            credential_sha256=None if credential is None else bytes(credential),
            claimed_by=str(row["claimed_by"]),
        )

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
        bind_to: str | None = None,
        credential_sha256: bytes | None = None,
        trigger: str = "",
        unowned: UnownedRoom | None = None,
    ) -> None:
        """The result of an enrollment; bind_to ties the id to an identity (first enrollment),
        credential_sha256 replaces the device credential. `unowned`: the request proved nothing,
        so a new record must fit in the room for unowned records (else UnboundLimitError)."""
        stamp = iso(now)
        with self._transaction() as db:
            if unowned is not None:
                _unbound.make_room(db, emm_device_id, now, unowned.stale_after, unowned.cap)
            trigger = _actions.trigger_of(db, emm_device_id, trigger)
            db.execute(
                """INSERT INTO devices(emm_device_id, device_name, entra_device_id, upn, status, detail,
                     decision, os_version, ownership, manufacturer, model, serial, tpm_version,
                     tpm_manufacturer, tpm_model, tpm_firmware, tpm_evidence, last_checkin, enrolled_at)
                   VALUES (:id,:device_name,:entra_device_id,:upn,:status,:detail,:decision,:os_version,
                     :ownership,:manufacturer,:model,:serial,:tpm_version,:tpm_manufacturer,:tpm_model,
                     :tpm_firmware,:tpm_evidence,:now,:now)
                   ON CONFLICT(emm_device_id) DO UPDATE SET
                     device_name=excluded.device_name, entra_device_id=excluded.entra_device_id,
                     upn=excluded.upn, status=excluded.status, detail=excluded.detail,
                     decision=excluded.decision, os_version=excluded.os_version,
                     ownership=excluded.ownership, manufacturer=excluded.manufacturer,
                     model=excluded.model, serial=excluded.serial, tpm_version=excluded.tpm_version,
                     tpm_manufacturer=excluded.tpm_manufacturer, tpm_model=excluded.tpm_model,
                     tpm_firmware=excluded.tpm_firmware, tpm_evidence=excluded.tpm_evidence,
                     last_checkin=excluded.last_checkin,
                     enrolled_at=CASE WHEN devices.enrolled_at='' THEN excluded.enrolled_at
                                      ELSE devices.enrolled_at END,
                     pending_action=0""",
                {
                    "id": emm_device_id,
                    "status": str(status),
                    "detail": str(detail),
                    "decision": decision,
                    "now": stamp,
                    **_TPM_UNKNOWN,
                    **inventory,
                },
            )
            if bind_to is not None:
                db.execute(
                    "UPDATE devices SET bound=1, binding=? WHERE emm_device_id=?", (bind_to, emm_device_id)
                )
            if credential_sha256 is not None:
                db.execute(
                    "UPDATE devices SET credential_sha256=? WHERE emm_device_id=?",
                    (credential_sha256, emm_device_id),
                )
            finish_attempt(db, emm_device_id, stamp, status, detail, decision, checks, items, trigger)
            _actions.complete_delivered(db, emm_device_id, now)

    # --- the Attest device action ------------------------------------------------

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
            return _actions.request_action(
                db, principal=principal, device_ids=device_ids, now=now, min_interval=min_interval
            )

    def checkin(self, emm_device_id: str, now: dt.datetime) -> list[int] | None:
        """Record a check-in and hand over the device's queued Attest commands, once each.

        None for a device the server has never seen. A command waits for its device however
        long it is away (a newer action replaces it).
        """
        with self._transaction() as db:
            updated = db.execute(
                "UPDATE devices SET last_checkin=? WHERE emm_device_id=?", (iso(now), emm_device_id)
            )
            if updated.rowcount == 0:
                return None
            return _actions.deliver(db, emm_device_id, now)

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
        reader = self._reader()
        reader.execute("BEGIN")  # one snapshot for the count and the page
        try:
            total = reader.execute(f"SELECT COUNT(*) FROM devices {clause}", params).fetchone()[0]
            rows = reader.execute(
                f"SELECT * FROM devices {clause} ORDER BY device_name, emm_device_id LIMIT ? OFFSET ?",
                [*params, limit, offset],
            ).fetchall()
        finally:
            reader.execute("COMMIT")
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
            action = _actions.action_of(self._db, emm_device_id, now, self.action_timeout)
        result = dict(row)
        result.pop("credential_sha256", None)
        result["action"] = action
        result["attempts"] = [
            {**dict(a), "checks": json.loads(a["checks"]), "items": json.loads(a["items"])} for a in attempts
        ]
        return result
