"""The run's clock lock: a scenario with steps moves the server's clock; nothing else runs meanwhile.

`harness run` runs its scenarios with steps after every other device, in one process. Under
pytest-xdist, devices run in several processes at once, so the order is kept by a lock file
in the run's work directory: each device holds it shared while it runs, a scenario with steps
holds it exclusively from its first enrollment to its last checkpoint. A scenario with steps
also claims its name there: its devices must live in one process, and a second process that
was handed some of them (an xdist mode that splits a scenario) is told so, not run twice.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import HarnessError

_LOCK = "clock.lock"


class ClockLock:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir

    @contextmanager
    def shared(self) -> Iterator[None]:
        with self._held(fcntl.LOCK_SH):
            yield

    @contextmanager
    def exclusive(self, scenario: str) -> Iterator[None]:
        self._claim(scenario)
        with self._held(fcntl.LOCK_EX):
            yield

    @contextmanager
    def _held(self, mode: int) -> Iterator[None]:
        fd = os.open(self.workdir / _LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, mode)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    def _claim(self, scenario: str) -> None:
        name = hashlib.sha256(scenario.encode()).hexdigest()[:16]
        claim = self.workdir / f"steps-{name}.claimed"
        try:
            os.close(os.open(claim, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            raise HarnessError(
                f"scenario '{scenario}' with steps already ran in this run, in another process; its devices "
                "must run together in one (pytest-xdist: --dist load, loadgroup, loadscope or loadfile)"
            ) from None
