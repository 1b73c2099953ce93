"""The TPM command trace: every command that crosses a TCTI, with the TPM's answer and its time.

The trace sits at the TCTI boundary (a Python TCTI wrapping the real one), so it sees the
same bytes for a swtpm process, a container's swtpm and a TPM the harness did not make, and
whoever sent them: the factory, the world's conditions, the simulated client. A device
registers its TPM's TCTI here; every context opened on that TCTI while it is registered
records into the device's trace.
"""

from __future__ import annotations

import time
from typing import Any

from tpm2_pytss import TSS2_Exception
from tpm2_pytss.constants import TPM2_CC, TPM2_RC, TSS2_RC
from tpm2_pytss.TCTI import PyTCTI

from ..results import TPMCommand

_HEADER = 10  # tag (2), size (4), command or response code (4)
_FMT1 = 0x080
_WARN = 0x900
_RC_NAMES = {int(v): f"TPM_RC_{k}" for k, v in vars(TPM2_RC).items() if isinstance(v, int)}
# Format-zero codes first, so that a value shared with a mask or alias keeps the real name.
for _name in ("SUCCESS", "LOCKOUT", "RETRY", "INITIALIZE", "FAILURE", "DISABLED", "NV_RATE"):
    _RC_NAMES[int(getattr(TPM2_RC, _name))] = f"TPM_RC_{_name}"
_CC_NAMES = {int(v): f"TPM2_CC_{k}" for k, v in vars(TPM2_CC).items() if isinstance(v, int)}
_TPM12_TAG = 0x00C4


def command_name(code: int) -> str:
    return _CC_NAMES.get(code, f"0x{code:08X}")


def response_name(rc: int) -> str:
    """TPM_RC_LOCKOUT, TPM_RC_AUTH_FAIL (session 1), ...: the TPM 2.0 Part 2 name of a response code."""
    if rc == 0:
        return "TPM_RC_SUCCESS"
    if rc & _FMT1:
        # Format one: bits 8-11 say which handle, parameter or session the error is about.
        base = _RC_NAMES.get((rc & 0x3F) | _FMT1, f"0x{rc:03X}")
        number = (rc >> 8) & 0x7
        if rc & 0x40:
            return f"{base} (parameter {(rc >> 8) & 0xF})"
        if rc & 0x800:
            return f"{base} (session {number})"
        return f"{base} (handle {number})" if number else base
    if rc & 0x100:  # TPM_RC_VER1: a TPM 2.0 format-zero code
        return _RC_NAMES.get(rc & (_WARN | 0x7F), f"0x{rc:03X}")
    return f"0x{rc:08X}"  # a TPM 1.2 code or a vendor's


class TracingTCTI(PyTCTI):  # type: ignore[misc]
    """Forwards every command to `inner` and appends what happened to `trace`."""

    def __init__(self, inner: Any, trace: Trace) -> None:
        super().__init__(max_size=getattr(inner, "_max_size", 4096) or 4096)
        self._inner = inner
        self._trace = trace
        self._pending: tuple[int, int, float] | None = None

    def do_transmit(self, command: bytes) -> None:
        try:
            data = bytes(command)
            code = int.from_bytes(data[6:_HEADER], "big") if len(data) >= _HEADER else 0
            self._pending = (code, len(data), time.perf_counter())
            self._inner.transmit(data)
        except (KeyboardInterrupt, SystemExit) as stop:
            raise _held(stop) from None

    def do_receive(self, timeout: int) -> bytes:
        try:
            answer = bytes(self._inner.receive(-1, timeout))  # -1: the TCTI's own buffer size
            pending, self._pending = self._pending, None
            if pending is not None:
                # Raw numbers only: the names are decoded once, when the trace is read.
                code, size, start = pending
                elapsed = time.perf_counter() - start
                self._trace.raw.append(
                    (self._trace.source, code, answer[:_HEADER], size, len(answer), elapsed)
                )
            return answer
        except (KeyboardInterrupt, SystemExit) as stop:
            raise _held(stop) from None

    def transmit(self, command: bytes) -> None:
        try:
            super().transmit(command)
        finally:
            raise_held()

    def receive(self, size: int = 4096, timeout: int = -1) -> bytes:
        try:
            return bytes(super().receive(size, timeout))
        finally:
            raise_held()

    def do_cancel(self) -> None:
        self._inner.cancel()

    def do_set_locality(self, locality: int) -> None:
        self._inner.set_locality(locality)

    def do_finalize(self) -> None:
        self.close()

    def close(self) -> None:
        """As TCTILdr.close: the wrapped TCTI is closed once."""
        inner, self._inner = self._inner, None
        if inner is not None:
            inner.close()


class Trace:
    """One device's TPM commands; `source` says which part of its life is sending them."""

    def __init__(self) -> None:
        self.raw: list[tuple[str, int, bytes, int, int, float]] = []
        self.source = "client"

    @property
    def commands(self) -> list[TPMCommand]:
        return [_record(*entry) for entry in self.raw]


def _record(source: str, code: int, header: bytes, size: int, answered: int, seconds: float) -> TPMCommand:
    tag = int.from_bytes(header[:2], "big")
    rc = int.from_bytes(header[6:_HEADER], "big") if len(header) >= _HEADER else -1
    if rc < 0:
        response = "no response header"
    elif tag == _TPM12_TAG:
        response = f"TPM 1.2 response 0x{rc:08X}"
    else:
        response = response_name(rc)
    return TPMCommand(
        source=source,
        command=command_name(code),
        response=response,
        rc=max(rc, 0),
        seconds=round(seconds, 6),
        command_bytes=size,
        response_bytes=answered,
    )


_ACTIVE: dict[tuple[str, str], Trace] = {}
# A Ctrl-C (or SIGTERM turned into one) that arrives while the TSS is inside this Python TCTI
# would be dropped by the C boundary, which keeps only Exceptions: the TCTI fails the command
# and the interrupt is raised again once the TSS call has returned (raise_held).
_HELD: list[BaseException] = []


def _held(stop: BaseException) -> TSS2_Exception:
    _HELD.append(stop)
    return TSS2_Exception(TSS2_RC.TCTI_RC_GENERAL_FAILURE)


def raise_held() -> None:
    """Raise an interrupt that arrived inside a traced TCTI; every TSS call returns through here."""
    if _HELD:
        stop = _HELD.pop()
        _HELD.clear()
        raise stop


def start_trace(tcti: tuple[str, str]) -> Trace:
    """Record every command sent on `tcti` from now until stop_trace."""
    trace = _ACTIVE[tcti] = Trace()
    return trace


def stop_trace(tcti: tuple[str, str]) -> None:
    _ACTIVE.pop(tcti, None)


def traced(tcti: tuple[str, str], channel: Any) -> Any:
    """`channel` wrapped in a TracingTCTI when a device traces `tcti`, else `channel` itself."""
    trace = _ACTIVE.get(tcti)
    return channel if trace is None else TracingTCTI(channel, trace)
