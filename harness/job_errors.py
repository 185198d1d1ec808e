"""The messages of ``harness.job.JobSpecError``: pydantic's validation errors, worded.

``format_errors`` lists every problem as ``<origin>: invalid job description (N problem(s)):``
then ``  <field.path>: <what is wrong> (got <value>)``, with the allowed keys (and a close
match) for an unknown key; ``first_field`` is the first problem's field path.
"""

from __future__ import annotations

import difflib
from typing import Any

from pydantic import BaseModel, ValidationError


def first_field(exc: ValidationError) -> str | None:
    """The field path of the first problem, as ``format_errors`` writes it."""
    errors = exc.errors()
    if not errors or not errors[0]["loc"]:
        return None
    return ".".join(str(part) for part in errors[0]["loc"])


def format_errors(exc: ValidationError, origin: str, root: type[BaseModel]) -> str:
    lines = [f"{origin}: invalid job description ({exc.error_count()} problem(s)):"]
    for error in exc.errors():
        loc = ".".join(str(part) for part in error["loc"])
        if error["type"] == "extra_forbidden":
            lines.append(f"  {loc}: {_unknown_key_message(error['loc'], root)}")
        elif error["type"] == "missing":
            where = "" if origin == "Job" else " to the job file"  # Job: harness.Job(...)
            lines.append(f"  {loc}: required field is missing; add it{where}")
        else:
            message = error["msg"].removeprefix("Value error, ")
            lines.append(f"  {loc}: {message} (got {error.get('input')!r})")
    return "\n".join(lines)


def _unknown_key_message(loc: tuple[Any, ...], root: type[BaseModel]) -> str:
    model = root
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        annotation = field.annotation if field else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            break
        model = annotation
    allowed = sorted(model.model_fields)
    key = str(loc[-1])
    hint = difflib.get_close_matches(key, allowed, n=1)
    suggestion = f" Did you mean '{hint[0]}'?" if hint else ""
    return f"unknown key '{key}'.{suggestion} Allowed here: {', '.join(allowed)}"
