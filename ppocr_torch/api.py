"""The public API: :func:`load_model`, :class:`Recognizer` and the one-liner :func:`recognize`.

A :class:`Recognizer` turns text-line images (paths, encoded bytes, numpy arrays, PIL images) into
:class:`~ppocr_torch.decode.RecResult` objects::

    from ppocr_torch import Recognizer
    rec = Recognizer()                      # PP-OCRv6_small_rec, embedded in the package
    rec("line.png").text                    # one image -> one RecResult
    [r.text for r in rec(["a.png", "b.png"])]   # a list -> a list, in input order
"""

from __future__ import annotations

import copy
import functools
import os
import threading
from pathlib import Path
from typing import Any, Sequence

from .errors import CheckpointError, DeviceError, InvalidImageError, SpecMismatchError

from .registry import DEFAULT_MODEL  # stdlib-only import chain: importing the registry loads no torch

__all__ = ["load_model", "list_models", "Recognizer", "recognize"]

_MODES = ("per_image", "throughput", "paddle")
_CHANNEL_ORDERS = ("bgr", "rgb")
_ERRORS = ("raise", "return")
_LONG_LINES = ("split", "refuse")
_CHECKPOINT_SUFFIXES = (".pth", ".pt")

# Models built from checkpoint files, on the CPU, keyed by (resolved path, size, mtime_ns).
# load_model hands out deep copies, so a caller modifying its model never affects another caller.
_model_cache: dict[tuple[str, int, int], Any] = {}
_model_cache_lock = threading.Lock()
_MODEL_CACHE_SIZE = 4

_recognizers: dict[tuple, "Recognizer"] = {}
_recognizers_lock = threading.Lock()

def list_models(pattern: str | None = None) -> list[str]:
    """Names of the registry models, optionally filtered by an fnmatch ``pattern`` (case-insensitive)."""
    from .registry import list_models as _list

    return _list(pattern)


def _is_checkpoint_path(obj: Any) -> bool:
    """A str/PathLike naming an existing file, or ending in .pth/.pt, is a checkpoint path."""
    if isinstance(obj, os.PathLike):
        return True
    if not isinstance(obj, str):
        return False
    return obj.lower().endswith(_CHECKPOINT_SUFFIXES) or os.path.isfile(obj)


def _load_cpu_model(path: Path):
    """A fresh CPU RecModel from ``path``, built once per file version and deep-copied afterwards."""
    from .checkpoint import load_checkpoint

    try:
        st = path.stat()
        key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    except OSError:
        return load_checkpoint(path)  # raises CheckpointError naming the file
    with _model_cache_lock:
        cached = _model_cache.get(key)
    if cached is None:
        cached = load_checkpoint(path)
        with _model_cache_lock:
            _model_cache[key] = cached
            while len(_model_cache) > _MODEL_CACHE_SIZE:
                _model_cache.pop(next(iter(_model_cache)))
    return copy.deepcopy(cached)


def _check_against_entry(model, entry, path: Path) -> None:
    """Raise SpecMismatchError when a registry checkpoint describes another model than its entry."""
    spec = model.spec
    problems = []
    if spec.name != entry.spec.name:
        problems.append(f"it is model {spec.name!r}")
    if spec.num_classes != entry.spec.num_classes:
        problems.append(f"it has {spec.num_classes} classes, the registry says {entry.spec.num_classes}")
    if spec.input_height != entry.spec.input_height:
        problems.append(f"its input height is {spec.input_height}, the registry says {entry.spec.input_height}")
    if problems:
        raise SpecMismatchError(
            f"checkpoint {str(path)!r} does not match registry model {entry.name!r}: {'; '.join(problems)}"
        )


def load_model(name_or_path: str | os.PathLike, *, device: Any = "cpu", download: bool = True,
               pretrained: bool = True, charset: Any = None, use_space_char: bool | None = None):
    """Load a recognition model as a :class:`~ppocr_torch.models.RecModel` in eval mode on ``device``.

    Args:
        name_or_path: a registry name or alias (see :func:`list_models`), or the path of a
            ppocr_torch checkpoint (an existing file, or any name ending in ``.pth``/``.pt``).
        device: torch device for the model.
        download: allow downloading registry weights that are not cached yet.
        pretrained: False builds a registry model with random weights (its architecture, dictionary and
            class count only: for training or inspection); needs no weights file.
        charset: a new character set to fine-tune for: a PaddleOCR dictionary file (one character per line) or
            the characters themselves, in class order. The classifier is rebuilt for it (``model.reset_head``):
            backbone and neck are kept, the blank's row and the rows of the characters the old set also has are
            copied, the others are freshly initialised (under the caller's torch seed); the spec records the new
            dictionary and class count, so a saved checkpoint describes itself. Default: the model's own set.
        use_space_char: with ``charset``, append the space class (PaddleOCR's ``use_space_char``); default: as
            the loaded model.

    Returns:
        A new module on every call (safe to modify); files are only read once per process.

    Raises:
        UnknownModelError: not a registry name and not a checkpoint file.
        WeightsNotCachedError, DownloadError, ChecksumError: the registry weights cannot be obtained.
        CacheError: the weights cannot be written to the cache (disk full, read-only folder).
        CheckpointError: the file is not a valid ppocr_torch checkpoint.
        SpecMismatchError: the checkpoint disagrees with its character set or registry entry.
        DeviceError: the model cannot be moved to ``device``.
        FileNotFoundError, UnsupportedFileError: ``charset`` names a dictionary file that cannot be read.
        ValueError: ``charset`` is empty, or ``use_space_char`` is given without ``charset``.
    """
    if charset is None and use_space_char is not None:
        raise ValueError("use_space_char applies to a new charset; pass charset too")
    if charset is None:
        model = _load_cpu_model_for(name_or_path, download=download, pretrained=pretrained)
    else:
        import torch

        # Building a model draws from torch's generator, but a cached file is only deep-copied: keep the caller's
        # generator state for the fresh rows, so that they depend on the caller's seed alone.
        rng = torch.get_rng_state()
        model = _load_cpu_model_for(name_or_path, download=download, pretrained=pretrained)
        torch.set_rng_state(rng)
    if model.spec is not None and model.spec.extra.get("verification") == "unverified":
        _warn_unverified(model.spec.name)
    if charset is not None:
        model.reset_head(charset, use_space_char=use_space_char)
    return _to_device(model, device).eval()


def _load_cpu_model_for(name_or_path, *, download: bool, pretrained: bool):
    """The CPU RecModel of a registry name or checkpoint path (see :func:`load_model`)."""
    if _is_checkpoint_path(name_or_path):
        model = _load_cpu_model(Path(name_or_path))
        task = getattr(model.spec, "task", None)
        if task is not None:  # a text detector / orientation classifier (ppocr_torch.page_models)
            raise CheckpointError(f"checkpoint {str(name_or_path)!r} holds a "
                                  f"{'text detector' if task == 'det' else 'text-line orientation classifier'} "
                                  f"({model.spec.name!r}), not a recogniser: load it with "
                                  f"ppocr_torch.{'load_detector' if task == 'det' else 'load_orientation'}()")
    elif isinstance(name_or_path, str) and not pretrained:
        from .charset import packaged_charset
        from .models import build_model
        from .registry import get_entry

        spec = get_entry(name_or_path).spec
        model = build_model(spec, charset=packaged_charset(spec))
    elif isinstance(name_or_path, str):
        from .download import resolve_weights
        from .registry import get_entry

        entry = get_entry(name_or_path)
        path = resolve_weights(entry, download=download)
        model = _load_cpu_model(path)
        _check_against_entry(model, entry, path)
    else:
        raise TypeError(f"name_or_path must be a model name or a checkpoint path, got "
                        f"{type(name_or_path).__name__}")
    return model


def _to_device(model, device):
    """``model.to(device)``; a failure of the move itself (device not available, out of its memory) is a
    DeviceError, so that it is never confused with a problem of the model or its file."""
    try:
        return model.to(device)
    except (RuntimeError, AssertionError, ValueError) as exc:  # AssertionError: torch built without CUDA
        text = str(exc).strip()
        raise DeviceError(f"cannot move the model to device {str(device)!r}: "
                          f"{text.splitlines()[0] if text else type(exc).__name__}") from exc


@functools.lru_cache(maxsize=None)
def _warn_unverified(name: str) -> None:
    """One warning per model and process: its weights were converted by structure only."""
    import warnings

    from .official import VERIFY_COMMAND

    warnings.warn(f"model {name!r} is unverified: its weights were converted here from PaddleOCR's official export "
                  f"by structure (every tensor filled exactly once) but never compared with the official runtime; "
                  f"verify and record it with `{VERIFY_COMMAND.format(name=name)}`", UserWarning, stacklevel=3)


def _check_choice(what: str, value: Any, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ValueError(f"{what} must be one of {', '.join(map(repr, choices))}; got {value!r}")


def _env_threads() -> int | None:
    """``$PPOCR_TORCH_THREADS`` as a positive int, or None when unset."""
    raw = os.environ.get("PPOCR_TORCH_THREADS", "").strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"$PPOCR_TORCH_THREADS must be a positive integer, got {raw!r}")
    return value


class Recognizer:
    """Text-line recognizer: load a model once, recognize images many times (thread-safe).

    Args:
        model: registry name/alias, checkpoint path, or an already-built RecModel (moved to
            ``device`` and put in eval mode in place).
        device: torch device to run on.
        batch_size: most images per forward pass.
        mode: ``"per_image"`` (default): every image is resized to its own width, so its result does
            not depend on the other images of the call; ``"paddle"``: PaddleOCR's ``predict_rec``
            batching (sorted by aspect ratio, each batch padded to its widest image); ``"throughput"``: as
            ``"per_image"``, then padded to a width bucket (at most 1/8 wider) so that lines of many widths
            share batches; a result still depends only on its own image (the text agrees with
            ``"per_image"`` on the rendered test lines, see docs/speed.md).
        channel_order: ``"bgr"`` or ``"rgb"``, the channel order of 3/4-channel numpy inputs.
        download: allow downloading registry weights that are not cached yet.
        num_threads: CPU threads for torch's operators (``torch.set_num_threads``: process-wide). ``None``
            (default): ``$PPOCR_TORCH_THREADS`` when set, else torch's own default (one per core). On a host
            where other processes keep cores busy, fewer threads than cores is faster (see the README).
        optimize: opt-in speed-ups, a list or comma-separated string of ``"compile"`` (``torch.compile``,
            inductor with freezing; the first calls compile) and ``"int8"`` (dynamic int8 quantisation of the
            classifier, CPU only). Each changes the probabilities slightly; their measured speed and parity
            cost are in docs/speed.md. Default: none (float32, the official outputs within fp32 noise).
        max_width: the widest line (px at model height) read in one pass, as today; default 32,000, at most
            that.
        long_lines: what happens to a wider line: ``"split"`` (default): it is read in overlapping windows
            merged by CTC time step (:mod:`ppocr_torch.long_lines`; the same way in every mode), up to
            1,000,000 px at model height; ``"refuse"``: it is an ``InvalidImageError``. Above 1,000,000 px a line
            is always refused.

    Attributes:
        model, spec, charset, device, batch_size, mode, channel_order, max_width, long_lines.
    """

    def __init__(self, model: Any = DEFAULT_MODEL, *, device: Any = "cpu", batch_size: int = 8,
                 mode: str = "per_image", channel_order: str = "bgr", download: bool = True,
                 num_threads: int | None = None, optimize: Any = None, max_width: int | None = None,
                 long_lines: str = "split"):
        import torch

        from .long_lines import OVERLAP
        from .models.optimize import OptimizationError, apply_optimizations, parse_optimize
        from .preprocess import DEFAULT_MAX_WIDTH

        threads = num_threads if num_threads is not None else _env_threads()
        if threads is not None:
            if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
                raise ValueError(f"num_threads must be a positive integer, got {threads!r}")
            torch.set_num_threads(threads)
        _check_choice("mode", mode, _MODES)
        _check_choice("channel_order", channel_order, _CHANNEL_ORDERS)
        _check_choice("long_lines", long_lines, _LONG_LINES)
        if max_width is None:
            max_width = DEFAULT_MAX_WIDTH
        least = 2 * OVERLAP if long_lines == "split" else 1
        if isinstance(max_width, bool) or not isinstance(max_width, int) or not least <= max_width <= DEFAULT_MAX_WIDTH:
            raise ValueError(f"max_width must be an integer from {least} to {DEFAULT_MAX_WIDTH} (with "
                             f"long_lines={long_lines!r}), got {max_width!r}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.device = torch.device(device)
        if isinstance(model, torch.nn.Module):
            if getattr(model, "spec", None) is None or getattr(model, "charset", None) is None:
                raise ValueError("model must be a RecModel with .spec and .charset (see load_model)")
            self.model = _to_device(model, self.device).eval()
        else:
            self.model = load_model(model, device=self.device, download=download)
        self.spec = self.model.spec
        self.charset = list(self.model.charset)
        self.optimize = parse_optimize(optimize)
        if "int8" in self.optimize and self.device.type != "cpu":
            raise OptimizationError(f"optimisation 'int8' runs on CPU only, not on device {str(self.device)!r}")
        self._forward = apply_optimizations(self.model, self.optimize) if self.optimize else self.model
        self.batch_size = batch_size
        self.mode = mode
        self.channel_order = channel_order
        self.max_width = max_width
        self.long_lines = long_lines
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (f"Recognizer(model={self.spec.name!r}, device={str(self.device)!r}, "
                f"batch_size={self.batch_size}, mode={self.mode!r})")

    def __call__(self, images: Any, *, errors: str = "raise"):
        """Same as :meth:`recognize`."""
        return self.recognize(images, errors=errors)

    def recognize(self, images: Any, *, errors: str = "raise"):
        """Recognize one image or a list/tuple of images.

        Args:
            images: one image (path, bytes, numpy array, PIL image) or a list/tuple of them.
            errors: ``"raise"`` (default): the first unusable input raises; ``"return"``: an unusable
                input gets its exception object in its result slot and the others are still
                recognized.

        Returns:
            A :class:`RecResult` for one image; a list (input order) for a list/tuple.

        Raises:
            InvalidImageError: an input cannot be used (``errors="raise"``); for lists the message
                names the input's index, e.g. ``"input 3 (path 'x.png'): file not found"``.
        """
        _check_choice("errors", errors, _ERRORS)
        single = not isinstance(images, (list, tuple))
        items = [images] if single else list(images)
        results = self._run(items, names=[None] if single else [f"input {i}" for i in range(len(items))],
                            errors=errors)
        return results[0] if single else results

    def recognize_with_errors(self, images: Sequence[Any]) -> list:
        """``recognize(list(images), errors="return")``: RecResult or exception per input."""
        return self.recognize(list(images), errors="return")

    # -- internals: everything per call lives in locals, so concurrent calls do not interfere --------

    def _run(self, items: list, *, names: list, errors: str) -> list:
        """Decode and check every input, recognise the usable ones in batches, then the long lines in windows."""
        from .image_io import load_image

        results: list[Any] = [None] * len(items)
        loaded: dict[int, Any] = {}
        long: dict[int, Any] = {}
        for i, obj in enumerate(items):
            try:
                img = load_image(obj, channel_order=self.channel_order, name=names[i])
                is_long = self._check_width(img, names[i] or "image")
            except InvalidImageError as exc:
                if errors == "raise":
                    raise
                results[i] = exc
                continue
            (long if is_long else loaded)[i] = img
        if loaded:
            indices = list(loaded)
            images = [loaded[i] for i in indices]
            for j, res in zip(*self._recognize_arrays(images)):
                results[indices[j]] = res
        for i in list(long):
            results[i] = self._recognize_long(long.pop(i))
        return results

    def _check_width(self, img, name: str) -> bool:
        """Reject images too wide before batching (so one cannot fail a batch); True for a line wider than
        ``max_width`` that is to be read in windows."""
        from .long_lines import MAX_SPLIT_WIDTH

        height = self.spec.input_height
        width = self._own_width(img)
        if width <= self.max_width:
            return False
        h, w = img.shape[:2]
        if self.long_lines == "refuse":
            raise InvalidImageError(
                f"{name}: {w}x{h} (width x height) would be {width} px wide at height {height}, above "
                f"the limit of {self.max_width}; split the text line into shorter pieces"
            )
        if width > MAX_SPLIT_WIDTH:
            raise InvalidImageError(
                f"{name}: {w}x{h} (width x height) would be {width} px wide at height {height}, above "
                f"the limit of {MAX_SPLIT_WIDTH} for a line read in windows; split the text line into shorter pieces"
            )
        return True

    def _recognize_long(self, img):
        """Read a line wider than ``max_width`` in overlapping windows (see :mod:`ppocr_torch.long_lines`)."""
        from .decode import decode_steps
        from .long_lines import OVERLAP, WINDOW, read_long_line

        window = min(WINDOW, self.max_width // 8 * 8)
        idx, prob = read_long_line(img, self.spec.input_height, self._own_width(img), self._forward_steps,
                                   window=window, overlap=OVERLAP,
                                   batch_px=min(self.batch_size, 2) * window)
        return decode_steps(idx, prob, self.charset, reverse=bool(self.spec.extra.get("reverse_text", False)))

    def _forward_steps(self, batch):
        """Run the model on a float32 [n, 3, H, W] array; the arg-max class and its probability per step,
        two [n, T] numpy arrays (the [n, T, C] probabilities are not kept)."""
        import torch

        x = torch.from_numpy(batch)
        with self._lock, torch.inference_mode():
            probs = self._forward(x.to(self.device))
            prob, idx = probs.float().max(dim=2)  # the first maximum on ties, as numpy's argmax
            return idx.cpu().numpy(), prob.cpu().numpy()

    def _recognize_arrays(self, images: list, load=None) -> tuple[list[int], list]:
        """Recognize uint8 BGR arrays; returns (positions, results) in matching order. With ``load``, ``images``
        need only a ``.shape`` and ``load(j)`` gives image ``j`` when its batch is prepared."""
        from .preprocess import bucket_width, prepare_batch, sort_for_batching

        if load is None:
            load = images.__getitem__
        height, base = self.spec.input_height, self.spec.base_width
        positions: list[int] = []
        results: list = []
        if self.mode == "paddle":
            order = sort_for_batching(images, height)
            for start in range(0, len(order), self.batch_size):
                chunk = order[start:start + self.batch_size]
                batch = prepare_batch([load(i) for i in chunk], height, mode="paddle", base_width=base)
                positions.extend(chunk)
                results.extend(self._forward_decode(batch))
            return positions, results
        # per_image / throughput: group by own width or its bucket (one cheap pass), then preprocess and
        # run chunk by chunk so that only one chunk's float arrays are in memory at a time.
        groups: dict[int, list[int]] = {}
        for i, img in enumerate(images):
            width = self._own_width(img)
            groups.setdefault(bucket_width(width, base) if self.mode == "throughput" else width, []).append(i)
        for width in sorted(groups):
            members = groups[width]
            for start in range(0, len(members), self.batch_size):
                chunk = members[start:start + self.batch_size]
                ((local, batch),) = prepare_batch([load(i) for i in chunk], height, mode=self.mode,
                                                  base_width=base)
                positions.extend(chunk[k] for k in local)
                results.extend(self._forward_decode(batch))
        return positions, results

    def _own_width(self, img) -> int:
        """Width of ``img`` preprocessed alone: ``int(height * max(base_width / height, w / h))``."""
        from .preprocess import batch_width_ratio

        height = self.spec.input_height
        return int(height * batch_width_ratio([img], height, self.spec.base_width))

    def _forward_decode(self, batch) -> list:
        """Run the model on a float32 [n, 3, H, W] array and decode every row."""
        import numpy as np
        import torch

        from .decode import ctc_greedy_decode

        x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))
        with self._lock, torch.inference_mode():
            probs = self._forward(x.to(self.device))
            probs = probs.float().cpu().numpy()
        return ctc_greedy_decode(probs, self.charset, reverse=bool(self.spec.extra.get("reverse_text", False)))


def recognize(images: Any, *, model: Any = DEFAULT_MODEL, device: Any = "cpu", batch_size: int = 8,
              mode: str = "per_image", channel_order: str = "bgr", errors: str = "raise"):
    """One-liner: recognize ``images`` with a process-wide shared :class:`Recognizer`.

    The Recognizer for each (model, device, batch_size, mode, channel_order) is built on first use and
    reused afterwards. Returns a RecResult for one image, a list for a list/tuple. ``errors`` is
    :meth:`Recognizer.recognize`'s: ``"raise"`` (default) or ``"return"`` (an unusable input gets its
    exception in its result slot).
    """
    _check_choice("errors", errors, _ERRORS)
    if not isinstance(model, (str, os.PathLike)):
        return Recognizer(model, device=device, batch_size=batch_size, mode=mode,
                          channel_order=channel_order)(images, errors=errors)
    key = (os.fspath(model), str(device), batch_size, mode, channel_order)
    rec = _recognizers.get(key)
    if rec is None:
        with _recognizers_lock:
            rec = _recognizers.get(key)
            if rec is None:
                rec = Recognizer(model, device=device, batch_size=batch_size, mode=mode,
                                 channel_order=channel_order)
                _recognizers[key] = rec
    return rec(images, errors=errors)
