"""Services some worlds need next to the reference server, started only when used.

- Another tenant's identity provider: its own keys, which the MDM service does
  not trust; a token from it is signed by a key the service does not know.
- A lagging replica: a second instance of the reference server on the same
  storage and keys whose clock is two hours behind (failed time sync), as a
  load balancer may pick. Its nonces and tokens were stale when issued.
- The TPM vendors' online EK-certificate service (harness.ek_service), for TPMs whose
  EK certificate was published there instead of written to NV.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from ..ek_service import EKCertificateService
from ..server import EmbeddedServer, ServerConfig
from ._plan import DevicePlan

REPLICA_LAG = dt.timedelta(hours=2)


class LaggingClock:
    """The system clock, behind by a fixed amount."""

    def __init__(self, lag: dt.timedelta) -> None:
        self.lag = lag

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC) - self.lag


@dataclass(frozen=True)
class AuxiliaryURLs:
    lagging_replica_url: str = ""
    foreign_identity_url: str = ""
    ek_service_url: str = ""
    ek_service_dir: str = ""


@contextmanager
def auxiliary_services(
    plans: list[DevicePlan],
    workdir: Path,
    *,
    primary_data_dir: Path | None,
    roots: list[x509.Certificate],
    host: str = "127.0.0.1",
) -> Iterator[AuxiliaryURLs]:
    """Start what the plans need; `primary_data_dir` is None when the primary is not ours.

    `host`: where the servers listen, the primary's bind address (device tasks reach them there)."""
    wants_replica = any(
        p.network.nonce_from == "lagging-replica" or p.network.identity == "lagging-replica" for p in plans
    )
    wants_foreign = any(p.network.identity == "foreign-tenant" for p in plans)
    wants_ek_service = any(p.tpm.ek_certificate_online for p in plans)
    with ExitStack() as stack:
        replica = foreign = ""
        if wants_replica and primary_data_dir is not None:
            config = ServerConfig(data_dir=primary_data_dir, manufacturer_roots=roots)
            replica = stack.enter_context(EmbeddedServer(config, clock=LaggingClock(REPLICA_LAG))).url
        if wants_foreign:
            config = ServerConfig(data_dir=workdir / "foreign-tenant", manufacturer_roots=roots)
            foreign = stack.enter_context(EmbeddedServer(config, host=host)).url
        ek_service = ek_dir = ""
        if wants_ek_service:
            directory = workdir / "ek-service"
            ek_service = stack.enter_context(EKCertificateService(directory)).url
            ek_dir = str(directory)
        yield AuxiliaryURLs(
            lagging_replica_url=replica,
            foreign_identity_url=foreign,
            ek_service_url=ek_service,
            ek_service_dir=ek_dir,
        )
