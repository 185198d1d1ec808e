"""The entry points behind ``harness run|validate|evaluate|export|status|logs`` (``harness.cli``
parses).

With ``harness.cli`` and ``harness.estimator.driver``, these are the only ``harness`` modules
that import ``cluster``. The exit statuses of every command are here (``harness.cli``'s
docstring says when each is used).
"""

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID = 2
EXIT_INTERRUPTED = 130
