"""`societies reproduce paper` through the openai backend, over real HTTP to serve-sim:
it completes, and a run interrupted midway resumes without asking any stored call again."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from societies.backends.sim_server import SimServer
from societies.presets import paper_files

#: Planned calls of every preset at --limit 2 (2 cases x 5 repeats), by the call formula:
#: main and alternatives 48 per case, society and repeat, for 4 and 1 societies x 3 tasks;
#: rounds 3 x (1 + 69 distinct prefixes); agents sum over its 42 societies of n x 16.
EXPECTED = 3 * 48 * 4 * 10 + 3 * (1 + 69) * 10 + 263 * 16 * 10 + 3 * 48 * 10


def stored(out: Path, sql: str) -> int:
    total = 0
    for db in out.rglob("store.sqlite"):
        con = sqlite3.connect(db, timeout=10)
        try:
            total += int(con.execute(sql).fetchone()[0] or 0)
        except sqlite3.OperationalError:
            pass  # created a moment ago, schema not yet in place
        finally:
            con.close()
    return total


def test_reproduce_over_http_interrupted_and_resumed(tmp_path: Path) -> None:
    server = SimServer(experiments=paper_files()).start_in_thread()
    out = tmp_path / "paper"
    args = [
        sys.executable, "-m", "societies", "reproduce", "paper", "--limit", "2",
        "--model", "openai:sim-model", "--base-url", server.base_url,
        "--out", str(out), "--quiet", "--concurrency", "64",
    ]  # fmt: skip
    env = dict(os.environ, OPENAI_API_KEY="sk-loopback-test")
    try:
        first = subprocess.Popen(
            args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        deadline = time.monotonic() + 120
        while stored(out, "SELECT COUNT(*) FROM calls") < 3000:
            assert first.poll() is None, first.stderr.read() if first.stderr else ""
            assert time.monotonic() < deadline, "no progress within 120 s"
            time.sleep(0.05)
        first.send_signal(signal.SIGINT)
        _, err = first.communicate(timeout=60)
        assert first.returncode == 130, err
        assert "interrupted" in err and "Traceback" not in err
        kept = stored(out, "SELECT COUNT(*) FROM calls")
        made_first = stored(out, "SELECT SUM(calls_made) FROM invocations")
        requests_before = server.stats["requests"]
        assert 3000 <= kept < EXPECTED
        # Every call the server answered before the interrupt is in a store (none lost).
        assert requests_before - kept <= 64

        second = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
        assert second.returncode == 0, second.stderr
        made_again = server.stats["requests"] - requests_before
    finally:
        server.stop_thread()
    assert stored(out, "SELECT COUNT(*) FROM calls") == EXPECTED
    assert stored(out, "SELECT COUNT(*) FROM calls WHERE outcome != 'ok'") == 0
    # The resumed invocation asked the server only for calls not stored: no call twice.
    resumed = stored(out, "SELECT SUM(calls_made) FROM invocations") - made_first
    assert made_first == kept  # the interrupted invocation accounted for what it stored
    assert made_again == resumed == EXPECTED - kept
    assert (out / "report.html").stat().st_size > 100_000
