"""A fleet on Docker Swarm: each device a task of a replicated job, the controller reading results.

The controller hands the plans (a Swarm config), the vendor CAs (a Swarm secret) and the
services' URLs to replicated jobs of the device image; a job's slot is the device's index.
Swarm places the tasks on its nodes, restarts a task that failed (up to `restarts` times:
the restart policy) and reports each task's state. The controller follows the jobs' logs
for each device's run, reads each device's status from the server as it does for its own
workers, and turns a task that failed for good into a harness error with the task's message.

Everything is labelled with the run id and removed when the run ends, Ctrl-C included
(harness.tpm's remove_leftovers for 'swarm', which the session calls).
"""

from __future__ import annotations

import ipaddress
import math
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ..errors import HarnessError
from ..fleet import (
    AdminReader,
    DevicePlan,
    DeviceRun,
    DeviceTask,
    FleetSession,
    Progress,
    check_device,
    run_from_json,
    task_to_json,
)
from ..results import ClientStep
from ..scenario import Expectation
from ..tpm import RUN_LABEL, device_image
from ._task import RUN_MARKER, issuers_of, vendor_ca_bundle

DEFAULT_RESTARTS = 2
# Plans per job: a Swarm config holds at most 500 KB, and a plan is about 1 KB of JSON.
PLANS_PER_JOB = 250
_TERMINAL = {"complete", "failed", "rejected", "shutdown", "orphaned", "remove"}
_FAILED = _TERMINAL - {"complete"}
_POLL = 0.5
_OUTPUT_GRACE = 15.0  # how long a completed task's output may lag behind its state
_SECRET_PATH = "/run/secrets/vendor-cas.json"
_TASK_PATH = "/run/harness/task.json"

Collect = Any  # harness.fleet's Collect: (plan, run, result) -> None


@dataclass
class _Slot:
    plan: DevicePlan
    done: bool = False
    finished_at: float = 0.0  # when a task of it completed, waiting for its output
    failures: list[str] = field(default_factory=list)


def task_server_url(url: str, nodes: int, local_engine: bool) -> str:
    """The server's URL as tasks reach it: HARNESS_SERVER_ADVERTISE names the host when the
    server listens on every address; a loopback server serves only tasks on this machine."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    advertised = os.environ.get("HARNESS_SERVER_ADVERTISE", "")
    if advertised:
        return urlunsplit(parts._replace(netloc=f"{advertised}:{parts.port}"))
    address = ipaddress.ip_address(host)
    if address.is_unspecified:
        raise HarnessError(
            f"the server listens on every address ({host}): say which one tasks reach it at with "
            "HARNESS_SERVER_ADVERTISE=HOST"
        )
    if address.is_loopback and (nodes > 1 or not local_engine):
        raise HarnessError(
            f"the server listens on {host}, which tasks on other machines cannot reach: give "
            "--server-bind an address the swarm's nodes reach (see the README, 'Devices as tasks')"
        )
    return url


class SwarmFleet:
    """Submits one run's devices as replicated jobs and collects their results."""

    def __init__(self, client: Any, session: FleetSession, *, concurrency: int, restarts: int) -> None:
        self._client = client
        self._session = session
        self._concurrency = max(1, concurrency)
        self._restarts = restarts
        self._outputs: dict[str, DeviceRun] = {}  # by task id
        self._lock = threading.Lock()
        self._readers: list[threading.Thread] = []

    def run(
        self,
        plans: list[DevicePlan],
        expectations: dict[str, Expectation],
        admin: AdminReader,
        progress: Progress | None,
        collect: Collect,
    ) -> None:
        if not plans:
            return
        env = self._session.env
        nodes = self._client.nodes.list()
        server_url = task_server_url(env.server_url, len(nodes), _local(self._client))
        secret = self._client.secrets.create(
            name=f"eah-{self._session.run_id}-vendor-cas",
            data=vendor_ca_bundle(env.pki_dir, issuers_of(plans)).encode(),
            labels={RUN_LABEL: self._session.run_id},
        )
        chunks = [plans[i : i + PLANS_PER_JOB] for i in range(0, len(plans), PLANS_PER_JOB)]
        per_job = max(1, math.ceil(self._concurrency / len(chunks)))
        jobs: list[tuple[Any, list[_Slot]]] = []
        for number, chunk in enumerate(chunks):
            task = DeviceTask(server_url=server_url, helpers=_shared_helpers(env.helpers), plans=chunk)
            service = self._submit(number, task, secret, per_job)
            jobs.append((service, [_Slot(plan) for plan in chunk]))
            self._follow(service)
        self._collect(jobs, expectations, admin, progress, collect)

    def _submit(self, number: int, task: DeviceTask, secret: Any, concurrency: int) -> Any:
        from docker.types import ConfigReference, RestartPolicy, SecretReference, ServiceMode

        run_id = self._session.run_id
        labels = {RUN_LABEL: run_id}
        config = self._client.configs.create(
            name=f"eah-{run_id}-task-{number}", data=task_to_json(task).encode(), labels=labels
        )
        return self._client.services.create(
            device_image(),
            name=f"eah-{run_id}-devices-{number}",
            args=["--plan", _TASK_PATH, "--vendor-cas", _SECRET_PATH],
            # The slot of a replicated job's task is its device's index (0..N-1, kept on restart).
            env=["HARNESS_DEVICE_INDEX={{.Task.Slot}}"],
            mode=ServiceMode("replicated-job", concurrency=concurrency, replicas=len(task.plans)),
            # Swarm reads max_attempts 0 as "no limit": no restart is the condition "none".
            restart_policy=RestartPolicy(
                condition="on-failure" if self._restarts else "none",
                delay=1_000_000_000,
                max_attempts=self._restarts,
            ),
            configs=[ConfigReference(config.id, config.name, filename=_TASK_PATH, uid="10001", mode=0o400)],
            secrets=[
                SecretReference(secret.id, secret.name, filename="vendor-cas.json", uid="10001", mode=0o400)
            ],
            # The node's network: the task reaches the server where the controller does, and its
            # relays and swtpm stay on the task's own loopback ports and unix sockets.
            networks=["host"],
            labels=labels,
            container_labels=labels,
        )

    def _follow(self, service: Any) -> None:
        stream = self._client.api.service_logs(
            service.id, details=True, follow=True, stdout=True, stderr=False, timestamps=False
        )
        reader = threading.Thread(target=self._read, args=(stream,), name="swarm-logs", daemon=True)
        reader.start()
        self._readers.append(reader)

    def _read(self, stream: Any) -> None:
        pending = b""
        try:
            for chunk in stream:
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    self._take(line.decode(errors="replace"))
        except Exception:  # the service was removed under the stream: nothing more to read
            return

    def _take(self, line: str) -> None:
        details, _, message = line.partition(" ")
        if not message.startswith(RUN_MARKER):
            return
        attributes = dict(item.split("=", 1) for item in details.split(",") if "=" in item)
        task_id = attributes.get("com.docker.swarm.task.id", "")
        try:
            run = run_from_json(message[len(RUN_MARKER) :])
        except HarnessError:
            return  # a torn line; the task's state still decides
        with self._lock:
            self._outputs[task_id] = run

    def _collect(
        self,
        jobs: list[tuple[Any, list[_Slot]]],
        expectations: dict[str, Expectation],
        admin: AdminReader,
        progress: Progress | None,
        collect: Collect,
    ) -> None:
        remaining = sum(len(slots) for _, slots in jobs)
        while remaining:
            for service, slots in jobs:
                tasks = service.tasks()
                for slot_number, slot in enumerate(slots):
                    if slot.done:
                        continue
                    run = self._judge(slot, [t for t in tasks if int(t.get("Slot", 0)) == slot_number])
                    if run is None:
                        continue
                    slot.done = True
                    remaining -= 1
                    plan = slot.plan
                    collect(plan, run, check_device(plan, expectations[plan.key], run, admin))
                    if progress:
                        progress(run)
            if remaining:
                time.sleep(_POLL)

    def _judge(self, slot: _Slot, tasks: list[dict[str, Any]]) -> DeviceRun | None:
        """The slot's device run once Swarm is done with it, else None."""
        tasks.sort(key=lambda t: str(t.get("CreatedAt", "")))
        failed = [t for t in tasks if t["Status"]["State"] in _FAILED]
        slot.failures = [_task_message(t) for t in failed]
        complete = next((t for t in tasks if t["Status"]["State"] == "complete"), None)
        if complete is not None:
            with self._lock:
                run = self._outputs.get(complete["ID"])
            if run is None:
                slot.finished_at = slot.finished_at or time.monotonic()
                if time.monotonic() - slot.finished_at < _OUTPUT_GRACE:
                    return None
                run = self._lost(slot, f"task {complete['ID'][:12]} completed, but its output holds no run")
            return self._with_attempts(run, slot)
        if len(failed) <= self._restarts:
            return None  # running, or Swarm is about to restart it
        last = failed[-1]
        with self._lock:
            run = self._outputs.get(last["ID"])
        if run is None or not run.error:
            run = self._lost(
                slot,
                f"the device's task failed {len(failed)} time(s) and Swarm restarts it at most "
                f"{self._restarts} time(s): {slot.failures[-1]}",
            )
        return self._with_attempts(run, slot)

    def _lost(self, slot: _Slot, reason: str) -> DeviceRun:
        return DeviceRun(key=slot.plan.key, emm_device_id=slot.plan.emm_device_id, error=reason)

    def _with_attempts(self, run: DeviceRun, slot: _Slot) -> DeviceRun:
        # Earlier attempts are part of the device's story: Swarm restarted it after each.
        run.steps[:0] = [ClientStep(step="swarm.task", ok=False, detail=what) for what in slot.failures]
        run.engine = run.engine or "swarm"
        return run


def _shared_helpers(running: Mapping[str, Mapping[str, str]]) -> dict[str, dict[str, str]]:
    """The controller's helpers a task can use: those it reaches by URL. One that offers a
    directory of this machine (the EK-certificate service the factory publishes into) the task
    runs itself."""
    return {name: dict(offer) for name, offer in running.items() if "dir" not in offer}


def _task_message(task: dict[str, Any]) -> str:
    status = task.get("Status") or {}
    code = (status.get("ContainerStatus") or {}).get("ExitCode")
    message = status.get("Err") or status.get("Message") or status.get("State", "")
    return f"task {str(task.get('ID', ''))[:12]} {status.get('State')}: {message}" + (
        f" (exit code {code})" if code is not None else ""
    )


def _local(client: Any) -> bool:
    """True when the engine runs on this machine (a unix socket, or a TCP address of loopback)."""
    url = str(getattr(client.api, "base_url", ""))
    host = urlsplit(url).hostname or ""
    return url.startswith(("http+unix://", "unix://")) or host in ("localhost", "127.0.0.1", "::1")


def run_on_swarm(
    plans: list[DevicePlan],
    expectations: dict[str, Expectation],
    session: FleetSession,
    admin: AdminReader,
    progress: Progress | None,
    collect: Collect,
    *,
    concurrency: int = 0,
) -> None:
    """Run the devices as Swarm tasks; results go to `collect` as each device is judged.

    `concurrency`: tasks at once (0: the swarm's CPUs). What the run submitted is removed by
    the session's clean-up (the backend's remove_leftovers), whatever happens here.
    """
    from ..tpm import swarm_client

    client = swarm_client()
    try:
        if concurrency <= 0:
            nodes = client.nodes.list()
            cpus = sum(int(n.attrs["Description"]["Resources"]["NanoCPUs"]) for n in nodes) // 10**9
            concurrency = max(1, cpus)
        restarts = int(os.environ.get("HARNESS_SWARM_RESTARTS", DEFAULT_RESTARTS))
        SwarmFleet(client, session, concurrency=concurrency, restarts=restarts).run(
            plans, expectations, admin, progress, collect
        )
    finally:
        client.close()
