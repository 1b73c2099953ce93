"""What a run shares: its options, its work directory, the vendor CAs, the reference server.

`fleet_session` starts all of it and stops it when the block ends, however it
ends. A FleetSession travels to other processes as plain strings (to_dict /
from_dict), which is how pytest-xdist workers join the controller's run.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509

from ..errors import HarnessError
from ..pki import create_vendor_cas
from ..scenario import Scenario, refuse_settings_for_backend
from ..tpm import DEFAULT_BACKEND, BackendSpec, check_backend, parse_engine, remove_leftovers
from ..trust import TrustStore
from ._device import FleetEnvironment
from ._plan import DevicePlan


@dataclass(frozen=True)
class RunOptions:
    workers: int = 1
    server_url: str | None = None  # an already running server instead of the embedded one
    admin_token: str | None = None  # needed with server_url
    pki_dir: Path | None = None  # vendor CAs shared with that server
    keep_workdir: bool = False
    backend: BackendSpec = DEFAULT_BACKEND  # where each device's TPM runs; a name is parsed
    trust: TrustStore | None = None  # the embedded server's trust store (--trust); None: defaults
    bundle_dir: Path | None = None  # where each device's evidence bundle is written; None: nowhere
    # Where the embedded server listens: other machines (controllers, labs) reach it there.
    server_bind: str = "127.0.0.1"
    history: Path | None = None  # the run history (SQLite) a finished run is recorded into
    trace: str = "failures"  # TPM command traces kept: off | failures | all

    def __post_init__(self) -> None:
        if self.trace not in ("off", "failures", "all"):
            raise HarnessError(f"--trace must be off, failures or all, not '{self.trace}'")
        if isinstance(self.backend, str):
            object.__setattr__(self, "backend", BackendSpec.parse(self.backend))
        try:
            ipaddress.ip_address(self.server_bind)
        except ValueError:
            raise HarnessError(
                f"the server's bind address must be an IP address, not '{self.server_bind}'"
            ) from None


@dataclass(frozen=True)
class FleetSession:
    """What every device of a run shares: the services, the vendor CAs, admin access to the report."""

    env: FleetEnvironment
    admin_url: str
    admin_token: str
    run_id: str  # labels what the run starts outside this process (containers)
    backend: BackendSpec = DEFAULT_BACKEND
    # Bearer tokens of the scenarios' principals by name ('admin' included), for steps.
    principal_tokens: dict[str, str] = field(default_factory=dict)
    # The scenarios with steps the server was started for (its manual clock, their admins).
    stepped: tuple[str, ...] = ()
    # What the embedded server judged against (its own AIK CA and token key included); None
    # for a server given by URL, whose trust the harness does not know. Not sent to workers.
    judged_trust: TrustStore | None = None

    def to_dict(self) -> dict[str, str]:
        """Plain strings, for handing the session to another process (pytest-xdist workers)."""
        env = self.env
        return {
            "server_url": env.server_url,
            "pki_dir": str(env.pki_dir),
            "workdir": str(env.workdir),
            "helpers": json.dumps(env.helpers),
            "admin_url": self.admin_url,
            "admin_token": self.admin_token,
            "run_id": self.run_id,
            "backend": str(self.backend),
            # One engine spec a line: a spec holds commas, never a newline.
            "engines": "\n".join(engine.spec for engine in self.backend.engines),
            "principal_tokens": json.dumps(self.principal_tokens),
            "stepped": json.dumps(list(self.stepped)),
            "trace": env.trace,
            "fault_seed": str(env.fault_seed),
        }

    @classmethod
    def from_dict(cls, data: dict[str, str]) -> FleetSession:
        return cls(
            env=FleetEnvironment(
                server_url=data["server_url"],
                pki_dir=Path(data["pki_dir"]),
                workdir=Path(data["workdir"]),
                helpers=json.loads(data.get("helpers", "{}")),
                trace=data.get("trace", "failures"),
                fault_seed=int(data.get("fault_seed", "0")),
            ),
            admin_url=data["admin_url"],
            admin_token=data["admin_token"],
            run_id=data["run_id"],
            backend=BackendSpec.parse(data.get("backend", str(DEFAULT_BACKEND))).with_engines(
                [parse_engine(line) for line in data.get("engines", "").splitlines() if line]
            ),
            principal_tokens=json.loads(data.get("principal_tokens", "{}")),
            stepped=tuple(json.loads(data.get("stepped", "[]"))),
        )


def choose_backend(option: BackendSpec | None, scenarios: Sequence[Scenario]) -> BackendSpec:
    """The option wins; else the scenarios' own `backend` field, which must agree."""
    if option is not None:
        refuse_settings_for_backend(scenarios, option)
        return option
    wanted = {s.backend or DEFAULT_BACKEND for s in scenarios} or {DEFAULT_BACKEND}
    if len(wanted) != 1:
        names = ", ".join(sorted(str(spec) for spec in wanted))
        raise HarnessError(f"the scenarios ask for different TPM backends ({names})")
    chosen = wanted.pop()
    refuse_settings_for_backend(scenarios, chosen)
    return chosen


_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def new_run_id() -> str:
    """HARNESS_RUN_ID (a CI job's id, say, to find its containers after a killed job), else random."""
    given = os.environ.get("HARNESS_RUN_ID")
    if not given:
        return secrets.token_hex(6)
    if not _RUN_ID.fullmatch(given):
        raise HarnessError(f"HARNESS_RUN_ID must be 1-64 letters, digits, '.', '_' or '-', not '{given}'")
    return given


def fault_seed() -> int:
    """HARNESS_FAULT_SEED (to replay a run's intermittent faults), else a new one each run."""
    given = os.environ.get("HARNESS_FAULT_SEED", "")
    if not given:
        return secrets.randbits(32)
    try:
        return int(given)
    except ValueError:
        raise HarnessError(f"HARNESS_FAULT_SEED must be an integer, not '{given}'") from None


@contextmanager
def _workdir(keep: bool) -> Iterator[Path]:
    # Short, under /tmp by default: swtpm's unix socket paths must fit in 108 bytes.
    base = os.environ.get("HARNESS_TMPDIR") or ("/tmp" if os.path.isdir("/tmp") else None)
    path = Path(tempfile.mkdtemp(prefix="eah-", dir=base))
    try:
        yield path
    finally:
        if not keep:
            shutil.rmtree(path, ignore_errors=True)


@contextmanager
def fleet_session(
    plans: list[DevicePlan],
    options: RunOptions,
    *,
    now: dt.datetime | None = None,
    run_id: str | None = None,
    stepped: Sequence[Scenario] = (),
    backend_checked: bool = False,
) -> Iterator[FleetSession]:
    """The work directory, the vendor CAs, the reference server and the services the plans need.

    `backend_checked`: options.backend is what check_backend returned (the caller checked it
    already), so its pre-flight does not run twice. Everything is stopped and removed when the
    block ends, however it ends.
    """
    # The server and its helpers are imported here, not at module level: pool workers import
    # this package to run devices and have no use for the web framework's import time.
    from ._services import auxiliary_services

    now = now or dt.datetime.now(dt.UTC)
    run_id = run_id or new_run_id()
    backend = options.backend if backend_checked else check_backend(options.backend, workers=options.workers)
    for tcti in sorted({p.tpm.tcti for p in plans if p.tpm.tcti}):
        check_backend(BackendSpec("device", tcti))  # groups' own external TPMs answer
    with ExitStack() as stack:
        workdir = stack.enter_context(_workdir(options.keep_workdir))
        stack.callback(remove_leftovers, backend, run_id)
        pki_dir = options.pki_dir or workdir / "pki"
        roots = create_vendor_cas(pki_dir, now=now)
        url, tokens, judged = stack.enter_context(_server(options, workdir, roots, stepped))
        auxiliary = stack.enter_context(
            auxiliary_services(
                plans,
                workdir,
                primary_data_dir=None if options.server_url else workdir / "server",
                roots=roots,
                host=options.server_bind,
            )
        )
        env = FleetEnvironment(
            server_url=url,
            pki_dir=pki_dir,
            workdir=workdir,
            helpers=auxiliary,
            trace=options.trace,
            fault_seed=fault_seed(),
        )
        yield FleetSession(
            env=env,
            admin_url=url,
            admin_token=tokens["admin"],
            run_id=run_id,
            backend=backend,
            principal_tokens=tokens,
            stepped=tuple(s.name for s in stepped),
            judged_trust=judged,
        )


@contextmanager
def _server(
    options: RunOptions, workdir: Path, roots: list[x509.Certificate], stepped: Sequence[Scenario] = ()
) -> Iterator[tuple[str, dict[str, str], TrustStore | None]]:
    """The server's URL, bearer tokens by principal name ('admin' has Remote tasks), and the
    trust it judges against (None for a server given by URL)."""
    if options.server_url:
        if not options.admin_token:
            raise HarnessError("a run against --server needs the server's admin token (--admin-token)")
        if stepped:
            names = ", ".join(s.name for s in stepped)
            raise HarnessError(
                f"scenarios with steps ({names}) move the server's clock and add admins: "
                "run them with the embedded server"
            )
        yield options.server_url.rstrip("/"), {"admin": options.admin_token}, None
        return
    from ..server import EmbeddedServer, ManualClock, Principal, ServerConfig
    from ._recording import server_trust

    tokens = {"admin": secrets.token_urlsafe(24)}
    principals = {tokens["admin"]: Principal("admin", remote_tasks=True)}
    for scenario in stepped:
        for spec in scenario.principals:
            tokens.setdefault(spec.name, secrets.token_urlsafe(24))
            principals[tokens[spec.name]] = Principal(spec.name, remote_tasks=spec.remote_tasks)
    config = ServerConfig(
        data_dir=workdir / "server",
        manufacturer_roots=roots,
        principals=principals,
        trust=options.trust or TrustStore(),
    )
    # Steps test the one-minute and fifteen-minute rules: time moves only when a step moves it.
    clock = ManualClock() if stepped else None
    try:
        server = EmbeddedServer(config, clock=clock, host=options.server_bind)
    except OSError as exc:
        raise HarnessError(
            f"the server cannot listen on {options.server_bind}: {exc.strerror or exc}"
        ) from exc
    with server:
        yield server.url, tokens, server_trust(server)
