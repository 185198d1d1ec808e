"""The trainers' hooks of ``harness.data`` (rows of ``hooks.roles``' table, with ``data:``).

- ``ShardAckHook`` (every trainer): after each finished step, the shards handed out so far
  are done (``harness.data_client.ShardClient.step_finished``).
- ``ShardCheckpointListener`` (the chief's ``CheckpointSaverHook``): before a save, the
  supervisor snapshots the done shards (the chief waits for it); after it, the supervisor
  writes ``shards-<step>.json`` (``cluster.shards``).
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from harness.data_client import ShardClient

v1 = tf.compat.v1


class ShardAckHook(v1.train.SessionRunHook):
    def __init__(self, client: ShardClient) -> None:
        self._client = client

    def after_run(self, run_context: Any, run_values: Any) -> None:
        self._client.step_finished()


class ShardCheckpointListener(v1.train.CheckpointSaverListener):
    def __init__(self, client: ShardClient) -> None:
        self._client = client

    def before_save(self, session: Any, global_step_value: int) -> None:
        self._client.checkpoint_saving(int(global_step_value))

    def after_save(self, session: Any, global_step_value: int) -> None:
        self._client.checkpoint_saved(int(global_step_value))
