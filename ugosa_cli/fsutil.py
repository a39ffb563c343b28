"""Atomic file writes: a result appears whole under its final name, or not at all."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ugosa_cli.errors import InputError, RunError


def reserve_temporary(target: Path) -> Path:
    """Create an empty temporary file beside ``target`` (making its folder), mapping failures to one line."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    except PermissionError as exc:
        raise InputError(f"cannot write to {target.parent}: permission denied; choose another output folder") from exc
    except OSError as exc:
        if exc.errno == errno.EROFS:
            raise InputError(f"cannot write to {target.parent}: read-only file system; choose another output folder") from exc
        raise RunError(f"cannot write to {target.parent}: {exc.strerror or exc}") from exc
    os.close(fd)
    return Path(tmp_name)


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
