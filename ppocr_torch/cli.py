"""Command-line interface: ``ppocr-torch`` / ``python -m ppocr_torch``.

Subcommands:

* ``recognize IMG...``: one line per image, ``path<TAB>text<TAB>score`` (or JSON lines with ``--json``);
* ``models [PATTERN] [--available]``: the registry models and where their weights are;
* ``download MODEL...|--all [-q]``: fetch registry weights into the cache (for offline use later);
* ``cache [--clear]``: the cache directory, ppocr-torch's files in it and their sizes;
* ``export MODEL --format onnx|torchscript|exported-program --out PATH [--no-verify]``: write the model as a
  self-describing ONNX, TorchScript or ExportedProgram file, verified against the torch model first.

Exit codes: 0 success; 1 some image could not be read (the others are still printed), or ``export``: the model
could not be exported or its file did not reproduce the torch model (nothing is written); 2 usage error,
unknown model, weights unavailable, a checkpoint that is not valid, a device that cannot be used, the cache
cannot be written (disk full, read-only), ``export``: an optional package missing or the output not writable.
"""

from __future__ import annotations

import argparse
import json
import re
import sys

from . import __version__
from .errors import DeviceError, PPOCRTorchError

_PROG = "ppocr-torch"
_DEFAULT_MODEL = "PP-OCRv6_small_rec"


def _utf8_streams() -> None:
    """Write UTF-8 to stdout/stderr whatever the locale (recognized text is mostly non-ASCII)."""
    for stream, errors in ((sys.stdout, "strict"), (sys.stderr, "backslashreplace")):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            try:
                reconfigure(encoding="utf-8", errors=errors)
            except (ValueError, OSError):  # detached or unusual stream: keep it as it is
                pass


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's final flush does not fail again."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


def _error(message: str) -> None:
    print(f"{_PROG}: error: {message}", file=sys.stderr)


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=_PROG, description="PaddleOCR text-line recognition in PyTorch.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    rec = sub.add_parser("recognize", help="recognize text-line images",
                         description="Recognize text-line images; one output line per image.")
    rec.add_argument("images", nargs="+", metavar="IMG", help="image files (one text line each)")
    rec.add_argument("--model", default=_DEFAULT_MODEL, help=f"registry name or checkpoint path "
                                                             f"(default: {_DEFAULT_MODEL})")
    rec.add_argument("--json", action="store_true", help="print one JSON object per line")
    rec.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    rec.add_argument("--batch-size", type=_positive_int, default=8, help="images per forward (default: 8)")
    rec.add_argument("--mode", choices=("per_image", "throughput", "paddle"), default="per_image",
                     help="batching: per_image (results independent of the batch), throughput (per_image "
                          "padded to width buckets so that lines share batches) or paddle (PaddleOCR's "
                          "predict_rec)")
    rec.add_argument("--optimize", default=None, metavar="compile,int8",
                     help="opt-in speed-ups (comma-separated): compile (torch.compile), int8 (int8 classifier); "
                          "each costs a little fidelity, see docs/speed.md")
    rec.add_argument("--no-download", action="store_true", help="never download weights")
    rec.add_argument("--threads", type=_positive_int, default=None,
                     help="CPU threads (default: $PPOCR_TORCH_THREADS, else one per core); on a busy host use fewer")
    rec.set_defaults(func=_cmd_recognize)

    models = sub.add_parser("models", help="list the registry models",
                            description="List the registry models, where their weights come from (embedded, "
                                        "local: $PPOCR_TORCH_WEIGHTS_DIR, cached, release: the project's release "
                                        "then the official download, official: PaddleOCR's download converted "
                                        "on first use) and whether the registry records their digest "
                                        "(verified) or not (unverified: converted by structure only).")
    models.add_argument("pattern", nargs="?", help="fnmatch pattern on the name, e.g. '*v6*'")
    models.add_argument("--available", action="store_true",
                        help="only models usable without network (embedded, local or cached)")
    models.set_defaults(func=_cmd_models)

    dl = sub.add_parser("download", help="download registry weights into the cache",
                        description="Download the weights of registry models into the cache directory "
                                    "(for offline use later). Files already cached are verified, not "
                                    "downloaded again.")
    dl.add_argument("names", nargs="*", metavar="MODEL", help="registry model names or aliases")
    dl.add_argument("--all", action="store_true",
                    help="every model that has converted weights (the others are reported and skipped)")
    dl.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    dl.set_defaults(func=_cmd_download)

    cache = sub.add_parser("cache", help="show (or clear) the weights cache",
                           description="Show the cache directory, the ppocr-torch files in it and their "
                                       "sizes. Other torch.hub checkpoints in the same directory are "
                                       "never listed or removed.")
    cache.add_argument("--clear", action="store_true",
                       help="delete ppocr-torch's files (checkpoints and partial downloads) from the cache")
    cache.set_defaults(func=_cmd_cache)

    exp = sub.add_parser("export", help="export a model to ONNX, TorchScript or an ExportedProgram",
                         description="Export a model (registry name or checkpoint path) to one file with a dynamic "
                                     "batch and width and its character set and spec embedded; the file is "
                                     "loaded back with its runtime and compared with the torch model before it "
                                     "is kept (docs/export.md). ONNX needs `pip install ppocr-torch[export]`.")
    exp.add_argument("model", metavar="MODEL", help="registry name or checkpoint path")
    exp.add_argument("--format", default="onnx", choices=("onnx", "torchscript", "exported-program"),
                     help="file format (default: onnx)")
    exp.add_argument("--out", required=True, metavar="PATH",
                     help="file to write (conventionally .onnx, .pt for TorchScript, .pt2 for exported-program)")
    exp.add_argument("--no-verify", action="store_true", help="write without loading the file back and comparing")
    exp.add_argument("--opset", type=_positive_int, default=None, help="ONNX opset (default: 17)")
    exp.add_argument("--atol", type=_non_negative_float, default=None,
                     help="largest max |difference| of probabilities accepted by the verification (default: 1e-5)")
    exp.add_argument("--no-download", action="store_true", help="never download weights")
    exp.set_defaults(func=_cmd_export)
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def _strip_input_prefix(message: str, obj, index: int) -> str:
    """Drop the ``input N (path '...'): `` prefix of an error message (the CLI names the path itself)."""
    from .image_io import describe_input

    prefix = describe_input(obj, index) + ": "
    return message[len(prefix):] if message.startswith(prefix) else message


def _display_path(path: str) -> str:
    """``path`` as printed: itself, or with its undecodable bytes (``\\xff``), lone surrogates (``\\ud800``) and
    control characters (``\\t``, ``\\x00``) escaped, so that one odd name neither stops the output nor splits
    its line."""
    try:
        text = path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a surrogate that no file name byte gives
        text = path.encode("utf-8", "backslashreplace").decode("utf-8")
    return re.sub(r"[\x00-\x1f\x7f-\x9f]", lambda m: repr(m.group())[1:-1], text)


def _json_line(obj: dict) -> str:
    """One JSON object; non-ASCII characters as themselves unless a path holds a lone surrogate (an
    undecodable file name), which only the escaped form can carry through UTF-8."""
    line = json.dumps(obj, ensure_ascii=False)
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:
        line = json.dumps(obj)
    return line


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _device_problem(device: str) -> str | None:
    """Why ``device`` cannot be used (bad name, CUDA/MPS unavailable), or None."""
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError) as exc:
        return _first_line(exc)
    if dev.type == "cuda" and not torch.cuda.is_available():
        return "CUDA is not available in this torch installation"
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        return f"there are only {torch.cuda.device_count()} CUDA device(s)"
    mps = getattr(torch.backends, "mps", None)
    if dev.type == "mps" and not (mps is not None and mps.is_available()):
        return "MPS is not available"
    return None


def _cmd_recognize(args) -> int:
    from .api import Recognizer

    problem = _device_problem(args.device)
    if problem:
        _error(f"cannot use device {args.device!r}: {problem}")
        return 2
    try:
        rec = Recognizer(args.model, device=args.device, batch_size=args.batch_size, mode=args.mode,
                         download=not args.no_download, num_threads=args.threads,
                         optimize=args.optimize)
    except DeviceError as exc:  # torch failing to move the model to the device (and only that)
        _error(f"cannot use device {args.device!r}: {_first_line(exc.__cause__ or exc)}")
        return 2
    except (PPOCRTorchError, OSError, ValueError) as exc:
        _error(str(exc))
        return 2
    results = rec.recognize(list(args.images), errors="return")
    failed = 0
    for i, (path, res) in enumerate(zip(args.images, results)):
        if isinstance(res, BaseException):
            failed += 1
            message = _strip_input_prefix(str(res), path, i)
            _error(f"{_display_path(path)}: {message}")
            if args.json:
                print(_json_line({"path": path, "error": message}), flush=True)
            continue
        if args.json:
            d = res.to_dict()
            print(_json_line({"path": path, "text": d["text"], "score": d["score"], "chars": d["chars"]}))
        else:
            print(f"{_display_path(path)}\t{res.text}\t{res.score:.4f}")
    sys.stdout.flush()
    return 1 if failed else 0


def _human(size: int) -> str:
    """``12.3MB`` style size (decimal units, no space, so the column splits on whitespace)."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{int(value)}{unit}" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1000
    return f"{size}B"


def _table(rows) -> None:
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    for r in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip())


def _cmd_models(args) -> int:
    from .download import is_verified, weights_status
    from .registry import get_entry, list_models

    rows = [("NAME", "ARCHITECTURE", "CLASSES", "HEIGHT", "SIZE", "WEIGHTS", "CHECK")]
    for name in list_models(args.pattern):
        e = get_entry(name)
        status = weights_status(e)
        if args.available and status not in ("embedded", "local", "cached"):
            continue
        size = _human(e.weights.size) if e.weights is not None and e.weights.size else "-"
        rows.append((e.name, e.architecture or e.spec.family, str(e.spec.num_classes), str(e.spec.input_height),
                     size, status, "verified" if is_verified(e) else "unverified"))
    _table(rows)
    return 0


def _cmd_download(args) -> int:
    from .download import resolve_weights
    from .registry import entries, get_entry

    if args.all and args.names:
        _error("give model names or --all, not both")
        return 2
    if not args.all and not args.names:
        _error("give one or more model names, or --all (see `ppocr-torch models`)")
        return 2
    if args.all:
        from .download import weights_status

        todo, skipped = [], []
        for e in sorted(entries(), key=lambda e: e.name):
            (skipped if weights_status(e) == "unavailable" else todo).append(e)
        for e in skipped:
            print(f"{_PROG}: {e.name}: no converted weights and no official download, skipped", file=sys.stderr)
    else:
        todo = []
        for name in args.names:
            try:
                todo.append(get_entry(name))
            except PPOCRTorchError as exc:
                _error(str(exc))
                return 2
    status = 0
    progress = False if args.quiet else None
    for e in todo:
        try:
            path = resolve_weights(e, download=True, progress=progress)
        except PPOCRTorchError as exc:  # CacheError included: disk full, read-only cache (message names both)
            _error(str(exc))
            status = 2
            continue
        except OSError as exc:  # anything else of the file system: still no traceback
            _error(f"{e.name}: {exc}")
            status = 2
            continue
        print(f"{e.name}\t{path}", flush=True)
    return status


def _cmd_cache(args) -> int:
    from .download import cache_dir, cache_files

    folder = cache_dir()
    if args.clear:
        from .download import clear_cache

        try:
            removed, skipped = clear_cache()
        except OSError as exc:
            _error(f"cannot clear {str(folder)!r}: {exc}")
            return 2
        for f in skipped:
            print(f"{_PROG}: {f['path'].name} is being downloaded by another process, kept", file=sys.stderr)
        print(f"removed {len(removed)} file(s), {_human(sum(f['size'] for f in removed))}, from {folder}")
        return 0
    files = cache_files()
    print(f"cache directory: {folder}" + ("" if folder.is_dir() else " (does not exist yet)"))
    if not files:
        print("no ppocr-torch files")
        return 0
    rows = [("FILE", "MODEL", "STATE", "SIZE")]
    for f in files:
        rows.append((f["path"].name, f["model"], f["state"], _human(f["size"])))
    _table(rows)
    total = sum(f["size"] for f in files)
    print(f"total: {len(files)} file(s), {_human(total)} ({total} bytes)")
    return 0


def _cmd_export(args) -> int:
    from .errors import ExportError, MissingDependencyError
    from .api import load_model
    from .export import DEFAULT_ATOL, DEFAULT_OPSET, check_dependencies, export_model

    if args.format != "onnx" and args.opset is not None:
        _error("--opset applies to --format onnx only")
        return 2
    try:
        check_dependencies(args.format, verify=not args.no_verify)  # before the model loads
        model = load_model(args.model, download=not args.no_download)
    except (PPOCRTorchError, OSError, ValueError) as exc:
        _error(str(exc))
        return 2
    try:
        result = export_model(model, args.out, args.format,
                              opset=args.opset if args.opset is not None else DEFAULT_OPSET,
                              verify=not args.no_verify, atol=args.atol if args.atol is not None else DEFAULT_ATOL)
    except MissingDependencyError as exc:
        _error(str(exc))
        return 2
    except ExportError as exc:  # verification failure included: nothing was written
        _error(str(exc))
        return 1
    except OSError as exc:  # the output cannot be written (a directory, read-only folder, disk full)
        _error(f"cannot write {_display_path(str(args.out))}: {exc}")
        return 2
    if result.verified:
        worst = max(result.max_abs_diff.values())
        detail = ", ".join(f"{k} {v:.2g}" for k, v in result.max_abs_diff.items())
        note = f"verified: max |diff| {worst:.2g} against the torch model (batch x width: {detail})"
    else:
        note = "not verified"
    print(f"{_display_path(str(result.path))}\t{result.format}\t{note}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    _utf8_streams()
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors: return the code instead of exiting
        return exc.code if isinstance(exc.code, int) else 2
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. `ppocr-torch recognize *.png | head`
        _silence_stdout()
        return 141
    except PPOCRTorchError as exc:
        _error(str(exc))
        return 2
