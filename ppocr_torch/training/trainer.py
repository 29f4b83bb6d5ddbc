"""The fine-tuning loop: CTC loss, AdamW with warm-up and cosine decay, checkpoints, resume and evaluation.

Output folder (``TrainConfig.out``):

* ``latest.pth``: the model after the last finished epoch, a ppocr_torch checkpoint (``load_model`` /
  ``Recognizer`` read it; its ``meta`` holds the epoch, step, training loss and validation metrics);
* ``best.pth``: the model of the best epoch so far (highest validation ``acc``, ties broken by ``char_acc``;
  lowest training loss when there is no validation data);
* ``epoch_NNN.pth``: every epoch's model, with ``keep_epochs=True``;
* ``resume.pt``: everything needed to continue after the last finished epoch (model, optimizer, scheduler and
  gradient-scaler states, epoch, step, configuration), tensors and plain data only, read with
  ``weights_only=True``;
* ``metrics.jsonl``: one JSON object per line: ``{"event": "start"|"resume"}``, ``{"event": "step"}`` every
  ``log_every`` steps, ``{"event": "epoch"}`` after every epoch, ``{"event": "end"|"stopped"}``.

Every epoch re-seeds Python's, numpy's and torch's generators (and the loader's shuffling) with ``seed + epoch``,
so an interrupted run resumed from ``resume.pt`` takes the same steps as one that was never interrupted.
"""

from __future__ import annotations

import functools
import io
import json
import math
import os
import random
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ..errors import CheckpointError, DatasetError
from .dataset import LineDataset, collate
from .labels import parse_sources

__all__ = ["TrainConfig", "train", "resume_training", "evaluate", "load_train_state", "time_steps",
           "STATE_FORMAT", "RESUME_OVERRIDES"]

STATE_FORMAT = "ppocr_torch.train_state/1"
AMP_DTYPES = ("float16", "bfloat16")
DEPLOY_BACKBONE_LR_MULT = 0.1
RESUME_OVERRIDES = ("train", "val", "data_dir", "device", "workers", "out", "log_every")
"""Settings a resumed run may change (where the data and the output are, the hardware); the others would change
the schedule or the samples, so they are taken from the resume file."""


@dataclass
class TrainConfig:
    """Settings of a fine-tuning run (plain data, saved in ``resume.pt`` and the log).

    Args:
        train: training sources: ``"a.txt,b.txt:0.5"`` or a list of ``PATH[:RATIO]`` strings (label files or LMDB
            folders, see :mod:`~ppocr_torch.training.labels`).
        val: validation sources (none: no validation, ``best.pth`` follows the training loss).
        out: output folder.
        epochs: epochs of the schedule.
        batch_size: training batch size; ``eval_batch_size`` the validation one (default: the same).
        lr: peak learning rate of AdamW (betas 0.9, 0.999); ``weight_decay`` applies to weights with two or more
            dimensions only (not biases or norms).
        warmup_ratio: share of all steps spent in the linear warm-up; the rest decays along a cosine to
            ``min_lr_ratio * lr``.
        grad_clip: largest global gradient norm (None: no clipping).
        backbone_lr_mult: the backbone's learning rate is ``lr * backbone_lr_mult``; default 1 for a train-form
            model, 0.1 for a deploy-form one (its BatchNorms are folded into the convolutions, whose weights are then
            small enough that AdamW's first steps, about ``lr`` per weight whatever the gradient, at 5e-4 wreck a
            pretrained model; see docs/training.md).
        seed: seed of the data sampling, shuffling, augmentation and anything random in the model.
        workers: DataLoader worker processes.
        device: torch device; on CUDA the forward runs under float16 autocast with a GradScaler (``amp``).
        amp: mixed precision on (default) or off. ``amp_dtype`` None: float16 autocast with a GradScaler on CUDA,
            none on the CPU; ``"bfloat16"``: bfloat16 autocast on any device, without a GradScaler (bfloat16 has
            float32's range; this is also how the mixed-precision path is tested on a CPU); ``"float16"``: float16
            autocast on any device, with a GradScaler on CUDA.
        image_width: training input width (default: the model's ``base_width``, 320, PaddleOCR's ``[3, 48, 320]``).
        max_text_length: longest label trained on (PaddleOCR's default, 25).
        augment, aug_prob: :class:`~ppocr_torch.training.augment.LineAugment` with this probability per sample.
        unknown_chars: ``"skip"`` samples whose labels hold characters outside the model's set, or ``"remove"``
            those characters (PaddleOCR).
        data_dir: folder that label-file image paths are relative to (default: each label file's folder).
        log_every: write a ``step`` line to ``metrics.jsonl`` every this many steps (0: never).
        keep_epochs: also keep every epoch's model as ``epoch_NNN.pth``.
        guide_stop: PaddleOCR's SVTR neck (PP-OCRv3/v4/v5) stops the CTC loss's gradient at the backbone
            (``use_guide``): PaddleOCR trains their backbone through the GTC (NRTR) head, which ppocr_torch does not
            build. ``False`` (default): the stop is lifted while training, so the CTC loss trains the backbone too;
            ``True``: kept, so only the neck and head of those models learn (PaddleOCR's CTC branch alone).
            Models without the stop (PP-OCRv6, v2) are not affected.
    """

    train: list = field(default_factory=list)
    val: list = field(default_factory=list)
    out: str = "runs/rec"
    epochs: int = 10
    batch_size: int = 32
    eval_batch_size: int | None = None
    lr: float = 1e-4
    weight_decay: float = 0.01
    warmup_ratio: float = 0.05
    min_lr_ratio: float = 0.0
    grad_clip: float | None = 5.0
    backbone_lr_mult: float | None = None
    seed: int = 0
    workers: int = 0
    device: str = "cpu"
    amp: bool = True
    amp_dtype: str | None = None
    image_width: int | None = None
    max_text_length: int | None = 25
    augment: bool = True
    aug_prob: float = 0.4
    unknown_chars: str = "skip"
    data_dir: str | None = None
    log_every: int = 10
    keep_epochs: bool = False
    guide_stop: bool = False

    def __post_init__(self):
        self.train = [str(s) for s in parse_sources(self.train)] if self.train else []
        self.val = [str(s) for s in parse_sources(self.val)] if self.val else []
        self.out, self.device = os.fspath(self.out), str(self.device)
        if self.data_dir is not None:
            self.data_dir = os.fspath(self.data_dir)

    def check(self) -> None:
        """Raise ValueError naming the first invalid setting."""
        def positive_int(name, value, least=1):
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ValueError(f"TrainConfig.{name} must be an integer >= {least}, got {value!r}")

        if not self.train:
            raise ValueError("TrainConfig.train names no training data")
        positive_int("epochs", self.epochs)
        positive_int("batch_size", self.batch_size)
        if self.eval_batch_size is not None:
            positive_int("eval_batch_size", self.eval_batch_size)
        positive_int("workers", self.workers, 0)
        positive_int("log_every", self.log_every, 0)
        if self.image_width is not None:
            positive_int("image_width", self.image_width)
        if self.max_text_length is not None:
            positive_int("max_text_length", self.max_text_length)
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"TrainConfig.lr must be a positive number, got {self.lr!r}")
        if self.backbone_lr_mult is not None and not self.backbone_lr_mult >= 0:
            raise ValueError(f"TrainConfig.backbone_lr_mult must be >= 0, got {self.backbone_lr_mult!r}")
        for name in ("warmup_ratio", "min_lr_ratio", "aug_prob"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and 0.0 <= value <= 1.0):
                raise ValueError(f"TrainConfig.{name} must be within [0, 1], got {value!r}")
        if self.weight_decay < 0 or (self.grad_clip is not None and not self.grad_clip > 0):
            raise ValueError("TrainConfig.weight_decay must be >= 0 and grad_clip > 0 or None")
        if self.amp_dtype not in (None,) + AMP_DTYPES:
            raise ValueError(f"TrainConfig.amp_dtype must be None or one of {', '.join(AMP_DTYPES)}, got "
                             f"{self.amp_dtype!r}")
        if self.unknown_chars not in ("skip", "remove"):
            raise ValueError(f"TrainConfig.unknown_chars must be 'skip' or 'remove', got {self.unknown_chars!r}")

    def to_dict(self) -> dict:
        return json.loads(json.dumps(asdict(self)))

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


# -- helpers -------------------------------------------------------------------------------------------------------

def _seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % (1 << 32))
    torch.manual_seed(seed)


def _worker_init(_worker_id: int) -> None:
    """Seed Python's and numpy's generators in a DataLoader worker from its torch seed (itself drawn from the
    loader's seeded generator)."""
    import numpy as np
    import torch

    seed = torch.initial_seed() % (1 << 32)
    random.seed(seed)
    np.random.seed(seed)


def amp_settings(cfg: TrainConfig, device) -> tuple[bool, Any, bool]:
    """``(autocast on, its dtype, GradScaler on)`` for ``cfg.amp`` / ``cfg.amp_dtype`` on ``device``."""
    import torch

    if not cfg.amp:
        return False, torch.float16, False
    if cfg.amp_dtype is None:
        on_cuda = device.type == "cuda"
        return on_cuda, torch.float16, on_cuda
    dtype = getattr(torch, cfg.amp_dtype)
    return True, dtype, dtype == torch.float16 and device.type == "cuda"


def _grad_scaler(enabled: bool):
    import torch

    if hasattr(torch, "amp") and hasattr(torch.amp, "GradScaler"):
        return torch.amp.GradScaler("cuda", enabled=enabled)
    return torch.cuda.amp.GradScaler(enabled=enabled)  # torch < 2.3


def _device_of(model):
    return next(model.parameters()).device


def time_steps(model, height: int, width: int) -> int:
    """The number of time steps ``T`` of ``model``'s train-mode output for a ``height x width`` input (PaddleOCR's
    PP-LCNet and HGNet backbones pool to 40 steps in training whatever the width; 320 / 8 = 40 at inference).
    BatchNorm layers are kept in eval mode for this probe, so their statistics do not change."""
    import torch

    was_training = model.training
    model.train()
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.eval()
    try:
        with torch.no_grad():
            out = model(torch.zeros(1, 3, int(height), int(width), device=_device_of(model)))
    finally:
        model.train(was_training)
    return int(out.shape[1])


def backbone_lr_mult(model, cfg: TrainConfig) -> float:
    """``cfg.backbone_lr_mult``, or by default 1 for a train-form model and 0.1 for a deploy-form one."""
    if cfg.backbone_lr_mult is not None:
        return float(cfg.backbone_lr_mult)
    return 1.0 if getattr(model, "form", "deploy") == "train" else DEPLOY_BACKBONE_LR_MULT


def _optimizer(model, cfg: TrainConfig):
    """AdamW over four groups: backbone / rest x weights (decayed) / biases and norms (not decayed); the backbone's
    learning rate is ``lr * backbone_lr_mult``."""
    import torch

    mult = backbone_lr_mult(model, cfg)
    groups = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        in_backbone = name.startswith("backbone.")
        key = (in_backbone, p.ndim >= 2)
        if key not in groups:
            groups[key] = {"params": [], "lr": cfg.lr * (mult if in_backbone else 1.0),
                           "weight_decay": cfg.weight_decay if p.ndim >= 2 else 0.0}
        groups[key]["params"].append(p)
    return torch.optim.AdamW([groups[k] for k in sorted(groups)], lr=cfg.lr, betas=(0.9, 0.999))


class _JsonLog:
    """Appends one JSON object per line to ``path`` (flushed at once, so a killed run keeps its lines)."""

    def __init__(self, path: Path):
        self.path = path

    def write(self, record: dict) -> None:
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")


def _checkpoint_payload(model) -> dict:
    """The payload :func:`~ppocr_torch.checkpoint.save_checkpoint` writes, in memory (for the resume file)."""
    from ..checkpoint import FORMAT

    return {"format": FORMAT, "form": model.form, "spec": model.spec.to_dict(), "charset": list(model.charset),
            "meta": {}, "state_dict": {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}}


def _save_state(path: Path, state: dict) -> None:
    import torch

    from ..files import atomic_write

    buf = io.BytesIO()
    torch.save(state, buf)
    data = buf.getvalue()
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


def load_train_state(path: str | os.PathLike) -> dict:
    """Read a ``resume.pt`` (or the ``resume.pt`` of a folder) with ``weights_only=True``.

    Raises:
        CheckpointError: missing, unreadable or not a ppocr_torch training state.
    """
    import torch

    path = Path(path)
    if path.is_dir():
        path = path / "resume.pt"
    if not path.is_file():
        raise CheckpointError(f"training state {str(path)!r} does not exist (resume names a run's resume.pt or its "
                              "output folder)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"training state {str(path)!r} cannot be read: {type(exc).__name__}: "
                              f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''}") from exc
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise CheckpointError(f"{str(path)!r} is not a ppocr_torch training state")
    for key in ("epoch", "step", "config", "model", "optimizer", "scheduler", "scaler"):
        if key not in state:
            raise CheckpointError(f"training state {str(path)!r} lacks {key!r}")
    state["path"] = str(path)
    return state


def _show(progress) -> bool:
    from ..progress import show_progress

    return show_progress(progress)


# -- evaluation ----------------------------------------------------------------------------------------------------

def evaluate(model, data: Any, *, batch_size: int = 32, workers: int = 0, image_width: int | None = None,
             data_dir: str | os.PathLike | None = None, with_loss: bool = True, progress: bool | None = False) -> dict:
    """Recognise every line of ``data`` and compare with the labels (metrics: :mod:`.metrics`).

    Args:
        model: a RecModel (left in the mode it was in).
        data: a :class:`~.dataset.LineDataset`, or sources (label files / LMDB folders) read without length limits
            (labels with characters outside the model's set are skipped and counted).
        image_width: input width (default: the model's ``base_width``); lines are resized and padded exactly as in
            training, and decoded greedily (:func:`~ppocr_torch.decode.ctc_greedy_decode`).
        with_loss: also report ``loss``, the CTC loss of the eval-mode probabilities (their log, floored at
            1e-30), averaged over lines as in training.

    Returns:
        ``{"n", "acc", "char_acc", "norm_edit_dis", "cer", "edits", "chars", "loss", "skipped", "dropped"}``.
    """
    import torch
    from torch.utils.data import DataLoader

    from ..decode import ctc_greedy_decode
    from .losses import ctc_loss
    from .metrics import text_metrics

    width = int(image_width or model.spec.base_width)
    if not isinstance(data, LineDataset):
        data = LineDataset(data, model.charset, image_height=model.spec.input_height, image_width=width,
                           max_text_length=None, max_steps=None, data_dir=data_dir)
    device = _device_of(model)
    loader = DataLoader(data, batch_size=batch_size, shuffle=False, num_workers=workers,
                        collate_fn=functools.partial(collate, pad_width=width))
    was_training = model.training
    model.eval()
    predictions, targets, loss_sum, dropped = [], [], 0.0, 0
    bar = _progress_bar(len(loader), "eval", progress)
    try:
        with torch.no_grad():
            for batch in loader:
                dropped += batch["dropped"]
                if batch["images"] is not None:
                    probs = model(batch["images"].to(device)).float()
                    predictions += [r.text for r in ctc_greedy_decode(probs.cpu(), model.charset)]
                    targets += batch["texts"]
                    if with_loss:
                        logp = torch.log(probs.clamp_min(1e-30))
                        loss_sum += float(ctc_loss(logp, batch["targets"], batch["target_lengths"], log_probs=True)) \
                            * len(batch["texts"])
                if bar is not None:
                    bar.update(1)
    finally:
        if bar is not None:
            bar.close()
        model.train(was_training)
    result = text_metrics(predictions, targets)
    if with_loss:
        result["loss"] = loss_sum / len(targets) if targets else 0.0
    result["skipped"] = dict(data.skipped)
    result["dropped"] = dropped
    return result


def _progress_bar(total: int, label: str, progress):
    if not _show(progress):
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=label, file=sys.stderr, leave=False, dynamic_ncols=True)


# -- training ------------------------------------------------------------------------------------------------------

def train(model, config: TrainConfig, *, progress: bool | None = None, stop_after: int | None = None) -> dict:
    """Fine-tune ``model`` (a RecModel, trained in place; any form) on ``config.train``.

    To train on a new character set, load the model with ``load_model(name, charset=...)`` first: the classifier
    is rebuilt for it, the rows of characters the old set also has are kept.

    Args:
        progress: tqdm bars on stderr (None: when stderr is a terminal).
        stop_after: stop after this many epochs of this call (the run stays resumable from ``resume.pt``).

    Returns:
        ``{"out", "epochs_done", "step", "history": [epoch records], "best", "train_samples", "skipped"}``.

    Raises:
        DatasetError: a data source cannot be read, or no training sample is usable.
        TrainingDependencyError: augmentation without kornia, LMDB data without lmdb.
    """
    return _run(model, config, None, progress=progress, stop_after=stop_after)


def resume_training(path: str | os.PathLike, *, overrides: dict | None = None, progress: bool | None = None,
                    stop_after: int | None = None) -> dict:
    """Continue the run whose ``resume.pt`` is ``path`` (or lies in the folder ``path``) after its last finished
    epoch, with the model, optimizer, schedule and settings it saved. ``overrides`` may change the settings in
    :data:`RESUME_OVERRIDES` (None values are ignored); the output folder defaults to the resume file's folder."""
    from ..checkpoint import model_from_payload

    state = load_train_state(path)
    cfg = TrainConfig.from_dict(state["config"])
    cfg.out = str(Path(state["path"]).parent)
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        if key not in RESUME_OVERRIDES:
            raise ValueError(f"a resumed run cannot change {key!r} (only {', '.join(RESUME_OVERRIDES)})")
        setattr(cfg, key, value)
    cfg.__post_init__()
    model = model_from_payload(state["model"], source=state["path"])
    return _run(model, cfg, state, progress=progress, stop_after=stop_after)


def _run(model, cfg: TrainConfig, state: dict | None, *, progress, stop_after) -> dict:
    """Train with the neck's gradient stop set as ``cfg.guide_stop`` asks, restored afterwards."""
    from ..models.necks.sequence_encoder import EncoderWithSVTR

    # Only the SVTR neck's use_guide is a gradient stop (CTCHead's use_guide is PP-OCRv6 tiny's guide layer).
    guided = [m for m in model.modules() if isinstance(m, EncoderWithSVTR)]
    saved = [m.use_guide for m in guided]
    try:
        for m in guided:
            m.use_guide = bool(m.use_guide) and bool(cfg.guide_stop)
        return _run_steps(model, cfg, state, progress=progress, stop_after=stop_after)
    finally:
        for m, value in zip(guided, saved):
            m.use_guide = value


def _run_steps(model, cfg: TrainConfig, state: dict | None, *, progress, stop_after) -> dict:
    import torch
    from torch.utils.data import DataLoader

    from ..checkpoint import save_checkpoint
    from .augment import LineAugment
    from .losses import ctc_loss
    from .schedule import warmup_cosine

    cfg.check()
    if getattr(model, "spec", None) is None or getattr(model, "charset", None) is None:
        raise ValueError("model must be a RecModel with .spec and .charset (see ppocr_torch.load_model)")
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    device = torch.device(cfg.device)
    model.to(device)
    height, width = model.spec.input_height, int(cfg.image_width or model.spec.base_width)
    steps_t = time_steps(model, height, width)

    augment = LineAugment(cfg.aug_prob) if cfg.augment and cfg.aug_prob > 0 else None
    train_ds = LineDataset(cfg.train, model.charset, image_height=height, image_width=width,
                           max_text_length=cfg.max_text_length, max_steps=steps_t, augment=augment,
                           unknown_chars=cfg.unknown_chars, data_dir=cfg.data_dir, seed=cfg.seed)
    if len(train_ds) == 0:
        raise DatasetError(f"no usable training sample in {', '.join(cfg.train)} (skipped: {dict(train_ds.skipped)})")
    val_ds = None
    if cfg.val:
        val_ds = LineDataset(cfg.val, model.charset, image_height=height, image_width=width, max_text_length=None,
                             max_steps=None, unknown_chars="skip", data_dir=cfg.data_dir, seed=cfg.seed)

    steps_per_epoch = math.ceil(len(train_ds) / cfg.batch_size)
    total_steps = steps_per_epoch * cfg.epochs
    optimizer = _optimizer(model, cfg)
    scheduler = warmup_cosine(optimizer, total_steps, round(cfg.warmup_ratio * total_steps), cfg.min_lr_ratio)
    use_amp, amp_dtype, use_scaler = amp_settings(cfg, device)
    scaler = _grad_scaler(use_scaler)
    params = [p for p in model.parameters() if p.requires_grad]
    first_epoch, step, best = 0, 0, None
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if state["scaler"]:
            scaler.load_state_dict(state["scaler"])
        first_epoch, step, best = int(state["epoch"]), int(state["step"]), state.get("best")

    log = _JsonLog(out / "metrics.jsonl")
    log.write({"event": "resume" if state is not None else "start", "time": time.time(), "epoch": first_epoch,
               "step": step, "model": model.spec.name, "classes": model.num_classes,
               "image_shape": [3, height, width], "time_steps": steps_t, "train_samples": len(train_ds),
               "val_samples": len(val_ds) if val_ds is not None else 0, "steps_per_epoch": steps_per_epoch,
               "total_steps": total_steps, "skipped": dict(train_ds.skipped), "sources": train_ds.per_source,
               "val_skipped": dict(val_ds.skipped) if val_ds is not None else {}, "device": str(device),
               "amp": use_amp, "amp_dtype": str(amp_dtype).replace("torch.", "") if use_amp else None,
               "grad_scaler": use_scaler, "config": cfg.to_dict()})
    if state is not None and state.get("total_steps") not in (None, total_steps):
        log.write({"event": "warning", "message": f"the schedule now has {total_steps} steps, the saved run had "
                                                  f"{state['total_steps']} (the training data changed)"})

    history, show = [], _show(progress)
    epochs_done = 0
    for epoch in range(first_epoch, cfg.epochs):
        if stop_after is not None and epochs_done >= stop_after:
            break
        started = time.time()
        _seed_everything(cfg.seed + epoch)
        generator = torch.Generator()
        generator.manual_seed(cfg.seed + epoch)
        loader = DataLoader(train_ds, batch_size=cfg.batch_size, shuffle=True, generator=generator,
                            num_workers=cfg.workers, collate_fn=functools.partial(collate, pad_width=width),
                            worker_init_fn=_worker_init, pin_memory=device.type == "cuda")
        model.train()
        bar = None
        if show:
            from tqdm import tqdm

            bar = tqdm(total=steps_per_epoch, desc=f"epoch {epoch + 1}/{cfg.epochs}", file=sys.stderr,
                       dynamic_ncols=True, leave=False)
        loss_sum, seen, dropped = 0.0, 0, 0
        for batch in loader:
            dropped += batch["dropped"]
            if batch["images"] is not None:
                x = batch["images"].to(device, non_blocking=True)
                with torch.autocast(device_type=device.type, dtype=amp_dtype, enabled=use_amp):
                    logits = model(x)
                loss = ctc_loss(logits, batch["targets"], batch["target_lengths"])
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                grad_norm = None
                if cfg.grad_clip is not None:
                    scaler.unscale_(optimizer)
                    grad_norm = float(torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip))
                scaler.step(optimizer)
                scaler.update()
                value = float(loss.detach())
                loss_sum += value * len(batch["texts"])
                seen += len(batch["texts"])
            lr = optimizer.param_groups[0]["lr"]  # the rate this step used
            scheduler.step()  # a batch whose images all failed to decode still takes its place in the schedule
            step += 1
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss_sum / max(seen, 1):.4f}", lr=f"{lr:.2e}")
            if cfg.log_every and step % cfg.log_every == 0 and batch["images"] is not None:
                log.write({"event": "step", "epoch": epoch + 1, "step": step, "loss": value, "lr": lr,
                           "grad_norm": grad_norm})
        if bar is not None:
            bar.close()
        record = {"event": "epoch", "epoch": epoch + 1, "step": step, "train_loss": loss_sum / max(seen, 1),
                  "lr": lr, "dropped": dropped}
        if val_ds is not None:
            record["val"] = evaluate(model, val_ds, batch_size=cfg.eval_batch_size or cfg.batch_size,
                                     workers=cfg.workers, image_width=width, progress=progress)
            key = [record["val"]["acc"], record["val"]["char_acc"]]
        else:
            key = [-record["train_loss"]]
        improved = best is None or key > list(best)
        if improved:
            best = key
        record["best"] = improved
        record["time_s"] = round(time.time() - started, 3)
        meta = {"epoch": epoch + 1, "step": step, "train_loss": record["train_loss"], "val": record.get("val"),
                "seed": cfg.seed, "train": list(cfg.train)}
        save_checkpoint(out / "latest.pth", model, meta=meta)
        if improved:
            save_checkpoint(out / "best.pth", model, meta=meta)
        if cfg.keep_epochs:
            save_checkpoint(out / f"epoch_{epoch + 1:03d}.pth", model, meta=meta)
        _save_state(out / "resume.pt", {
            "format": STATE_FORMAT, "epoch": epoch + 1, "step": step, "total_steps": total_steps, "best": best,
            "config": cfg.to_dict(), "model": _checkpoint_payload(model), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(),
            "versions": {"torch": str(torch.__version__)}})
        log.write(record)
        history.append(record)
        epochs_done += 1
    finished = first_epoch + epochs_done >= cfg.epochs
    log.write({"event": "end" if finished else "stopped", "time": time.time(), "epoch": first_epoch + epochs_done,
               "step": step, "best": best})
    model.eval()
    return {"out": str(out), "epochs_done": first_epoch + epochs_done, "finished": finished, "step": step,
            "history": history, "best": best, "train_samples": len(train_ds), "skipped": dict(train_ds.skipped),
            "time_steps": steps_t}
