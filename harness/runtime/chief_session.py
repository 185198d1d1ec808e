"""How the chief opens its session: restore or initialize, or join the live variables.

A chief starts in one of two ways (``ChiefStart``):

- ``PREPARE``: exactly TF's ``ChiefSessionCreator`` (``SessionManager.prepare_session``):
  restore the latest checkpoint of model_dir with the Scaffold's saver, or else run
  ``init_op`` and ``init_fn``; then ``local_init_op``.
- ``JOIN``: what a worker's session creator does, tried once: the global variables are
  already initialized (the Scaffold's ``ready_for_local_init_op`` reports none), so
  ``local_init_op`` runs and ``ready_op`` must then report none. No restore, no ``init_op``,
  no ``init_fn``. The Scaffold's saver then learns the checkpoints already in model_dir
  (``recover_last_checkpoints``, as a restore does), so ``keep_checkpoint_max`` still holds.

``tries_to_join``: with ``failure.chief_restart: live`` and ps tasks, the chief tries
``JOIN`` first and falls back to ``PREPARE`` when a variable is uninitialized. With
``checkpoint``, or without ps (the variables live on the chief, so a new chief process holds
none), it is ``PREPARE`` only: TF 1.x's behaviour.

The decision comes from the variables' state, not from what the supervisor knows. Only a
chief initializes variables, and ps tasks are only restarted with the whole cluster, so
initialized variables on the ps mean a chief of this cluster initialized or restored them and
the workers have been training them since. A fresh cluster (the first start, or after a ps
died) has fresh ps processes whose variables are uninitialized: the chief restores, as before.
One window is TF's own: a chief killed after ``init_op`` but before ``init_fn`` finished
leaves variables ``init_fn`` never set, which a TF 1.x worker would have joined as well.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any

import tensorflow as tf

v1 = tf.compat.v1


class ChiefStart(enum.Enum):
    JOIN = "joined the live variables (no restore, no init_op, no init_fn)"
    PREPARE = "restored the latest checkpoint, or ran init_op and init_fn"


def tries_to_join(chief_restart: str, num_ps: int) -> bool:
    """Whether a chief first tries ``JOIN`` (pure): ``chief_restart`` is ``live`` and the
    variables live on ps tasks, which may have outlived the previous chief."""
    return chief_restart == "live" and num_ps > 0


class ChiefSessionCreator(v1.train.SessionCreator):
    """TF's ``ChiefSessionCreator`` that, when ``join_live``, first tries to join initialized
    variables (module docstring). ``last_start`` says how the latest session was made."""

    def __init__(
        self,
        scaffold: v1.train.Scaffold,
        master: str,
        config: Any,
        checkpoint_dir: str,
        join_live: bool,
        task_name: str = "chief:0",
        on_ready: Callable[[], None] | None = None,
    ) -> None:
        self._scaffold = scaffold
        self._master = master
        self._config = config
        self._checkpoint_dir = checkpoint_dir
        self._join_live = join_live
        self._task_name = task_name
        self._on_ready = on_ready
        self._told = False
        self._manager: v1.train.SessionManager | None = None
        self.last_start: ChiefStart | None = None
        self.joined_step: int | None = None  # the global step the latest JOIN found

    def joined_at(self, max_steps: int) -> bool:
        """Whether the latest session joined live variables already at ``max_steps`` (the
        workers finished while the chief was down): the chief then runs no step, and closing
        the session writes the final checkpoint (StopAtStepHook alone would run one)."""
        step = self.joined_step if self.last_start is ChiefStart.JOIN else None
        return step is not None and step >= max_steps

    def create_session(self) -> Any:
        """The session on ready variables. ``on_ready`` is called once per session, as early
        as the variables hold their values: right after ``init_fn`` when the chief
        initializes (TF's readiness checks and the local init follow; a worker told now
        still runs its own checks), else once the restore or the join is done; always
        before any hook's ``after_create_session``."""
        self._told = False
        sess = self._create_session()
        self._tell_ready()
        return sess

    def _tell_ready(self) -> None:
        if self._on_ready is not None and not self._told:
            self._told = True
            self._on_ready()

    def _init_fn(self, sess: Any) -> None:
        if self._scaffold.init_fn is not None:
            self._scaffold.init_fn(sess)
        self._tell_ready()

    def _create_session(self) -> Any:
        self._scaffold.finalize()
        manager = self._session_manager()
        if self._join_live:
            sess = self._join(manager)
            if sess is not None:
                self.last_start = ChiefStart.JOIN
                return sess
        self.last_start = ChiefStart.PREPARE
        return manager.prepare_session(
            self._master,
            saver=self._scaffold.saver,
            checkpoint_dir=self._checkpoint_dir,
            config=self._config,
            init_op=self._scaffold.init_op,
            init_feed_dict=self._scaffold.init_feed_dict,
            init_fn=self._init_fn,
        )

    def _session_manager(self) -> v1.train.SessionManager:
        if self._manager is None:
            self._manager = v1.train.SessionManager(
                local_init_op=self._scaffold.local_init_op,
                local_init_feed_dict=self._scaffold.local_init_feed_dict,
                ready_op=self._scaffold.ready_op,
                ready_for_local_init_op=self._scaffold.ready_for_local_init_op,
                graph=v1.get_default_graph(),
            )
        return self._manager

    def _join(self, manager: v1.train.SessionManager) -> Any | None:
        """A session on the initialized variables (local_init_op run), or None when a variable
        is uninitialized. One try of a worker's ``wait_for_session``: with no time to wait, it
        closes a session that is not ready and raises DeadlineExceededError at once."""
        try:
            sess = manager.wait_for_session(self._master, config=self._config, max_wait_secs=0)
        except tf.errors.DeadlineExceededError:
            return None
        state = tf.train.get_checkpoint_state(self._checkpoint_dir)
        if state is not None and self._scaffold.saver is not None:
            self._scaffold.saver.recover_last_checkpoints(list(state.all_model_checkpoint_paths))
        step = self.joined_step = int(v1.train.global_step(sess, v1.train.get_global_step()))
        print(
            f"{self._task_name} joined the live variables at global step {step} "
            "(failure.chief_restart: live): no restore, no init_op, no init_fn",
            flush=True,
        )
        return sess
