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
3. the RayJob (or RayCluster) itself. Both share one cluster spec
   (``cluster.k8s_pods.ray_cluster_spec``): a head that takes no task and no GPU, and worker
   groups sized by ``worker_groups`` (``cluster.k8s_sizing``) from each task's resources
   (``cluster.resources``: only trainers get GPUs).

As a backend (``K8sBackend``) this is render only: ``render(plan)`` returns the manifests
(``Manifests``; ``describe()`` is their YAML), and there is no ``launch``: applying them is
``kubectl``'s job and running the cluster the KubeRay operator's.

Storage alternative: object storage mounted as a ReadWriteMany volume by its CSI driver
(Cloud Storage FUSE, Azure Blob), passed as ``PvcOptions(existing_claim=...)``. ``pvc=None``
leaves the volume out, for a ``model_dir`` URL that TensorFlow writes to itself; the harness
does not support that yet (it writes ``logs/`` and ``run.json`` with plain file I/O, and
``JobSpec.from_yaml`` reads ``model_dir`` as a path). See docs/kubernetes.md.

``render_networkpolicy`` renders a NetworkPolicy that lets only the job's own pods reach the
TF gRPC ports and the Ray ports of its pods (see ``POLICY_PORTS``).

Invalid input raises ``harness.job.JobSpecError`` naming the field (or flag) and the fix
(``cluster.k8s_options`` validates).
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from cluster.k8s_options import (
    DASHBOARD_PORT,
    EXAMPLE_IMAGE,
    JOB_DIR,
    JOB_FILE,
    KIND_NAMES,
    MAX_NAME,
    PINNED_RAY_PORTS,
    POLICY_PORTS,
    PROJECT_DIR,
    RAY_VERSION,
    TASK_PORT_RANGE,
    Lifecycle,
    PvcOptions,
    Target,
    check_lifecycle,
    target,
)
from cluster.k8s_pods import metadata, ray_cluster_spec, selector, submitter_template
from cluster.k8s_sizing import (
    DEFAULT_TASK_MEMORY_MIB,
    OBJECT_STORE_MIB,
    RAY_OVERHEAD_MIB,
    Slot,
    WorkerGroup,
    worker_groups,
)
from cluster.plan import Plan, make_plan
from harness.job import JobSpec, JobSpecError

__all__ = [
    "DEFAULT_TASK_MEMORY_MIB",
    "EXAMPLE_IMAGE",
    "JOB_DIR",
    "JOB_FILE",
    "MAX_NAME",
    "OBJECT_STORE_MIB",
    "PINNED_RAY_PORTS",
    "POLICY_PORTS",
    "PROJECT_DIR",
    "RAY_OVERHEAD_MIB",
    "RAY_VERSION",
    "TASK_PORT_RANGE",
    "K8sBackend",
    "Lifecycle",
    "Manifests",
    "PvcOptions",
    "Slot",
    "WorkerGroup",
    "pod_job_yaml",
    "render",
    "render_networkpolicy",
    "render_raycluster",
    "render_rayjob",
    "worker_groups",
]


DEFAULT_PVC = PvcOptions()
DEFAULT_LIFECYCLE = Lifecycle()

# ---- manifests -----------------------------------------------------------------------------


def _rayjob(t: Target, lifecycle: Lifecycle) -> dict[str, Any]:
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
    spec["submitterPodTemplate"] = submitter_template(t)
    spec["rayClusterSpec"] = ray_cluster_spec(t)
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayJob",
        "metadata": metadata(t, t.name),
        "spec": spec,
    }


def _raycluster(t: Target) -> dict[str, Any]:
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayCluster",
        "metadata": metadata(t, t.name),
        "spec": ray_cluster_spec(t),
    }


def _pvc(t: Target) -> dict[str, Any] | None:
    if t.pvc is None or t.pvc.existing_claim:
        return None
    spec: dict[str, Any] = {
        "accessModes": ["ReadWriteMany"],
        "resources": {"requests": {"storage": t.pvc.size}},
    }
    if t.pvc.storage_class:
        spec["storageClassName"] = t.pvc.storage_class
    meta = metadata(t, f"{t.name}-model-dir")
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta, "spec": spec}


def pod_job_yaml(job: JobSpec) -> str:
    """The job YAML the pods read: the job as given, its code looked up in ``PROJECT_DIR``."""
    data = json.loads(job.model_dump_json(exclude_defaults=True))
    data["model_dir"] = job.model_dir
    data["source_dirs"] = [PROJECT_DIR]
    return _dump(data)


def _job_configmap(t: Target) -> dict[str, Any] | None:
    if t.job_path is not None:
        return None
    meta = metadata(t, f"{t.name}-job")
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta,
        "data": {JOB_FILE: pod_job_yaml(t.job)},
    }


def _networkpolicy(t: Target) -> dict[str, Any]:
    """Ingress to and egress from the job's pods: each other on the task and Ray ports, DNS."""
    ports = [_policy_port(low, high) for low, high in POLICY_PORTS]
    peers = [{"podSelector": {"matchLabels": selector(t)}}]
    operator = {
        "namespaceSelector": {},
        "podSelector": {"matchLabels": {"app.kubernetes.io/name": "kuberay-operator"}},
    }
    dns = [{"protocol": protocol, "port": 53} for protocol in ("UDP", "TCP")]
    spec = {
        "podSelector": {"matchLabels": selector(t)},
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
        "metadata": metadata(t, t.name),
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


def _stream(t: Target, documents: Iterable[dict[str, Any] | None]) -> str:
    header = (
        f"# {KIND_NAMES[t.kind]} for job {t.job.name!r}, rendered by `harness render k8s` "
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
    pvc: PvcOptions | None = DEFAULT_PVC,
    lifecycle: Lifecycle = DEFAULT_LIFECYCLE,
    env: Mapping[str, str] | None = None,
) -> str:
    """A RayJob that runs ``harness run <job> --backend ray`` on its own cluster, as YAML.

    ``job_path``: a job YAML already in the image or on a volume (its model_dir must then
    be absolute and equal to this job's); by default the job travels in a ConfigMap.
    ``env``: environment variables for the driver and every task, passed as the RayJob's
    ``runtimeEnvYAML``. Nothing else needs a runtime env: code and dependencies are in the
    image and the job names its source directory. Raises JobSpecError on invalid input.
    """
    t = target(job, "rayjob", image, namespace, name, job_path, pvc, env)
    check_lifecycle(lifecycle)
    return _stream(t, [_pvc(t), _job_configmap(t), _rayjob(t, lifecycle)])


def render_raycluster(
    job: JobSpec,
    image: str | None,
    namespace: str = "default",
    name: str | None = None,
    job_path: str | None = None,
    pvc: PvcOptions | None = DEFAULT_PVC,
) -> str:
    """A long-lived RayCluster sized for ``job``, as YAML; submit the job with ``ray job submit``.

    Same cluster, claim and ConfigMap as ``render_rayjob``, without the job's lifecycle.
    """
    t = target(job, "raycluster", image, namespace, name, job_path, pvc)
    return _stream(t, [_pvc(t), _job_configmap(t), _raycluster(t)])


def render_networkpolicy(job: JobSpec, namespace: str = "default", name: str | None = None) -> str:
    """A NetworkPolicy letting only the job's pods reach its TF and Ray ports, as YAML.

    ``name``: the RayJob's or RayCluster's name, whose pods the policy selects.
    """
    t = target(job, "networkpolicy", None, namespace, name)
    return _stream(t, [_networkpolicy(t)])


def render(
    job: JobSpec,
    kind: str = "rayjob",
    image: str | None = None,
    namespace: str = "default",
    name: str | None = None,
    pvc: PvcOptions | None = DEFAULT_PVC,
    lifecycle: Lifecycle = DEFAULT_LIFECYCLE,
) -> str:
    """``harness render k8s``: the manifest of ``kind`` (rayjob, raycluster, networkpolicy)."""
    if kind == "rayjob":
        return render_rayjob(job, image, namespace, name, pvc=pvc, lifecycle=lifecycle)
    if kind == "raycluster":
        return render_raycluster(job, image, namespace, name, pvc=pvc)
    if kind == "networkpolicy":
        return render_networkpolicy(job, namespace, name)
    raise JobSpecError(f"--kind: unknown kind {kind!r}; use rayjob, raycluster or networkpolicy")


# ---- as a backend --------------------------------------------------------------------------


@dataclass(frozen=True)
class Manifests:
    """The rendered manifests of one job: ``kind`` (rayjob, raycluster, networkpolicy), YAML."""

    kind: str
    text: str

    def describe(self) -> str:
        return self.text


class K8sBackend:
    """``--backend k8s`` and ``harness render k8s``: render only.

    ``render(plan)`` returns the ``Manifests``; there is no ``launch``: applying them is
    ``kubectl``'s job (``kubectl apply -f``), and the KubeRay operator starts the cluster,
    where the driver runs ``harness run --backend ray``.
    """

    name = "k8s"

    def __init__(
        self,
        image: str | None,
        kind: str = "rayjob",
        namespace: str = "default",
        name: str | None = None,
        pvc: PvcOptions | None = DEFAULT_PVC,
        lifecycle: Lifecycle = DEFAULT_LIFECYCLE,
    ) -> None:
        self.image, self.kind, self.namespace, self.name = image, kind, namespace, name
        self.pvc, self.lifecycle = pvc, lifecycle

    def plan(self, job: JobSpec) -> Plan:
        return make_plan(job, "k8s")

    def render(self, plan: Plan) -> Manifests:
        """Pure: the manifests of ``plan``'s job; raises JobSpecError on invalid input."""
        text = render(
            plan.job,
            self.kind,
            image=self.image,
            namespace=self.namespace,
            name=self.name,
            pvc=self.pvc,
            lifecycle=self.lifecycle,
        )
        return Manifests(self.kind, text)
