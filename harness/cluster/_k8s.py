"""A fleet on Kubernetes, on paper: the device image as Indexed Jobs, generated from scenarios.

Each Job runs `harness device run` in completion mode Indexed: the completion index is the
device's index into the plans of the Job's ConfigMap, as the slot is under Swarm. The vendor
CAs are a Secret; the device pods get no service-account token (they talk to the reference
server only). The controller's own account may create the Jobs and read their pods and logs
(a Role and RoleBinding). Expectations never reach these objects: only plans do.

The manifests are checked against the Kubernetes API schemas in the tests; they have not run
on a cluster here (see the README, "Devices as tasks").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import HarnessError
from ..fleet import DevicePlan, DeviceTask, task_to_json
from ..world import wanted_helpers
from ._swarm import DEFAULT_RESTARTS, PLANS_PER_JOB
from ._task import issuers_of, vendor_ca_bundle

NAME = "enrollment-harness"
LAGGING_REPLICA = "lagging-replica"  # the helper that shares the server's storage
_TASK_DIR = "/etc/enrollment-harness/task"
_CAS_DIR = "/etc/enrollment-harness/vendor-cas"
_DEVICE_UID = 10001  # the device image's user
_ARGS = ["--plan", f"{_TASK_DIR}/task.json", "--vendor-cas", f"{_CAS_DIR}/vendor-cas.json"]


def _labels(component: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": NAME, "app.kubernetes.io/component": component}


def _metadata(name: str, namespace: str, component: str) -> dict[str, Any]:
    return {"name": name, "namespace": namespace, "labels": _labels(component)}


def k8s_manifests(
    plans: list[DevicePlan],
    *,
    pki_dir: Path,
    image: str,
    server_url: str,
    namespace: str = NAME,
    lagging_replica_url: str = "",
    foreign_identity_url: str = "",
    parallelism: int = 4,
    restarts: int = DEFAULT_RESTARTS,
    run_id: str = "run",
) -> list[dict[str, Any]]:
    """The objects that run `plans` as Indexed Jobs: namespace, accounts, RBAC, secret,
    and a ConfigMap and Job per PLANS_PER_JOB devices. Raises HarnessError when a plan needs
    a service no URL was given for."""
    helpers = {name: {"url": url} for name, url in _given(lagging_replica_url, foreign_identity_url) if url}
    _require(plans, helpers)
    objects: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": namespace, "labels": _labels("fleet")},
        },
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": _metadata(f"{NAME}-device", namespace, "device"),
            "automountServiceAccountToken": False,
        },
        *_controller_rbac(namespace),
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": _metadata(f"{NAME}-{run_id}-vendor-cas", namespace, "device"),
            "type": "Opaque",
            "stringData": {"vendor-cas.json": vendor_ca_bundle(pki_dir, issuers_of(plans))},
        },
    ]
    for number in range(0, len(plans), PLANS_PER_JOB):
        chunk = plans[number : number + PLANS_PER_JOB]
        task = DeviceTask(server_url=server_url, helpers=helpers, plans=chunk)
        name = f"{NAME}-{run_id}-devices-{number // PLANS_PER_JOB}"
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": _metadata(name, namespace, "device"),
                "data": {"task.json": task_to_json(task)},
            }
        )
        objects.append(_job(name, namespace, image, len(chunk), parallelism, restarts, run_id))
    return objects


def _given(lagging_replica_url: str, foreign_identity_url: str) -> list[tuple[str, str]]:
    return [(LAGGING_REPLICA, lagging_replica_url), ("foreign-identity", foreign_identity_url)]


def _require(plans: list[DevicePlan], helpers: dict[str, dict[str, str]]) -> None:
    for plan in plans:
        # A lagging replica shares the server's storage: a pod cannot start one of its own.
        if LAGGING_REPLICA in wanted_helpers([plan.world]) and LAGGING_REPLICA not in helpers:
            raise HarnessError(f"{plan.key}: its world needs the lagging replica: --lagging-replica-url")
        if plan.tpm.tcti is not None:
            raise HarnessError(f"{plan.key}: a device on an external TPM runs next to that TPM, not as a pod")


def _controller_rbac(namespace: str) -> list[dict[str, Any]]:
    """What the controller (harness run, in or outside the cluster) may do in the namespace."""
    name = f"{NAME}-controller"
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _metadata(name, namespace, "controller")},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": _metadata(name, namespace, "controller"),
            "rules": [
                {
                    "apiGroups": ["batch"],
                    "resources": ["jobs"],
                    "verbs": ["create", "get", "list", "watch", "delete"],
                },
                {"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get", "list", "watch"]},
                {"apiGroups": [""], "resources": ["configmaps", "secrets"], "verbs": ["create", "delete"]},
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": _metadata(name, namespace, "controller"),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
        },
    ]


def _job(
    name: str, namespace: str, image: str, completions: int, parallelism: int, restarts: int, run_id: str
) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _metadata(name, namespace, "device"),
        "spec": {
            "completionMode": "Indexed",
            "completions": completions,
            "parallelism": max(1, min(parallelism, completions)),
            # A device whose pod failed is tried again up to `restarts` times, on its own index.
            "backoffLimitPerIndex": restarts,
            "ttlSecondsAfterFinished": 3600,
            "template": {
                "metadata": {"labels": {**_labels("device"), "enrollment-harness/run": run_id}},
                "spec": {
                    "restartPolicy": "Never",
                    "serviceAccountName": f"{NAME}-device",
                    "automountServiceAccountToken": False,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": _DEVICE_UID,
                        "runAsGroup": _DEVICE_UID,
                        # The secret's files belong to this group, readable by it only.
                        "fsGroup": _DEVICE_UID,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [
                        {
                            "name": "device",
                            "image": image,
                            # JOB_COMPLETION_INDEX: set by Kubernetes in every pod of an Indexed Job.
                            "args": [*_ARGS, "--index-env", "JOB_COMPLETION_INDEX"],
                            "resources": {
                                # TPM key generation is CPU: about 0.8 CPU-seconds per device.
                                "requests": {"cpu": "500m", "memory": "128Mi"},
                                "limits": {"memory": "512Mi"},
                            },
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "readOnlyRootFilesystem": True,
                                "capabilities": {"drop": ["ALL"]},
                            },
                            "volumeMounts": [
                                {"name": "task", "mountPath": _TASK_DIR, "readOnly": True},
                                {"name": "vendor-cas", "mountPath": _CAS_DIR, "readOnly": True},
                                # swtpm's state and sockets, the task's temporary directory.
                                {"name": "tmp", "mountPath": "/tmp"},
                            ],
                        }
                    ],
                    "volumes": [
                        {"name": "task", "configMap": {"name": name}},
                        {
                            "name": "vendor-cas",
                            "secret": {"secretName": f"{NAME}-{run_id}-vendor-cas", "defaultMode": 0o440},
                        },
                        {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
                    ],
                },
            },
        },
    }
