"""Ray launcher: one Ray actor per task, all of a job's actors in one placement group.

The supervisor (``cluster.supervisor``) drives Ray jobs exactly as it drives local ones; this
module only knows how to start a task on a Ray cluster:

- ``RayLauncher(job, address)`` connects to Ray: to ``address`` or ``RAY_ADDRESS`` when given
  (inside ``ray job submit`` that is the job's cluster), to a Ray this process is already
  connected to, or else to a fresh embedded local Ray that declares enough logical CPUs for
  the job (with a warning when that is more than the machine has). Only an embedded Ray is
  shut down by ``close()``.
- On the first ``start`` it reserves one placement group with a bundle per task, in plan
  order (``{"CPU": cpu, "GPU": gpu, "memory": bytes}``; only chief and worker bundles take
  GPUs), with the job's ``placement.strategy``. If it cannot be placed within
  ``placement.timeout_secs`` it is removed and ``JobFailed`` says what was requested and
  what the cluster has.
- Each task is a ``cluster.ray_actor.TaskActor`` named ``<job>-<role>-<index>`` in the
  namespace ``harness-<job>-<run id>``, scheduled into its bundle with ``max_restarts=0``
  (the supervisor's policy decides restarts). It runs ``python -m harness.task`` with the
  plan's command and environment, and its Ray-assigned GPUs in ``CUDA_VISIBLE_DEVICES``.
- A thread per task long-polls the actor's output and delivers it to the supervisor's inbox;
  an actor that dies (killed, node lost, out of memory) is reported as an exit with code
  ``ACTOR_DIED`` so the failure policy handles it per role.
- ``close()`` kills every actor it started and removes the placement group: after success,
  failure or Ctrl-C no actor and no placement group of the job remains.
"""

from __future__ import annotations

import math
import os
import queue
import signal
import sys
import threading
import time
import uuid
from typing import Any

from cluster.handles import Inbox, JobFailed
from cluster.plan import Plan, TaskPlan
from cluster.ray_actor import TaskActor
from harness.job import JobSpec, JobSpecError, takes_gpus

ACTOR_DIED = -9  # exit code reported when the actor itself is gone (like a SIGKILLed process)
ACTOR_CONCURRENCY = 4  # read (long poll), send and kill must run side by side
POLL_TIMEOUT_SECS = 0.5
CALL_TIMEOUT_SECS = 30.0


# ---- the plan, without Ray ---------------------------------------------------------------


def actor_name(job_name: str, task: TaskPlan) -> str:
    return f"{job_name}-{task.role}-{task.index}"


def bundle_for(task: TaskPlan) -> dict[str, float]:
    """The placement group bundle of one task: its CPUs, GPUs (chief and workers only) and
    memory; ps and evaluator bundles never hold a GPU."""
    bundle: dict[str, float] = {"CPU": task.cpu}
    if task.gpu and takes_gpus(task.role):
        bundle["GPU"] = task.gpu
    if task.memory_mb:
        bundle["memory"] = float(task.memory_mb * 1024 * 1024)
    return bundle


def _requested_cpus(job: JobSpec) -> int:
    total = sum(job.resources.for_role(role).cpu * n for role, n in job.task_counts().items())
    return math.ceil(total - 1e-9)


def embedded_num_cpus(job: JobSpec) -> int:
    """Logical CPUs an embedded Ray declares: the machine's cores, or what the job asks for."""
    return max(os.cpu_count() or 1, _requested_cpus(job))


def oversubscription_warning(job: JobSpec, machine_cpus: int | None = None) -> str | None:
    """One line when an embedded Ray for ``job`` declares more CPUs than the machine has.

    ``machine_cpus`` defaults to ``os.cpu_count()``. None when the job's resources fit.
    """
    machine = machine_cpus or os.cpu_count() or 1
    declared = max(machine, _requested_cpus(job))
    if declared <= machine:
        return None
    return (
        f"harness: warning: the job's resources ask for {declared} CPUs in all and this machine "
        f"has {machine}; the embedded Ray declares {declared} logical CPUs, so the tasks share "
        f"{machine} cores (lower resources.<role>.cpu, or pass --address of a larger cluster)"
    )


def describe_ray_plan(plan: Plan) -> str:
    """The dry-run of the Ray backend: actors, placement group, bundles, commands (no Ray)."""
    job = plan.job
    lines = [
        f"job {job.name}: {len(plan.tasks)} Ray actors in one placement group "
        f"(strategy {job.placement.strategy}, placed within {job.placement.timeout_secs:g} s "
        "or the job fails), model_dir " + job.model_dir,
        "  Ray cluster: --address / RAY_ADDRESS (or the job's cluster under `ray job submit`), "
        f"else an embedded local Ray with {embedded_num_cpus(job)} logical CPUs",
    ]
    for index, task in enumerate(plan.tasks):
        bundle = _resources(bundle_for(task))[1:-1]
        gpus = "Ray-assigned GPU ids" if "GPU" in bundle_for(task) else '"" (no GPU)'
        lines += [
            f"  [{task.key}] actor {actor_name(job.name, task)}, bundle {index} {{{bundle}}}",
            f"    command: {' '.join(task.command)}",
            f"    CUDA_VISIBLE_DEVICES: {gpus}; HARNESS_NODE_IP: the actor's node IP",
        ]
    return "\n".join(lines)


def _resources(resources: dict[str, float], show: tuple[str, ...] = ()) -> str:
    """``{CPU: 2, GPU: 1, memory: 4 GiB}``: Ray's CPU, GPU and memory (``show``: even at 0)."""
    keys = [k for k in ("CPU", "GPU", "memory") if k in resources or k in show]
    parts = []
    for key in keys:
        value = resources.get(key, 0.0)
        if key == "memory":
            parts.append(f"memory: {value / 2**30:.3g} GiB")
        else:
            parts.append(f"{key}: {value:g}")
    return "{" + ", ".join(parts) + "}"


# ---- the driver side of one task -----------------------------------------------------------


class RayTaskHandle:
    """A task running in a Ray actor, as the supervisor sees it (``TaskHandle``)."""

    def __init__(self, plan: TaskPlan, actor: Any, inbox: Inbox) -> None:
        import ray

        self.plan = plan
        self.actor = actor
        self.info: dict[str, Any] = {}
        self._ray = ray
        self._killed = False
        self._commands: queue.Queue[str | None] = queue.Queue()
        self._started = actor.start.remote()
        self._poller = threading.Thread(
            target=self._poll, args=(inbox,), daemon=True, name=f"ray-poll-{plan.key}"
        )
        self._sender = threading.Thread(target=self._send_loop, daemon=True)
        self._poller.start()
        self._sender.start()

    def _poll(self, inbox: Inbox) -> None:
        ray = self._ray
        code: int | None = ACTOR_DIED
        try:
            self.info = ray.get(self._started)
            inbox.console.info(
                f"{self.plan.key}: Ray actor on node {self.info['node_ip']} "
                f"({self.info['node_id'][:8]}), pid {self.info['pid']}, "
                f"CUDA_VISIBLE_DEVICES={self.info['cuda_visible_devices']!r}"
            )
            while True:
                try:
                    lines, code = ray.get(
                        self.actor.read.remote(timeout=POLL_TIMEOUT_SECS),
                        timeout=CALL_TIMEOUT_SECS,
                    )
                except (ray.exceptions.GetTimeoutError, ray.exceptions.ActorUnavailableError):
                    time.sleep(0.2)  # a slow or briefly unreachable actor; death ends the loop
                    continue
                for line in lines:
                    inbox.line(self, line)
                if code is not None:
                    break
        except ray.exceptions.RayActorError as exc:
            if not self._killed:
                inbox.console.info(f"{self.plan.key}: its Ray actor died: {_first_line(exc)}")
            code = ACTOR_DIED
        except Exception as exc:  # noqa: BLE001 - e.g. the task command could not start
            inbox.line(self, f"the Ray actor failed to start the task: {exc}")
            code = ACTOR_DIED
        self._commands.put(None)
        inbox.exited(self, code)

    def _send_loop(self) -> None:
        # One command at a time, in order (a threaded actor does not keep call order).
        while (command := self._commands.get()) is not None:
            try:
                self._ray.get(self.actor.send.remote(command), timeout=CALL_TIMEOUT_SECS)
            except Exception:  # noqa: BLE001 - the task is gone; its exit is on the way
                pass

    def send(self, command: str) -> None:
        if not self._killed:
            self._commands.put(command)

    def kill(self) -> None:
        """Kill the task process, then its actor (idempotent, never raises)."""
        ray = self._ray
        if not self._killed:
            self._killed = True
            self._commands.put(None)
            if self.info:  # the task is running: SIGKILL its process tree first
                try:
                    ray.get(self.actor.kill.remote(), timeout=5.0)
                except Exception:  # noqa: BLE001 - the actor is already gone or unreachable
                    pass
        # Without its actor the task sees EOF on stdin and exits (harness.protocol).
        try:
            ray.kill(self.actor, no_restart=True)
        except Exception:  # noqa: BLE001
            pass

    def wait_gone(self, timeout: float) -> bool:
        """True once the actor is dead (its process, and so the task's, is gone)."""
        deadline = time.monotonic() + timeout
        ray = self._ray
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            try:
                ray.get(self.actor.pid.remote(), timeout=min(remaining, 2.0))
            except (ray.exceptions.GetTimeoutError, ray.exceptions.ActorUnavailableError):
                pass  # not known to be dead yet
            except ray.exceptions.RayActorError:
                self._poller.join(timeout=max(0.0, deadline - time.monotonic()))
                return True
            time.sleep(0.1)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# ---- the launcher ----------------------------------------------------------------------------


class RayLauncher:
    """Starts tasks as Ray actors in the job's placement group (see the module docstring)."""

    name = "ray"

    def __init__(
        self,
        job: JobSpec,
        address: str | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        if not (address or os.environ.get("RAY_ADDRESS")) and "ray" not in sys.modules:
            # An embedded Ray is one node on this machine: keep it, and so every TF server
            # address, on loopback rather than on the host's network interface. Ray reads
            # this when it is imported.
            os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        import ray

        self._ray = ray
        self.job = job
        self.extra_env = dict(extra_env or {})
        self.namespace = f"harness-{job.name}-{uuid.uuid4().hex[:8]}"
        self.started_ray = False
        self.placement_group: Any = None
        self.handles: dict[str, RayTaskHandle] = {}
        self.all_handles: list[RayTaskHandle] = []
        self._bundle_index: dict[str, int] = {}
        self._closed = False
        self._connect(address)

    def _connect(self, address: str | None) -> None:
        """Attach to Ray (see the module docstring), keeping the caller's signal handlers.

        ``ray.init`` replaces the SIGTERM handler (and Ray's C++ core then aborts the
        process on SIGTERM); ``harness run`` turns SIGINT, SIGTERM (``ray job stop``,
        ``kill``) and SIGHUP into an orderly interrupt, so the Python handlers the caller
        installed for them are put back. An embedded Ray that declares more CPUs than the
        machine has (the job's resources ask for them) prints a one-line warning to stderr.
        """
        ray = self._ray
        if ray.is_initialized():
            return
        in_main_thread = threading.current_thread() is threading.main_thread()
        handlers = {}
        if in_main_thread:
            for name in ("SIGINT", "SIGTERM", "SIGHUP"):
                if hasattr(signal, name):
                    handlers[getattr(signal, name)] = signal.getsignal(getattr(signal, name))
        address = address or os.environ.get("RAY_ADDRESS")
        if address:
            try:
                ray.init(address=address, logging_level="WARNING")
            except (ConnectionError, RuntimeError, ray.exceptions.AuthenticationError) as exc:
                raise JobSpecError(_connect_error(address, exc)) from exc
        else:
            warning = oversubscription_warning(self.job)
            if warning:
                print(warning, file=sys.stderr, flush=True)
            ray.init(
                address="local",
                num_cpus=embedded_num_cpus(self.job),
                include_dashboard=False,
                logging_level="WARNING",
            )
            self.started_ray = True
        for signum, handler in handlers.items():
            if callable(handler) and signal.getsignal(signum) is not handler:
                signal.signal(signum, handler)

    # ---- placement -----------------------------------------------------------------------

    def _reserve(self) -> None:
        """Create the job's placement group (bundles in plan order) and wait until it is placed."""
        from ray.util.placement_group import placement_group, remove_placement_group

        from cluster.plan import make_plan

        plan_tasks = list(make_plan(self.job, "ray").tasks)
        bundles = [bundle_for(task) for task in plan_tasks]
        self._bundle_index = {task.key: i for i, task in enumerate(plan_tasks)}
        placement = self.job.placement
        pg = placement_group(bundles, strategy=placement.strategy, name=self.namespace)
        self.placement_group = pg
        if pg.wait(timeout_seconds=placement.timeout_secs):
            return
        remove_placement_group(pg)
        self.placement_group = None
        raise JobFailed(self._unplaceable_message(plan_tasks))

    def _unplaceable_message(self, plan_tasks: list[TaskPlan]) -> str:
        ray = self._ray
        placement = self.job.placement
        requested: dict[str, dict[str, Any]] = {}
        for task in plan_tasks:
            entry = requested.setdefault(task.role, {"count": 0, "bundle": bundle_for(task)})
            entry["count"] += 1
        per_role = ", ".join(
            f"{role} {e['count']} x {_resources(e['bundle'])}" for role, e in requested.items()
        )
        totals: dict[str, float] = {}
        for task in plan_tasks:
            for key, value in bundle_for(task).items():
                totals[key] = totals.get(key, 0.0) + value
        show = tuple(totals)  # what was asked for is shown even where the cluster has none
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        node_list = "; ".join(
            f"{n.get('NodeManagerAddress')} {_resources(n.get('Resources', {}), show)}"
            for n in nodes
        )
        return (
            f"the Ray placement group of job {self.job.name} could not be placed within "
            f"{placement.timeout_secs:g} s (placement.timeout_secs, strategy "
            f"{placement.strategy}).\n"
            f"  requested: {per_role}; in total {_resources(totals)}\n"
            f"  the cluster has: {_resources(ray.cluster_resources(), show)}, available now "
            f"{_resources(ray.available_resources(), show)}, on {len(nodes)} node(s): "
            f"{node_list}\n"
            "  Lower resources.<role>.cpu/gpu, use a larger Ray cluster (STRICT_SPREAD needs a "
            "node per task), or raise placement.timeout_secs if nodes are still being added."
        )

    # ---- Launcher interface ----------------------------------------------------------------

    def start(self, task: TaskPlan, inbox: Inbox) -> RayTaskHandle:
        """Start ``task`` in its actor (replacing an earlier actor of the same task)."""
        if self._closed:
            raise JobFailed("the Ray launcher is closed")
        if self.placement_group is None:
            self._reserve()
        previous = self.handles.get(task.key)
        if previous is not None:  # its bundle and its name must be free for the new actor
            previous.kill()
            previous.wait_gone(timeout=30.0)
        handle = RayTaskHandle(task, self._create_actor(task), inbox)
        self.handles[task.key] = handle
        self.all_handles.append(handle)
        return handle

    def _create_actor(self, task: TaskPlan) -> Any:
        ray = self._ray
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        options: dict[str, Any] = {
            "name": actor_name(self.job.name, task),
            "namespace": self.namespace,
            "num_cpus": task.cpu,
            "num_gpus": bundle_for(task).get("GPU", 0),
            "max_restarts": 0,
            "max_task_retries": 0,
            "max_concurrency": ACTOR_CONCURRENCY,
            "scheduling_strategy": PlacementGroupSchedulingStrategy(
                placement_group=self.placement_group,
                placement_group_bundle_index=self._bundle_index[task.key],
            ),
        }
        if task.memory_mb:
            options["memory"] = task.memory_mb * 1024 * 1024
        self._kill_stale(options["name"])
        env = {**self.extra_env, **task.env}
        return ray.remote(TaskActor).options(**options).remote(task.key, list(task.command), env)

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
        """Kill every actor, remove the placement group, stop an embedded Ray (idempotent)."""
        if self._closed:
            return
        self._closed = True
        ray = self._ray
        if not ray.is_initialized():
            return
        for handle in self.all_handles:
            handle.kill()
        for handle in self.all_handles:
            handle.wait_gone(timeout=10.0)
        if self.placement_group is not None:
            from ray.util.placement_group import remove_placement_group

            try:
                remove_placement_group(self.placement_group)
            except Exception:  # noqa: BLE001 - already removed
                pass
            self.placement_group = None
        if self.started_ray:
            ray.shutdown()


def _connect_error(address: str, exc: BaseException) -> str:
    text = str(exc)
    lines = [line for line in text.splitlines() if "Authentication" in line or "token" in line]
    cause = (lines[-1] if lines else _first_line(exc)).strip()
    return (
        f"--address/RAY_ADDRESS {address}: cannot connect to the Ray cluster: {cause[:400]}\n"
        "  A head started with `ray start` uses token authentication: set RAY_AUTH_MODE=token "
        "and make its token available (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or "
        "~/.ray/auth_token; `ray get-auth-token` on the head prints it). See docs/ray.md."
    )
