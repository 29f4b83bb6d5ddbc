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
from .files import cache_error
from .progress import seconds, show_progress

# A waiter gives up when the lock's holder has shown no progress for this many seconds. The holder shows
# progress by touching its lock file (heartbeat(): called by the transport for every block received and every
# attempt, and between the steps of a conversion). Its silent phases are bounded by the transport (connect 15 s
# + read 60 s per attempt, then at most 30 s of backoff: under two minutes; a trickle is abandoned after
# transport.MIN_RATE_WINDOW), so 300 s of silence means that it hangs.
LOCK_TIMEOUT = 300.0
LOCK_POLL = 0.1
HEARTBEAT_INTERVAL = 1.0  # the holder touches its lock file at most this often (seconds)

# In-process lock per target: flock is per open file description, so threads of one process need their own.
_thread_locks: dict[str, threading.Lock] = {}
_thread_locks_guard = threading.Lock()
_held = threading.local()  # .locks: the FileLocks the current thread holds


def heartbeat() -> None:
    """Tell whoever waits for the locks the current thread holds that it is making progress (cheap: the lock
    files are touched at most every :data:`HEARTBEAT_INTERVAL` seconds)."""
    for lock in getattr(_held, "locks", ()):
        lock._touch()


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


class FileLock:
    """Exclusive lock on ``path`` across processes (``fcntl.flock``) and threads.

    The lock file is removed on release. A waiter that acquired the lock on a file that was removed (or
    replaced) meanwhile notices it (inode check) and locks the current file instead, so at most one
    holder exists at any time and no lock file is left behind. A lock held by a process that died is free
    (the system releases it with the process), whether its file is left or not.

    A waiter waits as long as the holder shows progress (:func:`heartbeat` touches the lock file); after
    ``timeout`` seconds (default :data:`LOCK_TIMEOUT`) without any, it raises :class:`DownloadError` naming
    the lock file. ``timeout=0``: fail at once when the lock is taken.
    """

    def __init__(self, path: Path, *, label: str, progress: bool | None, timeout: float | None = None):
        self.path = path
        self.label = label
        self.progress = progress
        self.timeout = LOCK_TIMEOUT if timeout is None else timeout
        self._fd: int | None = None
        self._touched = 0.0
        with _thread_locks_guard:
            self._tlock = _thread_locks.setdefault(str(path), threading.Lock())

    def __enter__(self):
        waiting = _Waiting(self)
        acquired = self._tlock.acquire(blocking=False)
        while not acquired:  # another thread of this process holds it
            waiting.check(None)
            acquired = self._tlock.acquire(timeout=LOCK_POLL)
        try:
            self._acquire_file(waiting)
        except BaseException:
            self._tlock.release()
            raise
        self._touched = 0.0
        self._touch()
        _held.locks = getattr(_held, "locks", ()) + (self,)
        return self

    def __exit__(self, *exc):
        _held.locks = tuple(lock for lock in getattr(_held, "locks", ()) if lock is not self)
        try:
            if self._fd is not None:
                try:
                    _unlink(self.path)  # while still holding it (see the class docstring)
                except OSError:  # e.g. the folder became read-only: a lock file left behind is harmless
                    pass
                _unlock(self._fd)
                os.close(self._fd)
                self._fd = None
        finally:
            self._tlock.release()

    def _touch(self) -> None:
        """Refresh the lock file's modification time (the holder's heartbeat), at most every
        HEARTBEAT_INTERVAL seconds."""
        now = time.monotonic()
        if self._fd is None or (self._touched and now - self._touched < HEARTBEAT_INTERVAL):
            return
        self._touched = now
        try:
            os.utime(self._fd if os.utime in os.supports_fd else self.path)
        except OSError:
            pass

    def _try_lock(self, fd: int) -> bool:
        try:
            return _try_lock(fd)
        except OSError as exc:  # e.g. no locks available on this file system
            raise cache_error(exc, self.path, "lock") from exc

    def _timeout_message(self, waited: float) -> str:
        path = str(self.path)
        return (f"gave up waiting for {self.label} after {seconds(waited)} s: another process (or thread) holds "
                f"the lock file {path!r} and has shown no progress for {seconds(self.timeout)} s. Stop that "
                "process if it hangs; if no other ppocr-torch process is running (a lock on a network file system "
                f"can outlive its process), delete {path!r}. Then try again")

    def _acquire_file(self, waiting: "_Waiting") -> None:
        folder = self.path.parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise cache_error(exc, folder, "create the folder", folder=folder.parent) from exc
        told = False
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise cache_error(exc, self.path, "create the lock file") from exc
            try:
                while not self._try_lock(fd):
                    waiting.check(fd)
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


class _Waiting:
    """A waiter's view of the holder: the lock file's modification time, and when it last changed."""

    def __init__(self, lock: FileLock):
        self.lock = lock
        self.since = self.changed = time.monotonic()
        self.mtime: int | None = None

    def check(self, fd: int | None) -> None:
        """Raise DownloadError when the holder has not touched the lock file for ``lock.timeout`` seconds."""
        try:
            mtime = (os.fstat(fd) if fd is not None else os.stat(self.lock.path)).st_mtime_ns
        except OSError:  # not created yet, or removed by its holder just now
            mtime = None
        now = time.monotonic()
        if mtime is not None and mtime != self.mtime:
            if self.mtime is not None:
                self.changed = now
            self.mtime = mtime
        if now - self.changed >= self.lock.timeout:
            raise DownloadError(self.lock._timeout_message(now - self.since))


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
