"""Device plans and device runs as JSON, for devices that live in another process or machine
(a Swarm task, a Kubernetes pod).

Generic over the plan's dataclasses (pydantic reads their fields and types), so a setting
the plan gains travels without a change here. A device task gets the plans and the URLs of
the services its world may point it at, never an expectation: those stay with the controller.
"""

from __future__ import annotations

from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from ..client import ClientBehaviour
from ..errors import HarnessError
from ..scenario import EKKind, TPMFamilySetting
from ._device import DeviceRun
from ._plan import DevicePlan

TASK_FORMAT: Final = "enrollment-harness-device-task/1"


class DeviceTask(BaseModel):
    """What a device task is handed: plans (one is chosen by index) and where the services are.

    The vendor CAs that sign EK certificates at manufacturing travel apart, as a secret.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["enrollment-harness-device-task/1"] = TASK_FORMAT
    server_url: str
    # Helper services the controller runs for the task (a lagging replica shares the server's
    # storage), by name: what each offers ('url'). The task starts any other helper itself.
    helpers: dict[str, dict[str, str]] = {}
    plans: list[DevicePlan]

    def plan(self, index: int) -> DevicePlan:
        if not 0 <= index < len(self.plans):
            raise HarnessError(f"device index {index} is outside this task's {len(self.plans)} plan(s)")
        return self.plans[index]


# The plan's dataclasses name some of their field types for type checkers only: give pydantic
# the types they stand for.
DeviceTask.model_rebuild(
    _types_namespace={
        "ClientBehaviour": ClientBehaviour,
        "EKKind": EKKind,
        "TPMFamilySetting": TPMFamilySetting,
    }
)


class _RunDocument(BaseModel):
    # Nonces and registered keys are bytes: base64 in JSON.
    model_config = ConfigDict(ser_json_bytes="base64", val_json_bytes="base64")

    run: DeviceRun


def task_to_json(task: DeviceTask) -> str:
    return task.model_dump_json()


def task_from_json(text: str | bytes, source: str = "the device task") -> DeviceTask:
    try:
        return DeviceTask.model_validate_json(text)
    except ValidationError as exc:
        raise HarnessError(f"{source} is not a device task: {_first_error(exc)}") from None


def run_to_json(run: DeviceRun) -> str:
    """One line of JSON (no newline inside), so a log line carries a whole run."""
    return _RunDocument(run=run).model_dump_json()


def run_from_json(text: str | bytes) -> DeviceRun:
    try:
        return _RunDocument.model_validate_json(text).run
    except ValidationError as exc:
        raise HarnessError(f"not a device run: {_first_error(exc)}") from None


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"]) or "(document)"
    return f"{where}: {error['msg']}"
