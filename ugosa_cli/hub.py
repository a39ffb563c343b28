"""Pretrained models: the registry, the download cache, and resolution of ``--model`` specs.

Cache layout (``cache_dir()`` is ``$UGOSA_CACHE_DIR`` or platformdirs' user cache dir for ``ugosa``)::

    <cache>/models/<file>                  registry models, e.g. tasnet-beb46fac.th
    <cache>/models/imported/<name>.th      models added with ``ugosa model import FILE --name NAME``
    <cache>/models/urls/<url-hash>/<file>  models given to ``--model`` as an http(s) URL

A file whose name ends in ``-<8 to 64 hex digits>.th`` must have a SHA-256 starting with those digits
(the ``torch.hub`` convention); every download, import and load checks it. A URL may pin its file's SHA-256
(or its first 8 or more hex digits) in a ``#sha256=<hex>`` fragment, checked the same way.

MSST models (BS-RoFormer, Mel-Band RoFormer, SCNet) are a weights file and a YAML configuration: ``--config``
(a file or URL, cached as model URLs are) goes with the weights file or URL (:func:`resolve_model`). Downloads go to a temporary
file beside the cache entry under a file lock, and are renamed into place only once complete and verified.
The library never prints: progress goes through a ``progress(done_bytes, total_bytes_or_None)`` callback,
warnings through an ``on_warning(message)`` callback (``warnings.warn`` when none is given).
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import shlex
import shutil
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path, PurePosixPath

import filelock
import platformdirs

from ugosa_cli import __version__
from ugosa_cli.checkpoint import LoadedModel, MSSTSource, read_model
from ugosa_cli.errors import InputError, RunError, UgosaError
from ugosa_cli.fsutil import atomic_path, not_regular_error, sha256_file, special_file_kind
from ugosa_cli.models.bag import ModelBag

Progress = Callable[[int, "int | None"], None]
Warn = Callable[[str], None]

DEFAULT_MODEL = "tasnet"
DEFAULT_ROOT = "https://dl.fbaipublicfiles.com/demucs/v3.0/"  # demucs v2's ConvTasNet files
V4_ROOT = "https://dl.fbaipublicfiles.com/demucs/hybrid_transformer/"  # demucs v4's HT-Demucs files
PACKAGED_DIR = Path(__file__).resolve().parent / "demo"
SOCKET_TIMEOUT_S = 30.0
# The longest one model file may take to download (``$UGOSA_DOWNLOAD_TIMEOUT`` seconds replaces it): a server
# that sends a byte now and then never trips the socket timeout, and would hold a run forever. An hour is
# ample for the largest registry file (about 170 MB) at 50 kB/s.
DOWNLOAD_DEADLINE_S = 3600.0
LOCK_TIMEOUT_S = 30 * 60.0
CHUNK_BYTES = 1 << 16
# The most a download may write: released model files are a few hundred MB at most, so this bounds what a
# wrong or hostile URL (one that never ends, or announces terabytes) can put on the disk.
MAX_DOWNLOAD_BYTES = 2 << 30
MAX_CONFIG_DOWNLOAD_BYTES = 1 << 20  # a model configuration (YAML) is a few kB

_HASH_SUFFIX = re.compile(r"-([0-9a-f]{8,64})\.th$")
_PIN = re.compile(r"^sha256=([0-9a-fA-F]{8,64})$")
_IMPORT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_TRUE_WORDS = ("1", "true", "yes", "on")
_FALSE_WORDS = ("", "0", "false", "no", "off")


@dataclass(frozen=True)
class ModelEntry:
    """One registry model: one file, or the files of a bag (one model per file, combined with ``weights``,
    members x sources), downloaded from ``root`` (``$UGOSA_MODEL_ROOT`` replaces every root) or shipped in
    ``ugosa_cli/demo/``."""

    name: str
    files: tuple[str, ...]
    description: str
    packaged: bool = False
    root: str = DEFAULT_ROOT
    weights: tuple[tuple[float, ...], ...] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.files, str):
            object.__setattr__(self, "files", (self.files,))

    @property
    def file(self) -> str:
        """The file of a one-file model (a bag's first member)."""
        return self.files[0]

    @property
    def is_bag(self) -> bool:
        return len(self.files) > 1

    def url_of(self, file: str) -> str | None:
        return None if self.packaged else model_root(self.root) + file

    @property
    def url(self) -> str | None:
        return self.url_of(self.file)

    @property
    def paths(self) -> tuple[Path, ...]:
        """Where the files live (packaged) or will live once downloaded (remote)."""
        folder = PACKAGED_DIR if self.packaged else models_dir()
        return tuple(folder / file for file in self.files)

    @property
    def path(self) -> Path:
        return self.paths[0]


def _one_hot(sources: int) -> tuple[tuple[float, ...], ...]:
    return tuple(tuple(1.0 if k == j else 0.0 for j in range(sources)) for k in range(sources))


REGISTRY: dict[str, ModelEntry] = {
    entry.name: entry
    for entry in (
        ModelEntry("tasnet", ("tasnet-beb46fac.th",), "ConvTasNet (demucs v2) trained on MUSDB18 train"),
        ModelEntry("tasnet_extra", ("tasnet_extra-df3777b2.th",), "ConvTasNet (demucs v2), MUSDB18 + 150 extra songs"),
        ModelEntry("htdemucs", ("955717e8-8726e21a.th",), "HT-Demucs (demucs v4): drums, bass, other, vocals",
                   root=V4_ROOT),
        ModelEntry(
            "htdemucs_ft",
            ("f7e0c4bc-ba3fe64a.th", "d12395a8-e57c48e6.th", "92cfc3b6-ef3bcb9c.th", "04573f0d-f3cf25b2.th"),
            "HT-Demucs fine-tuned per source (demucs v4): a bag of 4, 4x slower", root=V4_ROOT, weights=_one_hot(4),
        ),
        ModelEntry("htdemucs_6s", ("5c90dfd2-34c22ccb.th",), "HT-Demucs (demucs v4) with guitar and piano: 6 sources",
                   root=V4_ROOT),
        ModelEntry("demo", ("demo-304fcb45.th",), "Small ConvTasNet trained on synthetic songs (offline demo)",
                   packaged=True),
        ModelEntry("demo_htdemucs", ("demo_htdemucs-8983508f.th",),
                   "Small HT-Demucs trained on synthetic songs (offline demo of the HT-Demucs family)", packaged=True),
    )
}


@dataclass(frozen=True)
class ModelInfo:
    """What ``ugosa model list`` shows for one model."""

    name: str
    description: str
    kind: str  # "remote", "packaged" or "imported"
    url: str | None
    path: Path
    available: bool  # on disk and, if its name promises a SHA-256 prefix, matching it
    size: int | None
    default: bool
    corrupt: bool = False  # on disk, but its SHA-256 does not start with the prefix its name promises
    paths: tuple[Path, ...] = ()  # every file (a bag has several; ``path`` is the first)
    sha256: tuple[str, ...] = ()  # per file: its SHA-256 when on disk, else the prefix its name promises (or "")


# --- locations -------------------------------------------------------------------------------------------


def cache_dir() -> Path:
    """The ugosa cache root: ``$UGOSA_CACHE_DIR`` or the platform's user cache dir for ``ugosa``."""
    override = os.environ.get("UGOSA_CACHE_DIR", "").strip()
    return Path(override).expanduser() if override else Path(platformdirs.user_cache_dir("ugosa", appauthor=False))


def models_dir() -> Path:
    """Where downloaded and imported models are kept: ``cache_dir() / "models"``."""
    return cache_dir() / "models"


def model_root(default: str = DEFAULT_ROOT) -> str:
    """The download root for registry models: ``$UGOSA_MODEL_ROOT`` (a mirror of every registry file) or the
    entry's own root (``default``), ending in ``/``."""
    root = os.environ.get("UGOSA_MODEL_ROOT", "").strip() or default
    if urllib.parse.urlparse(root).scheme not in ("http", "https"):
        raise InputError(f"UGOSA_MODEL_ROOT={root!r}: must be an http(s) URL")
    return root if root.endswith("/") else root + "/"


def offline_mode(offline: bool = False) -> bool:
    """True when ``offline`` (``--offline``) is set or ``UGOSA_OFFLINE`` holds a true word.

    The one rule for ``UGOSA_OFFLINE``, case-insensitive, surrounding blanks ignored: ``1``, ``true``, ``yes``,
    ``on`` turn offline mode on; ``0``, ``false``, ``no``, ``off`` or nothing leave it off; any other value is
    refused (:class:`InputError`), whatever ``offline`` is, so every command treats a value the same way.
    """
    value = os.environ.get("UGOSA_OFFLINE", "")
    word = value.strip().lower()
    if word not in _TRUE_WORDS + _FALSE_WORDS:
        raise InputError(
            f"UGOSA_OFFLINE={value!r}: use 1, true, yes or on to work offline, or 0, false, no, off (or leave it "
            "empty) to allow the network"
        )
    return offline or word in _TRUE_WORDS


def imported_path(name: str) -> Path:
    return models_dir() / "imported" / f"{name}.th"


def split_pin(url: str) -> tuple[str, str | None]:
    """A URL without its ``#sha256=<hex>`` fragment, and the pinned digest (lower case; None if none).

    Any other fragment is refused: it would say nothing to the server and could hide a typo of the pin."""
    base, _, fragment = url.partition("#")
    if not fragment:
        return base, None
    match = _PIN.match(fragment)
    if match is None:
        raise InputError(f"{url}: the only fragment a URL takes is #sha256=<8 to 64 hex digits of its SHA-256>")
    return base, match.group(1).lower()


def url_cache_path(url: str) -> Path:
    """Where the model at ``url`` is cached: a folder named after the URL's hash (without a ``#sha256=`` pin),
    then the URL's file name."""
    url = split_pin(url)[0]
    name = PurePosixPath(urllib.parse.unquote(urllib.parse.urlparse(url).path)).name
    if not name:
        raise InputError(f"{url}: the URL names no file (expected .../NAME.th)")
    if re.search(r"[\x00-\x1f\x7f]", name):
        raise InputError(f"{url}: the URL's file name holds a control character or a NUL byte (%00, %0A, ...), "
                         "which no model file's name does; check the URL")
    return models_dir() / "urls" / hashlib.sha256(url.encode()).hexdigest()[:16] / name


def expected_prefix(file_name: str) -> str | None:
    """The SHA-256 prefix a file name promises (``name-<hex>.th``), or None."""
    match = _HASH_SUFFIX.search(file_name)
    return match.group(1) if match else None


def is_url(spec: str) -> bool:
    return spec.startswith(("http://", "https://"))


# --- the registry and the cache --------------------------------------------------------------------------


def imported_names() -> list[str]:
    folder = models_dir() / "imported"
    return sorted(p.stem for p in folder.glob("*.th")) if folder.is_dir() else []


def known_names() -> list[str]:
    return list(REGISTRY) + [n for n in imported_names() if n not in REGISTRY]


def unknown_model_error(name: str) -> InputError:
    return InputError(
        f"unknown model {name!r}; known models: {', '.join(known_names())} "
        "(a path to a model file or an http(s) URL also works)"
    )


def cached_paths(name: str) -> list[Path] | None:
    """The local files of a registry (all of a bag's) or imported model, or None if any is not cached
    (unknown names raise)."""
    entry = REGISTRY.get(name)
    if entry is not None:
        return list(entry.paths) if all(path.is_file() for path in entry.paths) else None
    path = imported_path(name)
    if path.is_file():
        return [path]
    raise unknown_model_error(name)


def list_models() -> list[ModelInfo]:
    """Every registry model, then every imported one, with whether it is on disk."""
    rows = []
    for entry in REGISTRY.values():
        rows.append(_info(entry.name, entry.description, "packaged" if entry.packaged else "remote", entry.url,
                          entry.paths))
    for name in imported_names():
        if name not in REGISTRY:
            rows.append(_info(name, "imported with `ugosa model import`", "imported", None, (imported_path(name),)))
    return rows


def _info(name: str, description: str, kind: str, url: str | None, paths: tuple[Path, ...]) -> ModelInfo:
    """One row of :func:`list_models`; a file on disk whose name carries a hash prefix is hashed to check it
    (so a cut or damaged cache entry shows as corrupt; about a second per 500 MB). A bag is available when
    all its files are, corrupt when any is; its size is theirs together."""
    on_disk = all(path.is_file() for path in paths)
    corrupt = False
    digests = []
    for path in paths:
        expected = expected_prefix(path.name)
        digest = expected or ""
        if path.is_file():
            try:
                digest = sha256_file(path)
                corrupt |= expected is not None and not digest.startswith(expected)
            except OSError:
                corrupt = True
        digests.append(digest)
    return ModelInfo(
        name=name,
        description=description,
        kind=kind,
        url=url,
        path=paths[0],
        available=on_disk and not corrupt,
        size=sum(path.stat().st_size for path in paths) if on_disk else None,
        default=name == DEFAULT_MODEL,
        corrupt=corrupt,
        paths=paths,
        sha256=tuple(digests),
    )


# --- getting models onto disk ----------------------------------------------------------------------------


def ensure_model(name: str, *, offline: bool = False, progress: Progress | None = None) -> list[Path]:
    """The local files of a registry (all of a bag's) or imported model, downloading remote ones into the
    cache if needed."""
    entry = REGISTRY.get(name)
    if entry is None:
        path = imported_path(name)
        if not path.is_file():
            raise unknown_model_error(name)
        return [path]
    if entry.packaged:
        if not entry.path.is_file():
            raise RunError(f"packaged model {name!r} is missing from this installation ({entry.path}); reinstall ugosa")
        return [entry.path]
    paths = []
    for file, path in zip(entry.files, entry.paths):
        url = entry.url_of(file)
        assert url is not None
        hint = f"on a connected machine download {url}, then run `ugosa model import {file}` here"
        paths.append(fetch(url, path, offline=offline, progress=progress, offline_hint=hint))
    return paths


def ensure_url(
    url: str,
    *,
    offline: bool = False,
    progress: Progress | None = None,
    on_warning: Warn | None = None,
    option: str = "--model",
    limit: int | None = None,
) -> Path:
    """The cached copy of the file at ``url``, downloading it if needed; a download is verified against a
    ``#sha256=`` pin or the hash its name carries, else made with a warning (a cached copy is checked against a
    pin by its reader: :func:`pinned_mismatch`). ``option``: the flag the file is given to; ``limit``: the most
    bytes it may have (None: :data:`MAX_DOWNLOAD_BYTES`)."""
    base, pin = split_pin(url)
    target = url_cache_path(base)
    if not target.is_file() and not offline_mode(offline) and pin is None and expected_prefix(target.name) is None:
        _warn(
            on_warning,
            f"{base}: neither a #sha256= pin nor a -<sha256 prefix>.th file name, so the download cannot be verified",
        )
    hint = f"on a connected machine download {base}, then give the file's path to {option}"
    return fetch(base, target, offline=offline, progress=progress, offline_hint=hint, expected=pin, limit=limit)


def pinned_mismatch(url: str, path: Path) -> str:
    """The problem of a cached copy of ``url`` whose SHA-256 does not start with the URL's pin."""
    return (f"{path} (cached from {split_pin(url)[0]}) does not match the pinned #sha256=; remove it with "
            f"`ugosa model remove {split_pin(url)[0]}` and run again")


def fetch(url: str, target: Path, *, offline: bool, progress: Progress | None, offline_hint: str,
          expected: str | None = None, limit: int | None = None) -> Path:
    """``target``, downloaded from ``url`` unless already there; safe against concurrent processes."""
    if target.is_file():
        return target
    if offline_mode(offline):
        raise RunError(f"{target.name} is not in the model cache and offline mode is on (UGOSA_OFFLINE / --offline): "
                       f"{offline_hint}")
    with _CacheLock(target):
        if not target.is_file():  # another process may have finished it while we waited
            download(url, target, progress=progress, hint=offline_hint, expected=expected, limit=limit)
    return target


def download_deadline() -> float:
    """Seconds one download may take: ``$UGOSA_DOWNLOAD_TIMEOUT`` if set (a positive number), else
    :data:`DOWNLOAD_DEADLINE_S`."""
    value = os.environ.get("UGOSA_DOWNLOAD_TIMEOUT", "").strip()
    if not value:
        return DOWNLOAD_DEADLINE_S
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise InputError(f"UGOSA_DOWNLOAD_TIMEOUT={value!r}: give the most seconds a model download may take, a "
                         f"positive number (default {DOWNLOAD_DEADLINE_S:g})")
    return seconds


def download(url: str, target: Path, *, progress: Progress | None = None, hint: str = "", expected: str | None = None,
             limit: int | None = None) -> None:
    """Stream ``url`` to a temporary file beside ``target``, check its length and SHA-256 (``expected``, else the
    prefix the file name carries), then rename. At most ``limit`` bytes (None: :data:`MAX_DOWNLOAD_BYTES`) are
    written.

    The whole download must finish within :func:`download_deadline` (checked after every read, each of which
    the socket timeout bounds); ``hint``: how to get the file another way, for the error when it does not.
    """
    expected = expected or expected_prefix(target.name)
    limit = MAX_DOWNLOAD_BYTES if limit is None else limit
    request = urllib.request.Request(url, headers={"User-Agent": f"ugosa/{__version__}"})
    opener = urllib.request.build_opener(NoDowngradeRedirect())
    deadline = download_deadline()
    began = time.monotonic()
    done = 0
    with atomic_path(target) as tmp:
        try:
            with opener.open(request, timeout=SOCKET_TIMEOUT_S) as response, open(tmp, "wb") as out:
                length = response.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
                if total is not None and total > limit:
                    raise RunError(f"download of {url} refused: it announces {total} bytes, more than the "
                                   f"{limit / (1 << 20):g} MiB such a file may have; check the URL")
                digest = hashlib.sha256()
                if progress:
                    progress(0, total)
                for chunk in _chunks(response):
                    if time.monotonic() - began > deadline:
                        got = f"{done} of {total}" if total is not None else f"{done}"
                        raise RunError(
                            f"download of {url} stopped: not finished after {deadline:g} s ({got} bytes came); "
                            "check the network and run again, or give it longer with UGOSA_DOWNLOAD_TIMEOUT=SECONDS"
                            + (f"; or {hint}" if hint else "")
                        )
                    if done + len(chunk) > limit:
                        raise RunError(f"download of {url} stopped: over {limit / (1 << 20):g} MiB, more than "
                                       "such a file may have; check the URL")
                    out.write(chunk)
                    digest.update(chunk)
                    done += len(chunk)
                    if progress:
                        progress(done, total)
        except urllib.error.HTTPError as exc:
            raise RunError(f"download failed: HTTP {exc.code} {exc.reason} for {url}") from exc
        except urllib.error.URLError as exc:
            raise RunError(f"download failed: cannot reach {url}: {exc.reason}; check the network or use "
                           "`ugosa model import`") from exc
        except (OSError, HTTPException) as exc:
            raise RunError(f"download of {url} was interrupted after {done} bytes ({exc or type(exc).__name__}); "
                           "run the command again") from exc
        if total is not None and done != total:
            raise RunError(f"download of {url} was interrupted: got {done} of {total} bytes; run the command again")
        actual = digest.hexdigest()
        if expected is not None and not actual.startswith(expected):
            raise RunError(
                f"download of {url} is corrupt: SHA-256 starts with {actual[:len(expected)]}, expected {expected}; "
                "the file was deleted, run the command again"
            )


def _chunks(response: object) -> Iterator[bytes]:
    """The body as it arrives: each piece is what one read of the socket gave (at most :data:`CHUNK_BYTES`), so
    a trickle yields bytes now and then instead of blocking until a whole chunk is in."""
    while chunk := response.read1(CHUNK_BYTES):  # type: ignore[attr-defined]
        yield chunk


class NoDowngradeRedirect(urllib.request.HTTPRedirectHandler):
    """Follow redirects, except from https to plain http (which would expose the download to tampering)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def,unused-ignore]
        new_scheme = urllib.parse.urlparse(urllib.parse.urljoin(req.full_url, newurl)).scheme
        if urllib.parse.urlparse(req.full_url).scheme == "https" and new_scheme != "https":
            fp.close()
            raise RunError(f"download refused: {req.full_url} redirects to insecure {newurl}")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class _CacheLock:
    """The ``<file>.lock`` beside a cache entry, with errors a user can act on."""

    def __init__(self, target: Path) -> None:
        self._target = target
        self._lock = filelock.FileLock(str(target) + ".lock", timeout=LOCK_TIMEOUT_S)

    def __enter__(self) -> None:
        try:
            self._target.parent.mkdir(parents=True, exist_ok=True)
            self._lock.acquire()
        except filelock.Timeout as exc:
            raise RunError(f"another ugosa process has been writing {self._target} for over "
                           f"{LOCK_TIMEOUT_S / 60:.0f} minutes; wait for it or stop it") from exc
        except OSError as exc:
            raise RunError(f"cannot write to the model cache {self._target.parent}: {exc.strerror or exc}; "
                           "set UGOSA_CACHE_DIR to a writable folder") from exc

    def __exit__(self, *exc: object) -> None:
        self._lock.release()


# --- import and remove -----------------------------------------------------------------------------------


def import_model(file: Path, name: str | None = None) -> tuple[str, Path]:
    """Copy a model file into the cache (checked to load, and against its hash prefix); return (name, path).

    A file named like a registry file, or imported with ``name`` = a registry name, becomes that registry
    model; any other file becomes an imported model called ``name`` (default: the file's stem).
    """
    file = Path(file).expanduser()
    kind = special_file_kind(file)
    if kind is not None:
        raise not_regular_error(str(file), kind, "a model file", stdin_works=False)
    if not file.is_file():
        raise InputError(f"{file}: no such file" if not file.exists() else f"{file}: not a file")
    by_file = next((e for e in REGISTRY.values() if file.name in e.files), None)
    entry = REGISTRY.get(name) if name is not None else by_file
    if entry is not None and entry.packaged:
        raise InputError(f"{entry.name!r} is packaged with ugosa; there is nothing to import")
    if entry is not None and entry.is_bag and file.name not in entry.files:
        raise InputError(f"--name {entry.name}: that model is a bag of {len(entry.files)} files "
                         f"({', '.join(entry.files)}); import each file under its own name, without --name")
    if entry is None:
        name = name or file.stem
        if not _IMPORT_NAME.match(name):
            raise InputError(f"--name {name!r}: use letters, digits, '.', '_' and '-' (up to 100), starting with a "
                             "letter or digit")
        target, expected = imported_path(name), expected_prefix(file.name)
    else:
        member = file.name if file.name in entry.files else entry.file
        name, target, expected = entry.name, entry.paths[entry.files.index(member)], expected_prefix(member)
    read_model(file)
    with _CacheLock(target), atomic_path(target) as tmp:
        shutil.copyfile(file, tmp)
        _check_hash(tmp, expected, f"{file}: not the {name!r} model file")
    return name, target


def locate(spec: str) -> list[Path] | None:
    """The local files of a registry or imported model name (a bag has several), or of a cached URL; None if
    not on disk."""
    if is_url(spec):
        path = url_cache_path(spec)
        return [path] if path.is_file() else None
    return cached_paths(spec)


def remove_model(spec: str) -> list[Path]:
    """Delete the cached files of a registry or imported model (those of a bag that are there), or of a URL;
    return their paths."""
    entry = REGISTRY.get(spec)
    if entry is not None and entry.packaged:
        raise InputError(f"{spec!r} is packaged with ugosa and cannot be removed")
    paths = [p for p in entry.paths if p.is_file()] if entry is not None else locate(spec)
    if not paths:
        raise InputError(f"{spec} is not in the model cache; nothing to remove")
    for path in paths:
        with _CacheLock(path):
            path.unlink(missing_ok=True)
    return paths


# --- resolving --model -----------------------------------------------------------------------------------


def resolve_config(
    spec: str, *, offline: bool = False, progress: Progress | None = None, on_warning: Warn | None = None
) -> Path:
    """The local file of ``--config spec``: the path, or the cached copy of a URL (downloaded if needed)."""
    if is_url(spec):
        path = ensure_url(spec, offline=offline, progress=progress, on_warning=on_warning, option="--config",
                          limit=MAX_CONFIG_DOWNLOAD_BYTES)
        _check_hash(path, split_pin(spec)[1], pinned_mismatch(spec, path), RunError)
        return path
    if "://" in spec:
        raise InputError(f"--config {spec!r}: only http:// and https:// URLs are supported")
    return Path(spec).expanduser()


def resolve_model(
    spec: str,
    *,
    offline: bool = False,
    progress: Progress | None = None,
    on_warning: Warn | None = None,
    config: str | None = None,
    model_type: str | None = None,
) -> LoadedModel:
    """Load the model ``--model spec`` names: a registry or imported name, a local file, or an http(s) URL;
    with ``config`` (``--config``, a YAML file or URL) the file holds the weights of an MSST model of type
    ``model_type`` (``--model-type``; None: as the configuration says).

    Registry names win over same-named files in the current folder (write ``./NAME`` for those). Any file
    whose name ends in ``-<hex>.th`` is checked against that SHA-256 prefix before it is loaded.
    """
    if config is None and model_type is not None:
        raise InputError(f"--model-type {model_type} needs --config: the YAML configuration of the MSST model")
    source = None
    if config is not None:
        if spec in REGISTRY or (spec and spec in imported_names()):
            raise InputError(f"--config goes with the weights file (or URL) of an MSST model, not with {spec!r}")
        source = MSSTSource(resolve_config(config, offline=offline, on_warning=on_warning), model_type, config)
    if is_url(spec):
        path = ensure_url(spec, offline=offline, progress=progress, on_warning=on_warning)
        base, pin = split_pin(spec)
        return load_verified(path, path.stem, repair=_cache_repair(base, DOWNLOAD_AGAIN), msst=source, pin=pin)
    if spec in REGISTRY or (spec and spec in imported_names()):
        paths = ensure_model(spec, offline=offline, progress=progress)
        if spec not in REGISTRY:
            repair = _cache_repair(spec, f"import the model file again with `ugosa model import FILE --name {spec}`")
        else:
            repair = Repair("reinstall ugosa") if REGISTRY[spec].packaged else _cache_repair(spec, DOWNLOAD_AGAIN)
        if len(paths) == 1:
            return load_verified(paths[0], spec, repair=repair)
        return load_bag(REGISTRY[spec], paths, repair=repair)
    if "://" in spec:
        raise InputError(f"--model {spec!r}: only http:// and https:// URLs are supported")
    if not spec.strip():
        raise unknown_model_error(spec)
    path = Path(spec).expanduser()
    if path.is_dir():
        raise InputError(f"{spec}: is a folder, not a model file")
    kind = special_file_kind(path)
    if kind is not None:  # /dev/zero would be hashed forever, a FIFO would block
        raise not_regular_error(spec, kind, "a model file", stdin_works=False)
    if path.exists():
        return load_verified(path, path.stem, msst=source)
    if _looks_like_path(spec):
        raise InputError(f"{spec}: no such file")
    raise unknown_model_error(spec)


DOWNLOAD_AGAIN = "run the command again to download it again"


@dataclass(frozen=True)
class Repair:
    """How a model file ugosa manages (a cache entry, a packaged model) is repaired. ``fix``: what to do about a
    file that does not load; ``again``, for a cache entry: how it comes back once removed (a file failing its
    hash is removed at once)."""

    fix: str
    again: str | None = None


def _cache_repair(spec: str, again: str) -> Repair:
    return Repair(f"remove it from the model cache with `ugosa model remove {shlex.quote(spec)}`", again)


def load_verified(
    path: Path, name: str, *, repair: Repair | None = None, msst: MSSTSource | None = None, pin: str | None = None
) -> LoadedModel:
    """Hash ``path``, check the prefix its name promises (or ``pin``, a URL's ``#sha256=``), then load it with
    ``weights_only=True`` (with ``msst``: as the weights of that MSST configuration).

    ``repair``: for a file ugosa manages, how to repair it. A bad hash is then a run-time failure, and a cache
    entry failing it is removed (a later run fetches it again); a file that does not load is named with
    ``repair.fix``.
    """
    expected = pin or expected_prefix(path.name)
    if repair is None:
        digest = _check_hash(path, expected, f"{path}: corrupt or not the file its name says")
    elif repair.again is None:
        digest = _check_hash(path, expected, f"{path} is corrupt; {repair.fix}", RunError)
    else:
        digest = _check_hash(path, None, "")
        if expected is not None and not digest.startswith(expected):
            with _CacheLock(path):
                path.unlink(missing_ok=True)
            problem = "did not match the URL's #sha256= pin" if pin else "was corrupt"
            raise RunError(f"{path} {problem} (SHA-256 starts with {digest[:len(expected)]}, expected {expected}) "
                           f"and was removed from the model cache; {repair.again}")
    try:
        model, provenance = read_model(path, msst)
    except UgosaError as exc:
        if repair is None:
            raise
        rm = "" if repair.again is None else f" (or `rm {shlex.quote(str(path))}`)"
        raise type(exc)(f"{exc.message}; {repair.fix}{rm}") from exc
    return LoadedModel(model=model, name=name, sha256=digest, provenance=provenance)


def load_bag(entry: ModelEntry, paths: list[Path], *, repair: Repair) -> LoadedModel:
    """A registry bag: each file verified and loaded, combined with the entry's weights. Its SHA-256 is the
    digest of the members' digests, in order."""
    members = [load_verified(path, path.stem, repair=repair) for path in paths]
    try:
        bag = ModelBag([member.model for member in members], entry.weights)
    except InputError as exc:
        raise RunError(f"{entry.name}: {exc.message}; {repair.fix}") from exc
    digest = hashlib.sha256("".join(member.sha256 for member in members).encode()).hexdigest()
    provenance = {"bag": [{"file": path.name, "sha256": member.sha256} for path, member in zip(paths, members)]}
    return LoadedModel(model=bag, name=entry.name, sha256=digest, provenance=provenance)


def _check_hash(path: Path, expected: str | None, problem: str, error: type[UgosaError] = InputError) -> str:
    try:
        digest = sha256_file(path)
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    if expected is not None and not digest.startswith(expected):
        raise error(f"{problem} (SHA-256 starts with {digest[:len(expected)]}, expected {expected})")
    return digest


def _looks_like_path(spec: str) -> bool:
    return (
        "/" in spec
        or os.sep in spec
        or spec.startswith(("~", "."))
        or PurePosixPath(spec).suffix.lower() in (".th", ".pt", ".pth", ".ckpt", ".safetensors")
    )


def _warn(on_warning: Warn | None, message: str) -> None:
    if on_warning is not None:
        on_warning(message)
    else:
        warnings.warn(message, stacklevel=3)
