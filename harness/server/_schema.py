"""The SQLite schema of the server's state, its upgrades, and how times are stored."""

from __future__ import annotations

import datetime as dt
import sqlite3

SCHEMA = """
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
-- Only a SHA-256 of each challenge secret: the secret is 256 random bits, so its hash can be
-- neither inverted nor guessed, and whoever reads this file cannot answer a challenge with it.
CREATE TABLE IF NOT EXISTS aik_challenges (
    id TEXT PRIMARY KEY,
    secret_sha256 BLOB NOT NULL,
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
-- (queued, delivered, completed, superseded); "overdue" is judged when read, against the clock.
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

# Columns added after the first release, created on an older file when it is opened.
# bound: 1 once an authenticated first enrollment tied the id to an identity, binding: the
# Entra device id it was tied to ('' for a user token: then only the credential proves it);
# credential_sha256: the hash of the device credential (a 256-bit random bearer secret);
# tpm_evidence: 'verified' when the TPM columns come from a certificate the server chained.
_ADDED_DEVICE_COLUMNS = {
    "bound": "INTEGER NOT NULL DEFAULT 0",
    "binding": "TEXT NOT NULL DEFAULT ''",
    "credential_sha256": "BLOB",
    "tpm_model": "TEXT NOT NULL DEFAULT ''",
    "tpm_firmware": "TEXT NOT NULL DEFAULT ''",
    "tpm_evidence": "TEXT NOT NULL DEFAULT ''",
    # Who asked for the nonce of an id not yet bound ('device:<Entra id>' or 'user:<tid>/<upn>'):
    # until it enrolls, only that token's holder may change the record.
    "claimed_by": "TEXT NOT NULL DEFAULT ''",
}


# trigger: why the device sent the attempt's enrollment (its EnrollmentTrigger item, '' if unsaid).
_ADDED_ATTEMPT_COLUMNS = {"trigger": "TEXT NOT NULL DEFAULT ''"}


def create_schema(db: sqlite3.Connection) -> None:
    challenge_columns = {row[1] for row in db.execute("PRAGMA table_info(aik_challenges)")}
    if "secret" in challenge_columns:
        # An older file held challenge secrets in the clear; challenges live minutes, drop them.
        db.execute("DROP TABLE aik_challenges")
    db.executescript(SCHEMA)
    present = {row[1] for row in db.execute("PRAGMA table_info(devices)")}
    for name, declaration in _ADDED_DEVICE_COLUMNS.items():
        if name not in present:
            db.execute(f"ALTER TABLE devices ADD COLUMN {name} {declaration}")
    present = {row[1] for row in db.execute("PRAGMA table_info(attempts)")}
    for name, declaration in _ADDED_ATTEMPT_COLUMNS.items():
        if name not in present:
            db.execute(f"ALTER TABLE attempts ADD COLUMN {name} {declaration}")
    # Records no identity owns, oldest first: counted against their bound, expired when stale.
    db.execute("CREATE INDEX IF NOT EXISTS devices_unowned ON devices(bound, claimed_by, last_checkin)")


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def parse_iso(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def iso_precise(moment: dt.datetime) -> str:
    # Action times keep microseconds: the one-minute rule must not gain or lose up to a second.
    return moment.astimezone(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
