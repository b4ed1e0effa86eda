"""The task interface: load cases, give prompts their variables, parse and score replies.

A task is deliberately small. Everything task-specific that the rest of the system needs goes
through these methods, so that adding a benchmark never touches the scheduler or the store.
"""

from __future__ import annotations

import importlib
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

from societies.errors import DataError

Extraction = Literal["robust", "paper"]
#: Rewrites the answers of one society round before they are counted (votes, conformity).
VoteRule = Callable[[Sequence[str | None]], list[str | None]]


@dataclass(frozen=True, slots=True)
class Case:
    id: str
    index: int
    #: The row as loaded (JSON-serialisable); stored with the run so it can be re-scored.
    fields: Mapping[str, Any]
    #: Ground truth in the form ``Task.score`` compares against.
    target: Any


class Task(ABC):
    """One benchmark. Subclasses set ``name`` and ``expert_role`` and register themselves.

    A task that is to run on the simulated model also implements ``sim_answer`` and
    ``sim_reply`` (the ``SimulatedTask`` protocol of ``societies.backends.simulated``); the
    built-in tasks do. Nothing else asks for them.
    """

    name: ClassVar[str]
    #: Role used by prompt sets that give every case the same expertise (the study's protocol).
    expert_role: ClassVar[str] = "an expert"

    def __init__(
        self, extraction: Extraction = "robust", options: Mapping[str, Any] | None = None
    ) -> None:
        self.extraction: Extraction = extraction
        self.options: Mapping[str, Any] = dict(options or {})

    @abstractmethod
    def load(self, path: Path) -> list[Case]:
        """Read every case of ``path``; raise ``DataError`` naming file and row on a bad row."""

    def case_from_stored(self, case_id: str, index: int, fields: Mapping[str, Any]) -> Case:
        """Rebuild a case from the fields kept in a run store (for re-scoring and analysis)."""
        return Case(case_id, index, fields, self.target_of(fields))

    @abstractmethod
    def target_of(self, fields: Mapping[str, Any]) -> Any:
        """The ground truth of a row, in the form ``score`` expects."""

    @abstractmethod
    def prompt_vars(self, case: Case) -> dict[str, Any]:
        """Variables the question template of this task uses."""

    @abstractmethod
    def parse(self, reply: str) -> str | None:
        """The answer a reply commits to, canonicalised, or ``None`` when it commits to none.

        ``None`` is the ``unparsed`` outcome: never scored correct, never replaced by a guess.
        """

    def parse_case(self, reply: str, case: Case) -> str | None:
        """``parse`` for a reply to ``case``; a task whose rules need the case (the reference's
        MMLU rule matches option texts) overrides this. Callers that know the case use it."""
        return self.parse(reply)

    @abstractmethod
    def score(self, answer: str | None, case: Case) -> bool:
        """Whether ``answer`` (as returned by ``parse``) is correct for ``case``."""

    def vote_rule(self) -> VoteRule | None:
        """How the answers of one round are unified before they are counted, when the task's
        rules say so (the reference's MATH rule merges ``x`` into a peer's ``{x}``); ``None``
        counts the parsed answers as they are."""
        return None

    def notes(self, case: Case) -> list[str]:
        """Remarks on a usable case that ``societies data validate`` should show (chess: the
        dataset's target list disagreeing with the rules)."""
        return []

    def case_role(self, case: Case) -> str | None:
        """A per-case expertise, when the data carries one (MMLU subjects do)."""
        role = case.fields.get("expert_role")
        return role if isinstance(role, str) and role else None


_REGISTRY: dict[str, type[Task]] = {}


def register_task(cls: type[Task]) -> type[Task]:
    _REGISTRY[cls.name] = cls
    return cls


def task_names() -> list[str]:
    from importlib.metadata import entry_points

    _load_builtin_tasks()
    return sorted(set(_REGISTRY) | {e.name for e in entry_points(group=ENTRY_POINT_GROUP)})


ENTRY_POINT_GROUP = "societies.tasks"


def _entry_point_task(name: str) -> type[Task] | None:
    """A task another package registers under the ``societies.tasks`` entry-point group."""
    from importlib.metadata import entry_points

    for entry in entry_points(group=ENTRY_POINT_GROUP):
        if entry.name == name:
            try:
                obj = entry.load()
            except Exception as exc:  # a broken plugin must not look like an unknown task
                raise KeyError(
                    f"cannot load task '{name}' from entry point {entry.value}: {exc}"
                ) from None
            if not (isinstance(obj, type) and issubclass(obj, Task)):
                raise KeyError(f"entry point {entry.value} for task '{name}' is not a Task")
            return obj
    return None


def get_task_class(name: str) -> type[Task]:
    """A task by registered name, by ``societies.tasks`` entry point, or by dotted path
    ``package.module:Class``."""
    _load_builtin_tasks()
    if name in _REGISTRY:
        return _REGISTRY[name]
    found = _entry_point_task(name)
    if found is not None:
        return found
    if ":" in name:
        module_name, _, attr = name.partition(":")
        try:
            obj = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise KeyError(f"cannot import task '{name}': {exc}") from None
        if not (isinstance(obj, type) and issubclass(obj, Task)):
            raise KeyError(f"'{name}' is not a Task subclass")
        return obj
    raise KeyError(f"unknown task '{name}' (known: {', '.join(task_names())})")


def _load_builtin_tasks() -> None:
    # Each module registers its tasks on import.
    import societies.tasks.chess
    import societies.tasks.generic
    import societies.tasks.math
    import societies.tasks.multiple_choice
    import societies.tasks.numeric
    import societies.tasks.reversal
    import societies.tasks.triples  # noqa: F401


def read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Rows of a JSONL file with their 1-based line numbers; blank lines are skipped."""
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise DataError(f"{path}: data file not found") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not valid UTF-8 (byte {exc.start})") from None
    any_row = False
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{number}: invalid JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise DataError(f"{path}:{number}: expected a JSON object per line")
        any_row = True
        yield number, row
    if not any_row:
        raise DataError(f"{path}: the file has no rows")


def require(
    path: Path, row_number: int, row: Mapping[str, Any], field: str, check: Callable[[Any], bool]
) -> Any:
    """``row[field]`` if present and valid; else a ``DataError`` naming file, row and field."""
    if field not in row:
        raise DataError(f"{path}:{row_number}: {field}: missing")
    value = row[field]
    if not check(value):
        raise DataError(f"{path}:{row_number}: {field}: invalid value {value!r}")
    return value
