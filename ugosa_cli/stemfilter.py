"""The labels applied to stems from any separator (``ugosa filter``).

Stems are named in the labels' vocabulary (:func:`stem_layout`):

- a stem named after a source or one of its synonyms (``vocals``, ``Vox``, ``1_song_(Vocals)``, ``song_bass``,
  or a word given to ``--map``) holds that source;
- ``no_vocals``, and the words separators use for it (``instrumental``, ``accompaniment``, ``karaoke``, ...),
  holds every source but the vocals that has no stem of its own; ``no_drums`` and so on likewise;
- any other plain name (``synth``) is a source of its own, which the labels may name.

Sources that no stem holds (a separator that gave only vocals and drums) are held by what the stems miss of the
mixture, the *residual*: the resplit shares the mixture among the stems and the residual, so those sources' sound
is not pushed into the stems; the residual is not written.

:class:`MatchedStems` reads the stems as the mixture's (its rate, length and channels) block by block and measures
how far they are from adding up to it; :func:`filter_stems` applies the resplit by the rule used without adapting
(:data:`~ugosa_cli.pipeline.RESPLIT_RULE`), or the gate. Given ugosa's own pretrained stems it gives what
``ugosa separate --strategy B0 --resplit`` writes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ugosa_cli.audio import BLOCK_FRAMES, BlockReader, StreamResampler, fit_length, match_channels
from ugosa_cli.errors import InputError
from ugosa_cli.labels import SYNONYMS, Labels, grouped_labels, name_source
from ugosa_cli.pipeline import RESPLIT_RULE, BlockTap
from ugosa_cli.postfilters import POST_FILTERS, label_filter
from ugosa_cli.separation import AudioBlocks, stem_channel_blocks
from ugosa_cli.sources import DEFAULT_SOURCES, SOURCE_NAME, SOURCE_NAME_RULE

# What separators call the stem of everything but the vocals (compared lower-case, words joined by one space).
NO_VOCALS_WORDS = frozenset({
    "instrumental", "instrumentals", "instrum", "inst", "accompaniment", "karaoke", "backing track", "backing",
    "minus one", "off vocal", "off vocals", "music", "no vocal",
})
KNOWN_SOURCES: tuple[str, ...] = tuple(SYNONYMS)  # sources a stem's name may name through their synonyms
RESIDUAL = "(the rest of the mixture)"  # the residual's key in the stems' labels: no stem can be named so
# Stems whose sum differs from the mixture by more than this (dB of the mixture's energy) get a warning.
RESIDUAL_WARNING_DB = -30.0
_WORDS = re.compile(r"[\s_.\-]+")
_BRACKETED = re.compile(r"[(\[]([^)\]]*)[)\]]")


def _readings(given: str) -> list[str]:
    """What a stem's name may call its source, the most specific first: the whole name, its bracketed parts
    (``1_song_(Vocals)``), then its last words (``song_lead_vocals``: ``lead vocals``, ``vocals``)."""
    words = [word for word in _WORDS.split(_BRACKETED.sub(" ", given)) if word]
    return [given, *_BRACKETED.findall(given), *(" ".join(words[i:]) for i in range(1, len(words)))]


def stem_name(given: str, mapping: Mapping[str, str] | None = None) -> tuple[str, str | None]:
    """The name a stem is written under and, for a stem of everything but one source, that source:
    ``("vocals", None)``, ``("no_vocals", "vocals")``, or the name itself for a source of its own."""
    for reading in _readings(given):
        text = " ".join(word for word in _WORDS.split(reading.lower()) if word)
        if text in NO_VOCALS_WORDS:
            return "no_vocals", "vocals"
        source, negated = name_source(text, KNOWN_SOURCES, mapping)
        if source is not None:
            return (f"no_{source}", source) if negated else (source, None)
    plain = given.strip().lower()
    if SOURCE_NAME.fullmatch(plain):
        return plain, None
    raise InputError(
        f"stem {given!r}: cannot tell which source it holds, and it is no plain name ({SOURCE_NAME_RULE}); name "
        f"the file after its source, or give it as NAME=FILE, e.g. vocals=FILE"
    )


@dataclass(frozen=True)
class StemLayout:
    """Which sources of the labels each stem holds.

    ``stems``: the written stems' names in order (sources, then the stem of everything but one source);
    ``given``: stem -> the name it came with; ``holds``: stem -> its sources; ``vocabulary``: the sources the
    labels are read with; ``unheld``: the sources no stem holds (the residual holds them).
    """

    stems: tuple[str, ...]
    given: Mapping[str, str]
    holds: Mapping[str, tuple[str, ...]]
    vocabulary: tuple[str, ...]
    unheld: tuple[str, ...]

    def stem_labels(self, labels: Labels, *, residual: bool = False) -> Labels:
        """The labels (read with :attr:`vocabulary`) of each stem, and of the residual (key :data:`RESIDUAL`,
        last) when ``residual`` and some source is unheld."""
        groups = {stem: self.holds[stem] for stem in self.stems}
        if residual and self.unheld:
            groups[RESIDUAL] = self.unheld
        return grouped_labels(labels, groups)


def stem_layout(given: Sequence[str], mapping: Mapping[str, str] | None = None) -> StemLayout:
    """Name the stems (their names as given: file names without suffix, or NAME of NAME=FILE) in the labels'
    vocabulary (module docstring). ``mapping`` (``--map``) may name stems too: its words mapped onto sources a
    stem can name are used here, all of it when the labels are read."""
    known_mapping = {word: target for word, target in (mapping or {}).items()
                     if name_source(target, KNOWN_SOURCES)[0] is not None}
    named: dict[str, tuple[str, str | None]] = {}
    for name in given:
        stem, lacks = stem_name(name, known_mapping)
        if stem in named:
            raise InputError(
                f"the stems {named[stem][0]!r} and {name!r} are both {stem}; give one file per source (NAME=FILE "
                "names a file's source)"
            )
        named[stem] = (name, lacks)
    own = [stem for stem, (_, lacks) in named.items() if lacks is None]
    rest = [(stem, lacks) for stem, (_, lacks) in named.items() if lacks is not None]
    if len(rest) > 1:
        shown = " and ".join(repr(named[stem][0]) for stem, _ in rest)
        raise InputError(f"the stems {shown} each hold all but one source; give one of them, with the others' stems")
    order = {source: index for index, source in enumerate(KNOWN_SOURCES)}
    own.sort(key=lambda stem: (order.get(stem, len(order)), given.index(named[stem][0])))
    vocabulary = tuple(s for s in KNOWN_SOURCES if s in DEFAULT_SOURCES or s in own) + tuple(
        s for s in own if s not in order)
    holds: dict[str, tuple[str, ...]] = {stem: (stem,) for stem in own}
    for stem, lacks in rest:
        held = tuple(source for source in vocabulary if source not in own and source != lacks)
        if not held:
            raise InputError(
                f"stem {named[stem][0]!r} holds every source but {lacks}, yet each of them has a stem of its own "
                f"({', '.join(own)}); leave it out or give {lacks} instead"
            )
        holds[stem] = held
    held_somewhere = {source for sources in holds.values() for source in sources}
    stems = tuple(own) + tuple(stem for stem, _ in rest)
    return StemLayout(stems=stems, given={stem: named[stem][0] for stem in stems}, holds=holds,
                      vocabulary=vocabulary, unheld=tuple(s for s in vocabulary if s not in held_somewhere))


def layout_files(
    files: Mapping[str, Path], mapping: Mapping[str, str] | None = None, song: Path | None = None
) -> tuple[StemLayout, dict[str, Path], list[str]]:
    """The :class:`StemLayout` of stem files (name as given -> file), the files by stem name in its order, and notes;
    ``song``, when it is among the files (a separator's folder holding the song too), is left out."""
    notes = []
    kept = dict(files)
    if song is not None:
        for name, path in files.items():
            if path.resolve() == song.resolve():
                notes.append(f"leaving out {path}: it is the song, not a stem")
                del kept[name]
        if not kept:
            raise InputError(f"no stems to filter besides the song {song}; give the stems with --stems")
    layout = stem_layout(list(kept), mapping)
    return layout, {stem: kept[layout.given[stem]] for stem in layout.stems}, notes


class MatchedStems:
    """Stems read block by block as the mixture's: at its rate, as long as it and in its channels (mono or
    stereo), in :class:`StemLayout` order; :attr:`notes` say what was done to match them.

    Reading them measures how far they are from adding up to the mixture (:attr:`residual_db`).
    """

    def __init__(self, mixture: AudioBlocks, stems: Sequence[AudioBlocks], *, downmix: bool = False) -> None:
        self.mixture = mixture
        self.stems = tuple(stems)
        self.downmix = downmix
        self.channels = min(mixture.channels, 2)
        self.notes: list[str] = []
        self.residual_energy = 0.0
        self.mixture_energy = 0.0
        for audio in self.stems:
            self.notes += self._matching(audio)

    def _matching(self, audio: AudioBlocks) -> list[str]:
        rate, frames = self.mixture.samplerate, self.mixture.frames
        notes = []
        if audio.channels > 2 and not self.downmix:
            raise InputError(f"{audio.source}: has {audio.channels} channels; ugosa reads mono or stereo stems "
                             "(add --downmix to mix it down)")
        if audio.channels != self.channels:
            what = ("mono, copied to both channels of the stereo mixture" if audio.channels == 1
                    else f"{audio.channels} channels, mixed down to the mixture's {self.channels}")
            notes.append(f"{audio.source}: {what}")
        if audio.samplerate != rate:
            notes.append(f"{audio.source}: resampled from {audio.samplerate} Hz to the mixture's {rate} Hz")
        length = round(audio.frames * rate / audio.samplerate)
        if length != frames:
            action = "trimmed" if length > frames else "zero-padded"
            notes.append(f"{audio.source}: {audio.frames / audio.samplerate:.3f} s {action} to the mixture's "
                         f"{frames / rate:.3f} s")
        return notes

    def _stream(self, audio: AudioBlocks) -> Iterator[np.ndarray]:
        to_mixture = StreamResampler(audio.samplerate, self.mixture.samplerate, self.channels)
        for block in audio.blocks():
            yield to_mixture(match_channels(block, self.channels, downmix=self.downmix, label=audio.source))
        yield to_mixture.flush()

    def _aligned(self) -> Iterator[np.ndarray]:
        readers = [BlockReader(self._stream(audio)) for audio in self.stems]
        frames = self.mixture.frames
        empty = np.zeros((self.channels, 0), np.float32)
        for start in range(0, frames, BLOCK_FRAMES):
            count = min(BLOCK_FRAMES, frames - start)
            pieces = [reader.take(count) for reader in readers]
            yield np.stack([fit_length(empty if piece is None else piece, count) for piece in pieces])

    def blocks(self, *, residual: bool = False, tap: BlockTap | None = None) -> Iterator[np.ndarray]:
        """The stems (stems, channels, n), from the start; with ``residual`` the mixture less their sum is one
        more row. ``tap`` sees the stems' stream (without the residual)."""
        mixture = BlockReader(stem_channel_blocks(self.mixture, downmix=self.downmix))
        self.residual_energy = self.mixture_energy = 0.0
        for block in (tap or iter)(self._aligned()):
            mix = mixture.take(block.shape[-1])
            assert mix is not None and mix.shape[-1] == block.shape[-1]
            rest = mix - block.sum(axis=0)
            self.residual_energy += float(np.sum(np.square(rest, dtype=np.float64)))
            self.mixture_energy += float(np.sum(np.square(mix, dtype=np.float64)))
            yield np.concatenate([block, rest[None]]) if residual else block

    @property
    def residual_db(self) -> float | None:
        """The energy of the mixture less the stems' sum, in dB of the mixture's (after :meth:`blocks`); None for
        a silent mixture, ``-inf`` where the stems add up exactly."""
        if self.mixture_energy <= 0:
            return None
        if self.residual_energy <= 0:
            return -math.inf
        return 10 * math.log10(self.residual_energy / self.mixture_energy)


def residual_note(residual_db: float | None, layout: StemLayout, kind: str) -> tuple[str, bool]:
    """A line on how far the stems are from adding up to the mixture, and whether it is a warning."""
    if residual_db is None:
        return "the mixture is silent: nothing to compare the stems with", False
    shown = "exactly" if math.isinf(residual_db) else f"to within {residual_db:.1f} dB of the mixture's energy"
    if layout.unheld:
        held = (f"no stem holds {', '.join(layout.unheld)}: what the stems miss of the mixture ({residual_db:.1f} dB "
                "of its energy) stands for them")
        if kind == "resplit":
            return f"{held}; the resplit shares the mixture among the stems and that part, which is not written", False
        return f"{held}; the gate leaves them out", False
    if residual_db <= RESIDUAL_WARNING_DB:
        return f"the stems add up to the mixture {shown}", False
    if kind == "resplit":
        effect = ("the resplit shares the mixture itself among the stems labelled active, so that part goes to them; "
                  "--mode gate keeps each stem's own sound")
    else:
        effect = "the gate keeps each stem's own sound"
    return (f"the stems do not add up to the mixture: what they miss or add is {residual_db:.1f} dB of its energy "
            f"(a separator that drops reverb or leaves a source out does this); {effect}"), True


def filter_stems(
    matched: MatchedStems, layout: StemLayout, labels: Labels, kind: str = "resplit", *, tap: BlockTap | None = None
) -> Iterator[np.ndarray]:
    """The stems of ``layout`` (stems, channels, n) filtered by ``labels`` (read with its vocabulary), at the
    mixture's rate, block by block: ``kind`` "resplit" (:data:`~ugosa_cli.pipeline.RESPLIT_RULE`) or
    "gate". ``tap`` sees the stems as they come in, matched to the mixture."""
    if kind not in POST_FILTERS:
        raise InputError(f"--mode {kind}: use one of {', '.join(POST_FILTERS)}")
    residual = kind == "resplit" and bool(layout.unheld)
    mixture = matched.mixture
    mode, guard = RESPLIT_RULE if kind == "resplit" else ("mix", 0.0)
    stem_filter = label_filter(kind, layout.stem_labels(labels, residual=residual), mixture.samplerate,
                               mixture.frames, lambda: stem_channel_blocks(mixture, downmix=matched.downmix),
                               mode=mode, guard=guard)
    count = len(layout.stems)
    for block in stem_filter.stream(matched.blocks(residual=residual, tap=tap)):
        yield block[:count]


__all__ = [
    "NO_VOCALS_WORDS",
    "RESIDUAL",
    "MatchedStems",
    "StemLayout",
    "filter_stems",
    "layout_files",
    "residual_note",
    "stem_layout",
    "stem_name",
]
