"""Typed errors of ppocr_torch.

Every error raised on purpose by the package derives from :class:`PPOCRTorchError`, and each child also
derives from the matching builtin, so callers can catch narrowly (``except InvalidImageError``), by kind
(``except ValueError``) or broadly (``except PPOCRTorchError``).
"""


class PPOCRTorchError(Exception):
    """Base class of every error raised on purpose by ppocr_torch."""


class InvalidImageError(PPOCRTorchError, ValueError):
    """An input image cannot be read or used (empty, not an image, bad dtype/shape, too large)."""


class UnsupportedFileError(PPOCRTorchError, OSError):
    """A named file is refused before it is read: not a regular file (a FIFO, a device, a socket, a directory) or
    larger than the limit for its kind."""


class ConfigurationError(PPOCRTorchError, ValueError):
    """An environment variable of ppocr_torch has an invalid value (the message names the variable)."""


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
    """A download failed (HTTP error, connection refused, cut or too slow transfer), or the wait for another
    process downloading the same file timed out."""


class CacheError(PPOCRTorchError, OSError):
    """A file of the cache cannot be written: disk full or over quota, a read-only or not writable folder, a
    file where a folder should be. ``errno`` is the operating system's code, ``path`` the file or folder."""

    def __init__(self, message: str, *, errno: "int | None" = None, path: "str | None" = None):
        super().__init__(message)
        self.errno = errno
        self.path = path

    def __str__(self) -> str:  # OSError would format errno and filename instead of the message
        return str(self.args[0]) if self.args else ""


class ConversionError(PPOCRTorchError, ValueError):
    """A source model cannot be mapped onto the torch module of its spec."""


class SourceFormatError(ConversionError):
    """A source file (official export, parameter file, archive) is unreadable, truncated or of an unexpected
    format."""


class DeviceError(PPOCRTorchError, RuntimeError):
    """The model cannot be moved to the requested torch device (not available, out of device memory)."""


class DatasetError(PPOCRTorchError, ValueError):
    """Training or validation data cannot be used: a label list or LMDB folder that does not exist or does not parse,
    an invalid sampling ratio, or no usable sample left after filtering."""


class TrainingDependencyError(PPOCRTorchError, ImportError):
    """An optional training dependency (kornia for augmentation, lmdb for LMDB data) is not installed; the message
    says to ``pip install 'ppocr-torch[train]'``."""


class MissingDependencyError(PPOCRTorchError, ImportError):
    """An optional package that a feature needs is not installed (the message says what to install)."""


class ExportError(PPOCRTorchError, ValueError):
    """A model cannot be exported to the requested format, or a file is not a ppocr_torch export; nothing is
    written."""


class ExportVerificationError(ExportError):
    """An exported file does not reproduce the torch model within the tolerance; the file is not kept.
    ``max_abs_diff`` maps each checked input (``"BxW"``) to its max |Δ|."""

    def __init__(self, message: str, *, max_abs_diff: "dict | None" = None):
        super().__init__(message)
        self.max_abs_diff = dict(max_abs_diff or {})


class InputSourceError(PPOCRTorchError, ValueError):
    """A bulk job's input source cannot be used: a list file that is missing or unreadable, a folder that does not
    exist, a glob that matches no file (the message names the source)."""


class OutputExistsError(PPOCRTorchError, FileExistsError):
    """A bulk job's output file exists and resuming was not asked for; it is never overwritten."""


class ResumeError(PPOCRTorchError, ValueError):
    """A bulk job's output cannot be resumed: a line in it is not a result record, it holds other inputs than the
    job's (in order), it was written with other settings, or another job is writing it (the message names the
    file, the line or setting)."""


class WorkerError(PPOCRTorchError, RuntimeError):
    """A bulk job's worker process failed to start or died; the output holds every result before the failure."""
