"""The docker TPM backend, against a real Docker engine.

`make test` runs the suite under a private engine (scripts/docker-engine.sh run), which
sets DOCKER_HOST; the tests that need an engine skip with the reason only where none can
run. Tests run side by side on that engine, so each checks only its own run's containers.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import docker.errors
import pytest

from harness.errors import BackendUnavailable, EngineFileError, HarnessError, TPMError
from harness.fleet import FleetEnvironment, FleetSession, RunOptions, run_fleet
from harness.scenario import parse_scenario
from harness.tpm import (
    RUN_LABEL,
    BackendSpec,
    DockerBackend,
    Engine,
    EnginePoolBackend,
    TimedESAPI,
    TPMRequest,
    engine_backend,
    engine_unavailable,
    parse_engine,
    parse_engine_file,
    preflight,
    preflight_all,
    remove_run_containers,
    remove_run_everywhere,
    schedule,
    spread,
)
from harness.tpm._docker import connect, image_name, published_port

ROOT = Path(__file__).resolve().parent.parent
ENGINE_SCRIPT = ROOT / "scripts" / "docker-engine.sh"

ONE_LAPTOP = """
name: docker-one
seed: 5
groups:
  - name: laptop
    platform: physical
    expect: {status: Attested}
"""


def _engine_skip_reason() -> str:
    reason = os.environ.get("HARNESS_DOCKER_UNAVAILABLE") or engine_unavailable()
    if reason:
        return f"{reason} (make test starts a private engine: scripts/docker-engine.sh run -- pytest)"
    client = connect()
    try:
        client.images.get(image_name())
    except docker.errors.ImageNotFound:
        return f"image {image_name()} is not built (scripts/docker-engine.sh start builds it)"
    finally:
        client.close()
    return ""


ENGINE_SKIP = _engine_skip_reason()
needs_engine = pytest.mark.skipif(bool(ENGINE_SKIP), reason=ENGINE_SKIP or "engine available")
# The run labels of this module's own tests; anything else on the engine is another run's.
OWN_RUNS = {
    "fleet-one", "bind-default", "bind-named", "leftover-ours", "leftover-theirs", "two-engines",
    "two-engine-run", "two-engine-kill", "two-engine-pytest",
    # tests/test_swarm.py's runs, whose task containers carry the same label on the same engine
    "swarm-fleet", "swarm-kill-restart", "swarm-kill-error", "swarm-ctrl-c",
}  # fmt: skip


def _containers(client: Any, run_id: str | None = None) -> list[dict[str, Any]]:
    """The engine's list entries (id, labels); a plain list, so that a container removed while
    the list is read (the harness cleaning up) cannot make the listing itself fail."""
    selector = f"{RUN_LABEL}={run_id}" if run_id else RUN_LABEL
    return list(client.api.containers(all=True, filters={"label": selector}))


@pytest.fixture
def client() -> Iterator[Any]:
    engine_client = connect()
    yield engine_client
    engine_client.close()


# --- against the engine DOCKER_HOST names ----------------------------------------------------


@needs_engine
def test_a_device_attests_with_its_tpm_in_a_container_and_no_container_is_left(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("harness.fleet._runner.new_run_id", lambda: "fleet-one")
    result = run_fleet([parse_scenario(ONE_LAPTOP, "docker-one.yaml")], RunOptions(backend="docker"))
    device = result.devices[0]
    assert device.matched, (device.error, device.evidence.decision)
    assert _containers(client, "fleet-one") == []


@needs_engine
def test_device_ports_are_published_on_loopback_only(client: Any, tmp_path: Path) -> None:
    backend = DockerBackend(run_id="bind-default")
    try:
        tpm = backend.start(TPMRequest(), tmp_path)
        attrs = client.containers.get(tpm.container_id).attrs
        asked = attrs["HostConfig"]["PortBindings"]
        published = attrs["NetworkSettings"]["Ports"]
        for port in ("2321/tcp", "2322/tcp"):
            assert [b["HostIp"] for b in asked[port]] == ["127.0.0.1"]
            assert [b["HostIp"] for b in published[port]] == ["127.0.0.1"]
    finally:
        backend.close()


@needs_engine
def test_a_named_bind_address_is_used_and_the_tpm_answers_there(
    client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HARNESS_DOCKER_BIND", "127.0.0.2")
    backend = DockerBackend(run_id="bind-named")
    try:
        tpm = backend.start(TPMRequest(), tmp_path)
        published = client.containers.get(tpm.container_id).attrs["NetworkSettings"]["Ports"]
        assert [b["HostIp"] for b in published["2321/tcp"]] == ["127.0.0.2"]
        assert tpm.tcti[1].startswith("host=127.0.0.2,")
        with TimedESAPI(tpm.tcti) as esapi:
            assert len(esapi.get_random(8)) == 8
    finally:
        backend.close()


@needs_engine
def test_leftovers_of_one_run_are_removed_by_label_and_others_are_kept(client: Any, tmp_path: Path) -> None:
    ours = DockerBackend(run_id="leftover-ours")
    theirs = DockerBackend(run_id="leftover-theirs")
    try:
        ours.start(TPMRequest(), tmp_path)
        theirs.start(TPMRequest(), tmp_path)
        # As if its worker were killed: the container outlives the object that started it.
        assert remove_run_containers("leftover-ours") == 1
        assert _containers(client, "leftover-ours") == []
        assert len(_containers(client, "leftover-theirs")) == 1
    finally:
        ours.close()
        theirs.close()
    assert _containers(client, "leftover-theirs") == []


def _harness(*arguments: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", *arguments],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@needs_engine
def test_a_missing_image_stops_the_run_before_it_starts_with_exit_2(tmp_path: Path) -> None:
    started = time.monotonic()
    done = _harness(
        "run", "scenarios/smoke.yaml", "--backend", "docker", "--out", str(tmp_path),
        env={"HARNESS_SWTPM_IMAGE": "enrollment-harness/absent:1"},
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "image enrollment-harness/absent:1 is not on the engine" in done.stderr
    assert "swtpm-images/" in done.stderr
    assert time.monotonic() - started < 20  # one check, not one 30 s timeout per device


def test_without_an_engine_the_run_exits_2_with_the_reason(tmp_path: Path) -> None:
    done = _harness(
        "run", "scenarios/smoke.yaml", "--backend", "docker", "--out", str(tmp_path),
        env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"},
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "no Docker engine answers (unix:///nonexistent/docker.sock)" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_remote_engine_on_its_loopback_is_refused_with_what_to_do() -> None:
    with pytest.raises(BackendUnavailable, match="HARNESS_DOCKER_BIND"):
        preflight(engine=Engine(url="tcp://tpm-farm.example:2376"))


@needs_engine
def test_a_crashed_worker_leaves_no_container(client: Any, tmp_path: Path) -> None:
    scenario = tmp_path / "many.yaml"
    scenario.write_text(
        "name: many\ngroups:\n  - name: laptops\n    count: 20\n    expect: {status: Attested}\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "harness", "run", str(scenario), "--backend", "docker",
         "--out", str(tmp_path / "out"), "--workers", "2"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not (runs := {c["Labels"][RUN_LABEL] for c in _containers(client)} - OWN_RUNS):
        assert process.poll() is None, process.stderr.read() if process.stderr else b""
        assert time.monotonic() < deadline, "the harness started no container"
        time.sleep(0.1)
    (run_id,) = runs
    workers = _workers(process.pid)
    assert workers, "the run has no worker processes"
    os.kill(workers[0], signal.SIGKILL)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 2, stderr.decode()
    assert b"worker died" in stderr
    assert _containers(client, run_id) == []


def _workers(pid: int) -> list[int]:
    """The run's device workers: its descendants without children, but for the resource tracker
    (with a forkserver, workers are its children, not the harness's)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(") ", 1)[1].split()[1])
            except OSError:
                continue
    descendants: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier}
        descendants |= frontier
    leaves = descendants - set(parents[d] for d in descendants if d in parents)
    return sorted(p for p in leaves if b"resource_tracker" not in Path(f"/proc/{p}/cmdline").read_bytes())


# --- two engines: the second is a private engine this test starts -----------------------------


@pytest.fixture(scope="module")
def second_engine() -> Iterator[Engine]:
    # Named after this process: each xdist worker (and each engineer's test run) gets its own.
    name = f"t{os.getpid() % 10_000_000}"
    done = subprocess.run(
        ["bash", str(ENGINE_SCRIPT), "start", "--name", name], capture_output=True, text=True, timeout=300
    )
    try:
        assert done.returncode == 0, done.stderr
        host = done.stdout.strip().splitlines()[-1]
        assert host.startswith("DOCKER_HOST=")
        yield Engine(url=host.removeprefix("DOCKER_HOST="))
    finally:
        subprocess.run(["bash", str(ENGINE_SCRIPT), "stop", "--name", name], check=False, timeout=120)


@needs_engine
def test_a_fleet_over_two_engines_uses_both_by_weight_and_cleans_both(
    second_engine: Engine, tmp_path: Path
) -> None:
    first = parse_engine(os.environ.get("DOCKER_HOST", ""))
    engines = preflight_all([first, second_engine])
    assert [e.weight for e in engines] == [os.cpu_count()] * 2  # NCPU of each engine
    pool = EnginePoolBackend(
        "two-engines", [Engine(e.url, weight=w) for e, w in zip(engines, (2, 1), strict=True)]
    )
    try:
        tpms = [pool.start(TPMRequest(), tmp_path) for _ in range(6)]
        assert [t.engine_url for t in tpms].count(first.url) == 4
        assert [t.engine_url for t in tpms].count(second_engine.url) == 2
        with TimedESAPI(tpms[-1].tcti) as esapi:  # a TPM on the second engine answers
            assert len(esapi.get_random(4)) == 4
        # A worker killed now would leave these: the run's cleanup finds them on both engines.
        removed = remove_run_everywhere("two-engines", engines)
        assert removed == {first.url: 4, second_engine.url: 2}
    finally:
        pool.close()
    assert remove_run_everywhere("two-engines", engines) == {first.url: 0, second_engine.url: 0}


def _run_containers(engines: list[Engine], run_id: str) -> dict[str, int]:
    counts = {}
    for engine in engines:
        engine_client = engine.client()
        counts[engine.url] = len(_containers(engine_client, run_id))
        engine_client.close()
    return counts


FOUR_LAPTOPS = "name: four\ngroups:\n  - name: laptops\n    count: 4\n    expect: {status: Attested}\n"


@needs_engine
def test_harness_run_with_two_engines_puts_devices_on_both_and_reports_each_device_engine(
    second_engine: Engine, tmp_path: Path
) -> None:
    first = parse_engine(os.environ.get("DOCKER_HOST", ""))
    scenario = tmp_path / "four.yaml"
    scenario.write_text(FOUR_LAPTOPS)
    done = _harness(
        "run", str(scenario), "--engine", first.url, "--engine", second_engine.url,
        "--workers", "2", "--out", str(tmp_path / "out"),
        env={"HARNESS_RUN_ID": "two-engine-run"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"TPMs: docker on 2 engine(s): {first.url}, {second_engine.url}" in done.stderr
    devices = json.loads((tmp_path / "out" / "results.json").read_text())["devices"]
    assert {d["engine"] for d in devices} == {first.url, second_engine.url}
    junit = ET.parse(tmp_path / "out" / "junit.xml").getroot()
    engines_in_junit = {p.get("value") for p in junit.iter("property") if p.get("name") == "engine"}
    assert engines_in_junit == {first.url, second_engine.url}
    assert _run_containers([first, second_engine], "two-engine-run") == {first.url: 0, second_engine.url: 0}


@needs_engine
def test_a_killed_worker_of_a_two_engine_run_leaves_no_container_on_either(
    second_engine: Engine, tmp_path: Path
) -> None:
    first = parse_engine(os.environ.get("DOCKER_HOST", ""))
    engines = [first, second_engine]
    scenario = tmp_path / "many.yaml"
    scenario.write_text(FOUR_LAPTOPS.replace("count: 4", "count: 20"))
    process = subprocess.Popen(
        [sys.executable, "-m", "harness", "run", str(scenario), "--engine", first.url,
         "--engine", second_engine.url, "--out", str(tmp_path / "out"), "--workers", "2"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        env={**os.environ, "HARNESS_RUN_ID": "two-engine-kill"},
    )  # fmt: skip
    deadline = time.monotonic() + 90
    # Both engines hold containers of the run at once: then a worker dies.
    while 0 in _run_containers(engines, "two-engine-kill").values():
        assert process.poll() is None, process.stderr.read() if process.stderr else b""
        assert time.monotonic() < deadline, "the run did not use both engines"
        time.sleep(0.1)
    os.kill(_workers(process.pid)[0], signal.SIGKILL)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 2, stderr.decode()
    assert b"worker died" in stderr
    assert _run_containers(engines, "two-engine-kill") == {first.url: 0, second_engine.url: 0}


@needs_engine
def test_pytest_workers_get_the_engines_from_the_controller(second_engine: Engine, tmp_path: Path) -> None:
    first = parse_engine(os.environ.get("DOCKER_HOST", ""))
    scenario = tmp_path / "four.yaml"
    scenario.write_text(FOUR_LAPTOPS)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", str(scenario), "-n", "2", "-p", "no:cacheprovider",
         "--harness-engine", first.url, "--harness-engine", second_engine.url,
         "--harness-out", str(tmp_path / "out"), "-q"],
        cwd=ROOT, capture_output=True, text=True, timeout=180,
        env={**os.environ, "HARNESS_RUN_ID": "two-engine-pytest"},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    devices = json.loads((tmp_path / "out" / "results.json").read_text())["devices"]
    assert len(devices) == 4
    assert {d["engine"] for d in devices} == {first.url, second_engine.url}
    assert _run_containers([first, second_engine], "two-engine-pytest") == {
        first.url: 0,
        second_engine.url: 0,
    }


# --- pure logic ---------------------------------------------------------------------------------


def test_an_unpublished_port_is_a_clear_error_not_a_timeout() -> None:
    attrs = {"NetworkSettings": {"Ports": {}}, "HostConfig": {"NetworkMode": "host"}}
    with pytest.raises(TPMError, match=r"did not publish port 2321.*network mode 'host'"):
        published_port(attrs, 2321, 40000)
    published = {"NetworkSettings": {"Ports": {"2321/tcp": [{"HostIp": "127.0.0.1", "HostPort": "40000"}]}}}
    published_port(published, 2321, 40000)
    with pytest.raises(TPMError):
        published_port(published, 2321, 40002)


def test_engines_are_parsed_with_their_options_and_bad_ones_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HARNESS_DOCKER_BIND", raising=False)
    monkeypatch.delenv("HARNESS_DOCKER_PUBLISH_HOST", raising=False)
    monkeypatch.delenv("DOCKER_TLS_VERIFY", raising=False)
    local = parse_engine("unix:///run/docker.sock")
    # No weight given: pre-flight measures it (docker info NCPU).
    assert (local.bind, local.host, local.weight, local.tls) == ("127.0.0.1", "127.0.0.1", None, None)
    remote = parse_engine("tcp://tpm-farm.example:2376,bind=10.0.0.7,weight=8,tls=/certs")
    assert (remote.bind, remote.host, remote.weight) == ("10.0.0.7", "10.0.0.7", 8)
    assert remote.tls is not None and remote.tls.ca_cert == Path("/certs/ca.pem")
    assert parse_engine("ssh://ci@builder.example,bind=0.0.0.0").host == "builder.example"
    monkeypatch.setenv("HARNESS_DOCKER_PUBLISH_HOST", "10.9.9.9")
    assert parse_engine("ssh://ci@builder.example").host == "10.9.9.9"
    for bad, message in [
        ("docker.sock", "expected a URL"),
        ("tcp://h:1,weight=0", "weight must be"),
        ("tcp://h:1,bind=farm", "bind must be an IP address"),
        ("tcp://h:1,colour=red", "unknown option 'colour'"),
    ]:
        with pytest.raises(HarnessError, match=message):
            parse_engine(bad)


def test_devices_are_spread_by_weight_and_every_engine_gets_its_share_early() -> None:
    assert spread(10, [2, 2]) == [5, 5]
    assert spread(10, [8, 2]) == [8, 2]
    assert spread(7, [1, 1, 1]) == [3, 2, 2]
    assert sum(spread(10_001, [16, 4, 2])) == 10_001
    order = schedule([3, 1])
    assert sorted(order) == [0, 0, 0, 1] and order[:2].count(1) <= 1
    assert schedule([1, 1]) == [0, 1]
    with pytest.raises(HarnessError):
        spread(3, [])


@needs_engine
def test_a_container_tpm_left_unstarted_through_its_control_channel_is_not_ready(client: Any) -> None:
    # The container publishes swtpm's control channel next to the TPM's port, as a local
    # swtpm does on its '.ctrl' socket: the same platform control works through both.
    scenario = parse_scenario(
        """
name: docker-not-started
seed: 5
groups:
  - name: laptop
    platform: physical
    tpm: {state: not-started}
    expect: {status: Not attested, detail: "TPM isn't ready"}
""",
        "docker-not-started.yaml",
    )
    result = run_fleet([scenario], RunOptions(backend="docker"))
    device = result.devices[0]
    assert device.matched, (device.error, device.evidence.decision)
    assert any(s.step == "world.tpm.not-started" and s.ok for s in device.evidence.client_steps)


def test_an_engines_file_lists_engines_and_its_errors_name_file_line_and_field(tmp_path: Path) -> None:
    engines = parse_engine_file(
        "engines:\n"
        "  - unix:///run/docker.sock\n"
        "  - url: tcp://tpm-farm.example:2376\n"
        "    bind: 10.0.0.7\n"
        "    weight: 8\n"
        "    tls: certs/farm\n",
        "fleet-engines.yaml",
        base=tmp_path,
    )
    assert [e.url for e in engines] == ["unix:///run/docker.sock", "tcp://tpm-farm.example:2376"]
    farm = engines[1]
    assert (farm.bind, farm.weight) == ("10.0.0.7", 8)
    assert farm.tls is not None and farm.tls.ca_cert == tmp_path / "certs" / "farm" / "ca.pem"
    for text, message in [
        ("engines:\n  - url: tcp://h:1\n    colour: red\n", "e.yaml:3: engines[0].colour: unknown field"),
        ("engines:\n  - tcp://h:1\n  - tcp://h:1,bind=10.0.0.1\n", "e.yaml:3: engines[1]: engine"),
        ("engines:\n  - url: tcp://h:1\n    weight: 0\n", "e.yaml:3: engines[0].weight:"),
        ("engines:\n  - url: tcp://h:1\n    bind: farm\n", "e.yaml:2: engines[0]: engine 'tcp://h:1,bind=farm'"),
        ("engines:\n  - 7\n", "e.yaml:2: engines[0]: an engine is a URL or a mapping"),
        ("engines: []\n", "e.yaml:1: engines:"),
        ("- tcp://h:1\n", "e.yaml:1: an engines file is a mapping"),
    ]:  # fmt: skip
        with pytest.raises(EngineFileError) as caught:
            parse_engine_file(text, "e.yaml")
        assert str(caught.value).startswith(message), str(caught.value)


def test_the_engines_and_their_weights_travel_to_workers_with_the_session(tmp_path: Path) -> None:
    engines = (
        parse_engine("unix:///run/a.sock,weight=2"),
        parse_engine("tcp://farm.example:2376,bind=10.0.0.7,publish-host=farm.example,weight=16,tls=/certs"),
    )
    session = FleetSession(
        env=FleetEnvironment(server_url="http://127.0.0.1:1", pki_dir=tmp_path, workdir=tmp_path),
        admin_url="http://127.0.0.1:1",
        admin_token="t",
        run_id="r",
        backend=BackendSpec("docker", engines=engines),
    )
    assert FleetSession.from_dict(session.to_dict()).backend == session.backend


def test_engines_imply_docker_and_another_backend_or_a_repeated_engine_is_refused() -> None:
    engine = parse_engine("unix:///run/a.sock")
    assert engine_backend(None, [engine]) == BackendSpec("docker", engines=(engine,))
    assert engine_backend(BackendSpec("process"), []) == BackendSpec("process")
    with pytest.raises(HarnessError, match="the TPM backend is 'process', not docker"):
        engine_backend(BackendSpec("process"), [engine])
    with pytest.raises(HarnessError, match="named twice"):
        engine_backend(None, [engine, parse_engine("unix:///run/a.sock,weight=3")])


@pytest.mark.parametrize(
    ("arguments", "env", "message"),
    [
        (["--engine", "unix:///run/a.sock", "--backend", "process"], {}, "not docker"),
        (["--engine", "docker.sock"], {}, "expected a URL"),
        (["--backend", "process", "--server-bind", "farm"], {}, "must be an IP address, not 'farm'"),
        (["--backend", "process"], {"HARNESS_RUN_ID": "a b"}, "HARNESS_RUN_ID must be"),
    ],
)
def test_bad_engine_and_server_options_exit_2_with_the_reason(
    tmp_path: Path, arguments: list[str], env: dict[str, str], message: str
) -> None:
    done = _harness("run", "scenarios/smoke.yaml", "--out", str(tmp_path), *arguments, env=env)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr
