"""The docker TPM backend.

With a Docker engine (DOCKER_HOST or the local socket) and the image built from
swtpm-images/, devices run their TPM in labelled containers. Without one, those tests
skip with the reason, and a stand-in engine runs the very command line the backend
gives the image as a local swtpm, so that the backend's ports, TCTI, labels and clean-up
are still exercised against a real swtpm.
"""

from __future__ import annotations

import datetime as dt
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker.errors
import pytest

from harness.fleet import RunOptions, run_fleet
from harness.scenario import parse_scenario
from harness.tcg import TPMIdentity
from harness.tpm import TimedESAPI, TPMRequest, manufacture
from harness.tpm import _docker as backend_module
from harness.tpm._docker import (
    RUN_LABEL,
    DockerBackend,
    engine_unavailable,
    image_name,
    remove_run_containers,
    swtpm_arguments,
)

from .conftest import needs_swtpm

ONE_LAPTOP = """
name: docker-one
seed: 5
groups:
  - name: laptop
    platform: physical
    expect: {status: Attested}
"""


def _engine_skip_reason() -> str:
    reason = engine_unavailable()
    if reason:
        return reason
    client = backend_module.connect()
    try:
        client.images.get(image_name())
    except docker.errors.ImageNotFound:
        return f"image {image_name()} is not built (docker build -t {image_name()} swtpm-images/)"
    finally:
        client.close()
    return ""


ENGINE_SKIP = _engine_skip_reason()
needs_engine = pytest.mark.skipif(bool(ENGINE_SKIP), reason=ENGINE_SKIP or "engine available")


# --- with a real engine ---------------------------------------------------------------------


@needs_engine
def test_a_device_attests_with_its_tpm_in_a_container_and_no_container_is_left() -> None:
    result = run_fleet([parse_scenario(ONE_LAPTOP, "docker-one.yaml")], RunOptions(backend="docker"))
    device = result.devices[0]
    assert device.matched, (device.error, device.evidence.decision)
    client = backend_module.connect()
    try:
        assert client.containers.list(all=True, filters={"label": RUN_LABEL}) == []
    finally:
        client.close()


@needs_engine
def test_leftover_containers_are_removed_by_run_label(tmp_path: Path) -> None:
    backend = DockerBackend(run_id="leftover-test")
    try:
        tpm = backend.start(TPMRequest(), tmp_path)
        assert tpm.tcti[0] == "swtpm"
        # As if its worker were killed: the container outlives the object that started it.
        assert remove_run_containers("leftover-test") == 1
    finally:
        backend.close()


def test_without_an_engine_the_reason_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:1")
    reason = engine_unavailable()
    assert "no Docker engine answers (tcp://127.0.0.1:1)" in reason


def test_published_ports_are_reached_on_the_engines_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HARNESS_DOCKER_PUBLISH_HOST", raising=False)
    monkeypatch.setenv("DOCKER_HOST", "tcp://tpm-farm.example:2376")
    assert backend_module.engine_host() == "tpm-farm.example"
    monkeypatch.setenv("DOCKER_HOST", "ssh://ci@builder.example")
    assert backend_module.engine_host() == "builder.example"
    monkeypatch.setenv("DOCKER_HOST", "unix:///var/run/docker.sock")
    assert backend_module.engine_host() == "127.0.0.1"
    monkeypatch.setenv("HARNESS_DOCKER_PUBLISH_HOST", "10.0.0.7")
    assert backend_module.engine_host() == "10.0.0.7"


# --- a stand-in engine: the image's command line, run as a local swtpm ----------------------


class _Container:
    def __init__(
        self, engine: _Engine, command: list[str], labels: dict[str, str], ports: dict[str, int]
    ) -> None:
        self.engine = engine
        self.id = f"fake{len(engine.containers):04d}"
        self.short_id = self.id
        self.labels = labels
        self.status = "created"
        self._state = Path(tempfile.mkdtemp(prefix="tpm-", dir=engine.workdir))
        (self._state / "state").mkdir()
        # The engine maps the container's ports to the host's; here swtpm binds the host ports.
        published = {int(k.split("/")[0]): v for k, v in ports.items()}
        self.command = [
            arg.replace("dir=/tpm/state", f"dir={self._state / 'state'}")
            .replace("port=2321", f"port={published[2321]}")
            .replace("port=2322", f"port={published[2322]}")
            for arg in command
        ]
        self.process: subprocess.Popen[bytes] | None = None

    def put_archive(self, path: str, data: bytes) -> None:
        raise AssertionError("not used by these tests")

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["swtpm", "socket", *self.command], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self.status = "running"

    def reload(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            self.status = "exited"

    def logs(self, tail: int = 20) -> bytes:
        return b""

    def remove(self, force: bool = False) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self._state, ignore_errors=True)
        self.engine.containers.pop(self.id, None)


class _Containers:
    def __init__(self, engine: _Engine) -> None:
        self.engine = engine

    def create(
        self, image: str, *, command: list[str], labels: dict[str, str], ports: dict[str, int], **_: Any
    ) -> _Container:
        self.engine.created += 1
        if self.engine.busy_ports_left > 0:
            self.engine.busy_ports_left -= 1
            raise docker.errors.APIError("Bind for 0.0.0.0:2321 failed: port is already allocated")
        for port in ports.values():
            with socket.socket() as probe:
                try:
                    probe.bind(("127.0.0.1", port))
                except OSError as exc:
                    raise docker.errors.APIError(f"port is already allocated: {exc}") from exc
        container = _Container(self.engine, command, labels, ports)
        self.engine.containers[container.id] = container
        return container

    def list(self, all: bool = False, filters: dict[str, str] | None = None) -> list[_Container]:
        key, _, value = (filters or {}).get("label", "").partition("=")
        return [
            c
            for c in list(self.engine.containers.values())
            if key in c.labels and (not value or c.labels[key] == value)
        ]


class _Engine:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.containers: dict[str, _Container] = {}
        self.created = 0
        self.busy_ports_left = 0
        self.closed = False


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Engine]:
    workdir = Path(tempfile.mkdtemp(prefix="eah-docker-", dir="/tmp"))
    fake = _Engine(workdir)
    monkeypatch.setattr(backend_module, "connect", lambda: _Client(fake))
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.delenv("HARNESS_DOCKER_PUBLISH_HOST", raising=False)
    yield fake
    for container in list(fake.containers.values()):
        container.remove(force=True)
    shutil.rmtree(workdir, ignore_errors=True)


class _Client:
    def __init__(self, engine: _Engine) -> None:
        self.engine = engine
        self.containers = _Containers(engine)

    def close(self) -> None:
        self.engine.closed = True


def test_the_image_command_line_runs_tpm2_over_tcp_on_all_interfaces() -> None:
    arguments = swtpm_arguments("2.0", startup=True)
    assert arguments[0] == "--tpm2"
    assert "type=tcp,port=2321,bindaddr=0.0.0.0" in arguments
    assert "type=tcp,port=2322,bindaddr=0.0.0.0" in arguments
    assert "not-need-init,startup-clear" in arguments
    assert "--tpm2" not in swtpm_arguments("1.2", startup=True)


@needs_swtpm
def test_a_container_tpm_is_reached_through_the_swtpm_tcti_and_labelled(engine: _Engine) -> None:
    backend = DockerBackend(run_id="run-a", client=_Client(engine))
    try:
        tpm = backend.start(TPMRequest(), engine.workdir)
        name, conf = tpm.tcti
        assert name == "swtpm" and conf.startswith("host=127.0.0.1,port=")
        (container,) = engine.containers.values()
        assert container.labels == {RUN_LABEL: "run-a"}
        with TimedESAPI(tpm.tcti) as esapi:
            made = manufacture(
                esapi,
                identity=TPMIdentity("id:49465800", "SLB9672", "id:001A000D"),
                issuer=None,
                now=dt.datetime.now(dt.UTC),
            )
        assert made.ek_public
        tpm.close()
        assert engine.containers == {}
    finally:
        backend.close()


@needs_swtpm
def test_a_taken_port_pair_is_retried_with_another(engine: _Engine) -> None:
    engine.busy_ports_left = 2
    backend = DockerBackend(run_id="run-b", client=_Client(engine))
    try:
        backend.start(TPMRequest(), engine.workdir)
        assert engine.created == 3 and len(engine.containers) == 1
    finally:
        backend.close()
    assert engine.containers == {}


@needs_swtpm
def test_leftovers_of_one_run_are_removed_by_label_and_others_are_kept(engine: _Engine) -> None:
    ours = DockerBackend(run_id="run-c", client=_Client(engine))
    theirs = DockerBackend(run_id="run-d", client=_Client(engine))
    ours.start(TPMRequest(), engine.workdir)
    theirs.start(TPMRequest(), engine.workdir)
    assert remove_run_containers("run-c", client=_Client(engine)) == 1
    assert [c.labels[RUN_LABEL] for c in engine.containers.values()] == ["run-d"]
    assert remove_run_containers(client=_Client(engine)) == 1  # every run's
    assert engine.containers == {}
    for backend in (ours, theirs):
        backend.close()


@needs_swtpm
def test_a_fleet_run_with_the_docker_backend_attests_and_leaves_no_container(
    engine: _Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(backend_module, "engine_unavailable", lambda: "")
    result = run_fleet([parse_scenario(ONE_LAPTOP, "docker-one.yaml")], RunOptions(backend="docker"))
    device = result.devices[0]
    assert device.matched, (device.error, device.evidence.decision)
    assert engine.created == 1 and engine.containers == {}


@needs_swtpm
def test_a_container_tpm_left_unstarted_through_its_control_channel_is_not_ready(
    engine: _Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The container publishes swtpm's control channel next to the TPM's port, as a local
    # swtpm does on its '.ctrl' socket: the same platform control works through both.
    monkeypatch.setattr(backend_module, "engine_unavailable", lambda: "")
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
    assert engine.containers == {}
