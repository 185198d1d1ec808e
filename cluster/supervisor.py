"""The one lifecycle and failure policy of a job, shared by every launcher.

A launcher only knows how to start a task somewhere (a local process, a process owned by a
Ray actor) and hands back a ``TaskHandle``; everything else is decided here:

1. Gang start and rendezvous: start every task; each reports the address it holds; when all
   have, send everyone the cluster; wait for every TF server. A task that cannot bind its
   port makes the supervisor re-run the rendezvous with fresh ports (not a failure). Missing
   tasks at ``timeouts.startup_secs`` fail the job, naming them.
2. Training: progress events feed the display, run.json and the stall watchdog.
3. End: when the chief reports ``done``, the workers are told to stop (and killed after
   ``timeouts.stop_grace_secs``); once every trainer has exited, the variable hosts (ps, or
   the chief without ps) are told to stop; then every task has exited. Success means the
   chief finished its training loop.
4. Failures go through ``cluster.policy.decide``: restart the task, restart the cluster, or
   fail with the task's role, index, the error's type, text and user frame (the task's
   one-line ``message``) and its last traceback lines. run.json's ``user_error`` says whether
   the job failed because of the user's code or data.
5. Whatever happens (success, failure, Ctrl-C), ``teardown`` kills what is left.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cluster import policy
from cluster.console import Console
from cluster.handles import Inbox, JobFailed, Launcher, Message
from cluster.plan import Plan, TaskPlan
from harness import protocol

MAX_RENDEZVOUS_ATTEMPTS = 5


@dataclass
class TaskState:
    handle: Any = None
    address: str | None = None
    server_started: bool = False
    done: bool = False
    exited: bool = False
    exit_code: int | None = None
    global_step: int = 0
    local_steps: int = 0
    steps_before_restart: int = 0
    restarts: int = 0
    last_advance: float = field(default_factory=time.monotonic)
    error: dict[str, Any] | None = None


class Supervisor:
    def __init__(
        self,
        plan: Plan,
        launcher: Launcher,
        console: Console,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.plan = plan
        self.job = plan.job
        self.launcher = launcher
        self.console = console
        self.clock = clock
        self.inbox = Inbox(console)
        self.states: dict[str, TaskState] = {t.key: TaskState() for t in plan.tasks}
        self.cluster: dict[str, list[str]] = {}
        self.failures = 0
        self.evaluator_failures = 0
        self.latest_eval: dict[str, Any] | None = None
        self.failure_log: list[dict[str, Any]] = []
        self.chief_done = False
        self.stop_sent: dict[str, float] = {}
        self.global_step = 0
        self.last_loss: float | None = None
        self.timings: dict[str, float] = {}
        self._t0 = clock()
        self._last_global_advance = clock()
        self._workers_done_at: float | None = None
        self.final_global_step = 0

    # ---- entry point ---------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        """Run the job to the end; returns the run summary (also written to run.json)."""
        status, error, user_error = "failed", None, False
        try:
            self._start_cluster()
            self._monitor()
            status = "succeeded"
        except JobFailed as exc:
            error, user_error = str(exc), exc.user_error
        except KeyboardInterrupt as exc:
            how = str(exc) or "SIGINT/SIGTERM/SIGHUP"
            status, error = "interrupted", f"interrupted by the user ({how})"
        finally:
            teardown_start = self.clock()
            self.teardown()
            self.timings["teardown_secs"] = round(self.clock() - teardown_start, 3)
            self.timings["total_secs"] = round(self.clock() - self._t0, 3)
        summary = self.summary(status, error, user_error)
        self._write_run_json(summary)
        return summary

    # ---- start and rendezvous ------------------------------------------------------------

    def _start_cluster(self) -> None:
        self.stop_sent.clear()
        for attempt in range(1, MAX_RENDEZVOUS_ATTEMPTS + 1):
            for task in self.plan.tasks:
                self._start(task)
            if self._rendezvous([t.key for t in self.plan.tasks], fresh=True):
                self.timings.setdefault("cluster_ready_secs", round(self.clock() - self._t0, 3))
                self._last_global_advance = self.clock()
                return
            self.console.info(
                f"a TF server could not bind its port (attempt {attempt}); "
                "re-running the rendezvous with fresh ports"
            )
            self.teardown()
        raise JobFailed(
            f"TF servers failed to bind their ports {MAX_RENDEZVOUS_ATTEMPTS} times in a row; "
            "is something on this host grabbing ports in 10000-32767?"
        )

    def _start(self, task: TaskPlan) -> None:
        state = self.states[task.key]
        if state.handle is not None:  # a previous instance: gone before its successor starts
            state.handle.kill()
            state.handle.wait_gone(timeout=10.0)
        state.handle = self.launcher.start(task, self.inbox)
        state.address, state.server_started = None, False
        state.done, state.exited, state.exit_code, state.error = False, False, None, None
        state.steps_before_restart += state.local_steps
        state.local_steps = 0
        state.last_advance = self.clock()

    def _rendezvous(self, keys: list[str], fresh: bool) -> bool:
        """Collect addresses of ``keys`` (all tasks when ``fresh``), send the cluster, wait for servers.

        Returns False when a server failed to bind (the caller re-runs with fresh ports).
        """
        deadline = self.clock() + self.job.timeouts.startup_secs
        self._wait(
            lambda: all(self.states[k].address for k in keys), deadline, "report its address", keys
        )
        if fresh:
            self.cluster = {}
            for task in self.plan.tasks:
                if task.role != "evaluator":  # as in TF, the evaluator is not in the cluster
                    self.cluster.setdefault(task.role, []).append(self.states[task.key].address)
        for key in keys:
            self.states[key].handle.send(protocol.encode_command("cluster", cluster=self.cluster))
        try:
            self._wait(
                lambda: all(self.states[k].server_started for k in keys),
                deadline,
                "start its TF server",
                keys,
            )
        except _BindFailed:
            return False
        return True

    def _wait(
        self, condition: Callable[[], bool], deadline: float, what: str, keys: list[str]
    ) -> None:
        while not condition():
            if self.clock() > deadline:
                missing = [k for k in keys if not self._reached(k, what)]
                raise JobFailed(
                    f"{', '.join(missing)} did not {what} within {self.job.timeouts.startup_secs:g} s "
                    f"(timeouts.startup_secs). Check {self.console.log_dir}/ for its output."
                )
            self._handle(self.inbox.get(timeout=0.2), starting=True)

    def _reached(self, key: str, what: str) -> bool:
        state = self.states[key]
        return bool(state.server_started if "server" in what else state.address)

    # ---- the monitoring loop -------------------------------------------------------------

    def _monitor(self) -> None:
        while not self._finished():
            self._handle(self.inbox.get(timeout=0.5), starting=False)
            self._enforce_stop_grace()
            self._check_lingering_chief()
            self._check_stall()

    def _finished(self) -> bool:
        if not self.chief_done:
            return False
        trainers_gone = all(
            s.exited
            for k, s in self.states.items()
            if self.plan.task(k).is_trainer and k != "chief:0"
        )
        if trainers_gone:
            for key in self.plan.variable_hosts:
                self._send_stop(key)
        return all(s.exited for s in self.states.values())

    def _handle(self, message: Message | None, starting: bool) -> None:
        if message is None:
            return
        key = message.handle.plan.key
        state = self.states[key]
        if message.handle is not state.handle:
            return  # from a task instance that was already replaced
        if message.kind == "event":
            self._on_event(key, state, message.data)
        else:
            state.exited, state.exit_code = True, message.data
            self._on_exit(key, state, starting)

    def _on_event(self, key: str, state: TaskState, event: dict[str, Any]) -> None:
        name = event["event"]
        if name == "address":
            state.address = f"{event['host']}:{event['port']}"
        elif name == "server_started":
            state.server_started = True
        elif name == "bind_failed":
            self.console.info(
                f"{key}: TF server could not bind {event.get('port')}: {event.get('error')}"
            )
        elif name in ("session_ready", "progress", "done"):
            self._on_progress(key, state, event)
            if name == "session_ready":
                self.timings.setdefault(
                    f"session_ready_secs.{key}", round(self.clock() - self._t0, 3)
                )
            if name == "done":
                state.done = True
                if key == "chief:0":
                    self._on_chief_done()
        elif name == "eval":
            self._on_eval(event)
        elif name in ("error", "user_error"):
            state.error = event

    def _on_progress(self, key: str, state: TaskState, event: dict[str, Any]) -> None:
        now = self.clock()
        steps = int(event.get("local_steps", state.local_steps))
        if steps > state.local_steps:
            state.last_advance = now
            self.timings.setdefault("first_step_secs", round(now - self._t0, 3))
        state.local_steps = steps
        step = int(event.get("global_step", 0))
        state.global_step = step
        if event.get("loss") is not None:
            self.last_loss = float(event["loss"])
        if step > self.global_step:
            self.global_step = step
            self._last_global_advance = now
        self.console.progress(self.global_step, self.last_loss)

    def _on_eval(self, event: dict[str, Any]) -> None:
        metrics = event.get("metrics", {})
        self.latest_eval = {"global_step": event.get("global_step"), "metrics": metrics}
        text = ", ".join(f"{k}={v:.4g}" for k, v in sorted(metrics.items()))
        self.console.info(f"eval at global step {event.get('global_step')}: {text}")

    def _on_chief_done(self) -> None:
        self.chief_done = True
        self.final_global_step = self.states["chief:0"].global_step
        self.timings["training_secs"] = round(self.clock() - self._t0, 3)
        self.console.info(
            f"chief finished training at global step {self.final_global_step}; stopping the cluster"
        )
        for task in self.plan.tasks:  # the evaluator then evaluates the final checkpoint
            if task.role in ("worker", "evaluator"):
                self._send_stop(task.key)

    def _send_stop(self, key: str) -> None:
        state = self.states[key]
        if key not in self.stop_sent and not state.exited:
            self.stop_sent[key] = self.clock()
            state.handle.send(protocol.encode_command("stop"))

    def _check_lingering_chief(self) -> None:
        """Stop a chief that is stuck in a step after every worker finished at max_steps.

        This is the end-of-training trap of synchronous training: the last replica waits for a
        token that no other replica will produce. A chief that still makes steps (say, one that
        was restarted and restored an older checkpoint) is left alone. The stop signal ends
        the blocked step (hooks.stop) and the chief finishes normally, final checkpoint
        included.
        """
        workers = [s for k, s in self.states.items() if k.startswith("worker:")]
        if self.chief_done or not workers or not all(s.exited and s.done for s in workers):
            self._workers_done_at = None
            return
        now = self.clock()
        self._workers_done_at = self._workers_done_at or now
        grace = self.job.timeouts.stop_grace_secs
        chief = self.states["chief:0"]
        stuck = now - chief.last_advance > grace and now - self._workers_done_at > grace
        if stuck and "chief:0" not in self.stop_sent:
            self.console.info(
                f"chief:0 has made no step for {now - chief.last_advance:.0f} s, and every "
                f"worker finished {now - self._workers_done_at:.0f} s ago; telling it to stop"
            )
            self._send_stop("chief:0")

    def _enforce_stop_grace(self) -> None:
        for key, sent in self.stop_sent.items():
            state = self.states[key]
            grace = self.job.timeouts.stop_grace_secs
            if key.startswith("evaluator"):
                grace = self.job.eval.final_timeout_secs
            if not state.exited and self.clock() - sent > grace:
                self.console.info(f"{key} did not stop within {grace:g} s; killing it")
                state.handle.kill()

    # ---- failures ------------------------------------------------------------------------

    def _on_exit(self, key: str, state: TaskState, starting: bool) -> None:
        code = state.exit_code
        if code == protocol.EXIT_BIND_FAILED:
            raise _BindFailed(key)
        if code == protocol.EXIT_OK and (key in self.stop_sent or state.done):
            return
        if key in self.stop_sent:
            if key == "chief:0" and not self.chief_done:
                raise JobFailed(
                    f"chief:0 did not finish its last step within timeouts.stop_grace_secs="
                    f"{self.job.timeouts.stop_grace_secs:g} after the stop signal; see {self.console.log_path(key)}"
                )
            return  # told to stop, and killed after the grace period
        role, index = key.split(":")
        failure = policy.TaskFailure(
            role, int(index), code, user_error=code == protocol.EXIT_USER_ERROR
        )
        used = self.evaluator_failures if role == "evaluator" else self.failures
        decision = policy.decide(failure, used, self.job.failure.max_failures, self.chief_done)
        self.failure_log.append(
            {
                "task": key,
                "exit_code": code,
                "decision": decision.name,
                "at_secs": round(self.clock() - self._t0, 3),
            }
        )
        if decision is policy.Decision.IGNORE:
            if role == "evaluator" and not self.chief_done:
                self.console.info(f"{key} exited with code {code}; training goes on without it")
            return
        if decision is policy.Decision.FAIL:
            raise JobFailed(
                self._failure_message(key, state, failure), user_error=failure.user_error
            )
        if role == "evaluator":
            self.evaluator_failures += 1
            self.console.info(f"{key} exited with code {code}; restarting it (training goes on)")
            state.restarts += 1
            self._restart_task(key)
            return
        self.failures += 1
        self.console.info(
            f"{key} exited with code {code}; {decision.value} "
            f"(failure {self.failures} of failure.max_failures={self.job.failure.max_failures})"
        )
        state.restarts += 1
        if decision is policy.Decision.RESTART_CLUSTER:
            self.teardown()
            self._start_cluster()
        else:
            self._restart_task(key)

    def _restart_task(self, key: str) -> None:
        self._start(self.plan.task(key))
        try:
            ok = self._rendezvous([key], fresh=False)
        except JobFailed:
            ok = False
        if not ok:  # its old port is gone: every task needs the new cluster
            self.console.info(
                f"{key} could not rejoin on its old address; restarting the whole cluster"
            )
            self.teardown()
            self._start_cluster()

    def _failure_message(self, key: str, state: TaskState, failure: policy.TaskFailure) -> str:
        if failure.user_error:
            head = f"{key} failed with an error in the user's code (not retried)"
        elif self.failures >= self.job.failure.max_failures:
            head = (
                f"{key} exited with code {failure.exit_code} after {self.failures} restart(s); "
                f"failure.max_failures={self.job.failure.max_failures} is used up"
            )
        else:
            head = f"{key} exited with code {failure.exit_code}"
        message = (state.error or {}).get("message")
        head = f"{head}: {message}" if message else f"{head}:"
        if state.error:
            detail = state.error.get("traceback") or ""
        else:
            detail = "\n".join(self.inbox.tails.get(key, ()))
        lines = [line for line in detail.strip().splitlines() if line.strip()][-12:]
        body = "".join("\n    " + line for line in lines)
        return f"{head}{body}\n  full log: {self.console.log_path(key)}"

    # ---- stall watchdog ------------------------------------------------------------------

    def _check_stall(self) -> None:
        timeout = self.job.failure.stall_timeout_secs
        now = self.clock()
        if self.chief_done or now - self._last_global_advance < timeout:
            return
        stalled = [
            k
            for k, s in self.states.items()
            if self.plan.task(k).is_trainer and not s.exited and now - s.last_advance >= timeout
        ]
        for state in self.states.values():
            if not state.exited:
                state.handle.send(protocol.encode_command("dump_stacks"))
        time.sleep(1.5)  # the stacks, and each trainer's latest step (harness.task)
        while (message := self.inbox.get(timeout=0.1)) is not None:
            self._handle(message, starting=False)
        reached = max([self.global_step, *(s.global_step for s in self.states.values())])
        raise JobFailed(
            f"the global step has not advanced for {timeout:g} s (failure.stall_timeout_secs); "
            f"stuck at step {reached}. Stalled tasks: {', '.join(stalled) or 'none reported'}. "
            f"Each task's Python stacks are printed above and in {self.console.log_dir}/."
        )

    # ---- teardown and summary ------------------------------------------------------------

    def teardown(self) -> None:
        """Kill every task that is still there and wait until they are gone."""
        handles = [s.handle for s in self.states.values() if s.handle is not None]
        for handle in handles:
            handle.kill()
        for handle in handles:
            handle.wait_gone(timeout=10.0)
        for state in self.states.values():
            state.exited = True

    def summary(self, status: str, error: str | None, user_error: bool = False) -> dict[str, Any]:
        """run.json's content. ``user_error``: the job failed because of the user's code."""
        return {
            "job": self.job.name,
            "status": status,
            "error": error,
            "user_error": user_error,
            "backend": self.plan.backend,
            "final_global_step": self.final_global_step if self.chief_done else self.global_step,
            "max_steps": self.job.train.max_steps,
            "last_loss": self.last_loss,
            "restarts": self.failures,
            "failures": self.failure_log,
            "tasks": {
                key: {
                    "local_steps": s.steps_before_restart + s.local_steps,
                    "restarts": s.restarts,
                    "exit_code": s.exit_code,
                }
                for key, s in self.states.items()
            },
            "timings": self.timings,
            "eval": self.latest_eval,
        }

    def _write_run_json(self, summary: dict[str, Any]) -> None:
        os.makedirs(self.job.model_dir, exist_ok=True)
        path = os.path.join(self.job.model_dir, "run.json")
        with open(path + ".tmp", "w") as f:
            json.dump(summary, f, indent=2)
        os.replace(path + ".tmp", path)


class _BindFailed(Exception):
    pass
