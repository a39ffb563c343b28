"""Fine-tuning strategies: a loss and a cut point, in the UGOSA paper's notation.

``P-Lk:D`` trains with the proposed loss (``P``) from cut point ``Lk`` through the decoder (``D``); ``M``
is the mixture-only loss, ``S`` the supervised oracle loss, and ``B0`` trains nothing. A strategy is
parsed once, where it enters (a flag, a model file's recommendation, a benchmark's list), and travels as a
:class:`Strategy`. What a cut point means for a given network (which parameters train, what the frozen
prefix is) belongs to the model's family (:mod:`ugosa_cli.models`).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from torch import nn

from ugosa_cli.errors import SettingError
from ugosa_cli.models import family_of
from ugosa_cli.models.family import SeparationModel

CUTS = (1, 2, 3, 4, 5)  # L1 trains the most, L5 the least (the paper's five cut points)
_STRATEGY_RE = re.compile(r"^([PMS])-L([1-5]):D$", re.IGNORECASE)


class Loss(enum.Enum):
    """The adaptation loss, by the letter the paper's strategy names use."""

    PROPOSED = "P"
    MIXTURE = "M"
    SUPERVISED = "S"

    @property
    def description(self) -> str:
        return {"P": "proposed", "M": "mixture only", "S": "supervised (oracle stems)"}[self.value]


@dataclass(frozen=True)
class Strategy:
    """A loss and a cut point (1-5); ``B0`` has neither and trains nothing."""

    loss: Loss | None
    cut: int | None

    @classmethod
    def parse(cls, text: str) -> Strategy:
        """``B0`` or ``{P,M,S}-L{1..5}:D``, case-insensitive."""
        name = str(text).strip()
        if name.upper() == "B0":
            return B0
        match = _STRATEGY_RE.match(name)
        if not match:
            raise SettingError(
                "strategy", text, "unknown strategy; use B0 or P-Lk:D, M-Lk:D, S-Lk:D with k in 1..5 (e.g. P-L2:D)"
            )
        return cls(Loss(match.group(1).upper()), int(match.group(2)))

    @property
    def name(self) -> str:
        return "B0" if self.loss is None else f"{self.loss.value}-L{self.cut}:D"

    @property
    def trains(self) -> bool:
        return self.loss is not None

    def __str__(self) -> str:
        return self.name


B0 = Strategy(None, None)
DEFAULT_STRATEGY = Strategy(Loss.PROPOSED, 2)
STRATEGY_NAMES = ("B0",) + tuple(Strategy(loss, k).name for loss in Loss for k in CUTS)


# --- what a strategy trains on a given model ------------------------------------------------------------


def trainable_modules(model: SeparationModel, strategy: Strategy) -> list[tuple[str, nn.Module]]:
    """The named parts a strategy trains, in network order (none for B0); unknown cuts raise."""
    if strategy.cut is None:
        return []
    return family_of(model).trainable_parts(model, strategy.cut)


def count_trainable(model: SeparationModel, strategy: Strategy) -> int:
    """#TP: the number of parameters the strategy trains."""
    return sum(p.numel() for p in trained_parameters(model, strategy))


def describe_trainable(model: SeparationModel, strategy: Strategy) -> str:
    """What the strategy trains, in words, e.g. ``repeats 3-4 + mask conv + decoder``."""
    if strategy.cut is None:
        return "nothing (the model as is)"
    return family_of(model).describe(model, strategy.cut)


def available(model: SeparationModel) -> list[Strategy]:
    """Every strategy this model has (B0 first), in the order of :data:`STRATEGY_NAMES`."""
    cuts = family_of(model).cuts(model)
    return [B0] + [Strategy(loss, k) for loss in Loss for k in CUTS if k in cuts]


def check_available(model: SeparationModel, strategy: Strategy) -> None:
    """Raise a setting error if the model has no such cut point."""
    if strategy.cut is not None:
        family_of(model).trainable_parts(model, strategy.cut)


def strategy_table(model: SeparationModel, losses: str = "PMS") -> list[dict[str, object]]:
    """One row per strategy this model has: name, loss, what is trained and #TP, for ``ugosa strategies``."""
    rows = []
    for strategy in available(model):
        if strategy.loss is not None and strategy.loss.value not in losses:
            continue
        rows.append(
            {
                "strategy": strategy.name,
                "loss": "none" if strategy.loss is None else strategy.loss.description,
                "trains": describe_trainable(model, strategy),
                "trainable_parameters": count_trainable(model, strategy),
            }
        )
    return rows


def trained_parameters(model: SeparationModel, strategy: Strategy) -> list[nn.Parameter]:
    """The parameters a strategy trains, in network order (none for B0)."""
    return [p for _, module in trainable_modules(model, strategy) for p in module.parameters()]


def freeze_for(model: SeparationModel, strategy: Strategy) -> list[nn.Parameter]:
    """Set ``requires_grad`` so only the strategy's part trains; return the trainable parameters."""
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    trainable = trained_parameters(model, strategy)
    for parameter in trainable:
        parameter.requires_grad_(True)
    return trainable
