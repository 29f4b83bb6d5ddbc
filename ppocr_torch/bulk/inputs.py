"""The inputs of a bulk job, read lazily and always in the same order.

Each source yields ``(name, path)`` pairs: ``name`` is what the output records as ``"path"`` (and what a resumed
job compares), ``path`` the file that is read. They are equal except for list files, whose relative entries are
read relative to the list file's folder but recorded as written.

* :class:`Folder`: image files under a folder, recursively (``IMAGE_EXTENSIONS``, any case); each folder's file names
  sorted, its files before its subfolders', subfolders in sorted order; symbolic links to folders not followed.
  One folder's listing is in memory at a time.
* :class:`Glob`: the files a pattern matches (``**`` spans folders), folders left out, sorted. The matches are
  listed in memory (about 100 bytes a path): for millions of files use a folder or a list file.
* :class:`ListFile`: one path per line (UTF-8; other bytes kept as in ``os.fsdecode``), read line by line; blank
  lines are skipped; in a line with a tab the path is the part before the first tab, so PaddleOCR label files
  (``path<TAB>label``) work as they are.
* :class:`Paths`: any iterable of paths, taken as they are (no expansion).

No torch import.
"""

from __future__ import annotations

import glob
import os
import re
import stat
import warnings
from typing import Iterable, Iterator

from ..errors import InputSourceError

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".jpe", ".bmp", ".dib", ".tif", ".tiff", ".webp", ".pbm",
                              ".pgm", ".ppm", ".pnm", ".jp2"})
_MAGIC = re.compile(r"[*?[]")

__all__ = ["IMAGE_EXTENSIONS", "Folder", "Glob", "ListFile", "Paths", "Chain", "source_for", "as_source"]


class Folder:
    """The image files under ``root``, recursively, in sorted order (see the module's docstring)."""

    def __init__(self, root):
        self.root = os.fspath(root)

    def check(self) -> None:
        if not os.path.isdir(self.root):
            raise InputSourceError(f"input folder {self.root!r} does not exist or is not a folder")

    def _files(self) -> Iterator[str]:
        def warn(exc: OSError) -> None:
            warnings.warn(f"cannot list {exc.filename!r} ({exc.strerror}); its files are left out", stacklevel=2)

        for top, dirs, files in os.walk(self.root, onerror=warn):
            dirs.sort()
            for name in sorted(files):
                if os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS:
                    yield os.path.join(top, name)

    def __iter__(self):
        for path in self._files():
            yield path, path

    def count(self) -> int:
        return sum(1 for _ in self._files())


class Glob:
    """The files (not folders) that ``pattern`` matches, sorted; ``**`` spans folders."""

    def __init__(self, pattern):
        self.pattern = os.fspath(pattern)
        self._matches: list[str] | None = None

    def _list(self) -> list[str]:
        if self._matches is None:
            self._matches = sorted(p for p in glob.glob(self.pattern, recursive=True) if not os.path.isdir(p))
        return self._matches

    def check(self) -> None:
        if not self._list():
            raise InputSourceError(f"no file matches the pattern {self.pattern!r}")

    def __iter__(self):
        for path in self._list():
            yield path, path

    def count(self) -> int:
        return len(self._list())


class ListFile:
    """The paths listed in a text file, one per line, read lazily (see the module's docstring)."""

    def __init__(self, path):
        self.path = os.fspath(path)
        self.folder = os.path.dirname(self.path)

    def check(self) -> None:
        try:
            st = os.stat(self.path)
        except (OSError, ValueError) as exc:
            raise InputSourceError(f"cannot read the list file {self.path!r}: {getattr(exc, 'strerror', None) or exc}"
                                   ) from exc
        if not stat.S_ISREG(st.st_mode):
            raise InputSourceError(f"the list file {self.path!r} is not a regular file")

    def _entries(self) -> Iterator[str]:
        try:
            fh = open(self.path, "rb")
        except OSError as exc:
            raise InputSourceError(f"cannot read the list file {self.path!r}: {exc.strerror or exc}") from exc
        with fh:
            for raw in fh:
                entry = raw.split(b"\t", 1)[0].rstrip(b"\r\n")
                if entry.strip():
                    yield os.fsdecode(entry)

    def __iter__(self):
        for entry in self._entries():
            yield entry, entry if os.path.isabs(entry) else os.path.join(self.folder, entry)

    def count(self) -> int:
        return sum(1 for _ in self._entries())


class Paths:
    """An iterable of paths (``str`` or ``os.PathLike``), each one input, in the iterable's order."""

    def __init__(self, paths: Iterable):
        self.paths = paths

    def check(self) -> None:
        pass

    def __iter__(self):
        for p in self.paths:
            if not isinstance(p, (str, os.PathLike)):
                raise TypeError(f"an input path must be a str or os.PathLike, got {type(p).__name__}")
            p = os.fspath(p)
            if isinstance(p, bytes):
                p = os.fsdecode(p)
            yield p, p

    def count(self) -> int | None:
        try:
            return len(self.paths)  # type: ignore[arg-type]
        except TypeError:
            return None


class Chain:
    """Several sources one after the other."""

    def __init__(self, sources: list):
        self.sources = list(sources)

    def check(self) -> None:
        for s in self.sources:
            s.check()

    def __iter__(self):
        for s in self.sources:
            yield from s

    def count(self) -> int | None:
        total = 0
        for s in self.sources:
            n = s.count()
            if n is None:
                return None
            total += n
        return total


def source_for(arg) -> "Folder | Glob | Paths":
    """The source one command-line argument names: a folder, else an existing file (also a special one: it is
    refused as an input later), else a glob when it has ``*``, ``?`` or ``[``, else a missing file (an input error
    in the output, as for any unreadable file)."""
    arg = os.fspath(arg)
    if os.path.isdir(arg):
        return Folder(arg)
    if os.path.lexists(arg) or not _MAGIC.search(arg):
        return Paths([arg])
    return Glob(arg)


def as_source(inputs):
    """``inputs`` of :func:`~ppocr_torch.bulk.recognize_files` as a source: a str/PathLike is expanded like a
    command-line argument (:func:`source_for`), a source object is itself, any other iterable is :class:`Paths`."""
    if isinstance(inputs, (Folder, Glob, ListFile, Paths, Chain)):
        return inputs
    if isinstance(inputs, (str, os.PathLike)):
        return source_for(inputs)
    if isinstance(inputs, (bytes, bytearray)) or not hasattr(inputs, "__iter__"):
        raise TypeError(f"inputs must be a folder, a glob, a ListFile or an iterable of paths, got "
                        f"{type(inputs).__name__}")
    return Paths(inputs)
