"""The TPM backends by name: one registry that the scenario model, the CLI and the pytest
plugin all read, so that a backend is added in one place.

A backend is chosen by a `BackendSpec`: a registered name, and for a backend that
takes one, its argument (`device:TCTI`, an external TPM). Each entry says how to open
the backend in a worker, how to check before anything starts that it can run here,
and how to remove what a run left outside its processes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal, get_args

from ..errors import BackendUnavailable, HarnessError
from . import _docker
from ._backend import TPMBackend
from ._external import ExternalBackend, check_reachable
from ._swtpm import SwtpmBackend, swtpm_binary

BackendName = Literal["process", "docker", "device"]
BACKEND_NAMES: tuple[BackendName, ...] = get_args(BackendName)


class UnknownBackend(HarnessError, ValueError):
    """Not a backend of the registry; a ValueError too, so a model reports it at its field."""


@dataclass(frozen=True)
class BackendSpec:
    """A backend and its argument: 'process', 'docker', 'device:/dev/tpmrm0', 'device:mssim:port=2321'."""

    name: BackendName
    tcti: str = ""  # 'device' only: the external TPM's TCTI, NAME[:CONF]

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


@dataclass(frozen=True)
class BackendEntry:
    """What the harness knows of one backend."""

    summary: str
    open: Callable[[BackendSpec, str], TPMBackend]  # (spec, run id) -> a backend for one process
    check: Callable[[BackendSpec], None]  # raises BackendUnavailable with the reason
    remove_leftovers: Callable[[str], None]  # run id -> remove what crashed workers left
    takes_tcti: bool = False
    # One TPM for the whole fleet: its devices run one after another, never in parallel.
    shared: bool = False


def _check_process(spec: BackendSpec) -> None:
    swtpm_binary()


def _check_docker(spec: BackendSpec) -> None:
    _docker.preflight()


def _check_external(spec: BackendSpec) -> None:
    check_reachable(spec.tcti)


def _open_process(spec: BackendSpec, run_id: str) -> TPMBackend:
    return SwtpmBackend()


def _open_docker(spec: BackendSpec, run_id: str) -> TPMBackend:
    return _docker.DockerBackend(run_id=run_id)


def _open_external(spec: BackendSpec, run_id: str) -> TPMBackend:
    return ExternalBackend(spec.tcti)


def _nothing_left(run_id: str) -> None:
    """Every TPM of this backend dies with the process that started it, or is not ours."""


def _remove_containers(run_id: str) -> None:
    _docker.remove_run_containers(run_id)


BACKENDS: Mapping[BackendName, BackendEntry] = {
    "process": BackendEntry(
        summary="a local swtpm process per device",
        open=_open_process,
        check=_check_process,
        remove_leftovers=_nothing_left,
    ),
    "docker": BackendEntry(
        summary="a swtpm container per device, on the engine DOCKER_HOST names",
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


def check_backend(spec: BackendSpec, *, workers: int = 1) -> None:
    """Raise BackendUnavailable (with the reason) before anything starts, not in every worker."""
    entry = BACKENDS[spec.name]
    if entry.shared and workers > 1:
        raise BackendUnavailable(f"the TPM of '{spec}' serves one device at a time: run it with one worker")
    entry.check(spec)


def remove_leftovers(spec: BackendSpec, run_id: str) -> None:
    """Remove what a run's backend left outside its processes (containers of crashed workers)."""
    BACKENDS[spec.name].remove_leftovers(run_id)
