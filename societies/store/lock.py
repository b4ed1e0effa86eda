"""One invocation per run directory: an OS file lock on ``<run dir>/.lock``.

Two ``societies run`` into one directory would both make every call (paying twice) and race
to create the store. The lock is ``flock`` on a file beside the store: the kernel releases it
when the holding process dies, however it dies, so a stale holder (a SIGKILLed run) is taken
over without guessing from pids; the pid, host and start time written into the file only
serve the message the second invocation prints.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from societies.errors import StoreError

LOCK_FILE = ".lock"
#: How long ``acquire`` keeps trying before it refuses: a reader probing the lock
#: (``is_held``) holds it for microseconds, which must not turn a run away.
ACQUIRE_PATIENCE = 0.25


class RunLock:
    """Held while an invocation may write to the run directory's store."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StoreError(
                f"{self.path}: cannot lock the run directory ({exc.strerror})"
            ) from None
        try:
            _flock_patiently(fd)
        except BlockingIOError:
            os.close(fd)
            raise StoreError(
                f"{self.path.parent}: in use by another invocation ({holder(self.path)}); "
                "wait for it to finish or stop it"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        self._fd = fd
        return self

    def release(self, *, remove: bool = False) -> None:
        """Release the lock; ``remove`` also deletes the file (while still holding it), for
        an invocation that made it and was then refused, so the directory is as it was."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.ftruncate(fd, 0)
            if remove:
                self.path.unlink(missing_ok=True)
            os.close(fd)  # closing the descriptor releases the flock

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def _flock_patiently(fd: int) -> None:
    """Take the lock, retrying for ``ACQUIRE_PATIENCE`` seconds: a probe's instant is waited
    out, a real holder (an invocation lasts seconds at least) is not."""
    deadline = time.monotonic() + ACQUIRE_PATIENCE
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.02)


def is_held(run_dir: Path) -> bool:
    """Whether another process holds the run directory's lock (a run or a re-score writing).

    A non-blocking probe: a shared lock taken and dropped at once on a read-only descriptor,
    so it works on a read-only directory, never creates the lock file (no file: nobody ever
    locked it, or it was removed) and never waits. The kernel drops a dead holder's lock, so
    a killed run reads as not held, with no guess from timestamps or pids.
    """
    try:
        fd = os.open(run_dir / LOCK_FILE, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # closing the descriptor drops the probe's lock, if it took it
    return False


def holder(path: Path) -> str:
    """Who holds the lock, as written by the holder (best effort: it may be mid-write)."""
    try:
        info = json.loads(path.read_text(encoding="utf-8") or "{}")
        return f"pid {info['pid']} on {info['host']} since {info['started_at']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "holder unknown"
