"""Turn the suite's results into BENCHMARKS.md: machine, versions, tables, explanations.

Every table row shows the baseline and the candidate as ``median [min–max] (n)`` over the
repetitions, and the candidate against the baseline as the median [min–max] of the ratios
(or differences) of runs from the same repetition, with the target and whether it is met.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

from bench import explain, recovery, scale_report
from bench.records import ClusterRun
from bench.stats import Comparison, Summary, Target
from bench.suite import PEER_SIZE, SCALING_TRAINERS, Results, batch_size
from bench.throughput import (
    NAMES,
    cpu_table,
    field,
    fmt,
    overhead_rows,
    peer_table,
    throughput_rows,
)

COMMAND = ".venv/bin/python -m bench"


# ---- machine and versions --------------------------------------------------------------------


def machine_section(results: Results) -> list[str]:
    s = results.settings
    load = ", ".join(f"{x:.2f}" for x in results.load_before)
    load_after = ", ".join(f"{x:.2f}" for x in results.load_after)
    elapsed = (results.finished - results.started) / 60
    env = results.environment
    return [
        "## Machine and versions",
        "",
        f"- Date: {time.strftime('%Y-%m-%d %H:%M %Z', time.localtime(results.started))}; "
        f"the run took {elapsed:.1f} min",
        f"- CPU: {env.cpu}, {env.cores} logical cores; memory {env.memory_gib:.1f} GiB; "
        f"{env.system}",
        f"- Load average (1, 5, 15 min) before: {load}; after: {load_after}",
        f"- Python {env.python}, TensorFlow {env.tensorflow}, Ray {env.ray}, "
        f"tf-harness {env.harness} (git {env.git})",
        f"- Settings: {s.runs} repetitions; throughput window {s.window_secs:g} s after a "
        f"warm-up of at least {s.warmup_secs:g} s and {s.warmup_steps} steps once every "
        f"trainer had joined; scaling window {s.scaling_window_secs:g} s; "
        f"hook cost {s.hook_steps} steps each way per repetition; {s.pause_secs:g} s pause "
        "between runs",
        "",
    ]


# ---- formatting ------------------------------------------------------------------------------


def target_text(target: Target | None, unit: str, scale: float) -> str:
    if target is None:
        return "—"
    if target.on == "ratio":
        return f"ratio {target.op} {target.bound:g}"
    what = "Δ" if target.on == "delta" else "value"
    return f"{what} {target.op} {target.bound * scale:g} {unit}"


def met_text(met: bool | None) -> str:
    return {True: "yes", False: "**no**", None: "—"}[met]


def table(rows: Sequence[Comparison], vs: str = "ratio") -> list[str]:
    """A markdown table of comparisons; ``vs`` shows the paired ratio or difference."""
    head = "ratio (paired)" if vs == "ratio" else "Δ (paired)"
    lines = [
        f"| figure | baseline | baseline value | candidate | candidate value | {head} | target | met |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        paired = (
            fmt(row.ratio_summary, digits=3)
            if vs == "ratio"
            else fmt(row.delta_summary, row.scale, 1)
        )
        lines.append(
            f"| {row.label} ({row.unit}) | {row.baseline_name} | "
            f"{fmt(row.baseline_summary, row.scale)} | {row.candidate_name} | "
            f"{fmt(row.candidate_summary, row.scale)} | {paired} | "
            f"{target_text(row.target, row.unit, row.scale)} | {met_text(row.met)} |"
        )
    return lines + [""]


def rss(
    runs: Sequence[ClusterRun | None] | None, role: str, actor: bool = False
) -> list[float | None]:
    """Peak RSS (MiB) of a role's task processes (the largest of that role) per run."""
    values: list[float | None] = []
    for run in runs or []:
        table_ = None if run is None else (run.actor_rss_mb if actor else run.peak_rss_mb)
        mine = [v for k, v in (table_ or {}).items() if k.startswith(f"{role}:")]
        values.append(max(mine) if mine else None)
    return values


# ---- figures ---------------------------------------------------------------------------------


#: The performance targets of bring-up: harness ÷ bare TF per backend (the first step is held
#: to the same bound as every trainer stepping, which bare TF's 30 s re-check can inflate),
#: the join delay, and harness on Ray ÷ Ray Train.
BRING_UP_TARGETS = {"local": Target("ratio", "<=", 1.1), "ray": Target("ratio", "<=", 1.2)}
JOIN_TARGET = Target("value", "<=", 0.1)
RAY_TRAIN_TARGET = Target("ratio", "<=", 0.5)


def bringup_rows(r: Results) -> list[Comparison]:
    rows = []
    for name, label, size in (
        ("first_step_secs", "launch → first global step", "small"),
        ("all_stepping_secs", "launch → all trainers stepping", "small"),
        ("join_delay_secs", "worker join delay after the chief's init", "large"),
    ):
        base = field(r.clusters.get(f"bare-{size}"), name)
        base_name = NAMES["bare"] if size == "small" else "bare TF, workers up first"
        for variant in ("local", "ray"):
            cand = field(r.clusters.get(f"{variant}-{size}"), name)
            target = BRING_UP_TARGETS[variant] if size == "small" else JOIN_TARGET
            rows.append(Comparison(label, "s", base_name, base, NAMES[variant], cand, target))
    ray_train = list(r.ray_train)
    for name, label, target in (
        ("first_step_secs", "launch → first step", RAY_TRAIN_TARGET),
        ("all_stepping_secs", "launch → all trainers stepping", RAY_TRAIN_TARGET),
    ):
        rows.append(
            Comparison(
                label,
                "s",
                "Ray Train (3 workers)",
                field(ray_train, name),
                NAMES["ray"],
                field(r.clusters.get(f"ray-{PEER_SIZE}"), name),
                target,
            )
        )
    return rows


def bring_up_table(r: Results) -> list[str]:
    """Median [min–max] seconds per phase of run.json's ``timings.bring_up`` (small-model
    harness runs; the phases of ``cluster.bringup.PHASES``), and the relay's join delay."""
    from cluster.bringup import PHASES

    runs = {v: [x for x in r.clusters.get(f"{v}-small") or [] if x is not None] for v in NAMES}
    variants = [v for v in ("local", "ray") if any(x.bring_up for x in runs[v])]
    if not variants:
        return []
    lines = ["| phase | " + " | ".join(NAMES[v] for v in variants) + " |"]
    lines.append("|---" * (len(variants) + 1) + "|")
    phases = [p for p, _, _ in PHASES if p != "driver_imports"] + ["launch_to_all_stepping"]
    for phase in phases:
        cells = [
            fmt(Summary.of([(x.bring_up or {}).get(phase) for x in runs[v]])) for v in variants
        ]
        if any(c != "—" for c in cells):
            lines.append(f"| {phase.replace('_', ' ')} | " + " | ".join(cells) + " |")
    joins = [fmt(Summary.of([x.relay_join_secs for x in runs[v]])) for v in variants]
    lines.append("| join delay, run.json (longest worker) | " + " | ".join(joins) + " |")
    return lines + [""]


def teardown_rows(r: Results) -> list[Comparison]:
    base = field(r.clusters.get("bare-small"), "teardown_secs")
    return [
        Comparison(
            "chief's last step → last process/actor gone",
            "s",
            NAMES["bare"],
            base,
            NAMES[variant],
            field(r.clusters.get(f"{variant}-small"), "teardown_secs"),
            Target("value", "<=", 1.0),
        )
        for variant in ("local", "ray")
    ]


def memory_rows(r: Results) -> list[Comparison]:
    rows = []
    bare = r.clusters.get("bare-small")
    for role in ("chief", "worker", "ps"):
        for variant in ("local", "ray"):
            rows.append(
                Comparison(
                    f"peak RSS, {role} task process",
                    "MiB",
                    NAMES["bare"],
                    rss(bare, role),
                    NAMES[variant],
                    rss(r.clusters.get(f"{variant}-small"), role),
                    Target("delta", "<=", 100.0),
                )
            )
    return rows


def actor_rows(r: Results) -> list[str]:
    runs = r.clusters.get("ray-small")
    lines = [
        "| role | Ray actor process peak RSS (MiB) | task process peak RSS (MiB) |",
        "|---|---|---|",
    ]
    for role in ("chief", "worker", "ps"):
        lines.append(
            f"| {role} | {fmt(Summary.of(rss(runs, role, actor=True)), digits=1)} | "
            f"{fmt(Summary.of(rss(runs, role)), digits=1)} |"
        )
    return lines + [""]


def hook_rows(r: Results) -> list[Comparison]:
    return [
        Comparison(
            "seconds per trivial step",
            "µs",
            "no hooks",
            [h.without_secs for h in r.hooks],
            "ProgressHook + StopSignalHook",
            [h.with_secs for h in r.hooks],
            Target("delta", "<=", 50e-6),
            scale=1e6,
            paired_deltas=[h.cost_secs for h in r.hooks],
        )
    ]


def hook_cost_line(r: Results) -> list[str]:
    del r
    return [
        "Δ is each repetition's median difference between neighbouring blocks of 250 steps "
        "(both sessions open at once, the order flipping every block), so that both sides "
        "see the same background load; the values are the per-repetition medians of the "
        "blocks.",
        "",
    ]


def scaling_table(scaling: dict[int, list[ClusterRun | None]]) -> list[str]:
    batch = batch_size("large")
    base = field(scaling.get(1), "steps_per_sec")
    lines = [
        "| trainers | aggregate global steps/s | examples/s | speedup over 1 trainer (paired) "
        "| steps/s per trainer |",
        "|---|---|---|---|---|",
    ]
    for n in SCALING_TRAINERS:
        rates = field(scaling.get(n), "steps_per_sec")
        speedup = Comparison("", "", "", base, "", rates).ratio_summary
        examples = [None if x is None else x * batch for x in rates]
        per = [None if x is None else x / n for x in rates]
        lines.append(
            f"| {n} | {fmt(Summary.of(rates), digits=1)} | {fmt(Summary.of(examples), digits=0)} "
            f"| {fmt(speedup, digits=2)} | {fmt(Summary.of(per), digits=1)} |"
        )
    return lines + [""]


# ---- the document ----------------------------------------------------------------------------


def render(results: Results) -> str:
    r = results
    figures = r.settings.figures
    out = [
        "# Benchmarks",
        "",
        f"Regenerate with `{COMMAND}` (about 50 minutes on an otherwise idle "
        "2-core machine, the time of this run is below; `--quick`, one repetition of each "
        "figure without the large-model bare-TF and local runs, meant for under 5 minutes "
        "there, for a short check; `--gpu` adds the GPU variant where a GPU is visible). Each figure compares "
        "tf-harness with a baseline measured in the same run, interleaved run by run; "
        "values are `median [min–max] (number of runs)`. The baselines are written plainly "
        "in `bench/` without any tf-harness code: `bench/bare_tf.py` (the same model_fn "
        "logic as separate TF processes with `TF_CONFIG` and stock "
        "`MonitoredTrainingSession`, ps shutdown through a shared queue) and "
        "`bench/ray_train_baseline.py` (Ray Train's `TensorflowTrainer`, 3 workers, on the "
        "same Ray instance as the harness's Ray runs).",
        "",
        *machine_section(r),
    ]
    all_rows: dict[str, list[Comparison]] = {}
    if "throughput" in figures:
        all_rows["throughput"] = throughput_rows(r)
        all_rows["overhead"] = overhead_rows(r)
        out += ["## 1. Step throughput", "", explain.THROUGHPUT_SETUP, ""]
        out += table(all_rows["throughput"])
        out += [explain.OVERHEAD_SETUP, ""]
        out += table(all_rows["overhead"], vs="delta")
        out += cpu_table(r)
        out += ["### Against Ray Train", "", explain.peer_setup(r.settings), ""]
        out += peer_table(r)
    if "bringup" in figures:
        all_rows["bringup"] = bringup_rows(r)
        out += ["## 2. Bring-up", "", explain.bringup_setup(r.driver_tf_import_secs), ""]
        out += table(all_rows["bringup"])
        out += explain.stock_waits(r.clusters)
        breakdown = bring_up_table(r)
        if breakdown:
            out += [explain.BRING_UP_BREAKDOWN, "", *breakdown]
    if "teardown" in figures:
        all_rows["teardown"] = teardown_rows(r)
        out += ["## 3. Teardown", "", explain.TEARDOWN_SETUP, ""]
        out += table(all_rows["teardown"])
        out += explain.gone_breakdown(r.clusters)
    if "memory" in figures:
        all_rows["memory"] = memory_rows(r)
        out += ["## 4. Memory", "", explain.MEMORY_SETUP, ""]
        out += table(all_rows["memory"], vs="delta")
        out += ["Under Ray, the actor process that owns each task process:", ""]
        out += actor_rows(r)
    if "hooks" in figures:
        all_rows["hooks"] = hook_rows(r)
        out += ["## 5. Hook cost", "", explain.HOOKS_SETUP, ""]
        out += table(all_rows["hooks"], vs="delta")
        out += hook_cost_line(r)
    if "scaling" in figures:
        out += ["## 6. Scaling", "", explain.SCALING_SETUP, ""]
        out += scaling_table(r.scaling)
    if r.settings.gpu:
        out += ["## 6b. Scaling on GPU (`--gpu`)", ""]
        if r.gpu_scaling:
            out += [explain.GPU_SETUP, "", r.gpu_note or "", ""]
            out += scaling_table(r.gpu_scaling)
        else:
            out += [f"Skipped: {r.gpu_note}.", ""]
    if "recovery" in figures:
        out += ["## 7. Recovery", "", recovery.SETUP, "", *table(recovery.rows(r.recovery))]
    if "scale" in figures:
        out += scale_report.section(r.scale, *plot_and_report_dirs(r.settings.report_path))
    out += explain.explanations(r, all_rows)
    if r.failures:
        out += ["## Failed runs", "", *[f"- {f}" for f in r.failures], ""]
    return "\n".join(out).rstrip() + "\n"


def plot_and_report_dirs(report_path: str) -> tuple[str, str]:
    """Where the scale plots go, and the report's directory they are linked from: bench/ for
    the repository's BENCHMARKS.md, else beside the report (``--output``), so that a check
    run elsewhere never overwrites the committed plots."""
    report_dir = os.path.dirname(os.path.abspath(report_path))
    bench_dir = os.path.dirname(os.path.abspath(__file__))
    in_repo = report_dir == os.path.dirname(bench_dir)
    return (bench_dir if in_repo else report_dir), report_dir
