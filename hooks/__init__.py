"""SessionRunHooks of the harness and the one place that decides which hooks a role runs."""
