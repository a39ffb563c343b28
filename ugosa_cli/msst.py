"""Model files of Music-Source-Separation-Training (MSST): a YAML configuration and a weights file.

What users trade for BS-RoFormer, Mel-Band RoFormer and SCNet is a YAML configuration (sections ``audio``,
``model``, ``training``, ``inference``) and a weights file: a torch state dict (``.ckpt``/``.pth``, bare or
under ``state_dict``, ``state``, ``model_state_dict`` or ``model``) or a ``.safetensors`` file. The model
type is not in either file (msst takes it on its command line): ``training.model_type`` when present,
else inferred from the keys of ``model:`` when only one type has them, else the caller must name it.

Everything is data, not trust:

* The YAML is loaded with a ``SafeLoader`` that additionally reads ``!!python/tuple`` (how msst's released
  configurations write ``freqs_per_bands``) as a tuple. Any other tag (every other ``python/*`` tag,
  timestamps, sets, binary), anchors and aliases, merge keys and non-string keys are refused with one line
  naming the file and the key path, before anything is constructed. The file is read up to 1 MiB.
* ``model:`` takes exactly the constructor arguments of msst 0.1.0's class for the type; an unknown key is
  one error naming it. Every value that sizes work (widths, depths, heads, FFT sizes, band counts, sample
  rate, chunk size, overlap, batch size) is bounded, each error naming its key.
* The weights are loaded with ``torch.load(weights_only=True)`` (or safetensors, which holds tensors only)
  and must match the configuration key for key and shape for shape (the network is first built on the
  meta device, so a configuration asking for terabytes is refused for its mismatch, never allocated).
  Which optional parts a RoFormer state dict holds (code versions differ) is read from its keys.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import yaml
from torch import Tensor

from ugosa_cli.errors import InputError
from ugosa_cli.fsutil import read_text_file
from ugosa_cli.models.family import state_mismatch
from ugosa_cli.models.mel import mel_band_membership
from ugosa_cli.models.msst_common import MSSTNetwork, MSSTSettings
from ugosa_cli.models.roformer import (
    BS_ROFORMER,
    MEL_BAND_ROFORMER,
    Roformer,
    RoformerConfig,
    RoformerLayout,
)
from ugosa_cli.models.scnet import SCNET, SCNet, SCNetConfig, band_edges
from ugosa_cli.sources import SOURCE_NAME, SOURCE_NAME_RULE

MODEL_TYPES = (BS_ROFORMER, MEL_BAND_ROFORMER, SCNET)
MAX_CONFIG_BYTES = 1 << 20
MAX_DEPTH = 16  # nesting of the YAML document
STATE_WRAPPERS = ("state_dict", "state", "model_state_dict", "model")
MAX_CHUNK_SECONDS = 60  # as ugosa's longest segment
# BS-RoFormer's bands when a configuration leaves them out (msst 0.1.0's default, for n_fft 2048).
DEFAULT_FREQS_PER_BANDS = (2,) * 24 + (4,) * 12 + (12,) * 8 + (24,) * 8 + (48,) * 8 + (128, 129)

_TUPLE_TAG = "tag:yaml.org,2002:python/tuple"
_PLAIN_TAGS = {
    "tag:yaml.org,2002:" + name for name in ("str", "int", "float", "bool", "null", "seq", "map")
} | {_TUPLE_TAG}


class ConfigLoader(yaml.SafeLoader):
    """PyYAML's safe loader plus msst's one plain-data tag, ``!!python/tuple`` (read as a tuple)."""


def _construct_tuple(loader: ConfigLoader, node: yaml.SequenceNode) -> tuple[Any, ...]:
    return tuple(loader.construct_sequence(node))


ConfigLoader.add_constructor(_TUPLE_TAG, _construct_tuple)


# --- the YAML document ------------------------------------------------------------------------------------


def _path_text(path: tuple[str | int, ...]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text or "the document"


def _check_plain(node: yaml.Node, path: tuple[str | int, ...], seen: set[int], origin: str) -> None:
    """Refuse anything in the composed document but plain mappings, lists, numbers, strings, booleans, nulls
    and msst's tuples, naming where it is."""
    where = _path_text(path)
    if id(node) in seen:
        raise InputError(f"{origin}: {where}: anchors and aliases are not supported in model configurations")
    seen.add(id(node))
    if len(path) > MAX_DEPTH:
        raise InputError(f"{origin}: {where}: nested deeper than {MAX_DEPTH} levels")
    if node.tag not in _PLAIN_TAGS:
        tag = node.tag.replace("tag:yaml.org,2002:", "!!")
        raise InputError(f"{origin}: {where}: {tag} is not plain data; a model configuration holds only mappings, "
                         "lists, numbers, strings, booleans and nulls (and !!python/tuple)")
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if not isinstance(key, yaml.ScalarNode) or key.tag != "tag:yaml.org,2002:str":
                shown = key.value if isinstance(key, yaml.ScalarNode) else "a non-string key"
                raise InputError(f"{origin}: {where}: key {str(shown)[:40]!r} is not a plain name")
            _check_plain(value, (*path, key.value), seen, origin)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _check_plain(item, (*path, index), seen, origin)


def load_yaml(path: Path, origin: str | None = None) -> dict[str, Any]:
    """The mapping a model configuration file holds, loaded safely (see the module docstring)."""
    origin = origin or str(path)
    data = read_text_file(path, origin, "a model configuration", limit=MAX_CONFIG_BYTES)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"{origin}: not a UTF-8 text file; give the model's YAML configuration") from None
    try:
        node = yaml.compose(text, Loader=ConfigLoader)
        if node is not None:
            _check_plain(node, (), set(), origin)
        content = yaml.load(text, Loader=ConfigLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        place = f" (line {mark.line + 1})" if mark is not None else ""
        raise InputError(f"{origin}: not a readable YAML configuration{place}: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise InputError(f"{origin}: not a readable YAML configuration: {exc}") from None
    except RecursionError:
        raise InputError(f"{origin}: nested too deeply to be a model configuration") from None
    if not isinstance(content, dict):
        raise InputError(f"{origin}: not a model configuration: expected a mapping with model, training, audio "
                         "and inference sections")
    return content


# --- values -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    """What one configuration key may hold: ``kind`` is int, float, bool, ints, floats or names (lists);
    numbers (and list items) within [low, high]; lists of ``size`` items (a (least, most) range)."""

    kind: str
    low: float | None = None
    high: float | None = None
    size: tuple[int, int] | None = None


def _number(value: Any, kind: str) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) if kind == "int" else isinstance(value, (int, float)) and math.isfinite(value)


def checked(value: Any, spec: Spec, where: str) -> Any:
    """``value`` if it is what ``spec`` allows (lists as tuples), else one error naming ``where``."""
    bounds = f" from {spec.low:g} to {spec.high:g}" if spec.low is not None and spec.high is not None else ""
    if spec.kind == "bool":
        if not isinstance(value, bool):
            raise InputError(f"{where}: {value!r:.60} is not true or false")
        return value
    if spec.kind in ("int", "float"):
        if not _number(value, spec.kind):
            raise InputError(f"{where}: {value!r:.60} is not {'an integer' if spec.kind == 'int' else 'a number'}")
        if (spec.low is not None and value < spec.low) or (spec.high is not None and value > spec.high):
            raise InputError(f"{where}: {value!r} is out of range; ugosa takes{bounds}")
        return value
    if not isinstance(value, (list, tuple)):
        raise InputError(f"{where}: {value!r:.60} is not a list")
    if spec.size is not None and not spec.size[0] <= len(value) <= spec.size[1]:
        count = spec.size[0] if spec.size[0] == spec.size[1] else f"{spec.size[0]} to {spec.size[1]}"
        raise InputError(f"{where}: has {len(value)} items; ugosa takes {count}")
    if spec.kind == "names":
        for item in value:
            if not isinstance(item, str):
                raise InputError(f"{where}: {item!r:.60} is not a name")
        return tuple(value)
    item_spec = Spec("int" if spec.kind == "ints" else "float", spec.low, spec.high)
    return tuple(checked(item, item_spec, f"{where}[{index}]") for index, item in enumerate(value))


def _int(low: int, high: int) -> Spec:
    return Spec("int", low, high)


_FLAG = Spec("bool")
_DROPOUT = Spec("float", 0.0, 0.99)
# Keys msst's constructors take that only training uses; checked for their kind, otherwise unused.
_TRAINING_ONLY = {
    "flash_attn": _FLAG,
    "use_torch_checkpoint": _FLAG,
    "dim_freqs_in": _int(1, 1 << 20),
    "multi_stft_resolution_loss_weight": Spec("float", 0.0, 1e6),
    "multi_stft_resolutions_window_sizes": Spec("ints", 1, 1 << 20, (0, 64)),
    "multi_stft_hop_size": _int(1, 1 << 20),
    "multi_stft_normalized": _FLAG,
}
_ROFORMER_KEYS = {
    "dim": _int(1, 2048),
    "depth": _int(1, 64),
    "stereo": _FLAG,
    "num_stems": _int(1, 16),
    "time_transformer_depth": _int(0, 16),
    "freq_transformer_depth": _int(0, 16),
    "linear_transformer_depth": _int(0, 16),
    "dim_head": _int(2, 512),
    "heads": _int(1, 64),
    "attn_dropout": _DROPOUT,
    "ff_dropout": _DROPOUT,
    "stft_n_fft": _int(16, 16384),
    "stft_hop_length": _int(1, 16384),
    "stft_win_length": _int(1, 16384),
    "stft_normalized": _FLAG,
    "zero_dc": _FLAG,
    "mask_estimator_depth": _int(1, 8),
    "mlp_expansion_factor": _int(1, 16),
    "skip_connection": _FLAG,
    "use_pope": _FLAG,
    **_TRAINING_ONLY,
}
MODEL_KEYS: dict[str, dict[str, Spec]] = {
    BS_ROFORMER: {**_ROFORMER_KEYS, "freqs_per_bands": Spec("ints", 1, 8193, (2, 1024))},
    MEL_BAND_ROFORMER: {
        **_ROFORMER_KEYS,
        "num_bands": _int(2, 1024),
        "sample_rate": _int(1000, 384000),
        "match_input_audio_length": _FLAG,
    },
    SCNET: {
        "sources": Spec("names", size=(1, 16)),
        "audio_channels": _int(1, 2),
        "dims": Spec("ints", 1, 1024, (2, 8)),
        "nfft": _int(16, 16384),
        "hop_size": _int(1, 16384),
        "win_size": _int(1, 16384),
        "normalized": _FLAG,
        "band_SR": Spec("floats", 0.0, 1.0, (3, 3)),
        "band_stride": Spec("ints", 1, 64, (3, 3)),
        "band_kernel": Spec("ints", 1, 64, (3, 3)),
        "conv_depths": Spec("ints", 0, 16, (3, 3)),
        "compress": _int(1, 64),
        "conv_kernel": _int(1, 63),
        "num_dplayer": _int(0, 32),
        "expand": _int(1, 16),
    },
}
# msst 0.1.0's defaults where they differ from our dataclasses' (Mel-Band RoFormer's).
_MEL_DEFAULTS = {"attn_dropout": 0.1, "ff_dropout": 0.1, "mask_estimator_depth": 1}
# Keys that tell the types apart, for inferring the type of a configuration that does not say it.
_MARKERS = {
    BS_ROFORMER: {"freqs_per_bands"},
    MEL_BAND_ROFORMER: {"num_bands", "sample_rate", "match_input_audio_length"},
    SCNET: set(MODEL_KEYS[SCNET]),
}


# --- the configuration ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MSSTConfig:
    """A checked MSST configuration: the model type, the network's configuration and what separation
    needs from the other sections."""

    model_type: str
    network: RoformerConfig | SCNetConfig
    settings: MSSTSettings


def _section(content: Mapping[str, Any], name: str, origin: str, *, required: bool = True) -> Mapping[str, Any]:
    section = content.get(name)
    if section is None and not required:
        return {}
    if not isinstance(section, Mapping):
        what = "is missing" if section is None else "is not a mapping"
        raise InputError(f"{origin}: the {name} section {what}; is this an MSST model configuration?")
    return section


def model_type_of(content: Mapping[str, Any], given: str | None, origin: str) -> str:
    """The model type: ``given`` (``--model-type``), ``training.model_type``, or inferred from ``model:``."""
    if given is not None and given not in MODEL_TYPES:
        raise InputError(f"--model-type {given!r}: use {', '.join(MODEL_TYPES)}")
    training = content.get("training")
    declared = training.get("model_type") if isinstance(training, Mapping) else None
    if declared is not None:
        if declared not in MODEL_TYPES:
            raise InputError(f"{origin}: training.model_type {str(declared)[:40]!r}: ugosa runs {', '.join(MODEL_TYPES)}")
        if given is not None and given != declared:
            raise InputError(f"--model-type {given} disagrees with training.model_type {declared} in {origin}")
        return str(declared)
    if given is not None:
        return given
    keys = set(_section(content, "model", origin))
    candidates = [kind for kind, markers in _MARKERS.items() if keys & markers]
    if len(candidates) == 1:
        return candidates[0]
    raise InputError(f"{origin}: cannot tell the model type from the configuration; give --model-type "
                     f"{'|'.join(MODEL_TYPES)}")


def _model_values(model_type: str, section: Mapping[str, Any], origin: str, given: bool) -> dict[str, Any]:
    """The ``model:`` section checked key by key (unknown keys refused), training-only keys dropped; ``given``:
    the model type was given by the user rather than by the configuration or its keys."""
    specs = MODEL_KEYS[model_type]
    unknown = sorted(str(key) for key in section if key not in specs)
    if unknown:
        shown = ", ".join(repr(key[:40]) for key in unknown[:5]) + (", ..." if len(unknown) > 5 else "")
        hint = "; is --model-type right?" if given else ""
        raise InputError(f"{origin}: unknown key{'s' if len(unknown) > 1 else ''} in model: {shown} (not "
                         f"{'arguments' if len(unknown) > 1 else 'an argument'} of msst's {model_type} model{hint})")
    values = {key: checked(value, specs[key], f"{origin}: model.{key}") for key, value in section.items()
              if value is not None}
    return {key: value for key, value in values.items() if key not in _TRAINING_ONLY}


def _roformer_config(model_type: str, values: dict[str, Any], origin: str) -> RoformerConfig:
    if values.pop("use_pope", False):
        raise InputError(f"{origin}: model.use_pope: PoPE position embeddings are not supported by ugosa")
    if "dim" not in values or "depth" not in values:
        raise InputError(f"{origin}: model.{'dim' if 'dim' not in values else 'depth'} is missing")
    mel = model_type == MEL_BAND_ROFORMER
    if mel:
        values = {**_MEL_DEFAULTS, **values}
        values.pop("match_input_audio_length", None)  # ugosa's output always has the input's length
    config = RoformerConfig(kind=model_type, **values)
    where = f"{origin}: model"
    if config.stft_hop_length > config.stft_n_fft or config.stft_win_length > config.stft_n_fft:
        raise InputError(f"{where}.stft_{'hop' if config.stft_hop_length > config.stft_n_fft else 'win'}_length: "
                         f"must not exceed stft_n_fft ({config.stft_n_fft})")
    if mel:
        if config.num_bands > config.freqs:
            raise InputError(f"{where}.num_bands: {config.num_bands} bands for {config.freqs} frequency bins")
        member = mel_band_membership(config.sample_rate, config.stft_n_fft, config.num_bands)
        if not member.any(axis=0).all():
            raise InputError(f"{where}.num_bands: {config.num_bands} mel bands leave frequency bins uncovered at "
                             f"sample_rate {config.sample_rate} and stft_n_fft {config.stft_n_fft}")
    else:
        if "freqs_per_bands" not in values:
            config = replace(config, freqs_per_bands=DEFAULT_FREQS_PER_BANDS)
        if sum(config.freqs_per_bands) != config.freqs:
            raise InputError(f"{where}.freqs_per_bands: the bands hold {sum(config.freqs_per_bands)} frequency bins; "
                             f"stft_n_fft {config.stft_n_fft} gives {config.freqs}")
    return config


def _scnet_config(values: dict[str, Any], origin: str) -> SCNetConfig:
    where = f"{origin}: model"
    if "sources" in values:
        values["sources"] = _source_names(values["sources"], f"{where}.sources")
    config = SCNetConfig(**values)
    if config.dims[0] != 2 * config.audio_channels:
        raise InputError(f"{where}.dims: the first must be twice audio_channels ({2 * config.audio_channels}), "
                         f"got {config.dims[0]}")
    if config.hop_size > config.nfft or config.win_size > config.nfft:
        raise InputError(f"{where}.{'hop_size' if config.hop_size > config.nfft else 'win_size'}: must not exceed "
                         f"nfft ({config.nfft})")
    if config.conv_kernel % 2 == 0:
        raise InputError(f"{where}.conv_kernel: must be odd, got {config.conv_kernel}")
    if config.num_dplayer % 2:
        raise InputError(f"{where}.num_dplayer: must be even (the layers alternate between time and frequency "
                         f"domain), got {config.num_dplayer}")
    if config.band_SR[0] + config.band_SR[1] >= 1 or min(config.band_SR) <= 0:
        raise InputError(f"{where}.band_SR: three positive shares of the spectrum, the first two below 1 together")
    if any(int(width / config.compress) < 1 for width in config.dims[1:]):
        raise InputError(f"{where}.compress: {config.compress} leaves no channels in the convolution modules")
    freqs = config.nfft // 2 + 1
    for level in range(len(config.dims) - 1):
        sizes = []
        for (start, end), stride, kernel in zip(band_edges(freqs, config.band_SR), config.band_stride,
                                                config.band_kernel):
            size = end - start
            pad = kernel - stride if stride == 1 else (stride - size % stride) % stride
            out = (size + pad - kernel) // stride + 1
            if size < 1 or out < 1 or (out - 1) * stride + kernel < size:
                raise InputError(f"{where}: the frequency bands become too narrow for band_kernel/band_stride at "
                                 f"encoder layer {level + 1} (nfft {config.nfft}, {len(config.dims) - 1} layers)")
            sizes.append(out)
        freqs = sum(sizes)
    return config


def _source_names(names: tuple[str, ...], where: str) -> tuple[str, ...]:
    """Instrument names as ugosa's sources: lower-cased; each must then follow the source-name rule."""
    lowered = tuple(name.strip().lower() for name in names)
    for name, original in zip(lowered, names):
        if not SOURCE_NAME.fullmatch(name):
            raise InputError(f"{where}: {original[:40]!r} cannot name a stem: source names are {SOURCE_NAME_RULE}")
    if len(set(lowered)) != len(lowered):
        raise InputError(f"{where}: the names must be distinct, got {list(names)}")
    return lowered


def parse_config(content: Mapping[str, Any], origin: str, model_type: str | None = None) -> MSSTConfig:
    """A checked :class:`MSSTConfig` from a loaded configuration (see the module docstring)."""
    kind = model_type_of(content, model_type, origin)
    given = model_type is not None and "model_type" not in (content.get("training") or {})
    values = _model_values(kind, _section(content, "model", origin), origin, given)
    network: RoformerConfig | SCNetConfig
    try:
        network = _scnet_config(values, origin) if kind == SCNET else _roformer_config(kind, values, origin)
    except TypeError as exc:  # a required argument missing
        raise InputError(f"{origin}: model: {exc}") from None
    return MSSTConfig(kind, network, _settings(content, network, origin))


def _settings(content: Mapping[str, Any], network: RoformerConfig | SCNetConfig, origin: str) -> MSSTSettings:
    audio = _section(content, "audio", origin)
    training = _section(content, "training", origin)
    inference = _section(content, "inference", origin)
    rate = checked(audio.get("sample_rate", 44100), _int(1000, 384000), f"{origin}: audio.sample_rate")
    chunk_key = "inference.chunk_size" if "chunk_size" in inference else "audio.chunk_size"
    chunk = inference.get("chunk_size", audio.get("chunk_size"))
    if chunk is None:
        raise InputError(f"{origin}: audio.chunk_size is missing")
    chunk = checked(chunk, _int(1024, MAX_CHUNK_SECONDS * rate), f"{origin}: {chunk_key}")
    for key in ("num_overlap", "batch_size"):
        if key not in inference:
            raise InputError(f"{origin}: inference.{key} is missing")
    overlap = checked(inference["num_overlap"], _int(1, 32), f"{origin}: inference.num_overlap")
    batch = checked(inference["batch_size"], _int(1, 256), f"{origin}: inference.batch_size")
    normalize = checked(inference.get("normalize", False), _FLAG, f"{origin}: inference.normalize")
    if "instruments" not in training:
        raise InputError(f"{origin}: training.instruments is missing")
    where = f"{origin}: training.instruments"
    instruments = _source_names(checked(training["instruments"], Spec("names", size=(1, 16)), where), where)
    target = training.get("target_instrument")
    if target is not None and target != "":
        if not isinstance(target, str):
            raise InputError(f"{origin}: training.target_instrument: {target!r:.60} is not a name")
        target = _source_names((target,), f"{origin}: training.target_instrument")[0]
    else:
        target = None
    min_chunk = network.stft_n_fft // 2 + 1 if isinstance(network, RoformerConfig) else 1
    if chunk < min_chunk:
        raise InputError(f"{origin}: {chunk_key}: {chunk} samples is shorter than the STFT needs ({min_chunk})")
    try:
        return MSSTSettings(instruments, target, rate, chunk, overlap, batch, normalize)
    except InputError as exc:
        raise InputError(f"{origin}: {exc.message}") from None


# --- the weights ------------------------------------------------------------------------------------------


def state_from_content(content: Mapping[str, Any], origin: str) -> dict[str, Tensor]:
    """The state dict in a loaded weights file: bare, or under one of :data:`STATE_WRAPPERS` (as msst and
    its users write them); a ``module.`` prefix on every key (a model saved inside DataParallel) is dropped."""
    state: Any = content
    if not _is_state(state):
        inner = next((content[key] for key in STATE_WRAPPERS if key in content and _is_state(content[key])), None)
        if inner is None:
            raise InputError(f"{origin}: holds no state dict (a mapping of parameter names to tensors, bare or under "
                             f"{', '.join(STATE_WRAPPERS)})")
        state = inner
    if all(key.startswith("module.") for key in state):
        state = {key[len("module."):]: value for key, value in state.items()}
    return dict(state)


def _is_state(value: Any) -> bool:
    return (isinstance(value, Mapping) and bool(value)
            and all(isinstance(k, str) and isinstance(v, Tensor) for k, v in value.items()))


def read_safetensors(path: Path) -> dict[str, Tensor]:
    """The tensors of a ``.safetensors`` file (a format that holds tensors only), if the package is there."""
    try:
        from safetensors.torch import load_file  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        raise InputError(f"{path}: reading .safetensors files needs the safetensors package: pip install "
                         "safetensors (or convert the file to a torch state dict)") from None
    try:
        return dict(load_file(str(path), device="cpu"))
    except FileNotFoundError:
        raise InputError(f"{path}: no such model file") from None
    except Exception as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{path}: not a readable safetensors file ({detail[:120]})") from None


_GATES = re.compile(r"\.to_gates\.weight$")
_TRANSFORMER_NORM = re.compile(r"^layers\.\d+\.\d+\.norm\.gamma$")


def layout_of(state: Mapping[str, Tensor]) -> RoformerLayout:
    """Which optional parts a RoFormer state dict holds (see :class:`RoformerLayout`)."""
    return RoformerLayout(
        gates=any(_GATES.search(key) for key in state),
        transformer_norm=any(_TRANSFORMER_NORM.match(key) for key in state),
        final_norm="final_norm.gamma" in state,
        rotary_freqs=any(key.endswith(".rotary_embed.freqs") for key in state),
    )


def build_network(config: MSSTConfig, state: Mapping[str, Tensor], origin: str) -> MSSTNetwork:
    """The network of ``config`` in eval mode with ``state`` loaded strictly (as float32)."""
    for key, tensor in state.items():
        if not isinstance(tensor, Tensor) or not tensor.is_floating_point():
            raise InputError(f"{origin}: state dict entry {key[:80]} is not a floating-point tensor")
    network = config.network
    make: Callable[[], MSSTNetwork]
    if isinstance(network, RoformerConfig):
        roformer = replace(network, layout=layout_of(state))
        make = lambda: Roformer(roformer, config.settings)  # noqa: E731
    else:
        scnet = network
        make = lambda: SCNet(scnet, config.settings)  # noqa: E731
    try:
        mismatch = state_mismatch(make, state)  # on the meta device: nothing allocated
    except InputError as exc:
        raise InputError(f"{origin}: {exc.message}") from None
    if mismatch is not None:
        raise InputError(f"{origin}: the weights do not match the {config.model_type} configuration: {mismatch}")
    model = make()
    model.load_state_dict({key: tensor.float() for key, tensor in state.items()}, strict=True)
    return model.eval()


def read_config(path: Path, model_type: str | None = None, origin: str | None = None) -> MSSTConfig:
    """The checked configuration in a YAML file."""
    origin = origin or str(path)
    return parse_config(load_yaml(path, origin), origin, model_type)


# --- ugosa checkpoints ------------------------------------------------------------------------------------


def network_payload_config(model: MSSTNetwork) -> dict[str, Any]:
    """What a ugosa checkpoint stores of an MSST network besides its state dict: plain values only."""
    assert isinstance(model, (Roformer, SCNet))
    network = model.config
    values = {f.name: getattr(network, f.name) for f in fields(network) if f.name not in ("kind", "layout")}
    values = {key: list(value) if isinstance(value, tuple) else value for key, value in values.items()}
    if isinstance(network, RoformerConfig):
        if network.mel:
            values.pop("freqs_per_bands")
        else:
            for key in ("num_bands", "sample_rate"):
                values.pop(key)
    settings = model.settings
    return {
        "model_type": network.kind if isinstance(network, RoformerConfig) else SCNET,
        "model": values,
        "audio": {"sample_rate": settings.samplerate, "chunk_size": settings.chunk_size},
        "training": {"instruments": list(settings.instruments), "target_instrument": settings.target},
        "inference": {"num_overlap": settings.num_overlap, "batch_size": settings.batch_size,
                      "normalize": settings.normalize},
    }


def config_from_payload(payload: Mapping[str, Any], origin: str) -> MSSTConfig:
    """The inverse of :func:`network_payload_config`, checked as a YAML configuration is."""
    model_type = payload.get("model_type")
    if model_type not in MODEL_TYPES:
        raise InputError(f"{origin}: unknown MSST model type {str(model_type)[:40]!r}")
    return parse_config({key: value for key, value in payload.items() if key != "model_type"}, origin,
                        str(model_type))
