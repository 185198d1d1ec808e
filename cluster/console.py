"""Driver output: role-prefixed task lines, per-task log files and the progress display.

- Every task line is printed as ``[worker:1] <line>`` and appended to
  ``<model_dir>/logs/worker-1.log``.
- Progress (global step, steps/s, loss) is a rich progress bar on a TTY and a plain line
  every ``plain_every_secs`` otherwise (CI logs, ``ray job logs``); none with
  ``show_progress=False`` (the Python API's default).
"""

from __future__ import annotations

import os
import re
import sys
import threading
import time
from typing import IO

from rich.console import Console as RichConsole
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

# TensorFlow start-up chatter, hidden on the console (task log files keep every line):
# absl's pre-init notice, oneDNN/CPU-feature notes, the CUDA probe on machines without a GPU,
# and StepCounterHook's "global step has not been increased" warning, which is spurious when
# several replicas share the global step.
_CONSOLE_NOISE = re.compile(
    r"All log messages before absl::InitializeLog|oneDNN custom operations|cudart_stub\.cc"
    r"|cuda_platform\.cc.*cuInit|cuda_executor\.cc|To enable the following instructions"
    r"|rebuild TensorFlow with the appropriate compiler flags"
    r"|It seems that global step \(tf\.train\.get_global_step\) has not been increased"
)


def is_console_noise(line: str) -> bool:
    return bool(_CONSOLE_NOISE.search(line))


class Console:
    def __init__(
        self,
        log_dir: str,
        max_steps: int,
        stream: IO[str] | None = None,
        quiet_tasks: bool = False,
        plain_every_secs: float = 5.0,
        show_progress: bool = True,
    ) -> None:
        self.log_dir = log_dir
        os.makedirs(log_dir, exist_ok=True)
        self._stream = stream or sys.stdout
        self._lock = threading.Lock()
        self._files: dict[str, IO[str]] = {}
        self._quiet_tasks = quiet_tasks
        self._max_steps = max_steps
        self._plain_every = plain_every_secs
        self._last_plain = 0.0
        self._printed_end = False
        self._progress: Progress | None = None
        self._show_progress = show_progress
        if show_progress and self._stream.isatty():
            self._progress = Progress(
                TextColumn("step {task.completed:.0f}/{task.total:.0f}"),
                BarColumn(),
                TextColumn("{task.fields[rate]} steps/s  loss {task.fields[loss]}"),
                TimeElapsedColumn(),
                console=RichConsole(file=self._stream),
                transient=False,
            )
            self._bar = self._progress.add_task("train", total=max_steps, rate="-", loss="-")
            self._progress.start()

    def log_path(self, key: str) -> str:
        return os.path.join(self.log_dir, key.replace(":", "-") + ".log")

    def task_line(self, key: str, line: str) -> None:
        with self._lock:
            log = self._files.get(key)
            if log is None:
                log = self._files[key] = open(self.log_path(key), "a", buffering=1)
            log.write(line + "\n")
            if not self._quiet_tasks and not is_console_noise(line):
                self._print(f"[{key}] {line}")

    def info(self, message: str) -> None:
        with self._lock:
            self._print(f"[harness] {message}")

    def progress(self, global_step: int, loss: float | None, rate: float | None) -> None:
        """Show the job's progress (``rate``: global steps/s, None while unknown)."""
        loss_text = "-" if loss is None else f"{loss:.4g}"
        rate_text = "-" if rate is None else f"{rate:.1f}"
        with self._lock:
            if self._progress is not None:
                self._progress.update(
                    self._bar, completed=global_step, rate=rate_text, loss=loss_text
                )
                return
            if not self._show_progress:
                return
            now = time.monotonic()
            reached_end = global_step >= self._max_steps and not self._printed_end
            if now - self._last_plain >= self._plain_every or reached_end:
                self._last_plain = now
                self._printed_end = self._printed_end or reached_end
                self._print(
                    f"[harness] step {global_step}/{self._max_steps} "
                    f"({100 * global_step / self._max_steps:.0f}%)  {rate_text} steps/s  loss {loss_text}"
                )

    def close(self) -> None:
        with self._lock:
            if self._progress is not None:
                self._progress.stop()
                self._progress = None
            for log in self._files.values():
                log.close()
            self._files.clear()

    def _print(self, text: str) -> None:
        if self._progress is not None:
            self._progress.console.print(text, markup=False, highlight=False)
        else:
            self._stream.write(text + "\n")
            self._stream.flush()
