"""The ``harness`` command line: validate, run, render, evaluate, export, status, logs.

Exit status: 0 when the command (the job, for ``run``) succeeded; 1 when the job failed
(infrastructure, failure.max_failures used up, a stall); 2 for invalid input (job file,
model_fn, flags, model_dir) and for a job that failed because of the user's code or data
(model_fn/input_fn/hooks raising, an op of the user's failing at the first step, a
checkpoint that does not fit the graph, NaN loss); 130 when interrupted (SIGINT, SIGTERM or
SIGHUP to ``harness run``). ``status`` and ``logs`` exit 2 for a job or task that is not
running (``harness.commands.status``).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from typing import Any

from harness.commands import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_INVALID, EXIT_OK

# The signals that stop a running job (every task is stopped, then exit 130).
INTERRUPT_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")


class Interrupted(KeyboardInterrupt):
    """``harness run`` received one of ``INTERRUPT_SIGNALS``; the text is the signal's name."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="harness",
        description="Train TF1-style model_fn code on a chief/worker/ps cluster "
        "(Ray, Kubernetes or local processes).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    validate = commands.add_parser(
        "validate",
        help="check a job file and its model_fn; show which hooks each role runs",
        description="Validate JOB.yaml, build the TRAIN graph of the chief and of a worker "
        "(no servers are started) and print which hooks each role will run.",
    )
    validate.add_argument("job", metavar="JOB.yaml")

    run = commands.add_parser(
        "run",
        help="run a job",
        description="Run JOB.yaml to max_steps. Exit status 0 iff the chief finished training.",
    )
    run.add_argument("job", metavar="JOB.yaml")
    run.add_argument(
        "--backend",
        choices=["ray", "local", "k8s"],
        default="ray",
        help="ray (default): Ray actors, on RAY_ADDRESS/--address or an embedded local Ray; "
        "local: one OS process per task on this machine; k8s: only with --dry-run",
    )
    run.add_argument(
        "--address", help="Ray cluster address (default: RAY_ADDRESS, else embedded Ray)"
    )
    run.add_argument("--dry-run", action="store_true", help="print the plan, start nothing")
    run.add_argument("--image", help="container image (k8s dry-run)")
    run.add_argument("--quiet", action="store_true", help="do not echo task output (still logged)")
    run.add_argument(
        "--metrics-port",
        type=int,
        metavar="PORT",
        help="serve Prometheus metrics on http://127.0.0.1:PORT/metrics while the job runs "
        "(any backend; with Ray they are also Ray metrics). See docs/metrics.md",
    )
    run.add_argument(
        "--timings",
        action="store_true",
        help="after the run, print where the bring-up time went (run.json's timings.bring_up)",
    )
    run.add_argument(
        "--tensorboard",
        nargs="?",
        const=True,
        type=_tensorboard_port,
        metavar="PORT",
        help="serve TensorBoard on model_dir while the job runs, on PORT (default 6006; 0: a "
        "free port); overrides the job's tensorboard field",
    )
    _add_render_parser(commands)
    _add_evaluate_parser(commands)
    _add_export_parser(commands)
    from harness.commands.status import add_status_parsers

    add_status_parsers(commands)  # status, logs: each parser's run_command runs it
    return parser


def _tensorboard_port(text: str) -> int:
    """``--tensorboard PORT``: a port number (0: a free one)."""
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a port: give a number from 0 to 65535 (0: a free port), or none "
            "for 6006; put --tensorboard after JOB.yaml"
        )
    return int(text)


def _add_render_parser(commands: Any) -> None:
    render = commands.add_parser(
        "render",
        help="print the Kubernetes manifests of a job",
        description="Render a KubeRay RayJob (or RayCluster, or the job's NetworkPolicy) for "
        "JOB.yaml, with the shared volume for model_dir. See docs/kubernetes.md.",
    )
    render.add_argument("target", choices=["k8s"])
    render.add_argument("job", metavar="JOB.yaml")
    render.add_argument("--image", help="container image built from k8s/Dockerfile")
    render.add_argument("--namespace", default="default")
    render.add_argument("--name", help="name of the RayJob/RayCluster (default: the job name)")
    render.add_argument(
        "--kind", choices=["rayjob", "raycluster", "networkpolicy"], default="rayjob"
    )
    render.add_argument("--output", metavar="FILE", help="write to FILE instead of stdout")
    render.add_argument("--storage-size", default="10Gi", help="size of the model_dir volume")
    render.add_argument("--storage-class", help="a storage class offering ReadWriteMany")
    render.add_argument("--existing-claim", help="mount this PVC at model_dir; create none")
    render.add_argument(
        "--active-deadline", type=int, default=86400, help="seconds before the RayJob fails"
    )
    render.add_argument(
        "--pre-running-deadline",
        type=int,
        default=1800,
        help="seconds the RayJob may take to start running (0: leave the field out)",
    )


def _add_evaluate_parser(commands: Any) -> None:
    evaluate = commands.add_parser(
        "evaluate",
        help="evaluate a checkpoint and print its metrics",
        description="Build the EVAL graph of JOB.yaml, restore the latest checkpoint in "
        "model_dir (or --checkpoint), run eval_metric_ops for eval.steps batches (or to the end "
        "of the data) and print the metrics. Summaries go to <model_dir>/eval.",
    )
    evaluate.add_argument("job", metavar="JOB.yaml")
    evaluate.add_argument("--checkpoint", metavar="PATH", help="checkpoint prefix to evaluate")


def _add_export_parser(commands: Any) -> None:
    export = commands.add_parser(
        "export",
        help="export a checkpoint as a SavedModel for TF Serving",
        description="Build the INFER graph of JOB.yaml, turn its output_alternatives into "
        "serving signatures, restore the latest checkpoint (or --checkpoint) and write a "
        "SavedModel to DIR/<timestamp>. See docs/evaluation-and-export.md.",
    )
    export.add_argument("job", metavar="JOB.yaml")
    export.add_argument("--export-dir", metavar="DIR", required=True, help="export base folder")
    export.add_argument("--checkpoint", metavar="PATH", help="checkpoint prefix to export")
    export.add_argument(
        "--default-output",
        metavar="KEY",
        help="the output alternative served as serving_default (needed when model_fn returns "
        "several and none is named serving_default)",
    )


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep C++ INFO lines off the console
    from harness.job import JobSpecError

    try:
        if args.command == "validate":
            code = _validate(args)
        elif args.command == "run":
            code = _run(args)
        elif args.command == "render":
            code = _render(args)
        elif args.command == "evaluate":
            code = _evaluate(args)
        elif args.command == "export":
            code = _export(args)
        elif args.command in ("status", "logs"):
            code = args.run_command(args)
        else:  # pragma: no cover - argparse rejects unknown commands
            code = EXIT_INVALID
    except JobSpecError as exc:
        print(f"harness: error: {exc}", file=sys.stderr)
        code = EXIT_INVALID
    except KeyboardInterrupt as exc:  # before the job started, or after it ended
        print(f"harness: interrupted ({exc or 'SIGINT'})", file=sys.stderr)
        code = EXIT_INTERRUPTED
    sys.exit(code)


def _load_job(path: str, import_tensorflow: bool = True) -> Any:
    """The job file, validated; its Keras choice applied before TensorFlow loads Keras."""
    from harness import legacy_keras
    from harness.job import JobSpec

    job = JobSpec.from_yaml(path)
    legacy_keras.apply(job.keras)
    if import_tensorflow:
        from harness.commands.quiet import drop_unused_object_reports, import_tensorflow_quietly

        import_tensorflow_quietly()
        drop_unused_object_reports()
    return job


def _validate(args: Any) -> int:
    job = _load_job(args.job)
    from harness.commands.validate import validate_job

    return validate_job(job, args.job)


def _evaluate(args: Any) -> int:
    job = _load_job(args.job)
    from harness.commands.evaluate import evaluate_command

    return evaluate_command(job, args.checkpoint)


def _export(args: Any) -> int:
    job = _load_job(args.job)
    from harness.commands.export import export_command

    return export_command(job, args.export_dir, args.checkpoint, args.default_output)


def _run(args: Any) -> int:
    from harness.job import JobSpecError

    if not args.dry_run:
        install_interrupt_handlers()
    job = _load_job(args.job, import_tensorflow=not args.dry_run)
    if args.tensorboard is not None:
        job = job.with_overrides(tensorboard=args.tensorboard)
    if args.dry_run:
        from harness.commands.run import dry_run

        print(dry_run(job, args))
        return EXIT_OK
    from harness.api import BACKENDS, fit

    if args.backend not in BACKENDS:
        raise JobSpecError(f"--backend {args.backend}: cannot run jobs; use it with --dry-run")
    from harness.task import process_start

    result = fit(
        job,
        backend=args.backend,
        address=args.address,
        progress=True,
        echo=not args.quiet,
        metrics_port=args.metrics_port,
        driver_start=process_start(),
    )
    if args.timings:
        from harness.commands.timings import print_timings

        print_timings(result.run)
    if result.succeeded:
        print(f"harness: job {job.name} succeeded at global step {result.metrics['global_step']}")
        return EXIT_OK
    print(f"harness: job {job.name} {result.status}: {result.error}", file=sys.stderr)
    if result.status == "interrupted":
        return EXIT_INTERRUPTED
    return EXIT_INVALID if result.error.user_error else EXIT_FAILED


def _render(args: Any) -> int:
    from cluster.k8s import K8sBackend, Lifecycle, PvcOptions
    from harness.job import JobSpec

    job = JobSpec.from_yaml(args.job)
    backend = K8sBackend(
        args.image,
        args.kind,
        namespace=args.namespace,
        name=args.name,
        pvc=PvcOptions(args.storage_size, args.storage_class, args.existing_claim),
        lifecycle=Lifecycle(
            active_deadline=args.active_deadline,
            pre_running_deadline=args.pre_running_deadline or None,
        ),
    )
    text = backend.render(backend.plan(job)).describe()
    if args.output:
        with open(args.output, "w") as out:
            out.write(text + "\n")
    else:
        print(text)
    return EXIT_OK


_interrupted = False


def install_interrupt_handlers() -> None:
    """Make SIGINT, SIGTERM and SIGHUP stop the job, whatever this process inherited.

    A script that starts ``harness run ... &`` hands it SIGINT ignored, and Python then
    installs no KeyboardInterrupt handler: a SIGINT was ignored and the job ran on. Each of
    these signals now raises ``Interrupted`` in the main thread; the supervisor stops every
    task and ``harness run`` exits 130. One exception: SIGHUP inherited as ignored stays
    ignored, because that is what ``nohup`` asks for (the job survives the end of the
    terminal session). Signals after the first are ignored, so that the teardown they
    started is not cut short (it is bounded by the launchers' kill timeouts).
    """
    for name in INTERRUPT_SIGNALS:
        signum = getattr(signal, name, None)
        if signum is None:  # SIGHUP does not exist everywhere
            continue
        if name == "SIGHUP" and signal.getsignal(signum) is signal.SIG_IGN:
            continue
        signal.signal(signum, _raise_interrupted)


def _raise_interrupted(signum: int, frame: Any) -> None:
    global _interrupted
    if _interrupted:
        return
    _interrupted = True
    raise Interrupted(signal.Signals(signum).name)
