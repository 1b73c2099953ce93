"""A device on a TPM the harness did not make: one device at a time, and nothing left behind.

The client persists the MDM key at 0x81000100, as Windows does. On the vendor's TPM that
key is evicted when the device is done, unless something was persisted there before the
device began (then it is not the harness's to remove). Devices of one run that share an
external TPM take turns: a lock file per TCTI in the run's work directory, held for the
device's whole life, serialises them across worker processes.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tpm2_pytss import ESYS_TR, TPM2_CAP, TSS2_Exception

from ..errors import TPMError
from ..tpm import TimedESAPI, parse_tcti
from ..windows import MDM_KEY_HANDLE

_held: set[str] = set()  # TCTIs this process holds a turn on


def _holds(esapi: TimedESAPI, handle: int) -> bool:
    _, data = esapi.get_capability(TPM2_CAP.HANDLES, handle, 1)
    return handle in [int(h) for h in data.data.handles]


def persisted(tcti: tuple[str, str], handle: int) -> bool:
    with TimedESAPI(tcti) as esapi:
        return _holds(esapi, handle)


def evict(tcti: tuple[str, str], handle: int) -> None:
    """Evict the persistent object at `handle`; nothing when there is none."""
    with TimedESAPI(tcti) as esapi:
        if _holds(esapi, handle):
            esapi.evict_control(ESYS_TR.OWNER, esapi.tr_from_tpmpublic(handle), handle)


@contextmanager
def turn_on(spec: str, workdir: Path) -> Iterator[None]:
    """Hold the external TPM at `spec` for one device; other devices of the run wait."""
    if spec in _held:
        # Blocking here would wait for ourselves: a scenario with steps keeps its devices alive.
        raise TPMError(
            f"the external TPM at {spec} already serves a live device of this run; "
            "it serves one device at a time (give a scenario with steps one device per TPM)"
        )
    locks = workdir / "tpm-locks"
    locks.mkdir(exist_ok=True)
    path = locks / f"{hashlib.sha256(spec.encode()).hexdigest()[:16]}.lock"
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        _held.add(spec)
        try:
            yield
        finally:
            _held.discard(spec)
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def left_as_found(spec: str) -> Iterator[None]:
    """Evict the MDM key the device persisted, unless one was there before it began."""
    tcti = parse_tcti(spec)
    try:
        before = persisted(tcti, MDM_KEY_HANDLE)
    except TSS2_Exception as exc:
        raise TPMError(f"the external TPM at {spec} does not answer: {exc}") from exc
    try:
        yield
    finally:
        if not before:
            # Nothing is there when the flow stopped before persisting the key.
            with contextlib.suppress(TSS2_Exception):
                evict(tcti, MDM_KEY_HANDLE)
