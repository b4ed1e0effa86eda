"""``societies view``: an aiohttp app on 127.0.0.1 over run stores, read-only.

The page is one static HTML file with plain JavaScript (shipped in the package, no build step)
that talks to a small JSON API. Store reads run in worker threads so a slow query never stalls
the server; the analysis behind Table 2 and the figures is computed once per state of a run
(its call count and last invocation) and kept.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import sqlite3
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd
from aiohttp import web

from societies.store import queries
from societies.store.db import STORE_FILE
from societies.store.lock import is_held
from societies.store.queries import TranscriptQuery, TranscriptRef
from societies.view.runs import TotalsCache, cost, status

log = logging.getLogger(__name__)

_STATIC = ("index.html", "app.js", "app.css")
_TYPES = {"html": "text/html", "js": "text/javascript", "css": "text/css"}


def find_stores(paths: Sequence[Path]) -> list[Path]:
    """Store files under the given run directories or their parents (two levels down)."""
    found: list[Path] = []
    for path in paths:
        if path.is_file():
            found.append(path)
        elif (path / STORE_FILE).is_file():
            found.append(path / STORE_FILE)
        else:
            found.extend(sorted(path.glob(f"*/{STORE_FILE}")))
            found.extend(sorted(path.glob(f"*/*/{STORE_FILE}")))
    return list(dict.fromkeys(p.resolve() for p in found))


def run_id(store: Path) -> str:
    return hashlib.sha1(str(store).encode()).hexdigest()[:10]


def _json_value(value: Any) -> Any:
    """A table cell as JSON: NaN and NA become null, numpy scalars plain numbers."""
    if value is None or (isinstance(value, float) and value != value) or value is pd.NA:
        return None
    return value.item() if hasattr(value, "item") else value


@dataclass
class _Cached:
    key: tuple[Any, ...]
    value: Any


class Viewer:
    """The app's state: where to look for runs, and what is cached per run."""

    def __init__(self, paths: Sequence[Path]) -> None:
        self.paths = [Path(p) for p in paths]
        self.stores: dict[str, Path] = {}
        self.totals = TotalsCache()
        self._analysis: dict[str, _Cached] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def scan(self) -> dict[str, Path]:
        self.stores = {run_id(p): p for p in find_stores(self.paths)}
        return self.stores

    def store(self, rid: str) -> Path:
        if rid not in self.stores:
            self.scan()
        if rid not in self.stores:
            raise web.HTTPNotFound(text=f"no run {rid}")
        return self.stores[rid]

    def overview(self, rid: str) -> dict[str, Any]:
        """A run's row in the list: cheap facts now, totals as last computed (None at first
        on a big store; the page polls)."""
        path = self.stores[rid]
        run = queries.run_facts(path)
        totals = self.totals.get(path, run)
        planned = totals.planned if totals else None
        state, why = status(run, planned, locked=is_held(path.parent))
        return {
            "id": rid, "path": str(path.parent), "name": run.name, "task": run.task,
            "prompts": run.prompts, "models": run.agent_models, "societies": run.societies,
            "calls_done": run.calls_done, "calls_planned": planned, "status": state, "why": why,
            "cost": cost(run.config, totals.rows()) if totals else None,
            "outcomes": totals.outcomes() if totals else None,
            "created_at": run.created_at, "last_call_at": run.last_call_at,
            "invocations": [asdict(i) for i in run.invocations],
        }  # fmt: skip

    def analysis_tables(self, rid: str) -> dict[str, Any]:
        """Table 2 (long form with n per cell) and rendered figures, once per run state."""
        from societies.analysis.completeness import cell_counts
        from societies.analysis.figures import render
        from societies.analysis.load import load_run
        from societies.analysis.tables import table2_long

        path = self.stores[rid]
        key = (queries.call_count(path), *queries.invocation_marker(path))
        cached = self._analysis.get(rid)
        if cached and cached.key == key:
            return dict(cached.value)
        analysis = load_run(path)
        long = table2_long(analysis)
        counts = cell_counts(analysis)
        long = long.merge(counts, on=["run", "society", "strategy"], how="left")
        societies = analysis.society_order(next(iter(analysis.runs)))
        columns = ["strategy", "society", "mean", "std", "mark", "n", "planned", "incomplete",
                   "n_repeats", "W", "W_of"]  # fmt: skip
        rows: list[dict[str, Any]] = [
            {str(k): _json_value(v) for k, v in row.items()}
            for row in long[columns].to_dict("records")
        ]
        figures = {name: f["png"] for name, f in render(analysis, formats=("png",)).items()}
        value = {"table2": rows, "societies": societies, "figures": figures}
        self._analysis[rid] = _Cached(key, value)
        return value

    def lock(self, rid: str) -> asyncio.Lock:
        return self._locks.setdefault(rid, asyncio.Lock())


_VIEWER = web.AppKey("viewer", Viewer)


def _query(request: web.Request) -> TranscriptQuery:
    q = request.query
    filters = tuple(f for f in q.get("f", "").split(",") if f)
    unknown = [f for f in filters if f not in queries.FILTERS]
    if unknown:
        raise web.HTTPBadRequest(text=f"unknown filter: {', '.join(unknown)}")
    repeat = q.get("repeat")
    return TranscriptQuery(
        q=q.get("q", ""),
        filters=filters,
        repeat=int(repeat) if repeat not in (None, "") else None,
        case_id=q.get("case") or None,
        society=q.get("society") or None,
        strategy=q.get("strategy") or None,
    )


def _int(request: web.Request, name: str, default: int) -> int:
    try:
        return int(request.query.get(name, default))
    except ValueError:
        raise web.HTTPBadRequest(text=f"{name} must be a whole number") from None


async def _static(request: web.Request) -> web.Response:
    name = request.match_info.get("name", "index.html")
    if name not in _STATIC:
        raise web.HTTPNotFound()
    text = (resources.files("societies.view") / "static" / name).read_text(encoding="utf-8")
    return web.Response(text=text, content_type=_TYPES[name.rsplit(".", 1)[1]])


async def _runs(request: web.Request) -> web.Response:
    viewer = request.app[_VIEWER]

    def collect() -> list[dict[str, Any]]:
        out = []
        for rid in viewer.scan():
            try:
                out.append(viewer.overview(rid))
            except (LookupError, sqlite3.Error) as exc:
                out.append({"id": rid, "path": str(viewer.stores[rid].parent),
                            "status": "unreadable", "why": str(exc)})  # fmt: skip
        return out

    return web.json_response({"runs": await asyncio.to_thread(collect)})


async def _run(request: web.Request) -> web.Response:
    viewer = request.app[_VIEWER]
    rid = request.match_info["rid"]
    path = viewer.store(rid)

    def collect() -> dict[str, Any]:
        data = viewer.overview(rid)
        data["choices"] = queries.choices(path)
        data["filters"] = {name: label for name, (label, _sql) in queries.FILTERS.items()}
        return data

    return web.json_response(await asyncio.to_thread(collect))


async def _transcripts(request: web.Request) -> web.Response:
    viewer = request.app[_VIEWER]
    path = viewer.store(request.match_info["rid"])
    query = _query(request)
    offset = max(0, _int(request, "offset", 0))
    limit = min(200, max(1, _int(request, "limit", 50)))
    refs, more = await asyncio.to_thread(queries.transcripts, path, query, offset, limit)
    items = [asdict(r.ref) | {"answers": r.last_answers, "correct": r.last_correct,
                              "problems": r.problems} for r in refs]  # fmt: skip
    return web.json_response({"items": items, "more": more, "offset": offset})


async def _count(request: web.Request) -> web.Response:
    viewer = request.app[_VIEWER]
    path = viewer.store(request.match_info["rid"])
    n = await asyncio.to_thread(queries.count_transcripts, path, _query(request))
    return web.json_response({"count": n})


async def _transcript(request: web.Request) -> web.Response:
    viewer = request.app[_VIEWER]
    path = viewer.store(request.match_info["rid"])
    q = request.query
    try:
        ref = TranscriptRef(int(q["repeat"]), q["case"], q["society"], q["strategy"])
    except (KeyError, ValueError):
        raise web.HTTPBadRequest(text="need repeat, case, society and strategy") from None
    found = await asyncio.to_thread(queries.transcript, path, ref)
    if found is None:
        raise web.HTTPNotFound(text="no such transcript in this run")
    return web.json_response(asdict(found))


async def _tables(request: web.Request) -> web.Response:
    viewer = request.app[_VIEWER]
    rid = request.match_info["rid"]
    viewer.store(rid)
    async with viewer.lock(rid):
        try:
            data = await asyncio.to_thread(viewer.analysis_tables, rid)
        except Exception as exc:  # a run with nothing to analyse yet still has a page
            log.info("run %s: no tables yet (%s)", rid, exc)
            return web.json_response({"table2": [], "societies": [], "figures": [],
                                      "error": str(exc)})  # fmt: skip
    return web.json_response({**data, "figures": sorted(data["figures"])})


async def _figure(request: web.Request) -> web.Response:
    viewer = request.app[_VIEWER]
    rid = request.match_info["rid"]
    viewer.store(rid)
    async with viewer.lock(rid):
        data = await asyncio.to_thread(viewer.analysis_tables, rid)
    png = data["figures"].get(request.match_info["name"])
    if png is None:
        raise web.HTTPNotFound()
    return web.Response(body=png, content_type="image/png")


def make_app(paths: Sequence[Path]) -> web.Application:
    app = web.Application()
    viewer = Viewer(paths)
    viewer.scan()
    app[_VIEWER] = viewer

    async def close(_app: web.Application) -> None:
        viewer.totals.close()

    app.on_cleanup.append(close)
    app.router.add_get("/", _static)
    app.router.add_get("/static/{name}", _static)
    app.router.add_get("/api/runs", _runs)
    app.router.add_get("/api/runs/{rid}", _run)
    app.router.add_get("/api/runs/{rid}/transcripts", _transcripts)
    app.router.add_get("/api/runs/{rid}/count", _count)
    app.router.add_get("/api/runs/{rid}/transcript", _transcript)
    app.router.add_get("/api/runs/{rid}/tables", _tables)
    app.router.add_get("/api/runs/{rid}/figures/{name}.png", _figure)
    return app
