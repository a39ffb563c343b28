"""Separation models, one module per family, and the registry that finds a network's family.

Each family is a network module (``convtasnet``) and its cut points (``convtasnet_cuts``, a
:class:`~ugosa_cli.models.family.ModelFamily`); :func:`family_of` is how the rest of ugosa reaches them.
"""

from __future__ import annotations

from torch import nn

from ugosa_cli.models.convtasnet import ConvTasNet
from ugosa_cli.models.convtasnet_cuts import ConvTasNetFamily
from ugosa_cli.models.family import ModelFamily, SeparationModel

FAMILIES: dict[type[SeparationModel], ModelFamily] = {ConvTasNet: ConvTasNetFamily()}


def family_of(model: nn.Module) -> ModelFamily:
    """The family of a separation network (a programming error for a network of no known family)."""
    for kind, family in FAMILIES.items():
        if isinstance(model, kind):
            return family
    raise TypeError(f"{type(model).__name__} belongs to no registered model family")
