"""Kubernetes manifests for a job: a KubeRay RayJob or RayCluster, rendered from its JobSpec.

Pure functions: nothing here talks to an API server. ``render_rayjob`` and
``render_raycluster`` return a YAML stream (without a trailing newline, so that ``print``
writes exactly the checked-in file) of:

1. a PersistentVolumeClaim (ReadWriteMany) for ``model_dir``, mounted at ``model_dir`` in
   every Ray pod: a restarted chief may land on another node and must find its checkpoints
   there, and ps tasks write their variable shards into the same checkpoint;
2. a ConfigMap holding the job YAML as the pods must read it (``model_dir`` absolute, the
   job's code looked up in the image's project directory), mounted on the head at
   ``/etc/harness``. The job in the cluster is therefore the job that was rendered;
3. the RayJob (or RayCluster) itself. Both share one cluster spec (``_ray_cluster_spec``):
   a head that takes no task and no GPU, and worker groups sized by ``worker_groups``.

Storage alternative: object storage mounted as a ReadWriteMany volume by its CSI driver
(Cloud Storage FUSE, Azure Blob), passed as ``PvcOptions(existing_claim=...)``. ``pvc=None``
leaves the volume out, for a ``model_dir`` URL that TensorFlow writes to itself; the harness
does not support that yet (it writes ``logs/`` and ``run.json`` with plain file I/O, and
``JobSpec.from_yaml`` reads ``model_dir`` as a path). See docs/kubernetes.md.

``render_networkpolicy`` renders a NetworkPolicy that lets only the job's own pods reach the
TF gRPC ports and the Ray ports of its pods (see ``POLICY_PORTS``).

Invalid input raises ``harness.job.JobSpecError`` naming the field (or flag) and the fix.
"""

from __future__ import annotations

import json
import math
import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from harness.job import TRAINER_ROLES, JobSpec, JobSpecError, gpus_for

RAY_VERSION = "2.60.0"  # pyproject pins ray[default]==2.60.*; the image must match
PROJECT_DIR = "/app"  # where k8s/Dockerfile puts the project (code of model_fn/input_fn)
JOB_DIR = "/etc/harness"  # where the job ConfigMap is mounted on the head
JOB_FILE = "job.yaml"
EXAMPLE_IMAGE = "ghcr.io/example/tf-harness:0.1.0"  # placeholder used in docs and k8s/

# KubeRay appends "-xxxxx" to a RayJob's name for its RayCluster, and "-head-svc" and
# similar suffixes to a RayCluster's name for its Services (53 + 10 <= 63).
MAX_NAME = {"rayjob": 47, "raycluster": 53, "networkpolicy": 53}

# Sizes in MiB. A task without resources.<role>.memory_mb is given the default of its kind.
DEFAULT_TASK_MEMORY_MIB = {"cpu": 2048, "gpu": 4096}
RAY_OVERHEAD_MIB = 1024  # raylet, agents and the task's actor process, per pod
OBJECT_STORE_MIB = 512  # the job moves no data through Ray's object store
HEAD_CPU = 1
HEAD_MEMORY_MIB = 4096  # GCS, dashboard and the driver (`harness run`, which imports TF)

# Ports. Ray's own ports are pinned in every pod so that a NetworkPolicy can name them.
PINNED_RAY_PORTS = {
    "node-manager-port": 6380,
    "object-manager-port": 6381,
    "dashboard-agent-grpc-port": 6382,
    "runtime-env-agent-port": 6383,
    "metrics-export-port": 8080,
    "dashboard-agent-listen-port": 52365,
    "min-worker-port": 10002,
    "max-worker-port": 19999,
}
GCS_PORT, DASHBOARD_PORT, CLIENT_PORT = 6379, 8265, 10001
# harness.task.hold_port picks TF gRPC ports in [10000, 32768); Ray's worker ports
# (10002-19999) and client port (10001) lie inside that range too.
TASK_PORT_RANGE = (10000, 32767)
POLICY_PORTS = ((6379, 6383), (8080, 8080), (8265, 8265), TASK_PORT_RANGE, (52365, 52365))

_KIND_NAMES = {"rayjob": "RayJob", "raycluster": "RayCluster", "networkpolicy": "NetworkPolicy"}
_DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$")
_IMAGE = re.compile(r"^[a-z0-9][a-z0-9._\-/:@]*$", re.IGNORECASE)
_RESERVED_DIRS = (PROJECT_DIR, JOB_DIR, "/dev/shm", "/tmp/ray", "/home/ray", "/usr", "/etc")
_NO_MOUNT_UNDER = (JOB_DIR, "/dev", "/proc", "/sys")


@dataclass(frozen=True)
class PvcOptions:
    """The shared volume for model_dir: a new claim of ``size``, or ``existing_claim``."""

    size: str = "10Gi"
    storage_class: str | None = None  # None: the cluster's default class (must offer RWX)
    existing_claim: str | None = None  # mount this claim and render none


@dataclass(frozen=True)
class Lifecycle:
    """When KubeRay gives up and cleans up (seconds; see docs/kubernetes.md)."""

    ttl_after_finished: int = 300  # keep the cluster 5 min for `ray job logs`, then delete it
    active_deadline: int = 86400  # the whole RayJob, start to end, including retries' waits
    pre_running_deadline: int | None = 1800  # image pull + scheduling; None leaves it out
    backoff_limit: int = 1  # one retry on a new cluster, resuming from the checkpoints
    submitter_backoff_limit: int = 2  # retries of the `ray job submit` pod


# ---- sizing --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Slot:
    """What the largest task of a group needs; every pod has room for whole slots."""

    cpu: float
    gpu: float
    memory_mib: int


@dataclass(frozen=True)
class WorkerGroup:
    """One KubeRay worker group: identical pods, each with room for ``tasks_per_pod`` slots."""

    name: str
    roles: tuple[str, ...]
    tasks: int
    tasks_per_pod: int
    slot: Slot

    @property
    def replicas(self) -> int:
        return math.ceil(self.tasks / self.tasks_per_pod)

    @property
    def num_cpus(self) -> int:
        """Ray's ``num-cpus`` (whole numbers only) and the pod's Kubernetes CPUs."""
        return max(1, math.ceil(round(self.tasks_per_pod * self.slot.cpu, 6)))

    @property
    def num_gpus(self) -> int:
        """Ray's ``num-gpus`` and the pod's ``nvidia.com/gpu``: whole GPUs."""
        return math.ceil(round(self.tasks_per_pod * self.slot.gpu, 6))

    @property
    def ray_memory_mib(self) -> int:
        return self.tasks_per_pod * self.slot.memory_mib

    @property
    def container_memory_mib(self) -> int:
        return self.ray_memory_mib + OBJECT_STORE_MIB + RAY_OVERHEAD_MIB


def worker_groups(job: JobSpec) -> tuple[WorkerGroup, ...]:
    """Worker groups whose pods hold every placement-group bundle of ``job``, whatever the strategy.

    Bundles are ``{"CPU": cpu, "GPU": gpu, "memory": memory_mb}`` per task (see
    ``cluster.ray_launcher.bundle_for``). The head advertises no CPU, so no bundle lands there.

    - ``gpu-trainers``: chief/workers with ``gpu > 0``, sized for the larger of the two.
      A whole number of GPUs: one task per pod with that many GPUs (Kubernetes, not Ray,
      packs such pods onto multi-GPU nodes). A fraction below 1: ``floor(1 / gpu)`` tasks
      share one GPU in one pod under PACK and SPREAD; under STRICT_SPREAD every task needs a
      node of its own, so each pod holds one task and one GPU. Other amounts (1.5) raise
      JobSpecError: a pod gets whole GPUs and Ray gives a task either a fraction of one GPU
      or whole GPUs, so no pod could hold such a task.
    - ``cpu-trainers`` (chief/workers with no GPU) and ``ps``: one task per pod. Both groups
      use one slot, the largest CPU-only task: Ray may put any CPU-only bundle on any pod
      with room, so these pods must be interchangeable for every placement to fit.

    Why it always fits: a pod holding fewer bundles than its slots has a whole slot free, so
    it takes any bundle of its kind, and each group has slots for all its bundles. Ray's
    placement-group scheduler places bundles that ask for GPUs before CPU-only ones (it
    sorts them so), so CPU-only bundles only ever fill what GPU bundles left over.
    """
    counts = job.task_counts()
    res = job.resources
    gpu_roles = tuple(r for r in TRAINER_ROLES if r in counts and gpus_for(r, res.for_role(r)) > 0)
    cpu_roles = tuple(r for r in TRAINER_ROLES if r in counts and r not in gpu_roles)
    cpu_roles += ("evaluator",) if "evaluator" in counts else ()  # CPU-only, like ps
    ps_roles = ("ps",) if "ps" in counts else ()
    groups = []
    if gpu_roles:
        groups.append(_gpu_group(job, gpu_roles))
    cpu_slot = _slot(job, cpu_roles + ps_roles, DEFAULT_TASK_MEMORY_MIB["cpu"])
    for name, roles in (("cpu-trainers", cpu_roles), ("ps", ps_roles)):
        if roles:
            tasks = sum(counts[r] for r in roles)
            groups.append(WorkerGroup(name, roles, tasks, 1, cpu_slot))
    return tuple(groups)


def _slot(job: JobSpec, roles: Iterable[str], default_memory_mib: int) -> Slot:
    resources = [job.resources.for_role(r) for r in roles]
    return Slot(
        cpu=max((r.cpu for r in resources), default=0.0),
        gpu=max((r.gpu for r in resources), default=0.0),
        memory_mib=max((r.memory_mb or default_memory_mib for r in resources), default=0),
    )


def _gpu_group(job: JobSpec, roles: tuple[str, ...]) -> WorkerGroup:
    for role in roles:
        gpu = job.resources.for_role(role).gpu
        if gpu > 1 and not float(gpu).is_integer():
            raise JobSpecError(
                f"resources.{role}.gpu: {gpu:g} GPUs per task cannot be expressed on "
                f"Kubernetes (got {gpu:g}). Pods get whole GPUs (nvidia.com/gpu) and a Ray "
                "task takes either a fraction of one GPU or whole GPUs; use a fraction below "
                "1 to share a GPU between tasks, or a whole number."
            )
    slot = _slot(job, roles, DEFAULT_TASK_MEMORY_MIB["gpu"])
    tasks = sum(job.task_counts()[r] for r in roles)
    per_pod = 1
    if slot.gpu < 1 and job.placement.strategy != "STRICT_SPREAD":
        per_pod = min(tasks, math.floor(1 / slot.gpu + 1e-9))
    return WorkerGroup("gpu-trainers", roles, tasks, per_pod, slot)


# ---- validation ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Target:
    """Everything a manifest is made from, validated."""

    job: JobSpec
    kind: str
    name: str
    namespace: str
    image: str
    job_path: str | None = None
    pvc: PvcOptions | None = PvcOptions()
    env: Mapping[str, str] = field(default_factory=dict)

    @property
    def claim_name(self) -> str | None:
        if self.pvc is None:
            return None
        return self.pvc.existing_claim or f"{self.name}-model-dir"

    @property
    def entrypoint_path(self) -> str:
        return self.job_path or f"{JOB_DIR}/{JOB_FILE}"


def _target(
    job: JobSpec,
    kind: str,
    image: str | None,
    namespace: str,
    name: str | None,
    job_path: str | None = None,
    pvc: PvcOptions | None = None,
    env: Mapping[str, str] | None = None,
) -> _Target:
    """Validate the options of a manifest of ``kind``; raise JobSpecError on the first problem."""
    _check_name(name or job.name, kind, "--name" if name else "name")
    _check_namespace(namespace)
    if kind != "networkpolicy":
        _check_image(job, image)
        _check_model_dir(job, pvc)
        _check_pvc(pvc)
        worker_groups(job)  # raises on GPU amounts that pods cannot express
    return _Target(
        job=job,
        kind=kind,
        name=name or job.name,
        namespace=namespace,
        image=image or "",
        job_path=job_path,
        pvc=pvc,
        env=dict(env or {}),
    )


def _check_name(name: str, kind: str, field_name: str) -> None:
    limit = MAX_NAME[kind]
    if len(name) <= limit and _DNS1035.match(name):
        return
    fix = "pass --name NAME" if field_name == "name" else "choose another --name"
    raise JobSpecError(
        f"{field_name}: not a valid Kubernetes name for a {_KIND_NAMES[kind]} (got {name!r}). "
        f"Use at most {limit} lowercase letters, digits and '-', starting with a letter and "
        f"ending with a letter or digit (KubeRay adds suffixes such as '-head-svc'); {fix}."
    )


def _check_namespace(namespace: str) -> None:
    if len(namespace) <= 63 and _DNS1123_LABEL.match(namespace):
        return
    raise JobSpecError(
        f"--namespace: not a valid Kubernetes namespace (got {namespace!r}). Use at most 63 "
        "lowercase letters, digits and '-', starting and ending with a letter or digit."
    )


def _check_image(job: JobSpec, image: str | None) -> None:
    if image and _IMAGE.match(image):
        return
    if image:
        raise JobSpecError(
            f"--image: not a container image reference (got {image!r}). Use REGISTRY/NAME:TAG, "
            f"for example {EXAMPLE_IMAGE}."
        )
    gpu_roles = [r for r in TRAINER_ROLES if gpus_for(r, job.resources.for_role(r)) > 0]
    if gpu_roles:
        raise JobSpecError(
            f"--image: the job asks for GPUs (resources.{gpu_roles[0]}.gpu="
            f"{job.resources.for_role(gpu_roles[0]).gpu:g}) but no image was given. Build the "
            "CUDA image from k8s/Dockerfile, push it, and pass --image REGISTRY/NAME:TAG."
        )
    raise JobSpecError(
        "--image: required for Kubernetes: the image with this project installed (build it "
        "from k8s/Dockerfile, push it, and pass --image REGISTRY/NAME:TAG)."
    )


def _check_model_dir(job: JobSpec, pvc: PvcOptions | None) -> None:
    path = job.model_dir.rstrip("/") or "/"
    if pvc is None and path.startswith("/"):
        raise JobSpecError(
            f"model_dir: {job.model_dir!r} is a local path, so every pod needs the shared "
            "volume; keep the claim (pvc), or mount an existing one (--existing-claim)."
        )
    if pvc is None:
        return  # a URL that TensorFlow writes to directly
    if not path.startswith("/"):
        raise JobSpecError(
            f"model_dir: must be an absolute path to mount the shared volume at (got "
            f"{job.model_dir!r}). Use an absolute path such as /data/{job.name}."
        )
    clash = [d for d in _RESERVED_DIRS if path == "/" or d == path or d.startswith(path + "/")]
    clash += [d for d in _NO_MOUNT_UNDER if path.startswith(d + "/")]
    if clash:
        raise JobSpecError(
            f"model_dir: mounting the shared volume at {path!r} would hide {clash[0]}, which "
            f"the pods need (got {job.model_dir!r}). Use a directory of its own, such as "
            f"/data/{job.name}."
        )


def _check_pvc(pvc: PvcOptions | None) -> None:
    if pvc is None:
        return
    for flag, value in (
        ("--existing-claim", pvc.existing_claim),
        ("--storage-class", pvc.storage_class),
    ):
        if value is not None and not (len(value) <= 253 and _DNS1123_SUBDOMAIN.match(value)):
            raise JobSpecError(
                f"{flag}: not a valid Kubernetes object name (got {value!r}). Use lowercase "
                "letters, digits, '-' and '.', starting and ending with a letter or digit."
            )
    if not pvc.existing_claim and not _QUANTITY.match(pvc.size):
        raise JobSpecError(
            f"--storage-size: not a Kubernetes quantity (got {pvc.size!r}). Use for example "
            "10Gi or 500Mi."
        )


def _check_lifecycle(lifecycle: Lifecycle) -> None:
    active, pre_running = lifecycle.active_deadline, lifecycle.pre_running_deadline
    if active < 1:
        raise JobSpecError(
            f"--active-deadline: must be a positive number of seconds (got {active}); it bounds "
            "the whole RayJob, so give it the expected training time plus startup."
        )
    if pre_running is not None and not 1 <= pre_running < active:
        raise JobSpecError(
            f"--pre-running-deadline: must be between 1 and --active-deadline ({active}) "
            f"seconds (got {pre_running}), or 0 to leave it out."
        )
    if (
        lifecycle.ttl_after_finished < 0
        or min(lifecycle.backoff_limit, lifecycle.submitter_backoff_limit) < 0
    ):
        raise JobSpecError(
            f"lifecycle: TTL and backoff limits must not be negative (got {lifecycle})"
        )


# ---- objects -------------------------------------------------------------------------------


def _labels(t: _Target, component: str | None = None) -> dict[str, str]:
    labels = _selector(t) | {"app.kubernetes.io/part-of": "tf-harness"}
    if component:
        labels["app.kubernetes.io/component"] = component
    return labels


def _selector(t: _Target) -> dict[str, str]:
    """Labels every pod of the job carries (head, workers, submitter)."""
    return {"app.kubernetes.io/name": t.job.name, "app.kubernetes.io/instance": t.name}


def _metadata(t: _Target, name: str) -> dict[str, Any]:
    return {"name": name, "namespace": t.namespace, "labels": _labels(t)}


def _mib(value: int) -> str:
    return f"{value // 1024}Gi" if value % 1024 == 0 else f"{value}Mi"


def _resources(cpu: int | str, memory_mib: int, gpus: int = 0) -> dict[str, Any]:
    """Requests equal to limits (Guaranteed QoS); GPUs only when there are any."""
    amounts = {"cpu": str(cpu), "memory": _mib(memory_mib)}
    if gpus:
        amounts["nvidia.com/gpu"] = str(gpus)
    return {"requests": dict(amounts), "limits": dict(amounts)}


def _volumes(t: _Target, head: bool) -> tuple[list[dict], list[dict]]:
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
    t: _Target, component: str, container: dict[str, Any], head: bool, gpu: bool = False
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
    return {"metadata": {"labels": _labels(t, component)}, "spec": spec}


def _ray_params(params: Mapping[str, Any]) -> dict[str, str]:
    """``ray start`` flags of a pod: its resources, a small object store, the pinned ports."""
    fixed = {"object-store-memory": OBJECT_STORE_MIB * 2**20, **PINNED_RAY_PORTS}
    return {key: str(value) for key, value in {**params, **fixed}.items()}


def _head_group(t: _Target) -> dict[str, Any]:
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


def _worker_group(t: _Target, group: WorkerGroup) -> dict[str, Any]:
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


def _ray_cluster_spec(t: _Target) -> dict[str, Any]:
    """The RayCluster spec, shared by the RayJob (rayClusterSpec) and the RayCluster."""
    return {
        "rayVersion": RAY_VERSION,
        "headGroupSpec": _head_group(t),
        "workerGroupSpecs": [_worker_group(t, g) for g in worker_groups(t.job)],
    }


def _submitter_template(t: _Target) -> dict[str, Any]:
    """The pod of `ray job submit`, labelled like the job's pods (KubeRay fills the command)."""
    resources = _resources(1, 1024)
    resources["requests"] = {"cpu": "500m", "memory": "512Mi"}
    container = {"name": "ray-job-submitter", "image": t.image, "resources": resources}
    spec = {"restartPolicy": "Never", "containers": [container]}
    return {"metadata": {"labels": _labels(t, "submitter")}, "spec": spec}


def _rayjob(t: _Target, lifecycle: Lifecycle) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "entrypoint": f"harness run {shlex.quote(t.entrypoint_path)} --backend ray",
        "entrypointNumGpus": 0,  # the driver only supervises; GPUs are for the trainers
        "submissionMode": "K8sJobMode",
        "shutdownAfterJobFinishes": True,
        "ttlSecondsAfterFinished": lifecycle.ttl_after_finished,
        "activeDeadlineSeconds": lifecycle.active_deadline,
        "preRunningDeadlineSeconds": lifecycle.pre_running_deadline,
        "backoffLimit": lifecycle.backoff_limit,
        "submitterConfig": {"backoffLimit": lifecycle.submitter_backoff_limit},
    }
    if not lifecycle.pre_running_deadline:
        del spec["preRunningDeadlineSeconds"]  # for KubeRay versions without the field
    if t.env:
        spec["runtimeEnvYAML"] = _dump({"env_vars": dict(t.env)})
    spec["submitterPodTemplate"] = _submitter_template(t)
    spec["rayClusterSpec"] = _ray_cluster_spec(t)
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayJob",
        "metadata": _metadata(t, t.name),
        "spec": spec,
    }


def _raycluster(t: _Target) -> dict[str, Any]:
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayCluster",
        "metadata": _metadata(t, t.name),
        "spec": _ray_cluster_spec(t),
    }


def _pvc(t: _Target) -> dict[str, Any] | None:
    if t.pvc is None or t.pvc.existing_claim:
        return None
    spec: dict[str, Any] = {
        "accessModes": ["ReadWriteMany"],
        "resources": {"requests": {"storage": t.pvc.size}},
    }
    if t.pvc.storage_class:
        spec["storageClassName"] = t.pvc.storage_class
    metadata = _metadata(t, f"{t.name}-model-dir")
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": metadata, "spec": spec}


def pod_job_yaml(job: JobSpec) -> str:
    """The job YAML the pods read: the job as given, its code looked up in ``PROJECT_DIR``."""
    data = json.loads(job.model_dump_json(exclude_defaults=True))
    data["model_dir"] = job.model_dir
    data["source_dirs"] = [PROJECT_DIR]
    return _dump(data)


def _job_configmap(t: _Target) -> dict[str, Any] | None:
    if t.job_path is not None:
        return None
    metadata = _metadata(t, f"{t.name}-job")
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata,
        "data": {JOB_FILE: pod_job_yaml(t.job)},
    }


def _networkpolicy(t: _Target) -> dict[str, Any]:
    """Ingress to and egress from the job's pods: each other on the task and Ray ports, DNS."""
    ports = [_policy_port(low, high) for low, high in POLICY_PORTS]
    peers = [{"podSelector": {"matchLabels": _selector(t)}}]
    operator = {
        "namespaceSelector": {},
        "podSelector": {"matchLabels": {"app.kubernetes.io/name": "kuberay-operator"}},
    }
    dns = [{"protocol": protocol, "port": 53} for protocol in ("UDP", "TCP")]
    spec = {
        "podSelector": {"matchLabels": _selector(t)},
        "policyTypes": ["Ingress", "Egress"],
        "ingress": [
            {"from": peers, "ports": ports},
            # The KubeRay operator asks the dashboard for the job's status.
            {"from": [operator], "ports": [{"protocol": "TCP", "port": DASHBOARD_PORT}]},
        ],
        "egress": [{"to": peers, "ports": ports}, {"ports": dns}],
    }
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _metadata(t, t.name),
        "spec": spec,
    }


def _policy_port(low: int, high: int) -> dict[str, Any]:
    port: dict[str, Any] = {"protocol": "TCP", "port": low}
    if high != low:
        port["endPort"] = high
    return port


# ---- YAML ----------------------------------------------------------------------------------


class _Dumper(yaml.SafeDumper):
    """Kubernetes-style YAML: indented lists, no anchors, multi-line strings as blocks."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> Any:
        return super().increase_indent(flow, False)

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str_presenter(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str_presenter)


def _dump(data: Any) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=100)


def _stream(t: _Target, documents: Iterable[dict[str, Any] | None]) -> str:
    header = (
        f"# {_KIND_NAMES[t.kind]} for job {t.job.name!r}, rendered by `harness render k8s` "
        "(cluster/k8s.py).\n# Edit the job YAML and render again rather than editing this file.\n"
    )
    body = "".join(f"---\n{_dump(doc)}" for doc in documents if doc is not None)
    return (header + body).rstrip("\n")


# ---- public API ----------------------------------------------------------------------------


def render_rayjob(
    job: JobSpec,
    image: str | None,
    namespace: str = "default",
    name: str | None = None,
    job_path: str | None = None,
    pvc: PvcOptions | None = PvcOptions(),
    lifecycle: Lifecycle = Lifecycle(),
    env: Mapping[str, str] | None = None,
) -> str:
    """A RayJob that runs ``harness run <job> --backend ray`` on its own cluster, as YAML.

    ``job_path``: a job YAML already in the image or on a volume (its model_dir must then
    be absolute and equal to this job's); by default the job travels in a ConfigMap.
    ``env``: environment variables for the driver and every task, passed as the RayJob's
    ``runtimeEnvYAML``. Nothing else needs a runtime env: code and dependencies are in the
    image and the job names its source directory. Raises JobSpecError on invalid input.
    """
    t = _target(job, "rayjob", image, namespace, name, job_path, pvc, env)
    _check_lifecycle(lifecycle)
    return _stream(t, [_pvc(t), _job_configmap(t), _rayjob(t, lifecycle)])


def render_raycluster(
    job: JobSpec,
    image: str | None,
    namespace: str = "default",
    name: str | None = None,
    job_path: str | None = None,
    pvc: PvcOptions | None = PvcOptions(),
) -> str:
    """A long-lived RayCluster sized for ``job``, as YAML; submit the job with ``ray job submit``.

    Same cluster, claim and ConfigMap as ``render_rayjob``, without the job's lifecycle.
    """
    t = _target(job, "raycluster", image, namespace, name, job_path, pvc)
    return _stream(t, [_pvc(t), _job_configmap(t), _raycluster(t)])


def render_networkpolicy(job: JobSpec, namespace: str = "default", name: str | None = None) -> str:
    """A NetworkPolicy letting only the job's pods reach its TF and Ray ports, as YAML.

    ``name``: the RayJob's or RayCluster's name, whose pods the policy selects.
    """
    t = _target(job, "networkpolicy", None, namespace, name)
    return _stream(t, [_networkpolicy(t)])


def render(
    job: JobSpec,
    kind: str = "rayjob",
    image: str | None = None,
    namespace: str = "default",
    name: str | None = None,
    pvc: PvcOptions | None = PvcOptions(),
    lifecycle: Lifecycle = Lifecycle(),
) -> str:
    """``harness render k8s``: the manifest of ``kind`` (rayjob, raycluster, networkpolicy)."""
    if kind == "rayjob":
        return render_rayjob(job, image, namespace, name, pvc=pvc, lifecycle=lifecycle)
    if kind == "raycluster":
        return render_raycluster(job, image, namespace, name, pvc=pvc)
    if kind == "networkpolicy":
        return render_networkpolicy(job, namespace, name)
    raise JobSpecError(f"--kind: unknown kind {kind!r}; use rayjob, raycluster or networkpolicy")
