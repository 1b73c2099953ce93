"""TPM backends: the protocol, the registry, the swtpm-process, external and docker drivers,
platform control, manufacturing and the conditions real TPMs meet."""

from ._backend import RunningTPM, TPMBackend, TPMRequest, tpm_death
from ._conditions import (
    change_owner_auth,
    disable_hierarchy,
    leave_unstarted,
    lock_out,
    reset_lockout,
)
from ._docker import (
    RUN_LABEL,
    DockerBackend,
    engine_of,
    engine_unavailable,
    preflight,
    remove_run_containers,
)
from ._engine_file import load_engine_file, parse_engine_file
from ._engine_pool import EnginePoolBackend, preflight_all, remove_run_everywhere
from ._engines import Engine, parse_engine, schedule, spread
from ._esapi import TimedESAPI, open_tcti
from ._external import ExternalTPM, parse_tcti
from ._manufacture import EKAlgorithm, Manufactured, create_ek, manufacture, write_nv_certificate
from ._platform import ControlChannel, PlatformControl
from ._registry import (
    BACKEND_NAMES,
    BACKENDS,
    DEFAULT_BACKEND,
    BackendSpec,
    UnknownBackend,
    check_backend,
    describe_backends,
    engine_backend,
    open_backend,
    remove_leftovers,
)
from ._swarm import DEFAULT_DEVICE_IMAGE, device_image, swarm_client, swarm_preflight
from ._swtpm import SwtpmBackend, SwtpmProcess
from ._trace import Trace, command_name, response_name, start_trace, stop_trace

__all__ = [
    "BACKENDS",
    "BACKEND_NAMES",
    "DEFAULT_BACKEND",
    "DEFAULT_DEVICE_IMAGE",
    "RUN_LABEL",
    "BackendSpec",
    "ControlChannel",
    "DockerBackend",
    "EKAlgorithm",
    "Engine",
    "EnginePoolBackend",
    "ExternalTPM",
    "Manufactured",
    "PlatformControl",
    "RunningTPM",
    "SwtpmBackend",
    "SwtpmProcess",
    "TPMBackend",
    "TPMRequest",
    "TimedESAPI",
    "Trace",
    "UnknownBackend",
    "change_owner_auth",
    "check_backend",
    "command_name",
    "create_ek",
    "describe_backends",
    "device_image",
    "disable_hierarchy",
    "engine_backend",
    "engine_of",
    "engine_unavailable",
    "leave_unstarted",
    "load_engine_file",
    "lock_out",
    "manufacture",
    "open_backend",
    "open_tcti",
    "parse_engine",
    "parse_engine_file",
    "parse_tcti",
    "preflight",
    "preflight_all",
    "remove_leftovers",
    "remove_run_containers",
    "remove_run_everywhere",
    "reset_lockout",
    "response_name",
    "schedule",
    "spread",
    "start_trace",
    "stop_trace",
    "swarm_client",
    "swarm_preflight",
    "tpm_death",
    "write_nv_certificate",
]
