"""(g) report under load: admins reading the report while a fleet enrolls.

The same fleet runs against a reference server in its own process (`harness serve`, a fresh
data directory each time), alternately alone and while 50 concurrent readers in another
process fetch the report's first page (for at least 30 s and as long as the fleet runs),
twice each. Each
reader holds one keep-alive connection and reads again 0.1 s after each answer: up to ten
refreshes a second per admin, some 400-500 reads a second in all on a 2-core machine. Figures:
the readers' latency (p50, p99, max), their request count and errors, and load_ratio = wall
with readers / wall without.

With no pause between reads the readers take whatever CPU the machine has left (over 1,000
reads a second here): the fleet then slows by whatever they take, which measures the
load generator rather than the server.

Targets (issue 18): p99 under 300 ms, load_ratio at most 1.3.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPORT = "/admin/reports/device-attestation"
READERS = 50
ROUNDS = 2
THINK_SECONDS = 0.1  # between one reader's reads: up to 10 refreshes a second per admin
MIN_SECONDS = 30.0
ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class LoadFigures:
    alone: float
    loaded: float
    requests: int
    errors: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    reader_seconds: float

    @property
    def load_ratio(self) -> float:
        return self.loaded / self.alone


@contextmanager
def _server(data: Path) -> Iterator[tuple[str, str, Path]]:
    """`harness serve` on a free loopback port: its URL, admin token and vendor CA directory."""
    process = subprocess.Popen(
        [sys.executable, "-m", "harness", "serve", "--port", "0", "--data-dir", str(data)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = ""
        for line in process.stdout:
            if "http://" in line:
                url = line[line.index("http://") :].split()[0].rstrip("/")
                break
        if not url:
            raise RuntimeError("harness serve printed no URL")
        token = (data / "admin-token").read_text().strip()
        yield url, token, data / "pki"
    finally:
        process.terminate()
        process.wait(timeout=60)


def _run_fleet(scenario: Path, workers: int, url: str, token: str, pki: Path) -> float:
    from harness.fleet import RunOptions, run_fleet
    from harness.scenario import load_scenario

    options = RunOptions(workers=workers, server_url=url, admin_token=token, pki_dir=pki)
    result = run_fleet([load_scenario(scenario)], options)
    if not result.all_matched:
        raise RuntimeError(f"the fleet did not match: {result.summary}")
    return result.summary.wall_seconds


def bench_report_load(scenario: Path, workers: int, say: Callable[[str], None]) -> LoadFigures:
    say(f"(g) report under load: {scenario.name}, {workers} workers, server in its own process")
    with tempfile.TemporaryDirectory(prefix="eah-bench-g-") as work:
        alone = loaded = 0.0
        measured: dict[str, Any] = {"ms": [], "errors": 0, "seconds": 0.0}
        # Alternately alone and with readers, ROUNDS times: one fleet's wall varies by a sixth
        # from run to run here, as much as the readers' effect.
        for round_ in range(ROUNDS):
            with _server(Path(work) / f"alone-{round_}") as (url, token, pki):
                took = _run_fleet(scenario, workers, url, token, pki)
            alone += took
            say(f"    without readers      wall {took:.1f} s")
            latencies = Path(work) / f"latencies-{round_}.json"
            stop = Path(work) / f"fleet-done-{round_}"
            with _server(Path(work) / f"loaded-{round_}") as (url, token, pki):
                readers = subprocess.Popen(
                    [sys.executable, "-m", "bench.report_load", url, token, str(stop), str(latencies)],
                    cwd=ROOT,
                )
                try:
                    time.sleep(1.0)  # the readers are connected before the first device starts
                    took = _run_fleet(scenario, workers, url, token, pki)
                finally:
                    stop.touch()
                    readers.wait(timeout=MIN_SECONDS + 120)
            loaded += took
            say(f"    with {READERS} readers      wall {took:.1f} s")
            this = json.loads(latencies.read_text())
            measured["ms"] += this["ms"]
            measured["errors"] += this["errors"]
            measured["seconds"] += this["seconds"]
    times = sorted(measured["ms"])
    figures = LoadFigures(
        alone=alone,
        loaded=loaded,
        requests=len(times),
        errors=measured["errors"],
        p50_ms=statistics.median(times),
        p99_ms=times[min(len(times) - 1, int(0.99 * len(times)))],
        max_ms=times[-1],
        reader_seconds=measured["seconds"],
    )
    ratio = figures.load_ratio
    say(
        f"    in all               {alone:.1f} s alone, {loaded:.1f} s with readers; "
        f"load_ratio {ratio:.3f} (target <= 1.3)"
    )
    say(
        f"    report reads         {figures.requests} in {figures.reader_seconds:.1f} s, "
        f"{figures.errors} errors; p50 {figures.p50_ms:.1f} ms, p99 {figures.p99_ms:.1f} ms "
        f"(target < 300), max {figures.max_ms:.1f} ms"
    )
    return figures


class _Connection:
    """One admin's keep-alive HTTP/1.1 connection, read with asyncio streams.

    The readers stand for admins at their own machines: what they cost should not land on the
    machine under test. An HTTP client library spends about a millisecond of CPU per request,
    which on a 2-core runner is CPU taken from the fleet and the server, and queueing that
    shows up as the server's latency. This sends one prepared request and reads exactly the
    response's Content-Length; anything else is an error.
    """

    def __init__(self, host: str, port: int, request: bytes) -> None:
        self._host, self._port, self._request = host, port, request
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def get(self) -> bool:
        if self._reader is None or self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self._host, self._port)
        self._writer.write(self._request)
        head = await self._reader.readuntil(b"\r\n\r\n")
        status_line, _, headers = head.partition(b"\r\n")
        length = next(
            (
                int(line.split(b":", 1)[1])
                for line in headers.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            ),
            None,
        )
        if length is None:
            raise ConnectionError("response without Content-Length")
        await self._reader.readexactly(length)
        return status_line.split(b" ", 2)[1] == b"200"

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None


async def _read(url: str, token: str, stop: Path, out: Path) -> None:
    from urllib.parse import urlsplit

    latencies: list[float] = []
    errors = 0
    started = time.perf_counter()
    where = urlsplit(url)
    host, port = where.hostname or "127.0.0.1", where.port or 80
    request = (
        f"GET {REPORT} HTTP/1.1\r\nHost: {where.netloc}\r\nAuthorization: Bearer {token}\r\n\r\n"
    ).encode()

    def done() -> bool:
        return time.perf_counter() - started >= MIN_SECONDS and stop.exists()

    async def reader() -> None:
        nonlocal errors
        connection = _Connection(host, port, request)
        while not done():
            begin = time.perf_counter()
            try:
                ok = await asyncio.wait_for(connection.get(), 60)
            except (
                OSError,
                asyncio.IncompleteReadError,
                asyncio.LimitOverrunError,
                TimeoutError,
                ValueError,
            ):
                ok = False
                connection.close()
            latencies.append((time.perf_counter() - begin) * 1000)
            errors += not ok
            await asyncio.sleep(THINK_SECONDS)
        connection.close()

    await asyncio.gather(*(reader() for _ in range(READERS)))
    seconds = time.perf_counter() - started
    out.write_text(json.dumps({"ms": latencies, "errors": errors, "seconds": seconds}))


if __name__ == "__main__":
    asyncio.run(_read(sys.argv[1], sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4])))
