"""``ppocr-torch recognize`` on folders, globs and list files, with ``--out``, ``--resume`` and ``--workers``.

Kept apart from :mod:`ppocr_torch.cli`, which calls :func:`add_arguments` on its ``recognize`` parser and hands
the command to :func:`run` when :func:`wanted` says so. Without ``--out`` the records are printed as ``recognize``
prints them; with it they go to the file and a summary goes to stderr. Exit codes as ``recognize``'s: 0 every
input read, 1 some input failed (in this run or an earlier one of the same output), 2 anything else.
"""

from __future__ import annotations

import argparse
import sys

from .inputs import Chain, Folder, Glob, ListFile, source_for

# Per-input errors printed on stderr when the records go to a file (all of them are in the file).
_SHOWN_ERRORS = 20


def add_arguments(parser: argparse.ArgumentParser, positive_int) -> None:
    parser.add_argument("--list", action="append", metavar="LIST",
                        help="a file of image paths, one per line (relative to its folder; a tab ends the path, "
                             "so label files work); repeatable")
    parser.add_argument("--out", metavar="RESULTS.jsonl",
                        help="write one JSON object per input, in input order, to this file (never overwritten)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the job that wrote --out: skip the inputs already in it, append the rest")
    parser.add_argument("--workers", type=positive_int, default=None,
                        help="worker processes (default: one per core, at most one per 1.5 GB of memory; on a GPU one); "
                             "threads per worker: "
                             "--threads, else the cores not busy (cores minus the load average) // workers")
    parser.add_argument("--chunk-size", type=positive_int, default=64,
                        help="inputs per recognizer call and per write to --out (default: 64)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def wanted(args) -> bool:
    """True when the command needs the bulk job: a folder or a glob among the images, or a bulk option."""
    if args.out or args.list or args.resume or args.workers is not None:
        return True
    return any(isinstance(source_for(a), (Folder, Glob)) for a in args.images)


def run(args) -> int:
    from ..cli import _device_usable, _display_path, _error, _json_line, _setup_failed
    from ..errors import PPOCRTorchError
    from .job import recognize_files

    if args.resume and not args.out:
        _error("--resume needs --out (the results file to continue)")
        return 2
    if not _device_usable(args.device):
        return 2
    sources = [source_for(a) for a in args.images] + [ListFile(p) for p in args.list or ()]
    try:
        job = recognize_files(Chain(sources), args.out, model=args.model, resume=args.resume, workers=args.workers,
                              num_threads=args.threads, batch_size=args.batch_size, chunk_size=args.chunk_size,
                              mode=args.mode, device=args.device, download=not args.no_download,
                              long_lines=args.long_lines, optimize=args.optimize, chars=args.json and not args.out,
                              progress=False if args.quiet else None)
    except (PPOCRTorchError, OSError, ValueError) as exc:
        return _setup_failed(exc, args.device)
    if job.dropped_bytes:
        print(f"ppocr-torch: dropped the unfinished last line of {args.out} ({job.dropped_bytes} bytes)",
              file=sys.stderr)
    shown = 0
    try:
        for record in job:
            if "error" in record:
                if not args.out or shown < _SHOWN_ERRORS:
                    _error(f"{_display_path(record['path'])}: {record['message']}")
                shown += 1
                if args.json and not args.out:
                    print(_json_line({"path": record["path"], "error": record["message"]}), flush=True)
            elif args.json and not args.out:
                print(_json_line(record))
            elif not args.out:
                print(f"{_display_path(record['path'])}\t{record['text']}\t{record['score']:.4f}")
    except PPOCRTorchError as exc:  # a worker died, the inputs changed under a resumed job, ...
        _error(str(exc))
        return 2
    finally:
        job.close()
        sys.stdout.flush()
    failed = job.failed + job.failed_before
    if args.out:
        if shown > _SHOWN_ERRORS:
            print(f"ppocr-torch: {shown - _SHOWN_ERRORS} more input(s) failed; every failure is in {args.out}",
                  file=sys.stderr)
        print(f"ppocr-torch: {args.out}: {job.read} read and {job.failed} failed in this run, {job.skipped} were "
              f"there already; {failed} failed in all", file=sys.stderr)
    return 1 if failed else 0
