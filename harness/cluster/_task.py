"""One device's life as a task: a Swarm task or a Kubernetes pod runs it from its plan.

The task holds the client and swtpm (the device image, swtpm-images/device.Dockerfile). It
manufactures the device's TPM with the vendor CA its plan names (the vendor CAs come as a
secret), lets the world happen, joins and enrolls against the server, and prints what the
client did as one line for the controller. The server stays the source of truth: the
controller reads each device's status from it, as for a device run in its own workers.

Everything a world puts next to the device runs in the task too: the TCP relays and the
refusing or resetting endpoints on the task's loopback, and every helper service the
controller did not hand it (the vendor's online EK-certificate service serving what the
task's factory published, another tenant's identity provider). A helper that shares the
server's storage (a lagging replica) runs with the controller, and the task reaches it by
the URL it is given.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

from ..errors import HarnessError
from ..fleet import DevicePlan, DeviceRun, DeviceTask, FleetEnvironment, run_device
from ..scenario import Scenario
from ..tpm import SwtpmBackend
from ..world import HELPERS, HelperContext, wanted_helpers

# The line of a task's output that carries its device's run, for the controller to read.
RUN_MARKER = "HARNESS-DEVICE-RUN "
# Exit codes of `harness device run`: the device's life ran to its end (its status is the
# server's), it met a harness error (its run says which), or the task's input was bad.
EXIT_DONE, EXIT_BAD_INPUT, EXIT_HARNESS_ERROR = 0, 2, 3

_CA_FILE = re.compile(r"[a-z0-9][a-z0-9-]{0,63}\.(cert|key)\.pem")


def vendor_ca_bundle(pki_dir: Path, issuers: Iterable[str]) -> str:
    """The vendor CAs the plans' factories sign with, as one JSON document (a secret's content)."""
    files: dict[str, str] = {}
    for issuer in sorted(set(issuers)):
        for kind in ("cert", "key"):
            name = f"{issuer}.{kind}.pem"
            files[name] = (pki_dir / name).read_text(encoding="ascii")
    return json.dumps(files, sort_keys=True)


def unpack_vendor_cas(document: str, into: Path) -> None:
    """Write the bundle's CAs into `into`, readable by this user only."""
    try:
        files = json.loads(document)
    except json.JSONDecodeError as exc:
        raise HarnessError(f"the vendor CAs are not JSON: {exc}") from None
    if not isinstance(files, dict):
        raise HarnessError("the vendor CAs must be a JSON object of file names and PEM texts")
    into.mkdir(mode=0o700, parents=True, exist_ok=True)
    for name, text in files.items():
        if not isinstance(name, str) or not _CA_FILE.fullmatch(name) or not isinstance(text, str):
            raise HarnessError(f"the vendor CAs hold an entry that is not a CA file: {name!r}")
        path = into / name
        path.write_text(text, encoding="ascii")
        path.chmod(0o600)


def issuers_of(plans: Iterable[DevicePlan]) -> set[str]:
    return {plan.tpm.issuer for plan in plans if plan.tpm.issuer}


def slot_index(value: str) -> int:
    """A device index from the environment: a number, or Swarm's slot template of slot 0.

    Swarm renders `{{.Task.Slot}}` as the node id when the slot is 0 (the form it uses for
    global services, whose tasks all have slot 0); a replicated job's slots are 0..N-1.
    """
    value = value.strip()
    if value.isdigit():
        return int(value)
    if re.fullmatch(r"[a-z0-9]{25}", value):
        return 0
    raise HarnessError(f"the device index must be a number, not {value!r}")


@contextmanager
def _task_dir() -> Iterator[Path]:
    # Short, under /tmp by default: swtpm's unix socket paths must fit in 108 bytes.
    base = os.environ.get("HARNESS_TMPDIR") or ("/tmp" if os.path.isdir("/tmp") else None)
    path = Path(tempfile.mkdtemp(prefix="eah-task-", dir=base))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def run_task_device(
    task: DeviceTask, index: int, *, vendor_cas: str | None, server_url: str | None = None
) -> DeviceRun:
    """Run device `index` of the task from its plan; the server's URL may be given anew."""
    plan = task.plan(index)
    if plan.tpm.tcti is not None:
        raise HarnessError(f"{plan.key}: a device on an external TPM runs next to that TPM, not as a task")
    with _task_dir() as workdir, ExitStack() as stack:
        pki_dir = workdir / "pki"
        if plan.tpm.issuer:
            if vendor_cas is None:
                raise HarnessError(f"{plan.key}: its factory needs the vendor CAs (--vendor-cas FILE)")
            unpack_vendor_cas(vendor_cas, pki_dir)
        helpers: dict[str, dict[str, str]] = {name: dict(o) for name, o in task.helpers.items()}
        # No primary storage here: a helper that needs it offers nothing, and the device then
        # says that its world needs what the controller did not hand the task.
        context = HelperContext(workdir=workdir, roots=[], primary_data_dir=None)
        for name in wanted_helpers([plan.world]):
            if name not in helpers:
                offered = stack.enter_context(HELPERS[name].start(context))
                if offered:
                    helpers[name] = dict(offered)
        env = FleetEnvironment(
            server_url=(server_url or task.server_url).rstrip("/"),
            pki_dir=pki_dir,
            workdir=workdir,
            helpers=helpers,
        )
        backend = SwtpmBackend()
        stack.callback(backend.close)
        return run_device(plan, env, backend)


def refuse_for_tasks(scenarios: Sequence[Scenario], backend: str) -> None:
    """Raise HarnessError for what a device task cannot do, before anything starts."""
    for scenario in scenarios:
        if scenario.steps:
            raise HarnessError(
                f"{scenario.path}: scenario '{scenario.name}' has steps: its devices stay alive between "
                f"steps, and a device task under '{backend}' ends with its first enrollment; run it "
                "with --backend process or docker"
            )
        for number, group in enumerate(scenario.groups):
            if group.tpm.tcti is not None:
                raise HarnessError(
                    f"{scenario.path}: groups[{number}].tpm.tcti: a group on an external TPM runs next to "
                    f"that TPM, not as a task under '{backend}'"
                )
