"""What the three MSST model types share: the stems they make and how a song is cut for them.

A Music-Source-Separation-Training (MSST) model is a network plus the ``audio``, ``training`` and
``inference`` sections of its YAML configuration: the sample rate, the instruments the outputs stand for
(``training.instruments``, or only ``training.target_instrument`` when one is set), and how msst's ``demix``
runs it over a song (``chunk_size``, ``num_overlap``, ``inference.batch_size``; ``inference.normalize``).

A model with a target instrument makes that one stem; ugosa adds the rest of the mixture as a second source
(named after the other instrument of a two-instrument list, else ``instrumental``), as msst's
``--extract_instrumental`` does, so two-stem vocal models work with labels of both sources.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor

from ugosa_cli.errors import InputError
from ugosa_cli.models.family import FadeChunking, SeparationModel
from ugosa_cli.sources import check_source_names

RESIDUAL = "instrumental"  # the rest of the mixture, when the instruments do not name it


@dataclass(frozen=True)
class MSSTSettings:
    """The non-network part of an MSST configuration that separation needs (validated by
    :mod:`ugosa_cli.msst`); ``instruments`` as msst names its outputs."""

    instruments: tuple[str, ...]
    target: str | None
    samplerate: int
    chunk_size: int
    num_overlap: int
    batch_size: int = 1  # inference.batch_size: msst decides the chunks' fades per batch
    normalize: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "instruments", check_source_names(tuple(self.instruments)))
        if self.target is not None and self.target not in self.instruments:
            raise InputError(f"training.target_instrument {self.target!r} is not one of training.instruments "
                             f"{list(self.instruments)}")

    @property
    def outputs(self) -> tuple[str, ...]:
        """The stems the network is asked for: the target alone, or every instrument."""
        return (self.target,) if self.target is not None else self.instruments

    @property
    def residual(self) -> str | None:
        """The name of the rest of the mixture, for a model with a target instrument."""
        if self.target is None:
            return None
        others = [name for name in self.instruments if name != self.target]
        return others[0] if len(others) == 1 else RESIDUAL

    @property
    def sources(self) -> tuple[str, ...]:
        residual = self.residual
        return self.outputs + ((residual,) if residual is not None else ())

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "instruments": list(self.instruments)}


class MSSTNetwork(SeparationModel):
    """An MSST network as ugosa runs it: ``forward`` maps a mixture (batch, channels, time) to the stems of
    :attr:`sources` (batch, sources, channels, time). Subclasses compute their outputs in :meth:`stems`."""

    def __init__(self, settings: MSSTSettings, network_outputs: int) -> None:
        super().__init__()
        self.settings = settings
        if settings.target is not None and network_outputs not in (1, len(settings.instruments)):
            raise InputError(f"the network makes {network_outputs} stems; with a target instrument it must make 1 "
                             f"or one per instrument ({len(settings.instruments)})")
        if settings.target is None and network_outputs != len(settings.instruments):
            raise InputError(f"the network makes {network_outputs} stems but training.instruments names "
                             f"{len(settings.instruments)}: {list(settings.instruments)}")
        # The network output that is the target (None: all of them, in the order of the instruments).
        self.target_index: int | None = None
        if settings.target is not None:
            self.target_index = settings.instruments.index(settings.target) if network_outputs > 1 else 0
        self.fade_chunking = FadeChunking(settings.num_overlap, settings.batch_size)
        self.normalises_input = settings.normalize

    @property
    def sources(self) -> tuple[str, ...]:
        return self.settings.sources

    @property
    def samplerate(self) -> int:
        return self.settings.samplerate

    @property
    def segment_length(self) -> int:
        return self.settings.chunk_size

    def stems(self, mix: Tensor, only: int | None = None) -> Tensor:
        """The network's stems (batch, stems, channels, time); with ``only``, that output alone."""
        raise NotImplementedError

    def complete(self, stems: Tensor, mix: Tensor) -> Tensor:
        """The network's stems of a target model (batch, 1, channels, time) with the rest of the mixture
        added as the second source; other models' stems unchanged."""
        if self.settings.residual is None:
            return stems
        return torch.cat([stems, mix[:, None] - stems], dim=1)

    def forward(self, mix: Tensor) -> Tensor:
        return self.complete(self.stems(mix, self.target_index), mix)
