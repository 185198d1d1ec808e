"""The job's placement group after it was placed: a bundle lost with its node, and the words.

When a node dies, Ray (2.60) puts the placement group in ``RESCHEDULING`` and places the
lost bundles again, on any node with room for them, as soon as there is one; the other
bundles stay where they are and take actors meanwhile. An actor created in a bundle that is
not placed waits, pending, until it is. So before a task is started again, its bundle is
waited for (``wait_bundle``, up to ``placement.timeout_secs``); the messages say what was
asked for and what the cluster has (``unplaceable_message`` for the whole group at the
first start, ``lost_bundle_message`` for one bundle).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from cluster.ray_request import RayRequest, format_resources

POLL_SECS = 0.2


def bundle_placed(pg: Any, index: int) -> bool:
    """Whether bundle ``index`` of ``pg`` is on a node now (an unplaced one has no node id)."""
    from ray.util.placement_group import placement_group_table

    table = placement_group_table(pg)
    return table.get("state") != "REMOVED" and bool(table["bundles_to_node_id"].get(index))


def wait_bundle(
    pg: Any,
    index: int,
    timeout: float,
    placed: Callable[[Any, int], bool] = bundle_placed,
    clock: Callable[[], float] = time.monotonic,
) -> bool:
    """Poll until bundle ``index`` is placed; False after ``timeout`` seconds."""
    deadline = clock() + timeout
    while not placed(pg, index):
        if clock() >= deadline:
            return False
        time.sleep(POLL_SECS)
    return True


def cluster_resources(ray: Any, show: tuple[str, ...]) -> str:
    """``{CPU: 4, ...}, available now {...}, on N node(s): IP {...}; ...`` (live nodes)."""
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    node_list = "; ".join(
        f"{n.get('NodeManagerAddress')} {format_resources(n.get('Resources', {}), show)}"
        for n in nodes
    )
    return (
        f"{format_resources(ray.cluster_resources(), show)}, available now "
        f"{format_resources(ray.available_resources(), show)}, on {len(nodes)} node(s): "
        f"{node_list}"
    )


def unplaceable_message(request: RayRequest, ray: Any) -> str:
    """The whole group could not be placed at the first start."""
    job = request.job
    placement = job.placement
    requested: dict[str, dict[str, Any]] = {}
    for actor in request.actors:
        entry = requested.setdefault(actor.task.role, {"count": 0, "bundle": actor.bundle})
        entry["count"] += 1
    per_role = ", ".join(
        f"{role} {e['count']} x {format_resources(e['bundle'])}" for role, e in requested.items()
    )
    totals: dict[str, float] = {}
    for bundle in request.bundles:
        for key, value in bundle.items():
            totals[key] = totals.get(key, 0.0) + value
    show = tuple(totals)  # what was asked for is shown even where the cluster has none
    return (
        f"the Ray placement group of job {job.name} could not be placed within "
        f"{placement.timeout_secs:g} s (placement.timeout_secs, strategy "
        f"{placement.strategy}).\n"
        f"  requested: {per_role}; in total {format_resources(totals)}\n"
        f"  the cluster has: {cluster_resources(ray, show)}\n"
        "  Lower resources.<role>.cpu/gpu, use a larger Ray cluster (STRICT_SPREAD needs a "
        "node per task), or raise placement.timeout_secs if nodes are still being added."
    )


def lost_bundle_message(
    key: str, bundle_index: int, bundle: Mapping[str, float], timeout: float, ray: Any
) -> str:
    """One task's bundle, lost with its node, was not placed again within ``timeout``."""
    show = tuple(bundle)
    return (
        f"{key} cannot be started again: its bundle {bundle_index} "
        f"{format_resources(bundle, show)} was not placed again within {timeout:g} s "
        "(placement.timeout_secs) after its node was lost.\n"
        f"  the cluster has: {cluster_resources(ray, show)}\n"
        "  Add a node with these resources, raise placement.timeout_secs while nodes are being "
        "added, or let the job go on with fewer workers (cluster.min_workers)."
    )
