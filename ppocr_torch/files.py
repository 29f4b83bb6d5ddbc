"""File helpers shared by the cache, the checkpoints, the converters and the readers of user files (no torch
import)."""

import errno
import hashlib
import os
import stat
import tempfile
from pathlib import Path

from .errors import CacheError, ConfigurationError

# What a path that is not a regular file names, for the messages of open_regular_file.
_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


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


def env_limit(name, default):
    """``$name`` as a positive integer, ``default`` when it is unset or empty; ConfigurationError otherwise."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigurationError(f"${name} must be a positive integer, got {raw!r}; unset it for the default "
                                 f"({default})")
    return value


def _check_regular(st, name, error):
    if not stat.S_ISREG(st.st_mode):
        kind = next((k for test, k in _KINDS if test(st.st_mode)), "a special file")
        raise error(f"{name}: is {kind}, not a regular file; only regular files are read")


def _too_large(name, size, limit, limit_env):
    what = f"is {size} bytes" if size is not None else "grew while being read"
    hint = f"; set ${limit_env} to raise the limit" if limit_env else ""
    return f"{name}: file {what}, above the limit of {limit} bytes{hint}"


def open_regular_file(path, *, name, error, limit=None, limit_env=None):
    """Open a user-named file for binary reading, without ever blocking or reading a special file.

    Anything but a regular file (a FIFO, a character or block device, a socket, a directory) raises
    ``error(message)``, the message starting with ``name``: checked before opening (a FIFO or a device is
    never opened) and again on the open descriptor (the path may have changed in between). The file is opened
    with ``O_NONBLOCK`` where the platform has it, so that a FIFO swapped in cannot block the open. With
    ``limit``, a file larger than ``limit`` bytes raises ``error`` too (``limit_env``: the variable that
    raises the limit, named in the message). OS errors (missing file, no permission) propagate, and so does
    ValueError for a path string the OS cannot take (a NUL character, a lone surrogate).
    """
    _check_regular(os.stat(path), name, error)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    try:
        st = os.fstat(fd)
        _check_regular(st, name, error)
        if limit is not None and st.st_size > limit:
            raise error(_too_large(name, st.st_size, limit, limit_env))
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular_file(path, limit, *, name, error, limit_env=None):
    """The bytes of a user-named regular file of at most ``limit`` bytes (see :func:`open_regular_file`).

    At most ``limit + 1`` bytes are read, so a file that grows while it is read is refused too."""
    with open_regular_file(path, name=name, error=error, limit=limit, limit_env=limit_env) as fh:
        if limit is None:
            return fh.read()
        size = os.fstat(fh.fileno()).st_size
        parts = [fh.read(min(size, limit) + 1)]
        total = len(parts[0])
        while total <= limit and parts[-1]:  # grown since fstat, or a size the OS does not report (/proc)
            parts.append(fh.read(min(1 << 20, limit + 1 - total)))
            total += len(parts[-1])
    if total > limit:
        raise error(_too_large(name, None, limit, limit_env))
    return b"".join(parts)


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
