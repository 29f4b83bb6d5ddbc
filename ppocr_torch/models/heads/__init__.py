from .ctc import CTCHead, MultiHead

__all__ = ["CTCHead", "MultiHead"]
