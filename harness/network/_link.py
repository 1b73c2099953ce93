"""A device's network link: a real TCP relay on loopback that can misbehave.

The client talks HTTP to the link exactly as it would to the service; the link
relays each request to its upstream over a new connection and can, for the
first requests that match a rule, do what broken networks do: reset the
connection, close it without an answer, damage the body in transit, or
deliver the request and then a replayed copy. A route can send some paths to
another upstream, as a load balancer does.
"""

from __future__ import annotations

import socket
import struct
import threading
from dataclasses import dataclass, field
from types import TracebackType
from typing import Literal
from urllib.parse import urlsplit

from ..errors import HarnessError

Fault = Literal["reset", "drop", "corrupt", "replay"]
_HEADER_LIMIT = 64 * 1024
_BODY_LIMIT = 16 * 1024 * 1024
_IO_TIMEOUT = 60.0


@dataclass
class Rule:
    """Apply `fault` to the first `times` requests whose method and path match."""

    method: str
    path: str
    fault: Fault
    times: int = 1
    applied: int = 0

    def matches(self, method: str, path: str) -> bool:
        return self.applied < self.times and method == self.method and path.split("?")[0] == self.path


@dataclass(frozen=True)
class Route:
    """Requests whose path starts with `prefix` go to `upstream` instead."""

    prefix: str
    upstream: str


@dataclass
class _Request:
    method: str
    path: str
    head: bytes  # request line and headers, with the connection made non-persistent
    body: bytes

    def raw(self) -> bytes:
        return self.head + self.body


def _address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise HarnessError(f"a link relays plain HTTP on loopback, not {url!r}")
    return parts.hostname, parts.port or 80


@dataclass
class Link:
    """Listens on a loopback port the OS picks; `url` is what the client is given."""

    upstream: str
    rules: list[Rule] = field(default_factory=list)
    routes: list[Route] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self.log: list[str] = []  # what the link did, for the device's evidence trail
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._acceptor = threading.Thread(target=self._accept, name="link-accept", daemon=True)
        self._acceptor.start()

    def __enter__(self) -> Link:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._stopping.set()
        self._acceptor.join(timeout=5)
        self._listener.close()
        for thread in list(self._threads):
            thread.join(timeout=5)

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(client,), name="link-conn", daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, client: socket.socket) -> None:
        client.settimeout(_IO_TIMEOUT)
        try:
            request = _read_request(client)
            if request is None:
                return
            fault = self._fault_for(request)
            upstream = self._upstream_for(request.path)
            if fault == "reset":
                self._note(f"reset the connection of {request.method} {request.path}")
                _reset(client)
                return
            if fault == "drop":
                self._note(f"closed {request.method} {request.path} without an answer")
                return
            if fault == "corrupt":
                request.body = _damage(request.body)
                self._note(f"damaged the body of {request.method} {request.path} in transit")
            answer = _exchange(upstream, request.raw())
            if fault == "replay":
                _exchange(upstream, request.raw())
                self._note(f"delivered {request.method} {request.path}, then a replayed copy")
            client.sendall(answer)
        except OSError:
            pass  # the client went away; nothing to relay
        finally:
            client.close()

    def _fault_for(self, request: _Request) -> Fault | None:
        with self._lock:
            for rule in self.rules:
                if rule.matches(request.method, request.path):
                    rule.applied += 1
                    return rule.fault
        return None

    def _upstream_for(self, path: str) -> str:
        for route in self.routes:
            if path.startswith(route.prefix):
                return route.upstream
        return self.upstream

    def _note(self, what: str) -> None:
        with self._lock:
            self.log.append(what)


def _read_request(sock: socket.socket) -> _Request | None:
    buffer = b""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        buffer += chunk
        if len(buffer) > _HEADER_LIMIT:
            raise OSError("request headers too large for the link")
    head, _, rest = buffer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, path, _version = [*lines[0].split(" ", 2), "", ""][:3]
    headers = [line for line in lines[1:] if line]
    length = 0
    kept = []
    for line in headers:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip() or 0)
        if name.strip().lower() not in ("connection", "keep-alive"):
            kept.append(line)
    if length > _BODY_LIMIT:
        raise OSError("request body too large for the link")
    body = rest
    while len(body) < length:
        chunk = sock.recv(min(65536, length - len(body)))
        if not chunk:
            return None
        body += chunk
    # One request per connection both ways: the client sees 'Connection: close' in the answer.
    new_head = "\r\n".join([lines[0], *kept, "Connection: close", "", ""]).encode("latin-1")
    return _Request(method=method, path=path, head=new_head, body=body[:length])


def _exchange(upstream: str, raw: bytes) -> bytes:
    with socket.create_connection(_address(upstream), timeout=_IO_TIMEOUT) as server:
        server.sendall(raw)
        chunks = []
        while chunk := server.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def _damage(body: bytes) -> bytes:
    """A NUL byte in the middle of the body, as a faulty middlebox or NIC leaves it."""
    if not body:
        return body
    middle = len(body) // 2
    return body[:middle] + b"\0" + body[middle + 1 :]


def _reset(sock: socket.socket) -> None:
    # SO_LINGER with a zero timeout makes close() send RST instead of FIN.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
