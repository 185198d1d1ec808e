"""Errors a restart cannot fix are the user's, named with type, text and line; signals; the
progress a stall report names; the embedded Ray's CPU warning."""

from __future__ import annotations

import signal
import sys
import textwrap
import threading

import pytest
import tensorflow as tf

from cluster import ray_launcher
from cluster.plan import make_plan
from harness import cli
from harness.errors import (
    CheckpointMismatchError,
    UserGraphError,
    UserHookError,
    describe,
    error_text,
    op_user_location,
)
from harness.job import JobSpec
from harness.runtime.trainer import classify_training_error, is_user_error
from hooks.guard import UserHookGuard, guard_user_hooks
from hooks.progress import ProgressHook
from hooks.roles import ORIGIN_CHIEF_HOOKS, ORIGIN_HARNESS, ORIGIN_TRAINING_HOOKS, select

v1 = tf.compat.v1


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    """A module outside the harness and site-packages, as a user's model.py is."""

    def load(name: str, source: str):
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
        monkeypatch.syspath_prepend(str(tmp_path))
        monkeypatch.chdir(tmp_path)
        module = __import__(name)
        monkeypatch.delitem(sys.modules, name)
        return module

    return load


# ---- user hooks ----------------------------------------------------------------------------


def test_a_user_hook_raising_is_a_user_error_naming_the_hook_method_and_line(user_module):
    mod = user_module(
        "userhooks",
        """
        import tensorflow as tf

        class BadHook(tf.compat.v1.train.SessionRunHook):
            def begin(self):
                raise ValueError("no such summary")
        """,
    )
    guard = UserHookGuard(mod.BadHook(), ORIGIN_CHIEF_HOOKS)
    with pytest.raises(UserHookError) as info:
        guard.begin()
    assert str(info.value) == (
        "training_chief_hooks BadHook.begin raised at userhooks.py:6 in begin: "
        "ValueError: no such summary"
    )
    assert info.value.hook == "BadHook.begin"
    assert isinstance(info.value.__cause__, ValueError)
    assert is_user_error(info.value)


@pytest.mark.parametrize(
    "error",
    [tf.errors.UnavailableError(None, None, "ps:0 is gone"), StopIteration()],
)
def test_tensorflow_errors_and_the_end_of_input_pass_through_the_guard(error):
    class Hook(v1.train.SessionRunHook):
        def after_run(self, run_context, run_values):
            raise error

    with pytest.raises(type(error)):
        UserHookGuard(Hook(), ORIGIN_TRAINING_HOOKS).after_run(None, None)


def test_the_guard_delegates_and_wraps_only_the_users_hooks():
    calls = []

    class Hook(v1.train.SessionRunHook):
        def before_run(self, run_context):
            calls.append(run_context)
            return "args"

    class Ops:
        training_hooks = [Hook()]
        training_chief_hooks = [Hook()]

    default = v1.train.StopAtStepHook(last_step=3)
    guarded = guard_user_hooks(select(Ops(), "chief", trainer_defaults=[default]))
    assert [e.origin for e in guarded.hooks] == [ORIGIN_HARNESS, ORIGIN_TRAINING_HOOKS]
    assert guarded.hooks[0].hook is default
    assert isinstance(guarded.hooks[1].hook, UserHookGuard)
    assert guarded.hooks[1].hook.hook is Ops.training_hooks[0]
    assert isinstance(guarded.chief_only_hooks[0].hook, UserHookGuard)
    assert guarded.hooks[1].hook.before_run("ctx") == "args" and calls == ["ctx"]


# ---- TensorFlow errors -----------------------------------------------------------------------


def _run_reshape(mod):
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, [None, 1])
        y = mod.model(x)
        with v1.Session() as session:
            session.run(y, {x: [[1.0]] * 16})


def test_a_failing_op_of_the_users_at_the_first_step_names_the_line_that_created_it(
    user_module,
):
    mod = user_module(
        "usergraph",
        """
        import tensorflow as tf

        def model(x):
            return tf.reshape(x, [7, -1])
        """,
    )
    with pytest.raises(tf.errors.InvalidArgumentError) as info:
        _run_reshape(mod)
    exc = info.value
    assert op_user_location(exc.op) == "usergraph.py:5 in model"
    text = "Input to reshape is a tensor with 16 values, but the requested shape requires a multiple of 7"
    assert error_text(exc) == text
    assert describe(exc) == f"InvalidArgumentError: {text} (at usergraph.py:5 in model)"
    user_error = classify_training_error(exc, first_step=True, model_dir="/nowhere")
    assert isinstance(user_error, UserGraphError)
    assert str(user_error) == (
        f"the first training step failed in op 'Reshape' created at usergraph.py:5 in model: "
        f"InvalidArgumentError: {text}"
    )
    # after steps have run, the same error may be the data's: the policy may retry it
    assert classify_training_error(exc, first_step=False, model_dir="/nowhere") is None


_RESHAPE = (
    "Input to reshape is a tensor with 16 values, but the requested shape requires a multiple of 7"
)
_DETECTED = (
    "Graph execution error:\n\nDetected at node 'Reshape' defined at (most recent call last):\n"
    "    File \"/tmp/model.py\", line 13, in <module>\nNode: 'Reshape'\n"
)
_RECENT_LOGS = (
    "Recent warning and error logs:\n  W0000 00:00:1796242753.926945   25746 "
    f"local_rendezvous.cc:412] Local rendezvous is aborting with status: INVALID_ARGUMENT: {_RESHAPE}"
    "\n\t [[{{node Reshape}}]]\n"
)
_GRPC_DETAIL = (
    "Additional GRPC error information from remote target /job:chief/replica:0/task:0 while "
    "calling /tensorflow.WorkerService/RecvTensor:\n:UNKNOWN:Error received from peer  "
    f'{{grpc_status:3, grpc_message:"{_RESHAPE}\\n\\t [[{{{{node Reshape}}}}]]"}}\n\t [[Reshape_S3]]\n'
)


@pytest.mark.parametrize(
    "message",
    [
        # one task's error, with the runtime's recent log lines
        f"{_DETECTED}From /job:chief/replica:0/task:0:\n{_RESHAPE}\n\t [[{{{{node Reshape}}}}]]\n"
        + _RECENT_LOGS,
        # a remote task's error, with its gRPC detail
        f"{_DETECTED}From /job:chief/replica:0/task:0:\n{_RESHAPE}\n\t [[{{{{node Reshape}}}}]]\n"
        + _GRPC_DETAIL
        + _RECENT_LOGS,
        # the errors of two tasks, aggregated
        f"{_DETECTED}{_DETECTED}=====================\n"
        f"INVALID_ARGUMENT: From /job:chief/replica:0/task:0:\n{_RESHAPE}\n\t [[{{{{node Reshape}}}}]]\n"
        + _RECENT_LOGS
        + f"INVALID_ARGUMENT: From /job:worker/replica:0/task:0:\n{_RESHAPE}\n"
        + _GRPC_DETAIL
        + _RECENT_LOGS
        + "=====================",
    ],
    ids=["recent-logs", "grpc-detail", "aggregated"],
)
def test_a_distributed_runtime_error_is_the_first_tasks_text_on_one_line(message):
    """The forms TensorFlow 2.21 gives for one failing op in a cluster, taken from real runs."""
    exc = tf.errors.InvalidArgumentError(None, None, message)
    assert error_text(exc) == f"From /job:chief/replica:0/task:0: {_RESHAPE}"


def test_an_error_in_an_op_of_the_harness_or_the_runtime_is_not_the_users():
    class LibraryOp:
        name = "IteratorGetNext"
        traceback = [("/usr/lib/python3/site-packages/tensorflow/ops.py", 10, "f", "")]

    library_error = tf.errors.InvalidArgumentError(None, LibraryOp(), "Cannot batch tensors")
    assert op_user_location(library_error.op) is None
    assert classify_training_error(library_error, first_step=True, model_dir="/nowhere") is None
    unavailable = tf.errors.UnavailableError(None, None, "Socket closed")
    assert classify_training_error(unavailable, first_step=True, model_dir="/nowhere") is None


def test_a_checkpoint_of_another_graph_is_a_user_error_naming_the_missing_key(tmp_path):
    graph = tf.Graph()
    with graph.as_default():
        v1.train.get_or_create_global_step()
        v1.get_variable("bias", [1])
        with v1.Session() as session:
            session.run(v1.global_variables_initializer())
            v1.train.Saver().save(session, str(tmp_path / "model.ckpt"), global_step=3)
    graph = tf.Graph()
    with graph.as_default():
        v1.train.get_or_create_global_step()
        v1.get_variable("w", [1])
        with v1.Session() as session, pytest.raises(tf.errors.NotFoundError) as info:
            v1.train.Saver().restore(session, str(tmp_path / "model.ckpt-3"))
    user_error = classify_training_error(info.value, first_step=False, model_dir=str(tmp_path))
    assert isinstance(user_error, CheckpointMismatchError)
    assert str(user_error).startswith(
        f"the checkpoint {tmp_path}/model.ckpt-3 does not match the graph: "
        "NotFoundError: Key w not found in checkpoint."
    )


# ---- progress for the stall message -------------------------------------------------------------


def test_progress_reports_the_latest_step_on_demand_between_timed_reports():
    reports = []
    graph = tf.Graph()
    with graph.as_default():
        step = v1.train.get_or_create_global_step()
        train_op = v1.assign_add(step, 1)
        loss = tf.constant(0.5)
        hook = ProgressHook(lambda event, **f: reports.append((event, f)), loss, every_secs=3600)
        with v1.train.MonitoredSession(hooks=[hook]) as session:
            for _ in range(30):
                session.run(train_op)
            timed = [f for event, f in reports if event == "progress"]
            reports.clear()
            other_thread = threading.Thread(target=hook.report_latest)  # the commands thread
            other_thread.start()
            other_thread.join()
            on_demand = list(reports)
    assert [f["global_step"] for f in timed] in ([0], [1])  # one report, at the first step
    ((event, fields),) = on_demand
    assert event == "progress" and fields["local_steps"] == 30
    assert fields["global_step"] in (29, 30) and fields["loss"] == 0.5


# ---- signals ---------------------------------------------------------------------------------


@pytest.fixture
def saved_handlers(monkeypatch):
    names = [n for n in cli.INTERRUPT_SIGNALS if hasattr(signal, n)]
    saved = {n: signal.getsignal(getattr(signal, n)) for n in names}
    monkeypatch.setattr(cli, "_interrupted", False)
    yield
    for name, handler in saved.items():
        signal.signal(getattr(signal, name), handler)


def test_run_handles_sigint_sigterm_and_sighup_even_when_sigint_was_ignored(saved_handlers):
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # as `cmd &` in a script hands it on
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    cli.install_interrupt_handlers()
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        assert signal.getsignal(getattr(signal, name)) is cli._raise_interrupted
    with pytest.raises(cli.Interrupted, match="SIGINT"):
        cli._raise_interrupted(signal.SIGINT, None)
    cli._raise_interrupted(signal.SIGTERM, None)  # a second signal does not cut the teardown


def test_sighup_ignored_by_nohup_stays_ignored(saved_handlers):
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    cli.install_interrupt_handlers()
    assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    assert signal.getsignal(signal.SIGINT) is cli._raise_interrupted


# ---- the embedded Ray's CPUs ---------------------------------------------------------------------


def _job(cpu: float, workers: int = 2) -> JobSpec:
    return JobSpec.from_dict(
        {
            "name": "cpus",
            "model_fn": "m:model_fn",
            "input_fn": "m:input_fn",
            "model_dir": "/tmp/cpus",
            "cluster": {"workers": workers, "ps": 1},
            "resources": {r: {"cpu": cpu} for r in ("chief", "worker", "ps")},
            "train": {"max_steps": 10},
        }
    )


def test_an_embedded_ray_declaring_more_cpus_than_the_machine_has_warns():
    assert ray_launcher.oversubscription_warning(_job(16), machine_cpus=2) == (
        "harness: warning: the job's resources ask for 64 CPUs in all and this machine has 2; "
        "the embedded Ray declares 64 logical CPUs, so the tasks share 2 cores (lower "
        "resources.<role>.cpu, or pass --address of a larger cluster)"
    )
    assert ray_launcher.oversubscription_warning(_job(0.5), machine_cpus=2) is None


def test_the_launcher_prints_the_warning_when_it_starts_an_embedded_ray(monkeypatch, capsys):
    import ray

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setattr(ray_launcher.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda **kwargs: calls.append(kwargs))
    monkeypatch.setattr(ray_launcher.RayLauncher, "_create_placement_group", lambda self: None)
    calls: list[dict] = []
    ray_launcher.launch(ray_launcher.render(make_plan(_job(16), "ray")))
    assert calls and calls[0]["num_cpus"] == 64
    err = capsys.readouterr().err.splitlines()
    assert [line for line in err if "warning" in line] == [
        ray_launcher.oversubscription_warning(_job(16), machine_cpus=2)
    ]
