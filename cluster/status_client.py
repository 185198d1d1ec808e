"""The reading side of the status boards (``cluster.status``): connect, find, ask.

``harness status`` and ``harness logs`` connect to the Ray cluster (``connect``), find the
board of a job by name (``find_board``; ``JobNotRunning`` names the job and the jobs that
are running) and call it (``fetch_status``, ``fetch_lines``). A board that is gone (the run
ended, its driver died) raises ``BoardGone``.
"""

from __future__ import annotations

import os
from typing import Any

from cluster.status import BOARD_PREFIX, NAMESPACE, board_name
from harness.job import JobSpecError

CALL_TIMEOUT_SECS = 30.0


class JobNotRunning(LookupError):
    """No run of the job is on the cluster; the message lists the jobs that are."""


class BoardGone(RuntimeError):
    """The job's status board went away: its run ended (or its driver process died)."""


def connect(address: str | None) -> None:
    """Connect to the Ray cluster at ``address``, else ``RAY_ADDRESS``, as a quiet client.

    Raises JobSpecError (the CLI's exit 2) when there is no address or Ray refuses it.
    """
    address = address or os.environ.get("RAY_ADDRESS")
    if not address:
        raise JobSpecError(
            "which Ray cluster? give --address HOST:PORT (the head's GCS address, or `auto` on "
            "a node of the cluster) or set RAY_ADDRESS"
        )
    if address.startswith(("http://", "https://")):
        raise JobSpecError(
            f"--address/RAY_ADDRESS {address}: that is the dashboard's address (for `ray job`); "
            "give the cluster's address HOST:6379 (`ray status` on the head prints it) or `auto` "
            "on a node of the cluster"
        )
    import ray

    try:
        ray.init(address=address, namespace=NAMESPACE, logging_level="ERROR", log_to_driver=False)
    except (ConnectionError, RuntimeError, ray.exceptions.AuthenticationError) as exc:
        lines = [ln for ln in str(exc).splitlines() if ln.strip()]
        cause = next((ln for ln in lines if "token" in ln.lower()), lines[0] if lines else "")
        raise JobSpecError(
            f"--address/RAY_ADDRESS {address}: cannot connect to the Ray cluster: "
            f"{cause.strip()[:300]}\n  A head started with `ray start` uses token "
            "authentication: set RAY_AUTH_MODE=token and make its token available "
            "(see docs/ray.md)."
        ) from exc


def running_jobs() -> list[str]:
    """The names of the jobs whose runs have a status board on the connected cluster."""
    import ray

    names = ray.util.list_named_actors(all_namespaces=True)
    return sorted(
        entry["name"].removeprefix(BOARD_PREFIX)
        for entry in names
        if entry["namespace"] == NAMESPACE and entry["name"].startswith(BOARD_PREFIX)
    )


def find_board(job: str) -> Any:
    """The actor handle of ``job``'s board; JobNotRunning when there is none."""
    import ray

    try:
        return ray.get_actor(board_name(job), namespace=NAMESPACE)
    except ValueError:
        running = running_jobs()
        listed = ", ".join(running) if running else "none"
        raise JobNotRunning(
            f"job {job} is not running on this Ray cluster (jobs running: {listed})"
        ) from None


def fetch_status(board: Any) -> dict[str, Any]:
    """``StatusBoard.status()``: the run's snapshot (``cluster.status_board``)."""
    return _call(board.status.remote())


def fetch_lines(
    board: Any, key: str, after: int, wait_secs: float = 0.0, follower: str | None = None
) -> dict[str, Any]:
    """``StatusBoard.lines``: task ``key``'s lines numbered above ``after``."""
    ref = board.lines.remote(key, after, wait_secs=wait_secs, follower=follower)
    return _call(ref, CALL_TIMEOUT_SECS + wait_secs)


def _call(ref: Any, timeout: float = CALL_TIMEOUT_SECS) -> Any:
    import ray

    try:
        return ray.get(ref, timeout=timeout)
    except ray.exceptions.RayActorError as exc:
        raise BoardGone(str(exc).strip().splitlines()[0] if str(exc).strip() else "") from None
