"""What analysis rebuilds from a run store alone: the task, its cases, the thinking patterns.

The one place where a stored run becomes a task again (``load_run``, ``rescore`` and the end of
``societies run`` all go through it), so that every reader scores a run the same way: the
task's recorded name, extraction mode and options, and the case fields stored with the run.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from societies.config.models import Price
from societies.errors import ConfigError, StoreError
from societies.society.patterns import BUILTIN_PATTERNS
from societies.store.db import RunStore
from societies.tasks.base import Case, Extraction, Task, get_task_class


def stored_task(
    store: RunStore, extraction: Extraction | None = None
) -> tuple[Task, dict[str, Case], dict[str, Any]]:
    """The run's task (in its recorded extraction mode unless ``extraction`` is given), its
    cases by id, and the run's experiment config."""
    row = store.run_row()
    if row is None:
        raise StoreError(f"{store.path}: the store holds no run")
    try:
        task_cls = get_task_class(row["task"])
    except KeyError as exc:
        raise StoreError(f"{store.path}: cannot score this run: {exc.args[0]}") from None
    config: dict[str, Any] = json.loads(row["config_json"])
    task = task_cls(extraction or row["extraction"], (config.get("task") or {}).get("options"))
    cases = {
        cid: task.case_from_stored(cid, idx, json.loads(fields))
        for cid, idx, fields in store.case_rows()
    }
    return task, cases, config


def peer_patterns(config: Mapping[str, Any]) -> dict[str, bool]:
    """Whether each pattern of the run shows the agent its peers' replies: the built-in ones
    and those the experiment defines."""
    out = {name: p.sees_peers for name, p in BUILTIN_PATTERNS.items()}
    for name, spec in (config.get("patterns") or {}).items():
        out[str(name)] = bool((spec or {}).get("sees_peers", False))
    return out


def check_prices(prices: Mapping[str, Any], where: str = "prices") -> dict[str, Price]:
    """A price table in the experiment file's schema (``input``, ``output``, optional
    ``cached``: dollars per million tokens), validated: a wrong or missing key is one clear
    ``ConfigError`` naming the model and the field."""
    out: dict[str, Price] = {}
    for model, price in prices.items():
        if isinstance(price, Price):
            out[str(model)] = price
            continue
        try:
            out[str(model)] = Price.model_validate(price)
        except ValidationError as exc:
            errors = exc.errors()
            # a misspelt key (``prompt`` for ``input``) is the likely cause: name it first
            first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
            field = ".".join(str(p) for p in first["loc"])
            path = f"{where}.{model}" + (f".{field}" if field else "")
            raise ConfigError(
                f"{first['msg']} (a price gives input, output and optionally cached, "
                "in dollars per million tokens)",
                path=path,
            ) from None
    return out
