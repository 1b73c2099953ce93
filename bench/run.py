"""The harness's benchmarks: `make bench` (or `python -m bench`).

(a) fleet      a fleet of healthy devices end to end (real swtpm per device, the embedded
               server) with N workers: devices per minute, the TPM floor and floor_ratio.
(b) manufacture  making one TPM ready for the flow, ours vs `swtpm_setup --create-ek-cert`.
(c) evaluator  the server's evaluation of recorded evidence on one core, next to the cost of
               the signature and chain verifications it cannot avoid.
(d) scaling    the same fleet with 1 and with 2 workers.
(e) report     a 10,000-device results.json rendered to one HTML page.
(f) engines    controller CPU against engine CPU per device: the docker backend, then the
               devices as Swarm tasks (bench/engines.py); needs root for private engines.
(g) report_load  50 readers of the admin report (each reads again 0.1 s after an answer) while
               the (d) fleet enrolls against a server in its own process, alternately with and
               without them, twice: their p50/p99 latency, and the runs' wall with / without.
(h) trace      the same fleet with every device's TPM command trace kept, and without.

Definitions (kept as stated, whatever the results):
  TPM floor   = sum over devices of DeviceResult.tpm_seconds (time inside TPM commands,
                manufacturing included) / workers
  floor_ratio = fleet wall time / TPM floor
  manufacture_speedup = swtpm_setup seconds per TPM / ours per TPM
  scaling_2w  = wall(1 worker) / wall(2 workers), same fleet
  trace_ratio = wall(--trace all) / wall(--trace off), same fleet, runs alternated

The last line printed is the summary:
  devices_per_min=… floor_ratio=… manufacture_speedup=… evals_per_s=… crypto_evals_per_s=…
  evals_crypto_ratio=… scaling_2w=…
  docker_engine_cores_per_controller_core=… engine_cores_per_controller_core=… (the swarm run)
  report_p50_ms=… report_p99_ms=… report_load_ratio=…
  trace_ratio=…
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def _say(text: str = "") -> None:
    print(text, flush=True)


def _load() -> str:
    try:
        one, five, _ = os.getloadavg()
    except OSError:
        return "n/a"
    return f"{one:.2f}/{five:.2f}"


@contextmanager
def _tempdir(prefix: str) -> Iterator[Path]:
    # Short and under /tmp: swtpm's unix socket paths must fit in 108 bytes.
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp" if os.path.isdir("/tmp") else None))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


# --- (a) and (d): fleets ---------------------------------------------------------------------


@dataclass
class CPUUse:
    """CPU seconds spent while a block ran: by this process (the controller and its server
    thread), by its descendants (workers, swtpm processes), and by everything else on the machine."""

    controller: float = 0.0
    descendants: float = 0.0
    machine: float = 0.0  # every process, from /proc/stat; 0 where there is none

    @property
    def others(self) -> float:
        return max(self.machine - self.controller - self.descendants, 0.0) if self.machine else 0.0


def _machine_cpu_seconds() -> float:
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


@contextmanager
def _cpu_use() -> Iterator[CPUUse]:
    import resource

    use = CPUUse()
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    machine = _machine_cpu_seconds()
    yield use
    me2, kids2 = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    use.controller = (me2.ru_utime + me2.ru_stime) - (me.ru_utime + me.ru_stime)
    # Workers and their swtpm processes count once they have exited and been waited for, which
    # they all have when a fleet run returns.
    use.descendants = (kids2.ru_utime + kids2.ru_stime) - (kids.ru_utime + kids.ru_stime)
    use.machine = _machine_cpu_seconds() - machine if machine else 0.0


@dataclass
class FleetFigures:
    devices: int
    workers: int
    wall: float
    tpm_seconds: float
    device_seconds: float
    matched: int
    errors: int
    cpu: CPUUse

    @property
    def per_minute(self) -> float:
        return self.devices / self.wall * 60

    @property
    def floor(self) -> float:
        return self.tpm_seconds / self.workers

    @property
    def floor_ratio(self) -> float:
        return self.wall / self.floor


def run_fleet_figures(scenario_path: Path, workers: int, label: str) -> FleetFigures:
    from harness.fleet import FleetRun, RunOptions
    from harness.scenario import load_scenario

    scenario = load_scenario(scenario_path)
    done = 0
    step = max(1, scenario.device_count // 4)

    def progress(run: Any) -> None:
        nonlocal done
        done += 1
        if done % step == 0 and done < scenario.device_count:
            print(f"    {label}: {done}/{scenario.device_count} devices", file=sys.stderr, flush=True)

    with _cpu_use() as cpu:
        # The run object of `harness run` and the pytest plugin: the same devices, the same costs.
        result = FleetRun([scenario], RunOptions(workers=workers), progress=progress).run()
    summary = result.summary
    return FleetFigures(
        devices=summary.total,
        workers=workers,
        wall=summary.wall_seconds,
        tpm_seconds=sum(d.tpm_seconds for d in result.devices),
        device_seconds=sum(d.seconds for d in result.devices),
        matched=summary.matched,
        errors=summary.errors,
        cpu=cpu,
    )


def _cpu_line(figures: FleetFigures) -> str:
    cpu, wall = figures.cpu, figures.wall
    # With one worker the devices' clients run in this process too, not in a worker.
    here = "controller+server" if figures.workers > 1 else "controller+server+clients"
    there = "workers+swtpm" if figures.workers > 1 else "swtpm"
    text = f"CPU: {here} {cpu.controller / wall:.2f} cores, {there} {cpu.descendants / wall:.2f} cores"
    if cpu.machine:
        text += f", other processes on the machine {cpu.others / wall:.2f} cores"
    return text


def bench_fleet(scenario: Path, workers: int) -> FleetFigures:
    _say(f"(a) fleet: {scenario.name}, real swtpm per device, embedded server, {workers} workers")
    figures = run_fleet_figures(scenario, workers, "fleet")
    busy = figures.device_seconds / workers
    _say(f"    devices              {figures.devices} ({figures.matched} matched, {figures.errors} errors)")
    _say(f"    wall                 {figures.wall:.1f} s")
    _say(f"    devices per minute   {figures.per_minute:.1f}")
    _say(
        f"    TPM time             {figures.tpm_seconds:.1f} s summed over devices "
        f"({figures.tpm_seconds / figures.devices:.3f} s per device)"
    )
    _say(f"    TPM floor            {figures.floor:.1f} s (TPM time / {workers} workers)")
    _say(f"    floor_ratio          {figures.floor_ratio:.3f} (wall / TPM floor)")
    _say(f"    {_cpu_line(figures)}")
    _say(
        f"    where the rest goes  device flows outside TPM commands "
        f"{(figures.device_seconds - figures.tpm_seconds) / figures.devices:.3f} s per device; "
        f"workers idle or set-up {max(figures.wall - busy, 0):.1f} s of the wall"
    )
    return figures


def bench_scaling(scenario: Path) -> tuple[FleetFigures, FleetFigures]:
    _say(f"(d) scaling: {scenario.name}, 1 worker then 2 workers")
    one = run_fleet_figures(scenario, 1, "1 worker")
    two = run_fleet_figures(scenario, 2, "2 workers")
    for figures in (one, two):
        _say(
            f"    {figures.workers} worker(s)          wall {figures.wall:6.1f} s, "
            f"{figures.per_minute:6.1f} devices/min, TPM time {figures.tpm_seconds:6.1f} s, "
            f"floor_ratio {figures.floor_ratio:.3f}, {figures.matched}/{figures.devices} matched"
        )
        _say(f"                         {_cpu_line(figures)}")
    _say(f"    scaling_2w           {one.wall / two.wall:.3f} (wall 1 worker / wall 2 workers)")
    return one, two


# --- (b) manufacturing ----------------------------------------------------------------------


def _swtpm_setup_config(directory: Path) -> Path:
    """swtpm_setup and swtpm_localca configured to keep everything (CA included) in `directory`."""
    localca = shutil.which("swtpm_localca")
    if localca is None:
        raise RuntimeError("swtpm_localca is not installed (Debian package swtpm-tools)")
    ca = directory / "localca"
    ca.mkdir(parents=True)
    (directory / "swtpm-localca.conf").write_text(
        f"statedir = {ca}\nsigningkey = {ca}/signkey.pem\n"
        f"issuercert = {ca}/issuercert.pem\ncertserial = {ca}/certserial\n"
    )
    (directory / "swtpm-localca.options").write_text(
        "--platform-manufacturer Harness\n--platform-version 2.1\n--platform-model Bench\n"
    )
    config = directory / "swtpm_setup.conf"
    config.write_text(
        f"create_certs_tool = {localca}\n"
        f"create_certs_tool_config = {directory / 'swtpm-localca.conf'}\n"
        f"create_certs_tool_options = {directory / 'swtpm-localca.options'}\n"
    )
    return config


def _swtpm_setup(config: Path, state: Path, flags: list[str]) -> float:
    state.mkdir()
    start = time.perf_counter()
    done = subprocess.run(
        [
            "swtpm_setup", "--tpm2", "--tpmstate", str(state), *flags,
            "--config", str(config), "--overwrite", "--logfile", str(state.parent / f"{state.name}.log"),
        ],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"swtpm_setup failed ({done.returncode}): {done.stderr.strip()[-400:]}")
    return seconds


@dataclass
class ManufactureFigures:
    ours_marginal: list[float] = field(default_factory=list)
    ours_with_swtpm: list[float] = field(default_factory=list)
    theirs_platform: list[float] = field(default_factory=list)
    theirs_ek_only: list[float] = field(default_factory=list)

    @property
    def speedup(self) -> float:
        return statistics.median(self.theirs_platform) / statistics.median(self.ours_with_swtpm)


def bench_manufacture(count: int) -> ManufactureFigures:
    from harness.pki import TPMIdentity, create_vendor_cas, vendor_ca
    from harness.tpm import SwtpmBackend, TimedESAPI, TPMRequest, manufacture

    _say(f"(b) manufacturing one TPM, {count} each, interleaved (median per TPM)")
    figures = ManufactureFigures()
    now = dt.datetime.now(dt.UTC)
    identity = TPMIdentity("id:49465800", "SLB9672", "id:001A000D")
    with _tempdir("eah-bench-") as work:
        create_vendor_cas(work / "pki", now=now)
        issuer = vendor_ca(work / "pki", "infineon")
        config = _swtpm_setup_config(work / "setup")
        _swtpm_setup(config, work / "warm-up", ["--create-ek-cert", "--create-platform-cert"])  # makes its CA
        backend = SwtpmBackend()
        try:
            for index in range(count):
                # Ours, as a state ready to run: start a blank swtpm, manufacture, stop.
                start = time.perf_counter()
                tpm = backend.start(TPMRequest(), work)
                try:
                    marginal = time.perf_counter()
                    with TimedESAPI(tpm.tcti) as esapi:
                        manufacture(esapi, identity=identity, issuer=issuer, now=now)
                    figures.ours_marginal.append(time.perf_counter() - marginal)
                finally:
                    tpm.close()
                figures.ours_with_swtpm.append(time.perf_counter() - start)
                figures.theirs_platform.append(
                    _swtpm_setup(
                        config, work / f"platform-{index}", ["--create-ek-cert", "--create-platform-cert"]
                    )
                )
                figures.theirs_ek_only.append(
                    _swtpm_setup(config, work / f"ek-{index}", ["--create-ek-cert"])
                )
        finally:
            backend.close()

    def line(label: str, values: list[float]) -> None:
        _say(
            f"    {label:<58} median {statistics.median(values) * 1000:7.1f} ms "
            f"(min {min(values) * 1000:.1f}, max {max(values) * 1000:.1f})"
        )

    line("ours: swtpm start + EK + certificate to NV + stop", figures.ours_with_swtpm)
    line("ours, on an already running swtpm (what a device pays)", figures.ours_marginal)
    line("swtpm_setup --create-ek-cert --create-platform-cert", figures.theirs_platform)
    line("swtpm_setup --create-ek-cert", figures.theirs_ek_only)
    _say(
        "    (swtpm_setup always makes an RSA and an ECC EK; with --create-platform-cert it adds a "
        "platform certificate; ours makes the one EK the plan asks for)"
    )
    _say(f"    manufacture_speedup  {figures.speedup:.2f} (swtpm_setup with platform cert / ours with swtpm)")
    _say(
        f"    other ratios         vs --create-ek-cert only: "
        f"{statistics.median(figures.theirs_ek_only) / statistics.median(figures.ours_with_swtpm):.2f}; "
        f"vs ours on a running swtpm: "
        f"{statistics.median(figures.theirs_platform) / statistics.median(figures.ours_marginal):.2f}"
    )
    return figures


# --- (c) the evaluator ----------------------------------------------------------------------


@dataclass
class Recorded:
    evidence: Any
    policy: Any
    nonce: Any
    registered: dict[str, bytes]
    now: dt.datetime
    device: Any  # the DeviceResult of the recorded enrollment, a template for (e)


def record_enrollment() -> Recorded:
    """One real enrollment (swtpm, client, embedded server), kept as the server received it."""
    from harness.fleet import AdminReader, FleetEnvironment, check_device, plan_fleet, run_device
    from harness.fleet import record_enrollment as record
    from harness.pki import create_vendor_cas
    from harness.scenario import load_scenario
    from harness.server import EmbeddedServer, Principal, ServerConfig
    from harness.tpm import SwtpmBackend

    plans, expectations = plan_fleet([load_scenario(HERE / "fleet-40.yaml")])
    plan = plans[0]
    with _tempdir("eah-bench-") as work:
        roots = create_vendor_cas(work / "pki", now=dt.datetime.now(dt.UTC))
        config = ServerConfig(
            data_dir=work / "server",
            manufacturer_roots=roots,
            principals={"bench": Principal("bench", remote_tasks=True)},
        )
        with EmbeddedServer(config) as server:
            backend = SwtpmBackend()
            try:
                run = run_device(plan, FleetEnvironment(server.url, work / "pki", work), backend)
            finally:
                backend.close()
            with AdminReader(server.url, "bench") as admin:
                device = check_device(plan, expectations[plan.key], run, admin)
            if run.report is None:
                raise RuntimeError(f"the recorded device did not run: {run.error}")
            recorded = record(server, run.report)
            return Recorded(
                evidence=recorded.evidence,
                policy=recorded.policy,
                nonce=recorded.nonce,
                registered=recorded.registered,
                now=recorded.now,
                device=device,
            )


def _interleaved_rates(
    first: Callable[[], object], second: Callable[[], object], seconds: float
) -> tuple[float, float]:
    """Calls per second of each, timed in alternating slices of about 0.1 s, so that the
    machine's load (other jobs on a shared runner) weighs on both alike."""
    for _ in range(3):
        first()
        second()
    calls, spent = [0, 0], [0.0, 0.0]
    while sum(spent) < 2 * seconds:
        for index, work in enumerate((first, second)):
            start = time.perf_counter()
            while time.perf_counter() - start < 0.1:
                work()
                calls[index] += 1
            spent[index] += time.perf_counter() - start
    return calls[0] / spent[0], calls[1] / spent[1]


def _crypto_only(recorded: Recorded) -> Callable[[], None]:
    """The public-key operations an evaluation of this evidence cannot avoid, and nothing else."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
    from tpm2_pytss import TPMT_SIGNATURE

    from harness.verifier import parse_public, split_claim

    evidence = recorded.evidence
    aik_cert = x509.load_der_x509_certificate(evidence.aik_cert)
    root = next(r for r in recorded.policy.aik_roots if r.subject == aik_cert.issuer)
    aik_key: Any = parse_public(evidence.aik_pub).crypto_key()  # RSA for the recorded AIK
    claims = []
    for blob in (evidence.aik_claim, evidence.aad_claim):
        claim = split_claim(blob)
        signature, _ = TPMT_SIGNATURE.unmarshal(claim.signature)
        claims.append((claim.attest, bytes(signature.signature.rsassa.sig)))
    header_b64, payload_b64, signature_b64 = evidence.token.split(".")
    header = json.loads(base64.urlsafe_b64decode(header_b64 + "=" * (-len(header_b64) % 4)))
    token_key = recorded.policy.token_keys[header["kid"]]
    token_signed = f"{header_b64}.{payload_b64}".encode()
    token_signature = base64.urlsafe_b64decode(signature_b64 + "=" * (-len(signature_b64) % 4))

    def work() -> None:
        aik_cert.verify_directly_issued_by(root)  # the AIK certificate's chain (one link)
        for attest, signature in claims:  # the MDM and Entra keys' certifications by the AIK
            aik_key.verify(signature, attest, padding.PKCS1v15(), hashes.SHA256())
        token_key.verify(token_signature, token_signed, padding.PKCS1v15(), hashes.SHA256())

    return work


def bench_evaluator(recorded: Recorded, seconds: float) -> tuple[float, float]:
    from harness.verifier import evaluate

    _say("(c) evaluator: harness.verifier.evaluate on evidence recorded from a real enrollment, one core")

    def evaluation() -> object:
        return evaluate(
            recorded.evidence,
            recorded.policy,
            now=recorded.now,
            nonce=recorded.nonce,
            registered_keys=recorded.registered,
        )

    verdict: Any = evaluation()
    if verdict.status != "Attested":
        raise RuntimeError(f"the recorded evidence does not attest: {verdict.decision}")
    evals, crypto = _interleaved_rates(evaluation, _crypto_only(recorded), seconds)
    _say(f"    verdict              {verdict.status} ({len(verdict.checks)} checks)")
    _say(f"    evaluations          {evals:8.1f} per second ({1000 / evals:.3f} ms each)")
    _say(
        f"    crypto alone         {crypto:8.1f} per second ({1000 / crypto:.3f} ms: AIK certificate "
        "chain link, 2 certify signatures, token signature)"
    )
    _say(f"    crypto share         {evals / crypto * 100:.0f}% of an evaluation's time")
    return evals, crypto


# --- (e) a large report ---------------------------------------------------------------------


def bench_report(template: Any, devices: int) -> None:
    from harness.report import load_results, write_html, write_json
    from harness.results import Outcome, RunResult, summarise
    from harness.status import AttestationStatus, StatusDetail

    _say(f"(e) report: {devices:,}-device results.json rendered to one self-contained HTML page")
    details = [d for d in StatusDetail if d is not StatusDetail.NONE]
    results = []
    for index in range(devices):
        device = template.model_copy(deep=True)
        device.name = f"LAPTOP-{index:06d}"
        device.group = f"group-{index % 14}"
        if index % 7:
            device.actual = Outcome(
                status=AttestationStatus.NOT_ATTESTED, detail=details[index % len(details)]
            )
        device.matched = index % 50 != 0
        results.append(device)
    summary = summarise(
        results,
        scenarios=["bench-10k.yaml"],
        started_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        wall_seconds=0.0,
    )
    with _tempdir("eah-bench-") as work:
        write_json(RunResult(summary=summary, devices=results), work / "results.json")
        start = time.perf_counter()
        loaded = load_results(work / "results.json")
        loaded_at = time.perf_counter()
        write_html(loaded, work / "index.html")
        rendered = time.perf_counter()
        json_mb = (work / "results.json").stat().st_size / 1e6
        html_mb = (work / "index.html").stat().st_size / 1e6
    _say(f"    results.json         {json_mb:.1f} MB, read in {loaded_at - start:.2f} s")
    _say(f"    index.html           {html_mb:.1f} MB, rendered in {rendered - loaded_at:.2f} s")


# --- main -----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--fleet", type=Path, default=HERE / "fleet-200.yaml", help="scenario for (a)")
    parser.add_argument("--workers", type=int, default=2, help="workers for (a)")
    parser.add_argument("--scaling", type=Path, default=HERE / "fleet-40.yaml", help="scenario for (d)")
    parser.add_argument("--manufacture", type=int, default=10, help="TPMs each side for (b)")
    parser.add_argument("--eval-seconds", type=float, default=3.0, help="timing window for (c)")
    parser.add_argument("--report-devices", type=int, default=10_000, help="devices for (e)")
    parser.add_argument("--trace-fleet", type=Path, default=HERE / "fleet-40.yaml", help="scenario for (h)")
    parser.add_argument("--only", default="abcdefgh", help="which parts to run, e.g. 'bc' (default: all)")
    args = parser.parse_args(argv)
    if shutil.which("swtpm") is None:
        _say("swtpm is not installed; run 'make setup'")
        return 2

    _say(
        f"harness benchmark: {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}, load average {_load()} at start"
    )
    summary: dict[str, str] = {}
    started = time.perf_counter()
    if "a" in args.only:
        fleet = bench_fleet(args.fleet, args.workers)
        summary["devices_per_min"] = f"{fleet.per_minute:.1f}"
        summary["floor_ratio"] = f"{fleet.floor_ratio:.3f}"
    if "b" in args.only:
        made = bench_manufacture(args.manufacture)
        summary["manufacture_speedup"] = f"{made.speedup:.2f}"
    recorded = None
    if "c" in args.only or "e" in args.only:
        recorded = record_enrollment()
    if "c" in args.only and recorded is not None:
        evals, crypto = bench_evaluator(recorded, args.eval_seconds)
        summary["evals_per_s"] = f"{evals:.1f}"
        summary["crypto_evals_per_s"] = f"{crypto:.1f}"
        summary["evals_crypto_ratio"] = f"{evals / crypto:.3f}"
    if "d" in args.only:
        one, two = bench_scaling(args.scaling)
        summary["scaling_2w"] = f"{one.wall / two.wall:.3f}"
    if "e" in args.only and recorded is not None:
        bench_report(recorded.device, args.report_devices)
    if "f" in args.only:
        from bench.engines import bench_engines

        docker, swarm = bench_engines(args.scaling, args.workers, _say)
        if docker is not None:
            summary["docker_engine_cores_per_controller_core"] = f"{docker.cores_per_controller_core:.2f}"
        # With the clients in Swarm tasks the controller keeps the server and the results only.
        if swarm is not None:
            summary["engine_cores_per_controller_core"] = f"{swarm.cores_per_controller_core:.2f}"
    if "g" in args.only:
        from bench.report_load import bench_report_load

        load = bench_report_load(args.scaling, args.workers, _say)
        summary["report_p50_ms"] = f"{load.p50_ms:.1f}"
        summary["report_p99_ms"] = f"{load.p99_ms:.1f}"
        summary["report_load_ratio"] = f"{load.load_ratio:.3f}"
    if "h" in args.only:
        from bench.trace import bench_trace

        summary["trace_ratio"] = f"{bench_trace(args.trace_fleet, args.workers, _say):.3f}"
    _say(f"benchmark took {time.perf_counter() - started:.0f} s; load average {_load()} at the end")
    order: tuple[str, ...] = (
        "devices_per_min",
        "floor_ratio",
        "manufacture_speedup",
        "evals_per_s",
        "crypto_evals_per_s",
    )
    order += ("evals_crypto_ratio", "scaling_2w")
    order += ("docker_engine_cores_per_controller_core", "engine_cores_per_controller_core")
    order += ("report_p50_ms", "report_p99_ms", "report_load_ratio")
    order += ("trace_ratio",)
    _say(" ".join(f"{key}={summary.get(key, 'n/a')}" for key in order))
    return 0
