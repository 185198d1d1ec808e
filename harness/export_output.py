"""Export output classes used by `EstimatorSpec.export_outputs`.

`ExportOutput`, `ClassificationOutput`, `RegressionOutput` and `PredictOutput` are TensorFlow's
own classes (the ones `tf.estimator` used), re-exported from the private module
`tensorflow.python.saved_model.model_utils.export_output`. This module is the only place in the
project that imports that private module, so a future TensorFlow move touches one line.

The classes keep TensorFlow 2.21's validation and messages, e.g. `RegressionOutput(None)` raises
`ValueError('Regression output value must be a float32 Tensor; got None')`, and
`ClassificationOutput()` raises `ValueError('Cannot create a ClassificationOutput with empty
arguments. ...')` (TF 1.x said 'At least one of scores and classes must be set.').
`PredictOutput` accepts a bare Tensor (wrapped as `{'output': tensor}`), as in TF 2.x.
"""

import tensorflow as tf
from tensorflow.python.saved_model.model_utils.export_output import (
    ClassificationOutput,
    ExportOutput,
    PredictOutput,
    RegressionOutput,
)

#: The signature key served when a request names none: 'serving_default'.
DEFAULT_SERVING_SIGNATURE_DEF_KEY: str = tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY

__all__ = [
    "DEFAULT_SERVING_SIGNATURE_DEF_KEY",
    "ClassificationOutput",
    "ExportOutput",
    "PredictOutput",
    "RegressionOutput",
]
