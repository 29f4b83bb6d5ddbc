"""Typed errors of ppocr_torch.

Every error raised on purpose by the package derives from :class:`PPOCRTorchError`, and each child also
derives from the matching builtin, so callers can catch narrowly (``except InvalidImageError``), by kind
(``except ValueError``) or broadly (``except PPOCRTorchError``).
"""


class PPOCRTorchError(Exception):
    """Base class of every error raised on purpose by ppocr_torch."""


class InvalidImageError(PPOCRTorchError, ValueError):
    """An input image cannot be read or used (empty, not an image, bad dtype/shape, too large)."""


class UnknownModelError(PPOCRTorchError, ValueError):
    """A model name is not in the registry."""


class RegistryError(PPOCRTorchError, ValueError):
    """The registry's data is inconsistent (a duplicate name or alias, an entry that does not parse)."""


class SpecError(PPOCRTorchError, ValueError):
    """A model spec names an unknown component (backbone, neck, head, activation) or an invalid option of one."""


class SpecMismatchError(PPOCRTorchError, ValueError):
    """Weights, spec and character set disagree (e.g. class count vs dictionary size)."""


class CheckpointError(PPOCRTorchError, ValueError):
    """A checkpoint file is not a valid ppocr_torch checkpoint (corrupt, truncated, unsafe or wrong format)."""


class WeightsNotCachedError(PPOCRTorchError, FileNotFoundError):
    """Weights are not on disk and downloading is disabled (offline)."""


class ChecksumError(PPOCRTorchError, OSError):
    """A file's sha256 does not match the registry."""


class DownloadError(PPOCRTorchError, ConnectionError):
    """A download failed (HTTP error, connection refused, cut transfer)."""


class ConversionError(PPOCRTorchError, ValueError):
    """A source model cannot be mapped onto the torch module of its spec."""


class SourceFormatError(ConversionError):
    """A source file (official export, parameter file, archive) is unreadable, truncated or of an unexpected
    format."""


class DeviceError(PPOCRTorchError, RuntimeError):
    """The model cannot be moved to the requested torch device (not available, out of device memory)."""
