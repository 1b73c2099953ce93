"""The TPM backends by name: one registry that the scenario model, the CLI and the pytest
plugin all read, so that a backend is added in one place.

A backend is chosen by a `BackendSpec`: a registered name, and for a backend that
takes one, its argument (`device:TCTI`, an external TPM). Each entry says how to open
the backend in a worker, how to check before anything starts that it can run here,
and how to remove what a run left outside its processes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal, get_args

from ..errors import BackendUnavailable, HarnessError
from ..errors import UnknownBackend as UnknownBackend
from . import _docker
from ._backend import TPMBackend
from ._engine_pool import EnginePoolBackend, preflight_all, remove_run_everywhere
from ._engines import Engine
from ._external import ExternalBackend, check_reachable
from ._swarm import remove_run_services, swarm_preflight
from ._swtpm import SwtpmBackend, swtpm_binary

BackendName = Literal["process", "docker", "device", "swarm"]
BACKEND_NAMES: tuple[BackendName, ...] = get_args(BackendName)


@dataclass(frozen=True)
class BackendSpec:
    """A backend and its argument: 'process', 'docker', 'device:/dev/tpmrm0', 'device:mssim:port=2321'."""

    name: BackendName
    tcti: str = ""  # 'device' only: the external TPM's TCTI, NAME[:CONF]
    # 'docker' only: the engines a fleet spreads over; none: the one DOCKER_HOST names.
    engines: tuple[Engine, ...] = ()

    def __post_init__(self) -> None:
        if self.engines and self.name != "docker":
            raise HarnessError(f"Docker engines were named, but the TPM backend is '{self}', not docker")
        urls = [engine.url for engine in self.engines]
        twice = next((url for url in urls if urls.count(url) > 1), None)
        if twice:
            raise HarnessError(f"the engine {twice} is named twice")

    def with_engines(self, engines: Sequence[Engine]) -> BackendSpec:
        return replace(self, engines=tuple(engines))

    @property
    def label(self) -> str:
        """For people: the name, and the engines when a fleet spreads over several."""
        if not self.engines:
            return str(self)
        return f"{self} on {len(self.engines)} engine(s): {', '.join(e.url for e in self.engines)}"

    @classmethod
    def parse(cls, text: str) -> BackendSpec:
        name, colon, argument = text.strip().partition(":")
        known = next((n for n in BACKEND_NAMES if n == name), None)
        if known is None:
            raise UnknownBackend(f"unknown TPM backend '{text}' (use one of {BACKEND_CHOICES})")
        if not BACKENDS[known].takes_tcti:
            if colon:
                raise UnknownBackend(f"the TPM backend '{known}' takes no argument (got '{text}')")
            return cls(known)
        if not argument or argument.startswith(":"):
            raise UnknownBackend(f"the TPM backend '{known}' needs a TCTI: {known}:TCTI (got '{text}')")
        # 'device:/dev/tpmrm0' names a device node: the TSS's own 'device' TCTI on that path.
        return cls(known, f"device:{argument}" if argument.startswith("/") else argument)

    def __str__(self) -> str:
        if not self.tcti:
            return self.name
        node = self.tcti.removeprefix("device:")
        return f"{self.name}:{node if node.startswith('/') else self.tcti}"


DEFAULT_BACKEND = BackendSpec("process")


def engine_backend(spec: BackendSpec | None, engines: Sequence[Engine]) -> BackendSpec | None:
    """The backend a run asked for, with the engines it named: naming engines implies docker,
    and another backend with them is an error."""
    if not engines:
        return spec
    return (spec or BackendSpec("docker")).with_engines(engines)


@dataclass(frozen=True)
class BackendEntry:
    """What the harness knows of one backend."""

    summary: str
    open: Callable[[BackendSpec, str], TPMBackend]  # (spec, run id) -> a backend for one process
    # Raises BackendUnavailable with the reason; returns the spec as workers need it (weighed engines).
    check: Callable[[BackendSpec], BackendSpec]
    remove_leftovers: Callable[[BackendSpec, str], None]  # remove what crashed workers left
    takes_tcti: bool = False
    # One TPM for the whole fleet: its devices run one after another, never in parallel.
    shared: bool = False
    # The devices themselves (TPM and client) run elsewhere, as an engine's tasks.
    runs_devices: bool = False


def _check_process(spec: BackendSpec) -> BackendSpec:
    swtpm_binary()
    return spec


def _check_docker(spec: BackendSpec) -> BackendSpec:
    if not spec.engines:
        _docker.preflight()
        return spec
    # Weighed once here, in the controller: every worker then follows the same schedule.
    return spec.with_engines(preflight_all(spec.engines))


def _check_external(spec: BackendSpec) -> BackendSpec:
    check_reachable(spec.tcti)
    return spec


def _open_process(spec: BackendSpec, run_id: str) -> TPMBackend:
    return SwtpmBackend()


def _open_docker(spec: BackendSpec, run_id: str) -> TPMBackend:
    if not spec.engines:
        return _docker.DockerBackend(run_id=run_id)
    # Each worker starts at its own place in the schedule, so that they do not all begin on
    # the same engine; the process id is as good an offset as any.
    return EnginePoolBackend(run_id, spec.engines, start_at=os.getpid())


def _open_external(spec: BackendSpec, run_id: str) -> TPMBackend:
    return ExternalBackend(spec.tcti)


def _check_swarm(spec: BackendSpec) -> BackendSpec:
    swarm_preflight()
    return spec


def _open_swarm(spec: BackendSpec, run_id: str) -> TPMBackend:
    raise BackendUnavailable(
        "under 'swarm' each device (its TPM and its client) is a Swarm task that harness run submits; "
        "no TPM runs in this process"
    )


def _remove_services(spec: BackendSpec, run_id: str) -> None:
    remove_run_services(run_id)


def _nothing_left(spec: BackendSpec, run_id: str) -> None:
    """Every TPM of this backend dies with the process that started it, or is not ours."""


def _remove_containers(spec: BackendSpec, run_id: str) -> None:
    if spec.engines:
        remove_run_everywhere(run_id, spec.engines)
    else:
        _docker.remove_run_containers(run_id)


BACKENDS: Mapping[BackendName, BackendEntry] = {
    "process": BackendEntry(
        summary="a local swtpm process per device",
        open=_open_process,
        check=_check_process,
        remove_leftovers=_nothing_left,
    ),
    "docker": BackendEntry(
        summary="a swtpm container per device, on the engine DOCKER_HOST names (or the --engine ones)",
        open=_open_docker,
        check=_check_docker,
        remove_leftovers=_remove_containers,
    ),
    "device": BackendEntry(
        summary="one TPM the harness did not make, reached by TCTI (e.g. device:/dev/tpmrm0)",
        open=_open_external,
        check=_check_external,
        remove_leftovers=_nothing_left,
        takes_tcti=True,
        shared=True,
    ),
    "swarm": BackendEntry(
        summary="each device (TPM and client) a Swarm replicated job's task, on the swarm DOCKER_HOST names",
        open=_open_swarm,
        check=_check_swarm,
        remove_leftovers=_remove_services,
        runs_devices=True,
    ),
}
BACKEND_CHOICES = ", ".join(f"{n}:TCTI" if BACKENDS[n].takes_tcti else n for n in BACKEND_NAMES)


def describe_backends() -> str:
    """One line per backend, for help texts."""
    return "; ".join(
        f"'{name}{':TCTI' if entry.takes_tcti else ''}': {entry.summary}" for name, entry in BACKENDS.items()
    )


def open_backend(spec: BackendSpec, run_id: str) -> TPMBackend:
    """The TPM backend a process uses; raises BackendUnavailable where it cannot run."""
    return BACKENDS[spec.name].open(spec, run_id)


def check_backend(spec: BackendSpec, *, workers: int = 1) -> BackendSpec:
    """Raise BackendUnavailable (with the reason) before anything starts, not in every worker.

    Returns the spec as the run's processes should open it: a docker spec's engines weighed.
    """
    entry = BACKENDS[spec.name]
    if entry.shared and workers > 1:
        raise BackendUnavailable(f"the TPM of '{spec}' serves one device at a time: run it with one worker")
    return entry.check(spec)


def remove_leftovers(spec: BackendSpec, run_id: str) -> None:
    """Remove what a run's backend left outside its processes (containers of crashed workers)."""
    BACKENDS[spec.name].remove_leftovers(spec, run_id)
