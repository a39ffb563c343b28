"""Draft labels: where each stem of a separation seems to play (``ugosa labels draft``).

:func:`detect_activations` (``labels from-stems``) reads isolated stems, where a source that rests is
digitally silent. A separator's stems are not: a resting source's stem still holds what leaked into it
from the others, often only 10 to 25 dB below where the source plays. So a draft compares each stem's
level with two references instead of an absolute threshold:

- its own loud level (the 95th percentile of its level over the song): a stem is active where it comes
  within ``own`` dB of it;
- the mixture at the same moment: and where it holds more than ``share`` dB of the mixture's power, so
  leakage into a resting stem stays silent, whatever its own level.

A stem that never holds more than ``presence`` dB of the mixture (the 95th percentile) is not drafted at
all: the model finds too little of that source to tell where it plays (the vocals of an instrumental, or
a voice the model hears as "other"), and calling it silent where it plays is the costly error. It is left
unconstrained, with a warning that says how to label it.

Levels are mean power over frames of :data:`HOP_SECONDS`, averaged in dB over ``smooth`` seconds (a
drum pattern's gaps between hits do not count as rests; averaging in dB keeps borders in place). A stem
switches on when the lower of its two margins rises above ``hysteresis / 2`` dB and off when it falls
below ``-hysteresis / 2``, so a level hovering at the threshold does not flicker. Then silences shorter
than ``min_gap`` are filled and regions shorter than ``min_region`` dropped, as a person would draw them.

Levels are gathered block by block (:class:`LevelMeter`), so a draft of a long song needs memory for the
levels only, not for its stems. The defaults were chosen by the gain of adapting with the uncorrected draft
on tuning songs of two generators, and are cautious: only clear rests of ``min_gap`` (3 s) or more are
drafted (BENCHMARKS.md, "Draft labels").
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from ugosa_cli.errors import InputError, SettingError
from ugosa_cli.labels import Labels, labels_from_regions, runs
from ugosa_cli.stem_activity import tidy_regions

HOP_SECONDS = 0.02  # level frames
MIN_SECONDS = 2.0  # a shorter song cannot hold a region and a rest a person would draw
SILENT_DB = -100.0  # a song whose loud level is below this (dB of full-scale power) is digital silence
OWN_PERCENTILE = 95.0
FLOOR_DB = 50.0  # frames this far below the song's loud level are silent for every source


@dataclass(frozen=True)
class DraftSettings:
    """How a stem's level is turned into regions (dB, seconds); the defaults are the tuned ones."""

    own: float = -12.0
    share: float = -20.0
    hysteresis: float = 4.0
    smooth: float = 0.3
    min_region: float = 0.5
    min_gap: float = 3.0
    presence: float = -12.0

    def __post_init__(self) -> None:
        checks = [
            ("own", math.isfinite(self.own) and self.own < 0, "must be a negative number of dB"),
            ("share", math.isfinite(self.share) and self.share < 0, "must be a negative number of dB"),
            ("hysteresis", math.isfinite(self.hysteresis) and self.hysteresis >= 0, "must be 0 or more dB"),
            ("smooth", math.isfinite(self.smooth) and self.smooth >= 0, "must be 0 or more seconds"),
            ("min_region", math.isfinite(self.min_region) and self.min_region >= 0, "must be 0 or more seconds"),
            ("min_gap", math.isfinite(self.min_gap) and self.min_gap >= 0, "must be 0 or more seconds"),
            ("presence", math.isfinite(self.presence) and self.presence < 0, "must be a negative number of dB"),
        ]
        for name, ok, problem in checks:
            if not ok:
                raise SettingError(name, getattr(self, name), problem)


class LevelMeter:
    """Mean power per frame of ``hop`` samples, summed over channels' mean, gathered from consecutive blocks
    (..., channels, n) of one signal or a stack of them."""

    def __init__(self, hop: int) -> None:
        self.hop = hop
        self._frames: list[np.ndarray] = []
        self._rest: np.ndarray | None = None
        self.samples = 0

    def add(self, block: np.ndarray) -> None:
        power = np.mean(np.square(block, dtype=np.float64), axis=-2)  # (..., n)
        self.samples += power.shape[-1]
        if self._rest is not None:
            power = np.concatenate([self._rest, power], axis=-1)
        whole = power.shape[-1] // self.hop * self.hop
        if whole:
            self._frames.append(power[..., :whole].reshape(*power.shape[:-1], -1, self.hop).mean(axis=-1))
        self._rest = power[..., whole:]

    def levels(self) -> np.ndarray:
        """Power per frame (..., frames); a last partial frame counts when it holds samples."""
        parts = list(self._frames)
        if self._rest is not None and self._rest.shape[-1]:
            parts.append(self._rest.mean(axis=-1, keepdims=True))
        if not parts:
            raise ValueError("no samples were measured")
        return np.concatenate(parts, axis=-1)


def _db(power: np.ndarray) -> np.ndarray:
    return 10 * np.log10(np.maximum(power, 1e-20))


def _moving_mean(rows: np.ndarray, width: int) -> np.ndarray:
    """Centred moving mean over ``width`` frames along the last axis (edges: mean of what is there)."""
    if width <= 1:
        return rows
    before = width // 2
    padded = np.pad(rows, [(0, 0)] * (rows.ndim - 1) + [(before + 1, width - before - 1)])
    counts = np.pad(np.ones(rows.shape[-1]), (before + 1, width - before - 1))
    total = np.cumsum(padded, axis=-1)
    count = np.cumsum(counts)
    return (total[..., width:] - total[..., :-width]) / (count[width:] - count[:-width])


def _hysteresis(margin: np.ndarray, half: float) -> np.ndarray:
    """On where ``margin`` rises above ``half``, off where it falls below ``-half``, held in between."""
    state = np.zeros(margin.shape, dtype=bool)
    on = margin > half
    off = margin < -half
    decided = on | off
    if not decided.any():
        return state
    index = np.where(decided, np.arange(margin.size), 0)
    last = np.maximum.accumulate(index)
    state = on[last]
    state[: int(np.argmax(decided))] = on[int(np.argmax(decided))]
    return state


def draft_regions(
    stem_power: np.ndarray, mix_power: np.ndarray, hop_seconds: float, duration: float,
    settings: DraftSettings = DraftSettings(),
) -> list[list[tuple[float, float]] | None]:
    """Active regions (seconds) per stem from its power per frame (stems, frames) and the mixture's (frames);
    ``None`` for a stem too weak to draft (its loud share of the song below ``settings.presence`` dB)."""
    if duration < MIN_SECONDS:
        raise InputError(f"the song is {duration:.2f} s long; a draft needs at least {MIN_SECONDS:g} s")
    mix_db = _db(mix_power)
    song_db = float(np.percentile(mix_db, OWN_PERCENTILE))
    if song_db < SILENT_DB:
        raise InputError("the song is silent (nothing above -100 dB): there is nothing to label")
    width = max(1, round(settings.smooth / hop_seconds))
    audible = mix_db > song_db - FLOOR_DB
    stems_db = _moving_mean(_db(stem_power), width)
    mix_smooth = _moving_mean(mix_db, width)
    regions: list[list[tuple[float, float]] | None] = []
    for level in stems_db:
        if float(np.percentile((level - mix_smooth)[audible], OWN_PERCENTILE)) < settings.presence:
            regions.append(None)
            continue
        own = float(np.percentile(level[audible], OWN_PERCENTILE))
        margin = np.minimum(level - own - settings.own, level - mix_smooth - settings.share)
        margin[~audible] = -np.inf
        active = _hysteresis(margin, settings.hysteresis / 2)
        spans = [(a * hop_seconds, min(duration, b * hop_seconds)) for a, b in runs(active)]
        regions.append(tidy_regions(spans, duration, min_region=settings.min_region, min_gap=settings.min_gap))
    return regions


def draft_labels(
    stem_blocks: Iterable[np.ndarray],
    mix_blocks: Iterable[np.ndarray],
    samplerate: int,
    sources: Sequence[str],
    *,
    only: Sequence[str] | None = None,
    settings: DraftSettings = DraftSettings(),
    origin: str = "draft",
) -> Labels:
    """Draft labels from a song's stems (blocks of (sources, channels, n)) and the song itself (blocks of
    (channels, n)), both from the start, at ``samplerate``. ``only``: the sources to label; the others are
    left unconstrained (out of the file)."""
    chosen = list(sources) if only is None else [name for name in sources if name in only]
    hop = max(1, round(HOP_SECONDS * samplerate))
    stems, mix = LevelMeter(hop), LevelMeter(hop)
    for block in stem_blocks:
        stems.add(block)
    for block in mix_blocks:
        mix.add(block)
    if stems.samples != mix.samples:
        raise ValueError(f"the stems have {stems.samples} samples, the song {mix.samples}")
    duration = round(mix.samples / samplerate, 6)
    found = draft_regions(stems.levels(), mix.levels(), hop / samplerate, duration, settings)
    regions = {name: spans for name, spans in zip(sources, found) if name in chosen and spans is not None}
    weak = [name for name, spans in zip(sources, found) if name in chosen and spans is None]
    labels = labels_from_regions(regions, sources=sources, duration=duration, origin=origin)
    notes = [
        f"{name}: left out of the draft (unconstrained): its stem never holds more than {settings.presence:g} dB of "
        f"the song, too little to tell where it plays; if it never plays, label the whole song `no {name}`, "
        f"else mark its regions by ear"
        for name in weak
    ]
    drafted = [name for name in chosen if name in regions]
    if drafted and all(labels.active_seconds(name) >= duration for name in drafted):
        notes.append(
            f"no clear rest of {settings.min_gap:g} s or more found for {', '.join(drafted)}: adapting needs "
            "labelled rests (with none, `ugosa separate --labels` only re-splits the pretrained stems to add up to "
            "the mix); mark the rests you hear"
        )
    # The draft's own notes replace the generic "no labels for ..." line: a source left out by --sources was
    # asked for, and one too weak to draft gets its own reason.
    return dataclasses.replace(labels, warnings=tuple(notes))


__all__ = ["HOP_SECONDS", "MIN_SECONDS", "DraftSettings", "LevelMeter", "draft_labels", "draft_regions"]
