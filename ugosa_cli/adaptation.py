"""One-shot, user-guided adaptation of a ConvTasNet to one song (the UGOSA paper).

The model is fine-tuned on windows of the song itself, with the proposed loss (mixture reconstruction
from the sources labelled active, plus the energy of the sources labelled silent), a mixture-only loss
(``M``) or, for research, a supervised loss against the true stems (``S``). A strategy names the loss and
the cut point ``Lk`` after which the network is trained (through the decoder ``D``); everything before the
cut, the encoder included, stays frozen. Because the prefix is frozen, its output is computed once per
window and reused in every epoch.
"""

from __future__ import annotations

import math
import random
import re
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import torch
import torch.utils.checkpoint
import torch_optimizer
from torch import Tensor, nn

from ugosa_cli.errors import InputError
from ugosa_cli.models.convtasnet import ConvTasNet

LOSSES = {"P": "proposed", "M": "mixture only", "S": "supervised (oracle stems)"}
CUTS = (1, 2, 3, 4, 5)
OPTIMIZERS = ("ranger", "radam", "adam")
STRATEGY_NAMES = ("B0",) + tuple(f"{loss}-L{k}:D" for loss in "PMS" for k in CUTS)
DEFAULT_STRATEGY = "P-L2:D"
# With the proposed loss, a source labelled silent for more of the song than this (though it plays
# elsewhere) tends to be silenced where it plays as well (BENCHMARKS.md, "How much rest is too much").
MOSTLY_SILENT = 0.4
_STRATEGY_RE = re.compile(r"^([PMS])-L([1-5]):D$", re.IGNORECASE)


@dataclass(frozen=True)
class Strategy:
    """A loss (``P``, ``M``, ``S``) and a cut point (1-5); ``B0`` has neither and trains nothing."""

    loss: str | None
    cut: int | None

    @property
    def name(self) -> str:
        return "B0" if self.loss is None else f"{self.loss}-L{self.cut}:D"

    @property
    def trains(self) -> bool:
        return self.loss is not None


def parse_strategy(name: str) -> Strategy:
    """``B0`` or ``{P,M,S}-L{1..5}:D`` (case-insensitive)."""
    text = name.strip()
    if text.upper() == "B0":
        return Strategy(None, None)
    match = _STRATEGY_RE.match(text)
    if not match:
        raise InputError(
            f"--strategy {name!r}: unknown strategy; use B0 or P-Lk:D, M-Lk:D, S-Lk:D with k in 1..5 (e.g. P-L2:D)"
        )
    return Strategy(match.group(1).upper(), int(match.group(2)))


# --- what each strategy trains ------------------------------------------------------------------------


def _first_trained_repeat(model: ConvTasNet, cut: int) -> int | None:
    """Index of the first trained repeat for repeat cuts (L1..L3 on the 4-repeat tasnet), else None."""
    if cut in (4, 5):
        return None
    if cut >= model.config.R:
        raise InputError(
            f"strategy L{cut} needs a model with more than {cut} repeats; this model has R={model.config.R} "
            f"(use L1..L{model.config.R - 1}, L4 or L5)"
        )
    return cut


def trainable_modules(model: ConvTasNet, strategy: Strategy) -> list[tuple[str, nn.Module]]:
    """The named parts a strategy trains, in network order."""
    if not strategy.trains:
        return []
    assert strategy.cut is not None
    config = model.config
    parts: list[tuple[str, nn.Module]] = []
    first = _first_trained_repeat(model, strategy.cut)
    if first is not None:
        parts += [(f"repeat {r + 1}", model.repeats[r]) for r in range(first, config.R)]
    elif strategy.cut == 4:
        parts.append((f"repeat {config.R} block {config.X} depthwise-separable conv", model.repeats[-1][-1].net[3]))
    if strategy.cut != 5:
        parts.append(("mask conv", model.separator.network[3]))
    parts.append(("decoder", model.decoder))
    return parts


def describe_trainable(model: ConvTasNet, strategy: Strategy) -> str:
    """Human description of the trained part, e.g. ``repeats 3-4 + mask conv + decoder``."""
    parts = [name for name, _ in trainable_modules(model, strategy)]
    if not parts:
        return "nothing (the model as is)"
    repeats = [p for p in parts if p.startswith("repeat ") and "block" not in p]
    rest = [p for p in parts if p not in repeats]
    if repeats:
        numbers = [int(p.split()[1]) for p in repeats]
        span = f"repeat {numbers[0]}" if len(numbers) == 1 else f"repeats {numbers[0]}-{numbers[-1]}"
        rest = [span] + rest
    return " + ".join(rest)


def count_trainable(model: ConvTasNet, strategy: Strategy) -> int:
    """#TP: the number of parameters the strategy trains."""
    return sum(p.numel() for _, module in trainable_modules(model, strategy) for p in module.parameters())


def strategy_table(model: ConvTasNet, losses: str = "PMS") -> list[dict[str, object]]:
    """One row per strategy: name, loss, what is trained and #TP, for ``ugosa strategies``."""
    rows = []
    for name in STRATEGY_NAMES:
        strategy = parse_strategy(name)
        if strategy.loss is not None and strategy.loss not in losses:
            continue
        try:
            tp = count_trainable(model, strategy)
        except InputError:
            continue  # cut not available for this model's depth
        rows.append(
            {
                "strategy": name,
                "loss": LOSSES.get(strategy.loss or "", "none"),
                "trains": describe_trainable(model, strategy),
                "trainable_parameters": tp,
            }
        )
    return rows


def freeze_for(model: ConvTasNet, strategy: Strategy) -> list[nn.Parameter]:
    """Set ``requires_grad`` so only the strategy's part trains; return the trainable parameters."""
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    trainable = [p for _, module in trainable_modules(model, strategy) for p in module.parameters()]
    for parameter in trainable:
        parameter.requires_grad_(True)
    return trainable


# --- the frozen prefix and the trained suffix ---------------------------------------------------------


class SplitModel:
    """Runs a model as a frozen prefix (cached per window) and a trainable suffix, for one strategy.

    The cached state is the encoder output plus the features entering the first trained layer:
    for a repeat cut, the input of that repeat; for L4, the input of the last block (the block's frozen
    1x1 conv and norm are cheap and recomputed); for L5, the output of the last repeat (the frozen mask
    conv is recomputed). ``suffix(prefix(x))`` equals ``model(x)``.

    With ``recompute=True`` the trained blocks keep only their inputs for the backward pass and run their
    forward again there (activation checkpointing): the same gradients, for a fraction of the memory.
    """

    def __init__(self, model: ConvTasNet, strategy: Strategy, *, recompute: bool = False) -> None:
        assert strategy.cut is not None
        self.model = model
        self.cut = strategy.cut
        self.recompute = recompute
        first = _first_trained_repeat(model, strategy.cut)
        self.frozen_repeats = first if first is not None else model.config.R
        self.frozen_blocks_in_last = model.config.X - 1 if strategy.cut == 4 else 0

    @property
    def trained_blocks(self) -> int:
        """Temporal blocks whose activations the backward pass needs."""
        if self.cut in (4, 5):
            return 1 if self.cut == 4 else 0
        return (self.model.config.R - self.frozen_repeats) * self.model.config.X

    @torch.no_grad()
    def prefix(self, mix: Tensor) -> tuple[Tensor, Tensor]:
        model = self.model
        mixture_w = model.encode(mix)
        features = model.bottleneck(mixture_w)
        if self.cut == 4:
            features = model.repeats[: model.config.R - 1](features)
            features = model.repeats[-1][: self.frozen_blocks_in_last](features)
        else:
            features = model.repeats[: self.frozen_repeats](features)
        return mixture_w, features

    def suffix(self, mixture_w: Tensor, features: Tensor, length: int) -> Tensor:
        model = self.model
        if self.cut == 4:
            block = model.repeats[-1][-1]
            with torch.no_grad():
                hidden = block.net[:3](features)
            features = features + block.net[3](hidden)
        elif self.cut != 5:
            for repeat in model.repeats[self.frozen_repeats :]:
                for block in repeat:
                    if self.recompute and torch.is_grad_enabled():
                        features = torch.utils.checkpoint.checkpoint(block, features, use_reentrant=False)
                    else:
                        features = block(features)
        return model.decode_from(mixture_w, features, length)


# --- losses ---------------------------------------------------------------------------------------------


def proposed_loss(estimates: Tensor, mix: Tensor, activations: Tensor, gamma: float) -> tuple[Tensor, dict[str, float]]:
    """``mean|mix - sum_s h_s est_s| + gamma * mean|(1 - h) est|``; shapes (b, s, c, t), (b, c, t), (b, s, 1, t)."""
    reconstruction = (mix - (activations * estimates).sum(dim=1)).abs().mean()
    silence = ((1 - activations) * estimates).abs().mean()
    loss = reconstruction + gamma * silence
    return loss, {"rec": reconstruction.item(), "act": silence.item()}


def mixture_loss(estimates: Tensor, mix: Tensor) -> tuple[Tensor, dict[str, float]]:
    """``mean|mix - sum_s est_s|``: mixture consistency only (an ablation in the paper's code)."""
    loss = (mix - estimates.sum(dim=1)).abs().mean()
    return loss, {"rec": loss.item()}


def supervised_loss(estimates: Tensor, references: Tensor) -> tuple[Tensor, dict[str, float]]:
    """``mean|est - ref|`` against the true stems (oracle; for research)."""
    loss = (estimates - references).abs().mean()
    return loss, {"sup": loss.item()}


# --- settings, windows and the plan ---------------------------------------------------------------------


@dataclass(frozen=True)
class AdaptationSettings:
    """Hyper-parameters; the defaults are the paper's protocol."""

    strategy: str = DEFAULT_STRATEGY
    epochs: int = 10
    lr: float = 1e-5
    window: float = 10.0  # seconds
    hop: float = 1.0  # seconds
    gamma: float = 1.0
    batch_size: int = 1
    optimizer: str = "ranger"
    seed: int | None = 0
    amp: bool = False
    max_windows: int | None = None  # train on at most this many windows (the most informative ones)
    cache_bytes: int = 4 << 30  # memory for cached prefix outputs; windows beyond it recompute
    activation_bytes: int = 2 << 30  # above this estimated backward memory, trained blocks are recomputed

    def __post_init__(self) -> None:
        parse_strategy(self.strategy)
        checks = [
            (self.epochs >= 1, f"--epochs {self.epochs}: must be 1 or more"),
            (self.lr > 0 and math.isfinite(self.lr), f"--lr {self.lr}: must be a positive number"),
            (self.window > 0, f"--window {self.window}: must be a positive number of seconds"),
            (self.hop > 0, f"--hop {self.hop}: must be a positive number of seconds"),
            (self.gamma >= 0, f"--gamma {self.gamma}: must be 0 or more"),
            (self.batch_size >= 1, f"--batch-size {self.batch_size}: must be 1 or more"),
            (self.optimizer in OPTIMIZERS, f"--optimizer {self.optimizer}: use one of {', '.join(OPTIMIZERS)}"),
            (self.max_windows is None or self.max_windows >= 1, f"max windows {self.max_windows}: must be 1 or more"),
        ]
        for ok, message in checks:
            if not ok:
                raise InputError(message)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def window_starts(frames: int, window: int, hop: int) -> list[int]:
    """Window starts every ``hop`` samples, plus one flush with the end so the tail is covered."""
    if frames <= window:
        return [0]
    starts = list(range(0, frames - window + 1, hop))
    if starts[-1] + window < frames:
        starts.append(frames - window)
    return starts


def informative_order(activations: np.ndarray, starts: Sequence[int], window: int) -> list[int]:
    """Window starts sorted by how much labelled silence they hold (most first), ties by position."""
    silence = np.concatenate([[0.0], np.cumsum(1.0 - activations.mean(axis=0))])
    end = len(silence) - 1
    score = [silence[min(s + window, end)] - silence[s] for s in starts]
    order = sorted(range(len(starts)), key=lambda i: (-score[i], starts[i]))
    return [starts[i] for i in order]


def fit_to_budget(
    settings: AdaptationSettings,
    *,
    frames: int,
    samplerate: int,
    step_seconds: float,
    prefix_seconds: float,
    forward_seconds: float,
    budget_factor: float = 2.0,
) -> tuple[AdaptationSettings, str]:
    """Settings that train within ``budget_factor`` times the song's plain separation time.

    For CPUs: windows stop overlapping (hop = window) and the epochs (then the windows, most labelled
    silence first) are cut until prefix caching, training and the silence checks fit the budget.
    ``forward_seconds`` is one full-model forward of one window; separation runs it on the song with
    segments overlapping by a quarter, hence the 4/3.
    """
    window = int(round(settings.window * samplerate))
    windows = max(1, math.ceil(frames / window))
    separation = forward_seconds * max(frames / window, 1.0) * 4 / 3
    budget = budget_factor * separation
    per_window = step_seconds * (1 + 2 / 3)  # one step per epoch, plus the before/after checks (forward only)
    epochs = int((budget - windows * (prefix_seconds + step_seconds * 2 / 3)) // (windows * step_seconds))
    chosen = dict(hop=settings.window, epochs=max(1, min(settings.epochs, epochs)))
    if epochs < 1:
        chosen["max_windows"] = max(1, int(budget // (prefix_seconds + per_window)))
    planned = AdaptationSettings(**{**settings.to_dict(), **chosen})  # type: ignore[arg-type]
    used = min(windows, planned.max_windows or windows)
    summary = (
        f"CPU plan: {planned.epochs} epoch(s) over {used} non-overlapping {settings.window:g} s window(s), "
        f"about {budget_factor:g}x the separation time; --protocol paper runs the paper's "
        f"{settings.epochs} epochs with a {settings.hop:g} s hop"
    )
    return planned, summary


@dataclass
class StepReport:
    """Progress of one optimisation step."""

    epoch: int
    epochs: int
    step: int
    steps: int
    loss: float
    terms: dict[str, float]


@dataclass
class SilenceEnergy:
    """Output energy of one source inside the regions labelled silent, before and after adaptation."""

    source: str
    seconds: float
    before_db: float
    after_db: float

    @property
    def change_db(self) -> float:
        return self.after_db - self.before_db


@dataclass
class AdaptationResult:
    model: ConvTasNet
    strategy: Strategy
    settings: AdaptationSettings
    windows: int
    steps: int
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)  # mean loss terms per epoch
    silence: list[SilenceEnergy] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def mostly_silent(activations: np.ndarray, sources: Sequence[str], limit: float = MOSTLY_SILENT) -> dict[str, float]:
    """Sources labelled silent for more than ``limit`` of the song that still play somewhere: name -> silent share."""
    shares = (np.asarray(activations) < 0.5).mean(axis=1)
    return {name: float(share) for name, share in zip(sources, shares) if limit < share < 1}


def _make_optimizer(name: str, parameters: list[nn.Parameter], lr: float) -> torch.optim.Optimizer:
    if name == "adam":
        return torch.optim.Adam(parameters, lr=lr)
    radam = torch.optim.RAdam(parameters, lr=lr, betas=(0.95, 0.999), eps=1e-5)
    if name == "radam":
        return radam
    # Ranger = RAdam + Lookahead (k=6, alpha=0.5), as torch_optimizer.Ranger but on torch's own RAdam.
    return torch_optimizer.Lookahead(radam, k=6, alpha=0.5)


class Adapter:
    """Fine-tunes one model on one song. Build it, optionally :meth:`measure`, then :meth:`run`."""

    def __init__(
        self,
        model: ConvTasNet,
        mix: np.ndarray,
        activations: np.ndarray,
        settings: AdaptationSettings,
        *,
        references: np.ndarray | None = None,
        device: torch.device | None = None,
    ) -> None:
        """``mix`` (channels, frames) and ``activations`` (sources, frames) at the model's rate;
        ``references`` (sources, channels, frames) for ``S-`` strategies."""
        self.strategy = parse_strategy(settings.strategy)
        self.settings = settings
        self.device = device or torch.device("cpu")
        self.model = model.to(self.device)
        self.notes: list[str] = []
        self.warnings: list[str] = []
        if mix.shape[0] != model.audio_channels:
            raise InputError(f"the mixture has {mix.shape[0]} channels, the model expects {model.audio_channels}")
        if activations.shape != (len(model.sources), mix.shape[1]):
            raise InputError(f"activations of shape {activations.shape} do not match the song {mix.shape}")
        if self.strategy.loss == "S" and references is None:
            raise InputError(f"strategy {self.strategy.name} needs the true stems: give --references DIR or FILES")
        if self.strategy.loss == "P" and activations.min() >= 1:
            raise InputError(
                "the labels mark no source as silent anywhere in the song, so the proposed loss has nothing to "
                "learn from; label where instruments rest (or check the labels belong to this song)"
            )
        if settings.amp and self.device.type != "cuda":
            raise InputError("--amp (mixed precision) needs a CUDA device")
        if self.strategy.trains and self.strategy.loss == "P":
            for name, share in mostly_silent(activations, model.sources).items():
                self.warnings.append(
                    f"{name} is labelled silent for {share:.0%} of the song: the proposed loss tends to silence it "
                    "where it plays as well; check its stem (or keep the model as is and apply the labels to "
                    "the output: --strategy B0 --resplit)"
                )
        if settings.seed is not None:
            torch.manual_seed(settings.seed)
        wav = torch.from_numpy(np.ascontiguousarray(mix, dtype=np.float32))
        ref = wav.mean(0)
        self.mean = float(ref.mean())
        std = float(ref.std())
        self.std = std if math.isfinite(std) and std > 0 else 1.0
        self.mix = ((wav - self.mean) / self.std).to(self.device)
        self.activations = torch.from_numpy(np.ascontiguousarray(activations, dtype=np.float32)).to(self.device)
        self.references = (
            ((torch.from_numpy(np.ascontiguousarray(references, dtype=np.float32)) - self.mean) / self.std).to(self.device)
            if references is not None
            else None
        )
        frames = mix.shape[1]
        self.window = int(round(settings.window * model.samplerate))
        if frames < self.window:
            self.notes.append(
                f"the song ({frames / model.samplerate:.1f} s) is shorter than one {settings.window:g} s window: "
                "training on the whole song as one window"
            )
            self.window = frames
        if self.window < model.config.L:
            raise InputError(f"the song is too short to adapt on ({frames} samples)")
        hop = max(1, int(round(settings.hop * model.samplerate)))
        starts = window_starts(frames, self.window, hop)
        if settings.max_windows is not None and settings.max_windows < len(starts):
            chosen = informative_order(activations, starts, self.window)[: settings.max_windows]
            self.notes.append(
                f"training on the {len(chosen)} of {len(starts)} windows with the most labelled silence"
            )
            starts = sorted(chosen)
        self.starts = starts
        self.split = SplitModel(model, self.strategy) if self.strategy.trains else None
        if self.split is not None and self.activation_estimate() > settings.activation_bytes:
            self.split.recompute = True
            self.notes.append(
                f"recomputing activations in the backward pass (about {self.activation_estimate() / 2**30:.1f} GiB "
                "otherwise): same updates, less memory, about a third slower"
            )
        self._cache: dict[int, tuple[Tensor, Tensor]] = {}

    def activation_estimate(self) -> int:
        """Bytes the backward pass would keep for the trained blocks (about six hidden-width maps each)."""
        if self.split is None:
            return 0
        frames = self.window // (self.model.config.L // 2)
        return 6 * 4 * self.split.trained_blocks * self.settings.batch_size * frames * self.model.config.H

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(len(self.starts) / self.settings.batch_size)

    def trainable_parameters(self) -> int:
        return count_trainable(self.model, self.strategy)

    def _autocast(self) -> torch.autocast:
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.settings.amp)

    def _batch(self, starts: Sequence[int]) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor | None]:
        """Prefix state, mix, activations and references for a batch of windows (prefix cached per window)."""
        assert self.split is not None
        states = [self._prefix(s) for s in starts]
        mixture_w = torch.cat([w for w, _ in states])
        features = torch.cat([f for _, f in states])
        mix = torch.stack([self.mix[:, s : s + self.window] for s in starts])
        acts = torch.stack([self.activations[:, s : s + self.window] for s in starts]).unsqueeze(2)
        refs = (
            torch.stack([self.references[..., s : s + self.window] for s in starts])
            if self.references is not None
            else None
        )
        return mixture_w, features, mix, acts, refs

    def _prefix(self, start: int) -> tuple[Tensor, Tensor]:
        assert self.split is not None
        if start in self._cache:
            return self._cache[start]
        with self._autocast():
            state = self.split.prefix(self.mix[None, :, start : start + self.window])
        state = (state[0].float(), state[1].float())
        size = sum(t.numel() * t.element_size() for t in state)
        used = sum(t.numel() * t.element_size() for pair in self._cache.values() for t in pair)
        if used + size <= self.settings.cache_bytes:
            self._cache[start] = state
        return state

    def _loss(self, estimates: Tensor, mix: Tensor, acts: Tensor, refs: Tensor | None) -> tuple[Tensor, dict[str, float]]:
        if self.strategy.loss == "P":
            return proposed_loss(estimates, mix, acts, self.settings.gamma)
        if self.strategy.loss == "M":
            return mixture_loss(estimates, mix)
        assert refs is not None
        return supervised_loss(estimates, refs)

    def _forward_loss(self, starts: Sequence[int]) -> tuple[Tensor, dict[str, float]]:
        assert self.split is not None
        mixture_w, features, mix, acts, refs = self._batch(starts)
        with self._autocast():
            estimates = self.split.suffix(mixture_w, features, self.window)
        return self._loss(estimates.float(), mix, acts, refs)

    def measure(self, steps: int = 2) -> tuple[float, float, float]:
        """Seconds per optimisation step, per cached prefix and per full forward of one window.

        Timed on the first windows; no update is made.
        """
        if self.split is None:
            return 0.0, 0.0, 0.0
        freeze_for(self.model, self.strategy)
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
        began = time.perf_counter()
        with torch.no_grad(), self._autocast():
            self.model(self.mix[None, :, sample[0] : sample[0] + self.window])
        forward_seconds = time.perf_counter() - began
        return min(timings), prefix_seconds, forward_seconds

    def estimate_seconds(self, step_seconds: float, prefix_seconds: float) -> float:
        """Estimated training time: prefixes once, then every epoch's steps, plus the two silence checks."""
        epochs = self.settings.epochs
        return prefix_seconds * len(self.starts) + step_seconds * self.steps_per_epoch * (epochs + 2 / 3)

    def silence_energy(self) -> list[tuple[str, float, float]]:
        """Per source with labelled silence in the windows: (source, seconds of silence, energy in dB)."""
        assert self.split is not None
        sources = self.model.sources
        energy = torch.zeros(len(sources), device=self.device, dtype=torch.float64)
        count = torch.zeros(len(sources), device=self.device, dtype=torch.float64)
        with torch.no_grad():
            for starts in self._chunks(self.starts):
                mixture_w, features, _, acts, _ = self._batch(starts)
                with self._autocast():
                    estimates = self.split.suffix(mixture_w, features, self.window).float()
                stems = estimates * self.std + self.mean
                silent = 1 - acts  # (b, s, 1, t)
                energy += (silent * stems.pow(2)).sum(dim=(0, 2, 3)).double() / stems.shape[2]
                count += silent.sum(dim=(0, 2, 3)).double()
        rate = self.model.samplerate
        rows = []
        for index, name in enumerate(sources):
            if count[index] > 0:
                power = float(energy[index] / count[index])
                rows.append((name, float(count[index]) / rate, 10 * math.log10(power + 1e-12)))
        return rows

    def _chunks(self, starts: Sequence[int]) -> Iterator[list[int]]:
        size = self.settings.batch_size
        for i in range(0, len(starts), size):
            yield list(starts[i : i + size])

    def run(self, progress: Callable[[StepReport], None] | None = None) -> AdaptationResult:
        """Train; returns the adapted model (the same object, updated in place) and what happened."""
        began = time.perf_counter()
        settings = self.settings
        if self.split is None:
            return AdaptationResult(self.model, self.strategy, settings, len(self.starts), 0, 0.0, notes=self.notes)
        trainable = freeze_for(self.model, self.strategy)
        before = self.silence_energy() if self.strategy.loss == "P" else []
        optimizer = _make_optimizer(settings.optimizer, trainable, settings.lr)
        rng = random.Random(settings.seed)
        history: list[dict[str, float]] = []
        steps = self.steps_per_epoch
        for epoch in range(settings.epochs):
            order = list(self.starts)
            rng.shuffle(order)
            totals: dict[str, float] = {}
            for step, starts in enumerate(self._chunks(order)):
                optimizer.zero_grad(set_to_none=True)
                loss, terms = self._forward_loss(starts)
                loss.backward()
                optimizer.step()
                terms = {"loss": loss.item(), **terms}
                for key, value in terms.items():
                    totals[key] = totals.get(key, 0.0) + value
                if progress:
                    progress(StepReport(epoch + 1, settings.epochs, step + 1, steps, terms["loss"], terms))
            history.append({key: value / steps for key, value in totals.items()})
        for parameter in self.model.parameters():
            parameter.requires_grad_(False)
        self.model.eval()
        after = {name: db for name, _, db in self.silence_energy()} if before else {}
        silence = [SilenceEnergy(name, seconds, db, after[name]) for name, seconds, db in before]
        return AdaptationResult(
            model=self.model,
            strategy=self.strategy,
            settings=settings,
            windows=len(self.starts),
            steps=steps * settings.epochs,
            seconds=time.perf_counter() - began,
            history=history,
            silence=silence,
            notes=self.notes,
        )


# --- a model file's own recommendation --------------------------------------------------------------------

ADAPTATION_DEFAULTS_KEY = "adaptation_defaults"


def adaptation_defaults(provenance: Mapping[str, Any]) -> dict[str, Any]:
    """The adaptation settings a model file recommends for itself (only known settings; {} if none).

    They are stored in the checkpoint's provenance under :data:`ADAPTATION_DEFAULTS_KEY` as fields of
    :class:`AdaptationSettings`.
    """
    stored = provenance.get(ADAPTATION_DEFAULTS_KEY)
    if not isinstance(stored, Mapping):
        return {}
    known = {setting.name for setting in fields(AdaptationSettings)}
    return {key: value for key, value in stored.items() if key in known}


def model_settings(provenance: Mapping[str, Any], **overrides: Any) -> AdaptationSettings:
    """:class:`AdaptationSettings`: the library defaults, then the model's own, then ``overrides`` (None skipped)."""
    values = {**adaptation_defaults(provenance), **{k: v for k, v in overrides.items() if v is not None}}
    return AdaptationSettings(**values)
