"""File helpers shared by the cache, the checkpoints and the converters (no torch import)."""

import errno
import hashlib
import os
import tempfile
from pathlib import Path

from .errors import CacheError


def sha256_file(path, chunk=1 << 20):
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def atomic_write(path, write):
    """Call ``write(tmp_path)`` then rename onto ``path``; on any failure nothing is left at ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


_NO_ROOM = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
_NOT_WRITABLE = {errno.EROFS, errno.EACCES, errno.EPERM}
_NOT_A_FOLDER = {errno.ENOTDIR, errno.EEXIST}
CACHE_ERRNOS = frozenset(_NO_ROOM | _NOT_WRITABLE)  # errors of the place written to, not of the data


def cache_error(exc: OSError, path, action: str, *, folder=None) -> CacheError:
    """The :class:`~ppocr_torch.errors.CacheError` for ``exc``, raised while trying to ``action`` (``"write"``,
    ``"create"``, ``"rename onto"``, ...) ``path``: the message names the file, its folder, the system's reason
    and what to do (free space, make the folder writable, or point the cache somewhere else)."""
    path = Path(path)
    folder = Path(folder) if folder is not None else path.parent
    code = exc.errno
    reason = exc.strerror or str(exc) or type(exc).__name__
    if code in errno.errorcode:
        reason += f" ({errno.errorcode[code]})"
    if code in _NO_ROOM:
        todo = f"free space on the disk holding {str(folder)!r} (or raise your disk quota)"
    elif code in _NOT_WRITABLE:
        todo = f"make {str(folder)!r} writable for this user"
    elif code in _NOT_A_FOLDER:
        todo = f"a file stands where the folder {str(folder)!r} (or one of its parents) should be: move it away"
    else:
        todo = f"check {str(folder)!r}"
    env = "PPOCR_TORCH_HOME"  # download.ENV_HOME (importing download from here would be circular)
    official = os.environ.get("PPOCR_TORCH_OFFICIAL_CACHE", "").strip()
    if official and _is_under(path, Path(os.path.expanduser(official))):
        env = "PPOCR_TORCH_OFFICIAL_CACHE"
    return CacheError(f"cannot {action} {str(path)!r} in the folder {str(folder)!r}: {reason}; {todo}, or set "
                      f"${env} to another folder", errno=code, path=str(path))


def _is_under(path: Path, root: Path) -> bool:
    try:
        path.absolute().relative_to(root.absolute())
        return True
    except ValueError:
        return False
