"""Errors of the conversion tool (build-time only); the reading and mapping errors live in the runtime."""

from ppocr_torch.errors import ConversionError, PPOCRTorchError, SourceFormatError, SpecMismatchError


class ParityError(PPOCRTorchError, AssertionError):
    """The converted model does not reproduce the official runtime within tolerance."""


__all__ = ["ConversionError", "SourceFormatError", "ParityError", "SpecMismatchError"]
