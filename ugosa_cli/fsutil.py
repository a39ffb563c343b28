"""Atomic file writes (a result appears whole under its final name, or not at all), and bounded reads of the
small text files users give (labels, track lists)."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import secrets
import stat
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

from ugosa_cli.errors import InputError, RunError, UgosaError

# The most a labels file or a --from-list track list may hold: far more than any real one (a label track of
# a 3-hour song with a label every second is about 100 kB), small enough to refuse /dev/zero or a wrong file.
MAX_TEXT_BYTES = 16 << 20
_KINDS = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def reserve_temporary(target: Path) -> Path:
    """Create an empty temporary file beside ``target`` (making its folder), mapping failures to one line.

    The file gets the mode a new file of the user's would get (``0o666`` less the umask, applied by the
    kernel), or, when ``target`` exists, that file's permission bits, so renaming it onto ``target`` changes
    no permission. Every atomic write (stems, checkpoints, labels, JSON, downloads) goes through here.
    """
    if target.is_dir():
        raise folder_in_the_way(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = _create_exclusive(target)
    except PermissionError as exc:
        raise InputError(f"cannot write to {target.parent}: permission denied; choose another output folder") from exc
    except OSError as exc:
        if exc.errno == errno.EROFS:
            raise InputError(
                f"cannot write to {target.parent}: read-only file system; choose another output folder"
            ) from exc
        if exc.errno in _FULL:
            raise write_error(target, exc) from exc
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


_FULL = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))  # no space left, or over the disk quota


def folder_in_the_way(target: Path) -> InputError:
    """The one line for a folder where a file is to be written."""
    return InputError(f"{target}: is a folder, where a file is to be written; remove it or choose another name")


def write_error(target: Path, exc: OSError) -> UgosaError:
    """The one line for a failed write of ``target``: a full disk, a folder in the way, or the reason."""
    if exc.errno in _FULL:
        return RunError(f"no space left on device writing {target}; free some space or write elsewhere")
    if isinstance(exc, IsADirectoryError):
        return folder_in_the_way(target)
    return RunError(f"{target}: cannot write ({exc.strerror or exc})")


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


def special_file_kind(path: str | Path) -> str | None:
    """What ``path`` is when it exists but is neither a regular file nor a folder ("a named pipe (FIFO)", ...)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    return next((kind for test, kind in _KINDS if test(mode)), "not a regular file")


def not_regular_error(name: str, kind: str, wanted: str, *, stdin_works: bool = True) -> InputError:
    """The one line for a FIFO, device or socket given where a file is read (it is never opened)."""
    hint = " (to pipe data in, give - and use standard input)" if stdin_works else ""
    return InputError(f"{name}: is {kind}, not a regular file; give {wanted}{hint}")


def read_text_file(path: str | Path, name: str, wanted: str, limit: int = MAX_TEXT_BYTES) -> bytes:
    """The bytes of a small text file a user gives (``-``: standard input), at most ``limit`` of them.

    Refuses, with one line starting with ``name``: a missing file, a folder, a FIFO, device or socket (never
    opened, so nothing blocks or reads forever), and a file or stream of more than ``limit`` bytes.
    ``wanted`` says what was expected ("a labels file").
    """
    too_big = (f"{name}: larger than {limit / (1 << 20):g} MiB, the most {wanted} may hold; "
               "check that this is the right file")
    if str(path) == "-":
        buffer = getattr(sys.stdin, "buffer", None)
        data = buffer.read(limit + 1) if buffer is not None else sys.stdin.read(limit + 1).encode("utf-8")
        if len(data) > limit:
            raise InputError(too_big)
        return data
    try:
        mode = os.stat(path).st_mode
        if stat.S_ISDIR(mode):
            raise InputError(f"{name}: is a folder; give {wanted}")
        if not stat.S_ISREG(mode):
            raise not_regular_error(name, special_file_kind(path) or "not a regular file", wanted)
        with open(path, "rb") as handle:
            data = handle.read(limit + 1)
    except FileNotFoundError:
        raise InputError(f"{name}: no such file") from None
    except PermissionError:
        raise InputError(f"{name}: permission denied; check the file's permissions") from None
    except OSError as exc:
        raise InputError(f"{name}: cannot read ({exc.strerror or exc})") from None
    if len(data) > limit:
        raise InputError(too_big)
    return data


def ensure_writable(folder: Path) -> None:
    """Fail now, before long work, if files cannot be created in ``folder`` or where it would be made."""
    folder = Path(folder).resolve()
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    if not existing.is_dir():
        raise RunError(f"cannot write to {folder}: {existing} is a file, not a folder")
    reserve_temporary(existing / ".ugosa-write-check").unlink()


def check_target(target: Path, inputs: Iterable[tuple[Path, str]] = (), *, force: bool = False,
                 option: str = "--out") -> None:
    """Refuse, before any work, to write the file ``target`` over a file the command reads (``inputs``: path and
    what it is, e.g. ``the labels file``; refused even with ``force``), over a folder, or over an existing file
    unless ``force``. ``option`` is the flag that named ``target``."""
    target = Path(target)
    resolved = target.resolve()
    for path, what in inputs:
        if Path(path).resolve() == resolved:
            raise InputError(f"{target}: refusing to overwrite {what}; choose another {option}")
    if target.is_dir():
        raise InputError(f"{target}: is a folder; give {option} a file name")
    if os.path.lexists(target) and not force:
        raise InputError(f"{target}: exists already; add --force to replace it, or choose another {option}")


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` only if the block succeeds.

    The temporary file is removed on any failure, Ctrl-C included, so no half-written file survives.
    """
    target = Path(target)
    tmp = reserve_temporary(target)
    try:
        yield tmp
        try:
            os.replace(tmp, target)
        except OSError as exc:
            raise write_error(target, exc) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_atomic(target: Path, data: bytes | memoryview) -> None:
    """Write ``data`` to ``target`` atomically (:func:`atomic_path`); a failure is one line (:func:`write_error`)
    and leaves no partial file."""
    with atomic_path(target) as tmp:
        try:
            tmp.write_bytes(data)
        except OSError as exc:
            raise write_error(target, exc) from exc


def sha256_file(path: Path, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's content."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()
