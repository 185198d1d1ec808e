"""The pods of a job's Ray cluster: the head, one worker group per ``WorkerGroup``, the
submitter, with the shared model_dir volume, labels and pinned Ray ports.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cluster.k8s_options import (
    CLIENT_PORT,
    DASHBOARD_PORT,
    GCS_PORT,
    JOB_DIR,
    PINNED_RAY_PORTS,
    RAY_VERSION,
    Target,
)
from cluster.k8s_sizing import (
    HEAD_CPU,
    HEAD_MEMORY_MIB,
    OBJECT_STORE_MIB,
    WorkerGroup,
    worker_groups,
)


def labels(t: Target, component: str | None = None) -> dict[str, str]:
    labels = selector(t) | {"app.kubernetes.io/part-of": "tf-harness"}
    if component:
        labels["app.kubernetes.io/component"] = component
    return labels


def selector(t: Target) -> dict[str, str]:
    """Labels every pod of the job carries (head, workers, submitter)."""
    return {"app.kubernetes.io/name": t.job.name, "app.kubernetes.io/instance": t.name}


def metadata(t: Target, name: str) -> dict[str, Any]:
    return {"name": name, "namespace": t.namespace, "labels": labels(t)}


def _mib(value: int) -> str:
    return f"{value // 1024}Gi" if value % 1024 == 0 else f"{value}Mi"


def _resources(cpu: int | str, memory_mib: int, gpus: int = 0) -> dict[str, Any]:
    """Requests equal to limits (Guaranteed QoS); GPUs only when there are any."""
    amounts = {"cpu": str(cpu), "memory": _mib(memory_mib)}
    if gpus:
        amounts["nvidia.com/gpu"] = str(gpus)
    return {"requests": dict(amounts), "limits": dict(amounts)}


def _volumes(t: Target, head: bool) -> tuple[list[dict], list[dict]]:
    """(volumes, volumeMounts): model_dir's claim, /dev/shm for Ray, and the job on the head."""
    volumes: list[dict] = [
        {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": _mib(2 * OBJECT_STORE_MIB)}}
    ]
    mounts: list[dict] = [{"name": "dshm", "mountPath": "/dev/shm"}]
    if t.claim_name:
        volumes.append({"name": "model-dir", "persistentVolumeClaim": {"claimName": t.claim_name}})
        mounts.append({"name": "model-dir", "mountPath": t.job.model_dir})
    if head and t.job_path is None:
        volumes.append({"name": "job", "configMap": {"name": f"{t.name}-job"}})
        mounts.append({"name": "job", "mountPath": JOB_DIR, "readOnly": True})
    return volumes, mounts


def _pod_template(
    t: Target, component: str, container: dict[str, Any], head: bool, gpu: bool = False
) -> dict[str, Any]:
    volumes, mounts = _volumes(t, head)
    container = {
        "name": container["name"],
        "image": t.image,
        "imagePullPolicy": "IfNotPresent",
        **container,
        "volumeMounts": mounts,
    }
    spec: dict[str, Any] = {
        "containers": [container],
        "volumes": volumes,
        # The image's `ray` user is in group 100; make the volume writable for it.
        "securityContext": {"fsGroup": 100, "fsGroupChangePolicy": "OnRootMismatch"},
    }
    if gpu:
        spec["tolerations"] = [
            {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
        ]
    return {"metadata": {"labels": labels(t, component)}, "spec": spec}


def _ray_params(params: Mapping[str, Any]) -> dict[str, str]:
    """``ray start`` flags of a pod: its resources, a small object store, the pinned ports."""
    fixed = {"object-store-memory": OBJECT_STORE_MIB * 2**20, **PINNED_RAY_PORTS}
    return {key: str(value) for key, value in {**params, **fixed}.items()}


def _head_group(t: Target) -> dict[str, Any]:
    """The head runs GCS, the dashboard and the driver; it takes no task and no GPU."""
    ports = [
        {"containerPort": GCS_PORT, "name": "gcs-server"},
        {"containerPort": DASHBOARD_PORT, "name": "dashboard"},
        {"containerPort": CLIENT_PORT, "name": "client"},
        {"containerPort": PINNED_RAY_PORTS["metrics-export-port"], "name": "metrics"},
    ]
    container = {
        "name": "ray-head",
        "ports": ports,
        "resources": _resources(HEAD_CPU, HEAD_MEMORY_MIB),
    }
    return {
        "rayStartParams": _ray_params({"dashboard-host": "0.0.0.0", "num-cpus": 0, "num-gpus": 0}),
        "template": _pod_template(t, "ray-head", container, head=True),
    }


def _worker_group(t: Target, group: WorkerGroup) -> dict[str, Any]:
    container = {
        "name": "ray-worker",
        "resources": _resources(group.num_cpus, group.container_memory_mib, group.num_gpus),
    }
    params = {
        "num-cpus": group.num_cpus,
        "num-gpus": group.num_gpus,
        "memory": group.ray_memory_mib * 2**20,
    }
    return {
        "groupName": group.name,
        "replicas": group.replicas,
        "minReplicas": group.replicas,
        "maxReplicas": group.replicas,
        "rayStartParams": _ray_params(params),
        "template": _pod_template(t, group.name, container, head=False, gpu=group.num_gpus > 0),
    }


def ray_cluster_spec(t: Target) -> dict[str, Any]:
    """The RayCluster spec, shared by the RayJob (rayClusterSpec) and the RayCluster."""
    return {
        "rayVersion": RAY_VERSION,
        "headGroupSpec": _head_group(t),
        "workerGroupSpecs": [_worker_group(t, g) for g in worker_groups(t.job)],
    }


def submitter_template(t: Target) -> dict[str, Any]:
    """The pod of `ray job submit`, labelled like the job's pods (KubeRay fills the command)."""
    resources = _resources(1, 1024)
    resources["requests"] = {"cpu": "500m", "memory": "512Mi"}
    container = {"name": "ray-job-submitter", "image": t.image, "resources": resources}
    spec = {"restartPolicy": "Never", "containers": [container]}
    return {"metadata": {"labels": labels(t, "submitter")}, "spec": spec}
