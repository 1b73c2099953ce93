"""Running the server: embedded in the harness on a loopback port the OS picks, or in the
foreground of `harness serve`."""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType

import uvicorn
from fastapi import FastAPI

from ..errors import ServerError
from ._app import create_app
from ._clock import Clock
from ._config import ServerConfig


def bind_loopback(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    # proto=IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY on accepted connections only for
    # sockets whose proto says TCP; without it every response waits ~40 ms for a delayed ACK.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.set_inheritable(False)
    return sock


class EmbeddedServer:
    """The reference server on a thread of this process, on a port bound before it starts."""

    def __init__(self, config: ServerConfig, clock: Clock | None = None, host: str = "127.0.0.1") -> None:
        self.app = create_app(config, clock)
        self._socket = bind_loopback(host)
        port = self._socket.getsockname()[1]
        self.url = f"http://{host}:{port}"
        self._server = uvicorn.Server(
            uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="off")
        )
        self._thread = threading.Thread(target=self._run, name="reference-server", daemon=True)

    def _run(self) -> None:
        self._server.run(sockets=[self._socket])

    def start(self) -> EmbeddedServer:
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise ServerError("the reference server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self._socket.close()
        self.app.state.context.store.close()

    def __enter__(self) -> EmbeddedServer:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def serve_foreground(app: FastAPI, sock: socket.socket) -> None:
    """Serve on an already bound socket in this thread until SIGINT or SIGTERM.

    uvicorn finishes the requests in flight, then raises the signal again once its own
    handlers are gone, so the caller's handling of Ctrl-C and SIGTERM still runs.
    """
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
        app.state.context.store.close()
