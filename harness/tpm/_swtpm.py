"""The swtpm driver: one real swtpm process per device, on unix sockets.

Unix sockets instead of TCP ports: no port is ever guessed, and the swtpm TCTI
finds the control channel by the same path with '.ctrl' appended. Each swtpm is
started with a parent-death signal, so a worker that crashes takes its TPMs
with it; a normal close terminates the process and removes its state.
"""

from __future__ import annotations

import ctypes
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from ..errors import BackendUnavailable, TPMError
from ._backend import TPMFamily, TPMRequest
from ._platform import ControlChannel, SwtpmPlatform
from ._tracking import LiveSet

_PR_SET_PDEATHSIG = 1
_START_TIMEOUT = 10.0


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    # Ctrl-C at a terminal reaches the whole foreground group; the harness stops each
    # swtpm itself so that it can remove the state in order.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _accepts(path: Path) -> bool:
    if not path.exists():
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


def swtpm_binary() -> str:
    found = shutil.which("swtpm")
    if found is None:
        raise BackendUnavailable("swtpm is not installed (Debian package 'swtpm'); run 'make setup'")
    return found


class SwtpmProcess(SwtpmPlatform):
    """One running swtpm and its state directory, removed on close.

    Its control channel is the platform's view of the TPM (reset, power, startup).
    """

    def __init__(self, request: TPMRequest, workdir: Path) -> None:
        self._family: TPMFamily = request.family
        self._dir = Path(tempfile.mkdtemp(prefix="tpm-", dir=workdir))
        self._closed = False
        state = self._dir / "state"
        if request.state_from is not None:
            shutil.copytree(request.state_from, state)
        else:
            state.mkdir()
        self._socket = self._dir / "tpm.sock"
        flags = "not-need-init"
        if request.startup:
            flags += ",startup-clear"
        command = [
            swtpm_binary(),
            "socket",
            "--tpmstate", f"dir={state}",
            "--server", f"type=unixio,path={self._socket}",
            "--ctrl", f"type=unixio,path={self._socket}.ctrl",
            "--flags", flags,
            "--log", f"file={self._dir / 'swtpm.log'},level=1",
        ]  # fmt: skip
        if request.family == "2.0":
            command.insert(2, "--tpm2")
        self._log = (self._dir / "swtpm.stderr").open("wb")
        try:
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
                close_fds=True,
            )
        except OSError as exc:
            self._log.close()
            shutil.rmtree(self._dir, ignore_errors=True)
            raise TPMError(f"cannot start swtpm: {exc}") from exc
        _LIVE.add(self)
        try:
            self._wait_ready()
        except BaseException:
            self.close()
            raise

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + _START_TIMEOUT
        ctrl = Path(f"{self._socket}.ctrl")
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise TPMError(f"swtpm exited with {self._process.returncode}: {self._stderr()}")
            # A socket file exists from bind() on, before listen(): only a connection that
            # succeeds shows that swtpm accepts. Both channels, since clients use both.
            if _accepts(ctrl) and _accepts(self._socket):
                return
            time.sleep(0.005)
        raise TPMError(f"swtpm did not open its sockets within {_START_TIMEOUT:.0f}s")

    def _stderr(self) -> str:
        try:
            return (self._dir / "swtpm.stderr").read_text(errors="replace")[-500:].strip()
        except OSError:
            return ""

    @property
    def pid(self) -> int:
        return self._process.pid

    @property
    def tcti(self) -> tuple[str, str]:
        return ("swtpm", f"path={self._socket}")

    @property
    def control(self) -> ControlChannel:
        return ControlChannel(Path(f"{self._socket}.ctrl"))

    @property
    def family(self) -> TPMFamily:
        return self._family

    @property
    def description(self) -> str:
        return f"swtpm (TPM {self._family}, pid {self._process.pid})"

    def manufacturable(self) -> bool:
        return True

    def save_state(self, into: Path) -> None:
        shutil.copytree(self._dir / "state", into)

    def death(self) -> str | None:
        if self._closed:
            return None  # stopped by the harness, not died
        code = self._process.poll()
        if code is None:
            return None
        if code < 0:
            return f"swtpm (pid {self._process.pid}) was killed by {signal.Signals(-code).name}"
        said = self._stderr()
        return f"swtpm (pid {self._process.pid}) exited with status {code}" + (f": {said}" if said else "")

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            if self._process.poll() is None:
                self._process.terminate()
                try:
                    self._process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self._process.kill()
                    self._process.wait()
        finally:
            self._log.close()
            shutil.rmtree(self._dir, ignore_errors=True)
            _LIVE.discard(self)


class SwtpmBackend:
    """Starts one swtpm process per device; close() stops any still running."""

    name = "process"  # its name in the backend registry

    def __init__(self) -> None:
        swtpm_binary()

    def start(self, request: TPMRequest, workdir: Path) -> SwtpmProcess:
        return SwtpmProcess(request, workdir)

    def close(self) -> None:
        close_all()


# Every live swtpm of this process, so that a signal handler or atexit can stop them all.
_LIVE: LiveSet[SwtpmProcess] = LiveSet()


def close_all() -> None:
    _LIVE.close_all()


def live_pids() -> list[int]:
    return [p.pid for p in _LIVE.snapshot()]
