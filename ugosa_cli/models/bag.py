"""A bag of models: several networks of one kind whose stems are averaged with per-source weights.

demucs 4 ships ``htdemucs_ft`` as such a bag (demucs' ``BagOfModels``): four fine-tuned HT-Demucs, each
used for one source only (one-hot weights). The separation loop runs each member over the song as it
would run a single model (its own random shifts, drawn in member order, as demucs does) and combines the
members' stems per source; :meth:`ModelBag.forward` does the same for one chunk.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ugosa_cli.errors import InputError
from ugosa_cli.models.family import SeparationModel


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
        matrix = torch.tensor(table, dtype=torch.float32)
        if (matrix < 0).any() or (matrix.sum(dim=0) <= 0).any():
            raise InputError("bag weights must be 0 or more, with some weight for every source")
        self.members = nn.ModuleList(members)
        self.register_buffer("weights", matrix, persistent=False)
        self.centred_padding = first.centred_padding
        self.random_draws_per_forward = first.random_draws_per_forward

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
