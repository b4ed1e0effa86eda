"""Import the reference implementation's result folders (zjunlp/MachineSoM) into a run store.

Layout: per case and strategy a pickle ``{k}_harmony_{n}_agents_{R}_turns_{strategy}_strategy_
case_{i}.pkl`` holding one message list per agent — [role-play user, "ok", question, reply,
then one user/reply pair per round] — and optionally ``..._token.pkl`` holding per agent a list
of usage records (pickled openai 0.x objects). k agents are easy-going and come first, the
others are overconfident. Case i is row i of the task's data file.

Pickles are read with a restricted unpickler: plain containers, strings and numbers, and the
openai 0.x object class mapped to a plain dict (its constructor arguments — the object id and
the API key among them — are dropped). Any other class or function is refused, so a crafted
file cannot run code.

The reference's main runner (``src/run_main.py``) shared round prefixes between strategies in
a tree, as this project does (48 calls per case and society of 3 agents over 3 rounds; only
its ``run_strategy.py`` ran each strategy on its own, 120 calls), but it saved one complete
message list per strategy. Each strategy therefore gets its own tree nodes here
(``"010:01"``): analysis sees exactly the samples the reference's evaluation read, one file
per strategy.

MMLU answers are read with the case's option texts (``Task.parse_case``), as the reference's
rule needs them.
"""

from __future__ import annotations

import io
import json
import logging
import pickle
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from societies import __version__
from societies.errors import DataError, StoreError
from societies.society.agents import default_society_name
from societies.store.db import RunStore, now
from societies.store.records import CallKey, CallRecord, Outcome, Step
from societies.tasks.base import Case, Extraction, Task, get_task_class

log = logging.getLogger(__name__)

FILE_RE = re.compile(
    r"^(?P<k>\d+)_harmony_(?P<n>\d+)_agents_(?P<rounds>\d+)_turns_(?P<strategy>[01][01_]*?)"
    r"_strategy_case_(?P<case>\d+)(?P<token>_token)?\.pkl$"
)
PATTERNS = {"0": "debate", "1": "reflection"}


class _UsageRecord(dict[str, Any]):
    """Stands in for ``openai.openai_object.OpenAIObject`` while unpickling.

    Its ``__reduce__`` passes (id, api_key, api_version, api_type, organization, engine,
    response_ms) to the constructor — dropped here, so no key is ever kept — and the fields
    as state, which ``__setstate__`` keeps.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, Mapping):
            self.update(state)


def _bytes(*args: Any) -> bytes:
    """``bytes`` as a pickle may call it, but never ``bytes(n)``: a 20-byte pickle calling
    ``bytes(2**40)`` would allocate a terabyte."""
    if args and isinstance(args[0], int):
        raise pickle.UnpicklingError("refused bytes(n)")
    return bytes(*args)


_SAFE_BUILTINS = {
    "dict": dict, "list": list, "tuple": tuple, "set": set, "frozenset": frozenset,
    "str": str, "bytes": _bytes, "int": int, "float": float, "bool": bool, "complex": complex,
}  # fmt: skip
_USAGE_CLASSES = {
    ("openai.openai_object", "OpenAIObject"),
    ("openai.openai_response", "OpenAIResponse"),
}


class RestrictedUnpickler(pickle.Unpickler):
    """Admits plain containers, strings, numbers and the openai 0.x object (as a dict)."""

    def find_class(self, module: str, name: str) -> Any:
        if module in ("builtins", "__builtin__") and name in _SAFE_BUILTINS:
            return _SAFE_BUILTINS[name]
        if module == "collections" and name == "OrderedDict":
            return dict
        if (module, name) in _USAGE_CLASSES:
            return _UsageRecord
        raise pickle.UnpicklingError(f"refused to load {module}.{name}")

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("refused a persistent id")


def _plain(value: Any, done: dict[int, Any] | None = None, open_: set[int] | None = None) -> Any:
    """Usage records become plain dicts, recursively. A container shared by several parents
    is converted once (a pickle of shared references can describe 2^60 paths in a few KB),
    and one that contains itself is refused."""
    if not isinstance(value, dict | list | tuple):
        return value
    done = {} if done is None else done
    open_ = set() if open_ is None else open_
    key = id(value)
    if key in done:
        return done[key]
    if key in open_:
        raise ValueError("a container that contains itself")
    open_.add(key)
    if isinstance(value, dict):
        out: Any = {k: _plain(v, done, open_) for k, v in value.items()}
    else:
        out = [_plain(v, done, open_) for v in value]
    open_.discard(key)
    done[key] = out
    return out


def safe_load(path: Path) -> Any:
    """Unpickle ``path`` with :class:`RestrictedUnpickler`; a refusal is a ``DataError``."""
    try:
        data = path.read_bytes()
        return _plain(RestrictedUnpickler(io.BytesIO(data)).load())
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as exc:
        raise DataError(f"{path}: not a result pickle this importer accepts ({exc})") from None
    except (RecursionError, MemoryError) as exc:
        raise DataError(f"{path}: a pickle too deep or too large to import ({exc!r})") from None


@dataclass(frozen=True, slots=True)
class ResultFile:
    path: Path
    easy_going: int
    agents: int
    rounds: int
    strategy: str
    case: int


def scan(folder: Path) -> tuple[list[ResultFile], list[Path]]:
    """The result files of a folder (token files are found beside them) and the .pkl files
    that do not follow the layout."""
    found, other = [], []
    for path in sorted(folder.iterdir()):
        if path.suffix != ".pkl":
            continue
        match = FILE_RE.match(path.name)
        if match is None:
            other.append(path)
            continue
        if match["token"]:
            continue
        strategy = match["strategy"].replace("_", "")
        result = ResultFile(
            path, int(match["k"]), int(match["n"]), int(match["rounds"]), strategy,
            int(match["case"]),
        )  # fmt: skip
        if len(strategy) != result.rounds or result.easy_going > result.agents:
            raise DataError(f"{path}: strategy {strategy!r} does not fit {result.rounds} rounds")
        found.append(result)
    return found, other


def _messages(path: Path, data: Any, agents: int, rounds: int) -> list[list[dict[str, str]]]:
    if not isinstance(data, list) or len(data) != agents:
        raise DataError(f"{path}: expected a list of {agents} agents' message lists")
    out = []
    for a, messages in enumerate(data):
        if not isinstance(messages, list) or not all(
            isinstance(m, dict) and isinstance(m.get("content"), str) and m.get("role")
            for m in messages
        ):
            raise DataError(f"{path}: agent {a}: expected a list of {{role, content}} messages")
        if len(messages) > 4 + 2 * rounds or len(messages) < 2:
            raise DataError(f"{path}: agent {a}: {len(messages)} messages for {rounds} rounds")
        out.append([{"role": str(m["role"]), "content": str(m["content"])} for m in messages])
    return out


def _usages(path: Path, agents: int, answers: int) -> list[list[dict[str, int]]]:
    """Per agent: the usage of the role-play call (or zeros) then one per answer call.

    A list with one record per answer call means the role-play "ok" was not a model call; with
    one more, the first record is the role-play call's.
    """
    zero = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    if not path.exists():
        return [[zero] * (answers + 1) for _ in range(agents)]
    data = safe_load(path)
    if not isinstance(data, list) or len(data) != agents:
        raise DataError(f"{path}: expected a list of {agents} agents' usage lists")
    out = []
    for a, records in enumerate(data):
        if not isinstance(records, list):
            raise DataError(f"{path}: agent {a}: expected a list of usage records")
        usage = []
        for record in records:
            if not isinstance(record, dict):
                raise DataError(f"{path}: agent {a}: a usage record is not a mapping")
            record = record.get("usage", record)
            usage.append({k: int(record.get(k, 0) or 0) for k in zero})
        if len(usage) <= answers:
            usage = [zero, *usage, *[zero] * (answers - len(usage))]
        out.append(usage[-(answers + 1) :])
    return out


def _call_rows(
    result: ResultFile, repeat: int, case: Case, task: Task, model: str, invocation: int
) -> list[CallRecord]:
    messages = _messages(result.path, safe_load(result.path), result.agents, result.rounds)
    token_path = result.path.with_name(result.path.stem + "_token.pkl")
    usages = _usages(token_path, result.agents, result.rounds + 1)
    society = society_name(result)
    rows = []
    for a, convo in enumerate(messages):
        # (round, step, pattern, index of the reply in the conversation)
        calls: list[tuple[int, Step, str | None, int]] = [(0, "persona", None, 1)]
        calls += [(r, "answer", None if r == 0 else PATTERNS[result.strategy[r - 1]], 3 + 2 * r)
                  for r in range(result.rounds + 1)]  # fmt: skip
        for (r, step, pattern, at), usage in zip(calls, usages[a], strict=True):
            node = f"{result.strategy}:{result.strategy[:r]}"
            key = CallKey(repeat, case.id, society, node, a, step)
            asked = convo[:at]
            outcome: Outcome
            if at < len(convo):
                reply: str | None = convo[at]["content"]
                outcome, error = "ok", None
            else:
                reply, outcome, error = None, "context_exceeded", "not in the reference's result"
                asked = []
            answer = None
            if reply is not None and step == "answer":
                answer = task.parse_case(reply, case)
            correct = int(task.score(answer, case)) if step == "answer" else None
            p, c = usage["prompt_tokens"], usage["completion_tokens"]
            rows.append(
                CallRecord(key, r, pattern, None, asked, reply, answer, correct, p, c,
                           usage["total_tokens"] or p + c, 0, None, "machinesom", model, "{}", 1,
                           outcome, error, "", None, invocation, now())
            )  # fmt: skip
    return rows


def society_name(result: ResultFile) -> str:
    return default_society_name(traits(result))


def traits(result: ResultFile) -> list[str]:
    return ["easy-going"] * result.easy_going + ["overconfident"] * (
        result.agents - result.easy_going
    )


def import_machinesom(
    folders: Sequence[Path],
    *,
    task_name: str,
    data: Path,
    out: Path,
    model: str = "unknown",
    extraction: Extraction = "paper",
) -> tuple[int, int]:
    """Import result folders (one per repeat) into a new run store at ``out``.

    Returns (calls stored, result files read). Refuses an ``out`` that already holds a store.
    """
    try:
        task = get_task_class(task_name)(extraction)
    except KeyError as exc:
        raise DataError(str(exc.args[0])) from None
    cases = task.load(data)
    store_path = out / "store.sqlite"
    if store_path.exists():
        raise StoreError(f"{out}: already holds a run store; import into a new directory")
    plans = []
    for repeat, folder in enumerate(folders):
        if not folder.is_dir():
            raise DataError(f"{folder}: not a directory")
        found, other = scan(folder)
        if other:
            log.warning("%s: %d .pkl files do not follow the layout, skipped (e.g. %s)",
                        folder, len(other), other[0].name)  # fmt: skip
        if not found:
            raise DataError(f"{folder}: no result files named like {FILE_RE.pattern}")
        for result in found:
            if result.case >= len(cases):
                raise DataError(f"{result.path}: case {result.case}, but {data} has {len(cases)}")
        plans.append((repeat, found))
    # Read and check every file before the store exists: a bad file leaves nothing behind.
    nodes: list[tuple[int, str, str, str, int, str]] = []
    rows: list[CallRecord] = []
    agents: dict[tuple[str, int], str] = {}
    invocation = 1  # the first invocation of the new store
    for repeat, found in plans:
        for result in found:
            case = cases[result.case]
            society = society_name(result)
            nodes += [
                (repeat, case.id, society, result.strategy, r,
                 f"{result.strategy}:{result.strategy[:r]}")
                for r in range(result.rounds + 1)
            ]  # fmt: skip
            rows += _call_rows(result, repeat, case, task, model, invocation)
            for a, trait in enumerate(traits(result)):
                agents[(society, a)] = trait
    config = {"name": f"machinesom-{task_name}", "prompts": "machinesom",
              "task": {"name": task_name, "data": str(data), "extraction": extraction},
              "imported_from": [str(f) for f in folders]}  # fmt: skip
    store = RunStore(store_path)
    try:
        store.create_run(
            {"name": config["name"], "created_at": now(), "package_version": __version__,
             "config_json": json.dumps(config), "identity_json": json.dumps(config),
             "task": task_name, "extraction": extraction, "prompts": "machinesom",
             "source": f"machinesom import: {', '.join(str(f) for f in folders)}"}
        )  # fmt: skip
        store.begin_invocation(__version__, ["import", "machinesom"])
        store.put_cases(
            (c.id, c.index, json.dumps(c.fields, sort_keys=True, ensure_ascii=False)) for c in cases
        )
        store.put_agents(
            (s, a, f"agent{a}", t, None, "machinesom", model) for (s, a), t in agents.items()
        )
        store.put_strategy_nodes(nodes)
        for row in rows:
            store.add_call(row)
        store.end_invocation(invocation, len(rows), 0, "done")
    finally:
        store.close()
    return len(rows), sum(len(found) for _, found in plans)
