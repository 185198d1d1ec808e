"""hooks.roles.select: which hook objects each role receives."""

from __future__ import annotations

import pytest
import tensorflow as tf

from hooks import roles

v1 = tf.compat.v1


class Hook(v1.train.SessionRunHook):
    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return self.name


class Ops:
    def __init__(self, training_hooks=(), training_chief_hooks=()):
        self.training_hooks = list(training_hooks)
        self.training_chief_hooks = list(training_chief_hooks)


def checkpoint_hook():
    return v1.train.CheckpointSaverHook("/tmp/unused", save_steps=10, saver=object())


def test_chief_gets_chief_only_hooks_first_then_defaults_then_training_hooks():
    train, chief, default = Hook("train"), Hook("chief"), Hook("default")
    selected = roles.select(
        Ops([train], [chief]),
        "chief",
        trainer_defaults=[default],
        make_checkpoint_hook=checkpoint_hook,
    )
    assert selected.hook_objects == [default, train]
    assert isinstance(selected.chief_only_hook_objects[0], v1.train.CheckpointSaverHook)
    assert selected.chief_only_hook_objects[1] is chief
    origins = [e.origin for e in selected.entries_in_call_order()]
    assert origins == [
        roles.ORIGIN_HARNESS,
        roles.ORIGIN_CHIEF_HOOKS,
        roles.ORIGIN_HARNESS,
        roles.ORIGIN_TRAINING_HOOKS,
    ]


def test_worker_never_receives_a_chief_only_hook_object():
    train, chief = Hook("train"), Hook("chief")
    built = []
    selected = roles.select(
        Ops([train], [chief]),
        "worker",
        make_checkpoint_hook=lambda: built.append(1) or checkpoint_hook(),
    )
    assert selected.hook_objects == [train]
    assert selected.chief_only_hooks == ()
    everything = [e.hook for e in selected.entries_in_call_order()]
    assert chief not in everything
    assert built == [], "a worker must not even build the chief's CheckpointSaverHook"


@pytest.mark.parametrize("role", ["ps", "evaluator"])
def test_ps_and_evaluator_run_no_training_hooks(role):
    selected = roles.select(Ops([Hook("t")], [Hook("c")]), role, trainer_defaults=[Hook("d")])
    assert selected.entries_in_call_order() == ()


@pytest.mark.parametrize("where", ["training_hooks", "training_chief_hooks"])
def test_a_supplied_checkpoint_saver_replaces_the_default(where):
    own = checkpoint_hook()
    ops = Ops(**{where: [own]})
    selected = roles.select(ops, "chief", make_checkpoint_hook=checkpoint_hook)
    savers = [
        e.hook
        for e in selected.entries_in_call_order()
        if isinstance(e.hook, v1.train.CheckpointSaverHook)
    ]
    assert savers == [own]


def test_no_checkpoint_hook_when_disabled():
    selected = roles.select(Ops(), "chief", make_checkpoint_hook=None)
    assert selected.chief_only_hooks == ()


def test_sync_replicas_hook_in_training_hooks_reaches_every_trainer():
    sync_hook = Hook("sync")
    for role in ("chief", "worker"):
        assert sync_hook in roles.select(Ops([sync_hook]), role).hook_objects
