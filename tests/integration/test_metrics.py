"""Live metrics, scraped while a real job runs (loopback only).

- local backend: the Prometheus endpoint of ``metrics_observers(..., metrics_port=0)`` shows
  the job's global step, loss and running tasks during the run, and is closed after it;
- Ray backend: a Ray started here with a known metrics export port (and a 1 s report
  interval) shows ``ray_harness_*`` for the job during the run.

The job runs in a thread and its trainers sleep before each step, so training lasts many
seconds after its first step; the tests poll with generous deadlines and assert what was
seen, never when.
"""

from __future__ import annotations

import os

os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # every Ray address is 127.0.0.1

import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from cluster.metrics import PrometheusSink, metrics_observers
from harness.commands.run import run_job
from harness.job import JobSpec
from harness.testing import leftover_task_processes, make_job_dict

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

MODEL = "tests.integration.models:model_fn"
INPUT = "tests.integration.models:input_fn"
REPO = str(Path(__file__).resolve().parents[2])
DEADLINE_SECS = 240

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def slow_job(tmp_path: Path, name: str, max_steps: int = 80) -> JobSpec:
    """A chief and a worker, no ps; each sleeps 0.2 s before a step (>= 8 s of training)."""
    data = make_job_dict(
        MODEL,
        INPUT,
        tmp_path / "model",
        name=name,
        workers=1,
        ps=0,
        max_steps=max_steps,
        params={"slow_secs": 0.2},
        source_dirs=(REPO,),
    )
    return JobSpec.from_dict(data)


def start_job(
    job: JobSpec, backend: str, observers: Sequence[Any]
) -> tuple[threading.Thread, dict]:
    """Run the job in a thread; the returned dict gets ``summary`` or ``error``."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["summary"] = run_job(job, backend=backend, quiet=True, observers=observers)
        except BaseException as exc:  # reported by the test
            outcome["error"] = exc

    thread = threading.Thread(target=run, name=f"job-{job.name}", daemon=True)
    thread.start()
    return thread, outcome


def scrape(url: str, job_name: str) -> Samples | None:
    """The job's samples (by name and labels other than Ray's own), None when unreachable."""
    try:
        text = urllib.request.urlopen(url, timeout=10).read().decode()
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.labels.get("job_name") != job_name:
                continue
            labels = tuple(sorted((k, v) for k, v in s.labels.items() if k in ("role", "index")))
            samples[(s.name, labels)] = s.value
    return samples


def poll_until(
    url: str,
    job_name: str,
    wanted: dict[str, Callable[[Samples], bool]],
    thread: threading.Thread,
) -> set[str]:
    """Scrape until every condition in ``wanted`` held at some scrape; returns those seen."""
    seen: set[str] = set()
    deadline = time.monotonic() + DEADLINE_SECS
    while time.monotonic() < deadline and seen != set(wanted):
        samples = scrape(url, job_name)
        if samples:
            seen |= {name for name, holds in wanted.items() if holds(samples)}
        if not thread.is_alive():
            break
        time.sleep(0.2)
    return seen


def finish(thread: threading.Thread, outcome: dict) -> dict:
    thread.join(timeout=DEADLINE_SECS)
    assert not thread.is_alive(), "the job did not end"
    assert "error" not in outcome, outcome.get("error")
    summary = outcome["summary"]
    assert summary["status"] == "succeeded", summary["error"]
    return summary


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_local_prometheus_endpoint_shows_the_run_and_closes_with_it(tmp_path):
    job = slow_job(tmp_path, "metrics-local")
    (observer,) = metrics_observers(job.name, "local", metrics_port=0)
    sink = observer.sink
    assert isinstance(sink, PrometheusSink) and sink.host == "127.0.0.1"
    thread, outcome = start_job(job, "local", [observer])
    wanted = {
        "step": lambda s: s.get(("harness_global_step", ()), 0) > 0,
        "loss": lambda s: ("harness_loss", ()) in s,
        "chief running": lambda s: s.get(("harness_tasks_running", (("role", "chief"),))) == 1,
        "worker running": lambda s: s.get(("harness_tasks_running", (("role", "worker"),))) == 1,
        "restarts": lambda s: (
            s.get(("harness_task_restarts_total", (("index", "0"), ("role", "worker")))) == 0
        ),
    }
    seen = poll_until(sink.url, job.name, wanted, thread)
    summary = finish(thread, outcome)
    assert seen == set(wanted), f"never seen during the run: {set(wanted) - seen}"
    with pytest.raises(urllib.error.URLError):  # closed with the job
        urllib.request.urlopen(sink.url, timeout=5)
    PrometheusSink(sink.port).close()  # and the port can be served again
    assert summary["final_global_step"] >= 80
    assert not leftover_task_processes(job.model_dir)


@pytest.fixture
def ray_metrics_port():
    """A fresh local Ray whose metrics agent serves on a known port, reporting every 1 s."""
    import ray

    port = free_port()
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        logging_level="WARNING",
        _metrics_export_port=port,
        _system_config={"metrics_report_interval_ms": 1000},
    )
    try:
        yield port
    finally:
        ray.shutdown()


def test_ray_metrics_show_the_run_on_the_metrics_agent(tmp_path, ray_metrics_port):
    job = slow_job(tmp_path, "metrics-ray", max_steps=100)
    observers = metrics_observers(job.name, "ray")
    thread, outcome = start_job(job, "ray", observers)
    wanted = {
        "step": lambda s: s.get(("ray_harness_global_step", ()), 0) > 0,
        "loss": lambda s: ("ray_harness_loss", ()) in s,
        "chief running": lambda s: s.get(("ray_harness_tasks_running", (("role", "chief"),))) == 1,
    }
    url = f"http://127.0.0.1:{ray_metrics_port}/metrics"
    seen = poll_until(url, job.name, wanted, thread)
    finish(thread, outcome)
    assert seen == set(wanted), f"never seen during the run: {set(wanted) - seen}"
