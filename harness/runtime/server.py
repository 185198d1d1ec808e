"""A task's ``tf.distribute.Server``, started on the port it held, and the injected bind failure
that tests use to exercise the supervisor's re-rendezvous (``HARNESS_FAULT_INJECT``'s ``bind``
fault, ``harness.faults.BindFault``).
"""

from __future__ import annotations

import os
import socket
from typing import Any

from harness.faults import BindFault
from harness.identity import TaskSpec


def start_server(task: TaskSpec, report: Any, fault: BindFault | None = None) -> Any:
    """Start ``task``'s server (the task knows its cluster); None after reporting
    ``bind_failed`` when the port could not be bound."""
    import tensorflow as tf

    from harness.config import RunConfig

    config = RunConfig.for_task(task, gpu_memory_growth=task.job.resources.gpu_memory_growth)
    blocker = _injected_bind_conflict(task, fault)
    try:
        return tf.distribute.Server(
            tf.train.ClusterSpec(task.tf_config()["cluster"]),
            job_name=task.role,
            task_index=task.index,
            config=config.session_config,
            start=True,
        )
    except (
        Exception
    ) as exc:  # TF raises UnknownError/InternalError for "Could not start gRPC server"
        report("bind_failed", port=task.address, error=str(exc).strip().splitlines()[-1])
        return None
    finally:
        if blocker is not None:
            blocker.close()


def _injected_bind_conflict(task: TaskSpec, fault: BindFault | None) -> socket.socket | None:
    """Fault injection for tests: occupy our own port so the server's bind really fails."""
    if fault is None or fault.target != task.task.key or os.path.exists(fault.marker):
        return None
    open(fault.marker, "w").close()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("0.0.0.0", int(task.address.rsplit(":", 1)[1])))
    sock.listen(1)
    return sock
