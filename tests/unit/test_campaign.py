"""The fault campaign's pure parts: several faults in HARNESS_FAULT_INJECT (harness.faults),
the plan (bench.campaign_plan), the measures (bench.campaign_measure), the CSV and the
summary (bench.campaign_report), and the command's arguments (bench.campaign)."""

from __future__ import annotations

import csv
import itertools
import json
import subprocess
import sys

import pytest

from bench.campaign import parse_args
from bench.campaign_measure import (
    KillRow,
    Steps,
    match_decisions,
    measure_kill,
    overlaps,
    rows_for_run,
)
from bench.campaign_plan import Counts, PlannedKill, RunPlan, plan_runs
from bench.campaign_report import CSV_FIELDS, markdown, passed, percentile, summarize, write_csv
from harness.faults import KillFault, KillRecord, parse_fault, parse_faults
from harness.testing import kill_tasks_at_steps

# ---- several faults -------------------------------------------------------------------------


def test_several_kill_faults_parse_in_order_each_with_its_marker():
    value = "kill:worker:0:step=50:/m/a; kill:ps:0:step=90:/m/b;kill:chief:0:step=120:/m/c"
    assert parse_faults(value) == [
        KillFault("worker:0", 50, "/m/a"),
        KillFault("ps:0", 90, "/m/b"),
        KillFault("chief:0", 120, "/m/c"),
    ]
    fault = parse_fault(value)
    assert isinstance(fault, KillFault)  # what harness.task arms
    assert fault.all() == tuple(parse_faults(value))


def test_one_fault_parses_as_before():
    assert parse_fault("kill:ps:0:step=30:/tmp/m") == KillFault("ps:0", 30, "/tmp/m")
    assert parse_faults("") == [] and parse_fault(";") is None


def test_a_bind_fault_does_not_combine_and_a_bad_kill_is_named():
    with pytest.raises(ValueError, match="a bind fault stands alone"):
        parse_fault("bind:worker:0:/m/a;kill:ps:0:step=9:/m/b")
    with pytest.raises(ValueError, match="kill:<role>:<index>:step=<N>:<marker>"):
        parse_fault("kill:ps:0:step=9:/m/b;kill:worker:0:9:/m/c")


def test_kill_tasks_at_steps_builds_the_variable_and_wants_distinct_markers(tmp_path):
    env = kill_tasks_at_steps([("worker", 1, 25, tmp_path / "a"), ("ps", 0, 60, tmp_path / "b")])
    assert parse_fault(env["HARNESS_FAULT_INJECT"]).all() == (
        KillFault("worker:1", 25, str(tmp_path / "a")),
        KillFault("ps:0", 60, str(tmp_path / "b")),
    )
    with pytest.raises(ValueError, match="its own marker"):
        kill_tasks_at_steps([("worker", 0, 5, "/m/a"), ("chief", 0, 9, "/m/a")])


def test_a_trainer_armed_with_two_faults_dies_at_the_first_then_its_replacement_at_the_second(
    tmp_path,
):
    """Two instances of one task (two processes): each dies by SIGKILL at the next fault's
    step and writes a kill record; a third runs through."""
    env = kill_tasks_at_steps(
        [("worker", 0, 10, tmp_path / "a"), ("worker", 0, 20, tmp_path / "b")]
    )
    code = (
        "import sys; from harness.faults import parse_fault\n"
        f"fault = parse_fault({env['HARNESS_FAULT_INJECT']!r})\n"
        "report = fault.arm('worker:0', 'worker', '.', lambda e, **f: print(f['global_step']))\n"
        "for step in range(int(sys.argv[1]), 40, 3): report('progress', global_step=step)\n"
    )
    run = [sys.executable, "-c", code]
    first = subprocess.run([*run, "0"], capture_output=True, text=True)
    assert first.returncode == -9, first.stderr
    record = KillRecord.read(tmp_path / "a")
    assert (record.target, record.planned_step, record.step) == ("worker:0", 10, 12)
    assert not (tmp_path / "b").exists()
    second = subprocess.run([*run, "13"], capture_output=True, text=True)
    assert second.returncode == -9 and KillRecord.read(tmp_path / "b").step == 22
    third = subprocess.run([*run, "23"], capture_output=True, text=True)
    assert third.returncode == 0, third.stderr


def test_a_marker_that_is_not_a_kill_record_is_named(tmp_path):
    assert KillRecord.read(tmp_path / "none") is None
    (tmp_path / "m").write_text("worker:0 killed itself\n")
    with pytest.raises(ValueError, match="not a kill record"):
        KillRecord.read(tmp_path / "m")


# ---- the plan -------------------------------------------------------------------------------


def test_the_plan_has_every_kill_in_runs_spaced_and_is_seeded():
    runs = plan_runs("local", Counts(20, 10, 10), 10, seed=3, gap_steps=200, first_step=60)
    kills = [k for r in runs for k in r.kills]
    assert [len(r.kills) for r in runs] == [10, 10, 10, 10]
    assert sorted(k.kind for k in kills).count("worker") == 20
    assert {k.target for k in kills if k.kind == "worker"} <= {"worker:0", "worker:1"}
    assert {k.target for k in kills if k.kind != "worker"} == {"chief:0", "ps:0"}
    for run in runs:
        steps = [k.step for k in run.kills]
        assert steps[0] >= 60 and all(b - a >= 150 for a, b in itertools.pairwise(steps))
        assert run.max_steps >= steps[-1] + 200
    assert runs == plan_runs("local", Counts(20, 10, 10), 10, 3, 200, 60)
    assert runs != plan_runs("local", Counts(20, 10, 10), 10, 4, 200, 60)
    assert [r.run_id for r in runs] == ["local-01", "local-02", "local-03", "local-04"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--kills-per-run", "0"], "--kills-per-run must be 1 or more"),
        (["--worker-kills", "-1"], "--worker-kills must be 0 or more"),
        (["--worker-kills", "0", "--chief-kills", "0", "--ps-kills", "0"], "no kills"),
        (["--gap-steps", "3"], "--gap-steps must be 4 or more"),
    ],
)
def test_bad_arguments_are_named(capsys, args, message):
    with pytest.raises(SystemExit) as exit_:
        parse_args(args)
    assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_quick_is_a_small_check_on_one_backend():
    args = parse_args(["--quick"])
    assert (args.worker_kills, args.chief_kills, args.ps_kills, args.backend) == (
        2,
        1,
        1,
        "local",
    )
    assert parse_args([]).backend == "both" and parse_args([]).counts == Counts(20, 10, 10)


# ---- measures -------------------------------------------------------------------------------


def steps(task, pid, *records):
    return Steps(task, pid, tuple(records))


def test_a_worker_kill_recovers_at_its_replacements_first_step():
    record = KillRecord("worker:1", 100, 104, pid=11, t=50.0)
    found = [
        steps("worker:1", 11, (49.0, 100), (49.9, 104)),
        steps("chief:0", 10, (49.0, 101), (60.0, 180)),
        steps("worker:1", 21, (53.5, 150), (54.0, 152)),
    ]
    assert measure_kill(PlannedKill("worker", "worker:1", 100), record, found) == (3.5, 0)
    assert measure_kill(PlannedKill("worker", "worker:1", 100), None, found) == (None, None)
    assert measure_kill(PlannedKill("worker", "worker:1", 100), record, found[:2]) == (None, None)


def test_a_chief_that_restored_a_checkpoint_lost_steps():
    record = KillRecord("chief:0", 100, 104, pid=10, t=50.0)
    found = [steps("chief:0", 10, (49.9, 104)), steps("chief:0", 20, (58.0, 80))]
    assert measure_kill(PlannedKill("chief", "chief:0", 100), record, found) == (8.0, 24)


def test_a_ps_kill_recovers_at_the_restarted_clusters_first_step_and_rolls_back():
    record = KillRecord("ps:0", 100, 120, pid=12, t=50.0)
    found = [
        steps("chief:0", 10, (49.0, 124), (49.8, 126)),
        steps("worker:0", 11, (49.9, 127)),
        steps("worker:0", 31, (61.0, 121)),
        steps("chief:0", 30, (60.0, 120)),
    ]
    assert measure_kill(PlannedKill("ps", "ps:0", 100), record, found) == (10.0, 8)


def test_a_kill_overlaps_another_that_happened_while_it_recovered():
    windows = [(10.0, 15.0), (14.0, 16.0), (30.0, float("inf"))]
    assert overlaps(10.0, 5.0, windows) and overlaps(14.0, 2.0, windows)
    assert not overlaps(10.0, 3.0, windows[:1] + windows[2:])
    assert overlaps(30.0, None, windows + [(40.0, 41.0)])


def test_decisions_go_to_each_targets_kills_in_order():
    kills = (PlannedKill("worker", "worker:0", 5), PlannedKill("ps", "ps:0", 9))
    kills += (PlannedKill("worker", "worker:0", 20),)
    failures = [{"task": "worker:0", "decision": "RESTART_TASK"}]
    failures += [{"task": "ps:0", "decision": "RESTART_CLUSTER"}]
    assert match_decisions(kills, failures) == ["RESTART_TASK", "RESTART_CLUSTER", ""]


def test_rows_for_run_read_the_markers_and_step_files(tmp_path):
    (tmp_path / "steps").mkdir()
    (tmp_path / "steps" / "worker-0-11.jsonl").write_text('{"t": 49.0, "g": 40}\n{"t": 4')
    (tmp_path / "steps" / "worker-0-21.jsonl").write_text('{"t": 52.0, "g": 60}\n')
    (tmp_path / "k0").write_text(json.dumps(KillRecord("worker:0", 40, 42, 11, 50.0).__dict__))
    run = RunPlan(
        "local",
        "local-01",
        (PlannedKill("worker", "worker:0", 40), PlannedKill("ps", "ps:0", 90)),
        200,
    )
    summary = {
        "status": "succeeded",
        "failures": [{"task": "worker:0", "decision": "RESTART_TASK"}],
    }
    rows = rows_for_run(
        run, [tmp_path / "k0", tmp_path / "k1"], tmp_path / "steps", summary, True, 0
    )
    assert (rows[0].recovered, rows[0].recovery_secs, rows[0].death_step) == (True, 2.0, 42)
    assert (rows[1].recovered, rows[1].death_step, rows[1].recovery_secs) == (False, None, None)


# ---- percentiles, summary, CSV --------------------------------------------------------------


def test_percentiles_interpolate_between_ranks():
    assert percentile([], 50) is None
    assert percentile([3.0], 95) == 3.0
    assert percentile([4.0, 1.0, 3.0, 2.0], 50) == 2.5
    assert percentile(range(1, 21), 95) == pytest.approx(19.05)
    with pytest.raises(ValueError, match="within 0..100"):
        percentile([1.0], 101)


def row(kind="worker", recovered=True, secs=3.0, lost=0, backend="local", run_id="r1", left=0):
    return KillRow(
        backend, run_id, kind, f"{kind}:0", 50, 52 if recovered else None, recovered,
        secs if recovered else None, lost, "RESTART_TASK", False, True, left, "succeeded",
    )  # fmt: skip


def test_the_summary_counts_passes_and_takes_percentiles_of_the_recovered():
    rows = [row(secs=s) for s in (2.0, 4.0, 3.0)] + [row(recovered=False)]
    rows += [row("ps", secs=9.0, lost=12), row("ps", secs=11.0, lost=4, run_id="r2", left=1)]
    rows += [row(backend="ray", run_id="r3", secs=5.0)]
    lines = summarize(rows)
    assert [(x.backend, x.kind, x.recovered, x.total) for x in lines] == [
        ("local", "worker", 3, 4),
        ("local", "ps", 2, 2),
        ("ray", "worker", 1, 1),
    ]
    assert (lines[0].p50, lines[0].max) == (3.0, 4.0)
    assert (lines[1].steps_lost_max, lines[1].steps_lost_mean, lines[1].leftovers) == (12, 8.0, 1)
    table = markdown(lines, runs=3)
    assert "| local | worker | 3/4 | 3.0 s |" in table and "| ray | worker | 1/1 |" in table
    assert not passed(rows) and passed([row(), row("ps")]) and not passed([])
    assert not passed([row(left=2)])


def test_the_csv_has_a_row_per_kill_with_yes_no_and_empty_unknowns(tmp_path):
    write_csv(tmp_path / "k.csv", [row(), row(recovered=False)])
    with open(tmp_path / "k.csv") as f:
        lines = list(csv.DictReader(f))
    assert tuple(lines[0]) == CSV_FIELDS
    assert (lines[0]["recovered"], lines[0]["recovery_secs"]) == ("yes", "3.0")
    assert (lines[1]["recovered"], lines[1]["recovery_secs"], lines[1]["death_step"]) == (
        "no",
        "",
        "",
    )
