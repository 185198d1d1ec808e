"""A driver script without the ``__main__`` guard: train_and_evaluate runs at import.

``python unguarded.py`` works (its functions are pickled by value: no task imports it);
``python -c "import unguarded"`` makes every task import it, and the tasks refuse to start
another job. MODEL_DIR and the harness config come from the environment.
"""

import os

import train


def model_fn(features, labels, mode, params):
    return train.model_fn(features, labels, mode, params)


train.main(os.environ["EST_MODEL_DIR"], os.environ.get("EST_HARNESS_CONFIG"), model=model_fn)
