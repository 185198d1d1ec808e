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
    "layers. Every variant builds the graph with `bench/workload.py` and runs "
    "`[train_op, loss]` per step; the chief writes a checkpoint when it starts and when it "
    "ends, and summaries every 100 steps. Bare TF runs only `StopAtStepHook` and the "
    "recorder; bare TF + Estimator hooks adds tf.estimator's defaults, stock "
    "`NanTensorHook` and `LoggingTensorHook` every 100 steps (which fetches its tensors only on "
    "the steps it logs); the harness runs its default hooks (`harness validate` prints them: "
    "the same Estimator hooks, its `LoggingTensorHook` fetching the same set every step, and "
    "its progress and stop-signal hooks). So harness ÷ bare TF includes what TF1's Estimator "
    "hooks cost, harness ÷ bare TF + Estimator hooks is what the harness adds. The chief "
    "starts its window once every trainer has joined and it has warmed up (the settings "
    "above: at least that many seconds, steps of its own and global steps, past two cadences "
    "of the 100-step hooks, so that TensorFlow has built the partitioned graph of every set "
    "of fetches the hooks ask for before the window); global steps/s is read from its "
    "(time, global step) samples over the window; the chief then sets a shared `stop_at` "
    "variable and every trainer stops, so a late-joining worker does not shorten the window. "
    "The small-model bare-TF runs start all tasks at once, as the harness does; the "
    "large-model ones start the chief last (they give the join-delay baseline of figure 2), "
    "so their chief has trained alone for about 20 s before the window; the bare TF + "
    "Estimator hooks runs start the workers once the chief has initialized the model (no 30 s "
    "re-check)."
)

OVERHEAD_SETUP = (
    "The same runs as time per global step: the baseline and candidate values are 1 / "
    "(global steps/s); Δ is, per repetition, 1 / candidate − 1 / baseline, in µs per global "
    "step of the whole cluster (each trainer's own step is about 3 global steps long here, "
    "so the extra time per trainer step is about 3 × Δ)."
)


def peer_setup(settings: Any) -> str:
    """How the Ray Train comparison is run (the model is ``bench.suite.PEER_SIZE``)."""
    from bench.suite import PEER_SIZE

    batch = SIZES[PEER_SIZE][0]
    return (
        f"The {PEER_SIZE} model on the same embedded Ray, in the same repetitions: Ray Train's "
        "`TensorflowTrainer` with 3 workers at 0.5 CPU (`bench/ray_train_baseline.py`: "
        "`MultiWorkerMirroredStrategy`, a custom TF2 loop, the same layers, initializers, "
        "learning rate and input pipeline), against the harness on Ray with its asynchronous "
        "ps (the runs above) and with `SyncReplicasOptimizer` over the 3 trainers (its "
        "`make_session_run_hook(is_chief)` in `training_hooks`, so every trainer runs it, the "
        "chief with `is_chief=True`). Both Ray Train and SyncReplicas are synchronous "
        "training, a different algorithm from asynchronous ps training: a synchronous step "
        f"applies the gradients of 3 batches of {batch} at once, an asynchronous global step "
        f"those of one, so examples/s (steps/s × batches per step × {batch}) is the comparable "
        "figure. Ray Train warms up and measures its window like the others (rank 0 decides, "
        "the workers agree by an all-reduce every 10 steps)."
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
        "clock). The join delay is how long a worker's session came after it could have: "
        "from the later of the chief's `Scaffold.init_fn` (right after it initialized the "
        "variables) and the worker starting to create its session, to that session being "
        "ready; the longest of the workers per run. Stock MonitoredTrainingSession re-checks "
        "a worker's readiness only every 30 s (`recovery_wait_secs`), so a worker that asks "
        "before the chief's init waits up to 30 s; one that comes up after it does not wait. "
        "The harness's workers are told at once when the chief's variables are ready "
        "(`variables_ready`, relayed as `ready`), with a 0.2 s poll as the fallback. Launch times are from the small-model "
        "runs, where every variant starts all its tasks at once (Ray Train's against the "
        "harness's on Ray from the runs of the model of the Ray Train comparison); the "
        "join-delay baseline is "
        "from the large-model bare-TF runs, which start the chief once both workers are "
        "creating their sessions (workers that come up first, the case the 30 s hits), "
        "against the harness's large-model runs."
    )
    if driver_import_secs is not None:
        text += (
            " Not included: `harness run` imports TensorFlow in the driver and imports the "
            "model_fn before it launches anything (so that a broken job fails in seconds); "
            f"`import tensorflow` alone took {driver_import_secs:.1f} s in a fresh interpreter "
            "during this run."
        )
    return text


BRING_UP_BREAKDOWN = (
    "Where the harness's launch → all trainers stepping went, from each small-model run's "
    "run.json (`timings.bring_up`, `cluster/bringup.py`; `harness run --timings` prints the "
    "same for one run). Each phase ends when the last task of the TF cluster (chief, workers, "
    "ps) reached its milestone and starts where the previous one ended, so a run's phases add "
    "up to its total; task milestones are the tasks' own wall clock (`time.time()`), the "
    "others the driver's. Ray connect is near 0 here because the benchmark's Ray is already "
    "up. Every task starts `import tensorflow` on a thread as soon as it starts, beside the "
    "rendezvous, so the tensorflow-import phase is what is left of the import once the "
    "cluster has arrived; the four imports share the same 2 cores. The join delay here is "
    "the supervisor's: from the chief's `variables_ready` (sent right after its `init_fn`) "
    "to the worker's `session_ready`, negative when the worker had its session first; "
    "`variables_ready` is relayed to the workers as the `ready` command, which wakes a "
    "worker's session creator at once (its 0.2 s poll is the fallback)."
)


def stock_waits(clusters: dict[str, list[ClusterRun | None]]) -> list[str]:
    """How many stock bare-TF runs had a worker wait for TF's 30 s re-check."""
    delays = [r.join_delay_secs for r in clusters.get("bare-small") or [] if r is not None]
    waited = sum(1 for d in delays if d is not None and d > 20)
    return [
        f"When bare TF starts all its tasks at once (small-model runs), a worker still asked "
        f"before the chief's init and waited for the 30 s re-check in {waited} of "
        f"{len(delays)} runs; in the others both workers happened to come up after the "
        "chief's init.",
        "",
    ]


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
    "throughput": (
        "**Throughput.** Causes measured so far. (1) Scheduling: task processes used to be "
        "started in sessions of their own, and Linux's scheduler autogroups (on by default) "
        "make every session a scheduling group that gets an equal share of the cores "
        "whatever its demand. The ps, which serves every trainer, was then preempted 2-3 "
        "times as often as in bare TF (nonvoluntary context switches per thread, from "
        "/proc), and the small model ran at 0.87 × bare TF. Task processes now get a process "
        "group of their own in their parent's session (`cluster/processes.py`, "
        "`spawn_task`): the preemption counts match bare TF's. (2) The CPU table above: what "
        "the driver, Ray's own processes (actors, raylet, GCS, agents) and idle time take in "
        "the window, on the cores the tasks share; bare TF has no such processes. (3) Not "
        "causes: the harness's hooks cost microseconds per step (figure 5) against steps "
        "of 2-10 ms per trainer, and the ps handles the same RPCs per global step in both "
        "variants (strace of the ps: 10.5 `sendmsg` calls per global step in each). The "
        "windows start after the warm-up, so every set of fetches has its partitioned graph "
        "before them. Runs of the same variant differ by 10-30 % when other work is "
        "running: run the benchmark alone to read a 1-2 % difference."
    ),
    "overhead": (
        "**Time per step.** The same runs as the throughput rows (see there): Δ is the "
        "difference of the two runs' 1/rate in each repetition, so it has the same causes."
    ),
    "bringup": (
        "**Bring-up.** Join delay: with instrumented runs (large model, Ray), the chief's "
        "`variables_ready` reached the workers 8 ms after its `init_fn`; each worker's next "
        "try then ran `local_init_op` for the first time in its session (TensorFlow prepares "
        "a graph partition for that new set of fetches: 80-170 ms while the chief trains the "
        "large model on the same 2 cores), then `ready_op` and the hooks' first fetches, "
        "which it had run while waiting. `local_init_op` may only run once the chief's "
        "variables are ready (TF's `ready_for_local_init_op` rule), so that partition is the "
        "floor; runs where a worker began creating its session after the chief's init "
        "also count that worker's whole session creation. Launch → stepping: the tasks' "
        "`import tensorflow` (2.5-3.5 s alone, 5-7 s for four at once on 2 cores) is most "
        "of it in every variant (the phase table above); under Ray, the actors' start "
        "(a Ray worker process per actor) and the task process the actor starts add to it "
        "before any import can begin, which bare TF, started from one launcher, does not pay."
    ),
    "teardown": (
        "**Teardown.** TensorFlow's session close in a trainer sometimes hangs for seconds "
        "after every hook's `end()` has run (`py-spy dump --native`: `MonitoredSession.__exit__` "
        "→ `BaseSession.close` → `GrpcSession::Close`, waiting for the master session's "
        "`Close`); the bare-TF baseline stalls the same way and also spends 1-10 s in Python's "
        "interpreter shutdown. The harness's trainers put a marker hook last and give the "
        "close 0.25 s once it has run (`harness/runtime/closing.py`: the final checkpoint and "
        "summaries are written by then), then report `done` and exit with `os._exit`; the ps "
        "is stopped once every trainer is gone. What is left is the supervisor's reaction to "
        "`done` and the processes' exits, which take longer when other work loads the "
        "machine."
    ),
    "memory": (
        "**Memory.** A harness task process imports the harness, pydantic, PyYAML and rich "
        "on top of TensorFlow; TensorFlow itself (with the pandas and pyarrow it pulls in) "
        "is the same in both variants."
    ),
    "hooks": (
        "**Hook cost.** The figure is a difference of two medians of about 150-300 µs per "
        "step on a shared 2-core machine; a miss inside the spread of repeated runs is noise."
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
        "cannot grow past what 2 cores compute. A single trainer already uses most of them: "
        "TensorFlow runs each matmul on its intra-op thread pool (one thread per core), so "
        "one trainer's step spreads over both cores and leaves them idle only while it waits "
        "for its round trips to the ps. More trainers fill those gaps, which is all the "
        "speed-up there is; with 4 trainers the 2 cores are split four ways (with more "
        "gradient traffic through the one ps) and each trainer's own rate drops about in "
        "proportion. On this machine the figure measures core contention, not the harness: "
        "between-graph training scales with cores or GPUs per trainer (`--gpu` runs the same "
        "figure where a GPU is visible)."
    )
