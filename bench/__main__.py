"""``python -m bench``: run the benchmarks and write BENCHMARKS.md (see ``bench/__init__.py``)."""

from __future__ import annotations

import argparse
import os
import pickle
import signal
import sys
import tempfile

from bench.suite import FIGURES, Settings, Suite, log


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description="Benchmark tf-harness against plain baselines."
    )
    parser.add_argument(
        "--runs", type=int, default=None, help="repetitions (default 5; 1 with --quick)"
    )
    parser.add_argument("--quick", action="store_true", help="fewer repetitions, shorter windows")
    parser.add_argument("--gpu", action="store_true", help="add the GPU variant (needs a GPU)")
    parser.add_argument("--output", default="BENCHMARKS.md", help="where to write the report")
    parser.add_argument(
        "--only",
        default=",".join(FIGURES),
        help=f"comma-separated figures among {', '.join(FIGURES)} (default: all)",
    )
    parser.add_argument("--work-dir", default=None, help="scratch directory (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep every run's logs and records")
    parser.add_argument(
        "--render",
        metavar="RESULTS",
        default=None,
        help="only write the report from a results.pickle that an earlier run saved",
    )
    return parser.parse_args(argv)


def settings_from(args: argparse.Namespace) -> Settings:
    figures = tuple(f.strip() for f in args.only.split(",") if f.strip())
    unknown = sorted(set(figures) - set(FIGURES))
    if unknown:
        raise SystemExit(f"--only: unknown figure(s) {unknown}; choose among {list(FIGURES)}")
    work_dir = args.work_dir or tempfile.mkdtemp(prefix="tf-harness-bench-")
    common = {"figures": figures, "gpu": args.gpu, "work_dir": work_dir, "keep": args.keep}
    common["report_path"] = args.output
    if args.runs is not None:
        if args.runs < 1:
            raise SystemExit("--runs must be at least 1")
        common["runs"] = args.runs
    return Settings.quick(**common) if args.quick else Settings(**common)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def render_saved(saved: str, output: str) -> int:
    """``--render``: write the report from the results an earlier run saved."""
    from bench.report import render

    with open(saved, "rb") as f:
        results = pickle.load(f)
    results.settings.report_path = output
    with open(output, "w") as f:
        f.write(render(results))
    log(f"wrote {output} from {saved}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.render:
        return render_saved(args.render, args.output)
    settings = settings_from(args)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # every Ray address on 127.0.0.1
    from bench.report import render

    log(f"figures {', '.join(settings.figures)}; {settings.runs} runs; scratch {settings.work_dir}")
    signal.signal(signal.SIGTERM, _interrupt)  # clean up (Ray, task processes) as on Ctrl-C
    try:
        results = Suite(settings).run()
    except KeyboardInterrupt:
        log("interrupted; everything the benchmark started has been stopped")
        return 130
    os.makedirs(settings.work_dir, exist_ok=True)  # the scratch runs may have been removed
    saved = os.path.join(settings.work_dir, "results.pickle")
    with open(saved, "wb") as f:
        pickle.dump(results, f)
    log(f"results saved in {saved} (--render {saved} writes the report again)")
    with open(args.output, "w") as f:
        f.write(render(results))
    elapsed = (results.finished - results.started) / 60
    log(
        f"wrote {args.output} after {elapsed:.1f} min"
        + (f"; {len(results.failures)} failed run(s)" if results.failures else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
