"""The backends of ``harness run``, by name: plan → ``render(plan)`` → ``launch(request)``.

Every backend turns a JobSpec into a ``Plan`` (``plan``) and the plan into a request
(``render``): a frozen dataclass saying what would be started, with which resources,
bundles, environment and commands, whose ``describe()`` is the ``--dry-run`` text. Rendering
is pure: it starts nothing and connects to nothing. The local and Ray backends also
``launch`` a request, which returns the ``cluster.handles.Launcher`` the supervisor drives;
Kubernetes only renders manifests (``cluster.k8s.K8sBackend``).

Each backend module is imported only when its backend is chosen.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from cluster.handles import Launcher
from cluster.plan import Plan
from harness.job import JobSpec, JobSpecError

NAMES = ("local", "ray", "k8s")
LAUNCHING = ("local", "ray")  # the backends with a ``launch``


class Request(Protocol):
    """What a backend will start (frozen); ``describe()`` is ``harness run --dry-run``'s text."""

    def describe(self) -> str: ...


class Backend(Protocol):
    name: str

    def plan(self, job: JobSpec) -> Plan: ...
    def render(self, plan: Plan) -> Any: ...  # a Request, pure


class LaunchingBackend(Backend, Protocol):
    def launch(self, request: Any) -> Launcher: ...  # performs exactly ``request``


def backend_for(
    name: str,
    address: str | None = None,
    extra_env: Mapping[str, str] | None = None,
    image: str | None = None,
) -> Backend:
    """The backend called ``name``; ``address`` is Ray's, ``image`` the k8s container image."""
    if name == "local":
        from cluster.local import LocalBackend

        return LocalBackend(extra_env)
    if name == "ray":
        from cluster.ray_launcher import RayBackend

        return RayBackend(address, extra_env)
    if name == "k8s":
        from cluster.k8s import K8sBackend

        return K8sBackend(image)
    raise JobSpecError(f"--backend {name}: unknown backend; use one of {', '.join(NAMES)}")


def launching_backend(
    name: str, address: str | None = None, extra_env: Mapping[str, str] | None = None
) -> LaunchingBackend:
    """The backend called ``name``, which must be able to launch (not k8s: render only)."""
    if name not in LAUNCHING:
        raise JobSpecError(f"--backend {name}: cannot run jobs; use it with --dry-run")
    return backend_for(name, address=address, extra_env=extra_env)  # type: ignore[return-value]
