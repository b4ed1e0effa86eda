"""Resume after fixing the server: transport options (base_url, timeout, retries, pacing) are
not part of a run's identity; what selects the replies still is."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from societies.backends.sim_server import SimServer
from tests.backend_helpers import write_experiment


def societies(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "societies", *args],
        capture_output=True, text=True, timeout=120, env=dict(os.environ, OPENAI_API_KEY="sk-x"),
    )  # fmt: skip


def test_resume_after_changing_server_and_timeouts(tmp_path: Path) -> None:
    first_server = SimServer().start_in_thread()
    second_server = SimServer().start_in_thread()
    out = tmp_path / "run"
    try:
        options = {"base_url": first_server.base_url, "timeout": 30}
        model = {"backend": "openai", "name": "sim-model", "options": options}
        file = write_experiment(tmp_path, cases=3, model=model, name="a")
        first = societies("run", str(file), "--out", str(out), "--quiet", "--limit", "1")
        assert first.returncode == 0, first.stderr
        per_case = first_server.stats["requests"]
        assert per_case > 0

        options = {
            "base_url": second_server.base_url, "timeout": 60, "max_attempts": 3, "rpm": 6000,
        }  # fmt: skip
        model = {"backend": "openai", "name": "sim-model", "options": options}
        file = write_experiment(tmp_path, cases=3, model=model, name="a")
        second = societies("run", str(file), "--out", str(out), "--quiet")
        assert second.returncode == 0, second.stderr
        # Only the two cases not yet stored went to the new server.
        assert second_server.stats["requests"] == 2 * per_case
        assert first_server.stats["requests"] == per_case
        assert (
            "resuming with changed transport settings: model.options.base_url, "
            "model.options.max_attempts, model.options.rpm, model.options.timeout"
        ) in second.stderr
    finally:
        first_server.stop_thread()
        second_server.stop_thread()


def test_changing_what_selects_replies_is_still_refused(tmp_path: Path) -> None:
    out = tmp_path / "run"
    model = {"backend": "sim", "name": "default", "options": {"latency_ms": 0}}
    file = write_experiment(tmp_path, cases=1, model=model, name="a")
    assert societies("run", str(file), "--out", str(out), "--quiet").returncode == 0
    # Latency is transport: resumes.
    model["options"] = {"latency_ms": 1}
    file = write_experiment(tmp_path, cases=1, model=model, name="a")
    again = societies("run", str(file), "--out", str(out), "--quiet")
    assert again.returncode == 0, again.stderr
    # Accuracy changes the replies: refused, naming the field.
    model["options"] = {"latency_ms": 1, "default_accuracy": 0.9}
    file = write_experiment(tmp_path, cases=1, model=model, name="a")
    refused = societies("run", str(file), "--out", str(out), "--quiet")
    assert refused.returncode == 2
    assert "holds a run of a different experiment (changed: model)" in refused.stderr
