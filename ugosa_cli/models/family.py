"""The seam between the adaptation and a network: what a model family must say about its cut points.

A family (ConvTasNet, ...) defines, for each cut point ``Lk`` its networks have, which parts train and
how the network runs as a frozen prefix (computed once per training window and cached) followed by a
trainable suffix. Adding a family means one model module plus one :class:`ModelFamily`, registered in
:mod:`ugosa_cli.models`; nothing else changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import torch
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode
from torch.utils.flop_counter import FlopCounterMode

PrefixState = tuple[Tensor, ...]  # every tensor with the batch first, so windows concatenate along dim 0

# What a separation network of any family can be run at and on. A model file's configuration states its sample
# rate and its segment (the length it separates at once), and nothing in its weights bounds them, though they size
# every separation's work and memory: each family's configuration checks them against these when a file is read.
MODEL_RATES = (8000, 192000)  # Hz: telephone band to high-resolution audio
MAX_AUDIO_CHANNELS = 2  # ugosa separates mono or stereo audio
# The longest segment: above a minute a segment needs gigabytes of memory for no gain (the cross-fades between
# segments already hide the seams). ``separate --segment`` has the same limit.
MAX_SEGMENT_SECONDS = 60.0


# A size in a model file's configuration (channels, layers, filter lengths) is refused above this many times the
# released model's: every network is first built from its configuration (on PyTorch's meta device, allocating
# nothing) to check the file's weights against it, and absurd sizes would make even that take hours.
MAX_SIZE_FACTOR = 16


def oversized(values: Mapping[str, float], released: Mapping[str, float]) -> str | None:
    """The first of ``values`` above :data:`MAX_SIZE_FACTOR` times the ``released`` model's, in words, or ``None``."""
    for name, size in released.items():
        if values[name] > MAX_SIZE_FACTOR * size:
            return f"{name} {values[name]!r} is more than {MAX_SIZE_FACTOR} times the released model's {size!r}"
    return None


def rate_and_segment_problem(samplerate: int, audio_channels: int, segment_samples: int, shortest: int) -> str | None:
    """What is wrong with a configuration's sample rate, channel count and segment (samples), or ``None``.

    ``shortest``: the fewest samples a segment of the family can hold (one filter, one STFT window).
    """
    low, high = MODEL_RATES
    if not low <= samplerate <= high:
        return f"samplerate {samplerate} is outside the rates separation models run at ({low} to {high} Hz)"
    if audio_channels > MAX_AUDIO_CHANNELS:
        return f"audio_channels {audio_channels}: ugosa separates mono or stereo audio (1 or 2 channels)"
    longest = int(MAX_SEGMENT_SECONDS * samplerate)
    if not shortest <= segment_samples <= longest:
        return (f"a segment of {segment_samples} samples is outside what the model can separate at once "
                f"({shortest} to {longest} samples, the most being {MAX_SEGMENT_SECONDS:g} s)")
    return None


# The in-place random fills weight initialisers draw with (``torch.nn.init``, the modules' ``reset_parameters``).
_RANDOM_FILLS = frozenset({
    Tensor.normal_, Tensor.uniform_, Tensor.log_normal_, Tensor.cauchy_, Tensor.exponential_, Tensor.geometric_,
    Tensor.random_, Tensor.bernoulli_,
})


class _NoRandomInit(TorchFunctionMode):
    """While active, a network's constructor draws no random initial values for its parameters (nor for any tensor
    on the meta device): they keep what they were allocated with. For a network whose every parameter is then
    loaded from a state dict, or that is only built on the meta device to read its shapes, the draws are wasted:
    a quarter of a second for the released ConvTasNet on the CPU, and on the meta device PyTorch runs ``normal_``
    through its compiler stack, whose first import takes seconds."""

    def __torch_function__(self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        # torch.nn.init's initialisers (in-place fills that return their tensor) come here as themselves, and the
        # fills they make inside then reach only the modes below this one: both are caught.
        if func in _RANDOM_FILLS or getattr(func, "__module__", None) == "torch.nn.init":
            tensor = args[0] if args else kwargs.get("tensor")
            if isinstance(tensor, Tensor) and (isinstance(tensor, nn.Parameter) or tensor.is_meta):
                return tensor
        return func(*args, **kwargs)


def state_mismatch(build: Callable[[], nn.Module], state: Mapping[str, Tensor]) -> str | None:
    """How ``state`` (a loaded state dict) differs from what ``build()`` makes, or ``None`` if it matches.

    The network is built on PyTorch's meta device, so nothing is allocated: a model file whose configuration
    asks for terabytes of weights is refused for its mismatch, and a real network is only built for a state
    dict that matches it (whose size the file already bounds)."""
    with torch.device("meta"), _NoRandomInit():
        expected = {key: tuple(value.shape) for key, value in build().state_dict().items()}
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        return f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}"
    for key, tensor in state.items():
        if not isinstance(tensor, Tensor):
            return f"{key} is a {type(tensor).__name__}, not a tensor"
        if tuple(tensor.shape) != expected[key]:
            return f"{key} has shape {tuple(tensor.shape)}, expected {expected[key]}"
    return None


NetworkT = TypeVar("NetworkT", bound=nn.Module)


def build_loaded(build: Callable[[], NetworkT], state: Mapping[str, Tensor]) -> NetworkT:
    """``build()`` with ``state`` loaded strictly, for a ``state`` :func:`state_mismatch` found matching.

    The random initial values the constructor would draw for the parameters are skipped, since the strict load
    replaces every parameter (buffers are built as usual); the network is the one a plain build and load give."""
    with _NoRandomInit():
        network = build()
    network.load_state_dict(state, strict=True)
    return network


def counted_flops(model: nn.Module, samples: int) -> float:
    """Floating-point operations of one inference forward of ``model`` on ``samples`` of audio, counted by
    PyTorch's FLOP counter with the network and the input on the meta device (shapes only: nothing is computed
    and the count is the same on every machine)."""
    weights = {name: torch.empty_like(tensor, device="meta")
               for name, tensor in [*model.named_parameters(), *model.named_buffers()]}
    mix = torch.empty(1, getattr(model, "audio_channels", 2), samples, device="meta")
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        torch.func.functional_call(model, weights, (mix,))
    return float(counter.get_total_flops())


def all_finite(tensors: Iterable[Tensor]) -> bool:
    """Whether every value of every tensor is finite (no NaN, no infinity), with one device sync."""
    checks = [tensor.isfinite().all() for tensor in tensors]
    return bool(torch.stack(checks).all()) if checks else True


def stems_from_normalised(stems: Tensor, mean: float, std: float) -> Tensor:
    """Stems (..., sources, channels, time) a network made of a mixture normalised as ``(mix - mean) / std``, back
    at the mixture's level: scaled by ``std``, each with an equal share of ``mean``, so that stems adding up to the
    normalised mixture add up to the mixture. (demucs adds all of ``mean`` to every stem: a constant offset then
    comes out once per stem, and the stems of a constant input add up to several times it.)"""
    return stems * std + mean / stems.shape[-3]


def stems_to_normalised(stems: Tensor, mean: float, std: float) -> Tensor:
    """The inverse of :func:`stems_from_normalised`: true stems as a network should make them (training targets)."""
    return (stems - mean / stems.shape[-3]) / std


@dataclass(frozen=True)
class FadeChunking:
    """How MSST's ``demix`` cuts a song for a network: chunks of the segment length every ``segment //
    overlaps`` samples, the song reflected at both ends, each chunk weighted by linear fades of a tenth of a
    chunk, msst's fades decided per batch of ``batch`` chunks (see :mod:`ugosa_cli.separation`)."""

    overlaps: int  # inference.num_overlap
    batch: int = 1  # inference.batch_size


class SeparationModel(nn.Module):
    """A separation network: a normalised mixture (batch, audio_channels, time) to stems
    (batch, sources, audio_channels, time), with what the separation loop needs to know of it."""

    @property
    def sources(self) -> tuple[str, ...]:
        """The stems it makes, in output order."""
        raise NotImplementedError

    @property
    def samplerate(self) -> int:
        raise NotImplementedError

    @property
    def audio_channels(self) -> int:
        raise NotImplementedError

    @property
    def segment_length(self) -> int:
        """Samples per segment when separating long inputs."""
        raise NotImplementedError

    @property
    def min_length(self) -> int:
        """The shortest input (samples) the network accepts."""
        raise NotImplementedError

    # How a chunk shorter than :meth:`valid_length` is completed before the network sees it: False, zeros
    # after it (demucs 2); True, centred in the song's own samples around it, zeros only outside the song
    # (demucs 4's ``TensorChunk.padded``). Either way the output is cut back to the chunk.
    centred_padding: bool = False
    # Draws the reference implementation takes from Python's random generator per forward call. With shifts,
    # demucs draws each shift's offset after the previous shift's forwards, so the loop advances its own
    # generator by as many draws to give the same offsets for the same seed.
    random_draws_per_forward: int = 0
    # How the separation loop cuts a song: None, demucs' segments weighted by triangles; else MSST's chunks.
    fade_chunking: FadeChunking | None = None
    # Whether the network sees the mixture normalised by the mean and standard deviation of its mono downmix
    # (demucs) or as it is (MSST models, unless their configuration asks for the normalisation).
    normalises_input: bool = True

    def valid_length(self, length: int, segment: int) -> int:
        """The input length the network is run on for a chunk of ``length`` samples, separating in segments
        of ``segment`` samples."""
        return max(length, self.min_length)

    @property
    def max_segment_length(self) -> int | None:
        """The longest segment (samples) the network takes, if it has a limit."""
        return None


class SplitModel(Protocol):
    """One network cut at one point: ``suffix(prefix(x), length)`` equals ``model(x)``.

    ``recompute``: the trained part keeps only its inputs for the backward pass and runs its forward again
    there (activation checkpointing): the same gradients for a fraction of the memory.
    """

    recompute: bool

    def prefix(self, mix: Tensor) -> PrefixState:
        """The frozen part on a normalised mixture (batch, channels, time), without gradients."""
        ...

    def suffix(self, state: PrefixState, length: int) -> Tensor:
        """The trainable part: stems (batch, sources, channels, length) from the prefix state."""
        ...

    def activation_bytes(self, batch: int, length: int) -> int:
        """Estimated memory the backward pass keeps for the trained part, for a batch of windows of ``length``."""
        ...


class ModelFamily(Protocol):
    """What a cut point means for the networks of one family."""

    name: str
    frozen: str  # what every strategy keeps frozen, in words ("encoder")

    def cuts(self, model: SeparationModel) -> tuple[int, ...]:
        """The cut points (1..5) this network has."""
        ...

    def trainable_parts(self, model: SeparationModel, cut: int) -> list[tuple[str, nn.Module]]:
        """The named modules cut ``cut`` trains, in network order; a setting error if the network lacks it."""
        ...

    def describe(self, model: SeparationModel, cut: int) -> str:
        """What cut ``cut`` trains, in words (``repeats 3-4 + mask conv + decoder``)."""
        ...

    def split(self, model: SeparationModel, cut: int) -> SplitModel:
        """The network as a frozen prefix and a trainable suffix at cut ``cut``."""
        ...

    def relative_cost(self, model: SeparationModel, cut: int, *, recompute: bool) -> tuple[float, float]:
        """(prefix, step): the work of computing the frozen prefix of one window, and of one training step on
        it, in units of one inference forward of that window; from the network's shape alone, so a plan
        made from it is the same on every run."""
        ...

    def forward_flops(self, model: SeparationModel, samples: int) -> float:
        """Floating-point operations of one inference forward on ``samples`` of audio, from the network's shape
        alone (:func:`counted_flops`, or a formula): the absolute size of the work that :meth:`relative_cost`
        measures in forwards."""
        ...
