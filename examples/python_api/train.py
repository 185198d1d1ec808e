"""Train the linear example from a Python driver: harness.Job, harness.fit, the Result.

    python examples/python_api/train.py                  # an embedded Ray (or RAY_ADDRESS)
    ray job submit --working-dir examples -- python python_api/train.py   # a Ray cluster

MODEL_DIR and MAX_STEPS override the model_dir and train.max_steps.
"""

import json
import os
from pathlib import Path

import harness

examples = Path(__file__).resolve().parent.parent  # the model is examples/linear/model.py
job = harness.Job(
    name="linear-api",
    model_fn="linear.model:model_fn",
    input_fn="linear.model:input_fn",
    model_dir=os.environ.get("MODEL_DIR", "/tmp/harness-linear-api"),
    params={"learning_rate": 0.1, "batch_size": 32},
    cluster={"workers": 2, "ps": 1},
    resources={"chief": {"cpu": 0.5}, "worker": {"cpu": 0.5}, "ps": {"cpu": 0.5}},
    train={"max_steps": int(os.environ.get("MAX_STEPS", 1000)), "save_checkpoints_steps": 200},
    source_dirs=[str(examples)],
)
result = harness.fit(job, backend="ray").raise_for_error()

print(f"loss {result.metrics['loss']:.4f} at global step {result.metrics['global_step']}")
print(f"checkpoint {result.checkpoint.path} ({result.metrics['steps_per_sec']} steps/s)")
summary = {"global_step": result.metrics["global_step"], "checkpoint_step": result.checkpoint.step}
print("result:" + json.dumps(summary))
