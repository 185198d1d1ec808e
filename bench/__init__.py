"""Benchmarks of tf-harness against plain baselines, measured side by side.

Regenerate BENCHMARKS.md (about 50 minutes on an otherwise idle 2-core machine; `--quick`: about
4 minutes)::

    .venv/bin/python -m bench                 # --runs 5 --output BENCHMARKS.md
    .venv/bin/python -m bench --quick         # fewer repetitions and shorter windows
    .venv/bin/python -m bench --only hooks    # some figures only
    .venv/bin/python -m bench --gpu           # adds the GPU variant where a GPU is visible

Modules: ``workload`` (the model, shared by every variant), ``bare_tf`` and
``ray_train_baseline`` (the baselines, no tf-harness code), ``harness_model`` and
``harness_runs`` (the same workload through tf-harness), ``records`` (turning what the
trainers recorded into figures), ``procwatch`` (peak RSS), ``hook_cost``, ``suite`` (the
interleaved runs), ``stats``, ``report`` and ``explain`` (BENCHMARKS.md).
"""
