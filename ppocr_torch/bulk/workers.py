"""Worker processes of a bulk job (multiprocessing, spawn context), results handed back in input order.

Each worker builds its own Recognizer from the checkpoint file the parent resolved (so N workers never download N
times) and runs chunks from a shared task queue. The parent keeps at most ``in_flight`` chunks submitted and holds
the finished ones in a reorder buffer until the chunks before them are back: at most ``in_flight`` chunks of
records are in the parent at a time. A worker whose parent is gone (killed) exits by itself within a second, even
in the middle of a chunk.
"""

from __future__ import annotations

import os
import queue
from typing import Iterable, Iterator

from ..errors import WorkerError

__all__ = ["WorkerPool", "worker_main"]

_POLL_S = 1.0
_JOIN_S = 30.0


def _exit_when_orphaned(parent_pid: int, results) -> None:
    """Watchdog thread of a worker: leave at once (mid-chunk too) when the parent process is gone."""
    import time

    while os.getppid() == parent_pid:
        time.sleep(_POLL_S)
    results.cancel_join_thread()
    os._exit(0)


def worker_main(tasks, results, config: dict, chars: bool, parent_pid: int) -> None:
    """A worker's loop: build the recognizer, then turn ``(chunk id, items)`` tasks into ``("done", id, records)``
    until a ``None`` task, or the parent's death."""
    import signal
    import threading

    from .records import chunk_records, recognizer_for

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it stops the workers
    threading.Thread(target=_exit_when_orphaned, args=(parent_pid, results), daemon=True).start()
    try:
        rec = recognizer_for(config)
    except BaseException as exc:  # reported to the parent, which raises WorkerError
        results.put(("failed", None, f"{type(exc).__name__}: {exc}"))
        return
    while True:
        task = tasks.get()
        if task is None:  # done: flush the results, then leave without the interpreter's slow teardown
            results.close()
            results.join_thread()
            os._exit(0)
        cid, items = task
        try:
            results.put(("done", cid, chunk_records(rec, items, chars)))
        except BaseException as exc:
            results.put(("failed", cid, f"{type(exc).__name__}: {exc}"))
            return


class WorkerPool:
    """``n`` worker processes, each running ``Recognizer(**config)`` with ``config["num_threads"]`` threads."""

    def __init__(self, n: int, config: dict, *, chars: bool = False):
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        self._tasks = ctx.Queue()
        self._results = ctx.Queue()
        self._procs = [ctx.Process(target=worker_main, name=f"ppocr-torch-worker-{i}", daemon=True,
                                   args=(self._tasks, self._results, config, chars, os.getpid()))
                       for i in range(n)]
        for p in self._procs:
            p.start()

    def map_ordered(self, chunks: Iterable, in_flight: int) -> Iterator[tuple]:
        """``(chunk, records)`` for each ``chunk`` of ``chunks`` (a tuple whose last element is its ``(name, path)``
        items), in the order of ``chunks``."""
        pending: dict[int, object] = {}   # chunk id -> chunk, submitted and not yet yielded
        finished: dict[int, list] = {}    # the reorder buffer
        it = iter(chunks)
        next_id = submitted = 0
        exhausted = False
        while True:
            while not exhausted and len(pending) < in_flight:
                chunk = next(it, None)
                if chunk is None:
                    exhausted = True
                    break
                pending[submitted] = chunk
                self._tasks.put((submitted, chunk[-1]))
                submitted += 1
            if not pending:
                return
            if next_id in finished:
                yield pending.pop(next_id), finished.pop(next_id)
                next_id += 1
            else:
                self._receive(finished)

    def _receive(self, finished: dict) -> None:
        try:
            kind, cid, payload = self._results.get(timeout=_POLL_S)
        except queue.Empty:
            dead = [p for p in self._procs if not p.is_alive()]
            if dead:
                raise WorkerError(f"worker process {dead[0].name} exited with code {dead[0].exitcode}; the results "
                                  f"before it are kept: rerun with --resume (resume=True) to continue") from None
            return
        if kind == "failed":
            where = "starting" if cid is None else f"on chunk {cid}"
            raise WorkerError(f"a worker process failed {where}: {payload}")
        finished[cid] = payload

    def close(self, *, abort: bool = False) -> None:
        """Stop the workers: each ends after its chunk (or its model load), and any still running after
        ``_JOIN_S`` seconds is terminated; with ``abort`` (an error, Ctrl-C, the job closed early) at once."""
        for _ in self._procs:
            try:
                self._tasks.put(None)
            except (OSError, ValueError):
                break
        for p in self._procs:
            p.join(timeout=0 if abort else _JOIN_S)
            if p.is_alive():
                p.terminate()
                p.join(timeout=5)
        for q in (self._tasks, self._results):
            q.cancel_join_thread()
            q.close()
