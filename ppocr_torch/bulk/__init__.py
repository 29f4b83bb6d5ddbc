"""Bulk recognition on one machine: :func:`recognize_files` over a folder, a glob, a list file or any iterable of
paths, streamed in bounded memory, written as JSON lines that a killed job resumes (docs/bulk.md).

The modules: ``inputs`` (the sources, read lazily in a fixed order), ``results_file`` (the JSON-lines output and
its resume), ``records`` (a chunk of inputs -> its records), ``workers`` (the worker processes, results kept in
order), ``job`` (the job itself), ``cli`` (``ppocr-torch recognize`` with folders, globs, ``--list``, ``--out``).
"""

from .inputs import IMAGE_EXTENSIONS, Folder, Glob, ListFile, Paths
from .job import BulkJob, default_threads, default_workers, recognize_files

__all__ = ["recognize_files", "BulkJob", "default_workers", "default_threads", "ListFile", "Folder", "Glob", "Paths",
           "IMAGE_EXTENSIONS"]
