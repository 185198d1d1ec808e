"""Small models with known answers for the evaluation and export tests.

One linear model, ``score = x . weight + bias (+ offset * n)``, trained on exact data
``y = 2 x + 1 (+ 0.5 n)``. Its ``params``:

- ``with_n``: adds the int32 feature ``n`` (batch-only shape; int32, so the export has to cast
  what tf.Example parses as int64);
- ``fail_in_eval``: model_fn raises in EVAL mode;
- ``outputs``: the output alternatives INFER mode returns, among:

  - ``regress``: LINEAR_REGRESSION, ``{'scores': score}``;
  - ``classify``: CLASSIFICATION, ``{'probabilities': [1 - p, p], 'classes': ['neg', 'pos']}``
    with ``p = sigmoid(score)``; ``classify_scores`` is the same under ``'scores'``;
  - ``predict``: UNSPECIFIED, ``{'y': score, 'doubled': 2 score}`` (plus ``n_twice`` with n);
  - ``unknown``: problem type 7;
  - none at all: predictions ``{'y': score}`` only (export serves them as serving_default).

``write_checkpoint`` writes a checkpoint with given variable values (the exact answers the
tests compare with); ``train`` trains in this process with MonitoredTrainingSession.
"""

from __future__ import annotations

import time

import numpy as np
import tensorflow as tf

from harness import ModeKeys, ModelFnOps, ProblemType

v1 = tf.compat.v1

WEIGHT, BIAS, OFFSET = 2.0, 1.0, 0.5
EXAMPLES = 64
BATCH = 16


def data(with_n: bool = False) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The exact data set: 64 examples, x evenly spaced in [-1, 1], n = 0..3."""
    x = np.linspace(-1.0, 1.0, EXAMPLES, dtype=np.float32).reshape(-1, 1)
    features = {"x": x}
    y = WEIGHT * x + BIAS
    if with_n:
        n = (np.arange(EXAMPLES) % 4).astype(np.int32)
        features["n"] = n
        y = y + OFFSET * n.reshape(-1, 1).astype(np.float32)
    return features, y.astype(np.float32)


def input_fn(mode, params):
    """Batches of 16; endless in TRAIN mode, one pass (4 batches) otherwise."""
    features, y = data(params.get("with_n", False))
    dataset = tf.data.Dataset.from_tensor_slices((features, y))
    if mode == ModeKeys.TRAIN:
        dataset = dataset.repeat()
    return dataset.batch(BATCH)


def shifted_input_fn(params):
    """Eval data whose labels are 1 higher than the model's answer: mse 1 at the answer."""
    features, y = data(params.get("with_n", False))
    return tf.data.Dataset.from_tensor_slices((features, y + 1.0)).batch(BATCH)


def model_fn(features, labels, mode, params):
    if mode == ModeKeys.EVAL and params.get("fail_in_eval"):
        raise ValueError("this model cannot be evaluated")
    weight = v1.get_variable("weight", [1, 1], initializer=v1.zeros_initializer())
    bias = v1.get_variable("bias", [1], initializer=v1.zeros_initializer())
    score = tf.matmul(features["x"], weight) + bias
    if params.get("with_n"):
        offset = v1.get_variable("offset", [1], initializer=v1.zeros_initializer())
        score += offset * tf.cast(tf.reshape(features["n"], [-1, 1]), tf.float32)
    if mode == ModeKeys.INFER:
        return ModelFnOps(
            mode,
            predictions={"y": score},
            output_alternatives=_alternatives(features, score, params.get("outputs", [])),
        )
    loss = tf.reduce_mean(tf.square(score - labels))
    optimizer = v1.train.GradientDescentOptimizer(params.get("learning_rate", 0.5))
    return ModelFnOps(
        mode,
        predictions={"y": score},
        loss=loss,
        train_op=optimizer.minimize(loss, global_step=v1.train.get_global_step()),
        eval_metric_ops={
            "mse": v1.metrics.mean_squared_error(labels, score),
            "mae": v1.metrics.mean_absolute_error(labels, score),
        },
    )


def _alternatives(features, score, outputs):
    if not outputs:
        return None
    scores = score[:, 0]
    p = tf.sigmoid(scores)
    probabilities = tf.stack([1.0 - p, p], axis=1)
    classes = tf.tile(tf.constant([["neg", "pos"]]), [tf.shape(scores)[0], 1])
    predict = {"y": scores, "doubled": 2.0 * scores}
    if "n" in features:
        predict["n_twice"] = 2 * features["n"]
    known = {
        "regress": (ProblemType.LINEAR_REGRESSION, {"scores": scores}),
        "classify": (
            ProblemType.CLASSIFICATION,
            {"probabilities": probabilities, "classes": classes},
        ),
        "classify_scores": (
            ProblemType.CLASSIFICATION,
            {"scores": probabilities, "classes": classes},
        ),
        "predict": (ProblemType.UNSPECIFIED, predict),
        "unknown": (7, {"scores": scores}),
    }
    return {name: known[name] for name in outputs}


def expected(weight: float, bias: float, x: np.ndarray, offset: float = 0.0, n=None) -> np.ndarray:
    """The model's score for ``x`` (shape [B, 1]) and ``n`` (shape [B]): shape [B]."""
    score = weight * x[:, 0] + bias
    if n is not None:
        score = score + offset * np.asarray(n, dtype=np.float32)
    return score.astype(np.float32)


def write_checkpoint(
    model_dir: str, params: dict, values: dict[str, float], global_step: int
) -> str:
    """Builds the TRAIN graph, sets variables to ``values`` (by name), saves; returns the path."""
    tf.io.gfile.makedirs(model_dir)
    with tf.Graph().as_default():
        step = v1.train.get_or_create_global_step()
        features, labels = v1.data.make_one_shot_iterator(input_fn("train", params)).get_next()
        model_fn(features, labels, ModeKeys.TRAIN, params)
        assigns = [step.assign(global_step)]
        for variable in v1.global_variables():
            name = variable.op.name
            if name in values:
                assigns.append(variable.assign(tf.fill(variable.shape, values[name])))
        saver = v1.train.Saver(sharded=True, max_to_keep=100)
        with v1.Session() as session:
            session.run(v1.global_variables_initializer())
            session.run(assigns)
            return saver.save(session, f"{model_dir}/model.ckpt", global_step=global_step)


class _SleepHook(v1.train.SessionRunHook):
    def __init__(self, secs: float) -> None:
        self._secs = secs

    def after_run(self, run_context, run_values) -> None:
        time.sleep(self._secs)


def train(
    model_dir: str, params: dict, max_steps: int, save_steps: int, step_secs: float = 0.0
) -> None:
    """Trains in this process to ``max_steps``, a checkpoint every ``save_steps`` and at the end."""
    with tf.Graph().as_default():
        v1.train.get_or_create_global_step()
        features, labels = v1.data.make_one_shot_iterator(input_fn("train", params)).get_next()
        ops = model_fn(features, labels, ModeKeys.TRAIN, params)
        hooks = [v1.train.StopAtStepHook(last_step=max_steps), _SleepHook(step_secs)]
        with v1.train.MonitoredTrainingSession(
            checkpoint_dir=model_dir,
            hooks=hooks,
            save_checkpoint_steps=save_steps,
            save_summaries_steps=None,
            save_summaries_secs=None,
            log_step_count_steps=None,
        ) as session:
            while not session.should_stop():
                session.run(ops.train_op)


def serving_input_fn():
    """A custom receiver: one float vector ``x_raw`` of shape [B], reshaped to the feature x."""
    x_raw = v1.placeholder(tf.float32, [None], name="x_raw")
    return {"x": tf.reshape(x_raw, [-1, 1])}, {"x_raw": x_raw}


def two_receivers_serving_input_fn():
    """Two receiver tensors: fine for predict signatures, impossible for classify/regress."""
    x = v1.placeholder(tf.float32, [None, 1], name="x")
    unused = v1.placeholder(tf.string, [None], name="unused")
    return {"x": x}, {"x": x, "unused": unused}
