"""Ray launcher: one Ray actor per task, all of a job's actors in one placement group.

The supervisor (``cluster.supervisor``) drives Ray jobs exactly as it drives local ones; this
module only knows how to start a task on a Ray cluster. ``RayBackend.render(plan)`` is the
pure ``cluster.ray_request.RayRequest`` (no Ray is imported); ``launch(request)`` performs it:

- It connects to Ray: to the request's ``address`` or ``RAY_ADDRESS`` when given (inside
  ``ray job submit`` that is the job's cluster), to a Ray this process is already connected
  to, or else to a fresh embedded local Ray that declares the request's ``embedded_cpus``
  logical CPUs (with a warning when that is more than the machine has). Only an embedded Ray
  is shut down by ``close()``. An embedded Ray dies with the driver, also when the driver is
  SIGKILLed: Ray's own fate-sharing takes its head processes, and ``cluster.ray_fate``'s
  watchdog the raylet's agents, which would otherwise stay for about a minute.
- It creates one placement group with the request's bundles, in plan order
  (``{"CPU": cpu, "GPU": gpu, "memory": bytes}``; only chief and worker bundles take GPUs,
  ``cluster.resources``), with the job's ``placement.strategy``. The first ``start`` waits
  for it: if it cannot be placed within ``placement.timeout_secs`` it is removed and
  ``JobFailed`` says what was requested and what the cluster has. With an existing group
  (``RayBackend(placement_group=pg, first_bundle=k)``, a Ray Tune trial's) nothing is
  created: the actors go into its bundles from ``k`` on, which must be the request's
  bundles, and the group is left to its owner.
- A task started again (its own restart or the whole cluster's) whose actor lives is started
  again inside that actor (``TaskActor.restart``: no new actor, no new placement), by the
  actor's warm spare when it has one (``failure.warm_spares``). Else it first waits for its
  bundle:
  when a node dies Ray places its bundles again where there is room
  (``cluster.ray_placement``); if that does not happen within ``placement.timeout_secs``,
  ``start`` raises ``cluster.handles.Unplaced`` (what the bundle needs, what the cluster has)
  and the supervisor's policy decides whether the job goes on without the task.
- Each task is a ``cluster.ray_actor.TaskActor`` named ``<job>-<role>-<index>`` in the
  namespace ``harness-<job>-<run id>``, scheduled into its bundle with ``max_restarts=0``
  (the supervisor's policy decides restarts). It runs ``python -m harness.task`` with the
  request's command and environment, and its Ray-assigned GPUs in ``CUDA_VISIBLE_DEVICES``.
- A thread per task long-polls the actor's output and delivers it to the supervisor's inbox;
  an actor that dies (killed, node lost, out of memory) is reported as an exit with code
  ``ACTOR_DIED`` so the failure policy handles it per role.
- ``start_tensorboard`` starts the request's TensorBoard (``cluster.tensorboard``) as the
  actor ``<job>-tensorboard``: 0 CPUs and no GPU, in the chief's bundle, so on the chief's
  node; it serves on that node's IP.
- ``close()`` kills every actor it started (their spares and TensorBoard's too) and removes the placement
  group: after success, failure or Ctrl-C (also during ``ray.init``) no actor and no
  placement group of the job remains.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import Mapping
from typing import Any

from cluster.handles import Inbox, JobFailed, Unplaced
from cluster.plan import Plan, TaskPlan, make_plan
from cluster.ray_actor import TaskActor
from cluster.ray_fate import RayFate
from cluster.ray_handle import ACTOR_DIED, RayTaskHandle, first_line
from cluster.ray_placement import lost_bundle_message, unplaceable_message, wait_bundle
from cluster.ray_request import (
    RayRequest,
    actor_name,
    bundle_for,
    describe_ray_plan,
    embedded_num_cpus,
    oversubscription_warning,
    render,
)
from cluster.ray_tensorboard import RayTensorBoard, TensorBoardActor
from cluster.tensorboard import TensorBoardRequest
from harness.job import JobSpec, JobSpecError

__all__ = [
    "ACTOR_DIED",
    "RayBackend",
    "RayLauncher",
    "RayRequest",
    "RayTaskHandle",
    "actor_name",
    "bundle_for",
    "describe_ray_plan",
    "embedded_num_cpus",
    "launch",
    "oversubscription_warning",
    "render",
]

ACTOR_CONCURRENCY = 4  # read (long poll), send and kill must run side by side


class RayBackend:
    """``--backend ray``: plan, render (pure), launch (connects to Ray).

    ``placement_group``: an existing placement group to start the actors in, from its bundle
    ``first_bundle`` on, instead of creating one (``harness.tune``: the trial's group). Its
    owner keeps it: ``close()`` does not remove it.
    """

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        extra_env: Mapping[str, str] | None = None,
        placement_group: Any = None,
        first_bundle: int = 0,
    ) -> None:
        self.address = address
        self.extra_env = dict(extra_env or {})
        self.placement_group = placement_group
        self.first_bundle = first_bundle

    def plan(self, job: JobSpec) -> Plan:
        return make_plan(job, "ray")

    def render(self, plan: Plan) -> RayRequest:
        return render(plan, self.address, self.extra_env, self.placement_group, self.first_bundle)

    def launch(self, request: RayRequest) -> RayLauncher:
        return launch(request)


def launch(request: RayRequest) -> RayLauncher:
    """Connect to Ray and create the request's placement group; the launcher starts its actors.

    On any exception (a connection error, Ctrl-C during ``ray.init``) what was started is
    closed again before it propagates.
    """
    launcher = RayLauncher(request)
    try:
        launcher._connect()
        launcher._create_placement_group()
    except BaseException:
        launcher.close()
        raise
    return launcher


# ---- the launcher ----------------------------------------------------------------------------


class RayLauncher:
    """Starts the actors of one ``RayRequest`` in its placement group (module docstring).

    Built by ``launch``; the constructor itself touches no Ray.
    """

    name = "ray"

    def __init__(self, request: RayRequest) -> None:
        self.request = request
        self.job = request.job
        self.namespace = f"harness-{self.job.name}-{uuid.uuid4().hex[:8]}"
        self._ray: Any = None
        self.started_ray = False
        self.placement_group: Any = None
        self._placed = False
        self.handles: dict[str, RayTaskHandle] = {}
        self.all_handles: list[RayTaskHandle] = []
        self.tensorboard: RayTensorBoard | None = None
        self.fate: RayFate | None = None  # an embedded Ray's watchdog (cluster.ray_fate)
        self._closed = False
        self.bring_up: dict[str, float] = {}  # wall-clock milestones (cluster.bringup)

    def _connect(self) -> None:
        """Attach to Ray (see the module docstring), keeping the caller's signal handlers.

        ``ray.init`` replaces the SIGTERM handler (and Ray's C++ core then aborts the
        process on SIGTERM); ``harness run`` turns SIGINT, SIGTERM (``ray job stop``,
        ``kill``) and SIGHUP into an orderly interrupt, so the Python handlers the caller
        installed for them are put back. An embedded Ray that declares more CPUs than the
        machine has (the job's resources ask for them) prints a one-line warning to stderr.
        """
        address = self.request.address or os.environ.get("RAY_ADDRESS")
        if not address and "ray" not in sys.modules:
            # An embedded Ray is one node on this machine: keep it, and so every TF server
            # address, on loopback rather than on the host's network interface. Ray reads
            # this when it is imported.
            os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        import ray

        self._ray = ray
        if ray.is_initialized():
            self.bring_up["ray_connected"] = time.time()
            return
        in_main_thread = threading.current_thread() is threading.main_thread()
        handlers = {}
        if in_main_thread:
            for name in ("SIGINT", "SIGTERM", "SIGHUP"):
                if hasattr(signal, name):
                    handlers[getattr(signal, name)] = signal.getsignal(getattr(signal, name))
        if address:
            try:
                ray.init(address=address, logging_level="WARNING")
            except (ConnectionError, RuntimeError, ray.exceptions.AuthenticationError) as exc:
                raise JobSpecError(_connect_error(address, exc)) from exc
        else:
            warning = oversubscription_warning(self.job)
            if warning:
                print(warning, file=sys.stderr, flush=True)
            self.started_ray = True  # ours from here on, even if ray.init is interrupted
            self.fate = RayFate.start(os.getpid(), os.path.dirname(ray.__file__))
            ray.init(
                address="local",
                num_cpus=self.request.embedded_cpus,
                include_dashboard=False,
                logging_level="WARNING",
            )
        for signum, handler in handlers.items():
            if callable(handler) and signal.getsignal(signum) is not handler:
                signal.signal(signum, handler)
        self.bring_up["ray_connected"] = time.time()

    # ---- placement -----------------------------------------------------------------------

    def _create_placement_group(self) -> None:
        """Ask Ray for the job's placement group: the request's bundles, in plan order (or
        check that the existing group has them, from ``first_bundle`` on)."""
        from ray.util.placement_group import placement_group

        if not self.request.owns_group:
            self.placement_group = self.request.existing_group
            self._check_existing_group()
            return
        placement = self.job.placement
        self.placement_group = placement_group(
            self.request.bundles, strategy=placement.strategy, name=self.namespace
        )

    def _check_existing_group(self) -> None:
        first, wanted = self.request.first_bundle, self.request.bundles
        have = [dict(b) for b in self.placement_group.bundle_specs[first : first + len(wanted)]]
        if have != wanted:
            raise JobFailed(
                f"job {self.job.name}: the placement group given has the bundles {have} from "
                f"bundle {first} on; the job's tasks need {wanted} (cluster.ray_request)"
            )

    def _await_placement(self) -> None:
        """Wait until the placement group is placed; remove it and fail after the timeout."""
        from ray.util.placement_group import remove_placement_group

        if self._placed:
            return
        if self._ray is None:
            raise JobFailed("the Ray launcher was never launched (cluster.ray_launcher.launch)")
        pg = self.placement_group
        if pg is not None and pg.wait(timeout_seconds=self.job.placement.timeout_secs):
            self._placed = True
            self.bring_up["placed"] = time.time()
            return
        if pg is not None and self.request.owns_group:
            remove_placement_group(pg)
        self.placement_group = None
        raise JobFailed(unplaceable_message(self.request, self._ray))

    # ---- Launcher interface ----------------------------------------------------------------

    def start(self, task: TaskPlan, inbox: Inbox) -> RayTaskHandle:
        """Start ``task``'s actor (replacing an earlier actor of the same task)."""
        if self._closed:
            raise JobFailed("the Ray launcher is closed")
        self._await_placement()
        previous = self.handles.get(task.key)
        if previous is not None:
            previous.kill()
            previous.wait_gone(timeout=30.0)
            restarted = previous.restart()  # in the same actor, while it lives
            if restarted is not None:
                handle = RayTaskHandle(task, previous.actor, inbox, restarted)
                self.handles[task.key] = handle
                self.all_handles.append(handle)
                return handle
            previous.wait_actor_gone(timeout=30.0)  # its bundle and name must be free
            self._await_bundle(task)
        handle = RayTaskHandle(task, self._create_actor(task), inbox)
        self.handles[task.key] = handle
        self.all_handles.append(handle)
        return handle

    def _await_bundle(self, task: TaskPlan) -> None:
        """A task started again waits for its bundle, placed again by Ray if its node died
        (``cluster.ray_placement``); ``Unplaced`` after ``placement.timeout_secs``."""
        actor, timeout = self.request.actor(task.key), self.job.placement.timeout_secs
        if not wait_bundle(self.placement_group, actor.bundle_index, timeout):
            args = (task.key, actor.bundle_index, actor.bundle, timeout, self._ray)
            raise Unplaced(lost_bundle_message(*args), role=task.role, index=task.index)

    def _create_actor(self, task: TaskPlan) -> Any:
        ray = self._ray
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        actor = self.request.actor(task.key)
        options: dict[str, Any] = {
            "name": actor.name,
            "namespace": self.namespace,
            "num_cpus": actor.bundle["CPU"],
            "num_gpus": actor.num_gpus,
            "max_restarts": 0,
            "max_task_retries": 0,
            "max_concurrency": ACTOR_CONCURRENCY,
            "scheduling_strategy": PlacementGroupSchedulingStrategy(
                placement_group=self.placement_group,
                placement_group_bundle_index=actor.bundle_index,
            ),
        }
        if "memory" in actor.bundle:
            options["memory"] = int(actor.bundle["memory"])
        self._kill_stale(actor.name)
        command, env = list(actor.command), dict(actor.env)
        warm = self.job.failure.warm_spares
        return ray.remote(TaskActor).options(**options).remote(task.key, command, env, warm)

    def start_tensorboard(self, tensorboard: TensorBoardRequest) -> RayTensorBoard:
        """Start TensorBoard's actor in the chief's bundle; returns before it is placed."""
        if self._closed or self._ray is None:
            raise JobFailed("the Ray launcher is closed or was never launched")
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        options: dict[str, Any] = {
            "name": self.request.tensorboard_name,
            "namespace": self.namespace,
            "num_cpus": 0,
            "num_gpus": 0,
            "max_restarts": 0,
            "max_task_retries": 0,
            "max_concurrency": 2,  # stop gets through while start waits
            "scheduling_strategy": PlacementGroupSchedulingStrategy(
                placement_group=self.placement_group,
                placement_group_bundle_index=self.request.tensorboard_bundle,
            ),
        }
        actor = self._ray.remote(TensorBoardActor).options(**options).remote(tensorboard)
        self.tensorboard = RayTensorBoard(self._ray, actor)
        return self.tensorboard

    def _kill_stale(self, name: str) -> None:
        ray = self._ray
        try:
            stale = ray.get_actor(name, namespace=self.namespace)
        except ValueError:
            return
        ray.kill(stale, no_restart=True)
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline:
            try:
                ray.get_actor(name, namespace=self.namespace)
            except ValueError:
                return
            time.sleep(0.1)

    def close(self) -> None:
        """Kill every actor, remove the placement group (the one it created), stop an
        embedded Ray (idempotent)."""
        if self._closed:
            return
        self._closed = True
        ray = self._ray
        if ray is None:
            return
        if ray.is_initialized():
            if self.tensorboard is not None:
                self.tensorboard.stop()
            for handle in self.all_handles:
                handle.close()
            for handle in self.handles.values():  # one per actor: the latest
                handle.wait_actor_gone(timeout=10.0)
            if self.placement_group is not None and self.request.owns_group:
                from ray.util.placement_group import remove_placement_group

                try:
                    remove_placement_group(self.placement_group)
                except Exception:  # noqa: BLE001 - already removed
                    pass
                self.placement_group = None
        if self.started_ray:
            ray.shutdown()
        if self.fate is not None:
            self.fate.close()  # it kills whatever ray.shutdown left, then exits


def _connect_error(address: str, exc: BaseException) -> str:
    text = str(exc)
    lines = [line for line in text.splitlines() if "Authentication" in line or "token" in line]
    cause = (lines[-1] if lines else first_line(exc)).strip()
    return (
        f"--address/RAY_ADDRESS {address}: cannot connect to the Ray cluster: {cause[:400]}\n"
        "  A head started with `ray start` uses token authentication: set RAY_AUTH_MODE=token "
        "and make its token available (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or "
        "~/.ray/auth_token; `ray get-auth-token` on the head prints it). See docs/ray.md."
    )
