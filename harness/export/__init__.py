"""SavedModel export: the INFER graph, serving inputs, signatures, the SavedModel on disk.

- ``serving_inputs.py``  what clients send (the features the outputs depend on);
- ``saved_model.py``     the export graph, signatures and writing the SavedModel.

Layer rules: imports the contract layer and ``harness.runtime`` (user-code wrapping,
checkpoints); never ``harness.commands``, ``harness.estimator`` or ``cluster``.
"""
