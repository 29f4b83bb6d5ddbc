"""Recognition on a Ray cluster with Ray Data (``pip install 'ppocr-torch[ray]'``); see docs/ray.md.

* :class:`RecognizeBatch`: the callable class for ``ray.data.Dataset.map_batches``. Ray builds it once per actor
  (that loads the model), then calls it on batches (numpy, pyarrow or pandas) holding a column of encoded image
  bytes or of paths; it returns the batch with ``text``, ``score`` and ``error`` columns. An input that cannot
  be read gets its message in ``error`` (``text`` and ``score`` null), the rest of its block is still read.
* :func:`recognize_dataset`: resolves the model's weights once, on the driver, then maps a dataset with a pool
  of such actors (``concurrency``, ``num_cpus``, ``num_gpus``), so that N actors do not fetch the weights N times.
* :func:`run_cli`: ``ppocr-torch recognize --ray [ADDRESS] --list paths.txt --out DIR``.

``import ray`` below is Ray itself (absolute imports); Ray is imported only when one of these is used.
"""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path
from typing import Any

from .errors import InvalidImageError, MissingDependencyError, PPOCRTorchError
from .registry import DEFAULT_MODEL

__all__ = ["RecognizeBatch", "recognize_dataset", "resolve_model", "import_ray", "run_cli", "OUTPUT_COLUMNS"]

INSTALL_HINT = "pip install 'ppocr-torch[ray]'"
OUTPUT_COLUMNS = ("text", "score", "error")
"""The columns a :class:`RecognizeBatch` adds to every batch."""
INPUT_COLUMNS = ("bytes", "path")
"""The input columns looked for, in this order, when no ``column`` is given (``bytes`` and ``path`` are the
columns of ``ray.data.read_binary_files(..., include_paths=True)``)."""

_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def import_ray():
    """The ``ray`` package with ``ray.data``; :class:`MissingDependencyError` (with the pip command) without."""
    try:
        import ray
        import ray.data  # noqa: F401  (Ray Data is an extra of Ray: ray[data])
    except ImportError as exc:
        raise MissingDependencyError(f"Ray Data is needed for this ({exc}); install it with: {INSTALL_HINT}") from exc
    return ray


# -- weights: resolved once on the driver ----------------------------------------------------------------------


def resolve_model(model: Any = DEFAULT_MODEL, *, download: bool = True) -> dict:
    """Where the actors get ``model``'s weights from, resolved here (on the driver), once.

    Returns ``{"model": name or path, "checkpoint": path or None}``. A registry model's checkpoint is found or
    downloaded now (embedded, ``$PPOCR_TORCH_WEIGHTS_DIR``, the cache, the release, the official download:
    :func:`ppocr_torch.download.resolve_weights`) and its absolute path handed to the actors; the embedded
    default model has no path to hand (each node has its own installed copy). A checkpoint path is made
    absolute and read once when it exists here, so that a file that is not a checkpoint fails now, not in every
    actor. Raises what :func:`~ppocr_torch.download.resolve_weights` and
    :func:`~ppocr_torch.checkpoint.load_checkpoint` raise.
    """
    from .api import _is_checkpoint_path
    from .download import resolve_weights
    from .registry import get_entry

    if _is_checkpoint_path(model):
        path = os.fspath(model)
        if os.path.isfile(path):
            from .checkpoint import load_checkpoint

            load_checkpoint(path)  # CheckpointError naming the file
            path = os.path.abspath(path)
        return {"model": path, "checkpoint": None}
    if not isinstance(model, str):
        raise TypeError(f"model must be a registry name or a checkpoint path, got {type(model).__name__}")
    entry = get_entry(model)
    if entry.weights is not None and entry.weights.embedded:
        return {"model": entry.name, "checkpoint": None}
    return {"model": entry.name, "checkpoint": str(Path(resolve_weights(entry, download=download)).resolve())}


def _assigned(resource: str) -> float:
    """How much of ``resource`` ("CPU", "GPU") Ray gave the current actor or task; 0 outside Ray."""
    ray = sys.modules.get("ray")
    if ray is None or not ray.is_initialized():
        return 0.0
    try:
        return float(ray.get_runtime_context().get_assigned_resources().get(resource, 0.0))
    except Exception:  # an old Ray without the call, or not inside a worker: no assignment known
        return 0.0


# -- the callable class ----------------------------------------------------------------------------------------


class RecognizeBatch:
    """Callable class for ``ray.data.Dataset.map_batches``: recognise a column of text-line images.

    Ray constructs it once per actor, so the model is loaded once per actor and reused for every batch::

        ds = ray.data.read_binary_files("s3://bucket/lines/", include_paths=True)
        ds = ds.map_batches(RecognizeBatch, fn_constructor_kwargs={"model": "PP-OCRv6_small_rec"},
                            batch_size=64, batch_format="numpy", concurrency=4, num_cpus=1)

    (:func:`recognize_dataset` does this and resolves the weights once on the driver.)

    Args:
        model: registry name or checkpoint path.
        checkpoint: the file :func:`resolve_model` found for registry model ``model`` on the driver. When it
            exists on this node it is loaded (and checked to be ``model``'s weights); otherwise ``model`` is
            resolved on this node as usual (a download is then made once per node cache, under a file lock).
        column: the input column: encoded image bytes (``bytes``/``bytearray``), or paths (local paths, or URIs
            such as ``s3://...`` read with ``pyarrow.fs``). Default: the first of ``bytes``, ``path`` present.
        device: torch device; default ``"cuda"`` when Ray gave the actor a GPU, else ``"cpu"``.
        batch_size: images per forward pass (default 8 on CPU, 32 on a GPU); the rows per call are
            ``map_batches``'s own ``batch_size``.
        mode: ``"per_image"`` (default), ``"throughput"`` or ``"paddle"``, as :class:`~ppocr_torch.Recognizer`.
        num_threads: torch CPU threads; default: the CPUs Ray gave the actor (``num_cpus``), at least 1, so that
            actors sharing a node do not oversubscribe its cores.
        download: allow this node to download weights it does not have.
        keep_images: keep the input column when it holds image bytes (default False: the bytes are dropped from
            the output, which then carries ``text``/``score``/``error`` and the other columns, e.g. ``path``).
        optimize: :class:`~ppocr_torch.Recognizer`'s opt-in speed-ups (``"compile"``, ``"int8"``).

    Returns (from ``__call__``): the batch, in the same format and row order, with three more columns: ``text``
    (str), ``score`` (float64) and ``error`` (str); a row whose input could not be used has a null ``text``, a
    null (pyarrow) or NaN (numpy, pandas) ``score`` and the reason in ``error``; ``error`` is null otherwise.

    Raises (from ``__call__``): ValueError when the batch has no usable input column or already has a column
    named ``text``, ``score`` or ``error`` (rename it first); TypeError for an unsupported batch format.
    """

    def __init__(self, model: Any = DEFAULT_MODEL, *, checkpoint: str | None = None, column: str | None = None,
                 device: Any = None, batch_size: int | None = None, mode: str = "per_image",
                 num_threads: int | None = None, download: bool = True, keep_images: bool = False,
                 optimize: Any = None):
        from .api import Recognizer

        if device is None:
            device = "cuda" if _assigned("GPU") > 0 else "cpu"
        if num_threads is None:
            num_threads = max(1, int(_assigned("CPU"))) if _assigned("CPU") else None
        if batch_size is None:
            batch_size = 8 if str(device) == "cpu" else 32
        if column is not None and column in OUTPUT_COLUMNS:
            raise ValueError(f"the input column may not be named {column!r}, an output column of RecognizeBatch; "
                             f"rename it first (ds.rename_columns({{{column!r}: 'path'}}))")
        self.column = column
        self.keep_images = keep_images
        self.recognizer = Recognizer(self._load(model, checkpoint, download), device=device, batch_size=batch_size,
                                     mode=mode, num_threads=num_threads, download=download, optimize=optimize)

    @staticmethod
    def _load(model, checkpoint, download):
        """The module from the driver's ``checkpoint`` when this node has that file, else ``model`` as given
        (resolved on this node by the Recognizer)."""
        if checkpoint is None or not os.path.isfile(checkpoint):
            return model
        from .api import _check_against_entry, load_model
        from .registry import get_entry

        loaded = load_model(checkpoint, download=download)
        if isinstance(model, str) and not os.path.isfile(model):
            _check_against_entry(loaded, get_entry(model), Path(checkpoint))
        return loaded

    def __call__(self, batch):
        kind = _batch_kind(batch)
        names = list(batch.keys()) if kind == "numpy" else list(batch.column_names if kind == "arrow"
                                                                 else batch.columns)
        column = self._input_column(names)
        if kind == "arrow":
            values = batch.column(column).to_pylist()
        else:
            values = list(batch[column])
        texts, scores, errors = self.recognize_values(values)
        drop = not self.keep_images and any(isinstance(v, (bytes, bytearray, memoryview)) for v in values)
        return _with_results(batch, kind, column if drop else None, texts, scores, errors)

    def _input_column(self, names: list) -> str:
        taken = [c for c in OUTPUT_COLUMNS if c in names]
        if taken:
            raise ValueError(f"the batch already has column(s) {', '.join(map(repr, taken))}, which RecognizeBatch "
                             f"writes; rename them first (ds.rename_columns)")
        if self.column is not None:
            if self.column not in names:
                raise ValueError(f"the batch has no column {self.column!r} (its columns: {', '.join(names)})")
            return self.column
        for name in INPUT_COLUMNS:
            if name in names:
                return name
        raise ValueError(f"the batch has none of the columns {', '.join(INPUT_COLUMNS)} (its columns: "
                         f"{', '.join(names)}); name the image column with column=")

    def recognize_values(self, values: list) -> tuple[list, list, list]:
        """Recognise a list of column values (bytes, paths or URIs); ``(texts, scores, errors)``, one entry per
        value: ``None``, ``nan`` and the reason for a value that could not be used, else ``None`` for the error."""
        from .image_io import describe_input

        inputs = [_as_input(v) for v in values]
        usable = [i for i, v in enumerate(inputs) if not isinstance(v, BaseException)]
        results: list[Any] = list(inputs)
        try:
            got = self.recognizer.recognize([inputs[i] for i in usable], errors="return")
            for j, (i, res) in enumerate(zip(usable, got)):
                # a list call names input j "input j (its description)": drop that, the row says which input it is
                results[i] = _Failed(res, describe_input(inputs[i], j)) if isinstance(res, BaseException) else res
        except Exception:  # an unexpected failure of the whole call: read one at a time, so it hits one row only
            for i in usable:
                try:
                    results[i] = self.recognizer.recognize(inputs[i])
                except Exception as exc:
                    results[i] = _Failed(exc, describe_input(inputs[i]))
        texts, scores, errors = [], [], []
        for res in results:
            if isinstance(res, (BaseException, _Failed)):
                texts.append(None)
                scores.append(float("nan"))
                errors.append(_Failed.of(res).message())
            else:
                texts.append(res.text)
                scores.append(float(res.score))
                errors.append(None)
        return texts, scores, errors


class _Failed:
    """An input's exception and the description its message may start with."""

    def __init__(self, exc: BaseException, described: str = ""):
        self.exc, self.described = exc, described

    @classmethod
    def of(cls, obj) -> "_Failed":
        return obj if isinstance(obj, cls) else cls(obj)

    def message(self) -> str:
        """One line: the reason, without the input's description; the type for an unexpected error."""
        text = str(self.exc).strip() or type(self.exc).__name__
        if self.described and text.startswith(self.described + ": "):
            text = text[len(self.described) + 2:]
        if not isinstance(self.exc, InvalidImageError):
            text = f"{type(self.exc).__name__}: {text}"
        return text.splitlines()[0]


def _as_input(value: Any):
    """A column value as a Recognizer input: bytes as they are, a local path as a path, a URI's bytes (read here,
    with pyarrow's file systems); an exception object for a value that cannot be one."""
    import numpy as np

    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, np.ndarray) and value.dtype == np.uint8 and value.ndim == 1:  # binary as a uint8 array
        return value.tobytes()
    if isinstance(value, str):
        if value.startswith("file://"):
            return value[len("file://"):]
        if _URI.match(value):
            return _read_uri(value)
        return value
    if value is None:
        return InvalidImageError("no input (null value)")
    return value  # arrays and other objects: the Recognizer accepts them or reports why not


def _read_uri(uri: str):
    """The bytes of ``uri`` (``s3://``, ``gs://``, ``hdfs://``...), within the image file size limit; an
    InvalidImageError object when it cannot be read."""
    from .image_io import MAX_FILE_BYTES_ENV, max_file_bytes

    try:
        from pyarrow import fs

        filesystem, path = fs.FileSystem.from_uri(uri)
        info = filesystem.get_file_info(path)
        if info.type != fs.FileType.File:
            return InvalidImageError(f"{uri!r}: not a file ({info.type.name.lower()})")
        limit = max_file_bytes()
        if info.size is not None and info.size > limit:
            return InvalidImageError(f"{uri!r}: {info.size} bytes, above the limit of {limit} "
                                     f"(${MAX_FILE_BYTES_ENV})")
        with filesystem.open_input_stream(path) as fh:
            data = fh.read(limit + 1)
        if len(data) > limit:
            return InvalidImageError(f"{uri!r}: above the limit of {limit} bytes (${MAX_FILE_BYTES_ENV})")
        return data
    except Exception as exc:  # unknown scheme, no credentials, network: that row only
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return InvalidImageError(f"{uri!r}: cannot be read: {reason}")


def _batch_kind(batch) -> str:
    if isinstance(batch, dict):
        return "numpy"
    module = type(batch).__module__
    if module.startswith("pyarrow"):
        return "arrow"
    if module.startswith("pandas"):
        return "pandas"
    raise TypeError(f"unsupported batch type {type(batch).__name__}: use batch_format='numpy', 'pyarrow' or 'pandas'")


def _with_results(batch, kind: str, drop: str | None, texts: list, scores: list, errors: list):
    """``batch`` with the result columns added (and the column ``drop`` removed)."""
    import numpy as np

    if kind == "numpy":
        out = {k: v for k, v in batch.items() if k != drop}
        out["text"] = np.array(texts, dtype=object)
        out["score"] = np.array(scores, dtype=np.float64)
        out["error"] = np.array(errors, dtype=object)
        return out
    if kind == "pandas":
        out = batch.drop(columns=[drop]) if drop else batch.copy()
        out["text"] = texts
        out["score"] = np.array(scores, dtype=np.float64)
        out["error"] = errors
        return out
    import pyarrow as pa

    out = batch.drop_columns([drop]) if drop else batch
    failed = np.array([e is not None for e in errors], dtype=bool)
    out = out.append_column("text", pa.array(texts, type=pa.string()))
    out = out.append_column("score", pa.array(np.array(scores, dtype=np.float64), type=pa.float64(), mask=failed))
    return out.append_column("error", pa.array(errors, type=pa.string()))


# -- the dataset function --------------------------------------------------------------------------------------


def recognize_dataset(ds, model: Any = DEFAULT_MODEL, *, column: str | None = None, concurrency: Any = 1,
                      num_cpus: float = 1, num_gpus: float = 0, batch_size: int = 64,
                      forward_batch_size: int | None = None, mode: str = "per_image", num_threads: int | None = None,
                      device: Any = None, download: bool = True, keep_images: bool = False,
                      batch_format: str = "numpy", optimize: Any = None, callable_class: type = RecognizeBatch,
                      **ray_remote_args):
    """Recognise the images of a Ray dataset; returns the (lazy) mapped dataset with ``text``/``score``/``error``.

    The model's weights are resolved here, once, on the driver (:func:`resolve_model`); the actors receive the
    checkpoint's path and load it when their node sees that file (a shared file system, or the driver's node),
    else each node resolves the model itself, once per node cache (see docs/ray.md).

    Args:
        ds: a ``ray.data.Dataset`` with a column of encoded images (``bytes``) or of paths/URIs (``path``), e.g.
            ``ray.data.read_binary_files(paths, include_paths=True)`` or ``ray.data.from_items([{"path": p}, ...])``.
        model: registry name or checkpoint path.
        column: the input column (default: ``bytes`` if present, else ``path``).
        concurrency: actors: an int, or ``(min, max)`` for an autoscaling pool (``map_batches``'s).
        num_cpus, num_gpus: resources per actor; with ``num_gpus`` the actors run on ``cuda``.
        batch_size: rows per actor call (``map_batches``'s ``batch_size``).
        forward_batch_size: images per forward pass (default 8 on CPU, 32 on GPU).
        mode, optimize: :class:`~ppocr_torch.Recognizer`'s.
        num_threads: torch threads per actor (default: ``num_cpus``, at least 1).
        device: torch device of the actors (default: ``cuda`` with ``num_gpus``, else ``cpu``).
        download: allow downloading weights (on the driver; on a node only when it lacks the driver's file).
        keep_images: keep the image bytes column in the output (default: dropped).
        batch_format: ``"numpy"`` (default), ``"pyarrow"`` or ``"pandas"``.
        callable_class: :class:`RecognizeBatch` or a subclass of it.
        **ray_remote_args: passed to ``map_batches`` (e.g. ``max_restarts``, ``max_task_retries``, ``memory``);
            Ray Data restarts a dead actor and retries its batch without limit unless told otherwise.

    Raises:
        MissingDependencyError: Ray Data is not installed. Also whatever :func:`resolve_model` raises (unknown
        model, weights not available), before any actor starts.
    """
    import_ray()
    if not (isinstance(callable_class, type) and issubclass(callable_class, RecognizeBatch)):
        raise TypeError("callable_class must be RecognizeBatch or a subclass of it")
    resolved = resolve_model(model, download=download)
    if num_threads is None:
        num_threads = max(1, int(num_cpus or 1))
    kwargs = {"checkpoint": resolved["checkpoint"], "column": column, "device": device,
              "batch_size": forward_batch_size, "mode": mode, "num_threads": num_threads, "download": download,
              "keep_images": keep_images, "optimize": optimize}
    return ds.map_batches(callable_class, fn_constructor_args=(resolved["model"],), fn_constructor_kwargs=kwargs,
                          batch_size=batch_size, batch_format=batch_format, concurrency=concurrency,
                          num_cpus=num_cpus, num_gpus=num_gpus or None, **ray_remote_args)


# -- the command line: ppocr-torch recognize --ray [ADDRESS] --list LIST --out DIR --------------------------------


def read_list(path: str) -> list[str]:
    """The inputs of a list file: one path or URI per line, blank lines skipped; local relative paths are made
    absolute against the current directory (as paths given on the command line)."""
    from .errors import DatasetError

    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as fh:
            lines = [line.rstrip("\r\n") for line in fh]
    except OSError as exc:
        raise DatasetError(f"cannot read the list {path!r}: {exc.strerror or exc}") from exc
    items = [line for line in lines if line.strip()]
    if not items:
        raise DatasetError(f"the list {path!r} names no input (one path or URI per line)")
    return [line if _URI.match(line) else os.path.abspath(line) for line in items]


def _local_out(out: str) -> Path | None:
    """``out`` as a local folder (None for a URI); refuses a folder that already holds files."""
    if _URI.match(out) and not out.startswith("file://"):
        return None
    folder = Path(out[len("file://"):] if out.startswith("file://") else out).absolute()
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise FileExistsError(f"--out {str(folder)!r} exists and is not an empty folder; give a new folder")
    return folder


def _count_results(folder: Path) -> tuple[int, int]:
    """Rows and error rows of the JSON lines written into ``folder``."""
    import json

    rows = failed = 0
    for file in sorted(folder.rglob("*.json")):
        with open(file, encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    rows += 1
                    failed += json.loads(line).get("error") is not None
    return rows, failed


def _dataset_for(ray, args, paths: list[str]):
    """The mapped dataset of the CLI's inputs; None after an error message.
    Actors: one per GPU of the cluster with ``--device cuda``, else ``cluster CPUs // threads - 1`` (one CPU left
    to Ray Data's reading and writing), at least one."""
    from .cli import _error

    resources = ray.cluster_resources()
    threads = args.threads or 1
    use_gpu = str(args.device).startswith("cuda")
    if use_gpu and resources.get("GPU", 0) < 1:
        _error(f"--device {args.device}: the Ray cluster has no GPU")
        return None
    actors = int(resources["GPU"]) if use_gpu else max(1, int(resources.get("CPU", 1) // threads) - 1)
    ds = ray.data.from_items([{"path": p} for p in paths])
    res = recognize_dataset(ds, args.model, column="path", concurrency=actors, num_cpus=threads,
                            num_gpus=1 if use_gpu else 0, forward_batch_size=args.batch_size, mode=args.mode,
                            num_threads=threads, device=args.device if use_gpu else "cpu",
                            download=not args.no_download, optimize=args.optimize)
    return res


def run_cli(args) -> int:
    """``ppocr-torch recognize --ray [ADDRESS] --list LIST --out DIR``: recognise the list's images on a Ray
    cluster (``ADDRESS``; none: ``$RAY_ADDRESS`` or a new local instance) and write JSON lines files (``path``,
    ``text``, ``score``, ``error``) into ``DIR``, a new folder filled only when the job succeeded (a local folder
    is written beside, then renamed), or a URI (``s3://...``, written in place). Exit code 0, 1 when some input
    could not be read (its row has the reason), 2 for a usage error."""
    import shutil

    from .cli import _error, _first_line

    if not args.list or not args.out or len(args.list) != 1:
        _error("--ray needs one --list LIST and --out DIR")
        return 2
    if args.resume or args.workers is not None:
        _error("--resume and --workers are for the local job, not --ray (Ray retries failed tasks itself)")
        return 2
    if args.images:
        _error("with --ray, give the inputs in --list, not as arguments")
        return 2
    ray = import_ray()
    try:
        paths = read_list(args.list[0])
        folder = _local_out(args.out)
    except (PPOCRTorchError, OSError) as exc:
        _error(str(exc))
        return 2
    started = not ray.is_initialized()
    if started:
        try:
            ray.init(address=args.ray or None)
        except Exception as exc:  # no cluster at that address, a version mismatch: one line, no traceback
            _error(f"cannot start or reach Ray{f' at {args.ray!r}' if args.ray else ''}: {_first_line(exc)}")
            return 2
    tmp = None
    try:
        res = _dataset_for(ray, args, paths)
        if res is None:
            return 2
        start = time.perf_counter()
        try:
            if folder is None:
                res.write_json(args.out, force_ascii=False)
            else:
                folder.parent.mkdir(parents=True, exist_ok=True)
                tmp = folder.with_name(f".{folder.name}.partial-{os.getpid()}")
                res.write_json(str(tmp), force_ascii=False)
                if folder.exists():
                    folder.rmdir()
                os.replace(tmp, folder)
                tmp = None
        except (PPOCRTorchError, KeyboardInterrupt):
            raise
        except Exception as exc:  # the job failed (an actor that cannot load its model, retries exhausted)
            reason = re.sub(r"\x1b\[[0-9;]*m", "", _first_line(exc))  # Ray colours the actor's name
            _error(f"the Ray job failed, nothing kept in {args.out!r}: {reason}")
            return 2
        elapsed = time.perf_counter() - start
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        if started:
            ray.shutdown()
    if folder is None:
        print(f"{len(paths)} input(s) in {elapsed:.1f} s ({len(paths) / elapsed:.1f} lines/s) -> {args.out}",
              file=sys.stderr)
        return 0
    rows, failed = _count_results(folder)
    print(f"{rows} line(s), {failed} error(s), in {elapsed:.1f} s ({rows / elapsed:.1f} lines/s) -> {folder}",
          file=sys.stderr)
    return 1 if failed else 0
