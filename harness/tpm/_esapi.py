"""An ESAPI context that counts the time spent inside TPM commands.

The benchmark's TPM floor is the sum of this time over devices, so every TPM
command the client sends goes through here.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from tpm2_pytss import ESAPI
from tpm2_pytss.TCTILdr import TCTILdr

from ._trace import raise_held, traced


def open_tcti(tcti: tuple[str, str]) -> Any:
    """A TCTI to the TPM; every TSS context of the harness is opened here.

    tpm2-tss logs every TPM error response to stderr; the client reports those errors
    itself, so the library stays quiet unless the user set TSS2_LOG. The library reads
    the variable when it first logs, so it is set here, before the first TSS call of the
    process, not when the package is imported. A device that traces its TPM gets the TCTI
    wrapped in its trace.
    """
    os.environ.setdefault("TSS2_LOG", "all+NONE")
    return traced(tcti, TCTILdr(tcti[0], tcti[1]))


class TimedESAPI:
    """Wraps tpm2_pytss.ESAPI; every method call adds its duration to `seconds`."""

    def __init__(self, tcti: tuple[str, str]) -> None:
        self.seconds = 0.0
        self.commands = 0
        start = time.perf_counter()
        self._tcti = open_tcti(tcti)
        try:
            self._esapi: Any = ESAPI(self._tcti)
        finally:
            raise_held()
        self.seconds += time.perf_counter() - start

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._esapi, name)
        if not callable(attribute):
            return attribute
        return self._timed(attribute)

    def _timed(self, method: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start
                self.commands += 1
                raise_held()

        return call

    @property
    def raw(self) -> Any:
        """The wrapped ESAPI, for helpers such as NVReadEK that take one."""
        return self._esapi

    def close(self) -> None:
        self._esapi.close()
        self._tcti.close()

    def __enter__(self) -> TimedESAPI:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
