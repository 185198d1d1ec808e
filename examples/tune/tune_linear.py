"""Tune the linear example's learning rate: 4 trials, each a chief + 1 worker cluster; ASHA
stops the bad ones early. Run from the repository root: python examples/tune/tune_linear.py"""

from ray import tune
from ray.tune.schedulers import ASHAScheduler

import harness
import harness.tune

job = harness.Job(
    name="linear",
    model_fn="examples.linear.model:model_fn",
    input_fn="examples.linear.model:input_fn",
    model_dir="/tmp/unused",  # each trial trains in <trial dir>/model
    cluster={"workers": 1, "ps": 0},
    resources={"chief": {"cpu": 0.5}, "worker": {"cpu": 0.5}},  # 1 CPU per trial
    train={"max_steps": 2000, "save_checkpoints_steps": 500},
)
tuner = tune.Tuner(
    harness.tune.trainable(job, report_every_steps=100),
    param_space={"learning_rate": tune.grid_search([0.3, 0.001, 0.0003, 0.0001])},
    tune_config=tune.TuneConfig(
        metric="loss",
        mode="min",
        scheduler=ASHAScheduler(time_attr="global_step", max_t=2000, grace_period=200),
    ),
    run_config=tune.RunConfig(name="tune-linear", storage_path="/tmp/harness-tune"),
)
best = tuner.fit().get_best_result()
print("best:", best.config, "loss", best.metrics["loss"], "model_dir", best.metrics["model_dir"])
