"""Exceptions that the CLI turns into one clear line and exit code 2.

Every user-facing failure carries enough to point at the cause (file, line, field path),
so that nothing needs a traceback to be understood.
"""

from __future__ import annotations


class SocietiesError(Exception):
    """Base class for errors whose message is meant for the user as it stands."""

    exit_code = 2


class ConfigError(SocietiesError):
    """A problem in an experiment file, located as precisely as the loader can."""

    def __init__(
        self, message: str, *, file: str | None = None, line: int | None = None, path: str = ""
    ) -> None:
        self.file = file
        self.line = line
        self.path = path
        self.message = message
        super().__init__(self.format())

    def format(self) -> str:
        where = ""
        if self.file:
            where = self.file if self.line is None else f"{self.file}:{self.line}"
            where += ": "
        field = f"{self.path}: " if self.path else ""
        return f"{where}{field}{self.message}"


class DataError(SocietiesError):
    """A problem in a task's data file (a bad row, wrong layout, bad encoding)."""


class StoreError(SocietiesError):
    """The run store cannot be used: corrupt, foreign, or holding a different experiment."""


class ModelError(SocietiesError):
    """A model backend failed in a way that retrying will not fix (bad key, unknown model...)."""

    exit_code = 1
