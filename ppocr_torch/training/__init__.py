"""Fine-tuning of ppocr_torch recognition models in plain PyTorch (see docs/training.md).

::

    from ppocr_torch import load_model
    from ppocr_torch.training import TrainConfig, train, evaluate

    model = load_model("PP-OCRv6_small_rec", charset="my_dict.txt")       # new classifier, common rows kept
    train(model, TrainConfig(train=["train.txt"], val=["val.txt"], epochs=20, out="runs/mine"))
    evaluate(load_model("runs/mine/best.pth"), ["val.txt"])

Optional dependencies (``pip install 'ppocr-torch[train]'``): kornia for augmentation, lmdb for LMDB data; each is
imported only when used and raises :class:`~ppocr_torch.errors.TrainingDependencyError` when missing.
"""

import importlib

_LAZY = {
    "TrainConfig": ".trainer",
    "train": ".trainer",
    "resume_training": ".trainer",
    "evaluate": ".trainer",
    "load_train_state": ".trainer",
    "LineDataset": ".dataset",
    "collate": ".dataset",
    "rec_resize": ".dataset",
    "LineAugment": ".augment",
    "ctc_loss": ".losses",
    "warmup_cosine": ".schedule",
    "warmup_cosine_factor": ".schedule",
    "levenshtein": ".metrics",
    "text_metrics": ".metrics",
    "Source": ".labels",
    "parse_sources": ".labels",
    "read_label_file": ".labels",
    "read_lmdb_labels": ".labels",
}

__all__ = sorted(_LAZY)


def __getattr__(name):
    try:
        module = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
