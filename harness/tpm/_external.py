"""External TPMs: a TPM the harness does not own, reached through any TCTI.

TPM vendors point the flow at hardware ('device:/dev/tpmrm0') or at their own
simulator ('mssim:host=127.0.0.1,port=2321'). The harness never writes to such
a TPM's NV or hierarchies: manufacturing and fault injection are refused.
"""

from __future__ import annotations

from pathlib import Path

from tpm2_pytss import TSS2_Exception

from ..errors import BackendUnavailable, TPMError
from ._backend import TPMFamily, TPMRequest
from ._esapi import open_tcti


def parse_tcti(spec: str) -> tuple[str, str]:
    """'device:/dev/tpmrm0' -> ('device', '/dev/tpmrm0'); 'mssim' -> ('mssim', '')."""
    name, _, conf = spec.partition(":")
    if not name:
        raise TPMError(f"not a TCTI: {spec!r} (expected NAME[:CONF], e.g. device:/dev/tpmrm0)")
    return name, conf


class ExternalTPM:
    def __init__(self, spec: str) -> None:
        self._tcti = parse_tcti(spec)
        self._spec = spec

    @property
    def tcti(self) -> tuple[str, str]:
        return self._tcti

    @property
    def spec(self) -> str:
        """The TCTI as given, NAME[:CONF]."""
        return self._spec

    @property
    def family(self) -> TPMFamily:
        return "2.0"

    @property
    def description(self) -> str:
        return f"external TPM via TCTI {self._spec}"

    def manufacturable(self) -> bool:
        return False

    def save_state(self, into: Path) -> None:
        raise TPMError("an external TPM's state cannot be copied")

    def close(self) -> None:
        """The harness did not start this TPM, so it leaves it running."""


class ExternalBackend:
    """Every device of the fleet uses the same external TPM, one after another."""

    name = "device"  # its name in the backend registry

    def __init__(self, spec: str) -> None:
        self._spec = spec
        parse_tcti(spec)

    def start(self, request: TPMRequest, workdir: Path) -> ExternalTPM:
        if request.family != "2.0" or request.state_from is not None or not request.startup:
            raise TPMError("an external TPM runs as it is: it cannot be a TPM 1.2 or a prepared state")
        return ExternalTPM(self._spec)

    def close(self) -> None:
        """Nothing to stop."""


def check_reachable(spec: str) -> None:
    """Raise BackendUnavailable, with the TSS's reason, when the TCTI cannot be opened."""
    try:
        open_tcti(parse_tcti(spec)).close()
    except TSS2_Exception as exc:
        raise BackendUnavailable(f"the TPM at TCTI {spec} cannot be reached: {exc}") from exc
