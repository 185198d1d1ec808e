"""cluster.policy.decide: the failure policy, per role, pure."""

from __future__ import annotations

import pytest

from cluster.policy import Decision, TaskFailure, decide


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
