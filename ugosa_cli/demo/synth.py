"""Synthetic multitrack songs: drums, bass, other (piano, arpeggio or pad) and a sung melody.

Everything is drawn from the seed: tempo, key, chord progression, sections, patterns and the base
timbres. Each source rests in some sections and plays in others (``rests="sections"``), or, as in the
UGOSA paper's experiment, rests in exactly one quarter of the song (``rests="quarters"``); outside its
regions a stem is exactly zero (only a few milliseconds of fade lie inside the region borders), so the regions are
true activation labels. ``timbre`` moves the sounds away from the training distribution (filters,
harmonic balance, formants, drum tunings) without changing the arrangement.

Synthesis is vectorised numpy: band-limited wavetables read with per-sample phase, precomputed drum
samples placed at their hits, and noise shaped in the frequency domain.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ugosa_cli.audio import write_audio
from ugosa_cli.errors import InputError
from ugosa_cli.fsutil import write_atomic
from ugosa_cli.labels import format_labels, labels_from_regions
from ugosa_cli.sources import DEFAULT_SOURCES

SOURCES = DEFAULT_SOURCES
# Where sources rest: "sections" (sections drawn from the seed, each source resting in some of them) or
# "quarters" (the paper's protocol: each source rests in one quarter of the song, one source per quarter).
REST_LAYOUTS = ("sections", "quarters")
MIN_DURATION = 2.0
MIN_SAMPLERATE = 8000
FADE_SECONDS = 0.003
MIX_PEAK = 0.89

_ARRANGEMENT_STREAM, _SOUND_STREAM, _NOISE_STREAM, _SHIFT_STREAM = range(4)
_TABLE_SIZE = 4096
_TIME_TOLERANCE = 1e-9  # seconds: rounding between equal grid times
_MIN_NOTE = 0.05  # seconds
_NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
_SCALES = {False: (0, 2, 4, 5, 7, 9, 11), True: (0, 2, 3, 5, 7, 8, 10)}
_PROGRESSIONS = {  # scale degrees (0 = tonic), one chord per bar
    False: ((0, 4, 5, 3), (0, 3, 4, 3), (5, 3, 0, 4), (0, 5, 3, 4), (0, 3, 0, 4)),
    True: ((0, 5, 2, 6), (0, 3, 4, 0), (0, 6, 5, 6), (0, 3, 5, 4), (0, 5, 3, 6)),
}
# Drum patterns on a 16-step bar: kick, snare, closed hat, open hat.
_DRUM_PATTERNS = (
    ((0, 8, 10), (4, 12), tuple(range(0, 16, 2)), ()),
    ((0, 4, 8, 12), (4, 12), (0, 4, 8, 12), (2, 6, 10, 14)),
    ((0, 6), (8,), tuple(range(0, 16, 2)), (14,)),
    ((0, 6, 10), (4, 12), tuple(range(16)), ()),
)
# Bass patterns on an 8-step bar: (step, length in steps, semitones above the chord root).
_BASS_PATTERNS = (
    ((0, 2, 0), (2, 2, 0), (4, 2, 0), (6, 2, 0)),
    tuple((step, 1, 0) for step in range(8)),
    ((0, 3, 0), (3, 1, 0), (4, 2, 7), (6, 2, 12)),
    tuple((step, 1, 12 * (step % 2)) for step in range(8)),
    ((0, 4, 0), (4, 2, 7), (6, 2, 0)),
)
# Piano chord rhythms in beats: (onset, length).
_CHORD_RHYTHMS = (
    ((0, 1), (1, 1), (2, 1), (3, 1)),
    ((0, 1.5), (1.5, 1), (2.5, 1.5)),
    ((0, 2), (2, 2)),
)
# Melody rhythms in beats; negative values are rests (sung anyway where the voice enters).
_MELODY_RHYTHMS = (
    (1, 1, 2), (2, 2), (1.5, 0.5, 2), (1, 1, 1, 1), (-1, 1, 1, 1), (3, 1), (0.5, 0.5, 1, 2), (2, -1, 1),
)
# Vowel formants (Hz) and bandwidths: a, e, i, o, u.
_VOWELS = (
    ((800, 1150, 2900), (80, 90, 120)),
    ((400, 1700, 2600), (60, 80, 120)),
    ((300, 2200, 3000), (50, 90, 120)),
    ((450, 800, 2830), (70, 80, 100)),
    ((325, 700, 2530), (50, 60, 100)),
)
_LEVELS_DB = {"drums": 0.0, "bass": -2.0, "other": -4.0, "vocals": -1.0}


@dataclass
class Song:
    """Four stems (channels, frames) float32 that sum to the mixture, and where each one plays.

    ``regions`` borders lie on samples; a stem is exactly zero outside its regions and fades in and out
    over at most :data:`FADE_SECONDS` just inside them.
    """

    stems: dict[str, np.ndarray]
    samplerate: int
    regions: dict[str, list[tuple[float, float]]]
    tempo: float
    key: str
    seed: int
    timbre: float
    rests: str = "sections"

    @property
    def mix(self) -> np.ndarray:
        """The mixture: the sum of the stems in source order."""
        return functools.reduce(np.add, (self.stems[name] for name in SOURCES))

    @property
    def frames(self) -> int:
        return next(iter(self.stems.values())).shape[1]

    @property
    def duration(self) -> float:
        return self.frames / self.samplerate


@dataclass(frozen=True)
class Note:
    """One note of the arrangement (the vowel is for the vocals)."""

    onset: float  # seconds
    duration: float  # seconds until release
    pitch: float  # MIDI note number
    velocity: float
    vowel: int = 0


@dataclass(frozen=True)
class _Arrangement:
    tempo: float
    key_root: int  # pitch class
    minor: bool
    regions: dict[str, list[tuple[float, float]]]
    drums: dict[str, list[tuple[float, float]]]  # piece -> (onset, velocity)
    bass: list[Note]
    other: list[Note]
    other_style: str
    vocals: list[Note]

    @property
    def key(self) -> str:
        return f"{_NOTE_NAMES[self.key_root]} {'minor' if self.minor else 'major'}"


@dataclass(frozen=True)
class _Timbre:
    """Sound parameters: drawn per song from the seed, then moved by the ``timbre`` control."""

    kick_high: float
    kick_low: float
    kick_decay: float
    snare_tone: float
    snare_noise_low: float
    snare_decay: float
    hat_cutoff: float
    hat_decay: float
    bass_cutoff: float
    bass_slope: float
    keys_cutoff: float
    keys_slope: float
    keys_decay: float
    pad_detune: float
    formant_scale: float
    voice_tilt: float
    vibrato_rate: float
    vibrato_cents: float
    breath: float
    pans: dict[str, float]
    room: tuple[tuple[tuple[float, float], ...], ...]  # per channel: (delay ms, gain)
    levels_db: dict[str, float]


def generate_song(
    seed: int,
    *,
    duration: float = 20.0,
    samplerate: int = 44100,
    channels: int = 2,
    timbre: float = 0.0,
    rests: str = "sections",
) -> Song:
    """Generate a song deterministically from ``seed`` (same seed and settings: bit-identical stems).

    The arrangement (tempo, key, sections, regions, notes) depends only on ``seed``, ``duration`` and
    ``rests`` (one of :data:`REST_LAYOUTS`).
    ``timbre`` 0 draws the sounds from the training distribution; a larger magnitude moves each source's
    sound further along a seeded direction (filters, harmonic balance, formants, drum tuning; at 1 about
    an octave of filter cutoff for bass and keys and a 15 % formant shift), and its sign flips them.
    """
    _check_settings(seed, duration, samplerate, channels, timbre)
    if rests not in REST_LAYOUTS:
        raise InputError(f"rest layout {rests!r} is not known; use {' or '.join(REST_LAYOUTS)}")
    frames = round(duration * samplerate)
    arrangement = _arrange(seed, frames / samplerate, samplerate, rests)
    sound = _draw_timbre(seed, timbre, samplerate)
    noise = _stream(seed, _NOISE_STREAM)
    raw = {
        "drums": _render_drums(arrangement, sound, noise, frames, samplerate, channels),
        "bass": _render_bass(arrangement.bass, sound, frames, samplerate, channels),
        "other": _render_other(arrangement, sound, frames, samplerate, channels),
        "vocals": _render_vocals(arrangement.vocals, sound, noise, frames, samplerate, channels),
    }
    stems = _balance(raw, arrangement.regions, sound, samplerate)
    return Song(
        stems=stems,
        samplerate=samplerate,
        regions=arrangement.regions,
        tempo=arrangement.tempo,
        key=arrangement.key,
        seed=seed,
        timbre=timbre,
        rests=rests,
    )


def drum_kit(seed: int, *, samplerate: int = 44100, timbre: float = 0.0) -> dict[str, np.ndarray]:
    """The mono drum samples ("kick", "snare", "hat", "open_hat") that the song of ``seed`` plays."""
    _check_settings(seed, MIN_DURATION, samplerate, 1, timbre)
    return _drum_kit(_draw_timbre(seed, timbre, samplerate), _stream(seed, _NOISE_STREAM), samplerate)


def write_song(song: Song, folder: Path, *, fmt: str = "wav") -> dict[str, Path]:
    """Write mixture, stems (MUSDB-style names) and ``labels.txt`` (Audacity labels) into ``folder``.

    WAV files hold 32-bit floats so the stems keep their exact zeros and sum to the mixture; FLAC
    holds 24 bits. Returns the written paths by name ("mixture", the sources, "labels").
    """
    if fmt not in ("wav", "flac"):
        raise InputError(f"song format {fmt!r} is not supported; use wav or flac")
    bits = 32 if fmt == "wav" else 24
    folder = Path(folder)
    tracks = {"mixture": song.mix, **song.stems}
    paths: dict[str, Path] = {}
    for name, samples in tracks.items():
        paths[name] = folder / f"{name}.{fmt}"
        write_audio(paths[name], samples, song.samplerate, fmt=fmt, bits=bits)
    paths["labels"] = folder / "labels.txt"
    text = format_labels(labels_from_regions(song.regions, duration=song.duration), "audacity")
    write_atomic(paths["labels"], text.encode("utf-8"))
    return paths


def _check_settings(seed: int, duration: float, samplerate: int, channels: int, timbre: float) -> None:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"seed {seed!r} is not valid; use a whole number >= 0")
    if not math.isfinite(duration) or duration < MIN_DURATION:
        raise InputError(f"song duration {duration} s is too short; use at least {MIN_DURATION} s")
    if samplerate < MIN_SAMPLERATE:
        raise InputError(f"sample rate {samplerate} Hz is too low; use at least {MIN_SAMPLERATE} Hz")
    if channels not in (1, 2):
        raise InputError(f"{channels} channels are not supported; songs are mono (1) or stereo (2)")
    if not math.isfinite(timbre):
        raise InputError(f"timbre {timbre} is not a finite number")


def _stream(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), stream])


def _midi_to_hz(pitch: float) -> float:
    return 440.0 * 2.0 ** ((pitch - 69.0) / 12.0)


# --- arrangement -------------------------------------------------------------------------------


def _arrange(seed: int, duration: float, samplerate: int, rests: str) -> _Arrangement:
    rng = _stream(seed, _ARRANGEMENT_STREAM)
    tempo = float(rng.integers(80, 141))
    beat = 60.0 / tempo
    key_root = int(rng.integers(12))
    minor = bool(rng.random() < 0.5)
    progressions = _PROGRESSIONS[minor]
    progression = progressions[rng.integers(len(progressions))]
    scale = _SCALES[minor]
    bars = math.ceil(duration / (4 * beat))
    chords = [_triad(scale, progression[bar % len(progression)]) for bar in range(bars)]

    if rests == "quarters":
        sections = _quarters(duration, beat)
        active = _one_rest_each(rng)
    else:
        sections = _sections(duration, beat, rng)
        active = _activity(len(sections), rng)
    regions = {name: _merge([sections[i] for i in np.flatnonzero(active[row])]) for row, name in enumerate(SOURCES)}
    grid = _Grid(beat, regions)
    sample_regions = {
        name: [(_snap(start, samplerate), _snap(end, samplerate)) for start, end in spans]
        for name, spans in regions.items()
    }
    other_style = ("piano", "arpeggio", "pad")[rng.integers(3)]
    return _Arrangement(
        tempo=tempo,
        key_root=key_root,
        minor=minor,
        regions=sample_regions,
        drums=_drum_hits(grid, bars, rng),
        bass=_bass_line(grid, chords, key_root, bars, rng),
        other=_other_part(grid, chords, key_root, other_style, bars, rng),
        other_style=other_style,
        vocals=_melody(grid, chords, scale, key_root, bars, rng),
    )


def _triad(scale: tuple[int, ...], degree: int) -> tuple[int, ...]:
    """Semitones above the key root of the diatonic triad on ``degree``."""
    return tuple(scale[(degree + step) % 7] + 12 * ((degree + step) // 7) for step in (0, 2, 4))


def _sections(duration: float, beat: float, rng: np.random.Generator) -> list[tuple[float, float]]:
    """Split the song on the beat grid into at least two sections (three or more when it is long enough)."""
    lengths = [beats * beat for beats in (16, 8, 4, 2, 1)]
    roomy = [length for length in lengths if duration / length >= 3]
    length = roomy[rng.integers(min(2, len(roomy)))] if roomy else beat
    edges = [float(edge) for edge in np.arange(0.0, duration, length)] + [duration]
    if len(edges) > 3 and edges[-1] - edges[-2] < 0.5 * length:
        del edges[-2]
    return list(zip(edges[:-1], edges[1:]))


def _quarters(duration: float, beat: float) -> list[tuple[float, float]]:
    """Four sections of about a quarter of the song each, their borders on the beat grid when it fits."""
    edges = [0.0]
    for quarter in (1, 2, 3):
        edge = round(duration * quarter / 4 / beat) * beat
        edges.append(edge if edges[-1] < edge < duration else duration * quarter / 4)
    edges.append(duration)
    return list(zip(edges[:-1], edges[1:]))


def _one_rest_each(rng: np.random.Generator) -> np.ndarray:
    """Activity for :func:`_quarters`: section q silences one source, each source in a different section."""
    active = np.ones((len(SOURCES), 4), dtype=bool)
    for section, source in enumerate(rng.permutation(len(SOURCES))):
        active[source, section] = False
    return active


def _snap(time: float, samplerate: int) -> float:
    """The time of the sample nearest to ``time``: region borders fall on samples."""
    return round(time * samplerate) / samplerate


def _activity(n_sections: int, rng: np.random.Generator) -> np.ndarray:
    """Which source plays in which section: each plays somewhere, rests somewhere, no section is empty."""
    active = rng.random((len(SOURCES), n_sections)) < np.array([0.7, 0.7, 0.75, 0.6])[:, None]
    for row in active:
        if row.all():
            row[rng.integers(n_sections)] = False
        if not row.any():
            row[rng.integers(n_sections)] = True
    for section in range(n_sections):
        if active[:, section].any():
            continue
        flexible = [s for s in range(len(SOURCES)) if (~active[s]).sum() >= 2]
        if flexible:
            active[flexible[rng.integers(len(flexible))], section] = True
        else:  # every source rests only here: swap one source's rest into another section
            source = int(rng.integers(len(SOURCES)))
            other = [i for i in range(n_sections) if i != section][rng.integers(n_sections - 1)]
            active[source, section], active[source, other] = True, False
    return active


def _merge(spans: list[tuple[float, float]]) -> list[tuple[float, float]]:
    merged: list[tuple[float, float]] = []
    for start, end in spans:
        if merged and merged[-1][1] == start:
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


@dataclass(frozen=True)
class _Grid:
    """The beat grid and each source's regions (on the grid), to place events where a source plays."""

    beat: float
    regions: dict[str, list[tuple[float, float]]]

    def region_end(self, source: str, time: float) -> float | None:
        """End of the region of ``source`` that contains ``time``, or None when it rests then."""
        for start, end in self.regions[source]:
            if start - _TIME_TOLERANCE <= time < end - _TIME_TOLERANCE:
                return end
        return None

    def starts_region(self, source: str, time: float) -> bool:
        return any(abs(start - time) < _TIME_TOLERANCE for start, _ in self.regions[source])

    def notes(self, source: str, events: Sequence[tuple[float, float, float, float, int]]) -> list[Note]:
        """Turn (onset, length, pitch, velocity, vowel) events into notes that sound only inside the regions.

        A note that starts in a region ends with it; a note still sounding when a region starts enters there.
        """
        kept = []
        for onset, length, pitch, velocity, vowel in events:
            for start, end in self.regions[source]:
                first = onset if onset >= start - _TIME_TOLERANCE else start
                last = min(onset + length, end)
                if first < end - _TIME_TOLERANCE and (first == onset or last - first >= _MIN_NOTE):
                    kept.append(Note(first, last - first, pitch, velocity, vowel))
        return kept


def _drum_hits(grid: _Grid, bars: int, rng: np.random.Generator) -> dict[str, list[tuple[float, float]]]:
    """(onset, velocity) per drum piece: one pattern for the song, slightly late hits, snare fills."""
    kick, snare, closed, open_hat = _DRUM_PATTERNS[rng.integers(len(_DRUM_PATTERNS))]
    step = grid.beat / 4
    hits: dict[str, list[tuple[float, float]]] = {"kick": [], "snare": [], "hat": [], "open_hat": []}
    for bar in range(bars):
        start = bar * 16 * step
        fill = rng.random() < 0.25
        pieces = {
            "kick": kick,
            "snare": tuple(sorted(set(snare) | ({13, 14, 15} if fill else set()))),
            "hat": closed,
            "open_hat": open_hat,
        }
        for piece, steps in pieces.items():
            for s in steps:
                onset = start + s * step + rng.uniform(0.0, 0.006)
                accent = 1.0 if s % 4 == 0 else 0.75
                velocity = accent * rng.uniform(0.85, 1.0)
                if grid.region_end("drums", onset) is not None:
                    hits[piece].append((onset, velocity))
    return hits


def _bass_line(
    grid: _Grid, chords: list[tuple[int, ...]], key_root: int, bars: int, rng: np.random.Generator
) -> list[Note]:
    """Chord roots between E1 and D#2, with fifths and octaves, on an eighth-note grid."""
    pattern = _BASS_PATTERNS[rng.integers(len(_BASS_PATTERNS))]
    step = grid.beat / 2
    events = []
    for bar in range(bars):
        root = 28 + (key_root + chords[bar][0] - 28) % 12
        for index, length, interval in pattern:
            onset = bar * 8 * step + index * step
            events.append((onset, length * step * 0.9, root + interval, rng.uniform(0.8, 1.0), 0))
    return grid.notes("bass", events)


def _voicing(chord: tuple[int, ...], key_root: int, low: int) -> list[int]:
    """Chord tones as MIDI pitches in the octave starting at ``low``."""
    return sorted(low + (key_root + tone - low) % 12 for tone in chord)


def _other_part(
    grid: _Grid, chords: list[tuple[int, ...]], key_root: int, style: str, bars: int, rng: np.random.Generator
) -> list[Note]:
    """The progression as piano chords, an arpeggio or a pad, from G3 up."""
    bar_length = 4 * grid.beat
    rhythm = _CHORD_RHYTHMS[rng.integers(len(_CHORD_RHYTHMS))]
    events = []
    for bar in range(bars):
        start = bar * bar_length
        voicing = _voicing(chords[bar], key_root, 55)
        if style == "pad":
            events += [(start, bar_length * 0.98, pitch, 0.8, 0) for pitch in voicing]
        elif style == "piano":
            for onset, length in rhythm:
                velocity = rng.uniform(0.7, 1.0)
                events += [(start + onset * grid.beat, length * grid.beat, p, velocity, 0) for p in voicing]
        else:
            tones = voicing + [p + 12 for p in voicing]
            order = tones + tones[-2:0:-1]
            for index in range(8):
                onset = start + index * grid.beat / 2
                events.append((onset, grid.beat, order[index % len(order)], rng.uniform(0.7, 1.0), 0))
    return grid.notes("other", events)


def _melody(
    grid: _Grid, chords: list[tuple[int, ...]], scale: tuple[int, ...], key_root: int, bars: int,
    rng: np.random.Generator,
) -> list[Note]:
    """A stepwise tune that lands on chord tones at bar starts, in a low or a high voice."""
    low = 48 if rng.random() < 0.5 else 57
    pitches = np.array([key_root + 12 * octave + degree for octave in range(-1, 8) for degree in scale])
    pitches = pitches[(pitches >= low) & (pitches <= low + 16)]
    position = len(pitches) // 2
    events = []
    for bar in range(bars):
        chord_pcs = {(key_root + tone) % 12 for tone in chords[bar]}
        time = bar * 4 * grid.beat
        for index, beats in enumerate(_MELODY_RHYTHMS[rng.integers(len(_MELODY_RHYTHMS))]):
            length = abs(beats) * grid.beat
            if beats > 0 or grid.starts_region("vocals", time):
                if index == 0:
                    nearest = [i for i, p in enumerate(pitches) if p % 12 in chord_pcs]
                    position = min(nearest, key=lambda i: abs(i - position) + rng.random())
                else:
                    position = int(np.clip(position + rng.choice((-2, -1, -1, 1, 1, 2)), 0, len(pitches) - 1))
                vowel = int(rng.integers(len(_VOWELS)))
                events.append((time, length - 0.04, float(pitches[position]), rng.uniform(0.8, 1.0), vowel))
            time += length
    return grid.notes("vocals", events)


# --- timbre -----------------------------------------------------------------------------------


def _draw_timbre(seed: int, timbre: float, samplerate: int) -> _Timbre:
    """Base sound parameters from the seed; ``timbre`` moves them along seeded directions."""
    rng = _stream(seed, _SOUND_STREAM)
    sign = _stream(seed, _SHIFT_STREAM).choice((-1.0, 1.0), size=len(SOURCES))
    drums, bass, keys, voice = 2.0 ** (timbre * sign)  # per source: up (brighter, higher) or down
    nyquist = samplerate / 2
    hat_pan = rng.choice((-1.0, 1.0)) * rng.uniform(0.2, 0.5)
    pans = {
        "kick": 0.0,
        "snare": rng.uniform(-0.15, 0.15),
        "hat": hat_pan,
        "open_hat": hat_pan,
        "bass": rng.uniform(-0.1, 0.1),
        "other": rng.uniform(-0.4, 0.4),
        "vocals": rng.uniform(-0.1, 0.1),
    }
    room = tuple(
        tuple((float(rng.uniform(8.0, 45.0)), float(rng.uniform(0.1, 0.3))) for _ in range(3)) for _ in range(2)
    )
    return _Timbre(
        kick_high=rng.uniform(110.0, 170.0) * drums**0.4,
        kick_low=rng.uniform(45.0, 60.0) * drums**0.4,
        kick_decay=rng.uniform(0.15, 0.3) / drums**0.5,
        snare_tone=rng.uniform(170.0, 230.0) * drums**0.4,
        snare_noise_low=rng.uniform(1200.0, 2500.0) * drums**0.5,
        snare_decay=rng.uniform(0.08, 0.16) / drums**0.3,
        hat_cutoff=min(rng.uniform(6500.0, 8500.0) * drums**0.15, 0.6 * nyquist),
        hat_decay=rng.uniform(0.03, 0.06) * drums**0.5,
        bass_cutoff=rng.uniform(350.0, 600.0) * bass**1.2,
        bass_slope=rng.uniform(1.3, 1.8) / bass**0.4,
        keys_cutoff=rng.uniform(1800.0, 3500.0) * keys**1.2,
        keys_slope=rng.uniform(0.9, 1.4) / keys**0.4,
        keys_decay=rng.uniform(0.6, 1.4) * keys**0.3,
        pad_detune=rng.uniform(4.0, 12.0) * keys**0.5,
        formant_scale=rng.uniform(0.96, 1.04) * voice**0.2,
        voice_tilt=rng.uniform(0.9, 1.3) / voice**0.5,
        vibrato_rate=rng.uniform(4.5, 6.5) * voice**0.2,
        vibrato_cents=rng.uniform(20.0, 50.0) * voice**0.5,
        breath=rng.uniform(0.01, 0.04) * voice,
        pans=pans,
        room=room,
        levels_db={name: level + rng.uniform(-2.0, 2.0) for name, level in _LEVELS_DB.items()},
    )


# --- synthesis building blocks ------------------------------------------------------------------


def _wavetable(amplitudes: np.ndarray) -> np.ndarray:
    """One cycle of sum_k a_k sin(2 pi k x), k = 1.., with the first sample repeated at the end."""
    spectrum = np.zeros(_TABLE_SIZE // 2 + 1, dtype=complex)
    spectrum[1 : len(amplitudes) + 1] = -0.5j * _TABLE_SIZE * amplitudes
    table = np.fft.irfft(spectrum, _TABLE_SIZE)
    return np.append(table, table[0])


def _oscillate(table: np.ndarray, frequency: np.ndarray, samplerate: int, phase: float = 0.0) -> np.ndarray:
    """Read a wavetable with a per-sample frequency (Hz), linearly interpolated."""
    cycles = phase + np.cumsum(frequency / samplerate)
    position = (cycles - np.floor(cycles)) * _TABLE_SIZE
    index = position.astype(np.int64)
    frac = position - index
    return table[index] + frac * (table[index + 1] - table[index])


def _harmonic_amplitudes(f0: float, samplerate: int, slope: float, cutoff: float, headroom: float = 1.0) -> np.ndarray:
    """1/k^slope harmonics under a smooth low-pass at ``cutoff``, band-limited below Nyquist."""
    count = max(1, min(int(0.45 * samplerate / (f0 * headroom)), _TABLE_SIZE // 2 - 1))
    k = np.arange(1, count + 1)
    return k**-slope / np.sqrt(1.0 + (k * f0 / cutoff) ** 4)


def _shaped_noise(rng: np.random.Generator, frames: int, samplerate: int, low: float, high: float) -> np.ndarray:
    """White noise band-passed between ``low`` and ``high`` Hz (smooth edges), unit RMS."""
    spectrum = np.fft.rfft(rng.standard_normal(frames))
    freqs = np.fft.rfftfreq(frames, 1.0 / samplerate)
    gain = 1.0 / np.sqrt(1.0 + (low / np.maximum(freqs, 1e-3)) ** 8) / np.sqrt(1.0 + (freqs / high) ** 8)
    noise = np.fft.irfft(spectrum * gain, frames)
    return noise / max(float(np.sqrt(np.mean(noise**2))), 1e-12)


def _pan_gains(pan: float, channels: int) -> np.ndarray:
    if channels == 1:
        return np.ones(1)
    angle = (pan + 1.0) * math.pi / 4
    return np.array([math.cos(angle), math.sin(angle)]) * math.sqrt(2.0)


def _add(track: np.ndarray, start: int, sound: np.ndarray, gains: np.ndarray) -> None:
    """Add a mono ``sound`` into ``track`` (channels, frames) at sample ``start``, cut at the end."""
    end = min(track.shape[1], start + len(sound))
    if end > start:
        track[:, start:end] += gains[:, None] * sound[: end - start]


def _envelope(frames: int, samplerate: int, attack: float, hold: float, release: float) -> np.ndarray:
    """Linear attack, flat hold until ``hold`` seconds, then a cosine release to zero."""
    envelope = np.ones(frames)
    rise = min(frames, max(1, int(attack * samplerate)))
    envelope[:rise] = np.arange(rise) / rise
    start = min(frames, int(hold * samplerate))
    fall = np.minimum(1.0, np.arange(frames - start) / (release * samplerate))
    envelope[start:] *= 0.5 * (1.0 + np.cos(np.pi * fall))
    return envelope


# --- instruments ------------------------------------------------------------------------------


def _drum_kit(sound: _Timbre, noise: np.random.Generator, samplerate: int) -> dict[str, np.ndarray]:
    """One sample per drum piece (mono, peak near 1)."""
    nyquist = samplerate / 2

    def decaying(seconds: float, tau: float) -> tuple[np.ndarray, np.ndarray]:
        t = np.arange(int(seconds * samplerate)) / samplerate
        return t, np.exp(-t / tau)

    t, env = decaying(0.6, sound.kick_decay)
    sweep = sound.kick_low + (sound.kick_high - sound.kick_low) * np.exp(-t / 0.04)
    kick = np.sin(2 * np.pi * np.cumsum(sweep) / samplerate) * env
    click = _shaped_noise(noise, len(t), samplerate, 1000.0, min(6000.0, 0.8 * nyquist)) * np.exp(-t / 0.002)
    kick = kick + 0.15 * click

    t, env = decaying(0.4, sound.snare_decay)
    body = np.sin(2 * np.pi * sound.snare_tone * t) * np.exp(-t / 0.05)
    rattle = _shaped_noise(noise, len(t), samplerate, sound.snare_noise_low, min(9000.0, 0.8 * nyquist))
    snare = 0.6 * body + 0.5 * rattle * env

    hats = {}
    for name, tau, seconds in (("hat", sound.hat_decay, 0.25), ("open_hat", 4 * sound.hat_decay, 0.6)):
        t, env = decaying(seconds, tau)
        hats[name] = 0.35 * _shaped_noise(noise, len(t), samplerate, sound.hat_cutoff, 0.95 * nyquist) * env
    return {"kick": kick, "snare": snare, **hats}


def _render_drums(
    arrangement: _Arrangement, sound: _Timbre, noise: np.random.Generator, frames: int, samplerate: int, channels: int
) -> np.ndarray:
    """The drum kit's samples placed at their hits, each piece panned."""
    track = np.zeros((channels, frames))
    kit = _drum_kit(sound, noise, samplerate)
    for piece, hits in arrangement.drums.items():
        gains = _pan_gains(sound.pans[piece], channels)
        for onset, velocity in hits:
            _add(track, round(onset * samplerate), velocity * kit[piece], gains)
    return track


def _render_bass(notes: list[Note], sound: _Timbre, frames: int, samplerate: int, channels: int) -> np.ndarray:
    """Plucked bass: a bright attack that fades into a darker sustain."""
    track = np.zeros((channels, frames))
    gains = _pan_gains(sound.pans["bass"], channels)
    release = 0.03
    for note in notes:
        f0 = _midi_to_hz(note.pitch)
        length = int((note.duration + release) * samplerate)
        t = np.arange(length) / samplerate
        bright = _wavetable(_harmonic_amplitudes(f0, samplerate, sound.bass_slope, sound.bass_cutoff * 2))
        dark = _wavetable(_harmonic_amplitudes(f0, samplerate, sound.bass_slope, sound.bass_cutoff * 0.5))
        frequency = np.full(length, f0)
        pluck = np.exp(-t / 0.08)
        tone = _oscillate(dark, frequency, samplerate) * (1 - pluck) + _oscillate(bright, frequency, samplerate) * pluck
        env = _envelope(length, samplerate, 0.004, note.duration, release) * np.exp(-t / 1.2)
        _add(track, round(note.onset * samplerate), note.velocity * tone * env, gains)
    return track


def _render_other(arrangement: _Arrangement, sound: _Timbre, frames: int, samplerate: int, channels: int) -> np.ndarray:
    track = np.zeros((channels, frames))
    render = _pad_note if arrangement.other_style == "pad" else _piano_note
    for note in arrangement.other:
        pan = float(np.clip(sound.pans["other"] + (note.pitch - 62) / 30, -1.0, 1.0))
        _add(track, round(note.onset * samplerate), render(note, sound, samplerate), _pan_gains(pan, channels))
    return track


def _piano_note(note: Note, sound: _Timbre, samplerate: int) -> np.ndarray:
    """Struck string: a bright part that dies fast over a mellow body; two slightly detuned strings."""
    f0 = _midi_to_hz(note.pitch)
    release = 0.12
    length = int((note.duration + release) * samplerate)
    t = np.arange(length) / samplerate
    body = _wavetable(_harmonic_amplitudes(f0, samplerate, sound.keys_slope + 0.8, sound.keys_cutoff * 0.5, 1.01))
    bright = _wavetable(_harmonic_amplitudes(f0, samplerate, sound.keys_slope, sound.keys_cutoff, 1.01))
    tone = np.zeros(length)
    for detune in (0.999, 1.001):
        frequency = np.full(length, f0 * detune)
        tone += _oscillate(body, frequency, samplerate) * np.exp(-t / sound.keys_decay)
        tone += _oscillate(bright, frequency, samplerate, 0.25) * np.exp(-t / (0.15 * sound.keys_decay))
    return 0.5 * note.velocity * tone * _envelope(length, samplerate, 0.002, note.duration, release)


def _pad_note(note: Note, sound: _Timbre, samplerate: int) -> np.ndarray:
    """Three detuned voices with a slow swell."""
    f0 = _midi_to_hz(note.pitch)
    release = 0.25
    length = int((note.duration + release) * samplerate)
    table = _wavetable(_harmonic_amplitudes(f0, samplerate, sound.keys_slope, sound.keys_cutoff * 0.7, 1.01))
    tone = sum(
        _oscillate(table, np.full(length, f0 * 2 ** (cents / 1200)), samplerate, phase)
        for cents, phase in ((-sound.pad_detune, 0.0), (0.0, 0.33), (sound.pad_detune, 0.67))
    )
    attack = min(0.25, 0.5 * note.duration)
    return 0.4 * note.velocity * tone * _envelope(length, samplerate, attack, note.duration, release)


def _render_vocals(
    notes: list[Note], sound: _Timbre, noise: np.random.Generator, frames: int, samplerate: int, channels: int
) -> np.ndarray:
    """A glottal-like harmonic source shaped by three vowel formants, with vibrato, glide and breath."""
    track = np.zeros((channels, frames))
    gains = _pan_gains(sound.pans["vocals"], channels)
    breath = _shaped_noise(noise, samplerate * 2, samplerate, 1500.0, min(6000.0, 0.4 * samplerate))
    release = 0.06
    for note in notes:
        f0 = _midi_to_hz(note.pitch)
        length = int((note.duration + release) * samplerate)
        t = np.arange(length) / samplerate
        cents = sound.vibrato_cents * np.minimum(1.0, t / 0.3) * np.sin(2 * np.pi * sound.vibrato_rate * t)
        cents -= 40.0 * np.exp(-t / 0.04)
        frequency = f0 * 2.0 ** (cents / 1200)
        table = _wavetable(_voice_spectrum(f0, note.vowel, sound, samplerate))
        voiced = _oscillate(table, frequency, samplerate)
        hiss = sound.breath * np.resize(breath, length)
        env = _envelope(length, samplerate, 0.04, note.duration, release)
        _add(track, round(note.onset * samplerate), note.velocity * (voiced + hiss) * env, gains)
    return track


def _voice_spectrum(f0: float, vowel: int, sound: _Timbre, samplerate: int) -> np.ndarray:
    """Harmonic amplitudes: a tilted glottal source through three parallel formant resonances, normalised.

    Bandwidths widen with the pitch so that high notes, with harmonics far apart, keep their vowel.
    """
    count = max(1, int(min(0.45 * samplerate, 7000.0) / (f0 * 1.06)))
    freqs = f0 * np.arange(1, count + 1)
    envelope = np.full(count, 0.01)
    for gain, formant, bandwidth in zip((1.0, 0.5, 0.25), *_VOWELS[vowel]):
        centre = formant * sound.formant_scale
        width = bandwidth + 0.5 * f0
        envelope += gain / np.sqrt(1.0 + ((freqs**2 - centre**2) / (width * freqs)) ** 2)
    amplitudes = np.arange(1, count + 1) ** -sound.voice_tilt * envelope
    return amplitudes / np.sqrt(np.sum(amplitudes**2))


# --- mixing ----------------------------------------------------------------------------------


def _room(track: np.ndarray, sound: _Timbre, samplerate: int) -> np.ndarray:
    """A few early reflections, different per channel, for width."""
    out = track.copy()
    for channel, taps in zip(range(track.shape[0]), sound.room):
        for delay_ms, gain in taps:
            delay = int(delay_ms * samplerate / 1000)
            out[channel, delay:] += gain * track[channel, :-delay]
    return out


def _gate(regions: list[tuple[float, float]], frames: int, samplerate: int) -> np.ndarray:
    """1 inside the regions, exactly 0 outside, with short raised-cosine fades just inside the borders."""
    gate = np.zeros(frames)
    fade = max(1, int(FADE_SECONDS * samplerate))
    for start, end in regions:
        first, stop = round(start * samplerate), min(frames, round(end * samplerate))
        gate[first:stop] = 1.0
        width = min(fade, (stop - first) // 2)
        ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(1, width + 1) / (width + 1))
        gate[first : first + width] = ramp
        gate[stop - width : stop] = ramp[::-1]
    return gate


def _balance(
    raw: dict[str, np.ndarray], regions: dict[str, list[tuple[float, float]]], sound: _Timbre, samplerate: int
) -> dict[str, np.ndarray]:
    """Gate each stem to its regions, set its level, and scale all by one factor for the mix peak."""
    stems = {}
    for name in SOURCES:
        track = _room(raw[name], sound, samplerate) if name in ("other", "vocals") else raw[name]
        gate = _gate(regions[name], track.shape[1], samplerate)
        track = track * gate
        rms = math.sqrt(float(np.sum(track**2)) / (track.shape[0] * np.count_nonzero(gate)))
        stems[name] = track * (10 ** (sound.levels_db[name] / 20) / max(rms, 1e-12))
    mix = functools.reduce(np.add, stems.values())
    peak = max(float(np.abs(track).max()) for track in (mix, *stems.values()))
    return {name: (track * (MIX_PEAK / peak)).astype(np.float32) for name, track in stems.items()}
