"""cluster.policy: the failure policy (classify_exit, decide_exit, decide), pure."""

from __future__ import annotations

import pytest

from cluster.lifecycle import State, TaskState
from cluster.policy import (
    MAX_RENDEZVOUS_ATTEMPTS,
    RESTART_TABLE,
    Budget,
    Decision,
    ExitEvent,
    ExitKind,
    TaskFailure,
    charge,
    classify_exit,
    decide,
    decide_deadline,
    decide_exit,
    decide_moved,
    decide_unplaced,
    moved_host,
)
from harness.job import ClusterSpecConfig


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("worker", Decision.RESTART_TASK),
        ("chief", Decision.RESTART_TASK),
        ("ps", Decision.RESTART_CLUSTER),
    ],
)
def test_role_decides_the_restart(role, expected):
    assert (
        decide(TaskFailure(role, 0, -9), failures_so_far=0, max_failures=3, chief_done=False)
        is expected
    )


@pytest.mark.parametrize("role", ["worker", "chief", "ps"])
def test_user_errors_fail_at_once(role):
    failure = TaskFailure(role, 0, 2, user_error=True)
    assert decide(failure, failures_so_far=0, max_failures=3, chief_done=False) is Decision.FAIL


@pytest.mark.parametrize("max_failures", [0, 1, 3])
def test_max_failures_bounds_restarts(max_failures):
    failure = TaskFailure("worker", 1, 1)
    for used in range(max_failures):
        assert decide(failure, used, max_failures, chief_done=False) is Decision.RESTART_TASK
    assert decide(failure, max_failures, max_failures, chief_done=False) is Decision.FAIL


@pytest.mark.parametrize("role", ["worker", "chief", "ps"])
def test_after_the_chief_finished_failures_are_ignored(role):
    assert decide(TaskFailure(role, 0, -9), 5, 3, chief_done=True) is Decision.IGNORE
    assert (
        decide(TaskFailure(role, 0, 2, user_error=True), 0, 3, chief_done=True) is Decision.IGNORE
    )


def test_the_evaluator_is_restarted_and_never_fails_the_training():
    crash = TaskFailure("evaluator", 0, 1)
    assert decide(crash, 0, 3, chief_done=False) is Decision.RESTART_TASK
    assert decide(crash, 3, 3, chief_done=False) is Decision.IGNORE
    # A model error on one checkpoint is retried too, from the evaluator's own budget.
    user_error = TaskFailure("evaluator", 0, 2, user_error=True)
    assert decide(user_error, 0, 3, chief_done=False) is Decision.RESTART_TASK
    assert decide(user_error, 3, 3, chief_done=False) is Decision.IGNORE


# ---- classify_exit / decide_exit: every decision the supervisor carries out ----------------


def exit_event(role="worker", code=1, **known):
    return ExitEvent(role, 0, code, **known)


def test_the_restart_table_is_per_role():
    assert {role: rule.restart for role, rule in RESTART_TABLE.items()} == {
        "worker": Decision.RESTART_TASK,
        "chief": Decision.RESTART_TASK,
        "ps": Decision.RESTART_CLUSTER,
        "evaluator": Decision.RESTART_TASK,
    }
    assert RESTART_TABLE["evaluator"].budget != RESTART_TABLE["worker"].budget
    assert RESTART_TABLE["evaluator"].exhausted is Decision.IGNORE


@pytest.mark.parametrize(
    ("event", "kind"),
    [
        (exit_event(code=0, stop_sent=True), ExitKind.EXPECTED),
        (exit_event(code=0, reported_done=True), ExitKind.EXPECTED),
        (exit_event(code=-9, stop_sent=True), ExitKind.EXPECTED),  # killed after the grace
        (exit_event("chief", -9, stop_sent=True), ExitKind.STOP_GRACE),
        (exit_event("chief", 0, stop_sent=True), ExitKind.EXPECTED),
        (exit_event("chief", -9, stop_sent=True, chief_done=True), ExitKind.EXPECTED),
        (exit_event(code=3, state=State.RENDEZVOUS), ExitKind.BIND_FAILED),
        (exit_event(code=3, state=State.RENDEZVOUS, rejoining=True), ExitKind.REJOIN_FAILED),
        (exit_event(code=3, state=State.TRAINING), ExitKind.FAILURE),
        (exit_event(code=0), ExitKind.FAILURE),  # exit 0 without stop or done
        (exit_event(code=None), ExitKind.FAILURE),
    ],
)
def test_classify_exit(event, kind):
    assert classify_exit(event).kind is kind


def test_classify_exit_marks_user_errors_only_for_failures():
    assert classify_exit(exit_event(code=2)).user_error
    assert not classify_exit(exit_event(code=1)).user_error
    assert not classify_exit(exit_event(code=2, stop_sent=True)).user_error


BUDGET = Budget(max_failures=3)


@pytest.mark.parametrize(
    ("event", "budget", "decision"),
    [
        (exit_event(code=0, stop_sent=True), BUDGET, Decision.NOTHING),
        (exit_event("chief", -9, stop_sent=True), BUDGET, Decision.FAIL),
        (exit_event(code=3, state=State.RENDEZVOUS), BUDGET, Decision.RERUN_RENDEZVOUS),
        (
            exit_event(code=3, state=State.RENDEZVOUS),
            Budget(3, rendezvous_attempt=MAX_RENDEZVOUS_ATTEMPTS),
            Decision.FAIL,
        ),
        (exit_event(code=3, rejoining=True), BUDGET, Decision.RESTART_CLUSTER),
        (exit_event(code=3, rejoining=True, chief_done=True), BUDGET, Decision.IGNORE),
        (exit_event(code=2), BUDGET, Decision.FAIL),
        (exit_event("evaluator", 2), BUDGET, Decision.RESTART_TASK),
        (exit_event("ps", -9), BUDGET, Decision.RESTART_CLUSTER),
        (exit_event(code=1), Budget(3, failures=3), Decision.FAIL),
        (exit_event("evaluator", 1), Budget(3, failures=3), Decision.RESTART_TASK),
        (exit_event("evaluator", 1), Budget(3, evaluator_failures=3), Decision.IGNORE),
        (exit_event(code=1), Budget(3, evaluator_failures=3), Decision.RESTART_TASK),
        (exit_event(code=1, chief_done=True), BUDGET, Decision.IGNORE),
    ],
)
def test_decide_exit(event, budget, decision):
    assert decide_exit(classify_exit(event), budget) is decision


def test_deadlines_fail_a_start_and_restart_the_cluster_for_a_rejoin():
    assert decide_deadline(fresh=True, chief_done=False) is Decision.FAIL
    assert decide_deadline(fresh=False, chief_done=False) is Decision.RESTART_CLUSTER
    assert decide_deadline(fresh=False, chief_done=True) is Decision.IGNORE


def test_charge_counts_each_budget_and_the_rendezvous_attempts():
    worker = classify_exit(exit_event(code=1))
    evaluator = classify_exit(exit_event("evaluator", 1))
    budget = charge(BUDGET, worker, Decision.RESTART_TASK)
    assert (budget.failures, budget.evaluator_failures) == (1, 0)
    budget = charge(budget, evaluator, Decision.RESTART_TASK)
    assert (budget.failures, budget.evaluator_failures) == (1, 1)
    bind = classify_exit(exit_event(code=3, state=State.RENDEZVOUS))
    budget = charge(budget, bind, Decision.RERUN_RENDEZVOUS)
    assert (budget.failures, budget.rendezvous_attempt) == (1, 2)
    rejoin = classify_exit(exit_event(code=3, rejoining=True))
    budget = charge(budget, rejoin, Decision.RESTART_CLUSTER)  # not a failure of its own
    assert (budget.failures, budget.rendezvous_attempt) == (1, 1)
    assert charge(budget, worker, Decision.FAIL) == budget


# ---- node loss ------------------------------------------------------------------------------


def _shape(workers: int, min_workers: int | None = None) -> ClusterSpecConfig:
    return ClusterSpecConfig(workers=workers, ps=1, evaluator=1, min_workers=min_workers)


def _tasks(workers: int, dropped: tuple[str, ...] = ()) -> dict[str, TaskState]:
    keys = ["chief:0", "ps:0", "evaluator:0", *(f"worker:{i}" for i in range(workers))]
    return {k: TaskState(dropped=k in dropped) for k in keys}


@pytest.mark.parametrize(
    ("key", "min_workers", "dropped", "expected"),
    [
        ("worker:1", None, (), Decision.FAIL),  # default: every worker is needed
        ("worker:1", 2, (), Decision.DROP_TASK),
        ("worker:1", 2, ("worker:0",), Decision.FAIL),  # 1 left would be fewer than 2
        ("worker:2", 1, ("worker:0",), Decision.DROP_TASK),
        ("worker:0", 0, ("worker:1", "worker:2"), Decision.DROP_TASK),
        ("chief:0", 0, (), Decision.FAIL),
        ("ps:0", 0, (), Decision.FAIL),
        ("evaluator:0", None, (), Decision.DROP_TASK),  # training never depends on it
    ],
)
def test_a_task_that_cannot_be_placed_again(key, min_workers, dropped, expected):
    shape = _shape(3, min_workers)
    assert decide_unplaced(key, _tasks(3, dropped), shape) is expected


def test_min_workers_defaults_to_every_worker():
    assert _shape(3).workers_needed == 3 and _shape(3, 0).workers_needed == 0


@pytest.mark.parametrize(
    ("key", "address", "moved"),
    [
        ("worker:1", "10.0.0.2:9", False),  # its host: it binds its old address
        ("worker:1", "10.0.0.3:9", True),  # the ps would still dial 10.0.0.2
        ("chief:0", "10.0.0.3:2", True),
        ("evaluator:0", "10.0.0.3:0", False),  # not in the cluster
    ],
)
def test_a_restarted_task_back_on_another_host(key, address, moved):
    cluster = {"chief": ["10.0.0.1:2"], "worker": ["10.0.0.1:3", "10.0.0.2:4"], "ps": ["x:5"]}
    assert moved_host(cluster, key, address) is moved


def test_a_task_back_on_another_host_restarts_the_whole_cluster():
    failure, decision = decide_moved("worker:0", False, Budget(max_failures=3))
    assert failure.kind is ExitKind.REJOIN_FAILED and decision is Decision.RESTART_CLUSTER
    assert decide_moved("worker:0", True, Budget(max_failures=3))[1] is Decision.IGNORE
