"""Live metrics of a run: one observer computes them, a sink exports them (docs/metrics.md).

``MetricsObserver`` is a ``cluster.observe.RunObserver``: from what the supervisor tells it,
it keeps the values of the metrics in ``METRICS`` and hands every change to its sink. Each
series carries the job's name in the ``job_name`` label (not ``job``: Prometheus sets
``job`` itself, on every series it scrapes, and would rename ours to ``exported_job``):

- ``harness_global_step``, ``harness_steps_per_second``, ``harness_loss`` (gauges): the
  job's progress (``Snapshot``: the highest global step seen, the recent global steps/s,
  the latest loss); at the end the global step is run.json's ``final_global_step``.
- ``harness_tasks_running{role}`` (gauge): task instances started (``task_started``) and not
  yet exited (``task_exited``); 0 for every role once the job has ended (the teardown kills
  what is left, which ``task_exited`` does not report).
- ``harness_task_restarts_total{role,index}`` (counter): the restarts a task's exit caused,
  i.e. its ``task_exited`` decisions ``RESTART_TASK`` or ``RESTART_CLUSTER`` (a ps that
  died restarts the whole cluster: counted once, on the ps; the other tasks did not fail).
  A re-run rendezvous after a bind failure (``RERUN_RENDEZVOUS``) is not a restart. This is
  run.json's per-task ``restarts``, except for a restarted task that then fails to rejoin:
  run.json counts that task's restart once, the counter counts the cluster restart too.
  Each task's series is there, at 0, from its first start.

Two sinks: ``RaySink`` records Ray metrics (``ray.util.metrics``) in this process, the Ray
driver, which Ray exports on its metrics agents' Prometheus endpoints (names prefixed
``ray_``); ``PrometheusSink`` serves the values itself with ``prometheus_client``.
``metrics_observers`` builds the observers a run gets.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from cluster.observe import RunObserver, Snapshot
from harness.job import JobSpecError

JOB_LABEL = "job_name"
DEFAULT_HOST = "127.0.0.1"
RESTART_DECISIONS = frozenset({"RESTART_TASK", "RESTART_CLUSTER"})


@dataclass(frozen=True)
class Metric:
    """One exported metric: ``labels`` are the ones besides ``JOB_LABEL``.

    ``name`` is the exported name; a counter's name ends in ``_total``, which both sinks
    add themselves (the name they are given is ``base``).
    """

    name: str
    kind: str  # "gauge" or "counter"
    help: str
    labels: tuple[str, ...] = ()

    @property
    def base(self) -> str:
        return self.name.removesuffix("_total") if self.kind == "counter" else self.name

    @property
    def label_names(self) -> tuple[str, ...]:
        return (JOB_LABEL, *self.labels)


GLOBAL_STEP = Metric("harness_global_step", "gauge", "Highest global step reported")
STEPS_PER_SECOND = Metric(
    "harness_steps_per_second", "gauge", "Global steps per second over the last ~10 s"
)
LOSS = Metric("harness_loss", "gauge", "Latest training loss reported by a trainer")
TASK_RESTARTS = Metric(
    "harness_task_restarts_total", "counter", "Restarts caused by a task's exit", ("role", "index")
)
TASKS_RUNNING = Metric(
    "harness_tasks_running", "gauge", "Task instances started and not yet exited", ("role",)
)
METRICS: tuple[Metric, ...] = (GLOBAL_STEP, STEPS_PER_SECOND, LOSS, TASK_RESTARTS, TASKS_RUNNING)


class MetricsSink(Protocol):
    """Where ``MetricsObserver`` puts the values; ``labels`` always include ``JOB_LABEL``."""

    def set(self, metric: Metric, value: float, labels: Mapping[str, str]) -> None:
        """Set a gauge's series."""

    def inc(self, metric: Metric, amount: float, labels: Mapping[str, str]) -> None:
        """Add ``amount`` (>= 0; 0 only makes the series exist) to a counter's series."""

    def close(self) -> None:
        """The job has ended (called once, after the last values)."""


class MetricsObserver(RunObserver):
    """Keeps the run's metrics (module docstring) and hands each change to ``sink``.

    Called on the supervisor's thread only (it does not observe ``task_line``).
    """

    def __init__(self, job_name: str, sink: MetricsSink) -> None:
        self.job_name = job_name
        self.sink = sink
        self.running: dict[str, set[str]] = {}  # role -> keys of running task instances
        self.restarts: dict[str, int] = {}  # task key -> restarts its exits caused
        self._closed = False

    def _labels(self, **labels: str) -> dict[str, str]:
        return {JOB_LABEL: self.job_name, **labels}

    def _publish_running(self, role: str) -> None:
        count = len(self.running.get(role, ()))
        self.sink.set(TASKS_RUNNING, count, self._labels(role=role))

    def task_started(self, key: str) -> None:
        role, index = key.split(":")
        self.running.setdefault(role, set()).add(key)  # after a teardown: still one instance
        self._publish_running(role)
        if key not in self.restarts:
            self.restarts[key] = 0
            self.sink.inc(TASK_RESTARTS, 0, self._labels(role=role, index=index))

    def task_exited(self, key: str, exit_code: int | None, decision: str) -> None:
        role, index = key.split(":")
        self.running.setdefault(role, set()).discard(key)
        self._publish_running(role)
        if decision in RESTART_DECISIONS:
            self.restarts[key] = self.restarts.get(key, 0) + 1
            self.sink.inc(TASK_RESTARTS, 1, self._labels(role=role, index=index))

    def progress(self, snapshot: Snapshot) -> None:
        self.sink.set(GLOBAL_STEP, snapshot.global_step, self._labels())
        if snapshot.steps_per_sec is not None:
            self.sink.set(STEPS_PER_SECOND, snapshot.steps_per_sec, self._labels())
        if snapshot.loss is not None:
            self.sink.set(LOSS, snapshot.loss, self._labels())

    def finished(self, summary: dict[str, Any]) -> None:
        if summary.get("final_global_step") is not None:
            self.sink.set(GLOBAL_STEP, summary["final_global_step"], self._labels())
        for role, keys in self.running.items():
            keys.clear()
            self._publish_running(role)
        self.close()

    def close(self) -> None:
        """Close the sink (idempotent): for a run that ended before ``finished``."""
        if not self._closed:
            self._closed = True
            self.sink.close()


class PrometheusSink:
    """Serves the metrics on ``http://host:port/metrics`` from construction to ``close``.

    Its own registry (none of this process's other metrics); ``port`` 0 takes a free port,
    and ``self.port`` is the one bound. Raises JobSpecError naming the address when it
    cannot be bound (in use, no permission). ``close`` stops the server and frees the port.
    """

    def __init__(self, port: int, host: str = DEFAULT_HOST) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

        self.registry = CollectorRegistry()
        kinds = {"gauge": Gauge, "counter": Counter}
        self._metrics = {
            m.name: kinds[m.kind](m.base, m.help, m.label_names, registry=self.registry)
            for m in METRICS
        }
        try:
            self._server, self._thread = start_http_server(port, addr=host, registry=self.registry)
        except OSError as exc:
            raise JobSpecError(
                f"--metrics-port {port}: cannot serve metrics on {host}:{port}: "
                f"{exc.strerror or exc}"
            ) from None
        self.host, self.port = host, int(self._server.server_port)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    def set(self, metric: Metric, value: float, labels: Mapping[str, str]) -> None:
        self._metrics[metric.name].labels(**labels).set(value)

    def inc(self, metric: Metric, amount: float, labels: Mapping[str, str]) -> None:
        self._metrics[metric.name].labels(**labels).inc(amount)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5.0)


class RaySink:
    """Records the metrics as Ray metrics in this process, once it is connected to Ray.

    Ray exports what the driver records, like what its actors record, on the metrics agent
    of the driver's node (``ray_`` prefix, every ``metrics_report_interval_ms``). The Ray
    metrics are created at the first value recorded while Ray is initialized (the launcher
    connects after the observers are made); values before that, or without Ray, are
    dropped. Ray's counters only grow by more than 0, so a series appears at its first
    restart. ``close`` does nothing: Ray keeps the last values while the process lives.
    """

    def __init__(self) -> None:
        self._metrics: dict[str, Any] | None = None

    def _ray_metrics(self) -> dict[str, Any] | None:
        if self._metrics is None:
            import ray

            if not ray.is_initialized():
                return None
            from ray.util.metrics import Counter, Gauge

            kinds = {"gauge": Gauge, "counter": Counter}
            self._metrics = {
                m.name: kinds[m.kind](m.base, m.help, tag_keys=m.label_names) for m in METRICS
            }
        return self._metrics

    def set(self, metric: Metric, value: float, labels: Mapping[str, str]) -> None:
        metrics = self._ray_metrics()
        if metrics is not None:
            metrics[metric.name].set(float(value), tags=dict(labels))

    def inc(self, metric: Metric, amount: float, labels: Mapping[str, str]) -> None:
        metrics = self._ray_metrics()
        if metrics is not None and amount > 0:
            metrics[metric.name].inc(float(amount), tags=dict(labels))

    def close(self) -> None:
        pass


def metrics_observers(
    job_name: str, backend: str, metrics_port: int | None = None, host: str = DEFAULT_HOST
) -> list[RunObserver]:
    """The metrics observers of one run (pass them to ``run_job(observers=...)``).

    ``backend == "ray"``: Ray metrics (``RaySink``). ``metrics_port`` not None: a Prometheus
    endpoint on ``host:metrics_port`` (0: a free port, see ``PrometheusSink.port``), on any
    backend, open from this call until the run's ``finished``; a caller whose run never
    starts calls ``close()`` on the observers. Raises JobSpecError when the port cannot be
    bound.
    """
    observers: list[RunObserver] = []
    if backend == "ray":
        observers.append(MetricsObserver(job_name, RaySink()))
    if metrics_port is not None:
        observers.append(MetricsObserver(job_name, PrometheusSink(metrics_port, host)))
    return observers
