"""The paper's experiment on a MUSDB18 folder: variant songs, oracle activations, strategies, scores, table.

Protocol (UGOSA paper, and the authors' data preparation and evaluation code):

- Tracks: ``<root>/test/<track>/{mixture,drums,bass,other,vocals}.wav`` (MUSDB18-HQ, or MUSDB18 decoded to
  WAV), sorted by name as musdb sorts them; the paper used the first 10.
- The UGOSA variant: each source is silenced in one quarter of the song, the sources taking the quarters in
  a seeded random order. The silencing zeroes STFT frames (Hann window 2048, hop 512, as librosa's defaults
  that the authors used); the inverse STFT's overlap-add turns each cut into a fade of about 46 ms. The
  mixture is the sum of the modified stems. ``as-is`` keeps the tracks unchanged.
- Oracle activations: :func:`ugosa_cli.stem_activity.detect_activations` on the (modified) stems with the
  paper's settings (theta 0.01, no sharpening, no tidying).
- Every strategy adapts the pretrained model from the oracle activations, separates the mixture and is
  scored with BSSEval v4 (``win``/``hop`` 2 s / 1.5 s as in the paper), MDX SDR, PES and EPS.
- The table: per strategy and source, the median over tracks of each track's median SDR over frames; PES and
  EPS as medians over tracks and sources.

Frame rule: museval skips an evaluation frame for every source when any reference is silent in it. In the
UGOSA variant one source is silent in every quarter, so with that rule only the frames that straddle a
quarter border are scored (a handful per song): that is what the paper's numbers measure, and the default
here. ``frame_rule="per-source"`` scores each source on every frame where its own reference and estimate
have sound.

Training settings follow the precedence rule every command uses (:mod:`ugosa_cli.planning`); every job runs
through the same :class:`~ugosa_cli.pipeline.GuidedSeparator` as ``ugosa separate --labels``. With
``resplit`` every job is also scored after that command's ``--resplit`` post-filter, in rows
``<strategy>+resplit``.

Results are stored per track and strategy as JSON as soon as they are known, with the settings that made
them; the variant audio and the derived labels are cached beside them, so a resumed run redoes nothing.
"""

from __future__ import annotations

import datetime
import json
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from ugosa_cli import __version__
from ugosa_cli.adaptation import AdaptationSettings, Adapter, StepReport
from ugosa_cli.audio import fit_length, match_channels, read_audio, resample, write_audio
from ugosa_cli.checkpoint import LoadedModel
from ugosa_cli.errors import InputError
from ugosa_cli.fsutil import resolved, write_atomic
from ugosa_cli.labels import Labels, activation_matrix, format_labels, read_labels
from ugosa_cli.metrics import FRAME_RULES, check_frames, evaluate_stems
from ugosa_cli.models.family import SeparationModel
from ugosa_cli.pipeline import GuidedSeparator, with_strategy
from ugosa_cli.planning import (
    BUDGET_FACTOR,
    AdaptationRequest,
    longest_window,
    recommendation,
    resolve_settings,
    uses_cpu_budget,
)
from ugosa_cli.separation import SeparationOptions
from ugosa_cli.stem_activity import detect_activations
from ugosa_cli.strategy import B0, Loss, Strategy, available, check_available, count_trainable

MUSDB_SOURCES = ("drums", "bass", "other", "vocals")
TABLE_SOURCES = ("other", "bass", "drums", "vocals")  # the paper's column order
VARIANTS = ("ugosa", "as-is")
VARIANT_FFT = 2048
VARIANT_HOP = 512
RESPLIT_SUFFIX = "+resplit"


@dataclass(frozen=True)
class Track:
    """One MUSDB track folder."""

    name: str
    folder: Path


@dataclass(frozen=True)
class BenchSettings:
    """Everything that decides a result, besides the track and the strategy."""

    request: AdaptationRequest = AdaptationRequest()  # the user's explicit training settings and protocol
    shifts: int = 0
    win: float = 2.0
    hop: float = 1.5
    frame_rule: str = "museval"
    variant: str = "ugosa"
    variant_seed: int = 0
    resplit: bool = False  # also score the stems re-split by the labels (ugosa separate --resplit)

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise InputError(f"variant {self.variant!r}: use one of {', '.join(VARIANTS)}")
        if self.frame_rule not in FRAME_RULES:
            raise InputError(f"--frame-rule {self.frame_rule}: use one of {', '.join(FRAME_RULES)}")
        SeparationOptions(shifts=self.shifts)  # the separation's bounds
        check_frames(self.win, self.hop)

    @property
    def variant_key(self) -> str:
        """The cache folder name of the prepared tracks: the variant and what it depends on."""
        return "as-is" if self.variant == "as-is" else f"ugosa-seed{self.variant_seed}"

    def training(self, strategy: Strategy, model: LoadedModel, device: torch.device) -> tuple[AdaptationSettings, bool]:
        """The settings a strategy trains with (the precedence rule of :mod:`ugosa_cli.planning`), and whether
        the CPU plan then fits them to the budget."""
        request = with_strategy(self.request, strategy)
        recommended = recommendation(model, request.protocol)
        settings = resolve_settings(request, recommended, cuda=device.type == "cuda",
                                    longest_window=longest_window(model.model))
        return settings, uses_cpu_budget(request, recommended, device)

    def fingerprint(self, strategy: Strategy, model: LoadedModel, device: torch.device) -> dict[str, object]:
        """The settings a stored result must share to be reused (training settings only for trained strategies)."""
        values: dict[str, object] = {
            "model": model.name,
            "model_sha256": model.sha256,
            "variant": self.variant_key,
            "activations": "detect_activations(theta=0.01, sharpen=False, min_region=0, min_gap=0)",
            "shifts": self.shifts,
            "separation_seed": self.request.seed if self.shifts else None,  # only the shifts are random
            "win": self.win,
            "hop": self.hop,
            "frame_rule": self.frame_rule,
        }
        if self.resplit:  # only when set, so results stored before this setting existed stay usable
            values["resplit"] = True
        if strategy.trains:
            settings, cpu_budget = self.training(strategy, model, device)
            training = settings.to_dict()
            training.pop("cache_bytes")  # memory, not results
            values["training"] = training
            values["cpu_budget"] = cpu_budget
        return values


@dataclass
class PreparedTrack:
    """A track ready for the strategies: stems and mixture (channels, frames) at ``samplerate``, and labels."""

    name: str
    samplerate: int
    stems: dict[str, np.ndarray]
    mixture: np.ndarray
    labels: Labels
    variant: dict[str, object]

    @property
    def duration(self) -> float:
        return self.mixture.shape[1] / self.samplerate


@dataclass(frozen=True)
class Job:
    """One (track, strategy) pair and where its result is stored."""

    track: Track
    strategy: Strategy
    path: Path


@dataclass
class JobProgress:
    """What a running job is doing: ``phase`` is "adapting", "separating" or "scoring"."""

    job: Job
    phase: str
    done: float
    total: float


# --- finding tracks ---------------------------------------------------------------------------------------


def find_tracks(root: Path) -> list[Track]:
    """The track folders under a MUSDB root (or its ``test`` folder), sorted by name as musdb does."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"--musdb {root}: no such folder")
    folder = root / "test" if (root / "test").is_dir() else root
    tracks = [Track(p.name, p) for p in sorted(folder.iterdir(), key=lambda p: p.name) if (p / "mixture.wav").is_file()]
    if not tracks:
        raise InputError(
            f"--musdb {root}: no track folders with mixture.wav in {folder} (expected {root}/test/<track>/"
            f"{{mixture,{','.join(MUSDB_SOURCES)}}}.wav, as MUSDB18-HQ; convert MUSDB18 .stem.mp4 files to WAV first)"
        )
    return tracks


def select_tracks(
    tracks: Sequence[Track], *, count: int | None, start: int = 0, names: Sequence[str] = ()
) -> list[Track]:
    """The tracks named in ``names`` (in that order), or ``count`` tracks from index ``start`` (None: all)."""
    if names:
        by_name = {track.name: track for track in tracks}
        unknown = [name for name in names if name not in by_name]
        if unknown:
            first = ", ".join(list(by_name)[:3])
            raise InputError(f"--names: no track named {unknown[0]!r} (the first tracks: {first}, ...)")
        return [by_name[name] for name in names]
    if start < 0 or start >= len(tracks):
        raise InputError(f"--start {start}: there are {len(tracks)} tracks (indices 0 to {len(tracks) - 1})")
    if count is not None and count < 1:
        raise InputError(f"--tracks {count}: must be 1 or more")
    return list(tracks[start : None if count is None else start + count])


def strategies_for(model: SeparationModel, names: Sequence[str] | None) -> list[Strategy]:
    """The requested strategies, parsed; by default every ``P-Lk:D`` the model has, then ``B0``."""
    if names:
        strategies = [Strategy.parse(name) for name in names]
        for strategy in strategies:
            check_available(model, strategy)
    else:
        strategies = [s for s in available(model) if s.loss is Loss.PROPOSED] + [B0]
    seen = [s.name for s in strategies]
    duplicates = sorted({name for name in seen if seen.count(name) > 1})
    if duplicates:
        raise InputError(f"--strategies: {duplicates[0]} is listed twice")
    return strategies


# --- the UGOSA variant ------------------------------------------------------------------------------------


def variant_order(track_name: str, seed: int, sources: Sequence[str] = MUSDB_SOURCES) -> list[str]:
    """The sources in the order they take the quarters: a random permutation seeded by seed and track name."""
    return random.Random(f"{seed}:{track_name}").sample(list(sources), len(sources))


def silence_quarters(stems: Mapping[str, np.ndarray], order: Sequence[str]) -> dict[str, np.ndarray]:
    """Zero ``order[i]`` in the ``i``-th of ``len(order)`` equal spans of STFT frames (the last span takes the rest).

    Each stem (channels, frames) goes through a Hann STFT (2048/512) and back, with the frames of its span
    set to zero; the overlap-add fades it out and in over one window. Stems not in ``order`` are unchanged.
    """
    window = torch.hann_window(VARIANT_FFT, dtype=torch.float64)
    out = {name: np.asarray(samples, dtype=np.float32) for name, samples in stems.items()}
    for index, name in enumerate(order):
        signal = torch.from_numpy(np.asarray(stems[name], dtype=np.float64))
        if signal.shape[-1] <= VARIANT_FFT:
            raise InputError(f"{name}: the track is too short for the variant ({signal.shape[-1]} samples)")
        spectrum = torch.stft(signal, VARIANT_FFT, VARIANT_HOP, window=window, center=True, return_complex=True)
        frames = spectrum.shape[-1]
        span = frames // len(order)
        stop = frames if index == len(order) - 1 else (index + 1) * span
        spectrum[..., index * span : stop] = 0
        restored = torch.istft(spectrum, VARIANT_FFT, VARIANT_HOP, window=window, center=True, length=signal.shape[-1])
        out[name] = restored.numpy().astype(np.float32)
    return out


def oracle_labels(stems: Mapping[str, np.ndarray], samplerate: int, sources: Sequence[str]) -> Labels:
    """The paper's activations of the stems, as labels."""
    return detect_activations(stems, samplerate, sharpen=False, min_region=0.0, min_gap=0.0, sources=sources)


def _read_musdb_track(track: Track, sources: Sequence[str]) -> tuple[dict[str, np.ndarray], np.ndarray, int]:
    audio = {name: read_audio(track.folder / f"{name}.wav") for name in ("mixture", *sources)}
    shapes = {(a.samplerate, a.samples.shape) for a in audio.values()}
    if len(shapes) != 1:
        listing = ", ".join(f"{name} {a.channels} ch {a.frames} frames {a.samplerate} Hz" for name, a in audio.items())
        raise InputError(f"{track.folder}: the stems differ in rate, length or channels ({listing})")
    rate = audio["mixture"].samplerate
    return {name: audio[name].samples for name in sources}, audio["mixture"].samples, rate


def _missing_stems(track: Track, sources: Sequence[str]) -> list[str]:
    return [f"{name}.wav" for name in sources if not (track.folder / f"{name}.wav").is_file()]


# --- stored results ---------------------------------------------------------------------------------------


def result_path(out: Path, track: Track, strategy: Strategy) -> Path:
    """``<out>/results/<track>/<strategy>.json`` (``:`` replaced, for file systems that refuse it)."""
    return Path(out) / "results" / track.name / f"{strategy.name.replace(':', '-')}.json"


def write_json(path: Path, value: object, inside: Path | None = None) -> None:
    """``value`` as indented JSON, atomically (``inside``: the resolved folder it must land in)."""
    write_atomic(path, (json.dumps(value, indent=1, ensure_ascii=False) + "\n").encode("utf-8"), inside)


def read_json(path: Path) -> dict:
    try:
        value = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: unreadable stored result ({exc}); delete it to recompute it") from None
    if not isinstance(value, dict):
        raise InputError(f"{path}: not a stored result; delete it to recompute it")
    return value


def settings_difference(stored: Mapping[str, object], wanted: Mapping[str, object], prefix: str = "") -> str | None:
    """The first setting that differs, as ``name=stored (now wanted)``; None if they agree."""
    for key in sorted(set(stored) | set(wanted)):
        old, new = stored.get(key), wanted.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            inner = settings_difference(old, new, f"{prefix}{key}.")
            if inner:
                return inner
        elif old != new:
            return f"{prefix}{key}={old} (now {new})"
    return None


# --- aggregation ------------------------------------------------------------------------------------------


def _median(values: Iterable[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return float(np.median(kept)) if kept else None


def aggregate(
    results: Sequence[Mapping], strategies: Sequence[str], sources: Sequence[str], *, resplit: bool = False
) -> list[dict]:
    """The paper's table: one row per strategy (in the given order) over the results of that strategy, each
    followed by a ``<strategy>+resplit`` row over the results' ``resplit_scores`` when ``resplit``.

    Per source: the median over tracks of the track scores (SDR: each track's median over frames), with the
    number of tracks that had a score; PES and EPS also overall, as the median over tracks and sources.
    Tracks without a score for a source (every frame skipped) are left out of that source's median.
    """
    rows = []
    variants = [(strategy, key) for strategy in strategies for key in ("scores", "resplit_scores")[: 1 + resplit]]
    for strategy, key in variants:
        mine = [r for r in results if r["strategy"] == strategy and key in r]
        per_source = {}
        for source in sources:
            scores = [r[key]["sources"][source] for r in mine]
            per_source[source] = {
                "SDR": _median(s["SDR"] for s in scores),
                "scored_tracks": sum(s["SDR"] is not None for s in scores),
                "PES": _median(s["PES"] for s in scores),
                "EPS": _median(s["EPS"] for s in scores),
            }
        every = [r[key]["sources"][source] for r in mine for source in sources]
        tp = {r["trainable_parameters"] for r in mine}
        rows.append(
            {
                "strategy": strategy if key == "scores" else f"{strategy}{RESPLIT_SUFFIX}",
                "trainable_parameters": tp.pop() if len(tp) == 1 else None,
                "tracks": len(mine),
                "sources": per_source,
                "PES": _median(s["PES"] for s in every),
                "EPS": _median(s["EPS"] for s in every),
            }
        )
    return rows


def table_sources(sources: Sequence[str]) -> list[str]:
    """The paper's column order (other, bass, drums, vocals) for MUSDB's sources, else the model's order."""
    return list(TABLE_SOURCES) if set(sources) == set(TABLE_SOURCES) else list(sources)


def format_parameters(count: int | None) -> str:
    """#TP as the paper prints it: 8.2M, 0.4M, 0.01M; ``-`` for none; small counts in full."""
    if not count:
        return "-"
    if count >= 100_000:
        return f"{count / 1e6:.1f}M"
    if count >= 10_000:
        return f"{count / 1e6:.2f}M"
    return f"{count:,}"


# --- running ----------------------------------------------------------------------------------------------


@dataclass
class Bench:
    """One benchmark run: a model, tracks, strategies and settings, stored under ``out``."""

    loaded: LoadedModel
    tracks: list[Track]
    strategies: list[Strategy]
    settings: BenchSettings
    out: Path
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    # ``out`` resolved when the run starts: every file must land under it, checked where it is written.
    root: Path = field(init=False)

    def __post_init__(self) -> None:
        self.root = resolved(self.out)
        model = self.loaded.model
        missing = [name for name in model.sources if name not in MUSDB_SOURCES]
        if missing:
            raise InputError(
                f"the model separates {', '.join(model.sources)}; MUSDB has {', '.join(MUSDB_SOURCES)} "
                f"(no stem for {missing[0]}): use a MUSDB model such as tasnet"
            )
        for strategy in self.strategies:
            check_available(model, strategy)
        for track in self.tracks:
            lacking = _missing_stems(track, model.sources)
            if lacking:
                raise InputError(f"{track.folder}: no {lacking[0]}; every track needs {', '.join(MUSDB_SOURCES)} stems")
        self.pipeline = GuidedSeparator(
            self.loaded, device=self.device, adaptation=self.settings.request,
            options=SeparationOptions(shifts=self.settings.shifts, seed=self.settings.request.seed),
            post_filter="resplit" if self.settings.resplit else None,
        )

    @property
    def sources(self) -> tuple[str, ...]:
        return self.loaded.model.sources

    def jobs(self) -> list[Job]:
        """Every (track, strategy) pair, tracks first."""
        return [
            Job(track, strategy, result_path(self.out, track, strategy))
            for track in self.tracks
            for strategy in self.strategies
        ]

    def stored(self, job: Job) -> dict | None:
        """The stored result of a job if there is one; refuses one made with other settings."""
        if not job.path.is_file():
            return None
        result = read_json(job.path)
        difference = settings_difference(result.get("settings", {}), self.fingerprint(job.strategy))
        if difference:
            raise InputError(
                f"{job.path}: stored with other settings: {difference}; run with the same settings, "
                f"delete that result, or choose another --out"
            )
        return result

    def fingerprint(self, strategy: Strategy) -> dict[str, object]:
        # Through JSON, so tuples compare equal to the lists read back from a file.
        return json.loads(json.dumps(self.settings.fingerprint(strategy, self.loaded, self.device)))

    def track_folder(self, track: Track) -> Path:
        return Path(self.out) / "tracks" / self.settings.variant_key / track.name

    def prepare(self, track: Track) -> PreparedTrack:
        """The track's variant and labels, from the cache under ``out`` or made and cached now."""
        folder = self.track_folder(track)
        done = folder / "variant.json"
        if done.is_file():
            return self._load_prepared(track, folder, read_json(done))
        stems, mixture, rate = _read_musdb_track(track, self.sources)
        variant: dict[str, object] = {"variant": self.settings.variant, "samplerate": rate}
        if self.settings.variant == "ugosa":
            order = variant_order(track.name, self.settings.variant_seed, self.sources)
            stems = silence_quarters(stems, order)
            mixture = np.asarray(np.sum([stems[name] for name in self.sources], axis=0, dtype=np.float32))
            for name, samples in {"mixture": mixture, **stems}.items():
                write_audio(folder / f"{name}.wav", samples, rate, bits=32, inside=self.root)
            variant.update(seed=self.settings.variant_seed, silenced_in_quarter=order)
        labels = oracle_labels(stems, rate, self.sources)
        write_atomic(folder / "labels.json", format_labels(labels, "json").encode("utf-8"), self.root)
        write_json(done, variant, self.root)
        return PreparedTrack(track.name, rate, stems, mixture, labels, variant)

    def _load_prepared(self, track: Track, folder: Path, variant: dict) -> PreparedTrack:
        if variant.get("variant") == "ugosa":
            audio = {name: read_audio(folder / f"{name}.wav") for name in ("mixture", *self.sources)}
            stems = {name: audio[name].samples for name in self.sources}
            mixture, rate = audio["mixture"].samples, audio["mixture"].samplerate
        else:
            stems, mixture, rate = _read_musdb_track(track, self.sources)
        labels = read_labels(folder / "labels.json", sources=self.sources, fmt="json")
        return PreparedTrack(track.name, rate, stems, mixture, labels, variant)

    def _model_inputs(self, prepared: PreparedTrack) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Mixture, activations and reference stems at the model's rate and channel count."""
        model = self.loaded.model

        def convert(samples: np.ndarray) -> np.ndarray:
            samples = match_channels(samples, model.audio_channels, downmix=True, label=prepared.name)
            return resample(samples, prepared.samplerate, model.samplerate)

        mix = convert(prepared.mixture)
        refs = np.stack([fit_length(convert(prepared.stems[name]), mix.shape[1]) for name in self.sources])
        return mix, activation_matrix(prepared.labels, model.samplerate, mix.shape[1]), refs

    def run_job(self, job: Job, prepared: PreparedTrack, progress: Callable[[JobProgress], None] | None = None) -> dict:
        """Adapt (unless B0), separate and score one track with one strategy; store and return the result."""
        began = time.perf_counter()
        pipeline = self.pipeline
        pipeline.reset()
        model = self.loaded.model
        mix, acts, refs = self._model_inputs(prepared)
        adaptation = None
        if job.strategy.trains:
            references = refs if job.strategy.loss is Loss.SUPERVISED else None
            request = with_strategy(self.settings.request, job.strategy)
            plan = pipeline.plan_array(mix, acts, references=references, request=request, estimate=False)

            def on_step(report: StepReport) -> None:
                if progress:
                    progress(JobProgress(job, "adapting", report.done, report.total))

            outcome = pipeline.adapt(plan, on_step, follow_check=False)  # each strategy is scored as trained
            adaptation = {
                "plan": plan.plan,
                "settings": outcome.settings.to_dict(),
                "windows": outcome.windows,
                "steps": outcome.steps,
                "seconds": round(outcome.seconds, 2),
                "history": outcome.history,
                "check": None if outcome.evidence is None else outcome.evidence.to_dict(),
                "decision": None if outcome.decision is None else outcome.decision.to_dict(),
                "notes": outcome.notes,
            }

        def on_chunk(done: int, total: int) -> None:
            if progress:
                progress(JobProgress(job, "separating", done, total))

        stems = pipeline.separate_array(mix, prepared.labels, on_chunk)
        if progress:
            progress(JobProgress(job, "scoring", 0, 1))
        scores = self._score(self._to_track_format(stems.model, prepared), prepared)
        resplit = self._to_track_format(stems.written, prepared) if self.settings.resplit else None
        result = {
            "track": job.track.name,
            "strategy": job.strategy.name,
            "settings": self.fingerprint(job.strategy),
            "trainable_parameters": count_trainable(model, job.strategy),
            "scores": scores,
            **({"resplit_scores": self._score(resplit, prepared)} if resplit is not None else {}),
            "adaptation": adaptation,
            "variant": prepared.variant,
            "device": str(self.device),
            "seconds": round(time.perf_counter() - began, 2),
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "ugosa_version": __version__,
        }
        write_json(job.path, result, self.root)
        pipeline.reset()
        return result

    def _score(self, estimates: Mapping[str, np.ndarray], prepared: PreparedTrack) -> dict:
        return evaluate_stems(
            prepared.stems, estimates, prepared.samplerate,
            win=self.settings.win, hop=self.settings.hop, frame_rule=self.settings.frame_rule,
        )

    def _to_track_format(self, estimates: np.ndarray, prepared: PreparedTrack) -> dict[str, np.ndarray]:
        """Model-rate stems back to the track's rate, length and channels, by source name."""
        model = self.loaded.model
        channels, frames = prepared.mixture.shape
        out = {}
        for name, stem in zip(self.sources, estimates):
            stem = resample(stem, model.samplerate, prepared.samplerate)
            if stem.shape[0] != channels:
                stem = stem.mean(axis=0, keepdims=True) if channels == 1 else match_channels(stem, channels)
            out[name] = fit_length(stem, frames)
        return out

    def estimate_seconds(self, prepared: PreparedTrack, jobs: Sequence[Job]) -> float:
        """Adaptation plus separation time of ``jobs``, timed on ``prepared`` and scaled by track duration.

        A few adaptation steps of each strategy are timed (no update is made); scoring is not included.
        """
        mix, acts, refs = self._model_inputs(prepared)
        per_second: dict[str, float] = {}
        budgeted: set[str] = set()
        for strategy in {job.strategy.name: job.strategy for job in jobs}.values():
            if not strategy.trains:
                continue
            self.pipeline.reset()
            settings, cpu_budget = self.settings.training(strategy, self.loaded, self.device)
            references = refs if strategy.loss is Loss.SUPERVISED else None
            adapter = Adapter(self.loaded.model, mix, acts, settings, references=references, device=self.device)
            step_s, prefix_s = adapter.measure(steps=1)
            per_second[strategy.name] = adapter.estimate_seconds(step_s, prefix_s) / prepared.duration
            if cpu_budget:
                budgeted.add(strategy.name)
        self.pipeline.reset()
        forward_s, window_s = self._time_forward(mix)
        separation = forward_s / window_s * 4 / 3 * max(1, self.settings.shifts)
        per_second.update(dict.fromkeys(budgeted, BUDGET_FACTOR * separation))
        durations = {job.track.name: track_duration(job.track) for job in jobs}
        return sum((per_second.get(job.strategy.name, 0.0) + separation) * durations[job.track.name] for job in jobs)

    def _time_forward(self, mix: np.ndarray) -> tuple[float, float]:
        """Seconds of one model forward over one segment of the song, and that segment's length in seconds."""
        model = self.loaded.model
        chunk = torch.from_numpy(np.ascontiguousarray(mix[:, : model.segment_length], dtype=np.float32)).to(self.device)
        began = time.perf_counter()
        with torch.inference_mode():
            model(chunk[None])
        return time.perf_counter() - began, chunk.shape[-1] / model.samplerate


def track_duration(track: Track) -> float:
    """Duration of a track's mixture in seconds, from the file header."""
    info = sf.info(str(track.folder / "mixture.wav"))
    return info.frames / info.samplerate


def summary(bench: Bench, results: Sequence[Mapping]) -> dict:
    """The JSON document of a finished run: settings, tracks, the table rows and where the results are."""
    strategies = [s.name for s in bench.strategies]
    trained = [s for s in bench.strategies if s.trains]
    training: dict[str, object] = {}
    cpu_budget = False
    if trained:  # the settings every trained strategy shares (the strategy itself aside)
        settings, cpu_budget = bench.settings.training(trained[0], bench.loaded, bench.device)
        training = {k: v for k, v in settings.to_dict().items() if k not in ("strategy", "cache_bytes")}
    return {
        "model": bench.loaded.name,
        "settings": {
            "variant": bench.settings.variant_key,
            "protocol": bench.settings.request.protocol,
            "training": training,
            "cpu_budget": cpu_budget,
            "shifts": bench.settings.shifts,
            "win": bench.settings.win,
            "hop": bench.settings.hop,
            "frame_rule": bench.settings.frame_rule,
            "resplit": bench.settings.resplit,
        },
        "tracks": [track.name for track in bench.tracks],
        "sources": table_sources(bench.sources),
        "rows": aggregate(results, strategies, table_sources(bench.sources), resplit=bench.settings.resplit),
        "results": str(Path(bench.out) / "results"),
    }
