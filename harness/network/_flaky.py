"""An intermittent fault: a relay in front of a service that resets a share of its connections."""

from __future__ import annotations

import random
import socket
import struct
import threading
from types import TracebackType
from urllib.parse import urlsplit

_CHUNK = 65536


class FlakyEndpoint:
    """Relays TCP connections to `upstream`, and resets each with probability `share` at once.

    A listener cannot refuse a connection the kernel has already accepted, so a refused one
    is reset before a byte is read: the client sees the connection fail, as it does when a
    load balancer in front of the service drops a share of its backends. Which connections
    fail is drawn from `seed`, so one run can be replayed and two runs differ.
    """

    def __init__(self, upstream: str, share: float, seed: int | str) -> None:
        parts = urlsplit(upstream)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._share = share
        self._random = random.Random(str(seed))
        self._seed = seed
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.url = f"{parts.scheme or 'http'}://127.0.0.1:{self._listener.getsockname()[1]}"
        self.log: list[str] = []
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._acceptor = threading.Thread(target=self._accept, name="flaky-accept", daemon=True)
        self._acceptor.start()

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self._random.random() < self._share:
                self.log.append(
                    f"reset a connection (intermittent fault, {self._share:.0%}, seed {self._seed})"
                )
                connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                connection.close()
                continue
            thread = threading.Thread(target=self._relay, args=(connection,), name="flaky-relay", daemon=True)
            self._threads.append(thread)
            thread.start()

    def _relay(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self._upstream, timeout=30)
        except OSError:
            client.close()
            return
        pump = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
        pump.start()
        _pump(client, upstream)
        pump.join(timeout=30)
        for end in (client, upstream):
            end.close()

    def close(self) -> None:
        self._stopping.set()
        self._acceptor.join(timeout=5)
        self._listener.close()
        for thread in list(self._threads):
            thread.join(timeout=5)

    def __enter__(self) -> FlakyEndpoint:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(_CHUNK):
            sink.sendall(data)
        sink.shutdown(socket.SHUT_WR)
    except OSError:
        pass
