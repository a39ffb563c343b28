"""Reading, resampling and writing audio.

Audio is held as float32 numpy arrays shaped (channels, frames). Reading goes through soundfile
(libsndfile: WAV, FLAC, OGG, MP3, ...), ``-`` reads standard input; resampling uses soxr; writing is
atomic so a stem appears whole or not at all.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import re
import shutil
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

import numpy as np
import soundfile as sf
import soxr

from ugosa_cli.errors import InputError, RunError
from ugosa_cli.fsutil import atomic_path, not_regular_error, path_error, special_file_kind

STDIN = "-"
BLOCK_FRAMES = 1 << 16  # frames per block when audio is read or written in pieces
# Audio piped on standard input is held in memory to be read in several passes, so it is bounded: 2 GiB is
# about three hours of 16-bit stereo WAV at 44.1 kHz; longer audio is streamed from its file instead.
MAX_STDIN_BYTES = 2 << 30
# The sample rates ugosa reads. 8 kHz (telephone audio, MP3's lowest rate) is the lowest in use for sound; a
# header claiming less (1 Hz) is broken, and would make seconds of samples hours long. 768 kHz is the highest
# rate audio interfaces record; beyond it a header is broken too.
MIN_SAMPLERATE = 8000
MAX_SAMPLERATE = 768000
ClipMode = Literal["rescale", "clamp", "none"]
CLIP_MODES: tuple[str, ...] = ("rescale", "clamp", "none")
FORMATS: tuple[str, ...] = ("wav", "flac", "mp3")
BIT_DEPTHS: tuple[int, ...] = (16, 24, 32)
_SUBTYPES = {
    ("wav", 16): "PCM_16",
    ("wav", 24): "PCM_24",
    ("wav", 32): "FLOAT",
    ("flac", 16): "PCM_16",
    ("flac", 24): "PCM_24",
}
# MP3 through libsndfile (1.1.0 or newer, with LAME): constant 320 kbps at 44.1/48 kHz (the highest quality
# setting; demucs' --mp3 default is 320 kbps too); MPEG-1/2/2.5 store only these rates.
MP3_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
_MP3_OPTIONS = {"compression_level": 0.0, "bitrate_mode": "CONSTANT"}


@dataclass
class Audio:
    """Samples (channels, frames) as float32 in [-1, 1] for integer sources, and their rate."""

    samples: np.ndarray
    samplerate: int
    source: str

    @property
    def channels(self) -> int:
        return self.samples.shape[0]

    @property
    def frames(self) -> int:
        return self.samples.shape[1]

    @property
    def duration(self) -> float:
        return self.frames / self.samplerate

    def blocks(self, size: int = BLOCK_FRAMES) -> Iterator[np.ndarray]:
        """The samples in (channels, at most ``size`` frames) pieces, as :meth:`AudioFile.blocks` gives them."""
        for start in range(0, self.frames, size):
            yield self.samples[:, start : start + size]


class AudioFile:
    """An audio file (or standard input) opened for reading whole or block by block, in any number of passes.

    Opening checks that the file exists and can be decoded; samples are decoded only when read.
    """

    def __init__(self, path: str | Path, stdin: BinaryIO | None = None) -> None:
        name = str(path)
        if name == STDIN:
            stream = stdin if stdin is not None else sys.stdin.buffer
            data = stream.read(MAX_STDIN_BYTES + 1)
            if len(data) > MAX_STDIN_BYTES:
                raise InputError(
                    f"<stdin>: more than {MAX_STDIN_BYTES >> 20} MiB of audio on standard input; give the file's "
                    "path instead (files are read from disk in blocks)"
                )
            if not data:
                raise InputError(
                    "standard input is empty: pipe an audio file into ugosa, e.g. `cat song.wav | ugosa separate -`"
                )
            self._data: bytes | None = data
            self.source = "<stdin>"
        else:
            file = Path(path)
            try:
                os.stat(file)
            except FileNotFoundError:
                raise InputError(f"{file}: no such file") from None
            except OSError as exc:
                raise path_error(exc) or InputError(f"{file}: cannot read ({exc.strerror or exc})") from None
            if file.is_dir():
                raise InputError(f"{file}: is a folder, expected an audio file")
            kind = special_file_kind(file)
            if kind is not None:  # a FIFO or /dev/zero has size 0 but is not empty; it is never opened
                raise not_regular_error(str(file), kind, "an audio file")
            if file.stat().st_size == 0:
                raise InputError(f"{file}: the file is empty (0 bytes)")
            self._data = None
            self.source = str(file)
        self._path = name
        with self._open() as handle:
            self.samplerate = int(handle.samplerate)
            self.channels = int(handle.channels)
            self.frames = int(handle.frames)
            extra = handle.extra_info
        if self.frames == 0:
            raise InputError(f"{self.source}: the audio has no samples")
        if not MIN_SAMPLERATE <= self.samplerate <= MAX_SAMPLERATE:
            raise InputError(
                f"{self.source}: its header gives a sample rate of {self.samplerate} Hz; ugosa reads audio at "
                f"{MIN_SAMPLERATE} to {MAX_SAMPLERATE} Hz (the file is damaged, or resample it)"
            )
        self.warnings = _truncation_warnings(self.source, extra, self.frames / self.samplerate)

    @property
    def duration(self) -> float:
        return self.frames / self.samplerate

    def _open(self) -> sf.SoundFile:
        handle: str | bytes | io.BytesIO = io.BytesIO(self._data) if self._data is not None else os_name(self._path)
        try:
            return sf.SoundFile(handle)
        except sf.LibsndfileError as exc:
            raise InputError(
                f"{self.source}: cannot read audio ({_libsndfile_reason(exc)}); use WAV, FLAC, OGG or MP3"
            ) from exc
        except (RuntimeError, ValueError, EOFError) as exc:
            raise InputError(f"{self.source}: cannot read audio ({exc}); use WAV, FLAC, OGG or MP3") from exc

    def blocks(self, size: int = BLOCK_FRAMES) -> Iterator[np.ndarray]:
        """The samples as (channels, at most ``size`` frames) float32 blocks, from the start."""
        with self._open() as handle:
            while True:
                try:
                    block = handle.read(size, dtype="float32", always_2d=True)
                except (sf.LibsndfileError, RuntimeError) as exc:
                    raise InputError(f"{self.source}: cannot read audio ({_libsndfile_reason(exc)})") from exc
                if len(block) == 0:
                    return
                yield _checked(np.ascontiguousarray(block.T), self.source)

    def read(self) -> Audio:
        """All samples at once."""
        samples = np.concatenate(list(self.blocks()), axis=1)
        return Audio(samples=samples, samplerate=self.samplerate, source=self.source)


def read_audio(path: str | Path, stdin: BinaryIO | None = None) -> Audio:
    """Read a whole audio file (or standard input for ``-``), checking it holds usable samples."""
    return AudioFile(path, stdin).read()


# The largest sample magnitude read: what a 24-bit integer file holds when its integers are stored as floats
# unscaled, far beyond full scale (1.0). Every later stage squares and sums samples over whole songs in float32 (and
# scales stems back to the input's level); this bound keeps all of them finite.
MAX_SAMPLE = float(1 << 24)


def _checked(samples: np.ndarray, label: str) -> np.ndarray:
    if not np.isfinite(samples).all():
        raise InputError(f"{label}: the audio contains NaN or infinite samples; fix or re-export the file")
    peak = float(np.abs(samples).max(initial=0.0))
    if peak > MAX_SAMPLE:
        raise InputError(
            f"{label}: samples reach {peak:.3g}, {20 * np.log10(peak):.0f} dB above full scale (1.0); ugosa reads "
            f"audio up to {MAX_SAMPLE:.0f}: normalise the file (or re-export it) and try again"
        )
    return samples


def check_finite_output(samples: np.ndarray, path: Path) -> None:
    """Refuse to write audio holding NaN or infinite samples: non-finite numbers never reach a file."""
    if not np.isfinite(samples).all():
        raise RunError(
            f"{path}: not written: the audio came out with NaN or infinite samples; this is a fault in ugosa, "
            "please report it with the command you ran"
        )


_DATA_CHUNK = re.compile(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)


def _truncation_warnings(label: str, extra_info: str, seconds: float) -> tuple[str, ...]:
    """A warning when libsndfile found fewer sample bytes than the WAV header announces (a cut-off file)."""
    match = _DATA_CHUNK.search(extra_info)
    if not match or int(match.group(2)) >= int(match.group(1)):
        return ()
    return (
        f"{label}: the file is cut off ({match.group(2)} of the {match.group(1)} bytes of samples its header "
        f"announces); using the {seconds:.1f} s that are there",
    )


def _libsndfile_reason(exc: Exception) -> str:
    text = str(exc)
    return text.split(": ", 1)[-1] if ": " in text else text


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Resample (channels, frames) with soxr's high-quality filter; a no-op at equal rates."""
    if from_rate == to_rate:
        return samples
    out = soxr.resample(np.ascontiguousarray(samples.T), from_rate, to_rate, quality="HQ")
    return np.ascontiguousarray(out.T, dtype=np.float32)


class StreamResampler:
    """:func:`resample` applied block by block: the concatenated outputs equal resampling the whole at once."""

    def __init__(self, from_rate: int, to_rate: int, channels: int) -> None:
        self._stream = (
            None if from_rate == to_rate else soxr.ResampleStream(from_rate, to_rate, channels, dtype="float32", quality="HQ")
        )
        self._channels = channels

    def __call__(self, block: np.ndarray, *, last: bool = False) -> np.ndarray:
        """Resample (channels, frames); ``last=True`` also flushes what the filter still holds."""
        if self._stream is None:
            return block
        out = self._stream.resample_chunk(np.ascontiguousarray(block.T, dtype=np.float32), last=last)
        return np.ascontiguousarray(out.T)

    def flush(self) -> np.ndarray:
        """The filter's remaining output at the end of the stream."""
        return self(np.zeros((self._channels, 0), np.float32), last=True)


class BlockReader:
    """A stream of (..., n) blocks read back in pieces of any length, whatever sizes the blocks came in."""

    def __init__(self, blocks: Iterable[np.ndarray]) -> None:
        self._blocks = iter(blocks)
        self._held: list[np.ndarray] = []
        self._count = 0

    def take(self, count: int) -> np.ndarray | None:
        """The next ``count`` samples (fewer where the stream ends); None once the stream has nothing left."""
        while self._count < count or not self._held:
            block = next(self._blocks, None)
            if block is None:
                break
            self._held.append(block)
            self._count += block.shape[-1]
        if not self._held:
            return None
        joined = np.concatenate(self._held, axis=-1) if len(self._held) > 1 else self._held[0]
        rest = joined[..., count:]
        self._held, self._count = ([rest] if rest.shape[-1] else []), rest.shape[-1]
        return joined[..., :count]

    def remaining(self) -> int:
        """How many samples are left, read to the end of the stream."""
        return self._count + sum(block.shape[-1] for block in self._blocks)


def fit_length(samples: np.ndarray, frames: int) -> np.ndarray:
    """Trim or zero-pad the last axis to exactly ``frames``."""
    current = samples.shape[-1]
    if current >= frames:
        return samples[..., :frames]
    pad = [(0, 0)] * (samples.ndim - 1) + [(0, frames - current)]
    return np.pad(samples, pad)


def common_rate_and_length(stems: Mapping[str, Audio], what: str) -> tuple[int, int, list[str]]:
    """The sample rate stems (one song's, by name) share, and their common length (the shortest), with a warning
    when their lengths differ; stems of different rates are refused. ``what`` names them (``reference stems``)."""
    rates = {audio.samplerate for audio in stems.values()}
    if len(rates) > 1:
        listing = ", ".join(f"{name} {audio.samplerate} Hz" for name, audio in stems.items())
        raise InputError(f"the {what} have different sample rates ({listing}); resample them to one rate")
    rate = rates.pop()
    length = min(audio.frames for audio in stems.values())
    notes = []
    if any(audio.frames != length for audio in stems.values()):
        notes.append(f"{what} differ in length; all are trimmed to the shortest, {length / rate:.3f} s")
    return rate, length, notes


def fit_notes(audio: Audio, rate: int, frames: int, whose: str) -> list[str]:
    """What bringing ``audio`` to another signal's rate and length (``frames`` at ``rate``) does to it, as
    warnings naming its file: a resampling, a trim or a zero-padding. ``whose``: that signal, possessive
    (``the references'``)."""
    notes = []
    length = audio.frames
    if audio.samplerate != rate:
        notes.append(f"{audio.source}: resampled from {audio.samplerate} Hz to {whose} {rate} Hz")
        length = round(audio.frames * rate / audio.samplerate)
    if length != frames:
        action = "trimmed" if length > frames else "zero-padded"
        notes.append(f"{audio.source}: {length / rate:.3f} s {action} to {whose} {frames / rate:.3f} s")
    return notes


def match_channels(samples: np.ndarray, channels: int, *, downmix: bool = False, label: str = "input") -> np.ndarray:
    """Convert (c, frames) to ``channels``: mono is duplicated; more than 2 needs ``downmix``."""
    have = samples.shape[0]
    if have == channels:
        return samples
    if have == 1:
        return np.repeat(samples, channels, axis=0)
    if have > 2 and not downmix:
        raise InputError(
            f"{label}: has {have} channels; ugosa separates mono or stereo audio (add --downmix to mix it down to stereo)"
        )
    if channels == 1:
        return samples.mean(axis=0, keepdims=True)
    if have > 2:
        mono = samples.mean(axis=0, keepdims=True)
        return np.repeat(mono, channels, axis=0)
    raise InputError(f"{label}: cannot map {have} channels onto a {channels}-channel model")


def subtype_for(fmt: str, bits: int) -> str:
    """The libsndfile subtype of a container and bit depth (MP3 has none: ``bits`` does not apply)."""
    if fmt == "mp3":
        return "MPEG_LAYER_III"
    try:
        return _SUBTYPES[(fmt, bits)]
    except KeyError:
        raise InputError(f"--bits {bits} is not available for {fmt} (FLAC stores 16 or 24 bits)") from None


def check_format(fmt: str, samplerate: int | None = None) -> None:
    """Refuse a container this libsndfile cannot write, or a rate the container cannot store."""
    if fmt != "mp3":
        return
    if "MP3" not in sf.available_formats():
        raise InputError(
            f"--format mp3: the installed libsndfile ({sf.__libsndfile_version__}) cannot write MP3 (it needs "
            "1.1.0 or newer built with LAME); use --format flac or wav, or convert the stems afterwards"
        )
    if samplerate is not None and samplerate not in MP3_RATES:
        raise InputError(
            f"--format mp3 stores {', '.join(f'{r // 1000 if r % 1000 == 0 else r / 1000:g}' for r in MP3_RATES)} kHz "
            f"audio only, not {samplerate} Hz; use --format flac or wav"
        )


def os_name(path: str | Path) -> str | bytes:
    """``path`` as libsndfile should get it: the file system's own bytes on POSIX, so a name that is not valid
    UTF-8 (Python holds its bytes as escapes) opens as it is; the text on Windows."""
    return str(path) if os.name == "nt" else os.fsencode(path)


def open_for_writing(path: str | Path, fmt: str, bits: int, samplerate: int, channels: int) -> sf.SoundFile:
    """An audio file opened for writing in one of :data:`FORMATS` (MP3: constant 320 kbps)."""
    options = _MP3_OPTIONS if fmt == "mp3" else {}
    return sf.SoundFile(os_name(path), "w", samplerate=samplerate, channels=channels, subtype=subtype_for(fmt, bits),
                        format=fmt.upper(), **options)


def write_audio(path: Path, samples: np.ndarray, samplerate: int, *, fmt: str = "wav", bits: int = 16,
                inside: Path | None = None) -> None:
    """Write (channels, frames) atomically in the given container and bit depth (32 = float); ``inside``: the
    resolved folder it must land in (:func:`~ugosa_cli.fsutil.atomic_path`)."""
    check_format(fmt, samplerate)
    check_finite_output(samples, Path(path))
    with atomic_path(Path(path), inside) as tmp:
        try:
            with open_for_writing(tmp, fmt, bits, samplerate, samples.shape[0]) as out:
                out.write(np.ascontiguousarray(samples.T))
        except (OSError, RuntimeError) as exc:
            raise write_failure(path, exc) from exc


def write_failure(path: Path, exc: Exception) -> RunError:
    """The one-line error for an audio file that could not be written; a full disk is named as such."""
    full = getattr(exc, "errno", None) == errno.ENOSPC
    if not full:
        with contextlib.suppress(OSError):
            full = shutil.disk_usage(Path(path).parent).free < (1 << 20)
    if full:
        return RunError(f"{path}: cannot write audio: the disk is full; free some space or choose another --out")
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return RunError(f"{path}: cannot write audio: {reason}")


# File name suffixes taken as audio when a folder of stems is scanned.
AUDIO_SUFFIXES = frozenset(
    {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aifc", ".au", ".caf", ".w64", ".rf64"}
)


def collect_stems(specs: list[str], option: str) -> dict[str, Path]:
    """Stem name -> file from a folder of ``<stem>.<ext>`` files, or from files (``NAME=FILE`` to rename)."""
    if len(specs) == 1 and Path(specs[0]).is_dir():
        return _stems_in_folder(Path(specs[0]), option)
    stems: dict[str, Path] = {}
    for spec in specs:
        path, name = Path(spec), Path(spec).stem
        label, sep, target = spec.partition("=")
        if sep and label.strip() and not path.exists():
            path, name = Path(target), label.strip()
        if path.is_dir():
            raise InputError(f"{option} {path}: is a folder; give one folder alone, or stem files")
        if not path.exists():
            raise InputError(f"{option} {path}: no such file or folder")
        if name in stems:
            raise InputError(f"{option}: two files for the stem {name!r} ({stems[name]} and {path})")
        stems[name] = path
    return stems


def _stems_in_folder(folder: Path, option: str) -> dict[str, Path]:
    stems: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path.name.startswith(".") or path.suffix.lower() not in AUDIO_SUFFIXES:
            continue
        if path.stem in stems:
            raise InputError(f"{option} {folder}: two files for the stem {path.stem!r} ({stems[path.stem].name}, {path.name})")
        stems[path.stem] = path
    if not stems:
        raise InputError(f"{option} {folder}: no audio files (<stem>.wav, .flac, ...) in that folder")
    return stems
