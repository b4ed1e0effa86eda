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
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from societies.errors import StoreError

LOCK_FILE = ".lock"


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
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
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


def holder(path: Path) -> str:
    """Who holds the lock, as written by the holder (best effort: it may be mid-write)."""
    try:
        info = json.loads(path.read_text(encoding="utf-8") or "{}")
        return f"pid {info['pid']} on {info['host']} since {info['started_at']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "holder unknown"
