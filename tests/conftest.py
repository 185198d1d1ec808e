import os

# Every Ray address on 127.0.0.1 (see docs/ray.md); harmless for the local backend.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

pytest_plugins = ["harness.testing"]
