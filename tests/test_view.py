"""``societies view`` in headless Chromium: a store of 100,800 calls, search, filters, transcript
URLs, next/previous, side by side; and a run's status moving from running to done live."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.cdp import Page, find_chromium, open_page
from tests.helpers import experiment, write
from tests.synthetic_store import build_store

PLANTED = "XYZZY-planted-needle"
CASES = 525  # x 4 societies x 48 calls = 100,800 calls
TOTAL = CASES * 4 * 8  # transcripts: case x society x strategy (one repeat)


@contextmanager
def serving(*paths: Path) -> Iterator[str]:
    """``societies view`` as a real process on a free port; stopped on exit."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "societies", "view", *map(str, paths), "--port", "0"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        found = re.search(r"http://127\.0\.0\.1:\d+/", line)
        assert found, f"viewer did not start: {line}{proc.stderr.read() if proc.poll() else ''}"
        yield found.group(0)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


def wait_for(page: Page, expression: str, seconds: float = 20) -> Any:
    """Poll a page expression until it is truthy (bounded)."""
    deadline = time.monotonic() + seconds
    while True:
        value = page.evaluate(expression)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {expression}")
        time.sleep(0.05)


def go(page: Page, hash_: str) -> None:
    """Navigate within the app; the old page's content is cleared so waits see the new one."""
    page.evaluate(
        "document.body.removeAttribute('data-list-ready');"
        f"document.getElementById('main').textContent = ''; location.hash = {json.dumps(hash_)}"
    )


def count(page: Page) -> int:
    return int(wait_for(page, "document.querySelector('#count[data-count]')?.dataset.count"))


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("view")
    assert build_store(root / "big", name="big", cases=CASES, planted=PLANTED) == 100_800
    build_store(root / "other", name="other", societies=1, cases=CASES, seed=1)
    return root


@pytest.fixture
def chromium() -> str:
    found = find_chromium()
    if found is None:
        pytest.skip("chromium is not installed (Debian: apt-get install chromium)")
    return found


def test_viewer_on_a_store_of_100k_calls(stores: Path, chromium: str, tmp_path: Path) -> None:
    shots = Path(os.environ.get("SOCIETIES_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    with serving(stores) as base:
        # Totals (planned calls, tokens) are counted in the background: poll until they are.
        deadline = time.monotonic() + 30
        while True:
            runs = {r["name"]: r for r in get(base + "api/runs")["runs"]}
            if all(r["calls_planned"] is not None for r in runs.values()):
                break
            assert time.monotonic() < deadline, runs
            time.sleep(0.05)
        big, other = runs["big"]["id"], runs["other"]["id"]
        assert runs["big"]["calls_done"] == runs["big"]["calls_planned"] == 100_800
        with open_page(chromium, tmp_path / "profile", base) as page:
            assert wait_for(page, "document.querySelectorAll('#runs tr[data-run]').length") == 2
            assert page.evaluate(
                "Array.from(document.querySelectorAll('[data-status]')).map(e => e.textContent)"
            ) == ["done", "done"]
            page.screenshot(shots / "view-runs.png")

            started = time.monotonic()
            go(page, f"#/run/{big}/transcripts")
            wait_for(page, "document.body.dataset.listReady")
            first_page = time.monotonic() - started
            print(f"first page of {TOTAL:,} transcripts (100,800 calls): {first_page:.2f}s")
            assert first_page < 10  # loose: the figure measured goes in the README
            assert page.evaluate("document.querySelectorAll('#list tr.item').length") == 50
            assert count(page) == TOTAL
            page.screenshot(shots / "view-list.png")

            # Search through the form as a user does: the planted reply is at node "01", which
            # the strategies 010 and 011 pass through.
            page.evaluate(
                f"document.getElementById('search').value = {json.dumps(PLANTED)};"
                "document.body.removeAttribute('data-list-ready');"
                "document.getElementById('list-controls').requestSubmit()"
            )
            wait_for(page, "document.body.dataset.listReady")
            assert count(page) == 2
            links = page.evaluate(
                "Array.from(document.querySelectorAll('#list tr.item'))"
                ".map(r => Array.from(r.cells).slice(0, 5).map(c => c.innerText).join(' '))"
            )
            assert links == ["1 0 c00524 s00-0eg 010", "2 0 c00524 s00-0eg 011"]
            # A question is searched too: "number 7?" is case c00007's alone.
            go(page, f"#/run/{big}/transcripts?q=number+7%3F")
            wait_for(page, "document.body.dataset.listReady")
            assert count(page) == 4 * 8

            # Each filter narrows the list, and ticking one through the form changes the URL.
            for name in ("wrong", "changed", "disagree", "parse", "context", "error"):
                go(page, f"#/run/{big}/transcripts?f={name}")
                wait_for(page, "document.body.dataset.listReady")
                n = count(page)
                assert 0 < n < TOTAL, (name, n)
                if name == "wrong":  # most agents wrong in the last round, row by row
                    shown = page.evaluate(
                        "Array.from(document.querySelectorAll('#list tr.item'))"
                        ".map(r => r.cells[5].innerText)"
                    )
                    assert len(shown) == 50 and set(shown) <= {"0/3", "1/3"}, shown
            go(page, f"#/run/{big}/transcripts")
            wait_for(page, "document.body.dataset.listReady")
            page.evaluate(
                "document.body.removeAttribute('data-list-ready');"
                "var b = document.querySelector('input[data-filter=parse]'); b.checked = true;"
                "b.dispatchEvent(new Event('change', {bubbles: true}))"
            )
            wait_for(page, "document.body.dataset.listReady")
            assert "f=parse" in page.evaluate("location.hash")

            # A transcript URL opens that transcript; question and choices come first.
            go(page, f"#/run/{big}/t?q={PLANTED}&t_repeat=0&t_case=c00524&t_society="
                     "s00-0eg&t_strategy=010&i=0")  # fmt: skip
            wait_for(page, "!!document.getElementById('transcript')")
            text = page.evaluate("document.getElementById('main').innerText")
            assert text.index("Question number 524?") < text.index(PLANTED)
            assert "three" in page.evaluate("document.getElementById('question').innerText")
            # 3 role-play turns + 3 agents x 4 rounds; each header has trait and model.
            assert page.evaluate("document.getElementById('transcript').dataset.callsShown") == (
                "15"
            )
            heads = page.evaluate(
                "Array.from(document.querySelectorAll('#transcript .turn'))"
                ".map(t => t.innerText.split('\\n').slice(0, 2).join(' | '))"
            )
            assert "agent 1 · agent1 | overconfident · sim:default" in heads
            page.screenshot(shots / "view-transcript.png")
            # Next within the search's list: the other strategy through node "01".
            page.evaluate("document.getElementById('main').dataset.old = '1'")
            nxt = wait_for(page, "document.getElementById('next')?.getAttribute('href')")
            assert "t_strategy=011" in nxt and "i=1" in nxt
            assert page.evaluate("document.getElementById('prev')") is None

            # Side by side: the same case in the other run, all-debate strategy.
            go(page, f"#/run/{big}/t?t_repeat=0&t_case=c00524&t_society=s00-0eg&t_strategy=010"
                     f"&vs_run={other}&vs_society=s00-0eg&vs_strategy=000")  # fmt: skip
            assert wait_for(page, "document.getElementById('compared')?.dataset.callsShown") == (
                "15"
            )
            titles = page.evaluate(
                "Array.from(document.querySelectorAll('.pane h3')).map(h => h.innerText)"
            )
            assert titles[0].startswith("big · s00-0eg · strategy 010")
            assert titles[1].startswith("other · s00-0eg · strategy 000")
            page.screenshot(shots / "view-side-by-side.png")

            go(page, f"#/run/{big}")
            wait_for(page, "document.querySelectorAll('#table2 tbody tr').length", 60)
            assert page.evaluate("document.querySelectorAll('#table2 tbody tr').length") == 8
            # Sorting by a society's column puts its best strategy first.
            page.evaluate("document.querySelectorAll('#table2 th')[1].click()")
            page.evaluate("document.querySelectorAll('#table2 th')[1].click()")
            first = page.evaluate(
                "document.querySelector('#table2 tbody td:nth-child(2)').className"
            )
            assert "best" in first
            wait_for(page, "Array.from(document.images).every(i => i.complete && i.naturalWidth)")
            page.screenshot(shots / "view-run.png")
            assert page.errors() == []
            external = [u for u in page.requested_urls() if not u.startswith((base, "data:"))]
            assert external == []


def test_status_moves_from_running_to_done(tmp_path: Path, chromium: str) -> None:
    exp = experiment(rounds=3, societies=[{"agents": 3, "easy_going": [0, 1, 2, 3]}])
    exp["concurrency"] = 4
    exp["model"] = {"backend": "sim", "name": "default", "options": {"latency_ms": 60}}
    file = write(tmp_path, exp)
    out = tmp_path / "runs" / "live"
    proc = subprocess.Popen(
        [sys.executable, "-m", "societies", "run", str(file), "--out", str(out), "--quiet"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not (out / "store.sqlite").exists():
            assert time.monotonic() < deadline and proc.poll() is None, "the run never started"
            time.sleep(0.05)
        with serving(tmp_path / "runs") as base, open_page(chromium, tmp_path / "p", base) as page:
            status: Callable[[], Any] = lambda: page.evaluate(  # noqa: E731
                "document.querySelector('[data-status]')?.dataset.status"
            )
            seen = [wait_for(page, "document.querySelector('[data-status]')?.dataset.status")]
            deadline = time.monotonic() + 60
            while seen[-1] != "done" and time.monotonic() < deadline:
                time.sleep(0.1)
                value = status()
                if value != seen[-1]:
                    seen.append(value)
            assert seen[0] == "running" and seen[-1] == "done", seen
            assert proc.wait(timeout=30) == 0
            wait_for(page, "document.querySelector('#runs td.num').innerText.includes('768 / 768')")
            assert page.errors() == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_status_of_an_interrupted_and_a_stopped_run(tmp_path: Path) -> None:
    import sqlite3

    from societies.store import queries
    from societies.view.runs import status

    build_store(tmp_path / "a", cases=2, invocation_status="stopped")
    store = tmp_path / "a" / "store.sqlite"
    facts = queries.run_facts(store)
    planned = queries.planned(store)
    assert planned == facts.calls_done == 2 * 4 * 48
    assert status(facts, planned, locked=False)[0] == "incomplete"  # stopped, all calls stored
    con = sqlite3.connect(store)
    with con:  # a run that was killed: its invocation never finished
        con.execute(
            "INSERT INTO invocations (started_at, package_version) VALUES (?, 'x')",
            ("2026-01-01T00:00:00+00:00",),
        )
    con.close()
    state, why = status(queries.run_facts(store), planned, locked=False)
    assert state == "incomplete" and "interrupted" in why


#: A process that holds a run directory's lock as a run does, says so, and waits to be killed.
_HOLDER = """
import sys
from pathlib import Path
from societies.store.lock import RunLock
lock = RunLock(Path(sys.argv[1])).acquire()
print("held", flush=True)
sys.stdin.read()
"""


def test_status_is_running_while_a_process_holds_the_lock(tmp_path: Path) -> None:
    """Running is decided by the run directory's lock: held by a live process, running;
    after that process is SIGKILLed (its invocation never ended), interrupted, at once."""
    import signal
    import sqlite3

    from societies.store import queries
    from societies.store.lock import LOCK_FILE, is_held
    from societies.view.runs import status

    run_dir = tmp_path / "a"
    build_store(run_dir, cases=2)
    store = run_dir / "store.sqlite"
    assert not is_held(run_dir) and not (run_dir / LOCK_FILE).exists()  # no file made
    con = sqlite3.connect(store)
    with con:  # the holder's invocation, started and never ended
        con.execute(
            "INSERT INTO invocations (started_at, package_version) VALUES (?, 'x')",
            ("2026-01-01T00:00:00+00:00",),
        )
    con.close()
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(run_dir)], stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        facts, planned = queries.run_facts(store), queries.planned(store)
        assert is_held(run_dir)
        assert is_held(run_dir)  # probing did not take the lock away from its holder
        state, _ = status(facts, planned, locked=is_held(run_dir))
        assert state == "running"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert (run_dir / LOCK_FILE).exists() and not is_held(run_dir)
    state, why = status(queries.run_facts(store), planned, locked=is_held(run_dir))
    assert state == "incomplete" and "interrupted" in why


def test_view_without_a_store_is_one_line(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from societies.cli.main import cli

    result = CliRunner().invoke(cli, ["view", str(tmp_path)])
    assert result.exit_code == 2
    assert "no run store" in result.output and "Traceback" not in result.output


def test_api_refuses_bad_requests_clearly(stores: Path) -> None:
    import urllib.error

    with serving(stores / "other") as base:
        rid = get(base + "api/runs")["runs"][0]["id"]
        for path, code in (
            ("api/runs/0123456789", 404),
            (f"api/runs/{rid}/transcripts?f=nonsense", 400),
            (f"api/runs/{rid}/transcripts?offset=x", 400),
            (f"api/runs/{rid}/transcript?repeat=0&case=nope&society=s00-0eg&strategy=000", 404),
            (f"api/runs/{rid}/transcript?case=c00001", 400),
        ):
            with pytest.raises(urllib.error.HTTPError) as info:
                get(base + path)
            assert info.value.code == code, path
        # A search text with LIKE's wildcards matches them literally.
        assert get(base + f"api/runs/{rid}/count?q=%25")["count"] == 0
        assert get(base + f"api/runs/{rid}/count?q=_")["count"] == 0
