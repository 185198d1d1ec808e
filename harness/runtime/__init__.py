"""What runs inside one task: the TRAIN graph, the sessions, the training loop, the evaluator.

Layer rules: imports the contract layer (``harness.model_fn``, ``estimator_spec``,
``calling``, ``config``, ``identity``, ``job``, ``errors``) and ``hooks``; never ``harness.export``,
``harness.commands``, ``harness.estimator`` or ``cluster`` (``harness.task`` composes the
runtime with export). See docs/ARCHITECTURE.md.
"""
