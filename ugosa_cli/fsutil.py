"""Atomic file writes (a result appears whole under its final name, or not at all), bounded reads of the
small text files users give (labels, track lists), and the one place where a path the operating system
refuses (a symlink loop, a name too long, a NUL byte) becomes one clear line.

Temporary files are named ``.<name>.<8 hex digits>.partial`` beside their target (the name shortened when the
whole would be longer than the file system allows). While one is written its writer holds a lock on it
(``flock``, where the system has it), so a later run can tell the leftovers of a killed run, which it removes
(:func:`sweep_stale_temporaries`), from the files of a run still going.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import secrets
import signal
import stat
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from ugosa_cli.errors import InputError, RunError, UgosaError

try:
    import fcntl
except ImportError:  # Windows has no flock: stale temporaries are then told by their age alone
    fcntl = None  # type: ignore[assignment]

# The most a labels file or a --from-list track list may hold: far more than any real one (a label track of
# a 3-hour song with a label every second is about 100 kB), small enough to refuse /dev/zero or a wrong file.
MAX_TEXT_BYTES = 16 << 20
_KINDS = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


# --- paths the operating system refuses -------------------------------------------------------------------

_PATH_ERRNOS = {
    errno.ELOOP: "a symbolic link loop (a link that points back to itself); remove or fix the link",
    errno.ENAMETOOLONG: "the name is longer than the file system allows; choose a shorter name",
    errno.EILSEQ: "the file system cannot store this name; rename it with plain characters",
}


def path_error(exc: BaseException) -> InputError | None:
    """The one line for an error the operating system or Python gives for a path it refuses, naming the path:
    a symbolic link loop, a name too long, a name the file system cannot store, a NUL byte, a name that is
    not valid text where text is needed. None for any other error."""
    if isinstance(exc, OSError) and exc.errno in _PATH_ERRNOS:
        where = exc.filename if exc.filename is not None else "a path"
        return InputError(f"{os.fsdecode(where)}: {_PATH_ERRNOS[exc.errno]}")
    if isinstance(exc, RuntimeError) and str(exc).startswith("Symlink loop from "):  # Path.resolve before 3.13
        where = str(exc)[len("Symlink loop from "):].strip("'\"")
        return InputError(f"{where}: {_PATH_ERRNOS[errno.ELOOP]}")
    if isinstance(exc, ValueError) and "null" in str(exc) and ("byte" in str(exc) or "character" in str(exc)):
        return InputError("a file name or path holds a NUL byte, which no file name can; check the names given "
                          "(a track list, a URL's %00)")
    if isinstance(exc, UnicodeEncodeError) and "surrogate" in str(exc):
        return InputError("a file name is not valid UTF-8 text where ugosa needs text; rename the file with "
                          "plain characters")
    return None


@contextlib.contextmanager
def path_errors() -> Iterator[None]:
    """Re-raise an error the OS gives for a path it refuses as its one line (:func:`path_error`)."""
    try:
        yield
    except (OSError, RuntimeError, ValueError) as exc:
        error = path_error(exc)
        if error is None:
            raise
        raise error from exc


def resolved(path: str | Path) -> Path:
    """``Path(path).resolve()``, a symbolic link loop on the way being one clear line (:func:`path_error`)."""
    with path_errors():
        return Path(path).resolve()


def check_inside(path: Path, root: Path, option: str | None = None) -> None:
    """Refuse ``path`` unless its folder resolves inside ``root`` (a resolved path). Checked right where a file is
    written, so a folder replaced by a link to elsewhere while a run works cannot send the file there.
    ``option``: the flag that named ``root`` (``--out``), if one did."""
    folder = resolved(Path(path).parent)
    if not folder.is_relative_to(root):
        where, other = (f"{option} {root}", f" or choose another {option}") if option else (str(root), "")
        raise InputError(f"{path}: would be written to {folder}, outside {where} (a folder on the way is a link "
                         f"that leads out of it); remove the link{other}")


def name_max(folder: Path) -> int:
    """The longest file name, in bytes, the file system holding ``folder`` (or its nearest existing parent)
    allows: ``pathconf(NAME_MAX)`` where the system tells it, else 255."""
    for candidate in (Path(folder), *Path(folder).parents):
        with contextlib.suppress(OSError):
            if candidate.is_dir():
                with contextlib.suppress(OSError, ValueError, AttributeError):
                    return int(os.pathconf(candidate, "PC_NAME_MAX"))
                break
    return 255


def check_name_length(path: Path, option: str) -> None:
    """Refuse, before any work, a path with a part longer than its file system allows (``NAME_MAX`` bytes);
    ``option``: what named it, for the hint (``--out``)."""
    limit = name_max(Path(path).parent)
    for part in Path(path).parts:
        size = len(os.fsencode(part))
        if size > limit:
            shown = part if len(part) <= 40 else f"{part[:24]}...{part[-12:]}"
            raise InputError(f"{shown}: a name of {size} bytes, longer than the {limit} this file system allows; "
                             f"choose a shorter {option}")


# --- temporary files -------------------------------------------------------------------------------------

# ugosa's temporary files: ".<name>.<8 hex digits>.partial" (the name possibly shortened).
_TEMPORARY = re.compile(r"^\..*\.[0-9a-f]{8}\.partial$", re.DOTALL)
# A temporary file nobody holds a lock on and that has not changed for this long was left by a killed run
# (without locks, as on Windows, its age alone tells, so it must be much older).
STALE_AFTER_S = 300.0 if fcntl is not None else 24 * 3600.0
_HELD: dict[Path, int] = {}  # temporary file -> the descriptor holding its lock
_SWEPT: set[Path] = set()  # folders already cleaned of stale temporaries by this process


def temporary_name(name: str, token: str, limit: int = 255) -> str:
    """The temporary file name for ``name``: ``.<name>.<token>.partial``, ``name`` shortened by whole characters
    until the whole fits in ``limit`` bytes."""
    keep = name
    while keep and len(os.fsencode(f".{keep}.{token}.partial")) > limit:
        keep = keep[:-1]
    return f".{keep}.{token}.partial"


def sweep_stale_temporaries(folder: Path) -> list[Path]:
    """Remove from ``folder`` the temporary files of ugosa's naming that killed runs left behind: no live writer
    holds their lock, and they have not changed for :data:`STALE_AFTER_S`. Done once per folder and process;
    returns what was removed."""
    key = Path(os.path.abspath(folder))
    if key in _SWEPT:
        return []
    _SWEPT.add(key)
    removed = []
    try:
        entries = list(os.scandir(key))
    except OSError:
        return []
    now = time.time()
    for entry in entries:
        if not _TEMPORARY.match(entry.name):
            continue
        with contextlib.suppress(OSError):
            info = entry.stat(follow_symlinks=False)
            if stat.S_ISREG(info.st_mode) and now - info.st_mtime >= STALE_AFTER_S and _abandoned(entry.path):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
    return removed


def _abandoned(path: str) -> bool:
    """Whether no process holds the lock of the temporary file at ``path`` (always, where there are no locks)."""
    if fcntl is None:
        return True
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    finally:
        os.close(fd)
    return True


def commit_temporary(tmp: Path, target: Path) -> None:
    """Rename the temporary file ``tmp`` onto ``target`` and let go of its lock; a failure is one line."""
    try:
        os.replace(tmp, target)
    except OSError as exc:
        raise write_error(target, exc) from exc
    _release(tmp)


def discard_temporary(tmp: Path) -> None:
    """Remove the temporary file ``tmp`` (if it is there) and let go of its lock."""
    try:
        tmp.unlink(missing_ok=True)
    finally:
        _release(tmp)


def _release(tmp: Path) -> None:
    fd = _HELD.pop(tmp, None)
    if fd is not None:
        os.close(fd)


@contextlib.contextmanager
def uninterrupted() -> Iterator[None]:
    """Hold Ctrl-C, SIGTERM and SIGHUP back for the block (a few renames that must all happen), then deliver
    them to the handlers they would have met. Only the main thread can; elsewhere the block just runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    names = ("SIGINT", "SIGTERM", "SIGHUP")
    signums = [getattr(signal, name) for name in names if hasattr(signal, name)]
    previous = {signum: signal.signal(signum, lambda signum, frame: received.append(signum)) for signum in signums}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for signum in dict.fromkeys(received):
            signal.raise_signal(signum)


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
        sweep_stale_temporaries(target.parent)
        tmp = _create_exclusive(target)
    except PermissionError as exc:
        raise InputError(f"cannot write to {target.parent}: permission denied; choose another output folder") from exc
    except OSError as exc:
        if exc.errno in _PATH_ERRNOS:
            raise path_error(exc) or write_error(target, exc) from exc
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
        discard_temporary(tmp)
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
    """A new, empty temporary file beside ``target`` (:func:`temporary_name`), created with mode 0o666 & ~umask
    and locked by this process until it is committed or discarded."""
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    limit = name_max(target.parent)
    for _ in range(100):
        tmp = target.parent / temporary_name(target.name, secrets.token_hex(4), limit)
        try:
            fd = os.open(tmp, flags, 0o666)
        except FileExistsError:
            continue
        if fcntl is not None:
            with contextlib.suppress(OSError):  # a file system without locks: the file's age alone will tell
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                _HELD[tmp] = fd
                return tmp
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
        raise InputError(f"{name}: {_PATH_ERRNOS.get(exc.errno or 0) or f'cannot read ({exc.strerror or exc})'}") from None
    if len(data) > limit:
        raise InputError(too_big)
    return data


def ensure_writable(folder: Path) -> None:
    """Fail now, before long work, if files cannot be created in ``folder`` or where it would be made."""
    folder = resolved(folder)
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    if not existing.is_dir():
        raise RunError(f"cannot write to {folder}: {existing} is a file, not a folder")
    discard_temporary(reserve_temporary(existing / ".ugosa-write-check"))


def file_target(text: str, option: str, example: str) -> Path:
    """The file a ``--out FILE`` option names, refusing a name that ends in a path separator (``newdir/``), which
    names a folder: ``example`` is the file name suggested inside it."""
    if text.endswith(("/", os.sep)) or text in ("", ".", ".."):
        folder = text if text.endswith(("/", os.sep)) else text + "/"
        raise InputError(f"{option} {text!r}: names a folder, not a file; give a file name, e.g. {option} "
                         f"{folder}{example}")
    return Path(text)


def check_target(target: Path, inputs: Iterable[tuple[Path, str]] = (), *, force: bool = False,
                 option: str = "--out") -> None:
    """Refuse, before any work, to write the file ``target`` over a file the command reads (``inputs``: path and
    what it is, e.g. ``the labels file``; refused even with ``force``), over a folder, or over an existing file
    unless ``force``, or with a name longer than the file system allows. ``option`` is the flag that named
    ``target``."""
    target = Path(target)
    check_name_length(target, option)
    where = resolved(target)
    for path, what in inputs:
        if resolved(path) == where:
            raise InputError(f"{target}: refusing to overwrite {what}; choose another {option}")
    if target.is_dir():
        raise InputError(f"{target}: is a folder; give {option} a file name")
    if os.path.lexists(target) and not force:
        raise InputError(f"{target}: exists already; add --force to replace it, or choose another {option}")


@contextlib.contextmanager
def atomic_path(target: Path, inside: Path | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` only if the block succeeds.

    The temporary file is removed on any failure, Ctrl-C included, so no half-written file survives.
    ``inside``: a resolved folder ``target`` must be written in (:func:`check_inside`), checked when the
    temporary file is made and again right before the rename.
    """
    target = Path(target)
    if inside is not None:
        check_inside(target, inside)
    tmp = reserve_temporary(target)
    try:
        yield tmp
        if inside is not None:
            check_inside(target, inside)
        commit_temporary(tmp, target)
    except BaseException:
        discard_temporary(tmp)
        raise


def write_atomic(target: Path, data: bytes | memoryview, inside: Path | None = None) -> None:
    """Write ``data`` to ``target`` atomically (:func:`atomic_path`, ``inside`` as there); a failure is one line
    (:func:`write_error`) and leaves no partial file."""
    with atomic_path(target, inside) as tmp:
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
