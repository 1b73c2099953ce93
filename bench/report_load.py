"""(g) report under load: admins reading the report while a fleet enrolls.

The same fleet runs twice against a reference server in its own process (`harness serve`, a
fresh data directory each time): once alone, once while 50 concurrent readers in another
process fetch the report's first page in a closed loop, for at least 30 s and as long as the
fleet runs. Figures: the readers' latency (p50, p99, max), their request count and errors, and
load_ratio = wall with readers / wall without.

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

REPORT = "/admin/reports/device-attestation"
READERS = 50
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
        with _server(Path(work) / "alone") as (url, token, pki):
            alone = _run_fleet(scenario, workers, url, token, pki)
        say(f"    without readers      wall {alone:.1f} s")
        latencies = Path(work) / "latencies.json"
        stop = Path(work) / "fleet-done"
        with _server(Path(work) / "loaded") as (url, token, pki):
            readers = subprocess.Popen(
                [sys.executable, "-m", "bench.report_load", url, token, str(stop), str(latencies)],
                cwd=ROOT,
            )
            try:
                time.sleep(1.0)  # the readers are connected before the first device starts
                loaded = _run_fleet(scenario, workers, url, token, pki)
            finally:
                stop.touch()
                readers.wait(timeout=MIN_SECONDS + 120)
        measured = json.loads(latencies.read_text())
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
    say(f"    with {READERS} readers      wall {loaded:.1f} s; load_ratio {ratio:.3f} (target <= 1.3)")
    say(
        f"    report reads         {figures.requests} in {figures.reader_seconds:.1f} s, "
        f"{figures.errors} errors; p50 {figures.p50_ms:.1f} ms, p99 {figures.p99_ms:.1f} ms "
        f"(target < 300), max {figures.max_ms:.1f} ms"
    )
    return figures


async def _read(url: str, token: str, stop: Path, out: Path) -> None:
    import httpx

    latencies: list[float] = []
    errors = 0
    started = time.perf_counter()

    def done() -> bool:
        return time.perf_counter() - started >= MIN_SECONDS and stop.exists()

    async def reader(client: httpx.AsyncClient) -> None:
        nonlocal errors
        while not done():
            begin = time.perf_counter()
            try:
                response = await client.get(REPORT, headers={"Authorization": f"Bearer {token}"})
                ok = response.status_code == 200
            except httpx.HTTPError:
                ok = False
            latencies.append((time.perf_counter() - begin) * 1000)
            errors += not ok

    limits = httpx.Limits(max_connections=READERS, max_keepalive_connections=READERS)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
        await asyncio.gather(*(reader(client) for _ in range(READERS)))
    seconds = time.perf_counter() - started
    out.write_text(json.dumps({"ms": latencies, "errors": errors, "seconds": seconds}))


if __name__ == "__main__":
    asyncio.run(_read(sys.argv[1], sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4])))
