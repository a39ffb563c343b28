"""Which settings an adaptation runs with, and the plan shown before it trains.

One precedence rule for every entry point (``adapt``, ``separate --labels``, ``demo``, ``bench``, the
benchmarks): a setting the user gave explicitly, else the model file's own recommendation (with
``protocol="auto"``), else the protocol's default: ugosa's (:class:`~ugosa_cli.adaptation.AdaptationSettings`;
on CUDA 4 windows per step) or, with ``protocol="paper"``, the paper's
(:data:`~ugosa_cli.adaptation.PAPER_SETTINGS`).
With ``protocol="auto"``, when neither the user nor the model fixed the schedule, the number of steps and of
windows come from a budget of work: about one more separation of the song (:func:`fit_to_budget`), counted in
floating-point operations from the network's shape, so the plan is the same on every machine.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ugosa_cli.adaptation import (
    ANCHOR_STEP_SHARE,
    PAPER_SETTINGS,
    AdaptationSettings,
    Adapter,
    check_settings,
    rests_somewhere,
    window_starts,
)
from ugosa_cli.checkpoint import LoadedModel
from ugosa_cli.decision import CHECK_EVERY
from ugosa_cli.errors import InputError, SettingError
from ugosa_cli.models import family_of
from ugosa_cli.models.family import SeparationModel
from ugosa_cli.separation import DEFAULT_OVERLAP
from ugosa_cli.strategy import (
    B0,
    DEFAULT_STRATEGY,
    Loss,
    Strategy,
    check_available,
    count_trainable,
    describe_trainable,
)

PROTOCOLS = ("auto", "paper")
ADAPTATION_DEFAULTS_KEY = "adaptation_defaults"
# The settings a model file may recommend for itself, and a user may give.
CHOSEN = ("strategy", "epochs", "steps", "lr", "step", "window", "hop", "gamma", "guard", "anchor", "holdout",
          "batch_size", "optimizer")
# The settings that fix the schedule: given by the user or recommended by the model, the CPU plan stays out.
SCHEDULE = ("epochs", "steps", "hop")
CUDA_BATCH_SIZE = 4
# With the proposed loss, a source labelled silent for more of the song than this (though it plays
# elsewhere) tends to be silenced where it plays as well (BENCHMARKS.md, "How much rest is too much").
MOSTLY_SILENT = 0.4
# Adapting pays when more than this share of the sources rest somewhere in the labels; with rests of fewer
# (one or two of four) applying the labels to the pretrained stems (the resplit filter) gained more on the tuning
# songs (BENCHMARKS.md, "Rests of few sources"), so ``separate --labels`` does that unless a strategy is given.
RESTING_SHARE_TO_ADAPT = 0.5
# The budget of the plan: training does about the work of BUDGET_FACTOR separations of the song (so that
# ``separate --labels``, which also separates with both models, stays within about three times plain separation),
# but never less than MIN_BUDGET_FLOP operations (about 30 s on a 2-core CPU), which only small networks reach:
# there training stops early once the held-out error stops falling (:func:`ugosa_cli.decision.keeps_falling`),
# and the small models kept gaining up to about 80 steps where the labels had more to teach (BENCHMARKS.md).
# At most PREFIX_SHARE of the budget goes to the windows' frozen parts and checks (the most informative windows
# first), the rest to steps and the checks made between them; at most MAX_PASSES passes over the chosen windows
# (twice the paper's 10 epochs: on a short song the small models still gained from the 10th to the 20th pass where
# the held-out error kept falling, and stopping early ends the passes that do not pay).
BUDGET_FACTOR = 1.0
MIN_BUDGET_FLOP = 6e11
PREFIX_SHARE = 0.25
MAX_PASSES = 20
# A training step, or the frozen part of one window, slower than this on a CPU (seconds) makes adapting a job for
# a GPU: the paper's protocol is about 2,000 steps over 170 windows for a 3-minute song (10 epochs over 10 s
# windows with a 1 s hop), days at this pace.
SLOW_CPU_STEP_SECONDS = 60.0


@dataclass(frozen=True)
class AdaptationRequest:
    """What the user asked for; ``None`` means "not given" (the plan decides)."""

    strategy: Strategy | None = None
    epochs: int | None = None
    steps: int | None = None
    lr: float | None = None
    step: float | None = None
    window: float | None = None
    hop: float | None = None
    gamma: float | None = None
    guard: float | None = None
    anchor: float | None = None
    holdout: float | None = None
    batch_size: int | None = None
    optimizer: str | None = None
    seed: int | None = 0
    amp: bool = False
    protocol: str = "auto"

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise SettingError("protocol", self.protocol, f"use one of {', '.join(PROTOCOLS)}")
        check_settings(self.explicit())  # before any work; the hop against the window used once the plan is known

    def explicit(self) -> dict[str, Any]:
        """The settings given explicitly, by name."""
        return {name: getattr(self, name) for name in CHOSEN if getattr(self, name) is not None}


def adaptation_defaults(provenance: Mapping[str, Any]) -> dict[str, Any]:
    """The adaptation settings a model file recommends for itself (known settings only; {} if none).

    They are stored in the checkpoint's provenance under :data:`ADAPTATION_DEFAULTS_KEY` as fields of
    :class:`AdaptationSettings`.
    """
    stored = provenance.get(ADAPTATION_DEFAULTS_KEY)
    if not isinstance(stored, Mapping):
        return {}
    known = {setting.name for setting in dataclasses.fields(AdaptationSettings)}
    return {key: value for key, value in stored.items() if key in known}


def recommendation(loaded: LoadedModel, protocol: str = "auto") -> dict[str, Any]:
    """The settings the model file recommends, checked, unless the protocol sets them aside ({} then)."""
    if protocol != "auto":
        return {}
    values = {key: value for key, value in adaptation_defaults(loaded.provenance).items() if key in CHOSEN}
    try:
        AdaptationSettings.from_dict(values)
    except SettingError as exc:
        raise InputError(
            f"model {loaded.name} recommends {exc.setting.replace('_', ' ')} {exc.value!r} for adaptation, which is "
            f"unusable ({exc.problem}); give that setting explicitly, or use --protocol paper"
        ) from None
    return values


def resolve_strategy(request: AdaptationRequest, recommended: Mapping[str, Any]) -> Strategy:
    """The strategy a run uses: the user's, else the model's recommendation, else the default."""
    if request.strategy is not None:
        return request.strategy
    if "strategy" in recommended:
        return Strategy.parse(recommended["strategy"])
    return DEFAULT_STRATEGY


def resolve_settings(
    request: AdaptationRequest, recommended: Mapping[str, Any], *, cuda: bool, longest_window: float | None = None
) -> AdaptationSettings:
    """The settings a run uses, by the precedence rule (explicit > the model's recommendation > the default).

    ``longest_window``: the longest window (seconds) the network takes (HT-Demucs: its 7.8 s segment); a longer
    default becomes that, an explicit longer window is refused.
    """
    defaults: dict[str, Any] = {"batch_size": CUDA_BATCH_SIZE if cuda and request.protocol == "auto" else 1}
    if request.protocol == "paper":
        defaults.update(PAPER_SETTINGS)
    values = {**defaults, **recommended, **request.explicit()}
    values["strategy"] = resolve_strategy(request, recommended)
    settings = AdaptationSettings(**values, seed=request.seed, amp=request.amp)
    if longest_window is not None and settings.window > longest_window + 1e-9:
        if request.window is not None:
            raise SettingError("window", request.window, f"this model takes windows of at most {longest_window:g} s "
                               "(its segment)")
        longer_hop = settings.hop >= settings.window
        settings = dataclasses.replace(settings, window=longest_window,
                                       hop=longest_window if longer_hop and request.hop is None else settings.hop)
    return settings


def longest_window(model: SeparationModel) -> float | None:
    """The longest training window (seconds) a network takes, if it has a limit."""
    limit = model.max_segment_length
    return None if limit is None else limit / model.samplerate


def uses_cpu_budget(request: AdaptationRequest, recommended: Mapping[str, Any], device: torch.device) -> bool:
    """Whether the CPU plan applies: CPU, ``auto``, and neither the user nor the model fixed the schedule."""
    fixed = (any(getattr(request, name) is not None for name in SCHEDULE)
             or any(name in recommended for name in SCHEDULE))
    return device.type == "cpu" and request.protocol == "auto" and not fixed


def fit_to_budget(
    settings: AdaptationSettings,
    *,
    frames: int,
    samplerate: int,
    step_cost: float,
    prefix_cost: float,
    window_flop: float,
    checks: bool = True,
    separation_passes: float = 4 / 3,
) -> tuple[AdaptationSettings, str]:
    """The steps and windows that fit the budget of work (see :data:`BUDGET_FACTOR`).

    Costs are in forwards of one window (:meth:`ModelFamily.relative_cost`), ``window_flop`` the operations of
    one; separation runs that forward over the song ``separation_passes`` times (segments overlapping by a
    quarter: 4/3; an MSST model's ``num_overlap``).
    Windows stop overlapping (hop = window); the most informative ones (most labelled silence) are kept when not
    all fit in :data:`PREFIX_SHARE` of the budget, each costing its frozen part and, with ``checks``, the
    held-out checks before and after training (a forward of the trained part each); the rest of the budget is
    steps, at most :data:`MAX_PASSES` passes over the windows, with ``checks`` each carrying its share of the
    checks made every :data:`~ugosa_cli.decision.CHECK_EVERY` steps.
    """
    window = int(round(settings.window * samplerate))
    available = max(1, math.ceil(frames / window))
    separation = max(frames / window, 1.0) * separation_passes
    budget = max(BUDGET_FACTOR * separation, MIN_BUDGET_FLOP / max(window_flop, 1.0))
    per_window = prefix_cost + (2 * (1 - prefix_cost) if checks else 0.0)
    windows = min(available, max(1, int(PREFIX_SHARE * budget // per_window)))
    check = (1 - prefix_cost) * windows / CHECK_EVERY if checks else 0.0  # a check's forwards, per step
    steps = int((budget - windows * per_window) // (step_cost + check))
    steps = max(1, min(steps, MAX_PASSES * math.ceil(windows / settings.batch_size)))
    planned = dataclasses.replace(settings, hop=settings.window, steps=steps,
                                  max_windows=windows if windows < available else None)
    summary = (
        f"CPU plan: {steps} steps over {windows} non-overlapping {settings.window:g} s window(s), about the work "
        f"of {budget / separation:.1f} separation(s) of the song; --protocol paper runs the paper's schedule"
    )
    return planned, summary


def separation_passes(model: SeparationModel) -> float:
    """How many times separation runs the network over each sample with its own overlap (demucs' quarter: 4/3; an
    MSST model's ``num_overlap``)."""
    if model.fade_chunking is not None:
        return float(model.fade_chunking.overlaps)
    return 1 / (1 - DEFAULT_OVERLAP)


def mostly_silent(activations: np.ndarray, sources: Sequence[str], limit: float = MOSTLY_SILENT) -> dict[str, float]:
    """Sources labelled silent for more than ``limit`` of the song that still play somewhere: name -> silent share."""
    shares = (np.asarray(activations) < 0.5).mean(axis=1)
    return {name: float(share) for name, share in zip(sources, shares) if limit < share < 1}


def resting_sources(activations: np.ndarray, sources: Sequence[str]) -> tuple[str, ...]:
    """The sources labelled silent somewhere (the ones the silence term learns from)."""
    return tuple(name for name, rests in zip(sources, rests_somewhere(activations)) if rests)


def too_few_rests(resting: Sequence[str], sources: Sequence[str]) -> bool:
    """Whether labels with rests for only ``resting`` of ``sources`` are better applied to the pretrained stems
    than adapted to: no more than :data:`RESTING_SHARE_TO_ADAPT` of them rest (none: nothing to adapt from)."""
    return len(resting) <= RESTING_SHARE_TO_ADAPT * len(sources)


NO_REST_WARNING = (
    "the labels mark no source as silent anywhere in the song, so there is nothing to adapt from: the pretrained "
    "stems are only re-split to add up to the mix (as --resplit does); label where instruments rest (or check "
    "that the labels belong to this song)"
)


def filter_note(resting: Sequence[str], sources: Sequence[str], strategy: Strategy) -> str:
    """The plan's line when the labels are applied to the pretrained stems instead of adapting."""
    if not resting:
        return "not adapting: no labelled rest"
    needed = math.floor(RESTING_SHARE_TO_ADAPT * len(sources)) + 1
    return (
        f"not adapting: the labels give rests for {', '.join(resting)} only; with rests of fewer than {needed} of "
        f"the {len(sources)} sources, applying the labels to the pretrained stems (as --resplit does) gained "
        f"more than adapting on the demo model's tuning songs (BENCHMARKS.md, \"Rests of few sources\"); "
        f"label where the others rest, or give --strategy {strategy} to adapt anyway"
    )


def few_rests_warning(resting: Sequence[str], sources: Sequence[str]) -> str:
    """The warning for adapting anyway from labels with rests of too few sources (:func:`too_few_rests`)."""
    others = [name for name in sources if name not in resting]
    return (
        f"rests labelled for {', '.join(resting)} only ({', '.join(others)}: no labelled rest): adapting holds "
        "those near the pretrained stems (--anchor) and gains less than applying the labels to the pretrained "
        "stems (with the vocals' rests alone +0.16 against +0.51 dB mean SDR on the demo model's held-out songs, "
        "-0.05 against +0.29 on another generator's; BENCHMARKS.md, \"Rests of few sources\"); "
        "label where the others rest (`ugosa labels draft` drafts them), or apply the labels without training: "
        "`ugosa separate --labels` without --strategy does"
    )


def _duration(seconds: float) -> str:
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} minutes"
    return f"{seconds / 3600:.0f} hours" if seconds < 2 * 86400 else f"{seconds / 86400:.0f} days"


def slow_cpu_warning(model: SeparationModel, step_seconds: float, prefix_seconds: float, plan_seconds: float,
                     frames: int, memory_bytes: int) -> str:
    """The plan's warning when a measured training step, or the frozen part of a window, takes over
    :data:`SLOW_CPU_STEP_SECONDS` on the CPU: what this plan and the paper's protocol take here (windows
    prepared once, then the steps), and the GPU adapting such a model takes."""
    paper = AdaptationSettings(**PAPER_SETTINGS)
    rate = model.samplerate
    windows = len(window_starts(frames, int(round(paper.window * rate)), int(round(paper.hop * rate))))
    paper_steps = paper.epochs * windows
    paper_seconds = windows * prefix_seconds + paper_steps * step_seconds
    return (
        f"{family_of(model).name} at this size is too slow to adapt on a CPU: one training step took "
        f"{step_seconds:.0f} s here and the frozen part of each window {prefix_seconds:.0f} s, so this plan takes "
        f"about {_duration(plan_seconds)} and the paper's protocol ({paper_steps} steps over {windows} "
        f"window{'s' if windows != 1 else ''} of this song) about {_duration(paper_seconds)}; adapting it takes a CUDA GPU (--device cuda) with at least "
        f"{max(1, math.ceil(memory_bytes / 2**30))} GiB of memory"
    )


@dataclass
class AdaptationPlan:
    """What an adaptation will do, decided before it trains; :attr:`adapter` runs it."""

    strategy: Strategy
    settings: AdaptationSettings
    trains: str
    trainable_parameters: int
    device: str
    windows: int
    steps: int
    estimated_seconds: float | None
    estimated_memory_bytes: int
    plan: str  # where the settings come from
    notes: list[str]
    warnings: list[str]
    adapter: Adapter = field(repr=False, compare=False)
    resplits: bool = False  # the labels are applied to the pretrained stems (the resplit filter) instead

    def to_dict(self) -> dict[str, object]:
        """JSON-ready (as ``--json`` and ``--dry-run`` print it)."""
        return {
            "strategy": self.strategy.name,
            "trains": self.trains,
            "trainable_parameters": self.trainable_parameters,
            "device": self.device,
            "windows": self.windows,
            "steps": self.steps,
            "estimated_seconds": self.estimated_seconds,
            "estimated_memory_bytes": self.estimated_memory_bytes,
            "plan": self.plan,
            "settings": self.settings.to_dict(),
            "notes": list(self.notes),
            "warnings": list(self.warnings),
            "resplits": self.resplits,
        }


def plan_adaptation(
    loaded: LoadedModel,
    mix: np.ndarray,
    activations: np.ndarray,
    request: AdaptationRequest,
    device: torch.device,
    *,
    references: np.ndarray | None = None,
    estimate: bool = True,
    filter_few: bool = False,
) -> AdaptationPlan:
    """The plan of adapting ``loaded.model`` to one song: ``mix`` (channels, frames) and ``activations``
    (sources, frames) at the model's rate, ``references`` (sources, channels, frames) for S- strategies.

    With ``filter_few`` (``separate``), labels with rests of too few sources (:func:`too_few_rests`) plan no
    training unless a strategy was asked for: the plan :attr:`~AdaptationPlan.resplits` instead.

    With ``estimate`` a few steps are timed (no update is made) to estimate the training time; the CPU
    plan always times them.
    """
    model = loaded.model
    recommended = recommendation(loaded, request.protocol)
    settings = resolve_settings(request, recommended, cuda=device.type == "cuda", longest_window=longest_window(model))
    strategy = settings.strategy
    resting = resting_sources(activations, model.sources)
    few_rests = strategy.loss is Loss.PROPOSED and too_few_rests(resting, model.sources)
    resplits = filter_few and few_rests and request.strategy is None
    note = (f"the settings {loaded.name} recommends" if recommended
            else "the paper's protocol" if request.protocol == "paper" else "ugosa's settings")
    if resplits:
        note = filter_note(resting, model.sources, strategy)
        settings = dataclasses.replace(settings, strategy=B0)
        strategy = B0
    check_available(model, strategy)
    if strategy.loss is Loss.SUPERVISED and references is None:
        raise SettingError("references", None, f"strategy {strategy.name} needs the true stems")
    adapter = Adapter(model, mix, activations, settings, references=references, device=device)
    if strategy.cut is not None and uses_cpu_budget(request, recommended, device):
        assert adapter.split is not None
        family = family_of(model)
        prefix_cost, step_cost = family.relative_cost(model, strategy.cut, recompute=adapter.plans_recompute)
        if adapter.anchors:
            step_cost *= 1 + ANCHOR_STEP_SHARE
        settings, note = fit_to_budget(settings, frames=mix.shape[1], samplerate=model.samplerate,
                                       step_cost=step_cost, prefix_cost=prefix_cost,
                                       window_flop=family.forward_flops(model, adapter.window),
                                       checks=adapter.checks,
                                       separation_passes=separation_passes(model))
        adapter = Adapter(model, mix, activations, settings, references=references, device=device)
    seconds = None
    if not strategy.trains:
        seconds = 0.0
    warnings = [NO_REST_WARNING] if resplits and not resting else []
    if strategy.trains and estimate:  # timing only informs the estimate (and a warning), never the plan
        step_s, prefix_s = adapter.measure()
        seconds = round(adapter.estimate_seconds(step_s, prefix_s), 1)
        if device.type == "cpu" and max(step_s, prefix_s) > SLOW_CPU_STEP_SECONDS:
            warnings.append(slow_cpu_warning(model, step_s, prefix_s, seconds, mix.shape[1], adapter.memory_estimate()))
    if strategy.loss is Loss.PROPOSED:
        for name, share in mostly_silent(activations, model.sources).items():
            warnings.append(
                f"{name} is labelled silent for {share:.0%} of the song: the proposed loss tends to silence it "
                "where it plays as well; check its stem (or keep the model as is and apply the labels to "
                "the output: --strategy B0 --resplit)"
            )
        if few_rests:
            warnings.append(few_rests_warning(resting, model.sources))
    return AdaptationPlan(
        strategy=strategy,
        settings=settings,
        trains=describe_trainable(model, strategy),
        trainable_parameters=count_trainable(model, strategy),
        device=str(device),
        windows=len(adapter.starts) if strategy.trains else 0,
        steps=adapter.total_steps if strategy.trains else 0,
        estimated_seconds=seconds,
        estimated_memory_bytes=adapter.memory_estimate(),
        plan=note,
        notes=adapter.notes if strategy.trains else [],
        warnings=warnings,
        adapter=adapter,
        resplits=resplits,
    )
