"""Kubernetes manifests (cluster/k8s.py, `harness render k8s`): schema-valid, sized so that the
job's placement group always fits, identical to the checked-in k8s/*.yaml, clear errors."""

from __future__ import annotations

import importlib.metadata
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from cluster import k8s
from cluster.plan import make_plan
from cluster.ray_launcher import bundle_for
from harness.cli import main
from harness.job import JobSpec, JobSpecError

REPO = Path(__file__).resolve().parents[2]
SCHEMAS = REPO.parent / "shared" / "schemas" / "kuberay"
LINEAR = REPO / "examples" / "linear" / "job.yaml"
IMAGE = k8s.EXAMPLE_IMAGE
K8S_VERSION = "1.30.0"  # a version kubernetes-validate ships; NetworkPolicy endPort is GA there
STRATEGIES = ("PACK", "SPREAD", "STRICT_SPREAD")

GOLDEN = {
    "linear-rayjob.yaml": ("rayjob", f"--image {IMAGE}"),
    "linear-raycluster.yaml": ("raycluster", f"--image {IMAGE} --kind raycluster"),
    "networkpolicy.yaml": ("networkpolicy", "--kind networkpolicy"),
}


def make_job(**changes: Any) -> JobSpec:
    data: dict[str, Any] = {
        "name": "shape",
        "model_fn": "examples.linear.model:model_fn",
        "input_fn": "examples.linear.model:input_fn",
        "model_dir": "/data/shape",
        "train": {"max_steps": 10},
    }
    data.update(changes)
    return JobSpec.from_dict(data)


def res(cpu: float = 1, gpu: float = 0, memory_mb: int | None = None) -> dict[str, Any]:
    return {"cpu": cpu, "gpu": gpu, "memory_mb": memory_mb}


SHAPES = {
    "linear-example": JobSpec.from_yaml(LINEAR),
    "cpu-no-ps-fractional-cpu": make_job(
        cluster={"workers": 3, "ps": 0},
        resources={"chief": res(0.25), "worker": res(0.25)},
    ),
    "gpu-1-per-worker-with-ps": make_job(
        cluster={"workers": 3, "ps": 2},
        resources={"chief": res(4, 1), "worker": res(4, 1), "ps": res(2, memory_mb=8192)},
    ),
    "gpu-1-per-worker-no-ps": make_job(
        cluster={"workers": 1},
        resources={"chief": res(1.5, 1, 6000), "worker": res(2, 1)},
    ),
    "fractional-gpu": make_job(
        cluster={"workers": 4, "ps": 1},
        resources={"chief": res(1.5, 0.5), "worker": res(1, 0.25), "ps": res(0.5)},
    ),
    "cpu-chief-gpu-workers": make_job(
        cluster={"workers": 2, "ps": 1},
        resources={"chief": res(2, 0, 1024), "worker": res(4, 2), "ps": res(1, memory_mb=3000)},
    ),
}


def with_strategy(job: JobSpec, strategy: str) -> JobSpec:
    return job.with_overrides(placement={"strategy": strategy})


def documents(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc is not None]


def by_kind(text: str, kind: str) -> dict[str, Any]:
    return next(doc for doc in documents(text) if doc["kind"] == kind)


def cluster_spec(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["spec"]["rayClusterSpec"] if doc["kind"] == "RayJob" else doc["spec"]


def ray_start_params(doc: dict[str, Any]) -> list[dict[str, str]]:
    spec = cluster_spec(doc)
    return [spec["headGroupSpec"]["rayStartParams"]] + [
        g["rayStartParams"] for g in spec["workerGroupSpecs"]
    ]


def pod_templates(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    spec = cluster_spec(doc)
    templates = {"head": spec["headGroupSpec"]["template"]}
    templates.update({g["groupName"]: g["template"] for g in spec["workerGroupSpecs"]})
    if doc["kind"] == "RayJob":
        templates["submitter"] = doc["spec"]["submitterPodTemplate"]
    return templates


# ---- schemas -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def crd_schemas() -> dict[str, dict[str, Any]]:
    """openAPIV3Schema of the served storage version of each KubeRay CRD, by kind."""
    if not SCHEMAS.is_dir():
        pytest.skip(
            f"KubeRay CRD schemas not found at {SCHEMAS} (CI puts shared/ beside the clone)"
        )
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    schemas = {}
    for path in sorted(SCHEMAS.glob("*.yaml")):
        crd = yaml.load(path.read_text(), Loader=loader)
        version = next(v for v in crd["spec"]["versions"] if v.get("storage"))
        schemas[crd["spec"]["names"]["kind"]] = version["schema"]["openAPIV3Schema"]
    return schemas


def unknown_fields(value: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """Keys the schema does not declare: what `kubectl apply` (strict validation) rejects."""
    if isinstance(value, list):
        items = schema.get("items", {})
        return [p for i, v in enumerate(value) for p in unknown_fields(v, items, f"{path}[{i}]")]
    if not isinstance(value, dict) or schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    props, extra = schema.get("properties"), schema.get("additionalProperties")
    problems = []
    for key, item in value.items():
        if props is not None and key in props:
            problems += unknown_fields(item, props[key], f"{path}.{key}")
        elif isinstance(extra, dict):
            problems += unknown_fields(item, extra, f"{path}.{key}")
        elif props is not None:
            problems.append(f"{path}.{key}")
    return problems


def assert_valid_crd(doc: dict[str, Any], schemas: dict[str, dict[str, Any]]) -> None:
    schema = schemas[doc["kind"]]
    errors = [
        f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
        for e in jsonschema.Draft7Validator(schema).iter_errors(doc)
    ]
    assert not errors, f"{doc['kind']} does not match the CRD schema:\n" + "\n".join(errors)
    assert not unknown_fields(doc, schema), (
        f"fields unknown to the CRD: {unknown_fields(doc, schema)}"
    )


def assert_valid_k8s(obj: dict[str, Any]) -> None:
    try:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        pytest.fail(f"{obj['kind']} {obj['metadata'].get('name')}: {exc.message} at {exc.path}")


@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("kind", ["rayjob", "raycluster"])
def test_manifests_validate_against_the_kuberay_crds(shape, kind, crd_schemas):
    text = k8s.render(SHAPES[shape], kind, image=IMAGE, namespace="ml-team")
    expected = "RayJob" if kind == "rayjob" else "RayCluster"
    kinds = [doc["kind"] for doc in documents(text)]
    assert kinds == ["PersistentVolumeClaim", "ConfigMap", expected]
    assert_valid_crd(by_kind(text, expected), crd_schemas)


@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("kind", ["rayjob", "raycluster"])
def test_pod_templates_and_other_objects_validate_as_kubernetes_objects(shape, kind):
    text = k8s.render(SHAPES[shape], kind, image=IMAGE, namespace="ml-team")
    for doc in documents(text):
        if doc["apiVersion"] != "ray.io/v1":
            assert_valid_k8s(doc)
            continue
        for group, template in pod_templates(doc).items():
            assert_valid_k8s(as_pod(f"{doc['metadata']['name']}-{group}", template))


def as_pod(name: str, template: dict[str, Any]) -> dict[str, Any]:
    metadata = {"name": name, **template["metadata"]}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": template["spec"]}


def test_networkpolicy_validates():
    assert_valid_k8s(by_kind(k8s.render_networkpolicy(SHAPES["linear-example"]), "NetworkPolicy"))


def test_schema_checks_can_fail(crd_schemas):
    doc = by_kind(k8s.render_rayjob(SHAPES["linear-example"], IMAGE), "RayJob")
    doc["spec"]["shutdownAfterJobFinished"] = True  # a typo kubectl would reject
    assert unknown_fields(doc, crd_schemas["RayJob"]) == [".spec.shutdownAfterJobFinished"]
    template = doc["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["template"]
    template["spec"]["containers"][0]["resources"]["limits"]["memory"] = "lots"
    assert list(jsonschema.Draft7Validator(crd_schemas["RayJob"]).iter_errors(doc))
    template["spec"]["toleration"] = []
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(as_pod("x", template), K8S_VERSION, strict=True)


# ---- sizing: every bundle fits -------------------------------------------------------------


def ray_nodes(doc: dict[str, Any]) -> list[dict[str, float]]:
    """The Ray nodes the manifest creates, with the resources their `ray start` declares."""
    spec = cluster_spec(doc)
    groups = [(spec["headGroupSpec"]["rayStartParams"], 1)]
    groups += [(g["rayStartParams"], g["replicas"]) for g in spec["workerGroupSpecs"]]
    return [
        {
            "CPU": float(params["num-cpus"]),
            "GPU": float(params["num-gpus"]),
            "memory": float(params.get("memory", 0)),
        }
        for params, replicas in groups
        for _ in range(replicas)
    ]


def fits(bundle: dict[str, float], free: dict[str, float]) -> bool:
    return all(amount <= free.get(key, 0.0) + 1e-9 for key, amount in bundle.items())


def take(bundle: dict[str, float], free: dict[str, float]) -> None:
    for key, amount in bundle.items():
        free[key] -= amount


def place(nodes: list[dict], bundles: list[dict], strategy: str, rng: random.Random) -> bool:
    """Ray's placement-group algorithms, with any choice among feasible nodes.

    The only ordering assumed is Ray's: bundles with GPUs before CPU-only ones (within each
    kind the order is random here). PACK fills the node chosen for the first pending bundle
    with every pending bundle that fits; SPREAD prefers unused nodes; STRICT_SPREAD needs one.
    """
    gpu = [b for b in bundles if b.get("GPU")]
    cpu = [b for b in bundles if not b.get("GPU")]
    rng.shuffle(gpu)
    rng.shuffle(cpu)
    pending, free, used = gpu + cpu, [dict(n) for n in nodes], set()
    while pending:
        first = pending[0]
        fresh = [i for i, node in enumerate(free) if i not in used and fits(first, node)]
        if not fresh and strategy == "SPREAD":
            fresh = [i for i in used if fits(first, free[i])]
        if not fresh:
            return False
        node = rng.choice(fresh)
        used.add(node)
        batch, pending = (pending, []) if strategy == "PACK" else ([first], pending[1:])
        for bundle in batch:
            if fits(bundle, free[node]):
                take(bundle, free[node])
            else:
                pending.append(bundle)
    return True


def job_bundles(job: JobSpec) -> list[dict[str, float]]:
    return [bundle_for(task) for task in make_plan(job, "ray").tasks]


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_every_bundle_fits_the_pods(shape, strategy):
    job = with_strategy(SHAPES[shape], strategy)
    nodes = ray_nodes(by_kind(k8s.render_rayjob(job, IMAGE), "RayJob"))
    bundles = job_bundles(job)
    rng = random.Random(f"{shape}-{strategy}")
    failures = [trial for trial in range(40) if not place(nodes, bundles, strategy, rng)]
    assert not failures, f"{len(failures)}/40 placements failed: bundles {bundles}, nodes {nodes}"


def test_the_fit_check_can_fail():
    job = SHAPES["gpu-1-per-worker-with-ps"]
    doc = by_kind(k8s.render_rayjob(job, IMAGE), "RayJob")
    doc["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["replicas"] -= 1  # one GPU pod short
    assert not place(ray_nodes(doc), job_bundles(job), "PACK", random.Random(0))
    # pods sized for GPU sharing cannot hold a STRICT_SPREAD placement (one node per bundle)
    packed = ray_nodes(by_kind(k8s.render_rayjob(SHAPES["fractional-gpu"], IMAGE), "RayJob"))
    strict = job_bundles(with_strategy(SHAPES["fractional-gpu"], "STRICT_SPREAD"))
    assert not place(packed, strict, "STRICT_SPREAD", random.Random(0))


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_pod_resources_match_ray_resources(shape):
    job = SHAPES[shape]
    groups = {g.name: g for g in k8s.worker_groups(job)}
    assert sum(g.tasks for g in groups.values()) == job.num_tasks
    for spec in cluster_spec(by_kind(k8s.render_rayjob(job, IMAGE), "RayJob"))["workerGroupSpecs"]:
        group, params = groups[spec["groupName"]], spec["rayStartParams"]
        limits = spec["template"]["spec"]["containers"][0]["resources"]["limits"]
        assert spec["replicas"] * group.tasks_per_pod >= group.tasks
        assert spec["minReplicas"] == spec["maxReplicas"] == spec["replicas"]
        assert limits["cpu"] == params["num-cpus"]
        assert limits.get("nvidia.com/gpu", "0") == params["num-gpus"]
        ray_memory = int(params["memory"]) + int(params["object-store-memory"])
        assert quantity_bytes(limits["memory"]) > ray_memory


def quantity_bytes(quantity: str) -> int:
    return int(quantity[:-2]) * {"Mi": 2**20, "Gi": 2**30}[quantity[-2:]]


# ---- shape of the RayJob -------------------------------------------------------------------


def test_rayjob_driver_takes_no_gpu_and_the_job_cleans_up():
    job = SHAPES["gpu-1-per-worker-with-ps"]
    spec = by_kind(k8s.render_rayjob(job, IMAGE), "RayJob")["spec"]
    assert spec["entrypoint"] == "harness run /etc/harness/job.yaml --backend ray"
    assert spec["entrypointNumGpus"] == 0
    head = spec["rayClusterSpec"]["headGroupSpec"]
    assert head["rayStartParams"]["num-gpus"] == "0"
    assert head["rayStartParams"]["num-cpus"] == "0"
    assert "nvidia.com/gpu" not in head["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert spec["shutdownAfterJobFinishes"] is True
    assert spec["ttlSecondsAfterFinished"] == 300
    assert spec["activeDeadlineSeconds"] > spec["preRunningDeadlineSeconds"] > 0
    assert spec["backoffLimit"] == 1 and spec["submitterConfig"] == {"backoffLimit": 2}
    assert "runtimeEnvYAML" not in spec


def test_gpu_group_has_gpu_limits_and_toleration_ps_group_has_none():
    job = SHAPES["gpu-1-per-worker-with-ps"]
    templates = pod_templates(by_kind(k8s.render_rayjob(job, IMAGE), "RayJob"))
    gpu = templates["gpu-trainers"]["spec"]
    assert gpu["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in gpu[
        "tolerations"
    ]
    for name in ("head", "ps", "submitter"):
        assert "tolerations" not in templates[name]["spec"]
        assert "nvidia.com/gpu" not in str(templates[name]["spec"]["containers"][0]["resources"])


def test_cpu_only_job_has_no_gpu_anything_and_no_ps_group_without_ps():
    text = k8s.render_rayjob(SHAPES["cpu-no-ps-fractional-cpu"], IMAGE)
    assert "nvidia.com/gpu" not in text and "tolerations" not in text
    groups = cluster_spec(by_kind(text, "RayJob"))["workerGroupSpecs"]
    assert [g["groupName"] for g in groups] == ["cpu-trainers"]
    assert groups[0]["replicas"] == 4 and groups[0]["rayStartParams"]["num-cpus"] == "1"


def test_fractional_gpu_rule():
    groups = {g.name: g for g in k8s.worker_groups(SHAPES["fractional-gpu"])}
    assert (groups["gpu-trainers"].tasks_per_pod, groups["gpu-trainers"].replicas) == (2, 3)
    assert groups["gpu-trainers"].num_gpus == 1 and groups["gpu-trainers"].num_cpus == 3
    strict = k8s.worker_groups(with_strategy(SHAPES["fractional-gpu"], "STRICT_SPREAD"))
    assert (strict[0].tasks_per_pod, strict[0].replicas, strict[0].num_gpus) == (1, 5, 1)
    two = k8s.worker_groups(make_job(resources={"chief": res(1, 2)}))
    assert (two[0].tasks_per_pod, two[0].num_gpus) == (1, 2)
    with pytest.raises(JobSpecError, match=r"resources\.worker\.gpu: 1\.5 GPUs"):
        k8s.worker_groups(make_job(cluster={"workers": 1}, resources={"worker": res(1, 1.5)}))


def test_every_pod_mounts_model_dir_and_carries_the_job_labels():
    job = SHAPES["gpu-1-per-worker-with-ps"]
    doc = by_kind(k8s.render_rayjob(job, IMAGE, name="exp-7"), "RayJob")
    selector = {"app.kubernetes.io/name": "shape", "app.kubernetes.io/instance": "exp-7"}
    for name, template in pod_templates(doc).items():
        assert selector.items() <= template["metadata"]["labels"].items(), name
        if name == "submitter":
            continue
        mounts = template["spec"]["containers"][0]["volumeMounts"]
        assert {"name": "model-dir", "mountPath": "/data/shape"} in mounts, name
        claims = [v for v in template["spec"]["volumes"] if v["name"] == "model-dir"]
        assert claims[0]["persistentVolumeClaim"]["claimName"] == "exp-7-model-dir"


def test_pvc_is_rwx_with_size_and_class_and_can_be_left_out():
    job = SHAPES["linear-example"]
    pvc = k8s.PvcOptions(size="50Gi", storage_class="nfs")
    claim = by_kind(k8s.render_rayjob(job, IMAGE, pvc=pvc), "PersistentVolumeClaim")["spec"]
    assert claim == {
        "accessModes": ["ReadWriteMany"],
        "resources": {"requests": {"storage": "50Gi"}},
        "storageClassName": "nfs",
    }
    shared = k8s.render_rayjob(job, IMAGE, pvc=k8s.PvcOptions(existing_claim="team-share"))
    assert "PersistentVolumeClaim" not in [doc["kind"] for doc in documents(shared)]
    assert "claimName: team-share" in shared
    bucket = job.with_overrides(model_dir="gs://bucket/linear")
    text = k8s.render_rayjob(bucket, IMAGE, pvc=None)
    assert "PersistentVolumeClaim" not in text and "model-dir" not in text


@pytest.mark.parametrize("model_dir", ["/", "/app", "/home", "/etc/harness/out", "runs/x"])
def test_model_dir_must_be_a_path_of_its_own(model_dir):
    with pytest.raises(JobSpecError, match=r"^model_dir: "):
        k8s.render_rayjob(make_job(model_dir=model_dir), IMAGE)
    with pytest.raises(JobSpecError, match=r"^model_dir: .* local path"):
        k8s.render_rayjob(make_job(), IMAGE, pvc=None)


def test_the_pods_read_the_job_that_was_rendered():
    job = SHAPES["gpu-1-per-worker-with-ps"]
    configmap = by_kind(k8s.render_rayjob(job, IMAGE), "ConfigMap")
    in_pod = JobSpec.from_dict(yaml.safe_load(configmap["data"]["job.yaml"]))
    assert in_pod == job.with_overrides(source_dirs=[k8s.PROJECT_DIR])


def test_job_path_in_the_image_replaces_the_configmap_and_env_sets_runtime_env():
    text = k8s.render_rayjob(
        SHAPES["linear-example"], IMAGE, job_path="/app/examples/linear/job.yaml", env={"A": "1"}
    )
    assert "ConfigMap" not in [doc["kind"] for doc in documents(text)]
    spec = by_kind(text, "RayJob")["spec"]
    assert spec["entrypoint"] == "harness run /app/examples/linear/job.yaml --backend ray"
    assert yaml.safe_load(spec["runtimeEnvYAML"]) == {"env_vars": {"A": "1"}}


def test_ray_version_and_dockerfile_base_match_the_installed_ray():
    installed = importlib.metadata.version("ray")
    assert installed.split(".")[:2] == k8s.RAY_VERSION.split(".")[:2]
    dockerfile = (REPO / "k8s" / "Dockerfile").read_text()
    assert f"FROM rayproject/ray:{k8s.RAY_VERSION}-py311-gpu" in dockerfile
    assert 'pip install --no-cache-dir "/app[cuda]"' in dockerfile


# ---- network policy ------------------------------------------------------------------------


def covered(port: int) -> bool:
    return any(low <= port <= high for low, high in k8s.POLICY_PORTS)


def test_networkpolicy_covers_every_ray_port_and_the_tf_port_range():
    from harness.runtime.ports import hold_port

    doc = by_kind(k8s.render_rayjob(SHAPES["gpu-1-per-worker-with-ps"], IMAGE), "RayJob")
    for params in ray_start_params(doc):
        ports = [int(v) for k, v in params.items() if k.endswith("-port")]
        assert ports and all(covered(p) for p in ports), params
    head = cluster_spec(doc)["headGroupSpec"]["template"]["spec"]["containers"][0]["ports"]
    assert all(covered(p["containerPort"]) for p in head)
    for _ in range(50):
        with hold_port() as sock:
            assert k8s.TASK_PORT_RANGE[0] <= sock.getsockname()[1] <= k8s.TASK_PORT_RANGE[1]


def test_ray_start_accepts_every_ray_start_param():
    from ray.scripts.scripts import start

    options = {name.lstrip("-"): param for param in start.params for name in param.opts}
    doc = by_kind(k8s.render_rayjob(SHAPES["gpu-1-per-worker-with-ps"], IMAGE), "RayJob")
    for params in ray_start_params(doc):
        for key, value in params.items():
            assert key in options, f"`ray start` has no --{key}"
            options[key].type.convert(value, options[key], None)  # raises on a bad value


def test_networkpolicy_selects_the_job_pods_only():
    policy = by_kind(
        k8s.render_networkpolicy(SHAPES["linear-example"], name="run-2"), "NetworkPolicy"
    )
    selector = {"app.kubernetes.io/name": "linear", "app.kubernetes.io/instance": "run-2"}
    assert policy["spec"]["podSelector"] == {"matchLabels": selector}
    assert policy["spec"]["ingress"][0]["from"] == [{"podSelector": {"matchLabels": selector}}]
    assert {"protocol": "UDP", "port": 53} in policy["spec"]["egress"][1]["ports"]


# ---- golden files and the CLI --------------------------------------------------------------


@pytest.mark.parametrize("filename", sorted(GOLDEN))
def test_checked_in_manifests_equal_the_renderer(filename):
    kind, flags = GOLDEN[filename]
    expected = k8s.render(JobSpec.from_yaml(LINEAR), kind, image=IMAGE) + "\n"
    path = REPO / "k8s" / filename
    command = f"harness render k8s examples/linear/job.yaml {flags} --output k8s/{filename}"
    assert path.exists(), f"k8s/{filename} is missing; create it with:\n  {command}"
    assert path.read_text() == expected, (
        f"k8s/{filename} differs from the renderer's output; regenerate it from the repository "
        f"root with:\n  {command}"
    )


def test_dry_run_prints_the_checked_in_rayjob():
    command = [sys.executable, "-m", "harness", "run", "examples/linear/job.yaml"]
    command += ["--backend", "k8s", "--dry-run", "--image", IMAGE]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == (REPO / "k8s" / "linear-rayjob.yaml").read_text()


@pytest.fixture
def no_tensorflow(monkeypatch):
    """Rendering needs no TensorFlow: keep the CLI from loading it in this process."""
    monkeypatch.setattr(
        "harness.commands.quiet.import_tensorflow_quietly", lambda: None, raising=False
    )


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    out, err = capsys.readouterr()
    return exit_info.value.code, out, err


def write_job(tmp_path: Path, name: str = "gpu-job", **resources: Any) -> str:
    path = tmp_path / "job.yaml"
    data = {
        "name": name,
        "model_fn": "m:model_fn",
        "input_fn": "m:input_fn",
        "model_dir": "/data/run",
        "cluster": {"workers": 1},
        "resources": resources,
        "train": {"max_steps": 5},
    }
    path.write_text(yaml.safe_dump(data))
    return str(path)


BAD_INPUT = {
    "gpu-without-image": ([], {"worker": res(1, 1)}, "gpu-job", ["--image", "GPUs"]),
    "missing-image": ([], {}, "cpu-job", ["--image: required"]),
    "invalid-name": (["--image", IMAGE, "--name", "Exp_1"], {}, "cpu-job", ["--name", "'Exp_1'"]),
    "job-name-not-dns-1035": (["--image", IMAGE], {}, "9lives", ["name:", "pass --name"]),
    "name-too-long": (["--image", IMAGE, "--name", "a" * 48], {}, "cpu-job", ["--name", "47"]),
    "bad-namespace": (["--image", IMAGE, "--namespace=Team_A"], {}, "cpu-job", ["--namespace"]),
    "fractional-gpu-above-1": (["--image", IMAGE], {"worker": res(1, 1.5)}, "g", ["worker.gpu"]),
    "bad-storage-size": (["--image", IMAGE, "--storage-size", "lots"], {}, "j", ["--storage-size"]),
    "bad-claim": (
        ["--image", IMAGE, "--existing-claim", "My_Claim"],
        {},
        "j",
        ["--existing-claim"],
    ),
    "deadlines": (
        ["--image", IMAGE, "--active-deadline", "60"],
        {},
        "j",
        ["--pre-running-deadline"],
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUT))
def test_bad_input_exits_2_naming_the_field(case, tmp_path, capsys, no_tensorflow):
    flags, resources, name, expected = BAD_INPUT[case]
    job = write_job(tmp_path, name, **resources)
    code, out, err = run_cli(["render", "k8s", job, *flags], capsys)
    assert code == 2 and out == ""
    assert err.startswith("harness: error: ")
    for text in expected:
        assert text in err


def test_dry_run_without_image_exits_2(tmp_path, capsys, no_tensorflow):
    job = write_job(tmp_path, "gpu-job", worker=res(1, 1))
    code, out, err = run_cli(["run", job, "--backend", "k8s", "--dry-run"], capsys)
    assert (code, out) == (2, "") and "--image" in err and "resources.worker.gpu=1" in err


def test_render_writes_output_file(tmp_path, capsys, no_tensorflow):
    target = tmp_path / "out.yaml"
    code, out, _ = run_cli(
        ["render", "k8s", str(LINEAR), "--image", IMAGE, "--output", str(target)], capsys
    )
    assert (code, out) == (0, "")
    assert target.read_text() == (REPO / "k8s" / "linear-rayjob.yaml").read_text()
