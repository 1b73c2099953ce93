"""TPM backends: the protocol, the registry, the swtpm-process, external and docker drivers,
platform control, manufacturing and the conditions real TPMs meet."""

from ._backend import RunningTPM, TPMBackend, TPMFamily, TPMRequest
from ._conditions import (
    Hierarchy,
    change_owner_auth,
    disable_hierarchy,
    leave_unstarted,
    lock_out,
    reset_lockout,
)
from ._docker import (
    RUN_LABEL,
    DockerBackend,
    DockerTPM,
    engine_of,
    engine_unavailable,
    preflight,
    remove_run_containers,
)
from ._engine_file import load_engine_file, parse_engine_file
from ._engine_pool import EnginePoolBackend, preflight_all, remove_run_everywhere
from ._engines import Engine, EngineTLS, engine_from_env, parse_engine, schedule, spread
from ._esapi import TimedESAPI, open_tcti
from ._external import ExternalBackend, ExternalTPM, parse_tcti
from ._manufacture import EKAlgorithm, Manufactured, create_ek, manufacture
from ._platform import ControlChannel, PlatformControl, SwtpmPlatform
from ._registry import (
    BACKEND_NAMES,
    BACKENDS,
    DEFAULT_BACKEND,
    BackendEntry,
    BackendName,
    BackendSpec,
    UnknownBackend,
    check_backend,
    describe_backends,
    engine_backend,
    open_backend,
    remove_leftovers,
)
from ._swtpm import SwtpmBackend, SwtpmProcess, close_all, live_pids, swtpm_binary

__all__ = [
    "BACKENDS",
    "BACKEND_NAMES",
    "DEFAULT_BACKEND",
    "RUN_LABEL",
    "BackendEntry",
    "BackendName",
    "BackendSpec",
    "ControlChannel",
    "DockerBackend",
    "DockerTPM",
    "EKAlgorithm",
    "Engine",
    "EnginePoolBackend",
    "EngineTLS",
    "ExternalBackend",
    "ExternalTPM",
    "Hierarchy",
    "Manufactured",
    "PlatformControl",
    "RunningTPM",
    "SwtpmBackend",
    "SwtpmPlatform",
    "SwtpmProcess",
    "TPMBackend",
    "TPMFamily",
    "TPMRequest",
    "TimedESAPI",
    "UnknownBackend",
    "change_owner_auth",
    "check_backend",
    "close_all",
    "create_ek",
    "describe_backends",
    "disable_hierarchy",
    "engine_backend",
    "engine_from_env",
    "engine_of",
    "engine_unavailable",
    "leave_unstarted",
    "live_pids",
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
    "schedule",
    "spread",
    "swtpm_binary",
]
