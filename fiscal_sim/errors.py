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

    exit_code = 1


SHOWN = 50
"""problems printed at most; the rest are counted ("… and N more")"""
MAX_PROBLEMS = 200
"""a reader stops after this many problems in a file (a file of repeated bad rows is not read to its end)"""


class InputError(FiscalSimError):
    """One or more problems in a program, scenario or case file (``more``: problems not listed, counted)."""

    def __init__(self, problems: list[Problem], more: int = 0):
        self.problems = problems
        self.more = more
        super().__init__("\n".join(self.lines()))

    def lines(self) -> list[str]:
        """The problems as printed: the first :data:`SHOWN`, then how many more."""
        rest = len(self.problems) - SHOWN + self.more
        return [str(p) for p in self.problems[:SHOWN]] + ([f"… and {rest:,} more problem(s)"] if rest > 0 else [])


class TooManyProblems(Exception):
    """Raised inside a reader once :data:`MAX_PROBLEMS` problems are found: it stops reading there."""


class Interrupted(FiscalSimError):
    """Ctrl-C, after cleaning up; the message says what was kept (the CLI exits 130)."""

    exit_code = 130


_ERRNO_WORDS = {
    "ENOSPC": "disk full",
    "EDQUOT": "disk quota exceeded",
    "EROFS": "read-only file system",
    "EACCES": "permission denied",
    "EPERM": "operation not permitted",
    "ENOENT": "no such file or folder",
    "ENOTDIR": "a part of the path is a file, not a folder",
    "EISDIR": "is a folder, not a file",
    "EFBIG": "file too large (a size limit was reached)",
    "EIO": "input/output error (disk fault?)",
}


def describe_os_error(e: OSError) -> str:
    """One line for an operating-system error: the file, and the problem in plain words."""
    import errno

    name = errno.errorcode.get(e.errno or -1, "")
    words = _ERRNO_WORDS.get(name) or e.strerror or str(e)
    files = " → ".join(str(f) for f in (e.filename, e.filename2) if f)
    return f"{files}: {words}" if files else words
