"""The public API of each package, and the rule that keeps it the only way in.

A module may import a private (underscore) module or name only from inside the
package that owns it: `harness.fleet._plan` is for `harness.fleet.*`, not for the
CLI, the plugin or the benchmarks. Each package's `__all__` is pinned here, as
httpx pins its exported members, so that a change to a public API is a decision
made in review, not a side effect.
"""

from __future__ import annotations

import ast
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCE_ROOTS = ("harness", "bench")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_private(part: str) -> bool:
    return part.startswith("_") and not part.startswith("__")


def _owner(module: str) -> str:
    """The package whose private module or name this is: everything before its first private part."""
    parts = module.split(".")
    for index, part in enumerate(parts):
        if _is_private(part):
            return ".".join(parts[:index])
    return module


def _resolve(importer: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = importer.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def imported_names(source: str, importer: str, *, is_package: bool = False) -> list[str]:
    """Every module or name a module imports, in full ('harness.fleet._plan.plan_fleet'),
    wherever the import statement is (functions and TYPE_CHECKING blocks included)."""
    names = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = _resolve(importer, is_package, node)
            names.extend(f"{module}.{alias.name}" for alias in node.names if alias.name != "*")
    return names


def private_imports(source: str, importer: str, *, is_package: bool = False) -> list[str]:
    """What `importer` imports from another package's private modules or names."""
    found = []
    for target in imported_names(source, importer, is_package=is_package):
        if not target.startswith(SOURCE_ROOTS):
            continue
        owner = _owner(target)
        if owner != target and not (importer == owner or importer.startswith(owner + ".")):
            found.append(target)
    return found


def _sources() -> list[Path]:
    return sorted(p for root in SOURCE_ROOTS for p in (ROOT / root).rglob("*.py"))


def test_the_checker_finds_private_imports_across_packages() -> None:
    assert private_imports("from harness.fleet._plan import plan_fleet", "harness.cli") == [
        "harness.fleet._plan.plan_fleet"
    ]
    assert private_imports("from .fleet._runner import choose_backend", "harness.cli") == [
        "harness.fleet._runner.choose_backend"
    ]
    assert private_imports("from ..server._enrollment import x", "harness.fleet._session") == [
        "harness.server._enrollment.x"
    ]
    assert private_imports("from harness.tpm import _docker", "bench.run") == ["harness.tpm._docker"]
    assert private_imports("import harness.client._windows", "bench.run") == ["harness.client._windows"]
    # Inside the owning package, and a package's own private modules, are fine.
    assert private_imports("from ._plan import plan_fleet", "harness.fleet", is_package=True) == []
    assert private_imports("from .._yamlfile import read_text", "harness.scenario._loader") == []
    assert private_imports("from ..fleet import plan_fleet", "harness.pytest_plugin._state") == []


def test_no_module_imports_another_packages_private_module() -> None:
    offenders = {}
    for path in _sources():
        importer = _module_name(path)
        found = private_imports(path.read_text(), importer, is_package=path.name == "__init__.py")
        if found:
            offenders[str(path.relative_to(ROOT))] = found
    assert offenders == {}


def test_the_server_imports_no_scenario_world_or_fleet_code() -> None:
    # The server knows only what a real service would: nothing of the world a scenario sets up.
    offenders = {}
    for path in sorted((ROOT / "harness" / "server").rglob("*.py")):
        names = imported_names(path.read_text(), _module_name(path), is_package=path.name == "__init__.py")
        found = [n for n in names if n.startswith(("harness.scenario", "harness.world", "harness.fleet"))]
        if found:
            offenders[str(path.relative_to(ROOT))] = found
    assert offenders == {}


PUBLIC_API: dict[str, list[str]] = {
    "harness.cluster": [
        "DEFAULT_RESTARTS", "EXIT_BAD_INPUT", "EXIT_DONE", "EXIT_HARNESS_ERROR", "RUN_MARKER", "issuers_of",
        "k8s_manifests", "refuse_for_tasks", "run_on_swarm", "run_task_device", "slot_index",
        "task_server_url", "unpack_vendor_cas", "vendor_ca_bundle"
    ],
    "harness.cli": ["app", "main"],
    "harness.protocol": [
        "ATTESTATION_ENROLLMENT_VERSION", "AikActivateRequest", "AikActivateResponse",
        "AikChallengeRequest", "AikChallengeResponse", "AssertionNonceRequest", "AssertionNonceResponse",
        "AttestationOutcome", "B64In", "B64_PATTERN", "CheckinRequest", "CheckinResponse", "Command",
        "ContextItems", "DEVICE_ID_PATTERN", "DeviceIdText", "DeviceRegistrationRequest",
        "DeviceRegistrationResponse", "EnrollmentRequest", "EnrollmentResponse", "EnrollmentTrigger",
        "EnrollmentVersion", "HResultText", "IdText", "MAX_BLOB", "MAX_EK_CHAIN", "MAX_ID",
        "MAX_PUSH_WAIT", "MAX_TEXT", "NonceResponse", "PLAIN_TEXT_PATTERN", "PushMessage", "PushRequest",
        "PushResponse", "REPORT_COLUMNS", "ServiceError", "ShortText", "TokenRequest", "TokenResponse",
        "b64", "canonical_device_id"
    ],
    "harness.client": [
        "AikChallenge", "ClientBehaviour", "ClientConfig", "ClientFailure", "ClientReport", "DeviceKey",
        "EndorsementKey", "Endpoints", "Inventory", "KeyBlob", "LoadedKey", "PushChannel", "PushNote",
        "PytssTPM", "ServiceClient", "SoftwareDeviceKey", "TPMDeviceKey", "TPMProvider", "Trigger",
        "WindowsClient", "key_templates", "next_checkin", "probe_family", "sync_delay", "tpm_hresult"
    ],
    "harness.fleet": [
        "PLATFORMS", "VENDORS", "AdminReader", "DeviceObserver", "DevicePlan", "DeviceRun", "DeviceTask",
        "FinishedDevice", "FleetEnvironment", "FleetRun", "FleetSession", "Inapplicable", "PlatformProfile",
        "Progress", "RecordedEnrollment", "RunInterrupted", "RunOptions", "RunStopped", "Vendor",
        "check_device", "choose_backend", "inapplicable_groups", "plan_fleet", "plan_group",
        "record_enrollment", "run_device", "run_fleet", "run_from_json", "run_to_json", "server_trust",
        "task_from_json", "task_to_json"
    ],
    "harness.history": [
        "SLOWER_FACTOR", "SLOWER_SECONDS", "Change", "DeviceView", "History", "RunDiff", "RunInfo",
        "RunView", "code_identity", "diff_runs", "flaky_keys", "is_flaky", "label", "record_run",
        "run_view", "trends", "view_of"
    ],
    "harness.network": [
        "AMD_MANUFACTURER", "AMD_PATH", "INTEL_PATH", "EKCertificateService", "Fault", "FlakyEndpoint",
        "Link", "RefusingEndpoint", "ResettingEndpoint", "Route", "Rule", "amd_key", "certificate_path",
        "intel_key", "publish"
    ],
    "harness.pki": [
        "CA_LIFETIME", "EK_CERT_NV_INDEX_ECC", "EK_CERT_NV_INDEX_RSA", "LEAF_LIFETIME", "MICROSOFT_VTPM_ID",
        "OID_AIK_CERTIFICATE", "OID_EK_CERTIFICATE", "OID_TPM_MANUFACTURER", "OID_TPM_MODEL",
        "OID_TPM_VERSION", "TCG_VENDORS", "CertificateAuthority", "PublicKey", "TPMIdentity",
        "certificate_der", "create_vendor_cas", "is_ca", "issued_by", "parse_tpm_san", "split_der",
        "tpm_san", "valid_at", "vendor_ca", "vendor_hex", "vendor_id_from_int", "write_private"
    ],
    "harness.status": [
        "NETWORK", "RETRY_RECOMMENDED", "TPM20_RC_BASE", "TPM_ABSENT", "TPM_NOT_READY", "AttestationStatus",
        "HResult", "StatusDetail", "describe", "from_tpm_rc"
    ],
    "harness.pytest_plugin": [
        "DeviceItem", "DeviceMismatch", "ScenarioFile", "explain", "is_scenario_file", "pytest_addoption",
        "pytest_collect_file", "pytest_collection_modifyitems", "pytest_configure", "pytest_configure_node",
        "pytest_runtest_makereport", "pytest_sessionfinish", "pytest_unconfigure",
        "pytest_xdist_make_scheduler"
    ],
    "harness.report": [
        "JUnitExtras", "decode_payload", "failed_step", "junit_name", "load_results", "write_html",
        "write_json", "write_json_document", "write_junit", "write_reports", "write_text_document",
        "write_xml_document", "xml_text"
    ],
    "harness.scenario": [
        "STEP_KINDS", "VIRTUAL_PLATFORMS", "ActionState", "AttestAction", "Backend", "ClientSettings",
        "EKKind", "EntraSettings", "Expectation", "Group", "GroupExpectation", "GroupSettings", "Hardware",
        "HistorySettings", "NetworkSettings", "Ownership", "Platform", "PrincipalSpec", "ReportColumns",
        "ReportFilter", "ReportQuery", "ReportSelection", "ResolvedGroup",
        "SanLayout", "Scenario", "ScenarioFile", "ScenarioModels", "Step", "TPMFamilySetting", "TPMSettings",
        "WorldChange", "load_scenario", "parse_scenario", "refuse_settings_for_backend", "scenario_models"
    ],
    "harness.server": [
        "Clock", "EmbeddedServer", "ManualClock", "Principal", "RbacError", "ServerConfig",
        "StandaloneServer", "SystemClock", "bind_loopback", "create_app", "default_data_dir", "load_rbac",
        "parse_rbac", "prepare_standalone", "serve_foreground"
    ],
    "harness.tpm": [
        "BACKENDS", "BACKEND_NAMES", "DEFAULT_BACKEND", "DEFAULT_DEVICE_IMAGE", "RUN_LABEL",

        "BackendSpec", "ControlChannel", "DockerBackend", "EKAlgorithm", "Engine",
        "EnginePoolBackend", "ExternalTPM", "Manufactured",
        "PlatformControl", "RunningTPM", "SwtpmBackend", "SwtpmProcess",
        "TPMBackend", "TPMRequest", "TimedESAPI", "Trace", "UnknownBackend",
        "change_owner_auth", "check_backend", "command_name", "create_ek", "describe_backends",
        "device_image", "disable_hierarchy",
        "engine_backend", "engine_of", "engine_unavailable", "leave_unstarted",
        "load_engine_file", "lock_out", "manufacture", "open_backend", "open_tcti",
        "parse_engine", "parse_engine_file", "parse_tcti", "preflight", "preflight_all", "remove_leftovers",
        "remove_run_containers", "remove_run_everywhere", "reset_lockout",
        "response_name", "schedule", "spread", "start_trace", "stop_trace", "swarm_client",
        "swarm_preflight", "tpm_death", "write_nv_certificate"
    ],
    "harness.world": [
        "HELPERS", "REGISTRY", "ConditionRegistry", "DeviceLife", "FactoryOrder", "HelperContext",
        "HelperService", "NetworkPath", "PlanDraft", "Setting", "StepChange", "Strict", "TPMPlan",
        "WorldCondition", "WorldValues", "helper_service", "require_helper", "start_helpers",
        "wanted_helpers", "world_condition"
    ],
    "harness.world.conditions": ["BUILT_IN"],
    "harness.trust": [
        "DEFAULT_TOKEN_AUDIENCE", "DEFAULT_TOKEN_ISSUER", "MANIFEST", "BundleError", "BundleVerdict",
        "TrustStore", "default_advisories", "default_platforms", "load_advisories", "load_platforms",
        "load_trust", "parse_advisories", "parse_platforms", "trust_for", "trust_from_options",
        "verify_bundle"
    ],
    "harness.conformance": [
        "FINGERPRINT_PRIMES", "Comparison", "Latency", "MadeUnits", "Row", "RowStatus", "Target", "Unit",
        "VendorCheckError", "VendorReport", "check_command", "compare_command", "compare_reports",
        "load_ek_cas", "load_report", "made_units", "roca_fingerprint", "run_vendor_check",
        "write_vendor_reports"
    ],
    "harness.verifier": [
        "BUNDLE_FORMAT", "DEVICE_ID_CLAIM", "AttestationClaim", "Bundle", "BundleFormatError", "Check",
        "Evidence", "EvidenceFormatError", "FirmwareAdvisory", "IssuedNonce", "NonceState",
        "PlatformRules", "Policy", "TPMKey", "TokenVerdict", "Verdict", "Version", "VersionRange",
        "VirtualPlatform", "VirtualTPM", "bundle_document",
        "certificate_chain_item", "check_aik_attributes", "check_aik_certificate", "check_certify",
        "check_ek_certificate", "check_ek_structure", "check_signing_key_structure", "claimed_nonce",
        "describe_certificate", "evaluate",
        "evidence_from_request", "format_version", "judge_bundle", "load_certificate", "matching_advisory",
        "parse_bundle", "parse_public", "parse_time", "parse_version", "same_public_key",
        "split_certificate_chain", "split_claim", "verified_tpm", "verify_chain", "verify_signature",
        "verify_token"
    ],
}  # fmt: skip


def test_every_package_has_a_pinned_public_api() -> None:
    inits = (ROOT / "harness").rglob("__init__.py")
    packages = sorted(_module_name(init) for init in inits if init.parent != ROOT / "harness")
    assert packages == sorted(PUBLIC_API)


@pytest.mark.parametrize("package", sorted(PUBLIC_API))
def test_a_package_exports_exactly_its_pinned_names(package: str) -> None:
    module = importlib.import_module(package)
    assert sorted(module.__all__) == sorted(PUBLIC_API[package])
    # Every exported name exists, and every public name the package holds is exported.
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert missing == []
    held = [
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and name != "annotations" and not isinstance(value, ModuleType)
    ]
    assert sorted(set(held) - set(module.__all__)) == []


def test_importing_the_tpm_package_leaves_the_environment_alone() -> None:
    # A fresh interpreter: in this one the TSS has long been used.
    env = {k: v for k, v in os.environ.items() if k != "TSS2_LOG"}
    probe = (
        "import json, os; before = dict(os.environ); import harness.tpm, harness.client, harness.fleet; "
        "print(json.dumps({k: v for k, v in os.environ.items() if before.get(k) != v}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], env=env, cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert json.loads(result.stdout) == {}
