"""The TPM command trace's decoding, the trace on a real swtpm, and the flaky AIK CA relay."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from harness.network import FlakyEndpoint
from harness.tpm import (
    SwtpmBackend,
    TimedESAPI,
    TPMRequest,
    command_name,
    response_name,
    start_trace,
    stop_trace,
)

from .conftest import needs_swtpm


@pytest.mark.parametrize(
    ("rc", "name"),
    [
        (0x000, "TPM_RC_SUCCESS"),
        (0x921, "TPM_RC_LOCKOUT"),
        (0x922, "TPM_RC_RETRY"),
        (0x98E, "TPM_RC_AUTH_FAIL (session 1)"),
        (0x9A2, "TPM_RC_BAD_AUTH (session 1)"),
        (0x1C4, "TPM_RC_VALUE (parameter 1)"),
        (0x184, "TPM_RC_VALUE (handle 1)"),
        (0x101, "TPM_RC_FAILURE"),
        (0x26, "0x00000026"),  # a TPM 1.2 code: no TPM 2.0 name
    ],
)
def test_response_codes_are_named_as_tpm_2_part_2_names_them(rc: int, name: str) -> None:
    assert response_name(rc) == name


def test_command_codes_are_named() -> None:
    assert command_name(0x131) == "TPM2_CC_CreatePrimary"
    assert command_name(0x15D) == "TPM2_CC_Sign"
    assert command_name(0x0BADC0DE) == "0x0BADC0DE"


@needs_swtpm
def test_every_command_on_a_traced_tcti_is_recorded_and_nothing_after(swtpm_workdir: Path) -> None:
    backend = SwtpmBackend()
    tpm = backend.start(TPMRequest(), swtpm_workdir)
    try:
        trace = start_trace(tpm.tcti)
        trace.source = "world"
        with TimedESAPI(tpm.tcti) as esapi:
            esapi.get_random(8)
            esapi.get_random(16)
        stop_trace(tpm.tcti)
        with TimedESAPI(tpm.tcti) as esapi:
            esapi.get_random(8)
    finally:
        tpm.close()
        backend.close()
    commands = trace.commands
    assert [(c.source, c.command, c.response) for c in commands] == [
        ("world", "TPM2_CC_GetRandom", "TPM_RC_SUCCESS"),
        ("world", "TPM2_CC_GetRandom", "TPM_RC_SUCCESS"),
    ]
    assert [c.command_bytes for c in commands] == [12, 12]
    assert [c.response_bytes for c in commands] == [20, 28], "header, size field and the bytes asked for"
    assert all(c.seconds > 0 for c in commands)


class _Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "5")
        self.end_headers()
        self.wfile.write(b"hello")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def upstream() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _fetch(url: str) -> bool:
    try:
        with httpx.Client(timeout=5) as client:  # a new connection each time
            return client.get(url + "/").text == "hello"
    except httpx.TransportError:
        return False


@pytest.mark.parametrize(("share", "expected"), [(0.0, [True] * 6), (1.0, [False] * 6)])
def test_the_flaky_relay_relays_or_resets_whole_connections(
    upstream: str, share: float, expected: list[bool]
) -> None:
    with FlakyEndpoint(upstream, share, seed=1) as relay:
        assert [_fetch(relay.url) for _ in expected] == expected
        assert len(relay.log) == expected.count(False)


def test_the_flaky_relays_draws_repeat_with_the_seed_and_differ_without(upstream: str) -> None:
    def draws(seed: int) -> list[bool]:
        with FlakyEndpoint(upstream, 0.5, seed=seed) as relay:
            return [_fetch(relay.url) for _ in range(16)]

    first = draws(7)
    assert first == draws(7)
    assert True in first and False in first
    assert any(draws(seed) != first for seed in (8, 9, 10))
