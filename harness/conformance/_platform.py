"""The platform's reset line for a TPM vendor-check did not make, through what its TCTI offers.

Sleep, resume and power loss are not commands a client sends; a real platform drives
_TPM_Init with its reset line. swtpm publishes that line as its control channel (the
socket path with '.ctrl' appended, or the TCP port after the command port); the reference
simulator on the mssim TCTI as its platform port (the command port + 1). A hardware TPM
behind /dev/tpm* offers neither, and the rows that need one are skipped with that reason.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ..errors import TPMError
from ..tpm import ControlChannel

# The reference simulator's platform signals (TPMCmds/Simulator/include/TpmTcpProtocol.h).
_MSSIM_POWER_ON = 1
_MSSIM_POWER_OFF = 2
_MSSIM_NV_ON = 11


class ResetLine(Protocol):
    """_TPM_Init as the platform drives it; the TPM then waits for TPM2_Startup."""

    def restart(self, *, power_lost: bool) -> None: ...


@dataclass(frozen=True)
class SwtpmResetLine:
    channel: ControlChannel

    def restart(self, *, power_lost: bool) -> None:
        # Without power loss swtpm keeps what TPM2_Shutdown(STATE) saved, as a sleeping
        # platform keeps the TPM powered; with it the volatile state is gone.
        self.channel.init(delete_volatile=power_lost)

    def __str__(self) -> str:
        return f"swtpm control channel {self.channel}"


@dataclass(frozen=True)
class MssimResetLine:
    host: str
    port: int  # the platform port

    def _signal(self, code: int) -> None:
        try:
            with socket.create_connection((self.host, self.port), timeout=10) as connection:
                connection.sendall(struct.pack(">I", code))
                answer = connection.recv(4)
        except OSError as exc:
            raise TPMError(f"the simulator's platform port {self} does not answer: {exc}") from exc
        if answer != b"\0\0\0\0":
            raise TPMError(f"the simulator refused platform signal {code}: {answer.hex() or 'no answer'}")

    def restart(self, *, power_lost: bool) -> None:
        # The simulator keeps its NV across a power cycle; TPM2_Shutdown(STATE) saved into it.
        self._signal(_MSSIM_POWER_OFF)
        self._signal(_MSSIM_POWER_ON)
        self._signal(_MSSIM_NV_ON)

    def __str__(self) -> str:
        return f"mssim platform port {self.host}:{self.port}"


def _options(conf: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in conf.split(",") if "=" in part)


def reset_line_for(tcti: tuple[str, str]) -> tuple[ResetLine | None, str]:
    """The TCTI's reset line, or None and why the TPM offers none."""
    name, conf = tcti
    options = _options(conf)
    if name == "swtpm":
        if "path" in options:
            ctrl = Path(options["path"] + ".ctrl")
            if ctrl.exists():
                return SwtpmResetLine(ControlChannel(ctrl)), ""
            return None, f"swtpm's control channel {ctrl} does not exist (start swtpm with --ctrl there)"
        host, port = options.get("host", "localhost"), int(options.get("port", "2321"))
        return SwtpmResetLine(ControlChannel((host, port + 1))), ""
    if name == "mssim":
        host, port = options.get("host", "localhost"), int(options.get("port", "2321"))
        return MssimResetLine(host, port + 1), ""
    return None, (
        f"TCTI '{name}' offers no platform reset line: on hardware, _TPM_Init and power are "
        "the platform firmware's; run these rows on the vendor's simulator or an swtpm"
    )
