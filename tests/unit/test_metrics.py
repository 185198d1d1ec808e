"""cluster.metrics: the metrics observer's values (with a fake sink), its two sinks, the CLI flag.

The observer is pure and tested with ``FakeSink``; it is also driven by the real supervisor
(``tests.unit.test_supervisor``'s fake tasks) to check the restart counter against run.json.
``PrometheusSink`` is served and scraped on loopback; no TensorFlow, no Ray cluster.
"""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from collections.abc import Mapping

import pytest
from prometheus_client.parser import text_string_to_metric_families

from cluster.metrics import (
    GLOBAL_STEP,
    LOSS,
    METRICS,
    STEPS_PER_SECOND,
    TASK_RESTARTS,
    TASKS_RUNNING,
    Metric,
    MetricsObserver,
    PrometheusSink,
    RaySink,
    metrics_observers,
)
from cluster.observe import Snapshot
from harness.cli import build_parser
from harness.job import JobSpecError
from tests.unit.test_supervisor import EXPECTED_DEATHS, TASKS, _death_scenario, supervise


class FakeSink:
    """Keeps each series' value, keyed by (metric name, sorted labels)."""

    def __init__(self) -> None:
        self.values: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        self.closed = 0

    def set(self, metric: Metric, value: float, labels: Mapping[str, str]) -> None:
        assert metric.kind == "gauge" and set(labels) == set(metric.label_names)
        self.values[(metric.name, tuple(sorted(labels.items())))] = value

    def inc(self, metric: Metric, amount: float, labels: Mapping[str, str]) -> None:
        assert metric.kind == "counter" and set(labels) == set(metric.label_names)
        assert amount >= 0
        key = (metric.name, tuple(sorted(labels.items())))
        self.values[key] = self.values.get(key, 0) + amount

    def close(self) -> None:
        self.closed += 1

    def get(self, metric: Metric, job: str = "j", **labels: str) -> float | None:
        return self.values.get((metric.name, tuple(sorted({"job_name": job, **labels}.items()))))


def snapshot(step: int, loss: float | None = 0.5, rate: float | None = 2.0) -> Snapshot:
    return Snapshot(step, 100, loss, rate, 1.0, "chief:0")


def observer() -> tuple[MetricsObserver, FakeSink]:
    sink = FakeSink()
    return MetricsObserver("j", sink), sink


# ---- the observer's values ------------------------------------------------------------------


def test_progress_sets_the_jobs_gauges_and_skips_unknown_values():
    obs, sink = observer()
    obs.progress(snapshot(10, loss=0.5, rate=4.0))
    assert (sink.get(GLOBAL_STEP), sink.get(LOSS), sink.get(STEPS_PER_SECOND)) == (10, 0.5, 4.0)
    obs.progress(snapshot(20, loss=None, rate=None))
    assert (sink.get(GLOBAL_STEP), sink.get(LOSS), sink.get(STEPS_PER_SECOND)) == (20, 0.5, 4.0)


def test_tasks_running_counts_started_instances_not_yet_exited_per_role():
    obs, sink = observer()
    for key in ("chief:0", "worker:0", "worker:1", "ps:0"):
        obs.task_started(key)
    assert sink.get(TASKS_RUNNING, role="worker") == 2
    obs.task_exited("worker:0", 1, "RESTART_TASK")
    assert sink.get(TASKS_RUNNING, role="worker") == 1
    obs.task_started("worker:0")
    assert sink.get(TASKS_RUNNING, role="worker") == 2
    # a cluster restart: the teardown's kills are not reported, every task starts again
    obs.task_exited("ps:0", -9, "RESTART_CLUSTER")
    for key in ("chief:0", "worker:0", "worker:1", "ps:0"):
        obs.task_started(key)
    running = [sink.get(TASKS_RUNNING, role=r) for r in ("chief", "worker", "ps")]
    assert running == [1, 2, 1]
    obs.finished({"final_global_step": 100})
    assert [sink.get(TASKS_RUNNING, role=r) for r in ("chief", "worker", "ps")] == [0, 0, 0]
    assert sink.get(GLOBAL_STEP) == 100


@pytest.mark.parametrize(
    ("decision", "counted"),
    [
        ("RESTART_TASK", 1),
        ("RESTART_CLUSTER", 1),
        ("RERUN_RENDEZVOUS", 0),
        ("NOTHING", 0),
        ("IGNORE", 0),
        ("FAIL", 0),
    ],
)
def test_restarts_count_the_restarts_a_tasks_exit_caused(decision, counted):
    obs, sink = observer()
    obs.task_started("worker:1")
    assert sink.get(TASK_RESTARTS, role="worker", index="1") == 0  # there from the start
    obs.task_exited("worker:1", 1, decision)
    assert sink.get(TASK_RESTARTS, role="worker", index="1") == counted
    assert obs.restarts == {"worker:1": counted}


def test_finished_closes_the_sink_once():
    obs, sink = observer()
    obs.finished({"final_global_step": 3})
    obs.close()
    assert sink.closed == 1


@pytest.mark.parametrize(("role", "state"), list(EXPECTED_DEATHS))
def test_restarts_match_run_json_when_the_supervisor_drives_the_observer(tmp_path, role, state):
    obs, sink = observer()
    script, setup = _death_scenario(role, state)
    cluster = {"workers": 1, "ps": 1, "evaluator": 1}
    result = supervise(tmp_path, script, setup=setup, observers=(obs,), cluster=cluster)
    assert result.summary["status"] == "succeeded", result.summary["error"]
    for key in TASKS:
        r, i = key.split(":")
        expected = result.summary["tasks"][key]["restarts"]
        assert sink.get(TASK_RESTARTS, role=r, index=i) == expected, key
    for r in ("chief", "worker", "ps", "evaluator"):
        assert sink.get(TASKS_RUNNING, role=r) == 0
    assert sink.get(GLOBAL_STEP) == result.summary["final_global_step"] == 100
    assert sink.closed == 1


# ---- the sinks ------------------------------------------------------------------------------


def scrape(url: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """Each sample's value by name and labels."""
    text = urllib.request.urlopen(url, timeout=10).read().decode()
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return samples


def test_the_prometheus_endpoint_serves_every_metric_and_frees_its_port_when_closed():
    sink = PrometheusSink(0)
    obs = MetricsObserver("demo", sink)
    assert sink.url == f"http://127.0.0.1:{sink.port}/metrics"
    obs.task_started("worker:0")
    obs.task_exited("worker:0", 1, "RESTART_TASK")
    obs.task_started("worker:0")
    obs.progress(snapshot(7, loss=0.25, rate=3.0))
    samples = scrape(sink.url)
    job = (("job_name", "demo"),)
    assert samples["harness_global_step"][job] == 7
    assert samples["harness_loss"][job] == 0.25
    assert samples["harness_steps_per_second"][job] == 3.0
    assert samples["harness_tasks_running"][(*job, ("role", "worker"))] == 1
    restarts = (("index", "0"), *job, ("role", "worker"))
    assert samples["harness_task_restarts_total"][restarts] == 1
    assert {m.name for m in METRICS} <= set(samples)
    obs.finished({"final_global_step": 7})
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(sink.url, timeout=5)
    PrometheusSink(sink.port).close()  # the port can be served again at once


def test_a_port_in_use_is_an_error_naming_it():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(JobSpecError, match=f"--metrics-port {port}: cannot serve metrics"):
            metrics_observers("j", "local", port)


def test_the_ray_sink_drops_values_while_ray_is_not_initialized():
    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        pytest.skip("this process is connected to Ray")
    obs = MetricsObserver("j", RaySink())
    obs.task_started("chief:0")
    obs.progress(snapshot(3))
    obs.finished({"final_global_step": 3})
    assert obs.sink._metrics is None


# ---- the factory and the flag ---------------------------------------------------------------


def test_which_observers_each_backend_gets():
    assert metrics_observers("j", "local") == []
    (ray_only,) = metrics_observers("j", "ray")
    assert isinstance(ray_only.sink, RaySink)
    both = metrics_observers("j", "ray", 0)
    try:
        assert [type(o.sink) for o in both] == [RaySink, PrometheusSink]
    finally:
        for o in both:
            o.close()


def test_harness_run_takes_a_metrics_port():
    assert build_parser().parse_args(["run", "job.yaml"]).metrics_port is None
    args = build_parser().parse_args(["run", "job.yaml", "--metrics-port", "9100"])
    assert args.metrics_port == 9100
