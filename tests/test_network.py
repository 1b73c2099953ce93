"""The device network link and unreachable endpoints, over real loopback sockets."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from harness.network import Link, RefusingEndpoint, ResettingEndpoint, Route, Rule


class Upstream:
    """A real HTTP server that records the bodies it receives."""

    def __init__(self, name: str) -> None:
        self.bodies: list[bytes] = []
        received = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                received.append(self.rfile.read(int(self.headers["Content-Length"])))
                self._answer()

            def do_GET(self) -> None:
                self._answer()

            def _answer(self) -> None:
                body = name.encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    server = Upstream("primary")
    yield server
    server.close()


def test_link_relays_requests_unchanged(upstream: Upstream) -> None:
    with Link(upstream.url) as link, httpx.Client() as http:
        response = http.post(f"{link.url}/enrollment", json={"a": 1})
        assert response.text == "primary"
        assert http.get(f"{link.url}/health").text == "primary"
    assert upstream.bodies == [b'{"a":1}']
    assert link.log == []


@pytest.mark.parametrize(
    ("fault", "error"),
    [("reset", httpx.ReadError), ("drop", httpx.RemoteProtocolError)],
)
def test_fault_hits_only_the_first_matching_request(
    upstream: Upstream, fault: str, error: type[Exception]
) -> None:
    rule = Rule("POST", "/enrollment", fault)  # type: ignore[arg-type]
    with Link(upstream.url, rules=[rule]) as link, httpx.Client() as http:
        assert http.get(f"{link.url}/enrollment/nonce").text == "primary"  # other paths pass
        with pytest.raises(error):
            http.post(f"{link.url}/enrollment", json={"try": 1})
        assert http.post(f"{link.url}/enrollment", json={"try": 2}).text == "primary"
    assert upstream.bodies == [b'{"try":2}']
    assert len(link.log) == 1


def test_corrupt_damages_the_body_in_transit(upstream: Upstream) -> None:
    with Link(upstream.url, rules=[Rule("POST", "/enrollment", "corrupt")]) as link, httpx.Client() as http:
        http.post(f"{link.url}/enrollment", json={"key": "value-value"})
    (body,) = upstream.bodies
    assert b"\0" in body and len(body) == len(b'{"key":"value-value"}')


def test_replay_delivers_the_request_twice(upstream: Upstream) -> None:
    with Link(upstream.url, rules=[Rule("POST", "/enrollment", "replay")]) as link, httpx.Client() as http:
        assert http.post(f"{link.url}/enrollment", json={"n": 1}).text == "primary"
    assert upstream.bodies == [b'{"n":1}', b'{"n":1}']


def test_route_sends_a_path_to_another_upstream(upstream: Upstream) -> None:
    replica = Upstream("replica")
    try:
        routes = [Route("/enrollment/nonce", replica.url)]
        with Link(upstream.url, routes=routes) as link, httpx.Client() as http:
            assert http.get(f"{link.url}/enrollment/nonce?emmDeviceId=x").text == "replica"
            assert http.post(f"{link.url}/enrollment", json={}).text == "primary"
    finally:
        replica.close()


def test_refusing_endpoint_refuses_connections() -> None:
    with RefusingEndpoint() as endpoint, pytest.raises(httpx.ConnectError):
        httpx.get(endpoint.url)


def test_resetting_endpoint_resets_connections() -> None:
    with ResettingEndpoint() as endpoint, pytest.raises((httpx.ConnectError, httpx.ReadError)):
        httpx.get(endpoint.url)
