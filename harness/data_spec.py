"""The job's optional ``data:`` section: the shards the supervisor hands out (``harness.data``).

Exactly one of two forms:

- ``files: [pattern, ...]``: each file is one shard (globs expanded and sorted when the job
  is loaded by the supervisor; a pattern without a match is an error);
- ``examples: N`` with ``shard_size: M``: index ranges ``[0, M), [M, 2M), ...`` of a dataset
  of N examples (``harness.data.ranges``).

A shard descriptor is a dict ``{"index", "path", "start", "stop"}`` (``path`` is "" for a
range; ``start``/``stop`` are 0 for a file), the same in every task, so that the supervisor
can name a shard by its position in ``descriptors()``.
"""

from __future__ import annotations

import glob
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator


def ranges(n_examples: int, shard_size: int) -> list[dict[str, Any]]:
    """The index ranges of ``n_examples`` examples, ``shard_size`` at a time (the last one may
    be shorter), as shard descriptors."""
    if n_examples < 0 or shard_size < 1:
        raise ValueError("ranges(n_examples >= 0, shard_size >= 1)")
    return [
        {"index": i, "path": "", "start": start, "stop": min(start + shard_size, n_examples)}
        for i, start in enumerate(range(0, n_examples, shard_size))
    ]


def files(paths: list[str]) -> list[dict[str, Any]]:
    """One shard descriptor per file of ``paths``, in that order."""
    return [{"index": i, "path": p, "start": 0, "stop": 0} for i, p in enumerate(paths)]


class DataConfig(BaseModel):
    """``data:``: the shards of one epoch (module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    files: list[str] | None = None
    examples: int | None = Field(None, ge=1)
    shard_size: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _one_form(self) -> DataConfig:
        if (self.files is None) == (self.examples is None):
            raise ValueError("give either files: [patterns] or examples: N with shard_size: M")
        if self.examples is not None and self.shard_size is None:
            raise ValueError("examples: N needs shard_size: M (examples per shard)")
        if self.files is not None and self.shard_size is not None:
            raise ValueError("shard_size applies to examples: N; with files each file is a shard")
        return self

    def descriptors(self) -> list[dict[str, Any]]:
        """The epoch's shards, in order. Raises ValueError for a file pattern without a match."""
        if self.examples is not None:
            return ranges(self.examples, self.shard_size or 1)
        paths: list[str] = []
        for pattern in self.files or ():
            found = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
            if not found:
                raise ValueError(f"data.files: no file matches {pattern!r}")
            paths.extend(found)
        return files(paths)
