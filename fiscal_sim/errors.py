"""Errors with locations: every problem names the file, the program id and the field path."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    file: str
    program: str | None
    field: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        who = f"program '{self.program}'" if self.program else "file"
        return f"{where}: {who}: {self.field}: {self.message}"


class FiscalSimError(Exception):
    """Base class for errors the CLI reports without a traceback."""


class InputError(FiscalSimError):
    """One or more problems in a program, scenario or case file."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))
