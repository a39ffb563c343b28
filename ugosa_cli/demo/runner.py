"""The offline demonstration: a held-out synthetic song separated before and after guided adaptation.

:func:`run_demo` generates a song with :mod:`ugosa_cli.demo.synth` (a seed the demo model never saw, with
its sounds moved away from the training distribution by :data:`HELD_OUT_TIMBRE`, and each source resting
in one quarter of it, :data:`HELD_OUT_RESTS`, as in the paper's experiment), separates it with the
model as is (``B0``), adapts the model to the song from the song's true activation labels, separates again and
scores both sets of stems against the true stems: SDR per source, and the leakage, i.e. the power of
each estimated stem where its instrument rests.

Seed ranges of the synthetic songs, so that no scored song was used for training:

- ``1_000_000 ..``  training songs (``scripts/train_demo_model.py``)
- ``1_900_000 ..``  the training script's validation songs
- ``2_000_000 ..``  held-out songs: ``ugosa demo --seed N`` plays song ``HELD_OUT_SEED_BASE + N``
- ``3_000_000 ..``  held-out songs of the adaptation benchmark (``benchmarks/adaptation_gain.py``)

The demo adapts with the settings the model file recommends for itself unless the caller overrides them
(the precedence rule of :mod:`ugosa_cli.planning`), through the same guided-separation pipeline as
``ugosa separate --labels`` (:class:`ugosa_cli.pipeline.GuidedSeparator`).
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ugosa_cli.adaptation import AdaptationResult, StepReport
from ugosa_cli.audio import write_audio
from ugosa_cli.checkpoint import LoadedModel
from ugosa_cli.demo.synth import MIN_DURATION, REST_LAYOUTS, SOURCES, Song, generate_song
from ugosa_cli.errors import InputError
from ugosa_cli.fsutil import write_atomic
from ugosa_cli.labels import Labels, activation_matrix, format_labels, labels_from_regions
from ugosa_cli.metrics import mdx_sdr
from ugosa_cli.pipeline import GuidedSeparator
from ugosa_cli.planning import AdaptationRequest
from ugosa_cli.strategy import Loss, Strategy

DEMO_MODEL = "demo"
HELD_OUT_SEED_BASE = 2_000_000
# Timbre shift of every held-out song (demo and benchmark; the benchmark alternates its sign). The demo
# model was trained on timbres drawn around 0 (spread 0.25); at 0.6 it separates nearly as well as in
# training and leaks little into silences, so there is little for the labels to correct; at 2 (filter
# cutoffs about two octaves away) it confuses sources, as a real model does on a real song unlike its data.
HELD_OUT_TIMBRE = 2.0
# Where the held-out songs' sources rest: as in the paper's experiment, each in one quarter of the song.
# With sections drawn at random a source may rest for most of a song, and the proposed loss then teaches
# the model to silence it where it plays too (see BENCHMARKS.md); "sections" stays available.
HELD_OUT_RESTS = "quarters"
DEFAULT_DURATION = 20.0
MAX_DURATION = 600.0
SILENCE_FLOOR = 1e-12


@dataclass
class SourceScore:
    """One source before (B0) and after adaptation. Leakage is None for a source that never rests."""

    source: str
    sdr_before: float
    sdr_after: float
    leakage_before_db: float | None
    leakage_after_db: float | None
    silent_seconds: float
    sdr_before_resplit: float | None = None  # B0's stems re-split by the labels, no training (with resplit)

    @property
    def sdr_gain(self) -> float:
        return self.sdr_after - self.sdr_before

    @property
    def leakage_drop_db(self) -> float | None:
        if self.leakage_before_db is None or self.leakage_after_db is None:
            return None
        return self.leakage_before_db - self.leakage_after_db


@dataclass
class DemoResult:
    """Everything the demo made: the song, its labels, both sets of stems, the scores and the training."""

    song: Song
    labels: Labels
    sources: tuple[str, ...]
    before: np.ndarray  # (sources, channels, frames)
    after: np.ndarray
    scores: list[SourceScore]
    adaptation: AdaptationResult
    seconds: float
    resplit: bool = False

    @property
    def method(self) -> str:
        """How the "after" stems were made: the strategy, and the resplit filter if it was applied."""
        return self.adaptation.strategy.name + (" + resplit" if self.resplit else "")

    @property
    def mean_sdr_before(self) -> float:
        return float(np.mean([s.sdr_before for s in self.scores]))

    @property
    def mean_sdr_after(self) -> float:
        return float(np.mean([s.sdr_after for s in self.scores]))

    @property
    def mean_sdr_before_resplit(self) -> float | None:
        """Mean SDR of B0's stems re-split by the labels (the filter without training); None without resplit."""
        values = [s.sdr_before_resplit for s in self.scores]
        known = [value for value in values if value is not None]
        return float(np.mean(known)) if len(known) == len(values) else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {
            "song": {"seed": self.song.seed, "duration": self.song.duration, "timbre": self.song.timbre,
                     "rests": self.song.rests, "tempo": self.song.tempo, "key": self.song.key},
            "strategy": self.adaptation.strategy.name,
            "resplit": self.resplit,
            "settings": self.adaptation.settings.to_dict(),
            "sources": [
                {**dataclasses.asdict(s), "sdr_gain": s.sdr_gain, "leakage_drop_db": s.leakage_drop_db}
                for s in self.scores
            ],
            "mean_sdr_before": self.mean_sdr_before,
            "mean_sdr_after": self.mean_sdr_after,
            "mean_sdr_before_resplit": self.mean_sdr_before_resplit,
            "adaptation_seconds": round(self.adaptation.seconds, 2),
            "seconds": round(self.seconds, 2),
            "sdr": "whole-song SDR in dB (MDX definition)",
            "leakage": "power of the estimated stem where the instrument rests, dB",
        }


def leakage_db(estimate: np.ndarray, active: np.ndarray) -> float | None:
    """Mean power (dB) of an estimated stem (channels, frames) over the frames where ``active`` is 0."""
    silent = active < 0.5
    if not silent.any():
        return None
    return 10 * math.log10(float(np.mean(estimate[:, silent].astype(np.float64) ** 2)) + SILENCE_FLOOR)


def score_stems(
    references: np.ndarray, before: np.ndarray, after: np.ndarray, activations: np.ndarray,
    sources: tuple[str, ...], samplerate: int, untrained: np.ndarray | None = None,
) -> list[SourceScore]:
    """SDR and leakage per source for two sets of estimates of the same (sources, channels, frames) stems,
    and the SDR of a third set, ``untrained`` (B0's stems re-split by the labels), when given."""
    return [
        SourceScore(
            source=name,
            sdr_before=mdx_sdr(references[i], before[i]),
            sdr_after=mdx_sdr(references[i], after[i]),
            leakage_before_db=leakage_db(before[i], activations[i]),
            leakage_after_db=leakage_db(after[i], activations[i]),
            silent_seconds=float(np.sum(activations[i] < 0.5)) / samplerate,
            sdr_before_resplit=None if untrained is None else mdx_sdr(references[i], untrained[i]),
        )
        for i, name in enumerate(sources)
    ]


def song_labels(song: Song) -> Labels:
    return labels_from_regions(song.regions, duration=song.duration, origin=f"song {song.seed}")


def check_model(loaded: LoadedModel) -> None:
    """The demo needs a model that separates the generator's sources, in their order."""
    if tuple(loaded.model.sources) != SOURCES:
        raise InputError(f"model {loaded.name} separates {', '.join(loaded.model.sources)}; the demo needs "
                         f"{', '.join(SOURCES)}")


def run_demo(
    loaded: LoadedModel,
    *,
    seed: int = 0,
    duration: float = DEFAULT_DURATION,
    strategy: str | None = None,
    timbre: float = HELD_OUT_TIMBRE,
    rests: str = HELD_OUT_RESTS,
    resplit: bool = False,
    on_stage: Callable[[str], None] | None = None,
    on_step: Callable[[StepReport], None] | None = None,
    **settings: Any,
) -> DemoResult:
    """Generate held-out song ``seed``, separate it with B0, adapt with its true labels, separate again, score.

    The model is adapted in place. ``rests`` is a rest layout of :func:`ugosa_cli.demo.synth.generate_song`.
    With ``resplit`` the adapted stems are re-split by the labels (:class:`ugosa_cli.output.Resplit`).
    ``strategy`` and ``settings`` (fields of :class:`AdaptationSettings`) override the model's own
    adaptation defaults.
    """
    if isinstance(seed, bool) or seed < 0:
        raise InputError(f"--seed {seed}: use a whole number >= 0")
    if not MIN_DURATION <= duration <= MAX_DURATION:
        raise InputError(f"--duration {duration}: use {MIN_DURATION:g} to {MAX_DURATION:g} seconds")
    if rests not in REST_LAYOUTS:
        raise InputError(f"--rests {rests}: use {' or '.join(REST_LAYOUTS)}")
    chosen = Strategy.parse(strategy) if strategy is not None else None
    if chosen is not None and not chosen.trains:
        raise InputError(f"--strategy {strategy}: the demo compares B0 with an adapted model; choose P-Lk:D or M-Lk:D")
    if chosen is not None and chosen.loss is Loss.SUPERVISED:
        raise InputError(f"--strategy {strategy}: the demo adapts from labels; S- strategies need the true stems")
    check_model(loaded)
    stage = on_stage or (lambda message: None)
    began = time.perf_counter()
    model = loaded.model
    request = AdaptationRequest(strategy=chosen, **settings)
    pipeline = GuidedSeparator(loaded, adaptation=request, post_filter="resplit" if resplit else None)

    stage(f"generating held-out song {seed} ({duration:g} s, timbre {timbre:+g}, rests in {rests})")
    song = generate_song(HELD_OUT_SEED_BASE + seed, duration=duration, samplerate=model.samplerate,
                         channels=model.audio_channels, timbre=timbre, rests=rests)
    labels = song_labels(song)
    activations = activation_matrix(labels, song.samplerate, song.frames)
    references = np.stack([song.stems[name] for name in model.sources])
    mix = song.mix

    plan = pipeline.plan_array(mix, activations, estimate=False)
    stage(f"separating with {loaded.name} as is (B0)")
    untrained = pipeline.separate_array(mix, labels)  # with resplit, also what the filter does without training
    stage(f"adapting with {plan.strategy} from the song's labels")
    adaptation = pipeline.adapt(plan, on_step, follow_check=False)
    stage("separating with the adapted model" + (" and applying the labels to its stems"
                                                 if resplit else ""))
    adapted = pipeline.separate_array(mix, labels, pretrained=untrained.model)
    before, after = untrained.model, adapted.written
    scores = score_stems(references, before, after, activations, model.sources, song.samplerate,
                         untrained.written if resplit else None)
    return DemoResult(song, labels, model.sources, before, after, scores, adaptation, time.perf_counter() - began,
                      resplit)


STEM_SETS = ("true", "before", "after")


def demo_paths(folder: Path, sources: tuple[str, ...] = SOURCES) -> dict[str, Path]:
    """Where :func:`write_demo` puts each file, by name: ``song``, ``labels``, and ``true/drums`` etc."""
    folder = Path(folder)
    paths = {"song": folder / "song.wav", "labels": folder / "labels.txt"}
    paths.update({f"{kind}/{name}": folder / kind / f"{name}.wav" for kind in STEM_SETS for name in sources})
    return paths


def check_demo_folder(folder: Path, *, force: bool = False) -> None:
    """Refuse, before the demo runs, a ``--out`` folder where a file would land on a folder, or (unless
    ``force``) that holds any of the demo's files already."""
    paths = demo_paths(folder)
    for path in paths.values():
        if path.is_dir():
            raise InputError(f"{path}: is a folder, in the way of a file the demo writes; choose another --out")
        if os.path.lexists(path.parent) and not path.parent.is_dir():
            raise InputError(f"{path.parent}: is a file, where the demo writes a folder of stems; choose another --out")
    existing = [str(path.relative_to(folder)) for path in paths.values() if os.path.lexists(path)]
    if existing and not force:
        shown = ", ".join(existing[:3]) + (f" and {len(existing) - 3} more" if len(existing) > 3 else "")
        raise InputError(f"{folder}: holds {shown} already; add --force to replace them, or choose another --out")


def write_demo(result: DemoResult, folder: Path) -> dict[str, Path]:
    """Keep the demo's files: ``song.wav``, ``labels.txt``, and ``true/``, ``before/``, ``after/`` stems.

    Audio is 32-bit float WAV, so the true stems keep their exact silences. Returns the paths by name
    (``song``, ``labels``, and ``true/drums`` etc.).
    """
    rate = result.song.samplerate
    paths = demo_paths(folder, result.sources)
    write_audio(paths["song"], result.song.mix, rate, bits=32)
    write_atomic(paths["labels"], format_labels(result.labels, "audacity").encode("utf-8"))
    sets = dict(zip(STEM_SETS, (np.stack([result.song.stems[n] for n in result.sources]), result.before,
                                result.after)))
    for kind, stems in sets.items():
        for name, stem in zip(result.sources, stems):
            write_audio(paths[f"{kind}/{name}"], stem, rate, bits=32)
    return paths
