"""The reference implementations the benchmarks and tests compare against, installed from PyPI at run time.

* demucs 2.0.3 defined and published the ConvTasNet weights ugosa loads. Only its ``tasnet`` and ``utils``
  modules are used; ``diffq``/``tqdm`` are the two imports ``demucs.utils`` needs.
* demucs 4.1.0 defined and published the HT-Demucs weights. Only ``demucs.htdemucs`` and ``demucs.apply``
  (with the modules they import) are used; they need ``einops``, ``julius`` and ``tqdm``.
* msst 0.1.0 (Music-Source-Separation-Training packaged) defines the BS-RoFormer, Mel-Band RoFormer and SCNet
  networks and ``demix``; installed with its pure-Python needs (and librosa, for its mel filterbank). Its
  folder is put last on ``sys.path``, so packages the project has already (PyYAML, packaging) stay the project's.

``--no-deps`` keeps pip from replacing our torch. Nothing of it is committed: each version is installed into
its own cache folder. Both packages are called ``demucs``, so importing one version first drops the other's
``demucs*`` entries from ``sys.modules`` and puts its own folder first on ``sys.path``; one process can use
both in turn (objects already built keep working).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

REFERENCE_PACKAGES = ("demucs==2.0.3", "diffq", "tqdm")
DEFAULT_DIR = Path(__file__).resolve().parent / ".reference"
V4_PACKAGES = ("demucs==4.1.0", "einops", "julius", "tqdm")
V4_DIR = DEFAULT_DIR / "demucs-4.1.0"
MSST_PACKAGES = ("msst==0.1.0", "einops", "rotary-embedding-torch", "beartype", "ml-collections", "omegaconf",
                 "antlr4-python3-runtime", "pyyaml", "absl-py", "packaging", "librosa", "lazy_loader", "numba",
                 "llvmlite", "joblib", "decorator", "audioread", "pooch", "msgpack", "cloudpickle", "tqdm")
MSST_DIR = DEFAULT_DIR / "msst-0.1.0"


def _install(target: Path, marker: str, packages: tuple[str, ...]) -> None:
    if not (target / marker).exists():
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), *packages],
            check=True,
        )


def _activate(target: Path) -> None:
    """Make ``import demucs`` load the copy in ``target``."""
    for name in list(sys.modules):
        if name == "demucs" or name.startswith("demucs."):
            del sys.modules[name]
    for folder in (DEFAULT_DIR, V4_DIR):
        while str(folder) in sys.path:
            sys.path.remove(str(folder))
    sys.path.insert(0, str(target))


def import_demucs(target: Path = DEFAULT_DIR):
    """Install demucs 2.0.3 into ``target`` if needed and return ``(ConvTasNet, apply_model)``."""
    _install(target, "demucs/tasnet.py", REFERENCE_PACKAGES)
    _activate(target)
    from demucs.tasnet import ConvTasNet
    from demucs.utils import apply_model

    return ConvTasNet, apply_model


def import_demucs_v4(target: Path = V4_DIR) -> tuple[Any, Any]:
    """Install demucs 4.1.0 into ``target`` if needed and return ``(HTDemucs, apply_model)``."""
    _install(target, "demucs/htdemucs.py", V4_PACKAGES)
    _activate(target)
    from demucs.apply import apply_model
    from demucs.htdemucs import HTDemucs

    assert HTDemucs.__module__ == "demucs.htdemucs" and "4.1.0" in sys.modules["demucs"].__version__
    return HTDemucs, apply_model


def import_msst(target: Path = MSST_DIR) -> Any:
    """Install msst 0.1.0 into ``target`` if needed; return a namespace with ``BSRoformer``,
    ``MelBandRoformer``, ``SCNet``, ``demix`` and ``ConfigDict`` (msst's configuration type)."""
    from types import SimpleNamespace

    _install(target, "msst/utils/model_utils.py", MSST_PACKAGES)
    if str(target) not in sys.path:
        sys.path.append(str(target))
    from ml_collections import ConfigDict
    from msst.models.bs_roformer import BSRoformer, MelBandRoformer
    from msst.models.scnet import SCNet
    from msst.utils.model_utils import demix

    return SimpleNamespace(BSRoformer=BSRoformer, MelBandRoformer=MelBandRoformer, SCNet=SCNet, demix=demix,
                           ConfigDict=ConfigDict)


def msst_model_files(folder: Path, kind: str, config: dict[str, Any], seed: int) -> tuple[Path, Path, Any, Any]:
    """msst's model of ``config`` (a mapping as its YAML files hold), built by msst's own loader from a YAML file
    written into ``folder``, its norms perturbed (:func:`perturb_norms`) and saved as MSST checkpoints are (the
    state dict under ``state_dict``); returns the YAML and weights paths, msst's model and msst's configuration."""
    import torch
    import yaml

    import_msst()
    from msst.utils.settings import get_model_from_config

    config_path = folder / f"{kind}.yaml"
    config_path.write_text(yaml.dump(config, sort_keys=False))
    torch.manual_seed(seed)
    model, loaded = get_model_from_config(kind, str(config_path))
    perturb_norms(model.eval(), seed=seed + 1)
    weights = folder / f"{kind}.ckpt"
    torch.save({"state_dict": model.state_dict()}, weights)
    return config_path, weights, model, loaded


def perturb_norms(model: Any, seed: int = 1) -> None:
    """Every norm's scale (RMSNorm ``gamma``, GroupNorm weight and bias) and every learned temperature moved
    away from its initial value, so a norm loaded under the wrong key changes the output."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            for parameter_name, parameter in module.named_parameters(recurse=False):
                norm = isinstance(module, torch.nn.GroupNorm) or parameter_name in ("gamma", "temperature")
                if norm:
                    parameter.add_(0.5 * torch.randn(parameter.shape, generator=generator))


def htdemucs_kwargs(six_sources: bool = False) -> dict[str, Any]:
    """The constructor arguments stored in the released HT-Demucs files (``kwargs``; 62 entries).

    htdemucs and the htdemucs_ft models carry these; htdemucs_6s has six sources and no bottom channels.
    Reconstructed from the released configuration (ugosa-facts §6) and demucs' config keys.
    """
    from fractions import Fraction

    kwargs: dict[str, Any] = {
        "sources": ["drums", "bass", "other", "vocals"], "audio_channels": 2, "samplerate": 44100,
        "segment": Fraction(39, 5), "channels": 48, "channels_time": None, "growth": 2, "nfft": 4096,
        "wiener_iters": 0, "end_iters": 0, "wiener_residual": False, "cac": True, "depth": 4, "rewrite": True,
        "multi_freqs": [], "multi_freqs_depth": 3, "freq_emb": 0.2, "emb_scale": 10, "emb_smooth": True,
        "kernel_size": 8, "stride": 4, "time_stride": 2, "context": 1, "context_enc": 0, "norm_starts": 4,
        "norm_groups": 4, "dconv_mode": 3, "dconv_depth": 2, "dconv_comp": 8, "dconv_init": 1e-3,
        "bottom_channels": 512, "t_layers": 5, "t_hidden_scale": 4.0, "t_heads": 8, "t_dropout": 0.02,
        "t_layer_scale": True, "t_gelu": True, "t_emb": "sin", "t_max_positions": 10000, "t_max_period": 10000.0,
        "t_weight_pos_embed": 1.0, "t_cape_mean_normalize": True, "t_cape_augment": True,
        "t_cape_glob_loc_scale": [5000.0, 1.0, 1.4], "t_sin_random_shift": 0, "t_norm_in": True,
        "t_norm_in_group": False, "t_group_norm": False, "t_norm_first": True, "t_norm_out": True,
        "t_weight_decay": 0.0, "t_lr": None, "t_sparse_self_attn": False, "t_sparse_cross_attn": False,
        "t_mask_type": "diag", "t_mask_random_seed": 42, "t_sparse_attn_window": 500, "t_global_window": 100,
        "t_sparsity": 0.95, "t_auto_sparsity": False, "t_cross_first": False, "rescale": 0.1,
    }
    if six_sources:
        kwargs["sources"] = ["drums", "bass", "other", "vocals", "guitar", "piano"]
        kwargs["bottom_channels"] = 0
    return kwargs


def randomise_scales_and_norms(model: Any, seed: int = 1) -> None:
    """LayerScales to about 0.5 and every norm's affine away from (1, 0): the transformer and DConv matter.

    With demucs' initial LayerScales (1e-4, 1e-3) the transformer changes the stems by about 1e-6, so a 1e-4
    comparison could not see a wrong transformer (and speed figures would not be those of a trained model).
    """
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith(".scale"):
                parameter.copy_(0.3 + 0.4 * torch.rand(parameter.shape, generator=generator))
            elif "norm" in name or name.endswith((".1.weight", ".1.bias", ".4.weight", ".4.bias")):
                parameter.add_(0.3 * torch.randn(parameter.shape, generator=generator))
