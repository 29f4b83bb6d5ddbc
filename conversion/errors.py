"""Errors of the conversion tool (build-time only)."""

from ppocr_torch.errors import PPOCRTorchError, SpecMismatchError


class ConversionError(PPOCRTorchError, ValueError):
    """A source model cannot be mapped onto the torch module of its spec."""


class SourceFormatError(ConversionError):
    """A source file is unreadable, truncated or of an unexpected format."""


class ParityError(PPOCRTorchError, AssertionError):
    """The converted model does not reproduce the official runtime within tolerance."""


__all__ = ["ConversionError", "SourceFormatError", "ParityError", "SpecMismatchError"]
