"""One fleet over several Docker engines: devices go to engines by weight, cleanup goes to all.

Each worker process holds its own EnginePoolBackend; the engines' order is the smooth
weighted round-robin of their CPU counts, and a worker starts at its own offset in it so
that workers do not all begin on the same engine. Every container carries the run's
label, so remove_run_everywhere() finds what a killed worker left on any engine.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..errors import BackendUnavailable, HarnessError
from ._backend import TPMRequest
from ._docker import DockerBackend, DockerTPM, preflight, remove_run_containers
from ._engines import Engine, schedule


class EnginePoolBackend:
    """A TPM backend that starts each device's container on the next engine of the schedule."""

    name = "docker"

    def __init__(
        self, run_id: str, engines: Sequence[Engine], *, image: str | None = None, start_at: int = 0
    ) -> None:
        if not engines:
            raise HarnessError("an engine pool needs at least one engine")
        urls = [engine.url for engine in engines]
        if len(set(urls)) != len(urls):
            raise HarnessError(f"an engine is named twice: {', '.join(urls)}")
        self.run_id = run_id
        self.engines = list(engines)
        self._image = image
        # An engine nobody weighed (no pre-flight in this process) counts as one CPU.
        self._order = schedule([engine.weight or 1 for engine in engines])
        self._next = start_at
        self._backends: dict[int, DockerBackend] = {}

    def start(self, request: TPMRequest, workdir: Path) -> DockerTPM:
        index = self._order[self._next % len(self._order)]
        self._next += 1
        backend = self._backends.get(index)
        if backend is None:
            backend = DockerBackend(self.run_id, image=self._image, engine=self.engines[index])
            self._backends[index] = backend
        return backend.start(request, workdir)

    def close(self) -> None:
        errors: list[Exception] = []
        for backend in self._backends.values():
            try:
                backend.close()
            except Exception as exc:  # one engine going away must not keep the others' containers
                errors.append(exc)
        self._backends.clear()
        if errors:
            raise BackendUnavailable(f"closing the engine pool: {errors[0]}") from errors[0]


def preflight_all(engines: Sequence[Engine], image: str | None = None) -> list[Engine]:
    """Check every engine (answers, reachable, has the image); return them weighed by CPUs
    (an engine the user gave a weight keeps it).

    The first failure is the message: a fleet that cannot use one of its engines stops
    before it starts, rather than sending that engine's share of devices to fail.
    """
    measured = []
    for engine in engines:
        preflight(image, engine)
        measured.append(engine.measured())
    return measured


def remove_run_everywhere(run_id: str, engines: Sequence[Engine]) -> dict[str, int]:
    """Remove the run's containers on each engine; how many per engine URL (unreachable: 0)."""
    removed: dict[str, int] = {}
    for engine in engines:
        try:
            client = engine.client(timeout=10)
        except BackendUnavailable:
            removed[engine.url] = 0
            continue
        removed[engine.url] = remove_run_containers(run_id, client=client)
        client.close()
    return removed
