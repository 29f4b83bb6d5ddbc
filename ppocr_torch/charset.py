"""Character sets of CTC recognisers, built exactly like PaddleOCR's ``CTCLabelDecode``.

The model's class ``i`` is ``charset[i]`` where ``charset = ["blank"] + dictionary + [" "]`` (the space
only with ``use_space_char``): the CTC blank is first and the optional space last.
"""

from __future__ import annotations

import io
import os
from typing import Sequence

from .errors import SpecMismatchError, UnsupportedFileError
from .files import read_regular_file

__all__ = ["BLANK", "build_charset", "read_dict_file", "check_num_classes", "packaged_charset"]

BLANK = "blank"
"""Name PaddleOCR gives the CTC blank (class 0)."""

MAX_DICT_BYTES = 64 << 20
"""Largest dictionary file read (the largest shipped dictionary is well under 1 MiB)."""


def build_charset(dict_chars: Sequence[str], use_space_char: bool) -> list[str]:
    """``["blank"] + dict_chars + ([" "] if use_space_char else [])``, PaddleOCR's class order."""
    return [BLANK, *dict_chars, *([" "] if use_space_char else [])]


def read_dict_file(path: str | os.PathLike) -> list[str]:
    """Read a PaddleOCR dictionary file: one character per line, UTF-8.

    Replicates PaddleOCR exactly: the file is split into lines at ``\\n`` and each line is decoded and
    stripped with ``line.decode("utf-8").strip("\\n").strip("\\r\\n")``. Consequences, kept on purpose
    so that class indices match the trained model:

    * a line holding a single space stays ``" "`` (spaces are not stripped);
    * ``\\r`` and ``\\n`` are stripped from *both* ends of a line, so CRLF files work;
    * an empty line becomes an empty-string entry (it still occupies a class index);
    * a UTF-8 byte-order mark is not removed (it becomes part of the first entry).

    Raises:
        UnsupportedFileError: not a regular file (a FIFO, a device: never opened) or larger than 64 MiB.
        OSError: the file cannot be read.
        UnicodeDecodeError: a line is not valid UTF-8.
    """
    data = read_regular_file(path, MAX_DICT_BYTES, name=f"dictionary file {os.fspath(path)!r}",
                             error=UnsupportedFileError)
    return [line.decode("utf-8").strip("\n").strip("\r\n") for line in io.BytesIO(data).readlines()]


def check_num_classes(charset: Sequence[str], num_classes: int) -> None:
    """Raise :class:`SpecMismatchError` when ``len(charset) != num_classes``, with the likely cause.

    ``charset`` is the full class list (blank included), as returned by :func:`build_charset`.
    """
    size = len(charset)
    if size == num_classes:
        return
    has_space = size > 0 and charset[-1] == " "
    n_dict = max(size - 1 - int(has_space), 0)
    detail = f"blank + {n_dict} dictionary chars" + (" + space" if has_space else "")
    if num_classes == size + 1 and not has_space:
        hint = "the model has one class more: missing use_space_char=True?"
    elif num_classes == size - 1 and has_space:
        hint = "the model has one class less: use_space_char=True but the model was trained without it?"
    else:
        hint = "wrong dictionary file for this model?"
    raise SpecMismatchError(
        f"character set has {size} classes ({detail}) but the model has {num_classes} "
        f"output classes: {hint}"
    )


def packaged_charset(spec) -> list[str]:
    """The class list of ``spec`` from the dictionary shipped in ``ppocr_torch/dicts/`` (blank first)."""
    from importlib import resources

    with resources.as_file(resources.files("ppocr_torch").joinpath("dicts").joinpath(spec.dictionary)) as path:
        charset = build_charset(read_dict_file(path), spec.use_space_char)
    check_num_classes(charset, spec.num_classes)
    return charset
