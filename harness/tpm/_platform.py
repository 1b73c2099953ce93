"""The platform's hold on a TPM: what firmware and the power supply do to it.

A TPM in a real machine is reset, power-cycled, left un-started by firmware and
cleared from the firmware menu; none of that is a command a client can send.
swtpm offers the same through its control channel, which both the swtpm process
and the swtpm container publish. `PlatformControl` is what the harness asks of any
TPM that offers such a channel; a TPM without one (an external TPM) does not
implement it, and conditions that need it are refused with the reason.
"""

from __future__ import annotations

import socket
import struct
from pathlib import Path
from typing import Protocol, runtime_checkable

from tpm2_pytss import ESYS_TR, TPM2_SU, TSS2_Exception

from ..errors import TPMError
from ._esapi import TimedESAPI

# swtpm's control channel commands (swtpm's tpm_ioctl.h): each is a big-endian u32, then
# the command's parameters; most answers start with a u32 result, 0 for success.
_CMD_GET_CAPABILITY = 1
_CMD_INIT = 2  # _TPM_Init: what the platform's reset line does to the TPM
_INIT_FLAG_DELETE_VOLATILE = 1  # forget saved volatile state, as a power loss does
_TPM_RC_INITIALIZE = 0x100  # TPM2_Startup has not been sent since the last _TPM_Init


@runtime_checkable
class PlatformControl(Protocol):
    """What the platform (firmware, reset line, power) can do to a TPM."""

    def reset(self) -> None:
        """A reboot: the OS shuts the TPM down in order, _TPM_Init, then firmware's TPM2_Startup(CLEAR)."""
        ...

    def power_cycle(self) -> None:
        """Power lost and back: no orderly shutdown, _TPM_Init, then TPM2_Startup(CLEAR)."""
        ...

    def leave_unstarted(self) -> None:
        """A platform reset after which firmware never sends TPM2_Startup."""
        ...

    def clear(self) -> None:
        """TPM2_Clear with platform authorization, as the firmware's 'Clear TPM' does."""
        ...


class ControlChannel:
    """swtpm's control channel, on a unix socket (a local swtpm) or TCP (a container's port)."""

    def __init__(self, address: Path | tuple[str, int], *, timeout: float = 10.0) -> None:
        self.address = address
        self.timeout = timeout

    def __str__(self) -> str:
        if isinstance(self.address, Path):
            return str(self.address)
        return f"{self.address[0]}:{self.address[1]}"

    def _call(self, request: bytes, answer_size: int, timeout: float) -> bytes:
        if isinstance(self.address, Path):
            connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            connection.settimeout(timeout)
            try:
                connection.connect(str(self.address))
            except BaseException:
                connection.close()
                raise
        else:
            connection = socket.create_connection(self.address, timeout=timeout)
        with connection:
            connection.sendall(request)
            answer = b""
            while len(answer) < answer_size:
                chunk = connection.recv(answer_size - len(answer))
                if not chunk:
                    break
                answer += chunk
        return answer

    def init(self, *, delete_volatile: bool = False) -> None:
        """_TPM_Init; the TPM then waits for TPM2_Startup."""
        flags = _INIT_FLAG_DELETE_VOLATILE if delete_volatile else 0
        try:
            answer = self._call(struct.pack(">II", _CMD_INIT, flags), 4, self.timeout)
        except OSError as exc:
            raise TPMError(f"swtpm's control channel at {self} does not answer: {exc}") from exc
        if len(answer) != 4 or struct.unpack(">I", answer)[0] != 0:
            raise TPMError(f"swtpm refused the reset: {answer.hex() or 'no answer'}")

    def answers(self, timeout: float = 2.0) -> bool:
        """True when swtpm answers a capability query: it is up and serving."""
        try:
            answer = self._call(struct.pack(">I", _CMD_GET_CAPABILITY), 8, timeout)
        except OSError:
            return False
        return len(answer) >= 4 and struct.unpack(">I", answer[:4])[0] == 0


class SwtpmPlatform:
    """PlatformControl through swtpm's control channel, for any TPM that publishes one.

    A subclass provides `control` and `tcti`; the TPM2_Startup and TPM2_Shutdown that
    firmware and the OS send go through the TPM's own channel.
    """

    @property
    def control(self) -> ControlChannel:
        raise NotImplementedError

    @property
    def tcti(self) -> tuple[str, str]:
        raise NotImplementedError

    def leave_unstarted(self) -> None:
        self.control.init()

    def reset(self) -> None:
        with TimedESAPI(self.tcti) as esapi:
            try:
                esapi.shutdown(TPM2_SU.CLEAR)
            except TSS2_Exception as exc:
                if int(exc.rc) & 0xFFFF != _TPM_RC_INITIALIZE:  # never started: nothing to shut
                    raise
        self.control.init()
        self._startup()

    def power_cycle(self) -> None:
        self.control.init(delete_volatile=True)
        self._startup()

    def clear(self) -> None:
        with TimedESAPI(self.tcti) as esapi:
            esapi.clear(ESYS_TR.PLATFORM)

    def _startup(self) -> None:
        with TimedESAPI(self.tcti) as esapi:
            esapi.startup(TPM2_SU.CLEAR)
