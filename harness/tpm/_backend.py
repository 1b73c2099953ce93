"""The TPM backend protocol: what the client needs from any TPM, emulated or real."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

TPMFamily = Literal["2.0", "1.2"]


@dataclass(frozen=True)
class TPMRequest:
    """What a backend is asked to start: a blank TPM of one family, or a manufactured state."""

    family: TPMFamily = "2.0"
    # A directory holding a manufactured TPM state to start from (copied, never shared).
    state_from: Path | None = None
    # Leave the TPM un-started (no TPM2_Startup), as firmware that never initialised it.
    startup: bool = True


class RunningTPM(Protocol):
    """A running TPM reachable through a TCTI (the Windows device it belongs to is not its concern).

    A TPM whose platform the harness controls also implements PlatformControl.
    """

    @property
    def tcti(self) -> tuple[str, str]:
        """(TCTI name, configuration) for TCTILdr."""
        ...

    @property
    def family(self) -> TPMFamily: ...

    @property
    def description(self) -> str: ...

    def manufacturable(self) -> bool:
        """True when the harness may write an EK certificate and change TPM state."""
        ...

    def save_state(self, into: Path) -> None:
        """Copy the TPM's persistent state (for a cache of manufactured TPMs)."""
        ...

    def close(self) -> None: ...


class TPMBackend(Protocol):
    """Starts TPMs of one kind (see the registry in harness.tpm for the kinds and their names)."""

    name: str

    def start(self, request: TPMRequest, workdir: Path) -> RunningTPM: ...

    def close(self) -> None:
        """Stop everything this backend started."""
        ...


@runtime_checkable
class MortalTPM(Protocol):
    """A TPM that is a process or container the harness started, and so can die under its device."""

    def death(self) -> str | None:
        """Why the process or container is gone (its exit status), or None while it runs."""
        ...


def tpm_death(tpm: RunningTPM) -> str | None:
    """Why the TPM's process died under its device; None while it runs, or when nobody can tell
    (an external TPM). A TPM absent on purpose never gets here: it was never started."""
    return tpm.death() if isinstance(tpm, MortalTPM) else None
