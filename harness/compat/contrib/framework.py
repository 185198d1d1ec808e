"""``tf.contrib.framework``: global step, arg scopes and variable helpers.

The variable and arg-scope helpers are tf_slim's (``tf_slim.ops.variables``,
``tf_slim.ops.arg_scope``), made to work on TF 2.21 by `harness.compat.slim_repairs`.
``list_variables`` / ``load_variable`` / ``init_from_checkpoint`` are ``tf.compat.v1.train``'s;
``nest``, ``is_tensor``, ``sort``, ``argsort`` and ``convert_to_tensor_or_sparse_tensor`` are
the core TF functions they became. Any other name raises `harness.compat.RemovedAPIError`.
"""

from __future__ import annotations

import tensorflow as tf
from tf_slim.ops.arg_scope import (
    add_arg_scope,
    arg_scope,
    arg_scoped_arguments,
    current_arg_scope,
    has_arg_scope,
)
from tf_slim.ops.variables import (
    VariableDeviceChooser,
    add_model_variable,
    assert_global_step,
    assert_or_get_global_step,
    assign_from_checkpoint,
    assign_from_checkpoint_fn,
    assign_from_values,
    assign_from_values_fn,
    create_global_step,
    filter_variables,
    get_global_step,
    get_local_variables,
    get_model_variables,
    get_or_create_global_step,
    get_trainable_variables,
    get_unique_variable,
    get_variable_full_name,
    get_variables,
    get_variables_by_name,
    get_variables_by_suffix,
    get_variables_to_restore,
    global_variable,
    local_variable,
    model_variable,
    variable,
)

from harness.compat import slim_repairs
from harness.compat.removed import namespace_getattr

slim_repairs.repair()

list_variables = tf.compat.v1.train.list_variables
load_variable = tf.compat.v1.train.load_variable
init_from_checkpoint = tf.compat.v1.train.init_from_checkpoint
nest = tf.nest
is_tensor = tf.is_tensor
sort = tf.sort
argsort = tf.argsort
convert_to_tensor_or_sparse_tensor = tf.compat.v1.convert_to_tensor_or_sparse_tensor


def get_name_scope() -> str:
    """The current name scope of the default graph (contrib's ``get_name_scope``)."""
    return tf.compat.v1.get_default_graph().get_name_scope()


__getattr__ = namespace_getattr("contrib.framework", {})

__all__ = [
    "VariableDeviceChooser",
    "add_arg_scope",
    "add_model_variable",
    "arg_scope",
    "arg_scoped_arguments",
    "argsort",
    "assert_global_step",
    "assert_or_get_global_step",
    "assign_from_checkpoint",
    "assign_from_checkpoint_fn",
    "assign_from_values",
    "assign_from_values_fn",
    "convert_to_tensor_or_sparse_tensor",
    "create_global_step",
    "current_arg_scope",
    "filter_variables",
    "get_global_step",
    "get_local_variables",
    "get_model_variables",
    "get_name_scope",
    "get_or_create_global_step",
    "get_trainable_variables",
    "get_unique_variable",
    "get_variable_full_name",
    "get_variables",
    "get_variables_by_name",
    "get_variables_by_suffix",
    "get_variables_to_restore",
    "global_variable",
    "has_arg_scope",
    "init_from_checkpoint",
    "is_tensor",
    "list_variables",
    "load_variable",
    "local_variable",
    "model_variable",
    "nest",
    "sort",
    "variable",
]
