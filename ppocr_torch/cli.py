"""Command-line interface: ``ppocr-torch`` / ``python -m ppocr_torch``.

Subcommands:

* ``recognize IMG...``: one line per image, ``path<TAB>text<TAB>score`` (or JSON lines with ``--json``); folders,
  globs and ``--list`` files, ``--out results.jsonl``, ``--resume`` and ``--workers N`` run the bulk job
  (:mod:`ppocr_torch.bulk.cli`, docs/bulk.md);
* ``ocr IMG... [--json] [--draw OUT]``: whole pages, one output line per text line (:mod:`ppocr_torch.page.cli`);
* ``models [PATTERN] [--available]``: the registry models and where their weights are;
* ``download MODEL...|--all [-q]``: fetch registry weights into the cache (for offline use later);
* ``cache [--clear]``: the cache directory, ppocr-torch's files in it and their sizes;
* ``train --model M [--charset DICT] --train LIST[,LIST] [--val LIST] --epochs N --out DIR``: fine-tune a model
  (``--resume`` continues a run); see docs/training.md;
* ``eval --model CKPT --val LIST``: exact match, character accuracy and normalised edit distance on labelled lines;
* ``export MODEL --format onnx|torchscript|exported-program --out PATH [--no-verify]``: write the model as a
  self-describing ONNX, TorchScript or ExportedProgram file, verified against the torch model first.

Exit codes: 0 success; 1 some image could not be read (the others are still printed; with ``--out``: an error
record is in the output), or ``export``: the model could not be exported or its file did not reproduce the torch
model (nothing is written); 2 usage error, unknown model, weights unavailable, a bulk job's output that exists
(without ``--resume``) or cannot be resumed, a list file or glob that cannot be used, a worker process that died, a
checkpoint or training state that is not valid, a device that cannot be used, the cache cannot be written (disk
full, read-only), a data list or LMDB folder that cannot be used (missing, unreadable, bad ratio, no usable sample),
a dictionary file that cannot be read, a missing optional dependency (``pip install 'ppocr-torch[train]'`` /
``[export]``), or an export output that cannot be written; 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

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
    rec.add_argument("images", nargs="*", metavar="IMG",
                     help="image files (one text line each), folders (their images, recursively) or quoted globs")
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
    rec.add_argument("--long-lines", choices=("split", "refuse"), default="split",
                     help="a line wider than 32,000 px at model height: split (default: read it in overlapping "
                          "windows, up to 1,000,000 px) or refuse (an error for that image)")
    rec.add_argument("--no-download", action="store_true", help="never download weights")
    rec.add_argument("--threads", type=_positive_int, default=None,
                     help="CPU threads (default: $PPOCR_TORCH_THREADS, else one per core); on a busy host use fewer")
    from .bulk.cli import add_arguments as add_bulk_arguments

    add_bulk_arguments(rec, _positive_int)
    # -- Ray Data front end (ppocr_torch/ray.py, docs/ray.md): --list and --out as above, one list --
    rec.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                     help="run on a Ray cluster (ADDRESS; none: $RAY_ADDRESS or a new local instance) with "
                          "--list LIST and --out DIR (a new folder or URI of JSON lines); needs "
                          "`pip install 'ppocr-torch[ray]'`")
    rec.set_defaults(func=_cmd_recognize, usage=rec.format_usage)

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
    _add_train_parsers(sub)

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
    exp.add_argument("--atol", type=_nonnegative_float, default=None,
                     help="largest max |difference| of probabilities accepted by the verification (default: 1e-5)")
    exp.add_argument("--no-download", action="store_true", help="never download weights")
    exp.set_defaults(func=_cmd_export)

    from .page.cli import add_ocr_parser  # `ocr`: whole pages, its own module

    add_ocr_parser(sub, positive_int=_positive_int, fraction=_fraction, positive_float=_positive_float)
    return parser


def _add_train_parsers(sub) -> None:
    tr = sub.add_parser("train", help="fine-tune a model on labelled text lines",
                        description="Fine-tune a recognition model on PaddleOCR label files (path<TAB>text) or LMDB "
                                    "folders, optionally for a new character set (--charset). Writes latest.pth, "
                                    "best.pth, resume.pt and metrics.jsonl into --out. See docs/training.md.")
    tr.add_argument("--model", help="registry name or checkpoint path to start from (not with --resume)")
    tr.add_argument("--charset", metavar="DICT",
                    help="dictionary file of the new character set, one character per line (default: the model's)")
    tr.add_argument("--space-char", dest="use_space_char", action=argparse.BooleanOptionalAction, default=None,
                    help="with --charset: add (or not) the space class (default: as the model)")
    tr.add_argument("--train", metavar="LIST[:RATIO][,...]",
                    help="training data: label files or LMDB folders, comma-separated, each optionally sampled "
                         "with a ratio (e.g. real.txt,synth.txt:0.3)")
    tr.add_argument("--val", metavar="LIST[,...]", help="validation data (best.pth follows its accuracy)")
    tr.add_argument("--data-dir", help="folder the label files' image paths are relative to (default: each label "
                                       "file's folder)")
    tr.add_argument("--epochs", type=_positive_int, default=10, help="epochs (default: 10)")
    tr.add_argument("--out", help="output folder (with --resume: default the resume file's folder)")
    tr.add_argument("--batch-size", type=_positive_int, default=32, help="batch size (default: 32)")
    tr.add_argument("--lr", type=_positive_float, default=1e-4, help="peak learning rate (default: 1e-4)")
    tr.add_argument("--backbone-lr-mult", type=_nonnegative_float, default=None,
                    help="backbone learning rate = lr x this (default: 0.1 for deploy-form models, 1 for train form)")
    tr.add_argument("--warmup", type=_fraction, default=0.05,
                    help="share of the steps spent in linear warm-up (default: 0.05)")
    tr.add_argument("--weight-decay", type=_nonnegative_float, default=0.01, help="AdamW weight decay (default: 0.01)")
    tr.add_argument("--grad-clip", type=_positive_float, default=5.0, help="largest gradient norm (default: 5)")
    tr.add_argument("--max-text-length", type=_positive_int, default=25,
                    help="longest label trained on (default: 25, PaddleOCR's)")
    tr.add_argument("--image-width", type=_positive_int, default=None,
                    help="training input width (default: the model's base width, 320)")
    tr.add_argument("--no-augment", action="store_true", help="no augmentation")
    tr.add_argument("--aug-prob", type=_fraction, default=0.4, help="share of samples augmented (default: 0.4)")
    tr.add_argument("--unknown-chars", choices=("skip", "remove"), default="skip",
                    help="labels with characters outside the set: skip the sample (default) or remove the "
                         "characters (PaddleOCR)")
    tr.add_argument("--workers", type=_nonnegative_int, default=2, help="data loading processes (default: 2)")
    tr.add_argument("--device", default="cpu", help="torch device (default: cpu; CUDA trains with float16 autocast)")
    tr.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    tr.add_argument("--keep-epochs", action="store_true", help="also keep every epoch's model (epoch_NNN.pth)")
    tr.add_argument("--guide-stop", action="store_true",
                    help="keep PaddleOCR's gradient stop of the v3-v5 SVTR neck (the CTC loss then trains only the "
                         "neck and head; default: lifted, so it trains the backbone too)")
    tr.add_argument("--log-every", type=_nonnegative_int, default=10,
                    help="write a step line to metrics.jsonl every N steps (default: 10; 0: never)")
    tr.add_argument("--resume", nargs="?", const="", default=None, metavar="STATE",
                    help="continue a run from its resume.pt (or the folder holding it; default: --out) after its "
                         "last finished epoch; --train/--val/--data-dir/--device/--workers may change, the rest is "
                         "the saved run's")
    tr.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    tr.set_defaults(func=_cmd_train)

    ev = sub.add_parser("eval", help="measure a model on labelled text lines",
                        description="Recognise labelled lines (label files or LMDB folders) and print exact match "
                                    "(acc), character accuracy (char_acc), PaddleOCR's norm_edit_dis, the character "
                                    "error rate (cer) and the CTC loss. Lines are resized as in training.")
    ev.add_argument("--model", required=True, help="checkpoint path or registry name")
    ev.add_argument("--val", required=True, metavar="LIST[,...]", help="label files or LMDB folders")
    ev.add_argument("--data-dir", help="folder the label files' image paths are relative to")
    ev.add_argument("--batch-size", type=_positive_int, default=32, help="batch size (default: 32)")
    ev.add_argument("--image-width", type=_positive_int, default=None,
                    help="input width (default: the model's base width, 320)")
    ev.add_argument("--workers", type=_nonnegative_int, default=0, help="data loading processes (default: 0)")
    ev.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    ev.add_argument("--no-download", action="store_true", help="never download weights")
    ev.add_argument("--json", action="store_true", help="print the metrics as one JSON object")
    ev.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    ev.set_defaults(func=_cmd_eval)


def _int_at_least(minimum: int):
    """An argparse type: an integer >= ``minimum``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value
    return parse


_positive_int = _int_at_least(1)
_nonnegative_int = _int_at_least(0)


def _float(text: str) -> float:
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"not a finite number: {text!r}")
    return value


def _positive_float(text: str) -> float:
    value = _float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
    return value


def _nonnegative_float(text: str) -> float:
    value = _float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, got {text}")
    return value


def _fraction(text: str) -> float:
    value = _float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be within [0, 1], got {text}")
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


def _setup_failed(exc: BaseException, device) -> int:
    """Print why a command could not start (the model, its weights or file, the device, the data) and give exit
    code 2; a DeviceError is torch failing to move the model to the device, reported with its first line."""
    if isinstance(exc, DeviceError):
        _error(f"cannot use device {device!r}: {_first_line(exc.__cause__ or exc)}")
    else:
        _error(str(exc))
    return 2


def _device_usable(device: str) -> bool:
    """False (the reason printed) when ``device`` cannot be used at all."""
    problem = _device_problem(device)
    if problem:
        _error(f"cannot use device {device!r}: {problem}")
    return not problem


def _cmd_recognize(args) -> int:
    if args.ray is not None:  # Ray Data front end: ppocr_torch/ray.py
        from .ray import run_cli
        return run_cli(args)
    from .api import Recognizer
    from .bulk import cli as bulk_cli

    if not args.images and not args.list:
        print(args.usage(), end="", file=sys.stderr)
        _error("recognize needs images, folders, globs or --list")
        return 2
    if bulk_cli.wanted(args):
        return bulk_cli.run(args)
    if not _device_usable(args.device):
        return 2
    try:
        rec = Recognizer(args.model, device=args.device, batch_size=args.batch_size, mode=args.mode,
                         download=not args.no_download, num_threads=args.threads,
                         optimize=args.optimize, long_lines=args.long_lines)
    except (PPOCRTorchError, OSError, ValueError) as exc:
        return _setup_failed(exc, args.device)
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


def _cmd_train(args) -> int:
    if not _device_usable(args.device):
        return 2
    progress = False if args.quiet else None
    try:
        if args.resume is not None:
            from .training import resume_training

            state = args.resume or args.out
            if not state:
                _error("--resume needs the resume file or run folder (or --out)")
                return 2
            ignored = [flag for flag, value in (("--model", args.model), ("--charset", args.charset)) if value]
            if ignored:
                print(f"{_PROG}: {' and '.join(ignored)} ignored: a resumed run keeps its model", file=sys.stderr)
            overrides = {"train": args.train, "val": args.val, "data_dir": args.data_dir, "device": args.device,
                         "workers": args.workers, "out": args.out if args.resume else None}
            result = resume_training(state, overrides=overrides, progress=progress)
        else:
            missing = [flag for flag, value in (("--model", args.model), ("--train", args.train), ("--out", args.out))
                       if not value]
            if missing:
                _error(f"train needs {', '.join(missing)} (or --resume)")
                return 2
            import torch

            from .api import load_model
            from .training import TrainConfig, train

            config = TrainConfig(
                train=args.train, val=args.val or [], out=args.out, epochs=args.epochs, batch_size=args.batch_size,
                lr=args.lr, backbone_lr_mult=args.backbone_lr_mult, warmup_ratio=args.warmup,
                weight_decay=args.weight_decay, grad_clip=args.grad_clip, seed=args.seed, workers=args.workers,
                device=args.device, image_width=args.image_width, max_text_length=args.max_text_length,
                augment=not args.no_augment, aug_prob=args.aug_prob, unknown_chars=args.unknown_chars,
                data_dir=args.data_dir, log_every=args.log_every, keep_epochs=args.keep_epochs,
                guide_stop=args.guide_stop)
            config.check()
            torch.manual_seed(args.seed)  # the fresh classifier rows of a new charset
            model = load_model(args.model, charset=args.charset, use_space_char=args.use_space_char)
            result = train(model, config, progress=progress)
    except (PPOCRTorchError, OSError, ValueError) as exc:
        return _setup_failed(exc, args.device)
    last = result["history"][-1] if result["history"] else {}
    line = f"{result['epochs_done']} epoch(s), {result['step']} steps, {result['train_samples']} training lines"
    if last:
        line += f"; last epoch: train_loss {last['train_loss']:.4f}"
        if "val" in last:
            line += f", val acc {last['val']['acc']:.4f}, char_acc {last['val']['char_acc']:.4f}"
    print(line)
    print(f"best: {Path(result['out']) / 'best.pth'}; log: {Path(result['out']) / 'metrics.jsonl'}")
    return 0


def _cmd_eval(args) -> int:
    if not _device_usable(args.device):
        return 2
    from .api import load_model
    from .training import evaluate

    try:
        model = load_model(args.model, device=args.device, download=not args.no_download)
        metrics = evaluate(model, args.val, batch_size=args.batch_size, workers=args.workers,
                           image_width=args.image_width, data_dir=args.data_dir,
                           progress=False if args.quiet else None)
    except (PPOCRTorchError, OSError, ValueError) as exc:
        return _setup_failed(exc, args.device)
    if args.json:
        print(_json_line(metrics))
    else:
        for key in ("n", "acc", "char_acc", "norm_edit_dis", "cer", "loss"):
            value = metrics[key]
            print(f"{key}\t{value:.6f}" if isinstance(value, float) else f"{key}\t{value}")
        skipped = sum(metrics["skipped"].values()) + metrics["dropped"]
        if skipped:
            print(f"{_PROG}: {skipped} line(s) not evaluated: {metrics['skipped']}, undecodable {metrics['dropped']}",
                  file=sys.stderr)
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
