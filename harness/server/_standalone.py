"""The reference server on its own (`harness serve`), for a lab or a nightly job.

`prepare_standalone` does everything start-up needs (data directory, vendor CAs
to trust, admins, the database, a bound socket) and raises a HarnessError that
says what went wrong; `StandaloneServer.serve` then serves in the foreground
until Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import os
import socket
import sqlite3
from pathlib import Path

from fastapi import FastAPI

from ..errors import ServerError
from ..pki import create_vendor_cas
from ..trust import TrustStore
from ._app import create_app
from ._clock import Clock, ManualClock, SystemClock
from ._config import ServerConfig
from ._rbac import load_rbac
from ._secure import private_dir
from ._serve import bind_loopback, serve_foreground


def default_data_dir() -> Path:
    """$XDG_STATE_HOME/harness/server (~/.local/state/harness/server)."""
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "harness" / "server"


class StandaloneServer:
    """A configured server on a bound socket, ready to serve in the foreground."""

    def __init__(
        self,
        app: FastAPI,
        sock: socket.socket,
        config: ServerConfig,
        *,
        host: str,
        pki_dir: Path,
        rbac: Path | None,
    ) -> None:
        self.app = app
        self.config = config
        self.pki_dir = pki_dir
        self._socket = sock
        self._rbac = rbac
        bound = sock.getsockname()[1]
        self.url = f"http://[{host}]:{bound}" if ":" in host else f"http://{host}:{bound}"

    def banner(self) -> list[str]:
        """Where the server is, what it keeps where, and how to run devices against it."""
        ctx = self.app.state.context
        if ctx.admin_token_file is not None:
            admins = f"admin (remote tasks); its token is in {ctx.admin_token_file} (mode 0600)"
            # A file name, never the token: a token on a command line is in every process list.
            token_hint = f"--admin-token-file {ctx.admin_token_file}"
        else:
            names = [
                f"{p.name}{' (remote tasks)' if p.remote_tasks else ''}" for p in ctx.principals.values()
            ]
            admins = f"{', '.join(names)} from {self._rbac}"
            token_hint = "--admin-token-file FILE (or HARNESS_ADMIN_TOKEN in the environment)"
        manual = isinstance(self.app.state.context.clock, ManualClock)
        clock = "manual: POST /admin/clock/advance moves it" if manual else "system"
        return [
            f"reference server on {self.url} (admin page {self.url}/admin/)",
            f"  database    {self.config.db_path}",
            f"  vendor CAs  {self.pki_dir}",
            f"  admins      {admins}",
            f"  clock       {clock}",
            f"devices: harness run --server {self.url} {token_hint} --pki-dir {self.pki_dir} SCENARIO...",
            "Ctrl-C or SIGTERM stops the server.",
        ]

    def serve(self) -> None:
        """Serve until SIGINT or SIGTERM; requests in flight finish first."""
        serve_foreground(self.app, self._socket)

    def close(self) -> None:
        """Release the socket and the database of a server that will not serve."""
        self._socket.close()
        self.app.state.context.store.close()


def prepare_standalone(
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    data_dir: Path | None = None,
    db: Path | None = None,
    rbac: Path | None = None,
    pki_dir: Path | None = None,
    manual_clock: bool = False,
    trust: TrustStore | None = None,
) -> StandaloneServer:
    """Build the server's trust, admins and storage and bind its socket.

    Raises RbacError for a bad RBAC file and ServerError for anything else that stops
    the start; nothing is left open when it raises.
    """
    # Absolute, so the paths printed for 'harness run --pki-dir' work from any directory.
    data_dir = (data_dir or default_data_dir()).absolute()
    pki_dir = (pki_dir or data_dir / "pki").absolute()
    clock: Clock = ManualClock() if manual_clock else SystemClock()
    try:
        principals = load_rbac(rbac) if rbac else {}
        private_dir(data_dir)
        roots = create_vendor_cas(pki_dir, now=clock.now())
        config = ServerConfig(
            data_dir=data_dir,
            db_file=db.absolute() if db else None,
            manufacturer_roots=roots,
            principals=principals,
            trust=trust or TrustStore(),
        )
        sock = bind_loopback(host, port)
    except (OSError, ValueError) as exc:
        raise ServerError(str(exc)) from exc
    try:
        app = create_app(config, clock)
    except (OSError, ValueError, sqlite3.Error) as exc:
        sock.close()
        raise ServerError(str(exc)) from exc
    return StandaloneServer(app, sock, config, host=host, pki_dir=pki_dir, rbac=rbac)
