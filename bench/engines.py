"""(f) Where the limit moves with Docker engines: controller CPU and engine CPU per device.

A fleet on the docker backend splits its work in two: the controller machine runs the
server, the workers and the simulated clients; the engines run the TPMs. Their CPU per
device says how many engine cores one controller can keep busy, which is how far a fleet
scales by adding engines before the controller is the limit.

Engine CPU is read from the engine's cgroup (the private engine puts its containers under
/eah-<name>, cgroup v1 cpuacct) plus the engine's own daemons (dockerd, with the port
proxies it waited for, containerd); it needs a local engine started by
scripts/docker-engine.sh, which this part starts itself when none is named.

A run with `--swarm` puts the clients on the engine too: each device (its TPM and its
client) is a Swarm task of the device image, and the controller keeps only the server, the
reading of results and the following of tasks. Its engine CPU then holds the clients' work
(and each task's interpreter start), which is what a controller no longer spends.

A last run spreads the same fleet over two private engines (as `harness run --engine A
--engine B` does) and shows the spread: devices per engine against their CPU weights, and
no container left on either.
"""

from __future__ import annotations

import os
import resource
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "docker-engine.sh"
# HARNESS_BENCH_ENGINE: another name, for two benchmarks side by side on one machine.
ENGINE_NAME = os.environ.get("HARNESS_BENCH_ENGINE", "bench")


@dataclass
class EngineFigures:
    devices: int
    matched: int
    wall: float
    controller_cpu: float  # the harness's processes: controller, server, workers, clients
    container_cpu: float  # the TPM containers
    daemon_cpu: float  # dockerd (and its port proxies), containerd

    @property
    def controller_per_device(self) -> float:
        return self.controller_cpu / self.devices

    @property
    def engine_per_device(self) -> float:
        return (self.container_cpu + self.daemon_cpu) / self.devices

    @property
    def cores_per_controller_core(self) -> float:
        """Engine cores one controller core keeps busy: engine CPU over controller CPU per device."""
        return self.engine_per_device / self.controller_per_device


def _clock_ticks(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
    # utime, stime, and the CPU of the children it waited for (cutime, cstime).
    return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def _daemon_seconds(state_dir: str) -> float:
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if state_dir in cmdline and cmdline.split(" ")[0].rsplit("/", 1)[-1] in ("dockerd", "containerd"):
                total += _clock_ticks(int(entry.name))
        except (OSError, IndexError, ValueError):
            continue
    return total


def _container_seconds(name: str) -> float:
    for controller in ("cpuacct", "cpu,cpuacct"):
        usage = Path(f"/sys/fs/cgroup/{controller}/eah-{name}/cpuacct.usage")
        if usage.exists():
            return int(usage.read_text()) / 1e9
    return 0.0


@contextmanager
def _private_engine(name: str = ENGINE_NAME, *, swarm: bool = False) -> Iterator[str]:
    command = ["bash", str(SCRIPT), "start", "--name", name] + (["--swarm"] if swarm else [])
    done = subprocess.run(command, capture_output=True, text=True)
    try:
        if done.returncode != 0:
            raise RuntimeError(
                done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "engine did not start"
            )
        lines = done.stdout.strip().splitlines()
        unavailable = [line for line in lines if line.startswith("HARNESS_SWARM_UNAVAILABLE=")]
        if swarm and unavailable:
            raise RuntimeError(unavailable[0].split("=", 1)[1])
        yield lines[-1].removeprefix("DOCKER_HOST=")
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop", "--name", name], capture_output=True, check=False)


def measure(scenario_path: Path, workers: int, backend: str = "docker") -> EngineFigures:
    from harness.fleet import RunOptions, run_fleet
    from harness.scenario import load_scenario
    from harness.tpm import BackendSpec

    scenario = load_scenario(scenario_path)
    with _private_engine(swarm=backend == "swarm") as url:
        previous = os.environ.get("DOCKER_HOST")
        os.environ["DOCKER_HOST"] = url
        state_dir = url.removeprefix("unix://").rsplit("/", 1)[0]
        try:
            me = resource.getrusage(resource.RUSAGE_SELF)
            kids = resource.getrusage(resource.RUSAGE_CHILDREN)
            containers, daemons = _container_seconds(ENGINE_NAME), _daemon_seconds(state_dir)
            started = time.perf_counter()
            result = run_fleet([scenario], RunOptions(workers=workers, backend=BackendSpec.parse(backend)))
            wall = time.perf_counter() - started
            containers = _container_seconds(ENGINE_NAME) - containers
            daemons = _daemon_seconds(state_dir) - daemons
            me2 = resource.getrusage(resource.RUSAGE_SELF)
            kids2 = resource.getrusage(resource.RUSAGE_CHILDREN)
        finally:
            if previous is None:
                os.environ.pop("DOCKER_HOST", None)
            else:
                os.environ["DOCKER_HOST"] = previous
    controller = (me2.ru_utime + me2.ru_stime - me.ru_utime - me.ru_stime) + (
        kids2.ru_utime + kids2.ru_stime - kids.ru_utime - kids.ru_stime
    )
    return EngineFigures(
        devices=result.summary.total,
        matched=result.summary.matched,
        wall=wall,
        controller_cpu=controller,
        container_cpu=containers,
        daemon_cpu=daemons,
    )


@dataclass
class SpreadFigures:
    devices: int
    matched: int
    wall: float
    weights: dict[str, int]  # engine URL -> CPUs (docker info NCPU)
    expected: dict[str, int]  # engine URL -> devices the weights call for
    placed: dict[str, int]  # engine URL -> devices whose TPM ran there (results' engine field)
    left: dict[str, int]  # engine URL -> containers of the harness still on it after the run


def measure_spread(scenario_path: Path, workers: int) -> SpreadFigures:
    from harness.fleet import RunOptions, run_fleet
    from harness.scenario import load_scenario
    from harness.tpm import RUN_LABEL, BackendSpec, parse_engine, preflight_all, spread

    scenario = load_scenario(scenario_path)
    with _private_engine(ENGINE_NAME) as first, _private_engine(f"{ENGINE_NAME}2") as second:
        engines = preflight_all([parse_engine(first), parse_engine(second)])
        started = time.perf_counter()
        result = run_fleet(
            [scenario], RunOptions(workers=workers, backend=BackendSpec("docker", engines=tuple(engines)))
        )
        wall = time.perf_counter() - started
        left = {}
        for engine in engines:
            client = engine.client()
            left[engine.url] = len(client.containers.list(all=True, filters={"label": RUN_LABEL}))
            client.close()
    weights = {e.url: e.weight or 1 for e in engines}
    shares = spread(result.summary.total, list(weights.values()))
    return SpreadFigures(
        devices=result.summary.total,
        matched=result.summary.matched,
        wall=wall,
        weights=weights,
        expected=dict(zip(weights, shares, strict=True)),
        placed={url: sum(1 for d in result.devices if d.engine == url) for url in weights},
        left=left,
    )


def _print_figures(out: Any, figures: EngineFigures) -> None:
    cores = os.cpu_count() or 1
    out(f"    {figures.matched}/{figures.devices} matched in {figures.wall:.1f} s")
    out(
        f"    controller CPU per device {figures.controller_per_device:.3f} s; engine CPU per device "
        f"{figures.engine_per_device:.3f} s (containers {figures.container_cpu / figures.devices:.3f} s, "
        f"daemons {figures.daemon_cpu / figures.devices:.3f} s)"
    )
    out(
        f"    one controller core drives {figures.cores_per_controller_core:.2f} engine cores; "
        f"this {cores}-core controller, about {figures.cores_per_controller_core * cores:.1f}"
    )


def bench_engines(
    scenario: Path, workers: int, say: object = print
) -> tuple[EngineFigures | None, EngineFigures | None]:
    """Run (f) and print its figures: (docker backend, swarm); None (with the reason printed)
    for a part where no private engine (or swarm) can run."""
    out = say if callable(say) else print
    out(f"(f) docker engines: {scenario.name} on a private engine, {workers} workers")
    try:
        figures: EngineFigures | None = measure(scenario, workers)
    except RuntimeError as exc:
        out(f"    skipped: {exc}")
        return None, None
    assert figures is not None
    _print_figures(out, figures)
    out(f"(f) swarm: {scenario.name} as tasks of a single-node swarm on a private engine, {workers} at once")
    swarm: EngineFigures | None = None
    try:
        swarm = measure(scenario, workers, "swarm")
    except RuntimeError as exc:
        out(f"    skipped: {exc}")
    if swarm is not None:
        _print_figures(out, swarm)
    out(f"(f) docker engines: {scenario.name} over two private engines, {workers} workers")
    try:
        two = measure_spread(scenario, workers)
    except RuntimeError as exc:
        out(f"    skipped: {exc}")
        return figures, swarm
    out(f"    {two.matched}/{two.devices} matched in {two.wall:.1f} s")
    for number, url in enumerate(two.weights, 1):
        out(
            f"    engine {number}: {two.placed[url]} devices (weights call for {two.expected[url]}, "
            f"{two.weights[url]} CPUs), {two.left[url]} containers left after the run"
        )
    return figures, swarm
