"""One exception hierarchy for the whole harness, rooted in HarnessError."""

from __future__ import annotations


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
