"""The container driver: each device's swtpm runs as a labelled container on a Docker engine.

The engine is the one DOCKER_HOST names (or the local socket), or an Engine given
explicitly. swtpm listens on TCP inside the container; the harness reaches it
through published ports with the swtpm TCTI. That TCTI finds the control channel
at the server port + 1, so the two ports are published as a pair chosen by the
harness, not left to the engine, and on the engine's bind address (loopback unless
the user names one), not on the engine's default of every interface.

Every container carries the label `org.enrollment-harness.run=<run id>`: close()
removes a backend's containers, and remove_run_containers() removes what a run
left behind (a worker killed before it could close its own).
"""

from __future__ import annotations

import contextlib
import io
import os
import random
import tarfile
import time
from pathlib import Path
from typing import Any

from ..errors import BackendUnavailable, TPMError
from ._backend import RunningTPM, TPMFamily, TPMRequest
from ._engines import Engine, engine_from_env
from ._platform import ControlChannel, SwtpmPlatform
from ._tracking import LiveSet

RUN_LABEL = "org.enrollment-harness.run"
DEFAULT_IMAGE = "enrollment-harness/swtpm:latest"
# The image runs swtpm as this user; restored state must belong to it.
IMAGE_UID = 10001
_SERVER_PORT, _CTRL_PORT = 2321, 2322
_START_TIMEOUT = 30.0
_PORT_ATTEMPTS = 20
_PORT_RANGE = (20000, 60000)


def _docker() -> Any:
    try:
        import docker
    except ImportError as exc:  # pragma: no cover - docker is a dependency of the package
        raise BackendUnavailable("the docker SDK is not installed (pip install docker)") from exc
    return docker


def connect() -> Any:
    """A client of the engine the environment names; BackendUnavailable when none answers."""
    return engine_from_env().client()


def engine_unavailable() -> str:
    """Why no Docker engine can be used here, or '' when one answers."""
    try:
        connect().close()
    except BackendUnavailable as exc:
        return str(exc)
    return ""


def engine_host() -> str:
    """Where published ports are reached: the remote engine's host, else this machine.

    HARNESS_DOCKER_PUBLISH_HOST overrides it, for engines behind a different address.
    """
    return engine_from_env().host


def preflight(image: str | None = None, engine: Engine | None = None) -> None:
    """Check, once before a run, that the engine answers, can be reached and has the image.

    Raises BackendUnavailable with one message saying what to do, so that a run exits 2
    instead of failing every device on its own.
    """
    engine = engine or engine_from_env()
    image = image or image_name()
    try:
        engine.check_reachable()
        _check_image(engine, image)
    except BackendUnavailable as exc:
        raise BackendUnavailable(f"the docker backend cannot run: {exc}") from exc


def _check_image(engine: Engine, image: str) -> None:
    client = engine.client()
    try:
        client.images.get(image)
    except _docker().errors.ImageNotFound:
        raise BackendUnavailable(
            f"image {image} is not on the engine {engine.url}; build it with "
            "scripts/docker-engine.sh start (a private engine) or "
            f"docker build --network host -t {image} swtpm-images/"
        ) from None
    except Exception as exc:
        raise BackendUnavailable(f"engine {engine.url} cannot list its images: {exc}") from exc
    finally:
        client.close()


def published_port(attrs: dict[str, Any], container_port: int, want: int) -> None:
    """Raise TPMError when a started container's port map lacks the host port it was given.

    Some engines (host or no networking, rootless setups) start the container and publish
    nothing; without this check each device would wait for a TPM that can never answer.
    """
    ports = (attrs.get("NetworkSettings") or {}).get("Ports") or {}
    bindings = ports.get(f"{container_port}/tcp") or []
    if not any(str(b.get("HostPort")) == str(want) for b in bindings):
        mode = (attrs.get("HostConfig") or {}).get("NetworkMode", "?")
        raise TPMError(
            f"the engine did not publish port {container_port} of the swtpm container as {want} "
            f"(network mode '{mode}', published: {ports or 'nothing'}); the docker backend needs an "
            "engine that publishes container ports (bridge networking)"
        )


def image_name() -> str:
    return os.environ.get("HARNESS_SWTPM_IMAGE") or DEFAULT_IMAGE


def swtpm_arguments(family: TPMFamily, startup: bool) -> list[str]:
    """The swtpm command line inside the container (the image's entrypoint is `swtpm socket`)."""
    flags = "not-need-init" + (",startup-clear" if startup else "")
    arguments = [
        "--tpmstate", "dir=/tpm/state",
        "--server", f"type=tcp,port={_SERVER_PORT},bindaddr=0.0.0.0",
        "--ctrl", f"type=tcp,port={_CTRL_PORT},bindaddr=0.0.0.0",
        "--flags", flags,
    ]  # fmt: skip
    if family == "2.0":
        arguments.insert(0, "--tpm2")
    return arguments


def _state_archive(directory: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:

        def owned(info: tarfile.TarInfo) -> tarfile.TarInfo:
            info.uid, info.gid, info.uname, info.gname = IMAGE_UID, IMAGE_UID, "", ""
            return info

        tar.add(directory, arcname="state", filter=owned)
    return buffer.getvalue()


def _port_in_use(error: Exception) -> bool:
    text = str(error).lower()
    return "port is already allocated" in text or "address already in use" in text


class DockerTPM(SwtpmPlatform):
    """One swtpm container; removed (with its state) on close.

    Its control channel, published next to the TPM's port, is the platform's view of
    the TPM (reset, power, startup), as for a local swtpm.
    """

    def __init__(self, client: Any, request: TPMRequest, run_id: str, engine: Engine, image: str) -> None:
        self._family: TPMFamily = request.family
        self._engine = engine
        self._host = engine.host
        self._closed = False
        self._container: Any = None
        errors = _docker().errors
        last: Exception | None = None
        for _ in range(_PORT_ATTEMPTS):
            port = random.randrange(_PORT_RANGE[0], _PORT_RANGE[1], 2)
            try:
                self._container = client.containers.create(
                    image,
                    command=swtpm_arguments(request.family, request.startup),
                    labels={RUN_LABEL: run_id},
                    ports={
                        f"{_SERVER_PORT}/tcp": (engine.bind, port),
                        f"{_CTRL_PORT}/tcp": (engine.bind, port + 1),
                    },
                    detach=True,
                )
                if request.state_from is not None:
                    self._container.put_archive("/tpm", _state_archive(request.state_from))
                self._container.start()
            except errors.ImageNotFound as exc:
                self._remove()
                raise BackendUnavailable(
                    f"image {image} is not on the engine; build it: docker build -t {image} swtpm-images/"
                ) from exc
            except errors.APIError as exc:
                self._remove()
                if _port_in_use(exc):
                    last = exc
                    continue
                raise TPMError(f"cannot start the swtpm container: {exc}") from exc
            except BaseException:
                self._remove()
                raise
            self._port = port
            break
        else:
            raise TPMError(f"no free pair of ports on the engine after {_PORT_ATTEMPTS} tries: {last}")
        _LIVE.add(self)
        try:
            self._container.reload()
            for container_port, host_port in ((_SERVER_PORT, port), (_CTRL_PORT, port + 1)):
                published_port(self._container.attrs, container_port, host_port)
            self._wait_ready()
        except BaseException:
            self.close()
            raise

    def _wait_ready(self) -> None:
        # A published port accepts connections before swtpm listens (the engine's proxy does), so
        # readiness is an answer on the control channel, not a connect.
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            self._container.reload()
            if self._container.status in ("exited", "dead"):
                logs = self._container.logs(tail=20).decode(errors="replace").strip()
                raise TPMError(f"the swtpm container exited: {logs}")
            if self._control_answers():
                return
            time.sleep(0.05)
        raise TPMError(
            f"swtpm in container {self._container.short_id} did not answer in {_START_TIMEOUT:.0f}s"
        )

    def _control_answers(self) -> bool:
        return self.control.answers()

    @property
    def control(self) -> ControlChannel:
        return ControlChannel((self._host, self._port + 1))

    @property
    def container_id(self) -> str:
        return str(self._container.id)

    @property
    def engine_url(self) -> str:
        return self._engine.url

    @property
    def tcti(self) -> tuple[str, str]:
        return ("swtpm", f"host={self._host},port={self._port}")

    @property
    def family(self) -> TPMFamily:
        return self._family

    @property
    def description(self) -> str:
        return (
            f"swtpm container {self._container.short_id} (TPM {self._family}) at "
            f"{self._host}:{self._port} on {self._engine.url}"
        )

    def manufacturable(self) -> bool:
        return True

    def death(self) -> str | None:
        if self._closed or self._container is None:
            return None  # stopped by the harness, not died
        errors = _docker().errors
        try:
            self._container.reload()
        except errors.NotFound:
            return f"swtpm container {self._container.short_id} was removed"
        except errors.DockerException:
            return None  # the engine cannot say; the client's own errors stand
        if self._container.status not in ("exited", "dead"):
            return None
        code = self._container.attrs.get("State", {}).get("ExitCode")
        return f"swtpm container {self._container.short_id} {self._container.status} (exit code {code})"

    def save_state(self, into: Path) -> None:
        stream, _ = self._container.get_archive("/tpm/state")
        buffer = io.BytesIO(b"".join(stream))
        into.mkdir(parents=True, exist_ok=True)
        with tarfile.open(fileobj=buffer) as tar:
            for member in tar.getmembers():
                if not member.isfile():
                    continue
                extracted = tar.extractfile(member)
                if extracted is not None:
                    (into / Path(member.name).name).write_bytes(extracted.read())

    def _remove(self) -> None:
        if self._container is None:
            return
        # Already gone, or the engine went away: remove_run_containers tries again at the end.
        with contextlib.suppress(Exception):
            self._container.remove(force=True)
        self._container = None

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._remove()
        finally:
            _LIVE.discard(self)


def engine_of(tpm: RunningTPM | None) -> str:
    """The URL of the Docker engine a TPM runs on, for a device's result; '' for any other TPM."""
    return tpm.engine_url if isinstance(tpm, DockerTPM) else ""


class DockerBackend:
    """Starts one labelled swtpm container per device; close() removes those this process started."""

    name = "docker"

    def __init__(
        self, run_id: str, *, image: str | None = None, client: Any = None, engine: Engine | None = None
    ) -> None:
        self.run_id = run_id
        self.image = image or image_name()
        self.engine = engine or engine_from_env()
        self._client = client or self.engine.client()

    def start(self, request: TPMRequest, workdir: Path) -> DockerTPM:
        return DockerTPM(self._client, request, self.run_id, self.engine, self.image)

    def close(self) -> None:
        # Only this process's containers: under pytest-xdist a worker that finishes first closes
        # its backend while the others still run devices of the same run on the same engine.
        # What a killed process left is the controller's to remove (remove_run_containers).
        for tpm in _LIVE.snapshot():
            if tpm.engine_url == self.engine.url:
                tpm.close()
        self._client.close()


def remove_run_containers(run_id: str | None = None, *, client: Any = None) -> int:
    """Remove the containers of one run (or of every run when run_id is None); returns how many."""
    own = client is None
    try:
        client = client or connect()
    except BackendUnavailable:
        return 0  # no engine: nothing of ours can be running on it
    selector = f"{RUN_LABEL}={run_id}" if run_id else RUN_LABEL
    removed = 0
    try:
        for container in client.containers.list(all=True, filters={"label": selector}):
            try:
                container.remove(force=True)
            except Exception:  # removed meanwhile by its own close()
                continue
            removed += 1
    finally:
        if own:
            client.close()
    return removed


_LIVE: LiveSet[DockerTPM] = LiveSet()
