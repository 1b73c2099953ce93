"""One exception hierarchy for the whole harness, rooted in HarnessError.

    HarnessError
    ├── FileError                 a file the user wrote: names the file, line and field
    │   ├── ScenarioError
    │   ├── RbacError
    │   ├── EngineFileError
    │   └── TrustError
    ├── TPMError                  a TPM could not be manufactured, started or reached
    │   ├── BackendUnavailable
    │   └── UnknownBackend        (also a ValueError, for pydantic fields)
    ├── ServerError
    │   └── ServerLost
    ├── RunStopped                a run could not go on; carries the partial result
    ├── BundleError               an evidence bundle file that cannot be read
    ├── VendorCheckError          vendor-check cannot run
    ├── EvidenceFormatError       bytes that are not the TPM structure they claim (a ValueError)
    │   └── BundleFormatError
    ├── WireError                 TPM wire bytes that end early or run long (a ValueError)
    ├── ClientFailure             a step of the simulated client, with its HRESULT
    │   └── AuthenticationRefused
    ├── ServiceFailure            a refusal the server answers with (status, error, HRESULT)
    ├── ClockLimitError           the server's clock asked to go where it must not (a ValueError)
    └── UnboundLimitError         the server holds as many unowned records as it may

Outside it on purpose: RunInterrupted (harness.fleet) is a KeyboardInterrupt, so Ctrl-C
unwinds as Ctrl-C; the client's PoweredOff is a signal inside the flow, never raised past it;
the pytest plugin's DeviceMismatch is how pytest is told that an item failed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .results import RunResult


class HarnessError(Exception):
    """Base of every error the harness raises on purpose."""


class FileError(HarnessError):
    """A file the user wrote is unreadable or invalid; names the file, line and field."""

    def __init__(self, path: str, line: int | None, field: str, message: str) -> None:
        self.path = path
        self.line = line
        self.field = field
        self.message = message
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {field}: {message}" if field else f"{where}: {message}")


class ScenarioError(FileError):
    """A scenario file is unreadable or invalid."""


class RbacError(FileError):
    """An RBAC file is unreadable or invalid; a token's value never appears in it."""


class EngineFileError(FileError):
    """A file listing Docker engines (`harness run --engines FILE`) is unreadable or invalid."""


class TPMError(HarnessError):
    """A TPM could not be manufactured, started or reached."""


class BackendUnavailable(TPMError):
    """A TPM backend cannot run here (no swtpm binary, no Docker engine, no device)."""


class ServerError(HarnessError):
    """The reference server could not start, or answered outside its contract."""


class ServerLost(ServerError):
    """The reference server stopped answering (connection refused or reset) during a run."""


class TrustError(FileError):
    """A trust store or advisory file is unreadable or invalid."""


class UnknownBackend(TPMError, ValueError):
    """Not a backend of the registry; a ValueError too, so a model reports it at its field."""


class RunStopped(HarnessError):
    """A run could not go on (its server stopped answering, a worker died); `result` holds
    the devices that finished and the others as errors (summary.stopped says why)."""

    def __init__(self, reason: str, result: RunResult) -> None:
        super().__init__(reason)
        self.result = result


class BundleError(HarnessError):
    """A bundle file cannot be read or is not a bundle; names the file and the field."""


class VendorCheckError(HarnessError):
    """vendor-check cannot run: a bad option, an unreadable CA file, an unreachable TPM."""


class EvidenceFormatError(HarnessError, ValueError):
    """Bytes that do not parse as the TPM structure they claim to be."""


class BundleFormatError(EvidenceFormatError):
    """A bundle is not the documented JSON; names the field."""


class WireError(HarnessError, ValueError):
    """Bytes that end early, run long, or hold a selector this reader does not know."""


class ClientFailure(HarnessError):
    """A step of the simulated client failed; `hresult` is what Windows would report for it.

    The TPM provider and the service client raise it with the HRESULT of what they
    met (a TPM response code, a refused connection, a service's answer); the flow
    decides what Windows does next.
    """

    def __init__(self, hresult: int, reason: str) -> None:
        super().__init__(reason)
        self.hresult = hresult
        self.reason = reason


class AuthenticationRefused(ClientFailure):
    """The service answered 401: it did not accept the device's token or credential."""


class ServiceFailure(HarnessError):
    """A refusal the server tells the client about: HTTP status, error code, HRESULT, reason."""

    def __init__(
        self,
        status_code: int,
        error: str,
        hresult: int,
        reason: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(reason)
        self.status_code = status_code
        self.error = error
        self.hresult = hresult
        self.reason = reason
        self.headers = headers or {}


class ClockLimitError(HarnessError, ValueError):
    """The server's clock was asked to move somewhere it must not go."""


class UnboundLimitError(HarnessError):
    """The server holds as many unowned records as it may, none of them stale."""
