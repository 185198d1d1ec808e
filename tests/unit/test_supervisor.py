"""cluster.supervisor: the lifecycle state machine, driven by fake tasks and a fake clock.

No TensorFlow and no processes: ``FakeLauncher`` hands out handles that record the commands
they are sent and answer them the way ``harness.task`` does (an address at start, the TF
server once they have the cluster, ``done`` and exit 0 on ``stop``...), and ``FakeInbox.get``
returns what they queued; when nothing is queued it runs the test's next scripted step, and
otherwise lets ``timeout`` seconds pass on the fake clock. So every test is deterministic and
takes milliseconds, whatever deadlines it crosses.
"""

from __future__ import annotations

import inspect
import io
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from cluster.console import Console
from cluster.handles import Inbox, Unplaced
from cluster.observe import RunObserver
from cluster.plan import TaskPlan, make_plan
from cluster.policy import MAX_RENDEZVOUS_ATTEMPTS
from cluster.supervisor import Supervisor
from harness import protocol
from harness.errors import HarnessError
from harness.job import JobSpec

Step = Callable[["World"], Any]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class World:
    """The fake tasks, what happened to them, and the test's script.

    Behaviour sets hold a task key (every instance of it) or ``(key, instance)`` (instance
    1 is the first start): ``silent`` tasks do not report their address when started,
    ``no_server`` ones do not start their TF server, ``bind_fail`` ones fail to bind it
    (``bind_failed`` and exit 3), ``ignore_stop`` ones do nothing on ``stop``, ``unplaced``
    ones cannot be started (the launcher raises ``Unplaced``: their node is gone).
    ``hosts`` maps a key or ``(key, instance)`` to the host it reports (default 127.0.0.1).
    """

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.inbox: Inbox | None = None
        self.script: list[Step] = []
        self.roles: set[str] = set()
        self.all: list[FakeHandle] = []  # every instance started, in order
        self.current: dict[str, FakeHandle] = {}
        self.starts: dict[str, int] = {}
        self.log: list[tuple[float, str, str, str]] = []  # (time, what, key, detail)
        self.stack_depths: list[int] = []
        self.silent: set[Any] = set()
        self.no_server: set[Any] = set()
        self.bind_fail: set[Any] = set()
        self.ignore_stop: set[Any] = set()
        self.unplaced: set[Any] = set()
        self.hosts: dict[Any, str] = {}
        self.dump_steps: dict[str, int] = {}
        self.step = 0
        self.gets = 0
        self._port = 20000

    def note(self, what: str, key: str, detail: str = "") -> None:
        self.log.append((self.clock.now, what, key, detail))

    def index(self, what: str, key: str, detail: str = "") -> int:
        """Where the last such entry is in the log (-1: none)."""
        found = [i for i, e in enumerate(self.log) if e[1:] == (what, key, detail)]
        return found[-1] if found else -1

    def next_port(self) -> int:
        self._port += 1
        return self._port

    # ---- what the test's steps do ----------------------------------------------------------

    def event(self, key: str, name: str, **fields: Any) -> None:
        self.current[key].event(name, **fields)

    def exit(self, key: str, code: int | None) -> None:
        self.current[key].exit(code)

    def crash(self, key: str, code: int = 1) -> None:
        self.exit(key, code)

    def progress(self, key: str, step: int) -> None:
        self.step = max(self.step, step)
        handle = self.current[key]
        handle.local_steps += 1
        handle.event("progress", global_step=step, local_steps=handle.local_steps, loss=0.25)

    def done(self, key: str, step: int) -> None:
        handle = self.current[key]
        handle.done = True
        handle.event("done", global_step=step, local_steps=handle.local_steps, loss=0.125)

    def finish(self, step: int = 100, exit_chief: bool | None = None) -> None:
        """The chief's training loop ends; with ps, it then exits as harness.task does."""
        self.step = step
        self.done("chief:0", step)
        if exit_chief if exit_chief is not None else self.current["chief:0"].has_ps:
            self.exit("chief:0", protocol.EXIT_OK)

    def report_address(self, key: str) -> None:
        self.current[key].report_address()

    def sent(self, key: str, cmd: str, instance: int | None = None) -> list[dict[str, Any]]:
        handle = self.current[key] if instance is None else self.instances(key)[instance - 1]
        return [c for c in handle.sent if c["cmd"] == cmd]

    def instances(self, key: str) -> list[FakeHandle]:
        return [h for h in self.all if h.plan.key == key]


class FakeHandle:
    def __init__(self, plan: TaskPlan, inbox: Inbox, world: World, instance: int) -> None:
        self.plan, self.inbox, self.world, self.instance = plan, inbox, world, instance
        self.key, self.role = plan.key, plan.role
        self.sent: list[dict[str, Any]] = []
        self.exited = self.done = self.reported = self.killed = False
        self.local_steps = 0
        self.has_ps = "ps" in world.roles

    def sent_cmds(self, name: str) -> list[dict[str, Any]]:
        return [c for c in self.sent if c["cmd"] == name]

    def _is(self, behaviour: set[Any]) -> bool:
        return self.key in behaviour or (self.key, self.instance) in behaviour

    def event(self, name: str, **fields: Any) -> None:
        if not self.exited:
            self.inbox.line(self, protocol.encode_event(name, **fields))

    def exit(self, code: int | None) -> None:
        if not self.exited:
            self.exited = True
            self.world.note("exit", self.key, str(code))
            self.inbox.exited(self, code)

    def report_address(self) -> None:
        if not self.reported and not self.exited:
            self.reported = True
            port = 0 if self.role == "evaluator" else self.world.next_port()
            hosts = self.world.hosts
            host = hosts.get((self.key, self.instance), hosts.get(self.key, "127.0.0.1"))
            self.event("address", host=host, port=port)

    # ---- TaskHandle ----------------------------------------------------------------------

    def send(self, command: str) -> None:
        cmd = protocol.decode_command(command)
        self.sent.append(cmd)
        self.world.note("send", self.key, cmd["cmd"])
        if self.exited:
            return
        if cmd["cmd"] == "cluster":
            if len(self.sent_cmds("cluster")) > 1:
                return  # a task takes the first cluster it gets (harness.task)
            if (
                self.role != "evaluator"
                and len(cmd["cluster"].get(self.role, ())) <= self.plan.index
            ):
                self.event("error", message=f"KeyError: {self.role!r}", traceback="KeyError")
                self.exit(protocol.EXIT_ERROR)  # not in the cluster it was sent
            elif self._is(self.world.bind_fail):
                port = cmd["cluster"][self.role][self.plan.index]
                self.event("bind_failed", port=port, error="Could not start gRPC server")
                self.exit(protocol.EXIT_BIND_FAILED)
            elif not self._is(self.world.no_server):
                self.event("server_started")
        elif cmd["cmd"] == "stop" and not self._is(self.world.ignore_stop):
            if self.role == "worker" or (self.role == "chief" and not self.done):
                self.done = True
                self.event("done", global_step=self.world.step, local_steps=self.local_steps)
            elif self.role == "evaluator":
                self.event("eval", global_step=self.world.step, metrics={"loss": 0.5})
            self.exit(protocol.EXIT_OK)
        elif cmd["cmd"] == "dump_stacks" and self.key in self.world.dump_steps:
            step = self.world.dump_steps[self.key]
            self.event("progress", global_step=step, local_steps=self.local_steps)

    def kill(self) -> None:
        if not self.exited:
            self.killed = True
            self.world.note("kill", self.key)
        self.exit(-9)

    def wait_gone(self, timeout: float) -> bool:
        return True


class FakeLauncher:
    name = "fake"

    def __init__(self, world: World) -> None:
        self.world = world

    def start(self, task: TaskPlan, inbox: Inbox) -> FakeHandle:
        world = self.world
        world.stack_depths.append(len(inspect.stack(0)))
        instance = world.starts.get(task.key, 0) + 1
        if task.key in world.unplaced or (task.key, instance) in world.unplaced:
            world.note("unplaced", task.key)
            raise Unplaced(f"{task.key} cannot be started again: bundle {{CPU: 1}}", role=task.role)
        world.starts[task.key] = world.starts.get(task.key, 0) + 1
        handle = FakeHandle(task, inbox, world, world.starts[task.key])
        world.all.append(handle)
        world.current[task.key] = handle
        world.note("start", task.key)
        if not handle._is(world.silent):
            handle.report_address()
        return handle

    def close(self) -> None:
        pass


class FakeInbox(Inbox):
    """What the fake tasks queued; else the script's next step; else time passes."""

    def __init__(self, console: Console, world: World, on_line: Any = None) -> None:
        super().__init__(console, on_line=on_line)
        self.world = world

    def get(self, timeout: float):
        world = self.world
        world.gets += 1
        if world.gets > 50_000:
            raise AssertionError("the supervisor never finished")
        if self._queue.empty() and world.script:
            world.script.pop(0)(world)
        if self._queue.empty():
            world.clock.now += timeout
            return None
        return self._queue.get_nowait()


@dataclass
class Result:
    summary: dict[str, Any]
    world: World
    out: str
    failure: Any = None  # the supervisor's JobFailed, when the job failed

    @property
    def decisions(self) -> list[tuple[str, str]]:
        return [(f["task"], f["decision"]) for f in self.summary["failures"]]


def make_job(tmp_path, **changes: Any) -> JobSpec:
    data: dict[str, Any] = {
        "name": "sup",
        "model_fn": "m:model_fn",
        "input_fn": "m:input_fn",
        "model_dir": str(tmp_path / "model"),
        "cluster": {"workers": 1, "ps": 1},
        "train": {"max_steps": 100},
        "timeouts": {"startup_secs": 30, "stop_grace_secs": 10},
        "failure": {"max_failures": 3, "stall_timeout_secs": 300},
    }
    for key, value in changes.items():
        data[key] = {**data[key], **value} if isinstance(data.get(key), dict) else value
    return JobSpec.from_dict(data)


def supervise(
    tmp_path,
    script: list[Step],
    setup: Callable[[World], None] | None = None,
    observers: tuple[Any, ...] = (),
    **job: Any,
) -> Result:
    clock = Clock()
    world = World(clock)
    spec = make_job(tmp_path, **job)
    world.roles = set(spec.task_counts())
    if setup:
        setup(world)
    world.script = list(script)
    stream = io.StringIO()
    console = Console(str(tmp_path / "logs"), spec.train.max_steps, stream=stream)
    supervisor = Supervisor(
        make_plan(spec), FakeLauncher(world), console, clock=clock, observers=observers
    )
    on_line = supervisor.observers.line_callback()
    supervisor.inbox = world.inbox = FakeInbox(console, world, on_line)
    try:
        summary = supervisor.run()
    finally:
        console.close()
    return Result(summary, world, stream.getvalue(), supervisor.failure)


def step(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Step:
    return lambda world: fn(world, *args, **kwargs)


def check(condition: Callable[[World], bool]) -> Step:
    def run(world: World) -> None:
        assert condition(world)

    return run


def after(condition: Callable[[World], bool]) -> Step:
    """Hold the rest of the script (time passes) until ``condition`` holds."""

    def run(world: World) -> None:
        if not condition(world):
            world.script.insert(0, run)

    return run


def progress(key: str, global_step: int) -> Step:
    return step(World.progress, key, global_step)


def crash(key: str, code: int = 1) -> Step:
    return step(World.crash, key, code)


def finish(global_step: int = 100, exit_chief: bool | None = None) -> Step:
    return step(World.finish, global_step, exit_chief)


SUMMARY_KEYS = {
    "job",
    "status",
    "error",
    "user_error",
    "backend",
    "final_global_step",
    "max_steps",
    "last_loss",
    "steps_per_sec",
    "restarts",
    "failures",
    "dropped",
    "tasks",
    "timings",
    "eval",
}


# ---- gang start and rendezvous -----------------------------------------------------------


def test_gang_start_sends_the_cluster_once_every_address_arrived(tmp_path):
    keys = ["chief:0", "worker:0", "worker:1", "ps:0", "evaluator:0"]
    no_cluster_yet = check(lambda w: not any(w.sent(k, "cluster") for k in keys))
    script: list[Step] = []
    for key in keys:
        script += [no_cluster_yet, step(World.report_address, key)]
    script += [progress("chief:0", 50), finish(100)]
    result = supervise(
        tmp_path,
        script,
        setup=lambda w: w.silent.update(keys),
        cluster={"workers": 2, "ps": 1, "evaluator": 1},
    )
    assert result.summary["status"] == "succeeded", result.summary["error"]
    world = result.world
    assert world.starts == dict.fromkeys(keys, 1)
    clusters = [world.sent(k, "cluster") for k in keys]
    assert all(len(c) == 1 for c in clusters)
    cluster = clusters[0][0]["cluster"]
    assert all(c[0]["cluster"] == cluster for c in clusters)
    assert cluster == {
        "chief": ["127.0.0.1:20001"],
        "worker": ["127.0.0.1:20002", "127.0.0.1:20003"],
        "ps": ["127.0.0.1:20004"],
    }  # the evaluator gets the cluster but is not in it, as in TF
    assert set(result.summary) == SUMMARY_KEYS
    assert result.summary["final_global_step"] == 100 and result.summary["restarts"] == 0
    assert result.summary["eval"] == {"global_step": 100, "metrics": {"loss": 0.5}}
    on_disk = json.loads((tmp_path / "model" / "run.json").read_text())
    assert on_disk == json.loads(json.dumps(result.summary))


def test_a_bind_failure_reruns_the_rendezvous_with_fresh_ports(tmp_path):
    result = supervise(tmp_path, [finish(20)], setup=lambda w: w.bind_fail.add(("worker:0", 1)))
    assert result.summary["status"] == "succeeded", result.summary["error"]
    world = result.world
    assert world.starts == {"chief:0": 2, "worker:0": 2, "ps:0": 2}
    first = world.sent("chief:0", "cluster", instance=1)[0]["cluster"]
    second = world.sent("chief:0", "cluster", instance=2)[0]["cluster"]
    fresh = {a for addresses in second.values() for a in addresses}
    assert fresh.isdisjoint(a for addresses in first.values() for a in addresses)
    assert result.summary["restarts"] == 0 and result.summary["failures"] == []
    assert "worker:0: TF server could not bind 127.0.0.1:20002" in result.out
    assert "(attempt 1); re-running the rendezvous with fresh ports" in result.out


def test_bind_failures_give_up_after_the_rendezvous_attempts(tmp_path):
    result = supervise(tmp_path, [], setup=lambda w: w.bind_fail.add("worker:0"))
    assert result.summary["status"] == "failed"
    assert result.summary["error"].startswith(
        f"TF servers failed to bind their ports {MAX_RENDEZVOUS_ATTEMPTS} times in a row"
    )
    assert result.world.starts == dict.fromkeys(["chief:0", "worker:0", "ps:0"], 5)
    assert result.summary["restarts"] == 0


@pytest.mark.parametrize(
    ("behaviour", "what"),
    [("silent", "report its address"), ("no_server", "start its TF server")],
)
def test_the_startup_deadline_names_the_missing_tasks(tmp_path, behaviour, what):
    def setup(world):
        getattr(world, behaviour).update({"ps:0", "worker:1"})

    started = time.monotonic()
    result = supervise(tmp_path, [], setup=setup, cluster={"workers": 2, "ps": 1})
    assert time.monotonic() - started < 2, "the fake clock drives the deadline"
    assert result.summary["status"] == "failed"
    assert result.summary["error"] == (
        f"worker:1, ps:0 did not {what} within 30 s (timeouts.startup_secs). "
        f"Check {tmp_path / 'logs'}/ for its output."
    )
    assert result.summary["timings"]["total_secs"] >= 30
    assert all(h.exited for h in result.world.all), "teardown killed every task"


# ---- each role's death in each state -----------------------------------------------------

TASKS = ["chief:0", "worker:0", "ps:0", "evaluator:0"]


def _death_scenario(role: str, state: str):
    victim = f"{role}:0"
    late = "ps:0" if role != "ps" else "worker:0"
    if state == "rendezvous":  # `late` has not reported yet: the cluster is not built
        return (
            [crash(victim), step(World.report_address, late), finish(100)],
            lambda w: w.silent.add((late, 1)),
        )
    if state == "training":
        return [progress("chief:0", 10), crash(victim), progress("chief:0", 60), finish(100)], None
    # stopping: the chief is done and has not exited; nobody obeys stop on its own
    others = [k for k in TASKS if k != victim]
    script = [progress("chief:0", 10), finish(100, exit_chief=False), crash(victim)]
    script += [step(World.exit, k, 0) for k in others if k != "ps:0"]
    return script, lambda w: w.ignore_stop.update({"worker:0", "evaluator:0"})


EXPECTED_DEATHS = {
    # (role, state): (decision logged, task started again, whole cluster started again)
    ("worker", "rendezvous"): ("RESTART_TASK", True, False),
    ("chief", "rendezvous"): ("RESTART_TASK", True, False),
    ("ps", "rendezvous"): ("RESTART_CLUSTER", True, True),
    ("evaluator", "rendezvous"): ("RESTART_TASK", True, False),
    ("worker", "training"): ("RESTART_TASK", True, False),
    ("chief", "training"): ("RESTART_TASK", True, False),
    ("ps", "training"): ("RESTART_CLUSTER", True, True),
    ("evaluator", "training"): ("RESTART_TASK", True, False),
    ("worker", "stopping"): (None, False, False),  # it had been told to stop
    ("chief", "stopping"): ("IGNORE", False, False),
    ("ps", "stopping"): ("IGNORE", False, False),
    ("evaluator", "stopping"): (None, False, False),  # it had been told to stop
}


@pytest.mark.parametrize(("role", "state"), list(EXPECTED_DEATHS))
def test_a_task_dying(tmp_path, role, state):
    decision, restarted, whole_cluster = EXPECTED_DEATHS[(role, state)]
    script, setup = _death_scenario(role, state)
    result = supervise(
        tmp_path, script, setup=setup, cluster={"workers": 1, "ps": 1, "evaluator": 1}
    )
    victim = f"{role}:0"
    assert result.summary["status"] == "succeeded", result.summary["error"]
    assert result.decisions == ([(victim, decision)] if decision else [])
    expected_starts = {k: 2 if whole_cluster or (restarted and k == victim) else 1 for k in TASKS}
    assert result.world.starts == expected_starts
    counted = decision in ("RESTART_TASK", "RESTART_CLUSTER") and role != "evaluator"
    assert result.summary["restarts"] == (1 if counted else 0)
    assert result.summary["tasks"][victim]["restarts"] == (1 if restarted else 0)
    if restarted and not whole_cluster and state == "training":
        # it rejoins on its old address: the cluster it gets is the one already running
        first = result.world.sent(victim, "cluster", instance=1)
        assert result.world.sent(victim, "cluster", instance=2) == first


# ---- failures that end the job ------------------------------------------------------------


def test_max_failures_used_up_fails_the_job_with_the_tasks_last_lines(tmp_path):
    def crash_with_output(world):
        world.inbox.line(world.current["worker:0"], "RuntimeError: the disk is full")
        world.crash("worker:0")

    result = supervise(
        tmp_path,
        [progress("chief:0", 5)] + [crash_with_output] * 3,
        failure={"max_failures": 2},
    )
    assert result.summary["status"] == "failed" and not result.summary["user_error"]
    error = result.summary["error"]
    assert error.startswith(
        "worker:0 exited with code 1 after 2 restart(s); failure.max_failures=2 is used up:"
    )
    assert "\n    RuntimeError: the disk is full" in error
    assert error.endswith(f"full log: {tmp_path / 'logs' / 'worker-0.log'}")
    assert result.decisions == [("worker:0", d) for d in ("RESTART_TASK", "RESTART_TASK", "FAIL")]
    assert result.summary["restarts"] == 2 and result.world.starts["worker:0"] == 3


def test_a_user_error_fails_at_once_and_is_not_retried(tmp_path):
    def user_error(world):
        world.event(
            "worker:0",
            "user_error",
            message="ValueError: bad shape (model.py:42 in model_fn)",
            traceback="Traceback (most recent call last):\nValueError: bad shape",
        )
        world.exit("worker:0", protocol.EXIT_USER_ERROR)

    result = supervise(tmp_path, [progress("chief:0", 5), user_error])
    assert result.summary["status"] == "failed" and result.summary["user_error"] is True
    assert result.summary["error"].startswith(
        "worker:0 failed with an error in the user's code (not retried): "
        "ValueError: bad shape (model.py:42 in model_fn)\n    Traceback"
    )
    assert result.world.starts["worker:0"] == 1
    assert result.decisions == [("worker:0", "FAIL")] and result.summary["restarts"] == 0
    assert isinstance(result.failure, HarnessError)
    assert (result.failure.role, result.failure.index, result.failure.task) == (
        "worker",
        0,
        "worker:0",
    )


def test_the_evaluator_has_its_own_budget_then_training_goes_on_without_it(tmp_path):
    def user_error(world):
        world.event("evaluator:0", "user_error", message="KeyError: 'x'", traceback="")
        world.exit("evaluator:0", protocol.EXIT_USER_ERROR)

    result = supervise(
        tmp_path,
        [progress("chief:0", 5), user_error, crash("evaluator:0"), finish(50)],
        cluster={"workers": 1, "ps": 1, "evaluator": 1},
        failure={"max_failures": 1},
    )
    assert result.summary["status"] == "succeeded", result.summary["error"]
    assert result.decisions == [("evaluator:0", "RESTART_TASK"), ("evaluator:0", "IGNORE")]
    assert (
        result.summary["restarts"] == 0 and result.summary["tasks"]["evaluator:0"]["restarts"] == 1
    )
    assert "evaluator:0 exited with code 2; restarting it (training goes on)" in result.out
    assert "evaluator:0 exited with code 1; training goes on without it" in result.out


def test_the_stall_watchdog_asks_for_stacks_then_names_the_stalled_tasks(tmp_path):
    started = time.monotonic()
    result = supervise(
        tmp_path,
        [progress("chief:0", 10), progress("worker:0", 11)],
        setup=lambda w: w.dump_steps.update({"chief:0": 12}),
        failure={"stall_timeout_secs": 60},
    )
    assert time.monotonic() - started < 2, "no real sleep in the watchdog"
    world = result.world
    assert result.summary["status"] == "failed"
    assert result.summary["error"] == (
        "the global step has not advanced for 60 s (failure.stall_timeout_secs); stuck at "
        "step 12. Stalled tasks: chief:0, worker:0. Each task's Python stacks are printed "
        f"above and in {tmp_path / 'logs'}/."
    )
    assert all(len(world.sent(k, "dump_stacks")) == 1 for k in ("chief:0", "worker:0", "ps:0"))
    dumped = world.log[world.index("send", "ps:0", "dump_stacks")][0]
    killed = world.log[world.index("kill", "chief:0")][0]
    assert killed - dumped >= 1.5, "the inbox is drained for 1.5 s of the supervisor's clock"


def test_a_first_step_that_comes_late_is_not_a_stall(tmp_path):
    # Building the graph and the first step can take longer than the stall timeout on a
    # loaded machine; a step's report carries the global step read before it (0 at first).
    def first_steps(world: World) -> None:
        world.clock.now += 100
        world.progress("chief:0", 0)
        world.progress("worker:0", 0)

    script = [check(lambda w: w.sent("chief:0", "cluster")), first_steps]
    script += [progress("chief:0", 30), finish(100)]
    result = supervise(tmp_path, script, failure={"stall_timeout_secs": 60})
    assert result.summary["status"] == "succeeded", result.summary["error"]
    assert not result.world.sent("chief:0", "dump_stacks")


def test_a_session_that_comes_late_restarts_the_stall_count_and_is_named(tmp_path):
    # On a loaded machine a trainer's session may be ready long after the rendezvous; the
    # watchdog counts from the latest session, so every stalled trainer is named, none missed.
    def late_sessions(world: World) -> None:
        world.clock.now += 50
        world.event("chief:0", "session_ready", global_step=0)
        world.event("worker:0", "session_ready", global_step=0)

    script = [check(lambda w: w.sent("chief:0", "cluster")), late_sessions]
    result = supervise(tmp_path, script, failure={"stall_timeout_secs": 60})
    assert result.summary["status"] == "failed"
    assert "stuck at step 0. Stalled tasks: chief:0, worker:0." in result.summary["error"]


def test_a_backlog_in_the_inbox_is_taken_in_before_the_watchdog_judges(tmp_path):
    # The supervisor itself was starved: while it did not run, the chief moved on; its report
    # waits in the queue behind a worker's report of an older step.
    def starved(world: World) -> None:
        world.clock.now += 100
        world.progress("worker:0", 10)
        world.progress("chief:0", 40)

    script = [progress("chief:0", 10), progress("worker:0", 10), starved, finish(100)]
    result = supervise(tmp_path, script, failure={"stall_timeout_secs": 60})
    assert result.summary["status"] == "succeeded", result.summary["error"]
    assert not result.world.sent("chief:0", "dump_stacks")


@pytest.mark.parametrize("state", ["rendezvous", "training"])
@pytest.mark.parametrize(("signal", "how"), [("", "SIGINT/SIGTERM/SIGHUP"), ("SIGTERM", "SIGTERM")])
def test_ctrl_c_interrupts_and_teardown_kills_everything(tmp_path, state, signal, how):
    def interrupt(world):
        raise KeyboardInterrupt(signal) if signal else KeyboardInterrupt

    script = [interrupt] if state == "rendezvous" else [progress("chief:0", 5), interrupt]
    setup = (lambda w: w.silent.add("ps:0")) if state == "rendezvous" else None
    result = supervise(tmp_path, script, setup=setup)
    assert result.summary["status"] == "interrupted"
    assert result.summary["error"] == f"interrupted by the user ({how})"
    assert all(h.killed and h.exited for h in result.world.all)


# ---- the end of training ------------------------------------------------------------------


def test_workers_stop_first_then_the_variable_hosts(tmp_path):
    keys = ["worker:0", "worker:1", "evaluator:0", "ps:0"]

    def stopped(*expected: bool) -> Step:
        return check(lambda w: [bool(w.sent(k, "stop")) for k in keys] == list(expected))

    script = [
        progress("chief:0", 90),
        stopped(False, False, False, False),
        finish(100),
        stopped(True, True, True, False),  # the evaluator then evaluates the last checkpoint
        step(World.done, "worker:0", 100),
        step(World.exit, "worker:0", 0),
        stopped(True, True, True, False),
        step(World.exit, "worker:1", 0),
    ]
    result = supervise(
        tmp_path,
        script,
        setup=lambda w: w.ignore_stop.update({"worker:0", "worker:1"}),
        cluster={"workers": 2, "ps": 1, "evaluator": 1},
    )
    assert result.summary["status"] == "succeeded", result.summary["error"]
    world = result.world
    assert world.index("send", "ps:0", "stop") > world.index("exit", "worker:1", "0")
    assert result.summary["final_global_step"] == 100
    assert all(t["exit_code"] == 0 for t in result.summary["tasks"].values())


def test_without_ps_the_chief_hosts_the_variables_until_the_workers_exited(tmp_path):
    result = supervise(tmp_path, [progress("chief:0", 40), finish(50)], cluster={"ps": 0})
    assert result.summary["status"] == "succeeded", result.summary["error"]
    world = result.world
    assert world.index("send", "chief:0", "stop") > world.index("exit", "worker:0", "0") > 0
    assert result.summary["tasks"]["chief:0"]["exit_code"] == 0


def test_a_chief_lingering_after_the_workers_finished_is_told_to_stop(tmp_path):
    """Sync training's end: the workers reached max_steps, the chief waits for a token."""
    script = [
        progress("chief:0", 98),
        progress("worker:0", 100),
        step(World.done, "worker:0", 100),
        step(World.exit, "worker:0", 0),
    ]
    result = supervise(tmp_path, script)
    assert result.summary["status"] == "succeeded", result.summary["error"]
    world = result.world
    told = world.log[world.index("send", "chief:0", "stop")][0]
    worker_done = world.log[world.index("exit", "worker:0", "0")][0]
    assert told - worker_done > 10, "stop_grace_secs after the workers and the chief's last step"
    assert "s ago; telling it to stop" in result.out
    assert result.summary["failures"] == [] and result.summary["final_global_step"] == 100


def test_a_finishing_chief_is_not_taken_for_a_lingering_one(tmp_path):
    """Its loop ended at max_steps with the workers; the final checkpoint and the session's
    close take longer than stop_grace_secs on a loaded machine: it must not be stopped."""
    marks: dict[str, float] = {}
    script = [
        progress("chief:0", 98),
        progress("worker:0", 100),
        step(World.done, "worker:0", 100),
        step(World.exit, "worker:0", 0),
        step(World.event, "chief:0", "progress", global_step=100, local_steps=100, finishing=True),
        step(lambda w: marks.setdefault("finishing", w.clock.now)),
        after(lambda w: w.clock.now > marks["finishing"] + 60),
        step(World.done, "chief:0", 100),
        step(World.exit, "chief:0", 0),
    ]
    result = supervise(tmp_path, script)
    assert result.summary["status"] == "succeeded", result.summary["error"]
    assert "telling it to stop" not in result.out
    assert result.world.index("send", "chief:0", "stop") == -1


def test_a_restarted_chief_without_its_session_yet_is_not_told_to_stop(tmp_path):
    """The workers finished while the chief was down: its new instance may take long to open
    its session (imports, graph, restore or join); it is not a chief stuck in a step."""
    marks: dict[str, float] = {}
    script = [
        progress("chief:0", 40),
        progress("worker:0", 100),
        step(World.done, "worker:0", 100),
        step(World.exit, "worker:0", 0),
        crash("chief:0"),
        after(lambda w: w.starts.get("chief:0") == 2),
        step(lambda w: marks.setdefault("restarted", w.clock.now)),
        after(lambda w: w.clock.now > marks["restarted"] + 60),
        check(lambda w: not w.sent("chief:0", "stop")),
        step(World.event, "chief:0", "session_ready", global_step=100),
        finish(100),
    ]
    result = supervise(tmp_path, script)
    assert result.summary["status"] == "succeeded", result.summary["error"]
    assert result.decisions == [("chief:0", "RESTART_TASK")]
    assert not result.world.sent("chief:0", "stop", instance=2)
    assert result.summary["final_global_step"] == 100


def test_a_stopped_chief_that_does_not_finish_its_step_fails_the_job(tmp_path):
    script = [progress("chief:0", 98), step(World.done, "worker:0", 100)]
    script += [step(World.exit, "worker:0", 0)]
    result = supervise(tmp_path, script, setup=lambda w: w.ignore_stop.add("chief:0"))
    assert result.summary["status"] == "failed"
    assert result.summary["error"] == (
        "chief:0 did not finish its last step within timeouts.stop_grace_secs=10 after the "
        f"stop signal; see {tmp_path / 'logs' / 'chief-0.log'}"
    )
    assert "chief:0 did not stop within 10 s; killing it" in result.out


@pytest.mark.parametrize(("key", "grace"), [("worker:0", 10), ("evaluator:0", 45)])
def test_a_task_that_does_not_stop_is_killed_after_its_grace(tmp_path, key, grace):
    result = supervise(
        tmp_path,
        [progress("chief:0", 50), finish(100)],
        setup=lambda w: w.ignore_stop.add(key),
        cluster={"workers": 1, "ps": 1, "evaluator": 1},
        eval={"final_timeout_secs": 45},
    )
    assert result.summary["status"] == "succeeded", result.summary["error"]
    world = result.world
    stopped = world.log[world.index("send", key, "stop")][0]
    killed = world.log[world.index("kill", key)][0]
    assert grace < killed - stopped <= grace + 1
    assert f"{key} did not stop within {grace} s; killing it" in result.out
    assert result.summary["tasks"][key]["exit_code"] == -9
    if key == "worker:0":  # the variable hosts wait for the workers, not the evaluator
        assert world.index("send", "ps:0", "stop") > world.index("kill", key)
    assert result.summary["failures"] == []


# ---- restarts -----------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["bind", "deadline"])
def test_a_failed_rejoin_restarts_the_whole_cluster(tmp_path, how):
    def setup(world):
        (world.bind_fail if how == "bind" else world.silent).add(("worker:0", 2))

    script = [progress("chief:0", 10), crash("worker:0"), after(lambda w: w.starts["ps:0"] == 2)]
    script += [progress("chief:0", 50), finish(100)]
    result = supervise(tmp_path, script, setup=setup)
    assert result.summary["status"] == "succeeded", result.summary["error"]
    assert result.world.starts == {"chief:0": 2, "worker:0": 3, "ps:0": 2}
    assert (
        "worker:0 could not rejoin on its old address; restarting the whole cluster" in result.out
    )
    assert result.decisions == [("worker:0", "RESTART_TASK")] and result.summary["restarts"] == 1


def test_restarts_are_transitions_not_recursion(tmp_path):
    crashes = 30
    script = [progress("chief:0", 5)] + [crash("worker:0")] * crashes + [finish(100)]
    result = supervise(tmp_path, script, failure={"max_failures": 50})
    assert result.summary["status"] == "succeeded", result.summary["error"]
    assert result.world.starts["worker:0"] == crashes + 1
    assert result.summary["restarts"] == crashes
    depths = result.world.stack_depths
    assert len(depths) == 3 + crashes and max(depths) == min(depths), depths


def test_messages_of_a_replaced_task_instance_are_ignored(tmp_path):
    def old_instance_speaks(world):
        old = world.instances("worker:0")[0]
        old.exited = False
        old.event("done", global_step=999, local_steps=1)
        old.exit(1)

    script = [progress("chief:0", 5), crash("worker:0"), old_instance_speaks, finish(100)]
    result = supervise(tmp_path, script)
    assert result.summary["status"] == "succeeded", result.summary["error"]
    assert result.decisions == [("worker:0", "RESTART_TASK")]
    assert result.world.starts["worker:0"] == 2 and result.summary["final_global_step"] == 100


def test_a_worker_finishing_before_the_chief_is_not_a_failure(tmp_path):
    script = [progress("worker:0", 100), step(World.done, "worker:0", 100)]
    script += [step(World.exit, "worker:0", 0), progress("chief:0", 101), finish(101)]
    result = supervise(tmp_path, script)
    assert result.summary["status"] == "succeeded", result.summary["error"]
    assert result.summary["failures"] == [] and result.world.starts["worker:0"] == 1
    assert not result.world.sent("worker:0", "stop"), "it had exited already"


def test_an_exit_0_without_done_or_stop_is_a_failure(tmp_path):
    script = [progress("chief:0", 5), step(World.exit, "worker:0", 0), finish(100)]
    result = supervise(tmp_path, script)
    assert result.summary["status"] == "succeeded", result.summary["error"]
    assert result.decisions == [("worker:0", "RESTART_TASK")]
    assert "worker:0 exited with code 0; restart the task (failure 1 of " in result.out


def test_the_timings_follow_the_supervisors_clock(tmp_path):
    script = [step(World.report_address, "ps:0"), progress("chief:0", 5), finish(100)]

    def setup(world):
        world.silent.add("ps:0")

    def late_ps(world):  # the ps reports 7 s after the others
        world.clock.now += 7

    result = supervise(tmp_path, [late_ps, *script], setup=setup)
    timings = result.summary["timings"]
    assert result.summary["status"] == "succeeded", result.summary["error"]
    assert timings["cluster_ready_secs"] >= 7
    assert timings["cluster_ready_secs"] <= timings["first_step_secs"]
    assert timings["first_step_secs"] <= timings["training_secs"] <= timings["total_secs"]
    assert timings["teardown_secs"] == 0


# ---- observers ----------------------------------------------------------------------------


class CallLog(RunObserver):
    """Records every observer call as (method, args)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def __getattribute__(self, name: str) -> Any:
        if name in RunObserver.__dict__ and not name.startswith("_"):
            return lambda *args: object.__getattribute__(self, "calls").append((name, args))
        return object.__getattribute__(self, name)

    def named(self, method: str) -> list[tuple[Any, ...]]:
        return [args for name, args in self.calls if name == method]


def test_observers_see_starts_progress_evaluations_exits_lines_and_the_end(tmp_path):
    def crash_with_output(world):
        world.inbox.line(world.current["worker:0"], "about to fail")
        world.crash("worker:0")

    log = CallLog()
    script = [progress("chief:0", 10), progress("worker:0", 30), crash_with_output]
    script += [after(lambda w: w.starts["worker:0"] == 2), progress("chief:0", 60), finish(100)]
    result = supervise(
        tmp_path, script, observers=(log,), cluster={"workers": 1, "ps": 1, "evaluator": 1}
    )
    assert result.summary["status"] == "succeeded", result.summary["error"]
    started = [args[0] for args in log.named("task_started")]
    assert sorted(started) == sorted([*TASKS, "worker:0"])
    assert {args[0] for args in log.named("task_address")} == set(TASKS)
    snapshots = [args[0] for args in log.named("progress")]
    steps = [s.global_step for s in snapshots]
    assert steps == sorted(steps) and steps[-1] == 100 and 30 in steps
    assert all(s.max_steps == 100 for s in snapshots)
    chief_done = [s for s in snapshots if s.reporter == "chief:0" and s.global_step == 100]
    assert chief_done and chief_done[0].loss == 0.125
    assert ("worker:0", 1, "RESTART_TASK") in log.named("task_exited")
    assert log.named("evaluation") == [(100, {"loss": 0.5})]
    assert ("worker:0", "about to fail") in log.named("task_line")
    assert log.calls[-1] == ("finished", (result.summary,))
    assert len(log.named("finished")) == 1


def test_an_observer_that_raises_is_reported_once_and_the_job_goes_on(tmp_path):
    class Broken(RunObserver):
        def progress(self, snapshot):
            raise ValueError("dashboard down")

    log = CallLog()
    script = [progress("chief:0", 10), progress("chief:0", 20), finish(100)]
    result = supervise(tmp_path, script, observers=(Broken(), log))
    assert result.summary["status"] == "succeeded", result.summary["error"]
    message = "observer Broken.progress raised ValueError: dashboard down"
    assert result.out.count(message) == 1
    assert [a[0].global_step for a in log.named("progress")][-1] == 100


def test_observers_get_finished_when_the_job_fails(tmp_path):
    log = CallLog()
    script = [progress("chief:0", 5)] + [crash("worker:0")] * 2
    result = supervise(tmp_path, script, observers=(log,), failure={"max_failures": 1})
    assert result.summary["status"] == "failed"
    assert log.calls[-1] == ("finished", (result.summary,))
    assert ("worker:0", 1, "FAIL") in log.named("task_exited")


# ---- the chief's session_ready, relayed to the workers -----------------------------------


def _later(secs: float, key: str, name: str, **fields: Any) -> Step:
    """``secs`` pass on the fake clock, then ``key`` sends the event."""

    def run(world: World) -> None:
        world.clock.now += secs
        world.event(key, name, **fields)

    return run


def test_the_chiefs_session_ready_is_relayed_to_every_worker_as_ready(tmp_path):
    keys = ["chief:0", "worker:0", "worker:1", "ps:0", "evaluator:0"]
    servers_up = after(lambda w: all(w.sent(k, "cluster") for k in keys))
    script = [
        servers_up,
        check(lambda w: not any(w.sent(k, "ready") for k in keys)),
        _later(2.0, "chief:0", "session_ready", global_step=0),
        _later(0.25, "worker:0", "session_ready", global_step=0),
        _later(0.5, "worker:1", "session_ready", global_step=0),
        progress("chief:0", 50),
        finish(100),
    ]
    result = supervise(tmp_path, script, cluster={"workers": 2, "ps": 1, "evaluator": 1})
    assert result.summary["status"] == "succeeded", result.summary["error"]
    timings = result.summary["timings"]
    assert timings["join_delay_secs.worker:0"] == 0.25
    assert timings["join_delay_secs.worker:1"] == 0.75
    assert "join_delay_secs.chief:0" not in timings
    assert [len(result.world.sent(k, "ready")) for k in keys] == [0, 1, 1, 0, 0]
    assert result.world.index("send", "worker:0", "ready") > result.world.index(
        "send", "worker:0", "cluster"
    )


def test_the_chiefs_variables_ready_reaches_the_workers_before_its_session_ready(tmp_path):
    """``variables_ready`` comes before the chief's first checkpoint: the workers are told
    then, not only once ``session_ready`` follows it."""
    keys = ["chief:0", "worker:0", "worker:1", "ps:0"]
    script = [
        after(lambda w: all(w.sent(k, "cluster") for k in keys)),
        _later(1.0, "chief:0", "variables_ready"),
        _later(0.25, "worker:0", "session_ready", global_step=0),
        check(lambda w: [len(w.sent(k, "ready")) for k in keys] == [0, 1, 1, 0]),
        _later(1.0, "chief:0", "session_ready", global_step=0),
        progress("chief:0", 50),
        finish(100),
    ]
    result = supervise(tmp_path, script, cluster={"workers": 2, "ps": 1})
    assert result.summary["status"] == "succeeded", result.summary["error"]
    assert [len(result.world.sent(k, "ready")) for k in keys] == [0, 2, 2, 0]
    # the join delay counts from variables_ready, not from the chief's later session_ready
    assert result.summary["timings"]["join_delay_secs.worker:0"] == 0.25


def test_a_restarted_chief_tells_the_workers_again_and_exited_workers_are_skipped(tmp_path):
    script = [
        _later(1.0, "chief:0", "session_ready", global_step=0),
        _later(0.5, "worker:0", "session_ready", global_step=0),
        progress("chief:0", 40),
        crash("chief:0"),
        after(lambda w: w.starts.get("chief:0") == 2 and bool(w.sent("chief:0", "cluster"))),
        step(World.exit, "worker:1", 0),
        _later(3.0, "chief:0", "session_ready", global_step=40),
        finish(100),
    ]
    result = supervise(tmp_path, script, cluster={"workers": 2, "ps": 1})
    assert result.summary["status"] == "succeeded", result.summary["error"]
    world = result.world
    assert len(world.sent("worker:0", "ready")) == 2  # once per chief session
    assert len(world.sent("worker:1", "ready")) == 1  # not after it exited
    assert result.summary["timings"]["join_delay_secs.worker:0"] == 0.5  # the first only


def test_run_json_has_the_bring_up_breakdown(tmp_path):
    script = [
        step(World.event, "chief:0", "session_ready", global_step=0),
        step(World.event, "worker:0", "session_ready", global_step=0),
        progress("chief:0", 1),
        progress("worker:0", 2),
        finish(100),
    ]
    result = supervise(tmp_path, script)
    assert result.summary["status"] == "succeeded", result.summary["error"]
    timings = result.summary["timings"]
    phases = timings["bring_up"]  # fake tasks send no times: the driver's receipt is used
    assert {"task_process_start", "rendezvous", "chief_session", "first_step"} <= set(phases)
    assert "ray_connect" not in phases and "actor_start" not in phases
    assert all(secs >= 0 for secs in phases.values())
    tasks = timings["bring_up_tasks"]
    assert set(tasks) == {"chief:0", "worker:0", "ps:0"}
    assert {"launched", "address", "cluster_sent", "server_started"} <= set(tasks["ps:0"])
    assert {"session_ready", "first_step"} <= set(tasks["worker:0"])


# ---- node loss: a task that cannot be placed again, a task back on another host -----------


def _lose_worker_node(world: World) -> None:
    world.unplaced.update({("worker:1", 2)})


@pytest.mark.parametrize("min_workers", [1, 0])
def test_a_worker_that_cannot_be_placed_again_is_dropped_when_min_workers_allows(
    tmp_path, min_workers
):
    script = [progress("chief:0", 10), crash("worker:1", -9), progress("chief:0", 50)]
    script += [finish(100)]
    result = supervise(
        tmp_path,
        script,
        setup=_lose_worker_node,
        cluster={"workers": 2, "ps": 1, "min_workers": min_workers},
    )
    assert result.summary["status"] == "succeeded", result.summary["error"]
    assert result.decisions == [("worker:1", "RESTART_TASK"), ("worker:1", "DROP_TASK")]
    assert result.summary["dropped"] == ["worker:1"]
    assert result.world.starts == {"chief:0": 1, "worker:0": 1, "worker:1": 1, "ps:0": 1}
    assert "worker:1 cannot be placed again; the job goes on without it (1 of 2" in result.out
    # the end does not wait for it: the ps got stop once worker:0 had exited
    assert result.world.sent("ps:0", "stop")


def test_a_worker_that_cannot_be_placed_again_fails_the_job_without_min_workers(tmp_path):
    script = [progress("chief:0", 10), crash("worker:1", -9)]
    result = supervise(tmp_path, script, setup=_lose_worker_node, cluster={"workers": 2, "ps": 1})
    assert result.summary["status"] == "failed"
    error = result.summary["error"]
    assert error.startswith("worker:1 cannot be started again: bundle {CPU: 1}")
    assert "cluster.min_workers=2 of 2 workers: the job cannot go on without worker:1" in error
    assert (result.failure.role, result.failure.index) == ("worker", None)
    assert result.decisions == [("worker:1", "RESTART_TASK"), ("worker:1", "FAIL")]


def test_a_dropped_worker_is_not_started_again_with_the_whole_cluster(tmp_path):
    script = [progress("chief:0", 10), crash("worker:1", -9), progress("chief:0", 20)]
    script += [crash("ps:0", -9), after(lambda w: w.starts["ps:0"] == 2)]
    script += [progress("chief:0", 50), finish(100)]
    result = supervise(
        tmp_path,
        script,
        setup=_lose_worker_node,
        cluster={"workers": 2, "ps": 1, "min_workers": 1},
    )
    assert result.summary["status"] == "succeeded", result.summary["error"]
    assert result.world.starts == {"chief:0": 2, "worker:0": 2, "worker:1": 1, "ps:0": 2}
    cluster = result.world.sent("chief:0", "cluster", instance=2)[0]["cluster"]
    assert len(cluster["worker"]) == 2  # its index stays in the spec; nobody dials it
    assert result.summary["dropped"] == ["worker:1"]


def test_the_ps_that_cannot_be_placed_again_fails_the_job_naming_it(tmp_path):
    script = [progress("chief:0", 10), crash("ps:0", -9)]
    result = supervise(
        tmp_path,
        script,
        setup=lambda w: w.unplaced.add(("ps:0", 2)),
        cluster={"workers": 2, "ps": 1, "min_workers": 0},
    )
    assert result.summary["status"] == "failed"
    assert "the job cannot go on without ps:0" in result.summary["error"]


@pytest.mark.parametrize(("victim", "ps"), [("worker:0", 1), ("chief:0", 1), ("chief:0", 0)])
def test_a_task_back_on_another_host_restarts_the_whole_cluster(tmp_path, victim, ps):
    script = [progress("chief:0", 10), crash(victim, -9)]
    script += [after(lambda w: w.starts[victim] == 3), progress("chief:0", 50)]
    script += [finish(100, exit_chief=None if ps else False)]
    result = supervise(
        tmp_path,
        script,
        setup=lambda w: w.hosts.update({(victim, 2): "10.0.0.9", (victim, 3): "10.0.0.9"}),
        cluster={"workers": 1, "ps": ps},
    )
    assert result.summary["status"] == "succeeded", result.summary["error"]
    others = {k: 2 for k in result.world.starts if k != victim}
    assert result.world.starts == {**others, victim: 3}
    assert f"{victim} could not rejoin on its old address; restarting the whole cluster" in (
        result.out
    )
    # the fresh cluster has its new address, for every task
    fresh = result.world.sent("chief:0", "cluster")[0]["cluster"]
    assert fresh[victim.split(":")[0]][0].startswith("10.0.0.9:")
