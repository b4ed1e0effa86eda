"""Helpers for the real-backend tests: a small experiment file and store queries."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import yaml

from societies.store.db import RunStore

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "experiments" / "data" / "quickstart_mmlu.jsonl"


def write_experiment(
    folder: Path,
    *,
    cases: int = 3,
    model: dict[str, Any] | None = None,
    easy_going: int | list[int] = 1,
    rounds: int = 2,
    strategies: Any = "all",
    name: str = "backends",
    extra: dict[str, Any] | None = None,
) -> Path:
    """3 agents, ``rounds`` rounds, the machinesom protocol (a persona call per agent):
    3 x (1 + 1 + 2 + ... + 2^rounds) calls per case and society when every strategy runs."""
    data: dict[str, Any] = {
        "name": name,
        "seed": 1,
        "task": {"name": "mmlu", "data": str(DATA), "cases": cases},
        "prompts": "machinesom",
        "model": model or {"backend": "sim", "name": "default"},
        "societies": [{"agents": 3, "easy_going": easy_going}],
        "rounds": rounds,
        "strategies": strategies,
        "concurrency": 16,
        **(extra or {}),
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def calls(run_dir: Path) -> list[dict[str, Any]]:
    con = sqlite3.connect(run_dir / "store.sqlite")
    try:
        cur = con.execute(
            "SELECT * FROM calls ORDER BY repeat, case_id, society, node, agent, step"
        )
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    finally:
        con.close()


def position(call: dict[str, Any]) -> tuple[Any, ...]:
    """A stored call's position: repeat, case, society, node, agent, step."""
    return tuple(call[k] for k in ("repeat", "case_id", "society", "node", "agent", "step"))


def asked(run_dir: Path) -> dict[tuple[Any, ...], list[dict[str, str]]]:
    """Per call position: the messages the call was asked (rebuilt by the store)."""
    store = RunStore.for_run_dir(run_dir, readonly=True)
    try:
        return {
            (k.repeat, k.case_id, k.society, k.node, k.agent, k.step): m
            for k, m in store.conversations()
        }
    finally:
        store.close()


def answers(run_dir: Path) -> dict[tuple[Any, ...], tuple[str | None, str | None, str]]:
    """Per call position: reply, parsed answer, outcome."""
    return {position(c): (c["reply"], c["answer"], c["outcome"]) for c in calls(run_dir)}
