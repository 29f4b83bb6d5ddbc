"""The JSON-lines output of a bulk job: one record per input, in input order, appended chunk by chunk.

A chunk's lines go out in one write, then ``flush`` and ``fsync``, so a killed job loses at most the chunks in
flight. Resuming reads the file line by line (constant memory): complete lines must be records; an unterminated
last line (a write cut short) is dropped by truncating the file after the last complete line. The job's settings
are kept beside the output (``<out>.job.json``, written atomically) so that a resumed job refuses other settings,
which would give other results. A job holds an exclusive ``flock`` on its output while it writes, so a second job
on the same file is refused.
"""

from __future__ import annotations

import json
import os
from typing import Iterator

from ..errors import OutputExistsError, ResumeError
from ..files import atomic_write

__all__ = ["record_line", "settings_path", "ResultsFile"]


def record_line(record: dict) -> bytes:
    """One record as a UTF-8 JSON line; characters as themselves unless a path holds a lone surrogate (a file name
    that is not UTF-8), which only the escaped form carries."""
    try:
        return (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
    except UnicodeEncodeError:
        return (json.dumps(record) + "\n").encode("ascii")


def settings_path(out: str) -> str:
    return out + ".job.json"


def _parse(line: bytes, out: str, number: int) -> dict:
    try:
        record = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        record = None
    if not isinstance(record, dict) or not isinstance(record.get("path"), str) or not (
            "text" in record or "error" in record):
        raise ResumeError(f"line {number} of {out!r} is not a result record of ppocr-torch: the file cannot be "
                          f"resumed; give another --out")
    return record


class ResultsFile:
    """The output ``out`` of a job: refused when it exists, unless ``resume``; then checked and its records
    counted. :meth:`open` prepares it for :meth:`append`.

    Attributes after opening: ``done`` (records already in the file), ``failed`` (error records among them),
    ``dropped_bytes`` (the unterminated tail removed, 0 if none).
    """

    def __init__(self, out, *, resume: bool, settings: dict):
        self.out = os.fspath(out)
        self.settings = settings
        self.done = self.failed = self.dropped_bytes = 0
        self._end = 0
        self._fh = None
        self._existed = os.path.lexists(self.out)
        if self._existed and not resume:
            raise OutputExistsError(f"the output {self.out!r} exists: pass --resume (resume=True) to continue its job, "
                                    f"or give another output file; it is never overwritten")
        if self._existed:
            if not os.path.isfile(self.out):
                raise ResumeError(f"the output {self.out!r} is not a regular file")
            self._check_settings()
            self._scan()

    def open(self) -> None:
        """Write the settings; drop an existing file's unterminated tail and position after its records. A new
        file is created by the first :meth:`append` (or :meth:`finish`), so a job that fails before its first
        chunk leaves no output behind."""
        if self._existed:
            self._fh = open(self.out, "r+b")
            self._lock()
        self._write_settings()
        if self._existed:
            self._fh.truncate(self._end)
            self._fh.seek(self._end)
            if self.dropped_bytes:
                os.fsync(self._fh.fileno())

    def _create(self) -> None:
        try:
            self._fh = open(self.out, "xb")
        except FileExistsError:  # created by someone else since the check
            raise OutputExistsError(f"the output {self.out!r} appeared while the job ran; it is never "
                                    f"overwritten") from None
        self._lock()

    def _lock(self) -> None:
        """An exclusive ``flock`` on the output for as long as it is open (POSIX; not taken on Windows), so that
        two jobs never append to the same file: the second is refused."""
        try:
            import fcntl
        except ImportError:
            return
        try:
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._fh.close()
            self._fh = None
            raise ResumeError(f"another job is writing {self.out!r}; wait for it to end (or stop it) and resume "
                              f"then") from None

    def _check_settings(self) -> None:
        try:
            with open(settings_path(self.out), encoding="utf-8") as fh:
                saved = json.load(fh)
        except FileNotFoundError:
            return  # written without one (removed by hand): the caller's settings are taken on trust
        except (OSError, ValueError) as exc:
            raise ResumeError(f"cannot read the job settings {settings_path(self.out)!r}: {exc}") from exc
        # "model" is the name or path as given (an alias, a relative path): the weights' sha256 decides
        differ = sorted(k for k in set(saved) | set(self.settings)
                        if k != "model" and saved.get(k) != self.settings.get(k))
        if differ:
            detail = "; ".join(f"{k}: {saved.get(k)!r} then, {self.settings.get(k)!r} now" for k in differ)
            raise ResumeError(f"{self.out!r} was written with other settings ({detail}); resume with the same "
                              f"settings, or give another output file")

    def _write_settings(self) -> None:
        text = json.dumps(self.settings, indent=1, sort_keys=True) + "\n"

        def write(tmp):
            with open(tmp, "w", encoding="utf-8") as fh:
                fh.write(text)

        atomic_write(settings_path(self.out), write)

    def _scan(self) -> None:
        """Count the complete records and find where they end; refuse a file whose complete lines are not all
        records."""
        with open(self.out, "rb") as fh:
            offset = 0
            for number, line in enumerate(fh, 1):
                if not line.endswith(b"\n"):
                    self.dropped_bytes = len(line)
                    break
                record = _parse(line, self.out, number)
                self.done += 1
                self.failed += "error" in record
                offset += len(line)
        self._end = offset

    def recorded_paths(self) -> Iterator[str]:
        """The ``path`` of each record already in the file, in order (read lazily)."""
        with open(self.out, "rb") as fh:
            for _ in range(self.done):
                yield json.loads(fh.readline())["path"]

    def append(self, records: list[dict]) -> None:
        """Write ``records`` in one write, then flush and fsync."""
        if not records:
            return
        if self._fh is None:
            self._create()
        self._fh.write(b"".join(record_line(r) for r in records))
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def finish(self) -> None:
        """The job is complete: make sure the file exists (a job without inputs writes an empty one)."""
        if self._fh is None:
            self._create()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
