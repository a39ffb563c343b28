"""Model files: our checkpoint format and bare demucs-style state dicts, loaded without unpickling code.

Our format is one ``torch.save`` file of plain containers and tensors, so ``torch.load(weights_only=True)``
reads it::

    {"format": "ugosa-checkpoint", "version": 1, "family": "convtasnet" | "htdemucs", "config": {...},
     "sources": [...], "samplerate": 44100, "state_dict": {...}, "provenance": {...}}

The state dict keeps the network's own key names (demucs' for both families, msst's for the MSST types,
whose family is the model type: ``bs_roformer``, ``mel_band_roformer`` or ``scnet``, and whose config is
the MSST configuration's sections, checked on loading as a YAML configuration is). A bag of models (adapted
``htdemucs_ft``) is ``{"family": "bag", "members": [{"family", "config", "state_dict"}, ...], "weights":
[[...], ...]}`` with the same header and provenance. A file without ``family`` holds a ConvTasNet (files
written before HT-Demucs existed).

The weights of an MSST model come with its YAML configuration (:class:`MSSTSource`), read by
:mod:`ugosa_cli.msst`.
"""

from __future__ import annotations

import io
import pickle
import pickletools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ugosa_cli.demucs_v4 import is_demucs_package, read_demucs_package
from ugosa_cli.errors import InputError, RunError
from ugosa_cli.fsutil import sha256_file, write_atomic
from ugosa_cli.models.bag import ModelBag
from ugosa_cli.models.convtasnet import ConvTasNet, ModelConfig, build_model, config_from_state_dict
from ugosa_cli.models.family import SeparationModel, all_finite
from ugosa_cli.models.htdemucs import HTDemucs, build_from_config, htdemucs_config_dict, htdemucs_config_from_dict
from ugosa_cli.models.msst_common import MSSTNetwork
from ugosa_cli.msst import (
    MODEL_TYPES,
    build_network,
    config_from_payload,
    network_payload_config,
    read_config,
    read_safetensors,
    state_from_content,
)
from ugosa_cli.sources import check_source_names

CHECKPOINT_FORMAT = "ugosa-checkpoint"
CHECKPOINT_VERSION = 1


@dataclass(frozen=True)
class MSSTSource:
    """The configuration that goes with an MSST weights file: its local path, the model type given for it
    (None: as the configuration says) and how the user named it (a path or URL)."""

    config: Path
    model_type: str | None = None
    name: str | None = None


@dataclass
class LoadedModel:
    """A model ready for inference, with where it came from."""

    model: SeparationModel
    name: str
    sha256: str
    provenance: dict[str, Any] = field(default_factory=dict)


def _network_payload(model: SeparationModel) -> dict[str, Any]:
    """One network's family, configuration (plain values) and state dict."""
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    if isinstance(model, ConvTasNet):
        return {"family": "convtasnet", "config": model.config.to_dict(), "state_dict": state}
    if isinstance(model, HTDemucs):
        return {"family": "htdemucs", "config": htdemucs_config_dict(model.config), "state_dict": state}
    if isinstance(model, MSSTNetwork):
        config = network_payload_config(model)
        return {"family": config["model_type"], "config": config, "state_dict": state}
    raise TypeError(f"ugosa checkpoints hold no {type(model).__name__} models")


def _network_from_payload(payload: Mapping[str, Any], origin: str) -> SeparationModel:
    family = payload.get("family", "convtasnet")
    state = payload["state_dict"]
    if family == "convtasnet":
        return build_model(ModelConfig.from_dict(payload["config"]), state)
    if family == "htdemucs":
        return build_from_config(htdemucs_config_from_dict(payload["config"]), state, origin)
    if family in MODEL_TYPES:
        return build_network(config_from_payload(payload["config"], origin), state, origin)
    raise InputError(f"model family {family!r} is not known to this ugosa")


def save_checkpoint(
    path: Path, model: SeparationModel, provenance: Mapping[str, Any] | None = None, *, inside: Path | None = None
) -> None:
    """Write ``model`` (a ConvTasNet, an HT-Demucs, a bag of them or an MSST network) in our checkpoint format,
    atomically; ``inside``: the resolved folder it must land in (:func:`~ugosa_cli.fsutil.atomic_path`)."""
    if isinstance(model, ModelBag):
        body: dict[str, Any] = {
            "family": "bag",
            "members": [_network_payload(model.member(k)) for k in range(len(model.members))],
            "weights": model.weights.tolist(),
        }
    else:
        body = _network_payload(model)
    bad = nonfinite_weights(model)
    if bad:  # a last line of defence: training that diverges stops before it would come to this
        raise RunError(f"{path}: not saved: {bad} hold NaN or infinite values")
    payload = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        **body,
        "sources": list(model.sources),
        "samplerate": model.samplerate,
        "provenance": dict(provenance or {}),
    }
    buffer = io.BytesIO()  # serialised first, so that a failed write is an OSError saying why (a full disk)
    torch.save(payload, buffer)
    write_atomic(Path(path), buffer.getbuffer(), inside)


def read_checkpoint(path: Path) -> dict[str, Any]:
    """Load a model file's content with ``weights_only=True``; refuse anything else with a clear error.

    Three refusals are told apart: a pickle that references Python globals (it could run code if loaded
    unsafely), a file that is not a PyTorch file at all, and a PyTorch file that is cut or corrupt.
    """
    path = Path(path)
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as exc:
        raise InputError(f"{path}: no such model file") from exc
    except IsADirectoryError as exc:
        raise InputError(f"{path}: is a folder, not a model file") from exc
    except PermissionError as exc:
        raise InputError(f"{path}: permission denied; check the file's permissions") from exc
    except Exception as exc:  # torch raises many kinds of errors (KeyError, IndexError, ...) on bytes it cannot parse
        raise _unreadable(path, exc) from exc
    if not isinstance(content, dict):
        raise InputError(f"{path}: not a model file: holds a {type(content).__name__}, expected a state dict")
    return content


_GLOBALS = re.compile(r"\bGLOBAL\b|unsupported global|safe_globals", re.IGNORECASE)
_ZIP_MAGIC = b"PK\x03\x04"
_LEGACY_MAGIC = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19"  # torch.save's pickled magic number (before zip files)


def _unreadable(path: Path, exc: Exception) -> InputError:
    """The one line for a model file ``torch.load(weights_only=True)`` refused with ``exc``."""
    if (isinstance(exc, pickle.UnpicklingError) and _GLOBALS.search(str(exc))) or _plain_pickle_with_globals(path):
        return InputError(
            f"{path}: refused: the file holds Python objects other than tensors (it could run code); "
            "only plain state dicts and ugosa checkpoints are loaded"
        )
    try:
        with open(path, "rb") as handle:
            head = handle.read(len(_LEGACY_MAGIC))
    except OSError:
        head = b""
    if not head.startswith(_ZIP_MAGIC) and head != _LEGACY_MAGIC:
        return InputError(
            f"{path}: not a model file (not a PyTorch file); give a ugosa checkpoint or a ConvTasNet state dict "
            "saved with torch.save"
        )
    detail = "" if isinstance(exc, pickle.UnpicklingError) else f": {_first_line(exc)}"
    return InputError(f"{path}: not a readable model file (corrupt or truncated?){detail}; copy or download it again")


def model_from_content(content: Mapping[str, Any], origin: str) -> tuple[SeparationModel, dict[str, Any]]:
    """Build the model held by a loaded file: our checkpoint or a bare demucs-style ConvTasNet state dict."""
    if content.get("format") == CHECKPOINT_FORMAT:
        if content.get("version") != CHECKPOINT_VERSION:
            raise InputError(f"{origin}: checkpoint version {content.get('version')} is not supported by this ugosa")
        try:
            model: SeparationModel
            if content.get("family") == "bag":
                members = [_network_from_payload(member, origin) for member in content["members"]]
                model = ModelBag(members, content["weights"])
            else:
                model = _network_from_payload(content, origin)
            if "sources" in content and check_source_names(content["sources"]) != model.sources:
                raise InputError(
                    f"its source list {content['sources']} differs from its config's {list(model.sources)}"
                )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{origin}: incomplete ugosa checkpoint ({exc})") from exc
        except InputError as exc:
            message = exc.message if exc.message.startswith(origin) else f"{origin}: {exc.message}"
            raise InputError(message) from exc
        return model, dict(content.get("provenance") or {})
    if _looks_like_msst(content):
        raise InputError(f"{origin}: the weights of a BS-RoFormer, Mel-Band RoFormer or SCNet model (MSST): give "
                         "its YAML configuration with --config")
    if content and all(isinstance(k, str) and isinstance(v, Tensor) for k, v in content.items()):
        try:
            return build_model(config_from_state_dict(content), content), {}
        except InputError as exc:
            raise InputError(f"{origin}: {exc.message}") from exc
    raise InputError(f"{origin}: not a ConvTasNet state dict, demucs v4 file or ugosa checkpoint")


_MSST_PREFIXES = ("band_split.", "mask_estimators.", "separation_net.")


def _looks_like_msst(content: Mapping[str, Any]) -> bool:
    """Whether a loaded file looks like MSST weights (keys of the three types' networks, perhaps wrapped)."""
    try:
        state = state_from_content(content, "")
    except InputError:
        return False
    return any(key.startswith(_MSST_PREFIXES) for key in state)


def read_msst_model(path: Path, source: MSSTSource) -> tuple[SeparationModel, dict[str, Any]]:
    """An MSST network from its weights file (a torch state dict, bare or wrapped, or ``.safetensors``) and
    its configuration."""
    name = source.name or str(source.config)
    config = read_config(source.config, source.model_type, origin=name)
    if path.suffix.lower() == ".safetensors":
        state = read_safetensors(path)
    else:
        content = read_checkpoint(path)
        if content.get("format") == CHECKPOINT_FORMAT:
            raise InputError(f"{path}: a ugosa checkpoint carries its own configuration; leave out --config")
        state = state_from_content(content, str(path))
    model = build_network(config, state, str(path))
    provenance = {"msst": {"model_type": config.model_type, "config": name, "config_sha256": sha256_file(source.config)}}
    return model, provenance


def read_model(path: Path, msst: MSSTSource | None = None) -> tuple[SeparationModel, dict[str, Any]]:
    """The model in a file, and its provenance: a ugosa checkpoint, a ConvTasNet state dict (demucs v2), a
    demucs v4 package (HT-Demucs, read by :mod:`ugosa_cli.demucs_v4`), or with ``msst`` the weights of an
    MSST model; nothing in the file is ever run."""
    path = Path(path)
    if msst is not None:
        model, provenance = read_msst_model(path, msst)
    elif path.suffix.lower() == ".safetensors":
        raise InputError(f"{path}: the weights of an MSST model: give its YAML configuration with --config")
    elif is_demucs_package(path):
        package = read_demucs_package(path)
        provenance = {"demucs_package": {"class": package.class_name}}
        model = package.build_model()
    else:
        model, provenance = model_from_content(read_checkpoint(path), str(path))
    bad = nonfinite_weights(model)
    if bad:  # such a model writes stems of NaN, or full-scale noise once they are converted to integers
        raise InputError(
            f"{path}: refused: {bad} hold NaN or infinite values; the file is damaged or was saved from a training "
            "that diverged: use another model file"
        )
    return model, provenance


def nonfinite_weights(model: SeparationModel) -> str | None:
    """Which weight tensors of ``model`` hold NaN or infinite values, in words (``None`` if none do)."""
    state = model.state_dict()
    if all_finite(state.values()):
        return None
    bad = [key for key, tensor in state.items() if not all_finite([tensor])]
    return f"{len(bad)} of the model's {len(state)} weight tensors ({bad[0]}{', ...' if len(bad) > 1 else ''})"


def load_model_file(path: Path, name: str | None = None) -> LoadedModel:
    """Load a model file from disk (any format :func:`read_model` reads) and hash it."""
    path = Path(path)
    model, provenance = read_model(path)
    return LoadedModel(model=model, name=name or path.stem, sha256=sha256_file(path), provenance=provenance)


def _plain_pickle_with_globals(path: Path, max_opcodes: int = 1_000_000) -> bool:
    """Whether ``path`` is a whole, well-formed plain pickle that imports Python globals (read, never run)."""
    imports = False
    try:
        with open(path, "rb") as handle:
            for count, (opcode, _, _) in enumerate(pickletools.genops(handle)):  # stops after STOP
                imports |= opcode.name in _CODE_OPCODES
                if count >= max_opcodes:
                    return False
    except Exception:
        return False
    return imports


_CODE_OPCODES = frozenset({"GLOBAL", "STACK_GLOBAL", "INST", "OBJ", "REDUCE", "NEWOBJ", "NEWOBJ_EX", "EXT1", "EXT2",
                           "EXT4"})


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
