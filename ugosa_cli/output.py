"""Where stems go and how they are written: the file-name template, stem selection, clipping, formats."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import soundfile as sf

from ugosa_cli.audio import (
    BIT_DEPTHS,
    BLOCK_FRAMES,
    CLIP_MODES,
    FORMATS,
    ClipMode,
    check_finite_output,
    check_format,
    open_for_writing,
    os_name,
    subtype_for,
    write_failure,
)
from ugosa_cli.errors import InputError
from ugosa_cli.fsutil import (
    check_inside,
    check_name_length,
    commit_temporary,
    discard_temporary,
    reserve_temporary,
    resolved,
    uninterrupted,
)

DEFAULT_TEMPLATE = "{model}/{track}/{stem}.{ext}"
TEMPLATE_FIELDS = ("model", "parent", "track", "stem", "ext")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # NUL and the other C0 and C1 control characters, DEL
_UNSAFE_IN_PART = re.compile(r"[/\\\x00-\x1f\x7f-\x9f]")  # separators and control characters


def safe_part(value: str) -> str:
    """A template field value made safe as (part of) one path component under ``--out``.

    ``/``, ``\\``, NUL and control characters become ``_``; an empty value, ``.`` and ``..`` become ``_``,
    so a song named ``...wav`` (stem ``..``) is written to ``.../_/...`` instead of the folder above.
    """
    value = _UNSAFE_IN_PART.sub("_", value)
    return "_" if value in ("", ".", "..") else value


def _template_fields(template: str) -> set[str]:
    """The field names of a ``--filename`` template, refusing what would not name one stem per file."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise InputError(
            f"--filename {template!r}: not a valid template ({exc}); write fields as {{stem}} and a literal "
            "brace as {{ or }}"
        ) from None
    fields = set()
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        shown = "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
        plain = "use the fields as they are: " + " ".join("{" + f + "}" for f in TEMPLATE_FIELDS)
        if conversion or spec:
            what = "a conversion" if conversion else "a format spec"
            raise InputError(f"--filename {template!r}: {shown} has {what}; {plain}")
        base = re.split(r"[.\[]", name, maxsplit=1)[0]
        if base in TEMPLATE_FIELDS and name != base:
            what = "an index" if name[len(base)] == "[" else "an attribute"
            raise InputError(f"--filename {template!r}: {shown} has {what}; {plain}")
        fields.add(name)
    return fields


@dataclass(frozen=True)
class OutputSpec:
    """How to name and encode stems."""

    root: Path = Path("separated")
    template: str = DEFAULT_TEMPLATE
    fmt: str = "wav"
    bits: int = 16
    clip_mode: ClipMode = "rescale"
    # ``root`` resolved when the run starts: every stem must land under it, checked again where it is written.
    resolved_root: Path = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "resolved_root", resolved(self.root))
        if self.fmt not in FORMATS:
            raise InputError(f"--format {self.fmt}: use one of {', '.join(FORMATS)}")
        if self.bits not in BIT_DEPTHS:
            raise InputError(f"--bits {self.bits}: use one of {', '.join(map(str, BIT_DEPTHS))}")
        if self.clip_mode not in CLIP_MODES:
            raise InputError(f"--clip-mode {self.clip_mode}: use one of {', '.join(CLIP_MODES)}")
        subtype_for(self.fmt, self.bits)
        check_format(self.fmt)
        if _CONTROL.search(self.template):
            raise InputError(f"--filename {self.template!r}: contains a control character; write a plain path")
        fields = _template_fields(self.template)
        unknown = sorted(fields - set(TEMPLATE_FIELDS))
        if unknown:
            raise InputError(
                f"--filename {self.template!r}: unknown field {{{unknown[0]}}}; "
                f"use {', '.join('{' + f + '}' for f in TEMPLATE_FIELDS)}"
            )
        if "stem" not in fields:
            raise InputError(f"--filename {self.template!r}: must contain {{stem}} so each stem gets its own file")
        if os.path.isabs(self.template) or self.template.startswith(("/", "\\")):
            raise InputError(
                f"--filename {self.template!r}: must be a relative path under --out; give the folder with -o/--out "
                f"and a template such as {DEFAULT_TEMPLATE}"
            )
        if ".." in re.split(r"[/\\]", self.template):
            raise InputError(
                f"--filename {self.template!r}: a '..' part would leave --out; write a path under --out, or choose "
                "another -o/--out"
            )

    def path(self, *, model: str, track: str, stem: str, parent: str = "") -> Path:
        """Where one stem goes: the template filled with safe field values (:func:`safe_part`), under ``root``.

        ``parent``: the name of the song's folder (the ``{parent}`` field). The result is checked to resolve
        inside ``root`` (a last line of defence, e.g. against a symlink; :class:`StemWriter` checks again when it
        writes) and to have no part longer than the file system allows.
        """
        relative = self.template.format(model=safe_part(model), parent=safe_part(parent), track=safe_part(track),
                                        stem=safe_part(stem), ext=self.fmt)
        path = self.root / relative
        root = self.resolved_root
        if not resolved(path).is_relative_to(root):
            raise InputError(f"{path}: would be written outside --out {root}; choose another --out or --filename")
        check_name_length(path, "--out or --filename")
        return path

    def check_inside(self, path: Path) -> None:
        """Refuse to write ``path`` unless it still lands under ``root`` as it was when the run started."""
        check_inside(path, self.resolved_root, "--out")

    def paths(self, *, model: str, track: str, stems: Iterable[str], parent: str = "") -> dict[str, Path]:
        """:meth:`path` of each stem of one track, refusing a template that gives two stems one file."""
        paths: dict[str, Path] = {}
        seen: dict[Path, str] = {}
        for stem in stems:
            path = paths[stem] = self.path(model=model, track=track, stem=stem, parent=parent)
            other = seen.setdefault(resolved(path), stem)
            if other != stem:
                raise InputError(
                    f"--filename {self.template!r}: the stems {other} and {stem} would both be written to {path}; "
                    "put {stem} in the file name"
                )
        return paths


PARENT_TEMPLATE = "{model}/{parent}/{track}/{stem}.{ext}"
REPORT_PAGE = "report page"  # the key of a song's report page among its outputs (check_batch)


def _output(stem: str) -> str:
    return f"the {stem}" if stem == REPORT_PAGE else f"the {stem} stem"


def check_batch(planned: Sequence[tuple[str, Mapping[str, Path]]], inputs: Iterable[tuple[Path, str]],
                template: str) -> None:
    """Refuse, before anything is written, a batch whose stems would overwrite a file it reads, land where a
    folder is, or be written by two songs.

    ``planned``: each track as given, with its stems' paths (and its report page's, under :data:`REPORT_PAGE`);
    ``inputs``: every file the run reads, with what it is (``the input b/drums.wav``). Paths are compared resolved.
    """
    readers: dict[Path, str] = {}
    for path, what in inputs:
        readers.setdefault(resolved(path), what)
    writers: dict[Path, str] = {}
    for track, paths in planned:
        for stem, path in paths.items():
            key = resolved(path)
            if key in readers:
                raise InputError(f"{path}: {_output(stem)} of {track} would overwrite {readers[key]}; choose another "
                                 "--out or --filename")
            if path.is_dir():
                raise InputError(f"{path}: is a folder, in the way of {_output(stem)} of {track}; remove it or choose "
                                 "another --out or --filename")
            other = writers.setdefault(key, track)
            if other != track:
                hint = (f"put the song's folder in the name: --filename '{PARENT_TEMPLATE}'" if "{parent}" not in template
                        else "separate them in calls with different --out")
                raise InputError(f"{other} and {track} would both be written to {path} (--filename {template!r}); {hint}")


@dataclass(frozen=True)
class StemSelection:
    """Which stems a run writes: all the model's, a subset (``--stems``) or STEM and no_STEM (``--two-stems``)."""

    keep: tuple[str, ...] | None = None
    two_stems: str | None = None

    def names(self, sources: tuple[str, ...]) -> tuple[str, ...]:
        """The written stems' names, checked against the model's sources."""
        for name in (self.keep or ()) + ((self.two_stems,) if self.two_stems else ()):
            if name not in sources:
                raise InputError(f"stem {name!r} is not produced by this model; it makes {', '.join(sources)}")
        if self.two_stems:
            return (self.two_stems, f"no_{self.two_stems}")
        return tuple(name for name in sources if not self.keep or name in self.keep)

    def apply(self, stems: np.ndarray, sources: tuple[str, ...]) -> dict[str, np.ndarray]:
        """Name a block of the model's stems (sources, channels, frames) and keep the selected ones."""
        named = dict(zip(sources, stems))
        if self.two_stems:
            rest = sum(stem for name, stem in named.items() if name != self.two_stems)
            return {self.two_stems: named[self.two_stems], f"no_{self.two_stems}": np.asarray(rest, dtype=np.float32)}
        return {name: named[name] for name in self.names(sources)}


# Every stem of one song written by one run carries the same "set" mark in its comment tag, so a later
# --skip-existing can tell a complete set from stems of different runs (:func:`incomplete_set`).
_SET_MARK = "ugosa stem set "


class StemWriter:
    """Writes the stems of one track block by block, then moves them under their names together.

    Until :meth:`commit`, everything goes to hidden temporary files beside the targets; any failure,
    Ctrl-C included, removes them, so a stem appears whole or not at all. The renames of the commit are not
    interrupted (Ctrl-C, SIGTERM and SIGHUP wait until they are all done), and each stem is marked with the
    set it belongs to, so a song's stems appear as one set. Every path is checked to land under ``--out``
    when its temporary file is made and again right before the renames. With ``--clip-mode rescale`` the
    common scale is known only at the end, so blocks are kept as float32 until then.
    """

    def __init__(self, paths: dict[str, Path], samplerate: int, channels: int, spec: OutputSpec, protect: tuple[Path, ...] = ()) -> None:
        protected = {resolved(p) for p in protect}
        for path in paths.values():
            if resolved(path) in protected:
                raise InputError(f"{path}: refusing to overwrite the input file; choose another --out or --filename")
        check_format(spec.fmt, samplerate)
        self.paths = paths
        self.samplerate = samplerate
        self.channels = channels
        self.spec = spec
        self.peak = 0.0
        self.set_id = secrets.token_hex(8)
        self._temporaries: list[Path] = []
        self._raw: dict[str, BinaryIO] = {}
        self._encoded: dict[str, sf.SoundFile] = {}

    def __enter__(self) -> StemWriter:
        try:
            for name, path in self.paths.items():
                tmp = self._temporary(path)
                if self.spec.clip_mode == "rescale":
                    self._raw[name] = open(tmp, "wb")
                else:
                    self._encoded[name] = self._open_encoded(tmp, path)
        except BaseException:
            self._discard()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._discard()

    def write(self, stems: dict[str, np.ndarray]) -> None:
        """Append a block: stem name -> (channels, frames)."""
        for name, block in stems.items():
            check_finite_output(block, self.paths[name])
            try:
                if name in self._raw:
                    self.peak = max(self.peak, float(np.abs(block).max(initial=0.0)))
                    self._raw[name].write(np.ascontiguousarray(block.T, dtype=np.float32).tobytes())
                else:
                    samples = np.clip(block, -1.0, 1.0) if self.spec.clip_mode == "clamp" else block
                    self._encoded[name].write(np.ascontiguousarray(samples.T))
            except (OSError, RuntimeError) as exc:
                raise write_failure(self.paths[name], exc) from exc

    def commit(self) -> dict[str, Path]:
        """Finish every stem and give each its final name, all or (on a failure) none interrupted; returns stem
        name -> path."""
        finished = {name: self._finish(name) for name in self.paths}
        for path in self.paths.values():
            self.spec.check_inside(path)
        with uninterrupted():
            for name, tmp in finished.items():
                commit_temporary(tmp, self.paths[name])
                self._temporaries.remove(tmp)
        return dict(self.paths)

    def _finish(self, name: str) -> Path:
        """Close one stem's temporary file in the output format (encoding the float32 blocks if needed)."""
        path = self.paths[name]
        if name in self._encoded:
            handle = self._encoded.pop(name)
            try:
                handle.close()
            except (OSError, RuntimeError) as exc:
                raise write_failure(path, exc) from exc
            return Path(os.fsdecode(handle.name))
        raw = self._raw.pop(name)
        raw.close()
        scale = 1.0 / (self.peak * 1.01) if self.peak > 1.0 else 1.0
        encoded_path = self._temporary(path)
        encoded = self._open_encoded(encoded_path, path)
        try:
            with encoded, open(raw.name, "rb") as source:
                while True:
                    block = np.fromfile(source, dtype=np.float32, count=BLOCK_FRAMES * self.channels)
                    if block.size == 0:
                        break
                    encoded.write(block.reshape(-1, self.channels) * np.float32(scale))
        except (OSError, RuntimeError) as exc:
            raise write_failure(path, exc) from exc
        raw_path = Path(raw.name)
        discard_temporary(raw_path)
        self._temporaries.remove(raw_path)
        return encoded_path

    def _temporary(self, path: Path) -> Path:
        self.spec.check_inside(path)
        tmp = reserve_temporary(path)
        self._temporaries.append(tmp)
        return tmp

    def _open_encoded(self, tmp: Path, path: Path) -> sf.SoundFile:
        try:
            handle = open_for_writing(tmp, self.spec.fmt, self.spec.bits, self.samplerate, self.channels)
        except (OSError, RuntimeError) as exc:
            raise write_failure(path, exc) from exc
        handle.comment = _SET_MARK + self.set_id  # before any sample: FLAC and MP3 keep tags at the start
        return handle

    def _discard(self) -> None:
        for handle in [*self._raw.values(), *self._encoded.values()]:
            with contextlib.suppress(Exception):
                handle.close()
        self._raw.clear()
        self._encoded.clear()
        for tmp in self._temporaries:
            discard_temporary(tmp)
        self._temporaries.clear()


def incomplete_set(paths: Mapping[str, Path]) -> str | None:
    """Why the stems at ``paths`` (stem name -> file) are not one complete set from one run, or None when they
    are: a stem missing or unreadable, stems marked by different runs (a run stopped while it renamed them, or
    two runs of the same song at once), or stems of different lengths or rates. Stems without a mark (written
    before marks existed) count as one set if none has one."""
    missing = [stem for stem, path in paths.items() if not path.is_file()]
    if missing:
        return f"no {', '.join(missing)} stem" + ("s" if len(missing) > 1 else "")
    marks, shapes = set(), set()
    for stem, path in paths.items():
        try:
            with sf.SoundFile(os_name(path)) as handle:
                comment = handle.comment or ""
                marks.add(comment[len(_SET_MARK):] if comment.startswith(_SET_MARK) else None)
                shapes.add((handle.samplerate, handle.frames))
        except (sf.LibsndfileError, RuntimeError, OSError):
            return f"its {stem} stem cannot be read"
    if len(marks) > 1:
        return "its stems come from different runs (one stopped while it was renaming them)"
    if len(shapes) > 1:
        return "its stems differ in length or sample rate"
    return None


def write_separation(
    blocks: Iterable[np.ndarray],
    sources: tuple[str, ...],
    writer: StemWriter,
    selection: StemSelection = StemSelection(),
) -> None:
    """Select and write a song's stem blocks (as :meth:`~ugosa_cli.pipeline.GuidedSeparator.stem_blocks` gives
    them), then commit the writer."""
    for block in blocks:
        writer.write(selection.apply(block, sources))
    writer.commit()
