"""The prose of BENCHMARKS.md: how each figure is measured, and why a target is missed.

The causes named here were found with py-spy (``py-spy dump --native`` of the tasks while
they were slow), TensorFlow's verbose logs (``TF_CPP_VMODULE=master_session=2,...``) and
controlled variants of the bare-TF baseline; ``explanations`` prints the paragraph of a
figure only when one of its targets is missed in the run being reported.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from bench.records import ClusterRun
from bench.stats import Comparison, Summary
from bench.workload import SIZES

THROUGHPUT_SETUP = (
    "1 chief + 2 workers + 1 ps, every task a separate process at 0.5 CPU (the harness's "
    "`resources`), variables on the ps. Small model: the linear regression of "
    f"`examples/linear` on batches of {SIZES['small'][0]}; large model: a 3-layer MLP on "
    f"[{SIZES['large'][0]}, {SIZES['large'][1]}] batches with {SIZES['large'][2]}-wide hidden "
    "layers. Both variants build the graph with `bench/workload.py` and run "
    "`[train_op, loss]` per step; the chief writes a checkpoint when it starts and when it "
    "ends, and summaries every 100 steps. Bare TF runs only `StopAtStepHook` and the "
    "recorder; the harness adds Estimator's `NanTensorHook` and `LoggingTensorHook` and its own "
    "progress and stop-signal hooks. Global steps/s is read from the chief's "
    "(time, global step) samples over a fixed window that starts once every trainer has "
    "made its first step (plus a warm-up); the chief then sets a shared `stop_at` variable "
    "and every trainer stops, so a late-joining worker does not shorten the window."
)

TEARDOWN_SETUP = (
    "From the chief's last training step (the moment it asks its loop to stop) to the moment "
    "the last task process (and, under Ray, the last actor process) is gone, from the "
    "driver's point of view: bare TF's launcher reaping its 4 processes; `run_job` returning "
    "and its processes checked gone with psutil. It includes the chief's final checkpoint and "
    "session close in both variants."
)

MEMORY_SETUP = (
    "Peak RSS (the kernel's `VmHWM`) of each task process, read with psutil every 0.1 s, on "
    "the small model; the largest process of a role per run. Harness task processes are "
    "`python -m harness.task`; under Ray they are subprocesses of the Ray actors, whose own "
    "processes are reported separately below. The bare-TF tasks import only TensorFlow, NumPy "
    "and `bench/workload.py`."
)

HOOKS_SETUP = (
    "One local `MonitoredSession` (no cluster) whose train_op only increments the global "
    "step, `run([train_op, loss])` per step, with and without `ProgressHook` "
    "(hooks/progress.py, reporting to an `EventWriter` on /dev/null every 0.5 s) and "
    "`StopSignalHook` (hooks/stop.py, never signalled). The stall watchdog lives in the "
    "supervisor, not in a hook, so it costs no time per step."
)

SCALING_SETUP = (
    "Harness local backend, large model, 1 ps and 1, 2 or 4 trainers (the chief plus 0, 1 or "
    "3 workers), asynchronous between-graph training; aggregate global steps/s over a fixed "
    f"window once every trainer stepped, examples/s = steps/s x {SIZES['large'][0]}."
)

GPU_SETUP = (
    "As figure 6, on the Ray backend, with the visible GPUs shared by the trainers "
    "(`resources.worker.gpu` = GPUs / trainers, memory growth on); the ps stays on CPU."
)


def bringup_setup(driver_import_secs: float | None) -> str:
    text = (
        "Launch is the driver's call (`run_job`, `TensorflowTrainer.fit()`, or bare TF's "
        "launcher starting its processes) with the driver's Python, TensorFlow and Ray "
        "already loaded and Ray already up; the first step is when a trainer's first "
        "`session.run` returned (recorded inside the trainers on the system-wide monotonic "
        "clock). The join delay is from the chief's `Scaffold.init_fn` (right after it "
        "initialized the variables) to the last worker's session being ready. Stock "
        "MonitoredTrainingSession re-checks a worker's readiness only every 30 s "
        "(`recovery_wait_secs`); the harness's workers poll every 0.2 s."
    )
    if driver_import_secs is not None:
        text += (
            " Not included: `harness run` imports TensorFlow in the driver and imports the "
            "model_fn before it launches anything (so that a broken job fails in seconds); "
            f"`import tensorflow` alone took {driver_import_secs:.1f} s in a fresh interpreter "
            "during this run."
        )
    return text


def gone_breakdown(clusters: dict[str, list[ClusterRun | None]]) -> list[str]:
    """Median seconds from the chief's last step until each kind of process was gone."""
    lines = [
        "Median seconds from the chief's last step until each process was gone:",
        "",
        "| variant | chief | workers (last) | ps | Ray actors (last) |",
        "|---|---|---|---|---|",
    ]
    for key, name in (
        ("bare-small", "bare TF"),
        ("local-small", "harness local"),
        ("ray-small", "harness ray"),
    ):
        columns = []
        for pick in (
            lambda k: k == "chief:0",
            lambda k: k.startswith("worker:"),
            lambda k: k.startswith("ps:"),
            lambda k: k.startswith("actor "),
        ):
            per_run = [
                max(v for k, v in run.gone_secs.items() if pick(k))
                for run in clusters.get(key) or []
                if run is not None and run.gone_secs and any(pick(k) for k in run.gone_secs)
            ]
            columns.append(f"{statistics.median(per_run):.2f}" if per_run else "—")
        lines.append(f"| {name} | " + " | ".join(columns) + " |")
    return lines + [""]


# ---- explanations of missed targets ------------------------------------------------------------

CAUSES = {
    "teardown": (
        "**Teardown.** The harness's own part is small: `run.json`'s `teardown_secs` (the "
        "supervisor killing what is left) is about 0.01 s, and workers and the ps exit within "
        "0.1-0.3 s of the chief's `done` event. What bounds the figure is TensorFlow's session "
        "close in the chief: in the slow runs `py-spy dump --native` shows the chief's main "
        "thread for 4-5 s in `MonitoredSession.__exit__` → `BaseSession.close` → "
        "`TF_CloseSession` → `GrpcSession::Close` → `LocalMaster::CloseSession` "
        "(waiting on the master session's `Close`, after `Discarding all reffed graphs` in "
        "TF's `master_session` log). The same stall shows up in the bare-TF baseline, in "
        "about a third of the runs, whether its workers exit at once (`os._exit`, as the "
        "harness's tasks do) or linger; bare TF's tasks additionally spend 1-10 s in Python's "
        "interpreter shutdown (`gc_collect_main`), which `os._exit` spares the harness. The "
        "median is therefore bimodal: about 0.2-0.5 s when the close is quick, 4-5 s when it "
        "stalls. A fix outside bench/: the chief could report `done` from a hook's `end()` "
        "(after the final checkpoint is written, before the session closes) and the "
        "supervisor could then stop the ps and kill a chief still closing its session after a "
        "short grace; nothing is lost, since the final checkpoint is on disk by then."
    ),
}


def explanations(results: Any, rows: dict[str, Sequence[Comparison]]) -> list[str]:
    """The "Explanations" section: missed targets (with causes) and the scaling figure."""
    out = ["## Explanations", ""]
    missed = [
        (figure, row)
        for figure, figure_rows in rows.items()
        for row in figure_rows
        if row.met is False
    ]
    if not missed:
        out += ["Every target with a measurement was met in this run.", ""]
    for figure in dict.fromkeys(f for f, _ in missed):
        names = "; ".join(f"{r.label}, {r.candidate_name}" for f, r in missed if f == figure)
        out += [f"Missed in this run: {names}.", ""]
        out += [CAUSES.get(figure, "No cause has been established for this miss yet."), ""]
    if results.scaling:
        out += [scaling_explanation(results.scaling), ""]
    return out


def scaling_explanation(scaling: dict[int, list[ClusterRun | None]]) -> str:
    def median(n: int) -> float | None:
        summary = Summary.of([None if r is None else r.steps_per_sec for r in scaling.get(n, [])])
        return None if summary is None else summary.median

    rates = {n: median(n) for n in (1, 2, 4)}
    shown = ", ".join(f"{n}: {v:.1f}" for n, v in rates.items() if v is not None)
    return (
        f"**Scaling on 2 cores** (median global steps/s by trainers: {shown}). Every "
        "trainer, the ps and the driver share the machine's 2 cores, so the aggregate rate "
        "cannot grow past what 2 cores compute: one trainer leaves a core to the ps and the "
        "driver, two trainers fill both cores, and four trainers only split the same 2 cores "
        "four ways (plus more gradient traffic through the one ps), so each trainer's own "
        "rate drops roughly in proportion. On this machine the figure measures contention, "
        "not the harness: asynchronous between-graph training scales with cores (or GPUs, "
        "`--gpu`), and a trainer per core is the most that helps."
    )
