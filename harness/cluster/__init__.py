"""Devices past one machine, on engines people already run: a device's life as a task (the
device image), Docker Swarm replicated jobs, and Kubernetes Indexed Job manifests."""

from ._k8s import k8s_manifests
from ._swarm import DEFAULT_RESTARTS, run_on_swarm, task_server_url
from ._task import (
    EXIT_BAD_INPUT,
    EXIT_DONE,
    EXIT_HARNESS_ERROR,
    RUN_MARKER,
    issuers_of,
    refuse_for_tasks,
    run_task_device,
    slot_index,
    unpack_vendor_cas,
    vendor_ca_bundle,
)

__all__ = [
    "DEFAULT_RESTARTS",
    "EXIT_BAD_INPUT",
    "EXIT_DONE",
    "EXIT_HARNESS_ERROR",
    "RUN_MARKER",
    "issuers_of",
    "k8s_manifests",
    "refuse_for_tasks",
    "run_on_swarm",
    "run_task_device",
    "slot_index",
    "task_server_url",
    "unpack_vendor_cas",
    "vendor_ca_bundle",
]
