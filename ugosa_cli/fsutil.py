"""Atomic file writes: a result appears whole under its final name, or not at all."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import secrets
import stat
from pathlib import Path
from typing import Iterator

from ugosa_cli.errors import InputError, RunError


def reserve_temporary(target: Path) -> Path:
    """Create an empty temporary file beside ``target`` (making its folder), mapping failures to one line.

    The file gets the mode a new file of the user's would get (``0o666`` less the umask, applied by the
    kernel), or, when ``target`` exists, that file's permission bits, so renaming it onto ``target`` changes
    no permission. Every atomic write (stems, checkpoints, labels, JSON, downloads) goes through here.
    """
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = _create_exclusive(target)
    except PermissionError as exc:
        raise InputError(f"cannot write to {target.parent}: permission denied; choose another output folder") from exc
    except OSError as exc:
        if exc.errno == errno.EROFS:
            raise InputError(f"cannot write to {target.parent}: read-only file system; choose another output folder") from exc
        raise RunError(f"cannot write to {target.parent}: {exc.strerror or exc}") from exc
    try:
        existing = stat.S_IMODE(os.stat(target).st_mode) & 0o777
    except OSError:
        return tmp  # no file to replace: the umask decided
    try:
        os.chmod(tmp, existing)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise RunError(f"cannot write to {target.parent}: {exc.strerror or exc}") from exc
    return tmp


def _create_exclusive(target: Path) -> Path:
    """A new, empty ``.<name>.<random>.partial`` file beside ``target``, created with mode 0o666 & ~umask."""
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        tmp = target.parent / f".{target.name}.{secrets.token_hex(4)}.partial"
        try:
            fd = os.open(tmp, flags, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return tmp
    raise FileExistsError(errno.EEXIST, "no free temporary file name", str(target.parent))


def ensure_writable(folder: Path) -> None:
    """Fail now, before long work, if files cannot be created in ``folder`` or where it would be made."""
    folder = Path(folder).resolve()
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    if not existing.is_dir():
        raise RunError(f"cannot write to {folder}: {existing} is a file, not a folder")
    reserve_temporary(existing / ".ugosa-write-check").unlink()


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` only if the block succeeds.

    The temporary file is removed on any failure, Ctrl-C included, so no half-written file survives.
    """
    target = Path(target)
    tmp = reserve_temporary(target)
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def sha256_file(path: Path, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's content."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()
