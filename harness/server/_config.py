"""What the reference server is configured with: trust anchors, lifetimes, storage."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509

from ..trust import TrustStore


@dataclass(frozen=True)
class Principal:
    """An admin who calls the admin API with a bearer token."""

    name: str
    remote_tasks: bool = False  # the "Remote tasks" permission the Attest device action needs


@dataclass
class ServerConfig:
    """Everything the server needs; nothing here comes from a scenario's expectations."""

    data_dir: Path  # the SQLite file and the server's own keys live here
    manufacturer_roots: list[x509.Certificate] = field(default_factory=list)
    # AIK and EK roots and intermediates, token keys, vendor registry and advisories a user
    # gave (harness serve --trust); the server's own AIK CA and identity provider come on top.
    trust: TrustStore = field(default_factory=TrustStore)
    nonce_lifetime: dt.timedelta = dt.timedelta(minutes=5)
    challenge_lifetime: dt.timedelta = dt.timedelta(minutes=5)
    token_lifetime: dt.timedelta = dt.timedelta(hours=1)
    attempt_timeout: dt.timedelta = dt.timedelta(minutes=15)
    token_issuer: str = "urn:enrollment-harness:idp"
    token_audience: str = "urn:enrollment-harness:mdm"
    max_body_bytes: int = 64 * 1024
    # Bearer token -> principal. Empty: the server makes one admin and writes its token to a file.
    principals: dict[str, Principal] = field(default_factory=dict)
    db_file: Path | None = None  # default: server.sqlite3 in data_dir
    # Requests per minute to the device endpoints (AIK CA, identity provider, enrollment), per
    # client address. The ceiling is high because a whole lab fleet may come from one address
    # (a 200-device run sends about 2,000).
    rate_per_address: int = 20_000
    # Per device, counting only requests that proved they come from it: what stops a device
    # (or a thief of its credential) hammering its own record. Naming the id is not enough.
    rate_per_device: int = 120
    # Per client address, nonce, enrollment and check-in requests that proved nothing.
    rate_unauthenticated_per_address: int = 300
    # Records an unauthenticated enrollment may create (for ids the server never saw): per client
    # address and minute, and in all. Such records are never bound to anyone; the oldest ones not
    # touched for stale_unbound_after (on the server's clock) make room for new ones.
    unbound_rows_per_address: int = 60
    max_unbound_devices: int = 10_000
    stale_unbound_after: dt.timedelta = dt.timedelta(days=1)

    @property
    def db_path(self) -> Path:
        return self.db_file if self.db_file is not None else self.data_dir / "server.sqlite3"

    @property
    def admin_token_path(self) -> Path:
        return self.data_dir / "admin-token"
