"""A bag of models: several networks of one kind whose stems are averaged with per-source weights.

demucs 4 ships ``htdemucs_ft`` as such a bag (demucs' ``BagOfModels``): four fine-tuned HT-Demucs, each
used for one source only (one-hot weights). The separation loop runs each member over the song as it
would run a single model (its own random shifts, drawn in member order, as demucs does) and combines the
members' stems per source; :meth:`ModelBag.forward` does the same for one chunk.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import torch
from torch import Tensor, nn

from ugosa_cli.errors import InputError
from ugosa_cli.models.family import ModelFamily, PrefixState, SeparationModel, SplitModel


class ModelBag(SeparationModel):
    """Members (each mapping (batch, channels, time) to (batch, sources, channels, time)) and their weights
    (members, sources); a source's stem is the weighted mean of the members' estimates of it."""

    weights: Tensor

    def __init__(self, members: Sequence[SeparationModel], weights: Sequence[Sequence[float]] | None = None) -> None:
        super().__init__()
        if not members:
            raise InputError("a bag of models needs at least one model")
        first = members[0]
        for member in members[1:]:
            same = (member.sources, member.samplerate, member.audio_channels, member.segment_length, type(member))
            if same != (first.sources, first.samplerate, first.audio_channels, first.segment_length, type(first)):
                raise InputError("the models of a bag must share their kind, sources, rate, channels and segment")
        table = [[1.0] * len(first.sources) for _ in members] if weights is None else [list(w) for w in weights]
        if len(table) != len(members) or any(len(row) != len(first.sources) for row in table):
            raise InputError(f"a bag of {len(members)} models needs one weight per model and source")
        try:
            matrix = torch.tensor(table, dtype=torch.float32)
        except (TypeError, ValueError, RuntimeError):
            raise InputError("bag weights must be numbers") from None
        if not (matrix.isfinite().all() and matrix.sum(dim=0).isfinite().all()):
            raise InputError("bag weights must be finite numbers (no NaN, no infinity)")
        if (matrix < 0).any() or (matrix.sum(dim=0) <= 0).any():
            raise InputError("bag weights must be 0 or more, with some weight for every source")
        self.members = nn.ModuleList(members)
        self.register_buffer("weights", matrix, persistent=False)
        self.centred_padding = first.centred_padding
        self.random_draws_per_forward = first.random_draws_per_forward
        self.fade_chunking = first.fade_chunking
        self.normalises_input = first.normalises_input

    def member(self, index: int) -> SeparationModel:
        member = self.members[index]
        assert isinstance(member, SeparationModel)
        return member

    @property
    def shares(self) -> Tensor:
        """(members, sources): each member's share of each source's stem (columns sum to 1)."""
        return self.weights / self.weights.sum(dim=0, keepdim=True)

    @property
    def sources(self) -> tuple[str, ...]:
        return self.member(0).sources

    @property
    def samplerate(self) -> int:
        return self.member(0).samplerate

    @property
    def audio_channels(self) -> int:
        return self.member(0).audio_channels

    @property
    def segment_length(self) -> int:
        return self.member(0).segment_length

    @property
    def min_length(self) -> int:
        return self.member(0).min_length

    @property
    def max_segment_length(self) -> int | None:
        return self.member(0).max_segment_length

    def valid_length(self, length: int, segment: int) -> int:
        return self.member(0).valid_length(length, segment)

    def forward(self, mix: Tensor) -> Tensor:
        shares = self.shares.to(mix.device)
        out = None
        for index in range(len(self.members)):
            part = self.member(index)(mix) * shares[index][:, None, None]
            out = part if out is None else out + part
        assert out is not None
        return out


class BagSplit:
    """Each member cut at the same point; the prefix states side by side, the stems combined per source."""

    def __init__(self, bag: ModelBag, splits: list[SplitModel]) -> None:
        self.bag = bag
        self.splits = splits
        self._sizes: list[int] = []

    @property
    def recompute(self) -> bool:
        return any(split.recompute for split in self.splits)

    @recompute.setter
    def recompute(self, value: bool) -> None:
        for split in self.splits:
            split.recompute = value

    def prefix(self, mix: Tensor) -> PrefixState:
        states = [split.prefix(mix) for split in self.splits]
        self._sizes = [len(state) for state in states]
        return tuple(tensor for state in states for tensor in state)

    def suffix(self, state: PrefixState, length: int) -> Tensor:
        shares = self.bag.shares.to(state[0].device)
        out = None
        start = 0
        for index, (split, size) in enumerate(zip(self.splits, self._sizes, strict=True)):
            part = split.suffix(state[start : start + size], length) * shares[index][:, None, None]
            out = part if out is None else out + part
            start += size
        assert out is not None
        return out

    def activation_bytes(self, batch: int, length: int) -> int:
        return sum(split.activation_bytes(batch, length) for split in self.splits)


class BagFamily:
    """A bag's cut points are its members' (a strategy trains the same part of every member); each member
    learns from the loss through its share of the stems (with one-hot weights, its own source's part)."""

    name = "bag"
    frozen = "in every model of the bag, what its family keeps frozen"

    @staticmethod
    def _member_family(model: SeparationModel) -> ModelFamily:
        from ugosa_cli.models import family_of

        assert isinstance(model, ModelBag)
        return family_of(model.member(0))

    def cuts(self, model: SeparationModel) -> tuple[int, ...]:
        return self._member_family(model).cuts(cast(ModelBag, model).member(0))

    def trainable_parts(self, model: SeparationModel, cut: int) -> list[tuple[str, nn.Module]]:
        bag = cast(ModelBag, model)
        family = self._member_family(bag)
        return [(f"model {index + 1} {name}", module) for index in range(len(bag.members))
                for name, module in family.trainable_parts(bag.member(index), cut)]

    def describe(self, model: SeparationModel, cut: int) -> str:
        bag = cast(ModelBag, model)
        return f"{self._member_family(bag).describe(bag.member(0), cut)}, in each of the {len(bag.members)} models"

    def split(self, model: SeparationModel, cut: int) -> BagSplit:
        bag = cast(ModelBag, model)
        family = self._member_family(bag)
        return BagSplit(bag, [family.split(bag.member(index), cut) for index in range(len(bag.members))])

    def relative_cost(self, model: SeparationModel, cut: int, *, recompute: bool) -> tuple[float, float]:
        """The same shares as one member: a bag's forward costs every member's, and so does its step."""
        bag = cast(ModelBag, model)
        return self._member_family(bag).relative_cost(bag.member(0), cut, recompute=recompute)

    def forward_flops(self, model: SeparationModel, samples: int) -> float:
        """Every member's forward."""
        bag = cast(ModelBag, model)
        family = self._member_family(bag)
        return sum(family.forward_flops(bag.member(index), samples) for index in range(len(bag.members)))
