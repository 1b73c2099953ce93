"""Docker Swarm as the engine: the checks before a run and the removal of what a run left.

Devices run as tasks of replicated jobs (harness.cluster submits them); here is only what the
backend registry needs: that DOCKER_HOST names a swarm manager that has the device image,
and that a run's services, configs and secrets (labelled with the run id, like the docker
backend's containers) are gone when it ends, Ctrl-C included.
"""

from __future__ import annotations

import contextlib
import os
import time
from typing import Any

from ..errors import BackendUnavailable
from ._docker import RUN_LABEL
from ._engines import engine_from_env

DEFAULT_DEVICE_IMAGE = "enrollment-harness/device:latest"
_GONE_TIMEOUT = 60.0


def device_image() -> str:
    return os.environ.get("HARNESS_DEVICE_IMAGE") or DEFAULT_DEVICE_IMAGE


def swarm_client() -> Any:
    """A client of the swarm manager DOCKER_HOST names; BackendUnavailable when none answers."""
    return engine_from_env().client()


def swarm_preflight(client: Any = None, image: str | None = None) -> None:
    """Check, before anything starts, that the engine is a swarm manager with the device image.

    The image is checked on the manager only: a worker node without it rejects its tasks, and
    the run reports each such task's message.
    """
    image = image or device_image()
    own = client is None
    try:
        client = client or swarm_client()
    except BackendUnavailable as exc:
        raise BackendUnavailable(f"the swarm backend cannot run: {exc}") from exc
    try:
        swarm = client.info().get("Swarm") or {}
        if swarm.get("LocalNodeState") != "active":
            raise BackendUnavailable(
                "the swarm backend cannot run: the engine DOCKER_HOST names is not in a swarm "
                "(docker swarm init, or scripts/docker-engine.sh start --swarm for a private one)"
            )
        if not swarm.get("ControlAvailable"):
            raise BackendUnavailable(
                "the swarm backend cannot run: the engine DOCKER_HOST names is a swarm worker; "
                "point DOCKER_HOST at a manager"
            )
        try:
            client.images.get(image)
        except Exception as exc:
            raise BackendUnavailable(
                f"the swarm backend cannot run: image {image} is not on the manager ({exc}); build it "
                "with scripts/docker-engine.sh start --swarm, or see swtpm-images/device.Dockerfile"
            ) from None
    finally:
        if own:
            client.close()


def remove_run_services(run_id: str, *, client: Any = None) -> int:
    """Remove a run's services, configs and secrets and wait for their containers; returns how
    many services there were. Swarm stops a removed service's tasks itself, a moment later."""
    own = client is None
    try:
        client = client or swarm_client()
    except BackendUnavailable:
        return 0  # no engine: nothing of ours can be running on it
    selector = {"label": f"{RUN_LABEL}={run_id}"}
    try:
        services = client.services.list(filters=selector)
        for service in services:
            with contextlib.suppress(Exception):  # removed meanwhile
                service.remove()
        _wait_containers_gone(client, run_id)
        for kind in (client.configs, client.secrets):
            for item in kind.list(filters=selector):
                with contextlib.suppress(Exception):
                    item.remove()
    finally:
        if own:
            client.close()
    return len(services)


def _wait_containers_gone(client: Any, run_id: str) -> None:
    # The tasks' containers carry the run's label too. Swarm stops a removed service's running
    # tasks, but keeps exited ones as task history: once none runs, this node's are removed
    # (other nodes' agents clean theirs when the service is gone).
    deadline = time.monotonic() + _GONE_TIMEOUT
    selector = {"label": f"{RUN_LABEL}={run_id}"}
    try:
        while time.monotonic() < deadline and client.containers.list(filters=selector):
            time.sleep(0.2)
        for container in client.containers.list(all=True, filters=selector):
            with contextlib.suppress(Exception):  # removed meanwhile
                container.remove(force=True)
    except Exception:  # the engine went away: nothing more can be removed from here
        return
