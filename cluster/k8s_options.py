"""What a Kubernetes manifest is made from: the names, ports and paths, the options
(``PvcOptions``, ``Lifecycle``) and their validation into a ``Target``.

Invalid input raises ``harness.job.JobSpecError`` naming the field (or flag) and the fix.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from cluster.k8s_sizing import worker_groups
from cluster.resources import gpu_roles
from harness.job import JobSpec, JobSpecError

RAY_VERSION = "2.60.0"  # pyproject pins ray[default]==2.60.*; the image must match
PROJECT_DIR = "/app"  # where k8s/Dockerfile puts the project (code of model_fn/input_fn)
JOB_DIR = "/etc/harness"  # where the job ConfigMap is mounted on the head
JOB_FILE = "job.yaml"
EXAMPLE_IMAGE = "ghcr.io/example/tf-harness:0.1.0"  # placeholder used in docs and k8s/

# KubeRay appends "-xxxxx" to a RayJob's name for its RayCluster, and "-head-svc" and
# similar suffixes to a RayCluster's name for its Services (53 + 10 <= 63).
MAX_NAME = {"rayjob": 47, "raycluster": 53, "networkpolicy": 53}


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
# harness.runtime.ports.hold_port picks TF gRPC ports in [10000, 32768); Ray's worker ports
# (10002-19999) and client port (10001) lie inside that range too.
TASK_PORT_RANGE = (10000, 32767)
POLICY_PORTS = ((6379, 6383), (8080, 8080), (8265, 8265), TASK_PORT_RANGE, (52365, 52365))

KIND_NAMES = {"rayjob": "RayJob", "raycluster": "RayCluster", "networkpolicy": "NetworkPolicy"}
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


@dataclass(frozen=True)
class Target:
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


def target(
    job: JobSpec,
    kind: str,
    image: str | None,
    namespace: str,
    name: str | None,
    job_path: str | None = None,
    pvc: PvcOptions | None = None,
    env: Mapping[str, str] | None = None,
) -> Target:
    """Validate the options of a manifest of ``kind``; raise JobSpecError on the first problem."""
    _check_name(name or job.name, kind, "--name" if name else "name")
    _check_namespace(namespace)
    if kind != "networkpolicy":
        _check_image(job, image)
        _check_model_dir(job, pvc)
        _check_pvc(pvc)
        worker_groups(job)  # raises on GPU amounts that pods cannot express
    return Target(
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
        f"{field_name}: not a valid Kubernetes name for a {KIND_NAMES[kind]} (got {name!r}). "
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
    roles = gpu_roles(job)
    if roles:
        raise JobSpecError(
            f"--image: the job asks for GPUs (resources.{roles[0]}.gpu="
            f"{job.resources.for_role(roles[0]).gpu:g}) but no image was given. Build the "
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


def check_lifecycle(lifecycle: Lifecycle) -> None:
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
