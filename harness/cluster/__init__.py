"""Devices past one machine, on engines people already run: a device's life as a task (the
device image), Docker Swarm replicated jobs, and Kubernetes Indexed Job manifests."""

from ._task import (
    EXIT_BAD_INPUT,
    EXIT_DONE,
    EXIT_HARNESS_ERROR,
    RUN_MARKER,
    issuers_of,
    run_task_device,
    slot_index,
    unpack_vendor_cas,
    vendor_ca_bundle,
)

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_DONE",
    "EXIT_HARNESS_ERROR",
    "RUN_MARKER",
    "issuers_of",
    "run_task_device",
    "slot_index",
    "unpack_vendor_cas",
    "vendor_ca_bundle",
]
