"""The machine and versions a benchmark run was made on, captured when the run starts.

The report is written from these figures, so a report rendered again later from a saved
``results.pickle`` (``python -m bench --render``) names the revision and packages that were
measured, not the ones checked out at render time.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
from dataclasses import dataclass

import psutil

from bench.harness_runs import REPO


@dataclass(frozen=True)
class Environment:
    cpu: str
    cores: int
    memory_gib: float
    system: str
    python: str
    tensorflow: str
    ray: str
    harness: str
    git: str

    @classmethod
    def capture(cls) -> Environment:
        """This machine and checkout, now."""
        return cls(
            cpu=cpu_model(),
            cores=os.cpu_count() or 0,
            memory_gib=psutil.virtual_memory().total / 2**30,
            system=f"{platform.system()} {platform.release()}",
            python=platform.python_version(),
            tensorflow=version("tensorflow"),
            ray=version("ray"),
            harness=version("tf-harness"),
            git=git_revision(),
        )


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def git_revision(repo: str = REPO) -> str:
    """The short commit of ``repo``, marked when tracked files have uncommitted changes."""
    try:
        head = _git(repo, "rev-parse", "--short", "HEAD")
        dirty = _git(repo, "status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head}{' (with uncommitted changes)' if dirty else ''}" if head else "unknown"


def _git(repo: str, *args: str) -> str:
    run = subprocess.run(["git", "-C", repo, *args], capture_output=True, text=True, timeout=10)
    return run.stdout.strip()
