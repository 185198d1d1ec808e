"""harness.commands.quiet: what the commands keep off the console."""

from __future__ import annotations

import logging

from harness.commands.quiet import tensorflow_notices_quiet


def test_tensorflow_notices_are_quiet_only_inside_the_block() -> None:
    tf_logger = logging.getLogger("tensorflow")
    before = tf_logger.level
    with tensorflow_notices_quiet():
        assert tf_logger.level == logging.ERROR
    assert tf_logger.level == before
