"""Separation models, one module per family, and the registry that finds a network's family.

Each family is a network module (``convtasnet``, ``htdemucs``, ``roformer`` for BS-RoFormer and Mel-Band
RoFormer, ``scnet``) and its cut points (``convtasnet_cuts``, ``htdemucs_cuts``, ``roformer_cuts``,
``scnet_cuts``: a :class:`~ugosa_cli.models.family.ModelFamily`); a bag of models (``bag``) takes its
members' cut points. :func:`family_of` is how the rest of ugosa reaches them.
"""

from __future__ import annotations

from torch import nn

from ugosa_cli.models.bag import BagFamily, ModelBag
from ugosa_cli.models.convtasnet import ConvTasNet
from ugosa_cli.models.convtasnet_cuts import ConvTasNetFamily
from ugosa_cli.models.family import ModelFamily, SeparationModel
from ugosa_cli.models.htdemucs import HTDemucs
from ugosa_cli.models.htdemucs_cuts import HTDemucsFamily
from ugosa_cli.models.roformer import Roformer
from ugosa_cli.models.roformer_cuts import RoformerFamily
from ugosa_cli.models.scnet import SCNet
from ugosa_cli.models.scnet_cuts import SCNetFamily

FAMILIES: dict[type[SeparationModel], ModelFamily] = {
    ConvTasNet: ConvTasNetFamily(),
    HTDemucs: HTDemucsFamily(),
    ModelBag: BagFamily(),
    Roformer: RoformerFamily(),
    SCNet: SCNetFamily(),
}


def family_of(model: nn.Module) -> ModelFamily:
    """The family of a separation network (a programming error for a network of no known family)."""
    for kind, family in FAMILIES.items():
        if isinstance(model, kind):
            return family
    raise TypeError(f"{type(model).__name__} belongs to no registered model family")
