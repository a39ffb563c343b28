"""One-shot, user-guided adaptation of a separation model to one song (the UGOSA paper): the trainer.

The model is fine-tuned on windows of the song itself, with the proposed loss (mixture reconstruction
from the sources labelled active, plus the energy of the sources labelled silent, plus, for each source the
labels say nothing about, its distance from the pretrained model's stem: the anchor), a mixture-only loss
(``M``) or, for research, a supervised loss against the true stems (``S``). A :class:`Strategy` names the
loss and the cut point after which the network is trained; everything before the cut stays frozen, so
its output is computed once per window and reused in every epoch (the model family's split, see
:mod:`ugosa_cli.models.family`). Which settings a run uses is decided in :mod:`ugosa_cli.planning`.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any, NoReturn

import numpy as np
import torch
import torch_optimizer
from torch import Tensor, nn

from ugosa_cli.decision import (
    CHECK_EVERY,
    Decision,
    Evidence,
    SourceCheck,
    after_training,
    before_training,
    keeps_falling,
    stop_note,
)
from ugosa_cli.errors import InputError, SettingError
from ugosa_cli.labels import runs
from ugosa_cli.models import family_of
from ugosa_cli.models.family import (
    MAX_SEGMENT_SECONDS,
    PrefixState,
    SeparationModel,
    SplitModel,
    all_finite,
    stems_from_normalised,
    stems_to_normalised,
)
from ugosa_cli.strategy import DEFAULT_STRATEGY, Loss, Strategy, count_trainable, freeze_for, trained_parameters

OPTIMIZERS = ("ranger", "radam", "adam")
# Seconds on each side of every labelled border where the silence term is not applied: borders drawn by
# hand are a quarter to a full second off, and a source labelled silent where it still plays is pushed
# to silence there. Chosen from 0, 0.5 and 1 s on tuning songs of two generators, where 0.5 s gained the
# most on average over exact and rough borders (BENCHMARKS.md, "Label robustness").
DEFAULT_GUARD = 0.5
# Weight of the term that keeps each source the labels say nothing about (no labelled silence anywhere)
# close to what the pretrained model makes of it. Without it such a source is a free sink for whatever the
# silence term pushes out of the labelled ones: with the vocals alone labelled, the mean SDR fell below the
# pretrained model's. Chosen from 0, 0.1, 0.3, 1 and 10 on tuning songs of two generators: 0.3 kept every
# kind of partial labels above the pretrained model on both, and gained the most with three sources labelled
# (BENCHMARKS.md, "Label robustness", partial labels).
DEFAULT_ANCHOR = 0.3
# The anchor's target costs a forward pass of the trained part per step: about a third of a step (measured
# +13 to +39 % for cuts L1 to L4 of both families, +45 to +76 % for L5; BENCHMARKS.md, "What the anchor costs").
ANCHOR_STEP_SHARE = 1 / 3
# Bounds of the settings that size the training's work and memory, checked before any work. Windows: long enough
# to hold some music, short enough for one window's activations to fit in memory (as separation's segments);
# a hop of at least a hundredth of the window (each sample in at most 100 windows per epoch); epochs and windows
# per step a hundred times and 64 times the paper's 10 and 1.
WINDOW_SECONDS = (0.1, MAX_SEGMENT_SECONDS)
MAX_WINDOWS_PER_SAMPLE = 100
MAX_EPOCHS = 1000
MAX_BATCH_SIZE = 64
MAX_STEPS = 100_000
# The step size. Without an explicit learning rate, each trained tensor's rate is ``step`` times its own RMS, so
# an Adam step moves every tensor by about that share of its scale whatever the network's weight scale (a rate
# tuned on one network's weights means another thing on another's). Tensors far below the typical scale (a
# PReLU slope, a bias near zero) move by that share of RMS_FLOOR_SHARE times the RMS of all trained weights.
# 1e-3 on both small models (BENCHMARKS.md, "Deciding what to write"): 3e-3 gained 0.3 dB more on the demo
# ConvTasNet but lost up to 1.8 dB against the labels alone on songs the small HT-Demucs separates well.
DEFAULT_STEP = 1e-3
RMS_FLOOR_SHARE = 0.1
MAX_STEP = 0.5
# The share of each labelled rest kept out of training (its middle), so that what ugosa writes is decided on
# rests the model never trained on; rests shorter than HOLDOUT_MIN_REST seconds are trained on whole.
DEFAULT_HOLDOUT = 0.25
MAX_HOLDOUT = 0.5
HOLDOUT_MIN_REST = 2.0
# The paper's protocol (``--protocol paper``): Ranger at lr 1e-5, 10 epochs of 10 s windows with a 1 s hop,
# gamma 1, every labelled rest trained on.
PAPER_SETTINGS: dict[str, Any] = dict(epochs=10, lr=1e-5, window=10.0, hop=1.0, gamma=1.0, optimizer="ranger",
                                      holdout=0.0)


# --- losses ---------------------------------------------------------------------------------------------


def proposed_loss(
    estimates: Tensor, mix: Tensor, activations: Tensor, gamma: float, weights: Tensor | None = None
) -> tuple[Tensor, dict[str, float]]:
    """``mean|w (mix - sum_s h_s est_s)| + gamma * mean|w (1 - h) est|``; shapes (b, s, c, t), (b, c, t),
    (b, s, 1, t), and ``weights`` (b, t) of 0/1: the samples the loss counts (None: all)."""
    residual = (mix - (activations * estimates).sum(dim=1)).abs()
    leaked = ((1 - activations) * estimates).abs()
    if weights is not None:
        residual = residual * weights[:, None, :]
        leaked = leaked * weights[:, None, None, :]
    reconstruction = residual.mean()
    silence = leaked.mean()
    loss = reconstruction + gamma * silence
    return loss, {"rec": reconstruction.item(), "act": silence.item()}


def anchor_loss(estimates: Tensor, pretrained: Tensor, free: Tensor, weights: Tensor | None = None) -> Tensor:
    """``mean|w free_s (est_s - pre_s)|``: the distance of the free sources from the pretrained model's stems;
    shapes (b, s, c, t), (b, s, c, t), (s,) with 1 for a source with no labelled silence, ``weights`` (b, t)."""
    distance = (free[None, :, None, None] * (estimates - pretrained)).abs()
    return (distance if weights is None else distance * weights[:, None, None, :]).mean()


def mixture_loss(estimates: Tensor, mix: Tensor) -> tuple[Tensor, dict[str, float]]:
    """``mean|mix - sum_s est_s|``: mixture consistency only (an ablation in the paper's code)."""
    loss = (mix - estimates.sum(dim=1)).abs().mean()
    return loss, {"rec": loss.item()}


def supervised_loss(estimates: Tensor, references: Tensor) -> tuple[Tensor, dict[str, float]]:
    """``mean|est - ref|`` against the true stems (oracle; for research)."""
    loss = (estimates - references).abs().mean()
    return loss, {"sup": loss.item()}


# --- settings and windows -------------------------------------------------------------------------------


@dataclass(frozen=True)
class AdaptationSettings:
    """Hyper-parameters; the defaults are ugosa's (:data:`PAPER_SETTINGS` are the paper's). Bad values raise
    :class:`SettingError`."""

    strategy: Strategy = DEFAULT_STRATEGY
    epochs: int = 10
    lr: float | None = None  # one learning rate for every tensor; None: ``step`` times each tensor's RMS
    step: float = DEFAULT_STEP
    steps: int | None = None  # optimisation steps in all (None: epochs x steps per epoch)
    window: float = 4.0  # seconds
    hop: float = None  # type: ignore[assignment]  # seconds; None: the window (windows that do not overlap)
    gamma: float = 10.0
    guard: float = DEFAULT_GUARD  # seconds on each side of a border where the silence term is off
    anchor: float = DEFAULT_ANCHOR  # weight keeping sources with no labelled silence near the pretrained stems
    holdout: float = DEFAULT_HOLDOUT  # share of each labelled rest kept out of training to check the result
    batch_size: int = 1
    optimizer: str = "adam"
    seed: int | None = 0
    amp: bool = False
    max_windows: int | None = None  # train on at most this many windows (the most informative ones)
    cache_bytes: int = 4 << 30  # memory for cached prefix outputs; windows beyond it recompute
    activation_bytes: int = 2 << 30  # above this estimated backward memory, trained blocks are recomputed

    def __post_init__(self) -> None:
        if not isinstance(self.strategy, Strategy):
            object.__setattr__(self, "strategy", Strategy.parse(self.strategy))
        if self.hop is None:
            object.__setattr__(self, "hop", self.window)
        check_settings({setting.name: getattr(self, setting.name) for setting in fields(self)})

    def to_dict(self) -> dict[str, object]:
        """Plain values (the strategy by name), as JSON and checkpoints record them."""
        return {**asdict(self), "strategy": self.strategy.name}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> AdaptationSettings:
        """Settings from plain values (unknown keys ignored), as :meth:`to_dict` writes them."""
        known = {setting.name for setting in fields(cls)}
        return cls(**{key: value for key, value in values.items() if key in known})


def _finite_at_least(low: float) -> Callable[[Any], bool]:
    return lambda value: math.isfinite(value) and value >= low


_WINDOW_LOW, _WINDOW_HIGH = WINDOW_SECONDS
# Each setting's test and what the error says when it fails.
_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "epochs": (lambda value: 1 <= value <= MAX_EPOCHS, f"use 1 to {MAX_EPOCHS} (the paper used 10)"),
    "lr": (lambda value: value is None or (math.isfinite(value) and value > 0), "must be a positive number"),
    "step": (lambda value: math.isfinite(value) and 0 < value <= MAX_STEP,
             f"use a share of each weight's scale above 0 and at most {MAX_STEP:g} (default {DEFAULT_STEP:g})"),
    "steps": (lambda value: value is None or 1 <= value <= MAX_STEPS, f"use 1 to {MAX_STEPS}"),
    "holdout": (lambda value: 0 <= value <= MAX_HOLDOUT, f"use 0 to {MAX_HOLDOUT:g} (default {DEFAULT_HOLDOUT:g})"),
    "window": (lambda value: _WINDOW_LOW <= value <= _WINDOW_HIGH,
               f"use {_WINDOW_LOW:g} to {_WINDOW_HIGH:g} seconds (the paper used 10)"),
    "hop": (lambda value: math.isfinite(value) and value > 0, "must be a positive number of seconds"),
    "gamma": (_finite_at_least(0), "must be 0 or more"),
    "guard": (_finite_at_least(0), "must be 0 or more seconds"),
    "anchor": (_finite_at_least(0), "must be 0 or more"),
    "batch_size": (lambda value: 1 <= value <= MAX_BATCH_SIZE, f"use 1 to {MAX_BATCH_SIZE}"),
    "optimizer": (lambda value: value in OPTIMIZERS, f"use one of {', '.join(OPTIMIZERS)}"),
    "max_windows": (lambda value: value is None or value >= 1, "must be 1 or more"),
}


def _passes(test: Callable[[Any], bool], value: Any) -> bool:
    """Whether ``value`` passes ``test``; a value of the wrong kind (text for a number, from a model file) fails."""
    try:
        return bool(test(value))
    except TypeError:
        return False


def check_settings(values: Mapping[str, Any]) -> None:
    """Refuse the first of ``values`` (settings by name: all of them, or only those a user gave) outside its
    bounds, with a :class:`SettingError` naming it; the hop is checked against the window when both are given."""
    for name, value in values.items():
        if name in _RULES and not _passes(_RULES[name][0], value):
            raise SettingError(name, value, _RULES[name][1])
    window, hop = values.get("window"), values.get("hop")
    if window is not None and hop is not None and hop * MAX_WINDOWS_PER_SAMPLE < window:
        raise SettingError(
            "hop", hop, f"use at least the window / {MAX_WINDOWS_PER_SAMPLE} ({window / MAX_WINDOWS_PER_SAMPLE:g} s for "
            f"{window:g} s windows): a shorter hop trains on every sample more than {MAX_WINDOWS_PER_SAMPLE} times per "
            "epoch (the paper's 1 s hop with 10 s windows: 10 times)"
        )


def window_starts(frames: int, window: int, hop: int) -> list[int]:
    """Window starts every ``hop`` samples, plus one flush with the end so the tail is covered."""
    if frames <= window:
        return [0]
    starts = list(range(0, frames - window + 1, hop))
    if starts[-1] + window < frames:
        starts.append(frames - window)
    return starts


def rests_somewhere(activations: np.ndarray) -> np.ndarray:
    """(sources,) bool: which sources the activations (sources, frames) label silent somewhere (the silence
    term learns from these; the others, unlabelled or playing throughout, are the anchor's)."""
    return np.asarray(activations).min(axis=1) < 0.5


def guard_borders(activations: np.ndarray, guard: int) -> np.ndarray:
    """Activations (sources, frames) with every labelled silence shortened by ``guard`` samples at each border
    with an active region, but never by more than a quarter of its length: there the source counts as active,
    so the silence term leaves it alone while the reconstruction still counts it. The song's own start and end
    are no borders. Values are 0/1 (from 0.5)."""
    active = np.asarray(activations) >= 0.5
    if guard <= 0:
        return active.astype(np.float32)
    out = active.copy()
    frames = active.shape[1]
    for row, source in zip(out, active):
        for start, stop in runs(~source):  # silent runs [start, stop)
            width = min(guard, (stop - start) // 4)
            if start > 0:
                row[start : start + width] = True
            if stop < frames:
                row[stop - width : stop] = True
    return out.astype(np.float32)


def informative_order(activations: np.ndarray, starts: Sequence[int], window: int) -> list[int]:
    """Window starts sorted by how much labelled silence they hold (most first), ties by position."""
    silence = np.concatenate([[0.0], np.cumsum(1.0 - activations.mean(axis=0))])
    end = len(silence) - 1
    score = [silence[min(s + window, end)] - silence[s] for s in starts]
    order = sorted(range(len(starts)), key=lambda i: (-score[i], starts[i]))
    return [starts[i] for i in order]


def holdout_mask(activations: np.ndarray, coverage: np.ndarray, samplerate: int, share: float) -> np.ndarray:
    """(frames,) bool: the stretches kept out of training to check its result: the middle ``share`` of every
    labelled rest (of any source) inside ``coverage`` (frames,) bool that lasts at least
    :data:`HOLDOUT_MIN_REST` seconds. Training leaves them out for every source, so there the model sees no
    label at all."""
    held = np.zeros(activations.shape[1], dtype=bool)
    if share <= 0:
        return held
    shortest = int(round(HOLDOUT_MIN_REST * samplerate))
    for row in activations:
        for start, stop in runs(np.where(coverage, row, 1.0) < 0.5):
            if stop - start >= shortest:
                width = int(round(share * (stop - start)))
                first = (start + stop - width) // 2
                held[first : first + width] = True
    return held


# --- the trainer ----------------------------------------------------------------------------------------


@dataclass
class StepReport:
    """Progress of one optimisation step: ``step`` of ``steps`` in pass ``epoch`` of ``epochs`` over the windows,
    ``done`` of ``total`` in all."""

    epoch: int
    epochs: int
    step: int
    steps: int
    loss: float
    terms: dict[str, float]
    done: int = 0
    total: int = 0


@dataclass
class AdaptationResult:
    """What an adaptation did: the model (adapted in place, unless the check decided not to train), the steps it
    made, the held-out check (:class:`~ugosa_cli.decision.Evidence`) and what it says to write."""

    model: SeparationModel
    strategy: Strategy
    settings: AdaptationSettings
    windows: int
    steps: int
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)  # mean loss terms per pass over the windows
    notes: list[str] = field(default_factory=list)
    evidence: Evidence | None = None
    decision: Decision | None = None
    stopped: str | None = None  # why training stopped before the planned steps (None: it made them all)

    @property
    def trained(self) -> bool:
        return self.steps > 0


def relative_rates(parameters: Sequence[Tensor], step: float) -> list[float]:
    """Each tensor's learning rate under the step-size rule: ``step`` times its RMS, at least ``step`` times
    :data:`RMS_FLOOR_SHARE` times the RMS of all of them."""
    squares = [float(p.detach().double().pow(2).sum()) for p in parameters]
    sizes = [p.numel() for p in parameters]
    overall = math.sqrt(sum(squares) / max(1, sum(sizes)))
    floor = RMS_FLOOR_SHARE * overall
    return [step * max(math.sqrt(square / max(1, size)), floor) for square, size in zip(squares, sizes)]


def _make_optimizer(name: str, parameters: list[nn.Parameter], lr: float | None, step: float = DEFAULT_STEP) -> torch.optim.Optimizer:
    """The optimiser of ``parameters``: one learning rate ``lr``, or with ``lr`` None one per tensor
    (:func:`relative_rates`)."""
    groups: list[dict[str, Any]] = (
        [{"params": parameters}] if lr is not None
        else [{"params": [p], "lr": rate} for p, rate in zip(parameters, relative_rates(parameters, step))]
    )
    default = lr if lr is not None else step
    if name == "adam":
        return torch.optim.Adam(groups, lr=default)
    radam = torch.optim.RAdam(groups, lr=default, betas=(0.95, 0.999), eps=1e-5)
    if name == "radam":
        return radam
    # Ranger = RAdam + Lookahead (k=6, alpha=0.5), as torch_optimizer.Ranger but on torch's own RAdam.
    return torch_optimizer.Lookahead(radam, k=6, alpha=0.5)


def activation_memory(reference: int, device: torch.device) -> int:
    """Bytes the backward pass may keep before trained blocks are recomputed: ``reference``, or on a CPU half of the
    memory available now when that is more (recomputing gives the same updates, only slower)."""
    if device.type != "cpu":
        return reference
    try:
        available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):  # not on this system
        return reference
    return max(reference, available // 2)


def _seconds_up(samples: int, rate: int) -> str:
    """``samples`` at ``rate`` in seconds, rounded up to the millisecond (a length that is enough)."""
    return f"{math.ceil(samples / rate * 1000) / 1000:g}"


class Adapter:
    """Fine-tunes one model on one song. Build it, optionally :meth:`measure`, then :meth:`run`."""

    def __init__(
        self,
        model: SeparationModel,
        mix: np.ndarray,
        activations: np.ndarray,
        settings: AdaptationSettings,
        *,
        references: np.ndarray | None = None,
        device: torch.device | None = None,
    ) -> None:
        """``mix`` (channels, frames) and ``activations`` (sources, frames) at the model's rate;
        ``references`` (sources, channels, frames) for ``S-`` strategies."""
        self.strategy = settings.strategy
        self.settings = settings
        self.device = device or torch.device("cpu")
        self.model = model.to(self.device)
        self.notes: list[str] = []
        sources, rate = model.sources, model.samplerate
        if mix.shape[0] != model.audio_channels:
            raise InputError(f"the mixture has {mix.shape[0]} channels, the model expects {model.audio_channels}")
        if activations.shape != (len(sources), mix.shape[1]):
            raise InputError(f"activations of shape {activations.shape} do not match the song {mix.shape}")
        if self.strategy.loss is Loss.SUPERVISED and references is None:
            raise SettingError("references", None, f"strategy {self.strategy.name} needs the true stems")
        if self.strategy.loss is Loss.PROPOSED and activations.min() >= 1:
            raise InputError(
                "the labels mark no source as silent anywhere in the song, so the proposed loss has nothing to "
                "learn from; label where instruments rest (or check the labels belong to this song)"
            )
        if settings.amp and self.device.type != "cuda":
            raise SettingError("amp", None, "mixed precision (bfloat16) needs a CUDA device")
        frames = mix.shape[1]
        if frames < model.min_length:
            raise InputError(
                f"the song is too short to adapt on: {frames} samples at the model's rate "
                f"({frames / rate:.3g} s); the model needs at least {model.min_length} ({_seconds_up(model.min_length, rate)} s)"
            )
        if settings.seed is not None:
            torch.manual_seed(settings.seed % (1 << 64))  # any integer (torch takes 64 bits; random.Random any)
        labelled = np.asarray(activations) >= 0.5  # before the guard bands: the labels as given
        activations = guard_borders(activations, int(round(settings.guard * rate)))
        wav = torch.from_numpy(np.ascontiguousarray(mix, dtype=np.float32))
        ref = wav.mean(0)
        self.mean = float(ref.mean())
        std = float(ref.std())
        self.std = std if math.isfinite(std) and std > 0 else 1.0
        if not model.normalises_input:  # trained, as it separates, on the mixture as it is
            self.mean, self.std = 0.0, 1.0
        self.mix = ((wav - self.mean) / self.std).to(self.device)
        self.activations = torch.from_numpy(np.ascontiguousarray(activations, dtype=np.float32)).to(self.device)
        self.references = (
            stems_to_normalised(torch.from_numpy(np.ascontiguousarray(references, dtype=np.float32)), self.mean,
                                self.std).to(self.device)
            if references is not None
            else None
        )
        self.window = int(round(settings.window * rate))
        if self.window < model.min_length:
            raise SettingError("window", settings.window, f"shorter than the shortest window this model takes; give at "
                               f"least {_seconds_up(model.min_length, rate)} s")
        if frames < self.window:
            self.notes.append(
                f"the song ({frames / rate:.1f} s) is shorter than one {settings.window:g} s window: "
                "training on the whole song as one window"
            )
            self.window = frames
        hop = max(1, int(round(settings.hop * rate)))
        starts = window_starts(frames, self.window, hop)
        if settings.max_windows is not None and settings.max_windows < len(starts):
            chosen = informative_order(activations, starts, self.window)[: settings.max_windows]
            self.notes.append(
                f"training on the {len(chosen)} of {len(starts)} windows with the most labelled silence"
            )
            starts = sorted(chosen)
        self.starts = starts
        # The stretches kept out of training, to check its result on (inside the windows, so they cost no
        # extra forward passes), and the windows that hold them.
        coverage = np.zeros(frames, dtype=bool)
        for start in starts:
            coverage[start : start + self.window] = True
        # Whether the result is checked on held-out rests (the proposed loss, something trained, a share held out).
        self.checks = self.strategy.loss is Loss.PROPOSED and self.strategy.cut is not None and settings.holdout > 0
        held = (holdout_mask(labelled, coverage, rate, settings.holdout) if self.checks
                else np.zeros(frames, dtype=bool))
        self.held_seconds = float(held.sum()) / rate
        self.weights = torch.from_numpy((~held).astype(np.float32)).to(self.device) if held.any() else None
        self._playing = torch.from_numpy(labelled.astype(np.float32)).to(self.device)
        self._held = torch.from_numpy(held.astype(np.float32)).to(self.device)
        self.check_starts = [start for start in starts if held[start : start + self.window].any()]
        free = ~rests_somewhere(np.where(held, True, labelled))  # the anchor's sources, from the labels trained on
        if self.checks and not held.any():
            self.notes.append(
                f"no labelled rest inside the training windows lasts {HOLDOUT_MIN_REST:g} s or more, so none is held "
                "out: the result cannot be checked"
            )
        self.split: SplitModel | None = None
        if self.strategy.cut is not None:
            self.split = family_of(model).split(model, self.strategy.cut)
            if self.activation_estimate() > activation_memory(settings.activation_bytes, self.device):
                self.split.recompute = True
                self.notes.append(
                    f"recomputing activations in the backward pass (about {self.activation_estimate() / 2**30:.1f} "
                    "GiB otherwise): same updates, less memory, about a third slower"
                )
        self._cache: dict[int, PrefixState] = {}
        self.anchored = tuple(name for name, unconstrained in zip(sources, free) if unconstrained)
        self.free = torch.from_numpy(free.astype(np.float32)).to(self.device)
        # The pretrained values of the weights training changes: the anchor's target is the trained part run
        # with them on the same prefix state (swapped in for that forward only, before the step's own).
        self._pretrained: list[Tensor] | None = None
        if self.split is not None and self.strategy.loss is Loss.PROPOSED and settings.anchor > 0 and self.anchored:
            self._pretrained = [p.detach().clone() for p in trained_parameters(self.model, self.strategy)]
            self.notes.append(
                f"keeping {', '.join(self.anchored)} (no labelled silence) close to the pretrained model's stems "
                f"(--anchor {settings.anchor:g})"
            )

    @property
    def plans_recompute(self) -> bool:
        """Whether the plan counts recomputed activations: with the reference memory of
        :attr:`AdaptationSettings.activation_bytes`, whatever this machine has, so that plans are the same on every
        machine (a run with more memory keeps the activations: the same updates, sooner)."""
        return self.activation_estimate() > self.settings.activation_bytes

    @property
    def anchors(self) -> bool:
        """Whether training holds some sources near the pretrained model's stems (the anchor term)."""
        return self._pretrained is not None

    def activation_estimate(self) -> int:
        """Bytes the backward pass would keep for the trained part of one batch."""
        return 0 if self.split is None else self.split.activation_bytes(self.settings.batch_size, self.window)

    def memory_estimate(self) -> int:
        """Bytes training holds beyond the song: the weights, the optimiser's state for the trained ones, the
        backward pass's activations (capped where they are recomputed) and the cached prefix states (their
        measured size once one is cached, else left out), within the cache budget."""
        weights = sum(p.numel() for p in self.model.parameters()) * 4
        trained = self.trainable_parameters() * 4
        moments = {"adam": 2, "radam": 2, "ranger": 3}[self.settings.optimizer]  # Ranger adds Lookahead's copy
        activations = self.activation_estimate()
        if self.split is not None and self.split.recompute:
            activations = min(activations, self.settings.activation_bytes)
        cached = next(iter(self._cache.values()), None)
        per_window = sum(t.numel() * t.element_size() for t in cached) if cached else 0
        cache = min(per_window * len(self.starts), self.settings.cache_bytes)
        anchor = trained if self.anchors else 0  # the pretrained values of the trained weights
        return weights + anchor + trained * (1 + moments) + activations + cache

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(len(self.starts) / self.settings.batch_size)

    def trainable_parameters(self) -> int:
        return count_trainable(self.model, self.strategy)

    def _autocast(self) -> torch.autocast:
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.settings.amp)

    def _batch(self, starts: Sequence[int]) -> tuple[PrefixState, Tensor, Tensor, Tensor | None]:
        """Prefix state, mix (b, c, t), activations (b, s, 1, t) and references for a batch of windows (prefix
        cached per window)."""
        states = [self._prefix(s) for s in starts]
        state = tuple(torch.cat(parts) for parts in zip(*states))
        mix = torch.stack([self.mix[:, s : s + self.window] for s in starts])
        acts = torch.stack([self.activations[:, s : s + self.window] for s in starts]).unsqueeze(2)
        refs = (
            torch.stack([self.references[..., s : s + self.window] for s in starts])
            if self.references is not None
            else None
        )
        return state, mix, acts, refs

    def _prefix(self, start: int) -> PrefixState:
        assert self.split is not None
        if start in self._cache:
            return self._cache[start]
        with self._autocast():
            state = self.split.prefix(self.mix[None, :, start : start + self.window])
        state = tuple(t.float() for t in state)
        size = sum(t.numel() * t.element_size() for t in state)
        used = sum(t.numel() * t.element_size() for cached in self._cache.values() for t in cached)
        if used + size <= self.settings.cache_bytes:
            self._cache[start] = state
        return state

    @contextlib.contextmanager
    def _pretrained_weights(self) -> Iterator[None]:
        """The trained weights set back to their pretrained values for the duration (no graph may span it)."""
        assert self._pretrained is not None
        weights = trained_parameters(self.model, self.strategy)
        current = [p.data for p in weights]
        for parameter, value in zip(weights, self._pretrained):
            parameter.data = value
        try:
            yield
        finally:
            for parameter, value in zip(weights, current):
                parameter.data = value

    def _weights(self, starts: Sequence[int]) -> Tensor | None:
        """(b, t): 1 where a batch of windows is trained on, 0 on the held-out stretches (None: nothing held out)."""
        if self.weights is None:
            return None
        return torch.stack([self.weights[s : s + self.window] for s in starts])

    def _loss(self, estimates: Tensor, mix: Tensor, acts: Tensor, refs: Tensor | None,
              weights: Tensor | None = None) -> tuple[Tensor, dict[str, float]]:
        if self.strategy.loss is Loss.PROPOSED:
            return proposed_loss(estimates, mix, acts, self.settings.gamma, weights)
        if self.strategy.loss is Loss.MIXTURE:
            return mixture_loss(estimates, mix)
        assert refs is not None
        return supervised_loss(estimates, refs)

    def _forward_loss(self, starts: Sequence[int]) -> tuple[Tensor, dict[str, float]]:
        assert self.split is not None
        state, mix, acts, refs = self._batch(starts)
        if self._pretrained is not None:
            with torch.no_grad(), self._autocast(), self._pretrained_weights():
                pretrained = self.split.suffix(state, self.window).float()
        with self._autocast():
            estimates = self.split.suffix(state, self.window).float()
        weights = self._weights(starts)
        loss, terms = self._loss(estimates, mix, acts, refs, weights)
        if self._pretrained is not None:
            kept = anchor_loss(estimates, pretrained, self.free, weights)
            loss = loss + self.settings.anchor * kept
            terms["anchor"] = kept.item()
        return loss, terms

    def measure(self, seconds: float = 1.0, steps: int = 2) -> tuple[float, float]:
        """Seconds per optimisation step and per frozen prefix of one window, timed on ``seconds`` of the first
        window (the fastest of ``steps`` steps; no update is made) and scaled to the window by the network's
        operations (:meth:`~ugosa_cli.models.family.ModelFamily.forward_flops`), so a plan of big windows is
        estimated in seconds."""
        if self.split is None or self.strategy.cut is None:
            return 0.0, 0.0
        freeze_for(self.model, self.strategy)
        rate = self.model.samplerate
        length = min(self.window, max(self.model.min_length, int(round(seconds * rate))))
        family = family_of(self.model)
        saved = self.window, self._cache, self.split
        # A split of its own: a split keeps the layout of the first window it cut (HT-Demucs), and training's
        # windows are longer than the slice timed here.
        timing = family.split(self.model, self.strategy.cut)
        timing.recompute = self.split.recompute
        self.window, self._cache, self.split = length, {}, timing
        try:
            sample = self.starts[: self.settings.batch_size]
            began = time.perf_counter()
            for start in sample:
                self._prefix(start)
            prefix_seconds = (time.perf_counter() - began) / len(sample)
            timings = []
            for _ in range(max(1, steps)):
                began = time.perf_counter()
                loss, _ = self._forward_loss(sample)
                loss.backward()
                timings.append(time.perf_counter() - began)
            self.model.zero_grad(set_to_none=True)
        finally:
            self.window, self._cache, self.split = saved
        # As the operations grow from the slice to the window: in proportion for most networks, not at all for an
        # HT-Demucs, which pads any window shorter than its segment to the segment.
        scale = family.forward_flops(self.model, self.window) / max(family.forward_flops(self.model, length), 1.0)
        return min(timings) * scale, prefix_seconds * scale

    @property
    def total_steps(self) -> int:
        """Optimisation steps in all: ``steps`` when set, else every window of every epoch."""
        return self.settings.steps or self.steps_per_epoch * self.settings.epochs

    @property
    def checks_during_training(self) -> int:
        """Held-out checks made between steps (every :data:`~ugosa_cli.decision.CHECK_EVERY` steps, to stop early)
        when training runs to the end; 0 when the result is not checked."""
        return (self.total_steps - 1) // CHECK_EVERY if self.checks and self.check_starts else 0

    def estimate_seconds(self, step_seconds: float, prefix_seconds: float) -> float:
        """Estimated training time when it runs to the end: prefixes once, then the steps, plus the held-out checks
        before, during and after (a forward of the trained part per window that holds a held-out stretch, about a
        third of a step)."""
        checks = (2 + self.checks_during_training) * len(self.check_starts) * step_seconds / 3
        return prefix_seconds * len(self.starts) + step_seconds * self.total_steps + checks

    def leakage(self) -> tuple[dict[str, tuple[float, float]], float | None]:
        """The model's held-out check with its current weights: per source with a held-out rest, (seconds checked,
        leakage in dB), the leakage being the power of its stem on its held-out rests relative to its power where
        it is labelled playing in the same windows; and the residual (dB): the power of what the stems labelled
        playing leave unexplained of the mixture on the held-out stretches, relative to the mixture's there."""
        assert self.split is not None
        sources = self.model.sources
        rest_energy = torch.zeros(len(sources), device=self.device, dtype=torch.float64)
        rest_count = torch.zeros_like(rest_energy)
        play_energy = torch.zeros_like(rest_energy)
        play_count = torch.zeros_like(rest_energy)
        residual = torch.zeros(2, device=self.device, dtype=torch.float64)  # unexplained, mixture
        with torch.no_grad():
            for starts in self._chunks(self.check_starts):
                state, mix, _, _ = self._batch(starts)
                with self._autocast():
                    estimates = self.split.suffix(state, self.window).float()
                power = stems_from_normalised(estimates, self.mean, self.std).pow(2).mean(dim=2).double()  # (b, s, t)
                plays = torch.stack([self._playing[:, s : s + self.window] for s in starts]).double()  # (b, s, t)
                held = torch.stack([self._held[s : s + self.window] for s in starts]).double()  # (b, t)
                rests = (1 - plays) * held[:, None]  # each source's held-out rests
                rest_energy += (rests * power).sum(dim=(0, 2))
                rest_count += rests.sum(dim=(0, 2))
                play_energy += (plays * power).sum(dim=(0, 2))
                play_count += plays.sum(dim=(0, 2))
                unexplained = (mix - (plays[:, :, None].float() * estimates).sum(dim=1)).pow(2).mean(dim=1).double()
                residual += torch.stack([(held * unexplained).sum(), (held * mix.pow(2).mean(dim=1).double()).sum()])
        rate = self.model.samplerate
        rows = {}
        for index, name in enumerate(sources):
            if rest_count[index] > 0 and play_count[index] > 0:
                rest = float(rest_energy[index] / rest_count[index])
                play = float(play_energy[index] / play_count[index])
                rows[name] = (float(rest_count[index]) / rate, 10 * math.log10((rest + 1e-20) / (play + 1e-20)))
        left = 10 * math.log10((float(residual[0]) + 1e-20) / (float(residual[1]) + 1e-20)) if residual[1] > 0 else None
        return rows, left

    def check(self) -> Evidence | None:
        """The held-out check of the model as it is now (None: nothing held out)."""
        if self.split is None or not self.check_starts:
            return None
        rows, residual = self.leakage()
        return Evidence(tuple(SourceCheck(name, seconds, db) for name, (seconds, db) in rows.items()), residual)

    def _diverged(self, trainable: list[nn.Parameter], initial: list[Tensor], where: str) -> NoReturn:
        """Put the trained weights back as they were before training, and stop: training diverged."""
        with torch.no_grad():
            for parameter, value in zip(trainable, initial):
                parameter.copy_(value)
                parameter.requires_grad_(False)
        self.model.eval()
        if self.settings.lr is None:
            raise SettingError(
                "step", self.settings.step, f"training diverged at {where} became NaN or infinite, so nothing was "
                f"saved; use a smaller step (the default is {DEFAULT_STEP:g})"
            )
        raise SettingError(
            "lr", self.settings.lr, f"training diverged at {where} became NaN or infinite, so nothing was saved; use a "
            f"smaller learning rate, or leave --lr out to use the step-size rule (--step)"
        )

    def _chunks(self, starts: Sequence[int]) -> Iterator[list[int]]:
        size = self.settings.batch_size
        for i in range(0, len(starts), size):
            yield list(starts[i : i + size])

    def run(
        self, progress: Callable[[StepReport], None] | None = None, *, decide_first: bool = False,
        stop_early: bool = True,
    ) -> AdaptationResult:
        """Train; returns the adapted model (the same object, updated in place), what happened, and what the
        held-out check says to write (:mod:`ugosa_cli.decision`). With ``decide_first``, nothing is trained when
        the check says beforehand that adapting would not pay; with ``stop_early``, training stops once the
        held-out error stops falling (:func:`~ugosa_cli.decision.keeps_falling`; a benchmark scoring every count
        of steps turns it off)."""
        began = time.perf_counter()
        settings = self.settings
        if self.split is None:
            return AdaptationResult(self.model, self.strategy, settings, len(self.starts), 0, 0.0, notes=self.notes)
        trainable = freeze_for(self.model, self.strategy)
        evidence = self.check()
        if decide_first and evidence is not None:
            decision = before_training(evidence)
            if decision is not None:
                self._done()
                return AdaptationResult(self.model, self.strategy, settings, len(self.starts), 0,
                                        time.perf_counter() - began, notes=self.notes, evidence=evidence,
                                        decision=decision)
        optimizer = _make_optimizer(settings.optimizer, trainable, settings.lr, settings.step)
        rng = random.Random(settings.seed)
        history: list[dict[str, float]] = []
        total = self.total_steps
        per_pass = self.steps_per_epoch
        passes = math.ceil(total / per_pass)
        initial = [parameter.detach().clone() for parameter in trainable]
        done = 0
        measured: Evidence | None = None  # the check made after the last step, when one was
        stopped: str | None = None
        for epoch in range(passes):
            order = list(self.starts)
            rng.shuffle(order)
            batches = list(self._chunks(order))[: total - done]
            totals: dict[str, float] = {}
            made = 0
            for step, starts in enumerate(batches):
                optimizer.zero_grad(set_to_none=True)
                loss, terms = self._forward_loss(starts)
                where = f"pass {epoch + 1}, step {step + 1} of {len(batches)}"
                if not math.isfinite(loss.item()):
                    if done == 0:  # before any update: the model itself, not the training
                        raise InputError(
                            "the model's output on this song is NaN or infinite before any training: its weights "
                            "are damaged or far out of range; use another model file"
                        )
                    self._diverged(trainable, initial, f"{where}: the loss")
                loss.backward()
                optimizer.step()
                done += 1
                if not all_finite(trainable):
                    self._diverged(trainable, initial, f"{where}: the weights")
                terms = {"loss": loss.item(), **terms}
                for key, value in terms.items():
                    totals[key] = totals.get(key, 0.0) + value
                made += 1
                if progress:
                    progress(StepReport(epoch + 1, passes, step + 1, len(batches), terms["loss"], terms, done, total))
                if stop_early and evidence is not None and done % CHECK_EVERY == 0 and done < total:
                    measured = self._checked(evidence)
                    if not keeps_falling(measured, done):
                        stopped = stop_note(measured, done, total)
                        break
            history.append({key: value / made for key, value in totals.items()})
            if stopped is not None:
                break
        self._done()
        if evidence is not None:
            evidence = measured if stopped is not None else self._checked(evidence)  # a stop comes with its check
        return AdaptationResult(
            model=self.model,
            strategy=self.strategy,
            settings=settings,
            windows=len(self.starts),
            steps=done,
            seconds=time.perf_counter() - began,
            history=history,
            notes=self.notes,
            evidence=evidence,
            decision=after_training(evidence or Evidence(())) if self.strategy.loss is Loss.PROPOSED else None,
            stopped=stopped,
        )

    def _checked(self, evidence: Evidence) -> Evidence:
        """``evidence`` (the check before training) with the current weights' leakage and residual as "after"."""
        rows, residual = self.leakage()
        return evidence.with_after({name: db for name, (_, db) in rows.items()}, residual)

    def _done(self) -> None:
        """Training over: every weight frozen again, the model in eval mode."""
        for parameter in self.model.parameters():
            parameter.requires_grad_(False)
        self.model.eval()
