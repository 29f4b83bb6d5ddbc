"""An exclusive lock on a file across processes (``fcntl.flock``; ``msvcrt`` on Windows) and threads: one
process downloads or converts a file while the others wait, then use it."""

from __future__ import annotations

import errno
import os
import sys
import threading
import time
from pathlib import Path

from .errors import DownloadError
from .progress import show_progress

LOCK_TIMEOUT = 3600.0  # seconds to wait for another process's download of the same file
LOCK_POLL = 0.1

# In-process lock per target: flock is per open file description, so threads of one process need their own.
_thread_locks: dict[str, threading.Lock] = {}
_thread_locks_guard = threading.Lock()



def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


class FileLock:
    """Exclusive lock on ``path`` across processes (``fcntl.flock``) and threads.

    The lock file is removed on release. A waiter that acquired the lock on a file that was removed (or
    replaced) meanwhile notices it (inode check) and locks the current file instead, so at most one
    holder exists at any time and no lock file is left behind.
    """

    def __init__(self, path: Path, *, label: str, progress: bool | None, timeout: float | None = None):
        self.path = path
        self.label = label
        self.progress = progress
        self.timeout = LOCK_TIMEOUT if timeout is None else timeout
        self._fd: int | None = None
        with _thread_locks_guard:
            self._tlock = _thread_locks.setdefault(str(path), threading.Lock())

    def __enter__(self):
        deadline = time.monotonic() + self.timeout
        if not self._tlock.acquire(timeout=max(self.timeout, 0)):
            raise DownloadError(self._timeout_message())
        try:
            self._acquire_file(deadline)
        except BaseException:
            self._tlock.release()
            raise
        return self

    def __exit__(self, *exc):
        try:
            if self._fd is not None:
                _unlink(self.path)  # while still holding it (see the class docstring)
                _unlock(self._fd)
                os.close(self._fd)
                self._fd = None
        finally:
            self._tlock.release()

    def _timeout_message(self) -> str:
        return (f"timed out after {self.timeout:.0f} s waiting for another process downloading "
                f"{self.label} (lock file {str(self.path)!r})")

    def _acquire_file(self, deadline: float) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        told = False
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                while not _try_lock(fd):
                    if time.monotonic() >= deadline:
                        raise DownloadError(self._timeout_message())
                    if not told and show_progress(self.progress):
                        print(f"waiting for another process downloading {self.label} ...", file=sys.stderr)
                        told = True
                    time.sleep(LOCK_POLL)
                try:
                    same = os.path.samestat(os.fstat(fd), os.stat(self.path))
                except FileNotFoundError:
                    same = False
            except BaseException:
                os.close(fd)
                raise
            if same:
                self._fd = fd
                return
            _unlock(fd)  # the file we locked was removed by its previous holder: lock the new one
            os.close(fd)


try:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                return False
            raise

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)

except ImportError:  # Windows
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
