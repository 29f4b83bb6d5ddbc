"""PaddleOCR's recognition data formats, read without Paddle.

* **Label files** (PaddleOCR's ``SimpleDataSet``): UTF-8 text, one sample per line, ``image_path<TAB>label``.
  The image path is relative to a data folder (PaddleOCR's ``data_dir``; here by default the label file's own
  folder) unless it is absolute. Blank lines are ignored; a line without the delimiter is counted as
  ``malformed`` and skipped; a trailing ``\\r`` (CRLF files) is removed.
* **LMDB folders** (PaddleOCR's ``LMDBDataSet``): every folder under the given one that holds a ``data.mdb`` is one
  database with the keys ``num-samples`` (decimal count), ``image-%09d`` (encoded image bytes) and ``label-%09d``
  (UTF-8 label), numbered from 1. Needs the optional ``lmdb`` package.

A data source is named ``PATH`` or ``PATH:RATIO`` (several joined by commas): the ratio samples the source like
PaddleOCR's ``ratio_list`` (a ratio below 1 keeps that share of the usable samples, chosen at random with the
training seed; above 1 repeats them).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from ..errors import DatasetError, UnsupportedFileError
from ..files import read_regular_file

__all__ = ["Source", "parse_sources", "read_label_file", "read_lmdb_labels", "lmdb_folders", "MAX_LABEL_FILE_BYTES"]

MAX_LABEL_FILE_BYTES = 4 << 30
"""Largest label file read (a label file of 4 GiB holds tens of millions of lines)."""


@dataclass(frozen=True)
class Source:
    """One data source: a label file or an LMDB folder, sampled with ``ratio``."""

    path: str
    ratio: float = 1.0

    @property
    def kind(self) -> str:
        """``"lmdb"`` for a folder, ``"labels"`` for a label file."""
        return "lmdb" if os.path.isdir(self.path) else "labels"

    def __str__(self) -> str:
        return self.path if self.ratio == 1.0 else f"{self.path}:{self.ratio:g}"


def _parse_one(item: str) -> Source:
    path, ratio = item, 1.0
    if ":" in item:
        head, tail = item.rsplit(":", 1)
        try:
            value = float(tail)
        except ValueError:  # a colon of the path itself (C:\data)
            value = None
        if value is not None:
            path, ratio = head, value
    if not path:
        raise DatasetError(f"data source {item!r} names no file")
    if not (math.isfinite(ratio) and ratio > 0):
        raise DatasetError(f"data source {item!r}: the sampling ratio must be a positive number, got {ratio!r}")
    return Source(path, ratio)


def parse_sources(spec: str | Source | Iterable[str | Source]) -> list[Source]:
    """``"a.txt,b.txt:0.5"``, a :class:`Source` or a list of either -> a list of sources."""
    if isinstance(spec, Source):
        return [spec]
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    out = []
    for item in items:
        if isinstance(item, Source):
            out.append(item)
        elif isinstance(item, str):
            if item.strip():
                out.append(_parse_one(item.strip()))
        else:
            raise TypeError(f"a data source is a string or Source, got {type(item).__name__}")
    if not out:
        raise DatasetError(f"no data source given in {spec!r}")
    return out


def read_label_file(path: str | os.PathLike, data_dir: str | os.PathLike | None = None, *,
                    delimiter: str = "\t") -> tuple[list[tuple[str, str]], int]:
    """The ``(image path, label)`` pairs of a PaddleOCR label file, and the number of malformed lines.

    Image paths are joined to ``data_dir`` (default: the label file's folder); absolute paths stay as they are.

    Raises:
        DatasetError: the file does not exist, is not a regular file, is too large or is not UTF-8 text.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"label file {str(path)!r} does not exist or is not a file")
    base = Path(data_dir) if data_dir is not None else path.parent
    if not base.is_dir():
        raise DatasetError(f"data folder {str(base)!r} of label file {str(path)!r} does not exist")
    try:
        data = read_regular_file(path, MAX_LABEL_FILE_BYTES, name=f"label file {str(path)!r}",
                                 error=UnsupportedFileError)
    except (UnsupportedFileError, OSError) as exc:
        raise DatasetError(str(exc)) from exc
    pairs, malformed = [], 0
    for number, raw in enumerate(data.split(b"\n"), 1):
        try:
            line = raw.decode("utf-8").rstrip("\r")
        except UnicodeDecodeError:
            raise DatasetError(f"label file {str(path)!r}, line {number}: not UTF-8 text") from None
        if not line.strip():
            continue
        if delimiter not in line:
            malformed += 1
            continue
        name, label = line.split(delimiter)[:2]  # PaddleOCR: the second field is the label, the rest ignored
        if not name:
            malformed += 1
            continue
        pairs.append((os.path.join(base, name), label))
    return pairs, malformed


def lmdb_folders(root: str | os.PathLike) -> list[str]:
    """The LMDB databases under ``root`` (``root`` itself or its subfolders holding ``data.mdb``), sorted."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        if "data.mdb" in filenames:
            found.append(dirpath)
    return sorted(found)


def _open_lmdb(folder: str):
    from ._deps import require

    lmdb = require("lmdb", "reading LMDB data")
    try:
        return lmdb.open(folder, readonly=True, lock=False, readahead=False, meminit=False, max_readers=64)
    except lmdb.Error as exc:
        raise DatasetError(f"LMDB folder {folder!r} cannot be opened: {exc}") from exc


def read_lmdb_labels(root: str | os.PathLike) -> tuple[list[tuple[str, int, str]], int]:
    """The ``(database folder, index, label)`` triples of every LMDB database under ``root`` (indices from 1) and
    the number of indices below ``num-samples`` whose label is missing or not UTF-8.

    Raises:
        TrainingDependencyError: the ``lmdb`` package is not installed.
        DatasetError: no database under ``root``, or a database without a valid ``num-samples``.
    """
    folders = lmdb_folders(root)
    if not folders:
        raise DatasetError(f"no LMDB database (a folder holding data.mdb) under {os.fspath(root)!r}")
    triples, malformed = [], 0
    for folder in folders:
        env = _open_lmdb(folder)
        try:
            with env.begin(write=False) as txn:
                raw = txn.get(b"num-samples")
                try:
                    count = int(raw.decode("ascii").strip())
                except (AttributeError, UnicodeDecodeError, ValueError):
                    raise DatasetError(f"LMDB database {folder!r} has no valid 'num-samples' entry "
                                       f"(found {raw!r:.40})") from None
                for index in range(1, count + 1):
                    value = txn.get(b"label-%09d" % index)
                    try:
                        triples.append((folder, index, value.decode("utf-8")))
                    except (AttributeError, UnicodeDecodeError):
                        malformed += 1
        finally:
            env.close()
    return triples, malformed


class LmdbReader:
    """Reads image bytes from LMDB databases; each process opens its own environments on first use (environments
    cannot be shared across ``fork``), so one reader serves DataLoader workers too."""

    def __init__(self):
        self._pid = None
        self._envs: dict = {}

    def __getstate__(self):
        return {"_pid": None, "_envs": {}}

    def image_bytes(self, folder: str, index: int) -> bytes | None:
        if self._pid != os.getpid():
            self._pid, self._envs = os.getpid(), {}
        env = self._envs.get(folder)
        if env is None:
            env = self._envs[folder] = _open_lmdb(folder)
        with env.begin(write=False) as txn:
            value = txn.get(b"image-%09d" % index)
        return bytes(value) if value is not None else None


def sample_ratio(items: Sequence, ratio: float, rng) -> list:
    """``items`` sampled with ``ratio``: all of them (in order) for 1; ``round(n * ratio)`` chosen at random without
    repetition below 1; ``int(ratio)`` full copies plus ``round(n * (ratio - int(ratio)))`` chosen at random above 1."""
    items = list(items)
    if ratio == 1.0:
        return items
    whole, part = int(ratio), ratio - int(ratio)
    out = items * whole
    out += rng.sample(items, min(len(items), round(len(items) * part)))
    return out
