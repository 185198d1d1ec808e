"""The one lifecycle of a job, shared by every launcher: an explicit state machine.

A launcher only starts a task somewhere (a local process, a process owned by a Ray actor)
and hands back a ``TaskHandle``; everything else happens here, every failure decision is
made by ``cluster.policy`` and only carried out here. ``run`` is one loop over the current
``State`` (``cluster.lifecycle``); each state's function does one step and returns the next
state, so a restart is a transition, never a recursion (docs/ARCHITECTURE.md, "Supervisor
states"; a message costs O(1), the O(tasks) checks run per ``BATCH`` or watchdog interval):

- STARTING: every task is started. RENDEZVOUS: each reports the address it holds; when all
  have, everyone gets the cluster; -> TRAINING once every TF server is up. A restarted
  task rejoins the same way, binding its old address. Tasks missing at
  ``timeouts.startup_secs`` fail the job, named.
- TRAINING: progress feeds the display, run.json and the stall watchdog; -> STOPPING when
  the chief reports ``done`` (the workers and the evaluator get ``stop``). STOPPING: tasks
  that do not stop are killed after ``timeouts.stop_grace_secs``; once every worker has
  exited, the variable hosts (ps, or the chief without ps) get ``stop``; -> DONE once every
  task has exited. Success means the chief finished its training loop.
- RESTARTING -> RENDEZVOUS (one task again) or -> STARTING (all torn down: a ps died, a
  rejoin failed, fresh ports after a bind failure); a task the launcher cannot place again
  is dropped or fails the job. A failure ends the job (``JobFailed``: the task, its
  ``message``, its last traceback lines; run.json's ``user_error``: the user's code or
  data), as Ctrl-C does, or setting ``stop`` (a ``threading.Event``, from any thread;
  ``Inbox.get`` raises); ``teardown`` kills what is left.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from cluster import failure_report, lifecycle, policy, watchdogs
from cluster.console import Console
from cluster.handles import Inbox, JobFailed, Launcher, Message, Unplaced
from cluster.lifecycle import Rendezvous, State, TaskState
from cluster.observe import Observers, RunObserver
from cluster.plan import Plan, TaskPlan
from cluster.record import RunRecord, write_run_json
from cluster.shards import EVENTS as SHARD_EVENTS
from cluster.shards import ShardService
from harness import protocol

STACK_DUMP_SECS = 1.5  # how long the stall watchdog waits for stacks and latest steps
WATCHDOG_EVERY_SECS = 0.2  # the watchdogs are O(tasks): run at most this often, not per event
BATCH = 256  # messages taken in per turn of RENDEZVOUS and STOPPING, whose checks are O(tasks)


class Supervisor:
    def __init__(
        self,
        plan: Plan,
        launcher: Launcher,
        console: Console,
        clock: Callable[[], float] = time.monotonic,
        observers: Sequence[RunObserver] = (),
        stop: threading.Event | None = None,
    ) -> None:
        self.plan = plan
        self.job = plan.job
        self.launcher = launcher
        self.console = console
        self.clock = clock
        self.observers = Observers(observers, console.info)
        self.inbox = Inbox(console, on_line=self.observers.line_callback(), stop=stop)
        self.tasks: dict[str, TaskState] = {t.key: TaskState() for t in plan.tasks}
        self.state = State.STARTING
        self.failure: JobFailed | None = None  # why the job failed (role, index), once it has
        self.rendezvous: Rendezvous | None = None
        self.budget = policy.Budget(max_failures=self.job.failure.max_failures)
        self._pending: tuple[policy.Decision, str] | None = None  # what RESTARTING does
        self.record = RunRecord(console, clock, self.job.train.max_steps)
        self.cluster: dict[str, list[str]] = {}
        self.shards = ShardService(self.job, console.info)  # data: (cluster.shards)
        self.chief_done = False
        self.stop_sent: dict[str, float] = {}
        self._workers_done_at: float | None = None
        self._watchdogs_due = float("-inf")  # when the watchdogs run next (TRAINING)
        self._other_trainers = [t.key for t in plan.tasks if t.is_trainer and t.key != "chief:0"]
        # each state's step is the method of its name: State.TRAINING -> self._training
        steps = [s for s in State if s is not State.DONE]
        self._steps = {s: getattr(self, f"_{s.name.lower()}") for s in steps}

    @property
    def failures(self) -> int:
        """Restarts charged to the trainers' and ps' budget (run.json's ``restarts``)."""
        return self.budget.failures

    # ---- entry point: the loop -----------------------------------------------------------

    def run(self) -> dict[str, Any]:
        """Run the job to the end; returns the run summary (also written to run.json)."""
        status, error, user_error = "failed", None, False
        try:
            while self.state is not State.DONE:
                self.state = self._steps[self.state]()
            status = "succeeded"
        except JobFailed as exc:
            error, user_error = str(exc), exc.user_error
            self.failure = exc
        except KeyboardInterrupt as exc:
            how = str(exc) or "SIGINT/SIGTERM/SIGHUP"
            status, error = "interrupted", f"interrupted by the user ({how})"
        finally:
            self.state = State.DONE
            teardown_start = self.clock()
            self.teardown()
            self.record.timings["teardown_secs"] = round(self.clock() - teardown_start, 3)
            self.record.timings["total_secs"] = self.record.elapsed()
        summary = self.summary(status, error, user_error)
        write_run_json(self.job.model_dir, summary)
        self.observers.call("finished", summary)
        return summary

    # ---- the states ----------------------------------------------------------------------

    def _starting(self) -> State:
        """STARTING -> RENDEZVOUS: start every task; they rendezvous with fresh ports."""
        self.stop_sent.clear()
        self.shards.rollback()
        for task in (t for t in self.plan.tasks if not self.tasks[t.key].dropped):
            self._start(task)  # a task dropped now is not waited for (Rendezvous.live)
        startup = self.clock() + self.job.timeouts.startup_secs
        self.rendezvous = Rendezvous(list(self.tasks), True, startup)
        return State.RENDEZVOUS

    def _rendezvous(self) -> State:
        """RENDEZVOUS -> TRAINING (or STOPPING) once every server is up; -> RESTARTING."""
        rv = self.rendezvous
        assert rv is not None
        if rv.fresh and not rv.cluster_built and rv.all_reported(self.tasks):
            self.cluster, rv.cluster_built = lifecycle.build_cluster(self.plan, self.tasks), True
        for key in rv.due(self.tasks):
            if policy.moved_host(self.cluster, key, self.tasks[key].address):
                # back on another host, which the running ps cannot reach
                return self._execute(key, *policy.decide_moved(key, self.chief_done, self.budget))
            self.tasks[key].handle.send(protocol.encode_command("cluster", cluster=self.cluster))
            self.record.bring_up.task_mark(key, "cluster_sent")
        if rv.complete(self.tasks):
            if rv.fresh:
                self.record.mark("cluster_ready_secs")
                self.record.last_global_advance = self.clock()
            self.rendezvous = None
            return State.STOPPING if self.chief_done else State.TRAINING
        if self.clock() > rv.deadline:
            return self._rendezvous_deadline(rv)
        return self._take(timeout=0.2) or State.RENDEZVOUS

    def _rendezvous_deadline(self, rv: Rendezvous) -> State:
        missing, what = rv.missing(self.tasks)
        decision = policy.decide_deadline(rv.fresh, self.chief_done)
        if decision is policy.Decision.FAIL:
            startup = self.job.timeouts.startup_secs
            raise JobFailed(lifecycle.startup_message(missing, what, startup, self.console.log_dir))
        self.rendezvous = None
        if decision is policy.Decision.IGNORE:
            return State.STOPPING
        key = missing[0] if missing else rv.keys[0]
        return self._execute(key, policy.rejoin_timed_out(key, self.chief_done), decision)

    def _training(self) -> State:
        """TRAINING -> STOPPING when the chief is done; -> RESTARTING on a restart."""
        next_state = self._take(timeout=0.5)
        if next_state is not None or self.chief_done:
            return next_state or State.STOPPING
        # the backlog first (its news may be newer than now); the O(tasks) watchdogs seldom
        if self.inbox.pending() or self.clock() < self._watchdogs_due:
            return State.TRAINING
        self._watchdogs_due = self.clock() + WATCHDOG_EVERY_SECS
        self._enforce_stop_grace()
        self._check_lingering_chief()
        self._check_stall()
        return State.TRAINING

    def _stopping(self) -> State:
        """STOPPING -> DONE once every task has exited."""
        if self._finished():
            return State.DONE
        next_state = self._take(timeout=0.5)
        self._enforce_stop_grace()
        return next_state or State.STOPPING

    def _restarting(self) -> State:
        """RESTARTING -> RENDEZVOUS (one task rejoins) or -> STARTING (the whole cluster)."""
        assert self._pending is not None
        (decision, key), self._pending = self._pending, None
        if decision is policy.Decision.RESTART_TASK:
            self.shards.task_restarting(key)
            self._start(self.plan.task(key))  # dropped, the rendezvous does not wait for it
            deadline = self.clock() + self.job.timeouts.startup_secs
            if self.rendezvous is None:
                self.rendezvous = Rendezvous([key], False, deadline, cluster_built=True)
            else:
                self.rendezvous.add(key, deadline)
            return State.RENDEZVOUS
        self.teardown()  # RESTART_CLUSTER, RERUN_RENDEZVOUS
        self.rendezvous = None
        return State.STARTING

    # ---- tasks ---------------------------------------------------------------------------

    def _start(self, task: TaskPlan) -> None:
        """Start ``task``, or drop it when it cannot be placed again (``_drop``)."""
        state = self.tasks[task.key]
        if state.handle is not None:  # a previous instance: gone before its successor starts
            state.handle.kill()
            state.handle.wait_gone(timeout=10.0)
        self.record.bring_up.task_mark(task.key, "launched")
        try:
            handle = self.launcher.start(task, self.inbox)
        except Unplaced as exc:
            return self._drop(task.key, exc)
        state.started(handle, self.clock())
        self.record.restarted(task.key, bool(getattr(handle, "warm", False)))
        self.observers.call("task_started", task.key)

    def _drop(self, key: str, exc: Unplaced) -> None:
        """Go on without ``key``, or fail naming its resources (``policy.decide_unplaced``)."""
        decision = policy.decide_unplaced(key, self.tasks, self.job.cluster)
        self.record.failure(key, None, decision.name)
        self.observers.call("task_exited", key, None, decision.name)
        if decision is policy.Decision.FAIL:
            raise lifecycle.unplaced_failure(exc, key, self.job.cluster)
        self.console.info(lifecycle.drop(key, self.tasks, self.job.cluster))

    def _send_stop(self, key: str) -> None:
        if key not in self.stop_sent and not (state := self.tasks[key]).exited:
            self.stop_sent[key] = self.clock()
            state.handle.send(protocol.encode_command("stop"))

    def _finished(self) -> bool:
        if not self.chief_done:
            return False
        if all(self.tasks[k].exited for k in self._other_trainers):
            for key in self.plan.variable_hosts:
                self._send_stop(key)
        return all(s.exited for s in self.tasks.values())

    # ---- messages ------------------------------------------------------------------------

    def _take(self, timeout: float) -> State | None:  # a message, then the queued, to BATCH
        for _ in range(BATCH):
            next_state = self._handle(self.inbox.get(timeout=timeout))
            if next_state is not None or not self.inbox.pending():
                return next_state
        return None

    def _handle(self, message: Message | None) -> State | None:
        """Take in one message; returns the next state when it calls for a transition."""
        if message is None:
            return None
        key = message.handle.plan.key
        state = self.tasks[key]
        if message.handle is not state.handle:
            return None  # from a task instance that was already replaced
        if message.kind == "event":
            self.record.bring_up.on_event(key, message.data, message.handle)
            self._on_event(key, state, message.data)
            return None
        state.exited, state.exit_code = True, message.data
        self.shards.exited(key)
        return self._on_exit(key, state)

    def _on_event(self, key: str, state: TaskState, event: dict[str, Any]) -> None:
        name = event["event"]
        if name == "address":
            state.address = f"{event['host']}:{event['port']}"
            self.observers.call("task_address", key, state.address)
        elif name == "server_started":
            state.server_started = True
        elif name == "bind_failed":
            port, error = event.get("port"), event.get("error")
            self.console.info(f"{key}: TF server could not bind {port}: {error}")
        elif name == "variables_ready":  # the chief's, before its first checkpoint is written
            self.record.variables_ready(key)
            self._relay_ready(key)  # (session_ready relays again: a lost one costs one poll)
        elif name in ("session_ready", "progress", "done"):
            self.record.progress(state, event)
            if self.observers:
                self.observers.call("progress", self.record.snapshot(key))
            if name == "session_ready":
                self.record.session_ready(key)
                self._relay_ready(key)
            if name == "done":
                state.done = True
                if key == "chief:0":
                    self._on_chief_done()
        elif name == "eval":
            self.observers.call("evaluation", *self.record.evaluation(event))
        elif name in ("error", "user_error"):
            state.error = event
        elif name in SHARD_EVENTS:
            self.shards.on_event(key, state.handle, event)

    def _relay_ready(self, key: str) -> None:
        """The chief's variables are ready: workers waiting for them are told (``ready``)."""
        if key == "chief:0":
            for worker in (k for k in self._other_trainers if not self.tasks[k].exited):
                self.tasks[worker].handle.send(protocol.encode_command("ready"))

    def _on_chief_done(self) -> None:
        """The chief finished: workers and evaluator get ``stop`` (the way into STOPPING)."""
        self.chief_done = True
        step = self.record.final_global_step = self.tasks["chief:0"].global_step
        self.record.timings["training_secs"] = self.record.elapsed()
        self.console.info(f"chief finished training at global step {step}; stopping the cluster")
        for task in (t for t in self.plan.tasks if t.role in ("worker", "evaluator")):
            self._send_stop(task.key)  # the evaluator then evaluates the final checkpoint

    # ---- exits: classified and decided by the policy, carried out here -------------------

    def _on_exit(self, key: str, state: TaskState) -> State | None:
        role, index = key.split(":")
        rv = self.rendezvous
        event = policy.ExitEvent(
            role,
            int(index),
            state.exit_code,
            stop_sent=key in self.stop_sent,
            reported_done=state.done,
            chief_done=self.chief_done,
            state=self.state,
            rejoining=rv is not None and rv.rejoining(key),
        )
        failure = policy.classify_exit(event)
        return self._execute(key, failure, policy.decide_exit(failure, self.budget))

    def _execute(
        self, key: str, failure: policy.TaskFailure, decision: policy.Decision
    ) -> State | None:
        """Carry out ``decision``; returns RESTARTING for a restart, else None (no change)."""
        state, code = self.tasks[key], failure.exit_code
        if failure.is_failure:
            self.record.failure(key, code, decision.name)
        used, self.budget = self.budget, policy.charge(self.budget, failure, decision)
        self.observers.call("task_exited", key, code, decision.name)
        if decision in (policy.Decision.NOTHING, policy.Decision.IGNORE):
            evaluator = failure.role == "evaluator"
            if decision is policy.Decision.IGNORE and evaluator and not self.chief_done:
                self.console.info(f"{key} exited with code {code}; training goes on without it")
            if self.rendezvous is not None:
                self.rendezvous.drop(key)  # nothing waits for it any more
            return None
        if decision is policy.Decision.FAIL:
            tail, log_path = self.inbox.tails.get(key, ()), self.console.log_path(key)
            raise failure_report.job_failed(failure, state, used, self.job, log_path, tail)
        if failure.kind is policy.ExitKind.BIND_FAILED:
            self.console.info(
                f"a TF server could not bind its port (attempt {used.rendezvous_attempt}); "
                "re-running the rendezvous with fresh ports"
            )
        elif failure.kind is policy.ExitKind.REJOIN_FAILED:
            self.console.info(
                f"{key} could not rejoin on its old address; restarting the whole cluster"
            )
        elif policy.RESTART_TABLE[failure.role].budget == "evaluator":
            state.restarts += 1
            self.console.info(f"{key} exited with code {code}; restarting it (training goes on)")
        else:
            state.restarts += 1
            self.console.info(
                f"{key} exited with code {code}; {decision.value} (failure "
                f"{self.failures} of failure.max_failures={self.job.failure.max_failures})"
            )
        self._pending = (decision, key)
        return State.RESTARTING

    # ---- watchdogs (TRAINING, STOPPING) --------------------------------------------------

    def _check_lingering_chief(self) -> None:
        """Tell a chief stuck after every worker finished to stop (``watchdogs``)."""
        grace = self.job.timeouts.stop_grace_secs
        facts = (self.tasks, self.chief_done, self._workers_done_at, self.clock(), grace)
        self._workers_done_at, message = watchdogs.lingering_chief(*facts)
        if message is not None and "chief:0" not in self.stop_sent:
            self.console.info(message)
            self._send_stop("chief:0")

    def _enforce_stop_grace(self) -> None:
        for key, sent in self.stop_sent.items():
            grace = watchdogs.stop_grace_secs(key, self.job)
            if not self.tasks[key].exited and self.clock() - sent > grace:
                self.console.info(f"{key} did not stop within {grace:g} s; killing it")
                self.tasks[key].handle.kill()

    def _check_stall(self) -> None:
        """Fail the job when the global step has not advanced for stall_timeout_secs; first,
        every task is asked for its stacks and the inbox drained for ``STACK_DUMP_SECS``, so
        they get printed and each trainer's latest step counted (transitions are dropped)."""
        timeout = self.job.failure.stall_timeout_secs
        now = self.clock()
        if self.chief_done or now - self.record.last_global_advance < timeout:
            return
        stalled = watchdogs.stalled_trainers(self.tasks, self.plan, now, timeout)
        for state in (s for s in self.tasks.values() if not s.exited):
            state.handle.send(protocol.encode_command("dump_stacks"))
        deadline = self.clock() + STACK_DUMP_SECS
        while self.clock() < deadline:
            self._handle(self.inbox.get(timeout=0.1))
        reached = max([self.record.global_step, *(s.global_step for s in self.tasks.values())])
        raise JobFailed(lifecycle.stall_message(timeout, reached, stalled, self.console.log_dir))

    # ---- teardown and summary ------------------------------------------------------------

    def teardown(self) -> None:
        """Kill every task that is still there and wait until they are gone."""
        handles = [s.handle for s in self.tasks.values() if s.handle is not None]
        for handle in handles:
            handle.kill()
        for handle in handles:
            handle.wait_gone(timeout=10.0)
        for state in self.tasks.values():
            state.exited = True

    def summary(self, status: str, error: str | None, user_error: bool = False) -> dict[str, Any]:
        """run.json's content. ``user_error``: the job failed because of the user's code."""
        facts = (self.plan, self.tasks, self.failures, self.chief_done)
        self.record.bring_up.marks(getattr(self.launcher, "bring_up", {}))
        return self.record.summary(*facts, status, error, user_error)
