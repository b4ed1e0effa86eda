"""Faults against serve-sim over real HTTP, with `societies run` as a real process: calls paid
twice after SIGKILL, seconds to give up on a dead server, and slowdown under hangs and 429s.

    python bench/faults.py                       # this checkout
    python bench/faults.py --code /tmp/main      # another checkout of the code (PYTHONPATH)
    python bench/faults.py --only kill,dead --runs 5

Prints one line per measurement (medians over --runs) and the load average. A benchmark, not
a test: the machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from societies.backends.sim_server import Faults, SimServer

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "experiments" / "data" / "quickstart_mmlu.jsonl"


def experiment(folder: Path, url: str, *, cases: int, concurrency: int) -> Path:
    """3 agents, 3 rounds (machinesom): 48 calls per case and society, 2 societies."""
    data: dict[str, Any] = {
        "name": "faults",
        "task": {"name": "mmlu", "data": str(DATA), "cases": cases},
        "prompts": "machinesom",
        "model": {
            "backend": "openai",
            "name": "sim-model",
            "options": {"base_url": url, "api_key_env": None},
        },
        "societies": [{"agents": 3, "easy_going": [0, 2]}],
        "rounds": 3,
        "strategies": "all",
        "concurrency": concurrency,
    }
    file = folder / "faults.yaml"
    file.write_text(yaml.safe_dump(data), encoding="utf-8")
    return file


def societies(code: Path, file: Path, out: Path) -> list[str]:
    del code  # the checkout is chosen through PYTHONPATH (env below)
    return [sys.executable, "-m", "societies", "run", str(file), "--out", str(out), "--quiet"]


def env_for(code: Path) -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(code), PYTHONUNBUFFERED="1")


#: Every process runs from the checkout's folder: `python -m` puts the current directory first
#: on sys.path, ahead of PYTHONPATH.
def cwd_for(code: Path) -> str:
    return str(code)


def stored(out: Path) -> int:
    db = out / "store.sqlite"
    if not db.exists():
        return 0
    try:
        con = sqlite3.connect(db, timeout=10)
        try:
            return int(con.execute("SELECT COUNT(*) FROM calls").fetchone()[0])
        finally:
            con.close()
    except sqlite3.OperationalError:
        return 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def paid_twice_after_sigkill(code: Path, tmp: Path) -> int:
    """Requests the server answered beyond the calls the run needed, after one SIGKILL."""
    with SimServer(Faults(latency_ms=20)).start_in_thread() as server:
        file = experiment(tmp, server.base_url, cases=6, concurrency=32)
        total = 48 * 2 * 6
        out = tmp / "kill"
        proc = subprocess.Popen(
            societies(code, file, out), env=env_for(code), cwd=cwd_for(code),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        while server.stats["answered"] < total // 3 and proc.poll() is None:
            time.sleep(0.002)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        subprocess.run(
            societies(code, file, out), env=env_for(code), cwd=cwd_for(code), capture_output=True
        )
        assert stored(out) == total, "the resumed run did not finish"
        return int(server.stats["answered"]) - total


def seconds_to_give_up_no_server(code: Path, tmp: Path, cap: float) -> float:
    file = experiment(tmp, f"http://127.0.0.1:{free_port()}/v1", cases=2, concurrency=16)
    started = time.monotonic()
    try:
        subprocess.run(
            societies(code, file, tmp / "dead"), env=env_for(code), cwd=cwd_for(code),
            capture_output=True, timeout=cap,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return float("inf")
    return time.monotonic() - started


def seconds_to_give_up_server_killed(code: Path, tmp: Path, cap: float) -> float:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "societies", "serve-sim", "--port", str(port),
         "--latency-ms", "20"],
        env=env_for(REPO), cwd=cwd_for(REPO), stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    assert server.stdout is not None
    server.stdout.readline()
    file = experiment(tmp, f"http://127.0.0.1:{port}/v1", cases=8, concurrency=16)
    out = tmp / "killed"
    run = subprocess.Popen(
        societies(code, file, out), env=env_for(code), cwd=cwd_for(code),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    while stored(out) < 100 and run.poll() is None:
        time.sleep(0.01)
    server.kill()
    server.wait()
    killed = time.monotonic()
    try:
        run.wait(timeout=cap)
    except subprocess.TimeoutExpired:
        run.kill()
        run.wait()
        return float("inf")
    return time.monotonic() - killed


def run_seconds(code: Path, tmp: Path, faults: Faults, cap: float) -> float:
    with SimServer(faults).start_in_thread() as server:
        file = experiment(tmp, server.base_url, cases=4, concurrency=16)
        started = time.monotonic()
        try:
            subprocess.run(
                societies(code, file, tmp / f"run{time.monotonic_ns()}"), env=env_for(code),
                cwd=cwd_for(code), capture_output=True, timeout=cap,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            return float("inf")
        return time.monotonic() - started


def fmt(values: list[float]) -> str:
    shown = ", ".join("capped" if v == float("inf") else f"{v:.1f}" for v in values)
    return f"median {statistics.median(values):.1f} ({shown})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--code", type=Path, default=REPO, help="checkout to run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", default="kill,dead,killed,hang,429")
    parser.add_argument("--cap", type=float, default=150.0, help="seconds before giving up")
    args = parser.parse_args()
    only = set(args.only.split(","))
    code = args.code.resolve()
    print(f"code: {code}; load average: {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)

        def scratch(name: str, i: int) -> Path:
            folder = tmp / f"{name}{i}"
            folder.mkdir()
            return folder

        if "kill" in only:
            twice = [paid_twice_after_sigkill(code, scratch("k", i)) for i in range(args.runs)]
            print(f"calls paid twice after SIGKILL (32 in flight): {twice}, max {max(twice)}")
        if "dead" in only:
            dead = [
                seconds_to_give_up_no_server(code, scratch("d", i), args.cap)
                for i in range(args.runs)
            ]
            print(f"seconds to give up, no server: {fmt(dead)}")
        if "killed" in only:
            killed = [
                seconds_to_give_up_server_killed(code, scratch("s", i), args.cap)
                for i in range(args.runs)
            ]
            print(f"seconds to give up, server killed mid-run: {fmt(killed)}")
        if "hang" in only or "429" in only:
            clean = [
                run_seconds(code, scratch("c", i), Faults(latency_ms=50), args.cap)
                for i in range(args.runs)
            ]
            print(f"fault-free run (384 calls, 50 ms latency): {fmt(clean)} s")
            base = statistics.median(clean)
            for name, faults in (
                ("hang", Faults(latency_ms=50, share_hang=0.05, seed=1)),
                ("429", Faults(latency_ms=50, share_429=0.30, retry_after=1, seed=1)),
            ):
                if name not in only:
                    continue
                times = [
                    run_seconds(code, scratch(name, i), faults, args.cap) for i in range(args.runs)
                ]
                slow = statistics.median(times) / base
                label = "5% hung requests" if name == "hang" else "30% 429s (Retry-After 1 s)"
                print(f"{label}: {fmt(times)} s, {slow:.1f}x the fault-free run")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
