"""One guided separation: a model, an optional adaptation to each song, an optional post-filter.

:class:`GuidedSeparator` is what ``ugosa separate``, ``ugosa demo``, ``ugosa bench`` and the benchmarks
run (the counterpart of demucs' ``api.Separator``). Per song it resets the model to its pretrained state,
plans and runs the adaptation from the song's labels, then separates the song, block by block from a
file (:meth:`stem_blocks`) or as one array (:meth:`separate_array`), and applies the labels to the stems:

- ``gate``: each stem silenced outside its labelled regions (:class:`~ugosa_cli.postfilters.Gate`);
- ``resplit``: a label-constrained Wiener filter (:class:`~ugosa_cli.postfilters.Resplit`) that shares what the
  stems labelled active leave unexplained of the mixture among them (the *resplit rule*,
  :meth:`GuidedSeparator.resplit_rule`); after adapting it is guided by the mean of the pretrained and the
  adapted model's stems (the *guide rule*, :meth:`GuidedSeparator.guide`). Both were chosen on tuning songs
  (BENCHMARKS.md).

With ``filter_few`` (what ``ugosa separate`` does), labels that give rests for too few sources to adapt from
(:func:`~ugosa_cli.planning.too_few_rests`) are applied to the pretrained stems with ``resplit`` instead,
for that song, unless a strategy or another post-filter was asked for.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import torch

from ugosa_cli.adaptation import AdaptationResult, StepReport
from ugosa_cli.audio import Audio, fit_length, fit_notes, match_channels, resample
from ugosa_cli.checkpoint import LoadedModel
from ugosa_cli.errors import SettingError
from ugosa_cli.labels import Labels, activation_matrix
from ugosa_cli.models.family import SeparationModel
from ugosa_cli.planning import (
    AdaptationPlan,
    AdaptationRequest,
    longest_window,
    plan_adaptation,
    recommendation,
    resolve_settings,
    resolve_strategy,
)
from ugosa_cli.postfilters import POST_FILTERS, RESPLIT_MODES, StemFilter, label_filter
from ugosa_cli.separation import (
    AudioBlocks,
    ProgressCallback,
    SeparationOptions,
    check_options,
    mean_blocks,
    separate_array,
    separate_blocks,
    stem_channel_blocks,
)
from ugosa_cli.strategy import B0, Strategy

# A pass-through that watches a stream of stem blocks (a meter of the report page) and gives them on unchanged.
BlockTap = Callable[[Iterable[np.ndarray]], Iterator[np.ndarray]]
RESPLIT_GUIDES = ("mean", "adapted")  # "adapted": the adapted model's stems alone (an experiment, BENCHMARKS.md)
# The resplit rule (mode, guard band in seconds), before and after adapting (after adapting guided by the mean of
# both models' stems, the guide rule): each stem labelled active keeps its own sound and gains its share of what
# they leave unexplained of the mixture, the borders trusted as labelled. Re-splitting the whole mixture ("mix")
# re-estimated good stems too and cost up to 1.4 dB on songs a model separates well; only what the resting stems
# hold ("stems") left the stems short of the mixture (BENCHMARKS.md, "Deciding what to write").
RESPLIT_RULE = ("unexplained", 0.0)


@dataclass
class SongStems:
    """One song's stems (sources, channels, frames) at the model's rate.

    ``written``: what ugosa writes (post-filtered when a filter is set); ``model``: the model's own stems;
    ``pretrained``: the pretrained model's, when they were needed (the resplit guide after adapting).
    """

    written: np.ndarray
    model: np.ndarray
    pretrained: np.ndarray | None = None


class GuidedSeparator:
    """A loaded model that adapts to each song from its labels (``adaptation``) and filters its stems by
    them (``post_filter``: None, "gate" or "resplit").

    The model is adapted in place; :meth:`reset` (called by every :meth:`plan`) brings back the
    pretrained weights, so one object serves a whole batch of songs.
    """

    def __init__(
        self,
        loaded: LoadedModel,
        *,
        device: torch.device | None = None,
        options: SeparationOptions = SeparationOptions(),
        adaptation: AdaptationRequest | None = None,
        post_filter: str | None = None,
        resplit_guide: str = "mean",
        resplit_mode: str | None = None,
        filter_guard: float | None = None,
        filter_few: bool = False,
    ) -> None:
        if post_filter is not None and post_filter not in POST_FILTERS:
            raise SettingError("post_filter", post_filter, f"use one of {', '.join(POST_FILTERS)}")
        if resplit_guide not in RESPLIT_GUIDES:
            raise SettingError("resplit_guide", resplit_guide, f"use one of {', '.join(RESPLIT_GUIDES)}")
        if resplit_mode is not None and resplit_mode not in RESPLIT_MODES:
            raise SettingError("resplit_mode", resplit_mode, f"use one of {', '.join(RESPLIT_MODES)}")
        check_options(loaded.model, options)
        self.loaded = loaded
        self.model = loaded.model
        self.device = device or torch.device("cpu")
        self.options = options
        self.adaptation = adaptation
        self.post_filter = post_filter
        self.resplit_guide = resplit_guide
        # None: the resplit rule (:meth:`resplit_rule`); a benchmark may set either.
        self.resplit_mode = resplit_mode
        self.filter_guard = filter_guard  # seconds at each labelled border where the post-filter lets a source play
        self.filter_few = filter_few
        self.song_filter: str | None = None  # the post-filter of this song's plan (resplit when it filters instead)
        self.strategy: Strategy = B0
        if adaptation is not None:
            recommended = recommendation(loaded, adaptation.protocol)
            self.strategy = resolve_strategy(adaptation, recommended)
            # Every setting checked (the hop against the window the plan will use) before any song is read.
            resolve_settings(adaptation, recommended, cuda=self.device.type == "cuda",
                             longest_window=longest_window(self.model))
        self._pretrained_state = (
            {key: value.detach().clone() for key, value in self.model.state_dict().items()}
            if adaptation is not None
            else None
        )
        self._pretrained: SeparationModel | None = None
        self.adapted = False  # whether the model holds adapted weights now

    @property
    def name(self) -> str:
        """The model's name in output paths: ``<model>-adapted`` when songs are adapted to."""
        return f"{self.loaded.name}-adapted" if self.strategy.trains else self.loaded.name

    @property
    def sources(self) -> tuple[str, ...]:
        return tuple(self.model.sources)

    def reset(self) -> None:
        """Bring back the pretrained weights (frozen, in eval mode)."""
        if self._pretrained_state is not None:
            self.model.load_state_dict(self._pretrained_state)
        for parameter in self.model.parameters():
            parameter.requires_grad_(False)
        self.model.eval()
        self.adapted = False
        self.song_filter = None

    # --- adaptation ----------------------------------------------------------------------------------

    def plan(
        self,
        audio: Audio,
        labels: Labels,
        *,
        references: Mapping[str, Audio] | None = None,
        downmix: bool = False,
        estimate: bool = True,
    ) -> AdaptationPlan:
        """Reset, then plan the adaptation to one song (any rate and channels) from its labels."""
        model = self.model
        mix = resample(match_channels(audio.samples, model.audio_channels, downmix=downmix, label=audio.source),
                       audio.samplerate, model.samplerate)
        activations = activation_matrix(labels, model.samplerate, mix.shape[1])
        refs = None
        if references:
            missing = [name for name in model.sources if name not in references]
            if missing:
                raise SettingError("references", None, f"no stem for {', '.join(missing)}; give one file per source "
                                   f"({', '.join(model.sources)})")
            refs = np.stack([self._at_model_rate(references[name], mix.shape[1]) for name in model.sources])
        plan = self.plan_array(mix, activations, references=refs, estimate=estimate)
        for reference in (references[name] for name in model.sources) if references else ():
            plan.warnings.extend(fit_notes(reference, audio.samplerate, audio.frames, "the song's"))
        return plan

    def plan_array(
        self,
        mix: np.ndarray,
        activations: np.ndarray,
        *,
        references: np.ndarray | None = None,
        request: AdaptationRequest | None = None,
        estimate: bool = True,
    ) -> AdaptationPlan:
        """Reset, then plan from a mixture (channels, frames) and activations (sources, frames) at the model's
        rate; ``request`` replaces the separator's own (a benchmark trying strategies in turn)."""
        request = request or self.adaptation
        if request is None:
            raise SettingError("adaptation", None, "this separator was made without an adaptation request")
        self.reset()
        plan = plan_adaptation(self.loaded, mix, activations, request, self.device, references=references,
                               estimate=estimate, filter_few=self.filter_few)
        if plan.resplits:
            self.song_filter = "resplit"
        return plan

    def adapt(
        self, plan: AdaptationPlan, progress: Callable[[StepReport], None] | None = None, *, follow_check: bool = True
    ) -> AdaptationResult:
        """Run a plan made by :meth:`plan`: the model is adapted in place.

        With ``follow_check`` (``separate --labels``) the held-out check decides what the song's stems are made
        from (:mod:`ugosa_cli.decision`): it may say not to train at all, and when it says that adapting did not
        help, the pretrained weights come back (and the post-filter applies the labels to the pretrained stems).
        Without it (``adapt``, which keeps the adapted model) the result only reports the check."""
        result = plan.adapter.run(progress, decide_first=follow_check)
        self.adapted = result.trained
        if follow_check and result.decision is not None and not result.decision.adapted:
            self.reset()
        return result

    # --- separation ----------------------------------------------------------------------------------

    def stem_blocks(
        self,
        audio: AudioBlocks,
        labels: Labels | None = None,
        progress: ProgressCallback | None = None,
        *,
        downmix: bool = False,
        pretrained_tap: BlockTap | None = None,
    ) -> Iterator[np.ndarray]:
        """The song's stems (sources, channels, n) at its rate and channel count, block by block, post-filtered
        by ``labels`` when a filter is set.

        ``pretrained_tap`` wraps the stream of the pretrained model's stems where they are made anyway
        (:meth:`computes_pretrained`): the model's own stems before the filter, or the resplit's guide."""
        tap: BlockTap = pretrained_tap or iter
        blocks: Iterable[np.ndarray] = separate_blocks(
            self.model, audio, self.options, self.device, progress, downmix=downmix
        )
        if not self.adapted:
            blocks = tap(blocks)
        stem_filter = self._filter(labels, audio.samplerate, audio.frames, lambda: stem_channel_blocks(audio, downmix=downmix))
        if stem_filter is None:
            return iter(blocks)
        guide = None
        if self._guided_by_both():
            blocks, own = itertools.tee(blocks)
            guide = self.guide(own, tap(self.pretrained_blocks(audio, downmix=downmix)))
        return iter(stem_filter.stream(blocks, guide))

    def computes_pretrained(self) -> bool:
        """Whether :meth:`stem_blocks` makes the pretrained model's stems anyway: before adapting (they are the
        model's own), or as the resplit's guide after."""
        return not self.adapted or self._guided_by_both()

    def pretrained_blocks(self, audio: AudioBlocks, *, downmix: bool = False) -> Iterator[np.ndarray]:
        """The pretrained model's stems of a song (as :meth:`stem_blocks` gives them, unfiltered)."""
        model = self._pretrained_model() if self.adapted else self.model
        return separate_blocks(model, audio, self.options, self.device, downmix=downmix)

    def separate_array(
        self,
        mix: np.ndarray,
        labels: Labels | None = None,
        progress: ProgressCallback | None = None,
        *,
        pretrained: np.ndarray | None = None,
    ) -> SongStems:
        """Separate a mixture (model channels, frames) at the model's rate; ``pretrained``: the pretrained
        model's stems of it when already known (they guide the resplit after adapting)."""
        stems = separate_array(self.model, mix, self.options, self.device, progress)
        return self.filter_array(mix, stems, labels, pretrained=pretrained)

    def filter_array(
        self, mix: np.ndarray, stems: np.ndarray, labels: Labels | None = None, *, pretrained: np.ndarray | None = None
    ) -> SongStems:
        """Apply the post-filter to stems (sources, channels, frames) the model made of ``mix`` at its rate (a
        benchmark scoring several filters of one separation); ``pretrained`` as for :meth:`separate_array`."""
        stem_filter = self._filter(labels, self.model.samplerate, mix.shape[-1], lambda: [mix])
        if stem_filter is None:
            return SongStems(stems, stems, pretrained)
        guide = None
        if self._guided_by_both():
            if pretrained is None:
                pretrained = separate_array(self._pretrained_model(), mix, self.options, self.device)
            guide = [next(iter(self.guide([stems], [pretrained])))]
        written = np.concatenate(list(stem_filter.stream([stems], guide)), axis=-1)
        return SongStems(written, stems, pretrained)

    @staticmethod
    def guide(adapted: Iterable[np.ndarray], pretrained: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """The guide rule: after adapting, the resplit is guided by the mean of the adapted and the pretrained
        model's stems (streams of blocks of the same song, any block sizes)."""
        return mean_blocks(adapted, pretrained)

    def resplit_rule(self) -> tuple[str, float]:
        """The resplit's mode and guard band: :data:`RESPLIT_RULE`, each part unless set on the separator."""
        mode, guard = RESPLIT_RULE
        return (mode if self.resplit_mode is None else self.resplit_mode,
                guard if self.filter_guard is None else self.filter_guard)

    @property
    def active_filter(self) -> str | None:
        """The post-filter applied now: the one asked for, else the song plan's."""
        return self.post_filter or self.song_filter

    def _guided_by_both(self) -> bool:
        return self.active_filter == "resplit" and self.adapted and self.resplit_guide == "mean"

    def _pretrained_model(self) -> SeparationModel:
        """A copy of the model with its pretrained weights, made once."""
        assert self._pretrained_state is not None
        if self._pretrained is None:
            self._pretrained = copy.deepcopy(self.model)
            self._pretrained.load_state_dict(self._pretrained_state)
            self._pretrained.eval()
        return self._pretrained

    def _filter(
        self, labels: Labels | None, samplerate: int, frames: int, mixture: Callable[[], Iterable[np.ndarray]]
    ) -> StemFilter | None:
        post_filter = self.active_filter
        if post_filter is None:
            return None
        if labels is None:
            raise SettingError("post_filter", post_filter, "needs the song's labels")
        mode, guard = self.resplit_rule()
        if post_filter == "gate":
            guard = self.filter_guard or 0.0
        return label_filter(post_filter, labels, samplerate, frames, mixture, mode=mode, guard=guard)

    def _at_model_rate(self, audio: Audio, frames: int) -> np.ndarray:
        model = self.model
        samples = resample(match_channels(audio.samples, model.audio_channels, label=audio.source),
                           audio.samplerate, model.samplerate)
        return fit_length(samples, frames)


def with_strategy(request: AdaptationRequest, strategy: Strategy) -> AdaptationRequest:
    """The same request with another strategy (a benchmark trying each in turn)."""
    return dataclasses.replace(request, strategy=strategy)


__all__ = ["POST_FILTERS", "RESPLIT_GUIDES", "GuidedSeparator", "SongStems", "with_strategy"]
