"""One writer per store: an advisory lock beside it, naming its holder.

The lock is an `flock` on `<store>.lock`, so the operating system releases it the moment its
holder dies, kill -9 included: a lock whose holder is dead is simply taken. The file keeps
the holder's pid, host and start time, for the message a second writer gets. Readers never
take it.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from pathlib import Path


class StoreLockedError(RuntimeError):
    """Another process is writing this store."""


class StoreLock:
    """An exclusive, non-blocking lock on the store at `store_path`; a context manager."""

    def __init__(self, store_path: str | Path):
        self.store_path = Path(store_path)
        self.path = self.store_path.with_name(self.store_path.name + ".lock")
        self._fd: int | None = None

    def holder(self) -> str:
        """Who holds the lock, as 'pid P on host H since T' (or 'unknown' when unreadable)."""
        # The holder writes its name just after it takes the lock: give it a moment to.
        for attempt in range(20):
            try:
                info = json.loads(self.path.read_text())
                return f"pid {info['pid']} on host {info['host']} since {info['since']}"
            except (OSError, ValueError, KeyError, TypeError):
                time.sleep(0.05)
        return "an unknown process"

    def acquire(self) -> "StoreLock":
        if self._fd is not None:
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StoreLockedError(f"{self.store_path} is being written by {self.holder()}; "
                                   "wait for it to finish or stop it") from None
        info = {"pid": os.getpid(), "host": socket.gethostname(),
                "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> "StoreLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
