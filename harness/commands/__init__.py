"""The entry points behind ``harness run|validate|evaluate|export`` (``harness.cli`` parses).

With ``harness.cli`` and ``harness.estimator.driver``, these are the only ``harness`` modules
that import ``cluster``.
"""
