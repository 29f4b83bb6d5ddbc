"""The bulk job: :func:`recognize_files`, a resumable, streamed recognition of many text-line files.

Inputs are read lazily and cut into chunks of ``chunk_size`` consecutive inputs, counted from the first input (a
resumed job cuts the same chunks). A chunk is recognised in one ``Recognizer.recognize`` call, so its results are
those of ``Recognizer`` on the same chunk, whichever process or resume ran it; its records are then written (one
write, fsync) and yielded, in input order. Memory: one chunk of images per worker, ``2 x workers`` chunks of
records in flight, and what the recognizer itself keeps (see docs/bulk.md).
"""

from __future__ import annotations

import os
import sys
from typing import Any

from ..errors import ResumeError
from ..registry import DEFAULT_MODEL
from .inputs import as_source
from .results_file import ResultsFile

__all__ = ["recognize_files", "BulkJob", "default_workers", "default_threads", "cpu_cores"]

# One worker per core, each with one thread: on 2 cores 2 x 1 read 1,000 lines 1.30x faster than 1 x 2
# (benchmarks/results/bulk-20261127-1336.md). Each worker holds a model and its packed weights: about 0.9 GB peak
# for PP-OCRv6_small_rec, so the workers are also capped at one per GB_PER_WORKER of physical memory.
CORES_PER_WORKER = 1
GB_PER_WORKER = 1.5


def cpu_cores() -> int:
    """The cores this process may run on (its CPU affinity where the platform tells it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def physical_memory_gb() -> float | None:
    """The machine's physical memory in GB, None where the platform does not tell."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 1e9
    except (AttributeError, OSError, ValueError):
        return None


def default_workers(device: Any = "cpu", cores: int | None = None, memory_gb: float | None = None) -> int:
    """On the CPU, one worker per ``CORES_PER_WORKER`` cores and at most one per ``GB_PER_WORKER`` of physical
    memory (at least one); one on any other device."""
    if str(device).split(":")[0] != "cpu":
        return 1
    workers = (cores or cpu_cores()) // CORES_PER_WORKER
    memory_gb = memory_gb if memory_gb is not None else physical_memory_gb()
    if memory_gb is not None:
        workers = min(workers, int(memory_gb // GB_PER_WORKER))
    return max(1, workers)


def default_threads(workers: int, cores: int | None = None, load: float | None = None) -> int:
    """Threads per worker: the cores not already busy (``cores`` minus the 1-minute load average, at least one),
    shared among the workers, at least one each. On a busy host more threads than free cores make every thread
    wait for the others (measured in docs/bulk.md); the results do not depend on it."""
    cores = cores or cpu_cores()
    if load is None:
        try:
            load = os.getloadavg()[0]
        except (AttributeError, OSError):
            load = 0.0
    free = max(1, cores - int(load))
    return max(1, free // workers)


def _positive(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _resolve_checkpoint(model, download: bool) -> str:
    """The checkpoint file of a registry name or checkpoint path, fetched (once, here) when needed."""
    from ..api import _is_checkpoint_path

    if not isinstance(model, (str, os.PathLike)):
        raise TypeError(f"model must be a registry name or a checkpoint path for a bulk job, got "
                        f"{type(model).__name__}")
    if _is_checkpoint_path(model):
        return os.fspath(model)
    from ..download import resolve_weights
    from ..registry import get_entry

    return os.fspath(resolve_weights(get_entry(model), download=download))


def _optimize_list(optimize) -> list:
    if optimize is None:
        return []
    if isinstance(optimize, str):
        return [p.strip() for p in optimize.split(",") if p.strip()]
    return [str(p) for p in optimize]


class BulkJob:
    """An iterator over the result records of a bulk job (see :func:`recognize_files`).

    Attributes (updated as records come): ``total`` (inputs, when counted: with a progress bar), ``skipped``
    (records already in the output when resuming), ``read`` and ``failed`` (inputs read and failed in this run),
    ``failed_before`` (error records among the skipped ones), ``dropped_bytes`` (the unterminated last line
    removed from the output), ``workers``, ``threads``, ``checkpoint`` (the resolved weights file).
    """

    def __init__(self, inputs, out=None, *, model: Any = DEFAULT_MODEL, resume: bool = False,
                 workers: int | None = None, num_threads: int | None = None, batch_size: int = 8,
                 chunk_size: int = 64, mode: str = "per_image", device: Any = "cpu", download: bool = True,
                 long_lines: str = "split", optimize: Any = None, chars: bool = False, progress: bool | None = None):
        from ..api import _LONG_LINES, _MODES, _check_choice, _env_threads
        from ..files import sha256_file

        _check_choice("mode", mode, _MODES)
        _check_choice("long_lines", long_lines, _LONG_LINES)
        _positive("batch_size", batch_size)
        _positive("chunk_size", chunk_size)
        if workers is not None:
            _positive("workers", workers)
        if num_threads is not None:
            _positive("num_threads", num_threads)
        if resume and out is None:
            raise ValueError("resume needs the output file (out=...)")
        self.workers = workers or default_workers(device)
        self.threads = num_threads or _env_threads() or default_threads(self.workers)
        self.source = as_source(inputs)
        self.source.check()
        self.chunk_size = chunk_size
        self.chars = bool(chars)
        self.progress = progress
        self.checkpoint = _resolve_checkpoint(model, download)
        self.config = {"model": self.checkpoint, "device": str(device), "batch_size": batch_size, "mode": mode,
                       "long_lines": long_lines, "optimize": _optimize_list(optimize) or None,
                       "num_threads": self.threads, "download": False}
        settings = {"model": os.fspath(model), "weights_sha256": sha256_file(self.checkpoint),
                    "device": str(device), "batch_size": batch_size, "chunk_size": chunk_size, "mode": mode,
                    "long_lines": long_lines, "optimize": _optimize_list(optimize), "chars": self.chars}
        self.output = ResultsFile(out, resume=resume, settings=settings) if out is not None else None
        self.skipped = self.output.done if self.output else 0
        self.failed_before = self.output.failed if self.output else 0
        self.dropped_bytes = self.output.dropped_bytes if self.output else 0
        self.total: int | None = None
        self.read = self.failed = 0
        self._gen = self._run()

    def __iter__(self):
        return self

    def __next__(self) -> dict:
        return next(self._gen)

    def close(self) -> None:
        """Stop the job early (workers stopped, output closed); what was written stays and can be resumed."""
        self._gen.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- internals ---------------------------------------------------------------------------------------------

    def _verified(self):
        """The source's ``(name, path)`` pairs; the first ``skipped`` names must be the output's, in order."""
        done = self.skipped
        recorded = self.output.recorded_paths() if done else iter(())
        n = 0
        for name, path in self.source:
            if n < done:
                before = next(recorded)
                if before != name:
                    raise ResumeError(f"line {n + 1} of {self.output.out!r} is for {before!r} but input {n + 1} is "
                                      f"{name!r}: the inputs changed since the job started; resume needs the same "
                                      f"inputs in the same order (or give another output file)")
            n += 1
            yield name, path
        if n < done:
            raise ResumeError(f"{self.output.out!r} holds {done} records but there are only {n} inputs: the inputs "
                              f"changed since the job started (or give another output file)")

    def _chunks(self):
        """``(start, first new, items)`` per chunk holding an input not yet in the output."""
        size, done = self.chunk_size, self.skipped
        start, items = 0, []
        for item in self._verified():
            items.append(item)
            if len(items) == size:
                if start + size > done:
                    yield start, max(start, done), items
                start, items = start + size, []
        if items and start + len(items) > done:
            yield start, max(start, done), items

    def _results(self):
        """``(chunk, records)`` in input order, computed here or by the worker pool."""
        from .records import chunk_records, recognizer_for

        if self.workers == 1:
            rec = recognizer_for(self.config)
            for chunk in self._chunks():
                yield chunk, chunk_records(rec, chunk[-1], self.chars)
            return
        from .workers import WorkerPool

        pool = WorkerPool(self.workers, self.config, chars=self.chars)
        try:
            yield from pool.map_ordered(self._chunks(), in_flight=2 * self.workers)
        except BaseException:  # an error, Ctrl-C, or the consumer closing the job early: stop the workers now
            pool.close(abort=True)
            raise
        pool.close()

    def _bar(self):
        from ..progress import show_progress

        if not show_progress(self.progress):
            return None
        from tqdm import tqdm

        self.total = self.source.count()
        return tqdm(total=self.total, initial=self.skipped, unit="line", desc="recognize", file=sys.stderr,
                    dynamic_ncols=True, smoothing=0.05)

    def _run(self):
        bar = self._bar()
        try:
            if self.output is not None:
                self.output.open()
            for (start, first, _), records in self._results():
                new = records[first - start:]
                if self.output is not None:
                    self.output.append(new)
                bad = sum("error" in r for r in new)
                self.failed += bad
                self.read += len(new) - bad
                if bar is not None:
                    bar.update(len(new))
                yield from new
            if self.output is not None:
                self.output.finish()
        finally:
            if bar is not None:
                bar.close()
            if self.output is not None:
                self.output.close()


def recognize_files(inputs, out=None, *, model: Any = DEFAULT_MODEL, resume: bool = False,
                    workers: int | None = None, num_threads: int | None = None, batch_size: int = 8,
                    chunk_size: int = 64, mode: str = "per_image", device: Any = "cpu", download: bool = True,
                    long_lines: str = "split", optimize: Any = None, chars: bool = False,
                    progress: bool | None = None) -> BulkJob:
    """Recognise many text-line files, streamed in bounded memory; the records come in input order.

    Args:
        inputs: a folder (its image files, recursively, sorted), a glob pattern, a
            :class:`~ppocr_torch.bulk.ListFile` (one path per line, relative to the list's folder), or any
            iterable of paths (taken as they are, read lazily). See :mod:`ppocr_torch.bulk.inputs`.
        out: a JSON-lines file to write the records to, appended and fsynced chunk by chunk. It must not exist,
            unless ``resume``.
        resume: continue the job that wrote ``out``: its records are checked against the inputs (same paths, same
            order), an unterminated last line is dropped, and the rest is appended, so that the file ends as an
            uninterrupted run's would (byte for byte). Needs the same settings (kept in ``<out>.job.json``).
        workers: processes recognising chunks (spawn context; each with its own Recognizer). Default: one per 4
            cores on the CPU (:func:`default_workers`), one on a GPU. With one, the job runs in this process.
        num_threads: CPU threads per worker; default ``$PPOCR_TORCH_THREADS``, else the cores not busy with other
            work (cores minus the 1-minute load average) divided among the workers, at least one
            (:func:`default_threads`).
        batch_size, mode, device, long_lines, optimize: as :class:`~ppocr_torch.Recognizer`'s.
        chunk_size: inputs per ``Recognizer`` call and per write (the most a kill loses per worker).
        download: allow fetching the weights (done once here, before any worker starts).
        chars: add each record's characters (``[char, prob, first step, last step]``).
        progress: a tqdm bar on stderr (lines/s, and ETA when the inputs were counted); ``None``: when stderr is a
            terminal.

    Returns:
        A :class:`BulkJob`: iterate it for the records, ``{"path", "text", "score"}`` or ``{"path", "error",
        "message"}`` for an input that could not be read (never fatal); a resumed job yields only the new ones.

    Raises:
        InputSourceError: a list file or folder that cannot be read, a glob that matches nothing.
        OutputExistsError: ``out`` exists and ``resume`` is False.
        ResumeError: ``out`` cannot be resumed (not a results file, other inputs, other settings).
        WorkerError: a worker process failed or died (raised while iterating).
        The errors of :class:`~ppocr_torch.Recognizer` for the model (unknown, weights unavailable, ...).
    """
    return BulkJob(inputs, out, model=model, resume=resume, workers=workers, num_threads=num_threads,
                   batch_size=batch_size, chunk_size=chunk_size, mode=mode, device=device, download=download,
                   long_lines=long_lines, optimize=optimize, chars=chars, progress=progress)
